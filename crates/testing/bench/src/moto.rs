//! Starts and stops a moto_server, a real S3-compatible server, on a free loopback port.

use anyhow::{bail, Context};
use opentrail_objstore::{S3Config, S3Store};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ACCESS_KEY: &str = "moto-access-key";
const SECRET_KEY: &str = "moto-secret-key";
const REGION: &str = "us-east-1";

pub struct MotoServer {
    child: Child,
    pub endpoint: String,
    _log_dir: tempfile::TempDir,
}

impl MotoServer {
    pub async fn start(bin: &Path) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log_dir = tempfile::Builder::new().prefix("moto-bench-").tempdir()?;
        let log = std::fs::File::create(log_dir.path().join("moto.log"))?;
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("failed to start {}", bin.display()))?;
        let server = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            _log_dir: log_dir,
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let answer = http
                .get(format!("{}/moto-api/", server.endpoint))
                .send()
                .await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                return Ok(server);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("moto_server did not answer on {}", server.endpoint)
    }

    /// The `opentrail serve` / `opentrail validate` flags that put buckets in this server.
    pub fn opentrail_args(&self) -> Vec<String> {
        [
            "--object-store",
            "s3",
            "--s3-endpoint",
            &self.endpoint,
            "--s3-access-key",
            ACCESS_KEY,
            "--s3-secret-key",
            SECRET_KEY,
            "--s3-region",
            REGION,
            "--s3-path-style",
            "true",
        ]
        .map(str::to_owned)
        .to_vec()
    }

    pub fn store(&self) -> anyhow::Result<S3Store> {
        S3Store::new(S3Config {
            endpoint: self.endpoint.clone(),
            access_key: ACCESS_KEY.into(),
            secret_key: SECRET_KEY.into(),
            region: REGION.into(),
            path_style: true,
        })
        .map_err(|e| anyhow::anyhow!("failed to configure S3 client for moto: {e}"))
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

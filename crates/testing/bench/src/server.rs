//! Starts and stops the `opentrail` binary under test in a temporary data dir.

use anyhow::{bail, Context};
use aws_sdk_cloudtrail::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_http_client::tls;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const ACCOUNT_ID: &str = "111122223333";
pub const BUCKET: &str = "opentrail-bench-logs";

pub struct BenchServer {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub access_key_id: String,
    pub secret_access_key: String,
    data_dir: tempfile::TempDir,
}

fn run_admin(bin: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(bin)
        .args(args)
        .output()
        .with_context(|| format!("failed to run {} {args:?}", bin.display()))?;
    if !out.status.success() {
        bail!(
            "{} {args:?} failed with {}: {}",
            bin.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn read_credentials(path: &Path) -> anyhow::Result<(String, String)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read credentials file {}", path.display()))?;
    let value = |key: &str| {
        text.lines()
            .filter_map(|line| line.split_once('='))
            .find(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim().to_owned())
            .with_context(|| format!("{key} missing from {}", path.display()))
    };
    Ok((value("aws_access_key_id")?, value("aws_secret_access_key")?))
}

/// How to start the server beyond the defaults.
#[derive(Debug, Default)]
pub struct ServeOptions {
    /// Extra `opentrail serve` flags, e.g. `--delivery-interval 5s`.
    pub serve_args: Vec<String>,
    /// Do not create [`BUCKET`] in the data dir (the trail's bucket lives in an S3 server).
    pub no_local_bucket: bool,
}

impl BenchServer {
    /// Creates a data dir with the benchmark bucket and starts `opentrail serve` on a free port.
    pub fn start(bin: &Path) -> anyhow::Result<Self> {
        Self::start_with(bin, &ServeOptions::default())
    }

    /// [`BenchServer::start`] with extra serve flags.
    pub fn start_with(bin: &Path, options: &ServeOptions) -> anyhow::Result<Self> {
        let bin: PathBuf = bin
            .canonicalize()
            .with_context(|| format!("opentrail binary {} not found; build it with `cargo build --profile fast -p opentrail-server`", bin.display()))?;
        let data_dir = tempfile::Builder::new()
            .prefix("opentrail-bench-")
            .tempdir()?;
        let data = data_dir
            .path()
            .to_str()
            .context("temp dir path is not UTF-8")?;
        if !options.no_local_bucket {
            run_admin(
                &bin,
                &[
                    "buckets",
                    "create",
                    "--data-dir",
                    data,
                    "--account-id",
                    ACCOUNT_ID,
                    BUCKET,
                ],
            )?;
        }
        let log = std::fs::File::create(data_dir.path().join("server.stderr.log"))?;
        let mut child = Command::new(&bin)
            .args([
                "serve",
                "--data-dir",
                data,
                "--listen",
                "127.0.0.1:0",
                "--account-id",
                ACCOUNT_ID,
            ])
            .args(&options.serve_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("failed to start {}", bin.display()))?;
        let stdout = child.stdout.take().context("server stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("listening on http://") {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        // Generous: a debug build on a loaded machine takes tens of seconds to start.
        let addr = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(addr) => addr
                .parse()
                .with_context(|| format!("bad listen address {addr}"))?,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "opentrail did not report its address; see its log in {}",
                    data_dir.path().display()
                );
            }
        };
        let (access_key_id, secret_access_key) =
            read_credentials(&data_dir.path().join("credentials"))?;
        Ok(Self {
            child: Some(child),
            addr,
            access_key_id,
            secret_access_key,
            data_dir,
        })
    }

    /// The server's peak resident memory so far (`VmHWM` in `/proc/PID/status`), in bytes.
    pub fn peak_rss_bytes(&self) -> Option<u64> {
        let pid = self.child.as_ref()?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib * 1024)
    }

    /// The server's user and system CPU time so far (`/proc/PID/stat`, in clock ticks of
    /// 1/100 s), in seconds: a measure that does not drift with the machine's speed as
    /// wall time does.
    pub fn cpu_seconds(&self) -> Option<f64> {
        let pid = self.child.as_ref()?.id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name (which may hold spaces) start at state, field 3.
        let rest = stat.get(stat.rfind(')')? + 2..)?;
        let mut fields = rest.split_whitespace().skip(11);
        let user: f64 = fields.next()?.parse().ok()?;
        let system: f64 = fields.next()?.parse().ok()?;
        Some((user + system) / 100.0)
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// The AWS CLI shared credentials file holding the bench key.
    pub fn credentials_path(&self) -> PathBuf {
        self.data_dir.path().join("credentials")
    }

    /// Where the embedded store keeps `bucket` (with `--object-store file`, the default).
    pub fn local_buckets_root(&self) -> PathBuf {
        self.data_dir.path().join("buckets")
    }

    /// An `aws-sdk-cloudtrail` client signing with the bench key, without retries.
    pub fn cloudtrail_client(&self, region: &str) -> aws_sdk_cloudtrail::Client {
        let http_client = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let config = aws_sdk_cloudtrail::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .credentials_provider(Credentials::from_keys(
                &self.access_key_id,
                &self.secret_access_key,
                None,
            ))
            .endpoint_url(self.endpoint())
            .http_client(http_client)
            .retry_config(aws_sdk_cloudtrail::config::retry::RetryConfig::disabled())
            .build();
        aws_sdk_cloudtrail::Client::from_conf(config)
    }

    /// SIGTERM and wait for the exit.
    pub fn stop(mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()?;
        let status = child.wait()?;
        if !status.success() {
            bail!("opentrail exited with {status} after SIGTERM");
        }
        Ok(())
    }
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

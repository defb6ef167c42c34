//! A private moto S3 server per test, on a free loopback port, killed when dropped.
//! `OPENTRAIL_MOTO_SERVER` or `<workspace>/.venv/bin/moto_server`; missing is a failure.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use opentrail_objstore::{ObjectStore, S3Config, S3Store};

pub fn moto_server_executable() -> PathBuf {
    if let Some(path) = std::env::var_os("OPENTRAIL_MOTO_SERVER") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "OPENTRAIL_MOTO_SERVER={} does not exist",
            path.display()
        );
        return path;
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/moto_server");
    assert!(
        venv.is_file(),
        "moto_server not found at {}: python3 -m venv .venv && .venv/bin/pip install 'moto[server]' awscli, or set OPENTRAIL_MOTO_SERVER",
        venv.display()
    );
    venv
}

/// The Python beside moto_server (it has awscli and botocore in the workspace venv).
pub fn python() -> PathBuf {
    moto_server_executable().with_file_name("python")
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Moto {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    pub async fn start() -> Moto {
        Moto::start_on(free_port()).await
    }

    pub async fn start_on(port: u16) -> Moto {
        let executable = moto_server_executable();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("moto.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new(&executable)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", executable.display()));
        let mut moto = Moto {
            child,
            log,
            _dir: dir,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        moto.wait_until_ready().await;
        moto
    }

    async fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        let store = self.store();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "moto_server exited with {status}: {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            if store.list_buckets().await.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer in time"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn store(&self) -> S3Store {
        store_at(&self.endpoint)
    }
}

/// An S3 store for `endpoint`, with short timeouts (the endpoint may be down).
pub fn store_at(endpoint: &str) -> S3Store {
    S3Store::with_timeouts(
        S3Config {
            endpoint: endpoint.to_owned(),
            access_key: "testing".to_owned(),
            secret_key: "testing".to_owned(),
            region: "us-east-1".to_owned(),
            path_style: true,
        },
        Duration::from_secs(5),
        Duration::from_secs(30),
    )
    .unwrap()
}

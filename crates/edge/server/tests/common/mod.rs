//! Shared harness of the black-box tests: start the real `opentrail` binary on port 0 in
//! a temporary data dir, and build `aws-sdk-cloudtrail` clients pointed at it.

#![allow(dead_code)] // each test binary uses a different subset

use aws_sdk_cloudtrail::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_cloudtrail::error::ProvideErrorMetadata;
use aws_sdk_cloudtrail::Client;
use aws_smithy_http_client::tls;
use std::fmt::Debug;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Every test server runs as this account, so ARNs are predictable.
pub const ACCOUNT_ID: &str = "111122223333";
/// A bucket every test server has (created with `opentrail buckets create`).
pub const BUCKET: &str = "opentrail-test-logs";

const START_TIMEOUT: Duration = Duration::from_secs(30);
/// `--shutdown-grace` (10 s) + the bounded flush (5 s) + a margin for a busy machine.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

pub fn opentrail_bin() -> &'static str {
    env!("CARGO_BIN_EXE_opentrail")
}

/// An access key pair as `opentrail` hands it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKey {
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// Reads the `[default]` profile of the credentials file the server writes on first start.
pub fn read_credentials_file(path: &Path) -> AccessKey {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("failed to read credentials file {}: {e}", path.display()));
    let mut lines = text.lines().map(str::trim);
    assert_eq!(
        lines.next(),
        Some("[default]"),
        "credentials file starts with [default]: {text}"
    );
    let mut access_key_id = None;
    let mut secret_access_key = None;
    for line in lines.filter(|l| !l.is_empty()) {
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("credentials line without '=': {line}"));
        match key.trim() {
            "aws_access_key_id" => access_key_id = Some(value.trim().to_owned()),
            "aws_secret_access_key" => secret_access_key = Some(value.trim().to_owned()),
            other => panic!("unexpected credentials key {other}"),
        }
    }
    AccessKey {
        access_key_id: access_key_id.expect("aws_access_key_id in credentials file"),
        secret_access_key: secret_access_key.expect("aws_secret_access_key in credentials file"),
    }
}

/// How to start a test server; kept so `restart` starts it the same way.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    pub extra_args: Vec<String>,
}

impl ServerOptions {
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.extra_args.push(arg.into());
        self
    }

    pub fn start(self) -> TestServer {
        TestServer::start_with(self)
    }
}

/// The real `opentrail serve` process on a loopback port, with its own data dir.
pub struct TestServer {
    data_dir: tempfile::TempDir,
    options: ServerOptions,
    child: Option<Child>,
    addr: SocketAddr,
    credentials: AccessKey,
    /// stdout lines printed before `listening on`.
    startup_lines: Vec<String>,
    starts: usize,
}

fn stderr_log_path(data_dir: &Path, start: usize) -> PathBuf {
    data_dir.join(format!("server-{start}.stderr.log"))
}

impl TestServer {
    pub fn builder() -> ServerOptions {
        ServerOptions::default()
    }

    /// Starts a server with default options and the test bucket.
    pub fn start() -> TestServer {
        ServerOptions::default().start()
    }

    pub fn start_with(options: ServerOptions) -> TestServer {
        let data_dir = tempfile::Builder::new()
            .prefix("opentrail-test-")
            .tempdir()
            .expect("create temp data dir");
        run_cli(&[
            "buckets",
            "create",
            "--data-dir",
            data_dir.path().to_str().expect("utf-8 temp path"),
            BUCKET,
        ]);
        let (child, addr, startup_lines) = spawn_server(data_dir.path(), &options, 0);
        let credentials = read_credentials_file(&data_dir.path().join("credentials"));
        let server = TestServer {
            data_dir,
            options,
            child: Some(child),
            addr,
            credentials,
            startup_lines,
            starts: 1,
        };
        server.wait_healthy();
        server
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    pub fn data_dir_str(&self) -> &str {
        self.data_dir.path().to_str().expect("utf-8 temp path")
    }

    /// The root access key from `DATA_DIR/credentials`.
    pub fn credentials(&self) -> &AccessKey {
        &self.credentials
    }

    pub fn startup_lines(&self) -> &[String] {
        &self.startup_lines
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server is running").id()
    }

    /// A client with the root key, calling from `region`.
    pub fn client(&self, region: &str) -> Client {
        sdk_client(&self.endpoint(), region, &self.credentials)
    }

    pub fn client_with_key(&self, region: &str, key: &AccessKey) -> Client {
        sdk_client(&self.endpoint(), region, key)
    }

    /// `opentrail keys create --user NAME` on this data dir.
    pub fn create_key(&self, user: &str) -> AccessKey {
        let out = run_cli(&[
            "keys",
            "create",
            "--data-dir",
            self.data_dir_str(),
            "--user",
            user,
        ]);
        let json: serde_json::Value = serde_json::from_str(out.trim())
            .unwrap_or_else(|e| panic!("keys create printed non-JSON ({e}): {out}"));
        assert_eq!(json["UserName"], user, "keys create output: {json}");
        assert_eq!(json["AccountId"], ACCOUNT_ID, "keys create output: {json}");
        AccessKey {
            access_key_id: json["AccessKeyId"]
                .as_str()
                .expect("AccessKeyId")
                .to_owned(),
            secret_access_key: json["SecretAccessKey"]
                .as_str()
                .expect("SecretAccessKey")
                .to_owned(),
        }
    }

    pub fn delete_key(&self, access_key_id: &str) {
        run_cli(&[
            "keys",
            "delete",
            "--data-dir",
            self.data_dir_str(),
            access_key_id,
        ]);
    }

    pub fn create_bucket(&self, name: &str) {
        run_cli(&["buckets", "create", "--data-dir", self.data_dir_str(), name]);
    }

    /// Creates an SNS topic (in `region`) that trails may notify.
    pub fn create_topic(&self, region: &str, name: &str) {
        run_cli(&[
            "topics",
            "create",
            "--data-dir",
            self.data_dir_str(),
            "--region",
            region,
            name,
        ]);
    }

    /// The server's stderr (its logs) of the current run.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(stderr_log_path(self.data_dir(), self.starts)).unwrap_or_default()
    }

    /// SIGTERM, then requires a clean exit (status 0) within a few seconds.
    pub fn stop(&mut self) {
        let mut child = self.child.take().expect("server is running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill -TERM");
        assert!(status.success(), "kill -TERM {} failed", child.id());
        let exit = wait_with_timeout(&mut child, STOP_TIMEOUT).unwrap_or_else(|| {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "server did not exit within {STOP_TIMEOUT:?} of SIGTERM; logs:\n{}",
                self.logs()
            )
        });
        assert!(
            exit.success(),
            "server exited with {exit} after SIGTERM; logs:\n{}",
            self.logs()
        );
    }

    /// SIGKILL: the process gets no chance to clean up.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("server is running");
        child.kill().expect("send SIGKILL to server");
        let _ = child.wait();
    }

    /// Starts the binary again on the same data dir (after `stop` or `kill9`); the port changes.
    pub fn restart(&mut self) {
        self.restart_with_account_id(true);
    }

    /// Like `restart`, without `--account-id`: the data dir alone must know its account.
    pub fn restart_without_account_id(&mut self) {
        self.restart_with_account_id(false);
    }

    fn restart_with_account_id(&mut self, pass_account_id: bool) {
        assert!(self.child.is_none(), "restart needs a stopped server");
        self.starts += 1;
        let (child, addr, startup_lines) = spawn_server_with(
            self.data_dir.path(),
            &self.options,
            self.starts - 1,
            pass_account_id,
        );
        self.child = Some(child);
        self.addr = addr;
        self.startup_lines = startup_lines;
        self.wait_healthy();
    }

    fn wait_healthy(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match http_get(self.addr, "/health") {
                Ok((200, _)) => return,
                Ok(_) | Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                other => panic!(
                    "server at {} never became healthy: {other:?}; logs:\n{}",
                    self.addr,
                    self.logs()
                ),
            }
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            let logs = self.logs();
            let tail: Vec<&str> = logs.lines().rev().take(40).collect();
            eprintln!(
                "--- last server log lines ({}) ---",
                self.data_dir().display()
            );
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("poll server process") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn spawn_server(
    data_dir: &Path,
    options: &ServerOptions,
    start: usize,
) -> (Child, SocketAddr, Vec<String>) {
    spawn_server_with(data_dir, options, start, true)
}

fn spawn_server_with(
    data_dir: &Path,
    options: &ServerOptions,
    start: usize,
    pass_account_id: bool,
) -> (Child, SocketAddr, Vec<String>) {
    let stderr = std::fs::File::create(stderr_log_path(data_dir, start + 1))
        .expect("create server log file");
    let mut child = Command::new(opentrail_bin())
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--listen", "127.0.0.1:0"])
        .args(if pass_account_id {
            vec!["--account-id", ACCOUNT_ID]
        } else {
            vec![]
        })
        .args(&options.extra_args)
        .env_remove("OPENTRAIL_LOG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        .spawn()
        .expect("spawn opentrail serve");
    let stdout = child.stdout.take().expect("server stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(addr) = line.strip_prefix("listening on http://") {
                let _ = tx.send(Ok((addr.trim().to_owned(), lines.clone())));
                // Keep draining so the server never blocks on a full pipe.
                continue;
            }
            lines.push(line);
        }
        let _ = tx.send(Err(lines));
    });
    match rx.recv_timeout(START_TIMEOUT) {
        Ok(Ok((addr, lines))) => {
            let addr: SocketAddr = addr
                .parse()
                .unwrap_or_else(|e| panic!("bad listen address {addr}: {e}"));
            assert!(
                addr.ip().is_loopback(),
                "server listens on loopback, not {addr}"
            );
            assert_ne!(addr.port(), 0, "server reports the bound port");
            (child, addr, lines)
        }
        other => {
            let _ = child.kill();
            let status = child.wait();
            let logs =
                std::fs::read_to_string(stderr_log_path(data_dir, start + 1)).unwrap_or_default();
            panic!(
                "server did not print `listening on` ({other:?}, exit {status:?}); logs:\n{logs}"
            )
        }
    }
}

/// Runs an `opentrail` admin command; panics unless it succeeds. Returns stdout.
pub fn run_cli(args: &[&str]) -> String {
    let out = Command::new(opentrail_bin())
        .args(args)
        .env_remove("OPENTRAIL_LOG")
        .output()
        .expect("run opentrail");
    assert!(
        out.status.success(),
        "opentrail {args:?} failed with {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// A minimal blocking HTTP/1.1 GET (for /health and /metrics): returns status and body.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad response: {raw}")))?;
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// An SDK client with static credentials, a region (the SigV4 scope) and the server's endpoint.
/// Retries are off so every call is exactly one request and failures surface as they are.
pub fn sdk_client(endpoint: &str, region: &str, key: &AccessKey) -> Client {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let credentials = Credentials::from_keys(&key.access_key_id, &key.secret_access_key, None);
    let config = aws_sdk_cloudtrail::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(credentials)
        .endpoint_url(endpoint)
        .http_client(http_client)
        .retry_config(aws_sdk_cloudtrail::config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_sdk_cloudtrail::config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(30))
                .build(),
        )
        .build();
    Client::from_conf(config)
}

pub fn trail_arn(region: &str, name: &str) -> String {
    format!("arn:aws:cloudtrail:{region}:{ACCOUNT_ID}:trail/{name}")
}

/// Asserts that `result` failed with the AWS error `code` and a non-empty message;
/// returns the message so callers can check it names the input.
#[track_caller]
pub fn expect_error<T: Debug, E: ProvideErrorMetadata + Debug>(
    result: Result<T, E>,
    code: &str,
) -> String {
    let err = match result {
        Ok(output) => panic!("expected {code}, got success: {output:?}"),
        Err(err) => err,
    };
    assert_eq!(
        err.code(),
        Some(code),
        "wrong error code; full error: {err:?}"
    );
    let message = err.message().unwrap_or_default().to_owned();
    assert!(
        !message.trim().is_empty(),
        "{code} has an empty message: {err:?}"
    );
    message
}

/// Like `expect_error`, and the message must mention `needle` (the offending input).
#[track_caller]
pub fn expect_error_naming<T: Debug, E: ProvideErrorMetadata + Debug>(
    result: Result<T, E>,
    code: &str,
    needle: &str,
) -> String {
    let message = expect_error(result, code);
    assert!(
        message.contains(needle),
        "{code} message does not name the input {needle:?}: {message:?}"
    );
    message
}

/// Creates an event data store (termination protection off, so tests may delete it);
/// its ARN.
pub async fn create_event_data_store(client: &Client, name: &str) -> String {
    client
        .create_event_data_store()
        .name(name)
        .termination_protection_enabled(false)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateEventDataStore {name}: {e:?}"))
        .event_data_store_arn()
        .expect("an ARN")
        .to_owned()
}

/// The id at the end of an event data store ARN.
pub fn store_id(arn: &str) -> String {
    arn.rsplit('/').next().expect("an id").to_owned()
}

/// Creates a trail in the client's region with the test bucket.
pub async fn create_trail(
    client: &Client,
    name: &str,
) -> aws_sdk_cloudtrail::operation::create_trail::CreateTrailOutput {
    client
        .create_trail()
        .name(name)
        .s3_bucket_name(BUCKET)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create trail {name}: {e:?}"))
}

pub async fn create_multi_region_trail(
    client: &Client,
    name: &str,
) -> aws_sdk_cloudtrail::operation::create_trail::CreateTrailOutput {
    client
        .create_trail()
        .name(name)
        .s3_bucket_name(BUCKET)
        .is_multi_region_trail(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create multi-region trail {name}: {e:?}"))
}

pub fn tag(key: &str, value: &str) -> aws_sdk_cloudtrail::types::Tag {
    aws_sdk_cloudtrail::types::Tag::builder()
        .key(key)
        .value(value)
        .build()
        .expect("tag has a key")
}

//! A private moto server per test, on a free loopback port, killed when dropped.
//! [`Moto::start`] enforces authentication: after three unauthenticated IAM calls that
//! create a user, its policy and its access key, moto checks every request's SigV4
//! signature and the user's permissions. [`Moto::start_open_on`] accepts any signature,
//! on a port of the test's choosing (so a test can stop and restart an endpoint).
//! `OPENTRAIL_MOTO_SERVER` or `<workspace>/.venv/bin/moto_server`; missing is a failure.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use opentrail_sigv4::{encode_pairs, sign, PayloadHash, SigningParams};

const HINT: &str =
    "python3 -m venv .venv && .venv/bin/pip install 'moto[server]' in the workspace, \
     or set OPENTRAIL_MOTO_SERVER to a moto_server executable";

pub fn moto_server_executable() -> PathBuf {
    if let Some(path) = std::env::var_os("OPENTRAIL_MOTO_SERVER") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "OPENTRAIL_MOTO_SERVER={} does not exist: {HINT}",
            path.display()
        );
        return path;
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../.venv/bin/moto_server");
    assert!(
        venv.is_file(),
        "moto_server not found at {}: {HINT}",
        venv.display()
    );
    venv
}

/// The Python beside `moto_server` (the workspace venv has awscli, boto3 and botocore).
pub fn python() -> PathBuf {
    moto_server_executable().with_file_name("python")
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("local address")
        .port()
}

/// A running moto server; killed (by its PID) when dropped.
pub struct Moto {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The credentials of a moto that accepts any signature.
const OPEN_CREDENTIALS: &str = "testing";

impl Moto {
    /// A moto that checks signatures, with a fresh IAM user's access key.
    pub async fn start() -> Moto {
        let mut moto = Moto::spawn(free_port(), Some(3)).await;
        moto.create_access_key().await;
        moto
    }

    /// A moto on `port` that accepts any well-formed request (credentials `testing`).
    pub async fn start_open_on(port: u16) -> Moto {
        Moto::spawn(port, None).await
    }

    /// Starts moto_server and waits until it answers; `unauthenticated_actions` turns
    /// on authentication after that many unauthenticated calls.
    async fn spawn(port: u16, unauthenticated_actions: Option<u32>) -> Moto {
        let executable = moto_server_executable();
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("moto.log");
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut command = Command::new(&executable);
        command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file);
        if let Some(count) = unauthenticated_actions {
            command.env("INITIAL_NO_AUTH_ACTION_COUNT", count.to_string());
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", executable.display()));
        let mut moto = Moto {
            child,
            log,
            _dir: dir,
            endpoint: format!("http://127.0.0.1:{port}"),
            access_key: OPEN_CREDENTIALS.to_owned(),
            secret_key: OPEN_CREDENTIALS.to_owned(),
        };
        moto.wait_until_ready().await;
        moto
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn wait_until_ready(&mut self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("moto_server exited with {status}:\n{}", self.log_text());
            }
            // The dashboard does not count as an (unauthenticated) action.
            let probe = client
                .get(format!("{}/moto-api/", self.endpoint))
                .send()
                .await;
            if probe.is_ok_and(|response| response.status().is_success()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer in time:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A signed Query API call (moto routes it by the signed service name); panics
    /// unless it succeeds, returns the XML answer.
    pub async fn query(&self, service: &str, version: &str, params: &[(&str, &str)]) -> String {
        let mut pairs = params.to_vec();
        pairs.push(("Version", version));
        let body = encode_pairs(&pairs);
        let uri: http::Uri = format!("{}/", self.endpoint).parse().expect("uri");
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        let signing = SigningParams {
            access_key_id: &self.access_key,
            secret_access_key: &self.secret_key,
            region: "us-east-1",
            service,
            time: chrono::Utc::now(),
            session_token: None,
            uri_double_encode: true,
            payload: PayloadHash::Body(body.as_bytes()),
            set_content_sha256_header: false,
        };
        for (name, value) in sign(&http::Method::POST, &uri, &headers, &signing).expect("sign") {
            headers.insert(name, value);
        }
        let response = reqwest::Client::new()
            .post(format!("{}/", self.endpoint))
            .headers(headers)
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{service} {params:?}: {e}"));
        let status = response.status();
        let text = response.text().await.expect("response body");
        assert!(
            status.is_success(),
            "{service} {params:?} failed: {status} {text}"
        );
        text
    }

    async fn create_access_key(&mut self) {
        let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
        let iam = "2010-05-08";
        self.query(
            "iam",
            iam,
            &[("Action", "CreateUser"), ("UserName", "opentrail")],
        )
        .await;
        self.query(
            "iam",
            iam,
            &[
                ("Action", "PutUserPolicy"),
                ("UserName", "opentrail"),
                ("PolicyName", "everything"),
                ("PolicyDocument", policy),
            ],
        )
        .await;
        let created = self
            .query(
                "iam",
                iam,
                &[("Action", "CreateAccessKey"), ("UserName", "opentrail")],
            )
            .await;
        self.access_key = element(&created, "AccessKeyId");
        self.secret_key = element(&created, "SecretAccessKey");
    }
}

/// The text of the first `<name>` element (no entity decoding).
pub fn element(xml: &str, name: &str) -> String {
    let open = format!("<{name}>");
    let start = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no {name} in {xml}"))
        + open.len();
    let end = xml[start..]
        .find(&format!("</{name}>"))
        .expect("closing tag")
        + start;
    xml[start..end].to_owned()
}

//! Command-line and environment configuration, in small reusable groups.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

pub use opentrail_cli::args::{
    DataDirArgs, EventsCommand, ImportArgs, InsightsCommand, ObjectStoreKind, QueryArgs, S3Args,
    StoresCommand, ValidateArgs,
};
pub use opentrail_http::AuthMode;

#[derive(Debug, Parser)]
#[command(
    name = "opentrail",
    version,
    about = "A self-hosted audit trail service that speaks the AWS CloudTrail API"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the CloudTrail-compatible API server.
    Serve(ServeArgs),
    /// Manage the accounts this server hosts.
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// Manage access keys of the accounts.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage the buckets trails deliver to.
    #[command(subcommand)]
    Buckets(BucketsCommand),
    /// Import CloudTrail log files (.json, .json.gz, a directory tree or s3://bucket/prefix)
    /// into a running server; resumable and idempotent.
    Import(ImportArgs),
    /// Manage the SNS topics trails notify and their subscribers.
    #[command(subcommand)]
    Topics(TopicsCommand),
    /// Validate a trail's log files and digests, like `aws cloudtrail validate-logs`.
    Validate(ValidateArgs),
    /// Look up and export event history from a running server.
    #[command(subcommand)]
    Events(EventsCommand),
    /// CloudTrail Lake event data stores of a running server.
    #[command(subcommand)]
    Stores(StoresCommand),
    /// Run a CloudTrail Lake SQL query on a running server (StartQuery, then its results)
    /// and print them as a table, JSON or CSV.
    Query(QueryArgs),
    /// CloudTrail Insights events and per-API counts of a running server.
    #[command(subcommand)]
    Insights(InsightsCommand),
    /// Maintain the durable event log (the server must be stopped).
    #[command(subcommand)]
    Log(LogCommand),
}

#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Make a log that `serve` refuses (damage before valid records, or a consumer cursor
    /// beyond the log's end) open again: the damaged segment is copied to
    /// `log/quarantine/`, every valid record is kept, and lost records' offsets are never
    /// reused. Prints what it did as JSON.
    Repair {
        /// Where OpenTrail keeps its state.
        #[arg(long, env = "OPENTRAIL_DATA_DIR", default_value = "./opentrail-data")]
        data_dir: PathBuf,
    },
    /// Print the event log's event records, oldest first, one JSON record a line
    /// (provenance markers and other non-events are skipped).
    Print {
        /// Where OpenTrail keeps its state.
        #[arg(long, env = "OPENTRAIL_DATA_DIR", default_value = "./opentrail-data")]
        data_dir: PathBuf,
        /// Only records of this eventCategory (e.g. ActivityAuditLog for events sent
        /// through channels with PutAuditEvents).
        #[arg(long)]
        event_category: Option<String>,
    },
    /// Delete the event log cursor of a consumer this server no longer runs (retention
    /// named it `(not used by this server)`), so that it stops holding log segments. Run
    /// it with the server stopped; prints `{"Consumer": NAME, "Removed": true|false}`.
    RemoveCursor {
        /// Where OpenTrail keeps its state.
        #[arg(long, env = "OPENTRAIL_DATA_DIR", default_value = "./opentrail-data")]
        data_dir: PathBuf,
        /// The consumer (cursor) name, as `/metrics` and the retention warning show it.
        consumer: String,
    },
}

/// A duration written as seconds with an optional unit: `90`, `90s`, `5m`, `1h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval(pub std::time::Duration);

impl std::str::FromStr for Interval {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let (number, unit) = text
            .find(|c: char| !c.is_ascii_digit())
            .map_or((text, ""), |at| text.split_at(at));
        let value: u64 = number
            .parse()
            .map_err(|_| format!("{text:?} is not a duration like 300, 300s, 5m or 1h"))?;
        let seconds = match unit {
            "" | "s" => value,
            "m" => value * 60,
            "h" => value * 3600,
            _ => return Err(format!("{text:?} has an unknown unit; use s, m or h")),
        };
        if seconds == 0 {
            return Err("the interval must be at least 1s".into());
        }
        Ok(Self(std::time::Duration::from_secs(seconds)))
    }
}

/// A duration like [`Interval`], or `0` for none.
fn hold_interval(text: &str) -> Result<std::time::Duration, String> {
    if text == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    text.parse::<Interval>().map(|interval| interval.0)
}

/// A well-formed region name (`--extra-regions`).
fn region_name(text: &str) -> Result<String, String> {
    opentrail_model::Region::parse(text.trim()).map(String::from)
}

/// `--auth`: how requests are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthArg {
    /// Verify SigV4 signatures against the data dir's access keys.
    Sigv4,
    /// Development only: accept any well-formed SigV4 request without checking the signature.
    Open,
}

impl From<AuthArg> for AuthMode {
    fn from(arg: AuthArg) -> Self {
        match arg {
            AuthArg::Sigv4 => AuthMode::Sigv4,
            AuthArg::Open => AuthMode::Open,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub data: DataDirArgs,
    #[command(flatten)]
    pub s3: S3Args,
    /// Address to listen on; port 0 picks a free port (printed on stdout).
    #[arg(long, env = "OPENTRAIL_LISTEN", default_value = "127.0.0.1:7420")]
    pub listen: SocketAddr,
    #[arg(long, env = "OPENTRAIL_AUTH", value_enum, default_value = "sigv4")]
    pub auth: AuthArg,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "OPENTRAIL_MAX_REQUEST_BYTES", default_value_t = 2 * 1024 * 1024)]
    pub max_request_bytes: usize,
    /// Most client connections served at once; more wait in the listen backlog.
    #[arg(long, env = "OPENTRAIL_MAX_CONNECTIONS", default_value_t = 512)]
    pub max_connections: usize,
    /// How long a client may take to send a request's headers, counted from the
    /// connection (TLS handshake included) or from the first byte of the next request.
    #[arg(long, env = "OPENTRAIL_HEADER_READ_TIMEOUT", default_value = "10s")]
    pub header_read_timeout: Interval,
    /// How long a keep-alive connection may stay idle between requests; also the
    /// longest an authenticated request's body may take to arrive.
    #[arg(long, env = "OPENTRAIL_IDLE_TIMEOUT", default_value = "60s")]
    pub idle_timeout: Interval,
    /// On SIGTERM or Ctrl-C, how long requests in flight may take to finish (new
    /// connections are refused and idle ones closed at once); then they are cut and the
    /// server flushes event history and delivery state and exits.
    #[arg(long, env = "OPENTRAIL_SHUTDOWN_GRACE", default_value = "10s")]
    pub shutdown_grace: Interval,
    /// PEM certificate chain to serve HTTPS with (needs --tls-key).
    #[arg(long, env = "OPENTRAIL_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "OPENTRAIL_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// How often trails deliver a log file per region (at least; earlier when large):
    /// `300`, `300s`, `5m`, `1s` ...
    #[arg(long, env = "OPENTRAIL_DELIVERY_INTERVAL", default_value = "5m")]
    pub delivery_interval: Interval,
    /// How long a web console sign-in (`/console`) lasts: `12h`, `30m`, `3600s` ...
    #[arg(long, env = "OPENTRAIL_CONSOLE_SESSION", default_value = "12h")]
    pub console_session: Interval,
    /// LookupEvents requests per second allowed per account (0: unlimited); AWS allows 2.
    #[arg(
        long,
        env = "OPENTRAIL_LOOKUP_EVENTS_RATE_LIMIT",
        default_value_t = 0.0
    )]
    pub lookup_events_rate_limit: f64,
    /// Self-audit records of unauthenticated or failed-authentication requests written per
    /// second per source address (bursts of twice as many); the rest are dropped and counted
    /// in `opentrail_audit_records_dropped_total`. 0: unlimited.
    #[arg(
        long,
        env = "OPENTRAIL_UNAUTHENTICATED_AUDIT_RATE_LIMIT",
        default_value_t = 5.0
    )]
    pub unauthenticated_audit_rate_limit: f64,
    /// Regions accepted besides those of the aws, aws-cn and aws-us-gov partitions
    /// (comma-separated), for requests' credential scopes and ingested records' awsRegion.
    #[arg(long, env = "OPENTRAIL_EXTRA_REGIONS", value_delimiter = ',', value_parser = region_name)]
    pub extra_regions: Vec<String>,
    /// Days of event history kept for LookupEvents (AWS: 90).
    #[arg(long, env = "OPENTRAIL_HISTORY_RETENTION_DAYS", default_value_t = 90)]
    pub history_retention_days: u32,
    /// Write and read the event log with O_DIRECT, bypassing the page cache, where the
    /// filesystem supports it (much cheaper in CPU on most machines); `false` always uses
    /// the page cache. Acknowledgements wait for fdatasync either way.
    #[arg(long, env = "OPENTRAIL_LOG_DIRECT_IO", default_value_t = true, action = clap::ArgAction::Set)]
    pub log_direct_io: bool,
    /// How long the event log keeps records every consumer has processed (delivery,
    /// event history ...), for replay: `24h`, `30m`, `90s`. Records a consumer still needs
    /// are kept however old.
    #[arg(long, env = "OPENTRAIL_EVENT_LOG_RETENTION", default_value = "24h")]
    pub event_log_retention: Interval,
    /// Size at which an event log segment is sealed; retention deletes whole segments.
    /// Smaller only for tests and demos.
    #[arg(
        long,
        env = "OPENTRAIL_EVENT_LOG_SEGMENT_BYTES",
        default_value_t = 128 * 1024 * 1024,
        value_parser = clap::value_parser!(u64).range(4096..),
        hide = true
    )]
    pub event_log_segment_bytes: u64,
    /// Bytes of the most recently acknowledged records the event log always keeps in
    /// memory, already parsed, for its consumers (event history, the lake writer,
    /// delivery ...): a consumer within this distance of the log's end reads and parses
    /// nothing again.
    #[arg(
        long,
        env = "OPENTRAIL_EVENT_LOG_TAIL_BYTES",
        default_value_t = 16 * 1024 * 1024,
        hide = true
    )]
    pub event_log_tail_bytes: usize,
    /// Bytes of older records (with their parses) the event log keeps in memory too, while
    /// a consumer reading from memory has not read them yet: in a burst, event history and
    /// the lake writer trail ingest by several hundred thousand records, and would read
    /// them back from disk and parse them again. The memory comes back once they catch up;
    /// a consumer that falls further behind (a long import) reads the files and holds
    /// nothing (crates/testing/bench/README.md, "Ingest end to end, 2026-12-06 (fourth
    /// session)").
    #[arg(
        long,
        env = "OPENTRAIL_EVENT_LOG_TAIL_UNREAD_BYTES",
        default_value_t = 1024 * 1024 * 1024,
        hide = true
    )]
    pub event_log_tail_unread_bytes: usize,
    /// Digest cadence (hourly as AWS); shorter only for tests and demos.
    #[arg(
        long,
        env = "OPENTRAIL_DIGEST_INTERVAL",
        default_value = "1h",
        hide = true
    )]
    pub digest_interval: Interval,
    /// How long a deleted event data store stays PENDING_DELETION (restorable) before it
    /// is purged (AWS: 7 days); shorter only for tests and demos.
    #[arg(
        long,
        env = "OPENTRAIL_EVENT_DATA_STORE_PENDING_DELETION",
        default_value = "168h",
        hide = true
    )]
    pub event_data_store_pending_deletion: Interval,
    /// How long a Lake query may run before it is TIMED_OUT (AWS: 1 hour): `1h`, `30m`, `90s`.
    #[arg(long, env = "OPENTRAIL_QUERY_TIMEOUT", default_value = "1h")]
    pub query_timeout: Interval,
    /// How often the server looks for dashboards whose scheduled refresh is due.
    #[arg(
        long,
        env = "OPENTRAIL_DASHBOARD_REFRESH_CHECK",
        default_value = "30s",
        hide = true
    )]
    pub dashboard_refresh_check: Interval,
    /// Test hook: each Lake query stays QUEUED this long before it may run, so that tests
    /// hold queries active without slow SQL (`0`: none).
    #[arg(
        long,
        env = "OPENTRAIL_QUERY_HOLD",
        default_value = "0",
        value_parser = hold_interval,
        hide = true
    )]
    pub query_hold: std::time::Duration,
    /// Trails per ListTrails page.
    #[arg(
        long,
        env = "OPENTRAIL_LIST_TRAILS_PAGE_SIZE",
        default_value_t = 50,
        hide = true
    )]
    pub list_trails_page_size: usize,
    /// A test hook: Insights reads the time (RFC 3339) from this file instead of the
    /// system clock, so tests move Insights' minutes by writing it.
    #[arg(long, env = "OPENTRAIL_INSIGHTS_TEST_CLOCK_FILE", hide = true)]
    pub insights_test_clock_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// Create an account and a root access key for it; prints both as JSON.
    Create {
        /// Where OpenTrail keeps its state.
        #[arg(long, env = "OPENTRAIL_DATA_DIR", default_value = "./opentrail-data")]
        data_dir: PathBuf,
        /// The new account's 12-digit id; generated when absent.
        #[arg(long)]
        account_id: Option<String>,
    },
    /// List accounts: id, origin (bootstrap, cli, ingest) and creation time.
    List {
        #[command(flatten)]
        data: DataDirArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create an access key for a named user of an account; prints it as JSON.
    Create {
        #[command(flatten)]
        data: DataDirArgs,
        /// The account (default: the data dir's bootstrap account).
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        user: String,
        /// Allow this key to ingest events recorded for other accounts (log forwarders).
        #[arg(long)]
        ingest_any_account: bool,
        /// Allow this key to ingest records that claim to be OpenTrail's own audit events of
        /// this server's accounts (eventSource cloudtrail.amazonaws.com or
        /// cloudtrail-data.amazonaws.com), e.g. to import another OpenTrail's trail.
        #[arg(long)]
        forward_audit: bool,
    },
    /// List access keys (secrets are not shown).
    List {
        #[command(flatten)]
        data: DataDirArgs,
    },
    /// Delete an access key.
    Delete {
        #[command(flatten)]
        data: DataDirArgs,
        access_key_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// Create a topic; prints its ARN.
    Create {
        #[command(flatten)]
        data: DataDirArgs,
        #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
        region: String,
        /// The account owning the topic (default: the data dir's bootstrap account).
        #[arg(long)]
        account: Option<String>,
        name: String,
    },
    /// List topics and their subscriptions (secrets are not shown).
    List {
        #[command(flatten)]
        data: DataDirArgs,
    },
    /// Delete a topic.
    Delete {
        #[command(flatten)]
        data: DataDirArgs,
        topic_arn: String,
    },
    /// Subscribe a webhook (HMAC-signed POSTs) or an SNS-compatible endpoint to a topic.
    Subscribe {
        #[command(flatten)]
        data: DataDirArgs,
        topic_arn: String,
        #[arg(long)]
        webhook: Option<String>,
        /// Webhook HMAC secret (16+ printable characters); generated when absent.
        #[arg(long, hide_env_values = true)]
        secret: Option<String>,
        #[arg(long)]
        sns_endpoint: Option<String>,
        #[arg(long)]
        sns_topic_arn: Option<String>,
        #[arg(long, default_value = "us-east-1")]
        sns_region: String,
        #[arg(long, env = "OPENTRAIL_SNS_ACCESS_KEY", hide_env_values = true)]
        sns_access_key: Option<String>,
        #[arg(long, env = "OPENTRAIL_SNS_SECRET_KEY", hide_env_values = true)]
        sns_secret_key: Option<String>,
        /// Allow a webhook on a loopback, private, link-local, unique-local or
        /// unspecified address (refused by default, also when a host name resolves there).
        #[arg(long)]
        allow_private_targets: bool,
    },
    /// Remove a subscription.
    Unsubscribe {
        #[command(flatten)]
        data: DataDirArgs,
        subscription_arn: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum BucketsCommand {
    /// Create a bucket.
    Create {
        #[command(flatten)]
        data: DataDirArgs,
        #[command(flatten)]
        s3: S3Args,
        /// The account owning an embedded bucket (default: the data dir's bootstrap
        /// account); only it may name the bucket in a trail.
        #[arg(long)]
        account: Option<String>,
        name: String,
    },
    /// List buckets.
    List {
        #[command(flatten)]
        data: DataDirArgs,
        #[command(flatten)]
        s3: S3Args,
    },
    /// Remove an empty bucket.
    Delete {
        #[command(flatten)]
        data: DataDirArgs,
        #[command(flatten)]
        s3: S3Args,
        name: String,
    },
}

//! Command-line arguments of the client-side commands (`import`, `events`, `stores`, `query`,
//! `insights`, `validate`) and the argument groups the server's commands share with them.

use clap::{Args, Subcommand, ValueEnum};
use std::path::PathBuf;

/// How CLI commands reach a running server.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// The OpenTrail endpoint.
    #[arg(
        long,
        env = "OPENTRAIL_ENDPOINT",
        default_value = "http://127.0.0.1:7420"
    )]
    pub endpoint: String,
    /// Region of the requests (the SigV4 credential scope).
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub region: String,
    /// The data dir whose `credentials` file holds the key to use (when no key is given).
    #[arg(long, env = "OPENTRAIL_DATA_DIR", default_value = "./opentrail-data")]
    pub data_dir: PathBuf,
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    pub access_key_id: Option<String>,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub secret_access_key: Option<String>,
    /// PEM certificates to trust for an https endpoint (e.g. a self-signed
    /// `serve --tls-cert`), in addition to the public roots.
    #[arg(long, env = "OPENTRAIL_CA_BUNDLE")]
    pub ca_bundle: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(flatten)]
    pub s3: S3Args,
    /// A file, a directory or s3://bucket/prefix. Log files (`AWSLogs/.../CloudTrail/...`,
    /// `<account>_CloudTrail_...`) and Insights files (`CloudTrail-Insight`) are imported,
    /// digest files (`CloudTrail-Digest`) skipped, other `.json`/`.json.gz` files imported
    /// when they hold `{"Records":[...]}`, and the rest skipped with a warning.
    pub path: String,
    /// Where progress is kept so an interrupted import resumes; default under the data dir.
    #[arg(long)]
    pub state_file: Option<PathBuf>,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Largest request body sent, in bytes.
    #[arg(long, default_value_t = 1024 * 1024)]
    pub batch_bytes: usize,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Check the hash of every log file each digest file lists against the copy being
    /// imported (not the digests' signatures); a mismatch or a listed file missing fails
    /// the command after the import.
    #[arg(long)]
    pub validate_digests: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Where the trail's bucket lives (same flags as `serve`).
    #[command(flatten)]
    pub s3: S3Args,
    #[arg(long)]
    pub trail_arn: String,
    /// RFC 3339 time or epoch seconds.
    #[arg(long)]
    pub start_time: String,
    /// Default: now.
    #[arg(long)]
    pub end_time: Option<String>,
    /// Validate files in this bucket instead of the trail's.
    #[arg(long)]
    pub s3_bucket: Option<String>,
    /// Validate files under this prefix instead of the trail's.
    #[arg(long)]
    pub s3_prefix: Option<String>,
    /// The account whose logs are validated (default: the trail's).
    #[arg(long)]
    pub account_id: Option<String>,
    /// Print every file, not only the invalid ones.
    #[arg(long)]
    pub verbose: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Json,
    Csv,
}

#[derive(Debug, Clone, Args)]
pub struct LookupFilter {
    /// One lookup attribute as Key=Value (EventId, EventName, ReadOnly, Username,
    /// ResourceType, ResourceName, EventSource, AccessKeyId).
    #[arg(long)]
    pub attribute: Option<String>,
    /// RFC 3339 time or epoch seconds.
    #[arg(long)]
    pub start_time: Option<String>,
    #[arg(long)]
    pub end_time: Option<String>,
    /// `insight` for Insights events.
    #[arg(long)]
    pub event_category: Option<String>,
    /// Stop after this many events (all by default).
    #[arg(long)]
    pub max_items: Option<usize>,
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Look up events (newest first), paging automatically.
    Lookup {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        filter: LookupFilter,
        #[arg(long, value_enum, default_value = "table")]
        output: OutputFormat,
    },
    /// Download event history to a file, as the console's download does.
    Export {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        filter: LookupFilter,
        #[arg(long, value_enum, default_value = "json")]
        format: ExportFormat,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum StoresCommand {
    /// List the account's event data stores in the region (ListEventDataStores, every page).
    List {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long, value_enum, default_value = "table")]
        output: ListFormat,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ChartFormat {
    Chart,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum InsightsCommand {
    /// List the Insights events of the account and region (LookupEvents with
    /// EventCategory=insight, newest first, every page).
    List {
        #[command(flatten)]
        client: ClientArgs,
        /// RFC 3339 time or epoch seconds.
        #[arg(long)]
        start_time: Option<String>,
        #[arg(long)]
        end_time: Option<String>,
        /// Stop after this many events (all by default).
        #[arg(long)]
        max_items: Option<usize>,
        #[arg(long, value_enum, default_value = "table")]
        output: ListFormat,
    },
    /// Chart the counts of one API (ListInsightsMetricData, every page) with its baseline.
    Metrics {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long)]
        event_source: String,
        #[arg(long)]
        event_name: String,
        /// ApiCallRateInsight or ApiErrorRateInsight.
        #[arg(long, default_value = "ApiCallRateInsight")]
        insight_type: String,
        /// The error code (required for ApiErrorRateInsight).
        #[arg(long)]
        error_code: Option<String>,
        /// Seconds per period: 60, 300 or 3600.
        #[arg(long, default_value_t = 60)]
        period: u32,
        /// RFC 3339 time or epoch seconds (default: an hour before the end).
        #[arg(long)]
        start_time: Option<String>,
        /// RFC 3339 time or epoch seconds (default: now).
        #[arg(long)]
        end_time: Option<String>,
        #[arg(long, value_enum, default_value = "chart")]
        output: ChartFormat,
    },
}

#[derive(Debug, Clone, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The Lake SQL statement (`SELECT ... FROM <event data store id>`).
    pub sql: String,
    #[arg(long, value_enum, default_value = "table")]
    pub output: OutputFormat,
    /// No progress line on stderr while the query runs.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Args)]
pub struct DataDirArgs {
    /// Where OpenTrail keeps its state.
    #[arg(long, env = "OPENTRAIL_DATA_DIR", default_value = "./opentrail-data")]
    pub data_dir: PathBuf,
    /// The account id of this data dir; chosen at random on first start when absent.
    #[arg(long, env = "OPENTRAIL_ACCOUNT_ID")]
    pub account_id: Option<String>,
}

/// Where trail buckets live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ObjectStoreKind {
    /// Directories in DATA_DIR/buckets.
    File,
    /// An S3-compatible server (`--s3-endpoint` and its keys).
    S3,
}

#[derive(Debug, Clone, Args)]
pub struct S3Args {
    /// Where trail buckets live: `file` (DATA_DIR/buckets) or `s3` (the `--s3-*` server).
    #[arg(long = "object-store", env = "OPENTRAIL_OBJECT_STORE", value_enum, default_value_t = ObjectStoreKind::File)]
    pub object_store: ObjectStoreKind,
    /// The S3-compatible server of `--object-store s3`.
    #[arg(long, env = "OPENTRAIL_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    #[arg(long, env = "OPENTRAIL_S3_ACCESS_KEY", hide_env_values = true)]
    pub s3_access_key: Option<String>,
    #[arg(long, env = "OPENTRAIL_S3_SECRET_KEY", hide_env_values = true)]
    pub s3_secret_key: Option<String>,
    /// The signing region [default: us-east-1].
    #[arg(long, env = "OPENTRAIL_S3_REGION")]
    pub s3_region: Option<String>,
    /// Address buckets as http://endpoint/bucket (most self-hosted servers need this) [default: true].
    #[arg(long, env = "OPENTRAIL_S3_PATH_STYLE", action = clap::ArgAction::Set)]
    pub s3_path_style: Option<bool>,
}

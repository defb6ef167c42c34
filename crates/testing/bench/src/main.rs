//! `opentrail-bench`: benchmarks that start the real `opentrail` binary and drive it with
//! the AWS SDK for Rust, reporting latency percentiles and throughput.

mod audit_events;
mod bucket_watch;
mod dataset;
mod delivery;
mod delivery_latency;
mod events;
mod ingest;
mod lake_import;
mod latency;
mod log_retention;
mod moto;
mod server;
mod trail_run;
mod validate;
mod validate_runs;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "opentrail-bench",
    about = "Benchmarks against a real opentrail server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Sequential CreateTrail and DescribeTrails latency through aws-sdk-cloudtrail.
    ApiLatency(ApiLatencyArgs),
    /// POST /events throughput and ack latency on a directory of CloudTrail .json.gz files.
    Ingest(ingest::IngestArgs),
    /// PutAuditEvents throughput and ack latency (acknowledged after fsync) through a channel.
    AuditEvents(audit_events::AuditEventsArgs),
    /// Wall time of `opentrail import` on a directory of CloudTrail .json.gz files.
    Import(ingest::ImportArgs),
    /// CloudTrail Lake StartImport of a trail bucket into an event data store, end to end:
    /// seconds to COMPLETED, events/s, COUNT(*) check and server peak RSS.
    LakeImport(lake_import::LakeImportArgs),
    /// End-to-end delivery throughput of one trail into the embedded bucket store, and the
    /// gzip ratio of the delivered files against `gzip -6`.
    Delivery(delivery::DeliveryArgs),
    /// Time from an event's ack to its log file in the bucket, at a steady event rate.
    DeliveryLatency(delivery_latency::DeliveryLatencyArgs),
    /// Event log disk use over time while ingesting N events with a short
    /// `--event-log-retention`: it must plateau.
    LogRetention(log_retention::LogRetentionArgs),
    /// `opentrail validate` against `aws cloudtrail validate-logs` on a moto_server bucket.
    Validate(validate::ValidateArgs),
}

#[derive(Debug, clap::Args)]
pub struct ApiLatencyArgs {
    /// Timed requests per operation.
    #[arg(long, default_value_t = 1000)]
    requests: usize,
    /// Untimed requests per operation before measuring (connection setup, caches).
    #[arg(long, default_value_t = 50)]
    warmup: usize,
    /// The opentrail binary to start (build it with `cargo build --profile fast -p opentrail-server`).
    #[arg(long, default_value = "target/fast/opentrail")]
    opentrail_bin: PathBuf,
    /// Region of the SigV4 credential scope.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Trails present while DescribeTrails is measured.
    #[arg(long, default_value_t = 3)]
    describe_trails: usize,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Calls are sequential: one thread for the client leaves the other core to the server.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::ApiLatency(args) => runtime.block_on(latency::run(args)),
        Command::Ingest(args) => runtime.block_on(ingest::run_ingest(args)),
        Command::Import(args) => runtime.block_on(ingest::run_import(args)),
        Command::LakeImport(args) => runtime.block_on(lake_import::run(args)),
        Command::AuditEvents(args) => runtime.block_on(audit_events::run(args)),
        Command::Delivery(args) => runtime.block_on(delivery::run(args)),
        Command::DeliveryLatency(args) => runtime.block_on(delivery_latency::run(args)),
        Command::LogRetention(args) => runtime.block_on(log_retention::run(args)),
        Command::Validate(args) => runtime.block_on(validate::run(args)),
    }
}

//! The `opentrail` binary: `serve`, and the admin commands `keys` and `buckets`.

mod admin;
mod api;
mod audit;
mod auth;
mod client;
mod config;
mod datadir;
mod dispatch;
mod events_cli;
mod history_feed;
mod import;
mod ingest;
mod metrics;
mod parsed_records;
mod rate_limit;
mod self_audit;
mod serve;
mod topics;
mod trail_directory;
mod validate_cli;

use clap::Parser;

/// glibc's allocator spent a quarter of the ingest path's CPU in malloc/free under load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use config::{Cli, Command};

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("OPENTRAIL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve::serve(args)),
        Command::Keys(command) => admin::keys(command),
        Command::Buckets(command) => runtime.block_on(admin::buckets(command)),
        Command::Import(args) => runtime.block_on(import::import(args)),
        Command::Events(command) => runtime.block_on(events_cli::events(command)),
        Command::Topics(command) => topics::topics(command),
        Command::Validate(args) => runtime.block_on(validate_cli::validate(args)),
    }
}

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

/// mimalloc reads its options from the environment when the process loads.
const PURGE_DELAY_ENV: &str = "MIMALLOC_PURGE_DELAY";

/// mimalloc returns freed memory to the system a second after it was freed by default;
/// ingest frees several bytes for every byte it accepts, so at 100+ MB/s that second
/// alone holds a few hundred MB. The server runs itself again with a 250 ms delay (unless
/// the environment chose one): the peak RSS of a 1M-event import drops from ~560 to
/// ~440 MiB, while LookupEvents visibility under load stays as good (at 100 ms the
/// allocator's extra work doubled it). Returns only when that is not possible.
fn reexec_with_allocator_settings(cli: &Cli) {
    if !matches!(cli.command, Command::Serve(_)) || std::env::var_os(PURGE_DELAY_ENV).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    use std::os::unix::process::CommandExt;
    let failure = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(PURGE_DELAY_ENV, "250")
        .exec();
    eprintln!("warning: could not restart with {PURGE_DELAY_ENV}=250: {failure}");
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    reexec_with_allocator_settings(&cli);
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

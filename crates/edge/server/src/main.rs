//! The `opentrail` binary: `serve`, and the admin commands `keys` and `buckets`.

mod admin;
mod config;
mod dashboard_refresh;
mod datadir;
mod history_feed;
mod insights_directory;
mod lake;
mod log_cli;
mod log_retention;
mod serve;
mod topics;
mod trail_directory;

use clap::Parser;

/// glibc's allocator spent a quarter of the ingest path's CPU in malloc/free under load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use config::{Cli, Command};

/// mimalloc reads its options from the environment when the process loads.
const PURGE_DELAY_ENV: &str = "MIMALLOC_PURGE_DELAY";
/// See [`reexec_with_allocator_settings`].
const PURGE_DELAY_MS: &str = "25";
/// mimalloc's option for how freed memory goes back to the system: `1` (its default)
/// unmaps it (`MADV_DONTNEED`), `0` marks it free for the kernel to take when it needs it
/// (`MADV_FREE`).
const PURGE_DECOMMITS_ENV: &str = "MIMALLOC_PURGE_DECOMMITS";
/// See [`reexec_with_allocator_settings`].
const PURGE_DECOMMITS: &str = "0";

/// mimalloc returns freed memory to the system a second after it was freed by default;
/// ingest and event history allocate and free ~9 KB per event, so at 150k events/s the
/// memory freed but not yet returned alone is ~1 GB/s times that delay. The server runs
/// itself again with a 25 ms delay (unless the environment chose one): importing 10M
/// events peaks at ~490 MiB instead of ~700 MiB (250 ms) for ~10 % of import throughput,
/// and LookupEvents visibility under load is unchanged (p99 0.3 s at 50k events/s).
///
/// It returns that memory with `MADV_FREE` instead of unmapping it: the lake writer reuses
/// ~200 MB a batch, and unmapped memory faults back in page by page, a fifth of the
/// writer's CPU. Pages given back with `MADV_FREE` are not faulted in again unless the
/// kernel took them meanwhile, which it does before it would swap or run out of memory.
/// They still count in the process's RSS (as `LazyFree` in `/proc/PID/smaps_rollup`):
/// writing 1M events the RSS is ~420 MB of which ~200 MB lazily free, against ~300 MB
/// with unmapping, and the writer is a third faster (the lake-bench README has the runs).
/// Returns only when running again is not possible.
fn reexec_with_allocator_settings(cli: &Cli) {
    if !matches!(cli.command, Command::Serve(_))
        || std::env::var_os(PURGE_DELAY_ENV).is_some()
        || std::env::var_os(PURGE_DECOMMITS_ENV).is_some()
    {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    use std::os::unix::process::CommandExt;
    let failure = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(PURGE_DELAY_ENV, PURGE_DELAY_MS)
        .env(PURGE_DECOMMITS_ENV, PURGE_DECOMMITS)
        .exec();
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "warning: could not restart with {PURGE_DELAY_ENV}={PURGE_DELAY_MS} \
         {PURGE_DECOMMITS_ENV}={PURGE_DECOMMITS}: {failure}"
    );
}

/// How long the runtime waits for tasks `serve` left running when it returned.
const SHUTDOWN_LEFTOVERS: std::time::Duration = std::time::Duration::from_millis(500);

/// Everything OpenTrail writes (metadata with secret keys, signing keys, events, spooled
/// log files) is for the owner only, from the first byte of each file.
fn private_files() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

fn main() -> anyhow::Result<()> {
    private_files();
    let cli = Cli::parse();
    reexec_with_allocator_settings(&cli);
    opentrail_http::logging::init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve(args) => {
            let served = runtime.block_on(serve::serve(args));
            // serve bounds its own shutdown; a blocking task it gave up on (a history flush,
            // a cut request's fsync) must not hold the exit.
            runtime.shutdown_timeout(SHUTDOWN_LEFTOVERS);
            served
        }
        Command::Accounts(command) => admin::accounts(command),
        Command::Keys(command) => admin::keys(command),
        Command::Buckets(command) => runtime.block_on(admin::buckets(command)),
        Command::Import(args) => runtime.block_on(opentrail_cli::import::import(args)),
        Command::Events(command) => runtime.block_on(opentrail_cli::events_cli::events(command)),
        Command::Stores(command) => runtime.block_on(opentrail_cli::stores_cli::stores(command)),
        Command::Query(args) => runtime.block_on(opentrail_cli::query_cli::query(args)),
        Command::Insights(command) => {
            runtime.block_on(opentrail_cli::insights_cli::insights(command))
        }
        Command::Topics(command) => topics::topics(command),
        Command::Validate(args) => runtime.block_on(opentrail_cli::validate_cli::validate(args)),
        Command::Log(command) => log_cli::log(command),
    }
}

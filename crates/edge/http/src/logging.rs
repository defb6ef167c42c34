//! Logging to stderr that never takes work down with it: a line that cannot be written
//! (full disk, closed pipe) is counted and dropped, never a panic.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

static DROPPED_LINES: AtomicU64 = AtomicU64::new(0);

/// stderr, ignoring write errors (`eprintln!`, and tracing's own error report, panic on them).
struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if std::io::stderr().lock().write_all(buf).is_err() {
            DROPPED_LINES.fetch_add(1, Ordering::Relaxed);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("OPENTRAIL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| Stderr)
        .log_internal_errors(false)
        .init();
}

pub fn render_metrics() -> String {
    format!(
        "# HELP opentrail_log_lines_dropped_total Log lines that could not be written to stderr.\n\
         # TYPE opentrail_log_lines_dropped_total counter\n\
         opentrail_log_lines_dropped_total {}\n",
        DROPPED_LINES.load(Ordering::Relaxed)
    )
}

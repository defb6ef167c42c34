//! Re-compresses the delivered files' content with the system `gzip -6` to compare sizes.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context;
use opentrail_delivery::cpu_time::measure;
use opentrail_delivery::log_file::{gunzip_single_member, gzip_single_member};
use opentrail_objstore::ObjectStore;

pub struct Compared {
    pub files: usize,
    pub uncompressed_bytes: u64,
    pub ours_bytes: u64,
    /// CPU seconds of compressing the same content again with our gzip, one thread.
    pub ours_seconds: f64,
    pub gzip6_bytes: u64,
    /// CPU seconds of the `gzip -6` processes.
    pub gzip6_seconds: f64,
}

pub async fn against_gzip_6(store: &dyn ObjectStore, bucket: &str) -> anyhow::Result<Compared> {
    let mut compared = Compared {
        files: 0,
        uncompressed_bytes: 0,
        ours_bytes: 0,
        ours_seconds: 0.0,
        gzip6_bytes: 0,
        gzip6_seconds: 0.0,
    };
    for object in store.list_objects(bucket, "").await? {
        if !object.key.contains("/CloudTrail/") {
            continue;
        }
        let body = store
            .get_object(bucket, &object.key)
            .await?
            .context("listed object vanished")?
            .body;
        let content = gunzip_single_member(&body)?;
        let content_len = content.len() as u64;
        let (ours, (size, seconds)) = tokio::task::spawn_blocking(move || {
            let (_, ours) = measure(|| gzip_single_member(&content));
            gzip_6(&content).map(|gzip6| (ours, gzip6))
        })
        .await??;
        compared.ours_seconds += ours.as_secs_f64();
        compared.files += 1;
        compared.uncompressed_bytes += content_len;
        compared.ours_bytes += body.len() as u64;
        compared.gzip6_bytes += size;
        compared.gzip6_seconds += seconds;
    }
    Ok(compared)
}

/// Compressed size and CPU seconds of `gzip -6 -n` on `content`.
fn gzip_6(content: &[u8]) -> anyhow::Result<(u64, f64)> {
    let before = children_cpu_seconds();
    let started = Instant::now();
    let mut child = Command::new("gzip")
        .args(["-6", "-n", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("run gzip")?;
    let mut stdin = child.stdin.take().context("gzip stdin")?;
    let input = content.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output()?;
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("gzip writer thread panicked"))??;
    anyhow::ensure!(output.status.success(), "gzip -6 failed");
    let seconds = match (before, children_cpu_seconds()) {
        (Some(before), Some(after)) => after - before,
        _ => started.elapsed().as_secs_f64(),
    };
    Ok((output.stdout.len() as u64, seconds))
}

/// CPU time of this process's waited-for children (`cutime` + `cstime` of
/// `/proc/self/stat`, in Linux's 100 Hz clock ticks).
fn children_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 16 and 17 of the whole line; `after_name` starts at field 3.
    let ticks: u64 = fields.get(13)?.parse::<u64>().ok()? + fields.get(14)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

//! The DuckDB comparison: the same files loaded with `read_json`, the same lookups as
//! `WHERE ... ORDER BY event_time DESC LIMIT 50` (see duckdb_bench.py).

use crate::latency::{summarize, Summary};
use crate::workload::QuerySpec;
use anyhow::{Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

const SCRIPT: &str = include_str!("duckdb_bench.py");

#[derive(Deserialize)]
struct Timing {
    kind: String,
    ms: f64,
    rows: usize,
}

#[derive(Deserialize)]
struct Results {
    load_seconds: f64,
    rows: u64,
    db_bytes: u64,
    timings: Vec<Timing>,
}

pub fn compare(
    python: &Path,
    data: &Path,
    dir: &Path,
    specs: &[QuerySpec],
    ours: &BTreeMap<String, Summary>,
    threads: usize,
    reuse_results: bool,
) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let script = dir.join("duckdb_bench.py");
    let queries = dir.join("queries.json");
    let results = dir.join("results.json");
    let specs_json = serde_json::to_vec(specs)?;
    println!("\n== DuckDB ({}), {threads} threads", python.display());
    if reuse_results {
        let earlier = std::fs::read(&queries).context("reading the earlier DuckDB queries")?;
        anyhow::ensure!(
            earlier == specs_json,
            "the earlier DuckDB run used other lookups"
        );
        println!("(figures from the earlier run in {})", dir.display());
    } else {
        std::fs::write(&script, SCRIPT)?;
        std::fs::write(&queries, &specs_json)?;
        let status = std::process::Command::new(python)
            .arg(&script)
            .arg(data)
            .arg(dir.join("ct.duckdb"))
            .arg(&queries)
            .arg(&results)
            .arg(threads.to_string())
            .status()
            .context("running the DuckDB script")?;
        anyhow::ensure!(status.success(), "DuckDB script failed: {status}");
    }
    let results: Results = serde_json::from_slice(&std::fs::read(&results)?)?;
    println!(
        "load: {} management events in {:.1} s ({:.0} events/s); database {:.1} bytes/event",
        results.rows,
        results.load_seconds,
        results.rows as f64 / results.load_seconds,
        results.db_bytes as f64 / results.rows.max(1) as f64
    );
    let mut per_kind: BTreeMap<String, (Vec<f64>, usize)> = BTreeMap::new();
    for timing in results.timings {
        let entry = per_kind.entry(timing.kind).or_default();
        entry.0.push(timing.ms);
        entry.1 += timing.rows;
    }
    println!(
        "{:<13} {:>11} {:>11} {:>12} {:>12} {:>10}",
        "kind", "duck p50", "duck p99", "p50 ratio", "p99 ratio", "avg rows"
    );
    for (kind, (millis, rows)) in per_kind {
        let duck = summarize(millis, rows);
        let mine = ours.get(&kind).cloned().unwrap_or_default();
        println!(
            "{kind:<13} {:>11.3} {:>11.3} {:>11.1}x {:>11.1}x {:>10.1}",
            duck.p50_ms,
            duck.p99_ms,
            duck.p50_ms / mine.p50_ms,
            duck.p99_ms / mine.p99_ms,
            rows as f64 / duck.count.max(1) as f64
        );
    }
    Ok(())
}

//! CloudTrail Lake benchmark: loads CloudTrail `.json.gz` files into one all-events event
//! data store through the embedded event log and `LakeWriter` (writer throughput, bytes per
//! event), then times the reference queries with OpenTrail's `DataFusionEngine`. The DuckDB
//! side of the comparison is `duckdb_bench.py` next to this crate; `run.sh` runs both.

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::{Parser, Subcommand};
use opentrail_lake::{
    ContextKeys, DataFusionEngine, FederatedStore, FederationState, LakeStorage, LakeWriter,
    QueryEngine, StoreCatalog, StoreSchema, StoreSpec, STANDARD_MAX_EVENT_BYTES,
};
use opentrail_log::{DurableLog, EventLog, LogOptions};
use opentrail_selectors::{AdvancedEventSelector, AdvancedFieldSelector, Operator};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// The allocator the server runs with (its lake writer and query engine allocate through it).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The benchmark store: UUID-shaped like AWS's, the table name in the queries' SQL.
const STORE_ID: &str = "0e3a9c1b-7f2d-4c55-9a61-b3e0c4d2f8a7";
/// Every record's `recipientAccountId` becomes this account (same length, so each record
/// keeps its size), as a store holds one account's events.
const ACCOUNT: &str = "111122223333";
/// Records per append to the event log.
const APPEND_RECORDS: usize = 10_000;

#[derive(Parser)]
#[command(about = "CloudTrail Lake benchmark: lake writer and reference queries")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Loads CloudTrail `.json.gz` files into one all-events store (event log → LakeWriter).
    Load {
        /// Folder holding the `.json.gz` files (searched recursively).
        #[arg(long)]
        input: PathBuf,
        /// Folder for the event log (`log/`) and the lake (`lake/`); must not exist.
        #[arg(long)]
        out: PathBuf,
        /// Keep the event log after loading (deleted by default: it is ~1.4 KB per event).
        #[arg(long)]
        keep_log: bool,
        /// Federate the store (EnableFederation): the writer keeps its Iceberg table
        /// current as it writes. Compare `writer_seconds` with a run without it.
        #[arg(long)]
        federate: bool,
        #[arg(long)]
        json: bool,
    },
    /// Runs each query of a file `--runs` times with DataFusionEngine; prints p50/p90.
    Query {
        /// The `out` folder of `load`.
        #[arg(long)]
        out: PathBuf,
        /// Queries: `-- name: <name>` lines, each followed by one statement over `$EDS`.
        #[arg(long)]
        queries: PathBuf,
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Run only these queries (by name, comma-separated).
        #[arg(long)]
        only: Option<String>,
        /// Also write the results as JSON to this file.
        #[arg(long)]
        json_out: Option<PathBuf>,
        /// Group with DataFusion's own grouping alone (the engine's grouping by bit
        /// patterns off), for comparison.
        #[arg(long)]
        datafusion_grouping: bool,
        /// Decode every column a query reads and filter after, instead of evaluating
        /// filters while Parquet is decoded, for comparison.
        #[arg(long)]
        no_filter_pushdown: bool,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match cli.command {
        Command::Load {
            input,
            out,
            keep_log,
            federate,
            json,
        } => runtime.block_on(load(&input, &out, keep_log, federate, json)),
        Command::Query {
            out,
            queries,
            runs,
            only,
            json_out,
            datafusion_grouping,
            no_filter_pushdown,
        } => runtime.block_on(query(
            &out,
            &queries,
            runs,
            only.as_deref(),
            json_out.as_deref(),
            !datafusion_grouping,
            !no_filter_pushdown,
        )),
    }
}

/// The `.json.gz` files under `dir`, oldest first by the time in their names (the order a
/// trail delivers them), then by path.
fn input_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in
            std::fs::read_dir(&folder).with_context(|| format!("reading {}", folder.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                folders.push(path);
            } else if path.to_string_lossy().ends_with(".json.gz") {
                files.push(path);
            }
        }
    }
    // <acct>_CloudTrail_<region>_YYYYMMDDTHHMMZ_<rand>.json.gz
    let key = |path: &PathBuf| {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let stamp = name.rsplit('_').nth(1).unwrap_or_default().to_string();
        (stamp, path.clone())
    };
    files.sort_by_key(key);
    Ok(files)
}

/// The records of one log file, each with `recipientAccountId` set to [`ACCOUNT`].
fn read_records(path: &Path) -> Result<Vec<Bytes>> {
    let mut text = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path)?).read_to_end(&mut text)?;
    let records = split_records(&text).with_context(|| format!("parsing {}", path.display()))?;
    const KEY: &[u8] = b"\"recipientAccountId\":\"";
    Ok(records
        .into_iter()
        .map(|raw| {
            let mut record = raw.to_vec();
            if let Some(at) = memchr_find(&record, KEY) {
                let start = at + KEY.len();
                if record.len() >= start + ACCOUNT.len() {
                    record[start..start + ACCOUNT.len()].copy_from_slice(ACCOUNT.as_bytes());
                }
            }
            Bytes::from(record)
        })
        .collect())
}

/// The exact text of each object in the `Records` array of a CloudTrail log file
/// (`{"Records":[{...},{...}]}`), found by tracking nesting outside strings.
fn split_records(text: &[u8]) -> Result<Vec<&[u8]>> {
    const KEY: &[u8] = b"\"Records\"";
    let Some(at) = memchr_find(text, KEY) else {
        bail!("no Records array");
    };
    let mut position = at + KEY.len();
    while position < text.len() && text[position] != b'[' {
        position += 1;
    }
    let (mut records, mut depth, mut in_string, mut escaped, mut start) =
        (Vec::new(), 0usize, false, false, 0);
    for (index, &byte) in text.iter().enumerate().skip(position + 1) {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                if depth == 0 {
                    start = index;
                }
                depth += 1;
            }
            b'}' | b']' => {
                if depth == 0 {
                    return Ok(records); // the end of the Records array
                }
                depth -= 1;
                if depth == 0 {
                    records.push(&text[start..=index]);
                }
            }
            _ => {}
        }
    }
    bail!("unterminated Records array")
}

fn memchr_find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn store_spec() -> StoreSpec {
    StoreSpec {
        id: STORE_ID.to_string(),
        account: ACCOUNT.to_string(),
        home_region: "us-east-1".to_string(),
        multi_region: true,
        advanced_selectors: vec![AdvancedEventSelector {
            name: Some("All management and data events".to_string()),
            field_selectors: vec![AdvancedFieldSelector::new("eventCategory")
                .with(Operator::Equals, ["Management", "Data"])],
        }],
        ingestion_enabled: true,
        retention_days: 3653,
        // The store collects every record of the benchmark's log.
        from_offset: 0,
        until_offset: None,
        insights_from: None,
        schema: StoreSchema::CloudTrailEvents,
        channels: vec![],
        max_event_bytes: STANDARD_MAX_EVENT_BYTES,
        context_keys: ContextKeys::default(),
    }
}

fn dir_bytes(dir: &Path) -> Result<(u64, usize)> {
    let (mut bytes, mut files) = (0, 0);
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                folders.push(entry.path());
            } else if entry.path().extension().is_some_and(|e| e == "parquet") {
                bytes += entry.metadata()?.len();
                files += 1;
            }
        }
    }
    Ok((bytes, files))
}

/// The benchmark's store, federated (its Iceberg table enabled from the start).
struct FederatedCatalog(Vec<StoreSpec>);

impl StoreCatalog for FederatedCatalog {
    fn stores(&self) -> opentrail_lake::Result<Vec<StoreSpec>> {
        Ok(self.0.clone())
    }

    fn federated(&self) -> opentrail_lake::Result<Vec<FederatedStore>> {
        Ok(vec![FederatedStore {
            id: STORE_ID.to_string(),
            schema: StoreSchema::CloudTrailEvents,
            state: FederationState::Enabled,
        }])
    }
}

async fn load(input: &Path, out: &Path, keep_log: bool, federate: bool, json: bool) -> Result<()> {
    if out.exists() {
        bail!("{} exists; give a new folder", out.display());
    }
    let files = input_files(input)?;
    if files.is_empty() {
        bail!("no .json.gz files under {}", input.display());
    }
    let log_dir = out.join("log");
    let lake_dir = out.join("lake");
    let log = EventLog::open(&log_dir, LogOptions::default())?;

    // 1. Into the event log (read, gunzip, split; appended in groups of APPEND_RECORDS).
    let started = Instant::now();
    let (mut events, mut record_bytes, mut pending) = (0u64, 0u64, Vec::new());
    for file in &files {
        for record in read_records(file)? {
            events += 1;
            record_bytes += record.len() as u64;
            pending.push(record);
            if pending.len() == APPEND_RECORDS {
                log.append(std::mem::take(&mut pending)).await?;
            }
        }
    }
    if !pending.is_empty() {
        log.append(pending).await?;
    }
    let log_seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "event log: {events} events ({:.1} MB of records) from {} files in {log_seconds:.1} s",
        record_bytes as f64 / 1e6,
        files.len()
    );

    // 2. The lake writer alone: log → Parquet, as the server's writer task does.
    let storage = LakeStorage::local(&lake_dir)?;
    let log: Arc<dyn DurableLog> = Arc::new(log);
    let catalog: Arc<dyn StoreCatalog> = if federate {
        Arc::new(FederatedCatalog(vec![store_spec()]))
    } else {
        Arc::new(vec![store_spec()])
    };
    let writer = LakeWriter::new(Arc::clone(&log), catalog, storage.clone());
    let started = Instant::now();
    let cpu_before = process_cpu_seconds();
    let reached = writer.catch_up().await?;
    let write_seconds = started.elapsed().as_secs_f64();
    // CPU time is steadier than wall time on a shared machine: what A/B comparisons use.
    let write_cpu_seconds = process_cpu_seconds().zip(cpu_before).map(|(a, b)| a - b);
    let (written_bytes, written_files) = dir_bytes(&lake_dir)?;
    let table_version = storage.federation_version(STORE_ID).await?;
    if federate {
        eprintln!("federation: the store's Iceberg table is at version {table_version}");
    }
    eprintln!(
        "lake writer: {events} events in {write_seconds:.2} s = {:.0} events/s; CPU {}; {written_files} files, {:.1} B/event",
        events as f64 / write_seconds,
        write_cpu_seconds.map_or("unknown".to_string(), |cpu| format!(
            "{cpu:.2} s = {:.2} µs/event",
            cpu * 1e6 / events as f64
        )),
        written_bytes as f64 / events as f64
    );
    if reached != events {
        bail!("the writer reached offset {reached}, expected {events}");
    }

    // 3. Compaction, as the writer's maintenance does every 10 minutes.
    let started = Instant::now();
    let merged = writer.compact().await?;
    let compact_seconds = started.elapsed().as_secs_f64();
    let (bytes, lake_files) = dir_bytes(&lake_dir)?;
    drop(writer);
    drop(log);
    if !keep_log {
        std::fs::remove_dir_all(&log_dir)?;
    }
    let summary = serde_json::json!({
        "events": events,
        "input_files": files.len(),
        "record_bytes": record_bytes,
        "log_append_seconds": log_seconds,
        "writer_seconds": write_seconds,
        "writer_events_per_second": events as f64 / write_seconds,
        "writer_cpu_seconds": write_cpu_seconds,
        "files_written": written_files,
        "bytes_written": written_bytes,
        "compact_seconds": compact_seconds,
        "files_merged": merged,
        "lake_files": lake_files,
        "lake_bytes": bytes,
        "bytes_per_event": bytes as f64 / events as f64,
        "store": STORE_ID,
        "federated": federate,
        "iceberg_table_version": table_version,
        "parquet_glob": format!("{}/{STORE_ID}/*/*.parquet", lake_dir.display()),
    });
    std::fs::write(
        out.join("load.json"),
        serde_json::to_string_pretty(&summary)?,
    )?;
    if json {
        println!("{summary}");
    } else {
        println!(
            "loaded {events} events: writer {:.0} events/s ({write_seconds:.2} s); compaction merged {merged} files in {compact_seconds:.2} s; {lake_files} files, {:.1} MB, {:.1} B/event (records {:.1} B/event uncompressed)",
            events as f64 / write_seconds,
            bytes as f64 / 1e6,
            bytes as f64 / events as f64,
            record_bytes as f64 / events as f64,
        );
    }
    Ok(())
}

/// User and system CPU time of this process so far (Linux: `/proc/self/stat`, in clock
/// ticks of 1/100 s); None where that cannot be read.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at state, field 3.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = rest.split_whitespace().skip(11);
    let user: f64 = fields.next()?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    Some((user + system) / 100.0)
}

/// `-- name: x` then the statement, up to the next name line.
pub fn parse_queries(text: &str) -> Vec<(String, String)> {
    let mut queries: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.trim().strip_prefix("-- name:") {
            queries.push((name.trim().to_string(), String::new()));
        } else if let Some((_, sql)) = queries.last_mut() {
            if !line.trim_start().starts_with("--") && !line.trim().is_empty() {
                sql.push_str(line.trim_end());
                sql.push('\n');
            }
        }
    }
    for (_, sql) in &mut queries {
        *sql = sql.trim().trim_end_matches(';').to_string();
    }
    queries
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

async fn query(
    out: &Path,
    queries: &Path,
    runs: usize,
    only: Option<&str>,
    json_out: Option<&Path>,
    group_by_bits: bool,
    filter_pushdown: bool,
) -> Result<()> {
    let storage = LakeStorage::local(&out.join("lake"))?;
    let engine = DataFusionEngine::new(storage)
        .with_group_by_bits(group_by_bits)
        .with_filter_pushdown(filter_pushdown);
    let stores = vec![STORE_ID.to_string()];
    let text = std::fs::read_to_string(queries)?;
    let wanted: Option<Vec<&str>> = only.map(|names| names.split(',').collect());
    let mut results = Vec::new();
    for (name, sql) in parse_queries(&text) {
        if wanted
            .as_ref()
            .is_some_and(|wanted| !wanted.contains(&name.as_str()))
        {
            continue;
        }
        let sql = sql.replace("$EDS", STORE_ID);
        // A whole-table result is streamed and counted, never held (see README).
        let streamed = name.starts_with("d_");
        let mut times = Vec::with_capacity(runs);
        let (mut rows, mut scanned, mut bytes_scanned) = (0, 0, 0);
        for _ in 0..runs {
            let started = Instant::now();
            if streamed {
                let (count, stats) = engine.run_counting(&sql, &stores).await?;
                rows = count;
                scanned = stats.events_scanned;
                bytes_scanned = stats.bytes_scanned;
            } else {
                let output = engine
                    .run(&sql, &stores)
                    .await
                    .with_context(|| format!("query {name}"))?;
                rows = output.rows.len() as u64;
                scanned = output.statistics.events_scanned;
                bytes_scanned = output.statistics.bytes_scanned;
            }
            times.push(started.elapsed().as_secs_f64());
        }
        let mut sorted = times.clone();
        sorted.sort_by(f64::total_cmp);
        let (p50, p90) = (percentile(&sorted, 50.0), percentile(&sorted, 90.0));
        {
            println!(
                "{name:<26} p50 {:>9.1} ms  p90 {:>9.1} ms  rows {rows:>9}  scanned {scanned:>9} events, {:.1} MB",
                p50 * 1e3,
                p90 * 1e3,
                bytes_scanned as f64 / 1e6
            );
        }
        results.push(serde_json::json!({
            "name": name, "engine": "opentrail", "p50_ms": p50 * 1e3, "p90_ms": p90 * 1e3,
            "times_ms": times.iter().map(|t| t * 1e3).collect::<Vec<_>>(),
            "rows": rows, "events_scanned": scanned, "bytes_scanned": bytes_scanned,
        }));
    }
    if let Some(path) = json_out {
        std::fs::write(
            path,
            serde_json::to_string_pretty(&serde_json::Value::Array(results))?,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_file_parses_into_named_statements() {
        let parsed = parse_queries(
            "-- comment before\n-- name: a\nSELECT 1\nFROM $EDS;\n\n-- name: b_x\n-- note\nSELECT 2\n",
        );
        assert_eq!(
            parsed,
            vec![
                ("a".to_string(), "SELECT 1\nFROM $EDS".to_string()),
                ("b_x".to_string(), "SELECT 2".to_string())
            ]
        );
    }

    #[test]
    fn nearest_rank_percentiles() {
        let sorted = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(percentile(&sorted, 50.0), 3.0);
        assert_eq!(percentile(&sorted, 90.0), 5.0);
        assert_eq!(percentile(&[7.0], 90.0), 7.0);
    }

    #[test]
    fn records_split_outside_strings() {
        let text = br#"{"Records":[{"a":"}{\"]","b":[1,{"c":2}]},{"d":null}]}"#;
        assert_eq!(
            split_records(text).unwrap(),
            vec![
                &br#"{"a":"}{\"]","b":[1,{"c":2}]}"#[..],
                &br#"{"d":null}"#[..]
            ]
        );
        assert!(split_records(br#"{"Records":[{"a":1}"#).is_err());
        assert!(split_records(br#"{"Other":[]}"#).is_err());
    }

    #[test]
    fn account_is_rewritten_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json.gz");
        let body = br#"{"Records":[{"eventName":"A","recipientAccountId":"999988887777"},{"eventName":"B"}]}"#;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut encoder, body).unwrap();
        std::fs::write(&path, encoder.finish().unwrap()).unwrap();
        let records = read_records(&path).unwrap();
        assert_eq!(
            records,
            vec![
                Bytes::from_static(br#"{"eventName":"A","recipientAccountId":"111122223333"}"#),
                Bytes::from_static(br#"{"eventName":"B"}"#),
            ]
        );
    }
}

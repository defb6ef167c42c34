//! `opentrail-bench lake-import`: CloudTrail Lake StartImport of a trail bucket into an
//! event data store, end to end. The input directory (gen_cloudtrail.py output, or
//! gen_single_log.py's one large file) is already in the trail key layout
//! (`AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/…`); its files are hard-linked into
//! the embedded bucket store's directory before the clock starts. Then StartImport →
//! GetImport `COMPLETED` is timed, `EventsCompleted` and a `SELECT COUNT(*)` are checked
//! against the input's record count, and the server's peak RSS is reported.

use crate::events::load_average;
use crate::server::{BenchServer, ACCOUNT_ID, BUCKET};
use anyhow::{bail, Context};
use aws_sdk_cloudtrail::types::{
    AdvancedEventSelector, AdvancedFieldSelector, ImportSource, ImportStatus, QueryStatus,
    S3ImportSource,
};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct LakeImportArgs {
    /// Directory in the trail key layout (AWSLogs/...): gen_cloudtrail.py or gen_single_log.py output.
    #[arg(long)]
    input: PathBuf,
    #[arg(long, default_value = "target/fast/opentrail")]
    opentrail_bin: PathBuf,
    /// Records in the input; counted from the files before the clock starts when absent.
    #[arg(long)]
    expected_events: Option<u64>,
    /// Give up waiting for the import after this many seconds.
    #[arg(long, default_value_t = 1800)]
    timeout_seconds: u64,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

const REGION: &str = "us-east-1";

pub async fn run(args: LakeImportArgs) -> anyhow::Result<()> {
    let files = log_files(&args.input)?;
    if files.is_empty() {
        bail!("no .json.gz files under {}", args.input.display());
    }
    let bytes: u64 = files
        .iter()
        .map(|(path, _)| std::fs::metadata(path).map(|m| m.len()).unwrap_or(0))
        .sum();
    let expected = match args.expected_events {
        Some(n) => n,
        None => {
            eprintln!("counting the records of {} files", files.len());
            let mut total = 0;
            for (path, _) in &files {
                total += count_records(path)?;
            }
            total
        }
    };
    let server = BenchServer::start(&args.opentrail_bin)?;
    let bucket_dir = server.local_buckets_root().join(BUCKET);
    for (path, relative) in &files {
        let target = bucket_dir.join(relative);
        std::fs::create_dir_all(target.parent().context("file without a parent")?)?;
        if std::fs::hard_link(path, &target).is_err() {
            std::fs::copy(path, &target)
                .with_context(|| format!("failed to copy {} into the bucket", path.display()))?;
        }
    }
    let client = server.cloudtrail_client(REGION);
    let store = client
        .create_event_data_store()
        .name("bench-lake-import")
        // The reference events are from 2024: with the default 366 days the lake writer's
        // retention (every 10 minutes) would drop them during a long run.
        .retention_period(3653)
        // An import copies every event of the files whatever the store's selectors; this
        // selector keeps out the events the server logs itself meanwhile (CreateEventDataStore,
        // StartImport, GetImport: management events), so COUNT(*) is the imported events.
        .advanced_event_selectors(
            AdvancedEventSelector::builder()
                .name("no live events")
                .field_selectors(
                    AdvancedFieldSelector::builder()
                        .field("eventCategory")
                        .equals("Data")
                        .build()?,
                )
                .field_selectors(
                    AdvancedFieldSelector::builder()
                        .field("resources.type")
                        .equals("AWS::DynamoDB::Table")
                        .build()?,
                )
                .build()?,
        )
        .send()
        .await
        .context("CreateEventDataStore")?;
    let store_arn = store
        .event_data_store_arn()
        .context("no event data store ARN")?
        .to_owned();
    let store_id = store_arn.rsplit('/').next().unwrap_or_default().to_owned();
    let rss_before = server.peak_rss_bytes();
    let cpu_before = server.cpu_seconds();
    let load = load_average();

    let started = Instant::now();
    let import = client
        .start_import()
        .destinations(&store_arn)
        .import_source(
            ImportSource::builder()
                .s3(S3ImportSource::builder()
                    .s3_location_uri(format!("s3://{BUCKET}"))
                    .s3_bucket_region(REGION)
                    .s3_bucket_access_role_arn(format!(
                        "arn:aws:iam::{ACCOUNT_ID}:role/bench-import"
                    ))
                    .build()?)
                .build(),
        )
        .send()
        .await
        .context("StartImport")?;
    let import_id = import.import_id().context("no import id")?.to_owned();
    let deadline = started + Duration::from_secs(args.timeout_seconds);
    let mut peak_rss_during = 0u64;
    let finished = loop {
        let status = client
            .get_import()
            .import_id(&import_id)
            .send()
            .await
            .context("GetImport")?;
        peak_rss_during = peak_rss_during.max(server.peak_rss_bytes().unwrap_or(0));
        match status.import_status() {
            Some(ImportStatus::Completed) => break status,
            Some(ImportStatus::Failed | ImportStatus::Stopped) => {
                let failures = client
                    .list_import_failures()
                    .import_id(&import_id)
                    .send()
                    .await
                    .map(|f| format!("{:?}", f.failures()))
                    .unwrap_or_default();
                bail!(
                    "import ended {:?}: {:?}; failures {failures}",
                    status.import_status(),
                    status.import_statistics()
                );
            }
            _ => {}
        }
        if Instant::now() > deadline {
            bail!("import not COMPLETED after {} s", args.timeout_seconds);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let elapsed = started.elapsed().as_secs_f64();
    // The server's CPU time over the import (GetImport polls included).
    let cpu = cpu_before
        .zip(server.cpu_seconds())
        .map(|(before, after)| after - before);
    let stats = finished
        .import_statistics()
        .context("GetImport has no ImportStatistics")?;
    let completed = stats.events_completed().unwrap_or(0);
    let files_completed = stats.files_completed().unwrap_or(0);

    let query_started = Instant::now();
    let counted = count_query(&client, &store_id).await?;
    let query_seconds = query_started.elapsed().as_secs_f64();
    let peak_rss = server.peak_rss_bytes();
    server.stop()?;

    let mib = |b: Option<u64>| b.map_or(-1.0, |b| b as f64 / (1 << 20) as f64);
    let rate = completed as f64 / elapsed;
    let cpu_micros_per_event = cpu.map(|cpu| cpu * 1e6 / completed.max(1) as f64);
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "files": files.len(), "gz_bytes": bytes, "expected_events": expected,
                "events_completed": completed, "files_completed": files_completed,
                "count_star": counted, "seconds": elapsed, "events_per_second": rate,
                "count_query_seconds": query_seconds, "server_cpu_seconds": cpu,
                "server_cpu_micros_per_event": cpu_micros_per_event,
                "server_peak_rss_mib_before_import": mib(rss_before),
                "server_peak_rss_mib": mib(peak_rss), "load_average_at_start": load })
        );
    } else {
        println!(
            "lake-import of {} ({} files, {:.0} MB gzipped): {completed} events in {elapsed:.2}s: {rate:.0} events/s; \
             server CPU {:.2}s ({:.1} µs/event); COUNT(*) {counted} ({query_seconds:.2}s); server peak RSS {:.0} MiB ({:.0} MiB before StartImport); load average {load} at start",
            args.input.display(),
            files.len(),
            bytes as f64 / 1e6,
            cpu.unwrap_or(f64::NAN),
            cpu_micros_per_event.unwrap_or(f64::NAN),
            mib(peak_rss),
            mib(rss_before),
        );
    }
    if completed as u64 != expected || counted != expected {
        bail!("expected {expected} events: EventsCompleted {completed}, COUNT(*) {counted}");
    }
    Ok(())
}

/// Every `.json.gz` file under `root`, with its path relative to `root`, sorted.
fn log_files(root: &Path) -> anyhow::Result<Vec<(PathBuf, PathBuf)>> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.to_string_lossy().ends_with(".json.gz") {
                let relative = path.strip_prefix(root)?.to_path_buf();
                found.push((path, relative));
            }
        }
    }
    found.sort();
    if let Some((_, first)) = found.first() {
        if !first.starts_with("AWSLogs") {
            bail!(
                "{} is not in the trail key layout (AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/)",
                root.display()
            );
        }
    }
    Ok(found)
}

/// The length of a gzipped `{"Records":[...]}` file's array, read as a stream.
fn count_records(path: &Path) -> anyhow::Result<u64> {
    struct Count(u64);
    impl<'de> serde::de::Visitor<'de> for &mut Count {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("{\"Records\":[...]}")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<String>()? {
                if key == "Records" {
                    map.next_value_seed(RecordsCount(&mut *self))?;
                } else {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
            Ok(())
        }
    }
    struct RecordsCount<'a>(&'a mut Count);
    impl<'de> serde::de::DeserializeSeed<'de> for RecordsCount<'_> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_seq(self)
        }
    }
    impl<'de> serde::de::Visitor<'de> for RecordsCount<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                self.0 .0 += 1;
            }
            Ok(())
        }
    }
    let file = std::fs::File::open(path)?;
    let reader: Box<dyn Read> = Box::new(flate2::read::MultiGzDecoder::new(
        std::io::BufReader::with_capacity(256 * 1024, file),
    ));
    let mut deserializer = serde_json::Deserializer::from_reader(
        std::io::BufReader::with_capacity(256 * 1024, reader),
    );
    let mut count = Count(0);
    serde::Deserializer::deserialize_map(&mut deserializer, &mut count).with_context(|| {
        format!(
            "{} is not a gzipped {{\"Records\":[...]}} file",
            path.display()
        )
    })?;
    Ok(count.0)
}

/// `SELECT COUNT(*)` over the store, through StartQuery and GetQueryResults.
async fn count_query(client: &aws_sdk_cloudtrail::Client, store_id: &str) -> anyhow::Result<u64> {
    let query = client
        .start_query()
        .query_statement(format!("SELECT COUNT(*) AS n FROM {store_id}"))
        .send()
        .await
        .context("StartQuery")?;
    let query_id = query.query_id().context("no query id")?.to_owned();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let results = client
            .get_query_results()
            .query_id(&query_id)
            .send()
            .await
            .context("GetQueryResults")?;
        match results.query_status() {
            Some(QueryStatus::Finished) => {
                let value = results
                    .query_result_rows()
                    .first()
                    .and_then(|row| row.first())
                    .and_then(|cell| cell.values().next())
                    .context("COUNT(*) returned no row")?;
                return value
                    .parse()
                    .with_context(|| format!("COUNT(*) returned {value}"));
            }
            Some(QueryStatus::Failed | QueryStatus::Cancelled | QueryStatus::TimedOut) => {
                bail!(
                    "COUNT(*) query ended {:?}: {:?}",
                    results.query_status(),
                    results.error_message()
                );
            }
            _ => {}
        }
        if Instant::now() > deadline {
            bail!("COUNT(*) query did not finish in 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

//! Every shipped sample query, and what GenerateQuery makes of the prompts the README
//! lists, parses as Lake SQL and plans on the Lake schema (DataFusion, over an empty store).

use opentrail_lake::{DataFusionEngine, LakeStorage, QueryEngine};
use opentrail_samples::{generate, SampleLibrary, EDS_PLACEHOLDER};

const STORE: &str = "5f0c4a42-9d1e-4c1b-8f7e-0a1b2c3d4e5f";

fn engine(dir: &tempfile::TempDir) -> DataFusionEngine {
    DataFusionEngine::new(LakeStorage::local(&dir.path().join("lake")).unwrap())
}

#[test]
fn library_has_enough_distinct_samples() {
    let library = SampleLibrary::builtin().unwrap();
    let samples = library.samples();
    assert!(samples.len() >= 60, "only {} samples", samples.len());
    let mut names: Vec<&str> = samples.iter().map(|s| s.name.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), samples.len(), "sample names must be unique");
    for sample in samples {
        assert!(!sample.description.is_empty(), "{}", sample.name);
        assert_eq!(
            sample.sql.matches(EDS_PLACEHOLDER).count(),
            1,
            "{}: the SQL must name the store once as {EDS_PLACEHOLDER}",
            sample.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_parses_and_plans_on_the_lake_schema() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir);
    let library = SampleLibrary::builtin().unwrap();
    let mut failures = Vec::new();
    for sample in library.samples() {
        let sql = sample.sql_for(STORE);
        match opentrail_lake::parse_query(&sql) {
            Ok(stores) if stores == [STORE] => {}
            Ok(stores) => failures.push(format!("{}: names stores {stores:?}", sample.name)),
            Err(e) => failures.push(format!("{}: does not parse: {e}", sample.name)),
        }
        if let Err(e) = engine.validate(&sql, &[STORE.to_owned()]).await {
            failures.push(format!("{}: does not plan: {e}", sample.name));
        }
        // And it runs (no rows yet).
        if let Err(e) = engine.run(&sql, &[STORE.to_owned()]).await {
            failures.push(format!("{}: does not run: {e}", sample.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The prompts the README promises GenerateQuery understands.
const PROMPTS: &[&str] = &[
    "top 10 users who called DeleteBucket in the last 7 days",
    "failed console logins yesterday",
    "count events by region",
    "how many errors per service in the last 24 hours",
    "root user activity this month",
    "access denied errors for s3 today",
    "events from 203.0.113.7 in the past week",
    "activity of access key AKIAIOSFODNN7EXAMPLE",
    "ec2 changes in us-west-2 last 3 days",
    "daily number of iam events over the last month",
    "which source ip addresses made the most calls",
    "console logins without mfa",
    "what did user 'alice' do today",
    "top 5 event names by count",
    "throttled calls by user agent",
    "hourly kms activity",
    "security groups opened to the internet",
    "s3 bucket policy changes",
    "who deleted buckets",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_queries_plan_on_the_lake_schema() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir);
    let library = SampleLibrary::builtin().unwrap();
    let mut failures = Vec::new();
    for prompt in PROMPTS {
        let Some(generated) = generate(&library, prompt, STORE) else {
            failures.push(format!("{prompt}: no query"));
            continue;
        };
        if let Err(e) = engine.validate(&generated.sql, &[STORE.to_owned()]).await {
            failures.push(format!("{prompt}: {e}\n{}", generated.sql));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

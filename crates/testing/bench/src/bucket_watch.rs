//! Watches a trail's bucket for new objects: lists a prefix on every poll and notes when
//! each object was first seen, so delivery times are known to within one poll interval.

use anyhow::Context;
use opentrail_objstore::ObjectStore;
use std::collections::HashSet;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An object seen for the first time.
#[derive(Debug, Clone)]
pub struct SeenObject {
    pub key: String,
    pub seen_at: Instant,
}

pub struct BucketWatcher {
    store: Arc<dyn ObjectStore>,
    bucket: String,
    prefix: String,
    seen: HashSet<String>,
}

impl BucketWatcher {
    pub fn new(store: Arc<dyn ObjectStore>, bucket: &str, prefix: &str) -> Self {
        Self {
            store,
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            seen: HashSet::new(),
        }
    }

    /// The objects that appeared since the last poll.
    pub async fn poll(&mut self) -> anyhow::Result<Vec<SeenObject>> {
        let listing = self
            .store
            .list_objects(&self.bucket, &self.prefix)
            .await
            .with_context(|| format!("failed to list s3://{}/{}", self.bucket, self.prefix))?;
        let seen_at = Instant::now();
        let mut new = Vec::new();
        for object in listing {
            if self.seen.insert(object.key.clone()) {
                new.push(SeenObject {
                    key: object.key,
                    seen_at,
                });
            }
        }
        Ok(new)
    }

    /// Polls every `every` in the background until `stop` is set; what it saw so far is in
    /// the returned list (take it with `std::mem::take`).
    pub fn spawn(
        mut self,
        every: Duration,
        stop: Arc<std::sync::atomic::AtomicBool>,
    ) -> (
        Arc<Mutex<Vec<SeenObject>>>,
        tokio::task::JoinHandle<anyhow::Result<()>>,
    ) {
        let found = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&found);
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                ticks.tick().await;
                let new = self.poll().await?;
                sink.lock()
                    .map_err(|_| anyhow::anyhow!("watcher list poisoned"))?
                    .extend(new);
            }
            Ok(())
        });
        (found, task)
    }
}

/// The decompressed body of a `.json.gz` object.
pub async fn read_gzip_object(
    store: &dyn ObjectStore,
    bucket: &str,
    key: &str,
) -> anyhow::Result<(u64, Vec<u8>)> {
    let object = store
        .get_object(bucket, key)
        .await
        .with_context(|| format!("failed to read s3://{bucket}/{key}"))?
        .with_context(|| format!("s3://{bucket}/{key} disappeared"))?;
    let body = object.body;
    let size = body.len() as u64;
    let text = tokio::task::spawn_blocking(move || {
        let mut text = Vec::new();
        flate2::read::MultiGzDecoder::new(&body[..])
            .read_to_end(&mut text)
            .map(|_| text)
    })
    .await?
    .with_context(|| format!("s3://{bucket}/{key} is not gzip"))?;
    Ok((size, text))
}

//! Digest chains: per (trail, region), the log files delivered in the current window,
//! the link to the last digest, and signed digests not yet written. Persisted on every
//! change, so a restart neither forgets a delivered log file nor breaks a chain.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::PathBuf;

use chrono::{DateTime, Duration, DurationRound, Utc};
use opentrail_model::{AccountId, Region, TrailArn, TrailName};
use serde::{Deserialize, Serialize};

use crate::batcher::Lane;
use crate::digest::{DigestLogFile, PreviousDigest, SignedDigest};
use crate::durable_file::{files_with_extension, remove_durably, write_atomically};
use crate::error::DeliveryError;
use crate::log_file::sha256_hex;
use crate::object_keys::digest_key;
use crate::routing::TrailTarget;

/// A log file written to the bucket, waiting for its window's digest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DeliveredLogFile {
    pub(crate) delivered_at: DateTime<Utc>,
    pub(crate) entry: DigestLogFile,
}

/// One digest chain.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ChainState {
    /// Unique among chains, also across a lane's successive chains.
    pub(crate) id: String,
    pub(crate) account: AccountId,
    pub(crate) name: TrailName,
    pub(crate) home_region: Region,
    pub(crate) region: Region,
    /// Where the next digest goes (the trail's current bucket and prefix).
    pub(crate) bucket: String,
    pub(crate) prefix: Option<String>,
    pub(crate) window_start: DateTime<Utc>,
    pub(crate) previous: Option<PreviousDigest>,
    pub(crate) log_files: Vec<DeliveredLogFile>,
    /// Signed digests not yet written, oldest first.
    pub(crate) pending: Vec<SignedDigest>,
    /// Logging or validation stopped: no more windows; forgotten once `pending` is written.
    pub(crate) closed: bool,
}

/// What a due window needs signed: everything but the signature.
#[derive(Debug, Clone)]
pub(crate) struct WindowToClose {
    pub(crate) chain: String,
    pub(crate) lane: Lane,
    pub(crate) account: AccountId,
    pub(crate) bucket: String,
    pub(crate) key: String,
    pub(crate) start: DateTime<Utc>,
    pub(crate) end: DateTime<Utc>,
    pub(crate) previous: Option<PreviousDigest>,
    pub(crate) log_files: Vec<DigestLogFile>,
}

/// A signed digest waiting to be written.
#[derive(Debug, Clone)]
pub(crate) struct PendingDigest {
    pub(crate) chain: String,
    pub(crate) trail: TrailArn,
    pub(crate) digest: SignedDigest,
}

impl ChainState {
    pub(crate) fn lane(&self) -> Lane {
        Lane {
            trail: TrailArn::new(
                self.home_region.clone(),
                self.account.clone(),
                self.name.clone(),
            ),
            region: self.region.clone(),
        }
    }

    /// The window ending at `end`, with the log files delivered before it (all of them
    /// for a chain's final window).
    fn window(&self, end: DateTime<Utc>, is_final: bool) -> WindowToClose {
        let prefix = self.prefix.as_deref();
        WindowToClose {
            chain: self.id.clone(),
            lane: self.lane(),
            account: self.account.clone(),
            bucket: self.bucket.clone(),
            key: digest_key(
                prefix,
                &self.account,
                &self.region,
                &self.name,
                &self.home_region,
                end,
            ),
            start: self.window_start,
            end,
            previous: self.previous.clone(),
            log_files: self
                .log_files
                .iter()
                .filter(|file| is_final || file.delivered_at < end)
                .map(|file| file.entry.clone())
                .collect(),
        }
    }
}

/// Every chain, by id.
#[derive(Debug)]
pub(crate) struct Chains {
    dir: PathBuf,
    chains: BTreeMap<String, ChainState>,
}

impl Chains {
    pub(crate) fn open(dir: PathBuf) -> Result<Chains, DeliveryError> {
        let mut chains = BTreeMap::new();
        let paths =
            files_with_extension(&dir, ".json").map_err(|e| DeliveryError::state(&dir, e))?;
        for path in paths {
            let text = fs::read(&path).map_err(|e| DeliveryError::state(&path, e))?;
            let chain: ChainState =
                serde_json::from_slice(&text).map_err(|e| DeliveryError::state(&path, e))?;
            chains.insert(chain.id.clone(), chain);
        }
        Ok(Chains { dir, chains })
    }

    fn open_chain_id(&self, lane: &Lane) -> Option<String> {
        self.chains
            .values()
            .find(|chain| !chain.closed && chain.lane() == *lane)
            .map(|chain| chain.id.clone())
    }

    /// Starts a chain for `lane` at `now` unless an open one exists; follows the trail's
    /// bucket and prefix either way. Returns the chain's id.
    pub(crate) fn ensure(
        &mut self,
        lane: &Lane,
        target: &TrailTarget,
        now: DateTime<Utc>,
    ) -> Result<String, DeliveryError> {
        let prefix = target.prefix().map(str::to_owned);
        if let Some(id) = self.open_chain_id(lane) {
            let chain = self.chains.get_mut(&id).expect("found above");
            if chain.bucket != target.s3_bucket || chain.prefix != prefix {
                chain.bucket = target.s3_bucket.clone();
                chain.prefix = prefix;
                self.persist(&id)?;
            }
            return Ok(id);
        }
        let start = whole_seconds(now);
        let mut id = format!("{}|{}|{}", lane.trail, lane.region, start.timestamp());
        while self.chains.contains_key(&id) {
            id.push('+');
        }
        let chain = ChainState {
            id: id.clone(),
            account: target.account.clone(),
            name: target.name.clone(),
            home_region: target.home_region.clone(),
            region: lane.region.clone(),
            bucket: target.s3_bucket.clone(),
            prefix,
            window_start: start,
            previous: None,
            log_files: Vec::new(),
            pending: Vec::new(),
            closed: false,
        };
        self.chains.insert(id.clone(), chain);
        self.persist(&id)?;
        Ok(id)
    }

    /// Points the trail's open chains at its current bucket and prefix.
    pub(crate) fn follow_target(
        &mut self,
        trail: &TrailArn,
        target: &TrailTarget,
    ) -> Result<(), DeliveryError> {
        let prefix = target.prefix().map(str::to_owned);
        let moved: Vec<String> = self
            .chains
            .values_mut()
            .filter(|chain| !chain.closed && &chain.lane().trail == trail)
            .filter(|chain| chain.bucket != target.s3_bucket || chain.prefix != prefix)
            .map(|chain| {
                chain.bucket = target.s3_bucket.clone();
                chain.prefix = prefix.clone();
                chain.id.clone()
            })
            .collect();
        for id in moved {
            self.persist(&id)?;
        }
        Ok(())
    }

    /// Records a written log file for the lane's next digest.
    pub(crate) fn add_log_file(
        &mut self,
        lane: &Lane,
        target: &TrailTarget,
        delivered_at: DateTime<Utc>,
        entry: DigestLogFile,
    ) -> Result<(), DeliveryError> {
        let id = self.ensure(lane, target, delivered_at)?;
        let chain = self.chains.get_mut(&id).expect("ensured above");
        if chain.log_files.iter().any(|file| {
            file.entry.s3_object == entry.s3_object && file.entry.s3_bucket == entry.s3_bucket
        }) {
            // The same file written again after a crash (same key, same bytes): listed once.
            return Ok(());
        }
        chain.log_files.push(DeliveredLogFile {
            delivered_at,
            entry,
        });
        self.persist(&id)
    }

    /// The oldest window that has ended by `now`, of any open chain.
    pub(crate) fn next_due_window(
        &self,
        now: DateTime<Utc>,
        interval: Duration,
    ) -> Option<WindowToClose> {
        self.chains
            .values()
            .filter(|chain| !chain.closed && chain.window_start + interval <= now)
            .min_by_key(|chain| chain.window_start)
            .map(|chain| chain.window(chain.window_start + interval, false))
    }

    /// The final windows of `trail`'s open chains, except the one in `keep`, ending at
    /// `now` (none for a chain whose window just ended at `now` without new files).
    /// Marks the chains closed.
    pub(crate) fn close_chains(
        &mut self,
        trail: &TrailArn,
        keep: Option<&Region>,
        now: DateTime<Utc>,
    ) -> Result<Vec<WindowToClose>, DeliveryError> {
        let now = whole_seconds(now);
        let ids: Vec<String> = self
            .chains
            .values()
            .filter(|chain| !chain.closed && &chain.lane().trail == trail)
            .filter(|chain| Some(&chain.region) != keep)
            .map(|chain| chain.id.clone())
            .collect();
        let mut finals = Vec::new();
        for id in ids {
            let chain = self.chains.get_mut(&id).expect("listed above");
            chain.closed = true;
            if now > chain.window_start {
                finals.push(chain.window(now, true));
            } else if !chain.log_files.is_empty() {
                // The last window just ended now: a one-second final window keeps the
                // files in a digest and its key distinct from the last digest's.
                finals.push(chain.window(now + Duration::seconds(1), true));
            }
            self.persist(&id)?;
        }
        Ok(finals)
    }

    /// Moves a chain past a window whose digest is signed: the digest becomes pending
    /// and the chain's link; the window's log files leave the chain.
    pub(crate) fn window_signed(
        &mut self,
        window: &WindowToClose,
        signed: SignedDigest,
    ) -> Result<(), DeliveryError> {
        let chain = self
            .chains
            .get_mut(&window.chain)
            .ok_or_else(|| DeliveryError::state(&self.dir, "chain vanished while signing"))?;
        let digested: HashSet<&str> = window
            .log_files
            .iter()
            .map(|f| f.s3_object.as_str())
            .collect();
        chain
            .log_files
            .retain(|file| !digested.contains(file.entry.s3_object.as_str()));
        chain.window_start = chain.window_start.max(window.end);
        chain.previous = Some(signed.as_previous());
        chain.pending.push(signed);
        self.persist(&window.chain)
    }

    /// The oldest unwritten digest of every chain that has one.
    pub(crate) fn pending(&self) -> Vec<PendingDigest> {
        self.chains
            .values()
            .filter_map(|chain| {
                chain.pending.first().map(|digest| PendingDigest {
                    chain: chain.id.clone(),
                    trail: chain.lane().trail,
                    digest: digest.clone(),
                })
            })
            .collect()
    }

    /// Forgets a written digest; a closed chain with nothing left is removed.
    pub(crate) fn digest_written(
        &mut self,
        chain_id: &str,
        key: &str,
    ) -> Result<(), DeliveryError> {
        let Some(chain) = self.chains.get_mut(chain_id) else {
            return Ok(());
        };
        chain.pending.retain(|digest| digest.key != key);
        if chain.closed && chain.pending.is_empty() {
            self.chains.remove(chain_id);
        }
        self.persist(chain_id)
    }

    /// Whether a chain lists the log file `bucket`/`key` for its next digest.
    pub(crate) fn lists_log_file(&self, bucket: &str, key: &str) -> bool {
        self.chains.values().any(|chain| {
            chain
                .log_files
                .iter()
                .any(|file| file.entry.s3_object == key && file.entry.s3_bucket == bucket)
        })
    }

    /// Whether `trail` has an open chain in a region other than `region`.
    pub(crate) fn has_open_chain_outside(&self, trail: &TrailArn, region: &Region) -> bool {
        self.chains
            .values()
            .any(|chain| !chain.closed && &chain.lane().trail == trail && &chain.region != region)
    }

    /// Trails with an open chain.
    pub(crate) fn open_trails(&self) -> Vec<TrailArn> {
        let mut trails: Vec<TrailArn> = Vec::new();
        for chain in self.chains.values().filter(|chain| !chain.closed) {
            let trail = chain.lane().trail;
            if !trails.contains(&trail) {
                trails.push(trail);
            }
        }
        trails
    }

    /// Writes the chain's state, or removes its file when the chain is gone.
    fn persist(&self, id: &str) -> Result<(), DeliveryError> {
        let path = self.path_for(id);
        let Some(chain) = self.chains.get(id) else {
            return remove_durably(&path).map_err(|e| DeliveryError::state(&path, e));
        };
        let state = serde_json::to_vec(chain).expect("chain serialises");
        write_atomically(&path, &state).map_err(|e| DeliveryError::state(&path, e))
    }

    fn path_for(&self, id: &str) -> PathBuf {
        let name = sha256_hex(id.as_bytes());
        self.dir.join(format!("{}.json", &name[..32]))
    }
}

fn whole_seconds(time: DateTime<Utc>) -> DateTime<Utc> {
    time.duration_trunc(Duration::seconds(1)).unwrap_or(time)
}

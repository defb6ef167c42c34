//! Digest chains: per (trail, region), the log files delivered in the current window,
//! the link to the last digest, and signed digests not yet written. Kept in the metadata
//! store (collection [`DIGEST_CHAINS`], one document per chain), written in one transaction
//! per change, so a restart neither forgets a delivered log file nor breaks a chain.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Duration, DurationRound, Utc};
use opentrail_meta::{MetaError, MetaStore, Transactions};
use opentrail_model::{AccountId, Region, TrailArn, TrailName};
use serde::{Deserialize, Serialize};

use crate::batcher::Lane;
use crate::digest::{DigestLogFile, PreviousDigest, SignedDigest};
use crate::durable_file::{files_with_extension, remove_durably};
use crate::error::DeliveryError;
use crate::object_keys::digest_key;
use crate::routing::TrailTarget;

/// Metadata documents: one digest chain each, keyed by the chain's id, the value its
/// [`ChainState`] as JSON.
pub const DIGEST_CHAINS: &str = "digest_chains";

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
            insight: false,
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

/// Every chain, by id, as stored in the metadata store.
pub(crate) struct Chains {
    meta: Arc<dyn MetaStore>,
    chains: BTreeMap<String, ChainState>,
    /// The open chain of each lane, by id.
    open: HashMap<Lane, String>,
}

impl std::fmt::Debug for Chains {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chains")
            .field("chains", &self.chains.len())
            .finish_non_exhaustive()
    }
}

fn meta_error(error: MetaError) -> DeliveryError {
    DeliveryError::Meta(error.to_string())
}

fn parse_chain(key: &str, value: &str) -> Result<ChainState, DeliveryError> {
    let chain: ChainState = serde_json::from_str(value)
        .map_err(|e| DeliveryError::Meta(format!("digest chain {key}: {e}")))?;
    if chain.id != key {
        return Err(DeliveryError::Meta(format!(
            "digest chain {key} names itself {}",
            chain.id
        )));
    }
    Ok(chain)
}

impl Chains {
    /// The chains in `meta`, after moving in the chain files an older version kept in
    /// `legacy_dir` (`<hash>.json`, one chain each). Blocking.
    pub(crate) fn open(
        meta: Arc<dyn MetaStore>,
        legacy_dir: &Path,
    ) -> Result<Chains, DeliveryError> {
        import_legacy_files(meta.as_ref(), legacy_dir)?;
        let mut chains = BTreeMap::new();
        let mut open = HashMap::new();
        for (key, value) in meta.list_documents(DIGEST_CHAINS).map_err(meta_error)? {
            let chain = parse_chain(&key, &value)?;
            if !chain.closed {
                open.insert(chain.lane(), chain.id.clone());
            }
            chains.insert(key, chain);
        }
        Ok(Chains { meta, chains, open })
    }

    /// Starts a chain for `lane` at `now` unless an open one exists; follows the trail's
    /// bucket and prefix either way. Returns the chain's id and whether it changed.
    fn ensure_unsaved(
        &mut self,
        lane: &Lane,
        target: &TrailTarget,
        now: DateTime<Utc>,
    ) -> (String, bool) {
        let prefix = target.prefix().map(str::to_owned);
        if let Some(id) = self.open.get(lane) {
            let chain = self.chains.get_mut(id).expect("open chains are chains");
            if chain.bucket == target.s3_bucket && chain.prefix == prefix {
                return (id.clone(), false);
            }
            chain.bucket = target.s3_bucket.clone();
            chain.prefix = prefix;
            return (id.clone(), true);
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
        self.open.insert(lane.clone(), id.clone());
        (id, true)
    }

    /// Makes sure `trail` has an open chain in each of `regions` (started at `now` where
    /// missing) and points all its open chains at its current bucket and prefix, in one
    /// transaction.
    pub(crate) fn ensure_trail(
        &mut self,
        trail: &TrailArn,
        target: &TrailTarget,
        regions: &[Region],
        now: DateTime<Utc>,
    ) -> Result<(), DeliveryError> {
        let mut changed = Vec::new();
        for region in regions {
            let lane = Lane {
                insight: false,
                trail: trail.clone(),
                region: region.clone(),
            };
            if let (id, true) = self.ensure_unsaved(&lane, target, now) {
                changed.push(id);
            }
        }
        let prefix = target.prefix().map(str::to_owned);
        for chain in self.chains.values_mut() {
            let moved = !chain.closed
                && &chain.lane().trail == trail
                && (chain.bucket != target.s3_bucket || chain.prefix != prefix);
            if moved {
                chain.bucket = target.s3_bucket.clone();
                chain.prefix = prefix.clone();
                changed.push(chain.id.clone());
            }
        }
        self.persist(&changed)
    }

    /// Records a written log file for the lane's next digest.
    pub(crate) fn add_log_file(
        &mut self,
        lane: &Lane,
        target: &TrailTarget,
        delivered_at: DateTime<Utc>,
        entry: DigestLogFile,
    ) -> Result<(), DeliveryError> {
        // Insights log files are listed in the digests of the trail's region, beside its
        // other log files.
        let lane = &Lane {
            insight: false,
            ..lane.clone()
        };
        let (id, _) = self.ensure_unsaved(lane, target, delivered_at);
        let chain = self.chains.get_mut(&id).expect("ensured above");
        let listed = chain.log_files.iter().any(|file| {
            file.entry.s3_object == entry.s3_object && file.entry.s3_bucket == entry.s3_bucket
        });
        // The same file written again after a crash (same key, same bytes): listed once.
        if !listed {
            chain.log_files.push(DeliveredLogFile {
                delivered_at,
                entry,
            });
        }
        self.persist(&[id])
    }

    /// The oldest window that has ended by `now` of each open chain, oldest first, at most
    /// `limit`. (A chain's next window needs this one's signature: one per chain.)
    pub(crate) fn due_windows(
        &self,
        now: DateTime<Utc>,
        interval: Duration,
        limit: usize,
    ) -> Vec<WindowToClose> {
        let mut due: Vec<&ChainState> = self
            .chains
            .values()
            .filter(|chain| !chain.closed && chain.window_start + interval <= now)
            .collect();
        due.sort_by_key(|chain| chain.window_start);
        due.into_iter()
            .take(limit)
            .map(|chain| chain.window(chain.window_start + interval, false))
            .collect()
    }

    /// The final windows of `trail`'s open chains, except the one in `keep`, ending at
    /// `now` (none for a chain whose window just ended at `now` without new files).
    /// Marks the chains closed; one with nothing left to sign or write is forgotten.
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
        for id in &ids {
            let chain = self.chains.get_mut(id).expect("listed above");
            chain.closed = true;
            let lane = chain.lane();
            if now > chain.window_start {
                finals.push(chain.window(now, true));
            } else if !chain.log_files.is_empty() {
                // The last window just ended now: a one-second final window keeps the
                // files in a digest and its key distinct from the last digest's.
                finals.push(chain.window(now + Duration::seconds(1), true));
            } else if chain.pending.is_empty() {
                // Its last window was just signed and written: nothing more will come.
                self.chains.remove(id);
            }
            self.open.remove(&lane);
        }
        self.persist(&ids)?;
        Ok(finals)
    }

    /// Moves each chain past a window whose digest is signed: the digest becomes pending
    /// and the chain's link; the window's log files leave the chain. One transaction.
    pub(crate) fn windows_signed(
        &mut self,
        signed: Vec<(WindowToClose, SignedDigest)>,
    ) -> Result<(), DeliveryError> {
        let mut changed = Vec::with_capacity(signed.len());
        for (window, digest) in signed {
            let chain = self.chains.get_mut(&window.chain).ok_or_else(|| {
                DeliveryError::Meta(format!(
                    "digest chain {} vanished while signing",
                    window.chain
                ))
            })?;
            let digested: HashSet<&str> = window
                .log_files
                .iter()
                .map(|f| f.s3_object.as_str())
                .collect();
            chain
                .log_files
                .retain(|file| !digested.contains(file.entry.s3_object.as_str()));
            chain.window_start = chain.window_start.max(window.end);
            chain.previous = Some(digest.as_previous());
            chain.pending.push(digest);
            changed.push(window.chain);
        }
        self.persist(&changed)
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

    /// Forgets written digests (chain id, digest key); a closed chain with nothing left is
    /// removed. One transaction.
    pub(crate) fn digests_written(
        &mut self,
        written: &[(String, String)],
    ) -> Result<(), DeliveryError> {
        let mut changed = Vec::with_capacity(written.len());
        for (chain_id, key) in written {
            let Some(chain) = self.chains.get_mut(chain_id) else {
                continue;
            };
            chain.pending.retain(|digest| digest.key != *key);
            if chain.closed && chain.pending.is_empty() {
                self.chains.remove(chain_id);
            }
            changed.push(chain_id.clone());
        }
        self.persist(&changed)
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
        self.open
            .keys()
            .any(|lane| &lane.trail == trail && &lane.region != region)
    }

    /// Trails with an open chain.
    pub(crate) fn open_trails(&self) -> Vec<TrailArn> {
        let mut trails: Vec<TrailArn> = Vec::new();
        for lane in self.open.keys() {
            if !trails.contains(&lane.trail) {
                trails.push(lane.trail.clone());
            }
        }
        trails
    }

    /// Writes the chains `ids` as they are now (removing the ones that are gone), in one
    /// transaction.
    fn persist(&self, ids: &[String]) -> Result<(), DeliveryError> {
        if ids.is_empty() {
            return Ok(());
        }
        let states: Vec<(&str, Option<String>)> = ids
            .iter()
            .map(|id| {
                let state = self
                    .chains
                    .get(id)
                    .map(|chain| serde_json::to_string(chain).expect("chain serialises"));
                (id.as_str(), state)
            })
            .collect();
        self.meta
            .transaction(|tx| {
                for (id, state) in &states {
                    match state {
                        Some(state) => tx.put_document(DIGEST_CHAINS, id, state)?,
                        None => {
                            tx.delete_document(DIGEST_CHAINS, id)?;
                        }
                    }
                }
                Ok::<_, MetaError>(())
            })
            .map_err(meta_error)
    }
}

/// Moves the chain files of older versions (`DIR/<hash>.json`) into the metadata store in
/// one transaction (a chain already there wins: a crash after the commit left its file
/// behind), then removes the files and the directory durably. A chain keeps its id, link
/// and pending digests, so it goes on where it stopped: nothing is signed again.
fn import_legacy_files(meta: &dyn MetaStore, dir: &Path) -> Result<(), DeliveryError> {
    let paths = files_with_extension(dir, ".json").map_err(|e| DeliveryError::state(dir, e))?;
    let mut found = Vec::with_capacity(paths.len());
    for path in &paths {
        let text = fs::read_to_string(path).map_err(|e| DeliveryError::state(path, e))?;
        let chain: ChainState =
            serde_json::from_str(&text).map_err(|e| DeliveryError::state(path, e))?;
        found.push((chain.id, text));
    }
    if !found.is_empty() {
        meta.transaction(|tx| {
            for (id, text) in &found {
                if tx.get_document(DIGEST_CHAINS, id)?.is_none() {
                    tx.put_document(DIGEST_CHAINS, id, text)?;
                }
            }
            Ok::<_, MetaError>(())
        })
        .map_err(meta_error)?;
        tracing::info!(dir = %dir.display(), chains = found.len(), "moved digest chain files into the metadata store");
    }
    for path in &paths {
        remove_durably(path).map_err(|e| DeliveryError::state(path, e))?;
    }
    remove_dir_durably(dir)
}

/// Removes `dir` if it exists and is empty; something else left in it stays, with a warning.
fn remove_dir_durably(dir: &Path) -> Result<(), DeliveryError> {
    match fs::remove_dir(dir) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => {
            tracing::warn!(dir = %dir.display(), %error, "left the old digest chain directory in place");
            return Ok(());
        }
    }
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    fs::File::open(parent)
        .and_then(|parent| parent.sync_all())
        .map_err(|e| DeliveryError::state(parent, e))
}

fn whole_seconds(time: DateTime<Utc>) -> DateTime<Utc> {
    time.duration_trunc(Duration::seconds(1)).unwrap_or(time)
}

//! The topic registry: topics and their subscriptions in one JSON file in the data dir.
//!
//! Admin commands edit the file while the server runs, so every call first reloads the
//! file when it changed on disk. Writes are read-modify-write under an in-process lock,
//! crash-safe (temporary file, fsync, rename); two admin processes writing at the very
//! same moment can lose one of the two changes, which is acceptable for hand-run commands.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::durable_file::write_atomically;
use crate::topic::{parse_http_url, SnsTarget, TopicArn};
use crate::{Endpoint, NotifyError, Subscription, Topic};

const FILE_VERSION: u32 = 1;
const MIN_SECRET_LEN: usize = 16;
const MAX_SECRET_LEN: usize = 1024;

#[derive(Serialize, Deserialize)]
struct RegistryFile {
    version: u32,
    topics: Vec<Topic>,
}

/// Identifies one version of the file: a rename gives a new inode, a write a new mtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

struct Loaded {
    topics: BTreeMap<String, Topic>,
    /// `None` when the file does not exist.
    stamp: Option<FileStamp>,
}

/// Topics and subscribers, persisted as a JSON file (mode 0600: it holds secrets).
/// Methods that write do blocking file I/O with fsync: call them from admin commands or
/// `spawn_blocking`, not from an async task. Reads only stat the file.
pub struct TopicRegistry {
    path: PathBuf,
    state: Mutex<Loaded>,
}

impl std::fmt::Debug for TopicRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicRegistry")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl TopicRegistry {
    /// Reads the registry at `path`; a missing file is an empty registry (created on the
    /// first change).
    pub fn open(path: &Path) -> Result<Self, NotifyError> {
        let loaded = read_file(path)?;
        Ok(TopicRegistry {
            path: path.to_owned(),
            state: Mutex::new(loaded),
        })
    }

    /// Creates `arn:aws:sns:<region>:<account>:<name>`. Like SNS `CreateTopic`, creating
    /// an existing topic returns it unchanged.
    pub fn create_topic(
        &self,
        account: &str,
        region: &str,
        name: &str,
    ) -> Result<Topic, NotifyError> {
        let arn = TopicArn::new(account, region, name)?;
        self.modify(|topics| {
            let topic = topics
                .entry(arn.to_string())
                .or_insert_with(|| Topic {
                    arn: arn.to_string(),
                    name: arn.name.clone(),
                    account: arn.account.to_string(),
                    region: arn.region.to_string(),
                    subscriptions: Vec::new(),
                })
                .clone();
            Ok(topic)
        })
    }

    /// Deletes a topic and its subscriptions.
    pub fn delete_topic(&self, arn: &str) -> Result<(), NotifyError> {
        self.modify(|topics| match topics.remove(arn) {
            Some(_) => Ok(()),
            None => Err(NotifyError::TopicNotFound(arn.to_owned())),
        })
    }

    /// Every topic, sorted by ARN.
    pub fn list_topics(&self) -> Vec<Topic> {
        self.current().topics.values().cloned().collect()
    }

    pub fn topic(&self, arn: &str) -> Option<Topic> {
        self.current().topics.get(arn).cloned()
    }

    /// For `CreateTrail`/`UpdateTrail`: an unknown topic is `InsufficientSnsTopicPolicyException`.
    pub fn topic_exists(&self, arn: &str) -> bool {
        self.current().topics.contains_key(arn)
    }

    /// Adds an HTTP(S) webhook. Without `secret` a random one (64 hex digits) is generated;
    /// the returned subscription carries it, so show it to the admin once. Unless
    /// `allow_private_targets`, a target that is (or resolves to) a loopback, private,
    /// link-local, unique-local or unspecified address is refused (`InvalidParameter`),
    /// now and before every notification. Blocking (resolves the host).
    pub fn subscribe_webhook(
        &self,
        topic_arn: &str,
        url: &str,
        secret: Option<String>,
        allow_private_targets: bool,
    ) -> Result<Subscription, NotifyError> {
        let parsed = parse_http_url("webhook url", url)?;
        if !allow_private_targets {
            crate::targets::check_when_subscribing(&parsed)?;
        }
        let url = parsed.to_string();
        let secret = match secret {
            Some(secret) => validate_secret(secret)?,
            None => generate_secret(),
        };
        self.add_subscription(
            topic_arn,
            Endpoint::Webhook {
                url,
                secret,
                allow_private_targets,
            },
        )
    }

    /// Adds a publisher to a topic on an SNS-compatible service (SNS Query API `Publish`,
    /// SigV4 service `sns` in `region`).
    pub fn subscribe_sns(
        &self,
        topic_arn: &str,
        endpoint: &str,
        access_key: &str,
        secret_key: &str,
        region: &str,
        target_topic_arn: &str,
    ) -> Result<Subscription, NotifyError> {
        let endpoint = parse_http_url("SNS endpoint", endpoint)?.to_string();
        let printable = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic());
        if !printable(access_key) || !printable(secret_key) {
            return Err(NotifyError::InvalidParameter(
                "invalid SNS credentials: the access key and secret key must be non-empty printable ASCII".to_owned(),
            ));
        }
        let region =
            opentrail_model::Region::parse(region).map_err(NotifyError::InvalidParameter)?;
        let target = TopicArn::parse(target_topic_arn)?;
        self.add_subscription(
            topic_arn,
            Endpoint::Sns(SnsTarget {
                endpoint,
                access_key: access_key.to_owned(),
                secret_key: secret_key.to_owned(),
                region: region.to_string(),
                topic_arn: target.to_string(),
            }),
        )
    }

    pub fn unsubscribe(&self, subscription_arn: &str) -> Result<(), NotifyError> {
        let not_found = || NotifyError::SubscriptionNotFound(subscription_arn.to_owned());
        let (topic_arn, _) = subscription_arn.rsplit_once(':').ok_or_else(not_found)?;
        self.modify(|topics| {
            let topic = topics.get_mut(topic_arn).ok_or_else(not_found)?;
            let before = topic.subscriptions.len();
            topic.subscriptions.retain(|s| s.arn != subscription_arn);
            if topic.subscriptions.len() == before {
                return Err(not_found());
            }
            Ok(())
        })
    }

    fn add_subscription(
        &self,
        topic_arn: &str,
        endpoint: Endpoint,
    ) -> Result<Subscription, NotifyError> {
        self.modify(|topics| {
            let topic = topics
                .get_mut(topic_arn)
                .ok_or_else(|| NotifyError::TopicNotFound(topic_arn.to_owned()))?;
            if let Some(existing) = topic
                .subscriptions
                .iter()
                .find(|s| same_destination(&s.endpoint, &endpoint))
            {
                return Err(NotifyError::InvalidParameter(format!(
                    "topic {topic_arn} already sends to {} as subscription {}",
                    endpoint.describe(),
                    existing.arn
                )));
            }
            let subscription = Subscription {
                arn: format!("{topic_arn}:{}", uuid::Uuid::new_v4()),
                topic_arn: topic_arn.to_owned(),
                endpoint,
            };
            topic.subscriptions.push(subscription.clone());
            Ok(subscription)
        })
    }

    /// The registry as it is on disk now; a file that cannot be read keeps the last good
    /// state (with a warning) so notifications keep flowing.
    fn current(&self) -> MutexGuard<'_, Loaded> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(error) = self.reload_if_changed(&mut state) {
            tracing::warn!(%error, "failed to reload topic registry, keeping the last good state");
        }
        state
    }

    fn reload_if_changed(&self, state: &mut Loaded) -> Result<(), NotifyError> {
        let stamp = stamp_of(&self.path).map_err(|e| storage_error(&self.path, e))?;
        if stamp == state.stamp {
            return Ok(());
        }
        *state = read_file(&self.path)?;
        Ok(())
    }

    /// Applies `change` to the current topics and persists the result; nothing changes
    /// (in memory or on disk) when `change` or the write fails.
    fn modify<T>(
        &self,
        change: impl FnOnce(&mut BTreeMap<String, Topic>) -> Result<T, NotifyError>,
    ) -> Result<T, NotifyError> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.reload_if_changed(&mut state)?;
        let mut topics = state.topics.clone();
        let result = change(&mut topics)?;
        if topics == state.topics {
            return Ok(result);
        }
        let file = RegistryFile {
            version: FILE_VERSION,
            topics: topics.values().cloned().collect(),
        };
        let mut bytes = serde_json::to_vec_pretty(&file)
            .map_err(|e| storage_error(&self.path, io::Error::other(e)))?;
        bytes.push(b'\n');
        write_atomically(&self.path, &bytes).map_err(|e| storage_error(&self.path, e))?;
        state.topics = topics;
        state.stamp = stamp_of(&self.path).map_err(|e| storage_error(&self.path, e))?;
        Ok(result)
    }
}

fn same_destination(a: &Endpoint, b: &Endpoint) -> bool {
    match (a, b) {
        (Endpoint::Webhook { url: a, .. }, Endpoint::Webhook { url: b, .. }) => a == b,
        (Endpoint::Sns(a), Endpoint::Sns(b)) => {
            a.endpoint == b.endpoint && a.topic_arn == b.topic_arn
        }
        _ => false,
    }
}

fn validate_secret(secret: String) -> Result<String, NotifyError> {
    let well_formed = (MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&secret.len())
        && secret.bytes().all(|b| b.is_ascii_graphic());
    if !well_formed {
        return Err(NotifyError::InvalidParameter(format!(
            "invalid webhook secret: use {MIN_SECRET_LEN}-{MAX_SECRET_LEN} printable ASCII characters without spaces"
        )));
    }
    Ok(secret)
}

fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn storage_error(path: &Path, error: impl std::fmt::Display) -> NotifyError {
    NotifyError::Storage {
        path: path.display().to_string(),
        reason: error.to_string(),
    }
}

fn stamp_of(path: &Path) -> io::Result<Option<FileStamp>> {
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    Ok(Some(FileStamp {
        len: metadata.len(),
        modified: metadata.modified().ok(),
        inode: inode(&metadata),
    }))
}

#[cfg(unix)]
fn inode(metadata: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(metadata)
}

#[cfg(not(unix))]
fn inode(_: &std::fs::Metadata) -> u64 {
    0
}

/// The stamp is taken before reading: if the file changes in between, the next call sees
/// a different stamp and reads it again.
fn read_file(path: &Path) -> Result<Loaded, NotifyError> {
    let stamp = stamp_of(path).map_err(|e| storage_error(path, e))?;
    if stamp.is_none() {
        return Ok(Loaded {
            topics: BTreeMap::new(),
            stamp,
        });
    }
    let bytes = std::fs::read(path).map_err(|e| storage_error(path, e))?;
    let file: RegistryFile = serde_json::from_slice(&bytes)
        .map_err(|e| storage_error(path, format!("not a topic registry: {e}")))?;
    if file.version != FILE_VERSION {
        return Err(storage_error(
            path,
            format!("unsupported registry version {}", file.version),
        ));
    }
    let topics = file
        .topics
        .into_iter()
        .map(|topic| (topic.arn.clone(), topic))
        .collect();
    Ok(Loaded { topics, stamp })
}

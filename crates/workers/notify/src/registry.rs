//! The topic registry: topics and their subscriptions, one metadata document per topic
//! (collection `sns_topics`, key: the topic ARN).
//!
//! Admin commands (`opentrail topics`) change it while the server runs: every change is
//! one metadata transaction (read, change, write), so concurrent changes from any number
//! of processes never lose one another; every read sees the latest commit. A registry file
//! written by an older version (`notify/topics.json`) is imported on open, once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use opentrail_meta::{Documents, MetaError, MetaStore, Transactions};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::topic::{parse_http_url, SnsTarget, TopicArn};
use crate::{Endpoint, NotifyError, Subscription, Topic};

/// Metadata documents: one topic (with its subscriptions) each, keyed by ARN.
pub const TOPICS: &str = "sns_topics";

const FILE_VERSION: u32 = 1;
const MIN_SECRET_LEN: usize = 16;
const MAX_SECRET_LEN: usize = 1024;

/// The registry file of older versions.
#[derive(Serialize, Deserialize)]
struct RegistryFile {
    version: u32,
    topics: Vec<Topic>,
}

/// Topics and subscribers, in the metadata store (they hold secrets: the store is the data
/// dir's, readable by its owner only). Methods do blocking metadata I/O: call the ones
/// that write from admin commands or `spawn_blocking`, not from an async task.
pub struct TopicRegistry {
    meta: Arc<dyn MetaStore>,
    /// The last topics read successfully: a failed read keeps notifications flowing.
    last_good: Mutex<BTreeMap<String, Topic>>,
}

impl std::fmt::Debug for TopicRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicRegistry").finish_non_exhaustive()
    }
}

impl From<MetaError> for NotifyError {
    fn from(e: MetaError) -> Self {
        metadata_error(e)
    }
}

fn metadata_error(error: impl std::fmt::Display) -> NotifyError {
    NotifyError::Storage {
        path: "metadata store".to_owned(),
        reason: error.to_string(),
    }
}

fn decode_topic(key: &str, value: &str) -> Result<Topic, NotifyError> {
    serde_json::from_str(value)
        .map_err(|e| metadata_error(format!("stored topic {key} is unreadable: {e}")))
}

fn encode_topic(topic: &Topic) -> Result<String, NotifyError> {
    serde_json::to_string(topic).map_err(metadata_error)
}

fn read_topics(docs: &dyn Documents) -> Result<BTreeMap<String, Topic>, NotifyError> {
    docs.list_documents(TOPICS)?
        .into_iter()
        .map(|(key, value)| Ok((key.clone(), decode_topic(&key, &value)?)))
        .collect()
}

impl TopicRegistry {
    /// The registry in `meta`. A registry file of an older version at `legacy_file` is
    /// imported first (topics already in the store win) and renamed `<file>.migrated`; a
    /// file that cannot be read fails the open.
    pub fn open(meta: Arc<dyn MetaStore>, legacy_file: &Path) -> Result<Self, NotifyError> {
        if let Some(file) = read_legacy_file(legacy_file)? {
            meta.transaction(|tx| {
                for topic in &file.topics {
                    if tx.get_document(TOPICS, &topic.arn)?.is_none() {
                        tx.put_document(TOPICS, &topic.arn, &encode_topic(topic)?)?;
                    }
                }
                Ok::<_, NotifyError>(())
            })?;
            let mut migrated = legacy_file.as_os_str().to_owned();
            migrated.push(".migrated");
            match std::fs::rename(legacy_file, PathBuf::from(migrated)) {
                Ok(()) => {
                    tracing::info!(file = %legacy_file.display(), topics = file.topics.len(), "imported topic registry file into the metadata store")
                }
                // Another process (server or admin command) imported it at the same time.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(storage_error(legacy_file, e)),
            }
        }
        let registry = TopicRegistry {
            meta,
            last_good: Mutex::new(BTreeMap::new()),
        };
        let topics = read_topics(&Direct(registry.meta.as_ref()))?;
        *registry.last_good.lock().unwrap_or_else(|e| e.into_inner()) = topics;
        Ok(registry)
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
        self.current().into_values().collect()
    }

    /// One topic, read by its key (the notifier asks for every delivered log file).
    pub fn topic(&self, arn: &str) -> Option<Topic> {
        let read = self
            .meta
            .get_document(TOPICS, arn)
            .map_err(NotifyError::from)
            .and_then(|value| value.map(|v| decode_topic(arn, &v)).transpose());
        match read {
            Ok(topic) => topic,
            Err(error) => {
                tracing::warn!(%error, topic = arn, "failed to read topic, using the last good state");
                self.last_good
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(arn)
                    .cloned()
            }
        }
    }

    /// For `CreateTrail`/`UpdateTrail`: an unknown topic is `InsufficientSnsTopicPolicyException`.
    pub fn topic_exists(&self, arn: &str) -> bool {
        self.topic(arn).is_some()
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
                endpoint: endpoint.clone(),
            };
            topic.subscriptions.push(subscription.clone());
            Ok(subscription)
        })
    }

    /// The registry as committed now; when the store cannot be read, the last good state
    /// (with a warning) so notifications keep flowing.
    fn current(&self) -> BTreeMap<String, Topic> {
        let mut last_good = self.last_good.lock().unwrap_or_else(|e| e.into_inner());
        match read_topics(&Direct(self.meta.as_ref())) {
            Ok(topics) => *last_good = topics,
            Err(error) => {
                tracing::warn!(%error, "failed to read topics, keeping the last good state")
            }
        }
        last_good.clone()
    }

    /// Applies `change` to the current topics and writes what changed, in one metadata
    /// transaction; nothing changes when `change` or the write fails.
    fn modify<T>(
        &self,
        mut change: impl FnMut(&mut BTreeMap<String, Topic>) -> Result<T, NotifyError>,
    ) -> Result<T, NotifyError> {
        self.meta.transaction(|tx| {
            let before = read_topics(tx)?;
            let mut topics = before.clone();
            let result = change(&mut topics)?;
            for (arn, topic) in &topics {
                if before.get(arn) != Some(topic) {
                    tx.put_document(TOPICS, arn, &encode_topic(topic)?)?;
                }
            }
            for arn in before.keys().filter(|arn| !topics.contains_key(*arn)) {
                tx.delete_document(TOPICS, arn)?;
            }
            Ok(result)
        })
    }
}

/// Reads outside a transaction.
struct Direct<'a>(&'a dyn MetaStore);

impl Documents for Direct<'_> {
    fn get_document(&self, collection: &str, key: &str) -> opentrail_meta::Result<Option<String>> {
        self.0.get_document(collection, key)
    }

    fn list_documents(&self, collection: &str) -> opentrail_meta::Result<Vec<(String, String)>> {
        self.0.list_documents(collection)
    }

    fn put_document(&self, collection: &str, key: &str, value: &str) -> opentrail_meta::Result<()> {
        self.0.put_document(collection, key, value)
    }

    fn delete_document(&self, collection: &str, key: &str) -> opentrail_meta::Result<bool> {
        self.0.delete_document(collection, key)
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

/// The registry file of an older version, if there is one.
fn read_legacy_file(path: &Path) -> Result<Option<RegistryFile>, NotifyError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(storage_error(path, e)),
    };
    let file: RegistryFile = serde_json::from_slice(&bytes)
        .map_err(|e| storage_error(path, format!("not a topic registry: {e}")))?;
    if file.version != FILE_VERSION {
        return Err(storage_error(
            path,
            format!("unsupported registry version {}", file.version),
        ));
    }
    Ok(Some(file))
}

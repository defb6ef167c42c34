//! Trail management: the CloudTrail control-plane operations on trails, their selectors,
//! tags and logging state. Each operation takes the generated request of `opentrail-operations`
//! and returns its generated response, or a `TrailError` (an `opentrail_wire::AwsError`).

mod error;
mod lifecycle;
mod logging;
mod record;
mod selector_ops;
mod tagging;
mod validate;

pub use error::TrailError;
pub use record::{StoredInsightSelector, TrailRecord, TrailStatus};

use opentrail_meta::{Documents, MetaStore, Transactions};
use opentrail_model::{AccountId, Clock, TrailArn, TrailName};
use opentrail_objstore::{ObjectStore, StoreError};
use std::collections::HashMap;
use std::sync::Arc;

/// The most trails one region may hold, counting multi-region trails in every region.
pub const MAX_TRAILS_PER_REGION: usize = 5;

/// Trail configuration documents, keyed by `TrailRecord::storage_key`.
const TRAILS: &str = "trails";

/// Trail runtime status (`TrailStatus`) documents, keyed by the trail's incarnation: a trail
/// deleted and created again under the same name has a new incarnation, so outcomes
/// reported late for the old one never reach the new one's status.
const TRAIL_STATUS: &str = "trail_status";

/// Metadata documents naming the owner account of each embedded bucket (key: the bucket
/// name, value: the account id), written by `opentrail buckets create`. A bucket without
/// one (created before owners were recorded, or on an S3 server) is usable by every account.
pub const BUCKET_OWNERS: &str = "bucket_owners";

/// Who is calling and from where (lives in `opentrail-model`; re-exported for now).
pub use opentrail_model::RequestContext;

/// Which SNS topics exist (trails may only name existing topics).
pub trait TopicDirectory: Send + Sync + 'static {
    fn topic_exists(&self, topic_arn: &str) -> bool;
}

/// Where the durable event log ends now (events appended later get higher offsets).
pub type LogPosition = Arc<dyn Fn() -> u64 + Send + Sync>;

pub struct TrailService {
    log_position: LogPosition,
    meta: Arc<dyn MetaStore>,
    buckets: Arc<dyn ObjectStore>,
    topics: Arc<dyn TopicDirectory>,
    clock: Arc<dyn Clock>,
    list_trails_page_size: usize,
}

/// How a request names a trail.
enum TrailRef {
    Name(TrailName),
    Arn(TrailArn),
}

fn parse_trail_ref(value: &str) -> Result<TrailRef, TrailError> {
    if value.starts_with("arn:") {
        return TrailArn::parse(value)
            .map(TrailRef::Arn)
            .map_err(|e| TrailError::CloudTrailArnInvalid(e.0));
    }
    TrailName::parse(value)
        .map(TrailRef::Name)
        .map_err(|e| TrailError::InvalidTrailName(e.0))
}

/// AWS's text: the trail's ARN (built from the request's region and account when the
/// request gave a name), then the caller's account.
fn not_found(reference: &TrailRef, ctx: &RequestContext) -> TrailError {
    let arn = match reference {
        TrailRef::Name(name) => {
            TrailArn::new(ctx.region.clone(), ctx.account.clone(), name.clone())
        }
        TrailRef::Arn(arn) => arn.clone(),
    };
    TrailError::TrailNotFound(format!(
        "Unknown trail: {arn} for the user: {}",
        ctx.account
    ))
}

impl TrailService {
    pub fn new(
        meta: Arc<dyn MetaStore>,
        buckets: Arc<dyn ObjectStore>,
        topics: Arc<dyn TopicDirectory>,
        clock: Arc<dyn Clock>,
        log_position: LogPosition,
        list_trails_page_size: usize,
    ) -> Self {
        Self {
            log_position,
            meta,
            buckets,
            topics,
            clock,
            list_trails_page_size: list_trails_page_size.max(1),
        }
    }

    /// Reads outside a transaction (each read sees the latest commit).
    fn direct(&self) -> Direct<'_> {
        Direct(self.meta.as_ref())
    }

    /// Runs `body` in one metadata transaction (see `MetaStore::run_transaction`): the
    /// checks it makes (a name is free, a region has room) hold when it writes, across
    /// threads, processes and nodes sharing the store.
    fn write<T>(
        &self,
        body: impl FnMut(&dyn Documents) -> Result<T, TrailError>,
    ) -> Result<T, TrailError> {
        tokio::task::block_in_place(|| self.meta.transaction(body))
    }

    /// Every trail of the account, in all regions, ordered by home region and name.
    fn account_trails(
        &self,
        docs: &dyn Documents,
        account: &AccountId,
    ) -> Result<Vec<TrailRecord>, TrailError> {
        let mut trails = read_trails(docs)?;
        trails.retain(|t| &t.account == account);
        Ok(trails)
    }

    /// The trails visible from the request's region.
    fn visible_trails(
        &self,
        docs: &dyn Documents,
        ctx: &RequestContext,
    ) -> Result<Vec<TrailRecord>, TrailError> {
        let mut trails = self.account_trails(docs, &ctx.account)?;
        trails.retain(|t| t.visible_in(&ctx.region));
        Ok(trails)
    }

    /// The caller's trail a `TrailName` parameter names (a name or an ARN):
    /// `InvalidTrailNameException` or `TrailNotFoundException` otherwise.
    pub fn find_trail(
        &self,
        ctx: &RequestContext,
        name_or_arn: &str,
    ) -> Result<TrailRecord, TrailError> {
        self.resolve(ctx, name_or_arn)
    }

    /// Finds the trail a name or ARN refers to, as seen from the request's region.
    fn resolve(&self, ctx: &RequestContext, name_or_arn: &str) -> Result<TrailRecord, TrailError> {
        self.resolve_in(&self.direct(), ctx, name_or_arn)
    }

    fn resolve_in(
        &self,
        docs: &dyn Documents,
        ctx: &RequestContext,
        name_or_arn: &str,
    ) -> Result<TrailRecord, TrailError> {
        let reference = parse_trail_ref(name_or_arn)?;
        let found = match &reference {
            TrailRef::Name(name) => self
                .visible_trails(docs, ctx)?
                .into_iter()
                .find(|t| &t.name == name),
            TrailRef::Arn(arn) if arn.account != ctx.account => None,
            TrailRef::Arn(arn) => self
                .visible_trails(docs, ctx)?
                .into_iter()
                .find(|t| t.name == arn.name && t.home_region == arn.region),
        };
        found.ok_or_else(|| not_found(&reference, ctx))
    }

    /// Like `resolve`, for operations that change a trail: only its home region may.
    fn resolve_for_write(
        &self,
        ctx: &RequestContext,
        name_or_arn: &str,
    ) -> Result<TrailRecord, TrailError> {
        let trail = self.resolve(ctx, name_or_arn)?;
        require_home_region(&trail, ctx)?;
        Ok(trail)
    }

    /// `resolve_for_write` inside a transaction, ready to be changed and saved with
    /// `save_in` (a trail stored by an older version gets its incarnation here).
    fn resolve_for_write_in(
        &self,
        tx: &dyn Documents,
        ctx: &RequestContext,
        name_or_arn: &str,
    ) -> Result<TrailRecord, TrailError> {
        let mut trail = self.resolve_in(tx, ctx, name_or_arn)?;
        require_home_region(&trail, ctx)?;
        adopt_legacy_status(tx, &mut trail)?;
        Ok(trail)
    }

    /// An embedded bucket another account owns may not receive this account's logs (as on
    /// AWS, where its bucket policy would not let CloudTrail write for this account).
    fn require_bucket_owner(&self, ctx: &RequestContext, bucket: &str) -> Result<(), TrailError> {
        let owner = tokio::task::block_in_place(|| self.meta.get_document(BUCKET_OWNERS, bucket))?;
        match owner {
            Some(owner) if owner != ctx.account.as_str() => {
                Err(TrailError::InsufficientS3BucketPolicy(format!(
                    "Incorrect S3 bucket policy is detected for bucket: {bucket}"
                )))
            }
            _ => Ok(()),
        }
    }

    /// A trail that names a topic must name one of its own account that exists. AWS
    /// cannot tell a missing topic from one whose policy keeps CloudTrail out, and answers
    /// both alike; another account's topic is one whose policy we never grant.
    fn require_topic(&self, trail: &TrailRecord) -> Result<(), TrailError> {
        let Some(topic) = trail.sns_topic_arn.as_deref() else {
            return Ok(());
        };
        let foreign = opentrail_model::Arn::parse(topic)
            .is_ok_and(|arn| arn.account != trail.account.as_str());
        if foreign || !self.topics.topic_exists(topic) {
            return Err(TrailError::InsufficientSnsTopicPolicy(
                "SNS Topic does not exist or the topic policy is incorrect!".to_string(),
            ));
        }
        Ok(())
    }

    async fn require_bucket(&self, ctx: &RequestContext, bucket: &str) -> Result<(), TrailError> {
        match self.buckets.bucket_exists(bucket).await {
            Ok(true) => self.require_bucket_owner(ctx, bucket),
            Ok(false) => Err(TrailError::S3BucketDoesNotExist(format!(
                "S3 bucket {bucket} does not exist"
            ))),
            Err(StoreError::AccessDenied(why)) => Err(TrailError::InsufficientS3BucketPolicy(
                format!("Access to S3 bucket {bucket} was denied: {why}"),
            )),
            Err(e) => Err(TrailError::Internal(format!(
                "failed to check that S3 bucket {bucket} exists: {e}"
            ))),
        }
    }
}

impl TrailService {
    /// Every trail of every account with its status, for background workers (delivery,
    /// digests).
    pub fn all_trails(&self) -> Result<Vec<TrailRecord>, TrailError> {
        let docs = self.direct();
        let mut trails = read_trails(&docs)?;
        let statuses: HashMap<String, String> =
            tokio::task::block_in_place(|| docs.list_documents(TRAIL_STATUS))?
                .into_iter()
                .collect();
        for trail in &mut trails {
            // No incarnation: stored by an older version, status still in the document.
            if trail.incarnation.is_empty() {
                continue;
            }
            trail.status = match statuses.get(&trail.incarnation) {
                Some(value) => decode_status(&trail.incarnation, value)?,
                None => TrailStatus::default(),
            };
        }
        Ok(trails)
    }

    /// Applies `change` to the status of the trail `arn` names, if it is still the
    /// incarnation `incarnation` (`TrailRecord::incarnation` as read when the outcome
    /// began); false when that trail no longer exists.
    pub async fn update_status(
        &self,
        arn: &TrailArn,
        incarnation: &str,
        change: impl Fn(&mut TrailStatus),
    ) -> Result<bool, TrailError> {
        let key = record::storage_key(&arn.account, &arn.region, &arn.name);
        self.write(|tx| {
            let Some(value) = tx.get_document(TRAILS, &key)? else {
                return Ok(false);
            };
            let mut trail = decode_trail(&key, &value)?;
            if trail.incarnation != incarnation {
                return Ok(false);
            }
            adopt_legacy_status(tx, &mut trail)?;
            let mut status = read_status(tx, &trail)?;
            change(&mut status);
            write_status(tx, &trail, &status)?;
            Ok(true)
        })
    }
}

fn require_home_region(trail: &TrailRecord, ctx: &RequestContext) -> Result<(), TrailError> {
    if trail.home_region != ctx.region {
        return Err(TrailError::InvalidHomeRegion(format!(
            "This operation must be called from the trail's home region, {}. The request was made in {}",
            trail.home_region, ctx.region
        )));
    }
    Ok(())
}

/// Documents read outside a transaction.
struct Direct<'a>(&'a dyn MetaStore);

impl Documents for Direct<'_> {
    fn get_document(&self, collection: &str, key: &str) -> opentrail_meta::Result<Option<String>> {
        tokio::task::block_in_place(|| self.0.get_document(collection, key))
    }

    fn list_documents(&self, collection: &str) -> opentrail_meta::Result<Vec<(String, String)>> {
        tokio::task::block_in_place(|| self.0.list_documents(collection))
    }

    fn put_document(&self, collection: &str, key: &str, value: &str) -> opentrail_meta::Result<()> {
        tokio::task::block_in_place(|| self.0.put_document(collection, key, value))
    }

    fn delete_document(&self, collection: &str, key: &str) -> opentrail_meta::Result<bool> {
        tokio::task::block_in_place(|| self.0.delete_document(collection, key))
    }
}

fn decode_trail(key: &str, value: &str) -> Result<TrailRecord, TrailError> {
    serde_json::from_str(value)
        .map_err(|e| TrailError::Internal(format!("stored trail {key} is unreadable: {e}")))
}

fn decode_status(incarnation: &str, value: &str) -> Result<TrailStatus, TrailError> {
    serde_json::from_str(value).map_err(|e| {
        TrailError::Internal(format!(
            "stored status of trail {incarnation} is unreadable: {e}"
        ))
    })
}

/// Every stored trail (status not read), ordered by storage key.
fn read_trails(docs: &dyn Documents) -> Result<Vec<TrailRecord>, TrailError> {
    docs.list_documents(TRAILS)?
        .into_iter()
        .map(|(key, value)| decode_trail(&key, &value))
        .collect()
}

/// A new trail incarnation id.
fn new_incarnation() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The trail's status as stored.
fn read_status(docs: &dyn Documents, trail: &TrailRecord) -> Result<TrailStatus, TrailError> {
    if trail.incarnation.is_empty() {
        return Ok(trail.status.clone());
    }
    match docs.get_document(TRAIL_STATUS, &trail.incarnation)? {
        Some(value) => decode_status(&trail.incarnation, &value),
        None => Ok(TrailStatus::default()),
    }
}

fn write_status(
    docs: &dyn Documents,
    trail: &TrailRecord,
    status: &TrailStatus,
) -> Result<(), TrailError> {
    debug_assert!(
        !trail.incarnation.is_empty(),
        "status of a trail without incarnation"
    );
    let value = serde_json::to_string(status)
        .map_err(|e| TrailError::Internal(format!("failed to encode trail status: {e}")))?;
    docs.put_document(TRAIL_STATUS, &trail.incarnation, &value)?;
    Ok(())
}

/// A trail stored by an older version has its status inside its document and no
/// incarnation: give it one and move its status to its own record (in the caller's
/// transaction, which then saves the trail).
fn adopt_legacy_status(docs: &dyn Documents, trail: &mut TrailRecord) -> Result<(), TrailError> {
    if !trail.incarnation.is_empty() {
        return Ok(());
    }
    trail.incarnation = new_incarnation();
    write_status(docs, trail, &trail.status)?;
    save_in(docs, trail)
}

/// Writes the trail's configuration (its status lives in its own record).
fn save_in(docs: &dyn Documents, trail: &TrailRecord) -> Result<(), TrailError> {
    debug_assert!(!trail.incarnation.is_empty(), "trail without incarnation");
    let value = serde_json::to_string(trail)
        .map_err(|e| TrailError::Internal(format!("failed to encode trail: {e}")))?;
    docs.put_document(TRAILS, &trail.storage_key(), &value)?;
    Ok(())
}

/// Deletes the trail and its status.
fn remove_in(docs: &dyn Documents, trail: &TrailRecord) -> Result<(), TrailError> {
    docs.delete_document(TRAILS, &trail.storage_key())?;
    if !trail.incarnation.is_empty() {
        docs.delete_document(TRAIL_STATUS, &trail.incarnation)?;
    }
    Ok(())
}

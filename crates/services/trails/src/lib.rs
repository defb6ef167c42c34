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

use opentrail_meta::MetaStore;
use opentrail_model::{AccountId, Clock, Region, TrailArn, TrailName};
use opentrail_objstore::{ObjectStore, StoreError};
use std::sync::Arc;

/// The most trails one region may hold, counting multi-region trails in every region.
pub const MAX_TRAILS_PER_REGION: usize = 5;

const TRAILS: &str = "trails";

/// Who is calling and from where: the account of the access key and the region of the
/// SigV4 credential scope.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub account: AccountId,
    pub region: Region,
}

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
    /// Serialises read-check-write sequences (name uniqueness, per-region limits).
    write_lock: tokio::sync::Mutex<()>,
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

fn not_found(name: &str, account: &AccountId) -> TrailError {
    TrailError::TrailNotFound(format!("Unknown trail: {name} for the user: {account}"))
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
            write_lock: tokio::sync::Mutex::new(()),
            list_trails_page_size: list_trails_page_size.max(1),
        }
    }

    /// Every trail of the account, in all regions, ordered by home region and name.
    fn account_trails(&self, account: &AccountId) -> Result<Vec<TrailRecord>, TrailError> {
        let mut trails = self.all_trails()?;
        trails.retain(|t| &t.account == account);
        Ok(trails)
    }

    /// The trails visible from the request's region.
    fn visible_trails(&self, ctx: &RequestContext) -> Result<Vec<TrailRecord>, TrailError> {
        let mut trails = self.account_trails(&ctx.account)?;
        trails.retain(|t| t.visible_in(&ctx.region));
        Ok(trails)
    }

    fn save(&self, trail: &TrailRecord) -> Result<(), TrailError> {
        let value = serde_json::to_string(trail)
            .map_err(|e| TrailError::Internal(format!("failed to encode trail: {e}")))?;
        tokio::task::block_in_place(|| {
            self.meta.put_document(TRAILS, &trail.storage_key(), &value)
        })?;
        Ok(())
    }

    fn remove(&self, trail: &TrailRecord) -> Result<(), TrailError> {
        tokio::task::block_in_place(|| self.meta.delete_document(TRAILS, &trail.storage_key()))?;
        Ok(())
    }

    /// Finds the trail a name or ARN refers to, as seen from the request's region.
    fn resolve(&self, ctx: &RequestContext, name_or_arn: &str) -> Result<TrailRecord, TrailError> {
        let reference = parse_trail_ref(name_or_arn)?;
        let found = match &reference {
            TrailRef::Name(name) => self
                .visible_trails(ctx)?
                .into_iter()
                .find(|t| &t.name == name),
            TrailRef::Arn(arn) if arn.account != ctx.account => None,
            TrailRef::Arn(arn) => self
                .visible_trails(ctx)?
                .into_iter()
                .find(|t| t.name == arn.name && t.home_region == arn.region),
        };
        found.ok_or_else(|| not_found(name_or_arn, &ctx.account))
    }

    /// Like `resolve`, for operations that change a trail: only its home region may.
    fn resolve_for_write(
        &self,
        ctx: &RequestContext,
        name_or_arn: &str,
    ) -> Result<TrailRecord, TrailError> {
        let trail = self.resolve(ctx, name_or_arn)?;
        if trail.home_region != ctx.region {
            return Err(TrailError::InvalidHomeRegion(format!(
                "This operation must be called from the trail's home region, {}. The request was made in {}",
                trail.home_region, ctx.region
            )));
        }
        Ok(trail)
    }

    /// A trail that names a topic must name one that exists.
    fn require_topic(&self, trail: &TrailRecord) -> Result<(), TrailError> {
        match &trail.sns_topic_arn {
            Some(arn) if !self.topics.topic_exists(arn) => Err(TrailError::InvalidSnsTopicName(
                format!("SNS topic {arn} does not exist; create it with `opentrail topics create`"),
            )),
            _ => Ok(()),
        }
    }

    async fn require_bucket(&self, bucket: &str) -> Result<(), TrailError> {
        match self.buckets.bucket_exists(bucket).await {
            Ok(true) => Ok(()),
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
    /// Every trail of every account, for background workers (delivery, digests).
    pub fn all_trails(&self) -> Result<Vec<TrailRecord>, TrailError> {
        let documents = tokio::task::block_in_place(|| self.meta.list_documents(TRAILS))?;
        documents
            .into_iter()
            .map(|(key, value)| {
                serde_json::from_str(&value).map_err(|e| {
                    TrailError::Internal(format!("stored trail {key} is unreadable: {e}"))
                })
            })
            .collect()
    }

    /// Applies `change` to the status of the trail `arn` names; false when it no longer exists.
    pub async fn update_status(
        &self,
        arn: &TrailArn,
        change: impl FnOnce(&mut TrailStatus),
    ) -> Result<bool, TrailError> {
        let _guard = self.write_lock.lock().await;
        let key = record::storage_key(&arn.account, &arn.region, &arn.name);
        let Some(value) = tokio::task::block_in_place(|| self.meta.get_document(TRAILS, &key))?
        else {
            return Ok(false);
        };
        let mut trail: TrailRecord = serde_json::from_str(&value)
            .map_err(|e| TrailError::Internal(format!("stored trail {key} is unreadable: {e}")))?;
        change(&mut trail.status);
        self.save(&trail)?;
        Ok(true)
    }
}

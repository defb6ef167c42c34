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
use opentrail_model::{AccountId, Clock, TrailArn, TrailName};
use opentrail_objstore::{ObjectStore, StoreError};
use std::sync::Arc;

/// The most trails one region may hold, counting multi-region trails in every region.
pub const MAX_TRAILS_PER_REGION: usize = 5;

const TRAILS: &str = "trails";

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
        found.ok_or_else(|| not_found(&reference, ctx))
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

//! Channels: the door through which producers outside AWS send events (PutAuditEvents)
//! into event data stores that select `ActivityAuditLog` events. CreateChannel,
//! GetChannel, ListChannels, UpdateChannel, DeleteChannel, their tags, and the lookup and
//! ingestion status PutAuditEvents uses.

use crate::record::StoreRecord;
use crate::{decode, validate, Direct, StoreError, StoreService, STORES};
use base64::Engine;
use chrono::{DateTime, Utc};
use opentrail_meta::Documents;
use opentrail_model::{AccountId, Region, RequestContext};
use opentrail_operations::{
    AddTagsRequest, AddTagsResponse, Channel, CreateChannelRequest, CreateChannelResponse,
    DeleteChannelRequest, DeleteChannelResponse, Destination, DestinationType,
    EventDataStoreStatus, GetChannelRequest, GetChannelResponse, IngestionStatus,
    ListChannelsRequest, ListChannelsResponse, ListTagsRequest, ListTagsResponse,
    RemoveTagsRequest, RemoveTagsResponse, ResourceTag, Tag, Timestamp, UpdateChannelRequest,
    UpdateChannelResponse,
};
use opentrail_selectors::EventDataStoreKind;
use serde::{Deserialize, Serialize};

/// The most channels one account may have in a region (AWS: 25).
pub const MAX_CHANNELS_PER_REGION: usize = 25;

/// The only `Source` OpenTrail's channels take: events from your own applications
/// (partner sources need AWS's partner onboarding).
pub const CUSTOM_SOURCE: &str = "Custom";

/// Channel documents, keyed by `ChannelRecord::storage_key`.
const CHANNELS: &str = "channels";

/// The last PutAuditEvents outcome of each channel, keyed like the channel.
const CHANNEL_INGESTION: &str = "channel_ingestion";

/// ListChannels' page size when MaxResults is absent.
const DEFAULT_PAGE_SIZE: usize = 1000;

/// How often a channel's ingestion status is written to the metadata store at most; in
/// between it is kept in memory (and GetChannel reads it there).
const INGESTION_STATUS_WRITE_INTERVAL: chrono::Duration = chrono::Duration::seconds(1);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelRecord {
    /// The UUID that ends the ARN.
    pub id: String,
    pub name: String,
    pub account: AccountId,
    pub home_region: Region,
    /// Always [`CUSTOM_SOURCE`].
    pub source: String,
    /// The destination event data stores' ARNs, in the order given.
    pub destinations: Vec<String>,
    pub tags: Vec<Tag>,
    pub created_at: DateTime<Utc>,
}

impl ChannelRecord {
    pub fn arn(&self) -> String {
        channel_arn(&self.home_region, &self.account, &self.id)
    }

    pub fn storage_key(&self) -> String {
        format!("{}/{}/{}", self.account, self.home_region, self.id)
    }

    fn wire_destinations(&self) -> Vec<Destination> {
        self.destinations
            .iter()
            .map(|arn| Destination {
                location: arn.clone(),
                r#type: DestinationType::EventDataStore,
            })
            .collect()
    }
}

pub fn channel_arn(region: &Region, account: &AccountId, id: &str) -> String {
    format!("arn:aws:cloudtrail:{region}:{account}:channel/{id}")
}

/// A channel's latest PutAuditEvents outcomes, as GetChannel's `IngestionStatus` shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IngestionStatusRecord {
    pub latest_success_time: Option<DateTime<Utc>>,
    pub latest_success_event_id: Option<String>,
    pub latest_error_code: Option<String>,
    pub latest_attempt_time: Option<DateTime<Utc>>,
    pub latest_attempt_event_id: Option<String>,
}

impl IngestionStatusRecord {
    fn to_wire(&self) -> IngestionStatus {
        IngestionStatus {
            latest_ingestion_success_time: self.latest_success_time.map(Timestamp),
            latest_ingestion_success_event_id: self.latest_success_event_id.clone(),
            latest_ingestion_error_code: self.latest_error_code.clone(),
            latest_ingestion_attempt_time: self.latest_attempt_time.map(Timestamp),
            latest_ingestion_attempt_event_id: self.latest_attempt_event_id.clone(),
        }
    }
}

/// What one PutAuditEvents call did, for the channel's ingestion status.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestionAttempt {
    pub time: DateTime<Utc>,
    /// The eventID of the last event accepted, if any was.
    pub last_success_event_id: Option<String>,
    /// The event id (the producer's `id`) of the call's last event.
    pub last_attempt_event_id: Option<String>,
    /// The error code of the last event refused, if any was.
    pub last_error_code: Option<String>,
}

/// How a request names a channel: its ARN, or the id that ends it.
struct ChannelRef {
    /// Region and account, when given by ARN.
    scope: Option<(String, String)>,
    id: String,
}

fn is_channel_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl ChannelRef {
    /// `None` when `value` is neither a channel ARN nor a channel id.
    fn parse(value: &str) -> Option<Self> {
        if !value.starts_with("arn:") {
            return is_channel_id(value).then(|| ChannelRef {
                scope: None,
                id: value.to_owned(),
            });
        }
        let arn = opentrail_model::Arn::parse(value).ok()?;
        let id = arn.resource.strip_prefix("channel/")?;
        let valid = arn.service == "cloudtrail"
            && Region::parse(&arn.region).is_ok()
            && AccountId::parse(&arn.account).is_ok()
            && is_channel_id(id);
        valid.then(|| ChannelRef {
            scope: Some((arn.region.clone(), arn.account.clone())),
            id: id.to_owned(),
        })
    }

    fn storage_key(&self, account: &AccountId, region: &Region) -> String {
        match &self.scope {
            Some((region, account)) => format!("{account}/{region}/{}", self.id),
            None => format!("{account}/{region}/{}", self.id),
        }
    }
}

/// botocore `ChannelName`: 3 to 128 of letters, digits, `.`, `_` and `-`.
fn check_name(name: &str) -> Result<(), StoreError> {
    let len = name.chars().count();
    if !(3..=128).contains(&len) {
        return Err(StoreError::InvalidParameter(format!(
            "Channel name {name} is {len} characters long; names must be 3 to 128 characters"
        )));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(StoreError::InvalidParameter(format!(
            "Channel name {name} is not valid; use only letters, digits, periods, underscores and hyphens"
        )));
    }
    Ok(())
}

fn check_source(source: &str) -> Result<(), StoreError> {
    if source == CUSTOM_SOURCE {
        return Ok(());
    }
    Err(StoreError::InvalidSource(format!(
        "Source {source} is not valid; OpenTrail channels take events from your own applications: use Source {CUSTOM_SOURCE}"
    )))
}

fn decode_channel(key: &str, value: &str) -> Result<ChannelRecord, StoreError> {
    serde_json::from_str(value)
        .map_err(|e| StoreError::Internal(format!("stored channel {key} is unreadable: {e}")))
}

fn save_channel(docs: &dyn Documents, channel: &ChannelRecord) -> Result<(), StoreError> {
    let value = serde_json::to_string(channel)
        .map_err(|e| StoreError::Internal(format!("failed to encode channel: {e}")))?;
    docs.put_document(CHANNELS, &channel.storage_key(), &value)?;
    Ok(())
}

fn name_taken(name: &str, ctx: &RequestContext) -> StoreError {
    StoreError::ChannelAlreadyExists(format!(
        "A channel named {name} already exists in account {} and region {}",
        ctx.account, ctx.region
    ))
}

/// The channels of every account and region (for the checks of DeleteEventDataStore).
pub(crate) fn all_channels(docs: &dyn Documents) -> Result<Vec<ChannelRecord>, StoreError> {
    docs.list_documents(CHANNELS)?
        .into_iter()
        .map(|(key, value)| decode_channel(&key, &value))
        .collect()
}

/// Why DeleteEventDataStore must refuse: a channel still sends events to the store.
pub(crate) fn check_no_channel_uses(
    docs: &dyn Documents,
    store: &StoreRecord,
) -> Result<(), StoreError> {
    let store_arn = store.arn();
    match all_channels(docs)?
        .into_iter()
        .find(|channel| channel.destinations.contains(&store_arn))
    {
        Some(channel) => Err(StoreError::ChannelExistsForEds(format!(
            "Event data store {store_arn} cannot be deleted because channel {} sends events to it; delete the channel or remove the store from its destinations first",
            channel.arn()
        ))),
        None => Ok(()),
    }
}

fn encode_token(after: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(after)
}

fn decode_token(token: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    String::from_utf8(bytes).ok()
}

impl StoreService {
    /// The account's channels in `region`, in creation order.
    fn channels_in(
        &self,
        docs: &dyn Documents,
        account: &AccountId,
        region: &Region,
    ) -> Result<Vec<ChannelRecord>, StoreError> {
        let mut channels = all_channels(docs)?;
        channels.retain(|c| &c.account == account && &c.home_region == region);
        channels.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(channels)
    }

    /// The channel a `Channel` parameter names, in the request's account and region.
    pub(crate) fn resolve_channel_in(
        &self,
        docs: &dyn Documents,
        ctx: &RequestContext,
        value: &str,
    ) -> Result<ChannelRecord, StoreError> {
        let reference = ChannelRef::parse(value).ok_or_else(|| {
            StoreError::ChannelArnInvalid(format!("Invalid channel ARN or id: {value}"))
        })?;
        let missing = || {
            StoreError::ChannelNotFound(format!(
                "Channel {value} does not exist in account {} and region {}",
                ctx.account, ctx.region
            ))
        };
        if let Some((region, account)) = &reference.scope {
            if account != ctx.account.as_str() || region != ctx.region.as_str() {
                return Err(missing());
            }
        }
        let key = reference.storage_key(&ctx.account, &ctx.region);
        match docs.get_document(CHANNELS, &key)? {
            Some(value) => decode_channel(&key, &value),
            None => Err(missing()),
        }
    }

    /// Checks destinations and returns their event data store ARNs.
    fn resolve_destinations(
        &self,
        docs: &dyn Documents,
        ctx: &RequestContext,
        destinations: &[Destination],
    ) -> Result<Vec<String>, StoreError> {
        if destinations.is_empty() {
            return Err(StoreError::InvalidParameter(
                "Destinations must name at least one event data store".into(),
            ));
        }
        let mut arns: Vec<String> = Vec::with_capacity(destinations.len());
        for destination in destinations {
            if destination.r#type != DestinationType::EventDataStore {
                return Err(StoreError::InvalidParameter(format!(
                    "Destination type {} is not valid for a channel of source {CUSTOM_SOURCE}; use EVENT_DATA_STORE",
                    destination.r#type.as_str()
                )));
            }
            let store = self.resolve_in(docs, ctx, &destination.location)?;
            if store.kind() != EventDataStoreKind::ActivityAuditLog {
                return Err(StoreError::InvalidEventDataStoreCategory(format!(
                    "Event data store {} does not collect events from channels; its advanced event selectors must select eventCategory ActivityAuditLog",
                    store.arn()
                )));
            }
            if store.status == EventDataStoreStatus::PendingDeletion {
                return Err(StoreError::InactiveEventDataStore(format!(
                    "Event data store {} is pending deletion; restore it first",
                    store.arn()
                )));
            }
            let arn = store.arn();
            if arns.contains(&arn) {
                return Err(StoreError::InvalidParameter(format!(
                    "Event data store {arn} appears more than once in Destinations"
                )));
            }
            arns.push(arn);
        }
        Ok(arns)
    }

    pub async fn create_channel(
        &self,
        ctx: &RequestContext,
        input: CreateChannelRequest,
    ) -> Result<CreateChannelResponse, StoreError> {
        check_name(&input.name)?;
        check_source(&input.source)?;
        let tags = input.tags.unwrap_or_default();
        validate::tags(&tags)?;
        let mut channel = ChannelRecord {
            id: uuid::Uuid::new_v4().to_string(),
            name: input.name.clone(),
            account: ctx.account.clone(),
            home_region: ctx.region.clone(),
            source: input.source.clone(),
            destinations: Vec::new(),
            tags: Vec::new(),
            created_at: self.now(),
        };
        let arn = channel.arn();
        validate::merge_tags(&mut channel.tags, tags, &arn)?;
        let channel = self.write(|tx| {
            let mut channel = channel.clone();
            let existing = self.channels_in(tx, &ctx.account, &ctx.region)?;
            if existing.iter().any(|c| c.name == channel.name) {
                return Err(name_taken(&channel.name, ctx));
            }
            if existing.len() >= MAX_CHANNELS_PER_REGION {
                return Err(StoreError::ChannelMaxLimitExceeded(format!(
                    "Account {} already has {MAX_CHANNELS_PER_REGION} channels in {}",
                    ctx.account, ctx.region
                )));
            }
            channel.destinations = self.resolve_destinations(tx, ctx, &input.destinations)?;
            save_channel(tx, &channel)?;
            Ok(channel)
        })?;
        tracing::info!(channel = %channel.arn(), "created channel");
        Ok(CreateChannelResponse {
            channel_arn: Some(channel.arn()),
            name: Some(channel.name.clone()),
            source: Some(channel.source.clone()),
            destinations: Some(channel.wire_destinations()),
            tags: Some(channel.tags.clone()),
        })
    }

    pub async fn get_channel(
        &self,
        ctx: &RequestContext,
        input: GetChannelRequest,
    ) -> Result<GetChannelResponse, StoreError> {
        let direct = Direct(self.meta.as_ref());
        let channel = self.resolve_channel_in(&direct, ctx, &input.channel)?;
        let status = self.ingestion_status(&channel.storage_key())?;
        Ok(GetChannelResponse {
            channel_arn: Some(channel.arn()),
            name: Some(channel.name.clone()),
            source: Some(channel.source.clone()),
            source_config: None,
            destinations: Some(channel.wire_destinations()),
            ingestion_status: Some(status.to_wire()),
        })
    }

    pub async fn list_channels(
        &self,
        ctx: &RequestContext,
        input: ListChannelsRequest,
    ) -> Result<ListChannelsResponse, StoreError> {
        let page_size = match input.max_results {
            Some(n) if !(1..=1000).contains(&n) => {
                return Err(StoreError::InvalidParameter(format!(
                    "MaxResults {n} is not valid; specify 1 to 1000"
                )))
            }
            Some(n) => usize::try_from(n).unwrap_or(DEFAULT_PAGE_SIZE),
            None => DEFAULT_PAGE_SIZE,
        };
        let channels = self.channels_in(&Direct(self.meta.as_ref()), &ctx.account, &ctx.region)?;
        let start = match input.next_token.as_deref() {
            None => 0,
            Some(token) => {
                let after = decode_token(token)
                    .ok_or_else(|| StoreError::InvalidNextToken("Invalid NextToken".into()))?;
                match channels.iter().position(|c| c.id == after) {
                    Some(at) => at + 1,
                    None => {
                        return Err(StoreError::InvalidNextToken(
                            "NextToken no longer names a position in the listing".into(),
                        ))
                    }
                }
            }
        };
        let remaining = &channels[start.min(channels.len())..];
        let page: Vec<&ChannelRecord> = remaining.iter().take(page_size).collect();
        let next_token = (remaining.len() > page_size)
            .then(|| page.last().map(|c| encode_token(&c.id)))
            .flatten();
        Ok(ListChannelsResponse {
            channels: Some(
                page.iter()
                    .map(|c| Channel {
                        channel_arn: Some(c.arn()),
                        name: Some(c.name.clone()),
                    })
                    .collect(),
            ),
            next_token,
        })
    }

    pub async fn update_channel(
        &self,
        ctx: &RequestContext,
        input: UpdateChannelRequest,
    ) -> Result<UpdateChannelResponse, StoreError> {
        if input.name.is_none() && input.destinations.is_none() {
            return Err(StoreError::InvalidParameter(
                "UpdateChannel needs Name or Destinations to change".into(),
            ));
        }
        if let Some(name) = &input.name {
            check_name(name)?;
        }
        let channel = self.write(|tx| {
            let mut channel = self.resolve_channel_in(tx, ctx, &input.channel)?;
            if let Some(name) = &input.name {
                let others = self.channels_in(tx, &ctx.account, &ctx.region)?;
                if others.iter().any(|c| &c.name == name && c.id != channel.id) {
                    return Err(name_taken(name, ctx));
                }
                channel.name = name.clone();
            }
            if let Some(destinations) = &input.destinations {
                channel.destinations = self.resolve_destinations(tx, ctx, destinations)?;
            }
            save_channel(tx, &channel)?;
            Ok(channel)
        })?;
        tracing::info!(channel = %channel.arn(), "updated channel");
        Ok(UpdateChannelResponse {
            channel_arn: Some(channel.arn()),
            name: Some(channel.name.clone()),
            source: Some(channel.source.clone()),
            destinations: Some(channel.wire_destinations()),
        })
    }

    pub async fn delete_channel(
        &self,
        ctx: &RequestContext,
        input: DeleteChannelRequest,
    ) -> Result<DeleteChannelResponse, StoreError> {
        let channel = self.write(|tx| {
            let channel = self.resolve_channel_in(tx, ctx, &input.channel)?;
            tx.delete_document(CHANNELS, &channel.storage_key())?;
            tx.delete_document(CHANNEL_INGESTION, &channel.storage_key())?;
            tx.delete_document(crate::resource_policy::RESOURCE_POLICIES, &channel.arn())?;
            Ok(channel)
        })?;
        self.lock_ingestion().remove(&channel.storage_key());
        tracing::info!(channel = %channel.arn(), "deleted channel");
        Ok(DeleteChannelResponse {})
    }

    /// Whether a tagging request's `ResourceId` names a channel (by its ARN).
    pub fn is_channel_arn(resource_id: &str) -> bool {
        resource_id.starts_with("arn:")
            && opentrail_operations::ResourceType::of_arn(resource_id)
                == Some(opentrail_operations::ResourceType::Channel)
    }

    fn resolve_channel_tag_resource(
        &self,
        docs: &dyn Documents,
        ctx: &RequestContext,
        resource_id: &str,
    ) -> Result<ChannelRecord, StoreError> {
        self.resolve_channel_in(docs, ctx, resource_id)
            .map_err(|e| match e {
                StoreError::ChannelArnInvalid(message) => StoreError::ChannelArnInvalid(message),
                StoreError::ChannelNotFound(_) => StoreError::ChannelNotFound(format!(
                    "Channel {resource_id} does not exist in account {} and region {}",
                    ctx.account, ctx.region
                )),
                other => other,
            })
    }

    pub async fn add_channel_tags(
        &self,
        ctx: &RequestContext,
        input: AddTagsRequest,
    ) -> Result<AddTagsResponse, StoreError> {
        validate::tags(&input.tags_list)?;
        self.write(|tx| {
            let mut channel = self.resolve_channel_tag_resource(tx, ctx, &input.resource_id)?;
            validate::merge_tags(
                &mut channel.tags,
                input.tags_list.clone(),
                &input.resource_id,
            )?;
            save_channel(tx, &channel)
        })?;
        Ok(AddTagsResponse {})
    }

    pub async fn remove_channel_tags(
        &self,
        ctx: &RequestContext,
        input: RemoveTagsRequest,
    ) -> Result<RemoveTagsResponse, StoreError> {
        validate::tags(&input.tags_list)?;
        self.write(|tx| {
            let mut channel = self.resolve_channel_tag_resource(tx, ctx, &input.resource_id)?;
            opentrail_model::resource_rules::remove_tags(
                &mut channel.tags,
                &input.tags_list,
                |t| t.key.as_str(),
            );
            save_channel(tx, &channel)
        })?;
        Ok(RemoveTagsResponse {})
    }

    /// ListTags for one channel ARN.
    pub async fn list_channel_tags(
        &self,
        ctx: &RequestContext,
        input: ListTagsRequest,
    ) -> Result<ListTagsResponse, StoreError> {
        let mut resources = Vec::with_capacity(input.resource_id_list.len());
        for resource_id in &input.resource_id_list {
            let channel =
                self.resolve_channel_tag_resource(&Direct(self.meta.as_ref()), ctx, resource_id)?;
            resources.push(ResourceTag {
                resource_id: Some(resource_id.clone()),
                tags_list: Some(channel.tags),
            });
        }
        Ok(ListTagsResponse {
            resource_tag_list: Some(resources),
            next_token: None,
        })
    }

    /// The channel PutAuditEvents names (by ARN or id) for a caller of `account` signing
    /// for `region`, with the statuses of its destination stores.
    pub fn channel_for_ingest(
        &self,
        account: &AccountId,
        region: &Region,
        channel: &str,
    ) -> Result<IngestTarget, IngestError> {
        let reference = ChannelRef::parse(channel).ok_or_else(|| {
            IngestError::InvalidChannelArn(format!(
                "{channel} is not a valid channel ARN (arn:aws:cloudtrail:REGION:ACCOUNT:channel/ID) or channel id"
            ))
        })?;
        let direct = Direct(self.meta.as_ref());
        let not_found = || {
            IngestError::ChannelNotFound(format!(
                "Channel {channel} does not exist in region {region}"
            ))
        };
        if let Some((arn_region, _)) = &reference.scope {
            if arn_region != region.as_str() {
                return Err(not_found());
            }
        }
        let key = reference.storage_key(account, region);
        let stored = direct
            .get_document(CHANNELS, &key)
            .map_err(|e| IngestError::Internal(e.to_string()))?
            .ok_or_else(not_found)?;
        let record =
            decode_channel(&key, &stored).map_err(|e| IngestError::Internal(e.to_string()))?;
        if &record.account != account {
            return Err(IngestError::ChannelInsufficientPermission(format!(
                "Channel {} belongs to account {}; only its owner may send events to it, not account {account}",
                record.arn(),
                record.account
            )));
        }
        let mut destinations = Vec::with_capacity(record.destinations.len());
        for store_arn in &record.destinations {
            destinations.push((store_arn.clone(), self.store_status(&direct, store_arn)?));
        }
        Ok(IngestTarget {
            channel_arn: record.arn(),
            storage_key: record.storage_key(),
            account: record.account,
            region: record.home_region,
            destinations,
        })
    }

    /// A destination store's status; a store purged since is `None`.
    fn store_status(
        &self,
        docs: &dyn Documents,
        store_arn: &str,
    ) -> Result<Option<EventDataStoreStatus>, IngestError> {
        let Ok(arn) = opentrail_model::Arn::parse(store_arn) else {
            return Ok(None);
        };
        let id = arn.resource.strip_prefix("eventdatastore/").unwrap_or("");
        let key = format!("{}/{}/{id}", arn.account, arn.region);
        let Some(value) = docs
            .get_document(STORES, &key)
            .map_err(|e| IngestError::Internal(e.to_string()))?
        else {
            return Ok(None);
        };
        let store = decode(&key, &value).map_err(|e| IngestError::Internal(e.to_string()))?;
        if store.purged_at(self.now(), self.pending_deletion) {
            return Ok(None);
        }
        Ok(Some(store.status))
    }

    fn lock_ingestion(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, IngestionMemo>> {
        self.ingestion
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The channel's ingestion status: this server's latest, else the stored one.
    fn ingestion_status(&self, key: &str) -> Result<IngestionStatusRecord, StoreError> {
        if let Some(memo) = self.lock_ingestion().get(key) {
            return Ok(memo.status.clone());
        }
        let stored = Direct(self.meta.as_ref()).get_document(CHANNEL_INGESTION, key)?;
        Ok(stored
            .and_then(|value| serde_json::from_str(&value).ok())
            .unwrap_or_default())
    }

    /// Records a PutAuditEvents call's outcome in the channel's ingestion status; written
    /// to the metadata store at most once a second per channel.
    pub fn record_ingestion(&self, target: &IngestTarget, attempt: IngestionAttempt) {
        let to_write = {
            let mut memos = self.lock_ingestion();
            let memo = memos
                .entry(target.storage_key.clone())
                .or_insert_with(|| IngestionMemo {
                    status: IngestionStatusRecord::default(),
                    written_at: None,
                });
            let status = &mut memo.status;
            status.latest_attempt_time = Some(attempt.time);
            if attempt.last_attempt_event_id.is_some() {
                status.latest_attempt_event_id = attempt.last_attempt_event_id;
            }
            if let Some(event_id) = attempt.last_success_event_id {
                status.latest_success_time = Some(attempt.time);
                status.latest_success_event_id = Some(event_id);
            }
            if attempt.last_error_code.is_some() {
                status.latest_error_code = attempt.last_error_code;
            }
            let due = memo
                .written_at
                .is_none_or(|at| attempt.time - at >= INGESTION_STATUS_WRITE_INTERVAL);
            if !due {
                return;
            }
            memo.written_at = Some(attempt.time);
            memo.status.clone()
        };
        let Ok(value) = serde_json::to_string(&to_write) else {
            return;
        };
        let written =
            Direct(self.meta.as_ref()).put_document(CHANNEL_INGESTION, &target.storage_key, &value);
        if let Err(e) = written {
            tracing::warn!(channel = %target.channel_arn, error = %e, "failed to store the channel's ingestion status");
        }
    }
}

/// A channel's ingestion status as this server last saw it, and when it was last stored.
pub(crate) struct IngestionMemo {
    status: IngestionStatusRecord,
    written_at: Option<DateTime<Utc>>,
}

/// The channel a PutAuditEvents call sends to.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestTarget {
    pub channel_arn: String,
    pub storage_key: String,
    /// The channel's owner: every event must name it as `recipientAccountId`.
    pub account: AccountId,
    pub region: Region,
    /// Each destination store's ARN and status (`None`: purged).
    pub destinations: Vec<(String, Option<EventDataStoreStatus>)>,
}

impl IngestTarget {
    /// Whether some destination store takes events now (status ENABLED).
    pub fn has_enabled_destination(&self) -> bool {
        self.destinations
            .iter()
            .any(|(_, status)| status.as_ref() == Some(&EventDataStoreStatus::Enabled))
    }
}

/// PutAuditEvents' whole-request errors about the channel (service `cloudtrail-data`,
/// whose exception names have no `Exception` suffix).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    #[error("{0}")]
    InvalidChannelArn(String),
    #[error("{0}")]
    ChannelNotFound(String),
    #[error("{0}")]
    ChannelInsufficientPermission(String),
    #[error("{0}")]
    Internal(String),
}

impl opentrail_wire::AwsError for IngestError {
    fn code(&self) -> &'static str {
        match self {
            Self::InvalidChannelArn(_) => "InvalidChannelARN",
            Self::ChannelNotFound(_) => "ChannelNotFound",
            Self::ChannelInsufficientPermission(_) => "ChannelInsufficientPermission",
            Self::Internal(_) => "InternalFailure",
        }
    }

    fn message(&self) -> String {
        self.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_references() {
        let account = AccountId::parse("111122223333").unwrap();
        let region = Region::parse("us-east-1").unwrap();
        let by_arn = ChannelRef::parse(
            "arn:aws:cloudtrail:eu-west-1:444455556666:channel/0b4b8f7e-1c33-4a56-9d7e-3a1b2c3d4e5f",
        )
        .unwrap();
        assert_eq!(
            by_arn.storage_key(&account, &region),
            "444455556666/eu-west-1/0b4b8f7e-1c33-4a56-9d7e-3a1b2c3d4e5f"
        );
        let by_id = ChannelRef::parse("0b4b8f7e").unwrap();
        assert_eq!(
            by_id.storage_key(&account, &region),
            "111122223333/us-east-1/0b4b8f7e"
        );
        assert!(ChannelRef::parse("arn:aws:cloudtrail:us-east-1:111122223333:trail/t").is_none());
        assert!(ChannelRef::parse("arn:aws:s3:::bucket").is_none());
        assert!(ChannelRef::parse("not a channel").is_none());
        assert!(ChannelRef::parse("").is_none());
    }

    #[test]
    fn names_and_sources() {
        assert!(check_name("my-channel.1_a").is_ok());
        assert!(check_name("ab").is_err());
        assert!(check_name("has space").is_err());
        assert!(check_source("Custom").is_ok());
        assert_eq!(
            opentrail_wire::AwsError::code(&check_source("Okta").unwrap_err()),
            "InvalidSourceException"
        );
    }
}

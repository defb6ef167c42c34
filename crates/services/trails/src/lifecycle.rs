//! CreateTrail, GetTrail, DescribeTrails, ListTrails, UpdateTrail, DeleteTrail.

use crate::record::{TrailRecord, TrailStatus};
use crate::{
    new_incarnation, parse_trail_ref, remove_in, save_in, validate, RequestContext, TrailError,
    TrailRef, TrailService, MAX_TRAILS_PER_REGION,
};
use base64::Engine;
use opentrail_model::{Region, TrailName};
use opentrail_operations::{
    CreateTrailRequest, CreateTrailResponse, DeleteTrailRequest, DeleteTrailResponse,
    DescribeTrailsRequest, DescribeTrailsResponse, GetTrailRequest, GetTrailResponse,
    ListTrailsRequest, ListTrailsResponse, Trail, UpdateTrailRequest, UpdateTrailResponse,
};
use opentrail_selectors::TrailSelectors;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// Settings shared by CreateTrail and UpdateTrail, validated in AWS's order.
struct Settings<'a> {
    s3_key_prefix: Option<&'a str>,
    sns_topic_name: Option<&'a str>,
    kms_key_id: Option<&'a str>,
    cloud_watch_logs_log_group_arn: Option<&'a str>,
    cloud_watch_logs_role_arn: Option<&'a str>,
    is_organization_trail: Option<bool>,
}

/// Applies optional settings to a trail; an empty string clears a setting.
fn apply_settings(trail: &mut TrailRecord, s: Settings<'_>) -> Result<(), TrailError> {
    if s.is_organization_trail == Some(true) {
        return Err(TrailError::OrganizationsNotInUse(format!(
            "Account {} is not part of an organization; organization trails are not available",
            trail.account
        )));
    }
    if let Some(prefix) = s.s3_key_prefix {
        trail.s3_key_prefix = validate::s3_key_prefix(prefix)?;
    }
    if let Some(topic) = s.sns_topic_name {
        trail.sns_topic_arn = validate::sns_topic(topic, &trail.home_region, &trail.account)?;
    }
    if let Some(key) = s.kms_key_id {
        trail.kms_key_id = validate::kms_key_id(key, &trail.home_region, &trail.account)?;
    }
    if let Some(group) = s.cloud_watch_logs_log_group_arn {
        if !group.is_empty() {
            validate::cloud_watch_logs_log_group_arn(group)?;
        }
        trail.cloud_watch_logs_log_group_arn = (!group.is_empty()).then(|| group.to_owned());
    }
    if let Some(role) = s.cloud_watch_logs_role_arn {
        if !role.is_empty() {
            validate::cloud_watch_logs_role_arn(role)?;
        }
        trail.cloud_watch_logs_role_arn = (!role.is_empty()).then(|| role.to_owned());
    }
    validate::cloud_watch_logs_pair(
        trail.cloud_watch_logs_log_group_arn.as_deref(),
        trail.cloud_watch_logs_role_arn.as_deref(),
    )?;
    if trail.is_multi_region_trail && !trail.include_global_service_events {
        return Err(TrailError::InvalidParameterCombination(
            "Multi-Region trail must include global service events.".into(),
        ));
    }
    Ok(())
}

/// A trail named `name` in `home` (or everywhere, if multi-region) must not collide with
/// another trail visible in any region it would appear in.
fn check_name_free(
    others: &[TrailRecord],
    name: &TrailName,
    home: &Region,
    multi_region: bool,
) -> Result<(), TrailError> {
    let collides = others.iter().any(|t| {
        &t.name == name && (&t.home_region == home || t.is_multi_region_trail || multi_region)
    });
    if collides {
        let account = others
            .first()
            .map(|t| t.account.to_string())
            .unwrap_or_default();
        return Err(TrailError::TrailAlreadyExists(format!(
            "Trail {name} already exists for customer: {account}"
        )));
    }
    Ok(())
}

/// At most five trails per region, where a multi-region trail counts in every region.
fn check_capacity(
    others: &[TrailRecord],
    home: &Region,
    multi_region: bool,
) -> Result<(), TrailError> {
    let count_in = |region: &Region| others.iter().filter(|t| t.visible_in(region)).count();
    let mut regions: BTreeSet<&Region> = BTreeSet::from([home]);
    if multi_region {
        regions.extend(others.iter().map(|t| &t.home_region));
    }
    for region in regions {
        if count_in(region) >= MAX_TRAILS_PER_REGION {
            let account = others
                .first()
                .map(|t| t.account.to_string())
                .unwrap_or_default();
            return Err(TrailError::MaximumNumberOfTrailsExceeded(format!(
                "User: {account} already has {MAX_TRAILS_PER_REGION} trails in {region}."
            )));
        }
    }
    Ok(())
}

fn encode_token(value: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

fn decode_token(token: &str) -> Option<Value> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

impl TrailService {
    pub async fn create_trail(
        &self,
        ctx: &RequestContext,
        input: CreateTrailRequest,
    ) -> Result<CreateTrailResponse, TrailError> {
        let name = TrailName::parse(&input.name).map_err(|e| TrailError::InvalidTrailName(e.0))?;
        validate::s3_bucket_name(&input.s3_bucket_name)?;
        let tags = input.tags_list.unwrap_or_default();
        validate::tags(&tags)?;
        let mut trail = TrailRecord {
            name,
            account: ctx.account.clone(),
            home_region: ctx.region.clone(),
            s3_bucket_name: input.s3_bucket_name.clone(),
            s3_key_prefix: None,
            sns_topic_arn: None,
            include_global_service_events: input.include_global_service_events.unwrap_or(true),
            is_multi_region_trail: input.is_multi_region_trail.unwrap_or(false),
            log_file_validation_enabled: input.enable_log_file_validation.unwrap_or(false),
            cloud_watch_logs_log_group_arn: None,
            cloud_watch_logs_role_arn: None,
            kms_key_id: None,
            selectors: TrailSelectors::default_for_new_trail(),
            insight_selectors: Vec::new(),
            tags: Vec::new(),
            status: TrailStatus::default(),
            created_at: self.clock.now(),
            incarnation: new_incarnation(),
        };
        let arn = trail.arn().to_string();
        validate::merge_tags(&mut trail.tags, tags, &arn)?;
        apply_settings(
            &mut trail,
            Settings {
                s3_key_prefix: input.s3_key_prefix.as_deref(),
                sns_topic_name: input.sns_topic_name.as_deref(),
                kms_key_id: input.kms_key_id.as_deref(),
                cloud_watch_logs_log_group_arn: input.cloud_watch_logs_log_group_arn.as_deref(),
                cloud_watch_logs_role_arn: input.cloud_watch_logs_role_arn.as_deref(),
                is_organization_trail: input.is_organization_trail,
            },
        )?;

        self.require_topic(&trail)?;
        // Checked here for AWS's order of errors (name and capacity before the bucket),
        // and again in the transaction that writes, where they hold.
        let check = |existing: &[TrailRecord]| {
            check_name_free(
                existing,
                &trail.name,
                &trail.home_region,
                trail.is_multi_region_trail,
            )?;
            check_capacity(existing, &trail.home_region, trail.is_multi_region_trail)
        };
        check(&self.account_trails(&self.direct(), &ctx.account)?)?;
        self.require_bucket(ctx, &trail.s3_bucket_name).await?;
        self.write(|tx| {
            check(&self.account_trails(tx, &ctx.account)?)?;
            save_in(tx, &trail)
        })?;
        tracing::info!(trail = %trail.arn(), "created trail");
        Ok(trail.to_create_response())
    }

    pub async fn update_trail(
        &self,
        ctx: &RequestContext,
        input: UpdateTrailRequest,
    ) -> Result<UpdateTrailResponse, TrailError> {
        let before = self.resolve_for_write(ctx, &input.name)?;
        // Validated on the trail as read (AWS's order of errors, and the topic and bucket
        // checks, which may wait on I/O), then applied again in the transaction that writes.
        let mut trail = before.clone();
        self.apply_update(&self.direct(), ctx, &mut trail, &input)?;
        if trail.sns_topic_arn != before.sns_topic_arn {
            self.require_topic(&trail)?;
        }
        if trail.s3_bucket_name != before.s3_bucket_name {
            self.require_bucket(ctx, &trail.s3_bucket_name).await?;
        }
        let trail = self.write(|tx| {
            let mut trail = self.resolve_for_write_in(tx, ctx, &input.name)?;
            self.apply_update(tx, ctx, &mut trail, &input)?;
            save_in(tx, &trail)?;
            Ok(trail)
        })?;
        tracing::info!(trail = %trail.arn(), "updated trail");
        Ok(trail.to_update_response())
    }

    pub async fn delete_trail(
        &self,
        ctx: &RequestContext,
        input: DeleteTrailRequest,
    ) -> Result<DeleteTrailResponse, TrailError> {
        let trail = self.write(|tx| {
            let trail = self.resolve_for_write_in(tx, ctx, &input.name)?;
            remove_in(tx, &trail)?;
            Ok(trail)
        })?;
        tracing::info!(trail = %trail.arn(), "deleted trail");
        Ok(DeleteTrailResponse {})
    }

    /// UpdateTrail's changes to `trail`, with the checks that depend on other trails.
    fn apply_update(
        &self,
        docs: &dyn opentrail_meta::Documents,
        ctx: &RequestContext,
        trail: &mut TrailRecord,
        input: &UpdateTrailRequest,
    ) -> Result<(), TrailError> {
        let was_multi_region = trail.is_multi_region_trail;
        if let Some(bucket) = &input.s3_bucket_name {
            validate::s3_bucket_name(bucket)?;
            trail.s3_bucket_name = bucket.clone();
        }
        if let Some(include) = input.include_global_service_events {
            trail.include_global_service_events = include;
        }
        if let Some(multi) = input.is_multi_region_trail {
            trail.is_multi_region_trail = multi;
        }
        if let Some(validation) = input.enable_log_file_validation {
            trail.log_file_validation_enabled = validation;
        }
        apply_settings(
            trail,
            Settings {
                s3_key_prefix: input.s3_key_prefix.as_deref(),
                sns_topic_name: input.sns_topic_name.as_deref(),
                kms_key_id: input.kms_key_id.as_deref(),
                cloud_watch_logs_log_group_arn: input.cloud_watch_logs_log_group_arn.as_deref(),
                cloud_watch_logs_role_arn: input.cloud_watch_logs_role_arn.as_deref(),
                is_organization_trail: input.is_organization_trail,
            },
        )?;
        if trail.is_multi_region_trail && !was_multi_region {
            let others: Vec<TrailRecord> = self
                .account_trails(docs, &ctx.account)?
                .into_iter()
                .filter(|t| t.storage_key() != trail.storage_key())
                .collect();
            check_name_free(&others, &trail.name, &trail.home_region, true)?;
            check_capacity(&others, &trail.home_region, true)?;
        }
        Ok(())
    }

    pub async fn get_trail(
        &self,
        ctx: &RequestContext,
        input: GetTrailRequest,
    ) -> Result<GetTrailResponse, TrailError> {
        let trail = self.resolve(ctx, &input.name)?;
        Ok(GetTrailResponse {
            trail: Some(trail.to_trail()),
        })
    }

    pub async fn describe_trails(
        &self,
        ctx: &RequestContext,
        input: DescribeTrailsRequest,
    ) -> Result<DescribeTrailsResponse, TrailError> {
        let include_shadows = input.include_shadow_trails.unwrap_or(true);
        let visible = self.visible_trails(&self.direct(), ctx)?;
        let wanted = |t: &TrailRecord| include_shadows || t.home_region == ctx.region;
        let names = input.trail_name_list.unwrap_or_default();
        let mut selected: Vec<Trail> = Vec::new();
        if names.is_empty() {
            selected.extend(
                visible
                    .iter()
                    .filter(|t| wanted(t))
                    .map(TrailRecord::to_trail),
            );
            return Ok(DescribeTrailsResponse {
                trail_list: Some(selected),
            });
        }
        // A trail of another region is reachable by its ARN (AWS: "To return information
        // about a trail in another Region, you must specify its trail ARN").
        let all = self.account_trails(&self.direct(), &ctx.account)?;
        for requested in &names {
            let found = match parse_trail_ref(requested)? {
                TrailRef::Name(name) => visible.iter().find(|t| t.name == name && wanted(t)),
                TrailRef::Arn(arn) => all.iter().find(|t| {
                    t.account == arn.account && t.name == arn.name && t.home_region == arn.region
                }),
            };
            let Some(trail) = found else {
                continue;
            };
            let shape = trail.to_trail();
            if !selected.iter().any(|s| s.trail_arn == shape.trail_arn) {
                selected.push(shape);
            }
        }
        Ok(DescribeTrailsResponse {
            trail_list: Some(selected),
        })
    }

    /// Every trail of the account, in every region, a page at a time.
    pub async fn list_trails(
        &self,
        ctx: &RequestContext,
        input: ListTrailsRequest,
    ) -> Result<ListTrailsResponse, TrailError> {
        let trails = self.account_trails(&self.direct(), &ctx.account)?;
        let start_after = match input.next_token.as_deref() {
            None => None,
            Some(token) => {
                let decoded = decode_token(token)
                    .and_then(|v| v.get("after").and_then(Value::as_str).map(str::to_owned))
                    .ok_or_else(|| TrailError::InvalidNextToken("Invalid NextToken".into()))?;
                Some(decoded)
            }
        };
        let remaining: Vec<&TrailRecord> = trails
            .iter()
            .filter(|t| {
                start_after
                    .as_deref()
                    .is_none_or(|after| t.storage_key().as_str() > after)
            })
            .collect();
        let page = remaining
            .iter()
            .take(self.list_trails_page_size)
            .map(|t| t.to_trail_info())
            .collect();
        let next_token = (remaining.len() > self.list_trails_page_size).then(|| {
            let last = remaining[self.list_trails_page_size - 1].storage_key();
            encode_token(&json!({ "after": last }))
        });
        Ok(ListTrailsResponse {
            next_token,
            trails: Some(page),
        })
    }
}

//! AddTags, RemoveTags, ListTags on trails.

use crate::record::TrailRecord;
use crate::{adopt_legacy_status, save_in, validate, RequestContext, TrailError, TrailService};
use opentrail_meta::Documents;
use opentrail_model::{Arn, TrailArn};
use opentrail_operations::{
    AddTagsRequest, AddTagsResponse, ListTagsRequest, ListTagsResponse, RemoveTagsRequest,
    RemoveTagsResponse, ResourceTag,
};

impl TrailService {
    /// Finds the trail a tagging request's `ResourceId` (always an ARN) names.
    fn resolve_tag_resource(
        &self,
        docs: &dyn Documents,
        ctx: &RequestContext,
        resource_id: &str,
    ) -> Result<TrailRecord, TrailError> {
        let arn = Arn::parse(resource_id).map_err(|_| {
            TrailError::CloudTrailArnInvalid(format!(
                "ResourceId {resource_id} is not a valid ARN; tagging operations take the resource's ARN"
            ))
        })?;
        if arn.service != "cloudtrail" {
            return Err(TrailError::ResourceTypeNotSupported(format!(
                "Resource type of {resource_id} is not supported; only CloudTrail trails, event data stores and channels can be tagged"
            )));
        }
        let missing =
            || TrailError::ResourceNotFound(format!("Resource {resource_id} does not exist"));
        if !arn.resource.starts_with("trail/") {
            return Err(missing());
        }
        let trail_arn =
            TrailArn::parse(resource_id).map_err(|e| TrailError::CloudTrailArnInvalid(e.0))?;
        if trail_arn.account != ctx.account {
            return Err(missing());
        }
        self.visible_trails(docs, ctx)?
            .into_iter()
            .find(|t| t.name == trail_arn.name && t.home_region == trail_arn.region)
            .ok_or_else(missing)
    }

    pub async fn add_tags(
        &self,
        ctx: &RequestContext,
        input: AddTagsRequest,
    ) -> Result<AddTagsResponse, TrailError> {
        validate::tags(&input.tags_list)?;
        self.write(|tx| {
            let mut trail = self.resolve_tag_resource(tx, ctx, &input.resource_id)?;
            adopt_legacy_status(tx, &mut trail)?;
            validate::merge_tags(&mut trail.tags, input.tags_list.clone(), &input.resource_id)?;
            save_in(tx, &trail)
        })?;
        Ok(AddTagsResponse {})
    }

    pub async fn remove_tags(
        &self,
        ctx: &RequestContext,
        input: RemoveTagsRequest,
    ) -> Result<RemoveTagsResponse, TrailError> {
        validate::tags(&input.tags_list)?;
        self.write(|tx| {
            let mut trail = self.resolve_tag_resource(tx, ctx, &input.resource_id)?;
            adopt_legacy_status(tx, &mut trail)?;
            opentrail_model::resource_rules::remove_tags(&mut trail.tags, &input.tags_list, |t| {
                t.key.as_str()
            });
            save_in(tx, &trail)
        })?;
        Ok(RemoveTagsResponse {})
    }

    pub async fn list_tags(
        &self,
        ctx: &RequestContext,
        input: ListTagsRequest,
    ) -> Result<ListTagsResponse, TrailError> {
        let mut resources = Vec::with_capacity(input.resource_id_list.len());
        for resource_id in &input.resource_id_list {
            let trail = self.resolve_tag_resource(&self.direct(), ctx, resource_id)?;
            resources.push(ResourceTag {
                resource_id: Some(resource_id.clone()),
                tags_list: Some(trail.tags),
            });
        }
        Ok(ListTagsResponse {
            resource_tag_list: Some(resources),
            next_token: None,
        })
    }
}

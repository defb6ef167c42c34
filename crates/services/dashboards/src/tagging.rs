//! AddTags, RemoveTags and ListTags on dashboard ARNs (the HTTP edge routes each
//! `ResourceId` by its ARN's resource type).

use crate::{lifecycle::tags_valid, save_in, DashboardError, DashboardService};
use opentrail_model::{resource_rules, RequestContext};
use opentrail_operations::{
    AddTagsRequest, AddTagsResponse, ListTagsRequest, ListTagsResponse, RemoveTagsRequest,
    RemoveTagsResponse, ResourceTag,
};

impl DashboardService {
    pub async fn add_tags(
        &self,
        ctx: &RequestContext,
        input: AddTagsRequest,
    ) -> Result<AddTagsResponse, DashboardError> {
        tags_valid(&input.tags_list)?;
        self.seed_managed(ctx)?;
        self.write(|tx| {
            let mut dashboard = self.resolve_in(tx, ctx, &input.resource_id)?;
            dashboard.tags = resource_rules::merge_tags(
                &dashboard.tags,
                input.tags_list.clone(),
                |t| t.key.as_str(),
                &input.resource_id,
            )
            .map_err(DashboardError::TagsLimitExceeded)?;
            save_in(tx, &dashboard)
        })?;
        Ok(AddTagsResponse {})
    }

    pub async fn remove_tags(
        &self,
        ctx: &RequestContext,
        input: RemoveTagsRequest,
    ) -> Result<RemoveTagsResponse, DashboardError> {
        tags_valid(&input.tags_list)?;
        self.seed_managed(ctx)?;
        self.write(|tx| {
            let mut dashboard = self.resolve_in(tx, ctx, &input.resource_id)?;
            resource_rules::remove_tags(&mut dashboard.tags, &input.tags_list, |t| t.key.as_str());
            save_in(tx, &dashboard)
        })?;
        Ok(RemoveTagsResponse {})
    }

    pub async fn list_tags(
        &self,
        ctx: &RequestContext,
        input: ListTagsRequest,
    ) -> Result<ListTagsResponse, DashboardError> {
        let mut resources = Vec::with_capacity(input.resource_id_list.len());
        for resource_id in &input.resource_id_list {
            let dashboard = self.resolve(ctx, resource_id)?;
            resources.push(ResourceTag {
                resource_id: Some(resource_id.clone()),
                tags_list: Some(dashboard.tags),
            });
        }
        Ok(ListTagsResponse {
            resource_tag_list: Some(resources),
            next_token: None,
        })
    }
}

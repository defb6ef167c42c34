//! AddTags, RemoveTags, ListTags on event data store ARNs (the HTTP edge routes each
//! `ResourceId` by its ARN's resource type; trails handle their own).

use crate::record::StoreRecord;
use crate::{save_in, validate, StoreError, StoreService};
use opentrail_meta::Documents;
use opentrail_model::RequestContext;
use opentrail_operations::{
    AddTagsRequest, AddTagsResponse, ListTagsRequest, ListTagsResponse, RemoveTagsRequest,
    RemoveTagsResponse, ResourceTag,
};

impl StoreService {
    /// The store a tagging request's `ResourceId` names; anything else of ours is missing.
    fn resolve_tag_resource(
        &self,
        docs: &dyn Documents,
        ctx: &RequestContext,
        resource_id: &str,
    ) -> Result<StoreRecord, StoreError> {
        self.resolve_in(docs, ctx, resource_id)
            .map_err(|e| match e {
                StoreError::EventDataStoreNotFound(_) | StoreError::EventDataStoreArnInvalid(_) => {
                    StoreError::ResourceNotFound(format!("Resource {resource_id} does not exist"))
                }
                other => other,
            })
    }

    pub async fn add_tags(
        &self,
        ctx: &RequestContext,
        input: AddTagsRequest,
    ) -> Result<AddTagsResponse, StoreError> {
        validate::tags(&input.tags_list)?;
        self.write(|tx| {
            let mut store = self.resolve_tag_resource(tx, ctx, &input.resource_id)?;
            validate::merge_tags(&mut store.tags, input.tags_list.clone(), &input.resource_id)?;
            save_in(tx, &store)
        })?;
        Ok(AddTagsResponse {})
    }

    pub async fn remove_tags(
        &self,
        ctx: &RequestContext,
        input: RemoveTagsRequest,
    ) -> Result<RemoveTagsResponse, StoreError> {
        validate::tags(&input.tags_list)?;
        self.write(|tx| {
            let mut store = self.resolve_tag_resource(tx, ctx, &input.resource_id)?;
            opentrail_model::resource_rules::remove_tags(&mut store.tags, &input.tags_list, |t| {
                t.key.as_str()
            });
            save_in(tx, &store)
        })?;
        Ok(RemoveTagsResponse {})
    }

    pub async fn list_tags(
        &self,
        ctx: &RequestContext,
        input: ListTagsRequest,
    ) -> Result<ListTagsResponse, StoreError> {
        let mut resources = Vec::with_capacity(input.resource_id_list.len());
        for resource_id in &input.resource_id_list {
            let store =
                self.resolve_tag_resource(&crate::Direct(self.meta.as_ref()), ctx, resource_id)?;
            resources.push(ResourceTag {
                resource_id: Some(resource_id.clone()),
                tags_list: Some(store.tags),
            });
        }
        Ok(ListTagsResponse {
            resource_tag_list: Some(resources),
            next_token: None,
        })
    }
}

//! EnableFederation and DisableFederation: Lake query federation of an event data store.
//! AWS registers the store as a table in the Glue Data Catalog for Athena; OpenTrail
//! publishes it as an Apache Iceberg table beside the lake's files (opentrail-lake's
//! `federation`), readable by any Iceberg engine. The calls record the request (ENABLING,
//! DISABLING); the lake writer publishes or removes the table and settles the status
//! (ENABLED, DISABLED) through [`StoreService::settle_federation`].

use crate::lifecycle::inactive;
use crate::record::StoreRecord;
use crate::{save_in, StoreError, StoreService, STORES};
use opentrail_model::RequestContext;
use opentrail_operations::{
    DisableFederationRequest, DisableFederationResponse, EnableFederationRequest,
    EnableFederationResponse, EventDataStoreStatus, FederationStatus,
};
use opentrail_selectors::EventDataStoreKind;

/// The model's FederationRoleArn: 3 to 125 characters of `[a-zA-Z0-9._/\-:@=+,.]`.
fn validate_role_arn(ctx: &RequestContext, role: &str) -> Result<(), StoreError> {
    let invalid = |why: &str| {
        StoreError::InvalidParameter(format!("FederationRoleArn {role:?} is not valid: {why}"))
    };
    if !(3..=125).contains(&role.len()) {
        return Err(invalid("it must be 3 to 125 characters long"));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._/-:@=+,".contains(c);
    if !role.chars().all(allowed) {
        return Err(invalid("it may hold only letters, digits and ._/-:@=+,"));
    }
    let parts: Vec<&str> = role.splitn(6, ':').collect();
    let [arn, partition, service, region, account, resource] = parts.as_slice() else {
        return Err(invalid(
            "it must be an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)",
        ));
    };
    let name = resource.strip_prefix("role/").unwrap_or("");
    if *arn != "arn"
        || !partition.starts_with("aws")
        || *service != "iam"
        || !region.is_empty()
        || name.is_empty()
    {
        return Err(invalid(
            "it must be an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)",
        ));
    }
    if *account != ctx.account.as_str() {
        return Err(invalid(&format!(
            "the federation role must be a role of account {}",
            ctx.account
        )));
    }
    Ok(())
}

fn busy(store: &StoreRecord) -> StoreError {
    StoreError::ConcurrentModification(format!(
        "Lake query federation of event data store {} is {}; wait until it is done",
        store.arn(),
        store
            .federation_status
            .as_ref()
            .map_or("DISABLED", |status| status.as_str())
    ))
}

impl StoreService {
    pub async fn enable_federation(
        &self,
        ctx: &RequestContext,
        input: EnableFederationRequest,
    ) -> Result<EnableFederationResponse, StoreError> {
        let now = self.now();
        let store = self.write(|tx| {
            let mut store = self.resolve_in(tx, ctx, &input.event_data_store)?;
            validate_role_arn(ctx, &input.federation_role_arn)?;
            if store.status == EventDataStoreStatus::PendingDeletion {
                return Err(inactive(&store));
            }
            if !matches!(
                store.kind(),
                EventDataStoreKind::CloudTrailEvents
                    | EventDataStoreKind::Insight
                    | EventDataStoreKind::ActivityAuditLog
            ) {
                return Err(StoreError::UnsupportedOperation(format!(
                    "Event data store {} holds events OpenTrail's lake does not store; only stores of CloudTrail, Insights or channel events can be federated",
                    store.arn()
                )));
            }
            match store.federation_status {
                Some(FederationStatus::Enabled) => {
                    return Err(StoreError::EventDataStoreFederationEnabled(format!(
                        "Lake query federation is already enabled on event data store {}",
                        store.arn()
                    )))
                }
                Some(FederationStatus::Enabling | FederationStatus::Disabling) => {
                    return Err(busy(&store))
                }
                _ => {}
            }
            store.federation_status = Some(FederationStatus::Enabling);
            store.federation_role_arn = Some(input.federation_role_arn.clone());
            store.updated_at = now;
            save_in(tx, &store)?;
            Ok(store)
        })?;
        tracing::info!(event_data_store = %store.arn(), "enabling Lake query federation");
        Ok(EnableFederationResponse {
            event_data_store_arn: Some(store.arn()),
            federation_status: store.federation_status.clone(),
            federation_role_arn: store.federation_role_arn.clone(),
        })
    }

    /// On a store whose federation is already DISABLED (or was never enabled) it answers
    /// DISABLED and changes nothing.
    pub async fn disable_federation(
        &self,
        ctx: &RequestContext,
        input: DisableFederationRequest,
    ) -> Result<DisableFederationResponse, StoreError> {
        let now = self.now();
        let store = self.write(|tx| {
            let mut store = self.resolve_in(tx, ctx, &input.event_data_store)?;
            if store.status == EventDataStoreStatus::PendingDeletion {
                return Err(inactive(&store));
            }
            match store.federation_status {
                Some(FederationStatus::Enabling | FederationStatus::Disabling) => {
                    return Err(busy(&store))
                }
                Some(FederationStatus::Enabled) => {
                    store.federation_status = Some(FederationStatus::Disabling);
                    store.updated_at = now;
                    save_in(tx, &store)?;
                }
                _ => {}
            }
            Ok(store)
        })?;
        tracing::info!(event_data_store = %store.arn(), "disabling Lake query federation");
        Ok(DisableFederationResponse {
            event_data_store_arn: Some(store.arn()),
            federation_status: Some(
                store
                    .federation_status
                    .clone()
                    .unwrap_or(FederationStatus::Disabled),
            ),
        })
    }

    /// The stores whose federation is ENABLING, ENABLED or DISABLING (for the lake writer).
    pub fn federated_stores(&self) -> Result<Vec<StoreRecord>, StoreError> {
        let mut stores = self.all_stores()?;
        stores.retain(StoreRecord::federation_active);
        Ok(stores)
    }

    /// The lake writer published (`enabled`) or removed (`!enabled`) the table of store
    /// `id`: ENABLING becomes ENABLED, DISABLING becomes DISABLED (the role is forgotten).
    /// A store whose status moved on meanwhile is left as it is.
    pub fn settle_federation(&self, id: &str, enabled: bool) -> Result<(), StoreError> {
        let now = self.now();
        self.write(|tx| {
            for (key, value) in tx.list_documents(STORES)? {
                let mut store = crate::decode(&key, &value)?;
                if store.id != id {
                    continue;
                }
                match (&store.federation_status, enabled) {
                    (Some(FederationStatus::Enabling), true) => {
                        store.federation_status = Some(FederationStatus::Enabled);
                    }
                    (Some(FederationStatus::Disabling), false) => {
                        store.federation_status = Some(FederationStatus::Disabled);
                        store.federation_role_arn = None;
                    }
                    _ => continue,
                }
                store.updated_at = now;
                save_in(tx, &store)?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> RequestContext {
        RequestContext {
            account: opentrail_model::AccountId::parse("111122223333").unwrap(),
            region: opentrail_model::Region::parse("us-east-1").unwrap(),
            principal: opentrail_model::Principal {
                access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
                kind: opentrail_model::PrincipalKind::Root,
            },
        }
    }

    #[test]
    fn role_arns_must_name_a_role_of_the_account() {
        let ctx = ctx();
        assert!(validate_role_arn(&ctx, "arn:aws:iam::111122223333:role/federation").is_ok());
        for bad in [
            "",
            "ab",
            "not-an-arn",
            "arn:aws:iam::111122223333:user/someone",
            "arn:aws:s3:::bucket",
            "arn:aws:iam::444455556666:role/other",
            "arn:aws:iam::111122223333:role/has space",
        ] {
            let err = validate_role_arn(&ctx, bad).unwrap_err();
            assert!(
                matches!(err, StoreError::InvalidParameter(_)),
                "{bad}: {err:?}"
            );
        }
        let long = format!("arn:aws:iam::111122223333:role/{}", "r".repeat(120));
        assert!(validate_role_arn(&ctx, &long).is_err());
    }
}

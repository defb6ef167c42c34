//! aws-sdk-cloudtrail against the real binary for CloudTrail Lake event data stores: the
//! typed SDK deserialises our answers to CreateEventDataStore, GetEventDataStore and
//! ListEventDataStores (its paginator follows our tokens), and reads their typed errors.
//! Every request/answer case lives in `tests/scenarios/event_data_stores.json`.

mod common;

use aws_sdk_cloudtrail::types::{
    AdvancedEventSelector, AdvancedFieldSelector, BillingMode, EventDataStoreStatus,
};
use common::{expect_error, tag, TestServer, ACCOUNT_ID};

const REGION: &str = "us-east-1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_get_and_list_event_data_stores_through_the_sdk() {
    let server = TestServer::start();
    let client = server.client(REGION);

    let created = client
        .create_event_data_store()
        .name("sdk-store")
        .retention_period(90)
        .tags_list(tag("team", "security"))
        .send()
        .await
        .expect("CreateEventDataStore");
    let arn = created.event_data_store_arn().expect("an ARN").to_owned();
    assert!(
        arn.starts_with(&format!(
            "arn:aws:cloudtrail:{REGION}:{ACCOUNT_ID}:eventdatastore/"
        )),
        "{arn}"
    );
    assert_eq!(created.name(), Some("sdk-store"));
    assert_eq!(created.status(), Some(&EventDataStoreStatus::Created));
    assert_eq!(created.retention_period(), Some(90));
    assert_eq!(created.termination_protection_enabled(), Some(true));
    assert_eq!(created.multi_region_enabled(), Some(true));
    assert_eq!(
        created.billing_mode(),
        Some(&BillingMode::ExtendableRetentionPricing)
    );
    assert_eq!(created.tags_list().len(), 1);
    let selectors = created.advanced_event_selectors();
    assert_eq!(selectors.len(), 1);
    assert_eq!(selectors[0].name(), Some("Default management events"));
    assert!(created.created_timestamp().is_some());

    let id = arn.rsplit('/').next().expect("an id").to_owned();
    let got = client
        .get_event_data_store()
        .event_data_store(&id)
        .send()
        .await
        .expect("GetEventDataStore");
    assert_eq!(got.event_data_store_arn(), Some(arn.as_str()));
    assert_eq!(got.status(), Some(&EventDataStoreStatus::Enabled));
    assert_eq!(got.partition_keys().len(), 1);
    assert_eq!(got.partition_keys()[0].name(), "eventTime");

    let data_events = AdvancedEventSelector::builder()
        .name("s3 objects")
        .field_selectors(
            AdvancedFieldSelector::builder()
                .field("eventCategory")
                .equals("Data")
                .build()
                .expect("field selector"),
        )
        .field_selectors(
            AdvancedFieldSelector::builder()
                .field("resources.type")
                .equals("AWS::S3::Object")
                .build()
                .expect("field selector"),
        )
        .build()
        .expect("selector");
    for name in ["sdk-2", "sdk-3"] {
        client
            .create_event_data_store()
            .name(name)
            .advanced_event_selectors(data_events.clone())
            .send()
            .await
            .expect("CreateEventDataStore");
    }
    // Pages of one: the paginator follows NextToken through all three, in creation order.
    let mut names = Vec::new();
    let mut pages = client
        .list_event_data_stores()
        .max_results(1)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.expect("ListEventDataStores page");
        for store in page.event_data_stores() {
            names.push(store.name().expect("Name").to_owned());
        }
    }
    assert_eq!(names, ["sdk-store", "sdk-2", "sdk-3"]);

    expect_error(
        client
            .create_event_data_store()
            .name("sdk-store")
            .send()
            .await,
        "EventDataStoreAlreadyExistsException",
    );
    expect_error(
        client
            .get_event_data_store()
            .event_data_store(format!(
                "arn:aws:cloudtrail:{REGION}:{ACCOUNT_ID}:eventdatastore/00000000-0000-0000-0000-000000000000"
            ))
            .send()
            .await,
        "EventDataStoreNotFoundException",
    );
}

/// EnableFederation / DisableFederation through the typed SDK: ENABLING, then ENABLED once
/// the lake writer published the Iceberg table; a federated store cannot be deleted;
/// DISABLING, then DISABLED; each modelled error the server answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federation_through_the_sdk() {
    use aws_sdk_cloudtrail::types::FederationStatus;
    let server = TestServer::start();
    let client = server.client(REGION);
    let role = format!("arn:aws:iam::{ACCOUNT_ID}:role/federation");
    let arn = client
        .create_event_data_store()
        .name("sdk-federated")
        .termination_protection_enabled(false)
        .send()
        .await
        .expect("CreateEventDataStore")
        .event_data_store_arn()
        .expect("an ARN")
        .to_owned();

    let enabled = client
        .enable_federation()
        .event_data_store(&arn)
        .federation_role_arn(&role)
        .send()
        .await
        .expect("EnableFederation");
    assert_eq!(enabled.event_data_store_arn(), Some(arn.as_str()));
    assert_eq!(
        enabled.federation_status(),
        Some(&FederationStatus::Enabling)
    );
    assert_eq!(enabled.federation_role_arn(), Some(role.as_str()));
    let status = |client: aws_sdk_cloudtrail::Client, arn: String| async move {
        client
            .get_event_data_store()
            .event_data_store(arn)
            .send()
            .await
            .expect("GetEventDataStore")
            .federation_status()
            .cloned()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    while status(client.clone(), arn.clone()).await != Some(FederationStatus::Enabled) {
        assert!(std::time::Instant::now() < deadline, "never ENABLED");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    expect_error(
        client
            .enable_federation()
            .event_data_store(&arn)
            .federation_role_arn(&role)
            .send()
            .await,
        "EventDataStoreFederationEnabledException",
    );
    expect_error(
        client
            .delete_event_data_store()
            .event_data_store(&arn)
            .send()
            .await,
        "EventDataStoreFederationEnabledException",
    );

    let disabled = client
        .disable_federation()
        .event_data_store(&arn)
        .send()
        .await
        .expect("DisableFederation");
    assert_eq!(disabled.event_data_store_arn(), Some(arn.as_str()));
    assert!(matches!(
        disabled.federation_status(),
        Some(FederationStatus::Disabling | FederationStatus::Disabled)
    ));
    while status(client.clone(), arn.clone()).await != Some(FederationStatus::Disabled) {
        assert!(std::time::Instant::now() < deadline, "never DISABLED");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    expect_error(
        client
            .enable_federation()
            .event_data_store(&arn)
            .federation_role_arn("arn:aws:iam::111122223333:user/not-a-role")
            .send()
            .await,
        "InvalidParameterException",
    );
    expect_error(
        client
            .enable_federation()
            .event_data_store("00000000-0000-0000-0000-000000000000")
            .federation_role_arn(&role)
            .send()
            .await,
        "EventDataStoreNotFoundException",
    );
    expect_error(
        client
            .disable_federation()
            .event_data_store("bad/id")
            .send()
            .await,
        "EventDataStoreARNInvalidException",
    );
    client
        .delete_event_data_store()
        .event_data_store(&arn)
        .send()
        .await
        .expect("DeleteEventDataStore once federation is DISABLED");
    expect_error(
        client
            .enable_federation()
            .event_data_store(&arn)
            .federation_role_arn(&role)
            .send()
            .await,
        "InactiveEventDataStoreException",
    );
}

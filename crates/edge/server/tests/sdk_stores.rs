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

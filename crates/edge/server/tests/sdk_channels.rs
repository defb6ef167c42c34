//! aws-sdk-cloudtrail and aws-sdk-cloudtraildata against the real binary for channels:
//! CreateChannel, GetChannel, ListChannels, UpdateChannel, DeleteChannel and PutAuditEvents
//! (rest-json, SigV4 service `cloudtrail-data`) deserialise into the SDKs' types, and each
//! modelled error arrives as its typed variant. Every request/answer case of the channel
//! operations is in `tests/scenarios/channels.json`.

mod common;

use aws_sdk_cloudtrail::types::{
    AdvancedEventSelector, AdvancedFieldSelector, Destination, DestinationType,
};
use aws_sdk_cloudtraildata::error::ProvideErrorMetadata;
use aws_sdk_cloudtraildata::types::AuditEvent;
use common::{AccessKey, TestServer, ACCOUNT_ID};
use std::time::Duration;

const REGION: &str = "us-east-1";

fn data_client(server: &TestServer, region: &str) -> aws_sdk_cloudtraildata::Client {
    data_client_with_key(server, region, server.credentials())
}

fn data_client_with_key(
    server: &TestServer,
    region: &str,
    key: &AccessKey,
) -> aws_sdk_cloudtraildata::Client {
    use aws_sdk_cloudtraildata::config::{BehaviorVersion, Credentials, Region};
    use aws_smithy_http_client::tls;
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let config = aws_sdk_cloudtraildata::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(Credentials::from_keys(
            &key.access_key_id,
            &key.secret_access_key,
            None,
        ))
        .endpoint_url(server.endpoint())
        .http_client(http_client)
        .retry_config(aws_sdk_cloudtraildata::config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_sdk_cloudtraildata::config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(30))
                .build(),
        )
        .build();
    aws_sdk_cloudtraildata::Client::from_conf(config)
}

fn event_data(uid: &str, recipient: &str) -> String {
    serde_json::json!({
        "version": "1.0",
        "userIdentity": {"type": "CustomUser", "principalId": "alice"},
        "eventSource": "sdk-app.example.com",
        "eventName": "Login",
        "eventTime": "2024-05-01T10:00:00Z",
        "UID": uid,
        "recipientAccountId": recipient,
    })
    .to_string()
}

fn audit_event(id: &str, data: String) -> AuditEvent {
    AuditEvent::builder()
        .id(id)
        .event_data(data)
        .build()
        .expect("audit event")
}

async fn audit_store(client: &aws_sdk_cloudtrail::Client, name: &str) -> String {
    client
        .create_event_data_store()
        .name(name)
        .termination_protection_enabled(false)
        .advanced_event_selectors(
            AdvancedEventSelector::builder()
                .name("channel events")
                .field_selectors(
                    AdvancedFieldSelector::builder()
                        .field("eventCategory")
                        .equals("ActivityAuditLog")
                        .build()
                        .expect("field selector"),
                )
                .build()
                .expect("selector"),
        )
        .send()
        .await
        .expect("CreateEventDataStore")
        .event_data_store_arn()
        .expect("an ARN")
        .to_owned()
}

fn destination(store: &str) -> Destination {
    Destination::builder()
        .r#type(DestinationType::EventDataStore)
        .location(store)
        .build()
        .expect("destination")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_and_put_audit_events_through_the_sdks() {
    let server = TestServer::start();
    let client = server.client(REGION);
    let data = data_client(&server, REGION);
    let store = audit_store(&client, "sdk-audit").await;

    let created = client
        .create_channel()
        .name("sdk-channel")
        .source("Custom")
        .destinations(destination(&store))
        .send()
        .await
        .expect("CreateChannel");
    let channel = created.channel_arn().expect("an ARN").to_owned();
    assert!(channel.starts_with(&format!(
        "arn:aws:cloudtrail:{REGION}:{ACCOUNT_ID}:channel/"
    )));
    assert_eq!(created.source(), Some("Custom"));
    assert_eq!(created.destinations()[0].location(), store);

    let put = data
        .put_audit_events()
        .channel_arn(&channel)
        .audit_events(audit_event("ok-1", event_data("u-1", ACCOUNT_ID)))
        .audit_events(
            AuditEvent::builder()
                .id("bad-checksum")
                .event_data(event_data("u-2", ACCOUNT_ID))
                .event_data_checksum("AAAA")
                .build()
                .expect("audit event"),
        )
        .audit_events(audit_event("recipient", event_data("u-3", "444455556666")))
        .send()
        .await
        .expect("PutAuditEvents");
    assert_eq!(put.successful().len(), 1);
    assert_eq!(put.successful()[0].id(), "ok-1");
    let event_id = put.successful()[0].event_id().to_owned();
    let failed: Vec<(&str, &str)> = put
        .failed()
        .iter()
        .map(|f| (f.id(), f.error_code()))
        .collect();
    assert_eq!(
        failed,
        vec![
            ("bad-checksum", "InvalidChecksum"),
            ("recipient", "InvalidRecipient")
        ]
    );

    let got = client
        .get_channel()
        .channel(&channel)
        .send()
        .await
        .expect("GetChannel");
    let status = got.ingestion_status().expect("an ingestion status");
    assert_eq!(
        status.latest_ingestion_success_event_id(),
        Some(event_id.as_str())
    );
    assert_eq!(
        status.latest_ingestion_error_code(),
        Some("InvalidRecipient")
    );
    assert!(status.latest_ingestion_success_time().is_some());

    let listed = client.list_channels().send().await.expect("ListChannels");
    assert_eq!(listed.channels().len(), 1);
    assert_eq!(listed.channels()[0].name(), Some("sdk-channel"));
    let updated = client
        .update_channel()
        .channel(&channel)
        .name("sdk-renamed")
        .send()
        .await
        .expect("UpdateChannel");
    assert_eq!(updated.name(), Some("sdk-renamed"));

    // Each modelled PutAuditEvents error, typed.
    let duplicated = data
        .put_audit_events()
        .channel_arn(&channel)
        .audit_events(audit_event("same", event_data("a", ACCOUNT_ID)))
        .audit_events(audit_event("same", event_data("b", ACCOUNT_ID)))
        .send()
        .await;
    let duplicated = duplicated
        .expect_err("DuplicatedAuditEventId")
        .into_service_error();
    assert!(duplicated.is_duplicated_audit_event_id(), "{duplicated:?}");
    assert!(duplicated.message().is_some_and(|m| m.contains("same")));
    let invalid = data
        .put_audit_events()
        .channel_arn("arn:aws:s3:::not-a-channel")
        .audit_events(audit_event("x", event_data("x", ACCOUNT_ID)))
        .send()
        .await;
    assert!(invalid
        .expect_err("InvalidChannelARN")
        .into_service_error()
        .is_invalid_channel_arn());
    let other_region = data_client(&server, "eu-west-1")
        .put_audit_events()
        .channel_arn(&channel)
        .audit_events(audit_event("x", event_data("x", ACCOUNT_ID)))
        .send()
        .await;
    assert!(other_region
        .expect_err("ChannelNotFound")
        .into_service_error()
        .is_channel_not_found());

    // CloudTrail's typed errors for channels.
    let exists = client
        .delete_event_data_store()
        .event_data_store(&store)
        .send()
        .await;
    assert!(exists
        .expect_err("ChannelExistsForEDSException")
        .into_service_error()
        .is_channel_exists_for_eds_exception());
    let bad_source = client
        .create_channel()
        .name("other")
        .source("Partner")
        .destinations(destination(&store))
        .send()
        .await;
    assert!(bad_source
        .expect_err("InvalidSourceException")
        .into_service_error()
        .is_invalid_source_exception());
    let taken = client
        .create_channel()
        .name("sdk-renamed")
        .source("Custom")
        .destinations(destination(&store))
        .send()
        .await;
    assert!(taken
        .expect_err("ChannelAlreadyExistsException")
        .into_service_error()
        .is_channel_already_exists_exception());
    let bad_arn = client.get_channel().channel("arn:aws:s3:::x").send().await;
    assert!(bad_arn
        .expect_err("ChannelARNInvalidException")
        .into_service_error()
        .is_channel_arn_invalid_exception());

    client
        .delete_channel()
        .channel(&channel)
        .send()
        .await
        .expect("DeleteChannel");
    let gone = client.get_channel().channel(&channel).send().await;
    assert!(gone
        .expect_err("ChannelNotFoundException")
        .into_service_error()
        .is_channel_not_found_exception());
    let gone = data
        .put_audit_events()
        .channel_arn(&channel)
        .audit_events(audit_event("x", event_data("x", ACCOUNT_ID)))
        .send()
        .await;
    assert!(gone
        .expect_err("ChannelNotFound")
        .into_service_error()
        .is_channel_not_found());
}

/// Runs `sql` until it returns a row (90 s); the rows as the SDK reads them.
async fn rows_when_written(
    client: &aws_sdk_cloudtrail::Client,
    sql: &str,
) -> Vec<Vec<(String, String)>> {
    use aws_sdk_cloudtrail::types::QueryStatus;
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let query_id = client
            .start_query()
            .query_statement(sql)
            .send()
            .await
            .expect("StartQuery")
            .query_id()
            .expect("a query id")
            .to_owned();
        let results = loop {
            let results = client
                .get_query_results()
                .query_id(&query_id)
                .send()
                .await
                .expect("GetQueryResults");
            match results.query_status() {
                Some(QueryStatus::Queued | QueryStatus::Running) => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                status => {
                    assert_eq!(status, Some(&QueryStatus::Finished), "{results:?}");
                    break results;
                }
            }
        };
        let rows: Vec<Vec<(String, String)>> = results
            .query_result_rows()
            .iter()
            .map(|row| {
                row.iter()
                    .flat_map(|column| column.iter().map(|(k, v)| (k.clone(), v.clone())))
                    .collect()
            })
            .collect();
        if !rows.is_empty() {
            return rows;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no rows within 90 s: {sql}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_events_are_read_back_with_start_query() {
    let server = TestServer::start();
    let client = server.client(REGION);
    let data = data_client(&server, REGION);
    let store = audit_store(&client, "sdk-channel-lake").await;
    let channel = client
        .create_channel()
        .name("sdk-lake-channel")
        .source("Custom")
        .destinations(destination(&store))
        .send()
        .await
        .expect("CreateChannel")
        .channel_arn()
        .expect("an ARN")
        .to_owned();
    let put = data
        .put_audit_events()
        .channel_arn(&channel)
        .audit_events(audit_event("one", event_data("u-lake", ACCOUNT_ID)))
        .send()
        .await
        .expect("PutAuditEvents");
    assert!(put.failed().is_empty(), "{put:?}");
    let event_id = put.successful()[0].event_id().to_owned();
    let store_id = store.rsplit('/').next().expect("an id");
    let rows = rows_when_written(
        &client,
        &format!(
            "SELECT eventID, eventData.eventName, eventData.UID, eventData.userIdentity.principalId, metadata.channelARN FROM {store_id}"
        ),
    )
    .await;
    let expected: Vec<(String, String)> = [
        ("eventID", event_id.as_str()),
        ("eventName", "Login"),
        ("UID", "u-lake"),
        ("principalId", "alice"),
        ("channelARN", channel.as_str()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(rows, vec![expected]);
}

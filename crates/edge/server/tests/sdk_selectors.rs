//! PutEventSelectors / GetEventSelectors (basic and advanced) and
//! PutInsightSelectors / GetInsightSelectors through aws-sdk-cloudtrail.

mod common;

use aws_sdk_cloudtrail::types::{
    AdvancedEventSelector, AdvancedFieldSelector, DataResource, EventSelector, InsightSelector,
    InsightType, ReadWriteType,
};
use aws_sdk_cloudtrail::Client;
use common::{create_trail, expect_error, expect_error_naming, trail_arn, TestServer};

const REGION: &str = "us-east-1";

/// A comparable view of a basic selector: absent and empty lists are the same.
#[derive(Debug, PartialEq)]
struct Basic {
    read_write_type: Option<String>,
    include_management_events: Option<bool>,
    data_resources: Vec<(Option<String>, Vec<String>)>,
    exclude_management_event_sources: Vec<String>,
}

fn basic(selector: &EventSelector) -> Basic {
    Basic {
        read_write_type: selector.read_write_type().map(|t| t.as_str().to_owned()),
        include_management_events: selector.include_management_events(),
        data_resources: selector
            .data_resources()
            .iter()
            .map(|r| (r.r#type().map(str::to_owned), r.values().to_vec()))
            .collect(),
        exclude_management_event_sources: selector.exclude_management_event_sources().to_vec(),
    }
}

type Condition = (String, Vec<Vec<String>>);

/// A comparable view of an advanced selector.
fn advanced(selector: &AdvancedEventSelector) -> (Option<String>, Vec<Condition>) {
    let fields = selector
        .field_selectors()
        .iter()
        .map(|f| {
            (
                f.field().to_owned(),
                vec![
                    f.equals().to_vec(),
                    f.starts_with().to_vec(),
                    f.ends_with().to_vec(),
                    f.not_equals().to_vec(),
                    f.not_starts_with().to_vec(),
                    f.not_ends_with().to_vec(),
                ],
            )
        })
        .collect();
    (selector.name().map(str::to_owned), fields)
}

fn field(name: &str) -> aws_sdk_cloudtrail::types::builders::AdvancedFieldSelectorBuilder {
    AdvancedFieldSelector::builder().field(name)
}

fn advanced_selector(name: &str, fields: Vec<AdvancedFieldSelector>) -> AdvancedEventSelector {
    AdvancedEventSelector::builder()
        .name(name)
        .set_field_selectors(Some(fields))
        .build()
        .expect("advanced selector")
}

fn s3_data_events() -> AdvancedEventSelector {
    advanced_selector(
        "Log writes to one bucket",
        vec![
            field("eventCategory")
                .equals("Data")
                .build()
                .expect("field"),
            field("resources.type")
                .equals("AWS::S3::Object")
                .build()
                .expect("field"),
            field("readOnly").equals("false").build().expect("field"),
            field("resources.ARN")
                .starts_with("arn:aws:s3:::audit-bucket/")
                .build()
                .expect("field"),
        ],
    )
}

fn management_events() -> AdvancedEventSelector {
    advanced_selector(
        "Management events",
        vec![field("eventCategory")
            .equals("Management")
            .build()
            .expect("field")],
    )
}

async fn has_custom_event_selectors(client: &Client, name: &str) -> Option<bool> {
    client
        .get_trail()
        .name(name)
        .send()
        .await
        .expect("get trail")
        .trail
        .expect("trail")
        .has_custom_event_selectors()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_trails_log_all_management_events() {
    let server = TestServer::start();
    let client = server.client(REGION);
    create_trail(&client, "defaults").await;
    let got = client
        .get_event_selectors()
        .trail_name("defaults")
        .send()
        .await
        .expect("get selectors");
    assert_eq!(
        got.trail_arn(),
        Some(trail_arn(REGION, "defaults").as_str())
    );
    let selectors: Vec<Basic> = got.event_selectors().iter().map(basic).collect();
    assert_eq!(
        selectors,
        [Basic {
            read_write_type: Some("All".into()),
            include_management_events: Some(true),
            data_resources: vec![],
            exclude_management_event_sources: vec![],
        }]
    );
    assert!(got.advanced_event_selectors().is_empty());
    assert_eq!(
        has_custom_event_selectors(&client, "defaults").await,
        Some(false)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_event_selectors_round_trip() {
    let server = TestServer::start();
    let client = server.client(REGION);
    create_trail(&client, "basic").await;
    let selectors = vec![
        EventSelector::builder()
            .read_write_type(ReadWriteType::ReadOnly)
            .include_management_events(false)
            .data_resources(
                DataResource::builder()
                    .r#type("AWS::S3::Object")
                    .values("arn:aws:s3:::audit-bucket/")
                    .values("arn:aws:s3:::other-bucket/prefix")
                    .build(),
            )
            .build(),
        EventSelector::builder()
            .read_write_type(ReadWriteType::WriteOnly)
            .include_management_events(true)
            .exclude_management_event_sources("kms.amazonaws.com")
            .data_resources(
                DataResource::builder()
                    .r#type("AWS::Lambda::Function")
                    .values("arn:aws:lambda")
                    .build(),
            )
            .build(),
    ];
    let put = client
        .put_event_selectors()
        .trail_name(trail_arn(REGION, "basic"))
        .set_event_selectors(Some(selectors.clone()))
        .send()
        .await
        .expect("put basic selectors");
    assert_eq!(put.trail_arn(), Some(trail_arn(REGION, "basic").as_str()));
    let want: Vec<Basic> = selectors.iter().map(basic).collect();
    assert_eq!(
        put.event_selectors().iter().map(basic).collect::<Vec<_>>(),
        want
    );

    let got = client
        .get_event_selectors()
        .trail_name("basic")
        .send()
        .await
        .expect("get selectors");
    assert_eq!(
        got.event_selectors().iter().map(basic).collect::<Vec<_>>(),
        want
    );
    assert!(got.advanced_event_selectors().is_empty());
    assert_eq!(
        has_custom_event_selectors(&client, "basic").await,
        Some(true)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advanced_event_selectors_round_trip_and_replace_basic_ones() {
    let server = TestServer::start();
    let client = server.client(REGION);
    create_trail(&client, "advanced").await;
    let selectors = vec![management_events(), s3_data_events()];
    let put = client
        .put_event_selectors()
        .trail_name("advanced")
        .set_advanced_event_selectors(Some(selectors.clone()))
        .send()
        .await
        .expect("put advanced selectors");
    let want: Vec<_> = selectors.iter().map(advanced).collect();
    assert_eq!(
        put.advanced_event_selectors()
            .iter()
            .map(advanced)
            .collect::<Vec<_>>(),
        want
    );
    assert!(put.event_selectors().is_empty());

    let got = client
        .get_event_selectors()
        .trail_name("advanced")
        .send()
        .await
        .expect("get selectors");
    assert_eq!(
        got.advanced_event_selectors()
            .iter()
            .map(advanced)
            .collect::<Vec<_>>(),
        want
    );
    assert!(
        got.event_selectors().is_empty(),
        "advanced selectors replace basic ones: {got:?}"
    );
    assert_eq!(
        has_custom_event_selectors(&client, "advanced").await,
        Some(true)
    );

    // Basic selectors replace advanced ones again.
    client
        .put_event_selectors()
        .trail_name("advanced")
        .event_selectors(
            EventSelector::builder()
                .read_write_type(ReadWriteType::WriteOnly)
                .include_management_events(true)
                .build(),
        )
        .send()
        .await
        .expect("put basic selectors");
    let got = client
        .get_event_selectors()
        .trail_name("advanced")
        .send()
        .await
        .expect("get selectors");
    assert!(got.advanced_event_selectors().is_empty(), "{got:?}");
    let selectors: Vec<Basic> = got.event_selectors().iter().map(basic).collect();
    assert_eq!(selectors.len(), 1);
    assert_eq!(selectors[0].read_write_type.as_deref(), Some("WriteOnly"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_event_selectors_are_rejected() {
    let server = TestServer::start();
    let client = server.client(REGION);
    create_trail(&client, "strict").await;
    let all = || {
        EventSelector::builder()
            .read_write_type(ReadWriteType::All)
            .build()
    };

    let six: Vec<EventSelector> = (0..6).map(|_| all()).collect();
    expect_error(
        client
            .put_event_selectors()
            .trail_name("strict")
            .set_event_selectors(Some(six))
            .send()
            .await,
        "InvalidEventSelectorsException",
    );
    expect_error_naming(
        client
            .put_event_selectors()
            .trail_name("strict")
            .event_selectors(
                EventSelector::builder()
                    .data_resources(
                        DataResource::builder()
                            .r#type("AWS::Nope::Thing")
                            .values("arn:aws:nope")
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await,
        "InvalidEventSelectorsException",
        "AWS::Nope::Thing",
    );
    expect_error_naming(
        client
            .put_event_selectors()
            .trail_name("strict")
            .event_selectors(
                EventSelector::builder()
                    .data_resources(
                        DataResource::builder()
                            .r#type("AWS::S3::Object")
                            .values("not-an-arn")
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await,
        "InvalidEventSelectorsException",
        "not-an-arn",
    );
    // The InvalidEventSelectorsException documentation's own example.
    expect_error(
        client
            .put_event_selectors()
            .trail_name("strict")
            .event_selectors(
                EventSelector::builder()
                    .read_write_type(ReadWriteType::from("read-only"))
                    .build(),
            )
            .send()
            .await,
        "InvalidEventSelectorsException",
    );
    // Either basic or advanced selectors, not both, and not neither.
    expect_error(
        client
            .put_event_selectors()
            .trail_name("strict")
            .event_selectors(all())
            .advanced_event_selectors(management_events())
            .send()
            .await,
        "InvalidEventSelectorsException",
    );
    expect_error(
        client
            .put_event_selectors()
            .trail_name("strict")
            .send()
            .await,
        "InvalidEventSelectorsException",
    );

    let bad_advanced: Vec<(&str, AdvancedEventSelector)> = vec![
        (
            "notAField",
            advanced_selector(
                "unknown field",
                vec![
                    field("eventCategory")
                        .equals("Management")
                        .build()
                        .expect("field"),
                    field("notAField").equals("x").build().expect("field"),
                ],
            ),
        ),
        (
            "eventCategory",
            advanced_selector(
                "no category",
                vec![field("readOnly").equals("true").build().expect("field")],
            ),
        ),
        (
            "Bogus",
            advanced_selector(
                "bad category",
                vec![field("eventCategory")
                    .equals("Bogus")
                    .build()
                    .expect("field")],
            ),
        ),
        (
            "resources.type",
            advanced_selector(
                "data without type",
                vec![field("eventCategory")
                    .equals("Data")
                    .build()
                    .expect("field")],
            ),
        ),
    ];
    for (needle, selector) in bad_advanced {
        expect_error_naming(
            client
                .put_event_selectors()
                .trail_name("strict")
                .advanced_event_selectors(selector)
                .send()
                .await,
            "InvalidEventSelectorsException",
            needle,
        );
    }
    expect_error(
        client
            .put_event_selectors()
            .trail_name("strict")
            .advanced_event_selectors(advanced_selector(
                "condition without operator",
                vec![field("eventCategory").build().expect("field")],
            ))
            .send()
            .await,
        "InvalidEventSelectorsException",
    );

    // Nothing was changed by the rejected requests.
    let got = client
        .get_event_selectors()
        .trail_name("strict")
        .send()
        .await
        .expect("get selectors");
    assert_eq!(got.event_selectors().len(), 1);
    assert_eq!(
        has_custom_event_selectors(&client, "strict").await,
        Some(false)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_selectors_of_unknown_trails() {
    let server = TestServer::start();
    let client = server.client(REGION);
    let all = EventSelector::builder()
        .read_write_type(ReadWriteType::All)
        .build();
    expect_error_naming(
        client
            .put_event_selectors()
            .trail_name("ghost")
            .event_selectors(all)
            .send()
            .await,
        "TrailNotFoundException",
        "ghost",
    );
    expect_error_naming(
        client
            .get_event_selectors()
            .trail_name("ghost")
            .send()
            .await,
        "TrailNotFoundException",
        "ghost",
    );
    expect_error(
        client.get_event_selectors().trail_name("-bad").send().await,
        "InvalidTrailNameException",
    );
    expect_error(
        client
            .get_event_selectors()
            .trail_name("arn:aws:cloudtrail:x")
            .send()
            .await,
        "CloudTrailARNInvalidException",
    );
}

fn insight(kind: InsightType) -> InsightSelector {
    InsightSelector::builder().insight_type(kind).build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insight_selectors_enable_and_disable() {
    let server = TestServer::start();
    let client = server.client(REGION);
    create_trail(&client, "insightful").await;
    let arn = trail_arn(REGION, "insightful");

    expect_error_naming(
        client
            .get_insight_selectors()
            .trail_name("insightful")
            .send()
            .await,
        "InsightNotEnabledException",
        "insightful",
    );

    let put = client
        .put_insight_selectors()
        .trail_name("insightful")
        .insight_selectors(insight(InsightType::ApiCallRateInsight))
        .insight_selectors(insight(InsightType::ApiErrorRateInsight))
        .send()
        .await
        .expect("put insight selectors");
    assert_eq!(put.trail_arn(), Some(arn.as_str()));
    let kinds = |selectors: &[InsightSelector]| -> Vec<String> {
        selectors
            .iter()
            .filter_map(|s| s.insight_type().map(|t| t.as_str().to_owned()))
            .collect()
    };
    assert_eq!(
        kinds(put.insight_selectors()),
        ["ApiCallRateInsight", "ApiErrorRateInsight"]
    );

    let got = client
        .get_insight_selectors()
        .trail_name(&arn)
        .send()
        .await
        .expect("get insight selectors");
    assert_eq!(got.trail_arn(), Some(arn.as_str()));
    assert_eq!(
        kinds(got.insight_selectors()),
        ["ApiCallRateInsight", "ApiErrorRateInsight"]
    );
    let trail = client
        .get_trail()
        .name("insightful")
        .send()
        .await
        .expect("get")
        .trail
        .expect("trail");
    assert_eq!(trail.has_insight_selectors(), Some(true));

    // Replacing with one type keeps only that one.
    client
        .put_insight_selectors()
        .trail_name("insightful")
        .insight_selectors(insight(InsightType::ApiErrorRateInsight))
        .send()
        .await
        .expect("replace insight selectors");
    let got = client
        .get_insight_selectors()
        .trail_name("insightful")
        .send()
        .await
        .expect("get insight selectors");
    assert_eq!(kinds(got.insight_selectors()), ["ApiErrorRateInsight"]);

    // An empty list turns Insights off.
    client
        .put_insight_selectors()
        .trail_name("insightful")
        .set_insight_selectors(Some(vec![]))
        .send()
        .await
        .expect("disable insights");
    expect_error(
        client
            .get_insight_selectors()
            .trail_name("insightful")
            .send()
            .await,
        "InsightNotEnabledException",
    );
    let trail = client
        .get_trail()
        .name("insightful")
        .send()
        .await
        .expect("get")
        .trail
        .expect("trail");
    assert_eq!(trail.has_insight_selectors(), Some(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_insight_selectors_are_rejected() {
    let server = TestServer::start();
    let client = server.client(REGION);
    create_trail(&client, "strict").await;
    expect_error_naming(
        client
            .put_insight_selectors()
            .trail_name("strict")
            .insight_selectors(insight(InsightType::from("FooInsight")))
            .send()
            .await,
        "InvalidInsightSelectorsException",
        "FooInsight",
    );
    expect_error(
        client
            .put_insight_selectors()
            .trail_name("strict")
            .insight_selectors(InsightSelector::builder().build())
            .send()
            .await,
        "InvalidInsightSelectorsException",
    );
    expect_error_naming(
        client
            .put_insight_selectors()
            .trail_name("ghost")
            .insight_selectors(insight(InsightType::ApiCallRateInsight))
            .send()
            .await,
        "TrailNotFoundException",
        "ghost",
    );
    expect_error_naming(
        client
            .get_insight_selectors()
            .trail_name("ghost")
            .send()
            .await,
        "TrailNotFoundException",
        "ghost",
    );
    expect_error(
        client
            .get_insight_selectors()
            .trail_name("strict")
            .send()
            .await,
        "InsightNotEnabledException",
    );
}

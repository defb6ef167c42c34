//! `TrailService` in process: a test clock, SQLite metadata in a temp dir, the embedded
//! object store and a fixed topic directory. Requests and responses are the generated
//! `opentrail-operations` shapes, exactly what the server deserialises and serialises.

use chrono::{DateTime, Duration, TimeZone, Utc};
use opentrail_meta::SqliteMetaStore;
use opentrail_model::{iso8601, AccountId, Region, TestClock};
use opentrail_objstore::{LocalStore, ObjectStore};
use opentrail_operations::{
    AddTagsRequest, AdvancedEventSelector, AdvancedFieldSelector, CreateTrailRequest,
    CreateTrailResponse, DataResource, DeleteTrailRequest, DescribeTrailsRequest, EventSelector,
    GetEventSelectorsRequest, GetEventSelectorsResponse, GetInsightSelectorsRequest,
    GetTrailRequest, GetTrailStatusRequest, GetTrailStatusResponse, InsightSelector, InsightType,
    ListTagsRequest, ListTrailsRequest, PutEventSelectorsRequest, PutInsightSelectorsRequest,
    ReadWriteType, RemoveTagsRequest, SourceEventCategory, StartLoggingRequest, StopLoggingRequest,
    Tag, Timestamp, Trail, TrailInfo, UpdateTrailRequest,
};
use opentrail_trails::{
    RequestContext, TopicDirectory, TrailError, TrailService, MAX_TRAILS_PER_REGION,
};
use opentrail_wire::{ApiError, AwsError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const ACCOUNT: &str = "111122223333";
const HOME: &str = "us-east-1";
const OTHER: &str = "eu-west-1";
const BUCKET: &str = "trail-logs";
const TOPIC_ARN: &str = "arn:aws:sns:us-east-1:111122223333:alerts";
const PAGE_SIZE: usize = 2;

struct Topics(Vec<String>);

impl TopicDirectory for Topics {
    fn topic_exists(&self, topic_arn: &str) -> bool {
        self.0.iter().any(|t| t == topic_arn)
    }
}

struct Harness {
    trails: TrailService,
    clock: TestClock,
    log_end: Arc<AtomicU64>,
    _dir: tempfile::TempDir,
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap()
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let meta = SqliteMetaStore::open(&dir.path().join("meta.sqlite")).unwrap();
    let store = LocalStore::new(dir.path().join("buckets"));
    store.create_bucket(BUCKET).await.unwrap();
    store.create_bucket("other-logs").await.unwrap();
    let clock = TestClock::new(start());
    let log_end = Arc::new(AtomicU64::new(7));
    let position = Arc::clone(&log_end);
    let trails = TrailService::new(
        Arc::new(meta),
        Arc::new(store),
        Arc::new(Topics(vec![TOPIC_ARN.to_owned()])),
        Arc::new(clock.clone()),
        Arc::new(move || position.load(Ordering::SeqCst)),
        PAGE_SIZE,
    );
    Harness {
        trails,
        clock,
        log_end,
        _dir: dir,
    }
}

fn ctx(region: &str) -> RequestContext {
    RequestContext {
        account: AccountId::parse(ACCOUNT).unwrap(),
        region: Region::parse(region).unwrap(),
        principal: opentrail_model::Principal {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            kind: opentrail_model::PrincipalKind::Root,
        },
    }
}

fn arn(name: &str, region: &str) -> String {
    format!("arn:aws:cloudtrail:{region}:{ACCOUNT}:trail/{name}")
}

fn create(name: &str) -> CreateTrailRequest {
    CreateTrailRequest {
        name: name.into(),
        s3_bucket_name: BUCKET.into(),
        ..Default::default()
    }
}

fn multi_region(name: &str) -> CreateTrailRequest {
    CreateTrailRequest {
        is_multi_region_trail: Some(true),
        ..create(name)
    }
}

fn tag(key: &str, value: Option<&str>) -> Tag {
    Tag {
        key: key.into(),
        value: value.map(str::to_owned),
    }
}

fn code<T: std::fmt::Debug>(result: Result<T, TrailError>) -> &'static str {
    result.unwrap_err().code()
}

impl Harness {
    async fn get(&self, region: &str, name: &str) -> Result<Trail, TrailError> {
        let response = self
            .trails
            .get_trail(&ctx(region), GetTrailRequest { name: name.into() })
            .await?;
        Ok(response.trail.expect("GetTrail returns the trail"))
    }

    async fn describe(&self, region: &str, request: DescribeTrailsRequest) -> Vec<String> {
        self.trails
            .describe_trails(&ctx(region), request)
            .await
            .unwrap()
            .trail_list
            .expect("trailList is always present")
            .into_iter()
            .map(|t| t.trail_arn.unwrap())
            .collect()
    }

    async fn status(&self, name: &str) -> GetTrailStatusResponse {
        self.trails
            .get_trail_status(&ctx(HOME), GetTrailStatusRequest { name: name.into() })
            .await
            .unwrap()
    }

    async fn selectors(&self, name: &str) -> GetEventSelectorsResponse {
        self.trails
            .get_event_selectors(
                &ctx(HOME),
                GetEventSelectorsRequest {
                    trail_name: name.into(),
                },
            )
            .await
            .unwrap()
    }

    async fn tags(&self, name: &str) -> Vec<Tag> {
        let response = self
            .trails
            .list_tags(
                &ctx(HOME),
                ListTagsRequest {
                    resource_id_list: vec![arn(name, HOME)],
                    next_token: None,
                },
            )
            .await
            .unwrap();
        let [resource] = <[_; 1]>::try_from(response.resource_tag_list.unwrap()).unwrap();
        assert_eq!(
            resource.resource_id.as_deref(),
            Some(arn(name, HOME).as_str())
        );
        resource.tags_list.expect("TagsList is always present")
    }
}

// ----------------------------------------------------------------- lifecycle

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_get_describe_list_update_delete_by_name_and_arn() {
    let h = harness().await;
    let created = h
        .trails
        .create_trail(
            &ctx(HOME),
            CreateTrailRequest {
                sns_topic_name: Some("alerts".into()),
                s3_key_prefix: Some("audit".into()),
                enable_log_file_validation: Some(true),
                ..create("audit")
            },
        )
        .await
        .unwrap();
    assert_eq!(
        created,
        CreateTrailResponse {
            name: Some("audit".into()),
            s3_bucket_name: Some(BUCKET.into()),
            s3_key_prefix: Some("audit".into()),
            sns_topic_name: Some("alerts".into()),
            sns_topic_arn: Some(TOPIC_ARN.into()),
            include_global_service_events: Some(true),
            is_multi_region_trail: Some(false),
            trail_arn: Some(arn("audit", HOME)),
            log_file_validation_enabled: Some(true),
            is_organization_trail: Some(false),
            ..Default::default()
        }
    );

    let expected = Trail {
        name: Some("audit".into()),
        s3_bucket_name: Some(BUCKET.into()),
        s3_key_prefix: Some("audit".into()),
        sns_topic_name: Some("alerts".into()),
        sns_topic_arn: Some(TOPIC_ARN.into()),
        include_global_service_events: Some(true),
        is_multi_region_trail: Some(false),
        home_region: Some(HOME.into()),
        trail_arn: Some(arn("audit", HOME)),
        log_file_validation_enabled: Some(true),
        has_custom_event_selectors: Some(false),
        has_insight_selectors: Some(false),
        is_organization_trail: Some(false),
        ..Default::default()
    };
    assert_eq!(h.get(HOME, "audit").await.unwrap(), expected);
    assert_eq!(h.get(HOME, &arn("audit", HOME)).await.unwrap(), expected);
    // What goes on the wire: absent members are left out, never null.
    let wire = serde_json::to_value(&expected).unwrap();
    assert!(wire.get("KmsKeyId").is_none() && wire.get("RecursiveLogging").is_none());
    assert_eq!(wire["TrailARN"], arn("audit", HOME));

    let described = h
        .trails
        .describe_trails(&ctx(HOME), DescribeTrailsRequest::default())
        .await
        .unwrap();
    assert_eq!(described.trail_list, Some(vec![expected.clone()]));
    let listed = h
        .trails
        .list_trails(&ctx(HOME), ListTrailsRequest::default())
        .await
        .unwrap();
    assert_eq!(
        listed.trails,
        Some(vec![TrailInfo {
            trail_arn: Some(arn("audit", HOME)),
            name: Some("audit".into()),
            home_region: Some(HOME.into()),
        }])
    );
    assert_eq!(listed.next_token, None);

    // Update by ARN; an empty string clears a setting.
    let updated = h
        .trails
        .update_trail(
            &ctx(HOME),
            UpdateTrailRequest {
                name: arn("audit", HOME),
                s3_key_prefix: Some(String::new()),
                sns_topic_name: Some(String::new()),
                s3_bucket_name: Some("other-logs".into()),
                is_multi_region_trail: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.s3_bucket_name.as_deref(), Some("other-logs"));
    assert_eq!(updated.s3_key_prefix, None);
    assert_eq!(updated.sns_topic_arn, None);
    assert_eq!(updated.is_multi_region_trail, Some(true));
    let after = h.get(HOME, "audit").await.unwrap();
    assert_eq!(after.s3_bucket_name.as_deref(), Some("other-logs"));
    assert_eq!(after.sns_topic_name, None);
    assert_eq!(after.is_multi_region_trail, Some(true));

    h.trails
        .delete_trail(
            &ctx(HOME),
            DeleteTrailRequest {
                name: arn("audit", HOME),
            },
        )
        .await
        .unwrap();
    assert_eq!(code(h.get(HOME, "audit").await), "TrailNotFoundException");
    assert_eq!(
        code(
            h.trails
                .delete_trail(
                    &ctx(HOME),
                    DeleteTrailRequest {
                        name: "audit".into()
                    }
                )
                .await
        ),
        "TrailNotFoundException"
    );

    h.trails
        .create_trail(&ctx(HOME), create("by-name"))
        .await
        .unwrap();
    h.trails
        .delete_trail(
            &ctx(HOME),
            DeleteTrailRequest {
                name: "by-name".into(),
            },
        )
        .await
        .unwrap();
    assert!(h
        .describe(HOME, DescribeTrailsRequest::default())
        .await
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_names_and_arns() {
    let h = harness().await;
    assert_eq!(
        code(h.trails.create_trail(&ctx(HOME), create("x")).await),
        "InvalidTrailNameException"
    );
    assert_eq!(
        code(h.get(HOME, "arn:aws:cloudtrail:nowhere").await),
        "CloudTrailARNInvalidException"
    );
    // The ARN of another account's trail is simply not found.
    h.trails
        .create_trail(&ctx(HOME), create("mine"))
        .await
        .unwrap();
    assert_eq!(
        code(
            h.get(HOME, "arn:aws:cloudtrail:us-east-1:444455556666:trail/mine")
                .await
        ),
        "TrailNotFoundException"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_names_are_rejected() {
    let h = harness().await;
    h.trails
        .create_trail(&ctx(HOME), create("audit"))
        .await
        .unwrap();
    let err = h
        .trails
        .create_trail(&ctx(HOME), create("audit"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "TrailAlreadyExistsException");
    assert_eq!(
        err.message(),
        format!("Trail audit already exists for customer: {ACCOUNT}")
    );
    // Another region may reuse a single-region name, but not as a multi-region trail.
    h.trails
        .create_trail(&ctx(OTHER), create("audit"))
        .await
        .unwrap();
    assert_eq!(
        code(
            h.trails
                .create_trail(&ctx("us-west-2"), multi_region("audit"))
                .await
        ),
        "TrailAlreadyExistsException"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_trails_per_region_counting_multi_region_trails() {
    let h = harness().await;
    h.trails
        .create_trail(&ctx(OTHER), multi_region("everywhere"))
        .await
        .unwrap();
    for i in 1..MAX_TRAILS_PER_REGION {
        h.trails
            .create_trail(&ctx(HOME), create(&format!("local-{i}")))
            .await
            .unwrap();
    }
    let err = h
        .trails
        .create_trail(&ctx(HOME), create("one-too-many"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "MaximumNumberOfTrailsExceededException");
    assert_eq!(
        err.message(),
        format!("User: {ACCOUNT} already has 5 trails in {HOME}.")
    );
    // eu-west-1 holds only the multi-region trail; a multi-region trail would also count
    // in the full us-east-1.
    h.trails
        .create_trail(&ctx(OTHER), create("eu-only"))
        .await
        .unwrap();
    assert_eq!(
        code(
            h.trails
                .create_trail(&ctx(OTHER), multi_region("eu-everywhere"))
                .await
        ),
        "MaximumNumberOfTrailsExceededException"
    );
    // Turning a single-region trail into a multi-region one counts too.
    assert_eq!(
        code(
            h.trails
                .update_trail(
                    &ctx(OTHER),
                    UpdateTrailRequest {
                        name: "eu-only".into(),
                        is_multi_region_trail: Some(true),
                        ..Default::default()
                    },
                )
                .await
        ),
        "MaximumNumberOfTrailsExceededException"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_trails_and_the_home_region_rule() {
    let h = harness().await;
    h.trails
        .create_trail(&ctx(HOME), multi_region("global"))
        .await
        .unwrap();
    h.trails
        .create_trail(&ctx(HOME), create("local"))
        .await
        .unwrap();

    // From another region the multi-region trail is a shadow trail; the other is invisible.
    let shadow = h.get(OTHER, "global").await.unwrap();
    assert_eq!(shadow.home_region.as_deref(), Some(HOME));
    assert_eq!(shadow.trail_arn, Some(arn("global", HOME)));
    assert_eq!(code(h.get(OTHER, "local").await), "TrailNotFoundException");
    assert_eq!(
        h.describe(OTHER, DescribeTrailsRequest::default()).await,
        vec![arn("global", HOME)]
    );
    assert!(h
        .describe(
            OTHER,
            DescribeTrailsRequest {
                include_shadow_trails: Some(false),
                ..Default::default()
            }
        )
        .await
        .is_empty());
    // A trail of another region is reachable by its ARN, and listed without duplicates.
    assert_eq!(
        h.describe(
            OTHER,
            DescribeTrailsRequest {
                trail_name_list: Some(vec![
                    arn("local", HOME),
                    "global".into(),
                    arn("global", HOME),
                    "missing-trail".into(),
                ]),
                ..Default::default()
            }
        )
        .await,
        vec![arn("local", HOME), arn("global", HOME)]
    );
    // ListTrails shows every region's trails.
    let listed = h
        .trails
        .list_trails(&ctx(OTHER), ListTrailsRequest::default())
        .await
        .unwrap();
    assert_eq!(listed.trails.unwrap().len(), 2);

    // Changes must come from the home region.
    let err = h
        .trails
        .delete_trail(
            &ctx(OTHER),
            DeleteTrailRequest {
                name: "global".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "InvalidHomeRegionException");
    assert_eq!(
        err.message(),
        format!("This operation must be called from the trail's home region, {HOME}. The request was made in {OTHER}")
    );
    assert_eq!(
        code(
            h.trails
                .update_trail(
                    &ctx(OTHER),
                    UpdateTrailRequest {
                        name: arn("global", HOME),
                        ..Default::default()
                    }
                )
                .await
        ),
        "InvalidHomeRegionException"
    );
    assert_eq!(
        code(
            h.trails
                .start_logging(
                    &ctx(OTHER),
                    StartLoggingRequest {
                        name: "global".into()
                    }
                )
                .await
        ),
        "InvalidHomeRegionException"
    );
    assert_eq!(
        code(
            h.trails
                .put_event_selectors(
                    &ctx(OTHER),
                    PutEventSelectorsRequest {
                        trail_name: "global".into(),
                        event_selectors: Some(vec![EventSelector {
                            read_write_type: Some(ReadWriteType::All),
                            ..Default::default()
                        }]),
                        advanced_event_selectors: None,
                    }
                )
                .await
        ),
        "InvalidHomeRegionException"
    );
    // Reading works from anywhere.
    h.trails
        .get_trail_status(
            &ctx(OTHER),
            GetTrailStatusRequest {
                name: "global".into(),
            },
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bucket_must_exist() {
    let h = harness().await;
    let err = h
        .trails
        .create_trail(
            &ctx(HOME),
            CreateTrailRequest {
                s3_bucket_name: "missing-bucket".into(),
                ..create("audit")
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "S3BucketDoesNotExistException");
    assert_eq!(err.message(), "S3 bucket missing-bucket does not exist");
    assert_eq!(code(h.get(HOME, "audit").await), "TrailNotFoundException");

    h.trails
        .create_trail(&ctx(HOME), create("audit"))
        .await
        .unwrap();
    assert_eq!(
        code(
            h.trails
                .update_trail(
                    &ctx(HOME),
                    UpdateTrailRequest {
                        name: "audit".into(),
                        s3_bucket_name: Some("missing-bucket".into()),
                        ..Default::default()
                    }
                )
                .await
        ),
        "S3BucketDoesNotExistException"
    );
    let trail = h.get(HOME, "audit").await.unwrap();
    assert_eq!(trail.s3_bucket_name.as_deref(), Some(BUCKET));
    assert_eq!(
        code(
            h.trails
                .create_trail(
                    &ctx(HOME),
                    CreateTrailRequest {
                        s3_bucket_name: "Not_A_Bucket".into(),
                        ..create("bad-bucket")
                    }
                )
                .await
        ),
        "InvalidS3BucketNameException"
    );
}

// ----------------------------------------------------------------- tags

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_keep_their_order_and_their_limit() {
    let h = harness().await;
    h.trails
        .create_trail(
            &ctx(HOME),
            CreateTrailRequest {
                tags_list: Some(vec![tag("team", Some("audit")), tag("cost", None)]),
                ..create("tagged")
            },
        )
        .await
        .unwrap();
    assert_eq!(
        h.tags("tagged").await,
        vec![tag("team", Some("audit")), tag("cost", None)]
    );

    // Adding replaces values in place and appends new keys.
    h.trails
        .add_tags(
            &ctx(HOME),
            AddTagsRequest {
                resource_id: arn("tagged", HOME),
                tags_list: vec![tag("env", Some("prod")), tag("team", Some("security"))],
            },
        )
        .await
        .unwrap();
    assert_eq!(
        h.tags("tagged").await,
        vec![
            tag("team", Some("security")),
            tag("cost", None),
            tag("env", Some("prod"))
        ]
    );
    h.trails
        .remove_tags(
            &ctx(HOME),
            RemoveTagsRequest {
                resource_id: arn("tagged", HOME),
                tags_list: vec![tag("cost", None)],
            },
        )
        .await
        .unwrap();
    assert_eq!(
        h.tags("tagged").await,
        vec![tag("team", Some("security")), tag("env", Some("prod"))]
    );

    // 50 tags per trail.
    let add = |tags: Vec<Tag>| AddTagsRequest {
        resource_id: arn("tagged", HOME),
        tags_list: tags,
    };
    let many: Vec<Tag> = (0..48).map(|i| tag(&format!("k{i}"), Some("v"))).collect();
    h.trails.add_tags(&ctx(HOME), add(many)).await.unwrap();
    assert_eq!(h.tags("tagged").await.len(), 50);
    assert_eq!(
        code(
            h.trails
                .add_tags(&ctx(HOME), add(vec![tag("one-more", None)]))
                .await
        ),
        "TagsLimitExceededException"
    );
    assert_eq!(h.tags("tagged").await.len(), 50);
    assert_eq!(
        code(
            h.trails
                .add_tags(&ctx(HOME), add(vec![tag("aws:reserved", None)]))
                .await
        ),
        "InvalidTagParameterException"
    );

    // Tagging needs a trail ARN of an existing trail.
    let list = |id: &str| ListTagsRequest {
        resource_id_list: vec![id.to_owned()],
        next_token: None,
    };
    assert_eq!(
        code(h.trails.list_tags(&ctx(HOME), list("tagged")).await),
        "CloudTrailARNInvalidException"
    );
    assert_eq!(
        code(
            h.trails
                .list_tags(&ctx(HOME), list(&arn("gone", HOME)))
                .await
        ),
        "ResourceNotFoundException"
    );
    assert_eq!(
        code(
            h.trails
                .list_tags(&ctx(HOME), list("arn:aws:s3:::bucket"))
                .await
        ),
        "ResourceTypeNotSupportedException"
    );
}

// ----------------------------------------------------------------- selectors

fn basic_selectors() -> Vec<EventSelector> {
    vec![
        EventSelector {
            read_write_type: Some(ReadWriteType::WriteOnly),
            include_management_events: Some(true),
            data_resources: Some(vec![DataResource {
                r#type: Some("AWS::S3::Object".into()),
                values: Some(vec!["arn:aws:s3:::audited-bucket/".into()]),
            }]),
            exclude_management_event_sources: Some(vec!["kms.amazonaws.com".into()]),
        },
        EventSelector {
            read_write_type: Some(ReadWriteType::ReadOnly),
            include_management_events: Some(false),
            data_resources: Some(vec![DataResource {
                r#type: Some("AWS::Lambda::Function".into()),
                values: Some(vec!["arn:aws:lambda".into()]),
            }]),
            exclude_management_event_sources: Some(vec![]),
        },
    ]
}

fn advanced_selectors() -> Vec<AdvancedEventSelector> {
    let field = |name: &str| AdvancedFieldSelector {
        field: name.into(),
        ..Default::default()
    };
    vec![
        AdvancedEventSelector {
            name: Some("management writes".into()),
            field_selectors: vec![
                AdvancedFieldSelector {
                    equals: Some(vec!["Management".into()]),
                    ..field("eventCategory")
                },
                AdvancedFieldSelector {
                    equals: Some(vec!["false".into()]),
                    ..field("readOnly")
                },
            ],
        },
        AdvancedEventSelector {
            name: None,
            field_selectors: vec![
                AdvancedFieldSelector {
                    equals: Some(vec!["Data".into()]),
                    ..field("eventCategory")
                },
                AdvancedFieldSelector {
                    equals: Some(vec!["AWS::S3::Object".into()]),
                    ..field("resources.type")
                },
                AdvancedFieldSelector {
                    starts_with: Some(vec!["arn:aws:s3:::audited-bucket/".into()]),
                    not_ends_with: Some(vec![".tmp".into()]),
                    ..field("resources.ARN")
                },
            ],
        },
    ]
}

fn put(
    basic: Option<Vec<EventSelector>>,
    advanced: Option<Vec<AdvancedEventSelector>>,
) -> PutEventSelectorsRequest {
    PutEventSelectorsRequest {
        trail_name: "selective".into(),
        event_selectors: basic,
        advanced_event_selectors: advanced,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_selectors_round_trip_and_replace_each_other() {
    let h = harness().await;
    h.trails
        .create_trail(&ctx(HOME), create("selective"))
        .await
        .unwrap();
    let default = vec![EventSelector {
        read_write_type: Some(ReadWriteType::All),
        include_management_events: Some(true),
        data_resources: Some(vec![]),
        exclude_management_event_sources: Some(vec![]),
    }];
    let fresh = h.selectors("selective").await;
    assert_eq!(fresh.trail_arn, Some(arn("selective", HOME)));
    assert_eq!(fresh.event_selectors, Some(default));
    assert_eq!(fresh.advanced_event_selectors, None);

    let put_basic = h
        .trails
        .put_event_selectors(&ctx(HOME), put(Some(basic_selectors()), None))
        .await
        .unwrap();
    assert_eq!(put_basic.event_selectors, Some(basic_selectors()));
    assert_eq!(put_basic.advanced_event_selectors, None);
    assert_eq!(put_basic.trail_arn, Some(arn("selective", HOME)));
    assert_eq!(
        h.selectors("selective").await.event_selectors,
        Some(basic_selectors())
    );
    let trail = h.get(HOME, "selective").await.unwrap();
    assert_eq!(trail.has_custom_event_selectors, Some(true));

    // Advanced selectors replace basic ones, and the other way round.
    let put_advanced = h
        .trails
        .put_event_selectors(&ctx(HOME), put(None, Some(advanced_selectors())))
        .await
        .unwrap();
    assert_eq!(
        put_advanced.advanced_event_selectors,
        Some(advanced_selectors())
    );
    let got = h.selectors("selective").await;
    assert_eq!(got.event_selectors, None);
    assert_eq!(got.advanced_event_selectors, Some(advanced_selectors()));
    h.trails
        .put_event_selectors(&ctx(HOME), put(Some(basic_selectors()), None))
        .await
        .unwrap();
    let got = h.selectors("selective").await;
    assert_eq!(got.event_selectors, Some(basic_selectors()));
    assert_eq!(got.advanced_event_selectors, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_event_selectors_change_nothing() {
    let h = harness().await;
    h.trails
        .create_trail(&ctx(HOME), create("selective"))
        .await
        .unwrap();
    let before = h.selectors("selective").await;

    // A ReadWriteType the model does not list arrives as `Unknown` and is refused by name,
    // before the trail is even looked up.
    let request: PutEventSelectorsRequest = serde_json::from_value(serde_json::json!({
        "TrailName": "no-such-trail",
        "EventSelectors": [{"ReadWriteType": "Bogus"}],
    }))
    .unwrap();
    assert_eq!(
        request.event_selectors.as_ref().unwrap()[0].read_write_type,
        Some(ReadWriteType::Unknown("Bogus".into()))
    );
    let err = h
        .trails
        .put_event_selectors(&ctx(HOME), request)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "InvalidEventSelectorsException");
    assert_eq!(
        err.message(),
        "Value Bogus for ReadWriteType is invalid; valid values are ReadOnly, WriteOnly and All"
    );

    let both = put(Some(basic_selectors()), Some(advanced_selectors()));
    let neither = put(None, None);
    let too_many = put(Some(vec![basic_selectors()[0].clone(); 6]), None);
    let unknown_field = put(
        None,
        Some(vec![AdvancedEventSelector {
            name: None,
            field_selectors: vec![AdvancedFieldSelector {
                field: "notAField".into(),
                equals: Some(vec!["x".into()]),
                ..Default::default()
            }],
        }]),
    );
    for request in [both, neither, too_many, unknown_field] {
        assert_eq!(
            code(h.trails.put_event_selectors(&ctx(HOME), request).await),
            "InvalidEventSelectorsException"
        );
    }
    assert_eq!(h.selectors("selective").await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insight_selectors() {
    let h = harness().await;
    h.trails
        .create_trail(&ctx(HOME), create("insightful"))
        .await
        .unwrap();
    let get = || GetInsightSelectorsRequest {
        trail_name: Some("insightful".into()),
        event_data_store: None,
    };
    let put = |selectors: Vec<InsightSelector>| PutInsightSelectorsRequest {
        trail_name: Some(arn("insightful", HOME)),
        insight_selectors: selectors,
        ..Default::default()
    };
    assert_eq!(
        code(h.trails.get_insight_selectors(&ctx(HOME), get()).await),
        "InsightNotEnabledException"
    );

    let selectors = vec![
        InsightSelector {
            insight_type: Some(InsightType::ApiCallRateInsight),
            event_categories: None,
        },
        InsightSelector {
            insight_type: Some(InsightType::ApiErrorRateInsight),
            event_categories: Some(vec![SourceEventCategory::Management]),
        },
    ];
    let put_response = h
        .trails
        .put_insight_selectors(&ctx(HOME), put(selectors.clone()))
        .await
        .unwrap();
    assert_eq!(put_response.trail_arn, Some(arn("insightful", HOME)));
    assert_eq!(put_response.insight_selectors, Some(selectors.clone()));
    let got = h
        .trails
        .get_insight_selectors(&ctx(HOME), get())
        .await
        .unwrap();
    assert_eq!(got.insight_selectors, Some(selectors.clone()));
    assert_eq!(got.event_data_store_arn, None);
    assert_eq!(
        h.get(HOME, "insightful")
            .await
            .unwrap()
            .has_insight_selectors,
        Some(true)
    );

    // Values outside the model are refused by name; nothing changes.
    let err = h
        .trails
        .put_insight_selectors(
            &ctx(HOME),
            put(vec![InsightSelector {
                insight_type: Some(InsightType::Unknown("Bogus".into())),
                event_categories: None,
            }]),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "InvalidInsightSelectorsException");
    assert!(err.message().contains("Bogus"), "{}", err.message());
    let err = h
        .trails
        .put_insight_selectors(
            &ctx(HOME),
            put(vec![InsightSelector {
                insight_type: Some(InsightType::ApiCallRateInsight),
                event_categories: Some(vec![SourceEventCategory::Unknown("Weird".into())]),
            }]),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "InvalidInsightSelectorsException");
    assert!(err.message().contains("Weird"), "{}", err.message());
    assert_eq!(
        code(
            h.trails
                .put_insight_selectors(&ctx(HOME), put(vec![selectors[0].clone(); 2]))
                .await
        ),
        "InvalidInsightSelectorsException"
    );
    assert_eq!(
        h.trails
            .get_insight_selectors(&ctx(HOME), get())
            .await
            .unwrap()
            .insight_selectors,
        Some(selectors)
    );

    // Trails only: an event data store, or neither, is refused.
    assert_eq!(
        code(
            h.trails
                .get_insight_selectors(
                    &ctx(HOME),
                    GetInsightSelectorsRequest {
                        trail_name: None,
                        event_data_store: None
                    }
                )
                .await
        ),
        "InvalidParameterCombinationException"
    );

    // An empty list turns Insights off.
    let cleared = h
        .trails
        .put_insight_selectors(&ctx(HOME), put(vec![]))
        .await
        .unwrap();
    assert_eq!(cleared.insight_selectors, Some(vec![]));
    assert_eq!(
        code(h.trails.get_insight_selectors(&ctx(HOME), get()).await),
        "InsightNotEnabledException"
    );
}

// ----------------------------------------------------------------- logging

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_and_stop_logging_with_the_test_clock() {
    let h = harness().await;
    h.trails
        .create_trail(&ctx(HOME), create("logged"))
        .await
        .unwrap();
    let fresh = h.status("logged").await;
    assert_eq!(
        fresh,
        GetTrailStatusResponse {
            is_logging: Some(false),
            latest_delivery_attempt_time: Some(String::new()),
            latest_notification_attempt_time: Some(String::new()),
            latest_notification_attempt_succeeded: Some(String::new()),
            latest_delivery_attempt_succeeded: Some(String::new()),
            time_logging_started: Some(String::new()),
            time_logging_stopped: Some(String::new()),
            ..Default::default()
        }
    );

    let t0 = start() + Duration::seconds(30);
    h.clock.set(t0);
    h.log_end.store(1234, Ordering::SeqCst);
    h.trails
        .start_logging(
            &ctx(HOME),
            StartLoggingRequest {
                name: arn("logged", HOME),
            },
        )
        .await
        .unwrap();
    let started = h.status("logged").await;
    assert_eq!(started.is_logging, Some(true));
    assert_eq!(started.start_logging_time, Some(Timestamp(t0)));
    assert_eq!(started.time_logging_started, Some(iso8601(t0)));
    assert_eq!(started.stop_logging_time, None);
    assert_eq!(started.time_logging_stopped, Some(String::new()));
    // Delivery starts at the end of the event log as it was when logging started.
    let record = h.trails.all_trails().unwrap().remove(0);
    assert_eq!(record.status.logging_since_offset, Some(1234));
    // On the wire, timestamps are epoch seconds.
    let wire = serde_json::to_value(&started).unwrap();
    assert_eq!(wire["StartLoggingTime"], serde_json::json!(t0.timestamp()));

    let t1 = t0 + Duration::milliseconds(90_500);
    h.clock.set(t1);
    h.trails
        .stop_logging(
            &ctx(HOME),
            StopLoggingRequest {
                name: "logged".into(),
            },
        )
        .await
        .unwrap();
    let stopped = h.status("logged").await;
    assert_eq!(stopped.is_logging, Some(false));
    assert_eq!(stopped.start_logging_time, Some(Timestamp(t0)));
    assert_eq!(stopped.stop_logging_time, Some(Timestamp(t1)));
    assert_eq!(stopped.time_logging_stopped, Some(iso8601(t1)));

    // Stopping again changes nothing.
    h.clock.advance(Duration::seconds(60));
    h.trails
        .stop_logging(
            &ctx(HOME),
            StopLoggingRequest {
                name: "logged".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(h.status("logged").await, stopped);

    let t2 = h.clock_now();
    h.trails
        .start_logging(
            &ctx(HOME),
            StartLoggingRequest {
                name: "logged".into(),
            },
        )
        .await
        .unwrap();
    let restarted = h.status("logged").await;
    assert_eq!(restarted.is_logging, Some(true));
    assert_eq!(restarted.start_logging_time, Some(Timestamp(t2)));
    assert_eq!(restarted.stop_logging_time, Some(Timestamp(t1)));
}

impl Harness {
    fn clock_now(&self) -> DateTime<Utc> {
        use opentrail_model::Clock;
        self.clock.now()
    }
}

// ----------------------------------------------------------------- paging

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_trails_pages_with_next_token() {
    let h = harness().await;
    let mut expected = Vec::new();
    for (region, name) in [
        (HOME, "alpha"),
        (HOME, "bravo"),
        (OTHER, "charlie"),
        (OTHER, "delta"),
        ("us-west-2", "echo"),
    ] {
        h.trails
            .create_trail(&ctx(region), create(name))
            .await
            .unwrap();
        expected.push(arn(name, region));
    }
    expected.sort_by_key(|a| {
        let region = a.split(':').nth(3).unwrap().to_owned();
        (region, a.clone())
    });

    let mut seen = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let page = h
            .trails
            .list_trails(
                &ctx(HOME),
                ListTrailsRequest {
                    next_token: token.take(),
                },
            )
            .await
            .unwrap();
        pages += 1;
        let trails = page.trails.unwrap();
        assert!(trails.len() <= PAGE_SIZE);
        seen.extend(trails.into_iter().map(|t| t.trail_arn.unwrap()));
        match page.next_token {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, expected);

    assert_eq!(
        code(
            h.trails
                .list_trails(
                    &ctx(HOME),
                    ListTrailsRequest {
                        next_token: Some("not-a-token".into()),
                    }
                )
                .await
        ),
        "InvalidNextTokenException"
    );
}

// ----------------------------------------------------------------- errors

#[test]
fn trail_errors_are_aws_errors() {
    let not_found = TrailError::TrailNotFound("Unknown trail".into());
    assert_eq!(
        (not_found.code(), not_found.status()),
        ("TrailNotFoundException", 400)
    );
    let api = ApiError::from(not_found);
    assert_eq!(
        (api.status, api.code, api.message.as_str()),
        (400, "TrailNotFoundException", "Unknown trail")
    );
    let internal = ApiError::from(TrailError::Internal("disk full".into()));
    assert_eq!(
        (internal.status, internal.code, internal.message.as_str()),
        (500, "InternalFailure", "disk full")
    );
}

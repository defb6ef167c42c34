//! The topic registry: names and ARNs, subscriptions, and persistence in the metadata
//! store (shared by processes; a registry file of an older version is imported).

use opentrail_meta::{MetaStore, SqliteMetaStore};
use opentrail_notify::{Endpoint, NotifyError, TopicRegistry};
use std::path::Path;
use std::sync::Arc;

const ACCOUNT: &str = "123456789012";

/// Another store instance on the data dir's database, as another process has.
fn meta(dir: &Path) -> Arc<dyn MetaStore> {
    Arc::new(SqliteMetaStore::open(&dir.join("meta.sqlite")).unwrap())
}

fn legacy_file(dir: &Path) -> std::path::PathBuf {
    dir.join("notify/topics.json")
}

fn try_open(dir: &Path) -> Result<TopicRegistry, NotifyError> {
    TopicRegistry::open(meta(dir), &legacy_file(dir))
}

fn open(dir: &tempfile::TempDir) -> TopicRegistry {
    try_open(dir.path()).unwrap()
}

#[test]
fn topics_are_named_like_sns_topics() {
    let dir = tempfile::tempdir().unwrap();
    let registry = open(&dir);
    let topic = registry
        .create_topic(ACCOUNT, "eu-west-1", "CloudTrail_Alerts-1")
        .unwrap();
    assert_eq!(
        topic.arn,
        "arn:aws:sns:eu-west-1:123456789012:CloudTrail_Alerts-1"
    );
    assert_eq!(
        (
            topic.name.as_str(),
            topic.account.as_str(),
            topic.region.as_str()
        ),
        ("CloudTrail_Alerts-1", ACCOUNT, "eu-west-1")
    );
    assert!(topic.subscriptions.is_empty());
    assert_eq!(
        registry
            .create_topic(ACCOUNT, "eu-west-1", "CloudTrail_Alerts-1")
            .unwrap(),
        topic,
        "creating an existing topic returns it"
    );
    let longest = "x".repeat(256);
    registry
        .create_topic(ACCOUNT, "us-east-1", &longest)
        .unwrap();

    for bad in ["", "a.b", "has space", "topic.fifo", &"x".repeat(257)] {
        assert_eq!(
            registry.create_topic(ACCOUNT, "us-east-1", bad),
            Err(NotifyError::InvalidTopicName(bad.to_owned())),
            "{bad}"
        );
    }
    assert!(matches!(
        registry.create_topic("12345", "us-east-1", "t"),
        Err(NotifyError::InvalidParameter(m)) if m.contains("account")
    ));
    assert!(matches!(
        registry.create_topic(ACCOUNT, "US_EAST", "t"),
        Err(NotifyError::InvalidParameter(m)) if m.contains("region")
    ));

    let arns: Vec<String> = registry.list_topics().into_iter().map(|t| t.arn).collect();
    assert_eq!(
        arns,
        [
            topic.arn.clone(),
            format!("arn:aws:sns:us-east-1:123456789012:{longest}")
        ]
    );
    assert!(registry.topic_exists(&topic.arn));
    assert!(!registry.topic_exists("arn:aws:sns:eu-west-1:123456789012:other"));
    registry.delete_topic(&topic.arn).unwrap();
    assert!(!registry.topic_exists(&topic.arn));
    assert_eq!(
        registry.delete_topic(&topic.arn),
        Err(NotifyError::TopicNotFound(topic.arn.clone()))
    );
}

#[test]
fn subscriptions_are_validated_and_removable() {
    let dir = tempfile::tempdir().unwrap();
    let registry = open(&dir);
    let topic = registry
        .create_topic(ACCOUNT, "us-east-1", "alerts")
        .unwrap();

    let generated = registry
        .subscribe_webhook(&topic.arn, "https://hooks.example.com/ct", None, false)
        .unwrap();
    assert!(generated.arn.starts_with(&format!("{}:", topic.arn)));
    assert_eq!(generated.topic_arn, topic.arn);
    let Endpoint::Webhook { url, secret, .. } = &generated.endpoint else {
        panic!("a webhook");
    };
    assert_eq!(url, "https://hooks.example.com/ct");
    assert!(secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit()));

    let given = registry
        .subscribe_webhook(
            &topic.arn,
            "http://127.0.0.1:9000/x?token=1",
            Some("0123456789abcdef".into()),
            true,
        )
        .unwrap();
    assert!(
        matches!(&given.endpoint, Endpoint::Webhook { secret, .. } if secret == "0123456789abcdef")
    );

    let sns = registry
        .subscribe_sns(
            &topic.arn,
            "https://sns.eu-west-1.amazonaws.com",
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "eu-west-1",
            "arn:aws:sns:eu-west-1:210987654321:forwarded",
        )
        .unwrap();
    assert!(matches!(&sns.endpoint, Endpoint::Sns(target)
        if target.topic_arn == "arn:aws:sns:eu-west-1:210987654321:forwarded"
            && target.endpoint == "https://sns.eu-west-1.amazonaws.com/"));
    let shown = format!("{sns:?} {given:?}");
    assert!(
        !shown.contains("wJalrXUtnFEMI")
            && !shown.contains("0123456789abcdef")
            && !shown.contains("token"),
        "{shown}"
    );

    let invalid =
        |result: Result<_, NotifyError>| matches!(result, Err(NotifyError::InvalidParameter(_)));
    assert!(invalid(registry.subscribe_webhook(
        &topic.arn,
        "ftp://x/y",
        None,
        false
    )));
    assert!(invalid(registry.subscribe_webhook(
        &topic.arn,
        "not a url",
        None,
        false
    )));
    assert!(invalid(registry.subscribe_webhook(
        &topic.arn,
        "https://a.example/",
        Some("short".into()),
        false
    )));
    assert!(invalid(registry.subscribe_webhook(
        &topic.arn,
        "https://a.example/",
        Some("with space 0123456789".into()),
        false
    )));
    assert!(
        invalid(registry.subscribe_webhook(
            &topic.arn,
            "https://hooks.example.com/ct",
            None,
            false
        )),
        "the same URL twice"
    );
    assert!(invalid(registry.subscribe_sns(
        &topic.arn,
        "https://sns.example",
        "",
        "s",
        "us-east-1",
        "arn:aws:sns:us-east-1:123456789012:t"
    )));
    assert!(invalid(registry.subscribe_sns(
        &topic.arn,
        "https://sns.example",
        "a",
        "s",
        "Nowhere",
        "arn:aws:sns:us-east-1:123456789012:t"
    )));
    assert!(invalid(registry.subscribe_sns(
        &topic.arn,
        "https://sns.example",
        "a",
        "s",
        "us-east-1",
        "arn:aws:sqs:us-east-1:123456789012:t"
    )));
    let unknown = "arn:aws:sns:us-east-1:123456789012:unknown";
    assert_eq!(
        registry.subscribe_webhook(unknown, "https://b.example/", None, false),
        Err(NotifyError::TopicNotFound(unknown.into()))
    );

    let subscriptions = registry.topic(&topic.arn).unwrap().subscriptions;
    assert_eq!(
        subscriptions,
        [generated.clone(), given.clone(), sns.clone()]
    );
    registry.unsubscribe(&given.arn).unwrap();
    assert_eq!(
        registry.unsubscribe(&given.arn),
        Err(NotifyError::SubscriptionNotFound(given.arn.clone()))
    );
    assert_eq!(
        registry.unsubscribe("nonsense"),
        Err(NotifyError::SubscriptionNotFound("nonsense".into()))
    );
    assert_eq!(
        registry.topic(&topic.arn).unwrap().subscriptions,
        [generated, sns]
    );
}

#[test]
fn the_registry_survives_reopening_and_sees_changes_by_other_processes() {
    let dir = tempfile::tempdir().unwrap();
    let server = open(&dir);
    assert!(server.list_topics().is_empty());

    // An admin command changes the registry while the server holds it open.
    let admin = open(&dir);
    let topic = admin.create_topic(ACCOUNT, "us-east-1", "alerts").unwrap();
    let subscription = admin
        .subscribe_webhook(&topic.arn, "https://hooks.example.com/", None, false)
        .unwrap();
    assert!(server.topic_exists(&topic.arn));
    assert_eq!(
        server.topic(&topic.arn).unwrap().subscriptions,
        std::slice::from_ref(&subscription)
    );

    // And the server's own changes build on the admin's.
    server.create_topic(ACCOUNT, "us-east-1", "second").unwrap();
    admin.unsubscribe(&subscription.arn).unwrap();
    let reopened = open(&dir);
    let names: Vec<String> = reopened.list_topics().into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["alerts", "second"]);
    assert!(reopened.topic(&topic.arn).unwrap().subscriptions.is_empty());
}

#[test]
fn concurrent_changes_from_several_processes_are_all_kept() {
    let dir = tempfile::tempdir().unwrap();
    let topic = open(&dir)
        .create_topic(ACCOUNT, "us-east-1", "alerts")
        .unwrap();
    let admins: Vec<TopicRegistry> = (0..4).map(|_| open(&dir)).collect();
    std::thread::scope(|scope| {
        for (i, admin) in admins.iter().enumerate() {
            let arn = topic.arn.clone();
            scope.spawn(move || {
                for j in 0..5 {
                    let url = format!("https://hooks{i}.example.com/{j}");
                    admin.subscribe_webhook(&arn, &url, None, false).unwrap();
                }
            });
        }
    });
    assert_eq!(
        open(&dir).topic(&topic.arn).unwrap().subscriptions.len(),
        20
    );
}

#[test]
fn a_registry_file_of_an_older_version_is_imported_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = legacy_file(dir.path());
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let arn = format!("arn:aws:sns:us-east-1:{ACCOUNT}:alerts");
    let legacy = serde_json::json!({"version": 1, "topics": [{
        "arn": arn, "name": "alerts", "account": ACCOUNT, "region": "us-east-1",
        "subscriptions": []
    }]});
    std::fs::write(&file, legacy.to_string()).unwrap();
    let registry = try_open(dir.path()).unwrap();
    assert!(registry.topic_exists(&arn));
    assert!(!file.exists());
    assert!(dir.path().join("notify/topics.json.migrated").exists());
    registry.delete_topic(&arn).unwrap();
    // Not imported again.
    assert!(!open(&dir).topic_exists(&arn));

    // A damaged file: opening fails loudly.
    std::fs::write(&file, b"{ not json").unwrap();
    assert!(matches!(
        try_open(dir.path()),
        Err(NotifyError::Storage { reason, .. }) if reason.contains("not a topic registry")
    ));
    std::fs::write(&file, br#"{"version":2,"topics":[]}"#).unwrap();
    assert!(matches!(
        try_open(dir.path()),
        Err(NotifyError::Storage { reason, .. }) if reason.contains("version 2")
    ));
}

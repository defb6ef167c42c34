//! Topics and their subscriptions as the registry stores them, and the rules for topic
//! names and ARNs.

use opentrail_model::{AccountId, Arn, Region};
use serde::{Deserialize, Serialize};

use crate::NotifyError;

/// An SNS-style topic: `arn:aws:sns:<region>:<account>:<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topic {
    pub arn: String,
    pub name: String,
    pub account: String,
    pub region: String,
    pub subscriptions: Vec<Subscription>,
}

/// One receiver of a topic's notifications: `<topic arn>:<uuid>`, as SNS names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub arn: String,
    pub topic_arn: String,
    pub endpoint: Endpoint,
}

/// Where a subscription's notifications go. `Debug` never shows secrets.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "protocol", rename_all = "snake_case")]
pub enum Endpoint {
    /// An HTTP(S) POST of the SNS notification envelope, signed with `secret`
    /// (see the crate documentation for the signature).
    Webhook {
        url: String,
        secret: String,
        /// Created with `--allow-private-targets`: loopback, private and link-local
        /// addresses are allowed (see `targets.rs`). Absent (older registries): refused.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        allow_private_targets: bool,
    },
    /// An SNS Query API `Publish` to an SNS-compatible service, signed with SigV4.
    Sns(SnsTarget),
}

/// A topic on an SNS-compatible service and the credentials to publish to it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnsTarget {
    /// `http(s)://host[:port][/path]`, e.g. `https://sns.us-east-1.amazonaws.com`.
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    /// The SigV4 signing region.
    pub region: String,
    pub topic_arn: String,
}

impl Endpoint {
    /// A description without secrets, for listings, logs and error messages.
    pub fn describe(&self) -> String {
        match self {
            Endpoint::Webhook { url, .. } => format!("webhook {}", redact_url(url)),
            Endpoint::Sns(target) => format!(
                "sns {} at {}",
                target.topic_arn,
                redact_url(&target.endpoint)
            ),
        }
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Webhook { url, .. } => f
                .debug_struct("Webhook")
                .field("url", &redact_url(url))
                .field("secret", &"** redacted **")
                .finish(),
            Endpoint::Sns(target) => f.debug_tuple("Sns").field(target).finish(),
        }
    }
}

impl std::fmt::Debug for SnsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnsTarget")
            .field("endpoint", &redact_url(&self.endpoint))
            .field("access_key", &self.access_key)
            .field("secret_key", &"** redacted **")
            .field("region", &self.region)
            .field("topic_arn", &self.topic_arn)
            .finish()
    }
}

/// 1-256 ASCII letters, digits, hyphens and underscores (SNS standard topics).
pub fn is_valid_topic_name(name: &str) -> bool {
    (1..=256).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The parts of a well-formed topic ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicArn {
    pub(crate) partition: String,
    pub(crate) account: AccountId,
    pub(crate) region: Region,
    pub(crate) name: String,
}

impl TopicArn {
    pub(crate) fn new(account: &str, region: &str, name: &str) -> Result<TopicArn, NotifyError> {
        let account = AccountId::parse(account).map_err(|_| {
            NotifyError::InvalidParameter(format!(
                "invalid account id {account:?}: expected 12 digits"
            ))
        })?;
        let region = Region::parse(region).map_err(NotifyError::InvalidParameter)?;
        if !is_valid_topic_name(name) {
            return Err(NotifyError::InvalidTopicName(name.to_owned()));
        }
        Ok(TopicArn {
            partition: "aws".to_owned(),
            account,
            region,
            name: name.to_owned(),
        })
    }

    /// `arn:<partition>:sns:<region>:<account>:<name>`, any partition.
    pub(crate) fn parse(arn: &str) -> Result<TopicArn, NotifyError> {
        let invalid = || NotifyError::InvalidParameter(format!("invalid SNS topic ARN {arn:?}"));
        let parsed = Arn::parse(arn).map_err(|_| invalid())?;
        if parsed.service != "sns" {
            return Err(invalid());
        }
        let topic = TopicArn::new(&parsed.account, &parsed.region, &parsed.resource)
            .map_err(|_| invalid())?;
        Ok(TopicArn {
            partition: parsed.partition,
            ..topic
        })
    }
}

impl std::fmt::Display for TopicArn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "arn:{}:sns:{}:{}:{}",
            self.partition, self.region, self.account, self.name
        )
    }
}

/// `scheme://host[:port]/path`: no user info, query or fragment, which may hold secrets.
pub(crate) fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = reqwest::Url::parse(url) else {
        return "<invalid url>".to_owned();
    };
    // Only fails for URLs that cannot have a host, which have no credentials either.
    let _ = parsed.set_username("");
    let _ = parsed.set_password(None);
    parsed.set_query(None);
    parsed.set_fragment(None);
    parsed.to_string()
}

/// Accepts `http(s)://host...` and returns it normalised.
pub(crate) fn parse_http_url(what: &str, url: &str) -> Result<reqwest::Url, NotifyError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| NotifyError::InvalidParameter(format!("invalid {what} {url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(NotifyError::InvalidParameter(format!(
            "invalid {what} {url:?}: expected http(s)://host[:port][/path]"
        )));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn topic_names_follow_the_sns_rules() {
        for good in ["a", "CloudTrail-Alerts_1", &"x".repeat(256)] {
            assert!(is_valid_topic_name(good), "{good}");
        }
        for bad in ["", "a.b", "a b", "topic.fifo", "ü", &"x".repeat(257), "a:b"] {
            assert!(!is_valid_topic_name(bad), "{bad}");
        }
    }

    #[test]
    fn topic_arns_round_trip() {
        let arn = TopicArn::parse("arn:aws:sns:eu-west-1:123456789012:alerts").unwrap();
        assert_eq!(arn.name, "alerts");
        assert_eq!(arn.to_string(), "arn:aws:sns:eu-west-1:123456789012:alerts");
        for bad in [
            "arn:aws:sqs:eu-west-1:123456789012:alerts",
            "arn:aws:sns:eu-west-1:12345678901:alerts",
            "arn:aws:sns:EU:123456789012:alerts",
            "arn:aws:sns:eu-west-1:123456789012:a.b",
            "alerts",
        ] {
            assert!(TopicArn::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_lose_credentials_when_shown() {
        assert_eq!(
            redact_url("https://user:pw@hooks.example.com:8443/a/b?token=s3cret#x"),
            "https://hooks.example.com:8443/a/b"
        );
        let endpoint = Endpoint::Webhook {
            url: "https://hooks.example.com/x?token=s3cret".into(),
            secret: "hmac-secret".into(),
            allow_private_targets: false,
        };
        let shown = format!("{endpoint:?} {}", endpoint.describe());
        assert!(
            !shown.contains("s3cret") && !shown.contains("hmac-secret"),
            "{shown}"
        );
    }

    proptest! {
        #[test]
        fn valid_names_are_exactly_the_allowed_alphabet(name in "[A-Za-z0-9_.: -]{0,300}") {
            let expected = !name.is_empty()
                && name.len() <= 256
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            prop_assert_eq!(is_valid_topic_name(&name), expected);
        }
    }
}

//! What a subscriber receives: CloudTrail's message about a delivered log file, wrapped
//! in the SNS HTTP(S) notification envelope, signed with the subscription's secret.

use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The header carrying `sha256=<hex HMAC-SHA256 of the raw body>`.
pub const SIGNATURE_HEADER: &str = "x-opentrail-signature";
/// `SignatureVersion` of our envelopes: `Signature` is an HMAC, not SNS's RSA signature.
pub const SIGNATURE_VERSION: &str = "opentrail-hmac-sha256";
/// `Type` and `x-amz-sns-message-type` of a notification.
pub const NOTIFICATION_TYPE: &str = "Notification";

type HmacSha256 = Hmac<Sha256>;

#[derive(Serialize)]
struct LogFileMessage<'a> {
    #[serde(rename = "s3Bucket")]
    s3_bucket: &'a str,
    #[serde(rename = "s3ObjectKey")]
    s3_object_key: &'a [&'a str],
}

/// The SNS `Message` CloudTrail publishes for delivered log files:
/// `{"s3Bucket":"<bucket>","s3ObjectKey":["<key>",...]}`.
pub fn log_file_message(bucket: &str, keys: &[&str]) -> String {
    let message = LogFileMessage {
        s3_bucket: bucket,
        s3_object_key: keys,
    };
    serde_json::to_string(&message).unwrap_or_else(|_| unreachable!("strings always serialize"))
}

/// The JSON body of an SNS HTTP(S) notification, field for field. OpenTrail leaves out
/// `Subject` (CloudTrail publishes none), signs with an HMAC (`SignatureVersion`
/// [`SIGNATURE_VERSION`]) and sends `SigningCertURL` and `UnsubscribeURL` empty: there is
/// no certificate, and subscriptions are managed with admin commands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationEnvelope {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "MessageId")]
    pub message_id: String,
    #[serde(rename = "TopicArn")]
    pub topic_arn: String,
    #[serde(rename = "Subject", default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(rename = "Message")]
    pub message: String,
    /// `2024-05-17T09:30:12.345Z`.
    #[serde(rename = "Timestamp")]
    pub timestamp: String,
    #[serde(rename = "SignatureVersion")]
    pub signature_version: String,
    /// Base64 HMAC-SHA256 of [`NotificationEnvelope::string_to_sign`].
    #[serde(rename = "Signature")]
    pub signature: String,
    #[serde(rename = "SigningCertURL")]
    pub signing_cert_url: String,
    #[serde(rename = "UnsubscribeURL")]
    pub unsubscribe_url: String,
}

impl NotificationEnvelope {
    /// A signed notification of `message` on `topic_arn`.
    pub fn new(
        secret: &[u8],
        message_id: &str,
        topic_arn: &str,
        message: &str,
        published_at: DateTime<Utc>,
    ) -> NotificationEnvelope {
        let mut envelope = NotificationEnvelope {
            kind: NOTIFICATION_TYPE.to_owned(),
            message_id: message_id.to_owned(),
            topic_arn: topic_arn.to_owned(),
            subject: None,
            message: message.to_owned(),
            timestamp: opentrail_model::iso8601_millis(published_at),
            signature_version: SIGNATURE_VERSION.to_owned(),
            signature: String::new(),
            signing_cert_url: String::new(),
            unsubscribe_url: String::new(),
        };
        envelope.signature = base64::engine::general_purpose::STANDARD
            .encode(hmac(secret, envelope.string_to_sign().as_bytes()));
        envelope
    }

    /// SNS's string to sign for a notification: each of `Message`, `MessageId`, `Subject`
    /// (when present), `Timestamp`, `TopicArn`, `Type` as its name, a newline, its value,
    /// a newline.
    pub fn string_to_sign(&self) -> String {
        let mut fields = vec![
            ("Message", self.message.as_str()),
            ("MessageId", self.message_id.as_str()),
        ];
        if let Some(subject) = &self.subject {
            fields.push(("Subject", subject));
        }
        fields.extend([
            ("Timestamp", self.timestamp.as_str()),
            ("TopicArn", self.topic_arn.as_str()),
            ("Type", self.kind.as_str()),
        ]);
        fields
            .iter()
            .map(|(name, value)| format!("{name}\n{value}\n"))
            .collect()
    }

    /// Whether `Signature` is this envelope's HMAC with `secret` (in constant time).
    pub fn verify(&self, secret: &[u8]) -> bool {
        if self.signature_version != SIGNATURE_VERSION {
            return false;
        }
        let Ok(signature) = base64::engine::general_purpose::STANDARD.decode(&self.signature)
        else {
            return false;
        };
        mac(secret)
            .chain_update(self.string_to_sign().as_bytes())
            .verify_slice(&signature)
            .is_ok()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| unreachable!("strings always serialize"))
    }
}

/// The [`SIGNATURE_HEADER`] value for `body`: `sha256=<lowercase hex HMAC-SHA256>`.
pub fn body_signature(secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", hex::encode(hmac(secret, body)))
}

/// Whether `header_value` is `body`'s [`SIGNATURE_HEADER`] value (in constant time).
pub fn verify_body_signature(secret: &[u8], body: &[u8], header_value: &str) -> bool {
    let Some(Ok(signature)) = header_value.strip_prefix("sha256=").map(hex::decode) else {
        return false;
    };
    mac(secret)
        .chain_update(body)
        .verify_slice(&signature)
        .is_ok()
}

fn mac(secret: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"))
}

fn hmac(secret: &[u8], data: &[u8]) -> Vec<u8> {
    mac(secret)
        .chain_update(data)
        .finalize()
        .into_bytes()
        .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_message_is_cloudtrails() {
        let key = "AWSLogs/123456789012/CloudTrail/us-east-2/2013/12/13/123456789012_CloudTrail_us-east-2_20131213T1920Z_LnPgDQnpkSKEsppV.json.gz";
        assert_eq!(
            log_file_message("amzn-s3-demo-bucket", &[key]),
            format!(r#"{{"s3Bucket":"amzn-s3-demo-bucket","s3ObjectKey":["{key}"]}}"#)
        );
    }

    #[test]
    fn envelopes_are_sns_shaped_and_signed() {
        let at = Utc.with_ymd_and_hms(2024, 5, 17, 9, 30, 12).unwrap()
            + chrono::Duration::milliseconds(345);
        let envelope = NotificationEnvelope::new(
            b"0123456789abcdef",
            "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "arn:aws:sns:us-west-2:123456789012:MyTopic",
            r#"{"s3Bucket":"b","s3ObjectKey":["k"]}"#,
            at,
        );
        let json = envelope.to_json();
        let expected_prefix = concat!(
            r#"{"Type":"Notification","MessageId":"22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324","#,
            r#""TopicArn":"arn:aws:sns:us-west-2:123456789012:MyTopic","#,
            r#""Message":"{\"s3Bucket\":\"b\",\"s3ObjectKey\":[\"k\"]}","#,
            r#""Timestamp":"2024-05-17T09:30:12.345Z","SignatureVersion":"opentrail-hmac-sha256","Signature":""#,
        );
        assert!(json.starts_with(expected_prefix), "{json}");
        assert!(
            json.ends_with(r#"","SigningCertURL":"","UnsubscribeURL":""}"#),
            "{json}"
        );
        assert_eq!(
            envelope.string_to_sign(),
            "Message\n{\"s3Bucket\":\"b\",\"s3ObjectKey\":[\"k\"]}\nMessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\nTimestamp\n2024-05-17T09:30:12.345Z\nTopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\nType\nNotification\n"
        );
        // Checked with the Python verifier in the README.
        assert_eq!(
            envelope.signature,
            "1MMw0EplV/wZ8q2odBna7LvzZwwHVsGvZ+HJDYbDgzE="
        );
        assert!(envelope.verify(b"0123456789abcdef"));
        assert!(!envelope.verify(b"another-secret-0"));
        let tampered = NotificationEnvelope {
            message: r#"{"s3Bucket":"evil","s3ObjectKey":["k"]}"#.into(),
            ..envelope.clone()
        };
        assert!(!tampered.verify(b"0123456789abcdef"));
        let parsed: NotificationEnvelope = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed, envelope);
    }

    #[test]
    fn body_signatures_match_the_hmac_test_vector() {
        // RFC 4231 test case 2.
        let header = body_signature(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            header,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(verify_body_signature(
            b"Jefe",
            b"what do ya want for nothing?",
            &header
        ));
        assert!(!verify_body_signature(
            b"Jefe",
            b"what do ya want for nothing!",
            &header
        ));
        assert!(!verify_body_signature(
            b"Jefe",
            b"what do ya want for nothing?",
            &header[7..]
        ));
        assert!(!verify_body_signature(b"Jefe", b"x", "sha256=zz"));
    }
}

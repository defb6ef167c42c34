//! One SNS Query API `Publish` to an SNS-compatible endpoint, signed with SigV4.

use std::time::Duration;

use chrono::{DateTime, Utc};
use opentrail_sigv4::{encode_pairs, sign, PayloadHash, SigningParams};

use crate::retry::{describe_transport_error, status_is_retryable, truncate, AttemptError};
use crate::topic::{redact_url, SnsTarget};

const API_VERSION: &str = "2010-03-31";
const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// SNS error codes that mean "later", whatever the HTTP status.
const RETRYABLE_CODES: [&str; 7] = [
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
];

/// Publishes `message` to the target topic; returns the `MessageId` the service assigned
/// (empty if its answer had none).
pub(crate) async fn publish(
    http: &reqwest::Client,
    timeout: Duration,
    target: &SnsTarget,
    message: &str,
    now: DateTime<Utc>,
) -> Result<String, AttemptError> {
    let body = encode_pairs(&[
        ("Action", "Publish"),
        ("Message", message),
        ("TopicArn", &target.topic_arn),
        ("Version", API_VERSION),
    ]);
    let url = reqwest::Url::parse(&target.endpoint).map_err(|e| {
        AttemptError::permanent(format!(
            "invalid SNS endpoint {}: {e}",
            redact_url(&target.endpoint)
        ))
    })?;
    let uri: http::Uri = url.as_str().parse().map_err(|e| {
        AttemptError::permanent(format!(
            "invalid SNS endpoint {}: {e}",
            redact_url(&target.endpoint)
        ))
    })?;
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(FORM_CONTENT_TYPE),
    );
    let params = SigningParams {
        access_key_id: &target.access_key,
        secret_access_key: &target.secret_key,
        region: &target.region,
        service: "sns",
        time: now,
        session_token: None,
        uri_double_encode: true,
        payload: PayloadHash::Body(body.as_bytes()),
        set_content_sha256_header: false,
    };
    let signed = sign(&http::Method::POST, &uri, &headers, &params)
        .map_err(|e| AttemptError::permanent(format!("failed to sign SNS Publish: {e}")))?;
    for (name, value) in signed {
        headers.insert(name, value);
    }

    let response = http
        .post(url)
        .headers(headers)
        .body(body)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| AttemptError::retryable(describe_transport_error(e)))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| AttemptError::retryable(describe_transport_error(e)))?;
    if status.is_success() {
        return Ok(xml_element(&text, "MessageId").unwrap_or_default());
    }
    let code = xml_element(&text, "Code").unwrap_or_default();
    let detail = xml_element(&text, "Message").unwrap_or_default();
    let message = match (code.is_empty(), detail.is_empty()) {
        (true, _) => format!("SNS Publish answered HTTP {status}"),
        (false, true) => format!("SNS Publish answered HTTP {status} {code}"),
        (false, false) => format!(
            "SNS Publish answered HTTP {status} {code}: {}",
            truncate(&detail, 200)
        ),
    };
    if status_is_retryable(status) || RETRYABLE_CODES.contains(&code.as_str()) {
        return Err(AttemptError::retryable(message));
    }
    Err(AttemptError::permanent(message))
}

/// The text of the first `<name>` element, unescaped. SNS answers are small and flat
/// enough that this needs no XML parser.
fn xml_element(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    Some(unescape(&xml[start..end]))
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_percent_encoded() {
        assert_eq!(
            encode_pairs(&[
                ("Message", r#"{"s3Bucket":"b c"}"#),
                ("TopicArn", "arn:aws:sns:x")
            ]),
            "Message=%7B%22s3Bucket%22%3A%22b%20c%22%7D&TopicArn=arn%3Aaws%3Asns%3Ax"
        );
    }

    #[test]
    fn reads_answers_and_errors() {
        let ok = r#"<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult><MessageId>94f20ce6-13c5-43a0-9a9e-ca52d816e90b</MessageId></PublishResult></PublishResponse>"#;
        assert_eq!(
            xml_element(ok, "MessageId").as_deref(),
            Some("94f20ce6-13c5-43a0-9a9e-ca52d816e90b")
        );
        let error = r#"<ErrorResponse><Error><Type>Sender</Type><Code>NotFound</Code><Message>Topic &quot;x&quot; &amp; more</Message></Error></ErrorResponse>"#;
        assert_eq!(xml_element(error, "Code").as_deref(), Some("NotFound"));
        assert_eq!(
            xml_element(error, "Message").as_deref(),
            Some(r#"Topic "x" & more"#)
        );
        assert_eq!(xml_element(error, "MessageId"), None);
    }
}

//! Sign-in with an access key id and its secret, and sign-out. Each attempt is recorded on
//! the durable event log as AWS records console sign-ins: a `ConsoleLogin` event of type
//! `AwsConsoleSignIn` from `signin.amazonaws.com`, `responseElements.ConsoleLogin`
//! `Success` or `Failure` (with `errorMessage` "Failed authentication").

use crate::form::Fields;
use crate::html::{error_box, esc, page, Section};
use crate::session::{
    cookie, random_token, require_post, same_secret, set_cookie, SESSION_COOKIE, SIGNIN_COOKIE,
};
use crate::{Console, State};
use axum::extract::ConnectInfo;
use axum::response::{IntoResponse, Response};
use http::{header, HeaderMap, StatusCode};
use opentrail_http::auth::Caller;
use opentrail_meta::AccessKeyRecord;
use opentrail_model::{iso8601, AccountId, Region};
use serde_json::{json, Map, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the sign-in form's token lives.
const SIGNIN_FORM_TTL: Duration = Duration::from_secs(3600);

pub async fn form_page(axum::extract::State(console): State) -> Response {
    signin_page(&console, None, "", "us-east-1", StatusCode::OK)
}

fn signin_page(
    console: &Console,
    error: Option<String>,
    access_key_id: &str,
    region: &str,
    status: StatusCode,
) -> Response {
    let token = random_token();
    let body = format!(
        "{}<form method=\"post\" action=\"/console/signin\" class=\"card narrow\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{token}\">\
         <p>Sign in with an access key of this server (<code>opentrail keys create</code>).</p>\
         <label for=\"access_key_id\">Access key ID</label>\
         <input id=\"access_key_id\" name=\"access_key_id\" autocomplete=\"username\" required value=\"{}\">\
         <label for=\"secret_access_key\">Secret access key</label>\
         <input id=\"secret_access_key\" name=\"secret_access_key\" type=\"password\" autocomplete=\"current-password\" required>\
         <label for=\"region\">Region</label>\
         <input id=\"region\" name=\"region\" required value=\"{}\">\
         <button type=\"submit\">Sign in</button></form>",
        error.unwrap_or_default(),
        esc(access_key_id),
        esc(region),
    );
    let mut response = page("Sign in", Section::SignIn, None, &body, status);
    if let Ok(value) =
        set_cookie(SIGNIN_COOKIE, &token, SIGNIN_FORM_TTL, console.config.tls).parse()
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub async fn sign_in(
    axum::extract::State(console): State,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let fields = Fields::parse(&body);
    let form_token_ok = match (cookie(&headers, SIGNIN_COOKIE), fields.get("csrf")) {
        (Some(expected), Some(sent)) => same_secret(expected, sent),
        _ => false,
    };
    if !form_token_ok {
        return crate::session::csrf_refused();
    }
    let access_key_id = fields.text("access_key_id").unwrap_or("");
    let region_text = fields.text("region").unwrap_or("us-east-1");
    let retry = |message: &str, status| {
        signin_page(
            &console,
            Some(error_box("Sign-in failed", message)),
            access_key_id,
            region_text,
            status,
        )
    };
    let source_ip = peer.ip().to_string();
    if !console
        .sign_in_limit
        .try_acquire(&source_ip, Instant::now())
    {
        return retry(
            "too many sign-in attempts from this address; wait a few seconds",
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    let region = match Region::parse(region_text) {
        Ok(region) if console.app.regions.contains(region.as_str()) => region,
        _ => {
            return retry(
                &format!("this server does not serve the region '{region_text}'"),
                StatusCode::BAD_REQUEST,
            )
        }
    };
    let meta = Arc::clone(&console.meta);
    let id = access_key_id.to_owned();
    let key = match tokio::task::spawn_blocking(move || meta.get_access_key(&id)).await {
        Ok(Ok(key)) => key,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "console sign-in could not read the access keys");
            return retry(
                "the server cannot read its access keys",
                StatusCode::INTERNAL_SERVER_ERROR,
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "console sign-in task failed");
            return retry("the server failed", StatusCode::INTERNAL_SERVER_ERROR);
        }
    };
    let secret = fields.get("secret_access_key").unwrap_or("");
    let authenticated = key
        .as_ref()
        .filter(|k| same_secret(secret, &k.secret_access_key));
    let login_to = format!(
        "{}://{}/console/events",
        if console.config.tls { "https" } else { "http" },
        header_text(&headers, header::HOST).unwrap_or("localhost")
    );
    let attempt = SignInAttempt {
        key: key.as_ref(),
        success: authenticated.is_some(),
        server_account: &console.app.account,
        region: &region,
        source_ip: &source_ip,
        user_agent: header_text(&headers, header::USER_AGENT),
        login_to: &login_to,
        now: console.app.clock.now(),
    };
    let event = console_login_event(&attempt);
    let recorded = console
        .app
        .log
        .append(vec![bytes::Bytes::from(event)])
        .await;
    if let Err(e) = &recorded {
        tracing::error!(error = %e, "failed to append a ConsoleLogin event to the event log");
    }
    let Some(key) = authenticated else {
        tracing::info!(source_ip, "console sign-in failed");
        return retry(
            "the access key ID or secret access key is not correct",
            StatusCode::UNAUTHORIZED,
        );
    };
    if recorded.is_err() {
        return retry(
            "the audit trail cannot record this sign-in right now; try again later",
            StatusCode::SERVICE_UNAVAILABLE,
        );
    }
    let account = match AccountId::parse(&key.account_id) {
        Ok(account) => account,
        Err(e) => {
            tracing::error!(error = %e, "stored access key has a bad account");
            return retry(
                "the access key's account is not valid",
                StatusCode::INTERNAL_SERVER_ERROR,
            );
        }
    };
    let caller = Caller {
        account,
        region,
        access_key_id: key.access_key_id.clone(),
        user_name: key.user_name.clone(),
        is_root: key.is_root,
        ingest_any_account: false,
        forward_audit: false,
    };
    tracing::info!(access_key_id = %key.access_key_id, "console sign-in");
    let token = console.sessions.start(caller);
    let mut response = axum::response::Redirect::to("/console/events").into_response();
    let session_cookie = set_cookie(
        SESSION_COOKIE,
        &token,
        console.sessions.ttl(),
        console.config.tls,
    );
    let expired_form_cookie = set_cookie(SIGNIN_COOKIE, "", Duration::ZERO, console.config.tls);
    for value in [session_cookie, expired_form_cookie] {
        if let Ok(value) = value.parse() {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

pub async fn sign_out(
    axum::extract::State(console): State,
    headers: HeaderMap,
    body: String,
) -> Response {
    let fields = Fields::parse(&body);
    let (token, _) = match require_post(&console, &headers, &fields) {
        Ok(found) => found,
        Err(refused) => return *refused,
    };
    console.sessions.end(&token);
    let mut response = axum::response::Redirect::to("/console/signin").into_response();
    if let Ok(value) = set_cookie(SESSION_COOKIE, "", Duration::ZERO, console.config.tls).parse() {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// One sign-in attempt, for its `ConsoleLogin` event.
struct SignInAttempt<'a> {
    /// The access key named, when it exists.
    key: Option<&'a AccessKeyRecord>,
    success: bool,
    server_account: &'a AccountId,
    region: &'a Region,
    source_ip: &'a str,
    user_agent: Option<&'a str>,
    login_to: &'a str,
    now: chrono::DateTime<chrono::Utc>,
}

/// The `ConsoleLogin` event of a sign-in attempt, shaped as AWS's: `userIdentity` of
/// the IAM user or root (with an empty `accessKeyId`, as console sign-ins have no key);
/// for an access key that does not exist, the user name `HIDDEN_DUE_TO_SECURITY_REASONS`
/// in the server's account, as AWS hides user names that do not exist.
fn console_login_event(attempt: &SignInAttempt<'_>) -> String {
    let identity = match attempt.key {
        Some(key) if key.is_root => json!({
            "type": "Root",
            "principalId": key.account_id,
            "arn": format!("arn:aws:iam::{}:root", key.account_id),
            "accountId": key.account_id,
            "accessKeyId": "",
        }),
        Some(key) => json!({
            "type": "IAMUser",
            "principalId": key.access_key_id.replacen("AKIA", "AIDA", 1),
            "arn": format!("arn:aws:iam::{}:user/{}", key.account_id, key.user_name),
            "accountId": key.account_id,
            "accessKeyId": "",
            "userName": key.user_name,
        }),
        None => json!({
            "type": "IAMUser",
            "accountId": attempt.server_account.as_str(),
            "accessKeyId": "",
            "userName": "HIDDEN_DUE_TO_SECURITY_REASONS",
        }),
    };
    let account = attempt
        .key
        .map_or(attempt.server_account.as_str(), |k| k.account_id.as_str());
    let mut event = Map::new();
    event.insert("eventVersion".into(), json!("1.11"));
    event.insert("userIdentity".into(), identity);
    event.insert("eventTime".into(), json!(iso8601(attempt.now)));
    event.insert("eventSource".into(), json!("signin.amazonaws.com"));
    event.insert("eventName".into(), json!("ConsoleLogin"));
    event.insert("awsRegion".into(), json!(attempt.region.as_str()));
    event.insert("sourceIPAddress".into(), json!(attempt.source_ip));
    if let Some(agent) = attempt.user_agent {
        let mut end = agent
            .len()
            .min(opentrail_http::self_audit::MAX_UNTRUSTED_BYTES);
        while !agent.is_char_boundary(end) {
            end -= 1;
        }
        event.insert("userAgent".into(), json!(&agent[..end]));
    }
    if !attempt.success {
        event.insert("errorMessage".into(), json!("Failed authentication"));
    }
    event.insert("requestParameters".into(), Value::Null);
    event.insert(
        "responseElements".into(),
        json!({ "ConsoleLogin": if attempt.success { "Success" } else { "Failure" } }),
    );
    event.insert(
        "additionalEventData".into(),
        json!({ "LoginTo": attempt.login_to, "MobileVersion": "No", "MFAUsed": "No" }),
    );
    event.insert("eventID".into(), json!(uuid::Uuid::new_v4().to_string()));
    event.insert("readOnly".into(), json!(false));
    event.insert("eventType".into(), json!("AwsConsoleSignIn"));
    event.insert("managementEvent".into(), json!(true));
    event.insert("recipientAccountId".into(), json!(account));
    event.insert("eventCategory".into(), json!("Management"));
    Value::Object(event).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentrail_model::EventRecord;

    fn key(is_root: bool) -> AccessKeyRecord {
        AccessKeyRecord {
            access_key_id: "AKIAEXAMPLE".into(),
            secret_access_key: "s3cr3t".into(),
            user_name: "alice".into(),
            account_id: "123456789012".into(),
            is_root,
            ingest_any_account: false,
            forward_audit: false,
            created_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    fn event(key: Option<&AccessKeyRecord>, success: bool) -> Value {
        let server = AccountId::parse("999999999999").unwrap();
        let region = Region::parse("eu-west-1").unwrap();
        let json = console_login_event(&SignInAttempt {
            key,
            success,
            server_account: &server,
            region: &region,
            source_ip: "127.0.0.1",
            user_agent: Some("Mozilla/5.0"),
            login_to: "http://localhost/console/events",
            now: chrono::Utc::now(),
        });
        EventRecord::from_json(&json).unwrap().validate().unwrap();
        assert!(!json.contains("s3cr3t"));
        serde_json::from_str(&json).unwrap()
    }

    #[test]
    fn success_is_recorded_as_aws_does() {
        let alice = key(false);
        let v = event(Some(&alice), true);
        assert_eq!(v["eventName"], "ConsoleLogin");
        assert_eq!(v["eventType"], "AwsConsoleSignIn");
        assert_eq!(v["eventSource"], "signin.amazonaws.com");
        assert_eq!(v["responseElements"]["ConsoleLogin"], "Success");
        assert_eq!(v["additionalEventData"]["MFAUsed"], "No");
        assert_eq!(v["additionalEventData"]["MobileVersion"], "No");
        assert_eq!(v["userIdentity"]["userName"], "alice");
        assert_eq!(v["recipientAccountId"], "123456789012");
        assert!(v.get("errorMessage").is_none());
        let root = key(true);
        assert_eq!(event(Some(&root), true)["userIdentity"]["type"], "Root");
    }

    #[test]
    fn failures_say_failed_authentication() {
        let alice = key(false);
        let v = event(Some(&alice), false);
        assert_eq!(v["responseElements"]["ConsoleLogin"], "Failure");
        assert_eq!(v["errorMessage"], "Failed authentication");
        let unknown = event(None, false);
        assert_eq!(
            unknown["userIdentity"]["userName"],
            "HIDDEN_DUE_TO_SECURITY_REASONS"
        );
        assert_eq!(unknown["recipientAccountId"], "999999999999");
    }
}

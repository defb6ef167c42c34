//! Console sessions: a random token in an `HttpOnly`, `SameSite=Strict` cookie (`Secure`
//! over TLS) names a signed-in caller until the session expires or is signed out; each
//! session has its own CSRF token that every state-changing form carries. Sessions live in
//! memory: a restart signs everyone out.

use crate::form::Fields;
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, StatusCode};
use opentrail_http::auth::Caller;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

pub const SESSION_COOKIE: &str = "opentrail_console";
/// The sign-in form's CSRF token (double-submitted: cookie and form field).
pub const SIGNIN_COOKIE: &str = "opentrail_console_signin";

#[derive(Clone)]
pub struct Session {
    pub caller: Caller,
    pub csrf: String,
    expires: Instant,
}

impl Session {
    /// The principal as the navigation shows it.
    pub fn display_name(&self) -> String {
        if self.caller.is_root {
            "root".to_owned()
        } else {
            self.caller.user_name.clone()
        }
    }

    /// Whether `fields` carries this session's CSRF token.
    pub fn csrf_ok(&self, fields: &Fields) -> bool {
        fields
            .get("csrf")
            .is_some_and(|token| same_secret(token, &self.csrf))
    }
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// 244 random bits from the operating system's generator (two v4 UUIDs), as hex.
pub fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

pub struct Sessions {
    ttl: Duration,
    live: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            live: Mutex::new(HashMap::new()),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Starts a session for `caller`; returns its token.
    pub fn start(&self, caller: Caller) -> String {
        let token = random_token();
        let now = Instant::now();
        let session = Session {
            caller,
            csrf: random_token(),
            expires: now + self.ttl,
        };
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|_, s| s.expires > now);
        live.insert(token.clone(), session);
        token
    }

    pub fn get(&self, token: &str) -> Option<Session> {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let session = live.get(token)?;
        if session.expires <= Instant::now() {
            live.remove(token);
            return None;
        }
        Some(session.clone())
    }

    pub fn end(&self, token: &str) {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(token);
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value scoped to the console.
pub fn set_cookie(name: &str, value: &str, max_age: Duration, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/console; Max-Age={}; HttpOnly; SameSite=Strict{}",
        max_age.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The request's session, or the answer for a request without one: pages redirect to
/// the sign-in page, form posts are refused with 401.
pub fn require(
    console: &crate::Console,
    headers: &HeaderMap,
    is_page: bool,
) -> Result<(String, Session), Box<Response>> {
    let found = cookie(headers, SESSION_COOKIE)
        .and_then(|token| console.sessions.get(token).map(|s| (token.to_owned(), s)));
    match found {
        Some(found) => Ok(found),
        None if is_page => Err(Box::new(Redirect::to("/console/signin").into_response())),
        None => Err(Box::new(
            (
                StatusCode::UNAUTHORIZED,
                "sign in to the console first (no session, or it expired)",
            )
                .into_response(),
        )),
    }
}

/// A signed-in form post: the session and a matching CSRF token, or the refusal.
pub fn require_post(
    console: &crate::Console,
    headers: &HeaderMap,
    fields: &Fields,
) -> Result<(String, Session), Box<Response>> {
    let (token, session) = require(console, headers, false)?;
    if !session.csrf_ok(fields) {
        return Err(Box::new(csrf_refused()));
    }
    Ok((token, session))
}

pub fn csrf_refused() -> Response {
    (
        StatusCode::FORBIDDEN,
        "the form's CSRF token is missing or does not match this session; reload the page and try again",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller() -> Caller {
        Caller {
            account: opentrail_model::AccountId::parse("123456789012").unwrap(),
            region: opentrail_model::Region::parse("us-east-1").unwrap(),
            access_key_id: "AKIAEXAMPLE".into(),
            user_name: "alice".into(),
            is_root: false,
            ingest_any_account: false,
            forward_audit: false,
        }
    }

    #[test]
    fn sessions_expire_and_end() {
        let sessions = Sessions::new(Duration::from_secs(3600));
        let token = sessions.start(caller());
        let session = sessions.get(&token).unwrap();
        assert_eq!(session.display_name(), "alice");
        assert!(sessions.get("other").is_none());
        sessions.end(&token);
        assert!(sessions.get(&token).is_none());
        let expired = Sessions::new(Duration::ZERO);
        let token = expired.start(caller());
        assert!(expired.get(&token).is_none());
    }

    #[test]
    fn csrf_must_match() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let session = sessions.get(&sessions.start(caller())).unwrap();
        assert!(session.csrf_ok(&Fields::parse(&format!("csrf={}", session.csrf))));
        assert!(!session.csrf_ok(&Fields::parse("csrf=nope")));
        assert!(!session.csrf_ok(&Fields::parse("")));
    }

    #[test]
    fn cookies_are_found_and_flagged() {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::COOKIE,
            "a=1; opentrail_console=tok".parse().unwrap(),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("tok"));
        let set = set_cookie("n", "v", Duration::from_secs(5), true);
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.ends_with("Secure")
        );
    }
}

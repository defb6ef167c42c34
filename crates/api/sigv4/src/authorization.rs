//! Parsing of the `Authorization: AWS4-HMAC-SHA256 ...` header and of the
//! request time (`X-Amz-Date` or `Date`), with AWS's error texts.

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::canonical::{ALGORITHM, SCOPE_TERMINATOR, X_AMZ_DATE};
use crate::error::AuthError;

/// A received request, exactly as it arrived.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    pub method: &'a http::Method,
    /// The raw path and raw query as received (still percent-encoded).
    pub uri: &'a http::Uri,
    pub headers: &'a http::HeaderMap,
    pub body: &'a [u8],
}

/// The parsed `Authorization` header of a header-signed SigV4 request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub access_key_id: String,
    /// `YYYYMMDD` of the credential scope.
    pub date: String,
    pub region: String,
    pub service: String,
    /// As listed in `SignedHeaders`, in order.
    pub signed_headers: Vec<String>,
    pub signature: String,
    /// From `X-Amz-Date`, or `Date` when there is no `X-Amz-Date`.
    pub request_time: DateTime<Utc>,
}

/// Parses the `Authorization` header (only `AWS4-HMAC-SHA256`).
///
/// No header at all gives [`AuthError::MissingAuthenticationToken`]; a header
/// that is not a complete SigV4 authorization gives
/// [`AuthError::IncompleteSignature`]. Nothing is verified here.
pub fn parse_authorization(req: &RequestParts) -> Result<Authorization, AuthError> {
    let header = req
        .headers
        .get(http::header::AUTHORIZATION)
        .ok_or(AuthError::MissingAuthenticationToken)?;
    let header = String::from_utf8_lossy(header.as_bytes());
    let date_header = request_date_header(req.headers);
    let has_date = date_header.is_some();

    let mut tokens = header
        .split(|c: char| c == ',' || c.is_ascii_whitespace())
        .filter(|token| !token.is_empty());
    let is_sigv4 = tokens.next() == Some(ALGORITHM);

    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    if is_sigv4 {
        for token in tokens {
            let Some((name, value)) = token.split_once('=') else {
                return Err(AuthError::IncompleteSignature(format!(
                    "'{token}' not a valid key=value pair (missing equal-sign) in Authorization header: '{header}'."
                )));
            };
            match name {
                "Credential" => credential = Some(value),
                "SignedHeaders" => signed_headers = Some(value),
                "Signature" => signature = Some(value),
                _ => {}
            }
        }
    }

    let (Some(credential), Some(signed_headers), Some(signature), Some(date_header)) =
        (credential, signed_headers, signature, date_header)
    else {
        return Err(missing_parameters(
            credential.is_none(),
            signature.is_none(),
            signed_headers.is_none(),
            !has_date,
            &header,
        ));
    };

    let scope = parse_credential(credential)?;
    let request_time = parse_request_time(date_header)?;
    Ok(Authorization {
        access_key_id: scope.access_key_id.to_owned(),
        date: scope.date.to_owned(),
        region: scope.region.to_owned(),
        service: scope.service.to_owned(),
        signed_headers: signed_headers
            .split(';')
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .collect(),
        signature: signature.to_owned(),
        request_time,
    })
}

fn missing_parameters(
    credential: bool,
    signature: bool,
    signed_headers: bool,
    date: bool,
    header: &str,
) -> AuthError {
    let mut message = String::new();
    for (missing, name) in [
        (credential, "Credential"),
        (signature, "Signature"),
        (signed_headers, "SignedHeaders"),
    ] {
        if missing {
            message.push_str(&format!(
                "Authorization header requires '{name}' parameter. "
            ));
        }
    }
    if date {
        message.push_str(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ",
        );
    }
    message.push_str(&format!("Authorization={header}"));
    AuthError::IncompleteSignature(message)
}

struct CredentialScope<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
}

fn parse_credential(credential: &str) -> Result<CredentialScope<'_>, AuthError> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = parts[..] else {
        return Err(AuthError::IncompleteSignature(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
        )));
    };
    if terminator != SCOPE_TERMINATOR {
        return Err(AuthError::IncompleteSignature(format!(
            "Credential should be scoped with a valid terminator: '{SCOPE_TERMINATOR}', not '{terminator}'. "
        )));
    }
    Ok(CredentialScope {
        access_key_id,
        date,
        region,
        service,
    })
}

/// Which header dates the request: `X-Amz-Date` wins over `Date`.
enum DateHeader {
    AmzDate(String),
    HttpDate(String),
}

fn request_date_header(headers: &http::HeaderMap) -> Option<DateHeader> {
    let text =
        |value: &http::HeaderValue| String::from_utf8_lossy(value.as_bytes()).trim().to_owned();
    if let Some(value) = headers.get(X_AMZ_DATE) {
        return Some(DateHeader::AmzDate(text(value)));
    }
    headers
        .get(http::header::DATE)
        .map(|value| DateHeader::HttpDate(text(value)))
}

fn parse_request_time(header: DateHeader) -> Result<DateTime<Utc>, AuthError> {
    let parsed = match &header {
        DateHeader::AmzDate(value) => parse_amz_date(value),
        DateHeader::HttpDate(value) => DateTime::parse_from_rfc2822(value)
            .ok()
            .map(|time| time.with_timezone(&Utc)),
    };
    parsed.ok_or_else(|| {
        let (DateHeader::AmzDate(value) | DateHeader::HttpDate(value)) = header;
        AuthError::IncompleteSignature(format!(
            "Date must be in ISO-8601 'basic format'. Got '{value}'. See http://en.wikipedia.org/wiki/ISO_8601"
        ))
    })
}

/// Parses `YYYYMMDDTHHMMSSZ` strictly.
pub fn parse_amz_date(value: &str) -> Option<DateTime<Utc>> {
    let well_formed = value.len() == 16
        && value.bytes().enumerate().all(|(index, byte)| match index {
            8 => byte == b'T',
            15 => byte == b'Z',
            _ => byte.is_ascii_digit(),
        });
    if !well_formed {
        return None;
    }
    NaiveDateTime::parse_from_str(value, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|naive| naive.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(
        authorization: Option<&str>,
        date: Option<(&str, &str)>,
    ) -> Result<Authorization, AuthError> {
        let mut headers = http::HeaderMap::new();
        if let Some(value) = authorization {
            headers.insert("authorization", value.parse().unwrap());
        }
        if let Some((name, value)) = date {
            headers.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        let method = http::Method::POST;
        let uri = http::Uri::from_static("/");
        parse_authorization(&RequestParts {
            method: &method,
            uri: &uri,
            headers: &headers,
            body: b"",
        })
    }

    const AMZ_DATE: Option<(&str, &str)> = Some(("x-amz-date", "20150830T123600Z"));

    #[test]
    fn parses_a_complete_header() {
        let auth = parse(
            Some("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/cloudtrail/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc"),
            AMZ_DATE,
        )
        .unwrap();
        assert_eq!(auth.access_key_id, "AKIDEXAMPLE");
        assert_eq!(auth.date, "20150830");
        assert_eq!(auth.region, "us-east-1");
        assert_eq!(auth.service, "cloudtrail");
        assert_eq!(auth.signed_headers, ["host", "x-amz-date"]);
        assert_eq!(auth.signature, "abc");
        assert_eq!(auth.request_time.to_rfc3339(), "2015-08-30T12:36:00+00:00");
    }

    #[test]
    fn accepts_commas_without_spaces_and_the_date_header() {
        let auth = parse(
            Some("AWS4-HMAC-SHA256 Credential=K/20150830/r/s/aws4_request,SignedHeaders=host,Signature=00"),
            Some(("date", "Sun, 30 Aug 2015 12:36:00 GMT")),
        )
        .unwrap();
        assert_eq!(auth.request_time.to_rfc3339(), "2015-08-30T12:36:00+00:00");
    }

    #[test]
    fn no_header_is_a_missing_token() {
        assert_eq!(
            parse(None, AMZ_DATE),
            Err(AuthError::MissingAuthenticationToken)
        );
    }

    #[test]
    fn other_schemes_miss_every_parameter() {
        let err = parse(Some("Basic dXNlcjpwYXNz"), None).unwrap_err();
        assert_eq!(
            err,
            AuthError::IncompleteSignature(
                "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=Basic dXNlcjpwYXNz".into()
            )
        );
    }

    #[test]
    fn names_only_the_missing_parameters() {
        let err = parse(Some("AWS4-HMAC-SHA256 Credential=ABCDEF"), AMZ_DATE).unwrap_err();
        assert_eq!(
            err.message(),
            "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization=AWS4-HMAC-SHA256 Credential=ABCDEF"
        );
    }

    #[test]
    fn rejects_a_token_without_equal_sign() {
        let header = "AWS4-HMAC-SHA256 Credential= key/20181128/eu-central-1/cloud9/aws4_request, SignedHeaders=host, Signature=x";
        let err = parse(Some(header), AMZ_DATE).unwrap_err();
        assert_eq!(
            err.message(),
            format!("'key/20181128/eu-central-1/cloud9/aws4_request' not a valid key=value pair (missing equal-sign) in Authorization header: '{header}'.")
        );
    }

    #[test]
    fn rejects_malformed_credentials() {
        let short = parse(
            Some("AWS4-HMAC-SHA256 Credential=K/20150830/r/aws4_request, SignedHeaders=host, Signature=x"),
            AMZ_DATE,
        );
        assert!(
            matches!(short, Err(AuthError::IncompleteSignature(m)) if m.contains("exactly 5 slash-delimited"))
        );
        let terminator = parse(
            Some("AWS4-HMAC-SHA256 Credential=K/20150830/r/s/aws5_request, SignedHeaders=host, Signature=x"),
            AMZ_DATE,
        );
        assert_eq!(
            terminator,
            Err(AuthError::IncompleteSignature(
                "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. ".into()
            ))
        );
    }

    #[test]
    fn rejects_a_malformed_amz_date() {
        let err = parse(
            Some("AWS4-HMAC-SHA256 Credential=K/20150830/r/s/aws4_request, SignedHeaders=host, Signature=x"),
            Some(("x-amz-date", "2015-08-30T12:36:00Z")),
        )
        .unwrap_err();
        assert_eq!(err.code(), "IncompleteSignatureException");
        assert!(err.message().contains("Got '2015-08-30T12:36:00Z'"));
    }

    #[test]
    fn amz_date_is_strict() {
        assert!(parse_amz_date("20150830T123600Z").is_some());
        assert!(parse_amz_date("20150830T123600").is_none());
        assert!(parse_amz_date("20151330T123600Z").is_none());
        assert!(parse_amz_date("2015083OT123600Z").is_none());
        assert!(parse_amz_date("+0150830T123600Z").is_none());
    }
}

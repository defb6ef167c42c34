//! Helpers shared by the integration tests: reading raw HTTP/1.1 requests
//! (test vectors and captured client requests) into `http` types.

#![allow(dead_code)] // each test binary uses a different subset

pub mod tamper;

use opentrail_sigv4::RequestParts;

#[derive(Clone)]
pub struct RawRequest {
    pub method: http::Method,
    pub uri: http::Uri,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl RawRequest {
    pub fn parts(&self) -> RequestParts<'_> {
        RequestParts {
            method: &self.method,
            uri: &self.uri,
            headers: &self.headers,
            body: &self.body,
        }
    }
}

/// Percent-encodes the bytes a request target cannot carry (space, controls,
/// non-ASCII): the test suite writes some paths unencoded, as a client would
/// hand them to its HTTP library, which encodes them before sending.
fn encode_request_target(target: &str) -> String {
    let mut out = String::new();
    for &byte in target.as_bytes() {
        if byte <= b' ' || byte >= 0x7f {
            out.push_str(&format!("%{byte:02X}"));
        } else {
            out.push(char::from(byte));
        }
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Parses `METHOD target HTTP/1.1`, header lines (`Name:value`, folded
/// continuation lines joined with a space) and the body after the first
/// empty line. Accepts `\r\n` and `\n` line ends.
pub fn parse_raw_request(raw: &[u8]) -> RawRequest {
    let (head, body) = match (find(raw, b"\r\n\r\n"), find(raw, b"\n\n")) {
        (Some(crlf), Some(lf)) if lf < crlf => (&raw[..lf], &raw[lf + 2..]),
        (Some(crlf), _) => (&raw[..crlf], &raw[crlf + 4..]),
        (None, Some(lf)) => (&raw[..lf], &raw[lf + 2..]),
        (None, None) => (raw, &raw[raw.len()..]),
    };
    let head = std::str::from_utf8(head).expect("request head is UTF-8");
    let mut lines = head
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line));

    let request_line = lines.next().expect("request line");
    let (method, rest) = request_line.split_once(' ').expect("method and target");
    let target = match rest.rfind(" HTTP/") {
        Some(end) => &rest[..end],
        None => rest,
    };

    let mut fields: Vec<(String, String)> = Vec::new();
    for line in lines.filter(|line| !line.is_empty()) {
        if line.starts_with([' ', '\t']) {
            let (_, value) = fields.last_mut().expect("continuation after a header");
            value.push(' ');
            value.push_str(line.trim());
            continue;
        }
        let (name, value) = line.split_once(':').expect("header line has a colon");
        fields.push((name.to_owned(), value.trim().to_owned()));
    }
    let mut headers = http::HeaderMap::new();
    for (name, value) in fields {
        headers.append(
            http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            http::HeaderValue::from_str(&value).expect("header value"),
        );
    }

    RawRequest {
        method: method.parse().expect("method"),
        uri: encode_request_target(target)
            .parse()
            .expect("request target"),
        headers,
        body: body.to_vec(),
    }
}

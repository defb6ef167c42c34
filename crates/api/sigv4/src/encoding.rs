//! URI encoding rules of SigV4: RFC 3986 percent-encoding, the canonical URI
//! path (normalised and double-encoded except for S3) and the canonical query.

/// How the request path becomes the canonical URI.
///
/// Every AWS service except S3 normalises the path (RFC 3986 dot-segment
/// removal, empty segments collapsed) and percent-encodes the path as it was
/// sent on the wire once more ("double encoding"). S3 uses the wire path as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathOptions {
    pub normalize: bool,
    pub double_encode: bool,
}

impl PathOptions {
    /// What every service other than S3 expects.
    pub const STANDARD: PathOptions = PathOptions {
        normalize: true,
        double_encode: true,
    };
    /// What S3 expects: the path exactly as sent.
    pub const S3: PathOptions = PathOptions {
        normalize: false,
        double_encode: false,
    };

    /// The options a service's signatures are computed with.
    pub fn for_service(service: &str) -> PathOptions {
        if service == "s3" {
            PathOptions::S3
        } else {
            PathOptions::STANDARD
        }
    }
}

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~')
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Percent-encodes every byte except the RFC 3986 unreserved characters
/// (and `/` when `keep_slash`), with upper-case hex digits.
pub fn uri_encode(bytes: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &byte in bytes {
        if is_unreserved(byte) || (keep_slash && byte == b'/') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX_UPPER[usize::from(byte >> 4)]));
            out.push(char::from(HEX_UPPER[usize::from(byte & 0x0f)]));
        }
    }
    out
}

/// `name=value` pairs joined with `&`, both sides encoded as [`uri_encode`] does: a query
/// string, or an `application/x-www-form-urlencoded` body as the AWS SDKs send one.
pub fn encode_pairs(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| {
            format!(
                "{}={}",
                uri_encode(name.as_bytes(), false),
                uri_encode(value.as_bytes(), false)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes; anything else, including a malformed escape and
/// `+`, is kept literally.
pub fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = match bytes.get(index..index + 3) {
            Some([b'%', high, low]) => hex_value(*high).zip(hex_value(*low)),
            _ => None,
        };
        match escaped {
            Some((high, low)) => {
                out.push(high << 4 | low);
                index += 3;
            }
            None => {
                out.push(bytes[index]);
                index += 1;
            }
        }
    }
    out
}

/// Removes `.` and `..` segments and collapses empty segments, keeping a
/// trailing slash (RFC 3986 section 5.2.4 as AWS applies it).
pub fn normalize_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut normalized = String::with_capacity(path.len() + 1);
    for segment in &segments {
        normalized.push('/');
        normalized.push_str(segment);
    }
    let ends_with_slash = ["/", "/.", "/.."].iter().any(|end| path.ends_with(end));
    if normalized.is_empty() || ends_with_slash {
        normalized.push('/');
    }
    normalized
}

/// The canonical URI of a request whose raw (wire) path is `raw_path`.
pub fn canonical_uri(raw_path: &str, options: PathOptions) -> String {
    let path = if raw_path.is_empty() { "/" } else { raw_path };
    let path = if options.normalize {
        normalize_path(path)
    } else {
        path.to_owned()
    };
    if options.double_encode {
        uri_encode(path.as_bytes(), true)
    } else {
        path
    }
}

/// The canonical query string of a raw query (without the leading `?`):
/// every name and value decoded, re-encoded per RFC 3986, sorted by encoded
/// name then encoded value; a name without `=` gets an empty value.
pub fn canonical_query(raw_query: &str) -> String {
    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                uri_encode(&percent_decode(name), false),
                uri_encode(&percent_decode(value), false),
            )
        })
        .collect();
    pairs.sort();
    let mut out = String::with_capacity(raw_query.len());
    for (index, (name, value)) in pairs.iter().enumerate() {
        if index > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_everything_but_unreserved() {
        assert_eq!(uri_encode(b"a-_.~Z9", false), "a-_.~Z9");
        assert_eq!(uri_encode(b"a b/c+%", false), "a%20b%2Fc%2B%25");
        assert_eq!(uri_encode(b"a b/c", true), "a%20b/c");
        assert_eq!(uri_encode("ሴ".as_bytes(), false), "%E1%88%B4");
    }

    #[test]
    fn decodes_only_valid_escapes() {
        assert_eq!(percent_decode("a%20b+%zz%4"), b"a b+%zz%4");
        assert_eq!(percent_decode("%e1%88%B4"), "ሴ".as_bytes());
    }

    #[test]
    fn normalizes_like_the_test_suite() {
        assert_eq!(normalize_path("/example/.."), "/");
        assert_eq!(normalize_path("/example1/example2/../.."), "/");
        assert_eq!(normalize_path("/./"), "/");
        assert_eq!(normalize_path("//"), "/");
        assert_eq!(normalize_path("/./example"), "/example");
        assert_eq!(normalize_path("//example//"), "/example/");
        assert_eq!(normalize_path("/a/b/../c/."), "/a/c/");
        assert_eq!(normalize_path("/../x"), "/x");
    }

    #[test]
    fn double_encodes_the_wire_path() {
        assert_eq!(
            canonical_uri(
                "/test/@connections/JBDvjfGEIAMCERw%3D",
                PathOptions::STANDARD
            ),
            "/test/%40connections/JBDvjfGEIAMCERw%253D"
        );
        assert_eq!(canonical_uri("/a%20b//", PathOptions::S3), "/a%20b//");
        assert_eq!(canonical_uri("", PathOptions::S3), "/");
    }

    #[test]
    fn sorts_encoded_query_pairs() {
        assert_eq!(
            canonical_query("Param2=value2&Param1=value1&a&b=&=c"),
            "=c&Param1=value1&Param2=value2&a=&b="
        );
        assert_eq!(
            canonical_query("prefix=a%2Fb%20c&list-type=2&x=y+z"),
            "list-type=2&prefix=a%2Fb%20c&x=y%2Bz"
        );
        assert_eq!(canonical_query("k=2&k=1"), "k=1&k=2");
        assert_eq!(canonical_query(""), "");
    }
}

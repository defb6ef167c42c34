//! `application/x-www-form-urlencoded` bodies and query strings as ordered pairs (a
//! checkbox list repeats its name).

use percent_encoding::percent_decode_str;

pub struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn parse(text: &str) -> Self {
        let decode = |part: &str| {
            let spaced = part.replace('+', " ");
            percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
        };
        Self(
            text.split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| match pair.split_once('=') {
                    Some((name, value)) => (decode(name), decode(value)),
                    None => (decode(pair), String::new()),
                })
                .collect(),
        )
    }

    pub fn from_query(uri: &http::Uri) -> Self {
        Self::parse(uri.query().unwrap_or(""))
    }

    /// The first value of `name`, if any.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `name`, trimmed, when not empty.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.get(name).map(str::trim).filter(|v| !v.is_empty())
    }

    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn checked(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// What a query-string value keeps unencoded: RFC 3986's unreserved characters.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes a query-string value.
pub fn encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, QUERY_VALUE).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_names_and_encodings() {
        let fields = Fields::parse("a=1&col=x+y&col=%C3%A9%26&flag&empty=");
        assert_eq!(fields.get("a"), Some("1"));
        assert_eq!(fields.all("col").collect::<Vec<_>>(), ["x y", "é&"]);
        assert!(fields.checked("flag"));
        assert_eq!(fields.text("empty"), None);
        assert_eq!(fields.get("missing"), None);
        assert_eq!(
            Fields::parse(&format!("v={}", encode("a b&c=é"))).get("v"),
            Some("a b&c=é")
        );
    }
}

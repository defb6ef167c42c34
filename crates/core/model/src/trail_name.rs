//! Trail names, with CloudTrail's naming rules and its error messages.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TrailName(String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailNameError(pub String);

impl fmt::Display for TrailNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const MIN_LEN: usize = 3;
const MAX_LEN: usize = 128;

fn is_punctuation(c: char) -> bool {
    matches!(c, '.' | '_' | '-')
}

fn looks_like_ipv4(value: &str) -> bool {
    let parts: Vec<&str> = value.split('.').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
}

impl TrailName {
    /// Applies the rules of the CreateTrail documentation: 3-128 characters of letters,
    /// digits, `.`, `_` and `-`; starts and ends with a letter or digit; no adjacent
    /// punctuation; not formatted as an IP address.
    pub fn parse(value: &str) -> Result<Self, TrailNameError> {
        let len = value.chars().count();
        if len < MIN_LEN {
            return Err(TrailNameError(format!(
                "Trail name too short. Minimum allowed length: {MIN_LEN} characters. Specified name length: {len} characters."
            )));
        }
        if len > MAX_LEN {
            return Err(TrailNameError(format!(
                "Trail name too long. Maximum allowed length: {MAX_LEN} characters. Specified name length: {len} characters."
            )));
        }
        if !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || is_punctuation(c))
        {
            return Err(TrailNameError(format!(
                "Trail name or ARN can only contain uppercase letters, lowercase letters, numbers, periods (.), hyphens (-), and underscores (_). Specified name: {value}"
            )));
        }
        if !value.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(TrailNameError(format!(
                "Trail name must starts with a letter or number. Specified name: {value}"
            )));
        }
        if !value.ends_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(TrailNameError(format!(
                "Trail name must ends with a letter or number. Specified name: {value}"
            )));
        }
        let chars: Vec<char> = value.chars().collect();
        if chars
            .windows(2)
            .any(|w| is_punctuation(w[0]) && is_punctuation(w[1]))
        {
            return Err(TrailNameError(format!(
                "Trail name cannot have adjacent periods, underscores or dashes. Specified name: {value}"
            )));
        }
        if looks_like_ipv4(value) {
            return Err(TrailNameError(format!(
                "Trail name cannot be formatted as an IP address. Specified name: {value}"
            )));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TrailName {
    type Error = TrailNameError;
    fn try_from(value: String) -> Result<Self, TrailNameError> {
        Self::parse(&value)
    }
}

impl From<TrailName> for String {
    fn from(value: TrailName) -> String {
        value.0
    }
}

impl fmt::Display for TrailName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn documented_examples() {
        for ok in ["abc", "my-trail", "My_Trail.2024", "a1b", "1.2.3"] {
            assert!(TrailName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "-abc",
            "abc-",
            "my-_namespace",
            "my--namespace",
            "my..trail",
            "192.168.5.4",
            "has space",
            "slash/name",
            &"a".repeat(129),
        ] {
            assert!(TrailName::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn accepted_names_obey_every_rule(name in "[a-zA-Z0-9._-]{0,140}") {
            if let Ok(parsed) = TrailName::parse(&name) {
                let s = parsed.as_str();
                prop_assert!((3..=128).contains(&s.len()));
                prop_assert!(s.starts_with(|c: char| c.is_ascii_alphanumeric()));
                prop_assert!(s.ends_with(|c: char| c.is_ascii_alphanumeric()));
                prop_assert!(!s.contains("..") && !s.contains("--") && !s.contains("__"));
                prop_assert!(!looks_like_ipv4(s));
            }
        }

        #[test]
        fn never_panics(name in "\\PC{0,200}") {
            let _ = TrailName::parse(&name);
        }
    }
}

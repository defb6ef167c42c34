//! Object key rules both stores enforce on writes, so a key accepted by one
//! backend is accepted by the other: every key must also be a file path.

const MAX_KEY_BYTES: usize = 1024;

/// 1 to 1024 bytes of `/`-separated segments, none empty, `.` or `..`, and
/// no NUL. CloudTrail's log and digest keys always qualify.
pub(crate) fn validate_object_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(format!("keys must be 1 to {MAX_KEY_BYTES} bytes long"));
    }
    if key.contains('\0') {
        return Err("keys must not contain NUL".to_owned());
    }
    for segment in key.split('/') {
        match segment {
            "" => {
                return Err(
                    "keys must not have empty segments (leading, trailing or double '/')"
                        .to_owned(),
                )
            }
            "." | ".." => return Err("keys must not have '.' or '..' segments".to_owned()),
            _ => {}
        }
    }
    Ok(())
}

pub(crate) fn invalid_key(key: &str, why: &str) -> crate::StoreError {
    crate::StoreError::Other(format!("invalid object key {key:?}: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_cloudtrail_keys() {
        let key = "prefix/AWSLogs/123456789012/CloudTrail/us-east-1/2024/05/17/123456789012_CloudTrail_us-east-1_20240517T0930Z_abcdefABCDEF0123.json.gz";
        assert_eq!(validate_object_key(key), Ok(()));
        assert_eq!(validate_object_key("a b/ü/.hidden/x..y"), Ok(()));
    }

    #[test]
    fn rejects_keys_that_are_not_paths() {
        for key in [
            "",
            "..",
            "../x",
            "a/../../x",
            "a/..",
            "./a",
            "a/./b",
            "/a",
            "a/",
            "a//b",
            "a\0b",
        ] {
            assert!(validate_object_key(key).is_err(), "{key:?}");
        }
        assert!(validate_object_key(&"k".repeat(1025)).is_err());
    }
}

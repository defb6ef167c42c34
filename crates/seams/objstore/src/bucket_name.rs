//! S3 bucket naming rules (general purpose buckets).

/// Checks an S3 bucket name: 3 to 63 characters of lower-case letters,
/// digits, `.` and `-`; starts and ends with a letter or digit; no `..`; not
/// formatted as an IPv4 address. The error says which rule is broken.
pub fn validate_bucket_name(name: &str) -> Result<(), String> {
    if !(3..=63).contains(&name.len()) {
        return Err("bucket names must be between 3 (min) and 63 (max) characters long".to_owned());
    }
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-';
    if !name.bytes().all(allowed) {
        return Err(
            "bucket names can consist only of lowercase letters, numbers, periods (.), and hyphens (-)".to_owned(),
        );
    }
    let letter_or_digit =
        |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !letter_or_digit(name.bytes().next()) || !letter_or_digit(name.bytes().last()) {
        return Err("bucket names must begin and end with a letter or number".to_owned());
    }
    if name.contains("..") {
        return Err("bucket names must not contain two adjacent periods".to_owned());
    }
    if is_formatted_as_ipv4(name) {
        return Err(
            "bucket names must not be formatted as an IP address (for example, 192.168.5.4)"
                .to_owned(),
        );
    }
    Ok(())
}

fn is_formatted_as_ipv4(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|part| (1..=3).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_names() {
        for name in [
            "abc",
            "my-trail-bucket",
            "logs.example.com",
            "a1b",
            "123",
            &"a".repeat(63),
            "1.2.3.4.5",
        ] {
            assert_eq!(validate_bucket_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn rejects_invalid_names() {
        for name in [
            "ab",
            &"a".repeat(64),
            "My-Bucket",
            "bucket_name",
            "bucket name",
            "-bucket",
            "bucket-",
            ".bucket",
            "bucket.",
            "my..bucket",
            "192.168.5.4",
            "1.2.3.04",
            "bücket",
            "",
        ] {
            assert!(validate_bucket_name(name).is_err(), "{name}");
        }
    }

    #[test]
    fn names_the_broken_rule() {
        assert_eq!(
            validate_bucket_name("192.168.5.4"),
            Err(
                "bucket names must not be formatted as an IP address (for example, 192.168.5.4)"
                    .to_owned()
            )
        );
        assert!(validate_bucket_name("UPPER")
            .unwrap_err()
            .contains("lowercase letters"));
    }
}

//! `eventVersion`: CloudTrail's record format version, and the minor version each field
//! OpenTrail requires or derives first appeared in (the "Since" of AWS's record reference).

/// `eventID` is in every record since eventVersion 1.01.
pub(crate) const EVENT_ID_SINCE: u32 = 1;

/// `eventType` is in every record since eventVersion 1.02 (as is `recipientAccountId`,
/// which the reference lists as optional and OpenTrail derives when absent).
pub(crate) const EVENT_TYPE_SINCE: u32 = 2;

/// The minor version of `version` when it is `1.<minor>`, CloudTrail's major version 1
/// with a decimal minor version of one to four digits: `1.0` (and `1.00`) is 0, `1.01`
/// is 1, `1.11` is 11. Later minor versions only add fields, so any is accepted.
pub(crate) fn minor_version(version: &str) -> Option<u32> {
    let minor = version.strip_prefix("1.")?;
    if !(1..=4).contains(&minor.len()) || !minor.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    minor.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minor_versions() {
        for (good, minor) in [
            ("1.0", 0),
            ("1.00", 0),
            ("1.01", 1),
            ("1.02", 2),
            ("1.05", 5),
            ("1.08", 8),
            ("1.11", 11),
            ("1.12", 12),
        ] {
            assert_eq!(minor_version(good), Some(minor), "{good}");
        }
        for bad in [
            "", "1", "1.", "2.0", "1.x", "01.08", "1.08 ", "1.12345", "1.+1", "1.-1",
        ] {
            assert_eq!(minor_version(bad), None, "{bad}");
        }
    }
}

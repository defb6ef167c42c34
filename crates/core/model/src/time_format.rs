//! The time formats of the CloudTrail wire protocol.

use chrono::{DateTime, SecondsFormat, Utc};

/// `2023-07-10T11:45:03Z`, as in `TimeLoggingStarted` and event records.
pub fn iso8601(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `2023-07-10T11:45:03.123Z`.
pub fn iso8601_millis(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Epoch seconds with millisecond precision, the JSON 1.1 encoding of `timestamp` shapes.
pub fn epoch_seconds(time: DateTime<Utc>) -> f64 {
    time.timestamp_millis() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn formats_match_the_wire() {
        let t = Utc.timestamp_millis_opt(1_688_989_503_123).unwrap();
        assert_eq!(iso8601(t), "2023-07-10T11:45:03Z");
        assert_eq!(iso8601_millis(t), "2023-07-10T11:45:03.123Z");
        assert_eq!(epoch_seconds(t), 1_688_989_503.123);
    }
}

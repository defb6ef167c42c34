//! The `eventTime` format: `YYYY-MM-DDTHH:MM:SSZ`, UTC, whole seconds.

use chrono::{DateTime, NaiveDate, Utc};

/// Parses `eventTime` in the only form CloudTrail writes it, e.g. `2023-07-10T11:45:03Z`.
/// Calendar-invalid values (`2023-02-30`, hour 24) are refused.
pub fn parse_event_time(text: &str) -> Option<DateTime<Utc>> {
    let bytes = text.as_bytes();
    let separators = [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'Z'),
    ];
    if bytes.len() != 20 || separators.iter().any(|&(at, byte)| bytes[at] != byte) {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<u32> {
        bytes[from..to].iter().try_fold(0u32, |value, &digit| {
            digit
                .is_ascii_digit()
                .then(|| value * 10 + u32::from(digit - b'0'))
        })
    };
    let year = i32::try_from(number(0, 4)?).ok()?;
    let date = NaiveDate::from_ymd_opt(year, number(5, 7)?, number(8, 10)?)?;
    let time = date.and_hms_opt(number(11, 13)?, number(14, 16)?, number(17, 19)?)?;
    Some(time.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn parses_cloudtrail_form_only() {
        let expected = Utc.with_ymd_and_hms(2023, 7, 10, 11, 45, 3).single();
        assert_eq!(parse_event_time("2023-07-10T11:45:03Z"), expected);
        for bad in [
            "2023-07-10T11:45:03",
            "2023-07-10T11:45:03.000Z",
            "2023-07-10 11:45:03Z",
            "2023-07-10T11:45:03+00:00",
            "2023-02-30T11:45:03Z",
            "2023-07-10T24:00:00Z",
            "2023-07-1xT11:45:03Z",
            "+023-07-10T11:45:03Z",
            "",
        ] {
            assert_eq!(parse_event_time(bad), None, "{bad}");
        }
    }
}

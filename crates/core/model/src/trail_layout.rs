//! Which kind of CloudTrail file an object key or path names, from the layout CloudTrail
//! writes: `[prefix/]AWSLogs/[o-org/]<account>/<dir>/<region>/YYYY/MM/DD/<account>_<dir>_<region>_...json.gz`.

/// The kind of a file found by `opentrail import`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A log file (`CloudTrail/`, `<account>_CloudTrail_...`): imported.
    Log,
    /// An Insights file (`CloudTrail-Insight/`, `<account>_CloudTrail-Insight_...`): imported.
    Insight,
    /// A digest file (`CloudTrail-Digest/`, `<account>_CloudTrail-Digest_...`): skipped,
    /// or checked against the log files with `--validate-digests`.
    Digest,
    /// A `.json` or `.json.gz` file outside the layout: a log file when it holds
    /// `{"Records":[...]}`, else skipped with a warning.
    Unknown,
    /// Anything else: skipped with a warning.
    Foreign,
}

/// The directory (and file name part) CloudTrail writes each kind under.
const KIND_DIRS: [(&str, FileKind); 3] = [
    ("CloudTrail", FileKind::Log),
    ("CloudTrail-Digest", FileKind::Digest),
    ("CloudTrail-Insight", FileKind::Insight),
];

fn kind_of_dir(dir: &str) -> Option<FileKind> {
    KIND_DIRS
        .iter()
        .find(|(name, _)| *name == dir)
        .map(|(_, kind)| *kind)
}

fn is_json(name: &str) -> bool {
    name.ends_with(".json") || name.ends_with(".json.gz")
}

fn is_account(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

fn is_digits(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| b.is_ascii_digit())
}

/// The kind a file name says: `<account>_<dir>_<region>_<rest>.json[.gz]`.
fn kind_of_name(name: &str) -> Option<FileKind> {
    if !is_json(name) {
        return None;
    }
    let mut parts = name.splitn(4, '_');
    let (account, dir, region, rest) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let region_like = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !is_account(account) || !region_like || rest.is_empty() {
        return None;
    }
    kind_of_dir(dir)
}

/// The kind the directories say, when the key lies in the layout:
/// `AWSLogs/[o-org/]<account>/<dir>/<region>/YYYY/MM/DD/<name>`.
fn kind_of_dirs(segments: &[&str]) -> Option<FileKind> {
    let start = segments.iter().rposition(|s| *s == "AWSLogs")?;
    let mut rest = &segments[start + 1..];
    if rest.first().is_some_and(|s| s.starts_with("o-")) {
        rest = &rest[1..];
    }
    let [account, dir, _region, year, month, day, _name] = rest else {
        return None;
    };
    let dated = is_digits(year, 4) && is_digits(month, 2) && is_digits(day, 2);
    if !is_account(account) || !dated {
        return None;
    }
    kind_of_dir(dir)
}

/// The kind of the file at `key` (an object key or a path with `/` separators). The file
/// name decides; when the key also lies in the `AWSLogs/` layout, its directory must
/// agree. Names outside both are sniffed (`.json`, `.json.gz`) or foreign.
pub fn classify(key: &str) -> FileKind {
    let segments: Vec<&str> = key.split(['/', '\\']).collect();
    let name = segments.last().copied().unwrap_or("");
    let fallback = if is_json(name) {
        FileKind::Unknown
    } else {
        FileKind::Foreign
    };
    let Some(by_name) = kind_of_name(name) else {
        return fallback;
    };
    match kind_of_dirs(&segments) {
        Some(by_dirs) if by_dirs != by_name => fallback,
        _ => by_name,
    }
}

/// The part of a key from its last `AWSLogs/` on: where a file lies in the layout, the
/// same in the bucket a digest names and in a copy of it under another prefix or directory.
pub fn layout_tail(key: &str) -> Option<&str> {
    let start = key.rfind("AWSLogs/")?;
    Some(&key[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_layouts_are_recognised_with_and_without_prefix_and_organization() {
        let cases = [
            ("AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/07/111122223333_CloudTrail_us-east-1_20240507T0903Z_abcdEFGH01234567.json.gz", FileKind::Log),
            ("team/logs/AWSLogs/o-abc123def4/111122223333/CloudTrail/eu-west-1/2024/05/07/111122223333_CloudTrail_eu-west-1_20240507T0903Z_abcdEFGH01234567.json.gz", FileKind::Log),
            ("AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/111122223333_CloudTrail-Digest_us-east-2_my-trail_us-east-2_20150817T150131Z.json.gz", FileKind::Digest),
            ("/tmp/x/AWSLogs/o-abc123def4/111122223333/CloudTrail-Insight/us-east-1/2024/05/07/111122223333_CloudTrail-Insight_us-east-1_20240507T0903Z_abcdEFGH01234567.json.gz", FileKind::Insight),
        ];
        for (key, kind) in cases {
            assert_eq!(classify(key), kind, "{key}");
        }
    }

    #[test]
    fn loose_files_are_known_by_their_name() {
        assert_eq!(
            classify("conformance/218007301253_CloudTrail_us-east-1_20230710T1145Z_7xgocspSowgK0Gto.json"),
            FileKind::Log
        );
        assert_eq!(
            classify(
                "111122223333_CloudTrail-Digest_us-east-2_t_us-east-2_20150817T150131Z.json.gz"
            ),
            FileKind::Digest
        );
        assert_eq!(
            classify("x/111122223333_CloudTrail-Insight_us-east-1_20240507T0903Z_abc.json.gz"),
            FileKind::Insight
        );
    }

    #[test]
    fn other_files_are_sniffed_or_foreign() {
        assert_eq!(
            classify("AWSLogs/111122223333/CloudTrail/README.txt"),
            FileKind::Foreign
        );
        assert_eq!(
            classify("AWSLogs/111122223333/CloudTrail/notes.json"),
            FileKind::Unknown
        );
        assert_eq!(classify("exported.json.gz"), FileKind::Unknown);
        assert_eq!(classify("AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/07/111122223333_CloudTrail_us-east-1_x.txt"), FileKind::Foreign);
        assert_eq!(classify("AWSLogs/111122223333/Config/us-east-1/2024/05/07/ConfigHistory/111122223333_Config_us-east-1_ConfigHistory_x.json.gz"), FileKind::Unknown);
        assert_eq!(classify("AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/05/07/111122223333_CloudTrail_us-east-1_20240507T0903Z_a.json.gz"), FileKind::Unknown, "a log name in the digest directory");
        assert_eq!(
            classify("123_CloudTrail_us-east-1_x.json"),
            FileKind::Unknown
        );
    }

    #[test]
    fn layout_tail_drops_the_prefix() {
        assert_eq!(
            layout_tail("bucket-prefix/AWSLogs/1/CloudTrail/x.json.gz"),
            Some("AWSLogs/1/CloudTrail/x.json.gz")
        );
        assert_eq!(layout_tail("loose.json"), None);
    }
}

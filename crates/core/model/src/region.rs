//! A region name as it appears in a SigV4 credential scope and in ARNs.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// The regions of the commercial `aws` partition.
pub const AWS_REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
];
/// The regions of the `aws-cn` partition.
pub const AWS_CN_REGIONS: &[&str] = &["cn-north-1", "cn-northwest-1"];
/// The regions of the `aws-us-gov` partition.
pub const AWS_US_GOV_REGIONS: &[&str] = &["us-gov-east-1", "us-gov-west-1"];

/// The regions a server accepts: those of the `aws`, `aws-cn` and `aws-us-gov` partitions
/// plus the operator's extra ones. Each region costs a signing key, a chain and a digest
/// per interval for ever, so names are not invented by whoever sends a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownRegions {
    extra: BTreeSet<String>,
}

impl KnownRegions {
    /// The partitions' regions plus `extra` (each must be a well-formed region name).
    pub fn with_extra<I, S>(extra: I) -> Result<Self, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut names = BTreeSet::new();
        for name in extra {
            let name = name.as_ref().trim();
            if name.is_empty() {
                continue;
            }
            names.insert(Region::parse(name)?.0);
        }
        Ok(Self { extra: names })
    }

    pub fn contains(&self, name: &str) -> bool {
        [AWS_REGIONS, AWS_CN_REGIONS, AWS_US_GOV_REGIONS]
            .iter()
            .any(|partition| partition.binary_search(&name).is_ok())
            || self.extra.contains(name)
    }

    /// The regions a multi-region trail whose home is `home` covers: every known region of
    /// its partition (`aws-cn`, `aws-us-gov`, otherwise `aws`), sorted. The extra regions
    /// count as `aws` (OpenTrail's ARNs all say `arn:aws`). `home` is always among them.
    pub fn multi_region_trail_regions(&self, home: &Region) -> Vec<Region> {
        let name = home.as_str();
        let mut names: BTreeSet<&str> = if AWS_CN_REGIONS.contains(&name) {
            AWS_CN_REGIONS.iter().copied().collect()
        } else if AWS_US_GOV_REGIONS.contains(&name) {
            AWS_US_GOV_REGIONS.iter().copied().collect()
        } else {
            AWS_REGIONS
                .iter()
                .copied()
                .chain(self.extra.iter().map(String::as_str))
                .collect()
        };
        names.insert(name);
        names.into_iter().map(|n| Region(n.to_owned())).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Region(String);

impl Region {
    /// Lowercase letters, digits and hyphens, starting with a letter (`us-east-1`, `eu-central-2`).
    pub fn parse(value: &str) -> Result<Self, String> {
        if Self::is_valid(value) {
            return Ok(Self(value.to_owned()));
        }
        Err(format!("invalid region name {value:?}"))
    }

    /// Whether [`Self::parse`] takes `value` (a region name's shape), without making one.
    pub fn is_valid(value: &str) -> bool {
        (1..=64).contains(&value.len())
            && value.starts_with(|c: char| c.is_ascii_lowercase())
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Region {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(&value)
    }
}

impl From<Region> for String {
    fn from(value: Region) -> String {
        value.0
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_lists_are_sorted_and_well_formed() {
        for partition in [AWS_REGIONS, AWS_CN_REGIONS, AWS_US_GOV_REGIONS] {
            assert!(partition.windows(2).all(|pair| pair[0] < pair[1]));
            assert!(partition.iter().all(|name| Region::parse(name).is_ok()));
        }
    }

    #[test]
    fn known_regions_are_the_partitions_and_the_extra_ones() {
        let known = KnownRegions::with_extra(["local-dev-1", " "]).unwrap();
        for name in [
            "us-east-1",
            "eu-west-1",
            "cn-north-1",
            "us-gov-west-1",
            "local-dev-1",
        ] {
            assert!(known.contains(name), "{name}");
        }
        for name in ["us-east-9", "zz-fake-1", "", "US-EAST-1"] {
            assert!(!known.contains(name), "{name}");
        }
        assert!(KnownRegions::with_extra(["Bad Region"]).is_err());
        assert!(!KnownRegions::default().contains("local-dev-1"));
    }

    #[test]
    fn a_multi_region_trail_covers_its_partition() {
        let known = KnownRegions::with_extra(["local-dev-1"]).unwrap();
        let names = |home: &str| -> Vec<String> {
            known
                .multi_region_trail_regions(&Region::parse(home).unwrap())
                .into_iter()
                .map(String::from)
                .collect()
        };
        let aws = names("us-east-1");
        assert_eq!(aws.len(), AWS_REGIONS.len() + 1);
        assert!(aws.iter().any(|n| n == "local-dev-1"));
        assert!(!aws
            .iter()
            .any(|n| n == "cn-north-1" || n == "us-gov-west-1"));
        assert_eq!(names("local-dev-1"), aws);
        assert_eq!(names("cn-northwest-1"), AWS_CN_REGIONS);
        assert_eq!(names("us-gov-east-1"), AWS_US_GOV_REGIONS);
        assert_eq!(
            KnownRegions::default()
                .multi_region_trail_regions(&Region::parse("zz-odd-1").unwrap())
                .len(),
            AWS_REGIONS.len() + 1
        );
    }
}

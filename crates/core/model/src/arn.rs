//! Amazon Resource Names, and the trail ARN in particular.

use crate::{AccountId, Region, TrailName};
use std::fmt;

/// `arn:<partition>:<service>:<region>:<account>:<resource>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arn {
    pub partition: String,
    pub service: String,
    pub region: String,
    pub account: String,
    pub resource: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArnError(pub String);

impl fmt::Display for ArnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Arn {
    pub fn parse(value: &str) -> Result<Self, ArnError> {
        let mut parts = value.splitn(6, ':');
        let (
            Some("arn"),
            Some(partition),
            Some(service),
            Some(region),
            Some(account),
            Some(resource),
        ) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        )
        else {
            return Err(ArnError(format!("{value} is not a valid ARN")));
        };
        if partition.is_empty() || service.is_empty() || resource.is_empty() {
            return Err(ArnError(format!("{value} is not a valid ARN")));
        }
        Ok(Self {
            partition: partition.to_owned(),
            service: service.to_owned(),
            region: region.to_owned(),
            account: account.to_owned(),
            resource: resource.to_owned(),
        })
    }
}

impl fmt::Display for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:{}:{}:{}:{}",
            self.partition, self.service, self.region, self.account, self.resource
        )
    }
}

/// `arn:aws:cloudtrail:<home region>:<account>:trail/<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TrailArn {
    pub region: Region,
    pub account: AccountId,
    pub name: TrailName,
}

impl TrailArn {
    pub fn new(region: Region, account: AccountId, name: TrailName) -> Self {
        Self {
            region,
            account,
            name,
        }
    }

    /// Parses a trail ARN; the error text says what is wrong with it.
    pub fn parse(value: &str) -> Result<Self, ArnError> {
        let invalid = |why: &str| {
            ArnError(format!(
                "Invalid trail ARN {value}: {why}. Expected arn:aws:cloudtrail:<region>:<account-id>:trail/<name>"
            ))
        };
        let arn = Arn::parse(value).map_err(|_| invalid("not an ARN"))?;
        if !arn.partition.starts_with("aws") {
            return Err(invalid("unknown partition"));
        }
        if arn.service != "cloudtrail" {
            return Err(invalid("the service must be cloudtrail"));
        }
        let region = Region::parse(&arn.region).map_err(|_| invalid("bad region"))?;
        let account = AccountId::parse(&arn.account).map_err(|_| invalid("bad account id"))?;
        let Some(name) = arn.resource.strip_prefix("trail/") else {
            return Err(invalid("the resource must be trail/<name>"));
        };
        let name = TrailName::parse(name).map_err(|e| invalid(&e.0))?;
        Ok(Self::new(region, account, name))
    }
}

impl fmt::Display for TrailArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:aws:cloudtrail:{}:{}:trail/{}",
            self.region, self.account, self.name
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trail_arn_round_trips() {
        let s = "arn:aws:cloudtrail:us-east-1:123456789012:trail/my-trail";
        let arn = TrailArn::parse(s).unwrap();
        assert_eq!(arn.name.as_str(), "my-trail");
        assert_eq!(arn.to_string(), s);
    }

    #[test]
    fn rejects_malformed_trail_arns() {
        for bad in [
            "arn:aws:cloudtrail:us-east-1:123456789012",
            "arn:aws:s3:us-east-1:123456789012:trail/x1x",
            "arn:aws:cloudtrail:us-east-1:1234:trail/abc",
            "arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/abc",
            "arn:aws:cloudtrail:us-east-1:123456789012:trail/a",
        ] {
            assert!(TrailArn::parse(bad).is_err(), "{bad}");
        }
    }
}

//! Borrowed, typed views of `userIdentity` and `resources`, read from an indexed record.

use std::fmt;

/// `userIdentity.type`: the kind of principal that made the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UserIdentityType<'a> {
    /// `IAMUser`
    IamUser,
    /// `AssumedRole`
    AssumedRole,
    /// `Root`
    Root,
    /// `AWSService`
    AwsService,
    /// `AWSAccount`
    AwsAccount,
    /// `FederatedUser`
    FederatedUser,
    /// `WebIdentityUser`
    WebIdentityUser,
    /// `IdentityCenterUser`
    IdentityCenterUser,
    /// `SAMLUser`
    SamlUser,
    /// `Directory`
    Directory,
    /// `Unknown`: CloudTrail could not determine the identity.
    Unknown,
    /// Any other value, kept verbatim.
    Other(&'a str),
}

impl<'a> UserIdentityType<'a> {
    pub fn parse(value: &'a str) -> Self {
        match value {
            "IAMUser" => Self::IamUser,
            "AssumedRole" => Self::AssumedRole,
            "Root" => Self::Root,
            "AWSService" => Self::AwsService,
            "AWSAccount" => Self::AwsAccount,
            "FederatedUser" => Self::FederatedUser,
            "WebIdentityUser" => Self::WebIdentityUser,
            "IdentityCenterUser" => Self::IdentityCenterUser,
            "SAMLUser" => Self::SamlUser,
            "Directory" => Self::Directory,
            "Unknown" => Self::Unknown,
            other => Self::Other(other),
        }
    }

    /// The value as CloudTrail writes it.
    pub fn as_str(&self) -> &'a str {
        match self {
            Self::IamUser => "IAMUser",
            Self::AssumedRole => "AssumedRole",
            Self::Root => "Root",
            Self::AwsService => "AWSService",
            Self::AwsAccount => "AWSAccount",
            Self::FederatedUser => "FederatedUser",
            Self::WebIdentityUser => "WebIdentityUser",
            Self::IdentityCenterUser => "IdentityCenterUser",
            Self::SamlUser => "SAMLUser",
            Self::Directory => "Directory",
            Self::Unknown => "Unknown",
            Self::Other(other) => other,
        }
    }
}

impl fmt::Display for UserIdentityType<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The string fields of `userIdentity` that other crates read. A field is `None` when
/// it is absent, `null` or not a string (validation reports the latter).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserIdentity<'a> {
    /// `type`; absent in some service events (e.g. `AwsServiceEvent` records).
    pub identity_type: Option<&'a str>,
    pub principal_id: Option<&'a str>,
    pub arn: Option<&'a str>,
    pub account_id: Option<&'a str>,
    pub access_key_id: Option<&'a str>,
    pub user_name: Option<&'a str>,
    pub invoked_by: Option<&'a str>,
    pub credential_id: Option<&'a str>,
    pub identity_provider: Option<&'a str>,
    /// `sessionContext.sourceIdentity`.
    pub source_identity: Option<&'a str>,
    /// `sessionContext.sessionIssuer`, when it is an object (CloudTrail writes `{}` for
    /// sessions that have no issuer, which gives an issuer with every field `None`).
    pub session_issuer: Option<SessionIssuer<'a>>,
}

impl<'a> UserIdentity<'a> {
    /// `type`, classified.
    pub fn kind(&self) -> Option<UserIdentityType<'a>> {
        self.identity_type.map(UserIdentityType::parse)
    }

    /// `sessionContext.sessionIssuer.userName`: for an assumed role, the role's name.
    pub fn session_issuer_user_name(&self) -> Option<&'a str> {
        self.session_issuer.and_then(|issuer| issuer.user_name)
    }
}

/// `userIdentity.sessionContext.sessionIssuer`: who issued temporary credentials.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionIssuer<'a> {
    /// `type`, e.g. `Role`.
    pub issuer_type: Option<&'a str>,
    pub principal_id: Option<&'a str>,
    pub arn: Option<&'a str>,
    pub account_id: Option<&'a str>,
    pub user_name: Option<&'a str>,
}

/// One element of `resources`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resource<'a> {
    /// `ARN`.
    pub arn: Option<&'a str>,
    /// `ARNPrefix`, written instead of `ARN` for some S3 data events.
    pub arn_prefix: Option<&'a str>,
    pub account_id: Option<&'a str>,
    /// `type`, e.g. `AWS::S3::Object`.
    pub resource_type: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_types_round_trip_their_names() {
        for name in [
            "IAMUser",
            "AssumedRole",
            "Root",
            "AWSService",
            "AWSAccount",
            "FederatedUser",
            "WebIdentityUser",
            "IdentityCenterUser",
            "SAMLUser",
            "Directory",
            "Unknown",
            "SomethingNew",
        ] {
            assert_eq!(UserIdentityType::parse(name).as_str(), name);
        }
        assert_eq!(
            UserIdentityType::parse("IAMUser"),
            UserIdentityType::IamUser
        );
        assert_eq!(
            UserIdentityType::parse("SomethingNew"),
            UserIdentityType::Other("SomethingNew")
        );
    }
}

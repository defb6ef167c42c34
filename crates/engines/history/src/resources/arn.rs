//! What an ARN names: its event history resource type and the name or ID event history
//! shows for it, read from the table of ARN resource kinds below.

/// How the name or ID is cut from the part of the ARN after `<kind>/` or `<kind>:`.
#[derive(Clone, Copy, Debug)]
enum NameIn {
    /// All of it: `instance/i-0abc` → `i-0abc`.
    Rest,
    /// After the last `/`, skipping an IAM path: `role/service-role/r` → `r`.
    LastSegment,
    /// Up to the next `:`: `function:f:2` → `f`, `log-group:g:*` → `g`.
    UntilColon,
    /// Up to the next `/`: `table/t/stream/x` → `t`.
    UntilSlash,
    /// The whole resource part, kind included: `alias/aws/ssm` (a KMS alias is named so).
    Resource,
    /// An SSM parameter: `parameter/a/b` → `/a/b` (a hierarchical name keeps its leading
    /// slash), `parameter/x` → `x`.
    SsmParameter,
}

/// One ARN resource kind: `arn:<partition>:<service>:<region>:<account>:<kind>/...`.
struct ArnKind {
    service: &'static str,
    /// The resource part up to its first `/` or `:`; empty when it has neither (an S3
    /// bucket, an SNS topic).
    kind: &'static str,
    resource_type: &'static str,
    name: NameIn,
}

const fn kind(
    service: &'static str,
    kind: &'static str,
    resource_type: &'static str,
    name: NameIn,
) -> ArnKind {
    ArnKind {
        service,
        kind,
        resource_type,
        name,
    }
}

/// ARN resource kinds with the event history resource type they name. Extend by adding a
/// line; an ARN whose kind is not here has no type and is named by its last `/` or `:`
/// segment.
const ARN_KINDS: &[ArnKind] = &[
    kind("acm", "certificate", "AWS::ACM::Certificate", NameIn::Rest),
    kind(
        "cloudtrail",
        "trail",
        "AWS::CloudTrail::Trail",
        NameIn::Rest,
    ),
    kind(
        "dynamodb",
        "table",
        "AWS::DynamoDB::Table",
        NameIn::UntilSlash,
    ),
    kind("ec2", "image", "AWS::EC2::Ami", NameIn::Rest),
    kind("ec2", "elastic-ip", "AWS::EC2::EIP", NameIn::Rest),
    kind("ec2", "instance", "AWS::EC2::Instance", NameIn::Rest),
    kind(
        "ec2",
        "internet-gateway",
        "AWS::EC2::InternetGateway",
        NameIn::Rest,
    ),
    kind("ec2", "key-pair", "AWS::EC2::KeyPair", NameIn::Rest),
    kind("ec2", "natgateway", "AWS::EC2::NatGateway", NameIn::Rest),
    kind("ec2", "network-acl", "AWS::EC2::NetworkAcl", NameIn::Rest),
    kind(
        "ec2",
        "network-interface",
        "AWS::EC2::NetworkInterface",
        NameIn::Rest,
    ),
    kind("ec2", "route-table", "AWS::EC2::RouteTable", NameIn::Rest),
    kind(
        "ec2",
        "security-group",
        "AWS::EC2::SecurityGroup",
        NameIn::Rest,
    ),
    kind("ec2", "snapshot", "AWS::EC2::Snapshot", NameIn::Rest),
    kind("ec2", "subnet", "AWS::EC2::Subnet", NameIn::Rest),
    kind("ec2", "volume", "AWS::EC2::Volume", NameIn::Rest),
    kind("ec2", "vpc", "AWS::EC2::VPC", NameIn::Rest),
    kind("ec2", "vpc-endpoint", "AWS::EC2::VPCEndpoint", NameIn::Rest),
    kind(
        "guardduty",
        "detector",
        "AWS::GuardDuty::Detector",
        NameIn::UntilSlash,
    ),
    kind("iam", "group", "AWS::IAM::Group", NameIn::LastSegment),
    kind(
        "iam",
        "instance-profile",
        "AWS::IAM::InstanceProfile",
        NameIn::LastSegment,
    ),
    kind("iam", "mfa", "AWS::IAM::MfaDevice", NameIn::LastSegment),
    kind(
        "iam",
        "oidc-provider",
        "AWS::IAM::OpenIDConnectProvider",
        NameIn::Rest,
    ),
    kind("iam", "policy", "AWS::IAM::Policy", NameIn::LastSegment),
    kind("iam", "role", "AWS::IAM::Role", NameIn::LastSegment),
    kind(
        "iam",
        "saml-provider",
        "AWS::IAM::SamlProvider",
        NameIn::LastSegment,
    ),
    kind(
        "iam",
        "server-certificate",
        "AWS::IAM::ServerCertificate",
        NameIn::LastSegment,
    ),
    kind("iam", "user", "AWS::IAM::User", NameIn::LastSegment),
    kind("kms", "alias", "AWS::KMS::Alias", NameIn::Resource),
    kind("kms", "key", "AWS::KMS::Key", NameIn::Rest),
    kind(
        "lambda",
        "function",
        "AWS::Lambda::Function",
        NameIn::UntilColon,
    ),
    kind(
        "logs",
        "log-group",
        "AWS::Logs::LogGroup",
        NameIn::UntilColon,
    ),
    kind(
        "organizations",
        "account",
        "AWS::Organizations::Account",
        NameIn::LastSegment,
    ),
    kind(
        "organizations",
        "ou",
        "AWS::Organizations::OrganizationalUnit",
        NameIn::LastSegment,
    ),
    kind(
        "organizations",
        "policy",
        "AWS::Organizations::Policy",
        NameIn::LastSegment,
    ),
    kind("rds", "cluster", "AWS::RDS::DBCluster", NameIn::Rest),
    kind(
        "rds",
        "cluster-snapshot",
        "AWS::RDS::DBClusterSnapshot",
        NameIn::Rest,
    ),
    kind("rds", "db", "AWS::RDS::DBInstance", NameIn::Rest),
    kind("rds", "es", "AWS::RDS::EventSubscription", NameIn::Rest),
    kind("rds", "og", "AWS::RDS::DBOptionGroup", NameIn::Rest),
    kind("rds", "pg", "AWS::RDS::DBParameterGroup", NameIn::Rest),
    kind("rds", "snapshot", "AWS::RDS::DBSnapshot", NameIn::Rest),
    kind("rds", "subgrp", "AWS::RDS::DBSubnetGroup", NameIn::Rest),
    kind(
        "rolesanywhere",
        "profile",
        "AWS::RolesAnywhere::Profile",
        NameIn::Rest,
    ),
    kind(
        "rolesanywhere",
        "trust-anchor",
        "AWS::RolesAnywhere::TrustAnchor",
        NameIn::Rest,
    ),
    kind("s3", "", "AWS::S3::Bucket", NameIn::Rest),
    kind(
        "secretsmanager",
        "secret",
        "AWS::SecretsManager::Secret",
        NameIn::Rest,
    ),
    kind("sns", "", "AWS::SNS::Topic", NameIn::Rest),
    kind("ssm", "association", "AWS::SSM::Association", NameIn::Rest),
    kind("ssm", "document", "AWS::SSM::Document", NameIn::Rest),
    kind(
        "ssm",
        "parameter",
        "AWS::SSM::Parameter",
        NameIn::SsmParameter,
    ),
    kind(
        "sts",
        "assumed-role",
        "AWS::STS::AssumedRole",
        NameIn::LastSegment,
    ),
    kind(
        "sts",
        "federated-user",
        "AWS::STS::FederatedUser",
        NameIn::LastSegment,
    ),
];

/// The parts of an ARN event history needs, borrowed from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ArnParts<'a> {
    pub service: &'a str,
    /// Everything after the account: `role/path/name`, `function:f`, `bucket`.
    pub resource: &'a str,
}

/// Splits `arn:<partition>:<service>:<region>:<account>:<resource>`; `None` for anything
/// else.
pub(crate) fn split(value: &str) -> Option<ArnParts<'_>> {
    let mut parts = value.splitn(6, ':');
    let (Some("arn"), Some(partition), Some(service), Some(_region), Some(_account)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let resource = parts.next()?;
    if partition.is_empty() || service.is_empty() || resource.is_empty() {
        return None;
    }
    Some(ArnParts { service, resource })
}

/// The resource part's kind (up to the first `/` or `:`) and what follows the separator.
fn kind_and_rest(resource: &str) -> (&str, &str) {
    match resource.find(['/', ':']) {
        Some(at) => (&resource[..at], &resource[at + 1..]),
        None => ("", resource),
    }
}

fn lookup(parts: ArnParts<'_>) -> Option<&'static ArnKind> {
    let (kind, _) = kind_and_rest(parts.resource);
    ARN_KINDS
        .iter()
        .find(|entry| entry.service == parts.service && entry.kind == kind)
}

/// The event history resource type an ARN names, when the table knows its kind.
pub(crate) fn resource_type(arn: &str) -> Option<&'static str> {
    split(arn).and_then(lookup).map(|entry| entry.resource_type)
}

/// The name or ID inside an ARN: by the table when it knows the kind, else the last `/`
/// or `:` segment. `None` when `value` is not an ARN or the name would be empty.
pub(crate) fn name(value: &str) -> Option<&str> {
    let parts = split(value)?;
    let (_, rest) = kind_and_rest(parts.resource);
    let name = match lookup(parts).map(|entry| entry.name) {
        Some(NameIn::Rest) => rest,
        Some(NameIn::LastSegment) => rest.rsplit('/').next().unwrap_or(rest),
        Some(NameIn::UntilColon) => rest.split(':').next().unwrap_or(rest),
        Some(NameIn::UntilSlash) => rest.split('/').next().unwrap_or(rest),
        Some(NameIn::Resource) => parts.resource,
        Some(NameIn::SsmParameter) => {
            // `parameter/x` names `x`; `parameter/a/b` names `/a/b`.
            let path = &parts.resource[parts.resource.len() - rest.len() - 1..];
            if rest.contains('/') {
                path
            } else {
                rest
            }
        }
        None => parts
            .resource
            .rsplit(['/', ':'])
            .next()
            .unwrap_or(parts.resource),
    };
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_types_of_arns() {
        let cases = [
            (
                "arn:aws:iam::1:role/service-role/test-role",
                "AWS::IAM::Role",
                "test-role",
            ),
            ("arn:aws:s3:::my-bucket", "AWS::S3::Bucket", "my-bucket"),
            (
                "arn:aws:kms:us-east-1:1:key/dad21b23-9915-42bd-981b-2a9f3c8f20c8",
                "AWS::KMS::Key",
                "dad21b23-9915-42bd-981b-2a9f3c8f20c8",
            ),
            (
                "arn:aws:kms:us-east-1:1:alias/aws/ssm",
                "AWS::KMS::Alias",
                "alias/aws/ssm",
            ),
            (
                "arn:aws:lambda:us-east-1:1:function:f:7",
                "AWS::Lambda::Function",
                "f",
            ),
            (
                "arn:aws:logs:us-east-1:1:log-group:/a/b:*",
                "AWS::Logs::LogGroup",
                "/a/b",
            ),
            (
                "arn:aws:ssm:us-east-1:1:parameter/credentials/x",
                "AWS::SSM::Parameter",
                "/credentials/x",
            ),
            (
                "arn:aws:ssm:us-east-1:1:parameter/plain",
                "AWS::SSM::Parameter",
                "plain",
            ),
            (
                "arn:aws:ec2:us-east-1:1:instance/i-0dbc91f429e48eeed",
                "AWS::EC2::Instance",
                "i-0dbc91f429e48eeed",
            ),
            (
                "arn:aws:sts::1:assumed-role/Admin/session",
                "AWS::STS::AssumedRole",
                "session",
            ),
            (
                "arn:aws:secretsmanager:us-east-1:1:secret:s-AbCdEf",
                "AWS::SecretsManager::Secret",
                "s-AbCdEf",
            ),
            (
                "arn:aws:rds:us-east-1:1:snapshot:exfiltration",
                "AWS::RDS::DBSnapshot",
                "exfiltration",
            ),
            (
                "arn:aws:dynamodb:us-east-1:1:table/t/stream/2024",
                "AWS::DynamoDB::Table",
                "t",
            ),
        ];
        for (arn, resource_type, expected) in cases {
            assert_eq!(super::resource_type(arn), Some(resource_type), "{arn}");
            assert_eq!(name(arn), Some(expected), "{arn}");
        }
        assert_eq!(super::resource_type("arn:aws:foo:r:1:thing/x"), None);
        assert_eq!(name("arn:aws:foo:r:1:thing/x"), Some("x"));
        assert_eq!(name("not-an-arn"), None);
        assert_eq!(name("arn:aws:iam::1:role/"), None);
        assert_eq!(name("arn:aws:ssm:r:1:parameter"), Some("parameter"));
    }
}

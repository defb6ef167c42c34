//! Which request parameters and response elements name a resource, per event source:
//! the table behind the `Resources` event history shows. Extend it by adding a line.
//!
//! A path is a dotted list of member names into `requestParameters` or
//! `responseElements`; arrays met on the way are walked element by element, and an
//! object of the form `{"tag": ..., "content": "<id>"}` (how CloudTrail writes some EC2
//! query-API lists) stands for its `content`.

/// Which part of the record a path starts in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Section {
    Request,
    Response,
}

/// How the resource type of a value is decided.
#[derive(Clone, Copy, Debug)]
pub(crate) enum TypeOf {
    Fixed(&'static str),
    /// An EC2 resource ID, typed by its prefix (`i-` instance, `vpc-` VPC, ...).
    Ec2Id,
    /// A KMS key ID or key ARN (`AWS::KMS::Key`), or an alias name or alias ARN
    /// (`AWS::KMS::Alias`).
    KmsKeyOrAlias,
    /// An ARN, typed by its service and resource kind (see `arn.rs`); values that are not
    /// ARNs of a known kind name nothing.
    FromArn,
}

impl TypeOf {
    /// The resource type of `value`, or `None` when the value names no resource.
    pub(crate) fn of(self, value: &str) -> Option<&'static str> {
        match self {
            Self::Fixed(resource_type) => Some(resource_type),
            Self::Ec2Id => EC2_ID_PREFIXES
                .iter()
                .find(|(prefix, _)| value.starts_with(prefix))
                .map(|&(_, resource_type)| resource_type),
            Self::KmsKeyOrAlias => {
                if value.starts_with("alias/") || value.contains(":alias/") {
                    Some("AWS::KMS::Alias")
                } else {
                    Some("AWS::KMS::Key")
                }
            }
            Self::FromArn => super::arn::resource_type(value),
        }
    }
}

/// One place a resource is named.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rule {
    /// The `eventName`s it applies to; empty: every event of the source.
    pub events: &'static [&'static str],
    pub section: Section,
    pub path: &'static str,
    pub resource_type: TypeOf,
}

impl Rule {
    const fn only(self, events: &'static [&'static str]) -> Self {
        Self { events, ..self }
    }

    pub(crate) fn applies_to(&self, event_name: &str) -> bool {
        self.events.is_empty() || self.events.contains(&event_name)
    }
}

const fn req(path: &'static str, resource_type: &'static str) -> Rule {
    Rule {
        events: &[],
        section: Section::Request,
        path,
        resource_type: TypeOf::Fixed(resource_type),
    }
}

const fn resp(path: &'static str, resource_type: &'static str) -> Rule {
    Rule {
        events: &[],
        section: Section::Response,
        path,
        resource_type: TypeOf::Fixed(resource_type),
    }
}

const fn req_typed(path: &'static str, resource_type: TypeOf) -> Rule {
    Rule {
        events: &[],
        section: Section::Request,
        path,
        resource_type,
    }
}

/// The rules of one `eventSource`, in the order their resources are listed.
pub(crate) struct SourceRules {
    pub source: &'static str,
    pub rules: &'static [Rule],
}

/// The rules for `event_source`, if it has any.
pub(crate) fn rules_for(event_source: &str) -> Option<&'static [Rule]> {
    SOURCES
        .iter()
        .find(|entry| entry.source == event_source)
        .map(|entry| entry.rules)
}

/// EC2 ID prefixes; a longer prefix comes before a shorter one it starts with.
const EC2_ID_PREFIXES: &[(&str, &str)] = &[
    ("ami-", "AWS::EC2::Ami"),
    ("cgw-", "AWS::EC2::CustomerGateway"),
    ("dopt-", "AWS::EC2::DHCPOptions"),
    ("eipalloc-", "AWS::EC2::EIP"),
    ("eni-attach-", "AWS::EC2::NetworkInterfaceAttachment"),
    ("eni-", "AWS::EC2::NetworkInterface"),
    ("fl-", "AWS::EC2::FlowLog"),
    ("h-", "AWS::EC2::Host"),
    ("i-", "AWS::EC2::Instance"),
    ("igw-", "AWS::EC2::InternetGateway"),
    ("acl-", "AWS::EC2::NetworkAcl"),
    ("nat-", "AWS::EC2::NatGateway"),
    ("pcx-", "AWS::EC2::VPCPeeringConnection"),
    ("rtbassoc-", "AWS::EC2::SubnetRouteTableAssociation"),
    ("rtb-", "AWS::EC2::RouteTable"),
    ("sfr-", "AWS::EC2::SpotFleetRequest"),
    ("sg-", "AWS::EC2::SecurityGroup"),
    ("sir-", "AWS::EC2::SpotInstanceRequest"),
    ("snap-", "AWS::EC2::Snapshot"),
    ("subnet-", "AWS::EC2::Subnet"),
    ("vgw-", "AWS::EC2::VPNGateway"),
    ("vol-", "AWS::EC2::Volume"),
    ("vpce-", "AWS::EC2::VPCEndpoint"),
    ("vpc-", "AWS::EC2::VPC"),
    ("vpn-", "AWS::EC2::VPNConnection"),
];

const ASSUME_ROLE: &[&str] = &[
    "AssumeRole",
    "AssumeRoleWithSAML",
    "AssumeRoleWithWebIdentity",
];
const TRAIL_BY_NAME: &[&str] = &[
    "CreateTrail",
    "DeleteTrail",
    "GetTrail",
    "GetTrailStatus",
    "StartLogging",
    "StopLogging",
    "UpdateTrail",
];
const SSM_PARAMETER: &[&str] = &[
    "DeleteParameter",
    "GetParameter",
    "GetParameterHistory",
    "LabelParameterVersion",
    "PutParameter",
    "UnlabelParameterVersion",
];
const SSM_DOCUMENT: &[&str] = &[
    "CreateDocument",
    "DeleteDocument",
    "DescribeDocument",
    "GetDocument",
    "UpdateDocument",
];

const SOURCES: &[SourceRules] = &[
    SourceRules {
        source: "sts.amazonaws.com",
        rules: &[
            resp("credentials.accessKeyId", "AWS::IAM::AccessKey"),
            resp("assumedRoleUser.arn", "AWS::STS::AssumedRole").only(ASSUME_ROLE),
            resp("assumedRoleUser.assumedRoleId", "AWS::STS::AssumedRole").only(ASSUME_ROLE),
            req("roleSessionName", "AWS::STS::AssumedRole").only(ASSUME_ROLE),
            resp("federatedUser.arn", "AWS::STS::FederatedUser").only(&["GetFederationToken"]),
            resp("federatedUser.federatedUserId", "AWS::STS::FederatedUser")
                .only(&["GetFederationToken"]),
            req("name", "AWS::STS::FederatedUser").only(&["GetFederationToken"]),
            req("roleArn", "AWS::IAM::Role").only(ASSUME_ROLE),
        ],
    },
    SourceRules {
        source: "iam.amazonaws.com",
        rules: &[
            req("userName", "AWS::IAM::User"),
            req("roleName", "AWS::IAM::Role"),
            req("groupName", "AWS::IAM::Group"),
            req("instanceProfileName", "AWS::IAM::InstanceProfile"),
            req("policyArn", "AWS::IAM::Policy"),
            req("policyName", "AWS::IAM::Policy").only(&["CreatePolicy"]),
            req("accessKeyId", "AWS::IAM::AccessKey"),
            resp("accessKey.accessKeyId", "AWS::IAM::AccessKey"),
            req("serialNumber", "AWS::IAM::MfaDevice"),
            resp("virtualMFADevice.serialNumber", "AWS::IAM::MfaDevice"),
            req(
                "openIDConnectProviderArn",
                "AWS::IAM::OpenIDConnectProvider",
            ),
            resp(
                "openIDConnectProviderArn",
                "AWS::IAM::OpenIDConnectProvider",
            ),
            req("sAMLProviderArn", "AWS::IAM::SamlProvider"),
            resp("sAMLProviderArn", "AWS::IAM::SamlProvider"),
            req("serverCertificateName", "AWS::IAM::ServerCertificate"),
            req("certificateId", "AWS::IAM::SigningCertificate"),
            req("sSHPublicKeyId", "AWS::IAM::SshPublicKey"),
            req("accountAlias", "AWS::IAM::AccountAlias"),
            resp("role.roleName", "AWS::IAM::Role").only(&["CreateServiceLinkedRole"]),
        ],
    },
    SourceRules {
        source: "s3.amazonaws.com",
        rules: &[req("bucketName", "AWS::S3::Bucket")],
    },
    SourceRules {
        source: "ec2.amazonaws.com",
        rules: &[
            req("instanceId", "AWS::EC2::Instance"),
            req("instancesSet.items.instanceId", "AWS::EC2::Instance"),
            resp("instancesSet.items.instanceId", "AWS::EC2::Instance"),
            req(
                "DescribeInstanceCreditSpecificationsRequest.InstanceId",
                "AWS::EC2::Instance",
            ),
            req("imageId", "AWS::EC2::Ami"),
            req("instancesSet.items.imageId", "AWS::EC2::Ami"),
            resp("imageId", "AWS::EC2::Ami"),
            req("vpcId", "AWS::EC2::VPC"),
            req("vpcSet.items.vpcId", "AWS::EC2::VPC"),
            req("vpcSet.item.vpcId", "AWS::EC2::VPC"),
            req(
                "DescribeVpcClassicLinkDnsSupportRequest.VpcIds",
                "AWS::EC2::VPC",
            ),
            resp("vpc.vpcId", "AWS::EC2::VPC"),
            req("subnetId", "AWS::EC2::Subnet"),
            req("subnetSet.items.subnetId", "AWS::EC2::Subnet"),
            req("CreateNatGatewayRequest.SubnetId", "AWS::EC2::Subnet"),
            resp("subnet.subnetId", "AWS::EC2::Subnet"),
            req("groupId", "AWS::EC2::SecurityGroup"),
            req("groupSet.items.groupId", "AWS::EC2::SecurityGroup"),
            resp("groupId", "AWS::EC2::SecurityGroup"),
            req("routeTableId", "AWS::EC2::RouteTable"),
            resp("routeTable.routeTableId", "AWS::EC2::RouteTable"),
            req("associationId", "AWS::EC2::SubnetRouteTableAssociation")
                .only(&["DisassociateRouteTable", "ReplaceRouteTableAssociation"]),
            resp("associationId", "AWS::EC2::SubnetRouteTableAssociation")
                .only(&["AssociateRouteTable"]),
            req("internetGatewayId", "AWS::EC2::InternetGateway"),
            req(
                "internetGatewayIdSet.items.internetGatewayId",
                "AWS::EC2::InternetGateway",
            ),
            resp(
                "internetGateway.internetGatewayId",
                "AWS::EC2::InternetGateway",
            ),
            req("networkInterfaceId", "AWS::EC2::NetworkInterface"),
            req(
                "networkInterfaceIdSet.items.networkInterfaceId",
                "AWS::EC2::NetworkInterface",
            ),
            req(
                "networkInterfaceSet.items.networkInterfaceId",
                "AWS::EC2::NetworkInterface",
            ),
            resp(
                "networkInterface.networkInterfaceId",
                "AWS::EC2::NetworkInterface",
            ),
            req("attachmentId", "AWS::EC2::NetworkInterfaceAttachment")
                .only(&["DetachNetworkInterface"]),
            req("volumeId", "AWS::EC2::Volume"),
            req("volumeSet.items.volumeId", "AWS::EC2::Volume"),
            resp("volumeId", "AWS::EC2::Volume"),
            req("snapshotId", "AWS::EC2::Snapshot"),
            req("snapshotSet.items.snapshotId", "AWS::EC2::Snapshot"),
            resp("snapshotId", "AWS::EC2::Snapshot"),
            req("allocationId", "AWS::EC2::EIP"),
            req("allocationIdsSet.items.allocationId", "AWS::EC2::EIP"),
            req("CreateNatGatewayRequest.AllocationId", "AWS::EC2::EIP"),
            resp("allocationId", "AWS::EC2::EIP"),
            req("natGatewayId", "AWS::EC2::NatGateway"),
            req(
                "DeleteNatGatewayRequest.NatGatewayId",
                "AWS::EC2::NatGateway",
            ),
            req(
                "DescribeNatGatewaysRequest.NatGatewayId",
                "AWS::EC2::NatGateway",
            ),
            resp(
                "CreateNatGatewayResponse.natGateway.natGatewayId",
                "AWS::EC2::NatGateway",
            ),
            req("networkAclId", "AWS::EC2::NetworkAcl"),
            req("keyName", "AWS::EC2::KeyPair"),
            resp("keyName", "AWS::EC2::KeyPair"),
            req("vpcEndpointId", "AWS::EC2::VPCEndpoint"),
            req("vpcPeeringConnectionId", "AWS::EC2::VPCPeeringConnection"),
            req("customerGatewayId", "AWS::EC2::CustomerGateway"),
            req("vpnGatewayId", "AWS::EC2::VPNGateway"),
            req("vpnConnectionId", "AWS::EC2::VPNConnection"),
            req("dhcpOptionsId", "AWS::EC2::DHCPOptions"),
            req("DescribeFlowLogsRequest.FlowLogId", "AWS::EC2::FlowLog"),
            req("DeleteFlowLogsRequest.FlowLogId", "AWS::EC2::FlowLog"),
            resp(
                "CreateFlowLogsResponse.flowLogIdSet.item",
                "AWS::EC2::FlowLog",
            ),
            req_typed("CreateFlowLogsRequest.ResourceId", TypeOf::Ec2Id),
            req_typed("resourcesSet.items.resourceId", TypeOf::Ec2Id),
        ],
    },
    SourceRules {
        source: "kms.amazonaws.com",
        rules: &[
            req_typed("keyId", TypeOf::KmsKeyOrAlias),
            req_typed("targetKeyId", TypeOf::KmsKeyOrAlias),
            req("aliasName", "AWS::KMS::Alias"),
            resp("keyMetadata.keyId", "AWS::KMS::Key").only(&["CreateKey", "ReplicateKey"]),
        ],
    },
    SourceRules {
        source: "lambda.amazonaws.com",
        rules: &[
            req("functionName", "AWS::Lambda::Function"),
            resp("functionName", "AWS::Lambda::Function"),
        ],
    },
    SourceRules {
        source: "cloudtrail.amazonaws.com",
        rules: &[
            req("name", "AWS::CloudTrail::Trail").only(TRAIL_BY_NAME),
            req("trailName", "AWS::CloudTrail::Trail"),
            req("trailNameList", "AWS::CloudTrail::Trail"),
            req_typed("resourceId", TypeOf::FromArn),
            req_typed("resourceIdList", TypeOf::FromArn),
        ],
    },
    SourceRules {
        source: "organizations.amazonaws.com",
        rules: &[
            req("accountId", "AWS::Organizations::Account"),
            resp(
                "createAccountStatus.accountId",
                "AWS::Organizations::Account",
            ),
            req(
                "organizationalUnitId",
                "AWS::Organizations::OrganizationalUnit",
            ),
            resp(
                "organizationalUnit.id",
                "AWS::Organizations::OrganizationalUnit",
            ),
            req("policyId", "AWS::Organizations::Policy"),
            resp("policy.policySummary.id", "AWS::Organizations::Policy"),
        ],
    },
    SourceRules {
        source: "ssm.amazonaws.com",
        rules: &[
            req("name", "AWS::SSM::Parameter").only(SSM_PARAMETER),
            req("names", "AWS::SSM::Parameter").only(&["GetParameters", "DeleteParameters"]),
            req("name", "AWS::SSM::Document").only(SSM_DOCUMENT),
            req("documentName", "AWS::SSM::Document"),
            req("associationId", "AWS::SSM::Association"),
            req("instanceId", "AWS::EC2::Instance"),
            req("instanceIds", "AWS::EC2::Instance"),
        ],
    },
    SourceRules {
        source: "secretsmanager.amazonaws.com",
        rules: &[
            req("secretId", "AWS::SecretsManager::Secret"),
            req("name", "AWS::SecretsManager::Secret").only(&["CreateSecret"]),
        ],
    },
    SourceRules {
        source: "logs.amazonaws.com",
        rules: &[req("logGroupName", "AWS::Logs::LogGroup")],
    },
    SourceRules {
        source: "rds.amazonaws.com",
        rules: &[
            req("dBInstanceIdentifier", "AWS::RDS::DBInstance"),
            req("dBClusterIdentifier", "AWS::RDS::DBCluster"),
            req("dBSnapshotIdentifier", "AWS::RDS::DBSnapshot"),
            req("dBClusterSnapshotIdentifier", "AWS::RDS::DBClusterSnapshot"),
            req("dBSubnetGroupName", "AWS::RDS::DBSubnetGroup"),
            req("dBParameterGroupName", "AWS::RDS::DBParameterGroup"),
            req(
                "dBClusterParameterGroupName",
                "AWS::RDS::DBClusterParameterGroup",
            ),
            req("optionGroupName", "AWS::RDS::DBOptionGroup"),
            req("subscriptionName", "AWS::RDS::EventSubscription"),
            req_typed("resourceName", TypeOf::FromArn),
        ],
    },
    SourceRules {
        source: "autoscaling.amazonaws.com",
        rules: &[
            req("autoScalingGroupName", "AWS::AutoScaling::AutoScalingGroup"),
            req(
                "launchConfigurationName",
                "AWS::AutoScaling::LaunchConfiguration",
            ),
            req("policyName", "AWS::AutoScaling::ScalingPolicy"),
            req("scheduledActionName", "AWS::AutoScaling::ScheduledAction"),
        ],
    },
    SourceRules {
        source: "elasticloadbalancing.amazonaws.com",
        rules: &[
            req(
                "loadBalancerName",
                "AWS::ElasticLoadBalancing::LoadBalancer",
            ),
            req(
                "loadBalancerArn",
                "AWS::ElasticLoadBalancingV2::LoadBalancer",
            ),
        ],
    },
    SourceRules {
        source: "acm.amazonaws.com",
        rules: &[
            req("certificateArn", "AWS::ACM::Certificate"),
            resp("certificateArn", "AWS::ACM::Certificate"),
        ],
    },
    SourceRules {
        source: "codepipeline.amazonaws.com",
        rules: &[
            req("name", "AWS::CodePipeline::Pipeline"),
            req("pipelineName", "AWS::CodePipeline::Pipeline"),
            req("pipeline.name", "AWS::CodePipeline::Pipeline"),
        ],
    },
    SourceRules {
        source: "redshift.amazonaws.com",
        rules: &[req("clusterIdentifier", "AWS::Redshift::Cluster")],
    },
    SourceRules {
        source: "dynamodb.amazonaws.com",
        rules: &[req("tableName", "AWS::DynamoDB::Table")],
    },
    SourceRules {
        source: "sns.amazonaws.com",
        rules: &[
            req("topicArn", "AWS::SNS::Topic"),
            resp("topicArn", "AWS::SNS::Topic"),
        ],
    },
    SourceRules {
        source: "guardduty.amazonaws.com",
        rules: &[
            req("detectorId", "AWS::GuardDuty::Detector"),
            resp("detectorId", "AWS::GuardDuty::Detector"),
        ],
    },
    SourceRules {
        source: "rolesanywhere.amazonaws.com",
        rules: &[
            req("profileId", "AWS::RolesAnywhere::Profile"),
            resp("profile.profileId", "AWS::RolesAnywhere::Profile").only(&["CreateProfile"]),
            req("trustAnchorId", "AWS::RolesAnywhere::TrustAnchor"),
            resp(
                "trustAnchor.trustAnchorId",
                "AWS::RolesAnywhere::TrustAnchor",
            )
            .only(&["CreateTrustAnchor"]),
        ],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec2_ids_are_typed_by_their_longest_prefix() {
        let cases = [
            ("i-0dbc91f429e48eeed", Some("AWS::EC2::Instance")),
            ("igw-02a84e4222d62e16b", Some("AWS::EC2::InternetGateway")),
            (
                "eni-attach-02aca13293a6fe1b9",
                Some("AWS::EC2::NetworkInterfaceAttachment"),
            ),
            ("eni-076fa9fb98a2500a7", Some("AWS::EC2::NetworkInterface")),
            ("vpce-1", Some("AWS::EC2::VPCEndpoint")),
            ("vpc-06fe1a64761a0f720", Some("AWS::EC2::VPC")),
            (
                "rtbassoc-0b911e98f29251a51",
                Some("AWS::EC2::SubnetRouteTableAssociation"),
            ),
            ("rtb-0c7c2f4aff3677054", Some("AWS::EC2::RouteTable")),
            ("local", None),
        ];
        for (id, expected) in cases {
            assert_eq!(TypeOf::Ec2Id.of(id), expected, "{id}");
        }
        // No prefix is shadowed by an earlier, shorter one.
        for (at, (prefix, _)) in EC2_ID_PREFIXES.iter().enumerate() {
            for (earlier, _) in &EC2_ID_PREFIXES[..at] {
                assert!(!prefix.starts_with(earlier), "{earlier} shadows {prefix}");
            }
        }
    }

    #[test]
    fn kms_aliases_are_told_from_keys() {
        assert_eq!(
            TypeOf::KmsKeyOrAlias.of("alias/aws/ssm"),
            Some("AWS::KMS::Alias")
        );
        assert_eq!(
            TypeOf::KmsKeyOrAlias.of("arn:aws:kms:us-east-1:1:alias/x"),
            Some("AWS::KMS::Alias")
        );
        assert_eq!(
            TypeOf::KmsKeyOrAlias.of("dad21b23-9915-42bd-981b-2a9f3c8f20c8"),
            Some("AWS::KMS::Key")
        );
    }

    #[test]
    fn every_source_is_listed_once_and_every_type_is_an_aws_type() {
        for (at, entry) in SOURCES.iter().enumerate() {
            assert!(
                SOURCES[..at]
                    .iter()
                    .all(|other| other.source != entry.source),
                "{} listed twice",
                entry.source
            );
            for rule in entry.rules {
                assert!(!rule.path.is_empty());
                if let TypeOf::Fixed(resource_type) = rule.resource_type {
                    assert!(resource_type.starts_with("AWS::"), "{resource_type}");
                    assert_eq!(resource_type.split("::").count(), 3, "{resource_type}");
                }
            }
        }
        for (_, resource_type) in EC2_ID_PREFIXES {
            assert!(resource_type.starts_with("AWS::EC2::"));
        }
    }
}

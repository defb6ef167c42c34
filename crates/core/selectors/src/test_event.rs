//! A plain event for tests, built field by field.

use crate::EventView;

#[derive(Clone, Debug, Default)]
pub(crate) struct TestEvent {
    pub category: String,
    pub source: String,
    pub name: String,
    pub event_type: String,
    pub read_only: Option<bool>,
    pub management: bool,
    pub resources: Vec<(String, String)>,
    pub user_arn: Option<String>,
    pub from_console: Option<bool>,
    pub error_code: Option<String>,
    pub vpc_endpoint_id: Option<String>,
}

impl TestEvent {
    /// A management API call, e.g. `management("ec2.amazonaws.com", "RunInstances", false)`.
    pub(crate) fn management(source: &str, name: &str, read_only: bool) -> Self {
        Self {
            category: "Management".into(),
            source: source.into(),
            name: name.into(),
            event_type: "AwsApiCall".into(),
            read_only: Some(read_only),
            management: true,
            user_arn: Some("arn:aws:iam::111122223333:user/alice".into()),
            ..Self::default()
        }
    }

    /// A data event on one resource.
    pub(crate) fn data(
        source: &str,
        name: &str,
        read_only: bool,
        resource_type: &str,
        arn: &str,
    ) -> Self {
        Self {
            category: "Data".into(),
            source: source.into(),
            name: name.into(),
            event_type: "AwsApiCall".into(),
            read_only: Some(read_only),
            management: false,
            resources: vec![(resource_type.into(), arn.into())],
            user_arn: Some("arn:aws:iam::111122223333:user/alice".into()),
            ..Self::default()
        }
    }

    /// An S3 object data event as CloudTrail records it: the object and its bucket.
    pub(crate) fn s3_object(name: &str, read_only: bool, bucket: &str, key: &str) -> Self {
        let mut event = Self::data(
            "s3.amazonaws.com",
            name,
            read_only,
            "AWS::S3::Object",
            &format!("arn:aws:s3:::{bucket}/{key}"),
        );
        event
            .resources
            .push(("AWS::S3::Bucket".into(), format!("arn:aws:s3:::{bucket}")));
        event
    }

    /// A network activity event denied at a VPC endpoint.
    pub(crate) fn network(source: &str, name: &str, vpce: &str) -> Self {
        Self {
            category: "NetworkActivity".into(),
            source: source.into(),
            name: name.into(),
            event_type: "AwsVpceEvent".into(),
            error_code: Some("VpceAccessDenied".into()),
            vpc_endpoint_id: Some(vpce.into()),
            user_arn: Some("arn:aws:iam::111122223333:user/alice".into()),
            ..Self::default()
        }
    }

    /// An Insights event.
    pub(crate) fn insight(source: &str, name: &str) -> Self {
        Self {
            category: "Insight".into(),
            source: source.into(),
            name: name.into(),
            event_type: "AwsCloudTrailInsight".into(),
            ..Self::default()
        }
    }
}

impl EventView for TestEvent {
    fn event_category(&self) -> &str {
        &self.category
    }
    fn event_source(&self) -> &str {
        &self.source
    }
    fn event_name(&self) -> &str {
        &self.name
    }
    fn event_type(&self) -> &str {
        &self.event_type
    }
    fn read_only(&self) -> Option<bool> {
        self.read_only
    }
    fn management_event(&self) -> bool {
        self.management
    }
    fn resources(&self) -> Vec<(String, String)> {
        self.resources.clone()
    }
    fn user_identity_arn(&self) -> Option<&str> {
        self.user_arn.as_deref()
    }
    fn session_credential_from_console(&self) -> Option<bool> {
        self.from_console
    }
    fn error_code(&self) -> Option<&str> {
        self.error_code.as_deref()
    }
    fn vpc_endpoint_id(&self) -> Option<&str> {
        self.vpc_endpoint_id.as_deref()
    }
}

//! The facts of one CloudTrail event record that selectors look at.
//! `opentrail_model::EventRecord` implements [`EventView`] (in `record_view.rs`); matching never sees a whole record.

/// Read-only view of the selector-relevant fields of a CloudTrail event record.
pub trait EventView {
    /// `eventCategory`: "Management", "Data", "NetworkActivity" or "Insight"
    /// (empty for records older than eventVersion 1.07, which had no such field).
    fn event_category(&self) -> &str;
    /// `eventSource`, e.g. "s3.amazonaws.com".
    fn event_source(&self) -> &str;
    /// `eventName`, e.g. "PutObject".
    fn event_name(&self) -> &str;
    /// `eventType`, e.g. "AwsApiCall".
    fn event_type(&self) -> &str;
    /// `readOnly`, absent on some non-API events.
    fn read_only(&self) -> Option<bool>;
    /// `managementEvent`.
    fn management_event(&self) -> bool;
    /// `resources` as (type, ARN) pairs, e.g. ("AWS::S3::Object", "arn:aws:s3:::bucket/key").
    fn resources(&self) -> Vec<(String, String)>;
    /// `userIdentity.arn`.
    fn user_identity_arn(&self) -> Option<&str>;
    /// `sessionCredentialFromConsole` (the record carries it as the string "true").
    fn session_credential_from_console(&self) -> Option<bool>;
    /// `errorCode`.
    fn error_code(&self) -> Option<&str>;
    /// `vpcEndpointId`.
    fn vpc_endpoint_id(&self) -> Option<&str>;
}

/// The event category as selectors classify it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EventKind {
    Management,
    Data,
    NetworkActivity,
    Insight,
    Unknown,
}

impl EventKind {
    /// Classifies by `eventCategory`. Records that predate `eventCategory`
    /// (eventVersion < 1.07) knew only management and data events, told apart
    /// by `managementEvent`.
    pub(crate) fn of(event: &dyn EventView) -> Self {
        match event.event_category() {
            "Management" => Self::Management,
            "Data" => Self::Data,
            "NetworkActivity" => Self::NetworkActivity,
            "Insight" => Self::Insight,
            "" if event.management_event() => Self::Management,
            "" => Self::Data,
            _ => Self::Unknown,
        }
    }
}

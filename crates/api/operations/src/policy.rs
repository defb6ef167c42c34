//! What botocore's model does not say about an operation, answered per operation by
//! exhaustive `match`es so that an operation added to the model does not compile until
//! someone decides: whether it only reads (CloudTrail's `readOnly`), which resource its
//! audit event names, and which rate limit applies to it.

use crate::Operation;

/// The resource types CloudTrail names in the `resources` of its own audit events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceType {
    Trail,
    EventDataStore,
    Channel,
    Dashboard,
}

impl ResourceType {
    /// The CloudFormation-style type name CloudTrail records (`AWS::CloudTrail::Trail`).
    pub fn type_name(self) -> &'static str {
        match self {
            Self::Trail => "AWS::CloudTrail::Trail",
            Self::EventDataStore => "AWS::CloudTrail::EventDataStore",
            Self::Channel => "AWS::CloudTrail::Channel",
            Self::Dashboard => "AWS::CloudTrail::Dashboard",
        }
    }

    /// The `<type>/` segment of the resource's ARN (`arn:aws:cloudtrail:r:a:trail/NAME`).
    pub fn arn_segment(self) -> &'static str {
        match self {
            Self::Trail => "trail",
            Self::EventDataStore => "eventdatastore",
            Self::Channel => "channel",
            Self::Dashboard => "dashboard",
        }
    }

    /// The resource type an ARN names, from its `<type>/` segment.
    pub fn of_arn(arn: &str) -> Option<Self> {
        let resource = arn.splitn(6, ':').nth(5)?;
        let segment = resource.split('/').next()?;
        [
            Self::Trail,
            Self::EventDataStore,
            Self::Channel,
            Self::Dashboard,
        ]
        .into_iter()
        .find(|kind| kind.arn_segment() == segment)
    }
}

/// Where the audit event of a call finds the resource it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditResource {
    /// The type, or `None` when it is read from the ARN (tags and resource policies).
    pub resource_type: Option<ResourceType>,
    /// Response members holding the resource's ARN, looked at first.
    pub response_members: &'static [&'static str],
    /// Request members naming the resource (a name, an id or an ARN).
    pub request_members: &'static [&'static str],
}

const fn named(
    resource_type: ResourceType,
    response_members: &'static [&'static str],
    request_members: &'static [&'static str],
) -> Option<AuditResource> {
    Some(AuditResource {
        resource_type: Some(resource_type),
        response_members,
        request_members,
    })
}

const fn by_arn(request_members: &'static [&'static str]) -> Option<AuditResource> {
    Some(AuditResource {
        resource_type: None,
        response_members: &[],
        request_members,
    })
}

/// Which rate limit an operation's calls count against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateClass {
    /// Control-plane calls: no per-account limit.
    ControlPlane,
    /// LookupEvents: limited per account (`--lookup-rate-limit`), answered with
    /// `ThrottlingException` as AWS limits it to 2 calls a second.
    EventHistory,
    /// Lake queries: StartQuery and its results.
    Query,
    /// Event ingest through a channel (PutAuditEvents).
    Ingest,
}

impl Operation {
    /// Whether the call only reads, as CloudTrail's `readOnly` records it.
    pub fn read_only(self) -> bool {
        use Operation::*;
        match self {
            DescribeQuery
            | DescribeTrails
            | GetChannel
            | GetDashboard
            | GetEventConfiguration
            | GetEventDataStore
            | GetEventSelectors
            | GetImport
            | GetInsightSelectors
            | GetQueryResults
            | GetResourcePolicy
            | GetTrail
            | GetTrailStatus
            | ListChannels
            | ListDashboards
            | ListEventDataStores
            | ListImportFailures
            | ListImports
            | ListInsightsData
            | ListInsightsMetricData
            | ListPublicKeys
            | ListQueries
            | ListTags
            | ListTrails
            | LookupEvents
            | SearchSampleQueries
            | GenerateQuery => true,
            AddTags
            | CancelQuery
            | CreateChannel
            | CreateDashboard
            | CreateEventDataStore
            | CreateTrail
            | DeleteChannel
            | DeleteDashboard
            | DeleteEventDataStore
            | DeleteResourcePolicy
            | DeleteTrail
            | DeregisterOrganizationDelegatedAdmin
            | DisableFederation
            | EnableFederation
            | PutAuditEvents
            | PutEventConfiguration
            | PutEventSelectors
            | PutInsightSelectors
            | PutResourcePolicy
            | RegisterOrganizationDelegatedAdmin
            | RemoveTags
            | RestoreEventDataStore
            | StartDashboardRefresh
            | StartEventDataStoreIngestion
            | StartImport
            | StartLogging
            | StartQuery
            | StopEventDataStoreIngestion
            | StopImport
            | StopLogging
            | UpdateChannel
            | UpdateDashboard
            | UpdateEventDataStore
            | UpdateTrail => false,
        }
    }

    /// The resource the call's audit event names in `resources`, if any.
    pub fn audit_resource(self) -> Option<AuditResource> {
        use Operation::*;
        use ResourceType::*;
        const TRAIL_ARN: &[&str] = &["TrailARN"];
        const EDS_ARN: &[&str] = &["EventDataStoreArn"];
        match self {
            CreateTrail | UpdateTrail => named(Trail, TRAIL_ARN, &["Name"]),
            DeleteTrail | GetTrail | GetTrailStatus | StartLogging | StopLogging => {
                named(Trail, TRAIL_ARN, &["Name"])
            }
            GetEventSelectors | PutEventSelectors | ListInsightsMetricData => {
                named(Trail, TRAIL_ARN, &["TrailName"])
            }
            // These name a trail or an event data store.
            GetInsightSelectors
            | PutInsightSelectors
            | GetEventConfiguration
            | PutEventConfiguration => Some(AuditResource {
                resource_type: None,
                response_members: &["TrailARN", "EventDataStoreArn"],
                request_members: &["TrailName", "EventDataStore"],
            }),
            AddTags | RemoveTags => by_arn(&["ResourceId"]),
            GetResourcePolicy | PutResourcePolicy | DeleteResourcePolicy => {
                by_arn(&["ResourceArn"])
            }
            CreateEventDataStore
            | GetEventDataStore
            | UpdateEventDataStore
            | DeleteEventDataStore
            | RestoreEventDataStore
            | StartEventDataStoreIngestion
            | StopEventDataStoreIngestion
            | EnableFederation
            | DisableFederation => named(EventDataStore, EDS_ARN, &["EventDataStore"]),
            CancelQuery | DescribeQuery | GetQueryResults | ListQueries => {
                named(EventDataStore, &[], &["EventDataStore"])
            }
            CreateChannel | GetChannel | UpdateChannel | DeleteChannel => {
                named(Channel, &["ChannelArn"], &["Channel"])
            }
            PutAuditEvents => named(Channel, &[], &["channelArn"]),
            // The destination store (Destinations holds exactly one ARN).
            StartImport | GetImport | StopImport => {
                named(EventDataStore, &["Destinations"], &["Destinations"])
            }
            CreateDashboard
            | GetDashboard
            | UpdateDashboard
            | DeleteDashboard
            | StartDashboardRefresh => named(Dashboard, &["DashboardArn"], &["DashboardId"]),
            DescribeTrails
            | ListTrails
            | ListTags
            | ListPublicKeys
            | LookupEvents
            | ListEventDataStores
            | ListChannels
            | ListDashboards
            | ListImports
            | ListImportFailures
            | StartQuery
            | GenerateQuery
            | SearchSampleQueries
            | ListInsightsData
            | RegisterOrganizationDelegatedAdmin
            | DeregisterOrganizationDelegatedAdmin => None,
        }
    }

    /// The rate limit the call counts against.
    pub fn rate_class(self) -> RateClass {
        use Operation::*;
        match self {
            LookupEvents => RateClass::EventHistory,
            StartQuery | GetQueryResults | DescribeQuery | CancelQuery | ListQueries
            | GenerateQuery => RateClass::Query,
            PutAuditEvents => RateClass::Ingest,
            AddTags
            | CreateChannel
            | CreateDashboard
            | CreateEventDataStore
            | CreateTrail
            | DeleteChannel
            | DeleteDashboard
            | DeleteEventDataStore
            | DeleteResourcePolicy
            | DeleteTrail
            | DeregisterOrganizationDelegatedAdmin
            | DescribeTrails
            | DisableFederation
            | EnableFederation
            | GetChannel
            | GetDashboard
            | GetEventConfiguration
            | GetEventDataStore
            | GetEventSelectors
            | GetImport
            | GetInsightSelectors
            | GetResourcePolicy
            | GetTrail
            | GetTrailStatus
            | ListChannels
            | ListDashboards
            | ListEventDataStores
            | ListImportFailures
            | ListImports
            | ListInsightsData
            | ListInsightsMetricData
            | ListPublicKeys
            | ListTags
            | ListTrails
            | PutEventConfiguration
            | PutEventSelectors
            | PutInsightSelectors
            | PutResourcePolicy
            | RegisterOrganizationDelegatedAdmin
            | RemoveTags
            | RestoreEventDataStore
            | SearchSampleQueries
            | StartDashboardRefresh
            | StartEventDataStoreIngestion
            | StartImport
            | StartLogging
            | StopEventDataStoreIngestion
            | StopImport
            | StopLogging
            | UpdateChannel
            | UpdateDashboard
            | UpdateEventDataStore
            | UpdateTrail => RateClass::ControlPlane,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_agrees_with_the_verb_for_every_operation() {
        for op in Operation::ALL {
            let by_verb = ["Get", "Describe", "List", "Lookup"]
                .iter()
                .any(|verb| op.name().starts_with(verb));
            let exceptions = [Operation::SearchSampleQueries, Operation::GenerateQuery];
            assert_eq!(op.read_only(), by_verb || exceptions.contains(&op), "{op}");
        }
    }

    #[test]
    fn resource_types_from_arns() {
        let of = ResourceType::of_arn;
        assert_eq!(
            of("arn:aws:cloudtrail:us-east-1:111122223333:trail/t"),
            Some(ResourceType::Trail)
        );
        assert_eq!(
            of("arn:aws:cloudtrail:us-east-1:111122223333:eventdatastore/0f1e"),
            Some(ResourceType::EventDataStore)
        );
        assert_eq!(of("arn:aws:s3:::bucket"), None);
        assert_eq!(of("t"), None);
    }
}

//! The managed dashboards OpenTrail ships, modelled on AWS's: every account has them in
//! every region (seeded into the metadata store on the account's first dashboard call
//! there). Their widgets read the event data store named by the refresh's
//! `$EventDataStoreId$` over `$StartTime$`..`$EndTime$`, bucketed by `$Period$`.

use crate::parameters::{END_TIME, EVENT_DATA_STORE_ID, PERIOD, START_TIME};
use crate::record::WidgetRecord;

/// A managed dashboard's name and widgets.
pub struct Managed {
    pub name: &'static str,
    pub widgets: Vec<WidgetRecord>,
}

/// The time filter every managed widget applies, after `FROM ?`.
const RANGE: &str = "eventTime >= '?' AND eventTime <= '?'";

/// One widget: `statement` uses `{range}` for [`RANGE`]; `period` says whether it opens
/// with a `date_trunc('?', eventTime)` bucket (its `$Period$` parameter, used twice).
struct Spec {
    title: &'static str,
    view: &'static [(&'static str, &'static str)],
    period: bool,
    statement: &'static str,
}

fn build(name: &'static str, specs: &[Spec]) -> Managed {
    let widgets = specs
        .iter()
        .enumerate()
        .map(|(index, spec)| {
            let statement = spec.statement.replace("{range}", RANGE);
            let mut parameters = Vec::new();
            if spec.period {
                parameters.push(PERIOD.to_owned());
            }
            parameters.push(EVENT_DATA_STORE_ID.to_owned());
            parameters.push(START_TIME.to_owned());
            parameters.push(END_TIME.to_owned());
            if spec.period {
                parameters.push(PERIOD.to_owned());
            }
            debug_assert_eq!(statement.matches('?').count(), parameters.len());
            let mut view_properties: std::collections::BTreeMap<String, String> = spec
                .view
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            view_properties.insert("Title".into(), spec.title.into());
            WidgetRecord {
                query_alias: format!("widget-{}", index + 1),
                query_statement: statement,
                query_parameters: Some(parameters),
                view_properties,
            }
        })
        .collect();
    Managed { name, widgets }
}

const LINE: &[(&str, &str)] = &[
    ("View", "LineChart"),
    ("XAxisColumn", "period"),
    ("YAxisColumn", "eventCount"),
];

/// Every managed dashboard, in the order ListDashboards shows them.
pub fn all() -> Vec<Managed> {
    vec![
        build(
            "AWSCloudTrail-Overview",
            &[
                Spec {
                    title: "Events over time",
                    view: LINE,
                    period: true,
                    statement: "SELECT date_trunc('?', eventTime) AS period, COUNT(*) AS eventCount FROM ? WHERE {range} GROUP BY date_trunc('?', eventTime) ORDER BY period",
                },
                Spec {
                    title: "Top services",
                    view: &[("View", "BarChart"), ("XAxisColumn", "eventSource"), ("YAxisColumn", "eventCount"), ("Orientation", "Horizontal")],
                    period: false,
                    statement: "SELECT eventSource, COUNT(*) AS eventCount FROM ? WHERE {range} GROUP BY eventSource ORDER BY eventCount DESC LIMIT 10",
                },
                Spec {
                    title: "Top APIs",
                    view: &[("View", "Table")],
                    period: false,
                    statement: "SELECT eventSource, eventName, COUNT(*) AS eventCount FROM ? WHERE {range} GROUP BY eventSource, eventName ORDER BY eventCount DESC LIMIT 10",
                },
                Spec {
                    title: "Events by Region",
                    view: &[("View", "PieChart"), ("LabelColumn", "awsRegion"), ("ValueColumn", "eventCount")],
                    period: false,
                    statement: "SELECT awsRegion, COUNT(*) AS eventCount FROM ? WHERE {range} GROUP BY awsRegion ORDER BY eventCount DESC",
                },
            ],
        ),
        build(
            "AWSCloudTrail-SecurityMonitoring",
            &[
                Spec {
                    title: "Access denied over time",
                    view: LINE,
                    period: true,
                    statement: "SELECT date_trunc('?', eventTime) AS period, COUNT(*) AS eventCount FROM ? WHERE {range} AND errorCode IN ('AccessDenied', 'AccessDeniedException', 'UnauthorizedOperation', 'Client.UnauthorizedOperation') GROUP BY date_trunc('?', eventTime) ORDER BY period",
                },
                Spec {
                    title: "Top principals denied access",
                    view: &[("View", "BarChart"), ("XAxisColumn", "arn"), ("YAxisColumn", "eventCount")],
                    period: false,
                    statement: "SELECT userIdentity.arn, COUNT(*) AS eventCount FROM ? WHERE {range} AND errorCode IN ('AccessDenied', 'AccessDeniedException', 'UnauthorizedOperation', 'Client.UnauthorizedOperation') GROUP BY userIdentity.arn ORDER BY eventCount DESC LIMIT 10",
                },
                Spec {
                    title: "Failed console sign-ins",
                    view: &[("View", "Table")],
                    period: false,
                    statement: "SELECT userIdentity.arn, sourceIPAddress, COUNT(*) AS eventCount FROM ? WHERE {range} AND eventName = 'ConsoleLogin' AND errorMessage IS NOT NULL GROUP BY userIdentity.arn, sourceIPAddress ORDER BY eventCount DESC LIMIT 10",
                },
                Spec {
                    title: "Logging and security configuration changes",
                    view: &[("View", "Table")],
                    period: false,
                    statement: "SELECT eventTime, eventSource, eventName, userIdentity.arn, sourceIPAddress FROM ? WHERE {range} AND eventName IN ('StopLogging', 'DeleteTrail', 'UpdateTrail', 'PutEventSelectors', 'DeleteEventDataStore', 'StopEventDataStoreIngestion', 'DeleteFlowLogs', 'DisableKey', 'ScheduleKeyDeletion', 'DeleteDetector', 'DeleteBucketPolicy', 'PutBucketPolicy') ORDER BY eventTime DESC LIMIT 100",
                },
            ],
        ),
        build(
            "AWSCloudTrail-IAMActivity",
            &[
                Spec {
                    title: "IAM events over time",
                    view: LINE,
                    period: true,
                    statement: "SELECT date_trunc('?', eventTime) AS period, COUNT(*) AS eventCount FROM ? WHERE {range} AND eventSource = 'iam.amazonaws.com' GROUP BY date_trunc('?', eventTime) ORDER BY period",
                },
                Spec {
                    title: "Top IAM APIs",
                    view: &[("View", "BarChart"), ("XAxisColumn", "eventName"), ("YAxisColumn", "eventCount")],
                    period: false,
                    statement: "SELECT eventName, COUNT(*) AS eventCount FROM ? WHERE {range} AND eventSource = 'iam.amazonaws.com' GROUP BY eventName ORDER BY eventCount DESC LIMIT 10",
                },
                Spec {
                    title: "IAM changes",
                    view: &[("View", "Table")],
                    period: false,
                    statement: "SELECT eventTime, eventName, userIdentity.arn, sourceIPAddress FROM ? WHERE {range} AND eventSource = 'iam.amazonaws.com' AND (eventName LIKE 'Create%' OR eventName LIKE 'Delete%' OR eventName LIKE 'Put%' OR eventName LIKE 'Attach%' OR eventName LIKE 'Detach%' OR eventName LIKE 'Update%') ORDER BY eventTime DESC LIMIT 100",
                },
            ],
        ),
        build(
            "AWSCloudTrail-ErrorAnalysis",
            &[
                Spec {
                    title: "Errors over time",
                    view: LINE,
                    period: true,
                    statement: "SELECT date_trunc('?', eventTime) AS period, COUNT(*) AS eventCount FROM ? WHERE {range} AND errorCode IS NOT NULL GROUP BY date_trunc('?', eventTime) ORDER BY period",
                },
                Spec {
                    title: "Top error codes",
                    view: &[("View", "PieChart"), ("LabelColumn", "errorCode"), ("ValueColumn", "eventCount")],
                    period: false,
                    statement: "SELECT errorCode, COUNT(*) AS eventCount FROM ? WHERE {range} AND errorCode IS NOT NULL GROUP BY errorCode ORDER BY eventCount DESC LIMIT 10",
                },
                Spec {
                    title: "Top failing APIs",
                    view: &[("View", "Table")],
                    period: false,
                    statement: "SELECT eventSource, eventName, errorCode, COUNT(*) AS eventCount FROM ? WHERE {range} AND errorCode IS NOT NULL GROUP BY eventSource, eventName, errorCode ORDER BY eventCount DESC LIMIT 10",
                },
            ],
        ),
        build(
            "AWSCloudTrail-UserActivity",
            &[
                Spec {
                    title: "Most active principals",
                    view: &[("View", "BarChart"), ("XAxisColumn", "arn"), ("YAxisColumn", "eventCount")],
                    period: false,
                    statement: "SELECT userIdentity.arn, COUNT(*) AS eventCount FROM ? WHERE {range} GROUP BY userIdentity.arn ORDER BY eventCount DESC LIMIT 10",
                },
                Spec {
                    title: "Events by identity type",
                    view: &[("View", "PieChart"), ("LabelColumn", "type"), ("ValueColumn", "eventCount")],
                    period: false,
                    statement: "SELECT userIdentity.type, COUNT(*) AS eventCount FROM ? WHERE {range} GROUP BY userIdentity.type ORDER BY eventCount DESC",
                },
                Spec {
                    title: "Top source IP addresses",
                    view: &[("View", "Table")],
                    period: false,
                    statement: "SELECT sourceIPAddress, COUNT(*) AS eventCount, COUNT(DISTINCT userIdentity.arn) AS principals FROM ? WHERE {range} GROUP BY sourceIPAddress ORDER BY eventCount DESC LIMIT 10",
                },
            ],
        ),
    ]
}

/// Whether `name` is reserved for AWS-managed dashboards (custom ones cannot take it).
pub fn is_reserved(name: &str) -> bool {
    name.starts_with("AWSCloudTrail-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_has_its_parameter() {
        let dashboards = all();
        assert_eq!(dashboards.len(), 5);
        for dashboard in dashboards {
            assert!(is_reserved(dashboard.name));
            for widget in &dashboard.widgets {
                let parameters = widget.query_parameters.as_ref().unwrap();
                assert_eq!(
                    widget.query_statement.matches('?').count(),
                    parameters.len(),
                    "{} {}",
                    dashboard.name,
                    widget.query_alias
                );
                assert!(
                    crate::validate::widgets(&[opentrail_operations::RequestWidget {
                        query_statement: widget.query_statement.clone(),
                        query_parameters: widget.query_parameters.clone(),
                        view_properties: widget.view_properties.clone(),
                    }])
                    .is_ok()
                );
            }
        }
    }
}

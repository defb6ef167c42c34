//! What the lake needs to know of an event data store; the control plane (crates/services)
//! owns stores and hands the lake their current specs through [`StoreCatalog`].

use opentrail_model::EventRecord;
use opentrail_selectors::{AdvancedEventSelector, TrailSelectors};

/// One CloudTrail-events event data store as the lake sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreSpec {
    /// The store id: the last part of its ARN and its table name in SQL.
    pub id: String,
    /// The owning account; only events whose `recipientAccountId` is this account go in.
    pub account: String,
    pub home_region: String,
    /// Events of every region when true, else only of `home_region`.
    pub multi_region: bool,
    /// The store's effective advanced selectors (the control plane fills in AWS's default,
    /// all management events, when none were given). An empty list selects nothing.
    pub advanced_selectors: Vec<AdvancedEventSelector>,
    /// `StartEventDataStoreIngestion`/`Stop…`: a stopped store receives nothing.
    pub ingestion_enabled: bool,
    /// Whole days of events kept, counted back from today (UTC) by event day.
    pub retention_days: u32,
}

/// The current event data stores, asked once per batch of events (keep it cheap).
pub trait StoreCatalog: Send + Sync + 'static {
    fn stores(&self) -> Vec<StoreSpec>;
}

/// A fixed list of stores (tests, and callers that rebuild it on change).
impl StoreCatalog for Vec<StoreSpec> {
    fn stores(&self) -> Vec<StoreSpec> {
        self.clone()
    }
}

/// A store's spec prepared for matching many events.
pub(crate) struct StoreFilter {
    pub(crate) spec: StoreSpec,
    selectors: TrailSelectors,
}

impl StoreFilter {
    pub(crate) fn new(spec: StoreSpec) -> Self {
        let selectors = TrailSelectors::Advanced(spec.advanced_selectors.clone());
        Self { spec, selectors }
    }

    /// Whether the store records `event`: its account, one of its regions, its selectors.
    pub(crate) fn admits(&self, event: &EventRecord) -> bool {
        self.spec.ingestion_enabled
            && event.recipient_account_id() == self.spec.account
            && (self.spec.multi_region || event.aws_region() == self.spec.home_region)
            && self.selectors.matches(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentrail_selectors::{AdvancedFieldSelector, Operator};

    fn spec() -> StoreSpec {
        StoreSpec {
            id: "store".into(),
            account: "123456789012".into(),
            home_region: "us-east-1".into(),
            multi_region: false,
            advanced_selectors: vec![AdvancedEventSelector {
                name: Some("Default management events".into()),
                field_selectors: vec![AdvancedFieldSelector::new("eventCategory")
                    .with(Operator::Equals, ["Management"])],
            }],
            ingestion_enabled: true,
            retention_days: 366,
        }
    }

    fn event(account: &str, region: &str, category: &str) -> EventRecord {
        EventRecord::from_json(&format!(
            r#"{{"eventVersion":"1.09","eventTime":"2024-01-01T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","awsRegion":"{region}","eventID":"e","eventType":"AwsApiCall","recipientAccountId":"{account}","eventCategory":"{category}","managementEvent":{}}}"#,
            category == "Management"
        ))
        .unwrap()
    }

    #[test]
    fn admits_by_account_region_selectors_and_ingestion() {
        let filter = StoreFilter::new(spec());
        assert!(filter.admits(&event("123456789012", "us-east-1", "Management")));
        assert!(!filter.admits(&event("210987654321", "us-east-1", "Management")));
        assert!(!filter.admits(&event("123456789012", "eu-west-1", "Management")));
        assert!(!filter.admits(&event("123456789012", "us-east-1", "Data")));
        let multi = StoreFilter::new(StoreSpec {
            multi_region: true,
            ..spec()
        });
        assert!(multi.admits(&event("123456789012", "eu-west-1", "Management")));
        let stopped = StoreFilter::new(StoreSpec {
            ingestion_enabled: false,
            ..spec()
        });
        assert!(!stopped.admits(&event("123456789012", "us-east-1", "Management")));
    }
}

//! CloudTrail Insights in the server: [`InsightsHub`] holds one Insights engine per account
//! whose trails enable Insights, and [`run`] feeds them from the durable event log, ticks
//! them every minute of the hub's clock and appends the Insights events to the log.

mod consumer;
mod hub;

pub use consumer::{run, ConsumerError, CONSUMER};
pub use hub::{EventFilter, InsightsDirectory, InsightsHub, InsightsSource};
pub use opentrail_insights::{
    EventCategories, InsightSelection, InsightType, MetricKey, Resolution,
};

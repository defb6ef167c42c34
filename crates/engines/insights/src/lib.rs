//! CloudTrail Insights: per-minute counts of write management (and, when selected, data)
//! API calls and of API errors, kept durably with 1-minute, 5-minute and 1-hour rollups;
//! a per-key seasonal baseline retrained daily on the trailing 28 days; and Insights
//! Start/End events in AWS's record shape. See the README for the model and its tuning.

mod config;
mod detector;
mod engine;
mod error;
mod hash;
mod key;
mod model;
mod record;
mod store;
mod tail;
mod topk;

pub use config::{DetectorConfig, EventCategories, InsightSelection, InsightType, InsightsConfig};
pub use engine::{EngineStats, InsightsEngine};
pub use error::InsightsError;
pub use key::{ApiCall, MetricKey};
pub use record::{Attribution, AttributionValue, InsightEvent, InsightState};
pub use store::Resolution;
pub use topk::ATTRIBUTES;

//! Typed CloudTrail and CloudTrail Data operation layer.
//!
//! Everything in `generated.rs` — the request/response structures, the
//! string enums, [`Operation`], [`Service`] and the [`op`] marker types — is
//! produced by `cargo xtask codegen` from the botocore models in `models/`.
//! This file holds the hand-written runtime those types rely on:
//! [`Timestamp`], [`Blob`], [`Unit`], [`HttpBinding`] and [`OperationShape`].

use std::fmt;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

mod generated;
mod policy;
pub use generated::*;
pub use policy::{AuditResource, RateClass, ResourceType};

/// Static description of one operation: ties a marker type in [`op`] to its
/// [`Operation`] and its input and output shapes.
pub trait OperationShape {
    const OPERATION: Operation;
    type Input: serde::de::DeserializeOwned + serde::Serialize + Send + 'static;
    type Output: serde::Serialize + serde::de::DeserializeOwned + Send + 'static;
}

/// The shape used when an operation models no input or no output: `{}` on the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Unit {}

/// A member bound to a non-body HTTP location in a rest-json operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HttpBinding {
    /// The botocore structure shape name.
    pub shape: &'static str,
    /// The botocore member name (the serde name of the field).
    pub member: &'static str,
    /// `querystring`, `header` or `uri`.
    pub location: &'static str,
    /// The name on the wire at that location.
    pub location_name: &'static str,
}

/// A botocore `timestamp`.
///
/// Accepted on input as a JSON number of epoch seconds (fractional allowed,
/// rounded to the millisecond), or a string holding RFC 3339 or epoch seconds.
/// Written as a JSON number of epoch seconds with millisecond precision: an integer
/// when the time is a whole second (`1688989503`), else a fraction (`1688989503.123`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(pub DateTime<Utc>);

impl Timestamp {
    /// Epoch seconds with millisecond precision, as written on the wire.
    pub fn epoch_seconds(self) -> f64 {
        self.0.timestamp_millis() as f64 / 1000.0
    }

    /// From epoch seconds, rounded to the millisecond; `None` when out of range.
    pub fn from_epoch_seconds(seconds: f64) -> Option<Timestamp> {
        if !seconds.is_finite() {
            return None;
        }
        let millis = (seconds * 1000.0).round();
        if millis.abs() > i64::MAX as f64 / 2.0 {
            return None;
        }
        DateTime::from_timestamp_millis(millis as i64).map(Timestamp)
    }

    /// Parses RFC 3339 or a numeric string of epoch seconds.
    pub fn parse(text: &str) -> Option<Timestamp> {
        if let Ok(time) = DateTime::parse_from_rfc3339(text) {
            return Some(Timestamp(time.with_timezone(&Utc)));
        }
        let seconds: f64 = text.trim().parse().ok()?;
        Timestamp::from_epoch_seconds(seconds)
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(time: DateTime<Utc>) -> Self {
        Timestamp(time)
    }
}

impl From<Timestamp> for DateTime<Utc> {
    fn from(time: Timestamp) -> Self {
        time.0
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let millis = self.0.timestamp_millis();
        if millis % 1000 == 0 {
            serializer.serialize_i64(millis / 1000)
        } else {
            serializer.serialize_f64(self.epoch_seconds())
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TimestampVisitor;

        impl TimestampVisitor {
            fn seconds<E: de::Error>(seconds: f64) -> Result<Timestamp, E> {
                Timestamp::from_epoch_seconds(seconds)
                    .ok_or_else(|| E::custom(format!("timestamp out of range: {seconds}")))
            }
        }

        impl Visitor<'_> for TimestampVisitor {
            type Value = Timestamp;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("epoch seconds or an RFC 3339 timestamp")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
                Self::seconds(v as f64)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
                Self::seconds(v as f64)
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Timestamp, E> {
                Self::seconds(v)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
                Timestamp::parse(v).ok_or_else(|| E::custom(format!("invalid timestamp: {v:?}")))
            }
        }

        deserializer.deserialize_any(TimestampVisitor)
    }
}

/// A botocore `blob`: standard base64 in a JSON string on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Blob(pub Vec<u8>);

impl From<Vec<u8>> for Blob {
    fn from(bytes: Vec<u8>) -> Self {
        Blob(bytes)
    }
}

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map(Blob)
            .map_err(|e| de::Error::custom(format!("invalid base64 blob: {e}")))
    }
}

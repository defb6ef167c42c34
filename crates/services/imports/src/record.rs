//! What the metadata store keeps of an import: the import itself, its finished source
//! files and its failures. Collections are keyed by import id first, so one import's
//! documents list together.

use chrono::{DateTime, Utc};
use opentrail_operations::{
    ImportFailureListItem, ImportFailureStatus, ImportSource, ImportStatistics, ImportStatus,
    ImportsListItem, S3ImportSource, Timestamp,
};
use serde::{Deserialize, Serialize};

/// Imports, keyed by import id.
pub(crate) const IMPORTS: &str = "imports";
/// Source files an import finished: `<import id>/<object key>` → events copied.
pub(crate) const FILES_DONE: &str = "import_files";
/// Sources whose chunks an import finished (a group of small files, named as its chunks
/// are; a file read alone is done when its key is in [`FILES_DONE`]): `<import id>/<source>`
/// → how many files it held.
pub(crate) const SOURCES_DONE: &str = "import_sources";
/// Failures: `<import id>/<location>` → [`FailureRecord`].
pub(crate) const FAILURES: &str = "import_failures";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Initializing,
    InProgress,
    Failed,
    Stopped,
    Completed,
}

impl Status {
    pub fn to_wire(self) -> ImportStatus {
        match self {
            Self::Initializing => ImportStatus::Initializing,
            Self::InProgress => ImportStatus::InProgress,
            Self::Failed => ImportStatus::Failed,
            Self::Stopped => ImportStatus::Stopped,
            Self::Completed => ImportStatus::Completed,
        }
    }

    pub fn from_wire(status: &ImportStatus) -> Option<Self> {
        Some(match status {
            ImportStatus::Initializing => Self::Initializing,
            ImportStatus::InProgress => Self::InProgress,
            ImportStatus::Failed => Self::Failed,
            ImportStatus::Stopped => Self::Stopped,
            ImportStatus::Completed => Self::Completed,
            ImportStatus::Unknown(_) => return None,
        })
    }

    /// Whether a background copy runs (or must be resumed after a restart).
    pub fn is_ongoing(self) -> bool {
        matches!(self, Self::Initializing | Self::InProgress)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statistics {
    pub prefixes_found: i64,
    pub prefixes_completed: i64,
    pub files_completed: i64,
    pub events_completed: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportRecord {
    pub id: String,
    pub account: String,
    pub region: String,
    /// Destination event data store ARNs, as given.
    pub destinations: Vec<String>,
    /// Destination store ids (their lake folders), in the same order.
    pub destination_ids: Vec<String>,
    pub location_uri: String,
    pub bucket_region: String,
    pub access_role_arn: String,
    pub start_event_time: Option<DateTime<Utc>>,
    pub end_event_time: Option<DateTime<Utc>>,
    pub status: Status,
    pub statistics: Statistics,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ImportRecord {
    pub fn source(&self) -> ImportSource {
        ImportSource {
            s3: S3ImportSource {
                s3_location_uri: self.location_uri.clone(),
                s3_bucket_region: self.bucket_region.clone(),
                s3_bucket_access_role_arn: self.access_role_arn.clone(),
            },
        }
    }

    pub fn wire_statistics(&self, failed_entries: i64) -> ImportStatistics {
        ImportStatistics {
            prefixes_found: Some(self.statistics.prefixes_found),
            prefixes_completed: Some(self.statistics.prefixes_completed),
            files_completed: Some(self.statistics.files_completed),
            events_completed: Some(self.statistics.events_completed),
            failed_entries: Some(failed_entries),
        }
    }

    pub fn list_item(&self) -> ImportsListItem {
        ImportsListItem {
            import_id: Some(self.id.clone()),
            import_status: Some(self.status.to_wire()),
            destinations: Some(self.destinations.clone()),
            created_timestamp: Some(Timestamp(self.created_at)),
            updated_timestamp: Some(Timestamp(self.updated_at)),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureRecord {
    pub location: String,
    /// FAILED, or SUCCEEDED once a later run of the import read the file.
    pub status: String,
    pub error_type: String,
    pub error_message: String,
    pub updated_at: DateTime<Utc>,
}

impl FailureRecord {
    pub fn list_item(&self) -> ImportFailureListItem {
        ImportFailureListItem {
            location: Some(self.location.clone()),
            status: Some(match self.status.as_str() {
                "SUCCEEDED" => ImportFailureStatus::Succeeded,
                "RETRY" => ImportFailureStatus::Retry,
                _ => ImportFailureStatus::Failed,
            }),
            error_type: Some(self.error_type.clone()),
            error_message: Some(self.error_message.clone()),
            last_updated_time: Some(Timestamp(self.updated_at)),
        }
    }
}

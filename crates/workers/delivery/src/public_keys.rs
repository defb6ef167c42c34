//! ListPublicKeys: the digest signing keys of a region valid in a time range.

use crate::KeyStore;
use chrono::{DateTime, Utc};
use opentrail_model::Region;
use opentrail_operations::{Blob, ListPublicKeysRequest, ListPublicKeysResponse, PublicKey};

/// Why a ListPublicKeys request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublicKeysError {
    #[error("NextToken is not valid: ListPublicKeys returned every key in one page")]
    InvalidToken,
    #[error("StartTime must be earlier than or equal to EndTime")]
    InvalidTimeRange,
}

impl opentrail_wire::AwsError for PublicKeysError {
    fn code(&self) -> &'static str {
        match self {
            Self::InvalidToken => "InvalidTokenException",
            Self::InvalidTimeRange => "InvalidTimeRangeException",
        }
    }
}

/// The keys of `region` valid at some time in [StartTime, EndTime] (each defaults to now).
pub fn list_public_keys(
    keys: &KeyStore,
    region: &Region,
    now: DateTime<Utc>,
    input: ListPublicKeysRequest,
) -> Result<ListPublicKeysResponse, PublicKeysError> {
    if input.next_token.is_some() {
        return Err(PublicKeysError::InvalidToken);
    }
    let start = input.start_time.map_or(now, |t| t.0);
    let end = input.end_time.map_or(now, |t| t.0);
    if start > end {
        return Err(PublicKeysError::InvalidTimeRange);
    }
    let list = keys
        .public_keys(region, start, end)
        .into_iter()
        .map(|key| PublicKey {
            value: Some(Blob(key.der)),
            validity_start_time: Some(key.validity_start.into()),
            validity_end_time: Some(key.validity_end.into()),
            fingerprint: Some(key.fingerprint),
        })
        .collect();
    Ok(ListPublicKeysResponse {
        public_key_list: Some(list),
        next_token: None,
    })
}

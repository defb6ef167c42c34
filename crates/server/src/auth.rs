//! Who is calling: SigV4 verification against the data dir's access keys.

use crate::config::AuthMode;
use chrono::{DateTime, Utc};
use opentrail_meta::MetaStore;
use opentrail_model::{AccountId, Region};
use opentrail_sigv4::{parse_authorization, verify, AuthError, RequestParts};
use opentrail_wire::ApiError;
use std::sync::Arc;

/// The authenticated caller of one request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub account: AccountId,
    pub region: Region,
    pub access_key_id: String,
    pub user_name: String,
    pub is_root: bool,
    /// May ingest events whose recipientAccountId is another account.
    pub ingest_any_account: bool,
    /// May ingest records claiming to be this server's own audit events.
    pub forward_audit: bool,
}

pub struct Authenticator {
    mode: AuthMode,
    meta: Arc<dyn MetaStore>,
    default_account: AccountId,
}

fn auth_error(e: AuthError) -> ApiError {
    ApiError::new(e.code(), e.message())
}

impl Authenticator {
    pub fn new(mode: AuthMode, meta: Arc<dyn MetaStore>, default_account: AccountId) -> Self {
        Self {
            mode,
            meta,
            default_account,
        }
    }

    /// Verifies the request's signature for `service` and returns the caller.
    pub fn authenticate(
        &self,
        request: &RequestParts<'_>,
        service: &str,
        now: DateTime<Utc>,
    ) -> Result<Caller, ApiError> {
        let auth = parse_authorization(request).map_err(auth_error)?;
        let region = Region::parse(&auth.region).map_err(|_| {
            ApiError::new(
                "InvalidSignatureException",
                format!(
                    "Credential scope region '{}' is not a valid region name",
                    auth.region
                ),
            )
        })?;
        let key = tokio::task::block_in_place(|| self.meta.get_access_key(&auth.access_key_id))
            .map_err(|e| ApiError::internal(format!("failed to look up access key: {e}")))?;
        if self.mode == AuthMode::Open {
            let (account, user_name, is_root, ingest_any_account, forward_audit) = match &key {
                Some(k) => (
                    AccountId::parse(&k.account_id)
                        .unwrap_or_else(|_| self.default_account.clone()),
                    k.user_name.clone(),
                    k.is_root,
                    k.ingest_any_account,
                    k.forward_audit,
                ),
                None => (
                    self.default_account.clone(),
                    auth.access_key_id.clone(),
                    false,
                    false,
                    false,
                ),
            };
            return Ok(Caller {
                account,
                region,
                access_key_id: auth.access_key_id,
                user_name,
                is_root,
                ingest_any_account,
                forward_audit,
            });
        }
        let Some(key) = key else {
            return Err(auth_error(AuthError::UnrecognizedClient));
        };
        verify(request, &auth, &key.secret_access_key, service, now).map_err(auth_error)?;
        let account = AccountId::parse(&key.account_id)
            .map_err(|e| ApiError::internal(format!("stored access key has a bad account: {e}")))?;
        Ok(Caller {
            account,
            region,
            access_key_id: key.access_key_id,
            user_name: key.user_name,
            is_root: key.is_root,
            ingest_any_account: key.ingest_any_account,
            forward_audit: key.forward_audit,
        })
    }
}

//! Who is calling: SigV4 verification against the data dir's access keys.

use chrono::{DateTime, Utc};
use opentrail_meta::MetaStore;
use opentrail_model::{AccountId, Principal, PrincipalKind, Region, RequestContext};
use opentrail_sigv4::{
    check_headers, check_payload, claimed_payload_hash, parse_authorization, sha256_hex,
    verify_signature, AuthError, RequestParts,
};
use opentrail_wire::ApiError;
use std::sync::Arc;

/// How requests are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Verify SigV4 signatures against the access keys.
    Sigv4,
    /// Development only: accept any well-formed SigV4 request without checking the signature.
    Open,
}

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

impl Caller {
    /// What every service call gets: the account, the region and the principal.
    pub fn request_context(&self) -> RequestContext {
        RequestContext {
            account: self.account.clone(),
            region: self.region.clone(),
            principal: Principal {
                access_key_id: self.access_key_id.clone(),
                kind: if self.is_root {
                    PrincipalKind::Root
                } else {
                    PrincipalKind::User {
                        name: self.user_name.clone(),
                    }
                },
            },
        }
    }

    /// The caller's IAM principal ARN, as `userIdentity.arn` shows it.
    pub fn principal_arn(&self) -> String {
        if self.is_root {
            format!("arn:aws:iam::{}:root", self.account)
        } else {
            format!("arn:aws:iam::{}:user/{}", self.account, self.user_name)
        }
    }
}

pub struct Authenticator {
    mode: AuthMode,
    meta: Arc<dyn MetaStore>,
    default_account: AccountId,
}

impl Authenticator {
    pub fn new(mode: AuthMode, meta: Arc<dyn MetaStore>, default_account: AccountId) -> Self {
        Self {
            mode,
            meta,
            default_account,
        }
    }

    /// Authenticates a request on its headers alone, before its body is read: the
    /// `Authorization` structure, the access key, the scope, the clock and the signed
    /// headers; and the signature itself when `x-amz-content-sha256` announces the
    /// body's SHA-256. [`Authenticator::finish`] completes it with the body.
    pub fn begin(
        &self,
        parts: &http::request::Parts,
        service: &str,
        now: DateTime<Utc>,
    ) -> Result<PendingAuth, ApiError> {
        let request = RequestParts {
            method: &parts.method,
            uri: &parts.uri,
            headers: &parts.headers,
            body: &[],
        };
        let auth = parse_authorization(&request)?;
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
            return Ok(PendingAuth {
                caller: Caller {
                    account,
                    region,
                    access_key_id: auth.access_key_id,
                    user_name,
                    is_root,
                    ingest_any_account,
                    forward_audit,
                },
                check: BodyCheck::None,
            });
        }
        let Some(key) = key else {
            return Err(AuthError::UnrecognizedClient.into());
        };
        check_headers(&parts.headers, &auth, service, now)?;
        let account = AccountId::parse(&key.account_id)
            .map_err(|e| ApiError::internal(format!("stored access key has a bad account: {e}")))?;
        let check = match claimed_payload_hash(&parts.headers) {
            Some(claimed) => {
                verify_signature(
                    &parts.method,
                    &parts.uri,
                    &parts.headers,
                    &auth,
                    &key.secret_access_key,
                    &claimed,
                )?;
                BodyCheck::Hash
            }
            None => BodyCheck::Signature {
                auth,
                secret_access_key: key.secret_access_key,
            },
        };
        Ok(PendingAuth {
            caller: Caller {
                account,
                region,
                access_key_id: key.access_key_id,
                user_name: key.user_name,
                is_root: key.is_root,
                ingest_any_account: key.ingest_any_account,
                forward_audit: key.forward_audit,
            },
            check,
        })
    }

    /// Completes [`Authenticator::begin`] with the body: the signature over its
    /// SHA-256, or its SHA-256 against the one the signature covered.
    pub fn finish(
        &self,
        pending: PendingAuth,
        parts: &http::request::Parts,
        body: &[u8],
    ) -> Result<Caller, ApiError> {
        match &pending.check {
            BodyCheck::None => {}
            BodyCheck::Hash => {
                check_payload(&parts.headers, &sha256_hex(body))?;
            }
            BodyCheck::Signature {
                auth,
                secret_access_key,
            } => verify_signature(
                &parts.method,
                &parts.uri,
                &parts.headers,
                auth,
                secret_access_key,
                &sha256_hex(body),
            )?,
        }
        Ok(pending.caller)
    }
}

/// What is left to check of a request once its headers passed.
enum BodyCheck {
    /// Nothing (`--auth open`).
    None,
    /// The signature covered `x-amz-content-sha256`: the body must have that hash.
    Hash,
    /// The signature is computed over the body's hash.
    Signature {
        auth: opentrail_sigv4::Authorization,
        secret_access_key: String,
    },
}

/// A request whose headers authenticated it; its body is still to be checked.
pub struct PendingAuth {
    caller: Caller,
    check: BodyCheck,
}

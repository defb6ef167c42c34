//! AWS Signature Version 4 (`AWS4-HMAC-SHA256`, signature in the
//! `Authorization` header): verification of received requests and signing of
//! outgoing ones.
//!
//! Server side: [`parse_authorization`] to learn the access key, look up its
//! secret, then [`verify`]; or, to authenticate before reading the body,
//! [`check_headers`], [`claimed_payload_hash`], [`verify_signature`] and
//! [`check_payload`]. The payload is always signed, as for every AWS service
//! but S3. Client side: [`sign`].

mod authorization;
mod canonical;
mod encoding;
mod error;
mod sign;
mod verify;

pub use authorization::{parse_amz_date, parse_authorization, Authorization, RequestParts};
pub use canonical::{
    canonical_request, format_amz_date, sha256_hex, signature, signing_key, string_to_sign, Scope,
    UNSIGNED_PAYLOAD,
};
pub use encoding::{canonical_query, encode_pairs, percent_decode, uri_encode, PathOptions};
pub use error::AuthError;
pub use sign::{sign, PayloadHash, SigningParams};
pub use verify::{
    check_headers, check_payload, claimed_payload_hash, verify, verify_signature,
    MAX_CLOCK_SKEW_MINUTES,
};

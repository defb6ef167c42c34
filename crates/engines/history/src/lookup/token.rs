//! NextToken: an opaque, tamper-evident page position. The token carries the sort key of
//! the last event returned and a digest of the query parameters, sealed with an
//! HMAC-SHA256 under a per-store secret, so a forged, altered, or re-targeted token
//! (different attribute, time range, category, account or region) is refused.

use super::error::LookupError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const VERSION: u8 = 1;
const BINDING_LEN: usize = 16;
const MAC_LEN: usize = 16;
const PAYLOAD_LEN: usize = 1 + 8 + BINDING_LEN;
const TOKEN_LEN: usize = PAYLOAD_LEN + MAC_LEN;

/// A digest of the parameters a token is valid for.
pub(crate) type Binding = [u8; BINDING_LEN];

/// The per-store secret that seals tokens.
#[derive(Clone)]
pub(crate) struct TokenKey {
    secret: [u8; 32],
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    pub(crate) fn new(secret: [u8; 32]) -> Self {
        Self { secret }
    }

    fn mac(&self, payload: &[u8]) -> Hmac<Sha256> {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("hmac accepts any key length"));
        mac.update(payload);
        mac
    }

    /// Seals a position (the sort key of the last event returned) for `binding`.
    pub(crate) fn encode(&self, position: u64, binding: &Binding) -> String {
        let mut token = Vec::with_capacity(TOKEN_LEN);
        token.push(VERSION);
        token.extend_from_slice(&position.to_be_bytes());
        token.extend_from_slice(binding);
        let tag = self.mac(&token).finalize().into_bytes();
        token.extend_from_slice(&tag[..MAC_LEN]);
        URL_SAFE_NO_PAD.encode(token)
    }

    /// Opens a token, returning the position it carries when it was sealed by this store
    /// for exactly `binding`.
    pub(crate) fn decode(&self, token: &str, binding: &Binding) -> Result<u64, LookupError> {
        let invalid = || LookupError::InvalidNextToken("invalid NextToken".to_owned());
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
        if bytes.len() != TOKEN_LEN || bytes[0] != VERSION {
            return Err(invalid());
        }
        let (payload, tag) = bytes.split_at(PAYLOAD_LEN);
        self.mac(payload)
            .verify_truncated_left(tag)
            .map_err(|_| invalid())?;
        if payload[9..] != binding[..] {
            return Err(LookupError::InvalidNextToken(
                "NextToken was issued for a request with different parameters".to_owned(),
            ));
        }
        let mut position = [0u8; 8];
        position.copy_from_slice(&payload[1..9]);
        Ok(u64::from_be_bytes(position))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> TokenKey {
        TokenKey::new([7; 32])
    }

    proptest! {
        #[test]
        fn round_trips(position in any::<u64>(), binding in any::<[u8; 16]>()) {
            let token = key().encode(position, &binding);
            prop_assert_eq!(key().decode(&token, &binding), Ok(position));
        }

        #[test]
        fn refuses_any_altered_byte(
            position in any::<u64>(),
            binding in any::<[u8; 16]>(),
            index in 0usize..TOKEN_LEN,
            flip in 1u8..=255,
        ) {
            let token = key().encode(position, &binding);
            let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
            bytes[index] ^= flip;
            let altered = URL_SAFE_NO_PAD.encode(bytes);
            prop_assert!(matches!(
                key().decode(&altered, &binding),
                Err(LookupError::InvalidNextToken(_))
            ));
        }

        #[test]
        fn refuses_other_bindings(
            position in any::<u64>(),
            binding in any::<[u8; 16]>(),
            other in any::<[u8; 16]>(),
        ) {
            prop_assume!(binding != other);
            let token = key().encode(position, &binding);
            prop_assert!(matches!(
                key().decode(&token, &other),
                Err(LookupError::InvalidNextToken(_))
            ));
        }

        #[test]
        fn refuses_garbage(token in ".{0,80}") {
            prop_assert!(key().decode(&token, &[0; 16]).is_err());
        }
    }

    #[test]
    fn refuses_tokens_of_another_store() {
        let token = key().encode(5, &[1; 16]);
        assert!(TokenKey::new([8; 32]).decode(&token, &[1; 16]).is_err());
    }
}

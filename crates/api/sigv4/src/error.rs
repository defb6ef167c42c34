//! The authentication failures a SigV4 request can produce, each tied to the
//! AWS error code a JSON 1.1 service answers with and AWS's own message text.

/// Why a request failed SigV4 authentication.
///
/// The `String` payloads hold the complete message AWS sends back, so the
/// server can answer `{"__type": err.code(), "message": err.message()}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The request carries no `Authorization` header at all.
    #[error("{}", MISSING_AUTHENTICATION_TOKEN)]
    MissingAuthenticationToken,
    /// The `Authorization` header or its companion headers are malformed.
    #[error("{0}")]
    IncompleteSignature(String),
    /// The signature is well formed but wrong, expired, or scoped wrongly.
    #[error("{0}")]
    InvalidSignature(String),
    /// The access key is unknown. Never produced by this crate: only the
    /// caller knows which keys exist.
    #[error("{}", UNRECOGNIZED_CLIENT)]
    UnrecognizedClient,
}

pub(crate) const MISSING_AUTHENTICATION_TOKEN: &str = "Missing Authentication Token";

pub(crate) const UNRECOGNIZED_CLIENT: &str =
    "The security token included in the request is invalid.";

pub(crate) const SIGNATURE_DOES_NOT_MATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/// S3's text for `x-amz-*` headers left out of `SignedHeaders`, followed by their names.
pub(crate) const HEADERS_NOT_SIGNED: &str =
    "There were headers present in the request which were not signed";

pub(crate) const CONTENT_SHA256_MISMATCH: &str =
    "The provided 'x-amz-content-sha256' header does not match what was computed.";

impl AuthError {
    /// The AWS error code (`__type` of a JSON 1.1 error body).
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            AuthError::IncompleteSignature(_) => "IncompleteSignatureException",
            AuthError::InvalidSignature(_) => "InvalidSignatureException",
            AuthError::UnrecognizedClient => "UnrecognizedClientException",
        }
    }

    /// The message AWS sends with [`AuthError::code`].
    pub fn message(&self) -> String {
        self.to_string()
    }

    pub(crate) fn signature_does_not_match() -> Self {
        AuthError::InvalidSignature(SIGNATURE_DOES_NOT_MATCH.to_owned())
    }
}

impl opentrail_wire::AwsError for AuthError {
    fn code(&self) -> &'static str {
        AuthError::code(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_messages_are_aws_texts() {
        let missing = AuthError::MissingAuthenticationToken;
        assert_eq!(missing.code(), "MissingAuthenticationTokenException");
        assert_eq!(missing.message(), "Missing Authentication Token");

        let mismatch = AuthError::signature_does_not_match();
        assert_eq!(mismatch.code(), "InvalidSignatureException");
        assert!(mismatch
            .message()
            .starts_with("The request signature we calculated"));

        assert_eq!(
            AuthError::IncompleteSignature("x".into()).code(),
            "IncompleteSignatureException"
        );
        assert_eq!(
            AuthError::UnrecognizedClient.code(),
            "UnrecognizedClientException"
        );
        assert_eq!(
            AuthError::UnrecognizedClient.message(),
            "The security token included in the request is invalid."
        );
    }
}

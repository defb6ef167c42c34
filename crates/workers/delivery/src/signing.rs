//! RSA-2048 PKCS#1 v1.5 signatures over SHA-256 (`SHA256withRSA`), the key encodings
//! CloudTrail publishes (DER PKCS#1 `RSAPublicKey`) and their MD5 fingerprints.

use md5::Md5;
use rsa::pkcs1::{
    DecodeRsaPrivateKey, DecodeRsaPublicKey, EncodeRsaPrivateKey, EncodeRsaPublicKey,
};
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256};

use crate::error::DeliveryError;

/// The `signature-algorithm` metadata value and the digest's `digestSignatureAlgorithm`.
pub const SIGNATURE_ALGORITHM: &str = "SHA256withRSA";

/// Modulus size of digest signing keys.
pub const KEY_BITS: usize = 2048;

/// A private key that signs digests, with its public half as CloudTrail publishes it.
pub struct DigestSigningKey {
    signer: SigningKey<Sha256>,
    public_der: Vec<u8>,
    fingerprint: String,
}

impl std::fmt::Debug for DigestSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestSigningKey")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl DigestSigningKey {
    /// A fresh RSA-2048 key. Slow (a fraction of a second optimised, much more in debug
    /// builds): call it off the async runtime.
    pub fn generate() -> Result<Self, DeliveryError> {
        let private = RsaPrivateKey::new(&mut rand::thread_rng(), KEY_BITS)
            .map_err(|e| DeliveryError::Keys(format!("cannot generate an RSA key: {e}")))?;
        Self::from_private(private)
    }

    /// Reads a PKCS#1 PEM private key (`-----BEGIN RSA PRIVATE KEY-----`).
    pub fn from_pkcs1_pem(pem: &str) -> Result<Self, DeliveryError> {
        let private = RsaPrivateKey::from_pkcs1_pem(pem)
            .map_err(|e| DeliveryError::Keys(format!("invalid PKCS#1 private key: {e}")))?;
        Self::from_private(private)
    }

    pub fn to_pkcs1_pem(&self) -> String {
        self.signer
            .as_ref()
            .to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)
            .expect("an RSA key encodes")
            .to_string()
    }

    fn from_private(private: RsaPrivateKey) -> Result<Self, DeliveryError> {
        let public_der = RsaPublicKey::from(&private)
            .to_pkcs1_der()
            .map_err(|e| DeliveryError::Keys(format!("cannot encode public key: {e}")))?
            .as_bytes()
            .to_vec();
        Ok(DigestSigningKey {
            fingerprint: fingerprint(&public_der),
            signer: SigningKey::<Sha256>::new(private),
            public_der,
        })
    }

    /// PKCS#1 v1.5 signature of SHA-256(`message`).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.signer.sign(message).to_vec()
    }

    /// DER PKCS#1 `RSAPublicKey`, the `Value` of a `ListPublicKeys` entry.
    pub fn public_key_der(&self) -> &[u8] {
        &self.public_der
    }

    /// Hex MD5 of [`Self::public_key_der`], the digest's `digestPublicKeyFingerprint`.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

/// Hex MD5 of a DER public key.
pub fn fingerprint(public_key_der: &[u8]) -> String {
    hex::encode(Md5::digest(public_key_der))
}

/// Whether `signature` is `SHA256withRSA` of `message` under the DER PKCS#1 public key.
pub fn verify_signature(public_key_der: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let Ok(public) = RsaPublicKey::from_pkcs1_der(public_key_der) else {
        return false;
    };
    let Ok(signature) = Signature::try_from(signature) else {
        return false;
    };
    VerifyingKey::<Sha256>::new(public)
        .verify(message, &signature)
        .is_ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fixed key: generating RSA keys in debug builds takes too long for unit tests.
    pub(crate) const TEST_KEY_PEM: &str = include_str!("../tests/fixtures/test-key-1.pem");

    #[test]
    fn signs_and_verifies_with_the_published_key() {
        let key = DigestSigningKey::from_pkcs1_pem(TEST_KEY_PEM).unwrap();
        let signature = key.sign(b"message");
        assert_eq!(signature.len(), KEY_BITS / 8);
        assert!(verify_signature(
            key.public_key_der(),
            b"message",
            &signature
        ));
        assert!(!verify_signature(
            key.public_key_der(),
            b"messagE",
            &signature
        ));
        assert_eq!(key.fingerprint().len(), 32);
        // DER PKCS#1 RSAPublicKey of a 2048-bit key: SEQUENCE of 270 bytes.
        assert_eq!(&key.public_key_der()[..4], &[0x30, 0x82, 0x01, 0x0a]);
        let again = DigestSigningKey::from_pkcs1_pem(&key.to_pkcs1_pem()).unwrap();
        assert_eq!(again.fingerprint(), key.fingerprint());
    }
}

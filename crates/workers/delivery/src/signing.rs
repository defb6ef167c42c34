//! RSA-2048 PKCS#1 v1.5 signatures over SHA-256 (`SHA256withRSA`), the key encodings
//! CloudTrail publishes (DER PKCS#1 `RSAPublicKey`) and their MD5 fingerprints.
//!
//! The RSA arithmetic is aws-lc-rs (AWS-LC, constant-time, maintained). Private keys are
//! kept on disk as PKCS#1 PEM (`-----BEGIN RSA PRIVATE KEY-----`), as before; PKCS#1 v1.5
//! is deterministic, so a key signs a message to the same bytes whatever the library.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    KeyPair, RsaKeyPair, UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256,
};
use base64::Engine;
use md5::Md5;
use sha2::Digest;

use crate::error::DeliveryError;

/// The `signature-algorithm` metadata value and the digest's `digestSignatureAlgorithm`.
pub const SIGNATURE_ALGORITHM: &str = "SHA256withRSA";

/// Modulus size of digest signing keys.
pub const KEY_BITS: usize = 2048;

const PKCS1_PEM_LABEL: &str = "RSA PRIVATE KEY";
const PKCS8_PEM_LABEL: &str = "PRIVATE KEY";

/// A private key that signs digests, with its public half as CloudTrail publishes it.
pub struct DigestSigningKey {
    key_pair: RsaKeyPair,
    /// DER PKCS#1 `RSAPrivateKey`, what [`Self::to_pkcs1_pem`] writes.
    private_der: Vec<u8>,
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
    /// A fresh RSA-2048 key. Takes tens of milliseconds: call it off the async runtime.
    pub fn generate() -> Result<Self, DeliveryError> {
        let cannot =
            |what: &str| DeliveryError::Keys(format!("cannot generate an RSA key: {what}"));
        let key_pair =
            RsaKeyPair::generate(KeySize::Rsa2048).map_err(|e| cannot(&e.to_string()))?;
        let pkcs8 = key_pair.as_der().map_err(|e| cannot(&e.to_string()))?;
        let private_der = pkcs1_of_pkcs8(AsRef::<[u8]>::as_ref(&*pkcs8))
            .ok_or_else(|| cannot("unexpected PKCS#8 encoding"))?
            .to_vec();
        Ok(Self::new(key_pair, private_der))
    }

    /// Reads a PKCS#1 PEM private key (`-----BEGIN RSA PRIVATE KEY-----`, what
    /// [`Self::to_pkcs1_pem`] writes) or, for keys made with other tools, a PKCS#8 one
    /// (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pkcs1_pem(pem: &str) -> Result<Self, DeliveryError> {
        let invalid = |why: &str| DeliveryError::Keys(format!("invalid PKCS#1 private key: {why}"));
        let (label, der) = pem_decode(pem).ok_or_else(|| invalid("not a PEM document"))?;
        let private_der = match label {
            PKCS1_PEM_LABEL => der,
            PKCS8_PEM_LABEL => pkcs1_of_pkcs8(&der)
                .ok_or_else(|| invalid("not an RSA PKCS#8 key"))?
                .to_vec(),
            other => return Err(invalid(&format!("unexpected PEM label {other}"))),
        };
        let key_pair = RsaKeyPair::from_der(&private_der).map_err(|e| invalid(&e.to_string()))?;
        Ok(Self::new(key_pair, private_der))
    }

    pub fn to_pkcs1_pem(&self) -> String {
        pem_encode(PKCS1_PEM_LABEL, &self.private_der)
    }

    fn new(key_pair: RsaKeyPair, private_der: Vec<u8>) -> Self {
        // ring's and aws-lc-rs's RSA public key is the DER PKCS#1 `RSAPublicKey`.
        let public_der = key_pair.public_key().as_ref().to_vec();
        DigestSigningKey {
            fingerprint: fingerprint(&public_der),
            key_pair,
            private_der,
            public_der,
        }
    }

    /// PKCS#1 v1.5 signature of SHA-256(`message`).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let mut signature = vec![0; self.key_pair.public_modulus_len()];
        // PKCS#1 v1.5 padding takes no randomness; the RNG is the API's (blinding).
        self.key_pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message,
                &mut signature,
            )
            .expect("signing with a valid RSA key and a modulus-sized buffer succeeds");
        signature
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

/// Whether `signature` is `SHA256withRSA` of `message` under the DER PKCS#1 public key
/// (2048 to 8192 bits).
pub fn verify_signature(public_key_der: &[u8], message: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_key_der)
        .verify(message, signature)
        .is_ok()
}

/// The `(label, DER)` of a PEM document with one block.
fn pem_decode(pem: &str) -> Option<(&str, Vec<u8>)> {
    let pem = pem.trim();
    let label = pem.strip_prefix("-----BEGIN ")?.split_once("-----")?.0;
    let body = pem
        .strip_prefix(&format!("-----BEGIN {label}-----"))?
        .strip_suffix(&format!("-----END {label}-----"))?;
    let base64: String = body.split_ascii_whitespace().collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(base64)
        .ok()?;
    Some((label, der))
}

/// PEM with 64-character lines and LF line ends, as OpenSSL writes it.
fn pem_encode(label: &str, der: &[u8]) -> String {
    let base64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in base64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

/// The PKCS#1 `RSAPrivateKey` inside a PKCS#8 `PrivateKeyInfo` (RFC 5208: a SEQUENCE of
/// version, rsaEncryption algorithm identifier and the key in an OCTET STRING).
fn pkcs1_of_pkcs8(pkcs8: &[u8]) -> Option<&[u8]> {
    /// DER OID 1.2.840.113549.1.1.1 (rsaEncryption).
    const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    const INTEGER: u8 = 0x02;
    const OCTET_STRING: u8 = 0x04;
    const OID: u8 = 0x06;
    const SEQUENCE: u8 = 0x30;

    let (info, rest) = der_element(pkcs8, SEQUENCE)?;
    if !rest.is_empty() {
        return None;
    }
    let (version, info) = der_element(info, INTEGER)?;
    if version != [0] {
        return None;
    }
    let (algorithm, info) = der_element(info, SEQUENCE)?;
    let (oid, _parameters) = der_element(algorithm, OID)?;
    if oid != RSA_ENCRYPTION {
        return None;
    }
    let (private_key, _attributes) = der_element(info, OCTET_STRING)?;
    Some(private_key)
}

/// Splits a DER element with tag `tag` off the front of `input`: `(content, rest)`.
fn der_element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, input) = input.split_first()?;
    if first != tag {
        return None;
    }
    let (&length_byte, input) = input.split_first()?;
    let (length, input) = if length_byte < 0x80 {
        (usize::from(length_byte), input)
    } else {
        let count = usize::from(length_byte & 0x7f);
        if count == 0 || count > 4 || input.len() < count {
            return None;
        }
        let (bytes, input) = input.split_at(count);
        let length = bytes.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b));
        (length, input)
    };
    (input.len() >= length).then(|| input.split_at(length))
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
        assert_eq!(
            key.to_pkcs1_pem(),
            TEST_KEY_PEM,
            "the key file is written back unchanged"
        );
    }

    /// The bytes `openssl dgst -sha256 -sign test-key-1.pem` gives for "message", and the
    /// MD5 of `openssl rsa -RSAPublicKey_out -outform DER`: signatures and fingerprints did not
    /// change when the RSA implementation did.
    #[test]
    fn signatures_and_fingerprints_match_openssl() {
        let key = DigestSigningKey::from_pkcs1_pem(TEST_KEY_PEM).unwrap();
        assert_eq!(
            hex::encode(key.sign(b"message")),
            "14a28504b24c259811eaeeb82f92018e5017a2c71e3cc0f6c772368eed207218671e1c066c587e05a53b91d8b1730a2a1241154f3fc97a2a62b98bce1a6e5f8466706db67298d07be14637ec89a80b0cfb5cb13ec5785f1c8200ff5823d494a2757830714d610f07391c7e674eacd5eeedcf80f260ed85cebf5352b79b830ad1f6f46e5bd99830bcd389505705fae53478ec9434b757e8d30b5767b5197bd53e30225cc31f584a1cbfbc721b4a2f943622f65a1257b241c06e0eb7b2b1a46e6d0a746e2fbef1e98cc8a9c873e8c865890bd4f780a352d9473c5596f766a16de5d347eb299343224185899adea36c647762e769b5f9e20d16bfecd9fddcc58862"
        );
        assert_eq!(key.fingerprint(), "141cb32409dcc3bc32d21524f436e2b0");
    }

    #[test]
    fn generated_keys_round_trip_through_pkcs1_and_pkcs8_pem() {
        let key = DigestSigningKey::generate().unwrap();
        let pem = key.to_pkcs1_pem();
        assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
        let again = DigestSigningKey::from_pkcs1_pem(&pem).unwrap();
        assert_eq!(again.fingerprint(), key.fingerprint());
        assert!(verify_signature(
            key.public_key_der(),
            b"message",
            &again.sign(b"message")
        ));

        let pkcs8 = key.key_pair.as_der().unwrap();
        let pkcs8_pem = pem_encode(PKCS8_PEM_LABEL, AsRef::<[u8]>::as_ref(&*pkcs8));
        let from_pkcs8 = DigestSigningKey::from_pkcs1_pem(&pkcs8_pem).unwrap();
        assert_eq!(from_pkcs8.fingerprint(), key.fingerprint());
        assert_eq!(from_pkcs8.to_pkcs1_pem(), pem);
    }

    #[test]
    fn rejects_what_is_not_an_rsa_private_key() {
        for pem in [
            "",
            "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n",
            "-----BEGIN RSA PRIVATE KEY-----\n!!\n-----END RSA PRIVATE KEY-----\n",
        ] {
            assert!(DigestSigningKey::from_pkcs1_pem(pem).is_err(), "{pem:?}");
        }
    }
}

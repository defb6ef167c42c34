//! Digest signing keys per region, persisted as PKCS#1 PEM files and rotated on a
//! schedule; old public keys stay listed so old digests keep validating (`ListPublicKeys`).
//!
//! Layout: `DIR/<region>/<YYYYMMDDTHHMMSSZ>.pem`, named for the start of the key's
//! validity. A key is valid until the next key of its region starts, the newest one until
//! its start plus the rotation period.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chrono::{DateTime, Duration, DurationRound, Utc};
use opentrail_model::Region;

use crate::durable_file::{create_private_dir_all, write_private_atomically};
use crate::error::DeliveryError;
use crate::object_keys::{compact_time, parse_compact_time};
use crate::signing::DigestSigningKey;

/// Default time between key rotations.
pub const DEFAULT_ROTATION: Duration = Duration::days(30);

/// One entry of `ListPublicKeys`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeyInfo {
    /// DER PKCS#1 `RSAPublicKey`.
    pub der: Vec<u8>,
    pub validity_start: DateTime<Utc>,
    pub validity_end: DateTime<Utc>,
    /// Hex MD5 of `der`.
    pub fingerprint: String,
}

impl PublicKeyInfo {
    /// `Value` as a JSON 1.1 response carries it: the blob (the DER key) base64-encoded.
    /// The AWS CLI keeps blobs undecoded, and validate-logs base64-decodes this text
    /// itself; SDKs that decode blobs hand their users the DER bytes.
    pub fn value_wire(&self) -> String {
        BASE64.encode(&self.der)
    }
}

struct StoredKey {
    valid_from: DateTime<Utc>,
    key: Arc<DigestSigningKey>,
}

/// The signing keys of every region.
pub struct KeyStore {
    dir: PathBuf,
    rotation: Duration,
    regions: Mutex<BTreeMap<Region, Vec<StoredKey>>>,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore")
            .field("dir", &self.dir)
            .field("rotation", &self.rotation)
            .finish_non_exhaustive()
    }
}

impl KeyStore {
    /// Loads every key under `dir` (created on the first key). Blocking.
    pub fn open(dir: impl Into<PathBuf>, rotation: Duration) -> Result<KeyStore, DeliveryError> {
        let dir = dir.into();
        let mut regions = BTreeMap::new();
        let region_dirs = match fs::read_dir(&dir) {
            Ok(entries) => entries.collect::<Result<Vec<_>, _>>(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(error) => Err(error),
        }
        .map_err(|e| DeliveryError::state(&dir, e))?;
        for entry in region_dirs {
            let Some(region) = entry
                .file_name()
                .to_str()
                .and_then(|n| Region::parse(n).ok())
            else {
                continue;
            };
            // Directories an older version created with the umask's mode: owner only now.
            let region_dir = entry.path();
            create_private_dir_all(&region_dir)
                .map_err(|e| DeliveryError::state(&region_dir, e))?;
            regions.insert(region, load_region(&region_dir)?);
        }
        if dir.is_dir() {
            create_private_dir_all(&dir).map_err(|e| DeliveryError::state(&dir, e))?;
        }
        Ok(KeyStore {
            dir,
            rotation,
            regions: Mutex::new(regions),
        })
    }

    /// The key that signs `region`'s digests at `now`, generating the region's first key
    /// or rotating when the newest is older than the rotation period. Blocking (may
    /// generate an RSA key).
    pub fn signing_key(
        &self,
        region: &Region,
        now: DateTime<Utc>,
    ) -> Result<Arc<DigestSigningKey>, DeliveryError> {
        let mut regions = self.lock();
        let keys = regions.entry(region.clone()).or_default();
        if let Some(current) = keys.iter().rev().find(|stored| stored.valid_from <= now) {
            if now < current.valid_from + self.rotation {
                return Ok(Arc::clone(&current.key));
            }
        }
        let key = DigestSigningKey::generate()?;
        let valid_from = match keys.last() {
            Some(newest) => whole_seconds(now).max(newest.valid_from + Duration::seconds(1)),
            None => whole_seconds(now),
        };
        self.persist(region, valid_from, &key)?;
        let key = Arc::new(key);
        keys.push(StoredKey {
            valid_from,
            key: Arc::clone(&key),
        });
        Ok(key)
    }

    /// Adds an existing key for `region`, valid from `valid_from` (imports, tests).
    pub fn import_key(
        &self,
        region: &Region,
        valid_from: DateTime<Utc>,
        key: DigestSigningKey,
    ) -> Result<(), DeliveryError> {
        let valid_from = whole_seconds(valid_from);
        self.persist(region, valid_from, &key)?;
        let mut regions = self.lock();
        let keys = regions.entry(region.clone()).or_default();
        keys.retain(|stored| stored.valid_from != valid_from);
        keys.push(StoredKey {
            valid_from,
            key: Arc::new(key),
        });
        keys.sort_by_key(|stored| stored.valid_from);
        Ok(())
    }

    /// `ListPublicKeys` for `region`: every key whose validity overlaps `[start, end]`,
    /// oldest first.
    pub fn public_keys(
        &self,
        region: &Region,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Vec<PublicKeyInfo> {
        let regions = self.lock();
        let Some(keys) = regions.get(region) else {
            return Vec::new();
        };
        keys.iter()
            .enumerate()
            .map(|(index, stored)| PublicKeyInfo {
                der: stored.key.public_key_der().to_vec(),
                validity_start: stored.valid_from,
                validity_end: keys
                    .get(index + 1)
                    .map_or(stored.valid_from + self.rotation, |next| next.valid_from),
                fingerprint: stored.key.fingerprint().to_owned(),
            })
            .filter(|info| info.validity_start <= end && info.validity_end >= start)
            .collect()
    }

    fn persist(
        &self,
        region: &Region,
        valid_from: DateTime<Utc>,
        key: &DigestSigningKey,
    ) -> Result<(), DeliveryError> {
        let path = self
            .dir
            .join(region.as_str())
            .join(format!("{}.pem", compact_time(valid_from)));
        // 0600 from the first byte, in 0700 directories: a private key is never readable
        // by another user, not even between its creation and a chmod.
        create_private_dir_all(&self.dir).map_err(|e| DeliveryError::state(&self.dir, e))?;
        write_private_atomically(&path, key.to_pkcs1_pem().as_bytes())
            .map_err(|e| DeliveryError::state(&path, e))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Region, Vec<StoredKey>>> {
        self.regions.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn load_region(dir: &Path) -> Result<Vec<StoredKey>, DeliveryError> {
    let mut keys = Vec::new();
    for path in crate::durable_file::files_with_extension(dir, ".pem")
        .map_err(|e| DeliveryError::state(dir, e))?
    {
        let Some(valid_from) = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .and_then(parse_compact_time)
        else {
            return Err(DeliveryError::state(&path, "unexpected key file name"));
        };
        // A key an older version left readable by others (it chmod-ed after the rename).
        crate::durable_file::restrict_file(&path).map_err(|e| DeliveryError::state(&path, e))?;
        let pem = fs::read_to_string(&path).map_err(|e| DeliveryError::state(&path, e))?;
        keys.push(StoredKey {
            valid_from,
            key: Arc::new(DigestSigningKey::from_pkcs1_pem(&pem)?),
        });
    }
    keys.sort_by_key(|stored| stored.valid_from);
    Ok(keys)
}

fn whole_seconds(time: DateTime<Utc>) -> DateTime<Utc> {
    time.duration_trunc(Duration::seconds(1)).unwrap_or(time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn test_key(n: usize) -> DigestSigningKey {
        let pem = match n {
            1 => include_str!("../tests/fixtures/test-key-1.pem"),
            2 => include_str!("../tests/fixtures/test-key-2.pem"),
            _ => include_str!("../tests/fixtures/test-key-3.pem"),
        };
        DigestSigningKey::from_pkcs1_pem(pem).unwrap()
    }

    #[test]
    fn lists_keys_overlapping_a_range_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let us = Region::parse("us-east-1").unwrap();
        let eu = Region::parse("eu-west-1").unwrap();
        let t0 = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let store = KeyStore::open(dir.path(), Duration::days(10)).unwrap();
        store.import_key(&us, t0, test_key(1)).unwrap();
        store
            .import_key(&us, t0 + Duration::days(10), test_key(2))
            .unwrap();
        store.import_key(&eu, t0, test_key(3)).unwrap();

        let store = KeyStore::open(dir.path(), Duration::days(10)).unwrap();
        let all = store.public_keys(&us, t0, t0 + Duration::days(100));
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].validity_end, t0 + Duration::days(10));
        assert_eq!(all[1].validity_end, t0 + Duration::days(20));
        assert_eq!(all[0].fingerprint, test_key(1).fingerprint());
        let first_only = store.public_keys(&us, t0 + Duration::days(1), t0 + Duration::days(2));
        assert_eq!(first_only.len(), 1);
        assert_eq!(first_only[0].der, test_key(1).public_key_der());
        assert!(store
            .public_keys(&us, t0 + Duration::days(21), t0 + Duration::days(22))
            .is_empty());
        assert_eq!(store.public_keys(&eu, t0, t0).len(), 1);

        let current = store.signing_key(&us, t0 + Duration::days(15)).unwrap();
        assert_eq!(current.fingerprint(), test_key(2).fingerprint());
        let earlier = store.signing_key(&us, t0 + Duration::days(9)).unwrap();
        assert_eq!(
            earlier.fingerprint(),
            test_key(1).fingerprint(),
            "the key valid then"
        );
    }

    #[test]
    fn generates_the_first_key_and_rotates_on_schedule() {
        let dir = tempfile::tempdir().unwrap();
        let eu = Region::parse("eu-west-1").unwrap();
        let t0 = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let store = KeyStore::open(dir.path(), Duration::days(1)).unwrap();
        let first = store.signing_key(&eu, t0).unwrap();
        assert_eq!(
            store
                .signing_key(&eu, t0 + Duration::hours(23))
                .unwrap()
                .fingerprint(),
            first.fingerprint()
        );
        let second = store.signing_key(&eu, t0 + Duration::days(1)).unwrap();
        assert_ne!(second.fingerprint(), first.fingerprint());
        let reopened = KeyStore::open(dir.path(), Duration::days(1)).unwrap();
        let listed = reopened.public_keys(&eu, t0, t0 + Duration::days(3));
        assert_eq!(listed.len(), 2, "old public keys stay listed");
        assert_eq!(listed[0].validity_end, listed[1].validity_start);
        assert_eq!(listed[1].fingerprint, second.fingerprint());
    }

    #[cfg(unix)]
    #[test]
    fn keys_an_older_version_left_open_are_made_private_on_open() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let us = Region::parse("us-east-1").unwrap();
        let t0 = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let store = KeyStore::open(dir.path().join("keys"), Duration::days(10)).unwrap();
        store.import_key(&us, t0, test_key(1)).unwrap();
        let region_dir = dir.path().join("keys/us-east-1");
        let key_file = region_dir.join("20240101T000000Z.pem");
        assert_eq!(mode(&key_file), 0o600);
        assert_eq!(mode(&region_dir), 0o700);
        assert_eq!(mode(&dir.path().join("keys")), 0o700);
        for (path, open) in [
            (&key_file, 0o644),
            (&region_dir, 0o755),
            (&dir.path().join("keys"), 0o755),
        ] {
            fs::set_permissions(path, fs::Permissions::from_mode(open)).unwrap();
        }
        KeyStore::open(dir.path().join("keys"), Duration::days(10)).unwrap();
        assert_eq!(mode(&key_file), 0o600);
        assert_eq!(mode(&region_dir), 0o700);
        assert_eq!(mode(&dir.path().join("keys")), 0o700);
    }

    #[test]
    fn value_on_the_wire_is_base64_of_der() {
        let key = test_key(1);
        let info = PublicKeyInfo {
            der: key.public_key_der().to_vec(),
            validity_start: Utc::now(),
            validity_end: Utc::now(),
            fingerprint: key.fingerprint().to_owned(),
        };
        assert!(
            info.value_wire().starts_with("MIIBCgKCAQEA"),
            "PKCS#1 RSAPublicKey, 2048 bits"
        );
        assert_eq!(BASE64.decode(info.value_wire()).unwrap(), info.der);
    }
}

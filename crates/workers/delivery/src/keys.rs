//! Digest signing keys per region, in the metadata store (collection `signing_keys`, key
//! `<region>/<YYYYMMDDTHHMMSSZ>` named for the start of the key's validity, value the
//! PKCS#1 PEM), rotated on a schedule; old public keys stay listed so old digests keep
//! validating (`ListPublicKeys`). A key is valid until the next key of its region starts,
//! the newest one until its start plus the rotation period.
//!
//! Nodes sharing the store share the keys: a rotation is one transaction that adds a key
//! only if no other node rotated first. Key files of older versions (`DIR/<region>/*.pem`)
//! are imported on open and their directory renamed `DIR.migrated`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chrono::{DateTime, Duration, DurationRound, Utc};
use opentrail_meta::{MetaStore, Transactions};
use opentrail_model::Region;

use crate::error::DeliveryError;
use crate::object_keys::{compact_time, parse_compact_time};
use crate::signing::DigestSigningKey;

/// Default time between key rotations.
pub const DEFAULT_ROTATION: Duration = Duration::days(30);

/// Metadata documents: one signing key each.
pub const SIGNING_KEYS: &str = "signing_keys";

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
    meta: Arc<dyn MetaStore>,
    rotation: Duration,
    /// The keys as last read from the store, oldest first per region.
    regions: Mutex<BTreeMap<Region, Vec<StoredKey>>>,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore")
            .field("rotation", &self.rotation)
            .finish_non_exhaustive()
    }
}

fn keys_error(error: impl std::fmt::Display) -> DeliveryError {
    DeliveryError::Keys(error.to_string())
}

fn document_key(region: &Region, valid_from: DateTime<Utc>) -> String {
    format!("{region}/{}", compact_time(valid_from))
}

/// Every key in the store, by region, oldest first.
fn read_keys(
    documents: Vec<(String, String)>,
    known: &BTreeMap<Region, Vec<StoredKey>>,
) -> Result<BTreeMap<Region, Vec<StoredKey>>, DeliveryError> {
    let mut regions: BTreeMap<Region, Vec<StoredKey>> = BTreeMap::new();
    for (name, pem) in documents {
        let parsed = name.split_once('/').and_then(|(region, time)| {
            Some((Region::parse(region).ok()?, parse_compact_time(time)?))
        });
        let Some((region, valid_from)) = parsed else {
            return Err(keys_error(format!("unexpected signing key name {name}")));
        };
        // Parsing a key is slow-ish: reuse the ones already known.
        let cached = known
            .get(&region)
            .and_then(|keys| keys.iter().find(|k| k.valid_from == valid_from))
            .map(|k| Arc::clone(&k.key));
        let key = match cached {
            Some(key) => key,
            None => Arc::new(DigestSigningKey::from_pkcs1_pem(&pem)?),
        };
        regions
            .entry(region)
            .or_default()
            .push(StoredKey { valid_from, key });
    }
    for keys in regions.values_mut() {
        keys.sort_by_key(|stored| stored.valid_from);
    }
    Ok(regions)
}

impl KeyStore {
    /// The keys in `meta`, after importing the key files an older version kept under
    /// `legacy_dir` (keys already in the store win). Blocking.
    pub fn open(
        meta: Arc<dyn MetaStore>,
        legacy_dir: impl Into<PathBuf>,
        rotation: Duration,
    ) -> Result<KeyStore, DeliveryError> {
        import_legacy_files(meta.as_ref(), &legacy_dir.into())?;
        let store = KeyStore {
            meta,
            rotation,
            regions: Mutex::new(BTreeMap::new()),
        };
        store.reload(&mut store.lock())?;
        Ok(store)
    }

    fn reload(&self, regions: &mut BTreeMap<Region, Vec<StoredKey>>) -> Result<(), DeliveryError> {
        let documents = self.meta.list_documents(SIGNING_KEYS).map_err(keys_error)?;
        *regions = read_keys(documents, regions)?;
        Ok(())
    }

    /// The key valid at `now` unless it is due for rotation.
    fn current(&self, keys: &[StoredKey], now: DateTime<Utc>) -> Option<Arc<DigestSigningKey>> {
        let current = keys.iter().rev().find(|stored| stored.valid_from <= now)?;
        (now < current.valid_from + self.rotation).then(|| Arc::clone(&current.key))
    }

    /// The key that signs `region`'s digests at `now`, generating the region's first key
    /// or rotating when the newest is older than the rotation period (unless another node
    /// sharing the store just did). Blocking (may generate an RSA key).
    pub fn signing_key(
        &self,
        region: &Region,
        now: DateTime<Utc>,
    ) -> Result<Arc<DigestSigningKey>, DeliveryError> {
        let mut regions = self.lock();
        if let Some(key) = self.current(regions.get(region).map_or(&[], Vec::as_slice), now) {
            return Ok(key);
        }
        // Another node may have rotated already.
        self.reload(&mut regions)?;
        if let Some(key) = self.current(regions.get(region).map_or(&[], Vec::as_slice), now) {
            return Ok(key);
        }
        let key = DigestSigningKey::generate()?;
        let newest = regions
            .get(region)
            .and_then(|keys| keys.last())
            .map(|k| k.valid_from);
        let valid_from = match newest {
            Some(newest) => whole_seconds(now).max(newest + Duration::seconds(1)),
            None => whole_seconds(now),
        };
        let pem = key.to_pkcs1_pem();
        let prefix = format!("{region}/");
        let added = self.meta.transaction(|tx| {
            let newest_stored = tx
                .list_documents(SIGNING_KEYS)?
                .into_iter()
                .filter(|(name, _)| name.starts_with(&prefix))
                .filter_map(|(name, _)| parse_compact_time(&name[prefix.len()..]))
                .max();
            if newest_stored != newest {
                return Ok(false);
            }
            tx.put_document(SIGNING_KEYS, &document_key(region, valid_from), &pem)?;
            Ok::<_, opentrail_meta::MetaError>(true)
        });
        let added = added.map_err(keys_error)?;
        self.reload(&mut regions)?;
        if !added {
            // Another node rotated between our read and our write: use its key.
            let keys = regions.get(region).map_or(&[][..], Vec::as_slice);
            if let Some(theirs) = keys.iter().rev().find(|stored| stored.valid_from <= now) {
                return Ok(Arc::clone(&theirs.key));
            }
        }
        let keys = regions.get(region).map_or(&[][..], Vec::as_slice);
        keys.iter()
            .find(|stored| stored.valid_from == valid_from)
            .map(|stored| Arc::clone(&stored.key))
            .ok_or_else(|| keys_error(format!("signing key {region} {valid_from} vanished")))
    }

    /// Adds an existing key for `region`, valid from `valid_from` (imports, tests).
    pub fn import_key(
        &self,
        region: &Region,
        valid_from: DateTime<Utc>,
        key: DigestSigningKey,
    ) -> Result<(), DeliveryError> {
        let valid_from = whole_seconds(valid_from);
        self.meta
            .put_document(
                SIGNING_KEYS,
                &document_key(region, valid_from),
                &key.to_pkcs1_pem(),
            )
            .map_err(keys_error)?;
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
    /// oldest first (including keys other nodes added).
    pub fn public_keys(
        &self,
        region: &Region,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Vec<PublicKeyInfo> {
        let mut regions = self.lock();
        if let Err(error) = self.reload(&mut regions) {
            tracing::warn!(%error, "failed to read signing keys, listing the last known");
        }
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

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Region, Vec<StoredKey>>> {
        self.regions.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Imports `DIR/<region>/<YYYYMMDDTHHMMSSZ>.pem` files (older versions' key store), then
/// renames `DIR` to `DIR.migrated` (owner-only, as it was).
fn import_legacy_files(meta: &dyn MetaStore, dir: &Path) -> Result<(), DeliveryError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| DeliveryError::state(dir, e))?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(DeliveryError::state(dir, error)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let Some(region) = entry
            .file_name()
            .to_str()
            .and_then(|n| Region::parse(n).ok())
        else {
            continue;
        };
        let region_dir = entry.path();
        // Older versions made key directories and files with the umask's mode: owner only
        // before they are kept as `DIR.migrated`.
        crate::durable_file::create_private_dir_all(&region_dir)
            .map_err(|e| DeliveryError::state(&region_dir, e))?;
        for path in crate::durable_file::files_with_extension(&region_dir, ".pem")
            .map_err(|e| DeliveryError::state(&region_dir, e))?
        {
            let Some(valid_from) = path
                .file_stem()
                .and_then(|stem| stem.to_str())
                .and_then(parse_compact_time)
            else {
                return Err(DeliveryError::state(&path, "unexpected key file name"));
            };
            crate::durable_file::restrict_file(&path)
                .map_err(|e| DeliveryError::state(&path, e))?;
            let pem = std::fs::read_to_string(&path).map_err(|e| DeliveryError::state(&path, e))?;
            DigestSigningKey::from_pkcs1_pem(&pem)?;
            found.push((document_key(&region, valid_from), pem));
        }
    }
    crate::durable_file::create_private_dir_all(dir).map_err(|e| DeliveryError::state(dir, e))?;
    meta.transaction(|tx| {
        for (name, pem) in &found {
            if tx.get_document(SIGNING_KEYS, name)?.is_none() {
                tx.put_document(SIGNING_KEYS, name, pem)?;
            }
        }
        Ok::<_, opentrail_meta::MetaError>(())
    })
    .map_err(keys_error)?;
    let mut migrated = dir.as_os_str().to_owned();
    migrated.push(".migrated");
    match std::fs::rename(dir, PathBuf::from(migrated)) {
        Ok(()) => {
            tracing::info!(dir = %dir.display(), keys = found.len(), "imported signing key files into the metadata store");
            Ok(())
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(DeliveryError::state(dir, error)),
    }
}

fn whole_seconds(time: DateTime<Utc>) -> DateTime<Utc> {
    time.duration_trunc(Duration::seconds(1)).unwrap_or(time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use opentrail_meta::SqliteMetaStore;

    /// A store instance on the metadata database in `dir` (another one per call, as
    /// another process or node would open).
    fn meta(dir: &Path) -> Arc<dyn MetaStore> {
        Arc::new(SqliteMetaStore::open(&dir.join("meta.sqlite")).unwrap())
    }

    fn open(dir: &Path, rotation: Duration) -> KeyStore {
        KeyStore::open(meta(dir), dir.join("keys"), rotation).unwrap()
    }

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
        let store = open(dir.path(), Duration::days(10));
        store.import_key(&us, t0, test_key(1)).unwrap();
        store
            .import_key(&us, t0 + Duration::days(10), test_key(2))
            .unwrap();
        store.import_key(&eu, t0, test_key(3)).unwrap();

        let store = open(dir.path(), Duration::days(10));
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
        let store = open(dir.path(), Duration::days(1));
        // A second node sharing the store.
        let other = open(dir.path(), Duration::days(1));
        let first = store.signing_key(&eu, t0).unwrap();
        assert_eq!(
            other.signing_key(&eu, t0).unwrap().fingerprint(),
            first.fingerprint(),
            "the other node uses the key the first one made"
        );
        assert_eq!(
            store
                .signing_key(&eu, t0 + Duration::hours(23))
                .unwrap()
                .fingerprint(),
            first.fingerprint()
        );
        let second = store.signing_key(&eu, t0 + Duration::days(1)).unwrap();
        assert_ne!(second.fingerprint(), first.fingerprint());
        assert_eq!(
            other
                .signing_key(&eu, t0 + Duration::days(1))
                .unwrap()
                .fingerprint(),
            second.fingerprint()
        );
        let reopened = open(dir.path(), Duration::days(1));
        let listed = reopened.public_keys(&eu, t0, t0 + Duration::days(3));
        assert_eq!(listed.len(), 2, "old public keys stay listed");
        assert_eq!(listed[0].validity_end, listed[1].validity_start);
        assert_eq!(listed[1].fingerprint, second.fingerprint());
    }

    #[test]
    fn key_files_of_an_older_version_are_imported_and_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let us = Region::parse("us-east-1").unwrap();
        let t0 = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let region_dir = dir.path().join("keys/us-east-1");
        std::fs::create_dir_all(&region_dir).unwrap();
        let key_file = region_dir.join("20240101T000000Z.pem");
        std::fs::write(&key_file, test_key(1).to_pkcs1_pem()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
            std::fs::set_permissions(&region_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let store = open(dir.path(), Duration::days(10));
        let listed = store.public_keys(&us, t0, t0);
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].fingerprint, test_key(1).fingerprint());
        assert!(!dir.path().join("keys").exists());
        let kept = dir
            .path()
            .join("keys.migrated/us-east-1/20240101T000000Z.pem");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&kept), 0o600);
            assert_eq!(mode(kept.parent().unwrap()), 0o700);
            assert_eq!(mode(&dir.path().join("keys.migrated")), 0o700);
        }
        // Imported once: a reopened store has the key, from the metadata store.
        assert_eq!(
            open(dir.path(), Duration::days(10))
                .public_keys(&us, t0, t0)
                .len(),
            1
        );
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

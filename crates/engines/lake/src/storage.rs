//! Where event data stores live in the object store: one folder per store, one folder per
//! event day, files named by the range of log offsets whose events they hold:
//! `<root>/<store-id>/eventday=YYYY-MM-DD/part-<first offset>-<last offset>.parquet`.
//! Imported events (StartImport) sit beside them as
//! `import-<import id>-<source file digest>-<chunk>.parquet`: not named by log offsets, so
//! the writer's recovery, compaction and superseded-file rules never see them; queries read
//! both and retention drops both by day.

use chrono::NaiveDate;
use futures_util::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use std::sync::Arc;

const DAY_PREFIX: &str = "eventday=";
const PART_PREFIX: &str = "part-";
const PART_SUFFIX: &str = ".parquet";
const IMPORT_PREFIX: &str = "import-";

/// The object store holding the lake and the folder inside it.
#[derive(Clone, Debug)]
pub struct LakeStorage {
    pub objects: Arc<dyn ObjectStore>,
    pub root: Path,
    /// The URI of the object store's top (`file:///abs/dir` for a local lake): federated
    /// tables (Iceberg) name their files by URI. `None`: the lake cannot be federated.
    pub location: Option<String>,
}

/// One lake file, parsed from its path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PartFile {
    pub(crate) store: String,
    pub(crate) day: NaiveDate,
    /// Offsets of the first and last log record of the batch that wrote it.
    pub(crate) first: u64,
    pub(crate) last: u64,
}

impl LakeStorage {
    pub fn new(objects: Arc<dyn ObjectStore>, root: Path) -> Self {
        Self {
            objects,
            root,
            location: None,
        }
    }

    /// The URI of the object store's top, for federated tables.
    pub fn with_location(mut self, location: impl Into<String>) -> Self {
        self.location = Some(location.into());
        self
    }

    /// A lake in a local directory (created if missing).
    pub fn local(dir: &std::path::Path) -> crate::Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| {
            crate::LakeError::Io(format!(
                "failed to create lake directory {}: {e}",
                dir.display()
            ))
        })?;
        let objects = object_store::local::LocalFileSystem::new_with_prefix(dir)?;
        let absolute = std::fs::canonicalize(dir).map_err(|e| {
            crate::LakeError::Io(format!(
                "failed to resolve lake directory {}: {e}",
                dir.display()
            ))
        })?;
        let location = format!("file://{}", absolute.display());
        Ok(Self::new(Arc::new(objects), Path::default()).with_location(location))
    }

    pub(crate) fn store_prefix(&self, store: &str) -> Path {
        self.root.clone().join(store)
    }

    pub(crate) fn day_prefix(&self, store: &str, day: NaiveDate) -> Path {
        self.store_prefix(store)
            .join(format!("{DAY_PREFIX}{}", day.format("%Y-%m-%d")))
    }

    pub(crate) fn part_path(&self, part: &PartFile) -> Path {
        self.day_prefix(&part.store, part.day).join(format!(
            "{PART_PREFIX}{:020}-{:020}{PART_SUFFIX}",
            part.first, part.last
        ))
    }

    /// The lake file at `path`, if it is one.
    pub(crate) fn parse_part(&self, path: &Path) -> Option<PartFile> {
        let relative: Vec<_> = path.prefix_match(&self.root)?.collect();
        let [store, day, name] = relative.as_slice() else {
            return None;
        };
        let day =
            NaiveDate::parse_from_str(day.as_ref().strip_prefix(DAY_PREFIX)?, "%Y-%m-%d").ok()?;
        let range = name
            .as_ref()
            .strip_prefix(PART_PREFIX)?
            .strip_suffix(PART_SUFFIX)?;
        let (first, last) = range.split_once('-')?;
        Some(PartFile {
            store: store.as_ref().to_string(),
            day,
            first: first.parse().ok()?,
            last: last.parse().ok()?,
        })
    }
}

/// Where an import writes one chunk of one source file's events of one day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportedFile {
    pub store: String,
    pub day: NaiveDate,
    /// The import's id (UUID).
    pub import_id: String,
    /// Names the source file (e.g. a hex digest of its key): `[0-9a-zA-Z]` only.
    pub source: String,
    /// The chunk of the source file (records are written in bounded chunks), from 0.
    pub chunk: u32,
}

impl LakeStorage {
    /// The path of an imported file: the same inputs always give the same path, so a
    /// re-run of an import overwrites what an interrupted run wrote.
    pub fn imported_path(&self, file: &ImportedFile) -> Path {
        self.day_prefix(&file.store, file.day).join(format!(
            "{IMPORT_PREFIX}{}-{}-{:06}{PART_SUFFIX}",
            file.import_id, file.source, file.chunk
        ))
    }

    /// Writes `events` (all of `file.day`) as one zstd Parquet file; returns its path.
    pub async fn put_imported(
        &self,
        file: &ImportedFile,
        events: Vec<opentrail_model::EventRecord>,
    ) -> crate::Result<Path> {
        let path = self.imported_path(file);
        let bytes = tokio::task::spawn_blocking(move || crate::writer::encode_parquet(events))
            .await
            .map_err(|e| crate::LakeError::Encode(format!("encoding task failed: {e}")))??;
        self.objects
            .put(&path, object_store::PutPayload::from_bytes(bytes))
            .await?;
        Ok(path)
    }

    /// The day of an imported file at `path`, if it is one (`<root>/<store>/eventday=…/import-….parquet`).
    pub(crate) fn imported_day(&self, path: &Path) -> Option<(String, NaiveDate)> {
        let relative: Vec<_> = path.prefix_match(&self.root)?.collect();
        let [store, day, name] = relative.as_slice() else {
            return None;
        };
        let name = name.as_ref();
        if !(name.starts_with(IMPORT_PREFIX) && name.ends_with(PART_SUFFIX)) {
            return None;
        }
        let day =
            NaiveDate::parse_from_str(day.as_ref().strip_prefix(DAY_PREFIX)?, "%Y-%m-%d").ok()?;
        Some((store.as_ref().to_string(), day))
    }

    /// The files import `import_id` wrote into `store`, each with the source it names
    /// ([`ImportedFile::source`]): for removing what an interrupted run of the import
    /// wrote for sources it never recorded as done.
    pub async fn imported_chunks(
        &self,
        store: &str,
        import_id: &str,
    ) -> crate::Result<Vec<(Path, String)>> {
        let start = format!("{IMPORT_PREFIX}{import_id}-");
        Ok(self
            .list_imported(store)
            .await?
            .into_iter()
            .filter_map(|path| {
                let name = path.filename()?;
                let (source, _chunk) = name
                    .strip_prefix(&start)?
                    .strip_suffix(PART_SUFFIX)?
                    .rsplit_once('-')?;
                let source = source.to_owned();
                Some((path, source))
            })
            .collect())
    }

    /// Every imported file of one store.
    pub(crate) async fn list_imported(&self, store: &str) -> crate::Result<Vec<Path>> {
        let mut listing = self.objects.list(Some(&self.store_prefix(store)));
        let mut files = Vec::new();
        while let Some(object) = listing.next().await {
            let object = object?;
            if self.imported_day(&object.location).is_some() {
                files.push(object.location);
            }
        }
        Ok(files)
    }
}

/// A stored lake file.
#[derive(Clone, Debug)]
pub(crate) struct StoredPart {
    pub(crate) part: PartFile,
    pub(crate) path: Path,
    pub(crate) size: u64,
}

impl LakeStorage {
    /// The lake files of one store (or of all), each with its size.
    pub(crate) async fn list_parts(&self, store: Option<&str>) -> crate::Result<Vec<StoredPart>> {
        let prefix = match store {
            Some(store) => self.store_prefix(store),
            None => self.root.clone(),
        };
        let mut listing = self.objects.list(Some(&prefix));
        let mut parts = Vec::new();
        while let Some(object) = listing.next().await {
            let object = object?;
            if let Some(part) = self.parse_part(&object.location) {
                parts.push(StoredPart {
                    part,
                    path: object.location,
                    size: object.size,
                });
            }
        }
        Ok(parts)
    }
}

/// Files whose offset range lies inside another file's of the same store and day: the
/// inputs of a compaction whose output is already stored. Batches never overlap, so only
/// compaction makes such pairs; the inputs are dropped by the writer and never read.
pub(crate) fn superseded(parts: &[StoredPart]) -> Vec<usize> {
    (0..parts.len())
        .filter(|&i| {
            let inner = &parts[i].part;
            parts.iter().enumerate().any(|(j, outer)| {
                let outer = &outer.part;
                j != i
                    && outer.store == inner.store
                    && outer.day == inner.day
                    && outer.first <= inner.first
                    && inner.last <= outer.last
                    && (outer.first, outer.last) != (inner.first, inner.last)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_paths_round_trip() {
        let storage = LakeStorage::new(
            Arc::new(object_store::memory::InMemory::new()),
            Path::from("lake"),
        );
        let part = PartFile {
            store: "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111".into(),
            day: NaiveDate::from_ymd_opt(2023, 1, 22).unwrap(),
            first: 7,
            last: 42,
        };
        let path = storage.part_path(&part);
        assert_eq!(
            path.as_ref(),
            "lake/a1b2c3d4-5678-90ab-cdef-EXAMPLE11111/eventday=2023-01-22/part-00000000000000000007-00000000000000000042.parquet"
        );
        assert_eq!(storage.parse_part(&path), Some(part));
        assert_eq!(
            storage.parse_part(&Path::from("lake/x/eventday=2023-01-22/other.txt")),
            None
        );
        assert_eq!(
            storage.parse_part(&Path::from(
                "elsewhere/x/eventday=2023-01-22/part-1-2.parquet"
            )),
            None
        );
    }

    #[test]
    fn imported_files_are_never_taken_for_offset_named_parts() {
        let storage = LakeStorage::new(
            Arc::new(object_store::memory::InMemory::new()),
            Path::from("lake"),
        );
        let file = ImportedFile {
            store: "s1".into(),
            day: NaiveDate::from_ymd_opt(2023, 1, 22).unwrap(),
            import_id: "0f3a4b5c-1111-2222-3333-444455556666".into(),
            source: "ab12".into(),
            chunk: 3,
        };
        let path = storage.imported_path(&file);
        assert_eq!(
            path.as_ref(),
            "lake/s1/eventday=2023-01-22/import-0f3a4b5c-1111-2222-3333-444455556666-ab12-000003.parquet"
        );
        assert_eq!(storage.parse_part(&path), None);
        assert_eq!(
            storage.imported_day(&path),
            Some(("s1".to_string(), file.day))
        );
    }

    #[tokio::test]
    async fn an_imports_chunks_are_listed_with_their_sources() {
        let storage = LakeStorage::new(
            Arc::new(object_store::memory::InMemory::new()),
            Path::from("lake"),
        );
        let id = "0f3a4b5c-1111-2222-3333-444455556666";
        let file = |import_id: &str, source: &str, chunk: u32| ImportedFile {
            store: "s1".into(),
            day: NaiveDate::from_ymd_opt(2023, 1, 22).unwrap(),
            import_id: import_id.into(),
            source: source.into(),
            chunk,
        };
        let written = [
            file(id, "ab12", 0),
            file(id, "ab12", 1),
            file(id, "cd34", 0),
            file("9f3a4b5c-1111-2222-3333-444455556666", "ab12", 0),
        ];
        for file in &written {
            let event = opentrail_model::EventRecord::from_json(
                r#"{"eventVersion":"1.08","eventTime":"2023-01-22T10:00:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","eventID":"e1","recipientAccountId":"123456789012","userIdentity":{"type":"Root"}}"#,
            )
            .unwrap();
            storage.put_imported(file, vec![event]).await.unwrap();
        }
        let mut chunks = storage.imported_chunks("s1", id).await.unwrap();
        chunks.sort();
        let expected: Vec<(Path, String)> = written[..3]
            .iter()
            .map(|file| (storage.imported_path(file), file.source.clone()))
            .collect();
        assert_eq!(chunks, expected);
        assert!(storage.imported_chunks("s2", id).await.unwrap().is_empty());
    }
}

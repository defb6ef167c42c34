//! Lake federation (EnableFederation): an event data store published as an Apache Iceberg
//! table (format v2) in the lake's object store, so that other engines (PyIceberg, DuckDB,
//! Spark, Trino, Athena) read it without OpenTrail in the path:
//!
//! ```text
//! <root>/federation/<store-id>/metadata/v<N>.metadata.json
//! <root>/federation/<store-id>/metadata/snap-<N>-<uuid>.avro      (manifest list)
//! <root>/federation/<store-id>/metadata/<N>-<uuid>-m0.avro        (manifest)
//! <root>/federation/<store-id>/metadata/version-hint.text         (N, for Hadoop catalogs)
//! ```
//!
//! The table references the store's Parquet files in place (nothing is copied). Each
//! version has one snapshot whose one manifest lists every live file of the store; a new
//! version is committed by writing its files and then `version-hint.text` (each put is
//! atomic). The files carry no Iceberg field ids, so the table's name mapping
//! (`schema.name-mapping.default`) maps columns by name. The last [`KEPT_VERSIONS`]
//! versions are kept for readers that are still planning on an older one.

use crate::avro::{container, Datum};
use crate::error::{LakeError, Result};
use crate::storage::{superseded, LakeStorage};
use crate::store::StoreSchema;
use crate::writer::{LakeWriter, CONSUMER};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use futures_util::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// The folder under the lake root that holds the federated tables.
pub const FEDERATION_DIR: &str = "federation";
/// Versions of a table's metadata kept (the newest included).
pub const KEPT_VERSIONS: u64 = 4;
const VERSION_HINT: &str = "version-hint.text";

/// The federation state of a store, as the control plane records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FederationState {
    /// EnableFederation ran; the writer publishes the table and reports it (ENABLED).
    Enabling,
    /// The table is published and follows the store's files.
    Enabled,
    /// DisableFederation ran; the writer removes the table metadata and reports it (DISABLED).
    Disabling,
}

/// A store whose table the writer publishes, keeps current or removes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FederatedStore {
    pub id: String,
    pub schema: StoreSchema,
    pub state: FederationState,
}

/// A live data file of a store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DataFile {
    pub(crate) path: Path,
    pub(crate) size: u64,
    pub(crate) rows: u64,
}

impl LakeStorage {
    /// The folder of a store's federated table.
    pub fn federation_prefix(&self, store: &str) -> Path {
        self.root.clone().join(FEDERATION_DIR).join(store)
    }

    /// The URI of the object at `path` (`file:///…` for a local lake), if the lake has one.
    pub fn uri_of(&self, path: &Path) -> Option<String> {
        let base = self.location.as_deref()?;
        Some(format!("{}/{}", base.trim_end_matches('/'), path.as_ref()))
    }

    /// The URI of a store's table metadata folder (what `version-hint.text` is in).
    pub fn federation_metadata_uri(&self, store: &str) -> Option<String> {
        self.uri_of(&self.federation_prefix(store).join("metadata"))
    }

    /// The store's live files: every committed writer file (below `cursor`, not the input of
    /// a stored merge) and every imported file, with sizes; rows are filled in from
    /// `known` or, for a file not seen before, its Parquet footer.
    pub(crate) async fn live_files(
        &self,
        store: &str,
        cursor: Option<u64>,
        known: &mut HashMap<String, (u64, u64)>,
    ) -> Result<Vec<DataFile>> {
        let mut listing = self.objects.list(Some(&self.store_prefix(store)));
        let mut parts = Vec::new();
        let mut imported = Vec::new();
        while let Some(object) = listing.next().await {
            let object = object?;
            if let Some(part) = self.parse_part(&object.location) {
                if cursor.is_some_and(|cursor| part.last < cursor) {
                    parts.push(crate::storage::StoredPart {
                        part,
                        path: object.location,
                        size: object.size,
                    });
                }
            } else if self.imported_day(&object.location).is_some() {
                imported.push((object.location, object.size));
            }
        }
        let dropped = superseded(&parts);
        let mut files: Vec<(Path, u64)> = parts
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !dropped.contains(i))
            .map(|(_, stored)| (stored.path, stored.size))
            .chain(imported)
            .collect();
        files.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        let mut live = Vec::with_capacity(files.len());
        for (path, size) in files {
            let rows = match known.get(path.as_ref()) {
                Some(&(known_size, rows)) if known_size == size => rows,
                _ => match self.parquet_rows(&path, size).await {
                    Ok(rows) => rows,
                    // Deleted meanwhile (compaction, retention): not live any more.
                    Err(LakeError::ObjectStore(object_store::Error::NotFound { .. })) => continue,
                    Err(e) => return Err(e),
                },
            };
            live.push(DataFile { path, size, rows });
        }
        known.retain(|path, _| live.iter().any(|file| file.path.as_ref() == path));
        for file in &live {
            known.insert(file.path.to_string(), (file.size, file.rows));
        }
        Ok(live)
    }

    /// The row count of a Parquet file, from its footer.
    async fn parquet_rows(&self, path: &Path, size: u64) -> Result<u64> {
        let corrupt = || LakeError::Encode(format!("{path} is not a Parquet file"));
        if size < 12 {
            return Err(corrupt());
        }
        let tail = self.objects.get_range(path, size - 8..size).await?;
        if tail.len() != 8 || &tail[4..] != b"PAR1" {
            return Err(corrupt());
        }
        let length = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
        if length + 8 > size {
            return Err(corrupt());
        }
        let footer = self
            .objects
            .get_range(path, size - 8 - length..size - 8)
            .await?;
        let metadata =
            datafusion::parquet::file::metadata::ParquetMetaDataReader::decode_metadata(&footer)
                .map_err(|e| LakeError::Encode(format!("{path}: {e}")))?;
        u64::try_from(metadata.file_metadata().num_rows()).map_err(|_| corrupt())
    }

    /// The newest committed version of a store's table (its `version-hint.text`), 0 if none.
    pub async fn federation_version(&self, store: &str) -> Result<u64> {
        let hint = self
            .federation_prefix(store)
            .join("metadata")
            .join(VERSION_HINT);
        match self.objects.get(&hint).await {
            Ok(found) => {
                let text = found.bytes().await?;
                Ok(std::str::from_utf8(&text)
                    .ok()
                    .and_then(|text| text.trim().parse().ok())
                    .unwrap_or(0))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes a store's table metadata (DisableFederation); its data files stay.
    pub async fn unpublish_table(&self, store: &str) -> Result<usize> {
        let mut listing = self.objects.list(Some(&self.federation_prefix(store)));
        let mut paths = Vec::new();
        while let Some(object) = listing.next().await {
            paths.push(object?.location);
        }
        // The hint first: a reader never finds a hint naming removed metadata.
        paths.sort_by_key(|path| !path.as_ref().ends_with(VERSION_HINT));
        for path in &paths {
            match self.objects.delete(path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(paths.len())
    }

    /// Commits version `version` of a store's table listing `files`, then removes versions
    /// older than the last [`KEPT_VERSIONS`].
    pub(crate) async fn publish_table(
        &self,
        store: &str,
        schema: StoreSchema,
        files: &[DataFile],
        version: u64,
        now_ms: i64,
    ) -> Result<()> {
        let table = TableFiles::new(self, store, version)?;
        let snapshot_id = snapshot_id(store);
        let iceberg = IcebergSchema::of(&schema.file_schema());
        let manifest = manifest_bytes(self, &iceberg, files, snapshot_id, version)?;
        let manifest_len = manifest.len() as u64;
        self.objects
            .put(&table.manifest, PutPayload::from(manifest))
            .await?;
        let list = manifest_list_bytes(
            &table.manifest_uri,
            manifest_len,
            files,
            snapshot_id,
            version,
        );
        self.objects
            .put(&table.manifest_list, PutPayload::from(list))
            .await?;
        let metadata = table_metadata(&TableVersion {
            store,
            location: &table.location,
            schema: &iceberg,
            files,
            version,
            snapshot_id,
            manifest_list: &table.manifest_list_uri,
            now_ms,
            metadata_uri: &|v| table.metadata_uri(v),
        });
        let text = serde_json::to_vec_pretty(&metadata)
            .map_err(|e| LakeError::Encode(format!("table metadata: {e}")))?;
        self.objects
            .put(&table.metadata(version), PutPayload::from(text))
            .await?;
        self.objects
            .put(
                &table.hint,
                PutPayload::from(version.to_string().into_bytes()),
            )
            .await?;
        self.drop_old_versions(&table, version).await
    }

    async fn drop_old_versions(&self, table: &TableFiles, version: u64) -> Result<()> {
        let oldest_kept = version.saturating_sub(KEPT_VERSIONS - 1);
        let mut listing = self.objects.list(Some(&table.folder));
        let mut old = Vec::new();
        while let Some(object) = listing.next().await {
            let object = object?;
            let name = object.location.filename().unwrap_or_default();
            if file_version(name).is_some_and(|v| v < oldest_kept) {
                old.push(object.location);
            }
        }
        for path in old {
            match self.objects.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// How often an idle writer looks at federation changes.
pub(crate) const TICK: Duration = Duration::from_secs(1);
/// At most one Iceberg commit per store in this time while events arrive.
pub const COMMIT_INTERVAL: Duration = Duration::from_secs(1);
/// How often a federated store's files are listed even when the writer wrote none (imports,
/// another process's compaction).
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(10);

/// What the writer knows of the tables it publishes.
#[derive(Default)]
pub(crate) struct Tables {
    tables: HashMap<String, Table>,
}

#[derive(Default)]
struct Table {
    /// The newest committed version, once read or written.
    version: Option<u64>,
    /// The files (path, size) the newest version lists, once known.
    files: Option<Vec<(String, u64)>>,
    /// The writer stored files of the store since the last commit.
    dirty: bool,
    published: Option<Instant>,
    checked: Option<Instant>,
    /// Row counts by path: (size, rows).
    rows: HashMap<String, (u64, u64)>,
}

impl LakeWriter {
    /// After a batch: the stores that got files are due at their next commit slot.
    pub(crate) async fn federate_changed(&self, stores: &[String]) {
        {
            let mut tables = self.federation.lock().await;
            for store in stores {
                if let Some(table) = tables.tables.get_mut(store) {
                    table.dirty = true;
                }
            }
        }
        self.federate_logged(false).await;
    }

    pub(crate) async fn federate_logged(&self, refresh: bool) {
        if let Err(e) = self.federate(refresh).await {
            tracing::warn!(error = %e, "failed to update the federated tables");
        }
    }

    /// Publishes the tables of enabling stores, removes those of disabling ones (telling
    /// the catalog of both), and commits a new version of an enabled store's table when
    /// its live files changed: at most once per [`COMMIT_INTERVAL`] after the writer
    /// stored files, every [`REFRESH_INTERVAL`] otherwise, and now when `refresh`.
    pub async fn federate(&self, refresh: bool) -> Result<()> {
        let stores = self.catalog.federated()?;
        let mut tables = self.federation.lock().await;
        tables
            .tables
            .retain(|id, _| stores.iter().any(|store| &store.id == id));
        if stores.is_empty() {
            return Ok(());
        }
        let cursor = self.log.cursor(CONSUMER).await?;
        for store in stores {
            if store.state == FederationState::Disabling {
                let removed = self.storage.unpublish_table(&store.id).await?;
                tables.tables.remove(&store.id);
                self.catalog.federation_settled(&store.id, false)?;
                tracing::info!(store = %store.id, files = removed, "removed federated table");
                continue;
            }
            let table = tables.tables.entry(store.id.clone()).or_default();
            let enabling = store.state == FederationState::Enabling;
            let elapsed = |at: Option<Instant>| at.map_or(Duration::MAX, |at| at.elapsed());
            let due = refresh
                || enabling
                || table.files.is_none()
                || (table.dirty && elapsed(table.published) >= COMMIT_INTERVAL)
                || elapsed(table.checked) >= REFRESH_INTERVAL;
            if !due {
                continue;
            }
            table.checked = Some(Instant::now());
            let files = self
                .storage
                .live_files(&store.id, cursor, &mut table.rows)
                .await?;
            let listed: Vec<(String, u64)> = files
                .iter()
                .map(|file| (file.path.to_string(), file.size))
                .collect();
            table.dirty = false;
            if !enabling && table.files.as_ref() == Some(&listed) {
                continue;
            }
            let version = match table.version {
                Some(version) => version,
                None => self.storage.federation_version(&store.id).await?,
            } + 1;
            self.storage
                .publish_table(
                    &store.id,
                    store.schema,
                    &files,
                    version,
                    chrono::Utc::now().timestamp_millis(),
                )
                .await?;
            table.version = Some(version);
            table.files = Some(listed);
            table.published = Some(Instant::now());
            tracing::debug!(store = %store.id, version, files = files.len(), "committed federated table");
            if enabling {
                self.catalog.federation_settled(&store.id, true)?;
                tracing::info!(store = %store.id, version, "published federated table");
            }
        }
        Ok(())
    }
}

/// The version a metadata folder's file belongs to, from its name.
fn file_version(name: &str) -> Option<u64> {
    let digits = if let Some(rest) = name.strip_prefix('v') {
        rest.strip_suffix(".metadata.json")?
    } else if let Some(rest) = name.strip_prefix("snap-") {
        rest.split('-').next()?
    } else {
        name.split('-').next()?
    };
    digits.parse().ok()
}

/// 32 bytes no other call of this process (or, by the clock, of another) gets.
fn nonce(store: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let now = chrono::Utc::now();
    Sha256::digest(format!(
        "{store}/{}/{}/{count}/{}",
        now.timestamp(),
        now.timestamp_subsec_nanos(),
        std::process::id()
    ))
    .into()
}

/// A new snapshot id (positive, as Iceberg wants): unique, so that a table published again
/// after DisableFederation never reuses an id a reader may have cached.
fn snapshot_id(store: &str) -> i64 {
    let nonce = nonce(store);
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&nonce[..8]);
    (u64::from_be_bytes(bytes) >> 1) as i64
}

/// Formats 16 bytes as a UUID (`8-4-4-4-12` hex digits).
fn uuid_text(bytes: &[u8; 16]) -> String {
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The table's UUID, derived from the store id (the same across versions and restarts).
fn table_uuid(store: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("opentrail-federation/{store}"));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    // A version-8 (custom) RFC 9562 UUID.
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    uuid_text(&bytes)
}

/// Where the files of one version of a table go.
struct TableFiles {
    location: String,
    folder: Path,
    folder_uri: String,
    manifest: Path,
    manifest_uri: String,
    manifest_list: Path,
    manifest_list_uri: String,
    hint: Path,
}

impl TableFiles {
    fn new(storage: &LakeStorage, store: &str, version: u64) -> Result<Self> {
        let prefix = storage.federation_prefix(store);
        let no_uri = || {
            LakeError::Io(
                "the lake's object store has no URI, so its tables cannot be federated".into(),
            )
        };
        let location = storage.uri_of(&prefix).ok_or_else(no_uri)?;
        let folder = prefix.join("metadata");
        let folder_uri = storage.uri_of(&folder).ok_or_else(no_uri)?;
        let mut nonce = [0u8; 16];
        nonce.copy_from_slice(&self::nonce(store)[..16]);
        let nonce = uuid_text(&nonce);
        let manifest_name = format!("{version}-{nonce}-m0.avro");
        let list_name = format!("snap-{version}-{nonce}.avro");
        Ok(Self {
            manifest: folder.clone().join(manifest_name.as_str()),
            manifest_uri: format!("{folder_uri}/{manifest_name}"),
            manifest_list: folder.clone().join(list_name.as_str()),
            manifest_list_uri: format!("{folder_uri}/{list_name}"),
            hint: folder.clone().join(VERSION_HINT),
            location,
            folder,
            folder_uri,
        })
    }

    fn metadata(&self, version: u64) -> Path {
        self.folder
            .clone()
            .join(format!("v{version}.metadata.json").as_str())
    }

    fn metadata_uri(&self, version: u64) -> String {
        format!("{}/v{version}.metadata.json", self.folder_uri)
    }
}

/// An Iceberg schema derived from an Arrow schema, with the name mapping that maps the
/// Parquet files' columns (which have no field ids) onto it.
#[derive(Clone, Debug, PartialEq)]
pub struct IcebergSchema {
    /// The schema as table metadata holds it (`{"type": "struct", "schema-id": 0, …}`).
    pub schema: Value,
    /// `schema.name-mapping.default`.
    pub name_mapping: Value,
    /// The highest field id.
    pub last_column_id: i32,
}

impl IcebergSchema {
    /// Field ids are given in depth-first order from 1. Strings are `string`, booleans
    /// `boolean`, millisecond timestamps without a zone `timestamp` (Iceberg timestamps are
    /// microseconds; readers widen the files' millisecond values), structs `struct`, lists
    /// `list` and maps `map`; every field is optional as in the Arrow schema (a map's keys
    /// are required).
    pub fn of(arrow: &Schema) -> Self {
        let mut ids = 0;
        let (fields, mapping): (Vec<Value>, Vec<Value>) = arrow
            .fields()
            .iter()
            .map(|field| struct_field(field, &mut ids))
            .unzip();
        Self {
            schema: json!({"type": "struct", "schema-id": 0, "fields": fields}),
            name_mapping: Value::Array(mapping),
            last_column_id: ids,
        }
    }
}

fn next_id(ids: &mut i32) -> i32 {
    *ids += 1;
    *ids
}

/// A struct member and its name-mapping entry.
fn struct_field(field: &Field, ids: &mut i32) -> (Value, Value) {
    let id = next_id(ids);
    let (kind, nested) = iceberg_type(field.data_type(), ids);
    let mut mapping = json!({"field-id": id, "names": [field.name()]});
    if !nested.is_empty() {
        mapping["fields"] = Value::Array(nested);
    }
    (
        json!({"id": id, "name": field.name(), "required": !field.is_nullable(), "type": kind}),
        mapping,
    )
}

/// The Iceberg type of an Arrow type, and the name mappings of its nested fields.
fn iceberg_type(data_type: &DataType, ids: &mut i32) -> (Value, Vec<Value>) {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => (json!("string"), vec![]),
        DataType::Boolean => (json!("boolean"), vec![]),
        DataType::Int8 | DataType::Int16 | DataType::Int32 => (json!("int"), vec![]),
        DataType::Int64 => (json!("long"), vec![]),
        DataType::Float32 => (json!("float"), vec![]),
        DataType::Float64 => (json!("double"), vec![]),
        DataType::Date32 => (json!("date"), vec![]),
        DataType::Timestamp(_, zone) => {
            let kind = if zone.is_some() {
                "timestamptz"
            } else {
                "timestamp"
            };
            (json!(kind), vec![])
        }
        DataType::Struct(fields) => {
            let (fields, mapping): (Vec<Value>, Vec<Value>) =
                fields.iter().map(|field| struct_field(field, ids)).unzip();
            (json!({"type": "struct", "fields": fields}), mapping)
        }
        DataType::List(item) | DataType::LargeList(item) => {
            let id = next_id(ids);
            let (element, nested) = iceberg_type(item.data_type(), ids);
            // Arrow names a list's element `item`; Iceberg calls it `element`.
            let mut mapping = json!({"field-id": id, "names": ["element", item.name()]});
            if !nested.is_empty() {
                mapping["fields"] = Value::Array(nested);
            }
            (
                json!({"type": "list", "element-id": id, "element": element,
                       "element-required": !item.is_nullable()}),
                vec![mapping],
            )
        }
        DataType::Map(entries, _) => {
            let DataType::Struct(kv) = entries.data_type() else {
                return (json!("string"), vec![]);
            };
            let (Some(key), Some(value)) = (kv.first(), kv.get(1)) else {
                return (json!("string"), vec![]);
            };
            let key_id = next_id(ids);
            let value_id = next_id(ids);
            let (key_type, key_nested) = iceberg_type(key.data_type(), ids);
            let (value_type, value_nested) = iceberg_type(value.data_type(), ids);
            let mut key_mapping = json!({"field-id": key_id, "names": ["key"]});
            if !key_nested.is_empty() {
                key_mapping["fields"] = Value::Array(key_nested);
            }
            let mut value_mapping = json!({"field-id": value_id, "names": ["value"]});
            if !value_nested.is_empty() {
                value_mapping["fields"] = Value::Array(value_nested);
            }
            (
                json!({"type": "map", "key-id": key_id, "key": key_type,
                       "value-id": value_id, "value": value_type,
                       "value-required": !value.is_nullable()}),
                vec![key_mapping, value_mapping],
            )
        }
        // The lake's schemas use none other; text is the safe reading of anything else.
        _ => (json!("string"), vec![]),
    }
}

/// The Avro schema of a v2 manifest (`manifest_entry`), with Iceberg's field ids; only the
/// required `data_file` members (the optional metrics are left out).
pub const MANIFEST_SCHEMA: &str = r#"{
  "type": "record", "name": "manifest_entry",
  "fields": [
    {"name": "status", "type": "int", "field-id": 0},
    {"name": "snapshot_id", "type": ["null", "long"], "default": null, "field-id": 1},
    {"name": "sequence_number", "type": ["null", "long"], "default": null, "field-id": 3},
    {"name": "file_sequence_number", "type": ["null", "long"], "default": null, "field-id": 4},
    {"name": "data_file", "field-id": 2, "type": {
      "type": "record", "name": "r2",
      "fields": [
        {"name": "content", "type": "int", "field-id": 134},
        {"name": "file_path", "type": "string", "field-id": 100},
        {"name": "file_format", "type": "string", "field-id": 101},
        {"name": "partition", "field-id": 102, "type": {"type": "record", "name": "r102", "fields": []}},
        {"name": "record_count", "type": "long", "field-id": 103},
        {"name": "file_size_in_bytes", "type": "long", "field-id": 104}
      ]}}
  ]
}"#;

/// The Avro schema of a v2 manifest list (`manifest_file`), with Iceberg's field ids.
pub const MANIFEST_LIST_SCHEMA: &str = r#"{
  "type": "record", "name": "manifest_file",
  "fields": [
    {"name": "manifest_path", "type": "string", "field-id": 500},
    {"name": "manifest_length", "type": "long", "field-id": 501},
    {"name": "partition_spec_id", "type": "int", "field-id": 502},
    {"name": "content", "type": "int", "field-id": 517},
    {"name": "sequence_number", "type": "long", "field-id": 515},
    {"name": "min_sequence_number", "type": "long", "field-id": 516},
    {"name": "added_snapshot_id", "type": "long", "field-id": 503},
    {"name": "added_files_count", "type": "int", "field-id": 504},
    {"name": "existing_files_count", "type": "int", "field-id": 505},
    {"name": "deleted_files_count", "type": "int", "field-id": 506},
    {"name": "added_rows_count", "type": "long", "field-id": 512},
    {"name": "existing_rows_count", "type": "long", "field-id": 513},
    {"name": "deleted_rows_count", "type": "long", "field-id": 514}
  ]
}"#;

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn some_long(n: i64) -> Datum {
    Datum::Union(1, Box::new(Datum::Long(n)))
}

/// A fresh sync marker for a container file.
fn sync_marker(store: &str) -> [u8; 16] {
    let mut sync = [0u8; 16];
    sync.copy_from_slice(&nonce(store)[16..]);
    sync
}

/// One manifest listing every file as added by the snapshot (status 1).
fn manifest_bytes(
    storage: &LakeStorage,
    schema: &IcebergSchema,
    files: &[DataFile],
    snapshot_id: i64,
    version: u64,
) -> Result<Vec<u8>> {
    let metadata = [
        ("schema", schema.schema.to_string()),
        ("schema-id", "0".to_string()),
        ("partition-spec", "[]".to_string()),
        ("partition-spec-id", "0".to_string()),
        ("format-version", "2".to_string()),
        ("content", "data".to_string()),
    ];
    let sequence = to_i64(version);
    let entries = files
        .iter()
        .map(|file| {
            let uri = storage.uri_of(&file.path).ok_or_else(|| {
                LakeError::Io("the lake's object store has no URI for its files".into())
            })?;
            let data_file = Datum::Record(vec![
                Datum::Int(0),
                Datum::Str(uri),
                Datum::Str("PARQUET".into()),
                Datum::Record(vec![]),
                Datum::Long(to_i64(file.rows)),
                Datum::Long(to_i64(file.size)),
            ]);
            Ok(Datum::Record(vec![
                Datum::Int(1),
                some_long(snapshot_id),
                some_long(sequence),
                some_long(sequence),
                data_file,
            ]))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(container(
        MANIFEST_SCHEMA,
        &metadata,
        &entries,
        sync_marker("manifest"),
    ))
}

/// The manifest list of a snapshot with one data manifest.
fn manifest_list_bytes(
    manifest_uri: &str,
    manifest_len: u64,
    files: &[DataFile],
    snapshot_id: i64,
    version: u64,
) -> Vec<u8> {
    let metadata = [
        ("snapshot-id", snapshot_id.to_string()),
        ("parent-snapshot-id", "null".to_string()),
        ("sequence-number", version.to_string()),
        ("format-version", "2".to_string()),
    ];
    let rows: u64 = files.iter().map(|file| file.rows).sum();
    let sequence = to_i64(version);
    let entry = Datum::Record(vec![
        Datum::Str(manifest_uri.into()),
        Datum::Long(to_i64(manifest_len)),
        Datum::Int(0),
        Datum::Int(0),
        Datum::Long(sequence),
        Datum::Long(sequence),
        Datum::Long(snapshot_id),
        Datum::Int(i32::try_from(files.len()).unwrap_or(i32::MAX)),
        Datum::Int(0),
        Datum::Int(0),
        Datum::Long(to_i64(rows)),
        Datum::Long(0),
        Datum::Long(0),
    ]);
    container(
        MANIFEST_LIST_SCHEMA,
        &metadata,
        &[entry],
        sync_marker("manifest-list"),
    )
}

/// What one version's table metadata is made of.
struct TableVersion<'a> {
    store: &'a str,
    location: &'a str,
    schema: &'a IcebergSchema,
    files: &'a [DataFile],
    version: u64,
    snapshot_id: i64,
    manifest_list: &'a str,
    now_ms: i64,
    metadata_uri: &'a dyn Fn(u64) -> String,
}

/// `v<N>.metadata.json` (Iceberg table metadata, format version 2): unpartitioned,
/// unsorted, one snapshot (the current one, `overwrite`) referenced by `main`.
fn table_metadata(table: &TableVersion<'_>) -> Value {
    let rows: u64 = table.files.iter().map(|file| file.rows).sum();
    let bytes: u64 = table.files.iter().map(|file| file.size).sum();
    let summary: BTreeMap<&str, String> = BTreeMap::from([
        ("operation", "overwrite".to_string()),
        ("added-data-files", table.files.len().to_string()),
        ("added-records", rows.to_string()),
        ("added-files-size", bytes.to_string()),
        ("total-data-files", table.files.len().to_string()),
        ("total-records", rows.to_string()),
        ("total-files-size", bytes.to_string()),
        ("total-delete-files", "0".to_string()),
        ("total-position-deletes", "0".to_string()),
        ("total-equality-deletes", "0".to_string()),
    ]);
    let oldest_kept = table.version.saturating_sub(KEPT_VERSIONS - 1).max(1);
    let metadata_log: Vec<Value> = (oldest_kept..table.version)
        .map(|v| json!({"timestamp-ms": table.now_ms, "metadata-file": (table.metadata_uri)(v)}))
        .collect();
    let mapping = table.schema.name_mapping.to_string();
    json!({
        "format-version": 2,
        "table-uuid": table_uuid(table.store),
        "location": table.location,
        "last-sequence-number": to_i64(table.version),
        "last-updated-ms": table.now_ms,
        "last-column-id": table.schema.last_column_id,
        "current-schema-id": 0,
        "schemas": [table.schema.schema],
        "default-spec-id": 0,
        "partition-specs": [{"spec-id": 0, "fields": []}],
        "last-partition-id": 999,
        "default-sort-order-id": 0,
        "sort-orders": [{"order-id": 0, "fields": []}],
        "properties": {
            "schema.name-mapping.default": mapping,
            "write.format.default": "parquet",
            "opentrail.event-data-store": table.store,
        },
        "current-snapshot-id": table.snapshot_id,
        "refs": {"main": {"snapshot-id": table.snapshot_id, "type": "branch"}},
        "snapshots": [{
            "snapshot-id": table.snapshot_id,
            "sequence-number": to_i64(table.version),
            "timestamp-ms": table.now_ms,
            "summary": summary,
            "manifest-list": table.manifest_list,
            "schema-id": 0,
        }],
        "snapshot-log": [{"timestamp-ms": table.now_ms, "snapshot-id": table.snapshot_id}],
        "metadata-log": metadata_log,
        "statistics": [],
        "partition-statistics": [],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreSchema;
    use std::sync::Arc;

    #[test]
    fn schema_follows_the_arrow_schema_with_unique_ids() {
        let iceberg = IcebergSchema::of(&StoreSchema::CloudTrailEvents.file_schema());
        let fields = iceberg.schema["fields"].as_array().unwrap();
        let names: Vec<&str> = fields.iter().map(|f| f["name"].as_str().unwrap()).collect();
        assert_eq!(names[..3], ["eventversion", "useridentity", "eventtime"]);
        let eventtime = &fields[2];
        assert_eq!(eventtime["type"], "timestamp");
        assert_eq!(eventtime["required"], false);
        let params = fields
            .iter()
            .find(|f| f["name"] == "requestparameters")
            .unwrap();
        assert_eq!(params["type"]["type"], "map");
        assert_eq!(params["type"]["key"], "string");
        assert_eq!(params["type"]["value-required"], false);
        let resources = fields.iter().find(|f| f["name"] == "resources").unwrap();
        assert_eq!(resources["type"]["type"], "list");
        assert_eq!(resources["type"]["element"]["type"], "struct");
        // Every id once, from 1 to last-column-id.
        let mut ids = Vec::new();
        collect_ids(&iceberg.schema, &mut ids);
        ids.sort();
        let expected: Vec<i64> = (1..=i64::from(iceberg.last_column_id)).collect();
        assert_eq!(ids, expected);
        // The name mapping names the same ids.
        let mut mapped = Vec::new();
        collect_mapping_ids(&iceberg.name_mapping, &mut mapped);
        mapped.sort();
        assert_eq!(mapped, expected);
    }

    fn collect_ids(value: &Value, ids: &mut Vec<i64>) {
        match value {
            Value::Object(map) => {
                for key in ["id", "element-id", "key-id", "value-id"] {
                    if let Some(id) = map.get(key).and_then(Value::as_i64) {
                        ids.push(id);
                    }
                }
                for (key, nested) in map {
                    if key != "schema-id" {
                        collect_ids(nested, ids);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| collect_ids(item, ids)),
            _ => {}
        }
    }

    fn collect_mapping_ids(value: &Value, ids: &mut Vec<i64>) {
        for entry in value.as_array().unwrap() {
            ids.push(entry["field-id"].as_i64().unwrap());
            if let Some(nested) = entry.get("fields") {
                collect_mapping_ids(nested, ids);
            }
        }
    }

    #[test]
    fn activity_schema_maps_too() {
        let iceberg = IcebergSchema::of(&StoreSchema::ActivityAuditLog.arrow_schema());
        let metadata = iceberg.schema["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == "metadata")
            .unwrap()
            .clone();
        assert_eq!(metadata["type"]["fields"][0]["name"], "ingestiontime");
        assert_eq!(metadata["type"]["fields"][0]["type"], "timestamp");
    }

    fn storage() -> LakeStorage {
        LakeStorage::new(
            Arc::new(object_store::memory::InMemory::new()),
            Path::from("lake"),
        )
        .with_location("file:///data/lake")
    }

    fn sample_files() -> Vec<DataFile> {
        vec![
            DataFile {
                path: Path::from("lake/s1/eventday=2024-01-01/part-1-2.parquet"),
                size: 1234,
                rows: 7,
            },
            DataFile {
                path: Path::from("lake/s1/eventday=2024-01-02/part-3-4.parquet"),
                size: 99,
                rows: 1,
            },
        ]
    }

    #[test]
    fn manifests_read_back_with_the_iceberg_schemas() {
        let storage = storage();
        let schema = IcebergSchema::of(&StoreSchema::CloudTrailEvents.file_schema());
        let files = sample_files();
        let bytes = manifest_bytes(&storage, &schema, &files, 42, 3).unwrap();
        let read = crate::avro::read::container(&bytes).unwrap();
        assert_eq!(read.metadata["format-version"], b"2");
        assert_eq!(read.metadata["content"], b"data");
        let table_schema: Value = serde_json::from_slice(&read.metadata["schema"]).unwrap();
        assert_eq!(table_schema, schema.schema);
        // The written schema is Iceberg's, field ids included.
        let written: Value = serde_json::from_slice(&read.metadata["avro.schema"]).unwrap();
        assert_eq!(written["name"], "manifest_entry");
        assert_eq!(written["fields"][4]["field-id"], 2);
        assert_eq!(written["fields"][4]["type"]["fields"][1]["field-id"], 100);
        assert_eq!(read.records.len(), 2);
        let Datum::Record(entry) = &read.records[0] else {
            panic!("not a record: {:?}", read.records[0]);
        };
        assert_eq!(entry[0], Datum::Int(1));
        assert_eq!(entry[1], some_long(42));
        assert_eq!(entry[2], some_long(3));
        let Datum::Record(data_file) = &entry[4] else {
            panic!("no data_file");
        };
        assert_eq!(
            data_file[1],
            Datum::Str("file:///data/lake/lake/s1/eventday=2024-01-01/part-1-2.parquet".into())
        );
        assert_eq!(data_file[2], Datum::Str("PARQUET".into()));
        assert_eq!(data_file[4], Datum::Long(7));
        assert_eq!(data_file[5], Datum::Long(1234));

        let list = manifest_list_bytes("file:///m.avro", 500, &files, 42, 3);
        let read = crate::avro::read::container(&list).unwrap();
        let written: Value = serde_json::from_slice(&read.metadata["avro.schema"]).unwrap();
        assert_eq!(written["name"], "manifest_file");
        let [Datum::Record(entry)] = read.records.as_slice() else {
            panic!("one manifest expected: {:?}", read.records);
        };
        let names: Vec<&str> = written["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        let get = |name: &str| entry[names.iter().position(|n| *n == name).unwrap()].clone();
        assert_eq!(get("manifest_path"), Datum::Str("file:///m.avro".into()));
        assert_eq!(get("manifest_length"), Datum::Long(500));
        assert_eq!(get("added_files_count"), Datum::Int(2));
        assert_eq!(get("added_rows_count"), Datum::Long(8));
        assert_eq!(get("sequence_number"), Datum::Long(3));
        assert_eq!(get("added_snapshot_id"), Datum::Long(42));
    }

    #[tokio::test]
    async fn publishing_commits_versions_and_keeps_the_last_few() {
        let storage = storage();
        let files = sample_files();
        for version in 1..=6 {
            storage
                .publish_table("s1", StoreSchema::CloudTrailEvents, &files, version, 1000)
                .await
                .unwrap();
        }
        assert_eq!(storage.federation_version("s1").await.unwrap(), 6);
        let folder = storage.federation_prefix("s1").join("metadata");
        let mut names: Vec<String> = storage
            .objects
            .list(Some(&folder))
            .map(|o| o.unwrap().location.filename().unwrap().to_string())
            .collect()
            .await;
        names.sort();
        let versions: std::collections::BTreeSet<u64> =
            names.iter().filter_map(|n| file_version(n)).collect();
        assert_eq!(versions.into_iter().collect::<Vec<_>>(), vec![3, 4, 5, 6]);
        assert!(names.contains(&"version-hint.text".to_string()));
        let text = storage
            .objects
            .get(&folder.clone().join("v6.metadata.json"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let metadata: Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(metadata["format-version"], 2);
        assert_eq!(metadata["location"], "file:///data/lake/lake/federation/s1");
        assert_eq!(metadata["last-sequence-number"], 6);
        assert_eq!(metadata["metadata-log"].as_array().unwrap().len(), 3);
        let mapping: Value = serde_json::from_str(
            metadata["properties"]["schema.name-mapping.default"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(mapping[0]["names"][0], "eventversion");
        assert_eq!(
            metadata["current-snapshot-id"],
            metadata["snapshots"][0]["snapshot-id"]
        );
        // The same table across versions.
        assert_eq!(metadata["table-uuid"], table_uuid("s1"));

        assert!(storage.unpublish_table("s1").await.unwrap() > 0);
        assert_eq!(storage.federation_version("s1").await.unwrap(), 0);
        assert!(storage
            .objects
            .list(Some(&storage.federation_prefix("s1")))
            .next()
            .await
            .is_none());
    }

    #[test]
    fn version_of_each_metadata_file() {
        assert_eq!(file_version("v12.metadata.json"), Some(12));
        assert_eq!(file_version("snap-12-abc.avro"), Some(12));
        assert_eq!(file_version("12-abc-m0.avro"), Some(12));
        assert_eq!(file_version("version-hint.text"), None);
    }
}

//! Store configuration, with embedded defaults.

/// How the history store keeps events. `HistoryOptions { retention_days: 90, ..Default::default() }`.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryOptions {
    /// Days of history kept and searchable (AWS: 90).
    pub retention_days: u32,
    /// Flush the in-memory buffer into segment files when it holds about this many bytes
    /// (records, their index keys and bookkeeping).
    pub memtable_bytes: usize,
    /// Uncompressed size of one compressed record block: smaller blocks make lookups that
    /// return scattered events cheaper, larger ones compress better.
    pub block_bytes: usize,
    /// zstd level for record blocks.
    pub compression_level: i32,
    /// Size of the zstd dictionary trained from stored records (0 disables dictionaries).
    pub dictionary_bytes: usize,
    /// Train a fresh dictionary after this many records were compressed with the current one.
    pub dictionary_refresh_records: u64,
    /// Segment files kept open at once (least recently read closed first). Segments are
    /// opened when read, so the store's descriptors do not grow with its day partitions.
    pub max_open_files: usize,
    /// Memory for decompressed blocks and decoded index pages shared by all lookups.
    pub cache_bytes: usize,
    /// When a day partition has more than this many segments, its smallest are merged
    /// until half as many remain. Flushing comes first. With `background_flush`, a
    /// background merger at the lowest CPU priority merges, so a partition may hold more
    /// while ingest takes the CPU, up to four times as many (beyond that the flusher merges
    /// it at once); without, merges wait while memtables do, up to twice as many.
    pub max_segments_per_partition: usize,
    /// Log every inserted batch to the store's own write-ahead log, so that inserted
    /// events survive a crash before their memtable is flushed. Off when the caller can
    /// feed them again from its own durable log, from [`crate::HistoryStore::durable_offset`]
    /// (the server does, from the event log): inserts then skip compressing and writing
    /// every event a second time.
    pub write_ahead_log: bool,
    /// fsync the write-ahead log before `insert_batch` returns.
    pub sync_writes: bool,
    /// Threads used to compress blocks when flushing and merging.
    pub compression_threads: usize,
    /// Write full memtables to segments on a background thread (otherwise inside the
    /// `insert_batch` call that filled them).
    pub background_flush: bool,
}

impl Default for HistoryOptions {
    fn default() -> Self {
        Self {
            retention_days: 90,
            memtable_bytes: 24 << 20,
            block_bytes: 32 << 10,
            compression_level: 3,
            dictionary_bytes: 1 << 20,
            dictionary_refresh_records: 4_000_000,
            max_open_files: 128,
            cache_bytes: 48 << 20,
            max_segments_per_partition: 12,
            write_ahead_log: true,
            sync_writes: true,
            compression_threads: std::thread::available_parallelism()
                .map(|threads| threads.get().min(4))
                .unwrap_or(1),
            background_flush: true,
        }
    }
}

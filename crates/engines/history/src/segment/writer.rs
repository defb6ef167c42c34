//! Writes one immutable segment file: records in order (by stream, then newest first)
//! into compressed blocks, then the sort-key column, the key index, the bloom filter and
//! the directory. The file is written under a temporary name, synced, and renamed into place.

use super::block::{compress_blocks, compress_page, BlockBuilder};
use super::directory::{
    BlockEntry, ChunkEntry, Directory, Extent, IndexPageEntry, StreamEntry, END_MAGIC, MAGIC,
};
use super::key_index::IndexPageBuilder;
use super::sort_keys::{key_fingerprint, SortKeyChunk, CHUNK_LEN};
use crate::bloom::Bloom;
use crate::dictionary::Dictionary;
use crate::error::HistoryError;
use crate::index_key::{fingerprint_bloom_hash, key_bloom_hash};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Compression level of metadata pages (sort keys, index): fast, they are small.
const PAGE_LEVEL: i32 = 3;
/// Raw bytes of blocks compressed together per thread before writing them out.
const PENDING_BYTES_PER_THREAD: usize = 1 << 20;

#[derive(Debug, Clone, Copy)]
pub(crate) struct WriteSettings {
    pub(crate) block_bytes: usize,
    pub(crate) level: i32,
    pub(crate) threads: usize,
}

/// What a finished segment holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WrittenSegment {
    pub(crate) events: u32,
    pub(crate) bytes: u64,
}

pub(crate) struct SegmentWriter<'d> {
    path: PathBuf,
    tmp_path: PathBuf,
    file: BufWriter<File>,
    offset: u64,
    day: i32,
    dictionary: Option<&'d Dictionary>,
    settings: WriteSettings,
    current: BlockBuilder,
    pending: Vec<Vec<u8>>,
    pending_records: Vec<u32>,
    pending_bytes: usize,
    blocks: Vec<BlockEntry>,
    sort_keys: Vec<u64>,
    streams: Vec<StreamEntry>,
}

fn len_u32(len: usize, path: &Path) -> Result<u32, HistoryError> {
    u32::try_from(len).map_err(|_| HistoryError::corrupt(path, "page larger than 4 GiB"))
}

impl<'d> SegmentWriter<'d> {
    pub(crate) fn create(
        path: &Path,
        day: i32,
        dictionary: Option<&'d Dictionary>,
        settings: WriteSettings,
    ) -> Result<Self, HistoryError> {
        let tmp_path = path.with_extension("tmp");
        let file = File::create(&tmp_path).map_err(|error| HistoryError::io(&tmp_path, error))?;
        let mut writer = Self {
            path: path.to_owned(),
            tmp_path,
            file: BufWriter::with_capacity(1 << 20, file),
            offset: 0,
            day,
            dictionary,
            settings,
            current: BlockBuilder::default(),
            pending: Vec::new(),
            pending_records: Vec::new(),
            pending_bytes: 0,
            blocks: Vec::new(),
            sort_keys: Vec::new(),
            streams: Vec::new(),
        };
        writer.write(MAGIC)?;
        Ok(writer)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<u64, HistoryError> {
        let at = self.offset;
        self.file
            .write_all(bytes)
            .map_err(|error| HistoryError::io(&self.tmp_path, error))?;
        self.offset += bytes.len() as u64;
        Ok(at)
    }

    /// Appends the next record of `stream` (its stream index key). Records come grouped
    /// by stream, streams in ascending key order, each newest first.
    pub(crate) fn push(
        &mut self,
        stream: &[u8],
        sort_key: u64,
        record: &[u8],
    ) -> Result<(), HistoryError> {
        let ordinal = len_u32(self.sort_keys.len(), &self.tmp_path)?;
        match self.streams.last_mut() {
            Some(current) if &*current.key == stream => {
                debug_assert!(current.last_key >= sort_key);
                current.end = ordinal + 1;
                current.last_key = sort_key;
            }
            previous => {
                debug_assert!(previous.is_none_or(|previous| &*previous.key < stream));
                self.streams.push(StreamEntry {
                    key: stream.into(),
                    start: ordinal,
                    end: ordinal + 1,
                    first_key: sort_key,
                    last_key: sort_key,
                });
            }
        }
        self.sort_keys.push(sort_key);
        self.current.push(record);
        if self.current.data_bytes() >= self.settings.block_bytes {
            self.seal_block()?;
        }
        Ok(())
    }

    fn seal_block(&mut self) -> Result<(), HistoryError> {
        if self.current.records() == 0 {
            return Ok(());
        }
        self.pending_records.push(self.current.records() as u32);
        let raw = self.current.take();
        self.pending_bytes += raw.len();
        self.pending.push(raw);
        if self.pending_bytes >= PENDING_BYTES_PER_THREAD * self.settings.threads.max(1) {
            self.write_pending()?;
        }
        Ok(())
    }

    fn write_pending(&mut self) -> Result<(), HistoryError> {
        let raws = std::mem::take(&mut self.pending);
        let records = std::mem::take(&mut self.pending_records);
        self.pending_bytes = 0;
        let compressed = compress_blocks(
            &raws,
            self.dictionary,
            self.settings.level,
            self.settings.threads,
        )
        .map_err(|error| HistoryError::io(&self.tmp_path, error))?;
        for ((raw, frame), records) in raws.iter().zip(&compressed).zip(records) {
            let offset = self.write(frame)?;
            let first_ordinal = self
                .blocks
                .last()
                .map_or(0, |block| block.first_ordinal + block.records);
            self.blocks.push(BlockEntry {
                extent: Extent {
                    offset,
                    compressed_len: len_u32(frame.len(), &self.tmp_path)?,
                    raw_len: len_u32(raw.len(), &self.tmp_path)?,
                },
                first_ordinal,
                records,
            });
        }
        Ok(())
    }

    fn write_page(&mut self, raw: &[u8]) -> Result<Extent, HistoryError> {
        let compressed = compress_page(raw, PAGE_LEVEL)
            .map_err(|error| HistoryError::io(&self.tmp_path, error))?;
        let offset = self.write(&compressed)?;
        Ok(Extent {
            offset,
            compressed_len: len_u32(compressed.len(), &self.tmp_path)?,
            raw_len: len_u32(raw.len(), &self.tmp_path)?,
        })
    }

    /// Writes the index (`postings`: attribute keys ascending, each with ascending
    /// ordinals; stream keys are not indexed, the directory holds their ranges) and
    /// the remaining metadata, then makes the file durable under its final name.
    pub(crate) fn finish<K: AsRef<[u8]>, O: AsRef<[u32]>>(
        mut self,
        postings: impl IntoIterator<Item = (K, O)>,
    ) -> Result<WrittenSegment, HistoryError> {
        self.seal_block()?;
        self.write_pending()?;
        let events = len_u32(self.sort_keys.len(), &self.tmp_path)?;

        let sort_keys = std::mem::take(&mut self.sort_keys);
        let mut chunks = Vec::with_capacity(sort_keys.len().div_ceil(CHUNK_LEN));
        for keys in sort_keys.chunks(CHUNK_LEN) {
            let extent = self.write_page(&SortKeyChunk::encode(keys))?;
            chunks.push(ChunkEntry { extent });
        }

        let mut key_hashes = Vec::new();
        let mut index_pages = Vec::new();
        let mut builder = IndexPageBuilder::default();
        for (key, ordinals) in postings {
            let key = key.as_ref();
            key_hashes.push(key_bloom_hash(key));
            builder.push(key, ordinals.as_ref());
            if builder.is_full() {
                self.push_index_page(&mut builder, &mut index_pages)?;
            }
        }
        self.push_index_page(&mut builder, &mut index_pages)?;

        let mut bloom = Bloom::with_items(key_hashes.len() + sort_keys.len());
        for hash in key_hashes {
            bloom.insert(hash);
        }
        for &key in &sort_keys {
            bloom.insert(fingerprint_bloom_hash(key_fingerprint(key)));
        }
        let bloom_bytes: Vec<u8> = bloom
            .words()
            .iter()
            .flat_map(|word| word.to_le_bytes())
            .collect();
        let bloom_offset = self.write(&bloom_bytes)?;

        let directory = Directory {
            day: self.day,
            events,
            dictionary: self.dictionary.map_or(0, Dictionary::id),
            blocks: std::mem::take(&mut self.blocks),
            chunks,
            index_pages,
            streams: std::mem::take(&mut self.streams),
            bloom_offset,
            bloom_words: len_u32(bloom.words().len(), &self.tmp_path)?,
        };
        let raw = directory.encode();
        let compressed = compress_page(&raw, PAGE_LEVEL)
            .map_err(|error| HistoryError::io(&self.tmp_path, error))?;
        let directory_offset = self.write(&compressed)?;
        let mut footer = Vec::with_capacity(super::directory::FOOTER_LEN);
        footer.extend_from_slice(&directory_offset.to_le_bytes());
        footer.extend_from_slice(&len_u32(compressed.len(), &self.tmp_path)?.to_le_bytes());
        footer.extend_from_slice(&len_u32(raw.len(), &self.tmp_path)?.to_le_bytes());
        footer.extend_from_slice(&crc32fast::hash(&compressed).to_le_bytes());
        footer.extend_from_slice(END_MAGIC);
        self.write(&footer)?;

        let bytes = self.offset;
        let file = self
            .file
            .into_inner()
            .map_err(|error| HistoryError::io(&self.tmp_path, error.into_error()))?;
        file.sync_all()
            .map_err(|error| HistoryError::io(&self.tmp_path, error))?;
        drop(file);
        std::fs::rename(&self.tmp_path, &self.path)
            .map_err(|error| HistoryError::io(&self.path, error))?;
        Ok(WrittenSegment { events, bytes })
    }

    fn push_index_page(
        &mut self,
        builder: &mut IndexPageBuilder,
        pages: &mut Vec<IndexPageEntry>,
    ) -> Result<(), HistoryError> {
        let Some((first_key, page)) = builder.take() else {
            return Ok(());
        };
        let extent = self.write_page(&page)?;
        pages.push(IndexPageEntry {
            extent,
            first_key: first_key.into(),
        });
        Ok(())
    }
}

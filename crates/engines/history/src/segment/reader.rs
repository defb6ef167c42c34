//! An open, immutable segment: its directory and bloom filter in memory, everything else
//! read on demand with positioned reads through the shared page cache.

use super::block::{decompress, DecodedBlock};
use super::directory::{Directory, Extent, StreamEntry, END_MAGIC, FOOTER_LEN, MAGIC};
use super::key_index::IndexPageReader;
use super::sort_keys::{key_fingerprint, SortKeyChunk, CHUNK_LEN};
use crate::bloom::Bloom;
use crate::cache::{Page, PageCache, PageId, PageKind};
use crate::dictionary::Dictionary;
use crate::error::HistoryError;
use crate::files::OpenFiles;
use crate::index_key::{fingerprint_bloom_hash, key_bloom_hash};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(crate) struct Segment {
    id: u64,
    path: PathBuf,
    /// Where the segment's file is opened on demand (no descriptor is held per segment).
    files: Arc<OpenFiles>,
    directory: Directory,
    bloom: Bloom,
    dictionary: Option<Arc<Dictionary>>,
    file_bytes: u64,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("id", &self.id)
            .field("day", &self.directory.day)
            .field("events", &self.directory.events)
            .finish()
    }
}

impl Segment {
    /// Opens segment `id` at `path`; `dictionary` resolves the dictionary id it names.
    pub(crate) fn open(
        path: &Path,
        id: u64,
        files: &Arc<OpenFiles>,
        dictionary: impl Fn(u32) -> Option<Arc<Dictionary>>,
    ) -> Result<Self, HistoryError> {
        let corrupt = |reason: &str| HistoryError::corrupt(path, reason);
        // Read once here and not kept open: a store can hold thousands of segments.
        let file = File::open(path).map_err(|error| HistoryError::io(path, error))?;
        let file_bytes = file
            .metadata()
            .map_err(|error| HistoryError::io(path, error))?
            .len();
        if file_bytes < (MAGIC.len() + FOOTER_LEN) as u64 {
            return Err(corrupt("file too short"));
        }
        let mut magic = [0u8; 8];
        read_at(&file, path, &mut magic, 0)?;
        let mut footer = [0u8; FOOTER_LEN];
        read_at(&file, path, &mut footer, file_bytes - FOOTER_LEN as u64)?;
        if &magic != MAGIC || &footer[20..] != END_MAGIC {
            return Err(corrupt("bad magic"));
        }
        let word = |at: usize| {
            u32::from_le_bytes([footer[at], footer[at + 1], footer[at + 2], footer[at + 3]])
        };
        let directory_offset = u64::from_le_bytes(footer[..8].try_into().unwrap_or([0; 8]));
        let compressed_len = word(8);
        let raw_len = word(12);
        let crc = word(16);
        let mut compressed = vec![0u8; compressed_len as usize];
        read_at(&file, path, &mut compressed, directory_offset)?;
        if crc32fast::hash(&compressed) != crc {
            return Err(corrupt("directory checksum mismatch"));
        }
        let raw = decompress(&compressed, raw_len as usize, None)
            .map_err(|error| HistoryError::corrupt(path, format!("directory: {error}")))?;
        let directory = Directory::decode(&raw).ok_or_else(|| corrupt("malformed directory"))?;
        let mut bloom_bytes = vec![0u8; directory.bloom_words as usize * 8];
        read_at(&file, path, &mut bloom_bytes, directory.bloom_offset)?;
        let words = bloom_bytes
            .chunks_exact(8)
            .map(|word| u64::from_le_bytes(word.try_into().unwrap_or([0; 8])))
            .collect();
        let bloom = Bloom::from_words(words).ok_or_else(|| corrupt("malformed bloom filter"))?;
        let dictionary = match directory.dictionary {
            0 => None,
            id => Some(dictionary(id).ok_or_else(|| {
                HistoryError::corrupt(path, format!("dictionary {id} is missing"))
            })?),
        };
        if directory.chunks.len() != (directory.events as usize).div_ceil(CHUNK_LEN) {
            return Err(corrupt("sort-key chunks do not cover the events"));
        }
        Ok(Self {
            id,
            path: path.to_owned(),
            files: files.clone(),
            directory,
            bloom,
            dictionary,
            file_bytes,
        })
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn day(&self) -> i32 {
        self.directory.day
    }

    pub(crate) fn events(&self) -> u32 {
        self.directory.events
    }

    pub(crate) fn file_bytes(&self) -> u64 {
        self.file_bytes
    }

    /// Bytes of compressed record blocks (the rest of the file is indexes and metadata).
    pub(crate) fn record_bytes(&self) -> u64 {
        self.directory
            .blocks
            .iter()
            .map(|block| u64::from(block.extent.compressed_len))
            .sum()
    }

    pub(crate) fn dictionary_id(&self) -> u32 {
        self.directory.dictionary
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The ordinal range and key bounds of `stream` (a stream index key), if it has events here.
    pub(crate) fn stream(&self, stream: &[u8]) -> Option<&StreamEntry> {
        let streams = &self.directory.streams;
        streams
            .binary_search_by(|entry| (*entry.key).cmp(stream))
            .ok()
            .map(|index| &streams[index])
    }

    pub(crate) fn streams(&self) -> &[StreamEntry] {
        &self.directory.streams
    }

    fn read_page(
        &self,
        extent: &Extent,
        dictionary: Option<&Dictionary>,
    ) -> Result<Vec<u8>, HistoryError> {
        let mut compressed = vec![0u8; extent.compressed_len as usize];
        let file = self.files.get(self.id, &self.path)?;
        read_at(&file, &self.path, &mut compressed, extent.offset)?;
        decompress(&compressed, extent.raw_len as usize, dictionary).map_err(|error| {
            HistoryError::corrupt(&self.path, format!("page at {}: {error}", extent.offset))
        })
    }

    fn page_id(&self, kind: PageKind, index: usize) -> PageId {
        PageId {
            segment: self.id,
            kind,
            index: index as u32,
        }
    }

    pub(crate) fn block(
        &self,
        index: usize,
        cache: &PageCache,
    ) -> Result<Arc<DecodedBlock>, HistoryError> {
        let id = self.page_id(PageKind::Block, index);
        if let Some(Page::Block(block)) = cache.get(id) {
            return Ok(block);
        }
        let entry = self
            .directory
            .blocks
            .get(index)
            .ok_or_else(|| HistoryError::corrupt(&self.path, "block index out of range"))?;
        let raw = self.read_page(&entry.extent, self.dictionary.as_deref())?;
        let block = DecodedBlock::decode(raw)
            .filter(|block| block.len() == entry.records as usize)
            .ok_or_else(|| HistoryError::corrupt(&self.path, format!("malformed block {index}")))?;
        let block = Arc::new(block);
        cache.insert(id, Page::Block(block.clone()));
        Ok(block)
    }

    fn chunk(&self, index: usize, cache: &PageCache) -> Result<Arc<SortKeyChunk>, HistoryError> {
        let id = self.page_id(PageKind::SortKeys, index);
        if let Some(Page::SortKeys(chunk)) = cache.get(id) {
            return Ok(chunk);
        }
        let entry = self
            .directory
            .chunks
            .get(index)
            .ok_or_else(|| HistoryError::corrupt(&self.path, "chunk index out of range"))?;
        let expected = CHUNK_LEN.min(self.directory.events as usize - index * CHUNK_LEN);
        let chunk = SortKeyChunk::decode(&self.read_page(&entry.extent, None)?)
            .filter(|chunk| chunk.keys.len() == expected)
            .ok_or_else(|| {
                HistoryError::corrupt(&self.path, format!("malformed sort-key chunk {index}"))
            })?;
        let chunk = Arc::new(chunk);
        cache.insert(id, Page::SortKeys(chunk.clone()));
        Ok(chunk)
    }

    fn index_page(&self, index: usize, cache: &PageCache) -> Result<Arc<Vec<u8>>, HistoryError> {
        let id = self.page_id(PageKind::Index, index);
        if let Some(Page::Index(page)) = cache.get(id) {
            return Ok(page);
        }
        let entry = self
            .directory
            .index_pages
            .get(index)
            .ok_or_else(|| HistoryError::corrupt(&self.path, "index page out of range"))?;
        let page = Arc::new(self.read_page(&entry.extent, None)?);
        cache.insert(id, Page::Index(page.clone()));
        Ok(page)
    }

    /// Block `index`, read and decompressed without touching the cache (for merges,
    /// which read every block once).
    pub(crate) fn block_uncached(&self, index: usize) -> Result<DecodedBlock, HistoryError> {
        let entry = self
            .directory
            .blocks
            .get(index)
            .ok_or_else(|| HistoryError::corrupt(&self.path, "block index out of range"))?;
        let raw = self.read_page(&entry.extent, self.dictionary.as_deref())?;
        DecodedBlock::decode(raw)
            .filter(|block| block.len() == entry.records as usize)
            .ok_or_else(|| HistoryError::corrupt(&self.path, format!("malformed block {index}")))
    }

    /// The posting list of `key`: ascending ordinals of the events indexed under it.
    pub(crate) fn postings(&self, key: &[u8], cache: &PageCache) -> Result<Vec<u32>, HistoryError> {
        if !self.bloom.may_contain(key_bloom_hash(key)) {
            return Ok(Vec::new());
        }
        let pages = &self.directory.index_pages;
        let after = pages.partition_point(|page| &*page.first_key <= key);
        let Some(index) = after.checked_sub(1) else {
            return Ok(Vec::new());
        };
        let page = self.index_page(index, cache)?;
        IndexPageReader::new(&page)
            .find(key)
            .map(Option::unwrap_or_default)
            .map_err(|()| {
                HistoryError::corrupt(&self.path, format!("malformed index page {index}"))
            })
    }

    /// Every index entry, in key order (for merging segments; read without the cache).
    pub(crate) fn for_each_index_entry(
        &self,
        mut visit: impl FnMut(&[u8], Vec<u32>),
    ) -> Result<(), HistoryError> {
        for (index, entry) in self.directory.index_pages.iter().enumerate() {
            let page = self.read_page(&entry.extent, None)?;
            for entry in IndexPageReader::new(&page) {
                let corrupt =
                    || HistoryError::corrupt(&self.path, format!("malformed index page {index}"));
                let entry = entry.map_err(|()| corrupt())?;
                let ordinals = entry.ordinals().ok_or_else(corrupt)?;
                visit(&entry.key, ordinals);
            }
        }
        Ok(())
    }

    /// Ordinals of events whose identity fingerprint is `fingerprint`.
    pub(crate) fn fingerprint_ordinals(
        &self,
        fingerprint: u32,
        cache: &PageCache,
    ) -> Result<Vec<u32>, HistoryError> {
        if !self.bloom.may_contain(fingerprint_bloom_hash(fingerprint)) {
            return Ok(Vec::new());
        }
        let table = self.fingerprint_table(cache)?;
        let from = table.partition_point(|&(fp, _)| fp < fingerprint);
        Ok(table[from..]
            .iter()
            .take_while(|&&(fp, _)| fp == fingerprint)
            .map(|&(_, ordinal)| ordinal)
            .collect())
    }

    fn fingerprint_table(&self, cache: &PageCache) -> Result<Arc<Vec<(u32, u32)>>, HistoryError> {
        let id = self.page_id(PageKind::Fingerprints, 0);
        if let Some(Page::Fingerprints(table)) = cache.get(id) {
            return Ok(table);
        }
        let mut table = Vec::with_capacity(self.directory.events as usize);
        for index in 0..self.directory.chunks.len() {
            let chunk = self.chunk(index, cache)?;
            let base = (index * CHUNK_LEN) as u32;
            table.extend(
                chunk
                    .keys
                    .iter()
                    .enumerate()
                    .map(|(at, &key)| (key_fingerprint(key), base + at as u32)),
            );
        }
        table.sort_unstable();
        let table = Arc::new(table);
        cache.insert(id, Page::Fingerprints(table.clone()));
        Ok(table)
    }

    /// The whole sort-key column, read without the cache (for merges).
    pub(crate) fn all_sort_keys(&self) -> Result<Vec<u64>, HistoryError> {
        let mut keys = Vec::with_capacity(self.directory.events as usize);
        for (index, entry) in self.directory.chunks.iter().enumerate() {
            let chunk =
                SortKeyChunk::decode(&self.read_page(&entry.extent, None)?).ok_or_else(|| {
                    HistoryError::corrupt(&self.path, format!("malformed sort-key chunk {index}"))
                })?;
            keys.extend(chunk.keys);
        }
        if keys.len() != self.directory.events as usize {
            return Err(HistoryError::corrupt(
                &self.path,
                "sort-key column does not cover the events",
            ));
        }
        Ok(keys)
    }

    pub(crate) fn sort_key(&self, ordinal: u32, cache: &PageCache) -> Result<u64, HistoryError> {
        let ordinal = ordinal as usize;
        let chunk = self.chunk(ordinal / CHUNK_LEN, cache)?;
        chunk
            .keys
            .get(ordinal % CHUNK_LEN)
            .copied()
            .ok_or_else(|| HistoryError::corrupt(&self.path, "ordinal out of range"))
    }

    /// The first ordinal of `stream` whose sort key is at most `bound` (`stream.end` if
    /// none is); keys descend within a stream.
    pub(crate) fn first_at_or_below(
        &self,
        stream: &StreamEntry,
        bound: u64,
        cache: &PageCache,
    ) -> Result<u32, HistoryError> {
        let (mut low, mut high) = (stream.start, stream.end);
        while low < high {
            let middle = low + (high - low) / 2;
            if self.sort_key(middle, cache)? > bound {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        Ok(low)
    }

    /// The block holding `ordinal` and the record's position in it.
    pub(crate) fn locate(&self, ordinal: u32) -> Option<(usize, usize)> {
        let blocks = &self.directory.blocks;
        let index = blocks
            .partition_point(|block| block.first_ordinal <= ordinal)
            .checked_sub(1)?;
        let block = &blocks[index];
        let within = ordinal - block.first_ordinal;
        (within < block.records).then_some((index, within as usize))
    }
}

fn read_at(file: &File, path: &Path, buffer: &mut [u8], offset: u64) -> Result<(), HistoryError> {
    file.read_exact_at(buffer, offset)
        .map_err(|error| HistoryError::io(path, error))
}

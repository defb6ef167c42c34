//! A segment's table of contents, stored compressed at the end of the file and kept in
//! memory while the segment is open: where each record block, sort-key chunk and index
//! page lives; the segment's day, size and dictionary; and its streams.
//!
//! Records are ordered by stream — one (category, account, region), named by its stream
//! index key — then newest first, so each stream is one contiguous ordinal range and a
//! lookup, which always concerns one stream, reads only that stream's blocks.
//!
//! File layout: `MAGIC | blocks | sort-key chunks | index pages | bloom | directory | footer`.
//! Footer: `directory offset u64 | compressed len u32 | raw len u32 | crc32 u32 | END_MAGIC`.

use crate::varint;

pub(crate) const MAGIC: &[u8; 8] = b"OTHSEG1\n";
pub(crate) const END_MAGIC: &[u8; 8] = b"OTHEND1\n";
pub(crate) const FOOTER_LEN: usize = 8 + 4 + 4 + 4 + 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Extent {
    pub(crate) offset: u64,
    pub(crate) compressed_len: u32,
    pub(crate) raw_len: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlockEntry {
    pub(crate) extent: Extent,
    pub(crate) first_ordinal: u32,
    pub(crate) records: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChunkEntry {
    pub(crate) extent: Extent,
}

/// One stream's records: ordinals `start..end`, sort keys from `first_key` (newest) down
/// to `last_key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StreamEntry {
    pub(crate) key: Box<[u8]>,
    pub(crate) start: u32,
    pub(crate) end: u32,
    pub(crate) first_key: u64,
    pub(crate) last_key: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexPageEntry {
    pub(crate) extent: Extent,
    pub(crate) first_key: Box<[u8]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Directory {
    /// Days since the Unix epoch of every event in the segment.
    pub(crate) day: i32,
    pub(crate) events: u32,
    /// The dictionary the record blocks were compressed with (0: none).
    pub(crate) dictionary: u32,
    pub(crate) blocks: Vec<BlockEntry>,
    pub(crate) chunks: Vec<ChunkEntry>,
    pub(crate) index_pages: Vec<IndexPageEntry>,
    /// Sorted by key; their ranges tile `0..events` in order.
    pub(crate) streams: Vec<StreamEntry>,
    pub(crate) bloom_offset: u64,
    pub(crate) bloom_words: u32,
}

const VERSION: u64 = 2;

fn put_extent_lens(out: &mut Vec<u8>, extent: &Extent) {
    varint::put(out, u64::from(extent.compressed_len));
    varint::put(out, u64::from(extent.raw_len));
}

fn get_extent(input: &[u8], pos: &mut usize, offset: &mut u64) -> Option<Extent> {
    let compressed_len = varint::get_u32(input, pos)?;
    let raw_len = varint::get_u32(input, pos)?;
    let extent = Extent {
        offset: *offset,
        compressed_len,
        raw_len,
    };
    *offset = offset.checked_add(u64::from(compressed_len))?;
    Some(extent)
}

fn zigzag(value: i32) -> u64 {
    u64::from(((value << 1) ^ (value >> 31)) as u32)
}

fn unzigzag(value: u32) -> i32 {
    ((value >> 1) as i32) ^ -((value & 1) as i32)
}

impl Directory {
    /// Encodes the directory; extents must be contiguous within each region.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        varint::put(&mut out, VERSION);
        varint::put(&mut out, zigzag(self.day));
        varint::put(&mut out, u64::from(self.events));
        varint::put(&mut out, u64::from(self.dictionary));
        varint::put(&mut out, self.blocks.len() as u64);
        varint::put(
            &mut out,
            self.blocks.first().map_or(0, |block| block.extent.offset),
        );
        for block in &self.blocks {
            put_extent_lens(&mut out, &block.extent);
            varint::put(&mut out, u64::from(block.records));
        }
        varint::put(&mut out, self.chunks.len() as u64);
        varint::put(
            &mut out,
            self.chunks.first().map_or(0, |chunk| chunk.extent.offset),
        );
        for chunk in &self.chunks {
            put_extent_lens(&mut out, &chunk.extent);
        }
        varint::put(&mut out, self.index_pages.len() as u64);
        varint::put(
            &mut out,
            self.index_pages
                .first()
                .map_or(0, |page| page.extent.offset),
        );
        for page in &self.index_pages {
            put_extent_lens(&mut out, &page.extent);
            varint::put(&mut out, page.first_key.len() as u64);
            out.extend_from_slice(&page.first_key);
        }
        varint::put(&mut out, self.streams.len() as u64);
        for stream in &self.streams {
            varint::put(&mut out, stream.key.len() as u64);
            out.extend_from_slice(&stream.key);
            varint::put(&mut out, u64::from(stream.end - stream.start));
            varint::put(&mut out, stream.first_key);
            varint::put(&mut out, stream.last_key);
        }
        varint::put(&mut out, self.bloom_offset);
        varint::put(&mut out, u64::from(self.bloom_words));
        out
    }

    pub(crate) fn decode(input: &[u8]) -> Option<Self> {
        let pos = &mut 0;
        if varint::get(input, pos)? != VERSION {
            return None;
        }
        let day = unzigzag(varint::get_u32(input, pos)?);
        let events = varint::get_u32(input, pos)?;
        let dictionary = varint::get_u32(input, pos)?;

        let count = varint::get_usize(input, pos)?;
        let mut offset = varint::get(input, pos)?;
        let mut blocks = Vec::with_capacity(count.min(input.len()));
        let mut first_ordinal = 0u32;
        for _ in 0..count {
            let extent = get_extent(input, pos, &mut offset)?;
            let records = varint::get_u32(input, pos)?;
            blocks.push(BlockEntry {
                extent,
                first_ordinal,
                records,
            });
            first_ordinal = first_ordinal.checked_add(records)?;
        }
        if first_ordinal != events {
            return None;
        }

        let count = varint::get_usize(input, pos)?;
        let mut offset = varint::get(input, pos)?;
        let mut chunks = Vec::with_capacity(count.min(input.len()));
        for _ in 0..count {
            let extent = get_extent(input, pos, &mut offset)?;
            chunks.push(ChunkEntry { extent });
        }

        let count = varint::get_usize(input, pos)?;
        let mut offset = varint::get(input, pos)?;
        let mut index_pages = Vec::with_capacity(count.min(input.len()));
        for _ in 0..count {
            let extent = get_extent(input, pos, &mut offset)?;
            let len = varint::get_usize(input, pos)?;
            let first_key = input.get(*pos..pos.checked_add(len)?)?.into();
            *pos += len;
            index_pages.push(IndexPageEntry { extent, first_key });
        }
        let count = varint::get_usize(input, pos)?;
        let mut streams: Vec<StreamEntry> = Vec::with_capacity(count.min(input.len()));
        let mut start = 0u32;
        for _ in 0..count {
            let len = varint::get_usize(input, pos)?;
            let key: Box<[u8]> = input.get(*pos..pos.checked_add(len)?)?.into();
            *pos += len;
            let end = start.checked_add(varint::get_u32(input, pos)?)?;
            let first_key = varint::get(input, pos)?;
            let last_key = varint::get(input, pos)?;
            if streams.last().is_some_and(|previous| previous.key >= key) {
                return None;
            }
            streams.push(StreamEntry {
                key,
                start,
                end,
                first_key,
                last_key,
            });
            start = end;
        }
        if start != events {
            return None;
        }
        let bloom_offset = varint::get(input, pos)?;
        let bloom_words = varint::get_u32(input, pos)?;
        (*pos == input.len()).then_some(Self {
            day,
            events,
            dictionary,
            blocks,
            chunks,
            index_pages,
            streams,
            bloom_offset,
            bloom_words,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_round_trips() {
        let extent = |offset, compressed_len| Extent {
            offset,
            compressed_len,
            raw_len: compressed_len * 3,
        };
        let directory = Directory {
            day: -3,
            events: 5,
            dictionary: 2,
            blocks: vec![
                BlockEntry {
                    extent: extent(8, 10),
                    first_ordinal: 0,
                    records: 2,
                },
                BlockEntry {
                    extent: extent(18, 7),
                    first_ordinal: 2,
                    records: 3,
                },
            ],
            chunks: vec![ChunkEntry {
                extent: extent(25, 4),
            }],
            index_pages: vec![
                IndexPageEntry {
                    extent: extent(29, 3),
                    first_key: b"a".to_vec().into(),
                },
                IndexPageEntry {
                    extent: extent(32, 3),
                    first_key: b"b".to_vec().into(),
                },
            ],
            streams: vec![
                StreamEntry {
                    key: b"s1".to_vec().into(),
                    start: 0,
                    end: 3,
                    first_key: 9,
                    last_key: 4,
                },
                StreamEntry {
                    key: b"s2".to_vec().into(),
                    start: 3,
                    end: 5,
                    first_key: 7,
                    last_key: 1,
                },
            ],
            bloom_offset: 35,
            bloom_words: 1,
        };
        assert_eq!(Directory::decode(&directory.encode()), Some(directory));
        for value in [0, 1, -1, i32::MAX, i32::MIN, 19_800] {
            assert_eq!(unzigzag(zigzag(value) as u32), value);
        }
    }
}

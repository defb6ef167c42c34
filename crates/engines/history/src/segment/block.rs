//! Record blocks: consecutive records (in sort order) packed as
//! `[count][len]*[json]*` and zstd-compressed, optionally with a dictionary.

use crate::dictionary::Dictionary;
use crate::varint;
use std::cell::RefCell;
use std::io;
use zstd::bulk::Compressor;
use zstd::zstd_safe::{self, CParameter, DCtx, DictAttachPref, Strategy};

/// A decompressed block: the raw bytes and where each record starts.
#[derive(Debug)]
pub(crate) struct DecodedBlock {
    raw: Vec<u8>,
    /// `count + 1` offsets into `raw`; record `i` is `raw[starts[i]..starts[i + 1]]`.
    starts: Vec<u32>,
}

impl DecodedBlock {
    pub(crate) fn decode(raw: Vec<u8>) -> Option<Self> {
        let mut pos = 0;
        let count = varint::get_usize(&raw, &mut pos)?;
        if count > raw.len() {
            return None;
        }
        let mut lens = Vec::with_capacity(count);
        for _ in 0..count {
            lens.push(varint::get_usize(&raw, &mut pos)?);
        }
        let mut starts = Vec::with_capacity(count + 1);
        let mut at = pos;
        starts.push(u32::try_from(at).ok()?);
        for len in lens {
            at = at.checked_add(len)?;
            starts.push(u32::try_from(at).ok()?);
        }
        (at == raw.len()).then_some(Self { raw, starts })
    }

    pub(crate) fn len(&self) -> usize {
        self.starts.len() - 1
    }

    pub(crate) fn record(&self, index: usize) -> Option<&[u8]> {
        let start = *self.starts.get(index)? as usize;
        let end = *self.starts.get(index + 1)? as usize;
        self.raw.get(start..end)
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        self.raw.capacity() + self.starts.capacity() * 4
    }
}

/// Accumulates records into one raw block.
#[derive(Default)]
pub(crate) struct BlockBuilder {
    lens: Vec<usize>,
    data: Vec<u8>,
}

impl BlockBuilder {
    pub(crate) fn push(&mut self, record: &[u8]) {
        self.lens.push(record.len());
        self.data.extend_from_slice(record);
    }

    pub(crate) fn records(&self) -> usize {
        self.lens.len()
    }

    pub(crate) fn data_bytes(&self) -> usize {
        self.data.len()
    }

    /// The raw block, leaving the builder empty.
    pub(crate) fn take(&mut self) -> Vec<u8> {
        let mut raw = Vec::with_capacity(self.data.len() + self.lens.len() * 2 + 4);
        varint::put(&mut raw, self.lens.len() as u64);
        for &len in &self.lens {
            varint::put(&mut raw, len as u64);
        }
        raw.extend_from_slice(&self.data);
        self.lens.clear();
        self.data.clear();
        raw
    }
}

/// A compressor of one frame per block, with a checksum, at `level`; with `dictionary`
/// (its raw bytes), which the context indexes at its first frame with the tables
/// [`tune_dictionary_tables`] sets and keeps for every frame after.
pub(crate) fn block_compressor(
    dictionary: Option<&[u8]>,
    level: i32,
) -> io::Result<Compressor<'static>> {
    let mut compressor = Compressor::new(level)?;
    compressor.set_parameter(CParameter::ChecksumFlag(true))?;
    if let Some(dictionary) = dictionary {
        tune_dictionary_tables(&mut compressor, level)?;
        // Reference the dictionary's tables instead of copying them into the context for
        // every block: with small blocks the copy costs more than the search.
        compressor.set_parameter(CParameter::ForceAttachDict(DictAttachPref::ForceAttach))?;
        // Set after the parameters: the tables are built with them.
        compressor.set_dictionary(level, dictionary)?;
    }
    Ok(compressor)
}

/// zstd's level 3 (ZSTD_dfast) indexes a dictionary in two tables, of 2^17 entries for
/// 8-byte matches and 2^16 for 5-byte ones (768 KiB together), and compressing a block
/// looks in both for every position: most of those lookups miss the CPU's caches. Level 3
/// with the second table at 2^12 entries and 6-byte matches compresses the reference
/// records 1.4 % smaller and ~1.4× faster (32 KiB blocks, the store's 1 MiB dictionary; the
/// history README, "Record block compression"). Other levels keep zstd's own settings.
fn tune_dictionary_tables(compressor: &mut Compressor<'static>, level: i32) -> io::Result<()> {
    if level != 3 {
        return Ok(());
    }
    for parameter in [
        CParameter::Strategy(Strategy::ZSTD_dfast),
        CParameter::HashLog(17),
        CParameter::ChainLog(12),
        CParameter::SearchLog(1),
        CParameter::MinMatch(6),
        CParameter::TargetLength(0),
    ] {
        compressor.set_parameter(parameter)?;
    }
    Ok(())
}

/// Runs `work` with a block compressor: `dictionary`'s (from its pool, and back to it
/// after `work` succeeds) or one of `level` without.
fn with_compressor<T>(
    dictionary: Option<&Dictionary>,
    level: i32,
    work: impl FnOnce(&mut Compressor<'static>) -> io::Result<T>,
) -> io::Result<T> {
    match dictionary {
        Some(dictionary) => {
            let mut compressor = dictionary.take_compressor()?;
            let done = work(&mut compressor)?;
            dictionary.put_back(compressor);
            Ok(done)
        }
        None => work(&mut block_compressor(None, level)?),
    }
}

fn compress_all(
    raws: &[Vec<u8>],
    compressor: &mut Compressor<'static>,
) -> io::Result<Vec<Vec<u8>>> {
    raws.iter().map(|raw| compressor.compress(raw)).collect()
}

/// Compresses `raws` (one zstd frame each), spreading the work over `threads`.
pub(crate) fn compress_blocks(
    raws: &[Vec<u8>],
    dictionary: Option<&Dictionary>,
    level: i32,
    threads: usize,
) -> io::Result<Vec<Vec<u8>>> {
    let threads = threads.clamp(1, raws.len().max(1));
    if threads == 1 {
        return with_compressor(dictionary, level, |compressor| {
            compress_all(raws, compressor)
        });
    }
    let per_thread = raws.len().div_ceil(threads);
    let results: Vec<io::Result<Vec<Vec<u8>>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = raws
            .chunks(per_thread)
            .map(|chunk| {
                scope.spawn(move || {
                    with_compressor(dictionary, level, |compressor| {
                        compress_all(chunk, compressor)
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err(io::Error::other("compression thread panicked")))
            })
            .collect()
    });
    let mut compressed = Vec::with_capacity(raws.len());
    for result in results {
        compressed.extend(result?);
    }
    Ok(compressed)
}

/// Compresses one page of metadata (sort keys, index entries) without a dictionary.
pub(crate) fn compress_page(raw: &[u8], level: i32) -> io::Result<Vec<u8>> {
    with_compressor(None, level, |compressor| compressor.compress(raw))
}

thread_local! {
    /// Each thread's decompression context, made at its first block and used for every
    /// block after (with any dictionary): making one per block was most of what reading a
    /// block cost besides the decompression itself.
    static DECOMPRESSION: RefCell<Option<DCtx<'static>>> = const { RefCell::new(None) };
}

/// Decompresses one frame whose decompressed size is `raw_len`.
pub(crate) fn decompress(
    compressed: &[u8],
    raw_len: usize,
    dictionary: Option<&Dictionary>,
) -> io::Result<Vec<u8>> {
    let mut raw = Vec::with_capacity(raw_len);
    DECOMPRESSION.with_borrow_mut(|context| {
        let context = match context {
            Some(context) => context,
            None => context.insert(
                DCtx::try_create()
                    .ok_or_else(|| io::Error::other("no memory for a zstd context"))?,
            ),
        };
        let done = match dictionary {
            Some(dictionary) => context.decompress_using_ddict(
                &mut raw,
                compressed,
                dictionary.decoder().as_ddict(),
            ),
            None => context.decompress(&mut raw, compressed),
        };
        done.map_err(|code| {
            // A failed frame can leave the context mid-frame: start the next one afresh.
            let _ = context.reset(zstd_safe::ResetDirective::SessionOnly);
            io::Error::new(io::ErrorKind::InvalidData, zstd_safe::get_error_name(code))
        })
    })?;
    if raw.len() != raw_len {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "block decompressed to {} bytes, expected {raw_len}",
                raw.len()
            ),
        ));
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_round_trip() {
        let mut builder = BlockBuilder::default();
        for record in [&b"{}"[..], b"", b"{\"a\":1}"] {
            builder.push(record);
        }
        let raw = builder.take();
        assert_eq!(builder.records(), 0);
        let compressed = compress_blocks(&[raw.clone(), raw.clone()], None, 3, 2).unwrap();
        assert_eq!(compressed.len(), 2);
        let block =
            DecodedBlock::decode(decompress(&compressed[1], raw.len(), None).unwrap()).unwrap();
        assert_eq!(block.len(), 3);
        assert_eq!(block.record(2), Some(&b"{\"a\":1}"[..]));
        assert_eq!(block.record(1), Some(&b""[..]));
        assert_eq!(block.record(3), None);
        assert!(DecodedBlock::decode(vec![5, 1]).is_none());
    }

    /// One context per thread serves every block, with and without a dictionary, and
    /// still serves after a block that fails.
    #[test]
    fn the_thread_context_survives_failed_blocks() {
        let mut builder = BlockBuilder::default();
        for n in 0..50 {
            builder.push(format!("{{\"eventName\":\"GetObject\",\"n\":{n}}}").as_bytes());
        }
        let raw = builder.take();
        let dictionary = Dictionary::new(1, b"{\"eventName\":\"GetObject\",\"n\":", 3);
        let with = compress_blocks(std::slice::from_ref(&raw), Some(&dictionary), 3, 1).unwrap();
        let without = compress_blocks(std::slice::from_ref(&raw), None, 3, 1).unwrap();
        for _ in 0..2 {
            assert_eq!(
                decompress(&with[0], raw.len(), Some(&dictionary)).unwrap(),
                raw
            );
            assert_eq!(decompress(&without[0], raw.len(), None).unwrap(), raw);
            // Garbage, a frame cut short, a frame larger than said, a missing dictionary.
            assert!(decompress(b"not zstd", raw.len(), None).is_err());
            let cut = &with[0][..with[0].len() / 2];
            assert!(decompress(cut, raw.len(), Some(&dictionary)).is_err());
            assert!(decompress(&without[0], raw.len() - 1, None).is_err());
            assert!(decompress(&with[0], raw.len(), None).is_err());
        }
    }

    /// A dictionary's compressors go back to its pool after use, at most four of them and
    /// none once retired, and the pooled ones (their dictionary tables built at
    /// their first block) compress later batches into frames that decode.
    #[test]
    fn dictionary_compressors_are_pooled_and_reused() {
        let raws: Vec<Vec<u8>> = (0..40)
            .map(|batch| {
                let mut builder = BlockBuilder::default();
                for n in 0..30 {
                    builder.push(
                        format!("{{\"eventName\":\"GetObject\",\"batch\":{batch},\"n\":{n}}}")
                            .as_bytes(),
                    );
                }
                builder.take()
            })
            .collect();
        let dictionary = Dictionary::new(1, b"{\"eventName\":\"GetObject\",\"batch\":", 3);
        // Threads that run one after another share one compressor: how many are pooled
        // after several threads depends on how they overlapped, but never exceeds the cap.
        for (threads, pooled) in [(1, 1..=1), (1, 1..=1), (8, 1..=4), (2, 1..=4)] {
            let frames = compress_blocks(&raws, Some(&dictionary), 3, threads).unwrap();
            for (raw, frame) in raws.iter().zip(&frames) {
                assert_eq!(
                    &decompress(frame, raw.len(), Some(&dictionary)).unwrap(),
                    raw
                );
            }
            let now = dictionary.pooled_compressors();
            assert!(pooled.contains(&now), "{threads} threads: {now} pooled");
        }
        // A retired dictionary keeps none, and still compresses.
        dictionary.retire_compressors();
        assert_eq!(dictionary.pooled_compressors(), 0);
        let frames = compress_blocks(&raws, Some(&dictionary), 3, 2).unwrap();
        assert_eq!(
            decompress(&frames[0], raws[0].len(), Some(&dictionary)).unwrap(),
            raws[0]
        );
        assert_eq!(dictionary.pooled_compressors(), 0);
    }
}

//! Immutable segment files: one day partition's events, compressed, with their indexes.

mod block;
mod directory;
mod key_index;
mod reader;
mod sort_keys;
mod writer;

pub(crate) use block::{block_compressor, DecodedBlock};
pub(crate) use reader::Segment;
pub(crate) use sort_keys::{key_fingerprint, key_time, sort_key, SortKeyChunk};
pub(crate) use writer::{SegmentWriter, WriteSettings};

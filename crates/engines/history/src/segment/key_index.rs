//! The key index: every index key of a segment with its posting list (ascending record
//! ordinals, i.e. newest first), sorted by key and cut into pages of about
//! [`PAGE_TARGET`] bytes. Keys are prefix-compressed against the previous key in the page;
//! postings are varint gaps.
//!
//! Entry: `[shared][unshared][unshared bytes][count][posting bytes len][postings]`.

use crate::varint;

pub(crate) const PAGE_TARGET: usize = 16 << 10;

/// Builds index pages from keys given in ascending order.
#[derive(Default)]
pub(crate) struct IndexPageBuilder {
    page: Vec<u8>,
    first_key: Option<Vec<u8>>,
    previous: Vec<u8>,
    scratch: Vec<u8>,
}

impl IndexPageBuilder {
    /// Adds an entry; `ordinals` must be ascending.
    pub(crate) fn push(&mut self, key: &[u8], ordinals: &[u32]) {
        debug_assert!(self.first_key.is_none() || self.previous.as_slice() < key);
        debug_assert!(ordinals.windows(2).all(|pair| pair[0] < pair[1]));
        let shared = if self.first_key.is_none() {
            self.first_key = Some(key.to_vec());
            0
        } else {
            common_prefix(&self.previous, key)
        };
        varint::put(&mut self.page, shared as u64);
        varint::put(&mut self.page, (key.len() - shared) as u64);
        self.page.extend_from_slice(&key[shared..]);
        self.scratch.clear();
        encode_postings(&mut self.scratch, ordinals);
        varint::put(&mut self.page, ordinals.len() as u64);
        varint::put(&mut self.page, self.scratch.len() as u64);
        self.page.extend_from_slice(&self.scratch);
        self.previous.clear();
        self.previous.extend_from_slice(key);
    }

    pub(crate) fn is_full(&self) -> bool {
        self.page.len() >= PAGE_TARGET
    }

    /// The finished page and its first key, if any entry was added.
    pub(crate) fn take(&mut self) -> Option<(Vec<u8>, Vec<u8>)> {
        let first_key = self.first_key.take()?;
        self.previous.clear();
        Some((first_key, std::mem::take(&mut self.page)))
    }
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn encode_postings(out: &mut Vec<u8>, ordinals: &[u32]) {
    let mut previous: Option<u32> = None;
    for &ordinal in ordinals {
        let gap = match previous {
            None => ordinal,
            Some(previous) => ordinal - previous - 1,
        };
        varint::put(out, u64::from(gap));
        previous = Some(ordinal);
    }
}

/// Decodes a posting list of `count` ordinals.
pub(crate) fn decode_postings(bytes: &[u8], count: usize) -> Option<Vec<u32>> {
    let mut ordinals = Vec::with_capacity(count.min(bytes.len()));
    let mut pos = 0;
    let mut previous: Option<u32> = None;
    for _ in 0..count {
        let gap = varint::get_u32(bytes, &mut pos)?;
        let ordinal = match previous {
            None => gap,
            Some(previous) => previous.checked_add(gap)?.checked_add(1)?,
        };
        ordinals.push(ordinal);
        previous = Some(ordinal);
    }
    (pos == bytes.len()).then_some(ordinals)
}

/// One entry of a decoded page.
pub(crate) struct IndexEntry<'p> {
    pub(crate) key: Vec<u8>,
    pub(crate) count: usize,
    pub(crate) postings: &'p [u8],
}

impl IndexEntry<'_> {
    pub(crate) fn ordinals(&self) -> Option<Vec<u32>> {
        decode_postings(self.postings, self.count)
    }
}

/// Iterates the entries of a page; yields `Err(())` once on malformed input.
pub(crate) struct IndexPageReader<'p> {
    page: &'p [u8],
    pos: usize,
    key: Vec<u8>,
}

impl<'p> IndexPageReader<'p> {
    pub(crate) fn new(page: &'p [u8]) -> Self {
        Self {
            page,
            pos: 0,
            key: Vec::new(),
        }
    }

    fn next_entry(&mut self) -> Option<IndexEntry<'p>> {
        let page = self.page;
        let shared = varint::get_usize(page, &mut self.pos)?;
        let unshared = varint::get_usize(page, &mut self.pos)?;
        if shared > self.key.len() {
            return None;
        }
        let suffix = page.get(self.pos..self.pos.checked_add(unshared)?)?;
        self.pos += unshared;
        self.key.truncate(shared);
        self.key.extend_from_slice(suffix);
        let count = varint::get_usize(page, &mut self.pos)?;
        let len = varint::get_usize(page, &mut self.pos)?;
        let postings = page.get(self.pos..self.pos.checked_add(len)?)?;
        self.pos += len;
        Some(IndexEntry {
            key: self.key.clone(),
            count,
            postings,
        })
    }

    /// The posting list stored under `key`, `Ok(None)` when the page does not hold it.
    pub(crate) fn find(mut self, key: &[u8]) -> Result<Option<Vec<u32>>, ()> {
        while self.pos < self.page.len() {
            let entry = self.next_entry().ok_or(())?;
            match entry.key.as_slice().cmp(key) {
                std::cmp::Ordering::Less => continue,
                std::cmp::Ordering::Equal => return entry.ordinals().map(Some).ok_or(()),
                std::cmp::Ordering::Greater => return Ok(None),
            }
        }
        Ok(None)
    }
}

impl<'p> Iterator for IndexPageReader<'p> {
    type Item = Result<IndexEntry<'p>, ()>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.page.len() {
            return None;
        }
        match self.next_entry() {
            Some(entry) => Some(Ok(entry)),
            None => {
                self.pos = self.page.len();
                Some(Err(()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_round_trip() {
        let mut builder = IndexPageBuilder::default();
        let entries: Vec<(Vec<u8>, Vec<u32>)> = vec![
            (b"a".to_vec(), vec![0]),
            (b"ab".to_vec(), vec![1, 2, 900]),
            (b"abc".to_vec(), vec![]),
            (b"b".to_vec(), vec![u32::MAX]),
        ];
        for (key, ordinals) in &entries {
            builder.push(key, ordinals);
        }
        let (first, page) = builder.take().unwrap();
        assert_eq!(first, b"a");
        assert!(builder.take().is_none());
        let decoded: Vec<(Vec<u8>, Vec<u32>)> = IndexPageReader::new(&page)
            .map(|entry| {
                let entry = entry.unwrap();
                let ordinals = entry.ordinals().unwrap();
                (entry.key, ordinals)
            })
            .collect();
        assert_eq!(decoded, entries);
        assert_eq!(
            IndexPageReader::new(&page).find(b"ab"),
            Ok(Some(vec![1, 2, 900]))
        );
        assert_eq!(IndexPageReader::new(&page).find(b"aa"), Ok(None));
        assert_eq!(IndexPageReader::new(&page).find(b"c"), Ok(None));
        assert!(IndexPageReader::new(&page[..page.len() - 1])
            .find(b"b")
            .is_err());
    }
}

//! On-disk framing of one record: `[u32 len][u32 crc32][payload]`, little-endian.
//! The checksum covers the length bytes as well as the payload, so a damaged length (or a
//! zero-filled tail, whose "frame" would be len 0, crc 0) never passes as a valid frame.

/// Bytes of `[len][crc]` before every payload.
pub(crate) const FRAME_HEADER_LEN: usize = 8;

/// Hard format limit on one record; a header announcing more is treated as damage.
pub(crate) const MAX_RECORD_LEN: usize = 64 * 1024 * 1024;

/// Why the bytes at a position are not a valid frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// Fewer bytes than the header or the announced payload.
    Truncated,
    /// The header announces more than [`MAX_RECORD_LEN`].
    TooLarge(u32),
    /// The checksum does not match the length and payload.
    ChecksumMismatch,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Truncated => f.write_str("frame is truncated"),
            Self::TooLarge(len) => write!(f, "frame announces {len} bytes, above the format limit"),
            Self::ChecksumMismatch => f.write_str("frame checksum mismatch"),
        }
    }
}

/// The decoded `[len][crc]` prefix of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    pub(crate) payload_len: u32,
    pub(crate) checksum: u32,
}

impl FrameHeader {
    pub(crate) fn parse(bytes: [u8; FRAME_HEADER_LEN]) -> Result<Self, FrameError> {
        let [l0, l1, l2, l3, c0, c1, c2, c3] = bytes;
        let payload_len = u32::from_le_bytes([l0, l1, l2, l3]);
        if payload_len as usize > MAX_RECORD_LEN {
            return Err(FrameError::TooLarge(payload_len));
        }
        Ok(Self {
            payload_len,
            checksum: u32::from_le_bytes([c0, c1, c2, c3]),
        })
    }

    pub(crate) fn verify(&self, payload: &[u8]) -> Result<(), FrameError> {
        debug_assert_eq!(payload.len(), self.payload_len as usize);
        if frame_checksum(payload) == self.checksum {
            Ok(())
        } else {
            Err(FrameError::ChecksumMismatch)
        }
    }
}

/// Total bytes a payload of `payload_len` occupies on disk.
pub(crate) fn frame_len(payload_len: usize) -> usize {
    FRAME_HEADER_LEN + payload_len
}

fn frame_checksum(payload: &[u8]) -> u32 {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// Appends the frame for `payload` to `out`. Callers enforce [`MAX_RECORD_LEN`].
pub(crate) fn encode_frame(payload: &[u8], out: &mut Vec<u8>) {
    debug_assert!(payload.len() <= MAX_RECORD_LEN);
    let len = payload.len() as u32;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&frame_checksum(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Decodes the frame at the start of `buf`: its payload and the bytes it occupies.
pub(crate) fn decode_frame(buf: &[u8]) -> Result<(&[u8], usize), FrameError> {
    let Some((header, rest)) = buf.split_first_chunk::<FRAME_HEADER_LEN>() else {
        return Err(FrameError::Truncated);
    };
    let header = FrameHeader::parse(*header)?;
    let Some(payload) = rest.get(..header.payload_len as usize) else {
        return Err(FrameError::Truncated);
    };
    header.verify(payload)?;
    Ok((payload, frame_len(payload.len())))
}

/// Reads the next frame from `src` into `payload` (resized to fit). The outer result is an
/// I/O failure; the inner one says the bytes are not a frame. A header announcing more than
/// `remaining` bytes after itself is reported as truncated without reading the payload.
pub(crate) fn read_frame(
    src: &mut impl std::io::Read,
    remaining: u64,
    payload: &mut Vec<u8>,
) -> std::io::Result<Result<(), FrameError>> {
    let mut header = [0u8; FRAME_HEADER_LEN];
    if !read_exact_or_eof(src, &mut header)? {
        return Ok(Err(FrameError::Truncated));
    }
    let header = match FrameHeader::parse(header) {
        Ok(header) => header,
        Err(error) => return Ok(Err(error)),
    };
    let len = header.payload_len as usize;
    if (FRAME_HEADER_LEN + len) as u64 > remaining {
        return Ok(Err(FrameError::Truncated));
    }
    payload.clear();
    payload.resize(len, 0);
    if !read_exact_or_eof(src, payload)? {
        return Ok(Err(FrameError::Truncated));
    }
    Ok(header.verify(payload))
}

/// The first position at or after `from` where a valid frame starts, if any. Used to tell a
/// torn tail (nothing valid after the damage) from damage followed by durable records.
/// Random bytes pass a frame's checksum with probability 2^-32 per position, zeros never.
pub(crate) fn find_frame(buf: &[u8], from: usize) -> Option<usize> {
    (from..buf.len().saturating_sub(FRAME_HEADER_LEN - 1)).find(|&position| {
        let Some(header) = buf[position..].first_chunk::<FRAME_HEADER_LEN>() else {
            return false;
        };
        match FrameHeader::parse(*header) {
            // Cheap rejections first: most positions announce more bytes than are left.
            Ok(header) => {
                (header.payload_len as usize) <= buf.len() - position - FRAME_HEADER_LEN
                    && decode_frame(&buf[position..]).is_ok()
            }
            Err(_) => false,
        }
    })
}

/// `read_exact` that reports a short read as `false` instead of an error.
fn read_exact_or_eof(src: &mut impl std::io::Read, buf: &mut [u8]) -> std::io::Result<bool> {
    match src.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode_all(records: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for record in records {
            encode_frame(record, &mut out);
        }
        out
    }

    fn decode_all(mut buf: &[u8]) -> (Vec<Vec<u8>>, Option<FrameError>) {
        let mut records = Vec::new();
        while !buf.is_empty() {
            match decode_frame(buf) {
                Ok((payload, used)) => {
                    records.push(payload.to_vec());
                    buf = &buf[used..];
                }
                Err(error) => return (records, Some(error)),
            }
        }
        (records, None)
    }

    #[test]
    fn zero_filled_bytes_are_not_a_frame() {
        assert_eq!(decode_frame(&[0u8; 64]), Err(FrameError::ChecksumMismatch));
    }

    #[test]
    fn find_frame_skips_damage_and_zeros() {
        let mut buf = vec![0u8; 100];
        assert_eq!(find_frame(&buf, 0), None);
        let at = buf.len();
        encode_frame(b"payload", &mut buf);
        buf.extend_from_slice(&[0u8; 20]);
        assert_eq!(find_frame(&buf, 0), Some(at));
        assert_eq!(find_frame(&buf, at + 1), None);
        buf[at + 9] ^= 1;
        assert_eq!(find_frame(&buf, 0), None);
    }

    #[test]
    fn empty_record_round_trips() {
        let mut out = Vec::new();
        encode_frame(b"", &mut out);
        assert_eq!(out.len(), FRAME_HEADER_LEN);
        assert_eq!(decode_frame(&out), Ok((&b""[..], FRAME_HEADER_LEN)));
    }

    #[test]
    fn oversized_length_is_rejected_before_reading_payload() {
        let mut header = [0u8; FRAME_HEADER_LEN];
        header[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_frame(&header), Err(FrameError::TooLarge(u32::MAX)));
    }

    proptest! {
        #[test]
        fn frames_round_trip(records in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..20)) {
            let encoded = encode_all(&records);
            let expected_len: usize = records.iter().map(|r| frame_len(r.len())).sum();
            prop_assert_eq!(encoded.len(), expected_len);
            let (decoded, error) = decode_all(&encoded);
            prop_assert_eq!(error, None);
            prop_assert_eq!(decoded, records);
        }

        #[test]
        fn a_cut_stream_yields_exactly_the_whole_frames_before_the_cut(
            records in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..20),
            cut_seed in any::<prop::sample::Index>(),
        ) {
            let encoded = encode_all(&records);
            let cut = cut_seed.index(encoded.len());
            let (decoded, error) = decode_all(&encoded[..cut]);
            let mut whole = 0;
            let mut end = 0;
            for record in &records {
                if end + frame_len(record.len()) > cut { break; }
                end += frame_len(record.len());
                whole += 1;
            }
            prop_assert_eq!(&decoded[..], &records[..whole]);
            prop_assert_eq!(error.is_some(), cut != end);
        }

        #[test]
        fn any_flipped_bit_is_detected(
            record in prop::collection::vec(any::<u8>(), 1..300),
            bit_seed in any::<prop::sample::Index>(),
        ) {
            let mut encoded = Vec::new();
            encode_frame(&record, &mut encoded);
            let bit = bit_seed.index(encoded.len() * 8);
            encoded[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(decode_frame(&encoded).is_err());
        }
    }
}

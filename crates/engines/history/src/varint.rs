//! LEB128 unsigned varints: the integer encoding of every on-disk column and posting list.

/// Appends `value` as a LEB128 varint.
pub(crate) fn put(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads a varint at `*pos`, advancing it; `None` when the input ends early or the
/// value does not fit in 64 bits.
pub(crate) fn get(input: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    let mut shift = 0u32;
    loop {
        let byte = *input.get(*pos)?;
        *pos += 1;
        if shift == 63 && byte > 1 {
            return None;
        }
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(value);
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
}

/// Reads a varint that must fit in `u32`.
pub(crate) fn get_u32(input: &[u8], pos: &mut usize) -> Option<u32> {
    get(input, pos).and_then(|value| u32::try_from(value).ok())
}

/// Reads a varint used as a length or count.
pub(crate) fn get_usize(input: &[u8], pos: &mut usize) -> Option<usize> {
    get(input, pos).and_then(|value| usize::try_from(value).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trips(values in proptest::collection::vec(any::<u64>(), 0..50)) {
            let mut out = Vec::new();
            for &value in &values {
                put(&mut out, value);
            }
            let mut pos = 0;
            for &value in &values {
                prop_assert_eq!(get(&out, &mut pos), Some(value));
            }
            prop_assert_eq!(pos, out.len());
        }
    }

    #[test]
    fn refuses_truncated_and_overlong_input() {
        assert_eq!(get(&[0x80], &mut 0), None);
        assert_eq!(get(&[0xff; 11], &mut 0), None);
        assert_eq!(get_u32(&[0x80, 0x80, 0x80, 0x80, 0x10], &mut 0), None);
    }
}

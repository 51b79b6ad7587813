//! Scanning markup for the bytes that need escaping, many at a time: the
//! banner's and VAST's text runs to hundreds of bytes a bid, nearly all of
//! which need nothing.
//!
//! [`any_byte`] answers yes or no, 32 bytes to a block the compiler turns
//! into vector compares. Where the first match is matters to the banner's
//! escaping, which reads eight bytes at a time in a `u64` (little-endian).
//!
//! Each mask has the high bit of every byte that matches. The lowest set
//! bit is always a byte that matches (no borrow runs below it); bits above
//! it may be false, set by a borrow out of a match. So a mask is exact as a
//! yes/no, and its lowest bit says where the first match is.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The eight bytes of `chunk` (which has eight) as one word.
pub(crate) fn word(chunk: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(chunk);
    u64::from_le_bytes(bytes)
}

/// Bytes of `w` equal to `b`.
pub(crate) fn eq(w: u64, b: u8) -> u64 {
    let x = w ^ (ONES * u64::from(b));
    x.wrapping_sub(ONES) & !x & HIGH
}

/// Bytes of `w` below `n` (at most 0x80): subtracting `n` borrows into the
/// high bit of those, and bytes with the high bit set are left out.
pub(crate) fn below(w: u64, n: u8) -> u64 {
    w.wrapping_sub(ONES * u64::from(n)) & !w & HIGH
}

/// Whether any byte of `bytes` is `special`: 32 bytes at a time with no
/// branch inside a block, which compiles to vector compares (a fraction of
/// an instruction a byte) when `special` is plain comparisons. Inlined into
/// each caller, so that its `special` is.
#[inline(always)]
pub(crate) fn any_byte(bytes: &[u8], special: impl Fn(u8) -> bool) -> bool {
    let block = |b: &[u8; 32]| b.iter().fold(false, |any, &x| any | special(x));
    let (blocks, rest) = bytes.as_chunks::<32>();
    if blocks.iter().any(block) {
        return true;
    }
    if rest.is_empty() {
        return false;
    }
    match bytes.last_chunk::<32>() {
        // The last 32 bytes, overlapping the blocks already seen: one more
        // block, where the bytes past the last one were up to 31 tests of a
        // byte each (a URL's tail cost more than its blocks).
        Some(last) => block(last),
        // Shorter than a block (ids, names, numbers, most attribute
        // values): padded to one with copies of its first byte, which
        // change no answer, where a test a byte cost about ten
        // instructions each.
        None => {
            let mut padded = [rest[0]; 32];
            padded[..rest.len()].copy_from_slice(rest);
            block(&padded)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The block scan says yes exactly when a test of each byte does, for
    /// every length around a block's (the short ones padded, the longer
    /// ones with an overlapping last block), every place and every byte.
    #[test]
    fn any_byte_is_a_test_of_each_byte() {
        let special = |b: u8| (b < 0x20) | (b == b'"') | (b >= 0xF0);
        for len in 1..=70 {
            for place in 0..len {
                for x in 0..=255u8 {
                    let mut bytes = vec![b'a'; len];
                    bytes[place] = x;
                    assert_eq!(
                        any_byte(&bytes, special),
                        bytes.iter().any(|&b| special(b)),
                        "{bytes:?}"
                    );
                }
            }
        }
        assert!(!any_byte(&[], special));
    }
}

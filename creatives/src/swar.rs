//! Bytes eight at a time, in a `u64` read little-endian: the escaping of
//! banner markup passes over hundreds of bytes a bid, nearly all of which
//! need nothing, and needs where the first one that does is.
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

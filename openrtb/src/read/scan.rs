//! Finding where a string stops: its closing quote, an escape, or a
//! control byte (which JSON refuses inside a string).
//!
//! Strings and keys are most of a request's bytes, and every one of them
//! is scanned. With SSE2 (every x86-64 CPU) sixteen bytes take one load,
//! three compares, a max, two ORs and a move-mask (a second for the
//! quotes where a key needs them), about eleven instructions; the word
//! arithmetic this replaced took about twenty for eight bytes, and most
//! strings of a request are longer than eight bytes and shorter than
//! sixteen. Elsewhere the word arithmetic stays. The vector operations come
//! from `safe_arch`, so this crate needs no `unsafe`.

/// One bit per byte of `chunk`, bit `i` for byte `i`: `specials` has the
/// bytes that stop a string (`"`, `\`, below 0x20), `quotes` the `"`s.
/// The vector path sets every such bit; the word arithmetic of other
/// targets ([`words::stops`]) only the first stop's. Callers read no more
/// than the lowest bit of `specials` and that bit of `quotes`.
#[derive(Clone, Copy)]
pub(super) struct Stops {
    pub(super) specials: u32,
    pub(super) quotes: u32,
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
pub(super) fn stops(chunk: &[u8; 16]) -> Stops {
    use safe_arch::{cmp_eq_mask_i8_m128i, m128i, max_u8_m128i, move_mask_i8_m128i};
    let splat = |b: u8| m128i::from([b; 16]);
    let v = m128i::from(*chunk);
    let quote = cmp_eq_mask_i8_m128i(v, splat(b'"'));
    let backslash = cmp_eq_mask_i8_m128i(v, splat(b'\\'));
    // Below 0x20 exactly when the larger of it and 0x1f is 0x1f (bytes
    // compared unsigned: 0x80 and up are not control bytes).
    let control = cmp_eq_mask_i8_m128i(max_u8_m128i(v, splat(0x1f)), splat(0x1f));
    // The mask of 16 lanes fits 16 bits: the cast never loses one.
    let mask = |m: m128i| move_mask_i8_m128i(m) as u32;
    Stops {
        specials: mask(quote | backslash | control),
        quotes: mask(quote),
    }
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline(always)]
pub(super) fn stops(chunk: &[u8; 16]) -> Stops {
    words::stops(chunk)
}

/// The index of the first `"`, `\` or control byte at or after `from`, or
/// `bytes.len()`.
#[inline]
pub(super) fn find_special(bytes: &[u8], from: usize) -> usize {
    let mut i = from;
    while let Some(chunk) = bytes.get(i..).and_then(|rest| rest.first_chunk::<16>()) {
        let hits = stops(chunk).specials;
        if hits != 0 {
            return i + hits.trailing_zeros() as usize;
        }
        i += 16;
    }
    // The body's last fifteen bytes or fewer, a byte at a time: only a
    // string near the end of a body gets here.
    while let Some(&b) = bytes.get(i) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            return i;
        }
        i += 1;
    }
    bytes.len()
}

/// The word arithmetic: eight bytes in a `u64`, the high bit of each byte
/// that matches. Only the lowest hit of each word is exact (a borrow can
/// set a false bit above a true one), which is all a scan for the first
/// stop needs; [`words::stops`] reads no further than that.
#[cfg(any(test, not(all(target_arch = "x86_64", target_feature = "sse2"))))]
pub(super) mod words {
    use super::Stops;

    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;

    fn zero_bytes(x: u64) -> u64 {
        x.wrapping_sub(ONES) & !x & HIGH
    }

    fn quotes(w: u64) -> u64 {
        zero_bytes(w ^ (ONES * u64::from(b'"')))
    }

    fn specials(w: u64) -> u64 {
        let backslash = zero_bytes(w ^ (ONES * u64::from(b'\\')));
        // Bytes below 0x20: subtracting 0x20 borrows into the high bit, for
        // bytes under 0x80 only.
        let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
        quotes(w) | backslash | control
    }

    /// [`super::stops`] as far as it is exact here: the first stop of the
    /// sixteen bytes, and whether it is a quote. The bits past it are
    /// left clear.
    pub(in super::super) fn stops(chunk: &[u8; 16]) -> Stops {
        for (half, bytes) in chunk.chunks_exact(8).enumerate() {
            let mut eight = [0u8; 8];
            eight.copy_from_slice(bytes);
            let w = u64::from_le_bytes(eight);
            let hits = specials(w);
            if hits != 0 {
                let first = hits.trailing_zeros();
                let bit = 1u32 << (first / 8 + 8 * half as u32);
                let quote = quotes(w) >> first & 1 == 1;
                return Stops {
                    specials: bit,
                    quotes: if quote { bit } else { 0 },
                };
            }
        }
        Stops {
            specials: 0,
            quotes: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain_stop(b: u8) -> bool {
        b == b'"' || b == b'\\' || b < 0x20
    }

    /// Every byte value at every position of a chunk, alone and after
    /// other stops: the first stop and whether it is a quote agree with a
    /// byte-at-a-time reading, in both implementations.
    #[test]
    fn stops_find_the_first_stop_and_say_if_it_is_a_quote() {
        let fillers = [b'a', 0x7f, 0x80, 0xff, b' ', b'!', b'#', b'[', b']'];
        for filler in fillers {
            for at in 0..16 {
                for b in 0..=255u8 {
                    for after in [None, Some(b'"'), Some(b'\\'), Some(0u8)] {
                        let mut chunk = [filler; 16];
                        chunk[at] = b;
                        if let (Some(a), true) = (after, at < 15) {
                            chunk[at + 1..].fill(a);
                        }
                        let first = chunk.iter().position(|&b| plain_stop(b));
                        for (how, s) in [("vector", stops(&chunk)), ("words", words::stops(&chunk))]
                        {
                            let got =
                                (s.specials != 0).then(|| s.specials.trailing_zeros() as usize);
                            assert_eq!(got, first, "{how}: {chunk:?}");
                            if let Some(i) = first {
                                assert_eq!(
                                    s.quotes >> i & 1 == 1,
                                    chunk[i] == b'"',
                                    "{how}: {chunk:?}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn stops_mark_every_stop_where_the_vector_is_used() {
        // The vector path's masks are whole (`short_key` needs only the
        // first bit, but a whole mask is what its comment promises).
        if cfg!(all(target_arch = "x86_64", target_feature = "sse2")) {
            let chunk = *b"a\"b\\c\x01d\x1fe \x7f\x80\"\xff\x00z";
            let s = stops(&chunk);
            let want_specials = chunk
                .iter()
                .enumerate()
                .filter(|(_, &b)| plain_stop(b))
                .fold(0u32, |m, (i, _)| m | 1 << i);
            let want_quotes = chunk
                .iter()
                .enumerate()
                .filter(|(_, &b)| b == b'"')
                .fold(0u32, |m, (i, _)| m | 1 << i);
            assert_eq!(s.specials, want_specials);
            assert_eq!(s.quotes, want_quotes);
        }
    }

    #[test]
    fn find_special_matches_a_plain_scan() {
        let mut body = Vec::new();
        for i in 0..300u32 {
            body.push((i * 37 % 256) as u8);
        }
        for from in 0..body.len() {
            let plain = body[from..]
                .iter()
                .position(|&b| plain_stop(b))
                .map_or(body.len(), |n| from + n);
            assert_eq!(find_special(&body, from), plain, "from {from}");
        }
        let text = b"abcdefghijklmnopqrstuvwxyz\xc3\xa9\xe2\x80\xa8~\x7f\xff\x80 \"";
        assert_eq!(find_special(text, 0), text.len() - 1);
        assert_eq!(find_special(b"", 0), 0);
        assert_eq!(find_special(b"abc", 3), 3);
    }
}

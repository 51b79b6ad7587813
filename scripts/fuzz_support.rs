//! What the fuzz targets of every crate share (included with `#[path]` by
//! `openrtb/tests/fuzz.rs`, `config/tests/fuzz.rs`, `bidder/tests/fuzz.rs`,
//! `creatives/tests/fuzz.rs` and `pricecrypt/tests/fuzz.rs`): the case
//! count, and the last input of each property kept on disk for
//! `scripts/fuzz.sh`.

use std::fs;
use std::path::PathBuf;
use std::sync::LazyLock;

use proptest::prelude::*;
use proptest::sample::Index;

/// `default_cases` for the normal test run; `PROPTEST_CASES` overrides it
/// (`ProptestConfig::with_cases` would ignore the variable, so the field is
/// set by hand on top of the environment-aware default).
pub(crate) fn config(default_cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default_cases),
        ..ProptestConfig::default()
    }
}

/// A stack overflow aborts the process before proptest can print the input
/// that caused it. With `FUZZ_LAST_INPUT_DIR` set (scripts/fuzz.sh sets it),
/// each case's input is written there first, one file per property, so the
/// input of a crash survives it. The file stays open: reopening it for
/// every case would halve the fuzzing rate.
pub(crate) fn remember(property: &str, input: impl AsRef<[u8]>) {
    use std::io::{Seek, Write};
    static DIR: LazyLock<Option<PathBuf>> =
        LazyLock::new(|| std::env::var_os("FUZZ_LAST_INPUT_DIR").map(PathBuf::from));
    thread_local! {
        static FILES: std::cell::RefCell<std::collections::HashMap<String, fs::File>> =
            Default::default();
    }
    let Some(dir) = DIR.as_ref() else {
        return;
    };
    let input = input.as_ref();
    FILES.with_borrow_mut(|files| {
        if !files.contains_key(property) {
            match fs::File::create(dir.join(property)) {
                Ok(file) => files.insert(property.to_owned(), file),
                Err(_) => return,
            };
        }
        let file = files.get_mut(property).expect("just inserted");
        let _ = file.rewind();
        let _ = file.write_all(input);
        let _ = file.set_len(input.len() as u64);
    });
}

/// Edits of raw bytes, the same for every target (each builds them with its
/// own weights and insertions, and wraps them in its own edits).
#[derive(Clone, Debug)]
#[allow(dead_code)] // each target uses a subset
pub(crate) enum ByteEdit {
    FlipBit(Index, u8),
    SetByte(Index, u8),
    Insert(Index, Vec<u8>),
    Delete(Index, usize),
    /// Copy a span elsewhere: duplicated keys, objects, brackets.
    Duplicate(Index, usize, Index),
    Truncate(Index),
}

#[allow(dead_code)] // not every target edits bytes
impl ByteEdit {
    pub(crate) fn apply(&self, bytes: &mut Vec<u8>) {
        // Positions index 0..=len so that the end is reachable too.
        let pos = |at: &Index, len: usize| at.index(len + 1);
        match self {
            ByteEdit::FlipBit(at, bit) if !bytes.is_empty() => {
                let i = at.index(bytes.len());
                bytes[i] ^= 1 << (bit % 8);
            }
            ByteEdit::SetByte(at, b) if !bytes.is_empty() => {
                let i = at.index(bytes.len());
                bytes[i] = *b;
            }
            ByteEdit::Insert(at, new) => {
                let i = pos(at, bytes.len());
                bytes.splice(i..i, new.iter().copied());
            }
            ByteEdit::Delete(at, n) => {
                let i = pos(at, bytes.len());
                let end = (i + n).min(bytes.len());
                bytes.drain(i..end);
            }
            ByteEdit::Duplicate(from, n, to) => {
                let i = pos(from, bytes.len());
                let span = bytes[i..(i + n).min(bytes.len())].to_vec();
                let j = pos(to, bytes.len());
                bytes.splice(j..j, span);
            }
            ByteEdit::Truncate(at) => bytes.truncate(pos(at, bytes.len())),
            ByteEdit::FlipBit(..) | ByteEdit::SetByte(..) => {}
        }
    }
}

/// JSON punctuation and tokens that break parsers in interesting ways;
/// each target adds its own to them.
#[allow(dead_code)] // not every target inserts JSON
pub(crate) const JSON_TOKENS: &[&str] = &[
    "\"",
    "\\",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "null",
    "-",
    "\u{1F600}",
];

/// Byte edits with these insertions: flips, sets, truncations, insertions,
/// deletions of up to `max_delete` bytes and duplications of spans up to
/// `max_duplicate` bytes, in the weights every target uses.
#[allow(dead_code)] // not every target edits bytes this way
pub(crate) fn byte_edits(
    inserted: impl Strategy<Value = Vec<u8>> + 'static,
    max_delete: usize,
    max_duplicate: usize,
) -> impl Strategy<Value = ByteEdit> {
    prop_oneof![
        2 => (any::<Index>(), 0u8..8).prop_map(|(at, bit)| ByteEdit::FlipBit(at, bit)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(at, b)| ByteEdit::SetByte(at, b)),
        1 => any::<Index>().prop_map(ByteEdit::Truncate),
        3 => (any::<Index>(), inserted).prop_map(|(at, b)| ByteEdit::Insert(at, b)),
        2 => (any::<Index>(), 1usize..max_delete).prop_map(|(at, n)| ByteEdit::Delete(at, n)),
        2 => (any::<Index>(), 1usize..max_duplicate, any::<Index>())
            .prop_map(|(from, n, to)| ByteEdit::Duplicate(from, n, to)),
    ]
}

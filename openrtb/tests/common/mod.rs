//! The vendored corpus, for the corpus and fuzz tests.

#![allow(dead_code)]
// each test binary uses a different subset
// Shared by the test binaries of this crate, not a public API.
#![allow(unreachable_pub)]

use std::fs;
use std::path::PathBuf;

pub const REQUESTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/openrtb/requests");
pub const RESPONSES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/openrtb/responses");

/// The `*.json` files of `dir`, sorted.
pub fn json_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

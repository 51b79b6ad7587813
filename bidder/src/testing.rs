//! What the library's unit tests share.

use std::path::PathBuf;

/// A fresh, empty directory for test `name` of `module`, this process's
/// own (tests of several runs at once do not meet).
pub(crate) fn tempdir(module: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("{module}-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

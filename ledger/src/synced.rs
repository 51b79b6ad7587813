//! How much of each file its writer has made durable.
//!
//! A reader that copies files while they are written (the report mirror
//! sends each replica's journals to the others) must not copy bytes a
//! writer may still cut back: a batch whose fsync fails is removed again,
//! and its records were never acknowledged. Writers say here, after each
//! successful fsync, how long their file is; a reader copies no further.
//! Files are named as the mirror names them (`charges.N.journal`,
//! `events/YYYY-MM-DD.events`): a name follows a journal generation across
//! its rename at compaction.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Durable lengths by file name; cheap to clone (shared).
#[derive(Clone, Debug, Default)]
pub struct Synced(Arc<Mutex<HashMap<String, u64>>>);

impl Synced {
    /// `name` is durable up to `len` bytes.
    pub fn set(&self, name: String, len: u64) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, len);
    }

    /// How far `name` is durable, when its writer has said so since the
    /// start (a file not written since is as durable as it will be, but
    /// for a torn last line).
    pub fn get(&self, name: &str) -> Option<u64> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .copied()
    }

    /// Forgets files no longer written (an old day closed, a generation
    /// compacted): bounded by the files open.
    pub fn forget(&self, name: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
    }
}

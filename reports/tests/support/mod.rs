//! Helpers shared by this crate's integration tests.

// Each test binary uses its own subset; this is not a public API.
#![allow(dead_code)]
#![allow(unreachable_pub)]

pub mod chromium;

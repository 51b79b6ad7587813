//! Heap allocations per bid, counted by a global allocator that counts:
//! what a bid costs malloc and free besides its instructions. Prints, for
//! the bench banner and video requests at 1,000 line items and for parsing
//! the banner request alone, allocations (and bytes) per bid, averaged over
//! 1,000 bids after a warm-up. Run: `cargo bench -p benches --bench allocs`.

use std::alloc::System;
use std::time::Instant;

use benches::{
    bench_app, generated_config, minified, BANNER_REQUEST, VIDEO_ADVERTISER, VIDEO_REQUEST,
};
use bidder::BidAnswer;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const BIDS: usize = 1_000;

fn per_bid(name: &str, mut bid: impl FnMut() -> bool) {
    // Warm-up: maps and caches reach their working size first.
    for _ in 0..100 {
        assert!(bid(), "{name}: no bid");
    }
    let region = Region::new(GLOBAL);
    for _ in 0..BIDS {
        assert!(bid(), "{name}: no bid");
    }
    let s = region.change();
    println!(
        "{name:<8} {:>8.1} allocations/bid {:>10.0} bytes/bid {:>8.1} reallocations/bid",
        s.allocations as f64 / BIDS as f64,
        s.bytes_allocated as f64 / BIDS as f64,
        s.reallocations as f64 / BIDS as f64,
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not used here.
    let banner = minified(BANNER_REQUEST);
    let video = minified(VIDEO_REQUEST);
    let app = bench_app(&generated_config(1_000), audiences::Store::new());
    per_bid("banner", || {
        matches!(app.handle_bid(&banner, Instant::now()), BidAnswer::Bid(..))
    });
    let mut files = generated_config(1_000);
    files.push(("tube.yaml".into(), VIDEO_ADVERTISER.to_string()));
    let app = bench_app(&files, audiences::Store::new());
    per_bid("video", || {
        matches!(app.handle_bid(&video, Instant::now()), BidAnswer::Bid(..))
    });
    per_bid("parse", || ortb::parse_request(&banner).is_ok());
}

//! A list audience of a million members, measured: memory and load time.
//!
//! `cargo run --release -p audiences --example lists [MEMBERS]` (default
//! 1,000,000 hashed e-mails). Uploads them in batches of 100,000 lines
//! into a state directory's log (each fsync'd), then reports the heap the
//! lists hold (counted by a global allocator wrapper), the RSS growth and
//! `Lists::memory_bytes()`; then the time a restart takes to load them
//! back from the log, and from a `--data` member file; then the cost of a
//! lookup.

// A counting global allocator must implement `GlobalAlloc`, an unsafe
// trait (as in the `memory` example).
#![allow(unsafe_code)]
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use audiences::Lists;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        grew(new_size);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// 64 hex digits: the shape of a SHA-256 of an e-mail address.
fn member(i: u64) -> String {
    let mut x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x2545_f491_4f6c_dd1d;
    let mut out = String::with_capacity(64);
    for _ in 0..4 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push_str(&format!("{x:016x}"));
    }
    out
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .map_or(1_000_000, |a| a.parse().expect("a number of members"));
    let dir = std::env::temp_dir().join(format!("lists-example-{}", std::process::id()));
    let state = dir.join("state");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).expect("temp dir");

    let (heap0, rss0) = (LIVE.load(Ordering::Relaxed), rss_bytes());
    let lists = Lists::new(usize::MAX);
    lists
        .open(None, Some(&state), &|_| Some("shop".into()))
        .expect("open");
    let started = Instant::now();
    let mut file = String::new();
    let mut batch = String::new();
    for i in 0..n {
        let line = format!("{{\"id\":\"{}\"}}\n", member(i));
        batch.push_str(&line);
        file.push_str(&line);
        if (i + 1) % 100_000 == 0 {
            lists
                .apply_jsonl("shop", "crm", "gen", &batch)
                .expect("batch");
            batch.clear();
        }
    }
    if !batch.is_empty() {
        lists
            .apply_jsonl("shop", "crm", "gen", &batch)
            .expect("batch");
    }
    let upload = started.elapsed();
    std::fs::write(data.join("crm.members"), &file).expect("member file");
    drop((file, batch));
    let heap = LIVE.load(Ordering::Relaxed) - heap0;
    let rss = rss_bytes().saturating_sub(rss0);
    let members = lists.len("shop", "crm");
    println!("{members} members uploaded in batches of 100,000 in {upload:.2?}");
    println!(
        "heap held:        {:>6.1} MB = {:>5.1} bytes/member",
        heap as f64 / 1e6,
        heap as f64 / members as f64
    );
    println!(
        "RSS growth:       {:>6.1} MB (includes freed batch buffers malloc kept)",
        rss as f64 / 1e6
    );
    println!(
        "memory_bytes():   {:>6.1} MB",
        lists.memory_bytes() as f64 / 1e6
    );
    drop(lists);

    for (label, data, state) in [
        ("restart, from the state log", None, Some(state.as_path())),
        ("start, from a --data file", Some(data.as_path()), None),
    ] {
        let heap0 = LIVE.load(Ordering::Relaxed);
        PEAK.store(heap0, Ordering::Relaxed);
        let started = Instant::now();
        let lists = Lists::new(usize::MAX);
        lists
            .open(data, state, &|_| Some("shop".into()))
            .expect("load");
        let took = started.elapsed();
        assert_eq!(lists.len("shop", "crm"), members);
        println!(
            "{label}: {took:.2?}, heap held {:.1} MB, peak while loading {:.1} MB",
            (LIVE.load(Ordering::Relaxed) - heap0) as f64 / 1e6,
            (PEAK.load(Ordering::Relaxed) - heap0) as f64 / 1e6
        );
        if state.is_some() {
            for (what, from) in [("members", 0), ("non-members", n)] {
                let probes: Vec<String> = (0..100_000).map(|i| member(from + i * 7 % n)).collect();
                let started = Instant::now();
                let hits = probes
                    .iter()
                    .filter(|id| lists.contains("shop", "crm", id))
                    .count();
                println!(
                    "contains, {what}: {:.0} ns/lookup ({hits} hits)",
                    started.elapsed().as_nanos() as f64 / probes.len() as f64
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

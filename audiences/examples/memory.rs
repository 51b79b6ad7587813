//! Bytes per audience membership, measured.
//!
//! `cargo run --release -p audiences --example memory [USERS] [EVENTS_PER_USER]`
//! (defaults: 1,000,000 users with one view each). Appends the events in
//! admin-sized batches of 10,000 lines, then reports the heap the store holds
//! (counted by a global allocator wrapper: requested bytes, without malloc's
//! own overhead), the growth of the process RSS, `Store::memory_bytes()`, and
//! the cost of `matches`; then the latency of `matches` on one thread while
//! another appends 500,000 more events and prunes.

// A counting global allocator must implement `GlobalAlloc`, an unsafe
// trait: the one place in the workspace that needs `unsafe`.
#![allow(unsafe_code)]
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use audiences::{Page, Store, Visitor};
use config::{Audience, AudienceKind, Timestamp};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
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

fn main() {
    let mut args = std::env::args().skip(1);
    let users: usize = args.next().map_or(1_000_000, |a| a.parse().unwrap());
    let per_user: usize = args.next().map_or(1, |a| a.parse().unwrap());
    let now = Timestamp::parse_rfc3339("2026-11-24T12:00:00Z").unwrap();
    let kinds = [
        ("view", "product"),
        ("interest", "interest"),
        ("purchase", "product"),
    ];

    let store = Store::new();
    let (heap0, rss0) = (LIVE.load(Ordering::Relaxed), rss_bytes());
    let started = Instant::now();
    let mut batch = String::new();
    let mut n = 0;
    for u in 0..users {
        for e in 0..per_user {
            let (event, key) = if e == 0 { kinds[0] } else { kinds[e % 3] };
            let day = 1 + (u + e) % 23;
            batch.push_str(&format!(
                r#"{{"user":"user-{u:010}","event":"{event}","{key}":"P{:05}","at":"2026-11-{day:02}T10:00:00Z"}}"#,
                (u * 7 + e) % 20_000,
            ));
            batch.push('\n');
            n += 1;
            if n % 10_000 == 0 {
                store.append_jsonl("gen", &batch, now).unwrap();
                batch.clear();
            }
        }
    }
    store.append_jsonl("gen", &batch, now).unwrap();
    drop(batch);
    let load = started.elapsed();
    let heap = LIVE.load(Ordering::Relaxed) - heap0;
    let rss = rss_bytes().saturating_sub(rss0);
    let (u, e) = (store.users(), store.events());
    println!("{u} users, {e} events, appended in {load:.2?}");
    println!(
        "heap held:        {:>6.1} MB = {:>5.1} bytes/user, {:>5.1} bytes/event",
        heap as f64 / 1e6,
        heap as f64 / u as f64,
        heap as f64 / e as f64
    );
    println!(
        "RSS growth:       {:>6.1} MB = {:>5.1} bytes/user",
        rss as f64 / 1e6,
        rss as f64 / u as f64
    );
    println!(
        "memory_bytes():   {:>6.1} MB = {:>5.1} bytes/user",
        store.memory_bytes() as f64 / 1e6,
        store.memory_bytes() as f64 / u as f64
    );

    let audience = Audience {
        id: "a".into(),
        kind: AudienceKind::Views {
            products: (0..5).map(|i| format!("P{:05}", i * 97)).collect(),
            lookback_days: 30,
            own: Vec::new(),
        },
    };
    let ids: Vec<String> = (0..100_000)
        .map(|i| format!("user-{:010}", (i * 7919) % users))
        .collect();
    let unknown: Vec<String> = (0..100_000).map(|i| format!("nobody-{i}")).collect();
    for (label, ids) in [("known users", &ids), ("unknown users", &unknown)] {
        let started = Instant::now();
        let mut hits = 0;
        for id in ids.iter() {
            let v = Visitor {
                user: Some(id),
                behavioural: true,
                now,
            };
            hits += usize::from(store.matches(&audience, &v, &Page::default()));
        }
        println!(
            "matches, {label}: {:>6.0} ns/call ({hits} hits)",
            started.elapsed().as_nanos() as f64 / ids.len() as f64
        );
    }

    // Reader latency while a writer appends 50 batches of 10,000 lines
    // (new users and more events for existing ones) and then prunes.
    let store = std::sync::Arc::new(store);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (store, stop, audience) = (store.clone(), stop.clone(), audience.clone());
        std::thread::spawn(move || {
            let mut lat = Vec::with_capacity(1 << 24);
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let id = &ids[i % ids.len()];
                i += 1;
                let v = Visitor {
                    user: Some(id),
                    behavioural: true,
                    now,
                };
                let t = Instant::now();
                std::hint::black_box(store.matches(&audience, &v, &Page::default()));
                if lat.len() < lat.capacity() {
                    lat.push(t.elapsed().as_nanos() as u64);
                }
            }
            lat
        })
    };
    let started = Instant::now();
    for b in 0..50 {
        let text: String = (0..10_000)
            .map(|i| {
                let u = (b * 10_000 + i) * 37 % (users * 2);
                format!(
                    r#"{{"user":"user-{u:010}","event":"view","product":"P{:05}","at":"2026-11-24T0{}:00:00Z"}}"#,
                    i % 20_000,
                    b % 10
                ) + "\n"
            })
            .collect();
        store.append_jsonl("more", &text, now).unwrap();
    }
    let appending = started.elapsed();
    let started = Instant::now();
    let later = Timestamp(now.as_millis() + 80 * 24 * 3600 * 1000);
    let dropped = store.prune(later);
    let pruning = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut lat = reader.join().unwrap();
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() - 1) as f64 * p) as usize];
    println!(
        "500,000 more events appended in {appending:.2?}, prune dropped {dropped} events in {pruning:.2?}"
    );
    println!(
        "meanwhile {} matches: p50 {} ns, p99 {} ns, p99.99 {} ns, max {} µs",
        lat.len(),
        pct(0.5),
        pct(0.99),
        pct(0.9999),
        lat[lat.len() - 1] / 1000
    );
}

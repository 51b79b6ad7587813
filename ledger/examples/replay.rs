//! Measures the journal: how many charges a second it makes durable with
//! fsync batching, and how long start-up replay takes, in how much memory.
//!
//! ```text
//! cargo run --release -p ledger --example replay -- write DIR 1000000 [CONCURRENCY]
//! cargo run --release -p ledger --example replay -- open DIR
//! ```
//! `write` charges N distinct wins (1,000 line items, 100 orders, all
//! within their notice lifetime: every id stays a live duplicate) through
//! the real journal, CONCURRENCY at a time (default 1,024), and prints
//! charges per second. `open` loads what `write` left, as `bidder serve`
//! does at start, and prints the time it took and the process's peak RSS.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use config::{Clock, ManualClock, Micros, Timestamp};
use ledger::journal::{Journal, JournalOptions};
use ledger::{BidKey, Books, Cap, Ledger, Limit, MemoryLedger, SpendKey, Win};

const NOW: i64 = 1_795_521_600_000; // 2026-11-24T12:00:00Z
const DAY: i64 = 86_400_000;

fn open(dir: &Path) -> (Arc<dyn Ledger>, Journal, ledger::journal::Replayed) {
    let ledger: Arc<dyn Ledger> = Arc::new(MemoryLedger::default());
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(Timestamp(NOW)));
    let (journal, replayed) =
        Journal::open(dir, ledger.clone(), clock, JournalOptions::default()).expect("open");
    (ledger, journal, replayed)
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: replay write DIR N [CONCURRENCY] | replay open DIR";
    match args.get(1).map(String::as_str) {
        Some("write") => {
            let dir = Path::new(args.get(2).expect(usage));
            let n: u64 = args.get(3).and_then(|s| s.parse().ok()).expect(usage);
            let concurrency: u64 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(1024);
            let _ = std::fs::remove_dir_all(dir);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            let (ledger, journal, _) = open(dir);
            let books = Arc::new(Books::new(ledger, Some(journal)));
            let start = Instant::now();
            runtime.block_on(async {
                let mut tasks = Vec::new();
                for t in 0..concurrency {
                    let books = books.clone();
                    tasks.push(tokio::spawn(async move {
                        let mut i = t;
                        while i < n {
                            let li = SpendKey::line_item(&format!("line-item-{}", i % 1000));
                            let order = SpendKey::order(&format!("order-{}", i % 100));
                            let win = Win {
                                // Spread like random bid ids.
                                bid: BidKey(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
                                day: Timestamp(NOW).date(),
                                cost: Micros(1_500),
                                limits: [
                                    Limit {
                                        key: &li,
                                        cap: Cap::Daily(Micros::from_units(1_000_000)),
                                    },
                                    Limit {
                                        key: &order,
                                        cap: Cap::Lifetime(Micros::from_units(1_000_000_000)),
                                    },
                                ],
                                forget: Timestamp(NOW + DAY),
                                made: Timestamp(NOW),
                                tags: Default::default(),
                            };
                            books.charge(&win).await.expect("charged");
                            i += concurrency;
                        }
                    }));
                }
                for t in tasks {
                    t.await.expect("task");
                }
            });
            let secs = start.elapsed().as_secs_f64();
            println!(
                "charged {n} wins in {secs:.2} s: {:.0} charges/s (concurrency {concurrency}, each on disk before its answer)",
                n as f64 / secs
            );
            if let Ok(b) = Arc::try_unwrap(books) {
                b.close();
            }
        }
        Some("open") => {
            let dir = Path::new(args.get(2).expect(usage));
            let start = Instant::now();
            let (ledger, journal, replayed) = open(dir);
            let ms = start.elapsed().as_secs_f64() * 1000.0;
            let spent = ledger
                .spent(&SpendKey::line_item("line-item-7"), Timestamp(NOW).date())
                .today;
            println!(
                "opened in {ms:.0} ms: {} checkpoint entries, {} journal records, peak RSS {:.1} MB (line-item-7 spent {spent})",
                replayed.checkpoint_entries,
                replayed.charges,
                peak_rss_mb()
            );
            journal.close();
        }
        _ => eprintln!("{usage}"),
    }
}

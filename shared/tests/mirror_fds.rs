//! Review: the report mirror when its process runs out of file
//! descriptors for a moment (a flood of connections). Alone in its test
//! binary: it exhausts the process's descriptors.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use config::{Date, ManualClock, Timestamp};
use shared::testing::RedisServer;
use shared::{Mirror, MirrorOptions};

const DAY: &str = "2026-11-30";

fn start(dir: &Path, name: &str, url: &str) -> Mirror {
    let day = Date::parse(DAY).unwrap().days_since_epoch();
    let clock = Arc::new(ManualClock::new(Timestamp(day * 86_400_000 + 43_200_000)));
    let mut opts = MirrorOptions::new(dir, name, clock);
    opts.tick = Duration::from_millis(40);
    opts.compare_every = Duration::from_millis(200);
    let info = shared::connection_info(url, None, None).unwrap();
    Mirror::start(info, opts).expect("mirror starts")
}

/// A listing of the replica's files that fails is not an empty directory:
/// nothing is taken for pruned, forgotten, and sent again whole.
#[test]
fn a_failed_listing_sends_nothing_again() {
    let root = std::env::temp_dir().join(format!("shared-mirror-fds-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let redis = RedisServer::start(&root.join("redis")).expect("redis-server");
    let url = redis.url();
    let a = root.join("a");
    let events = a.join("events").join(format!("{DAY}.events"));
    std::fs::create_dir_all(events.parent().unwrap()).unwrap();
    let line = format!("{}\n", "e".repeat(99));
    std::fs::write(&events, line.repeat(1_000)).unwrap();
    let len = std::fs::metadata(&events).unwrap().len();
    let m = start(&a, "a", &url);
    let started = Instant::now();
    while m.stats.sent_bytes.load(Ordering::Relaxed) < len {
        assert!(started.elapsed() < Duration::from_secs(10), "not sent");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Every descriptor taken for a few ticks, then given back.
    let mut held = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        held.push(f);
    }
    std::thread::sleep(Duration::from_millis(400));
    drop(held);
    std::thread::sleep(Duration::from_millis(800));
    let sent = m.stats.sent_bytes.load(Ordering::Relaxed);
    drop(m);
    drop(redis);
    let _ = std::fs::remove_dir_all(&root);
    assert_eq!(sent, len, "the file was sent again from its start");
}

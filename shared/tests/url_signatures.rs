//! Which replicas read `per-bid` signed URLs, as heartbeats tell each
//! other through a real `redis-server`: `--url-signatures auto` writes
//! them only while every replica sharing Redis does. A replica of an
//! earlier version says nothing at its heartbeat; it is simulated here by
//! what its heartbeat writes (its time in `replicas`, nothing else).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use config::{ManualClock, Timestamp};
use shared::testing::RedisServer;

const NOON: i64 = 1_795_521_600_000; // 2026-11-24T12:00:00Z

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("shared-signatures-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn replica(server: &RedisServer, name: &str, clock: Arc<ManualClock>) -> shared::RedisLedger {
    let mut opts = shared::Options::new(name, clock);
    opts.synchronous = true;
    opts.heartbeat_ms = 50;
    opts.may_initialise = true;
    let info = shared::connection_info(&server.url(), None, None).unwrap();
    shared::RedisLedger::connect(info, opts).expect("connects")
}

fn wait_for(l: &shared::RedisLedger, all_read: bool, what: &str) {
    let flag = l.all_read_per_bid();
    let t = Instant::now();
    while flag.load(Ordering::Relaxed) != all_read {
        assert!(t.elapsed() < Duration::from_secs(10), "{what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What an earlier version's heartbeat (or start) writes: its time.
fn earlier_version_beats(server: &RedisServer, name: &str, at_ms: i64) {
    server
        .command(&["ZADD", "bidder:replicas", &at_ms.to_string(), name])
        .unwrap();
}

#[test]
fn per_bid_is_written_only_while_every_replica_reads_it() {
    let dir = tmp("fleet");
    let server = RedisServer::start(&dir.join("redis")).unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp(NOON)));
    let a = replica(&server, "a", clock.clone());
    a.replayed();
    wait_for(&a, true, "alone, a replica reads what it writes");

    // A replica of an earlier version joins (a rolling deploy from it).
    earlier_version_beats(&server, "old", NOON);
    wait_for(&a, false, "an earlier version reads only per-url");

    // It stops; once the others count it gone, its URLs' readers are all
    // of this version.
    clock.set(Timestamp(NOON + 20_000));
    wait_for(&a, true, "the earlier version is gone");

    // Another replica of this version joins: still all.
    let b = replica(&server, "b", clock.clone());
    b.replayed();
    wait_for(&b, true, "both read per-bid");
    assert!(a.all_read_per_bid().load(Ordering::Relaxed));

    // `b` is rolled back to an earlier version under the same name: its
    // heartbeats move its time on, and what it said before no longer
    // counts.
    drop(b);
    earlier_version_beats(&server, "b", NOON + 20_001);
    wait_for(&a, false, "a rollback under the same name");
}

//! Which replicas read `per-bid` signed URLs, as heartbeats tell each
//! other through a real `redis-server`: `--url-signatures auto` writes
//! them only once every replica sharing Redis has said so at each
//! heartbeat for `per_bid_after_ms`. A replica of an earlier version says
//! nothing at its heartbeat; it is simulated here by what its heartbeat
//! writes (its time in `replicas`, nothing else).

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
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

/// How long the replicas here must all have read per-bid URLs (on Redis's
/// clock: real time).
const SOAK: i64 = 1_000;

fn replica(server: &RedisServer, name: &str, clock: Arc<ManualClock>) -> shared::RedisLedger {
    let mut opts = shared::Options::new(name, clock);
    opts.synchronous = true;
    opts.heartbeat_ms = 50;
    opts.per_bid_after_ms = SOAK;
    opts.may_initialise = true;
    let info = shared::connection_info(&server.url(), None, None).unwrap();
    let l = shared::RedisLedger::connect(info, opts).expect("connects");
    l.replayed();
    l
}

fn wait_for(l: &shared::RedisLedger, all_read: bool, what: &str) {
    let flag = l.all_read_per_bid();
    let t = Instant::now();
    while flag.load(Ordering::Relaxed) != all_read {
        assert!(t.elapsed() < Duration::from_secs(10), "{what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The flag keeps `value` over a few heartbeats.
fn stays(l: &shared::RedisLedger, value: bool, what: &str) {
    for _ in 0..40 {
        assert_eq!(
            l.all_read_per_bid().load(Ordering::Relaxed),
            value,
            "{what}"
        );
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
fn per_bid_is_written_only_once_every_replica_has_read_it_for_a_while() {
    let dir = tmp("fleet");
    let server = RedisServer::start(&dir.join("redis")).unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp(NOON)));
    let a = replica(&server, "a", clock.clone());
    stays(&a, false, "alone, but not for long enough yet");
    wait_for(&a, true, "alone for long enough");

    // A replica of an earlier version joins (a rolling deploy from it).
    earlier_version_beats(&server, "old", NOON);
    wait_for(&a, false, "an earlier version reads only per-url");

    // It stops. Once the others count it gone, the count starts again.
    clock.set(Timestamp(NOON + 16_000));
    stays(
        &a,
        false,
        "the count starts again when the earlier version is gone",
    );
    wait_for(&a, true, "all have read per-bid for long enough again");

    // Another replica of this version starts: the count goes on.
    let b = replica(&server, "b", clock.clone());
    stays(&a, true, "a start does not end the count");
    wait_for(&b, true, "the newcomer finds the fleet's count");

    // `b` is rolled back to an earlier version under the same name: its
    // heartbeats move its time on, and what it said before no longer
    // counts.
    drop(b);
    earlier_version_beats(&server, "b", NOON + 16_001);
    wait_for(&a, false, "a rollback under the same name");

    // Redis away: this replica cannot see who joins meanwhile.
    let mut server = server;
    earlier_version_beats(&server, "b", NOON + 1);
    // b's last heartbeat as this version, on Redis's clock, long past (an
    // earlier version's does not write it): a replica silent by the
    // scores is reclaimed only once silent on Redis's clock too.
    server.command(&["HDEL", "bidder:beat-at", "b"]).unwrap();
    clock.set(Timestamp(NOON + 32_000));
    wait_for(&a, true, "b is gone");
    server.stop();
    wait_for(&a, false, "a heartbeat that fails");
}

/// A replica of an earlier version whose clock is behind by more than the
/// time after which a replica counts as gone: each heartbeat of the new
/// one drops it, and its own puts it back. It still counts.
#[test]
fn a_replica_whose_clock_is_behind_still_counts() {
    let dir = tmp("skew");
    let server = RedisServer::start(&dir.join("redis")).unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp(NOON + 40_000)));
    let a = replica(&server, "a", clock.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let beating = {
        let (stop, clock, url) = (stop.clone(), clock.clone(), server.url());
        std::thread::spawn(move || {
            let mut conn = redis::Client::open(url).unwrap().get_connection().unwrap();
            let mut behind = NOON;
            while !stop.load(Ordering::Relaxed) {
                // 40 s behind `a`, whose clock runs on too.
                let _: i64 = redis::cmd("ZADD")
                    .arg("bidder:replicas")
                    .arg(behind)
                    .arg("old")
                    .query(&mut conn)
                    .unwrap();
                behind += 100;
                clock.advance_millis(100);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    // Three seconds, three times the count.
    for _ in 0..300 {
        assert!(
            !a.all_read_per_bid().load(Ordering::Relaxed),
            "a replica behind by more than the timeout was taken for gone"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    beating.join().unwrap();
    // Once it stops beating, it is gone for good, and the count runs.
    wait_for(&a, true, "the earlier version stopped");
}

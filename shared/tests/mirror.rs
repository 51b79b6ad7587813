//! The report mirror against a real `redis-server`: each replica's copy of
//! another's report files is byte for byte what that replica wrote, heals
//! its gaps by asking again, reads nothing twice, and keeps hostile stream
//! entries out of the file system.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use config::{Date, ManualClock, Timestamp};
use shared::testing::RedisServer;
use shared::{Mirror, MirrorOptions};

const DAY: &str = "2026-11-30";

fn clock() -> Arc<ManualClock> {
    let day = Date::parse(DAY).unwrap().days_since_epoch();
    Arc::new(ManualClock::new(Timestamp(day * 86_400_000 + 43_200_000)))
}

/// A mirror ticking fast; what it hands attribution goes to `seen`.
fn start(dir: &Path, name: &str, url: &str, seen: Arc<Mutex<Vec<u8>>>) -> Mirror {
    start_with(dir, name, url, seen, None)
}

/// [`start`], its writers saying what is durable through `synced`.
fn start_with(
    dir: &Path,
    name: &str,
    url: &str,
    seen: Arc<Mutex<Vec<u8>>>,
    synced: Option<ledger::synced::Synced>,
) -> Mirror {
    start_clocked(dir, name, url, seen, synced, clock())
}

/// [`start_with`], on a clock the test moves.
fn start_clocked(
    dir: &Path,
    name: &str,
    url: &str,
    seen: Arc<Mutex<Vec<u8>>>,
    synced: Option<ledger::synced::Synced>,
    clock: Arc<ManualClock>,
) -> Mirror {
    let mut opts = MirrorOptions::new(dir, name, clock);
    opts.synced = synced;
    opts.tick = Duration::from_millis(40);
    opts.compare_every = Duration::from_millis(200);
    opts.on_events = Box::new(move |b| seen.lock().unwrap().extend_from_slice(b));
    let info = shared::connection_info(url, None, None).unwrap();
    Mirror::start(info, opts).expect("mirror starts")
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn append(path: &Path, bytes: &[u8]) {
    use std::io::Write as _;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(bytes).unwrap();
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

struct Dirs {
    root: PathBuf,
    a: PathBuf,
    b: PathBuf,
}

fn dirs(test: &str) -> Dirs {
    let root = std::env::temp_dir().join(format!("shared-mirror-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    Dirs {
        a: root.join("a"),
        b: root.join("b"),
        root,
    }
}

#[test]
fn copies_are_byte_for_byte_and_heal_their_gaps() {
    let d = dirs("copies");
    let mut redis = RedisServer::start(&d.root.join("redis")).expect("redis-server");
    let url = redis.url();
    let a_events = d.a.join("events").join(format!("{DAY}.events"));
    let a_charges = d.a.join("charges.journal");
    append(&a_events, b"one\ntwo\n");
    append(&a_charges, b"bidder-journal 1 7\ncharge-1\n");
    // A day older than what reports keep is not sent.
    append(&d.a.join("events").join("2020-01-01.events"), b"old\n");

    let seen = Arc::new(Mutex::new(Vec::new()));
    let a = start(&d.a, "a", &url, Arc::default());
    let b = start(&d.b, "b", &url, seen.clone());
    let copy_events = d.b.join("peers/a/events").join(format!("{DAY}.events"));
    let copy_charges = d.b.join("peers/a/charges.7.journal");
    wait_until("first copies", || {
        read(&copy_events) == read(&a_events) && read(&copy_charges) == read(&a_charges)
    });
    assert_eq!(*seen.lock().unwrap(), b"one\ntwo\n");
    assert!(!d.b.join("peers/a/events/2020-01-01.events").exists());
    // `b` sends nothing of its own yet; `a` keeps no copy of itself.
    assert!(!d.a.join("peers/a").exists());

    // A line being written goes only once it is whole.
    append(&a_events, b"thr");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(read(&copy_events), b"one\ntwo\n");
    append(&a_events, b"ee\n");
    wait_until("a line finished", || read(&copy_events) == read(&a_events));
    assert_eq!(*seen.lock().unwrap(), b"one\ntwo\nthree\n");

    // `b` away; the stream lost (trimmed, or Redis restarted empty);
    // `b`'s copy lost its tail. Back, it asks `a` again and catches up.
    drop(b);
    redis.wipe().expect("wipe");
    std::fs::write(&copy_events, b"one\n").unwrap();
    std::fs::write(&copy_charges, b"").unwrap();
    append(&a_events, b"four\n");
    let b = start(&d.b, "b", &url, seen.clone());
    wait_until("gaps filled", || {
        read(&copy_events) == read(&a_events) && read(&copy_charges) == read(&a_charges)
    });
    assert!(b.stats.gaps.load(std::sync::atomic::Ordering::Relaxed) > 0);

    // Read from the start again (its offset lost): nothing changes and
    // attribution is handed nothing twice.
    drop(b);
    let before = seen.lock().unwrap().len();
    let _ = std::fs::remove_file(d.b.join("reports.offset"));
    let b = start(&d.b, "b", &url, seen.clone());
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(read(&copy_events), read(&a_events));
    assert_eq!(seen.lock().unwrap().len(), before);

    // Entries naming paths outside the copies, or no replica, are skipped.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_connection().unwrap();
    for (r, f) in [
        ("evil", "../../outside.events"),
        ("evil", "events/../../../outside.events"),
        ("../..", "charges.1.journal"),
        ("evil/..", "charges.1.journal"),
    ] {
        let _: String = redis::cmd("XADD")
            .arg("bidder:reports")
            .arg("*")
            .arg("r")
            .arg(r)
            .arg("f")
            .arg(f)
            .arg("o")
            .arg(0)
            .arg("d")
            .arg("x\n")
            .query(&mut conn)
            .unwrap();
    }
    append(&a_events, b"five\n");
    wait_until("still copying", || read(&copy_events) == read(&a_events));
    assert!(!d.root.join("outside.events").exists());
    assert!(!d.b.join("outside.events").exists());
    let peers: Vec<String> = std::fs::read_dir(d.b.join("peers"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(peers, vec!["a".to_string()]);
    drop((a, b));
    drop(redis);
    let _ = std::fs::remove_dir_all(&d.root);
}

#[test]
fn a_publisher_restarted_goes_on_from_what_it_sent() {
    let d = dirs("restart");
    let redis = RedisServer::start(&d.root.join("redis")).expect("redis-server");
    let url = redis.url();
    let a_events = d.a.join("events").join(format!("{DAY}.events"));
    append(&a_events, b"one\n");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let b = start(&d.b, "b", &url, seen.clone());
    let a = start(&d.a, "a", &url, Arc::default());
    let copy = d.b.join("peers/a/events").join(format!("{DAY}.events"));
    wait_until("copied", || read(&copy) == read(&a_events));
    drop(a);
    append(&a_events, b"two\n");
    let a = start(&d.a, "a", &url, Arc::default());
    wait_until("copied after a restart", || read(&copy) == read(&a_events));
    // Nothing was sent twice: the stream holds each byte once.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_connection().unwrap();
    let entries: Vec<(String, Vec<Vec<u8>>)> = redis::cmd("XRANGE")
        .arg("bidder:reports")
        .arg("-")
        .arg("+")
        .query(&mut conn)
        .unwrap();
    let sent: usize = entries
        .iter()
        .map(|(_, f)| f.chunks(2).find(|p| p[0] == b"d").map_or(0, |p| p[1].len()))
        .sum();
    assert_eq!(sent, read(&a_events).len());
    assert_eq!(*seen.lock().unwrap(), b"one\ntwo\n");
    drop((a, b));
    drop(redis);
    let _ = std::fs::remove_dir_all(&d.root);
}

/// A replica stopping (a scale-down: its pod may not come back) sends what
/// it wrote last: `serve` stops its writers, then drops the mirror, whose
/// last passes send every byte written (nothing can be cut back any
/// more), those of the last tick included.
#[test]
fn what_was_written_just_before_a_stop_is_sent() {
    let d = dirs("stop");
    let redis = RedisServer::start(&d.root.join("redis")).expect("redis-server");
    let url = redis.url();
    let a_charges = d.a.join("charges.journal");
    append(&a_charges, b"bidder-journal 1 2\ncharge-1\n");
    // Production ticks (500 ms): the writers stop within one.
    let mut opts = MirrorOptions::new(&d.a, "a", clock());
    opts.compare_every = Duration::from_millis(200);
    let info = shared::connection_info(&url, None, None).unwrap();
    let a = Mirror::start(info, opts).expect("mirror starts");
    let b = start(&d.b, "b", &url, Arc::default());
    let copy = d.b.join("peers/a/charges.2.journal");
    wait_until("copied", || read(&copy) == read(&a_charges));
    // The last notice before the drain ends is charged; the writers stop,
    // and the mirror is dropped.
    append(&a_charges, b"charge-2\n");
    drop(a);
    let start_at = Instant::now();
    while read(&copy) != read(&a_charges) && start_at.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        String::from_utf8_lossy(&read(&copy)),
        String::from_utf8_lossy(&read(&a_charges)),
        "the last charge of a replica that stopped never reaches the others"
    );
    drop(b);
    drop(redis);
    let _ = std::fs::remove_dir_all(&d.root);
}

/// The stream is bounded by bytes, within a share of Redis's `maxmemory`:
/// a backfill (a new replica, a publisher restarted after Redis lost its
/// data) never fills a `noeviction` Redis (k8s/base/redis.yaml: 600mb), or
/// every write of the money path would fail with OOM. Scaled down here:
/// 16 MB of Redis, 24 MB of one day's events.
#[test]
fn a_backfill_leaves_room_in_redis_for_the_money_path() {
    let d = dirs("oom");
    let redis = RedisServer::start(&d.root.join("redis")).expect("redis-server");
    let url = redis.url();
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_connection().unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("16mb")
        .query(&mut conn)
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("noeviction")
        .query(&mut conn)
        .unwrap();
    let a_events = d.a.join("events").join(format!("{DAY}.events"));
    let line = format!("{}\n", "i".repeat(199));
    let mut day = String::new();
    while day.len() < 24 << 20 {
        day.push_str(&line);
    }
    append(&a_events, day.as_bytes());
    let a = start(&d.a, "a", &url, Arc::default());
    let b = start(&d.b, "b", &url, Arc::default());
    let copy = d.b.join("peers/a/events").join(format!("{DAY}.events"));
    let start_at = Instant::now();
    while read(&copy).len() < day.len() && start_at.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    // The money path goes on writing: frequency caps of new users,
    // claims of new bids (about 200 bytes each, README), 1 MB of them.
    let mut refused = None;
    for i in 0..5_000 {
        let r: redis::RedisResult<()> = redis::cmd("SET")
            .arg(format!("bidder:f:user-{i}"))
            .arg("x".repeat(200))
            .query(&mut conn);
        if let Err(e) = r {
            refused = Some((i, e));
            break;
        }
    }
    let xlen: i64 = redis::cmd("XLEN")
        .arg("bidder:reports")
        .query(&mut conn)
        .unwrap();
    let copied = read(&copy) == day.as_bytes();
    drop((a, b));
    assert!(
        refused.is_none(),
        "Redis refuses the money path's writes (the stream holds {xlen} pieces): {refused:?}"
    );
    assert!(copied, "the backfill did not complete");
    drop(redis);
    let _ = std::fs::remove_dir_all(&d.root);
}

/// A write its writer cut back (an fsync that failed, after more than a
/// tick: `reports::log` and the charge journal both cut back to their last
/// durable length, then go on writing) is never sent: only what a writer
/// says is durable goes, and the copy stays byte for byte the file.
#[test]
fn a_write_cut_back_is_never_sent_and_the_copy_stays_byte_for_byte() {
    let d = dirs("cutback");
    let redis = RedisServer::start(&d.root.join("redis")).expect("redis-server");
    let url = redis.url();
    let name = format!("events/{DAY}.events");
    let a_events = d.a.join(&name);
    let synced = ledger::synced::Synced::default();
    append(&a_events, b"one\n");
    synced.set(name.clone(), 4);
    let a = start_with(&d.a, "a", &url, Arc::default(), Some(synced.clone()));
    let b = start(&d.b, "b", &url, Arc::default());
    let copy = d.b.join("peers/a/events").join(format!("{DAY}.events"));
    wait_until("copied", || read(&copy) == read(&a_events));

    // A batch written, its fsync slow (for many ticks) and then failed.
    append(&a_events, b"never-acknowledged\n");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(read(&copy), b"one\n", "bytes not durable were sent");
    // The writer cuts it back and goes on with the next batch, durable.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&a_events)
        .unwrap()
        .set_len(4)
        .unwrap();
    append(&a_events, b"two\nthree, and then some more\n");
    synced.set(name, read(&a_events).len() as u64);
    wait_until("copied after the cut", || read(&copy) == read(&a_events));
    drop((a, b));
    drop(redis);
    let _ = std::fs::remove_dir_all(&d.root);
}

/// A replica that left for good (scaled down, its volume lost), its
/// pieces trimmed from the stream since: a replica that joins later gets
/// its files from another that holds a copy, which answers the requests
/// in its place.
#[test]
fn a_replica_joining_after_another_left_gets_the_files_it_left() {
    let d = dirs("departed");
    let redis = RedisServer::start(&d.root.join("redis")).expect("redis-server");
    let url = redis.url();
    let a_charges = d.a.join("charges.journal");
    append(&a_charges, b"bidder-journal 1 3\ncharge-1\n");
    let a = start(&d.a, "a", &url, Arc::default());
    let b = start(&d.b, "b", &url, Arc::default());
    let b_copy = d.b.join("peers/a/charges.3.journal");
    wait_until("b copied a", || read(&b_copy) == read(&a_charges));
    drop(a);
    // Hours of traffic later, `a`'s pieces are trimmed away.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_connection().unwrap();
    let _: i64 = redis::cmd("XTRIM")
        .arg("bidder:reports")
        .arg("MAXLEN")
        .arg(0)
        .query(&mut conn)
        .unwrap();
    let c_dir = d.root.join("c");
    let c = start(&c_dir, "c", &url, Arc::default());
    let c_copy = c_dir.join("peers/a/charges.3.journal");
    let start_at = Instant::now();
    while read(&c_copy) != read(&a_charges) && start_at.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let gaps = c.stats.gaps.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        read(&c_copy),
        read(&a_charges),
        "c never got a's charges (b has them); c asked {gaps} times"
    );
    drop((b, c));
    drop(redis);
    let _ = std::fs::remove_dir_all(&d.root);
}

/// A listing of the replica's files that fails (here: `events` briefly not
/// a directory; in production, a process out of file descriptors) is not
/// an empty directory: nothing is taken for pruned, forgotten, and sent
/// again whole.
#[test]
fn a_failed_listing_sends_nothing_again() {
    let d = dirs("listing");
    let redis = RedisServer::start(&d.root.join("redis")).expect("redis-server");
    let url = redis.url();
    let events = d.a.join("events").join(format!("{DAY}.events"));
    let line = format!("{}\n", "e".repeat(99));
    append(&events, line.repeat(1_000).as_bytes());
    let len = read(&events).len() as u64;
    let a = start(&d.a, "a", &url, Arc::default());
    let sent = || {
        a.stats
            .sent_bytes
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    wait_until("sent", || sent() >= len);
    let away = d.a.join("events.away");
    std::fs::rename(d.a.join("events"), &away).unwrap();
    std::fs::write(d.a.join("events"), b"not a directory").unwrap();
    std::thread::sleep(Duration::from_millis(400));
    std::fs::remove_file(d.a.join("events")).unwrap();
    std::fs::rename(&away, d.a.join("events")).unwrap();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(sent(), len, "the file was sent again from its start");
    drop(a);
    drop(redis);
    let _ = std::fs::remove_dir_all(&d.root);
}

/// A replica gone for longer than reports are kept is forgotten in Redis
/// (its record of what it sent, its requests, its name): nothing of its
/// files is kept anywhere by then.
#[test]
fn a_replica_gone_past_the_retention_is_forgotten() {
    let d = dirs("forgotten");
    let redis = RedisServer::start(&d.root.join("redis")).expect("redis-server");
    let url = redis.url();
    let a_charges = d.a.join("charges.journal");
    append(&a_charges, b"bidder-journal 1 3\ncharge-1\n");
    let a = start(&d.a, "a", &url, Arc::default());
    let b_clock = clock();
    let b = start_clocked(&d.b, "b", &url, Arc::default(), None, b_clock.clone());
    let b_copy = d.b.join("peers/a/charges.3.journal");
    wait_until("b copied a", || read(&b_copy) == read(&a_charges));
    drop(a);
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_connection().unwrap();
    let mut publishers = || -> Vec<String> {
        redis::cmd("SMEMBERS")
            .arg("bidder:rpeers")
            .query(&mut conn)
            .unwrap()
    };
    // Gone, within the retention: still known (its files may be asked for).
    wait_until("a seen gone", || {
        redis::cmd("EXISTS")
            .arg("bidder:rgone:a")
            .query::<bool>(&mut client.get_connection().unwrap())
            .unwrap()
    });
    assert!(publishers().contains(&"a".to_string()));
    b_clock.advance_millis(401 * 86_400_000);
    wait_until("a forgotten", || !publishers().contains(&"a".to_string()));
    let left: i64 = redis::cmd("EXISTS")
        .arg("bidder:rp:a")
        .arg("bidder:rgone:a")
        .query(&mut client.get_connection().unwrap())
        .unwrap();
    assert_eq!(left, 0);
    drop(b);
    drop(redis);
    let _ = std::fs::remove_dir_all(&d.root);
}

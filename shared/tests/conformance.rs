//! The ledger's conformance suite against a real `redis-server`, through
//! the Redis ledger in its synchronous mode (every call waits for Redis, so
//! the suite's exact expectations apply). Each check gets its own key
//! prefix on one server; a restarted ledger (`reopen`) is a new replica on
//! the same prefix.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use config::{ManualClock, Timestamp};
use ledger::Ledger;
use shared::testing::RedisServer;

fn server() -> &'static RedisServer {
    static SERVER: OnceLock<RedisServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("shared-conformance-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        RedisServer::start(&dir).expect("redis-server starts")
    })
}

/// Which prefix each ledger was made on (by address), for `reopen`.
fn prefixes() -> &'static Mutex<HashMap<usize, String>> {
    static P: OnceLock<Mutex<HashMap<usize, String>>> = OnceLock::new();
    P.get_or_init(Mutex::default)
}

fn on(prefix: &str) -> Arc<dyn Ledger> {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let clock = Arc::new(ManualClock::new(Timestamp(1_795_521_600_000)));
    let mut opts = shared::Options::new(&format!("replica-{n}"), clock);
    opts.prefix = prefix.to_string();
    opts.synchronous = true;
    // A fresh state is created after a few quiet heartbeats: short ones.
    opts.heartbeat_ms = 50;
    let info = shared::connection_info(&server().url(), None, None).expect("url");
    let l: Arc<dyn Ledger> = Arc::new(shared::RedisLedger::connect(info, opts).expect("connects"));
    prefixes()
        .lock()
        .unwrap()
        .insert(Arc::as_ptr(&l) as *const () as usize, prefix.to_string());
    l
}

fn make() -> Arc<dyn Ledger> {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    on(&format!("t{}-{n}:", std::process::id()))
}

fn reopen(old: &Arc<dyn Ledger>) -> Arc<dyn Ledger> {
    let prefix = prefixes()
        .lock()
        .unwrap()
        .get(&(Arc::as_ptr(old) as *const () as usize))
        .cloned()
        .expect("made here");
    on(&prefix)
}

ledger::conformance_tests!(make, reopen);

/// Reports ask Redis which waiting bids another replica charged: a charge
/// committed anywhere is one, a claim still being written is not yet.
#[test]
fn charges_committed_on_any_replica_are_seen_from_another() {
    use config::{Micros, Timestamp};
    use ledger::{BidKey, Cap, Hold, Limit, SpendKey, Win};
    let prefix = format!("t{}-charged-anywhere:", std::process::id());
    let (a, b) = (on(&prefix), on(&prefix));
    let (li, o) = (SpendKey::line_item("li"), SpendKey::order("o"));
    let now = Timestamp(1_795_521_600_000);
    let limits = || {
        [
            Limit {
                key: &li,
                cap: Cap::None,
            },
            Limit {
                key: &o,
                cap: Cap::None,
            },
        ]
    };
    let win = |bid| Win {
        bid: BidKey(bid),
        day: now.date(),
        cost: Micros(1_000),
        limits: limits(),
        forget: Timestamp(now.as_millis() + 86_400_000),
        made: now,
        tags: ledger::Tags::default(),
    };
    for bid in [1, 2] {
        let hold = Hold {
            bid: BidKey(bid),
            day: now.date(),
            cost: Micros(1_000),
            limits: limits(),
            frequency: None,
            expires: Timestamp(now.as_millis() + 60_000),
            forget: Timestamp(now.as_millis() + 86_400_000),
        };
        a.reserve(&hold, now).expect("room");
    }
    let c = a.begin_charge(&win(1)).expect("chargeable");
    a.commit(&c);
    let writing = a.begin_charge(&win(2)).expect("chargeable");
    let asked = [BidKey(1), BidKey(2), BidKey(3)];
    assert_eq!(b.charged_anywhere(&asked), Some(vec![true, false, false]));
    a.commit(&writing);
    assert_eq!(b.charged_anywhere(&asked), Some(vec![true, true, false]));
    assert_eq!(b.charged_anywhere(&[]), Some(vec![]));
    // Alone, a ledger knows every charge itself: nothing to ask.
    assert_eq!(
        ledger::MemoryLedger::default().charged_anywhere(&asked),
        None
    );
}

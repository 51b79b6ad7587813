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

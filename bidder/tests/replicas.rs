//! Three `bidder serve` replicas sharing a real `redis-server` (on a free
//! loopback port), driven by 200 concurrent clients that bid and send each
//! won bid's win notice and billing notice to different random replicas,
//! as exchanges behind a load balancer do. Mid-run one replica is killed
//! with SIGKILL (and started again on its journal), then Redis is
//! restarted on its data. Afterwards:
//!
//! - every budget holds: charged ≤ budget, and ≥ 90% of the order's with
//!   what is still held back for bids that may win (the killed replica's
//!   retired leases);
//! - every acknowledged charge is in exactly one replica's journal (none
//!   lost with the killed replica, none doubled across replicas);
//! - Redis's spend equals the journals' (reconcile finds no difference);
//! - a frequency cap of 3 holds per user across replicas.
//!
//! The replicas use the wall clock; the config's flight spans decades, so
//! the date does not matter. The run is bounded: 200 clients, 60 s at most.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;

use ledger::{BidKey, SpendKey};
use shared::testing::RedisServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "replicas-test-secret-of-32-bytes!!";
const ADMIN_TOKEN: &str = "replicas-admin-token-0123456789";
const CLIENTS: usize = 200;
const USERS: usize = 40;
const RUN_LIMIT: Duration = Duration::from_secs(60);
/// The order's lifetime budget, in micros.
const ORDER_BUDGET: i64 = 3_000_000;
const CAP: usize = 3;

/// Advertiser `shop` selling `tent-1`, for the tests of audiences and
/// reports across replicas.
const SHOP_HEAD: &str = "advertiser:
  id: shop
  name: Shop
  domains: [shop.example]
  categories: [IAB22]
  products: [tent-1]
";

/// Its creative and order `o1` (100.00), up to its line items.
const SHOP_ORDER: &str = "creatives:
  - id: b300
    format: display
    size: 300x250
    image_url: https://cdn.shop.example/b.png
    click_url: https://shop.example/
orders:
  - id: o1
    service: self_service
    budget: 100.00
    flight: { start: 2020-01-01, end: 2099-12-31 }
    line_items:
";

fn config(dir: &Path) {
    let yaml = r#"advertiser:
  id: shop
  name: Shop
  domains: [shop.example]
  categories: [IAB22]
creatives:
  - id: b300
    format: display
    size: 300x250
    image_url: https://cdn.shop.example/b.png
    click_url: https://shop.example/
orders:
  - id: o1
    service: self_service
    budget: 3.00
    flight: { start: 2020-01-01, end: 2099-12-31 }
    line_items:
      - id: li-a
        media: display
        cpm: 10.00
        budget: { daily: 2.00 }
        creatives: [b300]
      - id: li-b
        media: display
        cpm: 8.00
        budget: { daily: 2.00 }
        creatives: [b300]
  - id: o2
    service: self_service
    budget: 100.00
    flight: { start: 2020-01-01, end: 2099-12-31 }
    line_items:
      - id: li-f
        media: display
        cpm: 20.00
        budget: { daily: 50.00 }
        frequency_cap: { impressions: 3, per_hours: 24 }
        creatives: [b300]
"#;
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("shop.yaml"), yaml).unwrap();
}

/// A fresh directory for a test (`bidder-NAME-PID`, named so that a test
/// killed midway leaves replicas the next run can find) and a Redis in it.
fn cluster(name: &str) -> (PathBuf, RedisServer) {
    let root = std::env::temp_dir().join(format!("bidder-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let redis = RedisServer::start(&root.join("redis")).expect("redis-server (Debian package)");
    (root, redis)
}

struct Replica {
    child: Child,
    bid: SocketAddr,
    admin: SocketAddr,
}

impl Drop for Replica {
    fn drop(&mut self) {
        // A failed assertion must not leave replicas running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_replica(config: &Path, journal: &Path, redis: &str) -> Replica {
    start_replica_with(config, journal, redis, &[])
}

/// `bidder serve` as a replica on `redis`, not yet spawned: on ports of
/// its own, with the test's secret and token.
fn replica_command(config: &Path, journal: &Path, redis: &str) -> Command {
    let mut cmd = common::serve_command();
    cmd.arg("--config")
        .arg(config)
        .args(["--state", redis])
        .arg("--journal")
        .arg(journal)
        .args(["--drain-secs", "0", "--config-poll-secs", "0"])
        .env("BIDDER_NOTICE_SECRET", SECRET)
        .env("BIDDER_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("RUST_LOG", "warn");
    cmd
}

/// [`start_replica`] with more environment (`BIDDER_…` settings).
fn start_replica_with(config: &Path, journal: &Path, redis: &str, env: &[(&str, &str)]) -> Replica {
    let mut child = replica_command(config, journal, redis)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("bidder starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("listening line");
    let addr = |key: &str| -> SocketAddr {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in {line:?}"))
            .parse()
            .expect("address")
    };
    Replica {
        bid: addr("bid="),
        admin: addr("admin="),
        child,
    }
}

/// One HTTP/1.1 exchange on a fresh connection: (status, body), or `None`
/// when the replica cannot be reached or does not answer in time.
async fn http(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> Option<(u16, Vec<u8>)> {
    let work = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Authorization: Bearer {ADMIN_TOKEN}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).await.ok()?;
        s.write_all(body).await.ok()?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.ok()?;
        let text = String::from_utf8_lossy(&out);
        let status: u16 = text.split_whitespace().nth(1)?.parse().ok()?;
        let at = out.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
        Some((status, out[at..].to_vec()))
    };
    tokio::time::timeout(Duration::from_secs(5), work)
        .await
        .ok()
        .flatten()
}

/// POSTs `body` to `path` on an admin port and asserts 200.
fn admin_post_ok(runtime: &tokio::runtime::Runtime, admin: SocketAddr, path: &str, body: &[u8]) {
    let (status, answer) = runtime
        .block_on(http(admin, "POST", path, body))
        .expect("an answer");
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&answer));
}

fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/')
        .map_or_else(String::new, |i| rest[i..].to_string())
}

#[derive(Default)]
struct Seen {
    /// Bids with a notice acknowledged (200), and their user and line item.
    acknowledged: Mutex<HashMap<String, (usize, String)>>,
    /// What acknowledged bids were priced at (micros per impression), for
    /// the phases.
    spent_estimate: AtomicI64,
    bids: AtomicU64,
    last_bid_ms: AtomicI64,
}

#[test]
fn three_replicas_share_budgets_caps_and_charges_through_redis() {
    let (root, mut redis) = cluster("replicas");
    let url = redis.url();
    let config_dir = root.join("config");
    config(&config_dir);
    let journals: Vec<PathBuf> = (0..3).map(|i| root.join(format!("replica-{i}"))).collect();
    let replicas: Vec<Replica> = journals
        .iter()
        .map(|j| start_replica(&config_dir, j, &url))
        .collect();
    let bid_addrs: Arc<Mutex<Vec<SocketAddr>>> =
        Arc::new(Mutex::new(replicas.iter().map(|r| r.bid).collect()));
    let replicas = Arc::new(Mutex::new(replicas));

    let seen = Arc::new(Seen::default());
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let addrs = bid_addrs.clone();
            let seen = seen.clone();
            let stop = stop.clone();
            runtime.spawn(async move { client(c, addrs, seen, stop, started).await })
        })
        .collect();

    // The faults, while budgets still have room: a replica killed at a
    // third of the order's budget (and started again on its journal),
    // Redis restarted at two thirds.
    let wait_for = |share: i64| {
        while seen.spent_estimate.load(Ordering::Relaxed) < ORDER_BUDGET * share / 3
            && started.elapsed() < RUN_LIMIT / 2
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for(1);
    {
        let mut r = replicas.lock().unwrap();
        let killed = &mut r[1];
        killed.child.kill().expect("SIGKILL");
        let _ = killed.child.wait();
    }
    std::thread::sleep(Duration::from_millis(300));
    let again = start_replica(&config_dir, &journals[1], &url);
    bid_addrs.lock().unwrap()[1] = again.bid;
    replicas.lock().unwrap()[1] = again;
    wait_for(2);
    redis.restart().expect("redis restarts on its data");

    // Until budgets and caps stop every bid for seven seconds (longer than
    // a lease stays idle before it goes back to be lent again), or the limit.
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let idle = started.elapsed().as_millis() as i64 - seen.last_bid_ms.load(Ordering::Relaxed);
        if idle > 7_000 || started.elapsed() > RUN_LIMIT {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    runtime.block_on(async {
        for c in clients {
            let _ = c.await;
        }
    });
    assert!(
        started.elapsed() < RUN_LIMIT + Duration::from_secs(15),
        "bounded run"
    );

    // Every replica found Redis again by itself.
    let admins: Vec<SocketAddr> = replicas.lock().unwrap().iter().map(|r| r.admin).collect();
    runtime.block_on(async {
        for admin in admins {
            wait_healthy(admin).await;
        }
    });

    // Replicas stop as Kubernetes stops them: SIGTERM, leases go back and
    // writes owed to Redis are sent.
    for r in replicas.lock().unwrap().iter_mut() {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(r.child.id().to_string())
            .status();
    }
    for r in replicas.lock().unwrap().iter_mut() {
        let status = r.child.wait().expect("replica exits");
        assert!(status.success(), "a replica exited with {status}");
    }

    let totals = shared::reconcile::read_journals(&journals).expect("journals");
    assert!(
        totals.duplicates.is_empty(),
        "bids charged in two journals: {:?}",
        totals.duplicates
    );
    let acknowledged = seen.acknowledged.lock().unwrap();
    let charged: HashSet<BidKey> = totals.forget.keys().copied().collect();
    for id in acknowledged.keys() {
        let key = BidKey::of(id).expect("our bid id");
        assert!(
            charged.contains(&key),
            "acknowledged charge {id} is in no journal"
        );
    }
    let spent = |k: SpendKey| totals.life.get(&k).copied().unwrap_or(0);
    let order = spent(SpendKey::order("o1"));
    assert!(
        order <= ORDER_BUDGET,
        "order spent {order} > {ORDER_BUDGET}"
    );
    // What the replicas still hold back from the order once stopped: the
    // killed replica's leases, retired until its bids can no longer win,
    // and those covering bids in flight at the shutdown. Budget kept back
    // for bids that may still win is not stranded: it goes back once they
    // are over (shared's faults tests); the rest must have been spent.
    let held_back = redis
        .hget_i64("bidder:s:order:o1", "leased")
        .expect("Redis answers");
    // Every micro of it accounted for: a retiring entry (given back when
    // due) or a replica's lease still covering bids in flight. A lease
    // stranded by a bug would be neither.
    let retiring: i64 = redis
        .zmembers("bidder:retiring")
        .expect("Redis answers")
        .iter()
        .filter_map(|m| {
            let f: Vec<&str> = m.split('\t').collect();
            (f.len() == 5 && f[0] == "order:o1").then(|| f[2].parse::<i64>().expect("amount"))
        })
        .sum();
    let lent: i64 = redis
        .keys("bidder:l:order:o1:*")
        .expect("Redis answers")
        .iter()
        .map(|k| {
            redis
                .hvals_i64(k)
                .expect("Redis answers")
                .iter()
                .sum::<i64>()
        })
        .sum();
    assert_eq!(
        held_back,
        retiring + lent,
        "leased under the order: {retiring} retiring and {lent} lent out"
    );
    assert!(
        (order + held_back) * 10 >= ORDER_BUDGET * 9,
        "order spent {order} and held back {held_back} for bids that may still win, \
         under 90% of {ORDER_BUDGET}"
    );
    for li in ["li-a", "li-b"] {
        let s = spent(SpendKey::line_item(li));
        assert!(s <= 2_000_000, "{li} spent {s} > its 2.00 daily budget");
    }
    // Frequency: distinct charged bids of the capped line item per user.
    let mut per_user: HashMap<usize, usize> = HashMap::new();
    for (id, (user, li)) in acknowledged.iter() {
        if li == "li-f" && charged.contains(&BidKey::of(id).expect("id")) {
            *per_user.entry(*user).or_default() += 1;
        }
    }
    assert!(!per_user.is_empty(), "the capped line item won nothing");
    for (user, n) in &per_user {
        assert!(*n <= CAP, "user {user} saw the capped line item {n} times");
    }

    // Redis agrees with the journals, to the micro.
    let info = shared::connection_info(&url, None, None).expect("url");
    let report = shared::reconcile::reconcile(
        info,
        "bidder:",
        &journals,
        true,
        config::Clock::now(&config::SystemClock),
    )
    .expect("reconcile");
    assert!(
        report.differences.is_empty(),
        "Redis differs from the journals: {:?}",
        report.differences
    );
    eprintln!(
        "bids {}, charged {} (o1 {order} of {ORDER_BUDGET}, {held_back} held back), capped users {}, in {:?}",
        seen.bids.load(Ordering::Relaxed),
        totals.bids,
        per_user.len(),
        started.elapsed()
    );
    drop(acknowledged);
    drop(redis);
    let _ = std::fs::remove_dir_all(&root);
}

async fn client(
    c: usize,
    addrs: Arc<Mutex<Vec<SocketAddr>>>,
    seen: Arc<Seen>,
    stop: Arc<AtomicBool>,
    started: Instant,
) {
    let mut n = c as u64;
    let mut next = move || {
        // A small xorshift: which replica, which user, per client.
        n ^= n << 13;
        n ^= n >> 7;
        n ^= n << 17;
        n = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
        n
    };
    let pick = |addrs: &Arc<Mutex<Vec<SocketAddr>>>, r: u64| {
        let a = addrs.lock().unwrap();
        a[(r % a.len() as u64) as usize]
    };
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) && started.elapsed() < RUN_LIMIT {
        i += 1;
        let user = (next() % USERS as u64) as usize;
        let body = serde_json::json!({
            "id": format!("c{c}-{i}"),
            "at": 2,
            "tmax": 300,
            "cur": ["USD"],
            "imp": [{ "id": "1", "bidfloor": 0.5, "bidfloorcur": "USD",
                      "banner": { "w": 300, "h": 250, "format": [{ "w": 300, "h": 250 }] } }],
            "site": { "id": "s1", "domain": "news.example", "page": "https://news.example/a",
                      "publisher": { "id": "p1" } },
            "device": { "devicetype": 2, "geo": { "country": "USA" }, "ua": "Mozilla/5.0" },
            "user": { "buyeruid": format!("user-{user}") }
        })
        .to_string();
        let replica = pick(&addrs, next());
        let Some((200, resp)) = http(replica, "POST", "/openrtb2/bid", body.as_bytes()).await
        else {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        seen.bids.fetch_add(1, Ordering::Relaxed);
        seen.last_bid_ms
            .store(started.elapsed().as_millis() as i64, Ordering::Relaxed);
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&resp) else {
            continue;
        };
        let bid = &v["seatbid"][0]["bid"][0];
        let (Some(id), Some(price), Some(nurl), Some(burl)) = (
            bid["id"].as_str(),
            bid["price"].as_f64(),
            bid["nurl"].as_str(),
            bid["burl"].as_str(),
        ) else {
            continue;
        };
        let li = common::param(nurl, "li").unwrap_or_default().to_string();
        let price_text = format!("{price:.4}");
        // Win notice to one replica, billing notice to another; a notice
        // that fails (a replica down, Redis away) is retried elsewhere, as
        // exchanges retry.
        let mut acked = false;
        for url in [nurl, burl] {
            let path = path_of(url).replace("${AUCTION_PRICE}", &price_text);
            for attempt in 0..40 {
                let target = pick(&addrs, next());
                match http(target, "GET", &path, b"").await {
                    Some((200, _)) => {
                        acked = true;
                        break;
                    }
                    _ => {
                        let pause = if attempt < 10 { 20 } else { 100 };
                        tokio::time::sleep(Duration::from_millis(pause)).await;
                    }
                }
            }
        }
        if acked {
            let mut a = seen.acknowledged.lock().unwrap();
            if a.insert(id.to_string(), (user, li.clone())).is_none() && li != "li-f" {
                seen.spent_estimate
                    .fetch_add((price * 1000.0) as i64, Ordering::Relaxed);
            }
        }
    }
}

fn bid_body(user: &str) -> Vec<u8> {
    serde_json::json!({
        "id": "down-1", "at": 2, "tmax": 300, "cur": ["USD"],
        "imp": [{ "id": "1", "banner": { "w": 300, "h": 250 } }],
        "site": { "id": "s1", "domain": "news.example", "page": "https://news.example/a" },
        "device": { "devicetype": 2, "geo": { "country": "USA" }, "ua": "Mozilla/5.0" },
        "user": { "buyeruid": user }
    })
    .to_string()
    .into_bytes()
}

#[test]
fn without_redis_budgeted_line_items_stop_and_come_back_by_themselves() {
    let (root, mut redis) = cluster("redis-down");
    let config_dir = root.join("config");
    config(&config_dir);
    // Started while Redis is away: not ready (a rollout with a wrong
    // address or password stops at its first replica) until Redis answers.
    redis.stop();
    let r = start_replica(&config_dir, &root.join("replica"), &redis.url());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        wait_ready(
            r.admin,
            503,
            "not ready: the shared state has not been available",
        )
        .await;
    });
    redis.restart().expect("redis starts");
    runtime.block_on(async {
        wait_healthy(r.admin).await;
        // The first bid asks for a lease; one comes within milliseconds.
        let mut status = 0;
        for _ in 0..100 {
            status = http(r.bid, "POST", "/openrtb2/bid", &bid_body("u-1"))
                .await
                .unwrap()
                .0;
            if status == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(status, 200, "bids once Redis lends budget");
    });

    redis.stop();
    runtime.block_on(async {
        // Within the stale limit (3 s) every budgeted line item is off;
        // the replica stays ready (204s, not errors) and says why.
        wait_ready(r.admin, 200, "degraded: shared state unavailable").await;
        let t = Instant::now();
        let (status, _) = http(r.bid, "POST", "/openrtb2/bid", &bid_body("u-2"))
            .await
            .unwrap();
        assert_eq!(status, 204, "no bid without Redis");
        // Fast: the bid path never waits for Redis (a generous bound for a
        // loaded debug build; the point is not the Redis timeout).
        assert!(
            t.elapsed() < Duration::from_millis(200),
            "{:?}",
            t.elapsed()
        );
        let (_, explained) = http(r.admin, "POST", "/v1/explain", &bid_body("u-2"))
            .await
            .unwrap();
        let explained = String::from_utf8_lossy(&explained).to_string();
        assert!(explained.contains("state_unavailable"), "{explained}");
        let (_, metrics) = http(r.admin, "GET", "/metrics", b"").await.unwrap();
        let metrics = String::from_utf8_lossy(&metrics).to_string();
        assert!(metrics.contains("bidder_shared_state_up 0"), "{metrics}");
        // A reload refused meanwhile is said too: the outage does not hide
        // that the change did not take.
        let shop = config_dir.join("shop.yaml");
        let good = std::fs::read_to_string(&shop).unwrap();
        std::fs::write(&shop, good.replace("cpm: 10.00", "cpm: -1")).unwrap();
        let (status, answer) = http(r.admin, "POST", "/v1/config/reload", b"")
            .await
            .unwrap();
        assert_eq!(status, 422, "{}", String::from_utf8_lossy(&answer));
        let said = wait_ready(r.admin, 200, "degraded: shared state unavailable").await;
        assert!(
            said.contains("; on the config before the last reload: that reload was refused at"),
            "{said}"
        );
        std::fs::write(&shop, good).unwrap();
    });

    redis.restart().expect("redis restarts");
    runtime.block_on(async {
        let (status, answer) = http(r.admin, "POST", "/v1/config/reload", b"")
            .await
            .unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
        wait_healthy(r.admin).await;
        let mut status = 0;
        for _ in 0..100 {
            status = http(r.bid, "POST", "/openrtb2/bid", &bid_body("u-3"))
                .await
                .unwrap()
                .0;
            if status == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(status, 200, "bids again");
    });
    drop(r);
    drop(redis);
    let _ = std::fs::remove_dir_all(&root);
}

async fn wait_ready(admin: SocketAddr, want: u16, containing: &str) -> String {
    let mut last = String::new();
    for _ in 0..200 {
        if let Some((status, body)) = http(admin, "GET", "/readyz", b"").await {
            last = String::from_utf8_lossy(&body).to_string();
            if status == want && last.contains(containing) {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("/readyz never answered {want} with {containing:?}; last: {last}");
}

/// Waits until `/readyz` says plainly ready: serving, Redis reachable.
async fn wait_healthy(admin: SocketAddr) {
    let mut last = String::new();
    for _ in 0..200 {
        if let Some((200, body)) = http(admin, "GET", "/readyz", b"").await {
            last = String::from_utf8_lossy(&body).to_string();
            if last == "ready\n" {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("/readyz never said plainly ready; last: {last}");
}

fn reconcile_cli(url: &str, journals: &[PathBuf], dry_run: bool) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bidder"));
    cmd.args(["ledger", "reconcile", "--state", url]);
    for j in journals {
        cmd.arg("--journal").arg(j);
    }
    if dry_run {
        cmd.arg("--dry-run");
    }
    let out = cmd.output().expect("reconcile runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn after_redis_loses_its_data_reconcile_rebuilds_it_from_the_journals() {
    let (root, mut redis) = cluster("reconcile");
    let url = redis.url();
    let config_dir = root.join("config");
    config(&config_dir);
    let journals: Vec<PathBuf> = (0..2).map(|i| root.join(format!("replica-{i}"))).collect();
    let replicas: Vec<Replica> = journals
        .iter()
        .map(|j| start_replica(&config_dir, j, &url))
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Twenty charges, won on one replica and billed on the other.
    let mut charged_nurls = Vec::new();
    runtime.block_on(async {
        for r in &replicas {
            wait_healthy(r.admin).await;
        }
        let mut n = 0;
        for i in 0..400 {
            if n == 20 {
                break;
            }
            let r = &replicas[i % 2];
            let Some((200, body)) =
                http(r.bid, "POST", "/openrtb2/bid", &bid_body(&format!("v-{i}"))).await
            else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let bid = &v["seatbid"][0]["bid"][0];
            let nurl = path_of(bid["nurl"].as_str().unwrap()).replace("${AUCTION_PRICE}", "1.00");
            let burl = path_of(bid["burl"].as_str().unwrap()).replace("${AUCTION_PRICE}", "1.00");
            assert_eq!(
                http(replicas[(i + 1) % 2].bid, "GET", &nurl, b"")
                    .await
                    .map(|r| r.0),
                Some(200)
            );
            assert_eq!(http(r.bid, "GET", &burl, b"").await.map(|r| r.0), Some(200));
            charged_nurls.push(nurl);
            n += 1;
        }
        assert_eq!(n, 20, "twenty bids won");
    });
    // A twenty-first bid whose notice comes only after the loss.
    let late_nurl = runtime.block_on(async {
        for i in 0..100 {
            if let Some((200, body)) = http(
                replicas[0].bid,
                "POST",
                "/openrtb2/bid",
                &bid_body(&format!("late-{i}")),
            )
            .await
            {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                let nurl = v["seatbid"][0]["bid"][0]["nurl"]
                    .as_str()
                    .unwrap()
                    .to_string();
                return path_of(&nurl).replace("${AUCTION_PRICE}", "1.00");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no bid");
    });
    // Commits reach Redis behind the acknowledgements.
    std::thread::sleep(Duration::from_millis(500));
    let (code, out) = reconcile_cli(&url, &journals, true);
    assert_eq!(
        code,
        Some(0),
        "Redis agrees with the journals before the loss: {out}"
    );
    assert!(out.contains("no differences"), "{out}");
    // A copy of a replica's journal files beside it puts each of its bids
    // in two journals: Redis counts them once, reports would count them
    // twice. The dry run says so; Redis itself has nothing to mend.
    let copy = root.join("copy-of-replica-0");
    std::fs::create_dir_all(&copy).unwrap();
    for entry in std::fs::read_dir(&journals[0]).unwrap().flatten() {
        let name = entry.file_name();
        let is_charges = name.to_string_lossy().ends_with(".journal")
            || name.to_string_lossy().ends_with(".checkpoint");
        if entry.file_type().unwrap().is_file() && is_charges {
            std::fs::copy(entry.path(), copy.join(&name)).unwrap();
        }
    }
    let mut with_copy = journals.clone();
    with_copy.push(copy.clone());
    let (code, out) = reconcile_cli(&url, &with_copy, true);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("twice in reports"), "{out}");
    assert!(out.contains("no differences in Redis"), "{out}");
    // The whole directory copied (`cp -a`, its replica.name too) is the
    // same replica twice, and would count its spend twice: refused, as the
    // same directory by a second path is.
    std::fs::copy(journals[0].join("replica.name"), copy.join("replica.name")).unwrap();
    let (code, out) = reconcile_cli(&url, &with_copy, true);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("a second journal of replica"), "{out}");
    let again = [
        journals[0].clone(),
        journals[1].clone(),
        journals[0].join("."),
    ];
    let (code, out) = reconcile_cli(&url, &again, true);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("a second journal of replica"), "{out}");
    let _ = std::fs::remove_dir_all(&copy);

    // Redis loses everything.
    redis.wipe().expect("redis starts empty");
    runtime.block_on(async {
        for r in &replicas {
            let why = wait_ready(r.admin, 200, "lost").await;
            assert!(why.contains("bidder ledger reconcile"), "{why}");
            let (status, _) = http(r.bid, "POST", "/openrtb2/bid", &bid_body("w-1"))
                .await
                .unwrap();
            assert_eq!(status, 204, "no budgeted bid while Redis has lost its data");
            // A notice not charged before cannot be told from a retried one
            // now: it waits for the rebuild (503, the exchange retries).
            let (status, _) = http(r.bid, "GET", &late_nurl, b"").await.unwrap();
            assert_eq!(status, 503, "no charge while Redis has lost its data");
        }
    });

    // One replica's journal left out (a path mistyped): refused, naming
    // it, rather than counters rebuilt without its spend.
    let (code, out) = reconcile_cli(&url, &journals[..1], false);
    let left_out = std::fs::read_to_string(journals[1].join("replica.name")).unwrap();
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!("{:?}", left_out.trim())) && out.contains("--without"),
        "{out}"
    );
    let (code, out) = reconcile_cli(&url, &journals, true);
    assert_eq!(
        code,
        Some(2),
        "a dry run that finds differences exits 2: {out}"
    );
    assert!(
        out.contains("lifetime: journals 0.020000 redis 0.000000"),
        "{out}"
    );
    assert!(out.contains("dry run: nothing written"), "{out}");
    let (code, out) = reconcile_cli(&url, &journals, false);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("20 bids charged"), "{out}");
    assert!(out.contains("replicas bid again"), "{out}");

    runtime.block_on(async {
        for r in &replicas {
            wait_healthy(r.admin).await;
        }
        // The charged bids are duplicates again, on either replica; the
        // waiting notice charges now.
        for nurl in &charged_nurls {
            for r in &replicas {
                let (status, _) = http(r.bid, "GET", nurl, b"").await.unwrap();
                assert_eq!(status, 200);
            }
        }
        let (status, _) = http(replicas[1].bid, "GET", &late_nurl, b"").await.unwrap();
        assert_eq!(status, 200, "charged after the rebuild");
    });
    std::thread::sleep(Duration::from_millis(500));
    let totals = shared::reconcile::read_journals(&journals).expect("journals");
    assert_eq!(
        totals.bids, 21,
        "nothing charged twice after the rebuild, the late one once"
    );
    let (code, out) = reconcile_cli(&url, &journals, true);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("no differences"), "{out}");
    drop(replicas);
    drop(redis);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn audience_data_given_to_one_replica_reaches_the_others() {
    let (root, redis) = cluster("audience");
    let config_dir = root.join("config");
    std::fs::create_dir_all(&config_dir).unwrap();
    let shop = [
        SHOP_HEAD,
        "audiences:
  - id: viewers
    kind: views
    products: [tent-1]
    lookback_days: 30
  - id: crm
    kind: list
    sources: [buyeruid]
",
        SHOP_ORDER,
        "      - id: li-viewers
        media: display
        cpm: 5.00
        budget: { daily: 50.00 }
        audiences: { any_of: [viewers] }
        creatives: [b300]
      - id: li-crm
        media: display
        cpm: 4.00
        budget: { daily: 50.00 }
        audiences: { any_of: [crm] }
        creatives: [b300]
",
    ]
    .concat();
    std::fs::write(config_dir.join("shop.yaml"), &shop).unwrap();
    // `b` runs the config before the list audience came (a rollout in
    // progress): a batch for it waits until `b`'s config has it.
    let older_dir = root.join("config-b");
    std::fs::create_dir_all(&older_dir).unwrap();
    let older = shop
        .replace("  - id: crm\n    kind: list\n    sources: [buyeruid]\n", "")
        .replace(
            "      - id: li-crm\n        media: display\n        cpm: 4.00\n        budget: { daily: 50.00 }\n        audiences: { any_of: [crm] }\n        creatives: [b300]\n",
            "",
        );
    assert!(!older.contains("crm"), "{older}");
    std::fs::write(older_dir.join("shop.yaml"), &older).unwrap();
    let a = start_replica(&config_dir, &root.join("a"), &redis.url());
    let b = start_replica(&older_dir, &root.join("b"), &redis.url());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The line item that bids on `b` for `user`, once it bids (3 s at most).
    let bids_on_b = |user: &'static str| runtime.block_on(line_item_bidding(b.bid, user));
    runtime.block_on(async {
        wait_healthy(a.admin).await;
        wait_healthy(b.admin).await;
    });
    let explained = runtime.block_on(async {
        http(b.admin, "POST", "/v1/explain", &bid_body("viewer-1"))
            .await
            .unwrap()
    });
    let explained = String::from_utf8_lossy(&explained.1).to_string();
    assert!(
        explained.contains("\"audience\""),
        "no audience yet on b: {explained}"
    );
    // A view uploaded to `a` makes `b` bid for that user.
    let now = config::Clock::now(&config::SystemClock);
    let view = format!(
        "{{\"user\":\"viewer-1\",\"event\":\"view\",\"product\":\"tent-1\",\"at\":\"{now}\"}}\n"
    );
    admin_post_ok(&runtime, a.admin, "/v1/audience-events", view.as_bytes());
    assert_eq!(bids_on_b("viewer-1").as_deref(), Some("li-viewers"));
    // A list member uploaded to `a` makes `b` bid for that id.
    admin_post_ok(
        &runtime,
        a.admin,
        "/v1/audiences/crm/members",
        b"{\"id\":\"crm-1\"}\n",
    );
    // Held on `b` (its config has no such list yet), applied once its
    // config catches up.
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(older_dir.join("shop.yaml"), shop).unwrap();
    admin_post_ok(&runtime, b.admin, "/v1/config/reload", b"");
    assert_eq!(bids_on_b("crm-1").as_deref(), Some("li-crm"));
    // `b` remembers how far it read: a restart does not read it all again.
    let offset = std::fs::read_to_string(root.join("b").join("audience.offset")).unwrap();
    assert!(offset.trim().contains('-'), "{offset}");
    drop(a);
    drop(b);
    drop(redis);
    let _ = std::fs::remove_dir_all(&root);
}

/// `/v1/explain` on one replica counts a frequency cap across all of them,
/// as the bid endpoint does when it confirms a capped bid: it said the
/// line item bid for a user another replica had just bid for up to the cap.
#[test]
fn explain_counts_a_frequency_cap_across_replicas() {
    let (root, redis) = cluster("explain-cap");
    let config_dir = root.join("config");
    std::fs::create_dir_all(&config_dir).unwrap();
    let shop = [
        SHOP_HEAD,
        SHOP_ORDER,
        "      - id: li-once
        media: display
        cpm: 5.00
        budget: { daily: 50.00 }
        frequency_cap: { impressions: 1, per_hours: 24 }
        creatives: [b300]
",
    ]
    .concat();
    std::fs::write(config_dir.join("shop.yaml"), &shop).unwrap();
    let a = start_replica(&config_dir, &root.join("a"), &redis.url());
    let b = start_replica(&config_dir, &root.join("b"), &redis.url());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        wait_healthy(a.admin).await;
        wait_healthy(b.admin).await;
    });
    let verdict_on_b = |user: &str| {
        let (status, body) = runtime
            .block_on(http(b.admin, "POST", "/v1/explain", &bid_body(user)))
            .expect("explain answered");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let v: serde_json::Value = serde_json::from_slice(&body).expect("explain JSON");
        common::verdict(&v, "li-once")
    };
    assert_eq!(
        verdict_on_b("once-1")["bids"],
        true,
        "nobody bid for once-1 yet"
    );
    assert_eq!(
        runtime
            .block_on(line_item_bidding(a.bid, "once-1"))
            .as_deref(),
        Some("li-once"),
        "a bids for once-1 (cap 1 a day)"
    );
    let v = verdict_on_b("once-1");
    assert_eq!(v["bids"], false, "{v}");
    assert_eq!(v["reason"], "frequency", "{v}");
    assert_eq!(verdict_on_b("once-2")["bids"], true, "another user");
    drop(a);
    drop(b);
    drop(redis);
    let _ = std::fs::remove_dir_all(&root);
}

/// The first bid a replica answers for `user` (3 s at most: a replica
/// bids once its state and leases are there).
async fn first_bid(addr: SocketAddr, user: &str) -> Option<serde_json::Value> {
    for _ in 0..150 {
        if let Some((200, body)) = http(addr, "POST", "/openrtb2/bid", &bid_body(user)).await {
            return Some(serde_json::from_slice(&body).expect("bid JSON"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// The line item of [`first_bid`], read from its win notice URL.
async fn line_item_bidding(addr: SocketAddr, user: &str) -> Option<String> {
    let v = first_bid(addr, user).await?;
    let nurl = v["seatbid"][0]["bid"][0]["nurl"].as_str()?;
    common::param(nurl, "li").map(str::to_string)
}

/// A report's JSON from a replica's admin port.
async fn report_of(r: &Replica, query: &str) -> serde_json::Value {
    let (status, body) = http(r.admin, "GET", &format!("/v1/reports?{query}"), b"")
        .await
        .expect("report answered");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).expect("report JSON")
}

/// A config directory under `root` with the shop and one line item of
/// display at 5.00 CPM, 50.00 a day.
fn one_line_item_shop(root: &Path) -> PathBuf {
    let config_dir = root.join("config");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(
        config_dir.join("shop.yaml"),
        [
            SHOP_HEAD,
            SHOP_ORDER,
            "      - id: li-1
        media: display
        cpm: 5.00
        budget: { daily: 50.00 }
        creatives: [b300]
",
        ]
        .concat(),
    )
    .unwrap();
    config_dir
}

#[test]
fn reports_and_attribution_cover_every_replica() {
    let (root, redis) = cluster("reports");
    let config_dir = one_line_item_shop(&root);
    let replicas = [
        start_replica(&config_dir, &root.join("a"), &redis.url()),
        start_replica(&config_dir, &root.join("b"), &redis.url()),
    ];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for r in &replicas {
            wait_healthy(r.admin).await;
        }
        // One shopper per replica: bid, impression shown (its pixel
        // reaching the other replica, before the win: it waits there until
        // Redis says the bid was charged), win at 2.00 CPM. The pixel is
        // sent to the bidding replica too, before the win and after it (a
        // retry through another pod): one impression all the same.
        for (i, user) in ["shopper-a", "shopper-b"].into_iter().enumerate() {
            let (r, other) = (&replicas[i], &replicas[1 - i]);
            let v = first_bid(r.bid, user).await.expect("a bid within 3 s");
            let bid = &v["seatbid"][0]["bid"][0];
            let nurl = path_of(bid["nurl"].as_str().unwrap()).replace("${AUCTION_PRICE}", "2.00");
            let (_, pixel) = common::banner_urls(bid["adm"].as_str().unwrap());
            for to in [other, r] {
                let (status, _) = http(to.bid, "GET", &path_of(&pixel), b"").await.unwrap();
                assert!(status < 300, "impression pixel: {status}");
            }
            assert_eq!(http(r.bid, "GET", &nurl, b"").await.map(|x| x.0), Some(200));
            if i == 0 {
                // The pixel again, now to each: each replica refuses it as
                // its own duplicate before any claim.
                for to in [r, other] {
                    let (status, _) = http(to.bid, "GET", &path_of(&pixel), b"").await.unwrap();
                    assert!(status < 300, "impression pixel: {status}");
                }
            }
        }
        // Each replica's report counts both replicas' wins, spend and
        // impressions once the copies arrived (a few seconds).
        let mut last = serde_json::Value::Null;
        for r in &replicas {
            let mut whole = false;
            for _ in 0..100 {
                last = report_of(r, "by=line_item&format=json").await;
                let t = &last["total"];
                if t["wins"] == 2 && t["impressions"] == 2 {
                    whole = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(whole, "a replica's report lacks the other's: {last:#}");
            assert_eq!(last["total"]["spend"]["micros"], 4_000, "{last:#}");
        }
        // Long enough for a second record of a pixel to have been written
        // (each replica settles once a second) and copied (about a second).
        tokio::time::sleep(Duration::from_secs(3)).await;
        for r in &replicas {
            let t = &report_of(r, "by=line_item&format=json").await["total"];
            assert_eq!(t["impressions"], 2, "an impression counted twice: {t:#}");
        }
        // A purchase uploaded to `b` of the shopper `a` showed the ad to is
        // attributed there, and both reports count it once.
        let now = config::Clock::now(&config::SystemClock);
        let purchase = format!(
            "{{\"user\":\"shopper-a\",\"event\":\"purchase\",\"product\":\"tent-1\",\"at\":\"{now}\",\
             \"amount\":\"80.00\",\"currency\":\"USD\",\"order_id\":\"P1\"}}\n"
        );
        let (status, body) = http(replicas[1].admin, "POST", "/v1/audience-events", purchase.as_bytes())
            .await
            .unwrap();
        let body = String::from_utf8_lossy(&body).to_string();
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"attributed\":1"), "{body}");
        // Sent again to `a`: a duplicate, not a second sale.
        let mut again = String::new();
        for _ in 0..100 {
            let (_, body) = http(replicas[0].admin, "POST", "/v1/audience-events", purchase.as_bytes())
                .await
                .unwrap();
            again = String::from_utf8_lossy(&body).to_string();
            if again.contains("\"duplicate\":1") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(again.contains("\"duplicate\":1"), "{again}");
        for r in &replicas {
            let mut rep = serde_json::Value::Null;
            for _ in 0..100 {
                rep = report_of(r, "by=line_item&format=json").await;
                if rep["total"]["purchases"] == 1 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert_eq!(rep["total"]["purchases"], 1, "{rep:#}");
            assert_eq!(rep["total"]["sales"]["micros"], 80_000_000, "{rep:#}");
            assert_eq!(rep["total"]["wins"], 2, "{rep:#}");
        }
    });
    // Copies are byte for byte what the other replica wrote.
    let name = |d: &str| std::fs::read_to_string(root.join(d).join("replica.name")).unwrap();
    let (a_name, b_name) = (name("a"), name("b"));
    let copy = root
        .join("b")
        .join("peers")
        .join(a_name.trim())
        .join("events");
    let mut copied = 0;
    for e in std::fs::read_dir(root.join("a").join("events"))
        .unwrap()
        .flatten()
    {
        let n = e.file_name().to_string_lossy().to_string();
        if n.ends_with(".events") {
            let mine = std::fs::read(e.path()).unwrap();
            let theirs = std::fs::read(copy.join(&n)).unwrap_or_default();
            assert!(
                mine.starts_with(&theirs) && !theirs.is_empty(),
                "{n}: the copy on b is not a prefix of a's file"
            );
            copied += 1;
        }
    }
    assert!(copied > 0);
    assert!(root.join("a").join("peers").join(b_name.trim()).is_dir());
    drop(replicas);
    drop(redis);
    let _ = std::fs::remove_dir_all(&root);
}

/// A list batch held on a replica whose config lacks the list (a rollout
/// in progress) survives that replica's restart before its config has the
/// list (a rollout that restarts pods: the new pod has the new config):
/// the offset it remembers stays before the batch.
#[test]
fn a_held_list_batch_survives_a_restart() {
    let (root, redis) = cluster("held");
    let shop = [
        SHOP_HEAD,
        "audiences:
  - id: crm
    kind: list
    sources: [buyeruid]
",
        SHOP_ORDER,
        "      - id: li-crm
        media: display
        cpm: 4.00
        budget: { daily: 50.00 }
        audiences: { any_of: [crm] }
        creatives: [b300]
",
    ]
    .concat();
    let older = [
        SHOP_HEAD,
        SHOP_ORDER,
        "      - id: li-other
        media: display
        cpm: 4.00
        budget: { daily: 50.00 }
        creatives: [b300]
",
    ]
    .concat();
    let new_dir = root.join("config");
    let old_dir = root.join("config-b");
    std::fs::create_dir_all(&new_dir).unwrap();
    std::fs::create_dir_all(&old_dir).unwrap();
    std::fs::write(new_dir.join("shop.yaml"), &shop).unwrap();
    std::fs::write(old_dir.join("shop.yaml"), &older).unwrap();
    let a = start_replica(&new_dir, &root.join("a"), &redis.url());
    let b = start_replica(&old_dir, &root.join("b"), &redis.url());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        wait_healthy(a.admin).await;
        wait_healthy(b.admin).await;
    });
    admin_post_ok(
        &runtime,
        a.admin,
        "/v1/audiences/crm/members",
        b"{\"id\":\"crm-1\"}\n",
    );
    // `b` reads it (and holds it), and remembers how far it read.
    let offset = root.join("b").join("audience.offset");
    let start = Instant::now();
    while !offset.exists() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    // The rollout restarts `b` with the new config.
    drop(b);
    let b = start_replica(&new_dir, &root.join("b"), &redis.url());
    runtime.block_on(wait_healthy(b.admin));
    let bid = runtime.block_on(line_item_bidding(b.bid, "crm-1"));
    assert_eq!(
        bid.as_deref(),
        Some("li-crm"),
        "the batch held before the restart never reached b's list"
    );
    drop(a);
    drop(b);
    drop(redis);
    let _ = std::fs::remove_dir_all(&root);
}

/// `--url-signatures auto` (the default) with a replica of an earlier
/// version sharing Redis, as in a rolling deploy from it: notice URLs are
/// signed per URL, which it reads, until it has been gone for the soak
/// (1 s here); then per bid. Both settle here.
#[test]
fn auto_signs_per_url_while_an_earlier_version_shares_redis() {
    let (root, redis) = cluster("auto-signatures");
    let config_dir = root.join("config");
    config(&config_dir);
    // What an earlier version's heartbeat writes, and nothing else: its
    // time among the replicas (a minute ahead, so that it stays listed
    // for the test).
    let wall_ms = config::Clock::now(&config::SystemClock).as_millis();
    let ahead = (wall_ms + 60_000).to_string();
    redis
        .command(&["ZADD", "bidder:replicas", &ahead, "earlier"])
        .unwrap();
    let r = start_replica_with(
        &config_dir,
        &root.join("replica"),
        &redis.url(),
        &[("BIDDER_URL_SIGNATURES_SOAK_SECS", "1")],
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bid_and_win = |user: &str| -> String {
        runtime.block_on(async {
            let v = first_bid(r.bid, user).await.expect("a bid");
            let nurl = v["seatbid"][0]["bid"][0]["nurl"]
                .as_str()
                .unwrap()
                .to_owned();
            let path = path_of(&nurl).replace("${AUCTION_PRICE}", "1.00");
            assert_eq!(
                http(r.bid, "GET", &path, b"").await.map(|a| a.0),
                Some(200),
                "the win is charged"
            );
            nurl
        })
    };
    let gauge = || -> String {
        runtime.block_on(async {
            let (_, m) = http(r.admin, "GET", "/metrics", b"").await.unwrap();
            String::from_utf8_lossy(&m)
                .lines()
                .find(|l| l.starts_with("bidder_url_signatures_per_bid "))
                .unwrap_or_default()
                .to_owned()
        })
    };
    runtime.block_on(wait_healthy(r.admin));
    // Past the soak (1 s) and then some: the earlier version still counts.
    for _ in 0..25 {
        assert_eq!(gauge(), "bidder_url_signatures_per_bid 0");
        std::thread::sleep(Duration::from_millis(100));
    }
    let before = bid_and_win("u-auto-1");
    assert!(common::signed_per_url(&before, SECRET, "win"), "{before}");
    assert_eq!(gauge(), "bidder_url_signatures_per_bid 0");

    // The earlier version is gone (the others no longer list it).
    redis
        .command(&["ZREM", "bidder:replicas", "earlier"])
        .unwrap();
    let t = Instant::now();
    while gauge() != "bidder_url_signatures_per_bid 1" {
        assert!(t.elapsed() < Duration::from_secs(10), "{}", gauge());
        std::thread::sleep(Duration::from_millis(50));
    }
    let after = bid_and_win("u-auto-2");
    assert!(!common::signed_per_url(&after, SECRET, "win"), "{after}");
}

/// A replica starting on a config that changes a line item's budget type
/// is refused, though the line item spent on another replica only: its
/// own journal knows nothing of it, and the ledger's cache of Redis is
/// empty at start, so the type is read from Redis then.
#[test]
fn a_start_refuses_a_budget_type_changed_after_spending_on_another_replica() {
    let (root, redis) = cluster("kinds");
    let config_dir = |name: &str, budget: &str| {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let li = format!(
            "      - id: li-kind\n        media: display\n        cpm: 5.00\n        \
             budget: {{ {budget} }}\n        creatives: [b300]\n"
        );
        std::fs::write(dir.join("shop.yaml"), [SHOP_HEAD, SHOP_ORDER, &li].concat()).unwrap();
        dir
    };
    let daily = config_dir("daily", "daily: 50.00");
    let a = start_replica(&daily, &root.join("a"), &redis.url());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        wait_healthy(a.admin).await;
        let v = first_bid(a.bid, "kind-1").await.expect("a bids");
        let nurl = path_of(v["seatbid"][0]["bid"][0]["nurl"].as_str().unwrap())
            .replace("${AUCTION_PRICE}", "1.00");
        assert_eq!(http(a.bid, "GET", &nurl, b"").await.map(|r| r.0), Some(200));
    });
    // The charge is written to Redis behind its answer.
    let kind = || {
        redis
            .hget("bidder:s:li:li-kind", "kind")
            .ok()
            .flatten()
            .unwrap_or_default()
    };
    let start = Instant::now();
    while kind() != "daily" && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(kind(), "daily", "the charge reached Redis");
    drop(a);
    let lifetime = config_dir("lifetime", "lifetime: 50.00");
    // validate, given the Redis, finds it before a rollout does: from
    // another replica's empty journal directory alone it cannot.
    let other = root.join("b-journal");
    std::fs::create_dir_all(&other).unwrap();
    let validate_with = |redis: Option<&str>, prefix: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bidder"));
        cmd.args(["validate", "--config"])
            .arg(&lifetime)
            .arg("--state")
            .arg(&other);
        if let Some(url) = redis {
            cmd.args(["--redis", url]);
        }
        if let Some(p) = prefix {
            cmd.args(["--redis-prefix", p]);
        }
        let out = cmd.output().expect("validate runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let validate = |redis: Option<&str>| {
        let (code, out, _) = validate_with(redis, None);
        (code, out)
    };
    // A prefix no replica used: valid, and said to have found nothing
    // (operator probe: a mistyped prefix passed without a word).
    let (code, _, err) = validate_with(Some(&redis.url()), Some("other:"));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("no bidder state under the prefix \"other:\"")
            && err.contains("--redis-prefix"),
        "{err}"
    );
    assert_eq!(validate(None).0, Some(0), "nothing spent in that directory");
    let replicas = redis.zmembers("bidder:replicas").unwrap();
    let (code, out) = validate(Some(&redis.url()));
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("the budget type cannot change once set"),
        "{out}"
    );
    assert!(out.contains("shop.yaml:"), "file:line:column: {out}");
    assert_eq!(
        redis.zmembers("bidder:replicas").unwrap(),
        replicas,
        "validate only reads: no replica registered"
    );
    let mut child = replica_command(&lifetime, &root.join("b"), &redis.url())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bidder runs");
    // Refused, it exits at once; served, it would run on.
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.is_some_and(|s| !s.success()), "served: {err}");
    assert!(
        err.contains("the budget type cannot change once set"),
        "{err}"
    );
    // The same config as before starts.
    let b = start_replica(&daily, &root.join("b"), &redis.url());
    runtime.block_on(wait_healthy(b.admin));
    drop(b);
    // A replica that started without the line item, then reloads a config
    // that brings it back under the other type, refuses the reload too:
    // its cache of Redis never saw the line item, and the reload reads
    // its type (before, a cache miss was "never spent", and the change
    // passed a reload that a restart then refused).
    let other = config_dir("other", "daily: 50.00");
    let text = std::fs::read_to_string(other.join("shop.yaml")).unwrap();
    std::fs::write(other.join("shop.yaml"), text.replace("li-kind", "li-other")).unwrap();
    let b = start_replica(&other, &root.join("c"), &redis.url());
    runtime.block_on(wait_healthy(b.admin));
    std::fs::copy(lifetime.join("shop.yaml"), other.join("shop.yaml")).unwrap();
    let reload = runtime.block_on(http(b.admin, "POST", "/v1/config/reload", b""));
    let (status, body) = reload.expect("the reload answers");
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("the budget type cannot change once set"),
        "{body}"
    );
    drop(b);
    drop(redis);
    let _ = std::fs::remove_dir_all(&root);
}

/// With Redis, a click on a charged bid is claimed and on disk before the
/// browser is redirected (a replica killed right after still has it), and
/// the same click sent to another replica counts nowhere again.
#[test]
fn a_click_is_on_disk_before_its_redirect_and_counts_once_across_replicas() {
    let (root, redis) = cluster("click-once");
    let config_dir = one_line_item_shop(&root);
    let mut a = start_replica(&config_dir, &root.join("a"), &redis.url());
    let b = start_replica(&config_dir, &root.join("b"), &redis.url());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let click = runtime.block_on(async {
        wait_healthy(a.admin).await;
        wait_healthy(b.admin).await;
        let v = first_bid(a.bid, "shopper-a")
            .await
            .expect("a bid within 3 s");
        let bid = &v["seatbid"][0]["bid"][0];
        let nurl = path_of(bid["nurl"].as_str().unwrap()).replace("${AUCTION_PRICE}", "2.00");
        let (click, _) = common::banner_urls(bid["adm"].as_str().unwrap());
        assert_eq!(http(a.bid, "GET", &nurl, b"").await.map(|x| x.0), Some(200));
        let (status, _) = http(a.bid, "GET", &path_of(&click), b"").await.unwrap();
        assert_eq!(status, 302, "the click redirects");
        click
    });
    // Killed as soon as the browser went on: the click was written first.
    a.child.kill().unwrap();
    let _ = a.child.wait();
    let a = start_replica(&config_dir, &root.join("a"), &redis.url());
    runtime.block_on(async {
        wait_healthy(a.admin).await;
        let mut last = serde_json::Value::Null;
        for _ in 0..30 {
            last = report_of(&a, "by=line_item&format=json").await;
            if last["total"]["clicks"] == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(last["total"]["clicks"], 1, "the click was lost: {last:#}");
        // The same click through the other replica: claimed already.
        let (status, _) = http(b.bid, "GET", &path_of(&click), b"").await.unwrap();
        assert_eq!(status, 302, "the click redirects");
        for r in [&a, &b] {
            let mut last = serde_json::Value::Null;
            for _ in 0..100 {
                last = report_of(r, "by=line_item&format=json").await;
                if last["total"]["clicks"] == 1 && last["total"]["wins"] == 1 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert_eq!(last["total"]["clicks"], 1, "{last:#}");
        }
        // Settled (a second) and copied (about another) by now: still one.
        tokio::time::sleep(Duration::from_secs(3)).await;
        for r in [&a, &b] {
            let t = &report_of(r, "by=line_item&format=json").await["total"];
            assert_eq!(t["clicks"], 1, "a click counted twice: {t:#}");
        }
    });
    drop(a);
    drop(b);
    drop(redis);
    let _ = std::fs::remove_dir_all(&root);
}

//! A bidder on loopback for tests, and a minimal HTTP/1.1 client: enough to
//! send exactly the bytes an exchange would, including broken ones.

#![allow(dead_code)]
// Shared by the test binaries of this crate, not a public API.
#![allow(unreachable_pub)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::sync::atomic::{AtomicBool, Ordering};

use bidder::{App, Settings};
use config::{Clock, ManualClock, Timestamp};
use ledger::journal::{FileStorage, Storage};

/// The charge journal's disk, full while `full` is set.
struct FullDisk {
    inner: FileStorage,
    full: Arc<AtomicBool>,
}

impl FullDisk {
    fn check(&self) -> std::io::Result<()> {
        if self.full.load(Ordering::SeqCst) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "No space left on device",
            ));
        }
        Ok(())
    }
}

/// The charge journal's disk, whose every write panics while `crash` is
/// set.
struct CrashingDisk {
    inner: FileStorage,
    crash: Arc<AtomicBool>,
}

impl CrashingDisk {
    fn check(&self) {
        assert!(
            !self.crash.load(Ordering::SeqCst),
            "the journal's writer crashes, as the test asked"
        );
    }
}

impl Storage for CrashingDisk {
    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.check();
        self.inner.append(bytes)
    }

    fn sync(&mut self) -> std::io::Result<()> {
        self.check();
        self.inner.sync()
    }

    fn truncate(&mut self, len: u64) -> std::io::Result<()> {
        self.check();
        self.inner.truncate(len)
    }

    fn compact(&mut self, checkpoint: &[u8], header: &[u8]) -> std::io::Result<bool> {
        self.check();
        self.inner.compact(checkpoint, header)
    }

    fn probe(&mut self) -> std::io::Result<()> {
        self.check();
        self.inner.probe()
    }

    fn room(&mut self, min_free: u64) -> std::io::Result<()> {
        self.inner.room(min_free)
    }
}

/// The settings of a server with a state directory: the admin token, and
/// a notice secret kept across restarts, as `serve` keeps it (shoppers'
/// keys in the event journal are made with it).
fn state_settings() -> Settings {
    Settings {
        admin_token: Some(ADMIN_TOKEN.into()),
        notice_secret: Some("test-notice-secret-0123456789abcdef".into()),
        ..Settings::default()
    }
}

impl Storage for FullDisk {
    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.check()?;
        self.inner.append(bytes)
    }

    fn sync(&mut self) -> std::io::Result<()> {
        self.check()?;
        self.inner.sync()
    }

    fn truncate(&mut self, len: u64) -> std::io::Result<()> {
        self.check()?;
        self.inner.truncate(len)
    }

    fn compact(&mut self, checkpoint: &[u8], header: &[u8]) -> std::io::Result<bool> {
        self.check()?;
        self.inner.compact(checkpoint, header)
    }

    fn probe(&mut self) -> std::io::Result<()> {
        self.check()?;
        self.inner.probe()
    }

    fn room(&mut self, min_free: u64) -> std::io::Result<()> {
        self.check()?;
        self.inner.room(min_free)
    }
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A fresh directory for one test, named after it and this process.
pub fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bidder-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// A one-advertiser config for tests: `shop`, one 300x250 creative `b300`,
/// the `audiences` block given (YAML, may be empty), and order `o1` flying
/// 2026-11-01..2026-12-31 with `order_budget` and `line_items` (YAML lines
/// indented for `line_items:`).
pub fn shop_yaml(audiences: &str, order_budget: &str, line_items: &str) -> String {
    format!(
        r#"advertiser:
  id: shop
  name: Shop
  domains: [shop.example]
  categories: [IAB22]
{audiences}creatives:
  - id: b300
    format: display
    size: 300x250
    image_url: https://cdn.shop.example/b.png
    click_url: https://shop.example/
orders:
  - id: o1
    service: self_service
    budget: {order_budget}
    flight: {{ start: 2026-11-01, end: 2026-12-31 }}
    line_items:
{line_items}"#
    )
}

/// A server on `yaml` alone (no audience data), its config in a fresh
/// directory named after the test.
pub fn shop_server(name: &str, yaml: &str) -> Server {
    let dir = tempdir(name);
    std::fs::write(dir.join("shop.yaml"), yaml).expect("write config");
    Server::start(&dir, None)
}

/// The admin token test servers are started with.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef";

/// POSTs to an admin endpoint with the admin token.
pub fn admin(addr: SocketAddr, path: &str, body: &[u8]) -> Reply {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    request(addr, "POST", path, &[("Authorization", &auth)], body)
}

pub fn ts(s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(s).expect("test time")
}

pub struct Server {
    pub app: Arc<App>,
    pub clock: Arc<ManualClock>,
    pub bid: SocketAddr,
    pub admin: SocketAddr,
    runtime: tokio::runtime::Runtime,
    shutdown: tokio::sync::watch::Sender<bool>,
}

impl Server {
    /// The example config and audience data, at 2026-11-24 noon UTC (the
    /// date the example data's README describes).
    pub fn example() -> Server {
        Server::start(
            &repo().join("examples/config"),
            Some(&repo().join("examples/data")),
        )
    }

    pub fn start(config_dir: &Path, data: Option<&Path>) -> Server {
        Server::start_with(config_dir, data, Settings::default())
    }

    /// With `settings`, and the admin token [`ADMIN_TOKEN`] unless they
    /// name one.
    pub fn start_with(config_dir: &Path, data: Option<&Path>, mut settings: Settings) -> Server {
        if settings.admin_token.is_none() {
            settings.admin_token = Some(ADMIN_TOKEN.into());
        }
        Server::start_exact(config_dir, data, settings)
    }

    /// With exactly `settings` (no admin token unless they name one).
    pub fn start_exact(config_dir: &Path, data: Option<&Path>, settings: Settings) -> Server {
        Server::start_full(config_dir, data, settings, None, ts("2026-11-24T12:00:00Z"))
    }

    /// With the admin token, journals (charges and events) in `state`
    /// compacted after `compact_after` charges, and the clock at `now`.
    pub fn start_in(
        config_dir: &Path,
        state: &Path,
        compact_after: usize,
        now: Timestamp,
    ) -> Server {
        let settings = state_settings();
        Server::start_full(
            config_dir,
            None,
            settings,
            Some((state, compact_after)),
            now,
        )
    }

    /// [`Server::start_in`] with its settings changed by `change` (the
    /// notice secret stays the same across restarts).
    pub fn start_in_with(
        config_dir: &Path,
        state: &Path,
        now: Timestamp,
        change: impl FnOnce(&mut Settings),
    ) -> Server {
        let mut settings = state_settings();
        change(&mut settings);
        Server::start_full(config_dir, None, settings, Some((state, 1_000_000)), now)
    }

    /// [`Server::start_in`] on a disk that is full while `full` is set:
    /// every write, fsync, cut and probe of the charge journal fails as a
    /// full disk fails them.
    pub fn start_on_disk(
        config_dir: &Path,
        state: &Path,
        now: Timestamp,
        full: Arc<AtomicBool>,
    ) -> Server {
        let settings = state_settings();
        Server::start_wrapped(
            config_dir,
            None,
            settings,
            Some((state, 1_000_000)),
            now,
            &move |inner| {
                Box::new(FullDisk {
                    inner,
                    full: full.clone(),
                })
            },
        )
    }

    /// [`Server::start_in`] on a disk whose writes make the charge
    /// journal's writer thread panic once `crash` is set: a bug, not a
    /// fault the writer recovers from.
    pub fn start_on_crashing_disk(
        config_dir: &Path,
        state: &Path,
        now: Timestamp,
        crash: Arc<AtomicBool>,
    ) -> Server {
        Server::start_wrapped(
            config_dir,
            None,
            state_settings(),
            Some((state, 1_000_000)),
            now,
            &move |inner| {
                Box::new(CrashingDisk {
                    inner,
                    crash: crash.clone(),
                })
            },
        )
    }

    fn start_full(
        config_dir: &Path,
        data: Option<&Path>,
        settings: Settings,
        state: Option<(&Path, usize)>,
        now: Timestamp,
    ) -> Server {
        Server::start_wrapped(config_dir, data, settings, state, now, &|s| Box::new(s))
    }

    fn start_wrapped(
        config_dir: &Path,
        data: Option<&Path>,
        settings: Settings,
        state: Option<(&Path, usize)>,
        now: Timestamp,
        wrap: &dyn Fn(FileStorage) -> Box<dyn Storage>,
    ) -> Server {
        let clock = Arc::new(ManualClock::new(now));
        let store = match data {
            Some(d) => audiences::Store::load_dir(d, clock.now()).expect("audience data"),
            None => audiences::Store::new(),
        };
        let config = config::load_dir(config_dir).expect("valid config");
        bidder::app::load_lists(&store, &config, data, state.map(|(dir, _)| dir))
            .expect("list members");
        let app = App::new(
            settings.clone(),
            clock.clone(),
            store,
            Some(config_dir.to_path_buf()),
        );
        let app = match state {
            None => app,
            Some((dir, compact_after)) => {
                let options = || ledger::journal::JournalOptions {
                    compact_after,
                    ..Default::default()
                };
                let mut result = app.with_journal_storage(dir, options(), wrap);
                // A server of the same state directory just dropped may
                // still be letting go of its lock.
                for _ in 0..100 {
                    if result.is_ok() {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    // The first store went with the first App: load again.
                    let store = match data {
                        Some(d) => {
                            audiences::Store::load_dir(d, clock.now()).expect("audience data")
                        }
                        None => audiences::Store::new(),
                    };
                    bidder::app::load_lists(&store, &config, data, Some(dir))
                        .expect("list members");
                    let again = App::new(
                        settings.clone(),
                        clock.clone(),
                        store,
                        Some(config_dir.to_path_buf()),
                    );
                    result = again.with_journal_storage(dir, options(), wrap);
                }
                result
                    .unwrap_or_else(|e| panic!("opening {}: {e}", dir.display()))
                    .0
            }
        };
        let app = Arc::new(app);
        app.install(config);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let (bid, admin, shutdown) = runtime.block_on(async {
            let b = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let a = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let running = bidder::server::start(app.clone(), b, a).expect("start");
            (running.bid_addr, running.admin_addr, running.shutdown)
        });
        Server {
            app,
            clock,
            bid,
            admin,
            runtime,
            shutdown,
        }
    }

    pub fn bid(&self, body: &str) -> Reply {
        post(self.bid, "/openrtb2/bid", &[], body.as_bytes())
    }

    /// Calls a notice URL from a bid (nurl/burl) with the macro substituted.
    pub fn notice(&self, url: &str, price: &str) -> Reply {
        let path = url
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
            .expect("absolute URL");
        request(
            self.bid,
            "GET",
            &path.replace("${AUCTION_PRICE}", price),
            &[],
            b"",
        )
    }

    /// Waits until every event so far is in the event journal: dropping a
    /// server does not wait for its writer, so a report read from the
    /// state directory right after could miss the last ones.
    pub fn flush_events(&self) {
        self.runtime.block_on(self.app.flush_events());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }
}

pub fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    request(addr, "POST", path, headers, body)
}

pub fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, &[], b"")
}

pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    let mut has_length = false;
    for (k, v) in headers {
        has_length |=
            k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding");
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !has_length && (method == "POST" || !body.is_empty()) {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    raw(addr, &[head.as_bytes(), body].concat())
}

/// Sends raw bytes and reads the reply until the server closes.
pub fn raw(addr: SocketAddr, bytes: &[u8]) -> Reply {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .ok();
    // The server may answer (413) and close before reading everything.
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    parse_reply(&out)
}

fn parse_reply(out: &[u8]) -> Reply {
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {:?}", String::from_utf8_lossy(out)));
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = out[split + 4..].to_vec();
    if let Some(len) = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        body.truncate(len);
    }
    Reply {
        status,
        headers,
        body,
    }
}

/// A banner request in the shape exchanges send; tests edit the JSON.
pub fn banner_request() -> serde_json::Value {
    serde_json::json!({
        "id": "req-1",
        "at": 1,
        "tmax": 500,
        "cur": ["USD"],
        "imp": [{
            "id": "1",
            "bidfloor": 0.5,
            "bidfloorcur": "USD",
            "banner": { "format": [{ "w": 300, "h": 250 }], "w": 300, "h": 250 }
        }],
        "site": {
            "id": "s1",
            "domain": "news.example",
            "page": "https://news.example/article",
            "publisher": { "id": "p1" }
        },
        "device": { "devicetype": 2, "geo": { "country": "USA" }, "ua": "Mozilla/5.0" },
        "user": { "buyeruid": "u-1001" }
    })
}

/// A video slot (5 to 30 s, mp4, 640x360, in-stream) with a 300x250
/// companion slot, naming no protocol, in the banner request's https page.
pub fn video_request() -> serde_json::Value {
    let mut r = banner_request();
    r["imp"][0] = serde_json::json!({
        "id": "1",
        "bidfloor": 1.0,
        "video": {
            "mimes": ["video/mp4"],
            "minduration": 5,
            "maxduration": 30,
            "w": 640,
            "h": 360,
            "plcmt": 1,
            "linearity": 1,
            "companionad": [{ "id": "cb1", "w": 300, "h": 250 }]
        }
    });
    r
}

/// `POST /v1/explain` of `req` with the admin token; it must answer 200.
pub fn explain(s: &Server, req: &serde_json::Value) -> serde_json::Value {
    let r = admin(s.admin, "/v1/explain", req.to_string().as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// The verdict on line item `li` in an explain answer.
pub fn verdict(explained: &serde_json::Value, li: &str) -> serde_json::Value {
    explained["line_items"]
        .as_array()
        .and_then(|all| all.iter().find(|x| x["line_item"] == li))
        .cloned()
        .unwrap_or_else(|| panic!("no {li} in {explained}"))
}

/// Validates `xml` with the XSD of the VAST version it declares.
pub fn assert_valid_vast(xml: &str) {
    let version = xml
        .split("<VAST")
        .nth(1)
        .and_then(|r| r.split("version=\"").nth(1))
        .and_then(|r| r.split('"').next())
        .expect("VAST version attribute");
    let xsd = match version {
        "2.0" => "vast_2.0.1.xsd",
        "3.0" => "vast3_draft.xsd",
        "4.0" => "vast4.xsd",
        "4.1" => "vast_4.1.xsd",
        "4.2" => "vast_4.2.xsd",
        v => panic!("unexpected VAST version {v}"),
    };
    let mut child = std::process::Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(repo().join("testdata/vast/xsd").join(xsd))
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("xmllint is needed: apt-get install libxml2-utils (scripts/test.sh does)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(xml.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "VAST {version} does not validate:\n{}\n{xml}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Advertiser `tube`: a 15 s video creative with a 300x250 companion, and
/// video line item `vid`.
pub const TUBE: &str = include_str!("../../../testdata/config/video/tube.yaml");

/// A native product ad with every part, as a `creatives:` list entry.
pub const NATIVE_AD: &str = r#"  - id: tent-ad
    format: native
    title: Two-person tent
    description: Light, quick to pitch, dry in a storm.
    sponsored_by: Outfitter
    image: { url: https://cdn.shop.example/tent.jpg, w: 1200, h: 627 }
    icon: { url: https://cdn.shop.example/logo.png, w: 128, h: 128 }
    cta: Shop now
    price: $249.00
    click_url: https://shop.example/tent
"#;

/// The one bid of a request that must get one.
pub fn only_bid(s: &Server, body: &serde_json::Value) -> serde_json::Value {
    let r = s.bid(&body.to_string());
    assert_eq!(r.status, 200, "expected a bid: {}", r.text());
    let v = r.json();
    let bids = v["seatbid"][0]["bid"].as_array().expect("bids");
    assert_eq!(bids.len(), 1, "{v}");
    bids[0].clone()
}

/// The first value of `name` in a URL's query.
pub fn param<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    let query = url.split_once('?')?.1;
    query
        .split('&')
        .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
}

/// The path and query of an absolute URL.
pub fn path_of(url: &str) -> &str {
    let rest = url.split_once("://").expect("absolute URL").1;
    &rest[rest.find('/').expect("a path")..]
}

/// The banner adm's link (`href`) and impression pixel (the last
/// `<img src>`), attribute-unescaped.
pub fn banner_urls(adm: &str) -> (String, String) {
    let attr = |from: &str, name: &str| -> String {
        let v = from
            .split_once(&format!("{name}=\""))
            .and_then(|(_, r)| r.split_once('"'))
            .unwrap_or_else(|| panic!("no {name} in {adm}"))
            .0;
        v.replace("&amp;", "&")
    };
    let href = attr(adm, "href");
    let pixel = attr(adm.rsplit_once("<img").expect("images").1, "src");
    (href, pixel)
}

/// Advertiser `shop` selling `tent-1` and `tent-2` (attributed 14 days
/// after a click, 1 day after an impression), with order `o1` and its one
/// line item `tents`: display at 4.00 CPM, 100.00 a day, on pages about
/// tents (keyword `broad:tent`), creative `b300`.
pub const SHOP: &str = "advertiser:
  id: shop
  name: Shop
  domains: [shop.example]
  categories: [IAB22]
  products: [tent-1, tent-2]
  attribution: { click_days: 14, view_days: 1 }
creatives:
  - id: b300
    format: display
    size: 300x250
    image_url: https://cdn.shop.example/b.png
    click_url: https://shop.example/tent
orders:
  - id: o1
    service: self_service
    budget: 1000.00
    flight: { start: 2026-11-01, end: 2026-12-31 }
    line_items:
      - id: tents
        media: display
        cpm: 4.00
        budget: { daily: 100.00 }
        targeting:
          keywords: { broad: [tent] }
        creatives: [b300]
";

/// [`SHOP`] with a contextual audience: `tent-pages` (a page about
/// `tent-1`) after `tent-viewers` (which needs user data, and has none
/// here). `pages` (5.00 CPM) buys either; `plain` (4.00 CPM) targets no
/// audience.
pub const AUDIENCE_SHOP: &str = "advertiser:
  id: shop
  name: Shop
  domains: [shop.example]
  categories: [IAB22]
  products: [tent-1, tent-2]
  attribution: { click_days: 14, view_days: 1 }
audiences:
  - id: tent-viewers
    kind: views
    products: [tent-1]
  - id: tent-pages
    kind: products
    products: [tent-1]
creatives:
  - id: b300
    format: display
    size: 300x250
    image_url: https://cdn.shop.example/b.png
    click_url: https://shop.example/tent
orders:
  - id: o1
    service: self_service
    budget: 1000.00
    flight: { start: 2026-11-01, end: 2026-12-31 }
    line_items:
      - id: pages
        media: display
        cpm: 5.00
        budget: { daily: 100.00 }
        audiences: { any_of: [tent-viewers, tent-pages] }
        creatives: [b300]
      - id: plain
        media: display
        cpm: 4.00
        budget: { daily: 100.00 }
        creatives: [b300]
";

/// A fresh directory named after the test, holding [`SHOP`] alone.
pub fn shop_config_dir(name: &str) -> PathBuf {
    let dir = tempdir(name);
    std::fs::write(dir.join("shop.yaml"), SHOP).expect("config");
    dir
}

/// A bid of [`SHOP`] for `user` on a page about tents; its win charged at
/// `price` CPM; its impression pixel called, and its link when `click`.
pub fn won(s: &Server, user: &str, price: &str, click: bool) {
    let mut r = banner_request();
    r["user"]["buyeruid"] = serde_json::json!(user);
    r["site"]["keywords"] = serde_json::json!("camping,tent");
    let bid = only_bid(s, &r);
    assert_eq!(s.notice(bid["nurl"].as_str().unwrap(), price).status, 200);
    let (click_url, pixel) = banner_urls(bid["adm"].as_str().unwrap());
    assert_eq!(get(s.bid, path_of(&pixel)).status, 200);
    if click {
        assert_eq!(get(s.bid, path_of(&click_url)).status, 302);
    }
}

/// `POST /v1/audience-events` of `lines` (JSON lines) with the admin token.
pub fn upload(s: &Server, lines: &[serde_json::Value]) -> Reply {
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    admin(s.admin, "/v1/audience-events", body.as_bytes())
}

/// A known day of [`SHOP`] on a server whose clock reads
/// 2026-11-24T12:00Z, its events flushed at the end; the clock is left at
/// 13:00. Three bids won, at 2.50, 3.00 and 2.50 CPM (spend 0.008), each
/// impression tracked; one click (u-1); a purchase of 100.00 of `tent-1`
/// by u-1 at 13:00 (sales 100.00, ROAS 12,500) and a view of `tent-2` by
/// u-2; a test request that bids but counts nothing; one request with no
/// bid, reason `keyword`. So: bids 3, wins 3, impressions 3, clicks 1,
/// CTR 1/3, ACOS 0.00008.
pub fn tents_day(s: &Server) {
    won(s, "u-1", "2.50", true);
    won(s, "u-2", "3.00", false);
    won(s, "u-3", "2.50", false);
    let mut t = banner_request();
    t["test"] = serde_json::json!(1);
    t["site"]["keywords"] = serde_json::json!("tent");
    only_bid(s, &t);
    assert_eq!(s.bid(&banner_request().to_string()).status, 204);
    s.clock.advance_millis(3_600_000);
    let r = upload(
        s,
        &[
            serde_json::json!({"user": "u-1", "event": "purchase", "product": "tent-1", "at": "2026-11-24T13:00:00Z", "amount": "100.00", "currency": "USD", "order_id": "A1"}),
            serde_json::json!({"user": "u-2", "event": "view", "product": "tent-2", "at": "2026-11-24T13:00:00Z"}),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        serde_json::json!({"applied": 2, "attributed": 2, "unattributed": 0, "duplicate": 0})
    );
    s.flush_events();
}

/// Whether a notice URL's signature is the first 128 bits of
/// HMAC-SHA256(secret, signed text ‖ `\n` ‖ kind): `per-url`, what every
/// build checks.
pub fn signed_per_url(url: &str, secret: &str, kind: &str) -> bool {
    use hmac::{KeyInit, Mac};
    let query = url.split_once('?').expect("a query").1;
    let (signed, rest) = query.split_once("&s=").expect("a signature");
    let sig = rest.split_once('&').map_or(rest, |(s, _)| s);
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(signed.as_bytes());
    mac.update(b"\n");
    mac.update(kind.as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..16]) == sig
}

/// `bidder serve` on ports of its own (the kernel's choice), not spawned
/// yet: what every test that runs the binary as a server starts from.
pub fn serve_command() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_bidder"));
    c.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    c
}

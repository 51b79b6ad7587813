//! Exchange profiles over HTTP: `/openrtb2/bid/{id}` answers as exchange
//! `{id}` — its notices, encrypted prices, charge rule, default VAST
//! version, gzip answers, default deadline, explain and metrics — and
//! profiles come and go with config reloads.
//!
//! Metrics are process-wide and several series here carry no test-specific
//! label (`bidder_notices_total`, `bidder_unknown_exchange_requests_total`),
//! so every test holds [`serial`] for its whole run: the deltas each one
//! checks are then exactly its own.
//!
//! Environment variables holding price keys are named after their test
//! (`EXCHANGES_TEST_<TEST>_…`) and never shared.

mod common;

use std::io::Read;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use bidder::Settings;
use common::{banner_request, get, post, request, shop_yaml, Reply, Server, TUBE};
use config::Micros;
use serde_json::{json, Value};

/// Google's published test keys (not secrets).
const ENC_KEY: &str = "skU7Ax_NL5pPAFyKdkfZjZz2-VhIN8bjj1rVFOaJ_5o=";
const INT_KEY: &str = "arO23ykdNqUQ5LEoQ0FVmPkBd7xB5CO89PDZlSjpFxo=";
/// Google's published example: 100 micros, encrypted with the keys above.
const PUBLIC_VECTOR: &str = "YWJjMTIzZGVmNDU2Z2hpN7fhCuPemCce_6msaw";

/// A Google initialization vector dated `at` (the server's clock, say)
/// from server `id`: seconds and microseconds, then the server's id.
fn iv_at(at: config::Timestamp, id: u8) -> [u8; 16] {
    let ms = at.as_millis();
    let mut iv = [id; 16];
    iv[..4].copy_from_slice(&u32::try_from(ms / 1000).unwrap().to_be_bytes());
    iv[4..8].copy_from_slice(&u32::try_from(ms % 1000 * 1000).unwrap().to_be_bytes());
    iv
}

/// The display line item every test bids with: 4.00 CPM, 4000 micros an
/// impression at the bid price.
const LI: &str = "disp";
const BID_COST: Micros = Micros(4_000);

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    // A failed test must not fail the others with it.
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// `shop` with the display line item [`LI`].
fn shop() -> String {
    shop_with("4.00", "100.00", "")
}

/// `shop` with the display line item [`LI`] at `cpm`, `daily` budget and
/// `more` YAML lines of its own.
fn shop_with(cpm: &str, daily: &str, more: &str) -> String {
    shop_yaml(
        "",
        "1000.00",
        &format!(
            "      - id: {LI}\n        media: display\n        cpm: {cpm}\n        \
             budget: {{ daily: {daily} }}\n{more}        creatives: [b300]\n"
        ),
    )
}

/// An exchange profile file: `id`, a name, and `extra` YAML lines (indented
/// two spaces, under `exchange:`).
fn exchange(id: &str, extra: &str) -> String {
    format!("exchange:\n  id: {id}\n  name: Exchange {id}\n{extra}")
}

/// `price_encryption` lines reading `{prefix}_ENC` and `{prefix}_INT`.
fn encryption(prefix: &str) -> String {
    format!(
        "  price_encryption:\n    scheme: google\n    encryption_key_env: {prefix}_ENC\n    \
         integrity_key_env: {prefix}_INT\n"
    )
}

fn set_keys(prefix: &str) {
    std::env::set_var(format!("{prefix}_ENC"), ENC_KEY);
    std::env::set_var(format!("{prefix}_INT"), INT_KEY);
}

fn keys() -> pricecrypt::Keys {
    pricecrypt::Keys::from_base64(ENC_KEY, INT_KEY).unwrap()
}

/// A config directory named after the test with these files.
fn config_dir(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = common::tempdir(&format!("exchanges-{name}"));
    for (file, yaml) in files {
        std::fs::write(dir.join(file), yaml).unwrap();
    }
    dir
}

fn server(name: &str, files: &[(&str, &str)]) -> Server {
    Server::start(&config_dir(name, files), None)
}

/// POSTs a bid request to `/openrtb2/bid/{exchange}` (`None`: plain
/// `/openrtb2/bid`).
fn bid_to(s: &Server, exchange: Option<&str>, body: &Value) -> Reply {
    bid_with(s, exchange, &[], body)
}

fn bid_with(s: &Server, exchange: Option<&str>, headers: &[(&str, &str)], body: &Value) -> Reply {
    let path = match exchange {
        Some(id) => format!("/openrtb2/bid/{id}"),
        None => "/openrtb2/bid".to_string(),
    };
    post(s.bid, &path, headers, body.to_string().as_bytes())
}

/// The one bid of a 200 answer.
fn only_bid(reply: &Reply) -> Value {
    assert_eq!(reply.status, 200, "expected a bid: {}", reply.text());
    let v = reply.json();
    let bids = v["seatbid"][0]["bid"].as_array().expect("bids");
    assert_eq!(bids.len(), 1, "{v}");
    bids[0].clone()
}

fn url(bid: &Value, member: &str) -> String {
    bid[member]
        .as_str()
        .unwrap_or_else(|| panic!("no {member} in {bid}"))
        .to_string()
}

/// The value of query parameter `key` in `url`.
fn param(url: &str, key: &str) -> String {
    let query = url.split_once('?').expect("a query").1;
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {url}"))
        .to_string()
}

/// What the line item has been charged today (holds not included).
fn spent(s: &Server) -> Micros {
    s.app.line_item_spent(LI).today
}

/// Calls a notice URL with `price` for the macro; returns the status and
/// what it charged the line item.
fn notice(s: &Server, url: &str, price: &str) -> (u16, Micros) {
    let before = spent(s);
    let r = s.notice(url, price);
    (r.status, Micros(spent(s).as_i64() - before.as_i64()))
}

/// The value of the series `name` with exactly these labels on `/metrics`
/// (0 when it has not been written yet).
fn metric(s: &Server, name: &str, labels: &[(&str, &str)]) -> f64 {
    let page = get(s.admin, "/metrics");
    assert_eq!(page.status, 200);
    let mut want: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    want.sort();
    page.text()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(series, _)| {
            let (n, rest) = series.split_once('{').unwrap_or((series, "}"));
            let mut got: Vec<String> = rest
                .trim_end_matches('}')
                .split(',')
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect();
            got.sort();
            n == name && got == want
        })
        .filter_map(|(_, v)| v.parse::<f64>().ok())
        .sum()
}

fn notices(s: &Server, kind: &str, result: &str) -> f64 {
    metric(
        s,
        "bidder_notices_total",
        &[("kind", kind), ("result", result)],
    )
}

fn explain(s: &Server, query: &str, body: &Value) -> Reply {
    common::admin(
        s.admin,
        &format!("/v1/explain{query}"),
        body.to_string().as_bytes(),
    )
}

// 1. Routing.

#[test]
fn each_exchange_has_its_own_bid_endpoint() {
    let _serial = serial();
    let s = server(
        "routing",
        &[
            ("shop.yaml", &shop()),
            ("adx.yaml", &exchange("adx", "  charge_on: win\n")),
        ],
    );
    let body = banner_request();

    let nurl = url(&only_bid(&bid_to(&s, Some("adx"), &body)), "nurl");
    assert_eq!(param(&nurl, "x"), "adx", "{nurl}");
    assert_eq!(param(&nurl, "ch"), "w", "adx's charge_on: {nurl}");

    // No profile `default`: plain /openrtb2/bid answers with the built-in
    // defaults, under the name `default`.
    let nurl = url(&only_bid(&bid_to(&s, None, &body)), "nurl");
    assert_eq!(param(&nurl, "x"), "default", "{nurl}");
    assert_eq!(param(&nurl, "ch"), "f", "built-in charge_on first: {nurl}");

    let unknown = || metric(&s, "bidder_unknown_exchange_requests_total", &[]);
    let before = unknown();
    for path in [
        "/openrtb2/bid/nope",
        "/openrtb2/bid/",
        "/openrtb2/bid/adx/x",
    ] {
        let r = post(s.bid, path, &[], body.to_string().as_bytes());
        assert_eq!(r.status, 404, "{path}: {}", r.text());
    }
    assert_eq!(unknown(), before + 3.0);
    // An unknown exchange is nobody's request: no `nope` series appears.
    assert_eq!(
        metric(
            &s,
            "bidder_requests_total",
            &[("exchange", "nope"), ("outcome", "bid")]
        ),
        0.0
    );

    let r = request(s.bid, "GET", "/openrtb2/bid/adx", &[], b"");
    assert_eq!(r.status, 405, "{}", r.text());
    assert_eq!(r.header("allow"), Some("POST"));
}

#[test]
fn plain_endpoint_answers_as_the_default_profile_when_there_is_one() {
    let _serial = serial();
    let s = server(
        "default-profile",
        &[
            ("shop.yaml", &shop()),
            (
                "default.yaml",
                &exchange("default", "  charge_on: billing\n"),
            ),
            ("adx.yaml", &exchange("adx", "")),
        ],
    );
    let body = banner_request();
    let bid = only_bid(&bid_to(&s, None, &body));
    let nurl = url(&bid, "nurl");
    assert_eq!(param(&nurl, "x"), "default", "{nurl}");
    assert_eq!(
        param(&nurl, "ch"),
        "b",
        "the default profile's charge_on: {nurl}"
    );
    // Its rule applies to its notices: the billing notice charges.
    assert_eq!(notice(&s, &nurl, "2.50"), (200, Micros::ZERO));
    assert_eq!(notice(&s, &url(&bid, "burl"), "2.50"), (200, Micros(2_500)));
    // adx keeps its own (the built-in first).
    let nurl = url(&only_bid(&bid_to(&s, Some("adx"), &body)), "nurl");
    assert_eq!(param(&nurl, "x"), "adx");
    assert_eq!(param(&nurl, "ch"), "f");
}

/// An exchange's `allow_from` refuses bid requests from anywhere else
/// before they are read: nobody else can hold its line items' budgets
/// with bids. Behind a trusted proxy the address is the last one the
/// proxies wrote into X-Forwarded-For; what a client writes in front of
/// it does not count.
#[test]
fn bid_requests_come_only_from_the_exchanges_networks() {
    let _serial = serial();
    let dir = config_dir(
        "allow-from",
        &[
            ("shop.yaml", &shop()),
            (
                "near.yaml",
                &exchange("near", "  allow_from: [127.0.0.0/8]\n"),
            ),
            (
                "far.yaml",
                &exchange("far", "  allow_from: [10.0.0.0/8, 2001:db8::/32]\n"),
            ),
            ("open.yaml", &exchange("open", "")),
        ],
    );
    let s = Server::start(&dir, None);
    let body = banner_request();
    only_bid(&bid_to(&s, Some("near"), &body));
    only_bid(&bid_to(&s, Some("open"), &body));
    let refused = bid_to(&s, Some("far"), &body);
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert_eq!(spent(&s), Micros::ZERO);
    let held = s.app.line_item_spent(LI).held_today;
    // Plain /openrtb2/bid (the built-in defaults) would get around every
    // allow_from: closed, with no `default` profile to say who may use it.
    let plain = bid_to(&s, None, &body);
    assert_eq!(plain.status, 403, "{}", plain.text());
    // A client's own X-Forwarded-For means nothing without a trusted proxy.
    let forged = bid_with(&s, Some("far"), &[("X-Forwarded-For", "10.1.2.3")], &body);
    assert_eq!(forged.status, 403);
    assert_eq!(s.app.line_item_spent(LI).held_today, held, "nothing held");
    assert_eq!(
        metric(
            &s,
            "bidder_bid_requests_refused_total",
            &[("exchange", "far"), ("reason", "source")]
        ),
        2.0
    );
    drop(s);
    // A `default` profile opens it again, on its own terms.
    std::fs::write(dir.join("default.yaml"), exchange("default", "")).unwrap();
    let s = Server::start(&dir, None);
    only_bid(&bid_to(&s, None, &body));
    drop(s);
    std::fs::remove_file(dir.join("default.yaml")).unwrap();

    // Behind a proxy on loopback.
    let s = Server::start_with(
        &dir,
        None,
        Settings {
            trusted_proxies: vec!["127.0.0.0/8".parse().unwrap()],
            ..Settings::default()
        },
    );
    for (forwarded, status) in [
        ("10.1.2.3", 200),
        ("192.0.2.9, 10.1.2.3", 200),
        ("2001:db8::7", 200),
        ("10.1.2.3:4711", 200),
        ("[2001:db8::7]:4711", 200),
        ("10.1.2.3, 192.0.2.9", 403),
        ("not an address", 403),
        // What a client writes in front, however unreadable, is not read:
        // the proxy's entry on the right is.
        ("\u{ff}, 10.1.2.3", 200),
        ("10.1.2.3, \u{ff}", 403),
    ] {
        let r = bid_with(&s, Some("far"), &[("X-Forwarded-For", forwarded)], &body);
        assert_eq!(r.status, status, "{forwarded}: {}", r.text());
    }
    // The proxy's own address (no header) is not the exchange's.
    assert_eq!(bid_to(&s, Some("far"), &body).status, 403);
    only_bid(&bid_to(&s, Some("near"), &body));
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

/// With its seat at an exchange configured, the bidder names it in every
/// answer and bids only where the request's wseat lets it (and its bseat
/// does not block it); explain says `seat` otherwise.
#[test]
fn answers_name_our_seat_and_respect_wseat_and_bseat() {
    let _serial = serial();
    let s = server(
        "seat",
        &[
            ("shop.yaml", &shop()),
            ("sx.yaml", &exchange("sx", "  seat: \"dsp-7\"\n")),
            ("plain.yaml", &exchange("plain", "")),
        ],
    );
    let mut body = banner_request();
    let reply = bid_to(&s, Some("sx"), &body);
    only_bid(&reply);
    assert_eq!(reply.json()["seatbid"][0]["seat"], "dsp-7");
    body["wseat"] = json!(["other", "dsp-7"]);
    only_bid(&bid_to(&s, Some("sx"), &body));
    let why = |body: &Value| {
        let r = explain(&s, "?exchange=sx", body);
        assert_eq!(r.status, 200, "{}", r.text());
        common::verdict(&r.json(), LI)["reason"].clone()
    };
    body["wseat"] = json!(["other"]);
    assert_eq!(bid_to(&s, Some("sx"), &body).status, 204);
    assert_eq!(why(&body), "seat");
    body["wseat"] = json!([]);
    body["bseat"] = json!(["dsp-7"]);
    assert_eq!(bid_to(&s, Some("sx"), &body).status, 204);
    assert_eq!(why(&body), "seat");
    // A profile without a seat answers as before: no seat, lists unread.
    let reply = bid_to(&s, Some("plain"), &body);
    only_bid(&reply);
    assert!(reply.json()["seatbid"][0].get("seat").is_none());
}

/// Under the Digital Services Act an exchange may require each bid to say
/// on whose behalf the ad is shown and who paid (`regs.ext.dsa`): bids
/// without it are thrown away, with the budget they held (probe finding).
/// Each bid then carries `ext.dsa` with the advertiser's name; where the
/// publisher cannot show it either, no bid (explain: `dsa`).
#[test]
fn bids_carry_the_dsa_object_where_the_request_asks_for_it() {
    let _serial = serial();
    let s = server("dsa", &[("shop.yaml", &shop())]);
    let mut body = banner_request();
    let plain = only_bid(&bid_to(&s, None, &body));
    assert!(plain.get("ext").is_none(), "{plain}");
    let name = "Shop";
    for (required, pubrender) in [(1, 0), (2, 1), (3, 2), (2, -1)] {
        let mut dsa = json!({ "dsarequired": required, "datatopub": 2,
            "transparency": [{ "domain": "ssp.example", "dsaparams": [1, 2] }] });
        if pubrender >= 0 {
            dsa["pubrender"] = json!(pubrender);
        }
        body["regs"] = json!({ "gdpr": 0, "ext": { "dsa": dsa } });
        let bid = only_bid(&bid_to(&s, None, &body));
        assert_eq!(
            bid["ext"]["dsa"],
            json!({ "behalf": name, "paid": name, "adrender": 0 }),
            "{required} {pubrender}: {bid}"
        );
    }
    // Not asked for, or not readable: no object, and the bid as before.
    for dsa in [
        json!({ "dsarequired": 0 }),
        json!("yes"),
        json!({ "dsarequired": "soon" }),
    ] {
        body["regs"] = json!({ "ext": { "dsa": dsa, "gdpr": 0 } });
        let bid = only_bid(&bid_to(&s, None, &body));
        assert!(bid.get("ext").is_none(), "{dsa}: {bid}");
    }
    // Required, and the publisher cannot render it: the ad would have to.
    body["regs"] = json!({ "ext": { "dsa": { "dsarequired": 3, "pubrender": 0 } } });
    assert_eq!(bid_to(&s, None, &body).status, 204);
    let r = explain(&s, "", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(common::verdict(&r.json(), LI)["reason"], "dsa");
    body["regs"] = json!({ "ext": { "dsa": { "dsarequired": 1, "pubrender": 0 } } });
    only_bid(&bid_to(&s, None, &body));
}

/// A deal that names the seats (`wseat`) or advertiser domains
/// (`wadomain`) it is for is bid in only by them: the exchange throws any
/// other bid away, with the budget it held. Explain says `deal`.
#[test]
fn deals_are_bid_in_only_by_the_seats_and_advertisers_they_name() {
    let _serial = serial();
    let shop = shop_with("4.00", "100.00", "        targeting: { deals: [D1, D2] }\n");
    let s = server(
        "deal-seats",
        &[
            ("shop.yaml", &shop),
            ("sx.yaml", &exchange("sx", "  seat: \"dsp-7\"\n")),
            ("plain.yaml", &exchange("plain", "")),
        ],
    );
    let mut body = banner_request();
    body["imp"][0]["pmp"] = json!({ "private_auction": 1, "deals": [{ "id": "D1" }] });
    let why = |body: &Value| {
        let r = explain(&s, "?exchange=sx", body);
        assert_eq!(r.status, 200, "{}", r.text());
        common::verdict(&r.json(), LI)["reason"].clone()
    };
    assert_eq!(only_bid(&bid_to(&s, Some("sx"), &body))["dealid"], "D1");
    for (wseat, bids) in [(json!(["other", "dsp-7"]), true), (json!(["other"]), false)] {
        body["imp"][0]["pmp"]["deals"][0]["wseat"] = wseat;
        let r = bid_to(&s, Some("sx"), &body);
        if bids {
            assert_eq!(only_bid(&r)["dealid"], "D1");
        } else {
            assert_eq!(r.status, 204, "{}", r.text());
            assert_eq!(why(&body), "deal");
        }
    }
    // Without a seat in the profile ours is unknown: wseat is not read.
    only_bid(&bid_to(&s, Some("plain"), &body));
    body["imp"][0]["pmp"]["deals"][0]
        .as_object_mut()
        .unwrap()
        .remove("wseat");
    for (wadomain, bids) in [
        (json!(["https://www.shop.example/"]), true),
        (json!(["SHOP.example"]), true),
        (json!(["brand.example"]), false),
    ] {
        body["imp"][0]["pmp"]["deals"][0]["wadomain"] = wadomain.clone();
        let r = bid_to(&s, Some("sx"), &body);
        if bids {
            assert_eq!(only_bid(&r)["dealid"], "D1", "{wadomain}");
        } else {
            assert_eq!(r.status, 204, "{wadomain}: {}", r.text());
            assert_eq!(why(&body), "deal");
        }
    }
    // Another deal of ours in the same imp, open to us, is still bid in.
    body["imp"][0]["pmp"]["deals"] = json!([
        { "id": "D1", "wadomain": ["brand.example"] },
        { "id": "D2", "bidfloor": 1.0 }
    ]);
    assert_eq!(only_bid(&bid_to(&s, Some("sx"), &body))["dealid"], "D2");
    // A deal of ours it cannot clear (a floor over the CPM, a floor in a
    // currency without a rate) listed first: the next one is bid in.
    for first in [
        json!({ "id": "D1", "bidfloor": 9.0 }),
        json!({ "id": "D1", "bidfloor": 1.0, "bidfloorcur": "XAU" }),
    ] {
        body["imp"][0]["pmp"]["deals"] = json!([first, { "id": "D2", "bidfloor": 1.0 }]);
        let bid = only_bid(&bid_to(&s, Some("sx"), &body));
        assert_eq!(bid["dealid"], "D2", "{first}");
        // Alone, it is the reason.
        body["imp"][0]["pmp"]["deals"] = json!([first]);
        assert_eq!(bid_to(&s, Some("sx"), &body).status, 204);
        assert!(
            matches!(why(&body).as_str(), Some("floor" | "currency")),
            "{first}"
        );
    }
    // A deal id listed twice: the exchange looks a bid's deal up by its id
    // and finds the first entry, whose terms hold (wire probe: the second
    // entry's were bid on, under a first that left our seat out).
    body["imp"][0]["pmp"]["deals"] = json!([
        { "id": "D1", "wseat": ["other"] },
        { "id": "D1", "bidfloor": 1.0 }
    ]);
    assert_eq!(bid_to(&s, Some("sx"), &body).status, 204);
    assert_eq!(why(&body), "deal");
    body["imp"][0]["pmp"]["deals"] = json!([
        { "id": "D1", "bidfloor": 9.0 },
        { "id": "D1", "bidfloor": 1.0 },
        { "id": "D2", "bidfloor": 2.0 }
    ]);
    assert_eq!(only_bid(&bid_to(&s, Some("sx"), &body))["dealid"], "D2");
    drop(s);
    // An advertiser of two domains: the bid's adomain names both, so the
    // deal's wadomain must allow both.
    let two = shop.replace(
        "domains: [shop.example]",
        "domains: [shop.example, shop-two.example]",
    );
    assert_ne!(two, shop);
    let s = server(
        "deal-domains",
        &[("shop.yaml", &two), ("sx.yaml", &exchange("sx", ""))],
    );
    for (wadomain, bids) in [
        (json!(["shop.example"]), false),
        (json!(["shop.example", "shop-two.example"]), true),
    ] {
        body["imp"][0]["pmp"]["deals"] = json!([{ "id": "D1", "wadomain": wadomain }]);
        let r = bid_to(&s, Some("sx"), &body);
        assert_eq!(
            r.status == 200,
            bids,
            "{}: {}",
            body["imp"][0]["pmp"],
            r.text()
        );
    }
}

// 2. Encrypted prices.

#[test]
fn encrypted_win_prices_are_decrypted_with_the_exchanges_keys() {
    let _serial = serial();
    let prefix = "EXCHANGES_TEST_ENCRYPTED";
    set_keys(prefix);
    let s = server(
        "encrypted",
        &[
            ("shop.yaml", &shop()),
            ("adx.yaml", &exchange("adx", &encryption(prefix))),
        ],
    );
    let body = banner_request();
    let adx_bid = || only_bid(&bid_to(&s, Some("adx"), &body));
    let integrity = || {
        metric(
            &s,
            "bidder_notice_price_decrypt_failures_total",
            &[("exchange", "adx"), ("reason", "integrity")],
        )
    };
    let unreadable = || {
        metric(
            &s,
            "bidder_notice_price_unreadable_total",
            &[("exchange", "adx")],
        )
    };

    // 2.50 CPM, encrypted: 2500 micros, below the 4.00 bid.
    let bid = adx_bid();
    assert_eq!(bid["price"].as_f64(), Some(4.0));
    let now = || config::Clock::now(&*s.clock);
    let price = keys().encrypt(2_500_000, iv_at(now(), 1));
    let unreadable_before = unreadable();
    assert_eq!(notice(&s, &url(&bid, "nurl"), &price), (200, Micros(2_500)));
    assert!(Micros(2_500) < BID_COST);
    assert_eq!(unreadable(), unreadable_before, "it was read");
    // The same bid again, by either notice: a duplicate, charged once.
    let dup_before = notices(&s, "win", "duplicate");
    assert_eq!(notice(&s, &url(&bid, "nurl"), &price), (200, Micros::ZERO));
    assert_eq!(notices(&s, "win", "duplicate"), dup_before + 1.0);
    assert_eq!(notice(&s, &url(&bid, "burl"), &price), (200, Micros::ZERO));

    // Padded, the padding percent-encoded as a URL may carry it: the same
    // price.
    let bid = adx_bid();
    let padded = format!("{}%3D%3D", keys().encrypt(2_500_000, iv_at(now(), 9)));
    assert_eq!(
        notice(&s, &url(&bid, "nurl"), &padded),
        (200, Micros(2_500))
    );

    // One character of the price changed (inside its iv and price bytes):
    // the integrity check fails and the bid price is charged.
    let mut flipped = keys().encrypt(2_500_000, iv_at(now(), 2)).into_bytes();
    flipped[20] = if flipped[20] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let before = (integrity(), unreadable());
    let bid = adx_bid();
    assert_eq!(notice(&s, &url(&bid, "nurl"), &flipped), (200, BID_COST));
    assert_eq!(integrity(), before.0 + 1.0);
    assert_eq!(unreadable(), before.1 + 1.0);

    // A price in the clear is not from this exchange: charged at the bid.
    let before = (integrity(), unreadable());
    let bid = adx_bid();
    assert_eq!(notice(&s, &url(&bid, "nurl"), "2.50"), (200, BID_COST));
    assert_eq!(unreadable(), before.1 + 1.0);
    assert_eq!(integrity(), before.0, "not an integrity failure");

    // Dated a few minutes before the bid (another clock's): read. 100
    // micros CPM is 0.1 micro an impression, rounded up to 1.
    let bid = adx_bid();
    let a_bit_early = config::Timestamp(now().as_millis() - 4 * 60 * 1000);
    let cheap = keys().encrypt(100, iv_at(a_bit_early, 3));
    assert_eq!(notice(&s, &url(&bid, "nurl"), &cheap), (200, Micros(1)));

    // A price encrypted long before the bid is another win's, copied onto
    // this bid's notice to charge it less (exchanges probe: any earlier
    // price was taken): charged at the bid, and counted. Google's public
    // vector (2021) is one.
    let stale = || {
        metric(
            &s,
            "bidder_notice_price_decrypt_failures_total",
            &[("exchange", "adx"), ("reason", "stale")],
        )
    };
    for old in [
        keys().encrypt(
            100,
            iv_at(config::Timestamp(now().as_millis() - 3_600_000), 4),
        ),
        PUBLIC_VECTOR.to_string(),
    ] {
        let before = (stale(), integrity(), unreadable());
        let bid = adx_bid();
        assert_eq!(notice(&s, &url(&bid, "nurl"), &old), (200, BID_COST));
        assert_eq!(stale(), before.0 + 1.0);
        assert_eq!(integrity(), before.1, "authentic");
        assert_eq!(unreadable(), before.2 + 1.0);
    }

    // The same clear price to the plain endpoint (no encryption there) is
    // read as it is.
    let bid = only_bid(&bid_to(&s, None, &body));
    assert_eq!(notice(&s, &url(&bid, "nurl"), "2.50"), (200, Micros(2_500)));
}

/// An exchange that uses Google's scheme with random IVs says so
/// (`iv_timestamps: false`): its prices are read whatever their IV's first
/// bytes say (review finding: some 41% of random IVs read as dated before
/// the bid, and were charged at the bid).
#[test]
fn an_exchange_with_random_ivs_says_so_and_its_prices_are_read() {
    let _serial = serial();
    let prefix = "EXCHANGES_TEST_RANDOM_IV";
    set_keys(prefix);
    let s = server(
        "random-iv",
        &[
            ("shop.yaml", &shop()),
            (
                "rnd.yaml",
                &exchange(
                    "rnd",
                    &format!("{}    iv_timestamps: false\n", encryption(prefix)),
                ),
            ),
        ],
    );
    let bid = only_bid(&bid_to(&s, Some("rnd"), &banner_request()));
    let price = keys().encrypt(2_500_000, [0; 16]);
    assert_eq!(notice(&s, &url(&bid, "nurl"), &price), (200, Micros(2_500)));
    let bid = only_bid(&bid_to(&s, Some("rnd"), &banner_request()));
    assert_eq!(
        notice(&s, &url(&bid, "nurl"), PUBLIC_VECTOR),
        (200, Micros(1))
    );
}

#[test]
fn a_notice_cannot_change_its_exchange() {
    let _serial = serial();
    let prefix = "EXCHANGES_TEST_FORGED_X";
    set_keys(prefix);
    let s = server(
        "forged-x",
        &[
            ("shop.yaml", &shop()),
            ("adx.yaml", &exchange("adx", &encryption(prefix))),
            ("plain.yaml", &exchange("plain", "")),
        ],
    );
    let bid = only_bid(&bid_to(&s, Some("adx"), &banner_request()));
    let nurl = url(&bid, "nurl");
    assert!(nurl.contains("&x=adx&"), "{nurl}");
    // Moved to an exchange without encryption, a clear cheap price would be
    // read as is: the signature refuses it.
    for other in ["plain", "default"] {
        let forged = nurl.replace("&x=adx&", &format!("&x={other}&"));
        assert_eq!(notice(&s, &forged, "0.01"), (403, Micros::ZERO), "{other}");
    }
    // The genuine notice still charges (at the bid: the price is clear).
    assert_eq!(notice(&s, &nurl, "0.01"), (200, BID_COST));
}

// 3. charge_on.

#[test]
fn charge_on_decides_which_notice_charges() {
    let _serial = serial();
    let s = server(
        "charge-on",
        &[
            ("shop.yaml", &shop()),
            ("w.yaml", &exchange("on-win", "  charge_on: win\n")),
            ("b.yaml", &exchange("on-billing", "  charge_on: billing\n")),
            ("f.yaml", &exchange("on-first", "  charge_on: first\n")),
        ],
    );
    let body = banner_request();
    let bid = |x: &str| only_bid(&bid_to(&s, Some(x), &body));

    // win: the win notice charges; the billing notice is recorded only.
    let b = bid("on-win");
    assert_eq!(param(&url(&b, "nurl"), "ch"), "w");
    let recorded = notices(&s, "billing", "recorded");
    assert_eq!(notice(&s, &url(&b, "burl"), "2.50"), (200, Micros::ZERO));
    assert_eq!(notices(&s, "billing", "recorded"), recorded + 1.0);
    assert_eq!(notice(&s, &url(&b, "nurl"), "2.50"), (200, Micros(2_500)));
    assert_eq!(notice(&s, &url(&b, "burl"), "2.50"), (200, Micros::ZERO));

    // billing: the reverse.
    let b = bid("on-billing");
    assert_eq!(param(&url(&b, "nurl"), "ch"), "b");
    let recorded = notices(&s, "win", "recorded");
    assert_eq!(notice(&s, &url(&b, "nurl"), "2.50"), (200, Micros::ZERO));
    assert_eq!(notices(&s, "win", "recorded"), recorded + 1.0);
    let charged = notices(&s, "billing", "charged");
    assert_eq!(notice(&s, &url(&b, "burl"), "2.50"), (200, Micros(2_500)));
    assert_eq!(notices(&s, "billing", "charged"), charged + 1.0);
    assert_eq!(notice(&s, &url(&b, "burl"), "2.50"), (200, Micros::ZERO));
    assert_eq!(notice(&s, &url(&b, "nurl"), "2.50"), (200, Micros::ZERO));
    // Won, not billed yet: a loss notice (a confused exchange, or anyone
    // holding the URL) cannot free its hold before the billing notice.
    let b = bid("on-billing");
    let held = s.app.line_item_spent(LI).held_today;
    assert!(held >= BID_COST, "{held:?}");
    assert_eq!(notice(&s, &url(&b, "nurl"), "2.50"), (200, Micros::ZERO));
    let ignored = notices(&s, "loss", "ignored");
    assert_eq!(s.notice(&url(&b, "lurl"), "2.50").status, 200);
    assert_eq!(notices(&s, "loss", "ignored"), ignored + 1.0);
    assert_eq!(s.app.line_item_spent(LI).held_today, held, "still held");
    assert_eq!(notice(&s, &url(&b, "burl"), "2.50"), (200, Micros(2_500)));

    // first: whichever comes first charges, the other is a duplicate.
    let b = bid("on-first");
    assert_eq!(param(&url(&b, "nurl"), "ch"), "f");
    assert_eq!(notice(&s, &url(&b, "nurl"), "2.50"), (200, Micros(2_500)));
    let dup = notices(&s, "billing", "duplicate");
    assert_eq!(notice(&s, &url(&b, "burl"), "2.50"), (200, Micros::ZERO));
    assert_eq!(notices(&s, "billing", "duplicate"), dup + 1.0);

    let b = bid("on-first");
    assert_eq!(notice(&s, &url(&b, "burl"), "3.00"), (200, Micros(3_000)));
    let dup = notices(&s, "win", "duplicate");
    assert_eq!(notice(&s, &url(&b, "nurl"), "3.00"), (200, Micros::ZERO));
    assert_eq!(notices(&s, "win", "duplicate"), dup + 1.0);
}

// 4. vast_default.

/// The VAST bid's `protocol` and the version its adm declares, checked
/// against its XSD.
fn vast_of(reply: &Reply) -> (i64, String) {
    let bid = only_bid(reply);
    assert_eq!(bid["mtype"], 2, "{bid}");
    let adm = bid["adm"].as_str().expect("adm");
    common::assert_valid_vast(adm);
    let version = adm
        .split("<VAST")
        .nth(1)
        .and_then(|r| r.split("version=\"").nth(1))
        .and_then(|r| r.split('"').next())
        .expect("VAST version")
        .to_string();
    (bid["protocol"].as_i64().expect("protocol"), version)
}

#[test]
fn players_naming_no_protocol_get_the_exchanges_vast_default() {
    let _serial = serial();
    let dir = config_dir(
        "vast-default",
        &[
            ("tube.yaml", TUBE),
            ("vx.yaml", &exchange("vx", "  vast_default: \"4.1\"\n")),
        ],
    );
    // VAST on an https page needs https trackers.
    let s = Server::start_with(
        &dir,
        None,
        Settings {
            public_url: "https://bidder.test".into(),
            ..Settings::default()
        },
    );
    let body = common::video_request();
    assert_eq!(
        vast_of(&bid_to(&s, Some("vx"), &body)),
        (11, "4.1".to_string())
    );
    // No `default` profile: the built-in 3.0.
    assert_eq!(vast_of(&bid_to(&s, None, &body)), (3, "3.0".to_string()));
    // A player that names protocols gets the best of them, whatever the
    // exchange's default: wrappers of 1.0, 2.0, 3.0 and 4.0 imply 4.0.
    let mut named = body.clone();
    named["imp"][0]["video"]["protocols"] = json!([4, 5, 6, 8]);
    assert_eq!(
        vast_of(&bid_to(&s, Some("vx"), &named)),
        (7, "4.0".to_string())
    );
    assert_eq!(vast_of(&bid_to(&s, None, &named)), (7, "4.0".to_string()));
}

// 5. gzip_responses.

fn gunzip(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .read_to_end(&mut out)
        .expect("a gzip body");
    out
}

fn assert_bid_response(json: &[u8], request_id: &str) {
    let resp: ortb::BidResponse = serde_json::from_slice(json)
        .unwrap_or_else(|e| panic!("not a BidResponse ({e}): {}", String::from_utf8_lossy(json)));
    assert_eq!(resp.id, request_id);
    assert_eq!(resp.seatbid.len(), 1);
    assert_eq!(resp.seatbid[0].bid.len(), 1);
}

#[test]
fn gzip_exchanges_get_compressed_answers_unless_they_refuse_gzip() {
    let _serial = serial();
    let s = server(
        "gzip",
        &[
            ("shop.yaml", &shop()),
            ("gz.yaml", &exchange("gz", "  gzip_responses: true\n")),
            ("plain.yaml", &exchange("plain", "")),
        ],
    );
    let body = banner_request();
    for accept in [None, Some("gzip"), Some("gzip, deflate, br"), Some("*")] {
        let headers: Vec<(&str, &str)> = accept.iter().map(|a| ("Accept-Encoding", *a)).collect();
        let r = bid_with(&s, Some("gz"), &headers, &body);
        assert_eq!(r.status, 200, "{accept:?}");
        assert_eq!(r.header("content-encoding"), Some("gzip"), "{accept:?}");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert!(
            serde_json::from_slice::<Value>(&r.body).is_err(),
            "not plain"
        );
        assert_bid_response(&gunzip(&r.body), "req-1");
    }
    // `*` stands for codings not named: a gzip named with q=0 stays refused
    // (RFC 9110, 12.5.3).
    for refused in [
        "identity",
        "gzip;q=0",
        "gzip; q=0.0, identity",
        "gzip;q=0, *",
        "*, gzip;q=0",
        "*;q=0",
    ] {
        let r = bid_with(&s, Some("gz"), &[("Accept-Encoding", refused)], &body);
        assert_eq!(r.status, 200, "{refused}");
        assert_eq!(r.header("content-encoding"), None, "{refused}");
        assert_bid_response(&r.body, "req-1");
    }
    // Without gzip_responses, and on the plain endpoint: never compressed.
    for exchange in [Some("plain"), None] {
        let r = bid_with(&s, exchange, &[("Accept-Encoding", "gzip")], &body);
        assert_eq!(r.status, 200, "{exchange:?}");
        assert_eq!(r.header("content-encoding"), None, "{exchange:?}");
        assert_bid_response(&r.body, "req-1");
    }
}

// 5b. openrtb_version.

/// An exchange pinned to 2.5 is answered in 2.5 when its requests name no
/// version; a header naming one, at any patch level, still decides
/// (exchange probe: `2.5.0` was answered in 2.6, and a 2.5 exchange that
/// sends no header could not say so).
#[test]
fn a_profile_pins_the_version_of_answers_to_requests_that_name_none() {
    let _serial = serial();
    let s = server(
        "openrtb-version",
        &[
            ("shop.yaml", &shop()),
            ("old.yaml", &exchange("old", "  openrtb_version: \"2.5\"\n")),
        ],
    );
    let body = banner_request();
    for (exchange, header, version) in [
        (Some("old"), None, "2.5"),
        (Some("old"), Some("not a version"), "2.5"),
        (Some("old"), Some("2.6"), "2.6"),
        (None, None, "2.6"),
        (None, Some("2.5.0"), "2.5"),
        (None, Some("2.5.1"), "2.5"),
        (None, Some("2.6.0"), "2.6"),
    ] {
        let headers: Vec<(&str, &str)> = header.iter().map(|h| ("x-openrtb-version", *h)).collect();
        let r = bid_with(&s, exchange, &headers, &body);
        assert_eq!(r.status, 200, "{exchange:?} {header:?}");
        assert_eq!(
            r.header("x-openrtb-version"),
            Some(version),
            "{exchange:?} {header:?}"
        );
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        // mtype is 2.6's: a 2.5 answer leaves it out.
        assert_eq!(
            v["seatbid"][0]["bid"][0].get("mtype").is_some(),
            version == "2.6",
            "{exchange:?} {header:?}: {v}"
        );
    }
}

// 6. tmax_default_ms.

#[test]
fn tmax_default_is_the_deadline_of_requests_without_tmax() {
    let _serial = serial();
    let s = server(
        "tmax-default",
        &[
            ("shop.yaml", &shop()),
            ("fast.yaml", &exchange("fast", "  tmax_default_ms: 10\n")),
        ],
    );
    let mut without = banner_request();
    without.as_object_mut().unwrap().remove("tmax");
    let late = || {
        metric(
            &s,
            "bidder_no_bids_total",
            &[("exchange", "fast"), ("reason", "late")],
        )
    };
    let no_bid = || {
        metric(
            &s,
            "bidder_requests_total",
            &[("exchange", "fast"), ("outcome", "no_bid")],
        )
    };
    // Explain says what the endpoint answers: late, the deadline alone in
    // the way (with a tmax of its own the line item bids).
    let v = explain(&s, "?exchange=fast", &without);
    assert_eq!(v.status, 200, "{}", v.text());
    let verdicts = v.json()["line_items"].clone();
    assert_eq!(verdicts[0]["line_item"], LI, "{verdicts}");
    assert_eq!(verdicts[0]["bids"], false, "{verdicts}");
    assert_eq!(verdicts[0]["reason"], "late", "{verdicts}");
    let mut with = without.clone();
    with["tmax"] = serde_json::json!(500);
    let v = explain(&s, "?exchange=fast", &with);
    assert_eq!(v.json()["line_items"][0]["bids"], true, "{}", v.text());

    // 10 ms less the 10 ms margin: nothing is left, so late every time.
    let before = (late(), no_bid());
    for _ in 0..3 {
        let r = bid_to(&s, Some("fast"), &without);
        assert_eq!(r.status, 204, "{}", r.text());
    }
    assert_eq!(late(), before.0 + 3.0);
    assert_eq!(no_bid(), before.1 + 3.0);

    // A request's own tmax wins over the default.
    let mut with = without.clone();
    with["tmax"] = json!(500);
    only_bid(&bid_to(&s, Some("fast"), &with));
    // Other endpoints keep the built-in default deadline.
    only_bid(&bid_to(&s, None, &without));
    assert_eq!(late(), before.0 + 3.0);
}

// 7. Explain.

#[test]
fn explain_answers_as_the_exchange_asked_for() {
    let _serial = serial();
    let s = server(
        "explain",
        &[("shop.yaml", &shop()), ("adx.yaml", &exchange("adx", ""))],
    );
    let body = banner_request();
    let r = explain(&s, "?exchange=adx", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["exchange"], "adx", "{v}");
    assert_eq!(v["currency"], "USD", "{v}");
    assert_eq!(v["line_items"][0]["bids"], true, "{v}");

    let r = explain(&s, "", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["exchange"], "default");

    let r = explain(&s, "?exchange=nope", &body);
    assert_eq!(r.status, 404, "{}", r.text());
}

// 8. Metrics per exchange.

#[test]
fn requests_and_bids_are_counted_per_exchange() {
    let _serial = serial();
    let s = server(
        "metrics",
        &[("shop.yaml", &shop()), ("adx.yaml", &exchange("adx", ""))],
    );
    let requests = |x: &str| {
        metric(
            &s,
            "bidder_requests_total",
            &[("exchange", x), ("outcome", "bid")],
        )
    };
    let bids = |x: &str| metric(&s, "bidder_bids_total", &[("exchange", x)]);
    let body = banner_request();

    let before = [
        requests("adx"),
        bids("adx"),
        requests("default"),
        bids("default"),
    ];
    only_bid(&bid_to(&s, Some("adx"), &body));
    assert_eq!(
        [
            requests("adx"),
            bids("adx"),
            requests("default"),
            bids("default")
        ],
        [before[0] + 1.0, before[1] + 1.0, before[2], before[3]]
    );
    only_bid(&bid_to(&s, None, &body));
    assert_eq!(
        [
            requests("adx"),
            bids("adx"),
            requests("default"),
            bids("default")
        ],
        [
            before[0] + 1.0,
            before[1] + 1.0,
            before[2] + 1.0,
            before[3] + 1.0
        ]
    );
}

// 9. Reload.

/// `path:line:column` of the first occurrence of `value` in `text`.
fn position(file: &str, text: &str, value: &str) -> String {
    let at = text.find(value).expect("value in text");
    let line = text[..at].matches('\n').count() + 1;
    let column = at - text[..at].rfind('\n').map_or(0, |i| i + 1) + 1;
    format!("{file}:{line}:{column}")
}

#[test]
fn exchanges_come_and_go_with_reloads() {
    let _serial = serial();
    let dir = config_dir("reload", &[("shop.yaml", &shop())]);
    let s = Server::start(&dir, None);
    let body = banner_request();
    let reload = || common::admin(s.admin, "/v1/config/reload", b"");
    assert_eq!(bid_to(&s, Some("newx"), &body).status, 404);

    std::fs::write(dir.join("newx.yaml"), exchange("newx", "")).unwrap();
    let r = reload();
    assert_eq!(r.status, 200, "{}", r.text());
    let nurl = url(&only_bid(&bid_to(&s, Some("newx"), &body)), "nurl");
    assert_eq!(param(&nurl, "x"), "newx");

    // Keys named but not set: the whole set is refused where it names them.
    let prefix = "EXCHANGES_TEST_RELOAD_UNSET";
    let enc = exchange("enc", &encryption(prefix));
    std::fs::write(dir.join("enc.yaml"), &enc).unwrap();
    let r = reload();
    assert_eq!(r.status, 422, "{}", r.text());
    let text = r.text();
    for var in ["_ENC", "_INT"] {
        let name = format!("{prefix}{var}");
        let at = position("enc.yaml", &enc, &name);
        assert!(
            text.contains(&format!(
                "{at}: exchange \"enc\": the environment variable {name}"
            )),
            "{at} {name}:\n{text}"
        );
        assert!(text.contains("is not set"), "{text}");
    }
    // The old config keeps serving.
    assert_eq!(
        param(
            &url(&only_bid(&bid_to(&s, Some("newx"), &body)), "nurl"),
            "x"
        ),
        "newx"
    );
    assert_eq!(bid_to(&s, Some("enc"), &body).status, 404);

    // Once set, the same files load and the keys are used.
    set_keys(prefix);
    let r = reload();
    assert_eq!(r.status, 200, "{}", r.text());
    let bid = only_bid(&bid_to(&s, Some("enc"), &body));
    let price = keys().encrypt(1_500_000, iv_at(config::Clock::now(&*s.clock), 7));
    assert_eq!(notice(&s, &url(&bid, "nurl"), &price), (200, Micros(1_500)));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The price rule of a notice is the one its bid was made under (signed
/// `e`): an encrypting exchange removed by a reload does not turn its
/// outstanding notices into ones that take a clear price, and an exchange
/// that starts encrypting still reads the clear prices of its older bids.
#[test]
fn a_reload_does_not_change_how_outstanding_notices_read_prices() {
    let _serial = serial();
    let prefix = "EXCHANGES_TEST_RELOAD_RULE";
    set_keys(prefix);
    let enc = exchange("enc", &encryption(prefix));
    let dir = config_dir(
        "reload-rule",
        &[
            ("shop.yaml", &shop()),
            ("enc.yaml", &enc),
            ("clear.yaml", &exchange("clear", "")),
        ],
    );
    let s = Server::start(&dir, None);
    let body = banner_request();
    let reload = || common::admin(s.admin, "/v1/config/reload", b"");
    let old_enc = only_bid(&bid_to(&s, Some("enc"), &body));
    let old_clear = only_bid(&bid_to(&s, Some("clear"), &body));
    assert_eq!(param(&url(&old_enc, "nurl"), "e"), "1");
    assert_eq!(param(&url(&old_clear, "nurl"), "e"), "0");

    // enc leaves the config; clear starts encrypting.
    std::fs::remove_file(dir.join("enc.yaml")).unwrap();
    std::fs::write(
        dir.join("clear.yaml"),
        exchange("clear", &encryption(prefix)),
    )
    .unwrap();
    let r = reload();
    assert_eq!(r.status, 200, "{}", r.text());

    assert_eq!(
        notice(&s, &url(&old_enc, "nurl"), "0.01"),
        (200, BID_COST),
        "a clear price on an encrypting exchange's notice is not read"
    );
    assert_eq!(
        notice(&s, &url(&old_clear, "nurl"), "2.50"),
        (200, Micros(2_500)),
        "the bid was made in the clear"
    );
    let new_clear = only_bid(&bid_to(&s, Some("clear"), &body));
    assert_eq!(
        notice(&s, &url(&new_clear, "nurl"), "0.01"),
        (200, BID_COST)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// On an exchange that bills on its billing notice, a won bid holds its
/// cost until billed, across a restart too: carried for the reservation
/// window only, a restart gave its budget back, the line item bought it
/// again, and the billing notice that came later was over-delivery (money
/// probe). Each bought bid is written to the holds file and taken on as a
/// bid of the next process, which its billing notice charges.
#[test]
fn a_restart_keeps_holding_bids_won_and_not_yet_billed() {
    let _serial = serial();
    let shop = shop_with("500.00", "1.00", "");
    let dir = config_dir(
        "bought-restart",
        &[
            ("shop.yaml", &shop),
            ("bill.yaml", &exchange("bill", "  charge_on: billing\n")),
        ],
    );
    let state = dir.join("state");
    let at = common::ts("2026-11-24T12:00:00Z");
    let s = Server::start_in(&dir, &state, 1_000_000, at);
    let body = banner_request();
    let bids: Vec<Value> = (0..2)
        .map(|_| only_bid(&bid_to(&s, Some("bill"), &body)))
        .collect();
    assert_eq!(
        bid_to(&s, Some("bill"), &body).status,
        204,
        "the budget is held"
    );
    for b in &bids {
        assert_eq!(notice(&s, &url(b, "nurl"), "500.00"), (200, Micros::ZERO));
    }
    s.app.upkeep();
    drop(s);
    // Past the reservation window (60 s and the 5 min horizon).
    let s = Server::start_in(&dir, &state, 1_000_000, common::ts("2026-11-24T12:10:00Z"));
    s.app.expire_reservations();
    assert_eq!(s.app.line_item_spent(LI).held_today, Micros(1_000_000));
    assert_eq!(bid_to(&s, Some("bill"), &body).status, 204);
    for b in &bids {
        assert_eq!(
            notice(&s, &url(b, "burl"), "500.00"),
            (200, Micros(500_000))
        );
    }
    let spent = s.app.line_item_spent(LI);
    assert_eq!(
        (spent.today, spent.over_today, spent.held_today),
        (Micros(1_000_000), Micros::ZERO, Micros::ZERO)
    );
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

/// An exchange that bills on render may hold its bids longer than the
/// bidder's default (60 s): their reservations end on its own schedule.
#[test]
fn an_exchange_may_hold_its_bids_longer() {
    let _serial = serial();
    let s = server(
        "reservation-ttl",
        &[
            ("shop.yaml", &shop()),
            (
                "slow.yaml",
                &exchange(
                    "slow",
                    "  charge_on: billing\n  reservation_ttl_secs: 600\n",
                ),
            ),
        ],
    );
    let body = banner_request();
    only_bid(&bid_to(&s, Some("slow"), &body));
    only_bid(&bid_to(&s, None, &body));
    s.clock.advance_millis(61_000);
    assert_eq!(s.app.expire_reservations(), 1, "the default 60 s one");
    s.clock.advance_millis(600_000 - 61_000 - 1);
    assert_eq!(s.app.expire_reservations(), 0);
    s.clock.advance_millis(1);
    assert_eq!(s.app.expire_reservations(), 1, "slow's, at 600 s");
}

//! Tracking URLs over HTTP: the banner's click redirect and impression
//! pixel, VAST impression/event/click trackers, native trackers; signed so
//! that a changed URL counts nothing; each (bid, event) counted once;
//! expired and test bids count nothing; tracking never charges.
//!
//! Metrics are process-wide, so every test holds [`serial`] for its whole
//! run and compares every `bidder_tracking_*` series before and after: the
//! deltas it checks are then exactly its own, and "nothing else counted" is
//! checked too.

mod common;

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use bidder::Settings;
use common::{
    banner_request, banner_urls, get, only_bid, path_of, request, Reply, Server, NATIVE_AD, TUBE,
};
use config::Micros;
use serde_json::{json, Value};

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    // A failed test must not fail the others with it.
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

const CLICK_URL: &str = "https://shop.example/landing?utm_source=dsp&id=7";
const OTHER_CLICK_URL: &str = "https://shop.example/other/";

/// Advertiser `shop`: `b300` (300x250, clicks to `click_url`) and `b728`
/// (728x90, never fits the test slot), both in display line item `disp`.
fn shop(click_url: &str) -> String {
    format!(
        "advertiser:
  id: shop
  name: Shop
  domains: [shop.example]
  categories: [IAB22]
creatives:
  - id: b300
    format: display
    size: 300x250
    image_url: https://cdn.shop.example/b.png
    click_url: {click_url}
  - id: b728
    format: display
    size: 728x90
    image_url: https://cdn.shop.example/w.png
    click_url: {OTHER_CLICK_URL}
orders:
  - id: o1
    service: self_service
    budget: 1000.00
    flight: {{ start: 2026-11-01, end: 2026-12-31 }}
    line_items:
      - id: disp
        media: display
        cpm: 4.00
        budget: {{ daily: 100.00 }}
        creatives: [b300, b728]
"
    )
}

/// A server on `files` in a fresh directory named after the test.
fn server(name: &str, files: &[(&str, &str)], settings: Settings) -> Server {
    let dir = common::tempdir(&format!("tracking-{name}"));
    for (file, yaml) in files {
        std::fs::write(dir.join(file), yaml).unwrap();
    }
    Server::start_with(&dir, None, settings)
}

fn https() -> Settings {
    Settings {
        public_url: "https://bidder.test".into(),
        ..Settings::default()
    }
}

/// Wins `bid` (its win notice, at 1.00): reports count a bid's impression
/// and click once it is won.
fn won(s: &Server, bid: &Value) {
    let r = s.notice(bid["nurl"].as_str().unwrap(), "1.00");
    assert_eq!(r.status, 200, "{}", r.text());
}

/// The one bid of the answer to `body`.
fn call(s: &Server, url: &str) -> Reply {
    get(s.bid, path_of(url))
}

/// The last value of query parameter `key` in `url`.
fn param<'u>(url: &'u str, key: &str) -> &'u str {
    let query = url.split_once('?').expect("a query").1;
    query
        .split('&')
        .filter_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .next_back()
        .unwrap_or_else(|| panic!("no {key} in {url}"))
}

/// Every `bidder_tracking_*` series on `/metrics`, by its name and labels.
fn counts(s: &Server) -> BTreeMap<String, f64> {
    let page = get(s.admin, "/metrics");
    assert_eq!(page.status, 200);
    page.text()
        .lines()
        .filter(|l| l.starts_with("bidder_tracking_"))
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(series, v)| (series.to_string(), v.parse::<f64>().unwrap()))
        .collect()
}

fn event(name: &str) -> String {
    format!("bidder_tracking_events_total{{event=\"{name}\"}}")
}

fn refused(reason: &str) -> String {
    format!("bidder_tracking_refused_total{{reason=\"{reason}\"}}")
}

/// What changed between two [`counts`].
fn delta(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, d)| *d != 0.0)
        .collect()
}

fn expect(changes: &[(String, f64)]) -> BTreeMap<String, f64> {
    changes.iter().cloned().collect()
}

/// Runs `f` and asserts the tracking series changed by exactly `changes`.
fn counting<T>(s: &Server, changes: &[(String, f64)], f: impl FnOnce() -> T) -> T {
    let before = counts(s);
    let out = f();
    assert_eq!(delta(&before, &counts(s)), expect(changes));
    out
}

/// [`counting`] where a change may also come from the server's own upkeep
/// (once a second of real time, on its own thread): waits up to 3 s for
/// the series to get there, then past the next upkeep (1.2 s) to see they
/// go no further.
fn counting_soon<T>(s: &Server, changes: &[(String, f64)], f: impl FnOnce() -> T) -> T {
    let before = counts(s);
    let out = f();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while delta(&before, &counts(s)) != expect(changes) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(delta(&before, &counts(s)), expect(changes));
    std::thread::sleep(std::time::Duration::from_millis(1_200));
    assert_eq!(delta(&before, &counts(s)), expect(changes), "and no more");
    out
}

/// What the line item has been billed and holds: tracking touches neither.
fn money(s: &Server, li: &str) -> (Micros, Micros) {
    let spent = s.app.line_item_spent(li);
    (spent.lifetime, spent.held)
}

fn assert_redirect(r: &Reply, to: &str) {
    assert_eq!(r.status, 302, "{}", r.text());
    assert_eq!(r.header("location"), Some(to));
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

fn assert_pixel(r: &Reply) {
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("image/gif"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(r.body.starts_with(b"GIF89a"), "{:?}", r.body);
    assert_eq!(r.header("location"), None);
}

fn assert_beacon(r: &Reply) {
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("location"), None);
    assert!(r.body.is_empty());
}

fn banner_server(name: &str) -> Server {
    server(
        name,
        &[("shop.yaml", &shop(CLICK_URL))],
        Settings::default(),
    )
}

// ------------------------------------------------------------ banner

#[test]
fn banner_click_redirects_to_the_creatives_url_and_each_event_counts_once() {
    let _serial = serial();
    let s = banner_server("banner");
    let bid = only_bid(&s, &banner_request());
    won(&s, &bid);
    assert_eq!(bid["crid"], "b300");
    let adm = bid["adm"].as_str().expect("adm");
    let (click, pixel) = banner_urls(adm);
    assert!(path_of(&click).starts_with("/track/click?b="), "{click}");
    assert_eq!(param(&click, "d"), "1");
    assert!(
        path_of(&pixel).starts_with("/track/impression?b="),
        "{pixel}"
    );
    // The browser reaches the landing page only through the tracker.
    assert!(!adm.contains("shop.example/landing"), "{adm}");
    let bid2 = only_bid(&s, &banner_request());
    won(&s, &bid2);
    let (click2, pixel2) = banner_urls(bid2["adm"].as_str().unwrap());
    assert_ne!(click2, click);
    let paid = money(&s, "disp");

    let r = counting(&s, &[(event("click"), 1.0)], || call(&s, &click));
    assert_redirect(&r, CLICK_URL);
    // Clicked again: still taken to the ad, counted once.
    let r = counting(&s, &[(refused("duplicate"), 1.0)], || call(&s, &click));
    assert_redirect(&r, CLICK_URL);

    let r = counting(&s, &[(event("impression"), 1.0)], || call(&s, &pixel));
    assert_pixel(&r);
    for _ in 0..3 {
        let r = counting(&s, &[(refused("duplicate"), 1.0)], || call(&s, &pixel));
        assert_pixel(&r);
    }
    // POST is a call too (some trackers beacon that way), still a duplicate.
    let r = counting(&s, &[(refused("duplicate"), 1.0)], || {
        request(s.bid, "POST", path_of(&pixel), &[], b"")
    });
    assert_pixel(&r);

    // Another bid's events are its own.
    counting(
        &s,
        &[
            (event("impression"), 1.0),
            (event("click"), 1.0),
            (refused("duplicate"), 2.0),
        ],
        || {
            assert_pixel(&call(&s, &pixel2));
            assert_redirect(&call(&s, &click2), CLICK_URL);
            // Then all of the first bid's again: duplicates.
            assert_pixel(&call(&s, &pixel));
            assert_redirect(&call(&s, &click), CLICK_URL);
        },
    );
    assert_eq!(money(&s, "disp"), paid, "tracking never charges");
}

#[test]
fn forged_or_moved_urls_answer_403_and_count_nothing() {
    let _serial = serial();
    let s = banner_server("forged");
    let bid = only_bid(&s, &banner_request());
    won(&s, &bid);
    let (click, pixel) = banner_urls(bid["adm"].as_str().unwrap());
    let click = path_of(&click).to_string();
    let pixel = path_of(&pixel).to_string();
    let nurl = path_of(bid["nurl"].as_str().unwrap()).replace("${AUCTION_PRICE}", "2.50");
    assert!(click.contains("&c=b300&"), "{click}");
    let unsigned = &click[..click.rfind("&s=").unwrap()];
    let nurl_query = nurl.split_once('?').unwrap().1;
    let nurl_signed = &nurl_query[..nurl_query.find("&price=").unwrap()];
    let forged = [
        // Another creative of the config: its URL would be the redirect.
        click.replace("&c=b300&", "&c=b728&"),
        // A click made a beacon, and a beacon a click.
        click.replace("&d=1&", "&d=0&"),
        // An added destination.
        format!("{click}&url=https://evil.example/"),
        format!("{click}&url=https%3A%2F%2Fevil.example%2F"),
        // No signature, or an empty one.
        unsigned.to_string(),
        format!("{unsigned}&s="),
        // The impression pixel's URL as a click, and the reverse.
        format!("/track/click?{}", pixel.split_once('?').unwrap().1),
        format!("/track/impression?{}", click.split_once('?').unwrap().1),
        // A notice URL's query at the click tracker, with and without the
        // price the exchange fills in.
        format!("/track/click?{nurl_query}"),
        format!("/track/click?{nurl_signed}"),
        format!("/track/click?{nurl_signed}&d=1"),
    ];
    let paid = money(&s, "disp");
    for url in &forged {
        let r = counting(&s, &[(refused("signature"), 1.0)], || get(s.bid, url));
        assert_eq!(r.status, 403, "{url}: {}", r.text());
        assert_eq!(r.header("location"), None, "{url}");
    }
    // A tracking URL's query sent as a win notice: refused, charges nothing.
    for tracking in [&click, &pixel] {
        let url = format!("/notice/win?{}", tracking.split_once('?').unwrap().1);
        let r = counting(&s, &[], || get(s.bid, &url));
        assert_eq!(r.status, 403, "{url}: {}", r.text());
    }
    assert_eq!(money(&s, "disp"), paid);
    // Nothing above used up the bid's events: the real URLs count now.
    counting(
        &s,
        &[(event("click"), 1.0), (event("impression"), 1.0)],
        || {
            assert_redirect(&get(s.bid, &click), CLICK_URL);
            assert_pixel(&get(s.bid, &pixel));
        },
    );
    assert_eq!(money(&s, "disp"), paid, "tracking never charges");
}

#[test]
fn an_expired_click_still_redirects_and_counts_as_expired() {
    let _serial = serial();
    let s = banner_server("expired");
    let [(click, pixel), (click2, pixel2)] = [(), ()].map(|_| {
        let bid = only_bid(&s, &banner_request());
        won(&s, &bid);
        banner_urls(bid["adm"].as_str().unwrap())
    });
    // Exactly the notice lifetime (24 h) later: still counted.
    s.clock.advance_millis(24 * 3_600_000);
    counting(&s, &[(event("impression"), 1.0)], || {
        assert_pixel(&call(&s, &pixel2))
    });
    // One millisecond more: the other bid's URLs have expired.
    s.clock.advance_millis(1);
    let paid = money(&s, "disp");
    let r = counting(&s, &[(refused("expired"), 1.0)], || call(&s, &click));
    assert_redirect(&r, CLICK_URL);
    let r = counting(&s, &[(refused("expired"), 1.0)], || call(&s, &pixel));
    assert_pixel(&r);
    let r = counting(&s, &[(refused("expired"), 1.0)], || call(&s, &click2));
    assert_redirect(&r, CLICK_URL);
    assert_eq!(money(&s, "disp"), paid);
}

#[test]
fn test_bids_redirect_but_count_nothing() {
    let _serial = serial();
    let s = banner_server("test-bid");
    let mut req = banner_request();
    req["test"] = json!(1);
    let bid = only_bid(&s, &req);
    assert!(bid["nurl"].as_str().unwrap().contains("&t=1&"), "{bid}");
    let (click, pixel) = banner_urls(bid["adm"].as_str().unwrap());
    counting(&s, &[], || {
        for _ in 0..2 {
            assert_redirect(&call(&s, &click), CLICK_URL);
            assert_pixel(&call(&s, &pixel));
        }
    });
}

#[test]
fn a_click_follows_the_config_and_answers_410_once_the_creative_is_gone() {
    let _serial = serial();
    let dir = common::tempdir("tracking-reload");
    std::fs::write(dir.join("shop.yaml"), shop(CLICK_URL)).unwrap();
    let s = Server::start(&dir, None);
    let bid = only_bid(&s, &banner_request());
    won(&s, &bid);
    let (click, pixel) = banner_urls(bid["adm"].as_str().unwrap());
    let reload = |yaml: &str| {
        std::fs::write(dir.join("shop.yaml"), yaml).unwrap();
        let r = common::admin(s.admin, "/v1/config/reload", b"");
        assert_eq!(r.status, 200, "{}", r.text());
    };
    // The click URL changed: the click goes where the config says now.
    reload(&shop("https://shop.example/winter-sale"));
    let r = counting(&s, &[(event("click"), 1.0)], || call(&s, &click));
    assert_redirect(&r, "https://shop.example/winter-sale");
    // The creative left the config: nowhere to send the browser.
    reload(
        &shop(CLICK_URL)
            .replace("id: b300", "id: b301")
            .replace("creatives: [b300, b728]", "creatives: [b301, b728]"),
    );
    let r = counting(&s, &[(refused("duplicate"), 1.0)], || call(&s, &click));
    assert_eq!(r.status, 410, "{}", r.text());
    assert_eq!(r.header("location"), None);
    // Its impression is still the bid's to count.
    counting(&s, &[(event("impression"), 1.0)], || {
        assert_pixel(&call(&s, &pixel))
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_click_url_with_non_ascii_characters_redirects() {
    let _serial = serial();
    // The config takes it (no space, no control character); a Location
    // header carries only ASCII, so it goes percent-encoded, as a browser
    // would send it.
    let s = server(
        "non-ascii",
        &[("shop.yaml", &shop("https://shop.example/café?q=über"))],
        Settings::default(),
    );
    let bid = only_bid(&s, &banner_request());
    won(&s, &bid);
    let (click, _) = banner_urls(bid["adm"].as_str().unwrap());
    let r = counting(&s, &[(event("click"), 1.0)], || call(&s, &click));
    assert_redirect(&r, "https://shop.example/caf%C3%A9?q=%C3%BCber");
}

// ------------------------------------------------------------ video

/// Each CDATA URL of `xml` with the element holding it (and its `event`
/// attribute, if any): `("Tracking start", url)`.
fn cdata_urls(xml: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(at) = rest.find("<![CDATA[") {
        let open = &rest[..at];
        let tag = &open[open.rfind('<').expect("an element") + 1..];
        let name = tag.split([' ', '>']).next().unwrap();
        let label = match tag.split_once("event=\"") {
            Some((_, e)) => format!("{name} {}", e.split('"').next().unwrap()),
            None => name.to_string(),
        };
        let body = &rest[at + 9..];
        let end = body.find("]]>").expect("CDATA end");
        out.push((label, body[..end].to_string()));
        rest = &body[end..];
    }
    out
}

#[test]
fn vast_trackers_answer_and_count_each_event_once() {
    let _serial = serial();
    let s = server("video", &[("tube.yaml", TUBE)], https());
    // 3.0 (the default) has no companion click tracker in its schema; 4.0
    // has one beside the video's.
    for (protocols, version, click_trackers) in [
        (None, "3.0", vec!["ClickTracking"]),
        (
            Some(json!([7])),
            "4.0",
            vec!["ClickTracking", "CompanionClickTracking"],
        ),
    ] {
        let mut request = common::video_request();
        if let Some(p) = protocols {
            request["imp"][0]["video"]["protocols"] = p;
        }
        let bid = only_bid(&s, &request);
        won(&s, &bid);
        assert_eq!(bid["mtype"], 2, "{bid}");
        let adm = bid["adm"].as_str().expect("adm");
        assert!(adm.contains(&format!("version=\"{version}\"")), "{adm}");
        common::assert_valid_vast(adm);
        let urls = cdata_urls(adm);
        let of = |label: &str| -> Vec<&str> {
            urls.iter()
                .filter(|(l, _)| l == label)
                .map(|(_, u)| u.as_str())
                .collect()
        };
        // The players' own destinations are the creatives' click URLs.
        assert_eq!(of("ClickThrough"), ["https://tube.example/"]);
        assert_eq!(
            of("CompanionClickThrough"),
            ["https://tube.example/companion"]
        );

        let paid = money(&s, "vid");
        let [impression] = of("Impression")[..] else {
            panic!("one Impression: {urls:?}")
        };
        assert!(impression.starts_with("https://bidder.test/track/impression?"));
        let r = counting(&s, &[(event("impression"), 1.0)], || call(&s, impression));
        assert_pixel(&r);

        for (vast, metric) in [
            ("start", "start"),
            ("firstQuartile", "first_quartile"),
            ("midpoint", "midpoint"),
            ("thirdQuartile", "third_quartile"),
            ("complete", "complete"),
            ("creativeView", "creative_view"),
        ] {
            let [url] = of(&format!("Tracking {vast}"))[..] else {
                panic!("one {vast} tracker: {urls:?}")
            };
            assert!(url.starts_with("https://bidder.test/track/event?"), "{url}");
            assert_eq!(param(url, "ev"), vast);
            let r = counting(&s, &[(event(metric), 1.0)], || call(&s, url));
            assert_beacon(&r);
            let r = counting(&s, &[(refused("duplicate"), 1.0)], || call(&s, url));
            assert_beacon(&r);
        }
        // Another event's name on a signed URL.
        let start = of("Tracking start")[0];
        let forged = start.replace("&ev=start&", "&ev=complete&");
        assert_ne!(forged, start);
        let r = counting(&s, &[(refused("signature"), 1.0)], || call(&s, &forged));
        assert_eq!(r.status, 403);

        // The click trackers are beacons (the player opens ClickThrough):
        // 204, no redirect, the click counted once.
        let clicks: Vec<&str> = click_trackers.iter().flat_map(|t| of(t)).collect();
        assert_eq!(clicks.len(), click_trackers.len(), "{urls:?}");
        for (n, url) in clicks.iter().enumerate() {
            assert!(url.starts_with("https://bidder.test/track/click?"), "{url}");
            assert_eq!(param(url, "d"), "0");
            let counted = if n == 0 {
                (event("click"), 1.0)
            } else {
                (refused("duplicate"), 1.0)
            };
            let r = counting(&s, &[counted], || call(&s, url));
            assert_beacon(&r);
        }
        assert_eq!(money(&s, "vid"), paid, "tracking never charges");
    }
}

/// A spot's progress after a loss notice counts nothing; before the win
/// it counts but takes nothing, so the playback after the win counts too
/// (video probe: quartiles of lost bids counted, and a call before the
/// win made the real one a duplicate; an exchange that charges on its
/// billing notice may send it after the player started).
#[test]
fn vast_progress_of_a_lost_bid_counts_nothing_and_before_the_win_takes_nothing() {
    let _serial = serial();
    let s = server("video-progress", &[("tube.yaml", TUBE)], https());
    let request = common::video_request();
    let tracker = |bid: &Value, vast: &str| -> String {
        let urls = cdata_urls(bid["adm"].as_str().unwrap());
        urls.into_iter()
            .find(|(l, _)| *l == format!("Tracking {vast}"))
            .map(|(_, u)| u)
            .unwrap_or_else(|| panic!("a {vast} tracker"))
    };
    let bid = only_bid(&s, &request);
    let start = tracker(&bid, "start");
    let r = counting(&s, &[(event("start"), 1.0)], || call(&s, &start));
    assert_beacon(&r);
    won(&s, &bid);
    let r = counting(&s, &[(event("start"), 1.0)], || call(&s, &start));
    assert_beacon(&r);
    let r = counting(&s, &[(refused("duplicate"), 1.0)], || call(&s, &start));
    assert_beacon(&r);
    let lost = only_bid(&s, &request);
    let r = s.notice(lost["lurl"].as_str().unwrap(), "1.00");
    assert_eq!(r.status, 200, "{}", r.text());
    let complete = tracker(&lost, "complete");
    let r = counting(&s, &[(refused("lost"), 1.0)], || call(&s, &complete));
    assert_beacon(&r);
}

// ------------------------------------------------------------ native

/// A native 1.2 slot asking for a title; `eventtrackers` offered as given.
fn native_request(eventtrackers: Option<Value>) -> Value {
    let mut native = json!({
        "ver": "1.2",
        "assets": [{ "id": 1, "required": 1, "title": { "len": 90 } }]
    });
    if let Some(e) = eventtrackers {
        native["eventtrackers"] = e;
    }
    let mut r = banner_request();
    r["imp"][0] = json!({
        "id": "1",
        "bidfloor": 0.5,
        "native": { "ver": "1.2", "request": native.to_string() }
    });
    r
}

#[test]
fn native_impression_and_click_trackers_answer_and_count_once() {
    let _serial = serial();
    let s = server("native", &[("shop.yaml", &native_shop())], https());
    let offered = json!([{ "event": 1, "methods": [1] }]);
    for eventtrackers in [Some(offered), None] {
        let with_events = eventtrackers.is_some();
        let bid = only_bid(&s, &native_request(eventtrackers));
        won(&s, &bid);
        assert_eq!(bid["mtype"], 4, "{bid}");
        let adm: Value = serde_json::from_str(bid["adm"].as_str().unwrap()).unwrap();
        assert_eq!(adm["link"]["url"], "https://shop.example/tent", "{adm}");
        let impression = if with_events {
            assert_eq!(adm["eventtrackers"][0]["event"], 1, "{adm}");
            assert_eq!(adm["eventtrackers"][0]["method"], 1, "{adm}");
            adm["eventtrackers"][0]["url"].as_str()
        } else {
            adm["imptrackers"][0].as_str()
        }
        .unwrap_or_else(|| panic!("no impression tracker: {adm}"))
        .to_string();
        let click = adm["link"]["clicktrackers"][0]
            .as_str()
            .unwrap_or_else(|| panic!("no click tracker: {adm}"))
            .to_string();
        assert!(impression.starts_with("https://bidder.test/track/impression?"));
        assert!(click.starts_with("https://bidder.test/track/click?"));
        assert_eq!(param(&click, "d"), "0");

        let paid = money(&s, "nat");
        let r = counting(&s, &[(event("impression"), 1.0)], || call(&s, &impression));
        assert_pixel(&r);
        let r = counting(&s, &[(event("click"), 1.0)], || call(&s, &click));
        assert_beacon(&r);
        counting(&s, &[(refused("duplicate"), 2.0)], || {
            assert_pixel(&call(&s, &impression));
            assert_beacon(&call(&s, &click));
        });
        assert_eq!(money(&s, "nat"), paid, "tracking never charges");
    }
}

// ------------------------------------------------------------ keywords

#[test]
fn tracking_urls_name_the_keyword_that_matched() {
    let _serial = serial();
    let books = shop(CLICK_URL).replace(
        "        creatives: [b300, b728]\n",
        "        targeting:\n          keywords:\n            broad: [mystery novel]\n            \
         phrase: [new release]\n            exact: [thriller books]\n        creatives: [b300]\n",
    );
    let plain = shop(CLICK_URL)
        .replace("id: shop", "id: plain")
        .replace("id: b300", "id: p300")
        .replace("id: b728", "id: p728")
        .replace("[b300, b728]", "[p300]")
        .replace("id: o1", "id: o2")
        .replace("id: disp", "id: plain-disp")
        .replace("cpm: 4.00", "cpm: 1.00");
    let s = server(
        "keywords",
        &[("books.yaml", &books), ("plain.yaml", &plain)],
        Settings::default(),
    );
    for (page, keyword) in [
        ("novel, Mystery", Some("broad%3Amystery%20novel")),
        (
            "the new release of the year",
            Some("phrase%3Anew%20release"),
        ),
        ("Thriller Books", Some("exact%3Athriller%20books")),
        // No keyword of `disp` on the page: the plain line item bids.
        ("cookbooks", None),
    ] {
        let mut req = banner_request();
        req["site"]["keywords"] = json!(page);
        let bid = only_bid(&s, &req);
        won(&s, &bid);
        let (click, pixel) = banner_urls(bid["adm"].as_str().unwrap());
        assert_eq!(param(&click, "k"), keyword.unwrap_or(""), "{page}");
        assert_eq!(param(&pixel, "k"), keyword.unwrap_or(""), "{page}");
        // The keyword is signed: another one is a forgery.
        let forged = click.replace(
            &format!("&k={}&", keyword.unwrap_or("")),
            "&k=exact%3Afree%20ebook&",
        );
        assert_ne!(forged, click);
        let r = counting(&s, &[(refused("signature"), 1.0)], || call(&s, &forged));
        assert_eq!(r.status, 403);
        let r = counting(&s, &[(event("click"), 1.0)], || call(&s, &click));
        assert_redirect(&r, CLICK_URL);
    }
}

// ------------------------------------------------------------ won or not

/// Whoever saw a bid's markup can call its tracking URLs, won or not (a
/// header-bidding page sees every bid's): its impression and click count
/// once the bid is won, at their own times, and never if it is lost or
/// not won in time.
#[test]
fn impressions_and_clicks_count_once_their_bid_is_won_and_never_if_lost() {
    let _serial = serial();
    let s = banner_server("won-or-not");
    let urls = |bid: &Value| banner_urls(bid["adm"].as_str().unwrap());
    // Called before the win notice: they wait for it.
    let bid = only_bid(&s, &banner_request());
    let (click, pixel) = urls(&bid);
    counting(&s, &[], || {
        assert_pixel(&call(&s, &pixel));
        assert_redirect(&call(&s, &click), CLICK_URL);
    });
    let r = counting(&s, &[(refused("duplicate"), 1.0)], || call(&s, &pixel));
    assert_pixel(&r);
    counting_soon(
        &s,
        &[(event("impression"), 1.0), (event("click"), 1.0)],
        || won(&s, &bid),
    );
    // Lost after its pixel, lost before it, lost and forgotten (its
    // reservation over) before it, or no notice at all: none counts. Each
    // waits, since a win may still come after a loss (and is charged),
    // and goes once the longest reservation (60 s) and the late-win
    // horizon (5 min) have passed without one.
    let bids: Vec<Value> = (0..4).map(|_| only_bid(&s, &banner_request())).collect();
    let lose = |bid: &Value| {
        let r = s.notice(bid["lurl"].as_str().unwrap(), "1.00");
        assert_eq!(r.status, 200, "{}", r.text());
    };
    counting(&s, &[], || {
        assert_pixel(&call(&s, &urls(&bids[0]).1));
        lose(&bids[0]);
        lose(&bids[1]);
        assert_redirect(&call(&s, &urls(&bids[1]).0), CLICK_URL);
        assert_pixel(&call(&s, &urls(&bids[3]).1));
        lose(&bids[2]);
        s.clock.advance_millis(61_000);
        s.app.expire_reservations();
        let key = ledger::BidKey::of(bids[2]["id"].as_str().unwrap()).unwrap();
        assert_eq!(s.app.ledger().outcome(key), ledger::Outcome::Unknown);
        assert_pixel(&call(&s, &urls(&bids[2]).1));
    });
    counting_soon(&s, &[(refused("not_won"), 3.0)], || {
        s.clock.advance_millis(5 * 60_000);
        s.app.upkeep();
    });
    counting_soon(&s, &[(refused("not_won"), 1.0)], || {
        s.clock.advance_millis(61_000);
        s.app.upkeep();
    });
}

/// A bid won and billed on a later notice waits for it past the late-win
/// horizon (its pixel counts with the billing notice, whenever that comes
/// within the notice lifetime); a win after a loss notice still counts.
#[test]
fn a_bid_billed_later_or_won_after_a_loss_counts_when_charged() {
    let _serial = serial();
    let billing = "exchange:\n  id: default\n  name: Default\n  charge_on: billing\n";
    let s = server(
        "billed-later",
        &[("shop.yaml", &shop(CLICK_URL)), ("default.yaml", billing)],
        Settings::default(),
    );
    let bid = only_bid(&s, &banner_request());
    let (_, pixel) = banner_urls(bid["adm"].as_str().unwrap());
    counting(&s, &[], || {
        assert_eq!(s.notice(bid["nurl"].as_str().unwrap(), "1.00").status, 200);
        assert_pixel(&call(&s, &pixel));
    });
    // An hour on: still waiting.
    counting(&s, &[], || {
        s.clock.advance_millis(3_600_000);
        s.app.upkeep();
    });
    counting_soon(&s, &[(event("impression"), 1.0)], || {
        let r = s.notice(bid["burl"].as_str().unwrap(), "1.00");
        assert_eq!(r.status, 200, "{}", r.text());
    });

    let s = banner_server("won-after-loss");
    let bid = only_bid(&s, &banner_request());
    let (click, _) = banner_urls(bid["adm"].as_str().unwrap());
    counting(&s, &[], || {
        assert_redirect(&call(&s, &click), CLICK_URL);
        assert_eq!(s.notice(bid["lurl"].as_str().unwrap(), "1.00").status, 200);
    });
    counting_soon(&s, &[(event("click"), 1.0)], || won(&s, &bid));
}

// ------------------------------------------------------------ money

#[test]
fn tracking_never_charges() {
    let _serial = serial();
    let s = banner_server("no-charge");
    let bid = only_bid(&s, &banner_request());
    let (click, pixel) = banner_urls(bid["adm"].as_str().unwrap());
    let before = s.app.line_item_spent("disp").lifetime;
    let r = s.notice(bid["nurl"].as_str().unwrap(), "2.50");
    assert_eq!(r.status, 200, "{}", r.text());
    let charged = money(&s, "disp");
    assert_eq!(
        charged.0.as_i64() - before.as_i64(),
        2_500,
        "the win charges"
    );
    for _ in 0..3 {
        assert_pixel(&call(&s, &pixel));
        assert_redirect(&call(&s, &click), CLICK_URL);
    }
    assert_eq!(money(&s, "disp"), charged);
    // Nor does tracking a bid that was never won charge it.
    let (click, pixel) = banner_urls(only_bid(&s, &banner_request())["adm"].as_str().unwrap());
    let held = money(&s, "disp");
    assert_pixel(&call(&s, &pixel));
    assert_redirect(&call(&s, &click), CLICK_URL);
    assert_eq!(money(&s, "disp"), held);
}

/// `shop` with the shared native ad and native line item `nat`.
fn native_shop() -> String {
    let head = "advertiser:
  id: shop
  name: Shop
  domains: [shop.example]
  categories: [IAB22]
creatives:
";
    let orders = "orders:
  - id: o1
    service: self_service
    budget: 1000.00
    flight: { start: 2026-11-01, end: 2026-12-31 }
    line_items:
      - id: nat
        media: native
        cpm: 3.00
        budget: { daily: 100.00 }
        creatives: [tent-ad]
";
    format!("{head}{NATIVE_AD}{orders}")
}

// ------------------------------------------------------------ signing

/// A fleet switching `--url-signatures` (or rolling a version forward)
/// holds URLs written both ways: a replica writing one way counts the
/// events and charges the wins of bids the other way wrote.
#[test]
fn urls_written_per_bid_or_per_url_count_and_charge_on_either_replica() {
    let _serial = serial();
    let with = |how| Settings {
        notice_secret: Some("one secret for the whole fleet, 32 bytes+".into()),
        url_signatures: how,
        ..Settings::default()
    };
    let files = [("shop.yaml", shop(CLICK_URL))];
    let files: Vec<(&str, &str)> = files.iter().map(|(f, y)| (*f, y.as_str())).collect();
    let per_bid = server(
        "per-bid",
        &files,
        with(bidder::notice::UrlSignatures::PerBid),
    );
    let per_url = server(
        "per-url",
        &files,
        with(bidder::notice::UrlSignatures::PerUrl),
    );
    for (writer, reader) in [(&per_bid, &per_url), (&per_url, &per_bid)] {
        let bid = only_bid(writer, &banner_request());
        let (click, pixel) = banner_urls(bid["adm"].as_str().unwrap());
        // Read, and waiting for the bid's charge (alone, a bid not known
        // is not charged yet).
        counting(reader, &[], || {
            assert_pixel(&call(reader, &pixel));
            assert_redirect(&call(reader, &click), CLICK_URL);
        });
        let before = money(reader, "disp").0;
        let win = counting_soon(
            reader,
            &[(event("impression"), 1.0), (event("click"), 1.0)],
            || reader.notice(bid["nurl"].as_str().unwrap(), "1.50"),
        );
        assert!(win.status < 300, "{}", win.text());
        assert_eq!(
            money(reader, "disp").0.as_i64(),
            before.as_i64() + 1_500,
            "charged once"
        );
    }
}

//! Work and memory per request are bounded, whatever an exchange (or
//! anyone who finds the bid port) sends.

mod common;

use common::{banner_request, Server};
use serde_json::{json, Value};

fn reason(s: &Server, r: &Value, li: &str) -> String {
    let item = common::verdict(&common::explain(s, r), li);
    if item["bids"] == json!(true) {
        "bid".into()
    } else {
        item["reason"].as_str().unwrap_or("?").to_string()
    }
}

#[test]
fn imps_past_the_first_64_get_no_bid() {
    let s = Server::example();
    let imp = |i: usize, fits: bool| {
        let (w, h) = if fits { (300, 250) } else { (1, 1) };
        json!({ "id": format!("imp-{i}"), "banner": { "w": w, "h": h } })
    };
    for (fitting, bids) in [(10usize, true), (63, true), (64, false), (99, false)] {
        let mut r = banner_request();
        r["site"]["page"] = json!("https://shop.example/dp/B0TENT0001");
        r["imp"] = (0..100).map(|i| imp(i, i == fitting)).collect();
        let reply = s.bid(&r.to_string());
        assert_eq!(reply.status == 200, bids, "fitting imp at {fitting}");
        if bids {
            let v = reply.json();
            assert_eq!(v["seatbid"][0]["bid"][0]["impid"], format!("imp-{fitting}"));
        }
    }
}

#[test]
fn overlong_user_ids_count_as_absent() {
    let s = Server::example();
    // u-1001 viewed a tent: the remarketing line item bids for them.
    let mut r = banner_request();
    r["user"] = json!({ "buyeruid": "u-1001" });
    assert_eq!(reason(&s, &r, "tent-remarketing-display"), "bid");
    // The same id padded past 128 bytes is nobody: no audience, and a
    // capped line item cannot count them.
    r["user"] = json!({ "buyeruid": format!("u-1001{}", " ".repeat(200)) });
    r["site"]["page"] = json!("https://shop.example/dp/B0TENT0001");
    assert_eq!(reason(&s, &r, "tent-remarketing-display"), "frequency");
    // Falling through to the next id when it is usable.
    r["user"] = json!({ "buyeruid": "x".repeat(129), "id": "u-1001" });
    r["site"]["page"] = json!("https://news.example/");
    assert_eq!(reason(&s, &r, "tent-remarketing-display"), "bid");
}

/// TCF v2 consent to purposes 1–4 for vendor 755 (from the privacy module's
/// test encoder).
const CONSENT_755: &str = "CP3tAUAP3tAUAAHABBENBkEgAP_gAAAAAAYgF5gAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAgAAAAA";

#[test]
fn overlong_consent_strings_are_not_decoded() {
    let s = Server::start_with(
        &common::repo().join("examples/config"),
        Some(&common::repo().join("examples/data")),
        bidder::Settings {
            privacy: bidder::privacy::PrivacySettings { vendor_id: 755 },
            ..bidder::Settings::default()
        },
    );
    let li = "tent-remarketing-display";
    let mut r = banner_request();
    r["regs"] = json!({ "gdpr": 1 });
    r["user"]["consent"] = json!(CONSENT_755);
    assert_eq!(reason(&s, &r, li), "bid");
    // The same consent with 16 KB of segments after it: the decoder would
    // read the core and grant; past the bound nothing is decoded.
    let padded = format!("{CONSENT_755}.{}", "A".repeat(16 * 1024));
    r["user"]["consent"] = json!(padded);
    assert_eq!(reason(&s, &r, li), "privacy");
}

#[test]
fn sizes_past_the_first_64_of_an_imp_are_not_read() {
    let s = Server::example();
    // One imp offering 9,000 sizes: read in bounded time, and only its
    // first 64 count. (40,000, which fit under the 1 MB limit, are refused:
    // see `a_request_of_more_objects_than_the_bound_is_refused`.)
    for (fitting, bids) in [(10usize, true), (63, true), (64, false), (8_999, false)] {
        let formats: Vec<Value> = (0..9_000usize)
            .map(|i| {
                if i == fitting {
                    json!({ "w": 300, "h": 250 })
                } else {
                    json!({ "w": 1 + i % 1000, "h": 1000 + i / 1000 })
                }
            })
            .collect();
        let mut r = banner_request();
        r["site"]["page"] = json!("https://shop.example/dp/B0TENT0001");
        r["imp"][0]["banner"] = json!({ "format": formats });
        assert_eq!(
            s.bid(&r.to_string()).status == 200,
            bids,
            "300x250 at {fitting}"
        );
    }
}

#[test]
fn a_request_of_more_objects_than_the_bound_is_refused() {
    let s = Server::example();
    // 40,000 sizes fit in the 1 MB body limit and would take megabytes once
    // read; the reader stops at `ortb::MAX_LISTED_OBJECTS` and the exchange
    // gets a 400 that says why.
    let formats: Vec<Value> = (0..40_000).map(|_| json!({ "w": 300, "h": 250 })).collect();
    let mut r = banner_request();
    r["imp"][0]["banner"] = json!({ "format": formats });
    let reply = s.bid(&r.to_string());
    assert_eq!(reply.status, 400);
    let body = String::from_utf8_lossy(&reply.body);
    assert!(
        body.contains("more than 10000 objects in the request's lists"),
        "{body}"
    );
    // The server goes on bidding.
    assert_eq!(s.bid(&banner_request().to_string()).status, 200);
}

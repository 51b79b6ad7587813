//! `/v1/explain` on the admin port: every line item, would it bid, and if
//! not the first reason.

mod common;

use common::{banner_request, explain, verdict, Server};
use serde_json::{json, Value};

fn reason(s: &Server, req: &Value, line_item: &str) -> String {
    let v = explain(s, req);
    let x = verdict(&v, line_item);
    assert_eq!(x["bids"], false, "{x}");
    x["reason"].as_str().unwrap().to_string()
}

#[test]
fn every_line_item_gets_a_verdict() {
    let s = Server::example();
    let v = explain(&s, &banner_request());
    assert_eq!(v["line_items"].as_array().unwrap().len(), 5);
    let x = verdict(&v, "tent-remarketing-display");
    assert_eq!(x["bids"], true);
    assert_eq!(x["imp"], "1");
    assert_eq!(x["price"].as_f64(), Some(6.0));
    assert_eq!(x["creative"], "tent-banner-300x250");
    assert_eq!(verdict(&v, "tent-ctv-video")["reason"], "media");
    assert_eq!(verdict(&v, "tent-audio-music")["reason"], "media");
    assert_eq!(verdict(&v, "nw-mobile-readers")["reason"], "device");
    assert_eq!(verdict(&v, "nw-deal-premium")["reason"], "deal");
}

#[test]
fn first_reason_per_rule() {
    let s = Server::example();
    let li = "tent-remarketing-display";
    let mut r = banner_request();
    r["device"]["geo"]["country"] = json!("GBR");
    assert_eq!(reason(&s, &r, li), "country");

    let mut r = banner_request();
    r["imp"][0]["banner"] = json!({ "w": 1, "h": 1 });
    assert_eq!(reason(&s, &r, li), "size");
    // A banner of no usable size is still a banner: the size is missing,
    // not the medium.
    for banner in [json!({}), json!({ "w": 0, "h": 0 }), json!({ "w": 300 })] {
        r["imp"][0]["banner"] = banner.clone();
        assert_eq!(reason(&s, &r, li), "size", "{banner}");
    }
    r["imp"][0].as_object_mut().unwrap().remove("banner");
    r["imp"][0]["video"] = json!({ "mimes": ["video/mp4"], "w": 640, "h": 360 });
    assert_eq!(reason(&s, &r, li), "media");

    // The banner's types: our markup is an XHTML banner (btype 2), its
    // image a jpg (mimes).
    let mut r = banner_request();
    r["imp"][0]["banner"]["btype"] = json!([2]);
    assert_eq!(reason(&s, &r, li), "attribute");
    assert_eq!(s.bid(&r.to_string()).status, 204);
    // A type nobody can read may be ours: blocked as well.
    r["imp"][0]["banner"]["btype"] = json!([1, "x"]);
    assert_eq!(reason(&s, &r, li), "attribute");
    r["imp"][0]["banner"]["btype"] = json!([1, 3, 4]);
    assert_eq!(verdict(&explain(&s, &r), li)["bids"], true);
    r["imp"][0]["banner"]["mimes"] = json!(["image/gif", "image/png"]);
    assert_eq!(reason(&s, &r, li), "creative");
    assert_eq!(verdict(&explain(&s, &r), li)["detail"], "image_type");
    assert_eq!(s.bid(&r.to_string()).status, 204);
    for mimes in [json!(["image/jpeg"]), json!(["image/gif", "IMAGE/JPG"])] {
        r["imp"][0]["banner"]["mimes"] = mimes.clone();
        assert_eq!(verdict(&explain(&s, &r), li)["bids"], true, "{mimes}");
    }

    let mut r = banner_request();
    r["imp"][0]["bidfloor"] = json!(9.0);
    assert_eq!(reason(&s, &r, li), "floor");
    // A floor or a floor currency that is there but unreadable is no
    // floor to bid under: read as none (or USD), bids went in under the
    // floor the exchange meant.
    for floor in [json!("7.0 USD"), json!([7]), json!("NaN"), json!(true)] {
        r["imp"][0]["bidfloor"] = floor.clone();
        assert_eq!(reason(&s, &r, li), "floor", "{floor}");
        assert_eq!(s.bid(&r.to_string()).status, 204, "{floor}");
    }
    r["imp"][0]["bidfloor"] = json!(0.5);
    for cur in [json!(["EUR"]), json!({ "code": "EUR" }), json!(true)] {
        r["imp"][0]["bidfloorcur"] = cur.clone();
        assert_eq!(reason(&s, &r, li), "currency", "{cur}");
    }
    r["imp"][0]["bidfloorcur"] = json!("");
    assert_eq!(verdict(&explain(&s, &r), li)["bids"], true, "empty is USD");

    let mut r = banner_request();
    r["badv"] = json!(["acme-outdoor.example"]);
    assert_eq!(reason(&s, &r, li), "blocked");
    // Publishers type URLs; the exchange passes them on as they are.
    for listed in ["https://www.acme-outdoor.example/", "acme-outdoor.example."] {
        r["badv"] = json!(["other.example", listed]);
        assert_eq!(reason(&s, &r, li), "blocked", "{listed}");
        assert_eq!(s.bid(&r.to_string()).status, 204, "{listed}");
    }
    r["badv"] = json!(["https://acme-outdoor.example.other.example/"]);
    assert_eq!(verdict(&explain(&s, &r), li)["bids"], true);

    // `bcat` in a taxonomy our IAB 1.0 categories cannot be compared with
    // blocks the advertiser; the same codes as IAB 1.0 do not.
    let mut r = banner_request();
    r["bcat"] = json!(["1"]);
    r["cattax"] = json!(3);
    assert_eq!(reason(&s, &r, li), "blocked");
    r["cattax"] = json!(1);
    assert_eq!(verdict(&explain(&s, &r), li)["bids"], true);
    r.as_object_mut().unwrap().remove("cattax");
    assert_eq!(verdict(&explain(&s, &r), li)["bids"], true);
    r["bcat"] = json!([]);
    r["cattax"] = json!(3);
    assert_eq!(
        verdict(&explain(&s, &r), li)["bids"],
        true,
        "nothing blocked"
    );

    // `acat` (2.6): only the advertiser categories listed, subcategories
    // included, in any case; in another taxonomy, none of ours.
    let mut r = banner_request();
    for (acat, bids) in [
        (json!(["IAB1"]), false),
        (json!(["IAB17"]), true),
        (json!(["iab17-18", "IAB1"]), true),
        (json!(["IAB17-1"]), false),
    ] {
        r["acat"] = acat.clone();
        assert_eq!(verdict(&explain(&s, &r), li)["bids"], bids, "{acat}");
        if !bids {
            assert_eq!(reason(&s, &r, li), "blocked", "{acat}");
            assert_eq!(s.bid(&r.to_string()).status, 204, "{acat}");
        }
    }
    r["acat"] = json!(["IAB17"]);
    r["cattax"] = json!(2);
    assert_eq!(reason(&s, &r, li), "blocked");

    let mut r = banner_request();
    r["user"] = json!({ "buyeruid": "stranger" });
    assert_eq!(reason(&s, &r, li), "audience");

    let mut r = banner_request();
    r["cur"] = json!(["XAU"]);
    assert_eq!(reason(&s, &r, li), "currency");
    // The example's fixed rates (as of 2026-11-30) say they price for
    // ten years: past a week from their as_of, EUR is still answered.
    r["cur"] = json!(["EUR"]);
    s.clock.set(common::ts("2026-12-12T12:00:00Z"));
    assert_eq!(verdict(&explain(&s, &r), li)["bids"], true);
    s.clock.set(common::ts("2026-11-24T12:00:00Z"));
    // Without that bound, rates more than --max-rates-age-days (7) from
    // today price nothing.
    let dir = common::tempdir("explain-rates");
    for f in std::fs::read_dir(common::repo().join("examples/config")).unwrap() {
        let f = f.unwrap().path();
        let text = std::fs::read_to_string(&f).unwrap();
        let text = text.replace("  max_age_days: 3650\n", "");
        std::fs::write(dir.join(f.file_name().unwrap()), text).unwrap();
    }
    let daily = Server::start(&dir, Some(&common::repo().join("examples/data")));
    daily.clock.set(common::ts("2026-12-07T23:59:59Z"));
    assert_eq!(verdict(&explain(&daily, &r), li)["bids"], true);
    daily.clock.set(common::ts("2026-12-08T00:00:00Z"));
    assert_eq!(reason(&daily, &r, li), "currency");
    // Dated as far ahead, they are no fresher (a year typed wrong).
    daily.clock.set(common::ts("2026-11-23T00:00:00Z"));
    assert_eq!(verdict(&explain(&daily, &r), li)["bids"], true);
    daily.clock.set(common::ts("2026-11-22T23:59:59Z"));
    assert_eq!(reason(&daily, &r, li), "currency");
    drop(daily);
    let _ = std::fs::remove_dir_all(&dir);

    let mut r = banner_request();
    r["device"]["devicetype"] = json!(4);
    r["imp"][0]["banner"] = json!({ "w": 320, "h": 50 });
    r["user"] = json!({ "buyeruid": "u-1005" });
    assert_eq!(reason(&s, &r, "nw-mobile-readers"), "keyword");

    s.clock.set(common::ts("2031-01-02T00:00:00Z"));
    assert_eq!(reason(&s, &banner_request(), li), "flight");
}

#[test]
fn explain_neither_spends_nor_counts() {
    let s = Server::example();
    let body = banner_request();
    for _ in 0..5 {
        assert_eq!(
            verdict(&explain(&s, &body), "tent-remarketing-display")["bids"],
            true
        );
    }
    // Three real bids reach the frequency cap; explain then says so.
    for _ in 0..3 {
        assert_eq!(s.bid(&body.to_string()).status, 200);
    }
    assert_eq!(reason(&s, &body, "tent-remarketing-display"), "frequency");
}

#[test]
fn bad_explain_requests() {
    let s = Server::example();
    assert_eq!(common::admin(s.admin, "/v1/explain", b"{").status, 400);
    assert_eq!(
        common::admin(s.admin, "/v1/explain", br#"{"id":"x"}"#).status,
        400
    );
    let auth = format!("Bearer {}", common::ADMIN_TOKEN);
    let get = common::request(
        s.admin,
        "GET",
        "/v1/explain",
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(get.status, 405);
}

/// Explain takes `exchange` once and nothing else, as reports refuse what
/// they do not take: a typo explained the default profile without a word
/// (attacker/operator probe).
#[test]
fn explain_refuses_parameters_it_does_not_take() {
    let s = Server::example();
    let body = banner_request().to_string();
    for (query, said) in [
        ("exchnage=x", "unknown parameter \"exchnage\""),
        ("exchange=a&exchange=b", "exchange is given twice"),
    ] {
        let r = common::admin(s.admin, &format!("/v1/explain?{query}"), body.as_bytes());
        assert_eq!(r.status, 400, "{query}");
        assert!(r.text().contains(said), "{}", r.text());
    }
    let r = common::admin(s.admin, "/v1/explain?", body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
}

/// The exchange explain names for the plain bid endpoint, `default`, can be
/// given back: it explains that endpoint (it was a 404, "no exchange
/// profile has the id", for the name explain itself had printed).
#[test]
fn explain_takes_back_the_default_exchange_it_names() {
    let s = Server::example();
    let body = banner_request().to_string();
    let plain = common::admin(s.admin, "/v1/explain", body.as_bytes());
    assert_eq!(plain.status, 200, "{}", plain.text());
    let plain: Value = serde_json::from_str(&plain.text()).unwrap();
    assert_eq!(plain["exchange"], "default");
    let named = common::admin(s.admin, "/v1/explain?exchange=default", body.as_bytes());
    assert_eq!(named.status, 200, "{}", named.text());
    let named: Value = serde_json::from_str(&named.text()).unwrap();
    assert_eq!(named, plain);
    let unknown = common::admin(s.admin, "/v1/explain?exchange=nowhere", body.as_bytes());
    assert_eq!(unknown.status, 404, "{}", unknown.text());
}

//! Currencies, native ads, secure slots, blocked attributes and
//! multi-format imps, over HTTP on configs written for each test. Prices
//! are checked as the exact text of the answer; every no-bid also checks
//! the reason `/v1/explain` gives.

mod common;

use bidder::Settings;
use common::{banner_request, explain, verdict, Server, NATIVE_AD};
use config::Micros;
use serde_json::{json, Value};

/// What the bidder's public URL is in tests that need https trackers.
const PUBLIC_HTTPS: &str = "https://bidder.test";

const RATES: &str = "\
currency_rates:
  base: USD
  as_of: 2026-11-23
  rates:
    EUR: 0.95
    JPY: 155.3
    GBP: 0.79
";

/// A 300x250 banner creative; `id`, `image` URL and extra lines (indented
/// for a creative) given.
fn banner_creative(id: &str, image: &str, extra: &str) -> String {
    format!(
        "  - id: {id}\n    format: display\n    size: 300x250\n    image_url: {image}\n    \
         click_url: https://shop.example/\n{extra}"
    )
}

const VIDEO_AD: &str = r#"  - id: v15
    format: video
    duration_s: 15
    media:
      - { url: https://cdn.shop.example/v15.mp4, mime: video/mp4, width: 1280, height: 720, bitrate_kbps: 2000 }
    click_url: https://shop.example/
"#;

/// A line item, indented for `line_items:`.
fn line_item(id: &str, media: &str, cpm: &str, creatives: &str) -> String {
    format!(
        "      - id: {id}\n        media: {media}\n        cpm: {cpm}\n        budget: {{ daily: \
         100.00 }}\n        creatives: [{creatives}]\n"
    )
}

/// Advertiser `shop` with these creatives and line items (order `o1`).
fn advertiser(creatives: &str, line_items: &str) -> String {
    format!(
        "advertiser:\n  id: shop\n  name: Shop\n  domains: [shop.example]\n  categories: \
         [IAB22]\ncreatives:\n{creatives}orders:\n  - id: o1\n    service: self_service\n    \
         budget: 1000.00\n    flight: {{ start: 2026-11-01, end: 2026-12-31 }}\n    \
         line_items:\n{line_items}"
    )
}

/// A server on `files` (name, YAML) in a fresh directory; its public URL
/// https when `https` says so.
fn server(name: &str, files: &[(&str, &str)], https: bool) -> Server {
    let dir = common::tempdir(&format!("cn-{name}"));
    for (file, yaml) in files {
        std::fs::write(dir.join(file), yaml).unwrap();
    }
    let mut settings = Settings::default();
    if https {
        settings.public_url = PUBLIC_HTTPS.into();
    }
    Server::start_with(&dir, None, settings)
}

/// One display line item `li` at `cpm` on the https banner, with rates.
fn display_server(name: &str, cpm: &str) -> Server {
    let shop = advertiser(
        &banner_creative("b300", "https://cdn.shop.example/b.png", ""),
        &line_item("li", "display", cpm, "b300"),
    );
    server(name, &[("shop.yaml", &shop), ("rates.yaml", RATES)], false)
}

/// Asserts the bid endpoint answers 204, and returns the reason explain
/// gives for `li`.
fn no_bid(s: &Server, req: &Value, li: &str) -> String {
    let r = s.bid(&req.to_string());
    assert_eq!(r.status, 204, "expected no bid: {}", r.text());
    let x = verdict(&explain(s, req), li);
    assert_eq!(x["bids"], false, "{x}");
    x["reason"].as_str().unwrap().to_string()
}

/// The answer (200, exactly one bid): its raw text and the bid.
fn one_bid(s: &Server, req: &Value) -> (String, Value, Value) {
    let r = s.bid(&req.to_string());
    assert_eq!(r.status, 200, "expected a bid: {}", r.text());
    let resp = r.json();
    let bids = resp["seatbid"][0]["bid"].as_array().unwrap().clone();
    assert_eq!(bids.len(), 1, "{resp}");
    (r.text(), resp, bids[0].clone())
}

fn with_cur(cur: Value) -> Value {
    let mut r = banner_request();
    r["cur"] = cur;
    r
}

// ------------------------------------------------------------ currencies

/// Converted, the price is rounded up: a bid at a floor that came to USD
/// through another rate fell a fraction of a micro under it (exchanges
/// probe). The charge stays capped at the USD price signed into the
/// notice.
#[test]
fn bids_in_the_requested_currency_rounded_up() {
    let s = display_server("rounding", "1.234567");
    // USD allowed: no conversion.
    let (text, resp, _) = one_bid(&s, &with_cur(json!(["EUR", "USD"])));
    assert!(text.contains("\"price\":1.234567,"), "{text}");
    assert_eq!(resp["cur"], "USD");

    // 1.234567 x 0.95 = 1.17283865: up to 1.172839.
    let (text, resp, bid) = one_bid(&s, &with_cur(json!(["EUR"])));
    assert!(text.contains("\"price\":1.172839,"), "{text}");
    assert_eq!(resp["cur"], "EUR");
    let nurl = bid["nurl"].as_str().unwrap();
    assert!(nurl.contains("&cur=EUR&r=950000000&"), "{nurl}");

    // 1.234567 x 155.3 = 191.7282551: up to 191.728256.
    let (text, resp, _) = one_bid(&s, &with_cur(json!(["JPY"])));
    assert!(text.contains("\"price\":191.728256,"), "{text}");
    assert_eq!(resp["cur"], "JPY");

    // Codes are read without regard to case; the answer names it in capitals.
    let (_, resp, _) = one_bid(&s, &with_cur(json!(["eur"])));
    assert_eq!(resp["cur"], "EUR");

    // Explain prices in the answer's currency too.
    let req = with_cur(json!(["JPY"]));
    assert_eq!(explain(&s, &req)["currency"], "JPY");
    assert_eq!(
        verdict(&explain(&s, &req), "li")["price"].as_f64(),
        Some(191.728256)
    );
}

#[test]
fn a_foreign_floor_converts_up_and_clears_only_at_the_boundary() {
    let s = display_server("floor-boundary", "4.00");
    let floored = |cur: &str, floor: Value| {
        let mut r = with_cur(json!([cur]));
        r["imp"][0]["bidfloor"] = floor;
        r["imp"][0]["bidfloorcur"] = json!(cur);
        r
    };
    // EUR 3.80 is exactly USD 4.00: the 4.00 line item clears it and bids
    // EUR 3.8.
    let (text, resp, _) = one_bid(&s, &floored("EUR", json!(3.80)));
    assert!(text.contains("\"price\":3.8,"), "{text}");
    assert_eq!(resp["cur"], "EUR");
    // A micro more is USD 4.000002 once rounded up: under the floor.
    assert_eq!(no_bid(&s, &floored("EUR", json!(3.800001)), "li"), "floor");
    // JPY 621.2 is USD 4.00 exactly; 621.200001 is not.
    let (text, _, _) = one_bid(&s, &floored("JPY", json!(621.2)));
    assert!(text.contains("\"price\":621.2,"), "{text}");
    assert_eq!(
        no_bid(&s, &floored("JPY", json!(621.200001)), "li"),
        "floor"
    );

    // Where the rounding direction decides: EUR 3.800001 is USD 4.00000105,
    // above a 4.000001 CPM (whose bid, EUR 3.80000095, goes out rounded up
    // as 3.800001). Rounded down, the floor would let it through.
    let s = display_server("floor-up", "4.000001");
    assert_eq!(no_bid(&s, &floored("EUR", json!(3.800001)), "li"), "floor");
    let (text, _, _) = one_bid(&s, &floored("EUR", json!(3.80)));
    assert!(text.contains("\"price\":3.800001,"), "{text}");
}

/// A bid at a USD floor answered in another currency is not a fraction of
/// a micro under it: 7.777777 USD is 7.38888815 EUR, answered as 7.388889
/// (as 7.388888, rounded down, the exchange refused it: exchanges probe).
#[test]
fn a_bid_at_its_floor_in_another_currency_is_not_under_it() {
    let s = display_server("floor-other-currency", "7.777777");
    let mut r = with_cur(json!(["EUR"]));
    r["imp"][0]["bidfloor"] = json!(7.777777);
    let (text, resp, _) = one_bid(&s, &r);
    assert_eq!(resp["cur"], "EUR");
    assert!(text.contains("\"price\":7.388889,"), "{text}");
}

#[test]
fn currencies_without_a_rate() {
    let s = display_server("no-rate", "4.00");
    let req = with_cur(json!(["CHF"]));
    assert_eq!(no_bid(&s, &req, "li"), "currency");
    assert_eq!(explain(&s, &req)["currency"], Value::Null);

    // The first listed currency with a rate.
    let (text, resp, _) = one_bid(&s, &with_cur(json!(["CHF", "EUR", "JPY"])));
    assert_eq!(resp["cur"], "EUR");
    assert!(text.contains("\"price\":3.8,"), "{text}");

    // A floor in a currency without a rate cannot be compared.
    let mut req = with_cur(json!(["USD"]));
    req["imp"][0]["bidfloorcur"] = json!("CHF");
    assert_eq!(no_bid(&s, &req, "li"), "currency");
}

#[test]
fn no_cur_bids_usd_over_a_converted_gbp_floor() {
    let s = display_server("gbp-floor", "4.00");
    let gbp_floor = |floor: Value| {
        let mut r = banner_request();
        r.as_object_mut().unwrap().remove("cur");
        r["imp"][0]["bidfloor"] = floor;
        r["imp"][0]["bidfloorcur"] = json!("GBP");
        r
    };
    // GBP 3.16 at 0.79 is USD 4.00 exactly.
    let (text, resp, bid) = one_bid(&s, &gbp_floor(json!(3.16)));
    assert_eq!(resp["cur"], "USD");
    assert!(text.contains("\"price\":4.0,"), "{text}");
    assert!(bid["nurl"]
        .as_str()
        .unwrap()
        .contains("&cur=USD&r=1000000000&"));
    assert_eq!(no_bid(&s, &gbp_floor(json!(3.160001)), "li"), "floor");
}

#[test]
fn a_win_in_eur_charges_its_usd_value_rounded_up_never_above_the_bid() {
    let s = display_server("eur-win", "4.00");
    let req = with_cur(json!(["EUR"]));
    let (_, _, bid) = one_bid(&s, &req);
    let nurl = bid["nurl"].as_str().unwrap().to_string();
    let held = s.app.line_item_spent("li").held_today;
    assert_eq!(held, Micros(4_000), "a USD 4.00 CPM holds 0.004");

    // A signed rate cannot be changed to charge less.
    let forged = nurl.replace("&r=950000000&", "&r=1000000000&");
    assert!(s.notice(&forged, "1.00").status >= 400);
    assert_eq!(s.app.line_item_spent("li").today, Micros::ZERO);

    // EUR 1.00 is USD 1.052631…: a CPM of 1.052632, an impression of
    // 0.001052632, charged 0.001053.
    assert_eq!(s.notice(&nurl, "1.00").status, 200);
    let spent = s.app.line_item_spent("li");
    assert_eq!(spent.today, Micros(1_053));
    assert_eq!(spent.held_today, Micros::ZERO);
    // The same notice again charges nothing more.
    assert_eq!(s.notice(&nurl, "1.00").status, 200);
    assert_eq!(s.app.line_item_spent("li").today, Micros(1_053));

    // A clearing price above the bid (EUR 5.00 is USD 5.26) is charged at
    // the bid, USD 4.00.
    let (_, _, bid) = one_bid(&s, &req);
    assert_eq!(s.notice(bid["nurl"].as_str().unwrap(), "5.00").status, 200);
    assert_eq!(s.app.line_item_spent("li").today, Micros(1_053 + 4_000));

    // JPY 155.300001 is USD 1.000000006…: a CPM of 1.000001, charged 0.001001
    // (rounded down, it would be 1.000000 and 0.001000).
    let (_, resp, bid) = one_bid(&s, &with_cur(json!(["JPY"])));
    assert_eq!(resp["cur"], "JPY");
    let nurl = bid["nurl"].as_str().unwrap();
    assert!(nurl.contains("&cur=JPY&r=155300000000&"), "{nurl}");
    assert_eq!(s.notice(nurl, "155.300001").status, 200);
    assert_eq!(
        s.app.line_item_spent("li").today,
        Micros(1_053 + 4_000 + 1_001)
    );
}

#[test]
fn without_a_rates_file_only_usd_is_bought() {
    let shop = advertiser(
        &banner_creative("b300", "https://cdn.shop.example/b.png", ""),
        &line_item("li", "display", "4.00", "b300"),
    );
    let s = server("no-rates", &[("shop.yaml", &shop)], false);
    assert_eq!(no_bid(&s, &with_cur(json!(["EUR"])), "li"), "currency");
    let (_, resp, _) = one_bid(&s, &with_cur(json!(["EUR", "USD"])));
    assert_eq!(resp["cur"], "USD");
    let mut req = banner_request();
    req["imp"][0]["bidfloorcur"] = json!("EUR");
    assert_eq!(no_bid(&s, &req, "li"), "currency");
}

// ------------------------------------------------------------ native

fn native_server(name: &str) -> Server {
    let shop = advertiser(NATIVE_AD, &line_item("nat", "native", "3.00", "tent-ad"));
    server(name, &[("shop.yaml", &shop)], true)
}

/// A request whose one imp is native, asking for `assets`; the native
/// request as a JSON string (the spec's way) or as the object itself.
fn native_request(assets: Value, as_string: bool) -> Value {
    let native = json!({ "ver": "1.2", "assets": assets });
    let mut r = banner_request();
    r["imp"][0] = json!({
        "id": "1",
        "bidfloor": 0.5,
        "native": {
            "ver": "1.2",
            "request": if as_string { Value::String(native.to_string()) } else { native },
        }
    });
    r
}

/// The bid's Native response, after the checks every native bid passes.
fn native_adm(bid: &Value) -> Value {
    assert_eq!(bid["mtype"], 4, "{bid}");
    assert_eq!(bid["crid"], "tent-ad");
    let adm = bid["adm"].as_str().expect("adm is a string");
    let v: Value = serde_json::from_str(adm).unwrap_or_else(|e| panic!("{e}: {adm}"));
    assert_eq!(v["link"]["url"], "https://shop.example/tent", "{v}");
    v
}

#[test]
fn native_fills_each_kind_of_asset() {
    let s = native_server("native-assets");
    // (asset, what the response asset holds)
    let cases = [
        (
            json!({"id": 7, "required": 1, "title": {"len": 90}}),
            json!({"id": 7, "title": {"text": "Two-person tent"}}),
        ),
        (
            json!({"id": 8, "required": 1, "img": {"type": 3, "wmin": 600, "hmin": 300}}),
            json!({"id": 8, "img": {"url": "https://cdn.shop.example/tent.jpg", "w": 1200, "h": 627}}),
        ),
        (
            json!({"id": 9, "required": 1, "img": {"type": 1, "w": 128, "h": 128}}),
            json!({"id": 9, "img": {"url": "https://cdn.shop.example/logo.png", "w": 128, "h": 128}}),
        ),
        (
            json!({"id": 10, "required": 1, "data": {"type": 1}}),
            json!({"id": 10, "data": {"value": "Outfitter"}}),
        ),
        (
            json!({"id": 11, "required": 1, "data": {"type": 2, "len": 140}}),
            json!({"id": 11, "data": {"value": "Light, quick to pitch, dry in a storm."}}),
        ),
        (
            json!({"id": 12, "required": 1, "data": {"type": 6}}),
            json!({"id": 12, "data": {"value": "$249.00"}}),
        ),
        (
            json!({"id": 13, "required": 1, "data": {"type": 12, "len": 15}}),
            json!({"id": 13, "data": {"value": "Shop now"}}),
        ),
    ];
    for (asset, want) in &cases {
        let (_, _, bid) = one_bid(&s, &native_request(json!([asset]), true));
        let adm = native_adm(&bid);
        assert_eq!(adm["assets"], json!([want]), "for {asset}");
        let pixel = adm["imptrackers"][0].as_str().unwrap();
        assert!(
            pixel.starts_with("https://bidder.test/track/impression?b="),
            "{pixel}"
        );
    }
    // All of them at once: every id answered, in request order.
    let all: Vec<Value> = cases.iter().map(|(a, _)| a.clone()).collect();
    let want: Vec<Value> = cases.iter().map(|(_, w)| w.clone()).collect();
    let (_, _, bid) = one_bid(&s, &native_request(json!(all), true));
    assert_eq!(native_adm(&bid)["assets"], json!(want));
    assert_eq!(bid["price"].as_f64(), Some(3.0));
}

/// With `--privacy-url`, a native slot that shows a buyer's privacy link
/// (`privacy: 1` in its request) gets the page in the ad's `privacy`;
/// others, and every slot of a bidder given none, get no link.
#[test]
fn native_slots_that_show_a_privacy_link_get_the_buyers_page() {
    const PAGE: &str = "https://bidder.test/privacy";
    let shop = advertiser(NATIVE_AD, &line_item("nat", "native", "3.00", "tent-ad"));
    let dir = common::tempdir("cn-native-privacy");
    std::fs::write(dir.join("shop.yaml"), &shop).unwrap();
    let settings = Settings {
        public_url: PUBLIC_HTTPS.into(),
        privacy_url: Some(PAGE.into()),
        ..Settings::default()
    };
    let with_page = Server::start_with(&dir, None, settings);
    let without = native_server("native-no-privacy");
    let request = |privacy: Option<i64>| {
        let mut native = json!({
            "ver": "1.2",
            "assets": [{"id": 1, "required": 1, "title": {"len": 90}}]
        });
        if let Some(p) = privacy {
            native["privacy"] = json!(p);
        }
        let mut r = native_request(json!([]), true);
        r["imp"][0]["native"]["request"] = Value::String(native.to_string());
        r
    };
    for (server, privacy, want) in [
        (&with_page, Some(1), Some(json!(PAGE))),
        (&with_page, Some(0), None),
        (&with_page, None, None),
        (&without, Some(1), None),
    ] {
        let (_, _, bid) = one_bid(server, &request(privacy));
        assert_eq!(
            native_adm(&bid).get("privacy").cloned(),
            want,
            "privacy {privacy:?}"
        );
    }
}

#[test]
fn native_request_as_a_string_or_as_an_object() {
    let s = native_server("native-encoding");
    let assets = json!([
        {"id": 1, "required": 1, "title": {"len": 25}},
        {"id": 2, "required": 1, "img": {"type": 3, "wmin": 1200, "hmin": 627}},
        {"id": 3, "data": {"type": 3}}
    ]);
    let mut answers = Vec::new();
    for as_string in [true, false] {
        let req = native_request(assets.clone(), as_string);
        assert_eq!(req["imp"][0]["native"]["request"].is_string(), as_string);
        let (_, _, bid) = one_bid(&s, &req);
        let adm = native_adm(&bid);
        let ids: Vec<i64> = adm["assets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_i64().unwrap())
            .collect();
        // The optional rating (data type 3) is left out.
        assert_eq!(ids, [1, 2], "{adm}");
        answers.push(adm["assets"].clone());
    }
    assert_eq!(answers[0], answers[1]);
}

#[test]
fn a_required_asset_the_ad_cannot_fill_gets_no_bid() {
    let s = native_server("native-misfit");
    let title = json!({"id": 1, "required": 1, "title": {"len": 90}});
    // Explain's detail names the kind of asset the ad cannot fill.
    let detail = |req: &Value| verdict(&explain(&s, req), "nat")["detail"].clone();
    for (asset, what, kind) in [
        (
            json!({"id": 2, "required": 1, "data": {"type": 3}}),
            "a rating",
            "unsupported_asset",
        ),
        (
            json!({"id": 2, "required": 1, "img": {"type": 3, "w": 300, "h": 250}}),
            "an image size it does not have",
            "image_asset",
        ),
        (
            json!({"id": 2, "required": 1, "img": {"type": 3, "wmin": 1600, "hmin": 900}}),
            "an image larger than it has",
            "image_asset",
        ),
        (
            json!({"id": 2, "required": 1, "video": {"mimes": ["video/mp4"]}}),
            "a video",
            "video_asset",
        ),
    ] {
        let req = native_request(json!([title, asset]), true);
        assert_eq!(no_bid(&s, &req, "nat"), "creative", "{what}");
        assert_eq!(detail(&req), kind, "{what}");
    }
    // A native request that is not one: no bid either, for the same reason.
    let mut req = native_request(json!([title]), true);
    req["imp"][0]["native"]["request"] = json!("placeholder request");
    assert_eq!(no_bid(&s, &req, "nat"), "creative");
    assert_eq!(detail(&req), "native_request");
    // One that is read and asks for no asset: nothing to fill, said so
    // (exchange probe: it was called unreadable).
    let req = native_request(json!([]), true);
    assert_eq!(no_bid(&s, &req, "nat"), "creative");
    assert_eq!(detail(&req), "no_asset");
}

// ------------------------------------------------------------ secure

#[test]
fn secure_slots_take_only_https_creatives() {
    let http_ad = advertiser(
        &banner_creative("b300", "http://cdn.shop.example/b.png", ""),
        &line_item("li", "display", "4.00", "b300"),
    );
    let s = server("secure-http", &[("shop.yaml", &http_ad)], true);
    let mut req = banner_request();
    req["site"]["page"] = json!("http://news.example/article");
    // An http page and no secure flag: the http image may serve.
    one_bid(&s, &req);
    req["imp"][0]["secure"] = json!(1);
    assert_eq!(no_bid(&s, &req, "li"), "secure");
    // A flag written otherwise than 1 still asks for https: served as not
    // secure, an http image on an https page is blocked as mixed content.
    for flag in [json!(2), json!("true"), json!(true), json!("1")] {
        req["imp"][0]["secure"] = flag.clone();
        assert_eq!(no_bid(&s, &req, "li"), "secure", "secure: {flag}");
    }
    req["imp"][0]["secure"] = json!(0);
    one_bid(&s, &req);
    req["imp"][0]["secure"] = json!(1);
    // An https page makes every imp secure.
    assert_eq!(no_bid(&s, &banner_request(), "li"), "secure");

    let https_ad = advertiser(
        &banner_creative("b300", "https://cdn.shop.example/b.png", ""),
        &line_item("li", "display", "4.00", "b300"),
    );
    let s = server("secure-https", &[("shop.yaml", &https_ad)], true);
    let (_, _, bid) = one_bid(&s, &req);
    assert_eq!(bid["crid"], "b300");
}

#[test]
fn vast_and_native_on_secure_slots_need_an_https_public_url() {
    let shop = advertiser(
        &format!("{VIDEO_AD}{NATIVE_AD}"),
        &format!(
            "{}{}",
            line_item("vid", "video", "5.00", "v15"),
            line_item("nat", "native", "3.00", "tent-ad")
        ),
    );
    let video = {
        let mut r = banner_request();
        r["imp"][0] = json!({
            "id": "1",
            "video": {"mimes": ["video/mp4"], "minduration": 5, "maxduration": 30, "w": 640, "h": 360}
        });
        r
    };
    let native = native_request(
        json!([{"id": 1, "required": 1, "title": {"len": 90}}]),
        true,
    );
    let http = server("secure-trackers-http", &[("shop.yaml", &shop)], false);
    assert_eq!(no_bid(&http, &video, "vid"), "secure");
    assert_eq!(no_bid(&http, &native, "nat"), "secure");

    let https = server("secure-trackers-https", &[("shop.yaml", &shop)], true);
    let (_, _, bid) = one_bid(&https, &video);
    assert_eq!(bid["crid"], "v15");
    let adm = bid["adm"].as_str().unwrap();
    assert!(
        adm.contains("https://bidder.test/track/impression?b="),
        "{adm}"
    );
    let (_, _, bid) = one_bid(&https, &native);
    native_adm(&bid);

    // A banner's click link and pixel: on an https page alone, served over
    // the http public URL (the quick start's), but not where the slot says
    // `secure: 1`: all its markup must be https there (exchange probe).
    let banner = advertiser(
        &banner_creative("b300", "https://cdn.shop.example/b.png", ""),
        &line_item("li", "display", "4.00", "b300"),
    );
    let http = server("secure-banner-http", &[("shop.yaml", &banner)], false);
    let (_, _, bid) = one_bid(&http, &banner_request());
    assert_eq!(bid["crid"], "b300");
    let mut flagged = banner_request();
    flagged["imp"][0]["secure"] = json!(1);
    assert_eq!(no_bid(&http, &flagged, "li"), "secure");
    let https = server("secure-banner-https", &[("shop.yaml", &banner)], true);
    let (_, _, bid) = one_bid(&https, &flagged);
    let adm = bid["adm"].as_str().unwrap();
    assert!(!adm.contains("http://"), "{adm}");
}

#[test]
fn battr_blocks_a_creative_and_another_one_serves() {
    let attributed = banner_creative(
        "autoplay",
        "https://cdn.shop.example/a.png",
        "    attributes: [6]\n",
    );
    let blocked = {
        let mut r = banner_request();
        r["imp"][0]["banner"]["battr"] = json!([3, 6]);
        r
    };
    let only = advertiser(&attributed, &line_item("li", "display", "4.00", "autoplay"));
    let s = server("battr-only", &[("shop.yaml", &only)], false);
    assert_eq!(no_bid(&s, &blocked, "li"), "attribute");
    // battr of another medium does not block a banner.
    let mut other = banner_request();
    other["imp"][0]["video"] = json!({"mimes": ["video/mp4"], "battr": [6]});
    let (_, _, bid) = one_bid(&s, &other);
    assert_eq!(bid["crid"], "autoplay");
    // The bid declares them, for exchanges that filter on them.
    assert_eq!(bid["attr"], json!([6]), "{bid}");

    let both = advertiser(
        &format!(
            "{attributed}{}",
            banner_creative("plain", "https://cdn.shop.example/p.png", "")
        ),
        &line_item("li", "display", "4.00", "autoplay, plain"),
    );
    let s = server("battr-both", &[("shop.yaml", &both)], false);
    let (_, _, bid) = one_bid(&s, &blocked);
    assert_eq!(bid["crid"], "plain");
    assert!(bid.get("attr").is_none(), "none declared: {bid}");
}

/// A request that lists the languages it allows (`wlang`, or 2.6's
/// `wlangb`) gets no bid from a creative in another one, with reason
/// `language`; one in an allowed language serves and says its language in
/// the bid. A creative that does not say its language is not held to the
/// lists.
#[test]
fn wlang_keeps_out_creatives_in_other_languages() {
    let german = banner_creative(
        "de300",
        "https://cdn.shop.example/de.png",
        "    language: de\n",
    );
    let only = advertiser(&german, &line_item("li", "display", "4.00", "de300"));
    let s = server("wlang-only", &[("shop.yaml", &only)], false);
    let (_, _, bid) = one_bid(&s, &banner_request());
    assert_eq!(bid["language"], "de", "{bid}");
    assert!(bid.get("langb").is_none(), "{bid}");
    // A list past `ortb::MAX_LANGUAGE_ENTRIES` entries is read up to the
    // bound: what it cuts off (`de` last here) is not allowed.
    let mut long = vec!["en"; ortb::MAX_LANGUAGE_ENTRIES];
    long.push("de");
    for (field, list) in [
        ("wlang", json!(["en", "fr"])),
        ("wlangb", json!(["en-US", "fr-CA"])),
        ("wlang", json!(long)),
    ] {
        let mut req = banner_request();
        req[field] = list.clone();
        assert_eq!(no_bid(&s, &req, "li"), "language", "{field}: {list}");
    }
    // Compared by language, in any case, whatever the region; entries
    // that name no language restrict nothing.
    for (field, list) in [
        ("wlang", json!(["fr", "DE"])),
        ("wlangb", json!(["de-AT"])),
        ("wlang", json!([1, "?"])),
    ] {
        let mut req = banner_request();
        req[field] = list;
        one_bid(&s, &req);
    }
    // A script, where both say one, must agree; `xx` (an ad with no words)
    // serves anywhere.
    for (tag, list, bids) in [
        ("zh-Hans", json!(["zh-Hant"]), false),
        ("zh-Hans", json!(["zh-Hans-CN"]), true),
        ("zh-Hans", json!(["zh"]), true),
        ("fr-CA", json!(["fr_FR"]), true),
        ("de", json!(["fr_FR"]), false),
        ("xx", json!(["fr"]), true),
    ] {
        let ad = banner_creative(
            "t300",
            "https://cdn.shop.example/t.png",
            &format!("    language: {tag}\n"),
        );
        let shop = advertiser(&ad, &line_item("li", "display", "4.00", "t300"));
        let s = server(
            &format!("wlang-{tag}-{bids}"),
            &[("shop.yaml", &shop)],
            false,
        );
        let mut req = banner_request();
        req["wlangb"] = list.clone();
        match bids {
            true => {
                one_bid(&s, &req);
            }
            false => assert_eq!(no_bid(&s, &req, "li"), "language", "{tag} {list}"),
        }
    }

    // Of two creatives, the one in an allowed language serves; one that
    // says none is not refused; a tag with a region goes in `langb`.
    let swiss = banner_creative(
        "ch300",
        "https://cdn.shop.example/ch.png",
        "    language: fr-CH\n",
    );
    let plain = banner_creative("plain", "https://cdn.shop.example/p.png", "");
    let mut req = banner_request();
    req["wlang"] = json!(["fr"]);
    let two = advertiser(
        &format!("{german}{swiss}"),
        &line_item("li", "display", "4.00", "de300, ch300"),
    );
    let s = server("wlang-two", &[("shop.yaml", &two)], false);
    let (_, _, bid) = one_bid(&s, &req);
    assert_eq!(bid["crid"], "ch300");
    assert_eq!(bid["langb"], "fr-CH", "{bid}");
    assert!(bid.get("language").is_none(), "{bid}");
    // 2.5 has no `langb`: its exchanges are told the language alone.
    let r = common::post(
        s.bid,
        "/openrtb2/bid",
        &[("x-openrtb-version", "2.5")],
        req.to_string().as_bytes(),
    );
    let bid = &r.json()["seatbid"][0]["bid"][0];
    assert_eq!(bid["language"], "fr", "{bid}");
    assert!(bid.get("langb").is_none(), "{bid}");
    let unsaid = advertiser(&plain, &line_item("li", "display", "4.00", "plain"));
    let s = server("wlang-unsaid", &[("shop.yaml", &unsaid)], false);
    let (_, _, bid) = one_bid(&s, &req);
    assert_eq!(bid["crid"], "plain");
    assert!(
        bid.get("language").is_none() && bid.get("langb").is_none(),
        "{bid}"
    );
}

// ------------------------------------------------------------ multi-format

/// Display at `display_cpm` and `other` (video or native) at `other_cpm`.
fn multi_server(name: &str, other: &str, display_cpm: &str, other_cpm: &str) -> Server {
    let (creative, id) = match other {
        "video" => (VIDEO_AD, "v15"),
        _ => (NATIVE_AD, "tent-ad"),
    };
    let shop = advertiser(
        &format!(
            "{}{creative}",
            banner_creative("b300", "https://cdn.shop.example/b.png", "")
        ),
        &format!(
            "{}{}",
            line_item("disp", "display", display_cpm, "b300"),
            line_item("other", other, other_cpm, id)
        ),
    );
    server(name, &[("shop.yaml", &shop)], true)
}

#[test]
fn banner_and_video_imp_goes_to_the_better_price() {
    let mut req = banner_request();
    // No protocols: the default VAST 3.0 InLine.
    req["imp"][0]["video"] =
        json!({"mimes": ["video/mp4"], "minduration": 5, "maxduration": 30, "w": 640, "h": 360});

    let s = multi_server("multi-video-hi", "video", "4.00", "6.00");
    let (_, _, bid) = one_bid(&s, &req);
    assert_eq!(
        (bid["mtype"].as_i64(), bid["crid"].as_str()),
        (Some(2), Some("v15"))
    );
    assert_eq!(bid["price"].as_f64(), Some(6.0));
    assert_eq!(bid["protocol"], 3);
    let adm = bid["adm"].as_str().unwrap();
    assert!(adm.contains("version=\"3.0\""), "{adm}");
    common::assert_valid_vast(adm);

    // A Wrapper code alone (8, VAST 4.0 Wrapper) takes its InLine, 4.0.
    let mut wrapper = req.clone();
    wrapper["imp"][0]["video"]["protocols"] = json!([8]);
    let (_, _, bid) = one_bid(&s, &wrapper);
    assert_eq!(bid["protocol"], 7);
    let adm = bid["adm"].as_str().unwrap();
    assert!(adm.contains("version=\"4.0\""), "{adm}");
    common::assert_valid_vast(adm);

    let s = multi_server("multi-video-lo", "video", "6.00", "4.00");
    let (_, _, bid) = one_bid(&s, &req);
    assert_eq!(
        (bid["mtype"].as_i64(), bid["crid"].as_str()),
        (Some(1), Some("b300"))
    );
    assert_eq!(bid["price"].as_f64(), Some(6.0));
}

#[test]
fn banner_and_native_imp_goes_to_the_better_price() {
    let mut req = banner_request();
    req["imp"][0]["native"] = json!({
        "request": json!({"ver": "1.2", "assets": [{"id": 5, "required": 1, "title": {"len": 40}}]}).to_string()
    });

    let s = multi_server("multi-native-hi", "native", "4.00", "6.00");
    let (_, _, bid) = one_bid(&s, &req);
    assert_eq!(native_adm(&bid)["assets"][0]["id"], 5);
    assert_eq!(bid["price"].as_f64(), Some(6.0));

    let s = multi_server("multi-native-lo", "native", "6.00", "4.00");
    let (_, _, bid) = one_bid(&s, &req);
    assert_eq!(
        (bid["mtype"].as_i64(), bid["crid"].as_str()),
        (Some(1), Some("b300"))
    );
    // The native line item could have bid: only the price decided.
    assert_eq!(verdict(&explain(&s, &req), "other")["bids"], true);
}

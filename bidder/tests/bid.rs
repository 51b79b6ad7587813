//! Display bidding on the example config, driven over HTTP as an exchange
//! would.

mod common;

use common::{banner_request, Server};
use serde_json::{json, Value};

fn only_bid(reply: &common::Reply) -> Value {
    assert_eq!(reply.status, 200, "{}", reply.text());
    let v = reply.json();
    let bids = v["seatbid"][0]["bid"].as_array().expect("bids").clone();
    assert_eq!(bids.len(), 1, "{v}");
    bids[0].clone()
}

#[test]
fn remarketing_user_gets_a_first_price_banner_bid() {
    let s = Server::example();
    let reply = s.bid(&banner_request().to_string());
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert!(reply.header("x-openrtb-version").is_some());
    let v = reply.json();
    assert_eq!(v["id"], "req-1");
    assert_eq!(v["cur"], "USD");
    assert!(v["bidid"].as_str().is_some_and(|s| !s.is_empty()));
    let bid = only_bid(&reply);
    assert_eq!(bid["impid"], "1");
    assert_eq!(bid["price"].as_f64(), Some(6.0));
    assert_eq!(bid["crid"], "tent-banner-300x250");
    assert_eq!(bid["adid"], "tent-banner-300x250");
    assert_eq!(bid["adomain"], json!(["acme-outdoor.example"]));
    assert_eq!(bid["cat"], json!(["IAB17-18"]));
    assert_eq!(
        (bid["w"].as_i64(), bid["h"].as_i64()),
        (Some(300), Some(250))
    );
    assert_eq!(bid["mtype"], 1);
    let adm = bid["adm"].as_str().unwrap();
    assert!(
        adm.contains("https://cdn.acme-outdoor.example/tent-300x250.jpg"),
        "{adm}"
    );
    // The link goes through the click tracker, which sends the browser on
    // to the creative's click URL; a pixel reports the impression.
    let attr = |after: &str| {
        adm.split(after)
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_else(|| panic!("no {after} in {adm}"))
            .replace("&amp;", "&")
    };
    let href = attr("<a href=\"");
    assert!(href.contains("/track/click?"), "{adm}");
    // The page can read the markup: no bid price in it.
    assert!(!adm.contains("bp=") && !adm.contains("6000000"), "{adm}");
    let click = s.notice(&href, "");
    assert_eq!(click.status, 302);
    assert_eq!(
        click.header("location"),
        Some("https://www.acme-outdoor.example/tents")
    );
    let pixel = attr("</a><img src=\"");
    assert!(pixel.contains("/track/impression?"), "{adm}");
    let seen = s.notice(&pixel, "");
    assert_eq!(seen.status, 200);
    assert_eq!(seen.header("content-type"), Some("image/gif"));
    for url in ["nurl", "burl"] {
        let u = bid[url].as_str().unwrap();
        assert!(u.contains("${AUCTION_PRICE}"), "{u}");
        assert!(u.starts_with("http"), "{u}");
    }
    assert!(bid["id"].as_str().is_some_and(|s| !s.is_empty()));
}

#[test]
fn format_list_picks_the_fitting_creative() {
    let s = Server::example();
    let mut r = banner_request();
    r["imp"][0]["banner"] = json!({ "format": [{ "w": 970, "h": 90 }, { "w": 728, "h": 90 }] });
    let bid = only_bid(&s.bid(&r.to_string()));
    assert_eq!(bid["crid"], "tent-banner-728x90");
    assert_eq!(
        (bid["w"].as_i64(), bid["h"].as_i64()),
        (Some(728), Some(90))
    );

    r["imp"][0]["banner"] = json!({ "format": [{ "w": 970, "h": 90 }] });
    assert_eq!(
        s.bid(&r.to_string()).status,
        204,
        "no creative of that size"
    );
}

/// A flexible format (OpenRTB's `wratio`/`hratio`, no `w`/`h`) takes any
/// creative whose sides are in its ratio, at least `wmin` wide; the bid
/// says the creative's size and the format's ratio, and its image scales
/// to the slot's width.
#[test]
fn a_flexible_format_takes_a_creative_in_its_ratio() {
    let s = Server::example();
    let li = "tent-remarketing-display";
    // A request for the banner, each from a new user on a page about the
    // tent (the line item's contextual audience): its frequency cap of
    // three counts per user.
    let users = std::cell::Cell::new(0);
    let ask = |banner: Value| {
        users.set(users.get() + 1);
        let mut r = banner_request();
        r["site"]["page"] = json!("https://shop.example/Tent/dp/B0TENT0001");
        r["user"] = json!({ "buyeruid": format!("flex-{}", users.get()) });
        r["imp"][0]["banner"] = banner;
        r
    };
    let flexible = |wratio: u32, hratio: u32, wmin: Option<u32>| {
        let mut f = json!({ "wratio": wratio, "hratio": hratio });
        if let Some(wmin) = wmin {
            f["wmin"] = json!(wmin);
        }
        f
    };
    // 728x90 is 364:45; 300x250 is 6:5. Ratios not in lowest terms are
    // the same ratio; the bid gives the format's as sent.
    for (format, crid, size, ratio) in [
        (
            flexible(364, 45, Some(700)),
            "tent-banner-728x90",
            (728, 90),
            (364, 45),
        ),
        (
            flexible(6, 5, None),
            "tent-banner-300x250",
            (300, 250),
            (6, 5),
        ),
        (
            flexible(12, 10, Some(300)),
            "tent-banner-300x250",
            (300, 250),
            (12, 10),
        ),
    ] {
        let r = ask(json!({ "format": [format] }));
        let v = common::verdict(&common::explain(&s, &r), li);
        assert_eq!(v["creative"], crid, "{v}");
        let bid = only_bid(&s.bid(&r.to_string()));
        assert_eq!(bid["crid"], crid, "{format}");
        assert_eq!(
            (bid["w"].as_u64(), bid["h"].as_u64()),
            (Some(size.0), Some(size.1))
        );
        assert_eq!(
            (bid["wratio"].as_u64(), bid["hratio"].as_u64()),
            (Some(ratio.0), Some(ratio.1)),
            "{bid}"
        );
        let adm = bid["adm"].as_str().unwrap();
        assert!(
            adm.contains("style=\"border:0;display:block;width:100%;height:auto\""),
            "{adm}"
        );
    }
    // A fixed size bids as before: no ratio, the image at its size; so
    // does one a flexible format offers too.
    for banner in [
        json!({ "format": [{ "w": 300, "h": 250 }] }),
        json!({ "format": [flexible(6, 5, None), { "w": 300, "h": 250 }] }),
        json!({ "format": [flexible(6, 5, None)], "w": 300, "h": 250 }),
    ] {
        let r = ask(banner.clone());
        let bid = only_bid(&s.bid(&r.to_string()));
        assert_eq!(bid["crid"], "tent-banner-300x250", "{banner}");
        assert!(
            bid.get("wratio").is_none() && bid.get("hratio").is_none(),
            "{bid}"
        );
        assert!(
            bid["adm"]
                .as_str()
                .unwrap()
                .contains("style=\"border:0;display:block\""),
            "{bid}"
        );
    }
    // Sizes are offered in the exchange's order, flexible or not.
    for (formats, crid) in [
        (
            json!([flexible(364, 45, None), { "w": 300, "h": 250 }]),
            "tent-banner-728x90",
        ),
        (
            json!([{ "w": 300, "h": 250 }, flexible(364, 45, None)]),
            "tent-banner-300x250",
        ),
    ] {
        let r = ask(json!({ "format": formats }));
        assert_eq!(only_bid(&s.bid(&r.to_string()))["crid"], crid, "{formats}");
    }
    // However many flexible formats come first, each is read.
    let mut many: Vec<_> = (1..=20).map(|i| flexible(7 + i, 3, None)).collect();
    many.push(flexible(6, 5, None));
    let r = ask(json!({ "format": many }));
    assert_eq!(
        only_bid(&s.bid(&r.to_string()))["crid"],
        "tent-banner-300x250"
    );
    // Narrower than the slot shows ads, or of no creative's ratio, or
    // no ratio at all: nothing fits, and explain says the size.
    for format in [
        flexible(364, 45, Some(729)),
        flexible(16, 9, None),
        flexible(0, 5, None),
        json!({ "wratio": 6 }),
        json!({ "wratio": 1.2, "hratio": 1 }),
    ] {
        let r = ask(json!({ "format": [format] }));
        assert_eq!(reason(&s, &r, li), "size", "{format}");
        assert_eq!(s.bid(&r.to_string()).status, 204, "{format}");
    }
    // A format with its own size is that size, whatever ratio it adds.
    let r = ask(json!({ "format": [{ "w": 970, "h": 90, "wratio": 6, "hratio": 5 }] }));
    assert_eq!(reason(&s, &r, li), "size");
}

#[test]
fn contextual_product_page_matches_without_a_known_user() {
    let s = Server::example();
    let mut r = banner_request();
    r["user"] = json!({ "buyeruid": "someone-new" });
    assert_eq!(s.bid(&r.to_string()).status, 204, "not in any audience");
    r["site"]["page"] = json!("https://shop.example/Tent/dp/B0TENT0001?ref=x");
    let bid = only_bid(&s.bid(&r.to_string()));
    assert_eq!(bid["crid"], "tent-banner-300x250");
}

#[test]
fn audience_members_only() {
    let s = Server::example();
    let mut r = banner_request();
    // u-1002 bought what it viewed; u-1003's view is older than 30 days.
    for user in ["u-1002", "u-1003"] {
        r["user"] = json!({ "buyeruid": user });
        assert_eq!(s.bid(&r.to_string()).status, 204, "{user}");
    }
    // No user id at all: a line item with audiences never bids.
    r.as_object_mut().unwrap().remove("user");
    assert_eq!(s.bid(&r.to_string()).status, 204);
    // user.id and device.ifa are fallbacks for the user key.
    r["user"] = json!({ "id": "u-1001" });
    assert_eq!(s.bid(&r.to_string()).status, 200);
    r.as_object_mut().unwrap().remove("user");
    r["device"]["ifa"] = json!("u-1001");
    assert_eq!(s.bid(&r.to_string()).status, 200);
}

#[test]
fn behavioural_audiences_are_off_under_privacy_signals() {
    let s = Server::example();
    for regs in [
        json!({ "regs": { "coppa": 1 } }),
        json!({ "regs": { "gdpr": 1 } }),
        json!({ "regs": { "ext": { "gdpr": 1 } } }),
        json!({ "regs": { "ext": { "us_privacy": "1YYN" } } }),
        json!({ "device": { "devicetype": 2, "geo": { "country": "USA" }, "lmt": 1 } }),
    ] {
        let mut r = banner_request();
        for (k, v) in regs.as_object().unwrap() {
            r[k] = v.clone();
        }
        assert_eq!(s.bid(&r.to_string()).status, 204, "{regs}");
    }
}

#[test]
fn country_and_device_targeting() {
    let s = Server::example();
    let mut r = banner_request();
    r["device"]["geo"]["country"] = json!("CAN");
    assert_eq!(s.bid(&r.to_string()).status, 200);
    r["device"]["geo"]["country"] = json!("GBR");
    assert_eq!(s.bid(&r.to_string()).status, 204);
    r["device"]["geo"] = json!({});
    r["user"]["geo"] = json!({ "country": "USA" });
    assert_eq!(s.bid(&r.to_string()).status, 200, "user.geo is a fallback");

    let mut r = banner_request();
    r["device"]["devicetype"] = json!(3); // connected TV
    assert_eq!(s.bid(&r.to_string()).status, 204);
    r["device"]["devicetype"] = json!(4); // phone
    assert_eq!(s.bid(&r.to_string()).status, 200);
}

#[test]
fn blocked_advertiser_or_category() {
    let s = Server::example();
    let mut r = banner_request();
    r["badv"] = json!(["acme-outdoor.example"]);
    assert_eq!(s.bid(&r.to_string()).status, 204);
    let mut r = banner_request();
    r["bcat"] = json!(["IAB17"]);
    assert_eq!(s.bid(&r.to_string()).status, 204, "IAB17 blocks IAB17-18");
    r["bcat"] = json!(["IAB1"]);
    assert_eq!(s.bid(&r.to_string()).status, 200);
}

#[test]
fn floor_and_currency() {
    let s = Server::example();
    let mut r = banner_request();
    r["imp"][0]["bidfloor"] = json!(6.0);
    assert_eq!(
        s.bid(&r.to_string()).status,
        200,
        "a CPM equal to the floor bids"
    );
    r["imp"][0]["bidfloor"] = json!(6.01);
    assert_eq!(s.bid(&r.to_string()).status, 204);

    // The example rates: EUR 0.95 per USD. 6.00 USD bids 5.70 EUR. A page
    // about the tent and a new shopper each time: the line item caps
    // frequency at 3 a day.
    let n = std::cell::Cell::new(0);
    let bid = |r: &mut serde_json::Value| {
        n.set(n.get() + 1);
        r["user"]["buyeruid"] = json!(format!("shopper-{}", n.get()));
        s.bid(&r.to_string())
    };
    let mut r = banner_request();
    r["site"]["page"] = json!("https://shop.example/dp/B0TENT0001");
    r["cur"] = json!(["EUR"]);
    let reply = bid(&mut r);
    assert_eq!(reply.status, 200, "EUR has a rate");
    let answer = reply.json();
    assert_eq!(answer["cur"], "EUR");
    assert_eq!(answer["seatbid"][0]["bid"][0]["price"], json!(5.7));
    r["cur"] = json!(["XAU"]);
    assert_eq!(bid(&mut r).status, 204, "no rate for gold");
    r["cur"] = json!(["XAU", "GBP"]);
    assert_eq!(bid(&mut r).json()["cur"], "GBP");
    r["cur"] = json!(["EUR", "USD"]);
    let reply = bid(&mut r);
    assert_eq!(
        reply.json()["cur"],
        "USD",
        "USD when allowed: no conversion"
    );
    r.as_object_mut().unwrap().remove("cur");
    assert_eq!(bid(&mut r).status, 200, "no cur means USD");
    // A 5.70 EUR floor is 6.00 USD: the 6.00 CPM clears it; 5.71 EUR does not.
    r["imp"][0]["bidfloorcur"] = json!("EUR");
    r["imp"][0]["bidfloor"] = json!(5.7);
    assert_eq!(bid(&mut r).status, 200);
    r["imp"][0]["bidfloor"] = json!(5.71);
    assert_eq!(bid(&mut r).status, 204);
    r["imp"][0]["bidfloorcur"] = json!("XAU");
    assert_eq!(
        bid(&mut r).status,
        204,
        "a floor in a currency without a rate cannot be compared"
    );
}

#[test]
fn one_bid_per_imp_at_most() {
    let s = Server::example();
    let mut r = banner_request();
    r["imp"] = json!([
        { "id": "a", "banner": { "w": 300, "h": 250 } },
        { "id": "b", "banner": { "format": [{ "w": 728, "h": 90 }] } },
        { "id": "c", "banner": { "w": 1, "h": 1 } },
        { "id": "d", "native": { "request": "{}" } }
    ]);
    let reply = s.bid(&r.to_string());
    assert_eq!(reply.status, 200);
    let v = reply.json();
    let bids = v["seatbid"][0]["bid"].as_array().unwrap();
    let mut impids: Vec<&str> = bids.iter().map(|b| b["impid"].as_str().unwrap()).collect();
    impids.sort();
    assert_eq!(impids, ["a", "b"]);
    assert_ne!(bids[0]["id"], bids[1]["id"]);
}

#[test]
fn deals_and_private_auctions() {
    let s = Server::example();
    let mut r = banner_request();
    r["user"] = json!({ "buyeruid": "nobody" });
    r["imp"][0]["pmp"] = json!({
        "private_auction": 1,
        "deals": [{ "id": "DEAL-NW-PREMIUM-01", "bidfloor": 3.0, "bidfloorcur": "USD" }]
    });
    let bid = only_bid(&s.bid(&r.to_string()));
    assert_eq!(bid["dealid"], "DEAL-NW-PREMIUM-01");
    assert_eq!(bid["price"].as_f64(), Some(3.5));
    assert_eq!(bid["crid"], "nw-banner-300x250");

    // The deal's floor above the line item's CPM: no bid.
    r["imp"][0]["pmp"]["deals"][0]["bidfloor"] = json!(4.0);
    assert_eq!(s.bid(&r.to_string()).status, 204);

    // A private auction without our deal: open-market line items stay out,
    // even for a user they would otherwise buy.
    r["user"] = json!({ "buyeruid": "u-1001" });
    r["imp"][0]["pmp"]["deals"][0]["id"] = json!("SOMEONE-ELSES");
    assert_eq!(s.bid(&r.to_string()).status, 204);
    // A value OpenRTB does not have is read as private: no open-market bid;
    // nor is there one for a value that reads as no integer at all (a flag
    // nobody can read is taken at its strictest).
    for value in [json!(2), json!(1.5), json!("yes"), json!([1])] {
        r["imp"][0]["pmp"]["private_auction"] = value.clone();
        assert_eq!(s.bid(&r.to_string()).status, 204, "{value}");
        let why = common::verdict(&common::explain(&s, &r), "tent-remarketing-display");
        assert_eq!(why["reason"], "deal", "{value}: {why}");
    }
    r["imp"][0]["pmp"]["private_auction"] = json!(0);
    let bid = only_bid(&s.bid(&r.to_string()));
    assert_eq!(bid["crid"], "tent-banner-300x250");
    assert!(bid.get("dealid").is_none());
}

#[test]
fn an_unpriced_imp_floor_leaves_deals_with_floors_of_their_own() {
    let s = Server::example();
    let mut r = banner_request();
    r["user"] = json!({ "buyeruid": "u-1001" });
    // Gold has no rate: the imp's floor cannot be compared.
    r["imp"][0]["bidfloor"] = json!(0.01);
    r["imp"][0]["bidfloorcur"] = json!("XAU");
    r["imp"][0]["pmp"] = json!({
        "private_auction": 0,
        "deals": [{ "id": "DEAL-NW-PREMIUM-01", "bidfloor": 3.0, "bidfloorcur": "USD" }]
    });
    let bid = only_bid(&s.bid(&r.to_string()));
    assert_eq!(bid["dealid"], "DEAL-NW-PREMIUM-01", "the deal's own floor");
    // Without a floor of its own the deal falls back on the imp's, which
    // cannot be priced; the open market never bids on a guess.
    let reason = |r: &serde_json::Value, li: &str| {
        common::verdict(&common::explain(&s, r), li)["reason"].clone()
    };
    r["imp"][0]["pmp"]["deals"][0] = json!({ "id": "DEAL-NW-PREMIUM-01" });
    assert_eq!(s.bid(&r.to_string()).status, 204);
    assert_eq!(reason(&r, "nw-deal-premium"), "currency");
    assert_eq!(reason(&r, "tent-remarketing-display"), "currency");
    r["imp"][0].as_object_mut().unwrap().remove("pmp");
    assert_eq!(s.bid(&r.to_string()).status, 204);
    assert_eq!(reason(&r, "tent-remarketing-display"), "currency");
}

#[test]
fn keyword_targeted_line_item() {
    let s = Server::example();
    let mut r = banner_request();
    r["user"] = json!({ "buyeruid": "u-1005" }); // a mystery reader
    r["device"]["devicetype"] = json!(4);
    r["imp"][0]["banner"] = json!({ "w": 320, "h": 50 });
    assert_eq!(s.bid(&r.to_string()).status, 204, "no keywords on the page");
    r["site"]["keywords"] = json!("novel,Mystery,reviews");
    let bid = only_bid(&s.bid(&r.to_string()));
    assert_eq!(bid["crid"], "nw-banner-320x50");
    assert_eq!(bid["price"].as_f64(), Some(1.8));
    r["site"]["keywords"] = json!("mystery novel,free ebook");
    assert_eq!(s.bid(&r.to_string()).status, 204, "negative keyword");
    r["site"].as_object_mut().unwrap().remove("keywords");
    r["site"]["content"] = json!({ "keywords": "thriller books" });
    assert_eq!(
        s.bid(&r.to_string()).status,
        200,
        "exact match in content keywords"
    );
}

#[test]
fn frequency_cap_stops_the_fourth_impression() {
    let s = Server::example();
    let body = banner_request().to_string();
    for i in 0..3 {
        assert_eq!(s.bid(&body).status, 200, "bid {i}");
    }
    assert_eq!(s.bid(&body).status, 204, "3 per 24 hours");
    // Another user is not affected; the window slides: an impression
    // counts through the hour (its bucket, a 24th of the window) 24 hours
    // on, never less than 24 hours, and then no more.
    let mut r = banner_request();
    r["site"]["page"] = json!("https://shop.example/dp/B0TENT0001");
    r["user"] = json!({ "buyeruid": "other" });
    assert_eq!(s.bid(&r.to_string()).status, 200);
    s.clock.advance_millis(24 * 3_600_000 - 1);
    assert_eq!(s.bid(&body).status, 204, "still within 24 hours");
    s.clock.advance_millis(3_600_000 + 2);
    assert_eq!(s.bid(&body).status, 200);
}

#[test]
fn test_requests_are_answered_but_never_spend() {
    let s = Server::example();
    let mut r = banner_request();
    r["test"] = json!(1);
    let bid = only_bid(&s.bid(&r.to_string()));
    let reply = s.notice(bid["nurl"].as_str().unwrap(), "6.00");
    assert_eq!(reply.status, 200);
    let spent = s.app.ledger().spent(
        &ledger::SpendKey::line_item("tent-remarketing-display"),
        s.app.now().date(),
    );
    assert_eq!(spent.lifetime, config::Micros::ZERO);
    // Nor do they count against the frequency cap.
    for _ in 0..5 {
        assert_eq!(s.bid(&r.to_string()).status, 200);
    }
}

#[test]
fn win_and_billing_notices_charge_once_at_most_the_bid() {
    let s = Server::example();
    let bid = only_bid(&s.bid(&banner_request().to_string()));
    let day = s.app.now().date();
    let spent = || {
        s.app.ledger().spent(
            &ledger::SpendKey::line_item("tent-remarketing-display"),
            day,
        )
    };
    assert_eq!(s.notice(bid["nurl"].as_str().unwrap(), "4.50").status, 200);
    // 4.50 CPM is 0.0045 per impression.
    assert_eq!(spent().today, config::Micros(4_500));
    assert_eq!(s.notice(bid["burl"].as_str().unwrap(), "4.50").status, 200);
    assert_eq!(s.notice(bid["nurl"].as_str().unwrap(), "4.50").status, 200);
    assert_eq!(spent().today, config::Micros(4_500), "charged once");
    let order = s
        .app
        .ledger()
        .spent(&ledger::SpendKey::order("acme-q4-managed"), day);
    assert_eq!(order.lifetime, config::Micros(4_500));

    // A clearing price above the bid is capped at the bid; an unsubstituted
    // macro charges the bid.
    let bid2 = only_bid(&s.bid(&banner_request().to_string()));
    assert_eq!(
        s.notice(bid2["burl"].as_str().unwrap(), "60.00").status,
        200
    );
    assert_eq!(spent().today, config::Micros(4_500 + 6_000));
    let bid3 = only_bid(&s.bid(&banner_request().to_string()));
    assert_eq!(
        s.notice(bid3["nurl"].as_str().unwrap(), "${AUCTION_PRICE}")
            .status,
        200
    );
    assert_eq!(spent().today, config::Micros(4_500 + 6_000 + 6_000));

    let unsigned = common::get(s.bid, "/notice/win?b=x&li=y&o=z&bp=1000000&ts=1");
    assert_eq!(unsigned.status, 403);
}

#[test]
fn forged_tampered_or_expired_notices_charge_nothing() {
    let s = Server::example();
    let day = s.app.now().date();
    let spent = || {
        s.app
            .ledger()
            .spent(
                &ledger::SpendKey::line_item("tent-remarketing-display"),
                day,
            )
            .lifetime
    };
    let bid = only_bid(&s.bid(&banner_request().to_string()));
    let nurl = bid["nurl"].as_str().unwrap();
    // A richer bid price, another line item, a signature from elsewhere.
    for forged in [
        nurl.replace("bp=6000000", "bp=60000000"),
        nurl.replace("li=tent-remarketing-display", "li=nw-deal-premium"),
        nurl.replace("&s=", "&s=00"),
        nurl.split("&s=").next().unwrap().to_string(),
    ] {
        assert_eq!(s.notice(&forged, "6.00").status, 403, "{forged}");
    }
    assert_eq!(spent(), config::Micros::ZERO);
    // A day and a bit later the notice has expired.
    s.clock.advance_millis(24 * 3_600_000 + 1);
    assert_eq!(s.notice(nurl, "6.00").status, 410);
    assert_eq!(spent(), config::Micros::ZERO);
}

#[test]
fn odd_ids_are_escaped_in_json_and_encoded_in_notice_urls() {
    let s = Server::example();
    let mut r = banner_request();
    r["id"] = json!("req \"quoted\" \\ é\u{1}");
    r["imp"][0]["id"] = json!("imp&1 /?#");
    let reply = s.bid(&r.to_string());
    let v = reply.json();
    assert_eq!(v["id"], r["id"]);
    let bid = only_bid(&reply);
    assert_eq!(bid["impid"], "imp&1 /?#");
    let nurl = bid["nurl"].as_str().unwrap();
    assert!(nurl.contains("i=imp%261%20%2F%3F%23"), "{nurl}");
    // The notice still settles.
    assert_eq!(s.notice(nurl, "1.00").status, 200);
    let day = s.app.now().date();
    let spent = s.app.ledger().spent(
        &ledger::SpendKey::line_item("tent-remarketing-display"),
        day,
    );
    assert_eq!(spent.today, config::Micros(1_000));
}

#[test]
fn a_deal_with_a_lower_floor_bids_under_a_high_open_market_floor() {
    let s = Server::example();
    let mut r = banner_request();
    r["imp"][0]["bidfloor"] = json!(7.0);
    r["imp"][0]["pmp"] = json!({
        "private_auction": 0,
        "deals": [{ "id": "DEAL-NW-PREMIUM-01", "bidfloor": 3.0 }]
    });
    let bid = only_bid(&s.bid(&r.to_string()));
    assert_eq!(bid["dealid"], "DEAL-NW-PREMIUM-01");
    assert_eq!(bid["price"].as_f64(), Some(3.5));
}

#[test]
fn a_lost_bid_gives_its_frequency_slot_back() {
    let s = Server::example();
    let body = banner_request().to_string();
    let first = only_bid(&s.bid(&body));
    for _ in 0..2 {
        assert_eq!(s.bid(&body).status, 200);
    }
    assert_eq!(s.bid(&body).status, 204, "3 in flight: the cap is reached");
    assert_eq!(s.notice(first["lurl"].as_str().unwrap(), "").status, 200);
    assert_eq!(
        s.bid(&body).status,
        200,
        "the lost bid's slot is free again"
    );
    assert_eq!(s.bid(&body).status, 204);
}

/// A fixed-price deal (`at` 3): the deal's floor is the agreed price, and
/// the bid is that price, not the line item's CPM; without a price there
/// is nothing to bid. It was bid at the CPM and explained as second price
/// (exchange probe 3).
#[test]
fn a_fixed_price_deal_is_bid_at_its_price() {
    let s = Server::example();
    let mut r = banner_request();
    r["user"] = json!({ "buyeruid": "nobody" });
    r["imp"][0]["pmp"] = json!({
        "private_auction": 1,
        "deals": [{ "id": "DEAL-NW-PREMIUM-01", "at": 3, "bidfloor": 2.0 }]
    });
    let bid = only_bid(&s.bid(&r.to_string()));
    assert_eq!(bid["dealid"], "DEAL-NW-PREMIUM-01");
    assert_eq!(bid["price"].as_f64(), Some(2.0), "not the 3.50 CPM");
    let why = common::verdict(&common::explain(&s, &r), "nw-deal-premium");
    assert!(
        why["bidding"]["why"]
            .as_str()
            .unwrap_or("")
            .contains("fixed-price deal: bids the agreed price 2.00"),
        "{why}"
    );
    // Priced in another currency: converted up, as floors are.
    r["imp"][0]["pmp"]["deals"][0]["bidfloorcur"] = json!("EUR");
    let bid = only_bid(&s.bid(&r.to_string()));
    assert!(bid["price"].as_f64().unwrap() > 2.0, "{bid}");
    // Answered in the deal's own currency: its price to the micro, not the
    // USD price converted back (300.000153 JPY at 155.3 a dollar).
    r["cur"] = json!(["JPY"]);
    r["imp"][0]["pmp"]["deals"][0]["bidfloorcur"] = json!("jpy");
    r["imp"][0]["pmp"]["deals"][0]["bidfloor"] = json!(300);
    let answer = s.bid(&r.to_string()).json();
    assert_eq!(answer["cur"], "JPY", "{answer}");
    assert_eq!(
        answer["seatbid"][0]["bid"][0]["price"].as_f64(),
        Some(300.0),
        "{answer}"
    );
    let why = common::verdict(&common::explain(&s, &r), "nw-deal-premium");
    assert_eq!(why["price"].as_f64(), Some(300.0), "as the bid says: {why}");
    // Where the exchange takes USD too, still in the deal's currency: a
    // USD bid converted back at the exchange's own rate lands beside the
    // agreed price (exchange probe: 2.105264 USD for a 2.00 EUR deal).
    for cur in [json!(["USD", "JPY"]), json!(["jpy", "USD"])] {
        r["cur"] = cur.clone();
        let answer = s.bid(&r.to_string()).json();
        assert_eq!(answer["cur"], "JPY", "{cur}: {answer}");
        assert_eq!(
            answer["seatbid"][0]["bid"][0]["price"].as_f64(),
            Some(300.0),
            "{cur}: {answer}"
        );
        assert_eq!(common::explain(&s, &r)["currency"], "JPY", "{cur}");
    }
    // A deal currency the exchange does not list: USD, converted.
    r["cur"] = json!(["USD", "EUR"]);
    let answer = s.bid(&r.to_string()).json();
    assert_eq!(answer["cur"], "USD", "{answer}");
    // Another buyer's fixed-price deal (no line item of ours buys in it)
    // changes nothing, also ahead of ours in another imp (review: every
    // bid of the answer was converted).
    let mut two = r.clone();
    two["cur"] = json!(["USD", "EUR", "JPY"]);
    two["imp"][0]["pmp"]["deals"] = json!([
        { "id": "SOMEONE-ELSES", "at": 3, "bidfloor": 0.01, "bidfloorcur": "EUR" },
    ]);
    two["imp"][0]["pmp"]["private_auction"] = json!(0);
    let mut second = two["imp"][0].clone();
    second["id"] = json!("2");
    second["pmp"]["deals"] =
        json!([{ "id": "DEAL-NW-PREMIUM-01", "at": 3, "bidfloor": 300, "bidfloorcur": "JPY" }]);
    second["pmp"]["private_auction"] = json!(1);
    two["imp"].as_array_mut().unwrap().push(second);
    let answer = s.bid(&two.to_string()).json();
    assert_eq!(answer["cur"], "JPY", "{answer}");
    two["imp"].as_array_mut().unwrap().pop();
    assert_eq!(common::explain(&s, &two)["currency"], "USD");
    r["cur"] = json!(["JPY"]);
    // In another currency than the answer's: converted, as before.
    r["imp"][0]["pmp"]["deals"][0]["bidfloorcur"] = json!("EUR");
    r["imp"][0]["pmp"]["deals"][0]["bidfloor"] = json!(2.0);
    let bid = only_bid(&s.bid(&r.to_string()));
    let jpy = bid["price"].as_f64().unwrap();
    assert!((326.0..328.0).contains(&jpy), "2 EUR in JPY: {bid}");
    // Through two rates, rounded up: 2.22 GBP is 2.8101266 USD, then
    // 2.66962025 EUR; 2.669620 would be 2.2199998 GBP, under the price
    // agreed (exchange probe).
    r["cur"] = json!(["EUR"]);
    r["imp"][0]["pmp"]["deals"][0]["bidfloorcur"] = json!("GBP");
    r["imp"][0]["pmp"]["deals"][0]["bidfloor"] = json!(2.22);
    let bid = only_bid(&s.bid(&r.to_string()));
    assert_eq!(bid["price"].as_f64(), Some(2.669621), "{bid}");
    r.as_object_mut().unwrap().remove("cur");
    // Above what the line item pays: no bid. Without a price: none either.
    r["imp"][0]["pmp"]["deals"][0] =
        json!({ "id": "DEAL-NW-PREMIUM-01", "at": 3, "bidfloor": 4.0 });
    assert_eq!(s.bid(&r.to_string()).status, 204);
    r["imp"][0]["pmp"]["deals"][0] = json!({ "id": "DEAL-NW-PREMIUM-01", "at": 3 });
    assert_eq!(s.bid(&r.to_string()).status, 204);
    let why = common::verdict(&common::explain(&s, &r), "nw-deal-premium");
    assert_eq!(why["reason"], "deal", "{why}");
}

/// A digital out-of-home win billed as `qty.multiplier` impressions would
/// cost that many times what the budget is charged: no bid, unless a win is
/// one impression.
#[test]
fn an_imp_billed_as_several_impressions_gets_no_bid() {
    let s = Server::example();
    let mut r = banner_request();
    r["user"] = json!({ "buyeruid": "u-1001" });
    r["imp"][0]["qty"] = json!({ "multiplier": 1.0, "sourcetype": 1 });
    assert_eq!(
        only_bid(&s.bid(&r.to_string()))["crid"],
        "tent-banner-300x250"
    );
    for qty in [
        json!({ "multiplier": 14.2, "sourcetype": 1, "vendor": "measurer.example" }),
        json!({ "multiplier": 0.5 }),
        json!({ "multiplier": "lots" }),
        json!({ "sourcetype": 1 }),
    ] {
        r["imp"][0]["qty"] = qty.clone();
        assert_eq!(s.bid(&r.to_string()).status, 204, "{qty}");
        let why = common::verdict(&common::explain(&s, &r), "tent-remarketing-display");
        assert_eq!(why["reason"], "quantity", "{qty}: {why}");
    }
}

/// One line item targeting the keyword `diabetes`, and one capped at an
/// impression a day, in a one-advertiser config.
fn keyword_and_capped_server(name: &str, vendor: Option<u16>) -> Server {
    let yaml = common::shop_yaml(
        "",
        "100.00",
        "      - id: kw
        media: display
        cpm: 2.00
        budget: { daily: 10.00 }
        targeting:
          keywords: { exact: [diabetes] }
        creatives: [b300]
      - id: capped
        media: display
        cpm: 1.00
        budget: { daily: 10.00 }
        frequency_cap: { impressions: 1, per_hours: 24 }
        creatives: [b300]
      - id: plain
        media: display
        cpm: 0.60
        budget: { daily: 10.00 }
        creatives: [b300]
",
    );
    let dir = common::tempdir(name);
    std::fs::write(dir.join("shop.yaml"), yaml).expect("write config");
    let mut settings = bidder::app::Settings::default();
    if let Some(vendor_id) = vendor {
        settings.privacy = bidder::privacy::PrivacySettings { vendor_id };
    }
    Server::start_with(&dir, None, settings)
}

fn reason(s: &Server, r: &Value, li: &str) -> Value {
    common::verdict(&common::explain(s, r), li)["reason"].clone()
}

/// `user.keywords` are the user's interests (a profile), not what the
/// page is about: they target only where privacy lets behavioural data be
/// used. The page's keywords target under any signal.
#[test]
fn user_keywords_target_only_where_behavioural_data_may_be_used() {
    let s = keyword_and_capped_server("user-keywords", None);
    let mut r = banner_request();
    r["user"] = json!({ "buyeruid": "u-1", "keywords": "diabetes" });
    let bid = common::only_bid(&s, &r);
    assert_eq!(bid["cid"], "kw");
    for (regs, restriction) in [
        (json!({ "coppa": 1 }), "coppa"),
        (json!({ "gdpr": 1 }), "gdpr_no_consent"),
        (json!({ "us_privacy": "1YYN" }), "us_privacy_opt_out"),
        (json!({ "gpp_sid": [7] }), "gpp_unreadable"),
    ] {
        r["regs"] = regs.clone();
        // Explain and the metrics name the restriction (every series is on
        // the page from the start: the count must move).
        let series =
            format!("bidder_privacy_restricted_requests_total{{restriction=\"{restriction}\"}}");
        let count = || {
            let page = common::get(s.admin, "/metrics").text();
            page.lines()
                .find_map(|l| l.strip_prefix(&format!("{series} ")))
                .and_then(|n| n.trim().parse::<u64>().ok())
                .unwrap_or_else(|| panic!("no {series} in\n{page}"))
        };
        let before = count();
        assert_eq!(common::only_bid(&s, &r)["cid"], "plain", "{regs}");
        assert_eq!(reason(&s, &r, "kw"), "keyword", "{regs}");
        assert_eq!(common::explain(&s, &r)["privacy"], restriction, "{regs}");
        assert!(count() > before, "{series}");
    }
    r.as_object_mut().unwrap().remove("regs");
    assert_eq!(common::explain(&s, &r)["privacy"], Value::Null);
    r["site"]["keywords"] = json!("diabetes");
    let bid = common::only_bid(&s, &r);
    assert_eq!(bid["cid"], "kw", "the page's keywords are contextual");
}

/// The all-zero advertising id is every user without one: it names no
/// user, so a capped line item cannot count it (and does not count all
/// such users as one), and no user key goes into tracking URLs.
#[test]
fn the_zero_advertising_id_is_no_user() {
    let s = keyword_and_capped_server("zero-ifa", None);
    let app = |ifa: &str| {
        let mut r = banner_request();
        r.as_object_mut().unwrap().remove("site");
        r.as_object_mut().unwrap().remove("user");
        r["app"] = json!({ "id": "a1", "bundle": "com.example.game", "publisher": { "id": "p1" } });
        r["device"]["ifa"] = json!(ifa);
        r
    };
    let zero = app("00000000-0000-0000-0000-000000000000");
    let bid = common::only_bid(&s, &zero);
    assert_eq!(bid["cid"], "plain", "the uncapped line item");
    let (click, _) = common::banner_urls(bid["adm"].as_str().unwrap());
    assert_eq!(common::param(&click, "u"), Some(""), "no user key");
    assert_eq!(reason(&s, &zero, "capped"), "frequency", "nobody to count");
    let real = app("6d92078a-8246-4ba4-ae5b-76104861e7dc");
    let bid = common::only_bid(&s, &real);
    assert_eq!(bid["cid"], "capped");
    let (click, _) = common::banner_urls(bid["adm"].as_str().unwrap());
    assert_ne!(common::param(&click, "u"), Some(""), "a real id is a user");
    assert_eq!(reason(&s, &real, "capped"), "frequency", "its one a day");
    let other_real = app("0c1f6b8e-55a1-4c57-9d1e-2f0e3f6a9b11");
    assert_eq!(common::only_bid(&s, &other_real)["cid"], "capped");
}

/// Under GDPR the user key that attributes sales (`u=` of the tracking
/// URLs) needs TCF purpose 7 as well as the purposes that allow the
/// targeting; the bid itself does not.
#[test]
fn the_user_key_under_gdpr_needs_the_measurement_purpose() {
    use bidder::privacy::encode::Tc;
    let s = keyword_and_capped_server("measurement-purpose", Some(755));
    let mut r = banner_request();
    r["user"] = json!({ "buyeruid": "u-7" });
    let user_key = |r: &Value| {
        let bid = common::only_bid(&s, r);
        let (click, _) = common::banner_urls(bid["adm"].as_str().unwrap());
        common::param(&click, "u").unwrap_or_default().to_string()
    };
    let consent = |purposes: Vec<u16>| {
        Tc {
            purposes,
            ..Tc::granting(&[755])
        }
        .encode()
    };
    r["regs"] = json!({ "gdpr": 1 });
    r["user"]["consent"] = json!(consent(vec![1, 3, 4, 7]));
    assert_ne!(user_key(&r), "", "purposes 1, 3, 4 and 7");
    // Another user: the first is capped for the day.
    r["user"]["buyeruid"] = json!("u-8");
    r["user"]["consent"] = json!(consent(vec![1, 3, 4]));
    assert_eq!(user_key(&r), "", "no purpose 7: no user key, still a bid");
}

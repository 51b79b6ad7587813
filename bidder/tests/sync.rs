//! User sync over HTTP: the cookie (set, reused, cleared), the redirect
//! to the exchange with our id, `redir` only to listed hosts, and no id
//! at all where privacy signals say no.

mod common;

use common::{
    banner_request, banner_urls, explain, get, only_bid, path_of, request, shop_config_dir, ts,
    verdict, Reply, Server, ADMIN_TOKEN, SHOP,
};
use serde_json::json;

fn server(name: &str) -> Server {
    let dir = shop_config_dir(name);
    std::fs::write(dir.join("shop.yaml"), SHOP).expect("config");
    std::fs::write(
        dir.join("x.yaml"),
        "exchange:\n  id: x\n  name: Exchange X\n  \
         sync_url: https://x.example/setuid?bidder=us&uid=${UID}\n  \
         sync_redirect_hosts: [cdn.x.example]\n",
    )
    .expect("exchange");
    std::fs::write(
        dir.join("y.yaml"),
        "exchange:\n  id: y\n  name: Exchange Y\n",
    )
    .expect("exchange");
    Server::start(&dir, None)
}

fn sync(s: &Server, path: &str, cookie: Option<&str>) -> Reply {
    let c;
    let headers: Vec<(&str, &str)> = match cookie {
        Some(v) => {
            c = format!("bidder_uid={v}");
            vec![("Cookie", c.as_str())]
        }
        None => vec![],
    };
    request(s.bid, "GET", path, &headers, b"")
}

/// The value our cookie sets (the id, a dot, our signature), after
/// checking its attributes.
fn cookie_id(r: &Reply) -> String {
    let c = r.header("set-cookie").expect("a cookie");
    for attr in [
        "Secure",
        "HttpOnly",
        "SameSite=None",
        "Path=/",
        "Max-Age=31536000",
    ] {
        assert!(c.split("; ").any(|a| a == attr), "{attr} in {c}");
    }
    let value = c
        .strip_prefix("bidder_uid=")
        .and_then(|v| v.split(';').next())
        .expect("our cookie");
    let id = uid_of(value);
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    value.to_owned()
}

/// The user id in a cookie value: what exchanges get and send back.
fn uid_of(value: &str) -> &str {
    value.split_once('.').expect("signed").0
}

#[test]
fn a_sync_sets_our_id_and_sends_it_to_the_exchange() {
    let s = server("sync-basic");
    let r = sync(&s, "/sync/x", None);
    assert_eq!(r.status, 302);
    let value = cookie_id(&r);
    let id = uid_of(&value).to_owned();
    assert_eq!(
        r.header("location"),
        Some(format!("https://x.example/setuid?bidder=us&uid={id}").as_str())
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    // The browser's id is kept.
    let again = sync(&s, "/sync/x", Some(&value));
    assert_eq!(cookie_id(&again), value);
    assert!(again.header("location").unwrap().ends_with(&id));
    // A cookie we did not sign is replaced: an id alone, or a forged one.
    for forged in [
        id.clone(),
        format!("{id}.{}", "0".repeat(32)),
        "../../etc".into(),
    ] {
        assert_ne!(uid_of(&cookie_id(&sync(&s, "/sync/x", Some(&forged)))), id);
    }
    // redir: only to the listed host, with the id.
    let r = sync(
        &s,
        "/sync/x?redir=https%3A%2F%2Fcdn.x.example%2Fp%3Fu%3D%24UID",
        Some(&value),
    );
    assert_eq!(
        r.header("location"),
        Some(format!("https://cdn.x.example/p?u={id}").as_str())
    );
    for bad in [
        "https%3A%2F%2Fevil.example%2F",
        "http%3A%2F%2Fcdn.x.example%2F",
        "https%3A%2F%2Fcdn.x.example%40evil.example%2F",
    ] {
        let r = sync(&s, &format!("/sync/x?redir={bad}"), None);
        assert_eq!(r.status, 400, "{bad}");
        assert!(r.header("location").is_none() && r.header("set-cookie").is_none());
    }
    // Unknown exchange, or one without a sync URL.
    assert_eq!(sync(&s, "/sync/nope", None).status, 404);
    assert_eq!(sync(&s, "/sync/y", None).status, 404);
    assert_eq!(request(s.bid, "POST", "/sync/x", &[], b"").status, 405);
}

#[test]
fn without_consent_no_cookie_and_no_id() {
    let s = server("sync-privacy");
    let value = cookie_id(&sync(&s, "/sync/x", None));
    let id = uid_of(&value).to_owned();
    for query in [
        "gdpr=1",
        "gdpr=1&gdpr_consent=",
        "gdpr=1&gdpr_consent=garbage",
        "gdpr=yes",
        "us_privacy=1YYN",
        "gpp_sid=2",
    ] {
        let r = sync(&s, &format!("/sync/x?{query}"), None);
        assert_eq!(r.status, 302, "{query}");
        assert!(r.header("set-cookie").is_none(), "{query}");
        assert_eq!(
            r.header("location"),
            Some("https://x.example/setuid?bidder=us&uid="),
            "{query}"
        );
        // One set before goes now.
        let r = sync(&s, &format!("/sync/x?{query}"), Some(&value));
        let c = r.header("set-cookie").expect("cleared");
        assert!(
            c.starts_with("bidder_uid=;") && c.contains("Max-Age=0"),
            "{c}"
        );
        assert!(!r.header("location").unwrap().contains(&id));
    }
    // GDPR not applying, no opt-out: synced.
    let r = sync(&s, "/sync/x?gdpr=0&us_privacy=1YNN", None);
    cookie_id(&r);
}

/// [`SHOP`] with a `views` audience of tent-1 and a line item buying it
/// (and nothing else), beside the exchange with a sync URL.
fn viewers_server(name: &str) -> (Server, std::path::PathBuf) {
    let dir = viewers_config(name);
    let state = dir.join("state");
    (
        Server::start_in(&dir, &state, 1_000_000, ts("2026-11-24T12:00:00Z")),
        dir,
    )
}

fn viewers_config(name: &str) -> std::path::PathBuf {
    let dir = shop_config_dir(name);
    let shop = SHOP
        .replace(
            "creatives:\n",
            "audiences:\n  - id: viewers\n    kind: views\n    products: [tent-1]\n    \
             lookback_days: 30\ncreatives:\n",
        )
        .replace(
            "        targeting:\n          keywords: { broad: [tent] }\n",
            "        audiences: { any_of: [viewers] }\n",
        );
    std::fs::write(dir.join("shop.yaml"), shop).expect("config");
    std::fs::write(
        dir.join("x.yaml"),
        "exchange:\n  id: x\n  name: Exchange X\n  sync_url: https://x.example/s?u=$UID\n",
    )
    .expect("exchange");
    dir
}

/// A page of the shop's, as a pixel call's `Referer`.
const SHOP_PAGE: Option<&str> = Some("https://www.shop.example/dp/tent-1");

fn pixel(s: &Server, query: &str, id: &str, page: Option<&str>) -> Reply {
    let c = format!("bidder_uid={id}");
    let mut h = vec![("Cookie", c.as_str())];
    if let Some(p) = page {
        h.push(("Referer", p));
    }
    request(s.bid, "GET", &format!("/px/shop?{query}"), &h, b"")
}

fn bids_for(s: &Server, id: &str) -> u16 {
    let mut r = banner_request();
    r["user"]["buyeruid"] = json!(id);
    s.bid(&r.to_string()).status
}

#[test]
fn a_synced_shopper_viewed_on_the_pixel_is_bought_until_they_buy() {
    let (s, dir) = viewers_server("sync-pixel");
    let value = cookie_id(&sync(&s, "/sync/x", None));
    let id = uid_of(&value).to_owned();
    let page = Some("https://www.shop.example/dp/tent-1");
    assert_eq!(bids_for(&s, &id), 204, "not a viewer yet");
    // Records nothing: a foreign page, an unknown advertiser, no consent.
    assert_eq!(
        pixel(&s, "e=view&p=tent-1", &value, Some("https://evil.example/")).status,
        403
    );
    // By our cookie with no page to say where from (a site that withholds
    // its referrer, `<img referrerpolicy="no-referrer">`): refused, as
    // any site could write its visitors' events so (audience probe).
    let r = pixel(&s, "e=view&p=tent-1", &value, None);
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("Origin or Referer"), "{}", r.text());
    let c = format!("bidder_uid={value}");
    assert_eq!(
        request(
            s.bid,
            "GET",
            "/px/nobody?e=view&p=tent-1",
            &[("Cookie", &c)],
            b""
        )
        .status,
        404
    );
    assert_eq!(
        pixel(&s, "e=view&p=tent-1&gdpr=1", &value, page).status,
        200
    );
    // Another shop's product, or one this shop does not list: refused.
    assert_eq!(pixel(&s, "e=view&p=socks", &value, page).status, 400);
    assert_eq!(bids_for(&s, &id), 204, "none of those recorded a view");
    // The view: a GIF, and the shopper is in the audience.
    let r = pixel(&s, "e=view&p=tent-1", &value, page);
    assert_eq!(
        (r.status, r.header("content-type")),
        (200, Some("image/gif"))
    );
    assert_eq!(bids_for(&s, &id), 200, "the exchange's buyeruid is our id");
    // Explain names the audience that matched, and its kind.
    let mut req = banner_request();
    req["user"]["buyeruid"] = json!(id);
    let v = verdict(&explain(&s, &req), "tents");
    assert_eq!(
        v["audience"],
        json!({"id": "viewers", "kind": "views"}),
        "{v}"
    );
    // Shown (impression tracked), then bought: out of the audience, and
    // the purchase attributed to that impression.
    let mut req = banner_request();
    req["user"]["buyeruid"] = json!(id);
    let bid = only_bid(&s, &req);
    let (_, px) = banner_urls(bid["adm"].as_str().unwrap());
    assert_eq!(s.notice(bid["nurl"].as_str().unwrap(), "1.00").status, 200);
    assert_eq!(get(s.bid, path_of(&px)).status, 200);
    s.clock.advance_millis(60_000);
    let buy = "e=purchase&p=tent-1&amount=99.00&currency=USD&order_id=P1";
    assert_eq!(pixel(&s, buy, &value, page).status, 200);
    assert_eq!(bids_for(&s, &id), 204, "bought: no longer a viewer");
    // The line item's row of the day's report: purchases and sales.
    let report = || {
        let rep = request(
            s.admin,
            "GET",
            "/v1/reports?from=2026-11-24&to=2026-11-24&by=line_item",
            &[("Authorization", &format!("Bearer {ADMIN_TOKEN}"))],
            b"",
        )
        .json();
        let row = &rep["rows"][0];
        assert_eq!(row["line_item"], json!("tents"), "{rep:#}");
        (
            row["purchases"].as_u64().unwrap(),
            row["sales"]["micros"].as_i64().unwrap(),
        )
    };
    assert_eq!(report(), (1, 99_000_000));
    // Without an order id, the thank-you page reloaded (or reopened)
    // within half an hour is the same purchase (reports probe: three
    // calls, three purchases); another amount is another purchase, and so
    // is the same one an hour later.
    let again = "e=purchase&p=tent-1&amount=20.00&currency=USD";
    for _ in 0..3 {
        assert_eq!(pixel(&s, again, &value, page).status, 200);
        s.clock.advance_millis(2_000);
    }
    assert_eq!(report(), (2, 119_000_000));
    let other = "e=purchase&p=tent-1&amount=30.00&currency=USD";
    assert_eq!(pixel(&s, other, &value, page).status, 200);
    assert_eq!(report(), (3, 149_000_000));
    s.clock.advance_millis(3_600_000);
    assert_eq!(pixel(&s, again, &value, page).status, 200);
    assert_eq!(report(), (4, 169_000_000));
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn one_shopper_cannot_flood_the_pixel() {
    let (s, dir) = viewers_server("sync-flood");
    let id = cookie_id(&sync(&s, "/sync/x", None));
    // A made-up id, even a signed-looking one, is nobody.
    let r = pixel(
        &s,
        "e=view&p=tent-1",
        &format!("{}.{}", "a".repeat(32), "0".repeat(32)),
        SHOP_PAGE,
    );
    assert_eq!(r.status, 200);
    for i in 0..bidder::pixel::PER_USER_PER_MINUTE + 10 {
        let _ = i;
        assert_eq!(pixel(&s, "e=view&p=tent-1", &id, SHOP_PAGE).status, 200);
    }
    let metrics = get(s.admin, "/metrics").text();
    let flooded = metrics
        .lines()
        .find(|l| l.starts_with("bidder_pixel_events_total{result=\"flooded\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok());
    assert!(flooded.is_some_and(|n| n >= 10.0), "{metrics}");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn one_address_cannot_flood_the_pixel_either() {
    let dir = viewers_config("sync-flood-ip");
    let settings = bidder::Settings {
        pixel_events_per_ip_per_minute: 5,
        ..bidder::Settings::default()
    };
    let s = Server::start_with(&dir, None, settings);
    let a = cookie_id(&sync(&s, "/sync/x", None));
    let b = cookie_id(&sync(&s, "/sync/x", None));
    let (a, b) = (a.as_str(), b.as_str());
    // Five events of one shopper use up the address's minute...
    for _ in 0..5 {
        assert_eq!(pixel(&s, "e=view&p=tent-2", a, SHOP_PAGE).status, 200);
    }
    // ...so another shopper's view from it records nothing.
    assert_eq!(pixel(&s, "e=view&p=tent-1", b, SHOP_PAGE).status, 200);
    assert_eq!(bids_for(&s, uid_of(b)), 204, "the view was not recorded");
    s.clock.advance_millis(60_000);
    assert_eq!(pixel(&s, "e=view&p=tent-1", b, SHOP_PAGE).status, 200);
    assert_eq!(bids_for(&s, uid_of(b)), 200, "a new minute");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_advertisers_server_speaks_for_ids_its_page_was_given() {
    let (s, dir) = viewers_server("sync-s2s");
    // The shop's page sends the browser through its own sync: our cookie,
    // and back to the shop with an id signed for the shop.
    let r = sync(
        &s,
        "/px/shop/sync?redir=https%3A%2F%2Fwww.shop.example%2Fcb%3Fbuid%3D%24%7BUID%7D",
        None,
    );
    assert_eq!(r.status, 302, "{}", r.text());
    let value = cookie_id(&r);
    let id = uid_of(&value).to_owned();
    let location = r.header("location").unwrap().to_owned();
    let signed = location
        .strip_prefix("https://www.shop.example/cb?buid=")
        .unwrap_or_else(|| panic!("{location}"))
        .to_owned();
    // Our id masked for the shop (no one can join on it), signed, expiring.
    assert!(
        signed.starts_with("v1.") && !signed.contains(&id),
        "{signed}"
    );
    // Only to the shop's own https pages; unknown advertisers are 404.
    for bad in [
        "https%3A%2F%2Fevil.example%2F",
        "http%3A%2F%2Fshop.example%2F",
        "https%3A%2F%2Fshop.example%40evil.example%2F",
    ] {
        assert_eq!(
            sync(&s, &format!("/px/shop/sync?redir={bad}"), None).status,
            400
        );
    }
    assert_eq!(sync(&s, "/px/shop/sync", None).status, 400);
    assert_eq!(
        sync(
            &s,
            "/px/nobody/sync?redir=https%3A%2F%2Fshop.example%2F",
            None
        )
        .status,
        404
    );
    // Without consent: no cookie and no id for the shop either.
    let r = sync(
        &s,
        "/px/shop/sync?gdpr=1&redir=https%3A%2F%2Fshop.example%2Fcb%3Fu%3D%24UID",
        None,
    );
    assert_eq!(r.header("location"), Some("https://shop.example/cb?u="));
    assert!(r.header("set-cookie").is_none());

    // Server to server: no cookie, no page; the signed id names the user.
    let s2s = |query: &str| request(s.bid, "GET", &format!("/px/shop?{query}"), &[], b"");
    assert_eq!(bids_for(&s, &id), 204);
    // A forged or bare id, or the cookie's value, records nothing.
    for forged in [
        id.clone(),
        value.clone(),
        format!("{id}.{}", "0".repeat(64)),
    ] {
        let r = s2s(&format!("e=view&p=tent-1&uid={forged}"));
        assert_eq!(r.status, 403, "{forged}");
    }
    assert_eq!(
        s2s(&format!("e=view&p=tent-1&uid={signed}&uid={signed}")).status,
        400
    );
    assert_eq!(bids_for(&s, &id), 204);
    assert_eq!(s2s(&format!("e=view&p=tent-1&uid={signed}")).status, 200);
    assert_eq!(
        bids_for(&s, &id),
        200,
        "the shop's server recorded the view"
    );
    // 90 days on, the value has expired.
    s.clock.advance_millis(90 * 24 * 3_600_000);
    assert_eq!(s2s(&format!("e=view&p=tent-1&uid={signed}")).status, 403);
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The browser's Global Privacy Control (`Sec-GPC: 1`) is an opt-out, as
/// one in the query is: a sync sets no cookie (one already there is
/// cleared) and hands the exchange no id; a pixel call records nothing
/// (audience probe: both went on as if it were not sent).
#[test]
fn global_privacy_control_is_an_opt_out() {
    let (s, dir) = viewers_server("sync-gpc");
    let value = cookie_id(&sync(&s, "/sync/x", None));
    let c = format!("bidder_uid={value}");
    let r = request(
        s.bid,
        "GET",
        "/sync/x",
        &[("Cookie", &c), ("Sec-GPC", "1")],
        b"",
    );
    assert_eq!(r.status, 302);
    let location = r.header("location").unwrap_or_default();
    assert!(location.ends_with("u="), "no id handed on: {location}");
    assert!(
        r.header("set-cookie")
            .is_some_and(|c| c.contains("Max-Age=0")),
        "cleared: {:?}",
        r.header("set-cookie")
    );
    let r = request(
        s.bid,
        "GET",
        "/px/shop?e=view&p=tent-1",
        &[
            ("Cookie", &c),
            ("Referer", SHOP_PAGE.unwrap()),
            ("Sec-GPC", "1"),
        ],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        bids_for(&s, uid_of(&value)),
        204,
        "the view was not recorded"
    );
    // Passed on in the query (an advertiser's server for its shopper), the
    // same; an unfilled macro says nothing.
    assert_eq!(
        pixel(&s, "e=view&p=tent-1&gpc=1", &value, SHOP_PAGE).status,
        200
    );
    assert_eq!(
        bids_for(&s, uid_of(&value)),
        204,
        "the view was not recorded"
    );
    let r = sync(&s, "/sync/x?gpc=1", Some(&value));
    assert!(r.header("location").unwrap_or_default().ends_with("u="));
    // Without it, the same call records the view.
    assert_eq!(
        pixel(&s, "e=view&p=tent-1&gpc=%24%7BGPC%7D", &value, SHOP_PAGE).status,
        200
    );
    assert_eq!(bids_for(&s, uid_of(&value)), 200);
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A purchase stamped ahead of the clock (a feed's clock skew; uploads
/// take up to an hour ahead) ends the buyer's membership of `views`
/// audiences at once: it has happened. Waiting for its time, the buyer was
/// remarketed the product they had bought for up to that hour (audiences
/// probe). A view stamped ahead still waits its turn.
#[test]
fn a_purchase_stamped_ahead_of_the_clock_ends_the_view_at_once() {
    let (s, dir) = viewers_server("future-purchase");
    let event = |user: &str, kind: &str, at: &str| json!({ "user": user, "event": kind, "product": "tent-1", "at": at });
    let r = common::upload(
        &s,
        &[
            event("u-buyer", "view", "2026-11-24T11:00:00Z"),
            event("u-buyer", "purchase", "2026-11-24T12:30:00Z"),
            event("u-viewer", "view", "2026-11-24T11:00:00Z"),
            event("u-later", "view", "2026-11-24T12:30:00Z"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(bids_for(&s, "u-viewer"), 200);
    assert_eq!(bids_for(&s, "u-buyer"), 204, "bought, 30 minutes ahead");
    assert_eq!(bids_for(&s, "u-later"), 204, "a view ahead waits");
    let _ = std::fs::remove_dir_all(&dir);
}

/// One advertiser's own site (its pixel) speaks for its audiences only:
/// two shops listing the same product, a view on one's pages does not put
/// the shopper in the other's audience, and a purchase there does not end
/// the other's. The shop's data (uploads) still counts for both, and a
/// purchase on the advertiser's own pixel ends a view it has from the
/// shop's data (audiences probe: a rival's page joined, and its purchase
/// ended, this advertiser's audience).
#[test]
fn an_advertisers_pixel_speaks_for_its_own_audiences_only() {
    let dir = viewers_config("pixel-own");
    let rival = SHOP
        .replace("id: shop\n  name: Shop", "id: rival\n  name: Rival")
        .replace("shop.example", "rival.example")
        .replace("id: b300", "id: r300")
        .replace("creatives: [b300]", "creatives: [r300]")
        .replace("id: o1\n", "id: rival-o\n")
        .replace("id: tents\n", "id: rival-li\n")
        .replace(
            "creatives:\n",
            "audiences:\n  - { id: r-viewers, kind: views, products: [tent-1] }\ncreatives:\n",
        )
        .replace(
            "        targeting:\n          keywords: { broad: [tent] }\n",
            "        audiences: { any_of: [r-viewers] }\n",
        );
    std::fs::write(dir.join("rival.yaml"), rival).unwrap();
    let state = dir.join("state");
    let s = Server::start_in(&dir, &state, 1_000_000, ts("2026-11-24T12:00:00Z"));
    let value = cookie_id(&sync(&s, "/sync/x", None));
    let id = uid_of(&value).to_owned();
    let px = |adv: &str, query: &str, page: &str| {
        let c = format!("bidder_uid={value}");
        request(
            s.bid,
            "GET",
            &format!("/px/{adv}?{query}"),
            &[("Cookie", c.as_str()), ("Referer", page)],
            b"",
        )
        .status
    };
    let bids = |li: &str| {
        let mut req = banner_request();
        req["user"]["buyeruid"] = json!(id);
        verdict(&explain(&s, &req), li)["bids"] == json!(true)
    };
    let rival_page = "https://rival.example/p/tent-1";
    let shop_page = "https://www.shop.example/dp/tent-1";
    // Viewed on the rival's site: the rival's audience, not the shop's.
    assert_eq!(px("rival", "e=view&p=tent-1", rival_page), 200);
    assert!(bids("rival-li"));
    assert!(
        !bids("tents"),
        "the rival's page put the shopper in the shop's audience"
    );
    // Viewed on the shop's own site too; bought on the rival's: the shop's
    // view stands.
    assert_eq!(px("shop", "e=view&p=tent-1", shop_page), 200);
    s.clock.advance_millis(60_000);
    assert_eq!(px("rival", "e=purchase&p=tent-1", rival_page), 200);
    assert!(!bids("rival-li"));
    assert!(
        bids("tents"),
        "the rival's purchase ended the shop's audience"
    );

    // A view from the shop's data counts for both; a purchase on the
    // shop's own site ends the shop's, whichever name the view had.
    let other = "u-shared";
    let r = common::upload(
        &s,
        &[
            json!({ "user": other, "event": "view", "product": "tent-1", "at": "2026-11-24T12:00:00Z" }),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let bids_other = |li: &str| {
        let mut req = banner_request();
        req["user"]["buyeruid"] = json!(other);
        verdict(&explain(&s, &req), li)["bids"] == json!(true)
    };
    assert!(bids_other("tents") && bids_other("rival-li"));
    let r = common::upload(
        &s,
        &[json!({
            "user": other, "event": "purchase", "product": "tent-1",
            "at": "2026-11-24T12:01:00Z", "advertiser": "shop"
        })],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!bids_other("tents"), "bought on the shop's own site");
    // An advertiser the config does not have, or one on an interest (which
    // audiences read from the shop's data only): refused with the line.
    for (line, why) in [
        (
            json!({ "user": other, "event": "view", "product": "tent-1",
                    "at": "2026-11-24T12:01:00Z", "advertiser": "nobody" }),
            "not an advertiser of the config",
        ),
        (
            json!({ "user": other, "event": "interest", "interest": "hiking",
                    "at": "2026-11-24T12:01:00Z", "advertiser": "shop" }),
            "views and purchases only",
        ),
    ] {
        let r = common::upload(&s, &[line]);
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(r.text().contains(why), "{}", r.text());
    }
    assert!(
        bids_other("rival-li"),
        "the shop's own purchase ended the rival's audience"
    );
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

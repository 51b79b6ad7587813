//! Each targeting rule with a positive and a negative case, on one-line-item
//! configs written for the test; the explain reason is checked too.

mod common;

use common::{banner_request, Server};
use serde_json::{json, Value};

/// A server whose only line item has `targeting` (YAML lines, indented for
/// the `targeting:` block).
fn server(name: &str, targeting: &str) -> Server {
    let line_item = format!(
        "      - id: li\n        media: display\n        cpm: 2.00\n        budget: {{ daily: 50.00 }}\n        targeting:\n{targeting}\n        creatives: [b300]\n"
    );
    common::shop_server(name, &common::shop_yaml("", "500.00", &line_item))
}

/// 200, or the explain reason of the no-bid.
fn outcome(s: &Server, r: &Value) -> String {
    let reply = s.bid(&r.to_string());
    if reply.status == 200 {
        return "bid".into();
    }
    assert_eq!(reply.status, 204);
    let v = common::admin(s.admin, "/v1/explain", r.to_string().as_bytes()).json();
    v["line_items"][0]["reason"].as_str().unwrap().to_string()
}

#[test]
fn regions_and_cities() {
    let s = server(
        "regions",
        "          countries: [USA]\n          regions: [US-CO, US-WA]",
    );
    let mut r = banner_request();
    r["device"]["geo"] = json!({ "country": "USA", "region": "CO" });
    assert_eq!(outcome(&s, &r), "bid");
    r["device"]["geo"]["region"] = json!("us-wa");
    assert_eq!(outcome(&s, &r), "bid", "full ISO-3166-2 form, any case");
    r["device"]["geo"]["region"] = json!("NY");
    assert_eq!(outcome(&s, &r), "geo");
    r["device"]["geo"] = json!({ "country": "USA" });
    assert_eq!(
        outcome(&s, &r),
        "geo",
        "no region: a region-targeted item stays out"
    );

    let s = server("cities", "          cities: [Denver, \"São Paulo\"]");
    let mut r = banner_request();
    r["device"]["geo"]["city"] = json!("DENVER");
    assert_eq!(outcome(&s, &r), "bid");
    r["device"]["geo"]["city"] = json!("são paulo");
    assert_eq!(outcome(&s, &r), "bid");
    r["device"]["geo"]["city"] = json!("Boulder");
    assert_eq!(outcome(&s, &r), "geo");
}

#[test]
fn operating_systems() {
    let s = server("os", "          os: [ios, android]");
    let mut r = banner_request();
    r["device"]["os"] = json!("iOS");
    assert_eq!(outcome(&s, &r), "bid");
    r["device"]["os"] = json!("Android");
    assert_eq!(outcome(&s, &r), "bid");
    r["device"]["os"] = json!("Windows");
    assert_eq!(outcome(&s, &r), "os");
    r["device"].as_object_mut().unwrap().remove("os");
    assert_eq!(outcome(&s, &r), "os");
}

#[test]
fn site_domains_allow_and_block() {
    let s = server("sites-allow", "          sites: { allow: [news.example] }");
    let mut r = banner_request();
    assert_eq!(outcome(&s, &r), "bid", "news.example");
    r["site"]["domain"] = json!("sports.news.example");
    assert_eq!(outcome(&s, &r), "bid", "subdomain");
    r["site"]["domain"] = json!("other.example");
    assert_eq!(outcome(&s, &r), "inventory");
    r["site"].as_object_mut().unwrap().remove("domain");
    r["site"]["page"] = json!("https://news.example/story");
    assert_eq!(
        outcome(&s, &r),
        "bid",
        "host of site.page when domain is missing"
    );

    let s = server("sites-block", "          sites: { block: [news.example] }");
    let mut r = banner_request();
    assert_eq!(outcome(&s, &r), "inventory");
    r["site"]["domain"] = json!("other.example");
    assert_eq!(outcome(&s, &r), "bid");
}

#[test]
fn app_bundles_and_publishers() {
    let s = server("apps", "          apps: { allow: [com.example.reader] }");
    let mut r = banner_request();
    assert_eq!(
        outcome(&s, &r),
        "inventory",
        "a site request is not in an app allow list"
    );
    r.as_object_mut().unwrap().remove("site");
    r["app"] = json!({ "bundle": "com.example.reader", "publisher": { "id": "p9" } });
    assert_eq!(outcome(&s, &r), "bid");
    r["app"]["bundle"] = json!("com.example.other");
    assert_eq!(outcome(&s, &r), "inventory");

    let s = server(
        "publishers",
        "          publishers: { allow: [p1, p9], block: [p2] }",
    );
    let mut r = banner_request();
    assert_eq!(outcome(&s, &r), "bid", "site.publisher.id p1");
    r["site"]["publisher"]["id"] = json!("p2");
    assert_eq!(outcome(&s, &r), "inventory");
    r["site"]["publisher"]["id"] = json!("p3");
    assert_eq!(outcome(&s, &r), "inventory");
}

#[test]
fn dayparts_in_the_users_time_zone_or_utc() {
    // The test clock is Tuesday 2026-11-24 12:00 UTC.
    let user = server(
        "dayparts-user",
        "          dayparts:\n            timezone: user\n            slots:\n              - { days: [tue], from: \"06:00\", to: \"09:00\" }",
    );
    let mut r = banner_request();
    r["device"]["geo"]["utcoffset"] = json!(-300); // 07:00 in New York
    assert_eq!(outcome(&user, &r), "bid");
    r["device"]["geo"]["utcoffset"] = json!(60); // 13:00 in Paris
    assert_eq!(outcome(&user, &r), "daypart");
    r["device"]["geo"]
        .as_object_mut()
        .unwrap()
        .remove("utcoffset");
    assert_eq!(outcome(&user, &r), "daypart", "no offset: UTC noon");

    let utc = server(
        "dayparts-utc",
        "          dayparts:\n            timezone: utc\n            slots:\n              - { days: [mon, tue], from: \"11:00\", to: \"13:00\" }",
    );
    let mut r = banner_request();
    r["device"]["geo"]["utcoffset"] = json!(-300);
    assert_eq!(outcome(&utc, &r), "bid", "UTC ignores the user's offset");
    utc.clock.set(common::ts("2026-11-25T12:00:00Z")); // Wednesday
    assert_eq!(outcome(&utc, &r), "daypart");
}

/// `bidder_no_bids_total` of exchange `x` for `reason`.
fn no_bids(s: &Server, x: &str, reason: &str) -> f64 {
    let page = common::get(s.admin, "/metrics");
    assert_eq!(page.status, 200);
    let want = format!("bidder_no_bids_total{{exchange=\"{x}\",reason=\"{reason}\"}} ");
    page.text()
        .lines()
        .find_map(|l| l.strip_prefix(want.as_str()))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The auction and explain walk one list of checks per line item: for a line
/// item that sets every rule, each request stops at the first rule it
/// breaks, the auction counts that very reason, and explain names it.
#[test]
fn the_auction_and_explain_stop_at_the_same_check() {
    let line_item = "      - id: li
        media: display
        cpm: 2.00
        budget: { daily: 50.00 }
        frequency_cap: { impressions: 1, per_hours: 24 }
        targeting:
          countries: [USA]
          devices: [desktop]
          regions: [US-CO]
          os: [linux]
          sites: { allow: [news.example] }
          keywords: { broad: [tent] }
        creatives: [b300]
";
    let dir = common::tempdir("agree");
    std::fs::write(
        dir.join("shop.yaml"),
        common::shop_yaml("", "500.00", line_item),
    )
    .unwrap();
    std::fs::write(
        dir.join("agree.yaml"),
        "exchange:\n  id: agree\n  name: Agree\n",
    )
    .unwrap();
    let s = Server::start(&dir, None);
    let mut good = banner_request();
    good["device"]["geo"] = json!({ "country": "USA", "region": "CO" });
    good["device"]["os"] = json!("Linux");
    good["site"]["keywords"] = json!("tent");

    let edit = |f: &dyn Fn(&mut Value)| {
        let mut r = good.clone();
        f(&mut r);
        r
    };
    // Each breaks its rule and every rule after it: the first one counts.
    let cases: Vec<(&str, Value)> = vec![
        (
            "media",
            edit(&|r| r["imp"][0] = json!({ "id": "1", "audio": { "mimes": ["audio/mp4"] } })),
        ),
        (
            "size",
            edit(&|r| r["imp"][0]["banner"] = json!({ "w": 728, "h": 90 })),
        ),
        (
            "country",
            edit(&|r| {
                r["device"]["geo"]["country"] = json!("CAN");
                r["device"]["devicetype"] = json!(4);
                r["site"]["keywords"] = json!("boat");
            }),
        ),
        (
            "deal",
            edit(&|r| {
                r["imp"][0]["pmp"] = json!({ "private_auction": 1, "deals": [{ "id": "d1" }] });
                r["device"]["devicetype"] = json!(4);
            }),
        ),
        (
            "device",
            edit(&|r| {
                r["device"]["devicetype"] = json!(4);
                r["device"]["os"] = json!("iOS");
            }),
        ),
        (
            "geo",
            edit(&|r| {
                r["device"]["geo"]["region"] = json!("WA");
                r["site"]["domain"] = json!("other.example");
            }),
        ),
        ("os", edit(&|r| r["device"]["os"] = json!("iOS"))),
        (
            "inventory",
            edit(&|r| {
                r["site"]["domain"] = json!("other.example");
                r["imp"][0]["bidfloor"] = json!(3.0);
            }),
        ),
        (
            "blocked",
            edit(&|r| {
                r["badv"] = json!(["shop.example"]);
                r["imp"][0]["bidfloor"] = json!(3.0);
            }),
        ),
        (
            "floor",
            edit(&|r| {
                r["imp"][0]["bidfloor"] = json!(3.0);
                r["site"]["keywords"] = json!("boat");
            }),
        ),
        (
            "keyword",
            edit(&|r| {
                r["site"]["keywords"] = json!("boat");
                r["user"] = json!({});
            }),
        ),
        // A capped line item must know whom it counts.
        ("frequency", edit(&|r| r["user"] = json!({}))),
        ("privacy", edit(&|r| r["regs"] = json!({ "coppa": 1 }))),
    ];
    for (want, r) in &cases {
        let before = no_bids(&s, "agree", want);
        let reply = common::post(s.bid, "/openrtb2/bid/agree", &[], r.to_string().as_bytes());
        assert_eq!(reply.status, 204, "{want}: {}", reply.text());
        assert_eq!(
            no_bids(&s, "agree", want),
            before + 1.0,
            "the auction's reason: {want}"
        );
        let v = common::admin(
            s.admin,
            "/v1/explain?exchange=agree",
            r.to_string().as_bytes(),
        );
        assert_eq!(v.status, 200, "{}", v.text());
        assert_eq!(
            v.json()["line_items"][0]["reason"],
            *want,
            "explain's reason"
        );
    }
    let reply = common::post(
        s.bid,
        "/openrtb2/bid/agree",
        &[],
        good.to_string().as_bytes(),
    );
    assert_eq!(reply.status, 200, "every rule holds: {}", reply.text());
    // Not every exchange writes alpha-3 in upper case: the country is the
    // same one in any case, for the index and the check alike.
    for country in ["usa", "Usa"] {
        let mut r = good.clone();
        r["device"]["geo"]["country"] = json!(country);
        // Another shopper: the bid above used this one's frequency cap.
        r["user"] = json!({ "id": format!("shopper-{country}") });
        let reply = common::post(s.bid, "/openrtb2/bid/agree", &[], r.to_string().as_bytes());
        let v = common::admin(
            s.admin,
            "/v1/explain?exchange=agree",
            r.to_string().as_bytes(),
        );
        assert_eq!(reply.status, 200, "{country}: {}", v.text());
    }
}

/// A one-line-item server on exchange `ex`, `targeting` given as whole YAML
/// lines (or none).
fn agree_server(name: &str, ex: &str, targeting: &str) -> Server {
    let line_item = format!(
        "      - id: li\n        media: display\n        cpm: 2.00\n        budget: {{ daily: 50.00 }}\n{targeting}        creatives: [b300]\n"
    );
    let dir = common::tempdir(name);
    std::fs::write(
        dir.join("shop.yaml"),
        common::shop_yaml("", "500.00", &line_item),
    )
    .unwrap();
    std::fs::write(
        dir.join(format!("{ex}.yaml")),
        format!("exchange:\n  id: {ex}\n  name: {ex}\n"),
    )
    .unwrap();
    Server::start(&dir, None)
}

/// The auction's no-bid reason for `r` is `want`, and explain's too.
fn assert_agree(s: &Server, ex: &str, r: &Value, want: &str) {
    let explain = common::admin(
        s.admin,
        &format!("/v1/explain?exchange={ex}"),
        r.to_string().as_bytes(),
    );
    assert_eq!(explain.status, 200, "{}", explain.text());
    assert_eq!(explain.json()["line_items"][0]["reason"], want, "explain");
    let before = no_bids(s, ex, want);
    let reply = common::post(
        s.bid,
        &format!("/openrtb2/bid/{ex}"),
        &[],
        r.to_string().as_bytes(),
    );
    assert_eq!(reply.status, 204, "{}", reply.text());
    assert_eq!(no_bids(s, ex, want), before + 1.0, "the auction's reason");
}

/// Over several imps the reason is the furthest any got, for the auction as
/// for explain (the auction kept the last imp's).
#[test]
fn over_imps_the_furthest_reason_counts() {
    let s = agree_server("agree-two-imps", "twoimp", "");
    let mut r = banner_request();
    r["imp"][0]["bidfloor"] = json!(3.0);
    r["imp"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "id": "2", "banner": { "w": 728, "h": 90 } }));
    assert_agree(&s, "twoimp", &r, "floor");
}

/// An imp whose floor cannot be priced stops every line item before any
/// rule of theirs: explain says so too.
#[test]
fn an_unpriced_floor_is_the_reason_before_any_rule() {
    let s = agree_server(
        "agree-unpriced-floor",
        "unpriced",
        "        targeting:\n          countries: [USA]\n",
    );
    let mut r = banner_request();
    r["device"]["geo"]["country"] = json!("CAN");
    r["imp"][0]["bidfloor"] = json!(1.0);
    r["imp"][0]["bidfloorcur"] = json!("XAU");
    assert_agree(&s, "unpriced", &r, "currency");
    // A second imp that could be priced gets further: its reason counts.
    r["imp"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "id": "2", "banner": { "w": 300, "h": 250 } }));
    assert_agree(&s, "unpriced", &r, "country");
}

/// A long block list's answer is kept per advertiser for the request
/// (bounds probe: it was worked out again for every line item on every
/// imp): each advertiser still gets its own, on every imp, and the same
/// one as a short list gives.
#[test]
fn long_block_lists_answer_each_advertiser_for_itself() {
    let items = |prefix: &str| -> String {
        ["a", "b"]
            .iter()
            .map(|id| {
                format!(
                    "      - id: {prefix}-{id}\n        media: display\n        cpm: 2.00\n        budget: {{ daily: 50.00 }}\n        creatives: [{prefix}-b300]\n"
                )
            })
            .collect()
    };
    let yaml = |prefix: &str, domain: &str, category: &str| {
        common::shop_yaml("", "500.00", &items(prefix))
            .replace("id: shop", &format!("id: {prefix}"))
            .replace("[shop.example]", &format!("[{domain}]"))
            .replace("[IAB22]", &format!("[{category}]"))
            .replace("id: b300", &format!("id: {prefix}-b300"))
            .replace("id: o1", &format!("id: {prefix}-o1"))
    };
    let dir = common::tempdir("block-memo");
    std::fs::write(dir.join("shop.yaml"), yaml("shop", "shop.example", "IAB22")).unwrap();
    std::fs::write(dir.join("mart.yaml"), yaml("mart", "mart.example", "IAB18")).unwrap();
    let s = Server::start(&dir, None);
    let mut r = banner_request();
    let second = json!({ "id": "2", "banner": { "w": 300, "h": 250 } });
    r["imp"] = json!([r["imp"][0].clone(), second]);
    let reasons = |r: &Value| -> Vec<(String, String)> {
        let v = common::admin(s.admin, "/v1/explain", r.to_string().as_bytes()).json();
        let mut out: Vec<(String, String)> = v["line_items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["line_item"].as_str().unwrap_or("").to_string(),
                    l["reason"].as_str().unwrap_or("bid").to_string(),
                )
            })
            .collect();
        out.sort();
        out
    };
    let want = |shop: &str, mart: &str| -> Vec<(String, String)> {
        [
            ("mart-a", mart),
            ("mart-b", mart),
            ("shop-a", shop),
            ("shop-b", shop),
        ]
        .iter()
        .map(|(id, why)| (id.to_string(), why.to_string()))
        .collect()
    };
    let filler: Vec<String> = (0..40).map(|i| format!("brand-{i}.example")).collect();
    for (blocked, (shop, mart)) in [
        ("https://www.shop.example/", ("blocked", "bid")),
        ("mart.example", ("bid", "blocked")),
    ] {
        r["badv"] = json!([filler.clone(), vec![blocked.to_string()]].concat());
        assert_eq!(reasons(&r), want(shop, mart), "{blocked}");
        r["badv"] = json!([blocked]);
        assert_eq!(reasons(&r), want(shop, mart), "{blocked} as a short list");
    }
    r.as_object_mut().unwrap().remove("badv");
    let categories: Vec<String> = (1..=40).map(|i| format!("IAB1-{i}")).collect();
    r["bcat"] = json!([categories, vec!["IAB18".to_string()]].concat());
    assert_eq!(reasons(&r), want("bid", "blocked"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Block lists block whatever their length, up to a bound past which every
/// advertiser is taken as blocked: each advertiser is compared with every
/// entry for every line item on every imp (CPU probe: a megabyte of `bcat`
/// held a core for a second), and an entry not read could be the one that
/// blocks it.
#[test]
fn block_lists_block_up_to_a_bound_and_all_past_it() {
    let items: String = ["li-a", "li-b"]
        .iter()
        .map(|id| {
            format!(
                "      - id: {id}\n        media: display\n        cpm: 2.00\n        budget: {{ daily: 50.00 }}\n        creatives: [b300]\n"
            )
        })
        .collect();
    let s = common::shop_server("long-block-lists", &common::shop_yaml("", "500.00", &items));
    let mut r = banner_request();
    let second = json!({ "id": "2", "banner": { "w": 300, "h": 250 } });
    r["imp"] = json!([r["imp"][0].clone(), second]);
    let reasons = |r: &Value| -> Vec<String> {
        let v = common::admin(s.admin, "/v1/explain", r.to_string().as_bytes()).json();
        v["line_items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["reason"].as_str().unwrap_or("bid").to_string())
            .collect()
    };
    let others: Vec<String> = (1..=40)
        .filter(|&i| i != 22)
        .map(|i| format!("IAB{i}"))
        .collect();
    r["bcat"] = json!(others);
    assert_eq!(s.bid(&r.to_string()).status, 200);
    assert_eq!(reasons(&r), ["bid", "bid"]);
    let mut with_ours = others.clone();
    with_ours.push("IAB22".into());
    r["bcat"] = json!(with_ours);
    assert_eq!(s.bid(&r.to_string()).status, 204);
    assert_eq!(reasons(&r), ["blocked", "blocked"]);
    r["bcat"] = json!(["IAB22"]);
    assert_eq!(reasons(&r), ["blocked", "blocked"], "as a short list");
    r.as_object_mut().unwrap().remove("bcat");
    let badv: Vec<String> = (0..40).map(|i| format!("brand-{i}.example")).collect();
    r["badv"] = json!([badv, vec!["www.shop.example/".to_string()]].concat());
    assert_eq!(reasons(&r), ["blocked", "blocked"]);
    r.as_object_mut().unwrap().remove("badv");
    let past_the_bound: Vec<String> = (0..2_049).map(|i| format!("IAB1-{i}")).collect();
    r["bcat"] = json!(past_the_bound);
    assert_eq!(s.bid(&r.to_string()).status, 204);
    assert_eq!(reasons(&r), ["blocked", "blocked"]);
}

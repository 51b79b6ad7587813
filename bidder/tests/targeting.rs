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

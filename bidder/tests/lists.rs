//! List audiences over HTTP: members uploaded to
//! `POST /v1/audiences/{id}/members` (whole batches, gzip, removal), a
//! line item buying the list bids for a request carrying a member under
//! each source the list names, privacy rules apply, and members survive a
//! restart.

mod common;

use std::io::Write;

use common::{
    admin, banner_request, explain, request, shop_config_dir, shop_yaml, tempdir, ts, verdict,
    Reply, Server, ADMIN_TOKEN, SHOP,
};
use serde_json::{json, Value};

/// SHA-256 of "shopper@example.com".
const EMAIL_HASH: &str = "a85e9ca18f34935ab9b0381b25bfad2455444112b0149270fd88e3da172fe196";

/// [`SHOP`] with a list audience `crm` read from every source kind, and
/// its one line item buying it.
fn config(name: &str) -> std::path::PathBuf {
    let dir = shop_config_dir(name);
    let shop = SHOP
        .replace(
            "creatives:\n",
            "audiences:\n  - id: crm\n    kind: list\n    \
             sources: [buyeruid, sha256_email, uidapi.com, liveramp.com, id5-sync.com]\n\
             creatives:\n",
        )
        .replace(
            "        targeting:\n          keywords: { broad: [tent] }\n",
            "        audiences: { any_of: [crm] }\n",
        );
    std::fs::write(dir.join("shop.yaml"), shop).expect("config");
    dir
}

fn members(s: &Server, list: &str, body: &str) -> Reply {
    admin(
        s.admin,
        &format!("/v1/audiences/{list}/members"),
        body.as_bytes(),
    )
}

fn reason(s: &Server, req: &Value) -> Value {
    verdict(&explain(s, req), "tents")["reason"].clone()
}

/// The banner request with `user` replaced.
fn with_user(user: Value) -> Value {
    let mut r = banner_request();
    r["user"] = user;
    r
}

fn eids(source: &str, id: &str) -> Value {
    json!([{ "source": source, "uids": [{ "id": id, "atype": 3 }] }])
}

#[test]
fn a_member_is_bought_by_each_source_the_list_names() {
    let dir = config("lists-sources");
    let s = Server::start_in(
        &dir,
        &dir.join("state"),
        1_000_000,
        ts("2026-11-24T12:00:00Z"),
    );
    let r = members(
        &s,
        "crm",
        &format!(
            "{{\"id\":\"u-member\"}}\n{{\"id\":\"UID2-abc\"}}\n{{\"id\":\"LR-xyz\"}}\n\
             {{\"id\":\"ID5*q\"}}\n{{\"id\":\"{}\"}}\n",
            EMAIL_HASH.to_uppercase()
        ),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"added": 5, "removed": 0, "members": 5}));

    let members_by_source = [
        json!({ "buyeruid": "u-member" }),
        json!({ "buyeruid": "u-other", "eids": eids("uidapi.com", "UID2-abc") }),
        // 2.5 exchanges send eids in user.ext.
        json!({ "ext": { "eids": eids("liveramp.com", "LR-xyz") } }),
        json!({ "eids": eids("id5-sync.com", "ID5*q") }),
        json!({ "eids": eids("sha256_email", EMAIL_HASH) }),
    ];
    for user in members_by_source {
        let req = with_user(user.clone());
        assert_eq!(s.bid(&req.to_string()).status, 200, "{user}");
        let v = verdict(&explain(&s, &req), "tents");
        assert_eq!(v["audience"], json!({"id": "crm", "kind": "list"}), "{v}");
    }
    // Not members: another id, a member's id under a source the list does
    // not name, or as the exchange's own user id.
    for user in [
        json!({ "buyeruid": "u-other" }),
        json!({ "eids": eids("criteo.com", "UID2-abc") }),
        json!({ "id": "u-member" }),
    ] {
        let req = with_user(user.clone());
        assert_eq!(s.bid(&req.to_string()).status, 204, "{user}");
        assert_eq!(reason(&s, &req), "audience", "{user}");
    }
    // The all-zero id in a list (MAID lists often hold it) is everyone
    // without an id: it makes no one a member.
    let zero = "00000000-0000-0000-0000-000000000000";
    let r = members(&s, "crm", &format!("{{\"id\":\"{zero}\"}}\n"));
    assert_eq!(r.status, 200, "{}", r.text());
    for user in [
        json!({ "buyeruid": zero }),
        json!({ "eids": eids("uidapi.com", zero) }),
    ] {
        let req = with_user(user.clone());
        assert_eq!(s.bid(&req.to_string()).status, 204, "{user}");
        assert_eq!(reason(&s, &req), "audience", "{user}");
    }
}

#[test]
fn lists_are_behavioural_data() {
    let dir = config("lists-privacy");
    let s = Server::start(&dir, None);
    assert_eq!(members(&s, "crm", "{\"id\":\"u-member\"}\n").status, 200);
    let mut req = with_user(json!({ "buyeruid": "u-member" }));
    assert_eq!(s.bid(&req.to_string()).status, 200);
    // GDPR applies and no consent string grants it.
    req["regs"] = json!({ "gdpr": 1 });
    assert_eq!(s.bid(&req.to_string()).status, 204);
    assert_eq!(reason(&s, &req), "privacy");
    // A US Privacy opt-out.
    req["regs"] = json!({ "us_privacy": "1YYN" });
    assert_eq!(reason(&s, &req), "privacy");
}

/// A list that leaves users out (`none_of`: customers not to be shown
/// the ad) cannot be checked where privacy signals switch lists off: the
/// line item does not bid there, reason `privacy`, rather than bid on
/// every user it meant to leave out.
#[test]
fn an_exclusion_list_that_privacy_switches_off_keeps_the_line_item_out() {
    let dir = config("lists-exclusion");
    let shop = std::fs::read_to_string(dir.join("shop.yaml")).unwrap();
    let shop = shop.replace(
        "        audiences: { any_of: [crm] }\n",
        "        audiences: { none_of: [crm] }\n",
    );
    std::fs::write(dir.join("shop.yaml"), shop).unwrap();
    let s = Server::start(&dir, None);
    assert_eq!(members(&s, "crm", "{\"id\":\"u-customer\"}\n").status, 200);
    // Without privacy signals: the customer is left out, anyone else bid on.
    let mut customer = with_user(json!({ "buyeruid": "u-customer" }));
    assert_eq!(reason(&s, &customer), "audience");
    let mut other = with_user(json!({ "buyeruid": "u-other" }));
    assert_eq!(s.bid(&other.to_string()).status, 200);
    for regs in [
        json!({ "gdpr": 1 }),
        json!({ "us_privacy": "1YYN" }),
        json!({ "coppa": 1 }),
    ] {
        customer["regs"] = regs.clone();
        other["regs"] = regs.clone();
        assert_eq!(s.bid(&customer.to_string()).status, 204, "{regs}");
        assert_eq!(reason(&s, &customer), "privacy", "{regs}");
        assert_eq!(reason(&s, &other), "privacy", "{regs}");
    }
    customer["regs"] = json!({});
    customer["device"]["lmt"] = json!(1);
    assert_eq!(reason(&s, &customer), "privacy");
}

#[test]
fn removal_and_bad_batches() {
    let dir = config("lists-batches");
    let s = Server::start(&dir, None);
    assert_eq!(
        members(&s, "crm", "{\"id\":\"a\"}\n{\"id\":\"b\"}\n").status,
        200
    );
    let bids = |id: &str| {
        s.bid(&with_user(json!({ "buyeruid": id })).to_string())
            .status
    };
    assert_eq!((bids("a"), bids("b")), (200, 200));

    // Bad batches change nothing, and say which line.
    for (body, line) in [
        (
            "{\"id\":\"c\"}\n{\"id\":\"a\",\"remove\":true}\n{\"id\":\"\"}\n",
            3,
        ),
        ("{\"id\":\"a\",\"remove\":true}\n{\"user\":\"c\"}\n", 2),
        (
            "{\"id\":\"a\",\"remove\":true}\n{\"id\":\"shopper@example.com\"}\n",
            2,
        ),
        ("{\"id\":\"a\",\"remove\":\"yes\"}\n", 1),
        ("[1,2]\n", 1),
    ] {
        let r = members(&s, "crm", body);
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert!(
            r.text().starts_with(&format!("line {line}:")),
            "{body}: {}",
            r.text()
        );
        assert_eq!((bids("a"), bids("c")), (200, 204), "{body}");
    }
    let r = admin(s.admin, "/v1/audiences/crm/members", b"{\"id\":\"\xff\"}\n");
    assert_eq!(r.status, 400);
    assert_eq!(bids("a"), 200);

    // Unknown list, a missing token.
    assert_eq!(members(&s, "nope", "{\"id\":\"a\"}\n").status, 404);
    let r = request(
        s.admin,
        "POST",
        "/v1/audiences/crm/members",
        &[],
        b"{\"id\":\"a\",\"remove\":true}\n",
    );
    assert_eq!(r.status, 401);
    assert_eq!(bids("a"), 200);

    // Removal, gzipped.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"{\"id\":\"a\",\"remove\":true}\n{\"id\":\"c\"}\n")
        .unwrap();
    let body = gz.finish().unwrap();
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let r = request(
        s.admin,
        "POST",
        "/v1/audiences/crm/members",
        &[("Authorization", &auth), ("Content-Encoding", "gzip")],
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"added": 1, "removed": 1, "members": 2}));
    assert_eq!((bids("a"), bids("b"), bids("c")), (204, 200, 200));
    assert_eq!(
        reason(&s, &with_user(json!({ "buyeruid": "a" }))),
        "audience"
    );
}

#[test]
fn members_survive_a_restart_and_load_from_data_files() {
    let dir = config("lists-restart");
    let state = dir.join("state");
    let data = dir.join("data");
    std::fs::create_dir_all(data.join("crm-exports")).unwrap();
    std::fs::write(
        data.join("crm-exports/crm.members"),
        "{\"id\":\"from-file\"}\n{\"id\":\"dropped-later\"}\n",
    )
    .unwrap();
    let bids = |s: &Server, id: &str| {
        s.bid(&with_user(json!({ "buyeruid": id })).to_string())
            .status
    };
    {
        let s = Server::start_in(&dir, &state, 1_000_000, ts("2026-11-24T12:00:00Z"));
        // An upload, and the removal of an id a member file lists.
        let r = members(
            &s,
            "crm",
            "{\"id\":\"uploaded\"}\n{\"id\":\"dropped-later\",\"remove\":true}\n",
        );
        assert_eq!(r.status, 200);
        assert_eq!(bids(&s, "uploaded"), 200);
    }
    // Restarted: what was acknowledged is still there.
    let s = Server::start_in(&dir, &state, 1_000_000, ts("2026-11-24T12:00:00Z"));
    assert_eq!(bids(&s, "uploaded"), 200);
    drop(s);

    // With --data: the file's members, then the uploads' removals.
    let lists = |data: Option<&std::path::Path>| {
        let store = audiences::Store::new();
        let config = config::load_dir(&dir).unwrap();
        bidder::app::load_lists(&store, &config, data, Some(&state)).map(|()| store)
    };
    let store = lists(Some(&data)).unwrap();
    assert!(store.lists().contains("shop", "crm", "from-file"));
    assert!(store.lists().contains("shop", "crm", "uploaded"));
    assert!(!store.lists().contains("shop", "crm", "dropped-later"));
    assert_eq!(store.lists().len("shop", "crm"), 2);

    // A member file naming no list, or with a bad line, refuses the load.
    std::fs::write(data.join("typo.members"), "{\"id\":\"x\"}\n").unwrap();
    let e = lists(Some(&data)).unwrap_err().to_string();
    assert!(e.contains("typo.members") && e.contains("\"typo\""), "{e}");
    std::fs::remove_file(data.join("typo.members")).unwrap();
    std::fs::write(
        data.join("crm-exports/crm.members"),
        "{\"id\":\"ok\"}\n{}\n",
    )
    .unwrap();
    let e = lists(Some(&data)).unwrap_err().to_string();
    assert!(e.contains("crm.members:2:"), "{e}");
}

/// `n` line items buying list `list` (read from buyeruid and uidapi.com).
fn list_config(name: &str, n: usize, list: &str) -> std::path::PathBuf {
    let dir = tempdir(name);
    let items: String = (0..n)
        .map(|i| {
            format!(
                "      - id: li{i}\n        media: display\n        cpm: 4.00\n        \
                 budget: {{ daily: 100.00 }}\n        audiences: {{ any_of: [\"{list}\"] }}\n        \
                 creatives: [b300]\n"
            )
        })
        .collect();
    let yaml = shop_yaml(
        &format!(
            "audiences:\n  - id: \"{list}\"\n    kind: list\n    sources: [buyeruid, uidapi.com]\n"
        ),
        "1000.00",
        &items,
    );
    std::fs::write(dir.join("shop.yaml"), yaml).unwrap();
    dir
}

#[test]
fn a_list_moved_to_another_advertiser_does_not_bring_its_members() {
    let dir = list_config("lists-moved", 1, "crm");
    let s = Server::start(&dir, None);
    assert_eq!(members(&s, "crm", "{\"id\":\"a-customer\"}\n").status, 200);
    // The shop drops its list; a rival names a list "crm".
    let shop = shop_yaml(
        "",
        "1000.00",
        "      - id: plain\n        media: display\n        cpm: 1.00\n        \
         budget: { daily: 100.00 }\n        creatives: [b300]\n",
    );
    std::fs::write(dir.join("shop.yaml"), shop).unwrap();
    let rival = shop_yaml(
        "audiences:\n  - id: crm\n    kind: list\n    sources: [buyeruid]\n",
        "1000.00",
        "      - id: rival-li\n        media: display\n        cpm: 9.00\n        \
         budget: { daily: 100.00 }\n        audiences: { any_of: [crm] }\n        creatives: [r300]\n",
    )
    .replace("id: shop", "id: rival")
    .replace("domains: [shop.example]", "domains: [rival.example]")
    .replace("id: b300", "id: r300")
    .replace("id: o1", "id: r1");
    std::fs::write(dir.join("rival.yaml"), rival).unwrap();
    let r = admin(s.admin, "/v1/config/reload", b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let req = with_user(json!({ "buyeruid": "a-customer" }));
    assert_eq!(
        verdict(&explain(&s, &req), "rival-li")["reason"],
        "audience",
        "the rival's list starts empty"
    );
    // The rival's own uploads go to its own list.
    assert_eq!(members(&s, "crm", "{\"id\":\"r-customer\"}\n").status, 200);
    let req = with_user(json!({ "buyeruid": "r-customer" }));
    assert!(verdict(&explain(&s, &req), "rival-li")["reason"].is_null());
}

#[test]
fn list_ids_with_a_plus_are_reached_as_written() {
    let dir = list_config("lists-plus", 1, "vip+eu");
    let s = Server::start(&dir, None);
    let r = members(&s, "vip+eu", "{\"id\":\"m\"}\n");
    assert_eq!(r.status, 200, "{}", r.text());
    let r = members(&s, "vip%2Beu", "{\"id\":\"n\"}\n");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["members"], 2);
}

#[test]
fn the_audience_token_does_not_open_lists() {
    let dir = list_config("lists-token", 1, "crm");
    let token = "aud-token-0123456789abcdef0123";
    let settings = bidder::Settings {
        audience_token: Some(token.into()),
        ..bidder::Settings::default()
    };
    let s = Server::start_with(&dir, None, settings);
    let auth = format!("Bearer {token}");
    let r = request(
        s.admin,
        "POST",
        "/v1/audiences/crm/members",
        &[("Authorization", &auth)],
        b"{\"id\":\"x\"}\n",
    );
    assert_eq!(r.status, 401);
    assert_eq!(members(&s, "crm", "").json()["members"], 0);
}

#[test]
fn a_request_full_of_ids_costs_a_bounded_number_of_lookups() {
    // 50 line items buying one list, a request of 16 imps carrying 64
    // eids of 64 uids each: the list is asked once per request, and at
    // most 64 ids are read per source. The answer stays correct: the
    // member sent after the 64th id is not seen, one sent early is. (A
    // generous tmax: a debug build on a busy machine is slow, and this is
    // about the answer, not the time.)
    let dir = list_config("lists-many-ids", 50, "crm");
    let s = Server::start(&dir, None);
    assert_eq!(members(&s, "crm", "{\"id\":\"member\"}\n").status, 200);
    let eids = |member_at: usize| -> Value {
        let all: Vec<Value> = (0..64)
            .map(|e| {
                let uids: Vec<Value> = (0..64)
                    .map(|u| {
                        let id = if e * 64 + u == member_at {
                            "member".to_string()
                        } else {
                            format!("{e}-{u}")
                        };
                        json!({ "id": id })
                    })
                    .collect();
                json!({ "source": "uidapi.com", "uids": uids })
            })
            .collect();
        json!(all)
    };
    let mut req = banner_request();
    let imp = req["imp"][0].clone();
    req["imp"] = json!((0..16)
        .map(|i| {
            let mut x = imp.clone();
            x["id"] = json!(i.to_string());
            x
        })
        .collect::<Vec<_>>());
    req["tmax"] = json!(10_000);
    req["user"] = json!({ "eids": eids(10) });
    assert_eq!(verdict(&explain(&s, &req), "li0")["reason"], json!(null));
    assert_eq!(s.bid(&req.to_string()).status, 200);
    req["user"] = json!({ "eids": eids(64 * 64 - 1) });
    assert_eq!(s.bid(&req.to_string()).status, 204);
    assert_eq!(verdict(&explain(&s, &req), "li0")["reason"], "audience");
}

/// Another replica's batches for a list this config lacks are held and
/// applied once it has the list, before any later batch of that list (one
/// may come after the reload, before the once-a-second retry). Here the
/// held batch adds `u-member` and the later one removes it (an opt-out):
/// the removal wins, as on the replica that took both in order.
#[test]
fn a_held_list_batch_is_applied_before_later_batches_of_its_list() {
    let dir = shop_config_dir("lists-held-order");
    let s = Server::start(&dir, None);
    let batch = |id: &str, body: &str| shared::Published {
        id: id.into(),
        topic: "list".into(),
        key: "crm".into(),
        body: body.into(),
    };
    // The config has no list `crm` yet: held.
    s.app
        .apply_peer_audience(&batch("1-0", "{\"id\":\"u-member\"}\n"));
    // The rollout reaches this replica.
    let listed = config("lists-held-order-new");
    std::fs::copy(listed.join("shop.yaml"), dir.join("shop.yaml")).unwrap();
    s.app.reload().expect("the new config loads");
    // The next batch of the list, before the held one is retried.
    s.app
        .apply_peer_audience(&batch("2-0", "{\"id\":\"u-member\",\"remove\":true}\n"));
    s.app.retry_held_lists();
    let req = with_user(json!({ "buyeruid": "u-member" }));
    assert_eq!(
        reason(&s, &req),
        "audience",
        "a member removed after it was added is a member again"
    );
}

//! List audiences over HTTP: members uploaded to
//! `POST /v1/audiences/{id}/members` (whole batches, gzip, removal), a
//! line item buying the list bids for a request carrying a member under
//! each source the list names, privacy rules apply, and members survive a
//! restart.

mod common;

use std::io::Write;

use common::{
    admin, banner_request, explain, request, shop_config_dir, ts, verdict, Reply, Server,
    ADMIN_TOKEN, SHOP,
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

    // Unknown list, a non-list audience, a missing token.
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
        assert_eq!(members(&s, "crm", "{\"id\":\"uploaded\"}\n").status, 200);
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
    assert!(store.lists().contains("crm", "from-file"));
    assert!(store.lists().contains("crm", "uploaded"));
    assert_eq!(store.lists().len("crm"), 3);

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

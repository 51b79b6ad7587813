//! The HTTP contract with exchanges and operators: status codes, limits,
//! gzip, deadlines, probes, metrics and reloads.

mod common;

use std::io::Write;

use bidder::Settings;
use common::{banner_request, explain, get, post, raw, repo, request, tempdir, verdict, Server};
use serde_json::json;

#[test]
fn malformed_or_incomplete_requests_get_400_with_a_reason() {
    let s = Server::example();
    let cases = [
        ("{\"id\": \"x\", \"imp\": [", "JSON"),
        ("not json at all", "JSON"),
        (r#"{"imp":[{"id":"1","banner":{"w":300,"h":250}}]}"#, "id"),
        (
            r#"{"id":"","imp":[{"id":"1","banner":{"w":300,"h":250}}]}"#,
            "id",
        ),
        (r#"{"id":"r1"}"#, "imp"),
        (r#"{"id":"r1","imp":[]}"#, "imp"),
        (r#"{"id":"r1","imp":[{"banner":{"w":300,"h":250}}]}"#, "id"),
        (r#"{"id":"r1","imp":[{"id":"1"}]}"#, "banner"),
    ];
    for (body, word) in cases {
        let r = s.bid(body);
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        let reason = r.text();
        assert!(!reason.trim().is_empty() && reason.len() < 300, "{reason}");
        assert!(
            reason.to_lowercase().contains(&word.to_lowercase()),
            "{body}: {reason}"
        );
    }
}

/// A body sent in chunks (no length) is read whole, in order: the bid it
/// asks for is the one a body sent at once gets, and a body cut anywhere
/// is still the same request.
#[test]
fn chunked_bodies_are_read_whole_in_order() {
    let body = banner_request().to_string();
    let answer = |r: &common::Reply| -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        json!([
            v["seatbid"][0]["bid"][0]["impid"],
            v["seatbid"][0]["bid"][0]["crid"]
        ])
    };
    for cuts in [vec![1], vec![body.len() / 2], vec![3, 40, body.len() - 1]] {
        // A bidder of its own each time: the example's frequency caps would
        // stop the same user's later bids.
        let s = Server::example();
        let whole = s.bid(&body);
        assert_eq!(whole.status, 200, "{}", whole.text());
        let mut req =
            b"POST /openrtb2/bid HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
        let mut from = 0;
        for to in cuts.iter().copied().chain([body.len()]) {
            req.extend_from_slice(format!("{:x}\r\n", to - from).as_bytes());
            req.extend_from_slice(&body.as_bytes()[from..to]);
            req.extend_from_slice(b"\r\n");
            from = to;
        }
        req.extend_from_slice(b"0\r\n\r\n");
        let r = raw(s.bid, &req);
        assert_eq!(r.status, 200, "{cuts:?}: {}", r.text());
        assert_eq!(answer(&r), answer(&whole), "{cuts:?}");
    }
}

#[test]
fn oversized_bodies_get_413_without_being_read() {
    let settings = Settings {
        max_body_bytes: 4096,
        ..Settings::default()
    };
    let s = Server::start_with(
        &repo().join("examples/config"),
        Some(&repo().join("examples/data")),
        settings,
    );
    // Declared too large: refused on the header alone (only 10 bytes sent).
    let head = format!(
        "POST /openrtb2/bid HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n0123456789",
        10 * 1024 * 1024
    );
    let r = raw(s.bid, head.as_bytes());
    assert_eq!(r.status, 413);
    // Chunked with no length: refused once the limit is passed.
    let mut chunked =
        b"POST /openrtb2/bid HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..3 {
        chunked.extend_from_slice(format!("{:x}\r\n", 2000).as_bytes());
        chunked.extend(std::iter::repeat_n(b' ', 2000));
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(raw(s.bid, &chunked).status, 413);
    // Chunked and a `Content-Length` both: the chunks frame the body (RFC
    // 9112 6.3), so the length is no reason to refuse it or to let more
    // than the limit through.
    let both = |chunks: &[&[u8]]| {
        let mut r = format!(
            "POST /openrtb2/bid HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Transfer-Encoding: chunked\r\nContent-Length: {}\r\n\r\n",
            10 * 1024 * 1024
        )
        .into_bytes();
        for chunk in chunks {
            r.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            r.extend_from_slice(chunk);
            r.extend_from_slice(b"\r\n");
        }
        r.extend_from_slice(b"0\r\n\r\n");
        r
    };
    let spaces = [b' '; 2000];
    assert_eq!(raw(s.bid, &both(&[&spaces, &spaces, &spaces])).status, 413);
    let bid = banner_request().to_string();
    let (a, b) = bid.as_bytes().split_at(bid.len() / 2);
    assert_eq!(raw(s.bid, &both(&[a, b])).status, 200);
    // A gzip body that inflates past the limit is refused too.
    let big = format!("{{\"id\":\"{}\"}}", "a".repeat(100_000));
    let r = post(
        s.bid,
        "/openrtb2/bid",
        &[("Content-Encoding", "gzip")],
        &gzip(big.as_bytes()),
    );
    assert_eq!(r.status, 413);
    // Under the limit still bids.
    assert_eq!(s.bid(&banner_request().to_string()).status, 200);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn gzip_bodies_are_accepted() {
    let s = Server::example();
    let post_gzip = |body: &[u8]| {
        post(
            s.bid,
            "/openrtb2/bid",
            &[("Content-Encoding", "gzip")],
            body,
        )
    };
    let body = gzip(banner_request().to_string().as_bytes());
    let r = post_gzip(&body);
    assert_eq!(r.status, 200, "{}", r.text());
    // A gzip stream is a series of members (RFC 1952): a compressor that
    // flushes per chunk writes several, and every one is the body.
    let text = banner_request().to_string();
    let (head, tail) = text.as_bytes().split_at(60);
    let mut members = gzip(head);
    members.extend(gzip(tail));
    let r = post_gzip(&members);
    assert_eq!(r.status, 200, "{}", r.text());
    // What follows a member is a member, or the body is not gzip.
    let mut trailed = gzip(text.as_bytes());
    trailed.extend_from_slice(b"trailing");
    let r = post_gzip(&trailed);
    assert_eq!(r.status, 400, "{}", r.text());
    // Each member is a new inflater: thousands of empty ones made a 1 MB
    // body cost forty times its plain CPU. Past 64 and one a KiB, refused.
    let padded = |n: usize| -> Vec<u8> {
        let mut body: Vec<u8> = (0..n).flat_map(|_| gzip(b"")).collect();
        body.extend(gzip(text.as_bytes()));
        body
    };
    let r = post_gzip(&padded(63));
    assert_eq!(r.status, 200, "{}", r.text());
    let r = post_gzip(&padded(50_000));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("members (64, and one a KiB)"),
        "{}",
        r.text()
    );
    let r = post_gzip(b"not gzip");
    assert_eq!(r.status, 400);
    let r = post(s.bid, "/openrtb2/bid", &[("Content-Encoding", "br")], b"x");
    assert_eq!(r.status, 415);
    // Two headers are two codings, not the first alone (a gzip body read
    // as identity answered 400; attacker probe).
    let r = post(
        s.bid,
        "/openrtb2/bid",
        &[
            ("Content-Encoding", "identity"),
            ("Content-Encoding", "gzip"),
        ],
        b"x",
    );
    assert_eq!(r.status, 415, "{}", r.text());
}

#[test]
fn openrtb_version_header_is_answered() {
    let s = Server::example();
    let body = banner_request().to_string();
    let r = post(
        s.bid,
        "/openrtb2/bid",
        &[("x-openrtb-version", "2.5")],
        body.as_bytes(),
    );
    assert_eq!(r.header("x-openrtb-version"), Some("2.5"));
    let r = post(
        s.bid,
        "/openrtb2/bid",
        &[("x-openrtb-version", "2.6")],
        body.as_bytes(),
    );
    assert_eq!(r.header("x-openrtb-version"), Some("2.6"));
    let mut nobid = banner_request();
    nobid["device"]["geo"]["country"] = json!("GBR");
    let r = post(
        s.bid,
        "/openrtb2/bid",
        &[("x-openrtb-version", "2.6")],
        nobid.to_string().as_bytes(),
    );
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    assert_eq!(r.header("x-openrtb-version"), Some("2.6"));
}

#[test]
fn wrong_methods_and_paths() {
    let s = Server::example();
    let r = get(s.bid, "/openrtb2/bid");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
    assert_eq!(
        request(s.bid, "PUT", "/openrtb2/bid", &[], b"{}").status,
        405
    );
    assert_eq!(get(s.bid, "/nope").status, 404);
    assert_eq!(post(s.bid, "/openrtb2/bid/extra", &[], b"{}").status, 404);
    assert_eq!(post(s.admin, "/healthz", &[], b"").status, 405);
    assert_eq!(get(s.admin, "/nope").status, 404);
    // The admin endpoints are not on the bid port, nor bids on the admin port.
    assert_eq!(get(s.bid, "/healthz").status, 404);
    assert_eq!(post(s.admin, "/openrtb2/bid", &[], b"{}").status, 404);
}

#[test]
fn deadline_too_short_is_a_no_bid() {
    let s = Server::example();
    let mut r = banner_request();
    // The default safety margin is 10 ms: nothing can be answered in time,
    // and explain says so for every line item, as the endpoint answers.
    for tmax in [5, 10] {
        r["tmax"] = json!(tmax);
        assert_eq!(s.bid(&r.to_string()).status, 204);
        let v = explain(&s, &r);
        let verdicts = v["line_items"].as_array().unwrap();
        assert_eq!(verdicts.len(), 5, "{v}");
        for x in verdicts {
            assert_eq!(x["bids"], false, "tmax {tmax}: {x}");
            assert_eq!(x["reason"], "late", "tmax {tmax}: {x}");
        }
    }
    r["tmax"] = json!(300);
    assert_eq!(s.bid(&r.to_string()).status, 200);
    assert_eq!(
        verdict(&explain(&s, &r), "tent-remarketing-display")["bids"],
        true
    );
}

#[test]
fn probes_and_metrics() {
    let s = Server::example();
    assert_eq!(get(s.admin, "/healthz").status, 200);
    assert_eq!(get(s.admin, "/readyz").status, 200);
    s.bid(&banner_request().to_string());
    s.bid("{");
    let m = get(s.admin, "/metrics");
    assert_eq!(m.status, 200);
    let text = m.text();
    for name in [
        "bidder_requests_total{exchange=\"default\",outcome=\"bid\"}",
        "bidder_requests_total{exchange=\"default\",outcome=\"bad_request\"}",
        "bidder_request_duration_seconds",
        "bidder_bids_total",
        "bidder_config_line_items",
    ] {
        assert!(text.contains(name), "missing {name} in\n{text}");
    }
}

#[test]
fn not_ready_until_a_config_is_loaded() {
    let app = std::sync::Arc::new(bidder::App::new(
        Settings::default(),
        std::sync::Arc::new(config::ManualClock::new(common::ts("2026-11-24T12:00:00Z"))),
        audiences::Store::new(),
        None,
    ));
    assert!(!app.is_ready());
    let body = banner_request().to_string();
    match app.handle_bid(body.as_bytes(), std::time::Instant::now()) {
        bidder::BidAnswer::NoBid(bidder::nobid::NoBid::NotReady) => {}
        _ => panic!("expected a not-ready no-bid"),
    }
    app.install(config::load_dir(&repo().join("examples/config")).unwrap());
    assert!(app.is_ready());
}

#[test]
fn invalid_reload_keeps_serving_the_running_config() {
    let dir = tempdir("reload");
    for f in ["acme-outdoor.yaml", "northwind-books.yaml"] {
        std::fs::copy(repo().join("examples/config").join(f), dir.join(f)).unwrap();
    }
    let s = Server::start(&dir, Some(&repo().join("examples/data")));
    let body = banner_request().to_string();
    assert_eq!(s.bid(&body).status, 200);

    // Break one file: the whole set is refused, bids go on as before.
    let acme = std::fs::read_to_string(dir.join("acme-outdoor.yaml")).unwrap();
    std::fs::write(
        dir.join("acme-outdoor.yaml"),
        acme.replace("cpm: 6.00", "cpm: -6.00"),
    )
    .unwrap();
    let r = common::admin(s.admin, "/v1/config/reload", b"");
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("acme-outdoor.yaml:"), "{}", r.text());
    assert_eq!(s.bid(&body).status, 200);
    assert_eq!(get(s.admin, "/readyz").status, 200);

    // A valid change is picked up.
    std::fs::write(
        dir.join("acme-outdoor.yaml"),
        acme.replace("cpm: 6.00", "cpm: 7.25"),
    )
    .unwrap();
    let r = common::admin(s.admin, "/v1/config/reload", b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = s.bid(&body).json();
    assert_eq!(v["seatbid"][0]["bid"][0]["price"].as_f64(), Some(7.25));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn budget_changes_follow_the_account_manager_rules_on_reload() {
    let dir = tempdir("budget-changes");
    for f in ["acme-outdoor.yaml", "northwind-books.yaml"] {
        std::fs::copy(repo().join("examples/config").join(f), dir.join(f)).unwrap();
    }
    let s = Server::start(&dir, Some(&repo().join("examples/data")));
    let acme = std::fs::read_to_string(dir.join("acme-outdoor.yaml")).unwrap();
    let reload = |text: &str| {
        std::fs::write(dir.join("acme-outdoor.yaml"), text).unwrap();
        common::admin(s.admin, "/v1/config/reload", b"")
    };

    // The CTV flight started on 2026-11-01: its lifetime budget may grow only.
    let r = reload(&acme.replace(
        "budget: { lifetime: 30000.00 }",
        "budget: { lifetime: 20000.00 }",
    ));
    assert_eq!(r.status, 422, "{}", r.text());
    let text = r.text();
    assert!(text.contains("can only be increased"), "{text}");
    let budget_line = acme
        .lines()
        .position(|l| l.contains("lifetime: 30000.00"))
        .unwrap()
        + 1;
    assert!(
        text.contains(&format!("acme-outdoor.yaml:{budget_line}:")),
        "{text}"
    );

    // An order's budget is its flight's total, a lifetime budget: cut once
    // its flight started, it is refused too, where it is written.
    let r = reload(&acme.replace("budget: 60000.00", "budget: 55000.00"));
    assert_eq!(r.status, 422, "{}", r.text());
    let text = r.text();
    assert!(
        text.contains(
            "order \"acme-q4-managed\": its budget can only be increased once its flight has \
             started or it has spent (it was 60,000.00, now 55,000.00)"
        ),
        "{text}"
    );
    let order_line = acme
        .lines()
        .position(|l| l.contains("budget: 60000.00"))
        .unwrap()
        + 1;
    // At the amount, where the parser placed it.
    assert!(
        text.contains(&format!("acme-outdoor.yaml:{order_line}:13:")),
        "{text}"
    );

    // Daily ↔ lifetime never changes once set.
    let r = reload(&acme.replace("budget: { daily: 800.00 }", "budget: { lifetime: 800.00 }"));
    assert_eq!(r.status, 422);
    assert!(
        r.text().contains("budget type cannot change"),
        "{}",
        r.text()
    );

    // Raising a lifetime budget and lowering a daily one are fine.
    let r = reload(
        &acme
            .replace(
                "budget: { lifetime: 30000.00 }",
                "budget: { lifetime: 40000.00 }",
            )
            .replace("budget: 60000.00", "budget: 70000.00")
            .replace("budget: { daily: 800.00 }", "budget: { daily: 500.00 }"),
    );
    assert_eq!(r.status, 200, "{}", r.text());

    // Removed and added back with less: still a cut of a started flight
    // (the budget it left with is kept for the notice lifetime).
    let start = acme.find("      - id: tent-ctv-video").unwrap();
    let end = acme.find("  - id: acme-audio-managed").unwrap();
    let raised = acme.replace("budget: 60000.00", "budget: 70000.00");
    let without = format!("{}{}", &acme[..start], &acme[end..])
        .replace("budget: 60000.00", "budget: 70000.00");
    let r = reload(&without);
    assert_eq!(r.status, 200, "{}", r.text());
    let r = reload(&raised.replace(
        "budget: { lifetime: 30000.00 }",
        "budget: { lifetime: 35000.00 }",
    ));
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(
        r.text()
            .contains("(it was 40,000.00 (as it was when it left the config"),
        "{}",
        r.text()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

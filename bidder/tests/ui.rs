//! `/ui` as people reach it: the session cookie over plain HTTP, then the
//! login page in headless Chromium logging in from its URL's fragment and
//! landing on the report of a known day, figure by figure; and the same
//! page made by `bidder report --format html` as one file.

mod common;
// The reports crate's harness, shared as its file says: its `pub` items
// are for that crate's tests' module tree, not this one's.
#[allow(dead_code, unreachable_pub)]
#[path = "../../reports/tests/support/chromium.rs"]
mod chromium;

use std::process::Command;
use std::time::Instant;

use chromium::{file_url, Chromium, TempDir};
use common::{get, request, shop_config_dir, tents_day, ts, Server, ADMIN_TOKEN};

/// The part of `dom` from `start` to the first `end` after it.
fn between<'a>(dom: &'a str, start: &str, end: &str) -> &'a str {
    let from = dom
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in\n{dom}"));
    let len = dom[from..]
        .find(end)
        .unwrap_or_else(|| panic!("no {end} after {start} in\n{dom}"));
    &dom[from..from + len]
}

fn figure(name: &str, value: &str, label: &str, shown: &str) -> String {
    format!(r#"data-metric="{name}" data-value="{value}"><dt>{label}</dt><dd>{shown}</dd>"#)
}

/// The figures of [`tents_day`] over 2026-11-18..24 in a rendered report
/// page: totals, the `tents` card and the no-bid reasons. `whence` names
/// the page in failure messages.
fn assert_known_figures(dom: &str, whence: &str) {
    assert!(
        dom.contains("<title>Delivery report 2026-11-18 to 2026-11-24</title>"),
        "{whence}: not the report of the last week through the clock's day:\n{dom}"
    );
    let totals = between(dom, r#"<dl class="tiles" id="totals">"#, "</dl>");
    let tents = between(dom, r#"data-line-item="tents""#, "</article>");
    let expected = [
        figure("spend", "0.008", "Spend", "0.008"),
        figure("impressions", "3", "Impressions", "3"),
        figure("clicks", "1", "Clicks", "1"),
        figure("ctr", "0.333333", "CTR", "33.33%"),
        figure("sales", "100.00", "Sales", "100.00"),
        figure("acos", "0.000080", "ACOS", "0.01%"),
        figure("roas", "12500.000000", "ROAS", "12,500.00"),
    ];
    for want in &expected {
        assert!(
            totals.contains(want),
            "{whence}: totals lack {want}\n{totals}"
        );
        assert!(
            tents.contains(want),
            "{whence}: tents lacks {want}\n{tents}"
        );
    }
    for want in [
        figure("purchases", "1", "Purchases", "1"),
        figure("detail_page_views", "1", "Detail page views", "1"),
    ] {
        assert!(
            totals.contains(&want),
            "{whence}: totals lack {want}\n{totals}"
        );
    }
    // A daily budget's bar measures the last day, 2026-11-24.
    assert!(
        tents.starts_with(
            r#"data-line-item="tents" data-spent="0.008" data-spent-day="0.008" data-spent-to-date="0.008" data-budget="100.00" data-budget-kind="daily""#
        ),
        "{whence}: {tents}"
    );
    assert!(
        tents.contains("<strong>0.008</strong> of 100.00 daily budget spent on 2026-11-24"),
        "{whence}: {tents}"
    );
    let no_bids = between(dom, r#"<ol id="no-bids">"#, "</ol>");
    assert_eq!(
        no_bids.matches("<li ").count(),
        1,
        "{whence}: one reason\n{no_bids}"
    );
    assert!(
        no_bids.contains(r#"<li data-reason="keyword" data-count="1">"#),
        "{whence}: {no_bids}"
    );
}

#[test]
fn the_report_page_behind_the_login_and_from_the_cli() {
    let browser = Chromium::find();
    let dir = shop_config_dir("ui-page");
    let state = dir.join("state");
    let s = Server::start_in(&dir, &state, 1_000_000, ts("2026-11-24T12:00:00Z"));
    tents_day(&s);

    // Plain HTTP: no page without a session, and a session only for the
    // right token.
    let r = get(s.admin, "/ui");
    assert_eq!((r.status, r.header("location")), (303, Some("/ui/login")));
    let login = |token: &str| {
        request(
            s.admin,
            "POST",
            "/ui/login",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            format!("token={token}").as_bytes(),
        )
    };
    let wrong = login("not-the-admin-token-at-all");
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.header("set-cookie"), None);
    assert!(
        wrong.text().contains("not the admin token"),
        "{}",
        wrong.text()
    );
    let right = login(ADMIN_TOKEN);
    assert_eq!((right.status, right.header("location")), (303, Some("/ui")));
    let set_cookie = right.header("set-cookie").expect("a session cookie");
    let attrs: Vec<&str> = set_cookie.split(';').map(str::trim).collect();
    for want in ["HttpOnly", "SameSite=Strict", "Path=/ui"] {
        assert!(attrs.contains(&want), "{want} in {set_cookie}");
    }
    assert!(
        !set_cookie.contains(ADMIN_TOKEN),
        "the cookie is not the token"
    );
    let session = attrs[0];
    assert!(session.starts_with("bidder_ui="), "{set_cookie}");
    let page = request(s.admin, "GET", "/ui", &[("Cookie", session)], b"");
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(
        page.header("content-security-policy"),
        Some(bidder::ui::CSP)
    );
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert_known_figures(&page.text(), "GET /ui");
    // The last character of the MAC changed: no session.
    let mut tampered = session.to_owned();
    let last = tampered.pop().unwrap();
    tampered.push(if last == '0' { '1' } else { '0' });
    let r = request(s.admin, "GET", "/ui", &[("Cookie", &tampered)], b"");
    assert_eq!((r.status, r.header("location")), (303, Some("/ui/login")));
    // Other days than the last week's, by the query string.
    let other = request(
        s.admin,
        "GET",
        "/ui?from=2026-11-25&to=2026-11-26",
        &[("Cookie", session)],
        b"",
    );
    assert_eq!(other.status, 200, "{}", other.text());
    let text = other.text();
    assert!(
        text.contains("<title>Delivery report 2026-11-25 to 2026-11-26</title>")
            && text.contains(&figure("spend", "0.00", "Spend", "0.00")),
        "{text}"
    );

    // In the browser: the login page reads the token from the fragment and
    // submits the form; the 303 sets the cookie and leads to /ui, which the
    // browser fetches with it. --dump-dom prints the page whose load ends
    // the run: the form is submitted by an inline script while the login
    // page is still loading, so that is /ui's. Were the submission put off
    // (a timer), a bare --dump-dom would print an empty document in
    // between (tried with Chromium 156); the harness's
    // --virtual-time-budget covers that too, as virtual time stands still
    // while a navigation's fetches are pending.
    let started = Instant::now();
    let url = format!("http://{}/ui/login#token={ADMIN_TOKEN}", s.admin);
    let dom = browser.dump_dom(&url);
    assert!(
        !dom.contains(r#"id="login""#),
        "still the login form:\n{dom}"
    );
    assert_known_figures(&dom, "/ui in Chromium");
    let shots = TempDir::new("bidder-ui-shot");
    let png = shots.path().join("ui.png");
    browser.screenshot(&url, &png, 1280, 2000);
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let size = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    assert_eq!((size(16), size(20)), (1280, 2000), "IHDR width and height");
    // The login form alone is about 20 KB; this page, with its tiles,
    // cards and charts, about 150 KB.
    assert!(bytes.len() > 60_000, "a {} byte screenshot", bytes.len());
    eprintln!(
        "chromium: /ui DOM and screenshot in {:?}",
        started.elapsed()
    );
    // A session lasts 12 hours of the server's clock.
    s.clock.advance_millis(12 * 3_600_000);
    let r = request(s.admin, "GET", "/ui", &[("Cookie", session)], b"");
    assert_eq!((r.status, r.header("location")), (303, Some("/ui/login")));
    drop(s);

    // The same page from the CLI, as one file, for the same days.
    let html = shots.path().join("report.html");
    let out = Command::new(env!("CARGO_BIN_EXE_bidder"))
        .args(["report", "--config"])
        .arg(&dir)
        .arg("--state")
        .arg(&state)
        .args(["--from", "2026-11-18", "--to", "2026-11-24"])
        .args(["--by", "advertiser,order,line_item", "--format", "html"])
        .arg("--out")
        .arg(&html)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "--out writes nothing to stdout");
    let started = Instant::now();
    let dom = browser.dump_dom(&file_url(&html));
    assert_known_figures(&dom, "bidder report --format html");
    eprintln!("chromium: the CLI's page in {:?}", started.elapsed());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn wrong_tokens_are_limited_per_minute() {
    let dir = shop_config_dir("ui-guess");
    let s = Server::start_in(
        &dir,
        &dir.join("state"),
        1_000_000,
        ts("2026-11-24T12:00:10Z"),
    );
    let login = |token: &str| {
        let body = format!("token={token}");
        let ct = ("Content-Type", "application/x-www-form-urlencoded");
        request(s.admin, "POST", "/ui/login", &[ct], body.as_bytes())
    };
    // Another site's page posting the form (a browser says where from)
    // is refused before its tries count.
    let host = format!("{}", s.admin);
    let from = |headers: &[(&str, &str)]| {
        let ct = ("Content-Type", "application/x-www-form-urlencoded");
        let mut all = vec![ct];
        all.extend_from_slice(headers);
        request(s.admin, "POST", "/ui/login", &all, b"token=guess").status
    };
    for _ in 0..2 * bidder::ui::FAILED_LOGINS_PER_MINUTE {
        assert_eq!(from(&[("Origin", "https://evil.example")]), 403);
        assert_eq!(from(&[("Origin", "null")]), 403);
        assert_eq!(from(&[("Sec-Fetch-Site", "cross-site")]), 403);
    }
    let own_origin = format!("http://{host}");
    assert_eq!(from(&[("Origin", &own_origin)]), 401, "its own form");
    assert_eq!(from(&[("Sec-Fetch-Site", "same-origin")]), 401);
    for _ in 2..bidder::ui::FAILED_LOGINS_PER_MINUTE {
        assert_eq!(login("guess").status, 401);
    }
    let r = login("guess");
    assert_eq!((r.status, r.header("retry-after")), (429, Some("60")));
    assert_eq!(
        login(ADMIN_TOKEN).status,
        429,
        "the minute is spent, for this client"
    );
    s.clock.advance_millis(60_000);
    assert_eq!(login(ADMIN_TOKEN).status, 303, "a new minute");
    drop(s);

    // Per client: one spending its tries (a script, a page in someone's
    // browser) does not lock the others out. Behind a trusted proxy the
    // client is the forwarded address.
    let s = Server::start_in_with(&dir, &dir.join("state"), ts("2026-11-24T12:00:10Z"), |s| {
        s.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    });
    let login_from = |client: &str, token: &str| {
        let body = format!("token={token}");
        let headers = [
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("X-Forwarded-For", client),
        ];
        request(s.admin, "POST", "/ui/login", &headers, body.as_bytes()).status
    };
    for _ in 0..bidder::ui::FAILED_LOGINS_PER_MINUTE {
        assert_eq!(login_from("198.51.100.1", "guess"), 401);
    }
    assert_eq!(login_from("198.51.100.1", ADMIN_TOKEN), 429);
    assert_eq!(
        login_from("198.51.100.2", ADMIN_TOKEN),
        303,
        "another client"
    );
    // A forwarded address that cannot be read is refused before it
    // counts: counted under the proxy's own address, it would spend the
    // tries of everyone behind that proxy.
    for _ in 0..bidder::ui::FAILED_LOGINS_PER_MINUTE + 1 {
        assert_eq!(login_from("garbage", "guess"), 400);
    }
    assert_eq!(login_from("198.51.100.4", ADMIN_TOKEN), 303);
    // Many clients together stop at the overall bound.
    let all = bidder::ui::FAILED_LOGINS_PER_MINUTE_IN_ALL - bidder::ui::FAILED_LOGINS_PER_MINUTE;
    for i in 0..all {
        let client = format!("203.0.{}.{}", i / 250, i % 250 + 1);
        assert_eq!(login_from(&client, "guess"), 401, "{client}");
    }
    assert_eq!(
        login_from("198.51.100.3", ADMIN_TOKEN),
        429,
        "every client's minute"
    );
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A wrong bearer token on `/v1` is a try, counted per client (apart from
/// the login form's): `/v1` answered wrong tokens without end (attacker
/// probe). No bound over all clients there, which anyone could spend to
/// lock every operator out (review). A request without a token is no try.
#[test]
fn wrong_bearer_tokens_are_limited_per_client() {
    let dir = shop_config_dir("v1-guess");
    let s = Server::start_in_with(&dir, &dir.join("state"), ts("2026-11-24T12:00:10Z"), |s| {
        s.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    });
    let reports = |client: &str, auth: Option<&str>| {
        let header = auth.map(|a| format!("Bearer {a}"));
        let mut headers: Vec<(&str, &str)> = header
            .iter()
            .map(|h| ("Authorization", h.as_str()))
            .collect();
        headers.push(("X-Forwarded-For", client));
        request(s.admin, "GET", "/v1/reports", &headers, b"")
    };
    let guesser = "198.51.100.1";
    for _ in 0..2 * bidder::ui::FAILED_LOGINS_PER_MINUTE {
        assert_eq!(reports(guesser, None).status, 401);
    }
    assert_eq!(reports(guesser, Some(ADMIN_TOKEN)).status, 200);
    for i in 0..bidder::ui::FAILED_LOGINS_PER_MINUTE {
        assert_eq!(reports(guesser, Some(&format!("guess-{i}"))).status, 401);
    }
    let r = reports(guesser, Some(ADMIN_TOKEN));
    assert_eq!((r.status, r.header("retry-after")), (429, Some("60")));
    // Another client, and the login form, go on.
    assert_eq!(reports("198.51.100.2", Some(ADMIN_TOKEN)).status, 200);
    let body = format!("token={ADMIN_TOKEN}");
    let headers = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("X-Forwarded-For", guesser),
    ];
    assert_eq!(
        request(s.admin, "POST", "/ui/login", &headers, body.as_bytes()).status,
        303
    );
    // Many clients guessing together close nobody else's /v1.
    for i in 0..bidder::ui::FAILED_LOGINS_PER_MINUTE_IN_ALL {
        let client = format!("203.0.{}.{}", i / 250, i % 250 + 1);
        assert_eq!(reports(&client, Some("guess")).status, 401, "{client}");
    }
    assert_eq!(reports("198.51.100.3", Some(ADMIN_TOKEN)).status, 200);
    s.clock.advance_millis(60_000);
    assert_eq!(
        reports(guesser, Some(ADMIN_TOKEN)).status,
        200,
        "a new minute"
    );
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

//! Reports over HTTP, from bids to sales: bids, wins, tracked impressions
//! and clicks, attributed views and purchases (last click, else last
//! impression; an order once; across a restart), cut by line item, keyword,
//! audience and product; spend equal to the ledger's to the micro,
//! compacted or not; zero denominators empty; bad parameters refused.

mod common;

use common::{
    banner_request, banner_urls, get, only_bid, param, path_of, request, shop_config_dir, ts,
    upload, won, Server, ADMIN_TOKEN,
};
use serde_json::{json, Value};

fn auth() -> String {
    format!("Bearer {ADMIN_TOKEN}")
}

fn report(s: &Server, query: &str) -> Value {
    let r = request(
        s.admin,
        "GET",
        &format!("/v1/reports?{query}"),
        &[("Authorization", &auth())],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn micros(v: &Value) -> i64 {
    v["micros"]
        .as_i64()
        .unwrap_or_else(|| panic!("no micros in {v}"))
}

fn row<'a>(rep: &'a Value, dim: &str, value: &str) -> &'a Value {
    rep["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r[dim] == value)
        .unwrap_or_else(|| panic!("no row with {dim}={value}: {rep:#}"))
}

fn spent(s: &Server) -> i64 {
    s.app.line_item_spent("tents").lifetime.as_i64()
}

#[test]
fn from_bids_to_attributed_sales() {
    let dir = shop_config_dir("reports-e2e");
    let state = dir.join("state");
    let s = Server::start_in(&dir, &state, 1_000_000, ts("2026-11-24T12:00:00Z"));
    won(&s, "u-1", "2.50", true);
    won(&s, "u-2", "3.00", false);
    // A test request bids but counts nothing.
    let mut t = banner_request();
    t["test"] = json!(1);
    t["site"]["keywords"] = json!("tent");
    only_bid(&s, &t);
    // A page not about tents: no bid, and its reason counted.
    assert_eq!(s.bid(&banner_request().to_string()).status, 204);

    s.clock.advance_millis(3_600_000);
    let r = upload(
        &s,
        &[
            json!({"user": "u-1", "event": "purchase", "product": "tent-1", "at": "2026-11-24T13:00:00Z", "amount": "100.00", "currency": "USD", "order_id": "A1"}),
            // The same order sent again (a retried pixel): counted once.
            json!({"user": "u-1", "event": "purchase", "product": "tent-1", "at": "2026-11-24T13:00:05Z", "amount": "100.00", "currency": "USD", "order_id": "A1"}),
            // Seen on an impression only: a view within the view day.
            json!({"user": "u-2", "event": "view", "product": "tent-2", "at": "2026-11-24T13:00:00Z"}),
            // Never touched: nobody's.
            json!({"user": "u-3", "event": "purchase", "product": "tent-1", "at": "2026-11-24T13:00:00Z", "amount": "5.00", "currency": "USD", "order_id": "A3"}),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"applied": 4, "attributed": 2, "unattributed": 1, "duplicate": 1})
    );

    let rep = report(&s, "from=2026-11-24&to=2026-11-24&by=line_item,keyword");
    let tents = row(&rep, "line_item", "tents");
    assert_eq!(tents["keyword"], "broad:tent");
    assert_eq!(
        (
            &tents["bids"],
            &tents["wins"],
            &tents["impressions"],
            &tents["clicks"]
        ),
        (&json!(2), &json!(2), &json!(2), &json!(1))
    );
    assert_eq!(micros(&tents["spend"]), 5_500, "2.50 + 3.00 CPM");
    assert_eq!(
        micros(&tents["spend"]),
        spent(&s),
        "the ledger's spend, to the micro"
    );
    assert_eq!(tents["ctr"], 0.5);
    assert_eq!(
        (&tents["detail_page_views"], &tents["purchases"]),
        (&json!(1), &json!(1))
    );
    assert_eq!(micros(&tents["sales"]), 100_000_000);
    assert_eq!(tents["acos"], 5_500.0 / 100_000_000.0);
    assert_eq!(tents["roas"], 100_000_000.0 / 5_500.0);
    assert_eq!(micros(&tents["cpc"]), 5_500);
    assert_eq!(micros(&tents["ecpm"]), 2_750_000);
    assert_eq!(rep["no_bids"][0]["reason"], "keyword", "{rep:#}");

    // The product report: sales by product, zero denominators empty.
    let by_product = report(&s, "from=2026-11-24&to=2026-11-24&by=product");
    let tent1 = row(&by_product, "product", "tent-1");
    assert_eq!(
        (&tent1["purchases"], micros(&tent1["sales"])),
        (&json!(1), 100_000_000)
    );
    assert_eq!(
        tent1["ctr"],
        Value::Null,
        "no impressions: empty, not infinite"
    );
    assert_eq!(
        tent1["acos"],
        Value::Null,
        "spend is not split by product: ACOS empty, not a free 0%"
    );
    assert_eq!(tent1["roas"], Value::Null, "no spend: ROAS empty");
    assert_eq!(
        row(&by_product, "product", "tent-2")["detail_page_views"],
        1
    );
    // Another product of order A1: its sale adds to A1, which is counted
    // already (the answer counts orders, not their lines).
    let r = upload(
        &s,
        &[
            json!({"user": "u-1", "event": "purchase", "product": "tent-2", "at": "2026-11-24T13:00:00Z", "amount": "20.00", "currency": "USD", "order_id": "A1"}),
        ],
    );
    assert_eq!(
        r.json(),
        json!({"applied": 1, "attributed": 0, "unattributed": 0, "duplicate": 0}),
        "{}",
        r.text()
    );
    let rep = report(&s, "from=2026-11-24&to=2026-11-24&by=line_item");
    let tents = row(&rep, "line_item", "tents");
    assert_eq!(
        (&tents["purchases"], micros(&tents["sales"])),
        (&json!(1), 120_000_000),
        "one order, the sales of both its lines"
    );

    // CSV and table carry the same figures.
    let csv = request(
        s.admin,
        "GET",
        "/v1/reports?from=2026-11-24&to=2026-11-24&by=keyword&format=csv",
        &[("Authorization", &auth())],
        b"",
    );
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    let text = csv.text();
    let mut lines = text.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("keyword,bids,wins,impressions,clicks,ctr,spend,"));
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("broad:tent,2,2,2,1,0.500000,0.0055,"),
        "{text}"
    );

    // After a restart the touches and the counted orders come back.
    drop(s);
    let s = Server::start_in(&dir, &state, 1_000_000, ts("2026-11-24T15:00:00Z"));
    let r = upload(
        &s,
        &[
            json!({"user": "u-1", "event": "purchase", "product": "tent-1", "at": "2026-11-24T13:00:00Z", "amount": "100.00", "currency": "USD", "order_id": "A1"}),
            json!({"user": "u-2", "event": "purchase", "product": "tent-2", "at": "2026-11-24T14:30:00Z", "amount": "20.00", "currency": "USD", "order_id": "B2"}),
        ],
    );
    assert_eq!(
        r.json(),
        json!({"applied": 2, "attributed": 1, "unattributed": 0, "duplicate": 1})
    );
    let rep = report(&s, "from=2026-11-24&to=2026-11-24&by=line_item");
    let tents = row(&rep, "line_item", "tents");
    assert_eq!(
        (&tents["purchases"], micros(&tents["sales"])),
        (&json!(2), 140_000_000),
        "A1 (both its lines) and B2"
    );
    assert_eq!(micros(&tents["spend"]), spent(&s));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A bid is counted on the day of the auction that made it (the day its
/// budget is held on, and its notices' `ts`), even when the clock turns a
/// day between the auction and the answer going out.
#[test]
fn a_bid_is_reported_on_the_day_of_its_auction() {
    let dir = shop_config_dir("reports-auction-day");
    let state = dir.join("state");
    let s = Server::start_in(&dir, &state, 1_000_000, ts("2026-11-24T12:00:00Z"));
    // Every read of the clock a day later than the one before: a request
    // that read it again after its auction would count its bid on a later
    // day than the auction's.
    s.clock.step_per_read(86_400_000);
    let mut r = banner_request();
    r["site"]["keywords"] = json!("camping,tent");
    let bid = only_bid(&s, &r);
    s.clock.step_per_read(0);
    let nurl = bid["nurl"].as_str().unwrap();
    let at: i64 = param(nurl, "ts").unwrap().parse().unwrap();
    let day = config::Timestamp(at).date().to_string();
    let rep = report(&s, "from=2026-11-20&to=2027-01-31&by=day");
    let rows = rep["rows"].as_array().unwrap();
    let bids: Vec<(&Value, &Value)> = rows
        .iter()
        .filter(|r| r["bids"] != 0)
        .map(|r| (&r["day"], &r["bids"]))
        .collect();
    assert_eq!(bids, [(&json!(day), &json!(1))], "{rep:#}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn spend_equals_the_ledger_across_compactions() {
    let dir = shop_config_dir("reports-compact");
    let state = dir.join("state");
    let s = Server::start_in(&dir, &state, 3, ts("2026-11-24T12:00:00Z"));
    for i in 0..10 {
        let price = format!("{}.{:02}", 1 + i % 3, 7 * i % 100);
        won(&s, &format!("u-{i}"), &price, i % 2 == 0);
    }
    let gens = ledger::journal::generations(&state).unwrap();
    assert!(gens.len() >= 3, "compacted into generations: {gens:?}");
    let rep = report(&s, "from=2026-11-24&to=2026-11-24&by=day");
    let day = row(&rep, "day", "2026-11-24");
    assert_eq!(day["wins"], 10);
    assert_eq!(micros(&day["spend"]), spent(&s));
    // Again from the aggregates the first report folded.
    let again = report(&s, "from=2026-11-24&to=2026-11-24&by=day");
    assert_eq!(again["rows"], rep["rows"]);
    assert!(
        std::fs::read_dir(state.join("events")).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("charges.")),
        "closed generations are folded"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_parameters_and_currencies_are_refused_clearly() {
    let dir = shop_config_dir("reports-bad");
    std::fs::write(
        dir.join("rates.yaml"),
        "currency_rates:\n  base: USD\n  as_of: 2026-11-24\n  rates:\n    JPY: 155.3\n",
    )
    .unwrap();
    let s = Server::start_in(
        &dir,
        &dir.join("state"),
        1_000_000,
        ts("2026-11-24T12:00:00Z"),
    );
    for (q, says) in [
        ("by=campaign", "unknown dimension"),
        ("from=2026-11-25&to=2026-11-24", "after"),
        ("format=pdf", "format"),
        ("from=2024-01-01", "at most"),
        ("by=day&by=keyword", "twice"),
    ] {
        let r = request(
            s.admin,
            "GET",
            &format!("/v1/reports?{q}"),
            &[("Authorization", &auth())],
            b"",
        );
        assert_eq!(r.status, 400, "{q}");
        assert!(r.text().contains(says), "{q}: {}", r.text());
    }
    let r = request(s.admin, "GET", "/v1/reports", &[], b"");
    assert_eq!(r.status, 401, "the admin token is required");
    // A batch refused (400), its answer naming the line and saying why.
    let refused = |lines: &[Value], line: &str, says: &str| {
        let r = upload(&s, lines);
        assert_eq!(r.status, 400);
        assert!(
            r.text().contains(line) && r.text().contains(says),
            "{}",
            r.text()
        );
    };
    // A sale in a currency the config has no rate for cannot be reported
    // in USD: the batch is refused, pointing at its line.
    refused(
        &[
            json!({"user": "u-1", "event": "view", "product": "tent-1", "at": "2026-11-24T12:00:00Z"}),
            json!({"user": "u-1", "event": "purchase", "product": "tent-1", "at": "2026-11-24T12:00:00Z", "amount": "10", "currency": "XAU"}),
        ],
        "line 2",
        "XAU",
    );
    // A sale past a billion dollars is a typo in the feed (extra digits):
    // summed into the reports it would swamp every total. In USD: a
    // billion of a currency of small units is taken.
    refused(
        &[
            json!({"user": "u-1", "event": "purchase", "product": "tent-1", "at": "2026-11-24T12:00:00Z", "amount": "999999999999.99", "currency": "USD", "order_id": "T1"}),
        ],
        "line 1",
        "more than a sale may be",
    );
    let r = upload(
        &s,
        &[
            json!({"user": "u-1", "event": "purchase", "product": "tent-1", "at": "2026-11-24T12:00:00Z", "amount": "150000000000", "currency": "JPY", "order_id": "T2"}),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // A purchase dated ahead of the clock would outlive every window.
    refused(
        &[
            json!({"user": "u-1", "event": "purchase", "product": "tent-1", "at": "2026-12-24T12:00:00Z", "amount": "10", "currency": "USD", "order_id": "F1"}),
        ],
        "line 1",
        "future",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_impression_or_click_counted_before_a_restart_does_not_count_again() {
    let dir = shop_config_dir("reports-replay");
    let state = dir.join("state");
    let s = Server::start_in(&dir, &state, 1_000_000, ts("2026-11-24T12:00:00Z"));
    let mut r = banner_request();
    r["site"]["keywords"] = json!("tent");
    let bid = only_bid(&s, &r);
    assert_eq!(s.notice(bid["nurl"].as_str().unwrap(), "1.00").status, 200);
    let (click, pixel) = banner_urls(bid["adm"].as_str().unwrap());
    assert_eq!(get(s.bid, path_of(&pixel)).status, 200);
    assert_eq!(get(s.bid, path_of(&click)).status, 302);
    s.flush_events();
    drop(s);
    let s = Server::start_in(&dir, &state, 1_000_000, ts("2026-11-24T13:00:00Z"));
    // The same URLs within their lifetime, after the restart: the pixel
    // still answers, the click still redirects, neither counts again.
    assert_eq!(get(s.bid, path_of(&pixel)).status, 200);
    assert_eq!(get(s.bid, path_of(&click)).status, 302);
    let rep = report(&s, "from=2026-11-24&to=2026-11-24&by=line_item");
    let tents = row(&rep, "line_item", "tents");
    assert_eq!(
        (&tents["impressions"], &tents["clicks"]),
        (&json!(1), &json!(1)),
        "{rep:#}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fleet switching `--url-signatures` (or upgrading to it) makes user
/// keys the other way from then on: a sale is still attributed to the
/// shopper's touches recorded before the switch, and a conversion counted
/// before it is not counted again when sent again after it.
#[test]
fn switching_url_signatures_keeps_attribution_and_counts_once() {
    use bidder::notice::UrlSignatures;
    let dir = shop_config_dir("reports-switch");
    let state = dir.join("state");
    let writing = |how: UrlSignatures, now: &str| {
        Server::start_in_with(&dir, &state, ts(now), |s| s.url_signatures = how)
    };
    let s = writing(UrlSignatures::PerUrl, "2026-11-24T12:00:00Z");
    won(&s, "u-1", "2.50", true);
    let view =
        json!({"user": "u-1", "event": "view", "product": "tent-2", "at": "2026-11-24T12:30:00Z"});
    let r = upload(&s, std::slice::from_ref(&view));
    assert_eq!(r.json()["attributed"], 1, "{}", r.text());
    s.flush_events();
    drop(s);

    let s = writing(UrlSignatures::PerBid, "2026-11-24T13:00:00Z");
    let r = upload(
        &s,
        &[
            // Counted before the switch: not again.
            view.clone(),
            json!({"user": "u-1", "event": "purchase", "product": "tent-1", "at": "2026-11-24T13:00:00Z", "amount": "30.00", "currency": "USD", "order_id": "S1"}),
        ],
    );
    assert_eq!(
        r.json(),
        json!({"applied": 2, "attributed": 1, "unattributed": 0, "duplicate": 1})
    );
    let rep = report(&s, "from=2026-11-24&to=2026-11-24&by=line_item");
    let tents = row(&rep, "line_item", "tents");
    assert_eq!(
        (
            &tents["clicks"],
            &tents["detail_page_views"],
            &tents["purchases"],
            micros(&tents["sales"])
        ),
        (&json!(1), &json!(1), &json!(1), 30_000_000),
        "{rep:#}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The bids of one request share their user (its key is made once per
/// request): a click on the second imp's ad is that shopper's touch, and
/// their purchase is attributed to it.
#[test]
fn a_sale_follows_a_click_on_any_imp_of_a_request() {
    let dir = shop_config_dir("reports-imps");
    let state = dir.join("state");
    let s = Server::start_in(&dir, &state, 1_000_000, ts("2026-11-24T12:00:00Z"));
    let mut r = banner_request();
    r["site"]["keywords"] = json!("tent");
    r["user"]["buyeruid"] = json!("u-7");
    let second = r["imp"][0].clone();
    r["imp"].as_array_mut().unwrap().push(second);
    r["imp"][1]["id"] = json!("2");
    let answer = s.bid(&r.to_string());
    assert_eq!(answer.status, 200, "{}", answer.text());
    let v = answer.json();
    let bids = v["seatbid"][0]["bid"].as_array().unwrap();
    assert_eq!(bids.len(), 2, "{v}");
    let users: Vec<String> = bids
        .iter()
        .map(|b| {
            let (click, _) = banner_urls(b["adm"].as_str().unwrap());
            param(&click, "u").unwrap().to_owned()
        })
        .collect();
    // One shopper, masked per bid: the two bids' URLs do not show it is
    // the same one; the bidder reads both back to one key.
    assert!(
        users.iter().all(|u| u.starts_with('m') && u.len() == 17),
        "{users:?}"
    );
    assert_ne!(users[0], users[1]);
    let on_second = bids.iter().find(|b| b["impid"] == "2").unwrap();
    assert_eq!(
        s.notice(on_second["nurl"].as_str().unwrap(), "2.00").status,
        200
    );
    let (click, _) = banner_urls(on_second["adm"].as_str().unwrap());
    assert_eq!(get(s.bid, path_of(&click)).status, 302);
    s.clock.advance_millis(3_600_000);
    let up = upload(
        &s,
        &[
            json!({"user": "u-7", "event": "purchase", "product": "tent-1", "at": "2026-11-24T13:00:00Z", "amount": "40.00", "currency": "USD", "order_id": "M1"}),
            json!({"user": "u-8", "event": "purchase", "product": "tent-1", "at": "2026-11-24T13:00:00Z", "amount": "9.00", "currency": "USD", "order_id": "M2"}),
        ],
    );
    assert_eq!(
        up.json(),
        json!({"applied": 2, "attributed": 1, "unattributed": 1, "duplicate": 0})
    );
    let rep = report(&s, "from=2026-11-24&to=2026-11-24&by=line_item");
    let tents = row(&rep, "line_item", "tents");
    assert_eq!(
        (
            &tents["clicks"],
            &tents["purchases"],
            micros(&tents["sales"])
        ),
        (&json!(1), &json!(1), 40_000_000),
        "{rep:#}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn spend_impressions_clicks_and_sales_by_audience() {
    let dir = common::tempdir("reports-audience");
    std::fs::write(dir.join("shop.yaml"), common::AUDIENCE_SHOP).expect("config");
    let state = dir.join("state");
    let s = Server::start_in(&dir, &state, 1_000_000, ts("2026-11-24T12:00:00Z"));

    // On a page about tent-1 `pages` bids, for the audience the page put
    // it in; its notices and tracking URLs say which.
    let mut about_tent = banner_request();
    about_tent["user"]["buyeruid"] = json!("u-1");
    about_tent["site"]["content"] = json!({ "id": "tent-1" });
    let bid = only_bid(&s, &about_tent);
    assert_eq!(bid["cid"], "pages");
    let nurl = bid["nurl"].as_str().unwrap();
    // The URLs carry a token of the audience, never its name: the page
    // and the exchange see them.
    let token = param(nurl, "a").expect("an audience token").to_owned();
    assert!(
        token.len() == 16 && token.bytes().all(|b| b.is_ascii_hexdigit()),
        "{nurl}"
    );
    let (click, pixel) = banner_urls(bid["adm"].as_str().unwrap());
    assert_eq!(param(&click, "a"), Some(token.as_str()), "{click}");
    assert_eq!(param(&pixel, "a"), Some(token.as_str()), "{pixel}");
    for url in [nurl, &click, &pixel, bid["adm"].as_str().unwrap()] {
        assert!(
            !url.contains("tent-pages") && !url.contains("products%3A"),
            "{url}"
        );
    }
    // Each bid's token is its own: one seen on many bids would tell a
    // retargeting list's token from a page's (exchange probe 2).
    let mut again = about_tent.clone();
    again["user"]["buyeruid"] = json!("u-3");
    let other = only_bid(&s, &again);
    let other_token = param(other["nurl"].as_str().unwrap(), "a").map(str::to_owned);
    assert!(other_token.is_some() && other_token.as_deref() != Some(token.as_str()));
    // The audience is signed: another one is refused and charges nothing.
    let forged = nurl.replace(&format!("a={token}"), "a=0123456789abcdef");
    assert_eq!(s.notice(&forged, "2.50").status, 403);
    assert_eq!(s.app.line_item_spent("pages").lifetime.as_i64(), 0);
    assert_eq!(s.notice(nurl, "2.50").status, 200);
    assert_eq!(get(s.bid, path_of(&pixel)).status, 200);
    assert_eq!(get(s.bid, path_of(&click)).status, 302);

    // Elsewhere only `plain` may bid: no audience, and no `a` anywhere.
    let mut elsewhere = banner_request();
    elsewhere["user"]["buyeruid"] = json!("u-2");
    let bid = only_bid(&s, &elsewhere);
    assert_eq!(bid["cid"], "plain");
    let nurl = bid["nurl"].as_str().unwrap();
    assert_eq!(param(nurl, "a"), None, "{nurl}");
    let (_, pixel) = banner_urls(bid["adm"].as_str().unwrap());
    assert_eq!(param(&pixel, "a"), None, "{pixel}");
    assert_eq!(s.notice(nurl, "3.00").status, 200);
    assert_eq!(get(s.bid, path_of(&pixel)).status, 200);

    // u-1 clicked the `pages` ad: the purchase goes to its audience.
    s.clock.advance_millis(3_600_000);
    let r = upload(
        &s,
        &[
            json!({"user": "u-1", "event": "purchase", "product": "tent-1", "at": "2026-11-24T13:00:00Z", "amount": "100.00", "currency": "USD", "order_id": "A1"}),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());

    let rep = report(&s, "from=2026-11-24&to=2026-11-24&by=audience");
    assert_eq!(rep["by"], json!(["audience"]));
    assert_eq!(rep["rows"].as_array().unwrap().len(), 2, "{rep:#}");
    let pages = row(&rep, "audience", "products:tent-pages");
    assert_eq!(
        (
            &pages["bids"],
            &pages["wins"],
            &pages["impressions"],
            &pages["clicks"],
            &pages["purchases"]
        ),
        (&json!(2), &json!(1), &json!(1), &json!(1), &json!(1)),
        "{rep:#}"
    );
    assert_eq!(micros(&pages["spend"]), 2_500);
    assert_eq!(micros(&pages["sales"]), 100_000_000);
    let none = row(&rep, "audience", "");
    assert_eq!(
        (
            &none["bids"],
            &none["wins"],
            &none["impressions"],
            &none["clicks"],
            &none["purchases"]
        ),
        (&json!(1), &json!(1), &json!(1), &json!(0), &json!(0)),
        "{rep:#}"
    );
    assert_eq!(micros(&none["spend"]), 3_000);
    // Spend by audience is the ledger's, to the micro.
    let ledger = s.app.line_item_spent("pages").lifetime.as_i64()
        + s.app.line_item_spent("plain").lifetime.as_i64();
    assert_eq!(micros(&pages["spend"]) + micros(&none["spend"]), ledger);
    assert_eq!(micros(&rep["total"]["spend"]), ledger);

    // Each line item under the audience it bid for.
    let rep = report(&s, "from=2026-11-24&to=2026-11-24&by=line_item,audience");
    assert_eq!(
        row(&rep, "line_item", "pages")["audience"],
        "products:tent-pages"
    );
    assert_eq!(row(&rep, "line_item", "plain")["audience"], "");

    // CSV, table and HTML show it as a column too.
    let get_report = |format: &str| {
        let r = request(
            s.admin,
            "GET",
            &format!("/v1/reports?from=2026-11-24&to=2026-11-24&by=audience&format={format}"),
            &[("Authorization", &auth())],
            b"",
        );
        assert_eq!(r.status, 200, "{format}: {}", r.text());
        r.text()
    };
    let csv = get_report("csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[0].starts_with("audience,bids,wins,impressions,clicks,ctr,spend,"),
        "{csv}"
    );
    assert!(lines[1].starts_with(",1,1,1,0,0.000000,0.003,"), "{csv}");
    assert!(
        lines[2].starts_with("products:tent-pages,2,1,1,1,1.000000,0.0025,"),
        "{csv}"
    );
    let table = get_report("table");
    let header = table.lines().nth(2).unwrap_or_default();
    assert!(header.starts_with("audience "), "{table}");
    assert!(
        table.lines().any(|l| l.starts_with("products:tent-pages ")),
        "{table}"
    );
    let html = get_report("html");
    assert!(html.contains(r#"<th scope="col">audience</th>"#), "{html}");
    assert!(
        html.contains(r#"<td class="dim" title="products:tent-pages">products:tent-pages</td>"#),
        "{html}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A purchase uploaded while the click before it waits for its bid's
/// charge (an exchange that bills later) is attributed to that click once
/// the win comes, and counted once (reports probe: it stayed unattributed
/// for good, and sending it again was a duplicate).
#[test]
fn a_purchase_uploaded_before_the_win_is_attributed_when_it_comes() {
    let dir = shop_config_dir("late-touch");
    let state = dir.join("state");
    let s = Server::start_in(&dir, &state, 1_000_000, ts("2026-11-24T12:00:00Z"));
    let mut r = banner_request();
    r["user"]["buyeruid"] = json!("u-9");
    r["site"]["keywords"] = json!("camping,tent");
    let bid = only_bid(&s, &r);
    let (click_url, pixel) = banner_urls(bid["adm"].as_str().unwrap());
    assert_eq!(get(s.bid, path_of(&pixel)).status, 200);
    assert_eq!(get(s.bid, path_of(&click_url)).status, 302);
    s.clock.advance_millis(60_000);
    let purchase = json!({"user": "u-9", "event": "purchase", "product": "tent-1", "at": "2026-11-24T12:00:30Z", "amount": "40.00", "currency": "USD", "order_id": "L1"});
    let r = upload(&s, std::slice::from_ref(&purchase));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"applied": 1, "attributed": 0, "unattributed": 1, "duplicate": 0})
    );
    assert_eq!(s.notice(bid["nurl"].as_str().unwrap(), "2.00").status, 200);
    let rep = report(&s, "from=2026-11-24&to=2026-11-24&by=line_item");
    let tents = row(&rep, "line_item", "tents");
    assert_eq!(
        (&tents["impressions"], &tents["clicks"], &tents["purchases"]),
        (&json!(1), &json!(1), &json!(1)),
        "{rep:#}"
    );
    assert_eq!(micros(&tents["sales"]), 40_000_000);
    // Sent again: the same purchase, counted once.
    let r = upload(&s, &[purchase]);
    assert_eq!(r.json()["duplicate"], 1, "{}", r.text());
    let rep = report(&s, "from=2026-11-24&to=2026-11-24&by=line_item");
    assert_eq!(row(&rep, "line_item", "tents")["purchases"], 1);
    let _ = std::fs::remove_dir_all(&dir);
}

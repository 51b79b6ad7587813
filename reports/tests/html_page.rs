//! The HTML report as a browser shows it: a known report rendered to a file,
//! loaded in headless Chromium, its DOM and a screenshot checked.

mod support;

use std::time::Instant;

use config::{Date, Micros, Timestamp};
use reports::query::{Delivery, Level, NoBidCount, Query, Row};
use reports::{render, Counters, Dim, Report};
use support::chromium::{file_url, Chromium, TempDir};

/// Written by an account manager who tries markup in an id: it must show as
/// text, never run.
const EVIL: &str = r#"<img src=x onerror="document.body.dataset.pwned=1"><script>document.body.dataset.pwned=2</script>&"'"#;

fn delivery(level: Level, ids: [&str; 3], budget: Option<(&'static str, Micros)>) -> Delivery {
    Delivery {
        level,
        advertiser: ids[0].into(),
        order: ids[1].into(),
        line_item: ids[2].into(),
        budget,
        spent_day: Micros::ZERO,
        spent_to_date: Micros::ZERO,
        hourly: vec![Micros::ZERO; 24],
        plan: Vec::new(),
        counters: Counters::default(),
    }
}

/// One advertiser, one order, a daily line item with known figures and a
/// lifetime one named [`EVIL`], on a day still running (14 hours shown).
fn report() -> Report {
    let counters = Counters {
        bids: 5000,
        wins: 2000,
        impressions: 2000,
        clicks: 40,
        spend: Micros(1_234_500_000),
        over_delivery: Micros(250_000),
        views: 30,
        purchases: 7,
        sales: Micros(4_938_000_000),
    };
    let mut daily = delivery(
        Level::LineItem,
        ["shop", "o1", "li-daily"],
        Some(("daily", Micros::from_units(50))),
    );
    daily.hourly = (1..=14).map(|h| Micros(h * 2_500_000)).collect();
    daily.spent_day = Micros(35_000_000);
    daily.spent_to_date = Micros(1_412_340_000);
    daily.plan = vec![Micros::from_units(50); 24];
    daily.counters = counters;
    let mut lifetime = delivery(
        Level::LineItem,
        ["shop", "o1", EVIL],
        Some(("lifetime", Micros::from_units(1000))),
    );
    lifetime.hourly = vec![Micros::ZERO; 14];
    lifetime.plan = (1..=24).map(|h| Micros(h * 2_000_000)).collect();
    let mut order = delivery(
        Level::Order,
        ["shop", "o1", ""],
        Some(("lifetime", Micros::from_units(5000))),
    );
    order.hourly = daily.hourly.clone();
    order.spent_day = daily.spent_day;
    order.spent_to_date = daily.spent_to_date;
    order.counters = counters;
    let mut adv = order.clone();
    (adv.level, adv.order, adv.budget) = (Level::Advertiser, String::new(), None);
    let day = Date::from_ymd(2026, 11, 20).unwrap();
    Report {
        query: Query {
            from: Date::from_ymd(2026, 11, 1).unwrap(),
            to: day,
            by: vec![Dim::LineItem, Dim::Exchange],
        },
        rows: vec![
            Row {
                key: vec!["li-daily".into(), "adx".into()],
                counters,
            },
            Row {
                key: vec![EVIL.into(), "adx".into()],
                counters: Counters::default(),
            },
        ],
        total: counters,
        no_bids: vec![
            NoBidCount {
                reason: "no_line_item".into(),
                count: 900,
            },
            NoBidCount {
                reason: "below_floor".into(),
                count: 100,
            },
        ],
        delivery: vec![adv, order, daily, lifetime],
        generated_at: Timestamp::parse_rfc3339("2026-11-20T13:05:00Z").unwrap(),
        raw_records: 0,
    }
}

#[test]
fn the_report_page_renders_in_chromium() {
    let browser = Chromium::find();
    let started = Instant::now();
    let dir = TempDir::new("reports-html-page");
    let page = dir.path().join("report.html");
    let r = report();
    std::fs::write(&page, render::html(&r)).unwrap();
    let url = file_url(&page);

    let dom = browser.dump_dom(&url);
    for want in [
        // Total spend: the hook holds the exact decimal, people read it grouped.
        r#"data-metric="spend" data-value="1234.50"><dt>Spend</dt><dd>1,234.50</dd>"#,
        r#"data-metric="ctr" data-value="0.020000"><dt>CTR</dt><dd>2.00%</dd>"#,
        r#"data-metric="roas" data-value="4.000000"><dt>ROAS</dt><dd>4.00</dd>"#,
        r#"data-line-item="li-daily" data-spent="35.00""#,
        "<strong>35.00</strong> of 50.00 daily budget spent on 2026-11-20",
        r#"<li data-reason="no_line_item" data-count="900">"#,
        r#"<ol id="no-bids">"#,
        "money in USD",
    ] {
        assert!(dom.contains(want), "the rendered DOM lacks {want}\n{dom}");
    }
    // One chart per advertiser, order and line item; a spend line in each,
    // a plan line for the line items.
    assert_eq!(dom.matches("<svg").count(), r.delivery.len());
    assert_eq!(
        dom.matches(r#"data-series="spend""#).count(),
        r.delivery.len()
    );
    assert_eq!(dom.matches(r#"data-series="plan""#).count(), 2);
    // The id is shown as text and ran nothing.
    assert!(!dom.contains("data-pwned"), "markup in an id ran:\n{dom}");
    assert!(dom.contains("&lt;script&gt;document.body.dataset.pwned=2&lt;/script&gt;"));
    assert!(!dom.contains("inf<") && !dom.contains("NaN"));

    let png = dir.path().join("report.png");
    browser.screenshot(&url, &png, 1280, 2000);
    let bytes = std::fs::read(&png).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        png.display()
    );
    // IHDR, the first chunk: width and height, big-endian.
    let size = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    assert_eq!((size(16), size(20)), (1280, 2000));
    // A blank page of that size compresses to a few KB; ours has text,
    // tiles and charts.
    assert!(bytes.len() > 40_000, "a {} byte screenshot", bytes.len());
    eprintln!("chromium: DOM and screenshot in {:?}", started.elapsed());
}

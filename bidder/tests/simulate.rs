//! Pacing on a simulated day, through `bidder::simulate` (the engine of
//! `bidder simulate`).

use bidder::simulate::{run, Options};

fn config(budget: &str) -> config::Config {
    let yaml = format!(
        r#"advertiser: {{ id: shop, name: Shop, domains: [shop.example], categories: [IAB22] }}
creatives:
  - {{ id: b300, format: display, size: 300x250, image_url: "https://cdn.shop.example/b.png", click_url: "https://shop.example/" }}
orders:
  - id: o1
    service: self_service
    budget: 5000.00
    flight: {{ start: 2026-11-24, end: 2026-11-30 }}
    line_items:
      - {{ id: li, media: display, cpm: 50.00, budget: {budget}, creatives: [b300] }}
"#
    );
    config::load_files(&[("shop.yaml".into(), yaml)]).expect("valid config")
}

fn opts(qps: f64) -> Options {
    Options {
        start: config::Timestamp::parse_rfc3339("2026-11-24T00:00:00Z").unwrap(),
        hours: 24,
        qps,
        traffic: Vec::new(),
        win_rate: 0.5,
        seed: 7,
    }
}

#[tokio::test]
async fn a_lifetime_budget_follows_the_even_plan_every_hour() {
    // 700.00 over 7 days: 100.00 a day, 0.05 an impression, 2,000 a day;
    // 0.2 requests a second at a 50% win rate offer about 8,600 wins.
    let report = run(config("{ lifetime: 700.00 }"), &opts(0.2)).await;
    assert_eq!(report.rows.len(), 24);
    for r in &report.rows {
        assert!(
            r.error_pct().abs() <= 5.0,
            "hour {}: spend {} vs plan {} ({:+.2}%)\n{}",
            r.hour,
            r.spend,
            r.plan,
            r.error_pct(),
            report.table()
        );
        assert_eq!(r.overspend, config::Micros::ZERO);
    }
    let last = report.rows.last().unwrap();
    assert!(last.utilisation_pct() >= 98.0, "{}", report.table());
    assert!(report.rmse_pct("li") < 5.0);
}

#[tokio::test]
async fn a_daily_budget_spends_as_demand_comes_and_stops_at_the_cap() {
    // 10.00 a day at 0.05: 200 impressions, won within the first hour.
    let report = run(config("{ daily: 10.00 }"), &opts(0.2)).await;
    for r in &report.rows {
        assert_eq!(
            r.spend,
            config::Micros::from_units(10),
            "hour {}\n{}",
            r.hour,
            report.table()
        );
        assert_eq!(r.overspend, config::Micros::ZERO);
    }
}

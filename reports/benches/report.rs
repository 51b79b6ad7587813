//! A 30-day report over 10 million events: the bound is 2 s.
//!
//! Writes a state directory (under the system temp dir, removed after) of
//! 30 UTC days holding 6M event records (impressions, clicks, views,
//! purchases, bid and no-bid counts) and 4M charges in 20 journal
//! generations of 200,000 (the default compaction interval), over 200 line
//! items (3 creatives each), 6 exchanges, 50 products and 1M shoppers.
//!
//! Two shapes (`SHAPE=`): `skewed` (the default, what delivery looks like:
//! line items drawn from a Zipf(1.1) law, exchanges taking 40/25/15/10/6/4%
//! of traffic, a third of line items keyword-targeted with five keywords
//! of their own each drawn Zipf-wise, creatives 60/30/10%) and `uniform`
//! (the worst case for aggregates: every line item, creative, exchange and
//! one of 40 keywords equally likely, so a day's 333,000 events spread
//! over 144,000 combinations and aggregates hardly shrink).
//! Then times, with the clock on the day after the last: the first report
//! (reads every raw record, folds each closed day and generation into its
//! aggregate), and the median of five more (aggregates, and the live
//! journal generation raw), for
//! `--by day` and for the widest cut, `--by line_item,creative,exchange,keyword`.
//!
//! Run: `cargo bench -p reports --bench report` (EVENTS=… scales it,
//! SHAPE=uniform for the worst case).

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use config::{Date, Micros, Timestamp};
use ledger::{BidKey, Charge, Prior, SpendKey, Tags};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use reports::fact::{Dim, Dims};
use reports::query::{run, Query, Sources};
use reports::record::{Kind, Record};

const DAY_MS: i64 = 86_400_000;
const DAYS: i64 = 30;

fn main() {
    let total: u64 = std::env::var("EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let state = std::env::temp_dir().join(format!("bidder-report-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    std::fs::create_dir_all(state.join("events")).expect("state dir");
    let first = Date::parse("2026-10-01").expect("date").days_since_epoch();
    let t = Instant::now();
    let (events, charges) = (total * 6 / 10, total * 4 / 10);
    write_events(&state, first, events);
    write_charges(&state, first, charges);
    let bytes: u64 = dir_size(&state) + dir_size(&state.join("events"));
    println!(
        "shape {}: wrote {events} event records and {charges} charges ({:.0} MB) in {:.1} s",
        if World::new(0).uniform {
            "uniform"
        } else {
            "skewed"
        },
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let now = Timestamp((first + DAYS) * DAY_MS + 3_600_000);
    for by in [
        vec![Dim::Day],
        vec![Dim::LineItem, Dim::Creative, Dim::Exchange, Dim::Keyword],
    ] {
        let q = Query {
            from: Date::from_days_since_epoch(first),
            to: Date::from_days_since_epoch(first + DAYS - 1),
            by: by.clone(),
        };
        let src = Sources {
            state: &state,
            config: None,
            now,
            progress: false,
        };
        let names: Vec<&str> = by.iter().map(|d| d.as_str()).collect();
        let t = Instant::now();
        let r = run(&q, &src).expect("report");
        let cold = t.elapsed().as_secs_f64();
        let mut warm = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            let again = run(&q, &src).expect("report");
            warm.push(t.elapsed().as_secs_f64());
            assert_eq!(again.total, r.total, "aggregates give the raw figures");
            // Only the live journal generation is read raw.
            assert!(again.raw_records <= 200_000, "{}", again.raw_records);
        }
        warm.sort_by(f64::total_cmp);
        println!(
            "--by {}: {} rows; first (raw, folding): {cold:.2} s over {} records; then median {:.3} s (min {:.3}, max {:.3})",
            names.join(","),
            r.rows.len(),
            r.raw_records,
            warm[2],
            warm[0],
            warm[4]
        );
    }
    // A restart reads back every touch and conversion of the days an
    // attribution window may cover.
    let t = Instant::now();
    let log = reports::log::EventLog::open(&state, now, reports::log::Options::default())
        .expect("event log");
    let serving = t.elapsed().as_secs_f64();
    while !log.stats.rebuilt.load(std::sync::atomic::Ordering::Acquire) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    println!(
        "start-up: writing after {:.3} s; {} records read back, {} touches, in {:.2} s (in the background)",
        serving,
        log.stats.rebuilt_records.load(std::sync::atomic::Ordering::Relaxed),
        log.stats.touches.load(std::sync::atomic::Ordering::Relaxed),
        t.elapsed().as_secs_f64()
    );
    log.close();
    let _ = std::fs::remove_dir_all(&state);
}

fn dir_size(d: &Path) -> u64 {
    std::fs::read_dir(d)
        .map(|it| {
            it.filter_map(|e| e.ok()?.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

struct World {
    rng: SmallRng,
    uniform: bool,
    /// Cumulative weights of the skewed shape.
    li_cdf: Vec<f64>,
    line_items: Vec<(
        std::sync::Arc<str>,
        std::sync::Arc<str>,
        std::sync::Arc<str>,
    )>,
    exchanges: Vec<std::sync::Arc<str>>,
    keywords: Vec<std::sync::Arc<str>>,
    products: Vec<std::sync::Arc<str>>,
}

impl World {
    fn new(seed: u64) -> World {
        let s = |x: String| -> std::sync::Arc<str> { x.into() };
        let weights: Vec<f64> = (1..=200).map(|r| 1.0 / f64::powf(r as f64, 1.1)).collect();
        let sum: f64 = weights.iter().sum();
        let mut acc = 0.0;
        World {
            uniform: std::env::var("SHAPE").is_ok_and(|s| s == "uniform"),
            li_cdf: weights
                .iter()
                .map(|w| {
                    acc += w / sum;
                    acc
                })
                .collect(),
            rng: SmallRng::seed_from_u64(seed),
            line_items: (0..200)
                .map(|i| {
                    (
                        s(format!("adv-{}", i / 20)),
                        s(format!("order-{}", i / 5)),
                        s(format!("li-{i}")),
                    )
                })
                .collect(),
            exchanges: (0..6).map(|i| s(format!("x{i}"))).collect(),
            keywords: (0..40)
                .map(|i| {
                    s(if i == 0 {
                        String::new()
                    } else {
                        format!("broad:kw {i}")
                    })
                })
                .collect(),
            products: (0..50).map(|i| s(format!("P{i:04}"))).collect(),
        }
    }

    fn dims(&mut self) -> Dims {
        if self.uniform {
            let li = self.rng.random_range(0..self.line_items.len());
            let (adv, order, id) = self.line_items[li].clone();
            return Dims {
                advertiser: adv,
                order,
                line_item: id,
                creative: format!("c-{li}-{}", self.rng.random_range(0..3)).into(),
                exchange: self.exchanges[self.rng.random_range(0..self.exchanges.len())].clone(),
                keyword: self.keywords[self.rng.random_range(0..self.keywords.len())].clone(),
                audience: "".into(),
                product: "".into(),
            };
        }
        let x: f64 = self.rng.random();
        let li = self
            .li_cdf
            .partition_point(|&c| c < x)
            .min(self.line_items.len() - 1);
        let (adv, order, id) = self.line_items[li].clone();
        let pick = |rng: &mut SmallRng, shares: &[u32]| {
            let mut r = rng.random_range(0..shares.iter().sum::<u32>());
            shares
                .iter()
                .position(|&s| {
                    if r < s {
                        true
                    } else {
                        r -= s;
                        false
                    }
                })
                .unwrap_or(0)
        };
        let creative = pick(&mut self.rng, &[60, 30, 10]);
        let exchange = pick(&mut self.rng, &[40, 25, 15, 10, 6, 4]);
        let keyword = if li % 3 == 0 {
            let k = pick(&mut self.rng, &[40, 25, 15, 12, 8]);
            self.keywords[1 + (li * 5 + k) % (self.keywords.len() - 1)].clone()
        } else {
            self.keywords[0].clone()
        };
        Dims {
            advertiser: adv,
            order,
            line_item: id,
            creative: format!("c-{li}-{creative}").into(),
            exchange: self.exchanges[exchange].clone(),
            keyword,
            audience: "".into(),
            product: "".into(),
        }
    }
}

fn write_events(state: &Path, first: i64, n: u64) {
    let mut w = World::new(1);
    let per_day = n / DAYS as u64;
    for d in 0..DAYS {
        let day = Date::from_days_since_epoch(first + d);
        let path = state.join("events").join(format!("{day}.events"));
        let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("events file"));
        let _ = writeln!(f, "bidder-events 1");
        let mut line = String::with_capacity(256);
        for _ in 0..per_day {
            let at_ms = (first + d) * DAY_MS + w.rng.random_range(0..DAY_MS);
            let mut dims = w.dims();
            let roll = w.rng.random_range(0..1000);
            let (kind, n, amount) = match roll {
                0..=799 => (Kind::Impression, 1, 0),
                800..=849 => (Kind::Click, 1, 0),
                850..=869 => (Kind::View, 1, 0),
                870..=879 => (
                    Kind::Purchase,
                    1,
                    w.rng.random_range(5_000_000..200_000_000),
                ),
                880..=989 => (Kind::Bid, w.rng.random_range(1..40), 0),
                _ => {
                    dims = Dims {
                        exchange: dims.exchange,
                        product: ["keyword", "media", "budget", "floor"][roll % 4].into(),
                        ..Dims::default()
                    };
                    (Kind::NoBid, w.rng.random_range(1..400), 0)
                }
            };
            if matches!(kind, Kind::View | Kind::Purchase) {
                dims.product = w.products[w.rng.random_range(0..w.products.len())].clone();
            }
            line.clear();
            Record {
                kind,
                at_ms,
                dims,
                user: w.rng.random_range(1..1_000_000),
                n,
                amount: Micros(amount),
                order_id: if kind == Kind::Purchase {
                    format!("o-{at_ms}").into()
                } else {
                    "".into()
                },
                features: None,
            }
            .write(&mut line);
            f.write_all(line.as_bytes()).expect("write");
        }
        f.flush().expect("flush");
    }
}

fn write_charges(state: &Path, first: i64, n: u64) {
    const PER_GENERATION: u64 = 200_000;
    let mut w = World::new(2);
    let generations = n.div_ceil(PER_GENERATION);
    let mut written = 0u64;
    for g in 1..=generations {
        let name = if g == generations {
            "charges.journal".to_string()
        } else {
            format!("charges.{g}.journal")
        };
        let mut f =
            std::io::BufWriter::new(std::fs::File::create(state.join(name)).expect("journal"));
        let _ = writeln!(f, "bidder-journal 1 {g}");
        for _ in 0..PER_GENERATION.min(n - written) {
            // Charges in time order, as a journal holds them.
            let at_ms = first * DAY_MS + (written as i64 * DAYS * DAY_MS / n as i64);
            let dims = w.dims();
            let c = Charge {
                bid: BidKey(w.rng.random()),
                day: Timestamp(at_ms).date(),
                billed: Micros(w.rng.random_range(500..20_000)),
                over_delivery: Micros::ZERO,
                forget: Timestamp(at_ms + DAY_MS),
                keys: [
                    SpendKey::line_item(&dims.line_item),
                    SpendKey::order(&dims.order),
                ],
                kind: None,
                late: false,
                prior: Prior::None,
                tags: Tags {
                    advertiser: dims.advertiser,
                    creative: dims.creative,
                    exchange: dims.exchange,
                    keyword: dims.keyword,
                    audience: dims.audience,
                    at_ms,
                },
            };
            f.write_all(ledger::journal::record_line(&c).as_bytes())
                .expect("write");
            written += 1;
        }
        f.flush().expect("flush");
    }
}

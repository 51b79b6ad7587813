//! The event journal and its aggregates when things go wrong: a torn last
//! line, a damaged or stale aggregate, a conversion dated in a day already
//! folded, uploads that come while the past is still being read back.

use std::path::{Path, PathBuf};

use config::{Date, Micros, Timestamp};
use reports::attribution::{Catalog, Conversion};
use reports::fact::{Dim, Dims};
use reports::log::{EventLog, Options};
use reports::query::{run, Query, Sources};

const DAY: i64 = 86_400_000;

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("reports-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn at(s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(s).expect("time")
}

fn ad(li: &str) -> Dims {
    Dims {
        advertiser: "shop".into(),
        order: "o1".into(),
        line_item: li.into(),
        creative: "c1".into(),
        exchange: "x".into(),
        ..Dims::default()
    }
}

fn catalog() -> Catalog {
    let yaml = "advertiser:
  id: shop
  name: Shop
  domains: [shop.example]
  categories: [IAB22]
  products: [tent]
creatives:
  - id: c1
    format: display
    size: 300x250
    image_url: https://cdn.shop.example/b.png
    click_url: https://shop.example/
orders:
  - id: o1
    service: self_service
    budget: 1000.00
    flight: { start: 2026-11-01, end: 2026-12-31 }
    line_items:
      - id: li
        media: display
        cpm: 4.00
        budget: { daily: 100.00 }
        creatives: [c1]
";
    // A directory of each call's own: tests run side by side, and one
    // removing a shared one under another's load failed it (CI).
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = tempdir(&format!("catalog-{n}"));
    std::fs::write(dir.join("shop.yaml"), yaml).expect("config");
    let config = config::load_dir(&dir).expect("valid config");
    let _ = std::fs::remove_dir_all(&dir);
    Catalog::from_config(&config)
}

fn buy(user: u64, at_ms: i64, order: &str) -> Conversion {
    Conversion {
        purchase: true,
        user,
        other_user: None,
        product: "tent".into(),
        at_ms,
        amount: Micros(10_000_000),
        order_id: Some(order.into()),
        advertiser: None,
    }
}

fn report(state: &Path, day: &str, now: Timestamp) -> reports::Report {
    let d = Date::parse(day).expect("day");
    let q = Query {
        from: d,
        to: d,
        by: vec![Dim::LineItem],
    };
    run(
        &q,
        &Sources {
            state,
            config: None,
            now,
            progress: false,
        },
    )
    .expect("report")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn a_torn_line_costs_one_record_and_the_next_ones_start_clean() {
    let state = tempdir("torn");
    let day = at("2026-11-24T10:00:00Z");
    let rt = runtime();
    let log = EventLog::open(&state, day, Options::default()).expect("open");
    log.track(day.as_millis(), ad("li"), 7, false, 1);
    rt.block_on(log.flush());
    log.close();
    // A crash mid-write: half a record at the end.
    let file = state.join("events/2026-11-24.events");
    let mut text = std::fs::read_to_string(&file).unwrap();
    let whole = text.clone();
    text.push_str(&whole.lines().last().unwrap()[..20]);
    std::fs::write(&file, &text).unwrap();
    let log = EventLog::open(&state, day, Options::default()).expect("open");
    log.track(day.as_millis() + 1, ad("li"), 8, true, 2);
    rt.block_on(log.flush());
    log.close();
    let r = report(&state, "2026-11-24", day);
    let c = r.rows[0].counters;
    assert_eq!((c.impressions, c.clicks), (1, 1), "{:?}", r.rows);
    let _ = std::fs::remove_dir_all(&state);
}

/// A barrier (what a click waits for) has the records sent before it on
/// disk, and leaves the counts to their once-a-second write.
#[test]
fn a_barrier_writes_the_records_before_it_and_not_the_counts() {
    let state = tempdir("barrier");
    let day = at("2026-11-24T10:00:00Z");
    let rt = runtime();
    let log = EventLog::open(&state, day, Options::default()).expect("open");
    // The read-back at start done first: until then a tracked event waits
    // (for attribution) and a barrier does not wait for it, so on a loaded
    // machine nothing was written yet (CI once).
    rt.block_on(log.flush());
    log.bid(day.as_millis(), ad("li"));
    log.track(day.as_millis(), ad("li"), 7, true, 1);
    rt.block_on(log.barrier());
    let file = state.join("events/2026-11-24.events");
    let text = std::fs::read_to_string(&file).unwrap();
    let kinds: Vec<&str> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .collect();
    assert_eq!(kinds, ["c"], "{text}");
    rt.block_on(log.flush());
    log.close();
    let r = report(&state, "2026-11-24", day);
    let c = r.rows[0].counters;
    assert_eq!((c.bids, c.clicks), (1, 1), "{:?}", r.rows);
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn damaged_or_stale_aggregates_are_rebuilt_from_their_day() {
    let state = tempdir("aggs");
    let day = at("2026-11-24T10:00:00Z");
    let rt = runtime();
    let log = EventLog::open(&state, day, Options::default()).expect("open");
    log.set_catalog(catalog());
    for i in 0..5 {
        log.track(
            day.as_millis() + i,
            ad("li"),
            100 + i as u64,
            false,
            i as u128,
        );
    }
    rt.block_on(log.flush());
    // The next day: the first report folds the 24th into its aggregate.
    let next = Timestamp(day.as_millis() + DAY);
    let first = report(&state, "2026-11-24", next);
    assert_eq!(first.raw_records, 5);
    assert_eq!(report(&state, "2026-11-24", next).raw_records, 0, "folded");
    // A purchase dated on the 24th arrives late: the aggregate no longer
    // covers its day's file and is rebuilt.
    let labels = rt
        .block_on(log.convert(
            vec![buy(100, day.as_millis() + 3_600_000, "A1")],
            next.as_millis(),
        ))
        .expect("convert");
    assert_eq!(labels, vec!["attributed"]);
    let late = report(&state, "2026-11-24", next);
    assert_eq!(late.rows[0].counters.purchases, 1);
    assert_eq!(late.raw_records, 1, "only what came since the fold");
    // A damaged aggregate is not trusted: cut short, or one bit flipped
    // in a counter (its layout still holds).
    let agg = state.join("events/2026-11-24.agg");
    let good = std::fs::read(&agg).unwrap();
    std::fs::write(&agg, &good[..good.len() - 3]).unwrap();
    let again = report(&state, "2026-11-24", next);
    assert_eq!(again.rows, late.rows);
    assert_eq!(again.raw_records, 6, "read raw again");
    let mut flipped = std::fs::read(&agg).unwrap();
    let at = flipped.len() - 20;
    flipped[at] ^= 0x10;
    std::fs::write(&agg, &flipped).unwrap();
    let again = report(&state, "2026-11-24", next);
    assert_eq!(again.rows, late.rows);
    assert_eq!(again.raw_records, 6, "read raw again");
    log.close();
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn uploads_during_the_read_back_wait_for_it() {
    let state = tempdir("rebuild");
    let day = at("2026-11-24T10:00:00Z");
    let rt = runtime();
    let log = EventLog::open(&state, day, Options::default()).expect("open");
    for u in 1..=20_000u64 {
        log.track(day.as_millis(), ad("li"), u, u % 2 == 0, u128::from(u));
        if u % 5_000 == 0 {
            rt.block_on(log.flush());
        }
    }
    rt.block_on(log.flush());
    log.close();
    // Reopened: the conversion is sent at once, while the 20,000 touches
    // may still be being read back; it must still find its touch.
    let log = EventLog::open(&state, day, Options::default()).expect("open");
    log.set_catalog(catalog());
    let labels = rt
        .block_on(log.convert(
            vec![buy(19_999, day.as_millis() + 60_000, "B1")],
            day.as_millis(),
        ))
        .expect("convert");
    assert_eq!(labels, vec!["attributed"]);
    log.close();
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn a_line_that_is_not_text_costs_that_line_only() {
    let state = tempdir("utf8");
    let day = at("2026-11-24T10:00:00Z");
    let rt = runtime();
    let log = EventLog::open(&state, day, Options::default()).expect("open");
    log.track(day.as_millis(), ad("li"), 7, true, 1);
    rt.block_on(log.flush());
    log.close();
    let file = state.join("events/2026-11-24.events");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.extend_from_slice(b"i\t\xff\xfe garbage\n");
    std::fs::write(&file, &bytes).unwrap();
    let log = EventLog::open(&state, day, Options::default()).expect("open");
    log.set_catalog(catalog());
    log.track(day.as_millis() + 1, ad("li"), 8, false, 2);
    rt.block_on(log.flush());
    // The touch before the damage was read back.
    let labels = rt
        .block_on(log.convert(
            vec![buy(7, day.as_millis() + 60_000, "C1")],
            day.as_millis(),
        ))
        .expect("convert");
    assert_eq!(labels, vec!["attributed"]);
    log.close();
    let c = report(&state, "2026-11-24", day).rows[0].counters;
    assert_eq!((c.clicks, c.impressions, c.purchases), (1, 1, 1));
    let _ = std::fs::remove_dir_all(&state);
}

/// Bid counts live in memory until their once-a-second write: one that
/// fails (a full disk, a day's file that will not open) keeps them for the
/// next. They were dropped, and a report then showed more wins than bids.
#[test]
fn bid_counts_whose_write_fails_are_written_with_the_next_ones() {
    let state = tempdir("unwritten-counts");
    let day = at("2026-11-24T10:00:00Z");
    let rt = runtime();
    let log = EventLog::open(&state, day, Options::default()).expect("open");
    let blocked = state.join("events/2026-11-24.events");
    // The day's file cannot be opened: a directory stands in its place.
    std::fs::create_dir_all(&blocked).unwrap();
    log.bid(day.as_millis(), ad("li"));
    log.bid(day.as_millis() + 1, ad("li"));
    log.no_bid(day.as_millis(), "ex".into(), "budget");
    rt.block_on(log.flush());
    assert!(
        log.stats
            .write_errors
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
    std::fs::remove_dir_all(&blocked).unwrap();
    log.bid(day.as_millis() + 2, ad("li"));
    rt.block_on(log.flush());
    log.close();
    let r = report(&state, "2026-11-24", day);
    let li = r.rows.iter().find(|row| row.key.iter().any(|k| k == "li"));
    assert_eq!(li.map(|row| row.counters.bids), Some(3), "{:?}", r.rows);
    let no_bids: Vec<(&str, u64)> = r
        .no_bids
        .iter()
        .map(|n| (n.reason.as_str(), n.count))
        .collect();
    assert_eq!(no_bids, [("budget", 1)]);
    let _ = std::fs::remove_dir_all(&state);
}

/// Impressions and clicks too: a disk that fails for a few seconds
/// delays them; they were dropped, and a click answered meanwhile was
/// gone from every report.
#[test]
fn tracked_events_whose_write_fails_are_written_with_the_next_ones() {
    let state = tempdir("unwritten-tracks");
    let day = at("2026-11-24T10:00:00Z");
    let rt = runtime();
    let log = EventLog::open(&state, day, Options::default()).expect("open");
    log.set_catalog(catalog());
    rt.block_on(log.flush());
    let blocked = state.join("events/2026-11-24.events");
    std::fs::create_dir_all(&blocked).unwrap();
    log.track(day.as_millis(), ad("li"), 7, false, 1);
    log.track(day.as_millis() + 5, ad("li"), 7, true, 1);
    rt.block_on(log.flush());
    rt.block_on(log.flush());
    std::fs::remove_dir_all(&blocked).unwrap();
    log.track(day.as_millis() + 9, ad("li"), 8, false, 2);
    rt.block_on(log.flush());
    assert_eq!(
        log.stats.dropped.load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    log.close();
    let c = report(&state, "2026-11-24", day).rows[0].counters;
    assert_eq!((c.impressions, c.clicks), (2, 1));
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn a_purchase_whose_day_cannot_be_written_is_refused_and_counted_on_retry() {
    let state = tempdir("unwritable");
    let day = at("2026-11-24T10:00:00Z");
    let rt = runtime();
    let log = EventLog::open(&state, day, Options::default()).expect("open");
    log.set_catalog(catalog());
    log.track(day.as_millis() - 2 * DAY, ad("li"), 7, true, 1);
    rt.block_on(log.flush());
    // The 23rd's file cannot be opened (a directory stands in its place);
    // the 24th's can.
    let blocked = state.join("events/2026-11-23.events");
    std::fs::create_dir_all(&blocked).unwrap();
    let both = vec![
        buy(7, day.as_millis() - DAY, "D1"),
        buy(7, day.as_millis(), "D2"),
    ];
    assert!(rt
        .block_on(log.convert(both.clone(), day.as_millis()))
        .is_err());
    std::fs::remove_dir_all(&blocked).unwrap();
    // The retry counts the lost one, and the written one only once.
    let labels = rt
        .block_on(log.convert(both, day.as_millis()))
        .expect("convert");
    assert_eq!(labels, vec!["attributed", "duplicate"]);
    log.close();
    for d in ["2026-11-23", "2026-11-24"] {
        assert_eq!(report(&state, d, day).rows[0].counters.purchases, 1, "{d}");
    }
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn history_past_its_retention_goes() {
    let state = tempdir("prune");
    let now = at("2026-11-24T10:00:00Z");
    let rt = runtime();
    let log = EventLog::open(&state, now, Options::default()).expect("open");
    log.track(
        at("2026-01-01T10:00:00Z").as_millis(),
        ad("li"),
        7,
        false,
        1,
    );
    log.track(now.as_millis(), ad("li"), 7, false, 2);
    rt.block_on(log.flush());
    log.close();
    let charge = |day: &str, bid: u64| charge_of(bid, Date::parse(day).unwrap(), 0);
    for (g, name, day) in [
        (1, "charges.1.journal", "2026-01-01"),
        (2, "charges.2.journal", "2026-11-20"),
        (3, "charges.journal", "2026-11-24"),
    ] {
        let text = format!(
            "bidder-journal 1 {g}\n{}",
            ledger::journal::record_line(&charge(day, g))
        );
        std::fs::write(state.join(name), text).unwrap();
    }
    let pruned = reports::query::prune(&state, now, 30).expect("prune");
    assert_eq!((pruned.event_days, pruned.generations), (1, 1));
    assert!(!state.join("events/2026-01-01.events").exists());
    assert!(state.join("events/2026-11-24.events").exists());
    assert!(!state.join("charges.1.journal").exists());
    assert!(state.join("charges.2.journal").exists() && state.join("charges.journal").exists());
    let _ = std::fs::remove_dir_all(&state);
}

/// A closed generation with lines prune cannot read (another version's
/// format, damage) is dated by its last write where that is later than
/// the records it can read: those lines may be newer. Readable old
/// generations go, and so does an unreadable one last written long ago.
#[test]
fn a_generation_of_unreadable_records_is_dated_by_its_last_write() {
    let state = tempdir("prune-unknown-age");
    let now = at("2026-11-24T10:00:00Z");
    let charge = |day: &str, bid: u64| charge_of(bid, Date::parse(day).unwrap(), 0);
    let record = |day: &str, bid: u64| ledger::journal::record_line(&charge(day, bid));
    let unreadable = record("2026-11-24", 1).replacen('C', "C2", 1);
    let old = record("2026-01-01", 2);
    let files = [
        // Only unreadable lines, written today: kept.
        (
            "charges.1.journal",
            unreadable.clone(),
            "2026-11-24T09:00:00Z",
        ),
        // An old readable record and a newer unreadable one: kept.
        (
            "charges.2.journal",
            format!("{old}{unreadable}"),
            "2026-11-24T09:00:00Z",
        ),
        // Only unreadable lines, written long ago: pruned.
        (
            "charges.3.journal",
            unreadable.clone(),
            "2026-01-01T09:00:00Z",
        ),
        // Readable and old: pruned (whatever its last write).
        ("charges.4.journal", old.clone(), "2026-11-24T09:00:00Z"),
    ];
    for (g, (name, records, written)) in files.iter().enumerate() {
        let path = state.join(name);
        std::fs::write(&path, format!("bidder-journal 1 {}\n{records}", g + 1)).unwrap();
        let written = std::time::UNIX_EPOCH
            + std::time::Duration::from_millis(at(written).as_millis() as u64);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(written)
            .unwrap();
    }
    std::fs::write(state.join("charges.journal"), "bidder-journal 1 5\n").unwrap();
    let pruned = reports::query::prune(&state, now, 30).expect("prune");
    assert_eq!(pruned.generations, 2, "{pruned:?}");
    for (name, kept) in [
        ("charges.1.journal", true),
        ("charges.2.journal", true),
        ("charges.3.journal", false),
        ("charges.4.journal", false),
    ] {
        assert_eq!(state.join(name).exists(), kept, "{name}");
    }
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn an_aggregate_of_bytes_since_cut_back_is_not_trusted() {
    let state = tempdir("cutback");
    let day = at("2026-11-24T10:00:00Z");
    let rt = runtime();
    let log = EventLog::open(&state, day, Options::default()).expect("open");
    for i in 0..5u64 {
        log.track(
            day.as_millis() + i as i64,
            ad("li"),
            10 + i,
            false,
            u128::from(i),
        );
    }
    rt.block_on(log.flush());
    log.close();
    assert_eq!(
        report(&state, "2026-11-24", day).rows[0]
            .counters
            .impressions,
        5
    );
    // The last two lines go (a write that failed after the report read
    // it, cut back), then the file grows past where the aggregate ended.
    let file = state.join("events/2026-11-24.events");
    let text = std::fs::read_to_string(&file).unwrap();
    let keep: Vec<&str> = text.lines().collect();
    std::fs::write(&file, format!("{}\n", keep[..keep.len() - 2].join("\n"))).unwrap();
    let log = EventLog::open(&state, day, Options::default()).expect("open");
    for i in 0..3u64 {
        log.track(
            day.as_millis() + 100 + i as i64,
            ad("li"),
            20 + i,
            true,
            u128::from(100 + i),
        );
    }
    rt.block_on(log.flush());
    log.close();
    let c = report(&state, "2026-11-24", day).rows[0].counters;
    assert_eq!((c.impressions, c.clicks), (3, 3), "what the file holds now");
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn reports_cut_by_audience_and_older_aggregates_are_rebuilt() {
    let state = tempdir("audience");
    let day = at("2026-11-24T10:00:00Z");
    let rt = runtime();
    let log = EventLog::open(&state, day, Options::default()).expect("open");
    log.set_catalog(catalog());
    let pages = Dims {
        audience: "products:tent-pages".into(),
        ..ad("li")
    };
    log.track(day.as_millis(), pages.clone(), 7, true, 1);
    log.track(day.as_millis() + 1, pages, 7, false, 2);
    // A line item without audiences: its events carry none.
    log.track(day.as_millis() + 2, ad("li"), 8, false, 3);
    rt.block_on(log.flush());
    // The purchase goes to user 7's click: that touch's audience.
    let labels = rt
        .block_on(log.convert(
            vec![buy(7, day.as_millis() + 60_000, "A1")],
            day.as_millis(),
        ))
        .expect("convert");
    assert_eq!(labels, vec!["attributed"]);
    log.close();
    // Charges of a closed generation (folded like a closed day), one with
    // the audience and one without.
    let charge = |bid: u64, billed: i64, audience: &str| ledger::Charge {
        bid: ledger::BidKey(bid),
        day: Date::parse("2026-11-24").unwrap(),
        billed: Micros(billed),
        over_delivery: Micros::ZERO,
        forget: Timestamp(0),
        keys: [
            ledger::SpendKey::line_item("li"),
            ledger::SpendKey::order("o1"),
        ],
        kind: None,
        late: false,
        prior: ledger::Prior::None,
        tags: ledger::Tags {
            advertiser: "shop".into(),
            creative: "c1".into(),
            exchange: "x".into(),
            audience: audience.into(),
            at_ms: day.as_millis(),
            ..ledger::Tags::default()
        },
    };
    let journal = format!(
        "bidder-journal 1 1\n{}{}",
        ledger::journal::record_line(&charge(1, 2_500, "products:tent-pages")),
        ledger::journal::record_line(&charge(2, 3_000, "")),
    );
    std::fs::write(state.join("charges.1.journal"), journal).unwrap();
    std::fs::write(state.join("charges.journal"), "bidder-journal 1 2\n").unwrap();

    let next = Timestamp(day.as_millis() + DAY);
    let d = Date::parse("2026-11-24").unwrap();
    let by_audience = || {
        let q = Query {
            from: d,
            to: d,
            by: vec![Dim::Audience],
        };
        let src = Sources {
            state: &state,
            config: None,
            now: next,
            progress: false,
        };
        run(&q, &src).expect("report")
    };
    let first = by_audience();
    let keys: Vec<&str> = first.rows.iter().map(|r| r.key[0].as_str()).collect();
    assert_eq!(keys, ["", "products:tent-pages"]);
    let (none, pages) = (first.rows[0].counters, first.rows[1].counters);
    assert_eq!(
        (none.impressions, none.clicks, none.wins, none.spend),
        (1, 0, 1, Micros(3_000))
    );
    assert_eq!(
        (
            pages.impressions,
            pages.clicks,
            pages.purchases,
            pages.wins,
            pages.spend
        ),
        (1, 1, 1, 1, Micros(2_500))
    );
    assert_eq!(first.total.spend, Micros(5_500), "every charge, once");
    assert_eq!(by_audience().raw_records, 0, "folded");

    // Aggregates of the previous version (hourly spend by line item alone)
    // are not read: rebuilt from their sources, to the same figures.
    let aggs = [
        state.join("events/2026-11-24.agg"),
        state.join("events/charges.1.agg"),
    ];
    for agg in &aggs {
        let bytes = std::fs::read(agg).unwrap();
        let old = [b"bidder-agg 5\n", &bytes[b"bidder-agg 6\n".len()..]].concat();
        assert!(bytes.starts_with(b"bidder-agg 6\n"));
        std::fs::write(agg, old).unwrap();
    }
    let again = by_audience();
    assert_eq!(again.rows, first.rows);
    assert_eq!(
        again.raw_records,
        4 + 2,
        "four events and two charges read raw"
    );
    for agg in &aggs {
        assert!(std::fs::read(agg).unwrap().starts_with(b"bidder-agg 6\n"));
    }
    let _ = std::fs::remove_dir_all(&state);
}

/// Audience ids are each advertiser's own: cut by audience alone, two
/// advertisers' `products:pages` are two rows, each naming its advertiser;
/// an id only one advertiser uses reads as it is (account-manager probe:
/// they were summed into one row).
#[test]
fn an_audience_id_two_advertisers_use_is_two_rows() {
    let state = tempdir("shared-audience");
    let day = at("2026-11-24T10:00:00Z");
    let rt = runtime();
    let log = EventLog::open(&state, day, Options::default()).expect("open");
    let of = |adv: &str, li: &str, audience: &str| Dims {
        advertiser: adv.into(),
        audience: audience.into(),
        ..ad(li)
    };
    // Line items without audiences, of both, are one row (review).
    for (n, (adv, li, audience, user)) in [
        ("shop", "li", "products:pages", 7),
        ("shop", "li", "products:pages", 8),
        ("other", "li2", "products:pages", 9),
        ("other", "li2", "views:own", 9),
        ("shop", "li3", "", 7),
        ("other", "li4", "", 9),
    ]
    .into_iter()
    .enumerate()
    {
        let bid = n as u128 + 1;
        log.track(
            day.as_millis() + n as i64,
            of(adv, li, audience),
            user,
            false,
            bid,
        );
    }
    rt.block_on(log.flush());
    log.close();
    let d = Date::parse("2026-11-24").unwrap();
    let cut = |by: Vec<Dim>| {
        let q = Query { from: d, to: d, by };
        let src = Sources {
            state: &state,
            config: None,
            now: Timestamp(day.as_millis() + DAY),
            progress: false,
        };
        run(&q, &src).expect("report")
    };
    let rows: Vec<(String, u64)> = cut(vec![Dim::Audience])
        .rows
        .iter()
        .map(|r| (r.key[0].clone(), r.counters.impressions))
        .collect();
    assert_eq!(
        rows,
        [
            (String::new(), 2),
            ("products:pages (other)".to_string(), 1),
            ("products:pages (shop)".to_string(), 2),
            ("views:own".to_string(), 1),
        ]
    );
    // With the advertiser as a column, the audience reads as it is.
    let rows: Vec<Vec<String>> = cut(vec![Dim::Advertiser, Dim::Audience])
        .rows
        .iter()
        .map(|r| r.key.clone())
        .collect();
    assert_eq!(
        rows,
        [
            ["other", ""],
            ["other", "products:pages"],
            ["other", "views:own"],
            ["shop", ""],
            ["shop", "products:pages"]
        ]
    );
    let _ = std::fs::remove_dir_all(&state);
}

/// A charge of 1,000 micros to line item `li` of order `o1`, made at
/// `at_ms`.
fn charge_of(bid: u64, day: Date, at_ms: i64) -> ledger::Charge {
    ledger::Charge {
        bid: ledger::BidKey(bid),
        day,
        billed: Micros(1_000),
        over_delivery: Micros::ZERO,
        forget: Timestamp(0),
        keys: [
            ledger::SpendKey::line_item("li"),
            ledger::SpendKey::order("o1"),
        ],
        kind: None,
        late: false,
        prior: ledger::Prior::None,
        tags: ledger::Tags {
            at_ms,
            ..ledger::Tags::default()
        },
    }
}

/// A replica's files: one impression of `user` and one charge of 1,000
/// micros for bid `bid`.
fn replica_files(state: &Path, day: Timestamp, user: u64, bid: u64) {
    let rt = runtime();
    let log = EventLog::open(state, day, Options::default()).expect("open");
    log.track(day.as_millis(), ad("li"), user, false, u128::from(bid));
    rt.block_on(log.flush());
    log.close();
    let charge = charge_of(bid, day.date(), day.as_millis());
    let text = format!(
        "bidder-journal 1 4\n{}",
        ledger::journal::record_line(&charge)
    );
    std::fs::write(state.join("charges.journal"), text).unwrap();
}

#[test]
fn copies_of_other_replicas_files_count_once_each_in_reports_and_attribution() {
    let a = tempdir("replica-a");
    let b = tempdir("replica-b");
    let day = at("2026-11-24T10:00:00Z");
    replica_files(&a, day, 7, 70);
    replica_files(&b, day, 9, 90);
    // `b` keeps a copy of `a`'s files as the mirror makes it: the same
    // bytes, compacted or live generations named by their number.
    let copy = b.join("peers").join("a");
    std::fs::create_dir_all(copy.join("events")).unwrap();
    std::fs::copy(
        a.join("events/2026-11-24.events"),
        copy.join("events/2026-11-24.events"),
    )
    .unwrap();
    std::fs::copy(a.join("charges.journal"), copy.join("charges.4.journal")).unwrap();

    let r = report(&b, "2026-11-24", day);
    assert_eq!(
        (r.total.impressions, r.total.wins, r.total.spend),
        (2, 2, Micros(2_000)),
        "{r:?}"
    );
    // Asked again (aggregates now cached): the same.
    let again = report(&b, "2026-11-24", day);
    assert_eq!(again.total, r.total);
    // `a` alone sees only its own.
    assert_eq!(report(&a, "2026-11-24", day).total.impressions, 1);

    // Attribution on `b` knows `a`'s touches: read back at start...
    let rt = runtime();
    let log = EventLog::open(&b, day, Options::default()).expect("open");
    log.set_catalog(catalog());
    let labels = rt
        .block_on(log.convert(
            vec![buy(7, day.as_millis() + 60_000, "A7")],
            day.as_millis(),
        ))
        .expect("convert");
    assert_eq!(labels, vec!["attributed"]);
    // ...and as the mirror hands them over: a touch, then a purchase `a`
    // attributed (counted there, a duplicate here), then an impression
    // `a` counted (not counted again here).
    let line = |kind: &str, user: u64, order: &str, bid: &str| {
        let mut out = String::new();
        let r = reports::record::Record {
            kind: match kind {
                "i" => reports::record::Kind::Impression,
                _ => reports::record::Kind::Purchase,
            },
            at_ms: day.as_millis() + 1_000,
            // An attributed purchase names its product.
            dims: if kind == "i" {
                ad("li")
            } else {
                Dims {
                    product: "tent".into(),
                    ..ad("li")
                }
            },
            user,
            n: 1,
            amount: Micros(if kind == "i" { 0 } else { 10_000_000 }),
            order_id: if kind == "i" {
                bid.into()
            } else {
                order.into()
            },
            features: None,
        };
        r.write(&mut out);
        out
    };
    let from_a = format!(
        "{}{}{}",
        line("i", 11, "", &format!("{:x}", 110u128)),
        line("i", 12, "", &format!("{:x}", 120u128)),
        line("p", 12, "A12", "")
    );
    log.peer_lines(from_a.as_bytes());
    let labels = rt
        .block_on(log.convert(
            vec![
                buy(11, day.as_millis() + 60_000, "A11"),
                buy(12, day.as_millis() + 60_000, "A12"),
            ],
            day.as_millis() + 60_000,
        ))
        .expect("convert");
    assert_eq!(labels, vec!["attributed", "duplicate"]);
    log.track(day.as_millis() + 2_000, ad("li"), 11, false, 110);
    rt.block_on(log.flush());
    assert_eq!(
        log.stats
            .track_duplicates
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    log.close();

    // Copies go by the same retention as the replica's own files.
    let later = at("2027-06-01T00:00:00Z");
    let pruned = reports::query::prune(&b, later, 30).expect("prune");
    assert!(pruned.event_days >= 2, "{pruned:?}");
    assert!(!copy.join("events/2026-11-24.events").exists());
    // `a`'s live generation stays, as `a` keeps it (pruned, it would be
    // asked for and sent again every hour).
    assert!(copy.join("charges.4.journal").exists());
    let _ = std::fs::remove_dir_all(&a);
    let _ = std::fs::remove_dir_all(&b);
}

/// The copy of another replica's live journal generation (its newest: a
/// copy has no `charges.journal`) is taken as open, as its replica takes
/// it: prune keeps it even when it holds no charge yet (just after a
/// compaction) or only old ones (a replica idle for a while); else the
/// mirror would ask for it, and get it, again every hour.
#[test]
fn prune_keeps_the_copy_of_a_peers_live_generation() {
    let b = tempdir("prune-peer-live");
    let copy = b.join("peers").join("a");
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::write(copy.join("charges.4.journal"), "bidder-journal 1 4\n").unwrap();
    std::fs::write(copy.join("charges.5.journal"), "bidder-journal 1 5\n").unwrap();
    let pruned = reports::query::prune(&b, at("2026-11-24T10:00:00Z"), 91).expect("prune");
    assert!(
        copy.join("charges.5.journal").exists(),
        "the copy of a's live generation was pruned: {pruned:?}"
    );
    let _ = std::fs::remove_dir_all(&b);
}

/// An impression another replica counted is remembered for the tracking
/// URLs' whole lifetime, so the same URL sent here is not counted again,
/// even when it comes just before the remembered keys turn over.
#[test]
fn an_impression_counted_elsewhere_is_remembered_for_the_urls_lifetime() {
    let state = tempdir("elsewhere-ttl");
    let day = at("2026-11-24T10:00:00Z");
    let rt = runtime();
    let ttl = std::time::Duration::from_millis(1_000);
    let opened = std::time::Instant::now();
    let log = EventLog::open(
        &state,
        day,
        Options {
            track_ttl: ttl,
            flush_every: std::time::Duration::from_millis(10),
            ..Options::default()
        },
    )
    .expect("open");
    log.set_catalog(catalog());
    rt.block_on(log.flush());
    let sleep_until = |ms: u64| {
        let until = opened + std::time::Duration::from_millis(ms);
        if let Some(d) = until.checked_duration_since(std::time::Instant::now()) {
            std::thread::sleep(d);
        }
    };
    // Another replica's impression of bid 0x77, copied here at 0.35 s.
    sleep_until(350);
    let mut line = String::new();
    reports::record::Record {
        kind: reports::record::Kind::Impression,
        at_ms: day.as_millis(),
        dims: ad("li"),
        user: 5,
        n: 1,
        amount: Micros::ZERO,
        order_id: format!("{:032x}", 0x77u128).into(),
        features: None,
    }
    .write(&mut line);
    log.peer_lines(line.as_bytes());
    rt.block_on(log.flush());
    // Its URL replayed here 0.8 s later: within its 1 s lifetime.
    sleep_until(1_150);
    log.track(day.as_millis() + 1_000, ad("li"), 5, false, 0x77);
    rt.block_on(log.flush());
    let dups = log
        .stats
        .track_duplicates
        .load(std::sync::atomic::Ordering::Relaxed);
    log.close();
    let _ = std::fs::remove_dir_all(&state);
    assert_eq!(dups, 1, "counted again within the URL's lifetime");
}

#[test]
fn the_writer_says_how_far_each_day_is_durable() {
    let state = tempdir("synced");
    let day = at("2026-11-24T10:00:00Z");
    let synced = ledger::synced::Synced::default();
    let rt = runtime();
    let log = EventLog::open(
        &state,
        day,
        Options {
            synced: Some(synced.clone()),
            ..Options::default()
        },
    )
    .expect("open");
    log.track(day.as_millis(), ad("li"), 7, false, 1);
    rt.block_on(log.flush());
    let path = state.join("events/2026-11-24.events");
    assert_eq!(
        synced.get("events/2026-11-24.events"),
        Some(std::fs::metadata(&path).unwrap().len())
    );
    log.close();
    let _ = std::fs::remove_dir_all(&state);
}

/// Bids over a report's rows.
fn bids(r: &reports::Report) -> u64 {
    r.rows.iter().map(|row| row.counters.bids).sum()
}

/// Bids and no-bids are counted where they happen, each thread in a tally
/// of its own: whatever threads counted before a flush is written by it,
/// every count once, and a close writes what came after.
#[test]
fn counts_from_many_threads_are_written_once_each() {
    let state = tempdir("tallies");
    let day = at("2026-11-24T10:00:00Z");
    let rt = runtime();
    let log = std::sync::Arc::new(EventLog::open(&state, day, Options::default()).expect("open"));
    let exchange: std::sync::Arc<str> = "x".into();
    let threads: Vec<_> = (0..20)
        .map(|t| {
            let (log, exchange) = (log.clone(), exchange.clone());
            std::thread::spawn(move || {
                for i in 0..500 {
                    let li = if (t + i) % 3 == 0 { "li" } else { "li-2" };
                    log.bid(day.as_millis() + i, ad(li));
                    if i % 5 == 0 {
                        log.no_bid(day.as_millis() + i, exchange.clone(), "budget");
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    rt.block_on(log.flush());
    let r = report(&state, "2026-11-24", day);
    assert_eq!(bids(&r), 20 * 500, "{:?}", r.rows);
    let no_bids: u64 = r.no_bids.iter().map(|n| n.count).sum();
    assert_eq!(no_bids, 20 * 100, "{:?}", r.no_bids);
    // After the flush, then a close.
    log.bid(day.as_millis() + 1_000, ad("li"));
    std::sync::Arc::into_inner(log).expect("one owner").close();
    let r = report(&state, "2026-11-24", day);
    assert_eq!(bids(&r), 20 * 500 + 1, "{:?}", r.rows);
    let _ = std::fs::remove_dir_all(&state);
}

/// Flushes while threads are still counting: no count is lost or written
/// twice, whichever fold it lands before.
#[test]
fn flushes_racing_the_counting_threads_lose_and_repeat_nothing() {
    let state = tempdir("tally-race");
    let day = at("2026-11-24T10:00:00Z");
    let rt = runtime();
    let log = std::sync::Arc::new(EventLog::open(&state, day, Options::default()).expect("open"));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0..20_000 {
                    log.bid(day.as_millis() + i % 1_000, ad("li"));
                }
            })
        })
        .collect();
    while !threads.iter().all(|t| t.is_finished()) {
        rt.block_on(log.flush());
    }
    for t in threads {
        t.join().unwrap();
    }
    std::sync::Arc::into_inner(log).expect("one owner").close();
    let r = report(&state, "2026-11-24", day);
    assert_eq!(bids(&r), 4 * 20_000, "{:?}", r.rows);
    let _ = std::fs::remove_dir_all(&state);
}

/// The event journal holds keyed user hashes, bids and features: made by
/// the bidder, its directory and day files are this user's alone (they
/// were 0755 and 0644, readable by anyone on the machine; attacker probe).
#[test]
fn the_event_journal_is_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let state = tempdir("private");
    let day = at("2026-11-24T10:00:00Z");
    let rt = runtime();
    let log = EventLog::open(&state, day, Options::default()).expect("open");
    log.track(day.as_millis(), ad("li"), 7, false, 1);
    rt.block_on(log.flush());
    log.close();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state.join("events")), 0o700);
    assert_eq!(mode(&state.join("events/2026-11-24.events")), 0o600);
    let _ = std::fs::remove_dir_all(&state);
}

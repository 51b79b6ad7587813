//! The per-request series (requests, no-bids and bids by exchange, request
//! durations, shading decisions, tracking events), counted apart from the
//! exporter's registry.
//!
//! Every bid request counts three or four of these. Through the exporter,
//! each count was two atomic additions on lines every worker thread writes
//! (the value and its generation), and a duration was a sample pushed onto
//! a shared list that a blocking task folded into buckets every second:
//! under load, about 1.5% of a server's CPU on two cores, most of it
//! waiting for those lines to come back from the other core, and more with
//! each core added. Here a thread adds to a stripe of its own (its own
//! cache lines) and a scrape sums the stripes; a duration is one bucket's
//! addition, so memory is fixed whatever the traffic and nothing needs
//! folding. The page reads as the exporter's did: the same names, labels,
//! buckets and help.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::nobid::NoBid;

/// Stripes per series: past this many threads, threads share stripes
/// (still exact, only contended again).
const STRIPES: usize = 16;

thread_local! {
    /// This thread's stripe, handed out in turn as threads first count.
    static STRIPE: usize = {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        NEXT.fetch_add(1, Relaxed) % STRIPES
    };
}

fn stripe() -> usize {
    // A thread counting while it exits (its thread-locals gone) shares
    // stripe 0 rather than panic.
    STRIPE.try_with(|s| *s).unwrap_or(0)
}

/// `N` counters, one row of them per stripe; a row starts on a cache line
/// pair of its own (the size prefetchers fetch together), so two threads
/// never write the same line.
pub(crate) struct Cells<const N: usize> {
    rows: Box<[Row<N>]>,
}

#[repr(align(128))]
struct Row<const N: usize>([AtomicU64; N]);

impl<const N: usize> Cells<N> {
    fn new() -> Cells<N> {
        Cells {
            rows: (0..STRIPES)
                .map(|_| Row(std::array::from_fn(|_| AtomicU64::new(0))))
                .collect(),
        }
    }

    /// Adds `n` to counter `i` (nothing for an `i` past `N`: a count is
    /// never worth a panic on the bid path).
    #[inline]
    pub(crate) fn add(&self, i: usize, n: u64) {
        if let Some(c) = self.rows.get(stripe()).and_then(|r| r.0.get(i)) {
            c.fetch_add(n, Relaxed);
        }
    }

    /// Counter `i`, summed over the stripes.
    pub(crate) fn get(&self, i: usize) -> u64 {
        self.rows
            .iter()
            .filter_map(|r| r.0.get(i))
            .fold(0u64, |sum, c| sum.wrapping_add(c.load(Relaxed)))
    }
}

/// `bidder_requests_total` by outcome, in [`crate::metrics::Outcome`]'s
/// order.
pub(crate) const OUTCOMES: [&str; 4] = ["bid", "no_bid", "bad_request", "too_large"];
/// `bidder_notice_price_decrypt_failures_total` by reason.
pub(crate) const DECRYPT: [&str; 4] = ["encoding", "integrity", "range", "stale"];

/// Where one exchange's counters sit in its row. The no-bid reasons last:
/// an index past them is past the row, which `Cells::add` ignores, and
/// never another series' counter.
pub(crate) const REQUESTS: usize = 0;
pub(crate) const BIDS: usize = REQUESTS + OUTCOMES.len();
pub(crate) const DECRYPT_FAILURES: usize = BIDS + 1;
pub(crate) const UNREADABLE: usize = DECRYPT_FAILURES + DECRYPT.len();
pub(crate) const NO_BIDS: usize = UNREADABLE + 1;
pub(crate) const EXCHANGE_CELLS: usize = NO_BIDS + NoBid::ALL.len();

/// One exchange's counters.
pub(crate) type ExchangeCells = Cells<EXCHANGE_CELLS>;

/// Buckets of a duration histogram (`+Inf` aside).
const BUCKETS: usize = 13;

/// Upper bounds of duration buckets, in seconds as the page writes them
/// and in nanoseconds: the one ladder both histograms take a window of.
const LADDER: [(&str, u64); BUCKETS + 2] = [
    ("0.0001", 100_000),
    ("0.00025", 250_000),
    ("0.0005", 500_000),
    ("0.001", 1_000_000),
    ("0.0025", 2_500_000),
    ("0.005", 5_000_000),
    ("0.01", 10_000_000),
    ("0.025", 25_000_000),
    ("0.05", 50_000_000),
    ("0.1", 100_000_000),
    ("0.25", 250_000_000),
    ("0.5", 500_000_000),
    ("1", 1_000_000_000),
    ("2.5", 2_500_000_000),
    ("5", 5_000_000_000),
];

/// [`BUCKETS`] bounds of [`LADDER`] from `from` on.
const fn window(from: usize) -> [(&'static str, u64); BUCKETS] {
    let mut out = [("", 0); BUCKETS];
    let mut i = 0;
    while i < BUCKETS {
        out[i] = LADDER[from + i];
        i += 1;
    }
    out
}

/// The bid request duration buckets: up to a second, tmax's cap (they
/// ended at 0.1 s, under the default tmax of 200 ms; operators probe).
const BOUNDS: [(&str, u64); BUCKETS] = window(0);
/// The notice duration buckets: a notice waits for the journal's fsync
/// (or Redis), milliseconds on a healthy disk, seconds on a sick one.
const NOTICE_BOUNDS: [(&str, u64); BUCKETS] = window(2);
const _: () = assert!(
    BOUNDS[0].1 == 100_000
        && BOUNDS[BUCKETS - 1].1 == 1_000_000_000
        && NOTICE_BOUNDS[0].1 == 500_000
        && NOTICE_BOUNDS[BUCKETS - 1].1 == 5_000_000_000
);
/// A bucket per bound (the requests above the bound before it), one past
/// them all, and the sum in nanoseconds. The count is the buckets' sum.
const OVER: usize = BUCKETS;
const SUM: usize = OVER + 1;
const DURATION_CELLS: usize = SUM + 1;

/// Every series this module keeps.
struct Hot {
    /// By exchange id, in the order first seen: one entry per exchange a
    /// config ever named (as the exporter kept every series it saw), so a
    /// reload keeps the counts.
    exchanges: Mutex<Vec<(String, Arc<ExchangeCells>)>>,
    duration: Cells<DURATION_CELLS>,
    /// Win, billing and loss notices, from their headers to their answer.
    notice_duration: Cells<DURATION_CELLS>,
    shading: Cells<{ shading::Reason::ALL.len() }>,
    tracking: Cells<{ crate::track::Event::ALL.len() }>,
    /// Bid requests by their privacy restriction, in
    /// `privacy::Restriction::ALL`'s order: most requests may have one
    /// (GDPR traffic without a vendor id, iOS without ATT), so not through
    /// the exporter's keyed lookup.
    privacy: Cells<{ crate::privacy::Restriction::ALL.len() }>,
}

fn hot() -> &'static Hot {
    static HOT: OnceLock<Hot> = OnceLock::new();
    HOT.get_or_init(|| Hot {
        exchanges: Mutex::new(Vec::new()),
        duration: Cells::new(),
        notice_duration: Cells::new(),
        shading: Cells::new(),
        tracking: Cells::new(),
        privacy: Cells::new(),
    })
}

/// Exchange `id`'s counters: the same ones each time it is asked for.
pub(crate) fn exchange(id: &str) -> Arc<ExchangeCells> {
    let mut all = hot()
        .exchanges
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, cells)) = all.iter().find(|(x, _)| x == id) {
        return cells.clone();
    }
    let cells = Arc::new(Cells::new());
    all.push((id.to_owned(), cells.clone()));
    cells
}

pub(crate) fn duration(elapsed: Duration) {
    observe(&hot().duration, &BOUNDS, elapsed);
}

pub(crate) fn notice_duration(elapsed: Duration) {
    observe(&hot().notice_duration, &NOTICE_BOUNDS, elapsed);
}

fn observe(d: &Cells<DURATION_CELLS>, bounds: &[(&str, u64); BUCKETS], elapsed: Duration) {
    let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
    let bucket = bounds
        .iter()
        .position(|&(_, bound)| nanos <= bound)
        .unwrap_or(OVER);
    d.add(bucket, 1);
    d.add(SUM, nanos);
}

pub(crate) fn shading(reason: shading::Reason) {
    hot().shading.add(reason as usize, 1);
}

pub(crate) fn tracking(event: crate::track::Event) {
    hot().tracking.add(event as usize, 1);
}

pub(crate) fn privacy_restricted(r: crate::privacy::Restriction) {
    hot().privacy.add(r as usize, 1);
}

/// Appends this module's series to a Prometheus text page.
pub(crate) fn render(out: &mut String) {
    let h = hot();
    let exchanges: Vec<(String, Arc<ExchangeCells>)> = h
        .exchanges
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let each = |out: &mut String, name: &str, help: &str, series: &dyn Fn(&mut String)| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} counter");
        series(out);
        out.push('\n');
    };
    each(
        out,
        "bidder_requests_total",
        "Bid requests by outcome.",
        &|out| {
            for (x, c) in &exchanges {
                for (i, o) in OUTCOMES.iter().enumerate() {
                    let n = c.get(REQUESTS + i);
                    series(
                        out,
                        "bidder_requests_total",
                        &[("exchange", x), ("outcome", o)],
                        n,
                    );
                }
            }
        },
    );
    each(
        out,
        "bidder_no_bids_total",
        "No-bid answers by reason.",
        &|out| {
            for (x, c) in &exchanges {
                for (i, r) in NoBid::ALL.iter().enumerate() {
                    let n = c.get(NO_BIDS + i);
                    let labels = [("exchange", x.as_str()), ("reason", r.as_str())];
                    series(out, "bidder_no_bids_total", &labels, n);
                }
            }
        },
    );
    each(
        out,
        "bidder_bids_total",
        "Bids sent (one per imp at most).",
        &|out| {
            for (x, c) in &exchanges {
                series(out, "bidder_bids_total", &[("exchange", x)], c.get(BIDS));
            }
        },
    );
    each(
        out,
        "bidder_notice_price_decrypt_failures_total",
        "Encrypted notice prices charged at the bid price: not the scheme's shape (encoding), a wrong key or changed price (integrity), past what a charge holds (range), or encrypted before the bid was made (stale: copied from another win).",
        &|out| {
            for (x, c) in &exchanges {
                for (i, r) in DECRYPT.iter().enumerate() {
                    let n = c.get(DECRYPT_FAILURES + i);
                    let labels = [("exchange", x.as_str()), ("reason", r)];
                    series(out, "bidder_notice_price_decrypt_failures_total", &labels, n);
                }
            }
        },
    );
    each(
        out,
        "bidder_notice_price_unreadable_total",
        "Win and billing notices whose price could not be read, charged at the bid price.",
        &|out| {
            for (x, c) in &exchanges {
                let n = c.get(UNREADABLE);
                series(
                    out,
                    "bidder_notice_price_unreadable_total",
                    &[("exchange", x)],
                    n,
                );
            }
        },
    );
    each(
        out,
        "bidder_bid_shading_total",
        "First-price bids by shading decision.",
        &|out| {
            for (i, r) in shading::Reason::ALL.iter().enumerate() {
                let n = h.shading.get(i);
                series(
                    out,
                    "bidder_bid_shading_total",
                    &[("reason", r.as_str())],
                    n,
                );
            }
        },
    );
    each(
        out,
        "bidder_tracking_events_total",
        "Impressions, clicks and VAST events counted by this process, once per bid and event. \
         An impression or click counted by the process before a restart and sent again is \
         counted here too, and in bidder_tracking_duplicates_after_restart_total; reports count \
         it once.",
        &|out| {
            for (i, e) in crate::track::Event::ALL.iter().enumerate() {
                let n = h.tracking.get(i);
                series(
                    out,
                    "bidder_tracking_events_total",
                    &[("event", e.as_str())],
                    n,
                );
            }
        },
    );
    each(
        out,
        "bidder_privacy_restricted_requests_total",
        "Bid requests whose privacy signals keep behavioural data out, by the first restriction found.",
        &|out| {
            for (i, r) in crate::privacy::Restriction::ALL.iter().enumerate() {
                let n = h.privacy.get(i);
                series(
                    out,
                    "bidder_privacy_restricted_requests_total",
                    &[("restriction", r.as_str())],
                    n,
                );
            }
        },
    );
    histogram(
        out,
        "bidder_request_duration_seconds",
        "Time from request headers to response, bid requests.",
        &BOUNDS,
        &h.duration,
    );
    histogram(
        out,
        "bidder_notice_duration_seconds",
        "Time from request headers to response, win, billing and loss notices (a charge waits \
         for the journal's fsync, or Redis).",
        &NOTICE_BOUNDS,
        &h.notice_duration,
    );
}

fn histogram(
    out: &mut String,
    name: &str,
    help: &str,
    bounds: &[(&str, u64); BUCKETS],
    cells: &Cells<DURATION_CELLS>,
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} histogram");
    // Each bucket counts every request at or under its bound: the sum of
    // the stripes' buckets so far. `+Inf` and the count are the same sum
    // over all of them, so the page agrees with itself even while
    // requests go on during the scrape.
    let mut below = 0u64;
    for (i, (le, _)) in bounds.iter().enumerate() {
        below = below.saturating_add(cells.get(i));
        let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {below}");
    }
    let count = below.saturating_add(cells.get(OVER));
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
    let sum = cells.get(SUM) as f64 / 1e9;
    let _ = writeln!(out, "{name}_sum {sum}");
    let _ = writeln!(out, "{name}_count {count}");
    out.push('\n');
}

/// One sample line: `name{k="v",...} n`, label values escaped as the text
/// format wants (exchange ids come from the config, and may hold anything).
fn series(out: &mut String, name: &str, labels: &[(&str, &str)], n: u64) {
    out.push_str(name);
    out.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        for ch in v.chars() {
            match ch {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    let _ = writeln!(out, "}} {n}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_many_threads_sum_exactly() {
        let cells = Arc::new(Cells::<3>::new());
        let threads: Vec<_> = (0..40)
            .map(|t| {
                let cells = cells.clone();
                std::thread::spawn(move || {
                    for _ in 0..1_000 {
                        cells.add(t % 3, 1);
                    }
                    // Past the last counter: ignored.
                    cells.add(3, 1);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // Threads 0, 3, ... 39 on counter 0: 14 of them.
        assert_eq!(
            [cells.get(0), cells.get(1), cells.get(2)],
            [14_000, 13_000, 13_000]
        );
        assert_eq!(cells.get(3), 0);
    }

    #[test]
    fn a_stripe_is_a_cache_line_pair_of_its_own() {
        assert_eq!(std::mem::align_of::<Row<1>>(), 128);
        assert_eq!(std::mem::size_of::<Row<EXCHANGE_CELLS>>() % 128, 0);
    }

    #[test]
    fn an_exchange_keeps_its_counters_when_asked_again() {
        let a = exchange("hot-test-exchange");
        a.add(BIDS, 2);
        let b = exchange("hot-test-exchange");
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(b.get(BIDS), 2);
        assert!(!Arc::ptr_eq(&a, &exchange("hot-test-other")));
    }

    /// Every counter of an exchange's row is one series of the page and no
    /// two share one: a no-bid reason's count never shows as another
    /// series' (as a reason left out of `NoBid::ALL` once would have).
    #[test]
    fn each_counter_of_a_row_is_a_series_of_its_own() {
        let x = exchange("hot-row-test");
        for i in 0..EXCHANGE_CELLS {
            x.add(i, 1);
        }
        let page = page();
        let lines: Vec<&str> = page
            .lines()
            .filter(|l| l.contains("exchange=\"hot-row-test\""))
            .collect();
        assert_eq!(lines.len(), EXCHANGE_CELLS, "{lines:#?}");
        for l in &lines {
            assert!(l.ends_with("} 1"), "{l}");
        }
        for r in NoBid::ALL {
            let series = format!(
                "bidder_no_bids_total{{exchange=\"hot-row-test\",reason=\"{}\"}} 1",
                r.as_str()
            );
            assert!(lines.contains(&series.as_str()), "{series}");
        }
    }

    /// The page a scrape reads: one family each, buckets cumulative, label
    /// values escaped.
    #[test]
    fn the_page_is_prometheus_text() {
        let x = exchange("hot \"page\"\\test\n");
        x.add(REQUESTS, 3);
        x.add(NO_BIDS + NoBid::Country as usize, 1);
        // The duration histogram is process-wide and other tests record
        // into it: this one looks at what its own durations add.
        let before = page();
        duration(Duration::from_micros(50));
        duration(Duration::from_micros(300));
        duration(Duration::from_millis(7));
        duration(Duration::from_secs(3));
        let page = page();
        let value = |page: &str, series: &str| -> f64 {
            page.lines()
                .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
                .unwrap_or_else(|| panic!("{series} in\n{page}"))
        };
        let d = "bidder_request_duration_seconds";
        let added = |series: &str| value(&page, series) - value(&before, series);
        assert_eq!(added(&format!("{d}_bucket{{le=\"0.0001\"}}")), 1.0);
        assert_eq!(added(&format!("{d}_bucket{{le=\"0.00025\"}}")), 1.0);
        assert_eq!(added(&format!("{d}_bucket{{le=\"0.0005\"}}")), 2.0);
        assert_eq!(added(&format!("{d}_bucket{{le=\"0.01\"}}")), 3.0);
        assert_eq!(added(&format!("{d}_bucket{{le=\"0.1\"}}")), 3.0);
        assert_eq!(added(&format!("{d}_bucket{{le=\"1\"}}")), 3.0);
        assert_eq!(added(&format!("{d}_bucket{{le=\"+Inf\"}}")), 4.0);
        assert_eq!(added(&format!("{d}_count")), 4.0);
        assert!((added(&format!("{d}_sum")) - 3.00735).abs() < 1e-9);
        // Notices, in buckets of their own up to seconds.
        let before = page;
        notice_duration(Duration::from_micros(800));
        notice_duration(Duration::from_millis(1800));
        notice_duration(Duration::from_secs(9));
        let page = self::page();
        let n = "bidder_notice_duration_seconds";
        let added = |series: &str| value(&page, series) - value(&before, series);
        assert_eq!(added(&format!("{n}_bucket{{le=\"0.001\"}}")), 1.0);
        assert_eq!(added(&format!("{n}_bucket{{le=\"1\"}}")), 1.0);
        assert_eq!(added(&format!("{n}_bucket{{le=\"2.5\"}}")), 2.0);
        assert_eq!(added(&format!("{n}_bucket{{le=\"5\"}}")), 2.0);
        assert_eq!(added(&format!("{n}_count")), 3.0);
        assert_eq!(added(&format!("{d}_count")), 0.0);
        let x = r#"exchange="hot \"page\"\\test\n""#;
        assert_eq!(
            value(
                &page,
                &format!("bidder_requests_total{{{x},outcome=\"bid\"}}")
            ),
            3.0
        );
        assert_eq!(
            value(
                &page,
                &format!(
                    "bidder_no_bids_total{{{x},reason=\"{}\"}}",
                    NoBid::Country.as_str()
                )
            ),
            1.0
        );
        for family in [
            "bidder_requests_total",
            "bidder_no_bids_total",
            "bidder_bids_total",
            "bidder_request_duration_seconds",
            "bidder_notice_duration_seconds",
            "bidder_bid_shading_total",
            "bidder_tracking_events_total",
        ] {
            let kind = if family == d || family == n {
                "histogram"
            } else {
                "counter"
            };
            assert_eq!(
                page.matches(&format!("# TYPE {family} {kind}\n")).count(),
                1,
                "{family}"
            );
        }
    }

    fn page() -> String {
        let mut out = String::new();
        render(&mut out);
        out
    }
}

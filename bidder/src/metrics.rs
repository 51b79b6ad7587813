//! Metrics, emitted through typed events rather than ad-hoc strings at call
//! sites: every name and label value lives here, so the Prometheus page has
//! one spelling of each and a dashboard cannot break on a typo.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::nobid::NoBid;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder once (tests start several servers in
/// one process) and returns the handle that renders `/metrics`.
pub fn install() -> Option<&'static PrometheusHandle> {
    let handle = HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets(&[
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                ])
                .ok()?
                .install_recorder()
                .ok()
        })
        .as_ref();
    // Bind the hot-path handles to the recorder just installed.
    let _ = hot();
    handle
}

/// The exporter keeps histogram samples until upkeep folds them into
/// buckets; without a periodic upkeep a replica that is never scraped would
/// grow without bound.
pub async fn upkeep(handle: &'static PrometheusHandle) {
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        handle.run_upkeep();
    }
}

/// Handles for the per-request series, registered once: the `counter!`
/// macros look the series up in the registry on every call, which the bid
/// path does not need to pay for.
struct Hot {
    requests: [metrics::Counter; 4],
    no_bids: Vec<metrics::Counter>,
    bids: metrics::Counter,
    duration: metrics::Histogram,
}

static HOT: OnceLock<Hot> = OnceLock::new();

fn hot() -> &'static Hot {
    HOT.get_or_init(|| Hot {
        requests: ["bid", "no_bid", "bad_request", "too_large"]
            .map(|o| metrics::counter!("bidder_requests_total", "outcome" => o)),
        no_bids: NoBid::ALL
            .iter()
            .map(|r| metrics::counter!("bidder_no_bids_total", "reason" => r.as_str()))
            .collect(),
        bids: metrics::counter!("bidder_bids_total"),
        duration: metrics::histogram!("bidder_request_duration_seconds"),
    })
}

/// How a bid request ended, as counted in `bidder_requests_total{outcome}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Bid,
    NoBid(NoBid),
    BadRequest,
    TooLarge,
}

pub fn request(outcome: Outcome, elapsed: Duration) {
    let h = hot();
    let i = match outcome {
        Outcome::Bid => 0,
        Outcome::NoBid(_) => 1,
        Outcome::BadRequest => 2,
        Outcome::TooLarge => 3,
    };
    h.requests[i].increment(1);
    if let Outcome::NoBid(reason) = outcome {
        h.no_bids[reason as usize].increment(1);
    }
    h.duration.record(elapsed.as_secs_f64());
}

pub fn bids(count: usize) {
    hot().bids.increment(count as u64);
}

#[derive(Clone, Copy, Debug)]
pub enum Notice {
    Win,
    Billing,
    Loss,
}

#[derive(Clone, Copy, Debug)]
pub enum NoticeResult {
    Charged,
    Duplicate,
    Test,
    Invalid,
    Released,
}

pub fn notice(kind: Notice, result: NoticeResult) {
    let kind = match kind {
        Notice::Win => "win",
        Notice::Billing => "billing",
        Notice::Loss => "loss",
    };
    let result = match result {
        NoticeResult::Charged => "charged",
        NoticeResult::Duplicate => "duplicate",
        NoticeResult::Test => "test",
        NoticeResult::Invalid => "invalid",
        NoticeResult::Released => "released",
    };
    metrics::counter!("bidder_notices_total", "kind" => kind, "result" => result).increment(1);
}

pub fn spend(micros: i64) {
    metrics::counter!("bidder_spend_micros_total").increment(micros.max(0) as u64);
}

/// A VAST impression pixel fired.
pub fn impression() {
    metrics::counter!("bidder_impressions_total").increment(1);
}

/// A VAST tracking event; unknown names are counted as `other` so a caller
/// cannot grow the label set.
pub fn vast_event(event: &str) {
    let event = match event {
        "start" => "start",
        "firstQuartile" => "first_quartile",
        "midpoint" => "midpoint",
        "thirdQuartile" => "third_quartile",
        "complete" => "complete",
        "creativeView" => "creative_view",
        _ => "other",
    };
    metrics::counter!("bidder_vast_events_total", "event" => event).increment(1);
}

pub fn audience_events(n: usize) {
    metrics::counter!("bidder_audience_events_total").increment(n as u64);
}

/// Won impressions whose cost passed a budget (their reservation had
/// expired): delivered, not billed.
pub fn over_delivery(micros: i64) {
    metrics::counter!("bidder_over_delivery_micros_total").increment(micros.max(0) as u64);
}

pub fn config_loaded(ok: bool, line_items: usize) {
    let result = if ok { "ok" } else { "rejected" };
    metrics::counter!("bidder_config_reloads_total", "result" => result).increment(1);
    if ok {
        metrics::gauge!("bidder_config_line_items").set(line_items as f64);
    }
}

/// Registers the series a dashboard expects before the first event, so a
/// fresh replica shows zeros rather than gaps.
pub fn describe() {
    metrics::describe_counter!("bidder_requests_total", "Bid requests by outcome.");
    metrics::describe_counter!("bidder_no_bids_total", "No-bid answers by reason.");
    metrics::describe_counter!("bidder_bids_total", "Bids sent (one per imp at most).");
    metrics::describe_histogram!(
        "bidder_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time from request headers to response, bid port."
    );
    metrics::describe_counter!("bidder_notices_total", "Win and billing notices by result.");
    metrics::describe_counter!(
        "bidder_spend_micros_total",
        "Spend charged, in micros of USD."
    );
    metrics::describe_counter!("bidder_config_reloads_total", "Config loads by result.");
    metrics::describe_gauge!(
        "bidder_config_line_items",
        "Line items in the serving config."
    );
    let h = hot();
    for c in h.requests.iter().chain(&h.no_bids) {
        c.increment(0);
    }
    h.bids.increment(0);
}

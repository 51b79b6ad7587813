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
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets(&[
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                ])
                .ok()?
                .install_recorder()
                .ok()
        })
        .as_ref()
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
    let label = match outcome {
        Outcome::Bid => "bid",
        Outcome::NoBid(_) => "no_bid",
        Outcome::BadRequest => "bad_request",
        Outcome::TooLarge => "too_large",
    };
    metrics::counter!("bidder_requests_total", "outcome" => label).increment(1);
    if let Outcome::NoBid(reason) = outcome {
        metrics::counter!("bidder_no_bids_total", "reason" => reason.as_str()).increment(1);
    }
    metrics::histogram!("bidder_request_duration_seconds").record(elapsed.as_secs_f64());
}

pub fn bids(count: usize) {
    metrics::counter!("bidder_bids_total").increment(count as u64);
}

#[derive(Clone, Copy, Debug)]
pub enum Notice {
    Win,
    Billing,
}

#[derive(Clone, Copy, Debug)]
pub enum NoticeResult {
    Charged,
    Duplicate,
    Test,
    Invalid,
}

pub fn notice(kind: Notice, result: NoticeResult) {
    let kind = match kind {
        Notice::Win => "win",
        Notice::Billing => "billing",
    };
    let result = match result {
        NoticeResult::Charged => "charged",
        NoticeResult::Duplicate => "duplicate",
        NoticeResult::Test => "test",
        NoticeResult::Invalid => "invalid",
    };
    metrics::counter!("bidder_notices_total", "kind" => kind, "result" => result).increment(1);
}

pub fn spend(micros: i64) {
    metrics::counter!("bidder_spend_micros_total").increment(micros.max(0) as u64);
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
    for outcome in ["bid", "no_bid", "bad_request", "too_large"] {
        metrics::counter!("bidder_requests_total", "outcome" => outcome).increment(0);
    }
    for reason in NoBid::ALL {
        metrics::counter!("bidder_no_bids_total", "reason" => reason.as_str()).increment(0);
    }
    metrics::counter!("bidder_bids_total").increment(0);
}

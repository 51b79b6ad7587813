//! Metrics, emitted through typed events rather than ad-hoc strings at call
//! sites: every name and label value lives here, so the Prometheus page has
//! one spelling of each and a dashboard cannot break on a typo.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::nobid::NoBid;

mod hot;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder once (tests start several servers in
/// one process) and returns the handle that renders `/metrics`.
pub fn install() -> Option<&'static PrometheusHandle> {
    let handle = HANDLE
        .get_or_init(|| {
            // No histogram goes through the exporter (the request
            // durations are `hot`'s): nothing of it needs upkeep.
            PrometheusBuilder::new().install_recorder().ok()
        })
        .as_ref();
    handle
}

/// The `/metrics` page: the exporter's series, then the per-request ones
/// ([`hot`]).
pub fn render(handle: &PrometheusHandle) -> String {
    let mut page = handle.render();
    hot::render(&mut page);
    page
}

/// One exchange's per-request series, `exchange` being a configured
/// exchange id (or `default`): the label set is as bounded as the config.
pub struct ExchangeCounters {
    cells: std::sync::Arc<hot::ExchangeCells>,
}

impl std::fmt::Debug for ExchangeCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExchangeCounters(..)")
    }
}

impl ExchangeCounters {
    /// The exchange's counters, the same ones for every config that names
    /// it: a reload keeps its counts. Its series show zeros from the start,
    /// so a dashboard shows a fresh exchange.
    pub fn new(exchange: &str) -> ExchangeCounters {
        ExchangeCounters {
            cells: hot::exchange(exchange),
        }
    }

    /// Requests before any exchange profile applies (no config yet).
    pub fn default_exchange() -> &'static ExchangeCounters {
        static DEFAULT: OnceLock<ExchangeCounters> = OnceLock::new();
        DEFAULT.get_or_init(|| ExchangeCounters::new(crate::snapshot::DEFAULT_EXCHANGE))
    }
}

/// How a bid request ended, as counted in `bidder_requests_total{outcome}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Bid,
    NoBid(NoBid),
    BadRequest,
    TooLarge,
}

pub fn request(counters: &ExchangeCounters, outcome: Outcome, elapsed: Duration) {
    let i = match outcome {
        Outcome::Bid => 0,
        Outcome::NoBid(_) => 1,
        Outcome::BadRequest => 2,
        Outcome::TooLarge => 3,
    };
    counters.cells.add(hot::REQUESTS + i, 1);
    if let Outcome::NoBid(reason) = outcome {
        counters.cells.add(hot::NO_BIDS + reason as usize, 1);
    }
    hot::duration(elapsed);
}

/// A win, billing or loss notice answered `elapsed` after its headers.
pub fn notice_duration(elapsed: std::time::Duration) {
    hot::notice_duration(elapsed);
}

/// A bid request for an exchange id no profile has: 404.
pub fn unknown_exchange() {
    metrics::counter!("bidder_unknown_exchange_requests_total").increment(1);
}

/// A bid request to a profile with `allow_from`, from elsewhere (403).
pub fn foreign_source(exchange: &std::sync::Arc<str>) {
    metrics::counter!("bidder_bid_requests_refused_total", "exchange" => exchange.to_string(), "reason" => "source")
        .increment(1);
}

pub fn bids(counters: &ExchangeCounters, count: usize) {
    counters.cells.add(hot::BIDS, count as u64);
}

/// What a notice did, as counted in `bidder_notices_total{kind,result}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoticeResult {
    Charged,
    Duplicate,
    Test,
    /// Unsigned, changed, expired or malformed: nothing happened.
    Invalid,
    /// The charge could not be written; the exchange must retry.
    Failed,
    /// A loss released its bid.
    Released,
    /// A loss for a bid already won: a win is never undone.
    Ignored,
    /// A loss for a bid the ledger no longer holds.
    Unknown,
    /// A notice that, by its exchange's `charge_on`, charges nothing: a
    /// win notice where billing notices charge, or the reverse.
    Recorded,
}

impl NoticeResult {
    const ALL: [NoticeResult; 9] = [
        NoticeResult::Charged,
        NoticeResult::Duplicate,
        NoticeResult::Test,
        NoticeResult::Invalid,
        NoticeResult::Failed,
        NoticeResult::Released,
        NoticeResult::Ignored,
        NoticeResult::Unknown,
        NoticeResult::Recorded,
    ];
}

pub fn notice(kind: crate::notice::Kind, result: NoticeResult) {
    metrics::counter!("bidder_notices_total", "kind" => kind.as_str(), "result" => notice_label(result))
        .increment(1);
}

fn notice_label(result: NoticeResult) -> &'static str {
    match result {
        NoticeResult::Charged => "charged",
        NoticeResult::Duplicate => "duplicate",
        NoticeResult::Test => "test",
        NoticeResult::Invalid => "invalid",
        NoticeResult::Failed => "failed",
        NoticeResult::Released => "released",
        NoticeResult::Ignored => "ignored",
        NoticeResult::Unknown => "unknown",
        NoticeResult::Recorded => "recorded",
    }
}

/// A win or billing notice whose price could not be read: charged at the
/// bid price.
pub fn price_unreadable(counters: &ExchangeCounters) {
    counters.cells.add(hot::UNREADABLE, 1);
}

/// Why an encrypted price was not taken, as `hot::DECRYPT` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecryptFailure {
    /// Not the scheme's shape at all.
    Encoding = 0,
    /// A wrong key or a changed price.
    Integrity = 1,
    /// Authentic, but past what a charge holds.
    Range = 2,
    /// Authentic, but encrypted before its bid was made: another win's.
    Stale = 3,
}

/// An encrypted price that was not taken: charged at the bid.
pub fn price_decrypt_failed(counters: &ExchangeCounters, why: DecryptFailure) {
    counters.cells.add(hot::DECRYPT_FAILURES + why as usize, 1);
}

/// A win that came after its reservation had expired.
pub fn late_win() {
    metrics::counter!("bidder_late_wins_total").increment(1);
}

/// The share of an expired reservation the ledger still holds.
pub fn late_share(ppm: u32) {
    metrics::gauge!("bidder_late_win_share").set(f64::from(ppm) / 1e6);
}

/// Impressions and clicks waiting for their bids' charge.
pub fn tracking_awaiting(n: usize) {
    metrics::gauge!("bidder_events_awaiting_win").set(n as f64);
}

/// Frequency windows an embedded ledger counts in (one per user and capped
/// line item seen within its window), as last written for a restart.
pub fn frequency_windows(n: usize) {
    metrics::gauge!("bidder_frequency_windows").set(n as f64);
}

/// Lets one log line through per period and counts the rest, so a flood of
/// bad input costs a counter, not a disk.
#[derive(Debug)]
pub struct Throttle {
    period_ms: u64,
    start: std::time::Instant,
    next_ms: std::sync::atomic::AtomicU64,
    suppressed: std::sync::atomic::AtomicU64,
}

impl Throttle {
    pub fn new(period: Duration) -> Throttle {
        Throttle {
            period_ms: period.as_millis() as u64,
            start: std::time::Instant::now(),
            next_ms: std::sync::atomic::AtomicU64::new(0),
            suppressed: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Calls `log` with how many were suppressed since the last line, or
    /// counts this one as suppressed.
    pub fn warn(&self, log: impl FnOnce(u64)) {
        use std::sync::atomic::Ordering::Relaxed;
        let now = self.start.elapsed().as_millis() as u64;
        let next = self.next_ms.load(Relaxed);
        if now >= next
            && self
                .next_ms
                .compare_exchange(next, now + self.period_ms, Relaxed, Relaxed)
                .is_ok()
        {
            log(self.suppressed.swap(0, Relaxed));
        } else {
            self.suppressed.fetch_add(1, Relaxed);
        }
    }
}

pub fn spend(micros: i64) {
    metrics::counter!("bidder_spend_micros_total").increment(micros.max(0) as u64);
}

/// A tracking event counted (the first of its kind for its bid).
pub fn tracking_event(event: crate::track::Event) {
    hot::tracking(event);
}

/// An advertiser pixel call by result: `recorded`, `no_user`,
/// `no_consent`, `flooded`, `unknown_advertiser`, `foreign_page`,
/// `no_page`, `foreign_uid`, `invalid`.
pub fn pixel(result: &'static str) {
    metrics::counter!("bidder_pixel_events_total", "result" => result).increment(1);
}

/// A user sync: `synced`, `no_consent` (redirected without an id),
/// `refused` (bad redir, no sync_url), `unknown_exchange`.
pub fn user_sync(result: &'static str) {
    metrics::counter!("bidder_user_syncs_total", "result" => result).increment(1);
}

/// A bid request whose privacy signals keep behavioural data out of it,
/// by the first restriction found (a label per `privacy::Restriction`):
/// what each signal, and reading the unreadable strictly, costs.
pub fn privacy_restricted(r: crate::privacy::Restriction) {
    hot::privacy_restricted(r);
}

/// A view or purchase uploaded: `attributed`, `unattributed` (no listed
/// product, or no touch in its window) or `duplicate` (order id or event
/// seen before).
pub fn conversion(result: &'static str) {
    metrics::counter!("bidder_conversions_total", "result" => result).increment(1);
}

/// The event journal's state, read at each housekeeping tick: records
/// written, events dropped because the writer fell behind, write errors,
/// touches held and attribution entries evicted early.
pub fn event_journal(s: &reports::log::Stats) {
    use std::sync::atomic::Ordering::Relaxed;
    metrics::counter!("bidder_event_records_written_total").absolute(s.records.load(Relaxed));
    metrics::counter!("bidder_events_dropped_total").absolute(s.dropped.load(Relaxed));
    metrics::counter!("bidder_event_write_errors_total").absolute(s.write_errors.load(Relaxed));
    metrics::gauge!("bidder_attribution_touches").set(s.touches.load(Relaxed) as f64);
    metrics::counter!("bidder_attribution_evicted_total").absolute(s.evicted.load(Relaxed));
    metrics::counter!("bidder_tracking_duplicates_after_restart_total")
        .absolute(s.track_duplicates.load(Relaxed));
    metrics::counter!("bidder_peer_events_not_attributed_total")
        .absolute(s.peer_dropped.load(Relaxed));
    metrics::counter!("bidder_conversions_attributed_late_total")
        .absolute(s.late_attributed.load(Relaxed));
}

/// Tracking pairs forgotten before their time to stay within
/// `--max-tracked-events`.
pub fn tracking_evicted(n: usize) {
    metrics::counter!("bidder_tracking_dedupe_evicted_total").increment(n as u64);
}

/// A tracking URL that counted nothing: `signature` (not ours, or
/// changed), `expired`, `duplicate`, `not_won` (an impression or click of
/// a bid not charged within its wait: see `crate::awaiting`),
/// `awaiting_full` (one dropped to make room for a newer one).
pub fn tracking_refused(reason: &'static str) {
    tracking_refused_n(reason, 1);
}

/// [`tracking_refused`] for `n` calls at once (a settle's drops).
pub fn tracking_refused_n(reason: &'static str, n: usize) {
    if n > 0 {
        metrics::counter!("bidder_tracking_refused_total", "reason" => reason).increment(n as u64);
    }
}

/// Impressions and clicks recorded without a claim in Redis, which did not
/// answer (`RedisLedger::claim_tracked`): one sent to two replicas may be
/// in both replicas' events.
pub fn tracking_unclaimed(n: usize) {
    metrics::counter!("bidder_tracking_unclaimed_total").increment(n as u64);
}

/// What the saved shopper events hold on disk (`crate::audience_log`).
pub fn audience_log_bytes(n: u64) {
    metrics::gauge!("bidder_audience_log_bytes").set(n as f64);
}

pub fn audience_events(n: usize) {
    metrics::counter!("bidder_audience_events_total").increment(n as u64);
}

/// A list batch: applied, invalid, full (past --max-list-members) or
/// io_error.
pub fn list_batch(result: &'static str) {
    metrics::counter!("bidder_list_batches_total", "result" => result).increment(1);
}

/// First-price bids and wins not counted because the curve table was
/// full, and the shading curves learned.
pub fn shading(untracked: u64, curves: usize) {
    metrics::gauge!("bidder_shading_untracked_bids").set(untracked as f64);
    metrics::gauge!("bidder_shading_curves").set(curves as f64);
}

/// A bid's shading decision (`shaded`, `not_enough_data`, `explore`, …).
pub fn shading_decision(reason: shading::Reason) {
    hot::shading(reason);
}

/// A `--model` load: `loaded` or `failed`.
pub fn model_loaded(ok: bool) {
    let result = if ok { "loaded" } else { "failed" };
    metrics::counter!("bidder_model_loads_total", "result" => result).increment(1);
}

/// The shared state (Redis), read at each housekeeping tick: whether it
/// answers (0: budgeted line items do not bid), calls made, budget held on
/// lease by this replica (micros) and writes waiting for Redis.
pub fn shared_state(up: bool, round_trips: u64, leased: i64, pending: i64) {
    metrics::gauge!("bidder_shared_state_up").set(if up { 1.0 } else { 0.0 });
    metrics::counter!("bidder_redis_round_trips_total").absolute(round_trips);
    metrics::gauge!("bidder_redis_leased_micros").set(leased as f64);
    metrics::gauge!("bidder_redis_pending_writes").set(pending as f64);
}

/// Whether the charge journal writes (0: a full or failing disk, and no
/// bids are made until it writes again).
pub fn journal_writable(up: bool) {
    metrics::gauge!("bidder_journal_writable").set(if up { 1.0 } else { 0.0 });
}

/// What the start found damaged in the charge journal: records skipped
/// in its middle (a write never acknowledged, or damage) and bytes cut off
/// its end (a torn last write). Only a log line said so; an alert needs
/// a series (ops probe).
pub fn journal_replayed(skipped: u64, cut_bytes: u64) {
    metrics::gauge!("bidder_journal_skipped_records").set(skipped as f64);
    metrics::gauge!("bidder_journal_cut_bytes").set(cut_bytes as f64);
}

/// How this replica signs the URLs it writes now: 1 `per-bid`, 0
/// `per-url` (under `--url-signatures auto`, `per-url` until every reader
/// has read `per-bid` for the soak).
pub fn url_signatures_per_bid(per_bid: bool) {
    metrics::gauge!("bidder_url_signatures_per_bid").set(if per_bid { 1.0 } else { 0.0 });
}

/// Pieces of audience data not handed to the other replicas (too much
/// waited for Redis).
pub fn audience_not_shared(n: u64) {
    metrics::counter!("bidder_audience_not_shared_total").absolute(n);
}

/// The copies of other replicas' report files: bytes sent and copied,
/// gaps that asked a replica to send a file again, failed passes.
pub fn report_mirror(m: &shared::MirrorStats) {
    use std::sync::atomic::Ordering::Relaxed;
    metrics::counter!("bidder_report_mirror_bytes_total", "direction" => "sent")
        .absolute(m.sent_bytes.load(Relaxed));
    metrics::counter!("bidder_report_mirror_bytes_total", "direction" => "received")
        .absolute(m.received_bytes.load(Relaxed));
    metrics::counter!("bidder_report_mirror_gaps_total").absolute(m.gaps.load(Relaxed));
    metrics::counter!("bidder_report_mirror_errors_total").absolute(m.errors.load(Relaxed));
}

/// Shoppers the audience store dropped, or did not take, to hold no more
/// than `--max-audience-users`, since start.
pub fn audience_users_evicted(n: u64) {
    metrics::counter!("bidder_audience_users_evicted_total").absolute(n);
}

/// Members of all list audiences.
pub fn list_members(n: usize) {
    metrics::gauge!("bidder_list_members").set(n as f64);
}

/// Won impressions whose cost passed a budget (their reservation had
/// expired): delivered, not billed.
pub fn over_delivery(micros: i64) {
    metrics::counter!("bidder_over_delivery_micros_total").increment(micros.max(0) as u64);
}

pub fn config_loaded(ok: bool, line_items: usize) {
    let result = if ok { "ok" } else { "rejected" };
    metrics::counter!("bidder_config_reloads_total", "result" => result).increment(1);
    // What an alert can hold on to: the counter's increase is gone once
    // its window passes, while a refused config stays unserved until a
    // good one loads.
    metrics::gauge!("bidder_config_last_load_ok").set(if ok { 1.0 } else { 0.0 });
    if ok {
        metrics::gauge!("bidder_config_line_items").set(line_items as f64);
    }
}

/// Registers the series a dashboard expects before the first event, so a
/// fresh replica shows zeros rather than gaps.
/// Counters with one label, and the values they are shown at zero with.
const LABELLED_COUNTERS: &[(&str, &str, &[&str])] = &[
    // From zero: an alert on `increase(...{result="rejected"}[5m])` missed
    // the first refused config after a start, whose series began at 1.
    ("bidder_config_reloads_total", "result", &["ok", "rejected"]),
    (
        "bidder_pixel_events_total",
        "result",
        &[
            "recorded",
            "no_user",
            "no_consent",
            "flooded",
            "unknown_advertiser",
            "foreign_page",
            "no_page",
            "foreign_uid",
            "invalid",
        ],
    ),
    (
        "bidder_user_syncs_total",
        "result",
        &["synced", "no_consent", "refused", "unknown_exchange"],
    ),
    (
        "bidder_tracking_refused_total",
        "reason",
        &[
            "signature",
            "expired",
            "duplicate",
            "not_won",
            "lost",
            "awaiting_full",
        ],
    ),
    (
        "bidder_list_batches_total",
        "result",
        &["applied", "invalid", "full", "io_error"],
    ),
    ("bidder_model_loads_total", "result", &["loaded", "failed"]),
];

/// The counters without labels: on the page from the start, at zero.
/// Missing until their first event, a restarted replica's page had a gap
/// `rate()` misread and an `absent()` alert fired on.
const UNLABELLED_COUNTERS: &[&str] = &[
    "bidder_attribution_evicted_total",
    "bidder_audience_events_total",
    "bidder_audience_not_shared_total",
    "bidder_audience_users_evicted_total",
    "bidder_conversions_attributed_late_total",
    "bidder_event_records_written_total",
    "bidder_event_write_errors_total",
    "bidder_events_dropped_total",
    "bidder_late_wins_total",
    "bidder_over_delivery_micros_total",
    "bidder_peer_events_not_attributed_total",
    "bidder_redis_round_trips_total",
    "bidder_report_mirror_errors_total",
    "bidder_report_mirror_gaps_total",
    "bidder_spend_micros_total",
    "bidder_tracking_dedupe_evicted_total",
    "bidder_tracking_duplicates_after_restart_total",
    "bidder_tracking_unclaimed_total",
    "bidder_unknown_exchange_requests_total",
];

pub fn describe() {
    // The default exchange's series show zeros from the start, as before
    // any config loads (the exporter's did from here).
    ExchangeCounters::default_exchange();
    for &name in UNLABELLED_COUNTERS {
        metrics::counter!(name).increment(0);
    }
    // Labelled counters an alert watches (a notice that failed, pixels
    // refused) at zero from the start too: `rate()` cannot tell a series
    // not there yet from one that is quiet.
    for kind in crate::notice::Kind::ALL {
        for result in NoticeResult::ALL {
            metrics::counter!("bidder_notices_total", "kind" => kind.as_str(), "result" => notice_label(result))
                .increment(0);
        }
    }
    for (name, label, values) in LABELLED_COUNTERS {
        for &value in *values {
            metrics::counter!(*name, *label => value).increment(0);
        }
    }
    metrics::describe_counter!(
        "bidder_audience_events_total",
        "Audience events (views, purchases, interests) taken in while serving: uploads, pixel \
         calls and other replicas' (not those --data and the state directory load at start)."
    );
    metrics::describe_counter!(
        "bidder_list_batches_total",
        "Batches of list audience members by result (applied, invalid, full, io_error)."
    );
    metrics::describe_gauge!("bidder_list_members", "Members of all list audiences.");
    metrics::describe_gauge!(
        "bidder_audience_log_bytes",
        "Bytes the saved shopper events (STATE/audience-events) hold; at --max-audience-log-bytes the oldest days are removed early."
    );
    metrics::describe_counter!(
        "bidder_audience_users_evicted_total",
        "Shoppers the audience store dropped (the least recently active), or did not take, to hold no more than --max-audience-users."
    );
    metrics::describe_gauge!(
        "bidder_shared_state_up",
        "1 when the shared state (Redis) answers; 0: budgeted line items do not bid."
    );
    metrics::describe_gauge!(
        "bidder_journal_skipped_records",
        "Charge journal records the start skipped as unreadable (never acknowledged, or damaged: see the log)."
    );
    metrics::describe_gauge!(
        "bidder_journal_cut_bytes",
        "Bytes the start cut off the charge journal's end (a torn last write, never acknowledged)."
    );
    metrics::describe_gauge!(
        "bidder_journal_writable",
        "1 when the charge journal writes; 0: a full or failing disk, and no bids are made until it writes again."
    );
    metrics::describe_counter!(
        "bidder_redis_round_trips_total",
        "Calls to Redis (leases, charges, frequency, heartbeats, reads)."
    );
    metrics::describe_counter!(
        "bidder_audience_not_shared_total",
        "Pieces of audience data (events, list batches) not handed to the other replicas: too much waited for Redis."
    );
    metrics::describe_counter!(
        "bidder_peer_events_not_attributed_total",
        "Pieces of other replicas' event lines not handed to attribution (its queue was full); their copies still make the reports."
    );
    metrics::describe_counter!(
        "bidder_report_mirror_bytes_total",
        "Bytes of report files sent to and copied from other replicas (direction)."
    );
    metrics::describe_counter!(
        "bidder_report_mirror_gaps_total",
        "Gaps in copies of other replicas' report files: each asked for the file again."
    );
    metrics::describe_counter!(
        "bidder_report_mirror_errors_total",
        "Passes of the report mirror that failed (Redis away, a copy not written)."
    );
    metrics::describe_gauge!(
        "bidder_url_signatures_per_bid",
        "1 when this replica signs the URLs it writes per bid, 0 per URL (under \
         --url-signatures auto: until every reader has read per-bid URLs for the soak)."
    );
    metrics::describe_gauge!(
        "bidder_redis_leased_micros",
        "Budget this replica holds on lease from Redis, in micros."
    );
    metrics::describe_gauge!(
        "bidder_redis_pending_writes",
        "Writes (commits, lease returns) waiting for Redis."
    );
    metrics::describe_counter!(
        "bidder_model_loads_total",
        "Loads of the click and conversion model by result."
    );
    metrics::describe_gauge!(
        "bidder_shading_untracked_bids",
        "First-price bids and wins not counted for shading: their exchange and slot kind were past the curve table's bound."
    );
    metrics::describe_gauge!(
        "bidder_shading_curves",
        "Win-probability curves (exchange × slot kind) being learned."
    );
    metrics::describe_counter!(
        "bidder_notices_total",
        "Win, billing and loss notices by result."
    );
    metrics::describe_counter!(
        "bidder_late_wins_total",
        "Wins that came after their reservation had expired."
    );
    metrics::describe_gauge!(
        "bidder_events_awaiting_win",
        "Impressions and clicks of bids not charged yet, waiting to be counted (dropped if the bid is lost or not charged in time)."
    );
    metrics::describe_gauge!(
        "bidder_frequency_windows",
        "Frequency windows (user and capped line item) held in memory against --max-frequency-windows: counting, or back at zero (their bids lost) until their time has passed."
    );
    metrics::describe_gauge!(
        "bidder_late_win_share",
        "Share of an expired reservation still held against its budget (learned from late wins)."
    );
    metrics::describe_counter!(
        "bidder_over_delivery_micros_total",
        "Won impressions' cost beyond a budget: delivered, journaled, not billed."
    );
    metrics::describe_counter!(
        "bidder_spend_micros_total",
        "Spend charged, in micros of USD."
    );
    metrics::describe_counter!("bidder_config_reloads_total", "Config loads by result.");
    metrics::describe_gauge!(
        "bidder_config_last_load_ok",
        "1 when the last config load (start or reload) was accepted, 0 when it was refused and the config before it still serves."
    );
    metrics::describe_gauge!(
        "bidder_config_line_items",
        "Line items in the serving config."
    );
    metrics::describe_counter!(
        "bidder_tracking_refused_total",
        "Tracking calls that counted nothing, by reason (signature, expired, duplicate, not_won, lost, awaiting_full)."
    );
    metrics::describe_counter!(
        "bidder_tracking_unclaimed_total",
        "Impressions and clicks recorded while Redis could not say whether another replica had recorded them."
    );
    metrics::describe_counter!(
        "bidder_tracking_dedupe_evicted_total",
        "Tracking (bid, event) pairs forgotten early to stay within --max-tracked-events."
    );
    metrics::describe_counter!(
        "bidder_tracking_duplicates_after_restart_total",
        "Impressions and clicks counted before a restart and called again after it: not journaled twice."
    );
    metrics::describe_counter!(
        "bidder_pixel_events_total",
        "Advertiser pixel calls by result (recorded, no_user, no_consent, flooded, unknown_advertiser, foreign_page, no_page, foreign_uid, invalid)."
    );
    metrics::describe_counter!(
        "bidder_user_syncs_total",
        "User syncs by result (synced, no_consent, refused, unknown_exchange)."
    );
    metrics::describe_counter!(
        "bidder_conversions_attributed_late_total",
        "Conversions answered unattributed and attributed later, when a touch before them was recorded here (an impression or click that waited for its bid's charge)."
    );
    metrics::describe_counter!(
        "bidder_conversions_total",
        "Uploaded views and purchases by result (attributed, unattributed, duplicate)."
    );
    metrics::describe_counter!(
        "bidder_event_records_written_total",
        "Records written to the event journal (bids and no-bids are written as counts)."
    );
    metrics::describe_counter!(
        "bidder_events_dropped_total",
        "Tracked events and other replicas' lines dropped because the event writer's queue was full (bid and no-bid counts never are)."
    );
    metrics::describe_counter!(
        "bidder_event_write_errors_total",
        "Event journal writes that failed (their records are cut back)."
    );
    metrics::describe_gauge!(
        "bidder_attribution_touches",
        "Touches (up to four clicks and four impressions per shopper and advertiser) held for attribution."
    );
    metrics::describe_counter!(
        "bidder_attribution_evicted_total",
        "Touches and conversions forgotten early to stay within --max-attribution-entries."
    );
    metrics::describe_counter!(
        "bidder_unknown_exchange_requests_total",
        "Bid requests to /openrtb2/bid/{id} for an exchange no profile has."
    );
    metrics::describe_counter!(
        "bidder_bid_requests_refused_total",
        "Bid requests refused before they were read (reason source: from outside the profile's allow_from)."
    );
    metrics::describe_gauge!(
        "bidder_currency_rates_age_seconds",
        "Age of the serving currency rates (from their as_of day)."
    );
}

/// How old the serving rates are; stale rates bid at yesterday's prices.
pub fn rates_age(seconds: f64) {
    metrics::gauge!("bidder_currency_rates_age_seconds").set(seconds);
}

#[cfg(test)]
mod tests {
    /// A flood logs one line per period, and that line says how many it
    /// stood for.
    #[test]
    fn a_throttle_lets_one_line_through_and_counts_the_rest() {
        let t = super::Throttle::new(std::time::Duration::from_secs(3600));
        let mut lines = Vec::new();
        for _ in 0..1000 {
            t.warn(|suppressed| lines.push(suppressed));
        }
        assert_eq!(lines, [0]);
        assert_eq!(t.suppressed.load(std::sync::atomic::Ordering::Relaxed), 999);
        let every = super::Throttle::new(std::time::Duration::ZERO);
        let mut n = 0;
        for _ in 0..10 {
            every.warn(|_| n += 1);
        }
        assert_eq!(n, 10, "no period: every line");
    }

    /// The hot handles are indexed by discriminant: each list must be in
    /// declaration order, or a series would count another's events.
    /// No wildcard: a new variant fails to compile here until it is
    /// listed in `ALL` (and so gets a handle of its own).
    #[test]
    fn every_variant_has_a_hot_handle() {
        use crate::track::Event;
        use shading::Reason;
        for r in Reason::ALL {
            match r {
                Reason::Shaded
                | Reason::NotEnoughData
                | Reason::AtFloor
                | Reason::NoGain
                | Reason::ValueBelowFloor
                | Reason::Explore
                | Reason::SecondPrice => {}
            }
        }
        assert_eq!(Reason::ALL.len(), 7);
        for e in Event::ALL {
            match e {
                Event::Impression
                | Event::Click
                | Event::Start
                | Event::FirstQuartile
                | Event::Midpoint
                | Event::ThirdQuartile
                | Event::Complete
                | Event::CreativeView => {}
            }
        }
        assert_eq!(Event::ALL.len(), 8);
    }

    #[test]
    fn hot_handles_are_indexed_in_declaration_order() {
        for (i, r) in shading::Reason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "{r:?}");
        }
        for (i, e) in crate::track::Event::ALL.iter().enumerate() {
            assert_eq!(*e as usize, i, "{e:?}");
        }
    }
}

//! The bidder as one value: the serving config, the audience store, spend
//! and frequency state, the clock and the settings. HTTP handlers, tests and
//! benches all go through it, so they exercise the same pipeline.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, ArcSwapOption};
use config::{Clock, Micros, Problems, Summary, Timestamp};
use ledger::journal::{FileStorage, Journal, JournalOptions, OpenError, Replayed, Storage};
use ledger::{BidKey, Books, Cap, ChargeError, Ledger, Limit, MemoryLedger, SpendKey};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::checks::{Check, Stop};
use crate::context::{Context, Currency};
use crate::metrics::{self, NoticeResult};
use crate::nobid::NoBid;
use crate::notice::{self, Kind, NoticeError, Price};
use crate::respond::{self, Dialect};
use crate::select::{self, Choice, Exclude, Stores};
use crate::snapshot::{Profile, Snapshot};

#[derive(Clone)]
pub struct Settings {
    /// Larger bodies are refused with 413 before they are read.
    pub max_body_bytes: usize,
    /// What bid request bodies still being read may hold together
    /// (`crate::body::Held`); past it one is a no-bid, `busy`.
    pub max_body_memory: usize,
    /// Taken off `tmax` for the trip back to the exchange.
    pub tmax_margin: Duration,
    /// The deadline when a request carries no `tmax`.
    pub default_tmax: Duration,
    /// No request is worked on longer than this, whatever its `tmax` says.
    pub max_tmax: Duration,
    /// Base URL exchanges reach the bid port at, for nurl/burl.
    pub public_url: String,
    /// The buyer's page on its targeting, for Native 1.2 slots that show a
    /// buyer's privacy link (`privacy: 1`); `None` leaves them the
    /// exchange's.
    pub privacy_url: Option<String>,
    /// Bearer token for every `/v1/*` endpoint of the admin port; `None`
    /// refuses them all (403) rather than serving them to anyone.
    pub admin_token: Option<String>,
    /// A token of its own for `POST /v1/audience-events` (the admin token
    /// works there too).
    pub audience_token: Option<String>,
    /// Larger audience batches are refused with 413.
    pub max_audience_batch_bytes: usize,
    /// Our IAB TCF vendor id, for GDPR consent.
    pub privacy: crate::privacy::PrivacySettings,
    /// Key of the HMAC on notice URLs. Replicas behind one exchange must
    /// share it. `serve` always sets one (given, or made once and kept in
    /// the state directory); without one (tests, simulate) a random
    /// per-process key is used.
    pub notice_secret: Option<String>,
    /// Notices older than this are refused.
    pub notice_ttl: Duration,
    /// Notices of bids made before a start that raised `notice_ttl` keep
    /// the TTL they were made under ([`crate::notice_ttl`]).
    pub notice_ttl_fence: Option<crate::notice_ttl::Fence>,
    /// How notice and tracking URLs are written (both ways are read).
    pub url_signatures: crate::notice::UrlSignatures,
    /// Under `auto`, how long every reader must have read `per-bid` URLs
    /// before they are written (alone: this process's uptime).
    pub url_signatures_soak_ms: i64,
    /// How long a bid holds its cost against the budget while no notice
    /// comes; a win after that is still recorded, billed only within the
    /// budget. Win notices come within seconds of the auction; a long hold
    /// would lock budget (and memory) in bids that were lost silently.
    pub reservation_ttl: Duration,
    /// Imps of one request a line item may bid on: one request with many
    /// imps must not take a whole budget, or a pacing minute, at once.
    pub max_bids_per_line_item: usize,
    /// Proxies (load balancers, ingress) whose `X-Forwarded-For` says
    /// where a request came from: an exchange's `allow_from` is checked
    /// against that address instead of the proxy's own.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Tuning of the embedded ledger (late-win horizon, bounds).
    pub ledger: ledger::Options,
    /// Connections per port and their timeouts.
    pub limits: crate::server::Limits,
    /// An admin request's body (explain, audience uploads) must arrive
    /// within this. Bid bodies have the longest tmax.
    pub body_timeout: Duration,
    /// Currency rates whose `as_of` is more days ago than this price
    /// nothing: requests that need them get no bid (reason `currency`).
    pub max_rates_age_days: u32,
    /// (bid, event) pairs remembered to count each tracking event once
    /// (10-18 bytes each); past it the oldest ten minutes are forgotten
    /// early.
    pub max_tracked_events: usize,
    /// Last touches (shopper × advertiser) and conversions remembered for
    /// attribution; past it the oldest go first.
    pub max_attribution_entries: usize,
    /// Pixel events one address may record a minute (0: no limit). Behind
    /// a proxy every call comes from its address: raise it, or set 0.
    pub pixel_events_per_ip_per_minute: u32,
    /// Days of report history kept (event days, compacted charge
    /// generations); never under the longest attribution window.
    pub report_retention_days: u32,
    /// What the audience event log's files may hold together
    /// (`crate::audience_log`).
    pub max_audience_log_bytes: u64,
    /// The click and conversion model (`--model`), loaded at start and on
    /// reload; without one, value-based line items bid on the priors.
    pub model_path: Option<PathBuf>,
}

impl std::fmt::Debug for Settings {
    /// Secrets are never printed, whatever logs a `Settings`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |s: &Option<String>| if s.is_some() { "(set)" } else { "(none)" };
        f.debug_struct("Settings")
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_body_memory", &self.max_body_memory)
            .field("tmax_margin", &self.tmax_margin)
            .field("default_tmax", &self.default_tmax)
            .field("max_tmax", &self.max_tmax)
            .field("public_url", &self.public_url)
            .field("admin_token", &set(&self.admin_token))
            .field("audience_token", &set(&self.audience_token))
            .field("notice_secret", &set(&self.notice_secret))
            .field("notice_ttl", &self.notice_ttl)
            .field("notice_ttl_fence", &self.notice_ttl_fence)
            .field("reservation_ttl", &self.reservation_ttl)
            .field("max_bids_per_line_item", &self.max_bids_per_line_item)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("max_rates_age_days", &self.max_rates_age_days)
            .finish_non_exhaustive()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_body_bytes: 1024 * 1024,
            max_body_memory: 128 << 20,
            tmax_margin: Duration::from_millis(10),
            default_tmax: Duration::from_millis(200),
            max_tmax: Duration::from_millis(1000),
            public_url: "http://127.0.0.1:8080".into(),
            privacy_url: None,
            admin_token: None,
            audience_token: None,
            max_audience_batch_bytes: 64 * 1024 * 1024,
            privacy: crate::privacy::PrivacySettings::default(),
            notice_secret: None,
            notice_ttl: Duration::from_secs(24 * 3600),
            notice_ttl_fence: None,
            url_signatures: crate::notice::UrlSignatures::default(),
            url_signatures_soak_ms: 3_600_000,
            reservation_ttl: Duration::from_secs(60),
            max_bids_per_line_item: 4,
            trusted_proxies: Vec::new(),
            ledger: ledger::Options::default(),
            limits: crate::server::Limits::default(),
            body_timeout: Duration::from_secs(30),
            max_rates_age_days: 7,
            max_tracked_events: 8_000_000,
            max_attribution_entries: 4_000_000,
            report_retention_days: 400,
            max_audience_log_bytes: crate::audience_log::DEFAULT_MAX_BYTES,
            model_path: None,
            pixel_events_per_ip_per_minute: 6_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("{0}")]
    Invalid(String),
    #[error("no valid config loaded yet")]
    NotReady,
    #[error("no exchange profile has the id {0:?}")]
    UnknownExchange(String),
}

/// Events older than the longest window any audience of the config looks
/// at can never match again: the store keeps this many days, and never
/// fewer than 90 ([`audiences::DEFAULT_RETENTION_DAYS`], also what it keeps
/// without behavioural audiences). Not fewer: the retention also prunes
/// the day files of uploads and pixel calls, and a config that dropped its
/// longest-window audience (a pause, a typo in a rollout) deleted for good
/// the history it would need back (audiences probe: an interest audience
/// of 30 days removed, the 7-day one left, and the 8-to-30-day events were
/// gone when the first came back).
pub fn retention_days(config: &config::Config) -> u32 {
    config
        .advertisers
        .iter()
        .flat_map(|a| &a.audiences)
        .filter_map(|a| match a.kind {
            config::AudienceKind::Views { lookback_days, .. } => Some(lookback_days),
            config::AudienceKind::Interests { recency_days, .. } => Some(recency_days),
            _ => None,
        })
        .max()
        .unwrap_or(0)
        .max(audiences::DEFAULT_RETENTION_DAYS)
}

/// What a bearer token opens on the admin port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Every `/v1/*` endpoint.
    Admin,
    /// `POST /v1/audience-events` only.
    AudienceUploads,
    None,
}

impl TrackAnswer {
    /// Whether this call counted the event (not a duplicate, not expired,
    /// not a test).
    pub fn counted(&self) -> bool {
        match self {
            TrackAnswer::Counted { counted }
            | TrackAnswer::Redirect { counted, .. }
            | TrackAnswer::Gone { counted } => *counted,
        }
    }
}

/// What a tracking URL answers.
#[derive(Debug, PartialEq, Eq)]
pub enum TrackAnswer {
    /// An impression or event (a pixel or a beacon).
    Counted { counted: bool },
    /// A click: the browser goes on to the creative's click URL.
    Redirect { url: String, counted: bool },
    /// A click on a creative no longer in the config: nowhere to go.
    Gone { counted: bool },
}

/// What the bid endpoint answers.
pub enum BidAnswer {
    /// The BidResponse JSON and the number of bids in it.
    Bid(crate::AnswerBuf, usize),
    NoBid(NoBid),
    /// 400 with this short reason.
    Invalid(String),
}

/// Topics of audience data handed between replicas.
const PEER_EVENTS: &str = "events";
const PEER_LIST: &str = "list";

/// The bids of one answer, as the ledger holds them: one nearly always
/// (one imp, one bid), on the stack.
pub(crate) type BidKeys = smallvec::SmallVec<[BidKey; 2]>;

/// What each bid of one answer is reported under: on the stack for the
/// one bid nearly every answer makes.
pub(crate) type Reported = smallvec::SmallVec<[reports::Dims; 1]>;

/// What the bid path decided, before a shared ledger confirms it.
struct Bidded {
    answer: BidAnswer,
    report: Reported,
    keys: BidKeys,
    first_price: FirstPrice,
    deadline: Option<Instant>,
    /// The time the auction was run at ([`Auctioned::now`]): always there
    /// for a bid; `None` for an answer without an auction or whose auction
    /// came to nothing (a no-bid, dated when it is counted).
    now: Option<Timestamp>,
}

/// A request's first-price bids, as the shading curves count them once
/// the answer is sent: the slot kind and the price of each.
pub(crate) type FirstPrice = smallvec::SmallVec<[(shading::SlotKind, i64); 1]>;

pub struct App {
    snapshot: ArcSwapOption<Snapshot>,
    audiences: Arc<audiences::Store>,
    ledger: Arc<dyn Ledger>,
    books: Books,
    /// One reload at a time (the endpoint, SIGHUP and the file watch can
    /// ask together): two at once read the files at different moments, and
    /// the one that read first could install last, leaving the older files
    /// serving while the watch took the newer ones for loaded; each also
    /// checks budget changes against what serves, which the other changes.
    reloading: std::sync::Mutex<()>,
    /// The last reload, when it was refused and no config has loaded
    /// since, for `/readyz` (a refusal leaves the process ready on the
    /// old config).
    refused: std::sync::Mutex<Option<Refused>>,
    /// The config files as the last load (or refused reload) read them
    /// (`config::fingerprint`): what the file watch compares with.
    files_read: std::sync::atomic::AtomicU64,
    clock: Arc<dyn Clock>,
    config_dir: Option<PathBuf>,
    pub settings: Settings,
    pub metrics: Option<&'static PrometheusHandle>,
    signer: crate::notice::Signer,
    /// Logs about notices are rate-limited: an exchange sending a million
    /// encrypted prices must not fill the disk with one line each.
    price_log: metrics::Throttle,
    /// So are charges that failed (Redis unreachable, the journal's disk)
    /// and wins past a budget: a line per notice was a line per exchange
    /// retry, flooding the log pipeline while an outage lasted (operator
    /// probe: 598 lines for 598 notices). The metrics count each one.
    unavailable_log: metrics::Throttle,
    storage_log: metrics::Throttle,
    over_log: metrics::Throttle,
    audience_log_errors: metrics::Throttle,
    /// Tracking events already counted.
    tracked: crate::track::Seen,
    /// The event journal (reports, attribution), beside the charge journal.
    events: Option<reports::log::EventLog>,
    /// Where the journals are, for reports.
    state_dir: Option<PathBuf>,
    /// Shopper events applied at run time, kept for a restart (with a
    /// state directory; see `crate::audience_log`).
    audience_log: Option<crate::audience_log::AudienceLog>,
    /// Pixel events per user, and per address, this minute.
    pixel_limiter: crate::pixel::Limiter,
    pixel_ip_limiter: crate::pixel::Limiter,
    /// The win curves of first-price auctions: each first-price bid
    /// counts when it is sent, its win when it is charged.
    shader: shading::Shader,
    /// When this process began (its clock): wins of bids made before are
    /// not counted, since their bids were counted by a process before it.
    started_ms: i64,
    /// What `--url-signatures auto` writes by while this replica shares no
    /// state: set once it has run for the soak (see [`App::upkeep`]).
    alone_per_bid: Arc<std::sync::atomic::AtomicBool>,
    /// Click and conversion rates for value-based line items (`--model`;
    /// the priors until one loads).
    model: ArcSwap<predict::Model>,
    /// Set by a SIGTERM: see [`App::drain`].
    draining: std::sync::atomic::AtomicBool,
    /// The last write of the holds file had nothing in it: another empty
    /// one is not written (see [`App::save_holds`]).
    holds_empty: std::sync::atomic::AtomicBool,
    /// One write of the holds file at a time: the upkeep's, still running
    /// at shutdown, and the last one both write its temporary file.
    holds_writing: std::sync::Mutex<()>,
    /// Bought bids in the last write of the holds file, and when it was
    /// (ms): see [`App::save_holds`].
    holds_bought: std::sync::atomic::AtomicUsize,
    holds_saved_ms: std::sync::atomic::AtomicI64,
    /// When the frequency windows were last written (ms; see
    /// [`App::save_frequency`]), and whether that file had none.
    frequency_saved_ms: std::sync::atomic::AtomicI64,
    frequency_empty: std::sync::atomic::AtomicBool,
    /// One write of the frequency file at a time (the same race as
    /// `holds_writing`'s).
    frequency_writing: std::sync::Mutex<()>,
    /// Impressions and clicks of bids not charged yet (`crate::awaiting`).
    awaiting: crate::awaiting::Awaiting,
    /// What bid request bodies being read hold together.
    pub(crate) bid_bodies: crate::body::Held,
    /// The file of those the process before left was taken on
    /// ([`App::take_on_awaiting`]): only then may [`App::save_awaiting`]
    /// replace (or, with none waiting, remove) it.
    awaiting_taken_on: std::sync::atomic::AtomicBool,
    /// A settle of `awaiting` is running ([`App::settle_awaiting`]).
    settling: std::sync::atomic::AtomicBool,
    /// `settings.public_url` is https: read once, not per bid (some 130
    /// instructions each).
    https_public_url: bool,
    /// `settings.public_url` as a banner's markup carries it (escaped for
    /// an attribute inside a JSON string): made once, not per URL.
    public_url_in_attr: String,
    /// The Redis ledger when replicas share state (the same object as
    /// `ledger`), for its metrics.
    shared: Option<Arc<shared::RedisLedger>>,
    /// Other replicas' list batches for lists this replica's config does
    /// not have yet (a rollout in progress): applied once it does.
    held_lists: std::sync::Mutex<HeldLists>,
    /// How far the charge and event journals are durable: what the report
    /// mirror may send.
    synced: ledger::synced::Synced,
    /// Copies of the other replicas' report files (with `shared`).
    mirror: std::sync::OnceLock<Arc<shared::MirrorStats>>,
    /// Wrong `/ui` logins this minute.
    pub(crate) ui_failures: crate::ui::Failures,
    /// Login forms being read at once ([`crate::ui::LOGINS_READ_AT_ONCE`]).
    pub(crate) login_reads: tokio::sync::Semaphore,
    /// Wrong bearer tokens on `/v1`, per client (their own count).
    pub(crate) api_failures: crate::ui::Failures,
    /// Reports running at once (each reads files for up to seconds).
    pub(crate) report_gate: Arc<tokio::sync::Semaphore>,
    /// Audience uploads (events, list members) being read and applied at
    /// once ([`BATCHES_AT_ONCE`]).
    pub(crate) batch_gate: Arc<tokio::sync::Semaphore>,
}

/// Audience uploads read and applied at once; more are answered 503 with
/// `Retry-After`. A batch of up to `--max-audience-batch-bytes` (64 MiB)
/// takes some five times its size while it is parsed and applied: eight
/// of 40 MB at once took the process to 1.55 GB (audiences probe), with
/// no bound on how many ran.
pub const BATCHES_AT_ONCE: usize = 2;

/// A bid made, as reports count it.
pub(crate) struct Auctioned {
    pub json: crate::AnswerBuf,
    pub keys: BidKeys,
    /// What each bid is reported under (none for test requests).
    pub report: Reported,
    /// The first-price bids among them (none for test requests).
    pub first_price: FirstPrice,
    /// The time the auction ran at (its context's): what confirming its
    /// bids and counting them for reports date them by, so that a bid
    /// made just before midnight is reported on the day its budget was
    /// spent on, and a bid costs one read of the clock, not three.
    pub now: Timestamp,
}

/// What an upload of shopper events did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Uploaded {
    pub applied: usize,
    pub attributed: usize,
    pub unattributed: usize,
    pub duplicate: usize,
}

/// How far ahead of the bidder's clock a view or purchase may be dated.
const FUTURE_SKEW_MS: i64 = audiences::FUTURE_SKEW_MS;
/// Why an event dated past [`FUTURE_SKEW_MS`] ahead is refused.
const FUTURE: &str = "\"at\" is in the future (more than an hour ahead of the bidder's clock)";

/// Waiting bids asked after in Redis in one round of the upkeep
/// ([`App::settle_awaiting`]): a flood of calls for unwon bids costs Redis
/// a bounded pipeline a second.
const MAX_ASKED_A_ROUND: usize = 20_000;

/// How often the server writes the frequency windows
/// ([`App::save_frequency`]): what a crash can lose of the caps' counts.
pub const FREQUENCY_SAVE_EVERY_MS: i64 = 60_000;

/// Bought bids from which the holds file is written less often
/// ([`App::save_holds`]): some 1 MB of lines.
pub const MANY_BOUGHT: usize = 10_000;
/// How often the holds file is written while [`MANY_BOUGHT`] bids are
/// bought.
pub const MANY_BOUGHT_EVERY_MS: i64 = 10_000;

/// Imps of one request that may get a bid.
pub const MAX_IMPS: usize = 64;

/// A bid id: 128 bits from the thread's CSPRNG, so no one can guess the id
/// of a bid not yet made (and settle it in advance), nor find another's.
/// Loads list members into `store`: the `*.members` files under `data`
/// (each named after its list), then what uploads logged under `state`
/// (later, so a removal uploaded after a file added an id stays removed).
/// A member file naming no list audience of `config`, or with a bad line,
/// refuses the load.
pub fn load_lists(
    store: &audiences::Store,
    config: &config::Config,
    data: Option<&Path>,
    state: Option<&Path>,
) -> Result<(), audiences::ListError> {
    store
        .lists()
        .open(data, state, &|id| list_owner(config, id).map(str::to_owned))?;
    metrics::list_members(store.lists().members());
    Ok(())
}

/// The advertiser of the list audience `id`, if the config has one.
pub fn list_owner<'c>(config: &'c config::Config, id: &str) -> Option<&'c str> {
    config.advertisers.iter().find_map(|a| {
        a.audiences
            .iter()
            .any(|x| x.id == id && matches!(x.kind, config::AudienceKind::List { .. }))
            .then_some(a.id.as_str())
    })
}

/// A batch of shopper events the audiences took
/// ([`App::append_audience_events`]).
#[derive(Debug)]
pub struct Appended {
    pub applied: usize,
    /// Its views and purchases, to attribute.
    pub conversions: Vec<reports::attribution::Conversion>,
    /// Why it is not in the state directory's log, if it could not be
    /// written there: a restart would lose it.
    pub unsaved: Option<std::io::Error>,
}

/// Why a list batch was not applied.
#[derive(Debug, thiserror::Error)]
pub enum MembersError {
    #[error("no list audience has this id")]
    UnknownList,
    #[error("the body is not UTF-8")]
    NotUtf8,
    #[error(transparent)]
    List(#[from] audiences::ListError),
}

/// Another replica's list batches waiting for this config to have their
/// list.
#[derive(Default)]
struct HeldLists {
    items: std::collections::VecDeque<(std::time::Instant, shared::Published)>,
    bytes: usize,
}

impl HeldLists {
    /// Takes the batches `take` picks, in the order they came; the rest
    /// stay held.
    fn take_where(
        &mut self,
        mut take: impl FnMut(&std::time::Instant, &shared::Published) -> bool,
    ) -> Vec<shared::Published> {
        let (taken, kept): (std::collections::VecDeque<_>, _) = std::mem::take(&mut self.items)
            .into_iter()
            .partition(|(at, p)| take(at, p));
        self.items = kept;
        self.bytes = self.items.iter().map(|(_, p)| p.body.len()).sum();
        taken.into_iter().map(|(_, p)| p).collect()
    }
}

/// At most this much is held (pieces are up to 1 MB each).
const HELD_LIST_BYTES: usize = 64 << 20;
/// A config rollout takes minutes; a list still unknown after this is not
/// coming.
const HELD_LIST_FOR: Duration = Duration::from_secs(3600);

impl App {
    pub fn new(
        settings: Settings,
        clock: Arc<dyn Clock>,
        audiences: audiences::Store,
        config_dir: Option<PathBuf>,
    ) -> App {
        let settings_secret = settings.notice_secret.clone().filter(|s| !s.is_empty());
        let url_signatures = settings.url_signatures;
        let settings_pixel_ip = settings.pixel_events_per_ip_per_minute;
        let settings_body_memory = settings.max_body_memory;
        let https_public_url = crate::snapshot::is_https(&settings.public_url);
        let mut public_url_in_attr = String::new();
        creatives::push_attr_in_json(
            crate::notice::without_trailing_slashes(&settings.public_url),
            &mut public_url_in_attr,
        );
        let tracked = crate::track::Seen::new(
            settings.notice_ttl.as_millis() as i64,
            settings.max_tracked_events,
        );
        let ledger: Arc<dyn Ledger> = Arc::new(MemoryLedger::new(settings.ledger.clone()));
        let started_ms = clock.now().as_millis();
        let alone_per_bid = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut signer = match &settings_secret {
            Some(secret) => crate::notice::Signer::writing(secret.as_bytes(), url_signatures),
            None => crate::notice::Signer::writing(&rand::random::<[u8; 32]>(), url_signatures),
        };
        signer.follow(alone_per_bid.clone());
        App {
            snapshot: ArcSwapOption::empty(),
            audiences: Arc::new(audiences),
            books: Books::new(ledger.clone(), None),
            reloading: std::sync::Mutex::new(()),
            refused: std::sync::Mutex::new(None),
            files_read: std::sync::atomic::AtomicU64::new(0),
            ledger,
            clock,
            config_dir,
            settings,
            metrics: metrics::install(),
            signer,
            alone_per_bid,
            price_log: metrics::Throttle::new(Duration::from_secs(10)),
            unavailable_log: metrics::Throttle::new(Duration::from_secs(10)),
            storage_log: metrics::Throttle::new(Duration::from_secs(10)),
            over_log: metrics::Throttle::new(Duration::from_secs(10)),
            audience_log_errors: metrics::Throttle::new(Duration::from_secs(10)),
            tracked,
            events: None,
            mirror: std::sync::OnceLock::new(),
            synced: Default::default(),
            held_lists: std::sync::Mutex::default(),
            state_dir: None,
            audience_log: None,
            report_gate: Arc::new(tokio::sync::Semaphore::new(2)),
            batch_gate: Arc::new(tokio::sync::Semaphore::new(BATCHES_AT_ONCE)),
            ui_failures: crate::ui::Failures::default(),
            login_reads: tokio::sync::Semaphore::new(crate::ui::LOGINS_READ_AT_ONCE),
            api_failures: crate::ui::Failures::default(),
            pixel_limiter: crate::pixel::Limiter::new(crate::pixel::PER_USER_PER_MINUTE),
            pixel_ip_limiter: crate::pixel::Limiter::new(settings_pixel_ip),
            model: ArcSwap::from_pointee(predict::Model::priors_only()),
            draining: std::sync::atomic::AtomicBool::new(false),
            shared: None,
            shader: shading::Shader::new(shading::Params::default())
                .unwrap_or_else(|_| unreachable!("the default parameters are valid")),
            started_ms,
            holds_empty: std::sync::atomic::AtomicBool::new(false),
            holds_writing: std::sync::Mutex::new(()),
            holds_bought: std::sync::atomic::AtomicUsize::new(0),
            holds_saved_ms: std::sync::atomic::AtomicI64::new(i64::MIN),
            frequency_saved_ms: std::sync::atomic::AtomicI64::new(i64::MIN),
            frequency_empty: std::sync::atomic::AtomicBool::new(false),
            frequency_writing: std::sync::Mutex::new(()),
            awaiting: crate::awaiting::Awaiting::default(),
            bid_bodies: crate::body::Held::new(settings_body_memory),
            awaiting_taken_on: std::sync::atomic::AtomicBool::new(false),
            settling: std::sync::atomic::AtomicBool::new(false),
            https_public_url,
            public_url_in_attr,
        }
    }

    /// Shares budgets, charges and frequency caps with other replicas
    /// through Redis. Before [`App::with_journal`], which replays this
    /// replica's journal into it.
    pub fn with_shared_ledger(mut self, ledger: Arc<shared::RedisLedger>) -> App {
        // Under `auto`, URLs other replicas may be sent to are written
        // `per-bid` only while every one of them reads it.
        self.signer.follow(ledger.all_read_per_bid());
        let dynamic: Arc<dyn Ledger> = ledger.clone();
        self.books = Books::new(dynamic.clone(), None);
        self.ledger = dynamic;
        self.shared = Some(ledger);
        self
    }

    /// The shared state's gauges, at each housekeeping tick and each scrape
    /// (a scrape right after Redis went away shows it).
    /// Whether replicas share state through Redis.
    pub(crate) fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    pub fn shared_state_metrics(&self) {
        metrics::url_signatures_per_bid(
            self.signer.writes() == crate::notice::UrlSignatures::PerBid,
        );
        if let Some(s) = &self.shared {
            metrics::shared_state(
                self.ledger.health().unavailable.is_none(),
                s.round_trips(),
                s.leased(),
                s.pending_writes(),
            );
            metrics::audience_not_shared(s.audience_dropped());
        }
        if let Some(m) = self.mirror.get() {
            metrics::report_mirror(m);
        }
        if self.books.journal().is_some() {
            metrics::journal_writable(!self.books.journal_failing());
        }
    }

    /// How far this replica's journals are durable (for the report mirror).
    pub fn synced(&self) -> ledger::synced::Synced {
        self.synced.clone()
    }

    /// Counts of the report mirror (other replicas' files copied here),
    /// for metrics.
    pub fn set_mirror_stats(&self, stats: Arc<shared::MirrorStats>) {
        let _ = self.mirror.set(stats);
    }

    /// Days of reports kept: what [`App::prune_reports`] keeps, and what the
    /// mirror copies.
    pub fn report_keep_days(&self) -> u32 {
        self.settings.report_retention_days.max(91)
    }

    /// Why budgeted line items cannot bid now (the shared state is
    /// unreachable), if so.
    pub fn state_unavailable(&self) -> Option<String> {
        self.ledger.health().unavailable
    }

    /// A writer thread that has ended (a panic): `Some(which)`. This
    /// process can no longer write charges or events, and a restart is
    /// the only way back (`/healthz` says so, for the liveness probe).
    pub fn writer_stopped(&self) -> Option<&'static str> {
        if self.books.journal().is_some_and(|j| j.stopped()) {
            return Some("the charge journal's writer");
        }
        if self.events.as_ref().is_some_and(|e| e.stopped()) {
            return Some("the event journal's writer");
        }
        None
    }

    /// Why charges cannot be written to the journal now, if they cannot
    /// (a full or failing disk): no bids are made until they can.
    pub fn journal_failing(&self) -> Option<String> {
        self.books.journal().and_then(|j| j.failing())
    }

    /// Whether the shared state can be reached, and whether it ever was
    /// since the start (readiness).
    pub fn state_health(&self) -> ledger::Health {
        self.ledger.health()
    }

    /// Makes spend durable: loads the checkpoint and replays the journal in
    /// `dir` into the ledger, and journals every charge from now on.
    pub fn with_journal(self, dir: &Path) -> Result<(App, Replayed), OpenError> {
        let options = JournalOptions {
            min_free_bytes: journal_reserve(self.settings.ledger.max_bids),
            ..JournalOptions::default()
        };
        self.with_journal_storage(dir, options, |s| Box::new(s))
    }

    /// As [`App::with_journal`], with the journal's storage wrapped (tests
    /// inject disk faults this way) and its options given.
    pub fn with_journal_storage(
        mut self,
        dir: &Path,
        mut options: JournalOptions,
        wrap: impl FnOnce(FileStorage) -> Box<dyn Storage>,
    ) -> Result<(App, Replayed), OpenError> {
        options.synced = Some(self.synced.clone());
        let (journal, replayed) =
            Journal::open_with(dir, self.ledger.clone(), self.clock.clone(), options, wrap)?;
        self.books = Books::new(self.ledger.clone(), Some(journal));
        let events = reports::log::EventLog::open(
            dir,
            self.clock.now(),
            reports::log::Options {
                max_entries: self.settings.max_attribution_entries,
                track_ttl: self.settings.notice_ttl,
                synced: Some(self.synced.clone()),
                ..reports::log::Options::default()
            },
        )
        .map_err(|source| OpenError::Io {
            path: reports::log::dir_of(dir),
            source,
        })?;
        if let Some(snap) = self.snapshot.load().as_ref() {
            events.set_catalog(snap.catalog.clone());
        }
        self.events = Some(events);
        let most = self.settings.max_audience_log_bytes;
        self.audience_log = Some(crate::audience_log::AudienceLog::open(dir, most).map_err(
            |source| OpenError::Io {
                path: dir.join(crate::audience_log::DIR),
                source,
            },
        )?);
        self.state_dir = Some(dir.to_path_buf());
        // What the process before held for bids it made: they can still be
        // won, so their budget stays held (`ledger::carried`).
        match ledger::carried::restore(dir, &*self.ledger, self.clock.now()) {
            Ok(c) if c.holdings + c.bought > 0 => tracing::info!(
                holdings = c.holdings,
                line_items_micros = c.line_items.as_i64(),
                until_ms = c.until.map_or(0, |t| t.as_millis()),
                bought_bids = c.bought,
                "budget held by the bids of the process before is held until they can no \
                 longer be won"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(
                error = %e,
                "the holds of the process before were not read: its bids still in flight \
                 hold nothing here"
            ),
        }
        // Its frequency windows, before any bid: caps go on counting
        // (`ledger::frequency`).
        match ledger::frequency::restore(dir, &*self.ledger, self.clock.now()) {
            Ok(r) if r.read == 0 => {}
            Ok(r) if r.taken + r.passed == r.read => tracing::info!(
                windows = r.taken,
                passed = r.passed,
                "frequency windows of the process before taken on: caps go on counting"
            ),
            Ok(r) => tracing::warn!(
                read = r.read,
                passed = r.passed,
                taken = r.taken,
                "frequency windows of the process before taken on in part: the others were \
                 ahead of this clock or past --max-frequency-windows, or this ledger already \
                 counted under a key of its own"
            ),
            Err(e) => tracing::warn!(
                error = %e,
                "the frequency windows of the process before were not read: caps count \
                 afresh from now"
            ),
        }
        Ok((self, replayed))
    }

    /// Writes what bids hold now to the state directory, for the next
    /// process to hold until they can no longer be won: the longest
    /// reservation and the late-win horizon from now. About once a second
    /// ([`App::upkeep`]) and when the server stops (`at_stop`). While many
    /// bids are bought ([`MANY_BOUGHT`]), the upkeep's writes come every
    /// [`MANY_BOUGHT_EVERY_MS`] instead: the file has a line per bought bid
    /// (up to the ledger's lingering bound, some 20 MB), and an exchange
    /// that never sends its billing notices had it rewritten and synced
    /// every second (review finding). A crash then loses up to that long
    /// of changes to what is held.
    pub fn save_holds(&self, at_stop: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(dir) = &self.state_dir else {
            return;
        };
        let window_ms = self.win_wait_ms();
        let _writing = self
            .holds_writing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Read under the lock: whichever write comes last has the holds
        // as they are then.
        let now_ms = self.clock.now().as_millis();
        if !at_stop
            && self.holds_bought.load(Relaxed) >= MANY_BOUGHT
            && now_ms.saturating_sub(self.holds_saved_ms.load(Relaxed)) < MANY_BOUGHT_EVERY_MS
        {
            return;
        }
        let until = Timestamp(now_ms.saturating_add(window_ms));
        let (holdings, bought) = self.ledger.holds_and_bought();
        if self.holds_empty.load(Relaxed) && holdings.is_empty() && bought.is_empty() {
            return;
        }
        self.holds_bought.store(bought.len(), Relaxed);
        self.holds_saved_ms.store(now_ms, Relaxed);
        match ledger::carried::save(dir, &holdings, &bought, until) {
            Ok(n) => self.holds_empty.store(n == 0, Relaxed),
            Err(e) => tracing::warn!(
                error = %e,
                dir = %dir.display(),
                "what bids hold was not written: a restart now would not hold it"
            ),
        }
    }

    /// Writes the frequency windows still counting to the state directory,
    /// for the next process to take on (`ledger::frequency`): from the
    /// server's rounds, on a thread of its own (windows run to millions,
    /// some 72 bytes each: the rounds that expire reservations do not wait
    /// for it), once [`FREQUENCY_SAVE_EVERY_MS`] has passed since the last
    /// write and none is being written; and when the server stops
    /// (`at_stop`, after the one being written). Not every second, as
    /// holds are: what a crash loses is impressions counted, not money.
    pub fn save_frequency(&self, at_stop: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(dir) = &self.state_dir else {
            return;
        };
        let _writing = if at_stop {
            self.frequency_writing
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        } else {
            match self.frequency_writing.try_lock() {
                Ok(g) => g,
                Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => return,
            }
        };
        let now = self.clock.now().as_millis();
        if !at_stop
            && now.saturating_sub(self.frequency_saved_ms.load(Relaxed)) < FREQUENCY_SAVE_EVERY_MS
        {
            return;
        }
        let Some(windows) = self.ledger.frequency(config::Timestamp(now)) else {
            return;
        };
        self.frequency_saved_ms.store(now, Relaxed);
        if self.frequency_empty.load(Relaxed) && windows.is_empty() {
            return;
        }
        match ledger::frequency::save(dir, &windows) {
            Ok(n) => self.frequency_empty.store(n == 0, Relaxed),
            Err(e) => tracing::warn!(
                error = %e,
                dir = %dir.display(),
                "frequency windows were not written: a restart now would count caps afresh"
            ),
        }
    }

    /// What signs notices, tracking URLs and our user cookie.
    pub(crate) fn signer(&self) -> &crate::notice::Signer {
        &self.signer
    }

    /// The state directory, when spend is journaled.
    pub fn state_dir(&self) -> Option<&Path> {
        self.state_dir.as_deref()
    }

    /// The event journal, when spend is journaled.
    pub fn events(&self) -> Option<&reports::log::EventLog> {
        self.events.as_ref()
    }

    /// Waits until every event so far is written (tests, reports of the
    /// running bidder, shutdown).
    pub async fn flush_events(&self) {
        if let Some(e) = &self.events {
            e.flush().await;
        }
    }

    pub fn is_ready(&self) -> bool {
        self.snapshot.load().is_some()
    }

    /// Shutting down: `/readyz` says 503 so load balancers stop sending,
    /// while requests still in flight or already routed are answered.
    pub fn drain(&self) {
        self.draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.snapshot.load_full()
    }

    pub fn ledger(&self) -> &dyn Ledger {
        &*self.ledger
    }

    /// Spend and holds of a line item, seen from today.
    pub fn line_item_spent(&self, id: &str) -> ledger::Spent {
        self.ledger
            .spent(&SpendKey::line_item(id), self.clock.now().date())
    }

    pub fn now(&self) -> config::Timestamp {
        self.clock.now()
    }

    /// Serves this config from the next request on. What it loads and
    /// will not do as meant ([`config_warnings`]) is logged, and returned
    /// for the reload's answer.
    pub fn install(&self, config: config::Config) -> Loaded {
        *self
            .refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        let summary = config.summary();
        let warnings = config_warnings(&config, self.clock.now().date(), &self.settings);
        // Every reload says them again (an order that ended stays ended):
        // bounded, so a config of thousands of ended orders does not
        // flood the log each time the file watch reloads it.
        for why in warnings.iter().take(MAX_LOGGED_WARNINGS) {
            tracing::warn!("{why}");
        }
        if let Some(more) = warnings
            .len()
            .checked_sub(MAX_LOGGED_WARNINGS)
            .filter(|&n| n > 0)
        {
            tracing::warn!("and {more} more warnings: `bidder validate` lists them all");
        }
        self.audiences.set_retention_days(retention_days(&config));
        // What was served before: the config replaced, or at a start the
        // record the last run left.
        let now = self.clock.now();
        let prior = match self.snapshot.load().as_ref() {
            Some(old) => old.served.clone(),
            None => self
                .state_dir
                .as_ref()
                .and_then(|d| crate::served::Served::read(d).ok())
                .unwrap_or_default(),
        };
        let served = crate::served::Served::next(&prior, &config, now, self.settings.notice_ttl);
        // What a restart compares the next config with, and bills removed
        // line items' late wins within (`crate::served`). Written before
        // the config serves: a crash between the two leaves the record
        // ahead of what served, never behind it.
        if let Some(dir) = &self.state_dir {
            if let Err(e) = served.write(dir) {
                tracing::warn!(
                    error = %e,
                    dir = %dir.display(),
                    "the record of the budgets served was not written: a restart checks \
                     budget changes against the record before (or none)"
                );
            }
        }
        let mut snap = Snapshot::compile(config, now, &self.signer);
        snap.served = served;
        metrics::config_loaded(true, snap.items.len());
        if let Some(e) = &self.events {
            e.set_catalog(snap.catalog.clone());
        }
        self.snapshot.store(Some(Arc::new(snap)));
        Loaded { summary, warnings }
    }

    /// Loads `--model` (if given): a missing, corrupt or foreign file
    /// leaves the priors (or the model serving) in place, with a warning,
    /// never a crash. Returns whether a model file was loaded.
    pub fn load_model(&self) -> bool {
        let Some(path) = &self.settings.model_path else {
            return false;
        };
        match predict::Model::load(path) {
            Ok(model) => {
                tracing::info!(
                    path = %path.display(),
                    impressions = model.totals().impressions,
                    "click and conversion model loaded"
                );
                self.model.store(Arc::new(model));
                metrics::model_loaded(true);
                true
            }
            Err(e) => {
                tracing::warn!(
                    path = %path.display(),
                    "click and conversion model not loaded ({e}); value-based line items \
                     bid on {}",
                    if self.model.load().is_priors_only() {
                        "the priors"
                    } else {
                        "the model loaded before"
                    }
                );
                metrics::model_loaded(false);
                false
            }
        }
    }

    /// The model value-based line items are priced with.
    pub fn model(&self) -> Arc<predict::Model> {
        self.model.load_full()
    }

    /// Notes the config files' fingerprint as of a load (`serve`'s first,
    /// and each reload's): a refused set is not retried until it changes.
    pub fn files_read(&self, fingerprint: u64) {
        self.files_read
            .store(fingerprint, std::sync::atomic::Ordering::Relaxed);
    }

    /// The config files' fingerprint as the last load read them.
    pub fn files_last_read(&self) -> u64 {
        self.files_read.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Loads the config directory again. A set with any problem is refused
    /// as a whole and the running config keeps serving.
    pub fn reload(&self) -> Result<Loaded, Problems> {
        // A reload that panicked left nothing half done that this one
        // relies on: it reads the files afresh.
        let _one_at_a_time = self
            .reloading
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.load_model();
        let Some(dir) = &self.config_dir else {
            return Err(Problems(vec![]));
        };
        // Before the files are read: a change made while they are is seen
        // as one by the watch.
        self.files_read(config::fingerprint(dir));
        let loaded = config::load_dir(dir).and_then(|config| {
            // Money rules across the change: checked against what serves now.
            let old = self.snapshot.load();
            // The types of the line items of both configs, read at once,
            // from Redis where this replica has not seen them (a reload
            // runs off the bid path); others (removed ones) as known.
            let ids: Vec<&str> = config
                .line_items()
                .chain(old.iter().flat_map(|s| s.config.line_items()))
                .map(|li| li.id.as_str())
                .collect();
            let kinds = self.ledger.budget_kinds_now(&ids);
            let problems = crate::changes::budget_changes(
                old.as_ref().map(|s| &s.config),
                old.as_ref().map(|s| &s.served),
                &config,
                self.clock.now(),
                &|id| {
                    kinds
                        .get(id)
                        .copied()
                        .or_else(|| self.ledger.budget_kind(id))
                },
            );
            if problems.is_empty() {
                Ok(config)
            } else {
                Err(Problems(problems))
            }
        });
        match loaded {
            Ok(config) => {
                let before = self.snapshot.load().as_ref().map_or(0, |s| s.items.len());
                let mut loaded = self.install(config);
                tracing::info!("config loaded: {}", loaded.summary);
                // Valid, and most likely a mistake (a directory emptied of
                // its advertisers' files by a copy half done): said loudly,
                // in the log and to whoever asked for the reload, since
                // every request then gets no bid (ops probe: it was one
                // info line).
                if loaded.summary.line_items == 0 && before > 0 {
                    let why = format!(
                        "the config loaded has no line items (the one before had {before}): \
                         nothing is bid on until one comes back"
                    );
                    tracing::warn!("{why}");
                    loaded.warnings.push(why);
                }
                Ok(loaded)
            }
            Err(problems) => {
                metrics::config_loaded(false, 0);
                *self
                    .refused
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Refused {
                    at: self.clock.now(),
                    problems: problems.0.len(),
                });
                log_refused(&problems);
                Err(problems)
            }
        }
    }

    /// Parse, check, run the auction, write the answer — within the
    /// request's deadline or not at all — as the default exchange profile.
    pub fn handle_bid(&self, body: &[u8], start: Instant) -> BidAnswer {
        let snap = self.snapshot.load_full();
        let profile = snap.as_deref().and_then(|s| s.profile(None));
        let dialect = profile.map_or(Dialect::default(), |p| p.dialect);
        self.bid_with(snap.as_deref(), profile, body, start, dialect)
    }

    /// As [`App::handle_bid`], for the exchange whose profile (in `snap`,
    /// the snapshot the caller resolved it in) is given. No snapshot or no
    /// profile: not ready. Bids and no-bids are counted for reports. The
    /// answer is written in `dialect`.
    pub fn bid_with(
        &self,
        snap: Option<&Snapshot>,
        profile: Option<&Profile>,
        body: &[u8],
        start: Instant,
        dialect: Dialect,
    ) -> BidAnswer {
        let b = self.bid_inner(snap, profile, body, start, dialect);
        self.answered(profile, b)
    }

    /// As [`App::bid_with`], and when a shared ledger must still confirm
    /// bids (a frequency cap counted across replicas), waits for it within
    /// the request's deadline: a bid it refuses, or that it cannot confirm
    /// in time, is not sent and the request gets no bid (reason
    /// `frequency`).
    pub async fn bid_confirmed(
        &self,
        snap: Option<&Snapshot>,
        profile: Option<&Profile>,
        body: &[u8],
        start: Instant,
        dialect: Dialect,
    ) -> BidAnswer {
        let mut b = self.bid_inner(snap, profile, body, start, dialect);
        if matches!(b.answer, BidAnswer::Bid(..)) {
            let now = b.now.unwrap_or_else(|| self.clock.now());
            if let Some(confirming) = self.ledger.confirm(&b.keys, now) {
                let left = b.deadline.map_or(Duration::from_millis(50), |d| {
                    d.saturating_duration_since(Instant::now())
                });
                let refused = tokio::time::timeout(left, confirming)
                    .await
                    .unwrap_or_else(|_| b.keys.to_vec());
                if !refused.is_empty() {
                    // One answer for the request: rewriting it without the
                    // refused bids is not worth a second auction.
                    self.withdraw(&b.keys);
                    b.answer = BidAnswer::NoBid(if self.state_unavailable().is_some() {
                        NoBid::Unavailable
                    } else {
                        NoBid::Frequency
                    });
                    b.report.clear();
                }
            }
        }
        self.answered(profile, b)
    }

    /// A bid request whose body was not read to its end: no bid, `late`
    /// (it did not come within the longest deadline) or `busy` (it did not
    /// fit in what bodies being read may hold), counted in reports as the
    /// metrics count it (the two disagreed by these).
    pub fn body_unread(&self, profile: Option<&Profile>, reason: NoBid) {
        self.record_answer(profile, &BidAnswer::NoBid(reason), Reported::new(), None);
    }

    /// The answer as it goes out: its first-price bids count for shading
    /// ([`App::sent`]), and it counts for reports.
    fn answered(&self, profile: Option<&Profile>, b: Bidded) -> BidAnswer {
        if let (BidAnswer::Bid(..), Some(profile)) = (&b.answer, profile) {
            self.sent(profile, &b.first_price);
        }
        self.record_answer(profile, &b.answer, b.report, b.now);
        b.answer
    }

    /// Bids reserved but never sent: their holds go. (Shading counts a bid
    /// only once it is sent.)
    fn withdraw(&self, keys: &[BidKey]) {
        for k in keys {
            self.ledger.release(*k);
        }
    }

    /// The first-price bids of an answer that is sent count for shading,
    /// each in its exchange's curve of its slot kind: as a loss until its
    /// win is charged ([`App::notice`]). Counted here rather than kept per
    /// bid until its outcome: nothing to remember, expire or bound per bid.
    fn sent(&self, profile: &Profile, bids: &FirstPrice) {
        for &(slot, price) in bids {
            self.shader
                .observe_bid(&shading::CurveKey::new(&profile.report_id, slot), price);
        }
    }

    /// Bids and no-bids counted for reports.
    fn record_answer(
        &self,
        profile: Option<&Profile>,
        answer: &BidAnswer,
        report: Reported,
        now: Option<Timestamp>,
    ) {
        if let Some(events) = &self.events {
            let now = now.unwrap_or_else(|| self.clock.now()).as_millis();
            match answer {
                BidAnswer::Bid(..) => {
                    for dims in report {
                        events.bid(now, dims);
                    }
                }
                BidAnswer::NoBid(reason) => {
                    let exchange = match profile {
                        Some(p) => p.report_id.clone(),
                        None => crate::snapshot::DEFAULT_EXCHANGE.into(),
                    };
                    events.no_bid(now, exchange, reason.as_str());
                }
                BidAnswer::Invalid(_) => {}
            }
        }
    }

    fn bid_inner(
        &self,
        snap: Option<&Snapshot>,
        profile: Option<&Profile>,
        body: &[u8],
        start: Instant,
        dialect: Dialect,
    ) -> Bidded {
        let none = |answer: BidAnswer| Bidded {
            answer,
            report: Reported::new(),
            keys: BidKeys::new(),
            first_price: FirstPrice::new(),
            deadline: None,
            now: None,
        };
        // Read where it stays: moving the request (some 4 KB) out of a
        // result was a copy a bid.
        let mut slot = None;
        let req = match ortb::parse_request_into(body, &mut slot) {
            Ok(req) => req,
            Err(e) => return none(BidAnswer::Invalid(e.to_string())),
        };
        if let Err(e) = req.validate() {
            return none(BidAnswer::Invalid(e.to_string()));
        }
        let (Some(snap), Some(profile)) = (snap, profile) else {
            return none(BidAnswer::NoBid(NoBid::NotReady));
        };
        let deadline = match self.before_auction(req, profile) {
            Ok(deadline) => deadline,
            Err(reason) => return none(BidAnswer::NoBid(reason)),
        };
        if start.elapsed() >= deadline {
            return none(BidAnswer::NoBid(NoBid::Late));
        }
        let a = match self.auction_in(snap, profile, req, Some(start + deadline), dialect) {
            Ok(answer) => answer,
            Err(reason) => return none(BidAnswer::NoBid(reason)),
        };
        // Work that overran the deadline is thrown away: the exchange has
        // closed its auction and a late bid only costs both sides. Bids
        // never sent hold nothing.
        if start.elapsed() >= deadline {
            self.withdraw(&a.keys);
            return none(BidAnswer::NoBid(NoBid::Late));
        }
        Bidded {
            answer: BidAnswer::Bid(a.json, a.keys.len()),
            report: a.report,
            keys: a.keys,
            first_price: a.first_price,
            deadline: Some(start + deadline),
            now: Some(a.now),
        }
    }

    /// What the endpoint decides before any line item is asked, and
    /// explain with it: no bid when a win could not be recorded (the
    /// journal cannot write; test requests spend nothing) or when the
    /// deadline leaves no time; otherwise how long after its arrival the
    /// answer may take: its `tmax` (else the profile's or the bidder's
    /// default, within `max_tmax`) less the margin for the way back.
    fn before_auction(
        &self,
        req: &ortb::BidRequest<'_>,
        profile: &Profile,
    ) -> Result<Duration, NoBid> {
        if self.books.journal_failing() && !req.is_test() {
            return Err(NoBid::Unavailable);
        }
        // A seat the exchange does not let bid here: its answer would be
        // thrown away with the budget it held.
        if let Some((seat, _)) = &profile.seat {
            let listed = |list: &[std::borrow::Cow<'_, str>]| list.iter().any(|s| s == seat);
            if (!req.wseat.is_empty() && !listed(&req.wseat)) || listed(&req.bseat) {
                return Err(NoBid::Seat);
            }
        }
        let tmax = match req.tmax {
            Some(ms) if ms > 0 => Duration::from_millis(ms as u64).min(self.settings.max_tmax),
            _ => profile
                .tmax_default
                .unwrap_or(self.settings.default_tmax)
                .min(self.settings.max_tmax),
        };
        let deadline = tmax.saturating_sub(self.settings.tmax_margin);
        if deadline.is_zero() {
            return Err(NoBid::Late);
        }
        Ok(deadline)
    }

    /// The auction for a parsed, valid request: one bid per imp at most.
    /// Returns the BidResponse and the bids it holds budget for, which
    /// count as sent for shading (the benches' path: nothing sends them).
    pub fn auction(
        &self,
        req: &ortb::BidRequest<'_>,
    ) -> Result<(crate::AnswerBuf, BidKeys), NoBid> {
        let guard = self.snapshot.load();
        let Some(snap) = guard.as_ref() else {
            return Err(NoBid::NotReady);
        };
        let Some(profile) = snap.profile(None) else {
            return Err(NoBid::NotReady);
        };
        self.auction_in(snap, profile, req, None, profile.dialect)
            .map(|a| {
                self.sent(profile, &a.first_price);
                (a.json, a.keys)
            })
    }

    /// The context of a request as an exchange sends it: the currency its
    /// answer is priced in (`None`: none we can price in), its default VAST
    /// version.
    fn context<'r>(
        &self,
        snap: &'r Snapshot,
        profile: &Profile,
        req: &'r ortb::BidRequest<'r>,
    ) -> (Context<'r>, bool) {
        let mut ctx = Context::new(req, self.clock.now(), &self.settings.privacy);
        // Rates older than the limit price nothing: a stale rate would bid,
        // and book spend, at yesterday's value of the currency. Rates dated
        // as far ahead are no fresher: a year typed wrong (2031) would
        // otherwise keep them "fresh" for years.
        ctx.rates = snap.config.currency_rates.as_ref().filter(|r| {
            (ctx.today.days_since_epoch() - r.as_of.days_since_epoch()).abs()
                <= i64::from(r.max_age_days.unwrap_or(self.settings.max_rates_age_days))
        });
        let seat = profile.seat.as_ref().map(|(s, _)| s.as_str());
        let currency = Currency::of_request_with_deals(req, ctx.rates, |d| {
            snap.buys_in_deal(&d.id)
                && (d.wseat.is_empty() || seat.is_none_or(|s| d.wseat.iter().any(|w| w == s)))
        });
        ctx.currency = currency.unwrap_or(Currency::USD);
        ctx.vast_default = profile.vast_default;
        ctx.https_trackers = self.https_public_url;
        ctx.buys_native = snap.buys_native;
        (ctx, currency.is_some())
    }

    /// As [`App::auction`], for one exchange, giving up (no bid, nothing
    /// held) once `deadline` passes: checked before every imp but the
    /// first (whose caller has just checked it) and every batch of
    /// candidates, so one request cannot keep a core past its deadline.
    fn auction_in(
        &self,
        snap: &Snapshot,
        profile: &Profile,
        req: &ortb::BidRequest<'_>,
        deadline: Option<Instant>,
        dialect: Dialect,
    ) -> Result<Auctioned, NoBid> {
        let (ctx, priced) = self.context(snap, profile, req);
        if let Some(r) = ctx.restriction {
            metrics::privacy_restricted(r);
        }
        // A request that allows only currencies without a rate gets no bid
        // rather than a bid it cannot accept.
        if !priced {
            return Err(NoBid::Currency);
        }
        if let Some(stop) = ctx.dsa_stop() {
            return Err(stop);
        }
        let model = self.model.load();
        let stores = Stores {
            audiences: &self.audiences,
            ledger: &*self.ledger,
            warm: std::cell::Cell::new(None),
            count_everywhere: None,
            blocked: select::blocked_memo(req),
            market: select::Market {
                model: &model,
                shader: &self.shader,
                exchange: &profile.report_id,
                first_price: req.auction_type() == 1,
                seat: profile.seat.as_ref().map(|(s, _)| s.as_str()),
                explore: true,
            },
        };
        // Nearly every request has one imp and makes one bid: these lists
        // stay off the heap until a second.
        let mut choices: smallvec::SmallVec<[(usize, Choice); 1]> = smallvec::SmallVec::new();
        let mut bid_ids: smallvec::SmallVec<[ledger::BidId; 1]> = smallvec::SmallVec::new();
        let mut keys = BidKeys::new();
        let mut first_price = FirstPrice::new();
        let mut furthest: Option<Stop> = None;
        // An ad pod (imps sharing `podid`) never carries two spots of one
        // advertiser: each pod remembers who already has a slot in it.
        let mut pods: Vec<(&str, Vec<usize>)> = Vec::new();
        // Line items that bid on as many imps of this request as they may.
        let mut bids_of: smallvec::SmallVec<[(usize, usize); 2]> = smallvec::SmallVec::new();
        let mut full: smallvec::SmallVec<[usize; 2]> = smallvec::SmallVec::new();
        let now_ms = ctx.now.as_millis();
        let after = |d: Duration| Timestamp(now_ms.saturating_add(d.as_millis() as i64));
        let (expires, forget) = (
            after(
                profile
                    .reservation_ttl
                    .unwrap_or(self.settings.reservation_ttl),
            ),
            after(self.settings.notice_ttl),
        );
        // Imps past the first MAX_IMPS get no bid: no exchange offers more
        // in one request, and each costs a candidate walk.
        for (i, imp) in req.imp.iter().enumerate().take(MAX_IMPS) {
            // Not before the first: the caller has just looked at the clock
            // (`bid_inner`, after parsing), and looks again once the
            // auction is over, withdrawing what overran.
            if i > 0 && deadline.is_some_and(|d| Instant::now() >= d) {
                self.withdraw(&keys);
                return Err(NoBid::Late);
            }
            // This imp's bid id, if it bids: drawn now, so that the first
            // line item to pass the room check can have the ledger fetch
            // where its reservation will go (`Stores::warm`) while the
            // rest of the checks and the pricing run. The id's mark for
            // first price changes only its low bits, not its key.
            let random: u128 = rand::random();
            stores
                .warm
                .set((!ctx.test).then(|| ledger::BidId::key_of(random)));
            let pod = imp
                .video
                .as_deref()
                .and_then(|v| v.podid.as_deref())
                .or_else(|| imp.audio.as_deref().and_then(|a| a.podid.as_deref()));
            let taken: &[usize] = pod
                .and_then(|p| pods.iter().find(|(id, _)| *id == p))
                .map_or(&[], |(_, advs)| advs.as_slice());
            let exclude = Exclude {
                advertisers: taken,
                items: &full,
            };
            let mut choice = match select::select_imp(snap, &ctx, imp, &stores, exclude, deadline) {
                Ok(choice) => choice,
                Err(stop) if stop.reason == NoBid::Late => {
                    // The imps chosen before are not sent either: their
                    // holds go.
                    self.withdraw(&keys);
                    return Err(NoBid::Late);
                }
                Err(stop) => {
                    // Over imps too, the furthest any line item got is the
                    // reason, as explain gives it.
                    if stop.deeper(furthest) {
                        furthest = Some(stop);
                    }
                    continue;
                }
            };
            let item = &snap.items[choice.item];
            // A first-price bid's id says so, for its win to find its
            // shading curve.
            let id = crate::first_price::bid_id(
                random,
                choice
                    .pricing
                    .first_price
                    .then(|| select::slot_kind(item.media)),
            );
            let key = id.key();
            // The winner's features ride in its tracking URLs for training
            // (value-based line items have them from their pricing). Not
            // the audience kind, though: the same id on every bid of a
            // kind, it told whoever saw the URLs (a page, an exchange)
            // which bids were for a retargeting list. It is put back when
            // an event is tracked, from the audience token (`App::track`).
            match &mut choice.pricing.features {
                None => {
                    choice.pricing.features =
                        select::candidate_features(snap, &ctx, &stores.market, item, &choice, None);
                }
                Some(f) => {
                    if let Some(a) = choice.audience {
                        let kind = snap.config.advertisers[item.advertiser].audiences[a]
                            .kind
                            .as_str();
                        *f = f.without(stores.market.model.hasher().audience_kind_id(kind));
                    }
                }
            }
            // Each bid holds what it may cost, within budgets, the pacing
            // plan and the frequency cap, until its notice comes or its time
            // is up: bids in flight can never together pass a budget. It is
            // held before the next imp is chosen, which then sees it. Test
            // requests spend nothing and hold nothing.
            if !ctx.test {
                let hold = ledger::Hold {
                    bid: key,
                    day: ctx.today,
                    cost: ledger::impression_cost(choice.price),
                    limits: select::limits(item, Some(&ctx)),
                    frequency: item.frequency.and_then(|cap| {
                        Some(ledger::FrequencyHold {
                            user: ctx.visitor.user?,
                            cap: cap.impressions,
                            window_ms: i64::from(cap.per_hours) * select::HOUR_MS,
                        })
                    }),
                    expires,
                    forget,
                };
                if let Err(refusal) = self.ledger.reserve(&hold, ctx.now) {
                    // Priced, then refused: as far as a line item gets.
                    let stop = Stop::new(Check::Price, select::refused(refusal));
                    if stop.deeper(furthest) {
                        furthest = Some(stop);
                    }
                    continue;
                }
                if let Some(s) = &choice.pricing.shading {
                    metrics::shading_decision(s.reason);
                }
                if choice.pricing.first_price {
                    first_price.push((select::slot_kind(item.media), choice.price.as_i64()));
                }
            }
            match bids_of.iter_mut().find(|(it, _)| *it == choice.item) {
                Some((_, n)) => *n += 1,
                None => bids_of.push((choice.item, 1)),
            }
            if bids_of
                .iter()
                .any(|&(it, n)| it == choice.item && n >= self.settings.max_bids_per_line_item)
            {
                full.push(choice.item);
            }
            if let Some(p) = pod {
                let adv = item.advertiser;
                match pods.iter_mut().find(|(id, _)| *id == p) {
                    Some((_, advs)) => advs.push(adv),
                    None => pods.push((p, vec![adv])),
                }
            }
            choices.push((i, choice));
            bid_ids.push(id);
            keys.push(key);
        }
        if choices.is_empty() {
            return Err(furthest.map_or(NoBid::Media, |s| s.reason));
        }
        // The answer's `bidid` is its first bid's id: unique as that one
        // is, and a second random id (and its hex) cost each bid some 130
        // instructions for a field exchanges only log.
        let json = respond::Answer {
            snap,
            req,
            public_url: &self.settings.public_url,
            public_url_in_attr: &self.public_url_in_attr,
            privacy_url: self.settings.privacy_url.as_deref(),
            test: ctx.test,
            now: ctx.now,
            signer: &self.signer,
            profile,
            currency: ctx.currency,
            user: ctx.visitor.user.filter(|_| ctx.measurement),
            dsa: ctx.dsa.wanted(),
            dialect,
        }
        .write(&choices, &bid_ids, bid_ids[0].as_str());
        let report: Reported = if ctx.test {
            Reported::new()
        } else {
            choices
                .iter()
                .map(|(_, c)| {
                    let item = &snap.items[c.item];
                    let r = &item.report;
                    // Field by field, not the line item's cloned and then
                    // overwritten: each clone is an atomic count shared
                    // with every thread bidding for the line item.
                    reports::Dims {
                        advertiser: r.advertiser.clone(),
                        order: r.order.clone(),
                        line_item: r.line_item.clone(),
                        creative: snap.creative_ids[item.advertiser][c.creative].clone(),
                        exchange: profile.report_id.clone(),
                        keyword: c
                            .keyword
                            .as_ref()
                            .map_or_else(|| r.keyword.clone(), |k| k.as_str().into()),
                        audience: c.audience.map_or_else(
                            || r.audience.clone(),
                            |a| snap.audience_labels[item.advertiser][a].clone(),
                        ),
                        product: r.product.clone(),
                    }
                })
                .collect()
        };
        Ok(Auctioned {
            json,
            keys,
            report,
            first_price,
            now: ctx.now,
        })
    }

    /// A tracking URL called: counts its event once per bid (never for test
    /// bids, nor once it has expired) and says where a click goes. Counts
    /// nothing and charges nothing for a URL we did not sign.
    pub fn track(
        &self,
        path: crate::track::Path,
        query: &str,
    ) -> Result<TrackAnswer, crate::track::TrackError> {
        use crate::track::Event;
        let t = match crate::track::verify(path, query, &self.signer) {
            Ok(t) => t,
            Err(e) => {
                metrics::tracking_refused("signature");
                return Err(e);
            }
        };
        let now = self.clock.now().as_millis();
        let ttl = self.settings.notice_ttl.as_millis() as i64;
        // A spot's progress (start, quartiles, complete...) of a bid whose
        // loss notice came is someone's who saw the markup: it counted, and
        // took the (bid, event) pair, so the real playback after a win was
        // a duplicate (video probe). One of a bid not won yet counts but
        // takes nothing: an exchange that charges on its billing notice may
        // send it after the player started (review), and a call before the
        // win leaves the playback after it to count. A bid not known here
        // (another replica's, or forgotten) counts as before.
        let outcome = match t.event {
            Event::Impression | Event::Click => None,
            _ => Some(self.ledger.outcome(ledger::BidId::key_of(t.bid))),
        };
        let counted = if t.test {
            false
        } else if now.saturating_sub(t.at_ms) > ttl {
            metrics::tracking_refused("expired");
            false
        } else if outcome == Some(ledger::Outcome::Lost) {
            metrics::tracking_refused("lost");
            false
        } else if outcome == Some(ledger::Outcome::InFlight) {
            metrics::tracking_event(t.event);
            true
        } else if !self.tracked.first(t.bid, t.event, now) {
            metrics::tracking_refused("duplicate");
            false
        } else if matches!(t.event, Event::Impression | Event::Click) {
            // Reports count it once its bid is won (`crate::awaiting`).
            let dims = self.track_dims(&t);
            let event = crate::awaiting::Waiting {
                at_ms: now,
                user: t.user_key(),
                click: t.event == Event::Click,
                bid: t.bid,
                features: t
                    .features
                    .map(|f| self.with_audience_kind(f, &dims.audience))
                    .map(|f| f.to_compact().as_str().into()),
                dims,
            };
            match self.ledger.outcome(ledger::BidId::key_of(t.bid)) {
                // With Redis the same call may reach another replica too:
                // the replica that claims it first records it. A click is
                // claimed now (the server runs clicks on a blocking thread
                // with Redis), so that it is on disk before its redirect,
                // as alone; an impression at the next settling round
                // (`settle_awaiting`, within a second), with the others.
                ledger::Outcome::Charged if self.shared.is_some() => match t.event {
                    Event::Click => self.claim_and_record(event),
                    _ => {
                        self.await_charge(event, true);
                        false
                    }
                },
                ledger::Outcome::Charged => {
                    self.record_tracked(event, None);
                    true
                }
                // Alone, every charge of the notice lifetime is known
                // (replayed from the journal at a start): a bid not known
                // is not charged, yet. With Redis, one another replica made
                // is asked after in Redis (`settle_awaiting`).
                outcome => {
                    self.await_charge(event, outcome == ledger::Outcome::Won);
                    false
                }
            }
        } else {
            metrics::tracking_event(t.event);
            true
        };
        let redirect = if t.event == Event::Click && t.redirect {
            // Only the creative's own click URL, as the config has it now.
            let snap = self.snapshot.load();
            match snap.as_ref().and_then(|s| s.creative(&t.creative)) {
                Some(c) => Some(c.click_url.clone()),
                None => return Ok(TrackAnswer::Gone { counted }),
            }
        } else {
            None
        };
        Ok(match redirect {
            Some(url) => TrackAnswer::Redirect { url, counted },
            None => TrackAnswer::Counted { counted },
        })
    }

    /// An impression or click of a bid charged (or, with Redis, not known
    /// here) into reports and attribution. `until`: for an event claimed
    /// in Redis, on a blocking thread, how long it may wait for room in
    /// the writer's queue (dropped for a full queue, it would be counted
    /// on no replica); `None` drops it at once, as ever.
    fn record_tracked(&self, e: crate::awaiting::Waiting, until: Option<Instant>) {
        metrics::tracking_event(e.event());
        if let Some(events) = &self.events {
            events.track_with(e.at_ms, e.dims, e.user, e.click, e.bid, e.features, until);
        }
    }

    /// With Redis: records `e` if this replica claims it first (or Redis
    /// does not answer); whether it did. Blocks for Redis's answer (at
    /// most its timeout): only from a blocking thread.
    fn claim_and_record(&self, e: crate::awaiting::Waiting) -> bool {
        let Some(shared) = &self.shared else {
            self.record_tracked(e, None);
            return true;
        };
        // Written as a settling round writes it: claimed here, or not
        // answered for (then perhaps on no other replica either).
        let until = Instant::now() + Duration::from_secs(1);
        let mut recorded = false;
        for e in claimed(shared, vec![e]) {
            self.record_tracked(e, Some(until));
            recorded = true;
        }
        recorded
    }

    /// Whether tracking calls are claimed in Redis (several replicas).
    pub(crate) fn claims_tracking(&self) -> bool {
        self.shared.is_some()
    }

    /// Puts an impression or click to wait for its bid's charge (`won`: the
    /// bid is known won, billed on a later notice).
    fn await_charge(&self, e: crate::awaiting::Waiting, won: bool) {
        metrics::tracking_refused_n("awaiting_full", self.awaiting.wait(e, won));
    }

    /// Takes on the impressions and clicks the process before left waiting
    /// for their bids' charge (`crate::awaiting::saved`): they wait here.
    /// Called once the start can no longer fail, right before serving:
    /// the file is removed as it is read, and a start refused after that
    /// (a config, Redis) lost what it held.
    pub fn take_on_awaiting(&self) {
        let Some(dir) = &self.state_dir else {
            return;
        };
        if self
            .awaiting_taken_on
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            return;
        }
        match crate::awaiting::saved::restore(dir) {
            Ok(r) if r.events.is_empty() && r.skipped == 0 => {}
            Ok(r) => {
                let read = r.events.len();
                for (e, won) in r.events {
                    // Counted once: the same call again is a duplicate here
                    // as it was there.
                    self.tracked.first(e.bid, e.event(), e.at_ms);
                    self.await_charge(e, won);
                }
                match r.skipped {
                    0 => tracing::info!(
                        events = read,
                        "impressions and clicks the process before left waiting for their \
                         bids' charge wait here"
                    ),
                    skipped => tracing::warn!(
                        events = read,
                        skipped,
                        "impressions and clicks the process before left waiting taken on in \
                         part: lines of its file could not be read"
                    ),
                }
            }
            Err(e) => {
                // Set aside, so that this process's stop does not write
                // over (or remove) what it could not read.
                let path = dir.join(crate::awaiting::saved::FILE);
                let aside = path.with_extension("jsonl.unreadable");
                let kept = std::fs::rename(&path, &aside).is_ok();
                tracing::warn!(
                    error = %e,
                    aside = kept.then(|| aside.display().to_string()),
                    "the impressions and clicks the process before left waiting for their \
                     bids' charge were not read: they will not count"
                );
            }
        }
        metrics::tracking_awaiting(self.awaiting.len());
    }

    /// Writes the impressions and clicks still waiting for their bids'
    /// charge to the state directory, for the next process to go on waiting
    /// for it (`crate::awaiting::saved`); the table is left empty. When the
    /// server stops, after [`App::settle_awaiting`] counted those charged.
    pub fn save_awaiting(&self) {
        let Some(dir) = &self.state_dir else {
            return;
        };
        // Not taken on: the file is still the process before's, whole.
        if !self
            .awaiting_taken_on
            .load(std::sync::atomic::Ordering::Acquire)
        {
            return;
        }
        let events = self.awaiting.drain();
        metrics::tracking_awaiting(0);
        match crate::awaiting::saved::save(dir, &events) {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                events = n,
                "impressions and clicks still waiting for their bids' charge written for the \
                 next process"
            ),
            Err(e) => tracing::warn!(
                error = %e,
                dir = %dir.display(),
                events = events.len(),
                "impressions and clicks still waiting for their bids' charge were not written: \
                 they will not count"
            ),
        }
    }

    /// How long an impression or click waits for its bid's charge
    /// (`crate::awaiting`), and how long the next process holds what this
    /// one's bids held (`save_holds`): the longest reservation, then the
    /// horizon within which late wins come.
    fn win_wait_ms(&self) -> i64 {
        let longest_secs = self
            .snapshot
            .load()
            .as_ref()
            .and_then(|s| s.config.longest_reservation_ttl_secs())
            .unwrap_or(0);
        let longest = self
            .settings
            .reservation_ttl
            .max(Duration::from_secs(u64::from(longest_secs)));
        i64::try_from(longest.as_millis())
            .unwrap_or(i64::MAX)
            .saturating_add(self.settings.ledger.late_horizon_ms)
    }

    /// Impressions and clicks waiting for their bids' charge: recorded
    /// when charged (here, or elsewhere as the ledger has heard since),
    /// dropped when their wait is over ([`App::win_wait_ms`] after the
    /// event, the notice lifetime for a bid won and billed later). From the
    /// upkeep, and when the server stops (what still waits then goes to
    /// the next process: [`App::save_awaiting`]).
    pub fn settle_awaiting(&self) {
        use std::sync::atomic::Ordering::{Acquire, Release};
        // One at a time: the rounds do not wait for one asking Redis.
        if self.settling.swap(true, Acquire) {
            return;
        }
        self.settle_awaiting_now();
        self.settling.store(false, Release);
    }

    fn settle_awaiting_now(&self) {
        let now = self.clock.now().as_millis();
        let notice_ttl = i64::try_from(self.settings.notice_ttl.as_millis()).unwrap_or(i64::MAX);
        let wait = self.win_wait_ms();
        // With Redis, a bid this replica does not know may be another's,
        // won and billed later, which only that one can tell: the long
        // wait. Alone, a bid not known is not charged yet: the short one.
        let unknown_wait = match self.shared {
            Some(_) => notice_ttl,
            None => wait,
        };
        let local = |bid| self.ledger.outcome(ledger::BidId::key_of(bid));
        // With Redis, the charges of bids other replicas made are known in
        // Redis only: one round trip for the waiting bids not known charged
        // here (outside the table's lock: tracking calls go on meanwhile).
        let elsewhere: std::collections::HashSet<u128> = match &self.shared {
            Some(_) => {
                let asked: Vec<u128> = self
                    .awaiting
                    .bids(MAX_ASKED_A_ROUND)
                    .into_iter()
                    .filter(|&b| local(b) != ledger::Outcome::Charged)
                    .collect();
                let keys: Vec<BidKey> = asked.iter().map(|&b| ledger::BidId::key_of(b)).collect();
                match self.ledger.charged_anywhere(&keys) {
                    Some(charged) => asked
                        .into_iter()
                        .zip(charged)
                        .filter_map(|(b, c)| c.then_some(b))
                        .collect(),
                    None => Default::default(),
                }
            }
            None => Default::default(),
        };
        let settled = self
            .awaiting
            .settle(now, wait, unknown_wait, notice_ttl, |bid| {
                match elsewhere.contains(&bid) {
                    true => ledger::Outcome::Charged,
                    false => local(bid),
                }
            });
        let won = match &self.shared {
            // Recorded where claimed: a call made to two replicas (a pixel
            // retried through another pod) waits on both for the charge.
            Some(shared) if !settled.won.is_empty() => claimed(shared, settled.won),
            _ => settled.won,
        };
        // Alone nothing was claimed: a full queue drops as it always did,
        // and the upkeep this round runs in does not wait on it.
        let until = self
            .shared
            .as_ref()
            .map(|_| Instant::now() + Duration::from_secs(1));
        for e in won {
            self.record_tracked(e, until);
        }
        metrics::tracking_refused_n("not_won", settled.dropped);
        metrics::tracking_awaiting(self.awaiting.len());
    }

    /// A tracked bid's features as it was priced: its URLs leave the
    /// audience kind out (see `auction_in`), and `audience` (`kind:id`,
    /// what its token stands for, empty for none) puts it back. Features
    /// of another model's seed, or of an audience gone from the config,
    /// stay as they came.
    fn with_audience_kind(&self, f: predict::Features, audience: &str) -> predict::Features {
        let Some((kind, _)) = audience.split_once(':') else {
            return f;
        };
        let model = self.model();
        if !model.hasher().hashed(&f) {
            return f;
        }
        f.with(model.hasher().audience_kind_id(kind))
    }

    /// Waits (a few seconds at most) until the clicks counted so far are
    /// on disk. A browser never sends a click again: one answered and then
    /// lost to a crash was gone from every report. Impressions stay
    /// batched (ten to a thousand times as many, and a pixel's answer is
    /// on the page's critical path).
    pub async fn clicks_written(&self) {
        if let Some(events) = &self.events {
            // A barrier, not a flush: a flush per click would write the
            // bid counts once a click rather than once a second, and wait
            // out the read-back at start.
            let _ = tokio::time::timeout(Duration::from_secs(2), events.barrier()).await;
        }
    }

    /// What reports count a tracked event under: its ad as signed, the
    /// advertiser as the config has the line item in its signed order now
    /// (`Snapshot::signed_advertiser`: a line item's id given to another
    /// advertiser's made the old ad's impressions and clicks that
    /// advertiser's touches, and its sales attributed to them, review
    /// finding).
    fn track_dims(&self, t: &crate::track::Tracked) -> reports::Dims {
        let snap = self.snapshot.load();
        let item = snap
            .as_ref()
            .and_then(|s| s.signed_item(&t.line_item, &t.order, &t.creative));
        reports::Dims {
            advertiser: snap.as_ref().map_or_else(
                || "".into(),
                |s| s.signed_advertiser(&t.line_item, &t.order, &t.creative),
            ),
            order: t.order.as_str().into(),
            line_item: t.line_item.as_str().into(),
            creative: t.creative.as_str().into(),
            exchange: t.exchange.as_str().into(),
            keyword: t.keyword.as_deref().unwrap_or_default().into(),
            audience: self.audience_of(
                snap.as_deref(),
                item,
                t.audience.as_deref(),
                hex::Buffer::<16>::new().format(&t.bid.to_be_bytes()),
            ),
            product: "".into(),
        }
    }

    /// The audience (`kind:id`) a signed URL's token stands for: the one
    /// of the line item's advertiser whose token it is. Empty for none,
    /// and once the audience has left the config.
    /// `bid_id` is the bid's id as its URLs carry it: each bid's token is
    /// its own (`notice::bid_audience_token`).
    fn audience_of(
        &self,
        snap: Option<&Snapshot>,
        item: Option<&crate::snapshot::Item>,
        token: Option<&str>,
        bid_id: &str,
    ) -> Arc<str> {
        let (Some(snap), Some(item), Some(token)) = (snap, item, token) else {
            return "".into();
        };
        let labels = &snap.audience_labels[item.advertiser];
        snap.audience_tokens[item.advertiser]
            .iter()
            .position(|t| crate::notice::is_audience_token(&self.signer, bid_id, t, token))
            .map_or_else(|| "".into(), |a| labels[a].clone())
    }

    /// Drops report history past `--report-retention-days`.
    pub fn prune_reports(&self) {
        let Some(state) = &self.state_dir else {
            return;
        };
        // Attribution reads back 90 days: what it needs is never pruned.
        let keep = self.report_keep_days();
        match reports::query::prune(state, self.clock.now(), keep) {
            Ok(p) if p.event_days + p.generations > 0 => tracing::info!(
                event_days = p.event_days,
                generations = p.generations,
                "report history past its retention removed"
            ),
            Ok(_) => {}
            Err(e) => tracing::error!("report history not pruned: {e}"),
        }
    }

    /// Drops audience events past the retention; returns how many.
    pub fn prune_audiences(&self) -> usize {
        let now = self.clock.now();
        if let Some(log) = &self.audience_log {
            log.prune(self.audiences.retention_days(), now.date());
        }
        self.audiences.prune(now)
    }

    /// Syncs the audience events written since the last sync (pixel calls,
    /// other replicas'): from the upkeep, and when the server stops.
    pub fn sync_audience_log(&self) {
        if let Some(log) = &self.audience_log {
            if let Err(e) = log.sync() {
                tracing::error!("audience events not synced to the state directory: {e}");
            }
            metrics::audience_log_bytes(log.bytes());
        }
    }

    /// Appends a batch of audience events (JSON lines): all of it or, on
    /// the first bad line, none of it. Returns how many were applied and
    /// the views and purchases to attribute ([`App::attribute`]). A
    /// purchase amount in a currency without a rate refuses the batch.
    /// Kept in the state directory for a restart: `durable`, synced before
    /// this returns (an upload, answered once it is on disk), else with the
    /// next upkeep (a pixel call).
    pub fn append_audience_events(
        &self,
        text: &str,
        durable: bool,
    ) -> Result<Appended, audiences::DataError> {
        let conversions = self.conversions("request body", text)?;
        let now = self.clock.now();
        let n = self.audiences.append_jsonl("request body", text, now)?;
        // Logged after the store took it: a batch it refuses never is. One
        // the log cannot take is applied all the same (an upload's retry
        // adds nothing twice) and said to be unsaved. A pixel call's batch
        // only when it taught the store something (a re-sent one would
        // grow the log with nothing a restart needs); an upload always:
        // its retry after a 503 teaches nothing new, and must still be on
        // disk before it is answered (review finding).
        let unsaved = match &self.audience_log {
            Some(log) if n > 0 || durable => log.append(text, now, durable).err(),
            _ => None,
        };
        metrics::audience_events(n);
        // Handed on only when it taught this store something: a batch
        // that added nothing (duplicates, shoppers older than a full
        // store's) would only grow the others' logs, read back at each of
        // their starts.
        if let (Some(s), true) = (&self.shared, n > 0) {
            s.publish(PEER_EVENTS, "", text);
        }
        Ok(Appended {
            applied: n,
            conversions,
            unsaved,
        })
    }

    /// Audience data another replica applied (shopper events, list
    /// members): applied here the same way, not handed on again, and not
    /// attributed again (the replica that took it did). A batch this
    /// replica cannot apply (a list its config does not have yet) is
    /// logged and skipped.
    pub fn apply_peer_audience(&self, p: &shared::Published) {
        let applied = match p.topic.as_str() {
            PEER_EVENTS => {
                let now = self.clock.now();
                let applied = self
                    .audiences
                    .append_jsonl("another replica", &p.body, now)
                    .map_err(|e| e.to_string());
                // Kept as this replica's own: a restart resumes the stream
                // after it, and would not read it again. Only what the
                // store took: a batch that added nothing (known, or older
                // than a full store's shoppers) needs no place in the log.
                if let Ok(n) = &applied {
                    metrics::audience_events(*n);
                }
                if let (Ok(1..), Some(log)) = (&applied, &self.audience_log) {
                    if let Err(e) = log.append(&p.body, now, false) {
                        // At most once per 10 s: at the log's bound every
                        // batch of a flood would say it (review finding).
                        self.audience_log_errors.warn(|suppressed| {
                            tracing::error!(
                                suppressed,
                                "another replica's audience events not saved for a restart: {e}"
                            );
                        });
                    }
                }
                applied.map(|_| ())
            }
            PEER_LIST => match self.list_owner(&p.key) {
                Some(advertiser) => {
                    // Batches of this list held before the config had it
                    // came first: applied first (the last line of an id
                    // wins, so a removal must not go before its add).
                    for held in self.take_held(&p.key) {
                        self.apply_peer_audience(&held);
                    }
                    self.audiences
                        .lists()
                        .apply_jsonl(&advertiser, &p.key, "another replica", &p.body)
                        .map(|_| metrics::list_members(self.audiences.lists().members()))
                        .map_err(|e| e.to_string())
                }
                None => {
                    self.hold_list(p);
                    Ok(())
                }
            },
            other => Err(format!("unknown topic {other:?}")),
        };
        if let Err(e) = applied {
            tracing::warn!(entry = %p.id, topic = %p.topic, "another replica's audience data not applied here: {e}");
        }
    }

    /// Keeps another replica's batch for a list this config lacks: the
    /// other replica may run a newer config, which reaches this one soon.
    fn hold_list(&self, p: &shared::Published) {
        let mut held = self.held_lists.lock().unwrap_or_else(|e| e.into_inner());
        held.bytes += p.body.len();
        held.items.push_back((std::time::Instant::now(), p.clone()));
        while held.bytes > HELD_LIST_BYTES {
            let Some((_, old)) = held.items.pop_front() else {
                break;
            };
            held.bytes -= old.body.len();
            tracing::warn!(entry = %old.id, list = %old.key, "another replica's list batch dropped: too many wait for lists this config lacks");
        }
        tracing::info!(entry = %p.id, list = %p.key, "another replica's list batch held: no list audience of that id in this replica's config yet");
    }

    /// The stream entry of the oldest batch held: a restart must read the
    /// stream again from it (held batches are only in memory).
    pub fn oldest_held(&self) -> Option<String> {
        let held = self.held_lists.lock().unwrap_or_else(|e| e.into_inner());
        held.items.front().map(|(_, p)| p.id.clone())
    }

    /// The held batches of list `key`, in the order they came, no longer
    /// held.
    fn take_held(&self, key: &str) -> Vec<shared::Published> {
        let mut held = self.held_lists.lock().unwrap_or_else(|e| e.into_inner());
        if !held.items.iter().any(|(_, p)| p.key == key) {
            return Vec::new();
        }
        held.take_where(|_, p| p.key == key)
    }

    /// Applies the held list batches whose list the config now has (in the
    /// order they came); lets go of those held past an hour.
    pub fn retry_held_lists(&self) {
        let ready: Vec<shared::Published> = {
            let mut held = self.held_lists.lock().unwrap_or_else(|e| e.into_inner());
            if held.items.is_empty() {
                return;
            }
            let ready = held.take_where(|_, p| self.list_owner(&p.key).is_some());
            for p in held.take_where(|at, _| at.elapsed() > HELD_LIST_FOR) {
                tracing::warn!(entry = %p.id, list = %p.key, "another replica's list batch dropped: this replica's config never had its list");
            }
            ready
        };
        for p in &ready {
            self.apply_peer_audience(p);
        }
    }

    /// The win-probability curves first-price bids are shaded with.
    pub fn shader(&self) -> &shading::Shader {
        &self.shader
    }

    /// The advertiser of the list audience `id`, if the config has one.
    pub fn list_owner(&self, id: &str) -> Option<String> {
        let snap = self.snapshot.load();
        snap.as_ref()
            .and_then(|s| list_owner(&s.config, id).map(str::to_owned))
    }

    /// Applies a batch of list members (JSON lines): all of it or none.
    pub fn append_list_members(
        &self,
        id: &str,
        text: &str,
    ) -> Result<audiences::Applied, MembersError> {
        let Some(advertiser) = self.list_owner(id) else {
            return Err(MembersError::UnknownList);
        };
        let result = self
            .audiences
            .lists()
            .apply_jsonl(&advertiser, id, "request body", text);
        metrics::list_batch(match &result {
            Ok(_) => "applied",
            Err(audiences::ListError::Data(_)) => "invalid",
            Err(audiences::ListError::Full { .. }) => "full",
            Err(audiences::ListError::Io { .. }) => "io_error",
        });
        metrics::list_members(self.audiences.lists().members());
        let applied = result?;
        if let Some(s) = &self.shared {
            s.publish(PEER_LIST, id, text);
        }
        Ok(applied)
    }

    /// The views and purchases in a batch of shopper events, amounts in USD
    /// micros (rounded down, so sales are never over-counted).
    pub fn conversions(
        &self,
        source: &str,
        text: &str,
    ) -> Result<Vec<reports::attribution::Conversion>, audiences::DataError> {
        self.conversions_in(source, text, None)
    }

    /// [`App::conversions`] of a `--data` file, read as the start loads it
    /// into the audiences: events that could never match skipped, as
    /// there (review finding: one such line kept the file's every sale out
    /// of the reports, at each start), and so are events whose sale
    /// cannot be counted (a currency without a rate, an amount past the
    /// limit, a date ahead of the clock, an advertiser not in the config),
    /// into `skipped`: the file's other sales still count.
    pub fn data_conversions(
        &self,
        source: &str,
        text: &str,
        skipped: &mut Vec<audiences::DataError>,
    ) -> Result<Vec<reports::attribution::Conversion>, audiences::DataError> {
        self.conversions_in(source, text, Some(skipped))
    }

    /// The conversions of `text`, event by event (only they are kept, not
    /// every event of a batch of up to 64 MiB as well). Without `skipped`
    /// (an upload, all or nothing) the first event that cannot be counted
    /// is the error; with it (a `--data` file) such events go there, and
    /// lines that could never match are passed over, as the start's
    /// loading of the audiences passes them.
    fn conversions_in(
        &self,
        source: &str,
        text: &str,
        mut skipped: Option<&mut Vec<audiences::DataError>>,
    ) -> Result<Vec<reports::attribution::Conversion>, audiences::DataError> {
        let snap = self.snapshot.load();
        let mut out = Vec::new();
        let whole = skipped.is_some();
        audiences::for_each_jsonl_line(source, text, whole, |line, e| {
            match self.conversion(snap.as_deref(), e, !whole) {
                Ok(Some(c)) => out.push(c),
                Ok(None) => {}
                Err(reason) => {
                    let e = audiences::DataError {
                        source_name: source.into(),
                        line,
                        reason,
                    };
                    match skipped.as_deref_mut() {
                        Some(skipped) => skipped.push(e),
                        None => return Err(e),
                    }
                }
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// The conversion of one event (`None` for an interest), or why its
    /// sale cannot be counted; `upload`: why an uploaded event is refused.
    fn conversion(
        &self,
        snap: Option<&Snapshot>,
        e: audiences::Event,
        upload: bool,
    ) -> Result<Option<reports::attribution::Conversion>, String> {
        // Dated ahead of this clock (beyond a little skew between
        // machines): a mistake or a trick. A conversion could outlive every
        // window and crowd out those counted before it; an uploaded
        // interest of a wrong year took the store's room and matched
        // nothing until then (audiences probe). A `--data` file's
        // interests are the store's to load, not sales to skip here.
        let future = e.at.as_millis() > self.clock.now().as_millis() + FUTURE_SKEW_MS;
        let purchase = match e.kind {
            audiences::EventKind::View => false,
            audiences::EventKind::Purchase => true,
            audiences::EventKind::Interest if upload && future => return Err(FUTURE.into()),
            audiences::EventKind::Interest => return Ok(None),
        };
        if future {
            return Err(FUTURE.into());
        }
        // An advertiser's own event names one of the config's: any
        // other name would keep it apart from every audience.
        if let (Some(adv), Some(snap)) = (&e.advertiser, snap) {
            if !snap.config.advertisers.iter().any(|a| &a.id == adv) {
                return Err(format!(
                    "\"advertiser\" {adv:?} is not an advertiser of the config"
                ));
            }
        }
        let sale = e.sale.unwrap_or(audiences::Sale {
            amount: None,
            currency: None,
            order_id: None,
        });
        let amount = match (sale.amount, sale.currency.as_deref()) {
            (None, _) => Micros::ZERO,
            (Some(a), None | Some("USD")) => a,
            (Some(a), Some(code)) => {
                let rate = snap
                    .and_then(|s| s.config.currency_rates.as_ref())
                    .and_then(|r| r.rates.iter().find(|(c, _)| c == code))
                    .map(|(_, r)| *r);
                match rate {
                    Some(r) => r.to_usd(a),
                    None => {
                        return Err(format!(
                            "currency {code} has no rate in the config's currency_rates: \
                             the sale cannot be reported in USD"
                        ))
                    }
                }
            }
        };
        // Past what the config lets money be: a typo in the order
        // feed (extra digits), which summed into reports would swamp,
        // or saturate, every sales total and ROAS above it. In USD, so
        // a currency of small units (VND, IDR) is not held to less.
        if amount > config::MAX_AMOUNT {
            return Err(format!(
                "\"amount\" is {amount} USD, more than a sale may be ({} USD)",
                config::MAX_AMOUNT
            ));
        }
        let (user, other_user) = self.signer.user_keys(&e.user);
        Ok(Some(reports::attribution::Conversion {
            purchase,
            user,
            other_user: Some(other_user),
            product: e.item,
            at_ms: e.at.as_millis(),
            amount,
            order_id: sale.order_id,
            // An advertiser's own event is attributed to its touches
            // only, as its pixel's are.
            advertiser: e.advertiser,
        }))
    }

    /// An advertiser pixel call (see [`crate::pixel`]): the event of the
    /// user of `cookie`, recorded like an uploaded one.
    pub async fn pixel(
        &self,
        advertiser: &str,
        query: &str,
        gpc: bool,
        cookie: Option<&[u8]>,
        page: Option<&str>,
        peer: Option<std::net::IpAddr>,
    ) -> Result<crate::pixel::Recorded, crate::pixel::PixelError> {
        use crate::pixel::{PixelError, Recorded};
        {
            let snap = self.snapshot.load();
            let adv = snap
                .as_ref()
                .and_then(|s| s.config.advertisers.iter().find(|a| a.id == advertiser))
                .ok_or(PixelError::UnknownAdvertiser)?;
            if page.is_some_and(|p| !crate::pixel::page_allowed(p, &adv.domains)) {
                return Err(PixelError::ForeignPage);
            }
            // Only the advertiser's own products: a page of one shop must
            // not end another's audiences or book its sales, and what the
            // store keeps stays within what the config names.
            let product = crate::pixel::product_of(query).unwrap_or_default();
            let listed = adv.products.contains(&product)
                || adv.audiences.iter().any(|a| match &a.kind {
                    config::AudienceKind::Views { products, .. } => products.contains(&product),
                    _ => false,
                });
            if !listed {
                return Err(PixelError::Invalid(
                    "p is not one of this advertiser's products".into(),
                ));
            }
        }
        let now = self.clock.now();
        let mut event = crate::pixel::event(query, now)?;
        // A server-to-server call names its user; a page's has our cookie.
        let named = match crate::form::field(query, "uid") {
            Some(v) => Some(
                crate::sync::advertiser_uid(&v, advertiser, &self.signer, now)
                    .ok_or(PixelError::ForeignUid)?,
            ),
            None => None,
        };
        // A page's call (by our cookie) says which page it is: one with
        // its referrer withheld could be any site's.
        if named.is_none() && page.is_none() {
            return Err(PixelError::NoPage);
        }
        if !crate::sync::query_allows(query, gpc, &self.settings.privacy) {
            return Ok(Recorded::NoConsent);
        }
        let Some(user) = named.or_else(|| crate::sync::cookie_uid(cookie, &self.signer)) else {
            return Ok(Recorded::NoUser);
        };
        event["user"] = serde_json::Value::String(user.clone());
        // The advertiser's own: its audiences only (`config::advertiser_item`).
        event["advertiser"] = serde_json::Value::String(advertiser.to_owned());
        if event["event"] == "purchase" && event.get("order_id").is_none() {
            event["order_id"] =
                serde_json::Value::String(crate::pixel::implied_order(&event, now, &self.signer));
        }
        let line = event.to_string();
        let ip_ok = peer.is_none_or(|ip| {
            self.pixel_ip_limiter
                .allow(&crate::pixel::address_key(ip), now.as_millis())
        });
        if !ip_ok || !self.pixel_limiter.allow(&user, now.as_millis()) {
            return Ok(Recorded::Flooded);
        }
        let appended = self
            .append_audience_events(&line, false)
            .map_err(|e| PixelError::Invalid(e.reason))?;
        if let Some(e) = &appended.unsaved {
            // Applied: it counts until a restart.
            self.audience_log_errors.warn(|suppressed| {
                tracing::error!(suppressed, "pixel event not saved for a restart: {e}");
            });
        }
        let mut conversions = appended.conversions;
        for c in &mut conversions {
            c.advertiser = Some(advertiser.to_owned());
        }
        if let Err(e) = self.attribute(conversions).await {
            tracing::error!("pixel event stored, its attribution not recorded: {e}");
        }
        Ok(Recorded::Recorded)
    }

    /// Attributes views and purchases to their last touch; resolves once
    /// the attributed ones are on disk. Without an event journal nothing
    /// is attributed.
    pub async fn attribute(
        &self,
        conversions: Vec<reports::attribution::Conversion>,
    ) -> std::io::Result<Uploaded> {
        let mut up = Uploaded::default();
        let Some(events) = &self.events else {
            return Ok(up);
        };
        if conversions.is_empty() {
            return Ok(up);
        }
        let now = self.clock.now().as_millis();
        for label in events.convert(conversions, now).await? {
            metrics::conversion(label);
            match label {
                "attributed" => up.attributed += 1,
                "duplicate" => up.duplicate += 1,
                // Its order was counted with its first line.
                "basket_line" => {}
                _ => up.unattributed += 1,
            }
        }
        Ok(up)
    }

    /// What an `Authorization` header is worth on the admin port.
    /// Compared in constant time: the admin port may be reachable from more
    /// places than it should be, and a comparison must not tell a guesser
    /// how close it came.
    pub fn admin_access(&self, authorization: Option<&[u8]>) -> Access {
        use sha2::Digest;
        use subtle::ConstantTimeEq;
        // The scheme's name is case-insensitive (RFC 9110 11.1): `bearer`
        // is the same scheme. One or more spaces part it from the token
        // (`1*SP`, 11.4), which is compared as given.
        let given = authorization.and_then(|a| {
            let rest = a
                .get(..6)
                .filter(|s| s.eq_ignore_ascii_case(b"bearer"))
                .map(|_| &a[6..])?;
            let token = rest.trim_ascii_start();
            (token.len() < rest.len() && !token.is_empty()).then_some(token)
        });
        // Digests of equal length are compared, so not even the token's
        // length shows in the time a guess takes.
        let is = |want: Option<&str>| match (want, given) {
            (Some(want), Some(got)) => bool::from(
                sha2::Sha256::digest(want.as_bytes())
                    .as_slice()
                    .ct_eq(sha2::Sha256::digest(got).as_slice()),
            ),
            _ => false,
        };
        if is(self.settings.admin_token.as_deref()) {
            Access::Admin
        } else if is(self.settings.audience_token.as_deref()) {
            Access::AudienceUploads
        } else {
            Access::None
        }
    }

    /// Every line item's verdict on this request, as JSON, without bidding,
    /// as `exchange` (`None`: the default profile) would have it answered.
    pub fn explain(&self, exchange: Option<&str>, body: &[u8]) -> Result<Vec<u8>, ExplainError> {
        let req = ortb::parse_request(body).map_err(|e| ExplainError::Invalid(e.to_string()))?;
        req.validate()
            .map_err(|e| ExplainError::Invalid(e.to_string()))?;
        let guard = self.snapshot.load();
        let snap = guard.as_ref().ok_or(ExplainError::NotReady)?;
        // `default` is what explain and the metrics call the profile of
        // the plain bid endpoint: named back, it is that profile, as a
        // notice naming it is (`Snapshot::notice_profile`).
        let profile = snap
            .profile(exchange.filter(|e| *e != crate::snapshot::DEFAULT_EXCHANGE))
            .ok_or_else(|| ExplainError::UnknownExchange(exchange.unwrap_or_default().into()))?;
        let (ctx, priced) = self.context(snap, profile, &req);
        let model = self.model.load();
        let stores = Stores {
            audiences: &self.audiences,
            ledger: &*self.ledger,
            warm: std::cell::Cell::new(None),
            count_everywhere: Some(Default::default()),
            blocked: select::blocked_memo(&req),
            market: select::Market {
                model: &model,
                shader: &self.shader,
                exchange: &profile.report_id,
                first_price: req.auction_type() == 1,
                seat: profile.seat.as_ref().map(|(s, _)| s.as_str()),
                // Explain shows the shaded bid, never an exploring one.
                explore: false,
            },
        };
        let stopped = self
            .before_auction(&req, profile)
            .err()
            .or_else(|| ctx.dsa_stop());
        let verdicts = crate::explain::explain(snap, &req, &ctx, &stores, priced, stopped);
        let body = serde_json::json!({
            "id": req.id,
            "at": ctx.now.to_string(),
            "exchange": profile.id,
            "currency": priced.then(|| ctx.currency.code().to_owned()),
            // Why behavioural data is off for it (line items that need it
            // say `privacy`), or null.
            "privacy": ctx.restriction.map(|r| r.as_str()),
            "line_items": verdicts,
        });
        Ok(serde_json::to_vec_pretty(&body).unwrap_or_default())
    }

    /// How many steps the expiries of [`App::expire_reservations`] take
    /// one [`App::expire_step`] at a time.
    pub fn expiry_steps(&self) -> usize {
        self.ledger.expiry_steps()
    }

    /// Step `step` of the expiries of [`App::expire_reservations`] alone,
    /// as of `now` (the same time for every call of one step, so that the
    /// step ends): holds whose time is up go back to their budgets. A bid
    /// shard's step is a bounded piece of work (some tens of microseconds),
    /// so the server runs those on its request workers between requests,
    /// spread over its rounds; whether the step is done (if not, it is
    /// called again).
    pub fn expire_step(&self, now: config::Timestamp, step: usize) -> bool {
        self.ledger.expire_step(now, step).1
    }

    /// Ends reservations of bids whose notices never came (they keep
    /// holding their learned share) and lets go of those whose notices
    /// have expired, fits the shading curves again and updates the gauges;
    /// returns how many reservations ended. About once a second.
    pub fn expire_reservations(&self) -> usize {
        let expired = self.ledger.expire(self.clock.now());
        self.upkeep();
        expired.reservations
    }

    /// [`App::expire_reservations`] but for the expiries: the soak of
    /// `auto` signatures, the gauges and the shading curves' fit.
    pub fn upkeep(&self) {
        self.sync_audience_log();
        let now = self.clock.now();
        // Alone, the only reader of this process's URLs after a restart is
        // the build restarted into: after the soak, a rollback is taken to
        // be over, and `auto` writes `per-bid`.
        if self.shared.is_none()
            && now.as_millis().saturating_sub(self.started_ms)
                >= self.settings.url_signatures_soak_ms
            && !self
                .alone_per_bid
                .swap(true, std::sync::atomic::Ordering::Relaxed)
            && self.settings.url_signatures == crate::notice::UrlSignatures::Auto
        {
            // Said once, as replicas say it when their count passes.
            tracing::info!(
                "URLs are signed per bid from now on: this process has run for the soak \
                 (--url-signatures-soak-secs)"
            );
        }
        metrics::late_share(self.ledger.late_share_ppm());
        metrics::frequency_windows(self.ledger.frequency_windows_held());
        metrics::audience_users_evicted(self.audiences.evicted_users());
        self.shared_state_metrics();
        if let Some(e) = &self.events {
            metrics::event_journal(&e.stats);
        }
        if let Some(rates) = self
            .snapshot
            .load()
            .as_ref()
            .and_then(|s| s.config.currency_rates.as_ref())
        {
            let age_ms = now.as_millis() - rates.as_of.start().as_millis();
            metrics::rates_age(age_ms as f64 / 1000.0);
        }
        self.shader.refit(now.as_millis());
        metrics::shading(self.shader.dropped_observations(), self.shader.key_count());
        // With Redis, from the server's rounds apart (it asks Redis).
        if self.shared.is_none() {
            self.settle_awaiting();
        }
        self.save_holds(false);
    }

    /// A win, billing or loss notice. A win or billing notice charges its
    /// bid once, at the clearing price but never above the bid (at the bid
    /// when the price cannot be read: the exchange bills it all the same).
    /// With a journal it resolves only once the charge is on disk: an
    /// acknowledged charge survives a crash. A loss releases a bid that has
    /// not been won.
    pub async fn notice(&self, kind: Kind, query: &str) -> Result<NoticeResult, NoticeError> {
        let now = self.clock.now();
        let ttl = self.settings.notice_ttl.as_millis() as i64;
        let result = self.settle(kind, query, now, ttl).await;
        metrics::notice(
            kind,
            match &result {
                Ok(r) => *r,
                Err(NoticeError::Storage | NoticeError::Busy | NoticeError::Unavailable) => {
                    NoticeResult::Failed
                }
                Err(_) => NoticeResult::Invalid,
            },
        );
        result
    }

    async fn settle(
        &self,
        kind: Kind,
        query: &str,
        now: Timestamp,
        ttl: i64,
    ) -> Result<NoticeResult, NoticeError> {
        let n = notice::verify(kind, query, &self.signer, now.as_millis(), ttl)?;
        // The TTL its bid was made under, when a start raised it since:
        // the charge is remembered as long as the notices are taken.
        let ttl = crate::notice_ttl::for_bid(ttl, self.settings.notice_ttl_fence, n.at_ms);
        if now.as_millis().saturating_sub(n.at_ms) > ttl {
            return Err(NoticeError::Expired);
        }
        if n.test {
            return Ok(NoticeResult::Test);
        }
        // Ours are always well formed; a signed one that is not is refused.
        let bid = BidKey::of(&n.bid_id).ok_or(NoticeError::Signature)?;
        if kind == Kind::Loss {
            return Ok(match self.ledger.release(bid) {
                ledger::Release::Released => NoticeResult::Released,
                ledger::Release::AlreadyWon => NoticeResult::Ignored,
                ledger::Release::Unknown => NoticeResult::Unknown,
            });
        }
        // The exchange's rule of which notice charges, as signed at bid time.
        match (n.charge_on, kind) {
            (config::ChargeOn::Win, Kind::Billing) => return Ok(NoticeResult::Recorded),
            // Won, billed later: a loss notice can no longer release it.
            (config::ChargeOn::Billing, Kind::Win) => {
                if !self.ledger.won(bid) {
                    // A bid of the process before, in flight when it
                    // stopped: what was carried for it lasted only the
                    // reservation window, and its billing may come later.
                    let bought = ledger::Bought {
                        bid,
                        keys: [SpendKey::line_item(&n.line_item), SpendKey::order(&n.order)],
                        day: Timestamp(n.at_ms).date(),
                        amount: ledger::impression_cost(n.bid_price),
                        forget: Timestamp(n.at_ms.saturating_add(ttl)),
                    };
                    self.ledger.won_carried(&bought, Timestamp(n.at_ms));
                }
                return Ok(NoticeResult::Recorded);
            }
            _ => {}
        }
        let snap = self.snapshot.load();
        let profile = snap.as_ref().and_then(|s| s.notice_profile(&n.exchange));
        let counters = match profile {
            Some(p) => &p.counters,
            None => metrics::ExchangeCounters::default_exchange(),
        };
        let mut n = n;
        // An exchange that encrypted its prices when the bid was made (as
        // signed) sends nothing else: its price is read only by decrypting
        // it with its keys as configured now. Keys gone since (the exchange
        // removed) leave it unreadable: charged at the bid, never at a
        // price anyone could have typed.
        if n.encrypted {
            let keys = profile.and_then(|p| p.price_keys.as_ref());
            n.price = match (keys, n.price_text.as_deref()) {
                (Some(keys), Some(text)) => match keys.decrypt_with_iv(text) {
                    // Encrypted before the bid was made (by more than two
                    // clocks may differ): a price copied from another win,
                    // not this one's. Nothing else binds a price to its
                    // auction, and a cheap one put on a dear bid's notice
                    // first made the exchange's own a duplicate (exchanges
                    // probe).
                    Ok((_, iv))
                        if profile.is_some_and(|p| p.price_iv_timestamps)
                            && pricecrypt::iv_time_ms(&iv)
                                < n.at_ms.saturating_sub(PRICE_CLOCK_SKEW_MS) =>
                    {
                        metrics::price_decrypt_failed(counters, metrics::DecryptFailure::Stale);
                        self.price_log.warn(|suppressed| {
                            tracing::warn!(bid = %n.bid_id, exchange = %n.exchange, suppressed, "notice price was encrypted before its bid was made (another win's): charged the bid price");
                        });
                        Price::Unreadable
                    }
                    Ok((micros, _)) => match i64::try_from(micros) {
                        Ok(m) if m > 0 => Price::Cpm(Micros(m)),
                        _ => Price::Unreadable,
                    },
                    Err(e) => {
                        let why = match e {
                            pricecrypt::DecryptError::Integrity => {
                                metrics::DecryptFailure::Integrity
                            }
                            pricecrypt::DecryptError::OutOfRange { .. } => {
                                metrics::DecryptFailure::Range
                            }
                            _ => metrics::DecryptFailure::Encoding,
                        };
                        metrics::price_decrypt_failed(counters, why);
                        self.price_log.warn(|suppressed| {
                            tracing::warn!(bid = %n.bid_id, exchange = %n.exchange, suppressed, "notice price did not decrypt ({e}): charged the bid price");
                        });
                        Price::Unreadable
                    }
                },
                _ => Price::Unreadable,
            };
        }
        match &n.price {
            Price::Unreadable => {
                metrics::price_unreadable(counters);
                self.price_log.warn(|suppressed| {
                    tracing::warn!(bid = %n.bid_id, line_item = %n.line_item, suppressed, "notice price unreadable: charged the bid price");
                });
            }
            // Above what the answer said: the bid in its currency, rounded
            // up as a fixed-price deal's is (its price cleared back in USD
            // is a micro over the bid, and charged the bid all the same).
            Price::Cpm(p) if *p > n.rate.from_usd_up(n.bid_price) => {
                self.price_log.warn(|suppressed| {
                    tracing::warn!(bid = %n.bid_id, price = %p, currency = %n.currency, bid_price = %n.bid_price, suppressed, "clearing price above the bid: charged the bid");
                });
            }
            Price::Cpm(_) => {}
        }
        let keys = [SpendKey::line_item(&n.line_item), SpendKey::order(&n.order)];
        // The line item that bid, as the config has it now
        // (`Snapshot::signed_item`): in its signed order, with its
        // creative. Its id may since be another order's line item (its
        // order renamed, it moved before it spent) or another advertiser's
        // (the id given away): charged as that one, another advertiser
        // paid for these impressions (budgets probe), or the wins went
        // uncapped (review).
        let item = snap
            .as_ref()
            .and_then(|s| s.signed_item(&n.line_item, &n.order, &n.creative));
        let bid_advertiser = snap
            .as_ref()
            .and_then(|s| s.signed_advertiser_index(&n.line_item, &n.order, &n.creative));
        let limits = match (item, snap.as_ref()) {
            (Some(item), _) => select::limits(item, None),
            (None, snap) => {
                // The caps in force now: a late win is billed only up to
                // them. The line item's: that of the line item holding the
                // id for the same advertiser (renamed order, moved: spend
                // is counted by id), else the one it had when it left the
                // config, whichever order it was last in; none when the id
                // is another advertiser's now (its budget is not this
                // bid's: capped by it, a win was billed short and took
                // that line item's day, review).
                let holder = snap
                    .and_then(|s| s.item(&n.line_item))
                    .filter(|h| Some(h.advertiser) == bid_advertiser);
                let retired = snap.and_then(|s| s.served.retired(&n.line_item, now));
                let line_item_cap = match (holder, retired) {
                    (Some(h), _) => Cap::line_item(h.budget, h.flight),
                    (None, Some(r)) => Cap::line_item(r.budget, r.flight),
                    (None, None) => Cap::None,
                };
                // The order's: as it is now, if it is still this
                // advertiser's; else as the record of the line item had it
                // in that order.
                let order_cap = snap
                    .and_then(|s| s.order(&n.order))
                    .filter(|(owner, _)| Some(*owner) == bid_advertiser)
                    .map(|(_, o)| Cap::order(o.budget))
                    .or_else(|| {
                        retired
                            .filter(|r| r.order == n.order)
                            .map(|r| Cap::order(r.order_budget))
                    })
                    .unwrap_or(Cap::None);
                [
                    Limit {
                        key: &keys[0],
                        cap: line_item_cap,
                    },
                    Limit {
                        key: &keys[1],
                        cap: order_cap,
                    },
                ]
            }
        };
        // Reports cut spend by these, from the charge's own record.
        let advertiser = snap.as_ref().map_or_else(
            || "".into(),
            |s| s.signed_advertiser(&n.line_item, &n.order, &n.creative),
        );
        let win = ledger::Win {
            bid,
            day: Timestamp(n.at_ms).date(),
            cost: ledger::impression_cost(n.cpm()),
            limits,
            forget: Timestamp(n.at_ms.saturating_add(ttl)),
            made: Timestamp(n.at_ms),
            tags: ledger::Tags {
                advertiser,
                creative: n.creative.as_str().into(),
                exchange: n.exchange.as_str().into(),
                keyword: n.keyword.as_deref().unwrap_or_default().into(),
                audience: self.audience_of(snap.as_deref(), item, n.audience.as_deref(), &n.bid_id),
                at_ms: now.as_millis(),
            },
        };
        match self.books.charge(&win).await {
            Ok(Some(charge)) => {
                // Won: its impression and click that came first count now,
                // at their own times. With Redis they may wait on another
                // replica too: the next settling round claims them first.
                if let (None, Ok(b)) = (&self.shared, u128::from_str_radix(&n.bid_id, 16)) {
                    for e in self.awaiting.take(b) {
                        self.record_tracked(e, None);
                    }
                }
                // Charged once whatever notices come, on whichever replica:
                // the one count of this bid's win for shading. A bid made
                // before this process began was counted by another.
                let first_price = crate::first_price::of(&n.bid_id);
                if let Some(slot) = first_price.filter(|_| n.at_ms >= self.started_ms) {
                    self.shader.observe_win(
                        &shading::CurveKey::new(&n.exchange, slot),
                        n.bid_price.as_i64(),
                    );
                }
                metrics::spend(charge.billed.as_i64());
                if charge.over_delivery > Micros::ZERO {
                    self.over_log.warn(|suppressed| {
                        tracing::warn!(bid = %n.bid_id, line_item = %n.line_item, over_delivery = %charge.over_delivery, suppressed, "win beyond the budget: recorded, not billed");
                    });
                    metrics::over_delivery(charge.over_delivery.as_i64());
                }
                if charge.late {
                    metrics::late_win();
                }
                Ok(NoticeResult::Charged)
            }
            Ok(None) => Ok(NoticeResult::Duplicate),
            Err(ChargeError::Storage(e)) => {
                self.storage_log.warn(|suppressed| {
                    tracing::error!(bid = %n.bid_id, suppressed, "charge not recorded, the exchange must retry: {e}");
                });
                Err(NoticeError::Storage)
            }
            Err(ChargeError::Busy) => Err(NoticeError::Busy),
            Err(ChargeError::Expired) => Err(NoticeError::Expired),
            Err(ChargeError::Unavailable) => {
                self.unavailable_log.warn(|suppressed| {
                    tracing::warn!(bid = %n.bid_id, suppressed, "charge not recorded, the shared state is unreachable; the exchange must retry");
                });
                Err(NoticeError::Unavailable)
            }
        }
    }
}

/// What a config that loaded says of itself: its summary, and what in it
/// will not do what it seems to ([`config_warnings`]).
#[derive(Debug)]
pub struct Loaded {
    pub summary: Summary,
    pub warnings: Vec<String>,
}

/// The summary, then each warning on a line of its own.
impl std::fmt::Display for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.summary)?;
        for why in &self.warnings {
            write!(f, "\nwarning: {why}")?;
        }
        Ok(())
    }
}

/// How many warnings a load logs, of however many it has.
const MAX_LOGGED_WARNINGS: usize = 20;

/// Everything in a valid config that will not do what it seems to, one
/// line each: rates too old to price, flights that ended, value goals with
/// no ceiling, exchange profiles whose default tmax the margin eats,
/// keywords a negative always excludes, renditions of the other kind. The
/// same list for `bidder validate` (against the default settings) and for
/// every start and reload (against the process's own), so that an
/// account manager who saw none from one sees none from the other.
pub fn config_warnings(
    config: &config::Config,
    today: config::Date,
    settings: &crate::Settings,
) -> Vec<String> {
    let mut out: Vec<String> = config
        .currency_rates
        .as_ref()
        .and_then(|r| rates_warning(r, today, settings.max_rates_age_days))
        .into_iter()
        .collect();
    out.extend(ended_flights(config, today));
    out.extend(unbounded_bids(config));
    out.extend(tmax_left_nothing(config, settings.tmax_margin));
    out.extend(dead_keywords(config));
    out.extend(repeats(config));
    out.extend(budget_below_one_impression(config));
    out.extend(landing_pages_outside_domains(config));
    out.extend(renditions_of_the_other_kind(config));
    out.extend(views_without_products(config));
    out.extend(urls_with_stray_characters(config));
    out
}

/// Creative URLs holding a character a URL cannot hold as it is (`"`,
/// `<`, `>`, `\`, a backtick): a quote pasted after an image_url validated,
/// and the creative served broken (accounts probe). Warned of, not
/// refused: a config that served before must still start (refused, it
/// would crash-loop a rollout; review finding). Each URL is escaped where
/// it is written, so the answer stays well-formed.
pub fn urls_with_stray_characters(config: &config::Config) -> Vec<String> {
    let mut out = Vec::new();
    for a in &config.advertisers {
        for c in &a.creatives {
            let mut urls: Vec<(&str, &str)> = vec![("click_url", &c.click_url)];
            match &c.kind {
                config::CreativeKind::Display { image_url, .. } => {
                    urls.push(("image_url", image_url))
                }
                config::CreativeKind::Video { media, .. }
                | config::CreativeKind::Audio { media, .. } => {
                    urls.extend(media.iter().map(|m| ("media url", m.url.as_str())))
                }
                config::CreativeKind::Native(n) => {
                    urls.push(("image url", &n.image.url));
                    urls.extend(n.icon.iter().map(|i| ("icon url", i.url.as_str())));
                }
            }
            for (what, url) in urls {
                let Some(ch) = url.chars().find(|ch| "\"<>\\`".contains(*ch)) else {
                    continue;
                };
                let instead = match ch {
                    // Browsers read a backslash in an http(s) path as `/`.
                    '\\' => "/ (browsers read it so), or %5C".to_string(),
                    _ => format!("%{:02X}", u32::from(ch)),
                };
                out.push(format!(
                    "{}: creative \"{}\": {what} \"{url}\" holds `{ch}`, which a URL cannot \
                     hold as it is (a character pasted with it?): write {instead}",
                    c.at.in_file(&a.file),
                    c.id,
                ));
            }
        }
    }
    out
}

/// The tracked events of `events` this replica claims first in Redis, to
/// record (the others were claimed by another replica: duplicates here),
/// with those Redis did not answer for: recorded here, as before the
/// claims (a replay to another replica may then count twice until the
/// copies arrive). Blocks for Redis's answer.
fn claimed(
    shared: &shared::RedisLedger,
    events: Vec<crate::awaiting::Waiting>,
) -> Vec<crate::awaiting::Waiting> {
    let keys: Vec<(BidKey, bool)> = events
        .iter()
        .map(|e| (ledger::BidId::key_of(e.bid), e.click))
        .collect();
    let claims = shared.claim_tracked(&keys);
    let mut mine = Vec::with_capacity(events.len());
    let (mut elsewhere, mut unclaimed) = (0, 0);
    for (e, claim) in events.into_iter().zip(claims) {
        match claim {
            Some(true) => mine.push(e),
            Some(false) => elsewhere += 1,
            None => {
                unclaimed += 1;
                mine.push(e);
            }
        }
    }
    metrics::tracking_refused_n("duplicate", elsewhere);
    metrics::tracking_unclaimed(unclaimed);
    mine
}

/// How far an exchange's clock may be behind ours: an encrypted price
/// dated more than this before its bid is another win's.
const PRICE_CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;

/// Bytes the state volume keeps free for the charges of the wins of the
/// bids out (a charge record is about 130 bytes, and the event records of
/// its win and impression about as much again): the most bids in flight
/// `max_bids` at 256 bytes each, never under the journal's default; four
/// times that default where the bids in flight are not bounded.
pub fn journal_reserve(max_bids: usize) -> u64 {
    match max_bids {
        usize::MAX => 4 * ledger::journal::MIN_FREE_BYTES,
        n => (n as u64)
            .saturating_mul(256)
            .max(ledger::journal::MIN_FREE_BYTES),
    }
}

/// Advertisers that buy `views` audiences (shoppers of their products) but
/// list no `products`: attribution credits a sale to an advertiser only
/// for its listed products, so their reports show no sales, ROAS 0, for
/// good (accounts probe: the spec's example config is one, in silence).
pub fn views_without_products(config: &config::Config) -> Vec<String> {
    config
        .advertisers
        .iter()
        .filter(|a| a.products.is_empty())
        .filter_map(|a| {
            let views: Vec<&str> = a
                .audiences
                .iter()
                .filter(|au| matches!(au.kind, config::AudienceKind::Views { .. }))
                .map(|au| au.id.as_str())
                .collect();
            (!views.is_empty()).then(|| {
                format!(
                    "{}: advertiser \"{}\" has views audiences ({}) but lists no products: a sale \
                     is attributed to an advertiser only for the products it lists, so its reports \
                     will show no sales; list the products it sells under `products`",
                    a.file.display(),
                    a.id,
                    views.join(", ")
                )
            })
        })
        .collect()
}

/// Creatives whose `click_url` leads outside their advertiser's
/// `domains`, one line each: valid, and every bid of theirs says
/// `adomain` is those domains while the ad lands elsewhere, which
/// exchanges and publishers that check the landing page against
/// `adomain` refuse or block (stop-69 leftover: accepted in silence). A
/// host counts as the domain's when it is the domain or under it
/// (`www.shop.example` for `shop.example`).
pub fn landing_pages_outside_domains(config: &config::Config) -> Vec<String> {
    // A URL's host as compared: its final dot dropped, in lower case.
    let host_of = |url: &str| {
        url::Url::parse(url).ok().and_then(|u| {
            u.host_str()
                .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
        })
    };
    let mut out = Vec::new();
    for a in config.advertisers.iter().filter(|a| !a.domains.is_empty()) {
        // Each domain read as a URL's host is (IDNA: `bücher.example` is
        // `xn--bcher-kva.example`), once per advertiser.
        let domains: Vec<String> = a
            .domains
            .iter()
            .filter_map(|d| host_of(&format!("https://{d}/")))
            .collect();
        for c in &a.creatives {
            let Some(host) = host_of(&c.click_url) else {
                continue;
            };
            let under = |d: &String| {
                host == *d
                    || host
                        .strip_suffix(d.as_str())
                        .is_some_and(|rest| rest.ends_with('.'))
            };
            if !domains.iter().any(under) {
                out.push(format!(
                    "{}: creative \"{}\": its click_url goes to {host}, which is not under the \
                     advertiser's domains ({}): bids say adomain {}, and exchanges that check the \
                     landing page against it refuse the ad",
                    c.at.in_file(&a.file),
                    c.id,
                    a.domains.join(", "),
                    a.domains.join(", "),
                ));
            }
        }
    }
    out
}

/// Keywords and creatives a line item lists in vain, one line each:
/// valid, and the repeat does nothing. A keyword an earlier one of its kind
/// always matches with is never credited in the search-term report (see
/// `KeywordRule::repeated`); a creative named twice is one creative, not
/// twice the share. Often a paste gone wrong, so said at every load
/// (account-manager probe: accepted in silence).
pub fn repeats(config: &config::Config) -> Vec<String> {
    let mut out = Vec::new();
    for a in &config.advertisers {
        for li in a.orders.iter().flat_map(|o| &o.line_items) {
            let at = li.at.in_file(&a.file);
            if let Some(k) = li.targeting.keywords.as_ref() {
                let rule = crate::keywords::KeywordRule::compile(k);
                for (this, earlier) in rule.repeated() {
                    out.push(format!(
                        "{at}: line item \"{}\": keyword {this} is never counted in reports: \
                         {earlier}, listed before it, matches every page it matches",
                        li.id
                    ));
                }
            }
            // Each repeated creative once, however often it is listed.
            let mut seen = std::collections::HashMap::new();
            for c in &li.creatives {
                let n = seen.entry(c.as_str()).or_insert(0u32);
                *n += 1;
                if *n == 2 {
                    out.push(format!(
                        "{at}: line item \"{}\": creative \"{c}\" is listed more than once; \
                         it is one creative and gets no larger share",
                        li.id
                    ));
                }
            }
        }
    }
    out
}

/// Fixed-CPM line items whose one impression at their CPM costs more than
/// their budget, one line each: valid, and they bid only at a lower price
/// (a deal's fixed price, a bid shaded in a first-price auction), never at
/// their CPM (the bid's reservation does not fit: no-bid reason `budget`),
/// which only the reports would show (account-manager probe: a CPM of
/// 2,000.00 on a daily budget of 1.00 was accepted in silence). One
/// impression is the CPM over a thousand, rounded up to the micro as a
/// charge is. (A line item's budget is never above its order's: refused.)
pub fn budget_below_one_impression(config: &config::Config) -> Vec<String> {
    let mut out = Vec::new();
    for a in &config.advertisers {
        for li in a.orders.iter().flat_map(|o| &o.line_items) {
            if li.bidding != config::Bidding::FixedCpm {
                // A value-based bid can come in under the ceiling.
                continue;
            }
            let one = ledger::impression_cost(li.cpm);
            let (what, amount) = match li.budget {
                config::Budget::Daily(m) => ("daily budget", m),
                config::Budget::Lifetime(m) => ("lifetime budget", m),
            };
            if one <= amount {
                continue;
            }
            // Only a deal's fixed price or shading bids under the CPM.
            let outcome = if li.targeting.deals.is_empty() && !li.shading {
                "it will never bid (no-bid reason budget)".to_string()
            } else {
                format!(
                    "it never bids its cpm, only a price of {} CPM or less (a deal's fixed price, \
                     or a bid shaded in a first-price auction); otherwise no bid, reason budget",
                    config::Micros(amount.as_i64().saturating_mul(1000)).grouped()
                )
            };
            out.push(format!(
                "{}: line item \"{}\": one impression at its cpm of {} costs {}, more than its \
                 {what} of {}: {outcome}",
                li.at.in_file(&a.file),
                li.id,
                li.cpm.grouped(),
                one.grouped(),
                amount.grouped(),
            ));
        }
    }
    out
}

/// Keywords a line item wants that a negative of its own always excludes
/// (see `KeywordRule::never_matching`), one line each. Warned of, not
/// refused: configs that loaded before must still start.
pub fn dead_keywords(config: &config::Config) -> Vec<String> {
    let mut out = Vec::new();
    for a in &config.advertisers {
        for li in a.orders.iter().flat_map(|o| &o.line_items) {
            let Some(k) = li.targeting.keywords.as_ref() else {
                continue;
            };
            let rule = crate::keywords::KeywordRule::compile(k);
            for name in rule.never_matching() {
                out.push(format!(
                    "{}: line item \"{}\": keyword {name} can never match: a negative keyword \
                     of the line item excludes every page it would match",
                    li.at.in_file(&a.file),
                    li.id
                ));
            }
        }
    }
    out
}

/// Video creatives with an `audio/…` rendition, audio ones with a
/// `video/…` one: slots list types of their own kind, and such a
/// rendition is chosen only by a slot that lists it (account-manager
/// probe: accepted in silence). Warned of: a player may list one.
pub fn renditions_of_the_other_kind(config: &config::Config) -> Vec<String> {
    let mut out = Vec::new();
    for a in &config.advertisers {
        for c in &a.creatives {
            let (media, other, kind) = match &c.kind {
                config::CreativeKind::Video { media, .. } => (media, "audio/", "video"),
                config::CreativeKind::Audio { media, .. } => (media, "video/", "audio"),
                _ => continue,
            };
            for m in media {
                if m.mime
                    .get(..other.len())
                    .is_some_and(|t| t.eq_ignore_ascii_case(other))
                {
                    out.push(format!(
                        "{}: creative \"{}\": rendition {} has mime \"{}\", not a {kind} type: \
                         only a slot that lists it plays it",
                        c.at.in_file(&a.file),
                        c.id,
                        m.url,
                        m.mime
                    ));
                }
            }
        }
    }
    out
}

/// How many of a refused config's problems the log names, one event
/// each; `bidder validate` and the reload's answer list them all.
const LOGGED_PROBLEMS: usize = 50;

/// A refused config in the log: a line for the refusal, then one event per
/// problem (up to [`LOGGED_PROBLEMS`]). One event with every problem in
/// its message put the problems on lines of their own without a
/// timestamp or level, which line-based log collectors split from the
/// refusal (account-manager probe).
fn log_refused(problems: &Problems) {
    tracing::error!(
        problems = problems.len(),
        "config refused, still serving the previous one"
    );
    for p in problems.iter().take(LOGGED_PROBLEMS) {
        // A message may span lines (a YAML error quoting its context):
        // each event stays one line of the text log.
        let text = p.to_string();
        let line = text.lines().collect::<Vec<_>>().join(" | ");
        tracing::error!("config refused: {line}");
    }
    if let Some(more) = problems
        .len()
        .checked_sub(LOGGED_PROBLEMS)
        .filter(|&n| n > 0)
    {
        tracing::error!("config refused: {more} more problems (`bidder validate` lists them all)");
    }
}

/// A reload refused, while the config before it serves: when, and how
/// many problems (not what they say: see `/readyz`).
#[derive(Clone, Debug)]
pub struct Refused {
    pub at: config::Timestamp,
    pub problems: usize,
}

impl App {
    /// The last reload, if it was refused and nothing has loaded since.
    pub fn last_refused(&self) -> Option<Refused> {
        self.refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Orders whose flight ended before `today`, one line each: valid, they
/// load and never bid again, which `bidder validate` says so that a date
/// typed a year early is seen before the rollout, not in the reports.
pub fn ended_flights(config: &config::Config, today: config::Date) -> Vec<String> {
    config
        .advertisers
        .iter()
        .flat_map(|a| a.orders.iter().map(move |o| (a, o)))
        .filter(|(_, o)| o.flight.end < today)
        .map(|(a, o)| {
            format!(
                "{}: order \"{}\": its flight ended on {} (today is {today}): its line items \
                 will not bid",
                o.at.in_file(&a.file),
                o.id,
                o.flight.end
            )
        })
        .collect()
}

/// Exchange profiles whose `tmax_default_ms` the margin taken off every
/// tmax (`--tmax-margin-ms`) eats whole, one line each: valid, and every
/// request of theirs without its own tmax gets no bid, reason `late`
/// (exchanges probe: `tmax_default_ms: 10` passed beside the default 10 ms
/// margin, which the config does not know). `bidder validate` says so
/// against the default margin, a start against its own.
pub fn tmax_left_nothing(config: &config::Config, margin: Duration) -> Vec<String> {
    config
        .exchanges
        .iter()
        .filter_map(|e| Some((e, e.tmax_default_ms?)))
        .filter(|&(_, ms)| Duration::from_millis(u64::from(ms)) <= margin)
        .map(|(e, ms)| {
            format!(
                "{}: exchange \"{}\": tmax_default_ms {ms} leaves no time after the {} ms taken \
                 off every tmax (--tmax-margin-ms): its requests without a tmax will get no bid",
                e.file.display(),
                e.id,
                margin.as_millis()
            )
        })
        .collect()
}

/// Value-based line items without a `max_cpm`, one line each: valid, and
/// each may bid up to its goal × 1000 CPM (1,200.00 for a max_cpc of
/// 1.20) wherever the model predicts a sure click or conversion, which a
/// model trained on few or odd impressions may (reports probe: 13,137 CPM
/// on a target_cpa of 30.00). `bidder validate` says so, naming the file.
pub fn unbounded_bids(config: &config::Config) -> Vec<String> {
    let mut out = Vec::new();
    for a in &config.advertisers {
        for li in a.orders.iter().flat_map(|o| &o.line_items) {
            let (key, goal) = match li.bidding {
                config::Bidding::FixedCpm => continue,
                config::Bidding::MaxCpc { max_cpc } => ("max_cpc", max_cpc),
                config::Bidding::TargetCpa { target_cpa } => ("target_cpa", target_cpa),
            };
            // Without max_cpm (or with one at least that) its ceiling is
            // the goal × 1000.
            // (A goal that large is refused at load.)
            let Some(most) = goal.as_i64().checked_mul(1000).map(config::Micros) else {
                continue;
            };
            if most <= li.cpm {
                out.push(format!(
                    "{}: line item \"{}\": {key} {goal} without a max_cpm below its goal × 1000: \
                     a bid may reach {} CPM where the model predicts a sure {}; set \
                     bidding.max_cpm to bound it",
                    li.at.in_file(&a.file),
                    li.id,
                    most.grouped(),
                    if key == "max_cpc" {
                        "click"
                    } else {
                        "conversion"
                    },
                ));
            }
        }
    }
    out
}

/// Why the rates of `rates` price nothing today, if they do not: dated
/// more than `max_age_days` from `today`, before or after (a year typed
/// wrong). The config is valid and loads, and every request whose
/// currencies leave out USD then gets no bid (`currency`): said at each
/// load and by `bidder validate`, naming the file.
pub fn rates_warning(
    rates: &config::CurrencyRates,
    today: config::Date,
    max_age_days: u32,
) -> Option<String> {
    // The file's own bound, where it gives one, is the one that applies;
    // longer than the operator's, it is said at every load: whoever edits
    // config files must not quietly undo that limit (review).
    let (bound, named) = match rates.max_age_days {
        Some(d) => (d, "its max_age_days"),
        None => (max_age_days, "--max-rates-age-days"),
    };
    let days = today.days_since_epoch() - rates.as_of.days_since_epoch();
    if days.abs() <= i64::from(bound) {
        return (bound > max_age_days).then(|| {
            format!(
                "{}: max_age_days {bound} lets these currency rates (as_of {}) price for up to \
                 {bound} days, longer than --max-rates-age-days ({max_age_days}): right for fixed \
                 rates, such as the example's; rates fed daily should leave it out",
                rates.file.display(),
                rates.as_of
            )
        });
    }
    let max_age_days = bound;
    let when = if days < 0 {
        format!("{} days ahead of today ({today})", -days)
    } else {
        format!("{days} days old (today is {today})")
    };
    Some(format!(
        "{}: the currency rates as_of {} are {when}: rates more than {max_age_days} days from \
         today price nothing ({named}), so requests that do not allow USD get no bid",
        rates.file.display(),
        rates.as_of
    ))
}

#[cfg(test)]
mod tests {
    use super::rates_warning;

    fn rates(as_of: &str, max_age_days: Option<u32>) -> config::CurrencyRates {
        config::CurrencyRates {
            as_of: config::Date::parse(as_of).unwrap(),
            max_age_days,
            rates: vec![("EUR".into(), config::Rate::parse_decimal("0.95").unwrap())],
            file: "rates.yaml".into(),
        }
    }

    /// The file's bound applies instead of the flag's, and one longer than
    /// the flag's is said even while the rates are fresh (review: it
    /// undid the operator's limit without a word).
    #[test]
    fn rates_say_which_bound_applies_and_a_longer_one_is_said() {
        let today = config::Date::parse("2026-12-10").unwrap();
        assert_eq!(rates_warning(&rates("2026-12-08", None), today, 7), None);
        let stale = rates_warning(&rates("2026-11-30", None), today, 7).unwrap();
        assert!(
            stale.contains("10 days old") && stale.contains("(--max-rates-age-days)"),
            "{stale}"
        );
        let stale = rates_warning(&rates("2026-11-30", Some(5)), today, 7).unwrap();
        assert!(
            stale.contains("more than 5 days") && stale.contains("(its max_age_days)"),
            "{stale}"
        );
        assert_eq!(rates_warning(&rates("2026-12-08", Some(5)), today, 7), None);
        let longer = rates_warning(&rates("2026-11-30", Some(3650)), today, 7).unwrap();
        assert!(
            longer.starts_with("rates.yaml: max_age_days 3650 lets these currency rates")
                && longer.contains("longer than --max-rates-age-days (7)"),
            "{longer}"
        );
    }
}

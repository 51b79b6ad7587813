//! The bidder as one value: the serving config, the audience store, spend
//! and frequency state, the clock and the settings. HTTP handlers, tests and
//! benches all go through it, so they exercise the same pipeline.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use config::{Clock, Micros, Problems, Summary, Timestamp};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::context::Context;
use crate::metrics::{self, NoticeResult};
use crate::nobid::NoBid;
use crate::notice::{self, NoticeError};
use crate::respond;
use crate::select::{self, Choice, Stores};
use crate::snapshot::Snapshot;
use crate::state::{Cap, Charge, FrequencyStore, Limit, MemoryFrequency, MemorySpend, SpendStore};

#[derive(Clone, Debug)]
pub struct Settings {
    /// Larger bodies are refused with 413 before they are read.
    pub max_body_bytes: usize,
    /// Taken off `tmax` for the trip back to the exchange.
    pub tmax_margin: Duration,
    /// The deadline when a request carries no `tmax`.
    pub default_tmax: Duration,
    /// No request is worked on longer than this, whatever its `tmax` says.
    pub max_tmax: Duration,
    /// Base URL exchanges reach the bid port at, for nurl/burl.
    pub public_url: String,
    /// Bearer token for `POST /v1/audience-events`; `None` refuses every
    /// upload rather than accepting unauthenticated ones.
    pub audience_token: Option<String>,
    /// Larger audience batches are refused with 413.
    pub max_audience_batch_bytes: usize,
    /// Our IAB TCF vendor id, for GDPR consent.
    pub privacy: crate::privacy::PrivacySettings,
    /// Key of the HMAC on notice URLs. Replicas behind one exchange must
    /// share it; without one a random per-process key is used, and notices
    /// of bids made before a restart are refused.
    pub notice_secret: Option<String>,
    /// Notices older than this are refused.
    pub notice_ttl: Duration,
    /// How long a bid holds its cost against the budget while no notice
    /// comes; a win after that is still recorded, billed only within the
    /// budget. Win notices come within seconds of the auction; a long hold
    /// would lock budget (and memory) in bids that were lost silently.
    pub reservation_ttl: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_body_bytes: 1024 * 1024,
            tmax_margin: Duration::from_millis(10),
            default_tmax: Duration::from_millis(200),
            max_tmax: Duration::from_millis(1000),
            public_url: "http://127.0.0.1:8080".into(),
            audience_token: None,
            max_audience_batch_bytes: 64 * 1024 * 1024,
            privacy: crate::privacy::PrivacySettings::default(),
            notice_secret: None,
            notice_ttl: Duration::from_secs(24 * 3600),
            reservation_ttl: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("{0}")]
    Invalid(String),
    #[error("no valid config loaded yet")]
    NotReady,
}

/// Events older than the longest window any audience of the config looks
/// at can never match again: the store keeps this many days (90 without
/// behavioural audiences).
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
        .unwrap_or(audiences::DEFAULT_RETENTION_DAYS)
}

/// What the bid endpoint answers.
pub enum BidAnswer {
    /// The BidResponse JSON and the number of bids in it.
    Bid(Vec<u8>, usize),
    NoBid(NoBid),
    /// 400 with this short reason.
    Invalid(String),
}

pub struct App {
    snapshot: ArcSwapOption<Snapshot>,
    audiences: Arc<audiences::Store>,
    spend: Arc<dyn SpendStore>,
    frequency: Arc<dyn FrequencyStore>,
    clock: Arc<dyn Clock>,
    config_dir: Option<PathBuf>,
    pub settings: Settings,
    pub metrics: Option<&'static PrometheusHandle>,
    /// Bid ids are this process's random prefix and a counter: unique
    /// across replicas and restarts without coordination.
    id_prefix: u64,
    id_seq: AtomicU64,
    signer: crate::notice::Signer,
    journal: Option<crate::journal::Journal>,
}

impl App {
    pub fn new(
        settings: Settings,
        clock: Arc<dyn Clock>,
        audiences: audiences::Store,
        config_dir: Option<PathBuf>,
    ) -> App {
        let settings_secret = settings.notice_secret.clone().filter(|s| !s.is_empty());
        App {
            snapshot: ArcSwapOption::empty(),
            audiences: Arc::new(audiences),
            spend: Arc::new(MemorySpend::default()),
            frequency: Arc::new(MemoryFrequency::new()),
            clock,
            config_dir,
            settings,
            metrics: metrics::install(),
            id_prefix: rand::random(),
            id_seq: AtomicU64::new(0),
            signer: match &settings_secret {
                Some(secret) => crate::notice::Signer::new(secret.as_bytes()),
                None => crate::notice::Signer::new(&rand::random::<[u8; 32]>()),
            },
            journal: None,
        }
    }

    /// Makes spend durable: replays the journal in `dir` into the spend
    /// store and journals every charge from now on. Returns how many
    /// charges were replayed.
    pub fn with_journal(mut self, dir: &std::path::Path) -> std::io::Result<(App, usize)> {
        let (journal, records) = crate::journal::Journal::open(dir)?;
        for r in &records {
            let keys: Vec<&str> = r.keys.iter().map(String::as_str).collect();
            self.spend
                .restore(&r.bid_id, &keys, r.day, r.billed, r.forget_after);
        }
        self.journal = Some(journal);
        Ok((self, records.len()))
    }

    pub fn is_ready(&self) -> bool {
        self.snapshot.load().is_some()
    }

    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.snapshot.load_full()
    }

    pub fn spend(&self) -> &dyn SpendStore {
        &*self.spend
    }

    pub fn now(&self) -> config::Timestamp {
        self.clock.now()
    }

    /// Serves this config from the next request on.
    pub fn install(&self, config: config::Config) -> Summary {
        let summary = config.summary();
        self.audiences.set_retention_days(retention_days(&config));
        let snap = Snapshot::compile(config, self.clock.now());
        metrics::config_loaded(true, snap.items.len());
        self.snapshot.store(Some(Arc::new(snap)));
        summary
    }

    /// Loads the config directory again. A set with any problem is refused
    /// as a whole and the running config keeps serving.
    pub fn reload(&self) -> Result<Summary, Problems> {
        let Some(dir) = &self.config_dir else {
            return Err(Problems(vec![]));
        };
        let loaded = config::load_dir(dir).and_then(|config| {
            // Money rules across the change: checked against what serves now.
            let problems = match self.snapshot.load().as_ref() {
                Some(old) => crate::changes::budget_changes(&old.config, &config, self.clock.now()),
                None => Vec::new(),
            };
            if problems.is_empty() {
                Ok(config)
            } else {
                Err(Problems(problems))
            }
        });
        match loaded {
            Ok(config) => {
                let summary = self.install(config);
                tracing::info!("config loaded: {summary}");
                Ok(summary)
            }
            Err(problems) => {
                metrics::config_loaded(false, 0);
                tracing::error!(
                    "config refused ({} problems), still serving the previous one:\n{problems}",
                    problems.0.len()
                );
                Err(problems)
            }
        }
    }

    fn next_id(&self) -> String {
        let n = self.id_seq.fetch_add(1, Ordering::Relaxed);
        let mut s = String::with_capacity(24);
        let _ = write!(s, "{:016x}-{:x}", self.id_prefix, n);
        s
    }

    /// Parse, check, run the auction, write the answer — within the
    /// request's deadline or not at all.
    pub fn handle_bid(&self, body: &[u8], start: Instant) -> BidAnswer {
        let req = match ortb::parse_request(body) {
            Ok(r) => r,
            Err(e) => return BidAnswer::Invalid(e.to_string()),
        };
        if let Err(e) = req.validate() {
            return BidAnswer::Invalid(e.to_string());
        }
        let tmax = match req.tmax {
            Some(ms) if ms > 0 => Duration::from_millis(ms as u64).min(self.settings.max_tmax),
            _ => self.settings.default_tmax,
        };
        let deadline = tmax.saturating_sub(self.settings.tmax_margin);
        if start.elapsed() >= deadline {
            return BidAnswer::NoBid(NoBid::Late);
        }
        let answer = match self.auction(&req) {
            Ok((json, n)) => BidAnswer::Bid(json, n),
            Err(reason) => BidAnswer::NoBid(reason),
        };
        // Work that overran the deadline is thrown away: the exchange has
        // closed its auction and a late bid only costs both sides.
        if start.elapsed() >= deadline {
            return BidAnswer::NoBid(NoBid::Late);
        }
        answer
    }

    /// The auction for a parsed, valid request: one bid per imp at most.
    pub fn auction(&self, req: &ortb::BidRequest<'_>) -> Result<(Vec<u8>, usize), NoBid> {
        let guard = self.snapshot.load();
        let Some(snap) = guard.as_ref() else {
            return Err(NoBid::NotReady);
        };
        // We price in USD only: a request that allows only other currencies
        // gets no bid rather than a bid it cannot accept.
        if !req.cur.is_empty() && !req.cur.iter().any(|c| c.eq_ignore_ascii_case("USD")) {
            return Err(NoBid::Currency);
        }
        let ctx = Context::new(req, self.clock.now(), &self.settings.privacy);
        let stores = Stores {
            audiences: &self.audiences,
            spend: &*self.spend,
            frequency: &*self.frequency,
        };
        let mut choices: Vec<(usize, Choice)> = Vec::new();
        let mut reason = NoBid::Media;
        // An ad pod (imps sharing `podid`) never carries two spots of one
        // advertiser: each pod remembers who already has a slot in it.
        let mut pods: Vec<(&str, Vec<usize>)> = Vec::new();
        for (i, imp) in req.imp.iter().enumerate() {
            let pod = imp
                .video
                .as_deref()
                .and_then(|v| v.podid.as_deref())
                .or_else(|| imp.audio.as_deref().and_then(|a| a.podid.as_deref()));
            let taken: &[usize] = pod
                .and_then(|p| pods.iter().find(|(id, _)| *id == p))
                .map_or(&[], |(_, advs)| advs.as_slice());
            match select::select_imp(snap, &ctx, imp, &stores, taken) {
                Ok(choice) => {
                    if let Some(p) = pod {
                        let adv = snap.items[choice.item].advertiser;
                        match pods.iter_mut().find(|(id, _)| *id == p) {
                            Some((_, advs)) => advs.push(adv),
                            None => pods.push((p, vec![adv])),
                        }
                    }
                    choices.push((i, choice));
                }
                Err(r) => reason = r,
            }
        }
        // Each bid holds what it may cost until its notice comes or its
        // time is up, so bids in flight can never together pass a budget.
        // Test requests spend nothing and reserve nothing.
        let mut bid_ids: Vec<String> = Vec::with_capacity(choices.len());
        let expires = Timestamp(
            ctx.now
                .as_millis()
                .saturating_add(self.settings.reservation_ttl.as_millis() as i64),
        );
        choices.retain(|(_, choice)| {
            let id = self.next_id();
            let item = &snap.items[choice.item];
            if ctx.test {
                bid_ids.push(id);
                return true;
            }
            if !self.spend.reserve(
                &id,
                &select::limits(item),
                ctx.today,
                select::impression_cost(choice.price),
                expires,
            ) {
                reason = NoBid::Budget;
                return false;
            }
            // The cap counts this bid until it is lost or times out.
            if let (Some(cap), Some(user)) = (&item.frequency, ctx.visitor.user) {
                let window = i64::from(cap.per_hours) * select::HOUR_MS;
                if !self.frequency.reserve(
                    &id,
                    user,
                    &item.spend_key,
                    cap.impressions,
                    window,
                    ctx.now,
                    expires,
                ) {
                    self.spend.release(&id);
                    reason = NoBid::Frequency;
                    return false;
                }
            }
            bid_ids.push(id);
            true
        });
        if choices.is_empty() {
            return Err(reason);
        }
        let json = respond::Answer {
            snap,
            req,
            public_url: &self.settings.public_url,
            test: ctx.test,
            now: ctx.now,
            signer: &self.signer,
        }
        .write(&choices, &bid_ids, &self.next_id());
        Ok((json, choices.len()))
    }

    /// Drops audience events past the retention; returns how many.
    pub fn prune_audiences(&self) -> usize {
        self.audiences.prune(self.clock.now())
    }

    /// Appends a batch of audience events (JSON lines): all of it or, on
    /// the first bad line, none of it.
    pub fn append_audience_events(&self, text: &str) -> Result<usize, audiences::DataError> {
        let n = self
            .audiences
            .append_jsonl("request body", text, self.clock.now())?;
        metrics::audience_events(n);
        Ok(n)
    }

    /// Whether `Authorization: Bearer <token>` carries the audience token.
    /// Compared in constant time: the admin port may be reachable from more
    /// places than it should be.
    pub fn audience_token_ok(&self, authorization: Option<&[u8]>) -> bool {
        let (Some(want), Some(got)) = (self.settings.audience_token.as_deref(), authorization)
        else {
            return false;
        };
        let Some(got) = got.strip_prefix(b"Bearer ") else {
            return false;
        };
        got.len() == want.len()
            && got
                .iter()
                .zip(want.as_bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }

    /// Every line item's verdict on this request, as JSON, without bidding.
    pub fn explain(&self, body: &[u8]) -> Result<Vec<u8>, ExplainError> {
        let req = ortb::parse_request(body).map_err(|e| ExplainError::Invalid(e.to_string()))?;
        req.validate()
            .map_err(|e| ExplainError::Invalid(e.to_string()))?;
        let guard = self.snapshot.load();
        let snap = guard.as_ref().ok_or(ExplainError::NotReady)?;
        let ctx = Context::new(&req, self.clock.now(), &self.settings.privacy);
        let stores = Stores {
            audiences: &self.audiences,
            spend: &*self.spend,
            frequency: &*self.frequency,
        };
        let verdicts = crate::explain::explain(snap, &req, &ctx, &stores);
        let body = serde_json::json!({
            "id": req.id,
            "at": ctx.now.to_string(),
            "line_items": verdicts,
        });
        Ok(serde_json::to_vec_pretty(&body).unwrap_or_default())
    }

    /// A loss notice gives the bid's reservation back.
    pub fn loss(&self, query: &str) -> Result<(), NoticeError> {
        let ttl = self.settings.notice_ttl.as_millis() as i64;
        let n = notice::verify(query, &self.signer, self.clock.now().as_millis(), ttl)?;
        self.spend.release(&n.bid_id);
        self.frequency.release(&n.bid_id);
        metrics::notice(metrics::Notice::Loss, NoticeResult::Released);
        Ok(())
    }

    /// Releases reservations of bids whose notices never came.
    pub fn expire_reservations(&self) -> usize {
        let now = self.clock.now();
        self.frequency.expire(now);
        self.spend.expire(now)
    }

    /// A win or billing notice: charges the bid once, at the clearing price
    /// but never above the bid. With a journal, resolves only once the
    /// charge is on disk: an acknowledged charge survives a crash.
    pub async fn notice(
        &self,
        kind: metrics::Notice,
        query: &str,
    ) -> Result<NoticeResult, NoticeError> {
        let now = self.clock.now().as_millis();
        let ttl = self.settings.notice_ttl.as_millis() as i64;
        let n = match notice::verify(query, &self.signer, now, ttl) {
            Ok(n) => n,
            Err(e) => {
                metrics::notice(kind, NoticeResult::Invalid);
                return Err(e);
            }
        };
        if n.test {
            metrics::notice(kind, NoticeResult::Test);
            return Ok(NoticeResult::Test);
        }
        // Won: the frequency slot the bid held becomes an impression.
        self.frequency.confirm(&n.bid_id);
        let cpm = n.clearing.map_or(n.bid_price, |p| p.min(n.bid_price));
        let cost: Micros = select::impression_cost(cpm);
        let li_key = format!("li:{}", n.line_item);
        let order_key = format!("order:{}", n.order);
        let now = self.clock.now();
        // The caps in force now: a late win is billed only up to them.
        let snap = self.snapshot.load();
        let item = snap.as_ref().and_then(|s| s.item(&n.line_item));
        let limits = match item {
            Some(item) => select::limits(item),
            // The line item left the config: record the win, cap nothing.
            None => [
                Limit {
                    key: &li_key,
                    cap: Cap::None,
                },
                Limit {
                    key: &order_key,
                    cap: Cap::None,
                },
            ],
        };
        let forget_after = Timestamp(n.at_ms.saturating_add(ttl));
        let result = match self
            .spend
            .settle(&n.bid_id, &limits, now.date(), cost, forget_after)
        {
            Charge::Charged {
                billed,
                over_delivery,
            } => {
                metrics::spend(billed.as_i64());
                if over_delivery > Micros::ZERO {
                    tracing::warn!(bid = %n.bid_id, line_item = %n.line_item, %over_delivery, "win beyond the budget: recorded, not billed");
                    metrics::over_delivery(over_delivery.as_i64());
                }
                if n.clearing.is_some_and(|p| p > n.bid_price) {
                    tracing::warn!(bid = %n.bid_id, "clearing price above the bid: charged the bid");
                }
                if let Some(journal) = &self.journal {
                    let record = crate::journal::Record {
                        bid_id: n.bid_id.clone(),
                        day: now.date(),
                        billed,
                        forget_after,
                        keys: limits.iter().map(|l| l.key.to_string()).collect(),
                    };
                    if let Err(e) = journal.append(&record).await {
                        tracing::error!(bid = %n.bid_id, "journal write failed: {e}");
                        metrics::notice(kind, NoticeResult::Invalid);
                        return Err(NoticeError::Storage);
                    }
                }
                NoticeResult::Charged
            }
            Charge::Duplicate => NoticeResult::Duplicate,
        };
        metrics::notice(kind, result);
        Ok(result)
    }
}

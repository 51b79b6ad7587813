//! `bidder simulate`: a day (or any number of hours) of traffic replayed
//! against the real pipeline on a simulated clock, with simulated wins, to
//! see pacing before money is at stake.
//!
//! Every request goes through `App::handle_bid`; each bid is won with the
//! given probability (its win notice settles it at the bid price) or lost
//! (its loss notice releases it). Per hour and line item the report gives
//! spend, the plan (the even curve for lifetime budgets; the cap for daily
//! ones, which spend as demand comes), the pacing error, utilisation and
//! overspend — which must be zero.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use config::{Budget, Clock, Config, ManualClock, Micros, Timestamp};
use ledger::SpendKey;
use rand::{Rng, SeedableRng};

use crate::app::{App, BidAnswer, Settings};
use crate::notice::Kind;

pub struct Options {
    pub start: Timestamp,
    pub hours: u32,
    /// Requests per simulated second.
    pub qps: f64,
    /// Bid requests (JSON), sent in turn; `USER` anywhere in them becomes
    /// a varying user id. Empty: requests are synthesised from the config
    /// (see [`crate::traffic`]), so every line item meets traffic it can
    /// bid on.
    pub traffic: Vec<Vec<u8>>,
    /// User ids of the audience data, for synthesised traffic that needs
    /// members of behavioural audiences.
    pub users: Vec<String>,
    pub win_rate: f64,
    /// Share of won bids whose win notice comes only after the bid's
    /// reservation expired (at `late_win_after`).
    pub late_wins: f64,
    /// Share of lost bids whose loss notice the exchange sends.
    pub loss_notices: f64,
    pub seed: u64,
    /// The click and conversion model value-based line items bid with
    /// (`None`: the priors), loaded as `serve --model` loads it.
    pub model_path: Option<std::path::PathBuf>,
}

impl Options {
    pub fn new(start: Timestamp) -> Options {
        Options {
            start,
            hours: 24,
            qps: 1.0,
            traffic: Vec::new(),
            users: Vec::new(),
            win_rate: 0.3,
            late_wins: 0.0,
            loss_notices: 1.0,
            seed: 1,
            model_path: None,
        }
    }
}

/// How long after its bid a late win notice comes: after the reservation
/// (60 s by default) has expired.
pub fn late_win_after(settings: &Settings) -> i64 {
    settings.reservation_ttl.as_millis() as i64 + 30_000
}

/// One line item at the end of one simulated hour.
#[derive(Clone, Debug)]
pub struct Row {
    pub hour: u32,
    pub line_item: String,
    pub lifetime: bool,
    /// Billed so far in the simulated day (UTC).
    pub spend: Micros,
    /// Won beyond the budget so far that day: delivered, not billed.
    pub over_delivery: Micros,
    /// What the plan says by the end of this hour (nothing outside the
    /// flight).
    pub plan: Micros,
    pub cap: Micros,
    /// Whether the hour is in its order's flight: outside it there is no
    /// plan, and no pacing error to count.
    pub in_flight: bool,
    /// What was delivered (billed and over-delivered) beyond the cap.
    pub overspend: Micros,
}

impl Row {
    /// Spend against plan, in percent of the plan.
    pub fn error_pct(&self) -> f64 {
        if self.plan.as_i64() == 0 {
            return 0.0;
        }
        (self.spend.as_i64() - self.plan.as_i64()) as f64 * 100.0 / self.plan.as_i64() as f64
    }

    pub fn utilisation_pct(&self) -> f64 {
        if self.plan.as_i64() == 0 {
            return 100.0;
        }
        self.spend.as_i64() as f64 * 100.0 / self.plan.as_i64() as f64
    }

    /// What was delivered against the cap, in percent of the cap.
    pub fn delivered_pct(&self) -> f64 {
        if self.cap.as_i64() == 0 {
            return 0.0;
        }
        self.spend.saturating_add(self.over_delivery).as_i64() as f64 * 100.0
            / self.cap.as_i64() as f64
    }
}

pub struct Report {
    pub rows: Vec<Row>,
    pub requests: u64,
    pub bids: u64,
    pub wins: u64,
    /// Wins whose notice came after the reservation expired.
    pub late_wins: u64,
    /// Bids per line item.
    pub bids_by_line_item: Vec<(String, u64)>,
    /// Why each line item that made no bid made none: what its requests
    /// could not meet, else `/v1/explain`'s reason for its request at the
    /// end of the run (account-manager probe: a line item in flight showed
    /// 0 bids and nothing else).
    pub no_bids: Vec<(String, String)>,
}

impl Report {
    /// Root-mean-square pacing error of one line item over the hours, in
    /// percent of plan.
    pub fn rmse_pct(&self, line_item: &str) -> f64 {
        let errs: Vec<f64> = self
            .rows
            .iter()
            .filter(|r| r.line_item == line_item && r.in_flight)
            .map(Row::error_pct)
            .collect();
        if errs.is_empty() {
            return 0.0;
        }
        (errs.iter().map(|e| e * e).sum::<f64>() / errs.len() as f64).sqrt()
    }

    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:>4}  {:<28} {:>8} {:>14} {:>12} {:>14} {:>8} {:>8} {:>10}",
            "hour", "line item", "budget", "spend", "over", "plan", "error%", "util%", "overspend"
        );
        for r in &self.rows {
            // Outside the flight: no plan, so no error or utilisation.
            let (plan, error, util) = if r.in_flight {
                (
                    r.plan.to_string(),
                    format!("{:.2}", r.error_pct()),
                    format!("{:.2}", r.utilisation_pct()),
                )
            } else {
                ("-".into(), "-".into(), "-".into())
            };
            let _ = writeln!(
                s,
                "{:>4}  {:<28} {:>8} {:>14} {:>12} {:>14} {:>8} {:>8} {:>10}",
                r.hour,
                r.line_item,
                if r.lifetime { "lifetime" } else { "daily" },
                r.spend.to_string(),
                r.over_delivery.to_string(),
                plan,
                error,
                util,
                r.overspend.to_string()
            );
        }
        let mut ids: Vec<&str> = self.rows.iter().map(|r| r.line_item.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            let _ = writeln!(s, "pacing RMSE {id}: {:.2}%", self.rmse_pct(id));
        }
        for (id, n) in &self.bids_by_line_item {
            let _ = writeln!(s, "bids {id}: {n}");
        }
        for (id, why) in &self.no_bids {
            let _ = writeln!(s, "no bids {id}: {why}");
        }
        let _ = writeln!(
            s,
            "requests {}, bids {}, wins {} ({} late), overspend total {}",
            self.requests,
            self.bids,
            self.wins,
            self.late_wins,
            self.rows
                .iter()
                .map(|r| r.overspend)
                .fold(Micros::ZERO, Micros::saturating_add)
        );
        s
    }
}

/// A notice the simulated exchange will send later.
struct Pending {
    at: i64,
    seq: u64,
    kind: Kind,
    query: String,
    late: bool,
    /// What the synthetic world does once the win is charged.
    shown: Option<Box<Shown>>,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// The bidder's settings in a simulation.
fn settings(opts: &Options) -> Settings {
    Settings {
        default_tmax: std::time::Duration::from_secs(3600),
        max_tmax: std::time::Duration::from_secs(3600),
        // Traffic comes from https pages: trackers must be https for VAST
        // and native to bid there. Nothing ever calls this host.
        public_url: "https://bidder.simulate.invalid".into(),
        model_path: opts.model_path.clone(),
        ..Settings::default()
    }
}

/// Runs the simulation on `config` with the audience data in `store`.
pub async fn run(config: Config, store: audiences::Store, opts: &Options) -> Report {
    let clock = Arc::new(ManualClock::new(opts.start));
    let settings = settings(opts);
    let late_after = late_win_after(&settings);
    let traffic: Vec<(Option<crate::traffic::Template>, Vec<u8>)> = if opts.traffic.is_empty() {
        let visitor_now = opts.start;
        let members = |a: &config::Audience, user: &str| {
            store.matches(
                a,
                &audiences::Visitor {
                    user: Some(user),
                    behavioural: true,
                    now: visitor_now,
                },
                &audiences::Page::default(),
            )
        };
        crate::traffic::synthesize(&config, &members, &opts.users)
            .into_iter()
            .map(|t| (Some(t), Vec::new()))
            .collect()
    } else {
        opts.traffic.iter().map(|b| (None, b.clone())).collect()
    };
    let app = App::new(settings, clock.clone(), store, None);
    app.load_model();
    let pacing = Pacing::of(&config);
    app.install(config);

    let mut rng = rand::rngs::SmallRng::seed_from_u64(opts.seed);
    let step_ms = (1000.0 / opts.qps.max(0.001)).max(1.0);
    let mut report = Report {
        rows: Vec::new(),
        requests: 0,
        bids: 0,
        wins: 0,
        late_wins: 0,
        bids_by_line_item: pacing
            .budgets
            .iter()
            .map(|(id, ..)| (id.clone(), 0))
            .collect(),
        no_bids: Vec::new(),
    };
    // Nothing to send (no line item to make requests for): no hours.
    if traffic.is_empty() {
        return report;
    }
    let mut pending: BinaryHeap<Reverse<Pending>> = BinaryHeap::new();
    let mut charged = Vec::new();
    let mut seq = 0u64;
    let mut last_expire = opts.start.as_millis();
    let start_ms = opts.start.as_millis() as f64;
    let mut n: u64 = 0;
    for hour in 0..opts.hours {
        let hour_end = opts.start.as_millis() + i64::from(hour + 1) * 3_600_000;
        loop {
            let at = (start_ms + n as f64 * step_ms) as i64;
            if at >= hour_end {
                break;
            }
            catch_up(
                SWEEP_MS,
                &app,
                &clock,
                &mut pending,
                &mut last_expire,
                at,
                &mut report,
                &mut charged,
            )
            .await;
            let (template, raw) = &traffic[(n as usize) % traffic.len()];
            // Users vary so per-user frequency caps behave as with real traffic.
            let user = format!("sim-user-{}", n % 50_000);
            let body = match template {
                Some(t) => t.body_for(&user),
                None => String::from_utf8_lossy(raw).replace("USER", &user),
            };
            n += 1;
            report.requests += 1;
            let BidAnswer::Bid(json, _) = app.handle_bid(body.as_bytes(), Instant::now()) else {
                continue;
            };
            let Ok(resp) = serde_json::from_slice::<ortb::BidResponse>(&json) else {
                continue;
            };
            for bid in resp.seatbid.iter().flat_map(|s| &s.bid) {
                report.bids += 1;
                if let Some(count) = report
                    .bids_by_line_item
                    .iter_mut()
                    .find(|(id, _)| Some(id.as_str()) == bid.cid.as_deref())
                {
                    count.1 += 1;
                }
                let won = rng.random_bool(opts.win_rate.clamp(0.0, 1.0));
                let (kind, url) = if won {
                    (Kind::Win, bid.nurl.as_deref())
                } else {
                    (Kind::Loss, bid.lurl.as_deref())
                };
                let Some(query) = url.and_then(|u| u.split_once('?')).map(|(_, q)| q) else {
                    continue;
                };
                let price = Micros(bid.price_micros).to_string();
                let query = query.replace(crate::notice::AUCTION_PRICE_MACRO, &price);
                let late = won && rng.random_bool(opts.late_wins.clamp(0.0, 1.0));
                // A loss the exchange never reports sends nothing.
                if !won && !rng.random_bool(opts.loss_notices.clamp(0.0, 1.0)) {
                    continue;
                }
                let when = if late { at + late_after } else { at };
                seq += 1;
                pending.push(Reverse(Pending {
                    at: when,
                    seq,
                    kind,
                    query,
                    late,
                    shown: None,
                }));
            }
            catch_up(
                SWEEP_MS,
                &app,
                &clock,
                &mut pending,
                &mut last_expire,
                at,
                &mut report,
                &mut charged,
            )
            .await;
        }
        catch_up(
            SWEEP_MS,
            &app,
            &clock,
            &mut pending,
            &mut last_expire,
            hour_end - 1,
            &mut report,
            &mut charged,
        )
        .await;
        pacing.end_hour(&app, clock.now(), hour, &mut report.rows);
    }
    report.no_bids = no_bids(&app, &report.bids_by_line_item, &traffic);
    report
}

/// Why each line item with no bid made none: what its synthetic request
/// could not meet, else the reason `/v1/explain` gives for it on that
/// request (or, with traffic of the caller's, on its first request) as
/// the run ends.
fn no_bids(
    app: &App,
    bids: &[(String, u64)],
    traffic: &[(Option<crate::traffic::Template>, Vec<u8>)],
) -> Vec<(String, String)> {
    let explained = |body: &[u8], id: &str| -> Option<String> {
        let json = app.explain(None, body).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&json).ok()?;
        let verdict = v["line_items"]
            .as_array()?
            .iter()
            .find(|l| l["line_item"] == id)?;
        let reason = verdict["reason"].as_str()?;
        Some(match verdict["detail"].as_str() {
            Some(detail) => format!("{reason} ({detail}), as /v1/explain says of its request"),
            None => format!("{reason}, as /v1/explain says of its request"),
        })
    };
    bids.iter()
        .filter(|(_, n)| *n == 0)
        .map(|(id, _)| {
            let template = traffic
                .iter()
                .find_map(|(t, _)| t.as_ref().filter(|t| &t.line_item == id));
            let why = match (template, traffic.first()) {
                (Some(t), _) => t
                    .unmet
                    .clone()
                    .or_else(|| explained(t.body_for("sim-user-0").as_bytes(), id)),
                (None, Some((None, raw))) => explained(
                    String::from_utf8_lossy(raw)
                        .replace("USER", "sim-user-0")
                        .as_bytes(),
                    id,
                )
                // Another line item's request, perhaps: said as such.
                .map(|why| why.replace("of its request", "of the traffic's first request")),
                _ => Some("no request was made for it".to_owned()),
            };
            (
                id.clone(),
                why.unwrap_or_else(|| "its requests got no bid".to_owned()),
            )
        })
        .collect()
}

/// Budgets, plans and overspend per line item and hour.
struct Pacing {
    /// Each line item's budget and flight, and its day-parts' open
    /// minutes (read at UTC: the plan shown is the one of a user without a
    /// time zone).
    budgets: Vec<(String, Budget, config::Flight, Option<config::OpenWeek>)>,
}

impl Pacing {
    fn of(config: &Config) -> Pacing {
        let budgets: Vec<_> = config
            .advertisers
            .iter()
            .flat_map(|a| &a.orders)
            .flat_map(|o| {
                o.line_items.iter().map(move |li| {
                    let open = li.targeting.dayparts.as_ref().map(|d| d.open_week());
                    (li.id.clone(), li.budget, o.flight, open)
                })
            })
            .collect();
        Pacing { budgets }
    }

    /// The rows of the hour ending at `now` (its last millisecond). The plan
    /// and the day's cap are the pacer's own (`ledger::planned_today`), at
    /// the UTC day and minute of `now`, whatever hour the run started at:
    /// a run from noon had taken each "day" from noon to noon, and showed
    /// overspend that never happened.
    fn end_hour(&self, app: &App, now: Timestamp, hour: u32, rows: &mut Vec<Row>) {
        let day = now.date();
        for (id, budget, flight, open) in &self.budgets {
            let spent = app.ledger().spent(&SpendKey::line_item(id), day);
            // Billed before today began (late wins of earlier days' bids
            // included), as the pacer counts it.
            let before_today = spent.lifetime.saturating_sub(spent.today);
            let (plan, cap, lifetime) = match *budget {
                // Daily budgets spend as demand comes: the plan is the cap.
                Budget::Daily(cap) => (cap, cap, false),
                // Without an end, a lifetime budget is not paced either.
                Budget::Lifetime(total) if flight.is_open_ended() => {
                    let left = total.saturating_sub(before_today);
                    (left, left, true)
                }
                Budget::Lifetime(total) => (
                    ledger::planned_today(
                        total,
                        ledger::Plan::of(
                            flight.end,
                            open.as_ref().map(|w| w.open_time(now, None, flight.end)),
                        ),
                        &spent,
                        now,
                    ),
                    total.saturating_sub(before_today),
                    true,
                ),
            };
            let delivered = spent.today.saturating_add(spent.over_today);
            let in_flight = flight.contains(now);
            rows.push(Row {
                hour: hour + 1,
                line_item: id.clone(),
                lifetime,
                spend: spent.today,
                over_delivery: spent.over_today,
                plan: if in_flight { plan } else { Micros::ZERO },
                cap,
                in_flight,
                overspend: delivered.saturating_sub(cap).max(Micros::ZERO),
            });
        }
    }
}

/// Moves the simulated clock to `now`: sends the notices due by then (each
/// at its time) and expires reservations every `sweep_ms` simulated
/// milliseconds (the server: every second).
#[allow(clippy::too_many_arguments)]
async fn catch_up(
    sweep_ms: i64,
    app: &App,
    clock: &ManualClock,
    pending: &mut BinaryHeap<Reverse<Pending>>,
    last_expire: &mut i64,
    now: i64,
    report: &mut Report,
    charged: &mut Vec<Shown>,
) {
    loop {
        let next_notice = pending.peek().map(|p| p.0.at).filter(|&t| t <= now);
        let next_expire = (*last_expire + sweep_ms <= now).then_some(*last_expire + sweep_ms);
        match (next_notice, next_expire) {
            (Some(t), e) if e.is_none_or(|e| t < e) => {
                let Some(Reverse(p)) = pending.pop() else {
                    break;
                };
                clock.set(Timestamp(t.max(clock.now().as_millis())));
                let result = app.notice(p.kind, &p.query).await;
                if p.kind == Kind::Win && result == Ok(crate::metrics::NoticeResult::Charged) {
                    report.wins += 1;
                    report.late_wins += u64::from(p.late);
                    charged.extend(p.shown.map(|s| *s));
                }
            }
            (_, Some(e)) => {
                clock.set(Timestamp(e.max(clock.now().as_millis())));
                app.expire_reservations();
                *last_expire = e;
            }
            _ => break,
        }
    }
    clock.set(Timestamp(now.max(clock.now().as_millis())));
}

/// A won bid in the synthetic world: what its page will do once the win
/// is charged.
pub(crate) struct Shown {
    line_item: usize,
    price: Micros,
    impression_query: Option<String>,
    click_query: Option<String>,
    request: crate::world::Request,
}

/// One line item's results in the synthetic world.
#[derive(Clone, Debug, Default)]
pub struct WorldLineItem {
    pub id: String,
    pub bids: u64,
    /// Wins charged.
    pub wins: u64,
    /// Impressions the bidder counted (its impression URL called).
    pub impressions: u64,
    /// Clicks the bidder counted (its click URL called).
    pub clicks: u64,
    /// Conversions, counted by the simulator (a conversion needs a click).
    pub conversions: u64,
    /// The sum of the true click probabilities of its impressions: the
    /// clicks it bought in expectation, without the draws' noise.
    pub expected_clicks: f64,
    /// What its charged wins cost.
    pub spend: Micros,
    /// Σ (1 − price / value) over the sampled first-price bids (see
    /// [`EXPLAIN_EVERY`]), and how many.
    pub shading_sum: f64,
    pub shading_samples: u64,
}

impl WorldLineItem {
    pub fn win_rate(&self) -> f64 {
        ratio(self.wins as f64, self.bids as f64)
    }

    pub fn clicks_per_dollar(&self) -> f64 {
        ratio(self.clicks as f64, self.spend.as_i64() as f64 / 1e6)
    }

    pub fn expected_clicks_per_dollar(&self) -> f64 {
        ratio(self.expected_clicks, self.spend.as_i64() as f64 / 1e6)
    }

    /// Spend per win, USD.
    pub fn spend_per_win(&self) -> f64 {
        ratio(self.spend.as_i64() as f64 / 1e6, self.wins as f64)
    }

    /// Average share of the value shaded off, over the sampled bids.
    pub fn average_shading(&self) -> f64 {
        ratio(self.shading_sum, self.shading_samples as f64)
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

/// One impression of the synthetic world, with its truth: what a trainer
/// learns from and what a model is judged against.
#[derive(Clone, Debug)]
pub struct WorldImpression {
    pub line_item: String,
    pub exchange: &'static str,
    pub site: &'static str,
    pub devicetype: i32,
    pub os: &'static str,
    pub hour: u32,
    pub p_click: f64,
    pub p_conversion: f64,
    pub clicked: bool,
    pub converted: bool,
    pub price: Micros,
    /// The impression URL's `f` parameter (the compact features the bid
    /// was scored on), where the tracking URL carries one.
    pub features: Option<String>,
}

pub struct WorldReport {
    /// Pacing per hour and line item; `wins` there are charged wins.
    pub pacing: Report,
    pub line_items: Vec<WorldLineItem>,
    pub impressions: Vec<WorldImpression>,
    /// Lost bids, and those the exchange never reported.
    pub losses: u64,
    pub unreported_losses: u64,
}

impl WorldReport {
    pub fn line_item(&self, id: &str) -> Option<&WorldLineItem> {
        self.line_items.iter().find(|l| l.id == id)
    }

    pub fn overspend(&self) -> Micros {
        self.pacing
            .rows
            .iter()
            .map(|r| r.overspend)
            .fold(Micros::ZERO, Micros::saturating_add)
    }

    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<20} {:>8} {:>8} {:>6} {:>8} {:>7} {:>6} {:>12} {:>10} {:>10} {:>9}",
            "line item",
            "bids",
            "wins",
            "win%",
            "imps",
            "clicks",
            "convs",
            "spend",
            "clicks/$",
            "spend/win",
            "shading%"
        );
        for l in &self.line_items {
            let _ = writeln!(
                s,
                "{:<20} {:>8} {:>8} {:>6.1} {:>8} {:>7} {:>6} {:>12} {:>10.3} {:>10.5} {:>9.1}",
                l.id,
                l.bids,
                l.wins,
                l.win_rate() * 100.0,
                l.impressions,
                l.clicks,
                l.conversions,
                l.spend.to_string(),
                l.clicks_per_dollar(),
                l.spend_per_win(),
                l.average_shading() * 100.0
            );
        }
        let _ = writeln!(
            s,
            "requests {}, bids {}, wins {}, losses {} ({} never reported), overspend total {}",
            self.pacing.requests,
            self.pacing.bids,
            self.pacing.wins,
            self.losses,
            self.unreported_losses,
            self.overspend()
        );
        s
    }
}

/// How often the replay sweeps reservations, as the server does.
const SWEEP_MS: i64 = 1000;

/// How often the synthetic world sweeps reservations: every 5 simulated
/// seconds rather than every second, which is most of a quiet simulated
/// day's cost in a debug build. Against the 60-second reservation TTL an
/// unanswered bid holds its cost and waits for its loss at most 5 s longer.
pub const WORLD_SWEEP_MS: i64 = 5000;

/// One request in this many is also explained (without bidding) to learn
/// the value its bids were shaded from: the bid response does not say.
pub const EXPLAIN_EVERY: u64 = 10;

/// Runs `config` against the synthetic world ([`crate::world`]): requests
/// at `opts.qps` for `opts.hours` from `opts.start`, seeded with
/// `opts.seed`; `win_rate`, `late_wins`, `loss_notices` and `traffic` are
/// the world's own business and ignored. The world's exchanges are added
/// to the config's profiles where it has none of that id.
pub async fn run_world(mut config: Config, store: audiences::Store, opts: &Options) -> WorldReport {
    use crate::track::Path;
    use crate::world::{World, LOSS_NOTICE_SHARE};

    let clock = Arc::new(ManualClock::new(opts.start));
    for e in crate::world::exchanges() {
        if !config.exchanges.iter().any(|x| x.id == e.id) {
            config.exchanges.push(e);
        }
    }
    let app = App::new(settings(opts), clock.clone(), store, None);
    app.load_model();
    let pacing = Pacing::of(&config);
    app.install(config);

    let mut world = World::new(opts.seed);
    let mut report = WorldReport {
        pacing: Report {
            rows: Vec::new(),
            requests: 0,
            bids: 0,
            wins: 0,
            late_wins: 0,
            bids_by_line_item: Vec::new(),
            no_bids: Vec::new(),
        },
        line_items: pacing
            .budgets
            .iter()
            .map(|(id, ..)| WorldLineItem {
                id: id.clone(),
                ..WorldLineItem::default()
            })
            .collect(),
        impressions: Vec::new(),
        losses: 0,
        unreported_losses: 0,
    };
    let mut pending: BinaryHeap<Reverse<Pending>> = BinaryHeap::new();
    let mut charged: Vec<Shown> = Vec::new();
    let mut seq = 0u64;
    let mut last_expire = opts.start.as_millis();
    let start_ms = opts.start.as_millis() as f64;
    let step_ms = (1000.0 / opts.qps.max(0.001)).max(1.0);
    let mut n: u64 = 0;
    for hour in 0..opts.hours {
        let hour_end = opts.start.as_millis() + i64::from(hour + 1) * 3_600_000;
        loop {
            let at = (start_ms + n as f64 * step_ms) as i64;
            if at >= hour_end {
                break;
            }
            catch_up(
                WORLD_SWEEP_MS,
                &app,
                &clock,
                &mut pending,
                &mut last_expire,
                at,
                &mut report.pacing,
                &mut charged,
            )
            .await;
            show(&app, &mut charged, &mut report);
            let hour_of_day = u32::from(Timestamp(at).minute_of_day() / 60);
            let req = world.request(hour_of_day);
            n += 1;
            report.pacing.requests += 1;
            if n.is_multiple_of(EXPLAIN_EVERY) {
                sample_shading(&app, &req, &mut report.line_items);
            }
            let snap = app.snapshot();
            let profile = snap
                .as_deref()
                .and_then(|s| s.profile(Some(req.exchange())));
            let answer = app.bid_with(
                snap.as_deref(),
                profile,
                req.body.as_bytes(),
                Instant::now(),
                crate::Dialect::default(),
            );
            let BidAnswer::Bid(json, _) = answer else {
                continue;
            };
            let Ok(resp) = serde_json::from_slice::<ortb::BidResponse>(&json) else {
                continue;
            };
            for bid in resp.seatbid.iter().flat_map(|s| &s.bid) {
                report.pacing.bids += 1;
                let Some(li) = report
                    .line_items
                    .iter()
                    .position(|l| Some(l.id.as_str()) == bid.cid.as_deref())
                else {
                    continue;
                };
                report.line_items[li].bids += 1;
                let price = Micros(bid.price_micros);
                // First price: the highest bid wins and pays itself; a tie
                // goes to us (the bidder never bids under the floor).
                let won = price >= req.competing;
                let (kind, url, clearing) = if won {
                    (Kind::Win, bid.nurl.as_deref(), price)
                } else {
                    report.losses += 1;
                    if req.loss_report >= LOSS_NOTICE_SHARE {
                        report.unreported_losses += 1;
                        continue;
                    }
                    (Kind::Loss, bid.lurl.as_deref(), req.competing)
                };
                let Some(query) = url.and_then(|u| u.split_once('?')).map(|(_, q)| q) else {
                    continue;
                };
                let query =
                    query.replace(crate::notice::AUCTION_PRICE_MACRO, &clearing.to_string());
                let adm = bid.adm.as_deref().unwrap_or_default();
                let shown = won.then(|| {
                    Box::new(Shown {
                        line_item: li,
                        price,
                        impression_query: tracking_query(adm, Path::Impression),
                        click_query: tracking_query(adm, Path::Click),
                        request: req.clone(),
                    })
                });
                seq += 1;
                pending.push(Reverse(Pending {
                    at,
                    seq,
                    kind,
                    query,
                    late: false,
                    shown,
                }));
            }
            catch_up(
                WORLD_SWEEP_MS,
                &app,
                &clock,
                &mut pending,
                &mut last_expire,
                at,
                &mut report.pacing,
                &mut charged,
            )
            .await;
            show(&app, &mut charged, &mut report);
        }
        catch_up(
            WORLD_SWEEP_MS,
            &app,
            &clock,
            &mut pending,
            &mut last_expire,
            hour_end - 1,
            &mut report.pacing,
            &mut charged,
        )
        .await;
        show(&app, &mut charged, &mut report);
        pacing.end_hour(&app, clock.now(), hour, &mut report.pacing.rows);
    }
    report.pacing.bids_by_line_item = report
        .line_items
        .iter()
        .map(|l| (l.id.clone(), l.bids))
        .collect();
    report
}

/// The charged wins' pages: the impression URL is called, the click URL
/// with the true click probability, and a click converts with the site's
/// conversion rate.
fn show(app: &App, charged: &mut Vec<Shown>, report: &mut WorldReport) {
    use crate::track::Path;
    for s in charged.drain(..) {
        let r = &s.request;
        let l = &mut report.line_items[s.line_item];
        l.wins += 1;
        l.spend = l.spend.saturating_add(ledger::impression_cost(s.price));
        let counted = |a: Result<crate::app::TrackAnswer, _>| {
            matches!(
                a,
                Ok(crate::app::TrackAnswer::Counted { counted: true }
                    | crate::app::TrackAnswer::Redirect { counted: true, .. })
            )
        };
        let Some(q) = &s.impression_query else {
            continue;
        };
        if !counted(app.track(Path::Impression, q)) {
            continue;
        }
        l.impressions += 1;
        let p_click = r.p_click();
        l.expected_clicks += p_click;
        let clicked = r.click < p_click
            && s.click_query
                .as_deref()
                .is_some_and(|q| counted(app.track(Path::Click, q)));
        let site = &crate::world::SITES[r.site];
        let converted = clicked && r.conversion < site.conversion_rate;
        l.clicks += u64::from(clicked);
        l.conversions += u64::from(converted);
        let device = &crate::world::DEVICES[r.device];
        report.impressions.push(WorldImpression {
            line_item: l.id.clone(),
            exchange: r.exchange(),
            site: site.domain,
            devicetype: device.devicetype,
            os: device.os,
            hour: r.hour,
            p_click,
            p_conversion: r.p_conversion(),
            clicked,
            converted,
            price: s.price,
            features: crate::form::field(q, "f"),
        });
    }
}

/// The query of the `path` tracking URL in a banner's markup (attribute
/// escaped: `&amp;` between parameters).
fn tracking_query(adm: &str, path: crate::track::Path) -> Option<String> {
    let marker = match path {
        crate::track::Path::Impression => "/track/impression?",
        crate::track::Path::Click => "/track/click?",
        crate::track::Path::Event => "/track/event?",
    };
    let start = adm.find(marker)? + marker.len();
    let end = adm[start..].find('"').map_or(adm.len(), |e| start + e);
    Some(adm[start..end].replace("&amp;", "&"))
}

/// Explains `req` (nothing is bid or held) and adds each bidding line
/// item's share shaded off its value.
fn sample_shading(app: &App, req: &crate::world::Request, items: &mut [WorldLineItem]) {
    let Ok(json) = app.explain(Some(req.exchange()), req.body.as_bytes()) else {
        return;
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&json) else {
        return;
    };
    for verdict in v["line_items"].as_array().into_iter().flatten() {
        if verdict["bids"] != true {
            continue;
        }
        let (Some(price), Some(value)) = (
            verdict["price"].as_f64(),
            verdict["bidding"]["value"].as_f64(),
        ) else {
            continue;
        };
        let Some(l) = items
            .iter_mut()
            .find(|l| Some(l.id.as_str()) == verdict["line_item"].as_str())
        else {
            continue;
        };
        if value > 0.0 {
            l.shading_sum += 1.0 - price / value;
            l.shading_samples += 1;
        }
    }
}

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
    /// What the plan says by the end of this hour.
    pub plan: Micros,
    pub cap: Micros,
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
}

impl Report {
    /// Root-mean-square pacing error of one line item over the hours, in
    /// percent of plan.
    pub fn rmse_pct(&self, line_item: &str) -> f64 {
        let errs: Vec<f64> = self
            .rows
            .iter()
            .filter(|r| r.line_item == line_item)
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
            let _ = writeln!(
                s,
                "{:>4}  {:<28} {:>8} {:>14} {:>12} {:>14} {:>8.2} {:>8.2} {:>10}",
                r.hour,
                r.line_item,
                if r.lifetime { "lifetime" } else { "daily" },
                r.spend.to_string(),
                r.over_delivery.to_string(),
                r.plan.to_string(),
                r.error_pct(),
                r.utilisation_pct(),
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

/// Runs the simulation on `config` with the audience data in `store`.
pub async fn run(config: Config, store: audiences::Store, opts: &Options) -> Report {
    let clock = Arc::new(ManualClock::new(opts.start));
    let settings = Settings {
        default_tmax: std::time::Duration::from_secs(3600),
        max_tmax: std::time::Duration::from_secs(3600),
        // Traffic comes from https pages: trackers must be https for VAST
        // and native to bid there. Nothing ever calls this host.
        public_url: "https://bidder.simulate.invalid".into(),
        ..Settings::default()
    };
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
    let budgets: Vec<(String, Budget, config::Flight)> = config
        .advertisers
        .iter()
        .flat_map(|a| &a.orders)
        .flat_map(|o| {
            o.line_items
                .iter()
                .map(move |li| (li.id.clone(), li.budget, o.flight))
        })
        .collect();
    app.install(config);

    let mut rng = rand::rngs::SmallRng::seed_from_u64(opts.seed);
    let step_ms = (1000.0 / opts.qps.max(0.001)).max(1.0);
    let mut report = Report {
        rows: Vec::new(),
        requests: 0,
        bids: 0,
        wins: 0,
        late_wins: 0,
        bids_by_line_item: budgets.iter().map(|(id, _, _)| (id.clone(), 0)).collect(),
    };
    let mut pending: BinaryHeap<Reverse<Pending>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut last_expire = opts.start.as_millis();
    let start_ms = opts.start.as_millis() as f64;
    // Lifetime spend before the day, per line item, for the plan.
    let mut before_day: Vec<Micros> = budgets.iter().map(|_| Micros::ZERO).collect();
    let mut n: u64 = 0;
    for hour in 0..opts.hours {
        let hour_end = opts.start.as_millis() + i64::from(hour + 1) * 3_600_000;
        if hour % 24 == 0 {
            let day = Timestamp(opts.start.as_millis() + i64::from(hour) * 3_600_000).date();
            for (i, (id, _, _)) in budgets.iter().enumerate() {
                before_day[i] = app.ledger().spent(&SpendKey::line_item(id), day).lifetime;
            }
        }
        loop {
            let at = (start_ms + n as f64 * step_ms) as i64;
            if at >= hour_end {
                break;
            }
            catch_up(
                &app,
                &clock,
                &mut pending,
                &mut last_expire,
                at,
                &mut report,
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
                }));
            }
            catch_up(
                &app,
                &clock,
                &mut pending,
                &mut last_expire,
                at,
                &mut report,
            )
            .await;
        }
        catch_up(
            &app,
            &clock,
            &mut pending,
            &mut last_expire,
            hour_end - 1,
            &mut report,
        )
        .await;
        let now = clock.now();
        let day = now.date();
        let hours_into_day = i64::from(now.minute_of_day()) / 60 + 1;
        for (i, (id, budget, flight)) in budgets.iter().enumerate() {
            let spent = app.ledger().spent(&SpendKey::line_item(id), day);
            let (plan, cap, lifetime) = match *budget {
                // Daily budgets spend as demand comes: the plan is the cap.
                Budget::Daily(cap) => (cap, cap, false),
                Budget::Lifetime(total) => {
                    let days_left =
                        (flight.end.days_since_epoch() - day.days_since_epoch() + 1).max(1);
                    let today = total.saturating_sub(before_day[i]).as_i64() / days_left;
                    (
                        Micros(today * hours_into_day / 24),
                        total.saturating_sub(before_day[i]),
                        true,
                    )
                }
            };
            let delivered = spent.today.saturating_add(spent.over_today);
            report.rows.push(Row {
                hour: hour + 1,
                line_item: id.clone(),
                lifetime,
                spend: spent.today,
                over_delivery: spent.over_today,
                plan,
                cap,
                overspend: delivered.saturating_sub(cap).max(Micros::ZERO),
            });
        }
    }
    report
}

/// Moves the simulated clock to `now`: sends the notices due by then (each
/// at its time) and expires reservations once a simulated second, as the
/// server does.
async fn catch_up(
    app: &App,
    clock: &ManualClock,
    pending: &mut BinaryHeap<Reverse<Pending>>,
    last_expire: &mut i64,
    now: i64,
    report: &mut Report,
) {
    loop {
        let next_notice = pending.peek().map(|p| p.0.at).filter(|&t| t <= now);
        let next_expire = (*last_expire + 1000 <= now).then_some(*last_expire + 1000);
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

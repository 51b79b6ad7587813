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

use config::{Budget, Clock, Config, ManualClock, Micros, Timestamp};
use rand::{Rng, SeedableRng};

use crate::app::{App, BidAnswer, Settings};
use crate::notice::Kind;

pub struct Options {
    pub start: Timestamp,
    pub hours: u32,
    /// Requests per simulated second when `traffic` is empty.
    pub qps: f64,
    /// Bid requests (JSON), sent in turn.
    pub traffic: Vec<Vec<u8>>,
    pub win_rate: f64,
    pub seed: u64,
}

/// One line item at the end of one simulated hour.
#[derive(Clone, Debug)]
pub struct Row {
    pub hour: u32,
    pub line_item: String,
    pub lifetime: bool,
    /// Spent so far in the simulated day (UTC).
    pub spend: Micros,
    /// What the plan says by the end of this hour.
    pub plan: Micros,
    pub cap: Micros,
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
}

pub struct Report {
    pub rows: Vec<Row>,
    pub requests: u64,
    pub bids: u64,
    pub wins: u64,
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
            "{:>4}  {:<28} {:>8} {:>14} {:>14} {:>8} {:>8} {:>10}",
            "hour", "line item", "budget", "spend", "plan", "error%", "util%", "overspend"
        );
        for r in &self.rows {
            let _ = writeln!(
                s,
                "{:>4}  {:<28} {:>8} {:>14} {:>14} {:>8.2} {:>8.2} {:>10}",
                r.hour,
                r.line_item,
                if r.lifetime { "lifetime" } else { "daily" },
                r.spend.to_string(),
                r.plan.to_string(),
                r.error_pct(),
                r.utilisation_pct(),
                r.overspend.to_string()
            );
        }
        let mut ids: Vec<&str> = self.rows.iter().map(|r| r.line_item.as_str()).collect();
        ids.dedup();
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            let _ = writeln!(s, "pacing RMSE {id}: {:.2}%", self.rmse_pct(id));
        }
        let _ = writeln!(
            s,
            "requests {}, bids {}, wins {}, overspend total {}",
            self.requests,
            self.bids,
            self.wins,
            self.rows
                .iter()
                .map(|r| r.overspend)
                .fold(Micros::ZERO, Micros::saturating_add)
        );
        s
    }
}

/// A banner request most display line items can bid on, for `--qps`.
const DEFAULT_REQUEST: &str = r#"{"id":"sim","tmax":1000,"imp":[{"id":"1","banner":{"format":[{"w":300,"h":250},{"w":728,"h":90},{"w":320,"h":50},{"w":160,"h":600},{"w":300,"h":600}]}}],"site":{"domain":"sim.example","page":"https://sim.example/"},"device":{"devicetype":2,"geo":{"country":"USA"}},"user":{"buyeruid":"USER"}}"#;

pub async fn run(config: Config, opts: &Options) -> Report {
    let clock = Arc::new(ManualClock::new(opts.start));
    let app = App::new(
        Settings {
            default_tmax: std::time::Duration::from_secs(3600),
            max_tmax: std::time::Duration::from_secs(3600),
            ..Settings::default()
        },
        clock.clone(),
        audiences::Store::new(),
        None,
    );
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

    let default_traffic = [DEFAULT_REQUEST.as_bytes().to_vec()];
    let traffic: &[Vec<u8>] = if opts.traffic.is_empty() {
        &default_traffic
    } else {
        &opts.traffic
    };
    let mut rng = rand::rngs::SmallRng::seed_from_u64(opts.seed);
    let step_ms = (1000.0 / opts.qps.max(0.001)).max(1.0);
    let mut report = Report {
        rows: Vec::new(),
        requests: 0,
        bids: 0,
        wins: 0,
    };
    let start_ms = opts.start.as_millis() as f64;
    // Lifetime spend before the day, per line item, for the plan.
    let mut before_day: Vec<Micros> = budgets.iter().map(|_| Micros::ZERO).collect();
    let mut n: u64 = 0;
    for hour in 0..opts.hours {
        let hour_end = opts.start.as_millis() + i64::from(hour + 1) * 3_600_000;
        if hour % 24 == 0 {
            let day = Timestamp(opts.start.as_millis() + i64::from(hour) * 3_600_000).date();
            for (i, (id, _, _)) in budgets.iter().enumerate() {
                before_day[i] = app
                    .ledger()
                    .spent(&ledger::SpendKey::line_item(id), day)
                    .lifetime;
            }
        }
        loop {
            let at = (start_ms + n as f64 * step_ms) as i64;
            if at >= hour_end {
                break;
            }
            clock.set(Timestamp(at));
            let template = &traffic[(n as usize) % traffic.len()];
            // Users vary so per-user frequency caps behave as with real traffic.
            let body = String::from_utf8_lossy(template)
                .replace("USER", &format!("sim-user-{}", n % 50_000));
            n += 1;
            report.requests += 1;
            if let BidAnswer::Bid(json, _) = app.handle_bid(body.as_bytes(), Instant::now()) {
                let Ok(resp) = serde_json::from_slice::<ortb::BidResponse>(&json) else {
                    continue;
                };
                for bid in resp.seatbid.iter().flat_map(|s| &s.bid) {
                    report.bids += 1;
                    let won = rng.random_bool(opts.win_rate.clamp(0.0, 1.0));
                    let url = if won {
                        bid.nurl.as_deref()
                    } else {
                        bid.lurl.as_deref()
                    };
                    let Some(query) = url.and_then(|u| u.split_once('?')).map(|(_, q)| q) else {
                        continue;
                    };
                    if won {
                        let price = Micros(bid.price_micros).to_string();
                        let q = query.replace(crate::notice::AUCTION_PRICE_MACRO, &price);
                        if app.notice(Kind::Win, &q).await.is_ok() {
                            report.wins += 1;
                        }
                    } else {
                        let _ = app.notice(Kind::Loss, query).await;
                    }
                }
            }
        }
        clock.set(Timestamp(hour_end - 1));
        app.expire_reservations();
        let now = clock.now();
        let day = now.date();
        let hours_into_day = i64::from(now.minute_of_day()) / 60 + 1;
        for (i, (id, budget, flight)) in budgets.iter().enumerate() {
            let spent = app.ledger().spent(&ledger::SpendKey::line_item(id), day);
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
            report.rows.push(Row {
                hour: hour + 1,
                line_item: id.clone(),
                lifetime,
                spend: spent.today,
                plan,
                cap,
                overspend: spent.today.saturating_sub(cap).max(Micros::ZERO),
            });
        }
    }
    report
}

//! What an impression costs, what a budget allows and what the pacing plan
//! allows now: the arithmetic every backend shares.

use config::{Date, Micros, Timestamp};

use crate::key::SpendKey;

/// The cost of one impression at a CPM, rounded up to the micro so that
/// budget checks never under-estimate what a win will cost.
pub fn impression_cost(cpm: Micros) -> Micros {
    Micros(cpm.as_i64().saturating_add(999) / 1000)
}

/// The budget a key must stay within.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cap {
    /// Spent as demand comes, per UTC day.
    Daily(Micros),
    /// A total over the flight, not paced (an order's budget).
    Lifetime(Micros),
    /// A total over the flight, spread evenly: see [`planned_today`].
    Paced { total: Micros, plan: Plan },
    /// No cap known (the line item left the config): record, never refuse.
    None,
}

/// The minutes a paced budget is spread over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Every minute to the end of the flight's last day.
    Even { flight_end: Date },
    /// A day-parted line item's open minutes, as they are now
    /// ([`config::OpenWeek::open_time`], which counted them to the end of
    /// its flight). One variant or the other, not both: the cap is copied
    /// for every budget a bid checks, and is kept to its size before.
    Open(config::OpenTime),
}

impl Plan {
    /// Day-parted (`open`) or not.
    pub fn of(flight_end: Date, open: Option<config::OpenTime>) -> Plan {
        match open {
            Some(o) => Plan::Open(o),
            None => Plan::Even { flight_end },
        }
    }
}

impl Cap {
    /// A line item's budget: daily as demand comes, or lifetime paced
    /// evenly to the end of its flight; a lifetime budget on a flight
    /// without an end ([`config::Flight::is_open_ended`]) is not paced.
    /// A day-parted line item's plan is then made [`Plan::Open`] by the
    /// caller, which knows the request's time and time zone.
    pub fn line_item(budget: config::Budget, flight: config::Flight) -> Cap {
        match budget {
            config::Budget::Daily(c) => Cap::Daily(c),
            config::Budget::Lifetime(total) if flight.is_open_ended() => Cap::Lifetime(total),
            config::Budget::Lifetime(total) => Cap::Paced {
                total,
                plan: Plan::Even {
                    flight_end: flight.end,
                },
            },
        }
    }

    /// An order's budget: a total over its flight, not paced (its line
    /// items pace themselves).
    pub fn order(total: Micros) -> Cap {
        Cap::Lifetime(total)
    }
}

/// The kind of a line item's budget, remembered once it has spent: a line
/// item removed and added back may not change it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BudgetKind {
    Daily,
    Lifetime,
}

impl BudgetKind {
    pub fn of(cap: Cap) -> Option<BudgetKind> {
        match cap {
            Cap::Daily(_) => Some(BudgetKind::Daily),
            Cap::Lifetime(_) | Cap::Paced { .. } => Some(BudgetKind::Lifetime),
            Cap::None => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BudgetKind::Daily => "daily",
            BudgetKind::Lifetime => "lifetime",
        }
    }

    /// What [`Self::as_str`] wrote (as Redis keeps it); `None` otherwise.
    pub fn parse(s: &str) -> Option<BudgetKind> {
        [BudgetKind::Daily, BudgetKind::Lifetime]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// A key and its cap.
#[derive(Clone, Debug)]
pub struct Limit<'a> {
    pub key: &'a SpendKey,
    pub cap: Cap,
}

/// What has been spent, and is held, under one key, seen from one UTC day.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Spent {
    /// Billed for bids made on that day.
    pub today: Micros,
    /// Billed since the flight started.
    pub lifetime: Micros,
    /// Held by that day's bids: in flight, being charged, and the learned
    /// share of those whose reservation expired without a notice.
    pub held_today: Micros,
    /// The same over every day.
    pub held: Micros,
    /// Won on that day beyond a cap: delivered, not billed.
    pub over_today: Micros,
}

/// Why a reservation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A daily or lifetime budget has no room for the bid.
    Budget,
    /// A paced budget is ahead of its plan for now.
    Pacing,
    /// The user has seen the line item as often as its cap allows.
    Frequency,
    /// The shared state (Redis) cannot be reached, or the table of bids in
    /// flight is full (`Options::max_bids`): budgets fail closed.
    Unavailable,
}

impl Spent {
    /// Whether `amount` more stays within `cap` at `now`, counting what is
    /// held; `Err` tells which rule refused.
    pub fn room_for(&self, cap: Cap, amount: Micros, now: Timestamp) -> Result<(), Refusal> {
        let within = |c: Micros, used: Micros| used.saturating_add(amount) <= c;
        match cap {
            Cap::Daily(c) if !within(c, self.today.saturating_add(self.held_today)) => {
                Err(Refusal::Budget)
            }
            Cap::Lifetime(c) if !within(c, self.lifetime.saturating_add(self.held)) => {
                Err(Refusal::Budget)
            }
            Cap::Paced { total, plan } => {
                if !within(total, self.lifetime.saturating_add(self.held)) {
                    return Err(Refusal::Budget);
                }
                // A bid may go out while what is held is at or under the
                // plan: spend overshoots the curve by one impression at most
                // (an impression may cost more than a minute's plan).
                let planned = planned_today(total, plan, self, now);
                if self.today.saturating_add(self.held_today) > planned {
                    return Err(Refusal::Pacing);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// How much more may be billed under `cap` (spend only): a win is billed
    /// up to this, the rest is over-delivery.
    pub fn left(&self, cap: Cap) -> Micros {
        match cap {
            Cap::Daily(c) => c.saturating_sub(self.today).max(Micros::ZERO),
            Cap::Lifetime(c) | Cap::Paced { total: c, .. } => {
                c.saturating_sub(self.lifetime).max(Micros::ZERO)
            }
            Cap::None => Micros(i64::MAX),
        }
    }
}

/// Even pacing of a lifetime budget: what is left at the start of today is
/// spread evenly over the minutes left in the flight, and today may have
/// spent its minutes' share by the end of the current one
/// ([`plan_minutes`]). A day-parted line item counts only its open minutes
/// (`open`), so a line item open two hours a day spends each day's share
/// in those hours. A line item may hold (spend plus reservations) up to the
/// plan, so spend follows the even curve to within about one impression per
/// minute. This is the time-sliced budget cap of throttling pacers (Lee,
/// Jalali, Dasdan, "Real Time Bid Optimization with Smooth Budget Delivery
/// in Online Advertising", 2013), decided per slot from spend instead of
/// from a probability.
pub fn planned_today(total: Micros, plan: Plan, spent: &Spent, now: Timestamp) -> Micros {
    let before_today = spent.lifetime.saturating_sub(spent.today);
    let left = total.saturating_sub(before_today).as_i64().max(0);
    let (elapsed, span) = plan_minutes(plan, now);
    // i128: budgets up to i64 micros times the minutes of any flight
    // cannot overflow.
    Micros((i128::from(left) * i128::from(elapsed) / i128::from(span)) as i64)
}

/// The minutes a paced budget's plan is made of, as `(elapsed, span)`: those
/// of today through the current one, and those from the start of today to
/// the end of the flight; every minute, or a day-parted line item's open
/// ones. The plan is what was left at the start of today times
/// `elapsed / span`; with no open minute left (`span` 0), all of it.
pub fn plan_minutes(plan: Plan, now: Timestamp) -> (i64, i64) {
    const MINUTES: i64 = 24 * 60;
    match plan {
        Plan::Open(o) if o.span > 0 => (i64::from(o.elapsed.min(o.span)), i64::from(o.span)),
        Plan::Open(_) => (1, 1),
        Plan::Even { flight_end } => {
            let days_left =
                (flight_end.days_since_epoch() - now.date().days_since_epoch() + 1).max(1);
            (i64::from(now.minute_of_day()) + 1, days_left * MINUTES)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    fn spent(today: i64, lifetime: i64) -> Spent {
        Spent {
            today: Micros::from_units(today),
            lifetime: Micros::from_units(lifetime),
            ..Spent::default()
        }
    }

    #[test]
    fn pacing_follows_an_even_curve() {
        let end = Date::parse("2026-11-30").unwrap();
        let paced = Cap::Paced {
            total: Micros::from_units(700),
            plan: Plan::Even { flight_end: end },
        };
        let zero = Micros::ZERO;
        // 2026-11-24 is 7 days before the end, inclusive: 100 a day.
        let noon = t("2026-11-24T12:00:00Z");
        assert_eq!(spent(50, 50).room_for(paced, zero, noon), Ok(()));
        assert_eq!(
            spent(51, 51).room_for(paced, zero, noon),
            Err(Refusal::Pacing)
        );
        assert_eq!(
            spent(0, 0).room_for(paced, zero, t("2026-11-24T00:00:00Z")),
            Ok(())
        );
        // Under-spent earlier days raise today's share: 600 left over 6 days.
        let noon25 = t("2026-11-25T12:00:00Z");
        assert_eq!(spent(50, 150).room_for(paced, zero, noon25), Ok(()));
        assert_eq!(
            spent(51, 151).room_for(paced, zero, noon25),
            Err(Refusal::Pacing)
        );
        // The last minute of the last day may spend everything left.
        assert_eq!(
            spent(99, 699).room_for(paced, zero, t("2026-11-30T23:59:00Z")),
            Ok(())
        );
        // What is held counts as spent, and so does the bid itself.
        let mut s = spent(40, 40);
        s.held_today = Micros::from_units(11);
        assert_eq!(s.room_for(paced, zero, noon), Err(Refusal::Pacing));
        assert_eq!(
            spent(40, 40).room_for(paced, Micros::from_units(30), noon),
            Ok(()),
            "one impression may overshoot the plan"
        );
        assert_eq!(
            spent(0, 700).room_for(paced, Micros(1), t("2026-11-30T23:59:00Z")),
            Err(Refusal::Budget)
        );
    }

    #[test]
    fn caps_count_what_is_held() {
        let now = t("2026-11-24T12:00:00Z");
        let mut s = spent(2, 5);
        s.held_today = Micros::from_units(1);
        s.held = Micros::from_units(2);
        let m = Micros::from_units;
        assert_eq!(s.room_for(Cap::Daily(m(4)), m(1), now), Ok(()));
        assert_eq!(
            s.room_for(Cap::Daily(m(4)), Micros(1_000_001), now),
            Err(Refusal::Budget)
        );
        assert_eq!(s.room_for(Cap::Lifetime(m(8)), m(1), now), Ok(()));
        assert_eq!(
            s.room_for(Cap::Lifetime(m(8)), m(2), now),
            Err(Refusal::Budget)
        );
        assert_eq!(s.room_for(Cap::None, m(1_000), now), Ok(()));
        assert_eq!(s.left(Cap::Daily(m(4))), m(2));
        assert_eq!(s.left(Cap::Daily(m(1))), Micros::ZERO);
    }

    #[test]
    fn impression_cost_rounds_up() {
        assert_eq!(impression_cost(Micros(6_000_000)), Micros(6_000));
        assert_eq!(impression_cost(Micros(1_234_567)), Micros(1_235));
        assert_eq!(impression_cost(Micros(1)), Micros(1));
    }
}

//! The behaviour every [`Ledger`] backend must show, as one suite: the
//! embedded ledger runs it in its tests, and so will a shared (Redis) one.
//! Each check takes a fresh ledger and panics on the first difference.
//!
//! ```ignore
//! ledger::conformance_tests!(|| std::sync::Arc::new(ledger::MemoryLedger::default()));
//! // A shared backend also says how a replica restarts on the same state:
//! ledger::conformance_tests!(make, |old: &std::sync::Arc<dyn ledger::Ledger>| reopen(old));
//! ```

use std::sync::Arc;

use config::{Date, Micros, Timestamp};

use crate::{
    BidKey, BudgetKind, Cap, FrequencyHold, Hold, Ledger, Limit, NotCharged, Outcome, Plan,
    Refusal, Release, SpendKey, Win,
};

/// Generates one `#[test]` per check for a ledger made by `$make`.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!($make, |_: &std::sync::Arc<dyn $crate::Ledger>| ($make)());
    };
    ($make:expr, $reopen:expr) => {
        $crate::conformance_tests!(@each $make, $reopen;
            reservations_hold_until_settled_released_or_expired,
            a_charge_counts_only_once_committed,
            an_aborted_charge_leaves_everything_as_it_was,
            a_loss_never_undoes_a_win,
            a_bids_outcome_follows_its_notices,
            a_win_billed_later_keeps_its_hold_against_a_loss,
            a_won_bid_holds_its_whole_cost_until_billed,
            expired_reservations_keep_holding_until_their_notices_expire,
            a_win_is_charged_to_the_day_of_its_bid,
            pacing_is_checked_with_the_reservation,
            frequency_slots_follow_the_bid,
            an_impression_counts_to_the_end_of_its_window,
            a_changed_cap_window_keeps_what_was_counted,
            concurrent_bidders_never_pass_a_budget,
            the_budget_kind_is_remembered,
            what_is_exported_comes_back_on_import,
            the_held_share_follows_what_late_notices_show,
            bids_past_their_late_horizon_hold_what_such_bids_are_won,
            a_clock_stepped_back_does_not_make_a_forgotten_bid_chargeable,
        );
    };
    (@each $make:expr, $reopen:expr; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                $crate::conformance::$check(&$crate::conformance::Backend {
                    make: &$make,
                    reopen: &$reopen,
                });
            }
        )*
    };
}

/// A backend under test: fresh ledgers, and a ledger restarted on the state
/// of another (the embedded ledger starts empty and is given the
/// checkpoint; a shared one also sees what the shared store kept).
pub struct Backend<'a> {
    pub make: &'a dyn Fn() -> Arc<dyn Ledger>,
    pub reopen: &'a Reopen,
}

/// Restarts a ledger on the state of another.
pub type Reopen = dyn Fn(&Arc<dyn Ledger>) -> Arc<dyn Ledger>;

const NOON: i64 = 1_795_521_600_000; // 2026-11-24T12:00:00Z
const MIN: i64 = 60_000;
const DAY: i64 = 86_400_000;

fn at(ms: i64) -> Timestamp {
    Timestamp(NOON + ms)
}

fn li() -> SpendKey {
    SpendKey::line_item("li")
}

fn order() -> SpendKey {
    SpendKey::order("o")
}

fn m(units: i64) -> Micros {
    Micros::from_units(units)
}

struct Keys {
    li: SpendKey,
    order: SpendKey,
}

impl Keys {
    fn new() -> Keys {
        Keys {
            li: li(),
            order: order(),
        }
    }

    fn limits(&self, own: Cap, order: Cap) -> [Limit<'_>; 2] {
        [
            Limit {
                key: &self.li,
                cap: own,
            },
            Limit {
                key: &self.order,
                cap: order,
            },
        ]
    }

    fn hold(&self, bid: u64, cost: Micros, own: Cap, now: Timestamp) -> Hold<'_> {
        Hold {
            bid: BidKey(bid),
            day: now.date(),
            cost,
            limits: self.limits(own, Cap::Lifetime(m(1_000_000))),
            frequency: None,
            expires: Timestamp(now.as_millis() + MIN),
            forget: Timestamp(now.as_millis() + DAY),
        }
    }

    /// [`Keys::hold`] of 1 under `own`, counted in user `u`'s frequency
    /// window of `window_ms` under a cap of `cap` impressions.
    fn capped(&self, bid: u64, own: Cap, now: Timestamp, cap: u32, window_ms: i64) -> Hold<'_> {
        Hold {
            frequency: Some(FrequencyHold {
                user: "u",
                cap,
                window_ms,
            }),
            ..self.hold(bid, m(1), own, now)
        }
    }

    fn win(&self, bid: u64, day: Date, cost: Micros, own: Cap) -> Win<'_> {
        Win {
            bid: BidKey(bid),
            day,
            cost,
            limits: self.limits(own, Cap::Lifetime(m(1_000_000))),
            forget: at(DAY),
            made: at(0),
            tags: crate::Tags::default(),
        }
    }
}

fn charge(l: &dyn Ledger, win: &Win<'_>) {
    let c = l.begin_charge(win).expect("chargeable");
    l.commit(&c);
}

pub fn reservations_hold_until_settled_released_or_expired(b: &Backend<'_>) {
    let l = (b.make)();
    let k = Keys::new();
    let now = at(0);
    let day = now.date();
    let cap = Cap::Daily(m(3));
    assert_eq!(l.reserve(&k.hold(1, m(2), cap, now), now), Ok(()));
    assert_eq!(
        l.reserve(&k.hold(2, m(2), cap, now), now),
        Err(Refusal::Budget),
        "2 + 2 > 3"
    );
    assert_eq!(l.reserve(&k.hold(3, m(1), cap, now), now), Ok(()));
    assert_eq!(l.spent(&k.li, day).held_today, m(3));
    assert_eq!(l.spent(&k.order, day).held, m(3));
    // 1 wins at a lower clearing price; its whole reservation returns.
    charge(&*l, &k.win(1, day, m(1), cap));
    let s = l.spent(&k.li, day);
    assert_eq!((s.today, s.lifetime, s.held_today), (m(1), m(1), m(1)));
    // 3 is lost.
    assert_eq!(l.release(BidKey(3)), Release::Released);
    assert_eq!(l.release(BidKey(3)), Release::Unknown);
    assert_eq!(l.spent(&k.li, day).held, Micros::ZERO);
    assert_eq!(l.reserve(&k.hold(4, m(2), cap, now), now), Ok(()));
    assert_eq!(l.expire(at(MIN - 1)).reservations, 0);
    assert_eq!(l.expire(at(MIN)).reservations, 1);
}

pub fn a_charge_counts_only_once_committed(b: &Backend<'_>) {
    let l = (b.make)();
    let k = Keys::new();
    let now = at(0);
    let day = now.date();
    let cap = Cap::Daily(m(10));
    l.reserve(&k.hold(1, m(2), cap, now), now).expect("room");
    let c = l.begin_charge(&k.win(1, day, m(2), cap)).expect("first");
    assert_eq!(c.billed, m(2));
    // Being written: neither spend nor a duplicate yet, but held.
    assert_eq!(l.spent(&k.li, day).today, Micros::ZERO);
    assert_eq!(l.spent(&k.li, day).held_today, m(2));
    assert_eq!(
        l.begin_charge(&k.win(1, day, m(2), cap)).err(),
        Some(NotCharged::InFlight)
    );
    l.commit(&c);
    assert_eq!(l.spent(&k.li, day).today, m(2));
    assert_eq!(l.spent(&k.li, day).held_today, Micros::ZERO);
    assert_eq!(
        l.begin_charge(&k.win(1, day, m(2), cap)).err(),
        Some(NotCharged::Duplicate)
    );
    assert_eq!(l.spent(&k.order, day).lifetime, m(2));
}

pub fn an_aborted_charge_leaves_everything_as_it_was(b: &Backend<'_>) {
    let l = (b.make)();
    let k = Keys::new();
    let now = at(0);
    let day = now.date();
    let cap = Cap::Daily(m(10));
    l.reserve(&k.hold(1, m(2), cap, now), now).expect("room");
    let before = l.spent(&k.li, day);
    let c = l.begin_charge(&k.win(1, day, m(2), cap)).expect("first");
    l.abort(&c);
    assert_eq!(l.spent(&k.li, day), before);
    // Still a reservation: it expires as one would.
    assert_eq!(l.expire(at(MIN)).reservations, 1);
    // The retry charges.
    charge(&*l, &k.win(1, day, m(2), cap));
    assert_eq!(l.spent(&k.li, day).today, m(2));
    // A win the ledger never saw reserve aborts to nothing.
    let c = l
        .begin_charge(&k.win(9, day, m(1), cap))
        .expect("unknown bid");
    l.abort(&c);
    assert_eq!(l.spent(&k.li, day).held_today, Micros::ZERO);
    assert_eq!(l.release(BidKey(9)), Release::Unknown);
}

pub fn a_loss_never_undoes_a_win(b: &Backend<'_>) {
    let l = (b.make)();
    let k = Keys::new();
    let now = at(0);
    let day = now.date();
    let cap = Cap::Daily(m(10));
    l.reserve(&k.hold(1, m(2), cap, now), now).expect("room");
    let c = l.begin_charge(&k.win(1, day, m(2), cap)).expect("first");
    assert_eq!(l.release(BidKey(1)), Release::AlreadyWon, "while written");
    l.commit(&c);
    assert_eq!(l.release(BidKey(1)), Release::AlreadyWon);
    assert_eq!(l.spent(&k.li, day).today, m(2));
    assert_eq!(l.spent(&k.li, day).held, Micros::ZERO);
}

/// What reports ask before they count a bid's impression: charged, held,
/// lost or not known.
pub fn a_bids_outcome_follows_its_notices(b: &Backend<'_>) {
    let l = (b.make)();
    let k = Keys::new();
    let now = at(0);
    let day = now.date();
    let cap = Cap::Daily(m(10));
    assert_eq!(l.outcome(BidKey(1)), Outcome::Unknown);
    l.reserve(&k.hold(1, m(2), cap, now), now).expect("room");
    l.reserve(&k.hold(2, m(2), cap, now), now).expect("room");
    assert_eq!(l.outcome(BidKey(1)), Outcome::InFlight);
    let c = l.begin_charge(&k.win(1, day, m(2), cap)).expect("first");
    assert_eq!(l.outcome(BidKey(1)), Outcome::InFlight, "while written");
    l.commit(&c);
    assert_eq!(l.outcome(BidKey(1)), Outcome::Charged);
    assert_eq!(l.release(BidKey(2)), Release::Released);
    assert_eq!(l.outcome(BidKey(2)), Outcome::Lost);
    // Won, billed on a later notice.
    l.reserve(&k.hold(4, m(2), cap, now), now).expect("room");
    assert!(l.won(BidKey(4)));
    assert_eq!(l.outcome(BidKey(4)), Outcome::Won);
    // Its reservation over, an unwon bid is still held (its learned
    // share) while its notices may come.
    l.reserve(&k.hold(3, m(2), cap, now), now).expect("room");
    l.expire(at(MIN));
    assert_eq!(l.outcome(BidKey(3)), Outcome::InFlight);
}

/// An exchange that bills on its billing notice sends the win first: the
/// bid stays held, a loss notice cannot release it, and the billing
/// notice charges it once.
pub fn a_win_billed_later_keeps_its_hold_against_a_loss(b: &Backend<'_>) {
    let l = (b.make)();
    let k = Keys::new();
    let now = at(0);
    let day = now.date();
    let cap = Cap::Daily(m(10));
    l.reserve(&k.hold(1, m(2), cap, now), now).expect("room");
    assert!(l.won(BidKey(1)));
    assert_eq!(l.release(BidKey(1)), Release::AlreadyWon);
    assert_eq!(l.spent(&k.li, day).held_today, m(2), "still held");
    charge(&*l, &k.win(1, day, m(2), cap));
    assert_eq!(l.spent(&k.li, day).today, m(2));
    assert_eq!(l.spent(&k.li, day).held, Micros::ZERO);
    // Its reservation over and no billing notice yet, it is still held
    // whole: see `a_won_bid_holds_its_whole_cost_until_billed`.
    l.reserve(&k.hold(2, m(1), cap, now), now).expect("room");
    assert!(l.won(BidKey(2)));
    assert_eq!(l.expire(at(MIN)).reservations, 0);
    assert_eq!(l.spent(&k.li, day).held_today, m(1));
    // A bid lost first stays lost; an unknown one is not held.
    l.reserve(&k.hold(3, m(1), cap, now), now).expect("room");
    assert_eq!(l.release(BidKey(3)), Release::Released);
    assert!(!l.won(BidKey(3)));
    assert!(!l.won(BidKey(99)));
}

pub fn expired_reservations_keep_holding_until_their_notices_expire(b: &Backend<'_>) {
    let l = (b.make)();
    let k = Keys::new();
    let now = at(0);
    let day = now.date();
    let cap = Cap::Daily(m(3));
    l.reserve(&k.hold(1, m(2), cap, now), now).expect("room");
    assert_eq!(l.expire(at(MIN)).reservations, 1);
    // Nothing learned yet: all of it is still held.
    assert_eq!(l.spent(&k.li, day).held_today, m(2));
    assert_eq!(
        l.reserve(&k.hold(2, m(2), cap, at(MIN)), at(MIN)),
        Err(Refusal::Budget)
    );
    // Its late win takes the place of the hold.
    charge(&*l, &k.win(1, day, m(2), cap));
    let s = l.spent(&k.li, day);
    assert_eq!((s.today, s.held_today), (m(2), Micros::ZERO));
    // One that never comes is let go when its notices expire.
    l.reserve(&k.hold(3, m(1), cap, at(MIN)), at(MIN))
        .expect("room");
    l.expire(at(2 * MIN));
    assert_eq!(l.spent(&k.li, day).held_today, m(1));
    assert_eq!(l.expire(at(MIN + DAY)).forgotten, 1);
    assert_eq!(l.spent(&k.li, day).held, Micros::ZERO);
    // A late loss lets it go at once.
    l.reserve(&k.hold(4, m(1), cap, at(DAY)), at(DAY))
        .expect("room");
    l.expire(at(DAY + MIN));
    assert_eq!(l.release(BidKey(4)), Release::Released);
    assert_eq!(l.spent(&k.li, at(DAY).date()).held, Micros::ZERO);
}

pub fn a_win_is_charged_to_the_day_of_its_bid(b: &Backend<'_>) {
    let l = (b.make)();
    let k = Keys::new();
    // 23:59:59 on the 24th.
    let before_midnight = at(12 * 3_600_000 - 1_000);
    let d1 = before_midnight.date();
    let d2 = at(12 * 3_600_000).date();
    assert_ne!(d1, d2);
    let cap = Cap::Daily(m(3));
    l.reserve(&k.hold(1, m(2), cap, before_midnight), before_midnight)
        .expect("room");
    // After midnight the bid still holds its own day, not the new one.
    assert_eq!(l.spent(&k.li, d1).held_today, m(2));
    assert_eq!(l.spent(&k.li, d2).held_today, Micros::ZERO);
    assert_eq!(l.spent(&k.li, d2).held, m(2));
    charge(&*l, &k.win(1, d1, m(2), cap));
    assert_eq!(l.spent(&k.li, d1).today, m(2));
    assert_eq!(l.spent(&k.li, d2).today, Micros::ZERO);
    assert_eq!(l.spent(&k.li, d2).lifetime, m(2));
}

pub fn pacing_is_checked_with_the_reservation(b: &Backend<'_>) {
    let l = (b.make)();
    let k = Keys::new();
    // 700 over the 7 days to 2026-11-30: 100 a day, about 0.0694 a minute.
    let paced = Cap::Paced {
        total: m(700),
        plan: Plan::Even {
            flight_end: Date::parse("2026-11-30").expect("date"),
        },
    };
    let midnight = at(-12 * 3_600_000);
    let cost = Micros(10_000);
    let mut held = 0;
    for bid in 0..2_000 {
        if l.reserve(&k.hold(bid, cost, paced, midnight), midnight)
            .is_ok()
        {
            held += 1;
        }
    }
    // The plan at the end of the first minute: 100 / 1,440 = 0.069444;
    // bids go out while what is held is at or under it.
    assert_eq!(held, 7, "0.06 held is under 0.069444, 0.07 is over");
    assert_eq!(
        l.reserve(&k.hold(9_999, cost, paced, midnight), midnight),
        Err(Refusal::Pacing)
    );

    // A day-parted line item's plan is of its open minutes: an hour into
    // today's 120, of 840 to the end of the flight, 700 × 60 / 840 = 50.
    let l = (b.make)();
    let k = Keys::new();
    let parted = Cap::Paced {
        total: m(700),
        plan: Plan::Open(config::OpenTime {
            elapsed: 60,
            span: 840,
        }),
    };
    let cost = m(1);
    let held = (0..200)
        .filter(|&bid| {
            l.reserve(&k.hold(bid, cost, parted, midnight), midnight)
                .is_ok()
        })
        .count();
    assert_eq!(held, 51, "50.00 held is at the plan, 51.00 over it");
}

pub fn frequency_slots_follow_the_bid(b: &Backend<'_>) {
    let l = (b.make)();
    let k = Keys::new();
    let now = at(0);
    let day = now.date();
    let cap = Cap::Daily(m(100));
    let window = 24 * 3_600_000;
    let hold = |bid: u64, t: Timestamp| k.capped(bid, cap, t, 2, window);
    l.reserve(&hold(1, now), now).expect("first");
    l.reserve(&hold(2, now), now).expect("second");
    assert!(!l.frequency_allows("u", &k.li, 2, window, now));
    assert!(l.frequency_allows("v", &k.li, 2, window, now));
    assert_eq!(
        l.reserve(&hold(3, now), now),
        Err(Refusal::Frequency),
        "two bids in flight fill a cap of two"
    );
    assert_eq!(
        l.spent(&k.li, day).held_today,
        m(2),
        "a refused bid holds no budget"
    );
    // 1 wins, 2 loses: one slot back.
    charge(&*l, &k.win(1, day, m(1), cap));
    assert_eq!(l.release(BidKey(2)), Release::Released);
    assert!(l.frequency_allows("u", &k.li, 2, window, now));
    l.reserve(&hold(4, now), now).expect("slot given back");
    // A loss after the win gives nothing back.
    charge(&*l, &k.win(4, day, m(1), cap));
    assert_eq!(l.release(BidKey(4)), Release::AlreadyWon);
    assert!(!l.frequency_allows("u", &k.li, 2, window, now));
    // A win after a loss (an exchange that changed its mind) counts again.
    let l = (b.make)();
    l.reserve(&hold(5, now), now).expect("first");
    l.reserve(&hold(6, now), now).expect("second");
    assert_eq!(l.release(BidKey(5)), Release::Released);
    assert_eq!(l.release(BidKey(5)), Release::Unknown, "released once");
    assert!(l.frequency_allows("u", &k.li, 2, window, now));
    assert_eq!(l.spent(&k.li, day).held_today, m(1));
    charge(&*l, &k.win(5, day, m(1), cap));
    assert!(!l.frequency_allows("u", &k.li, 2, window, now));
    assert_eq!(l.spent(&k.li, day).today, m(1));
    // The window slides.
    let later = at(window + 3_600_000 * 2);
    assert!(l.frequency_allows("u", &k.li, 2, window, later));
}

/// A reload that changes a cap's `per_hours` does not give every user
/// their cap back: the impressions counted go on counting.
pub fn a_changed_cap_window_keeps_what_was_counted(b: &Backend<'_>) {
    let l = (b.make)();
    let k = Keys::new();
    let hour = 3_600_000;
    let cap = Cap::Daily(m(100));
    let hold = |bid: u64, t: Timestamp, window_ms: i64| k.capped(bid, cap, t, 2, window_ms);
    let now = at(0);
    for bid in [1, 2] {
        l.reserve(&hold(bid, now, 24 * hour), now)
            .expect("under the cap");
        charge(&*l, &k.win(bid, now.date(), m(1), cap));
    }
    let later = at(hour);
    for window in [25 * hour, 12 * hour, 24 * hour] {
        assert!(
            !l.frequency_allows("u", &k.li, 2, window, later),
            "{window}"
        );
        assert_eq!(
            l.reserve(&hold(3, later, window), later),
            Err(Refusal::Frequency),
            "{window}"
        );
    }
}

/// An impression counts for the whole of its window, to its last minute:
/// a cap of one a day refuses a second impression 23 hours 1 minute
/// after the first, whatever the hour of the first.
pub fn an_impression_counts_to_the_end_of_its_window(b: &Backend<'_>) {
    let k = Keys::new();
    let hour = 3_600_000;
    let window = 24 * hour;
    let cap = Cap::Daily(m(100));
    for first in [0, 59 * MIN, 30 * MIN + 1, hour - 1] {
        let l = (b.make)();
        let hold = |bid: u64, t: Timestamp| k.capped(bid, cap, t, 1, window);
        let t0 = at(first);
        l.reserve(&hold(1, t0), t0).expect("first");
        charge(&*l, &k.win(1, t0.date(), m(1), cap));
        let t1 = at(first + window - 59 * MIN);
        assert!(
            !l.frequency_allows("u", &k.li, 1, window, t1),
            "first at +{first} ms"
        );
        assert_eq!(l.reserve(&hold(2, t1), t1), Err(Refusal::Frequency));
        // Past its window (and the bucket it counts in), it is let go.
        let t2 = at(first + window + hour + 1);
        l.expire(t2);
        assert!(l.frequency_allows("u", &k.li, 1, window, t2), "+{first}");
    }
}

pub fn concurrent_bidders_never_pass_a_budget(b: &Backend<'_>) {
    let l = (b.make)();
    let budget = m(1);
    let cost = Micros(7_000);
    let now = at(0);
    let threads: Vec<_> = (0..64u64)
        .map(|t| {
            let l = l.clone();
            std::thread::spawn(move || {
                let k = Keys::new();
                let cap = Cap::Daily(budget);
                let mut won = 0i64;
                for i in 0..200u64 {
                    let bid = (t << 32) | i;
                    let mut h = k.hold(bid, cost, cap, now);
                    h.limits[1].cap = Cap::Lifetime(budget);
                    if l.reserve(&h, now).is_ok() {
                        let mut w = k.win(bid, now.date(), cost, cap);
                        w.limits[1].cap = Cap::Lifetime(budget);
                        charge(&*l, &w);
                        won += 1;
                    }
                }
                won
            })
        })
        .collect();
    let won: i64 = threads.into_iter().map(|t| t.join().expect("thread")).sum();
    let spent = l.spent(&li(), now.date()).today;
    assert!(spent <= budget, "{spent} > {budget}");
    assert_eq!(spent, Micros(won * cost.as_i64()));
    assert_eq!(
        won,
        budget.as_i64() / cost.as_i64(),
        "the budget is used up"
    );
}

pub fn the_budget_kind_is_remembered(b: &Backend<'_>) {
    let l = (b.make)();
    let k = Keys::new();
    let now = at(0);
    assert_eq!(l.budget_kind("li"), None);
    let cap = Cap::Paced {
        total: m(100),
        plan: Plan::Even {
            flight_end: Date::parse("2026-12-31").expect("date"),
        },
    };
    charge(&*l, &k.win(1, now.date(), Micros(1), cap));
    assert_eq!(l.budget_kind("li"), Some(BudgetKind::Lifetime));
}

pub fn what_is_exported_comes_back_on_import(b: &Backend<'_>) {
    let l = (b.make)();
    let k = Keys::new();
    let now = at(0);
    let day = now.date();
    let cap = Cap::Daily(m(10));
    charge(&*l, &k.win(1, day, m(2), cap));
    charge(&*l, &k.win(2, at(-DAY).date(), m(3), cap));
    let mut items = Vec::new();
    l.export(now, &mut |i| items.push(i));
    let back = (b.reopen)(&l);
    for i in items {
        back.import(i, now);
    }
    assert_eq!(back.spent(&k.li, day), l.spent(&k.li, day));
    assert_eq!(back.spent(&k.order, day), l.spent(&k.order, day));
    assert_eq!(
        back.spent(&k.li, at(-DAY).date()).today,
        m(3),
        "yesterday's spend is kept for its late wins"
    );
    assert_eq!(back.budget_kind("li"), Some(BudgetKind::Daily));
    assert_eq!(
        back.begin_charge(&k.win(1, day, m(2), cap)).err(),
        Some(NotCharged::Duplicate)
    );
}

/// A bid whose win notice came and whose billing notice has not (an
/// exchange that bills on render) is bought: past the end of its
/// reservation it holds its whole cost, not the late-win share of bids
/// whose fate is unknown, until it is billed or its notices expire. So is
/// one whose win notice came only after its reservation ended.
pub fn a_won_bid_holds_its_whole_cost_until_billed(b: &Backend<'_>) {
    let l = (b.make)();
    let k = Keys::new();
    let day = at(0).date();
    let cap = Cap::Daily(m(10));
    // Silent losses teach a low late-win share.
    for bid in 100..200 {
        l.reserve(&k.hold(bid, Micros(1), cap, at(0)), at(0))
            .expect("room");
    }
    l.expire(at(MIN));
    for bid in 100..200 {
        l.release(BidKey(bid));
    }
    assert!(l.late_share_ppm() < 100_000, "{}", l.late_share_ppm());
    // The whole day's budget on one bid, won, its billing notice to come.
    let now = at(2 * MIN);
    l.reserve(&k.hold(1, m(10), cap, now), now).expect("room");
    assert!(l.won(BidKey(1)));
    l.expire(at(4 * MIN));
    assert_eq!(l.spent(&k.li, day).held_today, m(10));
    assert_eq!(
        l.reserve(&k.hold(2, m(9), cap, at(4 * MIN)), at(4 * MIN)),
        Err(Refusal::Budget),
        "the budget is bought already"
    );
    charge(&*l, &k.win(1, day, m(10), cap));
    let s = l.spent(&k.li, day);
    assert_eq!((s.today, s.held_today), (m(10), Micros::ZERO));

    // Won after its reservation ended: held whole again.
    let cap = Cap::Daily(m(20));
    let now = at(5 * MIN);
    l.reserve(&k.hold(3, m(10), cap, now), now).expect("room");
    l.expire(at(7 * MIN));
    assert!(l.spent(&k.li, day).held_today < m(10), "a lingering share");
    assert!(l.won(BidKey(3)));
    assert_eq!(l.spent(&k.li, day).held_today, m(10));
    assert_eq!(l.outcome(BidKey(3)), Outcome::Won);
    // Never billed: let go when its notices expire.
    l.expire(at(5 * MIN + DAY));
    assert_eq!(l.spent(&k.li, day).held, Micros::ZERO);
}

pub fn the_held_share_follows_what_late_notices_show(b: &Backend<'_>) {
    let l = (b.make)();
    let k = Keys::new();
    let cap = Cap::Daily(m(1_000));
    let cost = Micros(10_000);
    assert_eq!(l.late_share_ppm(), 1_000_000);
    // A thousand bids lost without a loss notice.
    for bid in 0..1_000 {
        l.reserve(&k.hold(bid, cost, cap, at(0)), at(0))
            .expect("room");
    }
    l.expire(at(MIN));
    let day = at(0).date();
    assert_eq!(l.spent(&k.li, day).held_today, m(10), "all held at first");
    // Past the horizon none was won: the held share falls.
    l.expire(at(MIN + DAY / 2));
    assert!(l.late_share_ppm() <= 1_000, "{}", l.late_share_ppm());
    assert!(l.spent(&k.li, day).held_today <= Micros(20_000));
    // What was learned survives a checkpoint, past the horizon too.
    let mut items = Vec::new();
    l.export(at(DAY), &mut |i| items.push(i));
    let late = |items: &[crate::Durable]| {
        items.iter().find_map(|i| match i {
            crate::Durable::Late { past, .. } => Some(*past),
            _ => None,
        })
    };
    assert_eq!(late(&items), Some(Some((0, 1_000))));
    let back = (b.reopen)(&l);
    for i in items {
        back.import(i, at(DAY));
    }
    assert_eq!(back.late_share_ppm(), l.late_share_ppm());
    let mut again = Vec::new();
    back.export(at(DAY), &mut |i| again.push(i));
    assert_eq!(late(&again), Some(Some((0, 1_000))));
}

/// Bids past their late horizon without a notice are held at the share of
/// such bids won after it, not at the share of expired bids won late:
/// where late wins come within minutes, silent losses held that share of
/// their cost for a day and a daily budget under-delivered by some 15%
/// (value probe). A win past the horizon teaches that share.
pub fn bids_past_their_late_horizon_hold_what_such_bids_are_won(b: &Backend<'_>) {
    let l = (b.make)();
    let k = Keys::new();
    let day = at(0).date();
    let cap = Cap::Daily(m(1_000));
    for bid in 0..100 {
        l.reserve(&k.hold(bid, m(1), cap, at(0)), at(0))
            .expect("room");
    }
    l.expire(at(MIN));
    // Thirty won late, within minutes.
    for bid in 0..30 {
        charge(&*l, &k.win(bid, day, m(1), cap));
    }
    // The other seventy pass their horizon (five minutes) silent.
    l.expire(at(7 * MIN));
    let share = f64::from(l.late_share_ppm()) / 1e6;
    assert!(
        share > 0.25,
        "{share}: 30 of 100 expired bids were won late"
    );
    let s = l.spent(&k.li, day);
    assert_eq!(s.today, m(30));
    // None of those past the horizon won yet: (0 + 1) / (70 + 1) of their
    // 70.00, about 1.00, where the late share held about 21.
    assert!(
        s.held_today > Micros::ZERO && s.held_today <= m(1),
        "{:?}",
        s.held_today
    );
    // One is won past its horizon: the share past it rises.
    charge(&*l, &k.win(99, day, m(1), cap));
    let after = l.spent(&k.li, day);
    assert_eq!(after.today, m(31));
    assert!(after.held_today > s.held_today, "{after:?} {s:?}");
    // Their notices expire: nothing held.
    l.expire(at(2 * DAY));
    assert_eq!(l.spent(&k.li, day).held_today, Micros::ZERO);
}

pub fn a_clock_stepped_back_does_not_make_a_forgotten_bid_chargeable(b: &Backend<'_>) {
    let l = (b.make)();
    let k = Keys::new();
    let day = at(0).date();
    let cap = Cap::Daily(m(10));
    charge(&*l, &k.win(1, day, m(2), cap));
    // One pass with a clock two days ahead forgets the charged id; the
    // clock comes back and the bid's billing notice arrives.
    l.expire(at(2 * DAY));
    assert_eq!(
        l.begin_charge(&k.win(1, day, m(2), cap)).err(),
        Some(NotCharged::Forgotten)
    );
    assert_eq!(l.spent(&k.li, day).today, m(2), "charged once");
    // What was seen survives a checkpoint.
    let mut items = Vec::new();
    l.export(at(0), &mut |i| items.push(i));
    let back = (b.reopen)(&l);
    for i in items {
        back.import(i, at(0));
    }
    assert_eq!(
        back.begin_charge(&k.win(1, day, m(2), cap)).err(),
        Some(NotCharged::Forgotten)
    );
}

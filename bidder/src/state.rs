//! Shared state the hot path reads and notices write: spend and frequency.
//!
//! Both sit behind traits so the embedded in-memory implementation (the
//! default, one process) and a Redis one (scale-out) can share a test suite.
//! The in-memory maps are sharded by key hash: no global lock on the hot path.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash};
use std::sync::Mutex;

use config::{Date, Micros, Timestamp};

/// What has been spent, and is held by bids in flight, under one budget key
/// (a line item or an order).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Spent {
    /// Spend on the given UTC day.
    pub today: Micros,
    /// Spend since the flight started.
    pub lifetime: Micros,
    /// Held by bids made that day and not yet won, lost or expired.
    pub reserved_today: Micros,
    /// Held by all bids in flight.
    pub reserved: Micros,
}

impl Spent {
    /// Whether `amount` more stays within `cap`, counting bids in flight.
    pub fn room_for(&self, cap: Cap, amount: Micros) -> bool {
        match cap {
            Cap::Daily(c) => {
                self.today
                    .saturating_add(self.reserved_today)
                    .saturating_add(amount)
                    <= c
            }
            Cap::Lifetime(c) => {
                self.lifetime
                    .saturating_add(self.reserved)
                    .saturating_add(amount)
                    <= c
            }
            Cap::None => true,
        }
    }

    /// How much more may be billed under `cap` (spend only).
    fn left(&self, cap: Cap) -> Micros {
        match cap {
            Cap::Daily(c) => c.saturating_sub(self.today).max(Micros::ZERO),
            Cap::Lifetime(c) => c.saturating_sub(self.lifetime).max(Micros::ZERO),
            Cap::None => Micros(i64::MAX),
        }
    }
}

/// The budget a key must stay within.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cap {
    Daily(Micros),
    Lifetime(Micros),
    /// No cap known (the line item left the config): record, never refuse.
    None,
}

/// A key and its cap.
#[derive(Clone, Copy, Debug)]
pub struct Limit<'a> {
    pub key: &'a str,
    pub cap: Cap,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Charge {
    /// Billed `billed`; what the win cost beyond a cap (a win arriving after
    /// its reservation expired) is over-delivery, recorded and not billed.
    Charged {
        billed: Micros,
        over_delivery: Micros,
    },
    /// This bid was already charged: a replayed or second notice (nurl and
    /// burl both arriving) never charges twice.
    Duplicate,
}

/// Spend and reservations. A bid reserves what it may cost when it is made,
/// so concurrent bids can never together pass a budget; the win settles the
/// reservation at the clearing price, a loss or a timeout releases it.
pub trait SpendStore: Send + Sync + 'static {
    fn spent(&self, key: &str, day: Date) -> Spent;
    /// Reserves `amount` under every limit at once if all stay within their
    /// caps counting spend and other reservations; otherwise reserves
    /// nothing and returns false.
    fn reserve(
        &self,
        bid_id: &str,
        limits: &[Limit<'_>],
        day: Date,
        amount: Micros,
        expires: Timestamp,
    ) -> bool;
    /// Charges a won bid exactly once: releases its reservation and bills
    /// `amount` under every limit, capped so no cap is passed. The bid id is
    /// remembered until `forget_after` (when its notices expire).
    fn settle(
        &self,
        bid_id: &str,
        limits: &[Limit<'_>],
        day: Date,
        amount: Micros,
        forget_after: Timestamp,
    ) -> Charge;
    /// A lost bid gives its reservation back.
    fn release(&self, bid_id: &str);
    /// Re-applies a charge from the journal at start: no caps, no
    /// reservation, but still once per bid id.
    fn restore(
        &self,
        bid_id: &str,
        keys: &[&str],
        day: Date,
        billed: Micros,
        forget_after: Timestamp,
    );
    /// Gives back reservations whose time is up and forgets charged bid ids
    /// past their `forget_after`; returns how many reservations expired.
    fn expire(&self, now: Timestamp) -> usize;
}

pub trait FrequencyStore: Send + Sync + 'static {
    /// Counts an impression for `user` under `key` unless `cap` impressions
    /// already fell inside the last `window_ms`; returns whether it counted.
    fn try_count(&self, user: &str, key: &str, cap: u32, window_ms: i64, now: Timestamp) -> bool;
    /// Whether another impression would stay within the cap.
    fn allows(&self, user: &str, key: &str, cap: u32, window_ms: i64, now: Timestamp) -> bool;
}

const SHARDS: usize = 32;

struct Sharded<T> {
    hasher: std::collections::hash_map::RandomState,
    shards: Vec<Mutex<T>>,
}

impl<T: Default> Sharded<T> {
    fn new() -> Self {
        Sharded {
            hasher: Default::default(),
            shards: (0..SHARDS).map(|_| Mutex::new(T::default())).collect(),
        }
    }

    fn index(&self, key: impl Hash) -> usize {
        (self.hasher.hash_one(key) as usize) % SHARDS
    }

    fn lock(&self, i: usize) -> std::sync::MutexGuard<'_, T> {
        // A panic while holding a shard cannot leave counters half-written
        // (each update is a single add), so a poisoned lock is still usable.
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    fn shard(&self, key: impl Hash) -> std::sync::MutexGuard<'_, T> {
        self.lock(self.index(key))
    }
}

#[derive(Default)]
struct Counters {
    day: i64,
    today: Micros,
    lifetime: Micros,
    reserved_today: Micros,
    reserved: Micros,
}

impl Counters {
    fn roll(&mut self, day: i64) {
        if self.day != day {
            self.day = day;
            self.today = Micros::ZERO;
            self.reserved_today = Micros::ZERO;
        }
    }
}

struct Reservation {
    keys: Vec<String>,
    day: i64,
    amount: Micros,
    expires: Timestamp,
}

/// The embedded spend store.
#[derive(Default)]
pub struct MemorySpend {
    counters: Sharded<HashMap<String, Counters>>,
    reservations: Sharded<HashMap<String, Reservation>>,
    /// Charged bid ids and when they may be forgotten.
    charged: Sharded<HashMap<String, Timestamp>>,
}

/// The counter shards of some keys, locked in index order (so two callers
/// never wait on each other crosswise) for one check-and-update.
struct Locked<'a> {
    counters: &'a Sharded<HashMap<String, Counters>>,
    guards: Vec<(usize, std::sync::MutexGuard<'a, HashMap<String, Counters>>)>,
}

impl Locked<'_> {
    fn get(&mut self, key: &str) -> &mut Counters {
        let i = self.counters.index(key);
        let at = self
            .guards
            .iter()
            .position(|(gi, _)| *gi == i)
            .unwrap_or_else(|| unreachable!("every key's shard is locked"));
        self.guards[at].1.entry(key.to_string()).or_default()
    }
}

impl MemorySpend {
    fn lock_keys<'a>(&'a self, keys: &[&str]) -> Locked<'a> {
        let mut idx: Vec<usize> = keys.iter().map(|k| self.counters.index(k)).collect();
        idx.sort_unstable();
        idx.dedup();
        Locked {
            counters: &self.counters,
            guards: idx.iter().map(|&i| (i, self.counters.lock(i))).collect(),
        }
    }
}

fn unreserve(locked: &mut Locked<'_>, r: &Reservation) {
    for k in &r.keys {
        let c = locked.get(k);
        c.reserved = c.reserved.saturating_sub(r.amount).max(Micros::ZERO);
        if c.day == r.day {
            c.reserved_today = c.reserved_today.saturating_sub(r.amount).max(Micros::ZERO);
        }
    }
}

fn spent_of(c: &Counters) -> Spent {
    Spent {
        today: c.today,
        lifetime: c.lifetime,
        reserved_today: c.reserved_today,
        reserved: c.reserved,
    }
}

impl SpendStore for MemorySpend {
    fn spent(&self, key: &str, day: Date) -> Spent {
        let d = day.days_since_epoch();
        let shard = self.counters.shard(key);
        match shard.get(key) {
            Some(c) => Spent {
                today: if c.day == d { c.today } else { Micros::ZERO },
                lifetime: c.lifetime,
                reserved_today: if c.day == d {
                    c.reserved_today
                } else {
                    Micros::ZERO
                },
                reserved: c.reserved,
            },
            None => Spent::default(),
        }
    }

    fn reserve(
        &self,
        bid_id: &str,
        limits: &[Limit<'_>],
        day: Date,
        amount: Micros,
        expires: Timestamp,
    ) -> bool {
        let d = day.days_since_epoch();
        let keys: Vec<&str> = limits.iter().map(|l| l.key).collect();
        let mut locked = self.lock_keys(&keys);
        let ok = limits.iter().all(|l| {
            let c = locked.get(l.key);
            c.roll(d);
            spent_of(c).room_for(l.cap, amount)
        });
        if ok {
            for k in &keys {
                let c = locked.get(k);
                c.reserved_today = c.reserved_today.saturating_add(amount);
                c.reserved = c.reserved.saturating_add(amount);
            }
        }
        drop(locked);
        if ok {
            self.reservations.shard(bid_id).insert(
                bid_id.to_string(),
                Reservation {
                    keys: keys.iter().map(|k| k.to_string()).collect(),
                    day: d,
                    amount,
                    expires,
                },
            );
        }
        ok
    }

    fn settle(
        &self,
        bid_id: &str,
        limits: &[Limit<'_>],
        day: Date,
        amount: Micros,
        forget_after: Timestamp,
    ) -> Charge {
        {
            let mut charged = self.charged.shard(bid_id);
            if charged.contains_key(bid_id) {
                return Charge::Duplicate;
            }
            charged.insert(bid_id.to_string(), forget_after);
        }
        // The reservation goes back and the charge comes in under the same
        // locks: no other bid may take the room in between.
        let reservation = self.reservations.shard(bid_id).remove(bid_id);
        let d = day.days_since_epoch();
        let mut keys: Vec<&str> = limits.iter().map(|l| l.key).collect();
        if let Some(r) = &reservation {
            keys.extend(r.keys.iter().map(String::as_str));
        }
        let mut locked = self.lock_keys(&keys);
        if let Some(r) = &reservation {
            unreserve(&mut locked, r);
        }
        let billed = limits.iter().fold(amount, |billed, l| {
            let c = locked.get(l.key);
            c.roll(d);
            billed.min(spent_of(c).left(l.cap))
        });
        for l in limits {
            let c = locked.get(l.key);
            c.today = c.today.saturating_add(billed);
            c.lifetime = c.lifetime.saturating_add(billed);
        }
        Charge::Charged {
            billed,
            over_delivery: amount.saturating_sub(billed),
        }
    }

    fn release(&self, bid_id: &str) {
        let Some(r) = self.reservations.shard(bid_id).remove(bid_id) else {
            return;
        };
        let keys: Vec<&str> = r.keys.iter().map(String::as_str).collect();
        unreserve(&mut self.lock_keys(&keys), &r);
    }

    fn restore(
        &self,
        bid_id: &str,
        keys: &[&str],
        day: Date,
        billed: Micros,
        forget_after: Timestamp,
    ) {
        {
            let mut charged = self.charged.shard(bid_id);
            if charged.contains_key(bid_id) {
                return;
            }
            charged.insert(bid_id.to_string(), forget_after);
        }
        let d = day.days_since_epoch();
        let mut locked = self.lock_keys(keys);
        for k in keys {
            let c = locked.get(k);
            if c.day < d {
                c.roll(d);
            }
            if c.day == d {
                c.today = c.today.saturating_add(billed);
            }
            c.lifetime = c.lifetime.saturating_add(billed);
        }
    }

    fn expire(&self, now: Timestamp) -> usize {
        let mut expired = Vec::new();
        for i in 0..SHARDS {
            let shard = self.reservations.lock(i);
            expired.extend(
                shard
                    .iter()
                    .filter(|(_, r)| r.expires <= now)
                    .map(|(id, _)| id.clone()),
            );
        }
        for id in &expired {
            self.release(id);
        }
        for i in 0..SHARDS {
            self.charged.lock(i).retain(|_, forget| *forget > now);
        }
        expired.len()
    }
}

/// The embedded frequency store: per (user, key) the times of at most `cap`
/// recent impressions, so memory per user and cap is bounded by the cap.
#[derive(Default)]
pub struct MemoryFrequency {
    seen: Sharded<HashMap<(String, String), VecDeque<Timestamp>>>,
}

impl MemoryFrequency {
    pub fn new() -> Self {
        MemoryFrequency {
            seen: Sharded::new(),
        }
    }
}

impl<T: Default> Default for Sharded<T> {
    fn default() -> Self {
        Sharded::new()
    }
}

fn recent(times: &VecDeque<Timestamp>, window_ms: i64, now: Timestamp) -> usize {
    let since = now.as_millis() - window_ms;
    times.iter().filter(|t| t.as_millis() > since).count()
}

impl FrequencyStore for MemoryFrequency {
    fn try_count(&self, user: &str, key: &str, cap: u32, window_ms: i64, now: Timestamp) -> bool {
        let mut shard = self.seen.shard((user, key));
        let times = shard
            .entry((user.to_string(), key.to_string()))
            .or_default();
        if recent(times, window_ms, now) >= cap as usize {
            return false;
        }
        times.push_back(now);
        while times.len() > cap as usize {
            times.pop_front();
        }
        true
    }

    fn allows(&self, user: &str, key: &str, cap: u32, window_ms: i64, now: Timestamp) -> bool {
        let shard = self.seen.shard((user, key));
        match shard.get(&(user.to_string(), key.to_string())) {
            Some(times) => recent(times, window_ms, now) < cap as usize,
            None => cap > 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    fn ts(ms: i64) -> Timestamp {
        Timestamp(1_795_000_000_000 + ms)
    }

    fn lim(key: &str, cap: Cap) -> Limit<'_> {
        Limit { key, cap }
    }

    const FAR: i64 = 1_000_000_000;

    #[test]
    fn charges_once_per_bid_and_rolls_the_day() {
        let s = MemorySpend::default();
        let d1 = day("2026-11-24");
        let d2 = day("2026-11-25");
        let m = Micros::from_units;
        let none = |k| lim(k, Cap::None);
        let charged = |b| Charge::Charged {
            billed: m(b),
            over_delivery: Micros::ZERO,
        };
        assert_eq!(
            s.settle("b1", &[none("li"), none("o")], d1, m(2), ts(FAR)),
            charged(2)
        );
        assert_eq!(
            s.settle("b1", &[none("li"), none("o")], d1, m(2), ts(FAR)),
            Charge::Duplicate
        );
        assert_eq!(s.settle("b2", &[none("li")], d1, m(3), ts(FAR)), charged(3));
        assert_eq!(
            (s.spent("li", d1).today, s.spent("li", d1).lifetime),
            (m(5), m(5))
        );
        assert_eq!(s.spent("o", d1).lifetime, m(2));
        assert_eq!(
            (s.spent("li", d2).today, s.spent("li", d2).lifetime),
            (Micros::ZERO, m(5))
        );
        s.settle("b3", &[none("li")], d2, m(1), ts(FAR));
        assert_eq!(
            (s.spent("li", d2).today, s.spent("li", d2).lifetime),
            (m(1), m(6))
        );
    }

    #[test]
    fn reservations_hold_budget_until_settled_released_or_expired() {
        let s = MemorySpend::default();
        let d = day("2026-11-24");
        let m = Micros::from_units;
        let caps = [lim("li", Cap::Daily(m(3))), lim("o", Cap::Lifetime(m(10)))];
        assert!(s.reserve("a", &caps, d, m(2), ts(1000)));
        assert!(!s.reserve("b", &caps, d, m(2), ts(1000)), "2 + 2 > 3");
        assert!(s.reserve("c", &caps, d, m(1), ts(5000)));
        assert_eq!(s.spent("li", d).reserved_today, m(3));
        // "a" wins at a lower clearing price; its whole reservation returns.
        assert!(matches!(
            s.settle("a", &caps, d, m(1), ts(FAR)),
            Charge::Charged { .. }
        ));
        assert_eq!(s.spent("li", d).today, m(1));
        assert_eq!(s.spent("li", d).reserved_today, m(1));
        // "c" is lost.
        s.release("c");
        assert_eq!(s.spent("li", d).reserved, Micros::ZERO);
        assert!(s.reserve("e", &caps, d, m(2), ts(1000)));
        assert_eq!(s.expire(ts(999)), 0);
        assert_eq!(s.expire(ts(1000)), 1);
        assert_eq!(s.spent("o", d).reserved, Micros::ZERO);
    }

    #[test]
    fn a_late_win_is_recorded_but_never_billed_past_the_budget() {
        let s = MemorySpend::default();
        let d = day("2026-11-24");
        let m = Micros::from_units;
        let caps = [lim("li", Cap::Daily(m(3)))];
        assert!(s.reserve("a", &caps, d, m(2), ts(10)));
        assert!(s.reserve("b", &caps, d, m(1), ts(10)));
        s.expire(ts(10));
        assert!(s.reserve("c", &caps, d, m(3), ts(FAR)));
        assert_eq!(
            s.settle("c", &caps, d, m(3), ts(FAR)),
            Charge::Charged {
                billed: m(3),
                over_delivery: Micros::ZERO
            }
        );
        // "a" and "b" were won after all: recorded, over the cap.
        assert_eq!(
            s.settle("a", &caps, d, m(2), ts(FAR)),
            Charge::Charged {
                billed: Micros::ZERO,
                over_delivery: m(2)
            }
        );
        assert_eq!(s.spent("li", d).today, m(3));
    }

    #[test]
    fn sixty_four_concurrent_bidders_never_pass_one_budget() {
        let s = std::sync::Arc::new(MemorySpend::default());
        let d = day("2026-11-24");
        let budget = Micros::from_units(1);
        let cost = Micros(7_000);
        let threads: Vec<_> = (0..64)
            .map(|t| {
                let s = s.clone();
                std::thread::spawn(move || {
                    let caps = [
                        lim("li", Cap::Daily(budget)),
                        lim("o", Cap::Lifetime(budget)),
                    ];
                    let mut won = 0;
                    for i in 0..200 {
                        let id = format!("{t}-{i}");
                        if s.reserve(&id, &caps, d, cost, ts(FAR)) {
                            // Every bid wins, at the full price.
                            s.settle(&id, &caps, d, cost, ts(FAR));
                            won += 1;
                        }
                    }
                    won
                })
            })
            .collect();
        let won: i64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        let spent = s.spent("li", d).today;
        assert!(spent <= budget, "{spent} > {budget}");
        assert_eq!(spent, Micros(won * cost.as_i64()));
        assert_eq!(
            won,
            budget.as_i64() / cost.as_i64(),
            "the budget is used up"
        );
    }

    #[test]
    fn frequency_window_slides() {
        let f = MemoryFrequency::new();
        let hour = 3_600_000;
        let t = |ms: i64| Timestamp(1_700_000_000_000 + ms);
        assert!(f.try_count("u", "li", 2, 24 * hour, t(0)));
        assert!(f.try_count("u", "li", 2, 24 * hour, t(hour)));
        assert!(!f.allows("u", "li", 2, 24 * hour, t(2 * hour)));
        assert!(!f.try_count("u", "li", 2, 24 * hour, t(2 * hour)));
        assert!(f.allows("other", "li", 2, 24 * hour, t(2 * hour)));
        // The first impression leaves the window after 24 hours.
        assert!(f.try_count("u", "li", 2, 24 * hour, t(24 * hour + 1)));
        assert!(!f.try_count("u", "li", 2, 24 * hour, t(24 * hour + 2)));
    }
}

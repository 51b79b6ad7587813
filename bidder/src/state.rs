//! Shared state the hot path reads and notices write: spend and frequency.
//!
//! Both sit behind traits so the embedded in-memory implementation (the
//! default, one process) and a Redis one (scale-out) can share a test suite.
//! The in-memory maps are sharded by key hash: no global lock on the hot path.

use std::collections::HashMap;
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

/// Frequency caps per user and key (a line item). Impressions are counted
/// on won bids; a bid in flight holds a slot so concurrent bids for one
/// user cannot pass the cap, and gives it back when lost or timed out.
pub trait FrequencyStore: Send + Sync + 'static {
    /// Whether another impression would stay within `cap` per `window_ms`.
    fn allows(&self, user: &str, key: &str, cap: u32, window_ms: i64, now: Timestamp) -> bool;
    /// Holds a slot for bid `bid_id` if the cap allows; false otherwise.
    #[allow(clippy::too_many_arguments)]
    fn reserve(
        &self,
        bid_id: &str,
        user: &str,
        key: &str,
        cap: u32,
        window_ms: i64,
        now: Timestamp,
        expires: Timestamp,
    ) -> bool;
    /// The bid won: its slot stays, as an impression.
    fn confirm(&self, bid_id: &str);
    /// The bid lost or timed out: its slot goes back.
    fn release(&self, bid_id: &str);
    /// Releases the slots of bids whose time is up; returns how many.
    fn expire(&self, now: Timestamp) -> usize;
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

impl<V> Sharded<HashMap<String, V>> {
    /// The keys whose values satisfy `pred`, one shard locked at a time.
    fn keys_where(&self, pred: impl Fn(&V) -> bool) -> Vec<String> {
        (0..SHARDS)
            .flat_map(|i| {
                let shard = self.lock(i);
                shard
                    .iter()
                    .filter(|(_, v)| pred(v))
                    .map(|(k, _)| k.clone())
                    .collect::<Vec<_>>()
            })
            .collect()
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
    /// Keyed by a 64-bit keyed hash of the bid id: millions of wins a day
    /// are remembered for the notice lifetime in a few bytes each (two ids
    /// colliding is a 2^-64 event per pair).
    charged: Sharded<HashMap<u64, Timestamp>>,
    /// When charged ids were last pruned (ms).
    pruned_at: std::sync::atomic::AtomicI64,
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
            let h = self.charged.hasher.hash_one(bid_id);
            let mut charged = self.charged.shard(h);
            if charged.contains_key(&h) {
                return Charge::Duplicate;
            }
            charged.insert(h, forget_after);
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
            let h = self.charged.hasher.hash_one(bid_id);
            let mut charged = self.charged.shard(h);
            if charged.contains_key(&h) {
                return;
            }
            charged.insert(h, forget_after);
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
        let expired = self.reservations.keys_where(|r| r.expires <= now);
        for id in &expired {
            self.release(id);
        }
        // Forgetting charged bids scans every one of them: once a minute is
        // plenty for ids that are kept for a day.
        let last = self.pruned_at.load(std::sync::atomic::Ordering::Relaxed);
        if now.as_millis() - last >= 60_000
            && self
                .pruned_at
                .compare_exchange(
                    last,
                    now.as_millis(),
                    std::sync::atomic::Ordering::Relaxed,
                    std::sync::atomic::Ordering::Relaxed,
                )
                .is_ok()
        {
            for i in 0..SHARDS {
                self.charged.lock(i).retain(|_, forget| *forget > now);
            }
        }
        expired.len()
    }
}

/// A sliding window as a ring of counters: constant memory per user and
/// cap whatever the traffic. The window is `BUCKETS` buckets wide and the
/// oldest bucket counts in full, so the count is never under the truth
/// (at most one bucket's worth of impressions early).
const BUCKETS: i64 = 24;

struct Window {
    width_ms: i64,
    /// Bucket number (time / width) of the newest bucket.
    newest: i64,
    counts: [u16; BUCKETS as usize],
}

impl Window {
    fn new(window_ms: i64) -> Window {
        Window {
            width_ms: (window_ms + BUCKETS - 1) / BUCKETS,
            newest: i64::MIN,
            counts: [0; BUCKETS as usize],
        }
    }

    fn bucket(&self, at: Timestamp) -> i64 {
        at.as_millis().div_euclid(self.width_ms.max(1))
    }

    fn advance(&mut self, now: Timestamp) {
        let b = self.bucket(now);
        if self.newest == i64::MIN || b - self.newest >= BUCKETS {
            self.counts = [0; BUCKETS as usize];
        } else {
            for n in self.newest + 1..=b {
                self.counts[n.rem_euclid(BUCKETS) as usize] = 0;
            }
        }
        self.newest = self.newest.max(b);
    }

    fn total(&self) -> u32 {
        self.counts.iter().map(|&c| u32::from(c)).sum()
    }

    /// Adds one to `bucket`, or takes one away, if it is still inside.
    fn change(&mut self, bucket: i64, up: bool) {
        if bucket > self.newest || bucket <= self.newest - BUCKETS {
            return;
        }
        let c = &mut self.counts[bucket.rem_euclid(BUCKETS) as usize];
        *c = if up {
            c.saturating_add(1)
        } else {
            c.saturating_sub(1)
        };
    }
}

struct Pending {
    user: String,
    key: String,
    bucket: i64,
    expires: Timestamp,
}

/// The embedded frequency store.
#[derive(Default)]
pub struct MemoryFrequency {
    windows: Sharded<HashMap<(String, String), Window>>,
    pending: Sharded<HashMap<String, Pending>>,
}

impl MemoryFrequency {
    pub fn new() -> Self {
        MemoryFrequency::default()
    }
}

impl<T: Default> Default for Sharded<T> {
    fn default() -> Self {
        Sharded::new()
    }
}

impl FrequencyStore for MemoryFrequency {
    fn allows(&self, user: &str, key: &str, cap: u32, window_ms: i64, now: Timestamp) -> bool {
        let mut shard = self.windows.shard((user, key));
        match shard.get_mut(&(user.to_string(), key.to_string())) {
            Some(w) if w.width_ms == Window::new(window_ms).width_ms => {
                w.advance(now);
                w.total() < cap
            }
            _ => cap > 0,
        }
    }

    fn reserve(
        &self,
        bid_id: &str,
        user: &str,
        key: &str,
        cap: u32,
        window_ms: i64,
        now: Timestamp,
        expires: Timestamp,
    ) -> bool {
        let bucket = {
            let mut shard = self.windows.shard((user, key));
            let w = shard
                .entry((user.to_string(), key.to_string()))
                .or_insert_with(|| Window::new(window_ms));
            // A changed cap window starts counting afresh.
            if w.width_ms != Window::new(window_ms).width_ms {
                *w = Window::new(window_ms);
            }
            w.advance(now);
            if w.total() >= cap {
                return false;
            }
            let b = w.bucket(now);
            w.change(b, true);
            b
        };
        self.pending.shard(bid_id).insert(
            bid_id.to_string(),
            Pending {
                user: user.to_string(),
                key: key.to_string(),
                bucket,
                expires,
            },
        );
        true
    }

    fn confirm(&self, bid_id: &str) {
        self.pending.shard(bid_id).remove(bid_id);
    }

    fn release(&self, bid_id: &str) {
        let Some(p) = self.pending.shard(bid_id).remove(bid_id) else {
            return;
        };
        let mut shard = self.windows.shard((p.user.as_str(), p.key.as_str()));
        if let Some(w) = shard.get_mut(&(p.user, p.key)) {
            w.change(p.bucket, false);
        }
    }

    fn expire(&self, now: Timestamp) -> usize {
        let expired = self.pending.keys_where(|p| p.expires <= now);
        for id in &expired {
            self.release(id);
        }
        expired.len()
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
    fn charged_ids_are_forgotten_once_their_notices_expired() {
        let s = MemorySpend::default();
        let d = day("2026-11-24");
        let none = [lim("li", Cap::None)];
        let one = Micros::from_units(1);
        assert!(matches!(
            s.settle("b", &none, d, one, ts(1_000)),
            Charge::Charged { .. }
        ));
        s.expire(ts(999));
        assert_eq!(s.settle("b", &none, d, one, ts(1_000)), Charge::Duplicate);
        s.expire(ts(120_000));
        // Its notices are refused by then anyway (expired); the id is gone.
        assert!(matches!(
            s.settle("b", &none, d, one, ts(999_999)),
            Charge::Charged { .. }
        ));
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
        let w = 24 * hour;
        let t = |ms: i64| Timestamp(1_700_000_000_000 - 1_700_000_000_000 % hour + ms);
        let far = t(1000 * hour);
        assert!(f.reserve("b1", "u", "li", 2, w, t(0), far));
        assert!(f.reserve("b2", "u", "li", 2, w, t(hour), far));
        assert!(!f.allows("u", "li", 2, w, t(2 * hour)));
        assert!(!f.reserve("b3", "u", "li", 2, w, t(2 * hour), far));
        assert!(f.allows("other", "li", 2, w, t(2 * hour)));
        // The first impression leaves the window after 24 hours.
        assert!(f.reserve("b4", "u", "li", 2, w, t(w + 1), far));
        assert!(!f.reserve("b5", "u", "li", 2, w, t(w + 2), far));
    }

    #[test]
    fn lost_and_timed_out_bids_give_their_slot_back() {
        let f = MemoryFrequency::new();
        let w = 24 * 3_600_000;
        let t = |ms: i64| Timestamp(1_700_000_000_000 + ms);
        assert!(f.reserve("a", "u", "li", 1, w, t(0), t(600_000)));
        assert!(!f.allows("u", "li", 1, w, t(1)));
        f.release("a");
        assert!(f.allows("u", "li", 1, w, t(2)));
        assert!(f.reserve("b", "u", "li", 1, w, t(3), t(600_000)));
        assert_eq!(f.expire(t(599_999)), 0);
        assert_eq!(f.expire(t(600_000)), 1);
        assert!(f.reserve("c", "u", "li", 1, w, t(600_001), t(1_200_000)));
        // A win keeps the slot, even past the reservation's time.
        f.confirm("c");
        assert_eq!(f.expire(t(2_000_000)), 0);
        assert!(!f.allows("u", "li", 1, w, t(2_000_001)));
    }
}

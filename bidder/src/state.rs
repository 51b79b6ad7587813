//! Shared state the hot path reads and notices write: spend and frequency.
//!
//! Both sit behind traits so the embedded in-memory implementation (the
//! default, one process) and a Redis one (scale-out) can share a test suite.
//! The in-memory maps are sharded by key hash: no global lock on the hot path.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, Hash};
use std::sync::Mutex;

use config::{Date, Micros, Timestamp};

/// What has been spent under one budget key (a line item or an order).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Spent {
    /// Spend on the given UTC day.
    pub today: Micros,
    /// Spend since the flight started.
    pub lifetime: Micros,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Charge {
    Charged,
    /// This bid was already charged: a replayed or second notice (nurl and
    /// burl both arriving) never charges twice.
    Duplicate,
}

pub trait SpendStore: Send + Sync + 'static {
    fn spent(&self, key: &str, day: Date) -> Spent;
    /// Adds `amount` to every key at once, exactly once per `bid_id`.
    fn charge(&self, bid_id: &str, keys: &[&str], day: Date, amount: Micros) -> Charge;
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

    fn shard(&self, key: impl Hash) -> std::sync::MutexGuard<'_, T> {
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
        // A panic while holding a shard cannot leave counters half-written
        // (each update is a single add), so a poisoned lock is still usable.
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Default)]
struct Counters {
    day: i64,
    today: Micros,
    lifetime: Micros,
}

/// The embedded spend store.
#[derive(Default)]
pub struct MemorySpend {
    counters: Sharded<HashMap<String, Counters>>,
    charged: Sharded<HashSet<String>>,
}

impl SpendStore for MemorySpend {
    fn spent(&self, key: &str, day: Date) -> Spent {
        let shard = self.counters.shard(key);
        match shard.get(key) {
            Some(c) => Spent {
                today: if c.day == day.days_since_epoch() {
                    c.today
                } else {
                    Micros::ZERO
                },
                lifetime: c.lifetime,
            },
            None => Spent::default(),
        }
    }

    fn charge(&self, bid_id: &str, keys: &[&str], day: Date, amount: Micros) -> Charge {
        if !self.charged.shard(bid_id).insert(bid_id.to_string()) {
            return Charge::Duplicate;
        }
        let d = day.days_since_epoch();
        for key in keys {
            let mut shard = self.counters.shard(*key);
            let c = shard.entry((*key).to_string()).or_default();
            if c.day != d {
                c.day = d;
                c.today = Micros::ZERO;
            }
            c.today = c.today.saturating_add(amount);
            c.lifetime = c.lifetime.saturating_add(amount);
        }
        Charge::Charged
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

    #[test]
    fn charges_once_per_bid_and_rolls_the_day() {
        let s = MemorySpend::default();
        let d1 = day("2026-11-24");
        let d2 = day("2026-11-25");
        let m = Micros::from_units;
        assert_eq!(s.charge("b1", &["li", "o"], d1, m(2)), Charge::Charged);
        assert_eq!(s.charge("b1", &["li", "o"], d1, m(2)), Charge::Duplicate);
        assert_eq!(s.charge("b2", &["li"], d1, m(3)), Charge::Charged);
        assert_eq!(
            s.spent("li", d1),
            Spent {
                today: m(5),
                lifetime: m(5)
            }
        );
        assert_eq!(
            s.spent("o", d1),
            Spent {
                today: m(2),
                lifetime: m(2)
            }
        );
        assert_eq!(
            s.spent("li", d2),
            Spent {
                today: Micros::ZERO,
                lifetime: m(5)
            }
        );
        s.charge("b3", &["li"], d2, m(1));
        assert_eq!(
            s.spent("li", d2),
            Spent {
                today: m(1),
                lifetime: m(6)
            }
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

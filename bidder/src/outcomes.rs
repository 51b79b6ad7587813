//! What became of our first-price bids, for bid shading.
//!
//! Each first-price bid is remembered (its curve, its price and when its
//! reservation runs out) until its first win, billing or loss notice says
//! how it went, or its reservation expires unanswered, which counts as a
//! loss. Each outcome is fed once to the [`shading::Shader`], which learns
//! the chance a bid wins from them.
//!
//! The table is sharded by bid key (no global lock on the bid path) and
//! bounded: past [`MAX_PENDING`] bids in flight, new ones go unobserved
//! (counted), so a flood of bids cannot grow it.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use shading::{CurveKey, Shader, SlotKind};

/// Bids in flight remembered at most: some minutes of a busy bidder.
pub(crate) const MAX_PENDING: usize = 1 << 20;
const SHARDS: usize = 16;

struct Pending {
    /// A loss notice came: lost unless a win or billing notice follows
    /// (an exchange may report a loss it later bills; the ledger charges
    /// that win, and the curve must learn it as one).
    lost: bool,
    exchange: Arc<str>,
    slot: SlotKind,
    bid_micros: i64,
    expires_ms: i64,
}

/// One shard of the table.
#[derive(Default)]
struct Shard {
    pending: HashMap<u64, Pending>,
    /// `(expires_ms, bid)` of each bid remembered, soonest first: the sweep
    /// takes the expired off the top instead of passing over every pending
    /// bid under the lock (a million of them at a few minutes of a busy
    /// bidder, which held each shard for most of a millisecond while bids
    /// waited on it). Entries of bids settled before then are skipped when
    /// they come up; they also count towards the bound.
    due: BinaryHeap<Reverse<(i64, u64)>>,
}

pub(crate) struct Outcomes {
    shards: Vec<Mutex<Shard>>,
    shader: Shader,
    dropped: AtomicU64,
}

impl std::fmt::Debug for Outcomes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outcomes")
            .field("pending", &self.pending())
            .finish_non_exhaustive()
    }
}

impl Outcomes {
    pub(crate) fn new(shader: Shader) -> Outcomes {
        Outcomes {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            shader,
            dropped: AtomicU64::new(0),
        }
    }

    pub(crate) fn shader(&self) -> &Shader {
        &self.shader
    }

    fn shard(&self, bid: u64) -> std::sync::MutexGuard<'_, Shard> {
        self.shards[(bid >> 60) as usize % SHARDS]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Remembers a first-price bid until its outcome is known.
    pub(crate) fn bid(
        &self,
        bid: u64,
        exchange: &Arc<str>,
        slot: SlotKind,
        bid_micros: i64,
        expires_ms: i64,
    ) {
        let mut shard = self.shard(bid);
        // `due` holds every pending bid and those settled early: the bound
        // on it bounds both.
        if shard.due.len() >= MAX_PENDING / SHARDS {
            drop(shard);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        shard.pending.insert(
            bid,
            Pending {
                lost: false,
                exchange: exchange.clone(),
                slot,
                bid_micros,
                expires_ms,
            },
        );
        shard.due.push(Reverse((expires_ms, bid)));
    }

    /// A notice said how a bid went. A win or billing notice settles it
    /// as won; a loss notice marks it lost, which the sweep settles at the
    /// reservation's end unless a win comes first. Later notices of a
    /// settled bid change nothing.
    pub(crate) fn resolve(&self, bid: u64, won: bool) {
        let mut shard = self.shard(bid);
        if !won {
            if let Some(p) = shard.pending.get_mut(&bid) {
                p.lost = true;
            }
            return;
        }
        let pending = shard.pending.remove(&bid);
        drop(shard);
        if let Some(p) = pending {
            self.shader
                .observe(&CurveKey::new(&p.exchange, p.slot), p.bid_micros, true);
        }
    }

    /// A bid that was never sent (the answer came too late, or another
    /// imp failed): no outcome to learn.
    pub(crate) fn forget(&self, bid: u64) {
        self.shard(bid).pending.remove(&bid);
    }

    /// Bids lost, or unanswered past their reservation, count as lost;
    /// then the curves are fitted again. Called about once a second.
    pub(crate) fn sweep(&self, now_ms: i64) -> usize {
        let mut lost = Vec::new();
        for shard in &self.shards {
            let mut s = shard.lock().unwrap_or_else(PoisonError::into_inner);
            while let Some(&Reverse((at, bid))) = s.due.peek() {
                if at > now_ms {
                    break;
                }
                s.due.pop();
                // Settled already, or a later bid under the same key.
                if s.pending.get(&bid).is_some_and(|p| p.expires_ms == at) {
                    if let Some(p) = s.pending.remove(&bid) {
                        lost.push((p.exchange, p.slot, p.bid_micros));
                    }
                }
            }
        }
        for (exchange, slot, bid) in &lost {
            self.shader
                .observe(&CurveKey::new(exchange, *slot), *bid, false);
        }
        self.shader.refit(now_ms);
        lost.len()
    }

    pub(crate) fn pending(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .pending
                    .len()
            })
            .sum()
    }

    /// Bids not remembered because the table was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bid_is_observed_once_by_its_first_outcome_or_its_expiry() {
        let o = Outcomes::new(Shader::new(shading::Params::default()).unwrap());
        let x: Arc<str> = "x".into();
        o.bid(1, &x, SlotKind::Banner, 1_000_000, 10);
        o.bid(2, &x, SlotKind::Banner, 2_000_000, 10);
        o.bid(3, &x, SlotKind::Banner, 3_000_000, 100);
        o.resolve(1, true);
        o.resolve(1, false);
        // A loss, then a win of the same bid: a win.
        o.resolve(3, false);
        o.resolve(3, true);
        o.bid(4, &x, SlotKind::Banner, 3_000_000, 100);
        o.forget(4);
        assert_eq!(o.pending(), 1);
        assert_eq!(o.sweep(10), 1, "bid 2 expired unanswered");
        assert_eq!(o.pending(), 0);
        // A loss notice alone settles at the reservation's end.
        o.bid(5, &x, SlotKind::Banner, 1_000_000, 200);
        o.resolve(5, false);
        assert_eq!(o.sweep(150), 0);
        assert_eq!(o.pending(), 1);
        let curve = o
            .shader()
            .curve(&CurveKey::new("x", SlotKind::Banner))
            .expect("a curve");
        // Bid 1 won, bid 3 won after a loss notice, bid 2 lost; bid 4 was
        // never sent.
        assert!(
            (curve.observations() - 3.0).abs() < 1e-3,
            "{}",
            curve.observations()
        );
        assert!((curve.wins() - 2.0).abs() < 1e-3);
    }

    proptest::proptest! {
        /// The sweep takes off exactly what passing over every pending bid
        /// (as it did before the `due` heap) took: the same bids lost, the
        /// same left pending, whatever the order of bids, notices, repeated
        /// keys and sweeps.
        #[test]
        fn the_sweep_settles_what_a_full_pass_would(
            ops in proptest::collection::vec((0u8..5, 0u64..40, 0i64..300), 0..200)
        ) {
            let o = Outcomes::new(Shader::new(shading::Params::default()).unwrap());
            let x: Arc<str> = "x".into();
            // The reference: bid -> (expires, lost), settled by a full pass.
            let mut model: HashMap<u64, i64> = HashMap::new();
            for (op, id, t) in ops {
                // Spread the ids over the shards (chosen by the top bits).
                let bid = id.rotate_right(4) | id;
                match op {
                    0 | 1 => {
                        o.bid(bid, &x, SlotKind::Banner, 1_000_000, t);
                        model.insert(bid, t);
                    }
                    2 => {
                        o.resolve(bid, true);
                        model.remove(&bid);
                    }
                    3 => {
                        o.resolve(bid, false);
                    }
                    _ => {
                        let before = model.len();
                        model.retain(|_, e| *e > t);
                        proptest::prop_assert_eq!(o.sweep(t), before - model.len());
                    }
                }
                proptest::prop_assert_eq!(o.pending(), model.len());
            }
        }
    }
}

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

use std::collections::HashMap;
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

pub(crate) struct Outcomes {
    shards: Vec<Mutex<HashMap<u64, Pending>>>,
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

    fn shard(&self, bid: u64) -> std::sync::MutexGuard<'_, HashMap<u64, Pending>> {
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
        if shard.len() >= MAX_PENDING / SHARDS {
            drop(shard);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        shard.insert(
            bid,
            Pending {
                lost: false,
                exchange: exchange.clone(),
                slot,
                bid_micros,
                expires_ms,
            },
        );
    }

    /// A notice said how a bid went. A win or billing notice settles it
    /// as won; a loss notice marks it lost, which the sweep settles at the
    /// reservation's end unless a win comes first. Later notices of a
    /// settled bid change nothing.
    pub(crate) fn resolve(&self, bid: u64, won: bool) {
        let mut shard = self.shard(bid);
        if !won {
            if let Some(p) = shard.get_mut(&bid) {
                p.lost = true;
            }
            return;
        }
        let pending = shard.remove(&bid);
        drop(shard);
        if let Some(p) = pending {
            self.shader
                .observe(&CurveKey::new(&p.exchange, p.slot), p.bid_micros, true);
        }
    }

    /// A bid that was never sent (the answer came too late, or another
    /// imp failed): no outcome to learn.
    pub(crate) fn forget(&self, bid: u64) {
        self.shard(bid).remove(&bid);
    }

    /// Bids lost, or unanswered past their reservation, count as lost;
    /// then the curves are fitted again. Called about once a second.
    pub(crate) fn sweep(&self, now_ms: i64) -> usize {
        let mut lost = Vec::new();
        for shard in &self.shards {
            let mut s = shard.lock().unwrap_or_else(PoisonError::into_inner);
            s.retain(|_, p| {
                let keep = p.expires_ms > now_ms;
                if !keep {
                    lost.push((p.exchange.clone(), p.slot, p.bid_micros));
                }
                keep
            });
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
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
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
}

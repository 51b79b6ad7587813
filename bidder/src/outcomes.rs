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
//!
//! Expiry takes only what is due off an ordered set per shard, a batch per
//! lock hold, several times a second: passing over every pending bid (a
//! million at a few minutes of a busy bidder) held each shard's lock for
//! most of a millisecond once a second, and read the whole table through
//! the cache, while bids hashing to it waited.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use shading::{CurveKey, Shader, SlotKind};

/// Bids in flight remembered at most: some minutes of a busy bidder.
pub(crate) const MAX_PENDING: usize = 1 << 20;
const SHARDS: usize = 16;
/// Expired bids taken off a shard per lock hold: bids waiting on the lock
/// wait for one batch (tens of microseconds), not for a whole round after a
/// burst or a jump of the clock.
const BATCH: usize = 64;

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

/// One shard of the table: each pending bid is in both, and nothing else.
/// A set, not a heap: a bid settled early (won, withdrawn) leaves it at
/// once, in O(log n) under the lock, so there are no stale entries to
/// bound or to rebuild the structure from (a rebuild is O(pending) under
/// the lock, on the bid path).
#[derive(Default)]
struct Shard {
    /// Keyed by our own random bid keys, so a fast hasher does: a notice
    /// can name any key, but only bids we made are ever inserted, and no
    /// one else chooses where they fall. (foldhash is built without its
    /// `std` feature, so its seed is weak: nothing here relies on it.)
    pending: HashMap<u64, Pending, foldhash::fast::RandomState>,
    /// `(expires_ms, bid)` of each pending bid, soonest first.
    due: BTreeSet<(i64, u64)>,
}

impl Shard {
    fn remember(&mut self, bid: u64, pending: Pending) {
        let at = pending.expires_ms;
        if let Some(before) = self.pending.insert(bid, pending) {
            // The same key again (bid keys are random: not in practice).
            self.due.remove(&(before.expires_ms, bid));
        }
        self.due.insert((at, bid));
    }

    fn settle(&mut self, bid: u64) -> Option<Pending> {
        let p = self.pending.remove(&bid)?;
        self.due.remove(&(p.expires_ms, bid));
        Some(p)
    }

    /// Up to `max` bids due at `now_ms`, taken off the table into `lost`;
    /// whether more may be due.
    fn take_due(
        &mut self,
        now_ms: i64,
        max: usize,
        lost: &mut Vec<(Arc<str>, SlotKind, i64)>,
    ) -> bool {
        for _ in 0..max {
            match self.due.first() {
                Some(&(at, bid)) if at <= now_ms => {
                    self.due.pop_first();
                    if let Some(p) = self.pending.remove(&bid) {
                        lost.push((p.exchange, p.slot, p.bid_micros));
                    }
                }
                _ => return false,
            }
        }
        true
    }
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
        if shard.pending.len() >= MAX_PENDING / SHARDS {
            drop(shard);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        shard.remember(
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
    /// as won; a loss notice marks it lost, which expiry settles at the
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
        let pending = shard.settle(bid);
        drop(shard);
        if let Some(p) = pending {
            self.shader
                .observe(&CurveKey::new(&p.exchange, p.slot), p.bid_micros, true);
        }
    }

    /// A bid that was never sent (the answer came too late, or another
    /// imp failed): no outcome to learn.
    pub(crate) fn forget(&self, bid: u64) {
        self.shard(bid).settle(bid);
    }

    /// Bids lost, or unanswered past their reservation, count as lost:
    /// the curves observe them (and are fitted again at the next
    /// [`Self::sweep`]). Cheap when little is due; the server runs it
    /// several times a second.
    pub(crate) fn expire(&self, now_ms: i64) -> usize {
        let mut lost = Vec::new();
        let mut count = 0;
        for shard in &self.shards {
            // As many batches as the shard held bids when the call began:
            // bids arriving already due meanwhile (a clock stepped back)
            // wait for the next round instead of keeping this one going.
            let mut batches: Option<usize> = None;
            loop {
                let mut s = shard.lock().unwrap_or_else(PoisonError::into_inner);
                let left = batches.get_or_insert(s.due.len() / BATCH + 1);
                *left -= 1;
                let more = s.take_due(now_ms, BATCH, &mut lost) && *left > 0;
                drop(s);
                // Observed outside the lock: bids hashing to this shard
                // wait only for the batch.
                count += lost.len();
                for (exchange, slot, bid) in lost.drain(..) {
                    self.shader
                        .observe(&CurveKey::new(&exchange, slot), bid, false);
                }
                if !more {
                    break;
                }
            }
        }
        count
    }

    /// [`Self::expire`], then the curves are fitted again. About once a
    /// second.
    pub(crate) fn sweep(&self, now_ms: i64) -> usize {
        let lost = self.expire(now_ms);
        self.shader.refit(now_ms);
        lost
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

    /// The pending bids' ids, after checking that each shard's set holds
    /// exactly `(expires, id)` of its pending bids: nothing stale, nothing
    /// missing.
    fn pending_ids(o: &Outcomes) -> std::collections::BTreeSet<u64> {
        let mut ids = std::collections::BTreeSet::new();
        for shard in &o.shards {
            let s = shard.lock().unwrap();
            let want: BTreeSet<(i64, u64)> = s
                .pending
                .iter()
                .map(|(&id, p)| (p.expires_ms, id))
                .collect();
            assert_eq!(s.due, want);
            ids.extend(s.pending.keys().copied());
        }
        ids
    }

    proptest::proptest! {
        /// Expiry takes off exactly what a pass over every pending bid (as
        /// the sweep did before the ordered sets) would: the same bids stay
        /// pending, as many are lost, whatever the order of bids, notices,
        /// withdrawals, repeated keys and expiries, and whether in whole
        /// sweeps or in rounds.
        #[test]
        fn expiry_settles_what_a_full_pass_would(
            ops in proptest::collection::vec((0u8..7, 0u64..40, 0i64..300), 0..300)
        ) {
            let o = Outcomes::new(Shader::new(shading::Params::default()).unwrap());
            let x: Arc<str> = "x".into();
            // The reference: bid -> expires, settled by a full pass.
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
                    3 => o.resolve(bid, false),
                    4 => {
                        o.forget(bid);
                        model.remove(&bid);
                    }
                    _ => {
                        let before = model.len();
                        model.retain(|_, e| *e > t);
                        let lost = if op == 5 { o.sweep(t) } else { o.expire(t) };
                        proptest::prop_assert_eq!(lost, before - model.len());
                    }
                }
                let want: std::collections::BTreeSet<u64> = model.keys().copied().collect();
                proptest::prop_assert_eq!(pending_ids(&o), want);
            }
        }
    }

    /// Bids settled early (won or withdrawn) leave the table at once: they
    /// take no new bid's place, and leave nothing behind to expire.
    #[test]
    fn settled_bids_leave_at_once_and_take_no_new_bids_place() {
        let o = Outcomes::new(Shader::new(shading::Params::default()).unwrap());
        let x: Arc<str> = "x".into();
        let per_shard = MAX_PENDING / SHARDS;
        // All in shard 0, far from expiring, each settled right away: three
        // shards' worth of bids through one shard.
        for i in 0..3 * per_shard as u64 {
            o.bid(i, &x, SlotKind::Banner, 1_000_000, i64::MAX);
            if i % 2 == 0 {
                o.resolve(i, true);
            } else {
                o.forget(i);
            }
            assert!(o.shards[0].lock().unwrap().due.is_empty(), "{i}");
        }
        assert_eq!(o.dropped(), 0, "settled bids took no new bid's place");
        // A full shard of pending bids still refuses the next one.
        for i in 0..per_shard as u64 {
            o.bid(1_000_000 + i, &x, SlotKind::Banner, 1_000_000, 50);
        }
        o.bid(9_000_000, &x, SlotKind::Banner, 1_000_000, 50);
        assert_eq!(o.dropped(), 1);
        // A clock far past every expiry: all of them go, batch by batch.
        assert_eq!(o.expire(i64::MAX), per_shard);
        assert_eq!(o.pending(), 0);
        assert!(o.shards[0].lock().unwrap().due.is_empty());
    }
}

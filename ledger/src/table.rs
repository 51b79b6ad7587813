//! The table of bids in flight: a map from bid keys to bids whose memory a
//! request can ask for ahead of time ([`BidTable::prefetch`]).
//!
//! At full rate a shard holds tens of thousands of bids or more (a minute
//! of reservations), so the place a new bid goes is never in cache: with
//! std's map, a reservation waited on two misses (the control bytes, then
//! the entry), about three quarters of `reserve`'s time under load. std's
//! map does not say where a key would go; this one does, so the bidder
//! can ask for those lines when a request comes in and find them in cache
//! when it reserves, some microseconds later.
//!
//! Open addressing with linear probing over a compact index (a key and the
//! place of its bid, 16 bytes), the bids themselves in a slab reused last
//! freed first. Removal shifts the entries after a hole back (no
//! tombstones), so probe runs stay as short as the load allows: at most
//! half full, a key absent is found so after about 2.5 entries, within the
//! two index lines [`BidTable::prefetch`] asks for nearly always.

/// An index entry: a key and where its value is in the slab.
#[derive(Clone, Copy)]
struct Entry {
    key: u64,
    slot: u32,
}

/// A place in the index nobody holds.
const EMPTY: u32 = u32::MAX;
const VACANT: Entry = Entry {
    key: 0,
    slot: EMPTY,
};
/// The index's size to start with, and what it never shrinks below.
const MIN_INDEX: usize = 16;

pub(crate) struct BidTable<V> {
    /// A power of two long, at most half full.
    index: Vec<Entry>,
    /// The slab: `None` where a freed slot waits in `free`.
    values: Vec<Option<V>>,
    free: Vec<u32>,
    len: usize,
}

impl<V> Default for BidTable<V> {
    fn default() -> Self {
        BidTable {
            index: vec![VACANT; MIN_INDEX],
            values: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<V> BidTable<V> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Where `key`'s probe starts. Bid keys are random bits, but within
    /// one shard their low bits are all alike (the shard is the key modulo
    /// 64): a multiply spreads every bit into the high ones taken here.
    fn home(&self, key: u64) -> usize {
        let bits = self.index.len().trailing_zeros();
        (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits)) as usize
    }

    fn mask(&self) -> usize {
        self.index.len() - 1
    }

    /// The index position of `key`, or the empty one that ends its probe.
    fn probe(&self, key: u64) -> Result<usize, usize> {
        let mask = self.mask();
        let mut i = self.home(key);
        loop {
            let e = self.index[i];
            if e.slot == EMPTY {
                return Err(i);
            }
            if e.key == key {
                return Ok(i);
            }
            i = (i + 1) & mask;
        }
    }

    fn slot_of(&self, key: u64) -> Option<usize> {
        self.probe(key).ok().map(|i| self.index[i].slot as usize)
    }

    pub(crate) fn contains_key(&self, key: u64) -> bool {
        self.probe(key).is_ok()
    }

    pub(crate) fn get(&self, key: u64) -> Option<&V> {
        let s = self.slot_of(key)?;
        self.values.get(s)?.as_ref()
    }

    pub(crate) fn get_mut(&mut self, key: u64) -> Option<&mut V> {
        let s = self.slot_of(key)?;
        self.values.get_mut(s)?.as_mut()
    }

    /// Puts `value` under `key`, returning what was there.
    pub(crate) fn insert(&mut self, key: u64, value: V) -> Option<V> {
        let mut at = match self.probe(key) {
            Ok(i) => {
                let s = self.index[i].slot as usize;
                return self.values.get_mut(s).and_then(|v| v.replace(value));
            }
            Err(at) => at,
        };
        // At most half full after this insert; a new index puts the key
        // somewhere else.
        if 2 * (self.len + 1) > self.index.len() {
            self.resize(2 * self.index.len());
            let Err(moved) = self.probe(key) else {
                unreachable!("absent above, and a resize adds no key");
            };
            at = moved;
        }
        let slot = match self.free.pop() {
            Some(s) => {
                self.values[s as usize] = Some(value);
                s
            }
            None => {
                // u32::MAX is the empty mark: a shard never holds four
                // billion bids (memory runs out long before).
                let s = u32::try_from(self.values.len())
                    .ok()
                    .filter(|&s| s != EMPTY)
                    .unwrap_or_else(|| panic!("more bids in one shard than a u32 counts"));
                self.values.push(Some(value));
                s
            }
        };
        self.index[at] = Entry { key, slot };
        self.len += 1;
        None
    }

    pub(crate) fn remove(&mut self, key: u64) -> Option<V> {
        let i = self.probe(key).ok()?;
        let slot = self.index[i].slot;
        let value = self.values.get_mut(slot as usize)?.take();
        self.free.push(slot);
        self.len -= 1;
        self.close(i);
        // A table that emptied from a burst gives its memory back, as std's
        // map did not: an eighth full at most, not below the start size.
        if self.index.len() > MIN_INDEX && 8 * self.len < self.index.len() {
            self.resize(self.index.len() / 2);
        }
        value
    }

    /// Empties index position `hole`, moving back each entry after it that
    /// a probe from its home would otherwise no longer reach.
    fn close(&mut self, mut hole: usize) {
        let mask = self.mask();
        let mut i = hole;
        loop {
            i = (i + 1) & mask;
            let e = self.index[i];
            if e.slot == EMPTY {
                break;
            }
            let home = self.home(e.key);
            // The entry may move into the hole when the hole lies on its
            // probe path: from its home, the hole comes no later than it.
            if (hole.wrapping_sub(home) & mask) < (i.wrapping_sub(home) & mask) {
                self.index[hole] = e;
                hole = i;
            }
        }
        self.index[hole] = VACANT;
    }

    /// A new index of `size` places (a power of two, room for every
    /// entry); the slab is compacted when the table shrinks, so that its
    /// free slots do not outlive a burst either.
    fn resize(&mut self, size: usize) {
        let old = std::mem::replace(&mut self.index, vec![VACANT; size]);
        let shrink = size < old.len();
        let mut values = if shrink {
            Vec::with_capacity(self.len)
        } else {
            Vec::new()
        };
        for mut e in old.into_iter().filter(|e| e.slot != EMPTY) {
            if shrink {
                let v = self.values.get_mut(e.slot as usize).and_then(Option::take);
                // At most `len` values, each under u32::MAX (see insert).
                e.slot = values.len() as u32;
                values.push(v);
            }
            let Err(at) = self.probe(e.key) else {
                unreachable!("keys in an index are distinct");
            };
            self.index[at] = e;
        }
        if shrink {
            self.values = values;
            self.free = Vec::new();
        }
    }

    /// Every key with its value, in no particular order.
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, &V)> {
        self.index
            .iter()
            .filter(|e| e.slot != EMPTY)
            .filter_map(|e| Some((e.key, self.values.get(e.slot as usize)?.as_ref()?)))
    }

    /// Asks the processor for the memory that looking `key` up, and
    /// inserting it, will read and write: the index where its probe starts
    /// (its line, and the next one, which a probe starting near a line's
    /// end runs into), and the freed slab slot the next insert takes. A
    /// slab with no freed slot grows at its end, in order, which the
    /// processor's own prefetcher follows. A hint only: nothing is read,
    /// and a table changed before the insert costs only the misses this
    /// would have saved.
    pub(crate) fn prefetch(&self, key: u64) {
        let home = self.home(key);
        prefetch(&self.index[home]);
        // Four entries to a line: three on is in the next line unless the
        // run starts at a line's beginning.
        prefetch(&self.index[(home + 3) & self.mask()]);
        if let Some(&s) = self.free.last() {
            // A bid is 64 bytes (`memory::tests::a_bid_fills_a_line`), not
            // aligned to a line: it ends in the next slot's line.
            for s in s as usize..s as usize + 2 {
                if let Some(v) = self.values.get(s) {
                    prefetch(v);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn prefetch<T>(at: &T) {
    safe_arch::prefetch_t0(at);
}

#[cfg(not(target_arch = "x86_64"))]
fn prefetch<T>(_: &T) {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u64, u32),
        Remove(u64),
        Get(u64),
        Prefetch(u64),
    }

    /// Keys from a small set (so that removes and repeats hit), some
    /// sharing their high bits or their home (the probe runs and the
    /// backward shift across them), and some anywhere.
    fn key() -> impl Strategy<Value = u64> {
        prop_oneof![
            0u64..48,
            (0u64..48).prop_map(|k| k << 58),
            (0u64..48).prop_map(|k| k.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            any::<u64>(),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (key(), any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
            2 => key().prop_map(Op::Remove),
            1 => key().prop_map(Op::Get),
            1 => key().prop_map(Op::Prefetch),
        ]
    }

    /// Every entry reachable from its home without crossing an empty
    /// place: what a lookup relies on, and what removal must keep.
    fn check_index<V>(t: &BidTable<V>) {
        let mask = t.mask();
        let mut slots = Vec::new();
        for (i, e) in t.index.iter().enumerate() {
            if e.slot == EMPTY {
                continue;
            }
            slots.push(e.slot);
            let mut j = t.home(e.key);
            while j != i {
                assert_ne!(
                    t.index[j].slot, EMPTY,
                    "key {} cut off from its home",
                    e.key
                );
                j = (j + 1) & mask;
            }
        }
        assert_eq!(slots.len(), t.len);
        assert!(2 * t.len <= t.index.len(), "more than half full");
        slots.sort_unstable();
        slots.dedup();
        assert_eq!(slots.len(), t.len, "two keys share a slot");
        for s in &t.free {
            assert!(t.values[*s as usize].is_none(), "a free slot holds a value");
        }
    }

    proptest! {
        #[test]
        fn behaves_as_a_map(ops in proptest::collection::vec(op(), 0..400)) {
            let mut t = BidTable::default();
            let mut m = HashMap::new();
            for op in ops {
                match op {
                    Op::Insert(k, v) => prop_assert_eq!(t.insert(k, v), m.insert(k, v)),
                    Op::Remove(k) => prop_assert_eq!(t.remove(k), m.remove(&k)),
                    Op::Get(k) => {
                        prop_assert_eq!(t.get(k), m.get(&k));
                        prop_assert_eq!(t.contains_key(k), m.contains_key(&k));
                    }
                    Op::Prefetch(k) => t.prefetch(k),
                }
                prop_assert_eq!(t.len(), m.len());
                check_index(&t);
            }
            let mut all: Vec<_> = t.iter().map(|(k, v)| (k, *v)).collect();
            all.sort_unstable();
            let mut want: Vec<_> = m.into_iter().collect();
            want.sort_unstable();
            prop_assert_eq!(all, want);
        }
    }

    proptest! {
        /// Filled, then drained (to none, or a few) in a random order: the
        /// shrinks and the slab's compaction on the way down.
        #[test]
        fn drains_through_shrinks(
            keys in proptest::collection::hash_set(key(), 0..300),
            keep in 0usize..8,
            order in any::<u64>(),
        ) {
            let mut t = BidTable::default();
            let mut m = HashMap::new();
            let keys: Vec<u64> = keys.into_iter().collect();
            for (n, &k) in keys.iter().enumerate() {
                prop_assert_eq!(t.insert(k, n), m.insert(k, n));
            }
            let mut gone = keys.clone();
            gone.sort_unstable_by_key(|k| k.wrapping_mul(order | 1));
            for k in gone.iter().skip(keep) {
                prop_assert_eq!(t.remove(*k), m.remove(k));
                check_index(&t);
                prop_assert!(t.values.len() <= t.index.len() / 2);
            }
            for k in &keys {
                prop_assert_eq!(t.get(*k), m.get(k));
            }
            if keys.len() > 64 {
                prop_assert!(t.index.len() <= 64, "index of {} for {}", t.index.len(), t.len());
            }
        }
    }

    #[test]
    fn grows_and_gives_memory_back() {
        let mut t = BidTable::default();
        for k in 0..10_000u64 {
            assert_eq!(t.insert(k.wrapping_mul(0x2545_f491_4f6c_dd1d), k), None);
        }
        assert!(t.index.len() >= 20_000);
        for k in 0..10_000u64 {
            let key = k.wrapping_mul(0x2545_f491_4f6c_dd1d);
            assert_eq!(t.get_mut(key).copied(), Some(k));
            if k >= 10 {
                assert_eq!(t.remove(key), Some(k));
            }
        }
        check_index(&t);
        assert_eq!(t.len(), 10);
        assert!(t.index.len() <= 8 * 16, "index of {} for 10", t.index.len());
        assert!(t.values.len() <= 16, "slab of {} for 10", t.values.len());
        for k in 0..10u64 {
            assert_eq!(t.get(k.wrapping_mul(0x2545_f491_4f6c_dd1d)), Some(&k));
        }
    }

    #[test]
    fn a_freed_slot_is_taken_first() {
        let mut t = BidTable::default();
        t.insert(1, 'a');
        t.insert(2, 'b');
        t.insert(3, 'c');
        let slot = t.index[t.probe(2).unwrap_or_else(|_| unreachable!())].slot;
        t.remove(2);
        t.insert(4, 'd');
        assert_eq!(
            t.index[t.probe(4).unwrap_or_else(|_| unreachable!())].slot,
            slot
        );
        assert_eq!(t.values.len(), 3);
    }
}

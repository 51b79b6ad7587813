//! The event store and the four audience kinds.
//!
//! # Layout
//!
//! Users live in [`USER_SHARDS`] shards, each a `RwLock` around a hash map
//! from a 64-bit user key to a 16-byte [`Slot`]. The key is a keyed SipHash
//! of the user id (random keys per store, so collisions cannot be crafted
//! offline); the id string itself is not kept. Two users collide with
//! probability about `n² / 2⁶⁵` (≈ 3·10⁻⁸ for a million users, ≈ 3·10⁻⁴ for a
//! hundred million); a collision merges two histories, which at worst shows
//! one shopper an ad meant for the other. That is the price of not storing ids.
//!
//! An event is 8 bytes ([`Ev`]): seconds since 2000-01-01T00:00:00Z as a
//! `u32` (so 2000-01-01 to 2136-02-07; older events are older than any
//! retention and dropped, later ones are refused as bad data) and the product
//! or topic as an interned `u32` id with the event kind in its top two bits.
//! Times are kept to the second: the order of two events within one second
//! is lost (a purchase then counts as after a view).
//!
//! A user with one event keeps it in the slot itself. A user with more keeps
//! them, sorted by time, as one run in its shard's arena (`Vec<Ev>`); the
//! slot holds the run's offset and length. No event is a heap object of its
//! own. A run that grows is copied to the arena's end; the hole it leaves is
//! reclaimed when the shard is rebuilt (see below).
//!
//! Product and topic ids are interned by the same keyed hash of the string
//! (the strings are not kept either; the collision risk is as for users) in
//! [`ITEM_SHARDS`] copy-on-write maps behind `ArcSwap`, so readers resolve
//! names without any lock.
//!
//! # Locks
//!
//! Readers ([`Store::matches`]) take one user-shard read lock for a hash
//! lookup and a scan of that user's few events. Every write (append, load,
//! prune) holds the writer mutex, which readers never touch; so between a
//! writer's read of a shard and its write, nothing else changes the shard.
//! That lets anything costly happen under the read lock: merging a batch,
//! and rebuilding a shard into fresh tables when its map or arena would have
//! to grow, when holes pile up, or when pruning. The write lock is then held
//! for a swap, or for at most [`WRITE_CHUNK`] slot updates.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{
    Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, TryLockError,
};

use arc_swap::ArcSwap;
use config::{Audience, AudienceKind, Timestamp};

use crate::event::{
    lines, parse_line, parse_line_of_any_length, stored_item, DataError, Event, EventKind,
};
use crate::lists::{Lists, UserIds, DEFAULT_MAX_MEMBERS};

/// A request without ids beyond the user key.
struct NoIds;

impl UserIds for NoIds {
    fn any(&self, _: &config::ListSource, _: &mut dyn FnMut(&str) -> bool) -> bool {
        false
    }
}

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Shards of the user map. A power of two.
pub const USER_SHARDS: usize = 64;
/// Shards of the product/topic interner. A power of two.
pub const ITEM_SHARDS: usize = 64;
/// How far ahead of the bidder's clock an uploaded view or purchase may be
/// dated (clock skew between machines); a purchase within it has happened
/// and ends a `views` membership at once.
pub const FUTURE_SKEW_MS: i64 = 3_600_000;

/// Retention until [`Store::set_retention_days`] says otherwise: the longest
/// default window (`recency_days` of interests).
pub const DEFAULT_RETENTION_DAYS: u32 = 90;
/// Shoppers the store holds at most until [`Store::set_max_users`] says
/// otherwise, some 115 bytes each with a few events: user ids come from
/// outside (a pixel call needs only a cookie that a sync gives anyone), and
/// made-up ones, kept for the longest audience window and read back at
/// every start, would otherwise grow memory until the process is killed,
/// again at each restart.
pub const DEFAULT_MAX_USERS: usize = 2_000_000;
/// Events kept per user (8 bytes each): past it, the oldest go. A shopper
/// views some hundreds of pages a month; a script posing as one is held to
/// 8 KB.
pub(crate) const MAX_EVENTS_PER_USER: usize = 1024;
/// Events the store holds at most until [`Store::set_max_events`] says
/// otherwise: 16 a shopper of [`DEFAULT_MAX_USERS`] on average, 8 bytes
/// each. The shoppers' bound alone let a pixel flood fill every shopper to
/// [`MAX_EVENTS_PER_USER`], 8 KB each, some 16 GB at the default room
/// (review finding). Past it shoppers are evicted as past their room, the
/// same ones first, until the events fit; a real shopper has a few.
pub const DEFAULT_MAX_EVENTS: usize = 16 * DEFAULT_MAX_USERS;
/// Slot updates applied per hold of a shard's write lock.
pub(crate) const WRITE_CHUNK: usize = 16;

/// 2000-01-01T00:00:00Z in milliseconds since the Unix epoch: time zero of
/// the compact event times.
const EPOCH_MS: i64 = 946_684_800_000;
/// Item ids use the low 30 bits; the top two hold the [`EventKind`] (or, in
/// a [`Slot`], the mark of an arena run).
const ITEM_BITS: u32 = 30;
const ITEM_MASK: u32 = (1 << ITEM_BITS) - 1;
const MAX_ITEMS: u32 = 1 << ITEM_BITS;
const RUN_TAG: u32 = 3;
/// Holes (events) a shard's arena may hold before a rebuild, beyond half of
/// its live events.
const HOLES_SLACK: usize = 1024;
/// `try_read`/`try_write` attempts before blocking: some tens of
/// microseconds, several times the longest write hold.
const SPIN_TRIES: usize = 2000;

/// Who the impression is for.
#[derive(Clone, Copy, Debug)]
pub struct Visitor<'a> {
    /// The bidder's user key (`buyeruid`, then `user.id`, then `device.ifa`).
    pub user: Option<&'a str>,
    /// False when privacy signals forbid behavioural targeting: then `views`
    /// and `interests` never match, whatever the history says.
    pub behavioural: bool,
    pub now: Timestamp,
}

/// What [`Store::append_dir`] loaded.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Events added.
    pub added: usize,
    /// Lines skipped as events that could never match.
    pub unmatchable: Unmatchable,
}

/// Lines skipped as events that could never match: how many, and the
/// first few, for the operator to see which.
#[derive(Debug, Default)]
pub struct Unmatchable {
    pub lines: usize,
    pub first: Vec<DataError>,
}

impl Unmatchable {
    /// How many are kept to show.
    const SHOWN: usize = 5;
}

/// A page's products or categories: a few each, kept in place so that
/// reading a request allocates nothing for them.
pub type PageList<'a> = smallvec::SmallVec<[&'a str; 8]>;

/// What the page (or app content) is about.
#[derive(Clone, Debug, Default)]
pub struct Page<'a> {
    pub products: PageList<'a>,
    pub categories: PageList<'a>,
    /// OpenRTB `cattax` of `categories`: 1 = IAB Content Category Taxonomy
    /// 1.0 (`IAB17-18`), 2 = Content Taxonomy 2.0, 5 = 2.1, 6 = 2.2,
    /// 7 = 3.0, 9 = 3.1 (ids like `483` or, from 3.0 on, `WQC6HR`). Absent
    /// means 1.0 by the spec, but ids that do not look like 1.0 ids are then
    /// read as 2.x/3.x ids, since exchanges often omit it. Other values (ad
    /// product, audience or vendor taxonomies) never match a content category.
    pub cattax: Option<i32>,
}

/// One event in 8 bytes. The derived order is by time, then kind (views
/// before purchases at the same second), then item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Ev {
    /// Seconds since [`EPOCH_MS`].
    at: u32,
    /// Kind in the top two bits, item id below.
    tagged: u32,
}

impl Ev {
    fn new(at: u32, kind: EventKind, item: u32) -> Ev {
        debug_assert!(item < MAX_ITEMS);
        let k: u32 = match kind {
            EventKind::View => 0,
            EventKind::Purchase => 1,
            EventKind::Interest => 2,
        };
        Ev {
            at,
            tagged: (k << ITEM_BITS) | item,
        }
    }

    fn kind(self) -> EventKind {
        match self.tagged >> ITEM_BITS {
            0 => EventKind::View,
            1 => EventKind::Purchase,
            _ => EventKind::Interest,
        }
    }

    fn item(self) -> u32 {
        self.tagged & ITEM_MASK
    }

    fn at_ms(self) -> i64 {
        EPOCH_MS + i64::from(self.at) * 1000
    }
}

/// Compact time of `at`: `Ok(None)` before 2000 (older than any retention),
/// an error after 2136-02-07T06:28:15Z.
fn compact_time(at: Timestamp) -> Result<Option<u32>, String> {
    let ms = at.as_millis();
    if ms < EPOCH_MS {
        return Ok(None);
    }
    u32::try_from((ms - EPOCH_MS) / 1000)
        .map(Some)
        .map_err(|_| {
            "\"at\" is after 2136-02-07T06:28:15Z, the last time the store can hold".into()
        })
}

/// The first compact time that is not older than `cutoff_ms`: an event is
/// older than the cutoff exactly when its compact time is below this.
fn compact_cutoff(cutoff_ms: i64) -> u32 {
    let ms = cutoff_ms - EPOCH_MS;
    let secs = ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) != 0);
    secs.clamp(0, i64::from(u32::MAX)) as u32
}

/// A user's events: the one event itself, or (top bits [`RUN_TAG`]) the
/// arena run `at .. at + len` with `len` in the low bits of `tagged`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot(Ev);

impl Slot {
    fn one(ev: Ev) -> Slot {
        Slot(ev)
    }

    fn run(offset: usize, len: usize) -> Slot {
        let at = u32::try_from(offset).expect("a shard's arena holds under 2³² events");
        let len = u32::try_from(len)
            .ok()
            .filter(|&l| l <= ITEM_MASK)
            .expect("a user holds under 2³⁰ events");
        Slot(Ev {
            at,
            tagged: (RUN_TAG << ITEM_BITS) | len,
        })
    }

    /// The arena run, for a user with several events.
    fn run_range(self) -> Option<std::ops::Range<usize>> {
        (self.0.tagged >> ITEM_BITS == RUN_TAG).then(|| {
            let start = self.0.at as usize;
            start..start + (self.0.tagged & ITEM_MASK) as usize
        })
    }

    fn len(self) -> usize {
        self.run_range().map_or(1, |r| r.len())
    }
}

/// `a` and `b` (both sorted) merged into `out`, without duplicates.
fn merge_into(a: &[Ev], b: &[Ev], out: &mut Vec<Ev>) {
    let start = out.len();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let next = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) if x <= y => {
                i += 1;
                j += usize::from(x == y);
                x
            }
            (_, Some(&y)) => {
                j += 1;
                y
            }
            (Some(&x), None) => {
                i += 1;
                x
            }
            (None, None) => unreachable!(),
        };
        if out.len() == start || out.last() != Some(&next) {
            out.push(next);
        }
    }
}

/// What glibc's malloc really uses for a request of `n` bytes.
fn malloc_size(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        ((n + 8 + 15) & !15).max(32)
    }
}

/// Heap bytes of a hash table with this capacity (hashbrown's layout:
/// power-of-two buckets at most 7/8 full, one control byte each plus 16).
fn table_bytes<K, V, S>(m: &HashMap<K, V, S>) -> usize {
    let cap = m.capacity();
    if cap == 0 {
        return 0;
    }
    let buckets = if cap < 8 {
        cap + 1
    } else {
        (cap * 8 / 7).next_power_of_two()
    };
    malloc_size(buckets * (std::mem::size_of::<(K, V)>() + 1) + 16)
}

/// The keys are already SipHash output: the maps use them as they are.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type UserMap = HashMap<u64, Slot, BuildHasherDefault<KeyHasher>>;
/// Keyed hashes of product and topic strings to their ids.
type ItemMap = HashMap<u64, u32, BuildHasherDefault<KeyHasher>>;

/// A shard's share of `users`, rounded up (at least one): the store holds
/// up to 64 times that, a little over `users` when it does not divide.
fn per_shard(users: usize) -> usize {
    users.div_ceil(USER_SHARDS).max(1)
}

/// The shard of a key. Bits 32.. are used: a map takes its bucket from the
/// low bits and its tag from the top seven, which must stay varied within a
/// shard.
fn shard_of(key: u64, shards: usize) -> usize {
    (key >> 32) as usize & (shards - 1)
}

#[derive(Default)]
struct UserShard {
    slots: UserMap,
    /// Runs of the users with several events.
    arena: Vec<Ev>,
    /// Arena events no slot refers to any more.
    holes: usize,
    events: usize,
}

impl UserShard {
    fn with_capacity(users: usize, arena: usize) -> UserShard {
        UserShard {
            slots: UserMap::with_capacity_and_hasher(users, Default::default()),
            arena: Vec::with_capacity(arena),
            holes: 0,
            events: 0,
        }
    }

    fn slice<'a>(&'a self, slot: &'a Slot) -> &'a [Ev] {
        match slot.run_range() {
            Some(r) => &self.arena[r],
            None => std::slice::from_ref(&slot.0),
        }
    }

    fn events_of(&self, key: u64) -> &[Ev] {
        self.slots.get(&key).map_or(&[], |s| self.slice(s))
    }

    fn live_arena(&self) -> usize {
        self.arena.len() - self.holes
    }

    /// Sets a user's events (sorted, deduplicated, not empty).
    fn put(&mut self, key: u64, events: &[Ev]) {
        let slot = if let [one] = events {
            Slot::one(*one)
        } else {
            let offset = self.arena.len();
            self.arena.extend_from_slice(events);
            Slot::run(offset, events.len())
        };
        self.events += events.len();
        if let Some(old) = self.slots.insert(key, slot) {
            self.events -= old.len();
            if old.run_range().is_some() {
                self.holes += old.len();
            }
        }
    }

    /// A copy without holes, without events before `cutoff`, without the
    /// users of `evicted` (sorted), and with the users of `replace` (sorted
    /// by key) given those events instead.
    fn rebuilt(
        &self,
        replace: &[(u64, &[Ev])],
        evicted: &[u64],
        cutoff: u32,
        users: usize,
        arena: usize,
    ) -> UserShard {
        let mut fresh = UserShard::with_capacity(users, arena);
        let kept = |events: &'_ [Ev]| -> usize { events.partition_point(|e| e.at < cutoff) };
        for (&key, slot) in &self.slots {
            if replace.binary_search_by_key(&key, |r| r.0).is_err()
                && evicted.binary_search(&key).is_err()
            {
                let events = self.slice(slot);
                let events = &events[kept(events)..];
                if !events.is_empty() {
                    fresh.put(key, events);
                }
            }
        }
        for &(key, events) in replace {
            let events = &events[kept(events)..];
            if !events.is_empty() {
                fresh.put(key, events);
            }
        }
        fresh
    }

    fn heap_bytes(&self) -> usize {
        table_bytes(&self.slots) + malloc_size(self.arena.capacity() * std::mem::size_of::<Ev>())
    }
}

/// Room for `n` and a quarter more, so that growth is amortised.
fn with_headroom(n: usize) -> usize {
    n + n / 4 + 16
}

/// Share of a full shard's room an eviction frees beyond what its batch
/// needs, so that a stream of single new users (the pixel) scans and
/// rebuilds the shard once per this many of them, not once each.
const EVICTION_SLACK: usize = 16;

/// Share of a shard's room kept for shoppers seen on one day only (see
/// [`evictions`]): the rest may be held by returning shoppers.
const PROBATION_SHARE: usize = 4;

/// Seconds past the writer's clock an event may be stamped and still count
/// as activity in choosing whom to evict (clocks differ). One stamped
/// later (an upload's typo, an interest dated 2100) counts as none: ranked
/// by it, its shopper would have been the most recent one forever.
const EVICTION_SKEW_SECS: u32 = 3600;

/// The users (sorted keys) that must go for `shard` to take `batch`
/// (sorted by key) and hold at most `room`; empty while the batch fits.
/// `now` (compact seconds, when the writer knows it) tells which event
/// times are in the future ([`EVICTION_SKEW_SECS`]).
///
/// Shoppers seen on one day only (most of a pixel's newcomers, and every
/// made-up id a script sends) go first, the least recently active of them
/// first, newcomers of the batch included; returning shoppers (events on
/// two days or more) go first only beyond three quarters of the room, and
/// otherwise only when no one-day shopper is left. Ranking everyone by
/// activity alone let a script with fresh cookies flush every real
/// shopper out of the store; refusing newcomers once full let it lock
/// every new shopper out. Here a flood churns the one-day share among
/// itself, and a made-up id must come back on another day, still held, to
/// reach the rest.
///
/// The shard's events (with the batch's) are held to `event_room` the same
/// way: past it, more shoppers go, in the same order, until they fit.
fn evictions(
    shard: &UserShard,
    batch: &[(u64, Ev)],
    room: usize,
    event_room: usize,
    now: Option<u32>,
) -> Vec<u64> {
    // The batch's users, each with its oldest and newest event, the events
    // the shard holds of it, and what it will hold after the batch (the
    // batch is sorted by key, then event: a repeated line counts once, and
    // so does one the shard holds; past the cap the oldest go). Never less
    // than the shard will hold, and no more for lines repeated or already
    // held (review finding: raw lines counted, a retried upload evicted
    // thousands).
    let mut span: Vec<(u64, u32, u32, usize, usize)> = Vec::new();
    let mut held: &[Ev] = &[];
    let mut prev: Option<(u64, Ev)> = None;
    for &(key, ev) in batch {
        let repeat = prev == Some((key, ev));
        prev = Some((key, ev));
        if span.last().is_none_or(|last| last.0 != key) {
            held = shard.events_of(key);
            span.push((key, ev.at, ev.at, held.len(), held.len()));
        }
        if let Some(last) = span.last_mut() {
            last.2 = last.2.max(ev.at);
            if !repeat && held.binary_search(&ev).is_err() {
                last.4 = (last.4 + 1).min(MAX_EVENTS_PER_USER.max(last.3));
            }
        }
    }
    let arriving = span
        .iter()
        .filter(|s| !shard.slots.contains_key(&s.0))
        .count();
    let total = shard.slots.len() + arriving;
    let events = span.iter().fold(shard.events, |sum, s| sum + s.4 - s.3);
    if total <= room && events <= event_room {
        return Vec::new();
    }
    let cap = |at: u32| match now {
        Some(n) if at > n.saturating_add(EVICTION_SKEW_SECS) => 0,
        _ => at,
    };
    const DAY: u32 = 24 * 60 * 60;
    // (newest, key, events held after the batch) of one-day and of
    // returning shoppers.
    let mut one_day: Vec<(u32, u64, usize)> = Vec::new();
    let mut returning: Vec<(u32, u64, usize)> = Vec::with_capacity(total);
    let mut rank = |key: u64, first: u32, last: u32, held: usize| {
        // `first` is never past `last`: one in the future makes both none.
        let last = cap(last);
        if last == 0 || first / DAY == last / DAY {
            one_day.push((last, key, held));
        } else {
            returning.push((last, key, held));
        }
    };
    for (&key, slot) in &shard.slots {
        let held = shard.slice(slot);
        let (mut first, mut last) = (
            held.first().map_or(0, |e| e.at),
            held.last().map_or(0, |e| e.at),
        );
        let mut count = held.len();
        if let Ok(i) = span.binary_search_by_key(&key, |s| s.0) {
            first = first.min(span[i].1);
            last = last.max(span[i].2);
            count = span[i].4;
        }
        rank(key, first, last, count);
    }
    for &(key, first, last, _, after) in &span {
        if !shard.slots.contains_key(&key) {
            rank(key, first, last, after);
        }
    }
    let keep = room - room / EVICTION_SLACK;
    // Shoppers over the room (none while they fit, however many events).
    let n = if total > room { total - keep } else { 0 };
    let protected = room - room / PROBATION_SHARE;
    let over = returning.len().saturating_sub(protected).min(n);
    let from_one_day = (n - over).min(one_day.len());
    let from_returning = n - from_one_day;
    // Ties on time are broken by key: a keyed hash, so no one can choose
    // to be kept.
    let mut out = Vec::with_capacity(n);
    let mut freed = 0usize;
    let mut chosen = [0usize; 2];
    for (i, (users, k)) in [
        (&mut one_day, from_one_day),
        (&mut returning, from_returning),
    ]
    .into_iter()
    .enumerate()
    {
        if k > 0 {
            users.select_nth_unstable(k - 1);
            out.extend(users[..k].iter().map(|&(_, key, _)| key));
            freed += users[..k].iter().map(|&(_, _, held)| held).sum::<usize>();
        }
        chosen[i] = k;
    }
    // Past the events' room: more shoppers, down to the same slack, by the
    // same rule in events (review finding: one-day shoppers all went
    // first, and returning ones had no floor): returning shoppers' events
    // past three quarters of the room first, the least recently active
    // first, then one-day shoppers, then the other returning ones.
    let events_keep = event_room - event_room / EVICTION_SLACK;
    if events.saturating_sub(freed) > event_room {
        one_day[chosen[0]..].sort_unstable();
        returning[chosen[1]..].sort_unstable();
        let protected_events = event_room - event_room / PROBATION_SHARE;
        let mut returning_events: usize = returning[chosen[1]..]
            .iter()
            .map(|&(_, _, held)| held)
            .sum();
        let mut r = chosen[1];
        let mut o = chosen[0];
        let mut take = |(_, key, held): (u32, u64, usize), freed: &mut usize| {
            out.push(key);
            *freed += held;
            held
        };
        while events.saturating_sub(freed) > events_keep
            && returning_events > protected_events
            && r < returning.len()
        {
            returning_events -= take(returning[r], &mut freed);
            r += 1;
        }
        while events.saturating_sub(freed) > events_keep && o < one_day.len() {
            take(one_day[o], &mut freed);
            o += 1;
        }
        while events.saturating_sub(freed) > events_keep && r < returning.len() {
            take(returning[r], &mut freed);
            r += 1;
        }
    }
    out.sort_unstable();
    out
}

/// State only writers touch.
struct Writer {
    /// The next item id. Ids are never reused, even after pruning forgets
    /// their string: a reader that resolved a name just before a prune can
    /// never mistake a newer item for it.
    next_item: u32,
    /// Items first seen in the batch being parsed: published when it is
    /// applied, forgotten (ids included) when it is refused.
    pending: ItemMap,
    /// [`Store::evicted_users`] when item ids were last forgotten.
    evicted_at_forget: u64,
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

/// The read lock for the hot path: spins through a writer's short hold
/// (at most [`WRITE_CHUNK`] slot updates, or a swap) instead of sleeping,
/// since a sleeping thread may wait a whole scheduler tick to be woken.
fn read_hot<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    for _ in 0..SPIN_TRIES {
        match l.try_read() {
            Ok(guard) => return guard,
            Err(TryLockError::Poisoned(p)) => return p.into_inner(),
            Err(TryLockError::WouldBlock) => std::hint::spin_loop(),
        }
    }
    read(l)
}

/// The write lock, without making readers queue behind a sleeping writer.
///
/// `RwLock::write` on a lock a reader holds parks the writer and, from then
/// on, blocks new readers until the writer has been woken and is done: one
/// slow wake-up (up to a scheduler tick on a busy or virtualised host)
/// stalls every bid request on the shard. Readers hold the lock for well
/// under a microsecond, so the writer first retries `try_write`, which
/// leaves readers alone, and only blocks if that keeps failing.
fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    for attempt in 0..2 * SPIN_TRIES {
        match l.try_write() {
            Ok(guard) => return guard,
            Err(TryLockError::Poisoned(p)) => return p.into_inner(),
            Err(TryLockError::WouldBlock) if attempt < SPIN_TRIES => std::hint::spin_loop(),
            Err(TryLockError::WouldBlock) => std::thread::yield_now(),
        }
    }
    l.write().unwrap_or_else(PoisonError::into_inner)
}

/// The shopper-event store: `Send + Sync`, read on every bid request,
/// appended to through `&self`.
pub struct Store {
    keys: RandomState,
    users: Box<[RwLock<UserShard>]>,
    items: Box<[ArcSwap<ItemMap>]>,
    writer: Mutex<Writer>,
    retention_days: AtomicU32,
    /// [`Store::set_max_users`], per user shard (keys spread evenly).
    max_users_per_shard: std::sync::atomic::AtomicUsize,
    /// [`Store::set_max_events`], per user shard.
    max_events_per_shard: std::sync::atomic::AtomicUsize,
    /// Users dropped, or not taken, to keep the store within its size.
    evicted: std::sync::atomic::AtomicU64,
    lists: Lists,
    /// Some event was recorded by an advertiser's own site
    /// (`config::advertiser_item`): until then a `views` audience looks
    /// up its products' shared names only.
    own_events: std::sync::atomic::AtomicBool,
}

impl Default for Store {
    fn default() -> Store {
        Store::new()
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("users", &self.users())
            .field("events", &self.events())
            .field("retention_days", &self.retention_days())
            .finish_non_exhaustive()
    }
}

/// A parsed and interned batch: nothing of it applied yet.
#[derive(Default)]
struct Batch {
    events: Vec<(u64, Ev)>,
    /// The writer's clock, in compact seconds, when it has one: event
    /// times past it do not count as activity in eviction.
    now: Option<u32>,
}

impl Store {
    pub fn new() -> Store {
        Store {
            keys: RandomState::new(),
            users: (0..USER_SHARDS).map(|_| RwLock::default()).collect(),
            items: (0..ITEM_SHARDS).map(|_| ArcSwap::default()).collect(),
            writer: Mutex::new(Writer {
                next_item: 0,
                pending: ItemMap::default(),
                evicted_at_forget: 0,
            }),
            retention_days: AtomicU32::new(DEFAULT_RETENTION_DAYS),
            max_users_per_shard: std::sync::atomic::AtomicUsize::new(per_shard(DEFAULT_MAX_USERS)),
            max_events_per_shard: std::sync::atomic::AtomicUsize::new(per_shard(
                DEFAULT_MAX_EVENTS,
            )),
            evicted: std::sync::atomic::AtomicU64::new(0),
            own_events: std::sync::atomic::AtomicBool::new(false),
            lists: Lists::new(DEFAULT_MAX_MEMBERS),
        }
    }

    /// The list audiences' members.
    pub fn lists(&self) -> &Lists {
        &self.lists
    }

    /// Loads every `*.jsonl` file under `dir` (recursively, sorted, so errors
    /// are stable) into a new store with the default retention. Any bad line
    /// refuses the whole load: a half-loaded audience would silently change
    /// who is targeted. Events older than the retention at `now` are dropped.
    /// Well-formed events that could never match (ids longer than requests
    /// and configs carry, which versions before their limits took) are
    /// skipped instead: they target no one ([`Loaded::unmatchable`]).
    pub fn load_dir(dir: &Path, now: Timestamp) -> Result<Store, DataError> {
        let store = Store::new();
        store.append_dir(dir, now)?;
        Ok(store)
    }

    /// Like [`Store::load_dir`], into this store (say after
    /// [`Store::set_retention_days`]): every file is parsed before any event
    /// is applied.
    pub fn append_dir(&self, dir: &Path, now: Timestamp) -> Result<Loaded, DataError> {
        let files = jsonl_files(dir)?;
        let mut skipped = Unmatchable::default();
        let added = self.write_batch(now, |store, w, cutoff, batch| {
            for file in &files {
                let name = file.display().to_string();
                let text = std::fs::read_to_string(file).map_err(|e| DataError {
                    source_name: name.clone(),
                    line: 0,
                    reason: format!("cannot read file: {e}"),
                })?;
                store.parse_into(w, &name, &text, Some(cutoff), batch, Some(&mut skipped))?;
            }
            Ok(())
        })?;
        Ok(Loaded {
            added,
            unmatchable: skipped,
        })
    }

    /// Appends JSON lines (the admin endpoint's body). The whole text is
    /// parsed first; a bad line refuses the batch with its line number and
    /// nothing of it is applied. Events older than the retention at `now` are
    /// skipped; an event already stored is not stored twice, so a retried
    /// batch is harmless. Returns the number of events added.
    ///
    /// Readers see the batch appear shard by shard (a user's events all at
    /// once), not at a single instant.
    pub fn append_jsonl(
        &self,
        source_name: &str,
        text: &str,
        now: Timestamp,
    ) -> Result<usize, DataError> {
        self.write_batch(now, |store, w, cutoff, batch| {
            store.parse_into(w, source_name, text, Some(cutoff), batch, None)
        })
    }

    /// Adds parsed events as they are, without the retention cut (a later
    /// [`Store::prune`] applies it). Events before 2000 or after 2136, or
    /// beyond the item id space, are skipped. Returns the number added.
    pub fn insert(&self, events: impl IntoIterator<Item = Event>) -> usize {
        let mut w = self.writer();
        let mut batch = Batch::default();
        for e in events {
            let item = stored_item(e.advertiser.as_deref(), &e.item);
            if let Ok(Some(ev)) = self.prepare(&mut w, &e.user, e.kind, &item, e.at, None) {
                batch.events.push(ev);
            }
        }
        self.apply(&mut w, batch)
    }

    /// How long events are kept: the bidder sets the longest `lookback_days`
    /// or `recency_days` of its config. Takes effect at the next append and
    /// prune.
    pub fn set_retention_days(&self, days: u32) {
        self.retention_days.store(days, Ordering::Relaxed);
    }

    pub fn retention_days(&self) -> u32 {
        self.retention_days.load(Ordering::Relaxed)
    }

    /// How many users the store holds at most (spread over its shards,
    /// each holding its share). A new user in a full shard makes room:
    /// users go, one-day shoppers first, the least recently active first
    /// (see `evictions`), counted ([`Store::evicted_users`]). Takes effect
    /// at the next append.
    ///
    /// Eviction rather than refusal: refusing new users once full locked
    /// every new shopper out until the holders' events aged past the
    /// retention (90 days by default), so whoever filled the store first,
    /// a script through the pixel included, kept it.
    pub fn set_max_users(&self, users: usize) {
        self.max_users_per_shard
            .store(per_shard(users), Ordering::Relaxed);
    }

    /// Holds at most about `events` events in all (spread over the shards
    /// as the shoppers are): past it, shoppers go as past
    /// [`Store::set_max_users`].
    pub fn set_max_events(&self, events: usize) {
        self.max_events_per_shard
            .store(per_shard(events), Ordering::Relaxed);
    }

    /// Users dropped, or not taken, to keep the store within its size,
    /// since start.
    pub fn evicted_users(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    /// Drops events older than `now` minus the retention, users left with
    /// none, and item ids no event uses any more. Returns the number of
    /// events dropped.
    ///
    /// Dropping old purchases too is safe: a purchase only cancels a view
    /// made at or before it, and a view counts only inside its lookback,
    /// which is within the retention. So any purchase that can still cancel
    /// a countable view is at least as recent as that view and is kept.
    ///
    /// A shard with something to drop is rebuilt under its read lock and
    /// swapped in; readers wait for the swap only.
    pub fn prune(&self, now: Timestamp) -> usize {
        let mut w = self.writer();
        let cutoff = compact_cutoff(self.cutoff_ms(now));
        let mut dropped = 0;
        for lock in self.users.iter() {
            let shard = read(lock);
            let (mut users, mut arena, mut gone) = (0, 0, 0);
            for slot in shard.slots.values() {
                let events = shard.slice(slot);
                let old = events.partition_point(|e| e.at < cutoff);
                gone += old;
                let left = events.len() - old;
                users += usize::from(left > 0);
                arena += if left > 1 { left } else { 0 };
            }
            if gone == 0 {
                continue;
            }
            let fresh = shard.rebuilt(&[], &[], cutoff, with_headroom(users), with_headroom(arena));
            drop(shard);
            let old = std::mem::replace(&mut *write(lock), fresh);
            drop(old);
            dropped += gone;
        }
        // Evicted users leave item ids behind as aged events do.
        let evicted = self.evicted_users();
        if dropped > 0 || evicted != w.evicted_at_forget {
            w.evicted_at_forget = evicted;
            self.forget_items();
        }
        dropped
    }

    pub fn users(&self) -> usize {
        self.users.iter().map(|s| read(s).slots.len()).sum()
    }

    pub fn events(&self) -> usize {
        self.users.iter().map(|s| read(s).events).sum()
    }

    /// An estimate of the heap the store holds: tables by their bucket
    /// count, arenas by their capacity, with glibc's per-block overhead.
    pub fn memory_bytes(&self) -> usize {
        let users: usize = self.users.iter().map(|s| read(s).heap_bytes()).sum();
        let items: usize = self.items.iter().map(|m| table_bytes(&m.load())).sum();
        std::mem::size_of::<Store>()
            + (std::mem::size_of::<RwLock<UserShard>>() * USER_SHARDS)
            + (std::mem::size_of::<ArcSwap<ItemMap>>() * ITEM_SHARDS)
            + users
            + items
    }

    /// Whether the audience matches this visitor on this page. List
    /// audiences need the request's ids: see [`Store::matches_with`].
    pub fn matches(&self, audience: &Audience, visitor: &Visitor<'_>, page: &Page<'_>) -> bool {
        self.matches_with(audience, visitor, page, &NoIds)
    }

    /// Whether the audience matches this visitor, carrying `ids`, on this
    /// page. Lists are behavioural data: without consent they never match.
    pub fn matches_with(
        &self,
        audience: &Audience,
        visitor: &Visitor<'_>,
        page: &Page<'_>,
        ids: &dyn UserIds,
    ) -> bool {
        match &audience.kind {
            AudienceKind::List {
                sources,
                advertiser,
            } => {
                visitor.behavioural
                    && self
                        .lists
                        .any_member(advertiser, &audience.id, sources, ids)
            }
            AudienceKind::Views {
                products,
                lookback_days,
                own,
            } => {
                let since = visitor.now.as_millis() - i64::from(*lookback_days) * DAY_MS;
                // The shop's events of the products and the advertiser's
                // own: never another advertiser's (audiences probe: a
                // rival's page joined, and its purchase ended, this
                // advertiser's audience).
                let own: &[String] = match self.own_events.load(Ordering::Relaxed) {
                    true => own,
                    false => &[],
                };
                self.with_history(visitor, |events| {
                    self.with_ids(products, own, |wanted| {
                        viewed_not_bought(events, wanted, since, visitor.now.as_millis())
                    })
                })
            }
            AudienceKind::Interests {
                interests,
                recency_days,
            } => {
                let since = visitor.now.as_millis() - i64::from(*recency_days) * DAY_MS;
                self.with_history(visitor, |events| {
                    self.with_ids(interests, &[], |wanted| {
                        interested(events, wanted, since, visitor.now.as_millis())
                    })
                })
            }
            AudienceKind::Products { products } => page
                .products
                .iter()
                .any(|p| products.iter().any(|want| want == p)),
            AudienceKind::Categories { categories } => page.categories.iter().any(|c| {
                page_taxonomy(page.cattax, c)
                    .is_some_and(|tax| categories.iter().any(|want| category_within(tax, c, want)))
            }),
        }
    }

    // ---- reading ----

    fn key(&self, s: &str) -> u64 {
        self.keys.hash_one(s)
    }

    /// Calls `f` with the visitor's events, under its shard's read lock;
    /// false without behavioural consent, a user key or any event.
    fn with_history(&self, v: &Visitor<'_>, f: impl FnOnce(&[Ev]) -> bool) -> bool {
        if !v.behavioural {
            return false;
        }
        let Some(user) = v.user else {
            return false;
        };
        let key = self.key(user);
        let shard = read_hot(&self.users[shard_of(key, USER_SHARDS)]);
        let events = shard.events_of(key);
        !events.is_empty() && f(events)
    }

    fn item_id(&self, name: &str) -> Option<u32> {
        let h = self.key(name);
        self.items[shard_of(h, ITEM_SHARDS)].load().get(&h).copied()
    }

    /// Calls `f` with the ids of the names that are known, each with the
    /// index of its name in `names` (no allocation for up to 16); false
    /// when none is. `more` names the same items otherwise, index for index
    /// (a `views` audience's products as its advertiser's own events name
    /// them): a view under one name and a purchase under the other are of
    /// one product.
    fn with_ids(
        &self,
        names: &[String],
        more: &[String],
        f: impl FnOnce(&[(u32, u32)]) -> bool,
    ) -> bool {
        let mut stack = [(0u32, 0u32); 16];
        let heap: Vec<(u32, u32)>;
        let all = || {
            let indexed = |(i, name): (usize, &String)| Some((self.item_id(name)?, i as u32));
            names
                .iter()
                .enumerate()
                .filter_map(indexed)
                .chain(more.iter().enumerate().filter_map(indexed))
        };
        let ids: &[(u32, u32)] = if names.len() + more.len() <= stack.len() {
            let mut n = 0;
            for id in all() {
                stack[n] = id;
                n += 1;
            }
            &stack[..n]
        } else {
            heap = all().collect();
            &heap
        };
        !ids.is_empty() && f(ids)
    }

    // ---- writing (always under the writer mutex) ----

    fn writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn cutoff_ms(&self, now: Timestamp) -> i64 {
        now.as_millis() - i64::from(self.retention_days()) * DAY_MS
    }

    /// Runs `parse` under the writer mutex, then applies its batch, or, if it
    /// fails, forgets everything it interned.
    fn write_batch(
        &self,
        now: Timestamp,
        parse: impl FnOnce(&Store, &mut Writer, i64, &mut Batch) -> Result<(), DataError>,
    ) -> Result<usize, DataError> {
        let mut w = self.writer();
        let first_new_item = w.next_item;
        let mut batch = Batch {
            now: compact_time(now).ok().flatten(),
            ..Batch::default()
        };
        match parse(self, &mut w, self.cutoff_ms(now), &mut batch) {
            Ok(()) => Ok(self.apply(&mut w, batch)),
            Err(e) => {
                w.pending.clear();
                w.next_item = first_new_item;
                Err(e)
            }
        }
    }

    fn intern(&self, w: &mut Writer, name: &str) -> Result<u32, String> {
        let h = self.key(name);
        if let Some(&id) = self.items[shard_of(h, ITEM_SHARDS)].load().get(&h) {
            return Ok(id);
        }
        if let Some(&id) = w.pending.get(&h) {
            return Ok(id);
        }
        if w.next_item >= MAX_ITEMS {
            return Err(format!(
                "more than {MAX_ITEMS} distinct products and interests were seen; restart to renumber"
            ));
        }
        let id = w.next_item;
        w.next_item += 1;
        w.pending.insert(h, id);
        if name.contains('\u{1f}') {
            self.own_events.store(true, Ordering::Relaxed);
        }
        Ok(id)
    }

    /// The stored form of one event; `None` when it is too old to keep.
    fn prepare(
        &self,
        w: &mut Writer,
        user: &str,
        kind: EventKind,
        item: &str,
        at: Timestamp,
        cutoff_ms: Option<i64>,
    ) -> Result<Option<(u64, Ev)>, String> {
        if cutoff_ms.is_some_and(|c| at.as_millis() < c) {
            return Ok(None);
        }
        let Some(secs) = compact_time(at)? else {
            return Ok(None);
        };
        let id = self.intern(w, item)?;
        Ok(Some((self.key(user), Ev::new(secs, kind, id))))
    }

    /// Parses and interns `text` into `batch`.
    fn parse_into(
        &self,
        w: &mut Writer,
        source_name: &str,
        text: &str,
        cutoff_ms: Option<i64>,
        batch: &mut Batch,
        mut skip_unmatchable: Option<&mut Unmatchable>,
    ) -> Result<(), DataError> {
        for (line, trimmed) in lines(text) {
            let fail = |reason: String| DataError {
                source_name: source_name.to_string(),
                line,
                reason,
            };
            let parsed = match skip_unmatchable {
                // Read whole: no line is too long to read back.
                Some(_) => parse_line_of_any_length(trimmed.trim()),
                None => parse_line(trimmed),
            };
            let p = match (parsed, skip_unmatchable.as_deref_mut()) {
                (Ok(p), _) => p,
                (Err(r), Some(skipped)) if r.unmatchable => {
                    skipped.lines += 1;
                    if skipped.first.len() < Unmatchable::SHOWN {
                        skipped.first.push(fail(r.reason));
                    }
                    continue;
                }
                (Err(r), _) => return Err(fail(r.reason)),
            };
            if let Some(ev) = self
                .prepare(
                    w,
                    &p.user,
                    p.kind,
                    &stored_item(p.advertiser.as_deref(), &p.item),
                    p.at,
                    cutoff_ms,
                )
                .map_err(fail)?
            {
                batch.events.push(ev);
            }
        }
        Ok(())
    }

    /// Publishes the batch's new items, then applies its events shard by
    /// shard. Returns the number of events added (an event already stored
    /// is not added again).
    fn apply(&self, w: &mut Writer, mut batch: Batch) -> usize {
        self.publish_items(w);
        let events = &mut batch.events;
        events.sort_unstable_by_key(|&(key, ev)| (shard_of(key, USER_SHARDS), key, ev));
        let mut added = 0;
        let mut rest = &events[..];
        while let Some(&(first, _)) = rest.first() {
            let shard = shard_of(first, USER_SHARDS);
            let n = rest.partition_point(|&(k, _)| shard_of(k, USER_SHARDS) == shard);
            added += self.apply_to_shard(w, &self.users[shard], &rest[..n], batch.now);
            rest = &rest[n..];
        }
        added
    }

    /// `batch` is sorted by user key, then event. The caller holds the
    /// writer mutex (`_w`), so the shard cannot change between the read
    /// lock and the write lock below.
    fn apply_to_shard(
        &self,
        _w: &Writer,
        lock: &RwLock<UserShard>,
        batch: &[(u64, Ev)],
        now: Option<u32>,
    ) -> usize {
        let mut merged: Vec<Ev> = Vec::new();
        // (user, range of `merged`)
        let mut updates: Vec<(u64, std::ops::Range<usize>)> = Vec::new();
        let mut run: Vec<Ev> = Vec::new();
        // Events the batch adds; users it adds; arena events its updated
        // users will take; arena events they take now (holes to be).
        let (mut added, mut new_users, mut arena_needed, mut old_runs) = (0, 0, 0, 0);
        let room = self.max_users_per_shard.load(Ordering::Relaxed);
        let event_room = self.max_events_per_shard.load(Ordering::Relaxed);
        let shard = read(lock);
        let evicted = evictions(&shard, batch, room, event_room, now);
        let mut rest = batch;
        while let Some(&(key, _)) = rest.first() {
            let n = rest.partition_point(|&(k, _)| k == key);
            run.clear();
            run.extend(rest[..n].iter().map(|&(_, ev)| ev));
            run.dedup();
            rest = &rest[n..];
            if evicted.binary_search(&key).is_ok() {
                continue;
            }
            let existing = shard.events_of(key);
            let start = merged.len();
            merge_into(existing, &run, &mut merged);
            let len = merged.len() - start;
            if len > MAX_EVENTS_PER_USER {
                // The newest are kept: a flood of one id ages out its own
                // oldest events, never grows the store past the cap.
                merged.drain(start..start + len - MAX_EVENTS_PER_USER);
            }
            let len = merged.len() - start;
            if merged[start..] == *existing {
                merged.truncate(start);
                continue;
            }
            // New events kept (at the cap, some may have pushed out old
            // ones, or been the oldest and gone at once).
            added += run
                .iter()
                .filter(|ev| {
                    existing.binary_search(ev).is_err() && merged[start..].binary_search(ev).is_ok()
                })
                .count();
            new_users += usize::from(existing.is_empty());
            arena_needed += if len > 1 { len } else { 0 };
            old_runs += if existing.len() > 1 {
                existing.len()
            } else {
                0
            };
            updates.push((key, start..merged.len()));
        }
        // The users that go: those of the shard (the batch's own newcomers
        // that were evicted on arrival were never in it).
        let dropped = evicted
            .iter()
            .filter(|&&k| shard.slots.contains_key(&k))
            .count();
        if !evicted.is_empty() {
            self.evicted
                .fetch_add(evicted.len() as u64, Ordering::Relaxed);
        }
        if updates.is_empty() && dropped == 0 {
            return 0;
        }
        let dropped_runs: usize = evicted
            .iter()
            .filter_map(|k| shard.slots.get(k))
            .filter(|s| s.run_range().is_some())
            .map(|s| s.len())
            .sum();
        let live_after = shard.live_arena() - old_runs - dropped_runs + arena_needed;
        let holes_after = shard.holes + old_runs;
        let rebuild = dropped > 0
            || shard.slots.capacity() - shard.slots.len() < new_users
            || shard.arena.capacity() - shard.arena.len() < arena_needed
            || holes_after > live_after / 2 + HOLES_SLACK;
        if rebuild {
            let replace: Vec<(u64, &[Ev])> = updates
                .iter()
                .map(|(key, r)| (*key, &merged[r.clone()]))
                .collect();
            let users = shard.slots.len() - dropped + new_users;
            let fresh = shard.rebuilt(
                &replace,
                &evicted,
                0,
                with_headroom(users),
                with_headroom(live_after),
            );
            drop(shard);
            let old = std::mem::replace(&mut *write(lock), fresh);
            drop(old);
        } else {
            drop(shard);
            for chunk in updates.chunks(WRITE_CHUNK) {
                let mut shard = write(lock);
                for (key, r) in chunk {
                    shard.put(*key, &merged[r.clone()]);
                }
            }
        }
        added
    }

    /// Makes the items of the applied batch visible to readers: each item
    /// shard that gains one is copied, extended and swapped.
    fn publish_items(&self, w: &mut Writer) {
        if w.pending.is_empty() {
            return;
        }
        let mut by_shard: Vec<Vec<(u64, u32)>> = vec![Vec::new(); ITEM_SHARDS];
        for (h, id) in w.pending.drain() {
            by_shard[shard_of(h, ITEM_SHARDS)].push((h, id));
        }
        for (shard, new) in self.items.iter().zip(by_shard) {
            if !new.is_empty() {
                let current = shard.load();
                let mut map = ItemMap::with_capacity_and_hasher(
                    current.len() + new.len(),
                    Default::default(),
                );
                map.extend(current.iter().map(|(&h, &id)| (h, id)));
                map.extend(new);
                shard.store(Arc::new(map));
            }
        }
    }

    /// Forgets item ids no stored event refers to.
    fn forget_items(&self) {
        let mut live: Vec<u64> = Vec::new();
        for shard in self.users.iter() {
            let shard = read(shard);
            for slot in shard.slots.values() {
                for e in shard.slice(slot) {
                    let id = e.item() as usize;
                    if live.len() <= id / 64 {
                        live.resize(id / 64 + 1, 0);
                    }
                    live[id / 64] |= 1 << (id % 64);
                }
            }
        }
        let is_live = |id: u32| {
            let id = id as usize;
            live.get(id / 64).is_some_and(|w| w & (1 << (id % 64)) != 0)
        };
        for shard in self.items.iter() {
            let current = shard.load_full();
            if current.values().all(|&id| is_live(id)) {
                continue;
            }
            let kept: ItemMap = current
                .iter()
                .filter(|(_, &id)| is_live(id))
                .map(|(&h, &id)| (h, id))
                .collect();
            shard.store(Arc::new(kept));
        }
    }
}

/// The `*.jsonl` files of an audience data directory, in name order (the
/// order they are applied in).
pub fn jsonl_files(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    files_with_extension(dir, "jsonl")
}

/// The files under `dir` (recursively) with this extension, in name order.
pub(crate) fn files_with_extension(dir: &Path, ext: &str) -> Result<Vec<PathBuf>, DataError> {
    let io_err = |reason: String| DataError {
        source_name: dir.display().to_string(),
        line: 0,
        reason,
    };
    let mut files = Vec::new();
    // Each directory and file once, by where it really is: two symlinks
    // to `.` made some 2^40 paths, and a start that never ended while its
    // memory grew by gigabytes (attack probe); one made every file read 40
    // times. A path that cannot be resolved is kept as given (a dangling
    // link is then named by the read that fails).
    let mut seen = std::collections::HashSet::new();
    let mut first =
        |p: &Path| seen.insert(std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()));
    first(dir);
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let entries =
            std::fs::read_dir(&d).map_err(|e| io_err(format!("cannot read directory: {e}")))?;
        for entry in entries {
            let path = entry
                .map_err(|e| io_err(format!("cannot read directory: {e}")))?
                .path();
            if path.is_dir() {
                if first(&path) {
                    pending.push(path);
                }
            } else if path
                .extension()
                .is_some_and(|x| x.eq_ignore_ascii_case(ext))
                && first(&path)
            {
                // In any case (`.JSONL` was passed over without a word,
                // where config files are read in any case: audiences probe).
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Events are sorted by time (purchases after views at the same second), so
/// one backward pass from `now` to `since` sees every purchase that could
/// cancel a view before the view itself.
/// `wanted`: item ids, each with its product's index (one product may
/// have two ids, see `Store::with_ids`); purchases end the views of their
/// product, whichever id.
fn viewed_not_bought(events: &[Ev], wanted: &[(u32, u32)], since_ms: i64, now_ms: i64) -> bool {
    let product = |item: u32| wanted.iter().find(|(id, _)| *id == item).map(|&(_, p)| p);
    let mut bought: Vec<u32> = Vec::new();
    for e in events.iter().rev() {
        let at = e.at_ms();
        if at > now_ms {
            // Stamped in the future: a view waits its turn. A purchase
            // within the skew uploads allow ([`FUTURE_SKEW_MS`]) has
            // happened and ends the membership now; waiting, the buyer was
            // remarketed what they had bought for up to that hour
            // (audiences probe). One further ahead (data loaded for a
            // simulation that replays its days) counts from its time on.
            if e.kind() == EventKind::Purchase && at <= now_ms.saturating_add(FUTURE_SKEW_MS) {
                bought.extend(product(e.item()));
            }
            continue;
        }
        if at < since_ms {
            break;
        }
        match e.kind() {
            EventKind::View => {
                if product(e.item()).is_some_and(|p| !bought.contains(&p)) {
                    return true;
                }
            }
            EventKind::Purchase => bought.extend(product(e.item())),
            EventKind::Interest => {}
        }
    }
    false
}

fn interested(events: &[Ev], wanted: &[(u32, u32)], since_ms: i64, now_ms: i64) -> bool {
    events
        .iter()
        .rev()
        .filter(|e| e.at_ms() <= now_ms)
        .take_while(|e| e.at_ms() >= since_ms)
        .any(|e| e.kind() == EventKind::Interest && wanted.iter().any(|&(id, _)| id == e.item()))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Taxonomy {
    /// IAB Content Category Taxonomy 1.0: `IAB17`, `IAB17-18`.
    V1,
    /// Content Taxonomy 2.x and 3.x: `483`, `WQC6HR`.
    V2Plus,
}

fn page_taxonomy(cattax: Option<i32>, id: &str) -> Option<Taxonomy> {
    match cattax {
        None if config::looks_iab1(id) => Some(Taxonomy::V1),
        None => Some(Taxonomy::V2Plus),
        Some(1) => Some(Taxonomy::V1),
        Some(2 | 5 | 6 | 7 | 9) => Some(Taxonomy::V2Plus),
        Some(_) => None,
    }
}

/// Whether a page category of taxonomy `tax` is the configured one or, in
/// 1.0, one of its subcategories (`IAB20-3` is within `IAB20`; `IAB201` is
/// not). A configured id is a 1.0 id when it looks like one, else a 2.x/3.x
/// id, matched exactly: without the taxonomy's parent table a 2.x/3.x parent
/// does not cover its children (configure the children too). 2.x and 3.x
/// ids are compared as they are, although 3.0 renumbered some nodes.
fn category_within(tax: Taxonomy, page: &str, wanted: &str) -> bool {
    match tax {
        Taxonomy::V1 => {
            config::looks_iab1(wanted)
                && (page.eq_ignore_ascii_case(wanted)
                    || (page.len() > wanted.len()
                        && page.as_bytes()[..wanted.len()].eq_ignore_ascii_case(wanted.as_bytes())
                        && page.as_bytes()[wanted.len()] == b'-'))
        }
        Taxonomy::V2Plus => !config::looks_iab1(wanted) && page == wanted,
    }
}

#[cfg(test)]
mod tests;

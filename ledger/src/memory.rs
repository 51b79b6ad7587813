//! The embedded ledger: everything in memory, sharded so that bids never
//! wait on one global lock.
//!
//! Locks are always taken in one order (a bid shard, then the counter
//! shards of its keys in index order, then a frequency shard), so two
//! callers never wait on each other crosswise. Deadlines are kept per bid
//! shard in a heap ordered by time: expiry pops what is due instead of
//! scanning every reservation.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::hash::{BuildHasher, Hash};
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use config::{Date, Micros, Timestamp};

use crate::budget::{BudgetKind, Refusal, Spent};
use crate::frequency::Window;
use crate::key::{BidKey, SpendKey};
use crate::late::LateShare;
use crate::table::BidTable;
use crate::{Charge, Durable, Expired, Hold, Ledger, NotCharged, Prior, Release, Win};

const BID_SHARDS: usize = 64;
/// Deadlines an expiry pass draws from a shard's queue at a time, whose bids
/// it looks up together before acting on them (`BidShard::warm`): enough
/// for the lookups' cache misses to overlap, few enough that the entries
/// are still in cache when the bids are acted on.
const EXPIRY_BATCH: usize = 64;
/// Deadlines one bid shard's [`Ledger::expire_step`] acts on at most: some
/// tens of microseconds of work, so that the server can run those steps on
/// its request workers between requests.
const EXPIRY_STEP: usize = 4 * EXPIRY_BATCH;
const KEY_SHARDS: usize = 32;
const FREQ_SHARDS: usize = 32;
/// Charged bids are grouped by when their notices expire, in spans of
/// this width. Every reservation looks its bid up in each span's set (a
/// new bid's random key must not be one already charged), so fewer, wider
/// spans cost fewer lookups: hourly spans under the default 24-hour notice
/// TTL were 25 sets, and with millions of charged ids a cache miss each,
/// half a microsecond per reservation. Four hours make it 7, for ids kept
/// up to four hours past their notices' expiry (about 8% more of them).
const CHARGED_SPAN_MS: i64 = 4 * 3_600_000;

/// Tuning of the embedded ledger.
#[derive(Clone, Debug)]
pub struct Options {
    /// How long after its reservation ended an expired bid is awaited before
    /// it counts as not won for the learned share (it is still held, at the
    /// share, until its notices expire). Late wins come within minutes.
    pub late_horizon_ms: i64,
    /// Expired bids tracked at most (100-180 bytes each: a 72-byte table
    /// entry, the table's free slots, a 16-byte deadline). Past this, a
    /// reservation that ends is not held any more: memory stays bounded
    /// when most bids are lost silently (their share is then near zero
    /// anyway).
    pub max_lingering: usize,
    /// Bids tracked at most, in every state (held, being charged, lost,
    /// expired and still awaited). Past this a new reservation is refused
    /// as [`Refusal::Unavailable`]: the bid is not made, and memory stays
    /// within what an operator sized it for. Each of the 64 shards of the
    /// table takes a 64th (rounded up), and they fill unevenly: refusals
    /// may begin a little before the bound. Unbounded otherwise, the table
    /// holds every bid of the last reservation TTL: at 70k bids a second
    /// and 60 s, 4 million of them, some 700 MB.
    pub max_bids: usize,
    /// Frequency windows kept at most (one per user and capped line item
    /// within its window, some 90 bytes each with the map's room). User
    /// ids come from requests: unbounded, a flood of made-up ones filled
    /// memory for a whole window (a day, for a daily cap). Past this a bid
    /// that would open a new window is refused as
    /// [`Refusal::Unavailable`]: a cap is never passed, and users already
    /// counted still bid. Each of the 32 shards takes a 32nd (rounded up).
    pub max_windows: usize,
    /// Days of per-day spend kept: a win is charged to the day of its bid,
    /// which may be this many days ago while its notices are accepted.
    pub keep_days: i64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            late_horizon_ms: 5 * 60_000,
            max_lingering: 250_000,
            max_bids: usize::MAX,
            max_windows: 4_000_000,
            keep_days: 2,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Reserved,
    Lingering {
        past_horizon: bool,
    },
    Charging,
    /// Lost (a loss notice came), remembered without any hold until its
    /// reservation would have ended: an exchange that sends a win after
    /// the loss still has the impression counted under the frequency cap.
    Released,
}

/// One per bid in flight, tens of millions an hour at full rate: kept to 64
/// bytes (a test holds it there). An `i64` day and a frequency slot whose
/// `None` took 8 bytes of its own made it 80, and a table of reservations
/// at 70k bids a second (a minute of them, about 4 million) 15% larger.
struct Bid {
    state: State,
    /// Days since the epoch: an `i32` reaches past the year 5 million.
    day: i32,
    amount: Micros,
    keys: [SpendKey; 2],
    /// Frequency window and bucket the bid counts in.
    freq: Option<(NonZeroU64, i64)>,
    /// The deadline a heap entry must carry to act on this bid.
    next: i64,
    flags: Flags,
    forget: i64,
}

/// A bid's yes-or-no facts, in one byte: four `bool`s took a byte each,
/// past the 64 a bid is kept to.
#[derive(Clone, Copy, Default)]
struct Flags(u8);

impl Flags {
    /// Its deadline came while it was being charged: an abort must queue
    /// it again (otherwise the entry is still queued).
    const DEADLINE_PASSED: u8 = 1;
    /// A win notice came that does not charge (the exchange bills on its
    /// billing notice): a loss must not release it.
    const WON: u8 = 2;
    /// Won, and held whole past its reservation until charged: counted
    /// with the lingering bids under [`Options::max_lingering`], whose
    /// bound keeps such bids (an exchange whose wins are often never
    /// billed) from growing the table without end.
    const KEPT: u8 = 4;
    /// Its win notice came after its reservation ended: a late win, as a
    /// charge from lingering is, whichever notice charges it.
    const LATE: u8 = 8;
    /// Won and not yet charged, listed in its shard's `bought`: what a
    /// restart must hold one by one until its notices expire.
    const BOUGHT: u8 = 16;

    fn has(self, flag: u8) -> bool {
        self.0 & flag != 0
    }

    fn set(&mut self, flag: u8) {
        self.0 |= flag;
    }

    /// Clears `flag`, saying whether it was set.
    fn take(&mut self, flag: u8) -> bool {
        let had = self.has(flag);
        self.0 &= !flag;
        had
    }
}

/// Bid keys are our own random bits (minted per bid, or read back from our
/// journal; a notice only looks one up, and its signature proves we made
/// it), so the charged sets take the fast hasher, as the counters do, and
/// the table of bids ([`BidTable`]) only a multiply.
#[derive(Default)]
struct BidShard {
    bids: BidTable<Bid>,
    deadlines: BinaryHeap<Reverse<(i64, u64)>>,
    /// Deadlines an expiry pass took off `deadlines` and has not acted on
    /// yet, earliest last ([`Self::next_due`]): still part of the queue,
    /// and kept with it under the shard's lock, so that a pass that
    /// panicked part way leaves them to the next one, not to nobody.
    drawn: Vec<(i64, u64)>,
    /// Charged bids, grouped by the span ([`CHARGED_SPAN_MS`]) in which
    /// their notices expire: forgetting a span is dropping one set, and an
    /// id costs about 9 bytes.
    charged: Vec<(i64, HashSet<u64, foldhash::fast::RandomState>)>,
    lingering: usize,
    /// Bids won and not yet charged ([`Flags::BOUGHT`]): written one by
    /// one for the next process ([`crate::Ledger::bought`]), which holds
    /// each until it is charged or its notices expire. Carried by key and
    /// day for the reservation window only, as bids in flight are, their
    /// budget came back after a restart: the line item bought its day's
    /// budget again and their billing notices were charged as
    /// over-delivery (probe finding).
    bought: HashSet<u64, foldhash::fast::RandomState>,
}

impl Bid {
    /// Its day since the epoch, as the counters are keyed.
    fn day(&self) -> i64 {
        i64::from(self.day)
    }
}

/// A day since the epoch as [`Bid`] keeps it, saturating. Only for a bid
/// whose day is never read back (one first seen at its charge, which books
/// to the charge's own day): a reservation whose day does not fit is
/// refused instead (see `reserve`), since its hold must come off the day it
/// went on.
fn day32(day: i64) -> i32 {
    i32::try_from(day).unwrap_or(if day < 0 { i32::MIN } else { i32::MAX })
}

impl BidShard {
    /// No place left for another bid under a shard's share of
    /// [`Options::max_bids`].
    /// Takes `b`, a bid of the process before, on as a bid won here past
    /// its reservation, holding `amount` (its caller counts it in the
    /// keys' `reserved`): held whole until charged (its charge then finds
    /// it, as `Prior::Reserved`) or until its notices expire. Over the
    /// lingering bound if it must be: the process before held it within
    /// its own.
    fn hold_bought(&mut self, b: &crate::Bought, day: i32, amount: Micros) {
        let forget = b.forget.as_millis();
        self.bids.insert(
            b.bid.0,
            Bid {
                state: State::Reserved,
                day,
                amount,
                keys: b.keys.clone(),
                freq: None,
                next: forget,
                flags: Flags(Flags::WON | Flags::KEPT | Flags::BOUGHT),
                forget,
            },
        );
        self.lingering += 1;
        self.bought.insert(b.bid.0);
        self.deadlines.push(Reverse((forget, b.bid.0)));
    }

    fn is_full(&self, share: usize) -> bool {
        self.bids.len() >= share
    }

    fn is_charged(&self, b: u64) -> bool {
        self.charged.iter().any(|(_, set)| set.contains(&b))
    }

    /// The earliest deadline due by `now_ms`, taken off the queue: the
    /// order the heap alone gives, drawn from it [`EXPIRY_BATCH`] at a time
    /// into [`Self::drawn`] (empty again when this returns `None`) so that
    /// their bids are looked up together first ([`Self::warm`]). A pass
    /// starts with [`Self::undraw`].
    fn next_due(&mut self, now_ms: i64) -> Option<(i64, u64)> {
        if self.drawn.is_empty() {
            while self.drawn.len() < EXPIRY_BATCH {
                match self.deadlines.peek() {
                    Some(&Reverse(due)) if due.0 <= now_ms => {
                        self.deadlines.pop();
                        self.drawn.push(due);
                    }
                    _ => break,
                }
            }
            // Earliest last, for `pop`.
            self.drawn.reverse();
            self.warm();
        }
        let next = *self.drawn.last()?;
        // Queued while the drawn ones were worked through (a bid moved on
        // to a deadline already due) and earlier than the next of them:
        // first, as the heap alone would have had it.
        match self.deadlines.peek() {
            Some(&Reverse(queued)) if queued < next => {
                self.deadlines.pop();
                Some(queued)
            }
            _ => self.drawn.pop(),
        }
    }

    /// Puts back in the queue what a pass drew and did not act on: a step
    /// whose budget ran out, or a pass that panicked (its lock recovered
    /// from the poisoning; what it drew possibly not due at the next pass's
    /// time if the clock stepped back).
    fn undraw(&mut self) {
        self.deadlines.extend(self.drawn.drain(..).map(Reverse));
    }

    /// Looks up the bids of [`Self::drawn`] before any is acted on. At full
    /// rate the table holds millions of bids, and a lookup is two cache
    /// misses (the index entry, then the bid). Acted on one at a time,
    /// each lookup waited for its misses before the next began; lookups
    /// that depend on nothing but the drawn deadlines run ahead of each
    /// other, their misses overlap, and the expiry that follows finds the
    /// entries in cache. The expiry pass went from about 3% of a loaded
    /// server's CPU to about 1%.
    fn warm(&self) {
        let live = self
            .drawn
            .iter()
            .filter(|&&(at, b)| self.bids.get(b).is_some_and(|bid| bid.next == at))
            .count();
        // Only so that the lookups are made: their answer is not needed.
        std::hint::black_box(live);
    }

    /// False when it was charged already.
    fn insert_charged(&mut self, b: u64, forget: i64) -> bool {
        if self.is_charged(b) {
            return false;
        }
        let span = forget.div_euclid(CHARGED_SPAN_MS);
        match self.charged.iter_mut().find(|(h, _)| *h == span) {
            Some((_, set)) => {
                set.insert(b);
            }
            None => {
                let mut set = HashSet::default();
                set.insert(b);
                self.charged.push((span, set));
            }
        }
        true
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Amounts {
    spent: Micros,
    /// Bids in flight.
    reserved: Micros,
    /// Wins being journaled.
    charging: Micros,
    /// Expired bids still awaited, held at the learned share.
    lingering: Micros,
    /// Those of them past the late horizon, held at the share of such bids
    /// won after it ([`MemoryLedger::late_past`]).
    lingering_past: Micros,
    /// Won beyond a cap: delivered, not billed.
    over: Micros,
    /// Held before a restart by bids this process does not know, until
    /// [`MemoryLedger::carried_until`] (see [`crate::Ledger::carry`]).
    carried: Micros,
}

#[derive(Default)]
struct Counters {
    total: Amounts,
    days: Vec<(i64, Amounts)>,
    kind: Option<BudgetKind>,
}

#[derive(Clone, Copy)]
enum Field {
    Spent,
    Over,
    Reserved,
    Charging,
    Lingering,
    LingeringPast,
    Carried,
}

impl Field {
    /// Where a lingering bid's amount is held: before its late horizon or
    /// past it.
    fn lingering(past_horizon: bool) -> Field {
        match past_horizon {
            false => Field::Lingering,
            true => Field::LingeringPast,
        }
    }
}

impl Amounts {
    fn field(&mut self, f: Field) -> &mut Micros {
        match f {
            Field::Spent => &mut self.spent,
            Field::Over => &mut self.over,
            Field::Reserved => &mut self.reserved,
            Field::Charging => &mut self.charging,
            Field::Lingering => &mut self.lingering,
            Field::LingeringPast => &mut self.lingering_past,
            Field::Carried => &mut self.carried,
        }
    }

    fn is_idle(&self) -> bool {
        self.reserved == Micros::ZERO
            && self.charging == Micros::ZERO
            && self.lingering == Micros::ZERO
            && self.lingering_past == Micros::ZERO
            && self.carried == Micros::ZERO
    }

    /// What this day (or the total) holds: bids in flight, wins being
    /// charged, the learned shares of expired bids (before and past their
    /// late horizon), and what was carried over a restart.
    fn held(&self, late: &Late) -> Micros {
        let held = self
            .reserved
            .saturating_add(self.charging)
            .saturating_add(self.carried);
        // Nearly always none lingering: one test for both shares.
        if (self.lingering.as_i64() | self.lingering_past.as_i64()) == 0 {
            return held;
        }
        held.saturating_add(late.share.of(self.lingering))
            .saturating_add(late.past.of(self.lingering_past))
    }
}

impl Counters {
    /// Adds (or with `up` false, takes away, never below zero) `amount` on
    /// `day` and in the total.
    fn change(&mut self, f: Field, day: i64, amount: Micros, up: bool) {
        let apply = |m: &mut Micros| {
            *m = if up {
                m.saturating_add(amount)
            } else {
                m.saturating_sub(amount).max(Micros::ZERO)
            };
        };
        apply(self.total.field(f));
        let slot = match self.days.iter().position(|(d, _)| *d == day) {
            Some(i) => &mut self.days[i].1,
            None => {
                self.days.push((day, Amounts::default()));
                let last = self.days.len() - 1;
                &mut self.days[last].1
            }
        };
        apply(slot.field(f));
    }

    /// The amounts of `day` (none yet: zero).
    fn on(&self, day: i64) -> Amounts {
        self.days
            .iter()
            .find(|(x, _)| *x == day)
            .map(|(_, a)| *a)
            .unwrap_or_default()
    }

    fn view(&self, day: i64, late: &Late) -> Spent {
        let d = self.on(day);
        let held = |a: &Amounts| a.held(late);
        Spent {
            today: d.spent,
            lifetime: self.total.spent,
            held_today: held(&d),
            held: held(&self.total),
            over_today: d.over,
        }
    }
}

/// The learned shares lingering bids are held at: of bids whose
/// reservation ended without a notice, those won later ([`LateShare`]);
/// and of those that passed their late horizon still without one, those
/// won after it. Most late wins come within minutes: held at the first
/// share until their notices expire, silent losses locked some 15% of a
/// daily budget all day where exchanges send no loss notices (value
/// probe); past the horizon they hold only what such bids turn out to be
/// worth.
#[derive(Debug, Default)]
struct Late {
    share: LateShare,
    past: LateShare,
}

impl Late {
    /// A lingering bid was won; `past_horizon`: after its horizon.
    fn won(&self, past_horizon: bool) {
        self.share.won(past_horizon);
        if past_horizon {
            self.past.won(true);
        }
    }
}

struct Sharded<T> {
    /// Picks a key's shard. The keys are ours (spend keys from the config,
    /// window keys already SipHashed, [`MemoryLedger::freq_key`]), so a
    /// fast hasher does; its seed need not be secret (foldhash is built
    /// without its `std` feature, which would seed it from more than an
    /// address).
    pick: foldhash::fast::RandomState,
    shards: Vec<Mutex<T>>,
}

/// A shard's map: the same reasoning as [`Sharded::pick`].
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

impl<T: Default> Sharded<T> {
    fn new(n: usize) -> Self {
        Sharded {
            pick: foldhash::fast::RandomState::default(),
            shards: (0..n).map(|_| Mutex::new(T::default())).collect(),
        }
    }

    fn index(&self, key: impl Hash) -> usize {
        (self.pick.hash_one(key) as usize) % self.shards.len()
    }

    fn lock(&self, i: usize) -> MutexGuard<'_, T> {
        // Every update below leaves the counters whole before it could
        // panic, so a poisoned lock is still consistent.
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Counter changes of an expiry pass, summed per bid's spend keys and day
/// and applied a few times per bid shard instead of once per bid. Taken per
/// bid, the counters' lock of a popular line item went back and forth
/// between the pass and the bid path (`reserve`, `spent`) thousands of
/// times a round, and std's mutex is not fair: the pass, already running,
/// can take it back before a worker woken for it runs. Summed, it takes
/// that lock once per expiry step and key (more often past 16 keys).
struct ExpirySums<'a> {
    ledger: &'a MemoryLedger,
    sums: Vec<ExpirySum>,
}

struct ExpirySum {
    keys: [SpendKey; 2],
    day: i64,
    reserved_down: Micros,
    lingering_up: Micros,
    lingering_down: Micros,
    lingering_past_up: Micros,
    lingering_past_down: Micros,
}

impl<'a> ExpirySums<'a> {
    fn new(ledger: &'a MemoryLedger) -> Self {
        ExpirySums {
            ledger,
            sums: Vec::new(),
        }
    }

    /// Distinct keys summed before they are applied: the lookup is a scan,
    /// and a pass over bids of many line items flushes as it goes.
    const MAX: usize = 16;

    fn entry(&mut self, keys: &[SpendKey; 2], day: i64) -> &mut ExpirySum {
        let found = self
            .sums
            .iter()
            .position(|s| s.day == day && s.keys == *keys);
        let i = match found {
            Some(i) => i,
            None => {
                if self.sums.len() >= Self::MAX {
                    self.apply();
                }
                self.sums.push(ExpirySum {
                    keys: keys.clone(),
                    day,
                    reserved_down: Micros::ZERO,
                    lingering_up: Micros::ZERO,
                    lingering_down: Micros::ZERO,
                    lingering_past_up: Micros::ZERO,
                    lingering_past_down: Micros::ZERO,
                });
                self.sums.len() - 1
            }
        };
        &mut self.sums[i]
    }

    /// Applies and forgets the sums. Additions before subtractions: a
    /// subtraction stops at zero, and summed ones never stop earlier than
    /// the same made one by one in their order.
    fn apply(&mut self) {
        for s in self.sums.drain(..) {
            let mut locked = self.ledger.lock_keys(&[&s.keys[0], &s.keys[1]]);
            for k in &s.keys {
                let c = locked.get(k);
                if s.lingering_up > Micros::ZERO {
                    c.change(Field::Lingering, s.day, s.lingering_up, true);
                }
                if s.lingering_past_up > Micros::ZERO {
                    c.change(Field::LingeringPast, s.day, s.lingering_past_up, true);
                }
                if s.reserved_down > Micros::ZERO {
                    c.change(Field::Reserved, s.day, s.reserved_down, false);
                }
                if s.lingering_down > Micros::ZERO {
                    c.change(Field::Lingering, s.day, s.lingering_down, false);
                }
                if s.lingering_past_down > Micros::ZERO {
                    c.change(Field::LingeringPast, s.day, s.lingering_past_down, false);
                }
            }
        }
    }
}

impl Drop for ExpirySums<'_> {
    fn drop(&mut self) {
        self.apply();
    }
}

/// The most keys one change locks at once: a win moves a bid's two keys
/// and, on a re-charge, a prior bid's two.
const MAX_LOCKED: usize = 4;

/// The counter shards of some keys, locked in index order. On the stack:
/// every reservation locks its keys, and the two vectors this was built
/// from cost about 450 of a reservation's 4,100 instructions.
struct Locked<'a> {
    counters: &'a Sharded<Map<SpendKey, Counters>>,
    /// Each locked shard with its index, in index order; `None` past them.
    guards: [Option<(usize, CounterShard<'a>)>; MAX_LOCKED],
}

type CounterShard<'a> = MutexGuard<'a, Map<SpendKey, Counters>>;

impl Locked<'_> {
    fn get(&mut self, key: &SpendKey) -> &mut Counters {
        let i = self.counters.index(key);
        let map = self
            .guards
            .iter_mut()
            .flatten()
            .find(|(gi, _)| *gi == i)
            .map(|(_, g)| g)
            .unwrap_or_else(|| unreachable!("every key's shard is locked"));
        if !map.contains_key(key) {
            map.insert(key.clone(), Counters::default());
        }
        map.get_mut(key)
            .unwrap_or_else(|| unreachable!("inserted above"))
    }
}

/// What a bid held before its charge began: the counter, its day and the
/// amount.
fn prior_hold(prior: Prior) -> Option<(Field, i64, Micros)> {
    match prior {
        Prior::None | Prior::Released { .. } => None,
        Prior::Carried { amount, day } => Some((Field::Carried, day, amount)),
        Prior::Reserved { amount, day, .. } => Some((Field::Reserved, day, amount)),
        Prior::Lingering {
            amount,
            day,
            past_horizon,
            ..
        } => Some((Field::lingering(past_horizon), day, amount)),
    }
}

/// A SipHash key of 128 random bits: std's random seed, drawn from the
/// system once per thread, through SipHash of two fixed words.
fn random_key() -> [u64; 2] {
    let state = std::hash::RandomState::new();
    [state.hash_one(1u8), state.hash_one(2u8)]
}

/// A bid's shard. Bid keys are random bits already: no hashing needed.
fn bid_shard_index(b: BidKey) -> usize {
    (b.0 % BID_SHARDS as u64) as usize
}

/// The embedded ledger.
pub struct MemoryLedger {
    options: Options,
    bids: Vec<Mutex<BidShard>>,
    counters: Sharded<Map<SpendKey, Counters>>,
    windows: Sharded<Map<u64, Window>>,
    /// The SipHash key windows are keyed under by (user, line item): users
    /// come from requests. Random, unless a process before this one's
    /// windows were taken on ([`Ledger::take_frequency`]): then theirs.
    window_key: OnceLock<[u64; 2]>,
    late: Late,
    /// The day old per-day spend was last pruned.
    pruned_day: AtomicI64,
    /// The frequency shard the next expiry pass sweeps.
    sweep: std::sync::atomic::AtomicUsize,
    /// The latest time an expiry pass (or a checkpoint) has seen: charged
    /// ids whose notices expired by then are forgotten, so a win whose
    /// notices expired by then is not charged, whatever the clock says
    /// now (a clock that stepped forward and back again).
    seen: AtomicI64,
    /// Until when holds carried over a restart are held (ms; 0: none).
    carried_until: AtomicI64,
    /// When they were taken on (ms): bids made before are theirs.
    carried_since: AtomicI64,
}

impl Default for MemoryLedger {
    fn default() -> Self {
        MemoryLedger::new(Options::default())
    }
}

impl MemoryLedger {
    pub fn new(options: Options) -> MemoryLedger {
        MemoryLedger {
            options,
            bids: (0..BID_SHARDS)
                .map(|_| Mutex::new(BidShard::default()))
                .collect(),
            counters: Sharded::new(KEY_SHARDS),
            windows: Sharded::new(FREQ_SHARDS),
            window_key: OnceLock::new(),
            late: Late::default(),
            pruned_day: AtomicI64::new(i64::MIN),
            sweep: std::sync::atomic::AtomicUsize::new(0),
            seen: AtomicI64::new(i64::MIN),
            carried_until: AtomicI64::new(0),
            carried_since: AtomicI64::new(i64::MIN),
        }
    }

    fn bid_shard(&self, b: BidKey) -> MutexGuard<'_, BidShard> {
        self.bids[bid_shard_index(b)]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Locks the shards of `keys` (at most [`MAX_LOCKED`]), each once, in
    /// index order: every caller takes them in the same order, so two
    /// cannot deadlock.
    fn lock_keys<'a>(&'a self, keys: &[&SpendKey]) -> Locked<'a> {
        assert!(keys.len() <= MAX_LOCKED, "at most {MAX_LOCKED} keys");
        let mut idx = [usize::MAX; MAX_LOCKED];
        for (at, k) in idx.iter_mut().zip(keys) {
            *at = self.counters.index(k);
        }
        idx.sort_unstable();
        let mut guards: [Option<_>; MAX_LOCKED] = std::array::from_fn(|_| None);
        let mut last = None;
        for (slot, &i) in guards.iter_mut().zip(&idx) {
            // usize::MAX marks an unused place; sorted, they come last.
            if i == usize::MAX || last == Some(i) {
                continue;
            }
            last = Some(i);
            *slot = Some((i, self.counters.lock(i)));
        }
        Locked {
            counters: &self.counters,
            guards,
        }
    }

    fn change_all(&self, keys: &[SpendKey; 2], f: Field, day: i64, amount: Micros, up: bool) {
        let mut locked = self.lock_keys(&[&keys[0], &keys[1]]);
        for k in keys {
            locked.get(k).change(f, day, amount, up);
        }
    }

    /// Never 0, so that a bid's slot is an `Option` for free: a hash of 0
    /// becomes 1 (a collision as likely as any other).
    ///
    /// Hashed field by field, not through `Hash` impls whose output may
    /// change with a toolchain or a crate: the next process must find the
    /// same windows under the same key ([`crate::frequency`]).
    fn freq_key(&self, user: &str, line_item: &SpendKey) -> NonZeroU64 {
        use std::hash::Hasher as _;
        let [k0, k1] = *self.window_key.get_or_init(random_key);
        let mut h = siphasher::sip::SipHasher13::new_with_keys(k0, k1);
        h.write(user.as_bytes());
        h.write_u8(0xff);
        h.write(line_item.id().as_bytes());
        NonZeroU64::new(h.finish()).unwrap_or(NonZeroU64::MIN)
    }

    fn freq_change(&self, slot: Option<(NonZeroU64, i64)>, up: bool) {
        if let Some((k, bucket)) = slot {
            let k = k.get();
            let mut shard = self.windows.lock(self.windows.index(k));
            if let Some(w) = shard.get_mut(&k) {
                w.change(bucket, up);
            }
        }
    }

    /// Bid keys are random bits: the shards fill evenly, so a shard's share
    /// of the bound bounds the whole within a little.
    fn max_bids_per_shard(&self) -> usize {
        self.options.max_bids.div_ceil(BID_SHARDS).max(1)
    }

    fn max_windows_per_shard(&self) -> usize {
        self.options.max_windows.div_ceil(FREQ_SHARDS).max(1)
    }

    fn max_lingering_per_shard(&self) -> usize {
        self.options.max_lingering.div_ceil(BID_SHARDS).max(1)
    }

    /// Drops the frequency windows of one shard whose every bucket has
    /// passed: user ids come from bid requests, and a window per id ever
    /// seen would grow without bound. One shard a pass keeps each pass
    /// short; a bid in flight that still points at a dropped window finds
    /// nothing to give back, which is what the window would say anyway.
    ///
    /// Not those at zero before their time: a bid whose reservation ended
    /// gave its slot back and takes it again if it is won late, which it
    /// may be until its notices expire (so made-up users whose bids were
    /// lost keep their places under [`Options::max_windows`] for their cap
    /// window).
    fn sweep_windows(&self, now: Timestamp) {
        let i = self.sweep.fetch_add(1, Ordering::Relaxed) % FREQ_SHARDS;
        self.windows.lock(i).retain(|_, w| !w.passed(now));
    }

    /// One bid shard's part of an expiry pass: acts on at most `max` of
    /// its due deadlines, under its lock, into `out`. Whether some are
    /// still due.
    fn expire_shard(&self, i: usize, now_ms: i64, max: usize, out: &mut Expired) -> bool {
        let cap = self.max_lingering_per_shard();
        let mut shard = self.bids[i].lock().unwrap_or_else(|p| p.into_inner());
        // After the guard, so dropped before it: a pass that panics still
        // applies what it summed, under the shard's lock, for the bids it
        // already moved on.
        let mut sums = ExpirySums::new(self);
        shard.undraw();
        let mut left = max;
        while left > 0 {
            let Some((at, b)) = shard.next_due(now_ms) else {
                break;
            };
            left -= 1;
            let full = shard.lingering >= cap;
            let Some(bid) = shard.bids.get_mut(b) else {
                continue;
            };
            if bid.next != at {
                continue;
            }
            match bid.state {
                State::Charging => bid.flags.set(Flags::DEADLINE_PASSED),
                State::Released => {
                    shard.bids.remove(b);
                }
                // Won, its charge still to come (an exchange that bills on
                // its billing notice): the impression is bought, so its whole
                // cost stays held until it is billed or its notices expire.
                // As a lingering bid it would hold only the late-win share.
                State::Reserved
                    if bid.flags.has(Flags::WON)
                        && bid.forget > at
                        && (bid.flags.has(Flags::KEPT) || !full) =>
                {
                    bid.next = bid.forget;
                    let next = bid.next;
                    if !bid.flags.has(Flags::KEPT) {
                        bid.flags.set(Flags::KEPT);
                        shard.lingering += 1;
                    }
                    shard.deadlines.push(Reverse((next, b)));
                }
                State::Reserved => {
                    let kept = bid.flags.has(Flags::KEPT);
                    if kept {
                        shard.lingering = shard.lingering.saturating_sub(1);
                    } else {
                        out.reservations += 1;
                    }
                    let Some(bid) = shard.bids.get_mut(b) else {
                        continue;
                    };
                    let (keys, day, amount, freq) =
                        (bid.keys.clone(), bid.day(), bid.amount, bid.freq);
                    let won = bid.flags.has(Flags::WON);
                    // Won bids here are let go (see the arm above), never
                    // kept lingering; bought no more either way.
                    if bid.flags.take(Flags::BOUGHT) {
                        shard.bought.remove(&b);
                    }
                    let Some(bid) = shard.bids.get_mut(b) else {
                        continue;
                    };
                    let keep = !full && bid.forget > at && !kept;
                    if keep {
                        bid.state = State::Lingering {
                            past_horizon: false,
                        };
                        bid.next = at
                            .saturating_add(self.options.late_horizon_ms)
                            .min(bid.forget);
                        let next = bid.next;
                        shard.deadlines.push(Reverse((next, b)));
                        shard.lingering += 1;
                    } else {
                        // Not an outcome: the bid is merely not tracked
                        // (the book is full, or its notices expired).
                        shard.bids.remove(b);
                        out.forgotten += 1;
                    }
                    let sum = sums.entry(&keys, day);
                    sum.reserved_down = sum.reserved_down.saturating_add(amount);
                    if keep {
                        sum.lingering_up = sum.lingering_up.saturating_add(amount);
                    }
                    // A won bid let go (the bound is full, or its notices
                    // expired) was an impression all the same: its slot
                    // stays counted, as its charge from nothing would not
                    // count it again (review finding).
                    if !won {
                        self.freq_change(freq, false);
                    }
                }
                State::Lingering { past_horizon } => {
                    if !past_horizon {
                        self.late.share.not_won();
                    }
                    let (keys, day, amount) = (bid.keys.clone(), bid.day(), bid.amount);
                    if !past_horizon && at < bid.forget {
                        // Past its horizon: held from now on at the share
                        // of such bids won later still, which it counts
                        // against until a win says otherwise.
                        self.late.past.not_won();
                        bid.state = State::Lingering { past_horizon: true };
                        bid.next = bid.forget;
                        let next = bid.next;
                        shard.deadlines.push(Reverse((next, b)));
                        let sum = sums.entry(&keys, day);
                        sum.lingering_down = sum.lingering_down.saturating_add(amount);
                        sum.lingering_past_up = sum.lingering_past_up.saturating_add(amount);
                        continue;
                    }
                    shard.bids.remove(b);
                    shard.lingering = shard.lingering.saturating_sub(1);
                    out.forgotten += 1;
                    let sum = sums.entry(&keys, day);
                    match past_horizon {
                        false => {
                            sum.lingering_down = sum.lingering_down.saturating_add(amount);
                        }
                        true => {
                            sum.lingering_past_down =
                                sum.lingering_past_down.saturating_add(amount);
                        }
                    }
                }
            }
        }
        // Under the shard's lock, as each bid's change was: a notice
        // for one of these bids waits for it, and finds the counters
        // already saying what its state says.
        sums.apply();
        shard
            .charged
            .retain(|(span, _)| (span + 1) * CHARGED_SPAN_MS > now_ms);
        // What the budget left drawn goes back in the queue, for the next
        // step.
        shard.undraw();
        shard
            .deadlines
            .peek()
            .is_some_and(|Reverse((at, _))| *at <= now_ms)
    }

    /// Drops per-day amounts older than the days kept, once a day.
    fn prune_days(&self, now: Timestamp) {
        let today = now.date().days_since_epoch();
        let last = self.pruned_day.load(Ordering::Relaxed);
        if last == today
            || self
                .pruned_day
                .compare_exchange(last, today, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let oldest = today - self.options.keep_days;
        for i in 0..KEY_SHARDS {
            let mut shard = self.counters.lock(i);
            for c in shard.values_mut() {
                c.days.retain(|(d, a)| *d >= oldest || !a.is_idle());
            }
        }
    }
}

impl MemoryLedger {
    /// The bought bids, each with whether it is still reserved (not being
    /// charged).
    fn bought_listed(&self) -> Vec<(crate::Bought, bool)> {
        let mut out = Vec::new();
        for shard in self.bids.iter() {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            out.extend(shard.bought.iter().filter_map(|&b| {
                let bid = shard.bids.get(b)?;
                let b = crate::Bought {
                    bid: BidKey(b),
                    keys: bid.keys.clone(),
                    day: Date::from_days_since_epoch(bid.day()),
                    amount: bid.amount,
                    forget: Timestamp(bid.forget),
                };
                Some((b, bid.state == State::Reserved))
            }));
        }
        out
    }

    /// Lets go of the holds carried over a restart once their time is up.
    fn drop_carried(&self, now: Timestamp) {
        let until = self.carried_until.load(Ordering::Relaxed);
        if until == 0 || now.as_millis() < until {
            return;
        }
        if self
            .carried_until
            .compare_exchange(until, 0, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        for i in 0..KEY_SHARDS {
            let mut shard = self.counters.lock(i);
            for c in shard.values_mut() {
                c.total.carried = Micros::ZERO;
                for (_, a) in &mut c.days {
                    a.carried = Micros::ZERO;
                }
            }
        }
    }

    /// A bid held here was charged by another replica (a shared backend
    /// heard it): its hold goes without spend, and a notice arriving here
    /// later is a duplicate. Returns what it held (also when a loss had
    /// released it), its day and keys, for the backend to give back the
    /// budget it had borrowed for it; `None`
    /// when the bid is not held here or is being charged here.
    pub fn settled_elsewhere(&self, bid: BidKey) -> Option<(Micros, i64, [SpendKey; 2])> {
        let mut shard = self.bid_shard(bid);
        let b = shard.bids.get(bid.0)?;
        let field = match b.state {
            State::Charging => return None,
            State::Reserved => Some(Field::Reserved),
            State::Lingering { past_horizon } => Some(Field::lingering(past_horizon)),
            State::Released => None,
        };
        let b = shard.bids.remove(bid.0)?;
        if matches!(b.state, State::Lingering { .. }) || b.flags.has(Flags::KEPT) {
            shard.lingering = shard.lingering.saturating_sub(1);
        }
        if b.flags.has(Flags::BOUGHT) {
            shard.bought.remove(&bid.0);
        }
        shard.insert_charged(bid.0, b.forget);
        drop(shard);
        // A late win all the same, wherever it was charged: the share of
        // bids this replica made that are won late learns it here, or,
        // with notices spread over replicas, it learned only the wins that
        // came back to this one and held expired bids at too little
        // (operator probe: 0.51 where 0.61 were won).
        if let State::Lingering { past_horizon } = b.state {
            self.late.won(past_horizon);
        }
        // Released by a loss that came first (the charge and the loss
        // travel apart): its hold is already back in what this replica may
        // spend, yet the charge made it spend elsewhere. The backend must
        // still give back the budget it borrowed for it, or that amount is
        // spent twice.
        let Some(field) = field else {
            return Some((b.amount, b.day(), b.keys));
        };
        self.change_all(&b.keys, field, b.day(), b.amount, false);
        Some((b.amount, b.day(), b.keys))
    }

    /// Whether the table of bids in flight has no place for `bid`
    /// ([`Options::max_bids`]): a shared backend asks before it spends a
    /// lease on a bid this table would refuse.
    pub fn is_full_for(&self, bid: BidKey) -> bool {
        self.bid_shard(bid).is_full(self.max_bids_per_shard())
    }

    /// Whether the bid is known here as charged (journaled, or restored
    /// from the checkpoint).
    pub fn is_charged(&self, bid: BidKey) -> bool {
        self.bid_shard(bid).is_charged(bid.0)
    }

    /// A charge begun here whose billed amount a shared backend lowered
    /// (other replicas spent meanwhile): what it holds follows.
    pub fn rebill(&self, charge: &mut Charge, billed: Micros) {
        let billed = billed.max(Micros::ZERO).min(charge.billed);
        let less = charge.billed.saturating_sub(billed);
        if less > Micros::ZERO {
            let day = charge.day.days_since_epoch();
            self.change_all(&charge.keys, Field::Charging, day, less, false);
        }
        charge.over_delivery = charge.over_delivery.saturating_add(less);
        charge.billed = billed;
    }
}

impl Ledger for MemoryLedger {
    fn reserve(&self, hold: &Hold<'_>, now: Timestamp) -> Result<(), Refusal> {
        let b = hold.bid;
        let day = hold.day.days_since_epoch();
        // A year past 5 million: no clock gets there, but a hold put on one
        // day and taken off another would stay forever.
        let Ok(day32) = i32::try_from(day) else {
            return Err(Refusal::Unavailable);
        };
        let mut shard = self.bid_shard(b);
        // Two bids sharing 64 random bits: refuse the second rather than
        // mix their books.
        if shard.bids.contains_key(b.0) || shard.is_charged(b.0) {
            return Err(Refusal::Budget);
        }
        // Before the budgets: a full table refuses whatever they say.
        if shard.is_full(self.max_bids_per_shard()) {
            return Err(Refusal::Unavailable);
        }
        let keys = [hold.limits[0].key, hold.limits[1].key];
        let mut locked = self.lock_keys(&keys);
        for l in &hold.limits {
            locked
                .get(l.key)
                .view(day, &self.late)
                .room_for(l.cap, hold.cost, now)?;
        }
        let mut freq = None;
        if let Some(f) = hold.frequency {
            let slot = self.freq_key(f.user, keys[0]);
            let k = slot.get();
            let mut windows = self.windows.lock(self.windows.index(k));
            if windows.len() >= self.max_windows_per_shard() && !windows.contains_key(&k) {
                return Err(Refusal::Unavailable);
            }
            let w = windows.entry(k).or_insert_with(|| Window::new(f.window_ms));
            // A changed cap window carries what counts on.
            if w.width_ms != Window::width(f.window_ms) {
                w.rewidth(f.window_ms, now);
            }
            w.advance(now);
            if w.total() >= f.cap {
                return Err(Refusal::Frequency);
            }
            let bucket = w.bucket(now);
            w.change(bucket, true);
            freq = Some((slot, bucket));
        }
        for k in keys {
            locked.get(k).change(Field::Reserved, day, hold.cost, true);
        }
        drop(locked);
        let expires = hold.expires.as_millis();
        shard.bids.insert(
            b.0,
            Bid {
                state: State::Reserved,
                day: day32,
                amount: hold.cost,
                keys: [keys[0].clone(), keys[1].clone()],
                freq,
                next: expires,
                flags: Flags::default(),
                forget: hold.forget.as_millis(),
            },
        );
        shard.deadlines.push(Reverse((expires, b.0)));
        Ok(())
    }

    fn prefetch(&self, bid: BidKey) {
        // Not worth a wait: a shard another thread holds is left alone.
        if let Ok(shard) = self.bids[bid_shard_index(bid)].try_lock() {
            shard.bids.prefetch(bid.0);
        }
    }

    fn release(&self, bid: BidKey) -> Release {
        let mut shard = self.bid_shard(bid);
        if shard.is_charged(bid.0) {
            return Release::AlreadyWon;
        }
        let state = match shard.bids.get(bid.0) {
            None => return Release::Unknown,
            Some(b) if b.flags.has(Flags::WON) => return Release::AlreadyWon,
            Some(b) => b.state,
        };
        match state {
            State::Charging => Release::AlreadyWon,
            State::Released => Release::Unknown,
            State::Lingering { past_horizon } => {
                let Some(b) = shard.bids.remove(bid.0) else {
                    return Release::Unknown;
                };
                shard.lingering = shard.lingering.saturating_sub(1);
                let field = Field::lingering(past_horizon);
                self.change_all(&b.keys, field, b.day(), b.amount, false);
                if !past_horizon {
                    self.late.share.not_won();
                }
                Release::Released
            }
            State::Reserved => {
                let Some(b) = shard.bids.get_mut(bid.0) else {
                    return Release::Unknown;
                };
                // Kept until its reservation deadline (already in the heap)
                // pops, holding nothing.
                b.state = State::Released;
                let (keys, day, amount, freq) = (b.keys.clone(), b.day(), b.amount, b.freq);
                self.change_all(&keys, Field::Reserved, day, amount, false);
                self.freq_change(freq, false);
                Release::Released
            }
        }
    }

    fn won(&self, bid: BidKey) -> bool {
        let mut shard = self.bid_shard(bid);
        if shard.is_charged(bid.0) {
            return true;
        }
        match shard.bids.get_mut(bid.0) {
            // Won after its reservation ended: it held only the late-win
            // share since; its whole cost is held again until it is billed
            // (the impression is bought), and its frequency slot, given
            // back at the end of the reservation, counts again.
            Some(b) if matches!(b.state, State::Lingering { .. }) => {
                let State::Lingering { past_horizon } = b.state else {
                    return true;
                };
                b.state = State::Reserved;
                b.next = b.forget;
                // Still counted under the lingering bound, now as kept.
                b.flags
                    .set(Flags::WON | Flags::KEPT | Flags::LATE | Flags::BOUGHT);
                let (keys, day, amount, freq, next) =
                    (b.keys.clone(), b.day(), b.amount, b.freq, b.forget);
                shard.bought.insert(bid.0);
                shard.deadlines.push(Reverse((next, bid.0)));
                {
                    let mut locked = self.lock_keys(&[&keys[0], &keys[1]]);
                    for k in &keys {
                        let c = locked.get(k);
                        c.change(Field::Reserved, day, amount, true);
                        c.change(Field::lingering(past_horizon), day, amount, false);
                    }
                }
                drop(shard);
                self.freq_change(freq, true);
                self.late.won(past_horizon);
                true
            }
            // Bought: held until charged, a restart included (see
            // `BidShard::bought`).
            Some(b) if b.state == State::Reserved => {
                b.flags.set(Flags::WON | Flags::BOUGHT);
                shard.bought.insert(bid.0);
                true
            }
            // A bid already lost stays lost: its hold is gone. One being
            // charged is marked only: its charge ends it, or its abort
            // counts it bought.
            Some(b) if b.state != State::Released => {
                b.flags.set(Flags::WON);
                true
            }
            _ => false,
        }
    }

    fn outcome(&self, bid: BidKey) -> crate::Outcome {
        let shard = self.bid_shard(bid);
        if shard.is_charged(bid.0) {
            return crate::Outcome::Charged;
        }
        match shard.bids.get(bid.0) {
            Some(b) if b.state == State::Released => crate::Outcome::Lost,
            Some(b) if b.flags.has(Flags::WON) => crate::Outcome::Won,
            Some(_) => crate::Outcome::InFlight,
            None => crate::Outcome::Unknown,
        }
    }

    fn begin_charge(&self, win: &Win<'_>) -> Result<Charge, NotCharged> {
        let b = win.bid;
        let day = win.day.days_since_epoch();
        let win_keys = [win.limits[0].key.clone(), win.limits[1].key.clone()];
        let mut shard = self.bid_shard(b);
        if shard.is_charged(b.0) {
            return Err(NotCharged::Duplicate);
        }
        if win.forget.as_millis() <= self.seen.load(Ordering::Relaxed) {
            return Err(NotCharged::Forgotten);
        }
        let (prior, prior_keys, won_late) = match shard.bids.get_mut(b.0) {
            Some(bid) => {
                let prior = match bid.state {
                    State::Charging => return Err(NotCharged::InFlight),
                    State::Released => Prior::Released { next: bid.next },
                    State::Reserved => Prior::Reserved {
                        amount: bid.amount,
                        day: bid.day(),
                        expires: bid.next,
                    },
                    State::Lingering { past_horizon } => Prior::Lingering {
                        amount: bid.amount,
                        day: bid.day(),
                        next: bid.next,
                        past_horizon,
                    },
                };
                bid.state = State::Charging;
                (prior, bid.keys.clone(), bid.flags.has(Flags::LATE))
            }
            None => {
                shard.bids.insert(
                    b.0,
                    Bid {
                        state: State::Charging,
                        day: day32(day),
                        amount: Micros::ZERO,
                        keys: win_keys.clone(),
                        freq: None,
                        next: i64::MAX,
                        flags: Flags::default(),
                        forget: win.forget.as_millis(),
                    },
                );
                (Prior::None, win_keys.clone(), false)
            }
        };
        if matches!(prior, Prior::Lingering { .. }) {
            shard.lingering = shard.lingering.saturating_sub(1);
        }
        let mut locked =
            self.lock_keys(&[&win_keys[0], &win_keys[1], &prior_keys[0], &prior_keys[1]]);
        // A bid the process before made: of what it carried for such bids,
        // this one's cost (at most what the line item and the order both
        // still carry that day) is now being charged instead.
        let prior = match prior {
            Prior::None
                if self.carried_until.load(Ordering::Relaxed) != 0
                    && win.made.as_millis() < self.carried_since.load(Ordering::Relaxed) =>
            {
                let mut carried = |k: &SpendKey| locked.get(k).on(day).carried;
                let amount = win
                    .cost
                    .min(carried(&win_keys[0]))
                    .min(carried(&win_keys[1]));
                match amount > Micros::ZERO {
                    true => Prior::Carried { amount, day },
                    false => Prior::None,
                }
            }
            other => other,
        };
        if let Some((field, day, amount)) = prior_hold(prior) {
            for k in &prior_keys {
                locked.get(k).change(field, day, amount, false);
            }
        }
        // Billed up to what is left after spend and the wins being charged:
        // bids in flight hold room for themselves, but a win is owed first.
        let billed = win.limits.iter().fold(win.cost, |billed, l| {
            let c = locked.get(l.key);
            let d = c.on(day);
            let used = Spent {
                today: d.spent.saturating_add(d.charging),
                lifetime: c.total.spent.saturating_add(c.total.charging),
                ..Spent::default()
            };
            billed.min(used.left(l.cap))
        });
        for k in &win_keys {
            locked.get(k).change(Field::Charging, day, billed, true);
        }
        Ok(Charge {
            bid: b,
            day: win.day,
            billed,
            over_delivery: win.cost.saturating_sub(billed),
            forget: win.forget,
            keys: win_keys,
            kind: BudgetKind::of(win.limits[0].cap),
            // Won late at its win notice (`won`), charged now from its
            // whole hold: as late as one charged from lingering.
            late: won_late || matches!(prior, Prior::Lingering { .. }),
            prior,
            tags: win.tags.clone(),
        })
    }

    fn commit(&self, charge: &Charge) {
        let day = charge.day.days_since_epoch();
        let mut shard = self.bid_shard(charge.bid);
        shard.insert_charged(charge.bid.0, charge.forget.as_millis());
        let removed = shard.bids.remove(charge.bid.0);
        if removed.as_ref().is_some_and(|b| b.flags.has(Flags::KEPT)) {
            shard.lingering = shard.lingering.saturating_sub(1);
        }
        if removed.as_ref().is_some_and(|b| b.flags.has(Flags::BOUGHT)) {
            shard.bought.remove(&charge.bid.0);
        }
        let freq = removed.and_then(|b| b.freq);
        {
            let mut locked = self.lock_keys(&[&charge.keys[0], &charge.keys[1]]);
            for k in &charge.keys {
                let c = locked.get(k);
                c.change(Field::Charging, day, charge.billed, false);
                c.change(Field::Spent, day, charge.billed, true);
                c.change(Field::Over, day, charge.over_delivery, true);
            }
            if let Some(kind) = charge.kind {
                locked.get(&charge.keys[0]).kind = Some(kind);
            }
        }
        drop(shard);
        match charge.prior {
            // Its slot stayed counted while it was in flight: now it is an
            // impression.
            Prior::Reserved { .. } => {}
            // Its slot went back when the reservation expired: count it again.
            Prior::Lingering { past_horizon, .. } => {
                self.freq_change(freq, true);
                self.late.won(past_horizon);
            }
            // Won after all, after a loss notice: the slot counts again.
            Prior::Released { .. } => self.freq_change(freq, true),
            Prior::None | Prior::Carried { .. } => {}
        }
    }

    fn abort(&self, charge: &Charge) {
        let day = charge.day.days_since_epoch();
        let mut shard = self.bid_shard(charge.bid);
        let mut now_bought = false;
        let (keys, requeue) = match shard.bids.get_mut(charge.bid.0) {
            Some(b) => {
                match charge.prior {
                    Prior::None | Prior::Carried { .. } => {}
                    Prior::Reserved { expires, .. } => {
                        b.state = State::Reserved;
                        b.next = expires;
                        // A win notice came while it was being charged.
                        if b.flags.has(Flags::WON) && !b.flags.has(Flags::BOUGHT) {
                            b.flags.set(Flags::BOUGHT);
                            now_bought = true;
                        }
                    }
                    Prior::Lingering {
                        next, past_horizon, ..
                    } => {
                        b.state = State::Lingering { past_horizon };
                        b.next = next;
                    }
                    Prior::Released { next } => {
                        b.state = State::Released;
                        b.next = next;
                    }
                }
                let requeue = b.flags.take(Flags::DEADLINE_PASSED).then_some(b.next);
                (b.keys.clone(), requeue)
            }
            None => (charge.keys.clone(), None),
        };
        if now_bought {
            shard.bought.insert(charge.bid.0);
        }
        match charge.prior {
            Prior::None | Prior::Carried { .. } => {
                shard.bids.remove(charge.bid.0);
            }
            Prior::Lingering { .. } => shard.lingering += 1,
            Prior::Reserved { .. } | Prior::Released { .. } => {}
        }
        if let (Some(next), false) = (
            requeue,
            matches!(charge.prior, Prior::None | Prior::Carried { .. }),
        ) {
            shard.deadlines.push(Reverse((next, charge.bid.0)));
        }
        let mut locked = self.lock_keys(&[&charge.keys[0], &charge.keys[1], &keys[0], &keys[1]]);
        for k in &charge.keys {
            locked
                .get(k)
                .change(Field::Charging, day, charge.billed, false);
        }
        // What was carried goes back only while carried holds are: once
        // their time is up, nothing would let it go again.
        let prior = match charge.prior {
            Prior::Carried { .. } if self.carried_until.load(Ordering::Relaxed) == 0 => Prior::None,
            other => other,
        };
        if let Some((field, day, amount)) = prior_hold(prior) {
            for k in &keys {
                locked.get(k).change(field, day, amount, true);
            }
        }
    }

    fn expire(&self, now: Timestamp) -> Expired {
        let now_ms = now.as_millis();
        self.seen.fetch_max(now_ms, Ordering::Relaxed);
        let mut out = Expired::default();
        for i in 0..BID_SHARDS {
            while self.expire_shard(i, now_ms, usize::MAX, &mut out) {}
        }
        // The last step: days and windows.
        self.expire_step(now, BID_SHARDS);
        out
    }

    fn expiry_steps(&self) -> usize {
        BID_SHARDS + 1
    }

    fn expire_step(&self, now: Timestamp, step: usize) -> (Expired, bool) {
        let now_ms = now.as_millis();
        self.seen.fetch_max(now_ms, Ordering::Relaxed);
        let mut out = Expired::default();
        if step < BID_SHARDS {
            let more = self.expire_shard(step, now_ms, EXPIRY_STEP, &mut out);
            return (out, !more);
        }
        self.prune_days(now);
        self.sweep_windows(now);
        self.drop_carried(now);
        (out, true)
    }

    fn spent(&self, key: &SpendKey, day: Date) -> Spent {
        let shard = self.counters.lock(self.counters.index(key));
        shard
            .get(key)
            .map(|c| c.view(day.days_since_epoch(), &self.late))
            .unwrap_or_default()
    }

    fn frequency_allows(
        &self,
        user: &str,
        line_item: &SpendKey,
        cap: u32,
        window_ms: i64,
        now: Timestamp,
    ) -> bool {
        let k = self.freq_key(user, line_item).get();
        let mut shard = self.windows.lock(self.windows.index(k));
        match shard.get_mut(&k) {
            Some(w) => {
                if w.width_ms != Window::width(window_ms) {
                    w.rewidth(window_ms, now);
                }
                w.advance(now);
                w.total() < cap
            }
            _ => cap > 0,
        }
    }

    fn budget_kind(&self, line_item: &str) -> Option<BudgetKind> {
        let key = SpendKey::line_item(line_item);
        let shard = self.counters.lock(self.counters.index(&key));
        shard.get(&key).and_then(|c| c.kind)
    }

    fn holds(&self) -> Vec<crate::Holding> {
        self.holds_and_bought().0
    }

    fn holds_and_bought(&self) -> (Vec<crate::Holding>, Vec<crate::Bought>) {
        let listed = self.bought_listed();
        let until = self.carried_until.load(Ordering::Relaxed);
        // What the bought bids hold, by key and day: written one by one
        // ([`Ledger::bought`]), not with the bids in flight. Only those
        // still reserved: one being charged holds its billed amount in
        // `charging`, not its bid (review finding: the bids in flight
        // beside it were written short by the difference).
        let mut bought: HashMap<(SpendKey, i64), Micros> = HashMap::new();
        for (b, _) in listed.iter().filter(|(_, reserved)| *reserved) {
            for key in b.keys.clone() {
                let sum = bought
                    .entry((key, b.day.days_since_epoch()))
                    .or_insert(Micros::ZERO);
                *sum = sum.saturating_add(b.amount);
            }
        }
        let mut out = Vec::new();
        for i in 0..KEY_SHARDS {
            let shard = self.counters.lock(i);
            for (key, c) in shard.iter() {
                for (day, a) in &c.days {
                    let of_bought = match bought.is_empty() {
                        true => Micros::ZERO,
                        false => bought
                            .get(&(key.clone(), *day))
                            .copied()
                            .unwrap_or(Micros::ZERO),
                    };
                    let own = a
                        .held(&self.late)
                        .saturating_sub(a.carried)
                        .saturating_sub(of_bought);
                    let carried = (a.carried > Micros::ZERO && until != 0)
                        .then_some((a.carried, Some(Timestamp(until))));
                    let own = (own > Micros::ZERO).then_some((own, None));
                    for (amount, until) in [own, carried].into_iter().flatten() {
                        out.push(crate::Holding {
                            key: key.clone(),
                            day: Date::from_days_since_epoch(*day),
                            amount,
                            until,
                        });
                    }
                }
            }
        }
        (out, listed.into_iter().map(|(b, _)| b).collect())
    }

    fn bought(&self) -> Vec<crate::Bought> {
        self.bought_listed().into_iter().map(|(b, _)| b).collect()
    }

    fn carry_bought(&self, bought: &[crate::Bought], now: Timestamp) -> usize {
        let mut taken = 0;
        for b in bought {
            let day = b.day.days_since_epoch();
            let (Ok(day32), true) = (i32::try_from(day), b.forget > now) else {
                continue;
            };
            if b.amount <= Micros::ZERO {
                continue;
            }
            let mut shard = self.bid_shard(b.bid);
            if shard.bids.contains_key(b.bid.0) || shard.is_charged(b.bid.0) {
                continue;
            }
            shard.hold_bought(b, day32, b.amount);
            self.change_all(&b.keys, Field::Reserved, day, b.amount, true);
            drop(shard);
            taken += 1;
        }
        taken
    }

    fn won_carried(&self, b: &crate::Bought, made: Timestamp) -> bool {
        if self.carried_until.load(Ordering::Relaxed) == 0
            || made.as_millis() >= self.carried_since.load(Ordering::Relaxed)
        {
            return false;
        }
        let day = b.day.days_since_epoch();
        let Ok(day32) = i32::try_from(day) else {
            return false;
        };
        let mut shard = self.bid_shard(b.bid);
        if shard.bids.contains_key(b.bid.0) || shard.is_charged(b.bid.0) {
            return false;
        }
        let amount = {
            let mut locked = self.lock_keys(&[&b.keys[0], &b.keys[1]]);
            let mut carried = |k: &SpendKey| locked.get(k).on(day).carried;
            let amount = b.amount.min(carried(&b.keys[0])).min(carried(&b.keys[1]));
            if amount <= Micros::ZERO {
                return false;
            }
            for k in &b.keys {
                let c = locked.get(k);
                c.change(Field::Carried, day, amount, false);
                c.change(Field::Reserved, day, amount, true);
            }
            amount
        };
        shard.hold_bought(b, day32, amount);
        true
    }

    fn frequency(&self, now: Timestamp) -> Option<crate::frequency::Windows> {
        let key = *self.window_key.get_or_init(random_key);
        let mut windows = Vec::new();
        for i in 0..FREQ_SHARDS {
            let shard = self.windows.lock(i);
            windows.extend(shard.iter().filter_map(|(k, w)| {
                let mut w = w.clone();
                w.advance(now);
                (!w.passed(now) && w.total() > 0).then_some((*k, w))
            }));
        }
        Some(crate::frequency::Windows { key, windows })
    }

    fn frequency_windows_held(&self) -> usize {
        (0..FREQ_SHARDS).map(|i| self.windows.lock(i).len()).sum()
    }

    fn take_frequency(&self, saved: crate::frequency::Windows, now: Timestamp) -> usize {
        // Keys hashed under another key already count here: the saved ones
        // could not be found by their users.
        if *self.window_key.get_or_init(|| saved.key) != saved.key {
            return 0;
        }
        let mut taken = 0;
        for (k, w) in saved.windows {
            if w.passed(now) {
                continue;
            }
            let mut shard = self.windows.lock(self.windows.index(k));
            if shard.len() >= self.max_windows_per_shard() {
                continue;
            }
            // One counted here since is newer than the file's.
            if let std::collections::hash_map::Entry::Vacant(e) = shard.entry(k) {
                e.insert(w);
                taken += 1;
            }
        }
        taken
    }

    fn carry(&self, holdings: &[crate::Holding], now: Timestamp) {
        let Some(until) = holdings.iter().filter_map(|h| h.until).max() else {
            return;
        };
        self.carried_since.store(now.as_millis(), Ordering::Relaxed);
        for h in holdings {
            let mut shard = self.counters.lock(self.counters.index(&h.key));
            shard.entry(h.key.clone()).or_default().change(
                Field::Carried,
                h.day.days_since_epoch(),
                h.amount,
                true,
            );
        }
        self.carried_until
            .fetch_max(until.as_millis(), Ordering::Relaxed);
    }

    fn late_share_ppm(&self) -> u32 {
        self.late.share.ppm()
    }

    fn restore(&self, charge: &Charge, _now: Timestamp) {
        // Kept whatever the clock says now: the expiry pass forgets it in
        // its time, and a clock that starts ahead must not make a charged
        // bid chargeable again once it is set right. Ids already forgotten
        // when they were written (the old journal format) are not kept.
        let mut shard = self.bid_shard(charge.bid);
        if charge.forget.as_millis() > i64::MIN
            && !shard.insert_charged(charge.bid.0, charge.forget.as_millis())
        {
            return;
        }
        drop(shard);
        let day = charge.day.days_since_epoch();
        let mut locked = self.lock_keys(&[&charge.keys[0], &charge.keys[1]]);
        for k in &charge.keys {
            let c = locked.get(k);
            c.change(Field::Spent, day, charge.billed, true);
            c.change(Field::Over, day, charge.over_delivery, true);
        }
        if let Some(kind) = charge.kind {
            locked.get(&charge.keys[0]).kind = Some(kind);
        }
        if charge.late {
            // Whether it came past its horizon is not journaled, and most
            // late wins come before it: counted there, each restart raised
            // the share past the horizon by every late win since the
            // checkpoint (review). The share past it is the checkpoint's;
            // a win past the horizon since then is not taken back from its
            // not-won count, which the next outcomes outweigh.
            self.late.share.restore(1, 0);
        }
    }

    fn import(&self, item: Durable, _now: Timestamp) {
        match item {
            Durable::Spend {
                key,
                lifetime,
                days,
                kind,
            } => {
                let mut locked = self.lock_keys(&[&key]);
                let c = locked.get(&key);
                c.total.spent = c.total.spent.saturating_add(lifetime);
                for (day, spent, over) in days {
                    // Only the day's amount: the total came above.
                    c.change(Field::Spent, day, spent, true);
                    c.total.spent = c.total.spent.saturating_sub(spent);
                    c.change(Field::Over, day, over, true);
                }
                if kind.is_some() {
                    c.kind = kind;
                }
            }
            // Kept whatever the clock says now (see `restore`).
            Durable::Charged { bid, forget } => {
                self.bid_shard(bid)
                    .insert_charged(bid.0, forget.as_millis());
            }
            Durable::Late { won, not_won, past } => {
                self.late.share.restore(won, not_won);
                if let Some((won, not_won)) = past {
                    self.late.past.restore(won, not_won);
                }
            }
            Durable::Seen(t) => {
                self.seen.fetch_max(t.as_millis(), Ordering::Relaxed);
            }
        }
    }

    fn export(&self, now: Timestamp, out: &mut dyn FnMut(Durable)) {
        let oldest = now.date().days_since_epoch() - self.options.keep_days;
        for i in 0..KEY_SHARDS {
            let shard = self.counters.lock(i);
            for (key, c) in shard.iter() {
                if c.total.spent == Micros::ZERO && c.kind.is_none() {
                    continue;
                }
                out(Durable::Spend {
                    key: key.clone(),
                    lifetime: c.total.spent,
                    days: c
                        .days
                        .iter()
                        .filter(|(d, a)| {
                            *d >= oldest && (a.spent > Micros::ZERO || a.over > Micros::ZERO)
                        })
                        .map(|(d, a)| (*d, a.spent, a.over))
                        .collect(),
                    kind: c.kind,
                });
            }
        }
        // Forgotten up to the latest time seen, not only up to now.
        let now_ms = now.as_millis().max(self.seen.load(Ordering::Relaxed));
        for shard in &self.bids {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            for (span, set) in &shard.charged {
                let end = (span + 1) * CHARGED_SPAN_MS;
                if end <= now_ms {
                    continue;
                }
                // The span's last millisecond: a duplicate is known a little
                // longer, never shorter, and restored into the same span
                // (its end would be the next span's, and each checkpoint
                // and restart would keep the id a span longer).
                let forget = end - 1;
                for &b in set {
                    out(Durable::Charged {
                        bid: BidKey(b),
                        forget: Timestamp(forget),
                    });
                }
            }
        }
        let (won, not_won) = self.late.share.outcomes();
        out(Durable::Late {
            won,
            not_won,
            past: Some(self.late.past.outcomes()),
        });
        out(Durable::Seen(Timestamp(now_ms)));
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::{Cap, Limit};
    use std::sync::TryLockError;

    crate::conformance_tests!(|| -> std::sync::Arc<dyn crate::Ledger> {
        std::sync::Arc::new(super::MemoryLedger::default())
    });

    /// Line item `li` capped by `cap`, order `o` uncapped: the limits of
    /// [`plain_hold`] and [`plain_win`].
    fn plain_limits<'k>(li: &'k SpendKey, o: &'k SpendKey, cap: Cap) -> [Limit<'k>; 2] {
        [
            Limit { key: li, cap },
            Limit {
                key: o,
                cap: Cap::None,
            },
        ]
    }

    /// A hold of 1,000 micros on `day` under line item `li` (capped by
    /// `cap`) and order `o` (uncapped), without a frequency cap, ending
    /// `ttl_ms` after `now` and forgotten a day after it.
    fn plain_hold<'k>(
        bid: u64,
        day: Date,
        (li, o): (&'k SpendKey, &'k SpendKey),
        cap: Cap,
        now: Timestamp,
        ttl_ms: i64,
    ) -> Hold<'k> {
        Hold {
            bid: BidKey(bid),
            day,
            cost: Micros(1_000),
            limits: plain_limits(li, o, cap),
            frequency: None,
            expires: Timestamp(now.as_millis() + ttl_ms),
            forget: Timestamp(now.as_millis() + 86_400_000),
        }
    }

    /// A [`plain_hold`] uncapped, for a millisecond, counted in `user`'s
    /// frequency window of an hour under a cap of `cap`.
    pub(crate) fn capped_hold<'k>(
        bid: u64,
        keys: (&'k SpendKey, &'k SpendKey),
        user: &'k str,
        cap: u32,
        now: Timestamp,
    ) -> Hold<'k> {
        Hold {
            frequency: Some(crate::FrequencyHold {
                user,
                cap,
                window_ms: 3_600_000,
            }),
            ..plain_hold(bid, now.date(), keys, Cap::None, now, 1)
        }
    }

    /// The win of a 1,000-micro bid on `day` under line item `li` (capped
    /// by `cap`) and order `o` (uncapped), a duplicate until `forget`.
    fn plain_win<'k>(
        bid: u64,
        day: Date,
        (li, o): (&'k SpendKey, &'k SpendKey),
        cap: Cap,
        forget: Timestamp,
    ) -> Win<'k> {
        Win {
            bid: BidKey(bid),
            day,
            cost: Micros(1_000),
            limits: plain_limits(li, o, cap),
            forget,
            made: Timestamp(0),
            tags: crate::Tags::default(),
        }
    }

    /// What one process held, the next holds until the carried holds'
    /// time is up: the earlier process's bids can still be won. Its bids
    /// are not known here, so the amounts are held in full, by key and
    /// day, and go at once when the expiry pass sees that time.
    #[test]
    fn holds_carried_over_a_restart_are_held_until_their_time() {
        let (li, o) = (SpendKey::line_item("li"), SpendKey::order("o"));
        let now = Timestamp(1_790_000_000_000);
        let day = now.date();
        let cap = Cap::Daily(Micros(3_000));
        let before = MemoryLedger::default();
        for bid in 0..2 {
            before
                .reserve(&plain_hold(bid, day, (&li, &o), cap, now, 60_000), now)
                .unwrap();
        }
        let mut held = before.holds();
        let mut held_li: Vec<_> = held.iter().filter(|h| h.key == li).collect();
        assert_eq!(held_li.len(), 1, "{held:?}");
        let h = held_li.pop().unwrap();
        assert_eq!((h.day, h.amount, h.until), (day, Micros(2_000), None));

        let after = MemoryLedger::default();
        let until = Timestamp(now.as_millis() + 65_000);
        for h in &mut held {
            h.until = Some(until);
        }
        after.carry(&held, now);
        assert_eq!(after.spent(&li, day).held_today, Micros(2_000));
        assert_eq!(after.spent(&o, day).held, Micros(2_000));
        // Room for one bid more, as before the restart.
        after
            .reserve(&plain_hold(10, day, (&li, &o), cap, now, 60_000), now)
            .unwrap();
        assert_eq!(
            after.reserve(&plain_hold(11, day, (&li, &o), cap, now, 60_000), now),
            Err(Refusal::Budget)
        );
        // A restart again meanwhile carries them on with their time, and
        // the new bid's hold as this process's own.
        let again = after.holds();
        let of_li = |until| {
            again
                .iter()
                .find(|h| h.key == li && h.until == until)
                .map(|h| h.amount)
        };
        assert_eq!(of_li(Some(until)), Some(Micros(2_000)), "{again:?}");
        assert_eq!(of_li(None), Some(Micros(1_000)), "{again:?}");
        // A win of a bid of the process before (unknown here) takes its
        // cost off what is carried; put back if its record is not written.
        let charge = after
            .begin_charge(&plain_win(20, day, (&li, &o), cap, until))
            .unwrap();
        assert_eq!(
            charge.prior,
            Prior::Carried {
                amount: Micros(1_000),
                day: day.days_since_epoch()
            }
        );
        after.abort(&charge);
        assert_eq!(after.spent(&li, day).held_today, Micros(3_000));
        let charge = after
            .begin_charge(&plain_win(20, day, (&li, &o), cap, until))
            .unwrap();
        after.commit(&charge);
        // One this process made (and no longer knows) takes nothing off.
        let mut mine = plain_win(21, day, (&li, &o), cap, until);
        mine.made = now;
        let c = after.begin_charge(&mine).unwrap();
        assert_eq!(c.prior, Prior::None);
        after.abort(&c);
        assert_eq!(after.spent(&li, day).today, Micros(1_000));
        assert_eq!(
            after.spent(&li, day).held_today,
            Micros(2_000),
            "1,000 carried, 1,000 own"
        );
        // Their time up, the expiry pass lets them go.
        after.expire(Timestamp(until.as_millis() - 1));
        assert_eq!(after.spent(&li, day).held_today, Micros(2_000));
        after.release(BidKey(10));
        after.expire(until);
        assert_eq!(after.spent(&li, day).held_today, Micros::ZERO);
        assert_eq!(after.holds(), Vec::new());
    }

    /// A bid won and not yet billed (an exchange that bills on its billing
    /// notice) holds its cost until charged or until its notices expire: a
    /// restart must too. Carried by key and day for the reservation window
    /// only, its budget came back after a restart, the line item bought
    /// the day's budget again and its billing notice was charged as
    /// over-delivery (probe finding). It is written one by one and taken on
    /// as a bid won here; the bids only in flight go when they can no longer
    /// be won, as before. Through the file, as a restart reads it.
    #[test]
    fn bought_bids_stay_held_over_a_restart_until_charged_or_expired() {
        let (li, o) = (SpendKey::line_item("li"), SpendKey::order("o"));
        let now = Timestamp(1_790_000_000_000);
        let day = now.date();
        let cap = Cap::Daily(Micros(3_000));
        let forget = Timestamp(now.as_millis() + 86_400_000);
        let before = MemoryLedger::default();
        // Bid 0 won (its billing notice to come), bid 1 in flight.
        for bid in 0..2 {
            before
                .reserve(&plain_hold(bid, day, (&li, &o), cap, now, 2_000), now)
                .unwrap();
        }
        assert!(before.won(BidKey(0)));
        assert!(before.won(BidKey(0)), "a second win notice changes nothing");
        let bought = before.bought();
        assert_eq!(bought.len(), 1, "{bought:?}");
        assert_eq!(
            (bought[0].bid, bought[0].amount, bought[0].forget),
            (BidKey(0), Micros(1_000), forget)
        );
        let held = before.holds();
        let li_held: Vec<_> = held.iter().filter(|h| h.key == li).collect();
        assert_eq!(li_held.len(), 1, "{held:?}");
        assert_eq!((li_held[0].amount, li_held[0].until), (Micros(1_000), None));
        let dir = std::env::temp_dir().join(format!("bought-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let window = Timestamp(now.as_millis() + 362_000);
        crate::carried::save(&dir, &held, &bought, window).unwrap();

        let after = MemoryLedger::default();
        let carried = crate::carried::restore(&dir, &after, now).unwrap();
        assert_eq!((carried.holdings, carried.bought), (2, 1));
        assert_eq!(after.spent(&li, day).held_today, Micros(2_000));
        // Past the window, the bought bid still holds.
        after.expire(Timestamp(window.as_millis() + 1));
        assert_eq!(after.spent(&li, day).held_today, Micros(1_000));
        assert_eq!(after.spent(&o, day).held, Micros(1_000));
        assert_eq!(after.release(BidKey(0)), Release::AlreadyWon);
        // Another old bid charged from what was carried for the window
        // does not take the bought bid's hold.
        let late = after
            .begin_charge(&plain_win(1, day, (&li, &o), cap, forget))
            .unwrap();
        after.commit(&late);
        assert_eq!(after.spent(&li, day).today, Micros(1_000));
        assert_eq!(after.spent(&li, day).held_today, Micros(1_000));
        after
            .reserve(&plain_hold(10, day, (&li, &o), cap, now, 60_000), now)
            .unwrap();
        assert_eq!(
            after.reserve(&plain_hold(11, day, (&li, &o), cap, now, 60_000), now),
            Err(Refusal::Budget),
            "the bought impression's cost is not spent again"
        );
        // A restart again carries it on, one by one.
        assert_eq!(after.bought(), bought);
        // Its billing notice charges it, as a bid won here.
        let charge = after
            .begin_charge(&plain_win(0, day, (&li, &o), cap, forget))
            .unwrap();
        assert!(
            matches!(charge.prior, Prior::Reserved { .. }),
            "{:?}",
            charge.prior
        );
        after.commit(&charge);
        assert_eq!(after.spent(&li, day).today, Micros(2_000));
        assert_eq!(after.spent(&li, day).held_today, Micros(1_000), "bid 10");
        assert_eq!(after.bought(), Vec::new());
        // Not billed, it goes when its notices expire.
        let unbilled = MemoryLedger::default();
        crate::carried::restore(&dir, &unbilled, now).unwrap();
        unbilled.expire(Timestamp(forget.as_millis() - 1));
        assert_eq!(unbilled.spent(&li, day).held_today, Micros(1_000));
        unbilled.expire(forget);
        assert_eq!(unbilled.spent(&li, day).held_today, Micros::ZERO);
        assert_eq!(
            (unbilled.holds(), unbilled.bought()),
            (Vec::new(), Vec::new())
        );
        // Nor is it taken on once its notices expired.
        let later = MemoryLedger::default();
        assert_eq!(
            crate::carried::restore(&dir, &later, forget)
                .unwrap()
                .bought,
            0
        );
        let _ = std::fs::remove_dir_all(&dir);

        // One being charged holds its billed amount, not its bid: the bids
        // in flight beside it are written whole.
        let charging = MemoryLedger::default();
        for bid in 20..22 {
            charging
                .reserve(&plain_hold(bid, day, (&li, &o), cap, now, 2_000), now)
                .unwrap();
        }
        assert!(charging.won(BidKey(20)));
        let mut w = plain_win(20, day, (&li, &o), cap, forget);
        w.cost = Micros(400);
        let _c = charging.begin_charge(&w).unwrap();
        let (held, listed) = charging.holds_and_bought();
        let li_held: Micros = held
            .iter()
            .filter(|h| h.key == li)
            .map(|h| h.amount)
            .fold(Micros::ZERO, Micros::saturating_add);
        assert_eq!(
            li_held,
            Micros(1_400),
            "bid 21 whole, bid 20's 400 being charged"
        );
        assert_eq!(listed.len(), 1, "still listed, should its charge fail");

        // Won while its charge was being written, which then failed: bought.
        let aborted = MemoryLedger::default();
        aborted
            .reserve(&plain_hold(5, day, (&li, &o), cap, now, 2_000), now)
            .unwrap();
        let c = aborted
            .begin_charge(&plain_win(5, day, (&li, &o), cap, forget))
            .unwrap();
        assert!(aborted.won(BidKey(5)));
        aborted.abort(&c);
        assert_eq!(aborted.bought().len(), 1);
        // In the process that won it, a charge ends it.
        let charge = before
            .begin_charge(&plain_win(0, day, (&li, &o), cap, forget))
            .unwrap();
        before.commit(&charge);
        assert_eq!(before.bought(), Vec::new());
    }

    /// A bid in flight when the process before stopped, won after the
    /// restart on an exchange that bills later: its cost was carried for
    /// the reservation window only. Its win notice moves it from the pool
    /// to a bid held as bought (review finding), which its billing charges.
    #[test]
    fn a_bid_of_the_process_before_won_after_the_restart_is_held_as_bought() {
        let (li, o) = (SpendKey::line_item("li"), SpendKey::order("o"));
        let now = Timestamp(1_790_000_000_000);
        let day = now.date();
        let cap = Cap::Daily(Micros(2_000));
        let forget = Timestamp(now.as_millis() + 86_400_000);
        let window = Timestamp(now.as_millis() + 362_000);
        let after = MemoryLedger::default();
        let pool = |key: &SpendKey| crate::Holding {
            key: key.clone(),
            day,
            amount: Micros(2_000),
            until: Some(window),
        };
        after.carry(&[pool(&li), pool(&o)], now);
        let bought = |bid: u64| crate::Bought {
            bid: BidKey(bid),
            keys: [li.clone(), o.clone()],
            day,
            amount: Micros(1_000),
            forget,
        };
        // Made by this process: nothing carried is its.
        assert!(!after.won_carried(&bought(1), now));
        assert!(after.won_carried(&bought(1), Timestamp(now.as_millis() - 1)));
        assert!(!after.won_carried(&bought(1), Timestamp(0)), "once");
        assert_eq!(after.spent(&li, day).held_today, Micros(2_000));
        after.expire(Timestamp(window.as_millis() + 1));
        assert_eq!(after.spent(&li, day).held_today, Micros(1_000));
        assert_eq!(after.bought(), vec![bought(1)]);
        assert_eq!(after.release(BidKey(1)), Release::AlreadyWon);
        assert_eq!(
            after.reserve(&plain_hold(10, day, (&li, &o), cap, window, 60_000), window),
            Ok(())
        );
        assert_eq!(
            after.reserve(&plain_hold(11, day, (&li, &o), cap, window, 60_000), window),
            Err(Refusal::Budget)
        );
        let charge = after
            .begin_charge(&plain_win(1, day, (&li, &o), cap, forget))
            .unwrap();
        assert!(
            matches!(charge.prior, Prior::Reserved { .. }),
            "{:?}",
            charge.prior
        );
        after.commit(&charge);
        assert_eq!(after.spent(&li, day).today, Micros(1_000));
        // Nothing carried left: nothing to move.
        assert!(!after.won_carried(&bought(2), Timestamp(0)));
    }

    /// Bids the table tracks, over every shard.
    fn tracked(l: &MemoryLedger) -> usize {
        l.bids.iter().map(|s| s.lock().unwrap().bids.len()).sum()
    }

    /// What the bids of `day` under `key` hold, counted from the table:
    /// (reserved, lingering), in micros.
    fn table_holds(l: &MemoryLedger, key: &SpendKey, day: Date) -> (i64, i64) {
        let (mut reserved, mut lingering) = (0, 0);
        for shard in &l.bids {
            for (_, bid) in shard.lock().unwrap().bids.iter() {
                if bid.day() != day.days_since_epoch() || !bid.keys.iter().any(|k| k == key) {
                    continue;
                }
                match bid.state {
                    State::Reserved => reserved += bid.amount.0,
                    State::Lingering { .. } => lingering += bid.amount.0,
                    _ => {}
                }
            }
        }
        (reserved, lingering)
    }

    /// A bid in flight stays within a cache line: a minute of bids at
    /// full rate is millions of them (see [`Bid`]).
    #[test]
    fn a_bid_in_flight_fits_a_cache_line() {
        assert!(
            std::mem::size_of::<Bid>() <= 64,
            "{}",
            std::mem::size_of::<Bid>()
        );
    }

    /// A reservation on a day past what a bid keeps (an `i32` of days) is
    /// refused and holds nothing: its hold could not come off that day.
    #[test]
    fn a_day_past_an_i32_is_not_held() {
        let l = MemoryLedger::default();
        let (li, o) = (SpendKey::line_item("li"), SpendKey::order("o"));
        let Some(far) = Date::from_ymd(6_000_000, 1, 1) else {
            panic!("a date of year 6,000,000");
        };
        let now = Timestamp(1_795_521_600_000);
        let hold = plain_hold(1, far, (&li, &o), Cap::None, now, 1_000);
        assert_eq!(l.reserve(&hold, now), Err(Refusal::Unavailable));
        assert_eq!(l.spent(&li, far).held_today, Micros::ZERO);
        assert_eq!(l.spent(&li, far).held, Micros::ZERO);
    }

    /// Days past what an `i32` holds saturate rather than wrap.
    #[test]
    fn days_saturate() {
        assert_eq!(day32(20_000), 20_000);
        assert_eq!(day32(-3), -3);
        assert_eq!(day32(i64::MAX), i32::MAX);
        assert_eq!(day32(i64::MIN), i32::MIN);
    }

    /// A charged id is written to a checkpoint with its span's last
    /// millisecond: restored and written again any number of times, it is
    /// forgotten when its span ends, not a span later each time.
    #[test]
    fn checkpoints_keep_a_charged_ids_span() {
        let now = Timestamp(1_795_521_600_000);
        let forget = now.as_millis() + 24 * 3_600_000 + 1;
        let l = MemoryLedger::default();
        l.import(
            Durable::Charged {
                bid: BidKey(7),
                forget: Timestamp(forget),
            },
            now,
        );
        let mut written = Vec::new();
        let mut l = l;
        for _ in 0..4 {
            let mut items = Vec::new();
            l.export(now, &mut |i| items.push(i));
            let back = MemoryLedger::default();
            for i in items {
                if let Durable::Charged { bid, forget } = &i {
                    assert_eq!(*bid, BidKey(7));
                    written.push(forget.as_millis());
                }
                back.import(i, now);
            }
            l = back;
        }
        assert_eq!(written.len(), 4);
        assert!(written.iter().all(|&w| w == written[0]), "{written:?}");
        assert!(written[0] >= forget && written[0] < forget + CHARGED_SPAN_MS);
        // Known until then, forgotten after.
        l.expire(Timestamp(written[0]));
        assert!(l.is_charged(BidKey(7)));
        l.expire(Timestamp(written[0] + 1));
        assert!(!l.is_charged(BidKey(7)));
    }

    /// A full table of bids refuses new reservations (and holds nothing
    /// for them) until bids leave it; charges of bids it holds go on.
    #[test]
    fn bids_in_flight_are_bounded() {
        let l = MemoryLedger::new(Options {
            max_bids: 640,
            max_lingering: 0,
            ..Options::default()
        });
        let (li, o) = (SpendKey::line_item("li"), SpendKey::order("o"));
        let now = Timestamp(1_795_521_600_000);
        let daily = Cap::Daily(Micros::from_units(1_000));
        let hold = |bid: u64| plain_hold(bid, now.date(), (&li, &o), daily, now, 1_000);
        // Consecutive keys fill the 64 shards in turn: 10 each.
        for bid in 0..640u64 {
            l.reserve(&hold(bid), now).expect("room");
        }
        for bid in 640..1_000u64 {
            assert_eq!(l.reserve(&hold(bid), now), Err(Refusal::Unavailable));
        }
        let held = l.spent(&li, now.date());
        assert_eq!(held.held_today, Micros(640 * 1_000));
        // A loss gives its money back at once, but the bid is remembered
        // (a win may still follow it) until its reservation would have
        // ended: its place stays taken until then.
        assert!(matches!(l.release(BidKey(3)), Release::Released));
        assert_eq!(l.spent(&li, now.date()).held_today, Micros(639 * 1_000));
        assert_eq!(
            l.reserve(&hold(64 * 20 + 3), now),
            Err(Refusal::Unavailable)
        );
        // Expired: each shard's one lingering bid (its share of the book
        // for those) stays in the table, the rest are forgotten.
        l.expire(Timestamp(now.as_millis() + 1_000));
        for bid in 2_000..2_000 + 64 * 9 {
            l.reserve(&hold(bid), now).expect("room after expiry");
        }
        assert_eq!(l.reserve(&hold(5_000), now), Err(Refusal::Unavailable));
    }

    /// A bid in the table's slab is one line's worth: the prefetch asks
    /// for the line it starts in and the next (`BidTable::prefetch`). A
    /// bid grown past 64 bytes needs that looked at again.
    #[test]
    fn a_bid_fills_a_line() {
        assert_eq!(std::mem::size_of::<Option<Bid>>(), 64);
    }

    /// An expired bid charged by another replica is a late win of this
    /// one's all the same: the share learns it (operator probe: with
    /// notices spread over replicas it learned only the wins that came
    /// back here, and held expired bids at too little).
    #[test]
    fn a_late_win_charged_elsewhere_counts_in_the_share() {
        let l = MemoryLedger::default();
        let (li, o) = (SpendKey::line_item("li"), SpendKey::order("o"));
        let now = Timestamp(1_795_521_600_000);
        let daily = Cap::Daily(Micros::from_units(1_000));
        for bid in 0..10u64 {
            let hold = plain_hold(bid, now.date(), (&li, &o), daily, now, 1);
            l.reserve(&hold, now).expect("room");
        }
        assert_eq!(l.expire(Timestamp(now.as_millis() + 1)).reservations, 10);
        for bid in 0..5u64 {
            assert!(matches!(l.release(BidKey(bid)), Release::Released));
        }
        for bid in 5..10u64 {
            assert!(l.settled_elsewhere(BidKey(bid)).is_some());
        }
        // 5 won of 10, with one imagined win: 6 of 11, rounded up.
        assert_eq!(l.late_share_ppm(), 545_455);
    }

    #[test]
    fn expired_bids_held_are_bounded() {
        let l = MemoryLedger::new(Options {
            max_lingering: 64,
            ..Options::default()
        });
        let (li, o) = (SpendKey::line_item("li"), SpendKey::order("o"));
        let now = Timestamp(1_795_521_600_000);
        for bid in 0..10_000u64 {
            let daily = Cap::Daily(Micros::from_units(1_000));
            let hold = plain_hold(bid, now.date(), (&li, &o), daily, now, 1);
            l.reserve(&hold, now).expect("room");
        }
        let e = l.expire(Timestamp(now.as_millis() + 1));
        assert_eq!(e.reservations, 10_000);
        let tracked = tracked(&l);
        assert!(tracked <= 64 * 2, "{tracked}");
        // What is no longer tracked is no longer held.
        let held = l.spent(&li, now.date()).held_today;
        assert_eq!(held, Micros(tracked as i64 * 1_000));
        assert_eq!(l.late_share_ppm(), 1_000_000, "drops are not outcomes");
    }

    /// Won bids held whole past their reservation (their billing notice to
    /// come) count under the same bound as lingering ones: an exchange
    /// whose wins are often never billed cannot grow the table without
    /// end (review finding). Past the bound they are let go, as lingering
    /// bids are, and hold nothing.
    #[test]
    fn won_bids_held_past_their_reservation_are_bounded() {
        let l = MemoryLedger::new(Options {
            max_lingering: 64,
            ..Options::default()
        });
        let (li, o) = (SpendKey::line_item("li"), SpendKey::order("o"));
        let now = Timestamp(1_795_521_600_000);
        let daily = || Cap::Daily(Micros::from_units(1_000));
        for bid in 0..10_000u64 {
            let hold = plain_hold(bid, now.date(), (&li, &o), daily(), now, 1);
            l.reserve(&hold, now).expect("room");
            assert!(l.won(BidKey(bid)));
        }
        l.expire(Timestamp(now.as_millis() + 1));
        let tracked = tracked(&l);
        assert!((1..=64 * 2).contains(&tracked), "{tracked}");
        let held = l.spent(&li, now.date()).held_today;
        assert_eq!(held, Micros(tracked as i64 * 1_000), "each held whole");
        // Charged, a kept bid leaves room under the bound for another.
        let kept = (0..10_000u64)
            .find(|&b| l.outcome(BidKey(b)) == crate::Outcome::Won)
            .expect("one kept");
        let counted = |l: &MemoryLedger| -> usize {
            l.bids.iter().map(|s| s.lock().unwrap().lingering).sum()
        };
        assert_eq!(counted(&l), tracked);
        let forget = Timestamp(now.as_millis() + 86_400_000);
        let c = l
            .begin_charge(&plain_win(kept, now.date(), (&li, &o), daily(), forget))
            .expect("charged");
        l.commit(&c);
        assert_eq!(
            (super::tests::tracked(&l), counted(&l)),
            (tracked - 1, tracked - 1)
        );
    }

    /// A won bid let go at the end of its reservation because the bound is
    /// full still counts under its frequency cap: its impression was bought
    /// (review finding: the user was shown the line item again).
    #[test]
    fn a_won_bid_let_go_at_the_bound_keeps_its_frequency_count() {
        let l = MemoryLedger::new(Options {
            max_lingering: 64,
            ..Options::default()
        });
        let (li, o) = (SpendKey::line_item("li"), SpendKey::order("o"));
        let now = Timestamp(1_795_521_600_000);
        let users: Vec<String> = (0..1_000).map(|u| format!("u{u}")).collect();
        for (bid, user) in users.iter().enumerate() {
            l.reserve(&capped_hold(bid as u64, (&li, &o), user, 1, now), now)
                .expect("room");
            assert!(l.won(BidKey(bid as u64)));
        }
        l.expire(Timestamp(now.as_millis() + 1_000));
        assert!(tracked(&l) < 1_000, "some let go");
        let later = Timestamp(now.as_millis() + 1_000);
        for user in &users {
            assert!(
                !l.frequency_allows(user, &li, 1, 3_600_000, later),
                "{user}"
            );
        }
    }

    /// A win notice that came after the reservation ended makes its charge
    /// a late one, whichever notice charges it: the journal replays it as
    /// one, and the late-win share survives a restart (review finding).
    #[test]
    fn a_win_notice_after_the_reservation_makes_a_late_charge() {
        let l = MemoryLedger::default();
        let (li, o) = (SpendKey::line_item("li"), SpendKey::order("o"));
        let now = Timestamp(1_795_521_600_000);
        let daily = Cap::Daily(Micros::from_units(1_000));
        l.reserve(&plain_hold(1, now.date(), (&li, &o), daily, now, 1), now)
            .expect("room");
        l.expire(Timestamp(now.as_millis() + 120_000));
        assert!(l.won(BidKey(1)));
        let forget = Timestamp(now.as_millis() + 86_400_000);
        let c = l
            .begin_charge(&plain_win(1, now.date(), (&li, &o), daily, forget))
            .expect("charged");
        assert!(c.late);
        l.commit(&c);
    }

    /// The expiry pass sums its counter changes per line item, order and
    /// day (`ExpirySums`) across more keys than it holds at once: every
    /// key ends holding what its own bids still hold, as when each bid's
    /// change was made on its own.
    #[test]
    fn expiry_sums_leave_each_key_what_its_bids_hold() {
        let l = MemoryLedger::new(Options {
            max_lingering: 640,
            ..Options::default()
        });
        let items: Vec<SpendKey> = (0..40)
            .map(|i| SpendKey::line_item(&format!("li-{i}")))
            .collect();
        let orders: Vec<SpendKey> = (0..3).map(|i| SpendKey::order(&format!("o-{i}"))).collect();
        let now = Timestamp(1_795_521_600_000);
        let days = [
            now.date(),
            Date::from_days_since_epoch(now.date().days_since_epoch() + 1),
        ];
        for n in 0..4_000usize {
            let (li, o, day) = (&items[n % 40], &orders[n % 3], days[n % 2]);
            // Spread as minted keys are: bids of many keys in each shard,
            // more than the sums hold at once.
            let bid = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
            let hold = plain_hold(bid, day, (li, o), Cap::None, now, 1);
            l.reserve(&hold, now).expect("room");
        }
        let e = l.expire(Timestamp(now.as_millis() + 1));
        assert_eq!(e.reservations, 4_000);
        let mut total = 0;
        for key in items.iter().chain(&orders) {
            for day in days {
                let held = l.spent(key, day).held_today;
                let (_, lingering) = table_holds(&l, key, day);
                assert_eq!(held, Micros(lingering), "{key:?} {day:?}");
                total += held.0;
            }
        }
        // The cap kept some bids lingering (the late share holds them all
        // until outcomes are learned), and dropped the rest.
        assert!(total > 0 && total < 2 * 4_000 * 1_000, "{total}");
        // Past their notices' time every bid is forgotten: nothing held.
        l.expire(Timestamp(now.as_millis() + 86_400_001));
        for key in items.iter().chain(&orders) {
            for day in days {
                assert_eq!(l.spent(key, day).held, Micros::ZERO, "{key:?} {day:?}");
            }
        }
    }

    /// An expiry pass in steps, as the server runs it, leaves what one
    /// pass leaves, and no step acts on more than [`EXPIRY_STEP`] bids.
    #[test]
    fn expiry_in_steps_is_one_pass() {
        let make = || {
            MemoryLedger::new(Options {
                max_lingering: 640,
                ..Options::default()
            })
        };
        let (whole, stepped) = (make(), make());
        let items: Vec<SpendKey> = (0..5)
            .map(|i| SpendKey::line_item(&format!("li-{i}")))
            .collect();
        let o = SpendKey::order("o");
        let now = Timestamp(1_795_521_600_000);
        for n in 0..6_000u64 {
            // Half in shard 0, more than a step takes; half spread.
            let bid = match n < 3_000 {
                true => n * BID_SHARDS as u64,
                false => n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11,
            };
            let li = &items[n as usize % items.len()];
            for l in [&whole, &stepped] {
                let hold = plain_hold(bid, now.date(), (li, &o), Cap::None, now, 1);
                l.reserve(&hold, now).expect("room");
            }
        }
        let t = Timestamp(now.as_millis() + 1);
        let one = whole.expire(t);
        let (mut reservations, mut forgotten, mut calls) = (0, 0, vec![0; stepped.expiry_steps()]);
        for (step, calls) in calls.iter_mut().enumerate() {
            loop {
                let (e, done) = stepped.expire_step(t, step);
                assert!(e.reservations <= EXPIRY_STEP, "{}", e.reservations);
                reservations += e.reservations;
                forgotten += e.forgotten;
                *calls += 1;
                if done {
                    break;
                }
            }
        }
        assert_eq!((reservations, forgotten), (one.reservations, one.forgotten));
        assert_eq!(one.reservations, 6_000);
        assert!(calls[0] >= 3_000 / EXPIRY_STEP, "{calls:?}");
        for key in items.iter().chain([&o]) {
            assert_eq!(whole.spent(key, now.date()), stepped.spent(key, now.date()));
        }
        assert_eq!(tracked(&whole), tracked(&stepped));
    }

    /// Win notices racing the server's expiry steps, on two threads: each
    /// win is charged once, whether its bid was still reserved or already
    /// lingering, and afterwards every key's counters say what the table's
    /// bids say. An expiry step sums its counter changes and applies them
    /// before it lets go of the shard's lock; applied after, a notice for a
    /// bid it had moved to lingering would take back what was not yet added
    /// (a subtraction stops at zero) and leave a key holding money for bids
    /// no longer held.
    #[test]
    fn wins_racing_expiry_steps_are_charged_once_and_counted_once() {
        // A few times over: the threads may not overlap in every round.
        for _ in 0..16 {
            let l = MemoryLedger::new(Options {
                max_lingering: 1 << 20,
                ..Options::default()
            });
            let items: Vec<SpendKey> = (0..4)
                .map(|i| SpendKey::line_item(&format!("li-{i}")))
                .collect();
            let o = SpendKey::order("o");
            let now = Timestamp(1_795_521_600_000);
            // Bids of each shard together, fewer than a step takes: the win
            // thread charges a shard's bids while the expiry thread works
            // through that shard, each waiting for the other at every shard.
            const PER_SHARD: u64 = 200;
            let bids: Vec<(u64, &SpendKey)> = (0..BID_SHARDS as u64 * PER_SHARD)
                .map(|n| {
                    let (shard, k) = (n / PER_SHARD, n % PER_SHARD);
                    let bid = k * BID_SHARDS as u64 + shard;
                    // The bids of li-0 and li-2 all win (even n), those of
                    // li-1 and li-3 all lose: the winners' line items hold
                    // nothing lingering but what a race puts there, so a
                    // notice that took back what a step had not yet added
                    // stops at zero and shows in their counters.
                    (bid, &items[n as usize % items.len()])
                })
                .collect();
            for &(bid, li) in &bids {
                let hold = plain_hold(bid, now.date(), (li, &o), Cap::None, now, 1);
                l.reserve(&hold, now).expect("room");
            }
            let forget = Timestamp(now.as_millis() + 86_400_000);
            let win = |bid: u64, li: &SpendKey| {
                l.begin_charge(&plain_win(bid, now.date(), (li, &o), Cap::None, forget))
            };
            let t = Timestamp(now.as_millis() + 1);
            let shard = std::sync::Barrier::new(2);
            // Failures are kept until both threads are past every shard:
            // one that panicked there would leave the other waiting.
            let mut first_wins = Vec::new();
            let stepped = std::thread::scope(|s| {
                let steps = s.spawn(|| {
                    let mut all = Ok(());
                    for step in 0..BID_SHARDS {
                        shard.wait();
                        if all.is_ok() {
                            all = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                while !l.expire_step(t, step).1 {}
                            }));
                        }
                    }
                    all
                });
                // Every other bid wins.
                for (i, bids) in bids.chunks(PER_SHARD as usize).enumerate() {
                    shard.wait();
                    // Until the step holds the shard (or is done with
                    // it): the first win then waits for the step, and
                    // comes right as it lets go.
                    for _ in 0..100_000 {
                        match l.bids[i].try_lock() {
                            Err(TryLockError::WouldBlock) => break,
                            Ok(b) if b.deadlines.peek().is_none_or(|d| d.0 .0 > t.0) => break,
                            _ => std::hint::spin_loop(),
                        }
                    }
                    for &(bid, li) in bids.iter().step_by(2) {
                        let charge = win(bid, li);
                        if let Ok(c) = &charge {
                            l.commit(c);
                        }
                        first_wins.push((bid, charge.err()));
                    }
                }
                steps.join()
            });
            assert!(matches!(stepped, Ok(Ok(()))), "an expiry step panicked");
            for (bid, refused) in first_wins {
                assert_eq!(refused, None, "a first win is charged: {bid}");
            }
            // Whatever the steps left for later.
            l.expire(t);
            for &(bid, li) in bids.iter().step_by(2) {
                assert_eq!(win(bid, li).err(), Some(NotCharged::Duplicate), "{bid}");
            }
            // Each key's counters against the bids the table holds for it.
            let day = now.date().days_since_epoch();
            for key in items.iter().chain([&o]) {
                let (reserved, lingering) = table_holds(&l, key, now.date());
                let won = bids
                    .iter()
                    .step_by(2)
                    .filter(|(_, li)| *key == o || li == &key)
                    .count() as i64;
                let counters = l.counters.lock(l.counters.index(key));
                let c = counters.get(key).expect("counted");
                let (_, a) = c.days.iter().find(|(d, _)| *d == day).expect("today");
                assert_eq!(
                    (
                        a.spent,
                        a.reserved,
                        a.charging,
                        a.lingering.saturating_add(a.lingering_past),
                    ),
                    (
                        Micros(won * 1_000),
                        Micros(reserved),
                        Micros::ZERO,
                        Micros(lingering)
                    ),
                    "{key:?}"
                );
                // Every reservation expired; the bids that did not win linger.
                let mine = bids
                    .iter()
                    .filter(|(_, li)| *key == o || li == &key)
                    .count() as i64;
                assert_eq!((reserved, lingering), (0, (mine - won) * 1_000), "{key:?}");
            }
        }
    }

    /// The expiry pass works through a shard's deadlines in batches
    /// (`BidShard::next_due`) in the order the queue alone gives, a
    /// deadline queued meanwhile included: which bids may linger when
    /// room for them runs out depends on it.
    #[test]
    fn deadlines_expire_in_order_across_batches() {
        let l = MemoryLedger::new(Options {
            // Two a shard.
            max_lingering: 2 * BID_SHARDS,
            ..Options::default()
        });
        let (li, o) = (SpendKey::line_item("li"), SpendKey::order("o"));
        let now = Timestamp(1_795_521_600_000);
        let at = |ms: i64| Timestamp(now.as_millis() + ms);
        // All in one shard, more than a few batches of them: one whose
        // notices expire just after its reservation, then bids a day long.
        let shard0 = |n: u64| n * BID_SHARDS as u64;
        let mut early = plain_hold(shard0(0), now.date(), (&li, &o), Cap::None, now, 95);
        early.forget = at(96);
        l.reserve(&early, now).expect("room");
        let later: Vec<u64> = (1..=4 * EXPIRY_BATCH as u64).map(shard0).collect();
        for (i, &bid) in later.iter().enumerate() {
            let ttl = 100 + 10 * i as i64;
            let hold = plain_hold(bid, now.date(), (&li, &o), Cap::None, now, ttl);
            l.reserve(&hold, now).expect("room");
        }
        let e = l.expire(at(100_000));
        assert_eq!(e.reservations, 1 + later.len());
        // The first lingered until its notices expired, a deadline queued
        // while its batch was worked through; that made room for the two
        // earliest of the others, and the rest were not kept.
        assert_eq!(e.forgotten, later.len() - 2 + 1);
        assert_eq!(l.release(BidKey(shard0(0))), Release::Unknown);
        assert_eq!(l.release(BidKey(later[0])), Release::Released);
        assert_eq!(l.release(BidKey(later[1])), Release::Released);
        for &bid in &later[2..] {
            assert_eq!(l.release(BidKey(bid)), Release::Unknown, "{bid}");
        }
    }

    proptest::proptest! {
        /// What `next_due` hands out is what popping the heap alone hands
        /// out, whatever each step queues (ties on the time, duplicates,
        /// deadlines due at once or earlier than the rest, or not due).
        #[test]
        fn deadlines_come_due_in_the_heaps_order(
            queued in proptest::collection::vec((0i64..40, 0u64..6), 0..300),
            steps in proptest::collection::vec(
                proptest::collection::vec((-30i64..30, 0u64..6), 0..3),
                0..600,
            ),
        ) {
            let now = 30;
            let mut shard = BidShard::default();
            let mut heap = BinaryHeap::new();
            for &d in &queued {
                shard.deadlines.push(Reverse(d));
                heap.push(Reverse(d));
            }
            let mut steps = steps.iter();
            loop {
                let expected = match heap.peek() {
                    Some(&Reverse(d)) if d.0 <= now => heap.pop().map(|Reverse(d)| d),
                    _ => None,
                };
                let got = shard.next_due(now);
                proptest::prop_assert_eq!(got, expected);
                let Some((at, _)) = got else { break };
                for &(later, b) in steps.next().map(|s| s.as_slice()).unwrap_or(&[]) {
                    shard.deadlines.push(Reverse((at + later, b)));
                    heap.push(Reverse((at + later, b)));
                }
            }
            proptest::prop_assert!(shard.drawn.is_empty());
            proptest::prop_assert_eq!(shard.deadlines.into_sorted_vec(), heap.into_sorted_vec());
        }
    }

    /// A pass that stopped part way (a panic, its lock then recovered)
    /// leaves what it drew to the next pass, which acts on it only once it
    /// is due there.
    #[test]
    fn deadlines_drawn_and_left_go_back_in_the_queue() {
        let l = MemoryLedger::default();
        let (li, o) = (SpendKey::line_item("li"), SpendKey::order("o"));
        let now = Timestamp(1_795_521_600_000);
        for n in 0..100 {
            let bid = n * BID_SHARDS as u64;
            let hold = plain_hold(bid, now.date(), (&li, &o), Cap::None, now, 10 + n as i64);
            l.reserve(&hold, now).expect("room");
        }
        let later = now.as_millis() + 1_000;
        {
            let mut shard = l.bids[0].lock().unwrap();
            assert!(shard.next_due(later).is_some());
            assert!(!shard.drawn.is_empty());
        }
        // The clock stepped back: nothing is due yet.
        assert_eq!(l.expire(now).reservations, 0);
        // The one handed out before the stop is lost with the stop, as it
        // was before deadlines were drawn; the rest expire.
        assert_eq!(l.expire(Timestamp(later)).reservations, 99);
    }

    #[test]
    fn frequency_windows_go_once_their_window_has_passed() {
        let l = MemoryLedger::default();
        let (li, o) = (SpendKey::line_item("li"), SpendKey::order("o"));
        let now = 1_795_521_600_000i64;
        for n in 0..5_000u64 {
            let user = format!("made-up-{n}");
            let hold = capped_hold(n, (&li, &o), &user, 3, Timestamp(now));
            l.reserve(&hold, Timestamp(now)).expect("room");
            // Won: the impression counts in its window.
            let win = plain_win(
                n,
                Timestamp(now).date(),
                (&li, &o),
                Cap::None,
                Timestamp(now + 2),
            );
            let c = l.begin_charge(&win).expect("chargeable");
            l.commit(&c);
        }
        // One lost: its window counts nothing, kept in memory (a late win
        // would count there) but not written for the next process, which
        // does not know the bid.
        let lost = "made-up-lost";
        let hold = capped_hold(5_000, (&li, &o), lost, 3, Timestamp(now));
        l.reserve(&hold, Timestamp(now)).expect("room");
        l.release(BidKey(5_000));
        // What the gauge shows against the bound: the lost one's window
        // too, which takes its place as the counting ones do.
        let windows = |l: &MemoryLedger| l.frequency_windows_held();
        assert_eq!(windows(&l), 5_001);
        // Within the hour they are kept; a day later, one pass per shard
        // drops them all.
        for _ in 0..FREQ_SHARDS {
            l.expire(Timestamp(now + 1_000));
        }
        assert_eq!(windows(&l), 5_001);
        assert_eq!(l.frequency(Timestamp(now + 1_000)).unwrap().len(), 5_000);
        for _ in 0..FREQ_SHARDS {
            l.expire(Timestamp(now + 86_400_000));
        }
        assert_eq!(windows(&l), 0);
        assert_eq!(
            tracked(&l),
            0,
            "released bids are gone once their deadline passed"
        );
    }

    #[test]
    fn new_frequency_windows_stop_at_the_bound_and_counted_users_still_bid() {
        let l = MemoryLedger::new(Options {
            max_windows: 64,
            ..Options::default()
        });
        let (li, o) = (SpendKey::line_item("li"), SpendKey::order("o"));
        let now = 1_795_521_600_000i64;
        let bid = |n: u64, user: &str| {
            let hold = capped_hold(n, (&li, &o), user, 1_000, Timestamp(now));
            let r = l.reserve(&hold, Timestamp(now)).map(|_| ());
            l.release(BidKey(n));
            r
        };
        let mut refused = 0;
        for n in 0..1_000u64 {
            if bid(n, &format!("made-up-{n}")) == Err(Refusal::Unavailable) {
                refused += 1;
            }
        }
        // Every one at zero (its bid lost), all held: the gauge shows the
        // table full (attack probe: it showed 0, counting only windows
        // above zero, while new users were refused).
        let windows = l.frequency_windows_held();
        // Two a shard: a thousand users fill every shard.
        assert_eq!(windows, 64);
        assert_eq!(refused, 1_000 - windows);
        // A user already counted still bids, the table full.
        let counted = (0..1_000u64)
            .find(|n| bid(10_000 + n, &format!("made-up-{n}")).is_ok())
            .expect("some user was counted");
        assert_eq!(bid(20_000, &format!("made-up-{counted}")), Ok(()));
    }

    #[test]
    fn an_aborted_charge_queues_its_deadline_again_only_when_it_passed() {
        let l = MemoryLedger::default();
        let (li, o) = (SpendKey::line_item("li"), SpendKey::order("o"));
        let now = Timestamp(1_795_521_600_000);
        let limits = [
            Limit {
                key: &li,
                cap: Cap::Daily(Micros::from_units(10)),
            },
            Limit {
                key: &o,
                cap: Cap::None,
            },
        ];
        let hold = Hold {
            bid: BidKey(7),
            day: now.date(),
            cost: Micros(1_000),
            limits: limits.clone(),
            frequency: None,
            expires: Timestamp(now.as_millis() + 1_000),
            forget: Timestamp(now.as_millis() + 86_400_000),
        };
        l.reserve(&hold, now).expect("room");
        let queued = |l: &MemoryLedger| -> usize {
            l.bids
                .iter()
                .map(|s| s.lock().unwrap().deadlines.len())
                .sum()
        };
        let win = plain_win(7, now.date(), (&li, &o), limits[0].cap, hold.forget);
        // A disk that keeps failing: retried a hundred times.
        for _ in 0..100 {
            let c = l.begin_charge(&win).expect("chargeable");
            l.abort(&c);
        }
        assert_eq!(queued(&l), 1);
        // Its deadline passes while it is being charged, then the write
        // fails: it is queued again, and expires as a reservation would.
        let c = l.begin_charge(&win).expect("chargeable");
        assert_eq!(l.expire(Timestamp(now.as_millis() + 1_000)).reservations, 0);
        l.abort(&c);
        assert_eq!(l.expire(Timestamp(now.as_millis() + 1_000)).reservations, 1);
    }
}

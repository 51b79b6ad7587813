//! Bid shading for first-price auctions.
//!
//! In a first-price auction the winner pays its bid, so bidding the full
//! value `v` of an impression gives away the whole surplus whenever a lower
//! bid would also have won. With `P(b)` the probability that a bid `b` wins,
//! the bid that maximises the expected surplus is
//!
//! ```text
//! b* = argmax over floor <= b <= v of (v - b) · P(b)
//! ```
//!
//! # The model
//!
//! `P(b)` is learned per [`CurveKey`] (exchange × [`SlotKind`]) from the
//! bidder's own outcomes, fed to [`Shader::observe`]: a win or billing
//! notice is a win; a loss notice, or a bid left unanswered past the
//! exchange's reservation TTL, is a loss. Or in two steps, with nothing
//! to remember per bid: each bid as it is sent ([`Shader::observe_bid`]),
//! then each win as it comes ([`Shader::observe_win`]); a bid with no win
//! is a loss.
//!
//! - Outcomes are counted in [`BINS`] log-spaced price bins (0.01 to 1000
//!   CPM by default, about 20% of price per bin): bids, wins, and where in
//!   the bin the bids fell. `observe` is two relaxed atomic adds after a
//!   hash-table probe; no lock, no allocation (except the first time a key
//!   is seen).
//! - [`Shader::refit`], called by the bidder about once a second off the hot
//!   path, drains those counters into per-key totals that decay
//!   exponentially with a half-life in time ([`Params::half_life_ms`],
//!   30 minutes by default; the caller passes `now_ms`, the crate reads no
//!   clock), so the curve follows the market through the day. It then fits
//!   a monotone non-decreasing curve by pool-adjacent-violators (isotonic
//!   regression weighted by the decayed bid counts) and publishes it,
//!   immutable, behind an `ArcSwap`.
//! - [`Shader::shade`] reads only that snapshot: the curve is linear in
//!   ln(price) between knots (one per populated bin, at the mean position of
//!   its bids), so the surplus is concave between knots and the search
//!   evaluates every knot between the floor and `v`, then solves for the
//!   interior maximum (Newton) in the pieces where the surplus turns from
//!   rising to falling.
//!   The bid is rounded down to whole micros, never above `v`, never under
//!   the floor.
//! - Cold start: until a key's decayed counts reach
//!   [`Params::min_observations`] outcomes and [`Params::min_wins`] wins,
//!   `shade` answers the value unchanged with [`Reason::NotEnoughData`].
//!   A key that goes quiet decays back under the threshold and returns to
//!   bidding its value rather than trusting a stale curve.
//!
//! # Limits
//!
//! - **It only sees where we bid.** Outcomes of our own bids estimate the
//!   distribution of the highest competing bid only at our bid prices.
//!   Below our lowest bid the curve is undefined (`shade` never goes
//!   there), and above our highest it is taken as flat, which understates
//!   the gain of bidding higher. Once shading starts, bids bunch below the
//!   values and the upper curve goes stale. Hence exploration:
//!   [`Shader::shade_with`] takes a uniform draw from the caller, and with
//!   probability [`Params::explore_rate`] (5%) it bids the full value (half
//!   of those draws) or a log-uniform point between half the shaded bid and
//!   the value, answered with [`Reason::Explore`]. The draw comes from the
//!   caller so that this crate stays deterministic and testable.
//! - **One curve per exchange and slot kind.** Impressions of very
//!   different worth (a premium site and a long-tail app on one exchange)
//!   share a curve; the competition for them does not. Finer keys need more
//!   data each before they leave the cold start.
//! - **Unanswered bids count as losses.** Losses (bids with no win,
//!   whether counted at the reservation TTL or as bids when sent) include
//!   bids the exchange never ran (timeouts, filtered creatives). As long as
//!   that happens alike at every price it scales `P` down uniformly, which
//!   leaves the best bid where it is but understates `p_win` and delays
//!   leaving the cold start; if it depends on the price, it biases the
//!   curve.
//! - **Bids and wins counted apart must be counted alike.** With
//!   `observe_bid` and `observe_win`, a shader that sees a different share
//!   of the wins than of the bids (replicas whose notices are balanced
//!   differently from their bid requests) scales `P` by the ratio of the
//!   two shares: down is harmless, as above; up saturates at 1 (a bin never
//!   keeps more wins than bids) and flattens the top of the curve.
//! - **No second price.** In a second-price auction the bid does not set the
//!   price; shading only loses auctions. The caller tells the auction type
//!   ([`Auction`], [`Shader::shade_auction`]), and should not feed
//!   second-price outcomes to `observe` under a first-price key.
//! - Counters are 32-bit per bin between refits: call `refit` at least
//!   every few hours at any realistic rate.
//!
//! ```
//! use shading::{CurveKey, Params, Reason, Shader, SlotKind};
//!
//! let shader = Shader::new(Params::default())?;
//! let key = CurveKey::new("example-exchange", SlotKind::Banner);
//! // Not enough data yet: the value is bid unchanged.
//! let s = shader.shade(&key, 2_500_000, 100_000);
//! assert_eq!((s.bid_micros, s.reason), (2_500_000, Reason::NotEnoughData));
//!
//! // The market: anything bid over 1.00 CPM wins.
//! for i in 0..1_000 {
//!     let bid = 200_000 + i * 3_000;
//!     shader.observe(&key, bid, bid > 1_000_000);
//! }
//! shader.refit(0);
//! let s = shader.shade(&key, 2_500_000, 100_000);
//! assert_eq!(s.reason, Reason::Shaded);
//! assert!(s.bid_micros > 1_000_000 && s.bid_micros < 1_300_000, "{s:?}");
//! # Ok::<(), shading::ParamsError>(())
//! ```

mod curve;

use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use arc_swap::ArcSwap;
use foldhash::fast::FixedState;

use curve::{Counts, Grid, POS_SCALE};
pub use curve::{Curve, BINS};

/// The kind of slot an impression offers; one curve per kind per exchange,
/// since video, audio and native compete in markets of their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SlotKind {
    Banner,
    Video,
    Audio,
    Native,
}

impl SlotKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SlotKind::Banner => "banner",
            SlotKind::Video => "video",
            SlotKind::Audio => "audio",
            SlotKind::Native => "native",
        }
    }
}

/// Which curve an outcome belongs to: the exchange id from the config and
/// the slot kind. Borrowed, so that the hot path builds one for free.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CurveKey<'a> {
    pub exchange: &'a str,
    pub slot: SlotKind,
}

impl<'a> CurveKey<'a> {
    pub fn new(exchange: &'a str, slot: SlotKind) -> Self {
        CurveKey { exchange, slot }
    }
}

/// How the exchange prices the winner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auction {
    FirstPrice,
    SecondPrice,
}

impl Auction {
    /// From OpenRTB `BidRequest.at`: 1 is first price; 2 (also the default
    /// when absent) is second price plus. Exchange-specific types (> 500)
    /// count as second price: not shading is what the bidder did before,
    /// and shading a second-price auction only loses it.
    pub fn from_openrtb(at: i64) -> Auction {
        if at == 1 {
            Auction::FirstPrice
        } else {
            Auction::SecondPrice
        }
    }
}

/// Why `shade` answered the bid it did. [`Reason::as_str`] is stable, for
/// explain output and metric labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Lowered below the value, above the floor.
    Shaded,
    /// The key has too few outcomes, or none at or below the value: the
    /// value, unchanged.
    NotEnoughData,
    /// The best bid is at or under the floor: the floor (which may equal
    /// the value).
    AtFloor,
    /// No bid under the value has a fitted chance of winning (surplus
    /// (v - b) P(b) is zero throughout), or the value is not positive: the
    /// value, the best chance there is.
    NoGain,
    /// The floor is above the value: the value, unchanged. The bidder does
    /// not bid at all then; the answer only keeps "never above the value".
    ValueBelowFloor,
    /// An exploration draw: the value or a random point near and above the
    /// shaded bid, to keep learning the curve where we do not usually bid.
    Explore,
    /// A second-price auction: not shaded.
    SecondPrice,
}

impl Reason {
    pub const ALL: [Reason; 7] = [
        Reason::Shaded,
        Reason::NotEnoughData,
        Reason::AtFloor,
        Reason::NoGain,
        Reason::ValueBelowFloor,
        Reason::Explore,
        Reason::SecondPrice,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Shaded => "shaded",
            Reason::NotEnoughData => "not_enough_data",
            Reason::AtFloor => "at_floor",
            Reason::NoGain => "no_gain",
            Reason::ValueBelowFloor => "value_below_floor",
            Reason::Explore => "explore",
            Reason::SecondPrice => "second_price",
        }
    }
}

/// What to bid.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shaded {
    /// CPM in micros: never above the value; never under the floor unless
    /// the floor is above the value ([`Reason::ValueBelowFloor`]).
    pub bid_micros: i64,
    /// The fitted P(win) at the bid; `None` when there is no usable curve
    /// there.
    pub p_win: Option<f64>,
    pub reason: Reason,
}

impl Shaded {
    fn unchanged(value_micros: i64, reason: Reason) -> Shaded {
        Shaded {
            bid_micros: value_micros,
            p_win: None,
            reason,
        }
    }
}

/// Tuning. The defaults suit USD CPMs.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    /// Lower edge of the price bins (default 0.01 CPM). Bids under it are
    /// counted in the lowest bin.
    pub min_price_micros: i64,
    /// Upper edge of the price bins (default 1000 CPM). Bids over it are
    /// counted in the highest bin.
    pub max_price_micros: i64,
    /// Counts lose half their weight in this much time between refits
    /// (default 30 minutes).
    pub half_life_ms: i64,
    /// Decayed outcomes a key needs before it is shaded (default 200).
    pub min_observations: u32,
    /// Decayed wins a key needs before it is shaded (default 20).
    pub min_wins: u32,
    /// Keys tracked at most (default 4096); outcomes of further keys are
    /// dropped and counted ([`Shader::dropped_observations`]).
    pub max_keys: usize,
    /// Share of shade_with draws that explore (default 0.05).
    pub explore_rate: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            min_price_micros: 10_000,
            max_price_micros: 1_000_000_000,
            half_life_ms: 30 * 60 * 1000,
            min_observations: 200,
            min_wins: 20,
            max_keys: 4096,
            explore_rate: 0.05,
        }
    }
}

/// Keys tracked at most, whatever the params say: the table is allocated
/// up front at twice the key count.
pub const MAX_KEYS: usize = 1 << 20;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ParamsError {
    #[error("price bins need 0 < min_price_micros < max_price_micros (got {0} and {1})")]
    PriceRange(i64, i64),
    #[error("half_life_ms must be positive (got {0})")]
    HalfLife(i64),
    #[error("max_keys must be between 1 and {MAX_KEYS} (got {0})")]
    MaxKeys(usize),
    #[error("explore_rate must be within [0, 1] (got {0})")]
    ExploreRate(f64),
}

impl Params {
    pub fn validate(&self) -> Result<(), ParamsError> {
        if !(0 < self.min_price_micros && self.min_price_micros < self.max_price_micros) {
            return Err(ParamsError::PriceRange(
                self.min_price_micros,
                self.max_price_micros,
            ));
        }
        if self.half_life_ms <= 0 {
            return Err(ParamsError::HalfLife(self.half_life_ms));
        }
        if !(1..=MAX_KEYS).contains(&self.max_keys) {
            return Err(ParamsError::MaxKeys(self.max_keys));
        }
        if !(0.0..=1.0).contains(&self.explore_rate) {
            return Err(ParamsError::ExploreRate(self.explore_rate));
        }
        Ok(())
    }
}

/// Learns a win curve per key and shades bids on it. One per bidder,
/// shared by every bid thread.
pub struct Shader {
    params: Params,
    grid: Grid,
    /// Open addressing, linear probing, never deleted from: a key's slot is
    /// claimed once by a compare-and-swap of its tag, so lookups take no
    /// lock. At least half the slots stay empty, so every probe ends.
    slots: Box<[Slot]>,
    mask: usize,
    keys: AtomicUsize,
    dropped: AtomicU64,
}

struct Slot {
    /// 0: empty; otherwise the key's hash with the low bit set.
    tag: AtomicU64,
    /// Set right after the tag is claimed; boxed so that empty slots cost
    /// 24 bytes, not a key's counters.
    state: OnceLock<Box<KeyState>>,
}

struct KeyState {
    exchange: Box<str>,
    slot: SlotKind,
    /// Bids in the low 32 bits, wins in the high 32: one atomic add per
    /// outcome (`observe`), and refit's swap never sees a win without its
    /// bid unless they were counted apart (`observe_win`).
    counts: [AtomicU64; BINS],
    /// Sum of positions within the bin, in 1 / POS_SCALE.
    pos: [AtomicU64; BINS],
    fitted: ArcSwap<Curve>,
    /// Only refit takes it.
    acc: Mutex<Accumulated>,
}

struct Accumulated {
    counts: Counts,
    last_ms: Option<i64>,
}

/// Bins whose decayed weight falls under this are forgotten, so a price we
/// stopped bidding at long ago does not keep a knot.
const FORGET_BELOW: f64 = 0.1;

/// Fixed so that a key hashes the same in every process (nothing here is
/// attacker-chosen: exchange ids come from the config).
const HASH_SEED: u64 = 0x5ade_b1d5_0ff1_ce55;

impl KeyState {
    fn new(key: &CurveKey<'_>) -> KeyState {
        KeyState {
            exchange: key.exchange.into(),
            slot: key.slot,
            counts: [const { AtomicU64::new(0) }; BINS],
            pos: [const { AtomicU64::new(0) }; BINS],
            fitted: ArcSwap::from_pointee(Curve::EMPTY),
            acc: Mutex::new(Accumulated {
                counts: Counts::ZERO,
                last_ms: None,
            }),
        }
    }

    fn is(&self, key: &CurveKey<'_>) -> bool {
        self.slot == key.slot && *self.exchange == *key.exchange
    }

    fn refit(&self, now_ms: i64, params: &Params, grid: &Grid) {
        let mut acc = self.acc.lock().unwrap_or_else(PoisonError::into_inner);
        let decay = match acc.last_ms {
            Some(last) if now_ms > last => {
                let dt = now_ms.saturating_sub(last) as f64;
                0.5f64.powf(dt / params.half_life_ms as f64)
            }
            _ => 1.0,
        };
        // A clock stepping back neither decays nor rewinds.
        acc.last_ms = Some(acc.last_ms.map_or(now_ms, |last| last.max(now_ms)));
        let c = &mut acc.counts;
        for bin in 0..BINS {
            let packed = self.counts[bin].swap(0, Ordering::Relaxed);
            let pos = self.pos[bin].swap(0, Ordering::Relaxed);
            let bids = c.bids[bin] * decay + (packed & 0xffff_ffff) as f64;
            if bids < FORGET_BELOW {
                c.bids[bin] = 0.0;
                c.wins[bin] = 0.0;
                c.pos[bin] = 0.0;
                continue;
            }
            c.bids[bin] = bids;
            // Wins counted apart from their bids (`observe_win`) may come
            // to a bin that did not count those bids: a win of another
            // process's bid, or of one made before a restart. Never more
            // wins than bids, so that such excess does not linger.
            c.wins[bin] = (c.wins[bin] * decay + (packed >> 32) as f64).min(bids);
            c.pos[bin] = c.pos[bin] * decay + pos as f64;
        }
        let curve = Curve::fit(
            c,
            grid,
            f64::from(params.min_observations),
            f64::from(params.min_wins),
        );
        self.fitted.store(Arc::new(curve));
    }
}

impl fmt::Debug for Shader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shader")
            .field("params", &self.params)
            .field("keys", &self.key_count())
            .field("dropped_observations", &self.dropped_observations())
            .finish_non_exhaustive()
    }
}

impl Shader {
    pub fn new(params: Params) -> Result<Shader, ParamsError> {
        params.validate()?;
        let capacity = (params.max_keys * 2).next_power_of_two();
        let slots = (0..capacity)
            .map(|_| Slot {
                tag: AtomicU64::new(0),
                state: OnceLock::new(),
            })
            .collect();
        Ok(Shader {
            grid: Grid::new(params.min_price_micros, params.max_price_micros),
            params,
            slots,
            mask: capacity - 1,
            keys: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
        })
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Records the outcome of one of our bids: `won` for a win or billing
    /// notice, not for a loss notice or a bid unanswered past its
    /// reservation TTL. Lock-free; allocates only the first time a key is
    /// seen. Returns false when the outcome was not recorded: a bid that is
    /// not positive, or a new key beyond [`Params::max_keys`].
    pub fn observe(&self, key: &CurveKey<'_>, bid_micros: i64, won: bool) -> bool {
        self.count(key, bid_micros, true, won)
    }

    /// Records one of our bids as sent, before its outcome is known: the
    /// bid counts in its price bin at once, and [`Shader::observe_win`]
    /// adds its win if one comes. Together they count what
    /// [`Shader::observe`] counts when the outcome is known, without the
    /// caller remembering each bid until then. A win counted later than
    /// its bid (or in another process than its bid) is kept under its
    /// bin's bids when the curve is fitted.
    pub fn observe_bid(&self, key: &CurveKey<'_>, bid_micros: i64) -> bool {
        self.count(key, bid_micros, true, false)
    }

    /// Records the win of a bid recorded with [`Shader::observe_bid`], by
    /// the same key and bid price. Call it once per bid.
    pub fn observe_win(&self, key: &CurveKey<'_>, bid_micros: i64) -> bool {
        self.count(key, bid_micros, false, true)
    }

    fn count(&self, key: &CurveKey<'_>, bid_micros: i64, bid: bool, won: bool) -> bool {
        if bid_micros <= 0 {
            return false;
        }
        let Some(state) = self.find_or_insert(key) else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        let (bin, pos) = self.grid.locate(bid_micros);
        state.counts[bin].fetch_add(u64::from(bid) | (u64::from(won) << 32), Ordering::Relaxed);
        // The mean position in a bin is over its bids.
        if bid {
            state.pos[bin].fetch_add((pos * POS_SCALE) as u64, Ordering::Relaxed);
        }
        true
    }

    /// Folds the outcomes observed since the last call into each key's
    /// decayed counts and publishes a freshly fitted curve. Call it about
    /// once a second from one task, off the bid path; `now_ms` is any
    /// monotone clock in milliseconds.
    pub fn refit(&self, now_ms: i64) {
        for slot in self.slots.iter() {
            if let Some(state) = slot.state.get() {
                state.refit(now_ms, &self.params, &self.grid);
            }
        }
    }

    /// The bid for an impression worth `value_micros` with a floor of
    /// `floor_micros`, in a first-price auction. Never above the value;
    /// never under the floor unless the floor is above the value, when the
    /// value comes back with [`Reason::ValueBelowFloor`] (the bidder does
    /// not bid then). No allocation, no lock.
    pub fn shade(&self, key: &CurveKey<'_>, value_micros: i64, floor_micros: i64) -> Shaded {
        self.shade_with(key, value_micros, floor_micros, 1.0)
    }

    /// [`Shader::shade`] with exploration: `explore` is a uniform draw in
    /// `[0, 1)` made by the caller. When it falls under
    /// [`Params::explore_rate`] and the bid would have been lowered, the
    /// answer is the value (lower half of that band) or a log-uniform point
    /// between half the shaded bid (or the floor) and the value (upper
    /// half), with [`Reason::Explore`]. Draws outside `[0, 1)` (NaN too)
    /// never explore.
    pub fn shade_with(
        &self,
        key: &CurveKey<'_>,
        value_micros: i64,
        floor_micros: i64,
        explore: f64,
    ) -> Shaded {
        if floor_micros > value_micros {
            return Shaded::unchanged(value_micros, Reason::ValueBelowFloor);
        }
        if value_micros <= 0 {
            return Shaded::unchanged(value_micros, Reason::NoGain);
        }
        let Some(state) = self.find(key) else {
            return Shaded::unchanged(value_micros, Reason::NotEnoughData);
        };
        let curve = state.fitted.load();
        let Some(lowest) = curve.lowest_price().filter(|_| curve.is_ready()) else {
            return Shaded::unchanged(value_micros, Reason::NotEnoughData);
        };
        let v = value_micros as f64;
        if v <= lowest {
            // We never bid under this value: no evidence a lower bid wins.
            return Shaded::unchanged(value_micros, Reason::NotEnoughData);
        }
        if floor_micros == value_micros {
            return Shaded {
                bid_micros: value_micros,
                p_win: curve.p_win(value_micros),
                reason: Reason::AtFloor,
            };
        }
        let floor = floor_micros as f64;
        let lo = floor.max(lowest);
        let (b, p) = curve.best_bid(lo, v);
        // Rounding down keeps the bid under the optimum, where surplus
        // falls off slowest; b >= floor, an integer, so it stays >= floor.
        let bid = (b.floor() as i64).clamp(floor_micros, value_micros);
        let reason = if bid >= value_micros {
            return Shaded {
                bid_micros: value_micros,
                p_win: Some(p),
                reason: Reason::NoGain,
            };
        } else if bid == floor_micros && floor >= lowest {
            Reason::AtFloor
        } else {
            Reason::Shaded
        };
        let rate = self.params.explore_rate;
        if (0.0..1.0).contains(&explore) && explore < rate {
            let r = explore / rate;
            let bid = if r < 0.5 {
                value_micros
            } else {
                let lo = (bid as f64 * 0.5).max(floor).max(1.0);
                let t = (r - 0.5) * 2.0;
                let x = (lo.ln() + t * (v.ln() - lo.ln())).exp();
                (x as i64).clamp(floor_micros, value_micros)
            };
            return Shaded {
                bid_micros: bid,
                p_win: curve.p_win(bid),
                reason: Reason::Explore,
            };
        }
        Shaded {
            bid_micros: bid,
            p_win: Some(p),
            reason,
        }
    }

    /// [`Shader::shade_with`] for first-price auctions; the value unchanged
    /// ([`Reason::SecondPrice`]) for second-price ones.
    pub fn shade_auction(
        &self,
        auction: Auction,
        key: &CurveKey<'_>,
        value_micros: i64,
        floor_micros: i64,
        explore: f64,
    ) -> Shaded {
        match auction {
            Auction::FirstPrice => self.shade_with(key, value_micros, floor_micros, explore),
            Auction::SecondPrice if floor_micros > value_micros => {
                Shaded::unchanged(value_micros, Reason::ValueBelowFloor)
            }
            Auction::SecondPrice => Shaded::unchanged(value_micros, Reason::SecondPrice),
        }
    }

    /// The curve `shade` currently uses for a key, for explain and debug
    /// output.
    pub fn curve(&self, key: &CurveKey<'_>) -> Option<Arc<Curve>> {
        self.find(key).map(|state| state.fitted.load_full())
    }

    /// Every key seen, with its current curve (for metrics).
    pub fn for_each_curve(&self, mut f: impl FnMut(CurveKey<'_>, &Curve)) {
        for slot in self.slots.iter() {
            if let Some(state) = slot.state.get() {
                let key = CurveKey::new(&state.exchange, state.slot);
                f(key, &state.fitted.load());
            }
        }
    }

    /// Keys tracked.
    pub fn key_count(&self) -> usize {
        self.keys.load(Ordering::Relaxed).min(self.params.max_keys)
    }

    /// Outcomes dropped because their key was beyond [`Params::max_keys`].
    pub fn dropped_observations(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn tag(key: &CurveKey<'_>) -> u64 {
        FixedState::with_seed(HASH_SEED).hash_one((key.exchange, key.slot)) | 1
    }

    fn find(&self, key: &CurveKey<'_>) -> Option<&KeyState> {
        let tag = Self::tag(key);
        let mut i = tag as usize & self.mask;
        loop {
            let slot = &self.slots[i];
            let t = slot.tag.load(Ordering::Acquire);
            if t == 0 {
                return None;
            }
            if t == tag {
                // A slot claimed but not yet filled is a key still being
                // added: not found, this once.
                if let Some(state) = slot.state.get().filter(|s| s.is(key)) {
                    return Some(state);
                }
            }
            i = (i + 1) & self.mask;
        }
    }

    fn find_or_insert(&self, key: &CurveKey<'_>) -> Option<&KeyState> {
        let tag = Self::tag(key);
        let mut i = tag as usize & self.mask;
        loop {
            let slot = &self.slots[i];
            let mut t = slot.tag.load(Ordering::Acquire);
            if t == 0 {
                // No deletions, so an empty slot ends the probe: the key is
                // new. Reserve its place under the cap before claiming.
                if self.keys.fetch_add(1, Ordering::Relaxed) >= self.params.max_keys {
                    self.keys.fetch_sub(1, Ordering::Relaxed);
                    return None;
                }
                match slot
                    .tag
                    .compare_exchange(0, tag, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => {
                        return Some(slot.state.get_or_init(|| Box::new(KeyState::new(key))));
                    }
                    Err(now) => {
                        self.keys.fetch_sub(1, Ordering::Relaxed);
                        t = now;
                    }
                }
            }
            if t == tag {
                // Another thread may be filling the slot it just claimed:
                // that takes one allocation, so waiting is short.
                let state = slot.state.wait();
                if state.is(key) {
                    return Some(state);
                }
            }
            i = (i + 1) & self.mask;
        }
    }
}

#[cfg(test)]
mod tests;

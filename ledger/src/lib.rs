//! Money and counting state: spend, reservations, frequency, notice dedup
//! and the charge journal.
//!
//! The protocol is `reserve → settle | release | expire`, idempotent by bid:
//!
//! - a bid **reserves** its impression cost under its line item and order
//!   (and a frequency slot) if every cap, the pacing plan and the frequency
//!   cap allow it, atomically, so concurrent bids can never pass a budget;
//! - its win is **settled** exactly once, in two steps: [`Ledger::begin_charge`]
//!   holds the amount and marks the bid as being charged, the journal makes
//!   the charge durable, and only then [`Ledger::commit`] makes it spend and
//!   a duplicate ([`Ledger::abort`] puts everything back when the write
//!   failed, so the exchange's retry charges);
//! - a loss **releases** a bid that has not been won (a win is never undone);
//! - a reservation whose notice never came **expires**, but keeps holding a
//!   share of its cost, learned from how often such bids are won late, until
//!   its notices can no longer be accepted.
//!
//! [`Ledger`] is the trait every backend implements ([`MemoryLedger`] is the
//! embedded one); [`conformance`] is the suite every backend must pass;
//! [`Books`] puts a ledger and its [`journal`] together.

mod books;
mod budget;
pub mod carried;
pub mod conformance;
pub mod frequency;
pub mod journal;
mod key;
mod late;
mod memory;
pub mod synced;
mod table;

pub use books::{Books, ChargeError};
pub use budget::{
    impression_cost, plan_minutes, planned_today, BudgetKind, Cap, Limit, Plan, Refusal, Spent,
};
pub use key::{BidId, BidKey, SpendKey};
pub use late::LateShare;
pub use memory::{MemoryLedger, Options};

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use config::{Date, Micros, Timestamp};

/// Work a shared backend finishes after the bid path: the bids it refuses.
pub type Confirming<'a> = Pin<Box<dyn Future<Output = Vec<BidKey>> + Send + 'a>>;

/// Whether the state a ledger depends on can be reached.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Health {
    /// `None`: available. `Some(why)`: budgeted line items do not bid.
    pub unavailable: Option<String>,
    /// Not once available since the start (a wrong address or password,
    /// a state not created yet): readiness waits for it, so a rollout of a
    /// bad setting stops at its first replica.
    pub never_available: bool,
}

/// What a bid holds while it is in flight.
#[derive(Clone, Debug)]
pub struct Hold<'a> {
    pub bid: BidKey,
    /// The UTC day of the bid: its win is charged to this day.
    pub day: Date,
    /// What the impression may cost (at the bid price).
    pub cost: Micros,
    /// The line item's budget first, then its order's.
    pub limits: [Limit<'a>; 2],
    /// The line item's frequency cap, for this user.
    pub frequency: Option<FrequencyHold<'a>>,
    /// When the reservation ends if no notice comes.
    pub expires: Timestamp,
    /// When the bid's notices stop being accepted.
    pub forget: Timestamp,
}

/// A frequency cap to count the bid under: at most `cap` impressions of the
/// line item per `window_ms` for `user`.
#[derive(Clone, Copy, Debug)]
pub struct FrequencyHold<'a> {
    pub user: &'a str,
    pub cap: u32,
    pub window_ms: i64,
}

/// A win to charge.
#[derive(Clone, Debug)]
pub struct Win<'a> {
    pub bid: BidKey,
    /// The UTC day of the bid (not of the notice).
    pub day: Date,
    /// What the exchange bills for the impression, never above the bid.
    pub cost: Micros,
    /// The caps in force now; `Cap::None` for a line item that left the
    /// config.
    pub limits: [Limit<'a>; 2],
    /// Until when a second notice for this bid must be known as a duplicate.
    pub forget: Timestamp,
    /// When the bid was made: one made before this process held what the
    /// process before held ([`Ledger::carry`]) is one of those holds.
    pub made: Timestamp,
    /// What reports cut the charge by.
    pub tags: Tags,
}

/// What a charge is reported under, beyond its line item and order: the
/// journal keeps it in the charge's own record, so reports sum exactly the
/// records the ledger's spend is made of.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tags {
    pub advertiser: Arc<str>,
    pub creative: Arc<str>,
    pub exchange: Arc<str>,
    /// The keyword that matched; empty for none.
    pub keyword: Arc<str>,
    /// The audience that made the line item eligible, as `kind:id`; empty
    /// for none.
    pub audience: Arc<str>,
    /// When the charge was made (ms since the epoch), for spend through
    /// the day.
    pub at_ms: i64,
}

/// A charge: what the journal writes and what commit applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Charge {
    pub bid: BidKey,
    pub day: Date,
    /// Charged to the budgets.
    pub billed: Micros,
    /// What the win cost beyond a cap: delivered, not billed.
    pub over_delivery: Micros,
    pub forget: Timestamp,
    /// The line item's key, then the order's.
    pub keys: [SpendKey; 2],
    /// The line item's budget kind, when it is in the config.
    pub kind: Option<BudgetKind>,
    /// Won after its reservation had expired.
    pub late: bool,
    /// What the bid held before the charge began (not journaled): abort
    /// puts it back.
    pub prior: Prior,
    /// Journaled with the charge, for reports (empty in records written
    /// before reports existed).
    pub tags: Tags,
}

/// A bid's hold before its charge began.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Prior {
    /// Nothing: unknown to the ledger (a restart, a late win past what it
    /// tracks, a test) or replayed from the journal.
    #[default]
    None,
    Reserved {
        amount: Micros,
        day: i64,
        expires: i64,
    },
    Lingering {
        amount: Micros,
        day: i64,
        next: i64,
        past_horizon: bool,
    },
    /// Unknown here, made before the holds carried over a restart were
    /// taken on: `amount` of them stood for it, and went on `day` (the
    /// same off the line item and the order).
    Carried { amount: Micros, day: i64 },
    /// Lost, holding nothing, remembered until `next`.
    Released { next: i64 },
}

/// Why a win was not charged now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotCharged {
    /// Already charged (its record is on disk).
    Duplicate,
    /// Another notice for this bid is being charged right now.
    InFlight,
    /// Its notices expired by the latest time the ledger has seen: it may
    /// have been charged and forgotten since, so it is not charged again
    /// (a clock stepped back must not make forgotten bids chargeable).
    Forgotten,
    /// A shared backend cannot be reached: whether the bid was charged
    /// elsewhere is unknown, so nothing is charged and the exchange's retry
    /// decides.
    Unavailable,
}

/// What a loss notice did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Release {
    Released,
    /// Won (or being charged): a loss never undoes a win.
    AlreadyWon,
    /// Not known, or released before.
    Unknown,
}

/// What a ledger knows of a bid now ([`Ledger::outcome`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Charged (here, or by another replica as this one has heard).
    Charged,
    /// Won, to be charged on a later notice (an exchange that bills on
    /// its billing notice), which may come until the bid's notices expire.
    Won,
    /// Held: not yet won, lost or let go (a charge under way too).
    InFlight,
    /// Lost: a loss notice came.
    Lost,
    /// Not known: made before this process, by another replica, or
    /// let go unwon and forgotten.
    Unknown,
}

/// What one pass of [`Ledger::expire`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Expired {
    /// Reservations that ended without a notice.
    pub reservations: usize,
    /// Expired reservations whose notices can no longer come.
    pub forgotten: usize,
}

/// State that must survive a restart, as a checkpoint lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Durable {
    /// Spend under a key: since the flight started, and on recent days
    /// (day number, billed, over-delivered).
    Spend {
        key: SpendKey,
        lifetime: Micros,
        days: Vec<(i64, Micros, Micros)>,
        kind: Option<BudgetKind>,
    },
    /// A charged bid, a duplicate until `forget`.
    Charged { bid: BidKey, forget: Timestamp },
    /// Outcomes of expired bids seen, for the learned share; `past`: of
    /// those past their late horizon (`None` in checkpoints written before
    /// it was learned).
    Late {
        won: u64,
        not_won: u64,
        past: Option<(u64, u64)>,
    },
    /// The latest time the ledger has seen (ms): charged ids were forgotten
    /// up to it.
    Seen(Timestamp),
}

/// What bids hold under one key on one day ([`Ledger::holds`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holding {
    pub key: SpendKey,
    pub day: Date,
    pub amount: Micros,
    /// Until when it must be held: none for this process's own bids (the
    /// caller knows how long they may still be won).
    pub until: Option<Timestamp>,
}

/// A bid won and not yet charged (an exchange that bills on its billing
/// notice), as the next process takes it on ([`Ledger::bought`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bought {
    pub bid: BidKey,
    /// Its line item and order.
    pub keys: [SpendKey; 2],
    pub day: Date,
    pub amount: Micros,
    /// When its notices expire: held until then unless charged.
    pub forget: Timestamp,
}

/// Money state behind one interface, so the embedded store and a shared one
/// (Redis) are interchangeable and pass one [`conformance`] suite.
pub trait Ledger: Send + Sync + 'static {
    /// Reserves the bid's cost under both limits and its frequency slot if
    /// all allow it at `now`; otherwise holds nothing.
    fn reserve(&self, hold: &Hold<'_>, now: Timestamp) -> Result<(), Refusal>;
    /// A reservation of `bid` may follow soon: the memory it will touch
    /// can be fetched meanwhile. A hint only, which changes nothing;
    /// without it a reservation is as correct, only slower.
    fn prefetch(&self, _bid: BidKey) {}
    /// A loss: gives back what a bid not yet won holds.
    fn release(&self, bid: BidKey) -> Release;
    /// A win that charges later (an exchange that bills on its billing
    /// notice): the bid keeps its hold, and a loss can no longer release
    /// it. Its reservation still ends as any other does. `false` when the
    /// ledger does not hold the bid.
    fn won(&self, bid: BidKey) -> bool;
    /// What this ledger knows of `bid` now: reports count a bid's
    /// impression and click once it is charged, and not at all once lost.
    fn outcome(&self, _bid: BidKey) -> Outcome {
        Outcome::Unknown
    }
    /// Which of `bids` are charged on any replica sharing this state, for
    /// those [`Ledger::outcome`] does not know charged: one round trip for
    /// all of them. `None`: this ledger shares nothing (its `outcome` knows
    /// every charge), or the shared state could not be read.
    fn charged_anywhere(&self, _bids: &[BidKey]) -> Option<Vec<bool>> {
        None
    }
    /// Starts charging a win: the billed amount (capped so no budget is
    /// passed) is held, the bid is marked as being charged. Nothing is
    /// spent, nor a duplicate, before [`Ledger::commit`].
    fn begin_charge(&self, win: &Win<'_>) -> Result<Charge, NotCharged>;
    /// The charge is durable: it becomes spend and the bid a duplicate.
    fn commit(&self, charge: &Charge);
    /// The charge could not be made durable: everything is as before.
    fn abort(&self, charge: &Charge);
    /// Ends reservations and forgets expired ones whose time is up.
    fn expire(&self, now: Timestamp) -> Expired;
    /// How many steps [`Ledger::expire_step`] splits an expiry pass into.
    fn expiry_steps(&self) -> usize {
        1
    }
    /// Step `step` (below [`Ledger::expiry_steps`]) of an expiry pass: what
    /// it expired, and whether the step is done. A step not done did a
    /// bounded part of its work and is called again; the steps in order,
    /// each until done and with one `now`, are one [`Ledger::expire`]. Each
    /// step may have a `now` of its own, no earlier than the last one's.
    /// The server runs all but the last on its request workers, spread
    /// over its round, each as of when it runs: on a thread of their own
    /// they competed with the workers for the cores and for the shards'
    /// locks, and back to back they were a stall every round that answers
    /// queued behind. The last step is for work that is not bounded (whole
    /// maps swept), which the server runs on a blocking thread.
    fn expire_step(&self, now: Timestamp, step: usize) -> (Expired, bool) {
        match step {
            0 => (self.expire(now), true),
            _ => (Expired::default(), true),
        }
    }
    /// Spend and holds under `key`, seen from `day`.
    fn spent(&self, key: &SpendKey, day: Date) -> Spent;
    /// Whether both limits leave room for `cost` more on `day` at `now`
    /// (read only: the cheap check before a bid is priced). A shared
    /// backend answers from what it holds locally, never over the network.
    fn room(
        &self,
        limits: &[Limit<'_>; 2],
        cost: Micros,
        day: Date,
        now: Timestamp,
    ) -> Result<(), Refusal> {
        for l in limits {
            self.spent(l.key, day).room_for(l.cap, cost, now)?;
        }
        Ok(())
    }
    /// Bids just reserved that a shared backend must still confirm (a
    /// frequency cap counted across replicas) before they are sent: `None`
    /// when there is nothing to wait for. The future gives the bids it
    /// refused; the caller releases them.
    fn confirm<'a>(&'a self, _bids: &'a [BidKey], _now: Timestamp) -> Option<Confirming<'a>> {
        None
    }
    /// Whether what the ledger depends on is reachable.
    fn health(&self) -> Health {
        Health::default()
    }
    /// Shutting down: give back what was borrowed from shared state (budget
    /// leases) and finish pending writes.
    fn close(&self) {}
    /// Whether another impression would stay within the cap (read only).
    fn frequency_allows(
        &self,
        user: &str,
        line_item: &SpendKey,
        cap: u32,
        window_ms: i64,
        now: Timestamp,
    ) -> bool;
    /// [`Ledger::frequency_allows`] counted across every replica sharing
    /// the state, where the bid path counts here and confirms later (see
    /// [`Ledger::confirm`]). Read only, and may wait on the network: for
    /// `/v1/explain`, never the bid path.
    fn frequency_allows_everywhere(
        &self,
        user: &str,
        line_item: &SpendKey,
        cap: u32,
        window_ms: i64,
        now: Timestamp,
    ) -> bool {
        self.frequency_allows(user, line_item, cap, window_ms, now)
    }
    /// The budget kind a line item has spent under, if it has.
    fn budget_kind(&self, line_item: &str) -> Option<BudgetKind>;
    /// [`Ledger::budget_kind`] of each of `line_items`, read from the
    /// shared state now where this process has not seen it yet (it may
    /// block): for config checks off the bid path, which must know what
    /// another replica spent under. Those not known are left out.
    fn budget_kinds_now(
        &self,
        line_items: &[&str],
    ) -> std::collections::HashMap<String, BudgetKind> {
        line_items
            .iter()
            .filter_map(|id| Some((id.to_string(), self.budget_kind(id)?)))
            .collect()
    }
    /// The share of an expired reservation still held, in millionths.
    fn late_share_ppm(&self) -> u32;
    /// What bids hold now, by key and day (in flight, being charged, the
    /// learned share of expired ones; `until` none; not those won and not
    /// yet charged: [`Ledger::bought`]), and what is held for
    /// a process before this one (with its `until`): what the next process
    /// must hold again ([`Ledger::carry`]), since the bids of this one can
    /// still be won and billed after it stops. A shared ledger has nothing
    /// to say: it keeps a stopped replica's leases counted in the shared
    /// state.
    fn holds(&self) -> Vec<Holding> {
        Vec::new()
    }
    /// Holds of a process before this one, whose bids this one does not
    /// know, taken on at `now`: held in full, as bids in flight are, until
    /// the latest `until` among them, then let go by the expiry pass. A
    /// win of a bid made before `now` takes its cost off them.
    fn carry(&self, _holdings: &[Holding], _now: Timestamp) {}
    /// The bids won and not yet charged, one by one: the next process
    /// holds each until it is charged or its notices expire
    /// ([`Ledger::carry_bought`]), as this one does. A shared ledger has
    /// nothing to say, as for [`Ledger::holds`].
    fn bought(&self) -> Vec<Bought> {
        Vec::new()
    }
    /// [`Ledger::holds`] and [`Ledger::bought`] read together, as the file
    /// is written: read apart, a bid charged in between was taken off the
    /// one and missing from the other.
    fn holds_and_bought(&self) -> (Vec<Holding>, Vec<Bought>) {
        (self.holds(), self.bought())
    }
    /// Takes on the bought bids of a process before this one at `now`, as
    /// if won here (those whose notices expired, or already known or
    /// charged here, are skipped); returns how many.
    fn carry_bought(&self, _bought: &[Bought], _now: Timestamp) -> usize {
        0
    }
    /// A win notice, on an exchange that bills later, of a bid made at
    /// `made` that this ledger does not know: one of the process before,
    /// in flight when it stopped. Its cost (at most what is still carried
    /// for its line item and order that day) moves from the carried pool,
    /// which ends with the reservation window, to a bid held as bought
    /// ([`Ledger::carry_bought`]). Whether it did.
    fn won_carried(&self, _bought: &Bought, _made: Timestamp) -> bool {
        false
    }
    /// The frequency windows still counting at `now`, with the key their
    /// users were hashed under: what the next process takes on
    /// ([`Ledger::take_frequency`]) so that a restart does not reset every
    /// user's caps. A shared ledger has none: its windows live in the
    /// shared state.
    fn frequency(&self, _now: Timestamp) -> Option<frequency::Windows> {
        None
    }
    /// The frequency windows held in memory against their bound
    /// (`Options::max_windows`): counting or back at zero, all take a place
    /// until their time has passed. 0 where none are kept.
    fn frequency_windows_held(&self) -> usize {
        0
    }
    /// Counts in the windows of a process before this one, taken on at
    /// start, before any bid: their users are hashed under the key that
    /// came with them from then on. Returns how many were taken (none when
    /// this ledger already counted under another key).
    fn take_frequency(&self, _windows: frequency::Windows, _now: Timestamp) -> usize {
        0
    }
    /// Applies a journaled charge again at start (no caps, no holds).
    fn restore(&self, charge: &Charge, now: Timestamp);
    /// Loads what a checkpoint listed.
    fn import(&self, item: Durable, now: Timestamp);
    /// Lists what must survive a restart. Called with no charge being
    /// committed, so the listing matches the journal.
    fn export(&self, now: Timestamp, out: &mut dyn FnMut(Durable));
}

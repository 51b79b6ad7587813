//! The Redis ledger: an embedded ledger for this replica's holds, budget
//! leases borrowed from Redis, and charges claimed there once for all
//! replicas. See the crate documentation for the protocol.

use std::collections::HashMap;
use std::future::Future;
use std::hash::BuildHasher;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use config::{Clock, Date, Micros, Timestamp};
use ledger::{
    BidKey, BudgetKind, Cap, Charge, Confirming, Durable, Expired, Health, Hold, Ledger, Limit,
    MemoryLedger, NotCharged, Prior, Refusal, Release, SpendKey, Spent, Win,
};
use redis::aio::ConnectionManager;

use crate::keys::Keys;
use crate::scripts::Scripts;
use crate::worker::{self, Op};

const LEASE_SHARDS: usize = 32;
/// Per-day keys live this long in Redis: a win is charged to its bid's
/// day while its notices are accepted (a day or two).
pub(crate) const DAY_TTL_SECS: i64 = 8 * 86_400;

/// Tuning of the Redis ledger.
#[derive(Clone)]
pub struct Options {
    /// Prefix of every key (several deployments may share one Redis).
    pub prefix: String,
    /// This replica's name, stable across its restarts (kept beside its
    /// journal): its claims and leases are found again after a crash.
    pub replica: String,
    /// Every call waits for Redis: leases are exactly what a bid needs and
    /// commits are applied before returning. For the conformance suite and
    /// tools; serving uses leases and writes behind.
    pub synchronous: bool,
    /// One Redis call at most this long.
    pub timeout: Duration,
    /// A lease covers at least this many impressions at the bid's cost...
    pub min_lease_bids: i64,
    /// ...and about this long of the line item's recent spend.
    pub lease_ms: i64,
    /// A lease unused this long goes back.
    pub idle_return_ms: i64,
    pub heartbeat_ms: i64,
    /// A replica silent this long has its leases reclaimed.
    pub dead_after_ms: i64,
    /// Reclaimed leases (a replica silent, or restarted) still count as
    /// leased this long: the bids they covered may win until their holds
    /// would have ended, the longest reservation plus the late horizon
    /// (`memory.late_horizon_ms`). `bidder serve` sets it from its
    /// settings and exchange profiles.
    pub retire_ms: i64,
    /// How long (on Redis's clock) every replica must have said at each
    /// heartbeat that it reads `per-bid` URLs before
    /// [`RedisLedger::all_read_per_bid`] holds:
    /// a rollback within it (to a build that reads only `per-url`) finds no
    /// `per-bid` URL it would refuse, and a replica whose heartbeats only
    /// some of the others see (clocks apart by more than `dead_after_ms`)
    /// keeps the count from ever getting there.
    pub per_bid_after_ms: i64,
    /// With no heartbeat through for this long, budgeted line items stop
    /// bidding. Shorter than `dead_after_ms`, so a replica cut off stops
    /// using its leases before others reclaim them.
    pub stale_after_ms: i64,
    /// How long another replica's unfinished claim blocks a charge: past
    /// it, that replica died before its record was durable.
    pub claim_ms: i64,
    /// Charged bids kept in the stream replicas read.
    pub stream_len: usize,
    /// The embedded ledger under it.
    pub memory: ledger::Options,
    /// Where this replica remembers the state's epoch (its journal
    /// directory); `None`: nothing remembered (tests).
    pub epoch_file: Option<PathBuf>,
    /// This replica has no charges of its own: it may create the state's
    /// epoch when Redis has none (a first start). A replica with charges
    /// that finds no epoch knows Redis lost its data and fails closed.
    pub may_initialise: bool,
    pub clock: Arc<dyn Clock>,
}

impl Options {
    pub fn new(replica: &str, clock: Arc<dyn Clock>) -> Options {
        Options {
            prefix: "bidder:".into(),
            replica: replica.into(),
            synchronous: false,
            timeout: Duration::from_millis(250),
            min_lease_bids: 20,
            lease_ms: 1_000,
            idle_return_ms: 5_000,
            heartbeat_ms: 500,
            dead_after_ms: 15_000,
            // The default reservation (60 s) and late horizon (5 min).
            retire_ms: 60_000 + 5 * 60_000,
            per_bid_after_ms: 3_600_000,
            stale_after_ms: 3_000,
            claim_ms: 30_000,
            stream_len: 100_000,
            memory: ledger::Options::default(),
            epoch_file: None,
            may_initialise: true,
            clock,
        }
    }
}

/// Why the Redis ledger could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Url(String),
    #[error("starting the Redis client: {0}")]
    Runtime(std::io::Error),
    #[error("Redis: {0}")]
    Redis(String),
}

/// Budget borrowed from Redis under one key for one day.
#[derive(Default)]
pub(crate) struct Lease {
    pub granted: i64,
    /// Reserved since the last maintenance pass, and a running rate.
    pub used: i64,
    pub rate: i64,
    pub last_cost: i64,
    pub last_use_ms: i64,
}

/// What a line item asks of Redis for a day.
#[derive(Clone, Debug)]
pub(crate) struct Ask {
    pub keys: [SpendKey; 2],
    pub caps: [Cap; 2],
    pub day: i64,
    pub min: i64,
    pub want: i64,
    /// When the bid asking was made: pacing plans for its minute.
    pub now: Timestamp,
}

/// A capped bid's slot in Redis.
#[derive(Clone, Debug)]
pub(crate) struct FreqSlot {
    pub w: String,
    pub r: String,
    pub cap: u32,
    pub window_ms: i64,
    pub expires: i64,
    pub confirmed: bool,
    /// Kept until then, for its win to count.
    pub keep_until: i64,
}

/// Losses waiting to be handed on, and those handed on lately (two
/// generations of about [`LOSSES_REMEMBERED_MS`] each).
#[derive(Default)]
struct Losses {
    waiting: Vec<u64>,
    /// Win notices (of bids billed later) told here for bids another
    /// replica holds, waiting to be handed on with the losses.
    wins: Vec<u64>,
    current: std::collections::HashSet<u64>,
    previous: std::collections::HashSet<u64>,
    since: i64,
}

/// What a notice told here for a bid another replica holds says, as the
/// stream of losses hands it on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Told {
    Lost,
    Won,
}

impl Told {
    /// The stream entry's field for a list of such bids.
    pub(crate) fn field(self) -> &'static str {
        match self {
            Told::Lost => "l",
            Told::Won => "w",
        }
    }
}

impl Losses {
    fn waiting(&mut self, told: Told) -> &mut Vec<u64> {
        match told {
            Told::Lost => &mut self.waiting,
            Told::Won => &mut self.wins,
        }
    }
}

/// Losses waiting for the worker's next pass (a tenth of a second), at most.
const MAX_LOSSES: usize = 20_000;
/// Bids remembered as handed on, per generation.
const MAX_LOSSES_REMEMBERED: usize = 200_000;
const LOSSES_REMEMBERED_MS: i64 = 5 * 60_000;

/// Cluster spend under a key, as last read.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Cached {
    pub life: i64,
    pub day: i64,
    pub over: i64,
    pub kind: Option<BudgetKind>,
}

pub(crate) struct HealthState {
    base: Instant,
    ok_at: AtomicI64,
    failing: AtomicBool,
    lost: AtomicBool,
    /// Available at least once since the start.
    been_up: AtomicBool,
    /// Not usable for an expected reason (see [`HealthState::waiting`]).
    expected: AtomicBool,
    why: Mutex<String>,
    /// When a key of another type was last logged (ms since `base`; -1
    /// never).
    wrong_type_at: AtomicI64,
}

impl HealthState {
    fn new() -> HealthState {
        HealthState {
            base: Instant::now(),
            ok_at: AtomicI64::new(-1),
            failing: AtomicBool::new(false),
            lost: AtomicBool::new(false),
            been_up: AtomicBool::new(false),
            expected: AtomicBool::new(false),
            why: Mutex::new("connecting to Redis".into()),
            wrong_type_at: AtomicI64::new(-1),
        }
    }

    pub(crate) fn ms(&self) -> i64 {
        self.base.elapsed().as_millis() as i64
    }

    pub(crate) fn ok(&self) {
        self.ok_at.store(self.ms(), Ordering::Relaxed);
    }

    /// A heartbeat went through: only then is Redis back (the heartbeat
    /// tells whether this replica's leases were reclaimed meanwhile).
    pub(crate) fn beat(&self) {
        self.ok();
        if self.failing.swap(false, Ordering::Relaxed) {
            tracing::info!("Redis answers again");
        }
    }

    pub(crate) fn failed(&self, why: String) {
        if !self.failing.swap(true, Ordering::Relaxed) {
            tracing::warn!(error = %why, "Redis call failed: budgeted line items stop bidding");
        }
        *lock(&self.why) = why;
    }

    /// A script found one of our keys holding another type and wrote
    /// nothing: what needs that key stays off, the rest goes on. Logged at
    /// most every ten seconds (each bid on that line item finds it).
    pub(crate) fn wrong_type(&self, keys: &str) {
        let now = self.ms();
        let last = self.wrong_type_at.load(Ordering::Relaxed);
        if (last < 0 || now - last >= 10_000)
            && self
                .wrong_type_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::error!(
                keys,
                "a Redis key of ours holds another type: what needs it stays off until it is \
                 deleted (is another program writing under this --redis-prefix?)"
            );
        }
    }

    pub(crate) fn lost(&self, why: Option<String>) {
        match why {
            Some(w) => {
                let was_expected = self.expected.swap(false, Ordering::Relaxed);
                if !self.lost.swap(true, Ordering::Relaxed) || was_expected {
                    tracing::error!(error = %w, "shared state refused");
                }
                *lock(&self.why) = w;
            }
            None => {
                self.expected.store(false, Ordering::Relaxed);
                self.lost.store(false, Ordering::Relaxed);
            }
        }
    }

    /// Not usable yet, for an expected reason (a first start waiting to
    /// see whether another replica knows the state): said at info level.
    pub(crate) fn waiting(&self, why: &str) {
        if !self.lost.swap(true, Ordering::Relaxed) {
            tracing::info!("{why}");
        }
        self.expected.store(true, Ordering::Relaxed);
        *lock(&self.why) = why.to_string();
    }

    pub(crate) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    fn unavailable(&self, stale_after_ms: i64) -> bool {
        let ok_at = self.ok_at.load(Ordering::Relaxed);
        self.lost.load(Ordering::Relaxed)
            || self.failing.load(Ordering::Relaxed)
            || ok_at < 0
            || self.ms() - ok_at > stale_after_ms
    }

    fn reason(&self, stale_after_ms: i64) -> Option<String> {
        if !self.unavailable(stale_after_ms) {
            if !self.been_up.load(Ordering::Relaxed) {
                self.been_up.store(true, Ordering::Relaxed);
            }
            return None;
        }
        let ok_at = self.ok_at.load(Ordering::Relaxed);
        let why = lock(&self.why).clone();
        if ok_at >= 0 && !self.failing.load(Ordering::Relaxed) && !self.lost.load(Ordering::Relaxed)
        {
            return Some(format!("no answer from Redis for {} ms", self.ms() - ok_at));
        }
        Some(why)
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding one of these leaves plain counters
    // behind, still consistent enough to keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A line item and its order on a day: what a lease is asked for.
pub(crate) type Pair = (SpendKey, SpendKey, i64);
/// One shard of the lease table: (key, day) → lease.
pub(crate) type LeaseShard = HashMap<(SpendKey, i64), Lease>;

pub(crate) struct Inner {
    /// Losses told here for bids this replica does not hold, for the
    /// others: see [`Inner::lost_elsewhere`].
    lost: Mutex<Losses>,
    pub local: MemoryLedger,
    pub opts: Options,
    pub keys: Keys,
    pub scripts: Scripts,
    pub conn: Mutex<Option<ConnectionManager>>,
    pub client: redis::Client,
    pub io: tokio::runtime::Handle,
    pub leases: Vec<Mutex<LeaseShard>>,
    hasher: std::collections::hash_map::RandomState,
    pub asks: Mutex<HashMap<Pair, Ask>>,
    pub refused: Mutex<HashMap<Pair, (Refusal, i64)>>,
    pub ops: tokio::sync::mpsc::UnboundedSender<Op>,
    pub wake: tokio::sync::Notify,
    pub health: HealthState,
    pub cache: Mutex<HashMap<(SpendKey, i64), Cached>>,
    pub freq: Mutex<HashMap<u64, FreqSlot>>,
    /// When `freq` was last swept: a whole-map pass under the lock bids
    /// take, so at most once a second however often `expire` is called.
    pub freq_swept: AtomicI64,
    pub round_trips: AtomicU64,
    pub audience: Mutex<Option<Arc<Subscription>>>,
    /// Bids of this replica's previous run, won and not yet billed, held
    /// again here ([`Ledger::carry_bought`]): what is left to do so that
    /// its leases cover them (`worker::keep_leases`).
    pub keep: Mutex<Keep>,
    /// The epoch of the shared state this replica knows ('' until known).
    pub epoch: Mutex<String>,
    /// Set once the journal is replayed (and the directory locked): only
    /// then may the worker reset this replica's earlier leases.
    pub go: AtomicBool,
    pub seq: AtomicU64,
    /// This run's claims not yet committed or aborted: bid → deadline.
    pub claims: Mutex<HashMap<u64, i64>>,
    /// Heartbeats in a row that found no replica knowing a state.
    pub quiet_beats: std::sync::atomic::AtomicU32,
    /// Every replica sharing this Redis has said at each of its heartbeats
    /// for `per_bid_after_ms` that it reads `per-bid` signed URLs, as of
    /// this replica's last heartbeat, which went through within
    /// `dead_after_ms` of the one before (false until then, and from a
    /// heartbeat that failed).
    pub all_read_per_bid: Arc<AtomicBool>,
    /// This replica's clock at its last heartbeat that went through.
    pub last_beat_ms: AtomicI64,
    /// `REPLICA/RUN`: who claims a charge in this run.
    pub owner: String,
    pub pending_ops: AtomicI64,
    /// Audience data for the others, written by its own task.
    pub outbox: tokio::sync::mpsc::Sender<crate::audience::Piece>,
    /// Pieces not handed on: the outbox was full.
    pub outbox_dropped: AtomicU64,
}

/// What is left to do for the bought bids a restarted replica took on
/// (`worker::keep_leases`): first ask Redis which of them were charged
/// elsewhere while it was away (their holds go), then have its lease under
/// each key and day cover what the rest hold.
#[derive(Default)]
pub(crate) struct Keep {
    pub(crate) bids: std::collections::VecDeque<BidKey>,
    pub(crate) keys: std::collections::VecDeque<(SpendKey, i64)>,
    /// When a failure was last logged (monotonic ms; the worker retries at
    /// every pass).
    pub(crate) warned_at: Option<i64>,
}

impl Keep {
    pub(crate) fn is_empty(&self) -> bool {
        self.bids.is_empty() && self.keys.is_empty()
    }
}

/// Who takes other replicas' audience data, and from where in the stream.
pub(crate) struct Subscription {
    pub tx: tokio::sync::mpsc::Sender<crate::Published>,
    pub last: Mutex<String>,
}

/// The ledger of one replica among several sharing Redis.
pub struct RedisLedger {
    inner: Arc<Inner>,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
}

impl Drop for RedisLedger {
    fn drop(&mut self) {
        // Dropped from async code too: never block here.
        if let Some(rt) = lock(&self.runtime).take() {
            rt.shutdown_background();
        }
    }
}

impl RedisLedger {
    /// Drops the frequency counts no bid needs any more, at most once a
    /// second (or after the clock stepped back).
    fn sweep_freq(&self, now: Timestamp) {
        let t = now.as_millis();
        let last = self.inner.freq_swept.load(Ordering::Relaxed);
        if t.saturating_sub(last) >= 1_000 || t < last {
            self.inner.freq_swept.store(t, Ordering::Relaxed);
            lock(&self.inner.freq).retain(|_, s| s.keep_until > t);
        }
    }

    /// Starts the client and its background work. Does not wait for Redis
    /// unless the ledger is synchronous: until it answers, budgeted line
    /// items do not bid.
    pub fn connect(info: redis::ConnectionInfo, opts: Options) -> Result<RedisLedger, StartError> {
        // rediss:// needs a crypto provider for rustls; ring is the one
        // built in. Installing twice is harmless (the first one stays).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = redis::Client::open(info).map_err(|e| StartError::Redis(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("redis-io")
            .enable_all()
            .build()
            .map_err(StartError::Runtime)?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let (outbox, outbox_rx) = tokio::sync::mpsc::channel(crate::audience::OUTBOX);
        let inner = Arc::new(Inner {
            local: MemoryLedger::new(opts.memory.clone()),
            keys: Keys::new(&opts.prefix),
            scripts: Scripts::new(),
            conn: Mutex::new(None),
            client,
            io: runtime.handle().clone(),
            leases: (0..LEASE_SHARDS).map(|_| Mutex::default()).collect(),
            hasher: Default::default(),
            asks: Mutex::default(),
            refused: Mutex::default(),
            ops: tx,
            wake: tokio::sync::Notify::new(),
            health: HealthState::new(),
            lost: Mutex::default(),
            cache: Mutex::default(),
            freq: Mutex::default(),
            freq_swept: AtomicI64::new(i64::MIN),
            round_trips: AtomicU64::new(0),
            audience: Mutex::new(None),
            keep: Mutex::default(),
            epoch: Mutex::new(String::new()),
            go: AtomicBool::new(opts.synchronous),
            seq: AtomicU64::new(0),
            quiet_beats: std::sync::atomic::AtomicU32::new(0),
            all_read_per_bid: Arc::new(AtomicBool::new(false)),
            last_beat_ms: AtomicI64::new(i64::MIN),
            claims: Mutex::default(),
            owner: format!("{}/{:08x}", opts.replica, rand_u64() as u32),
            pending_ops: AtomicI64::new(0),
            outbox,
            outbox_dropped: AtomicU64::new(0),
            opts,
        });
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(worker::run(Arc::downgrade(&inner), rx, ready_tx));
        runtime.spawn(crate::audience::run(Arc::downgrade(&inner), outbox_rx));
        let ledger = RedisLedger {
            inner,
            runtime: Mutex::new(Some(runtime)),
        };
        if ledger.inner.opts.synchronous {
            match ready_rx.recv_timeout(Duration::from_secs(10)) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(StartError::Redis(e)),
                Err(_) => return Err(StartError::Redis("no answer from Redis".into())),
            }
        }
        Ok(ledger)
    }

    /// Whether every replica sharing this Redis (under this prefix) has
    /// read `per-bid` signed URLs for [`Options::per_bid_after_ms`]: set at
    /// each heartbeat; false until then, again as soon as a replica there
    /// does not say so (an earlier version says nothing), from a heartbeat
    /// of this replica that failed (it cannot see who comes meanwhile),
    /// and after a gap of more than `dead_after_ms` between its heartbeats
    /// until the next one. What `--url-signatures auto` writes by.
    pub fn all_read_per_bid(&self) -> Arc<AtomicBool> {
        self.inner.all_read_per_bid.clone()
    }

    /// Redis calls made so far (for the round-trips-per-bid metric).
    pub fn round_trips(&self) -> u64 {
        self.inner.round_trips.load(Ordering::Relaxed)
    }

    /// Writes (commits, give-backs) waiting for Redis.
    pub fn pending_writes(&self) -> i64 {
        self.inner.pending_ops.load(Ordering::Relaxed)
    }

    /// The journal has been replayed (its charges queued for commit): the
    /// claims this replica left before a crash that never reached the
    /// journal are let go, after those commits.
    pub fn replayed(&self) {
        self.inner.queue(Op::Clean);
        self.inner.go.store(true, Ordering::Relaxed);
        self.inner.wake.notify_one();
    }

    /// Hands audience data (shopper events, list batches: JSON lines)
    /// applied here to the other replicas, in pieces of at most 1 MB cut at
    /// line ends (Redis keeps a bounded number of pieces, so their size
    /// bounds its memory). Written behind by a task of its own; while 64
    /// pieces wait (Redis away), more are not handed on, and counted
    /// ([`RedisLedger::audience_dropped`]).
    pub fn publish(&self, topic: &'static str, key: &str, body: &str) {
        let mut rest = body;
        while !rest.is_empty() {
            let mut end = rest.len().min(crate::MAX_PUBLISHED_BYTES);
            if end < rest.len() {
                // On bytes: a newline is never inside a UTF-8 character, so
                // the cut after it is a character boundary.
                match rest.as_bytes()[..end].iter().rposition(|&b| b == b'\n') {
                    Some(nl) => end = nl + 1,
                    None => {
                        // One line over 1 MB: skipped, the lines after it go.
                        tracing::warn!(
                            topic,
                            "a line over 1 MB is not handed to the other replicas"
                        );
                        match rest.as_bytes().iter().position(|&b| b == b'\n') {
                            Some(nl) => {
                                rest = &rest[nl + 1..];
                                continue;
                            }
                            None => return,
                        }
                    }
                }
            }
            let piece = crate::audience::Piece {
                topic,
                key: key.to_string(),
                body: rest[..end].into(),
            };
            if self.inner.outbox.try_send(piece).is_err()
                && self
                    .inner
                    .outbox_dropped
                    .fetch_add(1, Ordering::Relaxed)
                    .is_multiple_of(1000)
            {
                tracing::warn!(
                    topic,
                    "audience data not handed to the other replicas: too much waits for Redis"
                );
            }
            rest = &rest[end..];
        }
    }

    /// Audience data the other replicas applied, after the stream entry
    /// `after` (`0-0`: all Redis still keeps), in order. Each item's `id`
    /// is where to resume after a restart.
    pub fn subscribe(&self, after: &str) -> tokio::sync::mpsc::Receiver<crate::Published> {
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        *lock(&self.inner.audience) = Some(Arc::new(Subscription {
            tx,
            last: Mutex::new(after.to_string()),
        }));
        rx
    }

    /// Pieces of audience data not handed to the other replicas (too much
    /// waited for Redis).
    pub fn audience_dropped(&self) -> u64 {
        self.inner.outbox_dropped.load(Ordering::Relaxed)
    }

    /// Budget this replica holds on lease now, in micros.
    pub fn leased(&self) -> i64 {
        self.inner
            .leases
            .iter()
            .map(|s| {
                lock(s)
                    .iter()
                    .filter(|((k, _), _)| k.is_line_item())
                    .map(|(_, l)| l.granted)
                    .sum::<i64>()
            })
            .sum()
    }

    /// Which of `events` (a charged bid, and whether its click or its
    /// impression) this replica records: the first replica to claim an
    /// event records it, the others count it a duplicate. Without this,
    /// the same call made to two replicas before its bid's charge was
    /// recorded by both: each held it waiting for the charge and let it
    /// go in the same second, before either's copy of the other's events
    /// came. For each event, `Some(true)`: claimed here; `Some(false)`:
    /// claimed by another; `None`: Redis did not answer (the caller
    /// records it, as before the claims).
    pub fn claim_tracked(&self, events: &[(BidKey, bool)]) -> Vec<Option<bool>> {
        if events.is_empty() || self.inner.unavailable() {
            return vec![None; events.len()];
        }
        let inner = self.inner.clone();
        let events = events.to_vec();
        self.block(async move { worker::claim_tracked(&inner, &events).await })
    }

    fn block<T: Send + 'static>(&self, fut: impl Future<Output = T> + Send + 'static) -> T {
        self.inner.block(fut)
    }
}

impl Inner {
    pub(crate) fn shard(&self, key: &SpendKey) -> usize {
        (self.hasher.hash_one(key) as usize) % LEASE_SHARDS
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.opts.clock.now()
    }

    /// Runs `fut` on the Redis runtime and waits for it: from a plain
    /// thread, or from a worker of a multi-threaded runtime (its other
    /// tasks move elsewhere meanwhile).
    pub(crate) fn block<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> T {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.io.spawn(async move {
            let _ = tx.send(fut.await);
        });
        let wait = || rx.recv();
        let got = match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(wait)
            }
            _ => wait(),
        };
        match got {
            Ok(v) => v,
            // Only when the Redis runtime is gone (shutting down).
            Err(_) => panic!("the Redis runtime stopped"),
        }
    }

    pub(crate) async fn connection(&self) -> Result<ConnectionManager, String> {
        if let Some(c) = lock(&self.conn).clone() {
            return Ok(c);
        }
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.opts.timeout.max(Duration::from_millis(500))))
            .set_response_timeout(Some(self.opts.timeout))
            .set_number_of_retries(1);
        let c = tokio::time::timeout(
            self.opts.timeout.max(Duration::from_secs(1)),
            ConnectionManager::new_with_config(self.client.clone(), config),
        )
        .await
        .map_err(|_| "connecting to Redis timed out".to_string())?
        .map_err(|e| format!("connecting to Redis: {e}"))?;
        *lock(&self.conn) = Some(c.clone());
        Ok(c)
    }

    /// One script call, bounded in time; the outcome feeds health.
    pub(crate) async fn run<T: redis::FromRedisValue>(
        &self,
        script: &redis::Script,
        keys: &[&str],
        args: &[String],
    ) -> Result<T, String> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let mut conn = match self.connection().await {
            Ok(c) => c,
            Err(e) => {
                self.health.failed(e.clone());
                return Err(e);
            }
        };
        let mut inv = script.prepare_invoke();
        for k in keys {
            inv.key(*k);
        }
        for a in args {
            inv.arg(a.as_str());
        }
        self.bounded(inv.invoke_async(&mut conn)).await
    }

    /// One call to Redis, at most `timeout` long; a failure feeds health.
    /// A success does not make Redis fresh: only a heartbeat does, since
    /// heartbeats are what the other replicas judge this one alive by (a
    /// replica whose heartbeats stopped while other calls went through
    /// would bid on leases the others reclaim).
    pub(crate) async fn bounded<T>(
        &self,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, String> {
        let e = match tokio::time::timeout(self.opts.timeout, call).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => format!("Redis: {e}"),
            Err(_) => "Redis: timed out".to_string(),
        };
        self.health.failed(e.clone());
        Err(e)
    }

    /// A plain command, bounded in time.
    pub(crate) async fn cmd<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T, String> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let mut conn = match self.connection().await {
            Ok(c) => c,
            Err(e) => {
                self.health.failed(e.clone());
                return Err(e);
            }
        };
        self.bounded(cmd.query_async(&mut conn)).await
    }

    pub(crate) fn unavailable(&self) -> bool {
        self.health.unavailable(self.opts.stale_after_ms)
    }

    /// Asks Redis for a lease. `(grant, why)`: why is 0 when granted.
    pub(crate) async fn lease(&self, ask: &Ask) -> Result<(i64, i64), String> {
        let k = &self.keys;
        let now = ask.now;
        let life0 = k.life(&ask.keys[0]);
        let day0 = k.day(&ask.keys[0], ask.day);
        let lease0 = k.lease(&ask.keys[0], ask.day);
        let life1 = k.life(&ask.keys[1]);
        let day1 = k.day(&ask.keys[1], ask.day);
        let lease1 = k.lease(&ask.keys[1], ask.day);
        let held = k.held_by(&self.opts.replica);
        let replicas = k.replicas();
        let mut args = vec![
            self.opts.replica.clone(),
            ask.want.max(ask.min).to_string(),
            ask.min.to_string(),
            now.as_millis().to_string(),
            self.opts.dead_after_ms.to_string(),
            DAY_TTL_SECS.to_string(),
            Keys::lease_member(&ask.keys[0], ask.day),
            Keys::lease_member(&ask.keys[1], ask.day),
        ];
        for cap in ask.caps {
            let (kind, c, minute, days) = cap_args(cap, now);
            args.extend([kind, c, minute, days].map(|v| v.to_string()));
        }
        args.push(lock(&self.epoch).clone());
        let epoch = k.epoch();
        let known = k.known();
        self.run(
            &self.scripts.lease,
            &[
                &life0, &day0, &lease0, &life1, &day1, &lease1, &held, &replicas, &epoch, &known,
            ],
            &args,
        )
        .await
        .map(|v: Vec<i64>| {
            let why = v.get(1).copied().unwrap_or(1);
            if why == 5 {
                self.health.wrong_type(&format!(
                    "{life0} {day0} {lease0} {life1} {day1} {lease1} {held} {known}"
                ));
            }
            (v.first().copied().unwrap_or(0), why)
        })
    }

    /// Adds a grant to both keys' leases. A grant counts as a use for the
    /// idle clock, and the least it was asked for as the cost of a bid
    /// where none was made yet: asked for by a bid refused for want of it,
    /// it was given back in full at the next pass (idle, and over a
    /// target of nothing) before any bid could use it, so a line item
    /// whose requests came a second or more apart never bid on Redis
    /// (operator probe).
    pub(crate) fn granted(&self, ask: &Ask, grant: i64) {
        let now_ms = self.now().as_millis();
        for (i, key) in ask.keys.iter().enumerate() {
            if ask.caps[i] == Cap::None {
                continue;
            }
            let mut shard = lock(&self.leases[self.shard(key)]);
            let l = shard.entry((key.clone(), ask.day)).or_default();
            l.granted += grant;
            l.last_use_ms = l.last_use_ms.max(now_ms);
            if l.last_cost == 0 {
                l.last_cost = ask.min.max(0);
            }
        }
    }

    /// Takes `amount` off a key's lease (it became spend, or was charged
    /// elsewhere), at most what is granted.
    pub(crate) fn shrink(&self, key: &SpendKey, day: i64, amount: i64) -> i64 {
        let mut shard = lock(&self.leases[self.shard(key)]);
        match shard.get_mut(&(key.clone(), day)) {
            Some(l) => {
                let a = amount.min(l.granted).max(0);
                l.granted -= a;
                a
            }
            None => 0,
        }
    }

    /// Gives lease back to Redis (written behind, once).
    pub(crate) fn give(&self, key: SpendKey, day: i64, amount: i64) {
        let nonce = format!(
            "{}:{}",
            self.owner,
            self.seq.fetch_add(1, Ordering::Relaxed)
        );
        self.queue(Op::Give {
            key,
            day,
            amount,
            nonce,
        });
    }

    /// A loss told here for a bid this replica does not hold: kept for the
    /// worker's next pass, which hands them all on in one write. Bounded:
    /// past [`MAX_LOSSES`] waiting, more are dropped (their holds end with
    /// their reservations). A bid handed on in the last few minutes is not
    /// handed on again: a replayed notice costs the others nothing.
    pub(crate) fn lost_elsewhere(&self, bid: BidKey) {
        self.hand_on(Told::Lost, bid);
    }

    /// A win notice for a bid not held here (it bills later): the replica
    /// that holds it is told through the stream of losses, and holds its
    /// whole cost (and counts its frequency slot) until it is billed.
    /// Best effort, bounded as losses are.
    pub(crate) fn won_elsewhere(&self, bid: BidKey) {
        self.hand_on(Told::Won, bid);
    }

    /// Queues `bid` to be handed on as `told`, unless it was in the last
    /// few minutes (a notice sent again) or too many wait.
    fn hand_on(&self, told: Told, bid: BidKey) {
        let mut l = lock(&self.lost);
        let now = self.now().as_millis();
        // A new generation every few minutes, or once this one is full,
        // so a replay is always caught for the last stretch of traffic.
        if now - l.since >= LOSSES_REMEMBERED_MS || l.current.len() >= MAX_LOSSES_REMEMBERED {
            l.previous = std::mem::take(&mut l.current);
            l.since = now;
        }
        if l.waiting(told).len() >= MAX_LOSSES
            || l.current.contains(&bid.0)
            || l.previous.contains(&bid.0)
        {
            return;
        }
        l.current.insert(bid.0);
        l.waiting(told).push(bid.0);
    }

    /// Up to `n` of the notices told as `told` waiting to be handed on.
    pub(crate) fn take_told(&self, told: Told, n: usize) -> Vec<u64> {
        let mut l = lock(&self.lost);
        let waiting = l.waiting(told);
        let n = n.min(waiting.len());
        waiting.drain(..n).collect()
    }

    /// A win notice of `bid` (billed later), told here or by another
    /// replica: held whole here if this replica holds it, and its
    /// frequency slot counted as an impression at once (its billing may
    /// come after the slot's reservation would have ended). Whether this
    /// replica holds it.
    pub(crate) fn won_here(&self, bid: BidKey) -> bool {
        let here = self.local.won(bid);
        if here {
            let slot = lock(&self.freq).get(&bid.0).cloned();
            if let Some(s) = slot {
                self.queue(Op::FreqWon {
                    w: s.w,
                    r: s.r,
                    window_ms: s.window_ms,
                    bid,
                    at: self.now().as_millis(),
                });
            }
        }
        here
    }

    /// A loss of `bid`, told here or by another replica: the hold this
    /// replica keeps for it goes. The write that gives back its confirmed
    /// frequency slot, if it had one, is for the caller to send.
    pub(crate) fn release_here(&self, bid: BidKey) -> (Release, Option<Op>) {
        let r = self.local.release(bid);
        if r != Release::Released {
            return (r, None);
        }
        let slot = lock(&self.freq)
            .get(&bid.0)
            .filter(|s| s.confirmed)
            .cloned();
        (r, slot.map(|s| Op::FreqGive { r: s.r, bid }))
    }

    pub(crate) fn queue(&self, op: Op) {
        self.pending_ops.fetch_add(1, Ordering::Relaxed);
        if self.ops.send(op).is_err() {
            self.pending_ops.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Applies `op` now when synchronous (queued for a retry if Redis
    /// fails), queues it otherwise.
    fn apply(self: &Arc<Self>, op: Op) {
        if !self.opts.synchronous {
            self.queue(op);
            return;
        }
        let me = self.clone();
        let op2 = op.clone();
        let ok = self.block(async move { worker::apply(&me, &op2).await.is_ok() });
        if !ok {
            self.queue(op);
        }
    }

    pub(crate) fn want(&self, key: &SpendKey, day: i64, cost: i64) -> i64 {
        let shard = lock(&self.leases[self.shard(key)]);
        // The running rate, or, before one pass has measured it (a first
        // second of traffic), twice what this pass has seen so far.
        let rate = shard
            .get(&(key.clone(), day))
            .map_or(0, |l| l.rate.max(l.used.saturating_mul(2)));
        let per_lease = (i128::from(rate) * i128::from(self.opts.lease_ms) / 1000) as i64;
        cost.saturating_mul(self.opts.min_lease_bids).max(per_lease)
    }
}

/// A cap as the lease script reads it: kind, amount, and for paced budgets
/// the minutes of their plan, elapsed and in all ([`ledger::plan_minutes`]).
fn cap_args(cap: Cap, now: Timestamp) -> (i64, i64, i64, i64) {
    match cap {
        Cap::None => (0, 0, 0, 0),
        Cap::Daily(c) => (1, c.as_i64(), 0, 0),
        Cap::Lifetime(c) => (2, c.as_i64(), 0, 0),
        Cap::Paced { total, plan } => {
            let (elapsed, span) = ledger::plan_minutes(plan, now);
            (3, total.as_i64(), elapsed, span)
        }
    }
}

/// Random bits for run and epoch names (seeded per call by std's hasher
/// keys and the time; not for secrets).
pub(crate) fn rand_u64() -> u64 {
    use std::hash::Hasher as _;
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

fn kind_arg(cap: Cap) -> (i64, i64) {
    let (k, c, _, _) = cap_args(cap, Timestamp(0));
    (k, c)
}

impl RedisLedger {
    /// Budget this replica may still hold under `key` on `day`.
    fn balance(&self, key: &SpendKey, day: i64, lease: Option<&Lease>) -> i64 {
        let held = self
            .inner
            .local
            .spent(key, Date::from_days_since_epoch(day))
            .held_today;
        lease.map_or(0, |l| l.granted) - held.as_i64()
    }

    /// Checks (and with `take`, uses) lease room for `cost` under the
    /// capped limits; on a shortfall, the lease to ask for.
    fn lease_room(
        &self,
        limits: &[Limit<'_>; 2],
        cost: i64,
        day: i64,
        now: Timestamp,
        take: Option<&dyn Fn() -> Result<(), Refusal>>,
    ) -> Result<(), (Refusal, Option<Box<Ask>>)> {
        let capped: Vec<usize> = (0..2).filter(|&i| limits[i].cap != Cap::None).collect();
        if capped.is_empty() {
            return match take {
                Some(f) => f().map_err(|r| (r, None)),
                None => Ok(()),
            };
        }
        let mut idx: Vec<usize> = capped
            .iter()
            .map(|&i| self.inner.shard(limits[i].key))
            .collect();
        idx.sort_unstable();
        idx.dedup();
        let mut guards: Vec<(usize, MutexGuard<'_, LeaseShard>)> = idx
            .iter()
            .map(|&i| (i, lock(&self.inner.leases[i])))
            .collect();
        let mut short = 0i64;
        for &i in &capped {
            let key = limits[i].key;
            let s = self.inner.shard(key);
            let Some((_, g)) = guards.iter().find(|(j, _)| *j == s) else {
                continue;
            };
            let bal = self.balance(key, day, g.get(&(key.clone(), day)));
            short = short.max(cost - bal);
        }
        let now_ms = self.inner.now().as_millis();
        let ask = |min: i64, want: i64| Ask {
            keys: [limits[0].key.clone(), limits[1].key.clone()],
            caps: [limits[0].cap, limits[1].cap],
            day,
            min,
            want,
            now,
        };
        if short > 0 {
            drop(guards);
            let want = self.inner.want(limits[0].key, day, cost).max(short);
            let why = lock(&self.inner.refused)
                .get(&(limits[0].key.clone(), limits[1].key.clone(), day))
                .filter(|(_, until)| *until > now_ms)
                .map_or(Refusal::Budget, |(r, _)| *r);
            return Err((why, Some(Box::new(ask(short, want)))));
        }
        let Some(take) = take else {
            return Ok(());
        };
        take().map_err(|r| (r, None))?;
        let mut low = false;
        for &i in &capped {
            let key = limits[i].key;
            let s = self.inner.shard(key);
            if let Some((_, g)) = guards.iter_mut().find(|(j, _)| *j == s) {
                let l = g.entry((key.clone(), day)).or_default();
                l.used += cost;
                l.last_cost = cost;
                l.last_use_ms = now_ms;
                let bal = l.granted
                    - self
                        .inner
                        .local
                        .spent(key, Date::from_days_since_epoch(day))
                        .held_today
                        .as_i64();
                let target = cost
                    .saturating_mul(self.inner.opts.min_lease_bids)
                    .max(l.rate);
                low |= bal < target / 4;
            }
        }
        drop(guards);
        // Ask for the next lease before this one runs out: bids keep going
        // while it comes.
        if low && !self.inner.opts.synchronous {
            let want = self.inner.want(limits[0].key, day, cost);
            self.ask(ask(cost, want));
        }
        Ok(())
    }

    fn ask(&self, ask: Ask) {
        let pair = (ask.keys[0].clone(), ask.keys[1].clone(), ask.day);
        // Refused a moment ago (spent, or ahead of its plan): asking again
        // at every bid would cost Redis a call per bid.
        let now_ms = self.inner.now().as_millis();
        if lock(&self.inner.refused)
            .get(&pair)
            .is_some_and(|(_, until)| *until > now_ms)
        {
            return;
        }
        let mut asks = lock(&self.inner.asks);
        let fresh = !asks.contains_key(&pair);
        let e = asks.entry(pair).or_insert_with(|| ask.clone());
        e.min = e.min.max(ask.min);
        e.want = e.want.max(ask.want);
        e.caps = ask.caps;
        e.now = ask.now;
        drop(asks);
        if fresh {
            self.inner.wake.notify_one();
        }
    }

    /// Waits for a lease (synchronous ledgers).
    fn lease_now(&self, ask: Ask) -> Result<(), Refusal> {
        let inner = self.inner.clone();
        let a = ask.clone();
        let got = self.block(async move { inner.lease(&a).await });
        match got {
            Ok((g, _)) if g > 0 => {
                self.inner.granted(&ask, g);
                Ok(())
            }
            Ok((_, 2)) => Err(Refusal::Pacing),
            // A rebuilt state waits for the replicas' bids in flight; a
            // key of another type keeps its line item off.
            Ok((_, 4 | 5)) => Err(Refusal::Unavailable),
            Ok((_, 3)) => {
                self.inner
                    .health
                    .failed("the shared state's epoch is not the one this replica knows".into());
                Err(Refusal::Unavailable)
            }
            Ok(_) => Err(Refusal::Budget),
            Err(_) => Err(Refusal::Unavailable),
        }
    }

    fn freq_slot(&self, hold: &Hold<'_>) -> Option<FreqSlot> {
        let f = hold.frequency?;
        let (w, r) = self.inner.keys.frequency(hold.limits[0].key, f.user);
        Some(FreqSlot {
            w,
            r,
            cap: f.cap,
            window_ms: f.window_ms,
            expires: hold.expires.as_millis(),
            confirmed: false,
            // A win arriving later than this is charged but not counted
            // again under the cap: the table stays the size of the bids
            // in flight.
            keep_until: hold.expires.as_millis().saturating_add(10_000),
        })
    }

    async fn take_slot(
        inner: &Inner,
        bid: BidKey,
        slot: &FreqSlot,
        now: Timestamp,
    ) -> Result<bool, String> {
        let got: i64 = inner
            .run(
                &inner.scripts.freq_take,
                &[&slot.w, &slot.r],
                &[
                    now.as_millis().to_string(),
                    slot.window_ms.to_string(),
                    slot.cap.to_string(),
                    bid.to_string(),
                    slot.expires.max(now.as_millis() + 1).to_string(),
                ],
            )
            .await?;
        if got < 0 {
            inner.health.wrong_type(&format!("{} {}", slot.w, slot.r));
            return Err("a frequency key holds another type".into());
        }
        Ok(got == 1)
    }
}

impl Ledger for RedisLedger {
    fn reserve(&self, hold: &Hold<'_>, now: Timestamp) -> Result<(), Refusal> {
        let budgeted = hold.limits.iter().any(|l| l.cap != Cap::None);
        if budgeted && self.inner.unavailable() {
            return Err(Refusal::Unavailable);
        }
        // The local table would refuse it after the lease check: asked
        // first, so that a full table is not reported (or leased for) as a
        // budget without room.
        if self.inner.local.is_full_for(hold.bid) {
            return Err(Refusal::Unavailable);
        }
        let day = hold.day.days_since_epoch();
        let cost = hold.cost.as_i64();
        let local_hold = Hold {
            limits: [
                Limit {
                    key: hold.limits[0].key,
                    cap: Cap::None,
                },
                Limit {
                    key: hold.limits[1].key,
                    cap: Cap::None,
                },
            ],
            ..hold.clone()
        };
        let take = || self.inner.local.reserve(&local_hold, now);
        let mut tries = 0;
        loop {
            match self.lease_room(&hold.limits, cost, day, now, Some(&take)) {
                Ok(()) => break,
                Err((why, Some(ask))) => {
                    if self.inner.opts.synchronous && tries == 0 {
                        tries += 1;
                        let ask = Ask {
                            want: ask.min,
                            ..*ask
                        };
                        self.lease_now(ask)?;
                        continue;
                    }
                    self.ask(*ask);
                    return Err(why);
                }
                Err((why, None)) => return Err(why),
            }
        }
        if let Some(slot) = self.freq_slot(hold) {
            if self.inner.opts.synchronous {
                let inner = self.inner.clone();
                let s = slot.clone();
                let bid = hold.bid;
                let taken =
                    self.block(async move { RedisLedger::take_slot(&inner, bid, &s, now).await });
                if !matches!(taken, Ok(true)) {
                    self.inner.local.release(hold.bid);
                    return Err(match taken {
                        Ok(_) => Refusal::Frequency,
                        Err(_) => Refusal::Unavailable,
                    });
                }
                lock(&self.inner.freq).insert(
                    hold.bid.0,
                    FreqSlot {
                        confirmed: true,
                        ..slot
                    },
                );
            } else {
                lock(&self.inner.freq).insert(hold.bid.0, slot);
            }
        }
        Ok(())
    }

    fn room(
        &self,
        limits: &[Limit<'_>; 2],
        cost: Micros,
        day: Date,
        now: Timestamp,
    ) -> Result<(), Refusal> {
        if limits.iter().any(|l| l.cap != Cap::None) && self.inner.unavailable() {
            return Err(Refusal::Unavailable);
        }
        if self.inner.opts.synchronous {
            // Exact leases: a bid asks when it reserves.
            return Ok(());
        }
        match self.lease_room(limits, cost.as_i64(), day.days_since_epoch(), now, None) {
            Ok(()) => Ok(()),
            Err((why, ask)) => {
                let pair = (
                    limits[0].key.clone(),
                    limits[1].key.clone(),
                    day.days_since_epoch(),
                );
                let refused = lock(&self.inner.refused)
                    .get(&pair)
                    .is_some_and(|(_, until)| *until > now.as_millis());
                if let Some(a) = ask {
                    self.ask(*a);
                }
                if refused {
                    return Err(why);
                }
                // Short of lease because none was asked for yet (a first
                // bid, a new day, a refusal forgotten): the line item has
                // budget unless the cluster spent it, as the spend last
                // read from Redis says; explain must tell the two apart.
                // The reservation waits for the lease.
                for l in limits.iter().filter(|l| l.cap != Cap::None) {
                    self.spent(l.key, day).room_for(l.cap, cost, now)?;
                }
                Ok(())
            }
        }
    }

    fn confirm<'a>(&'a self, bids: &'a [BidKey], now: Timestamp) -> Option<Confirming<'a>> {
        let todo: Vec<(BidKey, FreqSlot)> = {
            let freq = lock(&self.inner.freq);
            bids.iter()
                .filter_map(|b| {
                    freq.get(&b.0)
                        .filter(|s| !s.confirmed)
                        .map(|s| (*b, s.clone()))
                })
                .collect()
        };
        if todo.is_empty() {
            return None;
        }
        let inner = self.inner.clone();
        Some(Box::pin(async move {
            let mut refused = Vec::new();
            for (bid, slot) in todo {
                match RedisLedger::take_slot(&inner, bid, &slot, now).await {
                    Ok(true) => {
                        if let Some(s) = lock(&inner.freq).get_mut(&bid.0) {
                            s.confirmed = true;
                        }
                    }
                    // Refused, or not known to be counted: not sent.
                    _ => refused.push(bid),
                }
            }
            refused
        }))
    }

    fn prefetch(&self, bid: BidKey) {
        self.inner.local.prefetch(bid);
    }

    fn release(&self, bid: BidKey) -> Release {
        let (r, give) = self.inner.release_here(bid);
        if let Some(op) = give {
            self.inner.apply(op);
        }
        // Behind a load balancer most loss notices reach a replica other
        // than the one that bid, whose hold would otherwise last its
        // reservation and the late horizon: minutes of budget locked per
        // lost bid. The notice was verified; the stream carries it there.
        // Best effort: while Redis is away the hold ends by itself.
        if r == Release::Unknown && !self.inner.health.is_lost() && !self.inner.unavailable() {
            self.inner.lost_elsewhere(bid);
        }
        r
    }

    fn won(&self, bid: BidKey) -> bool {
        let here = self.inner.won_here(bid);
        // Behind a load balancer the win notice mostly reaches a replica
        // that did not bid (replica probe: its holder let the hold go to
        // the late-win share, 1.90 delivered under 1.00).
        if !here && !self.inner.health.is_lost() && !self.inner.unavailable() {
            self.inner.won_elsewhere(bid);
        }
        here
    }

    /// What this replica knows: its own bids, and charges of them made
    /// elsewhere once the stream of charges has told it (`settled`).
    fn outcome(&self, bid: BidKey) -> ledger::Outcome {
        self.inner.local.outcome(bid)
    }

    /// The bids' keys in Redis, pipelined: `d` once a charge of the bid was
    /// committed on any replica (a claim in flight is not a charge yet).
    /// Bounded in time like explain's reads, and never taken as Redis
    /// failing.
    fn charged_anywhere(&self, bids: &[BidKey]) -> Option<Vec<bool>> {
        if bids.is_empty() {
            return Some(Vec::new());
        }
        if self.inner.unavailable() {
            return None;
        }
        let inner = self.inner.clone();
        let bids = bids.to_vec();
        self.block(async move { worker::charged(&inner, &bids).await.ok() })
    }

    fn begin_charge(&self, win: &Win<'_>) -> Result<Charge, NotCharged> {
        let mut charge = self.inner.local.begin_charge(win)?;
        // Redis without its data does not know which bids were charged: a
        // retried notice would charge twice. Wait for the rebuild. And
        // while Redis is known to be away, answer at once rather than hold
        // a thread for a connection attempt per notice (heartbeats find it
        // back).
        if self.inner.health.is_lost() || self.inner.unavailable() {
            self.inner.local.abort(&charge);
            return Err(NotCharged::Unavailable);
        }
        let k = &self.inner.keys;
        let day = win.day.days_since_epoch();
        let now = self.inner.now().as_millis();
        let b = k.bid(win.bid);
        let mut keys = Vec::from(k.spend([win.limits[0].key, win.limits[1].key], day));
        keys.extend([
            k.claims_of(&self.inner.opts.replica),
            k.replicas(),
            k.epoch(),
        ]);
        let (k0, c0) = kind_arg(win.limits[0].cap);
        let (k1, c1) = kind_arg(win.limits[1].cap);
        let deadline = now.saturating_add(self.inner.opts.claim_ms);
        let args = vec![
            self.inner.owner.clone(),
            now.to_string(),
            deadline.to_string(),
            win.cost.as_i64().to_string(),
            k0.to_string(),
            c0.to_string(),
            k1.to_string(),
            c1.to_string(),
            // Claims outlive a clock that reads slightly off.
            (win.forget.as_millis() - now).max(60_000).to_string(),
            DAY_TTL_SECS.to_string(),
            Keys::claim_member(
                win.bid,
                &[win.limits[0].key.clone(), win.limits[1].key.clone()],
                day,
            ),
            (now - self.inner.opts.dead_after_ms).to_string(),
            lock(&self.inner.epoch).clone(),
        ];
        let inner = self.inner.clone();
        let got = self.block(async move {
            let keys: Vec<&str> = std::iter::once(b.as_str())
                .chain(keys.iter().map(String::as_str))
                .collect();
            inner
                .run::<Vec<i64>>(&inner.scripts.claim, &keys, &args)
                .await
        });
        let outcome = match got {
            Ok(v) => match (v.first().copied(), v.get(1).copied()) {
                (Some(1), Some(billed)) => Ok(billed),
                (Some(-1), _) => Err(NotCharged::Duplicate),
                (Some(-2), _) => Err(NotCharged::InFlight),
                (Some(-3), _) => {
                    // Until a heartbeat says which state Redis holds.
                    self.inner.health.failed(
                        "the shared state's epoch is not the one this replica knows".into(),
                    );
                    Err(NotCharged::Unavailable)
                }
                _ => Err(NotCharged::Unavailable),
            },
            Err(_) => {
                // Redis may have run the claim before the answer was lost:
                // let it go (a no-op when it did not), or it would block
                // the bid and hold its amount.
                self.inner.queue(Op::Abort {
                    bid: win.bid,
                    keys: [win.limits[0].key.clone(), win.limits[1].key.clone()],
                    day,
                    claim: deadline,
                });
                Err(NotCharged::Unavailable)
            }
        };
        match outcome {
            Ok(billed) => {
                // Until committed or aborted: an abort names this claim.
                lock(&self.inner.claims).insert(win.bid.0, deadline);
                self.inner.local.rebill(&mut charge, Micros(billed));
                Ok(charge)
            }
            Err(e) => {
                self.inner.local.abort(&charge);
                Err(e)
            }
        }
    }

    fn commit(&self, charge: &Charge) {
        lock(&self.inner.claims).remove(&charge.bid.0);
        let (hold, hold_day) = match charge.prior {
            Prior::Reserved { amount, day, .. } | Prior::Lingering { amount, day, .. } => {
                (amount.as_i64(), day)
            }
            _ => (0, charge.day.days_since_epoch()),
        };
        let mut given = 0;
        if hold > 0 {
            for key in &charge.keys {
                given = given.max(self.inner.shrink(key, hold_day, hold));
            }
        }
        self.inner.local.commit(charge);
        self.inner.apply(Op::Commit {
            bid: charge.bid,
            keys: charge.keys.clone(),
            day: charge.day.days_since_epoch(),
            hold_day,
            over: charge.over_delivery.as_i64(),
            hold: given,
            kind: charge.kind,
            forget: charge.forget.as_millis(),
        });
        let slot = lock(&self.inner.freq).remove(&charge.bid.0);
        if let Some(s) = slot {
            self.inner.apply(Op::FreqWon {
                w: s.w,
                r: s.r,
                window_ms: s.window_ms,
                bid: charge.bid,
                at: self.inner.now().as_millis(),
            });
        }
    }

    fn abort(&self, charge: &Charge) {
        self.inner.local.abort(charge);
        let claim = lock(&self.inner.claims).remove(&charge.bid.0).unwrap_or(0);
        self.inner.apply(Op::Abort {
            bid: charge.bid,
            keys: charge.keys.clone(),
            day: charge.day.days_since_epoch(),
            claim,
        });
    }

    fn expire(&self, now: Timestamp) -> Expired {
        let e = self.inner.local.expire(now);
        self.sweep_freq(now);
        e
    }

    fn expiry_steps(&self) -> usize {
        self.inner.local.expiry_steps()
    }

    fn expire_step(&self, now: Timestamp, step: usize) -> (Expired, bool) {
        let (e, done) = self.inner.local.expire_step(now, step);
        if done && step + 1 == self.expiry_steps() {
            self.sweep_freq(now);
        }
        (e, done)
    }

    fn spent(&self, key: &SpendKey, day: Date) -> Spent {
        let local = self.inner.local.spent(key, day);
        let d = day.days_since_epoch();
        let cached = if self.inner.opts.synchronous {
            let inner = self.inner.clone();
            let k = key.clone();
            self.block(async move { worker::read(&inner, &k, d).await })
                .ok()
        } else {
            let c = lock(&self.inner.cache).get(&(key.clone(), d)).copied();
            if c.is_none() {
                lock(&self.inner.cache).insert((key.clone(), d), Cached::default());
            }
            c
        }
        .unwrap_or_default();
        Spent {
            today: Micros(cached.day),
            lifetime: Micros(cached.life),
            held_today: local.held_today,
            held: local.held,
            over_today: Micros(cached.over),
        }
    }

    fn frequency_allows(
        &self,
        user: &str,
        line_item: &SpendKey,
        cap: u32,
        window_ms: i64,
        now: Timestamp,
    ) -> bool {
        // This replica's count; the cluster's is checked when a capped bid
        // is confirmed before it goes out.
        self.inner
            .local
            .frequency_allows(user, line_item, cap, window_ms, now)
    }

    fn frequency_windows_held(&self) -> usize {
        // This replica's windows for its bids in flight, under the same
        // bound as the embedded ledger's.
        self.inner.local.frequency_windows_held()
    }

    fn frequency_allows_everywhere(
        &self,
        user: &str,
        line_item: &SpendKey,
        cap: u32,
        window_ms: i64,
        now: Timestamp,
    ) -> bool {
        if !self.frequency_allows(user, line_item, cap, window_ms, now) {
            return false;
        }
        // Redis away: what this replica counts (budgeted line items say
        // `state_unavailable` meanwhile), at once.
        if self.inner.unavailable() {
            return true;
        }
        // What the confirming script counts: impressions within the window
        // and slots of bids still in flight, on every replica. One round
        // trip, bounded in time, and never taken as Redis failing: an
        // admin's read must not stop the bidding.
        let (w, r) = self.inner.keys.frequency(line_item, user);
        let inner = self.inner.clone();
        let at = now.as_millis();
        let counted = self.block(async move {
            let mut conn = inner.connection().await.ok()?;
            let mut pipe = redis::pipe();
            pipe.cmd("ZCOUNT")
                .arg(&w)
                .arg(at.saturating_sub(window_ms))
                .arg("+inf")
                .cmd("ZCOUNT")
                .arg(&r)
                .arg(format!("({at}"))
                .arg("+inf");
            let read = pipe.query_async::<(u64, u64)>(&mut conn);
            match tokio::time::timeout(inner.opts.timeout, read).await {
                Ok(Ok((shown, flying))) => Some(shown.saturating_add(flying)),
                _ => None,
            }
        });
        counted.is_none_or(|n| n < u64::from(cap))
    }

    fn budget_kind(&self, line_item: &str) -> Option<BudgetKind> {
        if let Some(k) = self.inner.local.budget_kind(line_item) {
            return Some(k);
        }
        // What any replica charged under, as last read from Redis; a
        // synchronous ledger reads it now.
        let key = SpendKey::line_item(line_item);
        if self.inner.opts.synchronous {
            let inner = self.inner.clone();
            return self
                .block(async move { worker::kind(&inner, &key).await })
                .ok()
                .flatten();
        }
        let day = self.inner.now().date().days_since_epoch();
        let mut cache = lock(&self.inner.cache);
        match cache.get(&(key.clone(), day)) {
            Some(c) => c.kind,
            None => {
                cache.insert((key, day), Cached::default());
                None
            }
        }
    }

    /// A reload's check must not take a line item another replica spent
    /// under for one nothing spent under because this replica has not read
    /// it yet: the asynchronous path's cache miss answered none, and a type
    /// change or a move a restart refuses passed (a leftover of stop 64).
    /// In a few round trips for the lot: with Redis away, a reload waits
    /// out its timeout once a batch, then checks with what it knows.
    fn budget_kinds_now(&self, line_items: &[&str]) -> HashMap<String, BudgetKind> {
        let mut out = HashMap::new();
        let mut ask = Vec::new();
        for id in line_items {
            match self.inner.local.budget_kind(id) {
                Some(k) => {
                    out.insert(id.to_string(), k);
                }
                None => ask.push(id.to_string()),
            }
        }
        if ask.is_empty() {
            return out;
        }
        let keys: Vec<SpendKey> = ask.iter().map(|id| SpendKey::line_item(id)).collect();
        let inner = self.inner.clone();
        match self.block(async move { worker::kinds(&inner, &keys).await }) {
            Ok(kinds) => {
                for (id, kind) in ask.into_iter().zip(kinds) {
                    if let Some(k) = kind {
                        out.insert(id, k);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "budget types not read from Redis for a config check: checked against what this replica knows");
                for id in ask {
                    if let Some(k) = self.budget_kind(&id) {
                        out.insert(id, k);
                    }
                }
            }
        }
        out
    }

    fn late_share_ppm(&self) -> u32 {
        self.inner.local.late_share_ppm()
    }

    /// The bids this replica won and has not yet seen billed: they hold
    /// their cost under its leases until charged (here or elsewhere) or
    /// forgotten. Without them in the holds file, a restart retired those
    /// leases after `retire_ms` and other replicas leased the same budget
    /// again while the billing notices were still to come.
    fn bought(&self) -> Vec<ledger::Bought> {
        self.inner.local.bought()
    }

    /// Only the bought bids: the leases of this replica's other holds stay
    /// counted in Redis after it stops (`RECLAIM`).
    fn holds_and_bought(&self) -> (Vec<ledger::Holding>, Vec<ledger::Bought>) {
        (Vec::new(), self.inner.local.bought())
    }

    /// Takes the bought bids of this replica's previous run on here, and
    /// has its leases under their keys and days cover what they hold
    /// again: once the previous run's leases are reclaimed at the start
    /// (`RESET`), by the worker; at once when that is done already (a
    /// synchronous ledger).
    fn carry_bought(&self, bought: &[ledger::Bought], now: Timestamp) -> usize {
        let taken = self.inner.local.carry_bought(bought, now);
        if taken == 0 {
            return 0;
        }
        {
            let mut keep = lock(&self.inner.keep);
            let keep = &mut *keep;
            let mut seen: std::collections::HashSet<(SpendKey, i64)> =
                keep.keys.iter().cloned().collect();
            for b in bought {
                keep.bids.push_back(b.bid);
                for key in &b.keys {
                    let at = (key.clone(), b.day.days_since_epoch());
                    if seen.insert(at.clone()) {
                        keep.keys.push_back(at);
                    }
                }
            }
        }
        if self.inner.opts.synchronous {
            // What a pass does is bounded: as many as it takes.
            let inner = self.inner.clone();
            let kept = self.block(async move {
                while !lock(&inner.keep).is_empty() {
                    worker::keep_leases(&inner).await?;
                }
                Ok::<(), String>(())
            });
            if let Err(e) = kept {
                tracing::warn!(error = %e, "the leases of bids bought before the restart are kept later");
            }
        } else {
            self.inner.wake.notify_one();
        }
        taken
    }

    fn restore(&self, charge: &Charge, now: Timestamp) {
        self.inner.local.restore(charge, now);
        // A charge on disk whose commit may not have reached Redis (a crash
        // between the two): committing again is a no-op once it has.
        self.inner.queue(Op::Commit {
            bid: charge.bid,
            keys: charge.keys.clone(),
            day: charge.day.days_since_epoch(),
            hold_day: charge.day.days_since_epoch(),
            over: charge.over_delivery.as_i64(),
            hold: 0,
            kind: charge.kind,
            forget: charge.forget.as_millis(),
        });
    }

    fn import(&self, item: Durable, now: Timestamp) {
        // Only this replica's view: Redis keeps the cluster's spend.
        self.inner.local.import(item, now);
    }

    fn export(&self, now: Timestamp, out: &mut dyn FnMut(Durable)) {
        self.inner.local.export(now, out);
    }

    fn health(&self) -> Health {
        let unavailable = self.inner.health.reason(self.inner.opts.stale_after_ms);
        Health {
            unavailable,
            never_available: !self.inner.health.been_up.load(Ordering::Relaxed),
        }
    }

    fn close(&self) {
        let inner = self.inner.clone();
        let _ = self.block(async move {
            tokio::time::timeout(Duration::from_secs(3), worker::close(&inner)).await
        });
    }
}

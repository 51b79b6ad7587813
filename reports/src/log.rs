//! The event journal: `events/YYYY-MM-DD.events` in the state directory,
//! one file per UTC day of the events it holds.
//!
//! One writer thread owns the files and the attribution state, so the bid
//! path never waits on it: a bid or a no-bid is a count, added where it
//! happens to a tally of its thread's own (see [`Tallies`]), which the
//! writer folds in and writes once a second per (day, ad) or (day,
//! exchange, reason); a tracked impression
//! or click is a record of its own (attribution reads them back at start);
//! an attributed view or purchase is a record, acknowledged to the uploader
//! only once it is on disk. Messages beyond the queue's bound are dropped
//! and counted rather than queued without limit. Every batch is one write
//! and one fsync per file; a failed write is cut back so no half line meets
//! the next one.
//!
//! Start-up reads the days any attribution window still covers to rebuild
//! the last touches and the conversions already counted.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use config::{Date, Micros, Timestamp};

use crate::attribution::{Attributor, Catalog, Conversion, Outcome};
use crate::fact::{Dims, Interner};
use crate::record::{Kind, Record, MAGIC};

const DAY_MS: i64 = 86_400_000;
/// The longest attribution window the config accepts.
const MAX_WINDOW_DAYS: i64 = 90;
const MAX_BATCH: usize = 8192;
/// Beyond the notice lifetime, how long a conversion waits for a touch
/// before it: the settling of waiting touches runs about once a second,
/// and with Redis asks it about a bounded number each round.
const PARK_MARGIN_MS: i64 = 10 * 60_000;
/// After a round that found work, the writer sleeps this long before it
/// looks again, rather than waiting on the queue: a writer waiting on the
/// queue is woken by every send (a futex wake and two context switches per
/// bid, the largest kernel cost of a bid under load), while one asleep is
/// woken by none, and finds a round's jobs together when it looks. Idle,
/// it waits on the queue as before, so the first job after a lull is not
/// delayed.
const BUSY_PAUSE: Duration = Duration::from_millis(2);
/// Other replicas' lines waiting for the writer, at most.
const PEER_QUEUE_BYTES: u64 = 64 << 20;
/// Files kept open: today's, yesterday's (bids around midnight) and one
/// for conversions dated in the past.
const OPEN_FILES: usize = 3;

/// The events directory inside a state directory.
pub fn dir_of(state: &Path) -> PathBuf {
    state.join("events")
}

/// The directories whose files make the reports: this replica's state
/// directory first, then the copies of other replicas' files kept under
/// its `peers/` (a replica sharing state through Redis keeps one
/// directory per other replica there, byte for byte what that replica
/// wrote). One replica alone has only its own.
pub fn roots(state: &Path) -> Vec<PathBuf> {
    let mut out = vec![state.to_path_buf()];
    let mut peers: Vec<PathBuf> = std::fs::read_dir(state.join(PEERS))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    peers.sort();
    out.extend(peers);
    out
}

/// Where the copies of other replicas' report files are kept.
pub const PEERS: &str = "peers";

pub(crate) fn day_file(dir: &Path, day: Date) -> PathBuf {
    dir.join(format!("{day}.events"))
}

/// The days that have an event file in `dir`.
pub(crate) fn days(dir: &Path) -> io::Result<Vec<Date>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let name = entry?.file_name();
        if let Some(d) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".events"))
            .and_then(|d| Date::parse(d).ok())
        {
            out.push(d);
        }
    }
    out.sort();
    Ok(out)
}

/// Tuning of the writer.
#[derive(Clone, Debug)]
pub struct Options {
    /// Messages waiting for the writer; more are dropped and counted.
    pub queue: usize,
    /// Last touches (and conversions) remembered for attribution.
    pub max_entries: usize,
    /// How often bid and no-bid counts are written.
    pub flush_every: Duration,
    /// How long a tracking URL is accepted: impressions and clicks of this
    /// long before a restart are read back, so one replayed after it does
    /// not count again.
    pub track_ttl: Duration,
    /// Where the writer says how far each day's file is durable (for the
    /// report mirror: bytes past it may still be cut back).
    pub synced: Option<ledger::synced::Synced>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            queue: 65_536,
            max_entries: 4_000_000,
            flush_every: Duration::from_secs(1),
            track_ttl: Duration::from_secs(24 * 3600),
            synced: None,
        }
    }
}

/// What the writer has done, for metrics.
#[derive(Debug, Default)]
pub struct Stats {
    pub records: AtomicU64,
    pub dropped: AtomicU64,
    pub write_errors: AtomicU64,
    pub touches: AtomicU64,
    pub evicted: AtomicU64,
    /// Impressions and clicks counted before a restart and sent again
    /// after it: not counted twice.
    pub track_duplicates: AtomicU64,
    /// Past touches and conversions have been read back.
    pub rebuilt: std::sync::atomic::AtomicBool,
    pub rebuilt_records: AtomicU64,
    /// Bytes of other replicas' lines waiting for the writer.
    pub peer_queued: AtomicU64,
    /// Other replicas' lines not handed to attribution: too many waited
    /// (their copies on disk still make the reports, and a restart reads
    /// them back).
    pub peer_dropped: AtomicU64,
    /// Conversions attributed after they were answered unattributed: a
    /// touch before them was recorded later (see `Attributor::late`).
    pub late_attributed: AtomicU64,
}

/// What start-up read back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rebuilt {
    pub records: u64,
    pub skipped: u64,
    pub touches: usize,
}

/// A counted impression or click on its way to the journal.
struct Tracked {
    at_ms: i64,
    dims: Dims,
    user: u64,
    click: bool,
    bid: u128,
    /// The compact features the bid was priced with, when it was scored.
    features: Option<Arc<str>>,
}

/// What start-up reads back: last touches and conversions counted, and
/// the impressions and clicks still within their URLs' lifetime.
struct Past {
    attributor: Attributor,
    tracked: std::collections::HashSet<u64>,
}

fn track_key(bid: u128, click: bool) -> u64 {
    // The bid id's bits are random: folding them is as good as hashing.
    ((bid >> 64) as u64 ^ bid as u64).rotate_left(1) ^ u64::from(click)
}

type ConvertAck = tokio::sync::oneshot::Sender<io::Result<Vec<&'static str>>>;

enum Job {
    Track(Tracked),
    Convert(Vec<Conversion>, i64, ConvertAck),
    Catalog(Catalog),
    Flush(tokio::sync::oneshot::Sender<()>),
    /// Answered once the records sent before it are written, where they
    /// can be: unlike a flush it neither writes the counts nor waits for
    /// the read-back at start (records held for that stay in memory).
    Barrier(tokio::sync::oneshot::Sender<()>),
    /// Lines another replica wrote (from the copy of its files): its
    /// touches, conversions and tracked events count here too.
    Peer(Vec<u8>),
}

/// The journal's writer, as the bidder sees it.
pub struct EventLog {
    tx: SyncSender<Job>,
    tallies: Arc<[std::sync::Mutex<Tallies>]>,
    writer: std::thread::JoinHandle<()>,
    pub stats: Arc<Stats>,
    dir: PathBuf,
}

impl EventLog {
    /// Opens the events directory of the state directory `state` and
    /// starts the writer. The last touches and the conversions counted in
    /// the days the longest window allowed could still cover (before
    /// `now`) are read back on a thread of their own: the bidder serves
    /// meanwhile, events are written as they come, and views and purchases
    /// wait (their uploads with them) until it is done. Nothing is
    /// attributed before [`EventLog::set_catalog`] says which products are
    /// whose.
    pub fn open(state: &Path, now: Timestamp, options: Options) -> io::Result<EventLog> {
        let dir = dir_of(state);
        // Its records hold keyed user hashes and bid features: this user's
        // alone (an existing directory keeps its mode).
        ledger::journal::create_private_dir(&dir)?;
        let stats = Arc::new(Stats::default());
        let (done_tx, done_rx) = mpsc::channel();
        {
            let dirs: Vec<PathBuf> = roots(state).iter().map(|r| dir_of(r)).collect();
            let (dir, stats, max) = (dir.clone(), stats.clone(), options.max_entries);
            let ttl_ms = options.track_ttl.as_millis() as i64;
            std::thread::Builder::new()
                .name("events-rebuild".into())
                .spawn(move || {
                    let started = Instant::now();
                    let (past, rebuilt) = match rebuild(&dirs, now, max, ttl_ms) {
                        Ok(done) => done,
                        Err(e) => {
                            tracing::error!(
                                "{}: past touches could not be read back ({e}); attribution starts afresh",
                                dir.display()
                            );
                            let past = Past {
                                attributor: Attributor::new(max),
                                tracked: Default::default(),
                            };
                            (past, Rebuilt::default())
                        }
                    };
                    tracing::info!(
                        records = rebuilt.records,
                        skipped = rebuilt.skipped,
                        touches = rebuilt.touches,
                        millis = started.elapsed().as_millis() as u64,
                        "attribution touches read back from the event journal"
                    );
                    stats.touches.store(rebuilt.touches as u64, Ordering::Relaxed);
                    stats.rebuilt_records.store(rebuilt.records, Ordering::Relaxed);
                    let _ = done_tx.send(past);
                    stats.rebuilt.store(true, Ordering::Release);
                })?;
        }
        let (tx, rx) = mpsc::sync_channel(options.queue.max(1));
        let tallies: Arc<[std::sync::Mutex<Tallies>]> =
            (0..TALLIES).map(|_| Default::default()).collect();
        let writer = Writer {
            tallies: tallies.clone(),
            dir: dir.clone(),
            files: Vec::new(),
            attributor: None,
            rebuilding: Some(done_rx),
            pending: Vec::new(),
            before_restart: Default::default(),
            restarted: None,
            track_ttl: options.track_ttl,
            max_pending: options.max_entries / 4,
            lost_touches: 0,
            latest_ms: 0,
            deferred: Vec::new(),
            catalog: Catalog::default(),
            stats: stats.clone(),
            synced: options.synced.clone(),
            flush_every: options.flush_every,
            elsewhere: Default::default(),
            elsewhere_since: Instant::now(),
            peer_pending: Vec::new(),
            unwritten: Tallies::default(),
            unwritten_tracks: Default::default(),
        };
        let writer = std::thread::Builder::new()
            .name("events".into())
            .spawn(move || writer.run(rx))?;
        Ok(EventLog {
            tx,
            tallies,
            writer,
            stats,
            dir,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A bid sent at `at_ms` for the ad `dims`.
    pub fn bid(&self, at_ms: i64, dims: Dims) {
        add(&mut self.tally().bids, (day_of(at_ms), dims), at_ms, 1);
    }

    /// A request of `exchange` answered without a bid, for `reason`.
    pub fn no_bid(&self, at_ms: i64, exchange: Arc<str>, reason: &'static str) {
        let key = (day_of(at_ms), exchange, reason);
        add(&mut self.tally().no_bids, key, at_ms, 1);
    }

    /// This thread's tally.
    fn tally(&self) -> std::sync::MutexGuard<'_, Tallies> {
        thread_local! {
            static STRIPE: usize = {
                static NEXT: AtomicU64 = AtomicU64::new(0);
                NEXT.fetch_add(1, Ordering::Relaxed) as usize
            };
        }
        let i = STRIPE.with(|s| *s) % self.tallies.len();
        lock(&self.tallies[i])
    }

    /// A tracked impression or click of bid `bid`, counted once per bid by
    /// the caller in this process (the writer also drops one counted
    /// before a restart).
    pub fn track(&self, at_ms: i64, dims: Dims, user: u64, click: bool, bid: u128) {
        self.track_with(at_ms, dims, user, click, bid, None, None);
    }

    /// [`EventLog::track`], keeping the features the bid was priced with
    /// (compact text) in its record, for training. A full queue drops the
    /// event (and counts it so) at once, or, from a thread that may wait,
    /// once `until` passes: the caller gives a round of events one
    /// deadline, so a stalled writer holds the round up once, not once an
    /// event.
    #[allow(clippy::too_many_arguments)]
    pub fn track_with(
        &self,
        at_ms: i64,
        dims: Dims,
        user: u64,
        click: bool,
        bid: u128,
        features: Option<Arc<str>>,
        until: Option<std::time::Instant>,
    ) {
        let mut job = Job::Track(Tracked {
            at_ms,
            dims,
            user,
            click,
            bid,
            features,
        });
        loop {
            match self.tx.try_send(job) {
                Ok(()) => return,
                Err(TrySendError::Full(back))
                    if until.is_some_and(|u| std::time::Instant::now() < u) =>
                {
                    job = back;
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Err(_) => break,
            }
        }
        self.stats.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// The products and windows of the config now serving.
    pub fn set_catalog(&self, catalog: Catalog) {
        // Not droppable: waits for room.
        let _ = self.tx.send(Job::Catalog(catalog));
    }

    /// Hands the writer a job it must not drop, without blocking the
    /// caller's thread while the queue is full (the admin port's runtime
    /// has one thread: its probes must keep answering under load).
    async fn send_waiting(&self, mut job: Job) -> io::Result<()> {
        let start = Instant::now();
        loop {
            match self.tx.try_send(job) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Full(j)) if start.elapsed() < Duration::from_secs(10) => {
                    job = j;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(TrySendError::Full(_)) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the event writer is behind; try again",
                    ))
                }
                Err(TrySendError::Disconnected(_)) => {
                    return Err(io::Error::other("event writer stopped"))
                }
            }
        }
    }

    /// Attributes conversions at `now_ms`; resolves once their records are
    /// on disk, with each one's outcome (`attributed`, `unattributed`,
    /// `duplicate`), or with an error when any could not be written (those
    /// are not counted: a retry of the batch counts them, and only them).
    pub async fn convert(
        &self,
        items: Vec<Conversion>,
        now_ms: i64,
    ) -> io::Result<Vec<&'static str>> {
        let (ack, done) = tokio::sync::oneshot::channel();
        self.send_waiting(Job::Convert(items, now_ms, ack)).await?;
        done.await
            .unwrap_or_else(|_| Err(io::Error::other("event writer stopped")))
    }

    /// Whether the writer thread has ended (a panic): no event is written
    /// again by this process, and only a restart brings it back (liveness).
    pub fn stopped(&self) -> bool {
        self.writer.is_finished()
    }

    /// Resolves once everything sent before is written, counts included.
    pub async fn flush(&self) {
        let (ack, done) = tokio::sync::oneshot::channel();
        if self.send_waiting(Job::Flush(ack)).await.is_ok() {
            let _ = done.await;
        }
    }

    /// Resolves once the records sent before are written (the tracked
    /// clicks a browser will not send again), without writing the counts
    /// or waiting for the read-back at start, as [`EventLog::flush`] does.
    pub async fn barrier(&self) {
        let (ack, done) = tokio::sync::oneshot::channel();
        if self.send_waiting(Job::Barrier(ack)).await.is_ok() {
            let _ = done.await;
        }
    }

    /// Lines another replica wrote to its event journal (whole lines, as
    /// copied): attribution learns its touches and the conversions it
    /// counted, and an impression or click it counted is not counted here
    /// again. Dropped (and counted) when the queue is full: the copy on
    /// disk still makes the reports, and a restart reads it back.
    pub fn peer_lines(&self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        // Bounded by bytes, not only by the queue's count: a piece is up to
        // 256 KB, and a writer behind must not hold gigabytes of them.
        let len = bytes.len() as u64;
        let queued = self.stats.peer_queued.fetch_add(len, Ordering::Relaxed);
        if queued + len > PEER_QUEUE_BYTES || self.tx.try_send(Job::Peer(bytes.to_vec())).is_err() {
            self.stats.peer_queued.fetch_sub(len, Ordering::Relaxed);
            self.stats.peer_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Writes what is pending and stops the writer.
    pub fn close(self) {
        drop(self.tx);
        let _ = self.writer.join();
    }
}

/// What attribution learns from a journaled record, read back or copied
/// from another replica: an impression or click is a touch, a view or
/// purchase a conversion already counted. Returns an impression's or
/// click's track key, when its record carries its bid id (in the order id
/// column).
fn learn(a: &mut Attributor, r: &Record, keep: i64, now_ms: i64) -> Option<u64> {
    match r.kind {
        Kind::Impression | Kind::Click => {
            let click = r.kind == Kind::Click;
            a.touch(r.user, &r.dims, r.at_ms, click, keep);
            let bid = u128::from_str_radix(&r.order_id, 16).ok()?;
            Some(track_key(bid, click))
        }
        Kind::View | Kind::Purchase => {
            a.remember(r, now_ms, keep);
            None
        }
        Kind::Bid | Kind::NoBid => None,
    }
}

/// Reads back the touches and the conversions counted of the days a window
/// may cover.
fn rebuild(
    dirs: &[PathBuf],
    now: Timestamp,
    max_entries: usize,
    track_ttl_ms: i64,
) -> io::Result<(Past, Rebuilt)> {
    let mut attributor = Attributor::new(max_entries);
    let mut tracked = std::collections::HashSet::new();
    let recent = now.as_millis().saturating_sub(track_ttl_ms);
    let keep = MAX_WINDOW_DAYS * DAY_MS + crate::attribution::LATE_UPLOAD_MS;
    let from = Timestamp(now.as_millis().saturating_sub(keep)).date();
    let mut rebuilt = Rebuilt::default();
    let mut interner = Interner::default();
    let listed: Vec<(&PathBuf, Date)> = dirs
        .iter()
        .map(|dir| Ok(days(dir)?.into_iter().map(move |d| (dir, d))))
        .collect::<io::Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .filter(|(_, d)| *d >= from)
        .collect();
    for (dir, day) in listed {
        let path = day_file(dir, day);
        // One unreadable day loses its own touches, not every day's.
        let read = read_day(
            &path,
            &mut interner,
            |r| {
                rebuilt.records += 1;
                if let Some(k) = learn(&mut attributor, &r, keep, now.as_millis()) {
                    if r.at_ms >= recent && tracked.len() < max_entries {
                        tracked.insert(k);
                    }
                }
            },
            |_| rebuilt.skipped += 1,
        );
        if let Err(e) = read {
            tracing::error!("{}: not read back: {e}", path.display());
        }
    }
    rebuilt.touches = attributor.touches();
    Ok((
        Past {
            attributor,
            tracked,
        },
        rebuilt,
    ))
}

/// One day's file of the event journal, as [`journal_days`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalDay {
    pub day: Date,
    pub path: PathBuf,
    /// Its length when listed (for a progress bar; it may grow).
    pub len: u64,
}

/// The days of the event journal in `state` from `from` to `to` (either
/// open), oldest first; with other replicas' copies ([`roots`]), a day
/// comes once per replica that has it.
pub fn journal_days(
    state: &Path,
    from: Option<Date>,
    to: Option<Date>,
) -> io::Result<Vec<JournalDay>> {
    let mut out = Vec::new();
    for root in roots(state) {
        let dir = dir_of(&root);
        out.extend(
            days(&dir)?
                .into_iter()
                .filter(|d| from.is_none_or(|f| *d >= f) && to.is_none_or(|t| *d <= t))
                .map(|day| {
                    let path = day_file(&dir, day);
                    let len = std::fs::metadata(&path).map_or(0, |m| m.len());
                    JournalDay { day, path, len }
                }),
        );
    }
    // Stable: a day's files stay in the order of their roots.
    out.sort_by_key(|d| d.day);
    Ok(out)
}

/// Reads one listed day (for readers outside the bidder's own, such as
/// `bidder train`): `record` for each whole record, `bad` for each line
/// that is not one, `progress` with the bytes of each line read. Returns
/// the bytes read.
pub fn read_journal_day(
    day: &JournalDay,
    interner: &mut Interner,
    record: impl FnMut(Record),
    bad: impl FnMut(&str),
    progress: impl FnMut(u64),
) -> io::Result<u64> {
    read_day_with(&day.path, interner, record, bad, progress)
}

/// Reads one day's file: `record` for each whole record, `bad` for each
/// line that is not one (a write never finished).
pub(crate) fn read_day(
    path: &Path,
    interner: &mut Interner,
    record: impl FnMut(Record),
    bad: impl FnMut(&str),
) -> io::Result<u64> {
    read_day_with(path, interner, record, bad, |_| {})
}

/// [`read_day`], telling `progress` the bytes of each line read.
fn read_day_with(
    path: &Path,
    interner: &mut Interner,
    mut record: impl FnMut(Record),
    mut bad: impl FnMut(&str),
    mut progress: impl FnMut(u64),
) -> io::Result<u64> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut reader = BufReader::with_capacity(1 << 20, f);
    let mut buf = Vec::new();
    let mut read = 0u64;
    // A damaged line (even one that is not UTF-8) is skipped, not fatal.
    while let Some((n, whole)) = ledger::journal::next_line(&mut reader, &mut buf)? {
        if !whole {
            break;
        }
        read += n as u64;
        progress(n as u64);
        let text = std::str::from_utf8(&buf)
            .unwrap_or_default()
            .trim_end_matches('\n');
        if text == MAGIC {
            continue;
        }
        match Record::parse(text, interner) {
            Some(r) => record(r),
            None => bad(text),
        }
    }
    Ok(read)
}

struct OpenDay {
    day: Date,
    file: File,
    /// Up to the last whole line written.
    good: u64,
    /// A failed write is still to be cut back.
    dirty: bool,
    buf: String,
    used: Instant,
}

/// Counts summed until the next write: (first time seen, count) by key.
type Counts<K> = HashMap<K, (i64, u64), foldhash::fast::FixedState>;

/// Tallies threads add their bids and no-bids to, a thread's chosen once,
/// round robin: the bidder's few request threads get one each (threads
/// past the sixteenth share). A count per bid request used to be a message
/// to the writer, and that message (a queue slot, then the writer hashing
/// and dropping the ad's eight shared strings on another core) cost 5-10%
/// of a bid request's CPU in the server. Now the thread adds to its tally,
/// under a lock the writer takes only to swap the tally out when it writes
/// the counts, and drops the strings where it cloned them.
const TALLIES: usize = 16;

#[derive(Default)]
struct Tallies {
    /// Counts by bid day and ad: one lookup per bid sent, keyed by config
    /// ids (the exchange's own keyword text never gets here), so hashed
    /// fast rather than DoS-resistant.
    bids: Counts<(i64, Dims)>,
    no_bids: Counts<(i64, Arc<str>, &'static str)>,
}

/// Adds `n` to `key`'s count, which keeps the earliest time it was seen.
fn add<K: std::hash::Hash + Eq>(counts: &mut Counts<K>, key: K, at_ms: i64, n: u64) {
    let e = counts.entry(key).or_insert((at_ms, 0));
    e.0 = e.0.min(at_ms);
    e.1 += n;
}

/// Locks a tally; one whose holder panicked is still a set of counts.
fn lock(t: &std::sync::Mutex<Tallies>) -> std::sync::MutexGuard<'_, Tallies> {
    t.lock().unwrap_or_else(|p| p.into_inner())
}

struct Writer {
    tallies: Arc<[std::sync::Mutex<Tallies>]>,
    dir: PathBuf,
    files: Vec<OpenDay>,
    /// `None` until the past has been read back.
    attributor: Option<Attributor>,
    rebuilding: Option<mpsc::Receiver<Past>>,
    /// Impressions and clicks that came meanwhile, up to `max_pending`:
    /// written once it is known whether they were counted before.
    pending: Vec<Tracked>,
    /// Impressions and clicks counted before the restart, still within
    /// their URLs' lifetime.
    before_restart: std::collections::HashSet<u64>,
    /// When that set was read back; it is let go once its URLs expired.
    restarted: Option<(Instant, Duration)>,
    track_ttl: Duration,
    max_pending: usize,
    /// Touches past `max_pending`, lost to attribution.
    lost_touches: u64,
    /// The latest time the writer has been told of (a conversion's upload,
    /// a touch): its clock for what a touch recorded late may still find.
    latest_ms: i64,
    /// Conversions waiting for the past.
    deferred: Vec<(Vec<Conversion>, i64, ConvertAck)>,
    catalog: Catalog,
    stats: Arc<Stats>,
    synced: Option<ledger::synced::Synced>,
    flush_every: Duration,
    /// Impressions and clicks other replicas counted, by track key: the
    /// same URL sent here is not counted again. Two generations, turned
    /// every URL lifetime (so each key is kept one to two lifetimes),
    /// bounded by `max_pending` each.
    elsewhere: [std::collections::HashSet<u64>; 2],
    elsewhere_since: Instant,
    /// Other replicas' lines that came before the past was read back.
    peer_pending: Vec<Vec<u8>>,
    /// Bid and no-bid counts whose records could not be written (a day's
    /// file that would not open, a write that failed): added to the next
    /// round's, so that a full disk for a while delays the counts instead
    /// of losing them. Up to [`MAX_UNWRITTEN`] keys.
    unwritten: Tallies,
    /// Impression and click records whose write failed, oldest first:
    /// written again with the next round that writes the counts. A click was answered once its
    /// round ended, written or not, and a disk full for a few seconds lost
    /// every impression and click of those seconds from the reports for
    /// good. Up to [`MAX_UNWRITTEN`] records.
    unwritten_tracks: std::collections::VecDeque<Record>,
}

/// Keys of counts kept for a retry: a disk full for days, with new ads
/// and exchanges each day, must not grow the writer without bound. Counts
/// past it are lost, and counted as dropped.
const MAX_UNWRITTEN: usize = 100_000;

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Job>) {
        let mut last_flush = Instant::now();
        loop {
            let mut wait = self.flush_every.saturating_sub(last_flush.elapsed());
            if self.rebuilding.is_some() {
                wait = wait.min(Duration::from_millis(50));
            }
            let mut batch = Vec::new();
            let mut closed = false;
            match rx.recv_timeout(wait) {
                Ok(job) => batch.push(job),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => closed = true,
            }
            while !closed && batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => closed = true,
                }
            }
            if closed {
                // Conversions waiting for the past are attributed before
                // the writer stops.
                let waited = self.take_rebuilt(true);
                batch.splice(0..0, waited);
            }
            let flush_counts = closed
                || last_flush.elapsed() >= self.flush_every
                || batch.iter().any(|j| matches!(j, Job::Flush(_)));
            // A full batch means a backlog: take the next one at once.
            let pause = !batch.is_empty() && batch.len() < MAX_BATCH;
            self.handle(batch, flush_counts);
            if flush_counts {
                last_flush = Instant::now();
            }
            if closed {
                // What the disk never took goes with the process: said,
                // and counted as dropped.
                let left = self.unwritten_tracks.len()
                    + self.unwritten.bids.len()
                    + self.unwritten.no_bids.len();
                if left > 0 {
                    self.stats.dropped.fetch_add(left as u64, Ordering::Relaxed);
                    tracing::error!(
                        records = self.unwritten_tracks.len(),
                        counts = self.unwritten.bids.len() + self.unwritten.no_bids.len(),
                        "event records and counts never written: lost with the process"
                    );
                }
                return;
            }
            if pause {
                std::thread::sleep(BUSY_PAUSE);
            }
        }
    }

    /// Takes the past once it has been read back (waiting for it when
    /// `block`): touches seen meanwhile go on top, and the conversions
    /// that waited are attributed now.
    fn take_rebuilt(&mut self, block: bool) -> Vec<Job> {
        let Some(rx) = &self.rebuilding else {
            return Vec::new();
        };
        let got = if block {
            rx.recv().ok()
        } else {
            match rx.try_recv() {
                Ok(a) => Some(a),
                Err(mpsc::TryRecvError::Empty) => return Vec::new(),
                Err(mpsc::TryRecvError::Disconnected) => None,
            }
        };
        self.rebuilding = None;
        let past = got.unwrap_or_else(|| Past {
            attributor: Attributor::new(self.max_pending.max(16) * 4),
            tracked: Default::default(),
        });
        let mut attributor = past.attributor;
        // A touch is recorded at most a notice lifetime after it happened
        // (an impression waiting for its bid's billing notice): until
        // then a conversion without one may still find it.
        attributor.park_for(
            i64::try_from(self.track_ttl.as_millis())
                .unwrap_or(i64::MAX)
                .saturating_add(PARK_MARGIN_MS),
        );
        self.attributor = Some(attributor);
        self.before_restart = past.tracked;
        self.restarted = Some((Instant::now(), self.track_ttl));
        // What waited goes first, in the order it came.
        let tracks = std::mem::take(&mut self.pending)
            .into_iter()
            .map(Job::Track);
        let converts = self
            .deferred
            .drain(..)
            .map(|(items, now, ack)| Job::Convert(items, now, ack));
        tracks.chain(converts).collect()
    }

    /// What the threads counted since the last round, summed. A count
    /// made before a flush was asked for (its request answered, say) is in
    /// a tally under a lock taken here, so the flush writes it.
    fn fold_tallies(&self) -> Tallies {
        let mut sum = Tallies::default();
        for tally in self.tallies.iter() {
            // Taken whole: the counting thread waits for a swap, not a fold.
            let t = std::mem::take(&mut *lock(tally));
            for (key, (at, n)) in t.bids {
                add(&mut sum.bids, key, at, n);
            }
            for (key, (at, n)) in t.no_bids {
                add(&mut sum.no_bids, key, at, n);
            }
        }
        sum
    }

    fn handle(&mut self, mut batch: Vec<Job>, flush_counts: bool) {
        // A flush promises that what was sent before is written: impressions
        // and clicks held for the read-back included, so it waits for it.
        let must_write = batch.iter().any(|j| matches!(j, Job::Flush(_)));
        let waited = self.take_rebuilt(must_write);
        if !waited.is_empty() {
            batch.splice(0..0, waited);
        }
        let keep = self.catalog.keep_ms().max(DAY_MS);
        // Per upload: its outcomes, its records, the days whose file could
        // not be opened.
        type Pending = (ConvertAck, Vec<&'static str>, Vec<Record>, Vec<Date>);
        let mut acks: Vec<Pending> = Vec::new();
        let mut flushes = Vec::new();
        // This round's impression and click records: first those whose
        // write failed before, in the order they came, on the rounds that
        // write the counts (a second apart): every round, under pixel load
        // every few milliseconds, a failing disk was asked to take the
        // whole backlog again. A day whose file would not open is tried
        // once a round, not once a record.
        let mut tracks = Vec::new();
        let mut unopened: Vec<Date> = Vec::new();
        if flush_counts {
            for r in std::mem::take(&mut self.unwritten_tracks) {
                self.push_track(r, &mut tracks, &mut unopened);
            }
        }
        for job in batch {
            match job {
                Job::Track(t) => {
                    let Some(a) = &mut self.attributor else {
                        if self.pending.len() < self.max_pending {
                            self.pending.push(t);
                        } else {
                            // No room to wait: written unchecked, and its
                            // touch lost to attribution.
                            self.lost_touches += 1;
                            self.push_track(track_record(t), &mut tracks, &mut unopened);
                        }
                        continue;
                    };
                    let key = track_key(t.bid, t.click);
                    if self.before_restart.contains(&key)
                        || self.elsewhere.iter().any(|s| s.contains(&key))
                    {
                        self.stats.track_duplicates.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    a.touch(t.user, &t.dims, t.at_ms, t.click, keep);
                    self.latest_ms = self.latest_ms.max(t.at_ms);
                    let late = match a.parked() {
                        0 => Vec::new(),
                        _ => a.late(t.user, t.at_ms, &t.dims, &self.catalog, self.latest_ms),
                    };
                    self.push_track(track_record(t), &mut tracks, &mut unopened);
                    self.push_late(late, &mut tracks, &mut unopened);
                }
                Job::Convert(items, now_ms, ack) => {
                    self.latest_ms = self.latest_ms.max(now_ms);
                    let Some(attributor) = &mut self.attributor else {
                        self.deferred.push((items, now_ms, ack));
                        continue;
                    };
                    let mut labels = Vec::with_capacity(items.len());
                    let mut written = Vec::new();
                    for c in &items {
                        let outcome = attributor.attribute(c, &self.catalog, now_ms);
                        labels.push(outcome.label());
                        if let Outcome::Attributed(r) = outcome {
                            written.push(r);
                        }
                    }
                    let mut unopened = Vec::new();
                    for r in &written {
                        if push_to(
                            &mut self.files,
                            &self.dir,
                            r.clone(),
                            &self.stats,
                            self.synced.as_ref(),
                        )
                        .is_err()
                        {
                            unopened.push(Timestamp(r.at_ms).date());
                        }
                    }
                    acks.push((ack, labels, written, unopened));
                }
                Job::Catalog(c) => self.catalog = c,
                Job::Flush(ack) | Job::Barrier(ack) => flushes.push(ack),
                Job::Peer(bytes) => {
                    if self.attributor.is_none() {
                        // The read-back reads the copies too; what came
                        // meanwhile is applied on top (twice is harmless).
                        // Its bytes stay counted as queued until then.
                        self.peer_pending.push(bytes);
                        continue;
                    }
                    self.apply_peer(&bytes, keep);
                }
            }
        }
        if self.attributor.is_some() && !self.peer_pending.is_empty() {
            for bytes in std::mem::take(&mut self.peer_pending) {
                self.apply_peer(&bytes, keep);
            }
        }
        // Each generation turns after a whole lifetime: one remembered
        // just before a turn is kept a lifetime more (half of one let a
        // URL replayed within its lifetime count again).
        if self.elsewhere_since.elapsed() > self.track_ttl {
            self.elsewhere.swap(0, 1);
            self.elsewhere[0].clear();
            self.elsewhere_since = Instant::now();
        }
        if let Some((at, ttl)) = self.restarted {
            if at.elapsed() > ttl {
                // Every URL counted before the restart has expired.
                self.before_restart = Default::default();
                self.restarted = None;
            }
        }
        // The counts queued in this round's buffers: those of a day whose
        // write fails are kept for the next round.
        let mut queued = Tallies::default();
        if flush_counts {
            let mut counts = self.fold_tallies();
            let unwritten = std::mem::take(&mut self.unwritten);
            for (key, (at, n)) in unwritten.bids {
                add(&mut counts.bids, key, at, n);
            }
            for (key, (at, n)) in unwritten.no_bids {
                add(&mut counts.no_bids, key, at, n);
            }
            for (key, (at, n)) in counts.bids {
                let r = count(Kind::Bid, at, key.1.clone(), n);
                let to = match push_to(
                    &mut self.files,
                    &self.dir,
                    r,
                    &self.stats,
                    self.synced.as_ref(),
                ) {
                    Ok(()) => &mut queued.bids,
                    Err(_) => &mut self.unwritten.bids,
                };
                add(to, key, at, n);
            }
            for (key, (at, n)) in counts.no_bids {
                let dims = Dims {
                    exchange: key.1.clone(),
                    product: key.2.into(),
                    ..Dims::default()
                };
                let r = count(Kind::NoBid, at, dims, n);
                let to = match push_to(
                    &mut self.files,
                    &self.dir,
                    r,
                    &self.stats,
                    self.synced.as_ref(),
                ) {
                    Ok(()) => &mut queued.no_bids,
                    Err(_) => &mut self.unwritten.no_bids,
                };
                add(to, key, at, n);
            }
        }
        let failed = self.write_all();
        if !failed.is_empty() {
            let lost = |at: i64| failed.iter().any(|(d, _)| *d == Timestamp(at).date());
            // In the order they came: a day that would not open kept
            // its records here as they came too.
            let mut kept: std::collections::VecDeque<Record> =
                tracks.into_iter().filter(|r| lost(r.at_ms)).collect();
            kept.extend(std::mem::take(&mut self.unwritten_tracks));
            kept.make_contiguous().sort_by_key(|r| r.at_ms);
            self.unwritten_tracks = kept;
            for (key, (at, n)) in queued.bids {
                if lost(at) {
                    add(&mut self.unwritten.bids, key, at, n);
                }
            }
            for (key, (at, n)) in queued.no_bids {
                if lost(at) {
                    add(&mut self.unwritten.no_bids, key, at, n);
                }
            }
        }
        self.bound_unwritten();
        for (ack, labels, written, unopened) in acks {
            let lost = |r: &Record| {
                let day = Timestamp(r.at_ms).date();
                unopened.contains(&day) || failed.iter().any(|(d, _)| *d == day)
            };
            if !written.iter().any(lost) {
                let _ = ack.send(Ok(labels));
                continue;
            }
            // Not counted: the uploader's retry attributes them (those
            // written are duplicates then, as they should be).
            if let Some(a) = &mut self.attributor {
                for r in written.iter().filter(|r| lost(r)) {
                    a.forget(r);
                }
            }
            let why = failed.first().map_or_else(
                || "a day's event file could not be opened".to_owned(),
                |(_, e)| e.clone(),
            );
            let _ = ack.send(Err(io::Error::other(why)));
        }
        for f in flushes {
            let _ = f.send(());
        }
        if let Some(a) = &self.attributor {
            self.stats
                .touches
                .store(a.touches() as u64, Ordering::Relaxed);
            self.stats
                .evicted
                .store(a.evicted() + self.lost_touches, Ordering::Relaxed);
        }
    }

    /// Queues an impression or click record in its day's buffer, noting it
    /// in `tracks` for the round's outcome; one whose day's file would not
    /// open waits in [`Self::unwritten_tracks`], and so do the others of
    /// that day this round (`unopened`): a failing disk is asked once a
    /// round, not once a record.
    fn push_track(&mut self, r: Record, tracks: &mut Vec<Record>, unopened: &mut Vec<Date>) {
        let day = Timestamp(r.at_ms).date();
        if unopened.contains(&day) {
            self.unwritten_tracks.push_back(r);
            return;
        }
        match push_to(
            &mut self.files,
            &self.dir,
            r.clone(),
            &self.stats,
            self.synced.as_ref(),
        ) {
            Ok(()) => tracks.push(r),
            Err(_) => {
                self.unwritten_tracks.push_back(r);
                unopened.push(day);
            }
        }
    }

    /// Keeps [`Self::unwritten`] within [`MAX_UNWRITTEN`] keys, dropping
    /// (and counting) the oldest counts past it.
    fn bound_unwritten(&mut self) {
        let tracks_over = self.unwritten_tracks.len().saturating_sub(MAX_UNWRITTEN);
        if tracks_over > 0 {
            self.unwritten_tracks.drain(..tracks_over);
            self.stats
                .dropped
                .fetch_add(tracks_over as u64, Ordering::Relaxed);
            tracing::error!(
                records = tracks_over,
                "impression and click records waiting for the disk dropped, the oldest first"
            );
        }
        let u = &mut self.unwritten;
        let over = (u.bids.len() + u.no_bids.len()).saturating_sub(MAX_UNWRITTEN);
        if over == 0 {
            return;
        }
        let mut ats: Vec<i64> = u
            .bids
            .values()
            .chain(u.no_bids.values())
            .map(|v| v.0)
            .collect();
        ats.sort_unstable();
        // The newest of the counts to drop: ties may drop a few more.
        let cut = ats[over - 1];
        let before = u.bids.len() + u.no_bids.len();
        u.bids.retain(|_, v| v.0 > cut);
        u.no_bids.retain(|_, v| v.0 > cut);
        let dropped = before - (u.bids.len() + u.no_bids.len());
        self.stats
            .dropped
            .fetch_add(dropped as u64, Ordering::Relaxed);
        tracing::error!(
            "{dropped} bid and no-bid count(s) could not be written and no more can wait for a \
             retry: lost"
        );
    }

    /// Another replica's records: its touches and conversions for
    /// attribution (its touches count for conversions to come, not for
    /// those kept here: see `Attributor::late`), its tracked events so
    /// they are not counted twice. The bytes leave the queue's count here.
    fn apply_peer(&mut self, bytes: &[u8], keep: i64) {
        self.stats
            .peer_queued
            .fetch_sub(bytes.len() as u64, Ordering::Relaxed);
        let Some(a) = &mut self.attributor else {
            return;
        };
        let mut interner = Interner::default();
        for line in bytes.split(|&b| b == b'\n') {
            let Ok(text) = std::str::from_utf8(line) else {
                continue;
            };
            let Some(r) = Record::parse(text, &mut interner) else {
                continue;
            };
            if let Some(k) = learn(a, &r, keep, r.at_ms) {
                if self.elsewhere[0].len() < self.max_pending.max(1024) {
                    self.elsewhere[0].insert(k);
                }
            }
        }
    }

    /// Journals conversions attributed late (with the round's impressions
    /// and clicks: a write that fails is tried again as theirs is).
    fn push_late(&mut self, late: Vec<Record>, tracks: &mut Vec<Record>, unopened: &mut Vec<Date>) {
        if late.is_empty() {
            return;
        }
        self.stats
            .late_attributed
            .fetch_add(late.len() as u64, Ordering::Relaxed);
        for r in late {
            self.push_track(r, tracks, unopened);
        }
    }

    /// Writes and syncs every file with something pending. Returns the
    /// days whose write failed, with why; each failed file is cut back to
    /// its last whole line, and nothing more is written to a file that
    /// could not be cut back until it is.
    fn write_all(&mut self) -> Vec<(Date, String)> {
        let mut failed = Vec::new();
        for f in &mut self.files {
            if f.buf.is_empty() {
                // A failed write not cut back yet is retried each batch:
                // its lines were never acknowledged.
                if f.dirty {
                    let _ = f.cut_back();
                }
                continue;
            }
            let bytes = std::mem::take(&mut f.buf);
            let lines = bytes.matches('\n').count() as u64;
            let r = f
                .cut_back()
                .and_then(|()| f.file.write_all(bytes.as_bytes()))
                .and_then(|()| f.file.sync_data());
            match r {
                Ok(()) => {
                    f.good += bytes.len() as u64;
                    if let Some(s) = &self.synced {
                        s.set(format!("events/{}.events", f.day), f.good);
                    }
                    self.stats.records.fetch_add(lines, Ordering::Relaxed);
                }
                Err(e) => {
                    self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(
                        "{}: {lines} event record(s) not written: {e}",
                        day_file(&self.dir, f.day).display()
                    );
                    f.dirty = true;
                    let _ = f.cut_back();
                    failed.push((f.day, e.to_string()));
                }
            }
        }
        failed
    }
}

impl OpenDay {
    /// Cuts a failed write back to the last whole line, if one is pending.
    fn cut_back(&mut self) -> io::Result<()> {
        if self.dirty {
            self.file.set_len(self.good)?;
            self.dirty = false;
        }
        Ok(())
    }
}

/// An impression's or click's record: the bid id in the order id column,
/// for the read-back after a restart.
fn track_record(t: Tracked) -> Record {
    Record {
        kind: if t.click {
            Kind::Click
        } else {
            Kind::Impression
        },
        at_ms: t.at_ms,
        dims: t.dims,
        user: t.user,
        n: 1,
        amount: Micros::ZERO,
        order_id: format!("{:032x}", t.bid).into(),
        features: t.features,
    }
}

fn count(kind: Kind, at_ms: i64, dims: Dims, n: u64) -> Record {
    Record {
        kind,
        at_ms,
        dims,
        user: 0,
        n,
        amount: Micros::ZERO,
        order_id: "".into(),
        features: None,
    }
}

fn day_of(at_ms: i64) -> i64 {
    at_ms.div_euclid(DAY_MS)
}

/// Queues `r` in its day's file, opening it (and closing the least used
/// one) when needed. A file that cannot be opened loses the record, which
/// is logged and counted, and said to the caller.
fn push_to(
    files: &mut Vec<OpenDay>,
    dir: &Path,
    r: Record,
    stats: &Stats,
    synced: Option<&ledger::synced::Synced>,
) -> io::Result<()> {
    let day = Timestamp(r.at_ms).date();
    let i = match files.iter().position(|f| f.day == day) {
        Some(i) => i,
        None => match open_day(dir, day) {
            Ok(f) => {
                // Written from now on: only what this writer makes durable
                // may be copied (before its first write, the mirror would
                // take bytes that stayed for a tick, and a slow fsync that
                // then fails cuts back bytes already sent).
                if let Some(s) = synced {
                    s.set(format!("events/{}.events", f.day), f.good);
                }
                if files.len() >= OPEN_FILES {
                    // Only files with nothing pending are closed.
                    if let Some(lru) = files
                        .iter()
                        .enumerate()
                        .filter(|(_, f)| f.buf.is_empty() && !f.dirty)
                        .min_by_key(|(_, f)| f.used)
                        .map(|(i, _)| i)
                    {
                        files.swap_remove(lru);
                    }
                }
                files.push(f);
                files.len() - 1
            }
            Err(e) => {
                stats.write_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!("{}: cannot open: {e}", day_file(dir, day).display());
                return Err(e);
            }
        },
    };
    let f = &mut files[i];
    f.used = Instant::now();
    r.write(&mut f.buf);
    Ok(())
}

/// Opens a day's file for appending: a new one gets its header; an old
/// one whose last line was torn (a crash mid-write) is cut back to its
/// last whole line first, so the next record starts a line of its own.
fn open_day(dir: &Path, day: Date) -> io::Result<OpenDay> {
    let path = day_file(dir, day);
    let mut open = OpenOptions::new();
    open.create(true).truncate(false).read(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    let mut file = open.open(&path)?;
    let len = file.metadata()?.len();
    let good = if len == 0 {
        let head = format!("{MAGIC}\n");
        file.write_all(head.as_bytes())?;
        file.sync_all()?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        head.len() as u64
    } else {
        let tail = len.min(64 * 1024);
        file.seek(SeekFrom::Start(len - tail))?;
        let mut buf = Vec::with_capacity(tail as usize);
        (&mut file).take(tail).read_to_end(&mut buf)?;
        let whole = match buf.iter().rposition(|&b| b == b'\n') {
            Some(p) => len - tail + p as u64 + 1,
            // No newline in the last 64 KiB: not a file of ours; keep it
            // and start on a line of our own.
            None => len,
        };
        if whole < len {
            file.set_len(whole)?;
            file.sync_all()?;
        } else if !buf.ends_with(b"\n") {
            file.write_all(b"\n")?;
        }
        file.metadata()?.len()
    };
    // Appends go to the end whatever the read position (and after a cut
    // back, to the new end).
    Ok(OpenDay {
        day,
        file,
        good,
        dirty: false,
        buf: String::new(),
        used: Instant::now(),
    })
}

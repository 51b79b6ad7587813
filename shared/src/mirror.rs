//! Report sources shared across replicas: each replica keeps a byte-exact
//! copy of every other replica's event journal and charge journal under
//! `peers/<replica>/` in its own directory, so a report, explain's numbers
//! and attribution read the whole cluster's files with the code that reads
//! one replica's.
//!
//! Why copies of files rather than counters in Redis: the report engine
//! groups by any dimensions over any days from raw records and its own
//! aggregates, and attribution needs every touch (an impression shown
//! through one replica, the purchase uploaded to another). Sending the
//! bytes each replica wrote keeps one format, one reader and one truth.
//!
//! - A **publisher** looks at its own files once a tick and sends what they
//!   gained (bytes that stayed as they were for a tick: a write that failed
//!   is cut back by its writer within that time, and is not sent), in pieces
//!   of at most 256 KB ending at a newline, on one stream, each naming the
//!   file and the offset it starts at. How far each file was sent is kept
//!   in Redis with the piece (one transaction), so a restart goes on from
//!   there.
//! - A **receiver** appends a piece to its copy only at the copy's end: a
//!   piece it already has is skipped, so reading a piece twice (a restart
//!   before its offset was saved) changes nothing. A piece past the end (the
//!   stream was trimmed while the replica was away, a copy lost its tail)
//!   asks the publisher to send that file again from there; so does a
//!   regular comparison of the copies with what each publisher says it sent,
//!   which finds a gap at the end of a file that no longer grows.
//!
//! It runs on a thread of its own with a connection of its own: file work
//! and large pieces never delay the money path's calls.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use config::{Clock, Date};

/// The largest piece sent (a backfill sends many).
const MAX_PIECE: usize = 256 << 10;
/// Bytes sent per tick at most: a backfill of a large file does not flood
/// the stream other replicas read.
const MAX_SENT_PER_TICK: usize = 4 << 20;
/// Bytes the stream holds at most, and the share of Redis's `maxmemory`
/// it may take: the stream is trimmed by a count of pieces, so the count
/// is what this many bytes of the largest pieces make. A backfill (a new
/// replica, a publisher restarted after Redis lost its data) would
/// otherwise fill Redis (4,000 pieces of 256 KB: 1 GB) and, with
/// `noeviction`, make every write of the money path fail.
const STREAM_BYTES: usize = 64 << 20;
const STREAM_SHARE_OF_MAXMEMORY: usize = 8;
/// Entries read per call.
const READ_COUNT: usize = 16;
/// How long a request for a file sent again is kept.
const REQUEST_TTL_S: u64 = 86_400;

/// Where copied event lines go (attribution).
pub type EventSink = Box<dyn Fn(&[u8]) + Send>;

/// How the mirror runs.
pub struct MirrorOptions {
    /// This replica's directory (`events/`, `charges*.journal`, `peers/`).
    pub dir: PathBuf,
    /// This replica's name: the others' copies of its files are kept under
    /// it.
    pub replica: String,
    /// Key prefix, as the ledger's.
    pub prefix: String,
    /// Days of events kept (as reports prune them): older days are neither
    /// sent nor copied.
    pub keep_days: u32,
    pub clock: Arc<dyn Clock>,
    /// Pieces the stream keeps (approximately), for replicas that were
    /// away; further back a replica asks for a file again. At most what
    /// 64 MB of the largest pieces make, and an eighth of Redis's
    /// `maxmemory`.
    pub stream_len: usize,
    pub tick: Duration,
    /// How often copies are compared with what their publishers sent.
    pub compare_every: Duration,
    /// Called with the bytes just appended to a copy of another replica's
    /// event file (whole lines): attribution learns its touches.
    pub on_events: EventSink,
    /// How far this replica's writers made each file durable: only that
    /// much is sent (a write whose fsync failed is cut back, and was never
    /// acknowledged). Without it, bytes are sent once they stayed the same
    /// for a tick.
    pub synced: Option<ledger::synced::Synced>,
}

impl MirrorOptions {
    pub fn new(dir: &Path, replica: &str, clock: Arc<dyn Clock>) -> MirrorOptions {
        MirrorOptions {
            dir: dir.to_path_buf(),
            replica: replica.to_string(),
            prefix: "bidder:".to_string(),
            keep_days: 400,
            clock,
            stream_len: 4_000,
            tick: Duration::from_millis(500),
            compare_every: Duration::from_secs(10),
            on_events: Box::new(|_| {}),
            synced: None,
        }
    }
}

/// What the mirror has done, for metrics.
#[derive(Debug, Default)]
pub struct MirrorStats {
    pub sent_bytes: AtomicU64,
    pub received_bytes: AtomicU64,
    /// Pieces past the end of a copy, and gaps found by comparison: each
    /// asks its publisher to send the file again from the copy's end.
    pub gaps: AtomicU64,
    pub errors: AtomicU64,
}

/// The mirror's thread; stops when dropped.
pub struct Mirror {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub stats: Arc<MirrorStats>,
}

impl Drop for Mirror {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Mirror {
    /// Starts the mirror. Redis being away is not an error: it tries again
    /// each tick.
    pub fn start(info: redis::ConnectionInfo, opts: MirrorOptions) -> io::Result<Mirror> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = redis::Client::open(info).map_err(io::Error::other)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(MirrorStats::default());
        let mut state = State {
            keys: MirrorKeys {
                prefix: opts.prefix.clone(),
            },
            cursor: None,
            seen: HashMap::new(),
            done: Default::default(),
            asked_gone: Default::default(),
            copies: HashMap::new(),
            last_id: read_offset(&opts.dir),
            saved_id: String::new(),
            last_compare: None,
            last_said: None,
            limits: None,
            stream_cap: opts.stream_len.clamp(1, STREAM_BYTES / MAX_PIECE),
            tick_budget: MAX_SENT_PER_TICK,
            stats: stats.clone(),
            opts,
        };
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("report-mirror".into())
                .spawn(move || {
                    let mut conn = None;
                    while !stop.load(Ordering::Relaxed) {
                        let started = Instant::now();
                        if let Err(e) = state.tick(&client, &mut conn) {
                            state.stats.errors.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!("report mirror: {e}");
                            conn = None;
                        }
                        let rest = state.opts.tick.saturating_sub(started.elapsed());
                        // Sleeps in slices: a drop stops it promptly.
                        let until = Instant::now() + rest;
                        while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                            std::thread::sleep(Duration::from_millis(20).min(rest));
                        }
                    }
                    // On stop (`serve` stops its writers first): what they
                    // wrote within the last tick has not stayed so for a
                    // tick yet. One pass sees it, the next, a tick later,
                    // sends it: a replica scaled down may not come back.
                    let _ = state.tick(&client, &mut conn);
                    std::thread::sleep(state.opts.tick);
                    let _ = state.tick(&client, &mut conn);
                    // Gone: the others answer requests for its files from
                    // their copies at once (after a crash, once the key
                    // expires).
                    if let Some(c) = conn.as_mut() {
                        let _: redis::RedisResult<i64> = redis::cmd("DEL")
                            .arg(state.keys.alive(&state.opts.replica))
                            .query(c);
                    }
                })?
        };
        Ok(Mirror {
            stop,
            thread: Some(thread),
            stats,
        })
    }
}

/// What another replica says it sent of a file.
struct Claimed {
    replica: String,
    file: String,
    end: u64,
    /// Its mirror runs (else requests to it are answered by stand-ins).
    alive: bool,
}

struct MirrorKeys {
    prefix: String,
}

impl MirrorKeys {
    fn stream(&self) -> String {
        format!("{}reports", self.prefix)
    }
    /// How far each of a replica's files was sent.
    fn sent(&self, replica: &str) -> String {
        format!("{}rp:{replica}", self.prefix)
    }
    /// Files a replica is asked to send again, from where.
    fn wanted(&self, replica: &str) -> String {
        format!("{}rq:{replica}", self.prefix)
    }
    fn publishers(&self) -> String {
        format!("{}rpeers", self.prefix)
    }
    /// Present while a replica's mirror runs (it expires a few comparisons
    /// after the mirror stops): requests to a replica gone are answered by
    /// another that holds a copy of its files.
    fn alive(&self, replica: &str) -> String {
        format!("{}ralive:{replica}", self.prefix)
    }
    /// Since when a replica's mirror has been seen gone (ms): past the
    /// retention, nothing of its files is kept anywhere, and it is
    /// forgotten.
    fn gone_since(&self, replica: &str) -> String {
        format!("{}rgone:{replica}", self.prefix)
    }
}

/// Where this replica stopped reading the stream.
const OFFSET_FILE: &str = "reports.offset";

fn read_offset(dir: &Path) -> String {
    crate::read_stream_offset(&dir.join(OFFSET_FILE))
}

pub(crate) fn is_stream_id(s: &str) -> bool {
    let mut parts = s.split('-');
    let ok = |p: Option<&str>| {
        p.is_some_and(|p| !p.is_empty() && p.len() <= 20 && p.bytes().all(|b| b.is_ascii_digit()))
    };
    ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

/// A file as the stream names it: `events/YYYY-MM-DD.events` or
/// `charges.N.journal`. Anything else (a name from a damaged or hostile
/// entry) is refused, so a piece can only land inside `peers/<replica>/`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Source {
    Events(Date),
    Charges(u64),
}

impl Source {
    fn parse(name: &str) -> Option<Source> {
        if let Some(d) = name
            .strip_prefix("events/")
            .and_then(|n| n.strip_suffix(".events"))
        {
            let date = Date::parse(d).ok()?;
            // Only the canonical spelling: one file per day.
            return (date.to_string() == d).then_some(Source::Events(date));
        }
        let g = name.strip_prefix("charges.")?.strip_suffix(".journal")?;
        if g.is_empty() || g.len() > 19 || !g.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: u64 = g.parse().ok()?;
        (n.to_string() == g).then_some(Source::Charges(n))
    }

    fn name(&self) -> String {
        match self {
            Source::Events(d) => format!("events/{d}.events"),
            Source::Charges(g) => format!("charges.{g}.journal"),
        }
    }

    /// Where a copy of it is kept for `replica`.
    fn copy_path(&self, dir: &Path, replica: &str) -> PathBuf {
        dir.join("peers").join(replica).join(self.name())
    }
}

/// Replica names as they may appear in a path: the bidder makes them from
/// the host name and a random suffix.
pub fn valid_replica(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

struct State {
    opts: MirrorOptions,
    keys: MirrorKeys,
    /// How far each own file was sent: read from Redis once.
    cursor: Option<HashMap<String, u64>>,
    /// Each own file's length and the hash of its last bytes a tick ago:
    /// what stayed so is sent.
    seen: HashMap<String, (u64, u64)>,
    /// Compacted charge generations sent whole.
    done: std::collections::HashSet<String>,
    /// Files of replicas gone asked for in this run.
    asked_gone: std::collections::HashSet<(String, String)>,
    /// Known lengths of the copies, by (replica, file).
    copies: HashMap<(String, Source), u64>,
    last_id: String,
    saved_id: String,
    last_compare: Option<Instant>,
    /// When this replica last said in Redis what it sent (Redis may have
    /// lost it: a restart without persistence, a wipe).
    last_said: Option<Instant>,
    /// When the stream's bounds were last worked out from Redis's memory.
    limits: Option<Instant>,
    /// Pieces the stream keeps: `stream_len`, or fewer so that they fit in
    /// their share of Redis's memory.
    stream_cap: usize,
    /// Bytes this replica sends per tick: a share of the stream, so that
    /// what every publisher sends in a tick is still there for a replica
    /// reading once a tick.
    tick_budget: usize,
    stats: Arc<MirrorStats>,
}

fn connect(client: &redis::Client) -> redis::RedisResult<redis::Connection> {
    let conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    conn.set_write_timeout(Some(Duration::from_secs(5)))?;
    Ok(conn)
}

type Res<T> = Result<T, String>;

fn redis_err(e: redis::RedisError) -> String {
    format!("Redis: {e}")
}

impl State {
    fn tick(&mut self, client: &redis::Client, conn: &mut Option<redis::Connection>) -> Res<()> {
        if conn.is_none() {
            *conn = Some(connect(client).map_err(redis_err)?);
        }
        let Some(c) = conn.as_mut() else {
            return Ok(());
        };
        self.publish(c)?;
        let compare = self
            .last_compare
            .is_none_or(|t| t.elapsed() >= self.opts.compare_every);
        // What publishers say they sent is read before the stream is read
        // to its end: every piece they counted is then in what was read
        // (or trimmed away: a gap).
        let claimed = if compare {
            Some(self.published_by_others(c)?)
        } else {
            None
        };
        let at_end = self.receive(c)?;
        if let (Some(claimed), true) = (claimed, at_end) {
            self.compare(c, claimed)?;
            self.stand_in(c)?;
            self.last_compare = Some(Instant::now());
        }
        self.save_offset();
        Ok(())
    }

    fn cutoff(&self) -> i64 {
        self.opts.clock.now().date().days_since_epoch() - i64::from(self.opts.keep_days)
    }

    /// This replica's report files now, by stream name.
    ///
    /// A listing that fails (too many open files) is an error, not an
    /// empty directory: files missing from it would be taken for pruned,
    /// forgotten in Redis, and sent again whole from their start.
    fn own_sources(&self) -> io::Result<Vec<(String, PathBuf)>> {
        let mut out = Vec::new();
        let cutoff = self.cutoff();
        let events = self.opts.dir.join("events");
        let listed = |dir: &Path| match std::fs::read_dir(dir) {
            Ok(entries) => entries.collect::<io::Result<Vec<_>>>(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        };
        for e in listed(&events)? {
            let name = e.file_name();
            let Some(n) = name.to_str() else { continue };
            let wire = format!("events/{n}");
            if let Some(Source::Events(d)) = Source::parse(&wire) {
                if d.days_since_epoch() >= cutoff {
                    out.push((wire, e.path()));
                }
            }
        }
        // Charge generations by name, without opening each: a busy
        // replica keeps thousands. The live journal is named by its
        // header, read each time (a compaction replaces it).
        let live = self.opts.dir.join("charges.journal");
        let live_gen = match File::open(&live) {
            Ok(mut f) => live_generation(&mut f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        for e in listed(&self.opts.dir)? {
            let name = e.file_name();
            let Some(n) = name.to_str() else { continue };
            if let Some(Source::Charges(g)) = Source::parse(n) {
                if Some(g) != live_gen {
                    out.push((n.to_string(), e.path()));
                }
            }
        }
        if let Some(g) = live_gen {
            out.push((Source::Charges(g).name(), live));
        }
        out.sort();
        Ok(out)
    }

    /// Bounds the stream by bytes: a share of Redis's `maxmemory` (when it
    /// has one and says it), and its pieces per tick by the publishers'
    /// number.
    fn refresh_limits(&mut self, c: &mut redis::Connection) -> Res<()> {
        if self
            .limits
            .is_some_and(|t| t.elapsed() < self.opts.compare_every)
        {
            return Ok(());
        }
        // INFO may be refused (an ACL): the bound without it stands.
        let info: String = redis::cmd("INFO")
            .arg("memory")
            .query(c)
            .unwrap_or_default();
        let maxmemory = info
            .lines()
            .find_map(|l| l.strip_prefix("maxmemory:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let bytes = match maxmemory {
            0 => STREAM_BYTES,
            m => STREAM_BYTES.min(m / STREAM_SHARE_OF_MAXMEMORY),
        };
        let publishers: usize = redis::cmd("SCARD")
            .arg(self.keys.publishers())
            .query(c)
            .map_err(redis_err)?;
        self.stream_cap = self.opts.stream_len.min(bytes / MAX_PIECE).max(4);
        // A quarter of the stream for all publishers' pieces of one tick.
        let fits = self.stream_cap * MAX_PIECE / 4 / publishers.max(1);
        self.tick_budget = fits.clamp(16 << 10, MAX_SENT_PER_TICK);
        self.limits = Some(Instant::now());
        Ok(())
    }

    fn publish(&mut self, c: &mut redis::Connection) -> Res<()> {
        let me = self.opts.replica.clone();
        self.refresh_limits(c)?;
        if self.cursor.is_none() {
            let sent: HashMap<String, u64> = redis::cmd("HGETALL")
                .arg(self.keys.sent(&me))
                .query(c)
                .map_err(redis_err)?;
            self.cursor = Some(sent);
        }
        // Files others asked for again: sent from where they ask.
        let wanted = take_requests(&self.keys, c, &me)?;
        let sources = self
            .own_sources()
            .map_err(|e| format!("{}: listing report files: {e}", self.opts.dir.display()))?;
        let Some(cursor) = self.cursor.as_mut() else {
            return Ok(());
        };
        for (name, from) in wanted {
            if let Some(at) = cursor.get_mut(&name) {
                *at = (*at).min(from);
                self.done.remove(&name);
            }
        }
        // Files gone (pruned) are forgotten here and in Redis.
        let listed: std::collections::HashSet<&str> =
            sources.iter().map(|(n, _)| n.as_str()).collect();
        let gone: Vec<String> = cursor
            .keys()
            .filter(|k| !listed.contains(k.as_str()))
            .cloned()
            .collect();
        if !gone.is_empty() {
            let _: i64 = redis::cmd("HDEL")
                .arg(self.keys.sent(&me))
                .arg(&gone)
                .query(c)
                .map_err(redis_err)?;
            for g in &gone {
                cursor.remove(g);
                self.done.remove(g);
            }
        }
        let mut budget = self.tick_budget;
        let mut seen_now = HashMap::new();
        let live = self.opts.dir.join("charges.journal");
        for (name, path) in &sources {
            let at = cursor.get(name).copied().unwrap_or(0);
            let archive = *path != live && name.starts_with("charges.");
            // A compacted generation sent whole does not change: not even
            // looked at (unless asked for again).
            if archive && self.done.contains(name) {
                continue;
            }
            let Ok(len) = std::fs::metadata(path).map(|m| m.len()) else {
                continue;
            };
            if let Some(&(l, h)) = self.seen.get(name) {
                if l == len && at == len {
                    seen_now.insert(name.clone(), (l, h));
                    if archive {
                        self.done.insert(name.clone());
                    }
                    continue;
                }
            }
            let Ok(mut f) = File::open(path) else {
                continue;
            };
            // The live journal may have been replaced by a compaction
            // since it was named: only the generation named is read.
            if *path == live && Source::parse(name) != live_generation(&mut f).map(Source::Charges)
            {
                continue;
            }
            let len = f.metadata().map_or(len, |m| m.len());
            let now = (len, tail_hash(&mut f, len));
            // Sendable: what its writer says is durable (fsync'd: never
            // cut back). A file its writer has not spoken of since the
            // start: what it held a tick ago, still held alike (a torn
            // last line, which a writer reopening the file cuts, is never
            // sent: pieces end at a newline).
            let durable = self.opts.synced.as_ref().and_then(|s| s.get(name));
            let stable = match (durable, self.seen.get(name)) {
                (Some(w), _) => w.min(len),
                (None, Some(&(l, h))) if l <= len && tail_hash(&mut f, l) == h => l,
                _ => 0,
            };
            seen_now.insert(name.clone(), now);
            if at > len {
                // Our file is shorter than what was sent of it: it was
                // replaced behind our back. Its copies stay as sent.
                tracing::warn!(file = %name, sent = at, len, "report file shorter than what was sent of it");
                continue;
            }
            let mut at = at;
            while at < stable && budget > 0 {
                // A piece starts while there is budget left and may end past
                // it: a line longer than the budget still goes.
                let want = ((stable - at) as usize).min(MAX_PIECE);
                let mut buf = vec![0u8; want];
                if f.seek(SeekFrom::Start(at)).is_err() || f.read_exact(&mut buf).is_err() {
                    break;
                }
                // Whole lines when there is a newline; a line longer than a
                // piece goes as it is (copies are byte for byte anyway).
                match buf.iter().rposition(|&b| b == b'\n') {
                    Some(i) => buf.truncate(i + 1),
                    None if want == MAX_PIECE => {}
                    None => break,
                }
                let end = at + buf.len() as u64;
                let mut pipe = redis::pipe();
                pipe.atomic()
                    .add_command(piece(&self.keys, self.stream_cap, &me, name, at, &buf))
                    .ignore()
                    .cmd("HSET")
                    .arg(self.keys.sent(&me))
                    .arg(name)
                    .arg(end)
                    .ignore();
                let () = pipe.query(c).map_err(redis_err)?;
                self.stats
                    .sent_bytes
                    .fetch_add(buf.len() as u64, Ordering::Relaxed);
                budget = budget.saturating_sub(buf.len());
                at = end;
                cursor.insert(name.clone(), end);
            }
        }
        self.seen = seen_now;
        if self
            .last_said
            .is_none_or(|t| t.elapsed() >= self.opts.compare_every)
        {
            let mut pipe = redis::pipe();
            pipe.cmd("SADD")
                .arg(self.keys.publishers())
                .arg(&me)
                .ignore();
            let alive_ms = (self.opts.compare_every.as_millis() as u64).max(1_000) * 3;
            pipe.cmd("SET")
                .arg(self.keys.alive(&me))
                .arg(1)
                .arg("PX")
                .arg(alive_ms)
                .ignore()
                .cmd("DEL")
                .arg(self.keys.gone_since(&me))
                .ignore();
            if !cursor.is_empty() {
                let mut hset = redis::cmd("HSET");
                hset.arg(self.keys.sent(&me));
                for (name, end) in cursor.iter() {
                    hset.arg(name).arg(*end);
                }
                pipe.add_command(hset).ignore();
            }
            let () = pipe.query(c).map_err(redis_err)?;
            self.last_said = Some(Instant::now());
        }
        Ok(())
    }

    /// What every other replica says it sent, by file.
    fn published_by_others(&self, c: &mut redis::Connection) -> Res<Vec<Claimed>> {
        let names: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.keys.publishers())
            .query(c)
            .map_err(redis_err)?;
        let mut out = Vec::new();
        for r in names
            .into_iter()
            .filter(|r| *r != self.opts.replica && valid_replica(r))
        {
            let sent: HashMap<String, u64> = redis::cmd("HGETALL")
                .arg(self.keys.sent(&r))
                .query(c)
                .map_err(redis_err)?;
            let alive: bool = redis::cmd("EXISTS")
                .arg(self.keys.alive(&r))
                .query(c)
                .map_err(redis_err)?;
            out.extend(sent.into_iter().map(|(f, end)| Claimed {
                replica: r.clone(),
                file: f,
                end,
                alive,
            }));
        }
        Ok(out)
    }

    /// Reads the stream on; `true` once at its end.
    fn receive(&mut self, c: &mut redis::Connection) -> Res<bool> {
        for _ in 0..64 {
            let entries: Vec<(String, Vec<Vec<u8>>)> = redis::cmd("XRANGE")
                .arg(self.keys.stream())
                .arg(format!("({}", self.last_id))
                .arg("+")
                .arg("COUNT")
                .arg(READ_COUNT)
                .query(c)
                .map_err(redis_err)?;
            let n = entries.len();
            for (id, fields) in entries {
                let field = |k: &str| {
                    fields
                        .chunks(2)
                        .find(|p| p.first().map(Vec::as_slice) == Some(k.as_bytes()))
                        .and_then(|p| p.get(1))
                };
                let text = |k: &str| field(k).and_then(|v| std::str::from_utf8(v).ok());
                if let (Some(r), Some(f), Some(o), Some(d)) = (
                    text("r"),
                    text("f"),
                    text("o").and_then(|o| o.parse::<u64>().ok()),
                    field("d"),
                ) {
                    if r != self.opts.replica && valid_replica(r) {
                        if let Some(src) = Source::parse(f) {
                            let r = r.to_string();
                            self.apply(c, &r, src, o, d)?;
                        }
                    }
                }
                self.last_id = id;
            }
            if n < READ_COUNT {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn copy_len(&mut self, replica: &str, src: &Source) -> u64 {
        let key = (replica.to_string(), src.clone());
        if let Some(&l) = self.copies.get(&key) {
            return l;
        }
        let l = std::fs::metadata(src.copy_path(&self.opts.dir, replica)).map_or(0, |m| m.len());
        self.copies.insert(key, l);
        l
    }

    fn too_old(&self, src: &Source) -> bool {
        matches!(src, Source::Events(d) if d.days_since_epoch() < self.cutoff())
    }

    /// Appends a piece to its copy when it starts at or before the copy's
    /// end; asks for the file again when it starts past it.
    fn apply(
        &mut self,
        c: &mut redis::Connection,
        replica: &str,
        src: Source,
        offset: u64,
        data: &[u8],
    ) -> Res<()> {
        if self.too_old(&src) {
            return Ok(());
        }
        let have = self.copy_len(replica, &src);
        if offset > have {
            return self.ask_again(c, replica, &src, have);
        }
        let end = offset + data.len() as u64;
        if end <= have {
            return Ok(());
        }
        let new = &data[(have - offset) as usize..];
        let path = src.copy_path(&self.opts.dir, replica);
        let written = (|| {
            // Other replicas' journals hold user hashes as ours do: this
            // user's alone.
            if let Some(parent) = path.parent() {
                ledger::journal::create_private_dir(parent)?;
            }
            let mut f = std::os::unix::fs::OpenOptionsExt::mode(
                OpenOptions::new().create(true).append(true),
                0o600,
            )
            .open(&path)?;
            // Someone else's length (a copy cut back, pruned): go by the
            // file itself.
            let len = f.metadata()?.len();
            if len != have {
                return Err(io::Error::other("the copy changed length"));
            }
            f.write_all(new)
        })();
        match written {
            Ok(()) => {
                self.copies.insert((replica.to_string(), src.clone()), end);
                self.stats
                    .received_bytes
                    .fetch_add(new.len() as u64, Ordering::Relaxed);
                if matches!(src, Source::Events(_)) {
                    (self.opts.on_events)(new);
                }
                Ok(())
            }
            Err(e) => {
                self.copies.remove(&(replica.to_string(), src));
                Err(format!("{}: {e}", path.display()))
            }
        }
    }

    fn ask_again(
        &mut self,
        c: &mut redis::Connection,
        replica: &str,
        src: &Source,
        from: u64,
    ) -> Res<()> {
        self.stats.gaps.fetch_add(1, Ordering::Relaxed);
        tracing::info!(replica, file = %src.name(), from, "report copy has a gap: asking for the file again");
        request(&self.keys, c, replica, src, from)
    }
}

/// A piece of `replica`'s file `name` starting at `offset`, for the stream
/// (kept to about `cap` pieces).
fn piece(
    keys: &MirrorKeys,
    cap: usize,
    replica: &str,
    name: &str,
    offset: u64,
    bytes: &[u8],
) -> redis::Cmd {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(keys.stream())
        .arg("MAXLEN")
        .arg("~")
        .arg(cap)
        .arg("*")
        .arg("r")
        .arg(replica)
        .arg("f")
        .arg(name)
        .arg("o")
        .arg(offset)
        .arg("d")
        .arg(bytes);
    cmd
}

/// Takes the requests to `replica` (file, from where), at once: one
/// replica answers each.
fn take_requests(
    keys: &MirrorKeys,
    c: &mut redis::Connection,
    replica: &str,
) -> Res<Vec<(String, u64)>> {
    redis::Script::new(
        "local r = redis.call('HGETALL', KEYS[1]); redis.call('DEL', KEYS[1]); return r",
    )
    .key(keys.wanted(replica))
    .invoke(c)
    .map_err(redis_err)
}

/// Asks `replica` to send `src` again from `from` (the lowest offset asked
/// for wins: every replica's gap is filled).
fn request(
    keys: &MirrorKeys,
    c: &mut redis::Connection,
    replica: &str,
    src: &Source,
    from: u64,
) -> Res<()> {
    let () = redis::Script::new(
        "local c = redis.call('HGET', KEYS[1], ARGV[1]) \
             if (not c) or tonumber(c) > tonumber(ARGV[2]) then \
               redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end \
             redis.call('EXPIRE', KEYS[1], ARGV[3])",
    )
    .key(keys.wanted(replica))
    .arg(src.name())
    .arg(from)
    .arg(REQUEST_TTL_S)
    .invoke(c)
    .map_err(redis_err)?;
    Ok(())
}

impl State {
    /// Asks for what publishers say they sent and the copies lack.
    fn compare(&mut self, c: &mut redis::Connection, claimed: Vec<Claimed>) -> Res<()> {
        for Claimed {
            replica: r,
            file: f,
            end,
            alive,
        } in claimed
        {
            let Some(src) = Source::parse(&f) else {
                continue;
            };
            if self.too_old(&src) {
                continue;
            }
            // Lengths are read afresh: a copy pruned or damaged meanwhile.
            self.copies.remove(&(r.clone(), src.clone()));
            let have = self.copy_len(&r, &src);
            if have < end {
                // A replica gone is asked once per file in this run: a
                // copy pruned here (its charges past the retention) is
                // held by nobody, and asking every pass would go on
                // until the replica is forgotten.
                if !alive && !self.asked_gone.insert((r.clone(), f.clone())) {
                    continue;
                }
                self.ask_again(c, &r, &src, have)?;
            }
        }
        Ok(())
    }

    /// Answers the requests to replicas gone (their mirror no longer runs:
    /// scaled down, their volume lost) from the copies of their files kept
    /// here, as they would have: a replica joining later gets their files
    /// from whichever replica took the request. Forgets, for a replica gone,
    /// the files past the retention, and the replica once none is left.
    fn stand_in(&mut self, c: &mut redis::Connection) -> Res<()> {
        let names: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.keys.publishers())
            .query(c)
            .map_err(redis_err)?;
        let mut budget = self.tick_budget;
        let names: Vec<String> = names
            .into_iter()
            .filter(|r| *r != self.opts.replica && valid_replica(r))
            .collect();
        for r in names {
            let alive: bool = redis::cmd("EXISTS")
                .arg(self.keys.alive(&r))
                .query(c)
                .map_err(redis_err)?;
            if alive {
                continue;
            }
            // Its record of what it sent: old days go, and the replica
            // with its last file.
            let sent: HashMap<String, u64> = redis::cmd("HGETALL")
                .arg(self.keys.sent(&r))
                .query(c)
                .map_err(redis_err)?;
            let old: Vec<&String> = sent
                .keys()
                .filter(|f| Source::parse(f).is_some_and(|s| self.too_old(&s)))
                .collect();
            if !old.is_empty() {
                let _: i64 = redis::cmd("HDEL")
                    .arg(self.keys.sent(&r))
                    .arg(&old)
                    .query(c)
                    .map_err(redis_err)?;
            }
            let now_ms = self.opts.clock.now().as_millis();
            let (since,): (Option<i64>,) = redis::pipe()
                .cmd("SET")
                .arg(self.keys.gone_since(&r))
                .arg(now_ms)
                .arg("NX")
                .ignore()
                .cmd("GET")
                .arg(self.keys.gone_since(&r))
                .query(c)
                .map_err(redis_err)?;
            let keep_ms = i64::from(self.opts.keep_days) * 86_400_000;
            let expired = since.is_some_and(|s| now_ms - s > keep_ms);
            if sent.len() == old.len() || expired {
                let _: () = redis::pipe()
                    .cmd("SREM")
                    .arg(self.keys.publishers())
                    .arg(&r)
                    .ignore()
                    .cmd("DEL")
                    .arg(self.keys.wanted(&r))
                    .arg(self.keys.sent(&r))
                    .arg(self.keys.gone_since(&r))
                    .ignore()
                    .query(c)
                    .map_err(redis_err)?;
                continue;
            }
            let wanted = take_requests(&self.keys, c, &r)?;
            for (f, from) in wanted {
                let Some(src) = Source::parse(&f) else {
                    continue;
                };
                let end = self.copy_len(&r, &src);
                let mut at = from;
                if at < end && budget > 0 {
                    let path = src.copy_path(&self.opts.dir, &r);
                    let mut file =
                        File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                    while at < end && budget > 0 {
                        let want = ((end - at) as usize).min(MAX_PIECE);
                        let mut buf = vec![0u8; want];
                        file.seek(SeekFrom::Start(at))
                            .and_then(|_| file.read_exact(&mut buf))
                            .map_err(|e| format!("{}: {e}", path.display()))?;
                        if let Some(i) = buf.iter().rposition(|&b| b == b'\n') {
                            buf.truncate(i + 1);
                        }
                        // Sent as the replica gone: copies are byte for
                        // byte its files, so a receiver cannot tell.
                        let _: String = piece(&self.keys, self.stream_cap, &r, &f, at, &buf)
                            .query(c)
                            .map_err(redis_err)?;
                        self.stats
                            .sent_bytes
                            .fetch_add(buf.len() as u64, Ordering::Relaxed);
                        budget = budget.saturating_sub(buf.len());
                        at += buf.len() as u64;
                    }
                }
                if at < end || at == from {
                    // Not all of it this time, or not held here: asked
                    // again, for whoever can.
                    request(&self.keys, c, &r, &src, at)?;
                }
            }
        }
        Ok(())
    }

    fn save_offset(&mut self) {
        if self.last_id == self.saved_id {
            return;
        }
        // Not fsync'd: an older offset read back only reads pieces again,
        // and those already copied are skipped.
        let path = self.opts.dir.join(OFFSET_FILE);
        if std::fs::write(&path, format!("{}\n", self.last_id)).is_ok() {
            self.saved_id = self.last_id.clone();
        }
        // Lengths of copies are looked at afresh now and then (pruning
        // removes copies).
        if self.copies.len() > 4_096 {
            self.copies.clear();
        }
    }
}

/// The generation the live charge journal's header names.
fn live_generation(f: &mut File) -> Option<u64> {
    let mut head = [0u8; 64];
    f.seek(SeekFrom::Start(0)).ok()?;
    let n = f.read(&mut head).ok()?;
    let line = head[..n].split(|&b| b == b'\n').next()?;
    std::str::from_utf8(line)
        .ok()?
        .strip_prefix("bidder-journal 1 ")?
        .parse()
        .ok()
}

/// A hash of the 64 bytes before `len`: a file cut back and grown again
/// is not taken for the one seen before.
fn tail_hash(f: &mut File, len: u64) -> u64 {
    let from = len.saturating_sub(64);
    let mut buf = vec![0u8; (len - from) as usize];
    if f.seek(SeekFrom::Start(from)).is_err() || f.read_exact(&mut buf).is_err() {
        return u64::MAX;
    }
    buf.iter().fold(0xcbf2_9ce4_8422_2325u64 ^ len, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_report_files_are_named() {
        assert_eq!(
            Source::parse("events/2026-11-30.events"),
            Some(Source::Events(Date::parse("2026-11-30").unwrap()))
        );
        assert_eq!(
            Source::parse("charges.12.journal"),
            Some(Source::Charges(12))
        );
        for bad in [
            "events/../x.events",
            "events/2026-11-30.events/../../x",
            "../charges.1.journal",
            "charges.01.journal",
            "charges..journal",
            "charges.journal",
            "events/2026-1-30.events",
            "ledger.checkpoint",
            "/etc/passwd",
        ] {
            assert_eq!(Source::parse(bad), None, "{bad}");
        }
        assert!(valid_replica("bidder-0-1a2b3c4d"));
        for bad in ["", ".", "..", "a/b", "a b", &"x".repeat(65)] {
            assert!(!valid_replica(bad), "{bad:?}");
        }
        assert!(is_stream_id("1700000000000-3"));
        assert!(!is_stream_id("1-2-3") && !is_stream_id("abc") && !is_stream_id("1-"));
    }
}

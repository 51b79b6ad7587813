//! Shopper events applied at run time, kept in the state directory so
//! that a restart keeps them.
//!
//! Uploads (`POST /v1/audience-events`), pixel calls and, with Redis, what
//! other replicas applied went into the audience store in memory only: a
//! restart (every deploy) emptied the `views` and `interests` audiences of
//! everyone they had named, down to the `--data` files (audience probe).
//! With Redis a restarted replica resumes the stream where it stopped, so
//! it did not get them back from there either. List members have their
//! own logs (`STATE/lists/`).
//!
//! Each event batch is appended as it was applied, JSON lines as uploaded,
//! to a file of the UTC day it arrived (`STATE/audience-events/DAY.jsonl`,
//! readable by its owner only: the lines name shoppers). A start reads
//! them back after `--data`, through the store's retention cut, so an
//! event counts again only while its audiences could still use it; files
//! of days past the retention are removed. Applying a line twice changes
//! nothing the audiences see (events of one shopper, kind, item and time
//! are one fact).
//!
//! An upload is on disk (fsync'd) before it is answered. A pixel call or
//! another replica's batch is written at once and synced with the next
//! upkeep, about a second later: a crash loses at most that second of
//! them, as it does of frequency counts.
//!
//! The files together hold at most `--max-audience-log-bytes`: anyone with
//! a synced cookie can write through the pixel, and a flood from many
//! addresses grew the log by gigabytes a day, kept for the retention and
//! read back whole before a start serves (attacker probe). Past the bound
//! the oldest days go first (their events are the nearest to leaving the
//! audiences anyway); a pixel call's or another replica's batch that still
//! does not fit beside today's file is applied in memory and not saved, as
//! one the disk refused. An upload (its sender holds a token) is saved
//! past the bound: a flood must not refuse the advertisers' own data.

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use config::{Date, Timestamp};

/// The directory in the state directory.
pub const DIR: &str = "audience-events";

/// The log holds its bound (inside the `io::Error` of an append it
/// refused): told apart from a file system's own quota, whose cure is not
/// this bound's.
#[derive(Debug, thiserror::Error)]
#[error("the audience event log holds its bound of {max_bytes} bytes (--max-audience-log-bytes)")]
pub struct Full {
    max_bytes: u64,
}

impl Full {
    /// Whether `e` is the log's bound refusing an append.
    pub fn is(e: &io::Error) -> bool {
        e.get_ref().is_some_and(|inner| inner.is::<Full>())
    }
}

/// The log of one state directory.
pub struct AudienceLog {
    dir: PathBuf,
    /// Today's file, once written to. Held for one piece of a batch at a
    /// time (see [`AudienceLog::append`]): a pixel call appends on a
    /// request worker, and waits out at most one piece of an upload.
    file: Mutex<Option<Current>>,
    /// Written since the last sync.
    dirty: AtomicBool,
    /// What the day files hold together, as far as this process knows
    /// (their sizes at open, plus what it wrote, less what it removed).
    bytes: std::sync::atomic::AtomicU64,
    /// The most they may hold.
    max_bytes: u64,
    /// No day file before this day (days since the epoch) was left at the
    /// last look at the bound; `i64::MIN`: none yet.
    bare_before: std::sync::atomic::AtomicI64,
    /// The days of the appends past their room check and not yet done:
    /// they write their pieces with the file lock let go in between.
    in_flight: Mutex<Vec<Date>>,
}

/// `--max-audience-log-bytes`'s default: about 16 million events, read
/// back in some fifteen seconds at a start.
pub const DEFAULT_MAX_BYTES: u64 = 2 << 30;

/// The file being written.
struct Current {
    day: Date,
    file: Arc<std::fs::File>,
    /// It ends inside a line (a crash tore its last write, or a write
    /// failed part-way): the next write starts a new line, or its first
    /// line would be read glued to the remains and lost.
    torn: bool,
}

/// What a start read back.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Replayed {
    pub files: usize,
    pub events: usize,
    /// Lines that did not read as events (a torn write's remains among
    /// them), skipped.
    pub skipped: usize,
    /// Day files that could not be read, or read whole, skipped (the log
    /// is a copy the start can do without).
    pub unreadable: usize,
}

/// The most written at once (see [`AudienceLog::append`]).
const WRITE_PIECE: usize = 256 << 10;

/// The longest line read back, its line end included: an event is a few
/// hundred bytes, and uploads refuse a longer line
/// ([`audiences::MAX_LINE_BYTES`], counted without its `\r\n` or `\n`:
/// a CRLF upload's line at the bound was taken, then skipped as damage
/// at the next start).
const MAX_LINE: u64 = audiences::MAX_LINE_BYTES as u64 + 2;

/// Batches read back at once: a day's file may be large.
const REPLAY_CHUNK: usize = 1 << 20;

impl AudienceLog {
    /// The log in state directory `state`, its directory made if need be,
    /// its files holding `max_bytes` at most together.
    pub fn open(state: &Path, max_bytes: u64) -> io::Result<AudienceLog> {
        let dir = state.join(DIR);
        ledger::journal::create_private_dir(&dir)?;
        let bytes = days(&dir)?
            .iter()
            .map(|(_, p)| std::fs::metadata(p).map_or(0, |m| m.len()))
            .sum();
        Ok(AudienceLog {
            dir,
            file: Mutex::new(None),
            dirty: AtomicBool::new(false),
            bytes: std::sync::atomic::AtomicU64::new(bytes),
            max_bytes,
            bare_before: std::sync::atomic::AtomicI64::new(i64::MIN),
            in_flight: Mutex::new(Vec::new()),
        })
    }

    /// What the day files hold together, as far as this process knows.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Removes a day's file and takes its bytes off the count: its size,
    /// if it went.
    fn remove_day(&self, path: &Path) -> Option<u64> {
        let len = std::fs::metadata(path).map_or(0, |m| m.len());
        std::fs::remove_file(path).ok()?;
        let _ = self
            .bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some(b.saturating_sub(len))
            });
        Some(len)
    }

    /// Removes the oldest day files before `keep` (today's, or the file
    /// another append is still writing to if that is older) until `more`
    /// bytes fit under the bound; an error when they still do not. Called
    /// under the file lock: a removal never races the opening of a day's
    /// file, nor takes the one an upload begun before midnight still
    /// writes to between its pieces (review finding). Writers in flight
    /// together may pass the bound by their batches.
    fn room_for(&self, more: u64, today: Date) -> io::Result<()> {
        let fits = |held: u64| held.saturating_add(more) <= self.max_bytes;
        if fits(self.bytes()) {
            return Ok(());
        }
        // The earliest day an append in flight may have written to: its
        // own day or a later one (it never writes back to an earlier day's
        // file), whatever file is current now (review finding: after the
        // first call past midnight moved the log on, the next one removed
        // the file an upload begun before it had written to).
        let keep = self
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .fold(today, Date::min);
        // Nothing older left to remove since a listing at this bound: the
        // directory is not listed again for each call of a flood.
        let bare = self.bare_before.load(Ordering::Relaxed);
        if bare != i64::MIN && bare >= keep.days_since_epoch() {
            return Err(self.full());
        }
        for (day, path) in days(&self.dir)? {
            if day >= keep || fits(self.bytes()) {
                break;
            }
            if let Some(len) = self.remove_day(&path) {
                tracing::warn!(
                    %day,
                    bytes = len,
                    "audience events of a day removed early: the log is at --max-audience-log-bytes"
                );
            }
        }
        match fits(self.bytes()) {
            true => Ok(()),
            false => {
                self.bare_before
                    .store(keep.days_since_epoch(), Ordering::Relaxed);
                Err(self.full())
            }
        }
    }

    fn full(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::QuotaExceeded,
            Full {
                max_bytes: self.max_bytes,
            },
        )
    }

    /// Appends `text` (JSON lines, as applied) to the file of `now`'s day
    /// (never back to an earlier day's: a call whose clock was read just
    /// before midnight goes to the new file); `durable`: synced before it
    /// returns.
    pub fn append(&self, text: &str, now: Timestamp, durable: bool) -> io::Result<()> {
        let day = now.date();
        // Written from the text as given, but for its last line when no
        // newline ends it: that one is copied with one. A copy of the whole
        // text was 64 MiB more per upload at the bound.
        let body = text.as_bytes();
        let (whole, last) = if text.ends_with('\n') {
            (body, None)
        } else {
            let cut = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let mut last = Vec::with_capacity(body.len() - cut + 1);
            last.extend_from_slice(&body[cut..]);
            last.push(b'\n');
            (&body[..cut], Some(last))
        };
        let mut left = None;
        // Each file a piece went to: another writer may move the log to
        // the next day between two pieces, and an answer says all of them
        // are on disk.
        let mut written: Vec<std::sync::Arc<std::fs::File>> = Vec::new();
        {
            // The whole batch or none of it (a torn line's repair aside).
            // An upload (`durable`: its sender holds an audience or admin
            // token) is written past the bound once older days have made
            // what room they can: a pixel flood that filled today's file
            // must not refuse advertisers' own uploads, and their
            // attribution with them, until midnight (review finding).
            let _held = self.file.lock().unwrap_or_else(|e| e.into_inner());
            let more = whole.len() as u64 + last.as_ref().map_or(0, |l| l.len() as u64) + 1;
            match self.room_for(more, day) {
                Ok(()) => {}
                // An upload, up to twice the bound: past that, refused as
                // any batch (a client re-sending the same 64 MiB file must
                // not fill the volume the journal needs; review finding).
                Err(_)
                    if durable
                        && self.bytes().saturating_add(more)
                            <= self.max_bytes.saturating_mul(2) => {}
                Err(e) => return Err(e),
            }
            self.in_flight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(day);
        }
        struct Done<'a>(&'a Mutex<Vec<Date>>, Date);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                let mut days = self.0.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(i) = days.iter().position(|d| *d == self.1) {
                    days.swap_remove(i);
                }
            }
        }
        let _done = Done(&self.in_flight, day);
        // Piece by piece, each under the lock: lines land whole, a repair
        // of a torn end comes before anything else is written, and another
        // writer waits out one piece at most.
        for piece in pieces(whole).chain(last.as_deref()) {
            let mut current = self.file.lock().unwrap_or_else(|e| e.into_inner());
            if current.as_ref().is_none_or(|c| c.day < day) {
                let opened = self.open_day(day)?;
                left = current.take().map(|c| c.file).or(left);
                *current = Some(opened);
            }
            let Some(c) = current.as_mut() else {
                unreachable!("opened above")
            };
            if c.torn {
                (&*c.file).write_all(b"\n")?;
                self.bytes.fetch_add(1, Ordering::Relaxed);
                c.torn = false;
            }
            if let Err(e) = (&*c.file).write_all(piece) {
                c.torn = true;
                return Err(e);
            }
            self.bytes.fetch_add(piece.len() as u64, Ordering::Relaxed);
            if !written
                .last()
                .is_some_and(|f| std::sync::Arc::ptr_eq(f, &c.file))
            {
                written.push(c.file.clone());
            }
        }
        // After the write: an upkeep's sync between the two would miss it.
        self.dirty.store(true, Ordering::Relaxed);
        // The day before is synced as it is left behind.
        if let Some(old) = left {
            old.sync_data()?;
        }
        if durable {
            for f in written {
                f.sync_data()?;
            }
        }
        Ok(())
    }

    /// Opens (or makes) the file of `day`. One it makes is durable once
    /// its directory says so: synced here, before anything is written to
    /// it, so no answer can say a line is on disk in a file that is not.
    fn open_day(&self, day: Date) -> io::Result<Current> {
        let path = self.dir.join(format!("{day}.jsonl"));
        let created = !path.exists();
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true).read(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&path)?;
        if created {
            std::fs::File::open(&self.dir)?.sync_all()?;
        }
        let torn = !ends_in_newline(&file)?;
        Ok(Current {
            day,
            file: Arc::new(file),
            torn,
        })
    }

    /// Syncs what was written without it (pixel calls, other replicas').
    pub fn sync(&self) -> io::Result<()> {
        if !self.dirty.swap(false, Ordering::Relaxed) {
            return Ok(());
        }
        let f = {
            let file = self.file.lock().unwrap_or_else(|e| e.into_inner());
            file.as_ref().map(|c| c.file.clone())
        };
        match f.map(|f| f.sync_data()) {
            Some(Err(e)) => {
                self.dirty.store(true, Ordering::Relaxed);
                Err(e)
            }
            _ => Ok(()),
        }
    }

    /// Removes the files of days whose every event is older than
    /// `retention_days` before `today` (an event arrives at most an hour
    /// ahead of its time, so a day's file holds none later than the next
    /// day). Returns how many went.
    pub fn prune(&self, retention_days: u32, today: Date) -> usize {
        let Ok(days) = days(&self.dir) else {
            return 0;
        };
        let oldest_kept = today.days_since_epoch() - i64::from(retention_days) - 1;
        let mut removed = 0;
        for (day, path) in days {
            if day.days_since_epoch() < oldest_kept && self.remove_day(&path).is_some() {
                removed += 1;
            }
        }
        removed
    }
}

/// `bytes` (lines, the last ending in a newline) in pieces of whole lines
/// of at most [`WRITE_PIECE`] bytes (a line longer than that is a piece of
/// its own).
fn pieces(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let cut = if rest.len() <= WRITE_PIECE {
            rest.len()
        } else {
            match rest[..WRITE_PIECE].iter().rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                // One line longer than a piece: to its end.
                None => rest
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(rest.len(), |i| i + 1),
            }
        };
        let (piece, tail) = rest.split_at(cut);
        rest = tail;
        Some(piece)
    })
}

/// Whether `f` is empty or its last byte is a newline.
fn ends_in_newline(f: &std::fs::File) -> io::Result<bool> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(true);
    }
    let mut f = f;
    f.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8; 1];
    f.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

/// Reads the log of state directory `state` into `store`, oldest day
/// first, at `now` (the store's retention cut applies), about a megabyte
/// at a time. A last line torn by a crash is left out; other lines that
/// do not read are skipped and counted, the rest still read; a file that
/// cannot be read is skipped and counted.
pub fn replay(state: &Path, store: &audiences::Store, now: Timestamp) -> io::Result<Replayed> {
    use std::io::{BufRead as _, Read as _};
    let dir = state.join(DIR);
    let mut out = Replayed::default();
    let days = match days(&dir) {
        Ok(days) => days,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for (_, path) in days {
        let name = path.display().to_string();
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(_) => {
                out.unreadable += 1;
                continue;
            }
        };
        out.files += 1;
        let mut reader = io::BufReader::new(file);
        let mut chunk = String::new();
        let mut line = Vec::new();
        loop {
            line.clear();
            let read = match (&mut reader).take(MAX_LINE).read_until(b'\n', &mut line) {
                Ok(n) => n,
                Err(_) => {
                    // What was read whole still counts.
                    if !chunk.is_empty() {
                        apply(store, &name, &chunk, now, &mut out);
                    }
                    out.unreadable += 1;
                    break;
                }
            };
            // Longer than any event: damage, skipped without holding it
            // (a file of one 300 MB line took as much memory at start).
            if line.len() as u64 == MAX_LINE && line.last() != Some(&b'\n') {
                out.skipped += 1;
                if reader.skip_until(b'\n').is_err() {
                    out.unreadable += 1;
                    break;
                }
                continue;
            }
            // A line without its newline is the end of the file: a write
            // a crash cut (or nothing).
            let whole = line.last() == Some(&b'\n');
            if whole {
                chunk.push_str(&String::from_utf8_lossy(&line));
            }
            let end = !whole || read == 0;
            if chunk.len() >= REPLAY_CHUNK || (end && !chunk.is_empty()) {
                apply(store, &name, &chunk, now, &mut out);
                chunk.clear();
            }
            if !whole || read == 0 {
                break;
            }
        }
    }
    Ok(out)
}

/// A chunk of whole lines into `store`; on a line that does not read,
/// line by line, so one bad line costs only itself.
fn apply(store: &audiences::Store, name: &str, chunk: &str, now: Timestamp, out: &mut Replayed) {
    match store.append_jsonl(name, chunk, now) {
        Ok(n) => out.events += n,
        Err(_) => {
            for line in chunk.lines().filter(|l| !l.trim().is_empty()) {
                match store.append_jsonl(name, line, now) {
                    Ok(n) => out.events += n,
                    Err(_) => out.skipped += 1,
                }
            }
        }
    }
}

/// The day files in `dir`, oldest first.
fn days(dir: &Path) -> io::Result<Vec<(Date, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let day = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".jsonl"))
            .and_then(|d| Date::parse(d).ok());
        if let Some(day) = day {
            out.push((day, path));
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("bidder-audlog-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    const VIEW: &str =
        r#"{"user":"u-1","event":"view","product":"tent-1","at":"2026-11-24T10:00:00Z"}"#;
    const INTEREST: &str =
        r#"{"user":"u-2","event":"interest","interest":"hiking","at":"2026-11-25T10:00:00Z"}"#;

    /// The day files together stay under their bound: the oldest days go
    /// first, today's never, and a batch that still does not fit is
    /// refused (its caller applies it unsaved). The count survives a
    /// reopen and a prune.
    #[test]
    fn the_log_holds_its_bound_oldest_days_first() {
        let state = scratch("bound");
        let line = format!("{VIEW}\n");
        let per_day = 4 * line.len() as u64;
        // Room for three days of four events (and the byte a torn line's
        // repair may take).
        let most = 3 * per_day + 1;
        let log = AudienceLog::open(&state, most).unwrap();
        // Pixel calls' batches (not durable), as a flood sends them.
        for day in 1..=3 {
            let at = ts(&format!("2026-11-0{day}T12:00:00Z"));
            log.append(&line.repeat(4), at, false).unwrap();
        }
        assert_eq!(log.bytes(), 3 * per_day);
        let files = || {
            days(&state.join(DIR))
                .unwrap()
                .into_iter()
                .map(|(d, _)| d.to_string())
                .collect::<Vec<_>>()
        };
        // A fourth day pushes out the first.
        log.append(&line, ts("2026-11-04T12:00:00Z"), false)
            .unwrap();
        assert_eq!(files(), ["2026-11-02", "2026-11-03", "2026-11-04"]);
        assert!(log.bytes() <= most, "{}", log.bytes());
        // Today's file is never removed for today's events: past every
        // earlier day, a pixel batch is refused (again without a listing).
        let big = line.repeat(12);
        for _ in 0..2 {
            let e = log
                .append(&big, ts("2026-11-04T13:00:00Z"), false)
                .unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::QuotaExceeded, "{e}");
        }
        assert_eq!(files(), ["2026-11-04"]);
        assert_eq!(log.bytes(), line.len() as u64);
        // An upload is written all the same, up to twice the bound: a
        // flood must not refuse the advertisers' own, nor can uploads fill
        // the volume.
        let upload = line.repeat(6);
        log.append(&upload, ts("2026-11-04T14:00:00Z"), true)
            .unwrap();
        assert_eq!(log.bytes(), 7 * line.len() as u64);
        let e = log
            .append(&line.repeat(20), ts("2026-11-04T14:00:00Z"), true)
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::QuotaExceeded, "{e}");
        drop(log);
        let again = AudienceLog::open(&state, most).unwrap();
        assert_eq!(
            again.bytes(),
            7 * line.len() as u64,
            "counted from the files"
        );
        again.prune(1, Date::parse("2026-11-10").unwrap());
        assert_eq!(again.bytes(), 0);
        assert!(files().is_empty());
        let _ = std::fs::remove_dir_all(&state);
    }

    /// The file another append still writes to (an upload begun before
    /// midnight, between its pieces) is not removed to make room for the
    /// new day's first batch; with none in flight, yesterday's file is.
    #[test]
    fn the_file_being_written_is_never_made_room_from() {
        let state = scratch("bound-midnight");
        let line = format!("{VIEW}\n");
        let log = AudienceLog::open(&state, 3 * line.len() as u64).unwrap();
        log.append(&line.repeat(2), ts("2026-11-02T23:59:59Z"), false)
            .unwrap();
        let after = ts("2026-11-03T00:00:01Z");
        // An upload of the 2nd is between two pieces: the 2nd's file stays,
        // whatever day the log has moved on to.
        let second = Date::parse("2026-11-02").unwrap();
        log.in_flight.lock().unwrap().push(second);
        log.append(&line, after, true).unwrap();
        let e = log.append(&line.repeat(2), after, false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::QuotaExceeded, "{e}");
        let left = || -> Vec<String> {
            days(&state.join(DIR))
                .unwrap()
                .into_iter()
                .map(|(d, _)| d.to_string())
                .collect()
        };
        assert_eq!(left(), ["2026-11-02", "2026-11-03"]);
        // It ended: the 2nd's file may go.
        log.in_flight.lock().unwrap().clear();
        log.append(&line, after, false).unwrap();
        assert_eq!(left(), ["2026-11-03"]);
        let _ = std::fs::remove_dir_all(&state);
    }

    /// What was appended reads back into a new store; a torn last write is
    /// cut, a damaged line skipped alone; old days go.
    #[test]
    fn events_come_back_after_a_restart() {
        let state = scratch("replay");
        let log = AudienceLog::open(&state, DEFAULT_MAX_BYTES).unwrap();
        log.append(VIEW, ts("2026-11-24T10:00:01Z"), true).unwrap();
        log.append(&format!("{INTEREST}\n"), ts("2026-11-25T10:00:01Z"), false)
            .unwrap();
        log.sync().unwrap();
        // Damage in the first day's file, and a torn write in the last.
        let first = state.join(DIR).join("2026-11-24.jsonl");
        let mut text = std::fs::read_to_string(&first).unwrap();
        text.push_str("not an event\n");
        std::fs::write(&first, text).unwrap();
        let last = state.join(DIR).join("2026-11-25.jsonl");
        let mut text = std::fs::read_to_string(&last).unwrap();
        text.push_str(r#"{"user":"u-3","event":"vi"#);
        std::fs::write(&last, text).unwrap();

        let store = audiences::Store::new();
        store.set_retention_days(30);
        let now = ts("2026-11-26T00:00:00Z");
        let got = replay(&state, &store, now).unwrap();
        assert_eq!(
            got,
            Replayed {
                files: 2,
                events: 2,
                skipped: 1,
                unreadable: 0
            }
        );
        assert_eq!((store.users(), store.events()), (2, 2));

        // Written after the torn write by the next process: its first line
        // is not glued to the remains (review finding), which are one
        // damaged line of their own.
        let log = AudienceLog::open(&state, DEFAULT_MAX_BYTES).unwrap();
        let later =
            r#"{"user":"u-4","event":"view","product":"tent-1","at":"2026-11-25T11:00:00Z"}"#;
        log.append(later, ts("2026-11-25T11:00:01Z"), true).unwrap();
        let store = audiences::Store::new();
        store.set_retention_days(30);
        let got = replay(&state, &store, now).unwrap();
        assert_eq!((got.events, got.skipped), (3, 2), "{got:?}");
        assert_eq!(store.users(), 3);

        // Past the retention (30 days and the day after), a day goes.
        assert_eq!(log.prune(30, Date::parse("2026-12-25").unwrap()), 0);
        assert_eq!(log.prune(30, Date::parse("2026-12-26").unwrap()), 1);
        let store = audiences::Store::new();
        store.set_retention_days(30);
        assert_eq!(replay(&state, &store, now).unwrap().files, 1);
        let _ = std::fs::remove_dir_all(&state);
    }

    /// Pieces are whole lines, at most a piece long unless one line is
    /// longer, and together the batch.
    #[test]
    fn a_batch_is_cut_at_line_ends() {
        let line = |n: usize| format!("{}\n", "x".repeat(n));
        let batch: String = [100, WRITE_PIECE - 50, 30, 2 * WRITE_PIECE, 10]
            .iter()
            .map(|&n| line(n))
            .collect();
        let got: Vec<&[u8]> = pieces(batch.as_bytes()).collect();
        assert_eq!(got.concat(), batch.as_bytes());
        for p in &got {
            assert_eq!(p.last(), Some(&b'\n'));
            let lines = p.iter().filter(|&&b| b == b'\n').count();
            assert!(p.len() <= WRITE_PIECE || lines == 1, "{} bytes", p.len());
        }
        assert_eq!(
            got.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [101, WRITE_PIECE - 49 + 31, 2 * WRITE_PIECE + 1, 11]
        );
    }

    /// A line longer than any event is skipped without being held whole,
    /// and the lines after it still read.
    #[test]
    fn an_overlong_line_is_skipped() {
        let state = scratch("overlong");
        let log = AudienceLog::open(&state, DEFAULT_MAX_BYTES).unwrap();
        log.append(
            &"x".repeat(3 * MAX_LINE as usize),
            ts("2026-11-24T10:00:01Z"),
            true,
        )
        .unwrap();
        log.append(VIEW, ts("2026-11-24T10:00:02Z"), true).unwrap();
        let store = audiences::Store::new();
        store.set_retention_days(30);
        let got = replay(&state, &store, ts("2026-11-26T00:00:00Z")).unwrap();
        assert_eq!((got.events, got.skipped), (1, 1), "{got:?}");
        let _ = std::fs::remove_dir_all(&state);
    }

    /// A CRLF line at the upload's bound (its `\r\n` not counted there)
    /// reads back at the next start, as an LF one does (review finding:
    /// taken, then skipped as damage).
    #[test]
    fn a_crlf_line_at_the_bound_reads_back() {
        let state = scratch("crlf-bound");
        let log = AudienceLog::open(&state, DEFAULT_MAX_BYTES).unwrap();
        let pad = audiences::MAX_LINE_BYTES - VIEW.len();
        let line = format!("{}{}}}", &VIEW[..VIEW.len() - 1], " ".repeat(pad));
        assert_eq!(line.len(), audiences::MAX_LINE_BYTES);
        log.append(&format!("{line}\r\n"), ts("2026-11-24T10:00:01Z"), true)
            .unwrap();
        let store = audiences::Store::new();
        store.set_retention_days(30);
        let got = replay(&state, &store, ts("2026-11-26T00:00:00Z")).unwrap();
        assert_eq!((got.events, got.skipped), (1, 0), "{got:?}");
        let _ = std::fs::remove_dir_all(&state);
    }

    /// A batch larger than a write's piece is written in pieces of whole
    /// lines, and reads back whole.
    #[test]
    fn a_large_batch_reads_back_whole() {
        let state = scratch("large");
        let log = AudienceLog::open(&state, DEFAULT_MAX_BYTES).unwrap();
        let lines: Vec<String> = (0..8000)
            .map(|i| {
                format!(
                    r#"{{"user":"u-{i}","event":"view","product":"tent-1","at":"2026-11-24T10:00:00Z"}}"#
                )
            })
            .collect();
        let batch = lines.join("\n");
        assert!(batch.len() > 2 * WRITE_PIECE);
        log.append(&batch, ts("2026-11-24T10:00:01Z"), true)
            .unwrap();
        // Byte for byte, and its last line (no newline given) ended.
        let written = std::fs::read_to_string(state.join(DIR).join("2026-11-24.jsonl")).unwrap();
        assert!(written == format!("{batch}\n"), "{} bytes", written.len());
        let store = audiences::Store::new();
        store.set_retention_days(30);
        let got = replay(&state, &store, ts("2026-11-24T12:00:00Z")).unwrap();
        assert_eq!((got.events, got.skipped), (8000, 0), "{got:?}");
        let _ = std::fs::remove_dir_all(&state);
    }

    /// A state directory without the log (a first start, or one of an
    /// earlier version) reads back nothing, and is no error.
    #[test]
    fn no_log_is_nothing_to_read() {
        let state = scratch("none");
        let store = audiences::Store::new();
        assert_eq!(
            replay(&state, &store, ts("2026-11-26T00:00:00Z")).unwrap(),
            Replayed::default()
        );
        let _ = std::fs::remove_dir_all(&state);
    }
}

//! The charge journal: what makes spend survive a crash.
//!
//! A charge becomes spend, and its bid a duplicate, only once its record is
//! on disk: one writer thread batches whatever has queued into one write and
//! one fsync, then commits each record to the ledger and acknowledges it.
//! A failed write aborts its records (the exchange retries, and the retry
//! charges) and the file is cut back to the last whole record before
//! anything else is written, so a partial write never merges with the next
//! record. From a failed write until a probe write goes down (tried every
//! [`PROBE_EVERY`]), or a batch does, the journal says it is failing
//! ([`Journal::is_failing`]): the bidder then makes no bids whose wins it
//! could not record. The writer probes while all is well too, once every
//! [`PROBE_EVERY`]: a disk that filled, or went read-only, under other
//! files stops bids before a win comes that cannot be written (operators
//! probe: 200 bids were made on a full disk, and most of their wins were
//! refused). A disk that takes no write at all (frozen, or a network
//! volume gone) fails nothing, so a watch thread calls a write that has
//! not finished in [`STALL_AFTER`] a failure too, until it finishes.
//!
//! The journal is compacted: after `compact_after` records the writer lists
//! the ledger's durable state into a checkpoint (written to a temporary
//! file, fsync'd, renamed over the old one, directory fsync'd) and starts a
//! new journal generation the same way. The checkpoint says exactly what it
//! covers — the journal generations before its own, and its own up to a
//! byte offset — so a crash, or a failure, between the two steps never
//! counts a record twice nor loses one: the writer keeps appending to the
//! old generation, and start-up replays what lies past the offset.
//! Start-up reads the checkpoint and the journal written since, so replay
//! time is bounded by what is live, not by how long the bidder has run.
//! Every line carries a checksum; replay skips a line that fails it (a write
//! that was never acknowledged) and cuts off a torn last line, so neither
//! stops a restart. A state directory whose files do not fit together (a
//! journal header that cannot be read, a generation the checkpoint does not
//! lead to, a missing journal) is refused: starting with spend unknown
//! would spend it again.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read as _, Seek as _, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;

use config::{Clock, Date, Micros, Timestamp};

use crate::budget::BudgetKind;
use crate::key::{BidKey, SpendKey};
use crate::{Charge, Durable, Ledger, Prior, Tags};

const JOURNAL: &str = "charges.journal";
const CHECKPOINT: &str = "ledger.checkpoint";
const LOCK: &str = "LOCK";
const JOURNAL_MAGIC: &str = "bidder-journal 1";
const CHECKPOINT_MAGIC: &str = "bidder-ledger-checkpoint 1";
/// Records written at most in one batch (one write, one fsync).
const MAX_BATCH: usize = 4096;
/// How often a failing journal checks whether writes go down again.
pub const PROBE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// What a probe writes: more than a batch of a few records takes, so a
/// disk with room for the probe has room for the next charges.
const PROBE_BYTES: usize = 16 * 1024;
const PROBE_FILE: &str = "journal.probe";
/// How long a write (or probe, or compaction) may stay unfinished before
/// it fails the journal until it finishes ([`JournalOptions::stall_after`]):
/// longer than a slow disk's fsync under load takes, short enough that the
/// wins of bids made meanwhile are not left waiting long. Real time, not
/// the bidder's clock: it measures the disk, and a test's clock moved a
/// day ahead must not read as a write that took a day.
pub const STALL_AFTER: std::time::Duration = std::time::Duration::from_secs(5);
/// How often the watch thread looks.
const WATCH_EVERY: std::time::Duration = std::time::Duration::from_millis(100);
/// `Failing::busy_since` while the writer is not on the disk.
const IDLE: u64 = 0;

/// Where the journal lives: a directory on disk, or a test double that
/// fails on purpose.
pub trait Storage: Send + 'static {
    /// Appends bytes at the end of the journal.
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Makes what was appended durable.
    fn sync(&mut self) -> io::Result<()>;
    /// Cuts the journal back to `len` bytes (and makes that durable).
    fn truncate(&mut self, len: u64) -> io::Result<()>;
    /// Replaces the checkpoint, then the journal by one holding only
    /// `header`, each atomically. `Ok(true)`: both were replaced.
    /// Otherwise appends go on to the old journal, which the checkpoint (new
    /// or old) covers up to where it ended: `Ok(false)` says the checkpoint
    /// was replaced, `Err` that it may or may not have been.
    fn compact(&mut self, checkpoint: &[u8], header: &[u8]) -> io::Result<bool>;
    /// After a failed write: whether writes go down again (room on the
    /// disk, a disk that answers), without writing to the journal. Syncs
    /// the journal's file, then writes and syncs [`PROBE_BYTES`] beside
    /// it, and removes them.
    fn probe(&mut self) -> io::Result<()>;

    /// Whether the journal's volume has `min_free` bytes free: the room the
    /// wins of the bids out need. The files' own volume says; a double
    /// that keeps no volume has room.
    fn room(&mut self, _min_free: u64) -> io::Result<()> {
        Ok(())
    }
}

/// The journal and checkpoint files in a directory.
pub struct FileStorage {
    dir: PathBuf,
    file: File,
    /// The journal was renamed into place but the directory not yet
    /// fsync'd: nothing is acknowledged until it is.
    dir_unsynced: bool,
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `dir` and what it needs above it, readable by its owner only
/// where it makes them (an existing directory keeps its mode): the state
/// directory's records hold keyed user hashes, bids and features. Public
/// for the bidder's other records there, as [`replace_file`] is.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Writes `bytes` to `dir/name` through a temporary file and a rename, so a
/// crash leaves the old file or the new one, never half of one. Public for
/// the bidder's other records in the state directory.
pub fn replace_file(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    replace_file_with(dir, name, false, |f| f.write_all(bytes))
}

/// [`replace_file`] with the contents written by `write` (a large file is
/// streamed, not built in memory first); `private`: readable by its owner
/// only.
pub fn replace_file_with(
    dir: &Path,
    name: &str,
    private: bool,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    // Made anew: a temporary file left by a crash keeps the mode it was
    // made with, and one (or a link) put there since is not written
    // through.
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut open = OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    }
    let mut f = open.open(&tmp)?;
    let written = write(&mut f)
        .and_then(|()| f.sync_all())
        .and_then(|()| std::fs::rename(&tmp, dir.join(name)));
    if let Err(e) = written {
        // A full disk: the part written goes, not to be taken for a copy.
        drop(f);
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    drop(f);
    sync_dir(dir)
}

impl FileStorage {
    fn open_append(dir: &Path) -> io::Result<File> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(JOURNAL))
    }
}

impl Storage for FileStorage {
    fn room(&mut self, min_free: u64) -> io::Result<()> {
        let stats = rustix::fs::fstatvfs(&self.file)?;
        // What an unprivileged writer may still take (root's reserve aside).
        let free = stats.f_bavail.saturating_mul(stats.f_frsize);
        if free < min_free {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!(
                    "the state volume has {free} bytes free, under the {min_free} kept for the \
                     charges of the wins of bids out"
                ),
            ));
        }
        Ok(())
    }

    fn probe(&mut self) -> io::Result<()> {
        // The journal's own file first: a failure of that file alone (a
        // handle gone stale, bad blocks under it) is not one the directory
        // shows.
        self.file.sync_all()?;
        let path = self.dir.join(PROBE_FILE);
        let written = File::create(&path).and_then(|mut f| {
            f.write_all(&[b'\n'; PROBE_BYTES])?;
            f.sync_all()
        });
        let removed = std::fs::remove_file(&path);
        written.and(removed)
    }

    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.dir_unsynced {
            sync_dir(&self.dir)?;
            self.dir_unsynced = false;
        }
        self.file.write_all(bytes)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)?;
        self.file.sync_all()
    }

    fn compact(&mut self, checkpoint: &[u8], header: &[u8]) -> io::Result<bool> {
        // The generation being closed is kept under a name of its own for
        // reports (a hard link: the writer's handle and the archive are one
        // file, so appends after a failed swap below land in both).
        let closing = std::str::from_utf8(header)
            .ok()
            .and_then(|h| read_header(h.trim_end()))
            .and_then(|g| g.checked_sub(1))
            .filter(|&g| g > 0);
        if let Some(g) = closing {
            let live = self.dir.join(JOURNAL);
            let archive = self.dir.join(archive_name(g));
            let _ = std::fs::remove_file(&archive);
            if let Err(e) = std::fs::hard_link(&live, &archive) {
                // A file system without hard links: a copy, whole or not at
                // all. Money before reports: compaction goes on either way.
                let tmp = self.dir.join(format!("{}.tmp", archive_name(g)));
                let copied = std::fs::copy(&live, &tmp)
                    .and_then(|_| File::open(&tmp)?.sync_all())
                    .and_then(|()| std::fs::rename(&tmp, &archive));
                if let Err(e2) = copied {
                    let _ = std::fs::remove_file(&tmp);
                    tracing::error!(
                        "{}: journal generation {g} not kept for reports ({e}; {e2})",
                        self.dir.display()
                    );
                }
            }
        }
        replace_file(&self.dir, CHECKPOINT, checkpoint)?;
        // The new journal is written and opened for appending before it is
        // renamed into place: once it is there, the handle is already ours.
        let tmp = self.dir.join(format!("{JOURNAL}.tmp"));
        let fresh = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(header)?;
            f.sync_all()?;
            drop(f);
            let f = OpenOptions::new().append(true).open(&tmp)?;
            std::fs::rename(&tmp, self.dir.join(JOURNAL))?;
            Ok::<File, io::Error>(f)
        })();
        match fresh {
            Ok(f) => {
                self.file = f;
                if sync_dir(&self.dir).is_err() {
                    self.dir_unsynced = true;
                }
                Ok(true)
            }
            Err(e) => {
                tracing::error!(
                    "{}: the new journal could not be started ({e}); appending to the old one",
                    self.dir.display()
                );
                Ok(false)
            }
        }
    }
}

/// Why the state directory could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: the checkpoint is damaged ({why}); refusing to start with spend unknown")]
    Checkpoint { path: PathBuf, why: String },
    #[error("{path}: {why}; refusing to start with spend unknown (restore the state directory from a backup)")]
    State { path: PathBuf, why: String },
    /// Another process holds the directory (a replica still running).
    #[error("{path}: another bidder process is using this state directory")]
    Locked { path: PathBuf },
}

/// What start-up found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Charges replayed from the journal.
    pub charges: usize,
    /// Entries read from the checkpoint.
    pub checkpoint_entries: usize,
    /// Lines that failed their checksum or could not be read: writes that
    /// were never acknowledged.
    pub skipped: usize,
    /// Bytes of a torn last line cut off.
    pub cut: u64,
}

type Ack = tokio::sync::oneshot::Sender<io::Result<()>>;

enum Job {
    Charge(String, Charge, Ack),
}

/// The journal's writer, as the rest of the bidder sees it.
pub struct Journal {
    tx: mpsc::Sender<Job>,
    dir: PathBuf,
    writer: std::thread::JoinHandle<()>,
    /// To abort a charge the writer can no longer take.
    ledger: Arc<dyn Ledger>,
    failing: Arc<Failing>,
}

/// Whether the last write failed, and how: set by the writer, read by every
/// bid (the flag alone, without a lock).
struct Failing {
    /// Which of [`WRITE_FAILED`], [`PROBE_FAILED`] and [`STALLED`] fail it now: each is
    /// cleared only by what shows its cause has passed.
    now: std::sync::atomic::AtomicU8,
    why: std::sync::Mutex<String>,
    /// Where `busy_since` counts from.
    base: std::time::Instant,
    /// When the writer's current disk operation began (microseconds since
    /// `base`, plus one), or [`IDLE`].
    busy_since: std::sync::atomic::AtomicU64,
    /// How long the current operation may take before it is a stall.
    allowed: std::sync::atomic::AtomicU64,
    /// How long a write or probe may take (a compaction: [`COMPACTION_ALLOWANCE`] times).
    stall_after: std::time::Duration,
}

/// A write of charges failed: cleared by the next that goes down, or a probe.
const WRITE_FAILED: u8 = 1;
/// A probe failed (the volume full to under its reserve, read-only, gone):
/// cleared by a probe only. A charge that still fits in the journal's last
/// block shows nothing about the room the wins of the bids out need (review
/// finding: each charge cleared a failed probe, and under traffic bids went
/// on past it).
const PROBE_FAILED: u8 = 2;
/// An operation has been on the disk past its allowance: cleared when it
/// ends.
const STALLED: u8 = 4;
/// A compaction writes the whole checkpoint: it may take this many times a
/// write's allowance before it counts as a stall.
const COMPACTION_ALLOWANCE: u32 = 6;

impl Failing {
    fn new(stall_after: std::time::Duration) -> Failing {
        Failing {
            now: Default::default(),
            why: Default::default(),
            base: std::time::Instant::now(),
            busy_since: std::sync::atomic::AtomicU64::new(IDLE),
            allowed: std::sync::atomic::AtomicU64::new(0),
            stall_after,
        }
    }

    /// Microseconds since `base`, plus one (never [`IDLE`]).
    fn now_micros(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_micros()).unwrap_or(u64::MAX - 1) + 1
    }

    /// The writer goes to the disk for an operation allowed `times` a
    /// write's time.
    fn enter(&self, times: u32) {
        use std::sync::atomic::Ordering::Release;
        let allowed = self.stall_after.saturating_mul(times);
        self.allowed.store(
            u64::try_from(allowed.as_micros()).unwrap_or(u64::MAX),
            Release,
        );
        self.busy_since.store(self.now_micros(), Release);
    }

    /// The writer is back from the disk: a stall it caused ends. Whether
    /// there was one.
    fn leave(&self) -> bool {
        use std::sync::atomic::Ordering::{AcqRel, Release};
        self.busy_since.store(IDLE, Release);
        self.now.fetch_and(!STALLED, AcqRel) & STALLED != 0
    }

    /// Sets the failure if the writer has been on the disk past its
    /// allowance.
    fn check_stall(&self) {
        use std::sync::atomic::Ordering::Acquire;
        let since = self.busy_since.load(Acquire);
        if since == IDLE {
            return;
        }
        let took = self.now_micros().saturating_sub(since);
        if took < self.allowed.load(Acquire) {
            return;
        }
        // Only while the operation is still the one that began at `since`:
        // one that ended meanwhile is no stall.
        let secs = took as f64 / 1e6;
        if self.busy_since.load(Acquire) == since && self.now.load(Acquire) & STALLED == 0 {
            tracing::error!(
                "the state disk has not finished a journal write in {secs:.1} s: no bids until it does"
            );
            self.set(
                STALLED,
                &io::Error::other(format!(
                    "the state disk has not finished a write in {secs:.1} s"
                )),
            );
            // It ended just now: the writer's clearing may have come first.
            if self.busy_since.load(Acquire) != since {
                self.clear(STALLED);
            }
        }
    }

    fn set(&self, kind: u8, why: &io::Error) {
        if let Ok(mut w) = self.why.lock() {
            *w = why.to_string();
        }
        self.now.fetch_or(kind, std::sync::atomic::Ordering::AcqRel);
    }

    /// Clears `kinds`: whether that leaves it writable after failing.
    fn clear(&self, kinds: u8) -> bool {
        let was = self
            .now
            .fetch_and(!kinds, std::sync::atomic::Ordering::AcqRel);
        was != 0 && was & !kinds == 0
    }

    fn is_set(&self) -> bool {
        self.now.load(std::sync::atomic::Ordering::Acquire) != 0
    }
}

/// Tuning of the writer.
#[derive(Clone, Debug)]
pub struct JournalOptions {
    /// Records after which the journal is compacted into the checkpoint.
    pub compact_after: usize,
    /// Where the writer says how far its generation is durable (for the
    /// report mirror).
    pub synced: Option<crate::synced::Synced>,
    /// How long a disk operation may take before the journal fails until
    /// it ends ([`STALL_AFTER`]).
    pub stall_after: std::time::Duration,
    /// Free bytes the journal's volume must keep for the wins of the bids
    /// out: under them a probe fails and no bids are made
    /// ([`MIN_FREE_BYTES`] by default).
    pub min_free_bytes: u64,
}

/// [`JournalOptions::min_free_bytes`]'s default: the charges of some half a
/// million wins.
pub const MIN_FREE_BYTES: u64 = 64 << 20;

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions {
            compact_after: 200_000,
            synced: None,
            stall_after: STALL_AFTER,
            min_free_bytes: MIN_FREE_BYTES,
        }
    }
}

impl Journal {
    /// Opens (or creates) the journal in `dir`, loads the checkpoint and
    /// replays the journal into `ledger`, and starts the writer.
    pub fn open(
        dir: &Path,
        ledger: Arc<dyn Ledger>,
        clock: Arc<dyn Clock>,
        options: JournalOptions,
    ) -> Result<(Journal, Replayed), OpenError> {
        Journal::open_with(dir, ledger, clock, options, |s| Box::new(s))
    }

    /// As [`Journal::open`], with the file storage wrapped by `wrap` (tests
    /// inject faults this way).
    pub fn open_with(
        dir: &Path,
        ledger: Arc<dyn Ledger>,
        clock: Arc<dyn Clock>,
        options: JournalOptions,
        wrap: impl FnOnce(FileStorage) -> Box<dyn Storage>,
    ) -> Result<(Journal, Replayed), OpenError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| OpenError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        // The directory entry itself must survive a crash, or the first
        // acknowledged charge could vanish with it (whoever created it).
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent).map_err(io_err(parent))?;
        }
        // One process per state directory: a second one appending to the
        // same journal (a restart whose old process has not stopped yet)
        // would lose the other's charges at its next compaction. The lock
        // goes with the writer thread, or with the process.
        let lock_path = dir.join(LOCK);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(OpenError::Locked { path: lock_path })
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err(&lock_path)(e)),
        }
        let now = clock.now();
        let mut replayed = Replayed::default();
        let covered = read_checkpoint(&dir.join(CHECKPOINT), &*ledger, now, &mut replayed)?;
        let path = dir.join(JOURNAL);
        let found = replay(&path, covered, &*ledger, now, &mut replayed)?;
        let mut storage = FileStorage {
            dir: dir.to_path_buf(),
            file: FileStorage::open_append(dir).map_err(io_err(&path))?,
            dir_unsynced: false,
        };
        let generation = match found {
            Found::Generation { generation, whole } => {
                let len = storage.file.metadata().map_err(io_err(&path))?.len();
                if len > whole {
                    // A torn last record was never acknowledged.
                    replayed.cut = len - whole;
                    storage.truncate(whole).map_err(io_err(&path))?;
                }
                generation
            }
            Found::Nothing | Found::Legacy => {
                if matches!(found, Found::Nothing) {
                    // The header goes in before the checkpoint does: a
                    // checkpoint beside an empty journal is then never a
                    // first start stopped early, always a journal that lost
                    // its charges (ops probe: an emptied journal was taken
                    // for a first start, and every notice charged again).
                    // Whole or not at all (a temporary file renamed over
                    // the empty journal): a header cut short would refuse
                    // every start after (review finding). The handle on the
                    // empty file is replaced with the first generation's.
                    replace_file(dir, JOURNAL, header(1).as_bytes()).map_err(io_err(&path))?;
                }
                // A new state directory, or a journal from before headers
                // (replayed above): what it holds goes into a checkpoint and
                // a first generation starts. Both must be in place before
                // anything is acknowledged, or the old journal would count
                // twice at the next start.
                let g = covered.map_or(1, |c| c.generation + 1);
                let checkpoint = checkpoint_text(
                    &*ledger,
                    now,
                    Covered {
                        generation: g - 1,
                        len: 0,
                    },
                );
                match storage.compact(checkpoint.as_bytes(), header(g).as_bytes()) {
                    Ok(true) => g,
                    Ok(false) => {
                        return Err(OpenError::State {
                            path,
                            why: "the first journal could not be written".into(),
                        })
                    }
                    Err(e) => return Err(io_err(dir)(e)),
                }
            }
        };
        sync_dir(dir).map_err(io_err(dir))?;
        let good_len = storage.file.metadata().map_err(io_err(&path))?.len();
        let storage = wrap(storage);
        if let Some(s) = &options.synced {
            s.set(archive_name(generation), good_len);
        }
        let (tx, rx) = mpsc::channel::<Job>();
        let failing = Arc::new(Failing::new(options.stall_after));
        let mut writer = Writer {
            failing: failing.clone(),
            _lock: lock,
            storage,
            ledger: ledger.clone(),
            clock,
            good_len,
            dirty: false,
            generation,
            since_compaction: replayed.charges,
            options,
        };
        // Probed once before the journal is handed out: on a full or
        // read-only volume the bidder started ready and bid for a second,
        // until the writer's first probe (ops probe).
        writer.probe();
        let writer = std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || writer.run(rx))
            .map_err(io_err(dir))?;
        // The watch holds the flag weakly: it ends once the journal and its
        // writer are gone.
        let watched = Arc::downgrade(&failing);
        std::thread::Builder::new()
            .name("journal-watch".into())
            .spawn(move || loop {
                std::thread::sleep(WATCH_EVERY);
                let Some(f) = watched.upgrade() else { break };
                f.check_stall();
            })
            .map_err(io_err(dir))?;
        Ok((
            Journal {
                tx,
                dir: dir.to_path_buf(),
                writer,
                ledger,
                failing,
            },
            replayed,
        ))
    }

    /// Whether charges cannot be written now: from a failed write until a
    /// write (or a probe) goes down again. One atomic load.
    pub fn is_failing(&self) -> bool {
        self.failing.is_set()
    }

    /// Why charges cannot be written now, if they cannot.
    /// Whether the writer thread has ended (a panic): no charge can be
    /// written again by this process, whatever the disk does, and only a
    /// restart brings the writer back (liveness).
    pub fn stopped(&self) -> bool {
        self.writer.is_finished()
    }

    pub fn failing(&self) -> Option<String> {
        if !self.failing.is_set() {
            return None;
        }
        Some(
            self.failing
                .why
                .lock()
                .map(|w| w.clone())
                .unwrap_or_default(),
        )
    }

    /// Stops taking records and waits until the writer has written (and
    /// compacted) everything it was given: a clean shutdown.
    pub fn close(self) {
        drop(self.tx);
        let _ = self.writer.join();
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the charge; resolves once it is on disk and committed to the
    /// ledger, or aborted.
    pub async fn append(&self, charge: Charge) -> io::Result<()> {
        let (ack, done) = tokio::sync::oneshot::channel();
        let line = record_line(&charge);
        if let Err(mpsc::SendError(Job::Charge(_, charge, _))) =
            self.tx.send(Job::Charge(line, charge, ack))
        {
            self.ledger.abort(&charge);
            return Err(io::Error::other(format!(
                "journal writer stopped (bid {})",
                charge.bid
            )));
        }
        done.await
            .unwrap_or_else(|_| Err(io::Error::other("journal writer stopped")))
    }
}

struct Writer {
    failing: Arc<Failing>,
    /// Held for as long as the writer runs.
    _lock: File,
    storage: Box<dyn Storage>,
    ledger: Arc<dyn Ledger>,
    clock: Arc<dyn Clock>,
    /// Length of the journal up to its last whole, acknowledged record.
    good_len: u64,
    /// A failed write could not be cut back yet: nothing more is written
    /// until it is.
    dirty: bool,
    generation: u64,
    since_compaction: usize,
    options: JournalOptions,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Job>) {
        // A writer that panicked takes no more charges: every append is
        // refused from then on, so no bid may be made either.
        struct Stopped(Arc<Failing>);
        impl Drop for Stopped {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    self.0.set(
                        WRITE_FAILED | PROBE_FAILED,
                        &io::Error::other("the journal writer stopped (a panic)"),
                    );
                }
            }
        }
        let _stopped = Stopped(self.failing.clone());
        // Probes every PROBE_EVERY, failing or not: while failing no bids
        // are made, so nothing may come to write that would show the disk
        // is back; while not, the disk may fill under other files.
        let mut probed = std::time::Instant::now();
        loop {
            let first = match rx.recv_timeout(PROBE_EVERY.saturating_sub(probed.elapsed())) {
                Ok(job) => job,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.probe();
                    probed = std::time::Instant::now();
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(more) => batch.push(more),
                    Err(_) => break,
                }
            }
            self.write(batch);
            if self.since_compaction >= self.options.compact_after {
                self.compact();
            }
            if probed.elapsed() >= PROBE_EVERY {
                self.probe();
                probed = std::time::Instant::now();
            }
        }
    }

    /// Marks the writer as on the disk from now until `busy` returns, for
    /// the watch ([`Failing::check_stall`]), allowed `times` a write's time.
    /// A failure of it is set as `fails` (none: 0) before a stall it caused
    /// is cleared: a disk that hung and then failed never reads as writable
    /// in between (review finding).
    fn on_disk<T>(
        &mut self,
        times: u32,
        fails: u8,
        busy: impl FnOnce(&mut Self) -> io::Result<T>,
    ) -> io::Result<T> {
        self.failing.enter(times);
        let out = busy(self);
        if let (Err(e), 1..) = (&out, fails) {
            self.failing.set(fails, e);
        }
        if self.failing.leave() && !self.failing.is_set() {
            tracing::warn!("journal writable again: the write the disk held went down");
        }
        out
    }

    fn probe(&mut self) {
        let min_free = self.options.min_free_bytes;
        let was_failing = self.failing.is_set();
        match self.on_disk(1, PROBE_FAILED, |w| {
            w.cut_back()?;
            w.storage.probe()?;
            w.storage.room(min_free)
        }) {
            Ok(()) => self.writable(WRITE_FAILED | PROBE_FAILED),
            Err(e) => {
                if !was_failing {
                    tracing::error!("journal probe failed, no bids until one goes down: {e}");
                }
            }
        }
    }

    /// A write (or a probe) went down: what it shows has passed, `kinds`,
    /// no longer stops bids.
    fn writable(&self, kinds: u8) {
        if self.failing.clear(kinds) {
            tracing::warn!("journal writable again: bidding resumes");
        }
    }

    fn write(&mut self, batch: Vec<Job>) {
        let mut buf = Vec::with_capacity(batch.len() * 120);
        for Job::Charge(line, _, _) in &batch {
            buf.extend_from_slice(line.as_bytes());
        }
        let result = self.on_disk(1, WRITE_FAILED, |w| {
            w.cut_back()?;
            w.storage.append(&buf)?;
            w.storage.sync()
        });
        match result {
            Ok(()) => {
                self.writable(WRITE_FAILED);
                self.good_len += buf.len() as u64;
                if let Some(s) = &self.options.synced {
                    s.set(archive_name(self.generation), self.good_len);
                }
                self.since_compaction += batch.len();
                for Job::Charge(_, charge, ack) in batch {
                    self.ledger.commit(&charge);
                    let _ = ack.send(Ok(()));
                }
            }
            Err(e) => {
                tracing::error!(
                    "journal write failed, {} charge(s) refused, no bids until it writes again: {e}",
                    batch.len()
                );
                self.dirty = true;
                // Cut back now if the disk lets us; otherwise before the
                // next write.
                let _ = self.cut_back();
                for Job::Charge(_, charge, ack) in batch {
                    self.ledger.abort(&charge);
                    let _ = ack.send(Err(io::Error::new(e.kind(), e.to_string())));
                }
            }
        }
    }

    fn cut_back(&mut self) -> io::Result<()> {
        if self.dirty {
            self.storage.truncate(self.good_len)?;
            self.dirty = false;
        }
        Ok(())
    }

    fn compact(&mut self) {
        let next = self.generation + 1;
        // What the ledger holds now is exactly the journal up to here.
        let covers = Covered {
            generation: self.generation,
            len: self.good_len,
        };
        let text = checkpoint_text(&*self.ledger, self.clock.now(), covers);
        let head = header(next);
        match self.on_disk(COMPACTION_ALLOWANCE, 0, |w| {
            w.storage.compact(text.as_bytes(), head.as_bytes())
        }) {
            Ok(true) => {
                if let Some(s) = &self.options.synced {
                    // Whole and final: nothing is cut back from it now.
                    s.forget(&archive_name(self.generation));
                    s.set(archive_name(next), head.len() as u64);
                }
                self.generation = next;
                self.good_len = head.len() as u64;
                self.since_compaction = 0;
                self.dirty = false;
            }
            result => {
                // The journal goes on in this generation and stays whole
                // (the checkpoint, if written, covers it up to `covers`);
                // try again after another tenth of the interval.
                if let Err(e) = result {
                    tracing::error!("journal compaction failed: {e}");
                }
                self.since_compaction = self.options.compact_after * 9 / 10;
            }
        }
    }
}

/// What a checkpoint covers: every journal generation before `generation`,
/// and that one's first `len` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Covered {
    generation: u64,
    len: u64,
}

/// Reads a stopped bidder's state directory into `ledger` the way its
/// start would (the checkpoint, then the journal past what it covers),
/// without taking its lock or changing a file: for tools that read other
/// replicas' directories, or read-only copies of them (`bidder ledger
/// reconcile`). A torn last record is skipped, as a start would cut it off.
/// `None` when a bidder runs on it (holds its lock); while it is read, a
/// shared lock keeps a bidder from starting on it.
pub fn read_stopped(
    dir: &Path,
    ledger: &dyn Ledger,
    now: Timestamp,
) -> Result<Option<Replayed>, OpenError> {
    let lock_path = dir.join(LOCK);
    let _lock = match File::open(&lock_path) {
        Ok(f) => match f.try_lock_shared() {
            Ok(()) => Some(f),
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(OpenError::Io {
                    path: lock_path,
                    source,
                })
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(OpenError::Io {
                path: lock_path,
                source,
            })
        }
    };
    let mut replayed = Replayed::default();
    let covered = read_checkpoint(&dir.join(CHECKPOINT), ledger, now, &mut replayed)?;
    let path = dir.join(JOURNAL);
    if let Found::Generation { whole, .. } = replay(&path, covered, ledger, now, &mut replayed)? {
        let len = std::fs::metadata(&path).map_or(whole, |m| m.len());
        replayed.cut = len.saturating_sub(whole);
    }
    Ok(Some(replayed))
}

/// What the checkpoint of a first start (or of a migration from the old
/// format) covers: nothing of any generation.
const FIRST: Covered = Covered {
    generation: 0,
    len: 0,
};

/// What start-up found in the journal file.
enum Found {
    /// No journal yet.
    Nothing,
    /// One from before headers, replayed whole.
    Legacy,
    /// A generation, replayed past what the checkpoint covers; `whole` is
    /// the length of its whole lines.
    Generation { generation: u64, whole: u64 },
}

fn header(generation: u64) -> String {
    format!("{JOURNAL_MAGIC} {generation}\n")
}

fn read_header(line: &str) -> Option<u64> {
    line.strip_prefix(JOURNAL_MAGIC)?
        .strip_prefix(' ')?
        .parse()
        .ok()
}

/// Where a compacted generation is kept: its records are what reports read.
fn archive_name(generation: u64) -> String {
    format!("charges.{generation}.journal")
}

/// A journal generation on disk, as reports read it: opened when listed,
/// so a compaction that renames files meanwhile cannot swap it for another.
#[derive(Debug)]
pub struct Generation {
    pub generation: u64,
    pub path: PathBuf,
    /// Closed by a compaction: its records will not change.
    pub closed: bool,
    /// Its length when listed.
    pub len: u64,
    pub file: File,
}

/// The journal generations in `dir`, oldest first, each once: the live
/// journal, and those kept when compacted. The live journal is opened
/// first: every generation before it was kept (linked) before it became
/// live, so the listing that follows finds them all, and one compacted
/// meanwhile is read through the handle already open (same file as its
/// archive). Generations from before archives were kept are gone (their
/// spend is in the checkpoint only).
pub fn generations(dir: &Path) -> io::Result<Vec<Generation>> {
    let mut found: std::collections::BTreeMap<u64, Generation> = Default::default();
    let live_path = dir.join(JOURNAL);
    let live = match File::open(&live_path) {
        Ok(f) => {
            let mut first = Vec::new();
            BufReader::new(&f).take(256).read_until(b'\n', &mut first)?;
            let g = std::str::from_utf8(&first)
                .ok()
                .and_then(|h| read_header(h.trim_end()));
            g.map(|g| (g, f))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(g) = name
            .to_str()
            .and_then(|n| n.strip_prefix("charges.")?.strip_suffix(".journal"))
            .and_then(|g| g.parse::<u64>().ok())
        else {
            continue;
        };
        if live.as_ref().is_some_and(|(l, _)| *l == g) {
            continue;
        }
        let file = match File::open(entry.path()) {
            Ok(f) => f,
            // Removed since it was listed: nothing of it to read.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        found.insert(
            g,
            Generation {
                generation: g,
                path: entry.path(),
                closed: true,
                len: file.metadata()?.len(),
                file,
            },
        );
    }
    if let Some((g, file)) = live {
        found.insert(
            g,
            Generation {
                generation: g,
                path: live_path,
                closed: false,
                len: file.metadata()?.len(),
                file,
            },
        );
    }
    Ok(found.into_values().collect())
}

/// The next line of `reader` (its newline kept) as text; `Ok(None)` at
/// the end. A line that is not UTF-8 (a damaged write) comes back empty,
/// so readers skip it as they skip any line that is not a record.
pub fn next_line(
    reader: &mut impl BufRead,
    buf: &mut Vec<u8>,
) -> io::Result<Option<(usize, bool)>> {
    buf.clear();
    let n = reader.read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(None);
    }
    let whole = buf.ends_with(b"\n");
    if std::str::from_utf8(buf).is_err() {
        buf.clear();
        if whole {
            buf.push(b'\n');
        }
    }
    Ok(Some((n, whole)))
}

/// Calls `f` with every readable charge record of one generation's file,
/// in order, the way start-up reads them: a line failing its checksum (a
/// write never acknowledged) and a torn last line are skipped. `f` also
/// gets the bytes read so far, for progress. Returns the length of the
/// whole lines read.
pub fn read_generation(file: &File, f: impl FnMut(Charge, u64)) -> io::Result<u64> {
    read_generation_counted(file, f).map(|r| r.whole)
}

/// What [`read_generation_counted`] read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GenerationRead {
    /// The length of the whole lines read.
    pub whole: u64,
    /// Whole lines past the header that are no readable record (a write
    /// never acknowledged, damage, another version's format).
    pub unreadable: u64,
}

/// [`read_generation`], counting the lines it could not read.
pub fn read_generation_counted(
    file: &File,
    mut f: impl FnMut(Charge, u64),
) -> io::Result<GenerationRead> {
    let mut reader = BufReader::with_capacity(1 << 20, file);
    reader.seek(io::SeekFrom::Start(0))?;
    let mut buf = Vec::new();
    let mut read = GenerationRead::default();
    let mut header = true;
    while let Some((n, whole)) = next_line(&mut reader, &mut buf)? {
        if !whole {
            break;
        }
        read.whole += n as u64;
        let text = std::str::from_utf8(&buf).unwrap_or_default();
        match parse_record(text.trim_end_matches('\n')) {
            Some(c) => f(c, read.whole),
            None if header => {}
            None => read.unreadable += 1,
        }
        header = false;
    }
    Ok(read)
}

/// FNV-1a, 32 bits: enough to tell a torn or garbled line from a whole one
/// (this guards against accidents, not attackers: only we write here).
fn checksum(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Ids are percent-encoded in the journal so that no tab, space or newline
/// in an account manager's id can break a line (non-ASCII is encoded too).
const JOURNAL_ID: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS.add(b' ').add(b'%');

fn encode(s: &str, out: &mut String) {
    out.extend(percent_encoding::utf8_percent_encode(s, JOURNAL_ID));
}

/// An id as the journal writes it, for the state directory's other files.
pub(crate) fn encode_id(s: &str, out: &mut String) {
    encode(s, out)
}

/// What [`encode_id`] wrote.
pub(crate) fn decode_id(s: &str) -> Option<String> {
    decode(s)
}

fn decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

fn kind_str(k: Option<BudgetKind>) -> &'static str {
    match k {
        Some(BudgetKind::Daily) => "d",
        Some(BudgetKind::Lifetime) => "l",
        None => "-",
    }
}

fn parse_kind(s: &str) -> Option<Option<BudgetKind>> {
    match s {
        "d" => Some(Some(BudgetKind::Daily)),
        "l" => Some(Some(BudgetKind::Lifetime)),
        "-" => Some(None),
        _ => None,
    }
}

/// `C bid day billed over forget kind late li order adv creative exchange
/// keyword at [audience] crc`, tab separated, the day as days since
/// 1970-01-01. The fields after the order are what reports cut the charge
/// by; records written before them end at the order. The audience comes
/// last and only when there is one: records without it read as before
/// (and are the lines a bidder without audiences in reports wrote).
pub fn record_line(c: &Charge) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(192);
    let _ = write!(
        s,
        "C\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t",
        c.bid,
        c.day.days_since_epoch(),
        c.billed.as_i64(),
        c.over_delivery.as_i64(),
        c.forget.as_millis(),
        kind_str(c.kind),
        u8::from(c.late)
    );
    encode(&c.keys[0].to_string(), &mut s);
    s.push('\t');
    encode(&c.keys[1].to_string(), &mut s);
    for tag in [
        &c.tags.advertiser,
        &c.tags.creative,
        &c.tags.exchange,
        &c.tags.keyword,
    ] {
        s.push('\t');
        encode(tag, &mut s);
    }
    let _ = write!(s, "\t{}", c.tags.at_ms);
    if !c.tags.audience.is_empty() {
        s.push('\t');
        encode(&c.tags.audience, &mut s);
    }
    let crc = checksum(s.as_bytes());
    let _ = writeln!(s, "\t{crc:08x}");
    s
}

fn parse_record(line: &str) -> Option<Charge> {
    let (body, crc) = line.rsplit_once('\t')?;
    if u32::from_str_radix(crc, 16).ok()? != checksum(body.as_bytes()) {
        return None;
    }
    let mut f = body.split('\t');
    if f.next()? != "C" {
        return None;
    }
    let bid = BidKey(u64::from_str_radix(f.next()?, 16).ok()?);
    let day = Date::from_days_since_epoch(f.next()?.parse().ok()?);
    let billed = Micros(f.next()?.parse().ok()?);
    let over_delivery = Micros(f.next()?.parse().ok()?);
    let forget = Timestamp(f.next()?.parse().ok()?);
    let kind = parse_kind(f.next()?)?;
    let late = f.next()? == "1";
    let li = SpendKey::parse(&decode(f.next()?)?)?;
    let order = SpendKey::parse(&decode(f.next()?)?)?;
    let tags = match f.next() {
        None => Tags::default(),
        Some(adv) => {
            let mut tag = || decode(f.next()?).map(Arc::<str>::from);
            let (creative, exchange, keyword) = (tag()?, tag()?, tag()?);
            Tags {
                advertiser: decode(adv)?.into(),
                creative,
                exchange,
                keyword,
                at_ms: f.next()?.parse().ok()?,
                // Optional: written only when there is one.
                audience: match f.next() {
                    Some(a) => decode(a)?.into(),
                    None => "".into(),
                },
            }
        }
    };
    if f.next().is_some() || billed < Micros::ZERO || over_delivery < Micros::ZERO {
        return None;
    }
    Some(Charge {
        bid,
        day,
        billed,
        over_delivery,
        forget,
        keys: [li, order],
        kind,
        late,
        prior: Prior::None,
        tags,
    })
}

/// A record written before journals had headers and checksums:
/// `C bid YYYY-MM-DD billed forget key...`. Its bid id cannot come back in
/// a notice any more (ids changed form), so only its spend matters.
fn parse_legacy(line: &str) -> Option<Charge> {
    let mut f = line.split('\t');
    if f.next()? != "C" {
        return None;
    }
    let _bid = f.next()?;
    let day = Date::parse(f.next()?).ok()?;
    let billed = Micros(f.next()?.parse().ok()?);
    let _forget: i64 = f.next()?.parse().ok()?;
    let li = SpendKey::parse(f.next()?)?;
    let order = SpendKey::parse(f.next()?)?;
    Some(Charge {
        bid: BidKey(0),
        day,
        billed,
        over_delivery: Micros::ZERO,
        // Already forgotten: restore applies the spend without a dedup entry.
        forget: Timestamp(i64::MIN),
        keys: [li, order],
        kind: None,
        late: false,
        prior: Prior::None,
        tags: Tags::default(),
    })
}

/// As `read_line`, but a line that is not UTF-8 (damaged on disk) reads
/// as an empty one of the same byte length, skipped as any unreadable
/// record is, instead of stopping the read.
fn read_text_line(
    reader: &mut impl BufRead,
    bytes: &mut Vec<u8>,
    line: &mut String,
) -> io::Result<usize> {
    line.clear();
    match next_line(reader, bytes)? {
        None => Ok(0),
        Some((n, _)) => {
            line.push_str(std::str::from_utf8(bytes).unwrap_or_default());
            Ok(n)
        }
    }
}

/// Replays the journal at `path` past what the checkpoint covers.
fn replay(
    path: &Path,
    covered: Option<Covered>,
    ledger: &dyn Ledger,
    now: Timestamp,
    replayed: &mut Replayed,
) -> Result<Found, OpenError> {
    let io_err = |source| OpenError::Io {
        path: path.to_path_buf(),
        source,
    };
    let refuse = |why: String| OpenError::State {
        path: path.to_path_buf(),
        why,
    };
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return missing(covered).map(|()| Found::Nothing).map_err(refuse);
        }
        Err(e) => return Err(io_err(e)),
    };
    let mut reader = BufReader::with_capacity(1 << 20, f);
    let mut line = String::new();
    let mut bytes = Vec::new();
    let n = read_text_line(&mut reader, &mut bytes, &mut line).map_err(io_err)?;
    let (legacy, generation, skip) =
        match journal_start((n > 0).then_some(line.as_str()), covered).map_err(refuse)? {
            Start::Empty => return Ok(Found::Nothing),
            Start::Legacy { covered: true } => return Ok(Found::Legacy),
            Start::Legacy { covered: false } => (true, 0, 0),
            Start::Generation { generation, skip } => (false, generation, skip),
        };
    let mut whole = 0u64;
    let mut pending = Some(n);
    loop {
        let n = match pending.take() {
            Some(n) => n,
            None => {
                line.clear();
                read_text_line(&mut reader, &mut bytes, &mut line).map_err(io_err)?
            }
        };
        if n == 0 || !line.ends_with('\n') {
            break;
        }
        let at = whole;
        whole += n as u64;
        if !legacy && at == 0 {
            // The header.
            continue;
        }
        if at < skip {
            // In the checkpoint already.
            continue;
        }
        let text = line.trim_end_matches('\n');
        let charge = if legacy {
            parse_legacy(text)
        } else {
            parse_record(text)
        };
        match charge {
            Some(c) => {
                ledger.restore(&c, now);
                replayed.charges += 1;
            }
            None => {
                replayed.skipped += 1;
                tracing::error!(
                    "{}: skipped an unreadable record (never acknowledged, or damaged): {text:?}",
                    path.display()
                );
            }
        }
    }
    if whole < skip {
        return Err(refuse(format!(
            "the journal is shorter ({whole} bytes) than the checkpoint says it covers ({skip})"
        )));
    }
    if legacy {
        return Ok(Found::Legacy);
    }
    Ok(Found::Generation { generation, whole })
}

/// How a journal's first line fits the checkpoint covering `covered`: the
/// rules a start ([`replay`]) and `validate --state` ([`fits`]) both apply.
enum Start {
    /// No journal yet, or an empty one and no checkpoint.
    Empty,
    /// One from before headers; `covered`: a migration's checkpoint holds
    /// all of it already.
    Legacy { covered: bool },
    /// A generation, whose records past `skip` bytes the checkpoint does
    /// not hold.
    Generation { generation: u64, skip: u64 },
}

/// Refused when a checkpoint is there but the journal is not.
fn missing(covered: Option<Covered>) -> Result<(), String> {
    match covered {
        None => Ok(()),
        Some(_) => Err("the checkpoint is there but the journal is missing".into()),
    }
}

/// `line`: the journal's first line as read (its newline kept when whole),
/// `None` for an empty journal.
fn journal_start(line: Option<&str>, covered: Option<Covered>) -> Result<Start, String> {
    let Some(line) = line else {
        return match covered {
            None => Ok(Start::Empty),
            // A first start writes the journal's header before its
            // checkpoint; only versions before that could leave this.
            Some(FIRST) => Err("the journal is empty but a checkpoint is there (if this \
                 state directory never charged anything, a first start of an older \
                 version stopped early: remove both files to start afresh)"
                .into()),
            Some(_) => Err("the journal is empty but a checkpoint is there".into()),
        };
    };
    let first = line.trim_end_matches('\n');
    let header = read_header(first).filter(|_| line.ends_with('\n'));
    match (header, covered) {
        (Some(1), None) => Ok(Start::Generation {
            generation: 1,
            skip: 0,
        }),
        (Some(g), None) => Err(format!(
            "journal generation {g} has no checkpoint before it"
        )),
        (Some(g), Some(c)) if g == c.generation => Ok(Start::Generation {
            generation: g,
            skip: c.len,
        }),
        (Some(g), Some(c)) if g == c.generation + 1 => Ok(Start::Generation {
            generation: g,
            skip: 0,
        }),
        (Some(g), Some(c)) => Err(format!(
            "journal generation {g} does not follow the checkpoint's ({})",
            c.generation
        )),
        (None, None) if parse_legacy(first).is_some() => Ok(Start::Legacy { covered: false }),
        // A migration stopped between its checkpoint and its first journal:
        // that checkpoint was written after replaying this whole journal,
        // and a journal of the old format is never appended to, so it holds
        // all of it already.
        (None, Some(FIRST)) if parse_legacy(first).is_some() => Ok(Start::Legacy { covered: true }),
        (None, _) => Err(format!(
            "the journal's first line is not a header: {:?}",
            first.chars().take(80).collect::<String>()
        )),
    }
}

/// Whether `dir`'s ledger files fit together as start-up needs them (see
/// the module docs), for readers that must not take spend they cannot
/// read for none spent (reports): `Ok(false)` when there are none at all,
/// an error where start-up would refuse, and where kept generations are
/// there with neither journal nor checkpoint (their spend would be read
/// with no way to know what else there was). A state changing under it
/// (a running bidder compacting between the checkpoint read and the
/// journal's) is read again once, as [`budget_kinds`] does.
pub fn check_state(dir: &Path) -> Result<bool, OpenError> {
    match check_state_once(dir) {
        Err(OpenError::State { .. }) => check_state_once(dir),
        other => other,
    }
}

fn check_state_once(dir: &Path) -> Result<bool, OpenError> {
    let covered = parse_checkpoint(&dir.join(CHECKPOINT), &mut |_| {})?;
    if covered.is_none() && !dir.join(JOURNAL).exists() {
        let kept = generations(dir).map_err(|source| OpenError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        if kept.is_empty() {
            return Ok(false);
        }
        return Err(OpenError::State {
            path: dir.join(JOURNAL),
            why: "kept journal generations are there but the journal is missing".into(),
        });
    }
    fits(dir, covered)?;
    Ok(true)
}

/// Whether the live journal fits the checkpoint covering `covered`, by the
/// rules [`replay`] applies at a start, without reading its records.
fn fits(dir: &Path, covered: Option<Covered>) -> Result<(), OpenError> {
    let path = dir.join(JOURNAL);
    let refuse = |why: String| OpenError::State {
        path: path.clone(),
        why,
    };
    let io_err = |source| OpenError::Io {
        path: path.clone(),
        source,
    };
    let f = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return missing(covered).map_err(refuse),
        Err(e) => return Err(io_err(e)),
    };
    let len = f.metadata().map_err(io_err)?.len();
    let mut first = Vec::new();
    BufReader::new(&f)
        .take(64 * 1024)
        .read_until(b'\n', &mut first)
        .map_err(io_err)?;
    let line = String::from_utf8_lossy(&first);
    match journal_start((!first.is_empty()).then_some(&*line), covered).map_err(refuse)? {
        Start::Generation { skip, .. } if len < skip => Err(refuse(format!(
            "the journal is shorter ({len} bytes) than the checkpoint says it covers ({skip})"
        ))),
        _ => Ok(()),
    }
}

/// The checkpoint text of what `ledger` holds now, which is the journal up
/// to `covers`.
fn checkpoint_text(ledger: &dyn Ledger, now: Timestamp, covers: Covered) -> String {
    use std::fmt::Write as _;
    let mut s = format!("{CHECKPOINT_MAGIC} {} {}\n", covers.generation, covers.len);
    let mut lines = 1u64;
    // Charged ids grouped by expiry: one line per expiry, many ids a line.
    let mut charged: std::collections::BTreeMap<i64, Vec<BidKey>> = Default::default();
    ledger.export(now, &mut |item| match item {
        Durable::Spend {
            key,
            lifetime,
            days,
            kind,
        } => {
            s.push_str("S\t");
            encode(&key.to_string(), &mut s);
            let _ = write!(s, "\t{}\t{}\t", lifetime.as_i64(), kind_str(kind));
            for (i, (d, m, over)) in days.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                let _ = write!(s, "{d}:{}:{}", m.as_i64(), over.as_i64());
            }
            s.push('\n');
            lines += 1;
        }
        Durable::Charged { bid, forget } => {
            charged.entry(forget.as_millis()).or_default().push(bid)
        }
        Durable::Late { won, not_won, past } => {
            // Past the horizon's two after the first two: a reader before
            // them reads the first two and stops.
            let _ = match past {
                Some((pw, pn)) => writeln!(s, "W\t{won}\t{not_won}\t{pw}\t{pn}"),
                None => writeln!(s, "W\t{won}\t{not_won}"),
            };
            lines += 1;
        }
        Durable::Seen(t) => {
            let _ = writeln!(s, "T\t{}", t.as_millis());
            lines += 1;
        }
    });
    for (forget, bids) in charged {
        for chunk in bids.chunks(1024) {
            let _ = write!(s, "D\t{forget}\t");
            for (i, b) in chunk.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                let _ = write!(s, "{b}");
            }
            s.push('\n');
            lines += 1;
        }
    }
    let crc = checksum(s.as_bytes());
    let _ = writeln!(s, "E\t{lines}\t{crc:08x}");
    s
}

/// Loads the checkpoint at `path` into `ledger`; returns what it covers
/// (`None` when there is none).
fn read_checkpoint(
    path: &Path,
    ledger: &dyn Ledger,
    now: Timestamp,
    replayed: &mut Replayed,
) -> Result<Option<Covered>, OpenError> {
    parse_checkpoint(path, &mut |item| {
        replayed.checkpoint_entries += 1;
        ledger.import(item, now);
    })
}

/// Reads the checkpoint at `path`, checked whole first, giving each item
/// to `f`; returns what it covers (`None` when there is none).
fn parse_checkpoint(
    path: &Path,
    each: &mut dyn FnMut(Durable),
) -> Result<Option<Covered>, OpenError> {
    let bad = |why: &str| OpenError::Checkpoint {
        path: path.to_path_buf(),
        why: why.to_string(),
    };
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(OpenError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let text = std::str::from_utf8(&text).map_err(|_| bad("not UTF-8"))?;
    // Checked whole before anything is loaded: a damaged checkpoint must
    // not half-load.
    let body_end = text
        .trim_end_matches('\n')
        .rfind('\n')
        .map(|i| i + 1)
        .ok_or_else(|| bad("too short"))?;
    let (body, end) = text.split_at(body_end);
    let mut e = end.trim_end_matches('\n').split('\t');
    let (Some("E"), Some(lines), Some(crc), None) = (e.next(), e.next(), e.next(), e.next()) else {
        return Err(bad("no end line"));
    };
    if u32::from_str_radix(crc, 16).ok() != Some(checksum(body.as_bytes()))
        || lines.parse::<usize>().ok() != Some(body.lines().count())
    {
        return Err(bad("checksum mismatch"));
    }
    let mut it = body.lines();
    let covers = it
        .next()
        .and_then(|h| h.strip_prefix(CHECKPOINT_MAGIC))
        .and_then(|c| {
            let mut f = c.split_whitespace();
            let covers = Covered {
                generation: f.next()?.parse().ok()?,
                len: f.next()?.parse().ok()?,
            };
            f.next().is_none().then_some(covers)
        })
        .ok_or_else(|| bad("unknown header"))?;
    for line in it {
        let mut f = line.split('\t');
        let item = match f.next() {
            Some("S") => (|| {
                let key = SpendKey::parse(&decode(f.next()?)?)?;
                let lifetime = Micros(f.next()?.parse().ok()?);
                let kind = parse_kind(f.next()?)?;
                let days = f
                    .next()?
                    .split(',')
                    .filter(|d| !d.is_empty())
                    .map(|d| {
                        let mut f = d.split(':');
                        let day = f.next()?.parse().ok()?;
                        let billed = Micros(f.next()?.parse().ok()?);
                        let over = Micros(f.next()?.parse().ok()?);
                        f.next().is_none().then_some((day, billed, over))
                    })
                    .collect::<Option<Vec<_>>>()?;
                Some(vec![Durable::Spend {
                    key,
                    lifetime,
                    days,
                    kind,
                }])
            })(),
            Some("D") => (|| {
                let forget = Timestamp(f.next()?.parse().ok()?);
                f.next()?
                    .split(',')
                    .map(|b| {
                        Some(Durable::Charged {
                            bid: BidKey(u64::from_str_radix(b, 16).ok()?),
                            forget,
                        })
                    })
                    .collect::<Option<Vec<_>>>()
            })(),
            Some("T") => f
                .next()
                .and_then(|t| t.parse().ok())
                .map(|t| vec![Durable::Seen(Timestamp(t))]),
            Some("W") => (|| {
                let won = f.next()?.parse().ok()?;
                let not_won = f.next()?.parse().ok()?;
                let past = match (f.next(), f.next()) {
                    (Some(w), Some(n)) => Some((w.parse().ok()?, n.parse().ok()?)),
                    (None, _) => None,
                    (Some(_), None) => return None,
                };
                Some(vec![Durable::Late { won, not_won, past }])
            })(),
            _ => None,
        };
        let items = item.ok_or_else(|| bad("an unreadable line"))?;
        for item in items {
            each(item);
        }
    }
    Ok(Some(covers))
}

/// The budget type each line item spent under, as a start on `dir` would
/// remember it (the checkpoint, and the journal since), read without its
/// lock and without replaying the ledger: `bidder validate --state` reads
/// the directory of a running bidder, or of a stopped one that may start
/// meanwhile, and must keep neither from going on. Journal generations the
/// checkpoint covers are not read; one compacted while this reads is found
/// kept beside the live one. A type never changes once spent, so records
/// read twice agree. `None` when `dir` holds neither a checkpoint nor a
/// journal: no bidder kept its state there.
///
/// A directory whose files do not fit together, which a start refuses
/// (see [`replay`]), is refused here too: checked twice before saying so,
/// as a compaction between reading the checkpoint and the journal's
/// header could make a running bidder's files look apart.
pub fn budget_kinds(
    dir: &Path,
) -> Result<Option<std::collections::HashMap<String, BudgetKind>>, OpenError> {
    match budget_kinds_once(dir) {
        Err(OpenError::State { .. }) => budget_kinds_once(dir),
        other => other,
    }
}

fn budget_kinds_once(
    dir: &Path,
) -> Result<Option<std::collections::HashMap<String, BudgetKind>>, OpenError> {
    let mut kinds = std::collections::HashMap::new();
    let checkpoint = dir.join(CHECKPOINT);
    let covered = parse_checkpoint(&checkpoint, &mut |item| {
        if let Durable::Spend {
            key,
            kind: Some(kind),
            ..
        } = item
        {
            if key.is_line_item() {
                kinds.insert(key.id().to_string(), kind);
            }
        }
    })?;
    let io_err = |source| OpenError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let generations = generations(dir).map_err(io_err)?;
    if covered.is_none() && generations.is_empty() && !dir.join(JOURNAL).exists() {
        return Ok(None);
    }
    fits(dir, covered)?;
    let from = covered.map_or(0, |c| c.generation);
    generation_kinds(
        generations.iter().filter(|g| g.generation >= from),
        &mut kinds,
    )?;
    Ok(Some(kinds))
}

/// Adds the budget type each charge of `generations` was made under, by
/// line item (a directory's own, or copies of another replica's).
pub fn generation_kinds<'g>(
    generations: impl IntoIterator<Item = &'g Generation>,
    kinds: &mut std::collections::HashMap<String, BudgetKind>,
) -> Result<(), OpenError> {
    for g in generations {
        read_generation(&g.file, |c, _| {
            if let Some(kind) = c.kind {
                kinds.insert(c.keys[0].id().to_string(), kind);
            }
        })
        .map_err(|source| OpenError::Io {
            path: g.path.clone(),
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn charge(bid: u64, billed: i64) -> Charge {
        Charge {
            bid: BidKey(bid),
            day: Date::parse("2026-11-24").unwrap(),
            billed: Micros(billed),
            over_delivery: Micros(3),
            forget: Timestamp(1_795_000_000_000),
            keys: [
                SpendKey::line_item("tent\tremarketing %"),
                SpendKey::order("o 1"),
            ],
            kind: Some(BudgetKind::Daily),
            late: true,
            prior: Prior::None,
            tags: Tags {
                advertiser: "acme\toutdoor".into(),
                creative: "c 1".into(),
                exchange: "x".into(),
                keyword: "phrase:tent %".into(),
                audience: "products:tent pages\t%".into(),
                at_ms: 1_794_000_000_123,
            },
        }
    }

    /// A write that fails part way (a full disk) leaves the file as it was
    /// and no temporary file beside it.
    #[test]
    fn a_replacement_that_fails_leaves_the_file_and_no_part_of_it() {
        let dir = std::env::temp_dir().join(format!("replace-file-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        replace_file(&dir, "f", b"first").unwrap();
        let failed = replace_file_with(&dir, "f", false, |f| {
            f.write_all(b"half")?;
            Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "No space left on device",
            ))
        });
        assert_eq!(failed.unwrap_err().kind(), io::ErrorKind::StorageFull);
        assert_eq!(std::fs::read(dir.join("f")).unwrap(), b"first");
        assert!(!dir.join("f.tmp").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn records_round_trip_and_damage_is_seen() {
        let c = charge(0xabc, 6_000);
        let line = record_line(&c);
        assert!(line.ends_with('\n'));
        assert_eq!(line.matches('\n').count(), 1, "ids cannot break the line");
        assert_eq!(parse_record(line.trim_end()), Some(c));
        let garbled = line.replacen("6000", "9000", 1);
        assert_eq!(parse_record(garbled.trim_end()), None);
        let torn = &line[..line.len() / 2];
        assert_eq!(parse_record(torn), None);
    }

    #[test]
    fn the_audience_is_written_last_and_only_when_there_is_one() {
        let c = charge(0xabc, 6_000);
        let line = record_line(&c);
        let fields: Vec<&str> = line.trim_end().split('\t').collect();
        assert_eq!(fields.len(), 17, "{line:?}");
        assert_eq!(fields[14], "1794000000123");
        assert_eq!(fields[15], "products:tent%20pages%09%25");
        let mut none = c.clone();
        none.tags.audience = "".into();
        let line = record_line(&none);
        assert_eq!(line.trim_end().split('\t').count(), 16, "{line:?}");
        assert_eq!(parse_record(line.trim_end()), Some(none));
    }

    #[test]
    fn records_from_before_audiences_still_read() {
        // A record as written before charges carried their audience: the
        // tags end at the time of the charge.
        let body = "C\t0000000000000abc\t20781\t6000\t3\t1795000000000\td\t1\tli:tent%09remarketing%20%25\t\
                    order:o%201\tacme%09outdoor\tc%201\tx\tphrase:tent%20%25\t1794000000123";
        let old = format!("{body}\t{:08x}", checksum(body.as_bytes()));
        let mut c = charge(0xabc, 6_000);
        c.tags.audience = "".into();
        assert_eq!(parse_record(&old), Some(c));
    }

    #[test]
    fn records_from_before_tags_still_read() {
        let mut c = charge(0xabc, 6_000);
        c.tags = Tags::default();
        let line = record_line(&c);
        // The same record as written before reports: it ends at the order.
        let body = line.trim_end().rsplit_once('\t').unwrap().0;
        let old = body
            .splitn(11, '\t')
            .take(10)
            .collect::<Vec<_>>()
            .join("\t");
        let old = format!("{old}\t{:08x}", checksum(old.as_bytes()));
        assert_eq!(parse_record(&old), Some(c));
    }
}

//! The charge journal against a real directory, with faults injected the
//! way a full or failing disk produces them.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use config::{Clock, Date, ManualClock, Micros, Timestamp};
use ledger::journal::{FileStorage, Journal, JournalOptions, OpenError, Storage};
use ledger::{BidKey, Books, Cap, ChargeError, Ledger, Limit, MemoryLedger, SpendKey, Win};

const NOW: i64 = 1_795_521_600_000; // 2026-11-24T12:00:00Z
const DAY: i64 = 86_400_000;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ledger-journal-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// What the fake disk does next.
const OK: u8 = 0;
/// `write` puts half the bytes down, then fails as a full disk does.
const FULL: u8 = 1;
/// Writes succeed, fsync fails.
const SYNC_FAILS: u8 = 2;
/// Like `FULL`, and cutting the file back fails too.
const FULL_NO_CUT: u8 = 3;
/// `write` panics (a bug in a storage, or under it).
const PANICS: u8 = 4;
/// fsync does not return until the mode changes (a frozen disk).
const STALLS: u8 = 5;
/// Appends still go down (into the journal's last block), a probe's 16 KB
/// do not: a volume full to its last few blocks.
const PROBE_FULL: u8 = 6;

struct Faulty {
    inner: FileStorage,
    mode: Arc<AtomicU8>,
}

fn disk_full() -> io::Error {
    io::Error::new(io::ErrorKind::StorageFull, "No space left on device")
}

impl Storage for Faulty {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self.mode.load(Ordering::SeqCst) {
            FULL | FULL_NO_CUT => {
                self.inner.append(&bytes[..bytes.len() / 2])?;
                Err(disk_full())
            }
            PANICS => panic!("the storage broke"),
            _ => self.inner.append(bytes),
        }
    }

    fn sync(&mut self) -> io::Result<()> {
        while self.mode.load(Ordering::SeqCst) == STALLS {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        match self.mode.load(Ordering::SeqCst) {
            SYNC_FAILS => Err(io::Error::other("EIO")),
            _ => self.inner.sync(),
        }
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        match self.mode.load(Ordering::SeqCst) {
            FULL_NO_CUT => Err(disk_full()),
            _ => self.inner.truncate(len),
        }
    }

    fn compact(&mut self, checkpoint: &[u8], header: &[u8]) -> io::Result<bool> {
        match self.mode.load(Ordering::SeqCst) {
            OK => self.inner.compact(checkpoint, header),
            _ => Err(disk_full()),
        }
    }

    fn probe(&mut self) -> io::Result<()> {
        match self.mode.load(Ordering::SeqCst) {
            OK | STALLS => self.inner.probe(),
            SYNC_FAILS => Err(io::Error::other("EIO")),
            _ => Err(disk_full()),
        }
    }

    fn room(&mut self, min_free: u64) -> io::Result<()> {
        self.inner.room(min_free)
    }
}

struct Setup {
    ledger: Arc<dyn Ledger>,
    books: Books,
    mode: Arc<AtomicU8>,
}

impl Setup {
    /// Waits for the writer, as a clean shutdown does.
    fn close(self) {
        self.books.close();
    }
}

fn open(d: &Path, compact_after: usize) -> Result<Setup, OpenError> {
    open_stalling_after(d, compact_after, ledger::journal::STALL_AFTER)
}

fn open_stalling_after(
    d: &Path,
    compact_after: usize,
    stall_after: std::time::Duration,
) -> Result<Setup, OpenError> {
    open_with_options(
        d,
        JournalOptions {
            compact_after,
            stall_after,
            ..Default::default()
        },
    )
}

fn open_with_options(d: &Path, options: JournalOptions) -> Result<Setup, OpenError> {
    let ledger: Arc<dyn Ledger> = Arc::new(MemoryLedger::default());
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(Timestamp(NOW)));
    let mode = Arc::new(AtomicU8::new(OK));
    let m = mode.clone();
    let (journal, _) = Journal::open_with(d, ledger.clone(), clock, options, move |inner| {
        Box::new(Faulty { inner, mode: m })
    })?;
    Ok(Setup {
        books: Books::new(ledger.clone(), Some(journal)),
        ledger,
        mode,
    })
}

fn li() -> SpendKey {
    SpendKey::line_item("li\tweird id")
}

fn order() -> SpendKey {
    SpendKey::order("o")
}

fn today() -> Date {
    Timestamp(NOW).date()
}

async fn charge(books: &Books, bid: u64, micros: i64) -> Result<bool, ChargeError> {
    let (li, order) = (li(), order());
    let win = Win {
        bid: BidKey(bid),
        day: today(),
        cost: Micros(micros),
        limits: [
            Limit {
                key: &li,
                cap: Cap::Daily(Micros::from_units(100)),
            },
            Limit {
                key: &order,
                cap: Cap::None,
            },
        ],
        forget: Timestamp(NOW + DAY),
        made: Timestamp(NOW),
        tags: ledger::Tags {
            creative: format!("c{}", bid % 3).into(),
            at_ms: NOW,
            ..Default::default()
        },
    };
    books.charge(&win).await.map(|c| c.is_some())
}

/// Charges `bids` (1,000 micros each, every one new) on a journal in `d`
/// compacted after `compact_after` records, and shuts it down cleanly.
async fn charged_and_closed(d: &Path, compact_after: usize, bids: std::ops::Range<u64>) {
    let s = open(d, compact_after).unwrap();
    for bid in bids {
        assert!(charge(&s.books, bid, 1_000).await.unwrap(), "bid {bid}");
    }
    s.close();
}

fn spent(l: &dyn Ledger) -> Micros {
    l.spent(&li(), today()).today
}

#[tokio::test]
async fn a_full_disk_charges_nothing_and_the_retry_charges() {
    let d = dir("full");
    {
        let s = open(&d, 1_000_000).unwrap();
        assert!(charge(&s.books, 1, 5_000).await.unwrap());
        s.mode.store(FULL, Ordering::SeqCst);
        let err = charge(&s.books, 2, 7_000).await.unwrap_err();
        assert!(matches!(err, ChargeError::Storage(_)), "{err}");
        // Not spend, not a duplicate, not held.
        assert_eq!(spent(&*s.ledger), Micros(5_000));
        assert_eq!(s.ledger.spent(&li(), today()).held_today, Micros::ZERO);
        // The exchange retries once the disk has room again.
        s.mode.store(OK, Ordering::SeqCst);
        assert!(charge(&s.books, 2, 7_000).await.unwrap());
        assert!(!charge(&s.books, 2, 7_000).await.unwrap(), "duplicate");
        assert_eq!(spent(&*s.ledger), Micros(12_000));
        s.close();
    }
    // The half-written record was cut off before the retry was written.
    let text = std::fs::read_to_string(d.join("charges.journal")).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    let again = open(&d, 1_000_000).unwrap();
    assert_eq!(spent(&*again.ledger), Micros(12_000));
    assert!(!charge(&again.books, 2, 7_000).await.unwrap());
    let _ = std::fs::remove_dir_all(&d);
}

/// Waits (up to ten probes) until the journal's failing is `failing`.
async fn until_failing(books: &Books, failing: bool) {
    let mut waited = std::time::Duration::ZERO;
    while books.journal_failing() != failing && waited < ledger::journal::PROBE_EVERY * 10 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        waited += std::time::Duration::from_millis(20);
    }
    assert_eq!(books.journal_failing(), failing, "after {waited:?}");
}

/// A disk that fills under other files (the event logs, another process)
/// stops bids before a win comes that cannot be written: the writer probes
/// while all is well too, with no charge to write (operators probe: 200
/// bids were made on a full disk, and most of their wins were refused).
#[tokio::test]
async fn a_disk_that_fills_between_charges_fails_the_journal_before_a_charge_does() {
    let d = dir("fills");
    let s = open(&d, 1_000_000).unwrap();
    assert!(charge(&s.books, 1, 5_000).await.unwrap());
    assert!(!s.books.journal_failing());
    s.mode.store(FULL, Ordering::SeqCst);
    until_failing(&s.books, true).await;
    let why = s.books.journal().unwrap().failing().unwrap();
    assert!(why.contains("No space left"), "{why}");
    s.mode.store(OK, Ordering::SeqCst);
    until_failing(&s.books, false).await;
    assert!(charge(&s.books, 2, 7_000).await.unwrap());
    assert_eq!(spent(&*s.ledger), Micros(12_000));
    // Full to the journal's last block: a charge still goes down, and does
    // not lift the stop the probe put (review finding: each charge did, and
    // under traffic bids went on past the probe).
    s.mode.store(PROBE_FULL, Ordering::SeqCst);
    until_failing(&s.books, true).await;
    assert!(charge(&s.books, 3, 1_000).await.unwrap());
    assert!(
        s.books.journal_failing(),
        "a charge does not lift a probe's stop"
    );
    s.mode.store(OK, Ordering::SeqCst);
    until_failing(&s.books, false).await;
    s.close();
    let _ = std::fs::remove_dir_all(&d);
}

/// A volume with less free space than the wins of the bids out need stops
/// bids, though every write still goes down.
#[tokio::test]
async fn a_volume_under_its_reserve_fails_the_journal() {
    let d = dir("reserve");
    let s = open_with_options(
        &d,
        JournalOptions {
            min_free_bytes: u64::MAX,
            ..Default::default()
        },
    )
    .unwrap();
    // From the start: probed before the journal is handed out, not a
    // second later (ops probe: ready, and bidding, meanwhile).
    assert!(s.books.journal_failing(), "failing as it opens");
    until_failing(&s.books, true).await;
    let why = s.books.journal().unwrap().failing().unwrap();
    assert!(why.contains("bytes free, under the"), "{why}");
    s.close();
    let _ = std::fs::remove_dir_all(&d);
}

/// A disk that takes a write and does not finish it (frozen, a network
/// volume gone) fails nothing by itself: the journal calls it failing once
/// the write has taken its `stall_after`, and the write's end clears it.
/// The charge waits and goes down when the disk does.
#[tokio::test]
async fn a_write_that_does_not_finish_fails_the_journal_until_it_does() {
    let d = dir("stalls");
    let s = open_stalling_after(&d, 1_000_000, std::time::Duration::from_millis(200)).unwrap();
    assert!(charge(&s.books, 1, 5_000).await.unwrap());
    s.mode.store(STALLS, Ordering::SeqCst);
    let (charged, ()) = tokio::join!(charge(&s.books, 2, 7_000), async {
        until_failing(&s.books, true).await;
        let why = s.books.journal().unwrap().failing().unwrap();
        assert!(why.contains("has not finished a write"), "{why}");
        assert_eq!(spent(&*s.ledger), Micros(5_000), "not charged yet");
        s.mode.store(OK, Ordering::SeqCst);
    });
    assert!(charged.unwrap());
    assert!(!s.books.journal_failing());
    assert_eq!(spent(&*s.ledger), Micros(12_000));
    s.close();
    let _ = std::fs::remove_dir_all(&d);
}

/// From a failed write the journal says it is failing (the bidder makes
/// no bids then), until a write goes down again: a charge's, or the
/// writer's own probe, since with no bids there may be no charge to try.
#[tokio::test]
async fn a_failing_journal_says_so_until_a_write_goes_down() {
    let d = dir("failing");
    let s = open(&d, 1_000_000).unwrap();
    let journal = s.books.journal().unwrap();
    assert!(charge(&s.books, 1, 5_000).await.unwrap());
    assert!(!s.books.journal_failing());
    assert_eq!(journal.failing(), None);
    s.mode.store(FULL, Ordering::SeqCst);
    assert!(charge(&s.books, 2, 7_000).await.is_err());
    assert!(s.books.journal_failing());
    let why = journal.failing().unwrap();
    assert!(why.contains("No space left"), "{why}");
    // Probes fail while the disk is full.
    tokio::time::sleep(ledger::journal::PROBE_EVERY * 2).await;
    assert!(s.books.journal_failing());
    // Room again: the probe sees it with no charge to write.
    s.mode.store(OK, Ordering::SeqCst);
    let mut waited = std::time::Duration::ZERO;
    while s.books.journal_failing() && waited < ledger::journal::PROBE_EVERY * 10 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        waited += std::time::Duration::from_millis(20);
    }
    assert!(!s.books.journal_failing(), "still failing after {waited:?}");
    assert_eq!(journal.failing(), None);
    assert!(!d.join("journal.probe").exists(), "the probe cleans up");
    // A failed fsync fails it too, and a charge that goes down clears it.
    s.mode.store(SYNC_FAILS, Ordering::SeqCst);
    assert!(charge(&s.books, 3, 1_000).await.is_err());
    assert!(s.books.journal_failing());
    s.mode.store(OK, Ordering::SeqCst);
    assert!(charge(&s.books, 3, 1_000).await.unwrap());
    assert!(!s.books.journal_failing());
    assert_eq!(spent(&*s.ledger), Micros(6_000));
    s.close();
    let _ = std::fs::remove_dir_all(&d);
}

/// A writer that panicked takes no more charges: the journal says it is
/// failing, for good, so no bid whose win it could not record is made.
#[tokio::test]
async fn a_writer_that_panicked_leaves_the_journal_failing() {
    let d = dir("panicked");
    let s = open(&d, 1_000_000).unwrap();
    assert!(charge(&s.books, 1, 5_000).await.unwrap());
    s.mode.store(PANICS, Ordering::SeqCst);
    assert!(charge(&s.books, 2, 7_000).await.is_err());
    s.mode.store(OK, Ordering::SeqCst);
    assert!(charge(&s.books, 3, 7_000).await.is_err(), "no writer");
    assert!(s.books.journal_failing());
    let why = s.books.journal().unwrap().failing().unwrap();
    assert!(why.contains("stopped"), "{why}");
    // For good: the liveness probe reads this (the thread has ended).
    let j = s.books.journal().unwrap();
    for _ in 0..100 {
        if j.stopped() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(j.stopped());
    assert_eq!(spent(&*s.ledger), Micros(5_000));
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn a_failed_fsync_is_not_acknowledged() {
    let d = dir("fsync");
    let s = open(&d, 1_000_000).unwrap();
    assert!(!s.books.journal().unwrap().stopped());
    s.mode.store(SYNC_FAILS, Ordering::SeqCst);
    assert!(charge(&s.books, 1, 5_000).await.is_err());
    assert_eq!(spent(&*s.ledger), Micros::ZERO);
    s.mode.store(OK, Ordering::SeqCst);
    assert!(charge(&s.books, 1, 5_000).await.unwrap());
    s.close();
    let again = open(&d, 1_000_000).unwrap();
    assert_eq!(spent(&*again.ledger), Micros(5_000), "written once");
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn nothing_is_written_until_a_partial_write_is_cut_back() {
    let d = dir("nocut");
    let s = open(&d, 1_000_000).unwrap();
    s.mode.store(FULL_NO_CUT, Ordering::SeqCst);
    assert!(charge(&s.books, 1, 5_000).await.is_err());
    // Still no room to cut back: the next record is refused rather than
    // appended after half a record.
    assert!(charge(&s.books, 2, 6_000).await.is_err());
    s.mode.store(OK, Ordering::SeqCst);
    assert!(charge(&s.books, 3, 7_000).await.unwrap());
    s.close();
    let text = std::fs::read_to_string(d.join("charges.journal")).unwrap();
    // Whole records only: no half record ran into the next one.
    assert!(
        text.lines().skip(1).all(|l| l.matches('\t').count() == 15),
        "{text}"
    );
    let again = open(&d, 1_000_000).unwrap();
    assert_eq!(spent(&*again.ledger), Micros(7_000));
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn a_restart_after_a_partial_write_skips_it_and_keeps_the_rest() {
    let d = dir("partial");
    {
        let s = open(&d, 1_000_000).unwrap();
        charge(&s.books, 1, 5_000).await.unwrap();
        s.close();
    }
    // A crash mid-record, then a garbled line in the middle (a write the
    // old writer appended after a partial one), then a whole record.
    let path = d.join("charges.journal");
    let text = std::fs::read_to_string(&path).unwrap();
    let record = text.lines().nth(1).unwrap().to_string();
    let mut damaged = text.clone();
    damaged.push_str(&record[..20]);
    damaged.push_str(&record.replacen("5000", "6000", 1));
    damaged.push('\n');
    damaged.push_str(&record.replacen("0000000000000001", "0000000000000009", 1));
    damaged.push('\n');
    damaged.push_str("C\t00000000");
    std::fs::write(&path, &damaged).unwrap();
    let s = open(&d, 1_000_000).expect("a damaged record never stops a restart");
    // Bid 9's record fails its checksum too (its id changed): only bid 1.
    assert_eq!(spent(&*s.ledger), Micros(5_000));
    assert!(!charge(&s.books, 1, 5_000).await.unwrap());
    s.close();
    let after = std::fs::read_to_string(&path).unwrap();
    assert!(after.ends_with('\n'), "the torn tail was cut off");
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn compaction_keeps_spend_and_duplicates_and_bounds_the_journal() {
    let d = dir("compact");
    charged_and_closed(&d, 10, 0..25).await;
    let journal = std::fs::read_to_string(d.join("charges.journal")).unwrap();
    assert!(journal.lines().count() <= 11, "{journal}");
    assert!(d.join("ledger.checkpoint").exists());
    let s = open(&d, 10).unwrap();
    assert_eq!(spent(&*s.ledger), Micros(25_000));
    assert_eq!(
        s.ledger.budget_kind("li\tweird id"),
        Some(ledger::BudgetKind::Daily)
    );
    for bid in 0..25 {
        assert!(!charge(&s.books, bid, 1_000).await.unwrap(), "bid {bid}");
    }
    drop(s);
    assert_eq!(
        read_back(&d),
        (25, Micros(25_000)),
        "reports read every charge once"
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// Charges and spend as reports read them from the kept generations.
fn read_back(d: &Path) -> (usize, Micros) {
    let gens = ledger::journal::generations(d).unwrap();
    let mut seen = std::collections::HashSet::new();
    let mut total = Micros::ZERO;
    for g in gens {
        ledger::journal::read_generation(&g.file, |c, _| {
            assert!(seen.insert(c.bid), "bid {} read twice", c.bid);
            assert_eq!(&*c.tags.creative, format!("c{}", c.bid.0 % 3));
            total = total.saturating_add(c.billed);
        })
        .unwrap();
    }
    (seen.len(), total)
}

#[tokio::test]
async fn a_journal_older_than_its_checkpoint_refuses_to_start() {
    let d = dir("older");
    {
        let s = open(&d, 1_000_000).unwrap();
        for bid in 0..5 {
            charge(&s.books, bid, 1_000).await.unwrap();
        }
        s.close();
    }
    let old = std::fs::read(d.join("charges.journal")).unwrap();
    {
        let s = open(&d, 1).unwrap();
        charge(&s.books, 5, 1_000).await.unwrap();
        s.close();
    }
    // An old copy of the journal put back (a backup restored half-way):
    // it is shorter than what the checkpoint covers of its generation.
    std::fs::write(d.join("charges.journal"), &old).unwrap();
    match open(&d, 1_000_000) {
        Err(e @ OpenError::State { .. }) => assert!(e.to_string().contains("shorter"), "{e}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("started on a journal the checkpoint does not lead to"),
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn records_acknowledged_after_a_half_failed_compaction_survive_a_restart() {
    let d = dir("halfcompact");
    {
        let s = open(&d, 100).unwrap();
        // The checkpoint can be written, the new journal cannot: as after a
        // crash between the two renames, or a disk that filled up between.
        std::fs::create_dir_all(d.join("charges.journal.tmp")).unwrap();
        for bid in 0..100 {
            assert!(charge(&s.books, bid, 1_000).await.unwrap());
        }
        for bid in 100..109 {
            assert!(charge(&s.books, bid, 1_000).await.unwrap(), "acknowledged");
        }
        s.close();
    }
    let checkpoint = std::fs::read_to_string(d.join("ledger.checkpoint")).unwrap();
    assert!(
        checkpoint.starts_with("bidder-ledger-checkpoint 1 1 "),
        "the checkpoint covers part of generation 1: {checkpoint}"
    );
    std::fs::remove_dir_all(d.join("charges.journal.tmp")).unwrap();
    let s = open(&d, 100).unwrap();
    assert_eq!(spent(&*s.ledger), Micros(109_000));
    assert!(
        !charge(&s.books, 105, 1_000).await.unwrap(),
        "still a duplicate"
    );
    s.close();
    assert_eq!(read_back(&d), (109, Micros(109_000)));
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn state_files_that_do_not_fit_together_refuse_to_start() {
    // A flipped bit in the journal's header.
    let d = dir("header");
    {
        let s = open(&d, 1_000_000).unwrap();
        for bid in 0..3 {
            charge(&s.books, bid, 1_000).await.unwrap();
        }
        s.close();
    }
    let p = d.join("charges.journal");
    let good = std::fs::read(&p).unwrap();
    let mut bad = good.clone();
    bad[3] ^= 0x20;
    std::fs::write(&p, &bad).unwrap();
    assert!(matches!(open(&d, 1_000_000), Err(OpenError::State { .. })));
    assert_eq!(std::fs::read(&p).unwrap(), bad, "nothing was rewritten");
    // The journal gone while its checkpoint is there.
    std::fs::remove_file(&p).unwrap();
    assert!(matches!(open(&d, 1_000_000), Err(OpenError::State { .. })));
    std::fs::write(&p, &good).unwrap();
    let s = open(&d, 1_000_000).unwrap();
    assert_eq!(spent(&*s.ledger), Micros(3_000));
    s.close();
    let _ = std::fs::remove_dir_all(&d);

    // A later generation whose checkpoint is gone.
    let d = dir("nocheckpoint");
    {
        let s = open(&d, 10).unwrap();
        for bid in 0..25 {
            charge(&s.books, bid, 1_000).await.unwrap();
        }
        s.close();
    }
    std::fs::remove_file(d.join("ledger.checkpoint")).unwrap();
    match open(&d, 10) {
        Err(e @ OpenError::State { .. }) => {
            assert!(e.to_string().contains("no checkpoint"), "{e}")
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("started without the spend of earlier generations"),
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn a_damaged_checkpoint_refuses_to_start() {
    let d = dir("damaged");
    {
        let s = open(&d, 1).unwrap();
        charge(&s.books, 1, 1_000).await.unwrap();
        s.close();
    }
    let path = d.join("ledger.checkpoint");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("1000", "1", 1)).unwrap();
    match open(&d, 1) {
        Err(e @ OpenError::Checkpoint { .. }) => {
            assert!(e.to_string().contains("ledger.checkpoint"), "{e}")
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a damaged checkpoint was loaded"),
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn a_journal_of_the_previous_format_is_read_and_rewritten() {
    let d = dir("legacy");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("charges.journal"),
        "C\t7f3a-1\t2026-11-24\t6000\t1795608000000\tli:old\torder:o\n\
         C\t7f3a-2\t2026-11-24\t4000\t1795608000000\tli:old\torder:o\n",
    )
    .unwrap();
    let old = SpendKey::line_item("old");
    let s = open(&d, 1_000_000).unwrap();
    assert_eq!(s.ledger.spent(&old, today()).today, Micros(10_000));
    s.close();
    let text = std::fs::read_to_string(d.join("charges.journal")).unwrap();
    assert!(text.starts_with("bidder-journal 1 "), "{text}");
    let s = open(&d, 1_000_000).unwrap();
    assert_eq!(
        s.ledger.spent(&old, today()).today,
        Micros(10_000),
        "counted once"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn a_first_start_stopped_half_way_starts_the_next_time() {
    // The first journal cannot be written (no room), then can.
    let d = dir("first");
    std::fs::create_dir_all(d.join("charges.journal.tmp")).unwrap();
    assert!(open(&d, 1_000_000).is_err());
    std::fs::remove_dir_all(d.join("charges.journal.tmp")).unwrap();
    let s = open(&d, 1_000_000).expect("nothing was lost: start");
    assert!(charge(&s.books, 1, 1_000).await.unwrap());
    s.close();
    let _ = std::fs::remove_dir_all(&d);
    // A crash between the first checkpoint and the first journal leaves
    // the header the journal was given first beside a checkpoint that
    // covers nothing (an empty journal there is refused: see
    // `an_emptied_journal_beside_a_first_checkpoint_is_refused`).
    let d = dir("firstcrash");
    open(&d, 1_000_000).unwrap().close();
    std::fs::write(d.join("charges.journal"), b"bidder-journal 1 1\n").unwrap();
    open(&d, 1_000_000)
        .expect("nothing was lost: start")
        .close();
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn a_migration_stopped_half_way_counts_the_old_journal_once() {
    let d = dir("migration");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("charges.journal"),
        "C\t7f3a-1\t2026-11-24\t6000\t1795608000000\tli:old\torder:o\n",
    )
    .unwrap();
    std::fs::create_dir_all(d.join("charges.journal.tmp")).unwrap();
    assert!(
        open(&d, 1_000_000).is_err(),
        "the first journal cannot be written"
    );
    std::fs::remove_dir_all(d.join("charges.journal.tmp")).unwrap();
    let s = open(&d, 1_000_000).expect("start");
    let old = SpendKey::line_item("old");
    assert_eq!(s.ledger.spent(&old, today()).today, Micros(6_000));
    s.close();
    let s = open(&d, 1_000_000).expect("start");
    assert_eq!(s.ledger.spent(&old, today()).today, Micros(6_000), "once");
    s.close();
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn one_process_at_a_time_per_state_directory() {
    let d = dir("lock");
    let first = open(&d, 1_000_000).unwrap();
    match open(&d, 1_000_000) {
        Err(e @ OpenError::Locked { .. }) => {
            assert!(e.to_string().contains("another bidder process"), "{e}")
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("two writers on one journal"),
    }
    first.close();
    open(&d, 1_000_000)
        .expect("free once the first has stopped")
        .close();
    let _ = std::fs::remove_dir_all(&d);
}

/// Reports list and read generations while the journal compacts: none may
/// read fewer charges than were acknowledged before it began (a whole
/// generation missed is spend that differs from the ledger's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_during_compactions_misses_no_generation() {
    use std::sync::atomic::{AtomicBool, AtomicU64};
    let d = dir("genrace");
    let s = open(&d, 25).unwrap();
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (d, acked, stop) = (d.clone(), acked.clone(), stop.clone());
        std::thread::spawn(move || {
            let (mut runs, mut short) = (0u64, Vec::new());
            while !stop.load(Ordering::SeqCst) {
                let before = acked.load(Ordering::SeqCst);
                let mut n = 0u64;
                for g in ledger::journal::generations(&d).unwrap() {
                    ledger::journal::read_generation(&g.file, |_, _| n += 1).unwrap();
                }
                runs += 1;
                if n < before {
                    short.push((n, before));
                }
            }
            (runs, short)
        })
    };
    for bid in 1..=3_000u64 {
        assert!(charge(&s.books, bid, 10).await.unwrap());
        acked.store(bid, Ordering::SeqCst);
    }
    stop.store(true, Ordering::SeqCst);
    let (runs, short) = reader.join().unwrap();
    s.close();
    assert!(runs > 10, "the reader ran alongside ({runs} runs)");
    assert!(
        short.is_empty(),
        "reports that missed charges (read, acknowledged): {short:?}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn a_stopped_directory_reads_as_its_start_would_without_a_file_changed() {
    let d = dir("read-stopped");
    {
        // Compacted twice: spend in the checkpoint and in the journal.
        let s = open(&d, 4).unwrap();
        for bid in 0..10 {
            assert!(charge(&s.books, bid, 1_000).await.unwrap());
        }
        // Running: not read as a stopped one (only through generations).
        let read = MemoryLedger::default();
        assert!(ledger::journal::read_stopped(&d, &read, Timestamp(NOW))
            .unwrap()
            .is_none());
        s.close();
    }
    // A torn last record, never acknowledged.
    let live = d.join("charges.journal");
    let mut bytes = std::fs::read(&live).unwrap();
    bytes.extend_from_slice(b"c\t0000000000000063\t2026-11");
    std::fs::write(&live, &bytes).unwrap();
    let files = |d: &Path| {
        let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(d)
            .unwrap()
            .flatten()
            .map(|e| {
                (
                    e.file_name().to_string_lossy().to_string(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let before = files(&d);
    let read = MemoryLedger::default();
    let r = ledger::journal::read_stopped(&d, &read, Timestamp(NOW))
        .unwrap()
        .expect("stopped");
    assert!(r.cut > 0, "{r:?}");
    assert_eq!(files(&d), before, "nothing written, not even the lock");
    assert_eq!(spent(&read), Micros(10_000));
    // What the start itself then restores is the same.
    let s = open(&d, 4).unwrap();
    assert_eq!(spent(&*s.ledger), Micros(10_000));
    s.close();
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn the_writer_says_how_far_each_generation_is_durable() {
    let d = dir("synced");
    let synced = ledger::synced::Synced::default();
    let ledger: Arc<dyn Ledger> = Arc::new(MemoryLedger::default());
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(Timestamp(NOW)));
    let mode = Arc::new(AtomicU8::new(OK));
    let m = mode.clone();
    let (journal, _) = Journal::open_with(
        &d,
        ledger.clone(),
        clock,
        JournalOptions {
            compact_after: 3,
            synced: Some(synced.clone()),
            ..Default::default()
        },
        move |inner| Box::new(Faulty { inner, mode: m }),
    )
    .unwrap();
    let books = Books::new(ledger.clone(), Some(journal));
    let live = d.join("charges.journal");
    let gen_of = || {
        let text = std::fs::read_to_string(&live).unwrap();
        let g: u64 = text
            .lines()
            .next()
            .unwrap()
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        format!("charges.{g}.journal")
    };
    assert!(charge(&books, 1, 1_000).await.unwrap());
    let len = std::fs::metadata(&live).unwrap().len();
    assert_eq!(synced.get(&gen_of()), Some(len));
    // A failed write is not durable: the mark stays where it was.
    mode.store(SYNC_FAILS, Ordering::SeqCst);
    assert!(charge(&books, 2, 1_000).await.is_err());
    assert_eq!(synced.get(&gen_of()), Some(len));
    mode.store(OK, Ordering::SeqCst);
    // Compacted: the new generation is named, the old one is final.
    let before = gen_of();
    for bid in 3..6 {
        assert!(charge(&books, bid, 1_000).await.unwrap());
    }
    books.close();
    assert_ne!(gen_of(), before);
    assert_eq!(synced.get(&before), None);
    assert_eq!(
        synced.get(&gen_of()),
        Some(std::fs::metadata(&live).unwrap().len())
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// `bidder validate --state` reads the budget types spent under from a
/// directory a bidder runs on, or may start on meanwhile: without its
/// lock, without a file changed, from the checkpoint when the journal
/// generations it covers are gone, and not at all from a directory that
/// holds no state (a wrong path must not pass as "nothing spent").
#[tokio::test]
async fn budget_kinds_read_without_the_lock_from_checkpoint_and_journal() {
    let d = dir("kinds");
    std::fs::create_dir_all(&d).unwrap();
    assert!(ledger::journal::budget_kinds(&d).unwrap().is_none());
    let daily = Some(&ledger::BudgetKind::Daily);
    {
        let s = open(&d, 4).unwrap();
        for bid in 0..8 {
            assert!(charge(&s.books, bid, 1_000).await.unwrap());
        }
        // While it runs: read, and its lock left alone.
        let kinds = ledger::journal::budget_kinds(&d).unwrap().expect("state");
        assert_eq!(kinds.get("li\tweird id"), daily);
        assert!(matches!(open(&d, 4), Err(OpenError::Locked { .. })));
        s.close();
    }
    // Generations the checkpoint covers, gone (kept before archives were):
    // the type is the checkpoint's.
    for e in std::fs::read_dir(&d).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with("charges.") && name != "charges.journal" {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
    let live = std::fs::read_to_string(d.join("charges.journal")).unwrap();
    assert_eq!(live.lines().count(), 1, "only the header left: {live}");
    let kinds = ledger::journal::budget_kinds(&d).unwrap().expect("state");
    assert_eq!(kinds.get("li\tweird id"), daily);
    assert_eq!(kinds.len(), 1, "{kinds:?}");
    // A start on it remembers the same, and is not kept from starting.
    let s = open(&d, 4).unwrap();
    assert_eq!(s.ledger.budget_kind("li\tweird id"), daily.copied());
    s.close();
    let _ = std::fs::remove_dir_all(&d);
}

/// A journal emptied beside the checkpoint of a first start is refused, as a
/// missing one is (ops probe: it was taken for a first start stopped early,
/// and every win notice still in its lifetime charged again). A first
/// start writes the journal's header before its checkpoint, so only an
/// older version stopped early could leave the two so, and the error says
/// what to do then.
#[tokio::test]
async fn an_emptied_journal_beside_a_first_checkpoint_is_refused() {
    let d = dir("emptied");
    charged_and_closed(&d, 1_000, 0..3).await;
    let checkpoint = std::fs::read_to_string(d.join("ledger.checkpoint")).unwrap();
    assert!(
        checkpoint.starts_with("bidder-ledger-checkpoint 1 0 0"),
        "the first start's checkpoint: {checkpoint}"
    );
    std::fs::write(d.join("charges.journal"), "").unwrap();
    for refused in [
        ledger::journal::budget_kinds(&d).err(),
        open(&d, 1_000).err(),
    ] {
        match refused {
            Some(e @ OpenError::State { .. }) => {
                assert!(e.to_string().contains("the journal is empty"), "{e}")
            }
            other => panic!("an emptied journal: {other:?}"),
        }
    }
    // A new directory still starts, with its header first.
    let fresh = dir("emptied-fresh");
    charged_and_closed(&fresh, 1_000, 0..1).await;
    let journal = std::fs::read_to_string(fresh.join("charges.journal")).unwrap();
    assert!(journal.starts_with("bidder-journal 1 1\n"), "{journal}");
    let _ = std::fs::remove_dir_all(&d);
    let _ = std::fs::remove_dir_all(&fresh);
}

/// What a start refuses, `budget_kinds` (`bidder validate --state`)
/// refuses too: a directory whose checkpoint and journal do not fit
/// together. It said such a directory was valid, and serve then refused to
/// start on it.
#[tokio::test]
async fn budget_kinds_refuse_what_a_start_refuses() {
    let d = dir("kinds-fit");
    charged_and_closed(&d, 4, 0..10).await;
    let journal = d.join("charges.journal");
    let checkpoint = d.join("ledger.checkpoint");
    let (j, c) = (
        std::fs::read(&journal).unwrap(),
        std::fs::read(&checkpoint).unwrap(),
    );
    let text = String::from_utf8(j.clone()).unwrap();
    let (header, rest) = text.split_once('\n').unwrap();
    let generation: u64 = header.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(generation > 1, "compacted: {header}");
    let gap = format!("bidder-journal 1 {}\n{rest}", generation + 5);
    type Damage<'a> = Box<dyn Fn() + 'a>;
    let cases: Vec<(&str, Damage<'_>)> = vec![
        (
            "the journal is missing",
            Box::new(|| std::fs::remove_file(&journal).unwrap()),
        ),
        (
            "has no checkpoint before it",
            Box::new(|| std::fs::remove_file(&checkpoint).unwrap()),
        ),
        (
            "not a header",
            Box::new(|| std::fs::write(&journal, format!("garbage\n{rest}")).unwrap()),
        ),
        (
            "does not follow the checkpoint",
            Box::new(|| std::fs::write(&journal, &gap).unwrap()),
        ),
    ];
    for (why, damage) in cases {
        damage();
        match ledger::journal::budget_kinds(&d) {
            Err(e @ OpenError::State { .. }) => assert!(e.to_string().contains(why), "{e}"),
            other => panic!("{why}: {other:?}"),
        }
        assert!(
            matches!(open(&d, 4), Err(OpenError::State { .. })),
            "{why}: a start refuses it as well"
        );
        std::fs::write(&journal, &j).unwrap();
        std::fs::write(&checkpoint, &c).unwrap();
    }
    assert!(ledger::journal::budget_kinds(&d).unwrap().is_some());
    let _ = std::fs::remove_dir_all(&d);
}

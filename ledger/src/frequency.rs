//! Frequency windows: the per-user ring an embedded ledger counts a capped
//! line item's impressions in, and the file that carries them over a
//! restart.
//!
//! An embedded ledger kept its windows in memory only, keyed under a hash
//! seeded anew by every process: a deploy or a crash gave every user their
//! whole cap back ("3 a day" became 6 on a day with a restart). The running
//! process now writes its windows, and the key their users are hashed
//! under, about once a minute and when it stops; the next one takes both on
//! before it bids ([`crate::Ledger::take_frequency`]). A crash loses the
//! last minute's counts. A shared ledger keeps windows in the shared state
//! and has nothing to write.
//!
//! The key is secret for the same reason the hash was seeded: user ids come
//! from requests, and one who knew the key could make many users land on
//! one window. It stays in the state directory, beside the journal.
//!
//! The file holds no money: one that cannot be read is reported, and the
//! start goes on counting afresh, as before.

use std::hash::Hasher as _;
use std::io::{self, Write as _};
use std::path::Path;

use config::Timestamp;

use crate::Ledger;

/// The file in the state directory.
pub const FILE: &str = "frequency";

const MAGIC: &[u8] = b"bidder-frequency 2\n";

/// The first version's files: rings of [`BUCKETS`] counters, read into
/// today's.
const MAGIC_V1: &[u8] = b"bidder-frequency 1\n";

/// A window is this many buckets wide.
pub(crate) const BUCKETS: i64 = 24;

/// Counters in a ring: one more than the buckets a window is wide. The
/// window `[now - BUCKETS widths, now]` starts inside the bucket
/// `BUCKETS` before now's, which must still count: with `BUCKETS`
/// counters it was already cleared, and an impression 23 h into a 24 h
/// window no longer counted (review finding).
const SLOTS: i64 = BUCKETS + 1;

/// A sliding window as a ring of counters: constant memory per user and
/// cap whatever the traffic. Now's bucket and the `BUCKETS` before it
/// count, the oldest in full, so the count is never under the truth (at
/// most one bucket's worth of impressions early).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) width_ms: i64,
    pub(crate) newest: i64,
    counts: [u16; SLOTS as usize],
}

impl Window {
    pub(crate) fn new(window_ms: i64) -> Window {
        Window {
            width_ms: Window::width(window_ms),
            newest: i64::MIN,
            counts: [0; SLOTS as usize],
        }
    }

    pub(crate) fn width(window_ms: i64) -> i64 {
        ((window_ms.max(1) + BUCKETS - 1) / BUCKETS).max(1)
    }

    pub(crate) fn bucket(&self, at: Timestamp) -> i64 {
        at.as_millis().div_euclid(self.width_ms)
    }

    /// Whether every bucket has passed at `now`: nothing counts any more.
    pub(crate) fn passed(&self, now: Timestamp) -> bool {
        self.bucket(now).saturating_sub(self.newest) >= SLOTS
    }

    pub(crate) fn advance(&mut self, now: Timestamp) {
        let b = self.bucket(now);
        if self.newest == i64::MIN || b.saturating_sub(self.newest) >= SLOTS {
            self.counts = [0; SLOTS as usize];
            self.newest = b;
        } else if b > self.newest {
            // Fewer than SLOTS steps: bounded whatever `newest` says.
            for n in self.newest + 1..=b {
                self.counts[n.rem_euclid(SLOTS) as usize] = 0;
            }
            self.newest = b;
        }
        // A clock behind the window's newest bucket changes nothing.
    }

    pub(crate) fn total(&self) -> u32 {
        self.counts.iter().map(|&c| u32::from(c)).sum()
    }

    /// This window as one counting over `window_ms` instead (a reload
    /// changed the cap's `per_hours`): what still counts at `now` is
    /// carried into now's bucket of the new width, so that no user gets
    /// their cap back at the change. Counted as of now, it counts a
    /// whole new window from now: never under the truth.
    pub(crate) fn rewidth(&mut self, window_ms: i64, now: Timestamp) {
        self.advance(now);
        let carried = self.total();
        *self = Window::new(window_ms);
        self.advance(now);
        let c = &mut self.counts[self.newest.rem_euclid(SLOTS) as usize];
        *c = u16::try_from(carried).unwrap_or(u16::MAX);
    }

    /// Adds one to `bucket`, or takes one away, if it is still inside.
    pub(crate) fn change(&mut self, bucket: i64, up: bool) {
        if bucket > self.newest || bucket <= self.newest.saturating_sub(SLOTS) {
            return;
        }
        let c = &mut self.counts[bucket.rem_euclid(SLOTS) as usize];
        *c = if up {
            c.saturating_add(1)
        } else {
            c.saturating_sub(1)
        };
    }
}

/// A ledger's windows still counting, by the hash of (user, line item)
/// under `key` ([`crate::Ledger::frequency`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Windows {
    pub(crate) key: [u64; 2],
    pub(crate) windows: Vec<(u64, Window)>,
}

impl Windows {
    pub fn len(&self) -> usize {
        self.windows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }
}

/// A window's bytes in the file: its slot, width, newest bucket, counts.
const RECORD: usize = record_len(SLOTS);

const fn record_len(slots: i64) -> usize {
    8 + 8 + 8 + 2 * slots as usize
}

/// The file's bytes, into `out`: the magic line, the key, the count of
/// windows, the windows, then a checksum of all that (a file cut short or
/// damaged is refused whole, not read in part). Streamed: millions of
/// windows are not copied once more into one buffer.
fn encode_into(w: &Windows, out: &mut impl io::Write) -> io::Result<()> {
    let mut sum = siphasher::sip::SipHasher13::new_with_keys(0, 0);
    let mut put = |bytes: &[u8]| {
        sum.write(bytes);
        out.write_all(bytes)
    };
    put(MAGIC)?;
    put(&w.key[0].to_le_bytes())?;
    put(&w.key[1].to_le_bytes())?;
    put(&(w.windows.len() as u64).to_le_bytes())?;
    let mut record = [0u8; RECORD];
    for (slot, win) in &w.windows {
        record[..8].copy_from_slice(&slot.to_le_bytes());
        record[8..16].copy_from_slice(&win.width_ms.to_le_bytes());
        record[16..24].copy_from_slice(&win.newest.to_le_bytes());
        for (at, c) in record[24..].chunks_exact_mut(2).zip(win.counts) {
            at.copy_from_slice(&c.to_le_bytes());
        }
        put(&record)?;
    }
    let sum = sum.finish();
    out.write_all(&sum.to_le_bytes())
}

#[cfg(test)]
fn encode(w: &Windows) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(w, &mut out).unwrap_or_else(|_| unreachable!("a Vec takes every write"));
    out
}

/// Not a MAC (the key of the windows is in the same file): it tells a
/// whole file from one cut short or damaged.
fn checksum(bytes: &[u8]) -> u64 {
    let mut h = siphasher::sip::SipHasher13::new_with_keys(0, 0);
    h.write(bytes);
    h.finish()
}

fn decode(bytes: &[u8]) -> Option<Windows> {
    let (body, sum) = bytes.split_at_checked(bytes.len().checked_sub(8)?)?;
    if checksum(body) != u64::from_le_bytes(sum.try_into().ok()?) {
        return None;
    }
    let (rest, slots) = match body.strip_prefix(MAGIC) {
        Some(rest) => (rest, SLOTS),
        None => (body.strip_prefix(MAGIC_V1)?, BUCKETS),
    };
    let record = record_len(slots);
    let (head, mut records) = rest.split_at_checked(24)?;
    let word = |b: &[u8], i: usize| -> Option<u64> {
        Some(u64::from_le_bytes(
            b.get(i * 8..i * 8 + 8)?.try_into().ok()?,
        ))
    };
    let key = [word(head, 0)?, word(head, 1)?];
    let n = usize::try_from(word(head, 2)?).ok()?;
    // The count must match the bytes before anything is allocated for it.
    if records.len() != n.checked_mul(record)? {
        return None;
    }
    let mut windows = Vec::with_capacity(n);
    while let Some((r, tail)) = records.split_at_checked(record) {
        records = tail;
        let width_ms = word(r, 1)? as i64;
        let newest = word(r, 2)? as i64;
        if width_ms < 1 {
            return None;
        }
        let mut counts = [0u16; SLOTS as usize];
        for i in 0..slots {
            let at = 24 + 2 * i as usize;
            let c = u16::from_le_bytes(r.get(at..at + 2)?.try_into().ok()?);
            // A first-version ring: counter `i` held the bucket of the
            // last BUCKETS whose number is `i` modulo BUCKETS.
            let bucket = match slots {
                SLOTS => i,
                _ => newest.saturating_sub(newest.saturating_sub(i).rem_euclid(BUCKETS)),
            };
            counts[bucket.rem_euclid(SLOTS) as usize] = c;
        }
        windows.push((
            word(r, 0)?,
            Window {
                width_ms,
                newest,
                counts,
            },
        ));
    }
    Some(Windows { key, windows })
}

/// Writes `windows` (a ledger's [`crate::Ledger::frequency`]) to `dir`,
/// replacing the file whole (written beside it, made durable, renamed),
/// readable by its owner only: it holds the key. Returns how many windows
/// it holds.
pub fn save(dir: &Path, windows: &Windows) -> io::Result<usize> {
    crate::journal::replace_file_with(dir, FILE, true, |f| {
        let mut w = io::BufWriter::with_capacity(1 << 16, f);
        encode_into(windows, &mut w)?;
        w.flush()
    })?;
    Ok(windows.len())
}

/// Why the file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{path}: not a whole file of frequency windows (cut short or damaged)")]
    Invalid { path: String },
}

/// What a start read and took on.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Restored {
    /// Windows in the file.
    pub read: usize,
    /// Of those, whose time had passed.
    pub passed: usize,
    /// Taken on: still counting, not from the future, within the bound,
    /// and under a key this ledger had not begun without.
    pub taken: usize,
}

/// Takes on in `ledger` the windows the file in `dir` holds, those still
/// counting at `now`. None there: none read, no error.
pub fn restore(dir: &Path, ledger: &dyn Ledger, now: Timestamp) -> Result<Restored, ReadError> {
    let path = dir.join(FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Restored::default()),
        Err(source) => {
            return Err(ReadError::Io {
                path: path.display().to_string(),
                source,
            })
        }
    };
    let mut windows = decode(&bytes).ok_or_else(|| ReadError::Invalid {
        path: path.display().to_string(),
    })?;
    let read = windows.len();
    windows.windows.retain(|(_, w)| !w.passed(now));
    let passed = read - windows.len();
    // A window whose newest bucket is ahead of now by more than one (a
    // clock that was well ahead, a file from another machine) would count
    // as it stood until the clock caught up: left out. One bucket is a
    // clock a little behind across a bucket's end.
    windows
        .windows
        .retain(|(_, w)| w.newest <= w.bucket(now).saturating_add(1));
    Ok(Restored {
        read,
        passed,
        taken: ledger.take_frequency(windows, now),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(newest: i64, counts: &[(usize, u16)]) -> Window {
        let mut w = Window::new(3_600_000);
        w.newest = newest;
        for &(i, c) in counts {
            w.counts[i] = c;
        }
        w
    }

    #[test]
    fn windows_read_back_as_written() {
        let w = Windows {
            key: [7, u64::MAX],
            windows: vec![
                (1, window(100, &[(4, 2), (23, 65_535)])),
                (u64::MAX, window(-5, &[(0, 1)])),
            ],
        };
        assert_eq!(decode(&encode(&w)), Some(w.clone()));
        let empty = Windows {
            key: [1, 2],
            windows: Vec::new(),
        };
        assert_eq!(decode(&encode(&empty)), Some(empty));
    }

    /// A file of the first version (rings of 24 counters, counter `i` for
    /// the bucket `i` modulo 24), as a process before this one wrote it:
    /// read with every count in its bucket.
    #[test]
    fn a_first_version_file_is_read_with_each_count_in_its_bucket() {
        let (newest, width): (i64, i64) = (1_000, 150_000);
        let mut v1 = Vec::new();
        v1.extend_from_slice(MAGIC_V1);
        for word in [3u64, 4, 1] {
            v1.extend_from_slice(&word.to_le_bytes());
        }
        v1.extend_from_slice(&9u64.to_le_bytes());
        v1.extend_from_slice(&width.to_le_bytes());
        v1.extend_from_slice(&newest.to_le_bytes());
        // Buckets 1,000 (its counter 1,000 % 24 = 16) and 977, the oldest
        // (counter 17), one and two impressions.
        for i in 0..BUCKETS {
            let c: u16 = match i {
                16 => 1,
                17 => 2,
                _ => 0,
            };
            v1.extend_from_slice(&c.to_le_bytes());
        }
        let sum = checksum(&v1);
        v1.extend_from_slice(&sum.to_le_bytes());
        let read = decode(&v1).expect("a first-version file");
        assert_eq!(read.key, [3, 4]);
        let (slot, w) = &read.windows[0];
        assert_eq!(
            (*slot, w.width_ms, w.newest, w.total()),
            (9, width, newest, 3)
        );
        let mut w = w.clone();
        let mut in_bucket = |b: i64| {
            w.change(b, false);
            w.total()
        };
        assert_eq!(in_bucket(977), 2, "one of the oldest bucket's two");
        assert_eq!(in_bucket(1_000), 1, "the newest bucket's one");
        // Its oldest bucket still counts 24 buckets on, and no more after.
        let mut w = read.windows[0].1.clone();
        w.advance(Timestamp(1_001 * width));
        assert_eq!(w.total(), 3);
        w.advance(Timestamp(1_002 * width));
        assert_eq!(w.total(), 1);
    }

    fn tempdir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("frequency-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A bid for `user` on line item `li` under a cap of 2 an hour.
    fn bid(l: &dyn Ledger, n: u64, user: &str, now: i64) -> Result<(), crate::Refusal> {
        use crate::SpendKey;
        let (li, o) = (SpendKey::line_item("li"), SpendKey::order("o"));
        let hold = crate::memory::tests::capped_hold(n, (&li, &o), user, 2, Timestamp(now));
        l.reserve(&hold, Timestamp(now)).map(|_| ())
    }

    #[test]
    fn caps_count_on_across_a_restart() {
        use crate::{MemoryLedger, Refusal};
        let dir = tempdir("restart");
        let now = 1_795_521_600_000i64;
        let before = MemoryLedger::default();
        for n in 0..2 {
            bid(&before, n, "u", now).expect("under the cap");
        }
        assert_eq!(bid(&before, 2, "u", now), Err(Refusal::Frequency));
        save(&dir, &before.frequency(Timestamp(now)).unwrap()).unwrap();

        let after = MemoryLedger::default();
        assert_eq!(
            restore(&dir, &after, Timestamp(now + 1_000)).unwrap(),
            Restored {
                read: 1,
                passed: 0,
                taken: 1
            }
        );
        assert_eq!(bid(&after, 10, "u", now + 1_000), Err(Refusal::Frequency));
        bid(&after, 11, "v", now + 1_000).expect("another user has a cap of their own");
        // The window still slides: an hour and a bucket on, "u" is back.
        bid(&after, 12, "u", now + 3_600_000 + 150_000).expect("the window has passed");

        // Windows whose time has passed are not taken on.
        let late = MemoryLedger::default();
        assert_eq!(
            restore(&dir, &late, Timestamp(now + 86_400_000)).unwrap(),
            Restored {
                read: 1,
                passed: 1,
                taken: 0
            }
        );
        // A clock one bucket behind still takes them on.
        let slow = MemoryLedger::default();
        assert_eq!(
            restore(&dir, &slow, Timestamp(now - 150_000))
                .unwrap()
                .taken,
            1
        );
        // Nor those from the future (a clock that was ahead).
        let behind = MemoryLedger::default();
        assert_eq!(
            restore(&dir, &behind, Timestamp(now - 3_600_000)).unwrap(),
            Restored {
                read: 1,
                passed: 0,
                taken: 0
            }
        );

        // A ledger that already counts under a key of its own takes none:
        // its users could not find them.
        let busy = MemoryLedger::default();
        bid(&busy, 20, "w", now).unwrap();
        assert_eq!(restore(&dir, &busy, Timestamp(now)).unwrap().taken, 0);
        bid(&busy, 21, "u", now).expect("nothing taken for u");

        // No file: nothing taken, no error; a damaged one: an error.
        let empty = tempdir("none");
        assert_eq!(
            restore(&empty, &MemoryLedger::default(), Timestamp(now)).unwrap(),
            Restored::default()
        );
        // Only its owner may read it: it holds the key.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.join(FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }
        std::fs::write(dir.join(FILE), b"bidder-frequency 1\n").unwrap();
        assert!(matches!(
            restore(&dir, &MemoryLedger::default(), Timestamp(now)),
            Err(ReadError::Invalid { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&empty);
    }

    /// Whatever a file says of a window's newest bucket (the checksum is
    /// no MAC), counting in it stays bounded work.
    #[test]
    fn a_window_from_any_time_counts_in_bounded_steps() {
        let now = Timestamp(1_795_521_600_000);
        for newest in [i64::MAX, i64::MAX - 1, i64::MIN + 1, -1, 0] {
            let mut w = window(newest, &[(3, 7)]);
            w.advance(now);
            w.change(w.bucket(now), true);
            w.change(newest, false);
            let _ = (w.total(), w.passed(now));
        }
    }

    #[test]
    fn a_file_cut_short_or_damaged_is_refused_whole() {
        let w = Windows {
            key: [7, 8],
            windows: vec![(1, window(100, &[(4, 2)])), (2, window(101, &[(5, 3)]))],
        };
        let bytes = encode(&w);
        for cut in 0..bytes.len() {
            assert_eq!(decode(&bytes[..cut]), None, "cut at {cut}");
        }
        for at in [
            0,
            MAGIC.len(),
            MAGIC.len() + 17,
            bytes.len() - 9,
            bytes.len() - 1,
        ] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x10;
            assert_eq!(decode(&bad), None, "byte {at} changed");
        }
        // A count that does not match the records, with a checksum that
        // does: refused before anything is allocated for it.
        let mut lying = bytes[..bytes.len() - 8].to_vec();
        let at = MAGIC.len() + 16;
        lying[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        let sum = checksum(&lying);
        lying.extend_from_slice(&sum.to_le_bytes());
        assert_eq!(decode(&lying), None);
    }
}

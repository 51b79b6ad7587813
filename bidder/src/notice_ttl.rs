//! How long the notices of bids made before this process stay valid, when
//! `--notice-ttl-hours` was raised since.
//!
//! A charged bid is remembered (so that its notice sent again is not
//! charged twice) until its notices expire as the process that charged it
//! reckoned them: bid time + the TTL then. A process started with a longer
//! TTL would take a notice of such a bid, sent again after it was forgotten
//! and before the new TTL ended, as a first one, and charge it again
//! (review finding). So the TTL each process ran with is kept in the state
//! directory, and notices of bids made before a start that raised it keep
//! the shorter one. Bids made since get the new one, and are remembered as
//! long.

use std::io;
use std::path::Path;

/// The file in the state directory: `v1 TTL_MS SINCE_MS BEFORE_MS`.
pub const FILE: &str = "notice-ttl";

/// Notices of bids made before `since_ms` are valid for `before_ms` at
/// most.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fence {
    pub since_ms: i64,
    pub before_ms: i64,
}

/// What the file says: the TTL the last process ran with, and the fence
/// it kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub ttl_ms: i64,
    pub fence: Option<Fence>,
}

/// The TTL (ms) of the notices of a bid made at `at_ms`, under `ttl_ms`
/// and `fence`.
pub fn for_bid(ttl_ms: i64, fence: Option<Fence>, at_ms: i64) -> i64 {
    match fence {
        Some(f) if at_ms < f.since_ms => ttl_ms.min(f.before_ms),
        _ => ttl_ms,
    }
}

/// Reads the file in `dir`; `None` where there is none (a first start, or
/// one of a version before this file).
pub fn read(dir: &Path) -> io::Result<Option<Recorded>> {
    let text = match std::fs::read_to_string(dir.join(FILE)) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    parse(&text)
        .map(Some)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("{FILE}: unreadable")))
}

fn parse(text: &str) -> Option<Recorded> {
    let mut words = text.split_ascii_whitespace();
    if words.next()? != "v1" {
        return None;
    }
    let mut num = || words.next()?.parse::<i64>().ok();
    let (ttl_ms, since_ms, before_ms) = (num()?, num()?, num()?);
    Some(Recorded {
        ttl_ms,
        fence: (since_ms > 0).then_some(Fence {
            since_ms,
            before_ms,
        }),
    })
}

/// The fence this process keeps, starting at `now_ms` with `ttl_ms`
/// after a process that left `last`. A raise fences the bids made before
/// now at the TTL they were made under (the shorter of two fences where a
/// second raise comes while the first still reaches a bid: conservative);
/// a cut or no change keeps the fence there was, which still holds for the
/// bids made before it. A fence whose bids have all expired is dropped.
pub fn fence(last: Option<Recorded>, ttl_ms: i64, now_ms: i64) -> Option<Fence> {
    let last = last?;
    let live = last
        .fence
        .filter(|f| now_ms < f.since_ms.saturating_add(f.before_ms));
    if ttl_ms <= last.ttl_ms {
        return live;
    }
    let before_ms = match live {
        Some(f) => f.before_ms.min(last.ttl_ms),
        None => last.ttl_ms,
    };
    Some(Fence {
        since_ms: now_ms,
        before_ms,
    })
}

/// Whether `ttl_ms` and `fence` must be written over what the file says:
/// not when they say the same, or differ only by a fence that has expired
/// (no later start reads it as live). A start rewrote the file each time,
/// and one on a full disk failed there: a pod whose disk filled could not
/// start again to answer the notices it still could (operators probe).
pub fn needs_write(last: Option<Recorded>, ttl_ms: i64, fence: Option<Fence>) -> bool {
    match last {
        Some(last) if last.ttl_ms == ttl_ms => last.fence != fence && fence.is_some(),
        _ => true,
    }
}

/// Records `ttl_ms` and `fence` in `dir`, replacing the file whole.
pub fn write(dir: &Path, ttl_ms: i64, fence: Option<Fence>) -> io::Result<()> {
    let (since, before) = fence.map_or((0, 0), |f| (f.since_ms, f.before_ms));
    let text = format!("v1 {ttl_ms} {since} {before}\n");
    ledger::journal::replace_file(dir, FILE, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    #[test]
    fn a_start_that_changes_nothing_writes_nothing() {
        let f = Some(Fence {
            since_ms: 1_000 * H,
            before_ms: 24 * H,
        });
        let was = |ttl_ms, fence| {
            Some(Recorded {
                ttl_ms: ttl_ms * H,
                fence,
            })
        };
        assert!(needs_write(None, 24 * H, None), "a first start");
        assert!(!needs_write(was(24, None), 24 * H, None));
        assert!(!needs_write(was(48, f), 48 * H, f));
        // The fence expired: what is left means the same.
        assert!(!needs_write(was(48, f), 48 * H, None));
        assert!(needs_write(was(24, None), 48 * H, f), "a raise");
        assert!(needs_write(was(48, f), 12 * H, f), "a cut");
        let later = Some(Fence {
            since_ms: 1_020 * H,
            before_ms: 24 * H,
        });
        assert!(needs_write(was(48, f), 48 * H, later));
    }

    #[test]
    fn a_raise_fences_the_bids_made_before_it() {
        let was = Recorded {
            ttl_ms: 24 * H,
            fence: None,
        };
        let f = fence(Some(was), 48 * H, 1_000 * H);
        assert_eq!(
            f,
            Some(Fence {
                since_ms: 1_000 * H,
                before_ms: 24 * H
            })
        );
        assert_eq!(for_bid(48 * H, f, 999 * H), 24 * H);
        assert_eq!(for_bid(48 * H, f, 1_000 * H), 48 * H);
        // Unchanged or cut: the fence there was stays.
        let kept = Recorded {
            ttl_ms: 48 * H,
            fence: f,
        };
        assert_eq!(fence(Some(kept), 48 * H, 1_010 * H), f);
        assert_eq!(fence(Some(kept), 12 * H, 1_010 * H), f);
        assert_eq!(for_bid(12 * H, f, 999 * H), 12 * H, "the shorter holds");
        // A second raise: the bids before it get the shortest.
        let f2 = fence(Some(kept), 72 * H, 1_020 * H);
        assert_eq!(
            f2,
            Some(Fence {
                since_ms: 1_020 * H,
                before_ms: 24 * H
            })
        );
        // The first fence's bids all expired: the second fences at the
        // TTL of the process before it.
        let f3 = fence(Some(kept), 72 * H, 1_024 * H);
        assert_eq!(f3.map(|f| f.before_ms), Some(48 * H));
        assert_eq!(fence(Some(kept), 48 * H, 1_024 * H), None);
        // First start, or a file of no fence: none.
        assert_eq!(fence(None, 48 * H, 0), None);
        assert_eq!(fence(Some(was), 24 * H, 0), None);
    }

    #[test]
    fn the_file_reads_back_and_a_damaged_one_is_refused() {
        let dir = std::env::temp_dir().join(format!("notice-ttl-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(read(&dir).unwrap(), None);
        let f = Some(Fence {
            since_ms: 5,
            before_ms: 7,
        });
        write(&dir, 9, f).unwrap();
        assert_eq!(
            read(&dir).unwrap(),
            Some(Recorded {
                ttl_ms: 9,
                fence: f
            })
        );
        write(&dir, 9, None).unwrap();
        assert_eq!(read(&dir).unwrap().unwrap().fence, None);
        std::fs::write(dir.join(FILE), "v2 1 2 3\n").unwrap();
        assert!(read(&dir).is_err());
        std::fs::write(dir.join(FILE), "v1 1 x 3\n").unwrap();
        assert!(read(&dir).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! Holds carried over a restart, for an embedded ledger.
//!
//! Bids in flight hold their cost in memory only: the journal records
//! charges, not reservations. A process that stopped (a deploy, a crash)
//! took its holds with it while its bids could still be won and billed,
//! and the next one bid the same budget again: twice a daily budget bought,
//! the second half over-delivery. The running process writes what it holds,
//! by key and day, about once a second and when it stops; the next one
//! holds that in full ([`crate::Ledger::carry`]) until the time written
//! with it: the longest reservation, plus the horizon within which late
//! wins come (what it carried itself keeps the time it came with). Bids
//! won and not yet billed (bought) are written one by one, and the next
//! process holds each as its own until it is charged or its notices
//! expire ([`crate::Ledger::carry_bought`]). A win
//! of a bid it does not know takes its cost off (`MemoryLedger::commit`). A
//! shared ledger keeps a stopped replica's leases counted in the shared
//! state instead (the same window).
//!
//! What a crash loses is the last second's new holds. The file holds no
//! money: one that cannot be read is reported and the start goes on.

use std::io;
use std::path::Path;

use config::{Date, Micros, Timestamp};

use crate::{BidKey, Bought, Holding, Ledger, SpendKey};

/// The file in the state directory.
pub const FILE: &str = "holds";

/// Version 3 added the `bought` lines; a version 2 file (no such lines)
/// is still read.
const MAGIC: &str = "bidder-holds 3";
const MAGIC_V2: &str = "bidder-holds 2";

/// What a start took over.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Carried {
    /// Keys and days held.
    pub holdings: usize,
    /// Summed over line items.
    pub line_items: Micros,
    pub until: Option<Timestamp>,
    /// Bought bids taken on one by one.
    pub bought: usize,
}

/// Why the file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{path}:{line}: not a line of held amounts")]
    Invalid { path: String, line: usize },
}

/// Writes `holdings` (a ledger's [`Ledger::holds`]) to `dir`: its own
/// bids' holds to be held until `until`, what it carries itself until the
/// time that came with it; and its `bought` bids ([`Ledger::bought`]) one
/// by one. Returns how many lines hold something.
pub fn save(
    dir: &Path,
    holdings: &[Holding],
    bought: &[Bought],
    until: Timestamp,
) -> io::Result<usize> {
    let mut text = format!("{MAGIC}\n");
    for b in bought {
        text.push_str("bought\t");
        text.push_str(&b.day.days_since_epoch().to_string());
        text.push('\t');
        text.push_str(&b.amount.as_i64().to_string());
        text.push('\t');
        text.push_str(&b.forget.as_millis().to_string());
        text.push('\t');
        text.push_str(&format!("{:016x}", b.bid.0));
        for k in &b.keys {
            text.push('\t');
            text.push_str(if k.is_line_item() { "li:" } else { "order:" });
            crate::journal::encode_id(k.id(), &mut text);
        }
        text.push('\n');
    }
    for h in holdings {
        text.push_str(if h.key.is_line_item() { "li" } else { "order" });
        text.push('\t');
        text.push_str(&h.day.days_since_epoch().to_string());
        text.push('\t');
        text.push_str(&h.amount.as_i64().to_string());
        text.push('\t');
        text.push_str(&h.until.unwrap_or(until).as_millis().to_string());
        text.push('\t');
        crate::journal::encode_id(h.key.id(), &mut text);
        text.push('\n');
    }
    crate::journal::replace_file(dir, FILE, text.as_bytes())?;
    Ok(holdings.len() + bought.len())
}

/// A `bought` line's fields past its kind.
fn bought_line<'a>(mut f: impl Iterator<Item = &'a str>) -> Option<Bought> {
    let day = f.next()?.parse::<i64>().ok()?;
    let amount = f.next()?.parse::<i64>().ok().filter(|&a| a > 0)?;
    let forget = f.next()?.parse::<i64>().ok()?;
    let bid = u64::from_str_radix(f.next()?, 16).ok()?;
    let mut key = || -> Option<SpendKey> {
        let k = f.next()?;
        if let Some(id) = k.strip_prefix("li:") {
            Some(SpendKey::line_item(&crate::journal::decode_id(id)?))
        } else {
            Some(SpendKey::order(&crate::journal::decode_id(
                k.strip_prefix("order:")?,
            )?))
        }
    };
    let keys = [key()?, key()?];
    if f.next().is_some() {
        return None;
    }
    Some(Bought {
        bid: BidKey(bid),
        keys,
        day: Date::from_days_since_epoch(day),
        amount: Micros(amount),
        forget: Timestamp(forget),
    })
}

/// Holds in `ledger` what the file in `dir` says, where its time has not
/// passed at `now`.
pub fn restore(dir: &Path, ledger: &dyn Ledger, now: Timestamp) -> Result<Carried, ReadError> {
    let path = dir.join(FILE);
    let shown = || path.display().to_string();
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Carried::default()),
        Err(source) => {
            return Err(ReadError::Io {
                path: shown(),
                source,
            })
        }
    };
    let invalid = |line: usize| ReadError::Invalid {
        path: shown(),
        line,
    };
    let mut lines = text.lines().enumerate();
    if !matches!(lines.next().map(|(_, l)| l), Some(MAGIC | MAGIC_V2)) {
        return Err(invalid(1));
    }
    let mut holdings = Vec::new();
    let mut bought = Vec::new();
    for (i, line) in lines {
        if let Some(rest) = line.strip_prefix("bought\t") {
            let b = bought_line(rest.split('\t')).ok_or_else(|| invalid(i + 1))?;
            if b.forget > now {
                bought.push(b);
            }
            continue;
        }
        let mut f = line.split('\t');
        let parsed = (|| {
            let kind = f.next()?;
            let day = f.next()?.parse::<i64>().ok()?;
            let amount = f.next()?.parse::<i64>().ok().filter(|&a| a > 0)?;
            let until = f.next()?.parse::<i64>().ok()?;
            let id = crate::journal::decode_id(f.next()?)?;
            if f.next().is_some() {
                return None;
            }
            let key = match kind {
                "li" => SpendKey::line_item(&id),
                "order" => SpendKey::order(&id),
                _ => return None,
            };
            Some(Holding {
                key,
                day: Date::from_days_since_epoch(day),
                amount: Micros(amount),
                until: Some(Timestamp(until)),
            })
        })();
        let h = parsed.ok_or_else(|| invalid(i + 1))?;
        if h.until.is_some_and(|u| u > now) {
            holdings.push(h);
        }
    }
    ledger.carry(&holdings, now);
    let taken = ledger.carry_bought(&bought, now);
    Ok(Carried {
        bought: taken,
        holdings: holdings.len(),
        line_items: holdings
            .iter()
            .filter(|h| h.key.is_line_item())
            .fold(Micros::ZERO, |sum, h| sum.saturating_add(h.amount)),
        until: holdings.iter().filter_map(|h| h.until).max(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryLedger;

    fn tempdir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("carried-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    }

    #[test]
    fn what_one_ledger_holds_the_next_holds_until_its_time() {
        let dir = tempdir("round-trip");
        let now = Timestamp(1_790_000_000_000);
        let day = now.date();
        let before = MemoryLedger::default();
        let li = SpendKey::line_item("li \t%\"ü");
        let soon = Timestamp(now.as_millis() + 1_000);
        before.carry(
            &[Holding {
                key: li.clone(),
                day,
                amount: Micros(2_500),
                until: Some(soon),
            }],
            now,
        );
        let until = Timestamp(now.as_millis() + 65_000);
        assert_eq!(save(&dir, &before.holds(), &[], until).unwrap(), 1);
        let after = MemoryLedger::default();
        let carried = restore(&dir, &after, now).unwrap();
        // What it carried keeps its own time, not the new one.
        assert_eq!(
            carried,
            Carried {
                holdings: 1,
                line_items: Micros(2_500),
                until: Some(soon),
                bought: 0,
            }
        );
        assert_eq!(after.spent(&li, day).held_today, Micros(2_500));
        // Past its time, nothing is held.
        let late = MemoryLedger::default();
        assert_eq!(restore(&dir, &late, soon).unwrap(), Carried::default());
        assert_eq!(late.spent(&li, day).held_today, Micros::ZERO);
    }

    #[test]
    fn no_file_holds_nothing_and_a_damaged_one_says_where() {
        let dir = tempdir("damaged");
        let l = MemoryLedger::default();
        assert_eq!(restore(&dir, &l, Timestamp(0)).unwrap(), Carried::default());
        for (text, line) in [
            ("other\n", 1),
            ("bidder-holds 2\nli\t1\t3\tx\tid\n", 2),
            ("bidder-holds 2\nli\t1\t3\t9\tid\nli\t1\t-3\t9\tx\n", 3),
            ("bidder-holds 2\nli\t1\t3\t9\tx\textra\n", 2),
            ("bidder-holds 2\nseat\t1\t3\t9\tx\n", 2),
            ("bidder-holds 3\nbought\t1\t3\t9\t00ff\tli:a\n", 2),
            ("bidder-holds 3\nbought\t1\t3\t9\tzz\tli:a\torder:o\n", 2),
            ("bidder-holds 3\nbought\t1\t3\t9\t00ff\tli:a\tseat:o\n", 2),
        ] {
            std::fs::write(dir.join(FILE), text).unwrap();
            let e = restore(&dir, &l, Timestamp(0)).unwrap_err().to_string();
            assert!(
                e.ends_with(&format!("holds:{line}: not a line of held amounts")),
                "{e}"
            );
        }
    }
}

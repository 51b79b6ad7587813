//! The waiting events across a restart: a file in the state directory.
//!
//! A deploy stopped the process with impressions and clicks still waiting
//! for their bids' charge, and they were lost: the win notice came to the
//! next process, which charged the bid and had nothing to count. Exchanges
//! that send the pixel and the notice together make that a few seconds of
//! impressions at every stop; bids won and billed on a later notice, up to
//! the notice lifetime's. The stopping process now writes what still waits
//! (after counting what was charged), and the next one takes it on before
//! it serves, then removes the file, so that no event can be taken on
//! twice. A crash still loses what waits: the file is written at a stop
//! only.
//!
//! One JSON object a line: the file is read where the binary may have
//! changed between the two processes, and a line that cannot be read (cut
//! short, of a format to come) costs that event alone. It holds user keys
//! and tracking features: readable by its owner only. No money is in it: a
//! file that cannot be read is reported, and the start goes on.

use std::io::{self, BufRead as _, Read as _, Write as _};
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Waiting, MAX_WAITING};

/// The file in the state directory.
pub(crate) const FILE: &str = "awaiting.jsonl";

/// A line longer than this is not one this code wrote (the dimensions are
/// config ids and a keyword, the features a few hundred bytes): the file
/// is read no further.
const MAX_LINE: u64 = 64 * 1024;

#[derive(Serialize, Deserialize)]
struct Line {
    /// Milliseconds since the epoch the event came at.
    at: i64,
    /// The bid id, 32 hex digits.
    bid: String,
    click: bool,
    /// Known to be won (billed on a later notice): waits the notice
    /// lifetime.
    won: bool,
    user: u64,
    features: Option<Arc<str>>,
    /// Its report's dimensions, each a key of the line's own.
    #[serde(flatten)]
    dims: reports::Dims,
}

impl Line {
    fn of(e: &Waiting, won: bool) -> Line {
        Line {
            at: e.at_ms,
            bid: format!("{:032x}", e.bid),
            click: e.click,
            won,
            user: e.user,
            features: e.features.clone(),
            dims: e.dims.clone(),
        }
    }

    fn event(self) -> Option<(Waiting, bool)> {
        if self.bid.len() != 32 {
            return None;
        }
        let bid = u128::from_str_radix(&self.bid, 16).ok()?;
        Some((
            Waiting {
                at_ms: self.at,
                dims: self.dims,
                user: self.user,
                click: self.click,
                bid,
                features: self.features,
            },
            self.won,
        ))
    }
}

/// Writes `events` (with whether each bid is known won) to `dir`, replacing
/// the file whole; with none, removes it. Returns how many it wrote.
pub(crate) fn save(dir: &Path, events: &[(Waiting, bool)]) -> io::Result<usize> {
    if events.is_empty() {
        return remove(dir).map(|()| 0);
    }
    ledger::journal::replace_file_with(dir, FILE, true, |f| {
        let mut w = io::BufWriter::with_capacity(1 << 16, f);
        for (e, won) in events {
            serde_json::to_writer(&mut w, &Line::of(e, *won))?;
            w.write_all(b"\n")?;
        }
        w.flush()
    })?;
    Ok(events.len())
}

/// What a start read.
#[derive(Default)]
pub(crate) struct Restored {
    /// Events read, with whether each bid is known won.
    pub(crate) events: Vec<(Waiting, bool)>,
    /// Lines that could not be read, and lines past [`MAX_WAITING`] or an
    /// overlong line, left unread.
    pub(crate) skipped: usize,
}

/// Why the file could not be read or removed.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub(crate) struct Error {
    path: String,
    source: io::Error,
}

/// Reads the file in `dir`, then removes it (made durable) before handing
/// back what it held: an event is taken on once, or, after a crash right
/// here, not at all. No file: nothing.
pub(crate) fn restore(dir: &Path) -> Result<Restored, Error> {
    let path = dir.join(FILE);
    let failed = |source| Error {
        path: path.display().to_string(),
        source,
    };
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Restored::default()),
        Err(e) => return Err(failed(e)),
    };
    let mut out = Restored::default();
    let mut reader = io::BufReader::new(file);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_LINE + 1)
            .read_until(b'\n', &mut line)
            .map_err(failed)?;
        if n == 0 {
            break;
        }
        if out.events.len() == MAX_WAITING || line.last() != Some(&b'\n') && n as u64 > MAX_LINE {
            // The rest is not read: counted as one.
            out.skipped += 1;
            break;
        }
        match serde_json::from_slice::<Line>(&line)
            .ok()
            .and_then(Line::event)
        {
            Some(e) => out.events.push(e),
            None => out.skipped += 1,
        }
    }
    remove(dir).map_err(failed)?;
    Ok(out)
}

fn remove(dir: &Path) -> io::Result<()> {
    match std::fs::remove_file(dir.join(FILE)) {
        Ok(()) => std::fs::File::open(dir)?.sync_all(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(bid: u128, click: bool, keyword: &str, features: Option<&str>) -> Waiting {
        Waiting {
            at_ms: 1_795_608_000_123,
            dims: reports::Dims {
                advertiser: "adv".into(),
                order: "o-1".into(),
                line_item: "li \"1\"\n".into(),
                creative: "cr".into(),
                exchange: "default".into(),
                keyword: keyword.into(),
                audience: "views:a".into(),
                product: "".into(),
            },
            user: u64::MAX,
            click,
            bid,
            features: features.map(Into::into),
        }
    }

    fn seen(events: &[(Waiting, bool)]) -> Vec<String> {
        events
            .iter()
            .map(|(e, won)| {
                format!(
                    "{} {:?} {:?} {won}",
                    e.at_ms,
                    e.features,
                    Line::of(e, *won).bid
                )
            })
            .collect()
    }

    fn dir(name: &str) -> std::path::PathBuf {
        crate::testing::tempdir("awaiting", name)
    }

    #[test]
    fn events_read_back_as_written_once() {
        let d = dir("roundtrip");
        let events = vec![
            (event(u128::MAX, false, "tent", Some("ASmX")), false),
            (event(1, true, "", None), true),
        ];
        assert_eq!(save(&d, &events).expect("saved"), 2);
        let back = restore(&d).expect("read");
        assert_eq!(back.skipped, 0);
        assert_eq!(seen(&back.events), seen(&events));
        let (e, _) = &back.events[0];
        assert_eq!(e.dims.line_item.as_ref(), "li \"1\"\n");
        assert_eq!((e.user, e.click, e.bid), (u64::MAX, false, u128::MAX));
        // Taken on once: the file is gone.
        assert!(!d.join(FILE).exists());
        assert!(restore(&d).expect("no file").events.is_empty());
        // Nothing waiting: no file.
        save(&d, &events).expect("saved");
        assert_eq!(save(&d, &[]).expect("emptied"), 0);
        assert!(!d.join(FILE).exists());
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn a_damaged_line_costs_its_event_alone() {
        let d = dir("damaged");
        let events = vec![
            (event(7, false, "a", None), false),
            (event(8, false, "b", None), false),
            (event(9, true, "c", None), false),
        ];
        save(&d, &events).expect("saved");
        let text = std::fs::read_to_string(d.join(FILE)).expect("read");
        let mut lines: Vec<&str> = text.lines().collect();
        // One line cut short, one bid id that is not 32 hex digits, and
        // the file's end cut in the middle of the last line.
        let cut = &lines[0][..20];
        let short_bid = lines[1].replace(&format!("{:032x}", 8), "8");
        let last = &lines[2][..lines[2].len() - 3];
        lines = vec![cut, &short_bid, lines[2], last];
        std::fs::write(d.join(FILE), lines.join("\n")).expect("written");
        let back = restore(&d).expect("read");
        assert_eq!(back.skipped, 3);
        assert_eq!(seen(&back.events), seen(&events[2..]));
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn an_overlong_line_ends_the_reading() {
        let d = dir("overlong");
        let long = "k".repeat(MAX_LINE as usize);
        let events = vec![
            (event(1, false, "a", None), false),
            (event(2, false, &long, None), false),
            (event(3, false, "c", None), false),
        ];
        save(&d, &events).expect("saved");
        let back = restore(&d).expect("read");
        assert_eq!((back.events.len(), back.skipped), (1, 1));
        std::fs::remove_dir_all(&d).ok();
    }
}

//! The append-only journal of charges: what makes spend survive a crash.
//!
//! A charge is acknowledged to the exchange only once its record is on disk
//! (fsync). Records are written by one thread that batches whatever has
//! queued up into one write and one fsync, so a burst of notices costs one
//! disk flush, and bids never wait on the disk at all. At start the journal
//! is replayed; a record cut short by a crash (no final newline) was never
//! acknowledged and is ignored.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use config::{Date, Micros, Timestamp};

/// One charge as written to and read from the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub bid_id: String,
    pub day: Date,
    pub billed: Micros,
    pub forget_after: Timestamp,
    pub keys: Vec<String>,
}

impl Record {
    /// `C <bid> <day> <billed micros> <forget after ms> <key>...`, tab
    /// separated; ids never hold tabs or newlines (they are refused below).
    fn line(&self) -> String {
        let mut s = format!(
            "C\t{}\t{}\t{}\t{}",
            self.bid_id,
            self.day,
            self.billed.as_i64(),
            self.forget_after.as_millis()
        );
        for k in &self.keys {
            s.push('\t');
            s.push_str(k);
        }
        s.push('\n');
        s
    }

    fn parse(line: &str) -> Option<Record> {
        let mut f = line.split('\t');
        if f.next()? != "C" {
            return None;
        }
        Some(Record {
            bid_id: f.next()?.to_string(),
            day: Date::parse(f.next()?).ok()?,
            billed: Micros(f.next()?.parse().ok()?),
            forget_after: Timestamp(f.next()?.parse().ok()?),
            keys: f.map(str::to_string).collect(),
        })
    }
}

type Ack = tokio::sync::oneshot::Sender<io::Result<()>>;

pub struct Journal {
    tx: mpsc::Sender<(String, Ack)>,
    path: PathBuf,
}

impl Journal {
    /// Opens (or creates) `dir/charges.journal`, returns the journal and
    /// the records already in it, in order.
    pub fn open(dir: &Path) -> io::Result<(Journal, Vec<Record>)> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("charges.journal");
        let mut records = Vec::new();
        let mut valid_len = 0u64;
        if let Ok(f) = File::open(&path) {
            let mut reader = BufReader::new(f);
            let mut line = String::new();
            loop {
                line.clear();
                let n = reader.read_line(&mut line)?;
                if n == 0 || !line.ends_with('\n') {
                    break;
                }
                match Record::parse(line.trim_end_matches('\n')) {
                    Some(r) => records.push(r),
                    None => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("{}: unreadable record: {line:?}", path.display()),
                        ))
                    }
                }
                valid_len += n as u64;
            }
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        // A torn last record (a crash mid-write) was never acknowledged:
        // cut it off so the next record starts on a line of its own.
        if file.metadata()?.len() > valid_len {
            file.set_len(valid_len)?;
        }
        file.sync_all()?;
        let (tx, rx) = mpsc::channel::<(String, Ack)>();
        std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || writer(file, rx))?;
        Ok((Journal { tx, path }, records))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends a record; resolves once it is on disk.
    pub async fn append(&self, record: &Record) -> io::Result<()> {
        if record.bid_id.contains(['\t', '\n'])
            || record.keys.iter().any(|k| k.contains(['\t', '\n']))
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "tab or newline in an id",
            ));
        }
        let (ack, done) = tokio::sync::oneshot::channel();
        self.tx
            .send((record.line(), ack))
            .map_err(|_| io::Error::other("journal writer stopped"))?;
        done.await
            .unwrap_or_else(|_| Err(io::Error::other("journal writer stopped")))
    }
}

fn writer(mut file: File, rx: mpsc::Receiver<(String, Ack)>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let mut buf = String::with_capacity(batch.iter().map(|(l, _)| l.len()).sum());
        for (line, _) in &batch {
            buf.push_str(line);
        }
        let result = file
            .write_all(buf.as_bytes())
            .and_then(|()| file.sync_data());
        for (_, ack) in batch {
            let _ = ack.send(match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, billed: i64) -> Record {
        Record {
            bid_id: id.into(),
            day: Date::parse("2026-11-24").unwrap(),
            billed: Micros(billed),
            forget_after: Timestamp(1_795_000_000_000),
            keys: vec!["li:a".into(), "order:o".into()],
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn records_survive_reopening_and_a_torn_tail_is_dropped() {
        let dir = std::env::temp_dir().join(format!("bidder-journal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let (j, old) = Journal::open(&dir).unwrap();
            assert!(old.is_empty());
            j.append(&record("b1", 6_000)).await.unwrap();
            j.append(&record("b2", 4_500)).await.unwrap();
        }
        // A crash in the middle of a third record.
        let path = dir.join("charges.journal");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"C\tb3\t2026-11-24\t12").unwrap();
        drop(f);
        let (j, records) = Journal::open(&dir).unwrap();
        assert_eq!(records, vec![record("b1", 6_000), record("b2", 4_500)]);
        j.append(&record("b4", 1)).await.unwrap();
        drop(j);
        let (_, records) = Journal::open(&dir).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(records[2], record("b4", 1));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn ids_with_separators_are_refused() {
        let dir = std::env::temp_dir().join(format!("bidder-journal-sep-{}", std::process::id()));
        let (j, _) = Journal::open(&dir).unwrap();
        assert!(j.append(&record("bad\tid", 1)).await.is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! The budgets a bidder last served, kept in its state directory, so that
//! the account-manager rules of [`crate::changes`] hold across a restart as
//! they hold across a reload.
//!
//! A reload compares the new config with the one in memory. A restart has
//! no config in memory: without this record, a lifetime budget cut after
//! its flight started (which a reload refuses) came back on a restart, and
//! `validate --state` passed it. Each config installed (at start and on
//! every accepted reload) rewrites the record, so it always mirrors the
//! config serving: a start and `validate --state` compare with it exactly
//! as a reload compares with the config in memory.
//!
//! Not money state: losing the file loses only this comparison (as a first
//! start has none), so a file that cannot be read is reported and set
//! aside, never a reason to refuse a start.

use std::collections::HashMap;
use std::path::Path;

use config::{Budget, Config, Date, Flight, Micros};
use serde::{Deserialize, Serialize};

/// The record's file in the state directory.
pub const FILE: &str = "served-budgets.json";

/// What the file says it is, so that another JSON file by that name is not
/// read as one.
const FORMAT: &str = "bidder-served-budgets";
const VERSION: u32 = 1;

/// Line item id → its budget and its order's flight, as last served.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Served(HashMap<String, (Budget, Flight)>);

#[derive(Serialize, Deserialize)]
struct File {
    format: String,
    version: u32,
    line_items: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    id: String,
    /// `daily` or `lifetime`.
    budget: String,
    micros: i64,
    flight_start: String,
    flight_end: String,
}

/// Why the record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a record of served budgets ({why})")]
    Invalid { path: String, why: String },
}

impl Served {
    /// What `config` serves.
    pub fn of(config: &Config) -> Served {
        let mut out = HashMap::new();
        for order in config.advertisers.iter().flat_map(|a| &a.orders) {
            for li in &order.line_items {
                out.insert(li.id.clone(), (li.budget, order.flight));
            }
        }
        Served(out)
    }

    /// The budget and flight of line item `id`, if it was served.
    pub fn get(&self, id: &str) -> Option<(Budget, Flight)> {
        self.0.get(id).copied()
    }

    /// The record in `dir`: empty when there is none yet.
    pub fn read(dir: &Path) -> Result<Served, ReadError> {
        let path = dir.join(FILE);
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Served::default()),
            Err(source) => {
                return Err(ReadError::Io {
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        let invalid = |why: String| ReadError::Invalid {
            path: path.display().to_string(),
            why,
        };
        let file: File = serde_json::from_slice(&text).map_err(|e| invalid(e.to_string()))?;
        if file.format != FORMAT || file.version != VERSION {
            return Err(invalid(format!(
                "format {:?} version {}, this bidder reads {FORMAT:?} version {VERSION}",
                file.format, file.version
            )));
        }
        let mut out = HashMap::new();
        for e in file.line_items {
            let amount = Micros(e.micros);
            let budget = match e.budget.as_str() {
                "daily" => Budget::Daily(amount),
                "lifetime" => Budget::Lifetime(amount),
                other => {
                    return Err(invalid(format!(
                        "line item {:?}: budget {other:?} is neither daily nor lifetime",
                        e.id
                    )))
                }
            };
            let date = |s: &str| {
                Date::parse(s).map_err(|err| invalid(format!("line item {:?}: {err}", e.id)))
            };
            let flight = Flight {
                start: date(&e.flight_start)?,
                end: date(&e.flight_end)?,
            };
            out.insert(e.id, (budget, flight));
        }
        Ok(Served(out))
    }

    /// Replaces the record in `dir` with this one, through a temporary file
    /// and a rename: a crash leaves the old record or the new one.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let mut line_items: Vec<Entry> = self
            .0
            .iter()
            .map(|(id, (budget, flight))| Entry {
                id: id.clone(),
                budget: match budget {
                    Budget::Daily(_) => "daily",
                    Budget::Lifetime(_) => "lifetime",
                }
                .to_string(),
                micros: budget.amount().as_i64(),
                flight_start: flight.start.to_string(),
                flight_end: flight.end.to_string(),
            })
            .collect();
        // The same config writes the same bytes.
        line_items.sort_by(|a, b| a.id.cmp(&b.id));
        let file = File {
            format: FORMAT.to_string(),
            version: VERSION,
            line_items,
        };
        let mut bytes = serde_json::to_vec_pretty(&file).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        ledger::journal::replace_file(dir, FILE, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory of this test's own.
    fn tempdir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("served-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    }

    fn served() -> Served {
        let flight = Flight {
            start: Date::parse("2026-11-01").unwrap(),
            end: Date::parse("2026-12-31").unwrap(),
        };
        Served(HashMap::from([
            (
                "li-a".to_string(),
                (Budget::Lifetime(Micros(30_000_000_000)), flight),
            ),
            (
                "li \"b\"\tc".to_string(),
                (Budget::Daily(Micros(1_000_000)), flight),
            ),
        ]))
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let dir = tempdir("round-trip");
        let s = served();
        s.write(&dir).unwrap();
        assert_eq!(Served::read(&dir).unwrap(), s);
        assert!(!dir.join(format!("{FILE}.tmp")).exists());
    }

    #[test]
    fn no_record_is_an_empty_one() {
        let dir = tempdir("none");
        assert_eq!(Served::read(&dir).unwrap(), Served::default());
    }

    #[test]
    fn a_file_that_is_not_a_record_is_refused_with_its_path() {
        let dir = tempdir("invalid");
        for text in [
            "not json",
            r#"{"format":"other","version":1,"line_items":[]}"#,
            r#"{"format":"bidder-served-budgets","version":2,"line_items":[]}"#,
            r#"{"format":"bidder-served-budgets","version":1,"line_items":[{"id":"x","budget":"weekly","micros":1,"flight_start":"2026-01-01","flight_end":"2026-01-02"}]}"#,
            r#"{"format":"bidder-served-budgets","version":1,"line_items":[{"id":"x","budget":"daily","micros":1,"flight_start":"2026-13-01","flight_end":"2026-01-02"}]}"#,
        ] {
            std::fs::write(dir.join(FILE), text).unwrap();
            let e = Served::read(&dir).unwrap_err().to_string();
            assert!(
                e.contains(FILE) && e.contains("not a record"),
                "{text}: {e}"
            );
        }
    }
}

//! A ledger and its journal: charging a win durably.

use std::sync::Arc;
use std::time::Duration;

use crate::journal::Journal;
use crate::{Charge, Ledger, NotCharged, Win};

/// Why a win was not charged.
#[derive(Debug, thiserror::Error)]
pub enum ChargeError {
    /// The record could not be written: nothing was charged, and the
    /// exchange's retry will charge.
    #[error("the charge could not be recorded: {0}")]
    Storage(std::io::Error),
    /// Another notice for the same bid was still being written after
    /// waiting for it; a retry will answer.
    #[error("another notice for this bid is still being recorded")]
    Busy,
    /// Its notices expired by the latest time the ledger has seen.
    #[error("the bid's notices have expired")]
    Expired,
    /// The shared state cannot be reached: nothing was charged, and the
    /// exchange's retry will charge.
    #[error("the shared state cannot be reached")]
    Unavailable,
}

/// The ledger and, when spend must survive a restart, its journal.
pub struct Books {
    ledger: Arc<dyn Ledger>,
    journal: Option<Journal>,
}

/// How long a notice waits for another notice of the same bid (nurl and
/// burl together) to be written: a journal write takes milliseconds.
const WAIT_FOR_OTHER: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(2);
const MAX_POLL: Duration = Duration::from_millis(100);

impl Books {
    pub fn new(ledger: Arc<dyn Ledger>, journal: Option<Journal>) -> Books {
        Books { ledger, journal }
    }

    pub fn ledger(&self) -> &dyn Ledger {
        &*self.ledger
    }

    pub fn journal(&self) -> Option<&Journal> {
        self.journal.as_ref()
    }

    /// Whether charges cannot be written now (see [`Journal::is_failing`]):
    /// a win could not be recorded, so no bid should be made.
    pub fn journal_failing(&self) -> bool {
        self.journal.as_ref().is_some_and(Journal::is_failing)
    }

    /// Waits for the journal to finish writing (see [`Journal::close`]).
    pub fn close(self) {
        if let Some(j) = self.journal {
            j.close();
        }
    }

    /// Charges a win exactly once. `Ok(Some)`: charged now, and on disk
    /// when there is a journal. `Ok(None)`: charged before (a duplicate).
    pub async fn charge(&self, win: &Win<'_>) -> Result<Option<Charge>, ChargeError> {
        let mut waited = Duration::ZERO;
        let mut pause = POLL;
        let charge = loop {
            match self.ledger.begin_charge(win) {
                Ok(c) => break c,
                Err(NotCharged::Duplicate) => return Ok(None),
                // Backing off: with a shared ledger each try is a call to
                // Redis.
                Err(NotCharged::InFlight) if waited < WAIT_FOR_OTHER => {
                    tokio::time::sleep(pause).await;
                    waited += pause;
                    pause = (pause * 2).min(MAX_POLL);
                }
                Err(NotCharged::InFlight) => return Err(ChargeError::Busy),
                Err(NotCharged::Forgotten) => return Err(ChargeError::Expired),
                Err(NotCharged::Unavailable) => return Err(ChargeError::Unavailable),
            }
        };
        match &self.journal {
            // The writer commits the charge once it is on disk (or aborts
            // it), before it answers.
            Some(journal) => journal
                .append(charge.clone())
                .await
                .map(|()| Some(charge))
                .map_err(ChargeError::Storage),
            None => {
                self.ledger.commit(&charge);
                Ok(Some(charge))
            }
        }
    }
}

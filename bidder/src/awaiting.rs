//! Impressions and clicks of bids not won yet, waiting for the win.
//!
//! Reports and attribution count a bid's impression and click only once
//! the bid is won (charged). Its tracking URLs are signed per bid, so
//! whoever saw its markup could call them, won or not: a header-bidding
//! page sees every bid's markup, an exchange every bid it was sent. Each
//! such call was an impression or a click the advertiser never paid for,
//! and a last touch that sales were attributed to.
//!
//! A pixel often comes before the notice that charges (exchanges that bill
//! on render send both at once), so the event of a bid the ledger still
//! holds waits here, and is recorded at its own time once the bid is
//! charged; dropped once it is lost, or when [`App`](crate::App)'s wait
//! (the longest reservation and the late-win horizon) has passed. Events
//! of bids the ledger does not know are recorded at once, as before: bids
//! made before a restart, or by another replica.
//!
//! Bounded: past [`MAX_WAITING`] events, a new one of a bid not won yet is
//! dropped (reports never count what was not won; a flood of calls for
//! unwon bids cannot grow memory).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ledger::Outcome;

/// Events waiting at most.
pub(crate) const MAX_WAITING: usize = 100_000;

/// One event as the event journal takes it ([`reports::log::EventLog::track_with`]).
pub(crate) struct Waiting {
    pub at_ms: i64,
    pub dims: reports::Dims,
    pub user: u64,
    pub click: bool,
    pub bid: u128,
    pub features: Option<Arc<str>>,
}

/// Events by bid, and when each came. One lock: only events that come
/// before their bid's charge take it (a pixel and its notice sent
/// together), and the upkeep once a second; not the bid path.
#[derive(Default)]
pub(crate) struct Awaiting {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Two at most a bid: tracking counts one impression and one click of
    /// each.
    by_bid: HashMap<u128, Vec<Waiting>>,
    /// Events in `by_bid`.
    count: usize,
}

/// What [`Awaiting::settle`] did.
#[derive(Default)]
pub(crate) struct Settled {
    /// Of bids charged since: to record now.
    pub won: Vec<Waiting>,
    /// Of bids lost, let go or past the wait: dropped.
    pub dropped: usize,
}

impl Awaiting {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every change leaves the map whole before it could panic.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits `event` for its bid's charge; `false` (dropped) when
    /// [`MAX_WAITING`] wait already.
    pub(crate) fn wait(&self, event: Waiting) -> bool {
        let mut inner = self.lock();
        if inner.count >= MAX_WAITING {
            return false;
        }
        inner.count += 1;
        inner.by_bid.entry(event.bid).or_default().push(event);
        true
    }

    /// The events of `bid`, which has just been charged here or lost.
    pub(crate) fn take(&self, bid: u128) -> Vec<Waiting> {
        let mut inner = self.lock();
        let events = inner.by_bid.remove(&bid).unwrap_or_default();
        inner.count -= events.len();
        events
    }

    /// Looks at every bid with events waiting: those now charged give
    /// their events back to record, those lost or not known any more
    /// drop theirs, and so do those still held whose events came
    /// `wait_ms` or longer before `now_ms`.
    pub(crate) fn settle(
        &self,
        now_ms: i64,
        wait_ms: i64,
        outcome: impl Fn(u128) -> Outcome,
    ) -> Settled {
        let mut out = Settled::default();
        let mut inner = self.lock();
        inner.by_bid.retain(|&bid, events| match outcome(bid) {
            Outcome::Charged => {
                out.won.append(events);
                false
            }
            Outcome::InFlight => {
                let before = events.len();
                events.retain(|e| now_ms.saturating_sub(e.at_ms) < wait_ms);
                out.dropped += before - events.len();
                !events.is_empty()
            }
            Outcome::Lost | Outcome::Unknown => {
                out.dropped += events.len();
                false
            }
        });
        inner.count -= out.won.len() + out.dropped;
        out
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(bid: u128, at_ms: i64, click: bool) -> Waiting {
        Waiting {
            at_ms,
            dims: reports::Dims::default(),
            user: 0,
            click,
            bid,
            features: None,
        }
    }

    #[test]
    fn events_wait_for_their_bids_outcome() {
        let a = Awaiting::default();
        for (bid, at) in [(1, 0), (1, 5), (2, 0), (3, 0), (4, 0), (5, 100)] {
            assert!(a.wait(event(bid, at, at == 5)));
        }
        assert_eq!(a.len(), 6);
        let outcome = |bid| match bid {
            1 => Outcome::Charged,
            2 => Outcome::Lost,
            3 => Outcome::Unknown,
            _ => Outcome::InFlight,
        };
        let s = a.settle(1_000, 1_000, outcome);
        let won: Vec<(u128, i64, bool)> = s.won.iter().map(|e| (e.bid, e.at_ms, e.click)).collect();
        assert_eq!(
            won,
            [(1, 0, false), (1, 5, true)],
            "both, at their own times"
        );
        // 2 lost, 3 forgotten, 4 held for the whole wait.
        assert_eq!(s.dropped, 3);
        assert_eq!(a.len(), 1);
        assert_eq!(a.take(5).len(), 1);
        assert!(a.take(5).is_empty());
    }

    #[test]
    fn past_the_bound_new_events_are_dropped() {
        let a = Awaiting::default();
        for i in 0..MAX_WAITING as u128 {
            assert!(a.wait(event(i % 1000, 0, false)));
        }
        assert!(!a.wait(event(7, 0, true)));
        assert!(!a.wait(event(u128::MAX, 0, false)));
        assert_eq!(a.len(), MAX_WAITING);
    }
}

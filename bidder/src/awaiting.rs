//! Impressions and clicks of bids not charged yet, waiting for the charge.
//!
//! Reports and attribution count a bid's impression and click only once
//! the bid is charged. Its tracking URLs are signed per bid, so whoever saw
//! its markup could call them, won or not: a header-bidding page sees every
//! bid's markup, an exchange every bid it was sent. Each such call was an
//! impression or a click the advertiser never paid for, and a last touch
//! that sales were attributed to.
//!
//! A pixel often comes before the notice that charges (exchanges that bill
//! on render send both at once), so the event of a bid not charged yet
//! waits here, and is recorded at its own time once the bid is charged. It
//! is dropped when its wait is over: the longest reservation and the
//! late-win horizon after the event, or, for a bid won and billed on a
//! later notice, the notice lifetime. A loss notice does not end the wait:
//! a win may still come after it, and the ledger charges that win.
//!
//! Bounded: past [`MAX_WAITING`] events, the oldest is dropped for a new one.
//! Events of bids that are charged leave within seconds; what stays long is
//! mostly calls for bids that will not be won, so a flood of those pushes
//! out its own kind first.

use std::collections::{HashMap, VecDeque};
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

/// Events by bid, in the order they came. One lock: only events that come
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
    /// Bids in the order their first waiting event came; some may have
    /// left `by_bid` since (kept in step by [`Awaiting::settle`]).
    order: VecDeque<u128>,
    /// Events in `by_bid`.
    count: usize,
}

impl Inner {
    fn remove(&mut self, bid: u128) -> Vec<Waiting> {
        let events = self.by_bid.remove(&bid).unwrap_or_default();
        self.count -= events.len();
        events
    }
}

/// What [`Awaiting::settle`] did.
#[derive(Default)]
pub(crate) struct Settled {
    /// Of bids charged since: to record now.
    pub won: Vec<Waiting>,
    /// Whose wait is over: dropped.
    pub dropped: usize,
}

impl Awaiting {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every change leaves the map whole before it could panic.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits `event` for its bid's charge. Returns how many events older
    /// ones were dropped to make room (all of the oldest bid's).
    pub(crate) fn wait(&self, event: Waiting) -> usize {
        let mut inner = self.lock();
        let mut dropped = 0;
        while inner.count >= MAX_WAITING {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            dropped += inner.remove(oldest).len();
        }
        let bid = event.bid;
        let events = inner.by_bid.entry(bid).or_default();
        events.push(event);
        if events.len() == 1 {
            inner.order.push_back(bid);
        }
        inner.count += 1;
        dropped
    }

    /// The events of `bid`, which has just been charged here.
    pub(crate) fn take(&self, bid: u128) -> Vec<Waiting> {
        self.lock().remove(bid)
    }

    /// Looks at every bid with events waiting: those now charged give
    /// their events back to record; the others keep theirs while their
    /// wait lasts (`won_wait_ms` after the event for a bid won and billed
    /// on a later notice, `wait_ms` for any other), and drop them then.
    pub(crate) fn settle(
        &self,
        now_ms: i64,
        wait_ms: i64,
        won_wait_ms: i64,
        outcome: impl Fn(u128) -> Outcome,
    ) -> Settled {
        let mut out = Settled::default();
        let mut inner = self.lock();
        inner.by_bid.retain(|&bid, events| {
            let wait = match outcome(bid) {
                Outcome::Charged => {
                    out.won.append(events);
                    return false;
                }
                Outcome::Won => won_wait_ms,
                Outcome::InFlight | Outcome::Lost | Outcome::Unknown => wait_ms,
            };
            let before = events.len();
            events.retain(|e| now_ms.saturating_sub(e.at_ms) < wait);
            out.dropped += before - events.len();
            !events.is_empty()
        });
        inner.count -= out.won.len() + out.dropped;
        let Inner { by_bid, order, .. } = &mut *inner;
        order.retain(|b| by_bid.contains_key(b));
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
    fn events_wait_for_their_bids_charge() {
        let a = Awaiting::default();
        for (bid, at) in [(1, 0), (1, 5), (2, 0), (3, 0), (4, 0), (5, 100), (6, 0)] {
            assert_eq!(a.wait(event(bid, at, at == 5)), 0);
        }
        assert_eq!(a.len(), 7);
        let outcome = |bid| match bid {
            1 => Outcome::Charged,
            2 => Outcome::Lost,
            3 => Outcome::Unknown,
            6 => Outcome::Won,
            _ => Outcome::InFlight,
        };
        let s = a.settle(999, 1_000, 10_000, outcome);
        let won: Vec<(u128, i64, bool)> = s.won.iter().map(|e| (e.bid, e.at_ms, e.click)).collect();
        assert_eq!(
            won,
            [(1, 0, false), (1, 5, true)],
            "both, at their own times"
        );
        assert_eq!(
            (s.dropped, a.len()),
            (0, 5),
            "lost or not, a win may still come"
        );
        let s = a.settle(1_000, 1_000, 10_000, outcome);
        // 2, 3 and 4 waited long enough; 5 came later, 6 was won.
        assert_eq!((s.won.len(), s.dropped, a.len()), (0, 3, 2));
        let s = a.settle(10_000, 1_000, 10_000, outcome);
        assert_eq!((s.dropped, a.len()), (2, 0));
        assert!(a.take(5).is_empty());
    }

    #[test]
    fn past_the_bound_the_oldest_make_room() {
        let a = Awaiting::default();
        for i in 0..MAX_WAITING as u128 {
            assert_eq!(a.wait(event(i / 2, 0, i % 2 == 1)), 0);
        }
        // The oldest bid's two events go for the new one.
        assert_eq!(a.wait(event(u128::MAX, 0, false)), 2);
        assert!(a.take(0).is_empty());
        assert_eq!(a.take(1).len(), 2);
        assert_eq!(a.len(), MAX_WAITING - 3);
        // Taken ones are gone from the order too.
        let s = a.settle(0, 1, 1, |_| Outcome::InFlight);
        assert_eq!((s.dropped, a.len()), (0, MAX_WAITING - 3));
        assert_eq!(a.lock().order.len(), MAX_WAITING / 2 - 1);
    }
}

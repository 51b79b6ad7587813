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
//! Bounded: past [`MAX_WAITING`] events, the oldest of bids not known to
//! be won is dropped for a new one. Events of bids that are charged leave
//! within seconds; what stays long is mostly calls for bids that will not
//! be won, so a flood of those pushes out its own kind first. Those of bids
//! won and billed later (which wait longest) go last.

pub(crate) mod saved;

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

impl Waiting {
    /// The tracking event it is.
    pub(crate) fn event(&self) -> crate::track::Event {
        match self.click {
            true => crate::track::Event::Click,
            false => crate::track::Event::Impression,
        }
    }
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
    /// Two events at most a bid (tracking counts one impression and one
    /// click of each), the number of its entry in `order` or `won`, and
    /// whether that entry is in `won`.
    by_bid: HashMap<u128, Entry>,
    /// Bids in the order their first waiting event came, by entry number:
    /// those known to be won (billed on a later notice) apart, evicted
    /// last. An entry whose bid has left `by_bid`, or come back under a
    /// later number, is stale ([`Awaiting::settle`] drops those).
    order: VecDeque<(u64, u128)>,
    won: VecDeque<(u64, u128)>,
    next: u64,
    /// The round of [`Awaiting::bids`]: each bid is handed out once a
    /// round.
    round: u64,
    /// Events in `by_bid`.
    count: usize,
}

#[derive(Default)]
struct Entry {
    n: u64,
    won: bool,
    /// The round of [`Awaiting::bids`] it was last handed out in (0:
    /// never).
    asked: u64,
    events: Vec<Waiting>,
}

impl Inner {
    fn remove(&mut self, bid: u128) -> Vec<Waiting> {
        let events = self
            .by_bid
            .remove(&bid)
            .map(|e| e.events)
            .unwrap_or_default();
        self.count -= events.len();
        events
    }

    /// Puts `bid`'s entry in `won` (or `order`) under a new number; its
    /// old one goes stale.
    fn enqueue(&mut self, bid: u128, won: bool) {
        let n = self.next;
        self.next += 1;
        if let Some(e) = self.by_bid.get_mut(&bid) {
            e.n = n;
            e.won = won;
        }
        match won {
            true => self.won.push_back((n, bid)),
            false => self.order.push_back((n, bid)),
        }
    }

    /// Drops the stale entries of both queues.
    fn compact(&mut self) {
        let Inner {
            by_bid, order, won, ..
        } = self;
        let live = |(n, b): &(u64, u128)| by_bid.get(b).is_some_and(|e| e.n == *n);
        order.retain(live);
        won.retain(live);
    }

    /// The events of the oldest live entry: of bids not known to be won
    /// first.
    fn evict(&mut self) -> Option<Vec<Waiting>> {
        loop {
            let (n, bid) = match self.order.pop_front() {
                Some(e) => e,
                None => self.won.pop_front()?,
            };
            if self.by_bid.get(&bid).is_some_and(|e| e.n == n) {
                return Some(self.remove(bid));
            }
        }
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

    /// Waits `event` for its bid's charge (`won`: the bid is known to be
    /// won, billed on a later notice). Returns how many older events were
    /// dropped to make room (all of the oldest bid's).
    pub(crate) fn wait(&self, event: Waiting, won: bool) -> usize {
        let mut inner = self.lock();
        let mut dropped = 0;
        while inner.count >= MAX_WAITING {
            match inner.evict() {
                Some(events) => dropped += events.len(),
                None => break,
            }
        }
        let bid = event.bid;
        let entry = inner.by_bid.entry(bid).or_default();
        let new = entry.events.is_empty();
        let moved = !new && won && !entry.won;
        entry.events.push(event);
        if new || moved {
            inner.enqueue(bid, won);
        }
        inner.count += 1;
        // Stale entries (bids taken, or moved to `won`) go at each settle;
        // between two, they are bounded too.
        if inner.order.len() + inner.won.len() > 2 * inner.by_bid.len() + 1024 {
            inner.compact();
        }
        dropped
    }

    /// The events of `bid`, which has just been charged here.
    pub(crate) fn take(&self, bid: u128) -> Vec<Waiting> {
        self.lock().remove(bid)
    }

    /// Looks at every bid with events waiting: those now charged give
    /// their events back to record; the others keep theirs while their
    /// wait lasts after the event (`won_wait_ms` for a bid won and billed
    /// on a later notice, `unknown_wait_ms` for one the ledger does not
    /// know, `wait_ms` for any other), and drop them then.
    pub(crate) fn settle(
        &self,
        now_ms: i64,
        wait_ms: i64,
        unknown_wait_ms: i64,
        won_wait_ms: i64,
        outcome: impl Fn(u128) -> Outcome,
    ) -> Settled {
        let mut out = Settled::default();
        let mut inner = self.lock();
        // Bids won since their first event: evicted last from now on.
        let mut now_won = Vec::new();
        inner.by_bid.retain(|&bid, entry| {
            let wait = match outcome(bid) {
                Outcome::Charged => {
                    out.won.append(&mut entry.events);
                    return false;
                }
                Outcome::Won => {
                    if !entry.won {
                        now_won.push(bid);
                    }
                    won_wait_ms
                }
                // Known won before a restart (`saved`): this process's
                // ledger does not know the bid, and it is still billed
                // later.
                Outcome::Unknown if entry.won => won_wait_ms,
                Outcome::Unknown => unknown_wait_ms,
                Outcome::InFlight | Outcome::Lost => wait_ms,
            };
            let before = entry.events.len();
            entry
                .events
                .retain(|e| now_ms.saturating_sub(e.at_ms) < wait);
            out.dropped += before - entry.events.len();
            !entry.events.is_empty()
        });
        inner.count -= out.won.len() + out.dropped;
        for bid in now_won {
            if inner.by_bid.contains_key(&bid) {
                inner.enqueue(bid, true);
            }
        }
        inner.compact();
        out
    }

    /// Every event waiting, in the order they came, with whether its bid
    /// is known to be won; the table is left empty. For the file the next
    /// process takes them on from (`saved`), when the server stops.
    pub(crate) fn drain(&self) -> Vec<(Waiting, bool)> {
        let mut inner = std::mem::take(&mut *self.lock());
        let mut out = Vec::with_capacity(inner.count);
        let mut entries: Vec<(u64, Entry)> = inner.by_bid.drain().map(|(_, e)| (e.n, e)).collect();
        entries.sort_unstable_by_key(|&(n, _)| n);
        for (_, e) in entries {
            out.extend(e.events.into_iter().map(|w| (w, e.won)));
        }
        out.sort_by_key(|(w, _)| w.at_ms);
        out
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().count
    }

    /// Up to `max` of the bids with events waiting, those not handed out
    /// yet in this round first: past `max` waiting, every bid still comes
    /// up within a few calls, however the table changes in between.
    pub(crate) fn bids(&self, max: usize) -> Vec<u128> {
        let mut inner = self.lock();
        let mut taken = Vec::with_capacity(max.min(inner.by_bid.len()));
        // A second pass only when every bid had its turn this round
        // already (none taken twice in one call).
        for _ in 0..2 {
            let round = inner.round.max(1);
            for (&bid, e) in inner.by_bid.iter_mut() {
                if taken.len() == max {
                    break;
                }
                if e.asked < round {
                    e.asked = round;
                    taken.push(bid);
                }
            }
            if taken.len() < max {
                // Every bid had its turn: the next call begins a round.
                inner.round = round + 1;
            }
            if !taken.is_empty() {
                break;
            }
        }
        taken
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
            assert_eq!(a.wait(event(bid, at, at == 5), bid == 6), 0);
        }
        assert_eq!(a.len(), 7);
        let outcome = |bid| match bid {
            1 => Outcome::Charged,
            2 => Outcome::Lost,
            3 => Outcome::Unknown,
            6 => Outcome::Won,
            _ => Outcome::InFlight,
        };
        let s = a.settle(999, 1_000, 1_000, 10_000, outcome);
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
        let s = a.settle(1_000, 1_000, 1_000, 10_000, outcome);
        // 2, 3 and 4 waited long enough; 5 came later, 6 was won.
        assert_eq!((s.won.len(), s.dropped, a.len()), (0, 3, 2));
        let s = a.settle(10_000, 1_000, 1_000, 10_000, outcome);
        assert_eq!((s.dropped, a.len()), (2, 0));
        assert!(a.take(5).is_empty());
    }

    #[test]
    fn bids_to_ask_after_come_up_in_turn() {
        let a = Awaiting::default();
        assert!(a.bids(2).is_empty());
        for bid in 0..5 {
            a.wait(event(bid, 0, false), false);
        }
        // Two, two, the last one: a round.
        let mut seen: Vec<u128> = (0..3).flat_map(|_| a.bids(2)).collect();
        seen.sort_unstable();
        assert_eq!(seen, [0, 1, 2, 3, 4], "every bid once within three calls");
        assert_eq!(a.bids(10).len(), 5, "the next round");
        // The table changing in between: the new and the not yet asked
        // come first.
        let first = a.bids(2);
        a.take(first[0]);
        a.wait(event(9, 0, false), false);
        let mut next: Vec<u128> = (0..2).flat_map(|_| a.bids(2)).collect();
        next.sort_unstable();
        let mut rest: Vec<u128> = [0, 1, 2, 3, 4, 9]
            .into_iter()
            .filter(|b| !first.contains(b))
            .collect();
        rest.sort_unstable();
        assert!(rest.iter().all(|b| next.contains(b)), "{next:?} {rest:?}");
    }

    #[test]
    fn past_the_bound_the_oldest_make_room_those_of_won_bids_last() {
        let a = Awaiting::default();
        // The first two bids are known to be won.
        for i in 0..MAX_WAITING as u128 {
            assert_eq!(a.wait(event(i / 2, 0, i % 2 == 1), i < 4), 0);
        }
        // The oldest bid not known to be won makes room, its two events.
        assert_eq!(a.wait(event(u128::MAX, 0, false), false), 2);
        assert_eq!(a.take(0).len(), 2);
        assert!(a.take(2).is_empty());
        assert_eq!(a.take(3).len(), 2);
        assert_eq!(a.len(), MAX_WAITING - 5);
        // A bid taken and waiting again is the newest, not its old place.
        assert_eq!(a.wait(event(3, 1, false), false), 0);
        let s = a.settle(0, 1, 1, 1, |_| Outcome::InFlight);
        assert_eq!((s.dropped, a.len()), (0, MAX_WAITING - 4));
        {
            let inner = a.lock();
            assert_eq!(
                (inner.order.len(), inner.won.len()),
                (MAX_WAITING / 2 - 2, 1)
            );
            assert_eq!(inner.order.back(), Some(&(MAX_WAITING as u64 / 2 + 1, 3)));
        }
        // Bid 4, the oldest left, is won since its first event: it goes
        // last from the next settle on; bid 5 goes first.
        let s = a.settle(0, 1, 1, 1, |b| match b {
            4 => Outcome::Won,
            _ => Outcome::InFlight,
        });
        assert_eq!(s.dropped, 0);
        // Four to fill the table again, the fifth makes room.
        for _ in 0..5 {
            a.wait(event(u128::MAX - 1, 0, false), false);
        }
        assert!(a.take(5).is_empty(), "evicted");
        assert_eq!(a.take(4).len(), 2, "kept");
    }

    #[test]
    fn a_bid_taken_and_waiting_again_keeps_its_new_place() {
        let a = Awaiting::default();
        for bid in 0..MAX_WAITING as u128 {
            a.wait(event(bid, 0, false), false);
        }
        assert_eq!(a.take(0).len(), 1);
        a.wait(event(0, 1, false), false);
        // Full: the oldest goes, which is bid 1, not bid 0's old place.
        assert_eq!(a.wait(event(u128::MAX, 0, false), false), 1);
        assert!(a.take(1).is_empty());
        assert_eq!(a.take(0).len(), 1);
    }

    #[test]
    fn drained_for_the_next_process_in_order_with_whether_won() {
        let a = Awaiting::default();
        a.wait(event(2, 10, false), false);
        a.wait(event(1, 5, false), true);
        a.wait(event(2, 20, true), false);
        let drained: Vec<(u128, i64, bool)> = a
            .drain()
            .iter()
            .map(|(e, won)| (e.bid, e.at_ms, *won))
            .collect();
        assert_eq!(drained, [(1, 5, true), (2, 10, false), (2, 20, false)]);
        assert_eq!(a.len(), 0);
        assert!(a.drain().is_empty());
        // Taken on by the next process, whose ledger knows neither bid: the
        // one known won waits the notice lifetime, the other the short wait.
        a.wait(event(1, 5, false), true);
        a.wait(event(2, 10, false), false);
        let s = a.settle(2_000, 1_000, 1_000, 10_000, |_| Outcome::Unknown);
        assert_eq!((s.dropped, a.len()), (1, 1));
        assert_eq!(a.take(1).len(), 1);
    }

    #[test]
    fn stale_entries_do_not_pile_up_between_settles() {
        let a = Awaiting::default();
        for round in 0..10_000u128 {
            a.wait(event(round % 3, 0, false), false);
            a.take(round % 3);
        }
        let inner = a.lock();
        assert!(inner.order.len() <= 1024 + 2, "{}", inner.order.len());
    }
}

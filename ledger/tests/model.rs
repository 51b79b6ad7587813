//! The protocol under random interleavings: whatever the order of bids,
//! losses, charges that commit or fail, and expiry passes, spend is exactly
//! what was committed, no bid is charged twice, every hold comes back
//! exactly once, and the frequency count matches the impressions won.

use std::collections::HashSet;

use config::{Micros, Timestamp};
use ledger::{
    BidKey, Cap, Charge, FrequencyHold, Hold, Ledger, Limit, MemoryLedger, Options, Prior,
    SpendKey, Win,
};
use proptest::prelude::*;

const NOW: i64 = 1_795_521_600_000;

#[derive(Clone, Debug)]
enum Op {
    Reserve {
        bid: u64,
        cost: i64,
        ttl: i64,
        life: i64,
    },
    Lose(u64),
    Begin(u64),
    /// Ends the n-th charge in flight: commits it, or aborts it as a failed
    /// write does.
    End {
        n: usize,
        commit: bool,
    },
    Expire,
}

fn op() -> impl Strategy<Value = Op> {
    // Few distinct bids, so the same one meets every state.
    let bid = 0u64..24;
    prop_oneof![
        3 => (bid.clone(), 1_000i64..1_100, 0i64..100, 200i64..500)
            .prop_map(|(bid, cost, ttl, life)| Op::Reserve { bid, cost, ttl, life }),
        1 => bid.clone().prop_map(Op::Lose),
        2 => bid.prop_map(Op::Begin),
        2 => (0usize..8, any::<bool>()).prop_map(|(n, commit)| Op::End { n, commit }),
        2 => Just(Op::Expire),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn holds_come_back_exactly_once(ops in proptest::collection::vec((op(), 0i64..40), 1..300)) {
        // Short horizons and a tiny book for expired bids, so every path runs.
        let l = MemoryLedger::new(Options {
            late_horizon_ms: 50,
            max_lingering: 64 * 2,
            max_bids: usize::MAX,
            max_windows: usize::MAX,
            keep_days: 2,
        });
        let (li, o) = (SpendKey::line_item("li"), SpendKey::order("o"));
        let cap = Cap::Daily(Micros::from_units(1_000_000));
        let limits = || [Limit { key: &li, cap }, Limit { key: &o, cap: Cap::None }];
        let day = Timestamp(NOW).date();
        let mut now = NOW;
        let mut in_flight: Vec<Charge> = Vec::new();
        let mut committed = Micros::ZERO;
        let mut charged = HashSet::new();
        let mut impressions = 0u32;
        for (op, step) in ops {
            now += step;
            match op {
                Op::Reserve { bid, cost, ttl, life } => {
                    let _ = l.reserve(
                        &Hold {
                            bid: BidKey(bid),
                            day,
                            cost: Micros(cost),
                            limits: limits(),
                            frequency: Some(FrequencyHold { user: "u", cap: 10_000, window_ms: 3_600_000 }),
                            expires: Timestamp(now + ttl),
                            forget: Timestamp(now + life),
                        },
                        Timestamp(now),
                    );
                }
                Op::Lose(bid) => {
                    l.release(BidKey(bid));
                }
                Op::Begin(bid) => {
                    let win = Win {
                        bid: BidKey(bid),
                        day,
                        cost: Micros(900),
                        limits: limits(),
                        forget: Timestamp(NOW + 10_000_000),
                        made: Timestamp(NOW),
                        tags: ledger::Tags::default(),
                    };
                    if let Ok(c) = l.begin_charge(&win) {
                        in_flight.push(c);
                    }
                }
                Op::End { n, commit } if !in_flight.is_empty() => {
                    let c = in_flight.remove(n % in_flight.len());
                    if commit {
                        prop_assert!(charged.insert(c.bid), "{:?} charged twice", c.bid);
                        committed = committed.saturating_add(c.billed);
                        // Only a bid the ledger saw bid counts under the cap.
                        if c.prior != Prior::None {
                            impressions += 1;
                        }
                        l.commit(&c);
                    } else {
                        l.abort(&c);
                    }
                }
                Op::End { .. } => {}
                Op::Expire => {
                    l.expire(Timestamp(now));
                }
            }
            prop_assert_eq!(l.spent(&li, day).today, committed);
        }
        for c in in_flight.drain(..) {
            l.abort(&c);
        }
        for step in 1..4 {
            l.expire(Timestamp(now + step * 1_000));
        }
        let s = l.spent(&li, day);
        prop_assert_eq!(s.held_today, Micros::ZERO, "a hold leaked");
        prop_assert_eq!(s.held, Micros::ZERO, "a hold leaked");
        prop_assert_eq!(s.today, committed);
        let window = 3_600_000;
        prop_assert!(l.frequency_allows("u", &li, impressions + 1, window, Timestamp(now)));
        prop_assert!(impressions == 0 || !l.frequency_allows("u", &li, impressions, window, Timestamp(now)));
    }
}

//! How much of an expired reservation to keep holding.
//!
//! A bid whose reservation ran out without a notice may still have been
//! won: some exchanges send win notices late, many never send losses. Holding
//! all of it until its notices expire (a day) would lock budgets behind
//! bids that were silently lost; holding none lets late wins overspend. The
//! ledger holds the share of such bids that turn out to be won, learned from
//! what it sees: a late win counts as won; a loss, or no notice within the
//! horizon, as not won. Until it has seen `MIN_OUTCOMES` outcomes the share
//! is 1 (conservative); then it is the rate of late wins with one imagined
//! win added, so a single lost bid never drops it to zero.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

/// Outcomes seen before the share moves from 1.
const MIN_OUTCOMES: u64 = 10;
/// Past this many outcomes both counts are halved: the share follows what
/// exchanges do now (one changes how late it sends wins), not a month ago.
const MEMORY: u64 = 20_000;
const PPM: u64 = 1_000_000;

#[derive(Debug)]
pub struct LateShare {
    /// Late wins, and expired bids lost or past the horizon. Touched by
    /// notices and expiry, never by bidding, which reads `ppm` only.
    counts: Mutex<(u64, u64)>,
    ppm: AtomicU32,
}

impl Default for LateShare {
    fn default() -> Self {
        LateShare {
            counts: Mutex::new((0, 0)),
            ppm: AtomicU32::new(PPM as u32),
        }
    }
}

impl LateShare {
    fn change(&self, f: impl FnOnce(&mut u64, &mut u64)) {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let (won, not_won) = &mut *c;
        f(won, not_won);
        if won.saturating_add(*not_won) > MEMORY {
            *won = won.div_ceil(2);
            *not_won /= 2;
        }
        let all = won.saturating_add(*not_won);
        let ppm = if all < MIN_OUTCOMES {
            PPM
        } else {
            // Rounded up: never under-holds.
            (u128::from(*won + 1) * u128::from(PPM)).div_ceil(u128::from(all + 1)) as u64
        };
        self.ppm.store(ppm.min(PPM) as u32, Ordering::Relaxed);
    }

    /// An expired bid was won after all. `was_counted_lost`: it had passed
    /// the horizon and was counted as not won.
    pub fn won(&self, was_counted_lost: bool) {
        self.change(|won, not_won| {
            if was_counted_lost {
                *not_won = not_won.saturating_sub(1);
            }
            *won += 1;
        });
    }

    /// An expired bid was lost, or passed the horizon without a notice.
    pub fn not_won(&self) {
        self.change(|_, not_won| *not_won += 1);
    }

    /// Outcomes from a checkpoint, or (`not_won` 0) late wins replayed
    /// from the journal. Outcomes since the last checkpoint that were not
    /// wins are not journaled: after a restart the share is at least what
    /// it was (the safe side).
    pub fn restore(&self, won: u64, not_won: u64) {
        self.change(|w, n| {
            *w = w.saturating_add(won);
            *n = n.saturating_add(not_won);
        });
    }

    /// Late wins and other outcomes seen (recent ones weigh more).
    pub fn outcomes(&self) -> (u64, u64) {
        *self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn ppm(&self) -> u32 {
        self.ppm.load(Ordering::Relaxed)
    }

    /// `amount` scaled by the share, rounded up: never under-holds.
    pub fn of(&self, amount: config::Micros) -> config::Micros {
        // Nothing lingering, as for nearly every budget: no share to read.
        if amount.as_i64() <= 0 {
            return config::Micros::ZERO;
        }
        // In 64 bits when the product fits (amounts under some 18 million
        // units): the constant division is then a multiply, where 128 bits
        // called a library division, on every read of a budget. The share
        // is read once: both paths round the same share.
        let ppm = self.ppm();
        let a = amount.as_i64();
        let small = u64::try_from(a).unwrap_or(0);
        if let Some(p) = small.checked_mul(u64::from(ppm)) {
            if let Ok(v) = i64::try_from(p.div_ceil(PPM)) {
                return config::Micros(v);
            }
        }
        let (a, ppm) = (i128::from(a), i128::from(ppm));
        config::Micros(((a * ppm + PPM as i128 - 1) / PPM as i128) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use config::Micros;

    /// The 64-bit path of `of` rounds up as the 128-bit arithmetic does,
    /// up to where the product stops fitting 64 bits and past it.
    #[test]
    fn share_of_an_amount_agrees_with_128_bit_arithmetic() {
        let s = LateShare::default();
        let wide = |a: i64, ppm: u32| {
            let (a, ppm) = (i128::from(a.max(0)), i128::from(ppm));
            Micros(((a * ppm + PPM as i128 - 1) / PPM as i128) as i64)
        };
        let amounts = [
            0,
            -5,
            1,
            7,
            150,
            999_999,
            19_990_000,
            i64::MAX / 1_000_000,
            i64::MAX / 1_000_000 + 1,
            i64::MAX / 10,
            i64::MAX,
        ];
        let mut seen = Vec::new();
        for step in 0..200 {
            let ppm = s.ppm();
            if !seen.contains(&ppm) {
                seen.push(ppm);
                for a in amounts {
                    assert_eq!(s.of(Micros(a)), wide(a, ppm), "{a} at {ppm} ppm");
                }
            }
            if step % 3 == 0 {
                s.won(false);
            } else {
                s.not_won();
            }
        }
        assert!(seen.len() > 3, "the share moved: {seen:?}");
    }

    #[test]
    fn starts_conservative_and_learns() {
        let s = LateShare::default();
        assert_eq!(s.ppm(), 1_000_000);
        assert_eq!(s.of(Micros(7)), Micros(7));
        for _ in 0..9 {
            s.not_won();
        }
        assert_eq!(s.ppm(), 1_000_000, "too few outcomes to learn from");
        s.not_won();
        // One imagined win in eleven.
        assert_eq!(s.ppm(), 90_910);
        for _ in 0..89 {
            s.not_won();
        }
        assert_eq!(s.ppm(), 10_000);
        assert_eq!(s.of(Micros(150)), Micros(2), "rounded up");
        // A bid counted lost that wins after all moves across.
        s.won(true);
        assert_eq!(s.ppm(), 20_000);
    }

    #[test]
    fn follows_what_exchanges_do_now() {
        let s = LateShare::default();
        for _ in 0..100_000 {
            s.not_won();
        }
        assert!(s.ppm() < 1_000);
        // The exchange starts sending its wins late: within a few thousand
        // outcomes the share reflects it, not the 100,000 before.
        for _ in 0..10_000 {
            s.won(false);
        }
        assert!(s.ppm() > 500_000, "{}", s.ppm());
    }
}

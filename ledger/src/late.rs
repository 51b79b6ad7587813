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

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Outcomes seen before the share moves from 1.
const MIN_OUTCOMES: u64 = 10;
const PPM: u64 = 1_000_000;

#[derive(Debug)]
pub struct LateShare {
    won: AtomicU64,
    not_won: AtomicU64,
    ppm: AtomicU32,
}

impl Default for LateShare {
    fn default() -> Self {
        LateShare {
            won: AtomicU64::new(0),
            not_won: AtomicU64::new(0),
            ppm: AtomicU32::new(PPM as u32),
        }
    }
}

impl LateShare {
    /// An expired bid was won after all. `was_counted_lost`: it had passed
    /// the horizon and was counted as not won.
    pub fn won(&self, was_counted_lost: bool) {
        if was_counted_lost {
            let _ = self
                .not_won
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
        self.won.fetch_add(1, Ordering::Relaxed);
        self.update();
    }

    /// An expired bid was lost, or passed the horizon without a notice.
    pub fn not_won(&self) {
        self.not_won.fetch_add(1, Ordering::Relaxed);
        self.update();
    }

    /// Outcomes from a checkpoint, or (`not_won` 0) late wins replayed
    /// from the journal. Outcomes since the last checkpoint that were not
    /// wins are not journaled: after a restart the share is at least what
    /// it was (the safe side).
    pub fn restore(&self, won: u64, not_won: u64) {
        self.won.fetch_add(won, Ordering::Relaxed);
        self.not_won.fetch_add(not_won, Ordering::Relaxed);
        self.update();
    }

    /// Late wins and other outcomes seen.
    pub fn outcomes(&self) -> (u64, u64) {
        (
            self.won.load(Ordering::Relaxed),
            self.not_won.load(Ordering::Relaxed),
        )
    }

    fn update(&self) {
        let won = self.won.load(Ordering::Relaxed);
        let all = won.saturating_add(self.not_won.load(Ordering::Relaxed));
        let ppm = if all < MIN_OUTCOMES {
            PPM
        } else {
            // Rounded up: never under-holds.
            (u128::from(won + 1) * u128::from(PPM)).div_ceil(u128::from(all + 1)) as u64
        };
        self.ppm.store(ppm.min(PPM) as u32, Ordering::Relaxed);
    }

    pub fn ppm(&self) -> u32 {
        self.ppm.load(Ordering::Relaxed)
    }

    /// `amount` scaled by the share, rounded up: never under-holds.
    pub fn of(&self, amount: config::Micros) -> config::Micros {
        let ppm = i128::from(self.ppm());
        let a = i128::from(amount.as_i64().max(0));
        config::Micros(((a * ppm + PPM as i128 - 1) / PPM as i128) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use config::Micros;

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
}

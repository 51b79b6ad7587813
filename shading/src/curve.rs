//! The price grid, the fitted curve and the search for the best bid.

use std::fmt;

/// Price bins per key. Fixed so that a key's counters and its fitted curve
/// are flat arrays: no allocation on the hot path and one `Arc` per refit.
pub const BINS: usize = 64;

/// Positions within a bin are summed in fixed point so that `observe` needs
/// only integer atomics.
pub(crate) const POS_SCALE: f64 = 65_536.0;

/// Log-spaced bins between two prices.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Grid {
    ln_lo: f64,
    /// Width of a bin in ln(price).
    step: f64,
}

impl Grid {
    pub(crate) fn new(lo_micros: i64, hi_micros: i64) -> Self {
        let ln_lo = (lo_micros as f64).ln();
        let step = ((hi_micros as f64).ln() - ln_lo) / BINS as f64;
        Grid { ln_lo, step }
    }

    /// The bin of a price and where in it the price falls, in `[0, 1]`.
    /// Prices outside the grid count at its nearest edge: they are rare,
    /// and a few of them must not stretch the grid for everyone else.
    pub(crate) fn locate(&self, micros: i64) -> (usize, f64) {
        let x = ((micros as f64).ln() - self.ln_lo) / self.step;
        // Callers pass micros >= 1, so x is finite.
        if x <= 0.0 {
            return (0, 0.0);
        }
        if x >= BINS as f64 {
            return (BINS - 1, 1.0);
        }
        let bin = x as usize;
        (bin, x - bin as f64)
    }

    /// ln(price) at a position within a bin.
    pub(crate) fn ln_price(&self, bin: usize, pos: f64) -> f64 {
        self.ln_lo + (bin as f64 + pos) * self.step
    }
}

/// Decayed counts of one key, as `refit` keeps them between rounds.
#[derive(Clone, Debug)]
pub(crate) struct Counts {
    pub(crate) bids: [f64; BINS],
    pub(crate) wins: [f64; BINS],
    /// Sum of positions within the bin, in `1 / POS_SCALE`.
    pub(crate) pos: [f64; BINS],
}

impl Counts {
    pub(crate) const ZERO: Counts = Counts {
        bids: [0.0; BINS],
        wins: [0.0; BINS],
        pos: [0.0; BINS],
    };
}

/// A key's fitted P(win | bid): monotone non-decreasing, piecewise linear in
/// ln(price) between knots, flat above the last knot and undefined below the
/// first. Immutable once built; `refit` replaces it whole.
#[derive(Clone)]
pub struct Curve {
    len: usize,
    ln_b: [f64; BINS],
    b: [f64; BINS],
    p: [f64; BINS],
    /// P's slope in ln b from each knot to the next (0 after the last).
    slope: [f64; BINS],
    observations: f64,
    wins: f64,
    ready: bool,
}

impl fmt::Debug for Curve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Curve")
            .field("ready", &self.ready)
            .field("observations", &self.observations)
            .field("wins", &self.wins)
            .field("knots", &self.knots().collect::<Vec<_>>())
            .finish()
    }
}

impl Curve {
    pub(crate) const EMPTY: Curve = Curve {
        len: 0,
        ln_b: [0.0; BINS],
        b: [0.0; BINS],
        p: [0.0; BINS],
        slope: [0.0; BINS],
        observations: 0.0,
        wins: 0.0,
        ready: false,
    };

    /// Pool-adjacent-violators over the populated bins, weighted by their
    /// (decayed) bid counts. Each bin's knot sits at the mean position of
    /// the bids in it, not at its centre: shaded bids bunch up, and a bin
    /// is wide enough (about 20% of price by default) for the difference to
    /// move P by several points.
    pub(crate) fn fit(counts: &Counts, grid: &Grid, min_obs: f64, min_wins: f64) -> Curve {
        let mut c = Curve::EMPTY;
        // Blocks of the PAV stack: (weight, weighted sum of rates, knots).
        let mut w = [0.0f64; BINS];
        let mut wy = [0.0f64; BINS];
        let mut n = [0usize; BINS];
        let mut top = 0usize;
        for bin in 0..BINS {
            let bids = counts.bids[bin];
            if bids <= 0.0 {
                continue;
            }
            let wins = counts.wins[bin].clamp(0.0, bids);
            let pos = (counts.pos[bin] / bids / POS_SCALE).clamp(0.0, 1.0);
            let ln_b = grid.ln_price(bin, pos);
            c.ln_b[c.len] = ln_b;
            c.b[c.len] = ln_b.exp();
            c.len += 1;
            c.observations += bids;
            c.wins += wins;

            w[top] = bids;
            wy[top] = wins;
            n[top] = 1;
            top += 1;
            // Merge while the block below has a higher rate than the top
            // (cross-multiplied: both weights are positive).
            while top >= 2 && wy[top - 2] * w[top - 1] > wy[top - 1] * w[top - 2] {
                w[top - 2] += w[top - 1];
                wy[top - 2] += wy[top - 1];
                n[top - 2] += n[top - 1];
                top -= 1;
            }
        }
        let mut k = 0;
        for block in 0..top {
            let rate = (wy[block] / w[block]).clamp(0.0, 1.0);
            for _ in 0..n[block] {
                c.p[k] = rate;
                k += 1;
            }
        }
        for k in 1..c.len {
            let span = c.ln_b[k] - c.ln_b[k - 1];
            if span > 0.0 {
                c.slope[k - 1] = (c.p[k] - c.p[k - 1]) / span;
            }
        }
        c.ready = c.len > 0 && c.observations >= min_obs && c.wins >= min_wins;
        c
    }

    /// Whether there is enough data to shade on.
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// Decayed number of outcomes the curve was fitted on.
    pub fn observations(&self) -> f64 {
        self.observations
    }

    /// Decayed number of wins among them.
    pub fn wins(&self) -> f64 {
        self.wins
    }

    /// The knots, `(price in micros, P(win))`, ascending in both.
    pub fn knots(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.b[..self.len]
            .iter()
            .copied()
            .zip(self.p[..self.len].iter().copied())
    }

    /// Lowest price the curve knows about; `None` when it has no knot.
    pub fn lowest_price(&self) -> Option<f64> {
        (self.len > 0).then(|| self.b[0])
    }

    /// P(win) at a price: `None` below the lowest knot (we have never bid
    /// there, so we do not know), flat above the highest.
    pub fn p_win(&self, price_micros: i64) -> Option<f64> {
        if self.len == 0 || price_micros <= 0 {
            return None;
        }
        let x = price_micros as f64;
        if x < self.b[0] {
            return None;
        }
        Some(self.p_at(x, x.ln()))
    }

    /// Interpolated P at a price `x >= b[0]` whose ln is `ln_x`.
    fn p_at(&self, x: f64, ln_x: f64) -> f64 {
        // At least 1, since x >= b[0].
        let above = self.b[..self.len].partition_point(|&b| b <= x).max(1);
        self.p_after(above - 1, ln_x)
    }

    /// P at a price at or above knot `k` and below knot `k + 1`, if any.
    fn p_after(&self, k: usize, ln_x: f64) -> f64 {
        if k + 1 >= self.len {
            return self.p[k];
        }
        // The clamp only absorbs rounding: the slope is exact between the
        // two knots.
        (self.p[k] + self.slope[k] * (ln_x - self.ln_b[k]))
            .max(self.p[k])
            .min(self.p[k + 1])
    }

    /// The bid in `[lo, v]` that maximises `(v - b) P(b)`, with its P.
    /// Requires a ready curve and `b[0] <= lo <= v`.
    ///
    /// Between consecutive candidates (lo, the knots inside the range, v) P
    /// is linear in ln b, so the surplus is concave there: each piece's
    /// maximum is at an end unless the derivative changes sign inside, and
    /// then it is the single root of the derivative, found by Newton. The
    /// ends are all evaluated first, so that pieces that cannot beat the
    /// best end, even at their highest P, are not solved.
    pub(crate) fn best_bid(&self, lo: f64, v: f64) -> (f64, f64) {
        let ln_lo = lo.ln();
        let ln_v = v.ln();
        // Knots strictly inside (lo, v): first..end.
        let first = self.b[..self.len].partition_point(|&b| b <= lo);
        let end = first + self.b[first..self.len].partition_point(|&b| b < v);
        // first >= 1 since lo >= b[0], and end >= first.
        let p_lo = self.p_after(first - 1, ln_lo);
        let p_v = self.p_after(end - 1, ln_v);

        let mut best = Best {
            v,
            b: v,
            p: p_v,
            surplus: 0.0,
        };
        best.consider(lo, p_lo);
        for k in first..end {
            best.consider(self.b[k], self.p[k]);
        }

        let lo_end = End {
            b: lo,
            ln_b: ln_lo,
            p: p_lo,
        };
        let v_end = End {
            b: v,
            ln_b: ln_v,
            p: p_v,
        };
        let knot = |k: usize| End {
            b: self.b[k],
            ln_b: self.ln_b[k],
            p: self.p[k],
        };
        if first == end {
            best.piece(&lo_end, &v_end, None);
        } else {
            best.piece(&lo_end, &knot(first), None);
            // Most pieces between knots are far from the peak: a tight loop
            // over the arrays rules them out before anything is built.
            for k in first..end - 1 {
                if (v - self.b[k]) * self.p[k + 1] > best.surplus && self.slope[k] > 0.0 {
                    best.piece(&knot(k), &knot(k + 1), Some(self.slope[k]));
                }
            }
            best.piece(&knot(end - 1), &v_end, None);
        }
        (best.b, best.p)
    }
}

/// One end of a piece of the curve.
struct End {
    b: f64,
    ln_b: f64,
    p: f64,
}

struct Best {
    v: f64,
    b: f64,
    p: f64,
    surplus: f64,
}

impl Best {
    fn consider(&mut self, b: f64, p: f64) {
        let surplus = (self.v - b) * p;
        // Strictly greater: candidates come in ascending price, so on a tie
        // the lower bid stays; and a surplus of zero everywhere leaves v.
        if surplus > self.surplus {
            self.surplus = surplus;
            self.b = b;
            self.p = p;
        }
    }

    /// The interior maximum of the piece from `e0` to `e1`, if it has one
    /// and it could beat the best so far. `slope` is P's slope in ln b when
    /// known.
    fn piece(&mut self, e0: &End, e1: &End, slope: Option<f64>) {
        let v = self.v;
        // Even at the piece's highest P and lowest bid it cannot win.
        if !(e1.p > e0.p && (v - e0.b) * e1.p > self.surplus) {
            return;
        }
        let c = match slope {
            Some(c) => c,
            None => {
                let span = e1.ln_b - e0.ln_b;
                if span <= 0.0 {
                    return;
                }
                (e1.p - e0.p) / span
            }
        };
        // d/db of (v - b)(p0 + c (ln b - ln b0)) = -P(b) + c (v / b - 1)
        let d0 = -e0.p + c * (v / e0.b - 1.0);
        let d1 = -e1.p + c * (v / e1.b - 1.0);
        if d0 > 0.0 && d1 < 0.0 {
            let t = newton(v, e0, e1.ln_b, c);
            self.consider(t.exp(), e0.p + c * (t - e0.ln_b));
        }
    }
}

/// Root in `[t0, t1]` of g(t) = -(p0 + c (t - t0)) + c (v e^-t - 1), the
/// surplus derivative in t = ln b, where `e0` is at t0 and g(t0) > 0 >
/// g(t1). g is convex and decreasing, so Newton from the left end climbs to
/// the root without overshooting; the clamp only guards against rounding.
fn newton(v: f64, e0: &End, t1: f64, c: f64) -> f64 {
    let t0 = e0.ln_b;
    let mut t = t0;
    // v e^-t, known at t0 without an exp.
    let mut e = v / e0.b;
    for _ in 0..12 {
        let g = -(e0.p + c * (t - t0)) + c * (e - 1.0);
        let dg = -c - c * e;
        let next = (t - g / dg).clamp(t0, t1);
        // A millionth of the price: the surplus is flat at its peak, and
        // the bid is rounded to whole micros anyway.
        if (next - t).abs() < 1e-6 {
            return next;
        }
        t = next;
        e = v * (-t).exp();
    }
    t
}

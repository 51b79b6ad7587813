//! Platt scaling of a head's logit: `p = σ(a·logit + b)`.
//!
//! Why Platt and not isotonic regression (PAV over bins): an FTRL-trained
//! logistic regression is already close to calibrated, and what is off is
//! mostly a scale and a shift of the logit (L1/L2 shrink the weights toward
//! zero; hashing collisions add noise). Two parameters correct that, fit
//! well with the few dozen positives a conversion head may have in its
//! hold-out, are monotone (the ranking, hence AUC, is untouched) and
//! continuous (two candidates with different scores get different bids).
//! Isotonic regression needs many positives per bin and answers a step
//! function whose flat steps tie candidates the model tells apart.
//!
//! The fit is the one of Lin, Lin and Weng, "A note on Platt's
//! probabilistic outputs for support vector machines" (Machine Learning,
//! 2007): Newton's method with backtracking on the log loss, with Platt's
//! smoothed targets `(N₊+1)/(N₊+2)` and `1/(N₋+2)`, so that a hold-out
//! without a single positive still gives a finite, small rate.
//!
//! Added to it: a Gaussian prior on the slope, `a ~ N(1, 1)`. A
//! conversion head's hold-out may hold twenty positives; fit freely, their
//! noise can tilt the slope anywhere, even below zero, which would rank
//! candidates backwards. The prior weighs as much as the curvature of
//! about one example: nothing against a hold-out that knows the slope,
//! decisive when it does not, and then the model's own scale (a = 1) is
//! kept. Should the data still insist on a negative slope, the score is
//! taken to say nothing and the head answers the hold-out's rate.

/// Calibration of one head.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Platt {
    pub(crate) a: f64,
    pub(crate) b: f64,
}

impl Platt {
    pub(crate) const IDENTITY: Platt = Platt { a: 1.0, b: 0.0 };

    /// Answers `p` whatever the score (kept inside (0, 1), so that its
    /// logit is finite, as a model file requires).
    pub(crate) fn constant(p: f64) -> Platt {
        let p = p.clamp(1e-12, 1.0 - 1e-12);
        Platt {
            a: 0.0,
            b: (p / (1.0 - p)).ln(),
        }
    }

    pub(crate) fn apply(&self, logit: f64) -> f64 {
        sigmoid(self.a * logit + self.b)
    }

    /// Fits `(logit, label, weight)` triples; the identity if there are
    /// none.
    pub(crate) fn fit(points: &[(f64, bool, f64)]) -> Platt {
        let (mut pos, mut neg) = (0.0, 0.0);
        for &(_, y, w) in points {
            if y {
                pos += w;
            } else {
                neg += w;
            }
        }
        if pos + neg <= 0.0 {
            return Platt::IDENTITY;
        }
        let hi = (pos + 1.0) / (pos + 2.0);
        let lo = 1.0 / (neg + 2.0);
        let target = |y: bool| if y { hi } else { lo };
        let loss = |a: f64, b: f64| -> f64 {
            let data: f64 = points
                .iter()
                .map(|&(s, y, w)| w * (softplus(a * s + b) - target(y) * (a * s + b)))
                .sum();
            data + 0.5 * (a - 1.0) * (a - 1.0)
        };

        // From the identity: the model is near calibrated, so Newton starts
        // close and takes a few steps.
        let (mut a, mut b) = (1.0, 0.0);
        let mut f = loss(a, b);
        let scale = pos + neg;
        for _ in 0..100 {
            let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for &(s, y, w) in points {
                let p = sigmoid(a * s + b);
                let d = w * (p - target(y));
                ga += d * s;
                gb += d;
                let h = w * p * (1.0 - p);
                haa += h * s * s;
                hab += h * s;
                hbb += h;
            }
            // The prior's gradient and curvature.
            ga += a - 1.0;
            haa += 1.0;
            if ga.abs().max(gb.abs()) < 1e-9 * scale {
                break;
            }
            // Lin et al.'s ridge keeps the Hessian invertible when all
            // scores are equal and the hold-out has one class.
            hbb += 1e-12 * scale;
            let det = haa * hbb - hab * hab;
            let da = -(hbb * ga - hab * gb) / det;
            let db = -(haa * gb - hab * ga) / det;
            let slope = ga * da + gb * db;
            let mut step = 1.0;
            let mut moved = false;
            while step >= 1e-10 {
                let (na, nb) = (a + step * da, b + step * db);
                let nf = loss(na, nb);
                if nf.is_finite() && nf <= f + 1e-4 * step * slope {
                    (a, b, f) = (na, nb, nf);
                    moved = true;
                    break;
                }
                step /= 2.0;
            }
            if !moved {
                break;
            }
        }
        if !a.is_finite() || !b.is_finite() {
            return Platt::IDENTITY;
        }
        if a < 0.0 {
            // With a = 0 the loss is least at the mean target.
            let mean = (pos * hi + neg * lo) / (pos + neg);
            return Platt {
                a: 0.0,
                b: (mean / (1.0 - mean)).ln(),
            };
        }
        Platt { a, b }
    }
}

pub(crate) fn sigmoid(x: f64) -> f64 {
    // exp(-x) overflows to inf for x < -709, which still gives 0; the clamp
    // keeps probabilities off exact 0 and 1, where a log loss is infinite.
    let x = x.clamp(-35.0, 35.0);
    1.0 / (1.0 + (-x).exp())
}

/// `ln(1 + eˣ)` without overflow.
fn softplus(x: f64) -> f64 {
    if x > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_points_is_the_identity() {
        assert_eq!(Platt::fit(&[]), Platt::IDENTITY);
    }

    #[test]
    fn recovers_a_known_scale_and_shift() {
        // Labels drawn from σ(2s − 1) at evenly spread scores: the fit
        // should find a ≈ 2, b ≈ −1. Expected counts, not draws: each score
        // appears as a positive and a negative weighted by its probability.
        let mut points = Vec::new();
        for i in 0..200 {
            let s = -3.0 + 6.0 * f64::from(i) / 199.0;
            let p = sigmoid(2.0 * s - 1.0);
            points.push((s, true, 1000.0 * p));
            points.push((s, false, 1000.0 * (1.0 - p)));
        }
        let fit = Platt::fit(&points);
        assert!((fit.a - 2.0).abs() < 0.01, "{fit:?}");
        assert!((fit.b + 1.0).abs() < 0.01, "{fit:?}");
    }

    #[test]
    fn a_few_noisy_positives_do_not_tilt_the_slope() {
        // Scores with little spread, five positives all at the low end: a
        // free fit would slope down and rank backwards.
        let mut points: Vec<_> = (0..2000)
            .map(|i| (-7.0 + f64::from(i % 10) * 0.01, false, 1.0))
            .collect();
        points.extend((0..5).map(|_| (-7.0, true, 1.0)));
        let fit = Platt::fit(&points);
        assert!(fit.a >= 0.5, "{fit:?}");
        assert!(fit.apply(-6.91) >= fit.apply(-7.0));
    }

    #[test]
    fn a_slope_the_data_insists_is_negative_becomes_flat() {
        // Every positive below every negative, with plenty of both.
        let mut points: Vec<_> = (0..1000)
            .map(|i| (f64::from(i) / 100.0, false, 1.0))
            .collect();
        points.extend((0..1000).map(|i| (-f64::from(i) / 100.0, true, 1.0)));
        let fit = Platt::fit(&points);
        assert_eq!(fit.a, 0.0);
        assert!((fit.apply(0.0) - 0.5).abs() < 1e-9, "{fit:?}");
    }

    #[test]
    fn all_negatives_give_a_small_finite_rate() {
        let points: Vec<_> = (0..100)
            .map(|i| (f64::from(i) / 50.0, false, 1.0))
            .collect();
        let fit = Platt::fit(&points);
        let p = fit.apply(1.0);
        assert!(p > 0.0 && p < 0.05, "{fit:?} {p}");
    }

    #[test]
    fn equal_scores_fit_the_rate() {
        let mut points = vec![(0.3, false, 1.0); 90];
        points.extend(vec![(0.3, true, 1.0); 10]);
        let p = Platt::fit(&points).apply(0.3);
        // Smoothed: (10+1)/(10+2) and 1/(90+2) move it off 0.1 a little.
        assert!((p - 0.1).abs() < 0.01, "{p}");
    }
}

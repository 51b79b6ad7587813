//! Online training: FTRL-Proximal logistic regression (McMahan et al., "Ad
//! Click Prediction: a View from the Trenches", KDD 2013, algorithm 1), one
//! click head and one conversion head over the same hashed features.

use crate::calibrate::{sigmoid, Platt};
use crate::features::{FeatureHasher, Features, DEFAULT_SEED, MAX_FEATURES};
use crate::model::{Counts, LineItems, Model, MAX_LINE_ITEMS, MAX_LINE_ITEM_LEN};

/// Training parameters; [`Params::default`] is a sensible start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// log₂ of the weights per head, 16..=24. A trainer holds 32 bytes per
    /// weight (FTRL's z and n for two heads): 32 MiB at 20 bits, 512 MiB at
    /// 24; a model 8 bytes (8 MiB at 20 bits).
    pub bits: u8,
    /// FTRL learning rate α. The paper tunes it per data set; 0.1 is the
    /// usual start on click logs, and the synthetic test does as well with
    /// it as with 0.05 or 0.2.
    pub alpha: f64,
    /// FTRL β; the paper finds β = 1 "usually good enough". Must be > 0:
    /// it is the learning rate's denominator before any gradient.
    pub beta: f64,
    /// L1 strength: weights whose evidence stays below it are exactly zero,
    /// so rare values (one-off sites) cost nothing and add no noise.
    pub l1: f64,
    /// L2 strength. L1 and L2 of 1 are the usual start; tune them on a
    /// hold-out of real traffic.
    pub l2: f64,
    /// Feature hash seed; stored in the model file.
    pub seed: u64,
    /// One example in this many is held out of training to fit the
    /// calibration (0: none, no calibration).
    pub holdout_every: u32,
    /// Hold-out examples kept for the calibration fit, each of the two
    /// strata (with a click or conversion; with neither): about 140 bytes
    /// each. Beyond it, a uniform sample of the stratum is kept and weighted
    /// up, so rare positives are not crowded out by negatives.
    pub holdout_cap: u32,
    /// Prior strength k: a line item with n training impressions gets
    /// `(n·p_model + k·p_prior) / (n + k)`. 1000 impressions is where a line
    /// item at a typical 0.1 % click rate has had its first click; before
    /// that its own weights say little.
    pub prior_strength: f64,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            bits: 20,
            alpha: 0.1,
            beta: 1.0,
            l1: 1.0,
            l2: 1.0,
            seed: DEFAULT_SEED,
            holdout_every: 10,
            holdout_cap: 100_000,
            prior_strength: 1000.0,
        }
    }
}

/// Smallest and largest [`Params::bits`].
pub const BITS: std::ops::RangeInclusive<u8> = 16..=24;

/// A parameter out of its range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParamsError {
    #[error("bits = {0}; must be in 16..=24")]
    Bits(u8),
    #[error("{name} = {value}; must be a finite number {expected}")]
    Invalid {
        name: &'static str,
        value: f64,
        expected: &'static str,
    },
    #[error("holdout_every = 1 would hold out every example; 0 turns the hold-out off")]
    HoldoutEveryOne,
}

impl Params {
    pub fn validate(&self) -> Result<(), ParamsError> {
        if !BITS.contains(&self.bits) {
            return Err(ParamsError::Bits(self.bits));
        }
        let check = |name, value: f64, positive: bool| {
            let ok = value.is_finite() && if positive { value > 0.0 } else { value >= 0.0 };
            if ok {
                Ok(())
            } else {
                Err(ParamsError::Invalid {
                    name,
                    value,
                    expected: if positive { "> 0" } else { ">= 0" },
                })
            }
        };
        check("alpha", self.alpha, true)?;
        check("beta", self.beta, true)?;
        check("l1", self.l1, false)?;
        check("l2", self.l2, false)?;
        check("prior_strength", self.prior_strength, false)?;
        if self.holdout_every == 1 {
            return Err(ParamsError::HoldoutEveryOne);
        }
        Ok(())
    }
}

/// What became of an impression.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    pub clicked: bool,
    /// A conversion attributed to the impression, clicked or not: the
    /// conversion head predicts conversions per impression, which is what
    /// a target CPA bid needs.
    pub converted: bool,
}

/// Why an example was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrainError {
    #[error("features were hashed with another seed than this trainer's")]
    ForeignFeatures,
}

/// Learns a [`Model`] from a stream of impressions.
pub struct Trainer {
    params: Params,
    hasher: FeatureHasher,
    /// Per coordinate: z and n of the click head, then of the conversion
    /// head; both heads' state of a feature in one cache line.
    state: Vec<[[f64; 2]; 2]>,
    /// The bias, outside the hashed table: no collision, no regularization
    /// (it carries the base rate, which for conversions is a logit near
    /// −9; L1 would hold it at zero until that much evidence piled up).
    bias: [[f64; 2]; 2],
    line_items: LineItems,
    totals: Counts,
    examples: u64,
    /// Hold-out reservoirs: examples with a click or conversion, and with
    /// neither.
    holdout: [Reservoir; 2],
}

impl Trainer {
    pub fn new(params: Params) -> Result<Trainer, ParamsError> {
        params.validate()?;
        Ok(Trainer {
            params,
            hasher: FeatureHasher::new(params.seed),
            state: vec![[[0.0; 2]; 2]; 1 << params.bits],
            bias: [[0.0; 2]; 2],
            line_items: LineItems::default(),
            totals: Counts::default(),
            examples: 0,
            holdout: [Reservoir::default(), Reservoir::default()],
        })
    }

    /// Builds the features this trainer learns from.
    pub fn hasher(&self) -> &FeatureHasher {
        &self.hasher
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Learns from one impression of `line_item`. Counts it for the line
    /// item's prior; then either trains both heads on it or, one time in
    /// [`Params::holdout_every`], keeps it for the calibration.
    ///
    /// At most [`MAX_LINE_ITEMS`](crate::MAX_LINE_ITEMS) line items are
    /// counted, and only ids of at most
    /// [`MAX_LINE_ITEM_LEN`](crate::MAX_LINE_ITEM_LEN) bytes; the others
    /// still train the model but get the prior's full weight at serving.
    pub fn train(
        &mut self,
        features: &Features,
        line_item: &str,
        outcome: Outcome,
    ) -> Result<(), TrainError> {
        if features.tag() != self.hasher.tag() {
            return Err(TrainError::ForeignFeatures);
        }
        self.totals.add(outcome);
        if line_item.len() <= MAX_LINE_ITEM_LEN {
            if let Some(c) = self.line_items.get_mut(line_item) {
                c.add(outcome);
            } else if self.line_items.len() < MAX_LINE_ITEMS {
                let mut c = Counts::default();
                c.add(outcome);
                self.line_items.insert(line_item.into(), c);
            }
        }

        self.examples += 1;
        let every = u64::from(self.params.holdout_every);
        // Hashed, not `examples % every`: a stream with a period (batches
        // of ten from one source) would hold out a biased slice.
        if every > 0 && splitmix64(self.params.seed ^ self.examples).is_multiple_of(every) {
            let stratum = usize::from(!(outcome.clicked || outcome.converted));
            let r = splitmix64(self.examples.wrapping_add(self.params.seed.rotate_left(17)));
            self.holdout[stratum].offer((*features, outcome), self.params.holdout_cap, r);
            return Ok(());
        }
        self.update(features, outcome);
        Ok(())
    }

    fn update(&mut self, features: &Features, outcome: Outcome) {
        let p = &self.params;
        let mask = self.state.len() - 1;
        let ids = features.ids();
        let mut w = [[0.0f64; 2]; MAX_FEATURES];
        let bias_w = self.bias.map(|[z, n]| bias_weight(z, n, p));
        let mut logit = bias_w;
        for (wi, &id) in w.iter_mut().zip(ids) {
            *wi = self.state[id as usize & mask].map(|[z, n]| ftrl_weight(z, n, p));
            logit[0] += wi[0];
            logit[1] += wi[1];
        }
        let y = [outcome.clicked, outcome.converted];
        for h in 0..2 {
            // x = 1 for every present feature, so the gradient of each is g.
            let g = sigmoid(logit[h]) - if y[h] { 1.0 } else { 0.0 };
            let g2 = g * g;
            let step = |z: &mut f64, n: &mut f64, w: f64| {
                let sigma = ((*n + g2).sqrt() - n.sqrt()) / p.alpha;
                *z += g - sigma * w;
                *n += g2;
            };
            let [z, n] = &mut self.bias[h];
            step(z, n, bias_w[h]);
            for (wi, &id) in w.iter().zip(ids) {
                let [z, n] = &mut self.state[id as usize & mask][h];
                step(z, n, wi[h]);
            }
        }
    }

    /// The model: final weights, the calibration fit on the hold-out, the
    /// priors.
    pub fn finish(self) -> Model {
        self.snapshot()
    }

    /// The model as of now, training going on: a trainer fed from the
    /// event stream can publish a fresh model every so often. Costs a pass
    /// over the weights and the hold-out (milliseconds at 20 bits).
    pub fn snapshot(&self) -> Model {
        let p = &self.params;
        let weights: Vec<[f32; 2]> = self
            .state
            .iter()
            .map(|s| s.map(|[z, n]| ftrl_weight(z, n, p) as f32))
            .collect();
        let bias = self.bias.map(|[z, n]| bias_weight(z, n, p) as f32);
        let mut model = Model::from_parts(
            self.params,
            weights,
            bias,
            [Platt::IDENTITY; 2],
            self.totals,
            self.line_items.clone(),
        );
        // Scored by the final weights: the calibration is of the model as
        // it ships, not of its earlier selves.
        let mut points = [Vec::new(), Vec::new()];
        for r in &self.holdout {
            let weight = r.weight();
            for (features, outcome) in &r.kept {
                let logits = model.logits(features);
                points[0].push((logits[0], outcome.clicked, weight));
                points[1].push((logits[1], outcome.converted, weight));
            }
        }
        model.set_calibration(points.map(|p| Platt::fit(&p)));
        model
    }
}

/// FTRL-Proximal's closed-form weight of a coordinate from its z and n.
fn ftrl_weight(z: f64, n: f64, p: &Params) -> f64 {
    if z.abs() <= p.l1 {
        0.0
    } else {
        -(z - p.l1.copysign(z)) / ((p.beta + n.sqrt()) / p.alpha + p.l2)
    }
}

/// The bias's weight: FTRL's with no L1 or L2.
fn bias_weight(z: f64, n: f64, p: &Params) -> f64 {
    -z / ((p.beta + n.sqrt()) / p.alpha)
}

/// A uniform sample of at most `cap` of the items offered (Vitter's
/// algorithm R), and how many were offered.
#[derive(Default)]
struct Reservoir {
    kept: Vec<(Features, Outcome)>,
    offered: u64,
}

impl Reservoir {
    fn offer(&mut self, item: (Features, Outcome), cap: u32, random: u64) {
        self.offered += 1;
        if self.kept.len() < cap as usize {
            self.kept.push(item);
        } else {
            let j = random % self.offered;
            if j < u64::from(cap) {
                self.kept[j as usize] = item;
            }
        }
    }

    /// How many offered items each kept one stands for.
    fn weight(&self) -> f64 {
        if self.kept.is_empty() {
            0.0
        } else {
            self.offered as f64 / self.kept.len() as f64
        }
    }
}

/// Sebastiano Vigna's splitmix64 finalizer: a well-mixed, deterministic
/// function of a counter.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FeatureHasher;

    #[test]
    fn default_params_are_valid_and_bad_ones_named() {
        assert_eq!(Params::default().validate(), Ok(()));
        let bad = |p: Params| p.validate().unwrap_err().to_string();
        let d = Params::default();
        assert_eq!(
            bad(Params { bits: 25, ..d }),
            "bits = 25; must be in 16..=24"
        );
        assert!(bad(Params { alpha: 0.0, ..d }).starts_with("alpha = 0"));
        assert!(bad(Params { l1: f64::NAN, ..d }).starts_with("l1 = NaN"));
        assert!(bad(Params { beta: -1.0, ..d }).starts_with("beta = -1"));
        assert!(Trainer::new(Params {
            holdout_every: 1,
            ..d
        })
        .is_err());
    }

    #[test]
    fn features_of_another_seed_are_refused() {
        let mut t = Trainer::new(Params {
            bits: 16,
            ..Params::default()
        })
        .unwrap();
        let f = FeatureHasher::new(1).features(&[("li", "a")], &[]).unwrap();
        assert_eq!(
            t.train(&f, "a", Outcome::default()),
            Err(TrainError::ForeignFeatures)
        );
    }

    #[test]
    fn about_one_in_holdout_every_is_held_out_and_counted() {
        let mut t = Trainer::new(Params {
            bits: 16,
            holdout_cap: 50,
            ..Params::default()
        })
        .unwrap();
        for i in 0..10_000 {
            let f = t.hasher().features(&[("li", "a")], &[]).unwrap();
            let clicked = i % 50 == 0;
            t.train(
                &f,
                "a",
                Outcome {
                    clicked,
                    converted: false,
                },
            )
            .unwrap();
        }
        let [pos, neg] = &t.holdout;
        let held = pos.offered + neg.offered;
        assert!((900..1100).contains(&held), "{held}");
        // Capped, and the kept ones stand for all offered.
        assert_eq!(neg.kept.len(), 50);
        assert!((neg.weight() - neg.offered as f64 / 50.0).abs() < 1e-12);
        assert!(pos.kept.len() <= 50);
        // Every example counts toward the line item, held out or not.
        assert_eq!(t.line_items.get("a").unwrap().impressions, 10_000);
        assert_eq!(t.totals.clicks, 200);
    }

    #[test]
    fn line_item_ids_too_long_are_not_counted() {
        let mut t = Trainer::new(Params {
            bits: 16,
            ..Params::default()
        })
        .unwrap();
        let long = "x".repeat(MAX_LINE_ITEM_LEN + 1);
        let f = t.hasher().features(&[("li", &long)], &[]).unwrap();
        t.train(&f, &long, Outcome::default()).unwrap();
        assert!(t.line_items.is_empty());
        assert_eq!(t.totals.impressions, 1);
    }

    #[test]
    fn a_snapshot_is_the_model_so_far_and_training_goes_on() {
        let mut t = Trainer::new(Params {
            bits: 16,
            ..Params::default()
        })
        .unwrap();
        let f = t.hasher().features(&[("li", "a")], &[]).unwrap();
        for i in 0..500 {
            t.train(
                &f,
                "a",
                Outcome {
                    clicked: i % 5 == 0,
                    converted: false,
                },
            )
            .unwrap();
        }
        let early = t.snapshot();
        assert_eq!(early.to_bytes(), t.snapshot().to_bytes());
        for _ in 0..500 {
            t.train(&f, "a", Outcome::default()).unwrap();
        }
        let late = t.finish();
        assert_eq!(early.line_item("a").unwrap().impressions, 500);
        assert_eq!(late.line_item("a").unwrap().impressions, 1000);
        assert!(late.predict(&f, "a").click < early.predict(&f, "a").click);
    }

    #[test]
    fn training_is_deterministic() {
        let model = || {
            let mut t = Trainer::new(Params {
                bits: 16,
                ..Params::default()
            })
            .unwrap();
            for i in 0..3000u32 {
                let v = (i % 7).to_string();
                let f = t.hasher().features(&[("site", &v)], &[]).unwrap();
                let clicked = i % 7 == 0 && i % 3 == 0;
                t.train(
                    &f,
                    "a",
                    Outcome {
                        clicked,
                        converted: false,
                    },
                )
                .unwrap();
            }
            t.finish()
        };
        assert_eq!(model().to_bytes(), model().to_bytes());
    }
}

#[cfg(test)]
mod unproven_heads {
    use super::*;
    use crate::{DEFAULT_CROSSES, MIN_POSITIVES};

    /// 3,000 impressions on two sites, one clicked ten times as often as
    /// the other; `clicks` clicks in all, no conversion.
    fn trained(clicks: u64) -> crate::Model {
        let mut t = Trainer::new(Params {
            bits: 16,
            ..Params::default()
        })
        .unwrap();
        let mut left = clicks;
        for i in 0..3_000u64 {
            let site = if i % 2 == 0 {
                "hi.example"
            } else {
                "lo.example"
            };
            let f = t
                .hasher()
                .features(&[("li", "learn"), ("site", site)], DEFAULT_CROSSES)
                .unwrap();
            let clicked = left > 0 && site == "hi.example" && i % 10 == 0;
            left -= u64::from(clicked);
            t.train(
                &f,
                "learn",
                Outcome {
                    clicked,
                    converted: false,
                },
            )
            .unwrap();
        }
        t.finish()
    }

    /// A head that saw too few positives answers the prior for every
    /// candidate, sites it learned and sites it never saw (value probe: no
    /// conversion at all gave 0.0025, 25 times the default, everywhere).
    #[test]
    fn a_head_without_enough_positives_answers_its_prior() {
        for clicks in [0, 1, MIN_POSITIVES - 1] {
            let m = trained(clicks);
            assert_eq!(m.heads_used(), [false, false], "{clicks}");
            let prior = m.priors();
            for site in ["hi.example", "lo.example", "never.example"] {
                let f = m
                    .hasher()
                    .features(&[("li", "learn"), ("site", site)], DEFAULT_CROSSES)
                    .unwrap();
                let p = m.predict(&f, "learn");
                let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.max(1e-300);
                assert!(
                    close(p.click, prior.click),
                    "{clicks} {site}: {p:?} {prior:?}"
                );
                assert!(close(p.conversion, prior.conversion), "{site}: {p:?}");
            }
            // The conversion prior is the data's rate (none) smoothed
            // toward the default: under it, never above.
            assert!(prior.conversion < crate::DEFAULT_CONVERSION_PRIOR);
        }
        // Enough clicks: the click head ranks the sites, the conversion
        // head (still no conversion) answers its prior.
        let m = trained(150);
        assert_eq!(m.heads_used(), [true, false]);
        let p = |site: &str| {
            let f = m
                .hasher()
                .features(&[("li", "learn"), ("site", site)], DEFAULT_CROSSES)
                .unwrap();
            m.predict(&f, "learn")
        };
        assert!(p("hi.example").click > 2.0 * p("lo.example").click);
        assert_eq!(p("hi.example").conversion, m.priors().conversion);
    }

    /// The rule holds for a model file written before it: it is applied
    /// as the file loads.
    #[test]
    fn a_saved_model_keeps_the_rule() {
        let mut m = trained(0);
        // As the file of an earlier version holds it: fit, not held.
        m.calibration = [crate::calibrate::Platt::IDENTITY; 2];
        let back = crate::Model::from_bytes(&m.to_bytes()).unwrap();
        assert_eq!(back.heads_used(), [false, false]);
        let f = back
            .hasher()
            .features(&[("li", "learn"), ("site", "hi.example")], DEFAULT_CROSSES)
            .unwrap();
        let p = back.predict(&f, "learn");
        assert!((p.conversion - back.priors().conversion).abs() < 1e-15);
    }
}

//! A trained model: what the bidder scores candidates with.

use std::collections::HashMap;

use crate::calibrate::Platt;
use crate::features::{FeatureHasher, Features};
use crate::train::{Outcome, Params};

/// The click rate a model answers when it knows nothing: no model file,
/// or no training impressions. Display campaigns' click rates sit around
/// 0.05–0.2 %; erring low keeps unproven CPC bids cheap.
pub const DEFAULT_CLICK_PRIOR: f64 = 0.001;
/// The conversion rate per impression a model answers when it knows
/// nothing; a tenth of the click prior, as a typical 10 % of clicks convert.
pub const DEFAULT_CONVERSION_PRIOR: f64 = 0.0001;
/// Most line items a model keeps counts of. Enough for any real account;
/// bounds what a model file can make a reader allocate.
pub const MAX_LINE_ITEMS: usize = 1_000_000;
/// Longest line item id counted, in bytes.
pub const MAX_LINE_ITEM_LEN: usize = 255;
/// A head whose training data held fewer positives than this (clicks for
/// the click head, conversions for the other) answers its prior, whatever
/// its weights say. With a handful of positives the weights are mostly
/// the bias's slow way down from zero (FTRL's steps shrink with the
/// gradients), and the calibration cannot bring it back: a hold-out of a
/// tenth has a few hundred negatives, and Platt's smoothed target for them
/// (1/(N₋+2)) is some 30 times a conversion rate. A model trained on
/// 3,000 impressions and not one conversion answered 0.0025 for every
/// candidate, and a target CPA of 30 bid 74 CPM (value probe). At 30
/// positives that target is at most about a third of the head's rate.
pub const MIN_POSITIVES: u64 = 30;

/// Impressions, clicks and conversions seen in training.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub impressions: u64,
    pub clicks: u64,
    pub conversions: u64,
}

impl Counts {
    pub(crate) fn add(&mut self, outcome: Outcome) {
        self.impressions = self.impressions.saturating_add(1);
        self.clicks = self.clicks.saturating_add(u64::from(outcome.clicked));
        self.conversions = self
            .conversions
            .saturating_add(u64::from(outcome.converted));
    }
}

/// Keys are ours (the trainer's or a checksummed file's), so a fixed seed
/// is safe, and keeps a model's behaviour the same from run to run.
pub(crate) type LineItems = HashMap<Box<str>, Counts, foldhash::fast::FixedState>;

/// Probabilities for one candidate impression.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// P(click | impression).
    pub click: f64,
    /// P(conversion | impression).
    pub conversion: f64,
}

/// Scores candidates. Immutable and `Sync`: one behind an `Arc` serves all
/// threads, and a new one is swapped in when a new file arrives.
#[derive(Clone)]
pub struct Model {
    pub(crate) params: Params,
    pub(crate) hasher: FeatureHasher,
    /// Click and conversion weights of each coordinate side by side: a
    /// feature costs one cache miss for both heads. Empty: priors only.
    pub(crate) weights: Vec<[f32; 2]>,
    pub(crate) bias: [f32; 2],
    pub(crate) calibration: [Platt; 2],
    pub(crate) totals: Counts,
    pub(crate) line_items: LineItems,
    /// Derived from `totals` and the parameters.
    prior: [f64; 2],
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("params", &self.params)
            .field("weights", &self.weights.len())
            .field("calibration", &self.calibration)
            .field("prior", &self.prior)
            .field("totals", &self.totals)
            .field("line_items", &self.line_items.len())
            .finish()
    }
}

impl Model {
    pub(crate) fn from_parts(
        params: Params,
        weights: Vec<[f32; 2]>,
        bias: [f32; 2],
        calibration: [Platt; 2],
        totals: Counts,
        line_items: LineItems,
    ) -> Model {
        // The observed global rates, smoothed toward the defaults with the
        // prior strength as pseudo-impressions: a model trained on a few
        // hundred impressions without a conversion does not answer 0.
        let k = params.prior_strength;
        let n = totals.impressions as f64;
        let rate = |events: u64, default: f64| {
            if n + k > 0.0 {
                (events as f64 + k * default) / (n + k)
            } else {
                default
            }
        };
        let prior = [
            rate(totals.clicks, DEFAULT_CLICK_PRIOR),
            rate(totals.conversions, DEFAULT_CONVERSION_PRIOR),
        ];
        let mut model = Model {
            hasher: FeatureHasher::new(params.seed),
            params,
            weights,
            bias,
            calibration,
            totals,
            line_items,
            prior,
        };
        model.hold_unproven_heads();
        model
    }

    /// Heads under [`MIN_POSITIVES`] answer their prior: a constant
    /// calibration (slope 0) at the prior's logit, which the shrinkage
    /// toward the prior then leaves where it is. Files written before the
    /// rule get it as they load.
    fn hold_unproven_heads(&mut self) {
        if self.weights.is_empty() {
            return;
        }
        let positives = [self.totals.clicks, self.totals.conversions];
        for ((c, p), prior) in self.calibration.iter_mut().zip(positives).zip(self.prior) {
            if p < MIN_POSITIVES {
                *c = Platt::constant(prior);
            }
        }
    }

    /// Whether each head (click, conversion) learned from enough
    /// positives to be used ([`MIN_POSITIVES`]); a head that did not
    /// answers its prior.
    pub fn heads_used(&self) -> [bool; 2] {
        let positives = [self.totals.clicks, self.totals.conversions];
        positives.map(|p| !self.weights.is_empty() && p >= MIN_POSITIVES)
    }

    /// What the bidder uses without a model file, or with a corrupt one:
    /// [`DEFAULT_CLICK_PRIOR`] and [`DEFAULT_CONVERSION_PRIOR`] for every
    /// candidate.
    pub fn priors_only() -> Model {
        Model::from_parts(
            Params::default(),
            Vec::new(),
            [0.0; 2],
            [Platt::IDENTITY; 2],
            Counts::default(),
            LineItems::default(),
        )
    }

    /// Builds features this model understands.
    pub fn hasher(&self) -> &FeatureHasher {
        &self.hasher
    }

    /// The parameters it was trained with.
    pub fn params(&self) -> &Params {
        &self.params
    }

    pub fn is_priors_only(&self) -> bool {
        self.weights.is_empty()
    }

    /// The rates a line item without training impressions gets.
    pub fn priors(&self) -> Prediction {
        Prediction {
            click: self.prior[0],
            conversion: self.prior[1],
        }
    }

    /// Everything seen in training.
    pub fn totals(&self) -> Counts {
        self.totals
    }

    /// What training saw of one line item.
    pub fn line_item(&self, id: &str) -> Option<Counts> {
        self.line_items.get(id).copied()
    }

    /// Calibrated probabilities of a click and a conversion, shrunk toward
    /// the priors for a line item with few training impressions n:
    /// `(n·p_model + k·p_prior) / (n + k)`, k = [`Params::prior_strength`].
    ///
    /// Features hashed with another seed than this model's (built before a
    /// model with a new seed was swapped in) get the priors: their ids mean
    /// nothing here.
    ///
    /// Does not allocate.
    pub fn predict(&self, features: &Features, line_item: &str) -> Prediction {
        if self.weights.is_empty() || features.tag() != self.hasher.tag() {
            return self.priors();
        }
        let [click, conversion] = self.calibrated(features);
        let n = self
            .line_items
            .get(line_item)
            .map_or(0.0, |c| c.impressions as f64);
        let k = self.params.prior_strength;
        let shrink = |model: f64, prior: f64| {
            if n + k > 0.0 {
                (n * model + k * prior) / (n + k)
            } else {
                model
            }
        };
        Prediction {
            click: shrink(click, self.prior[0]),
            conversion: shrink(conversion, self.prior[1]),
        }
    }

    /// Calibrated, before the shrinkage toward the priors.
    pub(crate) fn calibrated(&self, features: &Features) -> [f64; 2] {
        let logits = self.logits(features);
        [
            self.calibration[0].apply(logits[0]),
            self.calibration[1].apply(logits[1]),
        ]
    }

    /// The raw logits; needs weights.
    pub(crate) fn logits(&self, features: &Features) -> [f64; 2] {
        let mask = self.weights.len().wrapping_sub(1);
        let mut sum = self.bias;
        for &id in features.ids() {
            let [c, v] = self.weights[id as usize & mask];
            sum[0] += c;
            sum[1] += v;
        }
        [f64::from(sum[0]), f64::from(sum[1])]
    }

    pub(crate) fn set_calibration(&mut self, calibration: [Platt; 2]) {
        self.calibration = calibration;
        self.hold_unproven_heads();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::Trainer;
    use crate::DEFAULT_CROSSES;

    #[test]
    fn priors_only_answers_the_defaults() {
        let model = Model::priors_only();
        assert!(model.is_priors_only());
        let f = model
            .hasher()
            .features(&[("li", "1"), ("site", "a")], DEFAULT_CROSSES)
            .unwrap();
        let p = model.predict(&f, "1");
        assert_eq!(p.click, DEFAULT_CLICK_PRIOR);
        assert_eq!(p.conversion, DEFAULT_CONVERSION_PRIOR);
        assert_eq!(p, model.priors());
    }

    /// A model of a world where line item "a" is clicked a quarter of the
    /// time, "b" (seen 30 times) always, and "c" not at all.
    fn small_model() -> Model {
        let mut t = Trainer::new(Params {
            bits: 16,
            holdout_every: 0,
            prior_strength: 100.0,
            ..Params::default()
        })
        .unwrap();
        for i in 0..4000u32 {
            let (li, clicked) = match i % 4 {
                0 if i < 120 => ("b", true),
                0 | 1 => ("a", i % 8 == 1),
                _ => ("c", false),
            };
            let f = t.hasher().features(&[("li", li)], &[]).unwrap();
            let outcome = Outcome {
                clicked,
                converted: false,
            };
            t.train(&f, li, outcome).unwrap();
        }
        t.finish()
    }

    #[test]
    fn predictions_are_shrunk_toward_the_prior_by_impressions() {
        let model = small_model();
        let k = model.params().prior_strength;
        let prior = model.priors();
        // (clicks + k · default) / (impressions + k)
        let t = model.totals();
        let expect = (t.clicks as f64 + k * DEFAULT_CLICK_PRIOR) / (t.impressions as f64 + k);
        assert!((prior.click - expect).abs() < 1e-15);
        for li in ["a", "b", "c"] {
            let f = model.hasher().features(&[("li", li)], &[]).unwrap();
            let [click, conversion] = model.calibrated(&f);
            let n = model.line_item(li).unwrap().impressions as f64;
            let p = model.predict(&f, li);
            let shrunk = |m: f64, p: f64| (n * m + k * p) / (n + k);
            assert!((p.click - shrunk(click, prior.click)).abs() < 1e-15, "{li}");
            assert!((p.conversion - shrunk(conversion, prior.conversion)).abs() < 1e-15);
        }
        // "b" has 30 impressions against k = 100: nearer the prior than its
        // model value, which is well above it.
        let f = model.hasher().features(&[("li", "b")], &[]).unwrap();
        let m = model.calibrated(&f)[0];
        let p = model.predict(&f, "b").click;
        assert!(m > 2.0 * prior.click, "{m} {prior:?}");
        assert!(p - prior.click < m - p, "{p} {m} {prior:?}");
        // A line item it never saw gets exactly the prior.
        let f = model.hasher().features(&[("li", "new")], &[]).unwrap();
        assert_eq!(model.predict(&f, "new"), prior);
    }

    #[test]
    fn features_of_another_seed_get_the_priors() {
        let model = small_model();
        let other = FeatureHasher::new(model.hasher().seed() ^ 1);
        let f = other.features(&[("li", "a")], &[]).unwrap();
        assert_eq!(model.predict(&f, "a"), model.priors());
    }
}

//! Click and conversion probabilities of candidate impressions, so that the
//! bidder can bid a line item's expected value: max CPC × P(click) × 1000,
//! or target CPA × P(conversion) × 1000. Knows nothing of HTTP, OpenRTB or
//! the config.
//!
//! - [`Features`]: up to [`MAX_FEATURES`] hashed ids of `(field, value)`
//!   pairs and crosses of them, built by a model's [`FeatureHasher`]
//!   without allocating; [`Features::to_compact`] is a short URL-safe text
//!   of them for the tracking URL and the journal, from which a trainer
//!   later learns exactly what was scored ([`Features::from_compact`]).
//!   Field names: [`field`].
//! - [`Trainer`]: logistic regression trained online by FTRL-Proximal
//!   (McMahan et al., KDD 2013), a click head and a conversion head, a
//!   hold-out for the calibration, impression counts per line item.
//! - [`Model`]: calibrated probabilities shrunk toward priors for line
//!   items with little data; [`Model::priors_only`] when there is no model
//!   file; [`Model::save`] (where the file's layout is) and [`Model::load`]
//!   of a checksummed, versioned file.
//! - [`log_loss`] and [`auc`] for the simulator's report.
//!
//! ```
//! use predict::{field, Model, Outcome, Params, Trainer, DEFAULT_CROSSES};
//!
//! let mut trainer = Trainer::new(Params { bits: 16, ..Params::default() })?;
//! for i in 0..2_000 {
//!     let site = if i % 2 == 0 { "news.example" } else { "games.example" };
//!     let features = trainer.hasher().features(
//!         &[(field::LINE_ITEM, "li-1"), (field::SITE, site), (field::HOUR, "14")],
//!         DEFAULT_CROSSES,
//!     )?;
//!     let outcome = Outcome { clicked: i % 20 == 0, converted: false };
//!     trainer.train(&features, "li-1", outcome)?;
//! }
//! let model: Model = trainer.finish();
//!
//! // At bid time: the same fields, hashed by the model's hasher.
//! let features = model.hasher().features(
//!     &[(field::LINE_ITEM, "li-1"), (field::SITE, "news.example"), (field::HOUR, "14")],
//!     DEFAULT_CROSSES,
//! )?;
//! let p = model.predict(&features, "li-1");
//! assert!(p.click > 0.0 && p.click < 1.0);
//! let bid_cpm = 2.50 * p.click * 1000.0; // max CPC of 2.50
//! # let _ = bid_cpm;
//!
//! // In the click URL, and back at training time.
//! let compact = features.to_compact();
//! assert_eq!(predict::Features::from_compact(compact.as_str())?, features);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod calibrate;
mod eval;
mod features;
mod file;
mod model;
mod train;

pub use eval::{auc, log_loss, EvalError};
pub use features::{
    field, Compact, CompactError, FeatureError, FeatureHasher, Features, BID_FIELDS,
    DEFAULT_CROSSES, DEFAULT_SEED, MAX_COMPACT_LEN, MAX_FEATURES,
};
pub use file::{ModelError, CHECKSUM_SEED, FORMAT_VERSION, MAX_FILE_LEN};
pub use model::{
    Counts, Model, Prediction, DEFAULT_CLICK_PRIOR, DEFAULT_CONVERSION_PRIOR, MAX_LINE_ITEMS,
    MAX_LINE_ITEM_LEN, MIN_POSITIVES,
};
pub use train::{Outcome, Params, ParamsError, TrainError, Trainer, BITS};

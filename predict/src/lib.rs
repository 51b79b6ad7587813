//! Click and conversion probabilities of candidate impressions, so that the
//! bidder can bid a line item's expected value: max CPC × P(click) × 1000,
//! or target CPA × P(conversion) × 1000. Knows nothing of HTTP, OpenRTB or
//! the config.
//!
//! - [`log_loss`] and [`auc`] for the simulator's report.

mod eval;

pub use eval::{auc, log_loss, EvalError};

//! Creatives: which creative fits a slot, and the markup that shows it.
//!
//! Nothing here knows of budgets, audiences or OpenRTB: the bidder hands in
//! plain sizes and gets back a yes/no and a string of markup.

mod banner;

pub use banner::{banner_html, display_size, fits_sizes};

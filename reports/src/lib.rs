//! What the advertiser bought and what it earned.
//!
//! - [`fact`]: the dimensions and counters every report is made of;
//! - [`log`]: the event journal (tracked impressions and clicks, attributed
//!   views and purchases, bid and no-bid counts) beside the charge journal,
//!   one file per UTC day, written by one thread in batches;
//! - [`attribution`]: each view or purchase of an advertiser's product to
//!   its last touch (the last click within `click_days`, else the last
//!   impression within `view_days`);
//! - [`query`]: a report over days, from daily aggregates where a day's
//!   events have been folded, from raw records where not; spend comes from
//!   the charge journal's own records, so it equals the ledger's;
//! - [`render`]: a report as a table, CSV, JSON or one HTML page.

pub mod attribution;
pub mod fact;
mod html;
pub mod log;
pub mod progress;
pub mod query;
pub mod record;
pub mod render;

pub use fact::{Counters, Dim, Dims};
pub use query::{Query, Report};

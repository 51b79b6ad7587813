//! Creatives: which creative fits a slot, and the markup that shows it.
//!
//! Nothing here knows of budgets, audiences or OpenRTB bid objects: the
//! bidder hands in plain sizes, creatives and URLs and gets back a yes/no and
//! a string of markup (banner HTML, or VAST for video and audio).

mod av;
mod banner;
mod vast;

pub use av::{fit_av, AvFit, AvSlot, Misfit};
pub use banner::{banner_html, display_size, fits_sizes};
pub use vast::{
    image_mime, vast_xml, Companion, Vast, VastVersion, COMPANION_EVENT, LINEAR_EVENTS,
    VAST_4_NAMESPACE,
};

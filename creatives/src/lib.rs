//! Creatives: which creative fits a slot, and the markup that shows it.
//!
//! Nothing here knows of budgets, audiences or OpenRTB bid objects: the
//! bidder hands in plain sizes, creatives and URLs and gets back a yes/no and
//! a string of markup (banner HTML, VAST for video and audio, or a Native
//! response).

mod av;
mod banner;
mod native;
mod swar;
mod vast;

pub use av::{fit_av, AvFit, AvSlot, Misfit};
pub use banner::{
    banner_html, banner_html_tracked, banner_json_tracked, display_image_bit, display_size,
    fits_sizes, mime_mask, push_attr_in_json, push_json_str, BannerLayout, BannerTemplate,
};
pub use native::{
    fit_native, native_response, parse_native_request, AssetKind, EventTrackerOffer, FilledAsset,
    ImageAsset, ImageMisfit, NativeAd, NativeAsset, NativeError, NativeField, NativeFit,
    NativeImage, NativeMisfit, NativeRequest, NativeTrackers, NativeVersion, TextMisfit,
    UnsupportedAsset, MAX_ASSETS, MAX_REQUEST_BYTES, MIN_KEPT_CHARS,
};
pub use vast::{
    image_mime, url_is_plain, vast_json, vast_xml, Companion, CompanionTemplate, EventUrls, Vast,
    VastBid, VastTemplate, VastVersion, COMPANION_EVENT, LINEAR_EVENTS, VAST_4_NAMESPACE,
};

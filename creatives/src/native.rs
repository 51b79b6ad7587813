//! Native ads (OpenRTB Native 1.2, and the 1.0/1.1 shapes still sent): a
//! product ad checked against the assets a slot asks for, and its `adm`.
//!
//! Plain values in and out: the bidder hands in the text of
//! `imp.native.request` and a [`NativeAd`] built from its creative, and
//! gets back the response JSON to put, as a string, in `bid.adm`.
//!
//! How the spec's loose ends are settled here:
//!
//! * **Request encoding.** OpenRTB 2.x says `imp.native.request` is a
//!   JSON-encoded string; many exchanges send the object itself. Both are
//!   read. Before 1.1 the request had a root `{"native": {...}}`; that
//!   wrapper is read too, and remembered.
//! * **Version.** `ver` "1.0"/"1", "1.1" or "1.2", as a string or a number.
//!   Absent or unknown, it is 1.2 (the 1.2 spec's default), or 1.0 when the
//!   request has the pre-1.1 wrapper.
//! * **Response wrapper.** The spec (5.1) says the response's root lost its
//!   `native` wrapper in 1.1, not 1.2. The response is wrapped when the
//!   request was wrapped or says it is 1.0, and bare otherwise: an exchange
//!   that still wraps its requests most likely expects the old shape back.
//!   The response's `ver` is the request's version: everything written is
//!   valid in that version.
//! * **Impression tracking.** 1.2 says a bidder "must only respond with
//!   methods indicated as available in the request". So `eventtrackers`
//!   (event 1 impression, method 1 image pixel) is written only when the
//!   request offers exactly that; otherwise the pixel goes in
//!   `imptrackers`, which every version defines (1.2 marks it "to be
//!   deprecated", not removed). A 1.2 request with no `eventtrackers` thus
//!   gets `imptrackers`, not a tracker the exchange never offered.
//! * **Text lengths.** `len` is counted in UTF-16 code units, which is what
//!   JavaScript and Java exchanges measure; it is never less than the count
//!   of characters, so a text within it is within `len` characters too.
//!   The title and the description are shortened when too long: cut after
//!   the last whole word that fits (or, when that would keep fewer than
//!   [`MIN_KEPT_CHARS`] characters, on the last character boundary that
//!   fits), trailing spaces and separators dropped, and "…" added. Fewer
//!   than [`MIN_KEPT_CHARS`] characters kept is a misfit. The spec itself
//!   lets exchanges ellipse descriptions, and a product name cut short
//!   still names the product. Brand, price and call to action are never
//!   cut: "$24.9…" or half a brand is worse than no ad.
//! * **Images.** Per dimension: `wmin`/`hmin` (when above 0) is a minimum
//!   and any larger image is taken (the exchange scales it, as the spec's
//!   "min-max-height framework" says); otherwise `w`/`h` (when above 0) is
//!   exact; otherwise anything goes. Aspect ratio is not checked beyond
//!   that. Type 3 is the main image, type 1 the icon; type 2 ("logo" before
//!   1.2, merged into icon by 1.2) gets the icon too, and an image with no
//!   type gets the main image. When `mimes` is listed, the image's type,
//!   from its URL's extension, must be in it ("image/jpg", which the spec
//!   itself cites, counts as "image/jpeg"); an image whose extension says
//!   nothing does not fit a list.
//! * **Data.** Type 1 sponsored (brand), 2 description, 6 price and 12
//!   call to action are filled; any other type is not.
//!
//! Required assets must all be filled or the ad does not fit; optional ones
//! are filled when the ad has them and they fit, and left out otherwise.
//!
//! The request is attacker-written: it is bounded ([`MAX_REQUEST_BYTES`],
//! [`MAX_ASSETS`], and fixed caps on tracker offers and mimes), and no
//! input makes these functions panic.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::vast::known_image_mime;

/// Longest `imp.native.request` read, in bytes of JSON text. Real requests
/// are a few hundred bytes to a few KiB.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Most assets one request may ask for; more is an error, not a cut, since
/// a response must answer every required asset.
pub const MAX_ASSETS: usize = 64;

/// Fewest characters of the original a shortened title or description
/// keeps before the "…".
pub const MIN_KEPT_CHARS: usize = 8;

/// Tracker offers, methods per offer and image mimes kept; the rest are
/// skipped. Fewer mimes only narrows what is accepted, and no exchange
/// offers this many trackers.
const MAX_EVENT_TRACKERS: usize = 32;
const MAX_METHODS: usize = 16;
const MAX_MIMES: usize = 32;

/// serde_json quotes the offending string in some messages: an error must
/// not carry 64 KiB of attacker text into logs.
const MAX_ERROR_DETAIL: usize = 160;

const ELLIPSIS: char = '…';

const IMAGE_ICON: i64 = 1;
const IMAGE_LOGO: i64 = 2;
const IMAGE_MAIN: i64 = 3;

const DATA_SPONSORED: i64 = 1;
const DATA_DESC: i64 = 2;
const DATA_PRICE: i64 = 6;
const DATA_CTA: i64 = 12;

const EVENT_IMPRESSION: i64 = 1;
const METHOD_IMG: i64 = 1;

// ------------------------------------------------------------------ the ad

/// A product ad, borrowed from the bidder's creative.
#[derive(Clone, Copy, Debug)]
pub struct NativeAd<'a> {
    pub title: &'a str,
    pub description: &'a str,
    /// The brand, for "sponsored by".
    pub sponsored_by: &'a str,
    /// The main image.
    pub image: NativeImage<'a>,
    pub icon: Option<NativeImage<'a>>,
    /// Call-to-action text, e.g. "Shop now".
    pub cta: Option<&'a str>,
    /// Display text such as "$24.99".
    pub price: Option<&'a str>,
    pub click_url: &'a str,
}

/// An image and its size in pixels.
#[derive(Clone, Copy, Debug)]
pub struct NativeImage<'a> {
    pub url: &'a str,
    pub w: u32,
    pub h: u32,
}

/// The bidder's tracking URLs, ready to use.
#[derive(Clone, Copy, Debug)]
pub struct NativeTrackers<'a> {
    /// Impression pixel; empty writes none.
    pub impression_url: &'a str,
    /// `link.clicktrackers`; empty strings are skipped.
    pub click_trackers: &'a [&'a str],
    /// The buyer's page on its targeting, written as `privacy` where the
    /// request's `privacy` is 1 (the slot shows a buyer's link); `None`
    /// or an empty string writes none, and the exchange shows its own.
    pub privacy_url: Option<&'a str>,
}

// ------------------------------------------------------------- the request

/// A Native markup version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NativeVersion {
    V1_0,
    V1_1,
    V1_2,
}

impl NativeVersion {
    /// "1.0", "1.1" or "1.2".
    pub fn as_str(self) -> &'static str {
        match self {
            NativeVersion::V1_0 => "1.0",
            NativeVersion::V1_1 => "1.1",
            NativeVersion::V1_2 => "1.2",
        }
    }
}

impl fmt::Display for NativeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a bidder needs of a Native request. Built only by
/// [`parse_native_request`], so its bounds and unique asset ids hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NativeRequest {
    version: NativeVersion,
    wrapped: bool,
    assets: Vec<NativeAsset>,
    event_trackers: Vec<EventTrackerOffer>,
    privacy: bool,
}

impl NativeRequest {
    /// `ver`, or the default for the request's shape (see the module docs).
    pub fn version(&self) -> NativeVersion {
        self.version
    }

    /// Whether the request had the pre-1.1 `{"native": {...}}` root.
    pub fn wrapped(&self) -> bool {
        self.wrapped
    }

    /// The assets in request order: at least one, at most [`MAX_ASSETS`],
    /// ids unique.
    pub fn assets(&self) -> &[NativeAsset] {
        &self.assets
    }

    /// `eventtrackers` offered (1.2).
    pub fn event_trackers(&self) -> &[EventTrackerOffer] {
        &self.event_trackers
    }

    /// `privacy`: the slot can show a buyer's privacy link.
    pub fn privacy(&self) -> bool {
        self.privacy
    }

    /// Whether `eventtrackers` offers an image pixel on impression, the
    /// one tracker this crate writes there.
    pub fn offers_impression_pixel(&self) -> bool {
        self.event_trackers
            .iter()
            .any(|t| t.event == EVENT_IMPRESSION && t.methods.contains(&METHOD_IMG))
    }
}

/// One requested asset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NativeAsset {
    pub id: i64,
    pub required: bool,
    pub kind: AssetKind,
}

/// What an asset asks for. Sizes and lengths of 0 or less read as not
/// given; larger than `u32::MAX` reads as `u32::MAX`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AssetKind {
    /// `len`: the longest title taken.
    Title {
        len: Option<u32>,
    },
    Image(ImageAsset),
    /// `data_type` 0 when the request gave none.
    Data {
        data_type: i64,
        len: Option<u32>,
    },
    /// Never filled: the ad has no video.
    Video,
    /// None of title, img, video or data.
    Other,
}

/// An `img` asset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageAsset {
    pub image_type: Option<i64>,
    pub w: Option<u32>,
    pub h: Option<u32>,
    pub wmin: Option<u32>,
    pub hmin: Option<u32>,
    /// Empty accepts any type.
    pub mimes: Vec<String>,
}

/// One `eventtrackers` offer: an event type and the methods it may be
/// tracked with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventTrackerOffer {
    pub event: i64,
    pub methods: Vec<i64>,
}

/// Why a Native request cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NativeError {
    #[error("native request is {bytes} bytes, over the {MAX_REQUEST_BYTES}-byte limit")]
    TooLarge { bytes: usize },
    #[error("native request is malformed: {0}")]
    Json(String),
    #[error("native request is not a JSON object (nor a string holding one)")]
    NotAnObject,
    #[error("native request has a \"native\" wrapper beside other fields or inside another")]
    Wrapper,
    #[error("native request has no assets")]
    NoAssets,
    #[error("native request has more than {MAX_ASSETS} assets")]
    TooManyAssets,
    #[error("native asset #{index} has no id")]
    MissingAssetId { index: usize },
    #[error("native asset id {id} is used twice")]
    DuplicateAssetId { id: i64 },
    #[error("native asset {id} has more than one of title, img, video and data")]
    AmbiguousAsset { id: i64 },
}

/// Reads `imp.native.request` as the bidder got it: the JSON text of a
/// string holding the request (the OpenRTB 2.x way) or of the request
/// object itself, either with or without the pre-1.1 `{"native": {...}}`
/// root. Numbers sent as strings ("25") are read; a value of the wrong
/// shape is an error.
pub fn parse_native_request(raw: &str) -> Result<NativeRequest, NativeError> {
    if raw.len() > MAX_REQUEST_BYTES {
        return Err(NativeError::TooLarge { bytes: raw.len() });
    }
    let raw = trim_json(raw);
    let decoded: Cow<'_, str> = if raw.starts_with('"') {
        Cow::Owned(serde_json::from_str::<String>(raw).map_err(json_error)?)
    } else {
        Cow::Borrowed(raw)
    };
    let text = trim_json(&decoded);
    // serde's derived structs also take the array form; a request is an
    // object, and an array here is a broken integration, not a request.
    if !text.starts_with('{') {
        return Err(NativeError::NotAnObject);
    }
    let top: RawRequest = serde_json::from_str(text).map_err(json_error)?;
    let outer_ver = top.ver;
    let (body, wrapped) = match top.native {
        Some(inner) => {
            if top.assets.is_some() || top.eventtrackers.is_some() || inner.native.is_some() {
                return Err(NativeError::Wrapper);
            }
            (*inner, true)
        }
        None => (top, false),
    };
    let version = body.ver.or(outer_ver).flatten().unwrap_or(if wrapped {
        NativeVersion::V1_0
    } else {
        NativeVersion::V1_2
    });

    let raw_assets = body.assets.ok_or(NativeError::NoAssets)?;
    if raw_assets.overflow {
        return Err(NativeError::TooManyAssets);
    }
    if raw_assets.items.is_empty() {
        return Err(NativeError::NoAssets);
    }
    let mut assets: Vec<NativeAsset> = Vec::with_capacity(raw_assets.items.len());
    for (index, a) in raw_assets.items.into_iter().enumerate() {
        let asset = a.into_asset(index)?;
        if assets.iter().any(|b| b.id == asset.id) {
            return Err(NativeError::DuplicateAssetId { id: asset.id });
        }
        assets.push(asset);
    }
    let event_trackers = body
        .eventtrackers
        .map(|t| t.items)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|t| {
            Some(EventTrackerOffer {
                event: t.event.0?,
                methods: t
                    .methods
                    .map(|m| m.items)
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|m| m.0)
                    .collect(),
            })
        })
        .collect();
    Ok(NativeRequest {
        version,
        wrapped,
        assets,
        event_trackers,
        privacy: body.privacy.0,
    })
}

fn trim_json(s: &str) -> &str {
    s.trim_matches([' ', '\t', '\n', '\r'])
}

fn json_error(e: serde_json::Error) -> NativeError {
    let mut detail = e.to_string();
    if let Some((cut, _)) = detail.char_indices().nth(MAX_ERROR_DETAIL) {
        detail.truncate(cut);
        detail.push(ELLIPSIS);
    }
    NativeError::Json(detail)
}

// ------------------------------------------------------------- the fit

/// An ad's fields that fill assets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NativeField {
    Title,
    Description,
    SponsoredBy,
    Price,
    Cta,
    Image,
    Icon,
}

/// One asset the response fills, and from which field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FilledAsset {
    pub id: i64,
    pub field: NativeField,
    /// The asset's `len`, for text fields.
    pub len: Option<u32>,
}

/// An ad that fits: the assets it fills, in request order, and the
/// response shape the request calls for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NativeFit {
    assets: Vec<FilledAsset>,
    version: NativeVersion,
    wrapped: bool,
    event_trackers: bool,
    privacy: bool,
}

impl NativeFit {
    pub fn assets(&self) -> &[FilledAsset] {
        &self.assets
    }

    /// The response's `ver`: the request's.
    pub fn version(&self) -> NativeVersion {
        self.version
    }

    /// Whether the response gets the pre-1.1 `{"native": {...}}` root.
    pub fn wrapped(&self) -> bool {
        self.wrapped
    }

    /// Whether the impression pixel goes in `eventtrackers` (else in
    /// `imptrackers`).
    pub fn event_trackers(&self) -> bool {
        self.event_trackers
    }
}

/// Why a text asset is not filled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TextMisfit {
    #[error("the ad has no such text")]
    Missing,
    #[error("the ad's text is longer than the slot takes")]
    TooLong,
}

/// Why an image asset is not filled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImageMisfit {
    #[error("the ad has no such image")]
    Missing,
    #[error("the image's size is not what the slot takes")]
    Size,
    #[error("the image's type is not among the slot's mimes")]
    Mime,
}

/// A required asset no ad field fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnsupportedAsset {
    Data(i64),
    Image(i64),
    /// Neither title, img, video nor data.
    Other,
}

impl fmt::Display for UnsupportedAsset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnsupportedAsset::Data(t) => write!(f, "data type {t}"),
            UnsupportedAsset::Image(t) => write!(f, "image type {t}"),
            UnsupportedAsset::Other => f.write_str("an asset of no known kind"),
        }
    }
}

/// Why an ad does not fit a Native request: the first required asset, in
/// request order, that it cannot fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NativeMisfit {
    #[error("title asset {asset}: {why}")]
    Title { asset: i64, why: TextMisfit },
    #[error("image asset {asset} (type {image_type}): {why}")]
    Image {
        asset: i64,
        image_type: i64,
        why: ImageMisfit,
    },
    #[error("data asset {asset} (type {data_type}): {why}")]
    Data {
        asset: i64,
        data_type: i64,
        why: TextMisfit,
    },
    #[error("asset {asset} requires a video")]
    Video { asset: i64 },
    #[error("asset {asset} requires {what}, which ads do not have")]
    Unsupported { asset: i64, what: UnsupportedAsset },
    /// No asset, required or optional, could be filled: the ad would be
    /// empty.
    #[error("the ad fills none of the assets")]
    Empty,
}

impl NativeMisfit {
    /// Its kind, as `/v1/explain`'s `detail` names it.
    pub fn kind(self) -> &'static str {
        match self {
            NativeMisfit::Title { .. } => "title_asset",
            NativeMisfit::Image { .. } => "image_asset",
            NativeMisfit::Data { .. } => "data_asset",
            NativeMisfit::Video { .. } => "video_asset",
            NativeMisfit::Unsupported { .. } => "unsupported_asset",
            NativeMisfit::Empty => "no_asset",
        }
    }

    /// How far through `req`'s assets (in its order) the ad got before
    /// this: the place of the asset it could not fill, or past them all
    /// for an ad that fills none.
    pub fn reached(self, req: &NativeRequest) -> usize {
        let asset = match self {
            NativeMisfit::Title { asset, .. }
            | NativeMisfit::Image { asset, .. }
            | NativeMisfit::Data { asset, .. }
            | NativeMisfit::Video { asset }
            | NativeMisfit::Unsupported { asset, .. } => asset,
            NativeMisfit::Empty => return req.assets.len(),
        };
        req.assets
            .iter()
            .position(|a| a.id == asset)
            .unwrap_or(req.assets.len())
    }
}

/// Checks `ad` against every asset of `req` (see the module docs for the
/// rules). The fit is for this ad: give the same ad to [`native_response`].
pub fn fit_native(ad: &NativeAd<'_>, req: &NativeRequest) -> Result<NativeFit, NativeMisfit> {
    let mut assets = Vec::with_capacity(req.assets.len());
    for asset in &req.assets {
        match fill(ad, asset) {
            Ok(filled) => assets.push(filled),
            Err(misfit) if asset.required => return Err(misfit),
            Err(_) => {}
        }
    }
    if assets.is_empty() {
        return Err(NativeMisfit::Empty);
    }
    Ok(NativeFit {
        assets,
        version: req.version,
        wrapped: req.wrapped || req.version == NativeVersion::V1_0,
        // `eventtrackers` exists from 1.2 on: an older response carries the
        // pixel in `imptrackers`, whatever the request lists.
        event_trackers: req.version() == NativeVersion::V1_2 && req.offers_impression_pixel(),
        // `privacy` exists from 1.2 on, as `eventtrackers` does.
        privacy: req.version() == NativeVersion::V1_2 && req.privacy(),
    })
}

fn fill(ad: &NativeAd<'_>, asset: &NativeAsset) -> Result<FilledAsset, NativeMisfit> {
    let id = asset.id;
    let filled = |field, len| FilledAsset { id, field, len };
    match &asset.kind {
        AssetKind::Title { len } => {
            ad_text(ad, NativeField::Title, *len)
                .map_err(|why| NativeMisfit::Title { asset: id, why })?;
            Ok(filled(NativeField::Title, *len))
        }
        AssetKind::Image(img) => {
            let image_type = img.image_type.unwrap_or(IMAGE_MAIN);
            let (field, image) = match image_type {
                IMAGE_MAIN => (NativeField::Image, Some(ad.image)),
                IMAGE_ICON | IMAGE_LOGO => (NativeField::Icon, ad.icon),
                other => {
                    return Err(NativeMisfit::Unsupported {
                        asset: id,
                        what: UnsupportedAsset::Image(other),
                    })
                }
            };
            image_fits(image.as_ref(), img).map_err(|why| NativeMisfit::Image {
                asset: id,
                image_type,
                why,
            })?;
            Ok(filled(field, None))
        }
        AssetKind::Data { data_type, len } => {
            let field = match *data_type {
                DATA_SPONSORED => NativeField::SponsoredBy,
                DATA_DESC => NativeField::Description,
                DATA_PRICE => NativeField::Price,
                DATA_CTA => NativeField::Cta,
                other => {
                    return Err(NativeMisfit::Unsupported {
                        asset: id,
                        what: UnsupportedAsset::Data(other),
                    })
                }
            };
            ad_text(ad, field, *len).map_err(|why| NativeMisfit::Data {
                asset: id,
                data_type: *data_type,
                why,
            })?;
            Ok(filled(field, *len))
        }
        AssetKind::Video => Err(NativeMisfit::Video { asset: id }),
        AssetKind::Other => Err(NativeMisfit::Unsupported {
            asset: id,
            what: UnsupportedAsset::Other,
        }),
    }
}

/// The text of a text field, shortened to `len` when the field may be.
fn ad_text<'a>(
    ad: &NativeAd<'a>,
    field: NativeField,
    len: Option<u32>,
) -> Result<Cow<'a, str>, TextMisfit> {
    let (text, shorten) = match field {
        NativeField::Title => (Some(ad.title), true),
        NativeField::Description => (Some(ad.description), true),
        NativeField::SponsoredBy => (Some(ad.sponsored_by), false),
        NativeField::Price => (ad.price, false),
        NativeField::Cta => (ad.cta, false),
        NativeField::Image | NativeField::Icon => (None, false),
    };
    fit_text(text.unwrap_or(""), len, shorten)
}

/// `text` if it is within `len` UTF-16 code units; else, when `shorten`,
/// its start and "…" within `len`.
fn fit_text(text: &str, len: Option<u32>, shorten: bool) -> Result<Cow<'_, str>, TextMisfit> {
    if text.trim().is_empty() {
        return Err(TextMisfit::Missing);
    }
    let max = len.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
    if text.encode_utf16().count() <= max {
        return Ok(Cow::Borrowed(text));
    }
    if !shorten {
        return Err(TextMisfit::TooLong);
    }
    let budget = max.saturating_sub(ELLIPSIS.len_utf16());
    let mut units = 0;
    let mut cut = 0;
    for (i, c) in text.char_indices() {
        units += c.len_utf16();
        if units > budget {
            break;
        }
        cut = i + c.len_utf8();
    }
    let mut kept = &text[..cut];
    let at_word_end =
        kept.ends_with(char::is_whitespace) || text[cut..].starts_with(char::is_whitespace);
    if !at_word_end {
        if let Some(space) = kept.rfind(char::is_whitespace) {
            let whole_words = trim_tail(&kept[..space]);
            if whole_words.chars().count() >= MIN_KEPT_CHARS {
                kept = whole_words;
            }
        }
    }
    let kept = trim_tail(kept);
    if kept.chars().count() < MIN_KEPT_CHARS {
        return Err(TextMisfit::TooLong);
    }
    let mut out = String::with_capacity(kept.len() + ELLIPSIS.len_utf8());
    out.push_str(kept);
    out.push(ELLIPSIS);
    Ok(Cow::Owned(out))
}

/// "tent,…" or "tent -…" reads worse than "tent…".
fn trim_tail(s: &str) -> &str {
    s.trim_end_matches(|c: char| {
        c.is_whitespace() || matches!(c, ',' | ';' | ':' | '-' | '–' | '—')
    })
}

fn image_fits(image: Option<&NativeImage<'_>>, want: &ImageAsset) -> Result<(), ImageMisfit> {
    let image = image
        .filter(|i| !i.url.trim().is_empty())
        .ok_or(ImageMisfit::Missing)?;
    if !dimension_fits(image.w, want.w, want.wmin) || !dimension_fits(image.h, want.h, want.hmin) {
        return Err(ImageMisfit::Size);
    }
    if !want.mimes.is_empty() {
        let mime = known_image_mime(image.url).ok_or(ImageMisfit::Mime)?;
        if !want.mimes.iter().any(|m| same_mime(m, mime)) {
            return Err(ImageMisfit::Mime);
        }
    }
    Ok(())
}

/// A minimum, when given, wins over an exact size: the spec reads `w`
/// alone as exact and `wmin` as "the client rescales".
fn dimension_fits(have: u32, exact: Option<u32>, min: Option<u32>) -> bool {
    match (min, exact) {
        (Some(min), _) => have >= min,
        (None, Some(exact)) => have == exact,
        (None, None) => true,
    }
}

/// Exchanges write "image/jpg" (the spec's own example), parameters and
/// odd case.
pub(crate) fn same_mime(listed: &str, mime: &str) -> bool {
    let listed = listed.split(';').next().unwrap_or(listed).trim();
    listed.eq_ignore_ascii_case(mime)
        || (listed.eq_ignore_ascii_case("image/jpg") && mime == "image/jpeg")
}

// ------------------------------------------------------------- the response

/// The Native response for `bid.adm` (as a JSON string there): the filled
/// assets under their request ids, `link` with the click URL and click
/// trackers, and the impression pixel in `eventtrackers` or `imptrackers`
/// as the fit says; wrapped in `{"native": ...}` for pre-1.1 requests.
///
/// `ad` must be the ad `fit` was made for; a field that no longer fits its
/// asset is left out rather than written beyond the slot's limits.
pub fn native_response(
    ad: &NativeAd<'_>,
    fit: &NativeFit,
    trackers: &NativeTrackers<'_>,
) -> String {
    let mut assets = Vec::with_capacity(fit.assets.len());
    for a in &fit.assets {
        let mut out = AssetOut {
            id: a.id,
            title: None,
            img: None,
            data: None,
        };
        match a.field {
            NativeField::Image | NativeField::Icon => {
                let image = if a.field == NativeField::Image {
                    Some(&ad.image)
                } else {
                    ad.icon.as_ref()
                };
                let Some(image) = image.filter(|i| !i.url.trim().is_empty()) else {
                    continue;
                };
                out.img = Some(ImageOut {
                    url: image.url,
                    w: Some(image.w).filter(|&w| w > 0),
                    h: Some(image.h).filter(|&h| h > 0),
                });
            }
            field => {
                let Ok(text) = ad_text(ad, field, a.len) else {
                    continue;
                };
                if field == NativeField::Title {
                    out.title = Some(TitleOut { text });
                } else {
                    out.data = Some(DataOut { value: text });
                }
            }
        }
        assets.push(out);
    }
    let pixel = Some(trackers.impression_url).filter(|u| !u.is_empty());
    let response = ResponseOut {
        ver: fit.version.as_str(),
        assets,
        link: LinkOut {
            url: ad.click_url,
            clicktrackers: trackers
                .click_trackers
                .iter()
                .copied()
                .filter(|u| !u.is_empty())
                .collect(),
        },
        imptrackers: pixel.filter(|_| !fit.event_trackers).map(|u| [u]),
        eventtrackers: pixel.filter(|_| fit.event_trackers).map(|url| {
            [EventTrackerOut {
                event: EVENT_IMPRESSION,
                method: METHOD_IMG,
                url,
            }]
        }),
        privacy: trackers
            .privacy_url
            .filter(|u| fit.privacy && !u.is_empty()),
    };
    let json = if fit.wrapped {
        serde_json::to_string(&Wrapped { native: response })
    } else {
        serde_json::to_string(&response)
    };
    json.expect("string-keyed structs of strings and integers always serialize")
}

#[derive(Serialize)]
struct Wrapped<'a> {
    native: ResponseOut<'a>,
}

#[derive(Serialize)]
struct ResponseOut<'a> {
    ver: &'static str,
    assets: Vec<AssetOut<'a>>,
    link: LinkOut<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    imptrackers: Option<[&'a str; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    eventtrackers: Option<[EventTrackerOut<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    privacy: Option<&'a str>,
}

#[derive(Serialize)]
struct AssetOut<'a> {
    id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<TitleOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    img: Option<ImageOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<DataOut<'a>>,
}

#[derive(Serialize)]
struct TitleOut<'a> {
    text: Cow<'a, str>,
}

#[derive(Serialize)]
struct ImageOut<'a> {
    url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    w: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    h: Option<u32>,
}

#[derive(Serialize)]
struct DataOut<'a> {
    value: Cow<'a, str>,
}

#[derive(Serialize)]
struct LinkOut<'a> {
    url: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    clicktrackers: Vec<&'a str>,
}

#[derive(Serialize)]
struct EventTrackerOut<'a> {
    event: i64,
    method: i64,
    url: &'a str,
}

// ------------------------------------------------------- request reading

#[derive(Deserialize)]
struct RawRequest {
    #[serde(default, deserialize_with = "version")]
    ver: Option<Option<NativeVersion>>,
    #[serde(default)]
    assets: Option<Bounded<RawAsset, MAX_ASSETS>>,
    #[serde(default)]
    eventtrackers: Option<Bounded<RawTracker, MAX_EVENT_TRACKERS>>,
    #[serde(default)]
    privacy: Flag,
    #[serde(default)]
    native: Option<Box<RawRequest>>,
}

#[derive(Deserialize)]
struct RawAsset {
    #[serde(default)]
    id: AssetId,
    #[serde(default)]
    required: Flag,
    #[serde(default)]
    title: Option<RawTitle>,
    #[serde(default)]
    img: Option<RawImage>,
    #[serde(default)]
    video: Option<RawVideo>,
    #[serde(default)]
    data: Option<RawData>,
}

impl RawAsset {
    fn into_asset(self, index: usize) -> Result<NativeAsset, NativeError> {
        let id = self.id.0.ok_or(NativeError::MissingAssetId { index })?;
        let objects = usize::from(self.title.is_some())
            + usize::from(self.img.is_some())
            + usize::from(self.video.is_some())
            + usize::from(self.data.is_some());
        if objects > 1 {
            return Err(NativeError::AmbiguousAsset { id });
        }
        let kind = if let Some(t) = self.title {
            AssetKind::Title {
                len: positive(t.len),
            }
        } else if let Some(i) = self.img {
            AssetKind::Image(ImageAsset {
                image_type: i.image_type.0,
                w: positive(i.w),
                h: positive(i.h),
                wmin: positive(i.wmin),
                hmin: positive(i.hmin),
                mimes: i.mimes.map(|m| m.items).unwrap_or_default(),
            })
        } else if let Some(d) = self.data {
            AssetKind::Data {
                data_type: d.data_type.0.unwrap_or(0),
                len: positive(d.len),
            }
        } else if self.video.is_some() {
            AssetKind::Video
        } else {
            AssetKind::Other
        };
        Ok(NativeAsset {
            id,
            required: self.required.0,
            kind,
        })
    }
}

#[derive(Deserialize)]
struct RawTitle {
    #[serde(default)]
    len: Num,
}

#[derive(Deserialize)]
struct RawImage {
    #[serde(default, rename = "type")]
    image_type: Num,
    #[serde(default)]
    w: Num,
    #[serde(default)]
    h: Num,
    #[serde(default)]
    wmin: Num,
    #[serde(default)]
    hmin: Num,
    #[serde(default)]
    mimes: Option<Bounded<String, MAX_MIMES>>,
}

/// Its fields do not matter (ads have no video), but it must be an object.
#[derive(Deserialize)]
struct RawVideo {}

#[derive(Deserialize)]
struct RawData {
    #[serde(default, rename = "type")]
    data_type: Num,
    #[serde(default)]
    len: Num,
}

#[derive(Deserialize)]
struct RawTracker {
    #[serde(default)]
    event: Num,
    #[serde(default)]
    methods: Option<Bounded<Num, MAX_METHODS>>,
}

/// A size or length: not given unless above 0, at most `u32::MAX`.
fn positive(n: Num) -> Option<u32> {
    n.0.filter(|&n| n > 0)
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
}

/// At most `N` elements of an array; the rest are skipped (still checked
/// to be JSON) and `overflow` says there were some.
struct Bounded<T, const N: usize> {
    items: Vec<T>,
    overflow: bool,
}

impl<'de, T: Deserialize<'de>, const N: usize> Deserialize<'de> for Bounded<T, N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T, const N: usize>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for V<T, N> {
            type Value = Bounded<T, N>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(N));
                while items.len() < N {
                    match seq.next_element()? {
                        Some(item) => items.push(item),
                        None => {
                            return Ok(Bounded {
                                items,
                                overflow: false,
                            })
                        }
                    }
                }
                let mut overflow = false;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    overflow = true;
                }
                Ok(Bounded { items, overflow })
            }
        }
        d.deserialize_seq(V::<T, N>(PhantomData))
    }
}

/// An integer, also as a float (truncated) or a string holding one; null
/// or an empty string is none. Out-of-range values saturate.
#[derive(Default)]
struct Num(Option<i64>);

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Num;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer, or a string holding one")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Num, E> {
                Ok(Num(Some(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Num, E> {
                Ok(Num(Some(i64::try_from(v).unwrap_or(i64::MAX))))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Num, E> {
                float_int(v)
                    .map(|n| Num(Some(n)))
                    .ok_or_else(|| E::custom("a number out of range"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Num, E> {
                let t = v.trim();
                if t.is_empty() {
                    return Ok(Num(None));
                }
                t.parse::<i64>()
                    .ok()
                    .or_else(|| t.parse::<f64>().ok().and_then(float_int))
                    .map(|n| Num(Some(n)))
                    // Not `invalid_value(Unexpected::Str)`: that would quote
                    // the whole string into the error.
                    .ok_or_else(|| E::custom("a string that is not a number where one is expected"))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Num, E> {
                Ok(Num(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Num, E> {
                Ok(Num(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// An asset id: the answer echoes it and the exchange matches it, so only
/// an integer that comes back as it was sent (`2`, `2.0`, `"2"`); a
/// fraction, or a number past 64 bits that would come back changed, makes
/// the native request unusable rather than answered with an asset it
/// never asked for. Absent or null is none (refused as missing).
#[derive(Default)]
struct AssetId(Option<i64>);

impl<'de> Deserialize<'de> for AssetId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = AssetId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer asset id")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<AssetId, E> {
                Ok(AssetId(Some(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<AssetId, E> {
                i64::try_from(v)
                    .map(|v| AssetId(Some(v)))
                    .map_err(|_| E::custom("an asset id past 64 bits"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<AssetId, E> {
                // Exactly an integer, and well inside i64 (2^53: every
                // integer up to it is a float of its own).
                if v.fract() == 0.0 && v.abs() <= 9_007_199_254_740_992.0 {
                    return Ok(AssetId(Some(v as i64)));
                }
                Err(E::custom("an asset id that is not an integer"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<AssetId, E> {
                match v.trim() {
                    "" => Ok(AssetId(None)),
                    t => t
                        .parse::<i64>()
                        .map(|n| AssetId(Some(n)))
                        .map_err(|_| E::custom("an asset id that is not an integer")),
                }
            }
            fn visit_unit<E: de::Error>(self) -> Result<AssetId, E> {
                Ok(AssetId(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<AssetId, E> {
                Ok(AssetId(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// `as` saturates and maps NaN to 0; only finite values are numbers here.
fn float_int(v: f64) -> Option<i64> {
    v.is_finite().then(|| v.trunc() as i64)
}

/// `required` and `privacy`: 0/1 as spec'd, and also booleans and "0"/"1".
#[derive(Default)]
struct Flag(bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Flag;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("0 or 1")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Flag, E> {
                Ok(Flag(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Flag, E> {
                Ok(Flag(v != 0))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Flag, E> {
                Ok(Flag(v != 0))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Flag, E> {
                Ok(Flag(v != 0.0))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Flag, E> {
                match v.trim() {
                    "1" | "true" => Ok(Flag(true)),
                    "0" | "false" | "" => Ok(Flag(false)),
                    _ => Err(E::custom(
                        "a string that is not 0 or 1 where a flag is expected",
                    )),
                }
            }
            fn visit_unit<E: de::Error>(self) -> Result<Flag, E> {
                Ok(Flag(false))
            }
            fn visit_none<E: de::Error>(self) -> Result<Flag, E> {
                Ok(Flag(false))
            }
        }
        d.deserialize_any(V)
    }
}

/// `ver`: `Some(None)` for a version this crate does not know, which then
/// reads as the default.
fn version<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<NativeVersion>>, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = Option<Option<NativeVersion>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a version such as \"1.2\"")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(match v.trim() {
                "1" | "1.0" => Some(NativeVersion::V1_0),
                "1.1" => Some(NativeVersion::V1_1),
                "1.2" => Some(NativeVersion::V1_2),
                _ => None,
            }))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some((v == 1).then_some(NativeVersion::V1_0)))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some((v == 1).then_some(NativeVersion::V1_0)))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            // 1.1 and 1.2 are not exact in binary: compare tenths.
            Ok(Some(match float_int(v * 10.0 + 0.5) {
                Some(10) => Some(NativeVersion::V1_0),
                Some(11) => Some(NativeVersion::V1_1),
                Some(12) => Some(NativeVersion::V1_2),
                _ => None,
            }))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How far a misfit got is its asset's place in the request's order
    /// (not its id), and past every asset for an ad that fills none.
    #[test]
    fn a_misfit_reached_its_assets_place_in_the_request() {
        let req = parse_native_request(
            r#"{"assets":[{"id":7,"required":1,"title":{"len":20}},
                          {"id":2,"required":1,"img":{"type":3,"w":300,"h":250}}]}"#,
        )
        .unwrap();
        let title = NativeMisfit::Title {
            asset: 7,
            why: TextMisfit::TooLong,
        };
        let image = NativeMisfit::Image {
            asset: 2,
            image_type: 3,
            why: ImageMisfit::Size,
        };
        assert_eq!(title.reached(&req), 0);
        assert_eq!(image.reached(&req), 1);
        assert_eq!(NativeMisfit::Empty.reached(&req), 2);
        assert_eq!((title.kind(), image.kind()), ("title_asset", "image_asset"));
    }

    #[test]
    fn fit_text_keeps_short_text_and_refuses_what_may_not_be_cut() {
        assert_eq!(fit_text("Tent", Some(4), false).unwrap(), "Tent");
        assert_eq!(fit_text("Tent", None, false).unwrap(), "Tent");
        assert_eq!(fit_text("Tents", Some(4), false), Err(TextMisfit::TooLong));
        assert_eq!(fit_text("  ", Some(40), true), Err(TextMisfit::Missing));
        assert_eq!(fit_text("", None, true), Err(TextMisfit::Missing));
    }

    #[test]
    fn fit_text_shortens_within_len_with_an_ellipsis() {
        let t = fit_text("Ultralight two-person tent", Some(25), true).unwrap();
        assert_eq!(t, "Ultralight two-person…", "whole words");
        // A cut inside a long single word stays there.
        let t = fit_text("Zweipersonenleichtzelt", Some(15), true).unwrap();
        assert_eq!(t, "Zweipersonenle…");
        assert_eq!(t.encode_utf16().count(), 15);
        // Whole words would keep too little: cut inside the word.
        let t = fit_text("Tent ultralightweightmodel", Some(15), true).unwrap();
        assert_eq!(t, "Tent ultraligh…");
        // Separators before the cut go.
        assert_eq!(
            fit_text("Three-season tent, 1.2 kg", Some(20), true).unwrap(),
            "Three-season tent…"
        );
        // Trailing space before the cut goes.
        assert_eq!(
            fit_text("Ultralight tent for two", Some(12), true).unwrap(),
            "Ultralight…"
        );
        // Too short a slot to say anything.
        assert_eq!(
            fit_text("Ultralight tent", Some(8), true),
            Err(TextMisfit::TooLong)
        );
    }

    #[test]
    fn fit_text_counts_utf16_and_cuts_on_char_boundaries() {
        // Each emoji is 2 UTF-16 units: 6 chars but 12 units.
        let emoji = "😀😀😀😀😀😀";
        assert_eq!(fit_text(emoji, Some(6), false), Err(TextMisfit::TooLong));
        assert!(fit_text(emoji, Some(12), false).is_ok());
        let t = fit_text("Zelt für zwei Personen 😀😀", Some(24), true).unwrap();
        assert!(t.encode_utf16().count() <= 24, "{t}");
        assert!(t.ends_with(ELLIPSIS));
        // The cut may fall inside the emoji's surrogate pair; it is left
        // whole or dropped, never split.
        let t = fit_text("Abcdefghij😀xyz", Some(12), true).unwrap();
        assert_eq!(t, "Abcdefghij…");
    }

    #[test]
    fn asset_ids_come_back_as_sent_or_the_request_is_unusable() {
        let id = |json: &str| serde_json::from_str::<AssetId>(json).map(|a| a.0);
        assert_eq!(id("7").unwrap(), Some(7));
        assert_eq!(id("-7").unwrap(), Some(-7));
        assert_eq!(id("\" 7 \"").unwrap(), Some(7));
        assert_eq!(id("2.0").unwrap(), Some(2));
        assert_eq!(id("9223372036854775807").unwrap(), Some(i64::MAX));
        assert_eq!(id("null").unwrap(), None);
        for bad in [
            "1.5",
            "1180591620717411303424",
            "9223372036854775808",
            "1e300",
            "\"x\"",
        ] {
            assert!(id(bad).is_err(), "{bad}");
        }
        let request =
            r#"{"assets":[{"id":1180591620717411303424,"required":1,"title":{"len":25}}]}"#;
        assert!(parse_native_request(request).is_err());
    }

    #[test]
    fn numbers_flags_and_versions_are_read_leniently() {
        let n: Num = serde_json::from_str("\" 25 \"").unwrap();
        assert_eq!(n.0, Some(25));
        let n: Num = serde_json::from_str("25.9").unwrap();
        assert_eq!(n.0, Some(25));
        let n: Num = serde_json::from_str("1e300").unwrap();
        assert_eq!(n.0, Some(i64::MAX));
        let n: Num = serde_json::from_str("18446744073709551615").unwrap();
        assert_eq!(n.0, Some(i64::MAX));
        assert!(serde_json::from_str::<Num>("\"twenty\"").is_err());
        assert!(serde_json::from_str::<Num>("\"inf\"").is_err());
        assert!(serde_json::from_str::<Num>("true").is_err());
        assert!(serde_json::from_str::<Num>("[1]").is_err());
        assert!(serde_json::from_str::<Flag>("true").unwrap().0);
        assert!(serde_json::from_str::<Flag>("\"1\"").unwrap().0);
        assert!(!serde_json::from_str::<Flag>("0").unwrap().0);
        assert!(serde_json::from_str::<Flag>("\"yes\"").is_err());
        assert_eq!(positive(Num(Some(-3))), None);
        assert_eq!(positive(Num(Some(0))), None);
        assert_eq!(positive(Num(Some(i64::MAX))), Some(u32::MAX));

        let ver = |json: &str| {
            #[derive(Deserialize)]
            struct T {
                #[serde(default, deserialize_with = "version")]
                ver: Option<Option<NativeVersion>>,
            }
            serde_json::from_str::<T>(json).map(|t| t.ver)
        };
        assert_eq!(
            ver(r#"{"ver":"1.2"}"#).unwrap(),
            Some(Some(NativeVersion::V1_2))
        );
        assert_eq!(
            ver(r#"{"ver":1.1}"#).unwrap(),
            Some(Some(NativeVersion::V1_1))
        );
        assert_eq!(
            ver(r#"{"ver":1}"#).unwrap(),
            Some(Some(NativeVersion::V1_0))
        );
        assert_eq!(ver(r#"{"ver":"2.0"}"#).unwrap(), Some(None));
        assert_eq!(ver(r#"{}"#).unwrap(), None);
        assert!(ver(r#"{"ver":{}}"#).is_err());
    }

    #[test]
    fn sizes_minimums_win_over_exact() {
        assert!(dimension_fits(300, Some(300), None));
        assert!(!dimension_fits(301, Some(300), None));
        assert!(dimension_fits(1200, Some(300), Some(200)));
        assert!(!dimension_fits(199, Some(199), Some(200)));
        assert!(dimension_fits(1, None, None));
    }

    #[test]
    fn mimes_compare_without_case_parameters_or_the_jpg_alias() {
        assert!(same_mime("IMAGE/PNG", "image/png"));
        assert!(same_mime("image/jpg", "image/jpeg"));
        assert!(same_mime(" image/webp ; q=1", "image/webp"));
        assert!(!same_mime("image/gif", "image/png"));
    }

    #[test]
    fn error_details_are_bounded() {
        let long = format!("{{\"assets\":\"{}\"}}", "x".repeat(10_000));
        let NativeError::Json(detail) = parse_native_request(&long).unwrap_err() else {
            panic!("expected a JSON error");
        };
        assert!(detail.chars().count() <= MAX_ERROR_DETAIL + 1, "{detail}");
    }
}

//! VAST markup for video and audio creatives.
//!
//! One bid's `adm`: an `InLine` ad in the highest VAST version the player
//! allows, written by this module (text and attribute values escaped, URLs
//! in CDATA), as a string or straight into a JSON response, or copied from
//! a [`VastTemplate`] the creative's document was written into once, with
//! only the bid's own parts (its id and tracking URLs, the renditions and
//! the companion it picked) written per bid. Every shape
//! this module writes validates against the IAB XSD of its version
//! (`testdata/vast/xsd/`, checked by `tests/vast.rs` with `xmllint
//! --schema`).
//!
//! What the XSDs ask for, version by version, and how it is met:
//!
//! * **Root.** 4.x schemas have a target namespace: the root carries
//!   `xmlns="http://www.iab.com/VAST"`. 2.0 and 3.0 have none and get none.
//!   2.0 requires `Ad@id`; it is always written (the bid id).
//! * **Element order.** The 4.x XSDs fix an order that differs from 2.0/3.0
//!   and from many spec examples: `Impression` comes before `AdTitle`;
//!   in `Linear`, `TrackingEvents` before `Duration` and `MediaFiles`
//!   before `VideoClicks`; in `VideoClicks`, `ClickTracking` before
//!   `ClickThrough`; in `Companion`, `CompanionClickThrough` and
//!   `CompanionClickTracking` before `TrackingEvents`; in `Creative`,
//!   `UniversalAdId` after `Linear`/`CompanionAds`.
//! * **Required in 4.x.** `UniversalAdId` in every InLine `Creative`
//!   (`idRegistry="unknown"`, the creative id as value; 4.0 also requires an
//!   `idValue` attribute, which gets the creative id too). 4.1 and 4.2
//!   require `AdServingId`: the bid id (`Vast::ad_id`), which is unique per
//!   bid. `MediaFiles` is required in a 4.x `Linear`.
//! * **MediaFile.** `delivery`, `type`, `width` and `height` are required in
//!   every version, `bitrate` is optional everywhere. Audio files have no
//!   picture: they are written with `width="0" height="0"`.
//! * **Duration.** `xs:time` in every XSD. 2.0 gets `HH:MM:SS` (the 2.0
//!   spec's format); 3.0 and later get `HH:MM:SS.mmm`. A duration of a day or
//!   more is not a valid `xs:time`: the config refuses a `duration_s` past
//!   86399.
//! * **Audio.** `Ad@adType="audio"` exists from 4.1 on and is written there;
//!   2.0, 3.0 and 4.0 have no way to say it. An audio `Linear` has no
//!   `VideoClicks`: there is nothing to click while it plays. The click
//!   lives on the companion banner, when there is one.
//! * **Companions** go in a `Creative` of their own (2.0 and 3.0 allow one
//!   of `Linear`/`CompanionAds` per `Creative`; 4.x would allow both but the
//!   spec describes one each). `CompanionAds@required` does not exist in
//!   2.0: a required companion is written as a plain one there.
//!   `CompanionClickTracking` exists in the 4.x InLine companion (with a
//!   required `id`, the companion creative's id); the 2.0 XSD has no such
//!   element and the 3.0 XSD (IAB's only one, a draft) has it for Wrapper
//!   companions only, so the companion click is untracked in 2.0 and 3.0.
//!
//! Strings are made safe for XML 1.0 before they are written: characters
//! XML cannot carry at all (control characters other than tab, LF and CR)
//! are dropped from text and percent-encoded in URLs. URLs are also made
//! valid `xs:anyURI` for strict validators: whitespace, `[`/`]` after the
//! host (VAST player macros are not supported: URLs come ready to use), a
//! stray `%` and a second `#` are percent-encoded. Whatever text and URLs
//! the caller passes, the document stays well-formed and valid.

use std::borrow::Cow;
use std::fmt;

use config::{Creative, CreativeKind, MediaFile};

/// The namespace of the VAST 4.x schemas.
pub const VAST_4_NAMESPACE: &str = "http://www.iab.com/VAST";

/// A VAST version this crate writes. VAST 1.0 and DAAST are not written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VastVersion {
    V2_0,
    V3_0,
    V4_0,
    V4_1,
    V4_2,
}

impl VastVersion {
    /// Every version, oldest first.
    pub const ALL: [VastVersion; 5] = [
        VastVersion::V2_0,
        VastVersion::V3_0,
        VastVersion::V4_0,
        VastVersion::V4_1,
        VastVersion::V4_2,
    ];

    /// The highest version an OpenRTB `protocols` list (AdCOM "Creative
    /// Subtypes - Audio/Video") allows, an InLine ad being written.
    ///
    /// InLine codes count as themselves: 2 (VAST 2.0), 3 (3.0), 7 (4.0), 11
    /// (4.1), 13 (4.2). A Wrapper code implies the InLine of its version: a
    /// player that follows a VAST x Wrapper renders the x InLine it leads
    /// to (5 → 2.0, 6 → 3.0, 8 → 4.0, 12 → 4.1, 14 → 4.2). VAST 1.0 (1, 4),
    /// DAAST (9, 10) and unknown codes are ignored.
    ///
    /// An empty list — OpenRTB only recommends the field, and many players
    /// leave it out — gives `default` (the exchange's `vast_default`). A
    /// non-empty list with no usable code is `None`: the player said what
    /// it plays, and it is none of ours.
    pub fn from_protocols(protocols: &[i32], default: VastVersion) -> Option<VastVersion> {
        if protocols.is_empty() {
            return Some(default);
        }
        protocols
            .iter()
            .filter_map(|&p| VastVersion::from_protocol(p).or_else(|| VastVersion::of_wrapper(p)))
            .max()
    }

    /// The version of a Wrapper protocol code (5, 6, 8, 12, 14).
    pub fn of_wrapper(code: i32) -> Option<VastVersion> {
        Some(match code {
            5 => VastVersion::V2_0,
            6 => VastVersion::V3_0,
            8 => VastVersion::V4_0,
            12 => VastVersion::V4_1,
            14 => VastVersion::V4_2,
            _ => return None,
        })
    }

    /// The version of one InLine protocol code (2, 3, 7, 11, 13).
    pub fn from_protocol(code: i32) -> Option<VastVersion> {
        VastVersion::ALL.into_iter().find(|v| v.protocol() == code)
    }

    /// The OpenRTB protocol code of this version, for `bid.protocol`.
    pub fn protocol(self) -> i32 {
        match self {
            VastVersion::V2_0 => 2,
            VastVersion::V3_0 => 3,
            VastVersion::V4_0 => 7,
            VastVersion::V4_1 => 11,
            VastVersion::V4_2 => 13,
        }
    }

    /// `VAST@version`: "2.0", "3.0", "4.0", "4.1" or "4.2".
    pub fn as_str(self) -> &'static str {
        match self {
            VastVersion::V2_0 => "2.0",
            VastVersion::V3_0 => "3.0",
            VastVersion::V4_0 => "4.0",
            VastVersion::V4_1 => "4.1",
            VastVersion::V4_2 => "4.2",
        }
    }

    fn is_4x(self) -> bool {
        self >= VastVersion::V4_0
    }
}

impl fmt::Display for VastVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One bid's VAST. All URLs are given ready to use: the bidder builds its
/// tracking URLs.
#[derive(Clone, Copy, Debug)]
pub struct Vast<'a> {
    pub version: VastVersion,
    /// `Ad@id`, and `AdServingId` in 4.1+: the bid id.
    pub ad_id: &'a str,
    /// `AdSystem`, e.g. "bidder".
    pub ad_system: &'a str,
    pub ad_title: &'a str,
    /// A Video or Audio creative. Its `click_url` is the video click-through
    /// (audio has none; see the module docs).
    pub creative: &'a Creative,
    /// The renditions to list, in order (the bidder picks them). Empty
    /// means every rendition of the creative.
    pub media: &'a [&'a MediaFile],
    pub impression_url: &'a str,
    /// The tracking URL of each event: start, firstQuartile, midpoint,
    /// thirdQuartile, complete (and creativeView for the companion). A
    /// function rather than a template: the bidder signs each event's URL.
    pub tracking: EventUrls<'a>,
    /// `VideoClicks/ClickTracking` of a video.
    pub click_tracking_url: Option<&'a str>,
    pub companion: Option<Companion<'a>>,
}

/// The URL of each tracking event, by event name, appended to the buffer
/// given: the writer reuses one buffer for all of a VAST's events, where a
/// `String` each was an allocation per event.
#[derive(Clone, Copy)]
pub struct EventUrls<'a>(pub &'a dyn Fn(&str, &mut String));

impl fmt::Debug for EventUrls<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EventUrls(..)")
    }
}

/// A companion banner: beside the player for video, on the screen of the
/// device playing an audio ad.
#[derive(Clone, Copy, Debug)]
pub struct Companion<'a> {
    /// A Display creative: its size, image and click URL are used. Any
    /// other kind is left out of the VAST.
    pub creative: &'a Creative,
    /// `CompanionAds@required="all"` (3.0+; 2.0 cannot say it).
    pub required: bool,
    /// `CompanionClickTracking` (4.x only; see the module docs).
    pub click_tracking_url: Option<&'a str>,
}

/// The events tracked on the linear ad, in play order.
pub const LINEAR_EVENTS: [&str; 5] = [
    "start",
    "firstQuartile",
    "midpoint",
    "thirdQuartile",
    "complete",
];

/// The event tracked on the companion.
pub const COMPANION_EVENT: &str = "creativeView";

/// The complete VAST document, XML declaration included, without
/// indentation (it travels in a JSON string).
///
/// `v.creative` should be a Video or Audio creative; given a Display one,
/// the document has a zero duration and no media files.
pub fn vast_xml(v: &Vast<'_>) -> String {
    let mut out = String::with_capacity(4096);
    write_document(&mut Plain(&mut out), v);
    out
}

/// [`vast_xml`] as a JSON string literal, quotes included, written onto
/// `out` (a bid response's `adm`): each piece is escaped for JSON as it is
/// written, so the document, a few kilobytes, has no string of its own and
/// is not passed over a second time.
pub fn vast_json(v: &Vast<'_>, out: &mut String) {
    out.push('"');
    write_document(&mut InJson(out), v);
    out.push('"');
}

/// `StaticResource@creativeType` for an image URL, from its extension (png,
/// jpg/jpeg, gif, webp, svg; any case; query and fragment ignored).
/// Anything else is "image/png".
pub fn image_mime(url: &str) -> &'static str {
    known_image_mime(url).unwrap_or("image/png")
}

/// The mime of an image URL's extension, `None` for an extension not in
/// the list: a slot that lists the mimes it takes must not be sent an image
/// whose type is only a guess.
pub(crate) fn known_image_mime(url: &str) -> Option<&'static str> {
    // By bytes: the same cuts through `str`'s splitters cost a video bid
    // with a companion some 900 instructions.
    let url = url.as_bytes();
    let path = &url[..memchr::memchr2(b'?', b'#', url).unwrap_or(url.len())];
    let name = &path[memchr::memrchr(b'/', path).map_or(0, |slash| slash + 1)..];
    let ext = memchr::memrchr(b'.', name).map_or(&[][..], |dot| &name[dot + 1..]);
    const TYPES: [(&str, &str); 6] = [
        ("png", "image/png"),
        ("jpg", "image/jpeg"),
        ("jpeg", "image/jpeg"),
        ("gif", "image/gif"),
        ("webp", "image/webp"),
        ("svg", "image/svg+xml"),
    ];
    TYPES
        .iter()
        .find(|(e, _)| e.as_bytes().eq_ignore_ascii_case(ext))
        .map(|(_, mime)| *mime)
}

/// A part of a document that differs from bid to bid (see [`VastTemplate`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hole {
    /// `Ad@id`'s value: the bid id.
    AdId,
    /// `AdServingId`'s text (4.1+): the bid id.
    AdServingId,
    Impression,
    /// The `Tracking` element of an event.
    Event(&'static str),
    /// `VideoClicks/ClickTracking`, or nothing.
    ClickTracking,
    /// `MediaFiles` with the renditions the bid picked.
    Media,
    /// The companion's `Creative`, or nothing.
    Companion,
    /// `CompanionClickTracking` (4.x), or nothing.
    CompanionClickTracking,
}

/// One creative's VAST in one version, written at config load in its JSON
/// form with the parts that differ per bid left out ([`Hole`]); a bid
/// writes the rest as copies ([`VastTemplate::write_json`]). What it writes
/// is what [`vast_json`] writes for the same creative and values: both go
/// through the same functions for each part, and a property test holds the
/// two to the same bytes. The document's fixed parts (ids, titles, media
/// files, durations, companion resources) were most of a video bid's
/// markup work, escaped and scanned anew each bid.
#[derive(Clone, Debug)]
pub struct VastTemplate {
    parts: Template,
    /// Each rendition's `MediaFile` element, JSON form, in the creative's
    /// order.
    files: Vec<String>,
}

/// The companion's `Creative` element of a [`VastTemplate`]'s document: one
/// per companion creative, version and `required`.
#[derive(Clone, Debug)]
pub struct CompanionTemplate {
    parts: Template,
    /// The companion's id as its `CompanionClickTracking@id` has it.
    id: String,
}

/// Fixed JSON text with holes at offsets into it, in order.
#[derive(Clone, Debug, Default)]
struct Template {
    json: String,
    holes: Vec<(usize, Hole)>,
}

/// What a bid puts into a [`VastTemplate`]: [`Vast`]'s per-bid fields.
#[derive(Clone, Copy, Debug)]
pub struct VastBid<'a> {
    /// `Ad@id`, and `AdServingId` in 4.1+: the bid id.
    pub ad_id: &'a str,
    pub impression_url: &'a str,
    pub tracking: EventUrls<'a>,
    pub click_tracking_url: Option<&'a str>,
    /// The renditions to list, as indices into the creative's media, in
    /// order. Empty, or none the creative has, means every rendition, as
    /// [`Vast::media`] empty does.
    pub renditions: &'a [usize],
    /// The companion, made for this template's version, and its click
    /// tracking URL.
    pub companion: Option<(&'a CompanionTemplate, Option<&'a str>)>,
    /// The caller's word, from [`url_is_plain`] on the pieces it builds
    /// them of, that the impression, click tracking and event URLs (those
    /// `tracking` writes) are plain: they go in as they are, unscanned.
    /// A bidder's own URLs are the same few pieces in every URL of a bid,
    /// so one look at the pieces stands for the nine or so scans of the
    /// whole URLs. `false` scans each.
    pub plain_urls: bool,
}

/// The [`Out`] that makes a template: writes as [`InJson`] does, and notes
/// each hole's place instead of filling it.
#[derive(Default)]
struct Recorder(Template);

impl Out for Recorder {
    fn mark(&mut self, s: &str) {
        InJson(&mut self.0.json).mark(s);
    }

    fn quote(&mut self) {
        InJson(&mut self.0.json).quote();
    }

    fn content(&mut self, s: &str) {
        InJson(&mut self.0.json).content(s);
    }

    fn hole<F: FnOnce(&mut Self)>(&mut self, hole: Hole, _fill: F) {
        self.0.holes.push((self.0.json.len(), hole));
    }
}

impl Template {
    /// The fixed text and, at each hole, what `fill` writes.
    fn write(&self, out: &mut String, mut fill: impl FnMut(&mut String, Hole)) {
        let mut from = 0;
        for &(at, hole) in &self.holes {
            out.push_str(&self.json[from..at]);
            fill(out, hole);
            from = at;
        }
        out.push_str(&self.json[from..]);
    }
}

/// Fields of [`Vast`] a template does not read: its holes stand for them.
fn unfilled<'a>(
    version: VastVersion,
    ad_system: &'a str,
    ad_title: &'a str,
    creative: &'a Creative,
) -> Vast<'a> {
    Vast {
        version,
        ad_id: "",
        ad_system,
        ad_title,
        creative,
        media: &[],
        impression_url: "",
        tracking: EventUrls(&|_, _| {}),
        click_tracking_url: None,
        companion: None,
    }
}

impl VastTemplate {
    /// The template of `creative` (Video or Audio) at `version`, with
    /// `ad_system` and `ad_title` as [`Vast`] has them.
    pub fn new(
        version: VastVersion,
        ad_system: &str,
        ad_title: &str,
        creative: &Creative,
    ) -> VastTemplate {
        let mut rec = Recorder::default();
        write_document(&mut rec, &unfilled(version, ad_system, ad_title, creative));
        let (media, audio) = match &creative.kind {
            CreativeKind::Video { media, .. } => (&media[..], false),
            CreativeKind::Audio { media, .. } => (&media[..], true),
            CreativeKind::Display { .. } | CreativeKind::Native(_) => (&[][..], false),
        };
        let files = media
            .iter()
            .map(|file| {
                let mut json = String::new();
                media_file(&mut InJson(&mut json), file, audio);
                json
            })
            .collect();
        VastTemplate {
            parts: rec.0,
            files,
        }
    }

    /// The document as [`vast_json`] writes it for this template's creative
    /// and version and `bid`'s values, onto `out`. A rendition index past
    /// the creative's media is left out (see [`VastBid::renditions`]).
    pub fn write_json(&self, bid: &VastBid<'_>, out: &mut String) {
        out.push('"');
        // One buffer for every event's URL (the companion's too), as the
        // writer has; only URLs that need a scan go through it, so it takes
        // no memory until one does.
        let mut url = String::new();
        self.parts.write(out, |out, hole| {
            let o = &mut InJson(out);
            match hole {
                Hole::AdId => ad_id_attr(o, bid.ad_id),
                Hole::AdServingId => ad_serving_id(o, bid.ad_id),
                Hole::Impression => own_url(o, bid.impression_url, bid.plain_urls),
                Hole::Event(event) => event_url(o, bid, event, &mut url),
                Hole::ClickTracking => click_tracking(o, bid.click_tracking_url, bid.plain_urls),
                Hole::Media => self.media(o, bid.renditions),
                Hole::Companion => {
                    if let Some((companion, click)) = bid.companion {
                        companion.write(o.0, bid, click, &mut url);
                    }
                }
                // Only in a companion's template.
                Hole::CompanionClickTracking => {
                    debug_assert!(false, "{hole:?} in a document's template")
                }
            }
        });
        out.push('"');
    }

    fn media(&self, o: &mut InJson<'_>, renditions: &[usize]) {
        if self.files.is_empty() {
            return;
        }
        o.mark("<MediaFiles>");
        // Indices the creative does not have are left out; none left means
        // every rendition, as [`Vast::media`] empty does (a caller that
        // drops those indices and passes the writer the rest writes this).
        let mut picked = renditions
            .iter()
            .filter_map(|&i| self.files.get(i))
            .peekable();
        if picked.peek().is_none() {
            self.files.iter().for_each(|f| o.0.push_str(f));
        } else {
            picked.for_each(|f| o.0.push_str(f));
        }
        o.mark("</MediaFiles>");
    }
}

impl CompanionTemplate {
    /// The companion `creative` (Display; any other kind writes nothing,
    /// as [`vast_json`] leaves it out) at `version`, `required` as
    /// [`Companion::required`].
    pub fn new(version: VastVersion, creative: &Creative, required: bool) -> CompanionTemplate {
        let mut rec = Recorder::default();
        let companion = Companion {
            creative,
            required,
            click_tracking_url: None,
        };
        companion_creative(&mut rec, &unfilled(version, "", "", creative), &companion);
        CompanionTemplate {
            parts: rec.0,
            id: xml_text(&creative.id).into_owned(),
        }
    }

    fn write(&self, out: &mut String, bid: &VastBid<'_>, click: Option<&str>, url: &mut String) {
        self.parts.write(out, |out, hole| {
            let o = &mut InJson(out);
            match hole {
                Hole::Event(event) => event_url(o, bid, event, url),
                Hole::CompanionClickTracking => {
                    companion_click_tracking(o, &self.id, click, bid.plain_urls)
                }
                // Only in the document's template.
                Hole::AdId
                | Hole::AdServingId
                | Hole::Impression
                | Hole::ClickTracking
                | Hole::Media
                | Hole::Companion => debug_assert!(false, "{hole:?} in a companion's template"),
            }
        });
    }
}

/// Where a document goes: as it is, or inside a JSON string.
///
/// The writer is our own, not an XML library's: a VAST document needs
/// start and end tags, five escapes and CDATA sections. Writing them through
/// a general writer (events, a tag buffer per element, a UTF-8 check of the
/// whole, then a JSON pass over it) cost a video bid 145k instructions
/// where this writer brought it to 127k. The tests read every shape back
/// with quick-xml's reader and validate it against the IAB XSDs.
trait Out {
    /// Our own markup, written as it is in either form: element and
    /// attribute names, punctuation, entities, the XML declaration's words,
    /// and content checked to need no escaping in either (a plain URL).
    /// It must hold nothing JSON escapes (a quote, a backslash, a control
    /// character): an attribute's quotes go through [`Out::quote`].
    fn mark(&mut self, s: &str);
    /// The quote around an attribute value.
    fn quote(&mut self);
    /// Document content, already valid XML where it stands (escaped text, a
    /// CDATA part): JSON escapes its quotes, backslashes and controls.
    fn content(&mut self, s: &str);
    /// A part of the document that differs from bid to bid, written by
    /// `fill`. A [`Recorder`] leaves it out and notes where it goes: the
    /// rest is the creative's [`VastTemplate`].
    fn hole<F: FnOnce(&mut Self)>(&mut self, _hole: Hole, fill: F)
    where
        Self: Sized,
    {
        fill(self)
    }
}

struct Plain<'a>(&'a mut String);

impl Out for Plain<'_> {
    fn mark(&mut self, s: &str) {
        self.0.push_str(s);
    }

    fn quote(&mut self) {
        self.0.push('"');
    }

    fn content(&mut self, s: &str) {
        self.0.push_str(s);
    }
}

struct InJson<'a>(&'a mut String);

impl Out for InJson<'_> {
    fn mark(&mut self, s: &str) {
        debug_assert!(
            !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\'),
            "markup JSON would escape: {s:?}"
        );
        self.0.push_str(s);
    }

    fn quote(&mut self) {
        self.0.push_str("\\\"");
    }

    fn content(&mut self, s: &str) {
        crate::banner::escape_json(s, self.0);
    }
}

fn write_document(o: &mut impl Out, v: &Vast<'_>) {
    let version = v.version;
    let audio = matches!(v.creative.kind, CreativeKind::Audio { .. });
    o.mark("<?xml version=");
    o.quote();
    o.mark("1.0");
    o.quote();
    o.mark(" encoding=");
    o.quote();
    o.mark("UTF-8");
    o.quote();
    o.mark("?>");
    let root = [
        (attr!("version"), version.as_str()),
        (attr!("xmlns"), VAST_4_NAMESPACE),
    ];
    let root = &root[..1 + usize::from(version.is_4x())];
    element(o, tag!("VAST"), root, |o| {
        // `element` with the id's value a hole: the bid id.
        o.mark(concat!("<Ad", attr!("id")));
        o.quote();
        o.hole(Hole::AdId, |o| ad_id_attr(o, v.ad_id));
        o.quote();
        if audio && version >= VastVersion::V4_1 {
            o.mark(attr!("adType"));
            o.quote();
            o.mark("audio");
            o.quote();
        }
        o.mark(">");
        element(o, tag!("InLine"), &[], |o| inline(o, v));
        o.mark("</Ad>");
    })
}

fn inline(o: &mut impl Out, v: &Vast<'_>) {
    text_element(o, tag!("AdSystem"), v.ad_system);
    if v.version.is_4x() {
        impression(o, v.impression_url);
        if v.version >= VastVersion::V4_1 {
            element(o, tag!("AdServingId"), &[], |o| {
                o.hole(Hole::AdServingId, |o| ad_serving_id(o, v.ad_id))
            });
        }
        text_element(o, tag!("AdTitle"), v.ad_title);
    } else {
        text_element(o, tag!("AdTitle"), v.ad_title);
        impression(o, v.impression_url);
    }
    element(o, tag!("Creatives"), &[], |o| {
        linear_creative(o, v);
        o.hole(Hole::Companion, |o| {
            if let Some(companion) = &v.companion {
                companion_creative(o, v, companion);
            }
        });
    })
}

fn linear_creative<O: Out>(o: &mut O, v: &Vast<'_>) {
    let version = v.version;
    let (duration_s, all_media, audio) = match &v.creative.kind {
        CreativeKind::Video { duration_s, media } => (*duration_s, &media[..], false),
        CreativeKind::Audio { duration_s, media } => (*duration_s, &media[..], true),
        CreativeKind::Display { .. } | CreativeKind::Native(_) => (0, &[][..], false),
    };
    let media = |o: &mut O| {
        o.hole(Hole::Media, |o| {
            let every: Vec<&MediaFile>;
            let media: &[&MediaFile] = if v.media.is_empty() {
                every = all_media.iter().collect();
                &every
            } else {
                v.media
            };
            media_files(o, media, audio)
        })
    };
    let duration = format_duration(duration_s, version);
    creative(o, version, &v.creative.id, |o| {
        element(o, tag!("Linear"), &[], |o| {
            if version.is_4x() {
                tracking_events(o, v.tracking, &LINEAR_EVENTS);
                text_element(o, tag!("Duration"), &duration);
                media(o);
                if !audio {
                    video_clicks(o, v);
                }
            } else {
                text_element(o, tag!("Duration"), &duration);
                tracking_events(o, v.tracking, &LINEAR_EVENTS);
                if !audio {
                    video_clicks(o, v);
                }
                media(o);
            }
        })
    })
}

fn companion_creative(o: &mut impl Out, v: &Vast<'_>, c: &Companion<'_>) {
    let CreativeKind::Display {
        w: width,
        h: height,
        image_url,
    } = &c.creative.kind
    else {
        return;
    };
    let version = v.version;
    let id = xml_text(&c.creative.id);
    let (mut w_text, mut h_text) = (itoa::Buffer::new(), itoa::Buffer::new());
    let (width, height) = (w_text.format(*width), h_text.format(*height));
    creative(o, version, &c.creative.id, |o| {
        let ads = [(attr!("required"), "all")];
        let ads = &ads[..usize::from(c.required && version >= VastVersion::V3_0)];
        element(o, tag!("CompanionAds"), ads, |o| {
            let companion = [
                (attr!("id"), &*id),
                (attr!("width"), width),
                (attr!("height"), height),
            ];
            element(o, tag!("Companion"), &companion, |o| {
                url_element(
                    o,
                    tag!("StaticResource"),
                    &[(attr!("creativeType"), image_mime(image_url))],
                    image_url,
                );
                let click = &c.creative.click_url;
                if version.is_4x() {
                    url_element(o, tag!("CompanionClickThrough"), &[], click);
                    o.hole(Hole::CompanionClickTracking, |o| {
                        companion_click_tracking(o, &id, c.click_tracking_url, false)
                    });
                    tracking_events(o, v.tracking, &[COMPANION_EVENT]);
                } else {
                    tracking_events(o, v.tracking, &[COMPANION_EVENT]);
                    url_element(o, tag!("CompanionClickThrough"), &[], click);
                }
            })
        })
    })
}

/// `<Creative id=…>` around `inner`, closed by the `UniversalAdId` that
/// VAST 4.x requires as the last child of every creative.
fn creative<O: Out>(o: &mut O, version: VastVersion, id: &str, inner: impl FnOnce(&mut O)) {
    let id = xml_text(id);
    element(o, tag!("Creative"), &[(attr!("id"), &id)], |o| {
        inner(o);
        if version.is_4x() {
            universal_ad_id(o, version, &id);
        }
    })
}

fn tracking_events(o: &mut impl Out, urls: EventUrls<'_>, events: &'static [&'static str]) {
    element(o, tag!("TrackingEvents"), &[], |o| {
        // Room for a signed tracking URL and then some: the events' URLs
        // differ in length, and growing it per event was a reallocation.
        let mut url = String::with_capacity(512);
        for event in events {
            // The element's tags are the template's; only the URL is the
            // bid's.
            element(o, tag!("Tracking"), &[(attr!("event"), event)], |o| {
                o.hole(Hole::Event(event), |o| {
                    url.clear();
                    (urls.0)(event, &mut url);
                    url_cdata(o, &url)
                })
            });
        }
    })
}

fn video_clicks(o: &mut impl Out, v: &Vast<'_>) {
    let through = &v.creative.click_url;
    element(o, tag!("VideoClicks"), &[], |o| {
        if v.version.is_4x() {
            o.hole(Hole::ClickTracking, |o| {
                click_tracking(o, v.click_tracking_url, false)
            });
            url_element(o, tag!("ClickThrough"), &[], through);
        } else {
            url_element(o, tag!("ClickThrough"), &[], through);
            o.hole(Hole::ClickTracking, |o| {
                click_tracking(o, v.click_tracking_url, false)
            });
        }
    })
}

fn media_files(o: &mut impl Out, media: &[&MediaFile], audio: bool) {
    if media.is_empty() {
        return;
    }
    element(o, tag!("MediaFiles"), &[], |o| {
        for file in media {
            media_file(o, file, audio);
        }
    })
}

fn media_file(o: &mut impl Out, file: &MediaFile, audio: bool) {
    // Every XSD requires width and height; audio has no picture.
    let (width, height) = if audio {
        (0, 0)
    } else {
        (file.width.unwrap_or(0), file.height.unwrap_or(0))
    };
    let (mut w_text, mut h_text, mut b_text) = (
        itoa::Buffer::new(),
        itoa::Buffer::new(),
        itoa::Buffer::new(),
    );
    let (width, height) = (w_text.format(width), h_text.format(height));
    let bitrate = file.bitrate_kbps.map(|b| b_text.format(b));
    let mime = xml_text(&file.mime);
    let mut attrs: [(&str, &str); 5] = [
        (attr!("delivery"), "progressive"),
        (attr!("type"), &mime),
        (attr!("width"), width),
        (attr!("height"), height),
        ("", ""),
    ];
    let count = match &bitrate {
        Some(b) => {
            attrs[4] = (attr!("bitrate"), b);
            5
        }
        None => 4,
    };
    url_element(o, tag!("MediaFile"), &attrs[..count], &file.url);
}

// What each hole holds: one function each, called by the writer and by a
// template's `write_json` alike, so that the two cannot write it apart.

fn ad_id_attr(o: &mut impl Out, ad_id: &str) {
    escaped::<true>(o, &xml_text(ad_id));
}

fn ad_serving_id(o: &mut impl Out, ad_id: &str) {
    escaped::<false>(o, &xml_text(ad_id));
}

/// The element's tags are the template's; only the URL is the bid's.
fn impression(o: &mut impl Out, url: &str) {
    element(o, tag!("Impression"), &[], |o| {
        o.hole(Hole::Impression, |o| url_cdata(o, url))
    });
}

/// The URL of `event` as a template's hole has it (the element's tags are
/// the template's). `url`: a buffer for it, reused across events, where
/// the bid's URLs need a scan.
fn event_url(o: &mut InJson<'_>, bid: &VastBid<'_>, event: &str, url: &mut String) {
    if bid.plain_urls {
        o.mark("<![CDATA[");
        let start = o.0.len();
        (bid.tracking.0)(event, o.0);
        // Taken on the caller's word in release builds; a word that is
        // wrong fails the tests here rather than writing broken XML.
        debug_assert!(
            o.0.get(start..).is_some_and(url_is_plain),
            "an event URL called plain is not"
        );
        o.mark("]]>");
    } else {
        url.clear();
        (bid.tracking.0)(event, url);
        url_cdata(o, url);
    }
}

/// A URL of the bidder's own, in a CDATA section: as it is when `plain`
/// (see [`VastBid::plain_urls`]), scanned otherwise.
fn own_url(o: &mut impl Out, url: &str, plain: bool) {
    if plain {
        debug_assert!(url_is_plain(url), "a URL called plain is not: {url}");
        o.mark("<![CDATA[");
        o.mark(url);
        o.mark("]]>");
    } else {
        url_cdata(o, url);
    }
}

/// `plain`: as for [`own_url`].
fn click_tracking(o: &mut impl Out, url: Option<&str>, plain: bool) {
    if let Some(url) = url {
        element(o, tag!("ClickTracking"), &[], |o| own_url(o, url, plain));
    }
}

/// `id`: the companion's id as [`xml_text`] makes it; `plain`: as for
/// [`own_url`].
fn companion_click_tracking(o: &mut impl Out, id: &str, url: Option<&str>, plain: bool) {
    if let Some(url) = url {
        element(
            o,
            tag!("CompanionClickTracking"),
            &[(attr!("id"), id)],
            |o| own_url(o, url, plain),
        );
    }
}

fn universal_ad_id(o: &mut impl Out, version: VastVersion, id: &str) {
    let attrs = [(attr!("idRegistry"), "unknown"), (attr!("idValue"), id)];
    let attrs = &attrs[..1 + usize::from(version == VastVersion::V4_0)];
    element(o, tag!("UniversalAdId"), attrs, |o| escaped::<false>(o, id))
}

/// An element's name, with the text of its tags made at compile time
/// ([`tag!`]): a tag written as `<`, the name and `>` apart was three
/// appends, some 140 more a video bid.
#[derive(Clone, Copy)]
struct Tag {
    /// `<name`, before attributes.
    open: &'static str,
    /// `<name>`, the start tag without attributes.
    start: &'static str,
    /// `</name>`.
    end: &'static str,
}

/// The [`Tag`] of an element named by a literal.
macro_rules! tag {
    ($name:literal) => {
        Tag {
            open: concat!("<", $name),
            start: concat!("<", $name, ">"),
            end: concat!("</", $name, ">"),
        }
    };
}
use tag;

/// An attribute's name as written before its quoted value: ` name=`, one
/// append where it was three.
macro_rules! attr {
    ($name:literal) => {
        concat!(" ", $name, "=")
    };
}
use attr;

/// Whether a URL with `b` in it may be changed by `xml_url`, `cdata` or
/// JSON's escaping, so [`url_element`] must take the long way.
///
/// Wider than it needs to be, in two ranges: everything up to `%`
/// (controls, space, `"`, `#`, `%`, and `!` and `$` with them) and `[` to
/// `]` (the backslash between). A URL with `!` or `$` takes the long way and comes
/// out the same; the rest of the bidder's URLs take half the vector
/// operations a block (seven where there were fifteen).
#[inline(always)]
fn url_needs_a_look(b: u8) -> bool {
    (b <= b'%') | (b.wrapping_sub(b'[') <= b']' - b'[') | (b == 0xEF)
}

/// `<name>text</name>`, the text escaped.
fn text_element(o: &mut impl Out, tag: Tag, text: &str) {
    element(o, tag, &[], |o| escaped::<false>(o, &xml_text(text)))
}

/// `<name attrs…><![CDATA[url]]></name>`.
fn url_element(o: &mut impl Out, tag: Tag, attrs: &[(&str, &str)], url: &str) {
    element(o, tag, attrs, |o| url_cdata(o, url))
}

/// Whether `url` goes into a VAST document as it is: no byte in it that
/// `xml_url`, `cdata` or JSON's escaping would change. What a caller
/// checks [`VastBid::plain_urls`] with; a URL made of plain pieces is
/// plain (the test is byte by byte).
pub fn url_is_plain(url: &str) -> bool {
    !crate::swar::any_byte(url.as_bytes(), url_needs_a_look)
}

/// `<![CDATA[url]]>`, the URL made fit for it.
fn url_cdata(o: &mut impl Out, url: &str) {
    // Nearly every URL (the bidder's own tracking URLs among them) has no
    // byte that `xml_url`, `cdata` or JSON would change: one scan for all
    // of them, where the three passes cost a video bid some 10k
    // instructions. What it finds goes the whole way.
    if url_is_plain(url) {
        o.mark("<![CDATA[");
        o.mark(url);
        o.mark("]]>");
        return;
    }
    cdata(o, &xml_url(url))
}

/// The start tag, what `inner` writes, and the end tag. Attribute values
/// are escaped; the tag and the attribute names ([`attr!`]) are ours.
fn element<O: Out>(o: &mut O, tag: Tag, attrs: &[(&str, &str)], inner: impl FnOnce(&mut O)) {
    if attrs.is_empty() {
        o.mark(tag.start);
    } else {
        o.mark(tag.open);
        for (key, value) in attrs {
            o.mark(key);
            o.quote();
            escaped::<true>(o, value);
            o.quote();
        }
        o.mark(">");
    }
    inner(o);
    o.mark(tag.end);
}

/// `s` as text, or as an attribute value (`ATTR`): the five characters
/// XML predefines entities for are written as those entities, so the same
/// escaping serves text and either quote. A carriage return is written as a
/// character reference, which a parser keeps (a literal one it reads as a
/// line feed); in an attribute value tab and line feed are too, which a
/// parser would read there as spaces.
fn escaped<const ATTR: bool>(o: &mut impl Out, s: &str) {
    // Ids, titles and numbers: nearly always nothing to escape.
    let special = |b: u8| {
        (b == b'&')
            | (b == b'<')
            | (b == b'>')
            | (b == b'"')
            | (b == b'\'')
            | (b == b'\r')
            | (ATTR & ((b == b'\t') | (b == b'\n')))
    };
    // Nothing either escaping would touch: written as it is after one scan,
    // where XML's scan and then JSON's (`Out::content`) were two.
    if !crate::swar::any_byte(s.as_bytes(), |b| special(b) | (b < 0x20) | (b == b'\\')) {
        o.mark(s);
        return;
    }
    if !crate::swar::any_byte(s.as_bytes(), special) {
        o.content(s);
        return;
    }
    let mut from = 0;
    for (at, b) in s.bytes().enumerate() {
        let entity = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&apos;",
            b'\r' => "&#13;",
            b'\t' if ATTR => "&#9;",
            b'\n' if ATTR => "&#10;",
            _ => continue,
        };
        o.content(&s[from..at]);
        o.mark(entity);
        from = at + 1;
    }
    o.content(&s[from..]);
}

/// `s` in a CDATA section. A `]]>` inside would end it: the section is
/// closed between its `]]` and its `>`, and a new one opened.
fn cdata(o: &mut impl Out, s: &str) {
    o.mark("<![CDATA[");
    let mut from = 0;
    // A `]` is rare in a URL (`xml_url` encodes those after the host), and
    // looking for one costs less than setting up a substring search.
    if memchr::memchr(b']', s.as_bytes()).is_some() {
        for at in memchr::memmem::find_iter(s.as_bytes(), b"]]>") {
            o.content(&s[from..at + 2]);
            o.mark("]]><![CDATA[");
            from = at + 2;
        }
    }
    o.content(&s[from..]);
    o.mark("]]>");
}

/// `HH:MM:SS` for 2.0, `HH:MM:SS.mmm` from 3.0 on.
fn format_duration(seconds: u32, version: VastVersion) -> String {
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    // By hand: `format!` cost over a thousand instructions a VAST bid.
    let mut out = String::with_capacity(16);
    if h < 10 {
        out.push('0');
    }
    out.push_str(itoa::Buffer::new().format(h));
    for two in [m, s] {
        out.push(':');
        out.push(char::from(b'0' + (two / 10) as u8));
        out.push(char::from(b'0' + (two % 10) as u8));
    }
    if version >= VastVersion::V3_0 {
        out.push_str(".000");
    }
    out
}

/// Whether XML 1.0 can carry `c` at all (its `Char` production).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Text without the characters XML 1.0 cannot carry.
fn xml_text(s: &str) -> Cow<'_, str> {
    // Fast path: only ASCII controls and U+FFFE/U+FFFF (lead byte 0xEF) can
    // be outside XML's characters.
    let suspect = |b: &u8| (*b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || *b == 0xEF;
    if !s.as_bytes().iter().any(suspect) || s.chars().all(is_xml_char) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.chars().filter(|&c| is_xml_char(c)).collect())
    }
}

/// Whether any byte is one [`xml_url`] may have to encode. A VAST document
/// carries a dozen URLs of a few hundred bytes, nearly always with none of
/// these: a block scan the compiler turns into vector compares (eight bytes
/// at a time in general-purpose registers cost a video bid 2.8k
/// instructions more).
fn any_url_suspect(bytes: &[u8]) -> bool {
    crate::swar::any_byte(bytes, url_suspect)
}

/// A byte [`xml_url`] may have to encode: a space or below, `[`, `]`, `%`,
/// `#`, or 0xEF. Plain comparisons, so that scans over it vectorize.
#[inline(always)]
fn url_suspect(b: u8) -> bool {
    (b <= b' ') | (b == b'[') | (b == b']') | (b == b'%') | (b == b'#') | (b == 0xEF)
}

/// A URL as a valid `xs:anyURI`: percent-encoded where it has whitespace or
/// characters XML cannot carry, and where strict validators (libxml2's, as
/// used by `xmllint`) reject what browsers would send encoded anyway: `[`
/// and `]` after the host (so VAST player macros such as `[TIMESTAMP]` are
/// not left for the player to fill: URLs come ready to use), a `%` not
/// followed by two hex digits, and a second `#`. Anything else (`{`, `}`,
/// `$`, `<`, `&`, non-ASCII letters, …) is left as it is, so exchange macros
/// such as `${AUCTION_PRICE}` survive.
fn xml_url(s: &str) -> Cow<'_, str> {
    // Fast path: every character the loop below may encode is ASCII, or
    // U+FFFE/U+FFFF (lead byte 0xEF).
    if !any_url_suspect(s.as_bytes()) {
        return Cow::Borrowed(s);
    }
    // Brackets are allowed in the host, for IPv6 literals.
    let host_end = s.find("://").map_or(0, |i| {
        let host = i + 3;
        host + s[host..].find(['/', '?', '#']).unwrap_or(s.len() - host)
    });
    let mut out: Option<String> = None;
    let mut in_fragment = false;
    for (i, c) in s.char_indices() {
        let encode = match c {
            '[' | ']' => i >= host_end,
            '%' => {
                let next = s.as_bytes().get(i + 1..i + 3);
                !next.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
            }
            '#' => std::mem::replace(&mut in_fragment, true),
            c => c.is_ascii_whitespace() || !is_xml_char(c),
        };
        match (&mut out, encode) {
            (Some(out), false) => out.push(c),
            (None, false) => {}
            (out, true) => {
                let out = out.get_or_insert_with(|| {
                    let mut o = String::with_capacity(s.len() + 16);
                    o.push_str(&s[..i]);
                    o
                });
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push('%');
                    out.push(char::from(HEX[usize::from(b >> 4)]));
                    out.push(char::from(HEX[usize::from(b & 15)]));
                }
            }
        }
    }
    out.map_or(Cow::Borrowed(s), Cow::Owned)
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

#[cfg(test)]
mod tests {
    /// `url_element`'s one scan looks closer at every byte the long way
    /// may change, and what it looks at for nothing comes out unchanged.
    #[test]
    fn a_url_is_looked_at_where_anything_may_change_it() {
        for b in 0..=255u8 {
            if url_suspect(b) || b == b'"' || b == b'\\' {
                assert!(url_needs_a_look(b), "{b:#x}");
            }
        }
        // What the wider test sends the long way for nothing comes out as
        // it went in.
        for url in [
            "https://t.example/a!b$c",
            "https://t.example/x?q=${AUCTION_PRICE}",
        ] {
            let want = format!("<Impression><![CDATA[{url}]]></Impression>");
            let mut o = String::new();
            url_element(&mut Plain(&mut o), tag!("Impression"), &[], url);
            assert_eq!(o, want);
            o.clear();
            url_element(&mut InJson(&mut o), tag!("Impression"), &[], url);
            assert_eq!(o, want);
        }
    }

    /// The block scan says yes exactly when a byte-wise test does, for any
    /// pair of bytes in a short text, and across and after a block's end.
    #[test]
    fn url_suspects_are_found_block_by_block_as_byte_by_byte() {
        let suspect = |b: &u8| *b <= b' ' || matches!(b, b'[' | b']' | b'%' | b'#' | 0xEF);
        let places = |len: usize| match len {
            11 => (0..10).collect::<Vec<_>>(),
            _ => vec![0, 1, 15, 30, 31, 32, 33],
        };
        for len in [11, 35] {
            for p in places(len) {
                for x in 0..=255u8 {
                    for y in 0..=255u8 {
                        let mut bytes = vec![b'a'; len];
                        bytes[p] = x;
                        bytes[p + 1] = y;
                        assert_eq!(
                            any_url_suspect(&bytes),
                            bytes.iter().any(suspect),
                            "{bytes:?}"
                        );
                    }
                }
            }
        }
    }

    use super::*;

    use config::MediaFile;
    use proptest::prelude::*;

    /// Text made of the pieces that need care somewhere: XML's five
    /// specials, CDATA's end marker, JSON's quote, backslash and controls,
    /// characters XML cannot carry, and plain URL text.
    fn awkward() -> impl Strategy<Value = String> {
        const PIECES: [&str; 22] = [
            "a",
            "]]>",
            "]",
            ">",
            "\"",
            "'",
            "&",
            "<",
            "\\",
            "\u{1}",
            "\t",
            "\n",
            "\r",
            "é",
            "\u{FFFE}",
            "%",
            "%2F",
            "#",
            "[",
            " ",
            "://",
            "https://x.example/p?a=1&b=2",
        ];
        proptest::collection::vec(proptest::sample::select(&PIECES[..]), 0..12)
            .prop_map(|v| v.concat())
    }

    /// Text of the pieces a bidder's own URLs are made of: nothing in it
    /// that any pass would change.
    fn plain() -> impl Strategy<Value = String> {
        const PIECES: [&str; 8] = [
            "https://x.example/p?a=1&b=2",
            "a",
            "&f=AZ_-",
            "/",
            "?",
            "=",
            "~.",
            "\u{e9}",
        ];
        proptest::collection::vec(proptest::sample::select(&PIECES[..]), 0..8)
            .prop_map(|v| v.concat())
    }

    /// A rendition of `size` pixels wide (half as high) at `size` kbit/s.
    fn rendition(url: &str, mime: &str, size: Option<u32>) -> MediaFile {
        MediaFile {
            url: url.into(),
            mime: mime.into(),
            width: size,
            height: size.map(|h| h / 2),
            bitrate_kbps: size,
        }
    }

    fn creative(id: String, kind: CreativeKind, click_url: String) -> Creative {
        Creative {
            id,
            at: Default::default(),
            kind,
            click_url,
            companions: vec![],
            companion_required: false,
            attributes: vec![],
            language: None,
        }
    }

    proptest! {
        /// A URL taken whole by `url_element`'s one scan is written as the
        /// three passes it skips (`xml_url`, `cdata`, JSON's escaping)
        /// would write it, in either form.
        #[test]
        fn plain_urls_are_written_as_the_passes_would(url in awkward()) {
            let (mut fast, mut slow) = (String::new(), String::new());
            url_element(&mut Plain(&mut fast), tag!("T"), &[], &url);
            element(&mut Plain(&mut slow), tag!("T"), &[], |o| cdata(o, &xml_url(&url)));
            prop_assert_eq!(&fast, &slow);
            let (mut fast, mut slow) = (String::new(), String::new());
            url_element(&mut InJson(&mut fast), tag!("T"), &[], &url);
            element(&mut InJson(&mut slow), tag!("T"), &[], |o| cdata(o, &xml_url(&url)));
            prop_assert_eq!(&fast, &slow);
        }

        /// The document written into a JSON string is, read back as JSON,
        /// the document written as a string: the two ways out escape for
        /// JSON and nothing else, whatever the text, URLs and version.
        #[test]
        fn json_form_is_the_document_escaped(
            version in proptest::sample::select(&VastVersion::ALL[..]),
            audio in any::<bool>(),
            companion in 0..3u8,
            ids in proptest::collection::vec(awkward(), 3),
            urls in proptest::collection::vec(awkward(), 8),
            size in proptest::option::of(0u32..5000),
            listed in any::<bool>(),
        ) {
            let file = |url: &str, mime: &str| rendition(url, mime, size);
            let media = vec![file(&urls[0], &ids[2]), file(&urls[7], "video/mp4")];
            let picked = [&media[1]];
            let kind = if audio {
                CreativeKind::Audio { duration_s: 30, media: media.clone() }
            } else {
                CreativeKind::Video { duration_s: 15, media: media.clone() }
            };
            let main = creative(ids[0].clone(), kind, urls[1].clone());
            let display = CreativeKind::Display { w: 300, h: 250, image_url: urls[2].clone() };
            let side = creative(ids[1].clone(), display, urls[3].clone());
            let event = |e: &str, out: &mut String| {
                out.push_str(&urls[4]);
                out.push_str(e);
            };
            let v = Vast {
                version,
                ad_id: &ids[0],
                ad_system: &ids[1],
                ad_title: &ids[2],
                creative: &main,
                media: if listed { &picked } else { &[] },
                impression_url: &urls[5],
                tracking: EventUrls(&event),
                click_tracking_url: Some(&urls[6]),
                companion: (companion > 0).then_some(Companion {
                    creative: &side,
                    required: companion == 2,
                    click_tracking_url: (companion == 2).then_some(urls[7].as_str()),
                }),
            };
            let xml = vast_xml(&v);
            let mut json = String::new();
            vast_json(&v, &mut json);
            let mut escaped = String::new();
            crate::push_json_str(&mut escaped, &xml);
            prop_assert_eq!(&json, &escaped);
            prop_assert_eq!(serde_json::from_str::<String>(&json).unwrap(), xml);
        }
    }

    proptest! {
        /// A template filled with a bid's values is the document the writer
        /// writes with them, byte for byte: every version, video and audio,
        /// with and without a companion (required or not) and click
        /// tracking, renditions picked or all, and awkward text anywhere.
        #[test]
        fn templates_write_what_the_writer_writes(
            version in proptest::sample::select(&VastVersion::ALL[..]),
            audio in any::<bool>(),
            companion in 0..3u8,
            click in any::<bool>(),
            ids in proptest::collection::vec(awkward(), 3),
            urls in proptest::collection::vec(prop_oneof![awkward(), plain()], 8),
            claim_plain in any::<bool>(),
            size in proptest::option::of(0u32..5000),
            picked in proptest::collection::vec(0usize..4, 0..4),
            files in 0usize..4,
            display in any::<bool>(),
            side_click in any::<bool>(),
            duration in 0u32..200_000,
        ) {
            let file = |url: &str, mime: &str| rendition(url, mime, size);
            let media: Vec<MediaFile> = [file(&urls[0], &ids[2]), file(&urls[7], "video/mp4"), file(&urls[3], "audio/mp4")]
                .into_iter()
                .take(files)
                .collect();
            let kind = if audio {
                CreativeKind::Audio { duration_s: duration, media: media.clone() }
            } else {
                CreativeKind::Video { duration_s: duration, media: media.clone() }
            };
            let main = creative(ids[0].clone(), kind, urls[1].clone());
            // A companion that is not a display creative writes nothing.
            let side_kind = if display {
                CreativeKind::Display { w: 300, h: 250, image_url: urls[2].clone() }
            } else {
                CreativeKind::Video { duration_s: 5, media: vec![] }
            };
            let side = creative(ids[1].clone(), side_kind, urls[3].clone());
            let event = |e: &str, out: &mut String| {
                out.push_str(&urls[4]);
                out.push_str(e);
            };
            // The writer is given the renditions the creative has (the
            // bidder drops the rest), the template every index.
            let listed: Vec<&MediaFile> = picked.iter().filter_map(|&i| media.get(i)).collect();
            let (ad_id, system, title) = (&ids[2], &ids[1], &ids[0]);
            let companion_click = side_click.then_some(urls[7].as_str());
            let click = click.then_some(urls[6].as_str());
            let v = Vast {
                version,
                ad_id,
                ad_system: system,
                ad_title: title,
                creative: &main,
                media: &listed,
                impression_url: &urls[5],
                tracking: EventUrls(&event),
                click_tracking_url: click,
                companion: (companion > 0).then_some(Companion {
                    creative: &side,
                    required: companion == 2,
                    click_tracking_url: companion_click,
                }),
            };
            let mut written = String::new();
            vast_json(&v, &mut written);
            // The bidder's word that its URLs are plain, given only when
            // they are (event names are).
            let plain_urls = claim_plain
                && [&urls[4], &urls[5], &urls[6], &urls[7]]
                    .iter()
                    .all(|u| url_is_plain(u));
            let template = VastTemplate::new(version, system, title, &main);
            let side_template = CompanionTemplate::new(version, &side, companion == 2);
            let mut filled = String::new();
            template.write_json(
                &VastBid {
                    ad_id,
                    impression_url: &urls[5],
                    tracking: EventUrls(&event),
                    click_tracking_url: click,
                    renditions: &picked,
                    companion: (companion > 0).then_some((&side_template, companion_click)),
                    plain_urls,
                },
                &mut filled,
            );
            prop_assert_eq!(&filled, &written);
        }
    }

    #[test]
    fn durations() {
        assert_eq!(format_duration(15, VastVersion::V2_0), "00:00:15");
        assert_eq!(format_duration(15, VastVersion::V3_0), "00:00:15.000");
        for (seconds, text) in [
            (0, "00:00:00"),
            (59, "00:00:59"),
            (61, "00:01:01"),
            (3_599, "00:59:59"),
            (36_000, "10:00:00"),
            (360_061, "100:01:01"),
        ] {
            assert_eq!(format_duration(seconds, VastVersion::V2_0), text);
            assert_eq!(
                format_duration(seconds, VastVersion::V4_2),
                format!("{text}.000")
            );
        }
        assert_eq!(format_duration(3725, VastVersion::V4_2), "01:02:05.000");
        assert_eq!(format_duration(0, VastVersion::V4_0), "00:00:00.000");
    }

    #[test]
    fn unsafe_characters() {
        assert_eq!(xml_text("a\u{1}b\tc"), "ab\tc");
        assert!(matches!(xml_text("plain"), Cow::Borrowed(_)));
        assert_eq!(
            xml_url("https://x.example/a b\u{0}\n"),
            "https://x.example/a%20b%00%0A"
        );
        assert_eq!(
            xml_url("https://x.example/\u{FFFE}"),
            "https://x.example/%EF%BF%BE"
        );
        assert!(matches!(
            xml_url("https://x.example/é?a=1&b=<2>&p=${AUCTION_PRICE}%2F#f"),
            Cow::Borrowed(_)
        ));
        assert!(matches!(xml_url("https://[::1]:8080/a"), Cow::Borrowed(_)));
        assert_eq!(
            xml_url("https://[::1]/a?t=[TIMESTAMP]&p=50%&q=%zz&r=%2#x#y"),
            "https://[::1]/a?t=%5BTIMESTAMP%5D&p=50%25&q=%25zz&r=%252#x%23y"
        );
        assert_eq!(xml_url("about:[x]"), "about:%5Bx%5D");
        assert_eq!(xml_url("%"), "%25");
    }
}

//! Display creatives: a clickable image.

use config::{Creative, CreativeKind};

use crate::swar::{self, any_byte};

/// The creative's size, when it is a display creative.
pub fn display_size(creative: &Creative) -> Option<(u32, u32)> {
    match creative.kind {
        CreativeKind::Display { w, h, .. } => Some((w, h)),
        _ => None,
    }
}

/// Whether a display creative has exactly one of the offered sizes. A
/// fixed slot is a box: a creative of another size would be cropped or
/// leave a gap. A flexible slot (OpenRTB's `wratio`/`hratio`) offers the
/// sizes in its ratio, and takes them in markup that scales
/// ([`BannerLayout::Scaled`]).
pub fn fits_sizes(creative: &Creative, sizes: &[(u32, u32)]) -> bool {
    display_size(creative).is_some_and(|s| sizes.contains(&s))
}

/// The image types a banner slot may list that a creative's URL can say,
/// one bit each: a slot's `mimes` read once per imp ([`mime_mask`]) and a
/// creative's type once per config ([`display_image_bit`]) meet in one AND
/// per creative tried.
const IMAGE_TYPES: [&str; 5] = [
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/svg+xml",
];

/// A display creative's image type as a bit of [`IMAGE_TYPES`], from its
/// URL's extension; every bit for an extension that says nothing (a CDN's
/// `/img/123`): the type is unknown, not wrong, and such creatives bid
/// before slots' `mimes` were read.
pub fn display_image_bit(creative: &Creative) -> u8 {
    let CreativeKind::Display { image_url, .. } = &creative.kind else {
        return u8::MAX;
    };
    crate::vast::known_image_mime(image_url)
        .and_then(|mime| IMAGE_TYPES.iter().position(|t| *t == mime))
        .map_or(u8::MAX, |i| 1 << i)
}

/// The image types a slot's `banner.mimes` takes, as bits of
/// [`IMAGE_TYPES`] ("image/jpg" counts as "image/jpeg", "image/*" as all);
/// `None` when it names no image type (none at all, or only others such as
/// "text/html"): then it says nothing about our image, and any goes.
pub fn mime_mask<S: AsRef<str>>(mimes: &[S]) -> Option<u8> {
    if mimes.is_empty() {
        return None;
    }
    let mut mask = 0u8;
    for m in mimes {
        let m = m.as_ref().as_bytes();
        // The types as exchanges nearly always write them, matched whole
        // first: the general reading below cost a banner bid some 600
        // instructions for three of them.
        let exact = match m {
            b"image/png" => Some(0),
            b"image/jpeg" | b"image/jpg" => Some(1),
            b"image/gif" => Some(2),
            b"image/webp" => Some(3),
            b"image/svg+xml" => Some(4),
            _ => None,
        };
        if let Some(i) = exact {
            mask |= 1 << i;
            continue;
        }
        // As `same_mime` reads one, each listed type cut and trimmed once
        // (through `str::split` per pair it cost a banner bid 3,000
        // instructions).
        let m = m.iter().position(|&b| b == b';').map_or(m, |at| &m[..at]);
        let m = m.trim_ascii();
        if m.eq_ignore_ascii_case(b"image/jpg") {
            mask |= 1 << 1;
            continue;
        }
        if m.eq_ignore_ascii_case(b"image/*") {
            return None;
        }
        if let Some(i) = IMAGE_TYPES
            .iter()
            .position(|t| t.as_bytes().eq_ignore_ascii_case(m))
        {
            mask |= 1 << i;
        }
    }
    (mask != 0).then_some(mask)
}

/// How a banner's image takes its slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BannerLayout {
    /// At its own size: the slot is a box of that size.
    Fixed,
    /// As wide as the slot, its height following: a flexible slot (a
    /// format given as `wratio`/`hratio`) is as wide as the page makes it,
    /// at least its `wmin`, in the creative's ratio. The image keeps its
    /// `width` and `height` attributes, which tell the browser its ratio
    /// before it loads.
    Scaled,
}

impl BannerLayout {
    /// The image's `style`, as written into its attribute.
    fn style(self) -> (&'static str, &'static str) {
        match self {
            BannerLayout::Fixed => (
                r#"" alt="" style="border:0;display:block"></a>"#,
                r#"\" alt=\"\" style=\"border:0;display:block\"></a>"#,
            ),
            BannerLayout::Scaled => (
                r#"" alt="" style="border:0;display:block;width:100%;height:auto"></a>"#,
                r#"\" alt=\"\" style=\"border:0;display:block;width:100%;height:auto\"></a>"#,
            ),
        }
    }
}

/// The `adm` of a display creative: its image inside a link to the click
/// URL, opening in a new window.
pub fn banner_html(creative: &Creative) -> Option<String> {
    banner_html_tracked(creative, BannerLayout::Fixed, &creative.click_url, None)
}

/// As [`banner_html`], the link going to `href` (the bidder's click
/// tracker, which redirects to the creative's click URL) and, when given,
/// a 1x1 impression `pixel` after the image.
pub fn banner_html_tracked(
    creative: &Creative,
    layout: BannerLayout,
    href: &str,
    pixel: Option<&str>,
) -> Option<String> {
    let CreativeKind::Display { image_url, .. } = &creative.kind else {
        return None;
    };
    let mut out =
        String::with_capacity(240 + image_url.len() + href.len() + pixel.map_or(0, str::len));
    let pixel = pixel.map(|p| move |o: &mut String| escape_attr(p, o));
    write_banner(
        &mut Html(&mut out),
        creative,
        layout,
        &|o| escape_attr(href, o),
        pixel.as_ref().map(|p| p as &dyn Fn(&mut String)),
    )
    .then_some(out)
}

/// [`banner_html_tracked`] as a JSON string literal, quotes included,
/// written onto `out`: the markup is escaped for its attributes and for
/// JSON in one pass, with no string of its own. `false` (and nothing
/// written) for a creative that is not display. A bid copies its
/// [`BannerTemplate`] instead; this is the template's reference.
pub fn banner_json_tracked(
    creative: &Creative,
    layout: BannerLayout,
    href: &str,
    pixel: Option<&str>,
    out: &mut String,
) -> bool {
    if !matches!(creative.kind, CreativeKind::Display { .. }) {
        return false;
    }
    let pixel = pixel.map(|p| move |o: &mut String| push_attr_in_json(p, o));
    out.push('"');
    write_banner(
        &mut Json(out),
        creative,
        layout,
        &|o| push_attr_in_json(href, o),
        pixel.as_ref().map(|p| p as &dyn Fn(&mut String)),
    );
    out.push('"');
    true
}

/// A display creative's markup with its link and pixel, as the inside of a
/// JSON string ([`banner_json_tracked`]'s), written once per config
/// load with the two places a bid's URLs go: a bid copies three pieces
/// around its URLs, where writing the markup escaped the image URL and
/// formatted the size on every bid (some 500 instructions).
#[derive(Clone, Debug)]
pub struct BannerTemplate {
    fixed: Filled,
    scaled: Filled,
}

/// One layout's markup and where the URLs go in it.
#[derive(Clone, Debug)]
struct Filled {
    json: String,
    /// Where the link's URL goes in `json`.
    href_at: usize,
    /// Where the pixel's URL goes in `json`.
    pixel_at: usize,
}

impl Filled {
    fn new(creative: &Creative, layout: BannerLayout) -> Option<Filled> {
        let mut json = String::new();
        let href_at = std::cell::Cell::new(0);
        let pixel_at = std::cell::Cell::new(0);
        write_banner(
            &mut Json(&mut json),
            creative,
            layout,
            &|o| href_at.set(o.len()),
            Some(&|o| pixel_at.set(o.len())),
        )
        .then(|| Filled {
            json,
            href_at: href_at.get(),
            pixel_at: pixel_at.get(),
        })
    }
}

impl BannerTemplate {
    /// `None` for a creative that is not display.
    pub fn new(creative: &Creative) -> Option<BannerTemplate> {
        Some(BannerTemplate {
            fixed: Filled::new(creative, BannerLayout::Fixed)?,
            scaled: Filled::new(creative, BannerLayout::Scaled)?,
        })
    }

    /// What [`banner_json_tracked`] writes for the creative in `layout`
    /// with `href` and `pixel` (each appending its URL escaped as
    /// [`push_attr_in_json`] would): the JSON string, quotes included.
    pub fn write_json(
        &self,
        layout: BannerLayout,
        href: &dyn Fn(&mut String),
        pixel: &dyn Fn(&mut String),
        out: &mut String,
    ) {
        let t = match layout {
            BannerLayout::Fixed => &self.fixed,
            BannerLayout::Scaled => &self.scaled,
        };
        let (head, rest) = t.json.split_at(t.href_at);
        let (middle, tail) = rest.split_at(t.pixel_at - t.href_at);
        out.push('"');
        out.push_str(head);
        href(out);
        out.push_str(middle);
        pixel(out);
        out.push_str(tail);
        out.push('"');
    }
}

/// Where markup goes: plain, or inside a JSON string.
trait Markup {
    /// Our own markup, as is: `html`, and the same as the inside of a JSON
    /// string, written out beforehand (escaping it per bid cost a byte-wise
    /// pass over every quote; the JSON property test holds the two alike).
    fn markup(&mut self, html: &str, json: &str);
    /// A value inside a double-quoted attribute.
    fn attr(&mut self, s: &str);
    fn number(&mut self, n: u32);
    /// Where a URL writer appends its attribute value, escaped for this
    /// form by the writer.
    fn out(&mut self) -> &mut String;
}

struct Html<'a>(&'a mut String);

impl Markup for Html<'_> {
    fn markup(&mut self, html: &str, _: &str) {
        self.0.push_str(html);
    }

    fn attr(&mut self, s: &str) {
        escape_attr(s, self.0);
    }

    fn number(&mut self, n: u32) {
        self.0.push_str(itoa::Buffer::new().format(n));
    }

    fn out(&mut self) -> &mut String {
        self.0
    }
}

struct Json<'a>(&'a mut String);

impl Markup for Json<'_> {
    fn markup(&mut self, _: &str, json: &str) {
        self.0.push_str(json);
    }

    fn attr(&mut self, s: &str) {
        push_attr_in_json(s, self.0);
    }

    fn number(&mut self, n: u32) {
        self.0.push_str(itoa::Buffer::new().format(n));
    }

    fn out(&mut self) -> &mut String {
        self.0
    }
}

/// `href` and `pixel` append their URLs escaped for `m`'s form.
fn write_banner(
    m: &mut impl Markup,
    creative: &Creative,
    layout: BannerLayout,
    href: &dyn Fn(&mut String),
    pixel: Option<&dyn Fn(&mut String)>,
) -> bool {
    let CreativeKind::Display { w, h, image_url } = &creative.kind else {
        return false;
    };
    m.markup(r#"<a href=""#, r#"<a href=\""#);
    href(m.out());
    m.markup(
        r#"" target="_blank" rel="noopener"><img src=""#,
        r#"\" target=\"_blank\" rel=\"noopener\"><img src=\""#,
    );
    m.attr(image_url);
    m.markup(r#"" width=""#, r#"\" width=\""#);
    m.number(*w);
    m.markup(r#"" height=""#, r#"\" height=\""#);
    m.number(*h);
    let (html, json) = layout.style();
    m.markup(html, json);
    if let Some(pixel) = pixel {
        // Out of the layout but loaded: browsers skip images that are
        // display:none only sometimes, never ones that are merely tiny.
        m.markup(r#"<img src=""#, r#"<img src=\""#);
        pixel(m.out());
        m.markup(
            r#"" width="1" height="1" alt="" style="position:absolute;width:1px;height:1px;border:0;left:-9999px">"#,
            r#"\" width=\"1\" height=\"1\" alt=\"\" style=\"position:absolute;width:1px;height:1px;border:0;left:-9999px\">"#,
        );
    }
    true
}

/// For each byte, how it is written instead of itself: 0 as is; 1 to 5 the
/// entity [`ENTITIES`]`[n - 1]`; otherwise the letter of a JSON escape
/// (`\n`, `\"`, ...), `u` for `\u00XX`. One table load per byte.
type Table = [u8; 256];

/// URLs come from account managers' YAML: a quote or angle bracket in one
/// must not break out of the attribute into the publisher's page.
const ENTITIES: [&str; 5] = ["&amp;", "&quot;", "&#39;", "&lt;", "&gt;"];

const fn entities(mut t: Table) -> Table {
    t[b'&' as usize] = 1;
    t[b'"' as usize] = 2;
    t[b'\'' as usize] = 3;
    t[b'<' as usize] = 4;
    t[b'>' as usize] = 5;
    t
}

/// serde_json's escapes: `\"`, `\\`, the short forms of five control
/// characters, `\u00XX` for the other control characters.
const fn json(mut t: Table) -> Table {
    let mut b = 0;
    while b < 0x20 {
        t[b] = b'u';
        b += 1;
    }
    t[0x08] = b'b';
    t[0x0c] = b'f';
    t[b'\n' as usize] = b'n';
    t[b'\r' as usize] = b'r';
    t[b'\t' as usize] = b't';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
}

const ATTR: Table = entities([0; 256]);
const JSON: Table = json([0; 256]);
/// An attribute inside JSON: the entities first (a quote is `&quot;`,
/// which needs no JSON escape), JSON's escapes for the rest.
const ATTR_IN_JSON: Table = entities(json([0; 256]));

/// Copies `s` onto `out`, bytes that `table` names written its way. Runs
/// of ordinary bytes are copied whole: every byte escaped is ASCII, so a
/// cut next to one is always between UTF-8 characters.
///
/// Eight bytes at a time are looked at: the tracking URLs in a banner run
/// to hundreds of bytes with an `&` every few, so the scan goes from one
/// byte that may need the table straight to the next (see [`candidates`]),
/// not through the bytes between one at a time.
fn escape<const MARKUP: bool>(s: &str, out: &mut String, table: &Table) {
    let bytes = s.as_bytes();
    let mut from = 0;
    let mut i = 0;
    while i < bytes.len() {
        let at = match bytes.get(i..i + 8) {
            Some(chunk) => {
                let hits = candidates::<MARKUP>(swar::word(chunk));
                if hits == 0 {
                    i += 8;
                    continue;
                }
                i + (hits.trailing_zeros() / 8) as usize
            }
            // The last few bytes, one at a time.
            None => i,
        };
        let b = bytes[at];
        let e = table[usize::from(b)];
        if e != 0 {
            out.push_str(&s[from..at]);
            push_escape(e, b, out);
            from = at + 1;
        }
        i = at + 1;
    }
    out.push_str(&s[from..]);
}

fn push_escape(e: u8, b: u8, out: &mut String) {
    match e {
        1..=5 => out.push_str(ENTITIES[usize::from(e - 1)]),
        b'u' => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
        letter => {
            out.push('\\');
            out.push(char::from(letter));
        }
    }
}

/// The bytes of a word that the table may escape (a [`swar`] mask, whose
/// lowest bit is exact): control characters, `"` and `\\` always; with
/// `MARKUP` also `&'<>`, which JSON alone leaves as they are (a VAST
/// document is full of them: without the distinction every tag was a stop).
fn candidates<const MARKUP: bool>(w: u64) -> u64 {
    use swar::eq;
    let json = swar::below(w, 0x20) | eq(w, b'"') | eq(w, b'\\');
    if MARKUP {
        json | eq(w, b'&') | eq(w, b'\'') | eq(w, b'<') | eq(w, b'>')
    } else {
        json
    }
}

/// An attribute inside JSON, as [`ATTR_IN_JSON`] escapes it, fast for the
/// text it nearly always is: our own tracking URLs, hundreds of bytes with
/// an `&` every few and none of the other bytes the table names. Whether
/// there are any of those is one pass of loops with no branch inside a
/// block (vector compares); then `memchr` finds each `&`. Anything else
/// goes through the table.
///
/// Byte by byte, so text escaped in pieces is the whole escaped: what
/// [`BannerTemplate::write_json`]'s callers rely on.
pub fn push_attr_in_json(s: &str, out: &mut String) {
    if has_markup_special(s.as_bytes()) {
        escape::<true>(s, out, &ATTR_IN_JSON);
        return;
    }
    let mut from = 0;
    for at in memchr::memchr_iter(b'&', s.as_bytes()) {
        out.push_str(&s[from..at]);
        out.push_str("&amp;");
        from = at + 1;
    }
    out.push_str(&s[from..]);
}

/// Whether `bytes` hold a byte that [`ATTR_IN_JSON`] escapes, `&` aside.
fn has_markup_special(bytes: &[u8]) -> bool {
    // Each comparison on its own, so that a block compiles to vector
    // compares (`matches!` became a bit test, a byte at a time).
    any_byte(bytes, |b| {
        (b < 0x20) | (b == b'"') | (b == b'\\') | (b == b'\'') | (b == b'<') | (b == b'>')
    })
}

fn escape_attr(s: &str, out: &mut String) {
    escape::<true>(s, out, &ATTR);
}

/// `s` as a JSON string literal, quotes included, exactly as serde_json
/// writes it, onto `out`: for markup written straight into a bid response
/// (VAST documents run to kilobytes).
pub fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    escape_json(s, out);
    out.push('"');
}

/// JSON's escaping, fast for text without control characters: a VAST
/// document runs to kilobytes with none and a quote every few dozen bytes.
/// Whether there are any is one pass of loops with no branch inside a
/// block, which compile to vector compares (a fraction of an instruction a
/// byte); then `memchr` finds each quote and backslash, which gets its
/// backslash. Text with a control character goes through the table.
pub(crate) fn escape_json(s: &str, out: &mut String) {
    // Short text (an id, a name, a number, a piece of VAST between its
    // escapes): one plain pass costs less than setting up the searches.
    if s.len() < 128 && !any_byte(s.as_bytes(), |b| (b < 0x20) | (b == b'"') | (b == b'\\')) {
        out.push_str(s);
        return;
    }
    if has_control(s.as_bytes()) {
        escape::<false>(s, out, &JSON);
        return;
    }
    let mut from = 0;
    for at in memchr::memchr2_iter(b'"', b'\\', s.as_bytes()) {
        out.push_str(&s[from..at]);
        out.push('\\');
        from = at;
    }
    // Each byte escaped starts the next run copied.
    out.push_str(&s[from..]);
}

fn has_control(bytes: &[u8]) -> bool {
    any_byte(bytes, |b| b < 0x20)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A slot's `mimes` against a creative's image type, as exchanges
    /// write them: "image/jpg", "image/*", parameters, any case; a list
    /// naming no image type, and an image of unknown type, refuse nothing.
    #[test]
    fn image_types_against_a_slots_mimes() {
        let jpg = display_image_bit(&display(1, 1, "https://a.example/x.JPG?v=2", "https://a"));
        let odd = display_image_bit(&display(1, 1, "https://a.example/x", "https://a"));
        let takes = |mimes: &[&str], bit: u8| mime_mask(mimes).is_none_or(|m| m & bit != 0);
        assert!(takes(&[], jpg) && takes(&[], odd));
        for listed in ["image/jpeg", "IMAGE/JPG", " image/jpeg ; q=1", "image/*"] {
            assert!(takes(&["image/gif", listed], jpg), "{listed}");
        }
        assert!(!takes(&["image/gif", "image/png"], jpg));
        // A list naming no image type says nothing about ours.
        assert!(takes(&["text/html", "application/javascript"], jpg));
        assert!(takes(&["", "1"], jpg));
        // An image of unknown type is not refused for it.
        assert!(takes(&["image/gif"], odd));
        // The whole-type shortcut and the general reading agree.
        for (i, t) in IMAGE_TYPES.iter().enumerate() {
            let upper = t.to_ascii_uppercase();
            for listed in [t.to_string(), upper, format!(" {t};x=1")] {
                assert_eq!(mime_mask(&[listed.as_str()]), Some(1 << i), "{listed}");
            }
        }
        assert_eq!(mime_mask(&["image/jpg"]), mime_mask(&["image/jpeg"]));
    }

    fn display(w: u32, h: u32, image: &str, click: &str) -> Creative {
        Creative {
            id: "c".into(),
            at: Default::default(),
            kind: CreativeKind::Display {
                w,
                h,
                image_url: image.into(),
            },
            click_url: click.into(),
            companions: vec![],
            companion_required: false,
            attributes: vec![],
            language: None,
        }
    }

    /// Any of the bytes either escaping touches, next to each other and to
    /// multi-byte characters, and between runs of ordinary bytes long
    /// enough for the eight-at-a-time scan (raw: the regex sees `\\` and
    /// `\x00`).
    const URLISH: &str =
        r#"(?s)([a-z0-9/?=.:]{0,12}[a-z&"'<>\\\x00-\x1f\x7fé😀\u{2028}/?=]{0,3}){0,6}"#;

    #[test]
    fn the_strategy_draws_every_kind_of_byte() {
        use proptest::strategy::{Strategy, ValueTree};
        let strategy = proptest::string::string_regex(URLISH).unwrap();
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let drawn: String = (0..500)
            .map(|_| strategy.new_tree(&mut runner).unwrap().current())
            .collect();
        for c in ['\\', '"', '&', '\u{0}', '\n', '\u{7f}', 'é', '\u{2028}'] {
            assert!(drawn.contains(c), "{c:?}");
        }
    }

    #[test]
    fn a_creative_that_is_not_display_writes_nothing() {
        let mut c = display(1, 1, "https://i.example/a.png", "https://c.example/");
        c.kind = CreativeKind::Audio {
            media: vec![],
            duration_s: 15,
        };
        let mut out = String::from("x");
        assert!(!banner_json_tracked(
            &c,
            BannerLayout::Fixed,
            "h",
            Some("p"),
            &mut out
        ));
        assert_eq!(out, "x");
        assert!(BannerTemplate::new(&c).is_none());
    }

    proptest::proptest! {
        /// The JSON form is exactly serde_json's literal of the markup, for
        /// any URLs: entities, quotes, backslashes, control and
        /// multi-byte characters next to each other.
        #[test]
        fn json_markup_is_the_markup_as_serde_json_writes_it(
            image in URLISH,
            href in URLISH,
            pixel in proptest::option::of(URLISH),
            w in 0u32..100_000,
            h in 0u32..100_000,
            scaled in proptest::bool::ANY,
        ) {
            let c = display(w, h, &image, "https://c.example/");
            let layout = if scaled { BannerLayout::Scaled } else { BannerLayout::Fixed };
            let html = banner_html_tracked(&c, layout, &href, pixel.as_deref()).unwrap();
            let mut json = String::from("x");
            proptest::prop_assert!(
                banner_json_tracked(&c, layout, &href, pixel.as_deref(), &mut json)
            );
            proptest::prop_assert_eq!(&json[1..], serde_json::to_string(&html).unwrap());
        }
    }

    proptest::proptest! {
        /// The template a config load writes gives a bid the markup that
        /// writing it whole gives, for any image URL and size.
        #[test]
        fn a_banner_template_writes_the_markup_written_whole(
            image in URLISH,
            href in URLISH,
            pixel in URLISH,
            w in 0u32..100_000,
            h in 0u32..100_000,
            scaled in proptest::bool::ANY,
        ) {
            let c = display(w, h, &image, "https://c.example/");
            let layout = if scaled { BannerLayout::Scaled } else { BannerLayout::Fixed };
            let mut whole = String::new();
            proptest::prop_assert!(
                banner_json_tracked(&c, layout, &href, Some(&pixel), &mut whole)
            );
            let template = BannerTemplate::new(&c).unwrap();
            let mut copied = String::new();
            template.write_json(
                layout,
                &|o| push_attr_in_json(&href, o),
                &|o| push_attr_in_json(&pixel, o),
                &mut copied,
            );
            proptest::prop_assert_eq!(copied, whole);
        }
    }

    proptest::proptest! {
        /// URLs whose only markup byte is `&` (the fast path) and URLs
        /// with one more special byte somewhere (the table), at lengths
        /// around the 32-byte blocks: both as the table writes them.
        #[test]
        fn url_attributes_in_json_are_the_tables(
            url in "[a-z0-9/?=.:%_-]{0,40}(&[a-z]{1,3}=[a-zA-Z0-9%._-]{0,30}){0,12}",
            special in proptest::option::of((0usize..500, "[\"'<>\\\\\\x00-\\x1f]")),
        ) {
            let mut url = url;
            if let Some((at, byte)) = special {
                let at = at % (url.len() + 1);
                url.insert_str(at, &byte);
            }
            let mut fast = String::new();
            push_attr_in_json(&url, &mut fast);
            let mut table = String::new();
            escape::<true>(&url, &mut table, &ATTR_IN_JSON);
            proptest::prop_assert_eq!(fast, table);
        }
    }

    proptest::proptest! {
        /// A JSON string literal of any text is serde_json's, with or
        /// without control characters (the two paths of `push_json_str`),
        /// at any length around the 32-byte blocks.
        #[test]
        fn json_strings_are_serde_jsons(text in "(?s)([a-z]{0,40}[\"\\\\\\x00-\\x1f\\x7fé😀]{0,2}){0,5}") {
            let mut out = String::new();
            push_json_str(&mut out, &text);
            proptest::prop_assert_eq!(out, serde_json::to_string(&text).unwrap());
        }
    }

    /// Every byte that needs escaping, at every place in and around the
    /// 32-byte blocks, among bytes that do not.
    #[test]
    fn each_escaped_byte_is_found_anywhere() {
        for len in [1, 31, 32, 33, 64, 100] {
            for at in 0..len {
                for b in [0u8, b'\n', 0x1f, b'"', b'\\', 0x20, 0x7f] {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = b;
                    let text = String::from_utf8(bytes).unwrap();
                    let mut out = String::new();
                    push_json_str(&mut out, &text);
                    assert_eq!(out, serde_json::to_string(&text).unwrap(), "{len} {at} {b}");
                }
            }
        }
    }

    #[test]
    fn fits_only_an_offered_size() {
        let c = display(300, 250, "https://i.example/a.png", "https://c.example/");
        assert!(fits_sizes(&c, &[(728, 90), (300, 250)]));
        assert!(!fits_sizes(&c, &[(728, 90), (250, 300)]));
        assert!(!fits_sizes(&c, &[]));
    }

    #[test]
    fn markup_is_a_clickable_image_with_escaped_urls() {
        let c = display(
            320,
            50,
            "https://i.example/a.png?x=1&y=\"2\"",
            "https://c.example/p?a=1&b=<2>",
        );
        let html = banner_html(&c).unwrap();
        assert_eq!(
            html,
            "<a href=\"https://c.example/p?a=1&amp;b=&lt;2&gt;\" target=\"_blank\" rel=\"noopener\">\
             <img src=\"https://i.example/a.png?x=1&amp;y=&quot;2&quot;\" width=\"320\" height=\"50\" \
             alt=\"\" style=\"border:0;display:block\"></a>"
        );
    }

    /// In a flexible slot the image takes the slot's width and its own
    /// ratio; its size attributes stay, for the browser's layout before
    /// it loads.
    #[test]
    fn scaled_markup_fills_the_slots_width() {
        let c = display(600, 500, "https://i.example/a.png", "https://c.example/");
        let html =
            banner_html_tracked(&c, BannerLayout::Scaled, "https://c.example/", None).unwrap();
        assert_eq!(
            html,
            "<a href=\"https://c.example/\" target=\"_blank\" rel=\"noopener\">\
             <img src=\"https://i.example/a.png\" width=\"600\" height=\"500\" \
             alt=\"\" style=\"border:0;display:block;width:100%;height:auto\"></a>"
        );
    }

    #[test]
    fn tracked_markup_links_to_the_tracker_and_carries_the_pixel() {
        let c = display(300, 250, "https://i.example/a.png", "https://c.example/");
        let html = banner_html_tracked(
            &c,
            BannerLayout::Fixed,
            "https://bidder.example/track/click?b=1&s=2",
            Some("https://bidder.example/track/impression?b=1&s=3"),
        )
        .unwrap();
        assert!(html.starts_with(
            "<a href=\"https://bidder.example/track/click?b=1&amp;s=2\" target=\"_blank\""
        ));
        assert!(!html.contains("https://c.example/"), "{html}");
        assert!(html.ends_with(
            "<img src=\"https://bidder.example/track/impression?b=1&amp;s=3\" width=\"1\" \
             height=\"1\" alt=\"\" style=\"position:absolute;width:1px;height:1px;border:0;\
             left:-9999px\">"
        ));
    }

    #[test]
    fn no_banner_markup_for_video() {
        let c = Creative {
            id: "v".into(),
            at: Default::default(),
            kind: CreativeKind::Video {
                duration_s: 15,
                media: vec![],
            },
            click_url: "https://c.example/".into(),
            companions: vec![],
            companion_required: false,
            attributes: vec![],
            language: None,
        };
        assert_eq!(display_size(&c), None);
        assert!(banner_html(&c).is_none());
    }

    /// The one character at a time escaping this replaced: the same
    /// output for any text, multi-byte characters next to escaped ones
    /// included.
    fn escape_by_char(s: &str) -> String {
        let mut out = String::new();
        for c in s.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&#39;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                c => out.push(c),
            }
        }
        out
    }

    /// `escape` jumps to the lowest candidate: it must be a byte some
    /// table escapes, and none may come before it, whatever the bytes
    /// around it (a borrow out of one byte is what could fake the next).
    #[test]
    fn the_lowest_candidate_is_always_the_first_special_byte() {
        let markup = |b: u8| b < 0x20 || b"\"&'<>\\".contains(&b);
        let json = |b: u8| b < 0x20 || b"\"\\".contains(&b);
        for p in 0..7 {
            for x in 0..=255u8 {
                for y in 0..=255u8 {
                    let mut word = [b'a'; 8];
                    word[p] = x;
                    word[p + 1] = y;
                    let w = u64::from_le_bytes(word);
                    for (hits, special) in [
                        (candidates::<true>(w), &markup as &dyn Fn(u8) -> bool),
                        (candidates::<false>(w), &json),
                    ] {
                        let first = word.iter().position(|&b| special(b));
                        let lowest = (hits != 0).then(|| (hits.trailing_zeros() / 8) as usize);
                        assert_eq!(lowest, first, "{word:?}");
                    }
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn escaping_runs_matches_escaping_chars(s in "([a-zé€😀/?=:. ]{0,15}[&\"'<>]?){0,5}") {
            let mut out = String::new();
            escape_attr(&s, &mut out);
            proptest::prop_assert_eq!(out, escape_by_char(&s));
        }
    }
}

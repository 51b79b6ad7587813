//! Impression, click and VAST event tracking: the URLs the bidder writes
//! into the ads it serves, reading them back when a browser or a player
//! calls, and counting each event of a bid once.
//!
//! A tracking URL carries its bid (id, line item, order, creative,
//! exchange, time, test flag) — not its price: these URLs sit in pages and
//! players anyone can read, and a bid price shown there would tell a
//! publisher how to price against us — then the keyword that matched (`k`, for the search-term report), who saw the ad
//! (`u`: a keyed hash of the user id, so that a later purchase can be
//! attributed to it without the URL showing the id; empty where privacy
//! signals forbid keeping data about the user, and under GDPR without
//! consent to measurement, TCF purpose 7), the audience that made the
//! line item eligible (`a`, for reports by audience; only when there is
//! one, so URLs written before it still read), on impression and click
//! URLs the features the bid was priced with (`f`, compact form, so that
//! `bidder train` learns from exactly what was scored; only when there
//! are some, so URLs written before it still read) and what the URL
//! is for: nothing more for an impression, `d` for a click (1: send the
//! browser on to the creative's click URL; 0: a beacon, as VAST and native
//! click trackers are), `ev` for a VAST event. The signature covers all of
//! it (see `notice.rs` for the two ways it is made) under a name of its own
//! (`track-impression`, `track-click`, `track-event`), so no tracking URL
//! can stand in for a notice or for another event. A click goes only to
//! the click URL the config gives its creative: the URL names no
//! destination, so it cannot be an open redirect. Tracking never charges.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use crate::notice::{self, Signer};

/// What a tracking URL reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    Impression,
    Click,
    Start,
    FirstQuartile,
    Midpoint,
    ThirdQuartile,
    Complete,
    /// The companion banner was shown.
    CreativeView,
}

impl Event {
    pub const ALL: [Event; 8] = [
        Event::Impression,
        Event::Click,
        Event::Start,
        Event::FirstQuartile,
        Event::Midpoint,
        Event::ThirdQuartile,
        Event::Complete,
        Event::CreativeView,
    ];

    /// The metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Impression => "impression",
            Event::Click => "click",
            Event::Start => "start",
            Event::FirstQuartile => "first_quartile",
            Event::Midpoint => "midpoint",
            Event::ThirdQuartile => "third_quartile",
            Event::Complete => "complete",
            Event::CreativeView => "creative_view",
        }
    }

    /// The VAST `Tracking@event` name of a player event.
    pub fn vast_name(self) -> Option<&'static str> {
        Some(match self {
            Event::Start => "start",
            Event::FirstQuartile => "firstQuartile",
            Event::Midpoint => "midpoint",
            Event::ThirdQuartile => "thirdQuartile",
            Event::Complete => "complete",
            Event::CreativeView => "creativeView",
            Event::Impression | Event::Click => return None,
        })
    }

    pub fn of_vast_name(name: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|e| e.vast_name() == Some(name))
    }

    fn code(self) -> u8 {
        self as u8
    }
}

/// The three tracking paths on the bid port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    Impression,
    Click,
    Event,
}

impl Path {
    pub fn of(path: &str) -> Option<Path> {
        Some(match path {
            "/track/impression" => Path::Impression,
            "/track/click" => Path::Click,
            "/track/event" => Path::Event,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Path::Impression => "/track/impression",
            Path::Click => "/track/click",
            Path::Event => "/track/event",
        }
    }

    /// What the signature is made under: `\n`, then its name.
    fn purpose(self) -> notice::Purpose {
        const IMPRESSION: notice::Purpose = notice::Purpose::new("\ntrack-impression");
        const CLICK: notice::Purpose = notice::Purpose::new("\ntrack-click");
        const EVENT: notice::Purpose = notice::Purpose::new("\ntrack-event");
        match self {
            Path::Impression => IMPRESSION,
            Path::Click => CLICK,
            Path::Event => EVENT,
        }
    }
}

/// The URL tail of a VAST event the VAST writer asks for, and the signed
/// message's ending with it (the tail, then [`Path::Event`]'s purpose), as
/// constants: an event URL's signature hashes its ending in one write,
/// where the tail's two pieces and the purpose were three, some 140
/// instructions an event and six events a video bid. Other names take the
/// general way; the same bytes either way.
fn event_ending(event: &str) -> Option<(&'static str, notice::Purpose)> {
    macro_rules! endings {
        ($($name:literal),*) => {
            match event {
                $($name => Some((
                    concat!("&ev=", $name),
                    const { notice::Purpose::new(concat!("&ev=", $name, "\ntrack-event")) },
                )),)*
                _ => None,
            }
        };
    }
    endings!(
        "start",
        "firstQuartile",
        "midpoint",
        "thirdQuartile",
        "complete",
        "creativeView"
    )
}

/// The signed parameters of a tracking URL, in order; then `a` when the
/// bid had an audience, then `f` on impressions and clicks whose bid had
/// features, then a tail (`d` or `ev`) for clicks and events.
const SIGNED: [&str; 9] = ["b", "li", "o", "c", "x", "ts", "t", "k", "u"];

/// Where the `&`s of a bid's signed tracking text are, noted as it is
/// written (the parameters' separators, and those of the snapshot's
/// `&li=…&o=…`). In a banner's markup each becomes `&amp;`, and nothing
/// else in that text needs escaping when its values are percent-encoded,
/// as the snapshot's are: copied between them, the text costs a few copies
/// where searching it for what to escape cost some 1,000 instructions a
/// banner bid. Only for text whose ids say they are encoded
/// ([`notice::NoticeUrl::ids_encoded`]); other text is escaped the
/// general way.
#[derive(Default)]
struct Amps {
    at: [u16; 16],
    /// How many of `at` are noted.
    len: u8,
    /// Some `&` went unnoted (past `at`'s end or a `u16`), or the ids
    /// were not said to be encoded: [`Amps::all`] says so.
    unsure: bool,
}

impl Amps {
    /// An `&` at byte `at` of the text.
    fn push(&mut self, at: usize) {
        match (self.at.get_mut(usize::from(self.len)), u16::try_from(at)) {
            (Some(slot), Ok(at)) => {
                *slot = at;
                self.len += 1;
            }
            _ => self.unsure = true,
        }
    }

    /// Each `&` of `piece` (a few dozen bytes), about to be appended to
    /// `text`. A loop over its bytes: `memchr`'s search cost some 300
    /// instructions on text this short.
    fn piece(&mut self, text: &str, piece: &str) {
        for (at, &b) in piece.as_bytes().iter().enumerate() {
            if b == b'&' {
                self.push(text.len() + at);
            }
        }
    }

    /// Every `&` of the text, in order; `None` when some went unnoted.
    fn all(&self) -> Option<&[u16]> {
        (!self.unsure).then(|| &self.at[..usize::from(self.len)])
    }
}

/// A bid's tracking URLs, its signed text hashed once.
pub struct Urls<'a> {
    base: &'a str,
    /// The signed text, then `&f=…` or nothing: the features, written
    /// into impression and click URLs only (a player's quartile events
    /// teach the model nothing, and leaving them out keeps VAST markup
    /// short). One string for both: a second was an allocation a bid.
    text: String,
    /// Where the signed text ends and the features start in `text`.
    plain: usize,
    /// Where the signed text's `&`s are ([`Self::signed_in_attr`]).
    amps: Amps,
    /// `base` escaped for the banner's markup, when the caller has it
    /// ([`Self::with_base_in_attr`]).
    base_in_attr: Option<&'a str>,
    key: notice::UrlKey,
    /// `key` after `features`: the impression and click URLs of a bid
    /// (two a banner, two or three a video or native ad) hash their shared
    /// `&f=` once. Per URL, that was a SHA-256 block (some 3,400
    /// instructions in software) of every such URL but the first.
    featured: notice::UrlKey,
}

impl<'a> Urls<'a> {
    /// The bid as its notices have it (of which only what pages may read
    /// is written, its audience included); `keyword` the matched keyword, if
    /// any; `user` the [`user_key`] of who the ad is for, when it may be
    /// remembered (made once per request, whose bids all share their user:
    /// `per-url`, it is an HMAC); `features` what the bid was priced with,
    /// when it was scored.
    ///
    /// `key` is the key the bid's notices were written with
    /// (`notice::Prepared::bid_key`), so that per bid the key is made once;
    /// `None` makes one.
    pub(crate) fn new(
        base: &'a str,
        bid: &notice::NoticeUrl<'_>,
        keyword: Option<&str>,
        user: Option<u64>,
        features: Option<&predict::Features>,
        signer: &Signer,
        key: Option<&notice::BidKey>,
    ) -> Urls<'a> {
        // Room for the usual signed text and the features after it.
        let mut signed =
            String::with_capacity(200 + features.map_or(0, |_| 3 + predict::MAX_COMPACT_LEN));
        let mut amps = Amps {
            unsure: !bid.ids_encoded,
            ..Amps::default()
        };
        signed.push_str("b=");
        notice::encode_into(bid.bid_id, &mut signed);
        amps.piece(&signed, bid.line_item_and_order);
        signed.push_str(bid.line_item_and_order);
        amps.push(signed.len());
        signed.push_str("&c=");
        signed.push_str(bid.creative);
        amps.push(signed.len());
        signed.push_str("&x=");
        signed.push_str(bid.exchange);
        amps.push(signed.len());
        signed.push_str("&ts=");
        notice::push_int(&mut signed, bid.at_ms);
        amps.push(signed.len());
        signed.push_str("&t=");
        notice::push_int(&mut signed, u8::from(bid.test));
        amps.push(signed.len());
        signed.push_str("&k=");
        if let Some(k) = keyword {
            notice::encode_into(k, &mut signed);
        }
        amps.push(signed.len());
        signed.push_str("&u=");
        if let Some(u) = user {
            // Masked per bid (`m`, then 16 hex digits): the key itself is
            // the same on every bid of the shopper's (see
            // `Signer::user_mask`).
            signed.push('m');
            push_hex16(u ^ signer.user_mask(bid.bid_id), &mut signed);
        }
        if let Some(a) = bid.audience {
            amps.push(signed.len());
            signed.push_str("&a=");
            notice::encode_into(a, &mut signed);
        }
        // The same first parameter (`b=`) as the bid's notices: the key
        // made for them is this text's key too.
        let key = match key {
            Some(k) => k.after(&signed),
            None => signer.url_key(&signed),
        };
        let plain = signed.len();
        // Web-safe base64: nothing in it needs escaping in a query or in
        // JSON.
        if let Some(f) = features {
            signed.push_str("&f=");
            f.push_compact(&mut signed);
        }
        Urls {
            base: notice::without_trailing_slashes(base),
            featured: key.after(&signed[plain..]),
            text: signed,
            plain,
            amps,
            key,
            base_in_attr: None,
        }
    }

    /// `base` as [`Self::write_in_attr`] writes it, escaped beforehand by
    /// the caller ([`creatives::push_attr_in_json`]): the bidder's public
    /// URL is the same on every bid, and escaping it per URL cost some 200
    /// instructions each.
    pub(crate) fn with_base_in_attr(mut self, base_in_attr: &'a str) -> Urls<'a> {
        self.base_in_attr = Some(base_in_attr);
        self
    }

    /// Whether every URL of the bid is plain ([`creatives::url_is_plain`]):
    /// the base and the signed text with the features are the only pieces
    /// not ours alone (paths, tails, event names and hex signatures are),
    /// and the test is byte by byte, so their look stands for all the
    /// URLs'.
    pub(crate) fn plain(&self) -> bool {
        creatives::url_is_plain(self.base) && creatives::url_is_plain(&self.text)
    }

    /// The text every URL of the bid signs, before its own tail.
    fn signed(&self) -> &str {
        &self.text[..self.plain]
    }

    /// `&f=…`, or empty.
    fn features(&self) -> &str {
        &self.text[self.plain..]
    }

    /// The URL of `path` with the features when `featured`, then `tail`
    /// (its pieces written one after the other: no string is built for
    /// the tail itself). The tests' whole-string way.
    #[cfg(test)]
    fn write(&self, path: Path, featured: bool, tail: &[&str]) -> String {
        let mut out = String::with_capacity(self.len(path, featured, tail));
        self.write_into(path, featured, tail, None, &mut out);
        out
    }

    /// Room for a URL [`Self::write_into`] writes (the signature included).
    fn len(&self, path: Path, featured: bool, tail: &[&str]) -> usize {
        let tail_len: usize = tail.iter().map(|t| t.len()).sum();
        let features = if featured { self.features().len() } else { 0 };
        self.base.len() + path.as_str().len() + self.plain + features + tail_len + 40
    }

    /// The key of the URLs that carry the features when `featured`: the
    /// text they sign goes on from there.
    fn key(&self, featured: bool) -> &notice::UrlKey {
        if featured {
            &self.featured
        } else {
            &self.key
        }
    }

    /// The URL of `path`, with the features when `featured`, then `tail`
    /// (its pieces written one after the other), appended to `out`, which
    /// the caller has made room
    /// in ([`Self::len`]) so that it grows at most once.
    /// `ending`: `tail` and the path's purpose as one constant, when there
    /// is one ([`event_ending`]); the signature then hashes that.
    #[inline(always)]
    fn write_into(
        &self,
        path: Path,
        featured: bool,
        tail: &[&str],
        ending: Option<notice::Purpose>,
        out: &mut String,
    ) {
        out.push_str(self.base);
        out.push_str(path.as_str());
        out.push('?');
        out.push_str(self.signed());
        if featured {
            out.push_str(self.features());
        }
        for t in tail {
            out.push_str(t);
        }
        out.push_str("&s=");
        match ending {
            Some(ending) => self.key(featured).sign(ending, &[], out),
            None => self.key(featured).sign(path.purpose(), tail, out),
        }
    }

    /// The signed text as a banner's markup carries it, escaped for a
    /// double-quoted attribute inside a JSON string
    /// (`creatives::push_attr_in_json`): made once per banner bid for both
    /// of its URLs, which each escaped it whole before.
    pub fn signed_in_attr(&self) -> String {
        let signed = self.signed();
        let mut out = String::with_capacity(self.plain + 64);
        match self.amps.all() {
            // Nothing but its `&`s needs escaping, and where they are is
            // known: copied between them, not searched for.
            Some(amps) => {
                let mut from = 0;
                for &at in amps {
                    let at = usize::from(at);
                    out.push_str(&signed[from..at]);
                    out.push_str("&amp;");
                    from = at + 1;
                }
                out.push_str(&signed[from..]);
                debug_assert_eq!(out, {
                    let mut escaped = String::new();
                    creatives::push_attr_in_json(signed, &mut escaped);
                    escaped
                });
            }
            None => creatives::push_attr_in_json(signed, &mut out),
        }
        out
    }

    /// [`Self::write_into`]'s URL, with the features, as
    /// `creatives::push_attr_in_json` would escape it, written from its
    /// pieces: that escaping goes byte by byte, so the pieces escaped are
    /// the whole escaped. `signed_in_attr` is [`Self::signed_in_attr`];
    /// `escaped` is `tail` escaped, piece for piece. The signature is over
    /// the URL itself.
    fn write_in_attr(
        &self,
        path: Path,
        tail: &[&str],
        escaped: &[&str],
        signed_in_attr: &str,
        out: &mut String,
    ) {
        match self.base_in_attr {
            Some(base) => out.push_str(base),
            None => creatives::push_attr_in_json(self.base, out),
        }
        out.push_str(path.as_str());
        out.push('?');
        out.push_str(signed_in_attr);
        // The features' `&f=` and web-safe base64: only the `&` needs
        // escaping.
        if let Some(rest) = self.features().strip_prefix('&') {
            out.push_str("&amp;");
            out.push_str(rest);
        }
        for t in escaped {
            out.push_str(t);
        }
        out.push_str("&amp;s=");
        self.featured.sign(path.purpose(), tail, out);
    }

    /// The banner's link (its click URL) escaped for the markup (see
    /// [`Self::write_in_attr`]).
    pub fn click_in_attr(&self, signed_in_attr: &str, out: &mut String) {
        self.write_in_attr(Path::Click, &["&d=1"], &["&amp;d=1"], signed_in_attr, out)
    }

    /// The impression pixel escaped for the banner's markup.
    pub fn impression_in_attr(&self, signed_in_attr: &str, out: &mut String) {
        self.write_in_attr(Path::Impression, &[], &[], signed_in_attr, out)
    }

    /// The impression pixel (banner), `Impression` (VAST), the impression
    /// event tracker (native), as a string of its own: the tests' reference
    /// (the bid path writes it in place: [`Self::impression_in_attr`],
    /// [`Self::impression_and_click_beacon`]).
    #[cfg(test)]
    pub fn impression(&self) -> String {
        self.write(Path::Impression, true, &[])
    }

    /// The banner's link: counts the click and sends the browser on (the
    /// tests' reference, as [`Self::impression`]).
    #[cfg(test)]
    pub fn click(&self) -> String {
        self.write(Path::Click, true, &["&d=1"])
    }

    /// A click tracker fired beside the click (VAST `ClickTracking`, native
    /// `link.clicktrackers`): counts it, answers 204 (the tests' reference,
    /// as [`Self::impression`]).
    #[cfg(test)]
    pub fn click_beacon(&self) -> String {
        self.write(Path::Click, true, &["&d=0"])
    }

    /// The impression URL then the click beacon in one string, and
    /// where the second starts: the two a VAST or native ad carries, in one
    /// allocation where each was one (some 150 instructions a bid).
    pub fn impression_and_click_beacon(&self) -> (String, usize) {
        let click_tail = ["&d=0"];
        let mut out = String::with_capacity(
            self.len(Path::Impression, true, &[]) + self.len(Path::Click, true, &click_tail),
        );
        self.write_into(Path::Impression, true, &[], None, &mut out);
        let at = out.len();
        self.write_into(Path::Click, true, &click_tail, None, &mut out);
        (out, at)
    }

    /// A VAST `Tracking` URL of `event` (its VAST name), appended to `out`,
    /// as the VAST writer asks for each event's URL.
    pub fn vast_event_into(&self, event: &str, out: &mut String) {
        match event_ending(event) {
            Some((tail, ending)) => {
                out.reserve(self.len(Path::Event, false, &[tail]));
                self.write_into(Path::Event, false, &[tail], Some(ending), out)
            }
            None => {
                let tail = ["&ev=", event];
                out.reserve(self.len(Path::Event, false, &tail));
                self.write_into(Path::Event, false, &tail, None, out)
            }
        }
    }

    /// [`Self::vast_event_into`] as a string of its own, as the tests read
    /// it (the bid path writes into the VAST writer's buffer).
    #[cfg(test)]
    fn vast_event(&self, event: &str) -> String {
        let mut out = String::new();
        self.vast_event_into(event, &mut out);
        out
    }
}

/// A tracking request read back.
#[derive(Debug, PartialEq, Eq)]
pub struct Tracked {
    pub event: Event,
    pub bid: u128,
    pub line_item: String,
    pub order: String,
    pub creative: String,
    pub exchange: String,
    pub keyword: Option<String>,
    /// The audience that made the line item eligible, when one did.
    pub audience: Option<String>,
    /// What the bid was priced with (impressions and clicks whose URL
    /// carries them).
    pub features: Option<predict::Features>,
    /// [`user_key`] of who saw the ad, when it may be remembered.
    pub user: Option<String>,
    pub test: bool,
    pub at_ms: i64,
    /// A click the browser follows (rather than a beacon).
    pub redirect: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TrackError {
    /// Not a URL we wrote, or one changed since: counts nothing.
    #[error("tracking signature is missing or does not match")]
    Signature,
}

/// Reads a tracking URL's query, checking its signature. Its age is the
/// caller's to judge (an old click still takes the user to the ad).
pub fn verify(path: Path, query: &str, signer: &Signer) -> Result<Tracked, TrackError> {
    let bad = || TrackError::Signature;
    let (signed, sig) = query.rsplit_once("&s=").ok_or_else(bad)?;
    // The signature is last and is hex: a query with anything after it is
    // not one we wrote (the split above took the last `&s=`).
    let purpose = path.purpose();
    // The layout first (nothing read is trusted before the signature
    // holds): the bid's common part, keyed once per bid, ends after the
    // signed parameters and the audience; the rest is this URL's tail.
    let mut pairs = signed.split('&');
    let values = notice::signed_values(&mut pairs, SIGNED).ok_or_else(bad)?;
    let mut tail = pairs.next();
    let audience = match tail.and_then(|p| p.strip_prefix("a=")) {
        Some(a) => {
            tail = pairs.next();
            Some(a)
        }
        None => None,
    };
    let common_len = match tail {
        // `tail` is a piece of `signed`, after its `&`.
        Some(t) => (t.as_ptr() as usize - signed.as_ptr() as usize) - 1,
        None => signed.len(),
    };
    let (common, rest) = signed.split_at(common_len);
    if !signer.verify_url(purpose, common, rest, sig) {
        return Err(bad());
    }
    let audience = match audience {
        Some(a) => Some(notice::decode(a).ok_or_else(bad)?),
        None => None,
    };
    // Only impression and click URLs are written with features; one on an
    // event URL is not ours, signed or not.
    let features = match tail.and_then(|p| p.strip_prefix("f=")) {
        Some(f) if path != Path::Event => {
            tail = pairs.next();
            Some(predict::Features::from_compact(f).map_err(|_| bad())?)
        }
        Some(_) => return Err(bad()),
        None => None,
    };
    if pairs.next().is_some() {
        return Err(bad());
    }
    let (event, redirect) = match (path, tail) {
        (Path::Impression, None) => (Event::Impression, false),
        (Path::Click, Some("d=1")) => (Event::Click, true),
        (Path::Click, Some("d=0")) => (Event::Click, false),
        (Path::Event, Some(e)) => (
            e.strip_prefix("ev=")
                .and_then(Event::of_vast_name)
                .ok_or_else(bad)?,
            false,
        ),
        _ => return Err(bad()),
    };
    let text = |i: usize| notice::decode(values[i]).ok_or_else(bad);
    let bid = u128::from_str_radix(values[0], 16).map_err(|_| bad())?;
    Ok(Tracked {
        event,
        bid,
        line_item: text(1)?,
        order: text(2)?,
        creative: text(3)?,
        exchange: text(4)?,
        keyword: Some(text(7)?).filter(|k| !k.is_empty()),
        audience,
        features,
        user: unmasked_user(values[8], values[0], signer),
        test: values[6] == "1",
        at_ms: values[5].parse().map_err(|_| bad())?,
        redirect,
    })
}

/// The user key a tracking URL of bid `bid_id` carries as `u`: masked per
/// bid (`m` and 16 hex digits), or as versions before wrote it (the key's
/// own 16 digits, or anything else, which [`Tracked::user_key`] reads as
/// no one). None for no one, or for `m` and 16 characters that are not
/// hex.
fn unmasked_user(u: &str, bid_id: &str, signer: &Signer) -> Option<String> {
    match u.strip_prefix('m') {
        Some(masked) if masked.len() == 16 => {
            let k = u64::from_str_radix(masked, 16).ok()? ^ signer.user_mask(bid_id);
            let mut out = String::with_capacity(16);
            push_hex16(k, &mut out);
            Some(out)
        }
        _ => Some(u.to_owned()).filter(|u| !u.is_empty()),
    }
}

/// `v` as 16 lowercase hex digits.
fn push_hex16(v: u64, out: &mut String) {
    out.push_str(hex::Buffer::<8>::new().format(&v.to_be_bytes()));
}

impl Tracked {
    /// Who saw the ad as the event journal keys them; 0 for no one.
    pub fn user_key(&self) -> u64 {
        self.user
            .as_deref()
            .and_then(|u| u64::from_str_radix(u, 16).ok())
            .unwrap_or(0)
    }
}

/// A user id as tracking URLs carry it before each bid's mask: 16
/// lowercase hex digits of a keyed hash under the notice secret (shared by
/// replicas), so the same shopper gets the same key on every replica that
/// writes URLs the same way, and the URL does not show who it is
/// (`Signer::user_key`).
pub fn user_key(signer: &Signer, user: &str) -> String {
    let mut out = String::with_capacity(16);
    push_hex16(signer.user_key(user), &mut out);
    out
}

/// Which (bid, event) pairs were counted, so each counts once. Kept in
/// two-hour buckets of arrival, and a bucket is dropped whole once events
/// that old can no longer be accepted (their URLs expire with the bid's
/// notices). Past `max_entries` the oldest bucket goes early, counted in
/// `bidder_tracking_dedupe_evicted_total`: under more events than that a
/// day, duplicates are caught within a shorter window (most come within
/// seconds: a pixel fired twice), and memory stays bounded.
///
/// A new event is looked up in every bucket: with ten-minute buckets that
/// was 145 lookups under the default 24-hour TTL, 5 µs an event with a
/// thousand pairs per shard and bucket and 17 µs with twenty thousand (a
/// throwaway timing, release build). Two hours make it 13, for pairs kept
/// up to two hours longer and a coarser early drop when full. (One set
/// per shard, with each bucket's keys listed to remove them by, was tried:
/// removals leave hashbrown's tombstones, and the table settled at about
/// twice the memory, and a bucket dropped key by key held the lock.)
pub struct Seen {
    shards: Vec<Mutex<Shard>>,
    keep_buckets: i64,
    max_per_shard: usize,
    evicted: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct Shard {
    /// Keys are 56 bits of the bid id (its halves folded) and the event:
    /// 8 bytes an entry. Those bits are random, so two bids sharing a key
    /// among ten million is a chance under one in ten thousand (one event
    /// uncounted). Random bits we minted and signed: a fast hasher does.
    hours: VecDeque<(i64, HashSet<u64, foldhash::fast::RandomState>)>,
    len: usize,
}

const SHARDS: usize = 16;
const BUCKET_MS: i64 = 2 * 3_600_000;
#[cfg(test)]
const HOUR_MS: i64 = 3_600_000;

impl Seen {
    pub fn new(keep_ms: i64, max_entries: usize) -> Seen {
        Seen {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            // One more bucket than the window: a bucket holds events from
            // all of its two hours.
            keep_buckets: (keep_ms.max(0) as u64).div_ceil(BUCKET_MS as u64) as i64 + 1,
            max_per_shard: (max_entries / SHARDS).max(1),
            evicted: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// `true` the first time (bid, event) is seen.
    pub fn first(&self, bid: u128, event: Event, now_ms: i64) -> bool {
        let bucket = now_ms.div_euclid(BUCKET_MS);
        // Both halves of the id folded: its last digits are not random (a
        // first-price bid's say so, `first_price.rs`), and the shard and
        // the key must each come from random bits.
        let r = (bid >> 64) as u64 ^ bid as u64;
        let key = (r & ((1 << 56) - 1)) | (u64::from(event.code()) << 56);
        let shard = &self.shards[(r >> 56) as usize % SHARDS];
        let mut s = shard.lock().unwrap_or_else(|e| e.into_inner());
        while s
            .hours
            .front()
            .is_some_and(|(b, _)| *b <= bucket - self.keep_buckets)
        {
            if let Some((_, old)) = s.hours.pop_front() {
                s.len -= old.len();
            }
        }
        if s.hours.iter().any(|(_, set)| set.contains(&key)) {
            return false;
        }
        if s.len >= self.max_per_shard {
            if let Some((_, old)) = s.hours.pop_front() {
                s.len -= old.len();
                self.evicted
                    .fetch_add(old.len() as u64, std::sync::atomic::Ordering::Relaxed);
                crate::metrics::tracking_evicted(old.len());
            }
        }
        match s.hours.back_mut() {
            Some((b, set)) if *b >= bucket => {
                set.insert(key);
            }
            _ => {
                let mut set = HashSet::default();
                set.insert(key);
                s.hours.push_back((bucket, set));
            }
        }
        s.len += 1;
        true
    }

    /// Entries dropped early to stay within the bound.
    pub fn evicted(&self) -> u64 {
        self.evicted.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The 1x1 transparent GIF an impression pixel answers with.
pub const PIXEL_GIF: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// Creative id → (advertiser, creative) indices: where a click goes.
pub(crate) type CreativeIndex = HashMap<String, (usize, usize)>;

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> Signer {
        Signer::new(b"tracking test secret")
    }

    /// The user key in a URL is the signer's key as 16 lowercase hex
    /// digits, zeros kept: reports and the journal read it back as that
    /// number, and another spelling would be another shopper.
    #[test]
    fn user_keys_are_sixteen_lowercase_hex_digits_of_the_signers_key() {
        let s = signer();
        let mut leading_zero = false;
        for i in 0..2_000 {
            let user = format!("u-{i}");
            let text = user_key(&s, &user);
            assert_eq!(text.len(), 16, "{text}");
            assert!(
                text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
                "{text}"
            );
            assert_eq!(text, format!("{:016x}", s.user_key(&user)));
            leading_zero |= text.starts_with('0');
        }
        // One in sixteen keys starts with a zero digit: 2,000 tries see one.
        assert!(leading_zero);
    }

    fn urls(keyword: Option<&str>) -> Urls<'static> {
        urls_with(keyword, None)
    }

    fn urls_with(keyword: Option<&str>, audience: Option<&str>) -> Urls<'static> {
        urls_full(keyword, audience, None)
    }

    fn features() -> predict::Features {
        predict::FeatureHasher::new(predict::DEFAULT_SEED)
            .features(
                &[
                    (predict::field::LINE_ITEM, "li-1"),
                    (predict::field::SITE, "news.example"),
                    (predict::field::HOUR, "14"),
                ],
                predict::DEFAULT_CROSSES,
            )
            .unwrap()
    }

    /// The bid the tests' URLs are written for.
    fn test_bid(audience: Option<&str>) -> notice::NoticeUrl<'_> {
        notice::NoticeUrl {
            bid_id: "0123456789abcdef0123456789abcdef",
            imp_id: "1",
            line_item_and_order: "&li=li-1&o=o-1",
            creative: "c-1",
            bid_price: config::Micros(2_000_000),
            at_ms: 1_764_000_000_000,
            test: false,
            exchange: "adx",
            currency: "USD",
            rate: config::Rate::ONE,
            charge_on: config::ChargeOn::First,
            encrypted: false,
            keyword: None,
            audience,
            ids_encoded: true,
        }
    }

    fn urls_full(
        keyword: Option<&str>,
        audience: Option<&str>,
        features: Option<&predict::Features>,
    ) -> Urls<'static> {
        let bid = test_bid(audience);
        let signer = signer();
        Urls::new(
            "https://bidder.example/",
            &bid,
            keyword,
            Some(signer.user_key("u-1001")),
            features,
            &signer,
            None,
        )
    }

    /// Query parameter `name` of `query`.
    fn param_of<'q>(query: &'q str, name: &str) -> &'q str {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("no {name} in {query}"))
    }

    fn query(url: &str) -> (Path, &str) {
        let (path, q) = url
            .strip_prefix("https://bidder.example")
            .unwrap()
            .split_once('?')
            .unwrap();
        (Path::of(path).unwrap(), q)
    }

    /// [`urls_full`] with every kind of tail, written by a signer of the
    /// same secret that writes `how`.
    fn all_urls(how: notice::UrlSignatures) -> Vec<String> {
        let bid = test_bid(Some("products:books"));
        let signer = Signer::writing(b"tracking test secret", how);
        every_url(&urls_with_every_part(&bid, &signer, None))
    }

    /// The URLs of `bid` with a keyword, a user and features, under `key`
    /// (the notices' key) or a key of their own.
    fn urls_with_every_part<'a>(
        bid: &notice::NoticeUrl<'_>,
        signer: &Signer,
        key: Option<&notice::BidKey>,
    ) -> Urls<'a> {
        Urls::new(
            "https://bidder.example/",
            bid,
            Some("phrase:mystery novel"),
            Some(signer.user_key("u-1001")),
            Some(&features()),
            signer,
            key,
        )
    }

    /// A banner's tracking URLs, written from their escaped pieces, are the
    /// URLs escaped whole, whatever the base URL, keyword or ids hold that
    /// the markup must escape.
    #[test]
    fn banner_urls_in_the_markup_are_the_urls_escaped() {
        // Ids as the snapshot writes them, and ids that were never encoded
        // (which the markup must escape all the same).
        let encoded = test_bid(Some("products:\"<tent>&'\\é"));
        let raw = notice::NoticeUrl {
            line_item_and_order: "&li=li%20'1'&o=o<1>",
            creative: "c\"1",
            ids_encoded: false,
            ..test_bid(Some("products:\"<tent>&'\\é"))
        };
        let features = features();
        let whole = |url: String| {
            let mut out = String::new();
            creatives::push_attr_in_json(&url, &mut out);
            out
        };
        for bid in [&encoded, &raw] {
            for base in [
                "https://bidder.example/",
                "https://b.example/p?x=\"<a>&'\\/",
            ] {
                // The public URL as the app escapes it once, or left to
                // the URLs to escape.
                let mut base_in_attr = String::new();
                creatives::push_attr_in_json(
                    notice::without_trailing_slashes(base),
                    &mut base_in_attr,
                );
                for (with_features, beforehand) in
                    [(false, false), (true, false), (false, true), (true, true)]
                {
                    let mut urls = Urls::new(
                        base,
                        bid,
                        Some("phrase:<b>\"&'"),
                        Some(signer().user_key("u-1001")),
                        with_features.then_some(&features),
                        &signer(),
                        None,
                    );
                    if beforehand {
                        urls = urls.with_base_in_attr(&base_in_attr);
                    }
                    let signed = urls.signed_in_attr();
                    assert_eq!(signed, whole(urls.signed().to_string()), "{base}");
                    let mut click = String::new();
                    urls.click_in_attr(&signed, &mut click);
                    assert_eq!(click, whole(urls.click()), "{base}");
                    let mut impression = String::new();
                    urls.impression_in_attr(&signed, &mut impression);
                    assert_eq!(impression, whole(urls.impression()), "{base}");
                }
            }
        }
    }

    /// Text too long for the noted positions (an id of 70,000 bytes puts
    /// the later `&`s past a `u16`) is escaped the general way, alike.
    #[test]
    fn a_signed_text_past_the_noted_positions_is_escaped_alike() {
        let ids = format!("&li={}&o=o-1", "l".repeat(70_000));
        let bid = notice::NoticeUrl {
            line_item_and_order: &ids,
            ..test_bid(Some("products:books"))
        };
        let urls = Urls::new(
            "https://bidder.example/",
            &bid,
            Some("tent"),
            Some(signer().user_key("u-1001")),
            None,
            &signer(),
            None,
        );
        assert!(urls.amps.all().is_none());
        let mut whole = String::new();
        creatives::push_attr_in_json(urls.signed(), &mut whole);
        assert_eq!(urls.signed_in_attr(), whole);
    }

    /// A bid's tracking URLs under the key its notices made are the URLs
    /// a key of their own gives: the key comes from the bid id, which both
    /// texts start with.
    #[test]
    fn tracking_urls_under_the_notices_key_are_the_same_urls() {
        for how in [notice::UrlSignatures::PerUrl, notice::UrlSignatures::PerBid] {
            let bid = test_bid(Some("products:books"));
            let signer = Signer::writing(b"tracking test secret", how);
            let signed = bid.signed();
            let notices = notice::Prepared::new("https://bidder.example/", &signed, &signer);
            let urls = |key| every_url(&urls_with_every_part(&bid, &signer, key));
            assert_eq!(urls(Some(notices.bid_key())), urls(None), "{how:?}");
            for url in urls(Some(notices.bid_key())) {
                let (path, q) = query(&url);
                assert!(verify(path, q, &signer).is_ok(), "{url}");
            }
        }
    }

    /// Per bid one key signs a bid's notices and its tracking URLs: still
    /// no signature of one of its URLs stands in for another's, whichever
    /// reader checks it.
    #[test]
    fn no_signature_of_a_bid_stands_in_for_another_of_it() {
        use notice::Kind;
        let signer = Signer::writing(b"tracking test secret", notice::UrlSignatures::PerBid);
        let bid = test_bid(Some("products:books"));
        let signed = bid.signed();
        let notices = notice::Prepared::new("https://bidder.example/", &signed, &signer);
        let notice_queries: Vec<(Kind, String)> = Kind::ALL
            .into_iter()
            .map(|k| {
                let mut u = String::new();
                notices.write(k, &mut u);
                let q = u.split_once('?').unwrap().1;
                (k, q.replace(notice::AUCTION_PRICE_MACRO, "1.5"))
            })
            .collect();
        let urls = urls_with_every_part(&bid, &signer, Some(notices.bid_key()));
        let mut tracking = every_url(&urls);
        tracking.push(urls.vast_event("complete"));
        let sig_of = |q: &str| {
            let rest = q.rsplit_once("&s=").unwrap().1;
            rest.split_once('&').map_or(rest, |(s, _)| s).to_owned()
        };
        let sigs: Vec<String> = notice_queries
            .iter()
            .map(|(_, q)| sig_of(q))
            .chain(tracking.iter().map(|u| sig_of(u)))
            .collect();
        let at = bid.at_ms;
        for (kind, q) in &notice_queries {
            assert!(notice::verify(*kind, q, &signer, at, 1).is_ok(), "{q}");
            for other in sigs.iter().filter(|s| **s != sig_of(q)) {
                let forged = q.replace(&sig_of(q), other);
                assert!(
                    notice::verify(*kind, &forged, &signer, at, 1).is_err(),
                    "{forged}"
                );
            }
            for path in [Path::Impression, Path::Click, Path::Event] {
                assert!(verify(path, q, &signer).is_err());
            }
        }
        for url in &tracking {
            let (path, q) = query(url);
            assert!(verify(path, q, &signer).is_ok(), "{url}");
            for other in sigs.iter().filter(|s| **s != sig_of(q)) {
                let forged = q.replace(&sig_of(q), other);
                assert!(verify(path, &forged, &signer).is_err(), "{forged}");
            }
            for kind in Kind::ALL {
                assert!(notice::verify(kind, q, &signer, at, 1).is_err());
            }
        }
    }

    /// The URLs of a bid with nothing optional (no keyword, user,
    /// audience or features), written by a signer that writes `how`.
    fn bare_urls(how: notice::UrlSignatures) -> Vec<String> {
        let bid = test_bid(None);
        let signer = Signer::writing(b"tracking test secret", how);
        every_url(&Urls::new(
            "https://bidder.example/",
            &bid,
            None,
            None,
            None,
            &signer,
            None,
        ))
    }

    /// A banner's two URLs as its markup carries them, for the bid with
    /// every part, written by a signer that writes `how`.
    fn markup_urls(how: notice::UrlSignatures) -> [String; 2] {
        let bid = test_bid(Some("products:books"));
        let signer = Signer::writing(b"tracking test secret", how);
        let urls = urls_with_every_part(&bid, &signer, None);
        let signed = urls.signed_in_attr();
        let (mut click, mut impression) = (String::new(), String::new());
        urls.click_in_attr(&signed, &mut click);
        urls.impression_in_attr(&signed, &mut impression);
        [click, impression]
    }

    /// An impression, a click, a click beacon and a VAST event.
    fn every_url(u: &Urls<'_>) -> Vec<String> {
        vec![
            u.impression(),
            u.click(),
            u.click_beacon(),
            u.vast_event("midpoint"),
        ]
    }

    /// The bytes of every kind of URL, both ways of signing, as the version
    /// before c121ad9 (which hashed the features once per URL) wrote them
    /// for the same bids (one with every optional part, its banner markup
    /// too, and one with none): a rollout keeps the signatures of URLs
    /// already in pages. A check of what is written against what is read
    /// cannot see a change made to both.
    #[test]
    fn urls_keep_the_bytes_earlier_versions_wrote() {
        let q = "b=0123456789abcdef0123456789abcdef&li=li-1&o=o-1&c=c-1&x=adx&ts=1764000000000&t=0\
                 &k=phrase%3Amystery%20novel";
        let f = "&a=products%3Abooks&f=ASmXqSbXACCsUl3U1VqpwPFdOA";
        let a = "&a=products%3Abooks";
        let at = |path: &str, user: &str, tail: &str, sig: &str| {
            format!("https://bidder.example/track/{path}?{q}&u={user}{tail}&s={sig}")
        };
        // A bid with nothing optional: no keyword, user, audience or
        // features.
        let bare = |path: &str, tail: &str, sig: &str| {
            format!(
                "https://bidder.example/track/{path}?b=0123456789abcdef0123456789abcdef&li=li-1\
                 &o=o-1&c=c-1&x=adx&ts=1764000000000&t=0&k=&u={tail}&s={sig}"
            )
        };
        // The banner's markup carries the same URLs, escaped: the same
        // signatures.
        let in_attr = |url: String| url.replace('&', "&amp;");
        // Per way of signing: the user key, then the signatures of the
        // impression, click, click beacon and event, for the bid with
        // every part and for the bare one.
        for (how, user, [impression, click, beacon, event], bare_sigs) in [
            (
                notice::UrlSignatures::PerUrl,
                "26d506ef4d871030",
                [
                    "51dedc34a8aa130a8cb81c76b83eee78",
                    "ec3c7efd19ab45d8da59b2f3ae1e6c39",
                    "8372c2550c9a92c1751c4d25ece73a03",
                    "4819db83138ff57ae5f9cd8b22c3b28a",
                ],
                [
                    "7929a8f0c6eeafc635edceaf4b2b7833",
                    "63373333aedf34cc23ef8d7e5843746a",
                    "21567f3ded8c34a738b24e9b88e39017",
                    "6841d9b8fe70e5912059c935ddd512f9",
                ],
            ),
            (
                notice::UrlSignatures::PerBid,
                "55950ed1d5d99e2d",
                [
                    "9173d43bf506cd1381c761fcb83b7b6d",
                    "8183b5f5cfa03546cec38ea0967d8883",
                    "56745925234c03e159b9a71817f8fcd5",
                    "685e40b7e04a20d4951353ad7b3bfa2a",
                ],
                [
                    "cee3fa4b5b941f318588322af4e51bbe",
                    "5a56e679550286aafd180a17ca20667c",
                    "d58b20926675e8703e82c424a50eb555",
                    "0dce89f043d3e76f5316365a517a9e08",
                ],
            ),
        ] {
            // Written with the user key as it is (before it was masked
            // per bid): they still read, with that key.
            let signer = Signer::writing(b"tracking test secret", how);
            for (path, url) in [
                (Path::Impression, at("impression", user, f, impression)),
                (Path::Click, at("click", user, &format!("{f}&d=1"), click)),
                (Path::Click, at("click", user, &format!("{f}&d=0"), beacon)),
                (
                    Path::Event,
                    at("event", user, &format!("{a}&ev=midpoint"), event),
                ),
            ] {
                let t = verify(path, query(&url).1, &signer).expect(&url);
                assert_eq!(t.user.as_deref(), Some(user), "{url}");
            }
            // The markup's URLs are the URLs escaped.
            let written = all_urls(how);
            assert_eq!(
                markup_urls(how),
                [in_attr(written[1].clone()), in_attr(written[0].clone())]
            );
            let [impression, click, beacon, event] = bare_sigs;
            assert_eq!(
                bare_urls(how),
                [
                    bare("impression", "", impression),
                    bare("click", "&d=1", click),
                    bare("click", "&d=0", beacon),
                    bare("event", "&ev=midpoint", event),
                ]
            );
        }
    }

    /// The user key is one per shopper (attribution joins on it): each
    /// bid's URLs carry it masked with a value of their own, so that pages
    /// and exchanges cannot follow the shopper from bid to bid by it.
    #[test]
    fn the_user_key_is_masked_per_bid() {
        for how in [notice::UrlSignatures::PerUrl, notice::UrlSignatures::PerBid] {
            let signer = Signer::writing(b"tracking test secret", how);
            let key = user_key(&signer, "u-1001");
            let written = |bid_id: &str| {
                let mut bid = test_bid(None);
                bid.bid_id = bid_id;
                let url = urls_with_every_part(&bid, &signer, None).impression();
                let (p, q) = query(&url);
                let u = param_of(q, "u").to_owned();
                (u, verify(p, q, &signer).unwrap().user)
            };
            let (a, read_a) = written("0123456789abcdef0123456789abcdef");
            let (b, read_b) = written("fedcba98765432100123456789abcdef");
            assert!(a.starts_with('m') && a.len() == 17, "{a}");
            assert_ne!(a, b, "the same shopper, two bids");
            assert!(!a.contains(&key) && !b.contains(&key));
            assert_eq!(read_a, Some(key.clone()));
            assert_eq!(read_b, Some(key.clone()));
            // Another secret's mask reads as another key.
            let other = Signer::writing(b"another secret", how);
            assert_ne!(
                unmasked_user(&a, "0123456789abcdef0123456789abcdef", &other),
                Some(key)
            );
        }
    }

    /// A fleet mid-deploy or mid-switch holds URLs written both ways, and
    /// any replica counts either; the default writes what earlier versions
    /// read (one HMAC over the whole text and the purpose).
    #[test]
    fn urls_written_either_way_verify_with_either_writer() {
        let per_url = all_urls(notice::UrlSignatures::PerUrl);
        let per_bid = all_urls(notice::UrlSignatures::PerBid);
        for (a, b) in per_url.iter().zip(&per_bid) {
            assert_ne!(a, b);
            let (p, qa) = query(a);
            let (_, qb) = query(b);
            for how in [notice::UrlSignatures::PerUrl, notice::UrlSignatures::PerBid] {
                let signer = Signer::writing(b"tracking test secret", how);
                let (ta, tb) = (
                    verify(p, qa, &signer).unwrap(),
                    verify(p, qb, &signer).unwrap(),
                );
                // The same bid; each URL carries the user key of the way
                // it was written.
                let key = |how| user_key(&Signer::writing(b"tracking test secret", how), "u-1001");
                assert_eq!(ta.user, Some(key(notice::UrlSignatures::PerUrl)));
                assert_eq!(tb.user, Some(key(notice::UrlSignatures::PerBid)));
                assert_eq!(Tracked { user: None, ..ta }, Tracked { user: None, ..tb });
                let other = match p {
                    Path::Impression => Path::Click,
                    _ => Path::Impression,
                };
                assert!(verify(other, qa, &signer).is_err());
                assert!(verify(other, qb, &signer).is_err());
            }
            let (signed, sig) = qa.rsplit_once("&s=").unwrap();
            assert!(
                signer().verify_named(p.purpose().name(), signed, sig),
                "{a}"
            );
            let (signed, sig) = qb.rsplit_once("&s=").unwrap();
            assert!(
                !signer().verify_named(p.purpose().name(), signed, sig),
                "{b}"
            );
        }
        let default = urls_full(
            Some("phrase:mystery novel"),
            Some("products:books"),
            Some(&features()),
        );
        assert_eq!(per_url, every_url(&default), "the default writes per URL");
    }

    /// Written per bid, a URL's tail and its audience are signed all the
    /// same.
    #[test]
    fn per_bid_urls_sign_their_tail_and_audience() {
        let urls = all_urls(notice::UrlSignatures::PerBid);
        let (p, q) = query(&urls[1]);
        assert!(verify(p, q, &signer()).is_ok());
        for forged in [
            q.replace("&d=1", "&d=0"),
            q.replace("&a=products%3Abooks", ""),
            q.replace("&a=products%3Abooks", "&a=products%3Atents"),
            q.replace("&f=", "&f=A"),
        ] {
            assert!(verify(p, &forged, &signer()).is_err(), "{forged}");
        }
        let (p, q) = query(&urls[3]);
        assert!(verify(p, q, &signer()).is_ok());
        assert!(verify(p, &q.replace("ev=midpoint", "ev=complete"), &signer()).is_err());
    }

    #[test]
    fn every_url_reads_back_as_written() {
        let u = urls(Some("phrase:mystery novel"));
        let impression = u.impression();
        let (p, q) = query(&impression);
        let t = verify(p, q, &signer()).unwrap();
        assert_eq!(t.event, Event::Impression);
        assert_eq!(t.bid, 0x0123456789abcdef0123456789abcdef);
        assert_eq!(t.line_item, "li-1");
        assert_eq!(t.creative, "c-1");
        assert_eq!(t.exchange, "adx");
        assert_eq!(t.keyword.as_deref(), Some("phrase:mystery novel"));
        assert_eq!(t.user, Some(user_key(&signer(), "u-1001")));
        assert_eq!(t.user.as_deref().map(str::len), Some(16));
        assert_eq!(t.user_key(), signer().user_key("u-1001"));
        // The URL's digits are the journal's key, leading zeros and all
        // (one key in sixteen starts with one), either way keys are made.
        for how in [notice::UrlSignatures::PerUrl, notice::UrlSignatures::PerBid] {
            let signer = Signer::writing(b"tracking test secret", how);
            for n in 0..200 {
                let user = format!("u-{n}");
                let hex = user_key(&signer, &user);
                assert_eq!(hex.len(), 16, "{hex}");
                assert_eq!(
                    u64::from_str_radix(&hex, 16).unwrap(),
                    signer.user_key(&user)
                );
            }
        }
        assert_ne!(user_key(&signer(), "u-1001"), user_key(&signer(), "u-1002"));
        assert_ne!(
            user_key(&signer(), "u-1001"),
            user_key(&Signer::new(b"another"), "u-1001")
        );
        let click = u.click();
        let (p, q) = query(&click);
        let t = verify(p, q, &signer()).unwrap();
        assert_eq!((t.event, t.redirect), (Event::Click, true));
        let beacon = u.click_beacon();
        let (p, q) = query(&beacon);
        assert!(!verify(p, q, &signer()).unwrap().redirect);
        for name in [
            "start",
            "firstQuartile",
            "midpoint",
            "thirdQuartile",
            "complete",
            "creativeView",
        ] {
            let url = u.vast_event(name);
            let (p, q) = query(&url);
            let t = verify(p, q, &signer()).unwrap();
            assert_eq!(t.event.vast_name(), Some(name));
        }
        let plain = urls(None).impression();
        let (p, q) = query(&plain);
        assert_eq!(verify(p, q, &signer()).unwrap().keyword, None);
    }

    #[test]
    fn the_audience_is_signed_when_there_is_one() {
        let u = urls_with(Some("broad:tent"), Some("products:tent pages"));
        let click = u.click();
        let (p, q) = query(&click);
        assert!(q.contains("&a=products%3Atent%20pages&d=1&s="), "{q}");
        let t = verify(p, q, &signer()).unwrap();
        assert_eq!(t.audience.as_deref(), Some("products:tent pages"));
        assert_eq!((t.event, t.redirect), (Event::Click, true));
        let pixel = u.impression();
        let (p, pq) = query(&pixel);
        assert!(pq.contains("&a=products%3Atent%20pages&s="), "{pq}");
        assert_eq!(
            verify(p, pq, &signer()).unwrap().audience.as_deref(),
            Some("products:tent pages")
        );
        let start = u.vast_event("start");
        let (p, sq) = query(&start);
        assert_eq!(verify(p, sq, &signer()).unwrap().event, Event::Start);
        // URLs written before audiences were signed (and those of line
        // items without one) have no `a` and still read.
        let plain = urls(Some("broad:tent")).click();
        let (p, plain) = query(&plain);
        assert!(!plain.contains("&a="), "{plain}");
        assert_eq!(verify(p, plain, &signer()).unwrap().audience, None);
        for forged in [
            q.replace("&a=products%3Atent%20pages", "&a=views%3Atent-viewers"),
            q.replace("&a=products%3Atent%20pages", ""),
            q.replace(
                "&a=products%3Atent%20pages&d=1",
                "&d=1&a=products%3Atent%20pages",
            ),
            plain.replace("&d=1", "&a=views%3Atent-viewers&d=1"),
        ] {
            assert_eq!(
                verify(Path::Click, &forged, &signer()),
                Err(TrackError::Signature),
                "{forged}"
            );
        }
    }

    #[test]
    fn features_ride_signed_in_impression_and_click_urls() {
        let f = features();
        let compact = f.to_compact();
        let u = urls_full(Some("broad:tent"), Some("products:tent pages"), Some(&f));
        let pixel = u.impression();
        let (p, pq) = query(&pixel);
        assert!(
            pq.contains(&format!("&a=products%3Atent%20pages&f={compact}&s=")),
            "{pq}"
        );
        let t = verify(p, pq, &signer()).unwrap();
        assert_eq!(t.features, Some(f));
        assert_eq!(t.audience.as_deref(), Some("products:tent pages"));
        for (url, redirect) in [(u.click(), true), (u.click_beacon(), false)] {
            let (p, q) = query(&url);
            let d = if redirect { "&d=1" } else { "&d=0" };
            assert!(q.contains(&format!("&f={compact}{d}&s=")), "{q}");
            let t = verify(p, q, &signer()).unwrap();
            assert_eq!(
                (t.event, t.redirect, t.features),
                (Event::Click, redirect, Some(f))
            );
        }
        // Player events do not carry them.
        let start = u.vast_event("start");
        let (p, sq) = query(&start);
        assert!(!sq.contains("&f="), "{sq}");
        assert_eq!(verify(p, sq, &signer()).unwrap().features, None);
        // Without an audience, `f` follows `u`.
        let plain = urls_full(None, None, Some(&f)).click();
        let (p, plain) = query(&plain);
        assert!(plain.contains("&f="), "{plain}");
        assert_eq!(
            verify(p, plain, &signer()).unwrap().user,
            Some(user_key(&signer(), "u-1001"))
        );
        let (_, after_u) = plain.split_once("&u=m").unwrap();
        assert_eq!(&after_u[16..19], "&f=", "{plain}");
        assert_eq!(verify(p, plain, &signer()).unwrap().features, Some(f));
        // URLs written before features were signed still read.
        let old = urls(None).impression();
        let (p, old) = query(&old);
        assert!(!old.contains("&f="), "{old}");
        assert_eq!(verify(p, old, &signer()).unwrap().features, None);
        let other = predict::FeatureHasher::new(predict::DEFAULT_SEED)
            .features(
                &[(predict::field::LINE_ITEM, "li-2")],
                predict::DEFAULT_CROSSES,
            )
            .unwrap()
            .to_compact();
        let click = u.click();
        let (_, cq) = query(&click);
        let f_pair = format!("&f={compact}");
        for (path, forged) in [
            (Path::Click, cq.replace(&f_pair, &format!("&f={other}"))),
            (Path::Click, cq.replace(&f_pair, "")),
            (
                Path::Click,
                cq.replace(&format!("{f_pair}&d=1"), &format!("&d=1{f_pair}")),
            ),
            (Path::Impression, pq.replace(&f_pair, "")),
            (Path::Impression, format!("{old}{f_pair}")),
            (
                Path::Impression,
                old.replace("&s=", &format!("{f_pair}&s=")),
            ),
        ] {
            assert_eq!(
                verify(path, &forged, &signer()),
                Err(TrackError::Signature),
                "{forged}"
            );
        }
    }

    #[test]
    fn altered_or_moved_urls_count_nothing() {
        let u = urls(None);
        let start = u.vast_event("start");
        let (_, q) = query(&start);
        for forged in [
            q.replace("ev=start", "ev=complete"),
            q.replace("li=li-1", "li=li-2"),
            q.replace("&k=", "&k=exact%3Ax"),
            q.replace("&u=", "&u=0"),
            format!("{q}&x=1"),
            q.replace("&s=", "&s=0"),
        ] {
            assert_eq!(
                verify(Path::Event, &forged, &signer()),
                Err(TrackError::Signature),
                "{forged}"
            );
        }
        // Each URL is good for its own path only, and never as a notice.
        assert!(verify(Path::Impression, q, &signer()).is_err());
        assert!(verify(Path::Click, q, &signer()).is_err());
        let click = u.click();
        let (_, cq) = query(&click);
        assert!(verify(Path::Click, &cq.replace("d=1", "d=0"), &signer()).is_err());
        assert!(notice::verify(notice::Kind::Win, cq, &signer(), 0, i64::MAX).is_err());
        // No bid price in a URL that pages and players can read.
        assert!(!cq.contains("bp=") && !cq.contains("cur="), "{cq}");
        assert!(verify(Path::Click, cq, &Signer::new(b"another")).is_err());
    }

    #[test]
    fn each_event_of_a_bid_counts_once_within_the_window() {
        let seen = Seen::new(24 * HOUR_MS, 1_000_000);
        let t0 = 1_764_000_000_000;
        assert!(seen.first(1, Event::Impression, t0));
        assert!(!seen.first(1, Event::Impression, t0 + HOUR_MS));
        assert!(seen.first(1, Event::Click, t0));
        assert!(seen.first(2, Event::Impression, t0));
        assert!(!seen.first(1, Event::Impression, t0 + 24 * HOUR_MS));
        // Past the window the hour is gone (the URL has expired by then).
        assert!(seen.first(1, Event::Impression, t0 + 27 * HOUR_MS));
    }

    #[test]
    fn the_store_is_bounded() {
        let seen = Seen::new(24 * HOUR_MS, SHARDS * 100);
        let t0 = 1_764_000_000_000;
        for hour in 0..10 {
            for i in 0..100u128 {
                seen.first(
                    i * SHARDS as u128 + hour as u128 * 1_000_000,
                    Event::Impression,
                    t0 + hour * HOUR_MS,
                );
            }
        }
        let total: usize = seen.shards.iter().map(|s| s.lock().unwrap().len).sum();
        assert!(total <= SHARDS * 101, "{total}");
        // Each shard within its own bound (these ids all fall in one).
        for s in &seen.shards {
            assert!(s.lock().unwrap().len <= 101);
        }
        assert!(seen.evicted() > 0);
    }

    /// First-price bids' ids end alike (`first_price.rs`): they still
    /// spread over every shard, so the store holds what it is sized for.
    #[test]
    fn marked_ids_use_the_whole_store() {
        let seen = Seen::new(24 * HOUR_MS, SHARDS * 100);
        let t0 = 1_764_000_000_000;
        let mut x: u128 = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210;
        let ids: Vec<u128> = (0..SHARDS * 50)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let id = crate::first_price::bid_id(x, Some(shading::SlotKind::Banner));
                u128::from_str_radix(id.as_str(), 16).unwrap()
            })
            .collect();
        for &id in &ids {
            assert!(seen.first(id, Event::Impression, t0));
        }
        // Each event again: all known, none evicted.
        for &id in &ids {
            assert!(!seen.first(id, Event::Impression, t0 + HOUR_MS));
        }
        assert_eq!(seen.evicted(), 0);
        assert!(seen.shards.iter().all(|s| s.lock().unwrap().len > 0));
    }

    /// The impression and click beacon written together are the two
    /// written apart, byte for byte.
    #[test]
    fn impression_and_click_beacon_together_are_each_alone() {
        for how in [notice::UrlSignatures::PerBid, notice::UrlSignatures::PerUrl] {
            let bid = test_bid(Some("products:books"));
            let signer = Signer::writing(b"tracking test secret", how);
            let u = urls_with_every_part(&bid, &signer, None);
            let (both, at) = u.impression_and_click_beacon();
            assert_eq!(both.split_at(at), (&*u.impression(), &*u.click_beacon()));
        }
    }

    /// Every event the VAST writer asks for, and every player event
    /// counted, has its ending as a constant, and the URL written with it
    /// is the one the general way writes, and reads back: its signature is
    /// over the same bytes.
    #[test]
    fn event_endings_write_the_general_ways_urls() {
        for how in [notice::UrlSignatures::PerBid, notice::UrlSignatures::PerUrl] {
            let bid = test_bid(Some("products:books"));
            let signer = Signer::writing(b"tracking test secret", how);
            let u = urls_with_every_part(&bid, &signer, None);
            let events = creatives::LINEAR_EVENTS
                .into_iter()
                .chain([creatives::COMPANION_EVENT])
                .chain(Event::ALL.into_iter().filter_map(Event::vast_name));
            for event in events {
                assert!(event_ending(event).is_some(), "{event}");
                let general = u.write(Path::Event, false, &["&ev=", event]);
                assert_eq!(u.vast_event(event), general, "{event}");
                let (path, q) = query(&general);
                assert_eq!(path, Path::Event);
                assert!(verify(path, q, &signer).is_ok(), "{event}");
            }
            // A name without a constant takes the general way.
            assert!(event_ending("skip").is_none());
            assert_eq!(
                u.vast_event("skip"),
                u.write(Path::Event, false, &["&ev=", "skip"])
            );
        }
    }

    proptest::proptest! {
        /// A bid whose URLs [`Urls::plain`] calls plain has only plain
        /// URLs: the VAST writer puts them in unscanned on that word. The
        /// base (an IPv6 literal's brackets) and the encoded keyword and
        /// audience (`%`) are what can make them otherwise.
        #[test]
        fn urls_called_plain_are_plain(
            base in proptest::sample::select(&[
                "https://bidder.example/",
                "http://[::1]:8080",
                "https://bidder.example/a b",
                "https://bidder.example/x]]>",
            ][..]),
            keyword in proptest::option::of("[a-z :%\\]\"]{0,6}"),
            audience in proptest::option::of("[a-z:]{0,6}"),
            featured in proptest::bool::ANY,
        ) {
            let bid = test_bid(audience.as_deref());
            let signer = signer();
            let f = features();
            let u = Urls::new(
                base,
                &bid,
                keyword.as_deref(),
                Some(signer.user_key("u-1001")),
                featured.then_some(&f),
                &signer,
                None,
            );
            let mut urls = vec![u.impression(), u.click(), u.click_beacon()];
            for event in creatives::LINEAR_EVENTS.iter().chain([&creatives::COMPANION_EVENT]) {
                urls.push(u.vast_event(event));
            }
            let every = urls.iter().all(|url| creatives::url_is_plain(url));
            // Exact both ways: no bid's URLs are scanned for nothing either.
            proptest::prop_assert_eq!(u.plain(), every, "{:?}", urls);
        }
    }
}

//! The BidRequest side: what the bidder reads, borrowed from the body.
//!
//! Every field is optional or defaulted so one odd field never costs a bid;
//! required-field checks live in [`BidRequest::validate`] instead.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::de;
use crate::error::InvalidRequest;

/// A list of codes (`battr`, `api`, `protocols`, ...): room for eight in
/// place, which holds nearly every list a request sends, so reading one
/// allocates nothing.
pub type Codes = crate::List<i32, 8>;

/// A list of strings (`cat`, `mimes`, `bcat`, ...): room for three in place,
/// for the same reason; longer lists (`bcat` often is) go to the heap.
pub type Strs<'a> = crate::List<Cow<'a, str>, 3>;

/// A raw, unparsed `ext` object (or whatever the exchange put there).
pub type Ext<'a> = Option<RawJson<'a>>;

/// The JSON text of a value kept unparsed, borrowed from the body.
///
/// Not serde_json's `RawValue`: the request reader has the text's bounds in
/// hand and no way to make a `&RawValue` of them without parsing them again.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RawJson<'a>(pub(crate) &'a str);

impl<'a> RawJson<'a> {
    /// The value's JSON text, exactly as sent.
    pub fn get(&self) -> &'a str {
        self.0
    }
}

impl std::fmt::Debug for RawJson<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RawJson({})", self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawJson<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <&'de RawValue>::deserialize(d).map(|raw| RawJson(raw.get()))
    }
}

/// Reads an ext as `T`; anything malformed reads as `None` so an ext can
/// never fail the request. With the request's own reader, as serde_json
/// would read it (tests hold the two alike), within the reader's bounds
/// (see `crate::read::ext`): serde_json's generic code was the largest a
/// bid ran through, for a few fields.
fn ext_as<'a, T: crate::read::Object<'a>>(ext: Ext<'a>) -> Option<T> {
    crate::read::ext(ext?.get())
}

/// OpenRTB 2.5/2.6 BidRequest.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BidRequest<'a> {
    #[serde(borrow, default, deserialize_with = "de::id")]
    pub id: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "de::vec")]
    pub imp: Vec<Imp<'a>>,
    #[serde(borrow, default)]
    pub site: Option<Site<'a>>,
    #[serde(borrow, default)]
    pub app: Option<App<'a>>,
    /// OpenRTB 2.6 digital out-of-home; kept raw, the bidder only needs to know it is there.
    #[serde(borrow, default)]
    pub dooh: Ext<'a>,
    #[serde(borrow, default)]
    pub device: Option<Device<'a>>,
    #[serde(borrow, default)]
    pub user: Option<User<'a>>,
    #[serde(borrow, default)]
    pub regs: Option<Regs<'a>>,
    #[serde(borrow, default)]
    pub source: Option<Source<'a>>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub test: Option<i32>,
    /// Auction type; see [`BidRequest::auction_type`] for the spec default.
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub at: Option<i32>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub tmax: Option<i32>,
    #[serde(borrow, default, deserialize_with = "de::str_vec")]
    pub cur: Strs<'a>,
    #[serde(borrow, default, deserialize_with = "de::str_vec")]
    pub wseat: Strs<'a>,
    #[serde(borrow, default, deserialize_with = "de::str_vec")]
    pub bseat: Strs<'a>,
    #[serde(borrow, default, deserialize_with = "de::str_vec")]
    pub bcat: Strs<'a>,
    /// 2.6: the only advertiser categories allowed (`cattax`'s taxonomy).
    #[serde(borrow, default, deserialize_with = "de::str_vec")]
    pub acat: Strs<'a>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub cattax: Option<i32>,
    #[serde(borrow, default, deserialize_with = "de::str_vec")]
    pub badv: Strs<'a>,
    #[serde(borrow, default, deserialize_with = "de::str_vec")]
    pub bapp: Strs<'a>,
    /// The only languages creatives may be in (ISO-639-1-alpha-2), kept
    /// raw: read by [`BidRequest::allowed_languages`] where it is given.
    /// Few requests carry it, and a list read into every request (80
    /// bytes each, made and dropped) cost a bid some 30 instructions.
    #[serde(borrow, default)]
    pub wlang: Ext<'a>,
    /// 2.6: the same as IETF BCP 47 tags (`en-US`); an exchange sends one
    /// of the two.
    #[serde(borrow, default)]
    pub wlangb: Ext<'a>,
    #[serde(borrow, default)]
    pub ext: Ext<'a>,
}

/// Languages `wlang` and `wlangb` allow at most, counted as they are
/// compared: by language and script, a region aside (`es-ES` and `es-MX`
/// are one). A publisher allows a handful; every creative that says its
/// language is compared with each, so a list of 10,000 (a 52 KB request)
/// cost 38 ms a request at 1,000 line items, and 100,000 entries 140 ms
/// (1 and 4-7 ms read up to the bounds).
pub const MAX_LANGUAGES: usize = 32;

/// Entries of each of `wlang` and `wlangb` looked at, at most: each costs
/// a comparison with every language kept.
pub const MAX_LANGUAGE_ENTRIES: usize = 256;

/// A BCP 47 tag's language and its script, if its second subtag is one
/// (four letters: `Hant` of `zh-Hant-TW`), in the case given: what two
/// tags are compared by, here and where the bidder holds a creative's
/// language to a request's.
pub fn language_and_script(tag: &str) -> (&str, Option<&str>) {
    let mut parts = tag.split('-');
    let language = parts.next().unwrap_or(tag);
    let script = parts
        .next()
        .filter(|s| s.len() == 4 && s.bytes().all(|b| b.is_ascii_alphabetic()));
    (language, script)
}

impl<'a> BidRequest<'a> {
    /// The languages `wlang` and `wlangb` allow creatives to be in, as
    /// their tags in lower case (entries that do not start with a language
    /// of two or three letters left out, and one tag per language and
    /// script); `None` where neither lists any. Each list is read as the
    /// request's other lists of strings are (a lone string is a list of
    /// one), up to [`MAX_LANGUAGE_ENTRIES`] entries and [`MAX_LANGUAGES`]
    /// languages in all. What the bounds cut off is not allowed: a list
    /// cut whose entries read name no language allows none (`Some` of
    /// nothing), so that a cut never loosens a list.
    #[inline]
    pub fn allowed_languages(&self) -> Option<Box<[String]>> {
        if self.wlang.is_none() && self.wlangb.is_none() {
            return None;
        }
        self.read_languages()
    }

    #[inline(never)]
    fn read_languages(&self) -> Option<Box<[String]>> {
        let mut out: Vec<String> = Vec::new();
        let mut cut = false;
        for raw in [&self.wlang, &self.wlangb].into_iter().flatten() {
            let tags = crate::read::str_list(raw.get()).unwrap_or_default();
            cut |= tags.len() > MAX_LANGUAGE_ENTRIES;
            for tag in tags.iter().take(MAX_LANGUAGE_ENTRIES) {
                // A language of two or three letters first, or it names
                // none: a number or a stray word restricts nothing.
                // `en_US` (a POSIX or Android locale) is `en-US`.
                let tag = tag.trim().replace('_', "-").to_ascii_lowercase();
                let (language, script) = language_and_script(&tag);
                if !(2..=3).contains(&language.len())
                    || !language.bytes().all(|b| b.is_ascii_alphabetic())
                {
                    continue;
                }
                // Regions are not compared: `es-ES` after `es-MX` adds
                // nothing, and a list of regions of one language takes
                // one place.
                if out
                    .iter()
                    .any(|kept| language_and_script(kept) == (language, script))
                {
                    continue;
                }
                if out.len() == MAX_LANGUAGES {
                    cut = true;
                    continue;
                }
                out.push(tag);
            }
        }
        (cut || !out.is_empty()).then(|| out.into_boxed_slice())
    }

    /// `at`, defaulting to 2 (second price plus), as the spec says.
    pub fn auction_type(&self) -> i32 {
        self.at.unwrap_or(2)
    }

    /// `test` as a flag (absent means live traffic).
    pub fn is_test(&self) -> bool {
        self.test.unwrap_or(0) != 0
    }

    /// Checks the fields OpenRTB marks required, which parsing lets through.
    pub fn validate(&self) -> Result<(), InvalidRequest> {
        if self.id.is_empty() {
            return Err(InvalidRequest::MissingId);
        }
        if self.imp.is_empty() {
            return Err(InvalidRequest::MissingImp);
        }
        for (index, imp) in self.imp.iter().enumerate() {
            if imp.id.is_empty() {
                return Err(InvalidRequest::ImpWithoutId { index });
            }
            if imp.id.len() > crate::MAX_IMP_ID_BYTES {
                return Err(InvalidRequest::ImpIdTooLong {
                    index,
                    len: imp.id.len(),
                });
            }
            if !imp.has_media() {
                return Err(InvalidRequest::ImpWithoutMedia { index });
            }
        }
        // Most requests carry a handful of imps, where a scan beats hashing
        // (and allocates nothing); past that, linear time, whatever the
        // count: a quadratic scan of tens of thousands costs seconds.
        const SCAN: usize = 16;
        if self.imp.len() <= SCAN {
            for (index, imp) in self.imp.iter().enumerate().skip(1) {
                if let Some(first) = self.imp[..index].iter().position(|o| o.id == imp.id) {
                    return Err(InvalidRequest::DuplicateImpId { index, first });
                }
            }
            return Ok(());
        }
        let mut seen: std::collections::HashMap<&str, usize> =
            std::collections::HashMap::with_capacity(self.imp.len());
        for (index, imp) in self.imp.iter().enumerate() {
            if let Some(&first) = seen.get(imp.id.as_ref()) {
                return Err(InvalidRequest::DuplicateImpId { index, first });
            }
            seen.insert(&imp.id, index);
        }
        Ok(())
    }
}

/// An impression on offer.
#[derive(Debug, Clone, Deserialize)]
pub struct Imp<'a> {
    #[serde(borrow, default, deserialize_with = "de::id")]
    pub id: Cow<'a, str>,
    #[serde(borrow, default)]
    pub banner: Option<Box<Banner<'a>>>,
    #[serde(borrow, default)]
    pub video: Option<Box<Video<'a>>>,
    #[serde(borrow, default)]
    pub audio: Option<Box<Audio<'a>>>,
    #[serde(borrow, default)]
    pub native: Option<Native<'a>>,
    #[serde(borrow, default)]
    pub pmp: Option<Pmp<'a>>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub tagid: Option<Cow<'a, str>>,
    /// Floor in micros of `bidfloorcur` (1e-6 units), 0 when absent. Finer
    /// than a micro is rounded up.
    #[serde(default, deserialize_with = "de::floor_micros")]
    pub bidfloor: i64,
    /// Defaults to "USD" when absent, null or empty.
    #[serde(borrow, default = "de::usd", deserialize_with = "de::currency")]
    pub bidfloorcur: Cow<'a, str>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub instl: Option<i32>,
    /// A flag, as `pmp.private_auction` is: a value that reads as no
    /// integer (`"true"`) is [`crate::UNREADABLE_FLAG`], so that anything
    /// present but 0 reads as secure (taken as not, an `http` creative
    /// went to a page that may be served over https and was blocked as
    /// mixed content).
    #[serde(default, deserialize_with = "de::opt_flag")]
    pub secure: Option<i32>,
    /// OpenRTB 2.6 rewarded flag.
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub rwdd: Option<i32>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub exp: Option<i32>,
    /// OpenRTB 2.6 `qty`: how many billable impressions a win counts as.
    #[serde(default)]
    pub qty: Option<Qty>,
    #[serde(borrow, default)]
    pub ext: Ext<'a>,
}

/// OpenRTB 2.6 `imp.qty`: a win bills `multiplier` impressions at the
/// clearing CPM (digital out-of-home: a screen's audience), not one.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Qty {
    /// `None` when absent or when it reads as no number.
    #[serde(default, deserialize_with = "de::opt_f64")]
    pub multiplier: Option<f64>,
}

impl Default for Imp<'_> {
    fn default() -> Self {
        Imp {
            id: Cow::Borrowed(""),
            banner: None,
            video: None,
            audio: None,
            native: None,
            pmp: None,
            tagid: None,
            bidfloor: 0,
            bidfloorcur: de::usd(),
            instl: None,
            secure: None,
            rwdd: None,
            exp: None,
            qty: None,
            ext: None,
        }
    }
}

impl Imp<'_> {
    /// Whether the imp offers any media object (`"banner": null` does not count).
    pub fn has_media(&self) -> bool {
        self.banner.is_some()
            || self.video.is_some()
            || self.audio.is_some()
            || self.native.is_some()
    }
}

/// A banner size from `banner.format[]`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Format<'a> {
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub w: Option<i32>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub h: Option<i32>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub wratio: Option<i32>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub hratio: Option<i32>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub wmin: Option<i32>,
    #[serde(borrow, default)]
    pub ext: Ext<'a>,
}

/// A banner impression, and also the shape of video/audio `companionad[]`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Banner<'a> {
    #[serde(borrow, default, deserialize_with = "de::vec")]
    pub format: Vec<Format<'a>>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub w: Option<i32>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub h: Option<i32>,
    #[serde(default, deserialize_with = "de::marked_codes")]
    pub btype: Codes,
    #[serde(default, deserialize_with = "de::marked_codes")]
    pub battr: Codes,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub pos: Option<i32>,
    #[serde(borrow, default, deserialize_with = "de::str_vec")]
    pub mimes: Strs<'a>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub topframe: Option<i32>,
    #[serde(default, deserialize_with = "de::codes")]
    pub api: Codes,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub id: Option<Cow<'a, str>>,
    /// Companion rendering mode (companions only): 0 concurrent, 1 end-card.
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub vcm: Option<i32>,
    #[serde(borrow, default)]
    pub ext: Ext<'a>,
}

impl Banner<'_> {
    /// Every fixed size offered: `format[]` entries with both w and h, else
    /// the top-level w/h.
    pub fn sizes(&self) -> impl Iterator<Item = (i32, i32)> + '_ {
        let from_format = self.format.iter().filter_map(|f| Some((f.w?, f.h?)));
        let fallback = if self.format.iter().any(|f| f.w.is_some() && f.h.is_some()) {
            None
        } else {
            self.w.zip(self.h)
        };
        from_format.chain(fallback)
    }
}

/// A video impression (2.5 and 2.6 fields side by side).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Video<'a> {
    #[serde(borrow, default, deserialize_with = "de::str_vec")]
    pub mimes: Strs<'a>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub minduration: Option<i32>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub maxduration: Option<i32>,
    /// 2.6 exact durations allowed, in seconds.
    #[serde(default, deserialize_with = "de::codes")]
    pub rqddurs: Codes,
    #[serde(default, deserialize_with = "de::marked_codes")]
    pub protocols: Codes,
    /// 2.5-deprecated single protocol.
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub protocol: Option<i32>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub w: Option<i32>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub h: Option<i32>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub startdelay: Option<i32>,
    /// 2.5 placement type (deprecated in 2.6 in favour of `plcmt`).
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub placement: Option<i32>,
    /// 2.6 placement subtype.
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub plcmt: Option<i32>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub linearity: Option<i32>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub skip: Option<i32>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub skipmin: Option<i32>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub skipafter: Option<i32>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub sequence: Option<i32>,
    #[serde(default, deserialize_with = "de::marked_codes")]
    pub battr: Codes,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub maxextended: Option<i32>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub minbitrate: Option<i32>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub maxbitrate: Option<i32>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub boxingallowed: Option<i32>,
    #[serde(default, deserialize_with = "de::codes")]
    pub playbackmethod: Codes,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub playbackend: Option<i32>,
    #[serde(default, deserialize_with = "de::marked_codes")]
    pub delivery: Codes,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub pos: Option<i32>,
    #[serde(borrow, default, deserialize_with = "de::vec")]
    pub companionad: Vec<Banner<'a>>,
    #[serde(default, deserialize_with = "de::codes")]
    pub api: Codes,
    /// `apis`: a typo for `api` found in the IAB's own 2.6 video example.
    /// Read [`Video::api_frameworks`] rather than either field.
    #[serde(default, deserialize_with = "de::codes")]
    pub apis: Codes,
    #[serde(default, deserialize_with = "de::marked_codes")]
    pub companiontype: Codes,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub podid: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub podseq: Option<i32>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub slotinpod: Option<i32>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub poddur: Option<i32>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub maxseq: Option<i32>,
    /// 2.6 minimum CPM per second, in micros (rounded up like a floor).
    #[serde(default, deserialize_with = "de::opt_floor_micros")]
    pub mincpmpersec: Option<i64>,
    /// 2.6 (202309) floors by creative duration.
    #[serde(default, deserialize_with = "de::vec")]
    pub durfloors: Vec<DurFloor>,
    #[serde(borrow, default)]
    pub ext: Ext<'a>,
}

/// A floor for creatives whose duration is within `mindur..=maxdur`
/// seconds (2.6-202309 `DurFloors`), in the imp's floor currency.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DurFloor {
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub mindur: Option<i32>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub maxdur: Option<i32>,
    /// In micros (rounded up like a floor).
    #[serde(default, deserialize_with = "de::opt_floor_micros")]
    pub bidfloor: Option<i64>,
}

impl DurFloor {
    /// Whether a creative of `secs` seconds is within the range: both ends
    /// included, an absent one unbounded.
    pub fn covers(&self, secs: u32) -> bool {
        let secs = i64::from(secs);
        self.mindur.is_none_or(|m| secs >= i64::from(m))
            && self.maxdur.is_none_or(|m| secs <= i64::from(m))
    }
}

impl Video<'_> {
    /// Supported API frameworks: `api`, or the misspelt `apis` when `api` is absent.
    pub fn api_frameworks(&self) -> &[i32] {
        if self.api.is_empty() {
            &self.apis
        } else {
            &self.api
        }
    }
}

/// An audio impression.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Audio<'a> {
    #[serde(borrow, default, deserialize_with = "de::str_vec")]
    pub mimes: Strs<'a>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub minduration: Option<i32>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub maxduration: Option<i32>,
    #[serde(default, deserialize_with = "de::codes")]
    pub rqddurs: Codes,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub poddur: Option<i32>,
    #[serde(default, deserialize_with = "de::marked_codes")]
    pub protocols: Codes,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub startdelay: Option<i32>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub sequence: Option<i32>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub podid: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub podseq: Option<i32>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub slotinpod: Option<i32>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub maxseq: Option<i32>,
    #[serde(default, deserialize_with = "de::marked_codes")]
    pub battr: Codes,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub maxextended: Option<i32>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub minbitrate: Option<i32>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub maxbitrate: Option<i32>,
    #[serde(default, deserialize_with = "de::marked_codes")]
    pub delivery: Codes,
    #[serde(borrow, default, deserialize_with = "de::vec")]
    pub companionad: Vec<Banner<'a>>,
    #[serde(default, deserialize_with = "de::codes")]
    pub api: Codes,
    #[serde(default, deserialize_with = "de::marked_codes")]
    pub companiontype: Codes,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub feed: Option<i32>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub stitched: Option<i32>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub nvol: Option<i32>,
    /// 2.6 (202309) minimum CPM per second, in micros.
    #[serde(default, deserialize_with = "de::opt_floor_micros")]
    pub mincpmpersec: Option<i64>,
    /// 2.6 (202309) floors by creative duration.
    #[serde(default, deserialize_with = "de::vec")]
    pub durfloors: Vec<DurFloor>,
    #[serde(borrow, default)]
    pub ext: Ext<'a>,
}

/// A native impression. The bidder does not buy native yet, so the payload
/// stays raw: `request` is usually a JSON-encoded string, sometimes an object.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Native<'a> {
    #[serde(borrow, default)]
    pub request: Ext<'a>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub ver: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "de::codes")]
    pub api: Codes,
    #[serde(default, deserialize_with = "de::marked_codes")]
    pub battr: Codes,
    #[serde(borrow, default)]
    pub ext: Ext<'a>,
}

/// Private marketplace terms.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Pmp<'a> {
    /// A flag: a value that reads as no integer (`"yes"`, `1.5`) is
    /// [`crate::UNREADABLE_FLAG`], a private auction; taken as 0, every
    /// open-market line item bid where only the deals may.
    #[serde(default, deserialize_with = "de::opt_flag")]
    pub private_auction: Option<i32>,
    #[serde(borrow, default, deserialize_with = "de::vec")]
    pub deals: Vec<Deal<'a>>,
    #[serde(borrow, default)]
    pub ext: Ext<'a>,
}

/// A deal on offer in `pmp.deals[]`.
#[derive(Debug, Clone, Deserialize)]
pub struct Deal<'a> {
    #[serde(borrow, default, deserialize_with = "de::id")]
    pub id: Cow<'a, str>,
    /// Deal floor in micros, 0 when absent; finer than a micro is rounded up.
    #[serde(default, deserialize_with = "de::floor_micros")]
    pub bidfloor: i64,
    /// Defaults to "USD" when absent, null or empty.
    #[serde(borrow, default = "de::usd", deserialize_with = "de::currency")]
    pub bidfloorcur: Cow<'a, str>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub at: Option<i32>,
    #[serde(borrow, default, deserialize_with = "de::str_vec")]
    pub wseat: Strs<'a>,
    #[serde(borrow, default, deserialize_with = "de::str_vec")]
    pub wadomain: Strs<'a>,
    /// 2.6 minimum CPM per second for a video or audio spot in this deal,
    /// in micros (rounded up like a floor), in `bidfloorcur`.
    #[serde(default, deserialize_with = "de::opt_floor_micros")]
    pub mincpmpersec: Option<i64>,
    /// 2.6 floors by creative duration in this deal.
    #[serde(default, deserialize_with = "de::vec")]
    pub durfloors: Vec<DurFloor>,
    #[serde(borrow, default)]
    pub ext: Ext<'a>,
}

impl Default for Deal<'_> {
    fn default() -> Self {
        Deal {
            id: Cow::Borrowed(""),
            bidfloor: 0,
            bidfloorcur: de::usd(),
            at: None,
            wseat: Strs::new(),
            wadomain: Strs::new(),
            mincpmpersec: None,
            durfloors: Vec::new(),
            ext: None,
        }
    }
}

/// The website the impression is on.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Site<'a> {
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub name: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub domain: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::str_vec")]
    pub cat: Strs<'a>,
    #[serde(borrow, default, deserialize_with = "de::str_vec")]
    pub sectioncat: Strs<'a>,
    #[serde(borrow, default, deserialize_with = "de::str_vec")]
    pub pagecat: Strs<'a>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub cattax: Option<i32>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub page: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub r#ref: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub search: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub keywords: Option<Cow<'a, str>>,
    /// 2.6 keywords as an array.
    #[serde(borrow, default, deserialize_with = "de::str_vec")]
    pub kwarray: Strs<'a>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub mobile: Option<i32>,
    #[serde(borrow, default)]
    pub publisher: Option<Publisher<'a>>,
    #[serde(borrow, default)]
    pub content: Option<Content<'a>>,
    #[serde(borrow, default)]
    pub ext: Ext<'a>,
}

/// The app the impression is in.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct App<'a> {
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub name: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub bundle: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub domain: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub storeurl: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::str_vec")]
    pub cat: Strs<'a>,
    #[serde(borrow, default, deserialize_with = "de::str_vec")]
    pub sectioncat: Strs<'a>,
    #[serde(borrow, default, deserialize_with = "de::str_vec")]
    pub pagecat: Strs<'a>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub cattax: Option<i32>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub ver: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub keywords: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::str_vec")]
    pub kwarray: Strs<'a>,
    #[serde(borrow, default)]
    pub publisher: Option<Publisher<'a>>,
    #[serde(borrow, default)]
    pub content: Option<Content<'a>>,
    #[serde(borrow, default)]
    pub ext: Ext<'a>,
}

/// Publisher of a site or app; also the shape of `content.producer`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Publisher<'a> {
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub name: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub domain: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::str_vec")]
    pub cat: Strs<'a>,
    #[serde(borrow, default)]
    pub ext: Ext<'a>,
}

/// The content the impression sits in (programme, episode, stream, article).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Content<'a> {
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub id: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub episode: Option<i32>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub title: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub series: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub season: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub genre: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub url: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::str_vec")]
    pub cat: Strs<'a>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub cattax: Option<i32>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub keywords: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::str_vec")]
    pub kwarray: Strs<'a>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub livestream: Option<i32>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub len: Option<i32>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub language: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub prodq: Option<i32>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub context: Option<i32>,
    #[serde(borrow, default)]
    pub producer: Option<Publisher<'a>>,
    #[serde(borrow, default, deserialize_with = "de::vec")]
    pub data: Vec<Data<'a>>,
    #[serde(borrow, default)]
    pub ext: Ext<'a>,
}

/// The device the impression will show on.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Device<'a> {
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub ua: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub geo: Option<Geo<'a>>,
    #[serde(default, deserialize_with = "de::opt_flag")]
    pub dnt: Option<i32>,
    #[serde(default, deserialize_with = "de::opt_flag")]
    pub lmt: Option<i32>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub ip: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub ipv6: Option<Cow<'a, str>>,
    /// Device type code; 8 (DOOH) arrives although 2.5 stops at 7.
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub devicetype: Option<i32>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub make: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub model: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub os: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub osv: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub h: Option<i32>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub w: Option<i32>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub language: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub carrier: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub connectiontype: Option<i32>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub ifa: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub ext: Ext<'a>,
}

impl Device<'_> {
    /// iOS App Tracking Transparency status (`device.ext.atts`, as Prebid
    /// and exchanges send it): 0 not determined, 1 restricted, 2 denied, 3
    /// authorized; read as a privacy flag is, so a value there that is no
    /// integer is [`crate::UNREADABLE_FLAG`]. The ext is read only when
    /// there is one.
    pub fn atts(&self) -> Option<i32> {
        match ext_as::<DeviceExt>(self.ext) {
            Some(e) => e.atts,
            // An ext that cannot be read (a key twice, a string) may hold
            // a status nobody read: the strictest reading.
            None => self.ext.map(|_| crate::UNREADABLE_FLAG),
        }
    }
}

/// A location.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Geo<'a> {
    #[serde(default, deserialize_with = "de::opt_f64")]
    pub lat: Option<f64>,
    #[serde(default, deserialize_with = "de::opt_f64")]
    pub lon: Option<f64>,
    /// `long`: a misspelling of `lon` in the IAB DOOH examples. Read
    /// [`Geo::longitude`] rather than either field. (A serde alias would
    /// reject requests that carry both spellings as a duplicate field.)
    #[serde(default, deserialize_with = "de::opt_f64")]
    pub long: Option<f64>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub r#type: Option<i32>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub country: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub region: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub metro: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub city: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub zip: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub utcoffset: Option<i32>,
    #[serde(borrow, default)]
    pub ext: Ext<'a>,
}

impl Geo<'_> {
    /// `lon`, or the misspelt `long` when `lon` is absent.
    pub fn longitude(&self) -> Option<f64> {
        self.lon.or(self.long)
    }
}

/// The human (or at least the cookie) behind the device.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct User<'a> {
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub buyeruid: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub yob: Option<i32>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub gender: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub keywords: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::str_vec")]
    pub kwarray: Strs<'a>,
    /// 2.6 TCF consent string; see [`User::consent`] for the 2.5 fallback.
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub consent: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub geo: Option<Geo<'a>>,
    #[serde(borrow, default, deserialize_with = "de::vec")]
    pub data: Vec<Data<'a>>,
    /// 2.6 extended ids; see [`User::eids`] for the 2.5 fallback.
    #[serde(borrow, default, deserialize_with = "de::vec")]
    pub eids: Vec<Eid<'a>>,
    #[serde(borrow, default)]
    pub ext: Ext<'a>,
}

/// A user's TCF consent strings ([`User::consents`]), each `None` when
/// absent or empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Consents<'a> {
    /// 2.6 `user.consent`.
    pub given: Option<Cow<'a, str>>,
    /// 2.5 `user.ext.consent`.
    pub in_ext: Option<Cow<'a, str>>,
    /// `user.ext` is there and cannot be read: it may hold a consent
    /// string nobody read.
    pub ext_unreadable: bool,
}

#[derive(Default)]
pub(crate) struct UserExt<'a> {
    pub(crate) consent: Option<Cow<'a, str>>,
}

#[derive(Default)]
pub(crate) struct UserExtEids<'a> {
    pub(crate) eids: Vec<Eid<'a>>,
}

impl<'a> User<'a> {
    /// The TCF consent string: 2.6 `user.consent`, else 2.5 `user.ext.consent`.
    pub fn consent(&self) -> Option<Cow<'a, str>> {
        if let Some(c) = &self.consent {
            return Some(c.clone());
        }
        ext_as::<UserExt<'a>>(self.ext)?.consent
    }

    /// Both TCF consent strings, 2.6 `user.consent` and 2.5
    /// `user.ext.consent` (a request may carry both, and they may
    /// disagree), and whether `user.ext` was there but could not be read.
    /// The ext is read only when there is one.
    pub fn consents(&self) -> Consents<'a> {
        let non_empty = |c: Option<Cow<'a, str>>| c.filter(|c| !c.is_empty());
        let ext = ext_as::<UserExt<'a>>(self.ext);
        Consents {
            given: non_empty(self.consent.clone()),
            ext_unreadable: self.ext.is_some() && ext.is_none(),
            in_ext: non_empty(ext.and_then(|e| e.consent)),
        }
    }

    /// Extended ids: 2.6 `user.eids`, else 2.5 `user.ext.eids`. Borrows in the
    /// 2.6 case; parses the ext (and never fails) otherwise.
    pub fn eids(&self) -> Cow<'_, [Eid<'a>]> {
        if !self.eids.is_empty() {
            return Cow::Borrowed(&self.eids);
        }
        Cow::Owned(
            ext_as::<UserExtEids<'a>>(self.ext)
                .map(|e| e.eids)
                .unwrap_or_default(),
        )
    }
}

/// A data provider's segments for the user (`user.data[]`, `content.data[]`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Data<'a> {
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub name: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::vec")]
    pub segment: Vec<Segment<'a>>,
    #[serde(borrow, default)]
    pub ext: Ext<'a>,
}

#[derive(Default)]
pub(crate) struct DataExt {
    pub(crate) segtax: Option<i32>,
}

#[derive(Default)]
pub(crate) struct DeviceExt {
    pub(crate) atts: Option<i32>,
}

impl Data<'_> {
    /// The segment taxonomy (`data.ext.segtax`), which says what the segment ids mean.
    pub fn segtax(&self) -> Option<i32> {
        ext_as::<DataExt>(self.ext)?.segtax
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Segment<'a> {
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub name: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub value: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub ext: Ext<'a>,
}

/// An extended id source and its ids.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Eid<'a> {
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub source: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::vec")]
    pub uids: Vec<Uid<'a>>,
    #[serde(borrow, default)]
    pub ext: Ext<'a>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Uid<'a> {
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub id: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub atype: Option<i32>,
    #[serde(borrow, default)]
    pub ext: Ext<'a>,
}

/// Regulations in force for the request.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Regs<'a> {
    #[serde(default, deserialize_with = "de::opt_flag")]
    pub coppa: Option<i32>,
    /// 2.6 field; read [`Regs::gdpr`], which falls back to the 2.5 ext form.
    #[serde(default, deserialize_with = "de::opt_flag")]
    pub gdpr: Option<i32>,
    /// 2.6 field; read [`Regs::us_privacy`], which falls back to the 2.5 ext form.
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub us_privacy: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub gpp: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "de::codes")]
    pub gpp_sid: Codes,
    /// Global Privacy Control: 1 when the user's browser says "do not sell
    /// or share". Read [`Regs::signals`], which falls back to the IAB's
    /// extension, `regs.ext.gpc` (often `"1"`).
    #[serde(default, deserialize_with = "de::opt_flag")]
    pub gpc: Option<i32>,
    #[serde(borrow, default)]
    pub ext: Ext<'a>,
}

/// The privacy signals `regs.ext` carries (their OpenRTB 2.5 places), as
/// read from it; in [`RegsSignals::shadowed`], only the copies that differ
/// from the 2.6 fields (`None`, empty: the same or not there). The
/// accessors read the 2.6 field first; a copy that opts out where the
/// other does not still opts out, so privacy reads both.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegsExt<'a> {
    pub gdpr: Option<i32>,
    pub us_privacy: Option<Cow<'a, str>>,
    pub gpp: Option<Cow<'a, str>>,
    pub gpp_sid: Codes,
    pub gpc: Option<i32>,
    /// Not a privacy signal; read in the same pass (see [`Dsa`]).
    pub dsa: Option<Dsa>,
}

/// The privacy signals of `regs`, each as its own accessor reads it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegsSignals<'a> {
    pub gdpr: Option<i32>,
    pub us_privacy: Option<Cow<'a, str>>,
    pub gpp: Option<Cow<'a, str>>,
    pub gpp_sid: Codes,
    pub gpc: Option<i32>,
    /// `regs.ext` is there but cannot be read (a key twice, a value of the
    /// wrong shape): the signals it may carry are unknown, and an unknown
    /// signal is taken at its strictest.
    pub unreadable: bool,
    /// What `regs.ext` says where a 2.6 field above says otherwise (boxed:
    /// rare, and the signals are moved on every bid).
    pub shadowed: Option<Box<RegsExt<'a>>>,
    /// What the DSA signal `regs.ext` carries asks, read with the rest of
    /// it: nothing when absent or unreadable.
    pub dsa: DsaAsk,
}

/// The Digital Services Act transparency signal (`regs.ext.dsa`, the
/// IAB's extension): whether a bid must say on whose behalf the ad is
/// shown and who paid for it, and whether the publisher renders that.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dsa {
    /// 0 not required, 1 supported, 2 required, 3 required and the
    /// publisher is an online platform: from 2, a bid without the object is
    /// thrown away.
    pub dsarequired: Option<i32>,
    /// 0 the publisher cannot render the information, 1 it could, 2 it
    /// will.
    pub pubrender: Option<i32>,
}

/// What a [`Dsa`] asks of a bid, in a byte: the signals are moved on
/// every bid, and the object as read takes twenty bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DsaAsk(u8);

impl DsaAsk {
    const WANTED: u8 = 1;
    const REQUIRED: u8 = 2;
    const AD_RENDERS: u8 = 4;

    /// The bid may carry the DSA object (`dsarequired` 1 or more).
    pub fn wanted(self) -> bool {
        self.0 & Self::WANTED != 0
    }

    /// A bid must carry it (`dsarequired` 2 or 3).
    pub fn required(self) -> bool {
        self.0 & Self::REQUIRED != 0
    }

    /// The publisher cannot show it (`pubrender` 0), so the ad itself
    /// would have to.
    pub fn advertiser_must_render(self) -> bool {
        self.0 & Self::AD_RENDERS != 0
    }
}

impl From<Dsa> for DsaAsk {
    fn from(d: Dsa) -> DsaAsk {
        let mut bits = 0;
        if d.dsarequired.is_some_and(|r| r >= 1) {
            bits |= DsaAsk::WANTED;
        }
        if matches!(d.dsarequired, Some(2 | 3)) {
            bits |= DsaAsk::REQUIRED;
        }
        if d.pubrender == Some(0) {
            bits |= DsaAsk::AD_RENDERS;
        }
        DsaAsk(bits)
    }
}

impl RegsExt<'_> {
    /// Whether a string or section list differs between the copies.
    pub fn has_strings(&self) -> bool {
        self.us_privacy.is_some() || self.gpp.is_some() || !self.gpp_sid.is_empty()
    }
}

impl<'a> Regs<'a> {
    /// Every privacy signal at once, `regs.ext` read at most once (the
    /// accessors below each read it again: a bid wants all four).
    // Inlined into privacy's one reading of it (on every bid), as it was
    // before the DSA signal made a second caller.
    #[inline(always)]
    pub fn signals(&self) -> RegsSignals<'a> {
        // Read even where every 2.6 field is there: its 2.5 copy may still
        // opt out (`shadowed`).
        let ext = ext_as::<RegsExt<'a>>(self.ext);
        let (mut eg, mut eu, mut ep, mut es, mut ec) = (None, None, None, Codes::new(), None);
        let unreadable = ext.is_none() && self.ext.is_some();
        let mut dsa = DsaAsk::default();
        if let Some(e) = ext {
            (eg, eu, ep, es, ec) = (e.gdpr, e.us_privacy, e.gpp, e.gpp_sid, e.gpc);
            dsa = e.dsa.map(DsaAsk::from).unwrap_or_default();
        }
        // The ext's copy where the 2.6 field is there and says otherwise;
        // nothing to compare where no 2.6 field is (2.5 exchanges).
        fn differs<T: PartialEq + Clone>(top: &Option<T>, ext: &Option<T>) -> Option<T> {
            ext.as_ref()
                .filter(|e| top.as_ref().is_some_and(|t| t != *e))
                .cloned()
        }
        let any_top = self.gdpr.is_some()
            || self.us_privacy.is_some()
            || self.gpp.is_some()
            || !self.gpp_sid.is_empty()
            || self.gpc.is_some();
        let shadowed = if any_top && !unreadable && self.ext.is_some() {
            let s = RegsExt {
                gdpr: differs(&self.gdpr, &eg),
                us_privacy: differs(&self.us_privacy, &eu),
                gpp: differs(&self.gpp, &ep),
                gpp_sid: if self.gpp_sid.is_empty() || self.gpp_sid == es {
                    Codes::new()
                } else {
                    es.clone()
                },
                gpc: differs(&self.gpc, &ec),
                dsa: None,
            };
            (s != RegsExt::default()).then(|| Box::new(s))
        } else {
            None
        };
        RegsSignals {
            unreadable,
            gpc: self.gpc.or(ec),
            gdpr: self.gdpr.or(eg),
            us_privacy: self.us_privacy.clone().or(eu),
            gpp: self.gpp.clone().or(ep),
            gpp_sid: if self.gpp_sid.is_empty() {
                es
            } else {
                self.gpp_sid.clone()
            },
            shadowed,
            dsa,
        }
    }

    /// GDPR applies (1) or not (0): 2.6 `regs.gdpr`, else 2.5 `regs.ext.gdpr`
    /// (which some exchanges send as `"1"`).
    pub fn gdpr(&self) -> Option<i32> {
        self.gdpr.or_else(|| ext_as::<RegsExt<'a>>(self.ext)?.gdpr)
    }

    /// CCPA/USP string: 2.6 `regs.us_privacy`, else 2.5 `regs.ext.us_privacy`.
    pub fn us_privacy(&self) -> Option<Cow<'a, str>> {
        if let Some(s) = &self.us_privacy {
            return Some(s.clone());
        }
        ext_as::<RegsExt<'a>>(self.ext)?.us_privacy
    }

    /// GPP string: `regs.gpp`, else `regs.ext.gpp` (pre-2.6 exchanges).
    pub fn gpp(&self) -> Option<Cow<'a, str>> {
        if let Some(s) = &self.gpp {
            return Some(s.clone());
        }
        ext_as::<RegsExt<'a>>(self.ext)?.gpp
    }

    /// GPP section ids: `regs.gpp_sid`, else `regs.ext.gpp_sid`.
    pub fn gpp_sid(&self) -> Cow<'_, [i32]> {
        if !self.gpp_sid.is_empty() {
            return Cow::Borrowed(&self.gpp_sid);
        }
        Cow::Owned(
            ext_as::<RegsExt<'a>>(self.ext)
                .map(|e| e.gpp_sid.into_vec())
                .unwrap_or_default(),
        )
    }

    /// COPPA applies.
    pub fn is_coppa(&self) -> bool {
        self.coppa.unwrap_or(0) != 0
    }
}

/// Where the request came from.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Source<'a> {
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub fd: Option<i32>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub tid: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub pchain: Option<Cow<'a, str>>,
    /// 2.6 field; read [`Source::schain`], which falls back to the 2.5 ext form.
    #[serde(borrow, default)]
    pub schain: Option<SupplyChain<'a>>,
    #[serde(borrow, default)]
    pub ext: Ext<'a>,
}

#[derive(Default)]
pub(crate) struct SourceExt<'a> {
    pub(crate) schain: Option<SupplyChain<'a>>,
}

impl<'a> Source<'a> {
    /// The supply chain: 2.6 `source.schain`, else 2.5 `source.ext.schain`.
    /// A malformed ext reads as `None`.
    pub fn schain(&self) -> Option<Cow<'_, SupplyChain<'a>>> {
        if let Some(s) = &self.schain {
            return Some(Cow::Borrowed(s));
        }
        ext_as::<SourceExt<'a>>(self.ext)?.schain.map(Cow::Owned)
    }
}

/// The SupplyChain object (sellers.json path to the inventory).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SupplyChain<'a> {
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub complete: Option<i32>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub ver: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::vec")]
    pub nodes: Vec<SupplyChainNode<'a>>,
    #[serde(borrow, default)]
    pub ext: Ext<'a>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SupplyChainNode<'a> {
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub asi: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub sid: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub hp: Option<i32>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub rid: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub name: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de::opt_str")]
    pub domain: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub ext: Ext<'a>,
}

//! The request reader: JSON bytes straight into [`BidRequest`].
//!
//! serde's derive reads this model too (`crate::de`), and stays as the
//! reference: the fuzz properties (`tests/fuzz.rs`) hold the two to the same
//! result, or the same kind of refusal, on the corpus, mutations of it and
//! random JSON. Two refusals are this reader's own: more than
//! [`crate::MAX_LISTED_OBJECTS`] objects in the lists of one request, and
//! more than [`crate::MAX_PARSED_BYTES`] held once it is read. This one
//! is the one the bidder runs, because parsing was most of a bid's cost: one
//! pass, fields matched on their key text, values nobody reads stepped over
//! without being built.
//!
//! Each object's fields are listed once below, in the struct's order, with
//! the reader that gives the field its tolerance (`fields.rs`). Duplicate
//! keys fail like serde's `duplicate field`; an array where an object belongs
//! is read positionally, as serde reads a struct from a sequence (which is
//! what makes PHP's `[]` for an empty object work).

mod cursor;
mod fields;
mod keys;

use crate::error::ParseError;
use crate::request::*;
use cursor::{Cursor, Result};
use keys::Keys;

/// An object of the model: how to read it from a JSON object or array.
pub(crate) trait Object<'a>: Default {
    /// How a refusal names what was expected here.
    const EXPECTED: &'static str;

    /// Reads the value at the cursor into a defaulted `self`. In place: the
    /// larger objects cost more to move than to fill.
    fn read_into(&mut self, c: &mut Cursor<'a>) -> Result<()>;

    fn read(c: &mut Cursor<'a>) -> Result<Self> {
        let mut out = Self::default();
        out.read_into(c)?;
        Ok(out)
    }
}

pub(crate) fn request(body: &[u8]) -> std::result::Result<BidRequest<'_>, ParseError> {
    let mut c = Cursor::new(body);
    let read = BidRequest::read(&mut c).and_then(|req| c.end().map(|()| req));
    read.map_err(|e| ParseError::at(body, e.at, e.data, &e.reason))
}

/// An ext's raw text (JSON the request's reading checked) read as `T`:
/// `None` where serde_json's `from_str` would refuse it.
pub(crate) fn ext<'a, T: Object<'a>>(raw: &'a str) -> Option<T> {
    let mut c = Cursor::of_text(raw);
    let out = T::read(&mut c).ok()?;
    c.end().ok()?;
    Some(out)
}

/// Reads the object at the cursor, whichever object it is: `keys` are its
/// fields' keys, `set(c, i)` reads the value at the cursor into field `i`.
///
/// One loop for every object, out of line: each object used to inline its
/// own, and the code a bid ran through grew by a copy per object read (see
/// `keys.rs`). What stays per object is `set`, a jump to its fields' readers.
#[inline(never)]
fn read_fields<'a>(
    c: &mut Cursor<'a>,
    keys: &Keys,
    expected: &'static str,
    set: &mut dyn FnMut(&mut Cursor<'a>, usize) -> Result<()>,
) -> Result<()> {
    match c.peek_value()? {
        b'{' => {
            c.bump();
            // One bit per field, to refuse a key seen twice as serde does.
            let mut seen = 0u64;
            let mut first = true;
            loop {
                let at = c.pos();
                let Some(key) = c.next_key(&mut first)? else {
                    break;
                };
                match keys.field(key) {
                    Some(i) => {
                        let bit = 1u64 << i;
                        if seen & bit != 0 {
                            return Err(c.duplicate(at, keys.name(i)));
                        }
                        seen |= bit;
                        c.colon()?;
                        set(c, i)?;
                    }
                    None => {
                        c.colon()?;
                        c.skip()?;
                    }
                }
            }
        }
        b'[' => {
            c.bump();
            let mut first = true;
            for i in 0..keys.len() {
                if !c.next_element(&mut first)? {
                    return Ok(());
                }
                set(c, i)?;
            }
            c.end_positional()?;
        }
        _ => return Err(c.invalid_type(expected)),
    }
    Ok(())
}

macro_rules! object {
    ($ty:ident { $($fields:tt)* }) => {
        object!(@impl [$ty<'a>] $ty { $($fields)* });
    };
    // A type that borrows nothing from the body.
    ($ty:ident owned { $($fields:tt)* }) => {
        object!(@impl [$ty] $ty { $($fields)* });
    };
    (@impl [$($self:tt)*] $ty:ident { $($key:literal => $field:ident: $read:ident,)* }) => {
        impl<'a> Object<'a> for $($self)* {
            const EXPECTED: &'static str = concat!("struct ", stringify!($ty));

            fn read_into(&mut self, c: &mut Cursor<'a>) -> Result<()> {
                // The fields in the struct's order: `seen` has a bit each.
                #[allow(non_camel_case_types, clippy::enum_variant_names)]
                enum Field {
                    $($field,)*
                }
                const NAMES: &[&str] = &[$($key,)*];
                const _: () = assert!(NAMES.len() <= 64);
                const PACKED: [u128; NAMES.len()] = keys::packed(NAMES);
                static KEYS: Keys = Keys::new(NAMES, &PACKED);
                // The field numbers, as constants a `match` can compare with.
                struct Index;
                #[allow(non_upper_case_globals)]
                impl Index {
                    $(const $field: usize = Field::$field as usize;)*
                }
                let out = self;
                read_fields(c, &KEYS, Self::EXPECTED, &mut |c, i| {
                    match i {
                        $(Index::$field => out.$field = fields::$read(c)?,)*
                        _ => {}
                    }
                    Ok(())
                })
            }
        }
    };
}

object!(BidRequest {
        "id" => id: str_or_empty,
        "imp" => imp: list,
        "site" => site: boxed,
        "app" => app: boxed,
        "dooh" => dooh: ext,
        "device" => device: boxed,
        "user" => user: boxed,
        "regs" => regs: opt,
        "source" => source: opt,
        "test" => test: opt_i32,
        "at" => at: opt_i32,
        "tmax" => tmax: opt_i32,
        "cur" => cur: str_vec,
        "wseat" => wseat: str_vec,
        "bseat" => bseat: str_vec,
        "bcat" => bcat: str_vec,
        "cattax" => cattax: opt_i32,
        "badv" => badv: str_vec,
        "bapp" => bapp: str_vec,
        "ext" => ext: ext,
});

object!(Imp {
        "id" => id: str_or_empty,
        "banner" => banner: boxed,
        "video" => video: boxed,
        "audio" => audio: boxed,
        "native" => native: opt,
        "pmp" => pmp: opt,
        "tagid" => tagid: opt_str,
        "bidfloor" => bidfloor: floor,
        "bidfloorcur" => bidfloorcur: currency,
        "instl" => instl: opt_i32,
        "secure" => secure: opt_i32,
        "rwdd" => rwdd: opt_i32,
        "exp" => exp: opt_i32,
        "ext" => ext: ext,
});

object!(Format {
        "w" => w: opt_i32,
        "h" => h: opt_i32,
        "wratio" => wratio: opt_i32,
        "hratio" => hratio: opt_i32,
        "wmin" => wmin: opt_i32,
        "ext" => ext: ext,
});

object!(Banner {
        "format" => format: list,
        "w" => w: opt_i32,
        "h" => h: opt_i32,
        "btype" => btype: i32_vec,
        "battr" => battr: i32_vec,
        "pos" => pos: opt_i32,
        "mimes" => mimes: str_vec,
        "topframe" => topframe: opt_i32,
        "api" => api: i32_vec,
        "id" => id: opt_str,
        "vcm" => vcm: opt_i32,
        "ext" => ext: ext,
});

object!(Video {
        "mimes" => mimes: str_vec,
        "minduration" => minduration: opt_i32,
        "maxduration" => maxduration: opt_i32,
        "rqddurs" => rqddurs: i32_vec,
        "protocols" => protocols: i32_vec,
        "protocol" => protocol: opt_i32,
        "w" => w: opt_i32,
        "h" => h: opt_i32,
        "startdelay" => startdelay: opt_i32,
        "placement" => placement: opt_i32,
        "plcmt" => plcmt: opt_i32,
        "linearity" => linearity: opt_i32,
        "skip" => skip: opt_i32,
        "skipmin" => skipmin: opt_i32,
        "skipafter" => skipafter: opt_i32,
        "sequence" => sequence: opt_i32,
        "battr" => battr: i32_vec,
        "maxextended" => maxextended: opt_i32,
        "minbitrate" => minbitrate: opt_i32,
        "maxbitrate" => maxbitrate: opt_i32,
        "boxingallowed" => boxingallowed: opt_i32,
        "playbackmethod" => playbackmethod: i32_vec,
        "playbackend" => playbackend: opt_i32,
        "delivery" => delivery: i32_vec,
        "pos" => pos: opt_i32,
        "companionad" => companionad: list,
        "api" => api: i32_vec,
        "apis" => apis: i32_vec,
        "companiontype" => companiontype: i32_vec,
        "podid" => podid: opt_str,
        "podseq" => podseq: opt_i32,
        "slotinpod" => slotinpod: opt_i32,
        "poddur" => poddur: opt_i32,
        "maxseq" => maxseq: opt_i32,
        "mincpmpersec" => mincpmpersec: opt_floor,
        "ext" => ext: ext,
});

object!(Audio {
        "mimes" => mimes: str_vec,
        "minduration" => minduration: opt_i32,
        "maxduration" => maxduration: opt_i32,
        "rqddurs" => rqddurs: i32_vec,
        "poddur" => poddur: opt_i32,
        "protocols" => protocols: i32_vec,
        "startdelay" => startdelay: opt_i32,
        "sequence" => sequence: opt_i32,
        "podid" => podid: opt_str,
        "podseq" => podseq: opt_i32,
        "slotinpod" => slotinpod: opt_i32,
        "maxseq" => maxseq: opt_i32,
        "battr" => battr: i32_vec,
        "maxextended" => maxextended: opt_i32,
        "minbitrate" => minbitrate: opt_i32,
        "maxbitrate" => maxbitrate: opt_i32,
        "delivery" => delivery: i32_vec,
        "companionad" => companionad: list,
        "api" => api: i32_vec,
        "companiontype" => companiontype: i32_vec,
        "feed" => feed: opt_i32,
        "stitched" => stitched: opt_i32,
        "nvol" => nvol: opt_i32,
        "ext" => ext: ext,
});

object!(Native {
        "request" => request: ext,
        "ver" => ver: opt_str,
        "api" => api: i32_vec,
        "battr" => battr: i32_vec,
        "ext" => ext: ext,
});

object!(Pmp {
        "private_auction" => private_auction: opt_i32,
        "deals" => deals: list,
        "ext" => ext: ext,
});

object!(Deal {
        "id" => id: str_or_empty,
        "bidfloor" => bidfloor: floor,
        "bidfloorcur" => bidfloorcur: currency,
        "at" => at: opt_i32,
        "wseat" => wseat: str_vec,
        "wadomain" => wadomain: str_vec,
        "ext" => ext: ext,
});

object!(Site {
        "id" => id: opt_str,
        "name" => name: opt_str,
        "domain" => domain: opt_str,
        "cat" => cat: str_vec,
        "sectioncat" => sectioncat: str_vec,
        "pagecat" => pagecat: str_vec,
        "cattax" => cattax: opt_i32,
        "page" => page: opt_str,
        "ref" => r#ref: opt_str,
        "search" => search: opt_str,
        "keywords" => keywords: opt_str,
        "kwarray" => kwarray: str_vec,
        "mobile" => mobile: opt_i32,
        "publisher" => publisher: opt,
        "content" => content: boxed,
        "ext" => ext: ext,
});

object!(App {
        "id" => id: opt_str,
        "name" => name: opt_str,
        "bundle" => bundle: opt_str,
        "domain" => domain: opt_str,
        "storeurl" => storeurl: opt_str,
        "cat" => cat: str_vec,
        "sectioncat" => sectioncat: str_vec,
        "pagecat" => pagecat: str_vec,
        "cattax" => cattax: opt_i32,
        "ver" => ver: opt_str,
        "keywords" => keywords: opt_str,
        "kwarray" => kwarray: str_vec,
        "publisher" => publisher: opt,
        "content" => content: boxed,
        "ext" => ext: ext,
});

object!(Publisher {
        "id" => id: opt_str,
        "name" => name: opt_str,
        "domain" => domain: opt_str,
        "cat" => cat: str_vec,
        "ext" => ext: ext,
});

object!(Content {
        "id" => id: opt_str,
        "episode" => episode: opt_i32,
        "title" => title: opt_str,
        "series" => series: opt_str,
        "season" => season: opt_str,
        "genre" => genre: opt_str,
        "url" => url: opt_str,
        "cat" => cat: str_vec,
        "cattax" => cattax: opt_i32,
        "keywords" => keywords: opt_str,
        "kwarray" => kwarray: str_vec,
        "livestream" => livestream: opt_i32,
        "len" => len: opt_i32,
        "language" => language: opt_str,
        "prodq" => prodq: opt_i32,
        "context" => context: opt_i32,
        "producer" => producer: opt,
        "data" => data: list,
        "ext" => ext: ext,
});

object!(Device {
        "ua" => ua: opt_str,
        "geo" => geo: opt,
        "dnt" => dnt: opt_i32,
        "lmt" => lmt: opt_i32,
        "ip" => ip: opt_str,
        "ipv6" => ipv6: opt_str,
        "devicetype" => devicetype: opt_i32,
        "make" => make: opt_str,
        "model" => model: opt_str,
        "os" => os: opt_str,
        "osv" => osv: opt_str,
        "h" => h: opt_i32,
        "w" => w: opt_i32,
        "language" => language: opt_str,
        "carrier" => carrier: opt_str,
        "connectiontype" => connectiontype: opt_i32,
        "ifa" => ifa: opt_str,
        "ext" => ext: ext,
});

object!(Geo {
        "lat" => lat: opt_f64,
        "lon" => lon: opt_f64,
        "long" => long: opt_f64,
        "type" => r#type: opt_i32,
        "country" => country: opt_str,
        "region" => region: opt_str,
        "metro" => metro: opt_str,
        "city" => city: opt_str,
        "zip" => zip: opt_str,
        "utcoffset" => utcoffset: opt_i32,
        "ext" => ext: ext,
});

object!(User {
        "id" => id: opt_str,
        "buyeruid" => buyeruid: opt_str,
        "yob" => yob: opt_i32,
        "gender" => gender: opt_str,
        "keywords" => keywords: opt_str,
        "kwarray" => kwarray: str_vec,
        "consent" => consent: opt_str,
        "geo" => geo: opt,
        "data" => data: list,
        "eids" => eids: list,
        "ext" => ext: ext,
});

object!(Data {
        "id" => id: opt_str,
        "name" => name: opt_str,
        "segment" => segment: list,
        "ext" => ext: ext,
});

object!(Segment {
        "id" => id: opt_str,
        "name" => name: opt_str,
        "value" => value: opt_str,
        "ext" => ext: ext,
});

object!(Eid {
        "source" => source: opt_str,
        "uids" => uids: list,
        "ext" => ext: ext,
});

object!(Uid {
        "id" => id: opt_str,
        "atype" => atype: opt_i32,
        "ext" => ext: ext,
});

object!(Regs {
        "coppa" => coppa: opt_i32,
        "gdpr" => gdpr: opt_i32,
        "us_privacy" => us_privacy: opt_str,
        "gpp" => gpp: opt_str,
        "gpp_sid" => gpp_sid: i32_vec,
        "ext" => ext: ext,
});

object!(Source {
        "fd" => fd: opt_i32,
        "tid" => tid: opt_str,
        "pchain" => pchain: opt_str,
        "schain" => schain: opt,
        "ext" => ext: ext,
});

object!(SupplyChain {
        "complete" => complete: opt_i32,
        "ver" => ver: opt_str,
        "nodes" => nodes: list,
        "ext" => ext: ext,
});

object!(SupplyChainNode {
        "asi" => asi: opt_str,
        "sid" => sid: opt_str,
        "hp" => hp: opt_i32,
        "rid" => rid: opt_str,
        "name" => name: opt_str,
        "domain" => domain: opt_str,
        "ext" => ext: ext,
});

// What bidders read out of exts: the 2.5 homes of fields 2.6 made
// members (see the accessors in `crate::request`).

object!(UserExt {
        "consent" => consent: opt_str,
});

object!(UserExtEids {
        "eids" => eids: list,
});

object!(DataExt owned {
        "segtax" => segtax: opt_i32,
});

object!(RegsExt {
        "gdpr" => gdpr: opt_i32,
        "us_privacy" => us_privacy: opt_str,
        "gpp" => gpp: opt_str,
        "gpp_sid" => gpp_sid: i32_vec,
});

object!(SourceExt {
        "schain" => schain: opt,
});

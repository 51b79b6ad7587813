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
mod scan;

use crate::error::ParseError;
use crate::request::*;
use cursor::{Cursor, Result};
use keys::Keys;

/// An object of the model: how to read it from a JSON object or array.
pub(crate) trait Object<'a>: Default {
    /// How a refusal names what was expected here.
    const EXPECTED: &'static str;

    /// The object's keys, in the order of its fields.
    fn keys() -> &'static Keys;

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
    let mut slot = None;
    request_into(body, &mut slot)?;
    Ok(slot.unwrap_or_else(|| unreachable!("a request read is in its slot")))
}

/// Reads `body` into a new request in `slot`: in place, where the caller
/// keeps it. Returned by value, the request (some 4 KB, its site, device
/// and user inline) was copied once more on its way out, some 450
/// instructions. The slot is filled afresh whatever it held, so no field
/// of an earlier request can survive into this one.
pub(crate) fn request_into<'a, 's>(
    body: &'a [u8],
    slot: &'s mut Option<BidRequest<'a>>,
) -> std::result::Result<&'s BidRequest<'a>, ParseError> {
    let mut c = Cursor::new(body);
    let req = slot.insert(BidRequest::default());
    match req.read_into(&mut c).and_then(|()| c.end()) {
        Ok(()) => Ok(req),
        Err(e) => Err(ParseError::at(body, e.at, e.data, &e.reason)),
    }
}

/// An ext's raw text (JSON the request's reading checked) read as `T`:
/// `None` where serde_json's `from_str` would refuse it, and where the
/// ext alone holds more than [`crate::MAX_LISTED_OBJECTS`] objects in its
/// lists or [`crate::MAX_PARSED_BYTES`] once read (serde_json had no
/// bound: an ext of a million eids was a million objects per accessor
/// call). Each read has its own budget; the bidder reads each ext a fixed
/// number of times per request.
pub(crate) fn ext<'a, T: Object<'a>>(raw: &'a str) -> Option<T> {
    let mut c = Cursor::of_text(raw);
    let out = T::read(&mut c).ok()?;
    c.end().ok()?;
    Some(out)
}

/// A list of strings in `raw` (JSON the request's reading checked), read
/// as the request's own lists are (`str_vec`); `None` where that reading
/// refuses it, or the list passes the reader's bounds.
pub(crate) fn str_list(raw: &str) -> Option<Strs<'_>> {
    let mut c = Cursor::of_text(raw);
    let mut out = Strs::new();
    fields::str_vec_into(&mut c, &mut out).ok()?;
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
    // Objects are read into their place in the parent: built in a reader's
    // frame and returned, a `Site` (about 700 bytes) was copied on its way
    // up, a `memcpy` per object of some 100-450 instructions.
    (@set $out:ident, $c:ident, $field:ident, opt) => {
        fields::opt_into($c, &mut $out.$field)?
    };
    (@set $out:ident, $c:ident, $field:ident, boxed) => {
        fields::boxed_into($c, &mut $out.$field)?
    };
    (@set $out:ident, $c:ident, $field:ident, str_vec) => {
        fields::str_vec_into($c, &mut $out.$field)?
    };
    (@set $out:ident, $c:ident, $field:ident, i32_vec) => {
        fields::i32_vec_into($c, &mut $out.$field)?
    };
    (@set $out:ident, $c:ident, $field:ident, marked_vec) => {
        fields::marked_vec_into($c, &mut $out.$field)?
    };
    (@set $out:ident, $c:ident, $field:ident, opt_str) => {
        fields::opt_str_into($c, &mut $out.$field)?
    };
    (@set $out:ident, $c:ident, $field:ident, lenient) => {
        fields::lenient_into($c, &mut $out.$field)?
    };
    (@set $out:ident, $c:ident, $field:ident, $read:ident) => {
        $out.$field = fields::$read($c)?
    };
    (@impl [$($self:tt)*] $ty:ident { $($key:literal => $field:ident: $read:ident,)* }) => {
        impl<'a> Object<'a> for $($self)* {
            const EXPECTED: &'static str = concat!("struct ", stringify!($ty));

            fn keys() -> &'static Keys {
                // The fields in the struct's order: `seen` has a bit each.
                const NAMES: &[&str] = &[$($key,)*];
                const _: () = assert!(NAMES.len() <= 64);
                const PACKED: [u128; NAMES.len()] = keys::packed(NAMES);
                static KEYS: Keys = Keys::new(NAMES, &PACKED);
                &KEYS
            }

            fn read_into(&mut self, c: &mut Cursor<'a>) -> Result<()> {
                #[allow(non_camel_case_types, clippy::enum_variant_names)]
                enum Field {
                    $($field,)*
                }
                // The field numbers, as constants a `match` can compare with.
                struct Index;
                #[allow(non_upper_case_globals)]
                impl Index {
                    $(const $field: usize = Field::$field as usize;)*
                }
                let out = self;
                read_fields(c, Self::keys(), Self::EXPECTED, &mut |c, i| {
                    match i {
                        $(Index::$field => object!(@set out, c, $field, $read),)*
                        _ => {}
                    }
                    Ok(())
                })
            }
        }
    };
}

object!(BidRequest {
        "id" => id: id,
        "imp" => imp: list,
        "site" => site: opt,
        "app" => app: opt,
        "dooh" => dooh: ext,
        "device" => device: opt,
        "user" => user: opt,
        "regs" => regs: opt,
        "source" => source: opt,
        "test" => test: opt_i32,
        "at" => at: opt_i32,
        "tmax" => tmax: opt_i32,
        "cur" => cur: str_vec,
        "wseat" => wseat: str_vec,
        "bseat" => bseat: str_vec,
        "bcat" => bcat: str_vec,
        "acat" => acat: str_vec,
        "cattax" => cattax: opt_i32,
        "badv" => badv: str_vec,
        "bapp" => bapp: str_vec,
        "wlang" => wlang: ext,
        "wlangb" => wlangb: ext,
        "ext" => ext: ext,
});

object!(Imp {
        "id" => id: id,
        "banner" => banner: boxed,
        "video" => video: boxed,
        "audio" => audio: boxed,
        "native" => native: opt,
        "pmp" => pmp: opt,
        "tagid" => tagid: opt_str,
        "bidfloor" => bidfloor: floor,
        "bidfloorcur" => bidfloorcur: currency,
        "instl" => instl: opt_i32,
        "secure" => secure: opt_flag,
        "rwdd" => rwdd: opt_i32,
        "exp" => exp: opt_i32,
        "qty" => qty: opt,
        "ext" => ext: ext,
});

object!(Qty owned {
        "multiplier" => multiplier: opt_f64,
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
        "btype" => btype: marked_vec,
        "battr" => battr: marked_vec,
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
        "protocols" => protocols: marked_vec,
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
        "battr" => battr: marked_vec,
        "maxextended" => maxextended: opt_i32,
        "minbitrate" => minbitrate: opt_i32,
        "maxbitrate" => maxbitrate: opt_i32,
        "boxingallowed" => boxingallowed: opt_i32,
        "playbackmethod" => playbackmethod: i32_vec,
        "playbackend" => playbackend: opt_i32,
        "delivery" => delivery: marked_vec,
        "pos" => pos: opt_i32,
        "companionad" => companionad: list,
        "api" => api: i32_vec,
        "apis" => apis: i32_vec,
        "companiontype" => companiontype: marked_vec,
        "podid" => podid: opt_str,
        "podseq" => podseq: opt_i32,
        "slotinpod" => slotinpod: opt_i32,
        "poddur" => poddur: opt_i32,
        "maxseq" => maxseq: opt_i32,
        "mincpmpersec" => mincpmpersec: opt_floor,
        "durfloors" => durfloors: list,
        "ext" => ext: ext,
});

object!(DurFloor owned {
        "mindur" => mindur: opt_i32,
        "maxdur" => maxdur: opt_i32,
        "bidfloor" => bidfloor: opt_floor,
});

object!(Audio {
        "mimes" => mimes: str_vec,
        "minduration" => minduration: opt_i32,
        "maxduration" => maxduration: opt_i32,
        "rqddurs" => rqddurs: i32_vec,
        "poddur" => poddur: opt_i32,
        "protocols" => protocols: marked_vec,
        "startdelay" => startdelay: opt_i32,
        "sequence" => sequence: opt_i32,
        "podid" => podid: opt_str,
        "podseq" => podseq: opt_i32,
        "slotinpod" => slotinpod: opt_i32,
        "maxseq" => maxseq: opt_i32,
        "battr" => battr: marked_vec,
        "maxextended" => maxextended: opt_i32,
        "minbitrate" => minbitrate: opt_i32,
        "maxbitrate" => maxbitrate: opt_i32,
        "delivery" => delivery: marked_vec,
        "companionad" => companionad: list,
        "api" => api: i32_vec,
        "companiontype" => companiontype: marked_vec,
        "feed" => feed: opt_i32,
        "stitched" => stitched: opt_i32,
        "nvol" => nvol: opt_i32,
        "mincpmpersec" => mincpmpersec: opt_floor,
        "durfloors" => durfloors: list,
        "ext" => ext: ext,
});

object!(Native {
        "request" => request: ext,
        "ver" => ver: opt_str,
        "api" => api: i32_vec,
        "battr" => battr: marked_vec,
        "ext" => ext: ext,
});

object!(Pmp {
        "private_auction" => private_auction: opt_flag,
        "deals" => deals: list,
        "ext" => ext: ext,
});

object!(Deal {
        "id" => id: id,
        "bidfloor" => bidfloor: floor,
        "bidfloorcur" => bidfloorcur: currency,
        "at" => at: opt_i32,
        "wseat" => wseat: str_vec,
        "wadomain" => wadomain: str_vec,
        "mincpmpersec" => mincpmpersec: opt_floor,
        "durfloors" => durfloors: list,
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
        "content" => content: opt,
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
        "content" => content: opt,
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
        "dnt" => dnt: opt_flag,
        "lmt" => lmt: opt_flag,
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
        "coppa" => coppa: opt_flag,
        "gdpr" => gdpr: opt_flag,
        "us_privacy" => us_privacy: opt_str,
        "gpp" => gpp: opt_str,
        "gpp_sid" => gpp_sid: i32_vec,
        "gpc" => gpc: opt_flag,
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

// `atts` as a privacy flag: a value that is there and reads as no
// integer ("denied", 2.5) is unreadable, not absent, and restricts.
object!(DeviceExt owned {
        "atts" => atts: opt_flag,
});

// `dsa` leniently: a DSA object that cannot be read must not make the
// privacy signals beside it unreadable (which restricts).
object!(RegsExt {
        "gdpr" => gdpr: opt_flag,
        "us_privacy" => us_privacy: opt_str,
        "gpp" => gpp: opt_str,
        "gpp_sid" => gpp_sid: i32_vec,
        "gpc" => gpc: opt_flag,
        "dsa" => dsa: lenient,
});

object!(SourceExt {
        "schain" => schain: opt,
});

object!(Dsa owned {
        "dsarequired" => dsarequired: opt_i32,
        "pubrender" => pubrender: opt_i32,
});

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use proptest::prelude::*;
    use serde::Deserialize;

    use super::*;
    use crate::de;

    /// Each object's keys, as its own table finds them.
    fn tables() -> Vec<(&'static str, &'static Keys)> {
        macro_rules! tables {
            ($($ty:ty),* $(,)?) => {
                vec![$((stringify!($ty), <$ty as Object<'static>>::keys()),)*]
            };
        }
        tables![
            BidRequest<'static>,
            Imp<'static>,
            Format<'static>,
            Banner<'static>,
            Video<'static>,
            Audio<'static>,
            Native<'static>,
            Pmp<'static>,
            Deal<'static>,
            Site<'static>,
            App<'static>,
            Publisher<'static>,
            Content<'static>,
            Device<'static>,
            Geo<'static>,
            User<'static>,
            Data<'static>,
            Segment<'static>,
            Eid<'static>,
            Uid<'static>,
            Regs<'static>,
            Source<'static>,
            SupplyChain<'static>,
            SupplyChainNode<'static>,
            UserExt<'static>,
            UserExtEids<'static>,
            DataExt,
            DeviceExt,
            RegsExt<'static>,
            SourceExt<'static>,
            Dsa,
        ]
    }

    /// Every object finds each of its keys at its field, and no other
    /// object's key, nor keys one byte off, nor long keys.
    #[test]
    fn each_object_finds_its_own_keys_and_no_other() {
        let tables = tables();
        let mut every: Vec<String> = tables
            .iter()
            .flat_map(|(_, k)| (0..k.len()).map(|i| k.name(i).to_owned()))
            .collect();
        let near: Vec<String> = every
            .iter()
            .flat_map(|k| {
                [
                    format!("{k}x"),
                    format!("x{k}"),
                    k[1..].to_owned(),
                    k.to_uppercase(),
                ]
            })
            .collect();
        every.extend(near);
        every.extend(
            ["", "a_key_of_sixteen", "a much longer key than any field's"].map(String::from),
        );
        for (ty, keys) in &tables {
            let own: Vec<&str> = (0..keys.len()).map(|i| keys.name(i)).collect();
            for (i, name) in own.iter().enumerate() {
                assert_eq!(
                    keys.field(cursor::pack(name.as_bytes())),
                    Some(i),
                    "{ty}.{name}"
                );
            }
            for key in &every {
                if !own.contains(&key.as_str()) {
                    assert_eq!(
                        keys.field(cursor::pack(key.as_bytes())),
                        None,
                        "{ty}: {key:?}"
                    );
                }
            }
        }
    }

    // The ext structs as serde's derive read them before the reader did.

    #[derive(Deserialize)]
    struct SerdeRegsExt<'a> {
        #[serde(default, deserialize_with = "de::opt_flag")]
        gdpr: Option<i32>,
        #[serde(borrow, default, deserialize_with = "de::opt_str")]
        us_privacy: Option<Cow<'a, str>>,
        #[serde(borrow, default, deserialize_with = "de::opt_str")]
        gpp: Option<Cow<'a, str>>,
        #[serde(default, deserialize_with = "de::codes")]
        gpp_sid: crate::request::Codes,
    }

    #[derive(Deserialize)]
    struct SerdeUserExt<'a> {
        #[serde(borrow, default, deserialize_with = "de::opt_str")]
        consent: Option<Cow<'a, str>>,
    }

    #[derive(Deserialize)]
    struct SerdeUserExtEids<'a> {
        #[serde(borrow, default, deserialize_with = "de::vec")]
        eids: Vec<Eid<'a>>,
    }

    #[derive(Deserialize)]
    struct SerdeDataExt {
        #[serde(default, deserialize_with = "de::opt_i32")]
        segtax: Option<i32>,
    }

    #[derive(Deserialize)]
    struct SerdeDeviceExt {
        #[serde(default, deserialize_with = "de::opt_flag")]
        atts: Option<i32>,
    }

    #[derive(Deserialize)]
    struct SerdeSourceExt<'a> {
        #[serde(borrow, default)]
        schain: Option<SupplyChain<'a>>,
    }

    /// An ext's text: an object or an array of members whose keys the ext
    /// structs read (twice at times), escaped or not, and values of every
    /// shape those fields meet.
    fn ext_text() -> impl Strategy<Value = String> {
        let key = prop::sample::select(vec![
            "gdpr",
            "us_privacy",
            "gpp",
            "gpp_sid",
            "consent",
            "eids",
            "schain",
            "segtax",
            "atts",
            "\\u0067dpr",
            "other",
            "",
        ]);
        let value = prop::sample::select(vec![
            "null",
            "true",
            "0",
            "1",
            "-1",
            "1.0",
            "1e3",
            "2147483648",
            "\"1\"",
            "\" 7 \"",
            "\"x\"",
            "\"\\u00e9\\n\"",
            "\"\\ud800\"",
            "[]",
            "[1,\"2\",null,true]",
            "{}",
            "[{}]",
            "[{\"source\":\"s\",\"uids\":[{\"id\":\"u\",\"atype\":1}]}]",
            "{\"complete\":1,\"nodes\":[{\"asi\":\"a\",\"hp\":\"1\"},null]}",
            "{\"nodes\":{}}",
            "[[]]",
        ]);
        let members = prop::collection::vec((key, value.clone()), 0..5);
        prop_oneof![
            members.prop_map(|m| {
                let m: Vec<String> = m.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", m.join(","))
            }),
            prop::collection::vec(value, 0..5).prop_map(|v| format!("[{}]", v.join(","))),
            prop::sample::select(vec!["null", "1", "\"s\"", "true"]).prop_map(String::from),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Each ext read gives what serde's derive gave, or `None` where it
        /// refused.
        #[test]
        fn exts_read_as_serde_read_them(text in ext_text()) {
            let t = text.as_str();
            let ours = ext::<RegsExt<'_>>(t).map(|e| (e.gdpr, e.us_privacy, e.gpp, e.gpp_sid));
            let theirs = serde_json::from_str::<SerdeRegsExt<'_>>(t)
                .ok()
                .map(|e| (e.gdpr, e.us_privacy, e.gpp, e.gpp_sid));
            prop_assert_eq!(ours, theirs, "regs.ext {}", t);
            prop_assert_eq!(
                ext::<UserExt<'_>>(t).map(|e| e.consent),
                serde_json::from_str::<SerdeUserExt<'_>>(t).ok().map(|e| e.consent),
                "user.ext {}", t
            );
            prop_assert_eq!(
                format!("{:?}", ext::<UserExtEids<'_>>(t).map(|e| e.eids)),
                format!("{:?}", serde_json::from_str::<SerdeUserExtEids<'_>>(t).ok().map(|e| e.eids)),
                "user.ext eids {}", t
            );
            prop_assert_eq!(
                ext::<DataExt>(t).map(|e| e.segtax),
                serde_json::from_str::<SerdeDataExt>(t).ok().map(|e| e.segtax),
                "data.ext {}", t
            );
            prop_assert_eq!(
                ext::<DeviceExt>(t).map(|e| e.atts),
                serde_json::from_str::<SerdeDeviceExt>(t).ok().map(|e| e.atts),
                "device.ext {}", t
            );
            prop_assert_eq!(
                format!("{:?}", ext::<SourceExt<'_>>(t).map(|e| e.schain)),
                format!("{:?}", serde_json::from_str::<SerdeSourceExt<'_>>(t).ok().map(|e| e.schain)),
                "source.ext {}", t
            );
        }
    }

    /// Past the reader's bounds an ext reads as absent, where serde read
    /// it whole.
    #[test]
    fn an_ext_past_the_readers_bounds_reads_as_absent() {
        let eids = |n: usize| {
            format!(
                "{{\"eids\":[{}],\"consent\":\"c\"}}",
                vec!["{}"; n].join(",")
            )
        };
        let within = eids(crate::MAX_LISTED_OBJECTS as usize - 1);
        assert_eq!(
            ext::<UserExtEids<'_>>(&within).map(|e| e.eids.len()),
            Some(9_999)
        );
        let past = eids(crate::MAX_LISTED_OBJECTS as usize + 1);
        assert!(ext::<UserExtEids<'_>>(&past).is_none());
        // Other members of the same ext are unaffected.
        assert_eq!(
            ext::<UserExt<'_>>(&past).and_then(|e| e.consent).as_deref(),
            Some("c")
        );
    }
}

//! One line of the event journal: tab-separated, ids percent-encoded (no
//! tab or newline in an account manager's id can break a line), a checksum
//! last so a torn or garbled line is skipped rather than misread.
//!
//! `kind at advertiser order line_item creative exchange keyword product
//! user n amount order_id [audience [features]] crc`. The audience came
//! later: it is written after the rest and only when there is one, so lines
//! written before it (and lines without one) read as they always did. The
//! features an impression or click was priced with (compact form, for
//! `bidder train`) came after it, the same way: written only when there
//! are some, after the audience field (empty when there is no audience, so
//! that the fields stay in place). Reports and their aggregates never read
//! them: they are no dimension.

use std::fmt::Write as _;
use std::sync::Arc;

use config::Micros;

use crate::fact::{Dims, Interner};

pub(crate) const MAGIC: &str = "bidder-events 1";

/// What a record counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `n` bids sent.
    Bid,
    /// `n` requests answered without a bid; the reason is in `product`.
    NoBid,
    Impression,
    Click,
    /// A detail page view attributed to the touch in `dims`.
    View,
    /// A purchase attributed to the touch in `dims`, worth `amount`.
    Purchase,
}

impl Kind {
    fn code(self) -> &'static str {
        match self {
            Kind::Bid => "b",
            Kind::NoBid => "n",
            Kind::Impression => "i",
            Kind::Click => "c",
            Kind::View => "v",
            Kind::Purchase => "p",
        }
    }

    fn of(code: &str) -> Option<Kind> {
        Some(match code {
            "b" => Kind::Bid,
            "n" => Kind::NoBid,
            "i" => Kind::Impression,
            "c" => Kind::Click,
            "v" => Kind::View,
            "p" => Kind::Purchase,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub kind: Kind,
    pub at_ms: i64,
    pub dims: Dims,
    /// The keyed hash of who saw the ad or converted; 0 for none.
    pub user: u64,
    pub n: u64,
    /// A purchase's value in USD micros.
    pub amount: Micros,
    /// The advertiser's order id of a purchase (repeated ones count once).
    pub order_id: Arc<str>,
    /// What an impression or click was priced with, as the tracking URL
    /// carried it ([`predict`'s compact form], opaque here); `None` for
    /// other records and for lines written before features were kept.
    ///
    /// [`predict`'s compact form]: https://docs.rs/predict
    pub features: Option<Arc<str>>,
}

/// FNV-1a, 32 bits: tells a torn or garbled line from a whole one (an
/// accident check: only we write here).
pub(crate) fn checksum(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

const ID: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS.add(b' ').add(b'%');

pub(crate) fn encode(s: &str, out: &mut String) {
    out.extend(percent_encoding::utf8_percent_encode(s, ID));
}

impl Record {
    pub fn write(&self, out: &mut String) {
        let start = out.len();
        out.push_str(self.kind.code());
        let _ = write!(out, "\t{}", self.at_ms);
        let d = &self.dims;
        for s in [
            &d.advertiser,
            &d.order,
            &d.line_item,
            &d.creative,
            &d.exchange,
            &d.keyword,
            &d.product,
        ] {
            out.push('\t');
            encode(s, out);
        }
        let _ = write!(
            out,
            "\t{:016x}\t{}\t{}\t",
            self.user,
            self.n,
            self.amount.as_i64()
        );
        encode(&self.order_id, out);
        let features = self.features.as_deref().filter(|f| !f.is_empty());
        if !self.dims.audience.is_empty() || features.is_some() {
            out.push('\t');
            encode(&self.dims.audience, out);
        }
        if let Some(f) = features {
            out.push('\t');
            encode(f, out);
        }
        let crc = checksum(&out.as_bytes()[start..]);
        let _ = writeln!(out, "\t{crc:08x}");
    }

    /// A line without its newline; `None` when it is not a whole record.
    pub fn parse(line: &str, interner: &mut Interner) -> Option<Record> {
        let mut strings: Vec<Arc<str>> = Vec::with_capacity(9);
        let (raw, features) = parse_with(line, true, |s| {
            strings.push(interner.get(s));
            0
        })?;
        let mut it = strings.into_iter();
        let (advertiser, order, line_item, creative, exchange, keyword, product) = (
            it.next()?,
            it.next()?,
            it.next()?,
            it.next()?,
            it.next()?,
            it.next()?,
            it.next()?,
        );
        let order_id = it.next()?;
        // `""` for lines without one (and those written before it).
        let audience = it.next()?;
        let dims = Dims {
            advertiser,
            order,
            line_item,
            creative,
            exchange,
            keyword,
            audience,
            product,
        };
        Some(Record {
            kind: raw.kind,
            at_ms: raw.at_ms,
            dims,
            user: raw.user,
            n: raw.n,
            amount: raw.amount,
            order_id,
            // Not interned: nearly every impression's are its own.
            features: match features {
                Some(f) => Some(decode(f)?.into()),
                None => None,
            },
        })
    }
}

/// A field as [`encode`] wrote it; `None` when it is not UTF-8.
fn decode(s: &str) -> Option<std::borrow::Cow<'_, str>> {
    percent_encoding::percent_decode_str(s).decode_utf8().ok()
}

/// A record's fields with its strings as ids: what reports read raw days
/// with, no string kept twice.
pub(crate) struct Raw {
    pub kind: Kind,
    pub at_ms: i64,
    /// Advertiser, order, line item, creative, exchange, keyword, product,
    /// audience (the id of `""` when the line has none).
    pub key: [u32; 8],
    pub user: u64,
    pub n: u64,
    pub amount: Micros,
}

/// Reads a line: checks its checksum, decodes each string field and hands
/// it to `id` (the seven dimensions, then the order id if `with_order`,
/// then the audience: `""` when the line has none). The features field,
/// still encoded, is returned beside, not handed to `id`: no report counts
/// by it.
pub(crate) fn parse_with(
    line: &str,
    with_order: bool,
    mut id: impl FnMut(&str) -> u32,
) -> Option<(Raw, Option<&str>)> {
    let (body, crc) = line.rsplit_once('\t')?;
    if u32::from_str_radix(crc, 16).ok()? != checksum(body.as_bytes()) {
        return None;
    }
    let mut f = body.split('\t');
    let kind = Kind::of(f.next()?)?;
    let at_ms = f.next()?.parse().ok()?;
    let mut text = |s: &str| -> Option<u32> {
        if s.contains('%') {
            let d = percent_encoding::percent_decode_str(s).decode_utf8().ok()?;
            Some(id(&d))
        } else {
            Some(id(s))
        }
    };
    let mut key = [0u32; 8];
    for slot in &mut key[..7] {
        *slot = text(f.next()?)?;
    }
    let user = u64::from_str_radix(f.next()?, 16).ok()?;
    let n = f.next()?.parse().ok()?;
    let amount = Micros(f.next()?.parse().ok()?);
    // Reports do not need the order id: checked, not handed on.
    let order = f.next()?;
    if with_order {
        text(order)?;
    }
    key[7] = text(f.next().unwrap_or_default())?;
    let features = f.next();
    if f.next().is_some() || amount < Micros::ZERO || features == Some("") {
        return None;
    }
    Some((
        Raw {
            kind,
            at_ms,
            key,
            user,
            n,
            amount,
        },
        features,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(id: &str) -> Record {
        Record {
            kind: Kind::Purchase,
            at_ms: 1_795_000_000_000,
            dims: Dims {
                advertiser: id.into(),
                keyword: "phrase:tent".into(),
                ..Dims::default()
            },
            user: 0xfeed,
            n: 1,
            amount: Micros(129_990_000),
            order_id: "A-1 %".into(),
            features: None,
        }
    }

    #[test]
    fn damage_is_seen() {
        let mut s = String::new();
        record("acme").write(&mut s);
        let mut i = Interner::default();
        assert_eq!(Record::parse(s.trim_end(), &mut i), Some(record("acme")));
        let garbled = s.replacen("129990000", "999990000", 1);
        assert_eq!(Record::parse(garbled.trim_end(), &mut i), None);
        assert_eq!(Record::parse(&s[..s.len() / 2], &mut i), None);
    }

    #[test]
    fn the_audience_is_written_last_and_only_when_there_is_one() {
        let mut r = record("acme");
        r.dims.audience = "products:tent pages".into();
        let mut s = String::new();
        r.write(&mut s);
        let fields: Vec<&str> = s.trim_end().split('\t').collect();
        assert_eq!(fields.len(), 15, "{s:?}");
        assert_eq!(fields[12], "A-1%20%25", "the order id");
        assert_eq!(fields[13], "products:tent%20pages");
        let mut i = Interner::default();
        assert_eq!(Record::parse(s.trim_end(), &mut i), Some(r));
        let mut plain = String::new();
        record("acme").write(&mut plain);
        assert_eq!(plain.trim_end().split('\t').count(), 14, "{plain:?}");
    }

    #[test]
    fn lines_from_before_audiences_still_read() {
        // A purchase as written before records carried an audience.
        let body = "p\t1795000000000\tacme\t\t\t\t\tphrase:tent\t\t000000000000feed\t1\t129990000\tA-1%20%25";
        let line = format!("{body}\t{:08x}", checksum(body.as_bytes()));
        let mut i = Interner::default();
        let r = Record::parse(&line, &mut i).expect("an old line reads");
        assert_eq!(r, record("acme"));
        assert_eq!(&*r.dims.audience, "");
        let mut ids = Vec::new();
        let (raw, features) = parse_with(&line, false, |s| {
            ids.push(s.to_owned());
            ids.len() as u32
        })
        .expect("an old line reads raw");
        assert_eq!(features, None);
        assert_eq!(ids.last().map(String::as_str), Some(""), "{ids:?}");
        assert_eq!(
            raw.key[7],
            ids.len() as u32,
            "the audience is the empty string"
        );
        assert_eq!(raw.key[5], 6, "the keyword");
    }

    #[test]
    fn features_come_last_after_the_audience_field() {
        let compact = "AQAAqq-_Zz";
        let mut r = record("acme");
        r.kind = Kind::Impression;
        r.features = Some(compact.into());
        let mut s = String::new();
        r.write(&mut s);
        let fields: Vec<&str> = s.trim_end().split('\t').collect();
        assert_eq!(fields.len(), 16, "{s:?}");
        assert_eq!(fields[13], "", "no audience: its field stays, empty");
        assert_eq!(fields[14], compact);
        let mut i = Interner::default();
        assert_eq!(Record::parse(s.trim_end(), &mut i), Some(r.clone()));
        r.dims.audience = "views:tent viewers".into();
        let mut s = String::new();
        r.write(&mut s);
        let fields: Vec<&str> = s.trim_end().split('\t').collect();
        assert_eq!(fields[13..15], ["views:tent%20viewers", compact]);
        assert_eq!(Record::parse(s.trim_end(), &mut i), Some(r.clone()));
        // Reports read the dimensions only; the features come back aside.
        let mut ids = Vec::new();
        let (raw, f) = parse_with(s.trim_end(), false, |s| {
            ids.push(s.to_owned());
            ids.len() as u32
        })
        .expect("reads raw");
        assert_eq!(f, Some(compact));
        assert_eq!(ids.len(), 8, "{ids:?}");
        assert_eq!(raw.key[7], 8, "the audience");
        // An impression as written before features were kept.
        let body = "i\t1795000000000\tacme\t\tli\t\t\t\t\t000000000000feed\t1\t0\t0123";
        let line = format!("{body}\t{:08x}", checksum(body.as_bytes()));
        let old = Record::parse(&line, &mut i).expect("an old line reads");
        assert_eq!((old.kind, old.features), (Kind::Impression, None));
        // Nothing may follow the features; damage is still seen.
        let body = format!("{}\textra", s.trim_end().rsplit_once('\t').unwrap().0);
        let line = format!("{body}\t{:08x}", checksum(body.as_bytes()));
        assert_eq!(Record::parse(&line, &mut i), None);
        let garbled = s.replacen(compact, "AQAAqq-_Zy", 1);
        assert_eq!(Record::parse(garbled.trim_end(), &mut i), None);
    }

    proptest! {
        #[test]
        fn any_id_round_trips_on_one_line(id in "\\PC*|[\t\n\r% ]{0,4}") {
            let mut r = record(&id);
            r.dims.audience = id.as_str().into();
            let mut s = String::new();
            r.write(&mut s);
            prop_assert_eq!(s.matches('\n').count(), 1);
            let mut i = Interner::default();
            prop_assert_eq!(Record::parse(s.trim_end(), &mut i), Some(r));
        }
    }
}

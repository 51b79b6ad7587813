//! One line of the event journal: tab-separated, ids percent-encoded (no
//! tab or newline in an account manager's id can break a line), a checksum
//! last so a torn or garbled line is skipped rather than misread.

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
        let crc = checksum(&out.as_bytes()[start..]);
        let _ = writeln!(out, "\t{crc:08x}");
    }

    /// A line without its newline; `None` when it is not a whole record.
    pub fn parse(line: &str, interner: &mut Interner) -> Option<Record> {
        let mut strings: Vec<Arc<str>> = Vec::with_capacity(8);
        let raw = parse_with(line, true, |s| {
            strings.push(interner.get(s));
            0
        })?;
        let mut it = strings.into_iter();
        let dims = Dims {
            advertiser: it.next()?,
            order: it.next()?,
            line_item: it.next()?,
            creative: it.next()?,
            exchange: it.next()?,
            keyword: it.next()?,
            product: it.next()?,
        };
        Some(Record {
            kind: raw.kind,
            at_ms: raw.at_ms,
            dims,
            user: raw.user,
            n: raw.n,
            amount: raw.amount,
            order_id: it.next()?,
        })
    }
}

/// A record's fields with its strings as ids: what reports read raw days
/// with, no string kept twice.
pub(crate) struct Raw {
    pub kind: Kind,
    pub at_ms: i64,
    /// Advertiser, order, line item, creative, exchange, keyword, product.
    pub key: [u32; 7],
    pub user: u64,
    pub n: u64,
    pub amount: Micros,
}

/// Reads a line: checks its checksum, decodes each string field and hands
/// it to `id` (the seven dimensions, then the order id if `with_order`).
pub(crate) fn parse_with(
    line: &str,
    with_order: bool,
    mut id: impl FnMut(&str) -> u32,
) -> Option<Raw> {
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
    let mut key = [0u32; 7];
    for slot in &mut key {
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
    if f.next().is_some() || amount < Micros::ZERO {
        return None;
    }
    Some(Raw {
        kind,
        at_ms,
        key,
        user,
        n,
        amount,
    })
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

    proptest! {
        #[test]
        fn any_id_round_trips_on_one_line(id in "\\PC*|[\t\n\r% ]{0,4}") {
            let mut s = String::new();
            record(&id).write(&mut s);
            prop_assert_eq!(s.matches('\n').count(), 1);
            let mut i = Interner::default();
            prop_assert_eq!(Record::parse(s.trim_end(), &mut i), Some(record(&id)));
        }
    }
}

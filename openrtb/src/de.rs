//! Tolerant field deserializers.
//!
//! Exchanges send the wrong JSON type for scalar fields often enough that
//! failing the whole request over one of them would lose real traffic, so the
//! scalar readers here never fail: a value of an unusable type reads as absent.
//! Containers (objects, arrays of objects) stay strict, because a wrong type
//! there means the request is not the shape we think it is.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// Drains an array or object we have decided to ignore, so the parser stays in step.
fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

// ---------------------------------------------------------------------------
// Integers

pub(crate) fn f64_to_i32(v: f64) -> Option<i32> {
    // `w: 300.0` is an integer written by a float-typed encoder; 300.5 is not.
    if v.fract() == 0.0 && v >= f64::from(i32::MIN) && v <= f64::from(i32::MAX) {
        Some(v as i32)
    } else {
        None
    }
}

pub(crate) fn str_to_i32(s: &str) -> Option<i32> {
    let s = s.trim();
    s.parse::<i32>()
        .ok()
        .or_else(|| s.parse::<f64>().ok().and_then(f64_to_i32))
}

struct IntVisitor;

impl<'de> Visitor<'de> for IntVisitor {
    type Value = Option<i32>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer")
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(i32::try_from(v).ok())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(i32::try_from(v).ok())
    }

    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(f64_to_i32(v))
    }

    // `"lmt": true`, `"test": false`: flags sent as booleans.
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(i32::from(v)))
    }

    // `"gdpr": "1"` in regs.ext, a well-known exchange habit.
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(str_to_i32(v))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq).map(|()| None)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map).map(|()| None)
    }
}

/// An optional integer that accepts ints, integral floats, bools and numeric
/// strings; anything else (or out of `i32` range) reads as `None`.
pub(crate) fn opt_i32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i32>, D::Error> {
    d.deserialize_any(IntVisitor)
}

/// A privacy flag, as `read::fields::opt_flag` reads one: an integer as
/// [`opt_i32`] reads it; absent, `null` or an empty string is none;
/// anything else present is [`crate::UNREADABLE_FLAG`].
pub(crate) fn opt_flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i32>, D::Error> {
    d.deserialize_any(FlagVisitor)
}

struct FlagVisitor;

/// A flag that is there: its integer, or [`crate::UNREADABLE_FLAG`].
fn set(read: Option<i32>) -> Option<i32> {
    Some(read.unwrap_or(crate::UNREADABLE_FLAG))
}

impl<'de> Visitor<'de> for FlagVisitor {
    type Value = Option<i32>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a flag")
    }

    // Numbers, booleans and strings as `opt_i32` reads them, present
    // either way.
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
        IntVisitor.visit_i64(v).map(set)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
        IntVisitor.visit_u64(v).map(set)
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
        IntVisitor.visit_f64(v).map(set)
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
        IntVisitor.visit_bool(v).map(set)
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if v.trim().is_empty() {
            return Ok(None);
        }
        IntVisitor.visit_str(v).map(set)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq).map(|()| Some(crate::UNREADABLE_FLAG))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map).map(|()| Some(crate::UNREADABLE_FLAG))
    }
}

struct LenientI32(Option<i32>);

impl<'de> Deserialize<'de> for LenientI32 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(IntVisitor).map(LenientI32)
    }
}

/// `marked`: an entry (or lone value) that reads as no code is
/// [`crate::UNREADABLE_CODE`] rather than dropped.
struct IntVecVisitor {
    marked: bool,
}

impl IntVecVisitor {
    fn one(&self, code: Option<i32>) -> Vec<i32> {
        match (code, self.marked) {
            (Some(c), _) => vec![c],
            (None, true) => vec![crate::UNREADABLE_CODE],
            (None, false) => Vec::new(),
        }
    }
}

impl<'de> Visitor<'de> for IntVecVisitor {
    type Value = Vec<i32>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of integers")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(4));
        while let Some(LenientI32(v)) = seq.next_element()? {
            match (v, self.marked) {
                (Some(c), _) => out.push(c),
                (None, true) => out.push(crate::UNREADABLE_CODE),
                (None, false) => {}
            }
        }
        Ok(out)
    }

    // A lone code where a list belongs (`"protocols": 2`) still means that code.
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(self.one(i32::try_from(v).ok()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(self.one(i32::try_from(v).ok()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(self.one(f64_to_i32(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        // A blank string is no list, as a blank privacy flag is no flag.
        if self.marked && v.trim().is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.one(str_to_i32(v)))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let marked = self.marked;
        drain_map(map).map(|()| match marked {
            true => vec![crate::UNREADABLE_CODE],
            false => Vec::new(),
        })
    }
}

/// A list of integer codes: `null` and missing are empty, elements of an
/// unusable type are dropped rather than failing the list.
pub(crate) fn i32_vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<i32>, D::Error> {
    d.deserialize_any(IntVecVisitor { marked: false })
}

/// [`codes`] for the lists whose unreadable entries count
/// ([`crate::UNREADABLE_CODE`]).
pub(crate) fn marked_codes<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<crate::request::Codes, D::Error> {
    d.deserialize_any(IntVecVisitor { marked: true })
        .map(crate::List::from)
}

/// [`i32_vec`] as the request model keeps codes.
pub(crate) fn codes<'de, D: Deserializer<'de>>(d: D) -> Result<crate::request::Codes, D::Error> {
    i32_vec(d).map(crate::List::from)
}

// ---------------------------------------------------------------------------
// Floats (geo coordinates only; money never goes through f64 on the way in)

struct FloatVisitor;

impl<'de> Visitor<'de> for FloatVisitor {
    type Value = Option<f64>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number")
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v as f64))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v as f64))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(v).filter(|v| v.is_finite()))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.trim().parse::<f64>().ok().filter(|v| v.is_finite()))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq).map(|()| None)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map).map(|()| None)
    }
}

pub(crate) fn opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    d.deserialize_any(FloatVisitor)
}

// ---------------------------------------------------------------------------
// Strings

/// `ids`: the visitor reads an id the answer echoes, which refuses the
/// numbers whose text would not come back as sent (see `read::fields::id`).
/// `currency`: a value that is no string nor number (a list, an object, a
/// boolean) reads as [`UNREADABLE_CURRENCY`], not as absent.
#[derive(Clone, Copy, Default)]
struct StrVisitor {
    ids: bool,
    currency: bool,
}

/// What a currency written as no string reads as: a code no rate has, so
/// that the floor it prices cannot be priced (reason `currency`), where
/// read as absent it was USD and bids went in under the floor meant
/// (`"bidfloorcur": ["EUR"]`).
pub(crate) const UNREADABLE_CURRENCY: &str = "(unreadable)";

impl StrVisitor {
    fn unreadable<'de>(self) -> Option<Cow<'de, str>> {
        self.currency.then_some(Cow::Borrowed(UNREADABLE_CURRENCY))
    }
}

impl<'de> Visitor<'de> for StrVisitor {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(v)))
    }

    // Reached when the string held escapes, so the parser had to unescape it.
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v)))
    }

    // Numeric ids (`"id": 12345`) are common; keep them as their decimal text.
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
        if self.ids {
            return Err(E::custom(crate::INEXACT_ID));
        }
        Ok(Some(Cow::Owned(v.to_string())))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(self.unreadable())
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq).map(|()| self.unreadable())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map).map(|()| self.unreadable())
    }
}

/// An optional string borrowed from the body when it has no escapes.
///
/// serde's own `Cow` impl always allocates once it sits inside an `Option` or
/// a `Vec`, which is why this exists.
pub(crate) fn opt_str<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    d.deserialize_any(StrVisitor::default())
}

/// An id the answer echoes; missing or unusable reads as empty and is left
/// to [`crate::BidRequest::validate`] to reject where the spec requires it.
pub(crate) fn id<'de, D: Deserializer<'de>>(d: D) -> Result<Cow<'de, str>, D::Error> {
    d.deserialize_any(StrVisitor {
        ids: true,
        currency: false,
    })
    .map(|s| s.unwrap_or(Cow::Borrowed("")))
}

pub(crate) fn usd<'a>() -> Cow<'a, str> {
    Cow::Borrowed("USD")
}

/// A currency code; absent, `null` or `""` means the spec default, USD.
pub(crate) fn currency<'de, D: Deserializer<'de>>(d: D) -> Result<Cow<'de, str>, D::Error> {
    d.deserialize_any(StrVisitor {
        ids: false,
        currency: true,
    })
    .map(|s| s.filter(|s| !s.is_empty()).unwrap_or_else(usd))
}

struct LenientStr<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for LenientStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrVisitor::default()).map(LenientStr)
    }
}

struct StrVecVisitor;

impl<'de> Visitor<'de> for StrVecVisitor {
    type Value = Vec<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of strings")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(4));
        while let Some(LenientStr(v)) = seq.next_element()? {
            out.extend(v);
        }
        Ok(out)
    }

    // A lone string where a list belongs (`"cur": "USD"`) still means that value.
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(vec![Cow::Borrowed(v)])
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(vec![Cow::Owned(v.to_owned())])
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map).map(|()| Vec::new())
    }
}

/// A list of strings: `null` and missing are empty, non-string elements are dropped.
pub(crate) fn str_vec<'de: 'a, 'a, D: Deserializer<'de>>(
    d: D,
) -> Result<crate::request::Strs<'a>, D::Error> {
    let v: Vec<Cow<'a, str>> = d.deserialize_any(StrVecVisitor)?;
    Ok(crate::List::from(v))
}

// ---------------------------------------------------------------------------
// Arrays of objects

/// An array of objects where `null` means empty and a `null` element is
/// skipped (a serializer's missing entry). Other elements stay strict.
pub(crate) fn vec<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<Vec<Option<T>>>::deserialize(d)
        .map(|v| v.unwrap_or_default().into_iter().flatten().collect())
}

// ---------------------------------------------------------------------------
// Money

/// A floor in integer micros, from the number's exact decimal text.
///
/// Going through `f64` would turn `1.1` into 1.100000000000000088..., and a
/// ceiling of that is one micro too high; reading the text keeps every value
/// with up to six decimals exact and rounds finer ones up, so a floor is never
/// under-read. Needs serde_json's borrowed input (`from_slice`/`from_str`),
/// which the borrowed request model needs anyway.
pub(crate) fn floor_micros<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let raw = <&'de RawValue>::deserialize(d)?;
    Ok(raw_floor_micros(raw.get()).unwrap_or(0))
}

/// Like [`floor_micros`], keeping absence (`null`, or not a number) distinct from zero.
pub(crate) fn opt_floor_micros<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let raw = <&'de RawValue>::deserialize(d)?;
    Ok(raw_floor_micros(raw.get()))
}

/// A floor's JSON text in micros: `None` for `null` or an empty string (no
/// floor). Floors sent as strings (`"bidfloor": "0.5"`) are read like
/// numbers. One that is there but is no number (`"7.0 USD"`, `[7]`,
/// `"NaN"`, `true`) is a floor nobody clears, [`i64::MAX`]: read as none,
/// bids went in under what the exchange meant, holding budget until their
/// loss.
pub(crate) fn raw_floor_micros(raw: &str) -> Option<i64> {
    if raw == "null" {
        return None;
    }
    let text = raw
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(raw);
    if text.trim().is_empty() {
        return None;
    }
    Some(decimal_to_micros_ceil(text).unwrap_or(i64::MAX))
}

/// Parses a decimal number (`-1.25`, `4.50`, `1e-7`, `2E3`) into micros,
/// rounding any remainder finer than a micro up. Negative values are 0,
/// values beyond `i64` saturate; text that is not a finite number is `None`.
pub(crate) fn decimal_to_micros_ceil(text: &str) -> Option<i64> {
    let bytes = text.trim().as_bytes();
    let (negative, rest) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, bytes),
    };

    let mantissa_end = rest
        .iter()
        .position(|&b| b == b'e' || b == b'E')
        .unwrap_or(rest.len());
    let (mantissa, exponent) = rest.split_at(mantissa_end);

    let (int_part, frac_part) = match mantissa.iter().position(|&b| b == b'.') {
        Some(dot) => (&mantissa[..dot], &mantissa[dot + 1..]),
        None => (mantissa, &mantissa[mantissa.len()..]),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part.iter().chain(frac_part).all(u8::is_ascii_digit) {
        return None;
    }

    let exp: i64 = match exponent.split_first() {
        None => 0,
        Some((_, digits)) => {
            let (sign, digits) = match digits.split_first() {
                Some((b'-', d)) => (-1, d),
                Some((b'+', d)) => (1, d),
                _ => (1, digits),
            };
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            // Anything past a few hundred is already 0 or saturated; clamping
            // keeps the arithmetic below from overflowing.
            let mut e: i64 = 0;
            for &d in digits {
                e = (e * 10 + i64::from(d - b'0')).min(100_000);
            }
            sign * e
        }
    };

    let all_digits = || {
        int_part
            .iter()
            .chain(frac_part)
            .map(|&d| i64::from(d - b'0'))
    };
    if negative || all_digits().all(|d| d == 0) {
        return Some(0);
    }

    // value = D * 10^(exp - frac_len), where D is all mantissa digits read as
    // one integer; in micros that is D * 10^shift. The first `keep` digits of
    // D form the integer micros, the rest are the sub-micro remainder.
    let frac_len = frac_part.len() as i64;
    let n = int_part.len() as i64 + frac_len;
    let shift = exp - frac_len + 6;
    let keep = n + shift;

    let mut micros: i64 = 0;
    let mut remainder = false;
    for (i, d) in all_digits().enumerate() {
        if (i as i64) < keep {
            micros = match micros.checked_mul(10).and_then(|m| m.checked_add(d)) {
                Some(m) => m,
                None => return Some(i64::MAX),
            };
        } else if d != 0 {
            remainder = true;
        }
    }
    for _ in 0..(keep - n).max(0) {
        micros = match micros.checked_mul(10) {
            Some(m) => m,
            None => return Some(i64::MAX),
        };
    }
    if remainder {
        micros = micros.saturating_add(1);
    }
    Some(micros)
}

// ---------------------------------------------------------------------------
// Response price

struct PriceVisitor;

impl<'de> Visitor<'de> for PriceVisitor {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a price")
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i64, E> {
        v.checked_mul(1_000_000)
            .ok_or_else(|| E::custom("price out of range"))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v)
            .ok()
            .and_then(|v| v.checked_mul(1_000_000))
            .ok_or_else(|| E::custom("price out of range"))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<i64, E> {
        let micros = (v * 1e6).round();
        if micros.is_finite() && micros.abs() < 9.0e18 {
            Ok(micros as i64)
        } else {
            Err(E::custom("price out of range"))
        }
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<i64, E> {
        match v.trim().parse::<f64>() {
            Ok(f) => self.visit_f64(f),
            Err(_) => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
        }
    }
}

/// A bid price read as the nearest micro. Unlike a floor there is no side to
/// err on here: prices come from our own serializer or from test fixtures.
pub(crate) fn price_micros<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    d.deserialize_any(PriceVisitor)
}

/// Writes micros as a JSON number.
///
/// `micros as f64 / 1e6` is the double nearest the exact decimal, and for any
/// value below 2^53 micros (about 9 billion currency units) that decimal has
/// at most 16 significant digits, so serde_json's shortest round-trip output
/// prints exactly it: 1_800_000 becomes `1.8`, 6_000_000 becomes `6.0`.
pub(crate) fn serialize_price<S: serde::Serializer>(micros: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(*micros as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Option<i64> {
        decimal_to_micros_ceil(s)
    }

    #[test]
    fn exact_up_to_six_decimals() {
        assert_eq!(m("4.5"), Some(4_500_000));
        assert_eq!(m("0.01"), Some(10_000));
        assert_eq!(m("1.1"), Some(1_100_000));
        assert_eq!(m("0.5"), Some(500_000));
        assert_eq!(m("3.00"), Some(3_000_000));
        assert_eq!(m("4.50"), Some(4_500_000));
        assert_eq!(m("15"), Some(15_000_000));
        assert_eq!(m("15.0"), Some(15_000_000));
        assert_eq!(m("0.000001"), Some(1));
        assert_eq!(m("123.456789"), Some(123_456_789));
        assert_eq!(m("0.1234560000"), Some(123_456));
        assert_eq!(m("0.29"), Some(290_000));
        assert_eq!(m("0.07"), Some(70_000));
    }

    #[test]
    fn finer_than_a_micro_rounds_up() {
        assert_eq!(m("0.0000001"), Some(1));
        assert_eq!(m("1.0000001"), Some(1_000_001));
        assert_eq!(m("0.1234561"), Some(123_457));
        assert_eq!(m("0.12345600000000000000000001"), Some(123_457));
        assert_eq!(m("0.00000000000000000001"), Some(1));
        assert_eq!(m("1.5e-6"), Some(2));
        assert_eq!(m("2.0000000"), Some(2_000_000));
    }

    #[test]
    fn exponents() {
        assert_eq!(m("1e-7"), Some(1));
        assert_eq!(m("1E-6"), Some(1));
        assert_eq!(m("4.5e2"), Some(450_000_000));
        assert_eq!(m("45e-1"), Some(4_500_000));
        assert_eq!(m("1e+2"), Some(100_000_000));
        assert_eq!(m("0e5"), Some(0));
        assert_eq!(m("1e-99999999999"), Some(1));
    }

    #[test]
    fn negative_zero_and_garbage() {
        assert_eq!(m("-1"), Some(0));
        assert_eq!(m("-0.0000001"), Some(0));
        assert_eq!(m("-0"), Some(0));
        assert_eq!(m("0"), Some(0));
        assert_eq!(m("0.0"), Some(0));
        assert_eq!(m("NaN"), None);
        assert_eq!(m("inf"), None);
        assert_eq!(m(""), None);
        assert_eq!(m("."), None);
        assert_eq!(m("1e"), None);
        assert_eq!(m("1.2.3"), None);
        assert_eq!(m("abc"), None);
        assert_eq!(m(" 0.5 "), Some(500_000));
        assert_eq!(m(".5"), Some(500_000));
    }

    #[test]
    fn saturates_instead_of_wrapping() {
        assert_eq!(m("1e300"), Some(i64::MAX));
        assert_eq!(m("99999999999999999999"), Some(i64::MAX));
        assert_eq!(m("9223372036854.775807"), Some(i64::MAX));
        assert_eq!(m("9223372036854.775806"), Some(i64::MAX - 1));
    }

    #[test]
    fn raw_values() {
        assert_eq!(raw_floor_micros("\"0.5\""), Some(500_000));
        assert_eq!(raw_floor_micros("null"), None);
        assert_eq!(raw_floor_micros("\"\""), None);
        assert_eq!(raw_floor_micros("true"), Some(i64::MAX));
        assert_eq!(raw_floor_micros("{}"), Some(i64::MAX));
        assert_eq!(raw_floor_micros("[1]"), Some(i64::MAX));
        assert_eq!(raw_floor_micros("\"7.0 USD\""), Some(i64::MAX));
    }

    #[derive(serde::Deserialize)]
    struct Floor {
        #[serde(default, deserialize_with = "floor_micros")]
        bidfloor: i64,
    }

    fn floor(json: &str) -> i64 {
        serde_json::from_str::<Floor>(json).unwrap().bidfloor
    }

    #[test]
    fn floor_field() {
        assert_eq!(floor(r#"{"bidfloor": 4.5}"#), 4_500_000);
        assert_eq!(floor(r#"{"bidfloor": 1.1}"#), 1_100_000);
        assert_eq!(floor(r#"{"bidfloor": 0.01}"#), 10_000);
        assert_eq!(floor(r#"{"bidfloor": 2}"#), 2_000_000);
        assert_eq!(floor(r#"{"bidfloor": "1.25"}"#), 1_250_000);
        assert_eq!(floor(r#"{"bidfloor": -3}"#), 0);
        assert_eq!(floor(r#"{"bidfloor": null}"#), 0);
        assert_eq!(floor(r#"{"bidfloor": "NaN"}"#), i64::MAX);
        assert_eq!(floor(r#"{"bidfloor": {"x": 1}}"#), i64::MAX);
        assert_eq!(floor(r#"{"bidfloor": ""}"#), 0);
        assert_eq!(floor(r#"{}"#), 0);
        assert_eq!(floor(r#"{"bidfloor": 1.23456789}"#), 1_234_568);
    }

    #[test]
    fn ints() {
        #[derive(serde::Deserialize)]
        struct T {
            #[serde(default, deserialize_with = "opt_i32")]
            v: Option<i32>,
        }
        let v = |json: &str| serde_json::from_str::<T>(json).unwrap().v;
        assert_eq!(v(r#"{"v": 3}"#), Some(3));
        assert_eq!(v(r#"{"v": 300.0}"#), Some(300));
        assert_eq!(v(r#"{"v": 300.5}"#), None);
        assert_eq!(v(r#"{"v": "1"}"#), Some(1));
        assert_eq!(v(r#"{"v": " 7 "}"#), Some(7));
        assert_eq!(v(r#"{"v": true}"#), Some(1));
        assert_eq!(v(r#"{"v": false}"#), Some(0));
        assert_eq!(v(r#"{"v": "yes"}"#), None);
        assert_eq!(v(r#"{"v": null}"#), None);
        assert_eq!(v(r#"{"v": [1]}"#), None);
        assert_eq!(v(r#"{"v": {"a": [1, {}]}}"#), None);
        assert_eq!(v(r#"{"v": 4294967296}"#), None);
        assert_eq!(v(r#"{"v": -2}"#), Some(-2));
        assert_eq!(v(r#"{}"#), None);
    }

    #[test]
    fn price_round_trip_is_exact() {
        #[derive(serde::Serialize)]
        struct P(#[serde(serialize_with = "serialize_price")] i64);
        for (micros, text) in [
            (6_000_000, "6.0"),
            (1_800_000, "1.8"),
            (1, "1e-6"),
            (10_000, "0.01"),
            (1_100_000, "1.1"),
            (123_456_789, "123.456789"),
            (999_999_999_999, "999999.999999"),
        ] {
            assert_eq!(serde_json::to_string(&P(micros)).unwrap(), text);
        }
        let mut x: i64 = 1;
        while x < 10_000_000_000_000 {
            for micros in [x, x + 1, x * 7 + 3, x * 13 - 1] {
                let text = serde_json::to_string(&P(micros)).unwrap();
                assert_eq!(
                    decimal_to_micros_ceil(&text),
                    Some(micros),
                    "{micros} -> {text}"
                );
            }
            x *= 3;
        }
    }
}

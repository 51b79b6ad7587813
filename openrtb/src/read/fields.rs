//! The tolerant field readers: what each kind of request field makes of
//! whatever JSON value it meets. Same rules as `crate::de` (the serde model):
//! scalars never fail on a wrong type, containers do.

use std::borrow::Cow;

use super::cursor::{Cursor, Number, Result};
use super::Object;
use crate::de::{f64_to_i32, raw_floor_micros, str_to_i32, usd};
use crate::request::{Codes, RawJson, Strs};

/// A scalar field's value, as far as any lenient reader needs it.
enum Scalar<'a> {
    Str(Cow<'a, str>),
    Number(Number),
    Bool(bool),
    /// `null`, or an array or object (drained: no scalar reader uses one).
    Nothing,
}

fn scalar<'a>(c: &mut Cursor<'a>) -> Result<Scalar<'a>> {
    match c.peek_value()? {
        b'"' => c.string().map(Scalar::Str),
        b'-' | b'0'..=b'9' => c.number().map(Scalar::Number),
        b't' | b'f' | b'n' => Ok(c.literal()?.map_or(Scalar::Nothing, Scalar::Bool)),
        b'[' => drain_array(c).map(|()| Scalar::Nothing),
        b'{' => drain_object(c).map(|()| Scalar::Nothing),
        _ => Err(c.error(c.pos(), "expected value")),
    }
}

/// An array where a scalar belongs: its elements are stepped over.
fn drain_array(c: &mut Cursor<'_>) -> Result<()> {
    c.bump();
    let mut first = true;
    while c.next_element(&mut first)? {
        c.skip()?;
    }
    Ok(())
}

/// An object where a scalar belongs: stepped over, keys decoded (serde_json
/// decodes map keys even of a map it drains, so a bad escape there fails).
fn drain_object(c: &mut Cursor<'_>) -> Result<()> {
    c.bump();
    let mut first = true;
    while c.skip_key(&mut first)? {
        c.skip()?;
    }
    Ok(())
}

fn number_to_i32(n: Number) -> Option<i32> {
    match n {
        Number::U64(v) => i32::try_from(v).ok(),
        Number::I64(v) => i32::try_from(v).ok(),
        Number::F64(v) => f64_to_i32(v),
    }
}

fn number_text(n: Number) -> String {
    match n {
        Number::U64(v) => v.to_string(),
        Number::I64(v) => v.to_string(),
        Number::F64(v) => v.to_string(),
    }
}

fn scalar_i32(s: Scalar<'_>) -> Option<i32> {
    match s {
        Scalar::Number(n) => number_to_i32(n),
        Scalar::Bool(b) => Some(i32::from(b)),
        Scalar::Str(s) => str_to_i32(&s),
        Scalar::Nothing => None,
    }
}

/// Strings as they are, numbers as their decimal text (numeric ids; the
/// text is counted against the request's bytes, `1e308` being 309 of them).
fn scalar_str<'a>(c: &mut Cursor<'_>, s: Scalar<'a>) -> Result<Option<Cow<'a, str>>> {
    Ok(match s {
        Scalar::Str(s) => Some(s),
        Scalar::Number(n) => {
            let text = number_text(n);
            c.spend(text.len())?;
            Some(Cow::Owned(text))
        }
        Scalar::Bool(_) | Scalar::Nothing => None,
    })
}

// The readers below go straight to the string or number reader for the
// type the field is meant to have, and through `scalar` for the rest.

pub(super) fn opt_i32(c: &mut Cursor<'_>) -> Result<Option<i32>> {
    if let Some(n) = c.small_int() {
        return Ok(Some(n));
    }
    match c.peek_value()? {
        b'-' | b'0'..=b'9' => c.number().map(number_to_i32),
        _ => scalar(c).map(scalar_i32),
    }
}

/// A privacy flag: an integer as [`opt_i32`] reads one; absent, `null` or
/// an empty string is none; anything else present that reads as no
/// integer is [`crate::UNREADABLE_FLAG`].
///
/// Numbers go through [`opt_i32`] rather than the cursor's `small_int`:
/// a second caller of that made the compiler stop inlining it into
/// `opt_i32`, some 500 instructions more per request.
pub(super) fn opt_flag(c: &mut Cursor<'_>) -> Result<Option<i32>> {
    let read = match c.peek_value()? {
        b'-' | b'0'..=b'9' => opt_i32(c)?,
        b'n' => return c.literal().map(|_| None),
        _ => match scalar(c)? {
            Scalar::Str(s) if s.trim().is_empty() => return Ok(None),
            s => scalar_i32(s),
        },
    };
    Ok(Some(read.unwrap_or(crate::UNREADABLE_FLAG)))
}

pub(super) fn opt_f64(c: &mut Cursor<'_>) -> Result<Option<f64>> {
    fn of_number(n: Number) -> Option<f64> {
        match n {
            Number::U64(v) => Some(v as f64),
            Number::I64(v) => Some(v as f64),
            Number::F64(v) => Some(v).filter(|v| v.is_finite()),
        }
    }
    // Numbers (a request's coordinates) straight to the number reader, as
    // `opt_i32` reads them: through `scalar`, the value made a round trip
    // through memory as a `Scalar`.
    if matches!(c.peek_value()?, b'-' | b'0'..=b'9') {
        return c.number().map(of_number);
    }
    Ok(match scalar(c)? {
        Scalar::Number(n) => of_number(n),
        Scalar::Str(s) => s.trim().parse::<f64>().ok().filter(|v| v.is_finite()),
        Scalar::Bool(_) | Scalar::Nothing => None,
    })
}

pub(super) fn opt_str<'a>(c: &mut Cursor<'a>) -> Result<Option<Cow<'a, str>>> {
    let mut out = None;
    opt_str_into(c, &mut out)?;
    Ok(out)
}

/// A string, a number as its text, anything else absent, read into the
/// field itself (the object macro's `opt_str`): returned, the
/// `Option<Cow>` went through the stack to be copied into the field, the
/// old value checked for dropping on the way. A field is read once (a
/// duplicate key is refused), so the old value is nearly always `None`.
pub(super) fn opt_str_into<'a>(c: &mut Cursor<'a>, out: &mut Option<Cow<'a, str>>) -> Result<()> {
    if c.peek_value()? == b'"' {
        *out = Some(c.string()?);
        return Ok(());
    }
    let s = scalar(c)?;
    *out = scalar_str(c, s)?;
    Ok(())
}

/// An id the answer echoes (the request's, an imp's, a deal's): a string,
/// or an integer as its decimal text; anything else unusable reads as
/// empty, which validation refuses as missing. A number with a fraction or
/// an exponent, or an integer past 64 bits, is refused: its text would come
/// back changed (`1.50` as `1.5`, 23 digits rounded), the exchange could not
/// match the bid to its imp, and the budget held for it would wait out its
/// reservation for nothing.
pub(super) fn id<'a>(c: &mut Cursor<'a>) -> Result<Cow<'a, str>> {
    let at = c.pos();
    match scalar(c)? {
        Scalar::Number(Number::F64(_)) => Err(c.inexact_id(at)),
        s => Ok(scalar_str(c, s)?.unwrap_or(Cow::Borrowed(""))),
    }
}

pub(super) fn currency<'a>(c: &mut Cursor<'a>) -> Result<Cow<'a, str>> {
    // A list, an object or a boolean is a currency nobody can price (see
    // `de::UNREADABLE_CURRENCY`), not the USD of one left out.
    // Drained as serde drains it (an object's keys decoded): both readers
    // refuse, or read, the same bodies.
    let unreadable = || Cow::Borrowed(crate::de::UNREADABLE_CURRENCY);
    match c.peek_value()? {
        b'[' => return drain_array(c).map(|()| unreadable()),
        b'{' => return drain_object(c).map(|()| unreadable()),
        b't' | b'f' => return c.literal().map(|_| unreadable()),
        _ => {}
    }
    Ok(opt_str(c)?.filter(|s| !s.is_empty()).unwrap_or_else(usd))
}

/// A list of codes; a lone code means a list of one (a lone boolean does
/// not, though a boolean element reads as 0 or 1).
///
/// Read into the field's own list, as [`str_vec_into`] reads strings.
pub(super) fn i32_vec_into(c: &mut Cursor<'_>, out: &mut Codes) -> Result<()> {
    if !out.is_empty() {
        *out = Codes::new();
    }
    if c.peek_value()? != b'[' {
        match scalar(c)? {
            Scalar::Bool(_) => {}
            other => {
                if let Some(code) = scalar_i32(other) {
                    out.push(code);
                }
            }
        }
        return Ok(());
    }
    c.bump();
    let mut first = true;
    while c.next_element(&mut first)? {
        if let Some(code) = opt_i32(c)? {
            c.spend(std::mem::size_of::<i32>())?;
            out.push(code);
        }
    }
    Ok(())
}

/// [`i32_vec_into`] for the lists where an entry that reads as no code
/// must still count: it reads as [`crate::UNREADABLE_CODE`], and so does
/// a value that is neither a list, a code, a boolean nor `null`.
pub(super) fn marked_vec_into(c: &mut Cursor<'_>, out: &mut Codes) -> Result<()> {
    if !out.is_empty() {
        *out = Codes::new();
    }
    match c.peek_value()? {
        b'[' => {}
        b'n' => return c.literal().map(|_| ()),
        _ => {
            match scalar(c)? {
                // A blank string is no list, as a blank privacy flag is
                // no flag (review: `btype: ""` blocked every banner).
                Scalar::Bool(_) => {}
                Scalar::Str(s) if s.trim().is_empty() => {}
                other => out.push(scalar_i32(other).unwrap_or(crate::UNREADABLE_CODE)),
            }
            return Ok(());
        }
    }
    c.bump();
    let mut first = true;
    while c.next_element(&mut first)? {
        let code = opt_i32(c)?.unwrap_or(crate::UNREADABLE_CODE);
        c.spend(std::mem::size_of::<i32>())?;
        out.push(code);
    }
    Ok(())
}

/// A list of strings; a lone string means a list of one, elements that are
/// numbers read as their text, anything else is dropped.
///
/// Read into the field's own list (the object macro's `str_vec`): a list
/// read apart and assigned dropped the empty one it replaced (its three
/// in-place strings each checked) and moved 80 bytes in, some 60
/// instructions per list field and a dozen such fields in a banner
/// request. A field is read once (a duplicate key is refused), so the
/// list is nearly always still empty here.
pub(super) fn str_vec_into<'a>(c: &mut Cursor<'a>, out: &mut Strs<'a>) -> Result<()> {
    if !out.is_empty() {
        *out = Strs::new();
    }
    if c.peek_value()? != b'[' {
        if let Scalar::Str(s) = scalar(c)? {
            out.push(s);
        }
        return Ok(());
    }
    c.bump();
    let mut first = true;
    while c.next_element(&mut first)? {
        // Strings straight in; the rest (numbers, anything dropped) through
        // the lenient reader.
        let s = if c.peek_value()? == b'"' {
            c.string()?
        } else {
            match opt_str(c)? {
                Some(s) => s,
                None => continue,
            }
        };
        c.spend(std::mem::size_of::<Cow<'_, str>>())?;
        out.push(s);
    }
    Ok(())
}

/// A value kept as its raw text; `null` reads as absent.
pub(super) fn ext<'a>(c: &mut Cursor<'a>) -> Result<Option<RawJson<'a>>> {
    let start = c.pos_of_value()?;
    if c.peek_value()? == b'n' {
        c.literal()?;
        return Ok(None);
    }
    c.skip()?;
    c.raw_since(start).map(|raw| Some(RawJson(raw)))
}

/// A floor read from the number's own decimal text, as `crate::de` reads it.
pub(super) fn opt_floor(c: &mut Cursor<'_>) -> Result<Option<i64>> {
    let start = c.pos_of_value()?;
    c.skip()?;
    c.raw_since(start).map(raw_floor_micros)
}

pub(super) fn floor(c: &mut Cursor<'_>) -> Result<i64> {
    Ok(opt_floor(c)?.unwrap_or(0))
}

/// An array of objects; `null` is empty, a `null` element is skipped,
/// anything else but an array fails.
pub(super) fn list<'a, T: Object<'a>>(c: &mut Cursor<'a>) -> Result<Vec<T>> {
    match c.peek_value()? {
        b'n' => {
            c.literal()?;
            Ok(Vec::new())
        }
        b'[' => {
            c.bump();
            // One object to start with, for the large ones: growing from
            // empty makes room for four, and four `Imp`s are past the
            // allocator's per-thread cache of small blocks (a request has
            // one imp more often than not).
            let mut out: Vec<T> = match c.peek_value() {
                Ok(b']') => Vec::new(),
                _ if std::mem::size_of::<T>() > 256 => Vec::with_capacity(1),
                _ => Vec::new(),
            };
            let mut first = true;
            while c.next_element(&mut first)? {
                // A `null` in a list (a serializer's missing entry) is no
                // object: skipped, as a `null` list is empty.
                if c.peek_value()? == b'n' {
                    c.literal()?;
                    continue;
                }
                c.listed_object(std::mem::size_of::<T>())?;
                out.push(T::default());
                let last = out.len() - 1;
                out[last].read_into(c)?;
            }
            Ok(out)
        }
        _ => Err(c.invalid_type("a sequence")),
    }
}

/// An optional object; `null` is absent.
pub(super) fn opt_into<'a, T: Object<'a>>(c: &mut Cursor<'a>, slot: &mut Option<T>) -> Result<()> {
    if c.peek_value()? == b'n' {
        c.literal()?;
        *slot = None;
        return Ok(());
    }
    // Defaulted where it lies, then filled there. A read that fails leaves
    // it half filled: the request is dropped on an error (or, read with
    // `parse_request_into`, left in the caller's slot part read, which
    // the next read there fills afresh).
    slot.insert(T::default()).read_into(c)
}

/// An object that reads as absent, not as an error, when it is not one
/// or cannot be read (a key twice, a value of the wrong shape): the value
/// is then stepped over, so what is around it is read as if it were not
/// there. Malformed JSON is still refused.
pub(super) fn lenient_into<'a, T: Object<'a>>(
    c: &mut Cursor<'a>,
    slot: &mut Option<T>,
) -> Result<()> {
    let at = c.pos_of_value()?;
    match T::read(c) {
        Ok(v) => *slot = Some(v),
        Err(_) => {
            c.rewind(at);
            c.skip()?;
            *slot = None;
        }
    }
    Ok(())
}

pub(super) fn boxed_into<'a, T: Object<'a>>(
    c: &mut Cursor<'a>,
    slot: &mut Option<Box<T>>,
) -> Result<()> {
    if c.peek_value()? == b'n' {
        c.literal()?;
        *slot = None;
        return Ok(());
    }
    c.spend(std::mem::size_of::<T>())?;
    slot.insert(Box::default()).read_into(c)
}

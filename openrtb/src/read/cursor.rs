//! The JSON grammar, one byte at a time, over a borrowed body.
//!
//! It accepts and refuses exactly what serde_json does for the request model
//! (the fuzz properties in `tests/fuzz.rs` hold it to that), so changing the
//! parser changed no exchange's outcome. What differs is the cost: no visitor
//! indirection, strings found eight bytes at a time, values nobody reads
//! skipped without building anything, and no recursion where the input
//! chooses the depth.

use std::borrow::Cow;

use super::scan::{self, find_special};
use crate::{INEXACT_ID, MAX_LISTED_OBJECTS, MAX_PARSED_BYTES};

/// Where and why reading stopped.
#[derive(Debug)]
pub(crate) struct Error {
    /// Byte offset of the offending byte (the body's length at end of input).
    pub(crate) at: usize,
    /// The JSON was well formed but a value had the wrong shape for the model.
    pub(crate) data: bool,
    pub(crate) reason: Cow<'static, str>,
}

/// Boxed: the error path is cold, and a small `Result` keeps every read's
/// return cheap.
pub(crate) type Result<T> = std::result::Result<T, Box<Error>>;

/// A number as serde_json classifies it, which decides how lenient fields read it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Number {
    U64(u64),
    I64(i64),
    F64(f64),
}

pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    /// What is left of [`MAX_LISTED_OBJECTS`].
    objects_left: u32,
    /// What is left of [`MAX_PARSED_BYTES`].
    bytes_left: usize,
    /// The whole body, when it is valid UTF-8 (nearly always): string slices
    /// then come from it without a second check. A body that is not keeps
    /// serde_json's rule: only strings the model reads must be UTF-8.
    text: Option<&'a str>,
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Cursor::over(bytes, simdutf8::basic::from_utf8(bytes).ok())
    }

    /// A cursor over text already known to be UTF-8 (an ext's raw JSON).
    pub(crate) fn of_text(text: &'a str) -> Self {
        Cursor::over(text.as_bytes(), Some(text))
    }

    fn over(bytes: &'a [u8], text: Option<&'a str>) -> Self {
        Cursor {
            bytes,
            objects_left: MAX_LISTED_OBJECTS,
            bytes_left: MAX_PARSED_BYTES,
            text,
            pos: 0,
        }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Back to `at`, a position this cursor was at: to step over a value
    /// a reader gave up on.
    pub(crate) fn rewind(&mut self, at: usize) {
        self.pos = at;
    }

    pub(crate) fn error(&self, at: usize, reason: &'static str) -> Box<Error> {
        Box::new(Error {
            at,
            data: false,
            reason: Cow::Borrowed(reason),
        })
    }

    fn eof(&self, what: &'static str) -> Box<Error> {
        self.error(self.bytes.len(), what)
    }

    /// A refusal of well-formed JSON: a value of the wrong shape, or past a
    /// bound of this reader.
    fn unexpected(at: usize, reason: String) -> Box<Error> {
        Box::new(Error {
            at,
            data: true,
            reason: Cow::Owned(reason),
        })
    }

    /// An error about the value at the cursor: valid JSON, wrong shape. As
    /// serde_json does, the value is read first to be named, so a value
    /// that is itself malformed is refused as that.
    pub(crate) fn invalid_type(&mut self, expected: &str) -> Box<Error> {
        let at = self.pos;
        let found = match self.bytes.get(at) {
            Some(b'"') => match self.string() {
                Ok(s) => format!("string {s:?}"),
                Err(e) => return e,
            },
            Some(b'[') => "sequence".to_owned(),
            Some(b'{') => "map".to_owned(),
            Some(b't' | b'f' | b'n') => match self.literal() {
                Ok(Some(b)) => format!("boolean `{b}`"),
                Ok(None) => "null".to_owned(),
                Err(e) => return e,
            },
            Some(b'-' | b'0'..=b'9') => match self.number() {
                Ok(Number::U64(n)) => format!("integer `{n}`"),
                Ok(Number::I64(n)) => format!("integer `{n}`"),
                Ok(Number::F64(n)) => format!("floating point `{n}`"),
                Err(e) => return e,
            },
            Some(_) => return self.error(at, "expected value"),
            None => return self.eof("EOF while parsing a value"),
        };
        Self::unexpected(at, format!("invalid type: {found}, expected {expected}"))
    }

    /// Counts one more object of `size` bytes read into a list; refuses
    /// past [`MAX_LISTED_OBJECTS`] or [`MAX_PARSED_BYTES`]. With
    /// [`Self::spend`], the only places this reader refuses what serde's
    /// derive would read.
    pub(crate) fn listed_object(&mut self, size: usize) -> Result<()> {
        match self.objects_left.checked_sub(1) {
            Some(left) => {
                self.objects_left = left;
                self.spend(size)
            }
            None => Err(Self::unexpected(
                self.pos,
                format!("more than {MAX_LISTED_OBJECTS} objects in the request's lists"),
            )),
        }
    }

    /// Counts `bytes` more held by the request being read; refuses past
    /// [`MAX_PARSED_BYTES`].
    #[inline]
    pub(crate) fn spend(&mut self, bytes: usize) -> Result<()> {
        match self.bytes_left.checked_sub(bytes) {
            Some(left) => {
                self.bytes_left = left;
                Ok(())
            }
            None => Err(Self::unexpected(
                self.pos,
                format!("the request would hold more than {MAX_PARSED_BYTES} bytes once read"),
            )),
        }
    }

    /// An id sent as a number that its decimal text would not give back
    /// (see `fields::id`).
    pub(crate) fn inexact_id(&self, at: usize) -> Box<Error> {
        Self::unexpected(at, INEXACT_ID.to_owned())
    }

    pub(crate) fn duplicate(&self, at: usize, field: &str) -> Box<Error> {
        Self::unexpected(at, format!("duplicate field `{field}`"))
    }

    #[inline]
    fn ws(&mut self) {
        // Exchanges send compact bodies: between tokens there is usually
        // nothing to skip, and every byte that can be a token is above
        // `b' '`, so one comparison settles it.
        if let Some(&b) = self.bytes.get(self.pos) {
            if b > b' ' {
                return;
            }
        }
        self.ws_slow();
    }

    #[inline(never)]
    fn ws_slow(&mut self) {
        while let Some(&b) = self.bytes.get(self.pos) {
            if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                break;
            }
            self.pos += 1;
        }
    }

    /// The first byte of the next value, after whitespace.
    #[inline]
    pub(crate) fn peek_value(&mut self) -> Result<u8> {
        self.ws();
        match self.bytes.get(self.pos) {
            Some(&b) => Ok(b),
            None => Err(self.eof("EOF while parsing a value")),
        }
    }

    /// Where the next value starts, after whitespace.
    pub(crate) fn pos_of_value(&mut self) -> Result<usize> {
        self.peek_value()?;
        Ok(self.pos)
    }

    /// After the top-level value: only whitespace may follow.
    pub(crate) fn end(&mut self) -> Result<()> {
        self.ws();
        if self.pos < self.bytes.len() {
            return Err(self.error(self.pos, "trailing characters"));
        }
        Ok(())
    }

    /// Consumes the byte `peek_value` returned.
    #[inline]
    pub(crate) fn bump(&mut self) {
        self.pos += 1;
    }

    // -----------------------------------------------------------------------
    // Containers

    /// After `{`: the next key, decoded and [`pack`]ed; or `None` at the
    /// closing `}`. `first` is true until a key was read. The `:` is left
    /// to [`Self::colon`], after the caller has checked the key: serde
    /// refuses a duplicate key before it looks for the colon.
    #[inline(always)]
    pub(crate) fn next_key(&mut self, first: &mut bool) -> Result<Option<u128>> {
        if !self.key_follows(first)? {
            return Ok(None);
        }
        let key = match self.short_key() {
            Some(key) => key,
            None => pack(self.string()?.as_bytes()),
        };
        Ok(Some(key))
    }

    /// The common key, read and packed in one step: the body is known UTF-8,
    /// and the key has no escapes and ends within the 16 bytes after its
    /// opening quote (every key of the model does). `None` leaves the cursor
    /// where it was, for the general path.
    #[inline]
    fn short_key(&mut self) -> Option<u128> {
        self.text?;
        let start = self.pos + 1;
        let word: &[u8; 16] = self.bytes.get(start..start + 16)?.try_into().ok()?;
        // Which byte ends the key, and whether it is the closing quote.
        let stops = scan::stops(word);
        if stops.specials == 0 {
            return None;
        }
        let len = stops.specials.trailing_zeros() as usize;
        if stops.quotes >> len & 1 == 0 {
            return None;
        }
        self.pos = start + len + 1;
        let word = u128::from_le_bytes(*word);
        // Looked up: a u128 shift by a variable amount is a branchy handful
        // of instructions, on every key of a request.
        Some(word & KEY_MASKS[len] | (len as u128) << 120)
    }

    /// Like [`Self::next_key`], for an object nobody reads the keys of; the
    /// key is still checked as serde_json checks map keys.
    pub(crate) fn skip_key(&mut self, first: &mut bool) -> Result<bool> {
        if !self.key_follows(first)? {
            return Ok(false);
        }
        self.string()?;
        self.colon()?;
        Ok(true)
    }

    #[inline(always)]
    fn key_follows(&mut self, first: &mut bool) -> Result<bool> {
        // Compact bodies put the next key right after the comma: one test
        // of two bytes settles what the general path below takes a dozen
        // for, on every member of a request but the first of each object.
        if !*first && self.bytes.get(self.pos..self.pos + 2) == Some(b",\"") {
            self.pos += 1;
            return Ok(true);
        }
        self.ws();
        let Some(&b) = self.bytes.get(self.pos) else {
            return Err(self.eof("EOF while parsing an object"));
        };
        if *first {
            *first = false;
            if b == b'}' {
                self.pos += 1;
                return Ok(false);
            }
        } else {
            match b {
                b'}' => {
                    self.pos += 1;
                    return Ok(false);
                }
                b',' => {
                    self.pos += 1;
                    self.ws();
                    match self.bytes.get(self.pos) {
                        Some(b'}') => return Err(self.error(self.pos, "trailing comma")),
                        None => return Err(self.eof("EOF while parsing a value")),
                        Some(_) => {}
                    }
                }
                _ => return Err(self.error(self.pos, "expected `,` or `}`")),
            }
        }
        if self.bytes[self.pos] != b'"' {
            return Err(self.error(self.pos, "key must be a string"));
        }
        Ok(true)
    }

    #[inline(always)]
    pub(crate) fn colon(&mut self) -> Result<()> {
        // Compact bodies put the colon right after the key: a thousand
        // instructions a request cheaper than going through `ws`.
        if self.bytes.get(self.pos) == Some(&b':') {
            self.pos += 1;
            return Ok(());
        }
        self.colon_after_ws()
    }

    #[inline(never)]
    fn colon_after_ws(&mut self) -> Result<()> {
        self.ws();
        match self.bytes.get(self.pos) {
            Some(b':') => {
                self.pos += 1;
                Ok(())
            }
            Some(_) => Err(self.error(self.pos, "expected `:`")),
            None => Err(self.eof("EOF while parsing an object")),
        }
    }

    /// After `[`: whether another element follows (its separator consumed).
    #[inline(always)]
    pub(crate) fn next_element(&mut self, first: &mut bool) -> Result<bool> {
        // As in `key_follows`: a comma and the next element's first byte,
        // which cannot be `]` or whitespace.
        if !*first {
            if let Some(&[b',', next]) = self.bytes.get(self.pos..self.pos + 2) {
                if next > b' ' && next != b']' {
                    self.pos += 1;
                    return Ok(true);
                }
            }
        }
        self.ws();
        let Some(&b) = self.bytes.get(self.pos) else {
            return Err(self.eof("EOF while parsing a list"));
        };
        if *first {
            *first = false;
            if b == b']' {
                self.pos += 1;
                return Ok(false);
            }
            return Ok(true);
        }
        match b {
            b']' => {
                self.pos += 1;
                Ok(false)
            }
            b',' => {
                self.pos += 1;
                self.ws();
                match self.bytes.get(self.pos) {
                    Some(b']') => Err(self.error(self.pos, "trailing comma")),
                    None => Err(self.eof("EOF while parsing a value")),
                    Some(_) => Ok(true),
                }
            }
            _ => Err(self.error(self.pos, "expected `,` or `]`")),
        }
    }

    /// After the elements of an array read as a struct: it must end here.
    pub(crate) fn end_positional(&mut self) -> Result<()> {
        self.ws();
        match self.bytes.get(self.pos) {
            Some(b']') => {
                self.pos += 1;
                Ok(())
            }
            Some(b',') => {
                self.pos += 1;
                self.ws();
                match self.bytes.get(self.pos) {
                    Some(b']') => Err(self.error(self.pos, "trailing comma")),
                    _ => Err(self.error(self.pos, "trailing characters")),
                }
            }
            Some(_) => Err(self.error(self.pos, "expected `,` or `]`")),
            None => Err(self.eof("EOF while parsing a list")),
        }
    }

    // -----------------------------------------------------------------------
    // Scalars

    /// `true`, `false` or `null`, whose first byte `peek_value` saw.
    pub(crate) fn literal(&mut self) -> Result<Option<bool>> {
        let (word, value): (&[u8], _) = match self.bytes[self.pos] {
            b't' => (b"true", Some(true)),
            b'f' => (b"false", Some(false)),
            _ => (b"null", None),
        };
        for &expected in word {
            match self.bytes.get(self.pos) {
                Some(&b) if b == expected => self.pos += 1,
                Some(_) => return Err(self.error(self.pos, "expected ident")),
                None => return Err(self.eof("EOF while parsing a value")),
            }
        }
        Ok(value)
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while self.bytes.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// A non-negative integer of one to nine digits at the cursor, with no
    /// fraction or exponent: nearly every number of a request (codes, sizes,
    /// flags), read as [`Self::number`] would read it. `None` moves the
    /// cursor past whitespace only, for the general reader.
    #[inline]
    pub(crate) fn small_int(&mut self) -> Option<i32> {
        self.ws();
        let bytes = self.bytes;
        let start = self.pos;
        let first = bytes.get(start)?.wrapping_sub(b'0');
        if first > 9 {
            return None;
        }
        let mut value = u32::from(first);
        let mut i = start + 1;
        while let Some(&b) = bytes.get(i) {
            let digit = b.wrapping_sub(b'0');
            if digit > 9 {
                break;
            }
            // Nine digits at most: below 10^9, so neither this nor the
            // cast below can overflow.
            if i - start == 9 {
                return None;
            }
            value = value * 10 + u32::from(digit);
            i += 1;
        }
        // A leading zero, a fraction or an exponent: the general reader
        // refuses or reads it.
        if (first == 0 && i > start + 1) || matches!(bytes.get(i), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        self.pos = i;
        Some(value as i32)
    }

    /// Consumes a number (JSON's grammar, no more) and says whether it was an
    /// integer (no fraction, no exponent).
    fn number_span(&mut self) -> Result<bool> {
        if self.bytes.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        match self.bytes.get(self.pos) {
            Some(b'0') => {
                self.pos += 1;
                // One leading zero only.
                if self.bytes.get(self.pos).is_some_and(u8::is_ascii_digit) {
                    return Err(self.error(self.pos, "invalid number"));
                }
            }
            Some(b'1'..=b'9') => {
                self.digits();
            }
            Some(_) => return Err(self.error(self.pos, "invalid number")),
            None => return Err(self.eof("EOF while parsing a value")),
        }
        let mut integer = true;
        if self.bytes.get(self.pos) == Some(&b'.') {
            integer = false;
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.number_cut());
            }
        }
        if matches!(self.bytes.get(self.pos), Some(b'e' | b'E')) {
            integer = false;
            self.pos += 1;
            if matches!(self.bytes.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.number_cut());
            }
        }
        Ok(integer)
    }

    fn number_cut(&self) -> Box<Error> {
        if self.pos < self.bytes.len() {
            self.error(self.pos, "invalid number")
        } else {
            self.eof("EOF while parsing a value")
        }
    }

    /// A number, classified as serde_json does: non-negative integers that
    /// fit are `U64`, negative ones `I64`, everything else (fractions,
    /// exponents, `-0`, integers past 64 bits) the nearest `F64`.
    pub(crate) fn number(&mut self) -> Result<Number> {
        let start = self.pos;
        let negative = self.bytes.get(self.pos) == Some(&b'-');
        let digits_start = self.pos + usize::from(negative);
        // Integers are nearly every number in a request: read their value
        // in the same pass that finds their end.
        let mut value: u64 = 0;
        let mut fits = true;
        let mut i = digits_start;
        while let Some(&b) = self.bytes.get(i) {
            if !b.is_ascii_digit() {
                break;
            }
            match value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(b - b'0')))
            {
                Some(v) => value = v,
                None => fits = false,
            }
            i += 1;
        }
        let int_ok =
            i > digits_start && (self.bytes[digits_start] != b'0' || i == digits_start + 1);
        if int_ok && fits && self.bytes.get(i) == Some(&b'.') {
            if let Some((f, end)) = short_fraction(self.bytes, value, i - digits_start, i + 1) {
                self.pos = end;
                return Ok(Number::F64(if negative { -f } else { f }));
            }
        }
        let simple = int_ok && !matches!(self.bytes.get(i), Some(b'.' | b'e' | b'E'));
        if simple && fits {
            self.pos = i;
            if !negative {
                return Ok(Number::U64(value));
            }
            let negated = (value as i64).wrapping_neg();
            return Ok(if negated < 0 {
                Number::I64(negated)
            } else {
                // `-0`, and magnitudes past i64::MIN, are floats in serde_json.
                Number::F64(-(value as f64))
            });
        }
        // Exponents, long numbers, and the malformed (a short decimal was
        // read above): the grammar check gives the errors, the float
        // parser the value.
        self.pos = start;
        self.number_span()?;
        let span = &self.bytes[start..self.pos];
        // serde_json's own float reader, not `str::parse`: the two round
        // some numbers of hundreds of digits differently, and read
        // exponents past 65535 differently, and the two readers must agree.
        let parsed = serde_json::from_slice::<f64>(span).ok();
        match parsed {
            Some(f) if f.is_finite() => Ok(Number::F64(f)),
            _ => Err(self.error(self.pos, "number out of range")),
        }
    }

    /// The body's bytes `start..end` as text, checked only when the body as
    /// a whole was not valid UTF-8.
    // Always inlined, as `colon`'s fast path is: with the whole program in
    // one unit (the release profile's LTO) the inliner left both out of
    // line, 2.4k instructions a parse of the bench request more.
    #[inline(always)]
    fn text(&self, start: usize, end: usize) -> Result<&'a str> {
        let slice = match self.text {
            Some(text) => text.get(start..end),
            None => std::str::from_utf8(&self.bytes[start..end]).ok(),
        };
        slice.ok_or_else(|| self.error(start, "invalid unicode code point"))
    }

    /// The raw text of the value that starts at `start` and was just consumed.
    pub(crate) fn raw_since(&self, start: usize) -> Result<&'a str> {
        self.text(start, self.pos)
    }

    /// A string at the cursor (its opening quote), decoded: borrowed from the
    /// body unless it held escapes.
    // Always inlined: returned through memory, the `Cow` cost a
    // store-forwarding stall per string in its callers.
    #[inline(always)]
    pub(crate) fn string(&mut self) -> Result<Cow<'a, str>> {
        let start = self.pos + 1;
        let stop = find_special(self.bytes, start);
        match self.bytes.get(stop) {
            Some(b'"') => {
                self.pos = stop + 1;
                Ok(Cow::Borrowed(self.text(start, stop)?))
            }
            Some(b'\\') => self.escaped_string(start, stop).map(Cow::Owned),
            Some(_) => Err(self.control(stop)),
            None => Err(self.eof("EOF while parsing a string")),
        }
    }

    fn control(&self, at: usize) -> Box<Error> {
        self.error(
            at,
            "control character (\\u0000-\\u001F) found while parsing a string",
        )
    }

    #[inline(never)]
    fn escaped_string(&mut self, start: usize, first_escape: usize) -> Result<String> {
        let mut out = String::with_capacity(first_escape - start + 16);
        out.push_str(self.text(start, first_escape)?);
        self.pos = first_escape;
        loop {
            // At a backslash.
            self.pos += 1;
            let Some(&e) = self.bytes.get(self.pos) else {
                return Err(self.eof("EOF while parsing a string"));
            };
            self.pos += 1;
            match e {
                b'"' => out.push('"'),
                b'\\' => out.push('\\'),
                b'/' => out.push('/'),
                b'b' => out.push('\u{8}'),
                b'f' => out.push('\u{c}'),
                b'n' => out.push('\n'),
                b'r' => out.push('\r'),
                b't' => out.push('\t'),
                b'u' => out.push(self.unicode_escape()?),
                _ => return Err(self.error(self.pos - 1, "invalid escape")),
            }
            let from = self.pos;
            let stop = find_special(self.bytes, from);
            out.push_str(self.text(from, stop.min(self.bytes.len()))?);
            match self.bytes.get(stop) {
                Some(b'"') => {
                    self.pos = stop + 1;
                    self.spend(out.len())?;
                    return Ok(out);
                }
                Some(b'\\') => self.pos = stop,
                Some(_) => return Err(self.control(stop)),
                None => return Err(self.eof("EOF while parsing a string")),
            }
        }
    }

    fn hex4(&mut self) -> Result<u16> {
        let mut value: u16 = 0;
        for _ in 0..4 {
            let Some(&b) = self.bytes.get(self.pos) else {
                return Err(self.eof("EOF while parsing a string"));
            };
            let digit = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                b'A'..=b'F' => b - b'A' + 10,
                _ => return Err(self.error(self.pos, "invalid escape")),
            };
            value = value << 4 | u16::from(digit);
            self.pos += 1;
        }
        Ok(value)
    }

    /// After `\u`: one character, joining a surrogate pair. A lone surrogate
    /// is refused, as serde_json refuses it in a string it decodes.
    fn unicode_escape(&mut self) -> Result<char> {
        let first = self.hex4()?;
        let code = match first {
            0xDC00..=0xDFFF => {
                return Err(self.error(self.pos, "lone leading surrogate in hex escape"))
            }
            0xD800..=0xDBFF => {
                if self.bytes.get(self.pos..self.pos + 2) != Some(b"\\u") {
                    return Err(self.error(self.pos, "unexpected end of hex escape"));
                }
                self.pos += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(self.error(self.pos, "lone leading surrogate in hex escape"));
                }
                0x10000 + ((u32::from(first) - 0xD800) << 10 | (u32::from(second) - 0xDC00))
            }
            other => u32::from(other),
        };
        char::from_u32(code).ok_or_else(|| self.error(self.pos, "invalid unicode code point"))
    }

    /// Steps over a string at the cursor. Escapes are checked for shape only
    /// (serde_json lets a lone surrogate through in a value it ignores).
    ///
    /// The plain string, with no escape, is inlined into [`Self::skip`]:
    /// skipped values are mostly short strings (an ext's keys and ids), where
    /// a call's own instructions were a quarter of the string's.
    #[inline(always)]
    fn skip_string(&mut self) -> Result<()> {
        let stop = find_special(self.bytes, self.pos + 1);
        if self.bytes.get(stop) == Some(&b'"') {
            self.pos = stop + 1;
            return Ok(());
        }
        self.skip_string_from(stop)
    }

    /// [`Self::skip_string`] from its first escape or control byte, `stop`.
    #[inline(never)]
    fn skip_string_from(&mut self, mut stop: usize) -> Result<()> {
        loop {
            match self.bytes.get(stop) {
                Some(b'"') => {
                    self.pos = stop + 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.pos = stop + 1;
                    match self.bytes.get(self.pos) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.pos += 1
                        }
                        Some(b'u') => {
                            self.pos += 1;
                            self.hex4()?;
                        }
                        Some(_) => return Err(self.error(self.pos, "invalid escape")),
                        None => return Err(self.eof("EOF while parsing a string")),
                    }
                    stop = find_special(self.bytes, self.pos);
                }
                Some(_) => return Err(self.control(stop)),
                None => return Err(self.eof("EOF while parsing a string")),
            }
        }
    }

    /// Steps over one whole value nobody reads, however deep, without
    /// recursion: the input picks the depth, so the stack must not.
    pub(crate) fn skip(&mut self) -> Result<()> {
        let mut open = Nesting::default();
        loop {
            // At the start of a value.
            let b = self.peek_value()?;
            match b {
                b'"' => self.skip_string()?,
                // A lone digit (ext flags and versions: `"hp":1`, `"gdpr":0`)
                // needs no grammar beyond knowing nothing numeric follows:
                // the call to the general path was most of its cost.
                b'0'..=b'9'
                    if !matches!(
                        self.bytes.get(self.pos + 1),
                        Some(b'0'..=b'9' | b'.' | b'e' | b'E')
                    ) =>
                {
                    self.pos += 1;
                }
                b'-' | b'0'..=b'9' => {
                    self.number_span()?;
                }
                b't' | b'f' | b'n' => {
                    self.literal()?;
                }
                b'[' => {
                    self.pos += 1;
                    self.ws();
                    if self.bytes.get(self.pos) == Some(&b']') {
                        self.pos += 1;
                    } else {
                        open.push(false);
                        continue;
                    }
                }
                b'{' => {
                    self.pos += 1;
                    self.ws();
                    if self.bytes.get(self.pos) == Some(&b'}') {
                        self.pos += 1;
                    } else {
                        self.skip_member_key()?;
                        open.push(true);
                        continue;
                    }
                }
                _ => return Err(self.error(self.pos, "expected value")),
            }
            // A value ended: close what it ends, or move to the next member.
            loop {
                let Some(object) = open.top() else {
                    return Ok(());
                };
                self.ws();
                match (self.bytes.get(self.pos), object) {
                    (Some(b','), false) => {
                        self.pos += 1;
                        break;
                    }
                    (Some(b','), true) => {
                        self.pos += 1;
                        self.ws();
                        self.skip_member_key()?;
                        break;
                    }
                    (Some(b']'), false) | (Some(b'}'), true) => {
                        self.pos += 1;
                        open.pop();
                    }
                    (Some(_), false) => return Err(self.error(self.pos, "expected `,` or `]`")),
                    (Some(_), true) => return Err(self.error(self.pos, "expected `,` or `}`")),
                    (None, false) => return Err(self.eof("EOF while parsing a list")),
                    (None, true) => return Err(self.eof("EOF while parsing an object")),
                }
            }
        }
    }

    #[inline(always)]
    fn skip_member_key(&mut self) -> Result<()> {
        match self.bytes.get(self.pos) {
            Some(b'"') => {
                self.skip_string()?;
                self.colon()
            }
            Some(_) => Err(self.error(self.pos, "key must be a string")),
            None => Err(self.eof("EOF while parsing an object")),
        }
    }
}

/// The low `len` bytes of a word, for `len` below 16.
const KEY_MASKS: [u128; 16] = {
    let mut masks = [0u128; 16];
    let mut len = 0;
    while len < 16 {
        masks[len] = (1u128 << (8 * len)) - 1;
        len += 1;
    }
    masks
};

/// A key as one integer, so that matching it against an object's fields is
/// a comparison of integers: its bytes from the lowest, and its length in
/// the top byte (a key may hold a NUL). No model key is longer than 15
/// bytes; a longer key packs to a value no field has.
pub(crate) const fn pack(key: &[u8]) -> u128 {
    if key.len() > 15 {
        return u128::MAX;
    }
    let mut packed = (key.len() as u128) << 120;
    let mut i = 0;
    while i < key.len() {
        packed |= (key[i] as u128) << (8 * i);
        i += 1;
    }
    packed
}

/// Which containers a skipped value is inside: a bit per level, in a word
/// for the usual handful and spilling to a vector for hostile depths.
#[derive(Default)]
struct Nesting {
    depth: usize,
    low: u64,
    high: Vec<bool>,
}

impl Nesting {
    fn push(&mut self, object: bool) {
        if self.depth < 64 {
            self.low = self.low & !(1 << self.depth) | u64::from(object) << self.depth;
        } else {
            self.high.push(object);
        }
        self.depth += 1;
    }

    fn pop(&mut self) {
        self.depth -= 1;
        if self.depth >= 64 {
            self.high.pop();
        }
    }

    fn top(&self) -> Option<bool> {
        let level = self.depth.checked_sub(1)?;
        if level < 64 {
            Some(self.low >> level & 1 == 1)
        } else {
            self.high.last().copied()
        }
    }
}

/// The fraction of a decimal of at most 15 digits and no exponent (`39.74`,
/// `-104.99`, the coordinates of a request) whose integer digits (`int`, of
/// `int_digits` digits) are read, from the digit after its point at
/// `from`: its value as the nearest f64 and where it ends, in the same pass
/// as the integer (a latitude went through the number three times: its
/// integer, its grammar, its value). Its digits as an integer and a power
/// of ten are both exact in an f64, and IEEE division rounds their quotient
/// correctly, as serde_json's reader does. `None` (no digit after the
/// point, an exponent, more than 15 digits) leaves it to that reader.
#[inline]
fn short_fraction(bytes: &[u8], int: u64, int_digits: usize, from: usize) -> Option<(f64, usize)> {
    const POW10: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    if int_digits > 15 {
        return None;
    }
    let mut mantissa = int;
    let mut j = from;
    while let Some(&b) = bytes.get(j) {
        if !b.is_ascii_digit() {
            break;
        }
        if int_digits + (j - from) >= 15 {
            return None;
        }
        mantissa = mantissa * 10 + u64::from(b - b'0');
        j += 1;
    }
    let fraction = j - from;
    if fraction == 0 || matches!(bytes.get(j), Some(b'e' | b'E')) {
        return None;
    }
    // Below 10^15, both exact in an f64: the quotient is rounded once, as
    // a correct parse of the decimal rounds it.
    Some((mantissa as f64 / POW10[fraction], j))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_keys_pack_as_their_text() {
        let body = br#"{"id":1,"private_auction":1,"private_auctions":1,"":2,"w\u0069":3,"w":4}          "#;
        let mut c = Cursor::new(body);
        c.bump();
        let mut first = true;
        let mut keys = Vec::new();
        while let Some(key) = c.next_key(&mut first).unwrap() {
            keys.push(key);
            c.colon().unwrap();
            c.skip().unwrap();
        }
        let expected: Vec<u128> = ["id", "private_auction", "private_auctions", "", "wi", "w"]
            .iter()
            .map(|k| pack(k.as_bytes()))
            .collect();
        assert_eq!(keys, expected);
        assert_ne!(pack(b"id"), pack(b"id\0"));
        assert_eq!(pack(b"private_auctions"), u128::MAX);
    }

    proptest::proptest! {
        /// The short-decimal path rounds as serde_json does.
        #[test]
        fn short_decimals_read_as_serde_reads_them(
            negative: bool,
            int in 0u64..10_000_000,
            frac in 0u64..100_000_000,
            frac_digits in 0usize..9,
        ) {
            let text = format!(
                "{}{int}.{:0width$}",
                if negative { "-" } else { "" },
                frac % 10u64.pow(frac_digits as u32),
                width = frac_digits
            );
            let text = text.trim_end_matches('.');
            let expected: f64 = serde_json::from_str(text).unwrap();
            let mut c = Cursor::new(text.as_bytes());
            match c.number().unwrap() {
                Number::F64(f) => proptest::prop_assert_eq!(f.to_bits(), expected.to_bits(), "{}", text),
                Number::U64(u) => proptest::prop_assert_eq!(u as f64, expected),
                Number::I64(i) => proptest::prop_assert_eq!(i as f64, expected),
            }
        }
    }

    proptest::proptest! {
        /// Every number, and everything that nearly is one, reads as
        /// serde_json reads it: the same kind and value (floats to the
        /// bit), ending on the same byte, or refused as serde refuses it.
        /// Decimals take a one-pass path of their own (`short_fraction`).
        #[test]
        fn numbers_read_as_serde_reads_them(
            text in "-?[0-9]{0,18}(\\.[0-9]{0,18})?([eE][-+]?[0-9]{0,3})?",
        ) {
            let body = format!("{text},");
            let mut c = Cursor::new(body.as_bytes());
            let ours = c.number();
            match serde_json::from_str::<serde_json::Number>(&text) {
                Ok(n) => {
                    let ours = ours.map_err(|e| {
                        proptest::test_runner::TestCaseError::fail(format!("{text}: {e:?}"))
                    })?;
                    match ours {
                        Number::U64(v) => proptest::prop_assert_eq!(n.as_u64(), Some(v), "{}", text),
                        Number::I64(v) => {
                            proptest::prop_assert!(n.as_u64().is_none(), "{}", text);
                            proptest::prop_assert_eq!(n.as_i64(), Some(v), "{}", text);
                        }
                        Number::F64(f) => {
                            proptest::prop_assert!(n.as_u64().is_none() && n.as_i64().is_none(), "{}", text);
                            proptest::prop_assert_eq!(n.as_f64().map(f64::to_bits), Some(f.to_bits()), "{}", text);
                        }
                    }
                    proptest::prop_assert_eq!(c.pos, text.len(), "{}", text);
                }
                Err(_) => proptest::prop_assert!(
                    ours.is_err() || c.pos < text.len(),
                    "{}: read as {:?} to {}", text, ours, c.pos
                ),
            }
        }
    }

    proptest::proptest! {
        /// What the small-integer path reads, [`Cursor::number`] reads the
        /// same, to the same byte; what it leaves, it leaves untouched
        /// past the whitespace.
        #[test]
        fn small_ints_read_as_numbers_read_them(text in "[ ]{0,2}[-0-9.eE+]{0,12}[,}\\]]?") {
            let mut fast = Cursor::new(text.as_bytes());
            let mut slow = Cursor::new(text.as_bytes());
            slow.ws();
            let ws_end = slow.pos;
            match fast.small_int() {
                Some(n) => {
                    let read = slow.number();
                    proptest::prop_assert!(
                        matches!(read, Ok(Number::U64(v)) if v == n as u64),
                        "{:?}: {} against {:?}", text, n, read
                    );
                    proptest::prop_assert_eq!(fast.pos, slow.pos);
                }
                None => proptest::prop_assert_eq!(fast.pos, ws_end),
            }
        }
    }

    proptest::proptest! {
        /// A skipped value that looks like a number, or nearly (a lone
        /// `-`, digits running into letters, a leading zero), is accepted
        /// or refused as serde_json ignores or refuses it, wherever it
        /// sits in a skipped array or object: `skip` steps over a lone
        /// digit without the number grammar.
        #[test]
        fn skipped_numbers_read_as_serde_reads_them(
            text in "[ ]?[-0-9.eE+a]{0,6}",
            wrap in 0usize..4,
        ) {
            let body = match wrap {
                0 => text.clone(),
                1 => format!("[{text}]"),
                2 => format!("{{\"a\":{text}}}"),
                _ => format!("[1,{{\"k\":[0,{text},2]}}]"),
            };
            let mut c = Cursor::new(body.as_bytes());
            let ours = c.skip().and_then(|()| c.end());
            let theirs = serde_json::from_str::<serde::de::IgnoredAny>(&body);
            proptest::prop_assert_eq!(ours.is_ok(), theirs.is_ok(), "{:?}: {:?}", body, ours);
        }
    }

    #[test]
    fn small_ints_leave_what_they_do_not_read() {
        for (text, want) in [
            ("0", Some(0)),
            ("7,", Some(7)),
            ("999999999}", Some(999_999_999)),
            ("1234567890", None),
            ("2147483647", None),
            ("00", None),
            ("01", None),
            ("1.5", None),
            ("1e3", None),
            ("2E1", None),
            ("-1", None),
            ("", None),
        ] {
            let mut c = Cursor::new(text.as_bytes());
            assert_eq!(c.small_int(), want, "{text:?}");
        }
    }

    /// In a body that is not UTF-8, a key is read by the general path,
    /// which refuses one that is not UTF-8 itself as serde_json does: the
    /// short path checks no text, so it must not take such a key.
    #[test]
    fn a_key_that_is_not_utf8_is_refused_in_a_body_that_is_not() {
        let mut body = b"{\"\xff\xfe\":1".to_vec();
        body.extend_from_slice(&[b' '; 20]);
        body.push(b'}');
        let mut c = Cursor::new(&body);
        c.bump();
        assert!(c.next_key(&mut true).is_err());
        assert!(crate::parse_request(&body).is_err());
        assert!(crate::parse_request_serde(&body).is_err());
    }

    /// What a string's text can hold around the scan's 16-byte steps: a
    /// byte that ends it or needs a look, placed at every offset of
    /// strings of every length around one and two steps, read as a value
    /// and as a key, agrees with serde_json (accepted with the same text,
    /// or refused both).
    #[test]
    fn strings_and_keys_read_as_serde_json_reads_them_at_every_offset() {
        let pieces: [&str; 8] = [
            "\\\"", "\\\\", "\\n", "\\u00e9", "\u{1}", "\u{1f}", "é", "\\x",
        ];
        for len in 0..40 {
            for at in 0..=len {
                for piece in pieces {
                    let mut text = "a".repeat(len);
                    text.insert_str(at, piece);
                    // As a value.
                    let body = format!("\"{text}\"");
                    let ours = Cursor::new(body.as_bytes())
                        .string()
                        .map(|s| s.into_owned());
                    let theirs = serde_json::from_str::<String>(&body);
                    assert_eq!(ours.ok(), theirs.ok(), "value {body:?}");
                    // As a key: packed as the general path packs the
                    // decoded key, or refused as serde_json refuses it.
                    let body = format!("{{\"{text}\":1}}");
                    let mut c = Cursor::new(body.as_bytes());
                    c.bump();
                    let ours = c.next_key(&mut true);
                    let theirs =
                        serde_json::from_str::<std::collections::BTreeMap<String, u8>>(&body);
                    match (ours, theirs) {
                        (Ok(Some(key)), Ok(map)) => {
                            let decoded = map.keys().next().expect("one key");
                            assert_eq!(key, pack(decoded.as_bytes()), "key {body:?}");
                            assert!(c.colon().is_ok(), "key {body:?}");
                        }
                        (Err(_), Err(_)) => {}
                        (ours, theirs) => panic!("key {body:?}: {ours:?} against {theirs:?}"),
                    }
                }
            }
        }
    }
}

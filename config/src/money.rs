//! Money as integer micros of the account currency.
//!
//! Budgets and bids are compared and summed millions of times a day; binary
//! floating point would drift and make `60000.00` something else. Every amount
//! is therefore an `i64` count of 1e-6 units, parsed from the exact decimal
//! text the account manager wrote.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};

const MICROS_PER_UNIT: i64 = 1_000_000;
const MAX_DECIMALS: usize = 6;

/// An amount of money in millionths of the currency unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Micros(pub i64);

/// Why a decimal amount could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("the amount is empty")]
    Empty,
    #[error("\"{0}\" is not a plain decimal amount (write it like 1234.50)")]
    NotDecimal(String),
    #[error("\"{0}\" has more than 6 decimal places")]
    TooManyDecimals(String),
    #[error("\"{0}\" is too large")]
    TooLarge(String),
}

/// The most any amount of money may be (in a config: a budget, a CPM, a
/// goal; uploaded: a sale): far above any real one, and far enough below
/// what a micros count holds (about 9.2 trillion) that thousands of them
/// summed, or a goal × 1000, stay exact. Without it a CPM of
/// 9,223,372,036,854.775807 was taken, saturated the spend it was charged
/// to, and made report arithmetic wrap.
pub const MAX_AMOUNT: Micros = Micros::from_units(1_000_000_000);

impl Micros {
    pub const ZERO: Micros = Micros(0);

    /// Whole currency units; saturates rather than wrapping on absurd inputs.
    pub const fn from_units(units: i64) -> Micros {
        Micros(units.saturating_mul(MICROS_PER_UNIT))
    }

    /// Reads `-?digits(.digits{1,6})?` exactly.
    ///
    /// Deliberately narrow: no `+`, exponents, thousands separators,
    /// underscores, whitespace, or a bare leading/trailing dot, because each
    /// of those has more than one plausible reading in a budget field.
    pub fn parse_decimal(s: &str) -> Result<Micros, MoneyError> {
        if s.is_empty() {
            return Err(MoneyError::Empty);
        }
        let not_decimal = || MoneyError::NotDecimal(s.to_owned());
        let (negative, body) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (int_part, frac_part) = match body.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (body, None),
        };
        if int_part.is_empty() || !int_part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(not_decimal());
        }
        let frac_digits = match frac_part {
            None => "",
            Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => f,
            Some(_) => return Err(not_decimal()),
        };
        if frac_digits.len() > MAX_DECIMALS {
            return Err(MoneyError::TooManyDecimals(s.to_owned()));
        }

        // i128 so that i64::MIN, whose magnitude has no positive i64, still parses.
        let too_large = || MoneyError::TooLarge(s.to_owned());
        let mut magnitude: i128 = 0;
        for b in int_part.bytes() {
            magnitude = magnitude
                .checked_mul(10)
                .and_then(|m| m.checked_add(i128::from(b - b'0')))
                .ok_or_else(too_large)?;
            if magnitude > i128::from(i64::MAX) + 1 {
                return Err(too_large());
            }
        }
        let mut frac: i128 = 0;
        for i in 0..MAX_DECIMALS {
            let digit = frac_digits.as_bytes().get(i).map_or(0, |b| b - b'0');
            frac = frac * 10 + i128::from(digit);
        }
        let total = magnitude * i128::from(MICROS_PER_UNIT) + frac;
        let signed = if negative { -total } else { total };
        i64::try_from(signed).map(Micros).map_err(|_| too_large())
    }

    pub fn checked_add(self, o: Micros) -> Option<Micros> {
        self.0.checked_add(o.0).map(Micros)
    }

    pub fn checked_sub(self, o: Micros) -> Option<Micros> {
        self.0.checked_sub(o.0).map(Micros)
    }

    pub fn saturating_add(self, o: Micros) -> Micros {
        Micros(self.0.saturating_add(o.0))
    }

    pub fn saturating_sub(self, o: Micros) -> Micros {
        Micros(self.0.saturating_sub(o.0))
    }

    pub fn as_i64(self) -> i64 {
        self.0
    }

    /// `1234567.5` as `1,234,567.50`: what account managers read in messages.
    pub fn grouped(self) -> Grouped {
        Grouped(self)
    }

    fn write(self, f: &mut fmt::Formatter<'_>, group_thousands: bool) -> fmt::Result {
        let magnitude = self.0.unsigned_abs();
        let units = magnitude / MICROS_PER_UNIT as u64;
        let frac = magnitude % MICROS_PER_UNIT as u64;
        let mut frac_text = format!("{frac:06}");
        while frac_text.len() > 2 && frac_text.ends_with('0') {
            frac_text.pop();
        }
        let units_text = units.to_string();
        let units_text = if group_thousands {
            group(&units_text)
        } else {
            units_text
        };
        let sign = if self.0 < 0 { "-" } else { "" };
        write!(f, "{sign}{units_text}.{frac_text}")
    }
}

fn group(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl fmt::Display for Micros {
    /// Two decimals at least, more only when the amount needs them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, false)
    }
}

pub struct Grouped(Micros);

impl fmt::Display for Grouped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.write(f, true)
    }
}

impl<'de> Deserialize<'de> for Micros {
    /// Asks for the scalar as text so that `60000.00` never passes through f64.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Micros, D::Error> {
        struct MicrosVisitor;

        impl Visitor<'_> for MicrosVisitor {
            type Value = Micros;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an amount of money such as 1234.50")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Micros, E> {
                Micros::parse_decimal(v).map_err(E::custom)
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Micros, E> {
                v.checked_mul(MICROS_PER_UNIT)
                    .map(Micros)
                    .ok_or_else(|| E::custom(MoneyError::TooLarge(v.to_string())))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Micros, E> {
                i64::try_from(v)
                    .ok()
                    .and_then(|v| v.checked_mul(MICROS_PER_UNIT))
                    .map(Micros)
                    .ok_or_else(|| E::custom(MoneyError::TooLarge(v.to_string())))
            }

            // A float has already lost the written digits; refusing it is the
            // only way to keep amounts exact.
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Micros, E> {
                Err(E::custom(format!(
                    "{v} arrived as a binary float; write money as decimal text"
                )))
            }
        }

        deserializer.deserialize_str(MicrosVisitor)
    }
}

/// Units of a currency per US dollar, exact to 1e-9 (`EUR 0.95` is
/// 950,000,000 nanos).
///
/// Budgets are USD; a bid in another currency is converted with one rule
/// whose every rounding favours the advertiser's budget over our books
/// never being short, and never leaves a bid under its floor:
/// - a floor is converted *up* ([`Rate::to_usd_up`]): a bid that clears the
///   converted floor clears the real one;
/// - a bid is converted *up* into the answer's currency
///   ([`Rate::from_usd_up`]): a bid at a floor that came to USD through
///   another rate is not a fraction of a micro under it;
/// - a charge is converted back *up* ([`Rate::to_usd_up`]) and capped at
///   the bid's USD price: spend is never under-counted, and never more
///   than the line item's CPM is worth.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rate(u64);

const NANOS: i128 = 1_000_000_000;

impl Rate {
    pub const ONE: Rate = Rate(NANOS as u64);
    /// No currency is worth a billion per dollar; a larger rate is a typo.
    const MAX_UNITS: u64 = 1_000_000_000;
    /// Nor more than a thousand dollars a unit (the dearest trade at about
    /// three). Below this, a micro of the currency would be worth more
    /// than a micro-dollar of an impression, and prices read to the micro
    /// could under-count spend.
    const MIN_NANOS: u64 = 1_000_000;

    /// Reads `digits(.digits{1,9})?`, from 0.001 to 1,000,000,000.
    pub fn parse_decimal(s: &str) -> Result<Rate, RateError> {
        let bad = || RateError::NotDecimal(s.to_owned());
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        if int.is_empty()
            || !int.bytes().all(|b| b.is_ascii_digit())
            || (s.contains('.') && frac.is_empty())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        if frac.len() > 9 {
            return Err(RateError::TooManyDecimals(s.to_owned()));
        }
        let units: u64 = int
            .parse()
            .map_err(|_| RateError::OutOfRange(s.to_owned()))?;
        if units > Self::MAX_UNITS {
            return Err(RateError::OutOfRange(s.to_owned()));
        }
        let mut nanos = units * NANOS as u64;
        for i in 0..9 {
            let d = frac.as_bytes().get(i).map_or(0, |b| u64::from(b - b'0'));
            nanos += d * 10u64.pow(8 - i as u32);
        }
        if nanos < Self::MIN_NANOS {
            return Err(RateError::OutOfRange(s.to_owned()));
        }
        Ok(Rate(nanos))
    }

    pub fn nanos(self) -> u64 {
        self.0
    }

    /// From nanos as carried in a signed notice; `None` for 0.
    pub fn from_nanos(nanos: u64) -> Option<Rate> {
        (nanos > 0).then_some(Rate(nanos))
    }

    /// A USD amount in this currency, rounded down.
    pub fn from_usd(self, usd: Micros) -> Micros {
        // In 64 bits when the product fits, as every bid's does: dividing
        // by the constant is then a multiply, where 128 bits called a
        // library division (some 60 instructions, several per bid). Both
        // round toward zero.
        if let Some(p) = i64::try_from(self.0)
            .ok()
            .and_then(|r| usd.0.checked_mul(r))
        {
            return Micros(p / NANOS as i64);
        }
        clamp(i128::from(usd.0) * i128::from(self.0) / NANOS)
    }

    /// A USD amount in this currency, rounded up.
    pub fn from_usd_up(self, usd: Micros) -> Micros {
        // In 64 bits when the product fits, as `from_usd` does: every bid's
        // answer price comes through here.
        if let Some(p) = i64::try_from(self.0)
            .ok()
            .and_then(|r| usd.0.checked_mul(r))
        {
            // Division truncates toward zero: up already for a negative
            // product, one more for a positive one with a remainder.
            let n = NANOS as i64;
            return Micros(p / n + i64::from(p % n > 0));
        }
        clamp(div_up(i128::from(usd.0) * i128::from(self.0), NANOS))
    }

    /// An amount of this currency in USD, rounded down (a sale is never
    /// over-counted).
    pub fn to_usd(self, amount: Micros) -> Micros {
        clamp(i128::from(amount.0) * NANOS / i128::from(self.0))
    }

    /// An amount of this currency in USD, rounded up.
    pub fn to_usd_up(self, amount: Micros) -> Micros {
        clamp(div_up(i128::from(amount.0) * NANOS, i128::from(self.0)))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (units, frac) = (self.0 / NANOS as u64, self.0 % NANOS as u64);
        let frac = format!("{frac:09}");
        let frac = frac.trim_end_matches('0');
        if frac.is_empty() {
            write!(f, "{units}")
        } else {
            write!(f, "{units}.{frac}")
        }
    }
}

/// Ceiling division for a positive divisor, rounding towards +infinity
/// whatever the sign of `n`.
fn div_up(n: i128, d: i128) -> i128 {
    n.div_euclid(d) + i128::from(n.rem_euclid(d) != 0)
}

fn clamp(v: i128) -> Micros {
    Micros(v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RateError {
    #[error("\"{0}\" is not a plain decimal rate (write it like 0.95)")]
    NotDecimal(String),
    #[error("\"{0}\" has more than 9 decimal places")]
    TooManyDecimals(String),
    #[error("\"{0}\" must be from 0.001 to 1000000000 units per USD")]
    OutOfRange(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Micros, MoneyError> {
        Micros::parse_decimal(s)
    }

    /// The 64-bit path of `from_usd` gives what the 128-bit arithmetic
    /// gives, at both signs, at the rates a config may hold, and where the
    /// product stops fitting 64 bits.
    #[test]
    fn from_usd_agrees_with_128_bit_arithmetic() {
        let wide = |usd: i64, rate: u64| clamp(i128::from(usd) * i128::from(rate) / NANOS);
        let rates = [
            1,
            1_000_000,
            999_999_999,
            NANOS as u64,
            1_234_567_891,
            Rate::MAX_UNITS * NANOS as u64,
            u64::MAX,
        ];
        let edge = i64::MAX / 1_000_000_000_000_000;
        let amounts = [
            0,
            1,
            -1,
            999,
            19_990_000,
            -19_990_000,
            edge,
            edge + 1,
            i64::MAX / 2,
            i64::MAX,
            i64::MIN,
            i64::MIN + 1,
        ];
        for rate in rates {
            for usd in amounts {
                assert_eq!(
                    Rate(rate).from_usd(Micros(usd)),
                    wide(usd, rate),
                    "{usd} at {rate}"
                );
            }
        }
    }

    #[test]
    fn parses_exact_decimals() {
        assert_eq!(p("6.00"), Ok(Micros(6_000_000)));
        assert_eq!(p("60000"), Ok(Micros(60_000_000_000)));
        assert_eq!(p("60000.00"), Ok(Micros(60_000_000_000)));
        assert_eq!(p("0.000001"), Ok(Micros(1)));
        assert_eq!(p("1.2345"), Ok(Micros(1_234_500)));
        assert_eq!(p("0"), Ok(Micros::ZERO));
        assert_eq!(p("-0"), Ok(Micros::ZERO));
        assert_eq!(p("-0.5"), Ok(Micros(-500_000)));
        assert_eq!(p("007.50"), Ok(Micros(7_500_000)));
        // 0.1 + 0.2 style drift must not exist.
        assert_eq!(p("0.3"), Ok(Micros(300_000)));
    }

    #[test]
    fn parses_the_extremes_of_i64() {
        assert_eq!(p("9223372036854.775807"), Ok(Micros(i64::MAX)));
        assert_eq!(p("-9223372036854.775808"), Ok(Micros(i64::MIN)));
        assert!(matches!(
            p("9223372036854.775808"),
            Err(MoneyError::TooLarge(_))
        ));
        assert!(matches!(
            p("99999999999999999999999999999999999999999"),
            Err(MoneyError::TooLarge(_))
        ));
    }

    #[test]
    fn rejects_what_is_not_a_plain_decimal() {
        assert_eq!(p(""), Err(MoneyError::Empty));
        for bad in [
            "+5", "--5", "5-", "1e5", "1E5", "1,000", "1_000", " 5", "5 ", ".5", "5.", "-", "-.5",
            "abc", "0x10", "1.2.3", "NaN", "inf", "٣",
        ] {
            assert!(
                matches!(p(bad), Err(MoneyError::NotDecimal(_))),
                "{bad:?} gave {:?}",
                p(bad)
            );
        }
        assert_eq!(
            p("0.0000001"),
            Err(MoneyError::TooManyDecimals("0.0000001".into()))
        );
        assert_eq!(
            p("1.0000000"),
            Err(MoneyError::TooManyDecimals("1.0000000".into()))
        );
    }

    #[test]
    fn displays_two_decimals_or_more_when_needed() {
        assert_eq!(Micros(6_000_000).to_string(), "6.00");
        assert_eq!(Micros(1_234_500).to_string(), "1.2345");
        assert_eq!(Micros(-500_000).to_string(), "-0.50");
        assert_eq!(Micros(1).to_string(), "0.000001");
        assert_eq!(Micros::ZERO.to_string(), "0.00");
        assert_eq!(Micros(60_000_000_000).to_string(), "60000.00");
        assert_eq!(Micros(i64::MIN).to_string(), "-9223372036854.775808");
        assert_eq!(Micros(i64::MAX).to_string(), "9223372036854.775807");
    }

    #[test]
    fn display_round_trips_through_parse() {
        for v in [
            0,
            1,
            -1,
            10,
            999_999,
            1_000_000,
            -123_456_789,
            i64::MAX,
            i64::MIN,
        ] {
            assert_eq!(p(&Micros(v).to_string()), Ok(Micros(v)));
        }
    }

    #[test]
    fn grouped_display_separates_thousands() {
        assert_eq!(
            Micros::from_units(50_000).grouped().to_string(),
            "50,000.00"
        );
        assert_eq!(Micros(999_990_000).grouped().to_string(), "999.99");
        assert_eq!(
            Micros(-1_234_567_500_000).grouped().to_string(),
            "-1,234,567.50"
        );
        assert_eq!(Micros(100_000_000_000).grouped().to_string(), "100,000.00");
    }

    #[test]
    fn arithmetic_checks_and_saturates() {
        assert_eq!(Micros::from_units(5), Micros(5_000_000));
        assert_eq!(Micros::from_units(i64::MAX), Micros(i64::MAX));
        assert_eq!(Micros(1).checked_add(Micros(2)), Some(Micros(3)));
        assert_eq!(Micros(i64::MAX).checked_add(Micros(1)), None);
        assert_eq!(Micros(i64::MIN).checked_sub(Micros(1)), None);
        assert_eq!(Micros(5).checked_sub(Micros(7)), Some(Micros(-2)));
        assert_eq!(Micros(i64::MAX).saturating_add(Micros(1)), Micros(i64::MAX));
        assert_eq!(Micros(i64::MIN).saturating_sub(Micros(1)), Micros(i64::MIN));
        assert_eq!(Micros(42).as_i64(), 42);
    }

    #[test]
    fn deserializes_from_yaml_text_exactly() {
        #[derive(serde::Deserialize)]
        struct Doc {
            a: Micros,
            b: Micros,
            c: Micros,
        }
        let doc: Doc =
            serde_saphyr::from_str("a: 60000.00\nb: 7\nc: 0.000001\n").expect("valid amounts");
        assert_eq!(doc.a, Micros(60_000_000_000));
        assert_eq!(doc.b, Micros(7_000_000));
        assert_eq!(doc.c, Micros(1));
        assert!(serde_saphyr::from_str::<Doc>("a: 1.0000001\nb: 1\nc: 1\n").is_err());
        assert!(serde_saphyr::from_str::<Doc>("a: 1e3\nb: 1\nc: 1\n").is_err());
    }

    #[test]
    fn rates_parse_exactly() {
        assert_eq!(Rate::parse_decimal("0.95").unwrap().nanos(), 950_000_000);
        assert_eq!(
            Rate::parse_decimal("155.3").unwrap().nanos(),
            155_300_000_000
        );
        assert_eq!(Rate::parse_decimal("1").unwrap(), Rate::ONE);
        assert_eq!(Rate::parse_decimal("0.001").unwrap().nanos(), 1_000_000);
        assert!(Rate::parse_decimal("0.000999999").is_err());
        for bad in [
            "",
            "0",
            "0.0",
            "-1",
            "1e3",
            "1.",
            ".5",
            "1,5",
            " 1",
            "0.0000000001",
            "1000000001",
        ] {
            assert!(Rate::parse_decimal(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Rate::parse_decimal("0.95").unwrap().to_string(), "0.95");
    }

    #[test]
    fn conversions_round_the_safe_way() {
        let eur = Rate::parse_decimal("0.95").unwrap();
        // A USD 4.00 CPM bids EUR 3.80 exactly; USD 0.000001 bids nothing more than it is worth.
        assert_eq!(eur.from_usd(Micros(4_000_000)), Micros(3_800_000));
        assert_eq!(eur.from_usd(Micros(1)), Micros(0));
        assert_eq!(eur.from_usd_up(Micros(1)), Micros(1));
        // EUR 1.00 is USD 1.052631578…: charged as 1.052632.
        assert_eq!(eur.to_usd_up(Micros(1_000_000)), Micros(1_052_632));
        assert_eq!(
            eur.to_usd(Micros(1_000_000)),
            Micros(1_052_631),
            "sales round down"
        );
        let jpy = Rate::parse_decimal("155.3").unwrap();
        assert_eq!(jpy.from_usd(Micros(2_000_000)), Micros(310_600_000));
        assert_eq!(jpy.to_usd_up(Micros(310_600_000)), Micros(2_000_000));
        assert_eq!(jpy.to_usd_up(Micros(310_599_999)), Micros(2_000_000));
        assert_eq!(jpy.to_usd_up(Micros(1)), Micros(1));
        assert_eq!(Rate::ONE.to_usd_up(Micros(123)), Micros(123));
    }

    proptest::proptest! {
        /// A bid converted down and its charge converted back up never
        /// counts less than what the exchange was paid, and never more than
        /// the USD it came from plus a micro.
        #[test]
        fn a_round_trip_never_undercounts(usd in 0i64..1_000_000_000_000, nanos in 1_000_000u64..1_000_000_000_000_000_000) {
            let r = Rate(nanos);
            let foreign = r.from_usd(Micros(usd));
            let back = r.to_usd_up(foreign);
            proptest::prop_assert!(back.0 <= usd, "charged {} for a bid of {}", back.0, usd);
            // Exact: back is the least USD amount whose value covers `foreign`.
            proptest::prop_assert!(i128::from(back.0) * i128::from(nanos) >= i128::from(foreign.0) * NANOS);
        }

        /// Rounded up in 64 bits as in 128: the least amount whose worth
        /// covers the USD, of either sign (held to 64 bits).
        #[test]
        fn up_is_the_least_amount_covering_the_usd(usd in -1_000_000_000_000i64..1_000_000_000_000, nanos in 1u64..1_000_000_000_000_000_000) {
            let exact = clamp(div_up(i128::from(usd) * i128::from(nanos), NANOS));
            proptest::prop_assert_eq!(Rate(nanos).from_usd_up(Micros(usd)), exact);
        }
    }
}

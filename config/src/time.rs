//! UTC civil dates, millisecond timestamps, and the clock seam.
//!
//! Flights and pacing only need proleptic-Gregorian dates in UTC, so the
//! arithmetic is done here by hand (Howard Hinnant's `days_from_civil`) instead
//! of pulling a date crate into every build.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

const MILLIS_PER_DAY: i64 = 86_400_000;

/// Why a date or timestamp could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("\"{0}\" is not a date written as YYYY-MM-DD")]
    DateFormat(String),
    #[error("\"{0}\" is not a real calendar date")]
    NoSuchDate(String),
    #[error("\"{0}\" is not an RFC 3339 timestamp like 2026-11-20T10:00:00Z")]
    TimestampFormat(String),
    #[error("\"{0}\" has an hour, minute, second or offset out of range")]
    TimeOutOfRange(String),
}

/// A calendar day in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    // Field order matters: the derived Ord compares year, then month, then day.
    y: i32,
    m: u8,
    d: u8,
    /// Days since 1970-01-01, a function of the three above (so the derived
    /// traits agree with them): kept, because budgets are keyed by it and a
    /// bid's every budget read asked for it, some 70 instructions each.
    days: i64,
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a valid proleptic-Gregorian date.
const fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of `days_from_civil`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Parses exactly `n` ASCII digits.
fn digits(s: &str, n: usize) -> Option<u32> {
    if s.len() != n || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl Date {
    /// Strictly `YYYY-MM-DD`: four-digit year, two-digit month and day.
    pub fn parse(s: &str) -> Result<Date, TimeError> {
        let format = || TimeError::DateFormat(s.to_owned());
        let mut parts = s.split('-');
        let (Some(y), Some(m), Some(d), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(format());
        };
        let (Some(y), Some(m), Some(d)) = (digits(y, 4), digits(m, 2), digits(d, 2)) else {
            return Err(format());
        };
        let y = i32::try_from(y).map_err(|_| format())?;
        Date::from_ymd(y, m, d).ok_or_else(|| TimeError::NoSuchDate(s.to_owned()))
    }

    pub fn from_ymd(y: i32, m: u32, d: u32) -> Option<Date> {
        if !(1..=12).contains(&m) || d == 0 || d > days_in_month(i64::from(y), m) {
            return None;
        }
        Some(Date {
            y,
            m: m as u8,
            d: d as u8,
            days: days_from_civil(i64::from(y), m, d),
        })
    }

    pub fn year(self) -> i32 {
        self.y
    }

    pub fn month(self) -> u32 {
        u32::from(self.m)
    }

    pub fn day(self) -> u32 {
        u32::from(self.d)
    }

    pub fn days_since_epoch(self) -> i64 {
        self.days
    }

    /// Saturates at the first and last day of the `i32` year range, since a
    /// `Date` cannot name anything further out.
    pub fn from_days_since_epoch(days: i64) -> Date {
        const LO: i64 = days_from_civil(i32::MIN as i64, 1, 1);
        const HI: i64 = days_from_civil(i32::MAX as i64, 12, 31);
        let days = days.clamp(LO, HI);
        let (y, m, d) = civil_from_days(days);
        Date {
            y: y as i32,
            m: m as u8,
            d: d as u8,
            days,
        }
    }

    /// 00:00:00.000 UTC of this day (saturating for years no clock reaches).
    pub fn start(self) -> Timestamp {
        Timestamp(self.days_since_epoch().saturating_mul(MILLIS_PER_DAY))
    }

    /// The day of the week (1970-01-01 was a Thursday).
    pub fn weekday(self) -> Weekday {
        // Monday is index 0, so the epoch's Thursday is index 3.
        Weekday::ALL[(self.days_since_epoch() + 3).rem_euclid(7) as usize]
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.y, self.m, self.d)
    }
}

/// A day of the week, Monday first (ISO 8601).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    /// Monday to Sunday.
    pub const ALL: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];

    /// The YAML spelling: `mon` to `sun`.
    pub fn as_str(self) -> &'static str {
        match self {
            Weekday::Mon => "mon",
            Weekday::Tue => "tue",
            Weekday::Wed => "wed",
            Weekday::Thu => "thu",
            Weekday::Fri => "fri",
            Weekday::Sat => "sat",
            Weekday::Sun => "sun",
        }
    }

    /// The full English name in lower case, for hints.
    pub(crate) fn full_name(self) -> &'static str {
        match self {
            Weekday::Mon => "monday",
            Weekday::Tue => "tuesday",
            Weekday::Wed => "wednesday",
            Weekday::Thu => "thursday",
            Weekday::Fri => "friday",
            Weekday::Sat => "saturday",
            Weekday::Sun => "sunday",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Weekday> {
        Weekday::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

impl fmt::Display for Weekday {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Milliseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The UTC day this instant falls in; instants before 1970 round down.
    pub fn date(self) -> Date {
        Date::from_days_since_epoch(self.0.div_euclid(MILLIS_PER_DAY))
    }

    pub fn as_millis(self) -> i64 {
        self.0
    }

    /// Minutes since 00:00 UTC of this instant's day, 0 to 1439.
    pub fn minute_of_day(self) -> u16 {
        (self.0.rem_euclid(MILLIS_PER_DAY) / 60_000) as u16
    }

    /// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`.
    ///
    /// `T` and `Z` may be lower case, as RFC 3339 allows. Fractions longer
    /// than milliseconds are truncated. Leap seconds (`:60`) are refused:
    /// nothing downstream can represent them.
    pub fn parse_rfc3339(s: &str) -> Result<Timestamp, TimeError> {
        let format = || TimeError::TimestampFormat(s.to_owned());
        let range = || TimeError::TimeOutOfRange(s.to_owned());
        if !s.is_ascii() || s.len() < 20 {
            return Err(format());
        }
        let (date_part, rest) = s.split_at(10);
        let date = Date::parse(date_part).map_err(|e| match e {
            TimeError::NoSuchDate(_) => TimeError::NoSuchDate(s.to_owned()),
            _ => format(),
        })?;
        let rest = rest
            .strip_prefix('T')
            .or_else(|| rest.strip_prefix('t'))
            .ok_or_else(format)?;
        let (hms, rest) = rest.split_at(8);
        let b = hms.as_bytes();
        if b[2] != b':' || b[5] != b':' {
            return Err(format());
        }
        let (Some(h), Some(mi), Some(sec)) = (
            digits(&hms[0..2], 2),
            digits(&hms[3..5], 2),
            digits(&hms[6..8], 2),
        ) else {
            return Err(format());
        };
        if h > 23 || mi > 59 || sec > 59 {
            return Err(range());
        }

        let (frac_millis, offset) = match rest.strip_prefix('.') {
            Some(after_dot) => {
                let n = after_dot.bytes().take_while(u8::is_ascii_digit).count();
                if n == 0 {
                    return Err(format());
                }
                let mut millis = 0i64;
                for i in 0..3 {
                    let digit = after_dot.as_bytes().get(i).filter(|_| i < n);
                    millis = millis * 10 + digit.map_or(0, |d| i64::from(d - b'0'));
                }
                (millis, &after_dot[n..])
            }
            None => (0, rest),
        };

        let offset_minutes: i64 = match offset {
            "Z" | "z" => 0,
            _ => {
                let ob = offset.as_bytes();
                if ob.len() != 6 || ob[3] != b':' {
                    return Err(format());
                }
                let sign = match ob[0] {
                    b'+' => 1,
                    b'-' => -1,
                    _ => return Err(format()),
                };
                let (Some(oh), Some(om)) = (digits(&offset[1..3], 2), digits(&offset[4..6], 2))
                else {
                    return Err(format());
                };
                if oh > 23 || om > 59 {
                    return Err(range());
                }
                sign * (i64::from(oh) * 60 + i64::from(om))
            }
        };

        // Four-digit years keep every term far from i64 limits.
        let local = date.start().0
            + i64::from(h) * 3_600_000
            + i64::from(mi) * 60_000
            + i64::from(sec) * 1_000
            + frac_millis;
        Ok(Timestamp(local - offset_minutes * 60_000))
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with milliseconds, e.g. `2026-11-20T10:00:00.000Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.rem_euclid(MILLIS_PER_DAY);
        write!(
            f,
            "{}T{:02}:{:02}:{:02}.{:03}Z",
            self.date(),
            ms / 3_600_000,
            ms / 60_000 % 60,
            ms / 1_000 % 60,
            ms % 1_000
        )
    }
}

/// Where "now" comes from, so that flights and pacing are testable.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The wall clock; nothing else in the workspace should read it.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            Err(before) => {
                Timestamp(-i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX))
            }
        }
    }
}

/// A clock that only moves when a test moves it (or, once
/// [`ManualClock::step_per_read`] says so, each time it is read).
#[derive(Debug)]
pub struct ManualClock {
    millis: AtomicI64,
    step: AtomicI64,
}

impl ManualClock {
    pub fn new(ts: Timestamp) -> ManualClock {
        ManualClock {
            millis: AtomicI64::new(ts.0),
            step: AtomicI64::new(0),
        }
    }

    /// From now on each read returns the time, then moves it on by `ms`:
    /// two times taken apart differ, so a test can tell which of them a
    /// result was made from.
    pub fn step_per_read(&self, ms: i64) {
        self.step.store(ms, Ordering::SeqCst);
    }

    pub fn set(&self, ts: Timestamp) {
        self.millis.store(ts.0, Ordering::SeqCst);
    }

    pub fn advance_millis(&self, ms: i64) {
        self.millis.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        // A plain read unless stepping: the benches' app reads this clock
        // on every bid.
        match self.step.load(Ordering::SeqCst) {
            0 => Timestamp(self.millis.load(Ordering::SeqCst)),
            step => Timestamp(self.millis.fetch_add(step, Ordering::SeqCst)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        Date::parse(s).expect("test date")
    }

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).expect("test timestamp")
    }

    #[test]
    fn a_manual_clock_moves_when_told_and_steps_per_read_when_asked() {
        let c = ManualClock::new(Timestamp(1_000));
        assert_eq!((c.now(), c.now()), (Timestamp(1_000), Timestamp(1_000)));
        c.advance_millis(5);
        assert_eq!(c.now(), Timestamp(1_005));
        c.step_per_read(10);
        assert_eq!((c.now(), c.now()), (Timestamp(1_005), Timestamp(1_015)));
        c.step_per_read(0);
        assert_eq!((c.now(), c.now()), (Timestamp(1_025), Timestamp(1_025)));
        c.set(Timestamp(7));
        assert_eq!(c.now(), Timestamp(7));
    }

    #[test]
    fn parses_dates_strictly() {
        let date = d("2026-11-01");
        assert_eq!((date.year(), date.month(), date.day()), (2026, 11, 1));
        assert_eq!(date.to_string(), "2026-11-01");
        for bad in [
            "2026-1-01",
            "2026-11-1",
            "26-11-01",
            "2026/11/01",
            "2026-11-01T00:00:00Z",
            " 2026-11-01",
            "2026-11-01 ",
            "+2026-11-01",
            "2026-11",
            "2026-11-01-01",
            "",
            "２０２６-11-01",
        ] {
            assert!(
                matches!(Date::parse(bad), Err(TimeError::DateFormat(_))),
                "{bad:?}"
            );
        }
        for bad in ["2026-13-01", "2026-00-10", "2026-04-31", "2026-11-00"] {
            assert!(
                matches!(Date::parse(bad), Err(TimeError::NoSuchDate(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn leap_years_follow_the_gregorian_rules() {
        assert!(Date::parse("2024-02-29").is_ok());
        assert!(Date::parse("2000-02-29").is_ok());
        assert!(Date::parse("2026-02-29").is_err());
        assert!(Date::parse("1900-02-29").is_err());
        assert!(Date::parse("2100-02-29").is_err());
        assert!(Date::from_ymd(2024, 2, 29).is_some());
        assert!(Date::from_ymd(2023, 2, 29).is_none());
        assert!(Date::from_ymd(2023, 12, 32).is_none());
        assert!(Date::from_ymd(2023, 0, 1).is_none());
    }

    #[test]
    fn epoch_day_arithmetic() {
        assert_eq!(d("1970-01-01").days_since_epoch(), 0);
        assert_eq!(d("1970-01-02").days_since_epoch(), 1);
        assert_eq!(d("1969-12-31").days_since_epoch(), -1);
        assert_eq!(d("2000-03-01").days_since_epoch(), 11_017);
        assert_eq!(d("2026-11-01").days_since_epoch(), 20_758);
        assert_eq!(
            d("2025-01-01").days_since_epoch() - d("2024-01-01").days_since_epoch(),
            366
        );
        // Every day across several leap cycles round-trips, and the day
        // a date keeps is the one its year, month and day make.
        for days in -800_000..800_000 {
            let date = Date::from_days_since_epoch(days);
            assert_eq!(date.days_since_epoch(), days);
            let made = Date::from_ymd(date.year(), date.month(), date.day());
            assert_eq!(made.map(Date::days_since_epoch), Some(days));
        }
        assert_eq!(Date::from_days_since_epoch(20_758), d("2026-11-01"));
        assert_eq!(Date::from_days_since_epoch(-1), d("1969-12-31"));
    }

    #[test]
    fn from_days_saturates_instead_of_wrapping() {
        // The whole date, day number included: budgets are keyed by the
        // kept day, so a clamped date must be the same date its year,
        // month and day make.
        let last = Date::from_ymd(i32::MAX, 12, 31).unwrap();
        let first = Date::from_ymd(i32::MIN, 1, 1).unwrap();
        assert_eq!(Date::from_days_since_epoch(i64::MAX), last);
        assert_eq!(Date::from_days_since_epoch(i64::MIN), first);
        assert_eq!(
            Date::from_days_since_epoch(last.days_since_epoch() + 1),
            last
        );
        assert_eq!(
            Date::from_days_since_epoch(first.days_since_epoch() - 1),
            first
        );
        assert_eq!(
            Date::from_days_since_epoch(last.days_since_epoch()).days_since_epoch(),
            last.days_since_epoch()
        );
        assert_eq!(
            Date::from_ymd(i32::MAX, 12, 31).map(Date::start),
            Some(Timestamp(i64::MAX))
        );
    }

    #[test]
    fn dates_order_chronologically() {
        assert!(d("2026-11-01") < d("2026-11-02"));
        assert!(d("2026-10-31") < d("2026-11-01"));
        assert!(d("2025-12-31") < d("2026-01-01"));
    }

    #[test]
    fn timestamps_map_to_their_utc_day() {
        let start = d("2026-11-01").start();
        assert_eq!(start, Timestamp(20_758 * 86_400_000));
        assert_eq!(start.date(), d("2026-11-01"));
        assert_eq!(Timestamp(start.0 - 1).date(), d("2026-10-31"));
        assert_eq!(Timestamp(start.0 + 86_399_999).date(), d("2026-11-01"));
        assert_eq!(Timestamp(start.0 + 86_400_000).date(), d("2026-11-02"));
        assert_eq!(Timestamp(-1).date(), d("1969-12-31"));
        assert_eq!(Timestamp(0).date(), d("1970-01-01"));
    }

    #[test]
    fn parses_rfc3339() {
        let base = d("2026-11-20").start().0;
        assert_eq!(ts("2026-11-20T10:00:00Z").0, base + 36_000_000);
        assert_eq!(ts("2026-11-20t10:00:00z").0, base + 36_000_000);
        assert_eq!(ts("2026-11-20T10:00:00.5Z").0, base + 36_000_500);
        assert_eq!(ts("2026-11-20T10:00:00.123456789Z").0, base + 36_000_123);
        assert_eq!(ts("2026-11-20T10:00:00.07Z").0, base + 36_000_070);
        assert_eq!(ts("2026-11-20T10:00:00+02:00").0, base + 28_800_000);
        assert_eq!(ts("2026-11-20T10:00:00-05:30").0, base + 55_800_000);
        assert_eq!(ts("2026-11-20T10:00:00-00:00"), ts("2026-11-20T10:00:00Z"));
        assert_eq!(ts("1970-01-01T00:00:00Z"), Timestamp(0));
        assert_eq!(ts("1969-12-31T23:59:59.999Z"), Timestamp(-1));
    }

    #[test]
    fn offsets_can_cross_day_boundaries() {
        let t = ts("2026-11-01T01:00:00+02:00");
        assert_eq!(t.date(), d("2026-10-31"));
        assert_eq!(t, ts("2026-10-31T23:00:00Z"));
        let t = ts("2026-12-31T22:00:00-03:00");
        assert_eq!(t.date(), d("2027-01-01"));
        // Leap day reached through an offset.
        assert_eq!(ts("2028-03-01T00:30:00+01:00").date(), d("2028-02-29"));
    }

    #[test]
    fn rejects_malformed_timestamps() {
        for bad in [
            "2026-11-20",
            "2026-11-20T10:00:00",
            "2026-11-20 10:00:00Z",
            "2026-11-20T10:00Z",
            "2026-11-20T10:00:00.Z",
            "2026-11-20T10:00:00+0200",
            "2026-11-20T10:00:00+02",
            "2026-11-20T1:00:00Z",
            "2026-11-20T10:00:00ZZ",
            "2026-11-20T10-00-00Z",
            "2026-11-20T10:00:00.5+02:00x",
            "2026-11-20T10:00:00é",
        ] {
            assert!(
                matches!(
                    Timestamp::parse_rfc3339(bad),
                    Err(TimeError::TimestampFormat(_))
                ),
                "{bad:?} gave {:?}",
                Timestamp::parse_rfc3339(bad)
            );
        }
        for bad in [
            "2026-11-20T24:00:00Z",
            "2026-11-20T10:60:00Z",
            "2026-11-20T23:59:60Z",
            "2026-11-20T10:00:00+24:00",
            "2026-11-20T10:00:00+01:60",
        ] {
            assert!(
                matches!(
                    Timestamp::parse_rfc3339(bad),
                    Err(TimeError::TimeOutOfRange(_))
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            Timestamp::parse_rfc3339("2026-02-30T10:00:00Z"),
            Err(TimeError::NoSuchDate(_))
        ));
    }

    #[test]
    fn timestamp_display_is_rfc3339_utc() {
        assert_eq!(
            ts("2026-11-20T10:00:00.5+01:00").to_string(),
            "2026-11-20T09:00:00.500Z"
        );
        assert_eq!(Timestamp(-1).to_string(), "1969-12-31T23:59:59.999Z");
        let t = ts("2024-02-29T23:59:59.999Z");
        assert_eq!(ts(&t.to_string()), t);
    }

    #[test]
    fn weekdays_of_known_dates() {
        use Weekday::*;
        for (date, day) in [
            ("1970-01-01", Thu),
            ("1969-12-31", Wed),
            ("1969-12-29", Mon),
            ("2000-01-01", Sat),
            ("2024-02-29", Thu),
            ("2026-11-01", Sun),
            ("2026-11-25", Wed),
            ("2026-11-30", Mon),
            ("2026-12-31", Thu),
            ("1900-01-01", Mon),
        ] {
            assert_eq!(d(date).weekday(), day, "{date}");
        }
        // Seven consecutive days are each weekday once, in order.
        let start = d("2026-11-23").days_since_epoch();
        let week: Vec<Weekday> = (0..7)
            .map(|i| Date::from_days_since_epoch(start + i).weekday())
            .collect();
        assert_eq!(week, Weekday::ALL);
    }

    #[test]
    fn weekday_names_round_trip() {
        for day in Weekday::ALL {
            assert_eq!(Weekday::parse(day.as_str()), Some(day));
            assert!(day.full_name().starts_with(day.as_str()));
        }
        assert_eq!(Weekday::parse("Mon"), None);
        assert_eq!(Weekday::parse("monday"), None);
        assert_eq!(Weekday::Sun.to_string(), "sun");
    }

    #[test]
    fn minute_of_day_is_utc() {
        assert_eq!(ts("2026-11-25T00:00:00Z").minute_of_day(), 0);
        assert_eq!(ts("2026-11-25T00:00:59.999Z").minute_of_day(), 0);
        assert_eq!(ts("2026-11-25T07:30:00Z").minute_of_day(), 450);
        assert_eq!(ts("2026-11-25T23:59:59.999Z").minute_of_day(), 1439);
        assert_eq!(ts("2026-11-25T09:30:00+02:00").minute_of_day(), 450);
        assert_eq!(Timestamp(-1).minute_of_day(), 1439);
        assert_eq!(Timestamp(-60_000).minute_of_day(), 1439);
        assert_eq!(Timestamp(-60_001).minute_of_day(), 1438);
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(Timestamp(1_000));
        assert_eq!(clock.now(), Timestamp(1_000));
        clock.advance_millis(500);
        assert_eq!(clock.now(), Timestamp(1_500));
        clock.advance_millis(-2_000);
        assert_eq!(clock.now(), Timestamp(-500));
        clock.set(Timestamp(42));
        assert_eq!(clock.now(), Timestamp(42));
        let shared: std::sync::Arc<dyn Clock> = std::sync::Arc::new(clock);
        assert_eq!(shared.now().as_millis(), 42);
    }

    #[test]
    fn system_clock_is_after_this_code_was_written() {
        assert!(SystemClock.now() > ts("2025-01-01T00:00:00Z"));
    }
}

//! Fuzzing on stable: property tests that feed the money, date and
//! timestamp parsers and the YAML loader random and mutated text.
//!
//! `cargo-fuzz` needs nightly, which CI does not have. The normal test run
//! does a bounded number of cases per property (see [`config`]);
//! `scripts/fuzz.sh` runs the same properties in release mode for as long as
//! it is given, with `PROPTEST_CASES` raised and a fresh `PROPTEST_RNG_SEED`
//! each round.
//!
//! The scalar parsers are checked against oracles written apart from them:
//! exact values for what they accept, the documented refusal otherwise. The
//! loader is checked for what an account manager relies on: it never
//! panics, and every problem it reports points into a file it was given.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use config::{Date, Micros, MoneyError, Problem, TimeError, Timestamp};
use proptest::prelude::*;
use proptest::sample::Index;

#[path = "../../scripts/fuzz_support.rs"]
mod fuzz_support;
use fuzz_support::{config, remember, ByteEdit};

// ===========================================================================
// Money: Micros::parse_decimal

/// `-?digits(.digits{1,6})?`, read apart from the parser: the exact value
/// as i128, or why it is refused.
fn expected_decimal(s: &str) -> Result<i128, &'static str> {
    if s.is_empty() {
        return Err("empty");
    }
    let body = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || frac.is_some_and(|f| !digits(f)) {
        return Err("not decimal");
    }
    let frac = frac.unwrap_or("");
    if frac.len() > 6 {
        return Err("too many decimals");
    }
    let int = int.trim_start_matches('0');
    if int.len() > 20 {
        return Err("too large");
    }
    let units: i128 = if int.is_empty() {
        0
    } else {
        int.parse().unwrap()
    };
    let micros: i128 = format!("{frac:0<6}").parse().unwrap();
    let value = units * 1_000_000 + micros;
    let value = if s.starts_with('-') { -value } else { value };
    if i64::try_from(value).is_err() {
        return Err("too large");
    }
    Ok(value)
}

fn check_decimal(s: &str) -> Result<(), TestCaseError> {
    let got = Micros::parse_decimal(s);
    match (expected_decimal(s), &got) {
        (Ok(want), Ok(m)) => {
            prop_assert_eq!(i128::from(m.as_i64()), want, "{:?}", s);
            // Display writes what parse_decimal reads back to the same amount.
            let shown = m.to_string();
            prop_assert_eq!(
                Micros::parse_decimal(&shown),
                Ok(*m),
                "{:?} shown as {}",
                s,
                shown
            );
        }
        (Err("empty"), Err(MoneyError::Empty))
        | (Err("not decimal"), Err(MoneyError::NotDecimal(_)))
        | (Err("too many decimals"), Err(MoneyError::TooManyDecimals(_)))
        | (Err("too large"), Err(MoneyError::TooLarge(_))) => {}
        (want, _) => {
            return Err(TestCaseError::fail(format!(
                "{s:?}: expected {want:?}, got {got:?}"
            )))
        }
    }
    Ok(())
}

/// Well-formed decimals of any size, signed or not, 0 to 6 decimals.
fn decimal() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        prop_oneof![
            "[0-9]{1,3}",
            "[0-9]{1,13}",
            "[0-9]{1,22}",
            "0{0,30}[0-9]{1,19}"
        ],
        prop::option::of("[0-9]{1,6}"),
    )
        .prop_map(|(negative, int, frac)| {
            let sign = if negative { "-" } else { "" };
            match frac {
                Some(f) => format!("{sign}{int}.{f}"),
                None => format!("{sign}{int}"),
            }
        })
}

/// A string with a few characters replaced, inserted or deleted, from an
/// alphabet of characters that matter to the parsers under test.
fn edited(
    base: impl Strategy<Value = String>,
    alphabet: &'static str,
) -> impl Strategy<Value = String> {
    let chars: Vec<char> = alphabet.chars().collect();
    (
        base,
        prop::collection::vec((0u8..3, any::<Index>(), prop::sample::select(chars)), 1..4),
    )
        .prop_map(|(s, edits)| {
            let mut chars: Vec<char> = s.chars().collect();
            for (op, at, c) in edits {
                let i = at.index(chars.len() + 1);
                match op {
                    0 if i < chars.len() => chars[i] = c,
                    1 => chars.insert(i, c),
                    _ if i < chars.len() => {
                        chars.remove(i);
                    }
                    _ => {}
                }
            }
            chars.into_iter().collect()
        })
}

mod money_properties {
    use super::*;

    proptest! {
        #![proptest_config(config(256))]

        #[test]
        fn decimals_read_exactly_and_round_trip(s in decimal()) {
            check_decimal(&s)?;
        }

        /// Everything else: random text, and decimals with a sign, exponent,
        /// separator, space or dot put in, or a digit taken out.
        #[test]
        fn other_amounts_are_refused_with_the_right_reason(
            s in prop_oneof![
                "\\PC{0,24}",
                "[-+0-9., _eE]{0,24}",
                edited(decimal(), "0123456789-+.,_ eE\u{0}\u{660}\u{FF11}"),
                (0usize..4096).prop_map(|n| format!("1.{}", "0".repeat(n))),
                (0usize..4096).prop_map(|n| "9".repeat(n)),
            ],
        ) {
            check_decimal(&s)?;
        }
    }
}

// ===========================================================================
// Dates and timestamps

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn month_days(y: i64, m: u32) -> u32 {
    [
        31,
        if is_leap(y) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ][m as usize - 1]
}

/// Days from 1970-01-01 to `y-m-d` (years 0 to 9999), counted the long way:
/// a different method from the library's.
fn days(y: i64, m: u32, d: u32) -> i64 {
    // Leap years in 0..y: year 0 is one.
    let leaps_before = |y: i64| {
        if y == 0 {
            0
        } else {
            (y - 1) / 4 - (y - 1) / 100 + (y - 1) / 400 + 1
        }
    };
    let from_year_0 = |y: i64| 365 * y + leaps_before(y);
    let in_year: i64 =
        (1..m).map(|mm| i64::from(month_days(y, mm))).sum::<i64>() + i64::from(d) - 1;
    from_year_0(y) + in_year - from_year_0(1970)
}

/// The instants that `Timestamp`'s Display writes as RFC 3339: years
/// 0000 to 9999 in UTC. Outside them it writes `-001-…` or `10000-…`,
/// which `parse_rfc3339` (four-digit years) does not read back.
fn displayable(t: Timestamp) -> bool {
    let first = days(0, 1, 1) * 86_400_000;
    let end = (days(9999, 12, 31) + 1) * 86_400_000;
    (first..end).contains(&t.as_millis())
}

#[derive(Clone, Debug)]
struct Rfc3339 {
    y: i64,
    m: u32,
    d: u32,
    h: u32,
    mi: u32,
    s: u32,
    frac: Option<String>,
    lower_t: bool,
    /// `None` for Z; minutes east of UTC otherwise, with the text's sign.
    offset: Option<(bool, u32, u32)>,
    lower_z: bool,
}

fn rfc3339() -> impl Strategy<Value = Rfc3339> {
    (
        (
            prop_oneof![0i64..=9999, 1960i64..2100],
            1u32..=12,
            any::<Index>(),
        ),
        (0u32..24, 0u32..60, 0u32..60),
        prop::option::of("[0-9]{1,12}"),
        any::<bool>(),
        prop::option::of((any::<bool>(), 0u32..24, 0u32..60)),
        any::<bool>(),
    )
        .prop_map(
            |((y, m, d), (h, mi, s), frac, lower_t, offset, lower_z)| Rfc3339 {
                y,
                m,
                d: d.index(month_days(y, m) as usize) as u32 + 1,
                h,
                mi,
                s,
                frac,
                lower_t,
                offset,
                lower_z,
            },
        )
}

impl Rfc3339 {
    fn text(&self) -> String {
        let t = if self.lower_t { 't' } else { 'T' };
        let frac = self
            .frac
            .as_ref()
            .map_or(String::new(), |f| format!(".{f}"));
        let zone = match self.offset {
            None if self.lower_z => "z".to_owned(),
            None => "Z".to_owned(),
            Some((east, h, m)) => format!("{}{h:02}:{m:02}", if east { '+' } else { '-' }),
        };
        format!(
            "{:04}-{:02}-{:02}{t}{:02}:{:02}:{:02}{frac}{zone}",
            self.y, self.m, self.d, self.h, self.mi, self.s
        )
    }

    fn millis(&self) -> i64 {
        let millis: i64 = self.frac.as_ref().map_or(0, |f| {
            format!("{:0<3}", &f[..f.len().min(3)]).parse().unwrap()
        });
        let offset = self.offset.map_or(0, |(east, h, m)| {
            let minutes = i64::from(h * 60 + m);
            if east {
                minutes
            } else {
                -minutes
            }
        });
        days(self.y, self.m, self.d) * 86_400_000
            + i64::from(self.h * 3600 + self.mi * 60 + self.s) * 1000
            + millis
            - offset * 60_000
    }
}

/// Puts one field of a valid timestamp out of range, still in two digits:
/// the day or the month (true: no such date), or the hour, the second or
/// the offset's hours (false: out of range).
fn break_one_field(ts: &mut Rfc3339, which: u8, bad: u32) -> bool {
    match which % 5 {
        0 => {
            let last = month_days(ts.y, ts.m);
            ts.d = last + 1 + bad % (99 - last);
            true
        }
        1 => {
            ts.m = 13 + bad % 87;
            true
        }
        2 => {
            ts.h = 24 + bad % 76;
            false
        }
        3 => {
            ts.s = 60 + bad % 40;
            false
        }
        _ => {
            ts.offset = Some((true, 24 + bad % 76, 0));
            false
        }
    }
}

/// What is checked of any text either parser accepted: a date's Display is
/// the text itself (the format is strict), and a timestamp's Display reads
/// back to the same instant.
fn check_accepted(s: &str) -> Result<(), TestCaseError> {
    if let Ok(d) = Date::parse(s) {
        prop_assert_eq!(d.to_string(), s);
        prop_assert_eq!(Date::from_ymd(d.year(), d.month(), d.day()), Some(d));
    }
    if let Ok(t) = Timestamp::parse_rfc3339(s) {
        prop_assert!(s.is_ascii() && s.len() >= 20, "{:?}", s);
        if displayable(t) {
            let shown = t.to_string();
            prop_assert_eq!(
                Timestamp::parse_rfc3339(&shown),
                Ok(t),
                "{:?} shown as {}",
                s,
                shown
            );
        }
    }
    Ok(())
}

mod time_properties {
    use super::*;

    proptest! {
        #![proptest_config(config(256))]

        #[test]
        fn valid_timestamps_read_exactly_and_round_trip(ts in rfc3339()) {
            let text = ts.text();
            let t = Timestamp::parse_rfc3339(&text);
            prop_assert_eq!(t.clone().map(|t| t.as_millis()), Ok(ts.millis()), "{}", text);
            check_accepted(&text)?;
            // The date part alone is a Date that writes itself back.
            let date = &text[..10];
            prop_assert_eq!(Date::parse(date).map(|d| d.to_string()), Ok(date.to_owned()));
        }

        /// Impossible dates and times, in range by format but not by calendar
        /// or clock, are refused with the reason that says so.
        #[test]
        fn impossible_dates_and_times_are_refused(
            ts in rfc3339(),
            which in 0u8..5,
            bad in 0u32..100,
        ) {
            let mut ts = ts;
            let date_broken = break_one_field(&mut ts, which, bad);
            let text = ts.text();
            let got = Timestamp::parse_rfc3339(&text);
            if date_broken {
                prop_assert_eq!(got, Err(TimeError::NoSuchDate(text.clone())));
                prop_assert!(matches!(Date::parse(&text[..10]), Err(TimeError::NoSuchDate(_))));
            } else {
                prop_assert_eq!(got, Err(TimeError::TimeOutOfRange(text.clone())));
            }
        }

        /// Random text and edited valid timestamps: never a panic, and whatever
        /// is accepted behaves as above.
        #[test]
        fn other_text_never_panics_and_what_is_accepted_round_trips(
            s in prop_oneof![
                "\\PC{0,40}",
                "[0-9tTzZ:.+-]{0,32}",
                "[0-9]{4}-[0-9]{2}-[0-9]{2}",
                edited(rfc3339().prop_map(|t| t.text()), "0123456789-:.+TtZz \u{0}\u{660}é"),
                edited(rfc3339().prop_map(|t| t.text()[..10].to_owned()), "0123456789-+ é"),
            ],
        ) {
            check_accepted(&s)?;
        }
    }
}

// ===========================================================================
// YAML loader

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/config");

static EXAMPLE_FILES: LazyLock<Vec<(PathBuf, String)>> = LazyLock::new(|| {
    let mut files: Vec<(PathBuf, String)> = fs::read_dir(EXAMPLES)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| {
            let text = fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "examples/config holds the example configs"
    );
    files
});

/// Values put in place of another: wrong types, edge numbers and dates,
/// YAML tags, anchors and aliases, flow collections, deep nesting.
fn yaml_value() -> impl Strategy<Value = String> {
    let fixed = prop::sample::select(vec![
        "",
        "~",
        "null",
        "''",
        "\"\"",
        "-1",
        "0",
        "-0",
        "1e3",
        "0x10",
        "0o17",
        ".inf",
        "-.inf",
        ".nan",
        "99999999999999999999",
        "9223372036854775808",
        "-9223372036854775809",
        "60000.001",
        "1.2345678",
        "-5.00",
        "0.000001",
        "1,000.00",
        "yes",
        "no",
        "on",
        "true",
        "false",
        "2026-02-30",
        "2026-13-01",
        "0000-01-01",
        "9999-12-31",
        "2026-11-01T00:00:00Z",
        "[]",
        "{}",
        "[a, b]",
        "{a: b}",
        "[[[[[]]]]]",
        "'it''s'",
        "\"tab\\there\"",
        "\"\\u0000\"",
        "*nowhere",
        "&a x",
        "!!str 5",
        "!!int x",
        "!!binary aGVsbG8=",
        "!custom x",
        "|\n  block\n",
        ">-\n  folded\n",
        "? complex\n: key",
        "- item",
        "300x250",
        "0x0",
        "x250",
        "display",
        "video",
        "audio",
        "managed",
        "self_service",
        "phone",
        "ctv",
        "USA",
        "ZZZ",
        "mon",
        "12:00-13:00",
        "https://",
        "IAB17-18",
        "\u{feff}",
        "é",
        "\u{1F600}",
    ])
    .prop_map(str::to_owned);
    prop_oneof![
        6 => fixed,
        2 => "[a-zA-Z0-9 .:_-]{0,20}",
        1 => "\\PC{0,20}",
        1 => (1usize..5_000, prop::sample::select(vec!["[", "{a: ", "- "]))
            .prop_map(|(n, open)| {
                let close = match open { "[" => "]", "{a: " => "}", _ => "" };
                format!("{}x{}", open.repeat(n), close.repeat(n))
            }),
        1 => (0usize..5_000).prop_map(|n| format!("[{}]", vec!["1"; n].join(", "))),
        1 => (0usize..20_000).prop_map(|n| "x".repeat(n)),
    ]
}

#[derive(Clone, Debug)]
enum YamlEdit {
    /// Replace the value of the `n`th `key: value` line.
    Value(Index, String),
    DeleteLine(Index),
    DuplicateLine(Index, Index),
    SwapLines(Index, Index),
    /// Indent or outdent a line.
    Indent(Index, i8),
    InsertLine(Index, String),
    Bytes(ByteEdit),
    /// Put an anchor on a collection and many aliases to it (the "billion
    /// laughs" shape).
    AliasBomb(Index, usize),
}

fn yaml_edit() -> impl Strategy<Value = YamlEdit> {
    prop_oneof![
        6 => (any::<Index>(), yaml_value()).prop_map(|(at, v)| YamlEdit::Value(at, v)),
        2 => any::<Index>().prop_map(YamlEdit::DeleteLine),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| YamlEdit::DuplicateLine(a, b)),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| YamlEdit::SwapLines(a, b)),
        2 => (any::<Index>(), -4i8..=4).prop_map(|(at, n)| YamlEdit::Indent(at, n)),
        2 => (
            any::<Index>(),
            ("[ ]{0,8}", "[a-z_]{1,14}", yaml_value()).prop_map(|(i, k, v)| format!("{i}{k}: {v}")),
        )
            .prop_map(|(at, line)| YamlEdit::InsertLine(at, line)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(at, b)| YamlEdit::Bytes(ByteEdit::SetByte(at, b))),
        2 => (
            any::<Index>(),
            prop_oneof![
                "\\PC{1,6}",
                prop::sample::select(vec![
                    ":", "- ", "\t", "\n", "  ", "#", "&a ", "*a", "!", "|", ">", "'", "\"",
                    "{", "}", "[", "]", ",", "? ", "---\n", "...\n", "%YAML 1.2\n", "\r", "\u{0}",
                ])
                .prop_map(str::to_owned),
            ],
        )
            .prop_map(|(at, s)| YamlEdit::Bytes(ByteEdit::Insert(at, s.into_bytes()))),
        1 => (any::<Index>(), 1usize..80).prop_map(|(at, n)| YamlEdit::Bytes(ByteEdit::Delete(at, n))),
        1 => any::<Index>().prop_map(|at| YamlEdit::Bytes(ByteEdit::Truncate(at))),
        1 => (any::<Index>(), 2usize..12).prop_map(|(at, n)| YamlEdit::AliasBomb(at, n)),
    ]
}

fn apply_yaml(text: &str, edit: &YamlEdit) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let line = |at: &Index, lines: &[String]| at.index(lines.len().max(1));
    match edit {
        YamlEdit::Value(at, value) => {
            let keyed: Vec<usize> = (0..lines.len())
                .filter(|&i| lines[i].contains(": ") || lines[i].trim_end().ends_with(':'))
                .collect();
            if !keyed.is_empty() {
                let i = keyed[at.index(keyed.len())];
                let colon = lines[i].find(':').unwrap_or(0);
                lines[i] = format!("{}: {value}", &lines[i][..colon]);
            }
        }
        YamlEdit::DeleteLine(at) if !lines.is_empty() => {
            let i = line(at, &lines);
            lines.remove(i);
        }
        YamlEdit::DuplicateLine(from, to) if !lines.is_empty() => {
            let copy = lines[line(from, &lines)].clone();
            let i = to.index(lines.len() + 1);
            lines.insert(i, copy);
        }
        YamlEdit::SwapLines(a, b) if !lines.is_empty() => {
            let (a, b) = (line(a, &lines), line(b, &lines));
            lines.swap(a, b);
        }
        YamlEdit::Indent(at, n) if !lines.is_empty() => {
            let i = line(at, &lines);
            if *n >= 0 {
                lines[i].insert_str(0, &" ".repeat(*n as usize));
            } else {
                let strip = lines[i]
                    .chars()
                    .take(n.unsigned_abs().into())
                    .take_while(|&c| c == ' ')
                    .count();
                lines[i].drain(..strip);
            }
        }
        YamlEdit::InsertLine(at, new) => {
            let i = at.index(lines.len() + 1);
            lines.insert(i, new.clone());
        }
        YamlEdit::AliasBomb(at, n) => {
            let i = at.index(lines.len() + 1);
            let mut bomb = vec!["x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]".to_owned()];
            for k in 1..*n {
                let refs = vec![format!("*a{}", k - 1); 9].join(", ");
                bomb.push(format!("x{k}: &a{k} [{refs}]"));
            }
            for (j, l) in bomb.into_iter().enumerate() {
                lines.insert(i + j, l);
            }
        }
        _ => {
            // Byte-level edits work on the whole text.
            let mut bytes = text.as_bytes().to_vec();
            if let YamlEdit::Bytes(e) = edit {
                e.apply(&mut bytes);
            }
            // load_dir refuses non-UTF-8 files before parsing; load_files
            // takes Strings, so a broken byte becomes U+FFFD.
            return String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// A guard against blow-ups (an alias bomb expanded is 9^12 nodes; deep
/// nesting recursed overflows the stack), not a measure of speed: the
/// examples load in about a millisecond, and the largest case here (2 MB
/// of indentation) in well under a second of a debug build. It was 2 s,
/// with a 12 MB case that took 2.1-3.1 s of a debug build on a 2-core
/// machine: the test failed on the machine, not the code.
const LOAD_BOUND: Duration = Duration::from_secs(10);

/// Loads `files`; checks that it does not panic, takes bounded time, and
/// that each problem names one of the files, at a line and column
/// (1-based) within it.
fn check_load(files: &[(PathBuf, String)]) -> Result<(), TestCaseError> {
    let start = Instant::now();
    let result = config::load_files(files);
    let took = start.elapsed();
    prop_assert!(took < LOAD_BOUND, "loading took {:?}", took);
    let Err(problems) = result else {
        return Ok(());
    };
    prop_assert!(!problems.is_empty());
    for p in &problems {
        check_problem(p, files)?;
    }
    Ok(())
}

fn check_problem(p: &Problem, files: &[(PathBuf, String)]) -> Result<(), TestCaseError> {
    let Some((_, text)) = files.iter().find(|(path, _)| *path == p.file) else {
        return Err(TestCaseError::fail(format!(
            "problem in a file not given: {p}"
        )));
    };
    prop_assert!(p.line >= 1 && p.column >= 1, "no position: {:?}", p);
    prop_assert!(!p.message.trim().is_empty(), "no message: {:?}", p);
    // One line past the last is where an unexpected end is reported.
    let lines = text.split('\n').count() as u64;
    prop_assert!(
        p.line <= lines + 1,
        "line {} of a {}-line file: {}",
        p.line,
        lines,
        p
    );
    Ok(())
}

fn path(name: &str) -> PathBuf {
    Path::new("fuzz").join(name)
}

mod yaml_properties {
    use super::*;

    proptest! {
        #![proptest_config(config(64))]

        /// The example configs with one to four edits, loaded alone or next to
        /// the untouched other example (cross-file checks: duplicate ids).
        #[test]
        fn edited_examples_load_or_report_positions(
            which in any::<Index>(),
            edits in prop::collection::vec(yaml_edit(), 1..5),
            with_other in any::<bool>(),
        ) {
            let examples = &*EXAMPLE_FILES;
            let i = which.index(examples.len());
            let mut text = examples[i].1.clone();
            for e in &edits {
                text = apply_yaml(&text, e);
            }
            remember("edited_examples", &text);
            let mut files = vec![(path("edited.yaml"), text)];
            if with_other {
                let other = &examples[(i + 1) % examples.len()];
                files.push((path("other.yaml"), other.1.clone()));
            }
            check_load(&files)?;
        }

        /// Text with no config shape: random printable text and YAML syntax
        /// soup, one or two files.
        #[test]
        fn random_text_loads_or_reports_positions(
            texts in prop::collection::vec(
                prop_oneof![
                    "\\PC{0,200}",
                    "[a-z_ :\\-\\[\\]{},#&*!|>'\"?%@`\n\t.0-9]{0,300}",
                    prop::collection::vec(
                        prop::sample::select(vec![
                            "advertiser:", "audiences:", "creatives:", "orders:", "line_items:",
                            "id: x", "name: y", "- ", "  ", "\n", ": ", "[", "]", "{", "}", ",",
                            "&a ", "*a", "!!map ", "---\n", "budget: 1.00", "cpm: 1", "kind: views",
                            "format: display", "flight: {start: 2026-01-01, end: 2026-01-02}",
                        ]),
                        0..60,
                    )
                    .prop_map(|tokens| tokens.concat()),
                ],
                1..3,
            ),
        ) {
            let files: Vec<(PathBuf, String)> = texts
                .into_iter()
                .enumerate()
                .map(|(i, t)| (path(&format!("random-{i}.yaml")), t))
                .collect();
            remember("random_text", &files[0].1);
            check_load(&files)?;
        }
    }
}

/// Shapes the properties reach only by chance, each loaded once.
#[test]
fn deep_nesting_and_alias_bombs_are_refused_in_bounded_time() {
    let deep =
        |open: &str, close: &str, n: usize| format!("{}x{}", open.repeat(n), close.repeat(n));
    let mut texts = Vec::new();
    for n in [1_000, 100_000] {
        texts.push(deep("[", "]", n));
        texts.push(deep("{a: ", "}", n));
        texts.push(format!("advertiser: {}", deep("[", "]", n)));
        texts.push(format!(
            "advertiser: {{id: a, name: b, domains: {}}}",
            deep("[", "]", n)
        ));
        texts.push(format!("unknown: {}", deep("{a: ", "}", n)));
        texts.push(
            (0..n.min(2_000))
                .map(|i| format!("{}- x\n", " ".repeat(i)))
                .collect(),
        );
        texts.push(
            (0..n.min(2_000))
                .map(|i| format!("{}a:\n", " ".repeat(i)))
                .collect(),
        );
    }
    let mut bomb = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for k in 1..12 {
        let refs = vec![format!("*a{}", k - 1); 9].join(", ");
        bomb.push_str(&format!("a{k}: &a{k} [{refs}]\n"));
    }
    // As the file's own top level, and as list items where audiences go.
    texts.push(bomb.clone());
    let items: String = bomb
        .lines()
        .map(|l| format!("  - {}\n", l.split_once(": ").unwrap().1))
        .collect();
    texts.push(format!("audiences:\n{items}"));
    for text in texts {
        let files = [(path("fixed.yaml"), text)];
        check_load(&files).unwrap_or_else(|e| panic!("{e}"));
    }
}

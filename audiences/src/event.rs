//! Shopper events as an advertiser's pixel or a DMP reports them, one JSON
//! object per line (`../examples/data/README.md` gives the format).

use std::borrow::Cow;

use config::{Micros, Timestamp};
use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A product detail page was viewed.
    View,
    /// The product was bought: it ends a `views` membership for that product.
    Purchase,
    /// The shopper's activity shows interest in a topic.
    Interest,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub user: String,
    pub kind: EventKind,
    /// The product id for views and purchases, the topic for interests.
    pub item: String,
    pub at: Timestamp,
    /// What a purchase was worth, when the advertiser says.
    pub sale: Option<Sale>,
    /// The advertiser whose own site recorded it (its pixel): it counts
    /// for that advertiser's audiences only. None: the shop's data
    /// (uploads, `--data`), which counts for every advertiser listing the
    /// product.
    pub advertiser: Option<String>,
}

/// A purchase's value and its order, for attribution and reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sale {
    /// In micros of `currency`; `None` when only the order is known.
    pub amount: Option<Micros>,
    /// Upper-case ISO 4217.
    pub currency: Option<String>,
    /// The advertiser's order id: a repeated order counts once.
    pub order_id: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{source_name}:{line}: {reason}")]
pub struct DataError {
    pub source_name: String,
    pub line: usize,
    pub reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line<'a> {
    #[serde(borrow)]
    user: Cow<'a, str>,
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(default, borrow)]
    product: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    interest: Option<Cow<'a, str>>,
    #[serde(borrow)]
    at: Cow<'a, str>,
    /// A number or a decimal string: read as exact text.
    #[serde(default, borrow)]
    amount: Option<&'a RawValue>,
    #[serde(default, borrow)]
    currency: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    order_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    advertiser: Option<Cow<'a, str>>,
}

/// One event as parsed, borrowing from the input where JSON escapes allow.
pub(crate) struct Parsed<'a> {
    pub user: Cow<'a, str>,
    pub kind: EventKind,
    pub item: Cow<'a, str>,
    pub at: Timestamp,
    pub sale: Option<Sale>,
    pub advertiser: Option<Cow<'a, str>>,
}

/// The name the store keeps `item` under: the advertiser's own
/// (`config::advertiser_item`) when its site recorded the event.
pub(crate) fn stored_item<'a>(advertiser: Option<&str>, item: &'a str) -> Cow<'a, str> {
    match advertiser {
        Some(a) => Cow::Owned(config::advertiser_item(a, item)),
        None => Cow::Borrowed(item),
    }
}

/// Longest user id kept: what the bid path reads (`user.buyeruid` and the
/// rest past it are treated as absent), so a longer one could never match.
pub const MAX_USER_BYTES: usize = 128;
/// Longest product, interest or advertiser id kept.
pub(crate) const MAX_ITEM_BYTES: usize = config::model::MAX_ITEM_BYTES;

/// The longest line taken, white space included: what the state
/// directory's copy of uploads reads back (`bidder::audience_log`). A
/// longer one was applied, then skipped as damaged at the next start
/// (audiences probe); a valid event is a few hundred bytes.
pub const MAX_LINE_BYTES: usize = (64 << 10) - 1;

/// The non-blank lines of `text`, trimmed, with their 1-based line numbers.
/// A line longer than [`MAX_LINE_BYTES`] comes whole, untrimmed, for its
/// reader to refuse ([`too_long`]).
pub(crate) fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    // A byte order mark before the first line, as Windows tools export
    // UTF-8: not part of it (the first line was refused at column 1:
    // audiences probe).
    text.strip_prefix('\u{feff}')
        .unwrap_or(text)
        .lines()
        .enumerate()
        .map(|(i, raw)| match raw.len() > MAX_LINE_BYTES {
            true => (i + 1, raw),
            false => (i + 1, raw.trim()),
        })
        .filter(|(_, l)| !l.is_empty())
}

/// A line's readers refuse it first when it is longer than
/// [`MAX_LINE_BYTES`].
pub(crate) fn too_long(line: &str) -> Result<(), String> {
    match line.len() > MAX_LINE_BYTES {
        true => Err(format!("the line is longer than {MAX_LINE_BYTES} bytes")),
        false => Ok(()),
    }
}

/// A JSON error of one line, placed by its column: the parser's own "at
/// line 1" would contradict the line of the file the answer names.
pub(crate) fn json_reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let reason = text
        .rsplit_once(" at line ")
        .map_or(text.as_str(), |(r, _)| r);
    format!("{reason} (column {})", e.column())
}

/// Why a line was refused: the reason, and whether the event is well formed
/// but could never match (an id longer than any request or config
/// carries). Those limits came after versions that took such lines: a
/// source read whole at start (`--data`) skips them rather than stop the
/// start (ops probe: one such line left every replica crash-looping).
#[derive(Debug)]
pub(crate) struct Refused {
    pub reason: String,
    pub unmatchable: bool,
}

impl From<String> for Refused {
    fn from(reason: String) -> Refused {
        Refused {
            reason,
            unmatchable: false,
        }
    }
}

impl From<&str> for Refused {
    fn from(reason: &str) -> Refused {
        reason.to_string().into()
    }
}

fn unmatchable(reason: String) -> Refused {
    Refused {
        reason,
        unmatchable: true,
    }
}

/// Parses one trimmed, non-blank line.
pub(crate) fn parse_line(trimmed: &str) -> Result<Parsed<'_>, Refused> {
    too_long(trimmed)?;
    parse_line_of_any_length(trimmed)
}

/// [`parse_line`] without its bound on the line's length, which is the
/// state directory's (a source read whole, `--data`, has none).
pub(crate) fn parse_line_of_any_length(trimmed: &str) -> Result<Parsed<'_>, Refused> {
    let line: Line<'_> = serde_json::from_str(trimmed)
        .map_err(|e| format!("not a valid event: {}", json_reason(&e)))?;
    if line.user.is_empty() {
        return Err("\"user\" is empty".into());
    }
    let at = Timestamp::parse_rfc3339(&line.at)
        .map_err(|e| format!("\"at\" is not an RFC 3339 time: {e}"))?;
    let (kind, item) = match (&*line.event, line.product.clone(), line.interest.clone()) {
        ("view", Some(p), None) => (EventKind::View, p),
        ("purchase", Some(p), None) => (EventKind::Purchase, p),
        ("interest", None, Some(t)) => (
            EventKind::Interest,
            match config::interest_topic(&t) {
                Cow::Borrowed(b) if b.len() == t.len() => t,
                other => Cow::Owned(other.into_owned()),
            },
        ),
        ("view" | "purchase", _, _) => {
            return Err(format!(
                "a \"{}\" event needs \"product\" (and no \"interest\")",
                line.event
            )
            .into())
        }
        ("interest", _, _) => {
            return Err("an \"interest\" event needs \"interest\" (and no \"product\")".into())
        }
        (other, _, _) => {
            return Err(
                format!("unknown event \"{other}\"; expected view, purchase or interest").into(),
            )
        }
    };
    if item.is_empty() {
        return Err("the product or interest is empty".into());
    }
    if line.user.len() > MAX_USER_BYTES {
        return Err(unmatchable(format!(
            "\"user\" is longer than {MAX_USER_BYTES} bytes: bid requests never carry such an id"
        )));
    }
    // A control character never names a product, and one of them (0x1f)
    // sets an advertiser's own events apart (`config::advertiser_item`).
    for (what, text) in [("the product or interest", &item)]
        .into_iter()
        .chain(line.advertiser.as_ref().map(|a| ("\"advertiser\"", a)))
    {
        if text.len() > MAX_ITEM_BYTES {
            return Err(unmatchable(format!(
                "{what} is longer than {MAX_ITEM_BYTES} bytes"
            )));
        }
        if text.bytes().any(|b| b < 0x20) {
            return Err(unmatchable(format!("{what} has a control character")));
        }
    }
    if line.advertiser.as_ref().is_some_and(|a| a.is_empty()) {
        return Err("\"advertiser\" is empty".into());
    }
    // Interests audiences read the shop's data only: an advertiser's own
    // interest event could never match.
    if kind == EventKind::Interest && line.advertiser.is_some() {
        return Err("\"advertiser\" goes with views and purchases only".into());
    }
    let sale = sale(&line, kind)?;
    Ok(Parsed {
        user: line.user,
        kind,
        item,
        at,
        sale,
        advertiser: line.advertiser,
    })
}

/// Longest order id kept: ids are the advertiser's, not a place to store
/// documents.
const MAX_ORDER_ID: usize = 128;

/// The sale fields of a line: only on purchases; an amount needs its
/// currency.
fn sale(line: &Line<'_>, kind: EventKind) -> Result<Option<Sale>, String> {
    if line.amount.is_none() && line.currency.is_none() && line.order_id.is_none() {
        return Ok(None);
    }
    if kind != EventKind::Purchase {
        return Err("only a \"purchase\" has \"amount\", \"currency\" or \"order_id\"".into());
    }
    let amount = match line.amount {
        None => None,
        Some(raw) => {
            let text = raw.get().trim_matches('"');
            match Micros::parse_decimal(text) {
                Ok(m) if m >= Micros::ZERO => Some(m),
                Ok(_) => return Err("\"amount\" cannot be negative".into()),
                Err(e) => return Err(format!("\"amount\" {e}")),
            }
        }
    };
    let currency = match &line.currency {
        None if amount.is_some() => {
            return Err("an \"amount\" needs its \"currency\", like \"USD\"".into())
        }
        None => None,
        Some(c) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_alphabetic()) => {
            Some(c.to_ascii_uppercase())
        }
        Some(c) => {
            return Err(format!(
                "\"currency\" {c:?} is not an ISO 4217 code like USD"
            ))
        }
    };
    let order_id = match &line.order_id {
        Some(o) if o.is_empty() => return Err("\"order_id\" is empty".into()),
        Some(o) if o.len() > MAX_ORDER_ID => {
            return Err(format!("\"order_id\" is longer than {MAX_ORDER_ID} bytes"))
        }
        o => o.as_deref().map(str::to_owned),
    };
    Ok(Some(Sale {
        amount,
        currency,
        order_id,
    }))
}

/// Parses JSON lines. Blank lines are skipped. The whole text is refused on
/// the first bad line, so a batch is never half-applied.
pub fn parse_jsonl(source_name: &str, text: &str) -> Result<Vec<Event>, DataError> {
    Ok(parse_jsonl_lines(source_name, text, false)?
        .into_iter()
        .map(|(_, e)| e)
        .collect())
}

/// [`parse_jsonl`], each event with its line. `whole`: read as a source
/// read whole at start (`--data`) is, as [`crate::Store::append_dir`]
/// reads it: lines of any length, and events that could never match
/// skipped, not refused.
pub fn parse_jsonl_lines(
    source_name: &str,
    text: &str,
    whole: bool,
) -> Result<Vec<(usize, Event)>, DataError> {
    let mut out = Vec::new();
    for_each_jsonl_line(source_name, text, whole, |line, event| {
        out.push((line, event));
        Ok(())
    })?;
    Ok(out)
}

/// [`parse_jsonl_lines`] an event at a time: `each` gets every event with
/// its line, in order, and the first error (the parser's or `each`'s)
/// ends the reading. None of the events is held past its call: an upload
/// of 64 MiB read as one vector of events held some hundred megabytes at
/// once, where the caller keeps only what it makes of them.
pub fn for_each_jsonl_line(
    source_name: &str,
    text: &str,
    whole: bool,
    mut each: impl FnMut(usize, Event) -> Result<(), DataError>,
) -> Result<(), DataError> {
    for (line, trimmed) in lines(text) {
        let parsed = match whole {
            true => parse_line_of_any_length(trimmed.trim()),
            false => parse_line(trimmed),
        };
        let p = match parsed {
            Ok(p) => p,
            Err(r) if whole && r.unmatchable => continue,
            Err(r) => {
                return Err(DataError {
                    source_name: source_name.to_string(),
                    line,
                    reason: r.reason,
                })
            }
        };
        each(
            line,
            Event {
                user: p.user.into_owned(),
                kind: p.kind,
                item: p.item.into_owned(),
                at: p.at,
                sale: p.sale,
                advertiser: p.advertiser.map(Cow::into_owned),
            },
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids a bid request never carries, and product ids with a control
    /// character (one of which sets an advertiser's own events apart), are
    /// refused with their line; an advertiser's own event says whose.
    #[test]
    fn refuses_what_could_never_match_and_reads_whose_event_it_is() {
        let line = |user: &str, product: &str, extra: &str| {
            format!(
                r#"{{"user":"{user}","event":"view","product":"{product}","at":"2026-11-21T10:00:00Z"{extra}}}"#
            )
        };
        let long_user = "u".repeat(MAX_USER_BYTES + 1);
        let long_product = "p".repeat(MAX_ITEM_BYTES + 1);
        for (text, why) in [
            (line(&long_user, "P1", ""), "longer than 128 bytes"),
            (line("u1", &long_product, ""), "longer than 256 bytes"),
            (line("u1", "P\\u001f1", ""), "control character"),
            (
                line("u1", "P1", r#","advertiser":"""#),
                "\"advertiser\" is empty",
            ),
            (
                line("u1", "P1", r#","advertiser":"a\u0001""#),
                "control character",
            ),
        ] {
            let e = parse_jsonl("t", &text).unwrap_err();
            assert!(e.reason.contains(why), "{text}: {}", e.reason);
        }
        // White space counts: the state directory keeps lines as sent.
        let padded = format!("{}{}", " ".repeat(MAX_LINE_BYTES), line("u1", "P1", ""));
        let e = parse_jsonl("t", &padded).unwrap_err();
        assert!(e.reason.contains("longer than 65535 bytes"), "{}", e.reason);
        let ok = line(&"u".repeat(MAX_USER_BYTES), "P1", r#","advertiser":"shop""#);

        let events = parse_jsonl("t", &ok).unwrap();
        assert_eq!(events[0].advertiser.as_deref(), Some("shop"));
        assert_eq!(
            parse_jsonl("t", &line("u1", "P1", "")).unwrap()[0].advertiser,
            None
        );
    }

    #[test]
    fn parses_the_three_kinds_and_skips_blank_lines() {
        let text = r#"{"user":"u1","event":"view","product":"P1","at":"2026-11-20T10:00:00Z"}

{"user":"u1","event":"purchase","product":"P1","at":"2026-11-21T10:00:00Z"}
{"user":"u2","event":"interest","interest":"hiking","at":"2026-11-10T00:00:00Z"}"#;
        let events = parse_jsonl("t.jsonl", text).unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].kind, EventKind::View);
        assert_eq!(events[1].kind, EventKind::Purchase);
        assert_eq!(events[2].kind, EventKind::Interest);
        assert_eq!(events[2].item, "hiking");
    }

    /// A UTF-8 byte order mark before the first line (Windows tools write
    /// one) is not part of it; one anywhere else is refused as before.
    #[test]
    fn a_byte_order_mark_before_the_first_line_is_passed_over() {
        let line = r#"{"user":"u1","event":"view","product":"P1","at":"2026-11-20T10:00:00Z"}"#;
        let events = parse_jsonl("t.jsonl", &format!("\u{feff}{line}\n{line}\n")).unwrap();
        assert_eq!(events.len(), 2);
        assert!(parse_jsonl("t.jsonl", &format!("{line}\n\u{feff}{line}\n")).is_err());
    }

    /// Topics compare as words: an upload's `Hiking ` is the `hiking` a
    /// line item targets (config writes its topics the same way). Product
    /// ids stay exact.
    #[test]
    fn interest_topics_are_trimmed_and_lower_case() {
        let text = r#"{"user":"u1","event":"interest","interest":"Hiking ","at":"2026-11-10T00:00:00Z"}
{"user":"u1","event":"interest","interest":"ÉTÉ","at":"2026-11-10T00:00:00Z"}
{"user":"u1","event":"view","product":"SKU-Ab","at":"2026-11-10T00:00:00Z"}"#;
        let events = parse_jsonl("t.jsonl", text).unwrap();
        let items: Vec<&str> = events.iter().map(|e| &*e.item).collect();
        assert_eq!(items, ["hiking", "été", "SKU-Ab"]);
    }

    #[test]
    fn purchases_carry_their_sale() {
        let text = r#"{"user":"u1","event":"purchase","product":"P1","at":"2026-11-21T10:00:00Z","amount":"24.99","currency":"usd","order_id":"A-1"}
{"user":"u1","event":"purchase","product":"P1","at":"2026-11-21T10:00:00Z","amount":1999.5,"currency":"JPY"}
{"user":"u1","event":"purchase","product":"P1","at":"2026-11-21T10:00:00Z"}"#;
        let events = parse_jsonl("t.jsonl", text).unwrap();
        assert_eq!(
            events[0].sale,
            Some(Sale {
                amount: Some(Micros(24_990_000)),
                currency: Some("USD".into()),
                order_id: Some("A-1".into()),
            })
        );
        assert_eq!(
            events[1].sale.as_ref().and_then(|s| s.amount),
            Some(Micros(1_999_500_000))
        );
        assert_eq!(events[2].sale, None);
        for (bad, want) in [
            (r#""amount":"1.5""#, "needs its \"currency\""),
            (r#""amount":"-1","currency":"USD""#, "negative"),
            (r#""amount":"1e3","currency":"USD""#, "amount"),
            (r#""amount":"1.5","currency":"US""#, "ISO 4217"),
            (r#""order_id":"""#, "empty"),
        ] {
            let line = format!(
                r#"{{"user":"u1","event":"purchase","product":"P1","at":"2026-11-21T10:00:00Z",{bad}}}"#
            );
            let err = parse_jsonl("x", &line).unwrap_err();
            assert!(err.reason.contains(want), "{bad}: {}", err.reason);
        }
        let view = r#"{"user":"u1","event":"view","product":"P1","at":"2026-11-21T10:00:00Z","order_id":"A-1"}"#;
        assert!(parse_jsonl("x", view)
            .unwrap_err()
            .reason
            .contains("only a \"purchase\""));
    }

    #[test]
    fn bad_lines_are_reported_by_number() {
        let cases = [
            (
                r#"{"user":"u1","event":"view","at":"2026-11-20T10:00:00Z"}"#,
                "needs \"product\"",
            ),
            (
                r#"{"user":"u1","event":"click","product":"P","at":"2026-11-20T10:00:00Z"}"#,
                "unknown event",
            ),
            (
                r#"{"user":"u1","event":"view","product":"P","at":"yesterday"}"#,
                "RFC 3339",
            ),
            (
                r#"{"user":"u1","event":"view","product":"P""#,
                "not a valid event",
            ),
            (
                r#"{"user":"","event":"view","product":"P","at":"2026-11-20T10:00:00Z"}"#,
                "empty",
            ),
        ];
        for (bad, want) in cases {
            let text = format!(
                "{}\n{bad}\n",
                r#"{"user":"u1","event":"view","product":"P1","at":"2026-11-20T10:00:00Z"}"#
            );
            let err = parse_jsonl("x.jsonl", &text).unwrap_err();
            assert_eq!(err.line, 2, "{bad}");
            assert!(err.reason.contains(want), "{bad}: {}", err.reason);
            assert!(err.to_string().starts_with("x.jsonl:2: "));
            // The line is the file's; the parser's "line 1" is not said.
            assert!(!err.reason.contains("line 1"), "{}", err.reason);
        }
        let unknown =
            r#"{"user":"u1","event":"view","product":"P","at":"2026-11-20T10:00:00Z","extra":1}"#;
        let err = parse_jsonl("x.jsonl", unknown).unwrap_err();
        assert!(
            err.reason.contains("unknown field `extra`") && err.reason.ends_with("(column 77)"),
            "{}",
            err.reason
        );
    }
}

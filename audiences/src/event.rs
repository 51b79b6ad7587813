//! Shopper events as an advertiser's pixel or a DMP reports them, one JSON
//! object per line (`../examples/data/README.md` gives the format).

use std::borrow::Cow;

use config::Timestamp;
use serde::Deserialize;

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
}

/// One event as parsed, borrowing from the input where JSON escapes allow.
pub(crate) struct Parsed<'a> {
    pub user: Cow<'a, str>,
    pub kind: EventKind,
    pub item: Cow<'a, str>,
    pub at: Timestamp,
}

/// The non-blank lines of `text`, trimmed, with their 1-based line numbers.
pub(crate) fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, raw)| (i + 1, raw.trim()))
        .filter(|(_, l)| !l.is_empty())
}

/// Parses one trimmed, non-blank line; the error is the reason only.
pub(crate) fn parse_line(trimmed: &str) -> Result<Parsed<'_>, String> {
    let line: Line<'_> =
        serde_json::from_str(trimmed).map_err(|e| format!("not a valid event: {e}"))?;
    if line.user.is_empty() {
        return Err("\"user\" is empty".into());
    }
    let at = Timestamp::parse_rfc3339(&line.at)
        .map_err(|e| format!("\"at\" is not an RFC 3339 time: {e}"))?;
    let (kind, item) = match (&*line.event, line.product, line.interest) {
        ("view", Some(p), None) => (EventKind::View, p),
        ("purchase", Some(p), None) => (EventKind::Purchase, p),
        ("interest", None, Some(t)) => (EventKind::Interest, t),
        ("view" | "purchase", _, _) => {
            return Err(format!(
                "a \"{}\" event needs \"product\" (and no \"interest\")",
                line.event
            ))
        }
        ("interest", _, _) => {
            return Err("an \"interest\" event needs \"interest\" (and no \"product\")".into())
        }
        (other, _, _) => {
            return Err(format!(
                "unknown event \"{other}\"; expected view, purchase or interest"
            ))
        }
    };
    if item.is_empty() {
        return Err("the product or interest is empty".into());
    }
    Ok(Parsed {
        user: line.user,
        kind,
        item,
        at,
    })
}

/// Parses JSON lines. Blank lines are skipped. The whole text is refused on
/// the first bad line, so a batch is never half-applied.
pub fn parse_jsonl(source_name: &str, text: &str) -> Result<Vec<Event>, DataError> {
    lines(text)
        .map(|(line, trimmed)| {
            let p = parse_line(trimmed).map_err(|reason| DataError {
                source_name: source_name.to_string(),
                line,
                reason,
            })?;
            Ok(Event {
                user: p.user.into_owned(),
                kind: p.kind,
                item: p.item.into_owned(),
                at: p.at,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        }
    }
}

//! Reports of the running bidder: `GET /v1/reports` and the `/ui` page.
//!
//! A report reads files (aggregates, and raw events of days not folded
//! yet), so it runs off the async threads, and at most two at a time: no
//! burst of report requests can take the CPU from bidding.

use std::sync::Arc;

use config::Date;
use reports::render::Format;
use reports::{Dim, Query};

use crate::app::App;

/// The longest range `/ui` shows by default: the last week.
const UI_DAYS: i64 = 7;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReportError {
    /// A bad parameter: 400 with this text.
    #[error("{0}")]
    Invalid(String),
    /// The bidder keeps no state directory (tests without a journal).
    #[error("no state directory: nothing is journaled, so there is nothing to report")]
    NoState,
    #[error("the report could not be read: {0}")]
    Failed(String),
}

/// A report's parameters as a query string gives them:
/// `from=YYYY-MM-DD&to=YYYY-MM-DD&by=day,line_item&format=json`. Each at
/// most once; unknown ones are refused rather than ignored (a typo would
/// otherwise give a different report than asked for). `from`/`to` default
/// to the last `default_days` days through `today`.
pub fn parse_params(
    query: &str,
    today: Date,
    default_days: i64,
    default_by: &[Dim],
    default_format: Format,
) -> Result<(Query, Format), ReportError> {
    let bad = |s: String| ReportError::Invalid(s);
    let (mut from, mut to, mut by, mut format) = (None, None, None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = crate::form::decode(v).ok_or_else(|| bad(format!("{k}: not UTF-8")))?;
        let slot = match k {
            "from" => &mut from,
            "to" => &mut to,
            "by" => &mut by,
            "format" => &mut format,
            _ => {
                return Err(bad(format!(
                    "unknown parameter {k:?} (from, to, by, format)"
                )))
            }
        };
        if slot.replace(v).is_some() {
            return Err(bad(format!("{k} is given twice")));
        }
    }
    let date = |name: &str, v: Option<String>, default: Date| match v {
        None => Ok(default),
        Some(v) => Date::parse(&v).map_err(|e| bad(format!("{name}: {e}"))),
    };
    let to = date("to", to, today)?;
    let from = date(
        "from",
        from,
        Date::from_days_since_epoch(to.days_since_epoch() - (default_days - 1)),
    )?;
    let by = match by {
        None => default_by.to_vec(),
        Some(b) => Dim::parse_list(&b).map_err(bad)?,
    };
    if by.is_empty() && !default_by.is_empty() {
        return Err(bad(format!(
            "by: give at least one dimension ({})",
            Dim::ALL.map(Dim::as_str).join(", ")
        )));
    }
    let format = match format {
        None => default_format,
        Some(f) => Format::parse(&f)
            .ok_or_else(|| bad(format!("format {f:?}: one of table, csv, json, html")))?,
    };
    let q = Query { from, to, by };
    q.check().map_err(|e| bad(e.to_string()))?;
    Ok((q, format))
}

impl App {
    /// A report of this bidder's state, rendered; events still in the
    /// writer's memory are written first so the report is current.
    pub async fn report(
        self: &Arc<App>,
        query: Query,
        format: Format,
    ) -> Result<String, ReportError> {
        let state = self.state_dir().ok_or(ReportError::NoState)?.to_path_buf();
        // The permit goes with the work: a client that hangs up does not
        // free a slot while its report still runs.
        let permit = self
            .report_gate
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| ReportError::Failed(e.to_string()))?;
        self.flush_events().await;
        let app = self.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let snap = app.snapshot();
            let src = reports::query::Sources {
                state: &state,
                config: snap.as_ref().map(|s| &s.config),
                now: app.now(),
                progress: false,
            };
            let report = reports::query::run(&query, &src)
                .map_err(|e| ReportError::Failed(e.to_string()))?;
            Ok(reports::render::render(&report, format))
        })
        .await
        .map_err(|e| ReportError::Failed(e.to_string()))?
    }

    /// The `/ui` page: the last week through today, by advertiser, order
    /// and line item, unless the query string says otherwise.
    pub async fn ui_page(self: &Arc<App>, query: &str) -> Result<String, ReportError> {
        let (q, format) = parse_params(
            query,
            self.now().date(),
            UI_DAYS,
            &[Dim::Advertiser, Dim::Order, Dim::LineItem],
            Format::Html,
        )?;
        if format != Format::Html {
            return Err(ReportError::Invalid(
                "/ui is the HTML page; other formats come from GET /v1/reports".into(),
            ));
        }
        self.report(q, Format::Html).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Result<(Query, Format), ReportError> {
        let today = Date::parse("2026-11-30").unwrap();
        parse_params(q, today, 7, &[Dim::Day], Format::Json)
    }

    #[test]
    fn defaults_and_strictness() {
        let (q, f) = parse("").unwrap();
        assert_eq!(
            (q.from.to_string(), q.to.to_string(), q.by, f),
            (
                "2026-11-24".into(),
                "2026-11-30".into(),
                vec![Dim::Day],
                Format::Json
            )
        );
        let (q, f) =
            parse("from=2026-11-01&to=2026-11-02&by=keyword%2Cproduct&format=csv").unwrap();
        assert_eq!((q.by, f), (vec![Dim::Keyword, Dim::Product], Format::Csv));
        let (q, _) = parse("by=line_item,audience").unwrap();
        assert_eq!(q.by, vec![Dim::LineItem, Dim::Audience]);
        for bad in [
            "from=2026-11-03&to=2026-11-02",
            "from=2026-13-01",
            "by=campaign",
            "format=xml",
            "to=2026-11-02&to=2026-11-03",
            "limit=5",
            "from=2020-01-01&to=2026-11-30",
            "by=",
        ] {
            assert!(matches!(parse(bad), Err(ReportError::Invalid(_))), "{bad}");
        }
    }
}

//! A report as a terminal table, CSV, JSON or one self-contained HTML page.
//! Ratios with a zero denominator are empty (null in JSON), never infinite.

use std::fmt::Write as _;

use config::Micros;
use serde_json::{json, Value};

use crate::fact::Counters;
use crate::query::Report;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
    Html,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        Some(match s {
            "table" => Format::Table,
            "csv" => Format::Csv,
            "json" => Format::Json,
            "html" => Format::Html,
            _ => return None,
        })
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Table => "text/plain; charset=utf-8",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
            Format::Html => "text/html; charset=utf-8",
        }
    }
}

pub fn render(r: &Report, f: Format) -> String {
    match f {
        Format::Table => table(r),
        Format::Csv => csv(r),
        Format::Json => serde_json::to_string_pretty(&json(r)).unwrap_or_default(),
        Format::Html => crate::render::html(r),
    }
}

/// The metric columns, in order.
pub const METRICS: [&str; 15] = [
    "bids",
    "wins",
    "impressions",
    "clicks",
    "ctr",
    "spend",
    "ecpm",
    "cpc",
    "detail_page_views",
    "purchases",
    "sales",
    "acos",
    "roas",
    "over_delivery",
    "win_rate",
];

fn money(m: Micros) -> String {
    m.to_string()
}

fn opt_money(m: Option<Micros>) -> String {
    m.map(money).unwrap_or_default()
}

/// A ratio as a percentage to two decimals; one above zero that would
/// print as 0.00% is `<0.01%`: an ACOS of 0.00% on a row with spend reads
/// as sales for free (account-manager probe).
fn pct(x: Option<f64>) -> String {
    x.map(|x| {
        if x > 0.0 && x * 100.0 < 0.005 {
            "<0.01%".to_string()
        } else {
            format!("{:.2}%", x * 100.0)
        }
    })
    .unwrap_or_default()
}

fn plain(x: Option<f64>, decimals: usize) -> String {
    x.map(|x| format!("{x:.decimals$}")).unwrap_or_default()
}

/// Wins over bids; none where there are more wins than bids: bids are
/// written as counts once a second and a `kill -9` loses the last
/// second's, while their wins come from the charge journal, which keeps
/// every one (money and reports probes: 253 wins of 20 bids showed as
/// 1265%). The bid count is then known short, and no rate is better than
/// a wrong one.
fn win_rate(c: &Counters) -> Option<f64> {
    (c.bids > 0 && c.wins <= c.bids).then(|| c.wins as f64 / c.bids as f64)
}

/// The metric cells of a row for a table (percentages) or CSV (plain
/// ratios).
pub(crate) fn cells(c: &Counters, for_table: bool) -> Vec<String> {
    let ratio = |x: Option<f64>| if for_table { pct(x) } else { plain(x, 6) };
    vec![
        c.bids.to_string(),
        c.wins.to_string(),
        c.impressions.to_string(),
        c.clicks.to_string(),
        ratio(c.ctr()),
        money(c.spend),
        opt_money(c.ecpm()),
        opt_money(c.cpc()),
        c.views.to_string(),
        c.purchases.to_string(),
        money(c.sales),
        ratio(c.acos()),
        plain(c.roas(), if for_table { 2 } else { 6 }),
        money(c.over_delivery),
        ratio(win_rate(c)),
    ]
}

pub(crate) fn header(r: &Report) -> Vec<String> {
    r.query
        .by
        .iter()
        .map(|d| d.as_str().to_owned())
        .chain(METRICS.iter().map(|m| (*m).to_owned()))
        .collect()
}

fn table(r: &Report) -> String {
    let mut lines: Vec<Vec<String>> = vec![header(r)];
    for row in &r.rows {
        let mut l: Vec<String> = row
            .key
            .iter()
            .map(|k| {
                if k.is_empty() {
                    "-".into()
                } else {
                    // No id may send escape sequences to a terminal.
                    k.chars()
                        .map(|c| if c.is_control() { '?' } else { c })
                        .collect()
                }
            })
            .collect();
        l.extend(cells(&row.counters, true));
        lines.push(l);
    }
    let mut total: Vec<String> = r.query.by.iter().map(|_| String::new()).collect();
    if let Some(first) = total.first_mut() {
        *first = "total".into();
    }
    total.extend(cells(&r.total, true));
    lines.push(total);
    let cols = lines[0].len();
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let by = r.query.by.len();
    let mut out = format!(
        "Report {} to {} (UTC days), money in USD\n\n",
        r.query.from, r.query.to
    );
    for (n, l) in lines.iter().enumerate() {
        if n == lines.len() - 1 {
            let rule: usize = widths.iter().sum::<usize>() + 2 * (cols - 1);
            out.push_str(&"-".repeat(rule));
            out.push('\n');
        }
        let mut text = String::new();
        for (i, cell) in l.iter().enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            let pad = widths[i] - cell.chars().count();
            // Dimensions left-aligned, numbers right-aligned.
            if i < by {
                text.push_str(cell);
                text.push_str(&" ".repeat(pad));
            } else {
                text.push_str(&" ".repeat(pad));
                text.push_str(cell);
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    if !r.no_bids.is_empty() {
        out.push_str("\nNo-bid reasons\n");
        for n in r.no_bids.iter().take(10) {
            let _ = writeln!(out, "  {:<24} {}", n.reason, n.count);
        }
    }
    out
}

/// RFC 4180: a field with a comma, quote or line break is quoted, quotes
/// doubled. A leading `=`, `+`, `-`, `@`, tab or carriage return is
/// prefixed with `'` so a spreadsheet does not run an id as a formula.
fn csv_field(s: &str, out: &mut String) {
    let guarded = matches!(s.chars().next(), Some('=' | '+' | '-' | '@' | '\t' | '\r'));
    if guarded || s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        if guarded {
            out.push('\'');
        }
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

fn csv(r: &Report) -> String {
    let mut out = String::new();
    let line = |fields: &[String], out: &mut String| {
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            csv_field(f, out);
        }
        out.push_str("\r\n");
    };
    line(&header(r), &mut out);
    for row in &r.rows {
        let mut l = row.key.clone();
        l.extend(cells(&row.counters, false));
        line(&l, &mut out);
    }
    out
}

fn money_json(m: Micros) -> Value {
    json!({ "amount": m.to_string(), "micros": m.as_i64() })
}

pub(crate) fn counters_json(c: &Counters) -> Value {
    json!({
        "bids": c.bids,
        "wins": c.wins,
        "impressions": c.impressions,
        "clicks": c.clicks,
        "ctr": c.ctr(),
        "spend": money_json(c.spend),
        "ecpm": c.ecpm().map(money_json),
        "cpc": c.cpc().map(money_json),
        "detail_page_views": c.views,
        "purchases": c.purchases,
        "sales": money_json(c.sales),
        "acos": c.acos(),
        "roas": c.roas(),
        "over_delivery": money_json(c.over_delivery),
        "win_rate": win_rate(c),
    })
}

pub fn json(r: &Report) -> Value {
    let rows: Vec<Value> = r
        .rows
        .iter()
        .map(|row| {
            let mut o = serde_json::Map::new();
            for (d, v) in r.query.by.iter().zip(&row.key) {
                o.insert(d.as_str().into(), Value::String(v.clone()));
            }
            if let Value::Object(m) = counters_json(&row.counters) {
                o.extend(m);
            }
            Value::Object(o)
        })
        .collect();
    json!({
        "from": r.query.from.to_string(),
        "to": r.query.to.to_string(),
        "by": r.query.by.iter().map(|d| d.as_str()).collect::<Vec<_>>(),
        "currency": "USD",
        "generated_at": r.generated_at.to_string(),
        "rows": rows,
        "total": counters_json(&r.total),
        "no_bids": r.no_bids.iter().map(|n| json!({"reason": n.reason, "count": n.count})).collect::<Vec<_>>(),
        "delivery": r.delivery.iter().map(|d| json!({
            "level": d.level.as_str(),
            "advertiser": d.advertiser,
            "order": d.order,
            "line_item": d.line_item,
            "budget": d.budget.map(|(kind, m)| json!({"kind": kind, "amount": money_json(m)})),
            "spent_day": money_json(d.spent_day),
            "spent_to_date": money_json(d.spent_to_date),
            "hourly_micros": d.hourly.iter().map(|m| m.as_i64()).collect::<Vec<_>>(),
            "plan_micros": d.plan.iter().map(|m| m.as_i64()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// One self-contained page: see [`crate::html`] for what it holds and its
/// hooks for tests.
pub fn html(r: &Report) -> String {
    crate::html::page(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_ratio_above_zero_never_prints_as_zero() {
        assert_eq!(pct(Some(0.000_042)), "<0.01%");
        assert_eq!(pct(Some(0.000_05)), "0.01%");
        assert_eq!(pct(Some(0.0)), "0.00%");
        assert_eq!(pct(Some(0.25)), "25.00%");
        assert_eq!(pct(None), "");
    }

    /// A row whose bid count a crash cut short (more wins than bids) has
    /// no win rate, rather than one past 100%.
    #[test]
    fn more_wins_than_bids_is_no_win_rate() {
        let c = |bids, wins| Counters {
            bids,
            wins,
            ..Counters::default()
        };
        assert_eq!(win_rate(&c(8, 6)), Some(0.75));
        assert_eq!(win_rate(&c(6, 6)), Some(1.0));
        assert_eq!(win_rate(&c(20, 253)), None);
        assert_eq!(win_rate(&c(0, 3)), None);
        assert_eq!(
            cells(&c(20, 253), true).last().map(String::as_str),
            Some("")
        );
    }
}

//! A report as one self-contained HTML page: inline CSS, charts as inline
//! SVG drawn here, no script and nothing fetched, so the page can be mailed,
//! archived or printed and looks the same with JavaScript off.
//!
//! Hooks for tests and scrapers, kept stable while the visible text may be
//! reworded or regrouped:
//! - `data-metric="NAME" data-value="…"` on every figure: NAME is a column
//!   of [`METRICS`] and the value is exactly that column's CSV cell (money
//!   as a decimal, ratios as plain fractions, empty when undefined);
//! - on each delivery card (`article.card`): `data-level`,
//!   `data-advertiser`, `data-order`, `data-line-item`, `data-spent` (what
//!   the budget bar measures: the last day's spend against a daily budget,
//!   spend to date otherwise), `data-spent-day`, `data-spent-to-date`,
//!   `data-budget` and `data-budget-kind` (empty without a budget);
//! - in each card's chart: `polyline data-series="spend"`, and where there
//!   is a plan `polyline data-series="plan"`; `line data-series="budget"`
//!   for a daily budget;
//! - `id="totals"`, `id="delivery"`, `id="rows"` and `id="no-bids"` (an
//!   `ol` of `li data-reason data-count`).
//!
//! A ratio over zero shows as "–" (an en dash) wherever it appears, table
//! included, with an empty `data-value`: never "inf" or "NaN".
//!
//! Everything shown comes from the report, in its order: no clock, no
//! random ids, no hash-map iteration, so a report renders to the same bytes.

use std::fmt::{self, Write as _};

use config::{Date, Micros};

use crate::fact::Counters;
use crate::query::{Delivery, Level, Report};
use crate::render::{cells, header, METRICS};

/// Shown for a value that does not exist (a ratio over zero, an empty id).
const NONE: &str = "–";

const TOTAL_TILES: [(&str, &str); 10] = [
    ("spend", "Spend"),
    ("impressions", "Impressions"),
    ("clicks", "Clicks"),
    ("ctr", "CTR"),
    ("sales", "Sales"),
    ("acos", "ACOS"),
    ("roas", "ROAS"),
    ("purchases", "Purchases"),
    ("detail_page_views", "Detail page views"),
    ("over_delivery", "Over-delivery"),
];

const CARD_FIGURES: [(&str, &str); 7] = [
    ("impressions", "Impressions"),
    ("clicks", "Clicks"),
    ("ctr", "CTR"),
    ("spend", "Spend"),
    ("sales", "Sales"),
    ("acos", "ACOS"),
    ("roas", "ROAS"),
];

const CSS: &str = r#"
:root{--ink:#1f2933;--muted:#616e7c;--line:#e4e7eb;--bg:#f5f7fa;--card:#fff;--spend:#2563eb;--plan:#7b8794;--budget:#c81e1e;--ok:#2f855a}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1200px;margin:0 auto;padding:24px}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:19px;margin:32px 0 12px}
.sub{color:var(--muted);margin:0}
.num,td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
dl{margin:0}
dd{margin:0}
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:12px;margin-top:20px}
.tiles>div{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 14px}
.tiles dt{color:var(--muted);font-size:13px}
.tiles dd{font-size:22px;font-weight:600;font-variant-numeric:tabular-nums}
.card{background:var(--card);border:1px solid var(--line);border-left:4px solid var(--spend);border-radius:8px;padding:14px 16px;margin:0 0 12px;break-inside:avoid}
.card[data-level=advertiser]{margin-top:24px}
.card[data-level=order]{margin-left:20px;border-left-color:#7c3aed}
.card[data-level=line_item]{margin-left:40px;border-left-color:#0891b2}
.card header{display:flex;flex-wrap:wrap;gap:4px 12px;align-items:baseline}
.card h3{margin:0;font-size:16px;overflow-wrap:anywhere}
.kind{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.path{color:var(--muted);font-size:13px;overflow-wrap:anywhere}
.body{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1.6fr);gap:16px;margin-top:10px}
.meter{height:10px;background:var(--line);border-radius:5px;overflow:hidden}
.meter>div{height:100%;background:var(--ok)}
.meter>div.over{background:var(--budget)}
.meter-text{margin:6px 0 12px;font-size:13px;color:var(--muted)}
.range{margin:0 0 4px;font-size:12px;color:var(--muted)}
.figs{display:grid;grid-template-columns:repeat(auto-fill,minmax(96px,1fr));gap:8px}
.figs dt{color:var(--muted);font-size:12px}
.figs dd{font-weight:600;font-variant-numeric:tabular-nums}
.chart{width:100%;height:auto;display:block}
.chart text{font-size:11px;fill:var(--muted)}
.chart .grid{stroke:var(--line)}
.chart .spend{fill:none;stroke:var(--spend);stroke-width:2.5}
.chart .plan{fill:none;stroke:var(--plan);stroke-width:1.5;stroke-dasharray:6 4}
.chart .budget{stroke:var(--budget);stroke-width:1}
.legend{list-style:none;display:flex;flex-wrap:wrap;gap:4px 16px;padding:0;margin:4px 0 0;font-size:12px;color:var(--muted)}
.sw{display:inline-block;width:14px;height:3px;vertical-align:middle;margin-right:5px}
.sw.spend{background:var(--spend)}.sw.plan{background:var(--plan)}.sw.budget{background:var(--budget)}
.scroll{overflow-x:auto;background:var(--card);border:1px solid var(--line);border-radius:8px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:6px 10px;border-bottom:1px solid var(--line);white-space:nowrap}
th{text-align:left;background:var(--bg);position:sticky;top:0}
tfoot td{font-weight:600;border-top:2px solid var(--ink)}
td.dim{max-width:24em;overflow:hidden;text-overflow:ellipsis}
#no-bids{list-style:none;padding:0;margin:0;max-width:760px}
#no-bids li{display:grid;grid-template-columns:minmax(0,14em) minmax(0,1fr) 9em;gap:10px;align-items:center;padding:3px 0}
#no-bids .reason{overflow-wrap:anywhere}
#no-bids .bar{height:10px;background:var(--plan);border-radius:3px}
.empty{color:var(--muted)}
@media (max-width:720px){
main{padding:12px}
.body{grid-template-columns:1fr}
.card[data-level=order]{margin-left:8px}
.card[data-level=line_item]{margin-left:16px}
#no-bids li{grid-template-columns:minmax(0,1fr) 7em}
#no-bids .bar{display:none}
.chart text{font-size:16px}
}
@media print{
@page{margin:12mm}
body{background:#fff;font-size:12px;-webkit-print-color-adjust:exact;print-color-adjust:exact}
main{max-width:none;padding:0}
.scroll{overflow:visible;border:0}
th{position:static}
h2{break-after:avoid}
}
"#;

/// Text or a double-quoted attribute value, escaped: ids are typed by
/// people and could hold markup.
struct Esc<'a>(&'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut done = 0;
        for (i, c) in self.0.char_indices() {
            let with = match c {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '"' => "&quot;",
                '\'' => "&#39;",
                _ => continue,
            };
            f.write_str(&self.0[done..i])?;
            f.write_str(with)?;
            done = i + c.len_utf8();
        }
        f.write_str(&self.0[done..])
    }
}

/// Thousands separators in the leading number of a figure (`1234.50` to
/// `1,234.50`, `12345.00%` to `12,345.00%`); an undefined one as [`NONE`].
fn shown(s: &str) -> String {
    if s.is_empty() {
        return NONE.into();
    }
    let (sign, rest) = s.strip_prefix('-').map_or(("", s), |r| ("-", r));
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let mut out = String::from(sign);
    for (i, c) in rest[..digits].chars().enumerate() {
        if i > 0 && (digits - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out + &rest[digits..]
}

fn money(m: Micros) -> String {
    shown(&m.to_string())
}

/// A counter set's figures by metric name: the CSV text for the hooks, the
/// table text (percentages) for people.
struct Figures {
    csv: Vec<String>,
    text: Vec<String>,
}

impl Figures {
    fn of(c: &Counters) -> Figures {
        Figures {
            csv: cells(c, false),
            text: cells(c, true),
        }
    }

    fn write(&self, o: &mut String, figures: &[(&str, &str)]) {
        for (name, label) in figures {
            let Some(i) = METRICS.iter().position(|m| m == name) else {
                continue;
            };
            let _ = write!(
                o,
                r#"<div data-metric="{name}" data-value="{}"><dt>{label}</dt><dd>{}</dd></div>"#,
                Esc(&self.csv[i]),
                Esc(&shown(&self.text[i])),
            );
        }
    }
}

pub(crate) fn page(r: &Report) -> String {
    let (from, to) = (r.query.from, r.query.to);
    let mut o = String::with_capacity(16_384 + 4_096 * r.delivery.len() + 512 * r.rows.len());
    let generated = r.generated_at.to_string();
    // `2026-11-20T10:00:00.000Z` read as `2026-11-20 10:00 UTC`.
    let generated_text = match generated.get(..16) {
        Some(s) => format!("{} UTC", s.replacen('T', " ", 1)),
        None => generated.clone(),
    };
    let _ = write!(
        o,
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Delivery report {from} to {to}</title>
<style>{CSS}</style>
</head>
<body>
<main>
<header>
<h1>Delivery report</h1>
<p class="sub"><time datetime="{from}">{from}</time> to <time datetime="{to}">{to}</time> (UTC days) · money in USD · generated <time datetime="{generated}">{generated_text}</time></p>
</header>
<section aria-label="Totals"><dl class="tiles" id="totals">"#
    );
    Figures::of(&r.total).write(&mut o, &TOTAL_TILES);
    o.push_str("</dl></section>\n");

    o.push_str(r#"<section id="delivery"><h2>Delivery against budgets</h2>"#);
    if r.delivery.is_empty() {
        o.push_str(r#"<p class="empty">No delivery: the report was made without the config.</p>"#);
    }
    for d in &r.delivery {
        card(&mut o, d, from, to);
    }
    o.push_str("</section>\n");

    rows_table(&mut o, r);
    no_bids(&mut o, r);
    o.push_str("</main>\n</body>\n</html>\n");
    o
}

fn or_none(s: &str) -> &str {
    if s.is_empty() {
        NONE
    } else {
        s
    }
}

fn card(o: &mut String, d: &Delivery, first_day: Date, last_day: Date) {
    let (kind, budget) = match d.budget {
        Some((kind, m)) => (kind, Some(m)),
        None => ("", None),
    };
    let spent = if kind == "daily" {
        d.spent_day
    } else {
        d.spent_to_date
    };
    let (title_kind, title, path) = match d.level {
        Level::Advertiser => ("Advertiser", &d.advertiser, String::new()),
        Level::Order => ("Order", &d.order, Esc(&d.advertiser).to_string()),
        Level::LineItem => (
            "Line item",
            &d.line_item,
            format!("{} › {}", Esc(&d.advertiser), Esc(&d.order)),
        ),
    };
    let _ = write!(
        o,
        "\n<article class=\"card\" data-level=\"{}\" data-advertiser=\"{}\" data-order=\"{}\" data-line-item=\"{}\" \
         data-spent=\"{spent}\" data-spent-day=\"{}\" data-spent-to-date=\"{}\" data-budget=\"{}\" data-budget-kind=\"{}\">\
         <header><span class=\"kind\">{title_kind}</span><h3>{}</h3><span class=\"path\">{path}</span></header>\
         <div class=\"body\"><div>",
        d.level.as_str(),
        Esc(&d.advertiser),
        Esc(&d.order),
        Esc(&d.line_item),
        d.spent_day,
        d.spent_to_date,
        budget.map(|b| b.to_string()).unwrap_or_default(),
        Esc(kind),
        Esc(or_none(title)),
    );
    match budget {
        Some(b) => {
            let share = (b.as_i64() > 0).then(|| spent.as_i64() as f64 / b.as_i64() as f64);
            let width = share.map_or(0.0, |s| (s * 100.0).clamp(0.0, 100.0));
            let over = if share.is_some_and(|s| s > 1.0) {
                " class=\"over\""
            } else {
                ""
            };
            let when = if kind == "daily" {
                format!("on {last_day}")
            } else {
                format!("through {last_day}")
            };
            let pct = share.map_or(NONE.to_owned(), |s| shown(&format!("{:.1}%", s * 100.0)));
            let _ = write!(
                o,
                "<div class=\"meter\" aria-hidden=\"true\"><div{over} style=\"width:{width:.1}%\"></div></div>\
                 <p class=\"meter-text\"><strong>{}</strong> of {} {} budget spent {when} · <strong>{pct}</strong></p>",
                money(spent),
                money(b),
                Esc(kind),
            );
        }
        None => {
            let _ = write!(
                o,
                "<p class=\"meter-text\">No budget at this level · <strong>{}</strong> spent through {last_day}</p>",
                money(spent)
            );
        }
    }
    // The figures are over the whole range, unlike the bar and the chart.
    let _ = write!(
        o,
        "<p class=\"range\">{first_day} to {last_day}</p><dl class=\"figs\">"
    );
    Figures::of(&d.counters).write(o, &CARD_FIGURES);
    o.push_str("</dl></div><div>");
    chart(o, d, last_day);
    o.push_str("</div></div></article>");
}

// The chart's box, in SVG user units; it scales with the card's width.
// The left margin is as wide as the longest amount on the money axis.
const W: f64 = 640.0;
const H: f64 = 210.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 32.0;
/// Room per character of an axis label, enough for the larger font on a
/// phone (where the chart is drawn smaller).
const LABEL_CHAR: f64 = 9.0;

/// The top of a chart's scale: the smallest of 1, 2, 4, 5 or 8 times a
/// power of ten (from 0.10) that reaches `max`, so its quarters, where the
/// gridlines are, are round amounts.
fn scale_top(max: i64) -> i64 {
    let mut power: i64 = 100_000;
    loop {
        for m in [1, 2, 4, 5, 8] {
            let top = power.saturating_mul(m);
            if top >= max {
                return top;
            }
        }
        power = power.saturating_mul(10);
    }
}

/// Cumulative spend through the last day against the plan: x is the hour
/// (0 to 24), y money from 0 at the bottom.
fn chart(o: &mut String, d: &Delivery, day: Date) {
    let daily = match d.budget {
        Some(("daily", m)) => Some(m),
        _ => None,
    };
    // A lifetime budget is left off the scale: it would flatten the day.
    let max = d
        .hourly
        .iter()
        .chain(&d.plan)
        .chain(daily.iter())
        .map(|m| m.as_i64())
        .max()
        .unwrap_or(0);
    let top = scale_top(max);
    let step = top / 4;
    let labels: Vec<String> = (0..=4)
        .map(|i| money(Micros(step.saturating_mul(i))))
        .collect();
    let widest = labels.iter().map(|l| l.len()).max().unwrap_or(0);
    let left = 12.0 + LABEL_CHAR * widest as f64;
    let top = top as f64;
    let x = |hour: usize| left + hour as f64 * (W - left - RIGHT) / 24.0;
    let y =
        |m: Micros| TOP + (1.0 - (m.as_i64() as f64 / top).clamp(0.0, 1.0)) * (H - TOP - BOTTOM);
    let through = match d.hourly.len() {
        24 => String::new(),
        n => format!(" through {n:02}:00"),
    };
    let _ = write!(
        o,
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\"><title>Cumulative spend on {day}{through} (UTC) by hour, against the pacing plan</title>"
    );
    for (i, label) in (0..).zip(&labels) {
        let at = y(Micros(step.saturating_mul(i)));
        let _ = write!(
            o,
            "<line class=\"grid\" x1=\"{left:.1}\" x2=\"{}\" y1=\"{at:.1}\" y2=\"{at:.1}\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{label}</text>",
            W - RIGHT,
            left - 6.0,
            at + 4.0,
        );
    }
    for h in (0..=24).step_by(6) {
        let _ = write!(
            o,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{h:02}:00</text>",
            x(h),
            H - 8.0
        );
    }
    let polyline = |o: &mut String, series: &str, start: Micros, values: &[Micros]| {
        let _ = write!(
            o,
            "<polyline class=\"{series}\" data-series=\"{series}\" points=\"{:.1},{:.1}",
            x(0),
            y(start)
        );
        for (h, m) in values.iter().enumerate() {
            let _ = write!(o, " {:.1},{:.1}", x(h + 1), y(*m));
        }
        o.push_str("\"/>");
    };
    if let Some(b) = daily {
        let at = y(b);
        let _ = write!(
            o,
            "<line class=\"budget\" data-series=\"budget\" x1=\"{left:.1}\" x2=\"{}\" y1=\"{at:.1}\" y2=\"{at:.1}\"/>",
            W - RIGHT
        );
    }
    if !d.plan.is_empty() {
        // A daily budget is all available from midnight; a lifetime plan
        // ramps up from nothing.
        polyline(o, "plan", daily.unwrap_or(Micros::ZERO), &d.plan);
    }
    polyline(o, "spend", Micros::ZERO, &d.hourly);
    o.push_str("</svg><ul class=\"legend\"><li><span class=\"sw spend\"></span>Spend</li>");
    if !d.plan.is_empty() {
        o.push_str("<li><span class=\"sw plan\"></span>Pacing plan</li>");
    }
    if let Some(b) = daily {
        let _ = write!(
            o,
            "<li><span class=\"sw budget\"></span>Daily budget {}</li>",
            money(b)
        );
    }
    o.push_str("</ul>");
}

fn rows_table(o: &mut String, r: &Report) {
    o.push_str("<section id=\"rows\"><h2>Report rows</h2>");
    if r.rows.is_empty() {
        o.push_str("<p class=\"empty\">No rows in this range.</p></section>\n");
        return;
    }
    let by = r.query.by.len();
    o.push_str("<div class=\"scroll\"><table><thead><tr>");
    for (i, h) in header(r).iter().enumerate() {
        let class = if i < by { "" } else { " class=\"num\"" };
        let _ = write!(o, "<th scope=\"col\"{class}>{}</th>", Esc(h));
    }
    o.push_str("</tr></thead><tbody>");
    let metric_cells = |o: &mut String, c: &Counters| {
        for text in cells(c, true) {
            let _ = write!(o, "<td class=\"num\">{}</td>", Esc(&shown(&text)));
        }
    };
    for row in &r.rows {
        o.push_str("<tr>");
        for k in &row.key {
            let _ = write!(
                o,
                "<td class=\"dim\" title=\"{0}\">{0}</td>",
                Esc(or_none(k))
            );
        }
        metric_cells(o, &row.counters);
        o.push_str("</tr>");
    }
    o.push_str("</tbody><tfoot><tr>");
    for i in 0..by {
        o.push_str(if i == 0 {
            "<td>Total</td>"
        } else {
            "<td></td>"
        });
    }
    metric_cells(o, &r.total);
    o.push_str("</tr></tfoot></table></div></section>\n");
}

fn no_bids(o: &mut String, r: &Report) {
    o.push_str("<section><h2>Top no-bid reasons</h2>");
    let top = &r.no_bids[..r.no_bids.len().min(10)];
    if top.is_empty() {
        o.push_str("<p class=\"empty\">No requests went unanswered.</p>");
    }
    let all: u64 = r.no_bids.iter().map(|n| n.count).sum();
    let most = top.iter().map(|n| n.count).max().unwrap_or(0);
    o.push_str("<ol id=\"no-bids\">");
    for n in top {
        let width = if most > 0 {
            n.count as f64 * 100.0 / most as f64
        } else {
            0.0
        };
        let share = if all > 0 {
            n.count as f64 * 100.0 / all as f64
        } else {
            0.0
        };
        let _ = write!(
            o,
            "<li data-reason=\"{0}\" data-count=\"{1}\"><span class=\"reason\">{0}</span>\
             <span aria-hidden=\"true\"><span class=\"bar\" style=\"display:block;width:{width:.1}%\"></span></span>\
             <span class=\"num\">{2} · {share:.1}%</span></li>",
            Esc(&n.reason),
            n.count,
            shown(&n.count.to_string()),
        );
    }
    o.push_str("</ol></section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fact::Dim;
    use crate::query::{NoBidCount, Query, Row};
    use config::Timestamp;

    fn item(level: Level, ids: [&str; 3], budget: Option<(&'static str, Micros)>) -> Delivery {
        Delivery {
            level,
            advertiser: ids[0].into(),
            order: ids[1].into(),
            line_item: ids[2].into(),
            budget,
            spent_day: Micros::ZERO,
            spent_to_date: Micros::ZERO,
            hourly: vec![Micros::ZERO; 24],
            plan: Vec::new(),
            counters: Counters::default(),
        }
    }

    /// One advertiser, one order, a daily and a lifetime line item.
    fn sample(line_item: &str) -> Report {
        let day = Date::from_ymd(2026, 11, 20).unwrap();
        let counters = Counters {
            bids: 5000,
            wins: 2000,
            impressions: 2000,
            clicks: 40,
            spend: Micros(1_234_500_000),
            over_delivery: Micros(250_000),
            views: 30,
            purchases: 7,
            sales: Micros(4_938_000_000),
        };
        let mut daily = item(
            Level::LineItem,
            ["shop", "o1", line_item],
            Some(("daily", Micros::from_units(50))),
        );
        daily.hourly = (1..=24).map(|h| Micros(h * 1_500_000)).collect();
        daily.spent_day = Micros(36_000_000);
        daily.spent_to_date = Micros(1_412_340_000);
        daily.plan = vec![Micros::from_units(50); 24];
        daily.counters = counters;
        let mut lifetime = item(
            Level::LineItem,
            ["shop", "o1", "li-life"],
            Some(("lifetime", Micros::from_units(1000))),
        );
        lifetime.plan = (1..=24).map(|h| Micros(h * 2_000_000)).collect();
        let mut order = item(
            Level::Order,
            ["shop", "o1", ""],
            Some(("lifetime", Micros::from_units(5000))),
        );
        order.hourly = daily.hourly.clone();
        order.counters = counters;
        let mut adv = order.clone();
        (adv.level, adv.order, adv.budget) = (Level::Advertiser, String::new(), None);
        Report {
            query: Query {
                from: Date::from_ymd(2026, 11, 1).unwrap(),
                to: day,
                by: vec![Dim::LineItem, Dim::Keyword],
            },
            rows: vec![Row {
                key: vec![line_item.into(), String::new()],
                counters,
            }],
            total: counters,
            no_bids: vec![
                NoBidCount {
                    reason: "no_line_item".into(),
                    count: 900,
                },
                NoBidCount {
                    reason: "below_floor".into(),
                    count: 100,
                },
            ],
            delivery: vec![adv, order, daily, lifetime],
            generated_at: Timestamp::parse_rfc3339("2026-11-21T06:30:00Z").unwrap(),
            raw_records: 0,
        }
    }

    /// The text of each line item's card.
    fn line_item_cards(page: &str) -> Vec<&str> {
        page.split("<article ")
            .skip(1)
            .filter(|c| c.starts_with("class=\"card\" data-level=\"line_item\""))
            .map(|c| &c[..c.find("</article>").unwrap()])
            .collect()
    }

    #[test]
    fn figures_appear_with_their_hooks() {
        let p = page(&sample("li-day"));
        assert!(p.contains(
            r#"data-metric="spend" data-value="1234.50"><dt>Spend</dt><dd>1,234.50</dd>"#
        ));
        assert!(p.contains(r#"data-metric="ctr" data-value="0.020000"><dt>CTR</dt><dd>2.00%</dd>"#));
        assert!(
            p.contains(r#"data-metric="acos" data-value="0.250000"><dt>ACOS</dt><dd>25.00%</dd>"#)
        );
        assert!(
            p.contains(r#"data-metric="roas" data-value="4.000000"><dt>ROAS</dt><dd>4.00</dd>"#)
        );
        assert!(p.contains(r#"data-line-item="li-day" data-spent="36.00" data-spent-day="36.00" data-spent-to-date="1412.34" data-budget="50.00" data-budget-kind="daily""#));
        // A lifetime budget is measured to date.
        assert!(p.contains(r#"data-line-item="li-life" data-spent="0.00""#));
        assert!(p.contains("<strong>36.00</strong> of 50.00 daily budget spent on 2026-11-20 · <strong>72.0%</strong>"));
        assert!(p.contains(r#"<li data-reason="no_line_item" data-count="900">"#));
        assert!(p.contains("2026-11-01</time> to <time datetime=\"2026-11-20\">2026-11-20</time>"));
        assert!(p.contains(
            "generated <time datetime=\"2026-11-21T06:30:00.000Z\">2026-11-21 06:30 UTC</time>"
        ));
        assert!(p.contains("<meta name=\"viewport\""));
        // The table has the CSV's columns.
        for m in METRICS {
            assert!(
                p.contains(&format!("<th scope=\"col\" class=\"num\">{m}</th>")),
                "{m}"
            );
        }
    }

    #[test]
    fn ids_are_escaped_in_text_and_attributes() {
        let evil = r#"<script>alert(1)</script>&"'"#;
        let mut r = sample(evil);
        r.no_bids[0].reason = evil.into();
        let p = page(&r);
        assert!(!p.contains("<script"), "{p}");
        let escaped = "&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;&#39;";
        assert!(p.contains(&format!("data-line-item=\"{escaped}\"")));
        assert!(p.contains(&format!("<h3>{escaped}</h3>")));
        assert!(p.contains(&format!(
            "<td class=\"dim\" title=\"{escaped}\">{escaped}</td>"
        )));
        assert!(p.contains(&format!("data-reason=\"{escaped}\"")));
        assert_eq!(
            Esc("a&b<c>d\"e'f").to_string(),
            "a&amp;b&lt;c&gt;d&quot;e&#39;f"
        );
    }

    #[test]
    fn empty_ratios_are_a_dash_never_infinite() {
        let mut r = sample("li");
        r.total = Counters {
            spend: Micros(1_000_000),
            ..Counters::default()
        };
        r.rows[0].counters = Counters::default();
        r.delivery[3].budget = Some(("lifetime", Micros::ZERO));
        let p = page(&r);
        for m in ["ctr", "acos"] {
            assert!(
                p.contains(&format!(r#"data-metric="{m}" data-value=""><dt>"#)),
                "{m}"
            );
        }
        assert!(p.contains(r#"data-metric="ctr" data-value=""><dt>CTR</dt><dd>–</dd>"#));
        assert!(p.contains("<td class=\"num\">–</td>"));
        assert!(p.contains("spent through 2026-11-20 · <strong>–</strong>"));
        for bad in ["inf", "NaN"] {
            assert!(!p.to_lowercase().contains(&bad.to_lowercase()), "{bad}");
        }
    }

    #[test]
    fn each_line_item_chart_has_a_spend_and_a_plan_line() {
        let r = sample("li-day");
        let p = page(&r);
        assert_eq!(p.matches("<svg ").count(), r.delivery.len());
        let cards = line_item_cards(&p);
        assert_eq!(cards.len(), 2);
        for c in &cards {
            assert_eq!(c.matches("<polyline ").count(), 2, "{c}");
            assert_eq!(c.matches("data-series=\"spend\"").count(), 1);
            assert_eq!(c.matches("data-series=\"plan\"").count(), 1);
        }
        // Only the daily budget has a budget line, at the top of a 0..50
        // scale whose widest label, "50.00", sets the left margin.
        assert_eq!(cards[0].matches("data-series=\"budget\"").count(), 1);
        assert!(cards[0].contains("data-series=\"budget\" x1=\"57.0\" x2=\"616\" y1=\"10.0\""));
        assert_eq!(cards[1].matches("data-series=\"budget\"").count(), 0);
        // Spend climbs from 0 at midnight to 36.00 at 24:00.
        assert!(cards[0].contains("points=\"57.0,178.0 80.3,173.0 "));
        assert!(cards[0].contains(" 616.0,57.0\"/>"));
    }

    #[test]
    fn the_page_is_self_contained_and_deterministic() {
        let r = sample("li-day");
        let p = page(&r);
        assert_eq!(p, page(&r));
        for external in [
            "http:", "https:", "src=", "<link", "<script", "@import", "url(",
        ] {
            assert!(!p.contains(external), "{external}");
        }
        assert!(p.starts_with("<!DOCTYPE html>"));
    }

    #[test]
    fn scales_and_figures_are_round() {
        assert_eq!(scale_top(0), 100_000);
        assert_eq!(scale_top(36_000_000), 40_000_000);
        assert_eq!(scale_top(50_000_000), 50_000_000);
        assert_eq!(scale_top(50_000_001), 80_000_000);
        assert_eq!(scale_top(i64::MAX), i64::MAX);
        assert_eq!(shown("1234567.50"), "1,234,567.50");
        assert_eq!(shown("-1000"), "-1,000");
        assert_eq!(shown("12.00%"), "12.00%");
        assert_eq!(shown(""), NONE);
    }
}

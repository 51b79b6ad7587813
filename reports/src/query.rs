//! A report over a range of days.
//!
//! Spend, wins and over-delivery come from the charge journal's records —
//! the ones the ledger's spend is made of — so a report's spend is the
//! ledger's billed spend to the micro. Everything else comes from the event
//! journal. Both are read through aggregates where they exist: a closed
//! day's events, or a closed journal generation's charges, are folded once
//! into an `.agg` file beside them (rebuilt when its source has grown
//! since, as a conversion dated in the past makes it), so a month of
//! history answers from a few thousand lines instead of millions. Today's
//! events and the live generation are read raw, with a progress bar on a
//! terminal.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use config::{Budget, Config, Date, Micros, Timestamp};

use crate::fact::{Counters, Dim, Dims, Interner};
use crate::log::{day_file, days, dir_of, read_day};
use crate::progress::Progress;
use crate::record::{decode, encode, Kind};

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
/// A report covers at most this many days: bounded work per request.
pub const MAX_DAYS: i64 = 400;

/// What to report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    pub from: Date,
    pub to: Date,
    pub by: Vec<Dim>,
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("--from {from} is after --to {to}")]
    Reversed { from: Date, to: Date },
    #[error("a report covers at most {MAX_DAYS} days")]
    TooLong,
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

impl Query {
    pub fn check(&self) -> Result<(), QueryError> {
        let (f, t) = (self.from.days_since_epoch(), self.to.days_since_epoch());
        if f > t {
            return Err(QueryError::Reversed {
                from: self.from,
                to: self.to,
            });
        }
        if t - f >= MAX_DAYS {
            return Err(QueryError::TooLong);
        }
        Ok(())
    }
}

/// One line of a report: the values of the `by` dimensions, and the sums.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub key: Vec<String>,
    pub counters: Counters,
}

/// Requests answered without a bid, for one reason, over the range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoBidCount {
    pub reason: String,
    pub count: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Advertiser,
    Order,
    LineItem,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Advertiser => "advertiser",
            Level::Order => "order",
            Level::LineItem => "line_item",
        }
    }
}

/// Delivery of an advertiser, order or line item of the config, on the
/// report's last day and over the range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub level: Level,
    pub advertiser: String,
    pub order: String,
    pub line_item: String,
    /// `daily` or `lifetime` and the amount (orders: lifetime); none for
    /// an advertiser.
    pub budget: Option<(&'static str, Micros)>,
    /// Spent on the last day.
    pub spent_day: Micros,
    /// Spent from the first charge through the last day.
    pub spent_to_date: Micros,
    /// Spend so far on the last day at the end of each hour (up to now
    /// when the last day is today).
    pub hourly: Vec<Micros>,
    /// The pacing plan at the end of each hour of the last day: where an
    /// evenly paced lifetime budget should be; a daily budget is all
    /// available from midnight (spent as demand comes).
    pub plan: Vec<Micros>,
    /// Over the range.
    pub counters: Counters,
}

/// A report, ready to render.
#[derive(Clone, Debug)]
pub struct Report {
    pub query: Query,
    pub rows: Vec<Row>,
    pub total: Counters,
    /// Most frequent first.
    pub no_bids: Vec<NoBidCount>,
    pub delivery: Vec<Delivery>,
    pub generated_at: Timestamp,
    /// Raw records read (not from aggregates): what the progress bar
    /// measured.
    pub raw_records: u64,
}

/// Where a report reads from.
pub struct Sources<'a> {
    /// The state directory (`charges.journal`, `events/`).
    pub state: &'a Path,
    /// For budgets, the pacing plan and the delivery section.
    pub config: Option<&'a Config>,
    pub now: Timestamp,
    /// Show a progress bar on a terminal while raw records are read.
    pub progress: bool,
}

/// Charges summed by (bid day, hour of the charge, ad).
type ChargeCube = HashMap<(i64, u8, Dims), ChargeSums>;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ChargeSums {
    wins: u64,
    spend: Micros,
    over: Micros,
}

impl ChargeSums {
    fn add(&mut self, o: &ChargeSums) {
        self.wins += o.wins;
        self.spend = self.spend.saturating_add(o.spend);
        self.over = self.over.saturating_add(o.over);
    }
}

/// One day's events summed by ad, and its no-bids by exchange and reason.
#[derive(Default)]
struct DayEvents {
    facts: HashMap<Dims, Counters>,
    no_bids: HashMap<(Arc<str>, Arc<str>), u64>,
}

pub fn run(q: &Query, src: &Sources<'_>) -> Result<Report, QueryError> {
    q.check()?;
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| QueryError::Io { path, source }
    };
    let mut interner = Interner::default();
    let (from, to) = (q.from.days_since_epoch(), q.to.days_since_epoch());
    let today = src.now.date().days_since_epoch();
    let events_dir = dir_of(src.state);
    let day_list: Vec<Date> = days(&events_dir)
        .map_err(io_err(&events_dir))?
        .into_iter()
        .filter(|d| (from..=to).contains(&d.days_since_epoch()))
        .collect();

    // What must be read raw, for the progress bar.
    let gens = match ledger::journal::generations(src.state) {
        Ok(g) => g,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_err(src.state)(e)),
    };
    let mut raw_bytes = 0u64;
    for d in &day_list {
        let path = day_file(&events_dir, *d);
        if fresh_agg(&agg_path(&path), &path).is_none() {
            raw_bytes += file_len(&path);
        }
    }
    for g in &gens {
        if !g.closed || fresh_agg(&charges_agg(&events_dir, g.generation), &g.path).is_none() {
            raw_bytes += g.len;
        }
    }
    let mut progress = if src.progress {
        Progress::start("reading raw events", raw_bytes)
    } else {
        None
    };
    let mut raw_records = 0u64;

    // Charges: every generation (lifetime spend needs the days before the
    // range too).
    let mut charges: ChargeCube = HashMap::new();
    for g in &gens {
        let agg = charges_agg(&events_dir, g.generation);
        let cached = if g.closed {
            fresh_agg(&agg, &g.path).and_then(|_| read_charges_agg(&agg, &mut interner).ok())
        } else {
            None
        };
        let part = match cached {
            Some(part) => part,
            None => {
                let mut part: ChargeCube = HashMap::new();
                let mut last = 0u64;
                ledger::journal::read_generation(&g.path, |c, at| {
                    raw_records += 1;
                    if let Some(p) = progress.as_mut() {
                        p.advance(at - last);
                    }
                    last = at;
                    add_charge(&mut part, &c, &mut interner);
                })
                .map_err(io_err(&g.path))?;
                if g.closed {
                    // A cache: a report that cannot write it still answers.
                    let _ = write_charges_agg(&agg, g.len, &part);
                }
                part
            }
        };
        for (k, v) in part {
            charges.entry(k).or_default().add(&v);
        }
    }

    // Events, day by day.
    let mut facts: HashMap<(i64, Dims), Counters> = HashMap::new();
    let mut no_bids: HashMap<Arc<str>, u64> = HashMap::new();
    for d in &day_list {
        let path = day_file(&events_dir, *d);
        let agg = agg_path(&path);
        let day =
            match fresh_agg(&agg, &path).and_then(|_| read_events_agg(&agg, &mut interner).ok()) {
                Some(day) => day,
                None => {
                    let mut day = DayEvents::default();
                    read_day(
                        &path,
                        &mut interner,
                        |r| {
                            raw_records += 1;
                            add_event(&mut day, r);
                        },
                        |_| {},
                    )
                    .map_err(io_err(&path))?;
                    // Only a closed day is folded: today's file still grows.
                    let len = file_len(&path);
                    if d.days_since_epoch() < today {
                        let _ = write_events_agg(&agg, len, &day);
                    }
                    if let Some(p) = progress.as_mut() {
                        p.advance(len);
                    }
                    day
                }
            };
        let dn = d.days_since_epoch();
        for (dims, c) in day.facts {
            facts.entry((dn, dims)).or_default().add(&c);
        }
        for ((_, reason), n) in day.no_bids {
            *no_bids.entry(reason).or_default() += n;
        }
    }
    if let Some(p) = progress {
        p.finish();
    }
    for ((day, _, dims), s) in &charges {
        if (from..=to).contains(day) {
            let c = facts.entry((*day, dims.clone())).or_default();
            c.wins += s.wins;
            c.spend = c.spend.saturating_add(s.spend);
            c.over_delivery = c.over_delivery.saturating_add(s.over);
        }
    }

    // Rows by the chosen dimensions.
    let mut rows: HashMap<Vec<String>, Counters> = HashMap::new();
    let mut total = Counters::default();
    for ((day, dims), c) in &facts {
        let day_text = Date::from_days_since_epoch(*day).to_string();
        let key =
            q.by.iter()
                .map(|d| d.value(&day_text, dims).to_owned())
                .collect();
        rows.entry(key).or_default().add(c);
        total.add(c);
    }
    let mut rows: Vec<Row> = rows
        .into_iter()
        .map(|(key, counters)| Row { key, counters })
        .collect();
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    let mut no_bids: Vec<NoBidCount> = no_bids
        .into_iter()
        .map(|(reason, count)| NoBidCount {
            reason: reason.to_string(),
            count,
        })
        .collect();
    no_bids.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
    let delivery = match src.config {
        Some(config) => delivery(config, q, src.now, &facts, &charges),
        None => Vec::new(),
    };
    Ok(Report {
        query: q.clone(),
        rows,
        total,
        no_bids,
        delivery,
        generated_at: src.now,
        raw_records,
    })
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn add_charge(cube: &mut ChargeCube, c: &ledger::Charge, interner: &mut Interner) {
    let day = c.day.days_since_epoch();
    let t = &c.tags;
    // The hour the charge was made, on the bid's day (a notice after
    // midnight counts in the last hour).
    let hour = (c.tags.at_ms - day * DAY_MS).clamp(0, DAY_MS - 1) / HOUR_MS;
    let dims = Dims {
        advertiser: interner.get(&t.advertiser),
        order: interner.get(c.keys[1].id()),
        line_item: interner.get(c.keys[0].id()),
        creative: interner.get(&t.creative),
        exchange: interner.get(&t.exchange),
        keyword: interner.get(&t.keyword),
        product: interner.get(""),
    };
    cube.entry((day, hour as u8, dims))
        .or_default()
        .add(&ChargeSums {
            wins: 1,
            spend: c.billed,
            over: c.over_delivery,
        });
}

fn add_event(day: &mut DayEvents, r: crate::record::Record) {
    if r.kind == Kind::NoBid {
        *day.no_bids
            .entry((r.dims.exchange, r.dims.product))
            .or_default() += r.n;
        return;
    }
    let c = day.facts.entry(r.dims).or_default();
    match r.kind {
        Kind::Bid => c.bids += r.n,
        Kind::Impression => c.impressions += r.n,
        Kind::Click => c.clicks += r.n,
        Kind::View => c.views += r.n,
        Kind::Purchase => {
            c.purchases += r.n;
            c.sales = c.sales.saturating_add(r.amount);
        }
        Kind::NoBid => {}
    }
}

// ---- aggregate files ------------------------------------------------------

const EVENTS_AGG: &str = "bidder-events-agg 1";
const CHARGES_AGG: &str = "bidder-charges-agg 1";

fn agg_path(day_file: &Path) -> PathBuf {
    day_file.with_extension("agg")
}

fn charges_agg(events_dir: &Path, generation: u64) -> PathBuf {
    events_dir.join(format!("charges.{generation}.agg"))
}

/// `Some` when the aggregate at `agg` summarises `source` as it is now:
/// its header names the source's length then, and the source has not
/// grown since.
fn fresh_agg(agg: &Path, source: &Path) -> Option<()> {
    let f = std::fs::File::open(agg).ok()?;
    let mut first = String::new();
    BufReader::new(f).read_line(&mut first).ok()?;
    let len: u64 = first.trim_end().rsplit_once(' ')?.1.parse().ok()?;
    (len == file_len(source)).then_some(())
}

/// Writes through a temporary file and a rename: a reader sees the old
/// aggregate or the new one, and two reports folding the same day at once
/// do no harm.
fn write_atomic(path: &Path, text: &str) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

fn push_dims(s: &mut String, d: &Dims) {
    for (i, v) in [
        &d.advertiser,
        &d.order,
        &d.line_item,
        &d.creative,
        &d.exchange,
        &d.keyword,
        &d.product,
    ]
    .into_iter()
    .enumerate()
    {
        if i > 0 {
            s.push('\t');
        }
        encode(v, s);
    }
}

fn read_dims<'a>(f: &mut impl Iterator<Item = &'a str>, interner: &mut Interner) -> Option<Dims> {
    let mut next = || decode(f.next()?, interner);
    Some(Dims {
        advertiser: next()?,
        order: next()?,
        line_item: next()?,
        creative: next()?,
        exchange: next()?,
        keyword: next()?,
        product: next()?,
    })
}

fn bad(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: not an aggregate of ours", path.display()),
    )
}

fn write_events_agg(path: &Path, source_len: u64, day: &DayEvents) -> io::Result<()> {
    let mut s = format!("{EVENTS_AGG} {source_len}\n");
    for (d, c) in &day.facts {
        s.push_str("F\t");
        push_dims(&mut s, d);
        let _ = writeln!(
            s,
            "\t{}\t{}\t{}\t{}\t{}\t{}",
            c.bids,
            c.impressions,
            c.clicks,
            c.views,
            c.purchases,
            c.sales.as_i64()
        );
    }
    for ((x, reason), n) in &day.no_bids {
        s.push_str("N\t");
        encode(x, &mut s);
        s.push('\t');
        encode(reason, &mut s);
        let _ = writeln!(s, "\t{n}");
    }
    write_atomic(path, &s)
}

fn read_events_agg(path: &Path, interner: &mut Interner) -> io::Result<DayEvents> {
    let text = std::fs::read_to_string(path)?;
    let mut lines = text.lines();
    if !lines.next().is_some_and(|h| h.starts_with(EVENTS_AGG)) {
        return Err(bad(path));
    }
    let mut day = DayEvents::default();
    for line in lines {
        let mut f = line.split('\t');
        let ok = (|| {
            match f.next()? {
                "F" => {
                    let dims = read_dims(&mut f, interner)?;
                    let mut n = || f.next()?.parse::<u64>().ok();
                    let c = Counters {
                        bids: n()?,
                        impressions: n()?,
                        clicks: n()?,
                        views: n()?,
                        purchases: n()?,
                        sales: Micros(i64::try_from(n()?).ok()?),
                        ..Counters::default()
                    };
                    day.facts.entry(dims).or_default().add(&c);
                }
                "N" => {
                    let x = decode(f.next()?, interner)?;
                    let reason = decode(f.next()?, interner)?;
                    *day.no_bids.entry((x, reason)).or_default() +=
                        f.next()?.parse::<u64>().ok()?;
                }
                _ => return None,
            }
            Some(())
        })();
        ok.ok_or_else(|| bad(path))?;
    }
    Ok(day)
}

fn write_charges_agg(path: &Path, source_len: u64, cube: &ChargeCube) -> io::Result<()> {
    let mut s = format!("{CHARGES_AGG} {source_len}\n");
    for ((day, hour, d), c) in cube {
        let _ = write!(s, "{day}\t{hour}\t");
        push_dims(&mut s, d);
        let _ = writeln!(s, "\t{}\t{}\t{}", c.wins, c.spend.as_i64(), c.over.as_i64());
    }
    write_atomic(path, &s)
}

fn read_charges_agg(path: &Path, interner: &mut Interner) -> io::Result<ChargeCube> {
    let text = std::fs::read_to_string(path)?;
    let mut lines = text.lines();
    if !lines.next().is_some_and(|h| h.starts_with(CHARGES_AGG)) {
        return Err(bad(path));
    }
    let mut cube = ChargeCube::new();
    for line in lines {
        let mut f = line.split('\t');
        let entry = (|| {
            let day: i64 = f.next()?.parse().ok()?;
            let hour: u8 = f.next()?.parse().ok()?;
            let dims = read_dims(&mut f, interner)?;
            let sums = ChargeSums {
                wins: f.next()?.parse().ok()?,
                spend: Micros(f.next()?.parse().ok()?),
                over: Micros(f.next()?.parse().ok()?),
            };
            Some(((day, hour, dims), sums))
        })();
        let (k, v) = entry.ok_or_else(|| bad(path))?;
        cube.entry(k).or_default().add(&v);
    }
    Ok(cube)
}

// ---- delivery against budgets --------------------------------------------

fn delivery(
    config: &Config,
    q: &Query,
    now: Timestamp,
    facts: &HashMap<(i64, Dims), Counters>,
    charges: &ChargeCube,
) -> Vec<Delivery> {
    let last = q.to.days_since_epoch();
    // Hours of the last day shown: up to now when it is today.
    let hours = if now.date().days_since_epoch() == last {
        ((now.as_millis() - last * DAY_MS) / HOUR_MS + 1).clamp(1, 24) as usize
    } else {
        24
    };
    let mut by_li: HashMap<&str, Counters> = HashMap::new();
    for ((_, dims), c) in facts {
        by_li.entry(&dims.line_item).or_default().add(c);
    }
    // Per line item: spend by hour of the last day, and to date.
    let mut hourly: HashMap<&str, [Micros; 24]> = HashMap::new();
    let mut to_date: HashMap<&str, Micros> = HashMap::new();
    for ((day, hour, dims), s) in charges {
        if *day > last {
            continue;
        }
        let t = to_date.entry(&dims.line_item).or_default();
        *t = t.saturating_add(s.spend);
        if *day == last {
            let h = hourly.entry(&dims.line_item).or_default();
            h[usize::from(*hour)] = h[usize::from(*hour)].saturating_add(s.spend);
        }
    }
    let mut out = Vec::new();
    for a in &config.advertisers {
        let mut adv = blank(Level::Advertiser, &a.id, "", "", hours);
        // Its orders, each followed by its line items.
        let mut block = Vec::new();
        for o in &a.orders {
            let mut ord = blank(Level::Order, &a.id, &o.id, "", hours);
            ord.budget = Some(("lifetime", o.budget));
            let mut lis = Vec::new();
            for li in &o.line_items {
                let mut d = blank(Level::LineItem, &a.id, &o.id, &li.id, hours);
                let h = hourly.get(li.id.as_str()).copied().unwrap_or_default();
                let mut cum = Micros::ZERO;
                for (i, slot) in d.hourly.iter_mut().enumerate() {
                    cum = cum.saturating_add(h[i]);
                    *slot = cum;
                }
                d.spent_day = h.iter().fold(Micros::ZERO, |s, x| s.saturating_add(*x));
                d.spent_to_date = to_date.get(li.id.as_str()).copied().unwrap_or_default();
                d.counters = by_li.get(li.id.as_str()).copied().unwrap_or_default();
                d.budget = Some(match li.budget {
                    Budget::Daily(m) => ("daily", m),
                    Budget::Lifetime(m) => ("lifetime", m),
                });
                let before = d.spent_to_date.saturating_sub(d.spent_day);
                d.plan = plan(li.budget, o.flight.end, q.to, before);
                sum_into(&mut ord, &d);
                lis.push(d);
            }
            sum_into(&mut adv, &ord);
            block.push(ord);
            block.extend(lis);
        }
        out.push(adv);
        out.extend(block);
    }
    out
}

fn sum_into(to: &mut Delivery, from: &Delivery) {
    for (x, y) in to.hourly.iter_mut().zip(&from.hourly) {
        *x = x.saturating_add(*y);
    }
    to.spent_day = to.spent_day.saturating_add(from.spent_day);
    to.spent_to_date = to.spent_to_date.saturating_add(from.spent_to_date);
    to.counters.add(&from.counters);
}

fn blank(level: Level, adv: &str, order: &str, li: &str, hours: usize) -> Delivery {
    Delivery {
        level,
        advertiser: adv.into(),
        order: order.into(),
        line_item: li.into(),
        budget: None,
        spent_day: Micros::ZERO,
        spent_to_date: Micros::ZERO,
        hourly: vec![Micros::ZERO; hours],
        plan: Vec::new(),
        counters: Counters::default(),
    }
}

/// The plan through `day` at the end of each hour: a lifetime budget's
/// remainder spread evenly over the days left (as the pacer does, minute by
/// minute), a daily budget whole from midnight.
fn plan(budget: Budget, flight_end: Date, day: Date, spent_before: Micros) -> Vec<Micros> {
    match budget {
        Budget::Daily(m) => vec![m; 24],
        Budget::Lifetime(total) => {
            let days_left =
                (flight_end.days_since_epoch() - day.days_since_epoch() + 1).max(1) as i128;
            let left = i128::from(total.saturating_sub(spent_before).as_i64().max(0));
            (1..=24)
                .map(|h| Micros((left * h / (days_left * 24)) as i64))
                .collect()
        }
    }
}

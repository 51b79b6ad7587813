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
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use config::{Budget, Config, Date, Micros, Timestamp};

use crate::fact::{Counters, Dim};
use crate::log::{day_file, days as days_in, dir_of};
use crate::progress::Progress;
use crate::record::Kind;

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
    #[error("from {from} is after to {to}")]
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

/// The strings of one report, by id: cubes are keyed by small integers, so
/// millions of aggregate rows fold without hashing a string each. Id 0 is
/// the empty string.
struct Strings {
    ids: HashMap<Arc<str>, u32>,
    names: Vec<Arc<str>>,
}

impl Strings {
    fn new() -> Strings {
        let mut s = Strings {
            ids: HashMap::new(),
            names: Vec::new(),
        };
        s.id("");
        s
    }

    fn id(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.ids.get(s) {
            return i;
        }
        let a: Arc<str> = s.into();
        let i = self.names.len() as u32;
        self.names.push(a.clone());
        self.ids.insert(a, i);
        i
    }

    fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |s| s)
    }
}

/// Advertiser, order, line item, creative, exchange, keyword, product,
/// audience (the order of [`crate::record`]'s fields).
type Key = [u32; KEY_LEN];
const KEY_LEN: usize = 8;

/// A row's key: one id per dimension of `--by`, at most all of them.
type RowKey = [u32; Dim::ALL.len()];

/// Maps keyed by string ids (ours, not an attacker's): hashed fast.
type Fast<K, V> = HashMap<K, V, foldhash::fast::FixedState>;
const ADVERTISER: usize = 0;
const ORDER: usize = 1;
const LINE_ITEM: usize = 2;

/// The advertiser, order and line item a charge names. The budget panel
/// sums spend as the ledger counts it: a line item's by its id, an
/// order's by the order each charge names, not by the order a line item
/// sits in now (reports probe: a removed line item's spend vanished from
/// its order's panel, a moved one's went to the order it moved to).
type Placed = [u32; 3];

fn placed(k: &Key) -> Placed {
    [k[ADVERTISER], k[ORDER], k[LINE_ITEM]]
}

/// A row of the budget panel: an advertiser, order or line item (its id),
/// and what is kept to build them: a line item under one order (for one
/// no longer in the config, shown under the orders it spent in), and the
/// charges and events of an order that name no advertiser (records from
/// before charges named one: they count for the order's advertiser).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Panel {
    Advertiser(u32),
    Order(u32),
    LineItem(u32),
    Placed(u32, u32),
    Untagged(u32),
}

impl Panel {
    /// The panel rows a charge or event of `p` counts in; `untagged`: its
    /// advertiser is none.
    fn of(p: Placed, untagged: bool) -> [Panel; 4] {
        [
            match untagged {
                true => Panel::Untagged(p[1]),
                false => Panel::Advertiser(p[0]),
            },
            Panel::Order(p[1]),
            Panel::LineItem(p[2]),
            Panel::Placed(p[1], p[2]),
        ]
    }
}

/// What one panel row sums.
#[derive(Clone, Copy, Default)]
struct PanelSums {
    counters: Counters,
    /// Spend through the last day (lifetime budgets).
    to_date: i64,
    /// Spend by hour of the last day.
    hourly: [i64; 24],
}

/// Charges summed by bid day and ad, and spend by hour of the charge per
/// day, advertiser, order and line item (the pacing chart).
#[derive(Default)]
struct Charges {
    sums: Fast<(i64, Key), ChargeSums>,
    hourly: Fast<(i64, Placed), [i64; 24]>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ChargeSums {
    wins: u64,
    spend: i64,
    over: i64,
}

/// One day's events summed by ad, and its no-bids by exchange and reason.
#[derive(Default)]
struct DayEvents {
    facts: Fast<Key, Counters>,
    no_bids: Fast<(u32, u32), u64>,
}

/// Cut by audience and not by advertiser, an audience id that two
/// advertisers use names its advertiser too (`products:pages (acme)`): the
/// rows are apart ([`Sums::key`]) and must read apart. `rows` are in the
/// order of `sums.rows`.
fn name_shared_audiences(q: &Query, sums: &Sums<'_>, strings: &Strings, rows: &mut [Row]) {
    let Some(col) = q.by.iter().position(|d| *d == Dim::Audience) else {
        return;
    };
    if q.by.contains(&Dim::Advertiser) {
        return;
    }
    let last = Dim::ALL.len() - 1;
    let mut advertisers: HashMap<u32, std::collections::HashSet<u32>> = HashMap::new();
    for key in sums.rows.keys() {
        advertisers.entry(key[col]).or_default().insert(key[last]);
    }
    for (row, key) in rows.iter_mut().zip(sums.rows.keys()) {
        if key[col] != 0 && advertisers.get(&key[col]).is_some_and(|a| a.len() > 1) {
            row.key[col] = format!("{} ({})", strings.name(key[col]), strings.name(key[last]));
        }
    }
}

/// What the report is being summed into, as parts are read.
struct Sums<'q> {
    q: &'q Query,
    from: i64,
    to: i64,
    /// Day number → its id in `strings` (for `--by day`).
    day_ids: Fast<i64, u32>,
    rows: Fast<RowKey, Counters>,
    panel: Fast<Panel, PanelSums>,
    /// The id of no advertiser (`""`).
    no_advertiser: u32,
    no_bids: Fast<u32, u64>,
}

impl Sums<'_> {
    fn key(&mut self, strings: &mut Strings, day: i64, k: &Key) -> RowKey {
        let mut out = [0u32; Dim::ALL.len()];
        for (slot, d) in out.iter_mut().zip(&self.q.by) {
            *slot = match d {
                Dim::Day => *self
                    .day_ids
                    .entry(day)
                    .or_insert_with(|| strings.id(&Date::from_days_since_epoch(day).to_string())),
                Dim::Advertiser => k[0],
                Dim::Order => k[1],
                Dim::LineItem => k[2],
                Dim::Creative => k[3],
                Dim::Exchange => k[4],
                Dim::Keyword => k[5],
                Dim::Audience => k[7],
                Dim::Product => k[6],
            };
        }
        // Audience ids are an advertiser's own: two advertisers' `pages`
        // are two audiences. Cut by audience alone, each keeps a row of
        // its own, under the last slot (never a column then).
        // Line items without audiences are one row whoever they are.
        if k[7] != 0 && self.q.by.contains(&Dim::Audience) && !self.q.by.contains(&Dim::Advertiser)
        {
            out[Dim::ALL.len() - 1] = k[0];
        }
        out
    }

    fn add(&mut self, strings: &mut Strings, day: i64, k: &Key, c: &Counters) {
        let key = self.key(strings, day, k);
        self.rows.entry(key).or_default().add(c);
        for row in Panel::of(placed(k), k[ADVERTISER] == self.no_advertiser) {
            self.panel.entry(row).or_default().counters.add(c);
        }
    }

    fn add_day(&mut self, strings: &mut Strings, day: i64, d: &DayEvents) {
        for (k, c) in &d.facts {
            self.add(strings, day, k, c);
        }
        for ((_, reason), n) in &d.no_bids {
            let e = self.no_bids.entry(*reason).or_default();
            *e = e.saturating_add(*n);
        }
    }

    fn add_charges(&mut self, strings: &mut Strings, part: &Charges) {
        for ((day, k), s) in &part.sums {
            self.add_charge(strings, *day, k, s);
        }
        for ((day, placed), h) in &part.hourly {
            self.add_hourly(*day, *placed, h);
        }
    }

    fn add_charge(&mut self, strings: &mut Strings, day: i64, k: &Key, s: &ChargeSums) {
        if day > self.to {
            return;
        }
        for row in Panel::of(placed(k), k[ADVERTISER] == self.no_advertiser) {
            let t = &mut self.panel.entry(row).or_default().to_date;
            *t = t.saturating_add(s.spend);
        }
        if day >= self.from {
            let c = Counters {
                wins: s.wins,
                spend: Micros(s.spend),
                over_delivery: Micros(s.over),
                ..Counters::default()
            };
            self.add(strings, day, k, &c);
        }
    }

    fn add_hourly(&mut self, day: i64, placed: Placed, h: &[i64; 24]) {
        if day == self.to {
            for row in Panel::of(placed, placed[0] == self.no_advertiser) {
                let slot = &mut self.panel.entry(row).or_default().hourly;
                for (x, y) in slot.iter_mut().zip(h) {
                    *x = x.saturating_add(*y);
                }
            }
        }
    }

    /// Folds a row of an aggregate file of `day` (events) straight in.
    fn visit(&mut self, strings: &mut Strings, day: i64, row: AggRow) {
        match row {
            AggRow::Fact(k, c) => self.add(strings, day, &k, &c),
            AggRow::NoBid(_, reason, n) => {
                let e = self.no_bids.entry(reason).or_default();
                *e = e.saturating_add(n);
            }
            AggRow::Charge(d, k, s) => self.add_charge(strings, d, &k, &s),
            AggRow::Hourly(d, li, h) => self.add_hourly(d, li, &h),
        }
    }
}

pub fn run(q: &Query, src: &Sources<'_>) -> Result<Report, QueryError> {
    q.check()?;
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| QueryError::Io { path, source }
    };
    let mut strings = Strings::new();
    let (from, to) = (q.from.days_since_epoch(), q.to.days_since_epoch());
    // This replica's files, then the copies of the others' (a cluster's
    // report is the sum of its replicas' files: each charge and event is
    // in exactly one of them).
    let mut days: Vec<(Date, PathBuf, u64, Option<u64>)> = Vec::new();
    let mut gens = Vec::new();
    for (i, root) in crate::log::roots(src.state).into_iter().enumerate() {
        let events_dir = dir_of(&root);
        for d in days_in(&events_dir)
            .map_err(io_err(&events_dir))?
            .into_iter()
            .filter(|d| (from..=to).contains(&d.days_since_epoch()))
        {
            // What each source's aggregate covers, looked at once: it
            // decides what is read raw (and the progress bar's length).
            // Sources only grow, so a report is as of this moment.
            let path = day_file(&events_dir, d);
            let (len, covered) = (file_len(&path), agg_prefix(&agg_path(&path), &path));
            days.push((d, path, len, covered));
        }
        match generations_of(&root, i > 0) {
            Ok(g) => gens.extend(g.into_iter().map(|g| (events_dir.clone(), g))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&root)(e)),
        }
    }
    let folded: Vec<bool> = gens
        .iter()
        .map(|(dir, g)| g.closed && fresh_agg(&charges_agg(dir, g.generation), &g.path))
        .collect();
    let raw_bytes = days
        .iter()
        .map(|(_, _, len, covered)| len.saturating_sub(covered.unwrap_or(0)))
        .chain(
            gens.iter()
                .zip(&folded)
                .filter(|(_, f)| !**f)
                .map(|((_, g), _)| g.len),
        )
        .sum();
    let mut progress = if src.progress {
        Progress::start("reading raw events", raw_bytes)
    } else {
        None
    };
    let mut raw_records = 0u64;
    let mut sums = Sums {
        q,
        from,
        to,
        day_ids: Fast::default(),
        rows: Fast::default(),
        panel: Fast::default(),
        no_advertiser: strings.id(""),
        no_bids: Fast::default(),
    };

    // Charges: every generation (spend to date needs the days before the
    // range too).
    for ((events_dir, g), &folded) in gens.iter().zip(&folded) {
        let agg = charges_agg(events_dir, g.generation);
        if folded && scan_agg(&agg, b'C', &mut strings, &mut sums, 0) {
            continue;
        }
        let mut part = Charges::default();
        let mut last = 0u64;
        ledger::journal::read_generation(&g.file, |c, at| {
            raw_records += 1;
            if let Some(p) = progress.as_mut() {
                p.advance(at - last);
            }
            last = at;
            add_charge(&mut part, &c, &mut strings);
        })
        .map_err(io_err(&g.path))?;
        if g.closed {
            // A cache: a report that cannot write it still answers. (The
            // copy of another replica's charges may have no events yet.)
            let _ = std::fs::create_dir_all(events_dir);
            if let Some(tail) = source_tail(&g.path, g.len) {
                let _ = write_atomic(&agg, &charges_bytes((g.len, tail), &part, &strings));
            }
        }
        sums.add_charges(&mut strings, &part);
    }

    // Events, day by day. An aggregate covers a prefix of its day's file:
    // all of it (folded, read as is), or the part before what came since
    // (today's, a day a late conversion was written to): then only the
    // rest is read raw, and the aggregate moves up to cover it.
    for (d, path, len, covered) in &days {
        let agg = agg_path(path);
        let dn = d.days_since_epoch();
        if *covered == Some(*len) && scan_agg(&agg, b'E', &mut strings, &mut sums, dn) {
            continue;
        }
        let (mut day, from) = match *covered {
            Some(covered) => match read_events_agg(&agg, &mut strings) {
                Some(day) => (day, covered),
                None => (DayEvents::default(), 0),
            },
            None => (DayEvents::default(), 0),
        };
        let len = read_raw_day(path, from, &mut day, &mut strings, &mut raw_records)
            .map_err(io_err(path))?;
        // A cache: a report that cannot write it still answers. None for a
        // day pruned meanwhile (its source is gone).
        if let Some(tail) = source_tail(path, len).filter(|_| len >= from && len > 0) {
            let _ = write_atomic(&agg, &events_bytes((len, tail), &day, &strings));
        }
        if let Some(p) = progress.as_mut() {
            p.advance(len.saturating_sub(from));
        }
        sums.add_day(&mut strings, dn, &day);
    }
    if let Some(p) = progress {
        p.finish();
    }

    let mut total = Counters::default();
    let mut rows: Vec<Row> = sums
        .rows
        .iter()
        .map(|(key, c)| {
            total.add(c);
            Row {
                key: key[..q.by.len()]
                    .iter()
                    .map(|&id| strings.name(id).to_owned())
                    .collect(),
                counters: *c,
            }
        })
        .collect();
    name_shared_audiences(q, &sums, &strings, &mut rows);
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    let mut no_bids: Vec<NoBidCount> = sums
        .no_bids
        .iter()
        .map(|(&reason, &count)| NoBidCount {
            reason: strings.name(reason).to_owned(),
            count,
        })
        .collect();
    no_bids.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
    let delivery = match src.config {
        Some(config) => delivery(config, q, src.now, &sums, &mut strings),
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

fn add_charge(part: &mut Charges, c: &ledger::Charge, strings: &mut Strings) {
    let day = c.day.days_since_epoch();
    let t = &c.tags;
    let key = [
        strings.id(&t.advertiser),
        strings.id(c.keys[1].id()),
        strings.id(c.keys[0].id()),
        strings.id(&t.creative),
        strings.id(&t.exchange),
        strings.id(&t.keyword),
        0,
        strings.id(&t.audience),
    ];
    let s = part.sums.entry((day, key)).or_default();
    s.wins += 1;
    s.spend = s.spend.saturating_add(c.billed.as_i64());
    s.over = s.over.saturating_add(c.over_delivery.as_i64());
    // The hour the charge was made, on the bid's day (a notice after
    // midnight counts in the last hour).
    let hour = ((t.at_ms - day * DAY_MS).clamp(0, DAY_MS - 1) / HOUR_MS) as usize;
    let h = part.hourly.entry((day, placed(&key))).or_insert([0; 24]);
    h[hour] = h[hour].saturating_add(c.billed.as_i64());
}

/// Adds a day's events from byte `from` on to `day`; returns where the
/// whole lines read end (what an aggregate of them covers).
fn read_raw_day(
    path: &Path,
    from: u64,
    day: &mut DayEvents,
    strings: &mut Strings,
    raw: &mut u64,
) -> io::Result<u64> {
    use std::io::{Seek as _, SeekFrom};
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    f.seek(SeekFrom::Start(from))?;
    let mut reader = BufReader::with_capacity(1 << 20, f);
    let mut buf = Vec::new();
    let mut consumed = from;
    loop {
        let Some((n, whole)) = ledger::journal::next_line(&mut reader, &mut buf)? else {
            return Ok(consumed);
        };
        if !whole {
            return Ok(consumed);
        }
        consumed += n as u64;
        // Lines that are not whole records (the header, a write never
        // finished, damage) count nothing.
        let line = std::str::from_utf8(&buf).unwrap_or_default();
        // The features a line may carry are no dimension: left aside, so
        // aggregates are the same with or without them.
        let Some((r, _)) =
            crate::record::parse_with(line.trim_end_matches('\n'), false, |s| strings.id(s))
        else {
            continue;
        };
        *raw += 1;
        if r.kind == Kind::NoBid {
            // The exchange and the reason (carried as the product).
            let e = day.no_bids.entry((r.key[4], r.key[6])).or_default();
            *e = e.saturating_add(r.n);
            continue;
        }
        let c = day.facts.entry(r.key).or_default();
        match r.kind {
            Kind::Bid => c.bids = c.bids.saturating_add(r.n),
            Kind::Impression => c.impressions = c.impressions.saturating_add(r.n),
            Kind::Click => c.clicks = c.clicks.saturating_add(r.n),
            Kind::View => c.views = c.views.saturating_add(r.n),
            Kind::Purchase => {
                c.purchases = c.purchases.saturating_add(r.n);
                c.sales = c.sales.saturating_add(r.amount);
            }
            Kind::NoBid => {}
        }
    }
}

// ---- aggregate files ------------------------------------------------------
//
// Binary, little-endian: a magic line, the source's length when it was
// folded, the file's own string table, then fixed-width rows of string
// indices and counters. Read whole and checked bound by bound: a damaged
// or foreign file is rebuilt from its source, never trusted.

// Version 5: keys carry the audience (8 ids, not 7). An aggregate of an
// older version is not read (its rows would be misread): it is rebuilt from
// its source, whose lines without an audience read as such.
// 6: spend by hour is kept per advertiser, order and line item.
const AGG_MAGIC: &[u8] = b"bidder-agg 6\n";

/// A 64-bit checksum of an aggregate's tables and rows, word by word: a
/// flipped bit on disk must not become a figure in a report (it is about
/// memory speed, a few tens of milliseconds for a month of aggregates).
/// `covered` (the source length the aggregate summarises) and `tail` (a
/// hash of the source's last bytes before it) are part of it: a damaged
/// length would fold a part of the source twice.
fn agg_checksum(covered: u64, tail: u64, bytes: &[u8]) -> u64 {
    let mut h = (0x6a09_e667_f3bc_c908u64 ^ bytes.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ covered;
    h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ tail;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let w = u64::from_le_bytes(w.try_into().unwrap_or_default());
        h = (h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29);
    }
    for &b in words.remainder() {
        h = (h ^ u64::from(b))
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29);
    }
    h
}

fn agg_path(day_file: &Path) -> PathBuf {
    day_file.with_extension("agg")
}

fn charges_agg(events_dir: &Path, generation: u64) -> PathBuf {
    events_dir.join(format!("charges.{generation}.agg"))
}

/// Whether the aggregate at `agg` summarises `source` as it is now: it
/// names the source's length then, and the source has not grown since.
/// A hash of the 64 bytes of `source` before `covered` (fewer at its
/// start): an aggregate says which bytes it ends on, so a source cut back
/// below it and grown again (a write that failed after reaching the
/// disk) is not taken for the one it summarised.
fn source_tail(source: &Path, covered: u64) -> Option<u64> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let from = covered.saturating_sub(64);
    let mut f = std::fs::File::open(source).ok()?;
    f.seek(SeekFrom::Start(from)).ok()?;
    let mut buf = vec![0u8; (covered - from) as usize];
    f.read_exact(&mut buf).ok()?;
    Some(agg_checksum(covered, 0, &buf))
}

/// How much of `source` the aggregate at `agg` covers, when it covers a
/// prefix of it as it is now: the source still ends those bytes the way
/// it did.
fn agg_prefix(agg: &Path, source: &Path) -> Option<u64> {
    use std::io::Read as _;
    // The magic, the kind, the length covered and the tail's hash.
    const AT: usize = AGG_MAGIC.len() + 1;
    let mut head = [0u8; AT + 8 + 8];
    std::fs::File::open(agg)
        .and_then(|mut f| f.read_exact(&mut head))
        .ok()?;
    if !head.starts_with(AGG_MAGIC) {
        return None;
    }
    let covered = u64::from_le_bytes(head[AT..AT + 8].try_into().ok()?);
    let tail = u64::from_le_bytes(head[AT + 8..AT + 16].try_into().ok()?);
    (covered <= file_len(source) && source_tail(source, covered) == Some(tail)).then_some(covered)
}

/// A day's aggregate read whole (to add what came since to it).
fn read_events_agg(path: &Path, strings: &mut Strings) -> Option<DayEvents> {
    let bytes = std::fs::read(path).ok()?;
    let (ids, body) = agg_layout(&bytes, b'E', strings)?;
    let mut day = DayEvents::default();
    fold_rows(body, b'E', &ids, strings, &mut |_, row| match row {
        AggRow::Fact(k, c) => day.facts.entry(k).or_default().add(&c),
        AggRow::NoBid(x, reason, n) => {
            let e = day.no_bids.entry((x, reason)).or_default();
            *e = e.saturating_add(n);
        }
        AggRow::Charge(..) | AggRow::Hourly(..) => {}
    });
    Some(day)
}

fn fresh_agg(agg: &Path, source: &Path) -> bool {
    agg_prefix(agg, source) == Some(file_len(source))
}

/// Writes through a temporary file and a rename: a reader sees the old
/// aggregate or the new one, and two reports folding the same day at once
/// do no harm.
fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    // Unique per process and per write: two reports folding the same day
    // at once each write their own file.
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// A file's string table: report ids → the file's indices.
struct Table {
    local: HashMap<u32, u32>,
    names: Vec<u32>,
}

impl Table {
    fn new() -> Table {
        Table {
            local: HashMap::new(),
            names: Vec::new(),
        }
    }

    fn index(&mut self, id: u32) -> u32 {
        let next = self.names.len() as u32;
        *self.local.entry(id).or_insert_with(|| {
            self.names.push(id);
            next
        })
    }

    fn header(&self, kind: u8, source: (u64, u64), strings: &Strings, body: &[u8]) -> Vec<u8> {
        let (source_len, tail) = source;
        let mut rest = Vec::with_capacity(body.len() + self.names.len() * 16 + 8);
        rest.extend_from_slice(&(self.names.len() as u32).to_le_bytes());
        for &id in &self.names {
            let s = strings.name(id).as_bytes();
            rest.extend_from_slice(&(s.len() as u32).to_le_bytes());
            rest.extend_from_slice(s);
        }
        rest.extend_from_slice(body);
        let mut out = Vec::with_capacity(rest.len() + 32);
        out.extend_from_slice(AGG_MAGIC);
        out.push(kind);
        out.extend_from_slice(&source_len.to_le_bytes());
        out.extend_from_slice(&tail.to_le_bytes());
        out.extend_from_slice(&agg_checksum(source_len, tail, &rest).to_le_bytes());
        out.extend_from_slice(&rest);
        out
    }
}

fn put_key(body: &mut Vec<u8>, table: &mut Table, k: &Key) {
    for &id in k {
        body.extend_from_slice(&table.index(id).to_le_bytes());
    }
}

fn events_bytes(source: (u64, u64), day: &DayEvents, strings: &Strings) -> Vec<u8> {
    let mut table = Table::new();
    let mut body = Vec::with_capacity(day.facts.len() * 80 + 8);
    body.extend_from_slice(&(day.facts.len() as u32).to_le_bytes());
    for (k, c) in &day.facts {
        put_key(&mut body, &mut table, k);
        for v in [c.bids, c.impressions, c.clicks, c.views, c.purchases] {
            body.extend_from_slice(&v.to_le_bytes());
        }
        body.extend_from_slice(&c.sales.as_i64().to_le_bytes());
    }
    body.extend_from_slice(&(day.no_bids.len() as u32).to_le_bytes());
    for ((x, reason), n) in &day.no_bids {
        body.extend_from_slice(&table.index(*x).to_le_bytes());
        body.extend_from_slice(&table.index(*reason).to_le_bytes());
        body.extend_from_slice(&n.to_le_bytes());
    }
    table.header(b'E', source, strings, &body)
}

fn charges_bytes(source: (u64, u64), part: &Charges, strings: &Strings) -> Vec<u8> {
    let mut table = Table::new();
    let mut body = Vec::with_capacity(part.sums.len() * 60 + part.hourly.len() * 200 + 8);
    body.extend_from_slice(&(part.sums.len() as u32).to_le_bytes());
    for ((day, k), s) in &part.sums {
        body.extend_from_slice(&day.to_le_bytes());
        put_key(&mut body, &mut table, k);
        body.extend_from_slice(&s.wins.to_le_bytes());
        body.extend_from_slice(&s.spend.to_le_bytes());
        body.extend_from_slice(&s.over.to_le_bytes());
    }
    body.extend_from_slice(&(part.hourly.len() as u32).to_le_bytes());
    for ((day, placed), h) in &part.hourly {
        body.extend_from_slice(&day.to_le_bytes());
        for &id in placed {
            body.extend_from_slice(&table.index(id).to_le_bytes());
        }
        for v in h {
            body.extend_from_slice(&v.to_le_bytes());
        }
    }
    table.header(b'C', source, strings, &body)
}

/// A row of an aggregate file.
enum AggRow {
    Fact(Key, Counters),
    /// Exchange, reason, count.
    NoBid(u32, u32, u64),
    Charge(i64, Key, ChargeSums),
    Hourly(i64, Placed, [i64; 24]),
}

/// A cursor over an aggregate's bytes; `None` past the end.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    /// A count of rows of `width` bytes that the rest can hold.
    fn count(&mut self, width: usize) -> Option<usize> {
        let n = self.u32()? as usize;
        (n.checked_mul(width)? <= self.0.len()).then_some(n)
    }
}

/// Folds the aggregate at `path` (of `kind`, for `day` when it holds
/// events) into `sums`. Its layout is checked whole before anything of it
/// is folded (sizes agree with counts, strings are UTF-8): `false`
/// (nothing folded) for a file that is damaged, foreign or unreadable,
/// which the caller then rebuilds from its source. Files are only ever
/// renamed into place whole, so a layout that holds is one we wrote.
fn scan_agg(path: &Path, kind: u8, strings: &mut Strings, sums: &mut Sums<'_>, day: i64) -> bool {
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    let Some((ids, body)) = agg_layout(&bytes, kind, strings) else {
        return false;
    };
    fold_rows(body, kind, &ids, strings, &mut |strings, row| {
        sums.visit(strings, day, row)
    });
    true
}

const FACT: usize = KEY_LEN * 4 + 6 * 8;
const NO_BID: usize = 4 + 4 + 8;
const CHARGE: usize = 8 + KEY_LEN * 4 + 3 * 8;
const HOURLY: usize = 8 + 3 * 4 + 24 * 8;

/// The string ids of an aggregate of `want` and its rows, once its sizes
/// are seen to agree.
fn agg_layout<'b>(
    bytes: &'b [u8],
    want: u8,
    strings: &mut Strings,
) -> Option<(Vec<u32>, &'b [u8])> {
    let mut c = Cursor(bytes.strip_prefix(AGG_MAGIC)?);
    if c.take(1)?[0] != want {
        return None;
    }
    let covered = c.u64()?;
    let tail = c.u64()?;
    let sum = c.u64()?;
    if agg_checksum(covered, tail, c.0) != sum {
        return None;
    }
    let n = c.count(4)?;
    let mut names = Vec::with_capacity(n);
    for _ in 0..n {
        let len = c.u32()? as usize;
        names.push(std::str::from_utf8(c.take(len)?).ok()?);
    }
    let body = c.0;
    let (first, second) = if want == b'E' {
        (FACT, NO_BID)
    } else {
        (CHARGE, HOURLY)
    };
    let n1 = c.count(first)?;
    c.take(n1 * first)?;
    let n2 = c.count(second)?;
    c.take(n2 * second)?;
    if !c.0.is_empty() {
        return None;
    }
    Some((names.into_iter().map(|s| strings.id(s)).collect(), body))
}

/// Visits the rows of a body [`agg_layout`] has checked. A string index
/// out of the table (impossible in a file we wrote) reads as empty.
fn fold_rows(
    body: &[u8],
    kind: u8,
    ids: &[u32],
    strings: &mut Strings,
    visit: &mut dyn FnMut(&mut Strings, AggRow),
) {
    let mut c = Cursor(body);
    let id = |c: &mut Cursor<'_>| {
        c.u32()
            .and_then(|i| ids.get(i as usize).copied())
            .unwrap_or(0)
    };
    let key = |c: &mut Cursor<'_>| -> Key {
        let mut k = [0u32; KEY_LEN];
        for slot in &mut k {
            *slot = id(c);
        }
        k
    };
    let (u, i) = (
        |c: &mut Cursor<'_>| c.u64().unwrap_or(0),
        |c: &mut Cursor<'_>| c.i64().unwrap_or(0),
    );
    let n = c.u32().unwrap_or(0);
    if kind == b'E' {
        for _ in 0..n {
            let k = key(&mut c);
            let counters = Counters {
                bids: u(&mut c),
                impressions: u(&mut c),
                clicks: u(&mut c),
                views: u(&mut c),
                purchases: u(&mut c),
                sales: Micros(i(&mut c)),
                ..Counters::default()
            };
            visit(strings, AggRow::Fact(k, counters));
        }
        for _ in 0..c.u32().unwrap_or(0) {
            let (x, reason) = (id(&mut c), id(&mut c));
            visit(strings, AggRow::NoBid(x, reason, u(&mut c)));
        }
    } else {
        for _ in 0..n {
            let day = i(&mut c);
            let k = key(&mut c);
            let s = ChargeSums {
                wins: u(&mut c),
                spend: i(&mut c),
                over: i(&mut c),
            };
            visit(strings, AggRow::Charge(day, k, s));
        }
        for _ in 0..c.u32().unwrap_or(0) {
            let day = i(&mut c);
            let placed = [id(&mut c), id(&mut c), id(&mut c)];
            let mut h = [0i64; 24];
            for slot in &mut h {
                *slot = i(&mut c);
            }
            visit(strings, AggRow::Hourly(day, placed, h));
        }
    }
}

// ---- delivery against budgets --------------------------------------------

fn delivery(
    config: &Config,
    q: &Query,
    now: Timestamp,
    sums: &Sums<'_>,
    strings: &mut Strings,
) -> Vec<Delivery> {
    let last = q.to.days_since_epoch();
    // Hours of the last day shown: up to now when it is today.
    let hours = if now.date().days_since_epoch() == last {
        ((now.as_millis() - last * DAY_MS) / HOUR_MS + 1).clamp(1, 24) as usize
    } else {
        24
    };
    let mut out = Vec::new();
    // Every line item of the config, by id: one that is not there any more
    // shows under the orders it spent in.
    let configured: std::collections::HashSet<u32> =
        config.line_items().map(|li| strings.id(&li.id)).collect();
    for a in &config.advertisers {
        let mut adv = blank(Level::Advertiser, &a.id, "", "", hours);
        fill(&mut adv, sums, Panel::Advertiser(strings.id(&a.id)));
        for o in &a.orders {
            add_row(&mut adv, sums, Panel::Untagged(strings.id(&o.id)));
        }
        // Its orders, each followed by its line items.
        let mut block = Vec::new();
        for o in &a.orders {
            let order = strings.id(&o.id);
            let mut ord = blank(Level::Order, &a.id, &o.id, "", hours);
            ord.budget = Some(("lifetime", o.budget));
            fill(&mut ord, sums, Panel::Order(order));
            block.push(ord);
            for li in &o.line_items {
                let mut d = blank(Level::LineItem, &a.id, &o.id, &li.id, hours);
                fill(&mut d, sums, Panel::LineItem(strings.id(&li.id)));
                d.budget = Some(match li.budget {
                    Budget::Daily(m) => ("daily", m),
                    Budget::Lifetime(m) => ("lifetime", m),
                });
                let before = d.spent_to_date.saturating_sub(d.spent_day);
                let open = li.targeting.dayparts.as_ref().map(|d| d.open_week());
                d.plan = plan(li.budget, o.flight, open.as_ref(), q.to, before);
                block.push(d);
            }
            // Line items that spent under this order and are no longer in
            // the config: what they spent is in the order's row, as the
            // ledger counts it. No budget is shown: they have none now.
            let mut gone: Vec<u32> = sums
                .panel
                .keys()
                .filter_map(|row| match *row {
                    Panel::Placed(o, li) if o == order && !configured.contains(&li) => Some(li),
                    _ => None,
                })
                .collect();
            gone.sort_unstable_by(|x, y| strings.name(*x).cmp(strings.name(*y)));
            gone.dedup();
            // What each did under this order (one that moved before it
            // left did the rest under another: review finding).
            for li in gone {
                let mut d = blank(Level::LineItem, &a.id, &o.id, strings.name(li), hours);
                fill(&mut d, sums, Panel::Placed(order, li));
                block.push(d);
            }
        }
        out.push(adv);
        out.extend(block);
    }
    out
}

/// A panel row's spend and counters, as `row` summed them.
fn fill(d: &mut Delivery, sums: &Sums<'_>, row: Panel) {
    d.hourly.iter_mut().for_each(|m| *m = Micros::ZERO);
    d.spent_day = Micros::ZERO;
    d.spent_to_date = Micros::ZERO;
    d.counters = Counters::default();
    add_row(d, sums, row);
}

/// Adds what `row` summed to a panel row.
fn add_row(d: &mut Delivery, sums: &Sums<'_>, row: Panel) {
    let Some(s) = sums.panel.get(&row) else {
        return;
    };
    let mut cum = Micros::ZERO;
    for (slot, h) in d.hourly.iter_mut().zip(s.hourly) {
        cum = cum.saturating_add(Micros(h));
        *slot = slot.saturating_add(cum);
    }
    d.spent_day = d.spent_day.saturating_add(Micros(s.hourly.iter().sum()));
    d.spent_to_date = d.spent_to_date.saturating_add(Micros(s.to_date));
    d.counters.add(&s.counters);
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
/// remainder spread evenly over the minutes left, its open ones when it is
/// day-parted (the pacer's own plan, `ledger::planned_today`, read at UTC),
/// a daily budget whole from midnight; a lifetime budget on a flight
/// without an end is not paced (`Flight::is_open_ended`): its remainder
/// whole from midnight.
fn plan(
    budget: Budget,
    flight: config::Flight,
    open: Option<&config::OpenWeek>,
    day: Date,
    spent_before: Micros,
) -> Vec<Micros> {
    match budget {
        Budget::Daily(m) => vec![m; 24],
        Budget::Lifetime(total) if flight.is_open_ended() => {
            vec![total.saturating_sub(spent_before).max(Micros::ZERO); 24]
        }
        Budget::Lifetime(total) => {
            let spent = ledger::Spent {
                lifetime: spent_before,
                ..ledger::Spent::default()
            };
            (1..=24)
                .map(|h| {
                    // The hour's last minute.
                    let at = Timestamp(day.days_since_epoch() * DAY_MS + h * HOUR_MS - 60_000);
                    let open = open.map(|w| w.open_time(at, None, flight.end));
                    ledger::planned_today(total, ledger::Plan::of(flight.end, open), &spent, at)
                })
                .collect()
        }
    }
}

/// What [`prune`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub event_days: usize,
    pub generations: usize,
}

/// Drops history past `keep_days` before `now`'s day: event days (and
/// their aggregates), and closed charge generations (and theirs) whose
/// every charge is older. The ledger's spend is in its checkpoint, not in
/// these files; what goes is what a report could show of those days.
/// Runs hourly at most: reading a closed generation to find its last
/// day costs about what a report's first read of it does.
pub fn prune(state: &Path, now: Timestamp, keep_days: u32) -> io::Result<Pruned> {
    let mut pruned = Pruned::default();
    // Copies of other replicas' files go by the same retention.
    for (i, root) in crate::log::roots(state).into_iter().enumerate() {
        prune_root(&root, i > 0, now, keep_days, &mut pruned)?;
    }
    Ok(pruned)
}

/// The charge journal generations under `root`. A copy of another
/// replica's files (`peer`) has no `charges.journal`: its newest
/// generation may be that replica's live one, still growing, so it is
/// taken as open (not folded into an aggregate, not pruned), as that
/// replica takes it.
fn generations_of(root: &Path, peer: bool) -> io::Result<Vec<ledger::journal::Generation>> {
    let mut gens = ledger::journal::generations(root)?;
    if peer {
        if let Some(newest) = gens.last_mut() {
            newest.closed = false;
        }
    }
    Ok(gens)
}

fn prune_root(
    state: &Path,
    peer: bool,
    now: Timestamp,
    keep_days: u32,
    pruned: &mut Pruned,
) -> io::Result<()> {
    let cutoff = now.date().days_since_epoch() - i64::from(keep_days);
    let events_dir = dir_of(state);
    for d in days_in(&events_dir)? {
        if d.days_since_epoch() < cutoff {
            let path = day_file(&events_dir, d);
            let _ = std::fs::remove_file(agg_path(&path));
            std::fs::remove_file(&path)?;
            pruned.event_days += 1;
        }
    }
    let gens = match generations_of(state, peer) {
        Ok(g) => g,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for g in gens.into_iter().filter(|g| g.closed) {
        let mut last = i64::MIN;
        let read = ledger::journal::read_generation_counted(&g.file, |c, _| {
            last = last.max(c.day.days_since_epoch());
        })?;
        // Lines it cannot read (another version's format, damage) may be
        // newer than any it can: dated by the file's last write, which a
        // closed generation had with its last record, where that is later.
        // Dated by what it could read alone, a generation holding today's
        // charges in another format left the reports for good.
        if read.unreadable > 0 {
            match written_day(&g.file) {
                Some(day) => last = last.max(day),
                None => continue,
            }
        }
        if last < cutoff {
            let _ = std::fs::remove_file(charges_agg(&events_dir, g.generation));
            std::fs::remove_file(&g.path)?;
            pruned.generations += 1;
        }
    }
    Ok(())
}

/// The UTC day `file` was last written, as days since the epoch; `None`
/// when the file system cannot say.
fn written_day(file: &std::fs::File) -> Option<i64> {
    let at = file.metadata().and_then(|m| m.modified()).ok()?;
    let secs = at.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    i64::try_from(secs / 86_400).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flight(start: &str, end: &str) -> config::Flight {
        config::Flight {
            start: Date::parse(start).expect("date"),
            end: Date::parse(end).expect("date"),
        }
    }

    /// The delivery report's plan is the pacer's: even to a real end, the
    /// remainder whole where the flight has none (9999-12-31).
    #[test]
    fn a_lifetime_plan_is_paced_to_a_real_end_only() {
        let day = Date::parse("2026-11-24").expect("date");
        let budget = Budget::Lifetime(Micros::from_units(700));
        let spent = Micros::from_units(100);
        let paced = plan(budget, flight("2026-11-01", "2026-11-29"), None, day, spent);
        assert_eq!(
            (paced[0], paced[23]),
            (Micros(4_166_666), Micros::from_units(100))
        );
        let open = plan(budget, flight("2026-11-01", "9999-12-31"), None, day, spent);
        assert_eq!(open, vec![Micros::from_units(600); 24]);
        // "No end" written nearer: more than twenty years on.
        let open = plan(budget, flight("2026-11-01", "2050-12-31"), None, day, spent);
        assert_eq!(open, vec![Micros::from_units(600); 24]);
        // A long flight with a real end is paced.
        let long = plan(budget, flight("2016-01-01", "2027-12-31"), None, day, spent);
        assert!(long[23] < Micros::from_units(2), "{:?}", long[23]);
    }
}

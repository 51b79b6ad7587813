//! `bidder train`: a click and conversion model from the event journal.
//!
//! One example per tracked impression whose record carries the features
//! its bid was priced with (impressions tracked before features were kept
//! have none and are left out: what they were scored with is unknown):
//!
//! - **clicked** when a click record of the same bid id exists (the bid id
//!   rides in the order id column of impression and click records);
//! - **converted** when an attributed purchase goes to it. Purchase
//!   records name the touch's ad (advertiser, order, line item, creative,
//!   ...) and the user, not the touched bid, so the purchase goes to the
//!   last impression of the same user and line item at or before the
//!   purchase, within [`CONVERSION_WINDOW_MS`] (30 days). When the touch
//!   was a click, that is the clicked impression or a later one of the
//!   same line item; either way one impression per purchase. Purchases of
//!   no user, or with no such impression among the examples, label
//!   nothing and are counted apart.
//!
//! Only impressions of bids the ledger charged are examples. Anyone who
//! sees our markup (an exchange, for every bid; a page) can call its
//! signed pixel and click URLs, won or not; learning from those would let
//! them teach the model that a site is clicked every time and raise what
//! `max_cpc` line items bid there. A charge is the exchange's own word
//! that the impression was bought (and an exchange that lies about that
//! is billing us for it).
//!
//! Examples are trained in time order, as the model will meet traffic.
//! When there are enough, the last tenth is first scored by the model
//! trained on the rest (a held-out click log loss: the model has not seen
//! them), then trained on too, so the saved model knows the latest days.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use config::Date;
use reports::log::{journal_days, read_journal_day};
use reports::record::Kind;

/// How long after an impression a purchase is labelled to it.
pub const CONVERSION_WINDOW_MS: i64 = 30 * 86_400_000;
/// Fewest examples for a held-out evaluation: fewer would say little.
const MIN_HOLDOUT_EXAMPLES: usize = 200;

/// What to train on and where the model goes.
#[derive(Clone, Debug)]
pub struct Options {
    /// The serving bidder's state directory: its `events/` are read.
    pub state: PathBuf,
    pub out: PathBuf,
    pub from: Option<Date>,
    pub to: Option<Date>,
    /// log₂ of the weights per head; `None`: [`predict::Params`]'s default.
    pub bits: Option<u8>,
    /// Show a progress bar (on a terminal only).
    pub progress: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{}: no such state directory", .0.display())]
    NoState(PathBuf),
    #[error("--from {from} is after --to {to}")]
    Range { from: Date, to: Date },
    #[error(transparent)]
    Params(#[from] predict::ParamsError),
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: no event journal days{}", .dir.display(), .range)]
    NoDays { dir: PathBuf, range: String },
    /// `not_charged` says when impressions were there but no charge of
    /// theirs: a copy of the events without the charge journal beside
    /// them (reports probe: it said only that none had features).
    #[error(
        "no tracked impressions with features of charged bids in {records} journal records \
         ({impressions} impressions without features, {not_charged} of bids the charge journal \
         has no charge of{}): nothing to train on",
        if *.not_charged > 0 { ": is STATE/charges*.journal beside STATE/events?" } else { "" }
    )]
    NoExamples {
        records: u64,
        impressions: u64,
        not_charged: u64,
    },
    #[error("writing the model: {0}")]
    Save(#[from] predict::ModelError),
}

/// What training read and learned.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    pub days: usize,
    pub records: u64,
    /// Lines that are not whole records (torn or damaged): skipped.
    pub skipped: u64,
    /// Impressions left out: no features, unreadable features, or another
    /// hash seed than the trainer's.
    pub without_features: u64,
    /// Impressions left out because the ledger has no charge of their bid
    /// (never won, or won outside the journal's retention).
    pub not_charged: u64,
    pub examples: u64,
    pub clicks: u64,
    pub conversions: u64,
    /// Purchases that labelled no example (see the module docs).
    pub unlabelled_purchases: u64,
    pub holdout: Option<Holdout>,
    /// Whether the click and the conversion head learned from enough
    /// positives to be used ([`predict::MIN_POSITIVES`]); one that did not
    /// answers its prior at serving.
    pub heads_used: [bool; 2],
}

/// The model trained on all but the last tenth, scored on that tenth.
#[derive(Clone, Debug, PartialEq)]
pub struct Holdout {
    pub examples: usize,
    /// Mean click log loss, nats.
    pub log_loss: f64,
    /// The log loss of always predicting the training click rate: what the
    /// model has to beat.
    pub base_log_loss: f64,
    /// `None` when the held-out days have no click or only clicks.
    pub auc: Option<f64>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "read {} day(s), {} record(s), {} damaged line(s) skipped",
            self.days, self.records, self.skipped
        )?;
        writeln!(
            f,
            "examples: {} ({} impression(s) without usable features and {} of bids \
             never charged left out)",
            self.examples, self.without_features, self.not_charged
        )?;
        writeln!(f, "clicks: {}", self.clicks)?;
        writeln!(
            f,
            "conversions: {} ({} purchase(s) matched no impression)",
            self.conversions, self.unlabelled_purchases
        )?;
        for ((name, used), n) in ["click", "conversion"]
            .into_iter()
            .zip(self.heads_used)
            .zip([self.clicks, self.conversions])
        {
            match used {
                true => writeln!(f, "{name} head: trained")?,
                false => writeln!(
                    f,
                    "{name} head: answers its prior ({n} {name}(s), under the {} it needs)",
                    predict::MIN_POSITIVES
                )?,
            }
        }
        match &self.holdout {
            Some(h) => {
                write!(
                    f,
                    "held-out click log loss (last {} examples): {:.5} (base rate: {:.5})",
                    h.examples, h.log_loss, h.base_log_loss
                )?;
                if let Some(auc) = h.auc {
                    write!(f, ", AUC {auc:.3}")?;
                }
                writeln!(f)
            }
            None => writeln!(
                f,
                "held-out log loss: not computed (under {MIN_HOLDOUT_EXAMPLES} examples)"
            ),
        }
    }
}

/// One tracked impression with features.
struct Example {
    at_ms: i64,
    user: u64,
    line_item: Arc<str>,
    bid: Option<u128>,
    features: predict::Features,
    converted: bool,
}

/// The ledger keys of every bid charged, from the live charge journal and
/// the closed generations kept beside it.
fn charged_bids(state: &std::path::Path) -> std::io::Result<HashSet<u64>> {
    let mut out = HashSet::new();
    // Replicas sharing state keep copies of each other's charges.
    for root in reports::log::roots(state) {
        let gens = match ledger::journal::generations(&root) {
            Ok(g) => g,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for g in gens {
            ledger::journal::read_generation(&g.file, |c, _| {
                out.insert(c.bid.0);
            })?;
        }
    }
    Ok(out)
}

/// Reads the journal, trains, writes the model; what it did.
pub fn run(opts: &Options) -> Result<Summary, TrainError> {
    if !opts.state.is_dir() {
        return Err(TrainError::NoState(opts.state.clone()));
    }
    if let (Some(from), Some(to)) = (opts.from, opts.to) {
        if from > to {
            return Err(TrainError::Range { from, to });
        }
    }
    let mut params = predict::Params::default();
    if let Some(bits) = opts.bits {
        params.bits = bits;
    }
    // Checked before the journal is read: a bad --bits fails at once.
    let mut trainer = predict::Trainer::new(params)?;

    let dir = reports::log::dir_of(&opts.state);
    let days =
        journal_days(&opts.state, opts.from, opts.to).map_err(|source| TrainError::Read {
            path: dir.clone(),
            source,
        })?;
    if days.is_empty() {
        let range = match (opts.from, opts.to) {
            (None, None) => String::new(),
            (from, to) => format!(
                " from {} to {}",
                from.map_or_else(|| "the first".into(), |d| d.to_string()),
                to.map_or_else(|| "the last".into(), |d| d.to_string())
            ),
        };
        return Err(TrainError::NoDays { dir, range });
    }

    let mut summary = Summary {
        days: days.iter().map(|d| d.day).collect::<HashSet<_>>().len(),
        ..Summary::default()
    };
    let charged = charged_bids(&opts.state).map_err(|source| TrainError::Read {
        path: opts.state.clone(),
        source,
    })?;
    let mut examples: Vec<Example> = Vec::new();
    let mut clicked: HashSet<u128> = HashSet::new();
    let mut seen: HashSet<u128> = HashSet::new();
    let mut purchases: Vec<(u64, Arc<str>, i64)> = Vec::new();
    let mut interner = reports::fact::Interner::default();
    let total = days.iter().map(|d| d.len).sum();
    let mut bar = if opts.progress {
        reports::progress::Progress::start("reading events", total)
    } else {
        None
    };
    for day in &days {
        read_journal_day(
            day,
            &mut interner,
            |r| {
                summary.records += 1;
                // The bid id rides in the order id column.
                let bid = || u128::from_str_radix(&r.order_id, 16).ok();
                match r.kind {
                    Kind::Impression => {
                        let features = r
                            .features
                            .as_deref()
                            .and_then(|f| predict::Features::from_compact(f).ok());
                        let Some(features) = features else {
                            summary.without_features += 1;
                            return;
                        };
                        let bid = bid();
                        // The ledger's key of a bid: its first 16 hex digits.
                        if !bid.is_some_and(|b| charged.contains(&((b >> 64) as u64))) {
                            summary.not_charged += 1;
                            return;
                        }
                        // Counted once per bid (the bidder dedupes, and a
                        // journal copied twice must not count twice).
                        if bid.is_some_and(|b| !seen.insert(b)) {
                            return;
                        }
                        examples.push(Example {
                            at_ms: r.at_ms,
                            user: r.user,
                            line_item: r.dims.line_item.clone(),
                            bid,
                            features,
                            converted: false,
                        });
                    }
                    Kind::Click => {
                        if let Some(b) = bid() {
                            clicked.insert(b);
                        }
                    }
                    // A basket's later lines add sales, not purchases.
                    Kind::Purchase if r.n > 0 => {
                        purchases.push((r.user, r.dims.line_item.clone(), r.at_ms));
                    }
                    Kind::Purchase | Kind::Bid | Kind::NoBid | Kind::View => {}
                }
            },
            |_| summary.skipped += 1,
            |n| {
                if let Some(b) = &mut bar {
                    b.advance(n);
                }
            },
        )
        .map_err(|source| TrainError::Read {
            path: day.path.clone(),
            source,
        })?;
    }
    if let Some(b) = bar {
        b.finish();
    }
    // Time order; stable, so one millisecond's records keep journal order.
    examples.sort_by_key(|e| e.at_ms);
    label_conversions(&mut examples, &purchases, &mut summary);

    let outcome = |e: &Example| predict::Outcome {
        clicked: e.bid.is_some_and(|b| clicked.contains(&b)),
        converted: e.converted,
    };
    let n = examples.len();
    let split = if n >= MIN_HOLDOUT_EXAMPLES {
        n - n / 10
    } else {
        n
    };
    let train_one = |t: &mut predict::Trainer, e: &Example, s: &mut Summary| {
        let o = outcome(e);
        match t.train(&e.features, &e.line_item, o) {
            Ok(()) => {
                s.examples += 1;
                s.clicks += u64::from(o.clicked);
                s.conversions += u64::from(o.converted);
            }
            // Hashed with another seed (a model of another seed served):
            // their ids mean nothing to this trainer.
            Err(predict::TrainError::ForeignFeatures) => s.without_features += 1,
        }
    };
    for e in &examples[..split] {
        train_one(&mut trainer, e, &mut summary);
    }
    if split < n && summary.examples > 0 {
        let model = trainer.snapshot();
        let tail = &examples[split..];
        let preds: Vec<f64> = tail
            .iter()
            .map(|e| model.predict(&e.features, &e.line_item).click)
            .collect();
        let labels: Vec<bool> = tail.iter().map(|e| outcome(e).clicked).collect();
        let rate = summary.clicks as f64 / summary.examples as f64;
        let base: Vec<f64> = vec![rate; tail.len()];
        if let (Ok(log_loss), Ok(base_log_loss)) = (
            predict::log_loss(&preds, &labels),
            predict::log_loss(&base, &labels),
        ) {
            summary.holdout = Some(Holdout {
                examples: tail.len(),
                log_loss,
                base_log_loss,
                auc: predict::auc(&preds, &labels).ok(),
            });
        }
    }
    for e in &examples[split..] {
        train_one(&mut trainer, e, &mut summary);
    }
    if summary.examples == 0 {
        return Err(TrainError::NoExamples {
            records: summary.records,
            impressions: summary.without_features,
            not_charged: summary.not_charged,
        });
    }
    let model = trainer.finish();
    summary.heads_used = model.heads_used();
    model.save(&opts.out)?;
    Ok(summary)
}

/// Each purchase to the last impression of its user and line item at or
/// before it, within [`CONVERSION_WINDOW_MS`]. `examples` in time order.
fn label_conversions(
    examples: &mut [Example],
    purchases: &[(u64, Arc<str>, i64)],
    summary: &mut Summary,
) {
    let mut by_key: HashMap<(u64, &str), Vec<usize>> = HashMap::new();
    for (i, e) in examples.iter().enumerate() {
        if e.user != 0 {
            by_key.entry((e.user, &e.line_item)).or_default().push(i);
        }
    }
    let mut hits = Vec::new();
    for (user, line_item, at_ms) in purchases {
        let found = by_key.get(&(*user, &**line_item)).and_then(|idx| {
            // Indices are in time order: the last one not after the
            // purchase.
            let before = idx.partition_point(|&i| examples[i].at_ms <= *at_ms);
            let i = *idx.get(before.checked_sub(1)?)?;
            (at_ms - examples[i].at_ms <= CONVERSION_WINDOW_MS).then_some(i)
        });
        match found {
            Some(i) if *user != 0 => hits.push(i),
            _ => summary.unlabelled_purchases += 1,
        }
    }
    for i in hits {
        examples[i].converted = true;
    }
}

/// `YYYY-MM-DD` of `--from`/`--to`.
pub fn parse_day(flag: &str, text: &str) -> Result<Date, String> {
    Date::parse(text).map_err(|e| format!("--{flag} {text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(at_ms: i64, user: u64, line_item: &str) -> Example {
        let features = predict::FeatureHasher::new(predict::DEFAULT_SEED)
            .features(&[(predict::field::LINE_ITEM, line_item)], &[])
            .unwrap();
        Example {
            at_ms,
            user,
            line_item: line_item.into(),
            bid: None,
            features,
            converted: false,
        }
    }

    #[test]
    fn a_purchase_labels_the_last_impression_of_its_user_and_line_item_within_30_days() {
        const DAY: i64 = 86_400_000;
        let mut examples = vec![
            example(0, 7, "tents"),
            example(DAY, 7, "tents"),
            example(2 * DAY, 7, "stoves"),
            example(3 * DAY, 8, "tents"),
            example(10 * DAY, 7, "tents"),
            example(0, 0, "tents"),
        ];
        let purchases = vec![
            // The impression of day 1, not day 0 nor the later one.
            (7, Arc::from("tents"), 5 * DAY),
            // Too late for any impression of user 8.
            (8, Arc::from("tents"), 34 * DAY),
            // No impression of that line item before it.
            (7, Arc::from("stoves"), DAY),
            // No user: labels nothing.
            (0, Arc::from("tents"), DAY),
        ];
        let mut summary = Summary::default();
        label_conversions(&mut examples, &purchases, &mut summary);
        let converted: Vec<bool> = examples.iter().map(|e| e.converted).collect();
        assert_eq!(converted, [false, true, false, false, false, false]);
        assert_eq!(summary.unlabelled_purchases, 3);
    }
}

//! The budgets a bidder last served, kept in its state directory, so that
//! the account-manager rules of [`crate::changes`] hold across a restart as
//! they hold across a reload.
//!
//! A reload compares the new config with the one in memory. A restart has
//! no config in memory: without this record, a lifetime budget cut after
//! its flight started (which a reload refuses) came back on a restart, and
//! `validate --state` passed it. Each config installed (at start and on
//! every accepted reload) rewrites the record, so it always mirrors the
//! config serving: a start and `validate --state` compare with it exactly
//! as a reload compares with the config in memory.
//!
//! It also keeps the line items that left the config, with their budgets
//! and their order's, for as long as their notices may still come: a win
//! of a removed line item is billed within the budgets it had, and its
//! order's (see `App::settle`). Before it, such a win was billed with no
//! cap at all, and an order lost a line item to a reload was billed past
//! its budget.
//!
//! Losing the file loses only this comparison (as a first start has none)
//! and the budgets of line items already removed, whose late wins are then
//! billed within their order's budget alone; so a file that cannot be read
//! is reported and set aside, never a reason to refuse a start.

use std::collections::HashMap;
use std::path::Path;

use config::{Budget, Config, Date, Flight, Micros, Timestamp};
use ledger::{Cap, Limit, SpendKey};
use serde::{Deserialize, Serialize};

/// The record's file in the state directory.
pub const FILE: &str = "served-budgets.json";

/// What the file says it is, so that another JSON file by that name is not
/// read as one.
const FORMAT: &str = "bidder-served-budgets";
const VERSION: u32 = 1;

/// Line item id → what it was last served with; and the orders no line
/// item is served in any more, within the notice lifetime after.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Served(HashMap<String, Item>, HashMap<String, Order>);

/// An order no line item is served in any more (renamed, removed, its
/// line items moved out), kept for the notice lifetime after: bids made
/// under it may still be won, and are charged by its id, so the id stays
/// its advertiser's (`changes::budget_changes`).
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    /// `None` in a record written before advertisers were kept.
    pub advertiser: Option<String>,
    pub retired_until: Timestamp,
}

/// A line item as last served.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub budget: Budget,
    /// Its order's.
    pub flight: Flight,
    pub order: String,
    /// Its advertiser's id; `None` in a record written before it was kept.
    pub advertiser: Option<String>,
    /// Its order's budget: the one in the config serving when the order
    /// still is.
    pub order_budget: Micros,
    /// When it left the config; `None` while it is in it.
    pub retired_at: Option<Timestamp>,
    /// Until when a retired line item is kept: its notices' lifetime
    /// after it left.
    pub retired_until: Option<Timestamp>,
}

impl Item {
    /// The caps a win of this line item is billed within: those it had.
    pub fn limits<'k>(&self, keys: &'k [SpendKey; 2]) -> [Limit<'k>; 2] {
        [
            Limit {
                key: &keys[0],
                cap: Cap::line_item(self.budget, self.flight),
            },
            Limit {
                key: &keys[1],
                cap: Cap::order(self.order_budget),
            },
        ]
    }
}

#[derive(Serialize, Deserialize)]
struct File {
    format: String,
    version: u32,
    line_items: Vec<Entry>,
    /// Absent in records written before it was kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    retired_orders: Vec<OrderEntry>,
}

#[derive(Serialize, Deserialize)]
struct OrderEntry {
    id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    advertiser: Option<String>,
    retired_until_ms: i64,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    id: String,
    /// `daily` or `lifetime`.
    budget: String,
    micros: i64,
    flight_start: String,
    flight_end: String,
    order: String,
    /// Absent in records written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    advertiser: Option<String>,
    order_micros: i64,
    /// Milliseconds since the epoch; absent while served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retired_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retired_until_ms: Option<i64>,
}

/// Why the record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a record of served budgets ({why})")]
    Invalid { path: String, why: String },
}

impl Served {
    /// What `config` serves, with nothing retired.
    pub fn of(config: &Config) -> Served {
        let mut out = HashMap::new();
        for (adv, order) in config
            .advertisers
            .iter()
            .flat_map(|a| a.orders.iter().map(move |o| (a, o)))
        {
            for li in &order.line_items {
                out.insert(
                    li.id.clone(),
                    Item {
                        budget: li.budget,
                        flight: order.flight,
                        order: order.id.clone(),
                        advertiser: Some(adv.id.clone()),
                        order_budget: order.budget,
                        retired_at: None,
                        retired_until: None,
                    },
                );
            }
        }
        Served(out, HashMap::new())
    }

    /// What serving `config` after `prior` makes at `now`: `config`'s line
    /// items, and those of `prior` not in it, retired (since `now` for the
    /// ones just removed) until `keep` (the notice lifetime) has passed.
    /// A retired line item's order budget is its order's in `config` when
    /// the order is still there.
    pub fn next(
        prior: &Served,
        config: &Config,
        now: Timestamp,
        keep: std::time::Duration,
    ) -> Served {
        let mut out = Served::of(config);
        let orders: HashMap<&str, Micros> = config
            .advertisers
            .iter()
            .flat_map(|a| &a.orders)
            .map(|o| (o.id.as_str(), o.budget))
            .collect();
        let keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
        for (id, item) in &prior.0 {
            if out.0.contains_key(id) {
                continue;
            }
            let retired_at = item.retired_at.unwrap_or(now);
            let retired_until = item
                .retired_until
                .unwrap_or(Timestamp(now.as_millis().saturating_add(keep_ms)));
            if now >= retired_until {
                continue;
            }
            let order_budget = orders
                .get(item.order.as_str())
                .copied()
                .unwrap_or(item.order_budget);
            out.0.insert(
                id.clone(),
                Item {
                    order_budget,
                    retired_at: Some(retired_at),
                    retired_until: Some(retired_until),
                    ..item.clone()
                },
            );
        }
        // Orders no entry names any more (renamed, or their line items all
        // moved to other orders): kept for the notice lifetime, as their
        // line items would have been (review finding: an order renamed,
        // then its id given to another advertiser's, went unseen).
        let named: std::collections::HashSet<&str> =
            out.0.values().map(|i| i.order.as_str()).collect();
        let until = Timestamp(now.as_millis().saturating_add(keep_ms));
        let mut retired: HashMap<String, Order> = HashMap::new();
        let left = prior
            .0
            .values()
            .filter(|i| i.retired_until.is_none())
            .map(|i| {
                (
                    &i.order,
                    Order {
                        advertiser: i.advertiser.clone(),
                        retired_until: until,
                    },
                )
            })
            .chain(prior.1.iter().map(|(id, o)| (id, o.clone())));
        for (id, order) in left {
            if named.contains(id.as_str()) || now >= order.retired_until {
                continue;
            }
            let kept = retired.entry(id.clone()).or_insert_with(|| order.clone());
            if order.retired_until > kept.retired_until {
                *kept = order;
            }
        }
        out.1 = retired;
        out
    }

    /// Order `id`, if no line item is served in it any more and it left
    /// within the notice lifetime at `now`.
    pub fn retired_order(&self, id: &str, now: Timestamp) -> Option<&Order> {
        self.1.get(id).filter(|o| now < o.retired_until)
    }

    /// Line item `id` as it was served, served still or retired within
    /// the notice lifetime at `now`.
    fn item(&self, id: &str, now: Timestamp) -> Option<&Item> {
        self.0
            .get(id)
            .filter(|i| i.retired_until.is_none_or(|until| now < until))
    }

    /// The budget and flight line item `id` was served with, served still
    /// or retired within the notice lifetime at `now`: what a change is
    /// compared with.
    pub fn get(&self, id: &str, now: Timestamp) -> Option<(Budget, Flight)> {
        self.item(id, now).map(|i| (i.budget, i.flight))
    }

    /// The line items served (or retired within the notice lifetime at
    /// `now`) under order `order`, by id: each carries the order's budget
    /// and flight as served.
    pub fn of_order<'s>(&'s self, order: &str, now: Timestamp) -> Vec<(&'s str, &'s Item)> {
        let mut out: Vec<(&str, &Item)> = self
            .0
            .iter()
            .filter(|(id, i)| i.order == order && self.item(id, now).is_some())
            .map(|(id, i)| (id.as_str(), i))
            .collect();
        // Those still served first: a retired one's order budget is the
        // one it had when it left, unless the order was still served.
        // Then the last to leave: its order budget is the latest.
        out.sort_by_key(|(id, i)| {
            (
                i.retired_at.is_some(),
                std::cmp::Reverse(i.retired_at.map(|t| t.as_millis())),
                *id,
            )
        });
        out
    }

    /// The order line item `id` was served in, served still or retired
    /// within the notice lifetime at `now`.
    pub fn order_of(&self, id: &str, now: Timestamp) -> Option<&str> {
        self.item(id, now).map(|i| i.order.as_str())
    }

    /// The advertiser line item `id` was served for, as [`Self::order_of`]
    /// (`None` also where the record predates advertisers in it).
    pub fn advertiser_of(&self, id: &str, now: Timestamp) -> Option<&str> {
        self.item(id, now).and_then(|i| i.advertiser.as_deref())
    }

    /// Line item `id` as it was served, if it left the config within the
    /// notice lifetime at `now`.
    pub fn retired(&self, id: &str, now: Timestamp) -> Option<&Item> {
        self.item(id, now).filter(|i| i.retired_at.is_some())
    }

    /// The record in `dir`: empty when there is none yet.
    pub fn read(dir: &Path) -> Result<Served, ReadError> {
        let path = dir.join(FILE);
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Served::default()),
            Err(source) => {
                return Err(ReadError::Io {
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        let invalid = |why: String| ReadError::Invalid {
            path: path.display().to_string(),
            why,
        };
        let file: File = serde_json::from_slice(&text).map_err(|e| invalid(e.to_string()))?;
        if file.format != FORMAT || file.version != VERSION {
            return Err(invalid(format!(
                "format {:?} version {}, this bidder reads {FORMAT:?} version {VERSION}",
                file.format, file.version
            )));
        }
        let mut out = HashMap::new();
        for e in file.line_items {
            let amount = Micros(e.micros);
            let budget = match e.budget.as_str() {
                "daily" => Budget::Daily(amount),
                "lifetime" => Budget::Lifetime(amount),
                other => {
                    return Err(invalid(format!(
                        "line item {:?}: budget {other:?} is neither daily nor lifetime",
                        e.id
                    )))
                }
            };
            let date = |s: &str| {
                Date::parse(s).map_err(|err| invalid(format!("line item {:?}: {err}", e.id)))
            };
            let flight = Flight {
                start: date(&e.flight_start)?,
                end: date(&e.flight_end)?,
            };
            out.insert(
                e.id,
                Item {
                    budget,
                    flight,
                    order: e.order,
                    advertiser: e.advertiser,
                    order_budget: Micros(e.order_micros),
                    retired_at: e.retired_at_ms.map(Timestamp),
                    retired_until: e.retired_until_ms.map(Timestamp),
                },
            );
        }
        let orders = file
            .retired_orders
            .into_iter()
            .map(|o| {
                (
                    o.id,
                    Order {
                        advertiser: o.advertiser,
                        retired_until: Timestamp(o.retired_until_ms),
                    },
                )
            })
            .collect();
        Ok(Served(out, orders))
    }

    /// Replaces the record in `dir` with this one, through a temporary file
    /// and a rename: a crash leaves the old record or the new one.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let mut line_items: Vec<Entry> = self
            .0
            .iter()
            .map(|(id, item)| Entry {
                id: id.clone(),
                budget: match item.budget {
                    Budget::Daily(_) => "daily",
                    Budget::Lifetime(_) => "lifetime",
                }
                .to_string(),
                micros: item.budget.amount().as_i64(),
                flight_start: item.flight.start.to_string(),
                flight_end: item.flight.end.to_string(),
                order: item.order.clone(),
                advertiser: item.advertiser.clone(),
                order_micros: item.order_budget.as_i64(),
                retired_at_ms: item.retired_at.map(Timestamp::as_millis),
                retired_until_ms: item.retired_until.map(Timestamp::as_millis),
            })
            .collect();
        // The same config writes the same bytes.
        line_items.sort_by(|a, b| a.id.cmp(&b.id));
        let mut retired_orders: Vec<OrderEntry> = self
            .1
            .iter()
            .map(|(id, o)| OrderEntry {
                id: id.clone(),
                advertiser: o.advertiser.clone(),
                retired_until_ms: o.retired_until.as_millis(),
            })
            .collect();
        retired_orders.sort_by(|a, b| a.id.cmp(&b.id));
        let file = File {
            format: FORMAT.to_string(),
            version: VERSION,
            line_items,
            retired_orders,
        };
        let mut bytes = serde_json::to_vec_pretty(&file).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        ledger::journal::replace_file(dir, FILE, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(name: &str) -> std::path::PathBuf {
        crate::testing::tempdir("served", name)
    }

    fn served() -> Served {
        let flight = Flight {
            start: Date::parse("2026-11-01").unwrap(),
            end: Date::parse("2026-12-31").unwrap(),
        };
        let item = |budget, retired_at: Option<Timestamp>| Item {
            budget,
            flight,
            order: "o \"1\"".to_string(),
            advertiser: retired_at.is_none().then(|| "adv".to_string()),
            order_budget: Micros(50_000_000_000),
            retired_at,
            retired_until: retired_at.map(|t| Timestamp(t.as_millis() + 86_400_000)),
        };
        let items = HashMap::from([
            (
                "li-a".to_string(),
                item(Budget::Lifetime(Micros(30_000_000_000)), None),
            ),
            (
                "li \"b\"\tc".to_string(),
                item(
                    Budget::Daily(Micros(1_000_000)),
                    Some(Timestamp(1_795_000_000_000)),
                ),
            ),
        ]);
        let orders = HashMap::from([
            (
                "o-old".to_string(),
                Order {
                    advertiser: Some("adv".to_string()),
                    retired_until: Timestamp(1_795_000_000_000),
                },
            ),
            (
                "o-older".to_string(),
                Order {
                    advertiser: None,
                    retired_until: Timestamp(1_795_000_000_001),
                },
            ),
        ]);
        Served(items, orders)
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let dir = tempdir("round-trip");
        let s = served();
        s.write(&dir).unwrap();
        assert_eq!(Served::read(&dir).unwrap(), s);
        assert!(!dir.join(format!("{FILE}.tmp")).exists());
    }

    #[test]
    fn line_items_that_leave_are_kept_retired_for_the_notice_lifetime() {
        let config = |items: &str, order_budget: &str| {
            let dir = tempdir(&format!("next-{}", items.len()));
            std::fs::write(
                dir.join("shop.yaml"),
                format!(
                    r#"advertiser: {{ id: shop, name: Shop, domains: [shop.example], categories: [IAB22] }}
creatives:
  - {{ id: b300, format: display, size: 300x250, image_url: "https://cdn.shop.example/b.png", click_url: "https://shop.example/" }}
orders:
  - id: o1
    service: self_service
    budget: {order_budget}
    flight: {{ start: 2026-01-01, end: 2026-12-31 }}
    line_items:
{items}"#
                ),
            )
            .unwrap();
            config::load_dir(&dir).unwrap()
        };
        let a = "      - { id: a, media: display, cpm: 1.00, budget: { daily: 5.00 }, creatives: [b300] }\n";
        let b = "      - { id: b, media: display, cpm: 1.00, budget: { lifetime: 9.00 }, creatives: [b300] }\n";
        let day = std::time::Duration::from_secs(24 * 3600);
        let t0 = Timestamp(1_790_000_000_000);
        let both = Served::of(&config(&format!("{a}{b}"), "100.00"));
        // b leaves: kept with its budget, and its order's as it is now.
        let next = Served::next(&both, &config(a, "80.00"), t0, day);
        let b_item = next.retired("b", t0).expect("b retired");
        assert_eq!(b_item.budget, Budget::Lifetime(Micros(9_000_000)));
        assert_eq!(b_item.order_budget, Micros(80_000_000));
        assert_eq!(b_item.retired_at, Some(t0));
        // Added back, it is compared with the budget it left with.
        assert_eq!(
            next.get("b", t0).map(|(b, _)| b),
            Some(Budget::Lifetime(Micros(9_000_000)))
        );
        assert_eq!(
            next.get("a", t0).map(|(b, _)| b),
            Some(Budget::Daily(Micros(5_000_000)))
        );
        // A later change keeps when it left; past the lifetime it goes.
        let later = Timestamp(t0.as_millis() + 3_600_000);
        let again = Served::next(&next, &config(a, "70.00"), later, day);
        assert_eq!(
            again.retired("b", later).and_then(|i| i.retired_at),
            Some(t0)
        );
        assert_eq!(
            again.retired("b", later).map(|i| i.order_budget),
            Some(Micros(70_000_000))
        );
        // Past its notices' lifetime it no longer counts, whether or not a
        // config was installed since (a record read at a start), and the
        // next install drops it.
        let gone = Timestamp(t0.as_millis() + 24 * 3_600_000);
        assert!(again.get("b", gone).is_none() && again.retired("b", gone).is_none());
        assert!(!Served::next(&again, &config(a, "70.00"), gone, day)
            .0
            .contains_key("b"));
        // Back in the config, it is served again.
        let back = Served::next(&again, &config(&format!("{a}{b}"), "70.00"), later, day);
        assert!(back.retired("b", later).is_none() && back.get("b", later).is_some());
    }

    #[test]
    fn no_record_is_an_empty_one() {
        let dir = tempdir("none");
        assert_eq!(Served::read(&dir).unwrap(), Served::default());
    }

    #[test]
    fn a_file_that_is_not_a_record_is_refused_with_its_path() {
        let dir = tempdir("invalid");
        for text in [
            "not json",
            r#"{"format":"other","version":1,"line_items":[]}"#,
            r#"{"format":"bidder-served-budgets","version":2,"line_items":[]}"#,
            r#"{"format":"bidder-served-budgets","version":1,"line_items":[{"id":"x","budget":"weekly","micros":1,"flight_start":"2026-01-01","flight_end":"2026-01-02","order":"o","order_micros":1}]}"#,
            r#"{"format":"bidder-served-budgets","version":1,"line_items":[{"id":"x","budget":"daily","micros":1,"flight_start":"2026-13-01","flight_end":"2026-01-02","order":"o","order_micros":1}]}"#,
        ] {
            std::fs::write(dir.join(FILE), text).unwrap();
            let e = Served::read(&dir).unwrap_err().to_string();
            assert!(
                e.contains(FILE) && e.contains("not a record"),
                "{text}: {e}"
            );
        }
    }
}

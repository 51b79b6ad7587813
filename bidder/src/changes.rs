//! The account-manager rules for changing money while a config is live:
//! checked on reload against the config being served.
//!
//! - a daily budget may go up or down (a daily budget lowered under today's
//!   spend simply stops bidding for today: nothing is un-spent);
//! - a lifetime budget may only be increased once its flight has started
//!   or it has spent (with the flight alone, moving it past today, cutting
//!   the budget and moving it back went around the rule in three reloads);
//! - a line item's budget type (daily or lifetime) never changes once set,
//!   even through removing the line item and adding it back: once it has
//!   spent, the ledger remembers the type it spent under.
//!
//! A reload compares with the config in memory; a start (and `validate
//! --state`) with the record of what was last served
//! ([`crate::served`]), which mirrors it: the rules hold across a restart
//! as across a reload.

use std::path::Path;

use config::{Budget, Config, Flight, Problem, Timestamp};
use ledger::BudgetKind;

/// Problems with how `new` changes the budgets of `old` (the config
/// serving, if any; else `served`, the record of the config last served
/// and of the line items that left it within the notice lifetime) and of
/// the budget types spent under (`spent_as`: the ledger's memory, or a
/// state directory's), at `now`.
pub fn budget_changes(
    old: Option<&Config>,
    served: Option<&crate::served::Served>,
    new: &Config,
    now: Timestamp,
    spent_as: &dyn Fn(&str) -> Option<BudgetKind>,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    for adv in &new.advertisers {
        for order in &adv.orders {
            if let Some(message) = given_away(
                &format!("order \"{}\"", order.id),
                advertiser_of_order(old, served, &order.id, now),
                &adv.id,
            ) {
                problems.push(problem(&adv.file, order.at, message));
            }
            if let Some(message) = order_cut(old, served, order, now, spent_as) {
                problems.push(problem(&adv.file, order.budget_at, message));
            }
            for li in &order.line_items {
                if let Some(message) = given_away(
                    &format!("line item \"{}\"", li.id),
                    advertiser_of_line_item(old, served, &li.id, now),
                    &adv.id,
                ) {
                    problems.push(problem(&adv.file, li.at, message));
                } else if let Some(message) = moved(old, served, &order.id, &li.id, now, spent_as) {
                    problems.push(problem(&adv.file, li.at, message));
                }
                let remembered = spent_as(&li.id).map(|k| match k {
                    // The amount is not what is compared: only the type.
                    BudgetKind::Daily => (Budget::Daily(li.budget.amount()), None),
                    BudgetKind::Lifetime => (Budget::Lifetime(li.budget.amount()), None),
                });
                // Where the budget compared with comes from, for the
                // message: a start has no config in memory, and a line item
                // removed and added back is compared with what it had.
                let recorded = |b, f, retired: bool| {
                    let from = match (old.is_some(), retired) {
                        (_, true) => {
                            " (as it was when it left the config: a removed line item \
                                       keeps its budget for the notice lifetime)"
                        }
                        (false, false) => {
                            " (as this state directory last served it: \
                                           served-budgets.json)"
                        }
                        (true, false) => "",
                    };
                    (b, Some(f), from)
                };
                let Some((old_li, old_flight, from)) = old
                    .and_then(|old| find(old, &li.id))
                    .map(|(o, l)| (l.budget, Some(o.flight), ""))
                    .or_else(|| {
                        let s = served?;
                        let (b, f) = s.get(&li.id, now)?;
                        Some(recorded(b, f, s.retired(&li.id, now).is_some()))
                    })
                    .or(remembered.map(|(b, f)| (b, f, "")))
                else {
                    continue;
                };
                let message = match (old_li, li.budget) {
                    (Budget::Daily(_), Budget::Lifetime(_)) | (Budget::Lifetime(_), Budget::Daily(_)) => {
                        Some(format!(
                            "line item \"{}\": the budget type cannot change once set (it was {}{from}, now {}); \
                             end this line item and create a new one instead",
                            li.id,
                            kind(old_li),
                            kind(li.budget)
                        ))
                    }
                    // Started: its flight as it was, or, whatever the
                    // flights say, spent under this type (moving the
                    // flight to start later, cutting, and moving it back
                    // went around the flight alone in three reloads).
                    (Budget::Lifetime(was), Budget::Lifetime(now_budget))
                        if now_budget < was
                            && (old_flight.is_some_and(|f: Flight| now >= f.start.start())
                                || spent_as(&li.id) == Some(BudgetKind::Lifetime)) =>
                    {
                        Some(format!(
                            "line item \"{}\": a lifetime budget can only be increased once its flight has \
                             started or it has spent (it was {}{from}, now {})",
                            li.id,
                            was.grouped(),
                            now_budget.grouped()
                        ))
                    }
                    _ => None,
                };
                if let Some(message) = message {
                    problems.push(problem(&adv.file, li.budget_at, message));
                }
            }
        }
    }
    problems
}

/// A line item that has spent stays in its order: its spend, and the holds
/// of its bids still in flight, are counted under that order's budget,
/// which a move would leave behind. Moved (or its order renamed, which
/// moves all of its line items), it started afresh under the new order's
/// budget, which then showed in reports with spend past it, and its late
/// wins were billed to an order that never held them (budgets probe). As
/// a budget's type, the order is compared with the config serving, else
/// the record of the one last served (a removed line item's for the
/// notice lifetime).
fn moved(
    old: Option<&Config>,
    served: Option<&crate::served::Served>,
    order: &str,
    li: &str,
    now: Timestamp,
    spent_as: &dyn Fn(&str) -> Option<BudgetKind>,
) -> Option<String> {
    let was = old
        .and_then(|c| find(c, li))
        .map(|(o, _)| o.id.as_str())
        .or_else(|| served?.order_of(li, now))?;
    (was != order && spent_as(li).is_some()).then(|| {
        format!(
            "line item \"{li}\": it has spent under order \"{was}\" and cannot move to order \
             \"{order}\"; end it and create a new line item in \"{order}\" instead"
        )
    })
}

/// Why `what` (`line item "li"`, `order "o"`), served for advertiser
/// `was`, may not become `advertiser`'s. Line item and order ids stay
/// their advertiser's while served and for the notice lifetime after they
/// left, since bids made under them may still be won, and a win is
/// charged by those ids. Given to another advertiser meanwhile (a line
/// item moved into its order, an order moved to its file, an id reused
/// there), those wins were charged to the new owner's counters, uncapped
/// (money probe: 2.00 charged on a 1.00 daily budget), even before
/// anything was spent, which is all [`moved`] looks at. An advertiser's
/// own id counts as a change too: a rename cannot be told from an
/// advertiser removed and another given its ids (third review: that let
/// late wins through uncapped again), and the `name` is what may change.
fn given_away(what: &str, was: Option<&str>, advertiser: &str) -> Option<String> {
    let was = was?;
    (was != advertiser).then(|| {
        format!(
            "{what}: it was advertiser \"{was}\"'s and cannot become advertiser \
             \"{advertiser}\"'s while wins of the bids made under it may still come (they are \
             charged by its id, for the notice lifetime after it left): keep the advertiser's id \
             (its name may change), or give this a new id"
        )
    })
}

/// The advertiser line item `li` was served for: the config serving's,
/// else the record's (none in a record written before it kept them).
fn advertiser_of_line_item<'c>(
    old: Option<&'c Config>,
    served: Option<&'c crate::served::Served>,
    li: &str,
    now: Timestamp,
) -> Option<&'c str> {
    old.and_then(|c| {
        c.advertisers
            .iter()
            .find(|a| {
                a.orders
                    .iter()
                    .any(|o| o.line_items.iter().any(|l| l.id == li))
            })
            .map(|a| a.id.as_str())
    })
    .or_else(|| served?.advertiser_of(li, now))
}

/// The advertiser order `order` was served for, as
/// [`advertiser_of_line_item`] (the record knows it by its line items).
fn advertiser_of_order<'c>(
    old: Option<&'c Config>,
    served: Option<&'c crate::served::Served>,
    order: &str,
    now: Timestamp,
) -> Option<&'c str> {
    let in_old = old.and_then(|c| {
        c.advertisers
            .iter()
            .find(|a| a.orders.iter().any(|o| o.id == order))
            .map(|a| a.id.as_str())
    });
    in_old
        .or_else(|| {
            served?
                .of_order(order, now)
                .into_iter()
                .find_map(|(_, item)| item.advertiser.as_deref())
        })
        .or_else(|| served?.retired_order(order, now)?.advertiser.as_deref())
}

/// An order's budget is its total over the flight, a lifetime budget: once
/// the flight has started or the order has spent, it may only grow, as a
/// line item's lifetime budget may (a cut below what was spent left the
/// order's reports showing spend past its budget, while the same cut of a
/// line item was refused). The order as served is the one in `old`, else
/// the record's (any of its line items carries its budget and flight).
/// Spent means one of its line items as served, or that left it within
/// the notice lifetime, has spent: not one just moved in from another
/// order, whose spend is that order's (review finding: moving a line item
/// that spent into an order not started yet froze that order's budget).
fn order_cut(
    old: Option<&Config>,
    served: Option<&crate::served::Served>,
    order: &config::Order,
    now: Timestamp,
    spent_as: &dyn Fn(&str) -> Option<BudgetKind>,
) -> Option<String> {
    let old_order = old.and_then(|c| {
        c.advertisers
            .iter()
            .flat_map(|a| &a.orders)
            .find(|o| o.id == order.id)
    });
    let (was, flight, from, old_items): (_, _, _, Vec<&str>) = match old_order {
        Some(o) => (
            o.budget,
            o.flight,
            "",
            o.line_items.iter().map(|li| li.id.as_str()).collect(),
        ),
        None => {
            let items = served?.of_order(&order.id, now);
            let first = items.first()?;
            (
                first.1.order_budget,
                first.1.flight,
                // A reload has the config serving: the order left it.
                match old {
                    Some(_) => {
                        " (as it was when it left the config: a removed order's line items \
                         keep its budget for the notice lifetime)"
                    }
                    None => " (as this state directory last served it: served-budgets.json)",
                },
                items.iter().map(|(id, _)| *id).collect(),
            )
        }
    };
    // Its line items as served, and those that left it within the notice
    // lifetime (review finding: one removed while the flight was moved
    // later, then added back with the cut, slipped through on reload).
    let spent = || {
        let retired = served
            .map(|s| s.of_order(&order.id, now))
            .unwrap_or_default();
        old_items
            .iter()
            .copied()
            .chain(retired.iter().map(|(id, _)| *id))
            .any(|id| spent_as(id).is_some())
    };
    (order.budget < was && (now >= flight.start.start() || spent())).then(|| {
        format!(
            "order \"{}\": its budget can only be increased once its flight has started or it \
             has spent (it was {}{from}, now {})",
            order.id,
            was.grouped(),
            order.budget.grouped()
        )
    })
}

fn kind(b: Budget) -> &'static str {
    match b {
        Budget::Daily(_) => "daily",
        Budget::Lifetime(_) => "lifetime",
    }
}

/// Line item `id` of `config`, with its order.
fn find<'c>(config: &'c Config, id: &str) -> Option<(&'c config::Order, &'c config::LineItem)> {
    config
        .advertisers
        .iter()
        .flat_map(|a| &a.orders)
        .find_map(|o| o.line_items.iter().find(|li| li.id == id).map(|li| (o, li)))
}

/// A problem of `file` at `at`: where the order or line item, or its
/// budget's amount, is written, as the parser placed it. It was found by
/// searching the text for the id, which a creative of the same id, or a
/// line item whose `budget` came before its `id`, led to another order's
/// budget (account-manager probe: told to raise the wrong budget).
fn problem(file: &Path, at: config::At, message: String) -> Problem {
    Problem {
        file: file.to_path_buf(),
        line: at.line,
        column: at.column,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(orders: &[String]) -> Config {
        let orders = orders.concat();
        let text = format!(
            "advertiser: {{ id: shop, name: Shop, domains: [shop.example], categories: [IAB22] }}\n\
             creatives:\n  - {{ id: b300, format: display, size: 300x250, image_url: \"https://cdn.shop.example/b.png\", click_url: \"https://shop.example/\" }}\n\
             orders:\n{orders}"
        );
        match config::load_files(&[("shop.yaml".into(), text)]) {
            Ok(c) => c,
            Err(p) => panic!("{p}"),
        }
    }

    fn order(id: &str, budget: &str, start: &str, items: &[&str]) -> String {
        let mut out = format!(
            "  - id: {id}\n    service: self_service\n    budget: {budget}\n    flight: {{ start: {start}, end: 2030-12-31 }}\n    line_items:\n"
        );
        for li in items {
            out.push_str(&format!(
                "      - {{ id: {li}, media: display, cpm: 1.00, budget: {{ daily: 10.00 }}, creatives: [b300] }}\n"
            ));
        }
        out
    }

    /// Two advertisers, `shop` with `shop_orders` and `other` with
    /// `other_orders`.
    fn two(shop_orders: &[String], other_orders: &[String]) -> Config {
        two_as("shop", shop_orders, other_orders)
    }

    /// [`two`] with the first advertiser's id `shop` (its file still
    /// `shop.yaml`).
    fn two_as(shop: &str, shop_orders: &[String], other_orders: &[String]) -> Config {
        let file = |adv: &str, orders: &[String]| {
            format!(
                "advertiser: {{ id: {adv}, name: N, domains: [{adv}.example], categories: [IAB22] }}\n\
                 creatives:\n  - {{ id: {adv}-b300, format: display, size: 300x250, image_url: \"https://cdn.{adv}.example/b.png\", click_url: \"https://{adv}.example/\" }}\n\
                 orders:\n{}",
                // Creative ids are unique across advertisers.
                orders.concat().replace("[b300]", &format!("[{adv}-b300]"))
            )
        };
        let files = [
            ("shop.yaml".into(), file(shop, shop_orders)),
            ("other.yaml".into(), file("other", other_orders)),
        ];
        match config::load_files(&files) {
            Ok(c) => c,
            Err(p) => panic!("{p}"),
        }
    }

    /// A refused change points at the amount it is about, as the parser
    /// placed it: not at the first `budget:` after the first `id:` of the
    /// same text, which a creative sharing the line item's id, or a line
    /// item writing its budget before its id, sent to another order's
    /// budget (account-manager probe).
    #[test]
    fn a_refused_budget_change_points_at_its_amount() {
        let text = |li_budget: &str, order_budget: &str| {
            format!(
                "advertiser: {{ id: shop, name: Shop, domains: [shop.example], categories: [IAB22] }}\n\
                 creatives:\n\
                 \x20 - {{ id: li, format: display, size: 300x250, image_url: \"https://cdn.shop.example/b.png\", click_url: \"https://shop.example/\" }}\n\
                 orders:\n\
                 \x20 - id: first\n\
                 \x20   service: self_service\n\
                 \x20   budget: {order_budget}\n\
                 \x20   flight: {{ start: 2026-11-01, end: 2026-12-31 }}\n\
                 \x20   line_items:\n\
                 \x20     - budget: {{ lifetime: {li_budget} }}\n\
                 \x20       id: li\n\
                 \x20       media: display\n\
                 \x20       cpm: 1.00\n\
                 \x20       creatives: [li]\n\
                 \x20 - id: second\n\
                 \x20   service: self_service\n\
                 \x20   budget: 500.00\n\
                 \x20   flight: {{ start: 2026-11-01, end: 2026-12-31 }}\n\
                 \x20   line_items:\n\
                 \x20     - {{ id: li2, media: display, cpm: 1.00, budget: {{ daily: 10.00 }}, creatives: [li] }}\n"
            )
        };
        let load = |t: String| match config::load_files(&[("shop.yaml".into(), t)]) {
            Ok(c) => c,
            Err(p) => panic!("{p}"),
        };
        let now = config::Date::parse("2026-12-06").unwrap().start();
        let old = load(text("300.00", "1000.00"));
        let cut = text("200.00", "900.00");
        let p = budget_changes(Some(&old), None, &load(cut.clone()), now, &|_| None);
        assert_eq!(p.len(), 2, "{p:?}");
        let place = |needle: &str| {
            let (n, line) = cut
                .lines()
                .enumerate()
                .find(|(_, l)| l.contains(needle))
                .unwrap();
            ((n + 1) as u64, (line.find(needle).unwrap() + 1) as u64)
        };
        let order = p.iter().find(|p| p.message.starts_with("order")).unwrap();
        assert_eq!((order.line, order.column), place("900.00"), "{order:?}");
        let li = p
            .iter()
            .find(|p| p.message.starts_with("line item"))
            .unwrap();
        assert_eq!((li.line, li.column), place("200.00"), "{li:?}");
    }

    /// A line item id stays its advertiser's while served and for the
    /// notice lifetime after, spent or not: its bids' wins are charged by
    /// id (money probe). Within the advertiser, an unspent line item still
    /// moves between orders.
    #[test]
    fn a_line_item_id_is_not_given_to_another_advertiser() {
        let now = config::Date::parse("2026-12-06").unwrap().start();
        let nothing_spent = |_: &str| None;
        let old = two(
            &[order("x", "1000.00", "2026-11-01", &["li-a", "li-c"])],
            &[order("z", "1000.00", "2026-11-01", &["li-b"])],
        );
        let given = two(
            &[order("x", "1000.00", "2026-11-01", &["li-a"])],
            &[order("z", "1000.00", "2026-11-01", &["li-b", "li-c"])],
        );
        let refused = |p: Vec<Problem>| {
            assert_eq!(p.len(), 1, "{p:?}");
            assert!(
                p[0].message.starts_with(
                    "line item \"li-c\": it was advertiser \"shop\"'s and cannot become \
                     advertiser \"other\"'s"
                ),
                "{p:?}"
            );
            assert!(p[0].file.ends_with("other.yaml"), "{p:?}");
        };
        refused(budget_changes(
            Some(&old),
            None,
            &given,
            now,
            &nothing_spent,
        ));
        // At a start, from the record of what was served; and after it was
        // removed, for the notice lifetime.
        let keep = std::time::Duration::from_secs(3_600);
        let served = crate::served::Served::of(&old);
        refused(budget_changes(
            None,
            Some(&served),
            &given,
            now,
            &nothing_spent,
        ));
        let removed = two(
            &[order("x", "1000.00", "2026-11-01", &["li-a"])],
            &[order("z", "1000.00", "2026-11-01", &["li-b"])],
        );
        let retired = crate::served::Served::next(&served, &removed, now, keep);
        refused(budget_changes(
            Some(&removed),
            Some(&retired),
            &given,
            now,
            &nothing_spent,
        ));
        let later = Timestamp(now.as_millis() + 3_600_000);
        let p = budget_changes(
            Some(&removed),
            Some(&retired),
            &given,
            later,
            &nothing_spent,
        );
        assert!(p.is_empty(), "its notices have expired: {p:?}");
        // Another order of the same advertiser: an unspent move passes.
        let within = two(
            &[
                order("x", "1000.00", "2026-11-01", &["li-a"]),
                order("x2", "1000.00", "2026-11-01", &["li-c"]),
            ],
            &[order("z", "1000.00", "2026-11-01", &["li-b"])],
        );
        let p = budget_changes(Some(&old), None, &within, now, &nothing_spent);
        assert!(p.is_empty(), "{p:?}");
        // The advertiser's id renamed, its orders and line items in place:
        // refused, since a rename cannot be told from an advertiser removed
        // and another given its ids (third review), whose late wins went
        // uncapped. Its name may change.
        let renamed = two_as(
            "shop-inc",
            &[order("x", "1000.00", "2026-11-01", &["li-a", "li-c"])],
            &[order("z", "1000.00", "2026-11-01", &["li-b"])],
        );
        let served_old = crate::served::Served::of(&old);
        for (old, served) in [(Some(&old), None), (None, Some(&served_old))] {
            let p = budget_changes(old, served, &renamed, now, &nothing_spent);
            let what: Vec<&str> = p
                .iter()
                .map(|p| p.message.split(':').next().unwrap_or(""))
                .collect();
            assert_eq!(
                what,
                ["order \"x\"", "line item \"li-a\"", "line item \"li-c\""],
                "{p:?}"
            );
            assert!(p[0].message.contains("keep the advertiser's id"), "{p:?}");
        }
    }

    /// An order keeps its advertiser as its line items do (review
    /// findings): moved whole to another advertiser, or its id given to
    /// another's new order after it was renamed, the bids made under it
    /// were charged to the new owner's counters, uncapped.
    #[test]
    fn an_order_id_is_not_given_to_another_advertiser() {
        let now = config::Date::parse("2026-12-06").unwrap().start();
        let nothing_spent = |_: &str| None;
        let old = two(
            &[
                order("x", "1000.00", "2026-11-01", &["li-a"]),
                order("y", "1000.00", "2026-11-01", &["li-c"]),
            ],
            &[order("z", "1000.00", "2026-11-01", &["li-b"])],
        );
        let messages = |p: Vec<Problem>| -> Vec<String> {
            p.into_iter()
                .map(|p| p.message.split(':').next().unwrap_or("").to_string())
                .collect()
        };
        // Moved whole, with its line item.
        let moved = two(
            &[order("y", "1000.00", "2026-11-01", &["li-c"])],
            &[
                order("z", "1000.00", "2026-11-01", &["li-b"]),
                order("x", "1000.00", "2026-11-01", &["li-a"]),
            ],
        );
        let served = crate::served::Served::of(&old);
        for (old, served) in [(Some(&old), None), (None, Some(&served))] {
            let p = budget_changes(old, served, &moved, now, &nothing_spent);
            assert_eq!(messages(p), ["order \"x\"", "line item \"li-a\""]);
        }
        // Renamed (its line item with it), then, in a later reload, its
        // id taken by another advertiser's new order while its bids may
        // still be won: the record keeps the order it left (second and
        // third reviews: nothing remembered the old order id).
        let renamed = two(
            &[
                order("x2", "1000.00", "2026-11-01", &["li-a"]),
                order("y", "1000.00", "2026-11-01", &["li-c"]),
            ],
            &[order("z", "1000.00", "2026-11-01", &["li-b"])],
        );
        let keep = std::time::Duration::from_secs(3_600);
        let after = crate::served::Served::next(&served, &renamed, now, keep);
        let reused = two(
            &[
                order("x2", "1000.00", "2026-11-01", &["li-a"]),
                order("y", "1000.00", "2026-11-01", &["li-c"]),
            ],
            &[
                order("z", "1000.00", "2026-11-01", &["li-b"]),
                order("x", "1000.00", "2026-11-01", &["li-d"]),
            ],
        );
        for (old, served) in [(Some(&renamed), Some(&after)), (None, Some(&after))] {
            let p = budget_changes(old, served, &reused, now, &nothing_spent);
            assert_eq!(messages(p), ["order \"x\""]);
        }
        // Across a write and a read of the record.
        let dir = crate::testing::tempdir("changes", "retired-order");
        after.write(&dir).unwrap();
        let read = crate::served::Served::read(&dir).unwrap();
        let p = budget_changes(None, Some(&read), &reused, now, &nothing_spent);
        assert_eq!(messages(p), ["order \"x\""]);
        let later = Timestamp(now.as_millis() + 3_600_000);
        let p = budget_changes(Some(&renamed), Some(&after), &reused, later, &nothing_spent);
        assert!(p.is_empty(), "its notices have expired: {p:?}");
        // A record carried through another reload keeps it.
        let again = crate::served::Served::next(&after, &renamed, now, keep);
        let p = budget_changes(Some(&renamed), Some(&again), &reused, now, &nothing_spent);
        assert_eq!(messages(p), ["order \"x\""]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// An order's budget may not be cut once its flight started, nor once
    /// a line item it served spent; a line item that spent in another
    /// order and moved in does not make it spent (review finding).
    #[test]
    fn an_order_budget_is_cut_only_before_it_starts_or_spends() {
        let now = config::Date::parse("2026-12-06").unwrap().start();
        let spent = |id: &str| (id == "li-a").then_some(BudgetKind::Daily);
        let old = config(&[
            order("x", "1000.00", "2026-11-01", &["li-a"]),
            order("y", "1000.00", "2027-01-01", &["li-b"]),
        ]);
        let problems = |new: &Config| budget_changes(Some(&old), None, new, now, &spent);
        // Started: refused.
        let cut_x = config(&[
            order("x", "900.00", "2026-11-01", &["li-a"]),
            order("y", "1000.00", "2027-01-01", &["li-b"]),
        ]);
        let p = problems(&cut_x);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0]
            .message
            .starts_with("order \"x\": its budget can only be increased"));
        // Not started, and what it served has not spent: a cut passes,
        // with a line item that has not spent moved in from x.
        let old_c = config(&[
            order("x", "1000.00", "2026-11-01", &["li-a", "li-c"]),
            order("y", "1000.00", "2027-01-01", &["li-b"]),
        ]);
        let moved = config(&[
            order("x", "1000.00", "2026-11-01", &["li-a"]),
            order("y", "500.00", "2027-01-01", &["li-b", "li-c"]),
        ]);
        let p = budget_changes(Some(&old_c), None, &moved, now, &spent);
        assert!(p.is_empty(), "{p:?}");
        // A line item that has spent stays in its order: moved, or its
        // order renamed, it is refused (budgets probe: a rename started
        // the order's spend afresh).
        for new in [
            config(&[
                order("x", "1000.00", "2026-11-01", &["li-c"]),
                order("y", "1000.00", "2027-01-01", &["li-b", "li-a"]),
            ]),
            config(&[
                order("x-renamed", "10.00", "2026-11-01", &["li-a", "li-c"]),
                order("y", "1000.00", "2027-01-01", &["li-b"]),
            ]),
        ] {
            let p = budget_changes(Some(&old_c), None, &new, now, &spent);
            assert_eq!(p.len(), 1, "{p:?}");
            assert!(
                p[0].message.starts_with(
                    "line item \"li-a\": it has spent under order \"x\" and cannot move"
                ),
                "{p:?}"
            );
        }
        // Not started, but one of its line items spent (a flight moved
        // later to cut it): refused.
        let later = config(&[
            order("x", "500.00", "2027-02-01", &["li-a"]),
            order("y", "1000.00", "2027-01-01", &["li-b"]),
        ]);
        let old_later = config(&[
            order("x", "1000.00", "2027-02-01", &["li-a"]),
            order("y", "1000.00", "2027-01-01", &["li-b"]),
        ]);
        let p = budget_changes(Some(&old_later), None, &later, now, &spent);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].message.contains("(it was 1,000.00, now 500.00)"),
            "{p:?}"
        );
        // So is one whose line item that spent left it (still in the
        // record of what was served): moved later without it, then cut.
        let without = config(&[
            order("x", "1000.00", "2027-02-01", &["li-c"]),
            order("y", "1000.00", "2027-01-01", &["li-b"]),
        ]);
        let served = crate::served::Served::next(
            &crate::served::Served::of(&old_c),
            &without,
            now,
            std::time::Duration::from_secs(86_400),
        );
        let cut = config(&[
            order("x", "10.00", "2027-02-01", &["li-c"]),
            order("y", "1000.00", "2027-01-01", &["li-b"]),
        ]);
        let p = budget_changes(Some(&without), Some(&served), &cut, now, &spent);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].message.starts_with("order \"x\""), "{p:?}");
    }
}

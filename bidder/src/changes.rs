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
            if let Some(message) = order_cut(old, served, order, now, spent_as) {
                let (line, column) = locate(&adv.file, &order.id);
                problems.push(Problem {
                    file: adv.file.clone(),
                    line,
                    column,
                    message,
                });
            }
            for li in &order.line_items {
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
                    .map(|(b, f)| (b, Some(f), ""))
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
                             started or it has spent (it was {was}{from}, now {now_budget})",
                            li.id
                        ))
                    }
                    _ => None,
                };
                if let Some(message) = message {
                    let (line, column) = locate(&adv.file, &li.id);
                    problems.push(Problem {
                        file: adv.file.clone(),
                        line,
                        column,
                        message,
                    });
                }
            }
        }
    }
    problems
}

/// An order's budget is its total over the flight, a lifetime budget: once
/// the flight has started or the order has spent, it may only grow, as a
/// line item's lifetime budget may (a cut below what was spent left the
/// order's reports showing spend past its budget, while the same cut of a
/// line item was refused). The order as served is the one in `old`, else
/// the record's (any of its line items carries its budget and flight).
/// Spent means one of its line items, then or now, has spent.
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
                " (as this state directory last served it: served-budgets.json)",
                items.iter().map(|(id, _)| *id).collect(),
            )
        }
    };
    let spent = || {
        old_items
            .iter()
            .copied()
            .chain(order.line_items.iter().map(|li| li.id.as_str()))
            .any(|id| spent_as(id).is_some())
    };
    (order.budget < was && (now >= flight.start.start() || spent())).then(|| {
        format!(
            "order \"{}\": its budget can only be increased once its flight has started or it \
             has spent (it was {was}{from}, now {})",
            order.id, order.budget
        )
    })
}

fn kind(b: Budget) -> &'static str {
    match b {
        Budget::Daily(_) => "daily",
        Budget::Lifetime(_) => "lifetime",
    }
}

fn find(config: &Config, id: &str) -> Option<(Budget, config::Flight)> {
    config
        .advertisers
        .iter()
        .flat_map(|a| &a.orders)
        .find_map(|o| {
            o.line_items
                .iter()
                .find(|li| li.id == id)
                .map(|li| (li.budget, o.flight))
        })
}

/// Where the line item's `budget` is written: the first `budget` key after
/// the line whose `id` is the line item's; the `id` itself when not found.
/// The validated model keeps no positions, so this reads the file again.
fn locate(file: &Path, id: &str) -> (u64, u64) {
    let Ok(text) = std::fs::read_to_string(file) else {
        return (1, 1);
    };
    let lines: Vec<&str> = text.lines().collect();
    let is_id = |l: &str| {
        let t = l.trim_start().trim_start_matches("- ").trim_start();
        t.strip_prefix("id:")
            .map(|v| {
                v.split('#')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .trim_matches(['"', '\''])
                    == id
            })
            .unwrap_or(false)
            || l.contains(&format!("id: {id},"))
    };
    let Some(at) = lines.iter().position(|l| is_id(l)) else {
        return (1, 1);
    };
    for (n, l) in lines.iter().enumerate().skip(at) {
        if let Some(col) = l.find("budget:") {
            if n == at || !l.trim_start().starts_with("- ") {
                return ((n + 1) as u64, (col + 1) as u64);
            }
        }
        if n > at && is_id(l) {
            break;
        }
    }
    let col = lines[at].find("id:").unwrap_or(0);
    ((at + 1) as u64, (col + 1) as u64)
}

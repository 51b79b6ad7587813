//! Problems across several files: all reported, each at its own place,
//! and a broken file does not hide the problems of the others.

mod common;

use common::{at, edit, problems, BASE, OTHER};

#[test]
fn every_problem_in_every_file_is_reported_in_order() {
    let a = edit(BASE, "countries: [USA, CAN]", "countries: [US, CAN]");
    let a = edit(&a, "{ daily: 1.00 }", "{ daily: 0.50 }");
    let b = edit(OTHER, "end: 2026-12-15", "end: 2026-11-01");
    let b = edit(&b, "cpm: 1.80", "cpm: 0");

    // Given out of order, reported sorted by file then position.
    let found = problems(&[("z/b.yaml", &b), ("a.yaml", &a)]);
    let lines: Vec<String> = found.iter().map(ToString::to_string).collect();
    let (l1, c1) = at(&a, "{ daily: 0.50 }", "0.50");
    let (l2, c2) = at(&a, "[US, CAN]", "US");
    let (l3, c3) = at(&b, "end: 2026-11-01", "2026");
    let (l4, c4) = at(&b, "cpm: 0", "0");
    assert_eq!(
        lines,
        [
            format!("a.yaml:{l1}:{c1}: line item \"li-display\": a daily budget must be at least 1.00 (it is 0.50)"),
            format!("a.yaml:{l2}:{c2}: line item \"li-display\": country \"US\" is not an ISO-3166-1 alpha-3 code (did you mean \"USA\"?)"),
            format!("z/b.yaml:{l3}:{c3}: order \"nw-order\": the flight ends on 2026-11-01, before it starts on 2026-11-15"),
            format!("z/b.yaml:{l4}:{c4}: line item \"nw-line\": cpm must be more than 0 (it is 0.00)"),
        ]
    );
    // The positions are real ones, not defaults.
    assert_eq!((l2, c2), (63, 23));
}

#[test]
fn syntax_error_in_one_file_and_semantic_error_in_another() {
    let broken = edit(BASE, "name: ACME", "name: \"ACME");
    let b = edit(OTHER, "size: 320x50", "size: 320x");
    let found = problems(&[("a.yaml", &broken), ("b.yaml", &b)]);
    let lines: Vec<String> = found.iter().map(ToString::to_string).collect();
    let (l, c) = at(&b, "size: 320x", "320x");
    assert_eq!(
        lines,
        [
            "a.yaml:3:9: unclosed quote".to_owned(),
            format!("b.yaml:{l}:{c}: creative \"nw-banner\": size \"320x\" must be WIDTHxHEIGHT in pixels, both above 0, like 300x250"),
        ]
    );
}

#[test]
fn a_type_error_stops_only_its_own_file() {
    // a.yaml has an unknown key and, further down, a semantic problem that is
    // not reported because the rest of that file cannot be trusted.
    let a = edit(BASE, "countries: [USA, CAN]", "countrys: [USA, CAN]");
    let a = edit(&a, "cpm: 6.00", "cpm: 0");
    let b = edit(OTHER, "cpm: 1.80", "cpm: 0");
    let found = problems(&[("a.yaml", &a), ("b.yaml", &b)]);
    let lines: Vec<String> = found.iter().map(ToString::to_string).collect();
    let (la, ca) = at(&a, "countrys", "countrys");
    let (lb, cb) = at(&b, "cpm: 0", "0");
    assert_eq!(
        lines,
        [
            format!("a.yaml:{la}:{ca}: unknown key \"countrys\" in targeting; expected one of: countries, regions, cities, os, sites, apps, publishers, dayparts, devices, keywords, deals, placements"),
            format!("b.yaml:{lb}:{cb}: line item \"nw-line\": cpm must be more than 0 (it is 0.00)"),
        ]
    );
    assert_eq!((la, ca), (63, 11));
}

#[test]
fn missing_key_is_reported_on_its_mapping() {
    let text = edit(OTHER, "    service: self_service\n", "");
    let found = problems(&[("b.yaml", &text)]);
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].message,
        "missing required key \"service\" in order \"nw-order\""
    );
    // At the mapping's first line, not where serde-saphyr places it (its
    // last key, `line_items:`).
    assert_eq!(
        (found[0].line, found[0].column),
        at(&text, "  - id: nw-order", "id")
    );

    // A budget is required of orders and line items alike: the keys
    // written tell which one lacks it, wherever its id is.
    let text = edit(OTHER, "        budget: { daily: 30.00 }\n", "");
    let text = edit(
        &text,
        "      - id: nw-line\n        media: display\n",
        "      - media: display\n        id: nw-line\n",
    );
    let found = problems(&[("b.yaml", &text)]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0].message,
        "missing required key \"budget\" in line item \"nw-line\""
    );
    assert_eq!(
        (found[0].line, found[0].column),
        at(&text, "      - media: display", "media")
    );

    // A flow mapping keeps the parser's place and words.
    let text = edit(
        OTHER,
        "{ start: 2026-11-15, end: 2026-12-15 }",
        "{ start: 2026-11-15 }",
    );
    let found = problems(&[("b.yaml", &text)]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0].message,
        "missing required key \"end\" in this flight"
    );
    assert_eq!(
        (found[0].line, found[0].column),
        at(&text, "{ start: 2026-11-15 }", "start")
    );
}

#[test]
fn unknown_top_level_key() {
    let text = format!("{OTHER}order:\n  - id: x\n");
    let found = problems(&[("b.yaml", &text)]);
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].to_string(),
        format!(
            "b.yaml:{}:1: unknown key \"order\" in the top level of the file; expected one of: advertiser, exchange, currency_rates, audiences, creatives, orders",
            OTHER.lines().count() + 1
        )
    );
}

#[test]
fn one_file_can_hold_several_problems_of_one_object() {
    let text = edit(OTHER, "cpm: 1.80", "cpm: 0");
    let text = edit(&text, "{ daily: 30.00 }", "{ daily: 0 }");
    let text = edit(&text, "creatives: [nw-banner]", "creatives: []");
    let found = problems(&[("b.yaml", &text)]);
    let messages: Vec<&str> = found.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "line item \"nw-line\": cpm must be more than 0 (it is 0.00)",
            "line item \"nw-line\": a daily budget must be at least 1.00 (it is 0.00)",
            "line item \"nw-line\": has no creatives; it needs at least one to bid",
        ]
    );
}

#[test]
fn problems_display_one_per_line() {
    let a = edit(BASE, "cpm: 6.00", "cpm: 0");
    let b = edit(OTHER, "cpm: 1.80", "cpm: 0");
    let err = common::load(&[("a.yaml", &a), ("b.yaml", &b)]).expect_err("two problems");
    let text = err.to_string();
    assert_eq!(text.lines().count(), 2);
    assert!(text
        .lines()
        .all(|l| l.ends_with("cpm must be more than 0 (it is 0.00)")));
}

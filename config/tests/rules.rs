//! One negative case (exact message and position) per rule; the positive
//! side of each rule is the valid base file, which sits on every boundary.

mod common;

use common::{assert_loads, assert_problem, at, edit, only_problem, problems, BASE, OTHER};
use config::{AudienceKind, Budget, ListSource, Micros};

#[test]
fn base_and_other_are_valid_together() {
    let config = assert_loads(&[("a.yaml", BASE), ("b.yaml", OTHER)]);
    assert_eq!(
        config.summary().to_string(),
        "2 advertisers, 4 orders, 5 line items, 4 creatives, 5 audiences"
    );
    let acme = &config.advertisers[0];
    assert_eq!(
        acme.audiences[0].kind,
        AudienceKind::Views {
            products: vec!["P1".into()],
            lookback_days: 365,
            own: vec![config::advertiser_item("acme", "P1")],
        }
    );
    assert!(acme.creatives[1].companion_required);
    assert_eq!(
        acme.orders[2].line_items[0].budget,
        Budget::Lifetime(Micros(1))
    );
}

// ---- unique ids ----

#[test]
fn duplicate_advertiser_across_files() {
    let second = edit(OTHER, "id: northwind\n", "id: acme\n");
    let found = problems(&[("a.yaml", BASE), ("b.yaml", &second)]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].file.to_str(), Some("b.yaml"));
    assert_eq!(
        (found[0].line, found[0].column),
        at(&second, "id: acme", "acme")
    );
    assert_eq!(
        found[0].message,
        "duplicate advertiser id \"acme\": already used at a.yaml:2:7"
    );
}

#[test]
fn duplicate_creative_order_and_line_item_ids_across_the_set() {
    let second = edit(OTHER, "id: nw-order", "id: audio-order");
    let second = edit(&second, "id: nw-line", "id: li-video");
    let second = edit(&second, "id: nw-banner\n", "id: banner\n");
    let second = edit(&second, "creatives: [nw-banner]", "creatives: [banner]");
    let found = problems(&[("a.yaml", BASE), ("b.yaml", &second)]);
    let messages: Vec<String> = found.iter().map(ToString::to_string).collect();
    let (bl, bc) = at(BASE, "id: banner", "banner");
    let (ol, oc) = at(BASE, "id: audio-order", "audio-order");
    let (ll, lc) = at(BASE, "id: li-video", "li-video");
    let (l1, c1) = at(&second, "id: banner", "banner");
    let (l2, c2) = at(&second, "id: audio-order", "audio-order");
    let (l3, c3) = at(&second, "id: li-video", "li-video");
    assert_eq!(
        messages,
        [
            // Another advertiser's: said, as those ids look free to take.
            format!("b.yaml:{l1}:{c1}: duplicate creative id \"banner\": already used at a.yaml:{bl}:{bc} (ids are unique across advertisers)"),
            format!("b.yaml:{l2}:{c2}: duplicate order id \"audio-order\": already used at a.yaml:{ol}:{oc} (ids are unique across advertisers)"),
            format!("b.yaml:{l3}:{c3}: duplicate line item id \"li-video\": already used at a.yaml:{ll}:{lc} (ids are unique across advertisers)"),
        ]
    );
}

#[test]
fn duplicate_line_item_within_one_file() {
    let text = edit(BASE, "id: li-self", "id: li-display");
    let (l, c) = at(BASE, "id: li-display", "li-display");
    assert_problem(
        &text,
        at(
            &text,
            "id: li-display\n        media: display\n        cpm: 0.000001",
            "li-display",
        ),
        &format!("duplicate line item id \"li-display\": already used at a.yaml:{l}:{c}"),
    );
}

#[test]
fn audience_ids_are_unique_per_advertiser_only() {
    // The same audience id under two advertisers is fine...
    let other = edit(OTHER, "id: readers", "id: fans");
    assert_loads(&[("a.yaml", BASE), ("b.yaml", &other)]);
    // ...twice under one is not.
    let text = edit(BASE, "id: pages", "id: viewers");
    let text = edit(&text, "any_of: [viewers, pages]", "any_of: [viewers]");
    let (l, c) = at(BASE, "id: viewers", "viewers");
    assert_problem(
        &text,
        at(&text, "id: viewers\n    kind: products", "viewers"),
        &format!("duplicate audience id \"viewers\": already used at a.yaml:{l}:{c}"),
    );
}

// ---- references ----

#[test]
fn unknown_audience_reference_suggests_a_near_id() {
    let text = edit(BASE, "any_of: [viewers, pages]", "any_of: [viewer, pages]");
    assert_problem(
        &text,
        at(&text, "[viewer, pages]", "viewer"),
        "line item \"li-display\": audience \"viewer\" is not defined for advertiser \"acme\" (did you mean \"viewers\"?)",
    );
}

#[test]
fn none_of_reference_must_resolve_too() {
    let text = edit(BASE, "none_of: [sections]", "none_of: [gardeners]");
    assert_problem(
        &text,
        at(&text, "[gardeners]", "gardeners"),
        "line item \"li-audio\": audience \"gardeners\" is not defined for advertiser \"acme\"",
    );
}

#[test]
fn references_cannot_cross_advertisers() {
    let text = edit(BASE, "none_of: [sections]", "none_of: [readers]");
    let text = edit(&text, "creatives: [jingle]", "creatives: [nw-banner]");
    let found = problems(&[("a.yaml", &text), ("b.yaml", OTHER)]);
    let messages: Vec<&str> = found.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "line item \"li-audio\": audience \"readers\" is not defined for advertiser \"acme\" (it belongs to advertiser \"northwind\"; references cannot cross advertisers)",
            "line item \"li-audio\": creative \"nw-banner\" is not defined for advertiser \"acme\" (it belongs to advertiser \"northwind\"; references cannot cross advertisers)",
        ]
    );
}

#[test]
fn audience_in_both_any_of_and_none_of() {
    let text = edit(BASE, "none_of: [fans]", "none_of: [pages]");
    assert_problem(
        &text,
        at(&text, "none_of: [pages]", "pages"),
        "line item \"li-display\": audience \"pages\" is in both any_of and none_of",
    );
}

#[test]
fn an_audience_rule_must_name_an_audience() {
    let text = edit(
        BASE,
        "audiences: { none_of: [sections] }",
        "audiences: { any_of: [] }",
    );
    let p = only_problem(&text);
    assert_eq!(p.line, at(&text, "audiences: { any_of: [] }", "{").0);
    assert!(p
        .message
        .starts_with("line item \"li-audio\": audiences names no audience"));
    // Written with nothing after it, it names none either: it read as left
    // out, and the line item bought every user.
    for written in ["audiences: ~", "audiences: null", "audiences:"] {
        let text = edit(BASE, "audiences: { none_of: [sections] }", written);
        let p = only_problem(&text);
        let line = at(BASE, "audiences: { none_of: [sections] }", "audiences").0;
        assert_eq!(p.line, line, "{written}");
        assert!(
            p.message
                .starts_with("line item \"li-audio\": audiences names no audience"),
            "{written}: {}",
            p.message
        );
    }
}

#[test]
fn unknown_creative_reference() {
    let text = edit(BASE, "creatives: [spot]", "creatives: [spott]");
    assert_problem(
        &text,
        at(&text, "[spott]", "spott"),
        "line item \"li-video\": creative \"spott\" is not defined for advertiser \"acme\" (did you mean \"spot\"?)",
    );
}

#[test]
fn line_item_needs_a_creative() {
    let text = edit(BASE, "creatives: [spot]", "creatives: []");
    assert_problem(
        &text,
        at(&text, "creatives: []", "["),
        "line item \"li-video\": has no creatives; it needs at least one to bid",
    );
    // A missing key is the same problem, reported on the line item.
    let text = edit(BASE, "\n        creatives: [spot]", "");
    assert_problem(
        &text,
        at(&text, "- id: li-video", "id"),
        "line item \"li-video\": has no creatives; it needs at least one to bid",
    );
}

#[test]
fn creative_format_must_fit_the_line_item_media() {
    let text = edit(BASE, "creatives: [spot]", "creatives: [spot, banner]");
    assert_problem(
        &text,
        at(&text, "[spot, banner]", "banner"),
        "line item \"li-video\": creative \"banner\" is display but the line item buys video",
    );
    let text = edit(BASE, "creatives: [jingle]", "creatives: [spot]");
    assert_problem(
        &text,
        at(&text, "[sections] }\n        creatives: [spot]", "spot"),
        "line item \"li-audio\": creative \"spot\" is video but the line item buys audio",
    );
}

#[test]
fn companions_must_resolve_and_be_display() {
    let text = edit(BASE, "companions: [banner]", "companions: [baner]");
    assert_problem(
        &text,
        at(&text, "[baner]", "baner"),
        "creative \"spot\": companion creative \"baner\" is not defined for advertiser \"acme\" (did you mean \"banner\"?)",
    );
    let text = edit(BASE, "companions: [banner]", "companions: [jingle]");
    assert_problem(
        &text,
        at(&text, "companions: [jingle]", "jingle"),
        "creative \"spot\": companion \"jingle\" is audio; companions must be display creatives",
    );
}

#[test]
fn display_creatives_have_no_companions() {
    let text = edit(
        BASE,
        "    image_url: https://cdn.acme.example/b.jpg\n",
        "    image_url: https://cdn.acme.example/b.jpg\n    companions: [banner]\n",
    );
    assert_problem(
        &text,
        at(&text, "companions: [banner]\n    click_url", "banner"),
        "creative \"banner\": only video and audio creatives have companions; this one is display",
    );
}

#[test]
fn companion_required_needs_companions() {
    let text = edit(BASE, "    companions: [banner]\n", "");
    assert_problem(
        &text,
        at(&text, "companion_required: true", "true"),
        "creative \"spot\": companion_required is true but it lists no companions",
    );
}

// ---- budgets ----

#[test]
fn managed_order_with_display_or_video_needs_50000() {
    let text = edit(BASE, "budget: 50000.00\n", "budget: 40000.00\n");
    let text = edit(
        &text,
        "budget: { lifetime: 50000.00 }",
        "budget: { lifetime: 40000.00 }",
    );
    let text = edit(&text, "id: managed-order", "id: acme-q4-managed");
    assert_problem(
        &text,
        at(&text, "budget: 40000.00\n", "40000"),
        "order \"acme-q4-managed\": a managed-service order with display, native or video line items needs a total budget of at least 50,000.00 (it has 40,000.00)",
    );
}

#[test]
fn managed_audio_only_order_needs_25000() {
    let text = edit(BASE, "budget: 25000\n", "budget: 24999.99\n");
    let text = edit(
        &text,
        "budget: { lifetime: 25000 }",
        "budget: { lifetime: 20000 }",
    );
    assert_problem(
        &text,
        at(&text, "budget: 24999.99", "24999.99"),
        "order \"audio-order\": a managed-service order buying only audio needs a total budget of at least 25,000.00 (it has 24,999.99)",
    );
}

#[test]
fn audio_order_with_a_display_line_item_needs_the_full_minimum() {
    let text = edit(
        BASE,
        "        creatives: [jingle]\n",
        "        creatives: [jingle]\n      - id: li-extra\n        media: display\n        cpm: 1\n        budget: { daily: 5 }\n        creatives: [banner]\n",
    );
    let p = only_problem(&text);
    assert_eq!((p.line, p.column), at(&text, "budget: 25000\n", "25000"));
    assert!(
        p.message.contains("at least 50,000.00 (it has 25,000.00)"),
        "{}",
        p.message
    );
}

#[test]
fn daily_budget_is_at_least_one() {
    let text = edit(BASE, "{ daily: 1.00 }", "{ daily: 0.99 }");
    assert_problem(
        &text,
        at(&text, "{ daily: 0.99 }", "0.99"),
        "line item \"li-display\": a daily budget must be at least 1.00 (it is 0.99)",
    );
}

#[test]
fn line_item_budget_never_exceeds_the_order_budget() {
    let text = edit(BASE, "{ lifetime: 50000.00 }", "{ lifetime: 50000.01 }");
    assert_problem(
        &text,
        at(&text, "{ lifetime: 50000.01 }", "50000.01"),
        "line item \"li-video\": its lifetime budget 50,000.01 is more than its order's total budget 50,000.00",
    );
    let text = edit(OTHER, "{ daily: 30.00 }", "{ daily: 900.000001 }");
    assert_problem(
        &text,
        at(&text, "900.000001", "900"),
        "line item \"nw-line\": its daily budget 900.000001 is more than its order's total budget 900.00",
    );
}

#[test]
fn order_budget_must_be_positive() {
    let text = edit(OTHER, "budget: 900.00", "budget: 0");
    let found = problems(&[("b.yaml", &text)]);
    assert_eq!(
        found[0].message,
        "order \"nw-order\": budget must be more than 0 (it is 0.00)"
    );
    assert_eq!(
        (found[0].line, found[0].column),
        at(&text, "budget: 0", "0")
    );
}

#[test]
fn negative_money_is_an_error() {
    let text = edit(OTHER, "budget: 900.00", "budget: -900.00");
    let found = problems(&[("b.yaml", &text)]);
    assert_eq!(
        found[0].message,
        "order \"nw-order\": budget cannot be negative (it is -900.00)"
    );
    let text = edit(OTHER, "cpm: 1.80", "cpm: -1.80");
    assert_problem(
        &text,
        at(&text, "cpm: -1.80", "-1.80"),
        "line item \"nw-line\": cpm cannot be negative (it is -1.80)",
    );
}

#[test]
fn money_has_a_ceiling() {
    // A billion is the most any amount may be: the budgets that hold it
    // load (the line item's within its order's).
    let most = "1000000000.00";
    let text = edit(OTHER, "budget: 900.00", &format!("budget: {most}"));
    let text = edit(&text, "{ daily: 30.00 }", &format!("{{ daily: {most} }}"));
    assert_loads(&[("b.yaml", &text)]);
    let text = edit(OTHER, "cpm: 1.80", "cpm: 1000000000.000001");
    assert_problem(
        &text,
        at(&text, "cpm: 1000000000.000001", "1000000000.000001"),
        "line item \"nw-line\": cpm 1,000,000,000.000001 is more than a config may say (1,000,000,000.00)",
    );
    // What a micros count holds: it was taken, and saturated the spend it
    // was charged to.
    let text = edit(OTHER, "budget: 900.00", "budget: 9223372036854.775807");
    assert_problem(
        &text,
        at(&text, "budget: 9223372036854.775807", "9223372036854.775807"),
        "order \"nw-order\": budget 9,223,372,036,854.775807 is more than a config may say (1,000,000,000.00)",
    );
}

#[test]
fn lifetime_budget_must_be_positive() {
    let text = edit(OTHER, "{ daily: 30.00 }", "{ lifetime: 0.00 }");
    assert_problem(
        &text,
        at(&text, "{ lifetime: 0.00 }", "0.00"),
        "line item \"nw-line\": the lifetime budget must be more than 0 (it is 0.00)",
    );
}

#[test]
fn budget_is_exactly_one_of_daily_or_lifetime() {
    let text = edit(OTHER, "{ daily: 30.00 }", "{ daily: 30.00, lifetime: 100 }");
    let p = only_problem(&text);
    assert_eq!(p.line, at(&text, "lifetime: 100", "lifetime").0);
    assert_eq!(
        p.message,
        "line item \"nw-line\": budget needs exactly one of daily or lifetime, like { daily: 800.00 }"
    );
    let text = edit(OTHER, "{ daily: 30.00 }", "{}");
    assert!(only_problem(&text)
        .message
        .contains("exactly one of daily or lifetime"));
}

#[test]
fn cpm_must_be_positive() {
    let text = edit(OTHER, "cpm: 1.80", "cpm: 0.00");
    assert_problem(
        &text,
        at(&text, "cpm: 0.00", "0.00"),
        "line item \"nw-line\": cpm must be more than 0 (it is 0.00)",
    );
}

#[test]
fn money_has_at_most_six_decimals_and_no_exponent() {
    let text = edit(OTHER, "cpm: 1.80", "cpm: 1.8000001");
    assert_problem(
        &text,
        at(&text, "cpm: 1.8000001", "1.8"),
        "line item \"nw-line\": cpm \"1.8000001\" has more than 6 decimal places",
    );
    let text = edit(OTHER, "budget: 900.00", "budget: 9e2");
    assert_problem(
        &text,
        at(&text, "budget: 9e2", "9e2"),
        "order \"nw-order\": budget \"9e2\" is not a plain decimal amount (write it like 1234.50)",
    );
}

// ---- flights ----

#[test]
fn flight_end_on_or_after_start() {
    let text = edit(OTHER, "end: 2026-12-15", "end: 2026-11-14");
    assert_problem(
        &text,
        at(&text, "end: 2026-11-14", "2026"),
        "order \"nw-order\": the flight ends on 2026-11-14, before it starts on 2026-11-15",
    );
}

#[test]
fn flight_dates_must_be_real() {
    let text = edit(OTHER, "start: 2026-11-15", "start: 2026-02-29");
    assert_problem(
        &text,
        at(&text, "start: 2026-02-29", "2026"),
        "order \"nw-order\": flight start \"2026-02-29\" is not a real calendar date",
    );
    let text = edit(OTHER, "end: 2026-12-15", "end: 15/12/2026");
    assert_problem(
        &text,
        at(&text, "end: 15/12/2026", "15"),
        "order \"nw-order\": flight end \"15/12/2026\" is not a date written as YYYY-MM-DD",
    );
    // 2028 is a leap year.
    assert_loads(&[("b.yaml", &edit(OTHER, "end: 2026-12-15", "end: 2028-02-29"))]);
}

// ---- targeting ----

#[test]
fn countries_are_alpha3_with_a_hint() {
    let text = edit(BASE, "countries: [USA, CAN]", "countries: [US, CAN]");
    assert_problem(
        &text,
        at(&text, "[US, CAN]", "US"),
        "line item \"li-display\": country \"US\" is not an ISO-3166-1 alpha-3 code (did you mean \"USA\"?)",
    );
    let text = edit(BASE, "countries: [USA, CAN]", "countries: [USA, can]");
    assert_problem(
        &text,
        at(&text, "[USA, can]", "can"),
        "line item \"li-display\": country \"can\" is not an ISO-3166-1 alpha-3 code (did you mean \"CAN\"?)",
    );
    let text = edit(BASE, "countries: [USA, CAN]", "countries: [USA, XKX]");
    assert_problem(
        &text,
        at(&text, "[USA, XKX]", "XKX"),
        "line item \"li-display\": country \"XKX\" is not an ISO-3166-1 alpha-3 code",
    );
    // "NO" must reach us as text (Norway), not as a YAML 1.1 boolean.
    let text = edit(BASE, "countries: [USA, CAN]", "countries: [NO]");
    assert!(only_problem(&text)
        .message
        .contains("(did you mean \"NOR\"?)"));
}

#[test]
fn devices_use_the_documented_names() {
    let text = edit(
        BASE,
        "devices: [desktop, phone,",
        "devices: [desktop, mobile,",
    );
    assert_problem(
        &text,
        at(&text, "mobile", "mobile"),
        "line item \"li-display\": unknown device \"mobile\"; expected one of: desktop, phone, tablet, ctv, connected_device, set_top_box, dooh",
    );
}

#[test]
fn keywords_and_deals_are_not_empty() {
    let text = edit(BASE, "broad: [tents]", "broad: [tents, \"\"]");
    assert_problem(
        &text,
        at(&text, "[tents, \"\"]", "\"\""),
        "line item \"li-display\": a broad keyword is empty",
    );
    let text = edit(BASE, "deals: [DEAL-1]", "deals: [\" \"]");
    assert_problem(
        &text,
        at(&text, "deals: [\" \"]", "\""),
        "line item \"li-display\": a deal id is empty",
    );
    let text = edit(
        BASE,
        "keywords: { broad: [tents], negative: [free] }",
        "keywords: {}",
    );
    assert!(only_problem(&text)
        .message
        .contains("keywords lists no keyword"));
}

#[test]
fn frequency_cap_is_at_least_one_per_hour() {
    let cap = |c: &str| edit(BASE, "{ impressions: 1, per_hours: 1 }", c);
    // A window longer than a year outlives its flight: a typo, refused.
    for (written, place, target, message) in [
        (
            "{ impressions: 0, per_hours: 1 }",
            "impressions: 0",
            "0",
            "frequency_cap impressions must be at least 1 (it is 0)",
        ),
        (
            "{ impressions: 1, per_hours: 0 }",
            "per_hours: 0",
            "0",
            "frequency_cap per_hours must be between 1 and 8784 (it is 0)",
        ),
        (
            "{ impressions: 1, per_hours: 100000 }",
            "per_hours: 100000",
            "1",
            "frequency_cap per_hours must be between 1 and 8784 (it is 100000)",
        ),
    ] {
        let text = cap(written);
        assert_problem(
            &text,
            at(&text, place, target),
            &format!("line item \"li-display\": {message}"),
        );
    }
    assert_loads(&[("a.yaml", &cap("{ impressions: 1, per_hours: 8784 }"))]);
}

// ---- creatives ----

#[test]
fn size_is_width_x_height() {
    for bad in [
        "300X250",
        "0x250",
        "300",
        "300x",
        "x250",
        "-300x250",
        "300x250x1",
    ] {
        let text = edit(BASE, "size: 300x250", &format!("size: {bad}"));
        assert_problem(
            &text,
            at(&text, &format!("size: {bad}"), bad),
            &format!("creative \"banner\": size \"{bad}\" must be WIDTHxHEIGHT in pixels, both above 0, like 300x250"),
        );
    }
}

/// A spot lasts at least a second and less than a day: VAST's `Duration`
/// (`HH:MM:SS`, an `xs:time`) cannot say 24 hours or more.
#[test]
fn durations_are_positive_and_under_a_day() {
    for (bad, message) in [
        (
            "0",
            "creative \"spot\": duration_s must be between 1 and 86399 (it is 0)",
        ),
        (
            "86400",
            "creative \"spot\": duration_s must be between 1 and 86399 (it is 86400)",
        ),
    ] {
        let text = edit(BASE, "duration_s: 15", &format!("duration_s: {bad}"));
        assert_problem(
            &text,
            at(&text, &format!("duration_s: {bad}"), bad),
            message,
        );
    }
    let text = edit(BASE, "duration_s: 15", "duration_s: 86399");
    assert_loads(&[("base.yaml", &text)]); // 23:59:59 is a Duration
}

#[test]
fn video_media_need_width_and_height() {
    let text = edit(BASE, "        height: 1080\n", "");
    assert_problem(
        &text,
        at(&text, "- url: https://cdn.acme.example/v.mp4", "url"),
        "creative \"spot\": video media file https://cdn.acme.example/v.mp4 needs both width and height",
    );
}

#[test]
fn audio_media_have_no_dimensions() {
    let text = edit(
        BASE,
        "        mime: audio/mpeg\n",
        "        mime: audio/mpeg\n        width: 10\n",
    );
    assert_problem(
        &text,
        at(&text, "width: 10", "10"),
        "creative \"jingle\": width does not apply to audio media",
    );
}

#[test]
fn mimes_are_type_slash_subtype() {
    let text = edit(BASE, "mime: video/mp4", "mime: mp4");
    assert_problem(
        &text,
        at(&text, "mime: mp4", "mp4"),
        "creative \"spot\": mime \"mp4\" is not a media type like video/mp4",
    );
    let text = edit(BASE, "mime: audio/mpeg", "mime: audio/mpeg; rate=44100");
    assert_problem(
        &text,
        at(&text, "mime: audio/mpeg;", "audio"),
        "creative \"jingle\": mime \"audio/mpeg; rate=44100\" is not a media type like audio/mpeg",
    );
    let text = edit(BASE, "mime: audio/mpeg", "mime: \"\"");
    assert_problem(
        &text,
        at(&text, "mime: \"\"", "\""),
        "creative \"jingle\": mime is empty",
    );
}

#[test]
fn urls_start_with_http_or_https() {
    let text = edit(
        BASE,
        "image_url: https://cdn.acme.example/b.jpg",
        "image_url: cdn.acme.example/b.jpg",
    );
    assert_problem(
        &text,
        at(&text, "image_url: cdn", "cdn"),
        "creative \"banner\": image_url \"cdn.acme.example/b.jpg\" must start with http:// or https://",
    );
    let text = edit(
        OTHER,
        "click_url: https://northwind.example/",
        "click_url: ftp://northwind.example/",
    );
    assert_problem(
        &text,
        at(&text, "click_url: ftp", "ftp"),
        "creative \"nw-banner\": click_url \"ftp://northwind.example/\" must start with http:// or https://",
    );
    let text = edit(BASE, "url: https://cdn.acme.example/v.mp4", "url: https://");
    let found = problems(&[("a.yaml", &text)]);
    assert_eq!(
        found[0].message,
        "creative \"spot\": media url \"https://\" has no host name after the scheme"
    );
}

#[test]
fn keys_of_another_format_are_rejected() {
    let text = edit(
        BASE,
        "    size: 300x250\n",
        "    size: 300x250\n    duration_s: 15\n",
    );
    assert_problem(
        &text,
        at(&text, "duration_s: 15\n    image_url", "15"),
        "creative \"banner\": \"duration_s\" does not apply to a display creative",
    );
}

#[test]
fn format_specific_keys_are_required() {
    let text = edit(BASE, "    image_url: https://cdn.acme.example/b.jpg\n", "");
    assert_problem(
        &text,
        at(&text, "- id: banner", "id"),
        "creative \"banner\": a display creative needs image_url",
    );
}

#[test]
fn unknown_format_kind_service_and_media() {
    let text = edit(BASE, "format: audio", "format: podcast");
    let found = problems(&[("a.yaml", &text)]);
    assert_eq!(
        found[0].message,
        "creative \"jingle\": unknown format \"podcast\"; expected one of: display, video, audio, native"
    );
    let text = edit(BASE, "kind: products", "kind: product");
    assert_problem(
        &text,
        at(&text, "kind: product", "product"),
        "audience \"pages\": unknown kind \"product\"; expected one of: views, interests, products, categories, list",
    );
    let text = edit(OTHER, "service: self_service", "service: self-service");
    assert_problem(
        &text,
        at(&text, "service: self-service", "self"),
        "order \"nw-order\": unknown service \"self-service\"; expected self_service or managed",
    );
    let text = edit(OTHER, "media: display", "media: banner");
    assert_problem(
        &text,
        at(&text, "media: banner", "banner"),
        "line item \"nw-line\": unknown media \"banner\"; expected one of: display, video, audio, native",
    );
}

// ---- audiences and advertiser ----

#[test]
fn lookback_days_is_1_to_365() {
    for bad in ["0", "366"] {
        let text = edit(BASE, "lookback_days: 365", &format!("lookback_days: {bad}"));
        assert_problem(
            &text,
            at(&text, &format!("lookback_days: {bad}"), bad),
            &format!("audience \"viewers\": lookback_days must be between 1 and 365 (it is {bad})"),
        );
    }
}

#[test]
fn audience_lists_are_not_empty() {
    let text = edit(BASE, "interests: [hiking]", "interests: []");
    assert_problem(
        &text,
        at(&text, "interests: []", "["),
        "audience \"fans\": interests audiences need a non-empty interests list",
    );
    let text = edit(BASE, "    categories: [IAB17]\n", "");
    assert_problem(
        &text,
        at(&text, "- id: sections", "id"),
        "audience \"sections\": categories audiences need a non-empty categories list",
    );
}

#[test]
fn audience_keys_of_another_kind_are_rejected() {
    let text = edit(
        BASE,
        "    products: [P1]\n  - id: sections",
        "    products: [P1]\n    lookback_days: 7\n  - id: sections",
    );
    assert_problem(
        &text,
        at(&text, "lookback_days: 7", "7"),
        "audience \"pages\": \"lookback_days\" does not apply to a products audience",
    );
}

#[test]
fn advertiser_needs_a_domain() {
    let with_domains = |list: &str| {
        edit(
            OTHER,
            "domains: [northwind.example]",
            &format!("domains: {list}"),
        )
    };
    let text = with_domains("[]");
    assert_problem(
        &text,
        at(&text, "domains: []", "["),
        "advertiser \"northwind\": needs at least one domain (the landing-page domain shown to publishers, like acme.example)",
    );
    let text = with_domains("[https://northwind.example]");
    assert!(only_problem(&text)
        .message
        .contains("must be a bare domain"));
    // Sent to exchanges as `adomain`: no wildcard.
    let text = with_domains("[\"*.northwind.example\"]");
    assert!(only_problem(&text)
        .message
        .contains("domain \"*.northwind.example\" is a wildcard; write \"northwind.example\""));
    // A bare name, as exchanges' block lists hold it: no port.
    let text = with_domains("[\"northwind.example:8080\"]");
    assert!(only_problem(&text).message.contains(
        "domain \"northwind.example:8080\" must be a bare domain like acme.example, without a \
         port; write \"northwind.example\""
    ));
    // The root's final dot is read away, as in sites.
    let text = with_domains("[northwind.example.]");
    let config = assert_loads(&[("b.yaml", &text)]);
    assert_eq!(config.advertisers[0].domains, ["northwind.example"]);
}

#[test]
fn ids_have_no_spaces_and_are_not_empty() {
    let text = edit(OTHER, "id: nw-line", "id: nw line");
    assert_problem(
        &text,
        at(&text, "id: nw line", "nw"),
        "line item \"nw line\": ids cannot contain spaces; use dashes, like tent-ctv-video",
    );
    let text = edit(OTHER, "id: nw-order", "id: \"\"");
    assert_problem(
        &text,
        at(&text, "id: \"\"", "\""),
        "order \"\": the id is empty",
    );
}

#[test]
fn ids_show_as_typed_and_fit_in_notice_urls() {
    let text = edit(OTHER, "id: nw-line", "id: \"nw\\u202Eline\"");
    assert_problem(
        &text,
        at(&text, "id: \"nw", "\""),
        "line item \"nw\u{202e}line\": the id holds the invisible character U+202E, which \
         shows it as another id; type it again",
    );
    for hidden in ["\\U000E0041", "\\uFE0F", "\\u3164", "\\u200B"] {
        let text = edit(OTHER, "id: nw-line", &format!("id: \"nw{hidden}line\""));
        assert!(
            only_problem(&text).message.contains("invisible character"),
            "{hidden}"
        );
    }
    let long = "n".repeat(129);
    let text = edit(OTHER, "id: nw-line", &format!("id: {long}"));
    assert_problem(
        &text,
        at(&text, &format!("id: {long}"), "n"),
        &format!(
            "line item \"{long}\": the id is 129 bytes long, over 128: ids ride in every notice URL"
        ),
    );
    let ok = edit(OTHER, "id: nw-line", &format!("id: {}", "n".repeat(128)));
    assert_loads(&[("a.yaml", &ok)]);
}

#[test]
fn flights_fall_in_plausible_years() {
    let text = edit(OTHER, "start: 2026-11-15", "start: 0026-11-15");
    assert_problem(
        &text,
        at(&text, "start: 0026-11-15", "0"),
        "order \"nw-order\": flight start 0026-11-15 is before the year 2000",
    );
    // "No end" is written as a far one.
    let text = edit(OTHER, "end: 2026-12-15", "end: 9999-12-31");
    assert_loads(&[("a.yaml", &text)]);
}

#[test]
fn advertiser_categories_are_iab_codes() {
    let typos = [
        "IAB17_18", "IBA22", "IAB27", "IAB0", "IAB22-", "IAB22-01", "IAB17-45", "IAB24-1",
    ];
    for typo in typos {
        let text = edit(
            BASE,
            "categories: [IAB17-18]",
            &format!("categories: [{typo}]"),
        );
        assert_problem(
            &text,
            at(&text, &format!("[{typo}]"), typo),
            &format!(
                "advertiser \"acme\": category \"{typo}\" is not an IAB 1.0 code, like IAB17 or \
                 IAB17-18 (what bcat blocks are compared with)"
            ),
        );
    }
    for code in ["IAB26-4", "IAB1", "iab17-18"] {
        let text = edit(
            BASE,
            "categories: [IAB17-18]",
            &format!("categories: [{code}]"),
        );
        let config = assert_loads(&[("a.yaml", &text)]);
        // As bids name them (`cat`): upper case.
        assert_eq!(
            config.advertisers[0].categories,
            [code.to_ascii_uppercase()]
        );
    }
}

/// The kind of the first advertiser's audience `id`, as loaded.
fn audience_kind<'c>(config: &'c config::Config, id: &str) -> &'c AudienceKind {
    &config.advertisers[0]
        .audiences
        .iter()
        .find(|a| a.id == id)
        .unwrap_or_else(|| panic!("no audience {id}"))
        .kind
}

/// A categories audience's IAB 1.0 codes are checked as the advertiser's
/// are: a typo would match no page and its line items never bid, with
/// nothing said. Any case loads, as upper case; other taxonomies' ids are
/// taken as written.
#[test]
fn category_audiences_hold_iab_codes() {
    let audience = |list: &str| {
        edit(
            BASE,
            "  - id: sections\n",
            &format!(
                "  - id: topics\n    kind: categories\n    categories: {list}\n  - id: sections\n"
            ),
        )
    };
    for typo in ["IAB17-99", "iab27", "IAB19-37"] {
        let text = audience(&format!("[IAB20, {typo}]"));
        assert_problem(
            &text,
            at(&text, &format!(", {typo}]"), typo),
            &format!(
                "audience \"topics\": category \"{typo}\" is not an IAB 1.0 code, like IAB17 or \
                 IAB17-18"
            ),
        );
    }
    let config = assert_loads(&[("a.yaml", &audience("[iab19, IAB17-44, \"483\", Sports]"))]);
    assert_eq!(
        *audience_kind(&config, "topics"),
        AudienceKind::Categories {
            categories: ["IAB19", "IAB17-44", "483", "Sports"]
                .map(String::from)
                .to_vec()
        }
    );
}

/// Interest topics load trimmed and in lower case, as uploaded events'
/// topics are read: `Hiking` targets the shoppers whose events say
/// `hiking` or `HIKING`.
#[test]
fn interest_topics_load_in_lower_case() {
    let text = edit(
        BASE,
        "interests: [hiking]",
        "interests: [Hiking, \" Trail Running\"]",
    );
    let config = assert_loads(&[("a.yaml", &text)]);
    assert_eq!(
        *audience_kind(&config, "fans"),
        AudienceKind::Interests {
            interests: vec!["hiking".into(), "trail running".into()],
            recency_days: 1
        }
    );
}

// ---- list audiences ----

const LIST: &str = "  - id: crm
    kind: list
    sources: [buyeruid, sha256_email, uidapi.com, id5-sync.com]
";

fn with_list(list: &str) -> String {
    edit(
        BASE,
        "  - id: sections\n",
        &format!("{list}  - id: sections\n"),
    )
}

#[test]
fn list_audiences_name_their_sources() {
    let config = assert_loads(&[("a.yaml", &with_list(LIST))]);
    assert_eq!(
        *audience_kind(&config, "crm"),
        AudienceKind::List {
            sources: vec![
                ListSource::BuyerUid,
                ListSource::Sha256Email,
                ListSource::Eid("uidapi.com".into()),
                ListSource::Eid("id5-sync.com".into()),
            ],
            advertiser: "acme".into(),
        }
    );
    assert_eq!(audience_kind(&config, "crm").as_str(), "list");
}

#[test]
fn list_sources_are_known_or_eid_domains_each_once() {
    let text = with_list(&LIST.replace("id5-sync.com", "email"));
    assert_problem(
        &text,
        at(&text, "uidapi.com, email", "email"),
        "audience \"crm\": unknown source \"email\"; expected buyeruid, sha256_email or a \
         user.eids source in lower case, such as uidapi.com, liveramp.com or id5-sync.com",
    );
    let text = with_list(&LIST.replace("id5-sync.com", "buyeruid"));
    assert_problem(
        &text,
        at(&text, "uidapi.com, buyeruid", "buyeruid"),
        "audience \"crm\": source \"buyeruid\" is listed twice",
    );
    let text = with_list("  - id: crm\n    kind: list\n    sources: []\n");
    assert_problem(
        &text,
        at(&text, "sources: []", "[]"),
        "audience \"crm\": list audiences need a non-empty sources list",
    );
    let text = with_list(&format!("{LIST}    products: [P1]\n"));
    let found = problems(&[("a.yaml", &text)]);
    assert!(
        found[0].message.contains("products") && found[0].message.contains("list"),
        "{}",
        found[0].message
    );
}

#[test]
fn list_ids_are_unique_across_advertisers() {
    let other = edit(
        OTHER,
        "  - id: readers\n",
        "  - id: crm\n    kind: list\n    sources: [buyeruid]\n  - id: readers\n",
    );
    let found = problems(&[("a.yaml", &with_list(LIST)), ("b.yaml", &other)]);
    assert!(
        found
            .iter()
            .any(|p| p.message.starts_with("duplicate list audience id \"crm\"")),
        "{found:?}"
    );
}

// ---- bidding strategies ----

#[test]
fn bidding_strategies_and_their_goals() {
    use config::Bidding;
    let item = |text: &str, id: &str| {
        let config = assert_loads(&[("a.yaml", text)]);
        config.advertisers[0]
            .orders
            .iter()
            .flat_map(|o| &o.line_items)
            .find(|l| l.id == id)
            .unwrap()
            .clone()
    };
    // The default: today's fixed CPM, shaded.
    let li = item(BASE, "li-display");
    assert_eq!(
        (li.bidding, li.cpm, li.shading),
        (Bidding::FixedCpm, Micros::from_units(6), true)
    );
    let text = edit(
        BASE,
        "        cpm: 6.00\n",
        "        bidding: { strategy: max_cpc, max_cpc: 1.20, max_cpm: 8.00 }\n        shading: false\n",
    );
    let li = item(&text, "li-display");
    assert_eq!(
        li.bidding,
        Bidding::MaxCpc {
            max_cpc: Micros::parse_decimal("1.20").unwrap()
        }
    );
    assert_eq!((li.cpm, li.shading), (Micros::from_units(8), false));
    // Without max_cpm, the ceiling is a certain conversion's worth.
    let text = edit(
        BASE,
        "        cpm: 6.00\n",
        "        bidding: { strategy: target_cpa, target_cpa: 25.00 }\n",
    );
    let li = item(&text, "li-display");
    assert_eq!(
        li.bidding,
        Bidding::TargetCpa {
            target_cpa: Micros::from_units(25)
        }
    );
    assert_eq!(li.cpm, Micros::from_units(25_000));
    let text = edit(
        BASE,
        "        cpm: 6.00\n",
        "        bidding: { strategy: fixed_cpm }\n        cpm: 6.00\n",
    );
    assert_eq!(item(&text, "li-display").bidding, Bidding::FixedCpm);
}

#[test]
fn bidding_keys_belong_to_their_strategy() {
    for (from, to, context, target, message) in [
        (
            "        cpm: 6.00\n",
            "        bidding: { strategy: max_cpc }\n",
            "bidding: {",
            "{",
            "line item \"li-display\": max_cpc bidding needs max_cpc",
        ),
        (
            "        cpm: 6.00\n",
            "        bidding: { strategy: max_cpc, max_cpc: 1.20 }\n        cpm: 6.00\n",
            "        cpm: 6.00",
            "6.00",
            "line item \"li-display\": cpm is for fixed_cpm bidding; a max_cpc line item takes \
             bidding.max_cpm as its ceiling",
        ),
        (
            "        cpm: 6.00\n",
            "        bidding: { strategy: target_cpa, target_cpa: 25.00, max_cpc: 1.00 }\n",
            "max_cpc: 1.00",
            "1.00",
            "line item \"li-display\": \"max_cpc\" does not apply to a target_cpa bidding strategy",
        ),
        (
            "        cpm: 6.00\n",
            "        bidding: { strategy: fixed_cpm, max_cpm: 9.00 }\n        cpm: 6.00\n",
            "max_cpm: 9.00",
            "9.00",
            "line item \"li-display\": \"max_cpm\" does not apply to a fixed_cpm bidding strategy",
        ),
        (
            "        cpm: 6.00\n",
            "        bidding: { strategy: max_cpc, max_cpc: 0 }\n",
            "max_cpc: 0",
            "0",
            "line item \"li-display\": max_cpc must be more than 0 (it is 0.00)",
        ),
        (
            "        cpm: 6.00\n",
            "        bidding: { strategy: cpc }\n",
            "strategy: cpc",
            "cpc",
            "line item \"li-display\": unknown bidding strategy \"cpc\"; expected one of: \
             fixed_cpm, max_cpc, target_cpa",
        ),
    ] {
        let text = edit(BASE, from, to);
        assert_problem(&text, at(&text, context, target), message);
    }
    // No cpm and no strategy.
    let text = edit(BASE, "        cpm: 6.00\n", "");
    let found = problems(&[("a.yaml", &text)]);
    assert!(
        found
            .iter()
            .any(|p| p.message.contains("li-display\": a cpm is required")),
        "{found:?}"
    );
}

/// Products and topics are ids as audience events name them: an id longer
/// than 256 bytes or with a control character is refused where it is
/// written. Events outside those are refused, so the audience would never
/// match; and a product written with the separator of an advertiser's own
/// events read another advertiser's pixel events.
#[test]
fn audience_products_and_topics_are_ids_events_can_carry() {
    let long = "P".repeat(257);
    for (from, to, target, message) in [
        (
            "    kind: views\n    products: [P1]",
            "    kind: views\n    products: [\"rival\\u001fP1\"]".to_string(),
            "\"rival",
            "audience \"viewers\": an entry of products has a control character",
        ),
        (
            "    interests: [hiking]",
            format!("    interests: [{long}]"),
            long.as_str(),
            "audience \"fans\": an entry of interests is longer than 256 bytes",
        ),
    ] {
        let text = edit(BASE, from, &to);
        assert_problem(&text, at(&text, &to, target), message);
    }
}

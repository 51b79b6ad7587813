//! The targeting keys beyond countries and devices: regions, cities, os,
//! sites/apps/publishers, dayparts and placements. As in `rules.rs`, each rule has its
//! negative cases with exact message and position; the positive side is the
//! base file (which uses every key, on the boundaries) plus the variations
//! checked here.

mod common;

use common::{assert_loads, assert_problem, at, edit, only_problem, problems, BASE, OTHER};
use config::{AllowBlock, DaypartSlot, DaypartZone, Dayparts, Os, Placement, Targeting, Weekday};

fn display_targeting(text: &str) -> Targeting {
    let config = assert_loads(&[("a.yaml", text)]);
    config.advertisers[0].orders[0].line_items[0]
        .targeting
        .clone()
}

/// OTHER's line item with `targeting` (a YAML block at 8 spaces) added.
fn other_with(targeting: &str) -> String {
    edit(
        OTHER,
        "        creatives: [nw-banner]\n",
        &format!("        targeting:\n{targeting}        creatives: [nw-banner]\n"),
    )
}

const LI: &str = "line item \"li-display\"";

// ---- the model ----

#[test]
fn base_targeting_reads_into_the_model() {
    use Weekday::*;
    let t = display_targeting(BASE);
    assert_eq!(t.countries, ["USA", "CAN"]);
    assert_eq!(t.regions, ["US-CO", "CA-BC", "US-DC"]);
    assert_eq!(t.cities, ["Denver", "São Paulo"]);
    assert_eq!(t.os, Os::ALL);
    assert_eq!(
        t.sites,
        AllowBlock {
            allow: vec!["news.example".into(), "Blog.Example".into()],
            block: vec!["spam.example".into()],
        }
    );
    assert_eq!(t.apps.allow, ["com.example.app", "123456789"]);
    assert!(t.apps.block.is_empty());
    assert!(t.publishers.allow.is_empty());
    assert_eq!(t.publishers.block, ["pub-2"]);
    assert_eq!(
        t.dayparts,
        Some(Dayparts {
            timezone: DaypartZone::User,
            slots: vec![
                DaypartSlot {
                    days: vec![Mon, Tue, Wed, Thu, Fri],
                    from_minute: 0,
                    to_minute: 1440,
                },
                DaypartSlot {
                    days: vec![Sat, Sun],
                    from_minute: 600,
                    to_minute: 601,
                },
            ],
        })
    );
}

#[test]
fn new_keys_are_optional_and_unrestricted_when_absent() {
    let config = assert_loads(&[("b.yaml", OTHER)]);
    let t = &config.advertisers[0].orders[0].line_items[0].targeting;
    assert_eq!(*t, Targeting::default());
    assert!(t.sites.is_empty() && t.apps.is_empty() && t.publishers.is_empty());
    assert_eq!(t.dayparts, None);
    assert!(t.placements.is_empty());
}

#[test]
fn the_brief_example_loads() {
    let text = other_with(
        "          countries: [USA]
          regions: [US-CO, US-WA]
          cities: [Denver, Seattle]
          os: [ios, android]
          sites:      { allow: [news.example], block: [spam.example] }
          apps:       { allow: [com.example.app, \"123456789\"], block: [] }
          publishers: { allow: [pub-1], block: [pub-2] }
          dayparts:
            timezone: utc
            slots:
              - { days: [mon, tue, wed, thu, fri], from: \"07:00\", to: \"09:30\" }
              - { days: [sat, sun], from: 10:00, to: 22:00 }
",
    );
    let config = assert_loads(&[("b.yaml", &text)]);
    let t = &config.advertisers[0].orders[0].line_items[0].targeting;
    assert_eq!(t.regions, ["US-CO", "US-WA"]);
    assert_eq!(t.os, [Os::Ios, Os::Android]);
    assert_eq!(t.publishers.allow, ["pub-1"]);
    let dayparts = t.dayparts.as_ref().expect("dayparts");
    assert_eq!(dayparts.timezone, DaypartZone::Utc);
    assert_eq!(
        (dayparts.slots[0].from_minute, dayparts.slots[0].to_minute),
        (420, 570)
    );
    assert_eq!(
        (dayparts.slots[1].from_minute, dayparts.slots[1].to_minute),
        (600, 1320)
    );
}

// ---- regions ----

#[test]
fn regions_are_iso_3166_2_codes() {
    let text = edit(BASE, "[US-CO, CA-BC, US-DC]", "[US-CO, CA-BC, US_DC]");
    assert_problem(
        &text,
        at(&text, "US_DC", "US_DC"),
        &format!("{LI}: region \"US_DC\" is not an ISO-3166-2 subdivision code like US-CO"),
    );
    let text = edit(BASE, "[US-CO, CA-BC, US-DC]", "[US-CO, CA-BC, US-COLO]");
    assert_problem(
        &text,
        at(&text, "US-COLO", "US-COLO"),
        &format!("{LI}: region \"US-COLO\" is not an ISO-3166-2 subdivision code like US-CO"),
    );
    let text = edit(BASE, "[US-CO, CA-BC, US-DC]", "[US-CO, CA-BC, XX-DC]");
    assert_problem(
        &text,
        at(&text, "XX-DC", "XX-DC"),
        &format!("{LI}: region \"XX-DC\" does not start with an ISO-3166-1 alpha-2 country code"),
    );
    let text = edit(BASE, "[US-CO, CA-BC, US-DC]", "[\"\"]");
    assert_problem(
        &text,
        at(&text, "regions: [\"\"]", "\""),
        &format!("{LI}: region \"\" is not an ISO-3166-2 subdivision code like US-CO"),
    );
}

#[test]
fn regions_of_countries_with_known_subdivisions_are_checked() {
    // A region that cannot exist never matches a request: refused, not
    // loaded as a line item that silently buys nothing there.
    let text = edit(BASE, "[US-CO, CA-BC, US-DC]", "[US-CO, CA-BC, US-XX]");
    let found = problems(&[("a.yaml", &text)]);
    assert_eq!(found.len(), 1, "{found:?}");
    let (line, column) = at(&text, "US-XX]", "US-XX");
    let said = found[0].to_string();
    assert!(
        said.starts_with(&format!(
            "a.yaml:{line}:{column}: {LI}: region \"US-XX\" is not a subdivision of US; \
             expected one of: US-AK, US-AL,"
        )) && said.contains("US-CO")
            && said.ends_with("US-WY"),
        "{said}"
    );
    let text = edit(BASE, "[US-CO, CA-BC, US-DC]", "[US-CO, CA-QU]");
    let found = problems(&[("a.yaml", &text)]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0]
            .to_string()
            .contains("region \"CA-QU\" is not a subdivision of CA; expected one of: CA-AB,"),
        "{}",
        found[0]
    );
    // Every state and the district load; a country the bidder has no list
    // for takes its regions as written.
    let text = edit(
        BASE,
        "[US-CO, CA-BC, US-DC]",
        "[US-WY, US-PR, CA-YT, FR-IDF]",
    );
    let text = edit(&text, "countries: [USA, CAN]", "countries: [USA, CAN, FRA]");
    assert_loads(&[("a.yaml", &text)]);
}

#[test]
fn region_hints_for_lower_case_alpha3_and_missing_country() {
    let cases = [
        ("us-co", " (codes are upper case: did you mean \"US-CO\"?)"),
        (
            "USA-CO",
            " (regions start with the two-letter country code: did you mean \"US-CO\"?)",
        ),
        (
            "can-bc",
            " (regions start with the two-letter country code: did you mean \"CA-BC\"?)",
        ),
        (
            "CO",
            " (write the two-letter country code first, like US-CO)",
        ),
    ];
    for (bad, hint) in cases {
        let text = edit(BASE, "[US-CO, CA-BC, US-DC]", &format!("[{bad}]"));
        assert_problem(
            &text,
            at(&text, &format!("regions: [{bad}]"), bad),
            &format!(
                "{LI}: region \"{bad}\" is not an ISO-3166-2 subdivision code like US-CO{hint}"
            ),
        );
    }
    // With a single country, the missing prefix is known.
    let text = edit(BASE, "[US-CO, CA-BC, US-DC]", "[co]");
    let text = edit(&text, "countries: [USA, CAN]", "countries: [USA]");
    assert_problem(
        &text,
        at(&text, "[co]", "co"),
        &format!("{LI}: region \"co\" is not an ISO-3166-2 subdivision code like US-CO (write the country first: did you mean \"US-CO\"?)"),
    );
    // "UK" is what people type for the United Kingdom.
    let text = edit(BASE, "[US-CO, CA-BC, US-DC]", "[UK-LND]");
    let text = edit(&text, "countries: [USA, CAN]", "countries: [GBR]");
    assert_problem(
        &text,
        at(&text, "[UK-LND]", "UK"),
        &format!("{LI}: region \"UK-LND\" does not start with an ISO-3166-1 alpha-2 country code (did you mean \"GB-LND\"?)"),
    );
}

#[test]
fn regions_are_in_the_targeted_countries() {
    let text = edit(BASE, "countries: [USA, CAN]", "countries: [CAN]");
    let found = problems(&[("a.yaml", &text)]);
    let lines: Vec<String> = found.iter().map(ToString::to_string).collect();
    let (l1, c1) = at(&text, "[US-CO,", "US-CO");
    let (l2, c2) = at(&text, "US-DC]", "US-DC");
    assert_eq!(
        lines,
        [
            format!(
                "a.yaml:{l1}:{c1}: {LI}: region US-CO is in US, but the line item only targets CAN"
            ),
            format!(
                "a.yaml:{l2}:{c2}: {LI}: region US-DC is in US, but the line item only targets CAN"
            ),
        ]
    );
    let text = edit(BASE, "countries: [USA, CAN]", "countries: [MEX, CAN]");
    let p = only_problem(&edit(&text, "[US-CO, CA-BC, US-DC]", "[CA-BC, US-DC]"));
    assert_eq!(
        p.message,
        format!("{LI}: region US-DC is in US, but the line item only targets MEX, CAN")
    );
}

#[test]
fn regions_without_countries_may_be_anywhere() {
    let text = edit(BASE, "          countries: [USA, CAN]\n", "");
    let text = edit(
        &text,
        "[US-CO, CA-BC, US-DC]",
        "[US-CO, JP-13, FR-75C, GB-LND, CN-1, DE-BY]",
    );
    let t = display_targeting(&text);
    assert!(t.countries.is_empty());
    assert_eq!(t.regions.len(), 6);
}

#[test]
fn a_wrong_country_is_not_reported_again_through_its_regions() {
    let text = edit(BASE, "countries: [USA, CAN]", "countries: [US, CAN]");
    let p = only_problem(&text);
    assert!(p.message.contains("country \"US\""), "{}", p.message);
}

// ---- cities and os ----

#[test]
fn cities_are_not_empty() {
    let text = edit(BASE, "[Denver, São Paulo]", "[Denver, \" \"]");
    assert_problem(
        &text,
        at(&text, "[Denver, \" \"]", "\" "),
        &format!("{LI}: a city is empty"),
    );
}

#[test]
fn os_uses_the_documented_names() {
    let list = "ios, android, windows, macos, linux, chromeos, tvos, roku, tizen, webos, fireos";
    let text = edit(BASE, "[ios, android, windows,", "[iOS, android, windows,");
    assert_problem(
        &text,
        at(&text, "[iOS,", "iOS"),
        &format!("{LI}: unknown os \"iOS\" (did you mean \"ios\"?); expected one of: {list}"),
    );
    let text = edit(
        BASE,
        "[ios, android, windows,",
        "[Mac OS X, android, windows,",
    );
    assert_problem(
        &text,
        at(&text, "[Mac OS X,", "Mac"),
        &format!(
            "{LI}: unknown os \"Mac OS X\" (did you mean \"macos\"?); expected one of: {list}"
        ),
    );
    let text = edit(
        BASE,
        "[ios, android, windows,",
        "[blackberry, android, windows,",
    );
    assert_problem(
        &text,
        at(&text, "[blackberry,", "blackberry"),
        &format!("{LI}: unknown os \"blackberry\"; expected one of: {list}"),
    );
}

// ---- sites, apps, publishers ----

#[test]
fn sites_are_bare_domains() {
    let text = edit(
        BASE,
        "allow: [news.example,",
        "allow: [https://news.example,",
    );
    assert_problem(
        &text,
        at(&text, "[https://news", "https"),
        &format!("{LI}: site \"https://news.example\" must be a bare domain like news.example, without http:// or a path"),
    );
    let text = edit(BASE, "allow: [news.example,", "allow: [news.example:8443,");
    assert_problem(
        &text,
        at(&text, "[news.example:8443", "news"),
        &format!("{LI}: site \"news.example:8443\" must be a bare domain like news.example, without a port; write \"news.example\""),
    );
    let text = edit(
        BASE,
        "allow: [news.example,",
        "allow: [\"news.example,sports.example\",",
    );
    assert_problem(
        &text,
        at(&text, "[\"news.example,sports", "\""),
        &format!(
            "{LI}: site \"news.example,sports.example\" is not a domain name like news.example"
        ),
    );
    let text = edit(BASE, "block: [spam.example]", "block: [spam]");
    assert_problem(
        &text,
        at(&text, "block: [spam]", "spam"),
        &format!("{LI}: site \"spam\" is not a domain name like news.example"),
    );
    let text = edit(BASE, "block: [spam.example]", "block: [\"\"]");
    assert_problem(
        &text,
        at(&text, "block: [\"\"]", "\""),
        &format!("{LI}: a site is empty"),
    );
    // A site covers its subdomains. Matched as a suffix of the page's
    // host, a wildcard or the root's final dot matched nothing, and a
    // block list of them blocked nothing: read as the domain, as `badv`
    // entries are.
    let text = edit(
        BASE,
        "block: [spam.example]",
        "block: [\"*.spam.example\", ads.example.]",
    );
    let t = display_targeting(&text);
    assert_eq!(t.sites.block, ["spam.example", "ads.example"]);
    let text = edit(BASE, "block: [spam.example]", "block: [\"*.news.example\"]");
    assert_problem(
        &text,
        at(&text, "block: [\"*", "\""),
        &format!("{LI}: site \"*.news.example\" is in both allow and block of sites"),
    );
    // A `*` anywhere else has no such reading.
    let text = edit(BASE, "block: [spam.example]", "block: [\"ads.*.example\"]");
    assert_problem(
        &text,
        at(&text, "block: [\"ads", "\""),
        &format!("{LI}: site \"ads.*.example\" holds a \"*\"; write the domain, which covers its subdomains"),
    );
}

#[test]
fn apps_have_no_spaces_and_publishers_are_not_empty() {
    let text = edit(BASE, "[com.example.app,", "[com.example app,");
    assert_problem(
        &text,
        at(&text, "[com.example app,", "com"),
        &format!("{LI}: app \"com.example app\" cannot contain spaces; write its bundle or store id, like com.example.app or 123456789"),
    );
    let text = edit(BASE, "[com.example.app,", "[\"\",");
    assert_problem(
        &text,
        at(&text, "allow: [\"\",", "\""),
        &format!("{LI}: an app is empty"),
    );
    let text = edit(BASE, "block: [pub-2]", "block: [pub-2, \"\"]");
    assert_problem(
        &text,
        at(&text, "[pub-2, \"\"]", "\"\""),
        &format!("{LI}: a publisher id is empty"),
    );
}

#[test]
fn a_value_cannot_be_both_allowed_and_blocked() {
    // Domains compare without case...
    let text = edit(BASE, "block: [spam.example]", "block: [blog.example]");
    assert_problem(
        &text,
        at(&text, "block: [blog.example]", "blog"),
        &format!("{LI}: site \"blog.example\" is in both allow and block of sites"),
    );
    let text = edit(
        BASE,
        "apps: { allow: [com.example.app, '123456789'] }",
        "apps: { allow: [com.example.app, '123456789'], block: ['123456789'] }",
    );
    assert_problem(
        &text,
        at(&text, "block: ['123456789']", "'"),
        &format!("{LI}: app \"123456789\" is in both allow and block of apps"),
    );
    let text = edit(
        BASE,
        "publishers: { block: [pub-2] }",
        "publishers: { allow: [pub-1, pub-2], block: [pub-2] }",
    );
    assert_problem(
        &text,
        at(&text, "block: [pub-2] }", "pub"),
        &format!("{LI}: publisher id \"pub-2\" is in both allow and block of publishers"),
    );
    // ...ids with it.
    let text = edit(
        BASE,
        "publishers: { block: [pub-2] }",
        "publishers: { allow: [PUB-2], block: [pub-2] }",
    );
    let t = display_targeting(&text);
    assert_eq!(t.publishers.allow, ["PUB-2"]);
}

#[test]
fn an_allow_block_list_lists_something() {
    let text = edit(
        BASE,
        "publishers: { block: [pub-2] }",
        "publishers: { allow: [] }",
    );
    assert_problem(
        &text,
        at(&text, "publishers: { allow: [] }", "{"),
        &format!("{LI}: publishers lists nothing to allow or block; add some or remove publishers"),
    );
}

/// `deals: []` (or `deals:` with nothing after it) read as "no deal": a
/// line item meant for a private marketplace bought on the open market.
/// Refused where it is written. The other lists written empty restrict
/// nothing, as documented (configs rely on it).
#[test]
fn deals_list_something() {
    for empty in ["deals: []", "deals:"] {
        let text = edit(BASE, "deals: [DEAL-1]", empty);
        let problems = problems(&[("a.yaml", &text)]);
        assert_eq!(problems.len(), 1, "{empty}: {problems:?}");
        assert_eq!(
            problems[0].message,
            format!(
                "{LI}: deals lists nothing, which would take this line item to the open market; \
                 list its deal ids or remove deals"
            ),
            "{empty}"
        );
        assert_eq!(problems[0].line, at(&text, empty, "deals").0, "{empty}");
    }
    for (line, empty) in [
        ("countries: [USA, CAN]", "countries: []"),
        ("cities: [Denver, São Paulo]", "cities:"),
        (
            "devices: [desktop, phone, tablet, ctv, connected_device, set_top_box, dooh]",
            "devices: []",
        ),
    ] {
        let mut text = edit(BASE, line, empty);
        if line.starts_with("countries") {
            // Regions are held against the countries listed.
            text = edit(&text, "regions: [US-CO, CA-BC, US-DC]", "regions: []");
        }
        assert_loads(&[("a.yaml", &text)]);
    }
    // `placements:` with nothing after it on a display line item reads as
    // left out, as it always did.
    let text = edit(
        BASE,
        "          deals: [DEAL-1]\n",
        "          deals: [DEAL-1]\n          placements:\n",
    );
    assert_loads(&[("a.yaml", &text)]);
}

// ---- dayparts ----

#[test]
fn dayparts_need_slots() {
    let text = edit(
        BASE,
        "            slots:\n              - { days: [mon, tue, wed, thu, fri], from: 00:00, to: '24:00' }\n              - { days: [sat, sun], from: '10:00', to: '10:01' }\n",
        "            slots: []\n",
    );
    assert_problem(
        &text,
        at(&text, "slots: []", "["),
        &format!("{LI}: dayparts lists no slots; add some, like {{ days: [mon], from: \"07:00\", to: \"09:30\" }}, or remove dayparts"),
    );
    let text = edit(
        BASE,
        "            slots:\n              - { days: [mon, tue, wed, thu, fri], from: 00:00, to: '24:00' }\n              - { days: [sat, sun], from: '10:00', to: '10:01' }\n",
        "            timezone: utc\n",
    );
    let p = only_problem(&text);
    assert_eq!(p.line, at(&text, "timezone: utc", "timezone").0);
    assert!(
        p.message.contains("dayparts lists no slots"),
        "{}",
        p.message
    );
}

#[test]
fn dayparts_timezone_is_user_or_utc() {
    let text = edit(
        BASE,
        "          dayparts:\n",
        "          dayparts:\n            timezone: UTC\n",
    );
    assert_problem(
        &text,
        at(&text, "timezone: UTC", "UTC"),
        &format!("{LI}: unknown dayparts timezone \"UTC\" (did you mean \"utc\"?); expected user (the device's local time) or utc"),
    );
    let text = edit(
        BASE,
        "          dayparts:\n",
        "          dayparts:\n            timezone: America/Denver\n",
    );
    assert_problem(
        &text,
        at(&text, "timezone: America", "America"),
        &format!("{LI}: unknown dayparts timezone \"America/Denver\"; expected user (the device's local time) or utc"),
    );
    let text = edit(
        BASE,
        "          dayparts:\n",
        "          dayparts:\n            timezone: user\n",
    );
    let t = display_targeting(&text);
    assert_eq!(t.dayparts.map(|d| d.timezone), Some(DaypartZone::User));
}

#[test]
fn daypart_days_are_known_and_listed() {
    let list = "mon, tue, wed, thu, fri, sat, sun";
    let text = edit(BASE, "days: [sat, sun]", "days: [Saturday, sun]");
    assert_problem(
        &text,
        at(&text, "[Saturday", "Saturday"),
        &format!("{LI}: unknown day \"Saturday\" (did you mean \"sat\"?); expected one of: {list}"),
    );
    let text = edit(BASE, "days: [sat, sun]", "days: [sat, thurs]");
    assert_problem(
        &text,
        at(&text, "thurs", "thurs"),
        &format!("{LI}: unknown day \"thurs\" (did you mean \"thu\"?); expected one of: {list}"),
    );
    let text = edit(BASE, "days: [sat, sun]", "days: [sat, weekend]");
    assert_problem(
        &text,
        at(&text, "weekend", "weekend"),
        &format!("{LI}: unknown day \"weekend\"; expected one of: {list}"),
    );
    let text = edit(BASE, "days: [sat, sun]", "days: []");
    assert_problem(
        &text,
        at(&text, "days: []", "["),
        &format!("{LI}: a daypart slot lists no days; add some, like [mon, tue]"),
    );
    let text = edit(BASE, "{ days: [sat, sun], from:", "{ from:");
    assert_problem(
        &text,
        at(&text, "- { from: '10:00'", "{"),
        &format!("{LI}: a daypart slot lists no days; add some, like [mon, tue]"),
    );
}

#[test]
fn daypart_times_are_hh_mm() {
    let cases = [
        ("from", "7:00", "is not a time written as HH:MM, like 07:00"),
        (
            "from",
            "07.00",
            "is not a time written as HH:MM, like 07:00",
        ),
        (
            "from",
            "10:00am",
            "is not a time written as HH:MM, like 07:00",
        ),
        ("from", "10:60", "has minute 60; minutes go from 00 to 59"),
        ("to", "10:99", "has minute 99; minutes go from 00 to 59"),
        (
            "from",
            "24:00",
            "is the end of the day; 24:00 can only end a slot, use 00:00 to start one",
        ),
        (
            "to",
            "24:01",
            "has hour 24; hours go from 00 to 23 (and 24:00 may end a slot)",
        ),
        (
            "to",
            "25:00",
            "has hour 25; hours go from 00 to 23 (and 24:00 may end a slot)",
        ),
    ];
    for (key, bad, reason) in cases {
        let slot = match key {
            "from" => format!("from: '{bad}', to: '10:01'"),
            _ => format!("from: '10:00', to: '{bad}'"),
        };
        let text = edit(BASE, "from: '10:00', to: '10:01'", &slot);
        assert_problem(
            &text,
            at(&text, &slot, &format!("'{bad}")),
            &format!("{LI}: daypart {key} \"{bad}\" {reason}"),
        );
    }
}

#[test]
fn daypart_slots_end_after_they_start() {
    let text = edit(
        BASE,
        "from: '10:00', to: '10:01'",
        "from: '10:00', to: '10:00'",
    );
    assert_problem(
        &text,
        at(&text, "to: '10:00'", "'"),
        &format!("{LI}: the daypart slot from 10:00 to 10:00 is empty; to must be after from"),
    );
    let text = edit(
        BASE,
        "from: '10:00', to: '10:01'",
        "from: '22:00', to: '06:00'",
    );
    assert_problem(
        &text,
        at(&text, "to: '06:00'", "'"),
        &format!("{LI}: the daypart slot from 22:00 to 06:00 ends before it starts; a slot cannot cross midnight, so split it in two: one to 24:00 and one from 00:00"),
    );
}

// ---- placements ----

const VIDEO: &str = "line item \"li-video\"";
const PLACEMENTS: &str = "instream, accompanying, interstitial, standalone, outstream";

/// BASE with `targeting` (YAML at 10 spaces) added to the video line item.
fn video_with(targeting: &str) -> String {
    edit(
        BASE,
        "        creatives: [spot]\n",
        &format!("        targeting:\n{targeting}        creatives: [spot]\n"),
    )
}

/// The targeting of BASE's line item `id`, once `text` loads.
fn targeting_of(text: &str, id: &str) -> Targeting {
    let config = assert_loads(&[("a.yaml", text)]);
    config.advertisers[0]
        .orders
        .iter()
        .flat_map(|o| &o.line_items)
        .find(|l| l.id == id)
        .expect("line item")
        .targeting
        .clone()
}

#[test]
fn placements_read_into_the_model_for_video_and_audio() {
    let text = video_with("          placements: [instream, outstream]\n");
    let t = targeting_of(&text, "li-video");
    assert_eq!(t.placements, [Placement::Instream, Placement::Outstream]);
    assert_eq!(
        t,
        Targeting {
            placements: vec![Placement::Instream, Placement::Outstream],
            ..Targeting::default()
        }
    );

    // Every name, block style, on audio; duplicates are kept as written.
    let text = edit(
        BASE,
        "        creatives: [jingle]\n",
        "        targeting:\n          placements:\n            - instream\n            - accompanying\n            - interstitial\n            - standalone\n            - outstream\n            - instream\n        creatives: [jingle]\n",
    );
    let t = targeting_of(&text, "li-audio");
    let mut all = Placement::ALL.to_vec();
    all.push(Placement::Instream);
    assert_eq!(t.placements, all);

    // An empty list is no restriction, like the other lists.
    let t = targeting_of(&video_with("          placements: []\n"), "li-video");
    assert_eq!(t, Targeting::default());
}

#[test]
fn placements_use_the_documented_names() {
    let cases = [
        ("in-stream", " (did you mean \"instream\"?)"),
        ("Out-Stream", " (did you mean \"outstream\"?)"),
        ("out_stream", " (did you mean \"outstream\"?)"),
        ("Interstitial", " (did you mean \"interstitial\"?)"),
        (
            "ctv",
            " (ctv is a device, not a placement; target it with devices: [ctv])",
        ),
        (
            "CTV",
            " (ctv is a device, not a placement; target it with devices: [ctv])",
        ),
        ("preroll", ""),
    ];
    for (bad, hint) in cases {
        let text = video_with(&format!("          placements: [instream, {bad}]\n"));
        assert_problem(
            &text,
            at(&text, &format!("[instream, {bad}]"), bad),
            &format!("{VIDEO}: unknown placement \"{bad}\"{hint}; expected one of: {PLACEMENTS}"),
        );
    }
    // Each unknown value is reported where it is, block style too.
    let text = video_with("          placements:\n            - instream\n            - outstrem\n            - \"\"\n");
    let found = problems(&[("a.yaml", &text)]);
    let lines: Vec<String> = found.iter().map(ToString::to_string).collect();
    let (l1, c1) = at(&text, "- outstrem", "outstrem");
    let (l2, c2) = at(&text, "- \"\"", "\"");
    assert_eq!(
        lines,
        [
            format!("a.yaml:{l1}:{c1}: {VIDEO}: unknown placement \"outstrem\"; expected one of: {PLACEMENTS}"),
            format!("a.yaml:{l2}:{c2}: {VIDEO}: unknown placement \"\"; expected one of: {PLACEMENTS}"),
        ]
    );
}

#[test]
fn placements_apply_to_video_and_audio_line_items_only() {
    let message =
        format!("{LI}: placements apply to video and audio line items; this one is display");
    let text = edit(
        BASE,
        "          deals: [DEAL-1]\n",
        "          deals: [DEAL-1]\n          placements: [instream]\n",
    );
    assert_problem(&text, at(&text, "placements: [instream]", "["), &message);
    // The key is the mistake: its values are not reported on top, and an
    // empty list is no excuse.
    let text = edit(
        BASE,
        "          deals: [DEAL-1]\n",
        "          deals: [DEAL-1]\n          placements: [in-stream, ctv]\n",
    );
    assert_problem(&text, at(&text, "placements: [in-stream", "["), &message);
    let text = edit(
        BASE,
        "          deals: [DEAL-1]\n",
        "          deals: [DEAL-1]\n          placements: []\n",
    );
    assert_problem(&text, at(&text, "placements: []", "["), &message);
    // Block style points at the list.
    let text = other_with("          placements:\n            - outstream\n");
    let p = only_problem(&text);
    assert_eq!(
        p.message,
        "line item \"nw-line\": placements apply to video and audio line items; this one is display"
    );
    assert_eq!(p.line, at(&text, "- outstream", "-").0);
}

#[test]
fn placements_on_an_unknown_media_are_not_held_against_it() {
    // Display or not is unknowable; only the media itself is reported.
    let text = video_with("          placements: [instream]\n");
    let text = edit(&text, "media: video\n", "media: vidoe\n");
    let p = only_problem(&text);
    assert!(
        p.message
            .starts_with(&format!("{VIDEO}: unknown media \"vidoe\"")),
        "{}",
        p.message
    );
}

// ---- unknown keys ----

#[test]
fn unknown_keys_in_the_new_mappings() {
    let cases = [
        (
            "block: [spam.example]",
            "deny: [spam.example]",
            "deny",
            "unknown key \"deny\" in sites, apps or publishers; expected one of: allow, block",
        ),
        (
            "          dayparts:\n",
            "          dayparts:\n            tz: utc\n",
            "tz",
            "unknown key \"tz\" in dayparts; expected one of: timezone, slots",
        ),
        (
            "{ days: [sat, sun],",
            "{ day: [sat, sun],",
            "day",
            "unknown key \"day\" in daypart slot; expected one of: days, from, to",
        ),
        (
            "          cities: [Denver",
            "          city: [Denver",
            "city",
            "unknown key \"city\" in targeting; expected one of: countries, regions, cities, os, sites, apps, publishers, dayparts, devices, keywords, deals, placements",
        ),
    ];
    for (from, to, key, message) in cases {
        let text = edit(BASE, from, to);
        assert_problem(&text, at(&text, to, key), message);
    }
}

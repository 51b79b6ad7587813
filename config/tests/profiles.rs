//! Exchange profiles, currency rates, file kinds and native creatives: one
//! negative case (exact message and position) per rule, and the valid files
//! read into the model.
//!
//! Tests that read keys from the environment each use variables of their
//! own (`CFGTEST_<TEST>_…`): tests run in parallel threads of one process.

mod common;

use common::{assert_loads, assert_problem, at, edit, only_problem, problems, BASE, NATIVE, OTHER};
use config::{ChargeOn, CreativeKind, EncryptionScheme, Image, Media, Rate};

/// A valid exchange profile with every optional key but price_encryption.
const EXCHANGE: &str = "\
exchange:
  id: adx
  name: Ad Exchange
  charge_on: billing
  vast_default: \"4.1\"
  gzip_responses: true
  tmax_default_ms: 120
";

/// Google's published test keys (not secrets).
const ENC_KEY: &str = "skU7Ax_NL5pPAFyKdkfZjZz2-VhIN8bjj1rVFOaJ_5o=";
const INT_KEY: &str = "arO23ykdNqUQ5LEoQ0FVmPkBd7xB5CO89PDZlSjpFxo=";

const RATES: &str = "\
currency_rates:
  base: USD
  as_of: 2026-11-30
  rates:
    JPY: 155.3
    EUR: 0.95
    GBP: 0.79
";

/// An exchange file whose price_encryption reads `{prefix}_ENC` and
/// `{prefix}_INT`.
fn encrypted_exchange(prefix: &str) -> String {
    edit(
        EXCHANGE,
        "  charge_on: billing\n",
        &format!(
            "  price_encryption:\n    scheme: google\n    encryption_key_env: {prefix}_ENC\n    \
             integrity_key_env: {prefix}_INT\n  charge_on: billing\n"
        ),
    )
}

fn set_keys(prefix: &str, encryption: &str, integrity: &str) {
    std::env::set_var(format!("{prefix}_ENC"), encryption);
    std::env::set_var(format!("{prefix}_INT"), integrity);
}

// ---- exchanges ----

#[test]
fn exchange_loads_alongside_an_advertiser() {
    let config = assert_loads(&[("a.yaml", BASE), ("x/adx.yaml", EXCHANGE)]);
    assert_eq!(config.advertisers.len(), 1);
    assert_eq!(config.currency_rates, None);
    let [adx] = &config.exchanges[..] else {
        panic!("one exchange expected: {:?}", config.exchanges);
    };
    assert_eq!(adx.id, "adx");
    assert_eq!(adx.name, "Ad Exchange");
    assert_eq!(adx.price_encryption, None);
    assert_eq!(adx.charge_on, ChargeOn::Billing);
    assert_eq!(adx.vast_default_protocol, 11);
    assert!(adx.gzip_responses);
    assert_eq!(adx.tmax_default_ms, Some(120));
    assert_eq!(adx.file.to_str(), Some("x/adx.yaml"));
}

#[test]
fn exchange_defaults() {
    let text = "exchange:\n  id: adx\n  name: Ad Exchange\n";
    let config = assert_loads(&[("x.yaml", text)]);
    let adx = &config.exchanges[0];
    assert_eq!(adx.charge_on, ChargeOn::First);
    assert_eq!(adx.vast_default_protocol, 3);
    assert!(!adx.gzip_responses);
    assert_eq!(adx.tmax_default_ms, None);
    assert_eq!(adx.price_encryption, None);
}

#[test]
fn charge_on_values() {
    for (written, expected) in [
        ("win", ChargeOn::Win),
        ("billing", ChargeOn::Billing),
        ("first", ChargeOn::First),
    ] {
        let text = edit(
            EXCHANGE,
            "charge_on: billing",
            &format!("charge_on: {written}"),
        );
        let config = assert_loads(&[("x.yaml", &text)]);
        assert_eq!(config.exchanges[0].charge_on, expected);
        assert_eq!(expected.as_str(), written);
    }
    let text = edit(EXCHANGE, "charge_on: billing", "charge_on: impression");
    assert_problem(
        &text,
        at(&text, "charge_on: impression", "impression"),
        "exchange \"adx\": unknown charge_on \"impression\"; expected win (the win notice \
         charges), billing (the billing notice charges) or first (whichever comes first)",
    );
}

#[test]
fn openrtb_version_values() {
    let config = assert_loads(&[("x.yaml", EXCHANGE)]);
    assert!(!config.exchanges[0].openrtb_2_5);
    for (written, v25) in [("\"2.5\"", true), ("2.5", true), ("\"2.6\"", false)] {
        let text = edit(
            EXCHANGE,
            "vast_default: \"4.1\"",
            &format!("vast_default: \"4.1\"\n  openrtb_version: {written}"),
        );
        let config = assert_loads(&[("x.yaml", &text)]);
        assert_eq!(config.exchanges[0].openrtb_2_5, v25, "{written}");
    }
    let text = edit(
        EXCHANGE,
        "vast_default: \"4.1\"",
        "vast_default: \"4.1\"\n  openrtb_version: \"2.4\"",
    );
    assert_problem(
        &text,
        at(&text, "openrtb_version: \"2.4\"", "\"2.4\""),
        "exchange \"adx\": openrtb_version \"2.4\" is not a version we answer in; expected \
         \"2.5\" or \"2.6\" (quoted)",
    );
}

#[test]
fn vast_default_versions() {
    for (written, protocol) in [
        ("\"2.0\"", 2),
        ("\"3.0\"", 3),
        ("'4.0'", 7),
        ("\"4.1\"", 11),
        ("\"4.2\"", 13),
        // Unquoted, the reader still hands over the text as written.
        ("2.0", 2),
        ("3.0", 3),
        ("4.2", 13),
    ] {
        let text = edit(
            EXCHANGE,
            "vast_default: \"4.1\"",
            &format!("vast_default: {written}"),
        );
        let config = assert_loads(&[("x.yaml", &text)]);
        assert_eq!(
            config.exchanges[0].vast_default_protocol, protocol,
            "{written}"
        );
    }
    for bad in ["3", "\"3\"", "\"4.3\"", "\"3.00\"", "\"VAST 3.0\""] {
        let text = edit(
            EXCHANGE,
            "vast_default: \"4.1\"",
            &format!("vast_default: {bad}"),
        );
        let value = bad.trim_matches('"');
        assert_problem(
            &text,
            at(&text, &format!("vast_default: {bad}"), bad),
            &format!(
                "exchange \"adx\": vast_default \"{value}\" is not a VAST version we write; \
                 expected one of: 2.0, 3.0, 4.0, 4.1, 4.2 (quoted, like \"3.0\")"
            ),
        );
    }
}

#[test]
fn tmax_default_ms_is_10_to_10000() {
    for good in ["10", "10000"] {
        let text = edit(
            EXCHANGE,
            "tmax_default_ms: 120",
            &format!("tmax_default_ms: {good}"),
        );
        assert_loads(&[("x.yaml", &text)]);
    }
    for bad in ["9", "10001", "0", "-5"] {
        let text = edit(
            EXCHANGE,
            "tmax_default_ms: 120",
            &format!("tmax_default_ms: {bad}"),
        );
        assert_problem(
            &text,
            at(&text, &format!("tmax_default_ms: {bad}"), bad),
            &format!(
                "exchange \"adx\": tmax_default_ms must be between 10 and 10000 (it is {bad})"
            ),
        );
    }
}

#[test]
fn exchange_id_is_a_url_segment() {
    let text = edit(EXCHANGE, "id: adx", "id: google/adx");
    assert_problem(
        &text,
        at(&text, "id: google/adx", "google"),
        "exchange \"google/adx\": an exchange id is part of its bid URL: use letters, digits, \
         '-', '_' and '.', like google-adx",
    );
    let text = edit(EXCHANGE, "id: adx", "id: google adx");
    assert_problem(
        &text,
        at(&text, "id: google adx", "google"),
        "exchange \"google adx\": ids cannot contain spaces; use dashes, like tent-ctv-video",
    );
    let long = "x".repeat(65);
    let text = edit(EXCHANGE, "id: adx", &format!("id: {long}"));
    assert_problem(
        &text,
        at(&text, &long, "x"),
        &format!("exchange \"{long}\": the id is longer than 64 characters"),
    );
    let text = edit(EXCHANGE, "id: adx", &format!("id: {}", "x".repeat(64)));
    assert_loads(&[("x.yaml", &text)]);
    let text = edit(EXCHANGE, "id: adx", "id: \"\"");
    assert_problem(
        &text,
        at(&text, "id: \"\"", "\""),
        "exchange \"\": the id is empty",
    );
    for dots in ["\".\"", "\"..\""] {
        let text = edit(EXCHANGE, "id: adx", &format!("id: {dots}"));
        let id = dots.trim_matches('"');
        assert_problem(
            &text,
            at(&text, &format!("id: {dots}"), "\""),
            &format!(
                "exchange \"{id}\": an exchange id is part of its bid URL: it cannot be only dots"
            ),
        );
    }
    let text = edit(EXCHANGE, "id: adx", "id: ad.x");
    assert_loads(&[("x.yaml", &text)]);
}

#[test]
fn reservation_ttl_secs_is_1_to_3600() {
    let text = format!("{EXCHANGE}  reservation_ttl_secs: 600\n");
    assert_eq!(
        assert_loads(&[("x.yaml", &text)]).exchanges[0].reservation_ttl_secs,
        Some(600)
    );
    assert_eq!(
        assert_loads(&[("x.yaml", EXCHANGE)]).exchanges[0].reservation_ttl_secs,
        None
    );
    for bad in ["0", "3601"] {
        let text = format!("{EXCHANGE}  reservation_ttl_secs: {bad}\n");
        assert_problem(
            &text,
            at(&text, &format!("reservation_ttl_secs: {bad}"), bad),
            &format!(
                "exchange \"adx\": reservation_ttl_secs must be between 1 and 3600 (it is {bad})"
            ),
        );
    }
}

#[test]
fn sync_url_is_https_with_a_user_id_macro() {
    let text = format!(
        "{EXCHANGE}  sync_url: https://x.example/setuid?bidder=us&uid=${{UID}}\n  \
         sync_redirect_hosts: [Sync.X.Example, cdn.x.example]\n"
    );
    let x = &assert_loads(&[("x.yaml", &text)]).exchanges[0];
    assert_eq!(
        x.sync_url.as_deref(),
        Some("https://x.example/setuid?bidder=us&uid=${UID}")
    );
    assert_eq!(x.sync_redirect_hosts, ["sync.x.example", "cdn.x.example"]);
    for (url, says) in [
        ("http://x.example/s?u=$UID", "must be https"),
        ("https://x.example/s?u=me", "has no ${UID} (or $UID) macro"),
        ("x.example/s?u=$UID", "must start with http:// or https://"),
    ] {
        let text = format!("{EXCHANGE}  sync_url: {url}\n");
        let found: Vec<String> = problems(&[("x.yaml", &text)])
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(
            found.len() == 1 && found[0].contains(says),
            "{url}: {found:?}"
        );
    }
    let text = format!("{EXCHANGE}  sync_redirect_hosts: [\"https://x.example/\"]\n");
    let found: Vec<String> = problems(&[("x.yaml", &text)])
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        found.len() == 1 && found[0].contains("is not a host name"),
        "{found:?}"
    );
}

#[test]
fn allow_from_takes_networks_and_addresses() {
    let text =
        format!("{EXCHANGE}  allow_from: [203.0.113.0/24, 198.51.100.7, \"2001:DB8::/32\"]\n");
    let x = &assert_loads(&[("x.yaml", &text)]).exchanges[0];
    let shown: Vec<String> = x.allow_from.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        ["203.0.113.0/24", "198.51.100.7/32", "2001:db8::/32"]
    );
    // IPv4-mapped, as dual-stack logs write them: the IPv4 network, which
    // is how a peer's address is compared (exchanges probe: they loaded
    // and never matched, and every request of the exchange got 403).
    let text = format!("{EXCHANGE}  allow_from: [\"::ffff:127.0.0.1\", \"::ffff:10.1.0.0/112\"]\n");
    let x = &assert_loads(&[("x.yaml", &text)]).exchanges[0];
    let shown: Vec<String> = x.allow_from.iter().map(ToString::to_string).collect();
    assert_eq!(shown, ["127.0.0.1/32", "10.1.0.0/16"]);
    let text = format!("{EXCHANGE}  allow_from: [\"::ffff:0:0/96\"]\n");
    let found = problems(&[("x.yaml", &text)]);
    assert!(
        found[0].message.contains("is every address"),
        "{}",
        found[0].message
    );
    // A length typed wrong would open the endpoint to a quarter of the
    // internet; every address is no check at all.
    let text = format!("{EXCHANGE}  allow_from: [203.0.113.7/2]\n");
    assert_problem(
        &text,
        at(&text, "203.0.113.7/2", "2"),
        "exchange \"adx\": allow_from: \"203.0.113.7/2\" has bits set past its length; write \
         the network (192.0.0.0/2) or the address alone",
    );
    let text = format!("{EXCHANGE}  allow_from: [\"::/0\"]\n");
    assert_problem(
        &text,
        at(&text, "[\"::/0\"]", "\""),
        "exchange \"adx\": allow_from: \"::/0\" is every address; leave allow_from out to \
         take requests from anywhere",
    );
    for bad in ["203.0.113.0/33", "exchange.example", "10.0.0.0/", "*"] {
        let text = format!("{EXCHANGE}  allow_from: [\"{bad}\"]\n");
        assert_problem(
            &text,
            at(&text, &format!("[\"{bad}\"]"), "\""),
            &format!(
                "exchange \"adx\": allow_from: \"{bad}\" is not a network or an address (like \
                 203.0.113.0/24, 198.51.100.7 or 2001:db8::/32)"
            ),
        );
    }
    let text = format!("{EXCHANGE}  allow_from: []\n");
    assert_problem(
        &text,
        at(&text, "allow_from: []", "["),
        "exchange \"adx\": allow_from is empty; leave it out to take requests from anywhere",
    );
}

#[test]
fn a_seat_is_an_id_as_the_exchange_gave_it() {
    let text = format!("{EXCHANGE}  seat: \"acct-42\"\n");
    let x = &assert_loads(&[("x.yaml", &text)]).exchanges[0];
    assert_eq!(x.seat.as_deref(), Some("acct-42"));
    let text = format!("{EXCHANGE}  seat: \"acct 42\"\n");
    assert_problem(
        &text,
        at(&text, "seat: \"acct 42\"", "\""),
        "exchange \"adx\": seat \"acct 42\" is not a seat id (1 to 64 printable ASCII \
         characters, no spaces), as the exchange gave it",
    );
}

#[test]
fn exchange_name_is_not_empty() {
    let text = edit(EXCHANGE, "name: Ad Exchange", "name: \" \"");
    assert_problem(
        &text,
        at(&text, "name: \" \"", "\""),
        "exchange \"adx\": name is empty",
    );
}

#[test]
fn duplicate_exchange_id_across_files() {
    let second = edit(EXCHANGE, "name: Ad Exchange", "name: Another");
    let found = problems(&[("a.yaml", EXCHANGE), ("b.yaml", &second)]);
    let lines: Vec<String> = found.iter().map(ToString::to_string).collect();
    let (l1, c1) = at(EXCHANGE, "id: adx", "adx");
    let (l2, c2) = at(&second, "id: adx", "adx");
    assert_eq!(
        lines,
        [format!(
            "b.yaml:{l2}:{c2}: duplicate exchange id \"adx\": already used at a.yaml:{l1}:{c1}"
        )]
    );
}

#[test]
fn every_exchange_problem_is_reported_at_once() {
    let prefix = "CFGTEST_EVERY_PROBLEM";
    std::env::remove_var(format!("{prefix}_ENC"));
    std::env::set_var(format!("{prefix}_INT"), INT_KEY);
    let text = edit(
        &encrypted_exchange(prefix),
        "charge_on: billing",
        "charge_on: click",
    );
    let text = edit(&text, "vast_default: \"4.1\"", "vast_default: \"5.0\"");
    let text = edit(&text, "tmax_default_ms: 120", "tmax_default_ms: 5");
    let found = problems(&[("x.yaml", &text)]);
    let at_line = |context: &str, target: &str| {
        let (l, c) = at(&text, context, target);
        format!("x.yaml:{l}:{c}: exchange \"adx\": ")
    };
    let lines: Vec<String> = found.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            format!(
                "{}the environment variable {prefix}_ENC (encryption_key_env) is not set",
                at_line("encryption_key_env: CFGTEST", "CFGTEST")
            ),
            format!(
                "{}unknown charge_on \"click\"; expected win (the win notice charges), billing \
                 (the billing notice charges) or first (whichever comes first)",
                at_line("charge_on: click", "click")
            ),
            format!(
                "{}vast_default \"5.0\" is not a VAST version we write; expected one of: 2.0, \
                 3.0, 4.0, 4.1, 4.2 (quoted, like \"3.0\")",
                at_line("vast_default: \"5.0\"", "\"")
            ),
            format!(
                "{}tmax_default_ms must be between 10 and 10000 (it is 5)",
                at_line("tmax_default_ms: 5", "5")
            ),
        ]
    );
}

#[test]
fn unknown_key_in_exchange_names_the_mapping() {
    let text = edit(EXCHANGE, "gzip_responses: true", "gzip: true");
    assert_problem(
        &text,
        at(&text, "gzip: true", "gzip"),
        "unknown key \"gzip\" in exchange; expected one of: id, name, price_encryption, \
         charge_on, vast_default, gzip_responses, openrtb_version, tmax_default_ms, reservation_ttl_secs, \
         sync_url, sync_redirect_hosts, allow_from, seat",
    );
}

// ---- price encryption ----

#[test]
fn price_encryption_reads_keys_from_the_environment() {
    let prefix = "CFGTEST_VALID_KEYS";
    set_keys(prefix, ENC_KEY, &format!(" {INT_KEY}\n"));
    let text = encrypted_exchange(prefix);
    let config = assert_loads(&[("x.yaml", &text)]);
    let adx = &config.exchanges[0];
    let p = adx.price_encryption.as_ref().expect("price_encryption");
    assert_eq!(p.scheme, EncryptionScheme::Google);
    assert_eq!(p.encryption_key, ENC_KEY);
    // Read trimmed, as a key pasted into a secret often ends in a newline.
    assert_eq!(p.integrity_key, INT_KEY);
    assert_eq!(adx.charge_on, ChargeOn::Billing);
    // Keys are secrets: Debug of anything holding them leaves them out.
    for debug in [format!("{config:?}"), format!("{adx:?}"), format!("{p:?}")] {
        assert!(debug.contains("Google"), "{debug}");
        assert!(!debug.contains("skU7Ax"), "{debug}");
        assert!(!debug.contains("arO23y"), "{debug}");
    }
}

#[test]
fn price_encryption_scheme_is_google() {
    let prefix = "CFGTEST_SCHEME";
    set_keys(prefix, ENC_KEY, INT_KEY);
    let text = edit(
        &encrypted_exchange(prefix),
        "scheme: google",
        "scheme: openx",
    );
    assert_problem(
        &text,
        at(&text, "scheme: openx", "openx"),
        "exchange \"adx\": unknown price_encryption scheme \"openx\"; expected google",
    );
}

#[test]
fn key_env_must_name_a_variable() {
    let prefix = "CFGTEST_MALFORMED";
    set_keys(prefix, ENC_KEY, INT_KEY);
    // The unpadded key has only letters and digits: a lower-case variable
    // name would have let it through, and repeated it in the message.
    let unpadded = "skU7AxZNL5pPAFyKdkfZjZz2aVhIN8bjj1rVFOaJ5o";
    for bad in ["ADX-ENCRYPTION-KEY", "1KEY", "adx_key", ENC_KEY, unpadded] {
        let text = edit(
            &encrypted_exchange(prefix),
            &format!("encryption_key_env: {prefix}_ENC"),
            &format!("encryption_key_env: {bad}"),
        );
        assert_problem(
            &text,
            at(&text, &format!("encryption_key_env: {bad}"), bad),
            "exchange \"adx\": encryption_key_env names an environment variable in capitals, \
             like ADX_ENCRYPTION_KEY; this value is not one (and is not repeated here, in case \
             it is a key: keys never go in the YAML itself)",
        );
    }
}

#[test]
fn key_env_must_be_set() {
    let prefix = "CFGTEST_UNSET";
    std::env::set_var(format!("{prefix}_ENC"), ENC_KEY);
    std::env::remove_var(format!("{prefix}_INT"));
    let text = encrypted_exchange(prefix);
    assert_problem(
        &text,
        at(
            &text,
            &format!("integrity_key_env: {prefix}_INT"),
            "CFGTEST",
        ),
        &format!(
            "exchange \"adx\": the environment variable {prefix}_INT (integrity_key_env) is not set"
        ),
    );
    // Set to blanks is the same as not set.
    std::env::set_var(format!("{prefix}_INT"), "  ");
    assert_problem(
        &text,
        at(
            &text,
            &format!("integrity_key_env: {prefix}_INT"),
            "CFGTEST",
        ),
        &format!(
            "exchange \"adx\": the environment variable {prefix}_INT (integrity_key_env) is not set"
        ),
    );
}

#[test]
fn key_that_is_not_base64_is_refused() {
    let prefix = "CFGTEST_NOT_BASE64";
    set_keys(prefix, ENC_KEY, "not base64!");
    let text = encrypted_exchange(prefix);
    assert_problem(
        &text,
        at(
            &text,
            &format!("integrity_key_env: {prefix}_INT"),
            "CFGTEST",
        ),
        &format!(
            "exchange \"adx\": the key in ${prefix}_INT (integrity_key_env) is not usable: \
             integrity key is not web-safe base64 (A-Z a-z 0-9 - _, optional = padding)"
        ),
    );
    // Standard base64 ('+' and '/') is not the web-safe alphabet.
    set_keys(prefix, &ENC_KEY.replace('-', "+"), INT_KEY);
    let p = only_problem(&text);
    assert!(
        p.message.ends_with(
            "not usable: encryption key is not web-safe base64 (A-Z a-z 0-9 - _, optional = padding)"
        ),
        "{}",
        p.message
    );
    assert!(!p.message.contains("skU7Ax"), "{}", p.message);
}

// ---- currency rates ----

#[test]
fn currency_rates_load_sorted_and_case_insensitively() {
    let config = assert_loads(&[("a.yaml", BASE), ("rates.yaml", RATES)]);
    let rates = config.currency_rates.expect("currency_rates");
    assert_eq!(rates.as_of.to_string(), "2026-11-30");
    assert_eq!(rates.file.to_str(), Some("rates.yaml"));
    let listed: Vec<(&str, String)> = rates
        .rates
        .iter()
        .map(|(c, r)| (c.as_str(), r.to_string()))
        .collect();
    assert_eq!(
        listed,
        [
            ("EUR", "0.95".to_owned()),
            ("GBP", "0.79".to_owned()),
            ("JPY", "155.3".to_owned())
        ]
    );
    assert_eq!(rates.rate("eur"), Rate::parse_decimal("0.95").ok());
    assert_eq!(rates.rate("Jpy").map(Rate::nanos), Some(155_300_000_000));
    assert_eq!(rates.rate("GBP").map(Rate::nanos), Some(790_000_000));
    assert_eq!(rates.rate("USD"), Some(Rate::ONE));
    assert_eq!(rates.rate("usd"), Some(Rate::ONE));
    assert_eq!(rates.rate("CHF"), None);
    assert_eq!(rates.rate("EU"), None);
    // USD may be listed, at 1; it is never stored.
    let text = edit(RATES, "    GBP: 0.79\n", "    GBP: 0.79\n    USD: 1.000\n");
    let config = assert_loads(&[("rates.yaml", &text)]);
    let rates = config.currency_rates.expect("currency_rates");
    assert_eq!(rates.rates.len(), 3);
    assert_eq!(rates.rate("USD"), Some(Rate::ONE));
}

#[test]
fn currency_base_is_usd() {
    let text = edit(RATES, "base: USD", "base: EUR");
    assert_problem(
        &text,
        at(&text, "base: EUR", "EUR"),
        "currency_rates: base must be USD, the currency of every budget (it is \"EUR\")",
    );
}

#[test]
fn currency_as_of_is_a_date() {
    let text = edit(RATES, "as_of: 2026-11-30", "as_of: 2026-11-31");
    assert_problem(
        &text,
        at(&text, "as_of: 2026-11-31", "2026"),
        "currency_rates: as_of \"2026-11-31\" is not a real calendar date",
    );
    let text = edit(RATES, "as_of: 2026-11-30", "as_of: 30/11/2026");
    assert_problem(
        &text,
        at(&text, "as_of: 30/11/2026", "30"),
        "currency_rates: as_of \"30/11/2026\" is not a date written as YYYY-MM-DD",
    );
}

/// A rates file may bound its own age (a demo's fixed rates); without
/// it the bidder's flag applies. Out of range is refused where it is.
#[test]
fn currency_rates_may_say_how_long_they_price() {
    let config = assert_loads(&[("rates.yaml", RATES)]);
    assert_eq!(config.currency_rates.expect("rates").max_age_days, None);
    let text = edit(
        RATES,
        "as_of: 2026-11-30\n",
        "as_of: 2026-11-30\n  max_age_days: 3650\n",
    );
    let config = assert_loads(&[("rates.yaml", &text)]);
    assert_eq!(
        config.currency_rates.expect("rates").max_age_days,
        Some(3650)
    );
    for bad in ["0", "3651", "-1"] {
        let text = edit(
            RATES,
            "as_of: 2026-11-30\n",
            &format!("as_of: 2026-11-30\n  max_age_days: {bad}\n"),
        );
        assert_problem(
            &text,
            at(&text, &format!("max_age_days: {bad}"), bad),
            &format!("currency_rates: max_age_days must be between 1 and 3650 (it is {bad})"),
        );
    }
}

#[test]
fn currency_codes_are_three_capital_letters() {
    for bad in ["eur", "EURO", "EU", "E1R"] {
        let text = edit(RATES, "EUR: 0.95", &format!("{bad}: 0.95"));
        assert_problem(
            &text,
            at(&text, &format!("{bad}: 0.95"), bad),
            &format!(
                "currency_rates: \"{bad}\" is not a currency code; use ISO 4217's three \
                 capital letters, like EUR"
            ),
        );
    }
}

#[test]
fn currency_codes_are_iso_4217() {
    // Three capital letters, but no currency: a typo would price requests
    // and purchases in it.
    for bad in ["EUO", "XYZ", "ABC"] {
        let text = edit(RATES, "EUR: 0.95", &format!("{bad}: 0.95"));
        assert_problem(
            &text,
            at(&text, &format!("{bad}: 0.95"), bad),
            &format!(
                "currency_rates: \"{bad}\" is not an ISO 4217 currency code (like EUR, GBP, JPY)"
            ),
        );
    }
    // Withdrawn codes a rates file of an earlier version may still list
    // (it took any three capitals), and the offshore yuan: an upgrade must
    // not refuse the config it served on.
    for good in [
        "CHF", "SEK", "XAU", "ZWG", "HRK", "VEF", "DEM", "TRL", "CNH",
    ] {
        let text = edit(RATES, "EUR: 0.95", &format!("{good}: 0.95"));
        assert_loads(&[("rates.yaml", &text)]);
    }
}

#[test]
fn currency_code_listed_twice() {
    // The YAML reader refuses the file before the validator sees it.
    let text = edit(RATES, "    GBP: 0.79\n", "    GBP: 0.79\n    EUR: 0.96\n");
    assert_problem(
        &text,
        at(&text, "EUR: 0.96", "EUR"),
        "key \"EUR\" appears twice in the same mapping (written twice, or a list item lost its \
         `- ` and runs on in the one before)",
    );
}

#[test]
fn rates_are_positive_plain_decimals() {
    for (bad, reason) in [
        ("0", "\"0\" must be from 0.001 to 1000000000 units per USD"),
        (
            "0.000",
            "\"0.000\" must be from 0.001 to 1000000000 units per USD",
        ),
        (
            "0.000999",
            "\"0.000999\" must be from 0.001 to 1000000000 units per USD",
        ),
        (
            "1000000001",
            "\"1000000001\" must be from 0.001 to 1000000000 units per USD",
        ),
        (
            "-0.95",
            "\"-0.95\" is not a plain decimal rate (write it like 0.95)",
        ),
        (
            "1e3",
            "\"1e3\" is not a plain decimal rate (write it like 0.95)",
        ),
        (
            ".95",
            "\".95\" is not a plain decimal rate (write it like 0.95)",
        ),
        (
            "0.9500000001",
            "\"0.9500000001\" has more than 9 decimal places",
        ),
    ] {
        let text = edit(RATES, "EUR: 0.95", &format!("EUR: {bad}"));
        assert_problem(
            &text,
            at(&text, &format!("EUR: {bad}"), bad),
            &format!("currency_rates: EUR {reason}"),
        );
    }
    // Nine decimals are exact.
    let text = edit(RATES, "EUR: 0.95", "EUR: 0.950000001");
    let config = assert_loads(&[("rates.yaml", &text)]);
    let rates = config.currency_rates.expect("currency_rates");
    assert_eq!(rates.rate("EUR").map(Rate::nanos), Some(950_000_001));
}

#[test]
fn usd_is_the_base_at_rate_1() {
    let text = edit(RATES, "    GBP: 0.79\n", "    GBP: 0.79\n    USD: 1.01\n");
    assert_problem(
        &text,
        at(&text, "USD: 1.01", "1.01"),
        "currency_rates: USD is the base; its rate can only be 1",
    );
}

#[test]
fn rates_are_not_empty() {
    for empty in ["  rates: {}\n", "  rates:\n"] {
        let text = edit(
            RATES,
            "  rates:\n    JPY: 155.3\n    EUR: 0.95\n    GBP: 0.79\n",
            empty,
        );
        let p = only_problem(&text);
        assert_eq!(
            p.message,
            "currency_rates: rates is empty; list units per USD, like EUR: 0.95"
        );
        assert_eq!(p.line, at(&text, "  rates:", "rates").0, "{empty:?}");
    }
}

#[test]
fn a_second_currency_rates_file() {
    let second = edit(RATES, "as_of: 2026-11-30", "as_of: 2026-12-01");
    let found = problems(&[("a.yaml", RATES), ("b.yaml", &second)]);
    let lines: Vec<String> = found.iter().map(ToString::to_string).collect();
    let (l1, c1) = at(RATES, "  base", "base");
    let (l2, c2) = at(&second, "  base", "base");
    assert_eq!(
        lines,
        [format!(
            "b.yaml:{l2}:{c2}: a second currency_rates file; the rates are already given at \
             a.yaml:{l1}:{c1}"
        )]
    );
}

// ---- file kinds ----

#[test]
fn a_file_is_one_kind() {
    let text = format!("{OTHER}\n{EXCHANGE}");
    let p = only_problem(&text);
    assert_eq!(
        p.message,
        "a file holds one advertiser, one exchange or the currency rates; this one also has \
         \"exchange\" after \"advertiser\": split it into two files"
    );
    assert_eq!(p.line, at(&text, "exchange:", "exchange").0 + 1);
    // In the other order, the message still follows the file.
    let text = format!("{EXCHANGE}\n{OTHER}");
    let p = only_problem(&text);
    assert_eq!(
        p.message,
        "a file holds one advertiser, one exchange or the currency rates; this one also has \
         \"advertiser\" after \"exchange\": split it into two files"
    );
    assert_eq!(p.line, at(&text, "advertiser:", "advertiser").0 + 1);
}

#[test]
fn advertiser_lists_belong_in_advertiser_files() {
    let text = format!(
        "{EXCHANGE}orders:\n  - id: o\n    service: managed\n    budget: 1\n    \
         flight: {{ start: 2026-11-01, end: 2026-11-02 }}\n"
    );
    assert_problem(
        &text,
        at(&text, "  - id: o", "id"),
        "\"orders\" belongs in an advertiser file, not in an exchange file",
    );
    let text = format!("{RATES}audiences:\n  - {{ id: x, kind: products, products: [P1] }}\n");
    assert_problem(
        &text,
        at(&text, "{ id: x", "{"),
        "\"audiences\" belongs in an advertiser file, not in a currency_rates file",
    );
}

#[test]
fn an_empty_file_says_what_is_missing() {
    for empty in ["", "# nothing yet\n", "audiences: []\n"] {
        assert_problem(
            empty,
            (1, 1),
            "the file is empty or has none of the keys that say what it is: advertiser, \
             exchange or currency_rates",
        );
    }
}

// ---- native creatives ----

#[test]
fn native_creative_reads_into_the_model() {
    let config = assert_loads(&[("a.yaml", BASE), ("n.yaml", NATIVE)]);
    let outfitter = &config.advertisers[1];
    let creative = &outfitter.creatives[0];
    assert_eq!(creative.media(), Media::Native);
    assert_eq!(creative.attributes, [1, 6]);
    assert_eq!(creative.click_url, "https://outfitter.example/tent");
    let CreativeKind::Native(n) = &creative.kind else {
        panic!("native expected: {:?}", creative.kind);
    };
    assert_eq!(n.title, "Two-person tent");
    assert_eq!(n.description, "Light, quick to pitch, dry in a storm.");
    assert_eq!(n.sponsored_by, "Outfitter");
    assert_eq!(
        n.image,
        Image {
            url: "https://cdn.outfitter.example/tent.jpg".into(),
            w: 1200,
            h: 627
        }
    );
    assert_eq!(
        n.icon,
        Some(Image {
            url: "https://cdn.outfitter.example/logo.png".into(),
            w: 128,
            h: 128
        })
    );
    assert_eq!(n.cta.as_deref(), Some("Shop now"));
    assert_eq!(n.price.as_deref(), Some("$249.00"));
    let line = &outfitter.orders[0].line_items[0];
    assert_eq!(line.media, Media::Native);
    assert_eq!(line.creatives, ["tent-ad"]);
    // Creatives without attributes have none.
    assert!(config.advertisers[0].creatives[0].attributes.is_empty());
}

#[test]
fn native_optional_parts_may_be_left_out() {
    let text = edit(
        NATIVE,
        "    icon: { url: https://cdn.outfitter.example/logo.png, w: 128, h: 128 }\n    \
         cta: Shop now\n    price: $249.00\n    attributes: [6, 1, 6]\n",
        "",
    );
    let config = assert_loads(&[("n.yaml", &text)]);
    let creative = &config.advertisers[0].creatives[0];
    assert!(creative.attributes.is_empty());
    let CreativeKind::Native(n) = &creative.kind else {
        panic!("native expected");
    };
    assert_eq!(
        (n.icon.as_ref(), n.cta.as_ref(), n.price.as_ref()),
        (None, None, None)
    );
}

#[test]
fn native_creative_needs_title_and_image() {
    let text = edit(NATIVE, "    title: Two-person tent\n", "");
    assert_problem(
        &text,
        at(&text, "- id: tent-ad", "id"),
        "creative \"tent-ad\": a native creative needs title",
    );
    let text = edit(
        NATIVE,
        "    image: { url: https://cdn.outfitter.example/tent.jpg, w: 1200, h: 627 }\n",
        "",
    );
    assert_problem(
        &text,
        at(&text, "- id: tent-ad", "id"),
        "creative \"tent-ad\": a native creative needs image",
    );
}

#[test]
fn native_texts_are_not_empty() {
    let text = edit(NATIVE, "cta: Shop now", "cta: \"\"");
    assert_problem(
        &text,
        at(&text, "cta: \"\"", "\""),
        "creative \"tent-ad\": cta is empty",
    );
}

#[test]
fn every_native_problem_is_reported_at_once() {
    let text = edit(NATIVE, "logo.png, w: 128", "logo.png, w: 0");
    let text = edit(&text, "cta: Shop now", "cta: \"\"");
    let text = edit(&text, "price: $249.00", "price: \" \"");
    let found = problems(&[("n.yaml", &text)]);
    let lines: Vec<String> = found.iter().map(ToString::to_string).collect();
    let (l1, c1) = at(&text, "w: 0", "0");
    let (l2, c2) = at(&text, "cta: \"\"", "\"");
    let (l3, c3) = at(&text, "price: \" \"", "\"");
    assert_eq!(
        lines,
        [
            format!("n.yaml:{l1}:{c1}: creative \"tent-ad\": icon w must be at least 1 (it is 0)"),
            format!("n.yaml:{l2}:{c2}: creative \"tent-ad\": cta is empty"),
            format!("n.yaml:{l3}:{c3}: creative \"tent-ad\": price is empty"),
        ]
    );
}

#[test]
fn display_keys_do_not_apply_to_native() {
    let text = edit(
        NATIVE,
        "    cta: Shop now\n",
        "    cta: Shop now\n    size: 300x250\n",
    );
    assert_problem(
        &text,
        at(&text, "size: 300x250", "300"),
        "creative \"tent-ad\": \"size\" does not apply to a native creative",
    );
}

#[test]
fn native_keys_do_not_apply_to_display() {
    let text = edit(
        OTHER,
        "    size: 320x50\n",
        "    size: 320x50\n    title: Mysteries\n",
    );
    assert_problem(
        &text,
        at(&text, "title: Mysteries", "Mysteries"),
        "creative \"nw-banner\": \"title\" does not apply to a display creative",
    );
}

#[test]
fn native_images_have_positive_sizes() {
    let text = edit(NATIVE, "w: 1200", "w: 0");
    assert_problem(
        &text,
        at(&text, "w: 0", "0"),
        "creative \"tent-ad\": image w must be at least 1 (it is 0)",
    );
    let text = edit(
        NATIVE,
        "logo.png, w: 128, h: 128",
        "logo.png, w: 128, h: -1",
    );
    assert_problem(
        &text,
        at(&text, "h: -1", "-1"),
        "creative \"tent-ad\": icon h must be at least 1 (it is -1)",
    );
}

#[test]
fn native_image_urls_are_http() {
    let text = edit(
        NATIVE,
        "url: https://cdn.outfitter.example/tent.jpg",
        "url: cdn.outfitter.example/tent.jpg",
    );
    assert_problem(
        &text,
        at(&text, "url: cdn.outfitter", "cdn"),
        "creative \"tent-ad\": image url \"cdn.outfitter.example/tent.jpg\" must start with \
         http:// or https://",
    );
}

/// A creative's language is a BCP 47 tag of the usual shape; anything
/// else is refused where it is written, and a tag is kept as written.
#[test]
fn a_creatives_language_is_a_language_tag() {
    for bad in ["english", "e", "en_US", "en-", "1a", "en-toolongsubtag"] {
        let text = edit(
            NATIVE,
            "attributes: [6, 1, 6]",
            &format!("attributes: [6]\n    language: {bad}"),
        );
        // At the value, past `language: `.
        let (line, column) = at(&text, &format!("language: {bad}"), "language");
        assert_problem(
            &text,
            (line, column + 10),
            &format!(
                "creative \"tent-ad\": language \"{bad}\" is not a language tag; expected one \
                 such as en, de or pt-BR (IETF BCP 47)"
            ),
        );
    }
    for good in ["en", "DE", "pt-BR", "zh-Hant-TW", "haw"] {
        let text = edit(
            NATIVE,
            "attributes: [6, 1, 6]",
            &format!("attributes: [6]\n    language: {good}"),
        );
        let config = assert_loads(&[("n.yaml", &text)]);
        let c = &config.advertisers[0].creatives[0];
        assert_eq!(c.language.as_deref(), Some(good));
    }
    let config = assert_loads(&[("n.yaml", NATIVE)]);
    assert_eq!(config.advertisers[0].creatives[0].language, None);
}

#[test]
fn attributes_are_iab_list_5_3() {
    for bad in ["18", "0"] {
        let text = edit(
            NATIVE,
            "attributes: [6, 1, 6]",
            &format!("attributes: [6, {bad}]"),
        );
        assert_problem(
            &text,
            at(&text, &format!("[6, {bad}]"), bad),
            &format!(
                "creative \"tent-ad\": creative attribute {bad} is not in IAB's list (1 to 17, \
                 like 6 for in-banner video that plays by itself)"
            ),
        );
    }
    // Any format may declare them.
    let text = edit(
        OTHER,
        "    size: 320x50\n",
        "    size: 320x50\n    attributes: [17, 1]\n",
    );
    let config = assert_loads(&[("b.yaml", &text)]);
    assert_eq!(config.advertisers[0].creatives[0].attributes, [1, 17]);
}

#[test]
fn native_creative_on_a_display_line_item() {
    let text = edit(NATIVE, "media: native", "media: display");
    assert_problem(
        &text,
        at(&text, "creatives: [tent-ad]", "tent-ad"),
        "line item \"native-line\": creative \"tent-ad\" is native but the line item buys display",
    );
}

#[test]
fn native_creatives_have_no_companions() {
    let text = edit(
        NATIVE,
        "    cta: Shop now\n",
        "    cta: Shop now\n    companions: [tent-ad]\n",
    );
    let found = problems(&[("n.yaml", &text)]);
    let messages: Vec<String> = found.iter().map(ToString::to_string).collect();
    let (l, c) = at(&text, "companions: [tent-ad]", "tent-ad");
    assert_eq!(
        messages,
        [
            format!("n.yaml:{l}:{c}: creative \"tent-ad\": only video and audio creatives have companions; this one is native"),
            format!("n.yaml:{l}:{c}: creative \"tent-ad\": companion \"tent-ad\" is native; companions must be display creatives"),
        ]
    );
}

#[test]
fn managed_native_order_needs_the_display_minimum() {
    let text = edit(NATIVE, "service: self_service", "service: managed");
    assert_problem(
        &text,
        at(&text, "budget: 500", "500"),
        "order \"native-order\": a managed-service order with display, native or video line \
         items needs a total budget of at least 50,000.00 (it has 500.00)",
    );
}

// ---- products and attribution ----

#[test]
fn products_and_attribution_windows_are_read() {
    let config = assert_loads(&[("a.yaml", BASE)]);
    assert_eq!(config.advertisers[0].products, Vec::<String>::new());
    assert_eq!(
        config.advertisers[0].attribution,
        config::Attribution {
            click_days: 14,
            view_days: 14
        }
    );
    let text = edit(
        BASE,
        "  domains: [acme.example]\n",
        "  domains: [acme.example]\n  products: [P1, P2, P1]\n  attribution: { click_days: 30, view_days: 1 }\n",
    );
    let config = assert_loads(&[("a.yaml", &text)]);
    let acme = &config.advertisers[0];
    assert_eq!(acme.products, ["P1", "P2"], "duplicates dropped");
    assert_eq!(
        acme.attribution,
        config::Attribution {
            click_days: 30,
            view_days: 1
        }
    );
    let only_clicks = edit(
        BASE,
        "  domains: [acme.example]\n",
        "  domains: [acme.example]\n  attribution: { click_days: 7 }\n",
    );
    assert_eq!(
        assert_loads(&[("a.yaml", &only_clicks)]).advertisers[0].attribution,
        config::Attribution {
            click_days: 7,
            view_days: 14
        }
    );
}

#[test]
fn attribution_windows_are_1_to_90_days() {
    for (days, shown) in [("0", "0"), ("91", "91")] {
        let text = edit(
            BASE,
            "  domains: [acme.example]\n",
            &format!("  domains: [acme.example]\n  attribution: {{ view_days: {days} }}\n"),
        );
        assert_problem(
            &text,
            at(&text, &format!("view_days: {days}"), days),
            &format!(
                "advertiser \"acme\": attribution view_days must be between 1 and 90 (it is {shown})"
            ),
        );
    }
    let text = edit(
        BASE,
        "  domains: [acme.example]\n",
        "  domains: [acme.example]\n  products: [P1, \"\"]\n",
    );
    assert_problem(
        &text,
        at(&text, "P1, \"\"", "\"\""),
        "advertiser \"acme\": a product id is empty",
    );
}

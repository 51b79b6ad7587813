//! The `bidder` binary as operators and account managers run it.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bidder"))
}

/// Advertiser `shop` with one 300x250 banner and line item `li` at `cpm`
/// under `budget` (`daily: 100.00`), its flight spanning centuries: the
/// wall clock these tests run on does not matter.
fn one_banner_shop(cpm: &str, budget: &str) -> String {
    format!(
        r#"advertiser: {{ id: shop, name: Shop, domains: [shop.example], categories: [IAB22] }}
creatives:
  - {{ id: b300, format: display, size: 300x250, image_url: "https://cdn.shop.example/b.png", click_url: "https://shop.example/" }}
orders:
  - id: o1
    service: self_service
    budget: 1000000.00
    flight: {{ start: 2000-01-01, end: 2999-12-31 }}
    line_items:
      - {{ id: li, media: display, cpm: {cpm}, budget: {{ {budget} }}, creatives: [b300] }}
"#
    )
}

/// A fresh directory of this test's own, named after it and this process.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bidder-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// [`scratch`] holding `config/shop.yaml`: [`one_banner_shop`] at `cpm`
/// under `budget`.
fn shop_dir(name: &str, cpm: &str, budget: &str) -> PathBuf {
    let dir = scratch(name);
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::write(dir.join("config/shop.yaml"), one_banner_shop(cpm, budget)).unwrap();
    dir
}

/// One 300x250 banner imp on `a.example`: what [`one_banner_shop`] bids on.
const ONE_BANNER_REQUEST: &str =
    r#"{"id":"r1","imp":[{"id":"1","banner":{"w":300,"h":250}}],"site":{"domain":"a.example"}}"#;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn validate_accepts_the_examples_with_a_summary() {
    let out = bin()
        .args(["validate", "--config"])
        .arg(repo().join("examples/config"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains("2 advertisers"), "{stdout}");
    assert!(stdout.contains("5 line items"), "{stdout}");
    assert!(stdout.contains("7 creatives"), "{stdout}");
}

/// `bidder validate` on a copy of the example config (in a scratch
/// directory named `name`, returned) with `from` replaced by `to` in every
/// file.
fn validate_examples_with(name: &str, from: &str, to: &str) -> (PathBuf, std::process::Output) {
    validate_examples_edited(name, &[(from, to)])
}

/// [`validate_examples_with`] with each of `edits` (`from`, `to`) made in
/// turn.
fn validate_examples_edited(name: &str, edits: &[(&str, &str)]) -> (PathBuf, std::process::Output) {
    let dir = scratch(name);
    for f in std::fs::read_dir(repo().join("examples/config")).unwrap() {
        let f = f.unwrap().path();
        let mut text = std::fs::read_to_string(&f).unwrap();
        for (from, to) in edits {
            text = text.replace(from, to);
        }
        std::fs::write(dir.join(f.file_name().unwrap()), text).unwrap();
    }
    let out = bin()
        .args(["validate", "--config"])
        .arg(&dir)
        .output()
        .unwrap();
    (dir, out)
}

/// [`validate_examples_with`] where the config stays valid: the warning
/// lines that hold `about`, and the whole of standard error to show when
/// an assertion on them fails. The scratch directory is removed.
fn warnings_with(name: &str, from: &str, to: &str, about: &str) -> (Vec<String>, String) {
    warnings_edited(name, &[(from, to)], about)
}

/// [`warnings_with`] with each of `edits` made in turn.
fn warnings_edited(name: &str, edits: &[(&str, &str)], about: &str) -> (Vec<String>, String) {
    let (dir, out) = validate_examples_edited(name, edits);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    // Matched past the scratch directory's path, which holds the test's
    // name: a warning about another file (currency rates gone stale with
    // the date) matched `about` through it.
    let lines = stderr
        .lines()
        .filter(|l| l.replace(&*dir.to_string_lossy(), "").contains(about))
        .map(String::from)
        .collect();
    (lines, stderr)
}

/// Rates that will price nothing (a year typed wrong, a file never
/// updated) are valid, but `validate` says so, naming the file: every
/// request whose currencies leave out USD would get no bid (account-manager
/// probe: it said "valid" and nothing else). Years far from any day this
/// runs on.
#[test]
fn validate_warns_of_rates_that_price_nothing() {
    for (as_of, said) in [
        ("2099-11-30", "days ahead of today"),
        ("2001-11-30", "days old"),
    ] {
        let (dir, out) = validate_examples_with(
            &format!("rates-{as_of}"),
            "as_of: 2026-11-30",
            &format!("as_of: {as_of}"),
        );
        assert!(out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with("warning: ")
                && stderr.contains("currency-rates.yaml: the currency rates as_of")
                && stderr.contains(said)
                && stderr.contains("price nothing"),
            "{stderr}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// An order whose flight ended is valid and never bids again: `validate`
/// says so, naming the file and the order (account-manager probe: a
/// flight of last year loaded as valid without a word). Years far from
/// any day this runs on.
#[test]
fn validate_warns_of_orders_whose_flight_ended() {
    let (ended, stderr) = warnings_with(
        "ended-flight",
        "flight: { start: 2026-11-15, end: 2030-12-15 }",
        "flight: { start: 2000-01-01, end: 2001-01-31 }",
        "ended",
    );
    assert_eq!(ended.len(), 1, "{stderr}");
    assert!(
        ended[0].starts_with("warning: ")
            && ended[0].contains("northwind-books.yaml:27:5: order \"nw-launch\"")
            && ended[0].contains("ended on 2001-01-31")
            && ended[0].contains("will not bid"),
        "{stderr}"
    );
}

/// An advertiser that buys shoppers of its products (`views`) but lists
/// no `products` never has a sale attributed: `validate` says so (accounts
/// probe: the spec's example config is one, and its reports showed sales
/// 0.00 for good, in silence).
#[test]
fn validate_warns_of_views_audiences_without_products() {
    let (warned, stderr) = warnings_with(
        "views-no-products",
        "view_days.\n  products: [B0TENT0001, B0TENT0002]\n",
        "view_days.\n",
        "lists no products",
    );
    assert_eq!(warned.len(), 1, "{stderr}");
    assert!(
        warned[0].starts_with("warning: ")
            && warned[0].contains("acme-outdoor.yaml: advertiser \"acme-outdoor\"")
            && warned[0].contains("views audiences (")
            && warned[0].contains("will show no sales"),
        "{stderr}"
    );
    let (none, stderr) = warnings_with("views-with-products", "", "", "lists no products");
    assert!(none.is_empty(), "{stderr}");
}

/// A quote, bracket or backslash pasted with a creative URL is valid (a
/// config that served must still start) and warned of, naming the
/// creative and what to write instead (accounts probe: it validated in
/// silence, and the creative served broken).
#[test]
fn validate_warns_of_urls_with_stray_characters() {
    let (warned, stderr) = warnings_with(
        "url-quote",
        "image_url: https://cdn.acme-outdoor.example/tent-300x250.jpg",
        "image_url: https://cdn.acme-outdoor.example/tent-300x250.jpg\"",
        "cannot hold as it is",
    );
    assert_eq!(warned.len(), 1, "{stderr}");
    assert!(
        warned[0].starts_with("warning: ")
            && warned[0].contains("acme-outdoor.yaml:")
            && warned[0]
                .contains("image_url \"https://cdn.acme-outdoor.example/tent-300x250.jpg\"\"")
            && warned[0].ends_with("write %22"),
        "{stderr}"
    );
    let (warned, stderr) = warnings_with(
        "url-backslash",
        "image_url: https://cdn.acme-outdoor.example/tent-300x250.jpg",
        "image_url: https://cdn.acme-outdoor.example\\tent-300x250.jpg",
        "cannot hold as it is",
    );
    assert_eq!(warned.len(), 1, "{stderr}");
    assert!(
        warned[0].ends_with("write / (browsers read it so), or %5C"),
        "{stderr}"
    );
}

/// A keyword a negative of the same line item always excludes, and a
/// rendition of the other kind (an audio type in a video creative), are
/// valid and warned of (account-manager probe: both loaded in silence);
/// not refused, so that a config that served before still starts.
#[test]
fn validate_warns_of_dead_keywords_and_renditions_of_the_other_kind() {
    let (warned, stderr) = warnings_with(
        "dead-keywords",
        "negative: [free ebook]",
        "negative: [free ebook, Thriller  Books]",
        "never match",
    );
    assert_eq!(warned.len(), 1, "{stderr}");
    assert!(
        warned[0].starts_with("warning: ")
            && warned[0].contains("northwind-books.yaml:32:9: line item \"nw-mobile-readers\"")
            && warned[0].contains("keyword exact:thriller books can never match"),
        "{stderr}"
    );
    let (warned, stderr) = warnings_with(
        "other-kind",
        "mime: video/mp4",
        "mime: audio/mp4",
        "not a video type",
    );
    assert_eq!(warned.len(), 2, "{stderr}");
    assert!(
        warned[0].contains("acme-outdoor.yaml:46:5: creative \"tent-video-15s\"")
            && warned[0].contains("has mime \"audio/mp4\""),
        "{stderr}"
    );
}

/// A keyword repeated within its kind, a creative named twice by one line
/// item, and a CPM whose one impression costs more than the budget are
/// valid, do nothing or never bid, and are warned of at the line item's
/// line and column (account-manager probe: all loaded in silence, and
/// warnings named the file alone).
#[test]
fn validate_warns_of_repeats_and_a_budget_under_one_impression_at_the_line() {
    let (warned, stderr) = warnings_with(
        "repeats",
        "broad: [mystery novel]",
        "broad: [mystery novel, Novel  MYSTERY, novel]",
        "keyword",
    );
    assert_eq!(warned.len(), 1, "{stderr}");
    assert!(
        warned[0].starts_with("warning: ")
            && warned[0].contains("northwind-books.yaml:32:9: line item \"nw-mobile-readers\"")
            && warned[0].contains(
                "keyword broad:Novel  MYSTERY is never counted in reports: broad:mystery novel, \
                 listed before it, matches every page it matches"
            ),
        "{stderr}"
    );

    let (warned, stderr) = warnings_with(
        "repeated-creative",
        "creatives: [nw-banner-320x50, nw-banner-300x250]",
        "creatives: [nw-banner-320x50, nw-banner-300x250, nw-banner-320x50, nw-banner-320x50]",
        "listed more",
    );
    assert_eq!(warned.len(), 1, "{stderr}");
    assert!(
        warned[0].contains("northwind-books.yaml:32:9: line item \"nw-mobile-readers\": creative \"nw-banner-320x50\""),
        "{stderr}"
    );

    // 2,000.00 CPM: one impression is 2.00, over the daily 1.50; shaded
    // (the default) it may still bid 1,500.00 or less, unshaded and
    // outside deals never. 1,500.00 CPM (exactly 1.50) bids.
    for (cpm, shading, said) in [
        (
            "2000.00",
            "",
            Some("it never bids its cpm, only a price of 1,500.00 CPM or less"),
        ),
        (
            "2000.00",
            "\n        shading: false",
            Some("it will never bid (no-bid reason budget)"),
        ),
        ("1500.00", "\n        shading: false", None),
    ] {
        let (warned, stderr) = warnings_with(
            &format!("one-impression-{cpm}{}", shading.len()),
            "cpm: 1.80\n        budget: { daily: 30.00 }",
            &format!("cpm: {cpm}\n        budget: {{ daily: 1.50 }}{shading}"),
            "one impression",
        );
        match said {
            Some(said) => {
                assert_eq!(warned.len(), 1, "{stderr}");
                assert!(
                    warned[0].contains("northwind-books.yaml:32:9: line item \"nw-mobile-readers\"")
                        && warned[0].contains(
                            "one impression at its cpm of 2,000.00 costs 2.00, more than its daily \
                             budget of 1.50"
                        )
                        && warned[0].contains(said),
                    "{stderr}"
                );
            }
            None => assert!(warned.is_empty(), "{stderr}"),
        }
    }
}

/// A creative whose click_url lands outside its advertiser's `domains` is
/// valid and warned of at its place (stop-69 leftover: accepted in
/// silence); one under a domain (a subdomain too) is not.
#[test]
fn validate_warns_of_landing_pages_outside_the_advertisers_domains() {
    let (warned, stderr) = warnings_with(
        "landing-page",
        "    click_url: https://www.acme-outdoor.example/tents\n  - id: tent-banner-728x90",
        "    click_url: https://acme-outdoor.example.evil/tents\n  - id: tent-banner-728x90",
        "not under",
    );
    assert_eq!(warned.len(), 1, "{stderr}");
    assert!(
        warned[0].contains("acme-outdoor.yaml:")
            && warned[0].contains(": creative \"tent-banner-300x250\": its click_url goes to acme-outdoor.example.evil"),
        "{stderr}"
    );
    // A domain written in Unicode is the host of its URLs as the URL
    // reads it, and a URL's port is no part of its host: no warning
    // (review finding; a domain itself may not carry a port).
    for (domain, host) in [
        ("bücher.example", "www.BÜCHER.example"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("acme-outdoor.example", "www.acme-outdoor.example:8443"),
    ] {
        let (warned, stderr) = warnings_edited(
            "landing-page-idn",
            &[
                (
                    "domains: [acme-outdoor.example]",
                    &format!("domains: [\"{domain}\"]"),
                ),
                (
                    "https://www.acme-outdoor.example/",
                    &format!("https://{host}/"),
                ),
            ],
            "not under",
        );
        assert!(warned.is_empty(), "{domain} {host}: {stderr}");
    }
}

/// A profile's default tmax that the margin taken off every tmax eats
/// whole is valid, and its requests without a tmax never bid: `validate`
/// says so (exchanges probe: `tmax_default_ms: 10` passed in silence).
#[test]
fn validate_warns_of_a_default_tmax_that_leaves_no_time() {
    let (dir, out) = validate_examples_with(
        "tmax-default",
        "tmax_default_ms: 150",
        "tmax_default_ms: 10",
    );
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.lines().any(|l| l.starts_with("warning: ")
            && l.contains("example-exchange.yaml: exchange \"example-exchange\"")
            && l.contains("tmax_default_ms 10 leaves no time")),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let (dir, out) = validate_examples_with(
        "tmax-default-ok",
        "tmax_default_ms: 150",
        "tmax_default_ms: 11",
    );
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("leaves no time"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn validate_lists_every_problem_with_its_place() {
    let dir = scratch("validate");
    let acme = std::fs::read_to_string(repo().join("examples/config/acme-outdoor.yaml")).unwrap();
    let nw = std::fs::read_to_string(repo().join("examples/config/northwind-books.yaml")).unwrap();
    // Two semantic problems in one file, a type problem in another.
    std::fs::write(
        dir.join("acme.yaml"),
        acme.replace("countries: [USA, CAN]", "countries: [US, CAN]")
            .replace("creatives: [tent-video-15s]", "creatives: [tent-video-99s]"),
    )
    .unwrap();
    std::fs::write(dir.join("nw.yaml"), nw.replace("cpm: 1.80", "cpm: lots")).unwrap();
    let out = bin()
        .args(["validate", "--config"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    for l in &lines {
        let mut parts = l.splitn(4, ':');
        let file = parts.next().unwrap();
        let line: u32 = parts
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|_| panic!("{l}"));
        let col: u32 = parts
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|_| panic!("{l}"));
        assert!(file.ends_with(".yaml") && line > 0 && col > 0, "{l}");
        assert!(!parts.next().unwrap().trim().is_empty(), "{l}");
    }
    assert!(stdout.contains("\"US\""), "{stdout}");
    assert!(stdout.contains("tent-video-99s"), "{stdout}");
    assert!(stdout.contains("nw.yaml:"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn schema_prints_the_committed_json_schema_of_the_three_kinds() {
    let out = bin().arg("schema").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    let required: Vec<&serde_json::Value> = schema["oneOf"]
        .as_array()
        .expect("oneOf")
        .iter()
        .map(|kind| &kind["required"][0])
        .collect();
    assert_eq!(required, ["advertiser", "exchange", "currency_rates"]);
    // What `cargo run -p bidder -- schema > schema/bidder-config.schema.json` wrote.
    let committed =
        std::fs::read_to_string(repo().join("schema/bidder-config.schema.json")).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), committed);

    let out = bin()
        .args(["schema", "--kind", "currency_rates"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let rates: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(rates["required"], serde_json::json!(["currency_rates"]));
    assert!(rates.get("oneOf").is_none());

    let out = bin().args(["schema", "--kind", "orders"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("advertiser") && stderr.contains("currency_rates"),
        "{stderr}"
    );
}

#[test]
fn serve_refuses_an_invalid_config() {
    let dir = scratch("bad");
    std::fs::write(dir.join("bad.yaml"), "advertiser: [\n").unwrap();
    let out = common::serve_command()
        .arg("--config")
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.yaml:"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn serve_bids_on_the_example_and_stops_on_sigterm() {
    let state = std::env::temp_dir().join(format!("bidder-cli-state-{}", std::process::id()));
    let data = repo().join("examples/data");
    let (mut child, bid, admin) = serve(
        &repo().join("examples/config"),
        &state,
        &["--data".as_ref(), data.as_os_str()],
    );
    let ready = http(
        admin,
        "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    // Before anything was charged, spend and the other unlabelled counters
    // are on the page at zero (a gap after a restart fires absent() alerts).
    let page = http(
        admin,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    for series in [
        "bidder_spend_micros_total 0",
        "bidder_over_delivery_micros_total 0",
        "bidder_late_wins_total 0",
        "bidder_event_write_errors_total 0",
        // Labelled series an alert watches, at zero too.
        "bidder_notices_total{kind=\"win\",result=\"failed\"} 0",
        "bidder_notices_total{kind=\"billing\",result=\"charged\"} 0",
        "bidder_pixel_events_total{result=\"flooded\"} 0",
        "bidder_tracking_refused_total{reason=\"signature\"} 0",
        "bidder_list_batches_total{result=\"io_error\"} 0",
        "bidder_config_reloads_total{result=\"rejected\"} 0",
        "bidder_config_last_load_ok 1",
        "bidder_model_loads_total{result=\"failed\"} 0",
        // What the start found damaged in the charge journal: nothing.
        "bidder_journal_skipped_records 0",
        "bidder_journal_cut_bytes 0",
    ] {
        assert!(
            page.lines().any(|l| l == series),
            "no {series:?} in\n{page}"
        );
    }
    // Every family says what it counts.
    for family in page.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let name = family.split(' ').next().unwrap();
        assert!(
            page.lines()
                .any(|l| l.starts_with(&format!("# HELP {name} "))),
            "no HELP for {name}"
        );
    }
    // The wall clock decides the flights here; whatever it says, the answer
    // is a well-formed 200 or 204, never an error.
    let body = std::fs::read_to_string(repo().join("benches/src/banner-request.json")).unwrap();
    let req = format!(
        "POST /openrtb2/bid HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let reply = http(bid, &req);
    assert!(
        reply.starts_with("HTTP/1.1 200") || reply.starts_with("HTTP/1.1 204"),
        "{reply}"
    );
    terminate(child.id());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(&state);
}

/// A start that skips a damaged record of the charge journal, or cuts a
/// torn last one, says so on a gauge an alert can watch: only a log line
/// did (ops probe).
#[test]
fn a_damaged_journal_shows_on_the_metrics_of_the_start() {
    let dir = scratch("damaged-journal");
    let config = dir.join("config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("shop.yaml"),
        one_banner_shop("1.00", "daily: 100.00"),
    )
    .unwrap();
    let state = dir.join("state");
    let (mut child, _, _) = serve(&config, &state, &[]);
    terminate(child.id());
    assert!(child.wait().unwrap().success());
    let journal = state.join("charges.journal");
    let mut text = std::fs::read_to_string(&journal).unwrap();
    text.push_str("C2\tnot a record\n{\"torn");
    std::fs::write(&journal, text).unwrap();
    let (mut child, _, admin) = serve(&config, &state, &[]);
    let page = http(
        admin,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    for series in [
        "bidder_journal_skipped_records 1",
        "bidder_journal_cut_bytes 6",
    ] {
        assert!(
            page.lines().any(|l| l == series),
            "no {series:?} in\n{page}"
        );
    }
    terminate(child.id());
    assert!(child.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A refused reload shows on the metrics an alert watches: the count of
/// refusals, and a gauge that stays 0 until a config loads again (the
/// count's increase is gone once an alert's window passes).
#[test]
fn a_refused_reload_shows_until_a_config_loads() {
    let dir = scratch("refused-reload");
    let config = dir.join("config");
    std::fs::create_dir_all(&config).unwrap();
    let good = one_banner_shop("1.00", "daily: 100.00");
    std::fs::write(config.join("shop.yaml"), &good).unwrap();
    // Reloads only when asked: the file watch would count refusals too.
    let log_path = dir.join("serve.log");
    let (mut child, _, admin) = serve_logging(
        &config,
        &dir.join("state"),
        &["--config-poll-secs".as_ref(), "0".as_ref()],
        Stdio::from(std::fs::File::create(&log_path).unwrap()),
    );
    let metrics = || {
        http(
            admin,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
    };
    let has = |page: &str, series: &str| page.lines().any(|l| l == series);
    std::fs::write(
        config.join("shop.yaml"),
        good.replace("cpm: 1.00", "cpm: -1"),
    )
    .unwrap();
    let ready = || {
        http(
            admin,
            "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
    };
    assert!(ready().ends_with("\r\n\r\nready\n"), "{}", ready());
    let r = post_json(admin, "/v1/config/reload", "");
    assert!(r.starts_with("HTTP/1.1 422"), "{r}");
    let page = metrics();
    assert!(has(&page, "bidder_config_last_load_ok 0"), "{page}");
    // Still ready, on the config before; the probe's text says the
    // change did not take, and not what the problem says (no token here).
    let r = ready();
    assert!(
        r.starts_with("HTTP/1.1 200")
            && r.contains(
                "ready, on the config before the last reload: that reload was refused at"
            )
            && r.contains("with 1 problem (")
            && !r.contains("shop.yaml")
            && !r.contains("cpm"),
        "{r}"
    );
    assert!(
        has(&page, "bidder_config_reloads_total{result=\"rejected\"} 1"),
        "{page}"
    );
    // In the text log every line of the refusal is an event of its own,
    // with its time and level: a log collector splitting at newlines
    // keeps the problem with its timestamp.
    let log = std::fs::read_to_string(&log_path).unwrap();
    let refusal: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("config refused") || l.contains("shop.yaml:"))
        .collect();
    assert!(
        refusal
            .iter()
            .any(|l| l.contains("shop.yaml:") && l.contains("cpm")),
        "{log}"
    );
    for l in refusal {
        let stamp = l.split_whitespace().next().unwrap_or_default();
        assert!(
            stamp.len() >= 20 && stamp.as_bytes()[10] == b'T' && l.contains(" ERROR "),
            "a log line without its time and level: {l:?}\n{log}"
        );
    }
    std::fs::write(config.join("shop.yaml"), &good).unwrap();
    let r = post_json(admin, "/v1/config/reload", "");
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(has(&metrics(), "bidder_config_last_load_ok 1"));
    assert!(ready().ends_with("\r\n\r\nready\n"), "{}", ready());
    terminate(child.id());
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A reload that loads says what `validate` would warn of in the new
/// config, in its answer (ops probe: a flight typed a year early loaded
/// on reload without a word, where `validate` warned of it).
#[test]
fn a_reload_answers_with_the_warnings_validate_gives() {
    let dir = scratch("reload-warnings");
    let config = dir.join("config");
    std::fs::create_dir_all(&config).unwrap();
    let good = one_banner_shop("1.00", "daily: 100.00");
    std::fs::write(config.join("shop.yaml"), &good).unwrap();
    let (mut child, _, admin) = serve(
        &config,
        &dir.join("state"),
        &["--config-poll-secs".as_ref(), "0".as_ref()],
    );
    // A second order whose flight ended long before any day this runs on.
    let ended = good.clone()
        + "  - id: o-old\n    service: self_service\n    budget: 1000000.00\n    \
           flight: { start: 2000-01-01, end: 2001-01-31 }\n    line_items:\n      \
           - { id: li-old, media: display, cpm: 1.00, budget: { daily: 10.00 }, creatives: [b300] }\n";
    std::fs::write(config.join("shop.yaml"), &ended).unwrap();
    let r = post_json(admin, "/v1/config/reload", "");
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    let warned: Vec<&str> = r.lines().filter(|l| l.starts_with("warning: ")).collect();
    assert_eq!(warned.len(), 1, "{r}");
    assert!(
        warned[0].contains(&format!(
            "shop.yaml:{}:5: order \"o-old\"",
            good.lines().count() + 1
        )) && warned[0].contains("ended on 2001-01-31"),
        "{r}"
    );
    std::fs::write(config.join("shop.yaml"), &good).unwrap();
    let r = post_json(admin, "/v1/config/reload", "");
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(!r.contains("warning"), "{r}");
    terminate(child.id());
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts `bidder serve` and returns it with its bid and admin addresses.
fn serve(
    config: &Path,
    state: &Path,
    extra: &[&std::ffi::OsStr],
) -> (
    std::process::Child,
    std::net::SocketAddr,
    std::net::SocketAddr,
) {
    serve_logging(config, state, extra, Stdio::null())
}

/// [`serve`], its log (standard error) going to `log`.
fn serve_logging(
    config: &Path,
    state: &Path,
    extra: &[&std::ffi::OsStr],
    log: Stdio,
) -> (
    std::process::Child,
    std::net::SocketAddr,
    std::net::SocketAddr,
) {
    let mut child = common::serve_command()
        .arg("--config")
        .arg(config)
        .arg("--state")
        .arg(state)
        .env("BIDDER_NOTICE_SECRET", "test-secret-of-at-least-32-bytes!")
        .env("BIDDER_ADMIN_TOKEN", "cli-admin-token-0123456789")
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = |key: &str| -> std::net::SocketAddr {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in {line:?}"))
            .parse()
            .unwrap()
    };
    (child, addr("bid="), addr("admin="))
}

fn post_json(addr: std::net::SocketAddr, path: &str, body: &str) -> String {
    http(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Authorization: Bearer cli-admin-token-0123456789\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

#[test]
fn an_acknowledged_charge_survives_kill_9() {
    // No flight dates in the past or future matter here: the flight covers
    // every date this test can run on.
    let dir = shop_dir("kill", "1000.00", "lifetime: 1.00");
    let req = ONE_BANNER_REQUEST;
    let state = dir.join("state");
    let (mut child, bid, _) = serve(&dir.join("config"), &state, &[]);
    let reply = post_json(bid, "/openrtb2/bid", req);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let body = reply.split("\r\n\r\n").nth(1).unwrap();
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    let nurl = v["seatbid"][0]["bid"][0]["nurl"]
        .as_str()
        .unwrap()
        .replace("${AUCTION_PRICE}", "1000.00");
    let path = &nurl[nurl.find("/notice").unwrap()..];
    let ack = http(
        bid,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    );
    assert!(ack.starts_with("HTTP/1.1 200"), "{ack}");
    // The charge was acknowledged: kill -9, no chance to flush anything.
    let _ = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status();
    let _ = child.wait();

    let (mut child, bid, admin) = serve(&dir.join("config"), &state, &[]);
    let reply = post_json(bid, "/openrtb2/bid", req);
    assert!(
        reply.starts_with("HTTP/1.1 204"),
        "the 1.00 lifetime budget is spent: {reply}"
    );
    let explain = post_json(admin, "/v1/explain", req);
    assert!(explain.contains("\"reason\": \"budget\""), "{explain}");
    // The same notice again after the restart: still charged only once.
    let again = http(
        bid,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    );
    assert!(again.starts_with("HTTP/1.1 200"), "{again}");
    terminate(child.id());
    let _ = child.wait();
    let journal = std::fs::read_to_string(state.join("charges.journal")).unwrap();
    let records = journal.lines().filter(|l| l.starts_with("C\t")).count();
    assert_eq!(records, 1, "{journal}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `validate --state` applies what a start on that state would: a line
/// item that spent under a daily budget cannot come back as lifetime. The
/// running pods refuse that on reload; without --state, validate passed it,
/// and every pod restarted on the config then failed to start.
#[test]
fn validate_with_the_state_refuses_what_a_restart_would() {
    let dir = scratch("vstate");
    std::fs::create_dir_all(dir.join("config")).unwrap();
    let shop = |budget: &str| one_banner_shop("1.00", budget);
    std::fs::write(dir.join("config/shop.yaml"), shop("daily: 100.00")).unwrap();
    let req = ONE_BANNER_REQUEST;
    let state = dir.join("state");
    let (mut child, bid, _) = serve(&dir.join("config"), &state, &[]);
    let reply = post_json(bid, "/openrtb2/bid", req);
    let v: serde_json::Value =
        serde_json::from_str(reply.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    let nurl = v["seatbid"][0]["bid"][0]["nurl"]
        .as_str()
        .unwrap()
        .replace("${AUCTION_PRICE}", "1.00");
    let path = &nurl[nurl.find("/notice").unwrap()..];
    let ack = http(
        bid,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    );
    assert!(ack.starts_with("HTTP/1.1 200"), "{ack}");

    // The same line item, now lifetime: valid on its own, not on this state.
    let changed = dir.join("changed");
    std::fs::create_dir_all(&changed).unwrap();
    std::fs::write(changed.join("shop.yaml"), shop("lifetime: 100.00")).unwrap();
    let validate = |state: Option<&Path>| {
        let mut cmd = bin();
        cmd.args(["validate", "--config"]).arg(&changed);
        if let Some(s) = state {
            cmd.arg("--state").arg(s);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    assert_eq!(validate(None).0, Some(0));
    // An empty directory is a first rollout's: nothing spent yet. One
    // holding other files is no bidder's (a wrong path), and no proof that
    // nothing was spent.
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let run = |state: &Path| {
        let out = bin()
            .args(["validate", "--config"])
            .arg(&changed)
            .arg("--state")
            .arg(state)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, err) = run(&empty);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("empty, no bidder has run on it yet"), "{err}");
    let (code, err) = run(&changed);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("no ledger.checkpoint and no charges.journal"),
        "{err}"
    );
    // While the bidder runs on it (its journal read as reports read it)...
    let (code, out) = validate(Some(&state));
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("the budget type cannot change once set"),
        "{out}"
    );
    assert!(out.contains("shop.yaml:"), "file:line:column: {out}");
    // ...and once it has stopped (replayed as a start would).
    terminate(child.id());
    let _ = child.wait();
    let (code, out) = validate(Some(&state));
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("the budget type cannot change once set"),
        "{out}"
    );
    // With Redis, another replica's directory: it spent nothing itself,
    // and its copy of this replica's journal (kept for reports) says what
    // this one spent under.
    let other = dir.join("other");
    let copy = other.join("peers").join("r1");
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::write(other.join("charges.journal"), "bidder-journal 1 1\n").unwrap();
    let journal = std::fs::read_to_string(state.join("charges.journal")).unwrap();
    let generation = journal.lines().next().unwrap().rsplit(' ').next().unwrap();
    let (code, out) = validate(Some(&other));
    assert_eq!(code, Some(0), "nothing spent there yet: {out}");
    std::fs::write(copy.join(format!("charges.{generation}.journal")), &journal).unwrap();
    let (code, out) = validate(Some(&other));
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("the budget type cannot change once set"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A lifetime budget may only grow once its flight started: a reload
/// refuses a cut, and so must a restart and `validate --state`, which have
/// no config in memory to compare with but the record of what the
/// directory last served. Before it, a cut refused on reload came back on
/// the next restart. Nothing has to be spent for the rule to hold, nor for
/// the budget type to be kept.
#[test]
fn a_restart_refuses_the_budget_changes_a_reload_refuses() {
    let dir = scratch("served");
    let config = dir.join("config");
    std::fs::create_dir_all(&config).unwrap();
    let write = |budget: &str| {
        std::fs::write(config.join("shop.yaml"), one_banner_shop("1.00", budget)).unwrap()
    };
    write("lifetime: 100.00");
    let state = dir.join("state");
    let (mut child, _, _) = serve(&config, &state, &[]);
    terminate(child.id());
    let _ = child.wait();

    let validate = || {
        let out = bin()
            .args(["validate", "--config"])
            .arg(&config)
            .arg("--state")
            .arg(&state)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let start = || {
        let out = common::serve_command()
            .arg("--config")
            .arg(&config)
            .arg("--state")
            .arg(&state)
            .env("BIDDER_NOTICE_SECRET", "test-secret-of-at-least-32-bytes!")
            .env("BIDDER_ADMIN_TOKEN", "cli-admin-token-0123456789")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    for (budget, why) in [
        (
            "lifetime: 50.00",
            "a lifetime budget can only be increased once its flight has started \
             or it has spent (it was 100.00 (as this state directory last served it: served-budgets.json), \
             now 50.00)",
        ),
        ("daily: 100.00", "the budget type cannot change once set"),
    ] {
        write(budget);
        let (code, out) = validate();
        assert_eq!(code, Some(1), "{budget}: {out}");
        assert!(out.contains(why), "{budget}: {out}");
        assert!(out.contains("shop.yaml:"), "file:line:column: {out}");
        let (code, err) = start();
        assert_eq!(code, Some(1), "{budget}: {err}");
        assert!(err.contains(why), "{budget}: {err}");
    }
    // A raise is what the rule allows: it starts, and is then the budget a
    // later cut is compared with.
    write("lifetime: 150.00");
    assert_eq!(validate().0, Some(0));
    let (mut child, _, _) = serve(&config, &state, &[]);
    terminate(child.id());
    let _ = child.wait();
    write("lifetime: 120.00");
    let (code, out) = validate();
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("(it was 150.00 (as this"), "{out}");
    // So does an order's, a lifetime budget of its own, from the record
    // of any of its line items.
    std::fs::write(
        config.join("shop.yaml"),
        one_banner_shop("1.00", "lifetime: 150.00")
            .replace("budget: 1000000.00", "budget: 999999.00"),
    )
    .unwrap();
    let (code, out) = validate();
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(
            "order \"o1\": its budget can only be increased once its flight has started or it \
             has spent (it was 1,000,000.00 (as this state directory last served it: \
             served-budgets.json), now 999,999.00)"
        ),
        "{out}"
    );
    // A record that cannot be read is set aside with a word, as a lost
    // one would be: it is no money state, and no reason not to start.
    std::fs::write(state.join("served-budgets.json"), "garbage").unwrap();
    let out = bin()
        .args(["validate", "--config"])
        .arg(&config)
        .arg("--state")
        .arg(&state)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("served-budgets.json: not a record of served budgets"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A bid in flight when the bidder stops still holds its cost in the next
/// process: its win can come after the restart. Written when the server
/// stops (and about once a second while it runs).
#[test]
fn a_bid_in_flight_holds_its_budget_across_a_stop() {
    let dir = shop_dir("holds", "1000.00", "daily: 1.00");
    let req = ONE_BANNER_REQUEST;
    let state = dir.join("state");
    let (mut child, bid, _) = serve(&dir.join("config"), &state, &[]);
    assert!(post_json(bid, "/openrtb2/bid", req).starts_with("HTTP/1.1 200"));
    assert!(post_json(bid, "/openrtb2/bid", req).starts_with("HTTP/1.1 204"));
    terminate(child.id());
    let _ = child.wait();

    let (mut child, bid, admin) = serve(&dir.join("config"), &state, &[]);
    let again = post_json(bid, "/openrtb2/bid", req);
    assert!(again.starts_with("HTTP/1.1 204"), "{again}");
    let why = post_json(admin, "/v1/explain", req);
    let v: serde_json::Value = serde_json::from_str(why.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(v["line_items"][0]["reason"], "budget", "{v}");
    terminate(child.id());
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A user's frequency cap goes on counting across a stop: a deploy gave
/// every user their cap back.
#[test]
fn a_frequency_cap_counts_on_across_a_stop() {
    let dir = scratch("frequency");
    std::fs::create_dir_all(dir.join("config")).unwrap();
    let shop = one_banner_shop("1.00", "daily: 100.00").replace(
        "creatives: [b300] }",
        "creatives: [b300], frequency_cap: { impressions: 2, per_hours: 24 } }",
    );
    assert!(shop.contains("frequency_cap"));
    std::fs::write(dir.join("config/shop.yaml"), shop).unwrap();
    let user = |id: &str| {
        ONE_BANNER_REQUEST.replace(
            r#""site""#,
            &format!(r#""user":{{"id":"{id}","buyeruid":"{id}"}},"site""#),
        )
    };
    let state = dir.join("state");
    let (mut child, bid, _) = serve(&dir.join("config"), &state, &[]);
    for _ in 0..2 {
        let r = post_json(bid, "/openrtb2/bid", &user("u-1"));
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    }
    terminate(child.id());
    let _ = child.wait();

    let (mut child, bid, admin) = serve(&dir.join("config"), &state, &[]);
    let again = post_json(bid, "/openrtb2/bid", &user("u-1"));
    assert!(again.starts_with("HTTP/1.1 204"), "{again}");
    let why = post_json(admin, "/v1/explain", &user("u-1"));
    let v: serde_json::Value = serde_json::from_str(why.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(v["line_items"][0]["reason"], "frequency", "{v}");
    let other = post_json(bid, "/openrtb2/bid", &user("u-2"));
    assert!(
        other.starts_with("HTTP/1.1 200"),
        "another user has a cap of their own: {other}"
    );
    terminate(child.id());
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A click is answered (302) only once its record is on disk: browsers do
/// not send a click again, and one lost to a `kill -9` right after its
/// answer was gone from every report.
#[test]
fn an_answered_click_survives_kill_9() {
    let dir = shop_dir("click", "1.00", "daily: 100.00");
    let req = ONE_BANNER_REQUEST;
    let state = dir.join("state");
    let (mut child, bid, _) = serve(&dir.join("config"), &state, &[]);
    let get = |addr, url: &str| {
        let path = &url[url.find("/track").or_else(|| url.find("/notice")).unwrap()..];
        http(
            addr,
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        )
    };
    let mut clicked = 0;
    for _ in 0..3 {
        let reply = post_json(bid, "/openrtb2/bid", req);
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        let v: serde_json::Value =
            serde_json::from_str(reply.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        let b = &v["seatbid"][0]["bid"][0];
        let nurl = b["nurl"]
            .as_str()
            .unwrap()
            .replace("${AUCTION_PRICE}", "1.00");
        assert!(get(bid, &nurl).starts_with("HTTP/1.1 200"));
        let (click, _) = common::banner_urls(b["adm"].as_str().unwrap());
        let answer = get(bid, &click);
        assert!(answer.starts_with("HTTP/1.1 302"), "{answer}");
        clicked += 1;
    }
    // The last click was answered: kill -9 at once, nothing flushed after.
    let _ = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status();
    let _ = child.wait();

    let (mut child, _, admin) = serve(&dir.join("config"), &state, &[]);
    let reply = http(
        admin,
        "GET /v1/reports?by=line_item&format=json HTTP/1.1\r\nHost: x\r\n\
         Authorization: Bearer cli-admin-token-0123456789\r\nConnection: close\r\n\r\n",
    );
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let json: serde_json::Value =
        serde_json::from_str(reply.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(json["total"]["clicks"], clicked, "{json:#}");
    terminate(child.id());
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

fn http(addr: std::net::SocketAddr, req: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn terminate(pid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}

/// `bidder serve` on the example config with state in `dir`, the notice
/// secret and admin token only from `envs`, and `args`, run to its end
/// (the tests give it what makes it stop at start).
fn serve_examples(dir: &Path, envs: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut c = common::serve_command();
    c.arg("--config")
        .arg(repo().join("examples/config"))
        .arg("--state")
        .arg(dir.join("state"))
        .args(args)
        .env_remove("BIDDER_NOTICE_SECRET")
        .env_remove("BIDDER_ADMIN_TOKEN");
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// A default tmax the margin eats whole would answer every request without
/// a tmax with no bid: the start refuses it, naming both flags.
#[test]
fn a_default_tmax_that_leaves_no_time_is_refused() {
    let dir = scratch("default-tmax");
    let out = serve_examples(
        &dir,
        &[("BIDDER_NOTICE_SECRET", "test-secret-of-at-least-32-bytes!")],
        &["--default-tmax-ms", "10"],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--default-tmax-ms 10 leaves no time after --tmax-margin-ms 10"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A trusted proxy network that is every address would let anyone say
/// where a request came from, past every allow_from; written IPv4-mapped,
/// it is read as its IPv4 network first (review finding: `::ffff:0:0/96`
/// became every IPv4 address in silence).
#[test]
fn a_trusted_proxy_network_of_every_address_is_refused() {
    let dir = scratch("every-proxy");
    for every in ["0.0.0.0/0", "::ffff:0:0/96", "::/0"] {
        let out = serve_examples(
            &dir,
            &[("BIDDER_NOTICE_SECRET", "test-secret-of-at-least-32-bytes!")],
            &["--trusted-proxies", every],
        );
        assert!(!out.status.success(), "{every}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("is every address"), "{every}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn secrets_come_from_files_or_the_environment_and_short_ones_are_refused() {
    let dir = scratch("secrets");
    let run = |envs: &[(&str, &str)], args: &[&str]| serve_examples(&dir, envs, args);
    let short = run(&[("BIDDER_NOTICE_SECRET", "only-sixteen-b!!")], &[]);
    assert_eq!(short.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&short.stderr);
    assert!(stderr.contains("at least 32"), "{stderr}");
    assert!(
        !stderr.contains("only-sixteen"),
        "a secret was printed: {stderr}"
    );
    let file = dir.join("notice-secret");
    std::fs::write(&file, "short\n").unwrap();
    let short = run(&[], &["--notice-secret-file", file.to_str().unwrap()]);
    assert_eq!(short.status.code(), Some(1));
    let weak = run(
        &[
            (
                "BIDDER_NOTICE_SECRET",
                "a-notice-secret-of-at-least-32-bytes",
            ),
            ("BIDDER_ADMIN_TOKEN", "short"),
        ],
        &[],
    );
    assert_eq!(weak.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&weak.stderr).contains("at least 16"));
    // A secret pasted with its newline keeps it (the notices out were
    // signed with it) but says so; the run stops later, at the token.
    let newline = run(
        &[
            (
                "BIDDER_NOTICE_SECRET",
                "a-notice-secret-of-at-least-32-bytes\n",
            ),
            ("BIDDER_ADMIN_TOKEN", "short"),
        ],
        &[],
    );
    assert_eq!(newline.status.code(), Some(1));
    let said = String::from_utf8_lossy(&newline.stderr);
    assert!(
        said.contains("BIDDER_NOTICE_SECRET ends in white space"),
        "{said}"
    );
    assert!(
        !String::from_utf8_lossy(&weak.stderr).contains("ends in white space"),
        "a secret without white space was warned about"
    );
    // The audience token writes purchases into reports: as long.
    let weak = run(
        &[
            (
                "BIDDER_NOTICE_SECRET",
                "a-notice-secret-of-at-least-32-bytes",
            ),
            ("BIDDER_AUDIENCE_TOKEN", "a"),
        ],
        &[],
    );
    assert_eq!(weak.status.code(), Some(1));
    let said = String::from_utf8_lossy(&weak.stderr);
    assert!(
        said.contains("the audience token has 1 bytes; at least 16"),
        "{said}"
    );
    let missing = run(&[], &["--admin-token-file", "/nonexistent/admin-token"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("admin token"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A `--public-url` the notice URLs cannot be built on is refused at start,
/// saying why: served, every win's notice would go nowhere, uncharged.
#[test]
fn a_public_url_notices_cannot_be_built_on_is_refused() {
    let dir = scratch("public-url");
    for (given, why) in [
        ("ftp://bidder.example.com", "http or https"),
        ("bidder.example.com", "not a URL"),
        ("https://bidder.example.com/path?q=1", "query or fragment"),
        ("https://bidder.example.com/#top", "query or fragment"),
        ("https://bid der.example.com", "white space"),
        ("https://bidder.example.com\n", "white space"),
        (
            "https://user:pw@bidder.example.com",
            "user name or password",
        ),
        ("https://", "not a URL"),
        ("https:bidder.example.com", "start with http:// or https://"),
        (
            "https:/bidder.example.com",
            "start with http:// or https://",
        ),
        (
            "https:///bidder.example.com",
            "start with http:// or https://",
        ),
        ("https:\\\\bidder.example.com", "backslash"),
        ("https://bidder.example.com:", "no port"),
        ("https://bidder.example.com/%zz", "two hex digits"),
        ("https://bidder..example.com", "empty label"),
        ("https://-bad-.example.com", "empty label"),
        ("https://bidder.example.com..", "empty label"),
        ("https://bidder.example.com/x\"y", "has no place in a URL"),
        ("https://bidder.example.com/{a}", "has no place in a URL"),
        ("https://bidder.example.com/a<b>", "has no place in a URL"),
        ("https://bïdder.example.com", "has no place in a URL"),
        (
            "https://bidder.example.com/a]b[",
            "has no place in a URL's path",
        ),
    ] {
        let out = serve_examples(
            &dir,
            &[(
                "BIDDER_NOTICE_SECRET",
                "a-notice-secret-of-at-least-32-bytes",
            )],
            &["--public-url", given],
        );
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{given:?}: {said}");
        assert!(
            said.contains("--public-url") && said.contains(why),
            "{given:?}: {said}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A known day ([`common::tents_day`]) journaled in a fresh state
/// directory: the config directory (the state directory is in it), the
/// state directory, and the ledger's spend of line item `tents` then.
fn tents_state(name: &str) -> (PathBuf, PathBuf, i64) {
    let dir = common::shop_config_dir(name);
    let state = dir.join("state");
    let s = common::Server::start_in(&dir, &state, 1_000_000, common::ts("2026-11-24T12:00:00Z"));
    common::tents_day(&s);
    let spent = s.app.line_item_spent("tents").lifetime.as_i64();
    drop(s);
    (dir, state, spent)
}

/// The report range of [`tents_state`]'s day.
const TENTS_DAY: [&str; 4] = ["--from", "2026-11-24", "--to", "2026-11-24"];

/// `bidder report` with `args` (dates included: the default range ends
/// on the wall clock's day): its exit code, standard output and error.
fn report(config: &Path, state: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = bin()
        .args(["report", "--config"])
        .arg(config)
        .arg("--state")
        .arg(state)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).expect("UTF-8"),
        String::from_utf8(out.stderr).expect("UTF-8"),
    )
}

/// The report's metric columns, in order.
const METRICS: [&str; 15] = [
    "bids",
    "wins",
    "impressions",
    "clicks",
    "ctr",
    "spend",
    "ecpm",
    "cpc",
    "detail_page_views",
    "purchases",
    "sales",
    "acos",
    "roas",
    "over_delivery",
    "win_rate",
];

#[test]
fn report_prints_a_known_day_as_table_csv_and_json() {
    let (dir, state, spent) = tents_state("cli-report");
    assert_eq!(spent, 8_000, "2.50 + 3.00 + 2.50 CPM");
    let day = TENTS_DAY;
    let run = |args: &[&str]| {
        let (code, stdout, stderr) = report(&dir, &state, &[&day[..], args].concat());
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        // Raw events are read on every run (the live charge journal at
        // least), and with standard error not a terminal there is no bar.
        assert!(
            !stderr.contains("reading raw events") && !stderr.contains('\r'),
            "{args:?}: a progress bar on a pipe: {stderr:?}"
        );
        stdout
    };

    let table = run(&["--by", "line_item"]);
    let lines: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        table.lines().next(),
        Some("Report 2026-11-24 to 2026-11-24 (UTC days), money in USD"),
        "{table}"
    );
    let header: Vec<&str> = ["line_item"].into_iter().chain(METRICS).collect();
    assert_eq!(lines[2], header, "{table}");
    let figures = [
        "3", "3", "3", "1", "33.33%", "0.008", "2.666666", "0.008", "1", "1", "100.00", "0.01%",
        "12500.00", "0.00", "100.00%",
    ];
    for name in ["tents", "total"] {
        let line = lines
            .iter()
            .find(|l| l.first() == Some(&name))
            .unwrap_or_else(|| panic!("no {name} line in\n{table}"));
        assert_eq!(line[1..], figures, "{name}\n{table}");
    }
    assert!(
        table.ends_with("\nNo-bid reasons\n  keyword                  1\n"),
        "{table}"
    );

    // RFC 4180: a header, CRLF line ends, ratios as plain fractions.
    let csv_header = format!("day,{}\r\n", METRICS.join(","));
    assert_eq!(
        run(&["--by", "day", "--format", "csv"]),
        format!(
            "{csv_header}2026-11-24,3,3,3,1,0.333333,0.008,2.666666,0.008,1,1,100.00,0.000080,12500.000000,0.00,1.000000\r\n"
        )
    );
    // The search-term report: the keyword the bids matched on.
    assert_eq!(
        run(&["--by", "keyword", "--format", "csv"]),
        csv_header.replacen("day", "keyword", 1)
            + "broad:tent,3,3,3,1,0.333333,0.008,2.666666,0.008,1,1,100.00,0.000080,12500.000000,0.00,1.000000\r\n"
    );
    // By audience: `tents` targets none, so everything, its conversions
    // included, is under an empty one.
    assert_eq!(
        run(&["--by", "audience", "--format", "csv"]),
        csv_header.replacen("day", "audience", 1)
            + ",3,3,3,1,0.333333,0.008,2.666666,0.008,1,1,100.00,0.000080,12500.000000,0.00,1.000000\r\n"
    );
    // The product report: the sale and the view under their products, the
    // ads (which name none) under an empty one; ratios over zero empty.
    assert_eq!(
        run(&["--by", "product", "--format", "csv"]),
        csv_header.replacen("day", "product", 1)
            + ",3,3,3,1,0.333333,0.008,2.666666,0.008,0,0,0.00,,0.000000,0.00,1.000000\r\n"
            + "tent-1,0,0,0,0,,0.00,,,0,1,100.00,,,0.00,\r\n"
            + "tent-2,0,0,0,0,,0.00,,,1,0,0.00,,,0.00,\r\n"
    );

    let json: serde_json::Value =
        serde_json::from_str(&run(&["--by", "line_item", "--format", "json"])).expect("JSON");
    assert_eq!(
        (&json["from"], &json["to"]),
        (&"2026-11-24".into(), &"2026-11-24".into())
    );
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{json:#}");
    assert_eq!(rows[0]["line_item"], "tents");
    assert_eq!(rows[0]["spend"]["micros"], spent, "the ledger's spend");
    assert_eq!(rows[0]["spend"]["amount"], "0.008");
    assert_eq!(json["total"]["spend"]["micros"], spent);
    assert_eq!(
        (
            &rows[0]["impressions"],
            &rows[0]["clicks"],
            &rows[0]["purchases"]
        ),
        (&3.into(), &1.into(), &1.into())
    );
    assert_eq!(rows[0]["sales"]["micros"], 100_000_000);
    assert_eq!(rows[0]["roas"], 12_500.0);
    assert_eq!(
        json["no_bids"],
        serde_json::json!([{"reason": "keyword", "count": 1}])
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A state whose charge journal is missing, or whose header cannot be
/// read, has spend nobody can read: the report refuses, as a start on it
/// would, rather than show every line item at 0.00 beside its sales.
#[test]
fn report_refuses_a_state_whose_spend_cannot_be_read() {
    let (dir, state, _) = tents_state("cli-report-no-journal");
    let day = [&TENTS_DAY[..], &["--by", "line_item"]].concat();
    let (code, _, stderr) = report(&dir, &state, &day);
    assert_eq!(code, Some(0), "{stderr}");
    let journal = state.join("charges.journal");
    let text = std::fs::read_to_string(&journal).unwrap();
    let (header, records) = text.split_once('\n').unwrap();
    std::fs::write(
        &journal,
        format!("{}\n{records}", header.replacen(" 1 ", " 9 ", 1)),
    )
    .unwrap();
    let (code, stdout, stderr) = report(&dir, &state, &day);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("charges.journal") && stderr.contains("spend cannot be read"),
        "{stderr}"
    );
    std::fs::remove_file(&journal).unwrap();
    let _ = std::fs::remove_file(state.join("ledger.checkpoint"));
    let (code, stdout, stderr) = report(&dir, &state, &day);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("no charge journal"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn report_refuses_bad_arguments_with_exit_code_1() {
    let dir = common::shop_config_dir("cli-report-bad");
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let day = TENTS_DAY;
    let refused = |state: &Path, args: &[&str]| {
        let (code, stdout, stderr) = report(&dir, state, args);
        assert_eq!(code, Some(1), "{args:?}: {stdout}{stderr}");
        assert_eq!(stdout, "", "{args:?}");
        stderr
    };
    let stderr = refused(&state, &[&day[..], &["--by", "day,campaign"]].concat());
    assert!(
        stderr.contains(r#"unknown dimension "campaign""#)
            && stderr.contains(
                "day, advertiser, order, line_item, creative, exchange, keyword, audience, product"
            ),
        "{stderr}"
    );
    // A value is taken whole, never read as query syntax (`&`, `+`, `%`).
    let stderr = refused(
        &state,
        &["--to", "2026-11-24", "--by", "day&from=2026-11-01"],
    );
    assert!(
        stderr.contains(r#"unknown dimension "day&from=2026-11-01""#),
        "{stderr}"
    );
    let stderr = refused(&state, &["--to", "2026-11-24", "--by", "day+keyword"]);
    assert!(
        stderr.contains(r#"unknown dimension "day+keyword""#),
        "{stderr}"
    );
    let stderr = refused(&state, &["--from", "2026-11-25", "--to", "2026-11-24"]);
    assert!(
        stderr.contains("from 2026-11-25 is after to 2026-11-24"),
        "{stderr}"
    );
    let missing = dir.join("no-such-state");
    let stderr = refused(&missing, &day);
    assert!(
        stderr.contains(&format!("{}: no such state directory", missing.display())),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn acknowledged_list_members_survive_kill_9_beside_data_files() {
    let dir = scratch("lists");
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::create_dir_all(dir.join("data/crm")).unwrap();
    std::fs::write(
        dir.join("config/shop.yaml"),
        r#"advertiser: { id: shop, name: Shop, domains: [shop.example], categories: [IAB22] }
audiences:
  - { id: loyal, kind: list, sources: [buyeruid, uidapi.com] }
creatives:
  - { id: b300, format: display, size: 300x250, image_url: "https://cdn.shop.example/b.png", click_url: "https://shop.example/" }
orders:
  - id: o1
    service: self_service
    budget: 1000000.00
    flight: { start: 2000-01-01, end: 2999-12-31 }
    line_items:
      - { id: li, media: display, cpm: 1.00, budget: { daily: 100.00 }, creatives: [b300],
          audiences: { any_of: [loyal] } }
"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("data/crm/loyal.members"),
        "{\"id\":\"from-file\"}\n{\"id\":\"removed-later\"}\n",
    )
    .unwrap();
    let req = |user: &str| {
        format!(
            r#"{{"id":"r1","imp":[{{"id":"1","banner":{{"w":300,"h":250}}}}],"site":{{"domain":"a.example"}},"user":{user}}}"#
        )
    };
    let bids = |addr, user: &str| {
        let reply = post_json(addr, "/openrtb2/bid", &req(user));
        reply.split(' ').nth(1).unwrap_or_default().to_owned()
    };
    let data = dir.join("data");
    let state = dir.join("state");
    let extra: [&std::ffi::OsStr; 2] = ["--data".as_ref(), data.as_os_str()];
    let (mut child, bid, admin) = serve(&dir.join("config"), &state, &extra);
    assert_eq!(bids(bid, r#"{"buyeruid":"from-file"}"#), "200");
    assert_eq!(bids(bid, r#"{"buyeruid":"uploaded"}"#), "204");
    let ack = post_json(
        admin,
        "/v1/audiences/loyal/members",
        "{\"id\":\"uploaded\"}\n{\"id\":\"removed-later\",\"remove\":true}\n",
    );
    assert!(ack.starts_with("HTTP/1.1 200"), "{ack}");
    assert!(
        ack.contains("{\"added\":1,\"removed\":1,\"members\":2}"),
        "{ack}"
    );
    let eid = r#"{"eids":[{"source":"uidapi.com","uids":[{"id":"uploaded"}]}]}"#;
    assert_eq!(bids(bid, eid), "200");
    let _ = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status();
    let _ = child.wait();

    // Restarted with the same files: the upload's member and removal stand.
    let (mut child, bid, _) = serve(&dir.join("config"), &state, &extra);
    assert_eq!(bids(bid, r#"{"buyeruid":"uploaded"}"#), "200");
    assert_eq!(bids(bid, r#"{"buyeruid":"from-file"}"#), "200");
    assert_eq!(bids(bid, r#"{"buyeruid":"removed-later"}"#), "204");
    terminate(child.id());
    let _ = child.wait();

    // A member file naming no list stops the start, naming the file.
    std::fs::write(dir.join("data/typo.members"), "{\"id\":\"x\"}\n").unwrap();
    let out = common::serve_command()
        .arg("--config")
        .arg(dir.join("config"))
        .arg("--state")
        .arg(&state)
        .arg("--data")
        .arg(&data)
        .env("BIDDER_NOTICE_SECRET", "test-secret-of-at-least-32-bytes!")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("typo.members") && err.contains("\"typo\""),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_changed_config_file_is_reloaded_without_a_signal() {
    let dir = scratch("watch");
    std::fs::create_dir_all(dir.join("config")).unwrap();
    let shop = |cpm: &str| one_banner_shop(cpm, "daily: 100.00");
    std::fs::write(dir.join("config/shop.yaml"), shop("4.00")).unwrap();
    let state = dir.join("state");
    let extra: [&std::ffi::OsStr; 2] = ["--config-poll-secs".as_ref(), "1".as_ref()];
    let (mut child, _, admin) = serve(&dir.join("config"), &state, &extra);
    let req = ONE_BANNER_REQUEST;
    let price = || {
        let e = post_json(admin, "/v1/explain", req);
        let body = e.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        v["line_items"][0]["price"].as_f64()
    };
    assert_eq!(price(), Some(4.0));
    // Edited in place, as an operator (or a ConfigMap swap) would.
    std::fs::write(dir.join("config/shop.yaml"), shop("5.00")).unwrap();
    let mut seen = None;
    for _ in 0..100 {
        seen = price();
        if seen == Some(5.0) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(seen, Some(5.0), "the new cpm was loaded");
    // A broken edit is refused; the one serving stays.
    std::fs::write(dir.join("config/shop.yaml"), shop("-1")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2_500));
    assert_eq!(price(), Some(5.0));
    terminate(child.id());
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_drains_readyz_first_and_keeps_serving_for_the_grace_period() {
    let state = std::env::temp_dir().join(format!("bidder-cli-drain-{}", std::process::id()));
    let extra: [&std::ffi::OsStr; 2] = ["--drain-secs".as_ref(), "3".as_ref()];
    let (mut child, bid, admin) = serve(&repo().join("examples/config"), &state, &extra);
    let readyz = || {
        http(
            admin,
            "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
    };
    assert!(readyz().starts_with("HTTP/1.1 200"));
    terminate(child.id());
    let mut drained = String::new();
    for _ in 0..50 {
        drained = readyz();
        if drained.starts_with("HTTP/1.1 503") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(drained.contains("draining"), "{drained}");
    // Still answering bids while the load balancer catches up.
    let body = std::fs::read_to_string(repo().join("benches/src/banner-request.json")).unwrap();
    let reply = http(
        bid,
        &format!(
            "POST /openrtb2/bid HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(
        reply.starts_with("HTTP/1.1 200") || reply.starts_with("HTTP/1.1 204"),
        "{reply}"
    );
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn log_format_json_writes_one_object_a_line_and_rust_log_still_filters() {
    let state = std::env::temp_dir().join(format!("bidder-cli-json-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    // No notice secret: serve warns that it made one (a WARN with a field).
    // RUST_LOG keeps the bidder's info and only warnings from elsewhere
    // (the reports crate logs its journal read at info).
    let mut child = bin()
        .args([
            "serve",
            "--log-format",
            "json",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--drain-secs",
            "0",
            "--config",
        ])
        .arg(repo().join("examples/config"))
        .arg("--state")
        .arg(&state)
        .env("RUST_LOG", "warn,bidder=info")
        .env_remove("BIDDER_LOG_FORMAT")
        .env_remove("BIDDER_NOTICE_SECRET")
        .env_remove("BIDDER_NOTICE_SECRET_FILE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let admin = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("admin="))
        .unwrap_or_else(|| panic!("no admin= in {line:?}"))
        .to_owned();
    terminate(child.id());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    let stderr = String::from_utf8(out.stderr).expect("UTF-8 logs");
    let events: Vec<serde_json::Map<String, serde_json::Value>> = stderr
        .lines()
        .map(|l| match serde_json::from_str(l) {
            Ok(serde_json::Value::Object(o)) => o,
            _ => panic!("not a JSON object: {l:?}\n{stderr}"),
        })
        .collect();
    assert!(events.len() >= 3, "{stderr}");
    for e in &events {
        let ts = e["timestamp"].as_str().unwrap_or_default();
        // RFC 3339 in UTC: 2026-11-30T17:12:25.723680Z.
        assert!(
            ts.len() >= 20 && ts.as_bytes()[10] == b'T' && ts.ends_with('Z'),
            "{e:?}"
        );
        assert!(
            ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"].contains(&e["level"].as_str().unwrap()),
            "{e:?}"
        );
        assert!(e["message"].is_string() && e["target"].is_string(), "{e:?}");
        let target = e["target"].as_str().unwrap();
        let level = e["level"].as_str().unwrap();
        assert!(
            target == "bidder"
                || target.starts_with("bidder::")
                || level == "WARN"
                || level == "ERROR",
            "RUST_LOG=warn,bidder=info let through {e:?}"
        );
    }
    // The event's fields sit beside the message, not nested.
    let serving = events
        .iter()
        .find(|e| e["message"] == "serving")
        .unwrap_or_else(|| panic!("no serving event in {stderr}"));
    assert_eq!(serving["admin"], admin.as_str(), "{serving:?}");
    let warned = events
        .iter()
        .find(|e| e["level"] == "WARN" && e["message"].as_str().unwrap().contains("notice-secret"))
        .unwrap_or_else(|| panic!("no notice secret warning in {stderr}"));
    assert!(
        warned["file"].as_str().unwrap().ends_with("notice.secret"),
        "{warned:?}"
    );
    let _ = std::fs::remove_dir_all(&state);
}

/// Whoever reads reports needs no exchange's price keys: a config whose
/// exchange decrypts prices with keys from the environment is refused by
/// `validate` (and `serve`) when they are not set, and read by `report`.
#[test]
fn report_reads_a_config_whose_price_keys_are_not_in_its_environment() {
    let (dir, state, _) = tents_state("cli-report-secrets");
    let day = [&TENTS_DAY[..], &["--by", "line_item"]].concat();
    let (code, before, stderr) = report(&dir, &state, &day);
    assert_eq!(code, Some(0), "{stderr}");
    std::fs::write(
        dir.join("encrypting-exchange.yaml"),
        "exchange:\n  id: encrypting\n  name: Encrypting\n  price_encryption:\n    scheme: google\n    \
         encryption_key_env: CLI_TEST_UNSET_ENCRYPTION_KEY\n    \
         integrity_key_env: CLI_TEST_UNSET_INTEGRITY_KEY\n",
    )
    .unwrap();
    let validated = bin()
        .args(["validate", "--config"])
        .arg(&dir)
        .env_remove("CLI_TEST_UNSET_ENCRYPTION_KEY")
        .env_remove("CLI_TEST_UNSET_INTEGRITY_KEY")
        .output()
        .unwrap();
    assert_eq!(validated.status.code(), Some(1));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&validated.stdout),
        String::from_utf8_lossy(&validated.stderr)
    );
    assert!(
        said.contains("the environment variable CLI_TEST_UNSET_ENCRYPTION_KEY"),
        "{said}"
    );
    let (code, after, stderr) = report(&dir, &state, &day);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(after, before);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A value-based line item without `max_cpm` is valid, and `validate` says
/// how high one of its bids may go (reports probe: a target_cpa of 30.00
/// bid 13,137 CPM where the model predicted a near-sure conversion); with
/// `max_cpm`, nothing to say.
#[test]
fn validate_warns_of_value_bids_without_a_ceiling() {
    let warned = |bidding: &str| {
        warnings_with(
            "unbounded-bid",
            "        cpm: 1.80\n",
            &format!("        bidding: {bidding}\n"),
            "without a max_cpm",
        )
        .0
    };
    assert_eq!(
        warned("{ strategy: target_cpa, target_cpa: 30.00 }"),
        [format!(
            "warning: {}:32:9: line item \"nw-mobile-readers\": target_cpa 30.00 without a max_cpm \
             below its goal × 1000: a bid may reach 30,000.00 CPM where the model predicts a \
             sure conversion; set bidding.max_cpm to bound it",
            std::env::temp_dir()
                .join(format!("bidder-cli-unbounded-bid-{}", std::process::id()))
                .join("northwind-books.yaml")
                .display()
        )]
    );
    assert!(warned("{ strategy: max_cpc, max_cpc: 1.20, max_cpm: 8.00 }").is_empty());
}

/// Shopper events uploaded at run time are kept in the state directory:
/// after a restart, a shopper who viewed the product is still in the views
/// audience, as list members are (audience probe: only `--data` came back,
/// and every deploy emptied the audiences uploads had filled). The bidder
/// runs on the wall clock here: the view is dated today at midnight UTC.
#[test]
fn uploaded_audience_events_survive_a_restart() {
    let dir = scratch("audience-restart");
    let config = dir.join("config");
    std::fs::create_dir_all(&config).unwrap();
    let shop = one_banner_shop("1.00", "daily: 100.00")
        .replace(
            "creatives:\n",
            "audiences:\n  - { id: viewers, kind: views, products: [tent-1] }\ncreatives:\n",
        )
        .replace(
            "creatives: [b300] }",
            "audiences: { any_of: [viewers] }, creatives: [b300] }",
        );
    std::fs::write(config.join("shop.yaml"), shop).unwrap();
    let state = dir.join("state");
    let quick: [&std::ffi::OsStr; 4] = [
        "--drain-secs".as_ref(),
        "0".as_ref(),
        "--config-poll-secs".as_ref(),
        "0".as_ref(),
    ];
    let status = |bid: std::net::SocketAddr, user: &str| {
        let body = ONE_BANNER_REQUEST.replace(
            r#""site""#,
            &format!(r#""user":{{"buyeruid":"{user}"}},"site""#),
        );
        let reply = http(
            bid,
            &format!(
                "POST /openrtb2/bid HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        );
        reply.split(' ').nth(1).unwrap_or("").to_string()
    };
    let (mut child, bid, admin) = serve(&config, &state, &quick);
    assert_eq!(status(bid, "u-1"), "204", "not a viewer yet");
    let today = config::Clock::now(&config::SystemClock).date();
    let view =
        format!(r#"{{"user":"u-1","event":"view","product":"tent-1","at":"{today}T00:00:00Z"}}"#);
    let r = post_json(admin, "/v1/audience-events", &view);
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert_eq!(status(bid, "u-1"), "200", "a viewer");
    terminate(child.id());
    assert!(child.wait().unwrap().success());

    let (mut child, bid, _) = serve(&config, &state, &quick);
    assert_eq!(
        status(bid, "u-1"),
        "200",
        "still a viewer after the restart"
    );
    assert_eq!(status(bid, "u-2"), "204");
    terminate(child.id());
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// `simulate` refuses what it cannot run as asked, saying why, rather than
/// run something else: an empty `--traffic` file (it simulated requests
/// made up from the config instead), a config with no line items (a
/// division by zero with `--start`), `--hours` past a leap year (a typo
/// ran until killed).
#[test]
fn simulate_refuses_what_it_cannot_run_as_asked() {
    let dir = scratch("simulate-refusals");
    let empty = dir.join("empty.jsonl");
    std::fs::write(&empty, "\n").unwrap();
    let no_items = dir.join("no-items");
    std::fs::create_dir_all(&no_items).unwrap();
    std::fs::write(
        no_items.join("a.yaml"),
        "advertiser: { id: a, name: A, domains: [a.example], categories: [IAB22] }\n",
    )
    .unwrap();
    let examples = repo().join("examples/config");
    let traffic = format!("--traffic={}", empty.display());
    for (config, args, says) in [
        (&examples, vec![traffic.as_str()], "no request in it"),
        (
            &no_items,
            vec!["--start", "2026-11-24T00:00:00Z"],
            "no line items",
        ),
        (&no_items, vec![], "no orders"),
        (&examples, vec!["--hours", "100000000"], "--hours"),
        (&examples, vec!["--hours", "0"], "--hours"),
    ] {
        let out = bin()
            .args(["simulate", "--config"])
            .arg(config)
            .args(&args)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {said}");
        assert!(said.contains(says), "{args:?}: {said}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `report --out` and `train --out` refuse a path inside the state
/// directory: a report written over `charges.journal` replaced the charges
/// with a table, a model over a day of events replaced the events.
#[test]
fn outputs_are_not_written_into_the_state_directory() {
    let (dir, state, _) = tents_state("cli-out-in-state");
    let journal = state.join("charges.journal");
    let before = std::fs::read(&journal).unwrap();
    let out = format!("--out={}", journal.display());
    let (code, _, stderr) = report(&dir, &state, &[&TENTS_DAY[..], &[out.as_str()]].concat());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("own files in the state directory"),
        "{stderr}"
    );
    let trained = bin()
        .args(["train", "--state"])
        .arg(&state)
        .arg("--out")
        .arg(state.join("events").join("model.bin"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&trained.stderr);
    assert_eq!(trained.status.code(), Some(1), "{said}");
    assert!(said.contains("own files in the state directory"), "{said}");
    // A file of one's own beside them is let be (a model kept with the
    // state it was trained on).
    let beside = bin()
        .args(["train", "--state"])
        .arg(&state)
        .arg("--out")
        .arg(state.join("model.bin"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&beside.stderr);
    assert!(!said.contains("own files"), "{said}");
    // Through a link from outside the state directory.
    let link = dir.join("report.txt");
    std::os::unix::fs::symlink(&journal, &link).unwrap();
    let out = format!("--out={}", link.display());
    let (code, _, stderr) = report(&dir, &state, &[&TENTS_DAY[..], &[out.as_str()]].concat());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("own files in the state directory"),
        "{stderr}"
    );
    // Through a hard link from outside: the same file by another name
    // (reports probe: the report replaced the charges).
    let hard = dir.join("hard.csv");
    std::fs::hard_link(&journal, &hard).unwrap();
    let out = format!("--out={}", hard.display());
    let (code, _, stderr) = report(&dir, &state, &[&TENTS_DAY[..], &[out.as_str()]].concat());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("own files in the state directory"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(&journal).unwrap(),
        before,
        "the journal is untouched"
    );
    // Nor by way of a link of one's own beside the journal in the state
    // directory: whichever name is found first, it is the journal.
    for name in ["a-backup", "zz-backup"] {
        std::fs::hard_link(&journal, state.join(name)).unwrap();
        let (code, _, stderr) = report(&dir, &state, &[&TENTS_DAY[..], &[out.as_str()]].concat());
        assert_eq!(code, Some(1), "{name}: {stderr}");
        std::fs::remove_file(state.join(name)).unwrap();
    }
    assert_eq!(std::fs::read(&journal).unwrap(), before);
    // A hard link to a file of one's own there is let be.
    std::fs::write(state.join("notes.txt"), "mine").unwrap();
    let mine = dir.join("mine.txt");
    std::fs::hard_link(state.join("notes.txt"), &mine).unwrap();
    let out = format!("--out={}", mine.display());
    let (code, _, stderr) = report(&dir, &state, &[&TENTS_DAY[..], &[out.as_str()]].concat());
    assert_eq!(code, Some(0), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

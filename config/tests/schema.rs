//! The JSON Schema for editors: the committed file is the generated one,
//! and a validator independent of ours (Python's `jsonschema`, through
//! `schema_check.py`) agrees with the bidder on the shipped files and on
//! valid and broken samples.
//!
//! Without python3 and its jsonschema and yaml packages these tests fail:
//! install python3-jsonschema and python3-yaml (`scripts/test.sh` does).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{edit, BASE, NATIVE, OTHER};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
const SCHEMA: &str = "schema/bidder-config.schema.json";
const REGENERATE: &str = "cargo run -p bidder -- schema > schema/bidder-config.schema.json";

fn root() -> &'static Path {
    Path::new(ROOT)
}

#[test]
fn the_committed_schema_is_the_generated_one() {
    let text = std::fs::read_to_string(root().join(SCHEMA))
        .unwrap_or_else(|e| panic!("{SCHEMA}: {e}; create it with `{REGENERATE}`"));
    let committed: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!("{SCHEMA} is not JSON ({e}); regenerate it with `{REGENERATE}`")
    });
    assert!(
        committed == config::json_schema(),
        "{SCHEMA} is stale: the config types changed since it was generated. \
         Regenerate it with `{REGENERATE}` and commit it."
    );
}

/// The examples carry the comment that points editors at the schema.
#[test]
fn examples_point_editors_at_the_schema() {
    let dir = root().join("examples/config");
    let mut seen = 0;
    for file in yaml_files(&dir) {
        let text = std::fs::read_to_string(&file).unwrap();
        let first = text.lines().next().unwrap_or_default();
        let target = first
            .strip_prefix("# yaml-language-server: $schema=")
            .unwrap_or_else(|| panic!("{}: first line {first:?}", file.display()));
        let schema = file.parent().unwrap().join(target);
        assert_eq!(
            schema.canonicalize().unwrap(),
            root().join(SCHEMA).canonicalize().unwrap(),
            "{}",
            file.display()
        );
        seen += 1;
    }
    assert!(seen >= 2);
}

#[test]
fn every_shipped_config_file_is_valid() {
    let mut files = yaml_files(&root().join("examples/config"));
    files.extend(yaml_files(&root().join("testdata/config")));
    assert!(files.len() >= 3, "{files:?}");
    for (file, verdict) in check(&files) {
        if let Err(reason) = verdict {
            panic!("{}: the schema refuses it: {reason}", file.display());
        }
    }
}

/// Google's published test keys (not secrets).
const ENC_KEY: &str = "skU7Ax_NL5pPAFyKdkfZjZz2-VhIN8bjj1rVFOaJ_5o=";
const INT_KEY: &str = "arO23ykdNqUQ5LEoQ0FVmPkBd7xB5CO89PDZlSjpFxo=";

const EXCHANGE: &str = "\
exchange:
  id: adx
  name: Ad Exchange
  price_encryption:
    scheme: google
    encryption_key_env: CFGTEST_SCHEMA_ENC
    integrity_key_env: CFGTEST_SCHEMA_INT
  charge_on: billing
  vast_default: \"4.1\"
  gzip_responses: true
  tmax_default_ms: 120
";

const RATES: &str = "\
currency_rates:
  base: USD
  as_of: 2026-11-30
  rates:
    JPY: 155.3
    EUR: 0.95
    GBP: \"0.79\"
";

/// Files the bidder loads and files it refuses: the schema says the same
/// of each (it cannot see everything the validator does, so the broken
/// files are the kinds of mistakes it can: keys, types, fixed lists).
#[test]
fn the_schema_and_the_bidder_agree_on_samples() {
    std::env::set_var("CFGTEST_SCHEMA_ENC", ENC_KEY);
    std::env::set_var("CFGTEST_SCHEMA_INT", INT_KEY);
    let valid: Vec<(&str, String)> = vec![
        ("base", BASE.to_owned()),
        ("other", OTHER.to_owned()),
        ("native", NATIVE.to_owned()),
        ("exchange", EXCHANGE.to_owned()),
        ("rates", RATES.to_owned()),
        // Text may be written as a number; optional keys may be left empty.
        (
            "numbers-as-text",
            edit(
                OTHER,
                "interests: [mystery]",
                "interests: [2024]\n    recency_days:",
            ),
        ),
    ];
    let broken: Vec<(&str, String)> = vec![
        (
            "unknown-key",
            edit(
                OTHER,
                "  name: Northwind\n",
                "  name: Northwind\n  nmae: N\n",
            ),
        ),
        (
            "unknown-key-deep",
            edit(BASE, "keywords: { broad:", "keywords: { fuzzy:"),
        ),
        (
            "missing-key",
            edit(OTHER, "    click_url: https://northwind.example/\n", ""),
        ),
        ("list-for-value", edit(OTHER, "cpm: 1.80", "cpm: [1.80]")),
        (
            "text-for-number",
            edit(BASE, "lookback_days: 365", "lookback_days: a year"),
        ),
        (
            "value-for-list",
            edit(OTHER, "creatives: [nw-banner]", "creatives: nw-banner"),
        ),
        (
            "bad-format",
            edit(OTHER, "format: display", "format: banner"),
        ),
        ("bad-service", edit(OTHER, "self_service", "self-service")),
        (
            "bad-device",
            edit(BASE, "set_top_box, dooh]", "set_top_box, dooh, watch]"),
        ),
        ("bad-kind", edit(OTHER, "kind: interests", "kind: likes")),
        ("bad-charge-on", edit(EXCHANGE, "billing", "burl")),
        ("bad-vast", edit(EXCHANGE, "\"4.1\"", "\"5.0\"")),
        (
            "bad-scheme",
            edit(EXCHANGE, "scheme: google", "scheme: aes"),
        ),
        ("bad-base", edit(RATES, "base: USD", "base: EUR")),
        ("bad-code", edit(RATES, "EUR: 0.95", "eur: 0.95")),
        ("two-kinds", format!("{EXCHANGE}{RATES}")),
        (
            "lists-in-exchange",
            format!("{EXCHANGE}audiences:\n  - {{ id: a, kind: views, products: [p] }}\n"),
        ),
        ("no-kind", "audiences: []\n".to_owned()),
        ("empty", String::new()),
    ];

    let dir = std::env::temp_dir().join(format!("config-schema-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    for (name, text) in valid.iter().chain(&broken) {
        let path = dir.join(format!("{name}.yaml"));
        std::fs::write(&path, text).unwrap();
        files.push(path);
    }
    let verdicts = check(&files);
    let _ = std::fs::remove_dir_all(&dir);

    for ((name, text), (_, verdict)) in valid.iter().chain(&broken).zip(&verdicts) {
        let is_valid = valid.iter().any(|(n, _)| n == name);
        let loaded = config::load_files(&[(PathBuf::from(format!("{name}.yaml")), text.clone())]);
        if is_valid {
            if let Err(problems) = loaded {
                panic!("{name}: the bidder refuses it:\n{problems}");
            }
            if let Err(reason) = verdict {
                panic!("{name}: the schema refuses it: {reason}\n{text}");
            }
        } else {
            assert!(loaded.is_err(), "{name}: the bidder loads it");
            assert!(verdict.is_err(), "{name}: the schema accepts it\n{text}");
        }
    }
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(yaml_files(&path));
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// `schema_check.py` on the committed schema: each file's verdict, in order.
fn check(files: &[PathBuf]) -> Vec<(PathBuf, Result<(), String>)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schema_check.py");
    let out = match Command::new("python3")
        .arg(&script)
        .arg(root().join(SCHEMA))
        .args(files)
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "python3 is not installed: the schema tests need it, with python3-jsonschema and \
             python3-yaml (scripts/test.sh installs them)"
        ),
        Err(e) => panic!("cannot run python3: {e}"),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{} failed: {stderr}\n(the schema tests need python3-jsonschema and python3-yaml; \
         scripts/test.sh installs them)",
        script.display()
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), files.len(), "{stdout}{stderr}");
    files
        .iter()
        .zip(lines)
        .map(|(file, line)| {
            let verdict = line
                .strip_prefix(&format!("{}: ", file.display()))
                .unwrap_or_else(|| panic!("unexpected line {line:?} for {}", file.display()));
            let verdict = match verdict {
                "ok" => Ok(()),
                other => Err(other.strip_prefix("invalid: ").unwrap_or(other).to_owned()),
            };
            (file.clone(), verdict)
        })
        .collect()
}

//! `bidder train`: a server bids for a max_cpc line item, its impressions
//! are tracked (their URLs carrying the features each bid was priced
//! with) and some clicked; the binary trains a model from the state
//! directory's event journal; a server given that model predicts the line
//! item's observed click rate instead of the prior.

mod common;

use std::process::Command;

use common::{
    banner_urls, explain, get, only_bid, path_of, shop_config_dir, ts, verdict, Server, SHOP,
};
use serde_json::json;

const MAX_CPC: &str = "{ strategy: max_cpc, max_cpc: 1.20 }";

fn bidder(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_bidder"))
        .args(args)
        .output()
        .expect("run bidder")
}

fn tents() -> serde_json::Value {
    let mut r = common::banner_request();
    r["site"]["keywords"] = json!("camping,tent");
    r["imp"][0]["bidfloor"] = json!(0.1);
    r
}

#[test]
fn a_model_trained_on_the_journal_predicts_the_observed_click_rate() {
    let config = shop_config_dir("train-config");
    let shop = SHOP.replace(
        "        cpm: 4.00\n",
        &format!("        bidding: {MAX_CPC}\n"),
    );
    std::fs::write(config.join("shop.yaml"), shop).unwrap();
    let state = common::tempdir("train-state");
    // One impression in four clicked.
    const N: usize = 2_000;
    {
        let s = Server::start_in(&config, &state, 1_000_000, ts("2026-11-24T12:00:00Z"));
        let v = verdict(&explain(&s, &tents()), "tents");
        assert_eq!(v["bidding"]["p_click"], 0.001, "the prior: {v}");
        for i in 0..N {
            let mut r = tents();
            r["user"]["buyeruid"] = json!(format!("u-{i}"));
            let bid = only_bid(&s, &r);
            let (click, pixel) = banner_urls(bid["adm"].as_str().unwrap());
            assert!(pixel.contains("&f="), "{pixel}");
            assert!(click.contains("&f="), "{click}");
            // Nine bids in ten are won (charged); the tenth is not, yet
            // whoever saw its markup calls its pixel and clicks it: that
            // must teach the model nothing.
            let won = i % 10 != 9;
            if won {
                assert_eq!(s.notice(bid["nurl"].as_str().unwrap(), "1.00").status, 200);
            }
            assert_eq!(get(s.bid, path_of(&pixel)).status, 200);
            if i % 4 == 0 || !won {
                assert_eq!(get(s.bid, path_of(&click)).status, 302);
            }
            if i == 0 {
                // A changed `f` is refused like any other signed value.
                let (head, rest) = pixel.split_once("&f=").unwrap();
                let (f, sig) = rest.split_once("&s=").unwrap();
                let last = if f.ends_with('A') { 'B' } else { 'A' };
                let forged = format!("{head}&f={}{last}&s={sig}", &f[..f.len() - 1]);
                assert_eq!(get(s.bid, path_of(&forged)).status, 403, "{forged}");
            }
        }
        s.flush_events();
    }
    // Damage: a torn line and a garbled one are skipped, not fatal.
    let day = state.join("events/2026-11-24.events");
    let mut text = std::fs::read_to_string(&day).unwrap();
    // Impression records end with the audience field (empty) and the
    // features, then the checksum.
    let impression = text.lines().find(|l| l.starts_with("i\t")).unwrap();
    assert_eq!(impression.split('\t').count(), 16, "{impression}");
    text.push_str("i\t1795000000000\tshop\to1\ttents\tgarbled\n");
    text.push_str("not a record at all\n");
    std::fs::write(&day, text).unwrap();

    let model = state.join("model.bin");
    let out = bidder(&[
        "train",
        "--state",
        state.to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
        "--from",
        "2026-11-24",
        "--bits",
        "16",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // The won ones only: 1,800 impressions, 500 of them clicked (no bid
    // clicked on purpose is a tenth one).
    let charged = N - N / 10;
    assert!(
        stdout.contains(&format!("examples: {charged} ")),
        "{stdout}"
    );
    // The unwon tenth's calls wait for a charge that never comes: they
    // never reach the journal (the trainer would leave them out too).
    assert!(stdout.contains("0 of bids never charged"), "{stdout}");
    assert!(stdout.contains(&format!("clicks: {}\n", N / 4)), "{stdout}");
    assert!(stdout.contains("2 damaged line(s) skipped"), "{stdout}");
    assert!(stdout.contains("held-out click log loss"), "{stdout}");
    assert!(model.is_file());

    // The events alone, without the charge journal beside them: no
    // example, and the refusal says what is missing.
    let bare = common::tempdir("train-bare");
    std::fs::create_dir_all(bare.join("events")).unwrap();
    std::fs::copy(&day, bare.join("events/2026-11-24.events")).unwrap();
    let out = bidder(&[
        "train",
        "--state",
        bare.to_str().unwrap(),
        "--out",
        bare.join("m").to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{charged} of bids the charge journal has no charge of: is \
             STATE/charges*.journal beside STATE/events?"
        )),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&bare);

    let settings = bidder::Settings {
        model_path: Some(model),
        ..bidder::Settings::default()
    };
    let s = Server::start_with(&config, None, settings);
    assert!(s.app.load_model());
    let v = verdict(&explain(&s, &tents()), "tents");
    let p = v["bidding"]["p_click"].as_f64().unwrap();
    // Observed 500 / 1,800 (the unwon tenth's clicks do not count): 0.28;
    // the model shrinks a line item's rate toward its prior by
    // n / (n + 1000) impressions: about 0.24 here. Had the unwon bids'
    // clicks counted, 700 / 2,000.
    let n = charged as f64;
    let observed = (N / 4) as f64 / n;
    // The prior is itself the observed rate smoothed toward 0.001 by the
    // same 1000 pseudo-impressions.
    let prior = (n * observed + 1000.0 * 0.001) / (n + 1000.0);
    let shrunk = (n * observed + 1000.0 * prior) / (n + 1000.0);
    assert!(
        (p - shrunk).abs() < 0.05,
        "p_click {p}, expected about {shrunk}: {v}"
    );
}

#[test]
fn an_empty_state_or_bad_arguments_exit_1() {
    let state = common::tempdir("train-empty");
    let model = state.join("model.bin");
    let (s, m) = (state.to_str().unwrap(), model.to_str().unwrap());
    for (args, says) in [
        (
            vec!["train", "--state", s, "--out", m],
            "no event journal days",
        ),
        (
            vec!["train", "--state", s, "--out", m, "--from", "2026-13-01"],
            "--from",
        ),
        (
            vec![
                "train",
                "--state",
                s,
                "--out",
                m,
                "--from",
                "2026-11-25",
                "--to",
                "2026-11-24",
            ],
            "after",
        ),
        (
            vec!["train", "--state", s, "--out", m, "--bits", "40"],
            "bits",
        ),
        (
            vec!["train", "--state", "/nonexistent/state", "--out", m],
            "no such state",
        ),
    ] {
        let out = bidder(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    // A journal of bids only (no tracked impression with features).
    std::fs::create_dir_all(state.join("events")).unwrap();
    std::fs::write(state.join("events/2026-11-24.events"), "bidder-events 1\n").unwrap();
    let out = bidder(&["train", "--state", s, "--out", m]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("nothing to train on"), "{stderr}");
    assert!(!model.exists());
}

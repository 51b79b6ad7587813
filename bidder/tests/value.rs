//! Value-based bidding: max_cpc and target_cpa line items bid the
//! impression's expected value (goal × predicted rate × 1000) within their
//! max_cpm ceiling and never under the floor; the model comes from
//! `--model` (a file `bidder train` writes), and a missing or corrupt one
//! leaves the priors.

mod common;

use common::{banner_request, explain, shop_config_dir, verdict, Server, SHOP};
use serde_json::json;

fn shop(bidding: &str) -> String {
    SHOP.replace(
        "        cpm: 4.00\n",
        &format!("        bidding: {bidding}\n"),
    )
}

fn server(name: &str, bidding: &str, model: Option<std::path::PathBuf>) -> Server {
    let dir = shop_config_dir(name);
    std::fs::write(dir.join("shop.yaml"), shop(bidding)).unwrap();
    let settings = bidder::Settings {
        model_path: model,
        ..bidder::Settings::default()
    };
    let s = Server::start_with(&dir, None, settings);
    s.app.load_model();
    s
}

fn tents(floor: f64) -> serde_json::Value {
    let mut r = banner_request();
    r["site"]["keywords"] = json!("tent");
    r["imp"][0]["bidfloor"] = json!(floor);
    r
}

#[test]
fn each_strategy_bids_its_expected_value_on_the_priors() {
    // No model: the priors, 0.001 clicks and 0.0001 conversions an
    // impression. 1.20 × 0.001 × 1000 = 1.20; 25.00 × 0.0001 × 1000 = 2.50.
    for (bidding, value, rate) in [
        ("{ strategy: max_cpc, max_cpc: 1.20 }", 1.2, "p_click"),
        (
            "{ strategy: target_cpa, target_cpa: 25.00 }",
            2.5,
            "p_conversion",
        ),
    ] {
        let s = server("value-priors", bidding, None);
        let v = verdict(&explain(&s, &tents(0.5)), "tents");
        assert_eq!(v["price"], value, "{bidding}: {v}");
        assert_eq!(v["bidding"]["value"], value, "{v}");
        assert!(v["bidding"][rate].as_f64().unwrap() > 0.0, "{v}");
        assert!(
            v["bidding"]["why"].as_str().unwrap().contains("predicted"),
            "{v}"
        );
        assert_eq!(s.bid(&tents(0.5).to_string()).status, 200);
        // Under the floor: no bid, reason floor.
        let v = verdict(&explain(&s, &tents(value + 0.01)), "tents");
        assert_eq!(v["reason"], "floor", "{v}");
    }
    // The ceiling.
    let s = server(
        "value-ceiling",
        "{ strategy: target_cpa, target_cpa: 25.00, max_cpm: 1.00 }",
        None,
    );
    let v = verdict(&explain(&s, &tents(0.5)), "tents");
    assert_eq!(v["price"], 1.0, "{v}");
    assert!(
        v["bidding"]["why"].as_str().unwrap().contains("ceiling"),
        "{v}"
    );
}

/// A model in which the shop's line item is clicked one time in fifty.
fn trained_model(path: &std::path::Path) {
    let mut t = predict::Trainer::new(predict::Params {
        bits: 16,
        ..predict::Params::default()
    })
    .unwrap();
    for i in 0..20_000u32 {
        let f = t
            .hasher()
            .features(
                &[(predict::field::LINE_ITEM, "tents")],
                predict::DEFAULT_CROSSES,
            )
            .unwrap();
        let outcome = predict::Outcome {
            clicked: i % 50 == 0,
            converted: false,
        };
        t.train(&f, "tents", outcome).unwrap();
    }
    t.finish().save(path).unwrap();
}

#[test]
fn a_model_file_prices_and_a_bad_one_falls_back_to_the_priors() {
    let dir = common::tempdir("value-model");
    let path = dir.join("model.bin");
    trained_model(&path);
    let s = server(
        "value-model-served",
        "{ strategy: max_cpc, max_cpc: 1.20 }",
        Some(path.clone()),
    );
    let v = verdict(&explain(&s, &tents(0.1)), "tents");
    let p = v["bidding"]["p_click"].as_f64().unwrap();
    // Far above the 0.001 prior: the line item's own rate, about 2%.
    assert!(p > 0.005 && p < 0.05, "{v}");
    let price = v["price"].as_f64().unwrap();
    assert!((price - 1.2 * p * 1000.0).abs() < 0.01, "{v}");

    // A corrupt file on reload: the model serving stays, no crash.
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    assert!(!s.app.load_model());
    let v = verdict(&explain(&s, &tents(0.1)), "tents");
    assert_eq!(v["bidding"]["p_click"].as_f64().unwrap(), p, "{v}");

    // Started with a corrupt or missing file: the priors.
    for bad in [path.clone(), dir.join("missing.bin")] {
        let s = server(
            "value-model-bad",
            "{ strategy: max_cpc, max_cpc: 1.20 }",
            Some(bad),
        );
        let v = verdict(&explain(&s, &tents(0.1)), "tents");
        assert_eq!(v["price"], 1.2, "{v}");
    }
}

#[test]
fn a_value_under_the_floor_does_not_stop_a_fixed_cpm_after_it() {
    // Sorted by the most each may bid, the max_cpc line item (ceiling
    // 1,200 CPM) comes first; its value on the priors (1.20) is under the
    // 2.00 floor, and the fixed 4.00 line item after it still bids.
    let items = "      - id: by-value\n        media: display\n        \
                 bidding: { strategy: max_cpc, max_cpc: 1.20 }\n        \
                 budget: { daily: 100.00 }\n        creatives: [b300]\n\
                 \x20     - id: fixed\n        media: display\n        cpm: 4.00\n        \
                 budget: { daily: 100.00 }\n        creatives: [b300]\n";
    let dir = common::tempdir("value-then-fixed");
    std::fs::write(
        dir.join("shop.yaml"),
        common::shop_yaml("", "1000.00", items),
    )
    .unwrap();
    let s = Server::start(&dir, None);
    let req = tents(2.0);
    let e = explain(&s, &req);
    assert_eq!(verdict(&e, "by-value")["reason"], "floor", "{e}");
    assert_eq!(verdict(&e, "fixed")["price"], 4.0, "{e}");
    let bid = common::only_bid(&s, &req);
    assert_eq!(bid["price"], 4.0, "{bid}");
}

/// The features a bid is priced on, and which its tracking URLs carry for
/// training, are the named fields of the request and the bid: a model
/// trained elsewhere on these names scores what the bidder sees.
#[test]
fn a_bids_features_are_its_named_fields() {
    use predict::field::*;
    // A model sums its weights over the ids, in whatever order: the ids
    // as a set, and the seed's tag.
    let ids = |f: &predict::Features| {
        let mut ids = f.ids().to_vec();
        ids.sort_unstable();
        (ids, f.to_compact().as_str()[..4].to_owned())
    };
    let sent = |s: &Server, r: &serde_json::Value| {
        let bid = common::only_bid(s, r);
        let (_, pixel) = common::banner_urls(bid["adm"].as_str().unwrap());
        let f = common::param(&pixel, "f").expect("the impression URL carries f");
        ids(&predict::Features::from_compact(f).unwrap())
    };
    let named = |pairs: &[(&str, &str)]| {
        let mut all = vec![(CREATIVE, "b300"), (SIZE, "300x250"), (DEVICE, "2")];
        all.extend_from_slice(pairs);
        // The tests' clock reads 12:00 UTC.
        all.extend([(COUNTRY, "USA"), (HOUR, "12"), (EXCHANGE, "default")]);
        ids(&predict::FeatureHasher::new(predict::DEFAULT_SEED)
            .features(&all, predict::DEFAULT_CROSSES)
            .unwrap())
    };
    let s = server(
        "value-features",
        "{ strategy: max_cpc, max_cpc: 1.20 }",
        None,
    );
    let mut r = tents(0.1);
    r["device"]["os"] = json!("ios");
    let keyword = [(LINE_ITEM, "tents"), (OS, "ios"), (KEYWORD, "broad:tent")];
    assert_eq!(
        sent(&s, &r),
        named(&[&keyword[..], &[(SITE, "news.example")]].concat())
    );
    // A country sent in lower case is the model's `USA`, as it is
    // targeting's.
    let mut lower = r.clone();
    lower["device"]["geo"]["country"] = json!("usa");
    assert_eq!(
        sent(&s, &lower),
        named(&[&keyword[..], &[(SITE, "news.example")]].concat())
    );
    // The same in an app.
    let site = r.as_object_mut().unwrap().remove("site").unwrap();
    r["app"] = json!({ "id": "a1", "bundle": "com.example.trail", "keywords": "tent", "publisher": site["publisher"] });
    assert_eq!(
        sent(&s, &r),
        named(&[&keyword[..], &[(APP, "com.example.trail")]].concat())
    );
    // A line item bidding for an audience: its URLs leave the kind out
    // (the same id on every bid of a kind told a page which bids were for
    // a retargeting list); the tracked event's features have it again,
    // from the audience token, for training.
    let dir = common::tempdir("value-features-audience");
    std::fs::write(dir.join("shop.yaml"), common::AUDIENCE_SHOP).unwrap();
    let state = common::tempdir("value-features-audience-state");
    let s = Server::start_in(&dir, &state, 1_000_000, common::ts("2026-11-24T12:00:00Z"));
    let mut about_tent = banner_request();
    about_tent["site"]["content"] = json!({ "id": "tent-1" });
    let pages = [(LINE_ITEM, "pages"), (SITE, "news.example")];
    assert_eq!(sent(&s, &about_tent), named(&pages));
    let bid = common::only_bid(&s, &about_tent);
    let (_, pixel) = common::banner_urls(bid["adm"].as_str().unwrap());
    assert_eq!(s.notice(bid["nurl"].as_str().unwrap(), "1.00").status, 200);
    assert_eq!(common::get(s.bid, common::path_of(&pixel)).status, 200);
    s.flush_events();
    let day = std::fs::read_to_string(state.join("events/2026-11-24.events")).unwrap();
    let impression = day.lines().find(|l| l.starts_with("i\t")).unwrap();
    let fields: Vec<&str> = impression.split('\t').collect();
    let journaled = predict::Features::from_compact(fields[fields.len() - 2]).unwrap();
    assert_eq!(
        ids(&journaled),
        named(&[&pages[..], &[(AUDIENCE_KIND, "products")]].concat()),
        "{impression}"
    );
}

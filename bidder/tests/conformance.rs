//! Every vendored public OpenRTB request (testdata/openrtb, see its NOTICE)
//! sent to the running bidder: never a 5xx, never a panic, and every 200 is
//! a valid BidResponse whose bids point at imps of the request, priced in
//! the currency the request asked for.

mod common;

use bidder::Settings;
use common::{post, repo, Server};
use serde_json::Value;

#[test]
fn every_public_request_gets_a_sane_answer_on_the_example_config() {
    let seen = check_corpus(&Server::example());
    // The example config has no currency rates: only USD is bought.
    assert_eq!(seen.foreign_bids, 0);
}

/// An advertiser that buys any banner size, video, audio and native slot
/// anywhere, with rates for a few currencies, so that the bid path (not
/// only the no-bid one) runs on the corpus; every VAST it answers with is
/// validated against its XSD, every native answer read as a Native
/// response. Its public URL is https, as a production bidder's is, so that
/// VAST and native may serve on secure slots.
#[test]
fn every_public_request_gets_a_sane_answer_from_an_open_buyer() {
    let s = open_buyer();
    let seen = check_corpus(&s);
    assert!(seen.bids >= 40, "only {} bids", seen.bids);
    assert!(seen.av >= 15, "only {} video/audio bids", seen.av);
    // Every native request whose assets a product ad can fill gets one
    // (the rest are placeholders, have no assets, or require ratings and
    // the like).
    assert!(seen.native_requests >= 13, "{seen:?}");
    assert!(
        seen.native_bids >= 7,
        "only {} native bids",
        seen.native_bids
    );
    assert!(seen.foreign_requests >= 7, "{seen:?}");
    assert!(
        seen.foreign_bids >= 4,
        "only {} answers in a currency other than USD",
        seen.foreign_bids
    );
}

/// An exchange that says it speaks 2.5 (`x-openrtb-version`) gets answers
/// its version's response schema accepts (checked by an independent
/// validator, Python's `jsonschema`, on the schema the OpenRTB validator
/// project published: testdata/openrtb/schema, see the NOTICE): no `mtype`,
/// `dur` or `langb`, nor a VAST protocol code 2.5 does not list. The same
/// requests answered in 2.6 carry them, and that schema refuses those.
#[test]
fn answers_to_a_2_5_exchange_are_valid_2_5_responses() {
    let s = open_buyer();
    let dir = common::tempdir("conformance-2-5");
    let answers = |version: &str| -> Vec<std::path::PathBuf> {
        let mut saved = Vec::new();
        let mut files: Vec<_> = std::fs::read_dir(repo().join("testdata/openrtb/requests"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files {
            let r = post(
                s.bid,
                "/openrtb2/bid",
                &[("x-openrtb-version", version)],
                &std::fs::read(&f).unwrap(),
            );
            if r.status == 200 {
                assert_eq!(r.header("x-openrtb-version"), Some(version));
                let name = f.file_name().unwrap().to_string_lossy().into_owned();
                let path = dir.join(format!("{version}-{name}"));
                std::fs::write(&path, &r.body).unwrap();
                saved.push(path);
            }
        }
        saved
    };
    let v25 = answers("2.5");
    let v26 = answers("2.6");
    assert!(v25.len() >= 40, "only {} answers", v25.len());
    assert_eq!(v25.len(), v26.len());
    let verdicts = check_response_schema(&v25);
    let invalid: Vec<_> = verdicts.iter().filter(|v| !v.ends_with(": ok")).collect();
    assert!(invalid.is_empty(), "{invalid:#?}");
    // The check bites: every 2.6 answer carries `mtype`.
    let refused = check_response_schema(&v26)
        .iter()
        .filter(|v| v.contains("'mtype' was unexpected") || v.contains("Additional properties"))
        .count();
    assert_eq!(refused, v26.len());
}

/// `response_schema_check.py` with the OpenRTB 2.5 response schema on
/// `files`: a line of verdict each.
fn check_response_schema(files: &[std::path::PathBuf]) -> Vec<String> {
    let script = repo().join("bidder/tests/response_schema_check.py");
    let schema = repo().join("testdata/openrtb/schema/openrtb-schema_bid-response_v2-5.json");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(&schema)
        .args(files)
        .output()
        .expect("python3 (scripts/test.sh installs it with python3-jsonschema)");
    assert!(
        out.status.success(),
        "{}: {} (the check needs python3-jsonschema; scripts/test.sh installs it)",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), files.len());
    lines
}

/// The buyer of every slot (testdata/config/open) with an https public
/// URL, as a production bidder has.
fn open_buyer() -> Server {
    Server::start_with(
        &repo().join("testdata/config/open"),
        None,
        Settings {
            public_url: "https://bidder.test".into(),
            ..Settings::default()
        },
    )
}

/// What the corpus run saw.
#[derive(Debug, Default)]
struct Seen {
    /// Answers with a bid.
    bids: usize,
    /// Video and audio bids.
    av: usize,
    /// Requests with a native imp, and native bids.
    native_requests: usize,
    native_bids: usize,
    /// Requests whose `cur` does not take USD or with a floor in another
    /// currency, and answers priced in another currency than USD.
    foreign_requests: usize,
    foreign_bids: usize,
}

/// The currency an answer to `req` must be in, given the currencies with a
/// rate: USD when `cur` is absent or takes USD, else the first listed with a
/// rate (`None`: no answer can be priced).
fn expected_currency(req: &Value, rates: Option<&config::CurrencyRates>) -> Option<String> {
    let cur: Vec<&str> = req["cur"]
        .as_array()
        .map(|c| c.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if cur.is_empty() || cur.iter().any(|c| c.eq_ignore_ascii_case("USD")) {
        return Some("USD".into());
    }
    cur.iter()
        .find(|c| rates.is_some_and(|r| r.rate(c).is_some()))
        .map(|c| c.to_ascii_uppercase())
}

fn check_corpus(s: &Server) -> Seen {
    let snap = s.app.snapshot().expect("config loaded");
    let rates = snap.config.currency_rates.as_ref();
    let dir = repo().join("testdata/openrtb/requests");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("vendored requests")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 80, "only {} requests vendored", files.len());
    let mut seen = Seen::default();
    let mut statuses = std::collections::BTreeMap::new();
    let mut media: std::collections::BTreeMap<i32, usize> = std::collections::BTreeMap::new();
    for f in &files {
        let body = std::fs::read(f).unwrap();
        let r = post(
            s.bid,
            "/openrtb2/bid",
            &[("x-openrtb-version", "2.6")],
            &body,
        );
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(r.status < 500, "{name}: {} {}", r.status, r.text());
        assert!(
            matches!(r.status, 200 | 204 | 400),
            "{name}: unexpected {}",
            r.status
        );
        *statuses.entry(r.status).or_insert(0) += 1;
        let req: Value = serde_json::from_slice(&body).unwrap();
        let imps = req["imp"].as_array().unwrap();
        let has_native = imps.iter().any(|i| !i["native"].is_null());
        seen.native_requests += usize::from(has_native);
        let foreign_floor = imps
            .iter()
            .filter_map(|i| i["bidfloorcur"].as_str())
            .any(|c| !c.is_empty() && !c.eq_ignore_ascii_case("USD"));
        let want_cur = expected_currency(&req, rates);
        let foreign = foreign_floor || want_cur.as_deref() != Some("USD");
        seen.foreign_requests += usize::from(foreign);
        if want_cur.is_none() {
            assert_eq!(r.status, 204, "{name}: no currency we can price in");
        }
        if r.status == 200 {
            let resp: ortb::BidResponse = serde_json::from_slice(&r.body)
                .unwrap_or_else(|e| panic!("{name}: not a BidResponse: {e}"));
            assert_eq!(resp.id, req["id"].as_str().unwrap(), "{name}");
            let cur = resp.cur.as_deref().unwrap_or("USD");
            assert_eq!(Some(cur), want_cur.as_deref(), "{name}: answer's cur");
            let rate = rates.map_or(config::Rate::ONE, |r| r.rate(cur).expect("a rate"));
            seen.foreign_bids += usize::from(cur != "USD");
            let mut natives = 0;
            for bid in resp.seatbid.iter().flat_map(|s| &s.bid) {
                let imp = imps
                    .iter()
                    .find(|i| i["id"] == bid.impid.as_str())
                    .unwrap_or_else(|| panic!("{name}: {}", bid.impid));
                assert!(bid.price_micros > 0, "{name}");
                // The line item's USD CPM, converted down into `cur`.
                let nurl = bid.nurl.as_deref().expect("nurl");
                let li = nurl
                    .split(['?', '&'])
                    .find_map(|p| p.strip_prefix("li="))
                    .expect("li in nurl");
                let item = snap.items.iter().find(|i| i.id == li).expect("line item");
                assert_eq!(
                    bid.price_micros,
                    rate.from_usd(item.cpm).as_i64(),
                    "{name}: price of {li} in {cur}"
                );
                assert!(nurl.contains(&format!("&cur={cur}&")), "{name}: {nurl}");
                match bid.mtype {
                    Some(1) => {
                        assert!(!imp["banner"].is_null(), "{name}: banner bid");
                        *media.entry(1).or_insert(0) += 1;
                    }
                    Some(2 | 3) => {
                        let adm = bid.adm.as_deref().unwrap_or_default();
                        common::assert_valid_vast(adm);
                        assert!(bid.dur.is_some_and(|d| d > 0), "{name}: dur");
                        assert!(bid.protocol.is_some(), "{name}: protocol");
                        *media.entry(bid.mtype.unwrap_or(0)).or_insert(0) += 1;
                    }
                    Some(4) => {
                        assert!(!imp["native"].is_null(), "{name}: native bid");
                        let adm = bid.adm.as_deref().expect("native adm");
                        let v: Value = serde_json::from_str(adm)
                            .unwrap_or_else(|e| panic!("{name}: native adm {e}: {adm}"));
                        // 1.0 answers keep the `native` wrapper.
                        let v = if v["native"].is_object() {
                            &v["native"]
                        } else {
                            &v
                        };
                        assert!(
                            v["assets"].as_array().is_some_and(|a| !a.is_empty()),
                            "{name}: {adm}"
                        );
                        assert!(v["link"]["url"].is_string(), "{name}: {adm}");
                        natives += 1;
                        *media.entry(4).or_insert(0) += 1;
                    }
                    other => panic!("{name}: mtype {other:?}"),
                }
            }
            seen.native_bids += natives;
            if natives > 0 || cur != "USD" {
                eprintln!("{name}: {natives} native bid(s), cur {cur}");
            }
        }
        if r.status == 400 {
            // The corpus holds only requests with the required fields.
            panic!("{name}: refused as malformed: {}", r.text());
        }
    }
    // The server is still alive and well after all of it.
    assert_eq!(common::get(s.admin, "/healthz").status, 200);
    seen.bids = statuses.get(&200).copied().unwrap_or(0);
    seen.av = media.get(&2).copied().unwrap_or(0) + media.get(&3).copied().unwrap_or(0);
    eprintln!("statuses: {statuses:?}, bids by mtype: {media:?}, {seen:?}");
    seen
}

/// Bad input never crashes the bidder: every vendored request cut short at
/// several points, and with bytes replaced by characters that break JSON or
/// change types, gets a 400 (or an answer), never a 5xx.
#[test]
fn mangled_requests_get_400_never_a_5xx() {
    let s = Server::start(&repo().join("testdata/config/open"), None);
    let dir = repo().join("testdata/openrtb/requests");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut sent = 0;
    for f in &files {
        let body = std::fs::read(f).unwrap();
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let mut variants: Vec<Vec<u8>> = [7, 3, 2]
            .iter()
            .map(|d| body[..body.len() * 2 / d].to_vec())
            .collect();
        for (i, junk) in [b'"', b'{', b']', b'x', 0xff, b'-', b'9']
            .iter()
            .enumerate()
        {
            let mut v = body.clone();
            let at = (body.len() / 8) * (i + 1) % body.len().max(1);
            v[at] = *junk;
            variants.push(v);
        }
        // Numbers where strings belong and the other way round.
        variants.push(
            String::from_utf8_lossy(&body)
                .replace("\"id\":", "\"id\":123,\"x\":")
                .into_bytes(),
        );
        variants.push(
            String::from_utf8_lossy(&body)
                .replace("\"w\":", "\"w\":\"wide\",\"ww\":")
                .into_bytes(),
        );
        for v in variants {
            let r = post(s.bid, "/openrtb2/bid", &[], &v);
            assert!(
                matches!(r.status, 200 | 204 | 400),
                "{name}: {} {}",
                r.status,
                r.text()
            );
            sent += 1;
        }
    }
    assert!(sent > 800);
    assert_eq!(common::get(s.admin, "/healthz").status, 200);
}

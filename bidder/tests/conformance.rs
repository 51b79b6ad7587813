//! Every vendored public OpenRTB request (testdata/openrtb, see its NOTICE)
//! sent to the running bidder: never a 5xx, never a panic, and every 200 is
//! a valid BidResponse whose bids point at imps of the request.

mod common;

use common::{post, repo, Server};
use serde_json::Value;

#[test]
fn every_public_request_gets_a_sane_answer_on_the_example_config() {
    check_corpus(&Server::example());
}

/// An advertiser that buys any banner size, video and audio anywhere, so that
/// the bid path (not only the no-bid one) runs on the corpus, and every VAST
/// it answers with is validated against its XSD.
#[test]
fn every_public_request_gets_a_sane_answer_from_an_open_buyer() {
    let (bids, av) = check_corpus(&Server::start(&repo().join("testdata/config/open"), None));
    assert!(bids >= 40, "only {bids} bids");
    assert!(av >= 15, "only {av} video/audio bids");
}

/// Returns (answers with a bid, video and audio bids).
fn check_corpus(s: &Server) -> (usize, usize) {
    let dir = repo().join("testdata/openrtb/requests");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("vendored requests")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 80, "only {} requests vendored", files.len());
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
        if r.status == 200 {
            let req: Value = serde_json::from_slice(&body).unwrap();
            let resp: ortb::BidResponse = serde_json::from_slice(&r.body)
                .unwrap_or_else(|e| panic!("{name}: not a BidResponse: {e}"));
            assert_eq!(resp.id, req["id"].as_str().unwrap(), "{name}");
            let imp_ids: Vec<&str> = req["imp"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap())
                .collect();
            for bid in resp.seatbid.iter().flat_map(|s| &s.bid) {
                assert!(
                    imp_ids.contains(&bid.impid.as_str()),
                    "{name}: {}",
                    bid.impid
                );
                assert!(bid.price_micros > 0, "{name}");
                match bid.mtype {
                    Some(1) => {}
                    Some(2 | 3) => {
                        let adm = bid.adm.as_deref().unwrap_or_default();
                        common::assert_valid_vast(adm);
                        assert!(bid.dur.is_some_and(|d| d > 0), "{name}: dur");
                        assert!(bid.protocol.is_some(), "{name}: protocol");
                        *media.entry(bid.mtype.unwrap_or(0)).or_insert(0) += 1;
                    }
                    other => panic!("{name}: mtype {other:?}"),
                }
            }
        }
        if r.status == 400 {
            // The corpus holds only requests with the required fields.
            panic!("{name}: refused as malformed: {}", r.text());
        }
    }
    // The server is still alive and well after all of it.
    assert_eq!(common::get(s.admin, "/healthz").status, 200);
    eprintln!("statuses: {statuses:?}, video/audio bids by mtype: {media:?}");
    (
        statuses.get(&200).copied().unwrap_or(0),
        media.values().sum(),
    )
}

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

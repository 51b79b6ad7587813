//! What the bidder sends back: exact prices, no empty fields, and a shape
//! our own reader (and the vendored public responses) agree on.

use std::fs;

use ortb::{Bid, BidResponse, SeatBid};
use serde_json::value::RawValue;
use serde_json::{json, Value};

const RESPONSES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/openrtb/responses");

fn response(name: &str) -> BidResponse {
    let body = fs::read(format!("{RESPONSES}/{name}")).unwrap();
    serde_json::from_slice(&body).unwrap()
}

fn sample() -> BidResponse {
    BidResponse {
        id: "req-1".into(),
        bidid: Some("resp-1".into()),
        cur: Some("USD".into()),
        seatbid: vec![SeatBid {
            seat: Some("dsp-seat".into()),
            bid: vec![
                Bid {
                    adm: Some("<VAST version=\"4.2\"></VAST>".into()),
                    adomain: vec!["advertiser.example".into()],
                    crid: Some("cr-9".into()),
                    cid: Some("camp-3".into()),
                    nurl: Some("https://win.example/n?p=${AUCTION_PRICE}".into()),
                    mtype: Some(2),
                    dur: Some(15),
                    w: Some(1920),
                    h: Some(1080),
                    attr: vec![16],
                    ext: Some(RawValue::from_string(r#"{"k":"v"}"#.into()).unwrap()),
                    ..Bid::new("b1", "imp-1", 6_000_000)
                },
                Bid::new("b2", "imp-2", 1_800_000),
            ],
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn prices_serialize_exactly() {
    let v: Value = serde_json::to_value(sample()).unwrap();
    let bids = &v["seatbid"][0]["bid"];
    assert_eq!(bids[0]["price"], json!(6.0));
    assert_eq!(bids[1]["price"], json!(1.8));
    let text = serde_json::to_string(&sample()).unwrap();
    assert!(text.contains(r#""price":6.0"#), "{text}");
    assert!(text.contains(r#""price":1.8"#), "{text}");
    for (micros, expected) in [
        (1, "1e-6"),
        (10_000, "0.01"),
        (1_234_567, "1.234567"),
        (25_000_000, "25.0"),
    ] {
        let text = serde_json::to_string(&Bid::new("b", "i", micros)).unwrap();
        assert!(text.contains(&format!(r#""price":{expected}"#)), "{text}");
    }
}

#[test]
fn empty_fields_are_omitted() {
    let text = serde_json::to_string(&Bid::new("b2", "imp-2", 1_800_000)).unwrap();
    assert_eq!(text, r#"{"id":"b2","impid":"imp-2","price":1.8}"#);

    let no_bid = serde_json::to_string(&BidResponse::no_bid("req-1", Some(2))).unwrap();
    assert_eq!(no_bid, r#"{"id":"req-1","nbr":2}"#);
    let bare = serde_json::to_string(&BidResponse::no_bid("req-1", None)).unwrap();
    assert_eq!(bare, r#"{"id":"req-1"}"#);

    let v: Value = serde_json::to_value(sample()).unwrap();
    let obj = v.as_object().unwrap();
    assert!(
        !obj.contains_key("customdata") && !obj.contains_key("nbr") && !obj.contains_key("ext")
    );
    let seat = v["seatbid"][0].as_object().unwrap();
    assert!(!seat.contains_key("group"));
    let bid = v["seatbid"][0]["bid"][0].as_object().unwrap();
    for absent in [
        "burl",
        "lurl",
        "cat",
        "dealid",
        "api",
        "protocol",
        "wratio",
        "exp",
        "slotinpod",
        "bundle",
    ] {
        assert!(!bid.contains_key(absent), "{absent} should be omitted");
    }
    assert_eq!(bid["ext"], json!({"k": "v"}));
}

#[test]
fn round_trips_through_our_reader() {
    let sent = sample();
    let text = serde_json::to_string(&sent).unwrap();
    let back: BidResponse = serde_json::from_str(&text).unwrap();
    assert_eq!(back.id, "req-1");
    assert_eq!(back.bidid.as_deref(), Some("resp-1"));
    let bids = &back.seatbid[0].bid;
    assert_eq!(back.seatbid[0].seat.as_deref(), Some("dsp-seat"));
    assert_eq!(bids[0].price_micros, 6_000_000);
    assert_eq!(bids[1].price_micros, 1_800_000);
    assert_eq!(bids[0].adm, sent.seatbid[0].bid[0].adm);
    assert_eq!(bids[0].nurl, sent.seatbid[0].bid[0].nurl);
    assert_eq!(bids[0].adomain, ["advertiser.example"]);
    assert_eq!(
        (bids[0].mtype, bids[0].dur, bids[0].w, bids[0].h),
        (Some(2), Some(15), Some(1920), Some(1080))
    );
    assert_eq!(bids[0].attr, [16]);
    assert_eq!(bids[0].ext.as_ref().unwrap().get(), r#"{"k":"v"}"#);
    // Serializing what we read gives the same bytes again.
    assert_eq!(serde_json::to_string(&back).unwrap(), text);
}

#[test]
fn public_responses_read_as_expected() {
    let r = response(
        "iab-ortb2x-2.6md__L1998__6-3-3-example-3-direct-deal-ad-served-on-win-notice.json",
    );
    let bid = &r.seatbid[0].bid[0];
    assert!(bid.dealid.is_some());
    assert!(bid.price_micros > 0);

    let r = response("bsm__bres.single.json");
    assert_eq!(r.seatbid[0].bid[0].price_micros, 65_445, "0.065445");

    let r = response("bsm__bres.multi.json");
    let prices: Vec<_> = r
        .seatbid
        .iter()
        .flat_map(|s| &s.bid)
        .map(|b| b.price_micros)
        .collect();
    assert!(
        prices.contains(&49_580) && prices.contains(&1_028_428),
        "{prices:?}"
    );

    let r = response("pbs__adtonos__simple-audio-with-mtype__call0-bidder-response.json");
    assert_eq!(r.seatbid[0].bid[0].mtype, Some(3), "audio markup type");

    let r = response("pbs__alkimi__simple-audio__call0-bidder-response.json");
    assert!(r.seatbid[0].bid[0]
        .adm
        .as_deref()
        .unwrap()
        .contains("audio/mp3"));

    let r = response("iab-ortb2x-impl__L34__7-1-no-bid-signaling.json");
    assert!(r.seatbid.is_empty());
}

#[test]
fn every_public_response_survives_our_writer() {
    // Reading then writing then reading again must not change what a bid says.
    for entry in fs::read_dir(RESPONSES).unwrap() {
        let path = entry.unwrap().path();
        let first: BidResponse = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        let text = serde_json::to_string(&first).unwrap();
        let second: BidResponse = serde_json::from_str(&text).unwrap();
        let prices = |r: &BidResponse| -> Vec<i64> {
            r.seatbid
                .iter()
                .flat_map(|s| &s.bid)
                .map(|b| b.price_micros)
                .collect()
        };
        assert_eq!(prices(&first), prices(&second), "{}", path.display());
        assert_eq!(
            serde_json::to_string(&second).unwrap(),
            text,
            "{}",
            path.display()
        );
    }
}

//! Video and audio bids on the example config: CTV pre-roll with a
//! companion, out-stream, a 30 s music-stream spot with a 640x640
//! companion, and the cases that must not bid. Every VAST a bid carries is
//! checked against the IAB XSD of its version with xmllint.

mod common;

use common::{assert_valid_vast, repo, Server};
use serde_json::{json, Value};

fn request(name: &str) -> Value {
    let path = repo().join("testdata/openrtb/requests").join(name);
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn bids(s: &Server, r: &Value) -> Vec<Value> {
    let reply = s.bid(&r.to_string());
    if reply.status == 204 {
        return vec![];
    }
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["seatbid"][0]["bid"]
        .as_array()
        .unwrap()
        .clone()
}

fn reason(s: &Server, r: &Value, li: &str) -> String {
    let x = common::verdict(&common::explain(s, r), li);
    if x["bids"] == true {
        "bid".into()
    } else {
        x["reason"].as_str().unwrap().to_string()
    }
}

/// Explain's `detail` of a line item stopped at `creative`: what kept its
/// creatives out.
fn creative_detail(s: &Server, r: &Value, li: &str) -> String {
    let x = common::verdict(&common::explain(s, r), li);
    assert_eq!(x["reason"], "creative", "{x}");
    x["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("no detail: {x}"))
        .to_string()
}

#[test]
fn ctv_preroll_with_a_companion() {
    let s = Server::example();
    let r = request("video-ctv-instream-companion.json");
    let b = bids(&s, &r);
    assert_eq!(b.len(), 1, "{b:?}");
    let bid = &b[0];
    assert_eq!(bid["crid"], "tent-video-15s");
    assert_eq!(bid["price"].as_f64(), Some(22.0));
    assert_eq!(bid["mtype"], 2);
    assert_eq!(bid["dur"], 15);
    // protocols [3, 7, 11, 12]: 12 is a 4.1 wrapper; the best InLine is 4.1.
    assert_eq!(bid["protocol"], 11);
    let adm = bid["adm"].as_str().unwrap();
    assert!(
        adm.contains("<VAST") && adm.contains("version=\"4.1\""),
        "{adm}"
    );
    assert!(adm.contains("xmlns=\"http://www.iab.com/VAST\""));
    assert!(adm.contains("00:00:15"));
    assert!(adm.contains("tent-15s-1080.mp4"));
    assert!(adm.contains("CompanionAds"), "the 300x250 companion fits");
    assert!(adm.contains("tent-300x250.jpg"));
    for event in [
        "start",
        "firstQuartile",
        "midpoint",
        "thirdQuartile",
        "complete",
    ] {
        assert!(adm.contains(&format!("ev={event}")), "{event}");
    }
    assert_valid_vast(adm);
}

#[test]
fn outstream_in_article_without_companions() {
    let s = Server::example();
    let mut r = request("video-ctv-instream-companion.json");
    r["imp"][0]["video"] = json!({
        "mimes": ["video/mp4"], "minduration": 5, "maxduration": 20,
        "protocols": [2, 3, 7], "w": 640, "h": 360, "placement": 3, "plcmt": 2
    });
    r["device"]["devicetype"] = json!(2);
    let b = bids(&s, &r);
    assert_eq!(b.len(), 1);
    let adm = b[0]["adm"].as_str().unwrap();
    assert!(!adm.contains("CompanionAds"));
    assert!(adm.contains("version=\"4.0\""));
    // The 854x480 rendition fits a 640x360 player better than 1920x1080.
    assert!(
        adm.find("tent-15s-480.mp4") < adm.find("tent-15s-1080.mp4"),
        "{adm}"
    );
    assert_eq!(
        (b[0]["w"].as_i64(), b[0]["h"].as_i64()),
        (Some(854), Some(480))
    );
    assert_valid_vast(adm);
}

#[test]
fn audio_spot_with_its_640_companion() {
    let s = Server::example();
    let r = request("audio-music-stream-companion.json");
    let b = bids(&s, &r);
    assert_eq!(b.len(), 1, "{b:?}");
    let bid = &b[0];
    assert_eq!(bid["crid"], "tent-audio-30s");
    assert_eq!(bid["mtype"], 3);
    assert_eq!(bid["dur"], 30);
    assert_eq!(bid["price"].as_f64(), Some(12.0));
    let adm = bid["adm"].as_str().unwrap();
    assert!(adm.contains("audio/mpeg"));
    assert!(adm.contains("tent-640.jpg"), "the 640x640 companion");
    assert_valid_vast(adm);
}

/// An audio spot whose companion is required bids only where that
/// companion may be shown: not when the companion slot blocks one of its
/// attributes (where it was bid without it, `required="all"` broken).
#[test]
fn a_required_companion_the_slot_blocks_means_no_bid() {
    let dir = common::tempdir("required-companion");
    for f in std::fs::read_dir(repo().join("examples/config")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), dir.join(f.file_name())).unwrap();
    }
    let acme = dir.join("acme-outdoor.yaml");
    let mut text = std::fs::read_to_string(&acme).unwrap();
    for (after, add) in [
        (
            "    companions: [tent-companion-640x640]\n",
            "    companion_required: true\n",
        ),
        (
            "    image_url: https://cdn.acme-outdoor.example/tent-640.jpg\n",
            "    attributes: [1]\n",
        ),
    ] {
        assert!(text.contains(after), "{after}");
        text = text.replace(after, &format!("{after}{add}"));
    }
    std::fs::write(&acme, text).unwrap();
    let s = Server::start(&dir, Some(&repo().join("examples/data")));
    let r = request("audio-music-stream-companion.json");
    let b = bids(&s, &r);
    assert_eq!(b.len(), 1, "{b:?}");
    let adm = b[0]["adm"].as_str().unwrap();
    assert!(
        adm.contains("tent-640.jpg") && adm.contains("required=\"all\""),
        "{adm}"
    );
    // A player that takes VAST 2.0 alone cannot be told the companion is
    // required (2.0 has no `required`): no bid, the companion is why.
    let mut v2 = r.clone();
    v2["imp"][0]["audio"]["protocols"] = json!([2, 5]);
    assert!(bids(&s, &v2).is_empty());
    assert_eq!(creative_detail(&s, &v2, "tent-audio-music"), "companion");
    v2["imp"][0]["audio"]["protocols"] = json!([2, 3]);
    let b = bids(&s, &v2);
    assert_eq!(b.len(), 1, "3.0 can say it: {b:?}");
    assert!(b[0]["adm"].as_str().unwrap().contains("required=\"all\""));
    let mut r = r;
    for companion in r["imp"][0]["audio"]["companionad"].as_array_mut().unwrap() {
        companion["battr"] = json!([1]);
    }
    assert!(bids(&s, &r).is_empty());
    assert_eq!(
        reason(&s, &r, "tent-audio-music"),
        "attribute",
        "the companion's attribute is why"
    );
}

#[test]
fn no_audio_bid_into_a_shorter_slot_or_the_wrong_mime() {
    let s = Server::example();
    let mut r = request("audio-music-stream-companion.json");
    r["imp"][0]["audio"]["maxduration"] = json!(15);
    assert!(bids(&s, &r).is_empty());
    assert_eq!(creative_detail(&s, &r, "tent-audio-music"), "duration");

    let mut r = request("audio-music-stream-companion.json");
    r["imp"][0]["audio"]["rqddurs"] = json!([15, 30]);
    r["imp"][0]["audio"]["maxduration"] = json!(15);
    assert_eq!(bids(&s, &r).len(), 1, "rqddurs 30 allows the 30 s spot");

    let mut r = request("video-ctv-instream-companion.json");
    r["imp"][0]["video"]["mimes"] = json!(["video/webm"]);
    assert!(bids(&s, &r).is_empty());
    assert_eq!(creative_detail(&s, &r, "tent-ctv-video"), "mime");

    // The furthest any creative got: the type plays, no rendition is
    // within the slot's bitrates.
    let mut r = request("video-ctv-instream-companion.json");
    r["imp"][0]["video"]["maxbitrate"] = json!(1);
    assert!(bids(&s, &r).is_empty());
    assert_eq!(creative_detail(&s, &r, "tent-ctv-video"), "bitrate");
}

#[test]
fn vast_2_only_players_get_vast_2() {
    let s = Server::example();
    let mut r = request("video-ctv-instream-companion.json");
    r["imp"][0]["video"]["protocols"] = json!([2, 5]);
    let b = bids(&s, &r);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0]["protocol"], 2);
    let adm = b[0]["adm"].as_str().unwrap();
    assert!(adm.contains("version=\"2.0\""), "{adm}");
    assert_valid_vast(adm);
    // A player that follows VAST 2.0 and 3.0 Wrappers renders the InLines
    // they lead to: it gets a 3.0 InLine.
    r["imp"][0]["video"]["protocols"] = json!([1, 5, 6]);
    let b = bids(&s, &r);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0]["protocol"], 3);
    assert_valid_vast(b[0]["adm"].as_str().unwrap());
    // VAST 1.0 (InLine or Wrapper) and DAAST players get nothing we write.
    r["imp"][0]["video"]["protocols"] = json!([1, 4, 9, 10]);
    assert!(bids(&s, &r).is_empty());
    assert_eq!(creative_detail(&s, &r, "tent-ctv-video"), "protocol");
    // A list of what cannot be read names no version we write either: it
    // was read as no list, and bid in the default version (video probe).
    for unreadable in [json!(["x"]), json!([7.5]), json!([null]), json!({"a": 1})] {
        r["imp"][0]["video"]["protocols"] = unreadable.clone();
        assert!(bids(&s, &r).is_empty(), "{unreadable}");
        assert_eq!(
            creative_detail(&s, &r, "tent-ctv-video"),
            "protocol",
            "{unreadable}"
        );
    }
    // What can be read of a list still counts.
    r["imp"][0]["video"]["protocols"] = json!(["x", 2]);
    assert_eq!(bids(&s, &r)[0]["protocol"], 2);
}

#[test]
fn one_advertiser_once_per_pod() {
    let s = Server::example();
    let mut r = request("video-ctv-instream-companion.json");
    let imp = r["imp"][0].clone();
    let mut second = imp.clone();
    second["id"] = json!("2");
    second["video"]["slotinpod"] = json!(2);
    r["imp"] = json!([imp, second]);
    assert_eq!(bids(&s, &r).len(), 1, "same podid: one spot of ACME");
    r["imp"][1]["video"]["podid"] = json!("pod-2");
    assert_eq!(bids(&s, &r).len(), 2, "different pods");
}

#[test]
fn placement_targeting() {
    let yaml = std::fs::read_to_string(repo().join("examples/config/acme-outdoor.yaml"))
        .unwrap()
        .replace(
            "          countries: [USA]\n          devices: [ctv, desktop, phone, tablet]",
            "          countries: [USA]\n          devices: [ctv, desktop, phone, tablet]\n          placements: [instream]",
        );
    assert!(yaml.contains("placements: [instream]"));
    let dir = common::tempdir("placements");
    std::fs::write(dir.join("acme.yaml"), yaml).unwrap();
    let s = Server::start(&dir, Some(&repo().join("examples/data")));
    let mut r = request("video-ctv-instream-companion.json");
    assert_eq!(bids(&s, &r).len(), 1, "plcmt 1 is in-stream");
    r["imp"][0]["video"]["plcmt"] = json!(2);
    assert!(bids(&s, &r).is_empty());
    assert_eq!(reason(&s, &r, "tent-ctv-video"), "placement");
    r["imp"][0]["video"]
        .as_object_mut()
        .unwrap()
        .remove("plcmt");
    r["imp"][0]["video"]["placement"] = json!(1);
    assert_eq!(bids(&s, &r).len(), 1, "2.5 placement 1 is in-stream too");
}

/// `companionad[].battr` blocks a companion banner with that attribute:
/// the spot goes without it (it is not required). The video's own `battr`
/// blocks it too: the companion is part of that impression. A bid that
/// carries the companion declares its attributes in `attr` (exchanges
/// probe: they were left out, so an exchange holding `attr` to `battr`
/// could not see them).
#[test]
fn companion_slots_block_companions_by_attribute() {
    let dir = common::tempdir("companion-battr");
    let tube = common::TUBE.replace(
        "    click_url: https://tube.example/companion\n",
        "    click_url: https://tube.example/companion\n    attributes: [1]\n",
    );
    assert_ne!(tube, common::TUBE, "the companion got its attribute");
    std::fs::write(dir.join("tube.yaml"), &tube).unwrap();
    let s = Server::start(&dir, None);
    let mut r = json!({
        "id": "r1",
        "tmax": 500,
        "imp": [{
            "id": "1",
            "video": {
                "mimes": ["video/mp4"], "minduration": 5, "maxduration": 30,
                "w": 640, "h": 360, "plcmt": 1, "linearity": 1,
                "companionad": [{ "id": "cb1", "w": 300, "h": 250 }]
            }
        }],
        "site": { "domain": "news.example", "page": "http://news.example/" },
        "device": { "devicetype": 2, "geo": { "country": "USA" } }
    });
    let b = bids(&s, &r);
    assert_eq!(b.len(), 1);
    let adm = b[0]["adm"].as_str().unwrap();
    assert!(adm.contains("CompanionAds"), "{adm}");
    assert_eq!(
        b[0]["attr"],
        json!([1]),
        "the companion's attribute: {}",
        b[0]
    );
    let unblocked = r.clone();
    r["imp"][0]["video"]["companionad"][0]["battr"] = json!([1]);
    let b = bids(&s, &r);
    assert_eq!(b.len(), 1, "the spot still bids");
    let adm = b[0]["adm"].as_str().unwrap();
    assert!(!adm.contains("CompanionAds"), "{adm}");
    assert_valid_vast(adm);
    assert!(
        b[0].get("attr").is_none(),
        "no companion, no attribute: {}",
        b[0]
    );
    let mut r = unblocked;
    r["imp"][0]["video"]["battr"] = json!([1]);
    let b = bids(&s, &r);
    assert_eq!(b.len(), 1, "the spot still bids");
    let adm = b[0]["adm"].as_str().unwrap();
    assert!(!adm.contains("CompanionAds"), "{adm}");
    assert!(b[0].get("attr").is_none(), "{}", b[0]);
    // An entry nobody can read may be any attribute: it blocks the
    // companion that declares one, not the spot that declares none (video
    // probe: `battr: [14.5]` blocked nothing).
    for unreadable in [json!([1.5]), json!(["x"]), json!([null])] {
        r["imp"][0]["video"]["battr"] = unreadable.clone();
        let b = bids(&s, &r);
        assert_eq!(b.len(), 1, "{unreadable}");
        assert!(
            !b[0]["adm"].as_str().unwrap().contains("CompanionAds"),
            "{unreadable}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// OpenRTB 2.6 floors by duration: a spot clears `mincpmpersec` times its
/// seconds, and the `durfloors` whose range holds its duration (both ends
/// included), in the imp's floor currency. Both were read and not applied:
/// a 15 s spot bid 22 where the floor came to 30 (exchange probe 1).
#[test]
fn spots_clear_the_floors_of_their_duration() {
    let s = Server::example();
    let video = |member: &str, value: Value| {
        let mut r = request("video-ctv-instream-companion.json");
        r["imp"][0]["video"][member] = value;
        r
    };
    // The 15 s spot bids 22.
    assert_eq!(bids(&s, &video("mincpmpersec", json!(1.46))).len(), 1);
    let r = video("mincpmpersec", json!(1.47));
    assert!(bids(&s, &r).is_empty(), "22.05 for 15 s");
    assert_eq!(reason(&s, &r, "tent-ctv-video"), "floor");
    let r = video(
        "durfloors",
        json!([{"mindur": 1, "maxdur": 15, "bidfloor": 25}]),
    );
    assert!(bids(&s, &r).is_empty());
    assert_eq!(reason(&s, &r, "tent-ctv-video"), "floor");
    // Ranges that do not hold 15 s, or with no floor, change nothing.
    let r = video(
        "durfloors",
        json!([{"mindur": 16, "bidfloor": 25}, {"maxdur": 14, "bidfloor": 25}, {"mindur": 15}]),
    );
    assert_eq!(bids(&s, &r).len(), 1);
    // In the imp's floor currency.
    let mut r = video(
        "durfloors",
        json!([{"mindur": 15, "maxdur": 15, "bidfloor": 21}]),
    );
    assert_eq!(bids(&s, &r).len(), 1);
    r["imp"][0]["bidfloorcur"] = json!("GBP");
    r["imp"][0]["bidfloor"] = json!(0);
    assert!(bids(&s, &r).is_empty(), "21 GBP is more than 22 USD");
    // Audio too: the 30 s spot bids 12.
    let mut r = request("audio-music-stream-companion.json");
    r["imp"][0]["audio"]["mincpmpersec"] = json!(0.4);
    assert_eq!(bids(&s, &r).len(), 1);
    r["imp"][0]["audio"]["mincpmpersec"] = json!(0.41);
    assert!(bids(&s, &r).is_empty());
    assert_eq!(reason(&s, &r, "tent-audio-music"), "floor");
}

/// A line item with spots of several durations bids the first that fits
/// and whose duration's floors it can pay: only the first that fitted was
/// priced, and the slot priced out of 15 s spots got no 30 s one either
/// (exchange probe).
#[test]
fn a_spot_priced_out_by_its_duration_gives_way_to_another() {
    let s = Server::start(&repo().join("testdata/config/open"), None);
    let spot = |media: &str, slot: Value| {
        json!({ "id": "r", "at": 2, "imp": [{ "id": "1", media: slot }],
                "device": { "devicetype": 2 } })
    };
    let crid = |r: &Value| bids(&s, r).first().map(|b| b["crid"].clone());
    // open-video (30.00) lists the 15 s spot first.
    let video = |floors: Value| {
        spot(
            "video",
            json!({ "mimes": ["video/mp4"], "protocols": [7], "minduration": 5,
                    "maxduration": 30, "durfloors": floors }),
        )
    };
    assert_eq!(crid(&video(json!([]))), Some(json!("open-video-15s")));
    let r = video(json!([{ "mindur": 10, "maxdur": 20, "bidfloor": 31 }]));
    assert_eq!(crid(&r), Some(json!("open-video-30s")), "30 s has no floor");
    // Both priced out: no bid, for the floor.
    let r = video(json!([{ "maxdur": 20, "bidfloor": 31 }, { "mindur": 21, "bidfloor": 40 }]));
    assert_eq!(crid(&r), None);
    assert_eq!(reason(&s, &r, "open-video"), "floor");
    // By the second too, for audio (open-audio lists the 30 s spot first).
    let audio = |per_sec: f64| {
        spot(
            "audio",
            json!({ "mimes": ["audio/mpeg"], "protocols": [7], "mincpmpersec": per_sec }),
        )
    };
    assert_eq!(crid(&audio(0.5)), Some(json!("open-audio-30s")));
    assert_eq!(
        crid(&audio(1.5)),
        Some(json!("open-audio-15s")),
        "45.00 for 30 s"
    );
    assert_eq!(reason(&s, &audio(2.5), "open-audio"), "floor");
}

/// In a deal, the deal's own floors by duration (OpenRTB 2.6
/// `pmp.deals[].mincpmpersec` and `durfloors`, in the deal's currency)
/// apply, as its floor does, instead of the imp's: they were not read.
#[test]
fn spots_in_a_deal_clear_the_deals_floors_of_their_duration() {
    let dir = common::tempdir("deal-durfloors");
    for entry in std::fs::read_dir(repo().join("examples/config")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap().replace(
            "          devices: [ctv, desktop, phone, tablet]\n        creatives: [tent-video-15s]",
            "          devices: [ctv, desktop, phone, tablet]\n          deals: [CTV-1]\n        creatives: [tent-video-15s]",
        );
        std::fs::write(dir.join(path.file_name().unwrap()), text).unwrap();
    }
    let s = Server::start(&dir, Some(&repo().join("examples/data")));
    let in_deal = |deal: Value| {
        let mut r = request("video-ctv-instream-companion.json");
        r["imp"][0]["pmp"] = json!({ "private_auction": 1, "deals": [deal] });
        r
    };
    // The 15 s spot bids 22 in the deal.
    let plain = in_deal(json!({ "id": "CTV-1", "bidfloor": 10 }));
    assert_eq!(bids(&s, &plain).len(), 1, "the line item bids in its deal");
    let r = in_deal(json!({ "id": "CTV-1", "bidfloor": 10, "mincpmpersec": 1.47 }));
    assert!(bids(&s, &r).is_empty(), "22.05 for 15 s");
    assert_eq!(reason(&s, &r, "tent-ctv-video"), "floor");
    let r = in_deal(json!({ "id": "CTV-1", "durfloors": [{ "maxdur": 15, "bidfloor": 25 }] }));
    assert_eq!(reason(&s, &r, "tent-ctv-video"), "floor");
    let r = in_deal(json!({ "id": "CTV-1", "durfloors": [{ "mindur": 16, "bidfloor": 25 }] }));
    assert_eq!(bids(&s, &r).len(), 1, "a range that does not hold 15 s");
    // In the deal's currency.
    let r = in_deal(json!({ "id": "CTV-1", "bidfloorcur": "GBP", "mincpmpersec": 1.4 }));
    assert_eq!(
        reason(&s, &r, "tent-ctv-video"),
        "floor",
        "21 GBP is more than 22 USD"
    );
    // As the floor goes: the imp's duration floors do not hold in a deal
    // with a floor of its own, and do in one without (which takes the
    // imp's floor too).
    let mut r = in_deal(json!({ "id": "CTV-1", "bidfloor": 10 }));
    r["imp"][0]["video"]["mincpmpersec"] = json!(5);
    assert_eq!(bids(&s, &r).len(), 1);
    let mut r = in_deal(json!({ "id": "CTV-1" }));
    r["imp"][0]["video"]["mincpmpersec"] = json!(5);
    assert_eq!(reason(&s, &r, "tent-ctv-video"), "floor");
    // A fixed-price deal is bid at its price, whatever its duration
    // floors say.
    let r = in_deal(json!({ "id": "CTV-1", "at": 3, "bidfloor": 20, "mincpmpersec": 5 }));
    assert_eq!(bids(&s, &r)[0]["price"], 20.0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A spot longer than the pod's `poddur` does not go in, and a player
/// that takes streaming only (`delivery` without progressive, which is
/// what every rendition is) gets no bid: both were read and not applied
/// (exchange probe 5).
#[test]
fn pods_and_delivery_methods_are_respected() {
    let s = Server::example();
    let video = |member: &str, value: Value| {
        let mut r = request("video-ctv-instream-companion.json");
        r["imp"][0]["video"][member] = value;
        r
    };
    assert_eq!(bids(&s, &video("poddur", json!(15))).len(), 1);
    let r = video("poddur", json!(10));
    assert!(bids(&s, &r).is_empty());
    assert_eq!(creative_detail(&s, &r, "tent-ctv-video"), "duration");
    assert_eq!(bids(&s, &video("delivery", json!([1, 2]))).len(), 1);
    let r = video("delivery", json!([1]));
    assert!(bids(&s, &r).is_empty());
    assert_eq!(creative_detail(&s, &r, "tent-ctv-video"), "delivery");
    let mut r = request("audio-music-stream-companion.json");
    r["imp"][0]["audio"]["poddur"] = json!(20);
    assert!(bids(&s, &r).is_empty(), "a 30 s spot in a 20 s pod");
}

/// A companion slot's `mimes` are read as a banner slot's: a JPEG
/// companion does not go where only PNG is taken (exchange probe 6); the
/// spot still bids, without it.
#[test]
fn companion_slots_take_only_the_image_types_they_list() {
    let s = Server::example();
    let mut r = request("audio-music-stream-companion.json");
    r["imp"][0]["audio"]["companionad"][0]["mimes"] = json!(["image/png"]);
    let b = bids(&s, &r);
    assert_eq!(b.len(), 1);
    let adm = b[0]["adm"].as_str().unwrap();
    assert!(!adm.contains("tent-640.jpg"), "{adm}");
    r["imp"][0]["audio"]["companionad"][0]["mimes"] = json!(["image/jpeg", "image/png"]);
    let adm = bids(&s, &r)[0]["adm"].as_str().unwrap().to_string();
    assert!(adm.contains("tent-640.jpg"), "{adm}");
}

/// With several spots, explain's detail is the furthest any got, in the
/// order a spot's fit is checked (duration, delivery, mime, bitrate,
/// companion), whichever the line item lists first; what the slot itself
/// rules out comes before any spot.
#[test]
fn the_detail_is_the_furthest_any_spot_got() {
    let s = Server::start_with(
        &repo().join("testdata/config/open"),
        None,
        bidder::Settings {
            public_url: "https://bidder.test".into(),
            ..bidder::Settings::default()
        },
    );
    let li = "open-video";
    let mut r = common::video_request();
    assert_eq!(reason(&s, &r, li), "bid");
    // The 15 s spot has no ogg rendition (mime); the 30 s one is too long
    // for 20 s (duration), and is listed second.
    r["imp"][0]["video"]["mimes"] = json!(["video/ogg"]);
    r["imp"][0]["video"]["maxduration"] = json!(20);
    assert!(bids(&s, &r).is_empty());
    assert_eq!(creative_detail(&s, &r, li), "mime");

    let mut r = common::video_request();
    r["imp"][0]["video"]["linearity"] = json!(2);
    assert_eq!(creative_detail(&s, &r, li), "linearity");
    let mut r = common::video_request();
    r["imp"][0]["video"]["protocols"] = json!([9, 10]);
    assert_eq!(creative_detail(&s, &r, li), "protocol");
}

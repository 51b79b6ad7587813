//! Bid shading in first-price auctions: the bid is lowered towards what
//! wins once the exchange's curve is learned, never under the floor or
//! above the value; second-price auctions and `shading: false` line items
//! bid their value. Outcomes come from the bidder's own notices.

mod common;

use common::{banner_request, explain, only_bid, shop_config_dir, verdict, Server, SHOP};
use serde_json::json;
use shading::{CurveKey, SlotKind};

/// A market where anything bid over 1.00 CPM wins: 1,000 outcomes.
fn learn_market(s: &Server) {
    let key = CurveKey::new("default", SlotKind::Banner);
    for i in 0..1_000 {
        let bid = 200_000 + i * 3_000;
        s.app.shader().observe(&key, bid, bid > 1_000_000);
    }
    // At the server's own time: its upkeep refits at that time every
    // round, and a fit dated 0 had those rounds decay what was taught
    // over 56 years, to nothing (a bid after such a round was unshaded).
    s.app.shader().refit(s.app.now().as_millis());
}

fn first_price() -> serde_json::Value {
    let mut r = banner_request();
    r["at"] = json!(1);
    r["site"]["keywords"] = json!("tent");
    r
}

#[test]
fn first_price_bids_are_shaded_once_the_curve_is_known() {
    let dir = shop_config_dir("shading-basic");
    let s = Server::start(&dir, None);
    // Cold: the value (the line item's 4.00 CPM) is bid.
    let v = verdict(&explain(&s, &first_price()), "tents");
    assert_eq!(v["price"], 4.0, "{v}");
    assert_eq!(v["bidding"]["shading"], "not_enough_data", "{v}");
    learn_market(&s);
    // An upkeep round between teaching and bidding changes nothing.
    s.app.shader().refit(s.app.now().as_millis());
    let v = verdict(&explain(&s, &first_price()), "tents");
    assert_eq!(v["bidding"]["shading"], "shaded", "{v}");
    assert_eq!(v["bidding"]["value"], 4.0, "{v}");
    let price = v["price"].as_f64().unwrap();
    assert!(price > 1.0 && price < 1.5, "{v}");
    assert!(v["bidding"]["p_win"].as_f64().unwrap() > 0.5, "{v}");
    // The bid itself carries the shaded price (but for the occasional
    // exploring bid, which goes up to the value).
    let prices: Vec<f64> = (0..20)
        .map(|_| only_bid(&s, &first_price())["price"].as_f64().unwrap())
        .collect();
    assert!(
        prices.iter().filter(|&&p| p < 1.5).count() >= 15,
        "{prices:?}"
    );
    assert!(
        prices.iter().all(|&p| (0.5..=4.0).contains(&p)),
        "{prices:?}"
    );

    // Never under the floor.
    let mut high_floor = first_price();
    high_floor["imp"][0]["bidfloor"] = json!(2.0);
    let v = verdict(&explain(&s, &high_floor), "tents");
    assert!(v["price"].as_f64().unwrap() >= 2.0, "{v}");

    // Second price: not shaded.
    let mut second = first_price();
    second["at"] = json!(2);
    let v = verdict(&explain(&s, &second), "tents");
    assert_eq!(v["price"], 4.0, "{v}");
    assert!(v["bidding"].get("shading").is_none(), "{v}");
}

#[test]
fn a_line_item_may_refuse_shading() {
    let dir = shop_config_dir("shading-off");
    std::fs::write(
        dir.join("shop.yaml"),
        SHOP.replace(
            "        cpm: 4.00\n",
            "        cpm: 4.00\n        shading: false\n",
        ),
    )
    .unwrap();
    let s = Server::start(&dir, None);
    learn_market(&s);
    let v = verdict(&explain(&s, &first_price()), "tents");
    assert_eq!(v["price"], 4.0, "{v}");
    assert!(v["bidding"].get("shading").is_none(), "{v}");
}

#[test]
fn sent_bids_and_charged_wins_teach_the_curve() {
    let dir = shop_config_dir("shading-learn");
    let s = Server::start(&dir, None);
    let key = CurveKey::new("default", SlotKind::Banner);
    let counts = |s: &Server| {
        s.app.expire_reservations();
        s.app
            .shader()
            .curve(&key)
            .map(|c| (c.observations().round(), c.wins().round()))
    };
    // Four bids: one won, one lost by notice, one never answered, one
    // reported lost and then won (and charged). Each counts once sent.
    let bids: Vec<_> = (0..4).map(|_| only_bid(&s, &first_price())).collect();
    assert_eq!(counts(&s), Some((4.0, 0.0)));
    assert_eq!(
        s.notice(bids[0]["nurl"].as_str().unwrap(), "2.00").status,
        200
    );
    assert_eq!(s.notice(bids[1]["lurl"].as_str().unwrap(), "0").status, 200);
    // A second notice of the won bid, and its billing notice, count
    // nothing more: the win is counted when it is charged, once.
    s.notice(bids[0]["nurl"].as_str().unwrap(), "2.00");
    s.notice(bids[0]["burl"].as_str().unwrap(), "2.00");
    assert_eq!(s.notice(bids[3]["lurl"].as_str().unwrap(), "0").status, 200);
    assert_eq!(
        s.notice(bids[3]["nurl"].as_str().unwrap(), "2.00").status,
        200
    );
    assert_eq!(counts(&s), Some((4.0, 2.0)));
    // Past the reservation TTL nothing changes (the unanswered bid was a
    // loss all along) but the decay of a half-life of 30 minutes; a win
    // coming that late is still one.
    s.clock.advance_millis(61_000);
    assert_eq!(
        s.notice(bids[2]["nurl"].as_str().unwrap(), "2.00").status,
        200
    );
    let c = {
        s.app.expire_reservations();
        s.app.shader().curve(&key).unwrap()
    };
    assert!(
        c.observations() > 3.9 && c.observations() < 4.0,
        "{}",
        c.observations()
    );
    assert!(c.wins() > 2.9 && c.wins() < 3.0, "{}", c.wins());

    // Neither a second-price bid nor a test request's is a first-price
    // outcome, won or not.
    let mut second = first_price();
    second["at"] = json!(2);
    let mut test = first_price();
    test["test"] = json!(1);
    for body in [second, test] {
        let bid = only_bid(&s, &body);
        assert_eq!(s.notice(bid["nurl"].as_str().unwrap(), "2.00").status, 200);
        s.app.expire_reservations();
        let c2 = s.app.shader().curve(&key).unwrap();
        assert_eq!(c2.observations(), c.observations(), "{body}");
        assert_eq!(c2.wins(), c.wins(), "{body}");
    }
}

/// A win is counted by the process that charges it, for a bid of any
/// replica, but not for a bid made before that process began: such a bid
/// was counted (as sent) by a process whose counts are gone.
#[test]
fn wins_of_bids_made_before_this_process_are_not_counted() {
    let dir = shop_config_dir("shading-restart");
    let state = common::tempdir("shading-restart-state");
    let key = CurveKey::new("default", SlotKind::Banner);
    let t0 = common::ts("2026-11-24T12:00:00Z");
    let before = Server::start_in(&dir, &state.join("a"), 1000, t0);
    let old = only_bid(&before, &first_price());
    drop(before);
    let s = Server::start_in(
        &dir,
        &state.join("b"),
        1000,
        common::ts("2026-11-24T12:00:01Z"),
    );
    // This process's bid is lost; the earlier process's is won (and
    // charged here), which must not count as this one's win.
    let new = only_bid(&s, &first_price());
    assert_eq!(s.notice(new["lurl"].as_str().unwrap(), "0").status, 200);
    assert_eq!(s.notice(old["nurl"].as_str().unwrap(), "2.00").status, 200);
    s.app.expire_reservations();
    let c = s.app.shader().curve(&key).unwrap();
    assert_eq!((c.observations(), c.wins()), (1.0, 0.0));
    // Its own bid's win counts.
    let won = only_bid(&s, &first_price());
    assert_eq!(s.notice(won["nurl"].as_str().unwrap(), "2.00").status, 200);
    s.app.expire_reservations();
    let c = s.app.shader().curve(&key).unwrap();
    assert_eq!((c.observations(), c.wins()), (2.0, 1.0));
}

/// A video bid's outcome teaches the video curve, not the banner one: the
/// slot kind its id carries is the one it was counted under when sent.
#[test]
fn each_slot_kind_learns_its_own_curve() {
    let dir = common::tempdir("shading-video");
    std::fs::write(dir.join("tube.yaml"), common::TUBE).unwrap();
    let s = Server::start_with(
        &dir,
        None,
        bidder::Settings {
            public_url: "https://bidder.test".into(),
            ..bidder::Settings::default()
        },
    );
    let mut video = common::video_request();
    video["at"] = json!(1);
    let bid = only_bid(&s, &video);
    assert_eq!(bid["mtype"], 2, "{bid}");
    assert_eq!(s.notice(bid["nurl"].as_str().unwrap(), "2.00").status, 200);
    s.app.expire_reservations();
    let c = |slot| {
        s.app
            .shader()
            .curve(&CurveKey::new("default", slot))
            .map(|c| (c.observations(), c.wins()))
    };
    assert_eq!(c(SlotKind::Video), Some((1.0, 1.0)));
    assert_eq!(c(SlotKind::Banner), None);
}

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
    s.app.shader().refit(0);
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
fn notices_and_unanswered_bids_teach_the_curve() {
    let dir = shop_config_dir("shading-learn");
    let s = Server::start(&dir, None);
    let key = CurveKey::new("default", SlotKind::Banner);
    // Four bids: one won, one lost by notice, one never answered, one
    // reported lost and then won (and charged).
    let bids: Vec<_> = (0..4).map(|_| only_bid(&s, &first_price())).collect();
    assert_eq!(
        s.notice(bids[0]["nurl"].as_str().unwrap(), "2.00").status,
        200
    );
    assert_eq!(s.notice(bids[1]["lurl"].as_str().unwrap(), "0").status, 200);
    // A second notice of the won bid counts nothing more.
    s.notice(bids[0]["nurl"].as_str().unwrap(), "2.00");
    assert_eq!(s.notice(bids[3]["lurl"].as_str().unwrap(), "0").status, 200);
    assert_eq!(
        s.notice(bids[3]["nurl"].as_str().unwrap(), "2.00").status,
        200
    );
    s.app.expire_reservations();
    // The loss waits for its reservation's end: a win notice may still
    // come (and would be charged), which must count as a win.
    let before = s.app.shader().curve(&key).map(|c| c.observations());
    assert_eq!(before.map(|n| n.round()), Some(2.0), "two wins so far");
    // Past the reservation TTL (a minute) the third counts as lost; the
    // first two have decayed a little (a half-life of 30 minutes).
    s.clock.advance_millis(61_000);
    s.app.expire_reservations();
    let c = s.app.shader().curve(&key).unwrap();
    assert!(
        c.observations() > 3.9 && c.observations() < 4.0,
        "{}",
        c.observations()
    );
    assert!(c.wins() > 1.9 && c.wins() < 2.0, "{}", c.wins());
}

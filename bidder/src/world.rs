//! A synthetic world with known ground truth, for `bidder simulate --world
//! synthetic`: the bidder's click model, its value-based bidding and its
//! bid shading are measured against probabilities and prices that are
//! known, not estimated.
//!
//! # The truth
//!
//! - **Sites** ([`SITES`]): ten equally common domains whose base click
//!   rate (on a desktop at midday) runs from 0.5% to 10%, about log-spaced,
//!   and whose conversion rate per click runs from 2% to 10%. The rates are
//!   ten times a display campaign's so that a test learns from a few
//!   thousand impressions what real traffic teaches in a million.
//! - **Devices** ([`DEVICES`]) and **hours** ([`hour_effect`]) move the
//!   click rate's logit: phones +0.3, tablets +0.1, desktops 0; 18:00–22:59
//!   UTC +0.3, 00:00–05:59 −0.4, other hours 0.
//! - P(click) = logistic(logit(site rate) + device effect + hour effect);
//!   P(conversion) = P(click) × the site's conversion rate (a conversion
//!   needs a click). Nothing else (exchange, user, line item) matters.
//! - **Exchanges** ([`MARKETS`]): each runs first-price auctions (`at: 1`)
//!   with a floor, and its highest competing bid is log-normal:
//!   `median × exp(σ·z)`, z standard normal, drawn for every request
//!   whether we bid or not. `world-a` (60% of the traffic): median 2.00
//!   CPM, σ 0.5, floor 0.50; `world-b` (40%): median 1.20, σ 0.7, floor
//!   0.30. The competition does not depend on the site: other buyers are
//!   taken as not knowing the click rates, which is what lets a model pay.
//! - **Outcomes**: we win iff our bid ≥ the competing bid (our bid is never
//!   under the floor) and pay our bid; the exchange then sends the win
//!   notice, the page loads the impression URL, and the click URL is
//!   called with the true click probability. A lost bid's loss notice is
//!   sent for [`LOSS_NOTICE_SHARE`] of losses; the rest go unreported and
//!   the bidder's sweep counts them as lost.
//!
//! # Seeding
//!
//! Everything drawn here (the request's exchange, site, device and user,
//! the competing bid, and uniform draws deciding click, conversion and
//! whether a loss is reported) comes from one `SmallRng` seeded with the
//! run's seed, in a fixed order per request and whatever the bidder does.
//! Two runs with the same seed and rate therefore meet the same requests,
//! competition and user behaviour, so strategies are compared on common
//! random numbers. The bidder's own exploration draws (a few shaded bids)
//! and its tie-breaks are not seeded: runs differ by a little.

use config::Micros;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// A publisher site of the world.
#[derive(Debug, Clone, Copy)]
pub struct Site {
    pub domain: &'static str,
    /// P(click) on a desktop at a neutral hour.
    pub click_rate: f64,
    /// P(conversion | click).
    pub conversion_rate: f64,
    /// Share of the traffic, relative to the other sites.
    pub weight: f64,
}

const fn site(domain: &'static str, click_rate: f64, conversion_rate: f64) -> Site {
    Site {
        domain,
        click_rate,
        conversion_rate,
        weight: 1.0,
    }
}

/// The sites, equally common. Low-click sites are not low-conversion ones:
/// the orders differ so that a click model and a conversion model disagree.
pub const SITES: [Site; 10] = [
    site("news.world.example", 0.005, 0.05),
    site("weather.world.example", 0.0075, 0.02),
    site("recipes.world.example", 0.011, 0.08),
    site("sports.world.example", 0.016, 0.03),
    site("travel.world.example", 0.024, 0.10),
    site("games.world.example", 0.035, 0.02),
    site("forum.world.example", 0.048, 0.04),
    site("deals.world.example", 0.06, 0.09),
    site("reviews.world.example", 0.078, 0.06),
    site("coupons.world.example", 0.10, 0.07),
];

/// A device of the world, as the request's `devicetype` and `os`.
#[derive(Debug, Clone, Copy)]
pub struct Device {
    /// OpenRTB device type: 2 personal computer, 4 phone, 5 tablet.
    pub devicetype: i32,
    pub os: &'static str,
    /// Added to the click logit.
    pub effect: f64,
    pub weight: f64,
}

pub const DEVICES: [Device; 4] = [
    Device {
        devicetype: 4,
        os: "Android",
        effect: 0.3,
        weight: 0.35,
    },
    Device {
        devicetype: 4,
        os: "iOS",
        effect: 0.3,
        weight: 0.2,
    },
    Device {
        devicetype: 5,
        os: "iOS",
        effect: 0.1,
        weight: 0.1,
    },
    Device {
        devicetype: 2,
        os: "Windows",
        effect: 0.0,
        weight: 0.35,
    },
];

/// Added to the click logit at `hour` (UTC, 0..24).
pub fn hour_effect(hour: u32) -> f64 {
    match hour {
        0..=5 => -0.4,
        18..=22 => 0.3,
        _ => 0.0,
    }
}

/// An exchange of the world: its share of the traffic, its floor and its
/// highest competing bid.
#[derive(Debug, Clone, Copy)]
pub struct Market {
    /// Its exchange id: requests go to its profile, `/openrtb2/bid/{id}`.
    pub exchange: &'static str,
    pub weight: f64,
    pub floor_cpm: f64,
    /// Median of the log-normal highest competing bid, CPM in USD.
    pub median_cpm: f64,
    /// σ of its logarithm.
    pub sigma: f64,
}

pub const MARKETS: [Market; 2] = [
    Market {
        exchange: "world-a",
        weight: 0.6,
        floor_cpm: 0.50,
        median_cpm: 2.00,
        sigma: 0.5,
    },
    Market {
        exchange: "world-b",
        weight: 0.4,
        floor_cpm: 0.30,
        median_cpm: 1.20,
        sigma: 0.7,
    },
];

/// Share of lost bids whose loss notice the exchange sends.
pub const LOSS_NOTICE_SHARE: f64 = 0.8;

/// Distinct users of the world (for frequency caps).
pub const USERS: u64 = 50_000;

/// The true P(click) of an impression on `site` and `device` at `hour`.
pub fn click_probability(site: &Site, device: &Device, hour: u32) -> f64 {
    let p = site.click_rate;
    let logit = (p / (1.0 - p)).ln() + device.effect + hour_effect(hour);
    1.0 / (1.0 + (-logit).exp())
}

/// The true P(conversion) of an impression: a click, then a conversion.
pub fn conversion_probability(site: &Site, device: &Device, hour: u32) -> f64 {
    click_probability(site, device, hour) * site.conversion_rate
}

/// One request of the world and everything the world will decide about it.
#[derive(Debug, Clone)]
pub struct Request {
    pub market: usize,
    pub site: usize,
    pub device: usize,
    pub hour: u32,
    /// The BidRequest JSON.
    pub body: String,
    /// The highest competing bid.
    pub competing: Micros,
    /// Uniform draws in [0, 1): a shown ad is clicked iff `click` <
    /// P(click), and converts iff it was clicked and `conversion` < the
    /// site's conversion rate; a lost bid is reported iff `loss_report` <
    /// [`LOSS_NOTICE_SHARE`].
    pub click: f64,
    pub conversion: f64,
    pub loss_report: f64,
}

impl Request {
    pub fn exchange(&self) -> &'static str {
        MARKETS[self.market].exchange
    }

    pub fn p_click(&self) -> f64 {
        click_probability(&SITES[self.site], &DEVICES[self.device], self.hour)
    }

    pub fn p_conversion(&self) -> f64 {
        conversion_probability(&SITES[self.site], &DEVICES[self.device], self.hour)
    }
}

/// The world's request stream.
pub struct World {
    rng: SmallRng,
    n: u64,
}

impl World {
    pub fn new(seed: u64) -> World {
        World {
            rng: SmallRng::seed_from_u64(seed),
            n: 0,
        }
    }

    /// The next request, at `hour` (UTC) of the simulated clock.
    pub fn request(&mut self, hour: u32) -> Request {
        // Always the same number of draws in the same order: the stream
        // must not depend on what the bidder answered before.
        let market = pick(&mut self.rng, &MARKETS.map(|m| m.weight));
        let site = pick(&mut self.rng, &SITES.map(|s| s.weight));
        let device = pick(&mut self.rng, &DEVICES.map(|d| d.weight));
        let user = self.rng.random_range(0..USERS);
        let z = standard_normal(&mut self.rng);
        let m = &MARKETS[market];
        let competing = Micros((m.median_cpm * (m.sigma * z).exp() * 1e6).round() as i64);
        let click = self.rng.random::<f64>();
        let conversion = self.rng.random::<f64>();
        let loss_report = self.rng.random::<f64>();
        self.n += 1;
        let s = &SITES[site];
        let d = &DEVICES[device];
        let body = serde_json::json!({
            "id": format!("world-{}", self.n),
            "at": 1,
            "tmax": 1000,
            "cur": ["USD"],
            "imp": [{
                "id": "1",
                "banner": { "format": [{ "w": 300, "h": 250 }], "w": 300, "h": 250 },
                "bidfloor": m.floor_cpm,
                "bidfloorcur": "USD",
                "secure": 1,
            }],
            "site": {
                "id": format!("site-{}", s.domain),
                "domain": s.domain,
                "page": format!("https://{}/", s.domain),
                "publisher": { "id": format!("pub-{}", s.domain) },
            },
            "device": {
                "ua": "Mozilla/5.0 (world)",
                "devicetype": d.devicetype,
                "os": d.os,
                "geo": { "country": "USA", "type": 2 },
            },
            "user": { "buyeruid": format!("world-user-{user}") },
        })
        .to_string();
        Request {
            market,
            site,
            device,
            hour,
            body,
            competing,
            click,
            conversion,
            loss_report,
        }
    }
}

/// An index drawn with the given weights.
fn pick(rng: &mut SmallRng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

/// Box–Muller: `rand` without `rand_distr` has no normal distribution, and
/// one more crate for one formula is not worth it.
fn standard_normal(rng: &mut SmallRng) -> f64 {
    // 1 − u is in (0, 1]: its logarithm is finite.
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// The world's exchanges as profiles, for a config that has none of them:
/// the defaults of an exchange file (charge on the first notice, the
/// bidder's reservation TTL).
pub fn exchanges() -> Vec<config::Exchange> {
    MARKETS
        .iter()
        .map(|m| config::Exchange {
            id: m.exchange.into(),
            name: m.exchange.into(),
            price_encryption: None,
            charge_on: config::ChargeOn::First,
            vast_default_protocol: 3,
            gzip_responses: false,
            openrtb_2_5: false,
            tmax_default_ms: None,
            reservation_ttl_secs: None,
            sync_url: None,
            sync_redirect_hosts: Vec::new(),
            allow_from: Vec::new(),
            seat: None,
            file: format!("(synthetic world)/{}.yaml", m.exchange).into(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_truth_is_what_the_docs_say() {
        let desktop = &DEVICES[3];
        let p = click_probability(&SITES[0], desktop, 12);
        assert!((p - 0.005).abs() < 1e-12, "{p}");
        // Phones in the evening: logit + 0.6.
        let p = click_probability(&SITES[9], &DEVICES[0], 20);
        let logit = (0.10f64 / 0.90).ln() + 0.6;
        assert!((p - 1.0 / (1.0 + (-logit).exp())).abs() < 1e-12);
        let c = conversion_probability(&SITES[4], desktop, 12);
        assert!((c - 0.024 * 0.10).abs() < 1e-12);
    }

    #[test]
    fn the_stream_is_seeded_and_the_competition_log_normal() {
        let mut a = World::new(5);
        let mut b = World::new(5);
        let mut on_a = Vec::new();
        for _ in 0..20_000 {
            let (x, y) = (a.request(3), b.request(3));
            assert_eq!(x.body, y.body);
            assert_eq!(x.competing, y.competing);
            if x.market == 0 {
                on_a.push(x.competing.as_i64());
            }
        }
        on_a.sort_unstable();
        let median = on_a[on_a.len() / 2] as f64 / 1e6;
        assert!((median - 2.0).abs() < 0.05, "{median}");
        // exp(σ) above the median: the 84th percentile.
        let p84 = on_a[on_a.len() * 841 / 1000] as f64 / 1e6;
        assert!((p84 / 2.0 - 0.5f64.exp()).abs() < 0.05, "{p84}");
    }
}

//! A synthetic first-price market with a known highest competing bid
//! (log-normal): the fitted curve against the true CDF, the shaded bid
//! against the true optimum, the spend saved, the loop learning from its
//! own bids, and many threads at once. Run with `--nocapture` to see the
//! tables.

use std::f64::consts::SQRT_2;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use shading::{Curve, CurveKey, Params, Reason, Shader, SlotKind};

const USD: f64 = 1_000_000.0;

/// The highest competing bid is log-normal: ln(price) ~ N(ln median, sigma).
struct Market {
    median: f64,
    sigma: f64,
}

/// The usual market of these tests: median 2.00 CPM, and half of the
/// competition within about a factor 1.5 of it.
const MARKET: Market = Market {
    median: 2.0 * USD,
    sigma: 0.6,
};

impl Market {
    fn cdf(&self, b: f64) -> f64 {
        if b <= 0.0 {
            return 0.0;
        }
        normal_cdf((b / self.median).ln() / self.sigma)
    }

    fn draw(&self, rng: &mut SmallRng) -> f64 {
        self.median * (self.sigma * std_normal(rng)).exp()
    }

    /// The bid maximising (v - b) F(b), by golden section: F is log-concave,
    /// so the surplus has a single peak.
    fn optimum(&self, v: f64) -> f64 {
        let s = |b: f64| (v - b) * self.cdf(b);
        let (mut lo, mut hi) = (0.0, v);
        let g = (5f64.sqrt() - 1.0) / 2.0;
        for _ in 0..200 {
            let a = hi - g * (hi - lo);
            let b = lo + g * (hi - lo);
            if s(a) < s(b) {
                lo = a;
            } else {
                hi = b;
            }
        }
        (lo + hi) / 2.0
    }

    fn surplus(&self, v: f64, b: f64) -> f64 {
        (v - b) * self.cdf(b)
    }
}

fn std_normal(rng: &mut SmallRng) -> f64 {
    // Box-Muller; 1 - u keeps the logarithm finite.
    let u: f64 = 1.0 - rng.random::<f64>();
    let w: f64 = rng.random();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * w).cos()
}

fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / SQRT_2)
}

/// Numerical Recipes' erfc (Chebyshev fit, relative error under 1.2e-7):
/// std has no erf on stable.
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

fn key() -> CurveKey<'static> {
    CurveKey::new("synthetic", SlotKind::Banner)
}

/// Outcomes of `n` bids spread log-uniformly between 0.30 and 15.00.
fn trained(n: usize, seed: u64) -> Shader {
    let shader = Shader::new(Params::default()).unwrap();
    let mut rng = SmallRng::seed_from_u64(seed);
    let (lo, hi) = ((0.3 * USD).ln(), (15.0 * USD).ln());
    for _ in 0..n {
        let bid = (lo + (hi - lo) * rng.random::<f64>()).exp();
        let won = bid > MARKET.draw(&mut rng);
        assert!(shader.observe(&key(), bid as i64, won));
    }
    shader.refit(0);
    shader
}

fn assert_monotone(curve: &Curve) {
    let knots: Vec<_> = curve.knots().collect();
    for w in knots.windows(2) {
        assert!(w[0].0 <= w[1].0 && w[0].1 <= w[1].1, "{w:?}");
    }
}

#[test]
fn fitted_curve_tracks_the_true_cdf() {
    let shader = trained(200_000, 1);
    let curve = shader.curve(&key()).unwrap();
    assert!(curve.is_ready());
    assert_monotone(&curve);
    println!("price   fitted  true    diff");
    let mut worst = 0.0f64;
    for price in [0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 10.0] {
        let fitted = curve.p_win((price * USD) as i64).unwrap();
        let truth = MARKET.cdf(price * USD);
        println!(
            "{price:5.2}   {fitted:.4}  {truth:.4}  {:+.4}",
            fitted - truth
        );
        worst = worst.max((fitted - truth).abs());
    }
    println!("worst |fitted - true| = {worst:.4}");
    assert!(worst < 0.02, "{worst}");
}

#[test]
fn shaded_bid_is_close_to_the_true_optimum_and_saves_spend() {
    let shader = trained(200_000, 2);
    let mut rng = SmallRng::seed_from_u64(3);
    println!("value  optimum  shaded  bid err  surplus ratio  spend saved (same wins)");
    for value in [2.5, 4.0, 6.0, 10.0] {
        let v = value * USD;
        let s = shader.shade(&key(), v as i64, (0.1 * USD) as i64);
        assert_eq!(s.reason, Reason::Shaded, "{s:?}");
        let b = s.bid_micros as f64;
        let best = MARKET.optimum(v);
        let ratio = MARKET.surplus(v, b) / MARKET.surplus(v, best);
        let err = (b - best) / best;

        // Spend for the same number of wins, by simulation: in a first-price
        // auction each win costs the bid, so the shaded bid needs more
        // auctions but fewer dollars.
        let wins = 10_000;
        let spend = |bid: f64, rng: &mut SmallRng| {
            let (mut won, mut spent, mut auctions) = (0, 0.0, 0u64);
            while won < wins {
                auctions += 1;
                if bid > MARKET.draw(rng) {
                    won += 1;
                    spent += bid;
                }
            }
            (spent, auctions)
        };
        let (at_value, auctions_v) = spend(v, &mut rng);
        let (shaded, auctions_s) = spend(b, &mut rng);
        let saved = 1.0 - shaded / at_value;
        println!(
            "{value:5.2}  {:7.3}  {:6.3}  {:+6.1}%  {:13.4}  {:5.1}% ({} vs {} auctions for {wins} wins)",
            best / USD,
            b / USD,
            err * 100.0,
            ratio,
            saved * 100.0,
            auctions_s,
            auctions_v
        );
        assert!(s.bid_micros < v as i64);
        assert!(err.abs() < 0.05, "value {value}: {b} vs {best}");
        assert!(ratio >= 0.98, "value {value}: surplus ratio {ratio}");
        assert!(saved > 0.10, "value {value}: saved {saved}");
        if value >= 4.0 {
            // Well above the median competing bid, most of the value is
            // surplus the shader keeps.
            assert!(saved > 0.30, "value {value}: saved {saved}");
        }
    }
}

/// What a run of the bidding loop achieved, in expectation under the true
/// market (free of auction noise).
#[derive(Default)]
struct Outcome {
    surplus: f64,
    oracle_surplus: f64,
    spend: f64,
    /// The same wins, had each cost the value.
    spend_at_value: f64,
    shaded: u32,
    explored: u32,
    other: u32,
}

impl Outcome {
    fn surplus_ratio(&self) -> f64 {
        self.surplus / self.oracle_surplus
    }

    fn saved(&self) -> f64 {
        1.0 - self.spend / self.spend_at_value
    }
}

/// The bidder's real situation: rounds of 1000 impressions a second, values
/// with a median of 4.00, shade_with and a 5% exploration draw, outcomes fed
/// back, a refit after every round. Measured over `measured` last rounds.
fn bidding_loop(
    label: &str,
    shader: &Shader,
    market: &Market,
    rng: &mut SmallRng,
    start_ms: i64,
    rounds: i64,
    measured: i64,
) -> Outcome {
    let floor = (0.1 * USD) as i64;
    let mut out = Outcome::default();
    for round in 0..rounds {
        for _ in 0..1_000 {
            let v = (4.0 * USD * (0.4 * std_normal(rng)).exp()).round();
            let s = shader.shade_with(&key(), v as i64, floor, rng.random());
            let b = s.bid_micros as f64;
            assert!(b <= v && s.bid_micros >= floor);
            let won = b > market.draw(rng);
            shader.observe(&key(), s.bid_micros, won);
            if round >= rounds - measured {
                match s.reason {
                    Reason::Shaded => out.shaded += 1,
                    Reason::Explore => out.explored += 1,
                    _ => out.other += 1,
                }
                out.surplus += market.surplus(v, b);
                out.oracle_surplus += market.surplus(v, market.optimum(v));
                out.spend += b * market.cdf(b);
                out.spend_at_value += v * market.cdf(b);
            }
        }
        shader.refit(start_ms + round * 1_000);
    }
    println!(
        "{label}: last {measured}k auctions: surplus {:.1}% of the oracle's, spend {:.1}% under bidding \
         the value for the same wins; {} shaded, {} explored, {} other",
        out.surplus_ratio() * 100.0,
        out.saved() * 100.0,
        out.shaded,
        out.explored,
        out.other
    );
    out
}

/// Starts cold and learns only from its own bids.
#[test]
fn learns_from_its_own_bids() {
    let shader = Shader::new(Params::default()).unwrap();
    let mut rng = SmallRng::seed_from_u64(4);
    let out = bidding_loop("cold start", &shader, &MARKET, &mut rng, 0, 300, 100);
    assert_monotone(&shader.curve(&key()).unwrap());
    assert!(out.surplus_ratio() > 0.90);
    assert!(out.saved() > 0.30);
    assert_eq!(out.other, 0);
}

/// The competition raises its bids by half: with a 20 s half-life the curve
/// follows within a minute or two.
#[test]
fn follows_a_market_that_moves() {
    let shader = Shader::new(Params {
        half_life_ms: 20_000,
        ..Params::default()
    })
    .unwrap();
    let mut rng = SmallRng::seed_from_u64(5);
    bidding_loop("before the move", &shader, &MARKET, &mut rng, 0, 200, 100);
    let dearer = Market {
        median: 3.0 * USD,
        ..MARKET
    };
    let first = bidding_loop("just after", &shader, &dearer, &mut rng, 200_000, 5, 5);
    let later = bidding_loop("later", &shader, &dearer, &mut rng, 205_000, 200, 100);
    assert!(first.surplus_ratio() < later.surplus_ratio());
    assert!(later.surplus_ratio() > 0.90, "{}", later.surplus_ratio());
}

#[test]
fn many_threads_observe_shade_and_refit() {
    let shader = Shader::new(Params::default()).unwrap();
    let keys = [
        CurveKey::new("a", SlotKind::Banner),
        CurveKey::new("a", SlotKind::Video),
        CurveKey::new("b", SlotKind::Native),
    ];
    let done = AtomicBool::new(false);
    let recorded = AtomicU64::new(0);
    let shaded = AtomicU64::new(0);
    thread::scope(|s| {
        let observers: Vec<_> = (0..4u64)
            .map(|t| {
                let (shader, keys, recorded) = (&shader, &keys, &recorded);
                s.spawn(move || {
                    let mut rng = SmallRng::seed_from_u64(100 + t);
                    for i in 0..50_000usize {
                        let bid = (0.2 * USD * (1.0 + 20.0 * rng.random::<f64>())) as i64;
                        let won = bid as f64 > MARKET.draw(&mut rng);
                        if shader.observe(&keys[i % 3], bid, won) {
                            recorded.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for t in 0..2u64 {
            let (shader, keys, done, shaded) = (&shader, &keys, &done, &shaded);
            s.spawn(move || {
                let mut rng = SmallRng::seed_from_u64(200 + t);
                while !done.load(Ordering::Relaxed) {
                    let v = (rng.random::<f64>() * 10.0 * USD) as i64;
                    let floor = (rng.random::<f64>() * 2.0 * USD) as i64;
                    let k = &keys[rng.random_range(0..3)];
                    let s = shader.shade_with(k, v, floor, rng.random());
                    assert!(s.bid_micros <= v);
                    assert!(floor > v || s.bid_micros >= floor, "{v} {floor} {s:?}");
                    if s.reason == Reason::Shaded {
                        shaded.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        {
            let (shader, done) = (&shader, &done);
            s.spawn(move || {
                // One clock reading for every refit: no decay, so every
                // outcome must show up in the totals.
                while !done.load(Ordering::Relaxed) {
                    shader.refit(0);
                    thread::yield_now();
                }
            });
        }
        for o in observers {
            o.join().unwrap();
        }
        done.store(true, Ordering::Relaxed);
    });
    shader.refit(0);
    let mut total = 0.0;
    shader.for_each_curve(|_, c| {
        assert_monotone(c);
        total += c.observations();
    });
    assert_eq!(total, recorded.load(Ordering::Relaxed) as f64);
    assert_eq!(total, 200_000.0);
    assert_eq!(shader.key_count(), 3);
    println!(
        "{} shaded answers while observing and refitting",
        shaded.load(Ordering::Relaxed)
    );
}

use super::*;
use proptest::prelude::*;
use std::sync::LazyLock;

const USD: i64 = 1_000_000;

fn key(exchange: &str) -> CurveKey<'_> {
    CurveKey::new(exchange, SlotKind::Banner)
}

/// A market where any bid over `threshold` wins, bid at `n` evenly spread
/// prices between `lo` and `hi`.
fn step_market(shader: &Shader, k: &CurveKey<'_>, threshold: i64, lo: i64, hi: i64, n: i64) {
    for i in 0..n {
        let bid = lo + (hi - lo) * i / n;
        assert!(shader.observe(k, bid, bid > threshold));
    }
}

/// A shader with one ready key, "x": wins above 1.00, bids 0.20 to 5.00.
static TRAINED: LazyLock<Shader> = LazyLock::new(|| {
    let shader = Shader::new(Params::default()).unwrap();
    step_market(&shader, &key("x"), USD, USD / 5, 5 * USD, 5_000);
    shader.refit(0);
    shader
});

#[test]
fn shader_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Shader>();
    check::<Arc<Curve>>();
}

#[test]
fn params_are_validated() {
    let ok = Params::default();
    assert_eq!(ok.validate(), Ok(()));
    let bad = |f: fn(&mut Params)| {
        let mut p = ok.clone();
        f(&mut p);
        Shader::new(p).expect_err("refused")
    };
    assert_eq!(
        bad(|p| p.min_price_micros = 0),
        ParamsError::PriceRange(0, 1_000_000_000)
    );
    assert_eq!(
        bad(|p| p.max_price_micros = 10_000),
        ParamsError::PriceRange(10_000, 10_000)
    );
    assert_eq!(bad(|p| p.half_life_ms = 0), ParamsError::HalfLife(0));
    assert_eq!(bad(|p| p.max_keys = 0), ParamsError::MaxKeys(0));
    assert_eq!(
        bad(|p| p.max_keys = MAX_KEYS + 1),
        ParamsError::MaxKeys(MAX_KEYS + 1)
    );
    assert!(matches!(
        bad(|p| p.explore_rate = f64::NAN),
        ParamsError::ExploreRate(_)
    ));
    assert_eq!(bad(|p| p.explore_rate = 1.5), ParamsError::ExploreRate(1.5));
}

#[test]
fn reasons_have_stable_distinct_names() {
    let names: Vec<_> = Reason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(
        names,
        [
            "shaded",
            "not_enough_data",
            "at_floor",
            "no_gain",
            "value_below_floor",
            "explore",
            "second_price"
        ]
    );
    assert_eq!(SlotKind::Audio.as_str(), "audio");
}

#[test]
fn grid_edges() {
    let g = Grid::new(10_000, 1_000_000_000);
    assert_eq!(g.locate(10_000), (0, 0.0));
    assert_eq!(g.locate(1), (0, 0.0));
    assert_eq!(g.locate(1_000_000_000), (BINS - 1, 1.0));
    assert_eq!(g.locate(i64::MAX), (BINS - 1, 1.0));
    // 1.00 CPM is 2/5 of the way up five decades: bin 25.6.
    let (bin, pos) = g.locate(USD);
    assert_eq!(bin, 25);
    assert!((pos - 0.6).abs() < 1e-9, "{pos}");
    assert!((g.ln_price(bin, pos) - (USD as f64).ln()).abs() < 1e-9);
}

#[test]
fn pool_adjacent_violators_pools_weighted() {
    let g = Grid::new(10_000, 1_000_000_000);
    let mut c = Counts::ZERO;
    // Rates 0.5, 0.2, 0.8 with weights 10, 10, 20: the first two violate
    // and pool to 0.35.
    for (bin, bids, wins) in [(10, 10.0, 5.0), (11, 10.0, 2.0), (12, 20.0, 16.0)] {
        c.bids[bin] = bids;
        c.wins[bin] = wins;
        c.pos[bin] = bids * 0.5 * POS_SCALE;
    }
    let curve = Curve::fit(&c, &g, 0.0, 0.0);
    let p: Vec<f64> = curve.knots().map(|(_, p)| p).collect();
    assert_eq!(p.len(), 3);
    assert!((p[0] - 0.35).abs() < 1e-12 && (p[1] - 0.35).abs() < 1e-12);
    assert!((p[2] - 0.8).abs() < 1e-12);
    // Knots at bin centres, since every position is mid-bin.
    let b0 = curve.lowest_price().unwrap();
    assert!((b0.ln() - g.ln_price(10, 0.5)).abs() < 1e-12);
    assert_eq!(curve.p_win((b0 * 0.99) as i64), None);
}

#[test]
fn cold_start_returns_the_value() {
    let shader = Shader::new(Params::default()).unwrap();
    let k = key("cold");
    let s = shader.shade(&k, 3 * USD, 0);
    assert_eq!(
        s,
        Shaded {
            bid_micros: 3 * USD,
            p_win: None,
            reason: Reason::NotEnoughData
        }
    );
    // 199 outcomes, most of them wins: too few outcomes.
    step_market(&shader, &k, USD / 2, USD / 5, 5 * USD, 199);
    shader.refit(0);
    assert_eq!(shader.shade(&k, 3 * USD, 0).reason, Reason::NotEnoughData);
    // 200 outcomes but only 19 wins.
    let k2 = key("few-wins");
    for i in 0..200 {
        shader.observe(&k2, USD, i < 19);
    }
    shader.refit(0);
    assert_eq!(shader.shade(&k2, 3 * USD, 0).reason, Reason::NotEnoughData);
    shader.observe(&k2, USD, true);
    shader.refit(0);
    assert_eq!(shader.curve(&k2).unwrap().wins(), 20.0);
    assert_eq!(shader.shade(&k2, 3 * USD, 0).reason, Reason::Shaded);
    // The first key now has 200.
    shader.observe(&k, USD, true);
    shader.refit(0);
    assert_eq!(shader.shade(&k, 3 * USD, 0).reason, Reason::Shaded);
}

#[test]
fn shades_a_step_market_just_above_the_step() {
    let k = key("x");
    let s = TRAINED.shade(&k, 4 * USD, 100_000);
    assert_eq!(s.reason, Reason::Shaded);
    // The step is inside one bin (0.90 to 1.07); the next bin's knot is
    // the first at P = 1.
    assert!(s.bid_micros > USD && s.bid_micros < 1_300_000, "{s:?}");
    assert_eq!(s.p_win, Some(1.0));
    // A slot kind of its own is another key.
    let video = CurveKey::new("x", SlotKind::Video);
    assert_eq!(
        TRAINED.shade(&video, 4 * USD, 0).reason,
        Reason::NotEnoughData
    );
}

#[test]
fn floor_contract() {
    let k = key("x");
    // The floor binds above the optimum.
    let s = TRAINED.shade(&k, 4 * USD, 2 * USD);
    assert_eq!((s.bid_micros, s.reason), (2 * USD, Reason::AtFloor));
    // Floor equal to the value.
    let s = TRAINED.shade(&k, 3 * USD, 3 * USD);
    assert_eq!((s.bid_micros, s.reason), (3 * USD, Reason::AtFloor));
    assert_eq!(s.p_win, Some(1.0));
    // Floor above the value: the value, flagged.
    let s = TRAINED.shade(&k, 3 * USD, 3 * USD + 1);
    assert_eq!((s.bid_micros, s.reason), (3 * USD, Reason::ValueBelowFloor));
    // Values we never bid under: unchanged.
    let s = TRAINED.shade(&k, USD / 10, 0);
    assert_eq!((s.bid_micros, s.reason), (USD / 10, Reason::NotEnoughData));
    // Not positive.
    assert_eq!(TRAINED.shade(&k, 0, 0).reason, Reason::NoGain);
    assert_eq!(TRAINED.shade(&k, -5, -10).bid_micros, -5);
    assert_eq!(TRAINED.shade(&k, -5, 0).reason, Reason::ValueBelowFloor);
}

#[test]
fn no_gain_when_nothing_under_the_value_wins() {
    let shader = Shader::new(Params::default()).unwrap();
    let k = key("steep");
    // Nothing under 3.00 ever won: (v - b) P(b) is zero for every bid, so
    // the value, our best chance, stays.
    for i in 0..1_000 {
        shader.observe(&k, USD + 2 * USD * i / 1_000, false);
    }
    for _ in 0..100 {
        shader.observe(&k, 4 * USD, true);
    }
    shader.refit(0);
    let s = shader.shade(&k, 5 * USD / 2, 0);
    assert_eq!(
        (s.bid_micros, s.reason),
        (5 * USD / 2, Reason::NoGain),
        "{s:?}"
    );
    assert_eq!(s.p_win, Some(0.0));
    assert_eq!(shader.shade(&k, 5 * USD, 0).reason, Reason::Shaded);
}

#[test]
fn exploration() {
    let k = key("x");
    let plain = TRAINED.shade(&k, 4 * USD, 100_000);
    // Lower half of the 5% band: the value.
    let s = TRAINED.shade_with(&k, 4 * USD, 100_000, 0.01);
    assert_eq!((s.bid_micros, s.reason), (4 * USD, Reason::Explore));
    assert_eq!(s.p_win, Some(1.0));
    // Upper half: between half the shaded bid and the value, log-uniform.
    let s = TRAINED.shade_with(&k, 4 * USD, 100_000, 0.025);
    assert_eq!(s.reason, Reason::Explore);
    assert!(s.bid_micros >= plain.bid_micros / 2 && s.bid_micros < plain.bid_micros);
    let s = TRAINED.shade_with(&k, 4 * USD, 100_000, 0.0499);
    assert!(
        s.bid_micros > plain.bid_micros && s.bid_micros <= 4 * USD,
        "{s:?}"
    );
    // Draws outside the band, or not in [0, 1), do not explore.
    for u in [0.05, 0.5, 0.999, 1.0, -0.01, f64::NAN, f64::INFINITY] {
        assert_eq!(TRAINED.shade_with(&k, 4 * USD, 100_000, u), plain, "{u}");
    }
    // The floor still holds.
    let s = TRAINED.shade_with(&k, 4 * USD, USD, 0.026);
    assert!(s.bid_micros >= USD, "{s:?}");
    // Nothing to explore when the value is bid anyway.
    let s = TRAINED.shade_with(&key("unknown"), 4 * USD, 0, 0.0);
    assert_eq!(s.reason, Reason::NotEnoughData);
}

#[test]
fn second_price_is_not_shaded() {
    let k = key("x");
    assert_eq!(Auction::from_openrtb(1), Auction::FirstPrice);
    assert_eq!(Auction::from_openrtb(2), Auction::SecondPrice);
    assert_eq!(Auction::from_openrtb(501), Auction::SecondPrice);
    let s = TRAINED.shade_auction(Auction::SecondPrice, &k, 4 * USD, 0, 0.0);
    assert_eq!((s.bid_micros, s.reason), (4 * USD, Reason::SecondPrice));
    let s = TRAINED.shade_auction(Auction::SecondPrice, &k, 4 * USD, 5 * USD, 0.0);
    assert_eq!(s.reason, Reason::ValueBelowFloor);
    let s = TRAINED.shade_auction(Auction::FirstPrice, &k, 4 * USD, 0, 1.0);
    assert_eq!(s, TRAINED.shade(&k, 4 * USD, 0));
}

#[test]
fn key_cap_holds() {
    let shader = Shader::new(Params {
        max_keys: 4,
        ..Params::default()
    })
    .unwrap();
    let names = ["a", "b", "c", "d", "e", "f"];
    for name in &names[..4] {
        assert!(shader.observe(&key(name), USD, true));
    }
    assert!(!shader.observe(&key("e"), USD, true));
    assert!(!shader.observe(&CurveKey::new("a", SlotKind::Video), USD, true));
    assert!(!shader.observe(&key("f"), USD, false));
    // Known keys still count.
    assert!(shader.observe(&key("a"), USD, false));
    assert_eq!(shader.key_count(), 4);
    assert_eq!(shader.dropped_observations(), 3);
    assert!(shader.curve(&key("e")).is_none());
    assert_eq!(
        shader.shade(&key("e"), USD, 0).reason,
        Reason::NotEnoughData
    );
    shader.refit(0);
    let mut seen = Vec::new();
    shader.for_each_curve(|k, c| seen.push((k.exchange.to_owned(), c.observations())));
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        seen,
        [
            ("a".to_owned(), 2.0),
            ("b".to_owned(), 1.0),
            ("c".to_owned(), 1.0),
            ("d".to_owned(), 1.0)
        ]
    );
    // Not positive bids are not outcomes.
    assert!(!shader.observe(&key("a"), 0, true));
    assert!(!shader.observe(&key("a"), -1, true));
    assert_eq!(shader.dropped_observations(), 3);
}

#[test]
fn counts_decay_with_the_half_life() {
    let half = Params::default().half_life_ms;
    let shader = Shader::new(Params::default()).unwrap();
    let k = key("decay");
    step_market(&shader, &k, USD, USD / 5, 5 * USD, 1_000);
    shader.refit(1_000);
    assert_eq!(shader.curve(&k).unwrap().observations(), 1_000.0);
    shader.refit(1_000 + half);
    let c = shader.curve(&k).unwrap();
    assert!((c.observations() - 500.0).abs() < 1e-6, "{c:?}");
    // A clock stepping back changes nothing.
    shader.refit(0);
    assert!((shader.curve(&k).unwrap().observations() - 500.0).abs() < 1e-6);
    // The market moves: now only bids over 2.00 win. Two half-lives later
    // the old outcomes weigh a quarter as much as they did.
    let before = c.p_win(3 * USD / 2).unwrap();
    step_market(&shader, &k, 2 * USD, USD / 5, 5 * USD, 1_000);
    shader.refit(1_000 + 3 * half);
    let after = shader.curve(&k).unwrap().p_win(3 * USD / 2).unwrap();
    assert!(before > 0.99 && after < 0.25, "{before} {after}");
    // A key gone quiet falls back under the thresholds, then forgets.
    shader.refit(1_000 + 6 * half);
    assert_eq!(shader.shade(&k, 4 * USD, 0).reason, Reason::NotEnoughData);
    shader.refit(1_000 + 30 * half);
    assert_eq!(shader.curve(&k).unwrap().lowest_price(), None);
}

#[test]
fn best_bid_matches_a_fine_grid() {
    // A smooth curve made of many knots: the search must find what a brute
    // force over a fine grid finds, to within rounding.
    let g = Grid::new(10_000, 1_000_000_000);
    let mut c = Counts::ZERO;
    for bin in 15..40 {
        let x = (bin as f64 - 15.0) / 25.0;
        c.bids[bin] = 1_000.0;
        c.wins[bin] = 1_000.0 * x * x;
        c.pos[bin] = 1_000.0 * 0.3 * POS_SCALE;
    }
    let curve = Curve::fit(&c, &g, 0.0, 0.0);
    let lowest = curve.lowest_price().unwrap();
    for v in [2 * USD, 5 * USD, 20 * USD, 50 * USD] {
        let v = v as f64;
        let (b, p) = curve.best_bid(lowest, v);
        let s = (v - b) * p;
        let mut best = 0.0f64;
        let mut x = lowest;
        while x <= v {
            best = best.max((v - x) * curve.p_win(x.ceil() as i64).unwrap());
            x *= 1.0001;
        }
        assert!(s >= best * (1.0 - 1e-6), "v {v}: {b} {s} vs {best}");
        assert!((p - curve.p_win(b.ceil() as i64).unwrap()).abs() < 1e-6);
    }
}

/// Bids and outcomes with no relation between them at all: the worst case
/// for monotonicity.
fn arbitrary_outcomes() -> impl Strategy<Value = Vec<(i64, bool)>> {
    prop::collection::vec(
        (
            prop_oneof![
                1i64..10_000_000_000,
                Just(1),
                Just(i64::MAX),
                1_000i64..1_000_000
            ],
            any::<bool>(),
        ),
        0..2_000,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn fitted_curve_is_monotone(outcomes in arbitrary_outcomes(), probes in prop::collection::vec(1i64..2_000_000_000, 1..50)) {
        let shader = Shader::new(Params { min_observations: 0, min_wins: 0, ..Params::default() }).unwrap();
        let k = key("m");
        for (bid, won) in &outcomes {
            shader.observe(&k, *bid, *won);
        }
        shader.refit(0);
        // A key never observed has no curve at all: nothing to be monotone.
        let Some(curve) = shader.curve(&k) else {
            prop_assert!(outcomes.is_empty());
            return Ok(());
        };
        let knots: Vec<_> = curve.knots().collect();
        for w in knots.windows(2) {
            prop_assert!(w[0].0 <= w[1].0 && w[0].1 <= w[1].1, "{:?}", w);
        }
        for (_, p) in &knots {
            prop_assert!((0.0..=1.0).contains(p));
        }
        let mut probes = probes;
        probes.sort_unstable();
        let ps: Vec<f64> = probes.iter().filter_map(|&x| curve.p_win(x)).collect();
        for w in ps.windows(2) {
            prop_assert!(w[0] <= w[1] + 1e-12, "{:?}", w);
        }
    }

    #[test]
    fn never_above_value_nor_under_floor(
        value in prop_oneof![any::<i64>(), Just(0i64), Just(i64::MAX), Just(i64::MIN), -10i64..10, 1i64..100_000_000],
        floor in prop_oneof![any::<i64>(), Just(0i64), Just(i64::MAX), Just(i64::MIN), -10i64..10, 1i64..100_000_000],
        explore in prop_oneof![0.0f64..1.0, any::<f64>()],
        exchange in prop_oneof![Just("x"), Just("unknown")],
    ) {
        let k = key(exchange);
        for s in [
            TRAINED.shade(&k, value, floor),
            TRAINED.shade_with(&k, value, floor, explore),
            TRAINED.shade_auction(Auction::SecondPrice, &k, value, floor, explore),
        ] {
            prop_assert!(s.bid_micros <= value, "{value} {floor} {s:?}");
            if floor <= value {
                prop_assert!(s.bid_micros >= floor, "{value} {floor} {s:?}");
            } else {
                prop_assert_eq!(s.reason, Reason::ValueBelowFloor);
            }
            if let Some(p) = s.p_win {
                prop_assert!((0.0..=1.0).contains(&p));
            }
        }
    }
}

/// Bids recorded as sent and wins as they come fit the same curve as the
/// same outcomes recorded whole.
#[test]
fn bids_then_wins_fit_what_whole_outcomes_fit() {
    let whole = Shader::new(Params::default()).unwrap();
    let split = Shader::new(Params::default()).unwrap();
    let k = key("x");
    let bids: Vec<i64> = (0..2_000).map(|i| USD / 5 + i * 2_400).collect();
    for &bid in &bids {
        assert!(whole.observe(&k, bid, bid > USD));
        assert!(split.observe_bid(&k, bid));
    }
    // The wins come later, after a refit has folded the bids in.
    split.refit(0);
    for &bid in bids.iter().filter(|&&b| b > USD) {
        assert!(split.observe_win(&k, bid));
    }
    whole.refit(0);
    split.refit(0);
    let (a, b) = (whole.curve(&k).unwrap(), split.curve(&k).unwrap());
    assert!(a.is_ready() && b.is_ready());
    assert_eq!(a.observations(), b.observations());
    assert_eq!(a.wins(), b.wins());
    assert_eq!(a.knots().collect::<Vec<_>>(), b.knots().collect::<Vec<_>>());
}

/// Wins of bids this shader never counted (another replica's, or from
/// before a restart) never make a bin win more than it bid, and do not
/// outlast the bids they came with.
#[test]
fn wins_without_their_bids_are_capped_at_the_bins_bids() {
    let shader = Shader::new(Params::default()).unwrap();
    let k = key("x");
    let bid = 2 * USD;
    for _ in 0..10 {
        shader.observe_bid(&k, bid);
    }
    for _ in 0..30 {
        shader.observe_win(&k, bid);
    }
    shader.refit(0);
    let c = shader.curve(&k).unwrap();
    assert_eq!((c.observations(), c.wins()), (10.0, 10.0));
    // Twenty lost bids after: the excess wins were not kept, so the bin
    // wins a third of its bids, not all of them.
    for _ in 0..20 {
        shader.observe_bid(&k, bid);
    }
    shader.refit(0);
    let c = shader.curve(&k).unwrap();
    assert_eq!((c.observations(), c.wins()), (30.0, 10.0));
    assert_eq!(c.p_win(bid), Some(10.0 / 30.0));
    // A win alone in a bin with no bids is no knot.
    shader.observe_win(&k, 100 * USD);
    shader.refit(0);
    assert_eq!(shader.curve(&k).unwrap().knots().count(), 1);
}

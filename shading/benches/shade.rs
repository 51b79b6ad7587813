//! The hot path: `shade` on every first-price bid, `observe` on every
//! notice; `refit` runs once a second off it. Run:
//! `cargo bench -p shading --bench shade`.
//!
//! Values and bids cycle through a thousand different prices so that the
//! search walks different knots each time, as it does in the bidder.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use shading::{CurveKey, Params, Reason, Shader, SlotKind};

const USD: f64 = 1_000_000.0;

/// Log-uniform prices between `lo` and `hi` CPM.
fn prices(rng: &mut SmallRng, n: usize, lo: f64, hi: f64) -> Vec<i64> {
    let (lo, hi) = ((lo * USD).ln(), (hi * USD).ln());
    (0..n)
        .map(|_| (lo + (hi - lo) * rng.random::<f64>()).exp() as i64)
        .collect()
}

/// A key trained on a log-normal market (median 2.00): knots over most of
/// 0.30 to 15.00.
fn trained(key: &CurveKey<'_>, rng: &mut SmallRng) -> Shader {
    let shader = Shader::new(Params::default()).unwrap();
    for bid in prices(rng, 200_000, 0.3, 15.0) {
        let z: f64 = rng.random::<f64>() * 2.0 - 1.0;
        let competing = 2.0 * USD * (1.2 * z).exp();
        shader.observe(key, bid, bid as f64 > competing);
    }
    shader.refit(0);
    shader
}

fn bench(c: &mut Criterion) {
    let mut rng = SmallRng::seed_from_u64(7);
    let key = CurveKey::new("bench-exchange", SlotKind::Banner);
    let shader = trained(&key, &mut rng);
    let values = prices(&mut rng, 1024, 1.0, 20.0);
    let floor = (0.1 * USD) as i64;
    assert_eq!(shader.shade(&key, values[0], floor).reason, Reason::Shaded);

    let mut group = c.benchmark_group("shading");
    let mut i = 0;
    group.bench_function("shade", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            black_box(shader.shade(black_box(&key), black_box(values[i]), floor))
        })
    });
    let cold = CurveKey::new("cold-exchange", SlotKind::Video);
    group.bench_function("shade_cold_key", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            black_box(shader.shade(black_box(&cold), black_box(values[i]), floor))
        })
    });
    let bids = prices(&mut rng, 1024, 0.3, 15.0);
    group.bench_function("observe", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            black_box(shader.observe(black_box(&key), black_box(bids[i]), i & 1 == 0))
        })
    });
    // The bench's observations land in the key; refit folds them in.
    group.bench_function("refit_one_key", |b| b.iter(|| shader.refit(black_box(0))));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

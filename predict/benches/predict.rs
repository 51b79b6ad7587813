//! Scoring cost per candidate: building the features of a realistic
//! candidate (12 fields, the default crosses) and predicting both heads.
//! The budget is 2 µs.
//!
//! The model has the default 2^20 weights (8 MiB, more than most L2
//! caches) and a stream of 4096 different candidates, so that the weight
//! reads are the scattered ones of a live bidder, not one cached line.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use predict::{Features, Model, Outcome, Params, Trainer, BID_FIELDS, DEFAULT_CROSSES};

/// Values of realistic shape and length, in [`BID_FIELDS`]' order: ids,
/// domains, sizes.
fn candidate(i: u64) -> [String; 12] {
    let r = |m: u64| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 20) % m;
    let li = r(300);
    [
        format!("li-{li:06}"),
        format!("cr-{:08}", li * 4 + r(4)),
        ["300x250", "728x90", "320x50", "160x600", "300x600"][r(5) as usize].to_owned(),
        format!("www.publisher-{}.example.com", r(20_000)),
        format!("com.app-{}", r(50)),
        ["phone", "tablet", "desktop", "ctv"][r(4) as usize].to_owned(),
        ["ios", "android", "windows", "macos", "linux"][r(5) as usize].to_owned(),
        ["USA", "GBR", "DEU", "FRA", "CAN", "BRA", "JPN"][r(7) as usize].to_owned(),
        r(24).to_string(),
        format!("kw-{}", r(2_000)),
        ["view", "interest", "product", "category"][r(4) as usize].to_owned(),
        ["openx", "magnite", "pubmatic"][r(3) as usize].to_owned(),
    ]
}

fn pairs(values: &[String; 12]) -> [(&str, &str); 12] {
    std::array::from_fn(|k| (BID_FIELDS[k], values[k].as_str()))
}

fn trained() -> Model {
    let mut t = Trainer::new(Params::default()).expect("default params");
    for i in 0..300_000u64 {
        let values = candidate(i.wrapping_mul(7));
        let f = t
            .hasher()
            .features(&pairs(&values), DEFAULT_CROSSES)
            .expect("15 features fit");
        let outcome = Outcome {
            clicked: i % 53 == 0,
            converted: i % 997 == 0,
        };
        t.train(&f, &values[0], outcome).expect("own features");
    }
    t.finish()
}

fn bench(c: &mut Criterion) {
    let model = trained();
    let candidates: Vec<[String; 12]> = (0..4096).map(|i| candidate(i * 31 + 5)).collect();
    let features: Vec<Features> = candidates
        .iter()
        .map(|v| {
            model
                .hasher()
                .features(&pairs(v), DEFAULT_CROSSES)
                .expect("fits")
        })
        .collect();
    let hasher = *model.hasher();

    let mut i = 0;
    c.bench_function("features + predict (12 fields, 4 crosses)", |b| {
        b.iter(|| {
            let values = &candidates[i % candidates.len()];
            i += 1;
            let f = hasher
                .features(black_box(&pairs(values)), DEFAULT_CROSSES)
                .expect("fits");
            black_box(model.predict(&f, black_box(&values[0])))
        })
    });

    let mut i = 0;
    c.bench_function("features (12 fields, 4 crosses)", |b| {
        b.iter(|| {
            let values = &candidates[i % candidates.len()];
            i += 1;
            black_box(hasher.features(black_box(&pairs(values)), DEFAULT_CROSSES))
        })
    });

    // The bidder's path to the same ids: names hashed once, crosses by
    // position.
    let mut i = 0;
    c.bench_function("bid_features (12 fields, 4 crosses)", |b| {
        b.iter(|| {
            let values = &candidates[i % candidates.len()];
            i += 1;
            let values: [&str; 12] = std::array::from_fn(|k| values[k].as_str());
            black_box(hasher.bid_features(black_box(&values)))
        })
    });

    let mut i = 0;
    c.bench_function("predict", |b| {
        b.iter(|| {
            let k = i % features.len();
            i += 1;
            black_box(model.predict(black_box(&features[k]), &candidates[k][0]))
        })
    });

    let mut i = 0;
    c.bench_function("to_compact", |b| {
        b.iter(|| {
            let k = i % features.len();
            i += 1;
            black_box(black_box(&features[k]).to_compact())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);

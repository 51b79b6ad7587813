//! Request parsing cost; the bidder pays it on every request before anything else.
//!
//! `banner_2.4KB_compact` is the headline: exchanges send minified bodies. The
//! pretty-printed corpus files spend a good part of their time on whitespace.
//! `serde_model` is the same model read through serde's derive (the reader
//! before the crate had its own); `skip_only` is serde_json walking the same
//! bytes while building nothing, the floor any serde model can reach on the
//! machine at hand.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

macro_rules! testdata {
    ($path:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../testdata/openrtb/",
            $path
        ))
    };
}

const BANNER_COMPACT: &[u8] = testdata!("bench/banner-2.5k-compact.json");
const BANNER_PRETTY: &[u8] =
    testdata!("requests/pbs__silverpush__banner-eids__call0-bidder-request.json");
const VIDEO_PRETTY: &[u8] =
    testdata!("requests/iab-ortb2x-2.6md__L1712__6-2-4-example-4-video.json");

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_request");
    for (name, body) in [
        ("banner_2.4KB_compact", BANNER_COMPACT),
        ("banner_2.2KB_pretty", BANNER_PRETTY),
        ("video_2.5KB_pretty", VIDEO_PRETTY),
    ] {
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                let req = ortb::parse_request(black_box(body)).expect("vendored request parses");
                black_box(req.validate().is_ok());
                req
            })
        });
    }
    group.throughput(Throughput::Bytes(BANNER_COMPACT.len() as u64));
    group.bench_function("serde_model_banner_2.4KB_compact", |b| {
        b.iter(|| {
            ortb::parse_request_serde(black_box(BANNER_COMPACT)).expect("vendored request parses")
        })
    });
    group.bench_function("skip_only_banner_2.4KB_compact", |b| {
        b.iter(|| {
            serde_json::from_slice::<serde::de::IgnoredAny>(black_box(BANNER_COMPACT))
                .expect("vendored request is JSON")
        })
    });
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);

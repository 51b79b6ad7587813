//! `parsers KIND N`: reads the bench banner request N times one way, for
//! callgrind to count (`benches/parsers.sh`). KIND:
//!
//! - `ours`: `ortb::parse_request`, the bidder's reader, into the typed model
//! - `ours-serde`: the same model through serde_json's derive
//! - `serde-skip`, `sonic-skip`: only validates the JSON (`IgnoredAny`), the
//!   least any parser must do
//! - `serde-value`, `sonic-value`, `simd-value`: a document tree of the
//!   whole request
//! - `simd-tape`: simd-json's tape (its first stages: the structure found
//!   with SIMD, strings unescaped in place), the least it builds; simd-json
//!   parses in place, so its kinds copy the body first, as a caller keeping
//!   the body would (`copy`: that copy alone)
//!
//! The question it answers: how far is our reader from what a parser can do
//! on this request at all. sonic-rs is the SIMD parser of the field; it picks
//! its SIMD at compile time, so build with
//! `RUSTFLAGS="-C target-feature=+avx2,+pclmulqdq,+bmi2"` for its best
//! (valgrind cannot run AVX-512 code: not `target-cpu=native` here).

use std::hint::black_box;

const REQUEST: &str = include_str!("../../src/banner-request.json");

#[inline(never)]
fn one_ours(body: &[u8]) {
    let req = ortb::parse_request(body).expect("the bench request parses");
    black_box(&req);
}

#[inline(never)]
fn one_ours_serde(body: &[u8]) {
    let req = ortb::parse_request_serde(body).expect("the bench request parses");
    black_box(&req);
}

#[inline(never)]
fn one_serde_skip(body: &[u8]) {
    let v: serde::de::IgnoredAny = serde_json::from_slice(body).expect("valid JSON");
    black_box(&v);
}

#[inline(never)]
fn one_sonic_skip(body: &[u8]) {
    let v: serde::de::IgnoredAny = sonic_rs::from_slice(body).expect("valid JSON");
    black_box(&v);
}

#[inline(never)]
fn one_serde_value(body: &[u8]) {
    let v: serde_json::Value = serde_json::from_slice(body).expect("valid JSON");
    black_box(&v);
}

#[inline(never)]
fn one_sonic_value(body: &[u8]) {
    let v: sonic_rs::Value = sonic_rs::from_slice(body).expect("valid JSON");
    black_box(&v);
}

#[inline(never)]
fn one_simd_tape(body: &[u8]) {
    let mut copy = body.to_vec();
    let tape = simd_json::to_tape(&mut copy).expect("valid JSON");
    black_box(&tape);
}

#[inline(never)]
fn one_simd_value(body: &[u8]) {
    let mut copy = body.to_vec();
    let v = simd_json::to_borrowed_value(&mut copy).expect("valid JSON");
    black_box(&v);
}

#[inline(never)]
fn one_copy(body: &[u8]) {
    let copy = body.to_vec();
    black_box(&copy);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(kind), Some(n)) = (args.next(), args.next().and_then(|n| n.parse::<u32>().ok()))
    else {
        eprintln!("usage: parsers ours|ours-serde|serde-skip|sonic-skip|serde-value|sonic-value|simd-tape|simd-value|copy N");
        std::process::exit(2);
    };
    // The body bid-loop reads: minified as benches::minified does (keys in
    // serde_json's order, a long tmax).
    let mut v: serde_json::Value = serde_json::from_str(REQUEST).expect("valid JSON");
    v["tmax"] = 3_600_000.into();
    let body = serde_json::to_vec(&v).expect("serialisable");
    let one = match kind.as_str() {
        "ours" => one_ours,
        "ours-serde" => one_ours_serde,
        "serde-skip" => one_serde_skip,
        "sonic-skip" => one_sonic_skip,
        "serde-value" => one_serde_value,
        "sonic-value" => one_sonic_value,
        "simd-tape" => one_simd_tape,
        "simd-value" => one_simd_value,
        "copy" => one_copy,
        other => {
            eprintln!("parsers: unknown kind {other:?}");
            std::process::exit(2);
        }
    };
    for _ in 0..n {
        one(&body);
    }
    println!("{kind}: {n} reads of {} bytes", body.len());
}

//! Runs one kind of bid N times in a row on the bench config of 1,000 line
//! items, for `benches/instructions.sh`: callgrind counts the instructions
//! of two runs that differ only in N, and their difference divided by the
//! difference in N is the cost of one bid, set-up excluded.
//!
//! `bid-loop banner|video|parse|parse-serde N [per-bid|per-url]`: `per-bid`
//! signs URLs with `--url-signatures per-bid` (what `auto`, the bidder's
//! default, writes after its soak); without it, per URL, as builds of this loop
//! before that default read no third argument (`benches/native.sh` runs
//! old and new builds with the same arguments);
//! `parse-serde` parses through serde's derive, the reader's reference. The
//! parse kinds also print nanoseconds per parse to stderr, for timing the
//! two readers against each other in one run; the bid kinds, nanoseconds
//! per bid and the answer's size. With `COLD_MB=64` each bid is timed
//! after the caches have been flushed (see below): a cold bid. With
//! `SHOW=1` the first answer is printed to stderr, to see what a bid
//! writes.

use std::process::ExitCode;
use std::time::Instant;

use benches::{
    bench_app_signing, generated_config, minified, BANNER_REQUEST, VIDEO_ADVERTISER, VIDEO_REQUEST,
};
use bidder::BidAnswer;

/// A parse of the body into a request, then its drop: the imps it read.
type Parse = fn(&[u8]) -> usize;

/// As the bidder parses (`App::bid_inner`): into a request it keeps.
fn parse_ours(body: &[u8]) -> usize {
    let mut slot = None;
    ortb::parse_request_into(body, &mut slot).map_or(0, |req| req.imp.len())
}

fn parse_serde(body: &[u8]) -> usize {
    ortb::parse_request_serde(body).map_or(0, |r| r.imp.len())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(kind), Some(n)) = (args.get(1), args.get(2).and_then(|n| n.parse::<u64>().ok()))
    else {
        eprintln!("usage: bid-loop banner|video|parse|parse-serde N [per-bid|per-url]");
        return ExitCode::from(2);
    };
    let mut files = generated_config(1_000);
    let body = match kind.as_str() {
        "banner" | "parse" | "parse-serde" => minified(BANNER_REQUEST),
        "video" => {
            files.push(("tube.yaml".into(), VIDEO_ADVERTISER.to_string()));
            minified(VIDEO_REQUEST)
        }
        other => {
            eprintln!("bid-loop: unknown kind {other:?} (banner, video, parse, parse-serde)");
            return ExitCode::from(2);
        }
    };
    if let Some(parse) = match kind.as_str() {
        "parse" => Some(parse_ours as Parse),
        "parse-serde" => Some(parse_serde as Parse),
        _ => None,
    } {
        let mut imps = 0;
        let start = Instant::now();
        for _ in 0..n {
            imps += one_parse(parse, std::hint::black_box(&body));
        }
        let nanos = start.elapsed().as_nanos() / u128::from(n.max(1));
        println!("{imps}");
        eprintln!("{nanos} ns per parse");
        return ExitCode::SUCCESS;
    }
    let how = match args.get(3).map(String::as_str) {
        None | Some("per-url") => bidder::notice::UrlSignatures::PerUrl,
        Some("per-bid") => bidder::notice::UrlSignatures::PerBid,
        Some(other) => {
            eprintln!("bid-loop: unknown signing {other:?} (per-bid, per-url)");
            return ExitCode::from(2);
        }
    };
    let app = bench_app_signing(&files, audiences::Store::new(), how);
    // The loop measures bids, not early no-bids: the first must bid.
    match app.handle_bid(&body, Instant::now()) {
        BidAnswer::Bid(json, _) => {
            if std::env::var_os("SHOW").is_some() {
                eprintln!("{}", String::from_utf8_lossy(&json));
            }
            if kind == "video" && !String::from_utf8_lossy(&json).contains("<VAST") {
                eprintln!("bid-loop: the video bid carries no VAST");
                return ExitCode::FAILURE;
            }
        }
        BidAnswer::NoBid(reason) => {
            eprintln!("bid-loop: {kind}: no bid: {reason:?}");
            return ExitCode::FAILURE;
        }
        BidAnswer::Invalid(why) => {
            eprintln!("bid-loop: {kind}: invalid: {why}");
            return ExitCode::FAILURE;
        }
    }
    let mut bytes = 0;
    // `COLD_MB=64`: before each bid, write over that many megabytes, so the
    // bid finds neither its code nor its data in the caches, as a bidder
    // does between sparse requests (the machine's other work runs in
    // between); only the bids are timed.
    let cold_mb = std::env::var("COLD_MB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut evict = vec![0u8; cold_mb << 20];
    let mut timed = std::time::Duration::ZERO;
    for _ in 0..n {
        for b in evict.iter_mut().step_by(64) {
            *b = b.wrapping_add(1);
        }
        std::hint::black_box(&mut evict);
        let start = Instant::now();
        bytes += one_bid(&app, std::hint::black_box(&body));
        timed += start.elapsed();
    }
    let nanos = timed.as_nanos() / u128::from(n.max(1));
    println!("{bytes}");
    eprintln!(
        "{nanos} ns per bid, {} bytes per answer",
        bytes / n.max(1) as usize
    );
    ExitCode::SUCCESS
}

// The measured steps, one call each: `instructions.sh` has callgrind count
// inside these only (`--toggle-collect`), so the config load before the
// loop, whose cost varies from run to run with hash seeds, is left out.

/// One parse, the request dropped: the imps it read.
#[inline(never)]
fn one_parse(parse: Parse, body: &[u8]) -> usize {
    parse(body)
}

/// One bid request answered, the answer dropped: its size, 0 for no bid.
#[inline(never)]
fn one_bid(app: &bidder::App, body: &[u8]) -> usize {
    match app.handle_bid(body, Instant::now()) {
        BidAnswer::Bid(json, _) => json.len(),
        _ => 0,
    }
}

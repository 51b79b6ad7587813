#!/usr/bin/env bash
# Two builds of `bidder serve` side by side, for changes smaller than this
# machine's noise: both run at once on the same generated config, and the
# load alternates between them, so a noisy minute weighs on both alike.
#
#   benches/compare.sh OLD_BIN NEW_BIN            # throughput: wrk rounds
#   benches/compare.sh --rate R OLD_BIN NEW_BIN   # latency at R req/s: oha
#
# Throughput: ROUNDS (6) wrk rounds of DURATION (10s) each, the builds' order
# swapped every round; prints each round's req/s and new/old, and each
# build's CPU time per request (its process's user + system time over the
# round, from /proc): less moved by the load generator and the machine's
# other tenants than req/s, which also wait on them.
# Latency: oha slices of DURATION at R req/s alternate between the builds
# (order swapped every pair) for WARMUP_PAIRS (4) pairs, discarded, then
# ROUNDS pairs, printed with p50/p99/p99.9. Each bidder gets the rate half
# the time, so both sit near half the steady state of a bidder at R: a
# comparison of builds, not the steady state `load.sh --rate` measures.
#
# KIND=video posts the bench video request instead of the banner one, to a
# config with the video advertiser and https tracking URLs (secure slots
# take video only then): a bid with VAST.
#
# Build the old one first, e.g. in a worktree with its own target:
#   git worktree add /tmp/old HEAD~1 && (cd /tmp/old && cargo build --release -p bidder)
#   benches/compare.sh /tmp/old/target/release/bidder target/release/bidder
# Loopback only. Installs wrk (Debian) and oha (cargo) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

RATE=
if [ "${1:-}" = --rate ]; then RATE=$2; shift 2; fi
[ $# = 2 ] || { echo "usage: benches/compare.sh [--rate R] OLD_BIN NEW_BIN" >&2; exit 2; }
LINE_ITEMS=${LINE_ITEMS:-1000}
ROUNDS=${ROUNDS:-6}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-32}
WARMUP_PAIRS=${WARMUP_PAIRS:-4}
KIND=${KIND:-banner}
case "$KIND" in
  banner | video) ;;
  *) echo "KIND is banner or video" >&2; exit 2 ;;
esac

. benches/common.sh
[ -n "$RATE" ] || need wrk
if [ -n "$RATE" ] && ! command -v oha >/dev/null; then
  cargo install -q --locked oha
fi
cargo build --release -q -p benches --bin gen-config

work=target/compare
rm -rf "$work" && mkdir -p "$work"
target/release/gen-config "$LINE_ITEMS" "$work/config" >/dev/null
if [ "$KIND" = video ]; then
  video_advertiser "$work/config/tube.yaml"
fi
minify "benches/src/$KIND-request.json" >"$work/body.json"

addrs=()
procs=()
for which in old new; do
  bin=$1; shift
  RUST_LOG=warn start "$work/$which.out" "$bin" serve --config "$work/config" \
    --state "$work/state-$which" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --public-url "$PUBLIC_URL"
  addrs+=("$(bid_addr "$work/$which.out")")
  procs+=("${pids[-1]}")
done
names=(old new)
# Both must really bid on the request, before the rounds and after them,
# or the comparison is of no-bids.
bidding() {
  local k status
  for k in 0 1; do
    status=$(bid_status "${addrs[$k]}" "$work/body.json")
    [ "$status" = 200 ] || { echo "${names[$k]}: expected a bid (200), got $status $1" >&2; exit 1; }
  done
}
bidding "before the rounds"

if [ -z "$RATE" ]; then
  post_lua "$work/body.json" >"$work/post.lua"
  for r in $(seq "$ROUNDS"); do
    order="0 1"; [ $((r % 2)) = 0 ] && order="1 0"
    declare -A rps=() cpu=()
    for k in $order; do
      before=$(cpu_ticks "${procs[$k]}")
      wrk -t1 -c"$CONNS" -d"$DURATION" -s "$work/post.lua" "http://${addrs[$k]}/openrtb2/bid" >"$work/wrk.txt"
      after=$(cpu_ticks "${procs[$k]}")
      rps[$k]=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
      cpu[$k]=$(us_per_request $((after - before)) "$work/wrk.txt")
    done
    echo "round $r: old ${rps[0]} req/s, new ${rps[1]} req/s, new/old $(awk -v a="${rps[1]}" -v b="${rps[0]}" 'BEGIN {printf "%.3f", a/b}');" \
      "CPU per request: old ${cpu[0]} µs, new ${cpu[1]} µs, new/old $(awk -v a="${cpu[1]}" -v b="${cpu[0]}" 'BEGIN {if (b > 0) printf "%.3f", a/b; else printf "nan"}')"
  done
  bidding "after the rounds"
  exit 0
fi

slice() { # index → "p50 p99 p99.9" in ms
  oha -z "$DURATION" -q "$RATE" -c "$CONNS" --latency-correction --no-tui --output-format json \
    -m POST -H 'Content-Type: application/json' -H 'x-openrtb-version: 2.6' -D "$work/body.json" \
    "http://${addrs[$1]}/openrtb2/bid" >"$work/oha.json"
  python3 -c 'import json,sys
p = json.load(open(sys.argv[1]))["latencyPercentiles"]
print("%.3f %.3f %.3f" % (p["p50"] * 1e3, p["p99"] * 1e3, p["p99.9"] * 1e3))' "$work/oha.json"
}
for r in $(seq $((WARMUP_PAIRS + ROUNDS))); do
  order="0 1"; [ $((r % 2)) = 0 ] && order="1 0"
  for k in $order; do
    read -r p50 p99 p999 <<<"$(slice "$k")"
    [ "$r" -le "$WARMUP_PAIRS" ] && continue
    echo "pair $((r - WARMUP_PAIRS)) ${names[$k]}: p50 $p50 ms, p99 $p99 ms, p99.9 $p999 ms"
  done
done
bidding "after the rounds"

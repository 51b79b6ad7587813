#!/usr/bin/env bash
# Where a loaded bidder's CPU goes, on the CPU itself rather than under
# callgrind: `perf record` samples `bidder serve` (on the load test's config
# of 1,000 line items) while wrk sends it the bench banner request, after
# WARMUP of load, so that its table of bids in flight holds what the rate
# keeps (a minute of bids: the ledger's cache misses only show then). Prints
# the CPU time per request over the sample and the hottest symbols.
#
#   benches/profile.sh                  # 65 s of load, then 10 s sampled
#   CALL_GRAPH=1 benches/profile.sh     # with call graphs (DWARF; large)
#   WARMUP=5s SAMPLE=20 TOP=60 CONNS=64 benches/profile.sh   # SAMPLE in seconds
#   BIN=target/release benches/profile.sh   # another build (default: a
#                                       # release build without LTO and
#                                       # with debug info, in target/prof,
#                                       # whose symbols and lines read well)
#
# The samples stay in target/profile/perf.data for `perf report -i`, e.g.
# `perf annotate -i target/profile/perf.data -s SYMBOL`. Sampled on cpu-clock,
# which works where the machine (a VM) has no hardware counters, and counts
# the same everywhere. Loopback only.
# Installs wrk and perf from Debian if they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

WARMUP=${WARMUP:-65s}
SAMPLE=${SAMPLE:-10}
SAMPLE=${SAMPLE%s}
TOP=${TOP:-40}
CONNS=${CONNS:-32}
CALL_GRAPH=${CALL_GRAPH:-0}

. benches/common.sh
need wrk
need perf linux-perf
cargo build --release -q -p benches --bin gen-config
if [ -z "${BIN:-}" ]; then
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    CARGO_PROFILE_RELEASE_DEBUG=1 CARGO_TARGET_DIR=target/prof \
    cargo build --release -q -p bidder
  BIN=target/prof/release
fi

work=target/profile
rm -rf "$work" && mkdir -p "$work"
target/release/gen-config 1000 "$work/config" >/dev/null

RUST_LOG=warn start "$work/bidder.out" "$BIN/bidder" serve --config "$work/config" \
  --state "$work/state" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --public-url "$PUBLIC_URL"
pid=${pids[-1]}
addr=$(bid_addr "$work/bidder.out")
minify benches/src/banner-request.json >"$work/body.json"
post_lua "$work/body.json" >"$work/post.lua"
# It must bid, or the profile is of no-bids.
bid_answer "$addr" "$work/body.json" "$work/answer.json"

url="http://$addr/openrtb2/bid"
echo "load for $WARMUP first"
wrk -t1 -c"$CONNS" -d"$WARMUP" -s "$work/post.lua" "$url" >/dev/null
graph=()
[ "$CALL_GRAPH" = 1 ] && graph=(--call-graph dwarf,16384)
t0=$(cpu_ticks "$pid")
perf record -q -e cpu-clock -F 999 "${graph[@]}" -p "$pid" -o "$work/perf.data" \
  -- sleep "$SAMPLE" >/dev/null 2>"$work/perf.err" &
perf_pid=$!
pids+=("$perf_pid")
wrk -t1 -c"$CONNS" -d"${SAMPLE}s" -s "$work/post.lua" "$url" >"$work/wrk.txt"
wait "$perf_pid" || { echo "perf record failed:" >&2; cat "$work/perf.err" >&2; exit 1; }
t1=$(cpu_ticks "$pid")
# No-bids and errors would make this a profile of something else.
grep -E 'Non-2xx|Socket errors' "$work/wrk.txt" >&2 || true
echo "sampled $(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt") req/s;" \
  "server CPU per request $(us_per_request "$((t1 - t0))" "$work/wrk.txt") µs"
# awk, not head: head closing the pipe early fails the script under pipefail.
perf report -i "$work/perf.data" --stdio --no-children -g none --sort sym 2>"$work/report.err" |
  awk -v top="$TOP" '/^ +[0-9.]+%/ && n++ < top'

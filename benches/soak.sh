#!/usr/bin/env bash
# Soak: holds half of the bidder's maximum load for a long while (default
# 10 minutes) and reports its resident memory at the start, once the book of
# bids in flight has filled (WARMUP, default 2 minutes: every bid holds a
# reservation for --reservation-ttl-secs, 60 s, then an expired one may be
# held a while longer), and at the end. A bidder that keeps something per
# request, per user or per connection shows it as a line still rising after
# the warm-up; a bounded one stays flat.
#
#   benches/soak.sh                         # 1,000 line items, 10 minutes
#   DURATION=60s LINE_ITEMS=10000 benches/soak.sh
#   RATE=21550 benches/soak.sh              # a fixed rate instead of half
#                                           # the maximum (to compare builds)
#
# Not a test: it takes minutes and needs the machine to itself. Loopback
# only. Installs wrk (Debian) and oha (cargo; it holds a fixed request rate,
# which wrk cannot) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

LINE_ITEMS=${LINE_ITEMS:-1000}
DURATION=${DURATION:-10m}
CONNS=${CONNS:-32}
SAMPLE_SECS=${SAMPLE_SECS:-10}
WARMUP=${WARMUP:-120}

. benches/common.sh
need wrk
command -v oha >/dev/null || cargo install --locked -q oha
cargo build --release -q -p bidder -p benches

work=target/soak
rm -rf "$work" && mkdir -p "$work"
target/release/gen-config "$LINE_ITEMS" "$work/config" >/dev/null

RUST_LOG=warn start "$work/bidder.out" target/release/bidder serve --config "$work/config" \
  --state "$work/state" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --public-url "$PUBLIC_URL"
pid=${pids[0]}
addr=$(bid_addr "$work/bidder.out")

# Every request a bid (and a reservation), minified as exchanges send it.
body="$work/request.json"
minify benches/src/banner-request.json >"$body"
lua="$work/post.lua"
printf 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [==[%s]==]\n' \
  "$(cat "$body")" >"$lua"

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }

# Maximum load first: 10 s of wrk as fast as it goes.
max=$(wrk -t1 -c"$CONNS" -d10s -s "$lua" "http://$addr/openrtb2/bid" | awk '/Requests\/sec/ {printf "%d", $2}')
rate=${RATE:-$((max / 2))}
echo "maximum ${max} req/s; holding ${rate} req/s for ${DURATION}"

start_rss=$(rss_kb)
: >"$work/rss.txt"
( while kill -0 "$pid" 2>/dev/null; do echo "$(date +%s) $(rss_kb)" >>"$work/rss.txt"; sleep "$SAMPLE_SECS"; done ) &
sampler=$!
oha --no-tui -q "$rate" -z "$DURATION" -c "$CONNS" -m POST -H 'Content-Type: application/json' \
  -D "$body" "http://$addr/openrtb2/bid" >"$work/oha.txt"
end_rss=$(rss_kb)
kill "$sampler" 2>/dev/null || true

grep -E 'Success rate|Requests/sec|99.00%' "$work/oha.txt" || true
peak=$(awk '{ if ($2 > m) m = $2 } END { print m }' "$work/rss.txt")
first=$(awk 'NR == 1 {print $1}' "$work/rss.txt")
warm=$(awk -v t="$((first + WARMUP))" '$1 >= t {print $2; exit}' "$work/rss.txt")
echo "RSS: start ${start_rss} kB, after ${WARMUP} s ${warm:-n/a} kB, end ${end_rss} kB, peak ${peak} kB (samples in $work/rss.txt)"

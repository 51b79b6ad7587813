#!/usr/bin/env bash
# Load test: drives `bidder serve` (on a generated config) and a no-op hyper
# server that answers 204 with wrk, alternately, in the same run, and reports
# each one's requests/second and the bidder/no-op ratio (medians of ROUNDS).
# A second no-op server answers the bidder's own answer (200, its bytes)
# without bidding: its ratio is the ceiling that answer's size leaves. Each
# server's CPU time per request (user + system, from /proc) is reported too:
# wrk shares the cores, so requests/second move with how the scheduler splits
# them, and the CPU a request took the server moves much less.
#
#   benches/load.sh                      # 1,000 line items, 3 rounds of 10 s
#   LINE_ITEMS=10000 ROUNDS=5 DURATION=20s CONNS=64 benches/load.sh
#   benches/load.sh --redis              # also a bidder on Redis state (a local
#                                        # redis-server), and its Redis round trips
#                                        # per bid
#   BIDDER_ARGS="--reservation-ttl-secs 1" benches/load.sh
#                                        # extra arguments for the bidders under
#                                        # test (word-split)
#   ROUNDS_WARMUP=70s benches/load.sh    # the bidder under wrk that long before
#                                        # the rounds: its table of bids in flight
#                                        # full to what the rate keeps (a
#                                        # reservation TTL of bids), as a bidder
#                                        # past its first minute has it; without,
#                                        # the rounds also pay the table's growth
#   BIN=target/pgo/release benches/load.sh
#                                        # the builds of scripts/pgo.sh (run it
#                                        # first): bidder and no-op server both
#                                        # profile-guided, as the image ships
#   benches/load.sh --rate [R]           # then latency at a fixed rate: R req/s
#                                        # (default: half the bidder's median
#                                        # maximum of this run) with `oha -q`, for
#                                        # the no-op server and the bidder alike;
#                                        # the bidder a fresh one, warmed at the
#                                        # rate for WARMUP (70s) first
#   CLIENT=paced benches/load.sh --rate  # the same with benches' `paced` client
#                                        # instead of oha: requests evenly spaced,
#                                        # where oha releases R/1000 at each
#                                        # millisecond tick of tokio's timer (see
#                                        # src/bin/paced.rs)
#
# Loopback only. Installs wrk from Debian, and oha with cargo for --rate, if
# they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

LINE_ITEMS=${LINE_ITEMS:-1000}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-32}
THREADS=${THREADS:-1}
BIDDER_ARGS=${BIDDER_ARGS:-}
# Split on whitespace into words, not glob-expanded.
read -ra bidder_args <<<"$BIDDER_ARGS"
WARMUP=${WARMUP:-70s}
ROUNDS_WARMUP=${ROUNDS_WARMUP:-}
# Where the bidder and the no-op server to measure are (gen-config always
# comes from target/release).
BIN=${BIN:-target/release}
REDIS=0
RATE=
case "${1:-}" in
  --redis) REDIS=1 ;;
  --rate) RATE=${2:-half} ;;
esac

. benches/common.sh
need wrk
if [ "$BIN" = target/release ]; then
  cargo build --release -q -p bidder -p benches
else
  cargo build --release -q -p benches --bin gen-config --bin paced
fi
for b in bidder noop-server; do
  [ -x "$BIN/$b" ] || { echo "no $BIN/$b (scripts/pgo.sh builds target/pgo/release)" >&2; exit 1; }
done
CLIENT=${CLIENT:-oha}
if [ -n "$RATE" ] && [ "$CLIENT" = oha ] && ! command -v oha >/dev/null; then
  cargo install -q --locked oha
fi

work=target/load
rm -rf "$work" && mkdir -p "$work"
target/release/gen-config "$LINE_ITEMS" "$work/config" >/dev/null

RUST_LOG=warn start "$work/bidder.out" "$BIN/bidder" serve --config "$work/config" --state "$work/state" \
  --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --public-url "$PUBLIC_URL" "${bidder_args[@]}"
bidders=("${pids[@]}")
bid_pid=${pids[-1]}
start "$work/noop.out" "$BIN/noop-server" 127.0.0.1:0
noop_pid=${pids[-1]}
bid_addr=$(bid_addr "$work/bidder.out")
noop_addr=$(sed -n 's/noop listening: //p' "$work/noop.out")
if [ "$REDIS" = 1 ]; then
  need redis-server
  # As k8s/base/redis.conf: the append-only file, fsync'd on every write.
  start_redis "$work/redis" --appendonly yes --appendfsync always
  BIDDER_NOTICE_SECRET=load-test-notice-secret-0123456789abcdef RUST_LOG=warn \
    start "$work/redis-bidder.out" "$BIN/bidder" serve --config "$work/config" \
    --state "redis://127.0.0.1:$redis_port/" --journal "$work/redis-state" \
    --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --public-url "$PUBLIC_URL" "${bidder_args[@]}"
  bidders+=("${pids[-1]}")
  redis_pid=${pids[-1]}
  redis_addr=$(bid_addr "$work/redis-bidder.out")
  redis_admin=$(sed -n 's/.*admin=\([^ ]*\).*/\1/p' "$work/redis-bidder.out")
  # Leases come within milliseconds of the first bids.
  await_bid "$redis_addr" benches/src/banner-request.json
fi

minified="$work/body.json"
minify benches/src/banner-request.json >"$minified"
lua="$work/post.lua"
post_lua "$minified" >"$lua"

# The bidder must really bid on this request, or the comparison is empty
# (bid_answer stops the script otherwise). The no-op server again answers
# every request with that answer (200, the same bytes): what writing it and
# the client reading it cost, with no bid made. Its ratio to the 204 server
# is the most any bidder answering this answer can reach in the run.
bid_answer "$bid_addr" "$minified" "$work/answer.json"
start "$work/answer.out" "$BIN/noop-server" 127.0.0.1:0 "$work/answer.json"
answer_pid=${pids[-1]}
answer_addr=$(sed -n 's/noop listening: //p' "$work/answer.out")
[ "$(bid_status "$answer_addr" "$minified")" = 200 ] ||
  { echo "$BIN/noop-server does not answer with a file: rebuild it" >&2; exit 1; }

rps() { # addr pid name → requests/sec; appends the server's CPU µs per request to $work/name.cpu
  local t0 t1
  t0=$(cpu_ticks "$2")
  wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" -s "$lua" --latency "http://$1/openrtb2/bid" >"$work/wrk.txt"
  t1=$(cpu_ticks "$2")
  grep -E 'Non-2xx|Socket errors' "$work/wrk.txt" >&2 || true
  # Throughput depends on how the two cores are shared with wrk; the CPU
  # each request took the server does much less.
  echo "$(us_per_request "$((t1 - t0))" "$work/wrk.txt")" >>"$work/$3.cpu"
  awk '/Requests\/sec/ {print $2}' "$work/wrk.txt"
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

: >"$work/noop.rps"; : >"$work/answer.rps"; : >"$work/bidder.rps"; : >"$work/redis.rps"; : >"$work/trips"
: >"$work/noop.cpu"; : >"$work/answer.cpu"; : >"$work/bidder.cpu"; : >"$work/redis.cpu"
trips() { curl -s "http://$redis_admin/metrics" | awk '/^bidder_redis_round_trips_total/ {print $2}'; }
if [ -n "$ROUNDS_WARMUP" ]; then
  echo "warming the bidder under wrk for $ROUNDS_WARMUP"
  wrk -t"$THREADS" -c"$CONNS" -d"$ROUNDS_WARMUP" -s "$lua" "http://$bid_addr/openrtb2/bid" >/dev/null
fi
for r in $(seq "$ROUNDS"); do
  n=$(rps "$noop_addr" "$noop_pid" noop);  echo "$n" >>"$work/noop.rps"
  a=$(rps "$answer_addr" "$answer_pid" answer); echo "$a" >>"$work/answer.rps"
  b=$(rps "$bid_addr" "$bid_pid" bidder); echo "$b" >>"$work/bidder.rps"
  p50=$(awk '/ 50%/ {print $2}' "$work/wrk.txt"); p99=$(awk '/ 99%/ {print $2}' "$work/wrk.txt")
  echo "round $r: noop $n req/s, noop answering the bid $a req/s, bidder $b req/s (bidder p50 $p50, p99 $p99); server CPU per request: noop $(tail -1 "$work/noop.cpu") µs, bidder $(tail -1 "$work/bidder.cpu") µs"
  if [ "$REDIS" = 1 ]; then
    before=$(trips)
    x=$(rps "$redis_addr" "$redis_pid" redis); echo "$x" >>"$work/redis.rps"
    after=$(trips)
    reqs=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
    per=$(awk -v a="$after" -v b="$before" -v n="$reqs" 'BEGIN {printf "%.4f", (a-b)/n}')
    echo "$per" >>"$work/trips"
    p50=$(awk '/ 50%/ {print $2}' "$work/wrk.txt"); p99=$(awk '/ 99%/ {print $2}' "$work/wrk.txt")
    echo "round $r: bidder on Redis $x req/s (p50 $p50, p99 $p99), Redis round trips per bid request $per"
  fi
done
n=$(median <"$work/noop.rps"); b=$(median <"$work/bidder.rps")
echo "line items: $LINE_ITEMS, connections: $CONNS, wrk threads: $THREADS, $ROUNDS rounds of $DURATION"
echo "median: noop $n req/s, bidder $b req/s, ratio $(awk -v b="$b" -v n="$n" 'BEGIN {printf "%.2f", b/n}')"
nc=$(median <"$work/noop.cpu"); bc=$(median <"$work/bidder.cpu")
echo "median server CPU per request: noop $nc µs, bidder $bc µs, ratio $(awk -v b="$bc" -v n="$nc" 'BEGIN {printf "%.2f", n/b}') (throughput ratio if the server had the cores to itself)"
a=$(median <"$work/answer.rps")
echo "median: noop answering the bidder's answer ($(wc -c <"$work/answer.json") bytes) $a req/s, ratio $(awk -v a="$a" -v n="$n" 'BEGIN {printf "%.2f", a/n}') (the ceiling that answer leaves)"
if [ "$REDIS" = 1 ]; then
  x=$(median <"$work/redis.rps")
  echo "median: bidder on Redis $x req/s, $(awk -v x="$x" -v b="$b" 'BEGIN {printf "%.2f", x/b}') of embedded; Redis round trips per bid request $(median <"$work/trips")"
fi

if [ -n "$RATE" ]; then
  [ "$RATE" = half ] && RATE=$(awk -v b="$b" 'BEGIN {printf "%d", b / 2}')
  # Open-loop: requests go out at the rate whatever the answers take, and
  # latency counts from when each was due (no coordinated omission).
  at_rate() { # addr → "p50 p99 req/s success" (p50 and p99 in ms)
    if [ "$CLIENT" = paced ]; then
      target/release/paced "$1" "$minified" "$RATE" "${DURATION%s}" "$CONNS" |
        awk '{sub("/s", "", $8); printf "%s %s %s %.4f\n", $10, $12, $8, $6 / $2}'
      return
    fi
    oha -z "$DURATION" -q "$RATE" -c "$CONNS" --latency-correction --no-tui --output-format json \
      -m POST -H 'Content-Type: application/json' -H 'x-openrtb-version: 2.6' -D "$minified" \
      "http://$1/openrtb2/bid" >"$work/oha.json"
    python3 -c 'import json,sys
d = json.load(open(sys.argv[1])); p = d["latencyPercentiles"]; s = d["summary"]
print("%.3f %.3f %.0f %.4f" % (p["p50"] * 1e3, p["p99"] * 1e3, s["requestsPerSec"], s["successRate"]))' "$work/oha.json"
  }
  : >"$work/rate.noop"; : >"$work/rate.bidder"
  # The no-op server's rounds first, with no bidder running: a bidder left
  # idle still expires the bids of its last minute, every round, on the
  # same cores (it put 0.3-0.6 ms on the no-op's p99 at 50k req/s).
  kill "${bidders[@]}" 2>/dev/null || true
  wait "${bidders[@]}" 2>/dev/null || true
  for r in $(seq "$ROUNDS"); do
    read -r n50 n99 nrps nok <<<"$(at_rate "$noop_addr")"
    echo "$n50 $n99" >>"$work/rate.noop"
    echo "rate round $r at $RATE req/s: noop p50 ${n50} ms p99 ${n99} ms ($nrps req/s, success $nok)"
  done
  # Not the bidder of the throughput rounds: it held the last minute of
  # bids made at twice this rate or more, and expiring them (its reservation
  # TTL is 60 s) would be measured as latency at this rate. A fresh bidder,
  # warmed at the rate for longer than a hold lasts, is in the steady state
  # of a bidder serving this rate: as many holds expire as are made.
  RUST_LOG=warn start "$work/rate-bidder.out" "$BIN/bidder" serve --config "$work/config" \
    --state "$work/rate-state" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
    --public-url "$PUBLIC_URL" "${bidder_args[@]}"
  rate_addr=$(bid_addr "$work/rate-bidder.out")
  echo "warming a fresh bidder at $RATE req/s for $WARMUP with $CLIENT"
  if [ "$CLIENT" = paced ]; then
    target/release/paced "$rate_addr" "$minified" "$RATE" "${WARMUP%s}" "$CONNS" >/dev/null
  else
    oha -z "$WARMUP" -q "$RATE" -c "$CONNS" --no-tui --output-format json -m POST \
      -H 'Content-Type: application/json' -H 'x-openrtb-version: 2.6' -D "$minified" \
      "http://$rate_addr/openrtb2/bid" >/dev/null
  fi
  # The bidder's rounds back to back, so that it stays in that state.
  for r in $(seq "$ROUNDS"); do
    read -r b50 b99 brps bok <<<"$(at_rate "$rate_addr")"
    echo "$b50 $b99" >>"$work/rate.bidder"
    echo "rate round $r at $RATE req/s: bidder p50 ${b50} ms p99 ${b99} ms ($brps req/s, success $bok)"
  done
  col() { awk -v c="$1" '{print $c}' "$2" | median; }
  n50=$(col 1 "$work/rate.noop"); n99=$(col 2 "$work/rate.noop")
  b50=$(col 1 "$work/rate.bidder"); b99=$(col 2 "$work/rate.bidder")
  echo "median at $RATE req/s: noop p50 $n50 ms, p99 $n99 ms; bidder p50 $b50 ms, p99 $b99 ms; ratios p50 $(awk -v b="$b50" -v n="$n50" 'BEGIN {printf "%.2f", b/n}'), p99 $(awk -v b="$b99" -v n="$n99" 'BEGIN {printf "%.2f", b/n}')"
fi

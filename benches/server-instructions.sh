#!/usr/bin/env bash
# Instructions per request through the whole server, counted by callgrind:
# the no-op server (load.sh's baseline) and the bidder, each driven by wrk
# with the bench banner request on loopback. instructions.sh counts the bid
# alone (bid-loop calls it directly); this counts what a request costs the
# process around it too (hyper, tokio, the connection, the body, headers,
# reports), which load.sh's ratio pays and bid-loop cannot see. Counts do
# not move with the machine's noise, so later changes compare on any
# machine. User space only: the kernel's share (loopback I/O, a third of a
# loaded server's CPU) is not counted, and is about the same for both.
#
#   benches/server-instructions.sh
#   BIN=target/pgo/release benches/server-instructions.sh
#   DURATION=30s benches/server-instructions.sh
#
# Each server starts under callgrind with instrumentation off (start-up
# and config load are not counted), takes DURATION of wrk to warm up, then
# is counted over the next DURATION; the count over wrk's requests is one
# request's instructions. Requests still in flight when wrk stops (at most
# CONNS) are counted but not in wrk's total: a few in tens of thousands.
# The bidder signs URLs per bid (common.sh), on the load test's config of
# 1,000 line items, and must bid on every request.
#
# Installs valgrind and wrk from Debian if they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-15s}
CONNS=${CONNS:-4}
BIN=${BIN:-target/release}

. benches/common.sh
need valgrind
need wrk
if [ "$BIN" = target/release ]; then
  cargo build --release -q -p bidder -p benches
else
  cargo build --release -q -p benches --bin gen-config
fi

work=target/server-instructions
rm -rf "$work" && mkdir -p "$work"
target/release/gen-config 1000 "$work/config" >/dev/null
minify benches/src/banner-request.json >"$work/body.json"
post_lua "$work/body.json" >"$work/post.lua"

# Counts one server: $1 its name, the rest its command line. Prints the
# requests wrk sent while counting and leaves callgrind's file in
# $work/$1.cg.
measure() {
  local name=$1
  shift
  # A port of its own: the servers print their address only once they
  # listen, and valgrind takes a while to get there.
  local port
  port=$(free_port)
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/$name.cg" \
    "$@" "127.0.0.1:$port" >"$work/$name.out" 2>"$work/$name.err" &
  local pid=$!
  pids+=("$pid")
  # This runs in a command substitution's subshell: the script's own exit
  # trap (common.sh) never sees `pids` grow here, and a failure below left
  # the server running under valgrind. The subshell stops its own.
  trap "kill $pid 2>/dev/null || true" EXIT
  for _ in $(seq 300); do
    grep -q listening "$work/$name.out" 2>/dev/null && break
    sleep 0.2
  done
  grep -q listening "$work/$name.out" || { echo "$name did not start" >&2; cat "$work/$name.err" >&2; exit 1; }
  local url="http://127.0.0.1:$port/openrtb2/bid"
  if [ "$name" = bidder ]; then
    # Its first requests under valgrind may pass the request's tmax (its
    # code is cold, and instrumented as it is first run): a few tries.
    await_bid "127.0.0.1:$port" "$work/body.json"
    bid_answer "127.0.0.1:$port" "$work/body.json" "$work/answer.json"
  fi
  callgrind_control -i on "$pid" >/dev/null 2>&1
  wrk -t1 -c"$CONNS" -d"$DURATION" -s "$work/post.lua" "$url" >/dev/null
  callgrind_control -z "$pid" >/dev/null 2>&1
  wrk -t1 -c"$CONNS" -d"$DURATION" -s "$work/post.lua" "$url" >"$work/$name.wrk"
  callgrind_control -d "$pid" >/dev/null 2>&1
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  grep -E 'Non-2xx|Socket errors' "$work/$name.wrk" >&2 && { echo "$name: not every request answered as it should" >&2; exit 1; }
  awk '/requests in/ {print $1}' "$work/$name.wrk"
}

# The dump callgrind_control -d wrote (FILE.1: the file named at start gets
# what runs after it, nothing here).
dumped() { ls "$work/$1.cg".* | grep -v '\.cg$' | head -1; }
# Instructions in file $1: its summary line.
total() { awk '/^summary:/ {print $2}' "$1"; }
# Inclusive instructions of the function named $2 in file $1.
inclusive() {
  # awk reads to the end: leaving at the first match closed the pipe on
  # callgrind_annotate, whose SIGPIPE (141) under pipefail ended the script
  # without a word whenever the match came before its last write.
  callgrind_annotate --inclusive=yes "$1" 2>/dev/null |
    awk -v f="$2" '!found && index($0, f " [") {gsub(",", "", $1); print $1; found = 1}'
}

n_noop=$(measure noop "$BIN/noop-server")
n_bid=$(measure bidder "$BIN/bidder" serve --config "$work/config" --state "$work/state" \
  --public-url "$PUBLIC_URL" --admin-listen 127.0.0.1:0 --listen)
noop=$(dumped noop)
bidder=$(dumped bidder)
per() { awk -v a="$1" -v n="$2" 'BEGIN {printf "%d", a / n}'; }
noop_req=$(per "$(total "$noop")" "$n_noop")
bid_req=$(per "$(total "$bidder")" "$n_bid")
# A profile-guided build inlines the bid into its caller: no split then.
inner=$(inclusive "$bidder" bidder::app::App::bid_inner)
printf '%-44s %12s\n' "" instructions
printf '%-44s %12d\n' "no-op server, per request" "$noop_req"
printf '%-44s %12d\n' "bidder, per request" "$bid_req"
if [ -n "$inner" ]; then
  inner=$(per "$inner" "$n_bid")
  printf '%-44s %12d\n' "  of which the bid (App::bid_inner)" "$inner"
  printf '%-44s %12d\n' "  of which the rest (server, hyper, tokio)" "$((bid_req - inner))"
else
  echo "  (App::bid_inner is inlined in this build: no split of the bidder's count)"
fi
printf '%-44s %12.2f\n' "no-op / bidder" "$(awk -v a="$noop_req" -v b="$bid_req" 'BEGIN {print a / b}')"
echo "(requests counted: no-op $n_noop, bidder $n_bid; files in $work)"

# Sourced by the benches' scripts and scripts/pgo.sh: starting a server and
# writing the request the load generators send, config copies, the bid-loop
# to count.

# Bidders started here sign URLs as `--url-signatures auto` does after its
# soak (per bid, from their first upkeep, a second in): the steady state,
# not a process's first hour. Builds before that default ignore the
# variable and sign per URL. Set it to measure the first hour (3600).
export BIDDER_URL_SIGNATURES_SOAK_SECS=${BIDDER_URL_SIGNATURES_SOAK_SECS:-0}

# The public URL bidders started here write into their notice and tracking
# URLs: https, as in production. The bench requests' slots are secure
# (`imp.secure: 1`), where a bid's markup must be all https: on the http
# address of the bound port they would get no bid.
PUBLIC_URL=https://bidder.bench.example

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# Start a server that prints "...: ... bid=ADDR" or "noop listening: ADDR" and
# wait for that line; its pid joins `pids`, stopped on exit.
start() {
  local out=$1; shift
  "$@" >"$out" 2>"$out.err" &
  pids+=($!)
  for _ in $(seq 100); do
    grep -q listening "$out" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "server did not start: $*" >&2; cat "$out.err" >&2; exit 1
}

# Installs Debian package $2 (by default $1) when command $1 is missing.
need() { command -v "$1" >/dev/null || (apt-get update -qq && apt-get install -y -qq "${2:-$1}") >/dev/null; }

# The bid port's address a bidder started by `start` printed to file $1.
bid_addr() { sed -n 's/.*bid=\([^ ]*\).*/\1/p' "$1"; }

# A process's user + system CPU time so far, in clock ticks: /proc/PID/stat
# fields 14 and 15, counted after the name in field 2, which ends at the
# last `)` and may hold spaces (it is the binary's file name).
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

# The server's CPU time per request in µs: $1 clock ticks over the requests
# of wrk's output in file $2. `nan` when none was answered (the build
# broke), rather than a division by zero, which gawk makes fatal under
# `set -e`.
us_per_request() {
  awk -v t="$1" -v hz="$(getconf CLK_TCK)" \
    '/requests in/ {if ($1 > 0) printf "%.1f", t / hz * 1e6 / $1; else printf "nan"}' "$2"
}

# A JSON file on one line, minified as exchanges send it, no newline after.
minify() {
  python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1])), separators=(",", ":")), end="")' "$1"
}

# The wrk script posting the (minified) body in file $1 as an OpenRTB 2.6 bid request.
post_lua() {
  echo 'wrk.method = "POST"'
  echo 'wrk.headers["Content-Type"] = "application/json"'
  echo 'wrk.headers["x-openrtb-version"] = "2.6"'
  printf 'wrk.body = [==[%s]==]\n' "$(cat "$1")"
}

# Config file $1 copied to $2 with its orders flying from 30 days ago to a
# year ahead: the test configs' flights are fixed dates (their tests run on
# a fixed clock), and a server on the wall clock past them bids on nothing.
flying() {
  local start end
  start=$(date -u -d '30 days ago' +%F)
  end=$(date -u -d '365 days' +%F)
  sed -E "s/flight: \{ start: [0-9-]+, end: [0-9-]+ \}/flight: { start: $start, end: $end }/" "$1" >"$2"
  if grep -q 'flight:' "$2" && ! grep -q "end: $end }" "$2"; then
    echo "$1: a flight not written as { start: ..., end: ... }: update flying()" >&2
    exit 1
  fi
}

# The bench's video advertiser (testdata/config/video/tube.yaml) written to
# $1, flying (above), with budgets no run spends: its own (100 a day at a
# CPM of 10) are all held by reservations within a second of wrk, and what
# follows would be no-bids.
video_advertiser() {
  flying testdata/config/video/tube.yaml "$1"
  sed -i -e 's/budget: 1000\.00$/budget: 100000000.00/' -e 's/daily: 100\.00 }$/daily: 100000000.00 }/' "$1"
  grep -q 'daily: 100000000.00 }' "$1" \
    || { echo "testdata/config/video/tube.yaml changed: update video_advertiser's budgets" >&2; exit 1; }
}

# The bid-loop to count: $BIN's when BIN is set (scripts/pgo.sh builds
# target/pgo/release), else target/release's, built here.
bid_loop() {
  if [ -n "${BIN:-}" ]; then
    [ -x "$BIN/bid-loop" ] || { echo "no $BIN/bid-loop (scripts/pgo.sh builds target/pgo/release)" >&2; exit 1; }
    echo "$BIN/bid-loop"
  else
    cargo build --release -q -p benches --bin bid-loop
    echo target/release/bid-loop
  fi
}

# The status the server at $1 answers the bid request in file $2 with (000
# when it cannot be reached), sent as wrk and oha send it.
bid_status() {
  curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -H 'x-openrtb-version: 2.6' --data-binary @"$2" "http://$1/openrtb2/bid" || true
}

# The bidder at $1's answer to the bid request in file $2, written to file
# $3: it must be a bid (200, a body), or the script stops saying what came.
bid_answer() {
  local s
  s=$(curl -sS -o "$3" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -H 'x-openrtb-version: 2.6' --data-binary @"$2" "http://$1/openrtb2/bid") ||
    { echo "the bidder at $1 could not be asked for its answer" >&2; exit 1; }
  [ "$s" = 200 ] && [ -s "$3" ] ||
    { echo "the bidder at $1 answered $s to $2, not a bid" >&2; exit 1; }
}

# Waits up to 5 s for the server at $1 to bid (200) on the request in file
# $2, e.g. a bidder on Redis state before its first leases; exits if it
# never does.
await_bid() {
  local s
  for _ in $(seq 50); do
    s=$(bid_status "$1" "$2")
    [ "$s" = 200 ] && return 0
    sleep 0.1
  done
  echo "the bidder at $1 does not bid on $2 ($s)" >&2
  exit 1
}

# Instructions callgrind counts inside the functions matching $1 (a
# --toggle-collect pattern) in one run of the command after it: its
# "Collected" total.
callgrind_count() {
  local toggle=$1
  shift
  valgrind --tool=callgrind --toggle-collect="$toggle" --callgrind-out-file=/dev/null \
    "$@" 2>&1 >/dev/null |
    awk '/Collected/ { print $NF }'
}

# A loopback port nothing listens on now (for servers that print no address).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A redis-server on a free loopback port with its files in $1 and the
# options after it, one of `pids`; sets `redis_port` once it answers.
start_redis() {
  local dir=$1
  shift
  redis_port=$(free_port)
  mkdir -p "$dir"
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --dir "$dir" --daemonize no \
    --loglevel warning "$@" >"$dir/log" 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "redis-server did not start" >&2
  cat "$dir/log" >&2
  exit 1
}

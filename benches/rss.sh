#!/usr/bin/env bash
# Resident memory of `bidder serve` with a generated config and audience
# store: RSS after loading, and after a short wrk run.
#
#   benches/rss.sh                    # 10,000 line items, 1,000,000 users
#   LINE_ITEMS=100000 USERS=2000000 benches/rss.sh
set -euo pipefail
cd "$(dirname "$0")/.."
LINE_ITEMS=${LINE_ITEMS:-10000}
USERS=${USERS:-1000000}
cargo build --release -q -p bidder -p benches
work=target/rss
rm -rf "$work" && mkdir -p "$work"
target/release/gen-config "$LINE_ITEMS" "$work/config" "$USERS" "$work/data" >/dev/null
start=$(date +%s.%N)
RUST_LOG=warn target/release/bidder serve --config "$work/config" --data "$work/data" \
  --public-url https://bidder.bench.example \
  --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 >"$work/out" 2>"$work/err" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 600); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.1; done
grep -q listening "$work/out" || { cat "$work/err" >&2; exit 1; }
ready=$(date +%s.%N)
rss() { awk '/VmRSS/ {printf "%.1f MB", $2/1024}' "/proc/$pid/status"; }
echo "line items: $LINE_ITEMS, users: $USERS, load time $(awk -v a="$start" -v b="$ready" 'BEGIN {printf "%.1f s", b-a}')"
echo "RSS after load: $(rss)"
if command -v wrk >/dev/null; then
  bid_addr=$(sed -n 's/.*bid=\([^ ]*\).*/\1/p' "$work/out")
  lua="$work/post.lua"
  {
    echo 'wrk.method = "POST"'
    printf 'wrk.body = [==[%s]==]\n' "$(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1])), separators=(",", ":")))' benches/src/banner-request.json)"
  } >"$lua"
  wrk -t1 -c32 -d5s -s "$lua" "http://$bid_addr/openrtb2/bid" | grep Requests/sec
  echo "RSS after 5 s of load: $(rss)"
fi

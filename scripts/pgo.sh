#!/usr/bin/env bash
# The release build the image ships: the release profile, optimised with a
# profile of the bidder's own run (profile-guided optimisation, PGO).
#
#   scripts/pgo.sh          # → target/pgo/release/bidder (and noop-server,
#                           #   bid-loop: BIN=target/pgo/release for
#                           #   load.sh, instructions.sh, cachelines.sh)
#
# Why: LLVM inlines and lays out code by how often each path ran: the
# paths that run inline more and fall through on their common branches,
# the rest moves out of the way. In the server that took a fifth to a
# quarter off the CPU time per bid request, banner and video alike
# (benches/compare.sh, 1,000 line items; README, "Profile-guided build");
# callgrind counts a tenth fewer instructions per bid and a sixth fewer
# per parse.
#
# How, on the same toolchain as the build (its own llvm-profdata, from
# rustup's llvm-tools, which this installs if missing):
#   1. an instrumented build of bidder and noop-server (target/pgo/gen);
#   2. a training run on loopback, each server writing its counts on exit:
#      - the bench config of 1,000 line items with a video advertiser: wrk
#        posts the bench banner request (20 s) and the video one (10 s), then
#        scripts/pgo_train.py sends more and calls the notices, tracking and
#        event URLs of the answers, and the admin port's probes and metrics;
#      - the open test advertiser (testdata/config/open), which bids on every
#        kind of slot: pgo_train.py posts the 84 OpenRTB requests of
#        testdata/openrtb (banner, video, audio, native, DOOH, no-bids);
#      - when redis-server is installed, a bidder on Redis state (8 s of wrk
#        and notices), so that Redis replicas are not built as if their
#        code never ran;
#      - the no-op server under wrk, answering 204 and, for load.sh's
#        ceiling, the bidder's answer: benches/load.sh compares like with
#        like;
#   3. the counts merged, and the release build again with them
#      (target/pgo/release).
# About twice a release build's time: 20 minutes on a 2-core machine.
#
# Paths the training does not run (config reloads, the admin API, audience
# uploads, user syncs and advertisers' pixels, per-exchange bid routes,
# errors of shared state) are laid out as cold: correct, a little
# slower than in a plain build. Timing decides some counts, so two runs do
# not give the same binary.
#
# Loopback only. Installs wrk from Debian if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/target/pgo
profiles=$out/profiles
work=$out/train
public=https://bidder.pgo.example

sysroot=$(rustc --print sysroot)
host=$(rustc -vV | sed -n 's/^host: //p')
profdata=$sysroot/lib/rustlib/$host/bin/llvm-profdata
# The LLVM of another version (Debian's llvm-profdata) cannot read this
# compiler's counts.
[ -x "$profdata" ] || rustup component add llvm-tools
[ -x "$profdata" ] || { echo "pgo: no $profdata (rustup component add llvm-tools)" >&2; exit 1; }
if ! command -v wrk >/dev/null; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq && $sudo apt-get install -y -qq wrk >/dev/null || true
fi
for tool in python3 curl wrk; do
  command -v $tool >/dev/null || { echo "scripts/pgo.sh needs $tool" >&2; exit 1; }
done

rm -rf "$profiles" "$work"
mkdir -p "$profiles" "$work"

# Only the servers' counts go into the profile. Everything else built
# instrumented writes its counts where they are thrown away: build scripts
# and proc macros while cargo builds (RUSTFLAGS reaches them too), and
# gen-config.
export LLVM_PROFILE_FILE=$work/discard-%p.profraw

echo "pgo: instrumented build" >&2
RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-generate=$profiles" CARGO_TARGET_DIR=$out/gen \
  cargo build --release --locked -q -p bidder -p benches --bin bidder --bin noop-server --bin gen-config
gen=$out/gen/release

. benches/common.sh
counted() { LLVM_PROFILE_FILE="$profiles/$1-%p.profraw" RUST_LOG=warn start "$work/$1.out" "${@:2}"; }
# Stops the last server started, letting it write its counts.
stop() {
  kill -TERM "${pids[-1]}"
  wait "${pids[-1]}" || true
  unset 'pids[-1]'
}
# The bidder under name $1 on config $2 and state $3, further flags after;
# sets `addr` and `admin`.
bidder() {
  counted "$1" "$gen/bidder" serve --config "$2" --state "$3" --drain-secs 0 \
    --public-url "$public" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 "${@:4}"
  addr=$(sed -n 's/.*bid=\([^ ]*\).*/\1/p' "$work/$1.out")
  admin=$(sed -n 's/.*admin=\([^ ]*\).*/\1/p' "$work/$1.out")
}
# wrk on server $1 for $2 with body $3; $4 is the status every answer must
# have, checked before and after (wrk counts a 204 as a success, and
# training a bid path on no-bids would build it as if bids never happened).
load() {
  local s
  s=$(bid_status "$1" "$work/$3.json")
  [ "$s" = "$4" ] || { echo "pgo: $3 answered $s before wrk, not $4" >&2; exit 1; }
  wrk -t1 -c32 -d"$2" -s "$work/$3.lua" "http://$1/openrtb2/bid" >"$work/wrk.txt"
  awk '/Requests\/sec/ {print "pgo:   " $0}' "$work/wrk.txt" >&2
  ! grep -E 'Non-2xx' "$work/wrk.txt" >&2 || { echo "pgo: errors under wrk" >&2; exit 1; }
  s=$(bid_status "$1" "$work/$3.json")
  [ "$s" = "$4" ] || { echo "pgo: $3 answered $s after wrk, not $4" >&2; exit 1; }
}

for kind in banner video; do
  minify "benches/src/$kind-request.json" >"$work/$kind.json"
  post_lua "$work/$kind.json" >"$work/$kind.lua"
done
"$gen/gen-config" 1000 "$work/bench-config" >/dev/null
video_advertiser "$work/bench-config/tube.yaml"
mkdir -p "$work/open-config"
for f in testdata/config/open/*.yaml; do flying "$f" "$work/open-config/${f##*/}"; done
bodies=("$work/banner.json" "$work/video.json")
# The runs whose counts make the profile, as each one starts.
trained=()

echo "pgo: training on the bench config" >&2
trained+=(bench)
bidder bench "$work/bench-config" "$work/bench-state"
load "$addr" 20s banner 200
load "$addr" 10s video 200
# Its answer, for the no-op server that answers it (load.sh's ceiling).
bid_answer "$addr" "$work/banner.json" "$work/answer.json"
python3 scripts/pgo_train.py --must-bid "$addr" "$admin" "$public" 200 "${bodies[@]}" >&2
stop

echo "pgo: training on the OpenRTB corpus" >&2
trained+=(open)
# Signing per URL, as `--url-signatures auto` does for a process's first
# hour (the bench config's run signs per bid, as after it): both trained.
bidder open "$work/open-config" "$work/open-state" --url-signatures-soak-secs 3600
python3 scripts/pgo_train.py "$addr" "$admin" "$public" 20 testdata/openrtb/requests/*.json "${bodies[@]}" >&2
stop

if command -v redis-server >/dev/null; then
  echo "pgo: training on Redis state" >&2
  start_redis "$work/redis" --appendonly no
  trained+=(redis)
  BIDDER_NOTICE_SECRET=pgo-training-notice-secret-0123456789abcdef \
    bidder redis "$work/bench-config" "redis://127.0.0.1:$redis_port/" --journal "$work/redis-journal"
  # Leases come within moments of the first bids.
  await_bid "$addr" "$work/banner.json"
  load "$addr" 8s banner 200
  python3 scripts/pgo_train.py --must-bid "$addr" "$admin" "$public" 50 "${bodies[@]}" >&2
  stop
  stop # redis-server
fi

echo "pgo: training the no-op server" >&2
trained+=(noop)
counted noop "$gen/noop-server" 127.0.0.1:0
load "$(sed -n 's/noop listening: //p' "$work/noop.out")" 10s banner 204
stop
trained+=(answer)
counted answer "$gen/noop-server" 127.0.0.1:0 "$work/answer.json"
load "$(sed -n 's/noop listening: //p' "$work/answer.out")" 5s banner 200
stop

# Each server's counts, written when it stopped: a server killed before
# its exit handlers ran leaves an empty file, which merges without a word.
files=()
for name in "${trained[@]}"; do
  for f in "$profiles/$name"-*.profraw; do
    [ -s "$f" ] || { echo "pgo: no counts from the $name run ($f)" >&2; exit 1; }
    files+=("$f")
  done
done
"$profdata" merge -o "$out/merged.profdata" "${files[@]}"
echo "pgo: optimised build" >&2
# LLVM warns that the profile of `Activity::idle_for`'s closure is partly
# ignored: an async loop that never returns, as expected. bid-loop (for
# instructions.sh and cachelines.sh) is built with the profile but never
# ran in training: the bid path's counts in it are the servers'.
RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-use=$out/merged.profdata" CARGO_TARGET_DIR=$out \
  cargo build --release --locked -q -p bidder -p benches --bin bidder --bin noop-server --bin bid-loop
echo "pgo: $out/release/bidder" >&2

#!/usr/bin/env bash
# Wall time per bid of two `bid-loop` builds on this machine's own CPU,
# where instructions.sh counts under valgrind (whose software SHA-256 stands
# in for the CPU's SHA extensions, and which sees no cache misses).
#
#   benches/native.sh OLD_BID_LOOP NEW_BID_LOOP [KIND [per-bid|per-url]]
#
# KIND is banner (the default) or video. Each round runs each build twice,
# with N1 and N2 bids (one process each, config load included; 1,000 and
# 81,000, or 9,500 for video); one bid's time is the difference over
# N2 - N1. Over ROUNDS rounds, interleaved so that both builds see the same
# hour of a shared machine, the minimum of each run length is kept:
# interference only ever adds time, so the fastest run is the closest to the
# code's own cost. Works with any bid-loop that takes
# `KIND N [per-bid]`, older ones that print no timing of their own included
# (`per-url` needs a build from the `auto` default on; without a fourth
# argument every build signs per URL).
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 OLD_BID_LOOP NEW_BID_LOOP [banner|video [per-bid|per-url]]" >&2
  exit 2
fi
old=$1 new=$2 kind=${3:-banner} mode=${4:-}
# Long runs, so the config load's own noise spreads thin; but the bench
# video line item's budget holds 10,000 bids (reservations never expire in
# the loop), after which the loop would time no-bids.
N1=${N1:-1000}
if [ "$kind" = video ]; then N2=${N2:-9500}; else N2=${N2:-81000}; fi
ROUNDS=${ROUNDS:-8}

run() { # bin n -> nanoseconds of one run
  local s
  s=$(date +%s%N)
  "$1" "$kind" "$2" $mode >/dev/null 2>&1
  echo $(($(date +%s%N) - s))
}

declare -A best
for _ in $(seq "$ROUNDS"); do
  for who in old new; do
    bin=$old
    [ "$who" = new ] && bin=$new
    for n in "$N1" "$N2"; do
      t=$(run "$bin" "$n")
      k="$who-$n"
      if [ -z "${best[$k]:-}" ] || [ "$t" -lt "${best[$k]}" ]; then best[$k]=$t; fi
    done
  done
done
per() { echo $(((best[$1-$N2] - best[$1-$N1]) / (N2 - N1))); }
o=$(per old) n=$(per new)
echo "$kind ${mode:-per-url}: old $o ns per bid, new $n ns per bid, new/old $(awk -v o="$o" -v n="$n" 'BEGIN {printf "%.2f", n/o}') (min of $ROUNDS rounds)"

#!/usr/bin/env bash
# Time to parse the bench banner request (benches/src/banner-request.json,
# minified as exchanges send it), the median over interleaved rounds, next
# to serde's derive reading the same model in the same rounds.
#
#   benches/parse.sh                            # target/release's bid-loop
#   BIN=target/pgo/release benches/parse.sh     # the profile-guided build
#
# Each round runs `bid-loop parse N` and `bid-loop parse-serde N` once each
# (one process per run: it times its own loop of N parses, the config load
# and process start excluded), which one first swapped every round, so both
# see the same hour of a shared machine. The median of ROUNDS runs is the
# figure issue 16 sets a bound for (3.5 µs); the fastest run is printed
# beside it, the closest to the code's own cost where interference only
# ever adds time.
# Wall-clock times are the machine's: compare the two readers within a
# run, and builds with `instructions.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-50000}
ROUNDS=${ROUNDS:-15}

. benches/common.sh
bin=$(bid_loop)

[ "$ROUNDS" -ge 1 ] || { echo "ROUNDS must be at least 1" >&2; exit 2; }

# Nanoseconds per parse of one run, as bid-loop prints it; a bid-loop that
# fails or prints no timing (one built before it timed parses) stops the
# script with what it said.
ns() {
  local err t
  err=$("$bin" "$1" "$N" 2>&1 >/dev/null) || { echo "$bin $1: $err" >&2; exit 1; }
  t=$(awk '/ns per parse/ { print $1 }' <<<"$err")
  [[ "$t" =~ ^[0-9]+$ ]] || { echo "$bin $1 printed no timing: $err" >&2; exit 1; }
  echo "$t"
}

ours=() serde=()
for r in $(seq "$ROUNDS"); do
  # Each reader goes first every other round.
  if ((r % 2)); then
    ours+=("$(ns parse)")
    serde+=("$(ns parse-serde)")
  else
    serde+=("$(ns parse-serde)")
    ours+=("$(ns parse)")
  fi
done

# "median fastest" of the numbers given; the median of an even count is the
# mean of the middle two.
stats() {
  printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END {
    m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%.0f %d", m, v[1] }'
}
read -r om of <<<"$(stats "${ours[@]}")"
read -r sm sf <<<"$(stats "${serde[@]}")"
echo "rounds: $ROUNDS of $N parses each ($bin)"
echo "reader      ns per parse: ${ours[*]}"
echo "serde model ns per parse: ${serde[*]}"
printf '%-12s %8s %8s\n' '' median fastest
printf '%-12s %8d %8d\n' reader "$om" "$of" 'serde model' "$sm" "$sf"
awk -v o="$om" -v s="$sm" 'BEGIN { printf "reader / serde model, medians: %.2f\n", o / s }'

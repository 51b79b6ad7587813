#!/usr/bin/env bash
# Instructions per bid, counted by callgrind: machine noise does not move
# them, so later changes compare on any machine.
#
#   benches/instructions.sh            # banner and video bids, and parsing
#   BIN=target/pgo/release benches/instructions.sh   # the profile-guided build
#
# For each kind, `bid-loop` runs on the bench config of 1,000 line items
# twice, with N1 and N2 bids after one warm-up bid; the difference of the
# two counts over N2 - N1 is one bid's instructions. Only the loop's steps
# are counted (callgrind's --toggle-collect on bid-loop's one_bid and
# one_parse): the config load before them varies by a few million
# instructions from run to run (hash seeds), which over 1,000 bids was
# noise of a few thousand per bid.
#   banner  the bench banner request (benches/src/banner-request.json, 2.6 KB
#           pretty, minified when sent): parse, context, auction, ledger
#           reservation, response
#   video   the same with a secure pre-roll slot (video-request.json): a bid
#           with VAST and a companion
#   parse   parsing the banner request alone
# banner and video are counted twice: URLs signed per bid (what the default,
# `--url-signatures auto`, writes after its soak) and per URL (its first
# hour, and `per-url`: one HMAC-SHA256 each; valgrind runs SHA-256 in
# software, not on the CPU's SHA extensions).
#
# Installs valgrind from Debian if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

N1=${N1:-100}
N2=${N2:-1100}

. benches/common.sh
need valgrind
bin=$(bid_loop)

count() { callgrind_count 'bid_loop::one_*' "$bin" "$@"; }

printf '%-16s %14s\n' kind instructions/bid
for run in "banner per-bid" "banner per-url" "video per-bid" "video per-url" parse; do
  set -- $run
  a=$(count "$1" "$N1" ${2:-})
  b=$(count "$1" "$N2" ${2:-})
  printf '%-16s %14d\n' "$run" $(( (b - a) / (N2 - N1) ))
done

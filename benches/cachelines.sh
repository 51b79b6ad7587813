#!/usr/bin/env bash
# Cache lines a bid fetches from beyond L2 when its caches are cold, counted
# by cachegrind: like instructions.sh, the count does not move with machine
# noise, so later changes compare on any machine.
#
#   benches/cachelines.sh          # banner and video bids
#   BIN=target/pgo/release benches/cachelines.sh   # the profile-guided build
#
# In the server a bid runs with its code and data mostly out of L2 (the
# kernel's loopback work and the other requests run in between); in
# bid-loop, `COLD_MB=1` writes over 1 MB before each bid to the same
# effect. Each kind runs under cachegrind (L1 32 KB each, L2 modelled as
# its last level, 512 KB as on the machines this was measured on) with N1
# and N2 bids; the difference over N2 - N1 is one bid's lines. Code lines
# (I) are what the bid's code size costs; data lines (D) exclude the
# eviction's own, which cachegrind puts in bid_loop::main.
#
# Installs valgrind from Debian if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

N1=${N1:-300}
N2=${N2:-600}

. benches/common.sh
need valgrind
bin=$(bid_loop)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Writes cachegrind's counts of one run to $work/KIND.N.
run() {
  COLD_MB=1 valgrind --tool=cachegrind --cache-sim=yes \
    --I1=32768,8,64 --D1=32768,8,64 --LL=524288,8,64 \
    --cachegrind-out-file="$work/$1.$2" "$bin" "$1" "$2" >/dev/null 2>&1
}

printf '%-8s %12s %12s\n' kind code-lines data-lines
for kind in banner video; do
  run "$kind" "$N1" &
  run "$kind" "$N2" &
  wait "$!"
  wait
  cg_diff "$work/$kind.$N1" "$work/$kind.$N2" >"$work/$kind.diff" 2>/dev/null
  # Code lines: the whole program's; data lines: all but the eviction
  # loop's, which sits in bid_loop::main.
  cg_annotate --show=ILmr,DLmr,DLmw --threshold=0 --auto=no "$work/$kind.diff" 2>/dev/null |
    sed -E 's/,//g; s/\([^)]*\)//g' |
    awk -v n=$((N2 - N1)) -v kind="$kind" '
      /PROGRAM TOTALS/ { il = $1; dr = $2; dw = $3 }
      /:bid_loop::main$/ { ev += $2 + $3 }
      END { printf "%-8s %12d %12d\n", kind, il / n, (dr + dw - ev) / n }'
done

#!/usr/bin/env bash
# Instructions to read the bench banner request: our reader beside serde_json,
# sonic-rs and simd-json (the SIMD parsers), each validating only, building a
# document tree or tape, or (ours) the typed model. It answers whether swapping the parser
# could take the bid's instruction count where issue 16 wants it.
#
#   benches/parsers.sh
#
# Builds benches/parsers (outside the workspace: CI does not build sonic-rs)
# twice, as the bidder is built and with AVX2 enabled at compile time, which
# sonic-rs needs for its SIMD (simd-json picks its own at run time). Counted as instructions.sh counts: two runs of
# N1 and N2 reads, the difference over N2 - N1.
set -euo pipefail
cd "$(dirname "$0")/.."

N1=${N1:-100}
N2=${N2:-1100}

. benches/common.sh
need valgrind

cargo build --release -q --manifest-path benches/parsers/Cargo.toml --target-dir target/parsers
RUSTFLAGS="-C target-feature=+avx2,+pclmulqdq,+bmi2" cargo build --release -q \
  --manifest-path benches/parsers/Cargo.toml --target-dir target/parsers-avx2

count() { callgrind_count 'parsers::one_*' "$@"; }

printf '%-12s %14s %14s\n' kind instructions 'with AVX2'
for kind in ours ours-serde serde-skip sonic-skip serde-value sonic-value simd-tape simd-value copy; do
  row=()
  for dir in target/parsers target/parsers-avx2; do
    a=$(count "$dir/release/parsers" "$kind" "$N1")
    b=$(count "$dir/release/parsers" "$kind" "$N2")
    row+=($(( (b - a) / (N2 - N1) )))
  done
  printf '%-12s %14d %14d\n' "$kind" "${row[@]}"
done

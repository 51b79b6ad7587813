#!/usr/bin/env bash
# Fuzzes the parsers that read untrusted input for a fixed time.
#
#   scripts/fuzz.sh [SECONDS]      # default 600 (10 minutes)
#
# cargo-fuzz needs nightly and CI has stable only, so the fuzz targets are
# proptest properties in the `fuzz` integration tests of seven crates:
#
#   openrtb/tests/fuzz.rs    BidRequest parser + validate, BidResponse reader
#   bidder/tests/fuzz.rs     notice queries, clearing prices, TCF/GPP/USP
#   config/tests/fuzz.rs     money, dates, RFC 3339 timestamps, YAML loader
#   creatives/tests/fuzz.rs  Native request reader, fit and response
#   pricecrypt/tests/fuzz.rs encrypted prices
#   reports/tests/fuzz.rs    event journal lines, damaged aggregates
#   predict/tests/fuzz.rs    model files (damaged, re-signed), compact features
#
# The normal test run does 64 to 256 cases of each. This script runs
# the same properties (the tests in modules named `*properties`) round after
# round in release mode, each run with a fresh PROPTEST_RNG_SEED and a case
# count (PROPTEST_CASES) sized so that one run takes a few seconds, until the
# time is up. At the end it prints the cases run per property and every
# failure with the input proptest shrank it to, and exits 1 if there was one.
#
# The build is not counted in SECONDS. Each run is sized from the speed of
# the previous ones to end before the time is up; a run that fails keeps
# shrinking its input for up to 20 s, so a failure can overrun a little.
set -uo pipefail # no -e: a failing run is reported, not a reason to stop mid-way
cd "$(dirname "$0")/.."
root=$PWD

# EPOCHREALTIME (bash 5) times the runs to the microsecond.
if [[ -z ${EPOCHREALTIME:-} ]]; then
  echo "$0 needs bash 5 or later" >&2
  exit 2
fi

duration=${1:-600}
if ! [[ $duration =~ ^[0-9]+$ ]] || ((duration == 0)); then
  echo "usage: $0 [SECONDS]   (default 600)" >&2
  exit 2
fi

# Release speed, but with overflow checks and debug assertions on: an integer
# overflow is a bug the debug-build tests would panic on, and fuzzing without
# the checks would let it wrap silently. A target directory of its own keeps
# these settings from invalidating the normal release build.
export CARGO_TARGET_DIR=$root/target/fuzz
export CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true
export CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true
# Not the release profile's whole-program LTO: it would link each of the
# seven fuzz executables as one unit (minutes each), for runs that gain
# little from it.
export CARGO_PROFILE_RELEASE_LTO=false
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
packages=(ortb bidder config creatives pricecrypt reports predict)

# Shrinking a failure is bounded so the report comes in reasonable time.
export PROPTEST_MAX_SHRINK_TIME=20000
# Runs two properties at a time: CI machines have two cores. FUZZ_JOBS
# changes that.
jobs=${FUZZ_JOBS:-2}

run_dir=$CARGO_TARGET_DIR/fuzz-runs/$(date +%Y%m%d-%H%M%S)
mkdir -p "$run_dir"

now_us() { local t=${EPOCHREALTIME//[.,]/}; echo "$t"; }

# ---------------------------------------------------------------- build
echo "fuzz: building the fuzz tests (release, overflow checks on) ..."
build_start=$SECONDS
pkg_args=()
for p in "${packages[@]}"; do pkg_args+=(-p "$p"); done
if ! cargo test --release --locked "${pkg_args[@]}" --test fuzz --no-run \
  --message-format=json-render-diagnostics >"$run_dir/build.json"; then
  echo "fuzz: the build failed" >&2
  exit 1
fi
build_secs=$((SECONDS - build_start))

# Each test executable and the package directory to run it in (cargo runs
# tests there, and proptest finds the source file to save failures next to
# from there).
declare -A exe_of dir_of
while IFS= read -r line; do
  exe=$(sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' <<<"$line")
  src=$(sed -n 's/.*"src_path":"\([^"]*\)".*/\1/p' <<<"$line")
  [[ -n $exe && $src == */tests/fuzz.rs ]] || continue
  dir=${src%/tests/fuzz.rs}
  key=$(basename "$dir")
  exe_of[$key]=$exe
  dir_of[$key]=$dir
done < <(grep '"reason":"compiler-artifact"' "$run_dir/build.json")
if ((${#exe_of[@]} != ${#packages[@]})); then
  echo "fuzz: expected ${#packages[@]} fuzz test executables, found ${#exe_of[@]}" >&2
  exit 1
fi

# Every property: "crate-dir/test name".
props=()
for key in $(printf '%s\n' "${!exe_of[@]}" | sort); do
  while IFS= read -r name; do
    props+=("$key/$name")
  done < <("${exe_of[$key]}" --list 2>/dev/null | sed -n 's/^\(.*properties::[^:]*\): test$/\1/p')
done
if ((${#props[@]} == 0)); then
  echo "fuzz: no properties found" >&2
  exit 1
fi

# ---------------------------------------------------------------- rounds
# Per property: cases for its next run, cases run so far, runs so far.
# The last successful run's cases and time size the next one.
declare -A next total runs last_cases last_us
for p in "${props[@]}"; do next[$p]=32 total[$p]=0 runs[$p]=0 last_cases[$p]=0 last_us[$p]=0; done
failures=()
crashed=0

# Each run should take about this long (µs): short enough that the rounds
# go round all properties several times, long enough to dwarf start-up.
slice_us=$((duration * 1000000 * jobs / ${#props[@]} / 5))
((slice_us > 20000000)) && slice_us=20000000
((slice_us < 1000000)) && slice_us=1000000

# Runs are sized to end before the deadline, so none is ever cut off at
# it; one still going after ten slices (plus time to shrink a failure) is
# stuck on an input, which is a failure too (a hang), reported with the
# input it was on.
hang_s=$((slice_us * 10 / 1000000 + 60))

deadline_us=$(($(now_us) + duration * 1000000))

# One run of one property in the background; its outcome goes to a file
# (a background job cannot set the caller's variables), and the pid of its
# `timeout` to another, so that an interrupt can stop it.
run_one() {
  local p=$1 cases=$2 slot=$3
  local key=${p%%/*} name=${p#*/}
  local seed out start pid status
  seed=$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')
  out=$run_dir/slot$slot
  rm -rf "$out.last" && mkdir -p "$out.last"
  start=$(now_us)
  (
    cd "${dir_of[$key]}" &&
      exec env PROPTEST_CASES="$cases" PROPTEST_RNG_SEED="$seed" FUZZ_LAST_INPUT_DIR="$out.last" \
        timeout -k 5 "$hang_s" \
        "${exe_of[$key]}" --exact "$name" --test-threads=1 >"$out.log" 2>&1
  ) &
  pid=$!
  echo "$pid" >"$out.pid"
  wait "$pid"
  status=$?
  printf '%s\n%s\n%s\n%s\n' "$status" "$(($(now_us) - start))" "$seed" "$cases" >"$out.result"
}

report_failure() {
  local p=$1 slot=$2 status=$3 seed=$4 cases=$5
  local key=${p%%/*} name=${p#*/} keep
  keep=$run_dir/failure-$((${#failures[@]} + 1))
  cp "$run_dir/slot$slot.log" "$keep.log"
  cp -r "$run_dir/slot$slot.last" "$keep.last-input"
  {
    echo "FAILED: $key $name (exit status $status)"
    echo "  reproduce: (cd ${dir_of[$key]#"$root"/} && PROPTEST_CASES=$cases PROPTEST_RNG_SEED=$seed \\"
    echo "    ${exe_of[$key]} --exact '$name')"
    echo "  full log: ${keep#"$root"/}.log"
    echo "  --- test output (long lines cut at 1000 characters) ---"
    # proptest's message and minimal input in; libtest's boilerplate,
    # proptest's notes on where it saves failures and any backtrace out
    # (the full log has them).
    sed '/^stack backtrace:/,$d' "$keep.log" |
      grep -v -e '^running 1 test' -e '^test result:' -e '^failures:$' -e "^    $name\$" \
        -e '^$' -e '^proptest: ' -e '^cc [0-9a-f]*$' | cut -c1-1000 | head -n 40 | sed 's/^/  | /'
    if ((status != 101)); then
      # Not a test failure but a crash (a stack overflow aborts the
      # process) or a hang: proptest could not print the input, the test
      # wrote it before each case.
      if ((status == 124 || status == 137)); then
        echo "  still running after ${hang_s} s: a hang; the input it was on:"
      else
        echo "  the process died (signal $((status > 128 ? status - 128 : 0))); the input it was on:"
      fi
      for f in "$keep.last-input"/*; do
        [[ -e $f ]] || continue
        echo "  $f ($(wc -c <"$f") bytes): $(head -c 1000 "$f")"
      done
    fi
  } >"$keep.txt"
  failures+=("$keep.txt")
}

interrupted=0
trap 'interrupted=1' INT TERM

round=0
while ((interrupted == 0)) && (($(now_us) < deadline_us)) && ((${#failures[@]} == 0)); do
  round=$((round + 1))
  i=0
  while ((i < ${#props[@]})) && ((interrupted == 0)) && ((${#failures[@]} == 0)); do
    remaining_us=$((deadline_us - $(now_us)))
    ((remaining_us > 0)) || break
    # Start up to $jobs runs, each sized to end before the deadline.
    batch=()
    for ((slot = 0; slot < jobs && i < ${#props[@]}; slot++, i++)); do
      p=${props[$i]}
      cases=${next[$p]}
      # Never more than the time left allows, at the last run's speed.
      if ((last_us[$p] > 0)); then
        fit=$((last_cases[$p] * remaining_us / last_us[$p]))
        ((fit < cases)) && cases=$((fit > 1 ? fit : 1))
      fi
      run_one "$p" "$cases" "$slot" &
      batch+=("$p")
    done
    wait
    if ((interrupted)); then
      # The trap cut `wait` short: stop the runs, then wait for them.
      for slot in "${!batch[@]}"; do
        kill "$(cat "$run_dir/slot$slot.pid")" 2>/dev/null
      done
      wait
    fi
    for slot in "${!batch[@]}"; do
      p=${batch[$slot]}
      [[ -f $run_dir/slot$slot.result ]] || continue
      { read -r status; read -r took_us; read -r seed; read -r cases; } <"$run_dir/slot$slot.result"
      rm -f "$run_dir/slot$slot.result"
      case $status in
        0)
          total[$p]=$((total[$p] + cases))
          runs[$p]=$((runs[$p] + 1))
          # Size the next run to the slice, growing at most 32-fold at a
          # time (the first runs measure start-up more than cases), and
          # within proptest's u32.
          ((took_us > 0)) || took_us=1
          last_cases[$p]=$cases last_us[$p]=$took_us
          n=$((cases * slice_us / took_us))
          ((n > cases * 32)) && n=$((cases * 32))
          ((n > 1000000000)) && n=1000000000
          ((n < 16)) && n=16
          next[$p]=$n
          ;;
        143)
          # Stopped by an interrupt: not a failure, and not counted.
          ;;
        *)
          report_failure "$p" "$slot" "$status" "$seed" "$cases"
          ((status != 101)) && crashed=1
          ;;
      esac
    done
  done
done
fuzz_secs=$(((duration * 1000000 - (deadline_us - $(now_us))) / 1000000))

# ---------------------------------------------------------------- report
echo
echo "fuzz: ${fuzz_secs} s of fuzzing in $round rounds (build: ${build_secs} s, not counted); logs in ${run_dir#"$root"/}"
((interrupted)) && echo "fuzz: interrupted"
printf '%-8s %-72s %12s %5s\n' crate property cases runs
sum=0
for p in "${props[@]}"; do
  printf '%-8s %-72s %12d %5d\n' "${p%%/*}" "${p#*/}" "${total[$p]}" "${runs[$p]}"
  sum=$((sum + total[$p]))
done
printf '%-81s %12d\n' "total" "$sum"
echo
if ((${#failures[@]} == 0)); then
  echo "fuzz: no failures"
  ((interrupted)) && exit 130
  exit 0
fi
echo "fuzz: ${#failures[@]} failure(s)$( ((crashed)) && echo ', including a crash'):"
for f in "${failures[@]}"; do
  cat "$f"
  echo
done
# proptest saves failing seeds next to the test (tests/fuzz.proptest-regressions)
# so that the normal test run replays them; commit them with the fix.
git status --porcelain -- '*.proptest-regressions' 2>/dev/null | cut -c4- | sed 's/^/fuzz: failing seeds saved in /'
exit 1

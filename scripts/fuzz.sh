#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/) with clang-14 in build-fuzz/ and runs them.
#   scripts/fuzz.sh [TARGET...] [--minutes N] [--jobs J] [--no-build]
# TARGET: fuzz_config fuzz_text fuzz_readers fuzz_flat_weights fuzz_spm fuzz_checkpoint fuzz_export
# (default: all), each for N minutes (default 10), J at a time (default 1; one core each).
# Corpus: build-fuzz/corpus/<target> (kept between runs), seeded from tests/fuzz/seeds/<target>
# (made from tests/fixtures by tests/fuzz/make_seeds.py), the seeds the target generates itself
# (build-fuzz/seeds/<target>) and the crash regressions tests/fixtures/fuzz/<target>.
# Crashes land in build-fuzz/crashes/<target>/ (save them under tests/fixtures/fuzz/<target>/ once
# fixed: tests/fuzz_replay_test.cpp replays them). One summary line per target is printed and
# written to build-fuzz/fuzz-summary.txt. Exit status 1 when any target crashed.
set -euo pipefail
cd "$(dirname "$0")/.."

ALL=(fuzz_config fuzz_text fuzz_readers fuzz_flat_weights fuzz_spm fuzz_checkpoint fuzz_export)
minutes=10
jobs=1
build=1
targets=()
while (($#)); do
  case "$1" in
    --minutes) minutes="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    fuzz_*) targets+=("$1"); shift ;;
    *) echo "fuzz.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
((${#targets[@]})) || targets=("${ALL[@]}")
for t in "${targets[@]}"; do
  [[ " ${ALL[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target '$t'; targets: ${ALL[*]}" >&2; exit 2; }
done

# Inputs are capped where a target has a known size-driven limit elsewhere (config: nesting depth is
# bounded by the parser, not fuzzed here); 0 = libFuzzer's choice (the largest seed).
max_len() {
  case "$1" in
    fuzz_config) echo 4096 ;;
    fuzz_text|fuzz_readers|fuzz_flat_weights) echo 16384 ;;
    *) echo 0 ;;
  esac
}

B=build-fuzz
if ((build)); then
  scripts/setup.sh --no-build
  cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++-14 -DHEED_FUZZ=ON \
    -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null
  cmake --build "$B" --target heed_spm "${targets[@]}"
fi

export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
seconds=$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 }')

run_one() {
  local t=$1 log="$B/logs/$1.log"
  mkdir -p "$B/corpus/$t" "$B/crashes/$t" "$B/seeds/$t" "$B/logs"
  rm -f "$B/crashes/$t"/*
  HEED_FUZZ_WRITE_SEEDS="$B/seeds/$t" "$B/$t" >/dev/null 2>&1 || true
  local dirs=("$B/corpus/$t" "$B/seeds/$t")
  for d in "tests/fuzz/seeds/$t" "tests/fixtures/fuzz/$t"; do [[ -d "$d" ]] && dirs+=("$d"); done
  local rc=0 rss=4096 vmem=unlimited start=$SECONDS
  # libtorch's unpickler allocates whatever length a pickle states (a damaged .debug_pkl record read
  # while libtorch formats an error asked for several GB, and overcommit let it touch 8 GB). The
  # torch targets therefore run as on a machine with 6 GB of address space, where such a request
  # fails and heed reports the archive as unreadable (docs/RELIABILITY.md).
  case "$t" in fuzz_checkpoint|fuzz_export) rss=8192 vmem=6291456 ;; esac
  (ulimit -v "$vmem"; exec "$B/$t" "${dirs[@]}" -max_total_time="$seconds" -max_len="$(max_len "$t")" -timeout=30 -rss_limit_mb="$rss" \
    -artifact_prefix="$B/crashes/$t/" -print_final_stats=1) >"$log" 2>&1 || rc=$?
  local execs cov ft corpus_files corpus_kb crashes
  execs=$(awk '/stat::number_of_executed_units/ { print $2 }' "$log" | tail -1 || true)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | awk '{print $2}' || true)
  ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -1 | awk '{print $2}' || true)
  corpus_files=$(find "$B/corpus/$t" -type f | wc -l)
  corpus_kb=$(find "$B/corpus/$t" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%d", s / 1024 }')
  crashes=$(find "$B/crashes/$t" -type f \( -name "crash-*" -o -name "leak-*" -o -name "timeout-*" -o -name "oom-*" \) | wc -l)
  local line
  local ran
  ran=$(awk -v s=$((SECONDS - start)) 'BEGIN { printf "%.1f", s / 60 }')  # minutes it really ran
  line=$(printf '%-18s %s min  execs %s  cov %s  ft %s  corpus %s files (%s KB)  crashes %s  exit %s' \
    "$t" "$ran" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$corpus_files" "$corpus_kb" "$crashes" "$rc")
  echo "$line" >"$B/logs/$t.summary"
  echo "$line"
  if ((crashes)) || ((rc)); then
    echo "  $t: see $log and $B/crashes/$t/" >&2
    grep -E 'ERROR|SUMMARY|runtime error|terminate|Finding' "$log" | head -5 | sed 's/^/  /' >&2 || true
    return 1
  fi
}

failed=0
running=0
for t in "${targets[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if ((running >= jobs)); then
    wait -n || failed=1
    running=$((running - 1))
  fi
done
while ((running > 0)); do
  wait -n || failed=1
  running=$((running - 1))
done

{
  echo "# scripts/fuzz.sh $(date -u +%Y-%m-%dT%H:%MZ) $(git rev-parse --short HEAD 2>/dev/null || echo '?')" \
       "$minutes min per target, clang $(clang++-14 -dumpversion)"
  for t in "${targets[@]}"; do cat "$B/logs/$t.summary" 2>/dev/null || echo "$t: no result"; done
} >"$B/fuzz-summary.txt"
echo "summary: $B/fuzz-summary.txt"
exit "$failed"

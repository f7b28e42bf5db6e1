#!/usr/bin/env bash
# Sets up (packages + build) and runs the whole test suite.
#   scripts/test.sh              Release build in build/, every test through CTest.
#   scripts/test.sh --sanitize   the torch-free core and its tests (heed_core_tests: readers, text,
#                                config, tokenizer shim, dataset, ROUGE, metrics, fuzz replay) built
#                                with clang-14 ASan + UBSan in build-asan/ and run; any report fails.
#                                What it covers and leaves out: docs/RELIABILITY.md.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" != "--sanitize" ]]; then
  scripts/setup.sh
  ctest --test-dir build --output-on-failure -j 2 --timeout 600
  exit 0
fi

scripts/setup.sh --no-build
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++-14 -DHEED_SANITIZE=ON \
  -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null
cmake --build build-asan --target heed_core_tests

export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# Two shards side by side (one per core); each writes its own log.
shards=2
pids=()
for ((i = 0; i < shards; ++i)); do
  GTEST_TOTAL_SHARDS=$shards GTEST_SHARD_INDEX=$i build-asan/heed_core_tests --gtest_brief=1 \
    >"build-asan/shard-$i.log" 2>&1 &
  pids+=($!)
done
status=0
for ((i = 0; i < shards; ++i)); do
  if ! wait "${pids[$i]}"; then
    status=1
    echo "sanitize: shard $i failed; its log (build-asan/shard-$i.log):"
    cat "build-asan/shard-$i.log"
  fi
done
for ((i = 0; i < shards; ++i)); do grep -E '^\[  (PASSED|FAILED)  \]' "build-asan/shard-$i.log" | sed "s/^/shard $i: /" || true; done
if ((status)); then
  echo "sanitize: FAILED"
  exit 1
fi
passed=0
for ((i = 0; i < shards; ++i)); do
  n=$(sed -nE 's/^\[  PASSED  \] ([0-9]+) tests?.*/\1/p' "build-asan/shard-$i.log")
  passed=$((passed + ${n:-0}))
done
echo "sanitize: heed_core_tests passed under ASan + UBSan"
echo "sanitize: $passed passed, 0 failed"

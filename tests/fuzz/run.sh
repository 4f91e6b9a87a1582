#!/bin/bash
# Builds the libFuzzer targets (a clang build with ASan and UBSan in
# build/fuzz, or $BERTH_FUZZ_BUILD) and runs each for SECONDS (default 20)
# from its seeds in tests/fuzz/corpus/<target>/, on a copy, so the source tree
# is never written. Prints each target's executions per second and corpus
# size; exits non-zero when a target crashes (its reproducer is kept in the
# build dir: crash-*, and the log names it). An hour per target:
#   tests/fuzz/run.sh 3600
set -euo pipefail
seconds=${1:-20}
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${BERTH_FUZZ_BUILD:-$src/build/fuzz}
cmake -S "$src" -B "$build" -DBERTH_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ >"$build.configure.log" 2>&1 ||
  { cat "$build.configure.log"; exit 1; }
cmake --build "$build" --target berth_fuzzers -j"$(nproc)" >"$build.build.log" 2>&1 ||
  { tail -50 "$build.build.log"; exit 1; }
failed=0
for target in image_fuzzer cgroup_parse_fuzzer cri_log_fuzzer shim_protocol_fuzzer \
  streaming_fuzzer cri_request_fuzzer; do
  corpus=$(mktemp -d)
  trap 'rm -rf "$corpus"' EXIT
  cp -r "$src/tests/fuzz/corpus/$target/." "$corpus/" 2>/dev/null || true
  log=$build/$target.log
  # One process; -rss_limit_mb and -timeout catch blow-ups and hangs as crashes.
  if (cd "$build" && "./tests/fuzz/$target" -max_total_time="$seconds" -rss_limit_mb=2048 \
      -timeout=10 -print_final_stats=1 "$corpus" >"$log" 2>&1); then
    execs=$(grep -oP 'stat::number_of_executed_units:\s*\K\d+' "$log" || echo 0)
    echo "$target: $((execs / seconds)) execs/s over ${seconds}s, corpus $(ls "$corpus" | wc -l) inputs" \
      "($(ls "$src/tests/fuzz/corpus/$target" 2>/dev/null | wc -l) seeds)"
  else
    echo "$target: FAILED - $(grep -m1 -E 'ERROR|SUMMARY|deadly signal' "$log" || echo 'see log')"
    grep -E '^(SUMMARY|artifact_prefix|Test unit written)' "$log" || true
    tail -40 "$log"
    failed=1
  fi
  rm -rf "$corpus"
done
exit $failed

#!/usr/bin/env bash
# fuzz.sh - build the libFuzzer target with clang (ASan+UBSan) and run it
# from the checked-in corpus for N seconds (default 60). A crash leaves
# crash-* files in build-fuzz/: turn each into a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DGWS_SANITIZE=ON \
  -DGWS_FUZZ=ON >/dev/null
cmake --build build-fuzz --target fuzz_pipeline -j"$(nproc)" >/dev/null
work=build-fuzz/corpus
mkdir -p "$work"
cp -n tests/fuzz/corpus/* "$work/" 2>/dev/null || true
cd build-fuzz
# libFuzzer exits non-zero on a crash; keep its tail readable in CI logs.
set +e
./bin/fuzz_pipeline -max_total_time="$secs" -max_len=8192 -timeout=10 \
  -print_final_stats=1 corpus > fuzz.log 2>&1
rc=$?
set -e
tail -8 fuzz.log
[ $rc -eq 0 ] || { echo "fuzz: crash found, see build-fuzz/fuzz.log and build-fuzz/crash-*"; exit 1; }
# Coverage guidance needs gws_core built with -fsanitize=fuzzer-no-link:
# without it libFuzzer sees only the harness's own edges (6) and mutates
# blindly (20M runs in 15 min added no input). The parser, detectors,
# filter, redaction and trimming have thousands of edges; far fewer means
# the instrumentation is gone again.
cov=$(sed -n 's/^#[0-9]*[[:space:]]*DONE[[:space:]]*cov: \([0-9]*\).*/\1/p' fuzz.log | tail -1)
min_cov=${GWS_FUZZ_MIN_COV:-1000}
[ "${cov:-0}" -ge "$min_cov" ] || {
  echo "fuzz: only ${cov:-no} coverage edges (< $min_cov): the library is not instrumented for libFuzzer, so it fuzzed blindly"
  exit 1
}
echo "fuzz: $cov coverage edges"

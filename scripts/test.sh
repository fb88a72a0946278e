#!/usr/bin/env bash
# test.sh - everything CI runs: install missing packages, build with
# -Werror, run the unit suites and the integration tests (devbroker + real
# processes), then the same again under AddressSanitizer+UBSan.
#
#   ./scripts/test.sh              all of it
#   GWS_TEST_SKIP_SAN=1 ...        skip the sanitizer pass (local iteration)
#   GWS_TEST_SKIP_FUZZ=1 ...       skip the 90 s fuzz run
#   CK_RUN_SUITE=detect ...        one unit suite (Check's own variables)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh

t0=$(date +%s)
fail=0
run() { # name, command...
  local name=$1 s=$(date +%s); shift
  echo "=== $name"
  if "$@"; then echo "=== $name: ok ($(( $(date +%s) - s )) s)"
  else echo "=== $name: FAILED ($(( $(date +%s) - s )) s)"; fail=1; fi
}

./scripts/build.sh
run "unit tests" ./build/bin/gws_tests
run "integration tests" ./build/bin/gws_itests
# deploy/ and docker-compose.yml: parsed and cross-checked (no Docker here).
run "deployment files" ./scripts/check-deploy.sh

if [ -z "${GWS_TEST_SKIP_SAN:-}" ]; then
  ./scripts/build.sh --sanitize
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
  # The integration runner starts the sanitized programs from build-san/bin.
  run "unit tests (ASan+UBSan)" ./build-san/bin/gws_tests
  GWS_BIN_DIR="$PWD/build-san/bin" run "integration tests (ASan+UBSan)" ./build-san/bin/gws_itests
fi

if [ -z "${GWS_TEST_SKIP_FUZZ:-}" ]; then
  # 90 s of libFuzzer: native events through the pipeline, the foreign
  # formats (presets), detector snapshots (scripts/fuzz.sh); a crash, a
  # leak or a run without coverage fails.
  run "fuzz (90 s)" ./scripts/fuzz.sh 90
fi

echo "test.sh: finished in $(( $(date +%s) - t0 )) s"
if [ $fail -ne 0 ]; then
  echo "test.sh: FAILED"
  exit 1
fi
echo "test.sh: all passed"

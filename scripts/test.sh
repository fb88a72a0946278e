#!/usr/bin/env bash
# test.sh - everything CI runs: install missing packages, build with
# -Werror, run the unit suites and the integration tests (devbroker + real
# processes), then the same again under AddressSanitizer+UBSan.
#
#   ./scripts/test.sh              all of it
#   GWS_TEST_SKIP_SAN=1 ...        skip the sanitizer pass (local iteration)
#   GWS_TEST_SKIP_FUZZ=1 ...       skip the 90 s fuzz run
#   GWS_TEST_SERIAL=1 ...          the two integration passes one after the
#                                  other, not side by side
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

san() { # command... under ASan+UBSan
  ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
  LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0" \
  GWS_BIN_DIR="$PWD/build-san/bin" "$@"
}
export -f san

./scripts/build.sh
if [ -z "${GWS_TEST_SKIP_SAN:-}" ]; then ./scripts/build.sh --sanitize; fi
run "unit tests" ./build/bin/gws_tests
if [ -z "${GWS_TEST_SKIP_SAN:-}" ]; then
  # In one process (CK_FORK=no): forked, every one of the ~360 tests ended
  # with its own LeakSanitizer scan, 73 s in all against 15 s in process
  # (2026-12-01); leaks are still reported, once, at exit. No fork means no
  # per-test timeout: `timeout` stands in for it.
  run "unit tests (ASan+UBSan)" san env CK_FORK="${CK_FORK:-no}" \
    timeout 600 ./build-san/bin/gws_tests
fi
# deploy/ and docker-compose.yml: parsed and cross-checked (no Docker here).
run "deployment files" ./scripts/check-deploy.sh

# Integration tests: a devbroker and real processes per test (the
# sanitized pass starts the programs of build-san/bin). The tests wait on
# brokers, group joins and timers far more than they compute: side by
# side, each test took as long as alone (2026-12-01, 21 tests: 283 s and
# 288 s at once, 282 s and 292 s one after the other), so the two passes
# run at once, each line tagged with its pass.
itests() { # tag, name, command...
  local tag=$1 name=$2; shift 2
  run "$name" bash -c 'set -o pipefail; "$@" 2>&1 | sed -u "s/^/[$0] /"' \
    "$tag" "$@"
}
if [ -n "${GWS_TEST_SKIP_SAN:-}" ]; then
  run "integration tests" ./build/bin/gws_itests
elif [ -n "${GWS_TEST_SERIAL:-}" ]; then
  run "integration tests" ./build/bin/gws_itests
  run "integration tests (ASan+UBSan)" san ./build-san/bin/gws_itests
else
  rcdir=$(mktemp -d)
  ( itests plain "integration tests" ./build/bin/gws_itests
    echo $fail > "$rcdir/plain" ) &
  ( itests asan "integration tests (ASan+UBSan)" san ./build-san/bin/gws_itests
    echo $fail > "$rcdir/asan" ) &
  wait
  for p in plain asan; do
    [ "$(cat "$rcdir/$p" 2>/dev/null)" = 0 ] || fail=1
  done
  rm -rf "$rcdir"
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

#!/usr/bin/env bash
# test.sh - everything CI runs: install missing packages, build with
# -Werror, run the unit suites and the integration tests (devbroker + real
# processes), then the same again under AddressSanitizer+UBSan.
#
#   ./scripts/test.sh              all of it
#   GWS_TEST_SKIP_SAN=1 ...        skip the sanitizer pass (local iteration)
#   GWS_TEST_SKIP_FUZZ=1 ...       skip the 90 s fuzz run
#   GWS_TEST_SERIAL=1 ...          the integration passes one after the
#                                  other, unsharded, not side by side
#   GWS_TEST_SHARDS=N ...          integration shards per pass (default 4)
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
# brokers, group joins and timers far more than they compute: the plain
# pass, 32 tests one after the other, took 493 s of wall clock and 30 s of
# CPU (6%, 2026-12-02). So both passes run at once, each split into
# GWS_TEST_SHARDS shards (default 4, balanced by the tests' usual
# durations: GWS_ITEST_SHARD in tests/integration/itest_main.c), every
# line tagged with its pass and shard.
shards=${GWS_TEST_SHARDS:-4}
itests() { # tag, name, command...
  local tag=$1 name=$2; shift 2
  run "$name" bash -c 'set -o pipefail; "$@" 2>&1 | sed -u "s|^|[$0] |"' \
    "$tag" "$@"
}
if [ -n "${GWS_TEST_SERIAL:-}" ]; then
  run "integration tests" ./build/bin/gws_itests
  if [ -z "${GWS_TEST_SKIP_SAN:-}" ]; then
    run "integration tests (ASan+UBSan)" san ./build-san/bin/gws_itests
  fi
else
  rcdir=$(mktemp -d)
  passes=plain
  [ -z "${GWS_TEST_SKIP_SAN:-}" ] && passes="plain asan"
  for p in $passes; do
    for k in $(seq 1 "$shards"); do
      if [ $p = plain ]; then
        ( GWS_ITEST_SHARD=$k/$shards itests "plain $k/$shards" \
            "integration tests, shard $k/$shards" ./build/bin/gws_itests
          echo $fail > "$rcdir/$p.$k" ) &
      else
        ( GWS_ITEST_SHARD=$k/$shards itests "asan $k/$shards" \
            "integration tests (ASan+UBSan), shard $k/$shards" \
            san ./build-san/bin/gws_itests
          echo $fail > "$rcdir/$p.$k" ) &
      fi
    done
  done
  wait
  for p in $passes; do
    for k in $(seq 1 "$shards"); do
      [ "$(cat "$rcdir/$p.$k" 2>/dev/null)" = 0 ] || fail=1
    done
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

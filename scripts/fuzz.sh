#!/usr/bin/env bash
# fuzz.sh - build the libFuzzer targets with clang (ASan+UBSan, the library
# instrumented for coverage) and run each from its seeds; SECONDS (default
# 90) is the whole budget: 2/5 to fuzz_pipeline, 1/5 to each of the others.
#   fuzz_pipeline  native events through parse -> score -> filter -> trim
#                  -> redact -> serialise; seeds tests/fuzz/corpus/
#   fuzz_preset    cloudflare / litellm / otel-genai logs (first byte picks
#                  the preset); seeds tests/data/presets/*/*.json
#   fuzz_state     detector snapshots read back from the state topic; seeds
#                  written by fuzz_state_seeds (current format) and the
#                  regression inputs of tests/fuzz/corpus_state/
#   fuzz_config    configuration files: refused with a message, or a
#                  pipeline built and run; seeds deploy/*.json and
#                  tests/fuzz/corpus_config/
# A crash, leak or timeout fails the run and leaves its input in
# build-fuzz/<target>/: turn each into a test and a regression input.
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-90}
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DGWS_SANITIZE=ON \
  -DGWS_FUZZ=ON >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_pipeline fuzz_preset \
  fuzz_state fuzz_state_seeds fuzz_config >/dev/null
B=$PWD/build-fuzz

# Seeds into each target's working corpus (kept between local runs).
for t in fuzz_pipeline fuzz_preset fuzz_state fuzz_config; do
  mkdir -p "$B/$t/corpus"
done
cp -n tests/fuzz/corpus/* "$B/fuzz_pipeline/corpus/" 2>/dev/null || true
i=0
for f in tests/data/presets/*/*.json; do
  case $f in
    */cloudflare/*) sel='\000' ;;
    */litellm/*) sel='\001' ;;
    *) sel='\002' ;;
  esac
  { printf "$sel"; cat "$f"; } > "$B/fuzz_preset/corpus/seed-$i"
  i=$((i + 1))
done
"$B/bin/fuzz_state_seeds" "$B/fuzz_state/corpus" >/dev/null
cp tests/fuzz/corpus_state/* "$B/fuzz_state/corpus/"
cp deploy/*.json tests/fuzz/corpus_config/* "$B/fuzz_config/corpus/"

# target seconds min_edges: the edges a run must reach. Coverage guidance
# needs gws_core built with -fsanitize=fuzzer-no-link: without it libFuzzer
# sees only a harness's own edges (6) and mutates blindly (20M runs in
# 15 min added no input). Clean runs reach 1362 (pipeline, 60 s), 1596
# (preset, 150 s), 813 (state, 180 s) and 1139 (config, 150 s); far fewer
# means the instrumentation is gone again.
fuzz() {
  local t=$1 s=$2 min=$3 rc cov
  cd "$B/$t"
  set +e
  "$B/bin/$t" -max_total_time="$s" -max_len=8192 -timeout=10 \
    -print_final_stats=1 corpus > fuzz.log 2>&1
  rc=$?
  set -e
  cd - >/dev/null
  cov=$(sed -n 's/^#[0-9]*[[:space:]]*DONE[[:space:]]*cov: \([0-9]*\).*/\1/p' "$B/$t/fuzz.log" | tail -1)
  if [ $rc -ne 0 ]; then
    tail -40 "$B/$t/fuzz.log"
    echo "fuzz: $t failed (exit $rc): see build-fuzz/$t/fuzz.log and the crash-*/leak-*/timeout-* input there"
    return 1
  fi
  if [ "${cov:-0}" -lt "$min" ]; then
    echo "fuzz: $t reached only ${cov:-no} coverage edges (< $min): the library is not instrumented for libFuzzer, so it fuzzed blindly"
    return 1
  fi
  echo "fuzz: $t ${s} s, $(sed -n 's/^stat::number_of_executed_units:[[:space:]]*//p' "$B/$t/fuzz.log") runs, $cov edges, no crash"
}

fuzz fuzz_pipeline $((secs * 2 / 5)) 1000
fuzz fuzz_preset $((secs / 5)) 900
fuzz fuzz_state $((secs / 5)) 400
fuzz fuzz_config $((secs - secs * 2 / 5 - 2 * (secs / 5))) 900

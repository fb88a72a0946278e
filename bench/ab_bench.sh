#!/usr/bin/env bash
# ab_bench.sh - two gwsieve builds (or two settings) side by side on the
# devbroker, alternating A and B in each round on fresh brokers with the
# same 100k generator events (1.7 KB, -X partitioner=random over 96
# partitions, as bench/e2e_bench.sh). Per run: CPU ticks of the gwsieve
# process (user+sys from /proc, 1 tick = 10 ms; includes start-up and the
# group join), its rate by /metrics, peak RSS (VmHWM), backpressure
# seconds, and CPU ticks per thread kind (gws-worker*, rdk:broker*, ...).
# Medians per side at the end. Not a test: compare A and B within a run.
#
#   bench/ab_bench.sh [ROUNDS] [-- ARGS_A -- ARGS_B]
#
# Environment:
#   AB_BIN_A, AB_BIN_B  bin directories of the two builds (default both
#                       build/bin: then compare settings via ARGS_A/ARGS_B)
#   AB_EVENTS           events per run (default 100000)
#   AB_PARTITIONS       input partitions (default 96)
#
# Example: the session-start commit against the working tree
#   git worktree add /tmp/gws-old 5525e63 && (cd /tmp/gws-old &&
#     cmake -S . -B build && cmake --build build --target gwsieve)
#   AB_BIN_A=/tmp/gws-old/build/bin bench/ab_bench.sh 5
# or two settings of one build:
#   bench/ab_bench.sh 4 -- -- -X producer.linger.ms=5
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${1:-3}
[ $# -gt 0 ] && shift
ARGS_A=()
ARGS_B=()
if [ "${1:-}" = "--" ]; then
  shift
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do ARGS_A+=("$1"); shift; done
  [ "${1:-}" = "--" ] && shift
  ARGS_B=("$@")
fi
BIN_A=${AB_BIN_A:-$PWD/build/bin}
BIN_B=${AB_BIN_B:-$PWD/build/bin}
N=${AB_EVENTS:-100000}
PARTS=${AB_PARTITIONS:-96}
for b in "$BIN_A/gwsieve" "$BIN_B/gwsieve" "$BIN_B/gwsieve-devbroker" "$BIN_B/gwsieve-gen"; do
  [ -x "$b" ] || { echo "ab: $b missing" >&2; exit 2; }
done
command -v curl >/dev/null || { echo "ab: curl missing (apt-get install curl)" >&2; exit 2; }

W=$(mktemp -d /tmp/gwsieve-ab.XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

msum() { awk -v k="$1" '$1 == k || index($1, k "{") == 1 {s += $2} END {printf "%d", s}' <<<"$scrape"; }

# one SIDE BIN ARGS...: one run; appends a line to $W/results
one() {
  local side=$1 bin=$2 boot port gpid bpid t0 first="" last="" p q tot rss bp split
  shift 2
  "$BIN_B/gwsieve-devbroker" --no-default-topics --topic "in:$PARTS" \
    --topic "ab.retained:$PARTS" --topic ab.alerts:3 --topic ab.dlq:3 \
    --topic gw.state:12 > "$W/broker.out" 2> "$W/broker.log" < /dev/null &
  bpid=$!
  pids+=("$bpid")
  for _ in $(seq 300); do [ -s "$W/broker.out" ] && break; sleep 0.1; done
  boot=$(head -1 "$W/broker.out")
  [ -n "$boot" ] || { echo "ab: devbroker did not start:" >&2; tail -5 "$W/broker.log" >&2; exit 1; }
  "$BIN_B/gwsieve-gen" --bootstrap "$boot" --topic in --events "$N" --seed 1 \
    -X partitioner=random --quiet 2> "$W/gen.log"
  port=$((19600 + RANDOM % 300))
  "$bin/gwsieve" run --bootstrap "$boot" --group ab --set topics.input=in \
    --set topics.retained=ab.retained --set topics.alerts=ab.alerts \
    --set topics.dlq=ab.dlq --http "127.0.0.1:$port" "$@" 2> "$W/gwsieve-$side.log" &
  gpid=$!
  pids+=("$gpid")
  t0=$(date +%s)
  while :; do
    scrape=$(curl -s --max-time 1 "http://127.0.0.1:$port/metrics" || true)
    p=$(msum gwsieve_events_processed_total)
    q=$(msum gwsieve_producer_queue_messages)
    [ -z "$first" ] && [ "$(msum gwsieve_events_consumed_total)" -gt 0 ] && first=$(date +%s%N)
    if [ "$p" -ge "$N" ] && [ "$q" -eq 0 ] && [ -n "$scrape" ]; then last=$(date +%s%N); break; fi
    [ $(( $(date +%s) - t0 )) -gt 120 ] && { echo "ab: $side: $p of $N processed after 120 s (see $W/gwsieve-$side.log)" >&2; exit 1; }
    sleep 0.1
  done
  tot=$(awk '{print $14 + $15}' "/proc/$gpid/stat")
  rss=$(awk '/^VmHWM:/ {printf "%d", $2 / 1024}' "/proc/$gpid/status")
  bp=$(awk '$1 == "gwsieve_backpressure_seconds_total" {printf "%.2f", $2}' <<<"$scrape")
  split=$(for t in /proc/"$gpid"/task/*; do
            echo "$(cat "$t/comm" 2>/dev/null) $(awk '{print $14 + $15}' "$t/stat" 2>/dev/null)"
          done | awk '{n = $1; sub(/[0-9]+$/, "", n); a[n] += $2} END {for (k in a) if (a[k]) printf " %s=%d", k, a[k]}')
  # /metrics renders once a second, so a span under ~1.5 s is mostly that
  # quantum: no rate then (0 = not measured)
  printf '%s cpu_ticks=%d rate=%d rss_mb=%d backpressure_s=%s |%s\n' "$side" "$tot" \
    $(( last - first >= 1500000000 ? N * 1000000000 / (last - first) : 0 )) \
    "$rss" "$bp" "$split" |
    tee -a "$W/results"
  kill -TERM "$gpid"; wait "$gpid" 2>/dev/null || true
  kill -TERM "$bpid"; wait "$bpid" 2>/dev/null || true
  pids=()
}

echo "ab: $ROUNDS round(s), $N events over $PARTS partitions; A=$BIN_A ${ARGS_A[*]:-}; B=$BIN_B ${ARGS_B[*]:-}"
for _ in $(seq "$ROUNDS"); do
  one A "$BIN_A" "${ARGS_A[@]}"
  one B "$BIN_B" "${ARGS_B[@]}"
done
python3 - "$W/results" "$N" <<'EOF'
import re, statistics, sys
rows = {"A": [], "B": []}
for line in open(sys.argv[1]):
    side, rest = line.split(" ", 1)
    rows[side].append({k: float(v) for k, v in
                       re.findall(r"(\w+)=([\d.]+)", rest.split("|")[0])})
for side, rs in rows.items():
    med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
    rates = [r["rate"] for r in rs if r["rate"] > 0]
    med["rate"] = statistics.median(rates) if rates else 0
    cpu = sorted(r["cpu_ticks"] / 100 for r in rs)
    print("%s median of %d: %.2f CPU-s per %s events (runs %s), "
          "%.0f ev/s by /metrics (0: runs too short to tell), "
          "peak RSS %.0f MB, backpressure %.2f s"
          % (side, len(rs), med["cpu_ticks"] / 100, sys.argv[2],
             ", ".join("%.2f" % c for c in cpu), med["rate"], med["rss_mb"],
             med["backpressure_s"]))
EOF

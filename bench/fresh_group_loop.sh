#!/usr/bin/env bash
# fresh_group_loop.sh - the latency benchmark's start, repeated: a fresh
# devbroker, a new consumer group on a 12-partition input, and right after
# the assignment a burst of 10k generator events with incidents (the
# busiest gateway carries ~40% of them into one partition, more than the
# mock keeps), with a kcat recording the input meanwhile. Each run reports the messages gwsieve consumed (exactly the
# events sent, unless input fell out of the mock before it was fetched or
# was read twice) and gwsieve_offsets_rewound_total. Made to reproduce
# librdkafka's restart of a running partition (README, "Start offsets"):
# with `-- -X consumer.fetch.wait.max.ms=10`, the build before gwsieve
# assigned concrete start offsets read ~2,500-2,800 events twice in 3 of 20
# runs; with them, 0 of 60. Not a test: a rate, compared side by side.
#
#   bench/fresh_group_loop.sh [RUNS] [-- GWSIEVE_ARGS...]
#
# Environment: GWS_BIN_DIR (default build/bin), LOOP_RATE (generator
# events/s, default 33000), LOOP_PORT (gwsieve's /metrics, default 19888),
# LOOP_KEEP=1 keeps the work directory.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${1:-20}
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
BIN=${GWS_BIN_DIR:-$PWD/build/bin}
RATE=${LOOP_RATE:-33000}
PORT=${LOOP_PORT:-19888}
for b in gwsieve gwsieve-devbroker gwsieve-gen; do
  [ -x "$BIN/$b" ] || { echo "loop: $BIN/$b missing (set GWS_BIN_DIR)" >&2; exit 2; }
done
for t in curl kcat; do
  command -v "$t" >/dev/null || { echo "loop: $t missing (apt-get install $t)" >&2; exit 2; }
done

W=$(mktemp -d /tmp/gwsieve-loop.XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "${LOOP_KEEP:-0}" = 1 ]; then echo "loop: work dir kept: $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

msum() { awk -v m="$1" '$1 == m || index($1, m "{") == 1 {s += $2} END {printf "%d", s}' <<<"$2"; }

bad=0
for run in $(seq "$RUNS"); do
  d=$W/run$run
  mkdir -p "$d"
  "$BIN/gwsieve-devbroker" --no-default-topics --topic in:12 --topic out.retained:12 \
    --topic out.alerts:3 --topic out.dlq:3 --topic gw.state:12 \
    > "$d/broker.out" 2> "$d/broker.log" < /dev/null &
  bpid=$!
  pids=("$bpid")
  for _ in $(seq 300); do [ -s "$d/broker.out" ] && break; sleep 0.1; done
  boot=$(head -1 "$d/broker.out")
  [ -n "$boot" ] || { echo "loop: devbroker did not start (see $d/broker.log)" >&2; exit 1; }
  "$BIN/gwsieve" run --bootstrap "$boot" --group "loop-$run" --set topics.input=in \
    --set topics.retained=out.retained --set topics.alerts=out.alerts \
    --set topics.dlq=out.dlq --http "127.0.0.1:$PORT" "$@" 2> "$d/gwsieve.log" &
  gpid=$!
  pids+=("$gpid")
  a=0
  for _ in $(seq 300); do
    a=$(msum gwsieve_assigned_partitions "$(curl -s --max-time 1 "http://127.0.0.1:$PORT/metrics" || true)")
    [ "$a" -eq 12 ] && break
    sleep 0.1
  done
  kill -0 "$gpid" 2>/dev/null && [ "$a" -eq 12 ] ||
    { echo "loop: run $run: gwsieve not running with 12 partitions:" >&2; tail -3 "$d/gwsieve.log" >&2; exit 1; }
  # the latency benchmark's input recorder: another consumer of the input
  kcat -C -u -b "$boot" -t in -o beginning -q -X fetch.wait.max.ms=10 \
    -f '%o\n' > "$d/recorded" 2> "$d/kcat.log" &
  pids+=("$!")
  "$BIN/gwsieve-gen" --bootstrap "$boot" --topic in --events 10000 --rate "$RATE" \
    --sim-rate 20 --seed 42 --incidents --labels "$d/labels.json" --quiet 2> "$d/gen.log"
  prev=-1 still=0 c=0 rw=0
  for _ in $(seq 300); do # until nothing moved for 2 s
    scrape=$(curl -s --max-time 1 "http://127.0.0.1:$PORT/metrics" || true)
    c=$(msum gwsieve_events_consumed_total "$scrape")
    rw=$(msum gwsieve_offsets_rewound_total "$scrape")
    if [ "$c" -eq "$prev" ]; then still=$((still + 1)); else still=0; fi
    prev=$c
    [ "$still" -ge 20 ] && break
    sleep 0.1
  done
  st=0
  kill -TERM "$gpid" 2>/dev/null || true; wait "$gpid" || st=$?
  kill -TERM "$bpid" "${pids[2]}" 2>/dev/null || true
  wait "$bpid" "${pids[2]}" || true
  pids=()
  printf 'run %d: consumed %d of 10000, offsets rewound %d, gwsieve exit %d\n' \
    "$run" "$c" "$rw" "$st"
  if [ "$st" -ne 0 ]; then
    cp "$d/gwsieve.log" "$W/exit-run$run.log"; LOOP_KEEP=1
  fi
  [ "$rw" -gt 0 ] && bad=$((bad + 1)) && cp "$d/gwsieve.log" "$W/rewind-run$run.log"
  [ "${LOOP_KEEP:-0}" = 1 ] || rm -rf "$d"
done
echo "loop: $bad of $RUNS run(s) consumed offsets again"
if [ "$bad" -gt 0 ]; then
  LOOP_KEEP=1 # their gwsieve logs: $W/rewind-run*.log
fi

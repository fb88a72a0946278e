#!/usr/bin/env bash
# e2e_bench.sh - end-to-end benchmark on the devbroker (librdkafka's mock
# cluster): the same generated events through, one after another in each
# run, (a) a kcat consume | kcat produce pass-through (no group: the Kafka
# I/O ceiling of this machine), (b) a Python confluent-kafka consumer-group
# loop (bench/e2e_loop.py: json, z-score, filter, trim, redact, json,
# produce) and (c) `gwsieve run` with the default policy; then gwsieve's
# event-to-alert latency at half load (half the lower of its measured rate
# and kcat's) with injected incidents.
# Not a test: the figures vary with the machine's load; compare within a run.
#
#   GWS_BIN_DIR=/tmp/gws-bench-build/bin bench/e2e_bench.sh [EVENTS] [PARTITIONS] [RUNS]
#
#   EVENTS      generator events (default 100000, ~1.7 KB each)
#   PARTITIONS  partitions of the input topic (default 96)
#   RUNS        runs, each on a fresh devbroker (default 3); medians at the end
#
# Environment:
#   GWS_BIN_DIR        gwsieve, gwsieve-devbroker, gwsieve-gen (default build/bin)
#   E2E_LAT_EVENTS     events of the latency phase (default min(EVENTS, 10000))
#   E2E_LAT_SIM_RATE   their event-time rate, events/s (default 20, as the demo)
#   E2E_LAT_FETCH_WAIT_MS  a second latency phase with gwsieve's consumer
#                      fetch.wait.max.ms at this value (default 10; empty:
#                      skip). The mock answers a Fetch that finds no data
#                      only after the full fetch.wait.max.ms (500 ms by
#                      default) even when data arrives meanwhile (librdkafka
#                      src/rdkafka_mock_handlers.c, "If there was no data,
#                      delay up to MaxWait"); a real broker answers as soon
#                      as data arrives. The second phase shows that share.
#   E2E_HTTP_PORT      gwsieve's /metrics port (default 19464)
#   E2E_LINGER_MS      linger.ms of the kcat and Python producers (default
#                      50, gwsieve's default)
#   E2E_GWS_ARGS       extra gwsieve arguments for the throughput phase,
#                      e.g. "-X consumer.queued.max.messages.kbytes=65536"
#   E2E_KEEP=1         keep the work directory (logs, timestamps, results)
#
# Method (what each figure is):
#   steady ev/s  EVENTS / (last - first) output message timestamp of the
#                contender's output topics (CreateTime, set by the
#                contender's producer when it produces, i.e. right after it
#                consumed and processed the event). The group join and
#                start-up are outside this window; the last delivery report
#                comes linger.ms (50) + one round trip after the last
#                timestamp, which is not counted. Cross-checks: gwsieve's
#                /metrics polled every 100 ms (first poll with
#                events_consumed_total > 0 to first poll with all events
#                processed and the producer queue empty), and the Python
#                loop's own clock (first consume to last delivery report).
#   CPU-s/100k   user+sys of the processing process(es) per 100k events:
#                kcat = both kcat processes (GNU time), python = the loop
#                (GNU time, includes interpreter start and group join),
#                gwsieve = /proc/PID/stat utime+stime once all events are
#                processed and delivered, before SIGTERM (includes the
#                group join). The consume floor: `kcat -C` of the same
#                events into /dev/null (no group, no output), what fetching
#                them with librdkafka costs on this machine. The replay:
#                the same events through `gwsieve replay` (the pipeline
#                without Kafka, random over PARTS detector partitions);
#                consume floor + replay is what gwsieve costs before any
#                service overhead, reported next to gwsieve and python/4.
#                Steady-window CPU: the same minus the CPU spent before
#                the first event was consumed (start-up, imports, group
#                join): python = getrusage at its first non-empty batch to
#                after its flush, gwsieve = /proc/PID/stat sampled at every
#                /metrics poll (100 ms apart), from the last sample before
#                its first output message's timestamp to the end; what a
#                long-running worker pays per event.
#   peak MB      VmHWM over the whole run, exit included; kcat = the two
#                kcat processes added up (GNU time %M), python = GNU time
#                %M, gwsieve = peak_rss of its last log line (PROGRESS
#                final: getrusage at exit, after the shutdown's snapshots);
#                /proc/PID/status VmHWM before SIGTERM is logged beside it.
#   alert latency  gwsieve only, on a separate 12-partition input topic
#                keyed by gateway_id (as produced by gwsieve-gen, like
#                deploy's gw.raw), gwsieve-gen --incidents --rate (steady/2).
#                For every open/update alert: its message timestamp minus
#                the newest input message timestamp (CreateTime set by the
#                generator's producer) of its event_ids. gwsieve notes the
#                triggering event in event_ids before it emits, so that is
#                the trigger. Input timestamps are recorded during the
#                phase by a concurrent `kcat -C` (the mock keeps only
#                ~5 MB per partition, too little for a keyed topic).
#
# All three producers batch alike (linger.ms=$E2E_LINGER_MS, default 50 as
# gwsieve's own default): at librdkafka's 5 ms the producer's broker
# threads cost more CPU than the processing did. A gwsieve run with
# another value gets it through E2E_GWS_ARGS
# (--set kafka.producer.linger.ms=N).
#
# The throughput input is produced with -X partitioner=random: keyed by
# gateway_id, 12 gateways would fill 12 of the 96 partitions and the mock
# would drop most of the busiest ones (~5 MB kept per partition). So each
# gateway is spread over all partitions, which makes gwsieve's per-partition
# detector state 96 times wider than in a keyed deployment (more entities
# and alerts, not fewer: ~425 false new_value opens per 100k events).
# gwsieve notices it and says so in its log (PLACEMENT warnings,
# gwsieve_gateways_on_several_partitions 12); expected here.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${1:-100000}
PARTS=${2:-96}
RUNS=${3:-3}
BIN=${GWS_BIN_DIR:-$PWD/build/bin}
# The latency phase is keyed by gateway over 12 partitions. With the
# incidents, the busiest gateway carries 31% of the events: 11 MB at 20k
# events, twice what the mock keeps per partition, so any hiccup of
# ~0.3 s on that partition lost input and showed up as a 1.4 s p99 (in 2
# of 6 phases measured). At 10k events it carries 5.5 MB.
LAT_N=${E2E_LAT_EVENTS:-$(( N < 10000 ? N : 10000 ))}
LAT_SIM=${E2E_LAT_SIM_RATE:-20}
PORT=${E2E_HTTP_PORT:-19464}
LINGER=${E2E_LINGER_MS:-50}
LAT_FWAIT=${E2E_LAT_FETCH_WAIT_MS-10}
PY=/usr/bin/python3
HELPER=$PWD/bench/e2e_loop.py
METRICS=http://127.0.0.1:$PORT/metrics
TCK=$(getconf CLK_TCK)

for b in gwsieve gwsieve-devbroker gwsieve-gen; do
  [ -x "$BIN/$b" ] || { echo "e2e: $BIN/$b missing (set GWS_BIN_DIR)" >&2; exit 2; }
done
for t in kcat curl /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "e2e: $t missing (apt-get install kcat curl time)" >&2; exit 2; }
done
$PY -c 'import confluent_kafka' 2>/dev/null ||
  { echo "e2e: $PY lacks confluent_kafka (apt-get install python3-confluent-kafka)" >&2; exit 2; }

W=$(mktemp -d /tmp/gwsieve-e2e.XXXXXX)
pids=()

cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
  if [ "${E2E_KEEP:-0}" = 1 ]; then echo "e2e: work dir kept: $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf 'e2e: [run %s] %s\n' "${run:-}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now() { date +%s.%N; }
now_ms() { date +%s%3N; }
# Stops one process we started and forgets it.
stop() {
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null && rc=0 || rc=$?
  local keep=() p
  for p in "${pids[@]}"; do [ "$p" != "$1" ] && keep+=("$p"); done
  pids=("${keep[@]}")
  return $rc
}
# Sum of a gwsieve metric over its label sets, from a scrape in $scrape.
msum() { awk -v m="$1" '$1 == m || index($1, m "{") == 1 {s += $2} END {printf "%d", s}' <<<"$scrape"; }
# kcat-read the whole of topic(s) as "%T ..." lines into a file.
dump_ts() {
  local out=$1 fmt=$2; shift 2
  : > "$out"
  local t
  for t in "$@"; do
    kcat -C -b "$BOOT" -t "$t" -o beginning -e -q -f "$fmt" >> "$out" 2>>"$R/kcat-dump.log"
  done
}
span() { $PY "$HELPER" span "$@"; }
jget() { $PY -c 'import json,sys; v=json.loads(sys.argv[1]).get(sys.argv[2]); print("null" if v is None else v)' "$1" "$2"; }
calc() { $PY -c "import sys; print($1)"; }
# Events per second over a span of epoch ms (at least 1 ms: a run of a few
# thousand events can fit in one 100 ms metrics poll).
rate_over() { calc "$1 / (max($3 - $2, 1) / 1000)"; }

# Waits until gwsieve has processed $1 events and its producer queue is
# empty; sets g_first/g_last (metrics window, epoch ms) and g_processed, or
# fails after $2 seconds. With $3 = stall, also returns once nothing moved
# for 3 s (events the mock dropped before gwsieve fetched them never come).
# Shell arithmetic only: a poll must not cost the CPU it measures.
gws_wait_done() {
  local want=$1 limit=$2 stall=${3:-} t0 t c p q moved prev=-1
  t0=$(now_ms); moved=$t0; g_first=""; g_last=""
  while :; do
    t=$(now_ms)
    # "wall ms, CPU ticks" of the process at every poll: the steady
    # window's CPU starts at the last sample before its first output
    # (/metrics is rendered once a second, too coarse to tell when
    # consuming began).
    [ -n "${GWS_CPU_LOG:-}" ] &&
      awk -v t="$t" '{print t, $14 + $15}' "/proc/$gpid/stat" >> "$GWS_CPU_LOG" 2>/dev/null
    scrape=$(curl -s --max-time 1 "$METRICS" || true)
    c=$(msum gwsieve_events_consumed_total)
    p=$(msum gwsieve_events_processed_total)
    q=$(msum gwsieve_producer_queue_messages)
    g_processed=$p
    [ -z "$g_first" ] && [ "$c" -gt 0 ] && g_first=$t
    if [ "$p" -ge "$want" ] && [ "$q" -eq 0 ] && [ -n "$scrape" ]; then g_last=$t; return 0; fi
    [ "$p" -ne "$prev" ] && { prev=$p; moved=$t; }
    if [ -n "$stall" ] && [ "$q" -eq 0 ] && [ $((t - moved)) -gt 3000 ]; then
      log "WARNING: gwsieve processed $p of $want events (the rest fell out of the mock's ~5 MB per partition before it fetched them)"
      g_last=$moved; return 0
    fi
    [ $((t - t0)) -gt $((limit * 1000)) ] && die "gwsieve: $p of $want events processed after ${limit}s (see $R/*.log)"
    # exited (a refused setting, a crash): say so now, not at the limit
    kill -0 "$gpid" 2>/dev/null || die "gwsieve exited after $p of $want events (see $R/*.log)"
    sleep 0.1
  done
}

# Starts gwsieve (default policy) on group $1, input $2, outputs prefix $3;
# further arguments are passed on.
gws_start() {
  local group=$1 in=$2 pfx=$3
  shift 3
  "$BIN/gwsieve" run --bootstrap "$BOOT" --group "$group" \
    --set topics.input="$in" --set topics.retained="$pfx.retained" \
    --set topics.alerts="$pfx.alerts" --set topics.dlq="$pfx.dlq" \
    --http "127.0.0.1:$PORT" "$@" 2> "$R/$pfx.log" &
  gpid=$!
  pids+=("$gpid")
}

# One latency phase on topics $1.in/.retained/.alerts/.dlq: gwsieve joins,
# a kcat records the input timestamps, the generator sends $2 events with
# incidents at $3 ev/s; sets lat_res (JSON) and lat_real_res (ev/s sent).
# Further arguments go to gwsieve.
lat_phase() {
  local pfx=$1 n=$2 rate=$3 t0 kpid
  shift 3
  # The input recorder first: it is fetching by the time the generator
  # starts (gwsieve's join and restores take seconds). Started just
  # before the generator, it missed 1,250-1,350 of 10,000 events in 4 of
  # 12 phases at ~25k events/s (gwsieve, already fetching, processed all
  # of them), probably because its start took longer than the ~0.35 s in
  # which the busiest partition passes the mock's ~5 MB. Started first:
  # 6 of 6 phases recorded all 10,000 (2026-12-02).
  kcat -C -u -b "$BOOT" -t "$pfx.in" -o beginning -q -X fetch.wait.max.ms=10 \
    -f '%T %s\n' 2> "$R/kcat-$pfx.log" \
    > >(stdbuf -oL cut -c1-120 > "$R/$pfx.in.ts") &
  kpid=$!
  pids+=("$kpid")
  gws_start "gws-$pfx-$run" "$pfx.in" "$pfx" "$@"
  for _ in $(seq 600); do
    scrape=$(curl -s --max-time 1 "$METRICS" || true)
    [ "$(msum gwsieve_assigned_partitions)" -eq 12 ] && break
    sleep 0.1
  done
  [ "$(msum gwsieve_assigned_partitions)" -eq 12 ] || die "$pfx: gwsieve got no partitions (see $R/$pfx.log)"
  # Assigned partitions stay paused until their detector state is read
  # from the state topic (here it holds the throughput phase's 96
  # snapshots: ~0.25 s). Input sent meanwhile waits on the mock, which
  # keeps ~5 MB (~0.35 s at this rate) of the busiest partition: start
  # the generator only once every restore is done.
  for _ in $(seq 300); do
    scrape=$(curl -s --max-time 1 "$METRICS" || true)
    [ "$(msum gwsieve_state_restores_total)" -ge 12 ] && break
    sleep 0.1
  done
  t0=$(now)
  "$BIN/gwsieve-gen" --bootstrap "$BOOT" --topic "$pfx.in" --events "$n" \
    --rate "$rate" --sim-rate "$LAT_SIM" --seed 42 --incidents \
    --labels "$R/$pfx.labels.json" --quiet 2> "$R/gen-$pfx.log" || die "generator failed (see $R/gen-$pfx.log)"
  lat_real_res=$(calc "$n / ($(now) - $t0)")
  gws_wait_done "$n" 120 stall
  for _ in $(seq 300); do [ "$(wc -l < "$R/$pfx.in.ts")" -ge "$n" ] && break; sleep 0.1; done
  [ "$(wc -l < "$R/$pfx.in.ts")" -ge "$n" ] || log "WARNING: the input recorder got $(wc -l < "$R/$pfx.in.ts") of $n events"
  stop "$gpid" || log "WARNING: $pfx gwsieve exited $rc"
  stop "$kpid" || true
  sleep 0.5 # cut finishes the file
  dump_ts "$R/$pfx.alerts.ts" '%T %s\n' "$pfx.alerts"
  lat_res=$($PY "$HELPER" latency --inputs "$R/$pfx.in.ts" --alerts "$R/$pfx.alerts.ts" \
    --processed "$g_processed")
  log "$pfx at $(printf '%.0f' "$lat_real_res") ev/s ($*): $lat_res"
}

results=$W/results.jsonl
: > "$results"
echo "e2e: $N events, $PARTS partitions, $RUNS run(s), binaries from $BIN, work dir $W" >&2

for run in $(seq "$RUNS"); do
  R=$W/run$run
  mkdir -p "$R"

  # --- broker and input --------------------------------------------------
  "$BIN/gwsieve-devbroker" --no-default-topics \
    --topic "in:$PARTS" --topic "kcat.out:$PARTS" --topic "py.out:$PARTS" \
    --topic "gws.retained:$PARTS" --topic gws.alerts:3 --topic gws.dlq:3 \
    --topic lat.in:12 --topic lat.retained:12 --topic lat.alerts:3 --topic lat.dlq:3 \
    --topic lat2.in:12 --topic lat2.retained:12 --topic lat2.alerts:3 --topic lat2.dlq:3 \
    --topic gw.state:12 \
    > "$R/broker.out" 2> "$R/broker.log" < /dev/null &
  bpid=$!
  pids+=("$bpid")
  for _ in $(seq 300); do [ -s "$R/broker.out" ] && break; sleep 0.1; done
  BOOT=$(head -1 "$R/broker.out")
  [ -n "$BOOT" ] || die "devbroker did not start (see $R/broker.log)"
  "$BIN/gwsieve-gen" --bootstrap "$BOOT" --topic in --events "$N" --seed "$run" \
    -X partitioner=random 2> "$R/gen.log" || die "generator failed (see $R/gen.log)"
  log "$(tail -1 "$R/gen.log")"

  # --- the Kafka consume floor ---------------------------------------------
  # kcat reading every event into /dev/null: what fetching these events
  # with librdkafka costs on this machine (no group, no output, no
  # processing). Every contender pays at least this.
  /usr/bin/time -f '%U %S %M' -o "$R/kf.time" \
    kcat -C -b "$BOOT" -t in -o beginning -e -q > /dev/null 2> "$R/kcat-f.log" ||
    die "kcat consume failed (see $R/kcat-f.log)"
  read -r fu fs _ < <(tail -1 "$R/kf.time")
  k_ccpu=$(calc "($fu + $fs) * 100000 / $N")

  # --- the pipeline alone ----------------------------------------------------
  # The same events through `gwsieve replay` (no Kafka: read a file, parse,
  # score, filter, trim, redact, write files), spread over $PARTS detector
  # partitions at random as the input topic spreads them. With the consume
  # floor, what gwsieve's processing costs before any service overhead
  # (queues, offsets, producing, delivery reports, metrics).
  kcat -C -b "$BOOT" -t in -o beginning -e -q -f '%s\n' > "$R/events.ndjson" 2> "$R/kcat-r.log" ||
    die "kcat dump failed (see $R/kcat-r.log)"
  /usr/bin/time -f '%U %S %M' -o "$R/rp.time" \
    "$BIN/gwsieve" replay --input "$R/events.ndjson" --out-dir "$R/replay" \
    --set replay.partitioner=random --partitions "$PARTS" > "$R/replay.log" 2>&1 ||
    die "gwsieve replay failed (see $R/replay.log)"
  read -r ru rs _ < <(tail -1 "$R/rp.time")
  r_cpu=$(calc "($ru + $rs) * 100000 / $N")
  rm -rf "$R/events.ndjson" "$R/replay"
  log "replay of the same events: $(printf '%.2f' "$r_cpu") CPU-s/100k (consume floor $(printf '%.2f' "$k_ccpu"))"

  # --- (a) kcat pass-through ---------------------------------------------
  /usr/bin/time -f '%U %S %M' -o "$R/kc.time" \
    kcat -C -b "$BOOT" -t in -o beginning -e -q -f '%s\n' 2> "$R/kcat-c.log" |
    /usr/bin/time -f '%U %S %M' -o "$R/kp.time" \
      kcat -P -b "$BOOT" -t kcat.out -X sticky.partitioning.linger.ms=0 -X linger.ms="$LINGER" 2> "$R/kcat-p.log" ||
    die "kcat pass-through failed (see $R/kcat-*.log)"
  dump_ts "$R/kcat.ts" '%T\n' kcat.out
  ks=$(span "$R/kcat.ts")
  read -r cu cs cm < <(tail -1 "$R/kc.time")
  read -r pu ps pm < <(tail -1 "$R/kp.time")
  k_out=$(jget "$ks" count)
  [ "$k_out" -eq "$N" ] || log "WARNING: kcat.out holds $k_out of $N messages (retention?)"
  k_rate=$(rate_over "$N" "$(jget "$ks" first_ms)" "$(jget "$ks" last_ms)")
  k_cpu=$(calc "($cu + $cs + $pu + $ps) * 100000 / $N")
  k_rss=$((cm + pm))
  log "kcat: $(printf '%.0f' "$k_rate") ev/s, $(printf '%.2f' "$k_cpu") CPU-s/100k (consume floor $(printf '%.2f' "$k_ccpu"))"

  # --- (b) python consumer-group loop -------------------------------------
  /usr/bin/time -f '%U %S %M' -o "$R/py.time" \
    $PY "$HELPER" loop --bootstrap "$BOOT" --topic in --out-topic py.out \
    --group "py-bench-$run" --events "$N" --stats "$R/py.json" --linger-ms "$LINGER" 2> "$R/py.log" ||
    die "python loop failed (see $R/py.log)"
  dump_ts "$R/py.ts" '%T\n' py.out
  pys=$(span "$R/py.ts")
  read -r yu ys ym < <(tail -1 "$R/py.time")
  pyst=$(cat "$R/py.json")
  p_out=$(jget "$pys" count)
  [ "$p_out" -eq "$(jget "$pyst" produced)" ] || log "WARNING: py.out holds $p_out of $(jget "$pyst" produced) records"
  p_rate=$(rate_over "$N" "$(jget "$pys" first_ms)" "$(jget "$pys" last_ms)")
  p_self=$(calc "$N / ($(jget "$pyst" last_acked) - $(jget "$pyst" first_consumed))")
  p_cpu=$(calc "($yu + $ys) * 100000 / $N")
  p_cpu_st=$(calc "($(jget "$pyst" cpu_s) - $(jget "$pyst" cpu_at_first)) * 100000 / $N")
  log "python: $(printf '%.0f' "$p_rate") ev/s, $(printf '%.2f' "$p_cpu") CPU-s/100k ($(printf '%.2f' "$p_cpu_st") from its first batch on)"

  # --- (c) gwsieve ---------------------------------------------------------
  # shellcheck disable=SC2086 # E2E_GWS_ARGS: words on purpose
  gws_start "gws-bench-$run" in gws ${E2E_GWS_ARGS:-}
  : > "$R/gws.cpu"
  GWS_CPU_LOG=$R/gws.cpu gws_wait_done "$N" 300
  read -r gu gs < <(awk '{print $14, $15}' "/proc/$gpid/stat")
  # Where that CPU went: librdkafka's own threads (rdk:*: broker I/O,
  # fetch parsing, the client's main thread) and gwsieve's workers
  # (parse, score, filter, trim, redact, produce calls); the rest is
  # gwsieve's main, delivery and HTTP threads. Per thread from
  # /proc/.../schedstat (run time in ns): the threads' tick counts in
  # .../stat undercount the short bursts of librdkafka's threads by a
  # third (15 ticks where schedstat has 22), while the schedstat sum of all
  # threads matches the process's ticks.
  read -r g_rdk g_wrk < <(for t in /proc/"$gpid"/task/*; do
      printf '%s %s\n' "$(cat "$t/comm" 2>/dev/null)" "$(cut -d' ' -f1 "$t/schedstat" 2>/dev/null)"
    done | awk '$1 ~ /^rdk:/ {r += $2} $1 ~ /^gws-worker/ {w += $2} END {printf "%.3f %.3f\n", r / 1e9, w / 1e9}')
  g_rss_run=$(awk '/^VmHWM:/ {print $2}' "/proc/$gpid/status")
  g_deliv=$(msum gwsieve_outputs_delivered_total)
  stop "$gpid" || log "WARNING: gwsieve exited $rc"
  # The whole run's peak, shutdown (snapshots of all partitions) included.
  g_rss=$(sed -n 's/.*PROGRESS final:.* peak_rss=\([0-9.]*\)MB.*/\1/p' "$R/gws.log" | tail -1)
  if [ -n "$g_rss" ]; then
    g_rss=$(calc "int($g_rss * 1024 + 0.5)")
  else
    log "WARNING: no 'PROGRESS final' line in $R/gws.log: peak RSS before SIGTERM only"
    g_rss=$g_rss_run
  fi
  dump_ts "$R/gws.ts" '%T\n' gws.retained gws.alerts gws.dlq
  gss=$(span "$R/gws.ts")
  g_out=$(jget "$gss" count)
  [ "$g_out" -eq "$g_deliv" ] || log "WARNING: gwsieve outputs hold $g_out of $g_deliv delivered records"
  g_rate=$(rate_over "$N" "$(jget "$gss" first_ms)" "$(jget "$gss" last_ms)")
  # /metrics is a snapshot rendered once a second: a window under 1.5 s
  # is mostly that quantum, so no figure then (null)
  g_rate_m=null
  [ $((g_last - g_first)) -ge 1500 ] && g_rate_m=$(rate_over "$N" "$g_first" "$g_last")
  g_cpu=$(calc "($gu + $gs) / $TCK * 100000 / $N")
  g_cpu0=$(awk -v f="$(jget "$gss" first_ms)" '$1 <= f {c = $2} END {print c + 0}' "$R/gws.cpu")
  g_cpu_st=$(calc "($gu + $gs - $g_cpu0) / $TCK * 100000 / $N")
  g_cpu_rdk=$(calc "$g_rdk * 100000 / $N")
  g_cpu_wrk=$(calc "$g_wrk * 100000 / $N")
  log "gwsieve: $(printf '%.0f' "$g_rate") ev/s (metrics $g_rate_m), $(printf '%.2f' "$g_cpu") CPU-s/100k ($(printf '%.2f' "$g_cpu_st") from its first output on; librdkafka threads $(printf '%.2f' "$g_cpu_rdk"), workers $(printf '%.2f' "$g_cpu_wrk")), peak $((g_rss / 1024)) MB ($((g_rss_run / 1024)) MB before SIGTERM)"

  # --- (d) alert latency at half load -------------------------------------
  # Half load of the system: half the lower of gwsieve's steady rate and
  # the Kafka I/O ceiling (kcat pass-through). Once gwsieve outran kcat
  # (fetch wake-up, 160-200k ev/s), half its own rate was more than the
  # generator could produce next to the mock, the recorder and gwsieve on
  # 2 cores (asked 80k, got 51k), which measured the machine's overload.
  lat_rate=$(calc "int(min($g_rate, $k_rate) / 2)")
  lat_phase lat "$LAT_N" "$lat_rate"
  lat=$lat_res lat_real=$lat_real_res
  lat2=null lat2_real=null
  if [ -n "$LAT_FWAIT" ]; then
    lat_phase lat2 "$LAT_N" "$lat_rate" -X "consumer.fetch.wait.max.ms=$LAT_FWAIT"
    lat2=$lat_res lat2_real=$lat_real_res
  fi

  stop "$bpid" || true
  printf '{"run":%d,"kcat":{"rate":%s,"cpu_per_100k":%s,"consume_cpu_per_100k":%s,"rss_kb":%d,"outputs":%d},' \
    "$run" "$k_rate" "$k_cpu" "$k_ccpu" "$k_rss" "$k_out" >> "$results"
  printf '"python":{"rate":%s,"rate_self":%s,"cpu_per_100k":%s,"cpu_steady_per_100k":%s,"rss_kb":%d,"outputs":%d},' \
    "$p_rate" "$p_self" "$p_cpu" "$p_cpu_st" "$ym" "$p_out" >> "$results"
  printf '"gwsieve":{"rate":%s,"rate_metrics":%s,"cpu_per_100k":%s,"cpu_steady_per_100k":%s,"cpu_rdk_per_100k":%s,"cpu_workers_per_100k":%s,"replay_cpu_per_100k":%s,"rss_kb":%d,"rss_run_kb":%d,"outputs":%d},' \
    "$g_rate" "$g_rate_m" "$g_cpu" "$g_cpu_st" "$g_cpu_rdk" "$g_cpu_wrk" "$r_cpu" "$g_rss" "$g_rss_run" "$g_out" >> "$results"
  printf '"lat_rate":%s,"latency":%s,"lat2_rate":%s,"latency2":%s}\n' \
    "$lat_real" "$lat" "$lat2_real" "$lat2" >> "$results"
done
run=""

echo
echo "gwsieve end-to-end benchmark: $N events ($(tail -1 "$W/run1/gen.log" | sed -n 's/.*avg \([0-9]*\) B.*/\1/p') B avg), $PARTS partitions, $RUNS run(s), $(nproc) CPU(s)"
echo
$PY "$HELPER" report "$results"

#!/usr/bin/env bash
# thread_split.sh - where gwsieve's CPU goes, per thread, for two settings
# side by side: ROUNDS alternating runs of A and B, each on a fresh
# devbroker (100k generator events over 96 partitions by default), CPU per
# thread from /proc/PID/task/*/schedstat once every event is processed and
# delivered, then SIGTERM; medians per setting. Not a test: compare A and
# B within one run.
#
#   bench/thread_split.sh [ROUNDS] -- [gwsieve args of A] -- [args of B]
#   e.g. bench/thread_split.sh 6 -- --set kafka.producer.linger.ms=20 \
#          -- --set kafka.producer.linger.ms=50
#
# Columns (CPU-s per 100k events unless named otherwise):
# producer / consumer = the librdkafka threads of each client,
# told apart by creation order (gwsieve creates the producer, then the
# consumer, then the restore consumer; each client's threads start with
# its rdk:main); workers; main = gwsieve's main thread (the first task,
# whatever the binary is called); delivery = the thread that polls the
# producer (delivery reports: the offsets they complete); other = fetch
# wake-up, HTTP, restore threads and the restore consumer; total;
# peak = whole-run peak RSS from the `PROGRESS final` line (shutdown
# included); rate = events / span of the retained records' timestamps;
# main_sleeps = the main thread's voluntary context switches (each a
# wake-up), worker_preempted = the workers' involuntary ones; backpressure
# = gwsieve_backpressure_seconds_total (the main loop held off polling for
# full worker or producer queues); sys_share = the kernel's share of the
# process's CPU (stime / (utime + stime) over its threads, clock ticks).
#
# Environment: GWS_BIN_DIR (default build/bin), SPLIT_BIN_A and
# SPLIT_BIN_B (the gwsieve binaries of A and B, to compare two builds;
# default GWS_BIN_DIR/gwsieve), SPLIT_EVENTS (100000), SPLIT_PARTITIONS
# (96), SPLIT_HTTP_PORT (19781), SPLIT_KEEP=1 keeps logs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
shift || true
A=() B=() cur=
for a in "$@"; do
  if [ "$a" = "--" ]; then cur=${cur:+B}; cur=${cur:-A}; continue; fi
  if [ "$cur" = A ]; then A+=("$a"); elif [ "$cur" = B ]; then B+=("$a"); fi
done
BIN=${GWS_BIN_DIR:-$PWD/build/bin}
N=${SPLIT_EVENTS:-100000}
PARTS=${SPLIT_PARTITIONS:-96}
PORT=${SPLIT_HTTP_PORT:-19781}
[ -x "$BIN/gwsieve" ] || ./scripts/build.sh >/dev/null
GWS_A=${SPLIT_BIN_A:-$BIN/gwsieve}
GWS_B=${SPLIT_BIN_B:-$BIN/gwsieve}
for g in "$GWS_A" "$GWS_B"; do
  [ -x "$g" ] || { echo "thread_split: $g is not an executable" >&2; exit 2; }
done
command -v kcat >/dev/null || { echo "thread_split: kcat is needed (scripts/deps.sh)" >&2; exit 1; }
command -v curl >/dev/null || { echo "thread_split: curl is needed (apt-get install curl)" >&2; exit 1; }
W=$(mktemp -d /tmp/gwsieve-split.XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${SPLIT_KEEP:-}" ] && echo "thread_split: logs kept in $W" >&2 || rm -rf "$W"
}
trap cleanup EXIT

msum() { awk -v m="$1" '$1 == m || index($1, m "{") == 1 {s += $2} END {printf "%d", s}' <<<"$2"; }

# One run of gwsieve binary $1 with arguments "${@:2}"; prints one
# result line.
one() {
  local gws=$1
  shift
  local bp gp t s boot rss rate bpress
  : > "$W/broker.out"
  "$BIN/gwsieve-devbroker" --no-default-topics --topic "in:$PARTS" \
    --topic "out.retained:$PARTS" --topic out.alerts:3 --topic out.dlq:3 \
    --topic gw.state:12 > "$W/broker.out" 2> "$W/broker.log" < /dev/null &
  bp=$!; pids+=("$bp")
  for _ in $(seq 300); do [ -s "$W/broker.out" ] && break; sleep 0.1; done
  boot=$(head -1 "$W/broker.out")
  "$BIN/gwsieve-gen" --bootstrap "$boot" --topic in --events "$N" --seed 1 \
    -X partitioner=random --quiet 2> "$W/gen.log"
  "$gws" run --bootstrap "$boot" --group split \
    --set topics.input=in --set topics.retained=out.retained \
    --set topics.alerts=out.alerts --set topics.dlq=out.dlq \
    --http "127.0.0.1:$PORT" "$@" 2> "$W/gws.log" &
  gp=$!; pids+=("$gp")
  for t in $(seq 3000); do
    s=$(curl -s --max-time 1 "http://127.0.0.1:$PORT/metrics" || true)
    [ "$(msum gwsieve_events_processed_total "$s")" -ge "$N" ] &&
      [ -n "$s" ] && [ "$(msum gwsieve_producer_queue_messages "$s")" -eq 0 ] && break
    # exited (a refused setting, a crash): say so now, not after 300 s
    kill -0 "$gp" 2>/dev/null || { echo "thread_split: gwsieve exited: $(tail -2 "$W/gws.log")" >&2; exit 1; }
    sleep 0.1
  done
  # threads in creation order (task ids ascending): name, run time (ns),
  # context switches (voluntary: it slept; involuntary: preempted)
  for t in $(ls "/proc/$gp/task" | sort -n); do
    printf '%s %s %s %s\n' "$(cat "/proc/$gp/task/$t/comm")" "$(cut -d' ' -f1 "/proc/$gp/task/$t/schedstat")" \
      "$(awk '/^voluntary_ctxt_switches/ {v = $2} /^nonvoluntary_ctxt_switches/ {n = $2} END {print v, n}' "/proc/$gp/task/$t/status")" \
      "$(sed 's/.*) //' "/proc/$gp/task/$t/stat" | awk '{print $12, $13}')"
  done > "$W/threads"
  bpress=$(awk '$1 == "gwsieve_backpressure_seconds_total" {printf "%.2f", $2}' <<<"$s")
  kill -TERM "$gp"; wait "$gp" || true
  rss=$(sed -n 's/.*PROGRESS final:.* peak_rss=\([0-9.]*\)MB.*/\1/p' "$W/gws.log" | tail -1)
  rate=$(kcat -C -b "$boot" -t out.retained -o beginning -e -q -f '%T\n' 2>/dev/null |
    awk -v n="$N" 'NF {if (!lo || $1 < lo) lo = $1; if ($1 > hi) hi = $1} END {d = hi - lo; printf "%.0f", n / (d > 0 ? d : 1) * 1000}')
  kill "$bp"; wait "$bp" 2>/dev/null || true
  awk -v n="$N" -v rss="${rss:-0}" -v rate="$rate" -v bpress="${bpress:-0}" '
    {ut += $5; st += $6}
    NR == 1 {m += $2 / 1e9 * 100000 / n; mw += $3; t += $2 / 1e9 * 100000 / n; next}
    $1 == "rdk:main" {c++}
    {v = $2 / 1e9 * 100000 / n; t += v}
    $1 ~ /^rdk:/ && c == 1 {p += v; next}
    $1 ~ /^rdk:/ && c == 2 {k += v; next}
    $1 ~ /^gws-worker/ {w += v; wp += $4; next}
    $1 == "gws-delivery" {dl += v; next}
    {o += v}
    END {printf "producer %.3f consumer %.3f workers %.3f main %.3f delivery %.3f other %.3f total %.3f peak %.1f rate %s main_sleeps %d worker_preempted %d backpressure %.2f sys_share %.2f\n", p, k, w, m, dl, o, t, rss, rate, mw, wp, bpress, st / (ut + st > 0 ? ut + st : 1)}' "$W/threads"
}

echo "thread_split: $N events, $PARTS partitions, $ROUNDS round(s); CPU-s per 100k events; A: $GWS_A ${A[*]:-(defaults)}; B: $GWS_B ${B[*]:-(defaults)}"
for r in $(seq "$ROUNDS"); do
  res=$(one "$GWS_A" "${A[@]}") || exit 1
  echo "A $res" | tee -a "$W/results"
  res=$(one "$GWS_B" "${B[@]}") || exit 1
  echo "B $res" | tee -a "$W/results"
done
python3 - "$W/results" <<'EOF'
import statistics as S, sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    rows.setdefault(f[0], []).append(dict(zip(f[1::2], map(float, f[2::2]))))
for c in sorted(rows):
    v = rows[c]
    print("%s median of %d: " % (c, len(v)) + ", ".join(
        "%s %s" % (k, ("%.0f" if k in ("rate", "main_sleeps", "worker_preempted") else "%.1f" if k == "peak" else "%.3f") % S.median(x[k] for x in v))
        for k in v[0]))
EOF

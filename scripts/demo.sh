#!/usr/bin/env bash
# demo.sh - gwsieve end to end on this machine, no Kafka install needed:
# builds, starts the embedded Kafka-protocol broker (librdkafka's mock
# cluster), two `gwsieve run` workers in one consumer group, and the traffic
# generator with injected incidents; shows live progress, then a summary of
# the alerts raised; stops everything cleanly.
#
#   ./scripts/demo.sh                    60k events at 3000 ev/s
#   DEMO_EVENTS=20000 DEMO_RATE=2000 ./scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
./scripts/build.sh >/dev/null
BIN=$PWD/build/bin
EVENTS=${DEMO_EVENTS:-60000}
RATE=${DEMO_RATE:-3000}
SIM_RATE=${DEMO_SIM_RATE:-20}   # events per second of *event* time
WORK=$(mktemp -d /tmp/gwsieve-demo.XXXXXX)
pids=()

cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

echo "demo: work dir $WORK"
# The devbroker prints its bootstrap servers on its first stdout line.
"$BIN/gwsieve-devbroker" > "$WORK/broker.out" 2> "$WORK/broker.log" < /dev/null &
pids+=($!)
for _ in $(seq 300); do [ -s "$WORK/broker.out" ] && break; sleep 0.1; done
BOOT=$(head -1 "$WORK/broker.out")
[ -n "$BOOT" ] || { echo "demo: devbroker did not start, see $WORK/broker.log" >&2; exit 1; }
echo "demo: devbroker at $BOOT (topics gw.raw:12 gw.retained:12 gw.alerts:3 gw.dlq:3)"

for i in 1 2; do
  "$BIN/gwsieve" run --config deploy/demo.json --bootstrap "$BOOT" \
    --http "127.0.0.1:$((9463 + i))" 2> "$WORK/worker$i.log" &
  pids+=($!)
done
echo "demo: 2 workers joining group gwsieve-demo (the mock takes a few seconds);"
echo "      metrics at http://127.0.0.1:9464/metrics and :9465 (also /healthz, /readyz)"
# Produce only once both have partitions: the mock keeps ~5 MB per
# partition, and the busiest gateway's partition would overflow before
# anyone reads it.
for _ in $(seq 300); do
  n=0
  for i in 1 2; do grep -q "REBALANCE assigned" "$WORK/worker$i.log" 2>/dev/null && n=$((n + 1)); done
  [ $n -eq 2 ] && break
  sleep 0.1
done

"$BIN/gwsieve-gen" --bootstrap "$BOOT" --topic gw.raw --events "$EVENTS" \
  --rate "$RATE" --sim-rate "$SIM_RATE" --seed 42 --incidents \
  --labels "$WORK/labels.json" --quiet 2> "$WORK/gen.log" &
genpid=$!

# Sum the latest PROGRESS line of each worker.
progress() {
  for i in 1 2; do grep 'PROGRESS' "$WORK/worker$i.log" | tail -1; done |
    python3 -c '
import re, sys
tot = {}
for line in sys.stdin:
    for k, v in re.findall(r"(\w+)=(\d+)", line):
        tot[k] = tot.get(k, 0) + int(v)
print("in=%d retained=%d (error=%d anomaly=%d sample=%d) dropped=%d dlq=%d alerts=%d" % tuple(
    tot.get(k, 0) for k in ("in","retained","error","anomaly","sample","dropped","dlq","alerts")))'
}

start=$(date +%s)
last_in=-1 still=0
while :; do
  sleep 2
  line=$(progress)
  printf 'demo: [%3ds] %s\n' $(( $(date +%s) - start )) "$line"
  done_in=$(sed -n 's/^in=\([0-9]*\).*/\1/p' <<<"$line")
  if ! kill -0 $genpid 2>/dev/null; then
    [ "${done_in:-0}" -ge "$EVENTS" ] && break
    # generator done, nothing new for 10 s: report what arrived
    if [ "${done_in:-0}" -eq "$last_in" ]; then still=$((still + 1)); else still=0; fi
    if [ $still -ge 5 ]; then
      echo "demo: workers processed ${done_in:-0} of $EVENTS events (the rest never reached the devbroker's retention window; see $WORK/*.log)" >&2
      break
    fi
  fi
  last_in=${done_in:-0}
  if [ $(( $(date +%s) - start )) -gt $(( EVENTS / RATE + 120 )) ]; then
    echo "demo: timed out waiting for the workers (see $WORK/*.log)" >&2; break
  fi
done
wait $genpid || { echo "demo: generator failed, see $WORK/gen.log" >&2; }

echo "demo: stopping workers (SIGTERM: drain, commit, leave the group)"
for i in 1 2; do kill -TERM "${pids[$i]}"; done
for i in 1 2; do wait "${pids[$i]}" && echo "demo: worker $i exited 0" || echo "demo: worker $i exited $?"; done

kcat -C -b "$BOOT" -t gw.alerts -e -q -f '%s\n' > "$WORK/alerts.ndjson" 2>/dev/null || true
kcat -C -b "$BOOT" -t gw.dlq -e -q -f '%s\n' > "$WORK/dlq.ndjson" 2>/dev/null || true
echo
python3 - "$WORK/alerts.ndjson" "$WORK/labels.json" <<'PY'
import json, sys
alerts = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
labels = json.load(open(sys.argv[2])) if sys.argv[2] else {"incidents": []}
opens = [a for a in alerts if a["state"] == "open"]
print("Alerts raised: %d open, %d update, %d resolved" % (
    len(opens), sum(a["state"] == "update" for a in alerts),
    sum(a["state"] == "resolved" for a in alerts)))
for a in sorted(opens, key=lambda a: a["window"]["start"]):
    ent = ",".join("%s=%s" % kv for kv in a["entity"].items())
    print("  %-8s %-10s %-45s %s" % (a["severity"], a["kind"], ent, a["reason"]))
print()
print("Injected incidents (ground truth) and whether an open alert named one of their events:")
for inc in labels.get("incidents", []):
    ids = set(inc["event_ids"])
    hit = [a for a in opens if ids & set(a["event_ids"])]
    delay = ""
    if hit:
        from datetime import datetime
        t = min(datetime.fromisoformat(a["window"]["end"].replace("Z", "+00:00")) for a in hit)
        s = datetime.fromisoformat(inc["start"].replace("Z", "+00:00"))
        delay = " after %.0f s of event time" % (t - s).total_seconds()
    print("  %-14s %-45s %s" % (inc["kind"], ",".join("%s=%s" % kv for kv in inc["entity"].items()),
          ("caught by " + ",".join(sorted({a["kind"] for a in hit})) + delay) if hit else "MISSED"))
PY
echo
echo "demo: logs and outputs in $WORK"

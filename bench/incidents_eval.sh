#!/usr/bin/env bash
# incidents_eval.sh - detection quality on labelled synthetic incidents:
# gwsieve-gen --incidents --labels, then gwsieve replay; reports per
# incident kind whether an `open` alert names one of its events, the number
# of `open` alerts that do (one per alert kind is the goal), and the
# delay from the incident's start (event time), how long after the
# incident's end its alerts resolved (event time; the latest of them,
# "open" if one never did), and the false alerts per hour of event time
# (open alerts naming no incident event).
#   bench/incidents_eval.sh [EVENTS] [SEED] [SIM_RATE] [JITTER_S]
# GWS_REPLAY_ARGS="--set detectors.numeric_keys=user_id" passes options to
# replay; GWS_KEEP=DIR keeps the events, labels and outputs there.
# JITTER_S > 0 delivers the events out of order: each is moved to the
# position of ts + uniform(0, JITTER_S) (as gateways that flush late do),
# to show detection within detectors.max_lateness_s.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-300000}
SEED=${2:-11}
SIM=${3:-40}
JITTER=${4:-0}
[ -x build/bin/gwsieve ] || ./scripts/build.sh >/dev/null
W=$(mktemp -d /tmp/gwsieve-inc.XXXXXX)
trap 'rm -rf "$W"' EXIT
build/bin/gwsieve-gen --out "$W/ev.ndjson" --events "$N" --seed "$SEED" \
  --sim-rate "$SIM" --incidents --labels "$W/labels.json" \
  --start 2026-01-01T00:00:00Z -q 2>/dev/null
if [ "$JITTER" != 0 ]; then
  python3 - "$W/ev.ndjson" "$JITTER" <<'PY'
import json, random, sys
from datetime import datetime
random.seed(1)
path, j = sys.argv[1], float(sys.argv[2])
rows = []
for line in open(path):
    ts = datetime.fromisoformat(json.loads(line)["ts"].replace("Z", "+00:00")).timestamp()
    rows.append((ts + random.uniform(0, j), line))
rows.sort(key=lambda r: r[0])
with open(path, "w") as f:
    f.writelines(r[1] for r in rows)
PY
fi
# shellcheck disable=SC2086 # GWS_REPLAY_ARGS: extra options, e.g. "--set k=v"
build/bin/gwsieve replay --input "$W/ev.ndjson" --out-dir "$W/out" ${GWS_REPLAY_ARGS:-} >/dev/null
[ -z "${GWS_KEEP:-}" ] || cp -r "$W" "$GWS_KEEP"
python3 - "$W/out/alerts.ndjson" "$W/labels.json" <<'PY'
import json, sys
from datetime import datetime
def t(s): return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
alerts = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
L = json.load(open(sys.argv[2]))
opens = [a for a in alerts if a["state"] == "open"]
inc_ids = set()
for inc in L["incidents"]:
    inc_ids |= set(inc["event_ids"])
hours = (L["end_ms"] - L["start_ms"]) / 3.6e6
print("events %d over %.2f h of event time; %d open alerts" % (L["events"], hours, len(opens)))
resolved = {a["alert_id"]: a for a in alerts if a["state"] == "resolved"}
print("%-14s %-8s %-9s %-6s %-11s %s" % ("incident", "caught", "delay_s", "opens", "resolved_s", "alert kinds"))
caught = 0
for inc in L["incidents"]:
    ids = set(inc["event_ids"])
    hit = [a for a in opens if ids & set(a["event_ids"])]
    if hit:
        caught += 1
        d = min(t(a["window"]["end"]) for a in hit) - inc["start_ms"] / 1000
        ends = [t(resolved[a["alert_id"]]["window"]["end"]) - inc["end_ms"] / 1000
                if a["alert_id"] in resolved else None for a in hit]
        res = "open" if None in ends else "%.0f" % max(ends)
        print("%-14s %-8s %-9.0f %-6d %-11s %s" % (inc["kind"], "yes", d, len(hit), res, ",".join(sorted({a["kind"] for a in hit}))))
    else:
        print("%-14s %-8s %-9s" % (inc["kind"], "NO", "-"))
false = [a for a in opens if not inc_ids & set(a["event_ids"])]
print("caught %d of %d; false alerts %d (%.2f per hour of event time)" % (
    caught, len(L["incidents"]), len(false), len(false) / hours))
for a in false:
    print("  false: %s %s %s" % (a["kind"], a["entity"], a["reason"][:90]))
PY

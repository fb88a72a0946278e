#!/usr/bin/env python3
"""e2e_loop.py - helper of bench/e2e_bench.sh.

`loop` is contender (b) of the end-to-end benchmark: what a team would
write instead of gwsieve, a confluent-kafka consumer-group loop that does
consume -> json.loads -> z-score of log latency per provider+model ->
filter (keep errors, anomalies z > 3, a deterministic 10% sample of the
rest) -> trim (drop the bodies of sampled events) and redact the kept record
(sieve() of bench/py_sieve.py, shared with the replay benchmark) ->
json.dumps -> produce (key kept). It stops after --events messages, flushes, and writes its own figures (first
consume and last delivery-report wall times, CPU, peak RSS) as JSON.

The other subcommands do the bookkeeping of the shell script:

    e2e_loop.py loop --bootstrap B --topic IN --out-topic OUT --group G
                     --events N --stats FILE
    e2e_loop.py span FILE...          # "%T ..." lines (kcat) -> JSON
                                      # {count, first_ms, last_ms}
    e2e_loop.py latency --inputs FILE --alerts FILE
                                      # event-to-alert latency -> JSON
    e2e_loop.py report RESULTS.jsonl  # final table (per run, medians)

Only the standard library and Debian's python3-confluent-kafka (1.7.0) are
needed; run it with /usr/bin/python3.
"""
import argparse
import json
import math
import os
import re
import resource
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


# ------------------------------------------------------------------------
# loop: contender (b)
# ------------------------------------------------------------------------

def vm_hwm_kb():
    """Peak RSS of this process (VmHWM) in kB, or 0 when unknown."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cmd_loop(a):
    from confluent_kafka import Consumer, KafkaException, Producer
    from py_sieve import sieve  # the replay benchmark's per-event code

    consumer = Consumer({
        "bootstrap.servers": a.bootstrap,
        "group.id": a.group,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "cooperative-sticky",
        "session.timeout.ms": 6000,
        "enable.auto.commit": True,
    })
    producer = Producer({
        "bootstrap.servers": a.bootstrap,
        "linger.ms": a.linger_ms,  # as gwsieve's producer (and kcat's)
        "enable.idempotence": True,
        "queue.buffering.max.messages": 200000,
    })
    st = {"acked": 0, "failed": 0, "last_ack": 0.0}

    def on_delivery(err, _msg):
        if err is not None:
            st["failed"] += 1
        else:
            st["acked"] += 1
            st["last_ack"] = time.time()

    stats = {}  # (provider, model) -> [n, mean, m2] (Welford)
    consumed = produced = bad = 0
    first = None
    cpu_first = 0.0  # process CPU when the first batch arrived
    idle_since = time.time()
    consumer.subscribe([a.topic])
    while consumed < a.events:
        msgs = consumer.consume(500, 0.2)
        if not msgs:
            if time.time() - idle_since > a.idle_timeout:
                print("e2e_loop: idle for %d s after %d events, giving up"
                      % (a.idle_timeout, consumed), file=sys.stderr)
                break
            producer.poll(0)
            continue
        idle_since = time.time()
        if first is None:
            first = time.time()
            ru = resource.getrusage(resource.RUSAGE_SELF)
            cpu_first = ru.ru_utime + ru.ru_stime
        for m in msgs:
            if m.error():
                continue
            consumed += 1
            ev = sieve(m.value(), stats, trim_sampled=True)
            if ev is False:
                bad += 1
            if not ev:
                continue
            out = json.dumps(ev, separators=(",", ":"))
            while True:
                try:
                    producer.produce(a.out_topic, out, m.key(),
                                     on_delivery=on_delivery)
                    break
                except BufferError:
                    producer.poll(0.05)
            produced += 1
        producer.poll(0)
    left = producer.flush(30)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    res = {
        "consumed": consumed, "produced": produced, "bad": bad,
        "acked": st["acked"], "failed": st["failed"], "unflushed": left,
        "first_consumed": first, "last_acked": st["last_ack"] or None,
        "cpu_s": ru.ru_utime + ru.ru_stime, "cpu_at_first": cpu_first,
        "peak_rss_kb": vm_hwm_kb(),
    }
    try:
        consumer.close()
    except KafkaException:
        pass
    with open(a.stats, "w") as f:
        json.dump(res, f)
    return 0 if consumed >= a.events and not left and not st["failed"] else 1


# ------------------------------------------------------------------------
# span: first/last message timestamp of kcat "%T ..." lines
# ------------------------------------------------------------------------

def cmd_span(a):
    n, lo, hi = 0, None, None
    for path in a.files:
        with open(path, "rb") as f:
            for line in f:
                head = line.split(b" ", 1)[0].strip()
                if not head:
                    continue
                t = int(head)
                n += 1
                lo = t if lo is None or t < lo else lo
                hi = t if hi is None or t > hi else hi
    print(json.dumps({"count": n, "first_ms": lo, "last_ms": hi}))
    return 0


# ------------------------------------------------------------------------
# latency: alert message timestamp - newest input timestamp of its events
# ------------------------------------------------------------------------

ID_RE = re.compile(rb'"id":"([^"]+)"')


def pct(xs, p):
    """Nearest-rank percentile of a sorted list."""
    if not xs:
        return None
    k = max(0, min(len(xs) - 1, math.ceil(p / 100.0 * len(xs)) - 1))
    return xs[k]


def cmd_latency(a):
    ts_of = {}
    with open(a.inputs, "rb") as f:
        for line in f:
            sp = line.split(b" ", 1)
            if len(sp) != 2:
                continue
            m = ID_RE.search(sp[1])
            if m:
                ts_of[m.group(1).decode()] = int(sp[0])
    lat, per_kind, missing, states = [], {}, 0, {}
    with open(a.alerts, "rb") as f:
        for line in f:
            sp = line.split(b" ", 1)
            if len(sp) != 2 or not sp[1].strip():
                continue
            al = json.loads(sp[1])
            states[al["state"]] = states.get(al["state"], 0) + 1
            # open and update are emitted while processing the event that
            # triggered them, which is the newest of event_ids; resolved
            # is emitted when event time passes, not by an event.
            if al["state"] not in ("open", "update"):
                continue
            known = [ts_of[i] for i in al.get("event_ids", []) if i in ts_of]
            if not known:
                missing += 1
                continue
            d = int(sp[0]) - max(known)
            lat.append(d)
            per_kind.setdefault(al["kind"], []).append(d)
    lat.sort()
    res = {
        "inputs": len(ts_of), "processed": a.processed, "alerts": states, "measured": len(lat),
        "unmatched": missing, "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99),
        "max_ms": lat[-1] if lat else None,
        "per_kind_p99_ms": {k: pct(sorted(v), 99) for k, v in per_kind.items()},
    }
    print(json.dumps(res))
    return 0


# ------------------------------------------------------------------------
# report: the final table
# ------------------------------------------------------------------------

def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def cmd_report(a):
    runs = []
    with open(a.results) as f:
        for line in f:
            if line.strip():
                runs.append(json.loads(line))
    if not runs:
        print("no results")
        return 1
    names = [("kcat", "(a) kcat pass-through"), ("python", "(b) python loop"),
             ("gwsieve", "(c) gwsieve")]
    hdr = "%-5s %-22s %10s %9s %11s %9s %10s" % (
        "run", "contender", "steady ev/s", "vs kcat", "CPU-s/100k",
        "peak MB", "outputs")
    print(hdr)
    print("-" * len(hdr))

    def row(run, label, c, kc):
        ratio = (c["rate"] / kc["rate"]) if c.get("rate") and kc.get("rate") \
            else None
        print("%-5s %-22s %10s %9s %11s %9s %10s" % (
            run, label, fmt(c.get("rate"), ",.0f"), fmt(ratio, ".2f"),
            fmt(c.get("cpu_per_100k"), ".2f"),
            fmt(c.get("rss_kb") and c["rss_kb"] / 1024.0, ".1f"),
            fmt(c.get("outputs"), "d")))

    for r in runs:
        for key, label in names:
            row(str(r["run"]), label, r[key], r["kcat"])
    med = {}
    for key, _ in names:
        med[key] = {}
        for f in ("rate", "cpu_per_100k", "rss_kb", "outputs"):
            xs = [r[key][f] for r in runs if r[key].get(f) is not None]
            med[key][f] = statistics.median(xs) if xs else None
    print("-" * len(hdr))
    for key, label in names:
        row("med", label, med[key], med["kcat"])
    ratios = [r["gwsieve"]["rate"] / r["kcat"]["rate"] for r in runs
              if r["gwsieve"].get("rate") and r["kcat"].get("rate")]
    print()
    print("gwsieve/kcat steady ratio per run: %s (median %s)" % (
        ", ".join("%.2f" % x for x in ratios),
        fmt(statistics.median(ratios) if ratios else None, ".2f")))
    print("gwsieve steady by /metrics (100 ms polls of a snapshot rendered "
          "every second; - under 1.5 s) per run: %s ev/s" % (
        ", ".join(fmt(r["gwsieve"].get("rate_metrics"), ",.0f")
                  for r in runs)))
    print("python steady by its own clock per run: %s ev/s" % (
        ", ".join(fmt(r["python"].get("rate_self"), ",.0f") for r in runs)))
    cheaper = [r["python"]["cpu_per_100k"] / r["gwsieve"]["cpu_per_100k"]
               for r in runs if r["python"].get("cpu_per_100k")
               and r["gwsieve"].get("cpu_per_100k")]
    print("python/gwsieve CPU ratio per run: %s (median %s)" % (
        ", ".join("%.2f" % x for x in cheaper),
        fmt(statistics.median(cheaper) if cheaper else None, ".2f")))
    # The same over each contender's steady window (from its first
    # consumed batch to the end; start-up, imports and the group join
    # left out): what a long-running worker pays per event.
    steady = [(r["python"]["cpu_steady_per_100k"],
               r["gwsieve"]["cpu_steady_per_100k"]) for r in runs
              if r["python"].get("cpu_steady_per_100k")
              and r["gwsieve"].get("cpu_steady_per_100k")]
    if steady:
        print("steady-window CPU-s/100k per run, python / gwsieve (ratio): "
              "%s; medians %.2f / %.2f (%.2fx)" % (
                  ", ".join("%.2f / %.2f (%.2fx)" % (y, g, y / g)
                            for y, g in steady),
                  statistics.median(y for y, _ in steady),
                  statistics.median(g for _, g in steady),
                  statistics.median(y / g for y, g in steady)))
    split = [(r["gwsieve"]["cpu_rdk_per_100k"],
              r["gwsieve"]["cpu_workers_per_100k"], r["gwsieve"]["cpu_per_100k"])
             for r in runs if r["gwsieve"].get("cpu_rdk_per_100k") is not None]
    if split:
        print("gwsieve CPU-s/100k by thread per run (librdkafka threads / "
              "workers / rest): %s" % ", ".join(
                  "%.2f/%.2f/%.2f" % (k, w, t - k - w) for k, w, t in split))
    floor = [r["kcat"]["consume_cpu_per_100k"] for r in runs
             if r["kcat"].get("consume_cpu_per_100k") is not None]
    if floor:
        print("Kafka consume floor, kcat -C into /dev/null (no group, no "
              "output) CPU-s/100k per run: %s (median %.2f)" % (
                  ", ".join("%.2f" % x for x in floor),
                  statistics.median(floor)))
    # What the processing costs without Kafka, and the two floors added
    # up against gwsieve and against a quarter of the python loop (the
    # issue's "4x cheaper"): how much of gwsieve's CPU is service overhead.
    rows = [(r["kcat"]["consume_cpu_per_100k"],
             r["gwsieve"]["replay_cpu_per_100k"],
             r["gwsieve"]["cpu_per_100k"], r["python"]["cpu_per_100k"])
            for r in runs
            if r["gwsieve"].get("replay_cpu_per_100k") is not None
            and r["kcat"].get("consume_cpu_per_100k") is not None
            and r["gwsieve"].get("cpu_per_100k")
            and r["python"].get("cpu_per_100k")]
    if rows:
        print("gwsieve replay of the same events (no Kafka) CPU-s/100k per "
              "run: %s (median %.2f)" % (
                  ", ".join("%.2f" % x[1] for x in rows),
                  statistics.median(x[1] for x in rows)))
        print("consume floor + replay / gwsieve / python / 4 per run: %s" %
              ", ".join("%.2f / %.2f / %.2f" % (f + p, g, y / 4)
                        for f, p, g, y in rows))
    print()
    p99s = []
    for lk, rk, title in (
            ("latency", "lat_rate", "default settings"),
            ("latency2", "lat2_rate",
             "consumer fetch.wait.max.ms lowered (mock artifact removed)")):
        if not any(r.get(lk) for r in runs):
            continue
        print("alert latency at half load, gwsieve, keyed input, "
              "--incidents; %s:" % title)
        print("%-5s %10s %8s %8s %8s %8s %8s %s" % (
            "run", "rate ev/s", "lost", "alerts", "p50 ms", "p99 ms",
            "max ms", "p99 by kind (ms)"))
        p50k, p99k = [], []
        for r in runs:
            la = r.get(lk) or {}
            if la.get("p50_ms") is not None:
                p50k.append(la["p50_ms"])
                p99k.append(la["p99_ms"])
            lost = None
            if la.get("processed") is not None:
                lost = max(0, la["inputs"] - la["processed"])
            print("%-5s %10s %8s %8s %8s %8s %8s %s" % (
                r["run"], fmt(r.get(rk), ",.0f"), fmt(lost, "d"),
                fmt(la.get("measured"), "d"), fmt(la.get("p50_ms"), "d"),
                fmt(la.get("p99_ms"), "d"), fmt(la.get("max_ms"), "d"),
                " ".join("%s=%d" % kv for kv in
                         sorted((la.get("per_kind_p99_ms") or {}).items()))))
        if p50k:
            print("%-5s %10s %8s %8s %8s %8s" % (
                "med", "", "", "", fmt(statistics.median(p50k), ".0f"),
                fmt(statistics.median(p99k), ".0f")))
        if lk == "latency":
            p99s = p99k
        print()
    g = med["gwsieve"]
    ratio = statistics.median(ratios) if ratios else None
    checks = [
        ("steady >= 0.9x kcat", ratio is not None and ratio >= 0.9,
         fmt(ratio, ".2f") + "x"),
        ("<= 0.3 CPU-s per 100k events", g["cpu_per_100k"] is not None and
         g["cpu_per_100k"] <= 0.3, fmt(g["cpu_per_100k"], ".2f")),
        (">= 4x cheaper than python", bool(cheaper) and
         statistics.median(cheaper) >= 4.0,
         fmt(statistics.median(cheaper) if cheaper else None, ".2f") + "x"),
        ("peak RSS <= 64 MB", g["rss_kb"] is not None and
         g["rss_kb"] <= 64 * 1024, fmt(g["rss_kb"] and g["rss_kb"] / 1024.0,
                                       ".1f") + " MB"),
        ("alert p99 < 250 ms (default settings)", bool(p99s) and
         statistics.median(p99s) < 250,
         fmt(statistics.median(p99s) if p99s else None, ".0f") + " ms"),
    ]
    print("targets (gwsieve, medians):")
    for name, ok, val in checks:
        print("  %-34s %-6s %s" % (name, "met" if ok else "MISSED", val))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("loop")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--out-topic", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--events", type=int, required=True)
    p.add_argument("--stats", required=True)
    p.add_argument("--idle-timeout", type=int, default=60)
    p.add_argument("--linger-ms", type=int, default=50,
                   help="producer linger.ms (gwsieve's default: 50)")
    p = sub.add_parser("span")
    p.add_argument("files", nargs="+")
    p = sub.add_parser("latency")
    p.add_argument("--inputs", required=True)
    p.add_argument("--alerts", required=True)
    p.add_argument("--processed", type=int, default=None,
                   help="events gwsieve processed (reported only)")
    p = sub.add_parser("report")
    p.add_argument("results")
    a = ap.parse_args()
    return {"loop": cmd_loop, "span": cmd_span, "latency": cmd_latency,
            "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())

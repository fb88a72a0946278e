#!/usr/bin/env python3
"""py_sieve.py - what a team would write instead of gwsieve replay, for the
side-by-side benchmark: json parse, regex redaction of secrets/PII in every
string, a per provider+model z-score on log latency, keep errors/anomalies,
deterministic 10% sample of the rest, json serialise.

    python3 bench/py_sieve.py < events.ndjson > retained.ndjson
"""
import hashlib
import json
import math
import re
import sys

SECRET = re.compile(
    r"sk-ant-[A-Za-z0-9_-]{20,}|sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"
    r"|\b(?:AKIA|ASIA)[A-Z0-9]{16}\b|AIza[A-Za-z0-9_-]{35}"
    r"|\bgh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}"
    r"|xox[abprs]-[A-Za-z0-9-]{10,}|Bearer\s+[A-Za-z0-9._~+/=-]{16,}"
    r"|eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"
    r"|[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
    r"|\b(?:\d[ -]?){13,19}\b")


def redact(v):
    if isinstance(v, str):
        return SECRET.sub("[REDACTED]", v) if v else v
    if isinstance(v, dict):
        return {k: redact(x) for k, x in v.items()}
    if isinstance(v, list):
        return [redact(x) for x in v]
    return v


SAMPLE_CUT = int(0.1 * 2**64)


def sieve(raw, stats, trim_sampled=False):
    """One event, as a team would write it: json, z-score of log latency per
    provider+model (Welford, in stats), keep errors and anomalies (z > 3)
    and a deterministic 10% sample of the rest, redact. With trim_sampled
    the bodies of sampled events are dropped (gwsieve's default policy).
    Returns the kept record (a dict), None when dropped, or False when the
    input does not parse."""
    try:
        ev = json.loads(raw)
        lat = math.log1p(float(ev["latency_ms"]))
        key = (ev["provider"], ev["model"])
        status = int(ev["status"])
    except (ValueError, KeyError, TypeError):
        return False
    s = stats.setdefault(key, [0, 0.0, 0.0])
    z = 0.0
    if s[0] > 30:
        sd = math.sqrt(s[2] / (s[0] - 1)) or 1e-9
        z = (lat - s[1]) / sd
    s[0] += 1
    d = lat - s[1]
    s[1] += d / s[0]
    s[2] += d * (lat - s[1])
    if status >= 400 or ev.get("success") is False:
        kept = "error"
    elif z > 3:
        kept = "anomaly"
    elif int.from_bytes(hashlib.blake2b(ev["id"].encode(), digest_size=8)
                        .digest(), "big") < SAMPLE_CUT:
        kept = "sample"
        if trim_sampled:
            ev.pop("request", None)
            ev.pop("response", None)
    else:
        return None
    ev = redact(ev)
    ev["sieve"] = {"score": min(1.0, max(0.0, z / 6)), "kept": kept}
    return ev


def main():
    stats = {}  # (provider, model) -> [n, mean, m2]
    out = sys.stdout
    n_in = n_kept = 0
    for line in sys.stdin:
        n_in += 1
        ev = sieve(line, stats)
        if not ev:
            continue
        out.write(json.dumps(ev, separators=(",", ":")))
        out.write("\n")
        n_kept += 1
    print(f"py_sieve: {n_in} in, {n_kept} kept", file=sys.stderr)


if __name__ == "__main__":
    main()

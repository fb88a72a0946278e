#!/usr/bin/python3
"""check_deploy.py - consistency check of gwsieve's deployment files, no Docker.

Parses every YAML and JSON file under deploy/ and docker-compose.yml, then
checks the references between them:

  * files: compose volume sources and build files, Dockerfile COPY sources,
    kustomization resources exist in the repository;
  * config path: systemd ExecStart, Dockerfile CMD/COPY, compose command and
    mount, and the Kubernetes args/ConfigMap mount all use the same path;
  * ports: the metrics port in compose (env, healthcheck, Prometheus
    targets), the Dockerfile, Kubernetes (containerPort, probes, Service,
    scrape annotations) and the ConfigMap's http.listen agree;
  * Kafka: topics created by compose == topics.* of the example config and of
    the ConfigMap; KEDA/HPA topic == topics.input, KEDA consumerGroup ==
    group, maxReplicaCount == partitions of the input topic; brokers agree;
  * metrics: every metric used by the alert rules and the Grafana dashboard
    is in docs/metrics.txt;
  * memory: no configuration raises a librdkafka memory bound
    (queued.max.messages.kbytes, ...) above the value gwsieve sets itself
    (src/service.c);
  * config keys: the ConfigMap's keys are known to `gwsieve help-config` and
    `gwsieve check-config` accepts every configuration (when build/bin/gwsieve
    exists), GWSIEVE_* variables name real keys;
  * autoscaling: with an autoscaler in kustomization.yaml the Deployment
    sets no replicas (each apply would scale the group back), and its
    minimum stays above the PDB's maxUnavailable;
  * shutdown: every stop timeout (compose, systemd, Kubernetes) exceeds
    the longest a SIGTERM can take: six waits of shutdown_timeout_ms and
    2.5 s (SHUTDOWN_STEPS);
  * tools when present: promtool check rules/config (and the dashboard's
    PromQL), promtool test rules (deploy/prometheus/gwsieve-rules.test.yml),
    kubectl kustomize, systemd-analyze verify.

Exits 1 naming the file and the mismatch, 0 with a one-line summary.

    /usr/bin/python3 tests/deploy/check_deploy.py     (scripts/check-deploy.sh)
"""

import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:
    sys.exit("check_deploy: python3-yaml is missing "
             "(apt-get install python3-yaml, or run scripts/check-deploy.sh)")

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEPLOY = os.path.join(ROOT, "deploy")
COMPOSE = os.path.join(ROOT, "docker-compose.yml")
METRICS_TXT = os.path.join(ROOT, "docs", "metrics.txt")
BIN_DIR = os.environ.get("GWS_BIN_DIR", os.path.join(ROOT, "build", "bin"))
GWSIEVE = os.path.join(BIN_DIR, "gwsieve")

METRICS_PORT = 9464
CONFIG_PATH = "/etc/gwsieve/gwsieve.json"
BINARY_PATH = "/usr/local/bin/gwsieve"

# Topics that compose may create although no topics.* or state.topic key
# names them: none (any extra topic is an error).
RESERVED_TOPICS = set()

# Series Prometheus adds itself, allowed in rules next to docs/metrics.txt.
PROMETHEUS_SERIES = {"up"}

# ConfigMap values that may differ from deploy/gwsieve.example.json.
K8S_OVERRIDES = {"kafka.bootstrap.servers", "http.listen"}

REQUIRED_ALERTS = {"GwsieveConsumerLagGrowing", "GwsieveDLQRateHigh",
                   "GwsieveNoProgress", "GwsieveDown",
                   "GwsieveDeliveryFailures", "GwsieveStateNearCap"}

PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left",
                   "group_right", "and", "or", "unless", "bool", "offset",
                   "inf", "nan", "atan2"}

errors = []
notes = []
checked = []


def rel(path):
    r = os.path.relpath(path, ROOT)
    return path if r.startswith("..") else r


def err(path, msg):
    path = path or os.path.join(DEPLOY, "k8s")
    errors.append("%s: %s" % (rel(path) if os.path.isabs(path) else path, msg))


def ok(what):
    checked.append(what)


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------

def load_files():
    """Parse every YAML/JSON file under deploy/ and docker-compose.yml."""
    docs = {}
    paths = [COMPOSE]
    for ext in ("yml", "yaml", "json"):
        paths += glob.glob(os.path.join(DEPLOY, "**", "*." + ext),
                           recursive=True)
    for path in sorted(set(paths)):
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
            if path.endswith(".json"):
                docs[path] = [json.loads(text)]
            else:
                docs[path] = [d for d in yaml.safe_load_all(text)
                              if d is not None]
        except (ValueError, yaml.YAMLError) as e:
            err(path, "does not parse: %s" % str(e).replace("\n", " "))
        except OSError as e:
            err(path, "cannot be read: %s" % e)
    return docs


def flatten(cfg, prefix=""):
    """gwsieve JSON config -> {dotted key: value}; kafka.* keeps librdkafka
    property names (which contain dots) whole."""
    out = {}
    for k, v in cfg.items():
        key = prefix + k
        if key == "kafka" and isinstance(v, dict):
            for pk, pv in v.items():
                if pk in ("consumer", "producer") and isinstance(pv, dict):
                    for ck, cv in pv.items():
                        out["kafka.%s.%s" % (pk, ck)] = cv
                else:
                    out["kafka." + pk] = pv
        elif isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def port_of(listen):
    m = re.fullmatch(r"(.*):(\d+)", str(listen))
    return int(m.group(2)) if m else None


def parse_duration(s):
    """Compose/Go duration ("15s", "1m30s", "500ms") -> seconds."""
    if isinstance(s, (int, float)):
        return float(s)
    total, units = 0.0, {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", str(s))
    if not parts or "".join(a + b for a, b in parts) != str(s):
        return None
    for num, unit in parts:
        total += float(num) * units[unit]
    return total


def parse_memory(s):
    """Kubernetes quantity -> bytes (Ki/Mi/Gi, K/M/G)."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|K|M|G|k)?", str(s))
    if not m:
        return None
    mult = {None: 1, "Ki": 1024, "Mi": 1024 ** 2, "Gi": 1024 ** 3,
            "k": 1000, "K": 1000, "M": 1000 ** 2, "G": 1000 ** 3}
    return float(m.group(1)) * mult[m.group(2)]


def metric_names(expr):
    """Metric names used in a PromQL expression (Grafana variables allowed)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"'(?:[^'\\]|\\.)*'", "''", e)
    e = re.sub(r"\$\{?\w+\}?", "", e)
    e = re.sub(r"\{[^}]*\}", "", e)
    e = re.sub(r"\[[^\]]*\]", "", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*"
               r"\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w.:])([a-zA-Z_:][\w:]*)(\s*\()?", e):
        if m.group(2) or m.group(1).lower() in PROMQL_KEYWORDS:
            continue
        names.add(m.group(1))
    return names


def known_metric(name, families):
    if name in families or name in PROMETHEUS_SERIES:
        return True
    m = re.fullmatch(r"(.+)_(bucket|sum|count)", name)
    return bool(m and m.group(1) in families
                and not m.group(1).endswith("_total"))


def grafana_to_promql(expr):
    """Replace Grafana's variables so that promtool can parse the query."""
    e = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m")
    e = e.replace("$__range", "1h")
    return re.sub(r"\$\{?\w+\}?", ".*", e)


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          **kw)


# ----------------------------------------------------------------------------
# gwsieve itself: metric list, config keys
# ----------------------------------------------------------------------------

def load_metrics():
    fams = []
    try:
        with open(METRICS_TXT, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                if not re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line):
                    err(METRICS_TXT, "line %d: %r is not a bare metric name"
                        % (n, line))
                fams.append(line)
    except OSError as e:
        err(METRICS_TXT, "cannot be read: %s" % e)
    if len(set(fams)) != len(fams):
        err(METRICS_TXT, "duplicate names: %s" % sorted(
            {x for x in fams if fams.count(x) > 1}))
    return set(fams)


def help_config_keys():
    """(exact keys, wildcard prefixes) from `gwsieve help-config`, or None."""
    if not os.access(GWSIEVE, os.X_OK):
        return None
    r = run([GWSIEVE, "help-config"])
    if r.returncode != 0:
        err(GWSIEVE, "help-config failed (exit %d): %s"
            % (r.returncode, r.stderr.strip()))
        return None
    keys, prefixes = set(), set()
    for line in r.stdout.splitlines():
        m = re.match(r"^  (\S+)\s+(string|int|number|bool|array|object)?",
                     line)
        if not m:
            continue
        if m.group(1).endswith(".<property>"):
            prefixes.add(m.group(1)[:-len("<property>")])
        else:
            keys.add(m.group(1))
    # http.listen is being added; allowed even if this build lacks it.
    keys.add("http.listen")
    return keys, prefixes


def key_known(key, hc):
    keys, prefixes = hc
    if key in keys:
        return True
    if key.startswith("kafka.consumer.") or key.startswith("kafka.producer."):
        return any(key.startswith(p) for p in prefixes
                   if p in ("kafka.consumer.", "kafka.producer."))
    return key.startswith("kafka.") and "kafka." in prefixes


def env_names(hc, example):
    keys = hc[0] if hc else set(flatten(example)) | {"http.listen"}
    names = {"GWSIEVE_" + k.upper().replace(".", "_") for k in keys
             if not k.startswith("kafka.")}
    return names | {"GWSIEVE_BOOTSTRAP"}


# librdkafka properties that bound memory: a deployment file that sets one
# above the value gwsieve sets itself raises its memory, whatever the
# comment next to it says (the ConfigMap once set the prefetch queue to
# 16 MB "for the 256Mi limit" after gwsieve's own default became 4 MB).
MEMORY_PROPS = {"queued.max.messages.kbytes", "queued.min.messages",
                "fetch.max.bytes", "queue.buffering.max.kbytes",
                "queue.buffering.max.messages"}
SERVICE_C = os.path.join(ROOT, "src", "service.c")


def rdkafka_defaults():
    """{(client, property): value} that gwsieve sets on its clients
    (conf_set() calls of src/service.c), or None if it cannot be read."""
    try:
        with open(SERVICE_C, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return None
    return {(m.group(3), m.group(1)): m.group(2) for m in re.finditer(
        r'conf_set\(\s*\w+,\s*"([^"]+)",\s*"([^"]*)",\s*'
        r'"(consumer|producer)"', text)}


def check_memory_props(path, flat, defaults, where=""):
    """Memory bounds of \p flat (a flattened config) above gwsieve's own."""
    for key, val in flat.items():
        m = re.fullmatch(r"kafka\.(?:(consumer|producer)\.)?(.+)", key)
        if not m or m.group(2) not in MEMORY_PROPS:
            continue
        for client in ([m.group(1)] if m.group(1) else
                       ["consumer", "producer"]):
            d = defaults.get((client, m.group(2)))
            try:
                above = d is not None and float(val) > float(d)
            except ValueError:
                continue
            if above:
                err(path, "%s%s = %s raises gwsieve's own %s default %s "
                    "(src/service.c): more memory, not less"
                    % (where, key, val, client, d))


def check_config_file(path, text=None):
    """Run `gwsieve check-config` on a file (or on text); True if accepted."""
    if not os.access(GWSIEVE, os.X_OK):
        return None
    tmp = None
    if text is not None:
        fd, tmp = tempfile.mkstemp(suffix=".json")
        with os.fdopen(fd, "w") as f:
            f.write(text)
    try:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("GWSIEVE_")}
        r = run([GWSIEVE, "check-config", tmp or path], env=env)
    finally:
        if tmp:
            os.unlink(tmp)
    if r.returncode != 0:
        err(path, "gwsieve check-config rejects it: %s"
            % (r.stderr.strip() or r.stdout.strip()).replace("\n", " | "))
        return False
    return True


# ----------------------------------------------------------------------------
# Dockerfile
# ----------------------------------------------------------------------------

def check_dockerfile(path, context):
    info = {"copies": {}, "installed": set(), "cmd": None, "expose": set(), "env": {},
            "uid": None, "gid": None, "user": None}
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        err(path, "cannot be read: %s" % e)
        return info
    text = re.sub(r"\\\n", " ", text)
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instr, _, rest = line.partition(" ")
        instr = instr.upper()
        if instr in ("COPY", "ADD"):
            words = shlex.split(rest)
            stage = any(w.startswith("--from") for w in words)
            words = [w for w in words if not w.startswith("--")]
            srcs, dst = words[:-1], words[-1]
            if stage:
                # From another build stage: only where it lands.
                for s in srcs:
                    d = dst + os.path.basename(s) if dst.endswith("/") \
                        else dst
                    info["installed"].add(d)
                continue
            for s in srcs:
                if not glob.glob(os.path.join(context, s)):
                    err(path, "COPY source %r does not exist in %s"
                        % (s, rel(context) or "."))
                info["copies"][dst] = s
        elif instr in ("CMD", "ENTRYPOINT"):
            try:
                val = json.loads(rest)
            except ValueError:
                val = shlex.split(rest)
            info[instr.lower()] = val
        elif instr == "EXPOSE":
            for p in rest.split():
                info["expose"].add(int(p.split("/")[0]))
        elif instr == "ENV":
            for k, v in re.findall(r"(\w+)=(\S+)", rest):
                info["env"][k] = v
        elif instr == "USER":
            info["user"] = rest.strip()
        elif instr == "RUN":
            m = re.search(r"useradd\b.*--uid\s+(\d+)", rest)
            if m:
                info["uid"] = int(m.group(1))
                # the user's primary group: --gid N (a groupadd --gid N
                # before it), else a new system group of another number
                g = re.search(r"useradd\b[^&;]*--gid\s+(\d+)", rest)
                info["gid"] = int(g.group(1)) if g else "system"
    return info


# ----------------------------------------------------------------------------
# docker-compose.yml
# ----------------------------------------------------------------------------

def compose_mounts(svc):
    """[(host source, container target)] of bind mounts."""
    out = []
    for v in svc.get("volumes", []) or []:
        if isinstance(v, str):
            parts = v.split(":")
            if len(parts) >= 2:
                out.append((parts[0], parts[1]))
        elif isinstance(v, dict) and v.get("type", "bind") == "bind":
            out.append((v.get("source"), v.get("target")))
    return out


def resolve_in_container(path, mounts):
    """Container path -> repo path through bind mounts, or None."""
    best = None
    for src, dst in mounts:
        if not (src.startswith(".") or src.startswith("/")):
            continue
        dst = dst.rstrip("/")
        if path == dst or path.startswith(dst + "/"):
            if best is None or len(dst) > len(best[1]):
                best = (src, dst)
    if best is None:
        return None
    return os.path.normpath(os.path.join(ROOT, best[0], path[len(best[1]):]
                                         .lstrip("/")))


def svc_env(svc):
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
    return {k: str(v) for k, v in env.items()}


def arg_after(args, flag):
    args = list(args or [])
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


# ----------------------------------------------------------------------------
# the checks
# ----------------------------------------------------------------------------

# A SIGTERM runs these waits one after the other, each bounded by
# shutdown_timeout_ms (src/service.c, gws_service_run() after "shutdown:"
# and on_revoke()/snapshot_revoked(), which rd_kafka_consumer_close() runs):
#   1. drain: wait_idle() for the queued work and its outputs;
#   2. revocation: wait_idle() again for the revoked partitions (it waits
#      the whole bound again when the first one timed out);
#   3. revocation snapshots of quiet partitions whose last one is not yet
#      acknowledged: gws_changelog_wait_delivered();
#   4. revocation snapshots written: gws_changelog_wait_delivered();
#   5. failed deliveries produced again (retries_run() loop);
#   6. rd_kafka_flush().
# Before them a restore's committed-offset lookup is stopped (up to 2 s)
# and the fetch wake-up thread joined (up to 0.5 s). Measured on the
# devbroker at 8 s: outputs of half the partitions and the state topic
# without a leader, SIGTERM took 32.1 s (waits 1, 2, 4, 6), more than the
# 30 s the deploy files once gave; a stop timeout must cover all of it or
# the supervisor kills gwsieve mid-way (nothing is lost: undelivered
# offsets stay uncommitted, but the revocation snapshots and the last
# commit are).
SHUTDOWN_STEPS = 6
SHUTDOWN_EXTRA_S = 2.5


def shutdown_bound(shutdown_s):
    """Longest a SIGTERM can take, in seconds, at this shutdown_timeout_ms."""
    return SHUTDOWN_STEPS * shutdown_s + SHUTDOWN_EXTRA_S


def shutdown_why(shutdown_s):
    return ("gwsieve's shutdown can take %d x shutdown_timeout_ms (%g s) + "
            "%g s = %g s" % (SHUTDOWN_STEPS, shutdown_s, SHUTDOWN_EXTRA_S,
                             shutdown_bound(shutdown_s)))

def main():
    docs = load_files()
    families = load_metrics()
    example_path = os.path.join(DEPLOY, "gwsieve.example.json")
    example = (docs.get(example_path) or [{}])[0]
    ex = flatten(example)
    shutdown_s = ex.get("shutdown_timeout_ms", 8000) / 1000.0
    config_topics = {k: v for k, v in ex.items() if k.startswith("topics.")}
    for t in ("input", "retained", "alerts", "dlq"):
        config_topics.setdefault("topics." + t, "gw." + {
            "input": "raw"}.get(t, t))
    # Detector snapshots (state.topic, default gw.state): must exist and
    # be compacted (checked below) unless "off".
    state_topic = ex.get("state.topic", "gw.state")
    if state_topic != "off":
        config_topics["state.topic"] = state_topic

    hc = help_config_keys()
    if hc is None:
        notes.append("help-config key check skipped (%s not built)"
                     % rel(GWSIEVE))
    known_env = env_names(hc, example)

    def check_env(path, where, names):
        for n in names:
            if n.startswith("GWSIEVE_") and n not in known_env:
                err(path, "%s: environment variable %s is not read by "
                    "gwsieve (GWSIEVE_<KEY> of a help-config key, or "
                    "GWSIEVE_BOOTSTRAP for the brokers)" % (where, n))

    # Every gwsieve configuration JSON in deploy/ (top level) is accepted.
    rk_defaults = rdkafka_defaults()
    if rk_defaults is None:
        notes.append("%s not found: librdkafka memory bounds not compared"
                     % rel(SERVICE_C))
    for path in sorted(glob.glob(os.path.join(DEPLOY, "*.json"))):
        if path in docs and check_config_file(path):
            ok("check-config " + rel(path))
        if path in docs and rk_defaults and isinstance(docs[path][0], dict):
            check_memory_props(path, flatten(docs[path][0]), rk_defaults)

    # ---- Dockerfile -------------------------------------------------------
    compose = (docs.get(COMPOSE) or [{}])[0]
    services = compose.get("services") or {}
    dockerfile, context = os.path.join(DEPLOY, "Dockerfile"), ROOT
    for name, svc in services.items():
        b = svc.get("build")
        if isinstance(b, dict):
            context = os.path.normpath(os.path.join(ROOT,
                                                    b.get("context", ".")))
            dockerfile = os.path.join(context, b.get("dockerfile",
                                                     "Dockerfile"))
            if not os.path.isfile(dockerfile):
                err(COMPOSE, "service %s: build.dockerfile %s does not exist"
                    % (name, rel(dockerfile)))
    df = check_dockerfile(dockerfile, context)
    if df["copies"].get(CONFIG_PATH) is None:
        err(dockerfile, "no COPY of a configuration to %s" % CONFIG_PATH)
    elif df["copies"][CONFIG_PATH] != rel(example_path):
        err(dockerfile, "copies %s to %s, expected %s"
            % (df["copies"][CONFIG_PATH], CONFIG_PATH, rel(example_path)))
    if arg_after(df.get("cmd"), "--config") != CONFIG_PATH:
        err(dockerfile, "CMD --config is %r, expected %s"
            % (arg_after(df.get("cmd"), "--config"), CONFIG_PATH))
    if (df.get("entrypoint") or [None])[0] != BINARY_PATH:
        err(dockerfile, "ENTRYPOINT is %r, expected %s"
            % (df.get("entrypoint"), BINARY_PATH))
    if BINARY_PATH not in df["installed"]:
        err(dockerfile, "gwsieve is not copied to %s (systemd ExecStart "
            "and ENTRYPOINT use it)" % BINARY_PATH)
    if METRICS_PORT not in df["expose"]:
        err(dockerfile, "EXPOSE %d missing (has %s)"
            % (METRICS_PORT, sorted(df["expose"])))
    if port_of(df["env"].get("GWSIEVE_HTTP_LISTEN")) != METRICS_PORT:
        err(dockerfile, "ENV GWSIEVE_HTTP_LISTEN %r does not use port %d"
            % (df["env"].get("GWSIEVE_HTTP_LISTEN"), METRICS_PORT))
    if df["user"] in (None, "root", "0"):
        err(dockerfile, "runs as root (USER %r)" % df["user"])
    check_env(dockerfile, "ENV", df["env"])
    ok("Dockerfile")

    # ---- docker-compose.yml -------------------------------------------------
    for name, svc in services.items():
        for src, dst in compose_mounts(svc):
            if (src.startswith(".") or src.startswith("/")) and \
                    not os.path.exists(os.path.join(ROOT, src)):
                err(COMPOSE, "service %s mounts %s, which does not exist"
                    % (name, src))
    workers = {n: s for n, s in services.items()
               if (s.get("command") or [None])[0] == "run"
               and "entrypoint" not in s}
    if len(workers) < 2:
        err(COMPOSE, "expected two gwsieve workers (command run ...), found "
            "%s" % sorted(workers))
    # Topics created by the topics service.
    created, partitions = {}, {}
    for s in services.values():
        cmd = s.get("command")
        text = "\n".join(cmd) if isinstance(cmd, list) else str(cmd or "")
        for m in re.finditer(r"--create\b[^\n]*", text):
            t = re.search(r"--topic\s+(\S+)", m.group(0))
            p = re.search(r"--partitions\s+(\d+)", m.group(0))
            if t:
                created[t.group(1)] = True
                partitions[t.group(1)] = int(p.group(1)) if p else None
    want = set(config_topics.values())
    if want - set(created):
        err(COMPOSE, "topics %s of deploy/gwsieve.example.json are not "
            "created" % sorted(want - set(created)))
    extra = set(created) - want - RESERVED_TOPICS
    if "state.topic" in config_topics:
        st = config_topics["state.topic"]
        for m in re.finditer(r"--create\b[^\n]*", "\n".join(
                "\n".join(s.get("command")) if isinstance(s.get("command"), list)
                else str(s.get("command") or "") for s in services.values())):
            if re.search(r"--topic\s+%s(\s|$)" % re.escape(st), m.group(0)) \
                    and "cleanup.policy=compact" not in m.group(0):
                err(COMPOSE, "state topic %s must be created with "
                    "--config cleanup.policy=compact (only the latest "
                    "snapshot per partition is needed)" % st)
    if extra:
        err(COMPOSE, "creates topics %s that no topics.* key of "
            "deploy/gwsieve.example.json names" % sorted(extra))
    input_topic = config_topics["topics.input"]
    input_partitions = partitions.get(input_topic)
    # Brokers: Kafka's advertised listener.
    kafka_env = svc_env(services.get("kafka", {}))
    adv = re.findall(r"PLAINTEXT://([^,]+)",
                     kafka_env.get("KAFKA_ADVERTISED_LISTENERS", ""))
    ex_bootstrap = ex.get("kafka.bootstrap.servers")
    for name, svc in workers.items():
        where = "service %s" % name
        env = svc_env(svc)
        check_env(COMPOSE, where, env)
        if port_of(env.get("GWSIEVE_HTTP_LISTEN")) != METRICS_PORT or \
                not env.get("GWSIEVE_HTTP_LISTEN", "").startswith("0.0.0.0:"):
            err(COMPOSE, "%s: GWSIEVE_HTTP_LISTEN is %r, expected 0.0.0.0:%d"
                % (where, env.get("GWSIEVE_HTTP_LISTEN"), METRICS_PORT))
        bootstrap = env.get("GWSIEVE_BOOTSTRAP", ex_bootstrap)
        if adv and bootstrap not in adv:
            err(COMPOSE, "%s: brokers %r are not Kafka's advertised listener "
                "%s" % (where, bootstrap, adv))
        cfg = arg_after(svc.get("command"), "--config")
        if cfg != CONFIG_PATH:
            err(COMPOSE, "%s: --config %r, expected %s"
                % (where, cfg, CONFIG_PATH))
        src = resolve_in_container(cfg or "", compose_mounts(svc))
        if src is None and df["copies"].get(cfg) is None:
            err(COMPOSE, "%s: %s is neither mounted nor in the image"
                % (where, cfg))
        elif src is not None and src != example_path:
            err(COMPOSE, "%s: %s is mounted from %s, expected %s"
                % (where, cfg, rel(src), rel(example_path)))
        hc_test = " ".join(map(str, (svc.get("healthcheck") or {})
                               .get("test", [])))
        if hc_test and not re.search(r"[/:]%d\b" % METRICS_PORT, hc_test):
            err(COMPOSE, "%s: healthcheck does not ask port %d"
                % (where, METRICS_PORT))
        if hc_test and "curl" in hc_test:
            err(COMPOSE, "%s: healthcheck uses curl, which the runtime image "
                "lacks" % where)
        grace = parse_duration(svc.get("stop_grace_period", "10s"))
        if grace is None or grace <= shutdown_bound(shutdown_s):
            err(COMPOSE, "%s: stop_grace_period %r is not above what %s"
                % (where, svc.get("stop_grace_period"),
                   shutdown_why(shutdown_s)))
    for name, svc in services.items():
        cmd = svc.get("command")
        b = arg_after(cmd if isinstance(cmd, list) else [], "--bootstrap")
        if b and adv and b not in adv:
            err(COMPOSE, "service %s: --bootstrap %r is not Kafka's "
                "advertised listener %s" % (name, b, adv))
    ok("docker-compose.yml")

    # ---- Prometheus --------------------------------------------------------
    prom_svc = services.get("prometheus")
    prom_path = os.path.join(DEPLOY, "prometheus", "prometheus.yml")
    rules_path = os.path.join(DEPLOY, "prometheus", "gwsieve-rules.yml")
    prom = (docs.get(prom_path) or [{}])[0]
    rule_files_local = []
    scrape_job = None
    if prom_svc is None:
        err(COMPOSE, "no prometheus service")
    else:
        mounts = compose_mounts(prom_svc)
        cfg_arg = arg_after(prom_svc.get("command"), "--config.file") or \
            "/etc/prometheus/prometheus.yml"
        if resolve_in_container(cfg_arg, mounts) != prom_path:
            err(COMPOSE, "service prometheus: --config.file %s is not "
                "mounted from %s" % (cfg_arg, rel(prom_path)))
        for rf in prom.get("rule_files") or []:
            local = resolve_in_container(rf, mounts) if rf.startswith("/") \
                else os.path.join(os.path.dirname(prom_path), rf)
            if local is None or not glob.glob(local):
                err(prom_path, "rule_files entry %s is not mounted from a "
                    "file of the repository" % rf)
            else:
                rule_files_local.append((rf, local))
        if rules_path not in [l for _, l in rule_files_local]:
            err(prom_path, "rule_files does not load %s" % rel(rules_path))
    want_targets = {"%s:%d" % (n, METRICS_PORT) for n in workers}
    jobs = {j.get("job_name"): j for j in prom.get("scrape_configs") or []}
    gw_jobs = [j for j in jobs.values()
               if any(t in want_targets for sc in j.get("static_configs", [])
                      for t in sc.get("targets", []))]
    if len(gw_jobs) != 1:
        err(prom_path, "expected one scrape job with targets %s"
            % sorted(want_targets))
    else:
        scrape_job = gw_jobs[0].get("job_name")
        got = {t for sc in gw_jobs[0].get("static_configs", [])
               for t in sc.get("targets", [])}
        if got != want_targets:
            err(prom_path, "job %s targets %s, compose workers are %s"
                % (scrape_job, sorted(got), sorted(want_targets)))

    # Rules.
    rules = (docs.get(rules_path) or [{}])[0]
    alert_names, used = set(), set()
    for g in rules.get("groups") or []:
        for r in g.get("rules") or []:
            name = r.get("alert") or r.get("record")
            alert_names.add(name)
            for m in metric_names(str(r.get("expr", ""))):
                used.add(m)
                if not known_metric(m, families):
                    err(rules_path, "%s uses metric %s, which is not in %s"
                        % (name, m, rel(METRICS_TXT)))
            if r.get("alert"):
                ann = r.get("annotations") or {}
                for a in ("summary", "description"):
                    if not ann.get(a):
                        err(rules_path, "%s has no %s annotation" % (name, a))
                if not (ann.get("runbook") or ann.get("runbook_url")):
                    err(rules_path, "%s has no runbook hint" % name)
                for job in re.findall(r'job\s*=\s*"([^"]*)"',
                                      str(r.get("expr", ""))):
                    if scrape_job and job != scrape_job:
                        err(rules_path, "%s selects job=%r, the scrape job "
                            "is %r" % (name, job, scrape_job))
    if REQUIRED_ALERTS - alert_names:
        err(rules_path, "missing alerts %s"
            % sorted(REQUIRED_ALERTS - alert_names))
    ok("prometheus")

    # ---- Grafana -----------------------------------------------------------
    dash_path = os.path.join(DEPLOY, "grafana", "gwsieve-dashboard.json")
    dash = (docs.get(dash_path) or [{}])[0]
    if dash.get("schemaVersion") != 39:
        err(dash_path, "schemaVersion is %r, expected 39"
            % dash.get("schemaVersion"))
    tvars = {v.get("name"): v for v in
             (dash.get("templating") or {}).get("list", [])}
    ds_vars = [n for n, v in tvars.items()
               if v.get("type") == "datasource"
               and v.get("query") == "prometheus"]
    if not ds_vars and "__inputs" not in dash:
        err(dash_path, "no datasource variable of type prometheus")
    dash_exprs = []

    def walk_panels(panels):
        for p in panels or []:
            yield p
            yield from walk_panels(p.get("panels"))
    ids = []
    for p in walk_panels(dash.get("panels")):
        ids.append(p.get("id"))
        if p.get("type") == "row":
            continue
        ds = p.get("datasource") or {}
        uid = ds.get("uid", "") if isinstance(ds, dict) else str(ds)
        if not re.fullmatch(r"\$\{?(%s)\}?" % "|".join(
                ds_vars + ["DS_PROMETHEUS"]), uid):
            err(dash_path, "panel %r: datasource %r is not the datasource "
                "variable" % (p.get("title"), uid))
        if not p.get("targets"):
            err(dash_path, "panel %r has no query" % p.get("title"))
        for t in p.get("targets") or []:
            dash_exprs.append((p.get("title"), t.get("expr", "")))
    for v in tvars.values():
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else str(q or "")
        m = re.match(r"label_values\(\s*([^,)]+)", q)
        if m:
            dash_exprs.append(("variable " + v.get("name"), m.group(1)))
        elif v.get("type") == "query":
            dash_exprs.append(("variable " + v.get("name"), q))
    if len(ids) != len(set(ids)):
        err(dash_path, "panel ids are not unique")
    for title, e in dash_exprs:
        for m in metric_names(e):
            used.add(m)
            if not known_metric(m, families):
                err(dash_path, "%s uses metric %s, which is not in %s"
                    % (title, m, rel(METRICS_TXT)))
    titles = " | ".join(p.get("title", "") for p in
                        walk_panels(dash.get("panels"))).lower()
    for need in ("consumed", "outcomes", "alerts", "lag", "latency",
                 "producer queue", "rebalances", "entities", "memory", "cpu",
                 "redactions"):
        if need not in titles:
            err(dash_path, "no panel about %r" % need)
    # Provisioning (compose).
    graf = services.get("grafana")
    if graf is None:
        notes.append("no grafana service in compose")
    else:
        mounts = compose_mounts(graf)
        prov = os.path.join(DEPLOY, "grafana", "provisioning")
        for sub in ("datasources", "dashboards"):
            if resolve_in_container("/etc/grafana/provisioning/" + sub,
                                    mounts) != os.path.join(prov, sub):
                err(COMPOSE, "service grafana: %s is not mounted at "
                    "/etc/grafana/provisioning/%s" % (rel(os.path.join(
                        prov, sub)), sub))
        for path in glob.glob(os.path.join(prov, "dashboards", "*.y*ml")):
            for d in docs.get(path, []):
                for pr in d.get("providers") or []:
                    dpath = (pr.get("options") or {}).get("path", "")
                    inside = dpath.rstrip("/") + "/" + \
                        os.path.basename(dash_path)
                    if resolve_in_container(inside, mounts) != dash_path:
                        err(path, "provider path %s does not hold %s in "
                            "compose's grafana service"
                            % (dpath, rel(dash_path)))
        for path in glob.glob(os.path.join(prov, "datasources", "*.y*ml")):
            for d in docs.get(path, []):
                for ds in d.get("datasources") or []:
                    m = re.match(r"https?://([^:/]+):(\d+)", ds.get("url", ""))
                    if ds.get("type") == "prometheus" and (
                            not m or m.group(1) not in services):
                        err(path, "datasource url %r is not a compose "
                            "service" % ds.get("url"))
    ok("grafana")

    # ---- systemd -----------------------------------------------------------
    unit_path = os.path.join(DEPLOY, "gwsieve.service")
    unit = {}
    try:
        section = None
        with open(unit_path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line or line[0] in "#;":
                    continue
                if line.startswith("["):
                    section = line.strip("[]")
                    continue
                k, _, v = line.partition("=")
                unit.setdefault((section, k.strip()), []).append(v.strip())
    except OSError as e:
        err(unit_path, "cannot be read: %s" % e)

    def u(key, section="Service"):
        return (unit.get((section, key)) or [None])[-1]
    exec_start = shlex.split(u("ExecStart") or "")
    if not exec_start or exec_start[0] != BINARY_PATH or \
            exec_start[1:2] != ["run"]:
        err(unit_path, "ExecStart %r does not run %s run"
            % (u("ExecStart"), BINARY_PATH))
    if arg_after(exec_start, "--config") != CONFIG_PATH:
        err(unit_path, "ExecStart --config %r, the image and the ConfigMap "
            "mount use %s" % (arg_after(exec_start, "--config"), CONFIG_PATH))
    expect = {"Type": ("exec", "simple"), "KillSignal": ("SIGTERM",),
              "Restart": ("on-failure",), "NoNewPrivileges": ("yes", "true"),
              "ProtectSystem": ("strict",), "PrivateTmp": ("yes", "true")}
    for k, vals in expect.items():
        if u(k) not in vals:
            err(unit_path, "%s=%s, expected %s" % (k, u(k), "|".join(vals)))
    if u("DynamicUser") not in ("yes", "true") and \
            u("User") in (None, "root", "0"):
        err(unit_path, "runs as root (no DynamicUser=yes or User=)")
    if not u("MemoryMax"):
        err(unit_path, "no MemoryMax")
    if (u("EnvironmentFile") or "").lstrip("-") != "/etc/gwsieve/gwsieve.env":
        err(unit_path, "EnvironmentFile is %r" % u("EnvironmentFile"))
    tstop = parse_duration(u("TimeoutStopSec") or "")
    if tstop is None and re.fullmatch(r"\d+", u("TimeoutStopSec") or ""):
        tstop = float(u("TimeoutStopSec"))
    if tstop is None or tstop <= shutdown_bound(shutdown_s):
        err(unit_path, "TimeoutStopSec=%s is not above what %s"
            % (u("TimeoutStopSec"), shutdown_why(shutdown_s)))
    if shutil.which("systemd-analyze"):
        r = run(["systemd-analyze", "verify", unit_path])
        # Only complaints about the file itself count; the binary is not
        # installed here and there may be no systemd running.
        bad = [l for l in (r.stdout + r.stderr).splitlines()
               if re.search(r"gwsieve\.service:\d+:", l)]
        for l in bad:
            err(unit_path, "systemd-analyze verify: %s" % l.split(": ", 1)[-1])
        ok("systemd-analyze")
    else:
        notes.append("systemd-analyze not found, unit syntax not verified")
    ok("systemd")

    # ---- Kubernetes --------------------------------------------------------
    k8s_dir = os.path.join(DEPLOY, "k8s")
    objs = {}
    for path in sorted(glob.glob(os.path.join(k8s_dir, "*.y*ml"))):
        for d in docs.get(path, []):
            if isinstance(d, dict) and d.get("kind"):
                objs.setdefault(d["kind"], []).append((path, d))

    def one(kind):
        lst = objs.get(kind) or []
        if len(lst) != 1:
            err(k8s_dir, "expected one %s, found %d" % (kind, len(lst)))
            return None, {}
        return lst[0]
    kpath = os.path.join(k8s_dir, "kustomization.yaml")
    kust = (docs.get(kpath) or [{}])[0]
    res = kust.get("resources") or []
    for r in res:
        if not os.path.exists(os.path.join(k8s_dir, r)):
            err(kpath, "resource %s does not exist" % r)
    listed = {os.path.join(k8s_dir, r) for r in res}
    for path in glob.glob(os.path.join(k8s_dir, "*.y*ml")):
        if path in (kpath,) or os.path.basename(path) == "hpa.yaml":
            continue
        if path not in listed:
            err(kpath, "%s is not in resources" % os.path.basename(path))
    if "hpa.yaml" in res and "scaledobject.yaml" in res:
        err(kpath, "lists both autoscalers (scaledobject.yaml and hpa.yaml)")

    cm_path, cm = one("ConfigMap")
    dep_path, dep = one("Deployment")
    cm_data = cm.get("data") or {}
    cm_cfg = {}
    if "gwsieve.json" not in cm_data:
        err(cm_path or k8s_dir, "ConfigMap has no gwsieve.json")
    else:
        try:
            cm_cfg = json.loads(cm_data["gwsieve.json"])
        except ValueError as e:
            err(cm_path, "gwsieve.json is not valid JSON: %s" % e)
    cmf = flatten(cm_cfg)
    if cm_cfg and rk_defaults:
        check_memory_props(cm_path, cmf, rk_defaults, "gwsieve.json ")
    if cm_cfg:
        if hc is not None:
            for k in cmf:
                if not key_known(k, hc):
                    err(cm_path, "gwsieve.json key %r is not listed by "
                        "gwsieve help-config" % k)
            check_config_file(cm_path, cm_data["gwsieve.json"])
        if cmf.get("http.listen") != "0.0.0.0:%d" % METRICS_PORT:
            err(cm_path, "http.listen is %r, expected 0.0.0.0:%d"
                % (cmf.get("http.listen"), METRICS_PORT))
        for k, v in ex.items():
            if k in K8S_OVERRIDES:
                continue
            if k not in cmf:
                err(cm_path, "gwsieve.json lacks %s (= %r in %s)"
                    % (k, v, rel(example_path)))
            elif cmf[k] != v:
                err(cm_path, "gwsieve.json %s = %r, %s has %r"
                    % (k, cmf[k], rel(example_path), v))
        for k, v in config_topics.items():
            if cmf.get(k, v) not in created:
                err(cm_path, "%s = %r is not created in docker-compose.yml"
                    % (k, cmf.get(k, v)))
    cm_topics = {k: cmf.get(k, v) for k, v in config_topics.items()}
    cm_group = cmf.get("group", "gwsieve")
    cm_shutdown = cmf.get("shutdown_timeout_ms", 8000) / 1000.0
    cm_bootstrap = cm_data.get("bootstrap.servers",
                               cmf.get("kafka.bootstrap.servers"))
    if cmf.get("kafka.bootstrap.servers") and \
            cmf["kafka.bootstrap.servers"] != cm_bootstrap:
        err(cm_path, "bootstrap.servers %r differs from gwsieve.json's "
            "kafka.bootstrap.servers %r" % (cm_bootstrap,
                                            cmf["kafka.bootstrap.servers"]))

    # Deployment.
    spec = dep.get("spec") or {}
    tmpl = spec.get("template") or {}
    pod = tmpl.get("spec") or {}
    pod_labels = (tmpl.get("metadata") or {}).get("labels") or {}
    annotations = (tmpl.get("metadata") or {}).get("annotations") or {}
    # An autoscaler applied with the Deployment owns its replica count: a
    # spec.replicas in the manifest is applied again by every
    # `kubectl apply -k` (the ConfigMap's instructions for a configuration
    # change) and scales the group back to it, a rebalance of most
    # partitions, before the autoscaler scales it up again (Kubernetes
    # docs, HPA: "Migrating Deployments ... to horizontal autoscaling").
    autoscaled = [r for r in (kust.get("resources") or [])
                  if os.path.basename(r) in ("scaledobject.yaml", "hpa.yaml")]
    kust_replicas = [r for r in kust.get("replicas") or []
                     if r.get("name") == (dep.get("metadata") or {})
                     .get("name")]
    if autoscaled and "replicas" in spec:
        err(dep_path, "sets replicas: %r although %s (in %s) owns the "
            "replica count: every kubectl apply -k scales the group back to "
            "it" % (spec.get("replicas"), ", ".join(autoscaled), rel(kpath)))
    if autoscaled and kust_replicas:
        err(kpath, "sets replicas for %s although %s owns the replica count"
            % (kust_replicas[0].get("name"), ", ".join(autoscaled)))
    if not autoscaled and spec.get("replicas", (kust_replicas or [{}])[0]
                                   .get("count")) is None:
        err(dep_path, "no autoscaler in %s and no replica count: one pod"
            % rel(kpath))
    sel = (spec.get("selector") or {}).get("matchLabels") or {}
    if not sel or any(pod_labels.get(k) != v for k, v in sel.items()):
        err(dep_path, "selector %s does not match the pod labels %s"
            % (sel, pod_labels))
    psc = pod.get("securityContext") or {}
    if psc.get("runAsNonRoot") is not True or psc.get("runAsUser") == 0:
        err(dep_path, "pod securityContext is not non-root")
    if df["uid"] is not None and psc.get("runAsUser") not in (None,
                                                              df["uid"]):
        err(dep_path, "runAsUser %r differs from the image's gwsieve uid %d"
            % (psc.get("runAsUser"), df["uid"]))
    if df["gid"] is not None and psc.get("runAsGroup") is not None and \
            psc.get("runAsGroup") != df["gid"]:
        err(dep_path, "runAsGroup %r differs from the image's gwsieve "
            "group %s (useradd without --gid makes a system group of "
            "another number)" % (psc.get("runAsGroup"), df["gid"]))
    tgps = pod.get("terminationGracePeriodSeconds", 30)
    if tgps <= shutdown_bound(cm_shutdown):
        err(dep_path, "terminationGracePeriodSeconds %s is not above what %s"
            % (tgps, shutdown_why(cm_shutdown)))
    if annotations.get("prometheus.io/scrape") != "true" or \
            str(annotations.get("prometheus.io/port")) != str(METRICS_PORT):
        err(dep_path, "prometheus.io/scrape and prometheus.io/port=%d "
            "annotations missing" % METRICS_PORT)
    containers = pod.get("containers") or []
    if len(containers) != 1:
        err(dep_path, "expected one container")
    c = containers[0] if containers else {}
    named = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
    if named.get("metrics") != METRICS_PORT:
        err(dep_path, "container port 'metrics' is %r, expected %d"
            % (named.get("metrics"), METRICS_PORT))

    def probe_port(p):
        port = ((p or {}).get("httpGet") or {}).get("port")
        return named.get(port, port)
    for probe, path in (("livenessProbe", "/healthz"),
                        ("readinessProbe", "/readyz")):
        p = c.get(probe)
        if not p or (p.get("httpGet") or {}).get("path") != path:
            err(dep_path, "%s is not httpGet %s" % (probe, path))
        elif probe_port(p) != METRICS_PORT:
            err(dep_path, "%s port %r is not %d"
                % (probe, (p.get("httpGet") or {}).get("port"), METRICS_PORT))
    csc = c.get("securityContext") or {}
    if csc.get("readOnlyRootFilesystem") is not True or \
            csc.get("allowPrivilegeEscalation") is not False:
        err(dep_path, "container securityContext needs "
            "readOnlyRootFilesystem: true, allowPrivilegeEscalation: false")
    limit = parse_memory(((c.get("resources") or {}).get("limits") or {})
                         .get("memory"))
    if limit != 256 * 1024 ** 2:
        err(dep_path, "memory limit %r, expected 256Mi"
            % ((c.get("resources") or {}).get("limits") or {}).get("memory"))
    state_mb = cmf.get("detectors.max_state_mb", 256)
    if limit and state_mb * 1024 ** 2 > limit / 2:
        err(cm_path, "detectors.max_state_mb %d leaves too little of the "
            "%d Mi memory limit (keep it at most half)"
            % (state_mb, limit / 1024 ** 2))
    if arg_after(c.get("args"), "--config") != CONFIG_PATH:
        err(dep_path, "args --config %r, expected %s"
            % (arg_after(c.get("args"), "--config"), CONFIG_PATH))
    vols = {v.get("name"): v for v in pod.get("volumes") or []}
    mounted = False
    for vm in c.get("volumeMounts") or []:
        v = vols.get(vm.get("name"))
        if v is None:
            err(dep_path, "volumeMount %s has no volume" % vm.get("name"))
            continue
        if "configMap" not in v:
            continue
        if v["configMap"].get("name") != (cm.get("metadata") or {}) \
                .get("name"):
            err(dep_path, "volume %s uses ConfigMap %r, the ConfigMap is %r"
                % (vm.get("name"), v["configMap"].get("name"),
                   (cm.get("metadata") or {}).get("name")))
        items = {i.get("path"): i.get("key")
                 for i in v["configMap"].get("items") or []} or \
            {k: k for k in cm_data}
        for pth, key in items.items():
            full = vm.get("mountPath", "").rstrip("/") + "/" + pth
            if full == CONFIG_PATH and key == "gwsieve.json":
                mounted = True
            if key not in cm_data:
                err(dep_path, "ConfigMap key %r does not exist" % key)
    if not mounted:
        err(dep_path, "gwsieve.json of the ConfigMap is not mounted at %s"
            % CONFIG_PATH)
    env = {}
    for e in c.get("env") or []:
        ref = (e.get("valueFrom") or {}).get("configMapKeyRef")
        if ref:
            if ref.get("name") != (cm.get("metadata") or {}).get("name") or \
                    ref.get("key") not in cm_data:
                err(dep_path, "env %s refers to ConfigMap %s key %s, which "
                    "does not exist" % (e.get("name"), ref.get("name"),
                                        ref.get("key")))
            env[e.get("name")] = cm_data.get(ref.get("key"))
        else:
            env[e.get("name")] = e.get("value")
    check_env(dep_path, "env", env)
    if "GWSIEVE_HTTP_LISTEN" in env and \
            port_of(env["GWSIEVE_HTTP_LISTEN"]) != METRICS_PORT:
        err(dep_path, "GWSIEVE_HTTP_LISTEN %r is not port %d"
            % (env["GWSIEVE_HTTP_LISTEN"], METRICS_PORT))
    pod_bootstrap = env.get("GWSIEVE_BOOTSTRAP", cmf.get(
        "kafka.bootstrap.servers"))
    if pod_bootstrap != cm_bootstrap:
        err(dep_path, "pods use brokers %r, the ConfigMap says %r"
            % (pod_bootstrap, cm_bootstrap))

    # Service, PDB.
    svc_path, svc = one("Service")
    if svc:
        ssel = (svc.get("spec") or {}).get("selector") or {}
        if not ssel or any(pod_labels.get(k) != v for k, v in ssel.items()):
            err(svc_path, "selector %s does not match the pods" % ssel)
        for p in (svc.get("spec") or {}).get("ports") or []:
            tp = named.get(p.get("targetPort"), p.get("targetPort"))
            if tp != METRICS_PORT or p.get("port") != METRICS_PORT:
                err(svc_path, "port %s -> %s, expected %d -> metrics (%d)"
                    % (p.get("port"), p.get("targetPort"), METRICS_PORT,
                       METRICS_PORT))
    pdb_path, pdb = one("PodDisruptionBudget")
    if pdb:
        if (pdb.get("spec") or {}).get("maxUnavailable") != 1:
            err(pdb_path, "maxUnavailable is not 1")
        psel = ((pdb.get("spec") or {}).get("selector") or {}) \
            .get("matchLabels") or {}
        if not psel or any(pod_labels.get(k) != v for k, v in psel.items()):
            err(pdb_path, "selector %s does not match the pods" % psel)

    # Autoscalers.
    dep_name = (dep.get("metadata") or {}).get("name")
    so_path, so = one("ScaledObject")
    if so:
        s = so.get("spec") or {}
        if (s.get("scaleTargetRef") or {}).get("name") != dep_name:
            err(so_path, "scaleTargetRef is not Deployment %s" % dep_name)
        if input_partitions and s.get("maxReplicaCount") != input_partitions:
            err(so_path, "maxReplicaCount %r != %d partitions of %s"
                % (s.get("maxReplicaCount"), input_partitions, input_topic))
        pdb_max = ((pdb or {}).get("spec") or {}).get("maxUnavailable", 1)
        if not isinstance(s.get("minReplicaCount"), int) or \
                s.get("minReplicaCount") <= pdb_max:
            err(so_path, "minReplicaCount %r is not above the PDB's "
                "maxUnavailable %r: a node drain could stop every member"
                % (s.get("minReplicaCount"), pdb_max))
        kt = [t for t in s.get("triggers") or [] if t.get("type") == "kafka"]
        if len(kt) != 1:
            err(so_path, "expected one kafka trigger")
        for t in kt:
            md = t.get("metadata") or {}
            if md.get("topic") != cm_topics["topics.input"]:
                err(so_path, "trigger topic %r != topics.input %r"
                    % (md.get("topic"), cm_topics["topics.input"]))
            if md.get("consumerGroup") != cm_group:
                err(so_path, "consumerGroup %r != group %r of the ConfigMap"
                    % (md.get("consumerGroup"), cm_group))
            if md.get("bootstrapServers") != cm_bootstrap:
                err(so_path, "bootstrapServers %r != the ConfigMap's %r"
                    % (md.get("bootstrapServers"), cm_bootstrap))
            if not md.get("lagThreshold"):
                err(so_path, "no lagThreshold")
    hpa_path = os.path.join(k8s_dir, "hpa.yaml")
    for d in docs.get(hpa_path, []):
        s = d.get("spec") or {}
        if (s.get("scaleTargetRef") or {}).get("name") != dep_name:
            err(hpa_path, "scaleTargetRef is not Deployment %s" % dep_name)
        if input_partitions and s.get("maxReplicas") != input_partitions:
            err(hpa_path, "maxReplicas %r != %d partitions of %s"
                % (s.get("maxReplicas"), input_partitions, input_topic))
        for m in s.get("metrics") or []:
            body = m.get(m.get("type", "").lower() if m.get("type") != "Pods"
                         else "pods") or {}
            name = (body.get("metric") or {}).get("name")
            used.add(name)
            if not known_metric(name or "", families):
                err(hpa_path, "metric %r is not in %s"
                    % (name, rel(METRICS_TXT)))
            t = (((body.get("metric") or {}).get("selector") or {})
                 .get("matchLabels") or {}).get("topic")
            if t and t != cm_topics["topics.input"]:
                err(hpa_path, "selects topic %r, topics.input is %r"
                    % (t, cm_topics["topics.input"]))
    ok("k8s")

    # ---- external tools ----------------------------------------------------
    promtool = shutil.which("promtool")
    if not promtool:
        notes.append("promtool not found, skipped")
    else:
        r = run([promtool, "check", "rules", rules_path])
        if r.returncode != 0:
            err(rules_path, "promtool check rules: %s"
                % (r.stdout + r.stderr).strip().replace("\n", " | "))
        rules_test = os.path.join(DEPLOY, "prometheus",
                                  "gwsieve-rules.test.yml")
        if os.path.exists(rules_test):
            r = run([promtool, "test", "rules",
                     os.path.basename(rules_test)],
                    cwd=os.path.dirname(rules_test))
            if r.returncode != 0:
                err(rules_test, "promtool test rules: %s"
                    % (r.stdout + r.stderr).strip().replace("\n", " | "))
            else:
                ok("promtool test rules")
        with tempfile.TemporaryDirectory() as td:
            # prometheus.yml names the rules by their path in the container.
            text = open(prom_path, encoding="utf-8").read()
            for rf, local in rule_files_local:
                text = text.replace(rf, local)
            tmp = os.path.join(td, "prometheus.yml")
            with open(tmp, "w") as f:
                f.write(text)
            r = run([promtool, "check", "config", tmp])
            if r.returncode != 0:
                err(prom_path, "promtool check config: %s"
                    % (r.stdout + r.stderr).replace(td, "<tmp>").strip()
                    .replace("\n", " | "))
            # The dashboard's queries parse as PromQL.
            dr = {"groups": [{"name": "dashboard", "rules": [
                {"record": "dashboard:query_%d" % i,
                 "expr": grafana_to_promql(e)}
                for i, (_, e) in enumerate(dash_exprs)]}]}
            tmp = os.path.join(td, "dashboard-rules.yml")
            with open(tmp, "w") as f:
                yaml.safe_dump(dr, f)
            r = run([promtool, "check", "rules", tmp])
            if r.returncode != 0:
                out = (r.stdout + r.stderr)
                named = 0
                for i, (title, e) in enumerate(dash_exprs):
                    if '"dashboard:query_%d"' % i in out:
                        err(dash_path, "%s: query does not parse: %s"
                            % (title, e))
                        named += 1
                if not named:
                    err(dash_path, "promtool rejects dashboard queries: %s"
                        % out.replace(td, "<tmp>").strip()
                        .replace("\n", " | "))
        ok("promtool")
    kubectl = shutil.which("kubectl")
    if kubectl:
        r = run([kubectl, "kustomize", k8s_dir])
        if r.returncode != 0:
            err(kpath, "kubectl kustomize: %s" % r.stderr.strip())
        else:
            ok("kustomize")
    else:
        notes.append("kubectl not found, kustomize build skipped")

    # ---- result ------------------------------------------------------------
    for n in notes:
        print("check_deploy: note: %s" % n)
    if errors:
        for e in errors:
            print("check_deploy: FAIL %s" % e, file=sys.stderr)
        print("check_deploy: %d problem(s)" % len(errors), file=sys.stderr)
        return 1
    gw_metrics = sorted(m for m in used if m)
    print("check_deploy: OK: %d files parsed; ports %d, config %s, topics %s "
          "(input %d partitions), group %s consistent across compose, "
          "Dockerfile, systemd, k8s, KEDA/HPA, Prometheus, Grafana; %d metric "
          "names in rules+dashboard all in %s; checked: %s"
          % (len(docs), METRICS_PORT, CONFIG_PATH,
             ",".join(sorted(set(config_topics.values()))),
             input_partitions or 0, cm_group, len(gw_metrics),
             rel(METRICS_TXT), ", ".join(checked)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""test_check_deploy.py - tests of check_deploy.py: it must catch bugs.

Each case copies the deployment files (deploy/, docker-compose.yml, docs/)
into a scratch tree, breaks one thing the way a real bug would, runs
check_deploy.py there and expects it to fail naming the problem. The
unmodified copy must pass. The Dockerfile's build context (CMakeLists.txt,
cmd, src, include, tests) is linked, not copied, and the check runs the
real build/bin/gwsieve (GWS_BIN_DIR) for check-config/help-config.

    /usr/bin/python3 tests/deploy/test_check_deploy.py [CASE...]
    (run by scripts/check-deploy.sh after the check itself)
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN_DIR = os.environ.get("GWS_BIN_DIR", os.path.join(ROOT, "build", "bin"))
COPIED = ("deploy", "docs", "docker-compose.yml")
LINKED = ("CMakeLists.txt", "cmd", "src", "include", "bench", "scripts")


def make_tree(td):
    for name in COPIED:
        src = os.path.join(ROOT, name)
        if os.path.isdir(src):
            shutil.copytree(src, os.path.join(td, name))
        else:
            shutil.copy(src, os.path.join(td, name))
    for name in LINKED:
        if os.path.exists(os.path.join(ROOT, name)):
            os.symlink(os.path.join(ROOT, name), os.path.join(td, name))
    # tests/: a real directory (check_deploy.py finds ROOT from its own
    # path), its entries linked, except deploy/ which holds the copy.
    os.mkdir(os.path.join(td, "tests"))
    for name in os.listdir(os.path.join(ROOT, "tests")):
        if name != "deploy":
            os.symlink(os.path.join(ROOT, "tests", name),
                       os.path.join(td, "tests", name))
    os.mkdir(os.path.join(td, "tests", "deploy"))
    shutil.copy(os.path.join(ROOT, "tests", "deploy", "check_deploy.py"),
                os.path.join(td, "tests", "deploy", "check_deploy.py"))


def edit(td, path, old, new, count=1):
    """Replace \\p old by \\p new in td/path; the case is wrong (not the
    check) if \\p old is not there."""
    full = os.path.join(td, path)
    with open(full, encoding="utf-8") as f:
        text = f.read()
    if old not in text:
        raise AssertionError("case setup: %r not in %s" % (old, path))
    with open(full, "w", encoding="utf-8") as f:
        f.write(text.replace(old, new, count))


def run_check(td):
    env = dict(os.environ, GWS_BIN_DIR=BIN_DIR)
    r = subprocess.run([sys.executable,
                        os.path.join(td, "tests", "deploy", "check_deploy.py")],
                       capture_output=True, text=True, env=env, timeout=300)
    return r.returncode, r.stdout + r.stderr


# ----------------------------------------------------------------------------
# cases: (name, mutation(td), regex the failure output must match)
# ----------------------------------------------------------------------------

CASES = [
    # Probes pointing at a port the container does not listen on.
    ("probe_wrong_port",
     lambda td: edit(td, "deploy/k8s/deployment.yaml",
                     "path: /healthz\n              port: metrics",
                     "path: /healthz\n              port: 8080"),
     r"livenessProbe port 8080 is not 9464"),
    # A metric gwsieve does not export in an alert rule.
    ("rule_unknown_metric",
     lambda td: edit(td, "deploy/prometheus/gwsieve-rules.yml",
                     "rate(gwsieve_dlq_total[5m]))\n",
                     "rate(gwsieve_dead_letters_total[5m]))\n"),
     r"GwsieveDLQRateHigh uses metric gwsieve_dead_letters_total"),
    # KEDA scaling above the input's partition count.
    ("keda_above_partitions",
     lambda td: edit(td, "deploy/k8s/scaledobject.yaml",
                     "maxReplicaCount: 12", "maxReplicaCount: 24"),
     r"maxReplicaCount 24 != 12 partitions"),
    # A stop timeout shorter than gwsieve's shutdown: 6 x 8 s + 2.5 s.
    ("compose_grace_below_shutdown",
     lambda td: edit(td, "docker-compose.yml",
                     "stop_grace_period: 60s", "stop_grace_period: 50s"),
     r"stop_grace_period '50s' is not above what gwsieve's shutdown can "
     r"take 6 x shutdown_timeout_ms \(8 s\) \+ 2.5 s = 50.5 s"),
    ("k8s_grace_below_shutdown",
     lambda td: edit(td, "deploy/k8s/deployment.yaml",
                     "terminationGracePeriodSeconds: 60",
                     "terminationGracePeriodSeconds: 30"),
     r"terminationGracePeriodSeconds 30 is not above what gwsieve's "
     r"shutdown can take .* = 50.5 s"),
    ("systemd_stop_below_shutdown",
     lambda td: edit(td, "deploy/gwsieve.service",
                     "TimeoutStopSec=60", "TimeoutStopSec=30"),
     r"TimeoutStopSec=30 is not above what gwsieve's shutdown"),
    # A prefetch queue above gwsieve's own 4 MB in the example config.
    ("example_prefetch_above_default",
     lambda td: edit(td, "deploy/gwsieve.example.json",
                     '"producer": { "compression.type": "zstd" }',
                     '"consumer": { "queued.max.messages.kbytes": "65536" },'
                     '\n    "producer": { "compression.type": "zstd" }'),
     r"gwsieve.example.json: kafka.consumer.queued.max.messages.kbytes = "
     r"65536 raises gwsieve's own consumer default 4096"),
    # A replica count in the Deployment that KEDA owns: each apply
    # scales the group back to it.
    ("replicas_under_autoscaler",
     lambda td: edit(td, "deploy/k8s/deployment.yaml",
                     "spec:\n  revisionHistoryLimit: 5",
                     "spec:\n  replicas: 2\n  revisionHistoryLimit: 5"),
     r"deployment.yaml: sets replicas: 2 although scaledobject.yaml .* "
     r"owns the replica count"),
    # The pod's group is not the image user's group.
    ("run_as_group_not_image_group",
     lambda td: edit(td, "deploy/k8s/deployment.yaml",
                     "runAsGroup: 10001", "runAsGroup: 10002"),
     r"runAsGroup 10002 differs from the image's gwsieve group 10001"),
]


def main(argv):
    if not os.access(os.path.join(BIN_DIR, "gwsieve"), os.X_OK):
        print("test_check_deploy: %s/gwsieve not built: skipped" % BIN_DIR)
        return 0
    want = set(argv[1:])
    cases = [c for c in CASES if not want or c[0] in want]
    failed = 0
    with tempfile.TemporaryDirectory(prefix="gws-deploy-") as td:
        make_tree(td)
        rc, out = run_check(td)
        if rc != 0:
            print("test_check_deploy: FAIL baseline: the unmodified copy "
                  "does not pass:\n" + out, file=sys.stderr)
            return 1
    for name, mutate, expect in cases:
        with tempfile.TemporaryDirectory(prefix="gws-deploy-") as td:
            make_tree(td)
            mutate(td)
            rc, out = run_check(td)
        if rc == 0 or not re.search(expect, out):
            failed += 1
            print("test_check_deploy: FAIL %s: expected exit 1 and /%s/, "
                  "got exit %d:\n%s" % (name, expect, rc, out.strip()),
                  file=sys.stderr)
        else:
            print("test_check_deploy: ok %s" % name)
    print("test_check_deploy: %d of %d cases caught"
          % (len(cases) - failed, len(cases)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

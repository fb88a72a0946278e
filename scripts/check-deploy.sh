#!/usr/bin/env bash
# check-deploy.sh - check the deployment files without Docker: parse every
# YAML/JSON file in deploy/ and docker-compose.yml and cross-check ports,
# paths, topics, consumer group and metric names between them
# (tests/deploy/check_deploy.py; promtool, kubectl kustomize and
# systemd-analyze when present). Installs python3-yaml and prometheus
# (promtool) when missing and running as root. Uses build/bin/gwsieve for
# help-config/check-config when it is built (GWS_BIN_DIR to use another).
# Then tests/deploy/test_check_deploy.py breaks copies of the files the way
# real bugs would and expects the check to name each (skipped when
# gwsieve is not built).
#
#   ./scripts/check-deploy.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PY=/usr/bin/python3
missing=()
"$PY" -c 'import yaml' 2>/dev/null || missing+=(python3-yaml)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "check-deploy: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "check-deploy: missing ${missing[*]} (not root: not installing;" \
         "promtool checks are skipped without it)" >&2
  fi
fi

"$PY" tests/deploy/check_deploy.py "$@"
exec "$PY" tests/deploy/test_check_deploy.py

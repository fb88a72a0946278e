#!/usr/bin/env bash
# deps.sh - install the Debian packages gwsieve needs, only if missing.
# Sourced or run by demo.sh and test.sh; needs root (or sudo) to install.
set -euo pipefail

GWS_PACKAGES=(
  build-essential cmake pkg-config
  librdkafka-dev libjansson-dev libzstd-dev libpcre2-dev
  check libsubunit-dev libmicrohttpd-dev
  prometheus python3-yaml python3-confluent-kafka
  kcat python3
  clang libclang-rt-14-dev
)

missing=()
for p in "${GWS_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

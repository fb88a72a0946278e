#!/usr/bin/env bash
# ab_bench.sh - two gwsieve builds (or two settings) side by side on the
# devbroker. Since 2026-12-01 this is bench/thread_split.sh under its old
# interface: the same alternating runs on fresh brokers (100k generator
# events of 1.7 KB, -X partitioner=random over 96 partitions), measured
# per thread from schedstat (ns) instead of /proc ticks (10 ms), with the
# rate, whole-run peak RSS and backpressure seconds ab_bench printed, and
# medians per side. Figures in the README measured before that date came
# from the tick-based version (git log -- bench/ab_bench.sh).
#
#   bench/ab_bench.sh [ROUNDS] [-- ARGS_A -- ARGS_B]
#
# Environment:
#   AB_BIN_A, AB_BIN_B  bin directories of the two builds (default both
#                       build/bin: then compare settings via ARGS_A/ARGS_B);
#                       the devbroker and generator come from AB_BIN_B
#   AB_EVENTS           events per run (default 100000)
#   AB_PARTITIONS       input partitions (default 96)
#
# Example: the session-start commit against the working tree
#   git worktree add /tmp/gws-old 5525e63 && (cd /tmp/gws-old &&
#     cmake -S . -B build && cmake --build build --target gwsieve)
#   AB_BIN_A=/tmp/gws-old/build/bin bench/ab_bench.sh 5
# or two settings of one build:
#   bench/ab_bench.sh 4 -- -- -X producer.linger.ms=5
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${AB_BIN_B:-}" ] && export GWS_BIN_DIR="$AB_BIN_B"
[ -n "${AB_BIN_A:-}" ] && export SPLIT_BIN_A="$AB_BIN_A/gwsieve"
[ -n "${AB_BIN_B:-}" ] && export SPLIT_BIN_B="$AB_BIN_B/gwsieve"
[ -n "${AB_EVENTS:-}" ] && export SPLIT_EVENTS="$AB_EVENTS"
[ -n "${AB_PARTITIONS:-}" ] && export SPLIT_PARTITIONS="$AB_PARTITIONS"
exec bench/thread_split.sh "$@"

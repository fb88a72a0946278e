#!/usr/bin/env bash
# nab_eval.sh - score NAB series with `gwsieve score-series` (the numeric-
# deviation detector, one default configuration for every file) and rate
# the results with NAB's scoring (standard, reward_low_FP, reward_low_FN).
#   bench/nab_eval.sh [NAB_DIR] [SCORER] [-- --set KEY=VALUE ...]
# NAB_DIR has data/<category>/<file>.csv and labels/combined_windows.json
# (default ../shared/data/nab-dev); SCORER reproduces NAB's scoreboard
# (default ../shared/tools/nab_score.py).
set -euo pipefail
cd "$(dirname "$0")/.."
NAB=${1:-../shared/data/nab-dev}
SCORER=${2:-../shared/tools/nab_score.py}
shift $(( $# < 2 ? $# : 2 )) || true
[ "${1:-}" = "--" ] && shift
[ -x build/bin/gwsieve ] || ./scripts/build.sh >/dev/null
OUT=$(mktemp -d /tmp/gwsieve-nab.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
n=0
for f in "$NAB"/data/*/*.csv; do
  rel=${f#"$NAB"/data/}
  mkdir -p "$OUT/$(dirname "$rel")"
  build/bin/gwsieve score-series --input "$f" --output "$OUT/$rel" "$@" 2>/dev/null
  n=$((n + 1))
done
echo "scored $n series with gwsieve score-series $*"
python3 "$SCORER" "$OUT" --windows "$NAB/labels/combined_windows.json" \
  ${NAB_PROFILES:+--profiles "$NAB_PROFILES"}

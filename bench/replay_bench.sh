#!/usr/bin/env bash
# replay_bench.sh - gwsieve replay (default policy) vs a Python equivalent
# (bench/py_sieve.py), side by side on the same generated events, one core
# each (taskset), several rounds; prints events/s medians, the ratio, and
# peak RSS. Not a test: numbers vary with the machine's load, the ratio is
# what to compare.
#   bench/replay_bench.sh [EVENTS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200000}
ROUNDS=${2:-5}
./scripts/deps.sh
./scripts/build.sh >/dev/null
[ -x /usr/bin/time ] || apt-get install -y -qq time >/dev/null  # GNU time for peak RSS
BIN=$PWD/build/bin
W=$(mktemp -d /tmp/gwsieve-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
"$BIN/gwsieve-gen" --out "$W/events.ndjson" --events "$N" --seed 7 --quiet
bytes=$(stat -c %s "$W/events.ndjson")
echo "input: $N events, $((bytes / N)) bytes/event avg ($(( bytes / 1000000 )) MB)"
PY=/usr/bin/python3; [ -x $PY ] || PY=python3
core() { taskset -c "${BENCH_CORE:-0}" "$@"; }
now() { date +%s.%N; }
rate() { python3 -c "import sys; print($N / ($2 - $1))" "$@"; }
g=() p=()
for r in $(seq "$ROUNDS"); do
  s=$(now)
  core /usr/bin/time -f "%M" -o "$W/g.rss" "$BIN/gwsieve" replay --input "$W/events.ndjson" --out-dir "$W/g" >/dev/null
  e=$(now); g+=("$(rate "$s" "$e")")
  s=$(now)
  core /usr/bin/time -f "%M" -o "$W/p.rss" $PY bench/py_sieve.py < "$W/events.ndjson" > "$W/p.ndjson" 2>/dev/null
  e=$(now); p+=("$(rate "$s" "$e")")
  printf 'round %d: gwsieve %8.0f ev/s   python %8.0f ev/s\n' "$r" "${g[-1]}" "${p[-1]}"
done
med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
gm=$(med "${g[@]}"); pm=$(med "${p[@]}")
python3 -c "
gm, pm, b, n = $gm, $pm, $bytes, $N
print('median: gwsieve %.0f ev/s (%.1f MB/s), python %.0f ev/s, ratio %.1fx' % (gm, gm * b / n / 1e6, pm, gm / pm))"
printf 'peak RSS: gwsieve %d MB, python %d MB\n' $(( $(cat "$W/g.rss") / 1024 )) $(( $(cat "$W/p.rss") / 1024 ))

#!/usr/bin/env bash
# build.sh - configure and build gwsieve into build/ (programs in build/bin/).
#   scripts/build.sh            release build with -Werror
#   scripts/build.sh --sanitize ASan+UBSan build into build-san/
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build
args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DGWS_WERROR=ON)
if [ "${1:-}" = "--sanitize" ]; then
  dir=build-san
  args=(-DCMAKE_BUILD_TYPE=Debug -DGWS_WERROR=ON -DGWS_SANITIZE=ON)
fi
cmake -S . -B "$dir" "${args[@]}" >/dev/null
cmake --build "$dir" -j"$(nproc)"

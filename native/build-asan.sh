#!/usr/bin/env bash
# Builds the addon with AddressSanitizer + UBSan into build-asan/ (cmake-js over native/CMakeLists.txt).
# Offline: cmake-js uses npm's `nodedir` (npm_config_nodedir) as the place of node's headers instead of
# downloading them; it defaults here to the prefix of the running node when that has include/node/node.h.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${npm_config_nodedir:-}" ]]; then
  prefix="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
  if [[ -f "$prefix/include/node/node.h" ]]; then
    export npm_config_nodedir="$prefix"
  else
    echo "build-asan: node's headers not found under $prefix/include/node; set npm_config_nodedir" >&2
    exit 1
  fi
fi

npx --no-install cmake-js build --directory native --out build-asan --config RelWithDebInfo --prefer-make \
  --log-level warn "$@"

addon="$(find build-asan -name shmx.node -type f -newer native/CMakeLists.txt -print -quit)"
[[ -n "$addon" ]] || addon="$(find build-asan -name shmx.node -type f -print -quit)"
echo "build-asan: $addon"

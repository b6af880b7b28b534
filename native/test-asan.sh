#!/usr/bin/env bash
# Runs the native tests against the AddressSanitizer + UBSan build (native/build-asan.sh builds it first).
# node itself is not instrumented, so the sanitizer runtimes are preloaded; every child process and worker the
# tests start inherits this environment and so loads the same instrumented addon. Extra arguments go to vitest.
set -euo pipefail
cd "$(dirname "$0")/.."

bash native/build-asan.sh >&2
addon="$(readlink -f "$(find build-asan -name shmx.node -type f -print -quit)")"

asan="$(g++ -print-file-name=libasan.so)"
ubsan="$(g++ -print-file-name=libubsan.so)"
for lib in "$asan" "$ubsan"; do
  [[ -f "$lib" ]] || { echo "test-asan: $lib not found (install the gcc sanitizer runtimes)" >&2; exit 1; }
done

export SHMX_ADDON="$addon"
export LD_PRELOAD="$(readlink -f "$asan") $(readlink -f "$ubsan")"
# node leaks on purpose at exit (and V8 keeps its heap): leak checking would only report node.
# abort_on_error + halt_on_error: a finding ends the process with a non-zero status the test sees.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:allow_user_segv_handler=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"

echo "test-asan: SHMX_ADDON=$SHMX_ADDON" >&2
echo "test-asan: LD_PRELOAD=$LD_PRELOAD" >&2
exec npx --no-install vitest run test/native "$@"

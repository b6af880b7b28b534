#!/bin/sh
# Checks the wake-up model (docs/model/wakeup.pml) with spin: the protocol must pass, and each known-bad variant
# must fail (so the model can see the bugs it is there to exclude). Needs spin and a C compiler
# (Debian: apt-get install spin gcc). Exit 0 when all verdicts are as expected.
set -eu
model=$(cd "$(dirname "$0")" && pwd)/wakeup.pml
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
status=0
verify() { # name, expected (pass|fail), spin flags...
  name=$1; expected=$2; shift 2
  spin -a "$@" "$model" >/dev/null
  cc -O0 -DSAFETY -o pan pan.c 2>/dev/null
  out=$(./pan -m100000 2>&1 || true)
  errors=$(printf '%s\n' "$out" | sed -n 's/.*errors: \([0-9]*\).*/\1/p' | head -n1)
  states=$(printf '%s\n' "$out" | sed -n 's/^ *\([0-9e.+]*\) states, stored.*/\1/p' | head -n1)
  if [ "$errors" = 0 ]; then got=pass; else got=fail; fi
  reason=
  [ "$got" = fail ] && reason=$(printf '%s\n' "$out" | grep -E '^pan:' | head -n1 | sed 's/^pan:[0-9]*: *//')
  printf '%-10s %-4s (expected %s; %s states) %s\n' "$name" "$got" "$expected" "$states" "$reason"
  [ "$got" = "$expected" ] || status=1
}
verify protocol pass
verify buggy fail -DBUGGY
verify lossybell fail -DLOSSY_BELL
verify latepark fail -DLATE_PARK
verify N=7 pass -DN=7
exit $status

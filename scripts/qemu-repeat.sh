#!/usr/bin/env bash
# Runs the boot selftest N times in a row (default 20) and stops at the first failure. Every
# boot must pass, and every boot's contract-marker sequence (scripts/lib/verdict.sh's
# verdict_contract: the marker lines in order, byte counts aside) must be the same as the
# first one's. Keeps each boot's serial log in build/logs/repeat/<n>.log.
#
#   ./scripts/qemu-repeat.sh [N]
#
# A change to the boot selftest is done when this passes with N = 20.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
N=${1:-20}
case "$N" in '' | *[!0-9]*) echo "qemu-repeat: N must be a number" >&2; exit 4 ;; esac
# shellcheck source=scripts/lib/verdict.sh
. scripts/lib/verdict.sh
OUT=$ROOT/build/logs/repeat
rm -rf "$OUT" && mkdir -p "$OUT"
say() { printf 'qemu-repeat: %s\n' "$*"; }

first=
for ((i = 1; i <= N; i++)); do
    start=$(date +%s)
    code=0
    RUN_UNTIL_MARKER=1 RUN_TIMEOUT=${RUN_TIMEOUT:-120s} ./scripts/qemu-test.sh >"$OUT/$i.out" 2>&1 || code=$?
    cp build/logs/uart.log "$OUT/$i.log"
    verdict_clean "$OUT/$i.log" "$OUT/$i.clean"
    if [ "$code" != 0 ]; then
        say "boot $i of $N FAILED (exit $code): $(grep '^qemu-test: ' "$OUT/$i.out" | tail -n 2 | head -n 1)"
        say "serial log: $OUT/$i.log"
        exit 1
    fi
    verdict_contract "$OUT/$i.clean" >"$OUT/$i.contract"
    if [ -z "$first" ]; then
        first=$OUT/$i.contract
    elif ! cmp -s "$first" "$OUT/$i.contract"; then
        say "boot $i of $N passed, but its contract-marker sequence differs from boot 1's:"
        diff "$first" "$OUT/$i.contract" || true
        exit 1
    fi
    say "boot $i of $N passed in $(($(date +%s) - start)) s ($(grep -c . "$OUT/$i.contract") contract lines, same sequence)"
done
say "all $N boots passed, each with the same contract-marker sequence:"
cat "$first"

#!/usr/bin/env bash
# Tests the boot selftest's verdict logic (scripts/lib/verdict.sh) on recorded serial logs:
# the very functions scripts/qemu-test.sh calls, under the same shell options. Each case is a
# log built here (CRLF line ends, as the serial console writes them) and the verdict it must
# get. The long logs are the cases that broke before: a marker, or a FAIL line, near the start
# of a log long enough that an early-exiting reader in a pipeline lost the race.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/verdict.sh
. scripts/lib/verdict.sh

DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
failures=0
checks=0

crlf() { sed 's/$/\r/'; }
filler() { # N lines of guest chatter
    seq "$1" | sed 's/.*/hog-fixture[88]: chunk added=4096 held=& alloc=&/'
}
# Every contract line of a passing boot, in the order the selftest produces them.
passing_markers() {
    cat <<'LOG'
oomd: ready
oomd: kill app=hog bytes=33555263
SELFTEST: oom kill ok
oomd: kill denied (subject=critical-hog reason=critical)
SELFTEST: oom deny critical ok
SELFTEST: oom reject spoof ok
SELFTEST: oom flood ok
oomd: kill app=liar-hog bytes=19185664
SELFTEST: oom underreport ok
oomd: kill app=forker-hog bytes=33555389
SELFTEST: oom tree kill ok
oomd: kill app=escape-hog bytes=33555389
SELFTEST: oom escape kill ok
oomd: ready
oomd: kill app=restart-hog bytes=33555393
SELFTEST: oom watchdog restart ok
oomd: reclaim met app=reclaim-hog bytes=3146409
SELFTEST: oom reclaim ok
oomd: kill app=reclaim-stubborn-hog bytes=12583593
SELFTEST: oom reclaim missed ok
oomd: kill app=reclaim-liar-hog bytes=13631488
SELFTEST: oom reclaim liar ok
oomd: kill app=rate-hog-a bytes=33555277
oomd: kill app=rate-hog-b bytes=33555277
SELFTEST: oom rate limit ok
SELFTEST: Completed
LOG
}

# expect NAME FUNCTION WANT_CODE WANT_REASON_SUBSTRING: the verdict on the raw log in $DIR/raw.
# (Called in this shell, never at the end of a pipeline, so that its counts are kept.)
expect() {
    local name=$1 fn=$2 want=$3 words=$4 code=0 reason
    verdict_clean "$DIR/raw" "$DIR/clean"
    reason=$("$fn" "$DIR/clean") || code=$?
    checks=$((checks + 1))
    if [ "$code" != "$want" ] || [[ "$reason" != *"$words"* ]]; then
        printf 'test-verdict: FAIL %s: got %s (%s), want %s (%s)\n' "$name" "$code" "$reason" "$want" "$words"
        failures=$((failures + 1))
    else
        printf 'test-verdict: ok %s: %s (%s)\n' "$name" "$code" "$reason"
    fi
}

passing_markers | crlf >"$DIR/raw"
expect "a passing boot" verdict_of 0 "all 14 markers seen"
{ passing_markers; filler 200000; } | crlf >"$DIR/raw"
expect "a passing boot with a long tail" verdict_of 0 "all 14 markers seen"

# The false negative of old: every marker near the start of a long log, checked many times.
{ passing_markers; filler 300000; } | crlf >"$DIR/long"
verdict_clean "$DIR/long" "$DIR/long.clean"
early_ok=1
for ((run = 0; run < 100; run++)); do
    code=0
    verdict_of "$DIR/long.clean" >/dev/null || code=$?
    checks=$((checks + 1))
    if [ "$code" != 0 ]; then
        printf 'test-verdict: FAIL markers early in a long log: run %d got %s\n' "$run" "$code"
        failures=$((failures + 1))
        early_ok=0
        break
    fi
done
if [ "$early_ok" = 1 ]; then
    printf 'test-verdict: ok markers early in a 300000-line log: 100 of 100 checks passed\n'
fi

# The false positive of old: a FAIL line early in a long log that otherwise passes.
{ echo "SELFTEST: oom kill FAIL: no kill of hog"; passing_markers; filler 300000; } | crlf >"$DIR/raw"
expect "a FAIL line early in a long log" verdict_of 1 "failure pattern: SELFTEST: oom kill FAIL"
{ passing_markers | sed -n '1,3p'; echo "[    7.1] Out of memory: Killed process 95 (hog-fixture)"; filler 1000; } | crlf >"$DIR/raw"
expect "the kernel's OOM killer acted" verdict_of 1 "Out of memory: Killed process"
{ passing_markers; echo "[    9.0] Memory cgroup out of memory: Killed process 91"; } | crlf >"$DIR/raw"
expect "a cgroup OOM kill after every marker" verdict_of 1 "Memory cgroup out of memory"

{ passing_markers | grep -v "oom flood ok"; filler 10; } | crlf >"$DIR/raw"
expect "a marker still missing" verdict_of 10 "SELFTEST: oom flood ok"
{ passing_markers | grep -v "oom flood ok"; } | crlf >"$DIR/raw"
expect "the guest stopped after Completed without a marker" verdict_final 1 "missing marker: SELFTEST: oom flood ok"
{ passing_markers | sed -n '1,5p'; } | crlf >"$DIR/raw"
expect "the guest stopped early" verdict_final 3 "stopped early; missing: SELFTEST: oom reject spoof ok"
passing_markers | crlf >"$DIR/raw"
expect "a complete passing log" verdict_final 0 "all 14 markers seen"

passing_markers | sed -e 's/rate-hog-a/rate-hog-X/' -e 's/rate-hog-b/rate-hog-a/' -e 's/rate-hog-X/rate-hog-b/' | crlf >"$DIR/raw"
expect "the rate-limit kills in the other order" verdict_of 1 'out of order: "oomd: kill app=rate-hog-a bytes="'
passing_markers | sed -e '/^SELFTEST: oom kill ok/d' -e 's/^oomd: ready/oomd: ready\nSELFTEST: oom kill ok/' | crlf >"$DIR/raw"
expect "a kill confirmed before its kill line" verdict_of 1 'out of order: "oomd: kill app=hog bytes="'

passing_markers | sed 's/^SELFTEST: oom reclaim ok/oomd: kill decided app=reclaim-hog bytes=12583593 reason=soft-grace\n&/' | crlf >"$DIR/raw"
expect "the cooperative hog's kill decided" verdict_of 1 "failure pattern: oomd: kill decided app=reclaim-hog "
passing_markers | sed -e '/^oomd: kill app=reclaim-stubborn-hog/d' -e 's/^SELFTEST: oom reclaim liar ok/oomd: kill app=reclaim-stubborn-hog bytes=1\n&/' | crlf >"$DIR/raw"
expect "the stubborn hog's marker before its kill" verdict_of 1 'out of order: "oomd: kill app=reclaim-stubborn-hog bytes="'

# Two boots whose byte counts differ have the same contract sequence.
passing_markers | crlf >"$DIR/a.raw"
passing_markers | sed 's/bytes=19185664/bytes=18042880/' | crlf >"$DIR/b.raw"
verdict_clean "$DIR/a.raw" "$DIR/a"
verdict_clean "$DIR/b.raw" "$DIR/b"
checks=$((checks + 1))
if [ "$(verdict_contract "$DIR/a")" = "$(verdict_contract "$DIR/b")" ] &&
    [ "$(verdict_contract "$DIR/a" | wc -l)" = 25 ]; then
    printf 'test-verdict: ok the contract sequence ignores byte counts (25 lines)\n'
else
    printf 'test-verdict: FAIL the contract sequences differ\n'
    failures=$((failures + 1))
fi

if [ "$failures" -gt 0 ]; then
    printf 'test-verdict: %d of %d checks failed\n' "$failures" "$checks"
    exit 1
fi
printf 'test-verdict: all %d checks passed\n' "$checks"

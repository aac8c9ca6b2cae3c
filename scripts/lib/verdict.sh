# The boot selftest's verdict on a serial log: which markers are required, which lines fail a
# run, which markers must come in which order, and the functions that check a log against them.
# Sourced by scripts/qemu-test.sh (on the live log) and by scripts/test-verdict.sh (on recorded
# logs), so the logic the boot relies on is the logic the tests check.
#
# Every check reads a file: no pipeline whose status depends on a reader quitting early (under
# `set -o pipefail`, `producer | grep -q` fails when grep exits at its first match and the
# producer dies of SIGPIPE, which once made a passing boot fail and could make a failing one
# pass). grep reading a file by itself has no such race: 0 found, 1 not found, 2 error.

# Markers every passing boot must show.
VERDICT_REQUIRED=(
    "oomd: ready"
    "SELFTEST: oom kill ok"
    "SELFTEST: oom deny critical ok"
    "SELFTEST: oom reject spoof ok"
    "SELFTEST: oom flood ok"
    "SELFTEST: oom underreport ok"
    "SELFTEST: oom tree kill ok"
    "SELFTEST: oom escape kill ok"
    "SELFTEST: oom watchdog restart ok"
    "SELFTEST: oom reclaim ok"
    "SELFTEST: oom reclaim missed ok"
    "SELFTEST: oom reclaim liar ok"
    "SELFTEST: oom rate limit ok"
    "SELFTEST: Completed"
)
# Lines that fail the run wherever they appear. A kernel OOM kill means the kernel, not oomd,
# did the job: that is a fake success. The cooperative reclaim hog kept its word: a kill of it
# decided at any time is a broken promise of oomd's.
VERDICT_FAILURE_PATTERNS='FAIL|Kernel panic|KVM internal error|Out of memory: Killed process|Memory cgroup out of memory|oomd: kill decided app=reclaim-hog '
# Pairs "earlier|later" that must appear in this order (cause before effect, and the one order
# the contract markers have on every boot).
VERDICT_ORDER=(
    "oomd: ready|SELFTEST: oom kill ok"
    "oomd: kill app=hog bytes=|SELFTEST: oom kill ok"
    "oomd: kill denied (subject=critical-hog reason=critical)|SELFTEST: oom deny critical ok"
    "oomd: kill app=restart-hog bytes=|SELFTEST: oom watchdog restart ok"
    "oomd: reclaim met app=reclaim-hog|SELFTEST: oom reclaim ok"
    "oomd: kill app=reclaim-stubborn-hog bytes=|SELFTEST: oom reclaim missed ok"
    "oomd: kill app=reclaim-liar-hog bytes=|SELFTEST: oom reclaim liar ok"
    "oomd: kill app=rate-hog-a bytes=|oomd: kill app=rate-hog-b bytes="
    "oomd: kill app=rate-hog-b bytes=|SELFTEST: oom rate limit ok"
)
# The lines of the marker contract (oomd prints its markers on stdout and again in its log).
VERDICT_CONTRACT='^(oomd: ready|oomd: kill app=|oomd: kill denied|SELFTEST: )'

# verdict_clean RAW CLEAN: copies the serial log RAW to CLEAN without carriage returns (serial
# lines end in CRLF). A file to file copy: nothing reads it while it is written.
verdict_clean() {
    tr -d '\r' <"$1" >"$2"
}

# verdict_has CLEAN LINE: 0 if a line of CLEAN contains LINE (fixed string), 1 if none does,
# 2 if the file cannot be read.
verdict_has() {
    grep -qF -- "$2" "$1"
}

# verdict_first_line CLEAN LINE: prints the number of the first line containing LINE, or
# nothing.
verdict_first_line() {
    local hit
    hit=$(grep -nF -m 1 -- "$2" "$1") || return 0
    printf '%s\n' "${hit%%:*}"
}

# verdict_failure CLEAN: prints the first line matching a failure pattern, or nothing.
verdict_failure() {
    grep -E -m 1 -- "$VERDICT_FAILURE_PATTERNS" "$1" || true
}

# verdict_missing CLEAN: prints every required marker CLEAN lacks, one per line.
verdict_missing() {
    local m
    for m in "${VERDICT_REQUIRED[@]}"; do
        verdict_has "$1" "$m" || printf '%s\n' "$m"
    done
}

# verdict_order CLEAN: prints the first ordering rule CLEAN breaks ("a|b|line a|line b"), or
# nothing. Only meaningful once every required marker is present.
verdict_order() {
    local pair a b la lb
    for pair in "${VERDICT_ORDER[@]}"; do
        a=${pair%%|*} b=${pair#*|}
        la=$(verdict_first_line "$1" "$a")
        lb=$(verdict_first_line "$1" "$b")
        if [ -z "$la" ] || [ -z "$lb" ] || [ "$la" -ge "$lb" ]; then
            printf '%s|%s|%s|%s\n' "$a" "$b" "${la:-none}" "${lb:-none}"
            return 0
        fi
    done
}

# verdict_contract CLEAN: the contract lines in order, each once (oomd writes its markers to
# stdout and its log), with byte counts replaced by N: the sequence every boot must repeat.
verdict_contract() {
    grep -E -- "$VERDICT_CONTRACT" "$1" | uniq | sed -E 's/bytes=[0-9]+/bytes=N/' || true
}

# verdict_of CLEAN: the verdict on CLEAN while the guest may still be writing. Prints one
# reason line and returns
#   0  every required marker, in order, and no failure line;
#   1  a failure line, or a marker out of order;
#   10 not decided yet: markers are missing.
verdict_of() {
    local clean=$1 failure missing broken
    failure=$(verdict_failure "$clean")
    missing=$(verdict_missing "$clean")
    if [ -n "$failure" ]; then
        printf 'failure pattern: %s%s\n' "$failure" "${missing:+; missing: ${missing%%$'\n'*}}"
        return 1
    fi
    if [ -n "$missing" ]; then
        printf '%s\n' "${missing%%$'\n'*}"
        return 10
    fi
    broken=$(verdict_order "$clean")
    if [ -n "$broken" ]; then
        local a b la lb rest
        a=${broken%%|*} rest=${broken#*|}
        b=${rest%%|*} rest=${rest#*|}
        la=${rest%%|*} lb=${rest#*|}
        printf 'out of order: "%s" (line %s) must come before "%s" (line %s)\n' "$a" "$la" "$b" "$lb"
        return 1
    fi
    printf 'all %s markers seen\n' "${#VERDICT_REQUIRED[@]}"
    return 0
}

# verdict_final CLEAN: the verdict on a log that will not grow any more (the guest stopped).
# Returns like verdict_of, except that missing markers are decided: 1 (printing "missing
# marker: ...") when the selftest client said it completed, 3 (printing "stopped early;
# missing: ...") when the guest stopped before that.
verdict_final() {
    local code=0 reason
    reason=$(verdict_of "$1") || code=$?
    if [ "$code" != 10 ]; then
        printf '%s\n' "$reason"
        return "$code"
    fi
    if verdict_has "$1" "SELFTEST: Completed"; then
        printf 'missing marker: %s\n' "$reason"
        return 1
    fi
    printf 'stopped early; missing: %s\n' "$reason"
    return 3
}

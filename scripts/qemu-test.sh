#!/usr/bin/env bash
# The boot selftest: builds the Linux edge statically, packs it into an initramfs with execd as
# /init, boots Debian's kernel under QEMU and watches the serial console for the markers.
#
#   RUN_UNTIL_MARKER=1 RUN_TIMEOUT=120s ./scripts/qemu-test.sh
#
# RUN_TIMEOUT       how long the guest may run (e.g. 120s, 2m, 90); default 120s.
# RUN_UNTIL_MARKER  1 (default): stop as soon as every required marker appeared;
#                   0: wait for the guest to power off, then check.
# QEMU_ACCEL        tcg or kvm; default kvm only when kvm_intel or kvm_amd is loaded.
# REQUIRE           extra required markers, separated by '|'.
# QEMU_KERNEL       pvh (default: the unpacked vmlinux, booted through its PVH entry, when it can
#                   be extracted; about twice as fast under TCG) or bzimage (the packed kernel).
# HOG_HARD          the hard limit the selftest gives every hog (default 16MiB). Set it above
#                   what a hog reaches (e.g. 1GiB) to see the run fail, naming the marker.
#
# Exit codes: 0 every required marker appeared, in causal order, and no failure pattern;
# 1 a failure pattern appeared, or a marker is missing or out of order;
# 2 timeout; 3 the guest stopped early (QEMU exited before the markers);
# 4 configuration error (missing packages or kernel, build failure).
# The serial log is kept in build/logs/uart.log. The guest's oomd records its inputs (--record)
# and the selftest client copies the recordings to the second serial port
# (build/logs/recording.log); once the markers pass, each recording is replayed on the host and
# must equal, line for line, the event lines that oomd printed on the console (a determinism
# check on every boot), and its timeline is drawn: build/logs/timeline.svg (the first oomd) and
# build/logs/timeline-after-restart.svg (the one the watchdog-restart behaviour started).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

LOG_DIR=$ROOT/build/logs
UART=$LOG_DIR/uart.log
WORK=$ROOT/build/qemu
TARGET=x86_64-unknown-linux-musl
RUN_TIMEOUT=${RUN_TIMEOUT:-120s}
RUN_UNTIL_MARKER=${RUN_UNTIL_MARKER:-1}
HOG_HARD=${HOG_HARD:-16MiB}

# The verdict logic (required markers, failure patterns, causal order) lives in one file, which
# scripts/test-verdict.sh checks against recorded logs.
# shellcheck source=scripts/lib/verdict.sh
. "$ROOT/scripts/lib/verdict.sh"
if [ -n "${REQUIRE:-}" ]; then
    IFS='|' read -r -a extra <<<"$REQUIRE"
    VERDICT_REQUIRED+=("${extra[@]}")
fi

say() { printf 'qemu-test: %s\n' "$*"; }
fail() { # code, reason
    say "$2"
    [ -f "$UART" ] && say "serial log: $UART"
    exit "$1"
}

case "$RUN_TIMEOUT" in
*[0-9]s) TIMEOUT_S=${RUN_TIMEOUT%s} ;;
*[0-9]m) TIMEOUT_S=$((${RUN_TIMEOUT%m} * 60)) ;;
*[0-9]) TIMEOUT_S=$RUN_TIMEOUT ;;
*) TIMEOUT_S= ;;
esac
case "$TIMEOUT_S" in
'' | *[!0-9]*) fail 4 "RUN_TIMEOUT=$RUN_TIMEOUT: expected seconds like 120s, 2m or 90" ;;
esac
case "$RUN_UNTIL_MARKER" in 0 | 1) ;; *) fail 4 "RUN_UNTIL_MARKER=$RUN_UNTIL_MARKER: expected 0 or 1" ;; esac

# ----- what the machine needs ---------------------------------------------------------------

# shellcheck source=scripts/lib/guest.sh
. "$ROOT/scripts/lib/guest.sh"
guest_prepare

# ----- build and pack -----------------------------------------------------------------------

say "building the Linux edge for $TARGET (selftest build)"
cargo build --release --quiet --target "$TARGET" \
    -p execd -p oomd-service -p oomctl -p hog-fixture -p selftest-client \
    --features oomd-service/selftest,execd/selftest || fail 4 "the build failed"
BIN=$ROOT/target/$TARGET/release
# The host's replayer, for the replay check after the boot.
cargo build --quiet -p oomd_host --bin oomd-sim || fail 4 "the build of oomd-sim failed"
SIM=$ROOT/target/debug/oomd-sim
for b in execd oomd oomctl hog-fixture selftest-client; do
    headers=$(readelf -l "$BIN/$b") || fail 4 "readelf cannot read $BIN/$b"
    if grep -q 'Requesting program interpreter' <<<"$headers"; then
        fail 4 "$BIN/$b is dynamically linked: the initramfs has no libc"
    fi
done

rm -rf "$WORK" && mkdir -p "$WORK/root"/{bin,etc/oomd,proc,sys,dev,run,tmp} "$LOG_DIR"
cp "$BIN/execd" "$WORK/root/init"
for b in oomd oomctl hog-fixture selftest-client; do cp "$BIN/$b" "$WORK/root/bin/"; done
sed -e 's|@BIN@|/bin|g' -e 's|@ETC@|/etc/oomd|g' -e 's|@RUN@|/run/oomd|g' -e "s|@HOG_HARD@|$HOG_HARD|g" \
    -e 's|@RECORDING_OUT@|/dev/ttyS1|g' \
    scripts/guest/services.toml.in >"$WORK/root/etc/oomd/services.toml"
cp scripts/guest/policy.toml "$WORK/root/etc/oomd/policy.toml"
guest_pack "$WORK/root" "$WORK/initramfs.cpio"

# ----- boot ---------------------------------------------------------------------------------

CMDLINE="console=ttyS0 panic=-1 loglevel=4 -- --init"
say "booting $(basename "$BOOT_KERNEL") with accel=$ACCEL, timeout ${TIMEOUT_S}s"
START=$(date +%s)
RECORDING=$LOG_DIR/recording.log
guest_boot "$WORK/initramfs.cpio" "$UART" "$LOG_DIR/qemu.log" 768 "$CMDLINE" -serial "file:$RECORDING"
stop_qemu() {
    if kill -0 "$QEMU_PID" 2>/dev/null; then
        kill "$QEMU_PID" 2>/dev/null || true
        wait "$QEMU_PID" 2>/dev/null || true
    fi
}
trap stop_qemu EXIT

CLEAN=$LOG_DIR/uart.clean.log

# Each recording the guest copied out replays to what oomd printed, and is drawn.
replay_check() {
    local dir=$LOG_DIR/recordings files f n=0 svg said
    rm -rf "$dir" && mkdir -p "$dir"
    files=$("$SIM" split-recordings "$RECORDING" "$dir") || fail 1 "replay check: cannot read $RECORDING"
    [ -n "$files" ] || fail 1 "replay check: the guest copied no recording to $RECORDING"
    for f in $files; do
        n=$((n + 1))
        svg=$LOG_DIR/timeline.svg
        [ "$n" = 1 ] || svg=$LOG_DIR/timeline-after-restart.svg
        said=$("$SIM" replay "$f" --against "$CLEAN" --plot "$svg" 2>&1 >/dev/null) ||
            fail 1 "replay check failed: $said"
        say "${said#oomd-sim: }"
        say "timeline: $svg"
    done
}

pass() { # the verdict was 0: check the replay, print the contract lines and succeed
    say "all ${#VERDICT_REQUIRED[@]} markers seen after $(($(date +%s) - START))s (accel=$ACCEL)"
    replay_check
    grep -E -- "$VERDICT_CONTRACT" "$CLEAN" | uniq || true
    say "serial log: $UART"
    exit 0
}

while :; do
    # Read the guest's state before the log: if QEMU has already exited, the copy below holds
    # everything it will ever write.
    stopped=0
    kill -0 "$QEMU_PID" 2>/dev/null || stopped=1
    verdict_clean "$UART" "$CLEAN" || fail 4 "cannot read the serial log $UART"
    code=0
    if [ "$stopped" = 1 ]; then
        wait "$QEMU_PID" 2>/dev/null || true
        reason=$(verdict_final "$CLEAN") || code=$?
        case "$code" in
        0) pass ;;
        1) fail 1 "$reason" ;;
        3) fail 3 "the guest $reason (qemu: $(tail -n 1 "$LOG_DIR/qemu.log" 2>/dev/null))" ;;
        *) fail 4 "verdict: unexpected status $code ($reason)" ;;
        esac
    fi
    reason=$(verdict_of "$CLEAN") || code=$?
    case "$code" in
    0) if [ "$RUN_UNTIL_MARKER" = 1 ]; then pass; fi ;;
    1) fail 1 "$reason" ;;
    10) ;;
    *) fail 4 "verdict: unexpected status $code ($reason)" ;;
    esac
    if [ $(($(date +%s) - START)) -ge "$TIMEOUT_S" ]; then
        if [ "$code" = 0 ]; then
            fail 2 "timeout after ${TIMEOUT_S}s: every marker appeared, but the guest did not power off"
        fi
        fail 2 "timeout after ${TIMEOUT_S}s; missing: ${reason}"
    fi
    sleep 0.2
done

#!/usr/bin/env bash
# What the oomd daemon costs where it runs for real (the guest: cgroup v2, each service in its
# own cgroup, the kernel figure one `pread` of its memory.current), next to earlyoom (Debian's
# package, with its glibc libraries, --dryrun) in the same guest at the same time. Boots the
# boot selftest's kernel under QEMU with execd as /init, three times:
#
#   idle     oomd's default policy (100 ms tick), 3 quiet services
#   svc1     20 ms ticks, 1 quiet service
#   svc17    20 ms ticks, 17 quiet services
#
# In each, scripts/guest/bench/cost-probe.sh measures RUNS (default 5) windows of WINDOW_S
# (default 10) s: CPU time from /proc/<pid>/schedstat, memory from smaps_rollup. Prints, as
# medians (and ranges) over the windows: idle CPU of both daemons in ms per s, their memory,
# and oomd's CPU per service per tick, (svc17 - svc1) / (16 x ticks).
#
#   ./scripts/bench-daemon-guest.sh
#
# Quiet services are hog fixtures that took 1 MiB at the start and then only wait. Under TCG
# (no KVM module here) every guest instruction is emulated, so the absolute figures are several
# times what the same work costs on the host; both daemons pay the same factor, so their ratio
# is what to read. Not part of test.sh: it measures, it does not prove.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-5}
WINDOW_S=${WINDOW_S:-10}
WARMUP_S=${WARMUP_S:-5}
WORK=$ROOT/build/bench-daemon-guest

say() { printf 'bench-daemon-guest: %s\n' "$*" >&2; }
fail() { say "$2"; exit "$1"; }

# shellcheck source=scripts/lib/guest.sh
. "$ROOT/scripts/lib/guest.sh"
# shellcheck source=scripts/lib/bench.sh
. "$ROOT/scripts/lib/bench.sh"
guest_prepare

say "building execd, oomd and hog-fixture for $GUEST_TARGET"
cargo build --release --quiet --target "$GUEST_TARGET" -p execd -p oomd-service -p hog-fixture ||
    fail 4 "the build failed"
BIN=$ROOT/target/$GUEST_TARGET/release
BUSYBOX=$(debian_package busybox-static)/bin/busybox
EARLYOOM=$(debian_package earlyoom)/usr/bin/earlyoom
if [ ! -x "$BUSYBOX" ] || [ ! -x "$EARLYOOM" ]; then
    fail 4 "busybox or earlyoom missing from their packages"
fi

image() { # config, tick ms, services -> cpio path
    local config=$1 root=$WORK/$1/root i lib
    rm -rf "${WORK:?}/$config" && mkdir -p "$root"/{bin,etc/oomd,proc,sys,dev,run,tmp}
    cp "$BIN/execd" "$root/init"
    cp "$BIN/oomd" "$BIN/hog-fixture" "$BUSYBOX" "$EARLYOOM" "$root/bin/"
    # earlyoom's libraries, where its loader looks for them.
    while read -r lib; do
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done < <(ldd "$EARLYOOM" | grep -oE '/[^ ]+' | sort -u)
    cp scripts/guest/bench/cost-probe.sh "$root/bin/cost-probe"
    cat >"$root/etc/oomd/policy.toml" <<EOF
[policy]
soft_bytes = "256 MiB"
hard_bytes = "384 MiB"
sample_period_ms = $2
EOF
    {
        cat <<EOF
[[service]]
name = "oomd"
argv = ["/bin/oomd", "--policy", "/etc/oomd/policy.toml", "--socket", "/run/oomd/oomd.sock",
        "--audit-log", "/run/oomd/audit.jsonl", "--log", "none"]
role = "watchdog"
memstat = false

[[service]]
name = "probe"
argv = ["/bin/busybox", "sh", "/bin/cost-probe", "$config", "$RUNS", "$WINDOW_S", "$WARMUP_S"]
role = "selftest"
memstat = false
EOF
        for i in $(seq "$3"); do
            cat <<EOF

[[service]]
name = "quiet$i"
argv = ["/bin/hog-fixture", "--chunk", "1MiB", "--max", "1MiB", "--interval-ms", "1000",
        "--lifetime-ms", "600000", "--linger-ms", "600000"]
EOF
        done
    } >"$root/etc/oomd/services.toml"
    guest_pack "$root" "$WORK/$config/initramfs.cpio"
    printf '%s\n' "$WORK/$config/initramfs.cpio"
}

boot() { # config, tick ms, services -> the serial log's COST lines on stdout
    local cpio uart=$WORK/$1/uart.log limit
    cpio=$(image "$@")
    say "booting config $1 (tick $2 ms, $3 services, accel=$ACCEL)"
    guest_boot "$cpio" "$uart" "$WORK/$1/qemu.log" 512 "console=ttyS0 panic=-1 loglevel=4 -- --init"
    limit=$((SECONDS + 60 + RUNS * WINDOW_S * 3 + WARMUP_S))
    while kill -0 "$QEMU_PID" 2>/dev/null && [ "$SECONDS" -lt "$limit" ]; do
        sleep 1
    done
    if kill -0 "$QEMU_PID" 2>/dev/null; then
        kill "$QEMU_PID"
        fail 2 "config $1: the guest did not power off in time (serial log: $uart)"
    fi
    wait "$QEMU_PID" || true
    local log
    log=$(tr -d '\r' <"$uart")
    grep -q '^COSTFAIL' <<<"$log" && fail 1 "config $1: $(grep '^COSTFAIL' <<<"$log")"
    grep -E '^COST(MEM)?: ' <<<"$log" || fail 1 "config $1: no COST lines (serial log: $uart)"
}

field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p"; }
ms_per_s() { # COST lines, which daemon -> ms of CPU per s, one per window
    awk -v k="$2_ns" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
        printf "%.4f\n", f[k] / 1e6 / (f["window_cs"] / 100) }' <<<"$1"
}

say "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), host $(uname -r), guest $(basename "$KERNEL"), accel=$ACCEL"
idle=$(boot idle 100 3)
svc1=$(boot svc1 20 1)
svc17=$(boot svc17 20 17)
cost_idle=$(grep '^COST:' <<<"$idle")
printf 'guest (%s windows of %s s; median (min - max)):\n' "$RUNS" "$WINDOW_S"
printf '  idle CPU, oomd default tick, 3 services: %s ms/s\n' "$(ms_per_s "$cost_idle" oomd | median_range)"
printf '  idle CPU, earlyoom default, same windows: %s ms/s\n' "$(ms_per_s "$cost_idle" earlyoom | median_range)"
mem=$(grep '^COSTMEM:' <<<"$idle")
printf '  oomd anonymous / Pss: %s / %s kB\n' "$(field oomd_anon <<<"$mem")" "$(field oomd_pss <<<"$mem")"
printf '  earlyoom anonymous / Pss: %s / %s kB\n' "$(field earlyoom_anon <<<"$mem")" "$(field earlyoom_pss <<<"$mem")"
per_tick=$(paste <(ms_per_s "$(grep '^COST:' <<<"$svc1")" oomd) <(ms_per_s "$(grep '^COST:' <<<"$svc17")" oomd) |
    awk '{ printf "%.3f\n", ($2 - $1) * 1000 / 16 / 50 }')
printf '  oomd CPU per service per tick (20 ms), pairs of windows: %s us\n' "$(median_range <<<"$per_tick")"

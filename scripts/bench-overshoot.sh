#!/usr/bin/env bash
# Overshoot side by side: oomd, earlyoom and the kernel's memory.max on the same runaway hog,
# in the same QEMU guest, measured by the same tools (issue 13, item 7).
#
#   ./scripts/bench-overshoot.sh                 # RUNS=10, the three default rates
#   RUNS=20 RATES="48:64KiB:1" ./scripts/bench-overshoot.sh
#
# The guest: Debian's kernel (the one scripts/qemu-test.sh boots), 2 vCPUs, 512 MiB, no swap,
# TCG unless kvm_intel or kvm_amd is loaded; busybox as its shell and scripts/guest/bench/init.sh
# as PID 1. A hard limit of 64 MiB for the hog. For each rate, RUNS runs of each cell, the cells
# alternating (run 1 of every cell, then run 2, ...), each run in a fresh cgroup
# (/sys/fs/cgroup/bench-hog, or oomd/hog under execd) after SETTLE_S seconds of quiet:
#
#   memmax       memory.max = 64 MiB on the hog's cgroup; the kernel's OOM killer ends it.
#   earlyoom     Debian's earlyoom (bookworm, 1.7), -M <MemAvailable just before the run, minus
#                64 MiB, in KiB> -s 100 (the guest has no swap: the swap condition always holds)
#                -r 0 (no reports); otherwise its defaults: its adaptive poll (at most 10 a
#                second, less often only far from the threshold), SIGTERM to the process with
#                the highest oom_score.
#                It watches the whole machine, not a cgroup: it fires when the machine has lost
#                64 MiB since the measurement, which includes its own start-up (avail0 - avail1
#                in the raw lines, a few hundred KiB, in its favour).
#   oomd         execd (a child of init, --cgroup-root) starts oomd (scripts/guest/bench/
#                policy.toml: hard = soft = 64 MiB, everything else default, so the 100 ms tick)
#                and the hog, which publishes on growth (--publish-on-growth): oomd's intended
#                setup. oomd kills through execd.
#   oomd-silent  the same with a hog that never publishes (--no-publish, and memstat = false in
#                the manifest: no channel), judged on its kernel figure (memory.current at each
#                tick, and at once on a memory.high event: oomd's brake at hard, which it sets
#                only where the kernel figure decides).
# Every oomd run starts a fresh execd and oomd with no audit log (nothing to resume: the kill
# budget of the previous runs would carry over).
#
# Each run starts the hog after a random delay of 0-999 ms (the random phase against oomd's tick
# and earlyoom's poll; oomd's hogs 1.5 s later still, so that execd and oomd are up: a run counts
# only if oomd said "ready" and "kill app=hog"). The hog
# grows by timer (--chunk, --interval-ms: RATES) and writes every page it holds.
#
# The figures, and what limits their precision:
#   crossing     the hog's own `crossed` line (hog-fixture --mark-bytes 64MiB --mark-base
#                <cgroup>/memory.current): CLOCK_MONOTONIC when its charge reaches 64 MiB, the
#                charge being memory.current read before each chunk plus the bytes of the chunk
#                written since (the chunk is written up to that byte, then the clock is read).
#                The kernel charges in batches of 64 pages per CPU, so memory.current runs up to
#                256 KiB (per CPU) ahead of the pages in use: the crossing is exact to about
#                256 KiB of growth, i.e. 256 KiB / rate (5 ms at 48 MiB/s, 1.3 ms at 193).
#   exit         bench-probe wait-exit: CLOCK_MONOTONIC when a pidfd on the hog becomes readable
#                (every thread gone, before the reap). The same clock as the crossing; it adds
#                the wake-up of the probe (tens of microseconds, more under TCG).
#   crossing-to-exit (ms)  exit - crossing. Negative is impossible; a hog killed before its
#                charge reached 64 MiB has no crossing ("before" in the table) and no time.
#   overshoot (MiB)  memory.peak of the hog's cgroup (the kernel's high-water mark of its
#                charge, read after the exit, before the cgroup is removed) - 64 MiB. Exact to
#                the kernel's accounting, which includes the same per-CPU batch: up to 256 KiB
#                (per CPU) above the pages in use. Negative: killed below the limit.
#   rate (MiB/s) what the guest achieved: the hog's held bytes at the crossing over the time
#                since it started (its `grow_ns`), median over every run of the rate.
#   ratios       earlyoom / oomd and memmax / oomd of the medians (> 1: oomd is ahead).
# Medians and ranges (min - max) over the runs that finished (a kill seen, a peak read); failed
# runs are counted and their raw lines kept. Under TCG the guest's clock runs as fast as the
# host's but its code much slower, so absolute times are larger than on hardware; the cells
# share that.
#
# Environment:
#   RUNS         runs per cell and rate (default 10)
#   RATES        space-separated NAME:CHUNK:INTERVAL_MS (default "48:192KiB:3 193:320KiB:1
#                fastest:1MiB:0"; NAME is a label, the achieved rate is measured, per cell:
#                the table's MiB/s). The hog's next chunk is due INTERVAL_MS after the start of
#                the last one, and it waits in whole milliseconds (rounded up), so the achieved
#                rate is below CHUNK / INTERVAL_MS; these were found by trial on the 2-vCPU TCG
#                guest. Small chunks where they can give the rate: the hog allocates a chunk
#                before writing it, so oomd (which sees allocations) learns of up to one chunk
#                before the kernel charges it (192 and 320 KiB: three and five publisher quanta
#                of 64 KiB). The fastest rate needs 1 MiB chunks (64 KiB chunks with no wait
#                reached only about 200 MiB/s: the per-chunk memory.current read and log
#                line), so there oomd may see up to 1 MiB early: in its favour.
#   CELLS        any of memmax earlyoom oomd oomd-silent (default: all four)
#   SETTLE_S     quiet seconds before each run (default 1)
#   RUN_TIMEOUT  seconds the guest may run (default: 120 + 12 per run)
#   QEMU_ACCEL   tcg or kvm (default: kvm only when kvm_intel or kvm_amd is loaded)
#   OOMD_POLICY_EXTRA  a diagnostic: more [policy] keys for oomd, ';'-separated (e.g.
#                "frame_budget_per_tick = 1024"); empty by default (the benchmark is oomd's
#                default policy), and the table's header names it when set
# Output: the table on stdout; the raw lines in build/bench-overshoot/results.log, the console
# in build/bench-overshoot/uart.log. Exit 0 when every run finished, 1 when some failed (the
# table is still printed), 2 on a timeout, 4 on a configuration error.
# It is not part of scripts/test.sh: it measures, it does not prove.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

WORK=$ROOT/build/bench-overshoot
DEBS=$WORK/debs
PKGS=$WORK/pkgs
IMAGE=$WORK/root
UART=$WORK/uart.log
RESULTS=$WORK/results.log
TARGET=x86_64-unknown-linux-musl
RUNS=${RUNS:-10}
RATES=${RATES:-48:192KiB:3 193:320KiB:1 fastest:1MiB:0}
CELLS=${CELLS:-memmax earlyoom oomd oomd-silent}
SETTLE_S=${SETTLE_S:-1}
OOMD_POLICY_EXTRA=${OOMD_POLICY_EXTRA:-}
HARD_MIB=64
HOG_MAX_MIB=256
GUEST_MIB=512

say() { printf 'bench-overshoot: %s\n' "$*" >&2; }
fail() { # code, reason
    say "$2"
    exit "$1"
}

case "$RUNS" in '' | *[!0-9]* | 0) fail 4 "RUNS=$RUNS: expected a positive number" ;; esac
case "$SETTLE_S" in '' | *[!0-9.]*) fail 4 "SETTLE_S=$SETTLE_S: expected seconds" ;; esac
read -r -a rate_list <<<"$RATES"
[ ${#rate_list[@]} -gt 0 ] || fail 4 "RATES is empty"
for r in "${rate_list[@]}"; do
    [[ $r =~ ^[A-Za-z0-9_.-]+:[0-9]+(KiB|MiB)?:[0-9]+$ ]] ||
        fail 4 "RATES entry '$r': expected NAME:CHUNK:INTERVAL_MS, e.g. 48:64KiB:1"
done
read -r -a cell_list <<<"$CELLS"
for c in "${cell_list[@]}"; do
    case "$c" in memmax | earlyoom | oomd | oomd-silent) ;; *) fail 4 "CELLS: unknown cell '$c'" ;; esac
done
total_runs=$((RUNS * ${#rate_list[@]} * ${#cell_list[@]}))
RUN_TIMEOUT=${RUN_TIMEOUT:-$((120 + 12 * total_runs))}
case "$RUN_TIMEOUT" in '' | *[!0-9]*) fail 4 "RUN_TIMEOUT=$RUN_TIMEOUT: expected seconds" ;; esac

# ----- what the machine needs (scripts/lib/guest.sh, as scripts/qemu-test.sh) ----------------

command -v apt-get >/dev/null || fail 4 "apt-get is needed to fetch earlyoom and busybox-static"
# shellcheck source=scripts/lib/guest.sh
. "$ROOT/scripts/lib/guest.sh"
guest_prepare

# ----- earlyoom and busybox: Debian's packages, downloaded once ------------------------------

mkdir -p "$DEBS" "$PKGS"
for pkg in earlyoom busybox-static; do
    debs=$(find "$DEBS" -maxdepth 1 -name "${pkg}_*.deb" -print)
    if [ -z "$debs" ]; then
        say "downloading $pkg (apt-get download, into $DEBS)"
        (cd "$DEBS" && apt-get download "$pkg" >/dev/null 2>&1) || fail 4 "apt-get download $pkg failed"
        debs=$(find "$DEBS" -maxdepth 1 -name "${pkg}_*.deb" -print)
    fi
    deb=$(sort -V <<<"$debs" | tail -n 1)
    if [ ! -e "$PKGS/$pkg.stamp" ] || [ "$deb" -nt "$PKGS/$pkg.stamp" ]; then
        rm -rf "${PKGS:?}/$pkg"
        dpkg-deb -x "$deb" "$PKGS/$pkg" || fail 4 "dpkg-deb -x $deb failed"
        basename "$deb" >"$PKGS/$pkg.stamp"
    fi
done
EARLYOOM=$PKGS/earlyoom/usr/bin/earlyoom
BUSYBOX=$PKGS/busybox-static/bin/busybox
if [ ! -x "$EARLYOOM" ] || [ ! -x "$BUSYBOX" ]; then
    fail 4 "earlyoom or busybox missing from their packages"
fi

# ----- build ----------------------------------------------------------------------------------

say "building execd, oomd, hog-fixture and bench-probe for $TARGET"
cargo build --release --quiet --target "$TARGET" \
    -p execd -p oomd-service -p hog-fixture -p bench-probe || fail 4 "the build failed"
BIN=$ROOT/target/$TARGET/release
for b in execd oomd hog-fixture bench-probe; do
    headers=$(readelf -l "$BIN/$b") || fail 4 "readelf cannot read $BIN/$b"
    if grep -q 'Requesting program interpreter' <<<"$headers"; then
        fail 4 "$BIN/$b is dynamically linked: the image has no libc for it"
    fi
done

# ----- the image --------------------------------------------------------------------------------

rm -rf "$IMAGE" && mkdir -p "$IMAGE"/{bin,etc/bench,proc,sys,dev,run,tmp}
cp scripts/guest/bench/init.sh "$IMAGE/init"
chmod 755 "$IMAGE/init"
cp "$BUSYBOX" "$IMAGE/bin/busybox"
for applet in sh mount sleep cat sed awk grep mkdir rmdir seq echo printf poweroff sync head \
    kill uname nproc; do
    ln -s busybox "$IMAGE/bin/$applet"
done
for b in execd oomd hog-fixture bench-probe; do cp "$BIN/$b" "$IMAGE/bin/"; done
cp "$EARLYOOM" "$IMAGE/bin/earlyoom"
# earlyoom is linked against glibc: the libraries and the loader ldd names, at the same paths.
libs=$(ldd "$EARLYOOM") || fail 4 "ldd $EARLYOOM failed"
while read -r lib; do
    [ -n "$lib" ] || continue
    mkdir -p "$IMAGE$(dirname "$lib")"
    cp -L "$lib" "$IMAGE$lib"
done < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$libs")
cp scripts/guest/bench/services.toml.in scripts/guest/bench/policy.toml "$IMAGE/etc/bench/"
if [ -n "$OOMD_POLICY_EXTRA" ]; then
    # A diagnostic, not the benchmark: more keys of [policy] (the table's header says so).
    printf '%s\n' "$OOMD_POLICY_EXTRA" | tr ';' '\n' >>"$IMAGE/etc/bench/policy.toml"
fi
rates_guest=${RATES}
cat >"$IMAGE/etc/bench/bench.conf" <<EOF
RUNS=$RUNS
RATES="$rates_guest"
CELLS="$CELLS"
SETTLE_S=$SETTLE_S
HARD_MIB=$HARD_MIB
HOG_MAX_MIB=$HOG_MAX_MIB
EOF
guest_pack "$IMAGE" "$WORK/initramfs.cpio"

# ----- boot and wait -----------------------------------------------------------------------------

: >"$RESULTS"
say "booting $(basename "$BOOT_KERNEL") (accel=$ACCEL, ${GUEST_MIB} MiB, 2 vCPUs): $total_runs runs, timeout ${RUN_TIMEOUT}s"
START=$(date +%s)
# Console on the first serial port, result lines (only init writes there) on the second.
guest_boot "$WORK/initramfs.cpio" "$UART" "$WORK/qemu.log" "$GUEST_MIB" \
    "console=ttyS0 panic=-1 loglevel=4" -serial "file:$RESULTS"
stop_qemu() {
    if kill -0 "$QEMU_PID" 2>/dev/null; then
        kill "$QEMU_PID" 2>/dev/null || true
        wait "$QEMU_PID" 2>/dev/null || true
    fi
}
trap stop_qemu EXIT

timed_out=0
last=0
while kill -0 "$QEMU_PID" 2>/dev/null; do
    if [ $(($(date +%s) - START)) -ge "$RUN_TIMEOUT" ]; then
        timed_out=1
        stop_qemu
        break
    fi
    done_runs=$(grep -c '^BENCH cell=' "$RESULTS" || true)
    if [ "$done_runs" -ge $((last + 10)) ]; then
        say "$done_runs of $total_runs runs done after $(($(date +%s) - START))s"
        last=$done_runs
    fi
    sleep 1
done
wait "$QEMU_PID" 2>/dev/null || true
ELAPSED=$(($(date +%s) - START))

# ----- the table -----------------------------------------------------------------------------------

clean=$(tr -d '\r' <"$RESULTS")
guest_line=$(grep -m 1 '^BENCH machine ' <<<"$clean" || true)
model=$(LC_ALL=C lscpu | sed -n 's/^Model name: *//p' | head -n 1)
echo "# Overshoot side by side ($(date -u +%Y-%m-%d), scripts/bench-overshoot.sh)"
echo "host: ${model:-unknown CPU}, $(nproc) cores, Linux $(uname -r); accel=$ACCEL"
echo "guest: $(basename "$BOOT_KERNEL"), 2 vCPUs, ${GUEST_MIB} MiB, ${guest_line#BENCH machine }"
echo "hard limit ${HARD_MIB} MiB; oomd's tick: 100 ms (the default sample_period_ms); RUNS=$RUNS per cell; guest ran ${ELAPSED}s"
if [ -n "$OOMD_POLICY_EXTRA" ]; then
    echo "DIAGNOSTIC, not oomd's default policy: OOMD_POLICY_EXTRA=\"$OOMD_POLICY_EXTRA\""
fi
echo
awk -v hard=$((HARD_MIB * 1048576)) -v rates="${rate_list[*]}" -v cells="${cell_list[*]}" '
function median(list, n,    i, j, t, a) {
    if (n == 0) return "";
    split(list, a, " ");
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t; }
    lo = a[1]; hi = a[n];
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2;
}
function stat(list, n, fmt,    m) {
    m = median(list, n);
    if (m == "") return "-";
    return sprintf(fmt " (" fmt " - " fmt ")", m, lo, hi);
}
function ratio(a, b) { return (a == "" || b == "" || b <= 0 || a < 0) ? "n/a" : sprintf("%.1f", a / b); }
$1 == "BENCH" && $2 ~ /^cell=/ {
    delete f;
    for (i = 2; i <= NF; i++) { k = $i; sub(/=.*/, "", k); v = $i; sub(/^[^=]*=/, "", v); f[k] = v; }
    key = f["cell"] SUBSEP f["rate"];
    total[key]++;
    if (f["ok"] != "1") { failed[key]++; next; }
    ov = (f["peak"] - hard) / 1048576;
    ovl[key] = ovl[key] " " ov; ovn[key]++;
    if (f["oomd_request_to_exit"] != "") {
        x = f["oomd_request_to_exit"]; sub(/^[0-9]*t\//, "", x); sub(/ms$/, "", x);
        ql[key] = ql[key] " " x; qn[key]++;
    }
    if (f["mark_ns"] == "none") { before[key]++; next; }
    t = (f["exit_ns"] - f["mark_ns"]) / 1e6;
    tl[key] = tl[key] " " t; tn[key]++;
    if (f["grow_ns"] > 0) {
        r = f["held"] / 1048576 / (f["grow_ns"] / 1e9);
        rl[f["rate"]] = rl[f["rate"]] " " r; rn[f["rate"]]++;
        cl[key] = cl[key] " " r; cn[key]++;
    }
}
END {
    nr = split(rates, R, " "); nc = split(cells, C, " ");
    printf "%-8s %-12s %5s %26s %26s %6s %7s\n", "rate", "cell", "runs", "overshoot MiB: median (range)", "crossing-to-exit ms", "MiB/s", "before";
    for (i = 1; i <= nr; i++) {
        split(R[i], p, ":"); name = p[1];
        achieved = median(rl[name], rn[name]);
        for (j = 1; j <= nc; j++) {
            key = C[j] SUBSEP name;
            ok = ovn[key] + 0;
            cr = median(cl[key], cn[key]);
            printf "%-8s %-12s %2d/%-2d %26s %26s %6s %7d\n", name, C[j], ok, total[key] + 0,
                stat(ovl[key], ovn[key], "%.2f"), stat(tl[key], tn[key], "%.1f"),
                cr == "" ? "-" : sprintf("%.0f", cr), before[key] + 0;
            mo[key] = median(ovl[key], ovn[key]); mt[key] = median(tl[key], tn[key]);
        }
        printf "%-8s achieved %s MiB/s (median over the runs, chunk %s, interval %s ms)\n", name,
            achieved == "" ? "?" : sprintf("%.0f", achieved), p[2], p[3];
        for (j = 1; j <= nc; j++) {
            key = C[j] SUBSEP name;
            if (qn[key] > 0)
                printf "%-8s %-12s oomd'"'"'s own kill report: request to exit seen %s ms\n", name, C[j],
                    stat(ql[key], qn[key], "%.1f");
        }
        if (("oomd" SUBSEP name) in mo) {
            o = "oomd" SUBSEP name;
            printf "%-8s ratios (median / oomd median): earlyoom overshoot %s, time %s; memmax overshoot %s, time %s\n", name,
                ratio(mo["earlyoom" SUBSEP name], mo[o]), ratio(mt["earlyoom" SUBSEP name], mt[o]),
                ratio(mo["memmax" SUBSEP name], mo[o]), ratio(mt["memmax" SUBSEP name], mt[o]);
        }
        print "";
    }
    # The targets of issue 13, on the oomd cell (the publishing hog).
    last = R[nr]; split(last, p, ":"); fast = p[1];
    print "targets (oomd cell):";
    for (i = 1; i <= nr; i++) {
        split(R[i], p, ":"); name = p[1]; o = "oomd" SUBSEP name; m = "memmax" SUBSEP name;
        if (!(o in mo) || mo[o] == "") continue;
        printf "  %-8s overshoot %.2f MiB <= 1: %s", name, mo[o], (mo[o] <= 1) ? "met" : "MISSED";
        if ((m in mt) && mt[m] != "" && mt[o] != "")
            printf "; time %.1f ms <= 2 x memmax %.1f ms: %s", mt[o], mt[m], (mt[o] <= 2 * mt[m]) ? "met" : "MISSED";
        print "";
    }
    o = "oomd" SUBSEP fast; e = "earlyoom" SUBSEP fast;
    if ((o in mt) && (e in mt) && mt[o] != "" && mt[e] != "")
        printf "  %-8s earlyoom time / oomd time %s >= 5: %s; overshoot ratio %s\n", fast, ratio(mt[e], mt[o]),
            (mt[o] > 0 && mt[e] / mt[o] >= 5) ? "met" : "MISSED", ratio(mo[e], mo[o]);
}' <<<"$clean"
failed_lines=$(grep '^BENCH cell=.* ok=0' <<<"$clean" || true)
got=$(grep -c '^BENCH cell=' <<<"$clean" || true)
echo
echo "raw lines: $RESULTS; console: $UART"
if [ "$timed_out" = 1 ]; then
    say "timeout after ${RUN_TIMEOUT}s: $got of $total_runs runs reported"
    exit 2
fi
if [ -n "$failed_lines" ] || [ "$got" -lt "$total_runs" ]; then
    say "$got of $total_runs runs reported; failed runs:"
    [ -z "$failed_lines" ] || printf '%s\n' "$failed_lines" >&2
    exit 1
fi
exit 0

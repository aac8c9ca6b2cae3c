#!/bin/sh
# PID 1 of the overshoot benchmark's guest (scripts/bench-overshoot.sh builds the image, with
# busybox as /bin/sh). It mounts what the runs need, runs every cell /etc/bench/bench.conf asks
# for, writes one result line per run to the second serial port (/dev/ttyS1, one write each),
# and powers off. It changes the machine (mounts, cgroups, power-off), so it refuses to run as
# anything but PID 1: never on a host.
#
# One run: a fresh cgroup for the hog, a random start delay (0-999 ms: the random phase
# against oomd's 100 ms tick and earlyoom's 100 ms poll), the hog growing by timer with
# --mark-bytes at the hard limit (its charge read from its cgroup's memory.current), and
# bench-probe waiting on a pidfd for its exit. Then memory.peak of its cgroup, read before the
# cgroup is removed. The cells differ only in who kills:
#   memmax       memory.max = hard on the hog's cgroup: the kernel's OOM killer
#   earlyoom     earlyoom -M (MemAvailable measured just before - hard) -s 100 -r 0
#   oomd         execd (not PID 1: --cgroup-root) starts oomd and the hog, which publishes on
#                growth (--publish-on-growth): oomd's intended setup
#   oomd-silent  the same with a hog that never publishes and has no memstat channel
#                (memstat = false): oomd judges its kernel figure, with its memory.high brake
# Result line: BENCH cell= rate= run= delay_ms= mark_ns= held= grow_ns= exit_ns= peak=
#   killer= ok= [extra fields per cell]; times are CLOCK_MONOTONIC ns of this guest.

if [ "$$" != 1 ]; then
    echo "bench-init: pid $$ is not 1: this script is only for the first process of the benchmark's guest" >&2
    exit 2
fi
export PATH=/bin
umask 022

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mkdir -p /run/oomd
echo +memory >/sys/fs/cgroup/cgroup.subtree_control

# shellcheck source=/dev/null # written by scripts/bench-overshoot.sh into the image
. /etc/bench/bench.conf
CG=/sys/fs/cgroup
HARD=$((HARD_MIB * 1024 * 1024))
OUT=/dev/ttyS1

say() { echo "bench-init: $*"; }
# One result line, written with one write() by echo.
result() { echo "BENCH $*" >"$OUT"; }

off() {
    sync
    poweroff -f
    while :; do sleep 1000; done
}

# The hog's command line for a cell: growth, bounds (it ends by itself if nothing kills it:
# at --max it lingers 1 s, and 20 s is its lifetime), and the mark.
hog_args() { # chunk interval_ms cgroup_dir publishing(0|1)
    printf '%s ' --chunk "$1" --interval-ms "$2" --max "${HOG_MAX_MIB}MiB" --linger-ms 1000 \
        --lifetime-ms 20000 --mark-bytes "$HARD" --mark-base "$3/memory.current"
    if [ "$4" = 1 ]; then
        echo --publish-on-growth --require-publisher
    else
        echo --no-publish
    fi
}

field() { # key -> its value on the hog's `crossed` line, or nothing
    sed -n "s/.* crossed .* $1=\([0-9]*\).*/\1/p" /tmp/hog.log | head -n 1
}

mem_available_kib() {
    awk '/^MemAvailable:/ { print $2 }' /proc/meminfo
}

# Reads the mark from the hog's log and the peak from its cgroup, then prints the line.
report() { # cell rate run delay exit_ns cgroup_dir killer extra...
    cell=$1 rate=$2 run=$3 delay=$4 exit_ns=$5 dir=$6 killer=$7
    shift 7
    mark_ns=$(field at_ns)
    held=$(field held)
    grow_ns=$(field grow_ns)
    peak=$(cat "$dir/memory.peak" 2>/dev/null)
    ok=1
    [ -n "$mark_ns" ] || { mark_ns=none; held=none; grow_ns=none; }
    [ -n "$exit_ns" ] || { exit_ns=none; ok=0; }
    [ -n "$peak" ] || { peak=none; ok=0; }
    [ "$killer" != none ] || ok=0
    result "cell=$cell rate=$rate run=$run delay_ms=$delay mark_ns=$mark_ns held=$held" \
        "grow_ns=$grow_ns exit_ns=$exit_ns peak=$peak killer=$killer ok=$ok $*"
}

# Waits for the pid's exit and prints exit_ns, or nothing.
exit_ns_of() { # pid
    bench-probe wait-exit "$1" 30000 >/tmp/probe.out 2>/tmp/probe.err
    sed -n 's/^exit pid=[0-9]* at_ns=\([0-9]*\)$/\1/p' /tmp/probe.out
}

settle() {
    sync
    sleep "$SETTLE_S"
}

# A hog in a cgroup of our own (memmax, earlyoom): started in the background by a shell that
# joins the cgroup, sleeps the random delay and becomes the hog (exec: same pid).
start_own_hog() { # dir delay_s args...
    dir=$1 delay_s=$2
    shift 2
    # shellcheck disable=SC2016 # expanded by the inner shell
    sh -c 'echo $$ >"$0/cgroup.procs" && sleep "$1" && shift 2 && exec hog-fixture "$@"' \
        "$dir" "$delay_s" -- "$@" 2>/tmp/hog.log &
    HOG_PID=$!
}

run_memmax() { # rate chunk interval run delay_ms
    dir=$CG/bench-hog
    mkdir "$dir" || { result "cell=memmax rate=$1 run=$4 ok=0 error=mkdir"; return; }
    echo "$HARD" >"$dir/memory.max"
    delay_s=$(printf '0.%03d' "$5")
    # shellcheck disable=SC2046 # the argument list is split on purpose
    start_own_hog "$dir" "$delay_s" $(hog_args "$2" "$3" "$dir" 0)
    exit_ns=$(exit_ns_of "$HOG_PID")
    wait "$HOG_PID"
    status=$?
    kills=$(sed -n 's/^oom_kill \([0-9]*\)$/\1/p' "$dir/memory.events")
    killer=none
    [ "${kills:-0}" -ge 1 ] && [ "$status" = 137 ] && killer=kernel-oom
    report memmax "$1" "$4" "$5" "$exit_ns" "$dir" "$killer" "status=$status oom_kill=$kills"
    rmdir "$dir"
}

run_earlyoom() { # rate chunk interval run delay_ms
    dir=$CG/bench-hog
    mkdir "$dir" || { result "cell=earlyoom rate=$1 run=$4 ok=0 error=mkdir"; return; }
    avail0=$(mem_available_kib)
    min_kib=$((avail0 - HARD / 1024))
    earlyoom -M "$min_kib" -s 100 -r 0 >/tmp/earlyoom.log 2>&1 &
    eo=$!
    sleep 0.5
    avail1=$(mem_available_kib)
    delay_s=$(printf '0.%03d' "$5")
    # shellcheck disable=SC2046
    start_own_hog "$dir" "$delay_s" $(hog_args "$2" "$3" "$dir" 0)
    exit_ns=$(exit_ns_of "$HOG_PID")
    wait "$HOG_PID"
    status=$?
    kill "$eo"
    wait "$eo"
    killer=none
    grep -q "sending SIGTERM to process $HOG_PID " /tmp/earlyoom.log && [ "$status" = 143 ] &&
        killer=earlyoom
    report earlyoom "$1" "$4" "$5" "$exit_ns" "$dir" "$killer" \
        "status=$status min_kib=$min_kib avail0_kib=$avail0 avail1_kib=$avail1"
    if [ "$killer" = none ]; then
        sed 's/^/earlyoom: /' /tmp/earlyoom.log
    fi
    rmdir "$dir"
}

run_oomd() { # cell rate chunk interval run delay_ms publishing
    cell=$1
    shift
    dir=$CG/oomd/hog
    if [ -e "$dir" ]; then
        result "cell=$cell rate=$1 run=$4 ok=0 error=stale-cgroup"
        return
    fi
    delay_s=$(printf '0.%03d' "$5")
    # The hog waits 1.5 s more than the others: execd and oomd start first, and oomd must be
    # ready before the hog grows.
    delay_s=$(awk -v d="$delay_s" 'BEGIN { printf "%.3f", d + 1.5 }')
    args=$(hog_args "$2" "$3" "$dir" "$6")
    argv=""
    for a in $args; do argv="$argv, \"$a\""; done
    memstat=true
    [ "$6" = 1 ] || memstat=false
    sed -e "s|@DELAY@|$delay_s|" -e "s|@HOG_ARGS@|$argv|" -e "s|@MEMSTAT@|$memstat|" \
        /etc/bench/services.toml.in >/tmp/services.toml
    # A fresh oomd: no audit log to resume from (it would carry the kill budget of the last
    # runs over), no sockets.
    rm -rf /run/oomd
    mkdir -p /run/oomd
    execd --manifest /tmp/services.toml --socket /run/oomd/execd.sock \
        --cgroup-root "$CG" >/tmp/execd.log 2>&1 &
    execd_pid=$!
    # The hog's cgroup appears when execd spawns it; keep it (a child directory makes execd's
    # rmdir fail) until its memory.peak is read.
    pid=
    for _ in $(seq 1 300); do
        read -r pid <"$dir/cgroup.procs" 2>/dev/null && [ -n "$pid" ] && break
        sleep 0.01
    done
    if [ -z "$pid" ]; then
        kill "$execd_pid"
        wait "$execd_pid"
        result "cell=$cell rate=$1 run=$4 ok=0 error=no-hog"
        sed 's/^/execd: /' /tmp/execd.log
        return
    fi
    mkdir "$dir/keep"
    exit_ns=$(exit_ns_of "$pid")
    # oomd prints its kill line once execd confirmed the exit.
    for _ in $(seq 1 100); do
        grep -q "oomd: kill app=hog " /tmp/execd.log && break
        sleep 0.02
    done
    kill "$execd_pid"
    wait "$execd_pid"
    killer=none
    grep -q "oomd: kill app=hog " /tmp/execd.log && killer=oomd
    grep -q "oomd: ready" /tmp/execd.log || killer=none
    report=$(sed -n 's/.*oomd: kill report app=hog .*overshoot=\([0-9-]*\) cross_to_request=\([^ ]*\) request_to_exit=\([^ ]*\).*/oomd_overshoot=\1 oomd_cross_to_request=\2 oomd_request_to_exit=\3/p' /tmp/execd.log | head -n 1)
    over_budget=$(grep -c "reason=over-budget" /tmp/execd.log)
    # The brakes oomd set on the hog (memory.high): how many, and the first one (for a
    # reporting hog: hard plus the charge its report does not show, before the kill).
    brakes=$(grep -c "oomd: brake app=hog memory.high=[0-9]" /tmp/execd.log)
    first=$(grep -a -o "oomd: brake app=hog memory.high=[0-9][0-9]*" /tmp/execd.log | head -n 1)
    first=${first##*=}
    # Brakes written at the hog's charge, over the one wanted (never below what it holds).
    at_charge=$(grep -c "oomd: brake app=hog memory.high=[0-9]*: at its charge" /tmp/execd.log)
    report "$cell" "$1" "$4" "$5" "$exit_ns" "$dir" "$killer" "$report" \
        "over_budget_lines=$over_budget brake_lines=$brakes first_brake=${first:-none}" \
        "at_charge_lines=$at_charge"
    if [ "$killer" = none ]; then
        sed 's/^/execd: /' /tmp/execd.log
    fi
    rmdir "$dir/keep"
    rmdir "$dir"
}

say "kernel $(uname -r), $(nproc) cpus, MemTotal $(awk '/^MemTotal:/ { print $2 }' /proc/meminfo) KiB"
result "machine kernel=$(uname -r) cpus=$(nproc) memtotal_kib=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)"
settle
for rate in $RATES; do
    name=${rate%%:*}
    rest=${rate#*:}
    chunk=${rest%%:*}
    interval=${rest#*:}
    run=1
    while [ "$run" -le "$RUNS" ]; do
        # The cells alternate within each run number, so slow drift hits them all alike.
        for cell in $CELLS; do
            # shellcheck disable=SC3028 # busybox ash has RANDOM
            delay=$((RANDOM % 1000))
            settle
            case "$cell" in
            memmax) run_memmax "$name" "$chunk" "$interval" "$run" "$delay" ;;
            earlyoom) run_earlyoom "$name" "$chunk" "$interval" "$run" "$delay" ;;
            oomd) run_oomd oomd "$name" "$chunk" "$interval" "$run" "$delay" 1 ;;
            oomd-silent) run_oomd oomd-silent "$name" "$chunk" "$interval" "$run" "$delay" 0 ;;
            *) result "cell=$cell ok=0 error=unknown-cell" ;;
            esac
        done
        say "rate $name: run $run of $RUNS done"
        run=$((run + 1))
    done
done
result "done"
say "done"
off

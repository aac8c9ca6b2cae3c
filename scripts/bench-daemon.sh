#!/usr/bin/env bash
# What the oomd daemon costs on this host, next to earlyoom (Debian's package) in the same run:
# execd, oomd and hog fixtures as real processes, CPU time read from /proc/<pid>/schedstat
# (nanoseconds on the CPU) over fixed windows, memory from /proc/<pid>/smaps_rollup.
#
#   ./scripts/bench-daemon.sh                     the current tree
#   BASELINE=<git rev> ./scripts/bench-daemon.sh  ... and that revision, interleaved, same run
#
# Four figures, each the median (and range) of RUNS (default 5) runs:
#   idle       oomd at its default policy (100 ms tick) watching 3 quiet services, and earlyoom
#              at its defaults (with --dryrun: it never signals anything) started at the same
#              time: CPU in ms per second of wall time, over WINDOW_S (default 30) s.
#              Next to them in the same window, the floor: `bench-probe tick-floor`, a process
#              that only wakes on a timerfd, every 100 ms (what any daemon polling at oomd's
#              default tick pays for its wakes alone) and every 1000 ms; and the wakes per
#              second of oomd and earlyoom (voluntary context switches).
#   memory     after the idle window: Anonymous and Pss (kB) of oomd and of earlyoom.
#   service    oomd's CPU per service per tick: 20 ms ticks, 1 and then 17 quiet services,
#              (cpu17 - cpu1) / (16 services x ticks in the window), in us.
#   frame      oomd's CPU per accepted frame: one honest hog growing 4 KiB per ms (one frame
#              per ms, each alone; frame budget 256 so every one is accepted), against the same
#              setup with a hog that does not grow: (cpu_grow - cpu_still) / frames, in us.
#              Frames are counted from the hog's log (bytes held / 4 KiB).
#   burst      the same with frames in bursts of 8 (flood mode: 8 frames per 4 KiB chunk, one
#              chunk every 8 ms), which one batch receive takes together.
# Quiet services are hog fixtures that took 1 MiB at the start and then only wait.
#
# Not part of test.sh: it measures, it does not prove. Only processes it started are ended.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-5}
WINDOW_S=${WINDOW_S:-30}
SHORT_S=${SHORT_S:-10}
WARMUP_S=${WARMUP_S:-2}
WORK=$ROOT/build/bench-daemon

say() { printf 'bench-daemon: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
fail() { say "$2"; exit "$1"; }
# shellcheck source=scripts/lib/bench.sh
. "$ROOT/scripts/lib/bench.sh"

# ----- what it needs --------------------------------------------------------------------------


build() { # source dir -> bin dir on stdout
    (cd "$1" && cargo build --release --quiet -p execd -p oomd-service -p hog-fixture) >&2 ||
        die "the build in $1 failed"
    printf '%s/target/release\n' "$1"
}

# ----- reading a process ----------------------------------------------------------------------

cpu_ns() { # pid -> nanoseconds on the CPU (all threads)
    local ns
    read -r ns _ <"/proc/$1/schedstat"
    printf '%s\n' "$ns"
}

wakes() { # pid -> voluntary context switches so far (one per wake of a sleeping process)
    sed -n 's/^voluntary_ctxt_switches:[[:space:]]*//p' "/proc/$1/status"
}

smaps_kb() { # pid, field (Anonymous, Pss) -> kB
    sed -n "s/^$2:[[:space:]]*\([0-9]*\) kB$/\1/p" "/proc/$1/smaps_rollup"
}

# ----- one stack: execd, oomd and services ----------------------------------------------------

EXECD_PID=
OOMD_PID=

start_stack() { # bin dir, run dir, policy text, services text (extra [[service]] tables)
    local bin=$1 dir=$2 pid children
    rm -rf "$dir" && mkdir -p "$dir"
    printf '%s\n' "$3" >"$dir/policy.toml"
    cat >"$dir/services.toml" <<EOF
[[service]]
name = "oomd"
argv = ["$bin/oomd", "--policy", "$dir/policy.toml", "--socket", "$dir/oomd.sock",
        "--audit-log", "$dir/audit.jsonl", "--log", "none"]
role = "watchdog"
memstat = false
$4
EOF
    "$bin/execd" --manifest "$dir/services.toml" --socket "$dir/execd.sock" >"$dir/execd.log" 2>&1 &
    EXECD_PID=$!
    pid=
    for _ in $(seq 200); do
        pid=$(sed -n 's/^execd: started oomd pid=\([0-9]*\)$/\1/p' "$dir/execd.log" | head -n 1)
        [ -n "$pid" ] && break
        sleep 0.05
    done
    [ -n "$pid" ] || { stop_stack; die "oomd did not start (see $dir/execd.log)"; }
    # execd runs each service under a subreaper shim on a host and reports the shim's pid.
    children=$(cat "/proc/$pid/task/$pid/children" 2>/dev/null || true)
    if [ "$(cat "/proc/$pid/comm")" != oomd ] && [ -n "$children" ]; then
        pid=${children%% *}
    fi
    [ "$(cat "/proc/$pid/comm")" = oomd ] || { stop_stack; die "pid $pid is not oomd"; }
    OOMD_PID=$pid
}

stop_stack() {
    if [ -n "$EXECD_PID" ]; then
        kill "$EXECD_PID" 2>/dev/null || true
        wait "$EXECD_PID" 2>/dev/null || true
    fi
    EXECD_PID=
}
trap stop_stack EXIT

quiet_services() { # count -> [[service]] tables of quiet hogs
    local i
    for i in $(seq "$1"); do
        cat <<EOF
[[service]]
name = "quiet$i"
argv = ["$BIN/hog-fixture", "--chunk", "1MiB", "--max", "1MiB", "--interval-ms", "1000",
        "--lifetime-ms", "600000", "--linger-ms", "600000"]
EOF
    done
}

policy() { # tick ms, frame budget
    cat <<EOF
[policy]
soft_bytes = "900 MiB"
hard_bytes = "1 GiB"
sample_period_ms = $1
frame_budget_per_tick = $2
EOF
}

# ----- the four figures -------------------------------------------------------------------------

run_idle() { # label -> "oomd_ms/s earlyoom_ms/s oomd_anon oomd_pss eo_anon eo_pss floor100_ms/s floor1000_ms/s oomd_wakes/s eo_wakes/s"
    local dir=$WORK/$1/idle eo a0 a1 e0 e1 eo_pid f100 f1000 p0 p1 q0 q1 w0 w1 v0 v1
    start_stack "$BIN" "$dir" "$(policy 100 8)" "$(quiet_services 3)"
    "$EARLYOOM" --dryrun >"$dir/earlyoom.log" 2>&1 &
    eo_pid=$!
    "$PROBE" tick-floor 100 &
    f100=$!
    "$PROBE" tick-floor 1000 &
    f1000=$!
    sleep "$WARMUP_S"
    a0=$(cpu_ns "$OOMD_PID") e0=$(cpu_ns "$eo_pid") p0=$(cpu_ns "$f100") q0=$(cpu_ns "$f1000")
    w0=$(wakes "$OOMD_PID") v0=$(wakes "$eo_pid")
    sleep "$WINDOW_S"
    a1=$(cpu_ns "$OOMD_PID") e1=$(cpu_ns "$eo_pid") p1=$(cpu_ns "$f100") q1=$(cpu_ns "$f1000")
    w1=$(wakes "$OOMD_PID") v1=$(wakes "$eo_pid")
    eo="$(smaps_kb "$OOMD_PID" Anonymous) $(smaps_kb "$OOMD_PID" Pss)"
    eo="$eo $(smaps_kb "$eo_pid" Anonymous) $(smaps_kb "$eo_pid" Pss)"
    kill "$eo_pid" "$f100" "$f1000" 2>/dev/null || true
    wait "$eo_pid" "$f100" "$f1000" 2>/dev/null || true
    stop_stack
    awk -v a=$((a1 - a0)) -v e=$((e1 - e0)) -v w="$WINDOW_S" -v m="$eo" \
        -v p=$((p1 - p0)) -v q=$((q1 - q0)) -v ow=$((w1 - w0)) -v ew=$((v1 - v0)) \
        'BEGIN { printf "%.3f %.3f %s %.3f %.3f %.1f %.1f\n", a / w / 1e6, e / w / 1e6, m,
                 p / w / 1e6, q / w / 1e6, ow / w, ew / w }'
}

window_cpu() { # label, services count, tick ms -> oomd ns over SHORT_S
    local dir=$WORK/$1/service$2 c0 c1
    start_stack "$BIN" "$dir" "$(policy "$3" 8)" "$(quiet_services "$2")"
    sleep "$WARMUP_S"
    c0=$(cpu_ns "$OOMD_PID")
    sleep "$SHORT_S"
    c1=$(cpu_ns "$OOMD_PID")
    stop_stack
    printf '%s\n' $((c1 - c0))
}

run_service() { # label -> us per service per tick
    local one many
    one=$(window_cpu "$1" 1 20)
    many=$(window_cpu "$1" 17 20)
    awk -v one="$one" -v many="$many" -v s="$SHORT_S" \
        'BEGIN { printf "%.3f\n", (many - one) / 16 / (s * 1000 / 20) / 1e3 }'
}

held() { # hog log -> bytes held at its last chunk line
    sed -n 's/.*chunk added=[0-9]* held=\([0-9]*\) .*/\1/p' "$1" | tail -n 1
}

frame_window() { # label, frames per chunk, hog argv tail -> "ns frames"
    local dir=$WORK/$1/frame c0 c1 h0 h1 per=$2
    start_stack "$BIN" "$dir" "$(policy 100 256)" "[[service]]
name = \"grower\"
argv = [\"$BIN/hog-fixture\", $3, \"--lifetime-ms\", \"600000\", \"--linger-ms\", \"600000\"]"
    sleep "$WARMUP_S"
    h0=$(held "$dir/execd.log") c0=$(cpu_ns "$OOMD_PID")
    sleep "$SHORT_S"
    h1=$(held "$dir/execd.log") c1=$(cpu_ns "$OOMD_PID")
    stop_stack
    printf '%s %s\n' $((c1 - c0)) $(((${h1:-0} - ${h0:-0}) * per / 4096))
}

run_frame() { # label, frames per chunk, interval ms -> us per accepted frame
    local grow still mode=()
    [ "$2" -gt 1 ] && mode=('"--mode", "flood", "--flood-frames", "'"$2"'", ')
    grow=$(frame_window "$1" "$2" "${mode[*]:-}"'"--chunk", "4KiB", "--interval-ms", "'"$3"'", "--max", "900MiB"')
    still=$(frame_window "$1" "$2" "${mode[*]:-}"'"--chunk", "4KiB", "--interval-ms", "'"$3"'", "--max", "4KiB"')
    read -r g frames <<<"$grow"
    read -r s _ <<<"$still"
    [ "$frames" -gt 0 ] || die "the growing hog sent no frames (see $WORK/$1/frame/execd.log)"
    awk -v g="$g" -v s="$s" -v f="$frames" 'BEGIN { printf "%.3f %d\n", (g - s) / f / 1e3, f }'
}


# ----- the run ----------------------------------------------------------------------------------

[ -r /proc/self/schedstat ] || die "this kernel has no /proc/<pid>/schedstat"
EARLYOOM=$(debian_package earlyoom)/usr/bin/earlyoom
(cargo build --release --quiet -p bench-probe) >&2 || die "the build of bench-probe failed"
PROBE=$ROOT/target/release/bench-probe
say "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $(uname -r)"
say "earlyoom: $("$EARLYOOM" -h 2>&1 | head -n 1)"
labels=(current)
declare -A BINS
BINS[current]=$(build "$ROOT")
if [ -n "${BASELINE:-}" ]; then
    wt=$WORK/baseline-src
    rm -rf "$wt" && git worktree prune
    git worktree add --detach "$wt" "$BASELINE" >/dev/null
    trap 'stop_stack; git -C "$ROOT" worktree remove --force "$wt" >/dev/null 2>&1 || true' EXIT
    BINS[baseline]=$(build "$wt")
    labels+=(baseline)
fi

declare -A IDLE SERVICE FRAME BURST
for run in $(seq "$RUNS"); do
    for label in "${labels[@]}"; do
        BIN=${BINS[$label]}
        r=$(run_idle "$label")
        say "$label run $run idle: oomd/earlyoom ms per s, oomd anon/pss kB, earlyoom anon/pss kB, floor 100/1000 ms ms per s, oomd/earlyoom wakes per s: $r"
        IDLE[$label]+="$r"$'\n'
        r=$(run_service "$label")
        say "$label run $run service: $r us per service per tick"
        SERVICE[$label]+="$r"$'\n'
        r=$(run_frame "$label" 1 1)
        say "$label run $run frame: $r (us per accepted frame, frames)"
        FRAME[$label]+="$r"$'\n'
        r=$(run_frame "$label" 8 8)
        say "$label run $run burst: $r (us per accepted frame in bursts of 8, frames)"
        BURST[$label]+="$r"$'\n'
    done
done

col() { awk -v c="$1" 'NF { print $c }'; }
for label in "${labels[@]}"; do
    printf '%s (%s runs; median (min - max)):\n' "$label" "$RUNS"
    printf '  idle CPU, oomd default tick, 3 services: %s ms/s\n' "$(col 1 <<<"${IDLE[$label]}" | median_range)"
    printf '  idle CPU, earlyoom default, same window: %s ms/s\n' "$(col 2 <<<"${IDLE[$label]}" | median_range)"
    printf '  idle CPU, floor: a bare timerfd wake every 100 ms: %s ms/s, every 1000 ms: %s ms/s\n' "$(col 7 <<<"${IDLE[$label]}" | median_range)" "$(col 8 <<<"${IDLE[$label]}" | median_range)"
    printf '  wakes per second, oomd / earlyoom: %s / %s\n' "$(col 9 <<<"${IDLE[$label]}" | median_range)" "$(col 10 <<<"${IDLE[$label]}" | median_range)"
    printf '  oomd anonymous / Pss: %s / %s kB\n' "$(col 3 <<<"${IDLE[$label]}" | median_range)" "$(col 4 <<<"${IDLE[$label]}" | median_range)"
    printf '  earlyoom anonymous / Pss: %s / %s kB\n' "$(col 5 <<<"${IDLE[$label]}" | median_range)" "$(col 6 <<<"${IDLE[$label]}" | median_range)"
    printf '  CPU per service per tick (20 ms): %s us\n' "$(col 1 <<<"${SERVICE[$label]}" | median_range)"
    printf '  CPU per accepted frame, one per ms: %s us (frames per window: %s)\n' "$(col 1 <<<"${FRAME[$label]}" | median_range)" "$(col 2 <<<"${FRAME[$label]}" | median_range)"
    printf '  CPU per accepted frame, bursts of 8: %s us (frames per window: %s)\n' "$(col 1 <<<"${BURST[$label]}" | median_range)" "$(col 2 <<<"${BURST[$label]}" | median_range)"
done

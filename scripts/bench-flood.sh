#!/usr/bin/env bash
# What one flooding sender costs the oomd daemon: execd, oomd (20 ms ticks) and a hog fixture
# that sends memstat frames as fast as its socket takes them, as real processes on this host;
# oomd's CPU time is read from /proc/<pid>/stat over a fixed window, several runs, median.
#
#   ./scripts/bench-flood.sh                 the current tree
#   BASELINE=<git rev> ./scripts/bench-flood.sh   ... and that revision, side by side, same run
#
# RUNS (default 5) runs of WINDOW_S (default 5) seconds each, after WARMUP_S (default 2) s.
# Prints one line per run and the medians, in percent of one core. Not part of test.sh: it
# measures, it does not prove.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-5}
WINDOW_S=${WINDOW_S:-5}
WARMUP_S=${WARMUP_S:-2}
TICKS_PER_S=$(getconf CLK_TCK)

say() { printf 'bench-flood: %s\n' "$*" >&2; }

build() { # worktree -> bin dir on stdout
    (cd "$1" && cargo build --release --quiet -p execd -p oomd-service -p hog-fixture) >&2
    printf '%s/target/release\n' "$1"
}

cpu_ticks() { # pid -> utime+stime in clock ticks
    local stat rest
    stat=$(cat "/proc/$1/stat")
    rest=${stat##*) }
    # Fields after the command: state(1) ... utime(12) stime(13).
    read -r -a f <<<"$rest"
    printf '%s\n' $((f[11] + f[12]))
}

oomd_pid() { # the pid execd reported -> oomd's own pid
    # On a host, execd runs each service under a subreaper shim and reports the shim's pid
    # (from this tree on); the shim's one child is oomd. Earlier trees report oomd itself.
    local children
    children=$(cat "/proc/$1/task/$1/children" 2>/dev/null || true)
    if [ "$(cat "/proc/$1/comm")" = oomd ] || [ -z "$children" ]; then
        printf '%s\n' "$1"
    else
        printf '%s\n' "${children%% *}"
    fi
}

one_run() { # bin dir, run dir -> percent of one core on stdout
    local bin=$1 dir=$2 pid execd_pid before after AUDIT_ARGS=
    rm -rf "$dir" && mkdir -p "$dir"
    # Builds that have an audit log keep it in the run directory, never in /var/lib.
    local help
    help=$("$bin/oomd" --help 2>/dev/null || true)
    if grep -q -- '--audit-log' <<<"$help"; then
        AUDIT_ARGS=", \"--audit-log\", \"$dir/audit.jsonl\""
    fi
    cat >"$dir/policy.toml" <<'EOF'
[policy]
sample_period_ms = 20
frame_budget_per_tick = 8
EOF
    cat >"$dir/services.toml" <<EOF
[[service]]
name = "oomd"
argv = ["$bin/oomd", "--policy", "$dir/policy.toml", "--socket", "$dir/oomd.sock", "--log", "none"$AUDIT_ARGS]
role = "watchdog"
memstat = false

[[service]]
name = "flood"
argv = ["$bin/hog-fixture", "--mode", "flood", "--flood-frames", "1000000", "--interval-ms", "1",
        "--chunk", "4KiB", "--max", "64MiB", "--lifetime-ms", "$(((WARMUP_S + WINDOW_S + 5) * 1000))"]
EOF
    "$bin/execd" --manifest "$dir/services.toml" --socket "$dir/execd.sock" >"$dir/execd.log" 2>&1 &
    execd_pid=$!
    pid=
    for _ in $(seq 100); do
        pid=$(sed -n 's/^execd: started oomd pid=\([0-9]*\)$/\1/p' "$dir/execd.log" | head -n 1)
        [ -n "$pid" ] && break
        sleep 0.05
    done
    [ -n "$pid" ] || { kill "$execd_pid"; wait "$execd_pid" || true; say "oomd did not start"; exit 1; }
    sleep "$WARMUP_S"
    pid=$(oomd_pid "$pid")
    [ "$(cat "/proc/$pid/comm")" = oomd ] || { kill "$execd_pid"; say "pid $pid is not oomd"; exit 1; }
    before=$(cpu_ticks "$pid")
    sleep "$WINDOW_S"
    after=$(cpu_ticks "$pid")
    kill "$execd_pid"
    wait "$execd_pid" || true
    # percent of one core, two decimals
    printf '%s\n' "$(((after - before) * 10000 / (WINDOW_S * TICKS_PER_S)))" |
        sed -E 's/^([0-9]*)([0-9]{2})$/\1.\2/; s/^\./0./'
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

measure() { # label, bin dir
    local label=$1 bin=$2 results=() r
    for run in $(seq "$RUNS"); do
        r=$(one_run "$bin" "$ROOT/build/bench-flood/$label")
        say "$label run $run: oomd used $r % of one core"
        results+=("$r")
    done
    printf '%s\n' "${results[@]}" | median
}

say "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $(uname -r)"
current=$(measure current "$(build "$ROOT")")
say "current tree: median $current % of one core over $RUNS runs of ${WINDOW_S}s"
if [ -n "${BASELINE:-}" ]; then
    wt=$ROOT/build/bench-flood/baseline-src
    rm -rf "$wt" && git worktree prune
    git worktree add --detach "$wt" "$BASELINE" >/dev/null
    trap 'git -C "$ROOT" worktree remove --force "$wt" >/dev/null 2>&1 || true' EXIT
    base=$(measure baseline "$(build "$wt")")
    say "baseline $BASELINE: median $base % of one core over $RUNS runs of ${WINDOW_S}s"
fi

#!/bin/busybox sh
# The guest side of scripts/bench-daemon-guest.sh: execd (PID 1) runs it as the "selftest"
# service, so the machine powers off when it ends. It starts earlyoom (Debian's, with --dryrun:
# it never signals anything), lets both daemons settle, then measures RUNS windows of WINDOW_S
# seconds: the CPU time of oomd and of earlyoom from /proc/<pid>/schedstat (nanoseconds on the
# CPU), the window from /proc/uptime. One line per window, then one with both daemons' memory
# (smaps_rollup, kB), each printed with one write:
#   COST: config=<c> run=<i> window_cs=<n> oomd_ns=<n> earlyoom_ns=<n>
#   COSTMEM: config=<c> oomd_anon=<kB> oomd_pss=<kB> earlyoom_anon=<kB> earlyoom_pss=<kB>
# Arguments: config name, RUNS, WINDOW_S, WARMUP_S.
set -u
bb=/bin/busybox
config=$1 runs=$2 window=$3 warmup=$4

pid_of() { # comm -> pid
    for d in /proc/[0-9]*; do
        if [ "$($bb cat "$d/comm" 2>/dev/null)" = "$1" ]; then
            echo "${d#/proc/}"
            return 0
        fi
    done
    return 1
}
ns_of() { $bb cut -d' ' -f1 "/proc/$1/schedstat"; }
uptime_cs() { $bb tr -d . </proc/uptime | $bb cut -d' ' -f1; }
kb_of() { $bb sed -n "s/^$2:[[:space:]]*\([0-9]*\) kB\$/\1/p" "/proc/$1/smaps_rollup"; }

/bin/earlyoom --dryrun >/dev/null 2>&1 &
eo=$!
$bb sleep "$warmup"
oomd=$(pid_of oomd) || { echo "COSTFAIL: no oomd process"; exit 1; }
[ -r "/proc/$eo/schedstat" ] || { echo "COSTFAIL: earlyoom did not start"; exit 1; }
i=1
while [ "$i" -le "$runs" ]; do
    t0=$(uptime_cs) a0=$(ns_of "$oomd") e0=$(ns_of "$eo")
    $bb sleep "$window"
    t1=$(uptime_cs) a1=$(ns_of "$oomd") e1=$(ns_of "$eo")
    echo "COST: config=$config run=$i window_cs=$((t1 - t0)) oomd_ns=$((a1 - a0)) earlyoom_ns=$((e1 - e0))"
    i=$((i + 1))
done
echo "COSTMEM: config=$config oomd_anon=$(kb_of "$oomd" Anonymous) oomd_pss=$(kb_of "$oomd" Pss) earlyoom_anon=$(kb_of "$eo" Anonymous) earlyoom_pss=$(kb_of "$eo" Pss)"
kill "$eo"

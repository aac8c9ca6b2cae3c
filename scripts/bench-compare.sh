#!/usr/bin/env bash
# Compares the core's and the codec's criterion benchmarks between a git revision and the work
# tree, in one run: builds REV in a temporary worktree (its own target directory), then runs
# `cargo bench -p oomd --bench core` and `cargo bench -p memstat --bench codec` in the two trees
# one after the other, ROUNDS times (default 3), and prints, per benchmark, the median of the
# rounds' criterion medians for each tree and their ratio. Alternating keeps a machine whose
# speed drifts (a shared VM) from favouring one side. docs/perf.md's "Before and after" table
# came from this.
#
#   ./scripts/bench-compare.sh REV [ROUNDS]
set -euo pipefail

cd "$(dirname "$0")/.."
rev=${1:?usage: $0 REV [ROUNDS]}
rounds=${2:-3}
if ! [[ $rounds =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 REV [ROUNDS]" >&2
    exit 2
fi
base=$(mktemp -d /tmp/oomd-bench-base.XXXXXX)
results=$(mktemp /tmp/oomd-bench-results.XXXXXX)
cleanup() {
    git worktree remove --force "$base" 2>/dev/null || rm -rf "$base"
    rm -f "$results"
}
trap cleanup EXIT
git worktree add --quiet --detach "$base" "$rev"

# Appends "<tree> <bench id> <median ns>" for every estimate criterion wrote in <dir>.
collect() {
    local dir=$1 tree=$2 f id
    while IFS= read -r f; do
        id=${f#"$dir/target/criterion/"}
        id=${id%/new/estimates.json}
        printf '%s\t%s\t%s\n' "$tree" "$id" \
            "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["median"]["point_estimate"])' "$f")" \
            >>"$results"
    done < <(find "$dir/target/criterion" -path '*/new/estimates.json' 2>/dev/null)
}

for round in $(seq 1 "$rounds"); do
    for tree in before now; do
        dir=$PWD
        [[ $tree == before ]] && dir=$base
        rm -rf "$dir/target/criterion"
        (cd "$dir" && cargo bench -q -p oomd --bench core >/dev/null &&
            cargo bench -q -p memstat --bench codec >/dev/null)
        collect "$dir" "$tree"
        echo "bench-compare: round $round of $rounds, $tree ($([[ $tree == before ]] && echo "$rev" || echo "work tree")) done" >&2
    done
done

python3 - "$results" "$rev" <<'EOF'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    tree, bench, ns = line.rstrip("\n").split("\t")
    runs[(bench, tree)].append(float(ns))
def fmt(ns):
    return f"{ns / 1000:.2f} µs" if ns >= 1000 else f"{ns:.1f} ns"
print(f"| benchmark | before ({sys.argv[2]}) | now | now / before |")
print("|---|---|---|---|")
for bench in sorted({b for b, _ in runs}):
    before, now = runs.get((bench, "before")), runs.get((bench, "now"))
    if not before or not now:
        continue
    b, n = statistics.median(before), statistics.median(now)
    print(f"| `{bench}` | {fmt(b)} | {fmt(n)} | {n / b:.2f} |")
EOF

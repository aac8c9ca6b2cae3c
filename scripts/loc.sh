#!/usr/bin/env bash
# Lines of Rust per crate and the largest files, at a git revision (default: the work tree's
# HEAD), for before/after comparisons: `scripts/loc.sh eb93de0` then `scripts/loc.sh`.
# Counts every line of every tracked .rs file (code, docs, tests alike), as `wc -l` would.
set -euo pipefail
rev=${1:-HEAD}
top=${2:-10}
cd "$(git rev-parse --show-toplevel)"
files=$(git ls-tree -r --name-only "$rev" | grep '\.rs$' || true)
manifests=$(git ls-tree -r --name-only "$rev" | grep '/Cargo.toml$' | sed 's,/Cargo.toml$,,' | sort -r)
declare -A lines
for f in $files; do
    n=$(git show "$rev:$f" | wc -l)
    crate=other
    for d in $manifests; do
        case $f in "$d"/*) crate=$d; break ;; esac
    done
    lines[$crate]=$(( ${lines[$crate]:-0} + n ))
    echo "$n $f"
done > /tmp/loc.$$
echo "# lines per crate at $(git rev-parse --short "$rev")"
for c in "${!lines[@]}"; do printf '%7d  %s\n' "${lines[$c]}" "$c"; done | sort -k2
printf '%7d  total\n' "$(awk '{s+=$1} END {print s}' /tmp/loc.$$)"
echo "# largest files"
sort -rn /tmp/loc.$$ | head -n "$top" | awk '{printf "%7d  %s\n", $1, $2}'
rm -f /tmp/loc.$$

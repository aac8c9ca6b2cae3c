#!/usr/bin/env bash
# Runs every fuzz target (oomd_host/fuzz, docs/fuzzing.md) for SECONDS_PER_TARGET seconds
# each, one after the other, and prints a table: target, executions, coverage (libFuzzer's
# final cov and ft), crashes. Exits non-zero if any target crashed, timed out, leaked or went
# over the memory limit; what it found is in oomd_host/fuzz/artifacts/<target>/.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 60 seconds, every target)
#
# Environment: FUZZ_RUNS=N also stops each target after N executions; FUZZ_TIMEOUT (seconds
# per input, default 10) and FUZZ_RSS_MB (default 256) are libFuzzer's -timeout and
# -rss_limit_mb.
#
# Installs what it needs when missing: the nightly toolchain (rustup, minimal profile; where
# none can be fetched, the stable compiler with RUSTC_BOOTSTRAP=1) and cargo-fuzz. The
# workspace itself stays on stable: the fuzz crate is its own workspace, built only here.
set -euo pipefail

cd "$(dirname "$0")/.."

seconds=${1:-60}
if [[ $# -gt 0 ]]; then shift; fi
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
fi

FUZZ_DIR=oomd_host/fuzz
timeout_s=${FUZZ_TIMEOUT:-10}
rss_mb=${FUZZ_RSS_MB:-256}
# ASan's quarantine of freed memory counts in the RSS that -rss_limit_mb watches: keep it
# small, so that the limit measures what the code under test holds.
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=16}

step() { printf '\n==> %s\n' "$*"; }

# cargo-fuzz needs a nightly compiler (sanitizer and coverage flags). Where no nightly
# toolchain is installed and none can be fetched (a machine whose one toolchain is stable),
# the stable compiler is told to take them (RUSTC_BOOTSTRAP=1): same flags, same checks.
fuzz_cargo=(cargo +nightly)
toolchains=$(rustup toolchain list)
if ! grep -q '^nightly' <<<"$toolchains"; then
    step "installing the nightly toolchain (minimal profile) for cargo-fuzz"
    if ! rustup toolchain install nightly --profile minimal; then
        step "no nightly toolchain to be had: building the fuzz targets on $(rustc --version) with RUSTC_BOOTSTRAP=1"
        export RUSTC_BOOTSTRAP=1
        fuzz_cargo=(cargo)
    fi
fi
# libfuzzer-sys builds libFuzzer, which is C++.
if ! command -v c++ >/dev/null && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    step "installing g++ (libFuzzer is built from C++)"
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends g++ >/dev/null
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    step "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <("${fuzz_cargo[@]}" fuzz list --fuzz-dir "$FUZZ_DIR")
fi

step "building the fuzz targets (${fuzz_cargo[*]} fuzz build)"
"${fuzz_cargo[@]}" fuzz build --fuzz-dir "$FUZZ_DIR"

logs=$FUZZ_DIR/target/logs
mkdir -p "$logs"
declare -a rows
failed=0
for target in "${targets[@]}"; do
    corpus=$FUZZ_DIR/corpus/$target
    seeds=$FUZZ_DIR/seeds/$target
    artifacts=$FUZZ_DIR/artifacts/$target
    mkdir -p "$corpus" "$artifacts"
    before=$(find "$artifacts" -type f | wc -l)
    log=$logs/$target.log
    args=(-rss_limit_mb="$rss_mb" -timeout="$timeout_s" -max_total_time="$seconds"
        -print_final_stats=1)
    if [[ -n ${FUZZ_RUNS:-} ]]; then args+=(-runs="$FUZZ_RUNS"); fi
    dirs=("$corpus")
    if [[ -d $seeds ]]; then dirs+=("$seeds"); fi
    step "fuzzing $target for ${seconds}s ${args[*]}"
    status=0
    "${fuzz_cargo[@]}" fuzz run --fuzz-dir "$FUZZ_DIR" "$target" "${dirs[@]}" -- "${args[@]}" \
        >"$log" 2>&1 || status=$?
    after=$(find "$artifacts" -type f | wc -l)
    crashes=$((after - before))
    if [[ $status -ne 0 && $crashes -eq 0 ]]; then crashes=1; fi
    # The last status line ("#N DONE cov: C ft: F ..." or the last one before a crash) and
    # the final stats.
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    result=ok
    if [[ $crashes -ne 0 ]]; then
        result="FAILED (see $log, $artifacts)"
        failed=1
        grep -E 'panicked|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -n 5 || true
    fi
    rows+=("$(printf '%-16s %12s %7s %7s %8s  %s' "$target" "${execs:-?}" "${cov:-?}" \
        "${ft:-?}" "$crashes" "$result")")
done

step "fuzzing: ${seconds}s per target, -rss_limit_mb=$rss_mb -timeout=$timeout_s ($(nproc) cpus)"
printf '%-16s %12s %7s %7s %8s  %s\n' target executions cov ft crashes result
printf '%s\n' "${rows[@]}"
exit "$failed"

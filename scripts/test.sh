#!/usr/bin/env bash
# Runs every check the project has, in the order a reviewer would: formatting, lints, the test
# suites of every crate, a smoke of every fuzz target, the no_std build of the core crates for
# two bare-metal targets, and the QEMU boot selftest.
# This is the README's test command, and exactly what CI runs (.ci/run).
#
# It installs what it needs when missing (rustup targets; nightly and cargo-fuzz for the fuzz
# smoke; QEMU, a kernel and cpio through apt when run as root), and says what it is doing.
set -euo pipefail

cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# The no_std proof targets: a Cortex-M, and the riscv64 userspace of the OS whose services link
# memstat's portable publisher.
NO_STD_TARGETS=(thumbv7em-none-eabihf riscv64gc-unknown-none-elf)

step "toolchain: $(rustc --version)"
installed_targets=$(rustup target list --installed)
for target in "${NO_STD_TARGETS[@]}"; do
    if ! grep -qx -- "$target" <<<"$installed_targets"; then
        step "installing the rustup target $target"
        rustup target add "$target"
    fi
done

step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo clippy of the selftest builds (oomd-service, execd) -- -D warnings"
cargo clippy -p oomd-service -p execd --all-targets \
    --features oomd-service/selftest,execd/selftest -- -D warnings

step "cargo test --workspace"
cargo test --workspace

# A smoke of every fuzz target, a few seconds each (nightly and cargo-fuzz are installed when
# missing); the long runs are in docs/fuzzing.md.
step "fuzz smoke: every fuzz target for 5 s (scripts/fuzz.sh 5)"
./scripts/fuzz.sh 5

step "cargo doc --workspace --no-deps (warnings are errors: broken links fail)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

for target in "${NO_STD_TARGETS[@]}"; do
    step "no_std build of oomd and memstat (codec and publisher core) for $target"
    cargo build -p oomd -p memstat --no-default-features --target "$target"
    step "no_std build of memstat with CountingAlloc (feature counting-alloc) for $target"
    cargo build -p memstat --no-default-features --features counting-alloc --target "$target"
done

step "man pages and completions of every binary (scripts/gen-docs.sh, into a temporary directory)"
docs_out=$(mktemp -d)
./scripts/gen-docs.sh "$docs_out"
rm -rf "$docs_out"

step "the boot verdict on recorded logs (scripts/test-verdict.sh)"
./scripts/test-verdict.sh

step "the QEMU boot selftest (scripts/qemu-test.sh)"
RUN_UNTIL_MARKER=1 RUN_TIMEOUT=120s ./scripts/qemu-test.sh

step "all checks passed"

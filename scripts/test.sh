#!/usr/bin/env bash
# Runs every check the project has, in the order a reviewer would: formatting, lints, the test
# suites of every crate, the no_std build of the core crates for a bare-metal target, and the
# QEMU boot selftest.
# This is the README's test command, and exactly what CI runs (.ci/run).
#
# It installs what it needs when missing (rustup targets; QEMU, a kernel and cpio through apt when
# run as root), and says what it is doing.
set -euo pipefail

cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

NO_STD_TARGET=thumbv7em-none-eabihf

step "toolchain: $(rustc --version)"
installed_targets=$(rustup target list --installed)
if ! grep -qx -- "$NO_STD_TARGET" <<<"$installed_targets"; then
    step "installing the rustup target $NO_STD_TARGET"
    rustup target add "$NO_STD_TARGET"
fi

step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo clippy of the selftest builds (oomd-service, execd) -- -D warnings"
cargo clippy -p oomd-service -p execd --all-targets \
    --features oomd-service/selftest,execd/selftest -- -D warnings

step "cargo test --workspace"
cargo test --workspace

step "cargo doc --workspace --no-deps (warnings are errors: broken links fail)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

step "no_std build of oomd and memstat for $NO_STD_TARGET"
cargo build -p oomd -p memstat --no-default-features --target "$NO_STD_TARGET"

step "the boot verdict on recorded logs (scripts/test-verdict.sh)"
./scripts/test-verdict.sh

step "the QEMU boot selftest (scripts/qemu-test.sh)"
RUN_UNTIL_MARKER=1 RUN_TIMEOUT=120s ./scripts/qemu-test.sh

step "all checks passed"

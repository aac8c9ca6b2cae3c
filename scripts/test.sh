#!/usr/bin/env bash
# Runs every check the project has, in the order a reviewer would: formatting, lints, the test
# suites of every crate, and the no_std build of the core crates for a bare-metal target.
# This is the README's test command, and exactly what CI runs (.ci/run).
#
# It installs what it needs when missing (the rustup targets), and says what it is doing.
set -euo pipefail

cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

NO_STD_TARGET=thumbv7em-none-eabihf
STATIC_TARGET=x86_64-unknown-linux-musl
EDGE_PACKAGES=(-p execd -p oomd-service -p oomctl -p hog-fixture -p selftest-client)

step "toolchain: $(rustc --version)"
for target in "$NO_STD_TARGET" "$STATIC_TARGET"; do
    if ! rustup target list --installed | grep -qx "$target"; then
        step "installing the rustup target $target"
        rustup target add "$target"
    fi
done

step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo clippy -p oomd-service --all-targets --features selftest -- -D warnings"
cargo clippy -p oomd-service --all-targets --features selftest -- -D warnings

step "cargo test --workspace"
cargo test --workspace

step "no_std build of oomd and memstat for $NO_STD_TARGET"
cargo build -p oomd -p memstat --no-default-features --target "$NO_STD_TARGET"

step "static build of the Linux edge for $STATIC_TARGET (selftest build of oomd)"
cargo build "${EDGE_PACKAGES[@]}" --features oomd-service/selftest --target "$STATIC_TARGET"
for bin in execd oomd oomctl hog-fixture selftest-client; do
    path="target/$STATIC_TARGET/debug/$bin"
    if readelf -l "$path" | grep -q 'Requesting program interpreter'; then
        echo "error: $path is dynamically linked" >&2
        exit 1
    fi
done

step "all checks passed"

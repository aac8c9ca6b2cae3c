#!/usr/bin/env bash
# Man pages and shell completions for every binary, made from its clap definition
# (`<bin> --generate man|bash|zsh|fish`, the `clidoc` crate), so they say what --help says.
#
#   ./scripts/gen-docs.sh [OUT]     writes OUT/man/man1/<bin>.1 and OUT/completions/
#                                   {bash/<bin>, zsh/_<bin>, fish/<bin>.fish}; OUT defaults to
#                                   build/share
#
# Install them where your system looks, e.g. `cp build/share/man/man1/* /usr/local/share/man/man1/`
# and `cp build/share/completions/bash/* /etc/bash_completion.d/`. Each file is checked as it is
# written: a man page has its .TH header and every subcommand of the binary; a completion script
# names the binary. scripts/test.sh runs it into a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-build/share}
BINS=(oomd oomctl execd hog-fixture selftest-client oomd-sim)

say() { printf 'gen-docs: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

cargo build --quiet -p oomd-service -p oomctl -p execd -p hog-fixture -p selftest-client -p oomd_host \
    --bins || die "the build failed"
BIN=target/debug
mkdir -p "$OUT/man/man1" "$OUT/completions/bash" "$OUT/completions/zsh" "$OUT/completions/fish"
for b in "${BINS[@]}"; do
    [ -x "$BIN/$b" ] || die "$BIN/$b was not built"
    man=$OUT/man/man1/$b.1
    "$BIN/$b" --generate man >"$man" || die "$b --generate man failed"
    grep -q "^\.TH $b 1 " "$man" || die "$man has no .TH $b 1 header"
    # Every subcommand --help lists appears in the page (clap prints them indented, "  name  ...").
    help=$("$BIN/$b" --help)
    subcommands=$(sed -n '/^Commands:/,/^$/p' <<<"$help" | sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p' | grep -vx help || true)
    for sub in $subcommands; do
        # roff writes each hyphen as "\-".
        grep -qF -- "${sub//-/\\-}" "$man" || die "$man does not mention the subcommand $sub"
    done
    for shell in bash zsh fish; do
        case $shell in
        bash) file=$OUT/completions/bash/$b ;;
        zsh) file=$OUT/completions/zsh/_$b ;;
        fish) file=$OUT/completions/fish/$b.fish ;;
        esac
        "$BIN/$b" --generate "$shell" >"$file" || die "$b --generate $shell failed"
        grep -q -- "$b" "$file" || die "$file does not name $b"
    done
    say "$b: man page and bash, zsh, fish completions"
done
if "$BIN/oomctl" --generate pdf >/dev/null 2>&1; then
    die "--generate pdf was not refused"
fi
bash -n "$OUT/completions/bash/oomctl" || die "the bash completion of oomctl does not parse"
say "written under $OUT"

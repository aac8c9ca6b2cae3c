# shellcheck shell=bash
# What booting a guest needs, shared by the scripts that boot one (qemu-test.sh, the guest
# benchmarks). Sourced, not run. The caller defines ROOT (the repository), `say MESSAGE` and
# `fail CODE MESSAGE` (which exits), and then calls:
#
#   guest_prepare         installs what is missing (qemu-system-x86, cpio, linux-image-amd64, the
#                         rustup target x86_64-unknown-linux-musl), then sets KERNEL (Debian's
#                         vmlinuz), BOOT_KERNEL (its unpacked PVH vmlinux unless QEMU_KERNEL=bzimage)
#                         and ACCEL (QEMU_ACCEL, else kvm only when kvm_intel or kvm_amd is loaded,
#                         else tcg); exits with code 4 on what it cannot fix
#   guest_pack DIR CPIO   packs DIR into a reproducible initramfs (fixed times, sorted names,
#                         owner root, no host details)
#   guest_boot CPIO UART QEMU_LOG MEM_MIB CMDLINE [QEMU ARGS...]
#                         starts QEMU in the background (2 vCPUs, serial console to the file
#                         UART, no display or monitor, no reboot, dying with this shell, and any
#                         further QEMU arguments, e.g. a second -serial) and sets QEMU_PID
# Exit codes of `fail` here: 4 (configuration: missing packages or kernel).

GUEST_TARGET=x86_64-unknown-linux-musl

guest_kernel_image() {
    # shellcheck disable=SC2012 # Debian's names (vmlinuz-<version>), sorted by version
    ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1
}

# The packed bzImage decompresses itself at boot, which is slow under TCG. Its payload is an ELF
# vmlinux with a PVH entry note (Debian sets CONFIG_PVH): extract it once, and boot that.
guest_extract_vmlinux() { # bzImage -> vmlinux path on stdout, or nothing
    local out
    out=$ROOT/build/kernel/$(basename "$1" | sed 's/^vmlinuz/vmlinux/')
    if [ ! -s "$out" ]; then
        mkdir -p "$(dirname "$out")"
        command -v python3 >/dev/null || return 0
        python3 - "$1" "$out.tmp" <<'PY' || return 0
import lzma, sys, zlib
data = open(sys.argv[1], "rb").read()
for magic, unpack in ((b"\xfd7zXZ\x00", lambda b: lzma.LZMADecompressor().decompress(b)),
                      (b"\x1f\x8b\x08", lambda b: zlib.decompressobj(31).decompress(b))):
    at = data.find(magic)
    if at < 0:
        continue
    try:
        elf = unpack(data[at:])
    except Exception:
        continue
    if elf[:4] == b"\x7fELF":
        open(sys.argv[2], "wb").write(elf)
        sys.exit(0)
sys.exit(1)
PY
        local notes
        notes=$(readelf -n "$out.tmp" 2>/dev/null) || notes=
        grep -q 'Xen' <<<"$notes" || { rm -f "$out.tmp"; return 0; }
        mv "$out.tmp" "$out"
    fi
    echo "$out"
}
guest_prepare() {
    local missing=()
    command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
    command -v cpio >/dev/null || missing+=(cpio)
    [ -n "$(guest_kernel_image)" ] || missing+=(linux-image-amd64)
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            say "installing ${missing[*]}"
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -qq >/dev/null || fail 4 "apt-get update failed"
            apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
                fail 4 "apt-get install ${missing[*]} failed"
        else
            fail 4 "missing packages: ${missing[*]} (install them, e.g. sudo apt-get install ${missing[*]})"
        fi
    fi
    KERNEL=$(guest_kernel_image)
    [ -r "$KERNEL" ] || fail 4 "cannot read the kernel $KERNEL"
    # Every command's output is read whole before it is searched (no `producer | grep -q`:
    # under pipefail its status depends on whether the producer was still writing when grep
    # quit).
    local installed_targets
    installed_targets=$(rustup target list --installed)
    if ! grep -qx -- "$GUEST_TARGET" <<<"$installed_targets"; then
        say "installing the rustup target $GUEST_TARGET"
        rustup target add "$GUEST_TARGET" || fail 4 "rustup target add $GUEST_TARGET failed"
    fi
    BOOT_KERNEL=$KERNEL
    case "${QEMU_KERNEL:-pvh}" in
    pvh) BOOT_KERNEL=$(guest_extract_vmlinux "$KERNEL") && [ -n "$BOOT_KERNEL" ] || BOOT_KERNEL=$KERNEL ;;
    bzimage) ;;
    *) fail 4 "QEMU_KERNEL=$QEMU_KERNEL: expected pvh or bzimage" ;;
    esac
    ACCEL=${QEMU_ACCEL:-}
    if [ -z "$ACCEL" ]; then
        ACCEL=tcg
        if [ -w /dev/kvm ] && grep -qE '^(kvm_intel|kvm_amd) ' /proc/modules 2>/dev/null; then
            ACCEL=kvm
        fi
    fi
}

guest_pack() { # dir, cpio
    find "$1" -exec touch -h -d @0 {} +
    (cd "$1" && find . -print0 | LC_ALL=C sort -z |
        cpio --quiet --null -o -H newc --reproducible --owner=0:0 >"$2") ||
        fail 4 "cpio failed"
}

guest_boot() { # cpio, uart, qemu log, memory MiB, kernel command line, more QEMU arguments
    : >"$2"
    setpriv --pdeathsig KILL -- qemu-system-x86_64 \
        -accel "$ACCEL" -m "$4" -smp 2 \
        -kernel "$BOOT_KERNEL" -initrd "$1" -append "$5" \
        -display none -monitor none -serial "file:$2" -no-reboot "${@:6}" \
        >"$3" 2>&1 &
    # shellcheck disable=SC2034 # the caller's
    QEMU_PID=$!
}

# shellcheck shell=bash
# Helpers of the benchmark scripts (bench-daemon.sh, bench-daemon-guest.sh). Sourced, not run.
# The caller defines ROOT and `fail CODE MESSAGE`.

# A Debian package, downloaded once (build/debs/<package>/) and unpacked afresh; prints the
# directory it is unpacked in.
debian_package() {
    local dir=$ROOT/build/debs/$1
    if ! compgen -G "$dir/*.deb" >/dev/null; then
        command -v apt-get >/dev/null || fail 4 "$1: needs apt-get (Debian) to fetch the package"
        rm -rf "$dir" && mkdir -p "$dir"
        (cd "$dir" && apt-get download -qq "$1" >/dev/null 2>&1) ||
            { apt-get update -qq >/dev/null && (cd "$dir" && apt-get download -qq "$1" >/dev/null); } ||
            fail 4 "apt-get download $1 failed"
    fi
    rm -rf "$dir/x" && mkdir -p "$dir/x"
    dpkg-deb -x "$dir"/*.deb "$dir/x" || fail 4 "dpkg-deb -x $1 failed"
    printf '%s\n' "$dir/x"
}

# Values on stdin -> "median (min - max)".
median_range() {
    sort -g | awk '{ v[NR] = $1 } END {
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%g (%g - %g)\n", m, v[1], v[NR] }'
}

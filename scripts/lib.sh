# SPDX-License-Identifier: MIT
# Shared by scripts/run and scripts/test: package installation and build configuration.
# Sourced, not executed.

TACHYON_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Packages needed to build the broker (all backends).
TACHYON_BUILD_PKGS=(meson ninja-build pkg-config gcc g++ libdpdk-dev liburcu-dev libjemalloc-dev
    libssl-dev python3)
# Extra packages for the test suites: clang + compiler-rt for the sanitizer and libFuzzer builds,
# googletest, and real MQTT clients/brokers to test against.
TACHYON_TEST_PKGS=(clang libclang-rt-14-dev llvm-14 libgtest-dev mosquitto mosquitto-clients
    python3-paho-mqtt libpaho-mqtt-dev iproute2 procps iputils-ping)

log() { printf '[tachyon] %s\n' "$*" >&2; }

# Installs whichever of the named Debian packages are missing (apt-get, as root or via sudo).
ensure_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=()
    [ "$(id -u)" -ne 0 ] && sudo=(sudo)
    log "installing: ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null
}

# configure_build DIR [meson args...]: sets up DIR, or re-applies the options to an existing
# DIR (so a directory first made by another script still gets exactly these options).
configure_build() {
    local dir=$1
    shift
    local cmd=(meson setup "$dir" "$TACHYON_ROOT" "$@")
    [ -f "$dir/build.ninja" ] && cmd=(meson configure "$dir" "$@")
    "${cmd[@]}" >"$dir.setup.log" 2>&1 || {
        cat "$dir.setup.log" >&2
        return 1
    }
}

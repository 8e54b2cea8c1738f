# SPDX-License-Identifier: MIT
# Shared by the root-only integration tests that build their own network namespace.
# Sourced, not executed.

# skip WHY: says so loudly and exits 77, which meson counts as skipped (never as passed).
skip() {
    echo "SKIPPED: $*" >&2
    echo "SKIPPED: $*"
    exit 77
}

# fail WHY: says so and exits 1 (the EXIT trap of the caller cleans up).
fail() {
    echo "FAILED: $*"
    exit 1
}

# need_netns: root, /dev/net/tun, iproute2 and /usr/bin/python3, or skip.
need_netns() {
    [ "$(id -u)" -eq 0 ] || skip "needs root (network namespace, tap device)"
    [ -c /dev/net/tun ] || skip "needs /dev/net/tun"
    command -v ip >/dev/null || skip "needs iproute2 (ip)"
    [ -x /usr/bin/python3 ] || skip "needs /usr/bin/python3"
}

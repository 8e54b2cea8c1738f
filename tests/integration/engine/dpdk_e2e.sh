#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# dpdk_e2e.sh TACHYOND GROUP...: test_tachyond.py's groups against tachyond on the DPDK
# backend. Creates a network namespace of its own (tq-e2e-<pid>, removed on exit), and runs
# the test script inside it, so the broker's net_tap device and every client (raw sockets,
# paho, mosquitto_pub/sub) live there: broker.py's DPDK mode (TACHYON_IT_DPDK_NET) starts each
# broker with --backend dpdk at 10.77.<n>.2 with a unique EAL file prefix, and gives the tap's
# kernel side 10.77.<n>.1. Each group is bounded by GROUP_TIMEOUT seconds.
# DPDK_WORKERS=N in the environment lets brokers run up to N workers (as many as the test asks
# for, 2 by default; the DPDK backend then steers flows between them); default 1.
# Needs root and /dev/net/tun: otherwise it says why and exits 77 (skipped, never passed).
set -uo pipefail
exe=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
GROUP_TIMEOUT=${GROUP_TIMEOUT:-150}

. "$here/../netns_lib.sh"
need_netns
py=/usr/bin/python3
[ -x "$exe" ] || skip "tachyond not built: $exe"

ns=tq-e2e-$$
prefix=tqe$$ # EAL file prefix and tap name stem; broker.py appends a sequence number
net=10.77.$(($$ % 200 + 20))
cleanup() {
    # whatever is still running in our namespace was started by this script
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
    rm -rf /var/run/dpdk/"$prefix"* 2>/dev/null
}
trap cleanup EXIT
trap 'exit 1' INT TERM
ip netns add "$ns" || skip "cannot create a network namespace"
ip -n "$ns" link set lo up

rc=0
for g in "$@"; do
    echo "=== $g (dpdk backend, up to ${DPDK_WORKERS:-1} workers, $net.2, namespace $ns)"
    timeout -k 5 "$GROUP_TIMEOUT" ip netns exec "$ns" env TACHYON_IT_DPDK_NET="$net" \
        TACHYON_IT_DPDK_PREFIX="$prefix" TACHYON_IT_DPDK_WORKERS="${DPDK_WORKERS:-1}" $py "$here/test_tachyond.py" "$exe" "$g"
    r=$?
    case $r in
    0) ;;
    77) [ $rc -ne 0 ] || rc=77 ;;
    124 | 137) echo "FAILED: $g did not finish within $GROUP_TIMEOUT s"; rc=1 ;;
    *) echo "FAILED: $g (exit $r)"; rc=1 ;;
    esac
done
exit $rc

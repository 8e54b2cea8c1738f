#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# dpdk_workers_test.sh TACHYOND MODE: tachyond on the DPDK backend with several workers, on a
# net_tap device inside a network namespace this test creates (tqw-<pid>) and removes on exit.
# 32 MQTT connections from Linux subscribe to one topic and get one message published from
# another connection (mqtt_spread.py); then the broker stops and its per-worker shutdown
# summary ("netstack: dpdk worker I: ... accepted N ...") must show connections on every
# worker and all of them accounted for. The assertion reads counters, not timing.
#   queues: 2 workers, one queue pair each (RSS where the device takes it; hand-off between
#           workers for whatever the device delivers to the other queue).
#   steer:  3 workers on one queue pair (TACHYON_NS_QUEUES=1): worker 0 receives everything
#           and hands every other worker its flows; workers 1 and 2 transmit through worker
#           0's queue. Software steering end to end.
# Needs root and /dev/net/tun: otherwise it prints why and exits 77 (skipped, never passed).
set -uo pipefail
exe=$1
mode=${2:-queues}
here=$(cd "$(dirname "$0")" && pwd)

. "$here/../netns_lib.sh"
need_netns
[ -x "$exe" ] || skip "tachyond not built: $exe"
py=/usr/bin/python3
case $mode in
queues) workers=2 ;;
steer) workers=3; export TACHYON_NS_QUEUES=1 ;;
*) echo "unknown mode $mode"; exit 2 ;;
esac
conns=32

ns=tqw-$$
ifc=tqw$$
work=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ]; then
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    ip netns del "$ns" 2>/dev/null
    echo "--- tachyond log (tail) ---"
    tail -n 30 "$work/log" 2>/dev/null
    rm -rf "$work" /var/run/dpdk/tqw$$
}
trap cleanup EXIT

ip netns add "$ns" || skip "cannot create a network namespace"
ip -n "$ns" link set lo up
eal="--no-huge -m 512 --no-pci --file-prefix=tqw$$ --no-telemetry --log-level=*:warning"
eal="$eal --vdev=net_tap0,iface=$ifc"
ip netns exec "$ns" "$exe" --backend dpdk --workers "$workers" --ip 10.79.0.2/24 --port 1883 \
    --dpdk-args "$eal" --log-level info >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 300); do
    ip -n "$ns" link show "$ifc" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || fail "tachyond exited"
    sleep 0.1
done
ip -n "$ns" addr add 10.79.0.1/24 dev "$ifc" || fail "no $ifc in $ns"
ip -n "$ns" link set "$ifc" up
up=0
for _ in $(seq 100); do
    if ip netns exec "$ns" $py -c \
        'import socket; socket.create_connection(("10.79.0.2", 1883), timeout=1).close()' \
        2>/dev/null; then
        up=1
        break
    fi
    sleep 0.2
done
[ $up -eq 1 ] || fail "tachyond does not answer on 10.79.0.2:1883"

timeout 90 ip netns exec "$ns" $py "$here/mqtt_spread.py" 10.79.0.2 1883 $conns ||
    fail "MQTT exchange across workers"

kill -TERM "$pid"
for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
wait "$pid"
rc=$?
pid=
[ $rc -eq 0 ] || fail "tachyond exited with status $rc"
grep -E '^netstack: dpdk (port|worker)' "$work/log"
# The exchange makes conns + 1 connections, the readiness probe one more (an earlier probe
# may have got in too).
$py - "$work/log" "$workers" $((conns + 2)) <<'EOF' || fail "connections did not spread"
import re, sys
log, workers, expected = open(sys.argv[1]).read(), int(sys.argv[2]), int(sys.argv[3])
acc = {int(w): int(a) for w, a in
       re.findall(r'^netstack: dpdk worker (\d+): .*?accepted (\d+),', log, re.M)}
print('accepted per worker:', acc)
ok = sorted(acc) == list(range(workers)) and all(acc[w] > 0 for w in acc)
ok = ok and sum(acc.values()) >= expected
if not ok:
    print('expected >= %d connections over all %d workers, each with some' % (expected, workers))
sys.exit(0 if ok else 1)
EOF
if [ "$mode" = steer ]; then
    # workers 1 and 2 have no queue: everything they saw was handed over
    grep -qE '^netstack: dpdk worker 1: queue none, .*steered_in [1-9]' "$work/log" ||
        fail "worker 1 received nothing through the hand-off rings"
fi
echo PASSED

#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# dpdk_echo_test.sh NS_ECHO MODE [WORKERS]: the DPDK backend against Linux's TCP through a net_tap
# device, inside a network namespace this test creates (tq-<pid>) and removes on exit.
#   clean: ping (ICMP echo), then byte-exact echo transfers (1 x 8 MiB, 8 x 1 MiB).
#   netem: the same with tc netem on both directions of the tap (5% loss, 5 ms delay with
#          jitter, reordering): egress on the tap, ingress through an ifb device. Skipped (77)
#          on kernels without sch_netem.
#   fault: the same with the backend's test-only fault injection (TACHYON_NS_FAULT: 5% loss
#          each way, 10% of received frames reordered), for kernels without sch_netem.
# WORKERS (default 1): ns_echo's workers, one thread each; with more than one, the transfers
# must also have used every worker (its per-worker shutdown counters say so).
# Needs root and /dev/net/tun: otherwise it prints why and exits 77 (skipped, never passed).
set -uo pipefail
echo_bin=$1
mode=${2:-clean}
workers=${3:-1}
here=$(cd "$(dirname "$0")" && pwd)

. "$here/../netns_lib.sh"
need_netns
[ "$mode" != netem ] || command -v tc >/dev/null || skip "needs tc for netem"
if [ "$mode" = netem ]; then
    probe=tqp-$$
    ip netns add "$probe" || skip "cannot create a network namespace"
    ok=0
    ip netns exec "$probe" tc qdisc add dev lo root netem delay 1ms 2>/dev/null && ok=1
    ip netns del "$probe"
    [ $ok -eq 1 ] || skip "this kernel has no sch_netem (tc netem); the 'fault' mode covers loss"
fi
[ "$mode" != fault ] || export TACHYON_NS_FAULT="loss=5,reorder=10,seed=$$"
py=/usr/bin/python3

ns=tq-$$
ifc=tqt$$
ifb=tqb$$
work=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ]; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    ip link del "$ifb" 2>/dev/null
    ip netns del "$ns" 2>/dev/null
    echo "--- ns_echo stderr (stats) ---"
    cat "$work/err" 2>/dev/null | tail -n 60
    rm -rf "$work" /var/run/dpdk/tq$$ # the EAL runtime directory of our --file-prefix
}
trap cleanup EXIT

ip netns add "$ns" || fail "ip netns add"
ip -n "$ns" link set lo up
eal="--no-huge -m 512 --no-pci --file-prefix=tq$$ --no-telemetry -l 0 --log-level=*:warning"
eal="$eal --vdev=net_tap0,iface=$ifc"
ip netns exec "$ns" "$echo_bin" --backend dpdk --dpdk-args "$eal" --ip 10.77.0.2/24 \
    --port 7000 --workers "$workers" --stats >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 300); do
    grep -q '^ready' "$work/out" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || fail "ns_echo exited: $(cat "$work/err")"
    sleep 0.1
done
grep -q '^ready' "$work/out" || fail "ns_echo did not come up in 30 s"
ip -n "$ns" addr add 10.77.0.1/24 dev "$ifc" || fail "no $ifc in $ns"
ip -n "$ns" link set "$ifc" up

if [ "$mode" = netem ]; then
    ip -n "$ns" link set "$ifc" mtu 1500
    ip netns exec "$ns" tc qdisc add dev "$ifc" root netem delay 5ms 1ms loss 5% \
        reorder 75% 50% || fail "tc netem (egress)"
    ip link add "$ifb" type ifb || fail "ifb"
    ip link set "$ifb" netns "$ns"
    ip -n "$ns" link set "$ifb" up
    ip netns exec "$ns" tc qdisc add dev "$ifc" handle ffff: ingress
    ip netns exec "$ns" tc filter add dev "$ifc" parent ffff: matchall \
        action mirred egress redirect dev "$ifb" || fail "tc ingress redirect"
    ip netns exec "$ns" tc qdisc add dev "$ifb" root netem delay 5ms 1ms loss 5% \
        reorder 75% 50% || fail "tc netem (ingress)"
fi

ip netns exec "$ns" ping -c 3 -i 0.2 -W 2 10.77.0.2 >"$work/ping" 2>&1 ||
    { [ "$mode" != clean ] || fail "ping: $(cat "$work/ping")"; }
grep -E 'packets transmitted' "$work/ping"

if [ "$mode" != clean ]; then
    runs=("1 2097152 120" "4 524288 120")
else
    runs=("1 8388608 60" "8 1048576 60" "32 65536 60")
fi
# enough connections that each of several workers gets some (all on one: 2^-20 for two)
[ "$workers" -le 1 ] || [ "$mode" = clean ] || runs+=("16 65536 120")
status=0
for r in "${runs[@]}"; do
    # shellcheck disable=SC2086
    ip netns exec "$ns" $py "$here/echo_client.py" 10.77.0.2 7000 $r || status=1
done
kill -0 "$pid" 2>/dev/null || fail "ns_echo died"
kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
[ $rc -eq 0 ] || fail "ns_echo exited with status $rc (sanitizer report above?)"
[ $status -eq 0 ] || fail "transfer mismatch"
if [ "$workers" -gt 1 ]; then
    for i in $(seq 0 $((workers - 1))); do
        grep -qE "^netstack: dpdk worker $i: .*accepted [1-9]" "$work/err" ||
            fail "worker $i accepted no connection"
    done
fi
echo PASSED

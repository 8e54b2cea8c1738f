#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# dpdk_memif_loadgen_test.sh TACHYOND BENCH_LOADGEN MODE: a kernel-free run. tachyond
# --backend dpdk owns the server end of a net_memif pair, bench_loadgen's netstack transport
# (--dpdk-args, --ip) the client end: two processes, two TCP/IP stacks of ours, a unix socket
# under a temporary directory, no kernel socket on the data path, no hugepages, no root.
#   qos1:  4 publisher/subscriber pairs, 20000 QoS 1 messages each, --strict
#   qos0:  the same at QoS 0 (broker queues deep enough that nothing may be dropped)
#   idle:  3000 idle connections from 3 source addresses (one stack each), every one
#          CONNACKed and PINGREQ answered
#   fail:  no broker at the other end (the link never comes up), and a device that is not a
#          host-local link (net_null): both must fail with exit status 1 and no figures
# The broker is stopped before the load generator leaves (--wait-peer): a DPDK 22.11 memif
# server whose client goes away while it polls can crash in its receive path (seen here).
# The pass condition is the load generator's own verdict (exit 0: every message delivered
# exactly once and in order, no protocol error, no lost connection) plus the delivered count
# read from its JSON, which must equal what was sent. Figures are not checked: speed is
# measured in bench/run_memif.
set -uo pipefail
exe=$1
lg=$2
mode=${3:-qos1}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../netns_lib.sh"
[ -x "$exe" ] || skip "tachyond not built: $exe"
[ -x "$lg" ] || skip "bench_loadgen not built: $lg"

work=$(mktemp -d)
sp=tqm$$s
cp=tqm$$c
pid=
cleanup() {
    if [ -n "$pid" ]; then
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    echo "--- tachyond log (tail) ---"
    tail -n 20 "$work/broker.log" 2>/dev/null
    echo "--- bench_loadgen stderr (tail) ---"
    tail -n 20 "$work/lg.err" 2>/dev/null
    rm -rf "$work" "/var/run/dpdk/$sp" "/var/run/dpdk/$cp"
}
trap cleanup EXIT

eal="--no-huge -m 512 --no-pci --no-telemetry --log-level=*:warning"
sock=$work/memif.sock
# rsize=14: 16384-slot rings, so a burst of thousands of segments (idle mode) is not dropped
# distinct lcores: EAL pins each process's threads to its first one
lg_core=$(($(nproc) > 1 ? 1 : 0))
lg_eal="$eal -l $lg_core --file-prefix=$cp"
lg_eal="$lg_eal --vdev=net_memif0,role=client,socket=$sock,socket-abstract=no"
lg_eal="$lg_eal,mac=02:00:00:00:00:01,rsize=14"
broker_eal="$eal -l 0 --file-prefix=$sp"
broker_eal="$broker_eal --vdev=net_memif0,role=server,socket=$sock,socket-abstract=no"

start_broker() {
    "$exe" --backend dpdk --workers 1 --ip 10.89.0.2/24 --port 1883 \
        --dpdk-args "$broker_eal" \
        --log-level notice --set max_queued_messages=10000000 \
        --set max_queued_bytes=1000000000 >"$work/broker.log" 2>&1 &
    pid=$!
    # The socket exists from EAL's probe on, but a client that connects before the port is
    # started gets no link: wait for the broker to say it listens.
    for _ in $(seq 200); do
        grep -qs 'listening on' "$work/broker.log" && return 0
        kill -0 "$pid" 2>/dev/null || fail "tachyond exited"
        sleep 0.1
    done
    fail "tachyond did not start listening"
}

stop_broker() {
    [ -n "$pid" ] || return 0
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    wait "$pid"
    local rc=$?
    pid=
    [ $rc -eq 0 ] || fail "tachyond exited with status $rc"
}

# run_lg ARGS...: the load generator over netstack against the broker, which is stopped (and
# must exit cleanly) once the load generator has its result; the load generator's status in $rc
run_lg() {
    timeout 120 "$lg" --dpdk-args "$lg_eal" --ip 10.89.0.10/24 -H 10.89.0.2 -p 1883 -T 1 \
        --connect-timeout 20 --wait-peer 30 --json "$work/lg.json" "$@" 2>"$work/lg.err" &
    local lp=$!
    for _ in $(seq 1200); do
        grep -q 'waiting for the link to go down' "$work/lg.err" && break
        kill -0 "$lp" 2>/dev/null || break
        sleep 0.1
    done
    stop_broker
    wait "$lp"
    rc=$?
}

# json EXPR: a value from the load generator's JSON
json() {
    /usr/bin/python3 -c "import json; r = json.load(open('$work/lg.json')); print($1)"
}

case $mode in
qos1 | qos0)
    start_broker
    run_lg -t pairs -P 4 -q "${mode#qos}" -n 20000 -d 60 --drain 20 --strict
    [ $rc -eq 0 ] || fail "load generator exited with status $rc"
    sent=$(json "r['pub']['sent']")
    got=$(json "r['sub']['delivered']")
    [ "$sent" -eq 80000 ] || fail "publishers sent $sent of 80000"
    [ "$got" -eq "$sent" ] || fail "subscribers got $got of $sent"
    echo "pairs QoS ${mode#qos} over memif: $got of $sent delivered, none lost"
    ;;
idle)
    start_broker
    run_lg -t idle -c 3000 --src-ips 3 --hold 1 --pid "$pid"
    [ $rc -eq 0 ] || fail "load generator exited with status $rc"
    held=$(json "r['connect']['count']")
    [ "$held" -eq 3000 ] || fail "only $held of 3000 connections"
    echo "idle over memif: $held connections from 3 addresses, every PINGREQ answered"
    grep -q 'accepted 3000,' "$work/broker.log" || fail "the broker did not count 3000 accepts"
    ;;
fail)
    # nobody at the other end: the link stays down
    run_lg -t pairs -P 1 -n 10 --connect-timeout 1
    [ $rc -eq 1 ] || fail "no peer: exit status $rc, want 1"
    grep -q 'FAILED.*netstack transport' "$work/lg.err" ||
        fail "no peer: no transport failure message"
    [ ! -s "$work/lg.json" ] || [ "$(json "r.get('sub')")" = None ] || fail "figures on failure"
    # a device that is not a link inside this host is refused before anything is sent
    timeout 60 "$lg" --dpdk-args "$eal --file-prefix=$cp --vdev=net_null0" \
        --ip 10.89.0.10/24 -H 10.89.0.2 -t pairs -P 1 -n 10 2>"$work/lg.err"
    rc=$?
    [ $rc -eq 1 ] || fail "net_null: exit status $rc, want 1"
    grep -q 'only net_memif and net_ring' "$work/lg.err" || fail "net_null was not refused"
    echo "failures: no peer and a non-local device both refused"
    ;;
*)
    echo "unknown mode $mode"
    exit 2
    ;;
esac
echo PASSED

#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# dpdk_s2s_test.sh BIN MODE: runs a stack-to-stack test through EAL with a unique EAL file
# prefix and removes EAL's runtime directory afterwards.
#   clean:   ns_s2s.c, 64 MiB each way, no faults.
#   fault:   ns_s2s.c, 8 MiB each way, 2% loss on every port's receive and transmit (about 4%
#            per direction) and 5% of received frames reordered.
#   backlog: ns_backlog.c (the backend's RX backlog before its timers, issue #6), 3000
#            connections.
set -uo pipefail
bin=$1
mode=${2:-clean}
prefix=tqs$$
cleanup() {
    rm -rf "/var/run/dpdk/$prefix" "${XDG_RUNTIME_DIR:-/tmp}/dpdk/$prefix" "/tmp/dpdk/$prefix"
}
trap cleanup EXIT
case $mode in
clean) "$bin" "$prefix" 64 ;;
fault) "$bin" "$prefix" 8 "loss=2,reorder=5,seed=$$" ;;
backlog) "$bin" "$prefix" 3000 ;;
*) echo "unknown mode $mode"; exit 2 ;;
esac

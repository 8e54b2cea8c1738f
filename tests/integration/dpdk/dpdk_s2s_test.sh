#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# dpdk_s2s_test.sh NS_S2S MODE: runs the stack-to-stack transfer through EAL (ns_s2s.c) with a
# unique EAL file prefix and removes EAL's runtime directory afterwards.
#   clean: 64 MiB each way, no faults.
#   fault: 8 MiB each way, 2% loss on every port's receive and transmit (about 4% per
#          direction) and 5% of received frames reordered.
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
*) echo "unknown mode $mode"; exit 2 ;;
esac

/* SPDX-License-Identifier: MIT */
/*
 * Extras of the DPDK backend beyond ns.h, for tools and tests: its statistics (per port, per
 * queue, and the TCP/IP stack's counters per worker). Includes no DPDK header.
 */
#ifndef NS_DPDK_H
#define NS_DPDK_H

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ns_transport;

/*
 * Writes the port, queue and stack counters of a DPDK transport to f, one "name value" per
 * line (per queue: port<P>.q<Q>.*; per worker: w<I>.*, steering included). Any thread; the
 * worker counters are read racily. Does nothing for other backends. (ns_destroy() also
 * prints one "netstack: dpdk worker I: ..." summary line per worker on stderr.)
 */
void ns_dpdk_dump_stats(struct ns_transport *t, FILE *f);

#ifdef __cplusplus
}
#endif

#endif /* NS_DPDK_H */

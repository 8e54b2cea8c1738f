/* SPDX-License-Identifier: MIT */
/*
 * The device under one TCP/IP stack instance, on DPDK: an ethdev queue pair (or a ring to the
 * worker that transmits for us), mbufs mapped onto struct ns_pkt, batched transmission, and
 * the test-only fault injection. ns_dpdk.c builds its workers from these; the stack-to-stack
 * test (tests/integration/dpdk/ns_s2s.c) drives bare stacks on net_ring ports with them.
 *
 * Internal to netstack and its DPDK tests: includes DPDK headers, so the engine never sees it.
 * Everything on a struct ns_dport is worker-local (one thread), like the stack it feeds.
 *
 * Fault injection, for tests only: TACHYON_NS_FAULT="loss=P,reorder=Q,seed=S" in the
 * environment drops P% of received and of transmitted frames and delays Q% of received frames
 * behind the next one, so loss and reordering in both directions can be tested on kernels
 * without sch_netem. It costs one branch per frame when unset.
 */
#ifndef NS_DPDK_PORT_H
#define NS_DPDK_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include "ns_stack.h"

#define NS_DPORT_TX_BURST 64
#define NS_DPORT_RX_BURST 32

struct ns_dport {
	struct ns_stack *st; /* the stack fed and counted (borrowed) */
	uint16_t port;
	uint16_t queue; /* TX queue, unless tx_ring is set */
	struct rte_mempool *pool;
	struct rte_ring *tx_ring; /* set: no TX queue of our own; another worker sends these */
	unsigned ntx;
	uint64_t tx_dropped;		    /* the device or tx_ring refused them */
	unsigned fault_loss, fault_reorder; /* percent */
	uint64_t rng;
	struct rte_mbuf *fault_held; /* a received frame delayed behind the next one */
	struct rte_mbuf *txb[NS_DPORT_TX_BURST];
};

/* struct ns_dev_ops over mbufs; the ctx is a struct ns_dport. */
extern const struct ns_dev_ops ns_dport_ops;

/* Initialises d (zeroed by the caller) and reads TACHYON_NS_FAULT; stack st is not touched. */
void ns_dport_init(struct ns_dport *d, struct ns_stack *st, uint16_t port, uint16_t queue,
		   struct rte_mempool *pool);

/* Transmits (or hands to tx_ring) what the stack queued. */
void ns_dport_tx_flush(struct ns_dport *d);

/*
 * One received frame for the stack, through the fault injector; consumes m (the stack takes
 * its own references on what it keeps). extra: NS_RXF_* beyond the checksum flags taken from
 * the mbuf. Returns the frames handed to the stack (0..2).
 */
unsigned ns_dport_input(struct ns_dport *d, struct rte_mbuf *m, unsigned extra);

/* Call after a poll round that input nothing: a frame held for reordering goes in now. */
void ns_dport_input_idle(struct ns_dport *d);

/* Frees what d holds (queued TX, a held frame). */
void ns_dport_fini(struct ns_dport *d);

/*
 * Configures and starts ethdev port with nq RX/TX queue pairs from pool: RX checksum offloads
 * only where the device lists them, RSS with the symmetric key of ns_rss_key() and an
 * indirection table of i % nq where the device has them (nq > 1). *reta_mask receives the
 * steering mask to give ns_steer_owner() (the device's table size - 1 when programmed, else
 * 127) and *rss whether RSS is on. Returns 0 or -errno with a message in err.
 */
int ns_dport_configure(uint16_t port, unsigned nq, struct rte_mempool *pool, uint32_t *reta_mask,
		       bool *rss, char *err, size_t errlen);

/*
 * The frames a port must be able to buffer in front of its RX queue. On net_tap that buffer is
 * the kernel's queue to the tap (its txqueuelen, 1000 by default), not the descriptor ring:
 * frames that find it full are dropped by the kernel, counted only on the tap interface (TX
 * dropped), never by DPDK. Raises it to frames (needs CAP_NET_ADMIN, as the tap does); other
 * devices are left alone. Returns 0 or -errno.
 */
int ns_dport_rx_depth(uint16_t port, unsigned frames);

/* EAL from a space-separated argument string; once per process (later calls return 0). */
int ns_dpdk_eal_init(const char *args, char *err, size_t errlen);

/* A monotonic clock in microseconds (the TSC). */
uint64_t ns_dpdk_now_us(void);

#endif /* NS_DPDK_PORT_H */

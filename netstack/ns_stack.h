/* SPDX-License-Identifier: MIT */
/*
 * Tachyon's userspace TCP/IP stack, one instance per worker core: Ethernet demux, ARP, IPv4,
 * ICMP echo and TCP, driven by frames from a device (struct ns_dev_ops) and a clock the caller
 * supplies. It knows nothing of DPDK: the DPDK backend (ns_dpdk.c) feeds it mbufs, the unit
 * tests feed it crafted frames from an in-memory fake device with a fake clock.
 *
 * Threading: a struct ns_stack and everything it owns (connections, timers, ARP cache, queued
 * segments) belong to one worker thread; nothing here takes a lock or is shared. Several stacks
 * in one process (several workers, or a client and a server in a test) are independent.
 *
 * The stack embeds struct ns_worker as its first member, so a backend's worker can be a stack
 * and connection handles (struct ns_conn) are the stack's TCBs. The ns_stack_* connection calls
 * below have exactly the semantics of the corresponding ns.h calls.
 *
 * Driving it, per loop iteration: set st->now_us, feed every received frame to
 * ns_stack_input(), call ns_stack_timers(), collect events with ns_stack_events() (which also
 * expires the previous call's DATA views), let the engine act, then ns_stack_flush().
 */
#ifndef NS_STACK_H
#define NS_STACK_H

#include "ns_chunk.h"
#include "ns_internal.h"
#include "ns_pkt.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ns_tcb;
struct ns_seg;

struct ns_stack_cfg {
	uint32_t ip;      /* our address, network byte order */
	uint32_t netmask; /* network byte order */
	uint32_t gateway; /* network byte order; 0: none (off-link destinations are dropped) */
	uint8_t mac[NS_ETH_ALEN];
	uint16_t mtu;          /* IP MTU, 576..1500 */
	uint16_t listen_port;  /* 0: no listener (client-only stack) */
	uint32_t backlog;      /* half-open connections before SYN cookies take over */
	uint32_t max_conns;    /* TCBs of all states except TIME_WAIT */
	uint32_t rx_chunk;     /* bytes reported per connection per ns_stack_events() */
	uint32_t tx_limit;     /* send queue per connection (ns.h back-pressure) */
	uint32_t rcv_buf;      /* receive window per connection, bytes (<= 1 GiB) */
	uint32_t max_segs;     /* received segments held per connection (in order + out of order) */
	uint32_t tw_max;       /* TIME_WAIT TCBs kept; the oldest is recycled beyond this */
	uint32_t msl_ms;       /* TIME_WAIT lasts 2 * msl_ms */
	uint32_t rto_min_ms;   /* RFC 6298 says 1000; Linux and we default to 200 */
	uint32_t rto_max_ms;   /* backoff ceiling */
	uint32_t rto_init_ms;  /* before the first RTT sample (RFC 6298: 1000) */
	uint32_t max_retries;  /* retransmissions of one segment before the connection fails */
	uint32_t delack_ms;    /* delayed-ACK timer */
	uint32_t keep_idle_ms; /* keepalive: idle before the first probe; 0 = off */
	uint32_t keep_intvl_ms;
	uint32_t keep_probes;
	uint32_t fin_wait2_ms; /* FIN_WAIT_2 without the peer's FIN: give up after this */
	uint32_t arp_timeout_ms;
	uint8_t secret[16]; /* ISN (RFC 6528) and SYN-cookie key; ns_stack_cfg_defaults randomises */
	bool nagle;         /* off by default: the engine batches itself */
	bool timestamps;    /* offer/accept RFC 7323 timestamps */
	bool wscale;        /* offer/accept RFC 7323 window scaling */
	bool syncookies;    /* answer with SYN cookies when the backlog is full */
	bool tlp;           /* RFC 8985 tail loss probes (on by default) */
	/* Flow steering (ns_steer.c), for stacks that are one of several workers on a device:
	 * active opens pick a local port whose flow ns_steer_owner() gives to steer_self. */
	uint16_t steer_workers; /* 0 or 1: no constraint */
	uint16_t steer_self;
	uint32_t steer_mask;    /* indirection-table mask (table size - 1) */
};

/* Counters beyond struct ns_stats; worker-local, read racily for monitoring. */
struct ns_stack_stats {
	uint64_t rx_frames;
	uint64_t tx_frames;
	uint64_t tx_nobuf;       /* allocation failures on output */
	uint64_t eth_drop;       /* not for us, unknown ethertype, runt */
	uint64_t arp_rx;
	uint64_t arp_tx;
	uint64_t arp_miss_drop;  /* output dropped waiting for ARP (a held packet was replaced) */
	uint64_t ip_bad;         /* header validation failures */
	uint64_t ip_csum_bad;
	uint64_t ip_frag_drop;   /* fragments are not reassembled: dropped and counted */
	uint64_t ip_not_us;
	uint64_t ip_noroute;
	uint64_t icmp_echo;
	uint64_t tcp_csum_bad;
	uint64_t tcp_bad;        /* malformed header or options */
	uint64_t tcp_rst_tx;
	uint64_t tcp_rst_rx;
	uint64_t tcp_no_listener;
	uint64_t tcp_retransmits; /* RTO-driven segments */
	uint64_t tcp_tlp_probes;  /* tail loss probes sent (RFC 8985 7.3) */
	uint64_t tcp_tlp_recoveries; /* retransmitted probes that repaired a loss */
	uint64_t tcp_tlp_spurious;   /* retransmitted probes the timestamps showed needless */
	uint64_t tcp_fast_retransmits;
	uint64_t tcp_rto_fired;
	uint64_t tcp_dupacks;
	uint64_t tcp_ooo_segs;    /* segments queued out of order */
	uint64_t tcp_rcv_drop;    /* new data dropped: beyond the window or max_segs, no descriptor */
	uint64_t tcp_rcv_dup;     /* segments with nothing new: already received, or PAWS-old */
	uint64_t tcp_challenge_acks;
	uint64_t tcp_syncookies_tx;
	uint64_t tcp_syncookies_ok;
	uint64_t tcp_syncookies_bad;
	uint64_t tcp_tw_recycled;
	uint64_t tcp_keepalive_probes;
	uint64_t tcp_persist_probes;
	uint64_t tcp_timeouts;    /* connections closed by retransmission or keepalive timeout */
	uint64_t tcp_delayed_acks;
};

/* Timer wheel: 1 ms ticks, a power-of-two number of slots; longer deadlines go round again. */
#define NS_WHEEL_SLOTS 4096
#define NS_ARP_SLOTS 64

struct ns_arp_entry {
	uint32_t ip; /* 0: free */
	uint8_t mac[NS_ETH_ALEN];
	bool resolved;
	uint64_t expires_us;  /* resolved: valid until; unresolved: next request allowed at */
	uint64_t poll_us;     /* resolved but expired: next unicast poll allowed at */
	uint8_t polls;        /* unicast polls unanswered since expiry */
	struct ns_pkt *held;  /* one packet waiting for the answer (RFC 1122 2.3.2.2) */
	uint8_t *held_frame;
	uint16_t held_len;
};

struct ns_stack {
	struct ns_worker base; /* must be first: the stack is an ns_worker */
	struct ns_stack_cfg cfg;
	const struct ns_dev_ops *dev;
	void *dev_ctx;
	uint64_t now_us; /* set by the driver before input/timers/flush */
	uint64_t start_us;
	struct ns_stack_stats xs;

	struct ns_arp_entry arp[NS_ARP_SLOTS];
	uint16_t ip_id;
	/* arp_confirm()'s last neighbour: frames from arp_seen_ip before arp_seen_until need no
	 * lookup (its entry is more than half a lifetime from expiry) */
	uint32_t arp_seen_ip;
	uint64_t arp_seen_until;
	/* Ephemeral ports (RFC 6056 3.3.3 spirit): a random per-stack seed from getrandom() at
	 * init, a keyed hash of the destination, and a counter that moves on per connection. */
	uint32_t port_seed;
	uint32_t port_count;

	/* TCP: flow table, lists, timer wheel, segment pool */
	struct ns_tcb **flows;
	uint32_t flow_mask;
	uint32_t nconns;    /* TCBs not in TIME_WAIT */
	uint32_t nhalfopen; /* SYN_RECEIVED */
	uint32_t ntw;       /* TIME_WAIT */
	struct ns_tcb *tw_head; /* TIME_WAIT FIFO, oldest first */
	struct ns_tcb *tw_tail;
	struct ns_tcb *all;     /* every TCB (for destroy) */
	struct ns_tcb *ready;   /* TCBs with events to report */
	struct ns_tcb *ready_tail;
	struct ns_tcb *dirty;   /* TCBs with output to send at flush */
	struct ns_tcb *reported; /* CLOSED delivered; detached at the next ns_stack_events() */
	struct ns_seg *delivered; /* DATA views of the last ns_stack_events(); released at the next */
	struct ns_seg *free_segs;
	uint32_t segs_held;      /* received segments held (each pins one device buffer) */
	struct ns_tcb *free_tcbs;
	void **blocks;
	size_t nblocks;
	struct ns_tcb *wheel[NS_WHEEL_SLOTS];
	uint64_t wheel_tick; /* last tick processed */
	struct ns_chunk_cache chunks; /* send-buffer chunks, both sizes */
};

/* Defaults for everything but addresses, port and MAC; a random secret (getrandom). */
void ns_stack_cfg_defaults(struct ns_stack_cfg *cfg);

/*
 * Initialises st (caller-allocated, zeroed or not). dev/dev_ctx are borrowed for the stack's
 * life. Returns 0 or -errno (-ENOMEM, -EINVAL for a bad configuration).
 */
int ns_stack_init(struct ns_stack *st, const struct ns_stack_cfg *cfg,
		  const struct ns_dev_ops *dev, void *dev_ctx);

/* Frees every TCB and held buffer. No events are reported; the stack can be re-initialised. */
void ns_stack_fini(struct ns_stack *st);

/* Announces our address: one gratuitous ARP request. */
void ns_stack_start(struct ns_stack *st);

/*
 * One received Ethernet frame. p is borrowed: the stack takes its own references (hold) on
 * whatever it queues. rx_flags: NS_RXF_* the device vouches for.
 */
void ns_stack_input(struct ns_stack *st, struct ns_pkt *p, const uint8_t *frame, uint32_t len,
		    unsigned rx_flags);

/* Runs due TCP and ARP timers. */
void ns_stack_timers(struct ns_stack *st);

/*
 * Releases the previous call's DATA views and detaches connections whose CLOSED was reported,
 * then collects up to max events (ns.h semantics). Returns the count.
 */
unsigned ns_stack_events(struct ns_stack *st, struct ns_event *ev, unsigned max);

/* Sends what connections queued, pending ACKs and window updates. */
void ns_stack_flush(struct ns_stack *st);

/* True when something is ready to report, so a driver knows not to wait. */
bool ns_stack_has_events(const struct ns_stack *st);

/* ns.h connection operations on this stack's TCBs. */
int ns_stack_send(struct ns_conn *c, const struct iovec *iov, unsigned iovcnt);
void ns_stack_close(struct ns_conn *c, bool graceful);
void ns_stack_pause_rx(struct ns_conn *c, bool pause);
size_t ns_stack_pending(const struct ns_conn *c);
/* The TCP loss and recovery counters of x as one line of text ("rcv_drop 0, rcv_dup 0, ..."),
 * for the shutdown lines of the backend and the load generator; returns buf. */
const char *ns_stack_tcp_counters(const struct ns_stack_stats *x, char *buf, size_t len);

/*
 * Active open to raddr:rport (network byte order addr, host order port) from an ephemeral
 * local port. *out is the handle: an ACCEPT event reports it established (as for a passive
 * open), CLOSED reports a failure (-ECONNREFUSED, -ETIMEDOUT). Returns 0 or -errno.
 */
int ns_stack_connect(struct ns_stack *st, uint32_t raddr, uint16_t rport, struct ns_conn **out);

/* A keyed 64-bit hash (SipHash-2-4) over len bytes; ISNs, cookies and port choice use it. */
uint64_t ns_siphash(const uint8_t key[16], const void *data, size_t len);

/*
 * The hash of the per-core flow table: symmetric (the same for both directions of a
 * connection). Addresses network order, ports host order. (Which core owns a flow is
 * ns_rss_hash()'s business, below.)
 */
uint32_t ns_flow_hash(uint32_t a1, uint16_t p1, uint32_t a2, uint16_t p2);

/* ---- ns_steer.c: which worker owns a flow (see the design comment there) ---- */

/* Fills key[0..len) with the symmetric Toeplitz key the device's RSS must use. */
void ns_rss_key(uint8_t *key, size_t len);

/*
 * The Toeplitz hash of an IPv4 TCP 4-tuple (source address, destination address, source
 * port, destination port) under ns_rss_key(): what an RSS device computes for the frame, and
 * the same for both directions. Addresses network order, ports host order.
 */
uint32_t ns_rss_hash(uint32_t saddr, uint32_t daddr, uint16_t sport, uint16_t dport);

/* The worker owning a flow of that hash: entry hash & reta_mask of a table holding i % n. */
unsigned ns_steer_owner(uint32_t hash, uint32_t reta_mask, unsigned nworkers);

/* Parses "A.B.C.D/LEN" into network-order address and mask. Returns 0 or -EINVAL. */
int ns_parse_cidr(const char *s, uint32_t *ip, uint32_t *mask);

#ifdef __cplusplus
}
#endif

#endif /* NS_STACK_H */

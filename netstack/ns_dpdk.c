/* SPDX-License-Identifier: MIT */
/*
 * The DPDK backend: EAL and ethdev underneath, Tachyon's own ARP/IPv4/ICMP/TCP (ns_ip.c,
 * ns_tcp*.c) on top, behind the same ns.h interface as the kernel backend. One stack instance
 * per worker; ns_dpdk_port.c maps a stack onto a queue pair.
 *
 * Start-up (ns_dpdk_create): EAL from cfg->dpdk_args (split on spaces), the first ethdev port,
 * an mbuf pool, nq = min(workers, the device's queues) RX/TX queue pairs with symmetric RSS
 * where the device has it (ns_dport_configure), the buffering in front of the RX queues sized
 * to the connections (ns_dport_rx_depth: net_tap's kernel queue), one stack per worker sharing
 * one ISN/cookie secret, the hand-off rings, then one gratuitous ARP (from worker 0).
 *
 * Counters: ns_dpdk_dump_stats() has them all; at shutdown every worker prints one line of
 * what it carried and one of every place a frame or segment was dropped, and the port one of
 * the device's drops and the mbufs in use (bench/run_netns and the tests read them).
 *
 * Several workers, without locks. Every TCP connection has one owner, the worker
 * ns_steer_owner(ns_rss_hash(4-tuple)) names (ns_steer.c); the hash is symmetric, so both
 * directions agree, and active opens pick ports their own core owns. Workers 0..nq-1 each
 * poll their RX queue; a TCP frame owned by another worker is handed to it through a
 * single-producer single-consumer rte_ring per (receiver, owner) pair. With RSS programmed as
 * the steering expects, that almost never happens; on a device with fewer queues than workers
 * (or RSS of its own choosing, such as net_tap's) it is the normal path. ARP frames go to every
 * worker: the receiver processes (and answers) its frame and passes the same mbuf, one
 * reference each, to every other worker, which learns from it only (NS_RXF_ARP_LEARN); a frame
 * is never written once received, so sharing it is safe. ICMP and anything not TCP stays
 * with the receiver. A worker without a queue of its own (workers > nq) transmits through a
 * single-producer ring that worker (idx % nq) drains into its TX queue.
 *
 * Data path, per worker: ns_poll() takes in what waits in its RX queue and hand-off rings,
 * burst after burst up to budgets (rx_drain: a timer must not fire ahead of an ACK already
 * received), runs the stack's timers, collects events, sends pending ACKs and transmits the
 * TX buffer in bursts (and what the TX rings it serves hold). With nothing to report it
 * busy-polls until timeout_ms, yielding the CPU briefly after a run of empty polls (a
 * deliberate concession to shared hosts; a dedicated core would spin). The mbuf pool is
 * shared: mbufs cross cores through the rings and are freed wherever their last reference
 * goes (the mempool handles that); worker threads register with EAL on their first poll so
 * they get a mempool cache.
 *
 * Tests only: TACHYON_NS_FAULT (see ns_dpdk_port.h) injects loss and reordering;
 * TACHYON_NS_QUEUES=N caps the queue pairs, so a multi-queue device can exercise the
 * single-queue paths (hand-off of everything, TX through rings).
 *
 * EAL can be initialised once per process, so there is one DPDK transport per process.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include "ns_dpdk.h"
#include "ns_dpdk_port.h"
#include "ns_stack.h"

#define RX_BURST NS_DPORT_RX_BURST
#define POOL_MBUFS_MIN 16383
#define POOL_MBUFS_PER_WORKER 8192
#define POOL_CACHE 256
#define RING_SIZE 2048	/* frames in flight from one worker to another */
#define RX_DEPTH_MIN 1024
#define RX_DEPTH_MAX (1u << 20)
#define RX_ROUNDS_MAX 256 /* bursts of input per poll round before timers run (rx_drain) */
#define TIMER_DEFER_MAX_US 2000000 /* timers wait for an RX backlog this long at most */
#define IDLE_SPINS 2000 /* empty polls before yielding the CPU for IDLE_SLEEP_US */
#define IDLE_SLEEP_US 50

/* Per-worker steering counters (worker-local; read racily for monitoring). */
struct dsteer_stats {
	uint64_t rxq_frames; /* frames this worker polled from its own RX queue */
	uint64_t steer_out;  /* TCP frames handed to their owner */
	uint64_t steer_in;   /* frames received from other workers (ARP copies included) */
	uint64_t steer_drop; /* hand-offs refused: the owner's ring was full */
	uint64_t arp_shared; /* ARP frames passed to the other workers */
	uint64_t txfwd_in;   /* frames transmitted for queue-less workers */
	uint64_t txfwd_drop; /* the TX queue refused them */
	uint64_t timers_deferred; /* poll rounds that left timers for after the RX backlog */
};

struct dworker {
	struct ns_stack st; /* must be first: the worker is a stack */
	struct ns_dport dp;
	bool has_rxq;
	bool registered; /* EAL thread registration tried */
	unsigned nw;
	struct rte_ring **in;	   /* in[src]: frames worker src handed to us (NULL: none) */
	struct rte_ring **out;	   /* out[dst]: dst's in[self] */
	struct rte_ring **txserve; /* TX rings of queue-less workers we transmit for */
	unsigned ntxserve;
	struct rte_mbuf **stage; /* stage[dst * RX_BURST + i]: hand-offs of this burst */
	uint16_t *nstage;
	struct dsteer_stats ss;
	atomic_bool wake; /* set by ns_wake(), consumed by the worker: release/acquire pair */
	uint64_t timers_us; /* when ns_stack_timers() last ran */
};

struct dtransport {
	struct ns_transport base;
	uint16_t port;
	unsigned nq;
	bool rss;
	uint32_t reta_mask;
	struct rte_mempool *pool;
	bool port_started;
	struct rte_ring **rings; /* nw * nw hand-off rings (src * nw + dst), then nw TX rings */
	unsigned rx_rounds_max;  /* rx_drain(): bursts per poll round */
	uint32_t rx_held_max;    /* rx_drain(): stop when the stack holds this many buffers */
};

static struct dworker *dw(struct ns_worker *w)
{
	return (struct dworker *)w;
}

/* ---- receive dispatch ----------------------------------------------------------------------- */

/*
 * Which worker owns a frame: the steering owner for IPv4 TCP (not a fragment: only the first
 * carries ports), -1 for ARP (everyone), self for anything else.
 */
static int frame_owner(const struct dworker *w, const struct dtransport *t,
		       const struct rte_mbuf *m)
{
	const uint8_t *f = rte_pktmbuf_mtod(m, const uint8_t *);
	uint32_t len = m->data_len;
	if (len < NS_ETH_HLEN)
		return (int)w->st.base.idx;
	uint16_t type = (uint16_t)(f[12] << 8 | f[13]);
	if (type == NS_ETH_P_ARP)
		return -1;
	if (type != NS_ETH_P_IP || len < NS_ETH_HLEN + NS_IP_HLEN)
		return (int)w->st.base.idx;
	const struct ns_ip_hdr *ih = (const struct ns_ip_hdr *)(f + NS_ETH_HLEN);
	uint32_t hl = (uint32_t)(ih->vihl & 0x0f) * 4;
	if (ih->proto != NS_IPPROTO_TCP || hl < NS_IP_HLEN ||
	    (ntohs(ih->frag) & (NS_IP_MF | NS_IP_OFFMASK)) || len < NS_ETH_HLEN + hl + 4)
		return (int)w->st.base.idx;
	const uint8_t *th = f + NS_ETH_HLEN + hl;
	uint16_t sport = (uint16_t)(th[0] << 8 | th[1]), dport = (uint16_t)(th[2] << 8 | th[3]);
	return (int)ns_steer_owner(ns_rss_hash(ih->src, ih->dst, sport, dport), t->reta_mask,
				   t->base.nworkers);
}

static void stage_push(struct dworker *w, unsigned dst, struct rte_mbuf *m)
{
	w->stage[dst * RX_BURST + w->nstage[dst]++] = m;
}

/* Hands the staged frames to their owners; what a full ring refuses is dropped, counted. */
static void stage_flush(struct dworker *w)
{
	for (unsigned d = 0; d < w->nw; d++) {
		unsigned n = w->nstage[d];
		if (!n)
			continue;
		struct rte_mbuf **b = &w->stage[d * RX_BURST];
		/* SP enqueue (we are the ring's only producer); pairs with the owner's SC dequeue
		 */
		unsigned done = rte_ring_sp_enqueue_burst(w->out[d], (void **)b, n, NULL);
		for (unsigned i = done; i < n; i++)
			rte_pktmbuf_free(b[i]);
		w->ss.steer_drop += n - done;
		w->nstage[d] = 0;
	}
}

/* One burst from our RX queue; returns the frames polled (RX_BURST: more may wait). */
static unsigned rx_queue(struct dworker *w, struct dtransport *t)
{
	struct rte_mbuf *rx[RX_BURST];
	uint16_t n = rte_eth_rx_burst(w->dp.port, w->dp.queue, rx, RX_BURST);
	w->st.base.stats.rx_calls++;
	w->ss.rxq_frames += n;
	unsigned self = w->st.base.idx;
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = rx[i];
		int own = w->nw > 1 ? frame_owner(w, t, m) : (int)self;
		if (own < 0) {
			/* ARP: one reference per other worker, then ours (which answers) */
			for (unsigned d = 0; d < w->nw; d++) {
				if (d == self)
					continue;
				rte_mbuf_refcnt_update(m, 1);
				stage_push(w, d, m);
				w->ss.arp_shared++;
			}
			own = (int)self;
		} else if ((unsigned)own != self) {
			stage_push(w, (unsigned)own, m);
			w->ss.steer_out++;
			continue;
		}
		ns_dport_input(&w->dp, m, 0);
	}
	if (w->nw > 1)
		stage_flush(w);
	return n;
}

/* One burst from each hand-off ring; returns the frames taken. */
static unsigned rx_rings(struct dworker *w)
{
	struct rte_mbuf *b[RX_BURST];
	unsigned taken = 0;
	for (unsigned s = 0; s < w->nw; s++) {
		if (!w->in[s])
			continue;
		/* SC dequeue; pairs with the SP enqueue in the sender's stage_flush() */
		unsigned n = rte_ring_sc_dequeue_burst(w->in[s], (void **)b, RX_BURST, NULL);
		w->ss.steer_in += n;
		taken += n;
		for (unsigned i = 0; i < n; i++) {
			const uint8_t *f = rte_pktmbuf_mtod(b[i], const uint8_t *);
			bool arp = b[i]->data_len >= NS_ETH_HLEN &&
				   (uint16_t)(f[12] << 8 | f[13]) == NS_ETH_P_ARP;
			ns_dport_input(&w->dp, b[i], arp ? NS_RXF_ARP_LEARN : 0);
		}
	}
	return taken;
}

/* Whether every hand-off ring has room for another burst: the owners drain them only when
 * they poll, so a receiver that went on reading its queue would make them drop frames. */
static bool handoff_room(const struct dworker *w)
{
	for (unsigned d = 0; d < w->nw; d++)
		if (w->out && w->out[d] && rte_ring_free_count(w->out[d]) < RX_BURST)
			return false;
	return true;
}

/*
 * Input before timers: every frame waiting in our RX queue and hand-off rings, as far as the
 * budgets allow, before ns_stack_timers() runs. A retransmission timer that fires while the
 * ACK it waits for sits unread in our own queue is spurious, and under a backlog there are
 * many: after a burst (say the PINGRESPs of 100,000 idle connections, whose ACKs come back
 * together) a round of one RX burst then timers fired the RTO of every connection whose ACK
 * was further back than one burst; each retransmission cost a write to the device and an
 * answer from the peer that joined the backlog, and the link collapsed into retransmission
 * storms (issue #6). Pure ACKs are consumed at once; segments with data are held (one device
 * buffer each) until the engine has seen them, so draining stops when the stack holds
 * rx_held_max buffers, when a hand-off ring is nearly full, and after rx_rounds_max bursts.
 * *backlog then says input is still waiting and the caller defers its timers
 * (TIMER_DEFER_MAX_US at most, so that a flood cannot stall them): a device queue deeper than
 * one round drains (net_tap's kernel queue, sized to the connections) would otherwise let
 * them fire ahead of ACKs already received. Returns whether any frame came in.
 */
static bool rx_drain(struct dworker *w, struct dtransport *t, bool *backlog)
{
	bool any = false;
	*backlog = false;
	for (unsigned r = 0; r < t->rx_rounds_max; r++) {
		unsigned got = 0;
		bool more = false, room = w->nw == 1 || handoff_room(w);
		if (w->has_rxq && room) {
			unsigned n = rx_queue(w, t);
			got += n;
			more = n == RX_BURST;
		}
		if (w->nw > 1) {
			unsigned n = rx_rings(w);
			got += n;
			more = more || n != 0;
		}
		any = any || got;
		if (!more && room)
			return any;
		if (!more || w->st.segs_held >= t->rx_held_max)
			break;
		w->st.now_us = ns_dpdk_now_us();
	}
	*backlog = true;
	return any;
}

/* Transmits what queue-less workers queued for our TX queue. */
static void tx_serve(struct dworker *w)
{
	struct rte_mbuf *b[NS_DPORT_TX_BURST];
	for (unsigned i = 0; i < w->ntxserve; i++) {
		unsigned n = rte_ring_sc_dequeue_burst(w->txserve[i], (void **)b, NS_DPORT_TX_BURST,
						       NULL);
		if (!n)
			continue;
		unsigned sent = rte_eth_tx_burst(w->dp.port, w->dp.queue, b, (uint16_t)n);
		w->st.base.stats.tx_calls++;
		w->ss.txfwd_in += sent;
		for (unsigned k = sent; k < n; k++)
			rte_pktmbuf_free(b[k]);
		w->ss.txfwd_drop += n - sent;
	}
}

/* ---- ns_ops ----------------------------------------------------------------------------- */

static unsigned d_poll(struct ns_worker *base, struct ns_event *ev, unsigned max, int timeout_ms)
{
	struct dworker *w = dw(base);
	struct dtransport *t = (struct dtransport *)base->t;
	if (!w->registered) {
		/* An EAL lcore id gives this thread a mempool cache; without one (no free lcore
		 * slot) allocation still works, through the pool's shared ring. */
		w->registered = true;
		if (rte_lcore_id() == LCORE_ID_ANY)
			(void)rte_thread_register();
	}
	uint64_t start = ns_dpdk_now_us();
	uint64_t deadline = timeout_ms > 0 ? start + (uint64_t)timeout_ms * 1000 : 0;
	unsigned spins = 0;

	for (;;) {
		w->st.now_us = ns_dpdk_now_us();
		bool backlog;
		if (!rx_drain(w, t, &backlog))
			ns_dport_input_idle(&w->dp);
		if (!backlog || w->st.now_us - w->timers_us >= TIMER_DEFER_MAX_US) {
			ns_stack_timers(&w->st);
			w->timers_us = w->st.now_us;
		} else {
			w->ss.timers_deferred++;
		}
		unsigned n = ns_stack_events(&w->st, ev, max);
		ns_stack_flush(&w->st); /* ACKs and window updates owed now */
		ns_dport_tx_flush(&w->dp);
		if (w->ntxserve)
			tx_serve(w);
		/* pairs with the release store in d_wake() */
		bool woken = atomic_exchange_explicit(&w->wake, false, memory_order_acquire);
		if (n || timeout_ms == 0 || woken || max == 0)
			return n;
		if (timeout_ms > 0 && w->st.now_us >= deadline)
			return 0;
		if (++spins >= IDLE_SPINS) {
			rte_delay_us_sleep(IDLE_SLEEP_US);
			spins = IDLE_SPINS / 2;
		}
	}
}

static void d_flush(struct ns_worker *base)
{
	struct dworker *w = dw(base);
	w->st.now_us = ns_dpdk_now_us();
	ns_stack_flush(&w->st);
	ns_dport_tx_flush(&w->dp);
}

static void d_wake(struct ns_worker *base)
{
	/* pairs with the acquire exchange in d_poll() */
	atomic_store_explicit(&dw(base)->wake, true, memory_order_release);
}

static void ring_drain_free(struct rte_ring *r)
{
	void *m;
	while (rte_ring_dequeue(r, &m) == 0)
		rte_pktmbuf_free(m);
}

/* One line per worker at shutdown: where connections and frames went (tests read it). */
static void summary(struct dtransport *t)
{
	for (unsigned i = 0; i < t->base.nworkers; i++) {
		struct dworker *w = dw(t->base.workers[i]);
		if (!w)
			continue;
		fprintf(stderr,
			"netstack: dpdk worker %u: queue %s, accepted %llu, closed %llu, "
			"rx_frames %llu, queue_frames %llu, steered_out %llu, steered_in %llu, "
			"steer_drop %llu, arp_shared %llu\n",
			i, w->has_rxq ? "own" : "none",
			(unsigned long long)w->st.base.stats.accepted,
			(unsigned long long)w->st.base.stats.closed,
			(unsigned long long)w->st.xs.rx_frames,
			(unsigned long long)w->ss.rxq_frames, (unsigned long long)w->ss.steer_out,
			(unsigned long long)w->ss.steer_in, (unsigned long long)w->ss.steer_drop,
			(unsigned long long)w->ss.arp_shared);
		/* every place a frame or a segment can be lost, and what it cost */
		const struct ns_stack_stats *x = &w->st.xs;
		char tcp[512];
		fprintf(stderr,
			"netstack: dpdk worker %u drops: tx_nobuf %llu, tx_dropped %llu, "
			"txfwd_drop %llu, arp_miss_drop %llu, refused %llu, timers_deferred %llu, "
			"%s\n",
			i, (unsigned long long)x->tx_nobuf, (unsigned long long)w->dp.tx_dropped,
			(unsigned long long)w->ss.txfwd_drop, (unsigned long long)x->arp_miss_drop,
			(unsigned long long)w->st.base.stats.refused,
			(unsigned long long)w->ss.timers_deferred,
			ns_stack_tcp_counters(x, tcp, sizeof(tcp)));
	}
	struct rte_eth_stats es;
	if (t->pool && rte_eth_stats_get(t->port, &es) == 0)
		fprintf(stderr,
			"netstack: dpdk port %u: rx_nombuf %llu, imissed %llu, ierrors %llu, "
			"oerrors %llu; mbufs %u in use of %u\n",
			t->port, (unsigned long long)es.rx_nombuf, (unsigned long long)es.imissed,
			(unsigned long long)es.ierrors, (unsigned long long)es.oerrors,
			rte_mempool_in_use_count(t->pool), t->pool->size);
}

static void d_destroy(struct ns_transport *base)
{
	struct dtransport *t = (struct dtransport *)base;
	if (base->workers)
		summary(t);
	unsigned nw = base->nworkers;
	if (t->rings) {
		for (unsigned i = 0; i < nw * nw + nw; i++) {
			if (t->rings[i]) {
				ring_drain_free(t->rings[i]);
				rte_ring_free(t->rings[i]);
			}
		}
		free(t->rings);
	}
	for (unsigned i = 0; i < nw; i++) {
		struct dworker *w = dw(base->workers[i]);
		if (!w)
			continue;
		ns_stack_fini(&w->st);
		ns_dport_fini(&w->dp);
		free(w->in);
		free(w->out);
		free(w->txserve);
		free(w->stage);
		free(w->nstage);
		rte_free(w);
	}
	free(base->workers);
	if (t->port_started) {
		rte_eth_dev_stop(t->port);
		rte_eth_dev_close(t->port);
	}
	rte_mempool_free(t->pool);
	free(t);
	/* EAL stays: DPDK cannot initialise it twice in one process */
}

static const struct ns_ops dpdk_ops = {
	.destroy = d_destroy,
	.poll = d_poll,
	.send = ns_stack_send,
	.flush = d_flush,
	.close = ns_stack_close,
	.pause_rx = ns_stack_pause_rx,
	.pending = ns_stack_pending,
	.wake = d_wake,
};

/* ---- start-up --------------------------------------------------------------------------- */

/* Queue pairs to use: one per worker, as far as the device (and TACHYON_NS_QUEUES) allow. */
static unsigned queues_for(uint16_t port, unsigned nw)
{
	struct rte_eth_dev_info info;
	if (rte_eth_dev_info_get(port, &info) != 0)
		return 1;
	unsigned nq = nw;
	if (info.max_rx_queues < nq)
		nq = info.max_rx_queues;
	if (info.max_tx_queues < nq)
		nq = info.max_tx_queues;
	const char *cap = getenv("TACHYON_NS_QUEUES");
	if (cap && atoi(cap) > 0 && (unsigned)atoi(cap) < nq)
		nq = (unsigned)atoi(cap);
	return nq ? nq : 1;
}

static struct rte_ring *ring_make(const char *kind, unsigned a, unsigned b)
{
	char name[RTE_RING_NAMESIZE];
	snprintf(name, sizeof(name), "ns_%s_%u_%u", kind, a, b);
	return rte_ring_create(name, RING_SIZE, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
}

/* Hand-off rings between workers, TX rings of queue-less workers, staging arrays. */
static int steering_init(struct dtransport *t)
{
	unsigned nw = t->base.nworkers, nq = t->nq;
	t->rings = calloc((size_t)nw * nw + nw, sizeof(*t->rings));
	if (!t->rings)
		return -ENOMEM;
	for (unsigned i = 0; i < nw; i++) {
		struct dworker *w = dw(t->base.workers[i]);
		w->in = calloc(nw, sizeof(*w->in));
		w->out = calloc(nw, sizeof(*w->out));
		w->txserve = calloc(nw, sizeof(*w->txserve));
		w->stage = calloc((size_t)nw * RX_BURST, sizeof(*w->stage));
		w->nstage = calloc(nw, sizeof(*w->nstage));
		if (!w->in || !w->out || !w->txserve || !w->stage || !w->nstage)
			return -ENOMEM;
	}
	for (unsigned s = 0; s < nq; s++) {
		for (unsigned d = 0; d < nw; d++) {
			if (s == d)
				continue;
			struct rte_ring *r = ring_make("rx", s, d);
			if (!r)
				return -rte_errno;
			t->rings[s * nw + d] = r;
			dw(t->base.workers[s])->out[d] = r;
			dw(t->base.workers[d])->in[s] = r;
		}
	}
	for (unsigned i = nq; i < nw; i++) {
		struct rte_ring *r = ring_make("tx", i, i % nq);
		if (!r)
			return -rte_errno;
		t->rings[nw * nw + i] = r;
		dw(t->base.workers[i])->dp.tx_ring = r;
		struct dworker *srv = dw(t->base.workers[i % nq]);
		srv->txserve[srv->ntxserve++] = r;
	}
	return 0;
}

struct ns_transport *ns_dpdk_create(const struct ns_config *cfg, char *err, size_t errlen)
{
	uint32_t ip, mask, gw = 0;

	if (!cfg->ip || ns_parse_cidr(cfg->ip, &ip, &mask) != 0) {
		snprintf(err, errlen, "the DPDK backend needs --ip A.B.C.D/LEN (got '%s')",
			 cfg->ip ? cfg->ip : "");
		return NULL;
	}
	if (cfg->gateway && *cfg->gateway && inet_pton(AF_INET, cfg->gateway, &gw) != 1) {
		snprintf(err, errlen, "bad gateway '%s'", cfg->gateway);
		return NULL;
	}
	if (cfg->port == 0) {
		snprintf(err, errlen, "the DPDK backend needs an explicit port");
		return NULL;
	}
	if (cfg->workers > 0xffff) {
		snprintf(err, errlen, "too many workers (%u)", cfg->workers);
		return NULL;
	}
	if (ns_dpdk_eal_init(cfg->dpdk_args, err, errlen) != 0)
		return NULL;

	struct dtransport *t = calloc(1, sizeof(*t));
	if (!t)
		goto fail_alloc;
	t->base.ops = &dpdk_ops;
	t->base.cfg = *cfg;
	t->base.port = cfg->port;
	uint16_t pid, found = RTE_MAX_ETHPORTS;
	RTE_ETH_FOREACH_DEV(pid)
	{
		found = pid;
		break;
	}
	if (found == RTE_MAX_ETHPORTS) {
		snprintf(err, errlen, "no DPDK port (give a --vdev or bind a NIC)");
		goto fail_port;
	}
	t->port = found;
	unsigned nw = cfg->workers;
	t->nq = queues_for(t->port, nw);
	char name[RTE_MEMPOOL_NAMESIZE];
	snprintf(name, sizeof(name), "ns_pool_%u", t->port);
	unsigned nmbufs = POOL_MBUFS_MIN;
	if (nw * POOL_MBUFS_PER_WORKER > nmbufs)
		nmbufs = nw * POOL_MBUFS_PER_WORKER - 1;
	t->pool = rte_pktmbuf_pool_create(name, nmbufs, POOL_CACHE, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
					  rte_socket_id());
	if (!t->pool) {
		snprintf(err, errlen, "mbuf pool: %s", rte_strerror(rte_errno));
		goto fail_port;
	}
	/* Input drained per poll round (rx_drain): a quarter of the pool per worker may wait for
	 * the engine, so the RX rings always find buffers to refill with. */
	t->rx_rounds_max = RX_ROUNDS_MAX;
	t->rx_held_max = nmbufs / 4 / nw > RX_BURST ? nmbufs / 4 / nw : RX_BURST;
	if (ns_dport_configure(t->port, t->nq, t->pool, &t->reta_mask, &t->rss, err, errlen) != 0)
		goto fail_destroy;
	t->port_started = true;
	/* Every connection may have a request and an ACK on their way to us at once (a burst of
	 * PINGREQs, the ACKs of a burst of answers): what the port must buffer before we poll. */
	uint64_t depth = 2ull * (cfg->max_conns ? cfg->max_conns : 1) * nw;
	depth = depth < RX_DEPTH_MIN ? RX_DEPTH_MIN : depth > RX_DEPTH_MAX ? RX_DEPTH_MAX : depth;
	int drc = ns_dport_rx_depth(t->port, (unsigned)depth);
	if (drc != 0)
		fprintf(stderr, "netstack: dpdk port %u: RX queue depth %llu not set (%s)\n",
			t->port, (unsigned long long)depth, strerror(-drc));

	t->base.workers = calloc(nw, sizeof(*t->base.workers));
	if (!t->base.workers)
		goto fail_nomem;
	t->base.nworkers = nw;
	struct rte_ether_addr mac;
	rte_eth_macaddr_get(t->port, &mac);
	struct ns_stack_cfg sc;
	ns_stack_cfg_defaults(&sc); /* one secret for all: any core can check any cookie */
	sc.ip = ip;
	sc.netmask = mask;
	sc.gateway = gw;
	memcpy(sc.mac, mac.addr_bytes, NS_ETH_ALEN);
	sc.listen_port = cfg->port;
	sc.backlog = cfg->backlog > 0 ? (uint32_t)cfg->backlog : 1;
	sc.max_conns = cfg->max_conns;
	sc.rx_chunk = cfg->rx_chunk;
	sc.tx_limit = cfg->tx_limit;
	sc.steer_workers = (uint16_t)nw;
	sc.steer_mask = t->reta_mask;
	for (unsigned i = 0; i < nw; i++) {
		struct dworker *w = rte_zmalloc("ns_worker", sizeof(*w), RTE_CACHE_LINE_SIZE);
		if (!w)
			goto fail_nomem;
		t->base.workers[i] = &w->st.base;
		w->st.base.t = &t->base;
		w->st.base.idx = i;
		w->nw = nw;
		w->has_rxq = i < t->nq;
		ns_dport_init(&w->dp, &w->st, t->port, (uint16_t)(i < t->nq ? i : i % t->nq),
			      t->pool);
		sc.steer_self = (uint16_t)i;
		if (ns_stack_init(&w->st, &sc, &ns_dport_ops, &w->dp) != 0) {
			snprintf(err, errlen, "worker %u: stack initialisation failed", i);
			goto fail_destroy;
		}
		w->st.now_us = ns_dpdk_now_us();
	}
	if (nw > 1 && steering_init(t) != 0) {
		snprintf(err, errlen, "steering rings: %s", rte_strerror(rte_errno));
		goto fail_destroy;
	}
	struct dworker *w0 = dw(t->base.workers[0]);
	ns_stack_start(&w0->st); /* one gratuitous ARP for the whole device */
	ns_dport_tx_flush(&w0->dp);
	if (w0->dp.tx_ring)
		NS_DIE("worker 0 always has a queue");
	return &t->base;

fail_nomem:
	snprintf(err, errlen, "out of memory");
fail_destroy:
	d_destroy(&t->base);
	return NULL;
fail_port:
	free(t);
	return NULL;
fail_alloc:
	snprintf(err, errlen, "out of memory");
	return NULL;
}

void ns_dpdk_dump_stats(struct ns_transport *base, FILE *f)
{
	if (!base || base->ops != &dpdk_ops)
		return;
	struct dtransport *t = (struct dtransport *)base;
	struct rte_eth_stats s;
	fprintf(f, "port%u.queues %u\nport%u.rss %u\n", t->port, t->nq, t->port, t->rss ? 1 : 0);
	if (rte_eth_stats_get(t->port, &s) == 0) {
		fprintf(f,
			"port%u.ipackets %llu\nport%u.opackets %llu\nport%u.ibytes %llu\n"
			"port%u.obytes %llu\nport%u.imissed %llu\nport%u.ierrors %llu\n"
			"port%u.oerrors %llu\nport%u.rx_nombuf %llu\n",
			t->port, (unsigned long long)s.ipackets, t->port,
			(unsigned long long)s.opackets, t->port, (unsigned long long)s.ibytes,
			t->port, (unsigned long long)s.obytes, t->port,
			(unsigned long long)s.imissed, t->port, (unsigned long long)s.ierrors,
			t->port, (unsigned long long)s.oerrors, t->port,
			(unsigned long long)s.rx_nombuf);
		for (unsigned q = 0; q < t->nq && q < RTE_ETHDEV_QUEUE_STAT_CNTRS; q++)
			fprintf(f, "port%u.q%u.ipackets %llu\nport%u.q%u.opackets %llu\n", t->port,
				q, (unsigned long long)s.q_ipackets[q], t->port, q,
				(unsigned long long)s.q_opackets[q]);
	}
	for (unsigned i = 0; i < base->nworkers; i++) {
		struct dworker *w = dw(base->workers[i]);
		const struct ns_stack_stats *x = &w->st.xs;
		const struct ns_stats *b = &w->st.base.stats;
#define P(name, v) fprintf(f, "w%u.%s %llu\n", i, name, (unsigned long long)(v))
		P("accepted", b->accepted);
		P("refused", b->refused);
		P("closed", b->closed);
		P("errors", b->errors);
		P("rx_bytes", b->rx_bytes);
		P("tx_bytes", b->tx_bytes);
		P("tx_full", b->tx_full);
		P("tx_dropped", w->dp.tx_dropped);
		P("segs_held", w->st.segs_held);
		P("queue_frames", w->ss.rxq_frames);
		P("steer_out", w->ss.steer_out);
		P("steer_in", w->ss.steer_in);
		P("steer_drop", w->ss.steer_drop);
		P("arp_shared", w->ss.arp_shared);
		P("txfwd_in", w->ss.txfwd_in);
		P("txfwd_drop", w->ss.txfwd_drop);
		P("timers_deferred", w->ss.timers_deferred);
		P("rx_frames", x->rx_frames);
		P("tx_frames", x->tx_frames);
		P("tx_nobuf", x->tx_nobuf);
		P("eth_drop", x->eth_drop);
		P("arp_rx", x->arp_rx);
		P("arp_tx", x->arp_tx);
		P("arp_miss_drop", x->arp_miss_drop);
		P("ip_bad", x->ip_bad);
		P("ip_csum_bad", x->ip_csum_bad);
		P("ip_frag_drop", x->ip_frag_drop);
		P("icmp_echo", x->icmp_echo);
		P("tcp_csum_bad", x->tcp_csum_bad);
		P("tcp_bad", x->tcp_bad);
		P("tcp_rst_tx", x->tcp_rst_tx);
		P("tcp_rst_rx", x->tcp_rst_rx);
		P("tcp_retransmits", x->tcp_retransmits);
		P("tcp_fast_retransmits", x->tcp_fast_retransmits);
		P("tcp_rto_fired", x->tcp_rto_fired);
		P("tcp_dupacks", x->tcp_dupacks);
		P("tcp_ooo_segs", x->tcp_ooo_segs);
		P("tcp_rcv_drop", x->tcp_rcv_drop);
		P("tcp_rcv_dup", x->tcp_rcv_dup);
		P("tcp_tlp_probes", x->tcp_tlp_probes);
		P("tcp_tlp_recoveries", x->tcp_tlp_recoveries);
		P("tcp_tlp_spurious", x->tcp_tlp_spurious);
		P("tcp_challenge_acks", x->tcp_challenge_acks);
		P("tcp_syncookies_tx", x->tcp_syncookies_tx);
		P("tcp_syncookies_ok", x->tcp_syncookies_ok);
		P("tcp_tw_recycled", x->tcp_tw_recycled);
		P("tcp_timeouts", x->tcp_timeouts);
		P("tcp_delayed_acks", x->tcp_delayed_acks);
#undef P
	}
}

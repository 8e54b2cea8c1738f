/* SPDX-License-Identifier: MIT */
/*
 * The DPDK backend: EAL and ethdev underneath, Tachyon's own ARP/IPv4/ICMP/TCP (ns_ip.c,
 * ns_tcp*.c) on top, behind the same ns.h interface as the kernel backend.
 *
 * Start-up (ns_dpdk_create): EAL from cfg->dpdk_args (split on spaces), the first ethdev port,
 * one RX/TX queue pair per worker, offloads requested only where dev_info lists them (RX IPv4
 * and TCP checksum; everything else, TX checksums included, is done in software), an mbuf
 * pool, link status, then a gratuitous ARP from every worker.
 *
 * Data path, per worker and without locks: ns_poll() receives a burst, hands each frame to the
 * worker's stack (which takes its own mbuf references for what it queues, so receive stays
 * zero-copy up to the engine), runs the stack's timers, collects events, sends pending ACKs
 * and transmits the TX buffer in bursts. With nothing to report it busy-polls until
 * timeout_ms, yielding the CPU briefly after a run of empty polls (a deliberate concession to
 * shared hosts; a dedicated core would spin).
 *
 * Fault injection, for tests only: TACHYON_NS_FAULT="loss=P,reorder=Q,seed=S" in the
 * environment drops P% of received and of transmitted frames and delays Q% of received frames
 * behind the next one, so loss and reordering in both directions can be tested against a
 * Linux peer on kernels without sch_netem. It costs one branch per frame when unset.
 *
 * Limits of this version: one worker (one queue pair). Several workers need RSS with a
 * symmetric key, or software steering through rings where the device has one queue, and ARP
 * delivered to every worker; none of that is here yet, and ns_dpdk_create() refuses
 * workers > 1. EAL can be initialised once per process, so there is one DPDK transport per
 * process.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "ns_dpdk.h"
#include "ns_stack.h"

#define RX_BURST 32
#define TX_BURST 64
#define NB_RXD 1024
#define NB_TXD 1024
#define POOL_MBUFS 16383
#define POOL_CACHE 256
#define MAX_ARGS 64
#define IDLE_SPINS 2000 /* empty polls before yielding the CPU for IDLE_SLEEP_US */
#define IDLE_SLEEP_US 50

struct dworker {
	struct ns_stack st; /* must be first: the worker is a stack */
	uint16_t port;
	uint16_t queue;
	struct rte_mempool *pool;
	unsigned ntx;
	uint64_t tx_dropped;
	atomic_bool wake; /* set by ns_wake(), consumed by the worker: release/acquire pair */
	unsigned fault_loss, fault_reorder; /* percent; test-only fault injection */
	uint64_t rng;
	struct rte_mbuf *fault_held;        /* a received frame delayed behind the next one */
	struct rte_mbuf *txb[TX_BURST];
};

struct dtransport {
	struct ns_transport base;
	uint16_t port;
	struct rte_mempool *pool;
	bool port_started;
};

static bool eal_initialised; /* EAL: once per process */
static char *eal_args_copy;  /* EAL keeps pointers into its argv for the process's life */

static struct dworker *dw(struct ns_worker *w)
{
	return (struct dworker *)w;
}

/* ---- the device under the stack --------------------------------------------------------- */

static void tx_flush(struct dworker *w)
{
	unsigned sent = 0;
	for (unsigned tries = 0; sent < w->ntx && tries < 8; tries++) {
		sent += rte_eth_tx_burst(w->port, w->queue, w->txb + sent, (uint16_t)(w->ntx - sent));
		w->st.base.stats.tx_calls++;
	}
	for (unsigned i = sent; i < w->ntx; i++) {
		rte_pktmbuf_free(w->txb[i]);
		w->tx_dropped++;
	}
	w->ntx = 0;
}

static struct ns_pkt *dev_alloc(void *ctx, uint8_t **data)
{
	struct dworker *w = ctx;
	struct rte_mbuf *m = rte_pktmbuf_alloc(w->pool);
	if (!m)
		return NULL;
	*data = rte_pktmbuf_mtod(m, uint8_t *);
	return (struct ns_pkt *)m;
}

static unsigned rnd100(struct dworker *w)
{
	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	return (unsigned)(w->rng % 100);
}

static void dev_tx(void *ctx, struct ns_pkt *p, uint16_t len)
{
	struct dworker *w = ctx;
	struct rte_mbuf *m = (struct rte_mbuf *)p;
	if (w->fault_loss && rnd100(w) < w->fault_loss) {
		rte_pktmbuf_free(m);
		return;
	}
	m->data_len = len;
	m->pkt_len = len;
	w->txb[w->ntx++] = m;
	if (w->ntx == TX_BURST)
		tx_flush(w);
}

static void dev_hold(void *ctx, struct ns_pkt *p)
{
	(void)ctx;
	rte_mbuf_refcnt_update((struct rte_mbuf *)p, 1);
}

static void dev_release(void *ctx, struct ns_pkt *p)
{
	(void)ctx;
	rte_pktmbuf_free((struct rte_mbuf *)p);
}

static const struct ns_dev_ops dpdk_dev_ops = {
	.alloc = dev_alloc,
	.tx = dev_tx,
	.hold = dev_hold,
	.release = dev_release,
};

static uint64_t now_us(void)
{
	return rte_get_timer_cycles() * 1000000ull / rte_get_timer_hz();
}

/* ---- ns_ops ----------------------------------------------------------------------------- */

/* Test-only: drops or delays a received frame; returns the frame to process now, or NULL. */
static struct rte_mbuf *fault_rx(struct dworker *w, struct rte_mbuf *m, struct rte_mbuf **after)
{
	*after = NULL;
	if (w->fault_loss && rnd100(w) < w->fault_loss) {
		rte_pktmbuf_free(m);
		return NULL;
	}
	if (w->fault_held) {
		*after = w->fault_held; /* the delayed frame goes after this one */
		w->fault_held = NULL;
		return m;
	}
	if (w->fault_reorder && rnd100(w) < w->fault_reorder) {
		w->fault_held = m;
		return NULL;
	}
	return m;
}

static void rx_frame(struct dworker *w, struct rte_mbuf *m);

static void rx_once(struct dworker *w)
{
	struct rte_mbuf *rx[RX_BURST];
	uint16_t n = rte_eth_rx_burst(w->port, w->queue, rx, RX_BURST);
	w->st.base.stats.rx_calls++;
	for (uint16_t i = 0; i < n; i++) {
		if (!w->fault_loss && !w->fault_reorder) {
			rx_frame(w, rx[i]);
			continue;
		}
		struct rte_mbuf *after, *m = fault_rx(w, rx[i], &after);
		if (m)
			rx_frame(w, m);
		if (after)
			rx_frame(w, after);
	}
	if (!n && w->fault_held) {
		struct rte_mbuf *m = w->fault_held; /* nothing followed: do not starve it */
		w->fault_held = NULL;
		rx_frame(w, m);
	}
}

static void rx_frame(struct dworker *w, struct rte_mbuf *m)
{
	if (m->nb_segs == 1) {
		unsigned fl = 0;
		if ((m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_GOOD)
			fl |= NS_RXF_IP_CSUM_OK;
		if ((m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_GOOD)
			fl |= NS_RXF_L4_CSUM_OK;
		ns_stack_input(&w->st, (struct ns_pkt *)m, rte_pktmbuf_mtod(m, uint8_t *),
			       m->data_len, fl);
	} else {
		w->st.xs.eth_drop++; /* no scatter configured: cannot happen, counted */
	}
	rte_pktmbuf_free(m); /* the stack holds its own references */
}

static unsigned d_poll(struct ns_worker *base, struct ns_event *ev, unsigned max, int timeout_ms)
{
	struct dworker *w = dw(base);
	uint64_t start = now_us();
	uint64_t deadline = timeout_ms > 0 ? start + (uint64_t)timeout_ms * 1000 : 0;
	unsigned spins = 0;

	for (;;) {
		w->st.now_us = now_us();
		rx_once(w);
		ns_stack_timers(&w->st);
		unsigned n = ns_stack_events(&w->st, ev, max);
		ns_stack_flush(&w->st); /* ACKs and window updates owed now */
		tx_flush(w);
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
	w->st.now_us = now_us();
	ns_stack_flush(&w->st);
	tx_flush(w);
}

static void d_wake(struct ns_worker *base)
{
	/* pairs with the acquire exchange in d_poll() */
	atomic_store_explicit(&dw(base)->wake, true, memory_order_release);
}

static void d_destroy(struct ns_transport *base)
{
	struct dtransport *t = (struct dtransport *)base;
	for (unsigned i = 0; i < base->nworkers; i++) {
		struct dworker *w = dw(base->workers[i]);
		if (!w)
			continue;
		ns_stack_fini(&w->st);
		if (w->fault_held)
			rte_pktmbuf_free(w->fault_held);
		for (unsigned j = 0; j < w->ntx; j++)
			rte_pktmbuf_free(w->txb[j]);
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

static int eal_init(const char *args, char *err, size_t errlen)
{
	if (eal_initialised)
		return 0;
	char *copy = strdup(args ? args : "");
	char *argv[MAX_ARGS + 1];
	int argc = 0;
	if (!copy) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	argv[argc++] = (char *)"tachyon";
	for (char *save = NULL, *tok = strtok_r(copy, " \t", &save); tok;
	     tok = strtok_r(NULL, " \t", &save)) {
		if (argc == MAX_ARGS) {
			snprintf(err, errlen, "too many EAL arguments (at most %d)", MAX_ARGS - 1);
			free(copy);
			return -E2BIG;
		}
		argv[argc++] = tok;
	}
	argv[argc] = NULL;
	int rc = rte_eal_init(argc, argv);
	if (rc < 0) {
		snprintf(err, errlen, "rte_eal_init(\"%s\"): %s", args ? args : "",
			 rte_strerror(rte_errno));
		free(copy);
		return -EINVAL;
	}
	eal_initialised = true;
	eal_args_copy = copy;
	return 0;
}

static int port_init(struct dtransport *t, unsigned nq, char *err, size_t errlen)
{
	struct rte_eth_dev_info info;
	uint16_t port = t->port;
	int rc = rte_eth_dev_info_get(port, &info);
	if (rc != 0) {
		snprintf(err, errlen, "port %u: dev_info: %s", port, rte_strerror(-rc));
		return rc;
	}
	if (info.max_rx_queues < nq || info.max_tx_queues < nq) {
		snprintf(err, errlen, "port %u (%s) has %u/%u queues, %u needed", port,
			 info.driver_name, info.max_rx_queues, info.max_tx_queues, nq);
		return -EINVAL;
	}
	struct rte_eth_conf conf;
	memset(&conf, 0, sizeof(conf));
	/* only what the device says it has */
	conf.rxmode.offloads = info.rx_offload_capa &
			       (RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_TCP_CKSUM);
	if (nq > 1) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf = info.flow_type_rss_offloads &
						   (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP);
	}
	rc = rte_eth_dev_configure(port, (uint16_t)nq, (uint16_t)nq, &conf);
	if (rc != 0) {
		snprintf(err, errlen, "port %u: configure: %s", port, rte_strerror(-rc));
		return rc;
	}
	uint16_t nrxd = NB_RXD, ntxd = NB_TXD;
	rte_eth_dev_adjust_nb_rx_tx_desc(port, &nrxd, &ntxd);
	int socket = rte_eth_dev_socket_id(port);
	if (socket < 0)
		socket = 0;
	for (unsigned q = 0; q < nq; q++) {
		struct rte_eth_rxconf rxc = info.default_rxconf;
		rxc.offloads = conf.rxmode.offloads;
		rc = rte_eth_rx_queue_setup(port, (uint16_t)q, nrxd, (unsigned)socket, &rxc, t->pool);
		if (rc == 0) {
			struct rte_eth_txconf txc = info.default_txconf;
			txc.offloads = 0;
			rc = rte_eth_tx_queue_setup(port, (uint16_t)q, ntxd, (unsigned)socket, &txc);
		}
		if (rc != 0) {
			snprintf(err, errlen, "port %u: queue %u setup: %s", port, q,
				 rte_strerror(-rc));
			return rc;
		}
	}
	rc = rte_eth_dev_start(port);
	if (rc != 0) {
		snprintf(err, errlen, "port %u: start: %s", port, rte_strerror(-rc));
		return rc;
	}
	t->port_started = true;
	struct rte_eth_link link;
	memset(&link, 0, sizeof(link));
	rte_eth_link_get_nowait(port, &link);
	fprintf(stderr, "netstack: dpdk port %u (%s): link %s, %u Mb/s, rx offloads 0x%llx\n",
		port, info.driver_name, link.link_status ? "up" : "down", link.link_speed,
		(unsigned long long)conf.rxmode.offloads);
	return 0;
}

static void fault_config(struct dworker *w)
{
	const char *f = getenv("TACHYON_NS_FAULT");
	unsigned loss = 0, reorder = 0, seed = 1;
	if (!f)
		return;
	for (const char *p = f; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
		if (!strncmp(p, "loss=", 5))
			loss = (unsigned)atoi(p + 5);
		else if (!strncmp(p, "reorder=", 8))
			reorder = (unsigned)atoi(p + 8);
		else if (!strncmp(p, "seed=", 5))
			seed = (unsigned)atoi(p + 5);
	}
	w->fault_loss = loss < 100 ? loss : 99;
	w->fault_reorder = reorder < 100 ? reorder : 99;
	w->rng = 0x9e3779b97f4a7c15ull ^ seed;
	fprintf(stderr, "netstack: TEST FAULT INJECTION: %u%% loss each way, %u%% reordered\n",
		w->fault_loss, w->fault_reorder);
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
	if (cfg->workers != 1) {
		snprintf(err, errlen, "the DPDK backend runs one worker for now (asked for %u): "
				      "multi-queue steering is not implemented yet", cfg->workers);
		return NULL;
	}
	if (eal_init(cfg->dpdk_args, err, errlen) != 0)
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
	char name[RTE_MEMPOOL_NAMESIZE];
	snprintf(name, sizeof(name), "ns_pool_%u", t->port);
	t->pool = rte_pktmbuf_pool_create(name, POOL_MBUFS, POOL_CACHE, 0,
					  RTE_MBUF_DEFAULT_BUF_SIZE, rte_socket_id());
	if (!t->pool) {
		snprintf(err, errlen, "mbuf pool: %s", rte_strerror(rte_errno));
		goto fail_port;
	}
	if (port_init(t, cfg->workers, err, errlen) != 0)
		goto fail_destroy;

	t->base.workers = calloc(cfg->workers, sizeof(*t->base.workers));
	if (!t->base.workers)
		goto fail_nomem;
	t->base.nworkers = cfg->workers;
	struct rte_ether_addr mac;
	rte_eth_macaddr_get(t->port, &mac);
	for (unsigned i = 0; i < cfg->workers; i++) {
		struct dworker *w = rte_zmalloc("ns_worker", sizeof(*w), RTE_CACHE_LINE_SIZE);
		if (!w)
			goto fail_nomem;
		t->base.workers[i] = &w->st.base;
		w->st.base.t = &t->base;
		w->st.base.idx = i;
		w->port = t->port;
		w->queue = (uint16_t)i;
		w->pool = t->pool;
		fault_config(w);
		struct ns_stack_cfg sc;
		ns_stack_cfg_defaults(&sc);
		sc.ip = ip;
		sc.netmask = mask;
		sc.gateway = gw;
		memcpy(sc.mac, mac.addr_bytes, NS_ETH_ALEN);
		sc.listen_port = cfg->port;
		sc.backlog = cfg->backlog > 0 ? (uint32_t)cfg->backlog : 1;
		sc.max_conns = cfg->max_conns;
		sc.rx_chunk = cfg->rx_chunk;
		sc.tx_limit = cfg->tx_limit;
		if (ns_stack_init(&w->st, &sc, &dpdk_dev_ops, w) != 0) {
			snprintf(err, errlen, "worker %u: stack initialisation failed", i);
			goto fail_destroy;
		}
		w->st.now_us = now_us();
		ns_stack_start(&w->st); /* gratuitous ARP */
		tx_flush(w);
	}
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
	if (rte_eth_stats_get(t->port, &s) == 0) {
		fprintf(f, "port%u.ipackets %llu\nport%u.opackets %llu\nport%u.ibytes %llu\n"
			   "port%u.obytes %llu\nport%u.imissed %llu\nport%u.ierrors %llu\n"
			   "port%u.oerrors %llu\nport%u.rx_nombuf %llu\n",
			t->port, (unsigned long long)s.ipackets, t->port,
			(unsigned long long)s.opackets, t->port, (unsigned long long)s.ibytes,
			t->port, (unsigned long long)s.obytes, t->port,
			(unsigned long long)s.imissed, t->port, (unsigned long long)s.ierrors,
			t->port, (unsigned long long)s.oerrors, t->port,
			(unsigned long long)s.rx_nombuf);
		for (unsigned q = 0; q < base->nworkers && q < RTE_ETHDEV_QUEUE_STAT_CNTRS; q++)
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
		P("tx_dropped", w->tx_dropped);
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
		P("tcp_challenge_acks", x->tcp_challenge_acks);
		P("tcp_syncookies_tx", x->tcp_syncookies_tx);
		P("tcp_syncookies_ok", x->tcp_syncookies_ok);
		P("tcp_tw_recycled", x->tcp_tw_recycled);
		P("tcp_timeouts", x->tcp_timeouts);
		P("tcp_delayed_acks", x->tcp_delayed_acks);
#undef P
	}
}

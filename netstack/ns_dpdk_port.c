/* SPDX-License-Identifier: MIT */
/*
 * The device under one stack instance on DPDK (see ns_dpdk_port.h): mbufs as struct ns_pkt,
 * batched transmission, test-only fault injection, and the start-up of EAL and of an ethdev
 * port (queues, offloads, symmetric RSS).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>

#include "ns_dpdk_port.h"

#define NB_RXD 1024
#define NB_TXD 1024
#define MAX_ARGS 64
#define RSS_KEY_MAX 64
#define STEER_MASK_DEFAULT 127 /* software steering: a 128-entry table of i % n */

/* ---- mbufs as stack packets --------------------------------------------------------------- */

void ns_dport_tx_flush(struct ns_dport *d)
{
	unsigned sent = 0;
	if (d->tx_ring) {
		/* single producer (this worker), single consumer (the worker with the queue) */
		sent = rte_ring_sp_enqueue_burst(d->tx_ring, (void **)d->txb, d->ntx, NULL);
	} else {
		for (unsigned tries = 0; sent < d->ntx && tries < 8; tries++) {
			sent += rte_eth_tx_burst(d->port, d->queue, d->txb + sent,
						 (uint16_t)(d->ntx - sent));
			d->st->base.stats.tx_calls++;
		}
	}
	for (unsigned i = sent; i < d->ntx; i++) {
		rte_pktmbuf_free(d->txb[i]);
		d->tx_dropped++;
	}
	d->ntx = 0;
}

static struct ns_pkt *dev_alloc(void *ctx, uint8_t **data)
{
	struct ns_dport *d = ctx;
	struct rte_mbuf *m = rte_pktmbuf_alloc(d->pool);
	if (!m)
		return NULL;
	*data = rte_pktmbuf_mtod(m, uint8_t *);
	return (struct ns_pkt *)m;
}

static unsigned rnd100(struct ns_dport *d)
{
	d->rng ^= d->rng << 13;
	d->rng ^= d->rng >> 7;
	d->rng ^= d->rng << 17;
	return (unsigned)(d->rng % 100);
}

static void dev_tx(void *ctx, struct ns_pkt *p, uint16_t len)
{
	struct ns_dport *d = ctx;
	struct rte_mbuf *m = (struct rte_mbuf *)p;
	if (d->fault_loss && rnd100(d) < d->fault_loss) {
		rte_pktmbuf_free(m);
		return;
	}
	m->data_len = len;
	m->pkt_len = len;
	d->txb[d->ntx++] = m;
	if (d->ntx == NS_DPORT_TX_BURST)
		ns_dport_tx_flush(d);
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

const struct ns_dev_ops ns_dport_ops = {
	.alloc = dev_alloc,
	.tx = dev_tx,
	.hold = dev_hold,
	.release = dev_release,
};

/* ---- input -------------------------------------------------------------------------------- */

static void input_now(struct ns_dport *d, struct rte_mbuf *m, unsigned extra)
{
	if (m->nb_segs == 1) {
		unsigned fl = extra;
		if ((m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_GOOD)
			fl |= NS_RXF_IP_CSUM_OK;
		if ((m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_GOOD)
			fl |= NS_RXF_L4_CSUM_OK;
		ns_stack_input(d->st, (struct ns_pkt *)m, rte_pktmbuf_mtod(m, uint8_t *),
			       m->data_len, fl);
	} else {
		d->st->xs.eth_drop++; /* no scatter configured: cannot happen, counted */
	}
	rte_pktmbuf_free(m); /* the stack holds its own references */
}

unsigned ns_dport_input(struct ns_dport *d, struct rte_mbuf *m, unsigned extra)
{
	if (!d->fault_loss && !d->fault_reorder) {
		input_now(d, m, extra);
		return 1;
	}
	if (d->fault_loss && rnd100(d) < d->fault_loss) {
		rte_pktmbuf_free(m);
		return 0;
	}
	if (d->fault_held) {
		struct rte_mbuf *held = d->fault_held; /* the delayed frame goes after this one */
		d->fault_held = NULL;
		input_now(d, m, extra);
		input_now(d, held, 0);
		return 2;
	}
	if (d->fault_reorder && rnd100(d) < d->fault_reorder) {
		/* held frames are never ARP copies (extra flags): those are not delayed */
		if (extra) {
			input_now(d, m, extra);
			return 1;
		}
		d->fault_held = m;
		return 0;
	}
	input_now(d, m, extra);
	return 1;
}

void ns_dport_input_idle(struct ns_dport *d)
{
	if (d->fault_held) {
		struct rte_mbuf *m = d->fault_held; /* nothing followed: do not starve it */
		d->fault_held = NULL;
		input_now(d, m, 0);
	}
}

/* ---- life --------------------------------------------------------------------------------- */

static void fault_config(struct ns_dport *d)
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
	d->fault_loss = loss < 100 ? loss : 99;
	d->fault_reorder = reorder < 100 ? reorder : 99;
	/* a different stream per queue, still reproducible from the seed */
	d->rng = 0x9e3779b97f4a7c15ull ^ seed ^ ((uint64_t)d->queue << 32) ^ d->port;
	if (!d->rng)
		d->rng = 1;
	fprintf(stderr, "netstack: TEST FAULT INJECTION: %u%% loss each way, %u%% reordered\n",
		d->fault_loss, d->fault_reorder);
}

void ns_dport_init(struct ns_dport *d, struct ns_stack *st, uint16_t port, uint16_t queue,
		   struct rte_mempool *pool)
{
	d->st = st;
	d->port = port;
	d->queue = queue;
	d->pool = pool;
	fault_config(d);
}

void ns_dport_fini(struct ns_dport *d)
{
	if (d->fault_held)
		rte_pktmbuf_free(d->fault_held);
	d->fault_held = NULL;
	for (unsigned j = 0; j < d->ntx; j++)
		rte_pktmbuf_free(d->txb[j]);
	d->ntx = 0;
}

uint64_t ns_dpdk_now_us(void)
{
	return rte_get_timer_cycles() * 1000000ull / rte_get_timer_hz();
}

static bool eal_initialised; /* EAL: once per process */
static char *eal_args_copy;  /* EAL keeps pointers into its argv for the process's life */

int ns_dpdk_eal_init(const char *args, char *err, size_t errlen)
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

/* Entry i of the indirection table sends hash & (size - 1) == i to queue i % nq, which is what
 * ns_steer_owner() computes when the workers are the queues. Returns 0 or -errno. */
static int reta_program(uint16_t port, uint16_t size, unsigned nq)
{
	struct rte_eth_rss_reta_entry64 reta[512 / RTE_ETH_RETA_GROUP_SIZE];
	if (size == 0 || size > 512 || (size & (size - 1)))
		return -ENOTSUP;
	memset(reta, 0, sizeof(reta));
	for (unsigned i = 0; i < size; i++) {
		reta[i / RTE_ETH_RETA_GROUP_SIZE].mask |= 1ull << (i % RTE_ETH_RETA_GROUP_SIZE);
		reta[i / RTE_ETH_RETA_GROUP_SIZE].reta[i % RTE_ETH_RETA_GROUP_SIZE] =
			(uint16_t)(i % nq);
	}
	return rte_eth_dev_rss_reta_update(port, reta, size);
}

int ns_dport_configure(uint16_t port, unsigned nq, struct rte_mempool *pool, uint32_t *reta_mask,
		       bool *rss, char *err, size_t errlen)
{
	struct rte_eth_dev_info info;
	uint8_t key[RSS_KEY_MAX];
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
	*reta_mask = STEER_MASK_DEFAULT;
	*rss = false;
	struct rte_eth_conf conf;
	memset(&conf, 0, sizeof(conf));
	/* only what the device says it has */
	conf.rxmode.offloads = info.rx_offload_capa &
			       (RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_TCP_CKSUM);
	uint64_t hf =
		info.flow_type_rss_offloads & (RTE_ETH_RSS_IPV4 | RTE_ETH_RSS_NONFRAG_IPV4_TCP);
	uint8_t klen = info.hash_key_size ? info.hash_key_size : 40;
	/* RSS only if TCP flows can be hashed on their ports with a key we choose: otherwise the
	 * device's spread would not match the steering and most frames would be handed over. */
	bool try_rss = nq > 1 && (hf & RTE_ETH_RSS_NONFRAG_IPV4_TCP) && klen <= RSS_KEY_MAX;
	for (int attempt = 0; attempt < 2; attempt++) {
		if (try_rss) {
			ns_rss_key(key, klen);
			conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
			conf.rx_adv_conf.rss_conf.rss_key = key;
			conf.rx_adv_conf.rss_conf.rss_key_len = klen;
			conf.rx_adv_conf.rss_conf.rss_hf = hf;
		} else {
			conf.rxmode.mq_mode = RTE_ETH_MQ_RX_NONE;
			memset(&conf.rx_adv_conf.rss_conf, 0, sizeof(conf.rx_adv_conf.rss_conf));
		}
		rc = rte_eth_dev_configure(port, (uint16_t)nq, (uint16_t)nq, &conf);
		if (rc == 0 || !try_rss)
			break;
		fprintf(stderr,
			"netstack: port %u (%s) refused symmetric RSS (%s); steering in "
			"software\n",
			port, info.driver_name, rte_strerror(-rc));
		try_rss = false;
	}
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
		rc = rte_eth_rx_queue_setup(port, (uint16_t)q, nrxd, (unsigned)socket, &rxc, pool);
		if (rc == 0) {
			struct rte_eth_txconf txc = info.default_txconf;
			txc.offloads = 0;
			rc = rte_eth_tx_queue_setup(port, (uint16_t)q, ntxd, (unsigned)socket,
						    &txc);
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
	if (try_rss) {
		int r = reta_program(port, info.reta_size, nq);
		if (r == 0)
			*reta_mask = (uint32_t)info.reta_size - 1;
		else if (info.reta_size)
			fprintf(stderr,
				"netstack: port %u: indirection table (%u entries) not "
				"programmed (%s); frames of other queues are handed over\n",
				port, info.reta_size, rte_strerror(r < 0 ? -r : r));
		*rss = true;
	}
	struct rte_eth_link link;
	memset(&link, 0, sizeof(link));
	rte_eth_link_get_nowait(port, &link);
	fprintf(stderr,
		"netstack: dpdk port %u (%s): link %s, %u Mb/s, %u queue pair%s, rss %s, "
		"rx offloads 0x%llx\n",
		port, info.driver_name, link.link_status ? "up" : "down", link.link_speed, nq,
		nq == 1 ? "" : "s", *rss ? "symmetric" : "off",
		(unsigned long long)conf.rxmode.offloads);
	return 0;
}

int ns_dport_rx_depth(uint16_t port, unsigned frames)
{
	struct rte_eth_dev_info info;
	int rc = rte_eth_dev_info_get(port, &info);
	if (rc != 0)
		return rc;
	/* Only net_tap has a kernel queue in front of its RX queue; elsewhere the descriptor
	 * ring is the RX buffer, sized at configure time. */
	if (strcmp(info.driver_name, "net_tap") != 0 || !info.if_index)
		return 0;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	if (!if_indextoname(info.if_index, ifr.ifr_name))
		return -errno;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	rc = ioctl(fd, SIOCGIFTXQLEN, &ifr);
	if (rc == 0 && (unsigned)ifr.ifr_qlen < frames) {
		ifr.ifr_qlen = (int)frames;
		rc = ioctl(fd, SIOCSIFTXQLEN, &ifr);
	}
	rc = rc == 0 ? 0 : -errno;
	close(fd);
	if (rc == 0)
		fprintf(stderr, "netstack: dpdk port %u (net_tap %s): kernel queue %d frames\n",
			port, ifr.ifr_name, ifr.ifr_qlen);
	return rc;
}

/* SPDX-License-Identifier: MIT */
/*
 * Load generator transport: Tachyon's own TCP/IP stack (netstack/ns_stack.h) on a DPDK port,
 * so a run needs no kernel socket, file descriptor or system call per connection or message:
 * tachyond --backend dpdk in one process, bench_loadgen --dpdk-args in another, the two joined
 * by a net_memif pair (a shared-memory link between two processes on this host).
 *
 * Start-up (setup, main thread): EAL from --dpdk-args, the first ethdev port, which must be a
 * net_memif or net_ring device (this tool never loads a network: both are links inside this
 * host), an mbuf pool, one RX/TX queue pair per worker thread (ns_dport_configure, as the
 * broker's backend does), then a wait for the link (a memif link is up once both ends are).
 *
 * Per worker thread: one stack per source address (--ip A.B.C.D/LEN is the first, --src-ips N
 * adds the next N-1), all on the thread's queue pair, because one address reaches one broker
 * port from at most 28k local ports. Received frames go to the stack of their destination
 * address (ARP: target address). Connection k uses stack k % N. With several threads the
 * stacks pick local ports whose flows ns_steer_owner() gives to their own thread, as the
 * broker's workers do; the broker must then run as many workers as we run threads on the
 * same kind of link, so that flow ownership agrees on both ends.
 *
 * ARP: the first connection on each stack goes alone; the others wait (deferred[]) until it
 * is established, so one ARP exchange serves them all instead of each SYN but one being
 * dropped while the broker's address is unresolved (the stack holds one packet per entry).
 *
 * Receiving: the stack reports zero-copy views of at most rx_chunk bytes per connection per
 * ns_stack_events(); lg_conn_input() copies them into the connection's buffer. rx_chunk is
 * half the smallest receive buffer, and a connection with less room than rx_chunk left has
 * its receive paused (the stack then holds the data and closes its window) until a WRITABLE
 * event let it answer the packets it held, so a delivery always fits.
 *
 * Sending: ns_stack_send() copies into the connection's send queue (tx_limit bytes); a write
 * that does not fit is refused whole, so send() then offers what fits and reports the rest
 * as refused; the refusal makes the stack report WRITABLE once the queue drained.
 *
 * Polling busy-waits like the broker's backend, with a short sleep after a run of empty polls
 * (IDLE_SPINS), so two busy pollers can share a small host.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>

#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "bench_lg.h"
#include "ns.h"
#include "ns_dpdk_port.h"

#define POOL_MBUFS 32767
#define POOL_CACHE 256
#define EVENTS 64
#define IDLE_SPINS 2000 /* empty polls before sleeping IDLE_SLEEP_NS */
#define IDLE_SLEEP_NS 50000
#define CLOSE_WAIT_NS 3000000000ull /* at the end, how long closes may take to complete */

/* Process-wide: the device. */
struct nglobal {
	uint16_t port;
	bool eal_up;
	bool port_up;
	struct rte_mempool *pool;
	uint32_t reta_mask;
	uint32_t ip0;  /* our first address, network order */
	uint32_t mask; /* network order */
	uint32_t raddr; /* the broker, network order */
	uint16_t rport;
};

/* One stack (source address) of a thread. */
struct nstack {
	struct ns_stack st;
	struct ns_dport dp;
	bool up;
	bool arp_ok;	  /* a connection got through: the broker's address is resolved */
	bool probing;	  /* the first connection is on its way */
	struct lg_conn **deferred; /* opens waiting for arp_ok */
	uint32_t ndeferred;
};

struct nthread {
	struct nglobal *g;
	struct lg_thread *th;
	uint16_t queue;
	unsigned nstacks;
	struct nstack *stacks;
	bool registered; /* an EAL lcore id of our own (mempool cache) */
	bool closing;	 /* thread_fini: only CLOSED events matter now */
	uint32_t rx_chunk;
	uint64_t nopen; /* handles whose CLOSED was not reported yet */
	struct rte_mbuf *rx[NS_DPORT_RX_BURST];
	struct ns_event ev[EVENTS];
};

/* ---- process-wide ---- */

static bool device_is_local(uint16_t port, char *name, size_t len)
{
	struct rte_eth_dev_info info;

	if (rte_eth_dev_info_get(port, &info) != 0 || !info.driver_name)
		return false;
	snprintf(name, len, "%s", info.driver_name);
	return !strcmp(info.driver_name, "net_memif") || !strcmp(info.driver_name, "net_ring");
}

/* True once the link is down, or after secs seconds. */
static bool wait_link(uint16_t port, bool up, double secs)
{
	uint64_t until = lg_now_ns() + (uint64_t)(secs * 1e9);
	struct timespec ms = {0, 10000000};

	for (;;) {
		struct rte_eth_link link;
		if (rte_eth_link_get_nowait(port, &link) == 0 && (link.link_status != 0) == up)
			return true;
		if (lg_now_ns() >= until)
			return false;
		nanosleep(&ms, NULL);
	}
}

static void n_teardown(struct lg_run *run)
{
	struct nglobal *g = run->tp_ctx;

	if (!g)
		return;
	if (g->port_up && run->cfg.wait_peer > 0) {
		/*
		 * A DPDK 22.11 memif server unmaps its client's shared memory from its control
		 * thread when the client leaves, while its data path may be reading it (seen as
		 * a SIGSEGV in the broker's rx burst). Our threads have stopped polling, so the
		 * safe order is the other one: the broker's end goes first.
		 */
		fprintf(stderr, "bench_loadgen: waiting for the link to go down (the broker's "
				"end to stop)\n");
		if (!wait_link(g->port, false, run->cfg.wait_peer)) {
			fprintf(stderr, "bench_loadgen: the link is still up after %.1f s\n",
				run->cfg.wait_peer);
		} else {
			/*
			 * The link reads down from inside the PMD's disconnect handling, which
			 * runs on EAL's interrupt thread and goes on after that: closing the
			 * port and rte_eal_cleanup() unmapping memory under it crashed that
			 * thread (SIGSEGV in the memif PMD, core dump, 1 run in ~10). Let it
			 * finish first.
			 */
			struct timespec settle = {0, 300000000};
			nanosleep(&settle, NULL);
		}
	}
	if (g->port_up) {
		rte_eth_dev_stop(g->port);
		rte_eth_dev_close(g->port);
	}
	rte_mempool_free(g->pool);
	bool eal = g->eal_up;
	free(g);
	run->tp_ctx = NULL;
	if (eal)
		rte_eal_cleanup();
}

static int n_setup(struct lg_run *run, char *err, size_t errlen)
{
	const struct lg_cfg *cfg = &run->cfg;
	struct nglobal *g;
	char drv[64];
	bool rss;
	int rc;

	g = calloc(1, sizeof(*g));
	if (!g) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	run->tp_ctx = g;
	if (ns_parse_cidr(cfg->ns_ip, &g->ip0, &g->mask)) {
		snprintf(err, errlen, "--ip: '%s' is not A.B.C.D/LEN", cfg->ns_ip);
		rc = -EINVAL;
		goto fail;
	}
	if (inet_pton(AF_INET, cfg->host, &g->raddr) != 1) {
		snprintf(err, errlen, "--host: '%s' is not an IPv4 address (netstack transport)",
			 cfg->host);
		rc = -EINVAL;
		goto fail;
	}
	g->rport = (uint16_t)strtoul(cfg->port, NULL, 10);
	rc = ns_dpdk_eal_init(cfg->dpdk_args, err, errlen);
	if (rc)
		goto fail;
	g->eal_up = true;
	uint16_t pid;
	bool found = false;
	RTE_ETH_FOREACH_DEV(pid)
	{
		g->port = pid;
		found = true;
		break;
	}
	if (!found) {
		snprintf(err, errlen, "no DPDK port (give --vdev=net_memif0,...)");
		rc = -ENODEV;
		goto fail;
	}
	if (!device_is_local(g->port, drv, sizeof(drv))) {
		snprintf(err, errlen,
			 "port %u is a %s device; only net_memif and net_ring (links inside this "
			 "host) are allowed",
			 g->port, drv);
		rc = -EPERM;
		goto fail;
	}
	struct rte_eth_dev_info info;
	if (rte_eth_dev_info_get(g->port, &info) == 0 &&
	    (info.max_rx_queues < cfg->threads || info.max_tx_queues < cfg->threads)) {
		snprintf(err, errlen, "%s has %u queue pairs; use --threads %u or fewer", drv,
			 info.max_rx_queues, info.max_rx_queues);
		rc = -EINVAL;
		goto fail;
	}
	g->pool = rte_pktmbuf_pool_create("lg_pool", POOL_MBUFS, POOL_CACHE, 0,
					  RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
	if (!g->pool) {
		snprintf(err, errlen, "mbuf pool: %s", rte_strerror(rte_errno));
		rc = -ENOMEM;
		goto fail;
	}
	rc = ns_dport_configure(g->port, cfg->threads, g->pool, &g->reta_mask, &rss, err, errlen);
	if (rc)
		goto fail;
	g->port_up = true;
	/* A memif link comes up once the other end connected to its socket. */
	if (!wait_link(g->port, true, cfg->connect_timeout)) {
		snprintf(err, errlen, "%s link still down after %.1f s (is the broker's end there?)",
			 drv, cfg->connect_timeout);
		rc = -ETIMEDOUT;
		goto fail;
	}
	return 0;
fail:
	n_teardown(run);
	return rc;
}

/* ---- per thread ---- */

static void stacks_set_now(struct nthread *nt)
{
	uint64_t now = ns_dpdk_now_us();
	for (unsigned k = 0; k < nt->nstacks; k++)
		nt->stacks[k].st.now_us = now;
}

static int connect_now(struct nthread *nt, struct nstack *s, struct lg_conn *c)
{
	struct ns_conn *nc = NULL;
	/*
	 * The stack seeds its local-port walk with its clock: a fresh reading per connect, or a
	 * burst of opens in one poll would retry the same 256 candidate ports and run out.
	 */
	s->st.now_us = ns_dpdk_now_us();
	int rc = ns_stack_connect(&s->st, nt->g->raddr, nt->g->rport, &nc);

	if (rc) {
		lg_fail(nt->th->run, "%s %u: connect: %s", lg_conn_role(c), c->idx, strerror(-rc));
		return -1;
	}
	ns_conn_set_user(nc, c);
	c->tp.ns.conn = nc;
	c->tp.ns.paused = false;
	nt->nopen++;
	return 0;
}

static int n_open(struct lg_thread *th, struct lg_conn *c)
{
	struct nthread *nt = th->tp;
	unsigned k = (unsigned)((uint32_t)(c - th->run->conns) % nt->nstacks);
	struct nstack *s = &nt->stacks[k];

	c->tp.ns.stack = (uint16_t)k;
	if (!s->arp_ok && s->probing) {
		s->deferred[s->ndeferred++] = c;
		return 0;
	}
	s->probing = true;
	return connect_now(nt, s, c);
}

static int n_send(struct lg_conn *c, const uint8_t *p, uint32_t len)
{
	struct nthread *nt = c->th->tp;
	struct ns_conn *nc = c->tp.ns.conn;
	uint32_t limit = nt->stacks[c->tp.ns.stack].st.cfg.tx_limit;
	struct iovec v = {(void *)(uintptr_t)p, len};
	int rc;

	if (!nc) {
		lg_fail(c->th->run, "%s %u: output for a closed connection", lg_conn_role(c),
			c->idx);
		return -1;
	}
	size_t pending = ns_stack_pending(nc);
	rc = ns_stack_send(nc, &v, 1);
	if (rc == 0)
		return (int)len;
	if (rc == -ENOBUFS) {
		/* Refused whole (WRITABLE will follow): offer what fits. */
		uint32_t room = pending < limit ? limit - (uint32_t)pending : 0;
		if (!room || room >= len)
			return 0;
		v.iov_len = room;
		rc = ns_stack_send(nc, &v, 1);
		if (rc == 0)
			return (int)room;
	}
	lg_fail(c->th->run, "%s %u: send to the broker failed: %s", lg_conn_role(c), c->idx,
		strerror(-rc));
	return -1;
}

static void n_flush(struct lg_thread *th)
{
	struct nthread *nt = th->tp;

	stacks_set_now(nt);
	for (unsigned k = 0; k < nt->nstacks; k++) {
		ns_stack_flush(&nt->stacks[k].st);
		ns_dport_tx_flush(&nt->stacks[k].dp);
	}
}

static void n_close(struct lg_conn *c, bool graceful)
{
	if (c->tp.ns.conn)
		ns_stack_close(c->tp.ns.conn, graceful); /* its CLOSED event follows */
}

/* The stack a received frame is for: its destination address (ARP: target address). */
static unsigned frame_stack(const struct nthread *nt, const struct rte_mbuf *m)
{
	const uint8_t *f = rte_pktmbuf_mtod(m, const uint8_t *);
	uint32_t len = rte_pktmbuf_data_len(m), dst;

	if (nt->nstacks == 1 || len < 14)
		return 0;
	uint16_t type = (uint16_t)(f[12] << 8 | f[13]);
	if (type == 0x0800 && len >= 34)
		memcpy(&dst, f + 30, 4);
	else if (type == 0x0806 && len >= 42)
		memcpy(&dst, f + 38, 4);
	else
		return 0; /* stack 0 counts what nobody wants */
	uint32_t k = ntohl(dst) - ntohl(nt->g->ip0);
	return k < nt->nstacks ? k : 0;
}

static int on_event(struct nthread *nt, struct nstack *s, const struct ns_event *e, uint64_t now)
{
	/* An ACCEPT carries no user (ns.h); ours was set right after ns_stack_connect(). */
	struct lg_conn *c = e->type == NS_EV_ACCEPT ? ns_conn_user(e->conn) : e->user;

	if (!c)
		return 0;
	if (e->type == NS_EV_CLOSED) {
		c->tp.ns.conn = NULL;
		nt->nopen--;
		if (nt->closing || c->state == LG_CS_CLOSED)
			return 0;
		return lg_conn_lost(c, e->err);
	}
	if (nt->closing || c->state == LG_CS_CLOSED)
		return 0;
	switch (e->type) {
	case NS_EV_ACCEPT: /* our active open is established */
		if (!s->arp_ok) {
			s->arp_ok = true;
			for (uint32_t k = 0; k < s->ndeferred; k++)
				if (connect_now(nt, s, s->deferred[k]))
					return -1;
			s->ndeferred = 0;
		}
		return c->state == LG_CS_CONNECTING ? lg_conn_established(c, now) : 0;
	case NS_EV_DATA:
		if (lg_conn_input(c, e->data, e->len, now))
			return -1;
		if (!c->tp.ns.paused && c->tp.ns.conn && c->in_cap - c->in_len < nt->rx_chunk) {
			ns_stack_pause_rx(c->tp.ns.conn, true);
			c->tp.ns.paused = true;
		}
		return 0;
	case NS_EV_WRITABLE:
		if (lg_conn_writable(c, now))
			return -1;
		if (c->tp.ns.paused && c->tp.ns.conn && c->in_cap - c->in_len >= nt->rx_chunk) {
			ns_stack_pause_rx(c->tp.ns.conn, false);
			c->tp.ns.paused = false;
		}
		return 0;
	default:
		return 0;
	}
}

/* One round: receive, timers, events, transmit. Returns the events handled, or -1. */
static int poll_once(struct nthread *nt)
{
	struct nglobal *g = nt->g;
	int handled = 0;

	stacks_set_now(nt);
	uint16_t n = rte_eth_rx_burst(g->port, nt->queue, nt->rx, NS_DPORT_RX_BURST);
	for (uint16_t i = 0; i < n; i++)
		ns_dport_input(&nt->stacks[frame_stack(nt, nt->rx[i])].dp, nt->rx[i], 0);
	uint64_t now = lg_now_ns();
	for (unsigned k = 0; k < nt->nstacks; k++) {
		struct nstack *s = &nt->stacks[k];
		if (!n)
			ns_dport_input_idle(&s->dp);
		ns_stack_timers(&s->st);
		unsigned got;
		do {
			got = ns_stack_events(&s->st, nt->ev, EVENTS);
			for (unsigned i = 0; i < got; i++)
				if (on_event(nt, s, &nt->ev[i], now))
					return -1;
			handled += (int)got;
		} while (got == EVENTS);
		ns_stack_flush(&s->st); /* ACKs and window updates owed now */
		ns_dport_tx_flush(&s->dp);
	}
	return handled;
}

static int n_poll(struct lg_thread *th, uint64_t timeout_ns)
{
	struct nthread *nt = th->tp;
	uint64_t deadline = lg_now_ns() + timeout_ns;
	unsigned spins = 0;

	for (;;) {
		int n = poll_once(nt);
		if (n < 0)
			return -1;
		if (n > 0 || lg_now_ns() >= deadline)
			return 0;
		if (++spins >= IDLE_SPINS) {
			struct timespec ts = {0, IDLE_SLEEP_NS};
			nanosleep(&ts, NULL);
			spins = IDLE_SPINS / 2;
		}
	}
}

static void n_thread_fini(struct lg_thread *th)
{
	struct nthread *nt = th->tp;

	if (!nt)
		return;
	/* Let the closes (DISCONNECT, FIN) complete, so the broker is not left holding them. */
	nt->closing = true;
	uint64_t until = lg_now_ns() + CLOSE_WAIT_NS;
	while (nt->nopen && lg_now_ns() < until)
		if (poll_once(nt) == 0) {
			struct timespec ts = {0, IDLE_SLEEP_NS};
			nanosleep(&ts, NULL);
		}
	for (unsigned k = 0; k < nt->nstacks; k++) {
		struct nstack *s = &nt->stacks[k];
		const struct ns_stack_stats *x = &s->st.xs;
		char tcp[512];
		if (s->up)
			fprintf(stderr,
				"bench_loadgen: netstack thread %d stack %u: rx_frames %llu, "
				"tx_frames %llu, tx_dropped %llu, tx_nobuf %llu, arp_miss_drop %llu, "
				"%s\n",
				th->id, k, (unsigned long long)x->rx_frames,
				(unsigned long long)x->tx_frames, (unsigned long long)s->dp.tx_dropped,
				(unsigned long long)x->tx_nobuf, (unsigned long long)x->arp_miss_drop,
				ns_stack_tcp_counters(x, tcp, sizeof(tcp)));
		if (s->up)
			ns_stack_fini(&s->st);
		ns_dport_fini(&s->dp);
		free(s->deferred);
	}
	for (uint32_t k = 0; k < th->nconns; k++)
		th->conns[k]->tp.ns.conn = NULL;
	if (nt->registered)
		rte_thread_unregister();
	free(nt->stacks);
	free(nt);
	th->tp = NULL;
}

static int n_thread_init(struct lg_thread *th)
{
	struct lg_run *run = th->run;
	struct nglobal *g = run->tp_ctx;
	struct nthread *nt = calloc(1, sizeof(*nt));
	struct rte_ether_addr mac;
	struct ns_stack_cfg sc;

	if (!nt)
		goto nomem;
	th->tp = nt;
	nt->g = g;
	nt->th = th;
	nt->queue = (uint16_t)th->id;
	nt->nstacks = run->cfg.src_ips;
	nt->stacks = calloc(nt->nstacks, sizeof(*nt->stacks));
	if (!nt->stacks)
		goto nomem;
	/* An EAL lcore id gives this thread a mempool cache; without one, the shared ring. */
	if (rte_lcore_id() == LCORE_ID_ANY)
		nt->registered = rte_thread_register() == 0;
	uint32_t min_in = UINT32_MAX;
	for (uint32_t k = 0; k < th->nconns; k++)
		if (th->conns[k]->in_cap < min_in)
			min_in = th->conns[k]->in_cap;
	nt->rx_chunk = min_in / 2;

	rte_eth_macaddr_get(g->port, &mac);
	ns_stack_cfg_defaults(&sc);
	sc.netmask = g->mask;
	memcpy(sc.mac, mac.addr_bytes, NS_ETH_ALEN);
	sc.listen_port = 0;
	sc.max_conns = th->nconns / nt->nstacks + 64;
	sc.rx_chunk = nt->rx_chunk;
	sc.steer_workers = (uint16_t)run->cfg.threads;
	sc.steer_self = (uint16_t)th->id;
	sc.steer_mask = g->reta_mask;
	for (unsigned k = 0; k < nt->nstacks; k++) {
		struct nstack *s = &nt->stacks[k];
		s->deferred = calloc(th->nconns + 1, sizeof(*s->deferred));
		if (!s->deferred)
			goto nomem;
		sc.ip = htonl(ntohl(g->ip0) + k);
		ns_dport_init(&s->dp, &s->st, g->port, nt->queue, g->pool);
		if (ns_stack_init(&s->st, &sc, &ns_dport_ops, &s->dp)) {
			lg_fail(run, "thread %d: stack %u: initialisation failed", th->id, k);
			n_thread_fini(th);
			return -1;
		}
		s->up = true;
		s->st.now_us = ns_dpdk_now_us();
		ns_stack_start(&s->st); /* a gratuitous ARP: the broker may learn us early */
		ns_dport_tx_flush(&s->dp);
	}
	return 0;
nomem:
	lg_fail(run, "out of memory");
	n_thread_fini(th);
	return -1;
}

const struct lg_transport lg_tp_ns = {
	.name = "netstack",
	.setup = n_setup,
	.teardown = n_teardown,
	.thread_init = n_thread_init,
	.thread_fini = n_thread_fini,
	.open = n_open,
	.send = n_send,
	.flush = n_flush,
	.poll = n_poll,
	.close = n_close,
};

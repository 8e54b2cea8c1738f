/* SPDX-License-Identifier: MIT */
/*
 * Issue #6 at a small scale: the DPDK backend's poll must take in every frame waiting in its
 * RX queue before its retransmission timers run. The backend (ns_create, ns_poll: the code
 * tachyond runs) serves on a net_ring port joined back to back with a second port, on which a
 * bare client stack (ns_dport, as in ns_s2s.c) opens CONNS connections. The server sends one
 * byte on each; the client acknowledges them all, so CONNS ACKs wait in the server's RX ring
 * while the server is not polled for longer than its RTO, as when a burst of answers to
 * 100,000 idle connections comes back faster than one core reads it. Then one ns_poll():
 *
 *   - no retransmission timeout may fire: every connection's ACK was already there. (A poll
 *     round of one RX burst, then timers, fired the RTO of every connection whose ACK lay
 *     further back than one burst: CONNS - 32 spurious retransmissions here; at 100,000 idle
 *     connections on net_tap, storms that never let some of them through.)
 *   - every byte is acknowledged (ns_conn_pending() is 0 on every connection).
 *
 * Then data the other way: the client sends one byte on each connection while the server is
 * not polled; draining the backlog must lose nothing (every byte reaches the server; the most
 * segments the stack held at once is printed).
 *
 *   ns_backlog FILE_PREFIX [CONNS]
 *
 * Needs no root and no device: --no-huge --no-pci, EAL files under FILE_PREFIX (removed by
 * the caller). Exit status 0 only if every check held.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "ns.h"
#include "ns_dpdk_port.h"
#include "ns_tcp.h"

#define PORT 1883
#define RING 16384
#define CLIENT_POOL 16383
#define DEADLINE_US (30 * 1000000ull)

static struct ns_stack cli;
static struct ns_dport cli_dp;

/* One round of the client stack: what its port received, timers, events, output. */
static unsigned client_round(unsigned *data_seen)
{
	struct rte_mbuf *rx[NS_DPORT_RX_BURST];
	struct ns_event ev[256];
	cli.now_us = ns_dpdk_now_us();
	uint16_t n;
	while ((n = rte_eth_rx_burst(cli_dp.port, 0, rx, NS_DPORT_RX_BURST)) > 0)
		for (uint16_t i = 0; i < n; i++)
			ns_dport_input(&cli_dp, rx[i], 0);
	ns_stack_timers(&cli);
	unsigned k = ns_stack_events(&cli, ev, 256), accepted = 0;
	for (unsigned i = 0; i < k; i++) {
		if (ev[i].type == NS_EV_ACCEPT)
			accepted++;
		else if (ev[i].type == NS_EV_DATA && data_seen)
			*data_seen += ev[i].len;
	}
	ns_stack_flush(&cli);
	ns_dport_tx_flush(&cli_dp);
	return accepted;
}

static const struct ns_stack_stats *server_stats(struct ns_worker *w)
{
	return &((struct ns_stack *)w)->xs; /* the backend's worker is a stack (ns_dpdk.c) */
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: ns_backlog FILE_PREFIX [CONNS]\n");
		return 2;
	}
	unsigned conns = argc > 2 ? (unsigned)atoi(argv[2]) : 3000;
	if (conns < 64 || conns > 12000) {
		fprintf(stderr, "ns_backlog: CONNS must be 64..12000\n");
		return 2;
	}
	unsetenv("TACHYON_NS_FAULT");
	unsetenv("TACHYON_NS_QUEUES");
	char eal[256], err[256];
	snprintf(eal, sizeof(eal),
		 "--no-huge -m 512 --no-pci --no-telemetry -l 0 --log-level=*:warning "
		 "--file-prefix=%s",
		 argv[1]);
	if (ns_dpdk_eal_init(eal, err, sizeof(err)) != 0) {
		fprintf(stderr, "ns_backlog: %s\n", err);
		return 1;
	}
	int status = 1;
	struct ns_transport *t = NULL;
	bool cli_up = false;
	struct ns_conn **sconn = calloc(conns, sizeof(*sconn));
	struct ns_event *ev = calloc(1024, sizeof(*ev));
	struct rte_ring *to_srv = rte_ring_create("bl_to_srv", RING, SOCKET_ID_ANY, 0);
	struct rte_ring *to_cli = rte_ring_create("bl_to_cli", RING, SOCKET_ID_ANY, 0);
	struct rte_mempool *pool = rte_pktmbuf_pool_create("bl_cli_pool", CLIENT_POOL, 256, 0,
							   RTE_MBUF_DEFAULT_BUF_SIZE, 0);
	if (!sconn || !ev || !to_srv || !to_cli || !pool) {
		fprintf(stderr, "ns_backlog: set-up: %s\n", rte_strerror(rte_errno));
		goto out;
	}
	/* the first port is the backend's (ns_dpdk_create takes the first ethdev port) */
	int ps = rte_eth_from_rings("bl_srv", &to_srv, 1, &to_cli, 1, 0);
	int pc = rte_eth_from_rings("bl_cli", &to_cli, 1, &to_srv, 1, 0);
	if (ps != 0 || pc < 0) {
		fprintf(stderr, "ns_backlog: rte_eth_from_rings: %d %d\n", ps, pc);
		goto out;
	}
	struct ns_config cfg;
	ns_config_defaults(&cfg);
	cfg.backend = NS_BACKEND_DPDK;
	cfg.workers = 1;
	cfg.port = PORT;
	cfg.ip = "10.98.0.2/24";
	cfg.dpdk_args = eal;
	cfg.max_conns = conns + 16;
	cfg.backlog = (int)conns;
	t = ns_create(&cfg, err, sizeof(err));
	if (!t) {
		fprintf(stderr, "ns_backlog: ns_create: %s\n", err);
		goto out;
	}
	struct ns_worker *w = ns_worker_get(t, 0);

	uint32_t mask;
	bool rss;
	if (ns_dport_configure((uint16_t)pc, 1, pool, &mask, &rss, err, sizeof(err)) != 0) {
		fprintf(stderr, "ns_backlog: %s\n", err);
		goto out;
	}
	struct ns_stack_cfg sc;
	struct rte_ether_addr mac;
	uint32_t addr, nmask;
	ns_stack_cfg_defaults(&sc);
	ns_parse_cidr("10.98.0.1/24", &addr, &nmask);
	sc.ip = addr;
	sc.netmask = nmask;
	rte_eth_macaddr_get((uint16_t)pc, &mac);
	memcpy(sc.mac, mac.addr_bytes, NS_ETH_ALEN);
	sc.max_conns = conns + 16;
	sc.delack_ms = 1; /* acknowledge the server's byte at once */
	ns_dport_init(&cli_dp, &cli, (uint16_t)pc, 0, pool);
	if (ns_stack_init(&cli, &sc, &ns_dport_ops, &cli_dp) != 0) {
		fprintf(stderr, "ns_backlog: client stack\n");
		goto out;
	}
	cli_up = true;
	uint32_t srv_ip;
	ns_parse_cidr("10.98.0.2/24", &srv_ip, &nmask);

	/* ---- CONNS connections, accepted by the backend ---- */
	uint64_t deadline = ns_dpdk_now_us() + DEADLINE_US;
	unsigned opened = 0, established = 0, accepted = 0;
	while (accepted < conns || established < conns) {
		if (ns_dpdk_now_us() > deadline) {
			fprintf(stderr, "ns_backlog: %u/%u established, %u accepted in time\n",
				established, conns, accepted);
			goto out;
		}
		for (unsigned k = 0; k < 64 && opened < conns; k++) {
			struct ns_conn *c;
			cli.now_us = ns_dpdk_now_us();
			if (ns_stack_connect(&cli, srv_ip, PORT, &c) != 0) {
				fprintf(stderr, "ns_backlog: connect %u failed\n", opened);
				goto out;
			}
			opened++;
		}
		established += client_round(NULL);
		unsigned n = ns_poll(w, ev, 1024, 0);
		for (unsigned i = 0; i < n; i++)
			if (ev[i].type == NS_EV_ACCEPT)
				sconn[accepted++] = ev[i].conn;
		ns_flush(w);
	}
	/* quiet: the handshakes' last ACKs are in, nothing is outstanding */
	for (int i = 0; i < 20; i++) {
		client_round(NULL);
		ns_poll(w, ev, 1024, 0);
		usleep(1000);
	}
	uint64_t rto0 = server_stats(w)->tcp_rto_fired;

	/* ---- one byte from the server on each; the client's ACKs pile up in the server's ring */
	for (unsigned i = 0; i < conns; i++) {
		struct iovec v = {(void *)"p", 1};
		if (ns_send(sconn[i], &v, 1) != 0) {
			fprintf(stderr, "ns_backlog: ns_send on %u failed\n", i);
			goto out;
		}
	}
	ns_flush(w);
	unsigned seen = 0;
	uint64_t until = ns_dpdk_now_us() + 100000;
	while (ns_dpdk_now_us() < until || seen < conns) {
		client_round(&seen);
		if (ns_dpdk_now_us() > deadline) {
			fprintf(stderr, "ns_backlog: the client saw %u of %u bytes\n", seen, conns);
			goto out;
		}
	}
	unsigned waiting = rte_ring_count(to_srv);
	/* longer than any RTO the server can have here: rto_init (1 s) or, after an RTT sample of
	 * microseconds, rto_min (200 ms) */
	usleep(1300 * 1000);
	ns_poll(w, ev, 1024, 0);
	uint64_t spurious = server_stats(w)->tcp_rto_fired - rto0;
	size_t unacked = 0;
	for (unsigned i = 0; i < conns; i++)
		unacked += ns_conn_pending(sconn[i]);
	printf("backlog: %u ACKs waiting in the server's RX ring; after one poll: %" PRIu64
	       " retransmission timeouts, %zu bytes unacknowledged\n",
	       waiting, spurious, unacked);
	bool ok = true;
	if (waiting < conns) {
		fprintf(stderr, "ns_backlog: only %u ACKs were waiting (want %u)\n", waiting,
			conns);
		ok = false;
	}
	if (spurious != 0) {
		fprintf(stderr,
			"ns_backlog: FAIL: %" PRIu64 " retransmission timeouts fired with their "
			"ACKs unread in the RX queue\n",
			spurious);
		ok = false;
	}
	if (unacked != 0) {
		fprintf(stderr, "ns_backlog: FAIL: %zu bytes still unacknowledged\n", unacked);
		ok = false;
	}

	/* ---- one byte from the client on each: data frames waiting, held within budget ---- */
	unsigned sent = 0;
	for (struct ns_tcb *tc = cli.all; tc; tc = tc->all_next) {
		if (tc->state != TS_ESTABLISHED)
			continue;
		struct iovec v = {(void *)"q", 1};
		if (ns_stack_send(&tc->base, &v, 1) == 0)
			sent++;
	}
	client_round(NULL);
	usleep(300 * 1000);
	unsigned got = 0;
	uint32_t held_max = 0;
	while (got < sent && ns_dpdk_now_us() < deadline) {
		unsigned n = ns_poll(w, ev, 1024, 0);
		uint32_t held = ((struct ns_stack *)w)->segs_held;
		if (held > held_max)
			held_max = held;
		for (unsigned i = 0; i < n; i++)
			if (ev[i].type == NS_EV_DATA)
				got += ev[i].len;
		client_round(NULL);
	}
	printf("data: %u of %u bytes received by the server, at most %u segments held at once\n",
	       got, sent, held_max);
	if (sent != conns || got != sent) {
		fprintf(stderr, "ns_backlog: FAIL: %u sent, %u received of %u connections\n", sent,
			got, conns);
		ok = false;
	}
	status = ok ? 0 : 1;
out:
	if (cli_up)
		ns_stack_fini(&cli);
	ns_dport_fini(&cli_dp);
	if (t)
		ns_destroy(t);
	free(sconn);
	free(ev);
	return status;
}

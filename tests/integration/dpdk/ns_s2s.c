/* SPDX-License-Identifier: MIT */
/*
 * Stack to stack through EAL: two instances of Tachyon's TCP/IP stack in one process, each on
 * its own DPDK port, the two ports joined back to back by a pair of rte_rings (net_ring,
 * rte_eth_from_rings). The client stack opens a connection (active open) to the server stack,
 * both send SIZE MiB of a pseudo-random stream at the same time and each checks every byte it
 * receives against the stream; then both close gracefully and each must see CLOSED without an
 * error. The device layer is the backend's own (ns_dpdk_port.c: mbufs, bursts, the fault
 * injector), so with FAULT ("loss=P,reorder=Q,seed=S", TACHYON_NS_FAULT's syntax) frames are
 * dropped and reordered in both directions on both ports.
 *
 * Also checks the steering hash (ns_rss_hash) against DPDK's own Toeplitz (rte_softrss) with
 * the symmetric key, and prints what a connection costs in memory (struct sizes, what is
 * allocated at accept, the most the server's connection held during the transfer), a figure
 * for bench/README, not an assertion.
 *
 *   ns_s2s FILE_PREFIX SIZE_MIB [FAULT]
 *
 * Needs no root and no device: --no-huge --no-pci, EAL files under FILE_PREFIX (removed by
 * the caller). Exit status 0 only if both streams arrived intact and both closes were clean.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
/* rte_thash.h's inline helpers cast byte pointers to wider types (clang's -Wcast-align) */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wcast-align"
#include <rte_thash.h>
#pragma GCC diagnostic pop

#include "ns_dpdk_port.h"
#include "ns_tcp.h"

#define SEND_CHUNK (16 * 1024)
#define DEADLINE_S 240

struct side {
	const char *name;
	struct ns_stack st;
	struct ns_dport dp;
	struct ns_conn *c;
	uint64_t seed;	    /* of the stream this side sends */
	uint64_t peer_seed; /* of the stream it receives */
	uint64_t sent, rcvd, total;
	bool close_called, closed;
	int err;
	bool bad;
};

/* Byte i of stream seed: block i / 8 of a splitmix64 sequence. */
static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static void stream_fill(uint64_t seed, uint64_t off, uint8_t *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t at = off + i;
		buf[i] = (uint8_t)(mix(seed ^ (at >> 3)) >> (8 * (at & 7)));
	}
}

static bool stream_check(uint64_t seed, uint64_t off, const uint8_t *buf, size_t n)
{
	uint8_t want[SEND_CHUNK];
	while (n) {
		size_t k = n < sizeof(want) ? n : sizeof(want);
		stream_fill(seed, off, want, k);
		if (memcmp(want, buf, k) != 0)
			return false;
		buf += k;
		off += k;
		n -= k;
	}
	return true;
}

static void pump_send(struct side *s)
{
	uint8_t buf[SEND_CHUNK];
	while (s->c && !s->closed && s->sent < s->total) {
		size_t n =
			s->total - s->sent < SEND_CHUNK ? (size_t)(s->total - s->sent) : SEND_CHUNK;
		stream_fill(s->seed, s->sent, buf, n);
		struct iovec v = {buf, n};
		int rc = ns_stack_send(s->c, &v, 1);
		if (rc == -ENOBUFS)
			return; /* WRITABLE follows */
		if (rc != 0) {
			fprintf(stderr, "%s: ns_send: %d\n", s->name, rc);
			s->bad = true;
			return;
		}
		s->sent += n;
	}
	if (s->c && !s->close_called && s->sent == s->total && s->rcvd == s->total) {
		s->close_called = true;
		ns_stack_close(s->c, true);
	}
}

/* Memory held by one connection: its TCB, send-buffer chunks, received segments and mbufs. */
struct mem_sample {
	size_t sb_chunks, segs, seg_bytes;
};

static struct mem_sample mem_of(const struct ns_tcb *t)
{
	struct mem_sample m = {0, 0, 0};
	for (const struct ns_chunk *c = t->sb_head; c; c = c->next)
		m.sb_chunks++;
	m.segs = t->nsegs;
	m.seg_bytes = t->rq_bytes + t->ooo_bytes;
	return m;
}

static void run_side(struct side *s, struct rte_mbuf **rx, uint64_t now, struct mem_sample *max)
{
	struct ns_event ev[64];
	s->st.now_us = now;
	uint16_t n = rte_eth_rx_burst(s->dp.port, 0, rx, NS_DPORT_RX_BURST);
	unsigned in = 0;
	for (uint16_t i = 0; i < n; i++)
		in += ns_dport_input(&s->dp, rx[i], 0);
	if (!in)
		ns_dport_input_idle(&s->dp);
	ns_stack_timers(&s->st);
	unsigned k = ns_stack_events(&s->st, ev, 64);
	for (unsigned i = 0; i < k; i++) {
		switch (ev[i].type) {
		case NS_EV_ACCEPT:
			s->c = ev[i].conn;
			break;
		case NS_EV_DATA:
			if (!stream_check(s->peer_seed, s->rcvd, ev[i].data, ev[i].len)) {
				if (!s->bad)
					fprintf(stderr,
						"%s: stream mismatch in [%" PRIu64 ", +%u)\n",
						s->name, s->rcvd, ev[i].len);
				s->bad = true;
			}
			s->rcvd += ev[i].len;
			break;
		case NS_EV_WRITABLE:
			break;
		case NS_EV_CLOSED:
			s->closed = true;
			s->err = ev[i].err;
			break;
		}
	}
	pump_send(s);
	if (max && s->c && !s->closed) {
		struct mem_sample m = mem_of((const struct ns_tcb *)s->c);
		if (m.sb_chunks > max->sb_chunks)
			max->sb_chunks = m.sb_chunks;
		if (m.segs > max->segs)
			max->segs = m.segs;
		if (m.seg_bytes > max->seg_bytes)
			max->seg_bytes = m.seg_bytes;
	}
	ns_stack_flush(&s->st);
	ns_dport_tx_flush(&s->dp);
}

static int check_rss(void)
{
	uint8_t key[40] __attribute__((aligned(4))); /* rte_softrss reads it in 32-bit words */
	ns_rss_key(key, sizeof(key));
	uint64_t x = 12345;
	for (int i = 0; i < 100000; i++) {
		x = mix(x);
		struct rte_ipv4_tuple tu;
		uint32_t sa = (uint32_t)x, da = (uint32_t)(x >> 32);
		uint16_t sp = (uint16_t)mix(x), dp = (uint16_t)(mix(x) >> 16);
		tu.src_addr = ntohl(sa);
		tu.dst_addr = ntohl(da);
		tu.sport = sp;
		tu.dport = dp;
		uint32_t words[RTE_THASH_V4_L4_LEN];
		memcpy(words, &tu, sizeof(words));
		uint32_t want = rte_softrss(words, RTE_THASH_V4_L4_LEN, key);
		if (ns_rss_hash(sa, da, sp, dp) != want) {
			fprintf(stderr, "rss: ns_rss_hash %08x != rte_softrss %08x\n",
				ns_rss_hash(sa, da, sp, dp), want);
			return -1;
		}
	}
	printf("rss: ns_rss_hash == rte_softrss (symmetric key) on 100000 tuples\n");
	return 0;
}

static int side_init(struct side *s, uint16_t port, struct rte_mempool *pool, const char *ip,
		     uint16_t listen)
{
	struct ns_stack_cfg sc;
	struct rte_ether_addr mac;
	uint32_t addr, mask;
	ns_stack_cfg_defaults(&sc);
	if (ns_parse_cidr(ip, &addr, &mask) != 0)
		return -EINVAL;
	sc.ip = addr;
	sc.netmask = mask;
	rte_eth_macaddr_get(port, &mac);
	memcpy(sc.mac, mac.addr_bytes, NS_ETH_ALEN);
	sc.listen_port = listen;
	ns_dport_init(&s->dp, &s->st, port, 0, pool);
	return ns_stack_init(&s->st, &sc, &ns_dport_ops, &s->dp);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: ns_s2s FILE_PREFIX SIZE_MIB [FAULT]\n");
		return 2;
	}
	if (argc > 3)
		setenv("TACHYON_NS_FAULT", argv[3], 1);
	else
		unsetenv("TACHYON_NS_FAULT");
	uint64_t total = strtoull(argv[2], NULL, 10) << 20;
	char eal[256], err[256];
	snprintf(eal, sizeof(eal),
		 "--no-huge -m 256 --no-pci --no-telemetry -l 0 "
		 "--log-level=*:warning --file-prefix=%s",
		 argv[1]);
	if (ns_dpdk_eal_init(eal, err, sizeof(err)) != 0) {
		fprintf(stderr, "ns_s2s: %s\n", err);
		return 1;
	}
	int status = 1;
	struct rte_ring *ab = rte_ring_create("s2s_ab", 4096, SOCKET_ID_ANY, 0);
	struct rte_ring *ba = rte_ring_create("s2s_ba", 4096, SOCKET_ID_ANY, 0);
	struct rte_mempool *pool =
		rte_pktmbuf_pool_create("s2s_pool", 16383, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
	static struct side srv = {.name = "server", .seed = 0x5e7, .peer_seed = 0xc11};
	static struct side cli = {.name = "client", .seed = 0xc11, .peer_seed = 0x5e7};
	bool srv_up = false, cli_up = false;
	if (!ab || !ba || !pool) {
		fprintf(stderr, "ns_s2s: rings/pool: %s\n", rte_strerror(rte_errno));
		goto out;
	}
	if (check_rss() != 0)
		goto out;
	/* server receives what the client transmits (ab) and the other way round */
	int ps = rte_eth_from_rings("s2s_srv", &ab, 1, &ba, 1, 0);
	int pc = rte_eth_from_rings("s2s_cli", &ba, 1, &ab, 1, 0);
	uint32_t mask;
	bool rss;
	if (ps < 0 || pc < 0) {
		fprintf(stderr, "ns_s2s: rte_eth_from_rings failed\n");
		goto out;
	}
	if (ns_dport_configure((uint16_t)ps, 1, pool, &mask, &rss, err, sizeof(err)) != 0 ||
	    ns_dport_configure((uint16_t)pc, 1, pool, &mask, &rss, err, sizeof(err)) != 0) {
		fprintf(stderr, "ns_s2s: %s\n", err);
		goto out;
	}
	srv.total = cli.total = total;
	if (side_init(&srv, (uint16_t)ps, pool, "10.99.0.2/24", 5000) != 0)
		goto out;
	srv_up = true;
	if (side_init(&cli, (uint16_t)pc, pool, "10.99.0.1/24", 0) != 0)
		goto out;
	cli_up = true;
	srv.st.now_us = cli.st.now_us = ns_dpdk_now_us();
	ns_stack_start(&srv.st);
	ns_dport_tx_flush(&srv.dp);

	printf("memory: struct ns_tcb %zu B, struct ns_seg %zu B, send chunk %zu B (%u data), "
	       "mbuf %u B (pool element), flow-table bucket %zu B\n",
	       sizeof(struct ns_tcb), sizeof(struct ns_seg),
	       sizeof(struct ns_chunk) + NS_SB_CHUNK, (unsigned)NS_SB_CHUNK,
	       (unsigned)(pool->elt_size + pool->header_size + pool->trailer_size),
	       sizeof(struct ns_tcb *));
	size_t tcb_blocks_before = srv.st.nblocks;
	if (ns_stack_connect(&cli.st, srv.st.cfg.ip, 5000, &cli.c) != 0) {
		fprintf(stderr, "ns_s2s: connect failed\n");
		goto out;
	}
	cli.c = NULL; /* usable once its ACCEPT (established) is reported */
	struct rte_mbuf *rx[NS_DPORT_RX_BURST];
	struct mem_sample peak = {0, 0, 0};
	uint64_t t0 = ns_dpdk_now_us(), deadline = t0 + DEADLINE_S * 1000000ull;
	bool reported_accept = false;
	while (!(srv.closed && cli.closed) && !srv.bad && !cli.bad) {
		uint64_t now = ns_dpdk_now_us();
		if (now > deadline) {
			fprintf(stderr,
				"ns_s2s: not done in %d s: client sent %" PRIu64 " rcvd %" PRIu64
				", server sent %" PRIu64 " rcvd %" PRIu64 "\n",
				DEADLINE_S, cli.sent, cli.rcvd, srv.sent, srv.rcvd);
			goto out;
		}
		run_side(&cli, rx, now, NULL);
		run_side(&srv, rx, now, &peak);
		if (srv.c && !reported_accept) {
			reported_accept = true;
			printf("memory: at accept the server's connection is one TCB (%zu B) from "
			       "its stack's free list, no buffers (the stack allocates TCBs 256 "
			       "and "
			       "segment descriptors 1024 at a time: %zu block(s) so far)\n",
			       sizeof(struct ns_tcb), srv.st.nblocks - tcb_blocks_before);
		}
	}
	double secs = (double)(ns_dpdk_now_us() - t0) / 1e6;
	printf("memory: steady state, most the server's connection held: send buffer %zu "
	       "chunk(s) = %zu B (tx_limit %u), receive queue %zu segment(s) = %zu B of data in "
	       "%zu mbufs = %zu B (rcv_buf %u)\n",
	       peak.sb_chunks, peak.sb_chunks * (sizeof(struct ns_chunk) + NS_SB_CHUNK),
	       srv.st.cfg.tx_limit,
	       peak.segs, peak.seg_bytes, peak.segs,
	       peak.segs * (size_t)(pool->elt_size + pool->header_size + pool->trailer_size),
	       srv.st.cfg.rcv_buf);
	printf("transfer: %" PRIu64 " MiB each way in %.2f s (%.1f MB/s each way), client rcvd "
	       "%" PRIu64 ", server rcvd %" PRIu64 "; retransmits srv %" PRIu64 " cli %" PRIu64
	       ", fast retransmits srv %" PRIu64 " cli %" PRIu64 ", rto srv %" PRIu64
	       " cli %" PRIu64 "\n",
	       total >> 20, secs, (double)total / secs / 1e6, cli.rcvd, srv.rcvd,
	       srv.st.xs.tcp_retransmits, cli.st.xs.tcp_retransmits, srv.st.xs.tcp_fast_retransmits,
	       cli.st.xs.tcp_fast_retransmits, srv.st.xs.tcp_rto_fired, cli.st.xs.tcp_rto_fired);
	if (srv.bad || cli.bad)
		goto out;
	if (srv.rcvd != total || cli.rcvd != total || srv.err || cli.err) {
		fprintf(stderr, "ns_s2s: incomplete: rcvd %" PRIu64 "/%" PRIu64 ", errors %d/%d\n",
			srv.rcvd, cli.rcvd, srv.err, cli.err);
		goto out;
	}
	/* let the last ACKs and the TIME_WAIT side settle, then everything must be released */
	for (int i = 0; i < 100; i++) {
		uint64_t now = ns_dpdk_now_us();
		run_side(&cli, rx, now, NULL);
		run_side(&srv, rx, now, NULL);
	}
	status = 0;
	printf("PASSED\n");
out:
	if (cli_up)
		ns_stack_fini(&cli.st);
	if (srv_up)
		ns_stack_fini(&srv.st);
	ns_dport_fini(&cli.dp);
	ns_dport_fini(&srv.dp);
	uint16_t pid;
	RTE_ETH_FOREACH_DEV(pid)
	{
		rte_eth_dev_stop(pid);
		rte_eth_dev_close(pid);
	}
	/* frames still in the rings go back to the pool before it is checked and freed */
	void *m = NULL;
	while (ab && rte_ring_dequeue(ab, &m) == 0)
		rte_pktmbuf_free(m);
	while (ba && rte_ring_dequeue(ba, &m) == 0)
		rte_pktmbuf_free(m);
	if (pool && status == 0 && rte_mempool_in_use_count(pool) != 0) {
		fprintf(stderr, "ns_s2s: %u mbufs leaked\n", rte_mempool_in_use_count(pool));
		status = 1;
	}
	rte_mempool_free(pool);
	rte_ring_free(ab);
	rte_ring_free(ba);
	rte_eal_cleanup();
	return status;
}

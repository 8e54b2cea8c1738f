/* SPDX-License-Identifier: MIT */
/*
 * What one TCP connection of Tachyon's stack costs in memory: a server stack and a client
 * stack joined by an in-memory wire (no DPDK, no kernel), N connections opened from the client
 * and accepted by the server, then three states measured on the server side only:
 *   idle:     N established connections, nothing queued;
 *   receive:  every client sent RECV bytes that the server's engine does not read (receive
 *             paused), so they wait in the server's receive queue;
 *   send:     the server queued SEND bytes on every connection towards clients that do not
 *             read either: what the client's receive window (256 KiB) does not take waits
 *             in the server's send buffer.
 * Heap bytes are measured with mallinfo2() around every call into the server stack (the
 * client's allocations are not counted); device buffers (what would be mbufs; here mmap'd
 * slabs outside the heap) are counted separately at BUF_BYTES each, an mbuf pool element.
 * Prints bytes per connection for each state. A figure for bench/README, not a test.
 *
 *   bench_ns_mem [N] [RECV] [SEND]      (defaults 2000 connections, 65536, 524288 bytes)
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/mman.h>

#include "ns_stack.h"

/* What a device buffer costs on DPDK: one element of the backend's mbuf pool
 * (RTE_MBUF_DEFAULT_BUF_SIZE data room + the rte_mbuf header; ns_s2s prints the real size). */
#define BUF_BYTES 2368

struct wbuf {
	int ref;
	uint16_t len;
	struct wbuf *next; /* on a wire queue */
	uint8_t data[NS_PKT_ROOM];
};

struct end {
	struct ns_stack st;
	struct end *peer;
	struct wbuf *q_head, *q_tail; /* frames on their way to this end */
	long live;		      /* device buffers this end holds */
	bool measured;
	long heap; /* heap bytes allocated inside this end's calls */
};

/* Device buffers come from mmap'd slabs, outside malloc, so the heap figures are the stack's
 * own; a freed buffer goes back to a free list, like a mempool. */
#define SLAB 4096
static struct wbuf *free_bufs;

static struct wbuf *buf_get(void)
{
	if (!free_bufs) {
		struct wbuf *s = mmap(NULL, SLAB * sizeof(*s), PROT_READ | PROT_WRITE,
				      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (s == MAP_FAILED)
			return NULL;
		for (int i = SLAB - 1; i >= 0; i--) {
			s[i].next = free_bufs;
			free_bufs = &s[i];
		}
	}
	struct wbuf *b = free_bufs;
	free_bufs = b->next;
	return b;
}

static void buf_put(struct wbuf *b)
{
	b->next = free_bufs;
	free_bufs = b;
}

static struct ns_pkt *w_alloc(void *ctx, uint8_t **data)
{
	struct end *e = ctx;
	struct wbuf *b = buf_get();
	if (!b)
		return NULL;
	b->ref = 1;
	b->next = NULL;
	e->live++;
	*data = b->data;
	return (struct ns_pkt *)b;
}

static void w_release(void *ctx, struct ns_pkt *p)
{
	struct end *e = ctx;
	struct wbuf *b = (struct wbuf *)p;
	if (--b->ref == 0) {
		e->live--;
		buf_put(b);
	}
}

/* Transmit: the buffer moves to the peer's wire queue (ownership and accounting with it). */
static void w_tx(void *ctx, struct ns_pkt *p, uint16_t len)
{
	struct end *e = ctx;
	struct wbuf *b = (struct wbuf *)p;
	b->len = len;
	e->live--;
	e->peer->live++;
	if (e->peer->q_tail)
		e->peer->q_tail->next = b;
	else
		e->peer->q_head = b;
	e->peer->q_tail = b;
}

static void w_hold(void *ctx, struct ns_pkt *p)
{
	(void)ctx;
	((struct wbuf *)p)->ref++;
}

static const struct ns_dev_ops wire_ops = {w_alloc, w_tx, w_hold, w_release};

static long heap_now(void)
{
	struct mallinfo2 mi = mallinfo2();
	return (long)(mi.uordblks + mi.hblkhd); /* small chunks + mmap'd large ones */
}

/* Runs one end's loop once; heap growth inside it is charged to the end if measured. */
static unsigned step(struct end *e, uint64_t now, struct ns_event *ev, unsigned max)
{
	long h0 = e->measured ? heap_now() : 0;
	e->st.now_us = now;
	while (e->q_head) {
		struct wbuf *b = e->q_head;
		e->q_head = b->next;
		if (!e->q_head)
			e->q_tail = NULL;
		b->next = NULL;
		ns_stack_input(&e->st, (struct ns_pkt *)b, b->data, b->len, 0);
		w_release(e, (struct ns_pkt *)b);
	}
	ns_stack_timers(&e->st);
	unsigned n = ns_stack_events(&e->st, ev, max);
	ns_stack_flush(&e->st);
	if (e->measured)
		e->heap += heap_now() - h0;
	return n;
}

static void charge(struct end *e, long h0)
{
	e->heap += heap_now() - h0;
}

/* One line of the report: heap bytes and device buffers per connection. */
static void row(const char *label, double heap, double bufs)
{
	printf("  %-46s %8.0f B heap + %6.1f buffers (%8.0f B) = %8.0f B\n", label, heap, bufs,
	       bufs * BUF_BYTES, heap + bufs * BUF_BYTES);
}

static int setup(struct end *e, const char *ip, uint16_t listen, uint32_t max_conns)
{
	struct ns_stack_cfg c;
	uint32_t a, m;
	ns_stack_cfg_defaults(&c);
	ns_parse_cidr(ip, &a, &m);
	c.ip = a;
	c.netmask = m;
	c.mac[0] = 0x02;
	c.mac[5] = (uint8_t)(a >> 24);
	c.listen_port = listen;
	c.max_conns = max_conns;
	c.backlog = max_conns;
	c.syncookies = false;
	return ns_stack_init(&e->st, &c, &wire_ops, e);
}

/* Queues len bytes on each of the n connections of e (heap growth charged if measured). */
static int queue_all(struct end *e, struct ns_conn **c, unsigned n, uint8_t *data, uint32_t len)
{
	for (unsigned i = 0; i < n; i++) {
		struct iovec v = {data, len};
		long h = e->measured ? heap_now() : 0;
		int rc = ns_stack_send(c[i], &v, 1);
		if (e->measured)
			charge(e, h);
		if (rc != 0) {
			fprintf(stderr, "bench_ns_mem: send refused (%d): raise tx_limit\n", rc);
			return -1;
		}
	}
	return 0;
}

static struct end srv, cli;

/* Runs both ends for 200 ms of stack time: everything that can move has moved. */
static int settle(uint64_t *now, struct ns_event *ev)
{
	for (int round = 0; round < 200; round++) {
		*now += 1000;
		step(&cli, *now, ev, 4096);
		step(&srv, *now, ev, 4096);
	}
	return 0;
}

int main(int argc, char **argv)
{
	unsigned n = argc > 1 ? (unsigned)atoi(argv[1]) : 2000;
	uint32_t recv_bytes = argc > 2 ? (uint32_t)atoi(argv[2]) : 65536;
	uint32_t send_bytes = argc > 3 ? (uint32_t)atoi(argv[3]) : 524288;
	static struct ns_event ev[4096];
	srv.peer = &cli;
	cli.peer = &srv;
	srv.measured = true;
	long h0 = heap_now();
	if (setup(&srv, "10.0.0.2/24", 1883, n + 16) != 0 ||
	    setup(&cli, "10.0.0.1/24", 0, n + 16) != 0) {
		fprintf(stderr, "bench_ns_mem: stack initialisation failed\n");
		return 1;
	}
	charge(&srv, h0); /* approximate: both stacks' tables; subtracted below */
	long fixed = srv.heap;
	srv.heap = 0;
	struct ns_conn **sc = calloc(n, sizeof(*sc)), **cc = calloc(n, sizeof(*cc));
	uint8_t *payload = calloc(1, send_bytes > recv_bytes ? send_bytes : recv_bytes);
	if (!sc || !cc || !payload)
		return 1;
	uint64_t now = 1000000;
	unsigned accepted = 0, established = 0;
	/* the first connection resolves ARP both ways; the others then go out at once */
	for (unsigned i = 0; i < n; i++) {
		cli.st.now_us = now + i; /* the ephemeral-port walk starts from a clock hash */
		if (ns_stack_connect(&cli.st, srv.st.cfg.ip, 1883, &cc[i]) != 0) {
			fprintf(stderr, "bench_ns_mem: connect %u failed\n", i);
			return 1;
		}
		unsigned want = i + 1;
		for (int round = 0; round < 100000 && (accepted < want || established < want);
		     round++) {
			now += 100;
			unsigned k = step(&cli, now, ev, 4096);
			for (unsigned j = 0; j < k; j++)
				established += ev[j].type == NS_EV_ACCEPT;
			k = step(&srv, now, ev, 4096);
			for (unsigned j = 0; j < k; j++) {
				if (ev[j].type == NS_EV_ACCEPT) {
					sc[accepted++] = ev[j].conn;
					long h = heap_now();
					ns_stack_pause_rx(ev[j].conn,
							  true); /* the engine reads nothing */
					charge(&srv, h);
				}
			}
		}
	}
	if (accepted < n || established < n) {
		fprintf(stderr, "bench_ns_mem: only %u/%u accepted\n", accepted, n);
		return 1;
	}
	long idle_heap = srv.heap, idle_bufs = srv.live;

	/* receive: every client sends recv_bytes the server does not read */
	for (unsigned i = 0; i < n; i++)
		ns_stack_pause_rx(cc[i], true);
	if (queue_all(&cli, cc, n, payload, recv_bytes) != 0 || settle(&now, ev) != 0)
		return 1;
	long recv_heap = srv.heap, recv_bufs = srv.live;

	/* send: the server queues send_bytes on every connection; the clients read nothing */
	if (queue_all(&srv, sc, n, payload, send_bytes) != 0 || settle(&now, ev) != 0)
		return 1;
	long send_heap = srv.heap, send_bufs = srv.live;

	const double per = 1.0 / n;
	printf("bench_ns_mem: %u connections, server side only; device buffers at %d B each\n", n,
	       BUF_BYTES);
	printf("  fixed, not per connection (both stacks' flow tables): %ld B\n", fixed);
	row("idle (established, nothing queued):", idle_heap * per, idle_bufs * per);
	char label[64];
	snprintf(label, sizeof(label), "receive (%u B unread per connection):", recv_bytes);
	row(label, recv_heap * per, recv_bufs * per);
	snprintf(label, sizeof(label), "+ send (%u B queued per connection):", send_bytes);
	row(label, send_heap * per, send_bufs * per);
	printf("  (idle heap per connection includes the amortised TCB and segment-descriptor "
	       "blocks)\n");
	ns_stack_fini(&srv.st);
	ns_stack_fini(&cli.st);
	for (struct end *e = &srv; e; e = e == &srv ? &cli : NULL) {
		while (e->q_head) {
			struct wbuf *b = e->q_head;
			e->q_head = b->next;
			buf_put(b);
		}
	}
	free(sc);
	free(cc);
	free(payload);
	return 0;
}

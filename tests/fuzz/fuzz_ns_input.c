/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the packet input path of Tachyon's TCP/IP stack (Ethernet, ARP, IPv4, ICMP,
 * TCP with options and every state transition), without DPDK: an in-memory device and a fake
 * clock. The input is a sequence of records [len: 2 bytes big-endian][frame: len bytes]; each
 * frame is fed to a stack listening on port 1883 at 10.0.0.2 (MAC 02:00:00:00:00:02), the clock
 * advances 37 ms between frames, and the engine side accepts, echoes and sometimes closes,
 * so queued data, timers and close paths run too. Every device buffer must be freed at the end.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ns_stack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fbuf {
	int ref;
	uint8_t data[2048];
};

static long live;

static struct ns_pkt *f_alloc(void *ctx, uint8_t **d)
{
	(void)ctx;
	struct fbuf *b = malloc(sizeof(*b));
	if (!b)
		return NULL;
	b->ref = 1;
	live++;
	*d = b->data;
	return (struct ns_pkt *)b;
}

static void f_release(void *ctx, struct ns_pkt *p)
{
	(void)ctx;
	struct fbuf *b = (struct fbuf *)p;
	if (--b->ref == 0) {
		live--;
		free(b);
	}
}

static void f_tx(void *ctx, struct ns_pkt *p, uint16_t len)
{
	(void)len;
	f_release(ctx, p);
}

static void f_hold(void *ctx, struct ns_pkt *p)
{
	(void)ctx;
	((struct fbuf *)p)->ref++;
}

static const struct ns_dev_ops fops = {f_alloc, f_tx, f_hold, f_release};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ns_stack st;
	struct ns_stack_cfg cfg;
	ns_stack_cfg_defaults(&cfg);
	memset(cfg.secret, 7, sizeof(cfg.secret));
	cfg.ip = (uint32_t)(10 | 2u << 24);   /* 10.0.0.2 in network order */
	cfg.netmask = (uint32_t)0x00ffffffu; /* 255.255.255.0 */
	const uint8_t mac[6] = {2, 0, 0, 0, 0, 2};
	memcpy(cfg.mac, mac, 6);
	cfg.listen_port = 1883;
	cfg.backlog = 2;
	cfg.max_conns = 8;
	cfg.tw_max = 2;
	cfg.rcv_buf = 8192;
	cfg.tx_limit = 4096;
	memset(&st, 0, sizeof(st));
	if (ns_stack_init(&st, &cfg, &fops, NULL) != 0)
		abort();
	st.now_us = 1000000;
	size_t off = 0;
	unsigned n = 0;
	while (off + 2 <= size && n++ < 256) {
		size_t len = (size_t)data[off] << 8 | data[off + 1];
		off += 2;
		if (len > size - off)
			len = size - off;
		if (len > 2048)
			len = 2048;
		struct ns_pkt *p;
		uint8_t *buf;
		p = f_alloc(NULL, &buf);
		if (!p)
			break;
		memcpy(buf, data + off, len);
		ns_stack_input(&st, p, buf, (uint32_t)len, 0);
		f_release(NULL, p);
		off += len;
		st.now_us += 37000;
		ns_stack_timers(&st);
		struct ns_event ev[16];
		unsigned ne = ns_stack_events(&st, ev, 16);
		for (unsigned i = 0; i < ne; i++) {
			if (ev[i].type == NS_EV_DATA) {
				struct iovec v = {(void *)(uintptr_t)ev[i].data, ev[i].len};
				if (ns_stack_send(ev[i].conn, &v, 1) != 0 || ev[i].data[0] == 'q')
					ns_stack_close(ev[i].conn, ev[i].data[0] != 'Q');
			}
		}
		ns_stack_flush(&st);
	}
	ns_stack_fini(&st);
	if (live != 0)
		abort(); /* a device buffer leaked */
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * bench_relay: the transport ceiling of the benchmark suite. A trivial relay that forwards
 * publishers' bytes to subscribers without doing MQTT's work, so that every broker figure can
 * be read as a fraction of what the kernel's loopback TCP allows on the same machine with the
 * same load generator.
 *
 * What it does, exactly (single thread, one epoll set, loopback only):
 *   - Frames packets by their fixed header (type nibble + Remaining Length). Nothing else of a
 *     PUBLISH is parsed except, at QoS 1/2, the 2-byte topic length to find the packet id.
 *   - CONNECT: decoded (eng_decode) for the protocol level and client id; answered with a
 *     fixed CONNACK (success, no properties). The client id must look like
 *     "<p|s|i>:<group>:<anything>" (bench_loadgen's convention); anything else gets CONNACK
 *     "client identifier not valid". p = publisher, s = subscriber, i = idle.
 *   - SUBSCRIBE: decoded for its packet id and entries; the connection joins its group's
 *     subscriber list; SUBACK grants each entry the QoS it asked for. Topic filters are
 *     ignored: routing is by group only. UNSUBSCRIBE is answered with UNSUBACK (success) and
 *     leaves the group.
 *   - PUBLISH from a publisher: its bytes are appended verbatim (consecutive PUBLISH packets
 *     in one memcpy) to every subscriber of its group: packet ids, QoS and properties are the
 *     publisher's. QoS 1 is answered with PUBACK, QoS 2 with PUBREC, PUBREL with PUBCOMP.
 *   - From subscribers: PUBACK and PUBCOMP are dropped; PUBREC is answered with PUBREL.
 *   - PINGREQ -> PINGRESP; DISCONNECT closes; any other packet closes the connection.
 * Because packet ids pass through unchanged, QoS 1/2 is coherent only where each subscriber
 * hears one publisher (pairs) or a publisher's ids reach subscribers alone (fan-out); QoS 0 works
 * for every topology. Wildcard and shared subscriptions are not modelled (use group 0).
 *
 * Back-pressure instead of loss: when a subscriber's send buffer passes the high-water mark,
 * the relay stops reading from every publisher until all subscribers are below the low mark.
 *
 * Usage: bench_relay [--host 127.0.0.1] [--port 0] [--deadline S] [--port-file F]
 * Prints "bench_relay: listening on HOST:PORT" on stdout once ready; runs until SIGTERM/SIGINT
 * or the deadline (default 3600 s).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "eng_codec.h"

#define RL_IN_CAP (256u * 1024)
#define RL_OUT_CAP (4u * 1024 * 1024)
#define RL_HIGH (RL_OUT_CAP - 2 * RL_IN_CAP)
#define RL_LOW (RL_OUT_CAP / 4)
#define RL_GROUPS 4096u

struct rl_group;

struct rl_conn {
	int fd;
	char role;	/* 'p', 's', 'i', or 0 before CONNECT */
	bool out_armed; /* EPOLLOUT armed */
	bool dirty;	/* on the flush list */
	bool congested; /* counted in rl.congested */
	bool paused;	/* publisher not being read */
	bool subscribed;
	struct eng_codec_ctx codec;
	struct rl_group *group;
	uint8_t *in;
	uint32_t in_len;
	uint8_t *out;
	uint32_t out_off;
	uint32_t out_len;
};

struct rl_group {
	struct rl_group *next; /* hash chain */
	char name[64];
	struct rl_conn **subs;
	uint32_t nsubs;
	uint32_t cap;
};

static struct {
	int ep;
	int lfd;
	uint32_t congested;
	struct rl_conn **dirty;
	uint32_t ndirty;
	uint32_t dirty_cap;
	struct rl_conn **paused;
	uint32_t npaused;
	uint32_t paused_cap;
	struct rl_group *groups[RL_GROUPS];
	uint64_t forwarded_bytes;
} rl;

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void die(const char *what)
{
	fprintf(stderr, "bench_relay: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p) {
		fprintf(stderr, "bench_relay: out of memory\n");
		abort();
	}
	return p;
}

static void set_events(struct rl_conn *c)
{
	uint32_t ev = (c->paused ? 0 : EPOLLIN) | (c->out_armed ? EPOLLOUT : 0);
	struct epoll_event e = {.events = ev | EPOLLRDHUP, .data.ptr = c};
	epoll_ctl(rl.ep, EPOLL_CTL_MOD, c->fd, &e);
}

static void mark_dirty(struct rl_conn *c)
{
	if (c->dirty)
		return;
	if (rl.ndirty == rl.dirty_cap) {
		rl.dirty_cap = rl.dirty_cap ? rl.dirty_cap * 2 : 256;
		rl.dirty = xrealloc(rl.dirty, rl.dirty_cap * sizeof(*rl.dirty));
	}
	c->dirty = true;
	rl.dirty[rl.ndirty++] = c;
}

static struct rl_group *group_get(const char *name, size_t len)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)name[i]) * 16777619u;
	struct rl_group **slot = &rl.groups[h % RL_GROUPS];
	for (struct rl_group *g = *slot; g; g = g->next)
		if (strlen(g->name) == len && !memcmp(g->name, name, len))
			return g;
	struct rl_group *g = calloc(1, sizeof(*g));
	if (!g)
		abort();
	memcpy(g->name, name, len < sizeof(g->name) - 1 ? len : sizeof(g->name) - 1);
	g->next = *slot;
	*slot = g;
	return g;
}

static void group_leave(struct rl_conn *c)
{
	struct rl_group *g = c->group;
	if (!g || !c->subscribed)
		return;
	for (uint32_t i = 0; i < g->nsubs; i++) {
		if (g->subs[i] == c) {
			g->subs[i] = g->subs[--g->nsubs];
			break;
		}
	}
	c->subscribed = false;
}

static void resume_publishers(void)
{
	for (uint32_t i = 0; i < rl.npaused; i++) {
		struct rl_conn *p = rl.paused[i];
		p->paused = false;
		if (p->fd < 0) {
			if (!p->dirty) {
				free(p->in);
				free(p->out);
				free(p);
			}
			continue;
		}
		p->paused = false;
		set_events(p);
	}
	rl.npaused = 0;
}

static void conn_close(struct rl_conn *c)
{
	group_leave(c);
	if (c->congested && --rl.congested == 0)
		resume_publishers();
	c->congested = false;
	close(c->fd);
	c->fd = -1; /* freed below unless it sits on a list; those skip fd < 0 */
	if (!c->dirty && !c->paused) {
		free(c->in);
		free(c->out);
		free(c);
	}
}

/* Appends n bytes for c to send; the caller guarantees room (high-water mark). */
static void out_put(struct rl_conn *c, const void *p, uint32_t n)
{
	if (c->out_len + n > RL_OUT_CAP) {
		if (c->out_off) {
			memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
			c->out_len -= c->out_off;
			c->out_off = 0;
		}
		if (c->out_len + n > RL_OUT_CAP) {
			fprintf(stderr, "bench_relay: send buffer overflow (internal error)\n");
			abort();
		}
	}
	memcpy(c->out + c->out_len, p, n);
	c->out_len += n;
	if (!c->congested && c->out_len - c->out_off > RL_HIGH) {
		c->congested = true;
		rl.congested++;
	}
	mark_dirty(c);
}

static int flush(struct rl_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
		if (n > 0) {
			c->out_off += (uint32_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			if (!c->out_armed) {
				c->out_armed = true;
				set_events(c);
			}
			goto check_congestion;
		}
		return -1;
	}
	c->out_off = c->out_len = 0;
	if (c->out_armed) {
		c->out_armed = false;
		set_events(c);
	}
check_congestion:
	if (c->congested && c->out_len - c->out_off < RL_LOW) {
		c->congested = false;
		if (--rl.congested == 0)
			resume_publishers();
	}
	return 0;
}

static void ack(struct rl_conn *c, uint8_t first, uint16_t pid)
{
	uint8_t b[4] = {first, 2, (uint8_t)(pid >> 8), (uint8_t)pid};
	out_put(c, b, 4);
}

static int encode_reply(struct rl_conn *c, const struct eng_packet *pkt)
{
	uint8_t buf[1024];
	int n = eng_encode(pkt, c->codec.version, buf, sizeof(buf));
	if (n < 0)
		return -1;
	out_put(c, buf, (uint32_t)n);
	return 0;
}

static int on_connect(struct rl_conn *c, const struct eng_packet *pkt)
{
	const struct eng_connect *cn = &pkt->u.connect;
	const char *id = (const char *)cn->client_id.p;
	uint32_t len = cn->client_id.len;
	struct eng_packet ack_pkt = {.type = ENG_CONNACK};

	c->codec.version = cn->version;
	const char *colon = len > 2 && id[1] == ':' ? memchr(id + 2, ':', len - 2) : NULL;
	if (!colon || (id[0] != 'p' && id[0] != 's' && id[0] != 'i')) {
		ack_pkt.u.connack.reason =
			cn->version == ENG_V5 ? ENG_RC_CLIENT_ID_INVALID : ENG_V3_ID_REJECTED;
		encode_reply(c, &ack_pkt);
		return -1;
	}
	c->role = id[0];
	c->group = group_get(id + 2, (size_t)(colon - (id + 2)));
	return encode_reply(c, &ack_pkt);
}

static int on_subscribe(struct rl_conn *c, const struct eng_packet *pkt)
{
	uint8_t codes[64];
	struct eng_iter it = eng_iter_of(pkt->u.subscribe.raw);
	struct eng_str filter;
	uint8_t opt;
	uint32_t n = 0;

	while (n < 64 && eng_sub_next(&it, &filter, &opt))
		codes[n++] = opt & ENG_SUBOPT_QOS_MASK;
	if (!c->subscribed && c->group) {
		struct rl_group *g = c->group;
		if (g->nsubs == g->cap) {
			g->cap = g->cap ? g->cap * 2 : 4;
			g->subs = xrealloc(g->subs, g->cap * sizeof(*g->subs));
		}
		g->subs[g->nsubs++] = c;
		c->subscribed = true;
	}
	struct eng_packet r = {.type = ENG_SUBACK};
	r.u.suback.packet_id = pkt->u.subscribe.packet_id;
	r.u.suback.count = n;
	r.u.suback.reasons = codes;
	return encode_reply(c, &r);
}

/* Forwards bytes [p, p + n) of whole PUBLISH packets to c's group. */
static void forward(struct rl_conn *c, const uint8_t *p, uint32_t n)
{
	if (!n || c->role != 'p' || !c->group)
		return;
	struct rl_group *g = c->group;
	for (uint32_t i = 0; i < g->nsubs; i++)
		out_put(g->subs[i], p, n);
	rl.forwarded_bytes += (uint64_t)n * g->nsubs;
}

/* Handles one framed packet that is not a publisher's PUBLISH. 0, or -1 to close. */
static int on_packet(struct rl_conn *c, const uint8_t *p, uint32_t size, uint32_t hdr)
{
	uint8_t type = p[0] >> 4;
	struct eng_packet pkt;
	struct eng_decode_err err;

	if (!c->role && type != ENG_CONNECT)
		return -1;
	switch (type) {
	case ENG_CONNECT:
		if (c->role || eng_decode(&c->codec, p, size, &pkt, &err) < 0)
			return -1;
		return on_connect(c, &pkt);
	case ENG_SUBSCRIBE:
		if (eng_decode(&c->codec, p, size, &pkt, &err) < 0)
			return -1;
		return on_subscribe(c, &pkt);
	case ENG_UNSUBSCRIBE: {
		if (eng_decode(&c->codec, p, size, &pkt, &err) < 0)
			return -1;
		uint8_t codes[64] = {0};
		struct eng_packet r = {.type = ENG_UNSUBACK};
		r.u.suback.packet_id = pkt.u.subscribe.packet_id;
		r.u.suback.count = pkt.u.subscribe.count < 64 ? pkt.u.subscribe.count : 64;
		r.u.suback.reasons = codes;
		group_leave(c);
		return encode_reply(c, &r);
	}
	case ENG_PUBLISH: {
		/* A PUBLISH from a non-publisher is acknowledged and dropped. */
		uint8_t qos = (p[0] >> 1) & 3;
		if (qos) {
			uint32_t tl = (uint32_t)p[hdr] << 8 | p[hdr + 1];
			if (hdr + 2 + tl + 2 > size)
				return -1;
			uint16_t pid = (uint16_t)(p[hdr + 2 + tl] << 8 | p[hdr + 3 + tl]);
			ack(c, qos == 1 ? 0x40 : 0x50, pid);
		}
		return 0;
	}
	case ENG_PUBREL:
		if (size < hdr + 2)
			return -1;
		ack(c, 0x70, (uint16_t)(p[hdr] << 8 | p[hdr + 1]));
		return 0;
	case ENG_PUBREC:
		if (size < hdr + 2)
			return -1;
		ack(c, 0x62, (uint16_t)(p[hdr] << 8 | p[hdr + 1]));
		return 0;
	case ENG_PUBACK:
	case ENG_PUBCOMP:
		return 0;
	case ENG_PINGREQ: {
		static const uint8_t resp[2] = {0xd0, 0};
		out_put(c, resp, 2);
		return 0;
	}
	default: /* DISCONNECT, and anything a client must not send */
		return -1;
	}
}

/* Frames and handles what is buffered. 0, or -1 to close. */
static int process(struct rl_conn *c)
{
	uint32_t off = 0, run_start = 0, run_len = 0;

	while (c->in_len - off >= 2) {
		const uint8_t *p = c->in + off;
		uint32_t avail = c->in_len - off, rl_len = 0, mult = 1, i = 1;
		for (;; i++) {
			if (i > 4)
				return -1; /* malformed Remaining Length */
			if (i >= avail)
				goto incomplete;
			rl_len += (p[i] & 127u) * mult;
			mult *= 128;
			if (!(p[i] & 128))
				break;
		}
		uint32_t hdr = i + 1, size = hdr + rl_len;
		if (size > RL_IN_CAP)
			return -1;
		if (size > avail)
			break;
		if ((p[0] >> 4) == ENG_PUBLISH && c->role == 'p') {
			uint8_t qos = (p[0] >> 1) & 3;
			if (!run_len)
				run_start = off;
			run_len += size;
			if (qos && on_packet(c, p, size, hdr))
				return -1;
		} else {
			forward(c, c->in + run_start, run_len);
			run_len = 0;
			if (on_packet(c, p, size, hdr))
				return -1;
		}
		off += size;
	}
incomplete:
	forward(c, c->in + run_start, run_len);
	if (off) {
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= off;
	}
	return 0;
}

static int on_readable(struct rl_conn *c)
{
	if (c->role == 'p' && rl.congested) {
		if (!c->paused) {
			if (rl.npaused == rl.paused_cap) {
				rl.paused_cap = rl.paused_cap ? rl.paused_cap * 2 : 64;
				rl.paused = xrealloc(rl.paused, rl.paused_cap * sizeof(*rl.paused));
			}
			c->paused = true;
			rl.paused[rl.npaused++] = c;
			set_events(c);
		}
		return 0;
	}
	ssize_t n = read(c->fd, c->in + c->in_len, RL_IN_CAP - c->in_len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0)
		return -1;
	c->in_len += (uint32_t)n;
	return process(c);
}

static void on_accept(void)
{
	for (;;) {
		int fd = accept4(rl.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct rl_conn *c = calloc(1, sizeof(*c));
		if (!c)
			abort();
		c->fd = fd;
		c->in = malloc(RL_IN_CAP);
		c->out = malloc(RL_OUT_CAP); /* pages are touched only as far as they are used */
		if (!c->in || !c->out)
			abort();
		c->codec.role = ENG_ROLE_SERVER;
		c->codec.max_packet = RL_IN_CAP;
		struct epoll_event e = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
		if (epoll_ctl(rl.ep, EPOLL_CTL_ADD, fd, &e))
			die("epoll_ctl");
	}
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1", *port_file = NULL;
	int port = 0;
	double deadline = 3600;
	static const struct option opts[] = {
		{"host", required_argument, NULL, 'H'},
		{"port", required_argument, NULL, 'p'},
		{"deadline", required_argument, NULL, 'd'},
		{"port-file", required_argument, NULL, 'f'},
		{NULL, 0, NULL, 0},
	};
	int o;

	while ((o = getopt_long(argc, argv, "H:p:d:f:", opts, NULL)) != -1) {
		switch (o) {
		case 'H':
			host = optarg;
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 'd':
			deadline = atof(optarg);
			break;
		case 'f':
			port_file = optarg;
			break;
		default:
			fprintf(stderr, "usage: bench_relay [--host 127.0.0.1] [--port N] "
					"[--deadline S] [--port-file F]\n");
			return 2;
		}
	}

	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, host, &a.sin_addr) != 1 || (ntohl(a.sin_addr.s_addr) >> 24) != 127) {
		fprintf(stderr, "bench_relay: --host must be an IPv4 loopback address\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);

	rl.lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(rl.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (rl.lfd < 0 || bind(rl.lfd, (struct sockaddr *)&a, sizeof(a)) || listen(rl.lfd, 4096))
		die("listen");
	socklen_t al = sizeof(a);
	getsockname(rl.lfd, (struct sockaddr *)&a, &al);
	rl.ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event le = {.events = EPOLLIN, .data.ptr = NULL};
	if (rl.ep < 0 || epoll_ctl(rl.ep, EPOLL_CTL_ADD, rl.lfd, &le))
		die("epoll");
	if (port_file) {
		FILE *f = fopen(port_file, "w");
		if (!f)
			die(port_file);
		fprintf(f, "%u\n", ntohs(a.sin_port));
		fclose(f);
	}
	printf("bench_relay: listening on %s:%u\n", host, ntohs(a.sin_port));
	fflush(stdout);

	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct epoll_event evs[512];
	while (!stop) {
		int n = epoll_wait(rl.ep, evs, 512, 100);
		for (int i = 0; i < n; i++) {
			struct rl_conn *c = evs[i].data.ptr;
			if (!c) {
				on_accept();
				continue;
			}
			if (c->fd < 0)
				continue;
			if ((evs[i].events & EPOLLOUT) && flush(c)) {
				conn_close(c);
				continue;
			}
			if ((evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) &&
			    on_readable(c))
				conn_close(c);
		}
		for (uint32_t i = 0; i < rl.ndirty; i++) {
			struct rl_conn *c = rl.dirty[i];
			c->dirty = false;
			if (c->fd < 0) {
				if (!c->paused) {
					free(c->in);
					free(c->out);
					free(c);
				}
				continue;
			}
			if (!c->out_armed && flush(c))
				conn_close(c);
		}
		rl.ndirty = 0;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((double)(now.tv_sec - t0.tv_sec) > deadline) {
			fprintf(stderr, "bench_relay: deadline of %.0f s reached, exiting\n",
				deadline);
			break;
		}
	}
	fprintf(stderr, "bench_relay: forwarded %llu bytes\n",
		(unsigned long long)rl.forwarded_bytes);
	return 0;
}

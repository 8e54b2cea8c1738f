/* SPDX-License-Identifier: MIT */
/*
 * Load generator transport: kernel TCP sockets, one epoll set per worker thread.
 *
 * Connections are non-blocking sockets (TCP_NODELAY; bound to one of --src-ips source
 * addresses when asked, for more than one source port range's worth of connections). A
 * connect in progress waits for EPOLLOUT and SO_ERROR. Output is write(); when the socket
 * takes nothing (EAGAIN) EPOLLOUT is armed, and disarmed once lg_conn_writable() got
 * everything out. Input is read() straight into the connection's receive buffer, at most
 * four buffers' worth per wake-up so one busy connection does not starve the others; a full
 * buffer (whole packets waiting for room to answer them) is left for EPOLLOUT to clear.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "bench_lg.h"

#define KT_EVENTS 512

struct kthread {
	int ep;
	struct epoll_event evs[KT_EVENTS];
};

static int k_setup(struct lg_run *run, char *err, size_t errlen)
{
	(void)run;
	(void)err;
	(void)errlen;
	return 0;
}

static void k_teardown(struct lg_run *run)
{
	(void)run;
}

static int k_thread_init(struct lg_thread *th)
{
	struct kthread *kt = calloc(1, sizeof(*kt));

	if (!kt) {
		lg_fail(th->run, "out of memory");
		return -1;
	}
	kt->ep = epoll_create1(EPOLL_CLOEXEC);
	if (kt->ep < 0) {
		lg_fail(th->run, "epoll_create1: %s", strerror(errno));
		free(kt);
		return -1;
	}
	for (uint32_t k = 0; k < th->nconns; k++)
		th->conns[k]->tp.k.fd = -1;
	th->tp = kt;
	return 0;
}

static void k_thread_fini(struct lg_thread *th)
{
	struct kthread *kt = th->tp;

	close(kt->ep);
	free(kt);
	th->tp = NULL;
}

static void arm_out(struct lg_conn *c, bool on)
{
	struct kthread *kt = c->th->tp;
	struct epoll_event e = {.events = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0u),
				.data.ptr = c};

	if (c->tp.k.epollout == on)
		return;
	c->tp.k.epollout = on;
	epoll_ctl(kt->ep, EPOLL_CTL_MOD, c->tp.k.fd, &e);
}

static int k_open(struct lg_thread *th, struct lg_conn *c)
{
	struct kthread *kt = th->tp;
	struct lg_run *run = th->run;
	const struct lg_cfg *cfg = &run->cfg;
	int one = 1;

	c->tp.k.fd = socket(cfg->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->tp.k.fd < 0) {
		lg_fail(run, "socket(): %s (raise the open-file limit for this many connections)",
			strerror(errno));
		return -1;
	}
	setsockopt(c->tp.k.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((cfg->src_ips > 1 || cfg->src_base != 0x7f000001u) && cfg->addr.ss_family == AF_INET) {
		uint32_t k = (uint32_t)(c - run->conns) % cfg->src_ips;
		struct sockaddr_in src = {.sin_family = AF_INET};
		src.sin_addr.s_addr = htonl(cfg->src_base + k);
		setsockopt(c->tp.k.fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(c->tp.k.fd, (struct sockaddr *)&src, sizeof(src))) {
			char a[INET_ADDRSTRLEN];
			inet_ntop(AF_INET, &src.sin_addr, a, sizeof(a));
			lg_fail(run, "bind to source address %s: %s", a, strerror(errno));
			return -1;
		}
	}
	if (connect(c->tp.k.fd, (const struct sockaddr *)&cfg->addr, cfg->addr_len) &&
	    errno != EINPROGRESS) {
		lg_fail(run, "connect to %s:%s: %s", cfg->host, cfg->port, strerror(errno));
		return -1;
	}
	struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.ptr = c};
	if (epoll_ctl(kt->ep, EPOLL_CTL_ADD, c->tp.k.fd, &e)) {
		lg_fail(run, "epoll_ctl: %s", strerror(errno));
		return -1;
	}
	c->tp.k.epollout = true;
	return 0;
}

static int k_send(struct lg_conn *c, const uint8_t *p, uint32_t len)
{
	for (;;) {
		ssize_t n = write(c->tp.k.fd, p, len);
		if (n > 0)
			return (int)n;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			arm_out(c, true);
			return 0;
		}
		lg_fail(c->th->run, "%s %u: write to broker failed: %s", lg_conn_role(c), c->idx,
			n < 0 ? strerror(errno) : "wrote nothing");
		return -1;
	}
}

static void k_flush(struct lg_thread *th)
{
	(void)th; /* write() already sent it */
}

static int k_read(struct lg_conn *c, uint64_t now)
{
	for (int rounds = 0; rounds < 4; rounds++) {
		if (c->in_len == c->in_cap) {
			/* Full of whole packets whose replies wait for the socket to drain. */
			return 0;
		}
		ssize_t n = read(c->tp.k.fd, c->in + c->in_len, c->in_cap - c->in_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0)
			return lg_conn_lost(c, n == 0 ? 0 : -errno);
		c->in_len += (uint32_t)n;
		if (lg_conn_decode(c, now))
			return -1;
		if ((size_t)n < 4096)
			return 0;
	}
	return 0;
}

static int k_event(struct lg_conn *c, uint32_t ev, uint64_t now)
{
	if (c->state == LG_CS_CLOSED)
		return 0;
	if (c->state == LG_CS_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(c->tp.k.fd, SOL_SOCKET, SO_ERROR, &err, &len) || err)
			return lg_conn_lost(c, -(err ? err : errno));
		if (!(ev & EPOLLOUT))
			return 0;
		if (lg_conn_established(c, now))
			return -1;
		if (!c->blocked)
			arm_out(c, false);
		return 0;
	}
	if (ev & EPOLLOUT) {
		if (lg_conn_writable(c, now))
			return -1;
		if (!c->blocked)
			arm_out(c, false);
	}
	if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		return k_read(c, now);
	return 0;
}

static int k_poll(struct lg_thread *th, uint64_t timeout_ns)
{
	struct kthread *kt = th->tp;
	struct timespec to = {
		.tv_sec = (time_t)(timeout_ns / 1000000000ull),
		.tv_nsec = (long)(timeout_ns % 1000000000ull),
	};

	int n = epoll_pwait2(kt->ep, kt->evs, KT_EVENTS, &to, NULL);
	if (n < 0 && errno != EINTR) {
		lg_fail(th->run, "epoll_pwait2: %s", strerror(errno));
		return -1;
	}
	uint64_t now = lg_now_ns();
	for (int i = 0; i < n; i++)
		if (k_event(kt->evs[i].data.ptr, kt->evs[i].events, now))
			return -1;
	return 0;
}

static void k_close(struct lg_conn *c, bool graceful)
{
	(void)graceful; /* close() sends what the socket holds, then FIN, either way */
	if (c->tp.k.fd >= 0)
		close(c->tp.k.fd);
	c->tp.k.fd = -1;
}

const struct lg_transport lg_tp_kernel = {
	.name = "kernel",
	.setup = k_setup,
	.teardown = k_teardown,
	.thread_init = k_thread_init,
	.thread_fini = k_thread_fini,
	.open = k_open,
	.send = k_send,
	.flush = k_flush,
	.poll = k_poll,
	.close = k_close,
};

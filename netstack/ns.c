/* SPDX-License-Identifier: MIT */
/*
 * The transport interface's entry points: configuration defaults, backend selection, and the
 * dispatch of each call to the backend's operations.
 */
#include <stdio.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <stdlib.h>

#include "ns_internal.h"

void ns_config_defaults(struct ns_config *cfg)
{
	*cfg = (struct ns_config){
		.backend = NS_BACKEND_KERNEL,
		.workers = 1,
		.bind = "127.0.0.1",
		.port = 1883,
		.backlog = 1024,
		.max_conns = 1u << 20,
		.rx_chunk = 64 * 1024,
		.tx_limit = 1024 * 1024,
	};
}

void ns_die(const char *file, int line, const char *msg)
{
	fprintf(stderr, "netstack: fatal: %s (%s:%d)\n", msg, file, line);
	abort();
}

struct ns_transport *ns_create(const struct ns_config *cfg, char *err, size_t errlen)
{
	if (cfg->workers == 0 || cfg->rx_chunk == 0 || cfg->tx_limit == 0 || !cfg->bind) {
		snprintf(err, errlen, "invalid transport configuration");
		return NULL;
	}
	switch (cfg->backend) {
	case NS_BACKEND_KERNEL:
		return ns_kernel_create(cfg, err, errlen);
	case NS_BACKEND_DPDK:
		return ns_dpdk_create(cfg, err, errlen);
	default:
		snprintf(err, errlen, "unknown backend %u", cfg->backend);
		return NULL;
	}
}

void ns_destroy(struct ns_transport *t)
{
	if (t)
		t->ops->destroy(t);
}

uint16_t ns_port(const struct ns_transport *t)
{
	return t->port;
}

unsigned ns_worker_count(const struct ns_transport *t)
{
	return t->nworkers;
}

struct ns_worker *ns_worker_get(struct ns_transport *t, unsigned idx)
{
	return idx < t->nworkers ? t->workers[idx] : NULL;
}

unsigned ns_poll(struct ns_worker *w, struct ns_event *ev, unsigned max, int timeout_ms)
{
	return w->t->ops->poll(w, ev, max, timeout_ms);
}

int ns_send(struct ns_conn *c, const struct iovec *iov, unsigned iovcnt)
{
	return c->w->t->ops->send(c, iov, iovcnt);
}

void ns_flush(struct ns_worker *w)
{
	w->t->ops->flush(w);
}

void ns_close(struct ns_conn *c, bool graceful)
{
	c->w->t->ops->close(c, graceful);
}

void ns_pause_rx(struct ns_conn *c, bool pause)
{
	c->w->t->ops->pause_rx(c, pause);
}

void ns_conn_set_user(struct ns_conn *c, void *user)
{
	c->user = user;
}

void *ns_conn_user(const struct ns_conn *c)
{
	return c->user;
}

size_t ns_conn_pending(const struct ns_conn *c)
{
	return c->w->t->ops->pending(c);
}

const char *ns_conn_peer(const struct ns_conn *c)
{
	static _Thread_local char buf[NS_PEER_LEN];
	char host[INET6_ADDRSTRLEN] = "?";

	inet_ntop(c->peer_v6 ? AF_INET6 : AF_INET, c->peer_ip, host, sizeof(host));
	snprintf(buf, sizeof(buf), c->peer_v6 ? "[%s]:%u" : "%s:%u", host, c->peer_port);
	return buf;
}

void ns_wake(struct ns_worker *w)
{
	w->t->ops->wake(w);
}

const struct ns_stats *ns_worker_stats(const struct ns_worker *w)
{
	return &w->stats;
}

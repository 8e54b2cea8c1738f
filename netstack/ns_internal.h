/* SPDX-License-Identifier: MIT */
/*
 * What the transport backends share: the operations table through which ns.c dispatches,
 * and the common heads of the transport, worker and connection objects, which each backend
 * embeds as the first member of its own structures.
 */
#ifndef NS_INTERNAL_H
#define NS_INTERNAL_H

#include <string.h>

#include "ns.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ns_ops {
	void (*destroy)(struct ns_transport *t);
	unsigned (*poll)(struct ns_worker *w, struct ns_event *ev, unsigned max, int timeout_ms);
	int (*send)(struct ns_conn *c, const struct iovec *iov, unsigned iovcnt);
	void (*flush)(struct ns_worker *w);
	void (*close)(struct ns_conn *c, bool graceful);
	void (*pause_rx)(struct ns_conn *c, bool pause);
	size_t (*pending)(const struct ns_conn *c);
	void (*wake)(struct ns_worker *w);
};

struct ns_transport {
	const struct ns_ops *ops;
	struct ns_config cfg;
	uint16_t port;
	unsigned nworkers;
	struct ns_worker **workers;
};

struct ns_worker {
	struct ns_transport *t;
	unsigned idx;
	struct ns_stats stats;
};

#define NS_PEER_LEN 56 /* "[" INET6_ADDRSTRLEN "]:65535" */

/* Per-connection objects are allocated in blocks of this many bytes, a size class of the
 * allocators (jemalloc's 96 KiB; below glibc's mmap threshold): as many objects as fit, so
 * that no block rounds up past its objects. */
#define NS_BLOCK_BYTES (96u * 1024u)

/* The peer's address is kept binary (formatted only when asked: ns_conn_peer), 20 bytes
 * instead of 56 of text in every connection. */
struct ns_conn {
	struct ns_worker *w;
	void *user;
	uint8_t peer_ip[16]; /* IPv4: the first 4 bytes */
	uint16_t peer_port;  /* host order */
	uint8_t peer_v6;
};

static inline void ns_conn_set_peer4(struct ns_conn *c, const void *ip_be, uint16_t port)
{
	memcpy(c->peer_ip, ip_be, 4);
	c->peer_port = port;
	c->peer_v6 = 0;
}

static inline void ns_conn_set_peer6(struct ns_conn *c, const void *ip, uint16_t port)
{
	memcpy(c->peer_ip, ip, 16);
	c->peer_port = port;
	c->peer_v6 = 1;
}

/* Backend constructors: fill err on failure. */
struct ns_transport *ns_kernel_create(const struct ns_config *cfg, char *err, size_t errlen);
struct ns_transport *ns_dpdk_create(const struct ns_config *cfg, char *err, size_t errlen);

/* Impossible states abort with file and line. */
#define NS_DIE(msg) ns_die(__FILE__, __LINE__, msg)
void ns_die(const char *file, int line, const char *msg) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif

#endif /* NS_INTERNAL_H */

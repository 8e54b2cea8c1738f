/* SPDX-License-Identifier: MIT */
/*
 * The transport interface: what the engine's worker cores see of the network, the same for
 * every backend (kernel sockets, DPDK with Tachyon's own TCP/IP).
 *
 * A transport has N workers. Each worker is driven by exactly one thread (its core), which
 * calls ns_poll() once per loop iteration, acts on the events, queues output with ns_send()
 * and calls ns_flush() at the end of the iteration. All ns_conn operations are worker-local:
 * only the thread of the worker that owns a connection may touch it. The one exception is
 * ns_wake(), which any thread may call.
 *
 * Receive is zero-copy: a DATA event is a view into the transport's buffers, valid until the
 * worker's next ns_poll(). The engine copies what it must keep (a partial packet).
 * Send copies into the transport (per-connection output queue) and applies back-pressure:
 * a connection queues at most tx_limit bytes; beyond that ns_send() refuses the whole write
 * with -ENOBUFS and a WRITABLE event follows once the queue has drained below half.
 *
 * Every connection ends with exactly one CLOSED event, whoever closed it. The handle stays
 * valid until the ns_poll() after the one that delivered CLOSED; after that it must not be
 * used.
 *
 * Order: a connection's events in one batch come as DATA..., WRITABLE, CLOSED. An ACCEPT is
 * the connection's only event in its batch (whatever arrived with the handshake is reported
 * by later polls), so every later event carries the user set while handling the ACCEPT.
 * The user of an event is the one set when ns_poll() collected it; a handler that changes it
 * in the middle of a batch reads ns_conn_user() for that connection's later events.
 */
#ifndef NS_H
#define NS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ns_transport;
struct ns_worker;
struct ns_conn;

enum ns_backend {
	NS_BACKEND_KERNEL = 0,
	NS_BACKEND_DPDK = 1,
};

struct ns_config {
	uint8_t backend;    /* enum ns_backend */
	unsigned workers;   /* number of workers (>= 1) */
	const char *bind;   /* listen address, numeric IPv4 or IPv6 ("127.0.0.1") */
	/* (strings are borrowed until ns_create() returns) */
	uint16_t port;      /* listen port; 0: an ephemeral port (see ns_port()) */
	int backlog;        /* listen backlog per worker */
	uint32_t max_conns; /* per worker; connections beyond are refused (counted) */
	uint32_t rx_chunk;  /* bytes read from one connection per poll at most */
	uint32_t tx_limit;  /* bytes queued per connection before back-pressure */
	/* DPDK backend only. */
	const char *dpdk_args; /* EAL arguments, space separated */
	const char *ip;        /* local address with prefix length, "10.0.0.2/24" */
	const char *gateway;   /* optional */
};

/* Fills cfg with defaults: kernel backend, 1 worker, 127.0.0.1:1883. */
void ns_config_defaults(struct ns_config *cfg);

enum ns_event_type {
	NS_EV_ACCEPT = 1,   /* a new connection; conn is fresh, user is NULL */
	NS_EV_DATA = 2,     /* data/len: bytes received, a view valid until the next ns_poll() */
	NS_EV_WRITABLE = 3, /* the output queue drained after ns_send() refused a write */
	NS_EV_CLOSED = 4,   /* the connection is gone; err: 0 orderly or local, else -errno */
};

struct ns_event {
	uint8_t type; /* enum ns_event_type */
	int err;
	uint32_t len;
	const uint8_t *data;
	struct ns_conn *conn;
	void *user; /* ns_conn_set_user()'s value */
};

/* Per-worker counters (read them from the worker's thread, or racily for monitoring). */
struct ns_stats {
	uint64_t accepted;
	uint64_t refused;    /* over max_conns */
	uint64_t closed;
	uint64_t rx_bytes;
	uint64_t tx_bytes;
	uint64_t rx_calls;   /* receive system calls or bursts */
	uint64_t tx_calls;   /* send system calls or bursts */
	uint64_t tx_full;    /* ns_send() refusals: back-pressure */
	uint64_t rx_paused;  /* times a connection's receive was paused */
	uint64_t errors;     /* connections closed by an error */
};

/*
 * Creates the transport and its listeners. Returns NULL on failure with a message in
 * err[0..errlen). Not thread-safe; call once at start-up.
 */
struct ns_transport *ns_create(const struct ns_config *cfg, char *err, size_t errlen);

/* Closes every connection and listener and frees everything. No worker may be polling. */
void ns_destroy(struct ns_transport *t);

/* The port the listeners are bound to (useful with cfg.port == 0). */
uint16_t ns_port(const struct ns_transport *t);

unsigned ns_worker_count(const struct ns_transport *t);
struct ns_worker *ns_worker_get(struct ns_transport *t, unsigned idx);

/*
 * Collects up to max events. Waits up to timeout_ms (0: do not wait, -1: until something
 * happens) when there is nothing to report. Returns the number of events. Worker thread only.
 */
unsigned ns_poll(struct ns_worker *w, struct ns_event *ev, unsigned max, int timeout_ms);

/*
 * Queues the bytes of iov for sending: all of them (0), or none with -ENOBUFS when the
 * connection's queue would exceed tx_limit (a WRITABLE event follows when it drains), or
 * -EPIPE when the connection is closing. The bytes are copied; iov is borrowed for the call.
 * Nothing leaves before ns_flush(). Worker thread only.
 */
int ns_send(struct ns_conn *c, const struct iovec *iov, unsigned iovcnt);

/* Writes out what ns_send() queued, one system call or burst per connection. */
void ns_flush(struct ns_worker *w);

/*
 * Closes the connection. With graceful, queued output is sent first and the close is an
 * orderly shutdown; without, queued output is dropped. A CLOSED event follows either way.
 */
void ns_close(struct ns_conn *c, bool graceful);

/* Stops (true) or resumes (false) receiving on the connection: back-pressure on a sender. */
void ns_pause_rx(struct ns_conn *c, bool pause);

void ns_conn_set_user(struct ns_conn *c, void *user);
void *ns_conn_user(const struct ns_conn *c);
/* Bytes queued and not yet sent. */
size_t ns_conn_pending(const struct ns_conn *c);
/* The peer's address as text ("127.0.0.1:53122", "[::1]:53122"), for logs: formatted into a
 * buffer of the calling thread, valid until its next call (one per log line). */
const char *ns_conn_peer(const struct ns_conn *c);

/* Wakes the worker if it is waiting in ns_poll(). Any thread. */
void ns_wake(struct ns_worker *w);

const struct ns_stats *ns_worker_stats(const struct ns_worker *w);

#ifdef __cplusplus
}
#endif

#endif /* NS_H */

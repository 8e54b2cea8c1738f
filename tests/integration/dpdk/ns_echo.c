/* SPDX-License-Identifier: MIT */
/*
 * A tiny server over the transport interface (ns.h), for the integration tests of the DPDK
 * backend until tachyond exists: every byte received on a connection is sent back (echo), with
 * back-pressure honoured (receive is paused while a refused write waits for WRITABLE). Works
 * with either backend, so the same client script can compare them.
 *
 *   ns_echo --backend dpdk --dpdk-args "<EAL args>" --ip A.B.C.D/LEN [--gateway A.B.C.D]
 *           --port N [--workers W] [--seconds S] [--stats]
 *   ns_echo --backend kernel --bind 127.0.0.1 --port N [--workers W]
 *
 * Prints "ready <port>" on stdout once listening; runs until SIGINT/SIGTERM or --seconds.
 * With --workers W, each worker is polled by a thread of its own, as the engine does.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ns.h"
#include "ns_dpdk.h"

struct echo_conn {
	uint8_t *held; /* bytes a refused ns_send() still owes the peer */
	size_t held_len;
	struct echo_conn *prev, *next; /* open connections, freed at exit if still open */
};

/* One per worker, touched only by its thread. */
struct echo_worker {
	struct ns_worker *w;
	struct echo_conn *open_conns;
	pthread_t thread;
	double seconds;
};

static void conn_unlink(struct echo_worker *ew, struct echo_conn *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		ew->open_conns = e->next;
	if (e->next)
		e->next->prev = e->prev;
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/*
 * Echoes d, or holds it when the send queue is full. Once something is held, everything after
 * it is held too, even if ns_send() would now take it: DATA events already collected in the
 * same ns_poll() batch arrive after ns_pause_rx(), and a smaller chunk that fits would
 * otherwise overtake the held bytes and the echo would come back reordered.
 */
static int send_or_hold(struct ns_conn *c, struct echo_conn *e, const uint8_t *d, size_t len)
{
	struct iovec v = {(void *)(uintptr_t)d, len};
	int rc = e->held_len ? -ENOBUFS : ns_send(c, &v, 1);
	if (rc != -ENOBUFS)
		return rc;
	uint8_t *n = realloc(e->held, e->held_len + len);
	if (!n)
		return -ENOMEM;
	memcpy(n + e->held_len, d, len);
	e->held = n;
	e->held_len += len;
	ns_pause_rx(c, true);
	return 0;
}

/* One worker's loop: until SIGINT/SIGTERM or the --seconds deadline. */
static void *echo_thread(void *arg)
{
	struct echo_worker *ew = arg;
	struct ns_worker *w = ew->w;
	double seconds = ew->seconds;
	struct ns_event ev[256];
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!stop) {
		unsigned n = ns_poll(w, ev, 256, 10);
		for (unsigned i = 0; i < n; i++) {
			struct ns_conn *c = ev[i].conn;
			/* not ev[i].user: DATA collected with its ACCEPT predates set_user */
			struct echo_conn *e = ns_conn_user(c);
			switch (ev[i].type) {
			case NS_EV_ACCEPT:
				e = calloc(1, sizeof(*e));
				if (!e) {
					ns_close(c, false);
					break;
				}
				ns_conn_set_user(c, e);
				e->next = ew->open_conns;
				if (ew->open_conns)
					ew->open_conns->prev = e;
				ew->open_conns = e;
				break;
			case NS_EV_DATA:
				if (!e)
					break; /* no state (calloc failed): already being reset */
				if (send_or_hold(c, e, ev[i].data, ev[i].len) != 0)
					ns_close(c, false);
				break;
			case NS_EV_WRITABLE:
				if (e->held_len) {
					struct iovec v = {e->held, e->held_len};
					if (ns_send(c, &v, 1) == 0) {
						e->held_len = 0;
						ns_pause_rx(c, false);
					}
				}
				break;
			case NS_EV_CLOSED:
				if (e) {
					conn_unlink(ew, e);
					free(e->held);
					free(e);
				}
				break;
			}
		}
		ns_flush(w);
		if (seconds > 0) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			if ((double)(now.tv_sec - t0.tv_sec) + (now.tv_nsec - t0.tv_nsec) / 1e9 >
			    seconds)
				break;
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct ns_config cfg;
	ns_config_defaults(&cfg);
	double seconds = 0;
	int stats = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--stats")) {
			stats = 1;
			continue;
		}
		if (!v) {
			fprintf(stderr, "ns_echo: %s needs a value\n", a);
			return 2;
		}
		i++;
		if (!strcmp(a, "--backend"))
			cfg.backend = !strcmp(v, "dpdk") ? NS_BACKEND_DPDK : NS_BACKEND_KERNEL;
		else if (!strcmp(a, "--dpdk-args"))
			cfg.dpdk_args = v;
		else if (!strcmp(a, "--ip"))
			cfg.ip = v;
		else if (!strcmp(a, "--gateway"))
			cfg.gateway = v;
		else if (!strcmp(a, "--bind"))
			cfg.bind = v;
		else if (!strcmp(a, "--port"))
			cfg.port = (uint16_t)atoi(v);
		else if (!strcmp(a, "--workers"))
			cfg.workers = (unsigned)atoi(v);
		else if (!strcmp(a, "--seconds"))
			seconds = atof(v);
		else {
			fprintf(stderr, "ns_echo: unknown option %s\n", a);
			return 2;
		}
	}
	char err[256];
	struct ns_transport *t = ns_create(&cfg, err, sizeof(err));
	if (!t) {
		fprintf(stderr, "ns_echo: %s\n", err);
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	printf("ready %u\n", ns_port(t));
	fflush(stdout);

	unsigned nw = ns_worker_count(t);
	struct echo_worker *ews = calloc(nw, sizeof(*ews));
	if (!ews) {
		fprintf(stderr, "ns_echo: out of memory\n");
		ns_destroy(t);
		return 1;
	}
	for (unsigned i = 0; i < nw; i++) {
		ews[i].w = ns_worker_get(t, i);
		ews[i].seconds = seconds;
		if (i > 0 && pthread_create(&ews[i].thread, NULL, echo_thread, &ews[i]) != 0) {
			fprintf(stderr, "ns_echo: cannot start worker %u\n", i);
			stop = 1;
			nw = i;
			break;
		}
	}
	if (nw > 0)
		echo_thread(&ews[0]);
	for (unsigned i = 1; i < nw; i++)
		pthread_join(ews[i].thread, NULL);
	if (stats) {
		for (unsigned i = 0; i < nw; i++) {
			const struct ns_stats *s = ns_worker_stats(ews[i].w);
			fprintf(stderr, "worker %u: accepted %llu closed %llu rx_bytes %llu "
					"tx_bytes %llu\n", i,
				(unsigned long long)s->accepted, (unsigned long long)s->closed,
				(unsigned long long)s->rx_bytes, (unsigned long long)s->tx_bytes);
		}
		ns_dpdk_dump_stats(t, stderr);
	}
	ns_destroy(t);
	/* connections still open when we were told to stop (a peer's FIN still in flight) */
	for (unsigned i = 0; i < nw; i++) {
		while (ews[i].open_conns) {
			struct echo_conn *e = ews[i].open_conns;
			conn_unlink(&ews[i], e);
			free(e->held);
			free(e);
		}
	}
	free(ews);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * The public engine API (tachyon.h): creation of the transport, the workers, the rings and the
 * shared indexes; start, run (the control loop), stop, reload, destroy. The host's API is in
 * eng_host.c, the hooks in eng_hook.c, plugins in eng_plugin.c, the auth threads in eng_auth.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "eng_internal.h"
#include "tachyon.h"

static unsigned online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1u;
}

/* Items per ring between two cores: ring_size rounded up to a power of two, or by default
 * 65536 (2 MiB) up to 4 workers, less per ring with more of them (rings grow as the square).
 * Deep rings let a core be descheduled for tens of milliseconds at a million messages per
 * second before QoS 0 meets a full ring (counted as dropped/ring_full). */
static uint32_t ring_size(uint32_t want, unsigned workers)
{
	uint32_t size = 8;

	if (!want)
		want = workers <= 4 ? 65536 : workers <= 8 ? 32768 : workers <= 16 ? 16384 : 8192;
	while (size < want)
		size <<= 1;
	return size;
}

struct tachyon *tachyon_create(const struct eng_config *cfg, char *err, size_t errlen)
{
	struct tachyon *e = aligned_alloc(ENG_CACHE_LINE, (sizeof(*e) + ENG_CACHE_LINE - 1) &
								     ~(size_t)(ENG_CACHE_LINE - 1));
	struct ns_config nc;
	unsigned n;

	if (!e) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	memset(e, 0, sizeof(*e));
	e->ctl_evfd = -1;
	e->cfg = *cfg;
	eng_log_set_level(cfg->log_level);
	e->start_ms = eng_now_ms();
	n = cfg->workers ? cfg->workers : online_cpus();
	if (n > ENG_MAX_WORKERS) {
		if (cfg->workers) {
			snprintf(err, errlen, "workers: at most %u", ENG_MAX_WORKERS);
			goto fail;
		}
		n = ENG_MAX_WORKERS;
	}
	e->nworkers = n;

	mt_config_defaults(&e->mtcfg);
	e->mtcfg.max_topic_len = cfg->max_topic_length;
	e->mtcfg.max_levels = cfg->max_topic_levels < MT_LEVELS_MAX ? cfg->max_topic_levels
								   : MT_LEVELS_MAX;
	e->mtcfg.max_cores = n + 1; /* core n: the host (eng_host.c) */
	e->worker_bits = (UINT64_C(1) << n) - 1;
	e->mtcfg.retain_max_count = cfg->max_retained_messages;
	e->mtcfg.retain_max_bytes = cfg->max_retained_bytes;

	ns_config_defaults(&nc);
	nc.backend = cfg->backend == ENG_BACKEND_DPDK ? NS_BACKEND_DPDK : NS_BACKEND_KERNEL;
	nc.workers = n;
	nc.bind = cfg->bind;
	nc.port = (uint16_t)cfg->port;
	nc.max_conns = (cfg->max_connections + n - 1) / n + 16;
	nc.dpdk_args = cfg->dpdk_args;
	nc.ip = cfg->ip;
	nc.gateway = cfg->gateway[0] ? cfg->gateway : NULL;
	e->ns = ns_create(&nc, err, errlen);
	if (!e->ns)
		goto fail;

	e->index = mt_index_create(&e->mtcfg);
	e->ctl_evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	e->workers = calloc(n, sizeof(*e->workers));
	e->rings = calloc((size_t)(n + 1) * (n + 1), sizeof(*e->rings));
	e->srcs = aligned_alloc(ENG_CACHE_LINE, (n + 1) * sizeof(*e->srcs));
	if (!e->index || e->ctl_evfd < 0 || !e->workers || !e->rings || !e->srcs) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	memset(e->srcs, 0, (n + 1) * sizeof(*e->srcs));
	uint32_t rsize = ring_size(cfg->ring_size, n);
	for (unsigned s = 0; s <= n; s++) {
		e->srcs[s].outq = calloc(n + 1, sizeof(struct eng_outq));
		if (!e->srcs[s].outq) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		for (unsigned d = 0; d <= n; d++) {
			if (s == d)
				continue;
			if (!(e->rings[s * (n + 1) + d] = eng_ring_create(rsize))) {
				snprintf(err, errlen, "out of memory");
				goto fail;
			}
		}
	}
	/* a worker's own ring (s == d) is never pushed to, but drained: give it an empty one */
	for (unsigned s = 0; s <= n; s++) {
		if (!(e->rings[s * (n + 1) + s] = eng_ring_create(2))) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		if (!(e->workers[i] = eng_worker_create(e, i))) {
			snprintf(err, errlen, "out of memory creating worker %u", i);
			goto fail;
		}
	}
	if (eng_control_init(e, err, errlen) != 0)
		goto fail;
	if (eng_host_init(e) != 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (eng_plugins_load(e, err, errlen) != 0)
		goto fail;
	return e;
fail:
	tachyon_destroy(e);
	return NULL;
}

uint16_t tachyon_port(const struct tachyon *t)
{
	return ns_port(t->ns);
}

int tachyon_start(struct tachyon *e)
{
	char err[256];
	int arc;

	if (e->started)
		return -EINVAL;
	arc = eng_auth_start(e, err, sizeof(err));
	if (arc != 0) {
		ENG_ERR("%s", err);
		return arc;
	}
	for (unsigned i = 0; i < e->nworkers; i++) {
		int rc = pthread_create(&e->workers[i]->thread, NULL, eng_worker_main, e->workers[i]);
		if (rc != 0) {
			/* stop the ones started */
			atomic_store_explicit(&e->workers_exit, true, memory_order_release);
			for (unsigned k = 0; k < i; k++) {
				ns_wake(e->workers[k]->nsw);
				pthread_join(e->workers[k]->thread, NULL);
			}
			eng_auth_stop(e);
			return -rc;
		}
		char name[24];
		snprintf(name, sizeof(name), "tachyon-w%u", i % 1000u);
		name[15] = '\0';
		pthread_setname_np(e->workers[i]->thread, name);
	}
	e->started = true;
	bool dpdk = e->cfg.backend == ENG_BACKEND_DPDK;
	ENG_NOTICE("listening on %s:%u with %u worker%s (%s backend)", dpdk ? e->cfg.ip : e->cfg.bind,
		   tachyon_port(e), e->nworkers, e->nworkers == 1 ? "" : "s",
		   dpdk ? "dpdk" : "kernel");
	return 0;
}

int tachyon_run(struct tachyon *e)
{
	int rc;

	if (!e->started)
		return -EINVAL;
	rc = eng_control_run(e);
	for (unsigned i = 0; i < e->nworkers; i++)
		pthread_join(e->workers[i]->thread, NULL);
	eng_auth_stop(e);
	e->started = false;
	ENG_NOTICE("stopped");
	return rc;
}

void tachyon_stop(struct tachyon *e)
{
	uint64_t one = 1;
	/* relaxed: the eventfd write wakes the control thread, which then reads the flag */
	atomic_store_explicit(&e->stop_req, true, memory_order_relaxed);
	if (write(e->ctl_evfd, &one, sizeof(one)) < 0) {
		/* the counter is saturated: the control thread is awake anyway */
	}
}

void tachyon_reload(struct tachyon *e)
{
	uint64_t one = 1;
	atomic_store_explicit(&e->reload_req, true, memory_order_relaxed);
	if (write(e->ctl_evfd, &one, sizeof(one)) < 0) {
		/* as above */
	}
}

void tachyon_set_reload_args(struct tachyon *e, int argc, char **argv)
{
	e->reload_argc = argc;
	e->reload_argv = argv;
}

void tachyon_destroy(struct tachyon *e)
{
	unsigned n;

	if (!e)
		return;
	n = e->nworkers;
	/* items still in rings hold message references or requests: release them */
	if (e->rings) {
		for (unsigned s = 0; s <= n; s++) {
			for (unsigned d = 0; d <= n; d++) {
				struct eng_ring *r = e->rings[s * (n + 1) + d];
				struct eng_ritem it;
				if (!r)
					continue;
				while (eng_ring_pop(r, &it, 1) == 1) {
					if (it.type == RI_PUB || it.type == RI_SHARE ||
					    it.type == RI_RETAIN)
						eng_msg_unref(it.p);
					else if (it.type == RI_CLAIM || it.type == RI_TAKEOVER ||
						 it.type == RI_XFER || it.type == RI_AUTH ||
						 it.type == RI_REAUTH)
						eng_claim_free(it.p);
					else if (it.type == RI_SUB)
						eng_subreq_free(it.p);
					else if (it.type == RI_RELEASE)
						free(it.p);
					else if (it.type == RI_IDX_DEL) {
						struct eng_filter_list *fl = it.p;
						while (fl->head) {
							struct eng_sub *sb = fl->head;
							fl->head = sb->next;
							free(sb);
						}
						free(fl);
					}
				}
				eng_ring_free(r);
			}
		}
		free(e->rings);
	}
	if (e->srcs) {
		for (unsigned s = 0; s <= n; s++) {
			if (!e->srcs[s].outq)
				continue;
			for (unsigned d = 0; d <= n; d++) {
				while (e->srcs[s].outq[d].head) {
					struct eng_overflow *o = e->srcs[s].outq[d].head;
					e->srcs[s].outq[d].head = o->next;
					if (o->it.type == RI_PUB || o->it.type == RI_SHARE)
						eng_msg_unref(o->it.p);
					free(o);
				}
			}
			free(e->srcs[s].outq);
		}
		free(e->srcs);
	}
	eng_auth_stop(e); /* never started, or already stopped by tachyon_run() */
	eng_host_fini(e);
	eng_control_fini(e);
	if (e->workers) {
		for (unsigned i = 0; i < n; i++)
			eng_worker_destroy(e->workers[i]);
		free(e->workers);
	}
	mt_index_destroy(e->index);
	ns_destroy(e->ns);
	if (e->ctl_evfd >= 0)
		close(e->ctl_evfd);
	eng_plugins_unload(e); /* last: hook contexts may belong to the plugin */
	free(e);
}

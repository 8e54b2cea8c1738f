/* SPDX-License-Identifier: MIT */
/*
 * Load generator: topologies. Turns the options into topics per publisher, filters per
 * subscriber, the range of publishers each subscriber expects, connections with their buffers,
 * and the assignment of connections to threads (round-robin).
 *
 * Names carry the run id, so concurrent or stale runs on the same broker never cross:
 *   topics    <prefix>/<run>/p/<i> (pairs), <prefix>/<run>/x (fan-in, fan-out, shared),
 *             <prefix>/<run>/w/<i>/data (wildcard; filter <prefix>/<run>/w/+/data)
 *   clients   p:<group>:<run>-<i>, s:<group>:<run>-<j>, i:0:<run>-<k>
 * The client id convention "<role>:<group>:" is what bench_relay routes by: a publisher's
 * bytes go to the subscribers of its group (pairs: group i; everything else: group 0).
 *
 * All memory is allocated here, before the threads start, and freed by lg_scen_teardown().
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_lg.h"

static const char *const topo_names[] = {
	[LG_TOPO_PAIRS] = "pairs",	 [LG_TOPO_FANIN] = "fanin",   [LG_TOPO_FANOUT] = "fanout",
	[LG_TOPO_WILDCARD] = "wildcard", [LG_TOPO_SHARED] = "shared", [LG_TOPO_IDLE] = "idle",
	[LG_TOPO_STORM] = "storm",
};

const char *lg_topo_name(int topo)
{
	return topo >= 0 && topo <= LG_TOPO_STORM ? topo_names[topo] : "?";
}

int lg_topo_parse(const char *s)
{
	for (int i = 0; i <= LG_TOPO_STORM; i++)
		if (!strcmp(s, topo_names[i]))
			return i;
	return -EINVAL;
}

static char *dup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *dup_printf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

/* Size of one PUBLISH on the wire, to size the buffers. */
static uint32_t publish_size(const struct lg_cfg *cfg, size_t topic_len)
{
	uint32_t body = 2 + (uint32_t)topic_len + (cfg->qos ? 2 : 0) + (cfg->version == ENG_V5) +
			cfg->payload;
	return 1 + eng_vbi_size(body) + body;
}

static int conn_alloc(struct lg_conn *c, uint32_t in_cap, uint32_t out_cap)
{
	c->in = malloc(in_cap);
	c->out = malloc(out_cap);
	if (!c->in || !c->out)
		return -ENOMEM;
	c->in_cap = in_cap;
	c->out_cap = out_cap;
	return 0;
}

static int setup_pubsub(struct lg_run *run)
{
	struct lg_cfg *cfg = &run->cfg;
	const char *p = cfg->prefix, *r = cfg->run_id;
	uint32_t np = cfg->pubs, ns = cfg->subs;

	run->topics = calloc(np, sizeof(*run->topics));
	run->filters = calloc(ns, sizeof(*run->filters));
	run->pub_sent = calloc(np, sizeof(*run->pub_sent));
	if (!run->topics || !run->filters || !run->pub_sent)
		return -ENOMEM;
	for (uint32_t i = 0; i < np; i++) {
		switch (cfg->topo) {
		case LG_TOPO_PAIRS:
			run->topics[i] = dup_printf("%s/%s/p/%u", p, r, i);
			break;
		case LG_TOPO_WILDCARD:
			run->topics[i] = dup_printf("%s/%s/w/%u/data", p, r, i);
			break;
		default:
			run->topics[i] = dup_printf("%s/%s/x", p, r);
			break;
		}
		if (!run->topics[i])
			return -ENOMEM;
	}
	for (uint32_t j = 0; j < ns; j++) {
		switch (cfg->topo) {
		case LG_TOPO_PAIRS:
			run->filters[j] = dup_printf("%s/%s/p/%u", p, r, j);
			break;
		case LG_TOPO_WILDCARD:
			run->filters[j] = dup_printf("%s/%s/w/+/data", p, r);
			break;
		case LG_TOPO_SHARED:
			run->filters[j] = dup_printf("$share/lg%s/%s/%s/x", r, p, r);
			break;
		default:
			run->filters[j] = dup_printf("%s/%s/x", p, r);
			break;
		}
		if (!run->filters[j])
			return -ENOMEM;
	}

	if (cfg->topo == LG_TOPO_SHARED) {
		/* Every sequence number that can be sent needs a bit: bound the publishers. */
		uint64_t cap = cfg->count;
		if (!cap) {
			cap = cfg->rate > 0
				      ? (uint64_t)(cfg->rate / np * cfg->duration * 1.2) + 1024
				      : UINT64_C(1) << 24;
		}
		run->shared_cap = cap;
		run->shared = calloc(np, sizeof(*run->shared));
		if (!run->shared)
			return -ENOMEM;
		for (uint32_t i = 0; i < np; i++)
			if (lg_seq_shared_init(&run->shared[i], cap))
				return -ENOMEM;
	}

	uint32_t psize = publish_size(cfg, strlen(run->topics[0]) + 64);
	uint32_t pub_out = psize * 64 > 65536 ? psize * 64 : 65536;
	uint32_t sub_in = psize * 8 > 65536 ? psize * 8 : 65536;

	for (uint32_t i = 0; i < np; i++) {
		struct lg_conn *c = &run->conns[i];
		if (conn_alloc(c, 16384, pub_out))
			return -ENOMEM;
		c->role = LG_PUB;
		c->idx = i;
		c->topic = run->topics[i];
		c->topic_len = (uint16_t)strlen(c->topic);
		c->target = cfg->count ? cfg->count : UINT64_MAX;
		if (run->shared && c->target > run->shared_cap)
			c->target = run->shared_cap;
		c->payload = malloc(cfg->payload);
		if (!c->payload)
			return -ENOMEM;
		for (uint32_t k = 0; k < cfg->payload; k++)
			c->payload[k] = (uint8_t)('a' + k % 26);
		if (cfg->qos) {
			c->slots = calloc(cfg->inflight, sizeof(*c->slots));
			if (!c->slots)
				return -ENOMEM;
		}
	}
	for (uint32_t j = 0; j < ns; j++) {
		struct lg_conn *c = &run->conns[np + j];
		if (conn_alloc(c, sub_in, 16384))
			return -ENOMEM;
		c->role = LG_SUB;
		c->idx = j;
		c->filter = run->filters[j];
		if (cfg->topo == LG_TOPO_PAIRS) {
			c->trk_lo = j;
			c->trk_n = 1;
		} else {
			c->trk_lo = 0;
			c->trk_n = np;
		}
		if (cfg->topo != LG_TOPO_SHARED) {
			c->trk = calloc(c->trk_n, sizeof(*c->trk));
			if (!c->trk)
				return -ENOMEM;
		}
		if (cfg->sub_qos == 2) {
			c->qos2_ids = calloc(65536 / 64, sizeof(uint64_t));
			if (!c->qos2_ids)
				return -ENOMEM;
		}
	}
	return 0;
}

int lg_scen_setup(struct lg_run *run)
{
	struct lg_cfg *cfg = &run->cfg;
	bool idle = cfg->topo == LG_TOPO_IDLE || cfg->topo == LG_TOPO_STORM;
	int rc;

	if (idle) {
		cfg->pubs = 0;
		cfg->subs = 0;
		run->nconns = cfg->conns;
	} else {
		if (cfg->topo == LG_TOPO_PAIRS)
			cfg->subs = cfg->pubs;
		run->nconns = cfg->pubs + cfg->subs;
	}
	if (!run->nconns)
		return -EINVAL;
	if (cfg->threads > run->nconns)
		cfg->threads = run->nconns;

	run->conns = calloc(run->nconns, sizeof(*run->conns));
	run->th = calloc(cfg->threads, sizeof(*run->th));
	if (!run->conns || !run->th)
		return -ENOMEM;

	if (idle) {
		for (uint32_t k = 0; k < run->nconns; k++) {
			struct lg_conn *c = &run->conns[k];
			rc = conn_alloc(c, 256, 256);
			if (rc)
				return rc;
			c->role = LG_IDLE;
			c->idx = k;
		}
		/* The first connection opened also watches the broker's $SYS memory figure. */
		if (cfg->sys_topic[0] && cfg->topo == LG_TOPO_IDLE) {
			run->sys_conn = &run->conns[0];
			run->sys_conn->filter = cfg->sys_topic;
		}
	} else {
		rc = setup_pubsub(run);
		if (rc)
			return rc;
	}

	for (uint32_t t = 0; t < cfg->threads; t++) {
		struct lg_thread *th = &run->th[t];
		th->id = (int)t;
		th->run = run;
		uint32_t share = run->nconns / cfg->threads + 1;
		th->conns = calloc(share, sizeof(*th->conns));
		th->pubs = calloc(share, sizeof(*th->pubs));
		th->dirty = calloc(share, sizeof(*th->dirty));
		if (!th->conns || !th->pubs || !th->dirty)
			return -ENOMEM;
	}
	for (uint32_t k = 0; k < run->nconns; k++) {
		struct lg_thread *th = &run->th[k % cfg->threads];
		run->conns[k].th = th;
		th->conns[th->nconns++] = &run->conns[k];
		if (run->conns[k].role == LG_PUB)
			th->pubs[th->npubs++] = &run->conns[k];
	}
	return 0;
}

void lg_scen_teardown(struct lg_run *run)
{
	const struct lg_cfg *cfg = &run->cfg;

	for (uint32_t k = 0; run->conns && k < run->nconns; k++) {
		struct lg_conn *c = &run->conns[k];
		free(c->in);
		free(c->out);
		free(c->slots);
		free(c->payload);
		free(c->trk);
		free(c->qos2_ids);
	}
	for (uint32_t i = 0; run->topics && i < cfg->pubs; i++)
		free(run->topics[i]);
	for (uint32_t j = 0; run->filters && j < cfg->subs; j++)
		free(run->filters[j]);
	for (uint32_t i = 0; run->shared && i < cfg->pubs; i++)
		lg_seq_shared_fini(&run->shared[i]);
	for (uint32_t t = 0; run->th && t < cfg->threads; t++) {
		free(run->th[t].conns);
		free(run->th[t].pubs);
		free(run->th[t].dirty);
	}
	free(run->shared);
	free(run->topics);
	free(run->filters);
	free(run->pub_sent);
	free(run->conns);
	free(run->th);
}

uint64_t lg_scen_expected(const struct lg_run *run)
{
	const struct lg_cfg *cfg = &run->cfg;
	uint64_t total = 0, all = 0;

	for (uint32_t i = 0; i < cfg->pubs; i++)
		all += run->pub_sent[i];
	switch (cfg->topo) {
	case LG_TOPO_PAIRS:
		return all;
	case LG_TOPO_SHARED:
		return all; /* each message to exactly one member */
	default:
		for (uint32_t j = 0; j < cfg->subs; j++)
			total += all;
		return total;
	}
}

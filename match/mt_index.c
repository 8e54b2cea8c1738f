/* SPDX-License-Identifier: MIT */
/*
 * The global subscription index: filter -> the set of worker cores with subscribers on it.
 *
 * Design. Every worker core reads it for every PUBLISH; only the control thread writes it.
 *  - Readers (mt_index_match) never block, lock, write shared memory or allocate: they probe
 *    struct mt_fidx (mt_fidx.c) under liburcu QSBR and OR together the core masks of the
 *    matching filters, trusting 64-bit filter keys (a collision only adds a core: the result
 *    is a routing hint that each core's mt_local refines exactly; see match.h). A reader may
 *    hold pointers into the index only until its next mt_rcu_quiescent(), which each worker
 *    calls once per loop iteration.
 *  - The writer applies deltas "core C has one more/fewer subscriber on F". The mask bit of C is
 *    set on the first subscriber and cleared with the last, tracked by per-core counts that only
 *    the writer reads (so they need no atomics and can be reallocated freely). A mask is one
 *    64-bit word, stored atomically: readers see a filter's core set before or after a delta,
 *    never a mixture. An emptied filter is unlinked and freed through call_rcu.
 *  - Exact filters cost a publish one probe of the exact table; wildcard filters one probe per
 *    filter shape that a cached summary does not rule out, all issued at once (mt_fidx.c).
 *  - '$'-topics never match filters whose first level is '+' or '#' (MQTT 4.7.2).
 *  - Filter records and the shared tree's nodes are allocated from the index's own arena of
 *    huge-page chunks (mt_arena.c); retired ones return to it from the call_rcu thread, so the
 *    arena is destroyed only after mt_rcu_barrier. Its bytes are in mt_index_stats (malloc
 *    statistics do not see them).
 * Shared subscriptions live in a second trie (mt_share.c).
 */
#include <errno.h>
#include <stdlib.h>

#include "mt_internal.h"

/* ------------------------------------------------------------------------------------------ */
/* Core sets with counts (writer only, except mask which readers load). */

static unsigned mt_rank(uint64_t mask, unsigned core)
{
	return (unsigned)__builtin_popcountll(mask & ((1ull << core) - 1));
}

int mt_cores_inc(uint64_t *maskp, uintptr_t *datap, unsigned core)
{
	uint64_t m = *maskp, bit = 1ull << core;
	unsigned n = (unsigned)__builtin_popcountll(m);

	if (m & bit) {
		uint32_t *c = n == 1 ? NULL : (uint32_t *)*datap + mt_rank(m, core);
		uint64_t v = c ? *c : *datap;
		if (v >= UINT32_MAX)
			return -EOVERFLOW;
		if (c)
			(*c)++;
		else
			*datap = (uintptr_t)(v + 1);
		return 0;
	}
	if (n == 0) {
		*datap = 1;
	} else {
		uint32_t *c;
		if (n == 1) {
			c = malloc(2 * sizeof(*c));
			if (!c)
				return -ENOMEM;
			c[0] = (uint32_t)*datap;
		} else {
			c = realloc((uint32_t *)*datap, (n + 1) * sizeof(*c));
			if (!c)
				return -ENOMEM;
		}
		/* n counts in rank order without the new core; open a hole at its rank. */
		unsigned r = mt_rank(m, core);
		memmove(c + r + 1, c + r, (n - r) * sizeof(*c));
		c[r] = 1;
		*datap = (uintptr_t)c;
	}
	MT_STORE_RLX(maskp, m | bit); /* readers only need some consistent value: no ordering */
	return 0;
}

int mt_cores_dec(uint64_t *maskp, uintptr_t *datap, unsigned core)
{
	uint64_t m = *maskp, bit = 1ull << core;
	unsigned n = (unsigned)__builtin_popcountll(m);

	if (!(m & bit))
		return -ENOENT;
	if (n == 1) {
		if (*datap > 1) {
			*datap = *datap - 1;
			return 0;
		}
		MT_STORE_RLX(maskp, 0);
		*datap = 0;
		return 0;
	}
	uint32_t *c = (uint32_t *)*datap;
	unsigned r = mt_rank(m, core);
	if (c[r] > 1) {
		c[r]--;
		return 0;
	}
	MT_STORE_RLX(maskp, m & ~bit);
	memmove(c + r, c + r + 1, (n - r - 1) * sizeof(*c));
	if (n == 2) {
		*datap = c[0];
		free(c);
	} else {
		uint32_t *s = realloc(c, (n - 1) * sizeof(*c));
		*datap = (uintptr_t)(s ? s : c); /* a failed shrink keeps the bigger array */
	}
	return 0;
}

void mt_cores_free(uint64_t mask, uintptr_t data)
{
	if (__builtin_popcountll(mask) >= 2)
		free((void *)data);
}

/* ------------------------------------------------------------------------------------------ */

static int mt_config_check(const struct mt_config *cfg)
{
	if (cfg->max_levels == 0 || cfg->max_levels > MT_LEVELS_MAX || cfg->max_topic_len == 0 ||
	    cfg->max_cores == 0 || cfg->max_cores > MT_CORES_MAX ||
	    (cfg->share_policy != MT_SHARE_ROUND_ROBIN && cfg->share_policy != MT_SHARE_STICKY))
		return -EINVAL;
	return 0;
}

struct mt_index *mt_index_create(const struct mt_config *cfg)
{
	struct mt_index *idx = calloc(1, sizeof(*idx));

	if (!idx)
		goto err_alloc;
	if (cfg)
		idx->cfg = *cfg;
	else
		mt_config_defaults(&idx->cfg);
	if (mt_config_check(&idx->cfg) < 0) {
		free(idx);
		errno = EINVAL;
		return NULL;
	}
	idx->rc.rcu = true;
	idx->rc.arena = mt_arena_create();
	if (!idx->rc.arena)
		goto err_arena;
	uint64_t seed = idx->cfg.hash_seed ? idx->cfg.hash_seed : mt_random_seed();
	if (mt_fidx_init(&idx->plain, seed, &idx->rc) < 0)
		goto err_tree;
	if (mt_tree_init(&idx->stree, seed ^ MT_P1, &idx->rc) < 0)
		goto err_stree;
	if (mt_htab_init(&idx->groups, 8) < 0)
		goto err_groups;
	return idx;

err_groups:
	mt_tree_fini(&idx->stree, NULL, NULL);
err_stree:
	mt_fidx_fini(&idx->plain);
err_tree:
	mt_arena_destroy(idx->rc.arena);
err_arena:
	free(idx);
err_alloc:
	errno = ENOMEM;
	return NULL;
}

void mt_index_destroy(struct mt_index *idx)
{
	if (!idx)
		return;
	mt_index_share_fini_(idx);
	mt_fidx_fini(&idx->plain);
	mt_htab_fini(&idx->groups);
	mt_reclaim_flush(&idx->rc);
	/* Batches handed to call_rcu earlier (by this index) are freed by the call_rcu thread,
	 * some into the arena: it goes once they all have. */
	mt_rcu_barrier();
	mt_arena_destroy(idx->rc.arena);
	free(idx);
}

static int mt_index_parse(const struct mt_index *idx, const char *filter, size_t len,
			  unsigned core, struct mt_share_spec *spec)
{
	int ret;

	if (core >= idx->cfg.max_cores)
		return -EINVAL;
	if (mt_topic_is_shared(filter, len)) {
		ret = mt_topic_share_parse(&idx->cfg, filter, len, spec, NULL);
		return ret < 0 ? ret : 1;
	}
	return mt_topic_filter_check(&idx->cfg, filter, len, NULL);
}

int mt_index_add(struct mt_index *idx, const char *filter, size_t len, unsigned core)
{
	struct mt_share_spec spec;
	int ret = mt_index_parse(idx, filter, len, core, &spec);

	if (ret < 0)
		return ret;
	if (ret == 1) {
		ret = mt_index_share_add_(idx, &spec, core);
		mt_reclaim_flush(&idx->rc);
		return ret;
	}
	ret = mt_fidx_add(&idx->plain, filter, len, core);
	mt_reclaim_flush(&idx->rc);
	return ret;
}

int mt_index_del(struct mt_index *idx, const char *filter, size_t len, unsigned core)
{
	struct mt_share_spec spec;
	int ret = mt_index_parse(idx, filter, len, core, &spec);

	if (ret < 0)
		return ret;
	if (ret == 1) {
		ret = mt_index_share_del_(idx, &spec, core);
		mt_reclaim_flush(&idx->rc);
		return ret;
	}
	ret = mt_fidx_del(&idx->plain, filter, len, core);
	mt_reclaim_flush(&idx->rc);
	return ret;
}

uint64_t mt_index_match(const struct mt_index *idx, const char *topic, size_t len)
{
	return mt_fidx_match(&idx->plain, topic, len);
}

void mt_index_stats_get(const struct mt_index *idx, struct mt_index_stats *st)
{
	st->exact_filters = idx->plain.nexact;
	st->wildcard_filters = idx->plain.nwild;
	st->trie_nodes = idx->plain.nshapes;
	st->shape_programs = idx->plain.view->nprog;
	st->share_groups = idx->ngroups;
	st->arena_bytes = mt_arena_bytes(idx->rc.arena);
}

void mt_index_walk_stats(const struct mt_index *idx, const char *topic, size_t len,
			 struct mt_walk_stats *st)
{
	mt_fidx_walk_stats(&idx->plain, topic, len, st);
}

int mt_index_test_prog_limit(struct mt_index *idx, uint32_t limit)
{
	return mt_fidx_prog_limit(&idx->plain, limit);
}

int mt_index_test_key_mask(struct mt_index *idx, uint64_t mask)
{
	if (idx->plain.nexact || idx->plain.nwild)
		return -EBUSY;
	idx->plain.kmask = mask;
	return 0;
}

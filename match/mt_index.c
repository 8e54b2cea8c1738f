/* SPDX-License-Identifier: MIT */
/*
 * The global subscription index: filter -> the set of worker cores with subscribers on it.
 *
 * Design. Every worker core reads it for every PUBLISH; only the control thread writes it.
 *  - Readers (mt_index_match) never block, lock, write shared memory or allocate: they walk
 *    struct mt_tree (mt_internal.h) under liburcu QSBR and OR together the core masks of the
 *    matching filters. A reader may hold pointers into the index only until its next
 *    mt_rcu_quiescent(), which each worker calls once per loop iteration.
 *  - The writer applies deltas "core C has one more/fewer subscriber on F". The mask bit of C is
 *    set on the first subscriber and cleared with the last, tracked by per-core counts that only
 *    the writer reads (so they need no atomics and can be reallocated freely). A mask is one
 *    64-bit word, stored atomically: readers see a filter's core set before or after a delta,
 *    never a mixture. An emptied filter is unlinked and freed through call_rcu.
 *  - Exact filters cost a publish one probe of the exact hash; wildcard filters a walk of the
 *    trie that probes the nodes a topic may lead to all at once (see mt_internal.h).
 *  - '$'-topics never match filters whose first level is '+' or '#' (MQTT 4.7.2).
 *  - Trie nodes and exact entries (both trees) are allocated from the index's own arena of
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
	if (mt_tree_init(&idx->tree, seed, &idx->rc) < 0)
		goto err_tree;
	if (mt_tree_init(&idx->stree, seed ^ MT_P1, &idx->rc) < 0)
		goto err_stree;
	if (mt_htab_init(&idx->groups, 8) < 0)
		goto err_groups;
	return idx;

err_groups:
	mt_tree_fini(&idx->stree, NULL, NULL);
err_stree:
	mt_tree_fini(&idx->tree, NULL, NULL);
err_tree:
	mt_arena_destroy(idx->rc.arena);
err_arena:
	free(idx);
err_alloc:
	errno = ENOMEM;
	return NULL;
}

static void mt_index_term_fini(struct mt_term *term, void *ctx)
{
	(void)ctx;
	mt_cores_free(term->mask, term->data);
}

void mt_index_destroy(struct mt_index *idx)
{
	if (!idx)
		return;
	mt_index_share_fini_(idx);
	mt_tree_fini(&idx->tree, mt_index_term_fini, NULL);
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
	struct mt_tpos pos;
	int ret = mt_index_parse(idx, filter, len, core, &spec);

	if (ret < 0)
		return ret;
	if (ret == 1) {
		ret = mt_index_share_add_(idx, &spec, core);
		mt_reclaim_flush(&idx->rc);
		return ret;
	}
	struct mt_term *term = mt_tree_get(&idx->tree, filter, len, true, &pos);
	if (!term) {
		ret = -ENOMEM;
		goto out;
	}
	bool was_empty = mt_term_empty(term);
	ret = mt_cores_inc(&term->mask, &term->data, core);
	if (ret == 0 && was_empty && !pos.ex)
		idx->nwildcard++;
	if (mt_term_empty(term))
		mt_tree_prune(&idx->tree, &pos); /* failed on a brand new filter: undo it */
out:
	mt_reclaim_flush(&idx->rc);
	return ret;
}

int mt_index_del(struct mt_index *idx, const char *filter, size_t len, unsigned core)
{
	struct mt_share_spec spec;
	struct mt_tpos pos;
	int ret = mt_index_parse(idx, filter, len, core, &spec);

	if (ret < 0)
		return ret;
	if (ret == 1) {
		ret = mt_index_share_del_(idx, &spec, core);
		mt_reclaim_flush(&idx->rc);
		return ret;
	}
	struct mt_term *term = mt_tree_get(&idx->tree, filter, len, false, &pos);
	if (!term)
		return -ENOENT;
	ret = mt_cores_dec(&term->mask, &term->data, core);
	if (ret == 0 && mt_term_empty(term)) {
		if (!pos.ex)
			idx->nwildcard--;
		mt_tree_prune(&idx->tree, &pos);
	}
	mt_reclaim_flush(&idx->rc);
	return ret;
}

#define MT_INDEX_VISIT(term, acc) (*(acc) |= MT_LOAD_RLX(&(term)->mask))

uint64_t mt_index_match(const struct mt_index *idx, const char *topic, size_t len)
{
	uint64_t cores = 0;

	MT_TREE_WALK(&idx->tree, topic, len, MT_INDEX_VISIT, &cores);
	return cores;
}

void mt_index_stats_get(const struct mt_index *idx, struct mt_index_stats *st)
{
	st->exact_filters = idx->tree.nexact;
	st->wildcard_filters = idx->nwildcard;
	st->trie_nodes = idx->tree.nnodes;
	st->share_groups = idx->ngroups;
	st->arena_bytes = mt_arena_bytes(idx->rc.arena);
}

/* Replays the key listing of MT_TREE_WALK (mt_walk_cands, without its size limit) and counts. */
void mt_index_walk_stats(const struct mt_index *idx, const char *topic, size_t len,
			 struct mt_walk_stats *st)
{
	const struct mt_tree *t = &idx->tree;
	struct mt_wtopic w;
	enum { MAXC = 4096 };
	struct mt_wscand {
		uint64_t path;
		const struct mt_tnode *node;
	} c[MAXC];

	if (len == 0)
		return;
	mt_wtopic_split(&w, topic, len, t->seed);
	bool dollar = topic[0] == '$';
	const struct mt_harr *xa = MT_LOAD_ACQ(&t->exact.arr);
	const struct mt_harr *ea = MT_LOAD_ACQ(&t->edges.arr);
	if (w.whole) {
		st->checks++;
		if (mt_harr_maybe(xa, w.path[w.n])) {
			st->maybe++;
			struct mt_exkey k = {w.path[w.n], topic, len};
			st->found += MT_HARR_FIND(xa, k.hash, mt_texact_eq, &k) != NULL;
		}
	}
	unsigned n = 1, lo = 0;
	c[0].path = w.path[0];
	c[0].node = t->root;
	for (unsigned d = 0; d < w.n && lo < n; d++) {
		unsigned hi = n;
		for (unsigned i = lo; i < hi; i++) {
			for (int plus = 0; plus < 2; plus++) {
				if (plus && d == 0 && dollar)
					continue;
				uint64_t h = mt_path_child(c[i].path, plus ? MT_WH_PLUS : w.wh[d]);
				st->checks++;
				if (!mt_harr_maybe(ea, h))
					continue;
				st->maybe++;
				const struct mt_tnode *node = NULL;
				if (c[i].node) {
					const char *wd = plus ? NULL : w.s + w.off[d];
					struct mt_edgekey k = {h, c[i].node, wd,
							       plus ? 0 : w.wlen[d], plus};
					node = MT_HARR_FIND(ea, h, mt_tnode_eq, &k);
				}
				st->found += node != NULL;
				if (n < MAXC)
					c[n++] = (struct mt_wscand){h, node};
			}
		}
		lo = hi;
	}
}

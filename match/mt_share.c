/* SPDX-License-Identifier: MIT */
/*
 * Shared subscriptions ($share/group/filter), core half, in the global index.
 *
 * Design. A message must reach one member session per matching group. Members are spread
 * over cores, and no core may write shared state on the read path, so the choice is split:
 *  1. The publisher's core (mt_index_share_match) walks the shared trie; for each group on a
 *     matching filter it reads the group's member-core mask (one atomic word) and picks one core
 *     by policy. Round-robin state is the caller's per-core struct mt_share_ctx (each publishing
 *     core rotates on its own; across cores the load evens out statistically); the sticky policy
 *     hashes the caller's publisher key with the group id, so it needs no state at all.
 *  2. The target core (mt_local_share_pick) picks one of its own member sessions, with its own
 *     rotation state in its private index.
 * Stranding: between 1 and 2 the target core's last member may leave. Step 2 then returns
 * -ENOENT and the target calls mt_index_share_repick() with the cores already tried; the group's
 * current mask minus those yields another core, or -ENOENT when no member is left anywhere (the
 * subscription no longer exists, so dropping the message is correct). Every hop excludes one
 * more core, so a message is forwarded at most MT_CORES_MAX times.
 *
 * Group ids: a seeded 64-bit hash of "group/filter" (mt_topic_share_parse), with one seed per
 * process, so the global index and every per-core index agree on ids without talking. A second
 * name with an already-used id is refused (-ENOTUNIQ) in both, never merged.
 *
 * Threading: add/del on the control thread; match/repick are readers (QSBR online).
 */
#include <errno.h>
#include <stdlib.h>

#include "mt_internal.h"

static bool mt_sgroup_eq_id(const void *ent, const void *key)
{
	return ((const struct mt_hent *)ent)->hash == *(const uint64_t *)key;
}

static struct mt_sgroup *mt_sgroup_find(const struct mt_index *idx, uint64_t id)
{
	return MT_HTAB_FIND(&idx->groups, id, mt_sgroup_eq_id, &id);
}

int mt_index_share_add_(struct mt_index *idx, const struct mt_share_spec *spec, unsigned core)
{
	size_t nlen = spec->group_len + 1 + spec->filter_len;
	struct mt_sgroup *g = mt_sgroup_find(idx, spec->id);
	int ret;

	if (g) {
		if (g->len != nlen || memcmp(g->name, spec->group, nlen) != 0)
			return -ENOTUNIQ;
		return mt_cores_inc(&g->mask, &g->counts, core);
	}

	struct mt_tpos pos;
	struct mt_term *term = mt_tree_get(&idx->stree, spec->filter, spec->filter_len, true, &pos);
	if (!term)
		return -ENOMEM;
	g = calloc(1, sizeof(*g) + nlen);
	if (!g) {
		ret = -ENOMEM;
		goto err_alloc;
	}
	g->h.hash = spec->id;
	g->pos = pos;
	g->term = term;
	g->len = (uint32_t)nlen;
	memcpy(g->name, spec->group, nlen); /* group '/' filter, contiguous in the input */
	ret = mt_cores_inc(&g->mask, &g->counts, core);
	if (ret < 0)
		goto err_inc;
	ret = mt_htab_insert(&idx->groups, &g->h, &idx->rc);
	if (ret < 0)
		goto err_insert;
	g->next = (struct mt_sgroup *)term->data;
	/* g is complete: publish it at the head of the list (pairs with the acquire in the walk). */
	MT_STORE_REL(&term->data, (uintptr_t)g);
	idx->ngroups++;
	return 0;

err_insert:
	mt_cores_free(g->mask, g->counts);
err_inc:
	free(g);
err_alloc:
	if (mt_term_empty(term))
		mt_tree_prune(&idx->stree, &pos);
	return ret;
}

int mt_index_share_del_(struct mt_index *idx, const struct mt_share_spec *spec, unsigned core)
{
	size_t nlen = spec->group_len + 1 + spec->filter_len;
	struct mt_sgroup *g = mt_sgroup_find(idx, spec->id);

	if (!g || g->len != nlen || memcmp(g->name, spec->group, nlen) != 0)
		return -ENOENT;
	int ret = mt_cores_dec(&g->mask, &g->counts, core);
	if (ret < 0 || g->mask != 0)
		return ret;

	/* Last member gone: unlink from the term's list (one release store), then the id hash. */
	struct mt_term *term = g->term;
	uintptr_t *link = &term->data;
	while ((struct mt_sgroup *)*link != g)
		link = (uintptr_t *)&((struct mt_sgroup *)*link)->next;
	MT_STORE_REL(link, (uintptr_t)g->next);
	mt_htab_remove(&idx->groups, &g->h, &idx->rc);
	idx->ngroups--;
	struct mt_tpos pos = g->pos;
	mt_reclaim_put(&idx->rc, g);
	if (mt_term_empty(term))
		mt_tree_prune(&idx->stree, &pos);
	return 0;
}

void mt_index_share_fini_(struct mt_index *idx)
{
	struct mt_sgroup *g;

	MT_HTAB_FOREACH(&idx->groups, g)
	{
		mt_cores_free(g->mask, g->counts);
		free(g);
	}
	/* Terms only point at groups (freed above): nothing else to release per term. */
	mt_tree_fini(&idx->stree, NULL, NULL);
}

struct mt_share_walk {
	const struct mt_index *idx;
	struct mt_share_ctx *ctx;
	struct mt_share_pick *out;
	unsigned max, n;
};

static inline void mt_share_visit(const struct mt_term *term, struct mt_share_walk *w)
{
	for (const struct mt_sgroup *g = (const void *)MT_LOAD_ACQ(&term->data); g;
	     g = MT_LOAD_ACQ(&g->next)) {
		uint64_t m = MT_LOAD_RLX(&g->mask);
		if (!m)
			continue; /* being removed */
		if (w->n < w->max) {
			uint32_t k = mt_share_choose(w->idx->cfg.share_policy,
						     (uint32_t)__builtin_popcountll(m), &w->ctx->rr,
						     mt_hash_u64(w->ctx->publisher, g->h.hash));
			w->out[w->n].group_id = g->h.hash;
			w->out[w->n].core = mt_nth_bit(m, k);
		}
		w->n++;
	}
}

#define MT_SHARE_VISIT(term, w) mt_share_visit((term), (w))

unsigned mt_index_share_match(const struct mt_index *idx, const char *topic, size_t len,
			      struct mt_share_ctx *ctx, struct mt_share_pick *out, unsigned max)
{
	struct mt_share_walk w = {idx, ctx, out, max, 0};

	if (MT_LOAD_RLX(&idx->groups.live) == 0)
		return 0;
	MT_TREE_WALK(&idx->stree, topic, len, MT_SHARE_VISIT, &w);
	return w.n;
}

int mt_index_share_repick(const struct mt_index *idx, uint64_t group_id, uint64_t tried,
			  struct mt_share_ctx *ctx, unsigned *core)
{
	const struct mt_sgroup *g = mt_sgroup_find(idx, group_id);

	if (!g)
		return -ENOENT;
	uint64_t m = MT_LOAD_RLX(&g->mask) & ~tried;
	if (!m)
		return -ENOENT;
	uint32_t k = mt_share_choose(idx->cfg.share_policy, (uint32_t)__builtin_popcountll(m),
				     &ctx->rr, mt_hash_u64(ctx->publisher, group_id));
	*core = mt_nth_bit(m, k);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * The writer side of the filter trie (mt_tree, see the design comment in mt_internal.h):
 * finding or creating the term of a filter, and pruning terms and nodes once empty.
 *
 * Publication order (global index, readers concurrent): a new node is fully initialised, then
 * made reachable with release stores (its edge-hash slot; for a '+' node also parent->plus,
 * which the DFS fallback walk follows); its parent's nwords is bumped afterwards (a reader that
 * sees the old count merely skips a probe that would find an empty node). Pruning goes the
 * other way: unlink (slot and parent->plus), then retire after a grace period. Every node but
 * the root is in the edge hash. Filters are validated by the callers; this file trusts them.
 * Nodes and exact entries are allocated with mt_obj_alloc (the global index's arena, or calloc
 * for the single-threaded users) and given back with their size (mt_obj_free, mt_reclaim_obj).
 */
#include <errno.h>
#include <stdlib.h>

#include "mt_internal.h"

static size_t mt_tnode_size(const struct mt_tnode *n)
{
	return sizeof(*n) + n->len;
}

static size_t mt_texact_size(const struct mt_texact *e)
{
	return sizeof(*e) + e->len;
}

static struct mt_tnode *mt_tnode_new(struct mt_tree *t, struct mt_tnode *parent, const char *w,
				     size_t wlen, bool plus, uint64_t hash)
{
	struct mt_tnode *n = mt_obj_alloc(t->rc, sizeof(*n) + wlen);

	if (!n)
		return NULL;
	n->h.hash = hash;
	n->parent = parent;
	n->depth = parent ? (uint8_t)(parent->depth + 1) : 0;
	n->len = (uint16_t)wlen;
	n->is_plus = plus;
	if (wlen)
		memcpy(n->word, w, wlen);
	return n;
}

int mt_tree_init(struct mt_tree *t, uint64_t seed, struct mt_reclaim *rc)
{
	memset(t, 0, sizeof(*t));
	t->seed = seed;
	t->rc = rc;
	t->root = mt_tnode_new(t, NULL, NULL, 0, false, 0);
	if (!t->root)
		goto err_root;
	if (mt_htab_init(&t->exact, 8) < 0)
		goto err_exact;
	if (mt_htab_init(&t->edges, 8) < 0)
		goto err_edges;
	return 0;

err_edges:
	mt_htab_fini(&t->exact);
err_exact:
	mt_obj_free(rc, t->root, mt_tnode_size(t->root));
err_root:
	return -ENOMEM;
}

static void mt_tnode_fini(struct mt_tree *t, struct mt_tnode *n,
			  void (*term_fini)(struct mt_term *, void *), void *ctx)
{
	if (term_fini && !mt_term_empty(&n->here))
		term_fini(&n->here, ctx);
	if (term_fini && !mt_term_empty(&n->hash))
		term_fini(&n->hash, ctx);
	mt_obj_free(t->rc, n, mt_tnode_size(n));
}

void mt_tree_fini(struct mt_tree *t, void (*term_fini)(struct mt_term *term, void *ctx), void *ctx)
{
	struct mt_texact *e;
	struct mt_tnode *n;

	if (!t->root)
		return;
	MT_HTAB_FOREACH(&t->exact, e)
	{
		if (term_fini && !mt_term_empty(&e->term))
			term_fini(&e->term, ctx);
		mt_obj_free(t->rc, e, mt_texact_size(e));
	}
	MT_HTAB_FOREACH(&t->edges, n)
	mt_tnode_fini(t, n, term_fini, ctx);
	mt_tnode_fini(t, t->root, term_fini, ctx);
	mt_htab_fini(&t->exact);
	mt_htab_fini(&t->edges);
	t->root = NULL;
}

static bool mt_filter_has_wildcard(const char *f, size_t len)
{
	/* Valid filters: '+' and '#' only ever appear as whole levels. */
	return memchr(f, '+', len) || memchr(f, '#', len);
}

/* The key of a wildcard-free filter in the exact table: the hash of its whole text (a topic
 * name's lookup needs no split into levels). */
static uint64_t mt_tree_exact_key(const struct mt_tree *t, const char *f, size_t len)
{
	return mt_exact_hash(f, len, t->seed);
}

static struct mt_term *mt_tree_get_exact(struct mt_tree *t, const char *f, size_t len, bool create,
					 struct mt_tpos *pos)
{
	struct mt_exkey k = {mt_tree_exact_key(t, f, len), f, len};
	struct mt_texact *e = MT_HTAB_FIND(&t->exact, k.hash, mt_texact_eq, &k);

	if (!e && create) {
		e = mt_obj_alloc(t->rc, sizeof(*e) + len);
		if (!e)
			return NULL;
		e->h.hash = k.hash;
		e->len = (uint32_t)len;
		memcpy(e->key, f, len);
		if (mt_htab_insert(&t->exact, &e->h, t->rc) < 0) {
			mt_obj_free(t->rc, e, mt_texact_size(e));
			return NULL;
		}
		MT_STORE_RLX(&t->nexact, t->nexact + 1);
	}
	if (!e)
		return NULL;
	pos->ex = e;
	pos->node = NULL;
	return &e->term;
}

struct mt_term *mt_tree_get(struct mt_tree *t, const char *f, size_t len, bool create,
			    struct mt_tpos *pos)
{
	if (!mt_filter_has_wildcard(f, len))
		return mt_tree_get_exact(t, f, len, create, pos);

	struct mt_tnode *n = t->root;
	uint64_t path = mt_path_root(t->seed);
	const char *p = f, *end = f + len;
	struct mt_term *term = NULL;

	for (;;) {
		const char *q = memchr(p, '/', (size_t)(end - p));
		size_t wlen = q ? (size_t)(q - p) : (size_t)(end - p);

		if (wlen == 1 && *p == '#') {
			term = &n->hash;
			if (n == t->root && create && !t->root_hash) {
				t->root_hash = true;
				MT_STORE_RLX(&t->nwild, t->nwild + 1);
			}
			break;
		}
		struct mt_tnode *c;
		if (wlen == 1 && *p == '+') {
			path = mt_path_child(path, MT_WH_PLUS);
			c = n->plus;
			if (!c && create) {
				c = mt_tnode_new(t, n, NULL, 0, true, path);
				if (!c)
					return NULL;
				/* pairs with the acquire slot load in MT_HARR_FIND (readers) */
				if (mt_htab_insert(&t->edges, &c->h, t->rc) < 0) {
					mt_obj_free(t->rc, c, mt_tnode_size(c));
					return NULL;
				}
				/* pairs with MT_LOAD_ACQ in the DFS walk */
				MT_STORE_REL(&n->plus, c);
				t->nnodes++;
				MT_STORE_RLX(&t->nwild, t->nwild + 1);
			}
		} else {
			path = mt_path_child(path, mt_hash(p, wlen, t->seed));
			struct mt_edgekey k = {path, n, p, wlen, false};
			c = MT_HTAB_FIND(&t->edges, path, mt_tnode_eq, &k);
			if (!c && create) {
				c = mt_tnode_new(t, n, p, wlen, false, path);
				if (!c)
					return NULL;
				/* pairs with the acquire slot load in MT_HARR_FIND (readers) */
				if (mt_htab_insert(&t->edges, &c->h, t->rc) < 0) {
					mt_obj_free(t->rc, c, mt_tnode_size(c));
					return NULL;
				}
				MT_STORE_RLX(&n->nwords, n->nwords + 1);
				t->nnodes++;
				MT_STORE_RLX(&t->nwild, t->nwild + 1);
			}
		}
		if (!c)
			return NULL;
		n = c;
		if (!q) {
			term = &n->here;
			break;
		}
		p = q + 1;
	}
	/* Nodes created for a failed (ENOMEM) creation stay until pruned by a later delete of a
	 * sibling path; they are harmless (empty) and freed at fini. */
	pos->ex = NULL;
	pos->node = n;
	return term;
}

static bool mt_tnode_useless(const struct mt_tnode *n)
{
	return n->parent && mt_term_empty(&n->here) && mt_term_empty(&n->hash) && !n->plus &&
	       n->nwords == 0;
}

void mt_tree_prune(struct mt_tree *t, const struct mt_tpos *pos)
{
	if (pos->ex) {
		if (!mt_term_empty(&pos->ex->term))
			return;
		mt_htab_remove(&t->exact, &pos->ex->h, t->rc);
		mt_reclaim_obj(t->rc, pos->ex, mt_texact_size(pos->ex));
		MT_STORE_RLX(&t->nexact, t->nexact - 1);
		return;
	}
	if (pos->node == t->root && t->root_hash && mt_term_empty(&t->root->hash)) {
		t->root_hash = false;
		MT_STORE_RLX(&t->nwild, t->nwild - 1);
	}
	for (struct mt_tnode *n = pos->node; n && mt_tnode_useless(n);) {
		struct mt_tnode *parent = n->parent;

		mt_htab_remove(&t->edges, &n->h, t->rc);
		if (n->is_plus)
			MT_STORE_REL(&parent->plus, NULL);
		else
			MT_STORE_RLX(&parent->nwords, parent->nwords - 1);
		mt_reclaim_obj(t->rc, n, mt_tnode_size(n));
		t->nnodes--;
		MT_STORE_RLX(&t->nwild, t->nwild - 1);
		n = parent;
	}
}

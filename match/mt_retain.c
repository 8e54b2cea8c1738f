/* SPDX-License-Identifier: MIT */
/*
 * The retained index: topic name -> retained message reference, and the reverse query
 * "every retained topic matching this filter", with caps on count and total bytes.
 *
 * Design. Retained topics form a level trie. Each node is found from its parent by one probe of
 * an edge hash keyed by (parent, word), as in the subscription trie, and also sits in its
 * parent's list of children, so that a filter walk can enumerate: a word level costs one probe,
 * '+' visits the children, '#' visits the subtree. A query thus touches only the topics under
 * the filter's literal prefix (plus the '+' fan-out), never the whole store. '$'-topics are
 * skipped by filters whose first level is a wildcard.
 *
 * Ownership: the index holds one reference per retained topic, taken from the caller by
 * mt_retain_set() and handed back through the release callback when it is replaced, cleared or
 * the index destroyed. The index is owned by one thread (the control thread, which applies
 * subscriptions and then sends retained messages); it has no concurrent readers, so references
 * are released during the call that drops them. A visitor that keeps a message past its call
 * must take its own reference (the engine's refcount) inside the callback.
 */
#include <errno.h>
#include <stdlib.h>

#include "mt_internal.h"

struct mt_rnode {
	struct mt_hent h; /* edge hash (parent, word) */
	struct mt_rnode *parent;
	struct mt_rnode *child;	      /* first child */
	struct mt_rnode *next, *prev; /* siblings */
	void *msg;		      /* retained reference, or NULL */
	size_t bytes;
	uint32_t nchild;
	uint16_t len;
	char word[];
};

struct mt_retain {
	struct mt_config cfg;
	mt_retain_release_fn *release;
	void *release_ctx;
	struct mt_reclaim rc; /* rcu = false */
	struct mt_htab edges;
	struct mt_rnode *root;
	uint64_t seed;
	uint64_t count, bytes, nodes;
	char *path; /* topic being rebuilt during a match; max_topic_len bytes */
};

struct mt_rkey {
	uint64_t hash;
	const struct mt_rnode *parent;
	const char *w;
	size_t len;
};

static bool mt_rnode_eq(const void *ent, const void *key)
{
	const struct mt_rnode *n = ent;
	const struct mt_rkey *k = key;

	return n->h.hash == k->hash && n->parent == k->parent && n->len == k->len &&
	       memcmp(n->word, k->w, k->len) == 0;
}

static struct mt_rnode *mt_rnode_child(const struct mt_retain *r, const struct mt_rnode *parent,
				       const char *w, size_t len, uint64_t *hash)
{
	struct mt_rkey k = {mt_hash_u64(mt_hash(w, len, r->seed), (uint64_t)(uintptr_t)parent),
			    parent, w, len};

	if (hash)
		*hash = k.hash;
	return MT_HTAB_FIND(&r->edges, k.hash, mt_rnode_eq, &k);
}

struct mt_retain *mt_retain_create(const struct mt_config *cfg, mt_retain_release_fn *release,
				   void *release_ctx)
{
	struct mt_retain *r = calloc(1, sizeof(*r));

	if (!r)
		goto err_alloc;
	if (cfg)
		r->cfg = *cfg;
	else
		mt_config_defaults(&r->cfg);
	if (r->cfg.max_levels == 0 || r->cfg.max_levels > MT_LEVELS_MAX ||
	    r->cfg.max_topic_len == 0) {
		free(r);
		errno = EINVAL;
		return NULL;
	}
	r->release = release;
	r->release_ctx = release_ctx;
	r->seed = r->cfg.hash_seed ? r->cfg.hash_seed : mt_random_seed();
	r->root = calloc(1, sizeof(*r->root));
	if (!r->root)
		goto err_root;
	r->path = malloc(r->cfg.max_topic_len);
	if (!r->path)
		goto err_path;
	if (mt_htab_init(&r->edges, 8) < 0)
		goto err_edges;
	return r;

err_edges:
	free(r->path);
err_path:
	free(r->root);
err_root:
	free(r);
err_alloc:
	errno = ENOMEM;
	return NULL;
}

void mt_retain_destroy(struct mt_retain *r)
{
	struct mt_rnode *n;

	if (!r)
		return;
	MT_HTAB_FOREACH(&r->edges, n)
	{
		if (n->msg && r->release)
			r->release(n->msg, r->release_ctx);
		free(n);
	}
	mt_htab_fini(&r->edges);
	free(r->root);
	free(r->path);
	free(r);
}

/* The node of topic @t, or NULL. */
static struct mt_rnode *mt_retain_find(const struct mt_retain *r, const char *t, size_t len)
{
	struct mt_rnode *n = r->root;
	const char *p = t, *end = t + len;

	for (;;) {
		const char *q = memchr(p, '/', (size_t)(end - p));
		size_t wlen = q ? (size_t)(q - p) : (size_t)(end - p);
		n = mt_rnode_child(r, n, p, wlen, NULL);
		if (!n || !q)
			return n;
		p = q + 1;
	}
}

/* Frees @n and its ancestors while they hold nothing. */
static void mt_retain_prune(struct mt_retain *r, struct mt_rnode *n)
{
	while (n != r->root && !n->msg && n->nchild == 0) {
		struct mt_rnode *parent = n->parent;
		if (n->prev)
			n->prev->next = n->next;
		else
			parent->child = n->next;
		if (n->next)
			n->next->prev = n->prev;
		parent->nchild--;
		mt_htab_remove(&r->edges, &n->h, &r->rc);
		free(n);
		r->nodes--;
		n = parent;
	}
}

static struct mt_rnode *mt_retain_create_path(struct mt_retain *r, const char *t, size_t len)
{
	struct mt_rnode *n = r->root;
	const char *p = t, *end = t + len;

	for (;;) {
		const char *q = memchr(p, '/', (size_t)(end - p));
		size_t wlen = q ? (size_t)(q - p) : (size_t)(end - p);
		uint64_t h;
		struct mt_rnode *c = mt_rnode_child(r, n, p, wlen, &h);
		if (!c) {
			c = calloc(1, sizeof(*c) + wlen);
			if (!c)
				goto err;
			c->h.hash = h;
			c->parent = n;
			c->len = (uint16_t)wlen;
			memcpy(c->word, p, wlen);
			if (mt_htab_insert(&r->edges, &c->h, &r->rc) < 0) {
				free(c);
				goto err;
			}
			c->next = n->child;
			if (n->child)
				n->child->prev = c;
			n->child = c;
			n->nchild++;
			r->nodes++;
		}
		n = c;
		if (!q)
			return n;
		p = q + 1;
	}
err:
	mt_retain_prune(r, n);
	return NULL;
}

int mt_retain_set(struct mt_retain *r, const char *topic, size_t len, void *msg, size_t bytes)
{
	int ret = mt_topic_name_check(&r->cfg, topic, len, NULL);

	if (ret < 0)
		return ret;
	struct mt_rnode *n = mt_retain_find(r, topic, len);
	if (!msg) {
		if (!n || !n->msg)
			return 0;
		void *old = n->msg;
		r->count--;
		r->bytes -= n->bytes;
		n->msg = NULL;
		n->bytes = 0;
		mt_retain_prune(r, n);
		if (r->release)
			r->release(old, r->release_ctx);
		return 0;
	}
	bool fresh = !n || !n->msg;
	uint64_t old_bytes = n && n->msg ? n->bytes : 0;
	if (fresh && r->count + 1 > r->cfg.retain_max_count)
		return -ENOSPC;
	if (bytes > r->cfg.retain_max_bytes || r->bytes - old_bytes + bytes > r->cfg.retain_max_bytes)
		return -ENOSPC;
	if (!n) {
		n = mt_retain_create_path(r, topic, len);
		if (!n)
			return -ENOMEM;
	}
	void *old = n->msg;
	n->msg = msg;
	n->bytes = bytes;
	r->bytes = r->bytes - old_bytes + bytes;
	if (fresh)
		r->count++;
	if (old && r->release)
		r->release(old, r->release_ctx);
	return 0;
}

void *mt_retain_get(const struct mt_retain *r, const char *topic, size_t len)
{
	if (len == 0)
		return NULL;
	struct mt_rnode *n = mt_retain_find(r, topic, len);
	return n ? n->msg : NULL;
}

/* ------------------------------------------------------------------------------------------ */

struct mt_rwalk {
	struct mt_retain *r;
	mt_retain_visit_fn *visit;
	void *ctx;
	long n;
	bool stop;
	uint32_t nlv;
	const char *f;
	uint32_t off[MT_LEVELS_MAX + 1];
	uint32_t len[MT_LEVELS_MAX + 1];
};

static void mt_rwalk_emit(struct mt_rwalk *w, const struct mt_rnode *n, size_t plen)
{
	if (!n->msg || w->stop)
		return;
	w->n++;
	if (w->visit(w->ctx, w->r->path, plen, n->msg, n->bytes))
		w->stop = true;
}

/* Appends @n's word to the path of its parent (length @plen); returns the new length. */
static size_t mt_rwalk_push(struct mt_rwalk *w, const struct mt_rnode *n, size_t plen)
{
	char *path = w->r->path;

	if (n->parent != w->r->root)
		path[plen++] = '/';
	memcpy(path + plen, n->word, n->len);
	return plen + n->len;
}

static void mt_rwalk_subtree(struct mt_rwalk *w, const struct mt_rnode *n, size_t plen, bool root)
{
	for (const struct mt_rnode *c = n->child; c && !w->stop; c = c->next) {
		if (root && c->len > 0 && c->word[0] == '$')
			continue;
		size_t l = mt_rwalk_push(w, c, plen);
		mt_rwalk_emit(w, c, l);
		mt_rwalk_subtree(w, c, l, false);
	}
}

/* @n matched filter levels [0, lvl); path[0, plen) is its topic. */
static void mt_rwalk(struct mt_rwalk *w, const struct mt_rnode *n, uint32_t lvl, size_t plen)
{
	if (w->stop)
		return;
	if (lvl == w->nlv) {
		mt_rwalk_emit(w, n, plen);
		return;
	}
	const char *fw = w->f + w->off[lvl];
	uint32_t flen = w->len[lvl];
	bool root = lvl == 0;

	if (flen == 1 && fw[0] == '#') {
		if (!root)
			mt_rwalk_emit(w, n, plen); /* "a/#" matches "a" */
		mt_rwalk_subtree(w, n, plen, root);
		return;
	}
	if (flen == 1 && fw[0] == '+') {
		for (const struct mt_rnode *c = n->child; c && !w->stop; c = c->next) {
			if (root && c->len > 0 && c->word[0] == '$')
				continue;
			mt_rwalk(w, c, lvl + 1, mt_rwalk_push(w, c, plen));
		}
		return;
	}
	const struct mt_rnode *c = mt_rnode_child(w->r, n, fw, flen, NULL);
	if (c)
		mt_rwalk(w, c, lvl + 1, mt_rwalk_push(w, c, plen));
}

long mt_retain_match(struct mt_retain *r, const char *filter, size_t len, mt_retain_visit_fn *visit,
		     void *ctx)
{
	int ret = mt_topic_filter_check(&r->cfg, filter, len, NULL);

	if (ret < 0)
		return ret;
	if (mt_topic_is_shared(filter, len))
		return -EINVAL;

	struct mt_rwalk w = {.r = r, .visit = visit, .ctx = ctx, .f = filter};
	uint32_t start = 0;
	for (uint32_t i = 0; i <= len; i++) {
		if (i == len || filter[i] == '/') {
			w.off[w.nlv] = start;
			w.len[w.nlv] = i - start;
			w.nlv++;
			start = i + 1;
		}
	}
	mt_rwalk(&w, r->root, 0, 0);
	return w.n;
}

void mt_retain_stats_get(const struct mt_retain *r, struct mt_retain_stats *st)
{
	st->count = r->count;
	st->bytes = r->bytes;
	st->nodes = r->nodes;
}

/* SPDX-License-Identifier: MIT */
/*
 * The per-core private index: one worker's sessions, their subscriptions and options, and the
 * session half of shared subscriptions. Owned by that worker: no locks, no RCU, no atomics
 * needed (it reuses the trie code, whose atomics cost nothing on one thread).
 *
 * Layout. Each subscription is a struct mt_lsub, reachable three ways:
 *  - from its filter's term (term.data heads a doubly linked list), for matching;
 *  - from its session (struct mt_lsess, doubly linked), for dropping a session;
 *  - from the subs hash keyed by (session, term or group), for subscribe/unsubscribe in O(1).
 * Shared subscriptions hang off a struct mt_lgroup (array of members) instead of a term; the
 * global index chose this core for the group, so matching them is a pick, not a walk.
 *
 * Matching without allocation: every session record carries a mark (match epoch) and its hit
 * slot, so a session matched by several filters merges into one hit in O(1). The scratch arrays
 * (hits, subscription ids) are sized at subscribe time to the number of subscriptions, which
 * bounds any match.
 *
 * Listing a session's subscriptions walks its list; a subscription keeps no copy of its filter,
 * whose text is rebuilt from where the subscription hangs: the exact entry's key, the trie
 * node's path (parent pointers: words and '+', plus "/#" for a node's '#' term) or the shared
 * group's "group/filter" name, into a buffer that subscribe sizes to the longest filter.
 */
#include <errno.h>
#include <stdlib.h>

#include "mt_internal.h"

struct mt_lgroup;

struct mt_lsess {
	struct mt_hent h; /* hash of the session pointer */
	void *session;
	struct mt_lsub *subs;
	uint32_t mark; /* == loc->epoch: already a hit of the current match */
	uint32_t hit;  /* its slot in loc->hits */
};

struct mt_lsub {
	struct mt_hent h; /* hash of (session, owner) */
	struct mt_lsess *sess;
	const void *owner; /* struct mt_term * or struct mt_lgroup * */
	struct mt_lsub *next, **pprev;	 /* in the term's list (plain subscriptions) */
	struct mt_lsub *snext, **spprev; /* in the session's list */
	struct mt_lgroup *group;	 /* shared subscriptions: the group */
	uint32_t gidx;			 /* index in group->members */
	struct mt_tpos pos;		 /* plain subscriptions: where the term lives */
	struct mt_sub_opts opts;
};

struct mt_lgroup {
	struct mt_hent h; /* the group id */
	struct mt_lsub **members;
	uint32_t n, cap;
	uint32_t rr; /* this core's rotation */
	uint32_t len;
	char name[]; /* "group/filter" */
};

struct mt_local {
	struct mt_config cfg;
	struct mt_reclaim rc; /* rcu = false: immediate frees */
	struct mt_tree tree;
	struct mt_htab sess;   /* session pointer -> struct mt_lsess */
	struct mt_htab subs;   /* (session, owner) -> struct mt_lsub */
	struct mt_htab groups; /* group id -> struct mt_lgroup */
	uint64_t seed;
	uint64_t nsubs;
	uint32_t epoch;
	/* match scratch, capacity @cap >= nsubs */
	size_t cap;
	struct mt_local_hit *hits;
	struct mt_lsub **matched;
	uint32_t *ids;
	uint32_t nhits, nmatched;
	/* filter text scratch of mt_local_session_subs, @fcap >= the longest filter subscribed */
	char *fbuf;
	size_t fcap;
};

struct mt_local *mt_local_create(const struct mt_config *cfg)
{
	struct mt_local *loc = calloc(1, sizeof(*loc));

	if (!loc)
		goto err_alloc;
	if (cfg)
		loc->cfg = *cfg;
	else
		mt_config_defaults(&loc->cfg);
	if (loc->cfg.max_levels == 0 || loc->cfg.max_levels > MT_LEVELS_MAX ||
	    loc->cfg.max_topic_len == 0) {
		free(loc);
		errno = EINVAL;
		return NULL;
	}
	loc->seed = loc->cfg.hash_seed ? loc->cfg.hash_seed : mt_random_seed();
	loc->epoch = 1;
	if (mt_tree_init(&loc->tree, loc->seed, &loc->rc) < 0)
		goto err_tree;
	if (mt_htab_init(&loc->sess, 8) < 0)
		goto err_sess;
	if (mt_htab_init(&loc->subs, 8) < 0)
		goto err_subs;
	if (mt_htab_init(&loc->groups, 8) < 0)
		goto err_groups;
	return loc;

err_groups:
	mt_htab_fini(&loc->subs);
err_subs:
	mt_htab_fini(&loc->sess);
err_sess:
	mt_tree_fini(&loc->tree, NULL, NULL);
err_tree:
	free(loc);
err_alloc:
	errno = ENOMEM;
	return NULL;
}

void mt_local_destroy(struct mt_local *loc)
{
	void *p;

	if (!loc)
		return;
	MT_HTAB_FOREACH(&loc->subs, p)
	free(p);
	MT_HTAB_FOREACH(&loc->sess, p)
	free(p);
	MT_HTAB_FOREACH(&loc->groups, p)
	{
		free(((struct mt_lgroup *)p)->members);
		free(p);
	}
	mt_htab_fini(&loc->subs);
	mt_htab_fini(&loc->sess);
	mt_htab_fini(&loc->groups);
	mt_tree_fini(&loc->tree, NULL, NULL);
	free(loc->hits);
	free(loc->matched);
	free(loc->ids);
	free(loc->fbuf);
	free(loc);
}

/* ------------------------------------------------------------------------------------------ */

static bool mt_lsess_eq(const void *ent, const void *key)
{
	return ((const struct mt_lsess *)ent)->session == key;
}

static uint64_t mt_lsess_hash(const struct mt_local *loc, const void *session)
{
	return mt_hash_u64(loc->seed, (uint64_t)(uintptr_t)session);
}

static struct mt_lsess *mt_lsess_find(const struct mt_local *loc, const void *session)
{
	return MT_HTAB_FIND(&loc->sess, mt_lsess_hash(loc, session), mt_lsess_eq, session);
}

struct mt_lsub_key {
	uint64_t hash;
	const struct mt_lsess *sess;
	const void *owner;
};

static bool mt_lsub_eq(const void *ent, const void *key)
{
	const struct mt_lsub *s = ent;
	const struct mt_lsub_key *k = key;

	return s->sess == k->sess && s->owner == k->owner;
}

static struct mt_lsub *mt_lsub_find(const struct mt_local *loc, const struct mt_lsess *sess,
				    const void *owner)
{
	struct mt_lsub_key k = {mt_hash_u64(mt_lsess_hash(loc, sess), (uint64_t)(uintptr_t)owner),
				sess, owner};

	return MT_HTAB_FIND(&loc->subs, k.hash, mt_lsub_eq, &k);
}

static bool mt_lgroup_eq(const void *ent, const void *key)
{
	return ((const struct mt_hent *)ent)->hash == *(const uint64_t *)key;
}

static struct mt_lgroup *mt_lgroup_find(const struct mt_local *loc, uint64_t id)
{
	return MT_HTAB_FIND(&loc->groups, id, mt_lgroup_eq, &id);
}

/* Makes the match scratch hold @n subscriptions. */
static int mt_local_reserve(struct mt_local *loc, size_t n)
{
	if (n <= loc->cap)
		return 0;
	size_t cap = loc->cap ? loc->cap * 2 : 64;
	while (cap < n)
		cap *= 2;
	struct mt_local_hit *h = realloc(loc->hits, cap * sizeof(*h));
	if (!h)
		return -ENOMEM;
	loc->hits = h;
	struct mt_lsub **m = realloc(loc->matched, cap * sizeof(*m));
	if (!m)
		return -ENOMEM;
	loc->matched = m;
	uint32_t *ids = realloc(loc->ids, cap * sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	loc->ids = ids;
	loc->cap = cap;
	return 0;
}

/* Makes the filter text scratch hold @len bytes. */
static int mt_local_reserve_text(struct mt_local *loc, size_t len)
{
	if (len <= loc->fcap)
		return 0;
	char *b = realloc(loc->fbuf, len);
	if (!b)
		return -ENOMEM;
	loc->fbuf = b;
	loc->fcap = len;
	return 0;
}

static struct mt_lsess *mt_lsess_get(struct mt_local *loc, void *session)
{
	struct mt_lsess *s = mt_lsess_find(loc, session);

	if (s)
		return s;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->h.hash = mt_lsess_hash(loc, session);
	s->session = session;
	if (mt_htab_insert(&loc->sess, &s->h, &loc->rc) < 0) {
		free(s);
		return NULL;
	}
	return s;
}

static void mt_lsess_put(struct mt_local *loc, struct mt_lsess *s)
{
	if (s->subs)
		return;
	mt_htab_remove(&loc->sess, &s->h, &loc->rc);
	free(s);
}

static struct mt_lgroup *mt_lgroup_get(struct mt_local *loc, const struct mt_share_spec *spec)
{
	size_t nlen = spec->group_len + 1 + spec->filter_len;
	struct mt_lgroup *g = mt_lgroup_find(loc, spec->id);

	if (g) {
		if (g->len != nlen || memcmp(g->name, spec->group, nlen) != 0) {
			errno = ENOTUNIQ;
			return NULL;
		}
		return g;
	}
	g = calloc(1, sizeof(*g) + nlen);
	if (!g)
		goto err_alloc;
	g->h.hash = spec->id;
	g->len = (uint32_t)nlen;
	memcpy(g->name, spec->group, nlen);
	if (mt_htab_insert(&loc->groups, &g->h, &loc->rc) < 0)
		goto err_insert;
	return g;

err_insert:
	free(g);
err_alloc:
	errno = ENOMEM;
	return NULL;
}

/* Unlinks and frees @s, then whatever it leaves empty (term, group, session). */
static void mt_lsub_remove(struct mt_local *loc, struct mt_lsub *s)
{
	struct mt_lsess *sess = s->sess;

	if (s->group) {
		struct mt_lgroup *g = s->group;
		g->members[s->gidx] = g->members[--g->n];
		g->members[s->gidx]->gidx = s->gidx;
		if (g->n == 0) {
			mt_htab_remove(&loc->groups, &g->h, &loc->rc);
			free(g->members);
			free(g);
		}
	} else {
		struct mt_term *term = (struct mt_term *)(uintptr_t)s->owner;
		*s->pprev = s->next;
		if (s->next)
			s->next->pprev = s->pprev;
		if (mt_term_empty(term))
			mt_tree_prune(&loc->tree, &s->pos);
	}
	*s->spprev = s->snext;
	if (s->snext)
		s->snext->spprev = s->spprev;
	mt_htab_remove(&loc->subs, &s->h, &loc->rc);
	free(s);
	loc->nsubs--;
	mt_lsess_put(loc, sess);
}

int mt_local_subscribe(struct mt_local *loc, void *session, const char *filter, size_t len,
		       const struct mt_sub_opts *opts, bool *existed)
{
	struct mt_share_spec spec;
	bool shared = mt_topic_is_shared(filter, len);
	int ret = shared ? mt_topic_share_parse(&loc->cfg, filter, len, &spec, NULL)
			 : mt_topic_filter_check(&loc->cfg, filter, len, NULL);

	if (ret < 0)
		return ret;
	if (existed)
		*existed = false;
	if (mt_local_reserve(loc, loc->nsubs + 1) < 0 || mt_local_reserve_text(loc, len) < 0)
		return -ENOMEM;

	struct mt_lsess *sess = mt_lsess_get(loc, session);
	if (!sess)
		return -ENOMEM;

	struct mt_tpos pos = {NULL, NULL};
	struct mt_term *term = NULL;
	struct mt_lgroup *group = NULL;
	const void *owner;
	if (shared) {
		group = mt_lgroup_get(loc, &spec);
		if (!group) {
			ret = -errno;
			goto err_owner;
		}
		owner = group;
	} else {
		term = mt_tree_get(&loc->tree, filter, len, true, &pos);
		if (!term) {
			ret = -ENOMEM;
			goto err_owner;
		}
		owner = term;
	}

	struct mt_lsub *s = mt_lsub_find(loc, sess, owner);
	if (s) {
		s->opts = *opts;
		if (existed)
			*existed = true;
		return 0;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		ret = -ENOMEM;
		goto err_sub;
	}
	s->h.hash = mt_hash_u64(mt_lsess_hash(loc, sess), (uint64_t)(uintptr_t)owner);
	s->sess = sess;
	s->owner = owner;
	s->opts = *opts;
	s->pos = pos;
	if (group && group->n == group->cap) {
		uint32_t cap = group->cap ? group->cap * 2 : 4;
		struct mt_lsub **m = realloc(group->members, cap * sizeof(*m));
		if (!m) {
			ret = -ENOMEM;
			goto err_members;
		}
		group->members = m;
		group->cap = cap;
	}
	if (mt_htab_insert(&loc->subs, &s->h, &loc->rc) < 0) {
		ret = -ENOMEM;
		goto err_members;
	}
	if (group) {
		s->group = group;
		s->gidx = group->n;
		group->members[group->n++] = s;
	} else {
		s->next = (struct mt_lsub *)term->data;
		s->pprev = (struct mt_lsub **)&term->data;
		if (s->next)
			s->next->pprev = &s->next;
		term->data = (uintptr_t)s;
	}
	s->snext = sess->subs;
	s->spprev = &sess->subs;
	if (s->snext)
		s->snext->spprev = &s->snext;
	sess->subs = s;
	loc->nsubs++;
	return 0;

err_members:
	free(s);
err_sub:
	if (group && group->n == 0) {
		mt_htab_remove(&loc->groups, &group->h, &loc->rc);
		free(group->members);
		free(group);
	}
	if (term && mt_term_empty(term))
		mt_tree_prune(&loc->tree, &pos);
err_owner:
	mt_lsess_put(loc, sess);
	return ret;
}

int mt_local_unsubscribe(struct mt_local *loc, void *session, const char *filter, size_t len)
{
	struct mt_share_spec spec;
	bool shared = mt_topic_is_shared(filter, len);
	int ret = shared ? mt_topic_share_parse(&loc->cfg, filter, len, &spec, NULL)
			 : mt_topic_filter_check(&loc->cfg, filter, len, NULL);

	if (ret < 0)
		return ret;
	struct mt_lsess *sess = mt_lsess_find(loc, session);
	if (!sess)
		return -ENOENT;
	const void *owner;
	if (shared) {
		owner = mt_lgroup_find(loc, spec.id);
	} else {
		struct mt_tpos pos;
		owner = mt_tree_get(&loc->tree, filter, len, false, &pos);
	}
	if (!owner)
		return -ENOENT;
	struct mt_lsub *s = mt_lsub_find(loc, sess, owner);
	if (!s)
		return -ENOENT;
	mt_lsub_remove(loc, s);
	return 0;
}

unsigned mt_local_drop_session(struct mt_local *loc, void *session)
{
	struct mt_lsess *sess = mt_lsess_find(loc, session);
	unsigned n = 0;

	if (!sess)
		return 0;
	/* Removing the last subscription frees the session record: stop there. */
	while (sess->subs) {
		bool last = sess->subs->snext == NULL;
		mt_lsub_remove(loc, sess->subs);
		n++;
		if (last)
			break;
	}
	return n;
}

/* ------------------------------------------------------------------------------------------ */

struct mt_local_walk {
	struct mt_local *loc;
	const void *publisher;
};

static inline void mt_local_visit(const struct mt_term *term, struct mt_local_walk *w)
{
	struct mt_local *loc = w->loc;

	for (struct mt_lsub *s = (struct mt_lsub *)term->data; s; s = s->next) {
		struct mt_lsess *sess = s->sess;
		if (s->opts.no_local && sess->session == w->publisher)
			continue;
		struct mt_local_hit *h;
		if (sess->mark != loc->epoch) {
			sess->mark = loc->epoch;
			sess->hit = loc->nhits;
			h = &loc->hits[loc->nhits++];
			h->session = sess->session;
			h->opts = s->opts;
			h->nids = 0;
		} else {
			h = &loc->hits[sess->hit];
			if (s->opts.qos > h->opts.qos)
				h->opts = s->opts;
		}
		if (s->opts.sub_id) {
			h->nids++;
			loc->matched[loc->nmatched++] = s;
		}
	}
}

#define MT_LOCAL_VISIT(term, w) mt_local_visit((term), (w))

unsigned mt_local_match(struct mt_local *loc, const char *topic, size_t len, const void *publisher,
			const struct mt_local_hit **hits)
{
	struct mt_local_walk w = {loc, publisher};

	if (++loc->epoch == 0) {
		/* Epoch wrapped: clear every mark once so that no stale mark equals the new epoch. */
		struct mt_lsess *s;
		MT_HTAB_FOREACH(&loc->sess, s)
		s->mark = 0;
		loc->epoch = 1;
	}
	loc->nhits = 0;
	loc->nmatched = 0;
	MT_TREE_WALK(&loc->tree, topic, len, MT_LOCAL_VISIT, &w);

	/* Lay subscription ids out per hit: offsets first, then a second pass to fill. */
	uint32_t off = 0;
	for (uint32_t i = 0; i < loc->nhits; i++) {
		struct mt_local_hit *h = &loc->hits[i];
		h->ids = loc->ids + off;
		off += h->nids;
		h->nids = 0;
	}
	for (uint32_t i = 0; i < loc->nmatched; i++) {
		const struct mt_lsub *s = loc->matched[i];
		struct mt_local_hit *h = &loc->hits[s->sess->hit];
		((uint32_t *)(uintptr_t)h->ids)[h->nids++] = s->opts.sub_id;
	}
	*hits = loc->hits;
	return loc->nhits;
}

/* The text of plain subscription @s's filter, rebuilt into loc->fbuf; returns its length. */
static size_t mt_lsub_filter(struct mt_local *loc, const struct mt_lsub *s, const char **f)
{
	if (s->pos.ex) {
		*f = s->pos.ex->key;
		return s->pos.ex->len;
	}
	const struct mt_tnode *node = s->pos.node;
	bool hash = s->owner == &node->hash;
	size_t len = hash ? (node->depth ? 2 : 1) : 0; /* "/#", or "#" alone at the root */

	for (const struct mt_tnode *n = node; n->depth; n = n->parent)
		len += (n->is_plus ? 1 : n->len) + (n->depth > 1);
	if (len > loc->fcap)
		MT_DIE("filter longer than any subscribed");
	char *p = loc->fbuf + len;
	if (hash) {
		*--p = '#';
		if (node->depth)
			*--p = '/';
	}
	for (const struct mt_tnode *n = node; n->depth; n = n->parent) {
		if (n->is_plus) {
			*--p = '+';
		} else {
			p -= n->len;
			memcpy(p, n->word, n->len);
		}
		if (n->depth > 1)
			*--p = '/';
	}
	*f = loc->fbuf;
	return len;
}

unsigned mt_local_session_subs(struct mt_local *loc, const void *session, mt_local_sub_fn *fn,
			       void *ctx)
{
	const struct mt_lsess *sess = mt_lsess_find(loc, session);
	unsigned n = 0;

	if (!sess)
		return 0;
	for (const struct mt_lsub *s = sess->subs; s; s = s->snext) {
		const char *f;
		size_t len;
		if (s->group) {
			/* "$share/" + "group/filter": subscribe reserved this length too. */
			len = 7 + s->group->len;
			if (len > loc->fcap)
				MT_DIE("filter longer than any subscribed");
			memcpy(loc->fbuf, "$share/", 7);
			memcpy(loc->fbuf + 7, s->group->name, s->group->len);
			f = loc->fbuf;
		} else {
			len = mt_lsub_filter(loc, s, &f);
		}
		n++;
		if (fn(ctx, f, len, &s->opts))
			break;
	}
	return n;
}

int mt_local_share_pick(struct mt_local *loc, uint64_t group_id, uint64_t publisher_key,
			struct mt_local_hit *hit)
{
	struct mt_lgroup *g = mt_lgroup_find(loc, group_id);

	if (!g || g->n == 0)
		return -ENOENT;
	uint32_t k = mt_share_choose(loc->cfg.share_policy, g->n, &g->rr,
				     mt_hash_u64(publisher_key, group_id));
	const struct mt_lsub *s = g->members[k];
	hit->session = s->sess->session;
	hit->opts = s->opts;
	hit->nids = s->opts.sub_id ? 1 : 0;
	hit->ids = &s->opts.sub_id;
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * The plain (non-shared) filters of the global index: filter -> core mask, read by every worker
 * for every PUBLISH, written by the control thread (struct mt_fidx, mt_internal.h).
 *
 * Why this shape. At 1M subscriptions the index is far bigger than the cache, and a dependent
 * DRAM round trip costs ~200 ns on the VM we measure on (bench_match), so a publish must cost
 * about one round of misses, however many filters it could match. A trie walk costs one round
 * per level, or, prefetched cleverly, still a round for the slots and another for the entries,
 * and the upper trie levels exist for nearly every topic, so even a topic matching nothing pays.
 * Here a reader never follows a pointer it has to wait for:
 *
 *  - Keys from the topic alone. An exact filter's key is the hash of its whole text
 *    (mt_exact_hash). A wildcard filter's key is a sum of one seeded term per level (the
 *    word's, mt_fidx_term, or the level's '+' term), sealed by how it ends (MT_FK_HERE, or
 *    MT_FK_HASH for "<levels>/#"). Given the set of filter *shapes* present (the sequence of
 *    word/'+' levels and the ending; "a/+/c" and "x/+/z" share one), a reader derives, from
 *    the topic's prefix sums, the one key each shape would have if a filter of that shape
 *    matched the topic: the prefix sum over the shape's depth, plus for each '+' level what
 *    the '+' changes there. Shapes are few in practice (tens), kept in a small trie (struct
 *    mt_pnode) whose read-side form (struct mt_pview) is rebuilt and republished only when a
 *    shape appears or disappears. It holds one program per topic depth (struct mt_pprog):
 *    the candidate keys of that depth as pairs of slots to add, four at a time, with no branch
 *    per shape and no multiply. '$' topics, and shape sets too big to compile, walk the
 *    shapes in preorder instead.
 *  - Records inline. The hot tables (struct mt_ftab) hold (key, core mask) pairs, four to a
 *    64-byte bucket: one probe is one cache line, and it is the whole answer. A reader trusts
 *    key equality without reading the filter: the global index is a routing hint (a worker's
 *    own mt_local matches exactly), so a 64-bit key collision (~2^-64 per pair of filters)
 *    sends a message to a core that drops it, and never loses one.
 *  - The writer stays exact. It keeps one record per distinct filter text (struct mt_frec, in
 *    a writer-only table keyed by the same key and checked by text), with the filter's own mask
 *    and per-core counts. The hot mask of a key is the union of the masks of its records, so
 *    two filters with one key keep separate counts and unsubscribing one leaves the other's
 *    cores in place (tests force collisions through mt_index_test_key_mask).
 *  - Summaries. Each hot table carries a blocked Bloom filter (3 bits in one 64-bit word per
 *    key; exact: MT_FIDX_SUM_EXACT bits per entry of capacity, wildcard: MT_FIDX_SUM_WILD),
 *    small enough to stay mostly in cache. A reader prefetches the exact key's bucket and
 *    summary word first, computes every candidate key and prefetches its summary word, then
 *    checks the summaries four keys at a time, prefetches the buckets of the candidates they
 *    let through, and reads them: a topic with no wildcard match finishes after the exact
 *    probe (or without any DRAM access, for a miss the summaries rule out), a wildcard hit
 *    costs one more round. A false positive costs one bucket read (bench_match reports the
 *    rate).
 *
 * Concurrency. One writer; readers never block or write. A new key's mask is stored before its
 * key (release); a removed entry's key becomes MT_FK_TOMB, and an entry reused for another key
 * gets its mask (release) before its key, so a reader that reads key, mask, key and sees the
 * same key twice has that key's mask (mt_farr_get). Masks of live keys change with a single
 * 64-bit store. Summary bits are set before the key they vouch for is published and cleared
 * only by publishing a rebuilt snapshot (after as many removals as live keys), so a snapshot's
 * summary covers every key a reader can find in its buckets. Resizes and summary rebuilds build
 * a new snapshot, publish it (release) and retire the old one through call_rcu; the shape view
 * likewise. A reader loads each pointer once per match (acquire).
 *
 * Memory: hot entries are 16 bytes at a load between 5/16 and 7/8, records 32 bytes plus the
 * text (from the index's huge-page arena), a record slot 8 bytes at <= 3/4 load.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "mt_internal.h"

/* Summary bits per hot entry of capacity (3 bits per key). Exact: 8 (~10 per key, 2% false
 * positives), checked once per topic, its word prefetched with the exact bucket. Wildcard:
 * checked ~24 times per topic, so its rate multiplies: 16 (~21 bits per key) gives 0.5%, and
 * at 1M subscriptions 512 KiB still stays mostly in cache (bench_match, 2026-12-02: p50 ~250
 * ns against ~330 with 8 bits and 2%, and no better with 32 bits and 0.1%). */
#define MT_FIDX_SUM_EXACT 8
#define MT_FIDX_SUM_WILD 16
#define MT_FIDX_CANDS 128    /* wildcard candidate keys handled per batch */
#define MT_FIDX_PROG_LIMIT 16384 /* default prog_limit: programs * shapes at most */
#define MT_FT_HUGE ((uintptr_t)2 << 20)

/* ------------------------------------------------------------------------------------------ */
/* Hot tables (writer side). */

static uint64_t mt_ftab_sum_words(uint64_t entries, unsigned sum_bits)
{
	uint64_t w = entries * sum_bits / 64;

	return w ? w : 1;
}

static struct mt_farr *mt_farr_alloc(uint64_t nbuckets, unsigned sum_bits)
{
	uint64_t nsum = mt_ftab_sum_words(nbuckets * MT_FT_WAYS, sum_bits);
	size_t head = sizeof(struct mt_fbucket); /* the header, padded to a line */
	size_t bytes = head + nbuckets * sizeof(struct mt_fbucket) + nsum * sizeof(uint64_t);

	bytes = (bytes + 63) & ~(size_t)63;
	char *p = aligned_alloc(64, bytes);
	if (!p)
		return NULL;
	/* Readers probe buckets at random: ask for huge pages before the first touch, so that a
	 * probe does not also pay a page walk (a hint; THP may be off). */
	uintptr_t lo = ((uintptr_t)p + MT_FT_HUGE - 1) & ~(MT_FT_HUGE - 1);
	uintptr_t hi = ((uintptr_t)p + bytes) & ~(MT_FT_HUGE - 1);
	if (hi > lo)
		(void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
	memset(p, 0, bytes);
	struct mt_farr *a = (struct mt_farr *)(void *)p;
	a->bmask = nbuckets - 1;
	a->smask = nsum - 1;
	a->b = (struct mt_fbucket *)(void *)(p + head);
	a->sum = (uint64_t *)(void *)(p + head + nbuckets * sizeof(struct mt_fbucket));
	return a;
}

_Static_assert(sizeof(struct mt_farr) <= sizeof(struct mt_fbucket), "header fits a line");

int mt_ftab_init(struct mt_ftab *t, unsigned sum_bits)
{
	t->sum_bits = sum_bits;
	t->live = t->used = t->stale = 0;
	t->arr = mt_farr_alloc(2, sum_bits);
	return t->arr ? 0 : -ENOMEM;
}

void mt_ftab_fini(struct mt_ftab *t)
{
	free(t->arr);
	t->arr = NULL;
}

size_t mt_ftab_bytes(const struct mt_ftab *t)
{
	uint64_t nb = t->arr->bmask + 1;

	return (nb + 1) * sizeof(struct mt_fbucket) + (t->arr->smask + 1) * sizeof(uint64_t);
}

/* The entry of @key in @a, or NULL. Writer. */
static struct mt_fent *mt_farr_find(struct mt_farr *a, uint64_t key)
{
	for (uint64_t i = key & a->bmask;; i = (i + 1) & a->bmask)
		for (unsigned j = 0; j < MT_FT_WAYS; j++) {
			struct mt_fent *e = &a->b[i].e[j];
			if (e->key == key)
				return e;
			if (e->key == MT_FK_EMPTY)
				return NULL;
		}
}

/* Stores (@key, @mask) in the first free or removed entry of its probe sequence; returns
 * whether that entry was empty (not a tombstone). @publish: @a is visible to readers. */
static bool mt_farr_put(struct mt_farr *a, uint64_t key, uint64_t mask, bool publish)
{
	uint64_t *w = (uint64_t *)(uintptr_t)mt_farr_sumw(a, key);

	for (uint64_t i = key & a->bmask;; i = (i + 1) & a->bmask)
		for (unsigned j = 0; j < MT_FT_WAYS; j++) {
			struct mt_fent *e = &a->b[i].e[j];
			if (e->key > MT_FK_TOMB)
				continue;
			bool was_empty = e->key == MT_FK_EMPTY;
			if (!publish) {
				*w |= mt_farr_sum_bits(key);
				e->mask = mask;
				e->key = key;
				return was_empty;
			}
			/* Summary bits, then the mask, then the key (see mt_farr_get). */
			MT_STORE_RLX(w, *w | mt_farr_sum_bits(key));
			MT_STORE_REL(&e->mask, mask);
			MT_STORE_REL(&e->key, key);
			return was_empty;
		}
}

/* Rebuilds the table into @nbuckets buckets with a fresh summary, publishes it. */
static int mt_ftab_rehash(struct mt_ftab *t, uint64_t nbuckets, struct mt_reclaim *rc)
{
	struct mt_farr *old = t->arr;
	struct mt_farr *a = mt_farr_alloc(nbuckets, t->sum_bits);

	if (!a)
		return -ENOMEM;
	for (uint64_t i = 0; i <= old->bmask; i++)
		for (unsigned j = 0; j < MT_FT_WAYS; j++)
			if (old->b[i].e[j].key > MT_FK_TOMB)
				mt_farr_put(a, old->b[i].e[j].key, old->b[i].e[j].mask, false);
	MT_STORE_REL(&t->arr, a); /* complete before readers can reach it */
	t->used = t->live;
	t->stale = 0;
	mt_reclaim_put(rc, old);
	return 0;
}

/* Buckets that hold @live keys at a load <= 5/8 (room to grow, and to shrink again). */
static uint64_t mt_ftab_buckets_for(uint64_t live)
{
	uint64_t nb = 2;

	while (nb * MT_FT_WAYS * 5 < live * 8)
		nb <<= 1;
	return nb;
}

/* Makes room for one more key, so that the store that follows cannot fail. Writer. */
static int mt_ftab_reserve(struct mt_ftab *t, struct mt_reclaim *rc)
{
	uint64_t cap = (t->arr->bmask + 1) * MT_FT_WAYS;

	if ((t->used + 1) * 8 <= cap * 7)
		return 0;
	/* Full of live keys: double. Of tombstones: what the live keys need. */
	uint64_t nb = mt_ftab_buckets_for(t->live + 1), cur = t->arr->bmask + 1;
	return mt_ftab_rehash(t, nb > cur ? cur * 2 : nb, rc);
}

/* Sets the mask of @key: inserts it (after mt_ftab_reserve), updates it, or removes it when
 * @mask is 0. Writer. */
static void mt_ftab_set(struct mt_ftab *t, uint64_t key, uint64_t mask, struct mt_reclaim *rc)
{
	struct mt_farr *a = t->arr;
	struct mt_fent *e = mt_farr_find(a, key);

	if (e && mask) {
		MT_STORE_REL(&e->mask, mask);
		return;
	}
	if (mask) {
		if (mt_farr_put(a, key, mask, true))
			t->used++;
		t->live++;
		return;
	}
	if (!e)
		return;
	MT_STORE_REL(&e->key, MT_FK_TOMB);
	t->live--;
	t->stale++;
	/* Shrink when sparse, rebuild the summary when stale; a failure is harmless (the table
	 * stays big, the summary says "maybe" more often). */
	uint64_t nb = a->bmask + 1;
	if (nb > 16 && t->live * 16 < nb * MT_FT_WAYS)
		(void)mt_ftab_rehash(t, mt_ftab_buckets_for(t->live), rc);
	else if (t->stale > t->live + 64)
		(void)mt_ftab_rehash(t, nb, rc);
}

/* ------------------------------------------------------------------------------------------ */
/* Filter keys. */

/*
 * Level terms. A wildcard filter's key is the sum of one term per level (mod 2^64), sealed by
 * how it ends: level i holding word w adds mt_fidx_term(i, w), a '+' adds f->plus_term[i].
 * Terms are seeded multiply-fold hashes, so sums of distinct term sets collide with
 * probability ~2^-64, and a reader derives a shape's key from the topic's own prefix sum with
 * one addition per level the shape changes (struct mt_pprog), with no chain of multiplies.
 */

/* Term of word bytes @a (at most 8, zero-extended, byte k in bits 8k..8k+7; a level holds no
 * NUL, so @a and @len name the word) at level @i: one multiply. */
static inline uint64_t mt_fidx_short(uint64_t a, size_t len, unsigned i, uint64_t seed)
{
	return mt_mum(a ^ seed ^ MT_P1, ((uint64_t)i << 8 | len) ^ MT_P0);
}

/* Term of level @i holding word @w (@len bytes). */
static uint64_t mt_fidx_term(uint64_t seed, unsigned i, const char *w, size_t len)
{
	if (len > 8) /* marked 0xff in the length byte: no short word has it */
		return mt_fidx_short(mt_hash(w, len, seed), 0xff, i, seed);
	uint64_t a = 0;
	for (size_t k = 0; k < len; k++)
		a |= (uint64_t)(unsigned char)w[k] << (8 * k);
	return mt_fidx_short(a, len, i, seed);
}

/* Splits filter @s into its shape (@plus[i] for each level before a trailing '#'; returns
 * their count) and its key. *@kind: MT_FR_EXACT, MT_FR_HERE or MT_FR_HASH. */
static unsigned mt_fidx_shape(const struct mt_fidx *f, const char *s, size_t len, bool *plus,
			      int *kind, uint64_t *key)
{
	const char *p = s, *end = s + len;
	uint64_t path = f->seed;
	unsigned n = 0;
	bool wild = false;

	*kind = MT_FR_HERE;
	for (;;) {
		const char *q = mt_find_slash(p, end);
		size_t wl = (size_t)(q - p);
		if (wl == 1 && p[0] == '#') {
			*kind = MT_FR_HASH;
			wild = true;
			break;
		}
		if (n == MT_LEVELS_MAX) /* a valid filter has fewer: MT_DIE rather than overrun */
			MT_DIE("filter deeper than MT_LEVELS_MAX");
		plus[n] = wl == 1 && p[0] == '+';
		wild |= plus[n];
		path += plus[n] ? f->plus_term[n] : mt_fidx_term(f->seed, n, p, wl);
		n++;
		if (q == end)
			break;
		p = q + 1;
	}
	if (!wild) {
		*kind = MT_FR_EXACT;
		*key = mt_fkey(mt_exact_hash(s, len, f->seed), f->kmask);
	} else {
		*key = mt_fkey(path ^ (*kind == MT_FR_HASH ? MT_FK_HASH : MT_FK_HERE), f->kmask);
	}
	return n;
}

/* ------------------------------------------------------------------------------------------ */
/* Shapes: the writer's trie and the readers' view. */

/* The node for shape @plus[0..n), created if @create (0 if absent or out of memory). */
static uint32_t mt_shape_get(struct mt_fidx *f, const bool *plus, unsigned n, bool create)
{
	uint32_t cur = 0;

	for (unsigned i = 0; i < n; i++) {
		uint32_t c = f->pn[cur].child[plus[i]];
		if (!c) {
			if (!create)
				return 0;
			if (f->pfree) {
				c = f->pfree;
				f->pfree = f->pn[c].parent;
			} else {
				if (f->npn == f->cappn) {
					uint32_t cap = f->cappn * 2;
					struct mt_pnode *pn = realloc(f->pn, cap * sizeof(*pn));
					if (!pn)
						return 0; /* the caller prunes what was made */
					f->pn = pn;
					f->cappn = cap;
				}
				c = f->npn++;
			}
			f->pn[c] = (struct mt_pnode){cur, {0, 0}, 0, 0, (uint8_t)(i + 1), plus[i]};
			f->pn[cur].child[plus[i]] = c;
			f->nshapes++;
		}
		cur = c;
	}
	return cur;
}

/* Unlinks @c and its ancestors while they end no filter and have no children. */
static void mt_shape_prune(struct mt_fidx *f, uint32_t c)
{
	while (c) {
		struct mt_pnode *p = &f->pn[c];
		if (p->nhere || p->nhash || p->child[0] || p->child[1])
			return;
		uint32_t up = p->parent;
		f->pn[up].child[p->plus] = 0;
		p->parent = f->pfree;
		f->pfree = c;
		f->nshapes--;
		c = up;
	}
}

static uint32_t mt_view_fill(const struct mt_fidx *f, struct mt_pview *v, uint32_t c, uint32_t i,
			     bool nodollar, bool words)
{
	const struct mt_pnode *p = &f->pn[c];
	struct mt_pv *e = &v->v[i];

	nodollar |= p->depth == 1 && p->plus;
	words &= !p->plus;
	e->depth = p->depth;
	e->flags = (uint8_t)((p->plus ? MT_PV_PLUS : 0) | (p->nhere ? MT_PV_HERE : 0) |
			     (p->nhash ? MT_PV_HASH : 0) | (nodollar ? MT_PV_NODOLLAR : 0) |
			     (words ? MT_PV_WORDS : 0));
	v->nterms += (p->nhere || p->nhash);
	uint32_t next = i + 1;
	for (int k = 0; k < 2; k++)
		if (p->child[k])
			next = mt_view_fill(f, v, p->child[k], next, nodollar, words);
	e->end = next;
	return next;
}

/* Depth of the deepest node under (and including) @c. */
static unsigned mt_shape_depth(const struct mt_fidx *f, uint32_t c)
{
	const struct mt_pnode *p = &f->pn[c];
	unsigned d = p->depth;

	for (int k = 0; k < 2; k++)
		if (p->child[k]) {
			unsigned cd = mt_shape_depth(f, p->child[k]);
			d = cd > d ? cd : d;
		}
	return d;
}

/* Programs under construction: steps, and the HASH and HERE candidate lists. */
struct mt_pbuild {
	struct mt_pstep *s;
	struct mt_pcand *h, *r;
	uint32_t ns, nh, nr;
	uint32_t s0; /* first step of the program being built */
};

/* Appends to program @d the candidates (and steps) of node @c, whose '+' levels above it sum
 * their deltas in slot @ds, and of its subtree, leaving out nodes that yield no key for topics
 * of @d levels and have no descendant that does. Returns whether anything was kept. */
static bool mt_prog_fill(const struct mt_fidx *f, uint32_t c, unsigned d, unsigned ds,
			 struct mt_pbuild *b)
{
	const struct mt_pnode *p = &f->pn[c];

	if (p->depth > d)
		return false;
	uint32_t ns = b->ns, nh = b->nh, nr = b->nr;
	if (p->plus) {
		unsigned delta = MT_PS_DELTA + p->depth - 1u;
		if (ds == MT_PS_ZERO) {
			ds = delta;
		} else {
			b->s[b->ns] = (struct mt_pstep){(uint16_t)ds, (uint16_t)delta};
			ds = MT_PS_STK + (b->ns++ - b->s0);
		}
	}
	struct mt_pcand k = {p->depth, (uint16_t)ds};
	bool need = false;
	if (p->nhash) {
		b->h[b->nh++] = k;
		need = true;
	}
	if (p->nhere && p->depth == d) {
		b->r[b->nr++] = k;
		need = true;
	}
	for (int i = 0; i < 2; i++)
		if (p->child[i])
			need |= mt_prog_fill(f, p->child[i], d, ds, b);
	if (!need) {
		b->ns = ns;
		b->nh = nh;
		b->nr = nr;
	}
	return need;
}

/* Compiles the shapes into @nprog programs (@prog), their steps and candidates into @b, whose
 * arrays hold @cap entries each. Returns false if they do not fit: a program with more steps
 * than a reader's stack or more keys than its batch. */
static bool mt_prog_build(const struct mt_fidx *f, uint32_t nprog, struct mt_pprog *prog,
			  struct mt_pbuild *b, uint32_t cap)
{
	b->ns = b->nh = b->nr = 0;
	for (uint32_t d = 1; d <= nprog; d++) {
		struct mt_pprog *pg = &prog[d - 1];
		/* One program has at most one step and one candidate of each kind per node, and
		 * each candidate list is padded (with seed-only keys, whose lanes the reader
		 * masks off) to a multiple of 4. */
		if (b->ns + f->nshapes + 1 > cap || b->nh + f->nshapes + 4 > cap ||
		    b->nr + f->nshapes + 4 > cap)
			return false;
		b->s0 = pg->s0 = b->ns;
		pg->h0 = b->nh;
		pg->r0 = b->nr;
		(void)mt_prog_fill(f, 0, d, MT_PS_ZERO, b);
		pg->ns = b->ns - pg->s0;
		pg->nh = b->nh - pg->h0;
		pg->nr = b->nr - pg->r0;
		while ((b->nh - pg->h0) % 4)
			b->h[b->nh++] = (struct mt_pcand){0, MT_PS_ZERO};
		while ((b->nr - pg->r0) % 4)
			b->r[b->nr++] = (struct mt_pcand){0, MT_PS_ZERO};
		if (pg->ns > MT_PSTEPS_MAX || pg->nh + pg->nr > MT_FIDX_CANDS)
			return false;
	}
	return true;
}

/* Publishes a view of the current shapes; the old one goes after a grace period. */
static int mt_view_publish(struct mt_fidx *f)
{
	uint32_t n = f->nshapes + 1, maxd = mt_shape_depth(f, 0);
	/* Programs for depths 1..maxd + 1, when the shapes are few enough to be worth it. */
	uint32_t nprog = maxd + 1, cap = nprog * (n + 3);
	struct mt_pprog *prog = NULL;
	struct mt_pbuild b = {0};
	int ret = -ENOMEM;

	if ((uint64_t)nprog * n > f->prog_limit) {
		nprog = 0;
	} else {
		prog = malloc(nprog * sizeof(*prog));
		b.s = malloc(cap * sizeof(*b.s));
		b.h = malloc(cap * sizeof(*b.h));
		b.r = malloc(cap * sizeof(*b.r));
		if (!prog || !b.s || !b.h || !b.r)
			goto out;
		if (!mt_prog_build(f, nprog, prog, &b, cap)) {
			nprog = 0;
			b.ns = b.nh = b.nr = 0;
		}
	}
	struct mt_pview *v = malloc(sizeof(*v) + n * sizeof(v->v[0]) + nprog * sizeof(*prog) +
				    b.ns * sizeof(*b.s) + (b.nh + b.nr) * sizeof(*b.h));
	if (!v)
		goto out;
	v->n = n;
	v->nterms = 0;
	mt_view_fill(f, v, 0, 0, false, true);
	struct mt_pprog *vp = (struct mt_pprog *)(void *)&v->v[n];
	struct mt_pstep *vs = (struct mt_pstep *)(void *)&vp[nprog];
	struct mt_pcand *vc = (struct mt_pcand *)(void *)&vs[b.ns];
	if (nprog) {
		memcpy(vp, prog, nprog * sizeof(*prog));
		memcpy(vs, b.s, b.ns * sizeof(*vs));
		memcpy(vc, b.h, b.nh * sizeof(*vc));
		memcpy(vc + b.nh, b.r, b.nr * sizeof(*vc)); /* the HERE list follows the HASH one */
		for (uint32_t d = 0; d < nprog; d++)
			vp[d].r0 += b.nh;
	}
	v->nprog = nprog;
	v->prog = vp;
	v->step = vs;
	v->cand = vc;
	struct mt_pview *old = f->view;
	MT_STORE_REL(&f->view, v);
	mt_reclaim_put(f->rc, old);
	ret = 0;
out:
	free(prog);
	free(b.s);
	free(b.h);
	free(b.r);
	f->view_dirty = ret < 0;
	return ret;
}

/* ------------------------------------------------------------------------------------------ */

int mt_fidx_init(struct mt_fidx *f, uint64_t seed, struct mt_reclaim *rc)
{
	memset(f, 0, sizeof(*f));
	f->seed = seed;
	f->prog_limit = MT_FIDX_PROG_LIMIT;
	for (unsigned i = 0; i < MT_LEVELS_MAX; i++) /* 0xfe in the length byte: no word has it */
		f->plus_term[i] = mt_mum(seed ^ MT_P2, ((uint64_t)i << 8 | 0xfe) ^ MT_P0);
	f->kmask = ~0ull;
	f->rc = rc;
	f->cappn = 16;
	f->npn = 1;
	f->pn = calloc(f->cappn, sizeof(*f->pn));
	if (!f->pn)
		goto err;
	if (mt_ftab_init(&f->exact, MT_FIDX_SUM_EXACT) < 0)
		goto err;
	if (mt_ftab_init(&f->wild, MT_FIDX_SUM_WILD) < 0)
		goto err;
	if (mt_htab_init(&f->recs, 8) < 0)
		goto err;
	if (mt_view_publish(f) < 0)
		goto err;
	return 0;
err:
	mt_fidx_fini(f);
	return -ENOMEM;
}

int mt_fidx_prog_limit(struct mt_fidx *f, uint32_t limit)
{
	f->prog_limit = limit;
	return mt_view_publish(f);
}

void mt_fidx_fini(struct mt_fidx *f)
{
	struct mt_hent *h;

	if (f->recs.arr) {
		MT_HTAB_FOREACH(&f->recs, h) {
			struct mt_frec *r = (struct mt_frec *)h;
			mt_cores_free(r->mask, r->data);
			mt_obj_free(f->rc, r, sizeof(*r) + r->len);
		}
		mt_htab_fini(&f->recs);
	}
	mt_ftab_fini(&f->exact);
	mt_ftab_fini(&f->wild);
	free(f->view);
	free(f->pn);
	f->view = NULL;
	f->pn = NULL;
}

struct mt_frkey {
	const char *s;
	size_t len;
};

static inline bool mt_frec_eq(const void *ent, const void *key)
{
	const struct mt_frec *r = ent;
	const struct mt_frkey *k = key;

	return r->len == k->len && mt_mem_eq(r->text, k->s, k->len);
}

/* Union of the masks of every record with key @key that lives in the same hot table (exact
 * or wildcard: @exact) as it. Writer: the records' table only. */
static uint64_t mt_fidx_union(const struct mt_fidx *f, uint64_t key, bool exact)
{
	const struct mt_harr *a = f->recs.arr;
	uint64_t m = 0;

	for (uint64_t i = key & a->mask; a->slot[i] != MT_SLOT_EMPTY; i = (i + 1) & a->mask) {
		uintptr_t s = a->slot[i];
		if (s > MT_SLOT_TOMB && (s >> 48) == MT_SLOT_TAG(key)) {
			const struct mt_frec *r = MT_SLOT_PTR(s);
			if (r->h.hash == key && (r->kind == MT_FR_EXACT) == exact)
				m |= r->mask;
		}
	}
	return m;
}

/* Removes record @r (emptied) and its shape count. */
static void mt_fidx_drop(struct mt_fidx *f, struct mt_frec *r)
{
	mt_htab_remove(&f->recs, &r->h, f->rc);
	if (r->kind == MT_FR_EXACT) {
		f->nexact--;
	} else {
		struct mt_pnode *p = &f->pn[r->pnode];
		uint32_t *cnt = r->kind == MT_FR_HASH ? &p->nhash : &p->nhere;
		f->nwild--;
		if (--*cnt == 0) {
			mt_shape_prune(f, r->pnode);
			(void)mt_view_publish(f); /* on failure the old view lists a shape too many:
						   * a candidate key that is absent, harmless */
		}
	}
	mt_obj_free(f->rc, r, sizeof(*r) + r->len);
}

/* A new record for @s of shape @plus[0..n) (wildcard) with one subscriber on @core. */
static int mt_fidx_new(struct mt_fidx *f, const char *s, size_t len, uint64_t key, int kind,
		       const bool *plus, unsigned n, unsigned core, struct mt_frec **out)
{
	struct mt_frec *r = mt_obj_alloc(f->rc, sizeof(*r) + len);

	if (!r)
		return -ENOMEM;
	r->h.hash = key;
	r->len = (uint32_t)len;
	r->kind = (uint32_t)kind & 0xff;
	memcpy(r->text, s, len);
	(void)mt_cores_inc(&r->mask, &r->data, core); /* first count: cannot fail */
	if (mt_htab_insert(&f->recs, &r->h, f->rc) < 0)
		goto err_rec;
	if (kind == MT_FR_EXACT) {
		f->nexact++;
		*out = r;
		return 0;
	}
	uint32_t c = mt_shape_get(f, plus, n, true);
	if (!c && n > 0)
		goto err_shape;
	if (c >= (1u << 24))
		goto err_shape;
	struct mt_pnode *p = &f->pn[c];
	uint32_t *cnt = kind == MT_FR_HASH ? &p->nhash : &p->nhere;
	r->pnode = c & 0xffffff;
	if ((*cnt)++ == 0 || f->view_dirty) {
		if (mt_view_publish(f) < 0) {
			(*cnt)--;
			mt_shape_prune(f, c);
			goto err_table;
		}
	}
	f->nwild++;
	*out = r;
	return 0;

err_shape:
	/* Nodes made before the failure end no filter: prune from the deepest one on the path. */
	c = 0;
	for (unsigned i = 0; i < n && f->pn[c].child[plus[i]]; i++)
		c = f->pn[c].child[plus[i]];
	mt_shape_prune(f, c);
err_table:
	mt_htab_remove(&f->recs, &r->h, f->rc);
err_rec:
	mt_obj_free(f->rc, r, sizeof(*r) + len);
	return -ENOMEM;
}

int mt_fidx_add(struct mt_fidx *f, const char *s, size_t len, unsigned core)
{
	bool plus[MT_LEVELS_MAX];
	int kind, ret;
	uint64_t key;
	unsigned n = mt_fidx_shape(f, s, len, plus, &kind, &key);
	struct mt_frkey k = {s, len};
	struct mt_frec *r = MT_HTAB_FIND(&f->recs, key, mt_frec_eq, &k);
	struct mt_ftab *t = kind == MT_FR_EXACT ? &f->exact : &f->wild;

	if (r) {
		ret = mt_cores_inc(&r->mask, &r->data, core);
		if (ret < 0)
			return ret;
	} else {
		ret = mt_ftab_reserve(t, f->rc);
		if (ret < 0)
			return ret;
		ret = mt_fidx_new(f, s, len, key, kind, plus, n, core, &r);
		if (ret < 0)
			return ret;
	}
	mt_ftab_set(t, key, mt_fidx_union(f, key, kind == MT_FR_EXACT), f->rc);
	return 0;
}

int mt_fidx_del(struct mt_fidx *f, const char *s, size_t len, unsigned core)
{
	bool plus[MT_LEVELS_MAX];
	int kind;
	uint64_t key;
	(void)mt_fidx_shape(f, s, len, plus, &kind, &key);
	struct mt_frkey k = {s, len};
	struct mt_frec *r = MT_HTAB_FIND(&f->recs, key, mt_frec_eq, &k);

	if (!r)
		return -ENOENT;
	int ret = mt_cores_dec(&r->mask, &r->data, core);
	if (ret < 0)
		return ret;
	bool exact = kind == MT_FR_EXACT;
	if (r->mask == 0)
		mt_fidx_drop(f, r);
	else if (f->view_dirty)
		(void)mt_view_publish(f);
	mt_ftab_set(exact ? &f->exact : &f->wild, key, mt_fidx_union(f, key, exact), f->rc);
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Read side. */

/* 8 bytes at @p, byte i in bits 8i..8i+7. */
static inline uint64_t mt_le64(const char *p)
{
	uint64_t v = mt_rd64((const unsigned char *)p);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

/*
 * Splits topic @s (len > 0) into levels as the filter keys see them: @ps[i] the key sum of
 * levels 0..i-1 (ps[0]: the seed), and ps[MT_PS_DELTA + i] what a '+' at level i changes in
 * it (@plus: the plus terms). Returns the levels split; *@whole is false for a name deeper
 * than MT_LEVELS_MAX (its first levels are split: no filter has more, so only '#' filters can
 * match it). A word of up to 8 bytes, nearly every word, costs one load and one multiply (only
 * a name shorter than 8 bytes is read byte by byte).
 */
static inline __attribute__((always_inline)) uint32_t
mt_fidx_split(const char *s, size_t len, uint64_t seed, const uint64_t *plus, uint64_t *ps,
	      bool *whole)
{
	const char *p = s, *end = s + len;
	uint64_t sum = seed;
	uint32_t n = 0;

	ps[0] = sum;
	for (;;) {
		size_t rest = (size_t)(end - p), wl;
		uint64_t v = 0, t;
		if (MT_LIKELY(rest >= 8)) {
			v = mt_le64(p);
		} else if (len >= 8 && rest) {
			v = mt_le64(end - 8) >> (8 * (8 - rest)); /* the last bytes, zero-filled */
		} else {
			for (size_t i = 0; i < rest; i++)
				v |= (uint64_t)(unsigned char)p[i] << (8 * i);
		}
		uint64_t m = mt_bytes_eq(v, '/');
		if (m) {
			wl = (size_t)__builtin_ctzll(m) >> 3;
			t = mt_fidx_short(v & ((1ull << (8 * wl)) - 1), wl, n, seed);
		} else if (rest <= 8) {
			wl = rest;
			t = mt_fidx_short(v, wl, n, seed);
		} else {
			wl = (size_t)(mt_find_slash(p + 8, end) - p);
			t = mt_fidx_term(seed, n, p, wl);
		}
		ps[MT_PS_DELTA + n] = plus[n] - t;
		sum += t;
		ps[++n] = sum;
		if (wl == rest) {
			*whole = true;
			return n;
		}
		if (n == MT_LEVELS_MAX) {
			*whole = false;
			return n;
		}
		p += wl + 1;
	}
}

/* Four keys at once (AVX2 where the reader's clone has it, pairs or scalars elsewhere). Vectors
 * go by pointer: by value they would change the ABI between clones. */
typedef uint64_t mt_v4u64 __attribute__((vector_size(32)));

/* mt_farr_maybe of keys @k4[0..3]: bit i of the result for @k4[i]. */
static inline __attribute__((always_inline)) unsigned mt_farr_maybe4(const struct mt_farr *a,
								     const uint64_t *k4)
{
	mt_v4u64 k, one = {1, 1, 1, 1};
	memcpy(&k, k4, sizeof(k));
	mt_v4u64 i = (k >> 40) & a->smask;
	mt_v4u64 w = {MT_LOAD_RLX(&a->sum[i[0]]), MT_LOAD_RLX(&a->sum[i[1]]),
		      MT_LOAD_RLX(&a->sum[i[2]]), MT_LOAD_RLX(&a->sum[i[3]])};
	mt_v4u64 b = (one << (k & 63)) | (one << ((k >> 6) & 63)) | (one << ((k >> 12) & 63));
	mt_v4u64 hit = (mt_v4u64)((w & b) == b) & (mt_v4u64){1, 2, 4, 8};
	hit |= __builtin_shufflevector(hit, hit, 2, 3, 0, 1);
	hit |= __builtin_shufflevector(hit, hit, 1, 0, 3, 2);
	return (unsigned)hit[0];
}

/* Checks @n candidate keys of snapshot @a, whose summary words the caller prefetched: the
 * buckets of those the summary lets through are prefetched together, then read. Returns the
 * union of the masks found. @ck has room for padding to a multiple of 4. */
static inline __attribute__((always_inline)) uint64_t
mt_fidx_probe(const struct mt_farr *a, uint64_t *ck, unsigned n, struct mt_walk_stats *st)
{
	uint64_t mk[MT_FIDX_CANDS], m = 0;
	unsigned nm = 0;

	for (unsigned j = n; j % 4; j++)
		ck[j] = 0;
	for (unsigned j = 0; j < n; j += 4) {
		unsigned hit = mt_farr_maybe4(a, ck + j);
		if (j + 4 > n)
			hit &= (1u << (n - j)) - 1;
		while (hit) {
			uint64_t k = ck[j + (unsigned)__builtin_ctz(hit)];
			hit &= hit - 1;
			mt_farr_prefetch(a, k);
			mk[nm++] = k;
		}
	}
	for (unsigned j = 0; j < nm; j++) {
		bool found;
		m |= mt_farr_get(a, mk[j], &found);
		if (st)
			st->found += found;
	}
	if (st) {
		st->checks += n;
		st->maybe += nm;
	}
	return m;
}

/* Candidate keys (slot(@c[i].a) + slot(@c[i].b)) ^ @seal of snapshot @a for i < @n, four at a
 * time into @ck (which has room for the last group's padding; @c is padded to a multiple of
 * 4), their summary words prefetched. */
static inline __attribute__((always_inline)) void
mt_fidx_keys4(uint64_t *ck, const struct mt_farr *a, const uint64_t *ps, const struct mt_pcand *c,
	      uint32_t n, uint64_t seal, uint64_t km)
{
	for (uint32_t i = 0; i < n; i += 4) {
		mt_v4u64 x = {ps[c[i].a], ps[c[i + 1].a], ps[c[i + 2].a], ps[c[i + 3].a]};
		mt_v4u64 y = {ps[c[i].b], ps[c[i + 1].b], ps[c[i + 2].b], ps[c[i + 3].b]};
		mt_v4u64 k = (((x + y) ^ seal) & km) | (1ull << 63); /* mt_fkey */
		memcpy(ck + i, &k, sizeof(k));
		mt_v4u64 w = (k >> 40) & a->smask;
		for (int j = 0; j < 4; j++)
			__builtin_prefetch(&a->sum[w[j]]);
	}
}

/* Adds wildcard candidate key @k (its summary word is fetched now, checked in mt_fidx_probe). */
#define MT_FIDX_CAND(k)                                                                           \
	do {                                                                                      \
		uint64_t k_ = (k);                                                                \
		__builtin_prefetch(mt_farr_sumw(wa, k_));                                         \
		ck[nc++] = k_;                                                                    \
	} while (0)

/*
 * The match, instantiated twice: mt_fidx_match (@st NULL: the branches on it fold away) and
 * mt_fidx_walk_stats. Order: the exact key's bucket and summary word are prefetched first, so
 * that their misses overlap the split and the shape walk; the walk computes each wildcard
 * candidate's key and prefetches its summary word; then the buckets of the candidates let
 * through are fetched together, and last the exact bucket is read, if its summary let it.
 */
static inline __attribute__((always_inline)) uint64_t
mt_fidx_walk(const struct mt_fidx *f, const char *topic, size_t len, struct mt_walk_stats *st)
{
	if (len == 0)
		return 0;
	const struct mt_farr *xa = MT_LOAD_ACQ(&f->exact.arr);
	const struct mt_pview *v = MT_LOAD_ACQ(&f->view);
	uint64_t km = f->kmask;
	uint64_t xk = mt_fkey(mt_exact_hash(topic, len, f->seed), km);
	uint64_t m = 0;

	mt_farr_prefetch(xa, xk);
	__builtin_prefetch(mt_farr_sumw(xa, xk));
	if (v->nterms) {
		const struct mt_farr *wa = MT_LOAD_ACQ(&f->wild.arr);
		uint64_t ps[MT_PS_SLOTS], ck[MT_FIDX_CANDS + 7];
		unsigned nc = 0;
		bool whole, dollar = topic[0] == '$';
		uint32_t n = mt_fidx_split(topic, len, f->seed, f->plus_term, ps, &whole);
		if (MT_LIKELY(v->nprog && !dollar)) {
			uint32_t d = whole && n < v->nprog ? n : v->nprog;
			const struct mt_pprog *pg = &v->prog[d - 1];
			const struct mt_pstep *s = v->step + pg->s0;
			const struct mt_pcand *c = v->cand;
			ps[MT_PS_ZERO] = 0;
			for (uint32_t i = 0; i < pg->ns; i++)
				ps[MT_PS_STK + i] = ps[s[i].x] + ps[s[i].y];
			mt_fidx_keys4(ck, wa, ps, c + pg->h0, pg->nh, MT_FK_HASH, km);
			mt_fidx_keys4(ck + pg->nh, wa, ps, c + pg->r0, pg->nr, MT_FK_HERE, km);
			nc = pg->nh + pg->nr;
		} else {
			/* The view walk: '$' topics (no shape starting with '+' serves them, nor
			 * the root "#"), and shape sets too big for programs. */
			uint64_t *stk = ps + MT_PS_STK;
			stk[0] = ps[0];
			for (uint32_t i = 0; i < v->n;) {
				const struct mt_pv *e = &v->v[i];
				unsigned d = e->depth, fl = e->flags;
				if (d > n || (dollar && (fl & MT_PV_NODOLLAR))) {
					i = e->end;
					continue;
				}
				i++;
				uint64_t p = ps[d];
				if (!(fl & MT_PV_WORDS))
					p = stk[d - 1] + (fl & MT_PV_PLUS ? f->plus_term[d - 1]
									  : ps[d] - ps[d - 1]);
				stk[d] = p;
				if ((fl & MT_PV_HASH) && (d > 0 || !dollar))
					MT_FIDX_CAND(mt_fkey(p ^ MT_FK_HASH, km));
				if ((fl & MT_PV_HERE) && d == n && whole)
					MT_FIDX_CAND(mt_fkey(p ^ MT_FK_HERE, km));
				if (nc >= MT_FIDX_CANDS - 1) {
					m |= mt_fidx_probe(wa, ck, nc, st);
					nc = 0;
				}
			}
		}
		m |= mt_fidx_probe(wa, ck, nc, st);
	}
	if (st)
		st->checks++;
	if (mt_farr_maybe(xa, xk)) {
		bool found;
		m |= mt_farr_get(xa, xk, &found);
		if (st) {
			st->maybe++;
			st->found += found;
		}
	}
	return m;
}

/* The match compiled twice on x86-64, for x86-64-v3 (AVX2, BMI2: the key and summary arithmetic
 * four lanes at a time, variable shifts in one instruction) and for the baseline, one picked
 * when the program loads (an ifunc). Kept static: compilers disagree on how a clone set is
 * named across files. Not under ThreadSanitizer, whose instrumented resolver would run before
 * its runtime is up. */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MT_FIDX_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define MT_FIDX_TSAN 1
#endif
#if defined(__x86_64__) && defined(__ELF__) && (defined(__clang__) || __GNUC__ >= 12) &&        \
	!defined(MT_FIDX_TSAN)
__attribute__((target_clones("arch=x86-64-v3", "default")))
#endif
static uint64_t mt_fidx_match_cloned(const struct mt_fidx *f, const char *topic, size_t len)
{
	return mt_fidx_walk(f, topic, len, NULL);
}

uint64_t mt_fidx_match(const struct mt_fidx *f, const char *topic, size_t len)
{
	return mt_fidx_match_cloned(f, topic, len);
}

void mt_fidx_walk_stats(const struct mt_fidx *f, const char *topic, size_t len,
			struct mt_walk_stats *st)
{
	(void)mt_fidx_walk(f, topic, len, st);
}

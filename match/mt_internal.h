/* SPDX-License-Identifier: MIT */
/*
 * match/ internals shared by its files: the string hash, the reclaim batches (call_rcu), the
 * open-addressing RCU hash table (mt_htab) and the filter trie (mt_tree) with its read-side walk.
 *
 * Design: one trie serves three users.
 *
 *   Exact filters (no wildcard) live in one hash keyed by the whole filter: a publish costs one
 *   whole-topic hash and one probe. Wildcard filters live in a level trie whose edges are all in
 *   one "edge hash" keyed by (parent node, level word); a node holds its '+' child and its
 *   "<node>/#" terminal directly, so a walk costs at most one hash probe per visited node and
 *   level (the word) plus two pointer loads ('+' and '#'). The topic is tokenised lazily, once,
 *   into a stack array as the walk first reaches each level, and only if the trie is non-empty.
 *
 *   Each filter ends in a struct mt_term: @mask is what readers of the global index see (the
 *   core mask); @data belongs to the user (global: per-core counts, writer only; local: its
 *   subscription list; shared: its RCU list of groups).
 *
 * Concurrency (global index): exactly one writer; readers never block or write. Every pointer
 * readers follow is published with a release store after the object is fully built and read
 * with an acquire load; masks are single 64-bit relaxed atomics (never torn; each value read is
 * one the writer stored). Keys of a published object never change. Unlinked objects are freed
 * after a grace period (mt_reclaim -> call_rcu), so a reader that loaded a pointer before the
 * unlink may keep using it until its next quiescent state. Hash arrays are never resized in
 * place: the writer builds a new array, publishes it and retires the old one, which stays a valid
 * (older) snapshot for readers still on it.
 *
 * The per-core index and the retained index use the same code single-threaded (rcu = false:
 * frees are immediate).
 */
#ifndef TACHYON_MT_INTERNAL_H
#define TACHYON_MT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "match.h"

#define MT_LIKELY(x) __builtin_expect(!!(x), 1)
#define MT_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Impossible states: abort with file and line. */
#define MT_DIE(msg) mt_die(__FILE__, __LINE__, (msg))
void mt_die(const char *file, int line, const char *msg) __attribute__((noreturn));

/* Atomics (compiler builtins, so that ThreadSanitizer sees them). */
#define MT_LOAD_ACQ(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define MT_LOAD_RLX(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define MT_STORE_REL(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define MT_STORE_RLX(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)

/* ------------------------------------------------------------------------------------------ */
/* Hash: wyhash-style 64x64->128 multiply-fold, 8 bytes per step, seeded. */

#define MT_P0 0xa0761d6478bd642full
#define MT_P1 0xe7037ed1a0b428dbull
#define MT_P2 0x8ebc6af09c88c6e3ull

static inline uint64_t mt_mum(uint64_t a, uint64_t b)
{
	__uint128_t r = (__uint128_t)a * b;
	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t mt_rd64(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static inline uint64_t mt_rd32(const unsigned char *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static inline uint64_t mt_hash(const void *data, size_t len, uint64_t seed)
{
	const unsigned char *p = data;
	uint64_t h = seed ^ MT_P0;
	size_t n = len;

	while (n > 8) {
		h = mt_mum(mt_rd64(p) ^ MT_P1, h ^ MT_P2);
		p += 8;
		n -= 8;
	}
	uint64_t a, b = 0;
	if (n >= 4) {
		a = (mt_rd32(p) << 32) | mt_rd32(p + n - 4);
	} else if (n > 0) {
		a = ((uint64_t)p[0] << 16) | ((uint64_t)p[n >> 1] << 8) | p[n - 1];
	} else {
		a = 0;
	}
	b = len;
	return mt_mum(mt_mum(a ^ MT_P1, h ^ b), MT_P0 ^ len);
}

/* Combines a 64-bit value into a hash (edge keys, pointer keys). */
static inline uint64_t mt_hash_u64(uint64_t h, uint64_t v)
{
	return mt_mum(h ^ MT_P1, v ^ MT_P2);
}

uint64_t mt_random_seed(void);
/* Process-wide seed for shared-group ids: equal in every structure of this process. */
uint64_t mt_share_seed(void);

/* ------------------------------------------------------------------------------------------ */
/* Reclaim: frees after a grace period (call_rcu), in batches, or at once when !rcu. */

struct mt_rbatch;

struct mt_reclaim {
	bool rcu;
	struct mt_rbatch *cur;
};

/* Schedules free(@p) after a grace period (or now). Writer only. Never fails: without memory
 * for a batch it waits for a grace period (synchronize_rcu) and frees at once. */
void mt_reclaim_put(struct mt_reclaim *rc, void *p);
/* Hands the pending batch to call_rcu. Called at the end of each public writer operation. */
void mt_reclaim_flush(struct mt_reclaim *rc);

/* ------------------------------------------------------------------------------------------ */
/* mt_htab: open addressing, linear probing, one 8-byte slot per entry. A slot holds
 * 0 (empty), 1 (tombstone) or an entry pointer with the top 16 bits of its hash as a tag
 * (user-space pointers fit in 48 bits; checked on insert). Every entry starts with its full
 * 64-bit hash (struct mt_hent) so that the writer can rehash. */

#define MT_SLOT_EMPTY ((uintptr_t)0)
#define MT_SLOT_TOMB ((uintptr_t)1)
#define MT_SLOT_PTR(s) ((void *)((s) & 0x0000ffffffffffffull))
#define MT_SLOT_TAG(h) ((uintptr_t)((h) >> 48))

struct mt_hent {
	uint64_t hash;
};

struct mt_harr {
	uint64_t mask; /* capacity - 1, capacity a power of two */
	uintptr_t slot[];
};

struct mt_htab {
	struct mt_harr *arr; /* RCU-published (release); readers load with acquire */
	uint64_t live;	     /* writer: entries */
	uint64_t used;	     /* writer: entries + tombstones */
};

int mt_htab_init(struct mt_htab *t, uint64_t cap);
/* Frees the slot array (not the entries). */
void mt_htab_fini(struct mt_htab *t);
/* Inserts @e (absent, e->hash set). 0 or -ENOMEM. Writer. */
int mt_htab_insert(struct mt_htab *t, struct mt_hent *e, struct mt_reclaim *rc);
/* Removes @e (present). Writer. */
void mt_htab_remove(struct mt_htab *t, struct mt_hent *e, struct mt_reclaim *rc);
/* Bytes of the current slot array. */
size_t mt_htab_bytes(const struct mt_htab *t);

/* Probe: calls the (inlined) @eq on candidates whose tag matches; returns the first hit. */
#define MT_HTAB_FIND(t, h, eq, key)                                                               \
	({                                                                                        \
		const struct mt_harr *a_ = MT_LOAD_ACQ(&(t)->arr);                                \
		uint64_t i_ = (h) & a_->mask;                                                     \
		uintptr_t tag_ = MT_SLOT_TAG(h);                                                  \
		void *r_ = NULL;                                                                  \
		for (;;) {                                                                        \
			uintptr_t s_ = MT_LOAD_ACQ(&a_->slot[i_]);                                \
			if (s_ == MT_SLOT_EMPTY)                                                  \
				break;                                                            \
			if ((s_ >> 48) == tag_ && s_ != MT_SLOT_TOMB && eq(MT_SLOT_PTR(s_), key)) { \
				r_ = MT_SLOT_PTR(s_);                                             \
				break;                                                            \
			}                                                                         \
			i_ = (i_ + 1) & a_->mask;                                                 \
		}                                                                                 \
		r_;                                                                               \
	})

/* Iterates live entries (writer or single-threaded use). */
#define MT_HTAB_FOREACH(t, e)                                                                     \
	for (uint64_t it_ = 0; it_ <= (t)->arr->mask; it_++)                                      \
		if ((t)->arr->slot[it_] > MT_SLOT_TOMB && ((e) = MT_SLOT_PTR((t)->arr->slot[it_])))

/* ------------------------------------------------------------------------------------------ */
/* mt_tree: the filter trie. */

struct mt_term {
	uint64_t mask;	/* readers (atomic); 0 = empty for the global index */
	uintptr_t data; /* owner's; 0 = empty */
};

static inline bool mt_term_empty(const struct mt_term *t)
{
	return t->mask == 0 && t->data == 0;
}

/* An exact (wildcard-free) filter. */
struct mt_texact {
	struct mt_hent h; /* hash of the filter */
	struct mt_term term;
	uint32_t len;
	char key[];
};

/* A trie node: the edge (parent, word). The '+' child is not in the edge hash (len 0, plus). */
struct mt_tnode {
	struct mt_hent h; /* edge hash: mt_hash_u64(word hash, parent address) */
	struct mt_tnode *parent;
	struct mt_tnode *plus;	 /* '+' child; release-published */
	struct mt_term here;	 /* the filter ending at this node */
	struct mt_term hash;	 /* the filter "<this node>/#" */
	uint32_t nwords;	 /* word children; readers use it only as "probe or not" hint */
	uint16_t depth;		 /* levels from the root */
	uint16_t len;		 /* word length; a '+' node has is_plus */
	uint8_t is_plus;
	char word[];
};

struct mt_tree {
	struct mt_htab exact;
	struct mt_htab edges;
	struct mt_tnode *root; /* depth 0, never freed before fini */
	uint64_t seed;
	uint64_t nexact; /* exact filters */
	uint64_t nnodes; /* trie nodes */
	uint64_t nwild;	 /* nnodes + root_hash: the walk is needed iff non-zero (readers) */
	bool root_hash;	 /* the filter "#" exists */
	struct mt_reclaim *rc;
};

/* Where a term lives, for pruning. */
struct mt_tpos {
	struct mt_texact *ex;
	struct mt_tnode *node;
};

int mt_tree_init(struct mt_tree *t, uint64_t seed, struct mt_reclaim *rc);
/* Frees everything at once (no readers left); @term_fini (may be NULL) sees each non-empty term. */
void mt_tree_fini(struct mt_tree *t, void (*term_fini)(struct mt_term *term, void *ctx),
		  void *ctx);
/* The term of (valid) filter @f, created if @create; NULL if absent or -ENOMEM (create). */
struct mt_term *mt_tree_get(struct mt_tree *t, const char *f, size_t len, bool create,
			    struct mt_tpos *pos);
/* After the writer emptied the term at @pos: unlinks it and every node left useless. */
void mt_tree_prune(struct mt_tree *t, const struct mt_tpos *pos);

/* Lazy topic tokeniser for the walk. */
struct mt_levels {
	const char *topic;
	uint32_t len;
	uint32_t n;			  /* levels tokenised so far */
	uint32_t off[MT_LEVELS_MAX + 1];  /* start of level i */
	uint32_t wlen[MT_LEVELS_MAX + 1]; /* length of level i */
	uint64_t wh[MT_LEVELS_MAX + 1];	  /* hash of level i's word, once per publish */
};

/* Tokenises the next level (levels 0..n-1 done, level n exists) and hashes its word. */
static inline void mt_levels_next(struct mt_levels *lv, uint64_t seed)
{
	uint32_t start = lv->n == 0 ? 0 : lv->off[lv->n - 1] + lv->wlen[lv->n - 1] + 1;
	const char *p = lv->topic + start;
	const char *end = lv->topic + lv->len;
	const char *q = p;

	while (q < end && *q != '/')
		q++;
	lv->off[lv->n] = start;
	lv->wlen[lv->n] = (uint32_t)(q - p);
	lv->wh[lv->n] = mt_hash(p, (size_t)(q - p), seed);
	lv->n++;
}

struct mt_edgekey {
	uint64_t hash;
	const struct mt_tnode *parent;
	const char *w;
	size_t len;
};

static inline bool mt_tnode_eq(const void *ent, const void *key)
{
	const struct mt_tnode *n = ent;
	const struct mt_edgekey *k = key;

	return n->h.hash == k->hash && n->parent == k->parent && n->len == k->len &&
	       memcmp(n->word, k->w, k->len) == 0;
}

static inline uint64_t mt_edge_hash(uint64_t seed, const struct mt_tnode *parent, const char *w,
				    size_t wlen)
{
	return mt_hash_u64(mt_hash(w, wlen, seed), (uint64_t)(uintptr_t)parent);
}

/* The child of @parent for a word whose hash (mt_hash with the tree seed) is @wh. */
static inline struct mt_tnode *mt_tree_child_wh(const struct mt_tree *t,
						const struct mt_tnode *parent, const char *w,
						size_t wlen, uint64_t wh)
{
	struct mt_edgekey k = {mt_hash_u64(wh, (uint64_t)(uintptr_t)parent), parent, w, wlen};

	return MT_HTAB_FIND(&t->edges, k.hash, mt_tnode_eq, &k);
}

struct mt_exkey {
	uint64_t hash;
	const char *s;
	size_t len;
};

static inline bool mt_texact_eq(const void *ent, const void *key)
{
	const struct mt_texact *e = ent;
	const struct mt_exkey *k = key;

	return e->h.hash == k->hash && e->len == k->len && memcmp(e->key, k->s, k->len) == 0;
}

static inline struct mt_tnode *mt_tree_child(const struct mt_tree *t, const struct mt_tnode *parent,
					     const char *w, size_t wlen)
{
	struct mt_edgekey k = {mt_edge_hash(t->seed, parent, w, wlen), parent, w, wlen};

	return MT_HTAB_FIND(&t->edges, k.hash, mt_tnode_eq, &k);
}

/*
 * The read-side walk: calls VISIT(term, vctx) for every term whose filter matches topic name
 * (@topic, @len). A macro body instantiated per user so that VISIT inlines. Iterative DFS with
 * a stack bounded by 2 * MT_LEVELS_MAX (each level leaves at most two pending branches).
 * Reader (RCU read side) for the global index; owner thread for the others.
 */
#define MT_TREE_WALK(tree, topic_, len_, VISIT, vctx)                                             \
	do {                                                                                      \
		const struct mt_tree *t_ = (tree);                                                \
		if ((len_) == 0)                                                                  \
			break;                                                                    \
		if (MT_LOAD_RLX(&t_->exact.live) != 0) {                                          \
			struct mt_exkey k_ = {mt_hash((topic_), (len_), t_->seed), (topic_), (len_)}; \
			struct mt_texact *e_ = MT_HTAB_FIND(&t_->exact, k_.hash, mt_texact_eq, &k_); \
			if (e_)                                                                   \
				VISIT(&e_->term, vctx);                                           \
		}                                                                                 \
		const struct mt_tnode *r_ = t_->root;                                             \
		if (MT_LOAD_RLX(&t_->nwild) == 0)                                                 \
			break;                                                                    \
		struct mt_levels lv_;                                                             \
		const struct mt_tnode *stk_[2 * MT_LEVELS_MAX + 2];                               \
		unsigned sp_ = 0;                                                                 \
		bool dollar_ = (topic_)[0] == '$';                                                \
		lv_.topic = (topic_);                                                             \
		lv_.len = (uint32_t)(len_);                                                       \
		lv_.n = 0;                                                                        \
		stk_[sp_++] = r_;                                                                 \
		while (sp_ > 0) {                                                                 \
			const struct mt_tnode *n_ = stk_[--sp_];                                  \
			unsigned d_ = n_->depth;                                                  \
			bool root_ = d_ == 0;                                                     \
			bool last_ = !root_ && lv_.off[d_ - 1] + lv_.wlen[d_ - 1] == lv_.len;     \
			if (!(root_ && dollar_))                                                  \
				VISIT(&n_->hash, vctx);                                           \
			if (last_) {                                                              \
				VISIT(&n_->here, vctx);                                           \
				continue;                                                         \
			}                                                                         \
			if (lv_.n == d_)                                                          \
				mt_levels_next(&lv_, t_->seed);                                   \
			const struct mt_tnode *p_ = MT_LOAD_ACQ(&n_->plus);                       \
			if (p_ && !(root_ && dollar_))                                            \
				stk_[sp_++] = p_;                                                 \
			if (MT_LOAD_RLX(&n_->nwords) != 0) {                                      \
				const struct mt_tnode *c_ = mt_tree_child_wh(                     \
					t_, n_, lv_.topic + lv_.off[d_], lv_.wlen[d_], lv_.wh[d_]);   \
				if (c_)                                                           \
					stk_[sp_++] = c_;                                         \
			}                                                                         \
		}                                                                                 \
	} while (0)

/* ------------------------------------------------------------------------------------------ */
/* The global index (mt_index.c, mt_share.c). */

/* Core set with per-core counts: @mask for readers, @data for the writer only, encoded by the
 * popcount of the mask: 0 -> 0; 1 -> the count itself; >= 2 -> uint32_t counts[popcount]
 * indexed by rank (number of lower set bits). */
int mt_cores_inc(uint64_t *mask, uintptr_t *data, unsigned core);
int mt_cores_dec(uint64_t *mask, uintptr_t *data, unsigned core);
void mt_cores_free(uint64_t mask, uintptr_t data);

/* A shared group in the global index: which cores hold its members. */
struct mt_sgroup {
	struct mt_hent h;	/* the group id (already a hash) */
	struct mt_sgroup *next; /* next group on the same filter; RCU list */
	uint64_t mask;		/* member cores (readers) */
	uintptr_t counts;	/* per-core member counts (writer) */
	struct mt_tpos pos;	/* its filter's term in the shared tree */
	struct mt_term *term;	/* that term (inside pos.ex or pos.node) */
	uint32_t len;
	char name[]; /* "group/filter" */
};

struct mt_index {
	struct mt_config cfg;
	struct mt_reclaim rc;
	struct mt_tree tree;   /* plain filters: term.mask = cores, term.data = counts */
	struct mt_tree stree;  /* shared filters: term.data = struct mt_sgroup list (RCU) */
	struct mt_htab groups; /* id -> struct mt_sgroup, for repick */
	uint64_t nwildcard;
	uint64_t ngroups;
};

int mt_index_share_add_(struct mt_index *idx, const struct mt_share_spec *spec, unsigned core);
int mt_index_share_del_(struct mt_index *idx, const struct mt_share_spec *spec, unsigned core);
void mt_index_share_fini_(struct mt_index *idx);

/* The @k-th (from 0) set bit of @m; k < popcount(m). */
static inline unsigned mt_nth_bit(uint64_t m, uint32_t k)
{
	while (k--)
		m &= m - 1;
	return (unsigned)__builtin_ctzll(m);
}

/* Index of the member (0..n-1) that a message goes to, by policy; @rr is the picker's own
 * round-robin state, @key the sticky key. */
static inline uint32_t mt_share_choose(enum mt_share_policy pol, uint32_t n, uint32_t *rr,
				       uint64_t key)
{
	if (pol == MT_SHARE_STICKY)
		return (uint32_t)(mt_hash_u64(key, MT_P0) % n);
	return (*rr)++ % n;
}

#endif /* TACHYON_MT_INTERNAL_H */

/* SPDX-License-Identifier: MIT */
/*
 * match/ internals shared by its files: the string hash, the reclaim batches (call_rcu), the
 * open-addressing RCU hash table (mt_htab), the filter trie (mt_tree) with its read-side walk,
 * and the global index's plain-filter structure (mt_fidx).
 *
 * The global index's plain (non-shared) filters do not use the trie any more: they live in
 * struct mt_fidx (mt_fidx.c), hot (key, core mask) records in cache-line buckets found from the
 * topic and the set of filter shapes alone, about one round of DRAM misses per publish
 * (bench_match at 1M subscriptions, 2026-12-02, loaded machine: p50 ~270 ns against ~720 ns
 * for the trie walk below in the same session; the next paragraphs' figures are the trie's).
 * The trie still serves the shared-subscription half of the global index (few filters), the
 * per-core index and the retained index.
 *
 * Design: one trie serves three users.
 *
 *   Exact filters (no wildcard) live in one hash keyed by the whole filter: a publish costs one
 *   path hash and one probe. Wildcard filters live in a level trie whose nodes (all but the
 *   root, '+' nodes included) are in one "edge hash" keyed by the node's path hash (mt_path_*:
 *   a hash of the levels from the root, '+' included) and checked against (parent node, level
 *   word or '+'); a node holds its "<node>/#" terminal directly (and a pointer to its '+'
 *   child, for the writer and the DFS fallback walk).
 *
 *   What decides a publish's cost at scale is the number of *dependent* cache misses, so the
 *   read side never walks pointer by pointer. The topic is split and hashed once; every key a
 *   match may need (the exact key; a trie node's key for each way of replacing topic levels by
 *   '+') follows from the topic alone. Each hash array carries a presence summary (a small
 *   blocked Bloom filter that stays in cache, mt_harr_maybe), which rules out most absent keys
 *   without touching DRAM. The walk (MT_TREE_WALK) lists the candidate nodes from the
 *   summaries, then fetches all their slots at once, then all the entries they point to at
 *   once, and only then verifies each in full: a hit costs two rounds of parallel misses (slot,
 *   entry), an absent key usually none.
 *
 *   Where that stands at 1M subscriptions (bench_match, 2-core EPYC VM, measured 2026-12-02): a
 *   dependent DRAM access costs ~190 ns on 2 MiB pages and 220-400 ns on 4 KiB pages (random
 *   pointer chase over 200 MB; only ~4 MB of last-level cache is effectively ours), and eight
 *   independent ones overlap to ~25 ns each. A topic meets 15-20 summary checks, 6-9 "maybe"s,
 *   and 5.5-8.5 keys actually present (the upper trie levels exist for nearly every topic,
 *   '+' variants included); the summaries' false-positive rate is 6-15% depending on the seed.
 *   The slot's 16-bit tag is the key fingerprint: an entry is touched only on a tag match. So
 *   the walk is, by the code, three rounds of parallel misses (summary words, which do not
 *   stay cached: dropping their prefetch costs ~25%; slots; entries), not one per level. One
 *   round would need each key's entry (its identity and mask) at an address computable from
 *   the hash, i.e. records stored in the hash array itself.
 *   Trie nodes and exact entries of the global index come from a per-index arena of huge-page
 *   chunks (mt_arena.c) so that the entry round does not add a page walk per miss.
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
 * (older) snapshot for readers still on it. A summary belongs to its array: the writer sets a
 * key's bits before the release store that publishes the key's slot, and never clears bits in
 * a published array (a removed key's bits go stale until the writer publishes a rebuilt array),
 * so a summary never says "absent" for a key its array's slots can lead a reader to.
 *
 * The per-core index and the retained index use the same code single-threaded (rcu = false:
 * frees are immediate).
 */
#ifndef TACHYON_MT_INTERNAL_H
#define TACHYON_MT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
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

/* Bytes of @v equal to @c: 0x80 in each such byte, 0 elsewhere. Exact (no borrow crosses
 * bytes), so the bits can be counted. */
#define MT_ONES 0x0101010101010101ull
#define MT_HIGHS 0x8080808080808080ull
static inline uint64_t mt_bytes_eq(uint64_t v, unsigned char c)
{
	uint64_t x = v ^ (MT_ONES * c);

	return ~(((x & ~MT_HIGHS) + ~MT_HIGHS) | x) & MT_HIGHS;
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
struct mt_arena;

struct mt_reclaim {
	bool rcu;
	struct mt_rbatch *cur;
	struct mt_arena *arena; /* where trie nodes and exact entries live; NULL: malloc */
};

/* Schedules free(@p) after a grace period (or now). Writer only. Never fails: without memory
 * for a batch it waits for a grace period (synchronize_rcu) and frees at once. */
void mt_reclaim_put(struct mt_reclaim *rc, void *p);
/* The same for an object of @size bytes from mt_obj_alloc(@rc, @size). */
void mt_reclaim_obj(struct mt_reclaim *rc, void *p, size_t size);
/* Hands the pending batch to call_rcu. Called at the end of each public writer operation. */
void mt_reclaim_flush(struct mt_reclaim *rc);

/* mt_arena (mt_arena.c): huge-page chunks for the global index's trie nodes and exact entries;
 * one writer allocates and frees, the call_rcu thread returns (any number of them). */
#define MT_ARENA_MAX 512 /* bigger objects go to malloc */
struct mt_arena *mt_arena_create(void);
void mt_arena_destroy(struct mt_arena *a); /* after the last grace period */
void *mt_arena_alloc(struct mt_arena *a, size_t size); /* zeroed; NULL if out of memory */
void mt_arena_free(struct mt_arena *a, void *p, size_t size);
void mt_arena_return(struct mt_arena *a, void *p, size_t size);
size_t mt_arena_bytes(const struct mt_arena *a); /* mapped */

/* Trie node and exact entry allocation: the arena of @rc, or calloc. Writer. */
static inline void *mt_obj_alloc(struct mt_reclaim *rc, size_t size)
{
	return rc->arena ? mt_arena_alloc(rc->arena, size) : calloc(1, size);
}

static inline void mt_obj_free(struct mt_reclaim *rc, void *p, size_t size)
{
	if (rc->arena)
		mt_arena_free(rc->arena, p, size);
	else
		free(p);
}

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

/* After the slots: the presence summary, a blocked Bloom filter of the keys (MT_SUM_SLOTS slots
 * per 64-bit word, two bits per key in one word): "absent" is exact, "maybe" costs a probe. It
 * is small enough (1/16 of the slots' bytes) to stay in cache while the slots do not, so a
 * reader learns that a key is absent without a DRAM miss, and learns which of the keys a topic
 * could lead to are worth probing before it probes any (see MT_TREE_WALK). */
#define MT_SUM_SLOTS 16

struct mt_harr {
	uint64_t mask;	/* capacity - 1, capacity a power of two */
	uint64_t smask; /* summary words - 1 */
	uintptr_t slot[];
};

struct mt_htab {
	struct mt_harr *arr; /* RCU-published (release); readers load with acquire */
	uint64_t live;	     /* writer: entries */
	uint64_t used;	     /* writer: entries + tombstones */
	uint64_t stale;	     /* writer: removals since the summary was last rebuilt */
};

static inline uint64_t mt_harr_sum_words(uint64_t cap)
{
	return cap >= MT_SUM_SLOTS ? cap / MT_SUM_SLOTS : 1;
}

static inline uint64_t *mt_harr_sum(const struct mt_harr *a)
{
	return (uint64_t *)(uintptr_t)&a->slot[a->mask + 1];
}

/* Summary word and bits of hash @h: bits the slot index and the tag use little of. */
static inline uint64_t mt_harr_sum_idx(const struct mt_harr *a, uint64_t h)
{
	return (h >> 20) & a->smask;
}

static inline uint64_t mt_harr_sum_bits(uint64_t h)
{
	return (1ull << ((h >> 8) & 63)) | (1ull << ((h >> 14) & 63));
}

/* False if no key of hash @h is in @a (exact); true if one may be. Reader: a relaxed load
 * suffices, as the slot it vouches for is loaded with acquire afterwards (MT_HARR_FIND). */
static inline bool mt_harr_maybe(const struct mt_harr *a, uint64_t h)
{
	uint64_t b = mt_harr_sum_bits(h);

	return (MT_LOAD_RLX(&mt_harr_sum(a)[mt_harr_sum_idx(a, h)]) & b) == b;
}

static inline void mt_harr_sum_prefetch(const struct mt_harr *a, uint64_t h)
{
	__builtin_prefetch(&mt_harr_sum(a)[mt_harr_sum_idx(a, h)]);
}

int mt_htab_init(struct mt_htab *t, uint64_t cap);
/* Frees the slot array (not the entries). */
void mt_htab_fini(struct mt_htab *t);
/* Inserts @e (absent, e->hash set). 0 or -ENOMEM. Writer. */
int mt_htab_insert(struct mt_htab *t, struct mt_hent *e, struct mt_reclaim *rc);
/* Removes @e (present). Writer. */
void mt_htab_remove(struct mt_htab *t, struct mt_hent *e, struct mt_reclaim *rc);
/* Bytes of the current slot array. */
size_t mt_htab_bytes(const struct mt_htab *t);

/* Probe of one slot-array snapshot @a: calls the (inlined) @eq on candidates whose tag matches;
 * returns the first hit. */
#define MT_HARR_FIND(a, h, eq, key)                                                               \
	({                                                                                        \
		const struct mt_harr *a_ = (a);                                                   \
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

/* Probe of the current array (acquire: pairs with the release in mt_htab_rehash). */
#define MT_HTAB_FIND(t, h, eq, key) MT_HARR_FIND(MT_LOAD_ACQ(&(t)->arr), (h), eq, (key))

/* Read-side prefetch helpers: hints only (never dereference, never fault), so they may be
 * given stale or unverified pointers. */
static inline void mt_harr_prefetch(const struct mt_harr *a, uint64_t h)
{
	__builtin_prefetch(&a->slot[h & a->mask]);
}

/* The first entry of @a whose tag matches @h (unverified: may be another key), or NULL when
 * no entry has that tag, i.e. the key is certainly absent. */
static inline const void *mt_harr_peek(const struct mt_harr *a, uint64_t h)
{
	uint64_t i = h & a->mask;
	uintptr_t tag = MT_SLOT_TAG(h);

	for (;;) {
		uintptr_t s = MT_LOAD_ACQ(&a->slot[i]); /* pairs with the release in mt_htab */
		if (s == MT_SLOT_EMPTY)
			return NULL;
		if ((s >> 48) == tag && s != MT_SLOT_TOMB)
			return MT_SLOT_PTR(s);
		i = (i + 1) & a->mask;
	}
}

/* Prefetches the lines of [p, p + len). */
static inline void mt_prefetch_span(const void *p, size_t len)
{
	__builtin_prefetch(p);
	__builtin_prefetch((const char *)p + len - 1);
}

/* Byte equality without a libc call (words and topics are short). */
static inline bool mt_mem_eq(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;

	if (n >= 8) {
		for (; n > 8; n -= 8, x += 8, y += 8)
			if (mt_rd64(x) != mt_rd64(y))
				return false;
		return mt_rd64(x + n - 8) == mt_rd64(y + n - 8);
	}
	if (n >= 4)
		return mt_rd32(x) == mt_rd32(y) && mt_rd32(x + n - 4) == mt_rd32(y + n - 4);
	for (size_t i = 0; i < n; i++)
		if (x[i] != y[i])
			return false;
	return true;
}

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

/* An exact (wildcard-free) filter, keyed by its path hash (mt_path_*). */
struct mt_texact {
	struct mt_hent h; /* path hash of the filter */
	struct mt_term term;
	uint32_t len;
	char key[];
};

/* A trie node: the edge (parent, word) or, for a '+' node, (parent, '+') (is_plus, len 0).
 * Laid out so that a reader touches the first 64 bytes and the word right after them; the
 * writer-only fields (term data, is_plus) are in there too but cost nothing extra. */
struct mt_tnode {
	struct mt_hent h;	 /* path hash (mt_path_*), the edge-hash key */
	struct mt_tnode *parent; /* for the edge's identity (readers compare it) and pruning */
	struct mt_tnode *plus;	 /* '+' child; release-published */
	uint32_t nwords;	 /* word children; readers use it only as "probe or not" hint */
	uint16_t len;		 /* word length */
	uint8_t depth;		 /* levels from the root (<= MT_LEVELS_MAX) */
	uint8_t is_plus;
	struct mt_term here; /* the filter ending at this node */
	struct mt_term hash; /* the filter "<this node>/#" */
	char word[];
};

_Static_assert(MT_LEVELS_MAX <= UINT8_MAX, "mt_tnode.depth is 8 bits");

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

/*
 * Path hashes. A node's key is a hash of its whole path from the root, not of (parent address,
 * word): path(root) = seed, path(child) = mt_path_child(path(parent), word hash), with a fixed
 * pseudo word hash for '+'. A reader can thus compute, from the topic alone, the key of every
 * node it might visit below a node it knows, and prefetch their slots before it has read a
 * single node. Identity is still checked in full (parent pointer and word bytes), so a collision
 * costs a probe, never a wrong match. An exact filter's key is the path hash of its levels,
 * which the walk computes anyway.
 */
#define MT_WH_PLUS 0x9e3779b97f4a7c15ull

static inline uint64_t mt_path_root(uint64_t seed)
{
	return seed;
}

static inline uint64_t mt_path_child(uint64_t path, uint64_t wh)
{
	return mt_hash_u64(wh, path);
}

/* Key of a wildcard-free filter (and of the topic names equal to it) in a tree's exact table:
 * the whole text hashed at once, so that an exact lookup needs no split into levels. */
static inline uint64_t mt_exact_hash(const char *s, size_t len, uint64_t seed)
{
	return mt_hash(s, len, seed ^ MT_P1);
}

/* Words of a topic name for the walk, split and hashed once per publish. */
struct mt_wtopic {
	const char *s;
	uint32_t n;			/* levels split (<= MT_LEVELS_MAX) */
	bool whole;			/* the name has exactly n levels (else it has more) */
	uint32_t off[MT_LEVELS_MAX];	/* start of level i */
	uint32_t wlen[MT_LEVELS_MAX];	/* length of level i */
	uint64_t wh[MT_LEVELS_MAX];	/* hash of level i's word */
	uint64_t path[MT_LEVELS_MAX + 1]; /* path hash of levels 0..i-1 (path[0]: the root) */
};

/* The first '/' in [p, end), or end: eight bytes per step, never reading outside [p, end). */
static inline const char *mt_find_slash(const char *p, const char *end)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	while (end - p >= 8) {
		uint64_t m = mt_bytes_eq(mt_rd64((const unsigned char *)p), '/');
		if (m)
			return p + (__builtin_ctzll(m) >> 3);
		p += 8;
	}
#endif
	while (p < end && *p != '/')
		p++;
	return p;
}

/* Splits and hashes @s (len > 0). A name deeper than MT_LEVELS_MAX keeps its first levels and
 * whole = false: no filter has that many levels, so only '#' filters can match it. */
static inline void mt_wtopic_split(struct mt_wtopic *w, const char *s, size_t len, uint64_t seed)
{
	const char *p = s, *end = s + len;
	uint32_t n = 0;
	uint64_t path = mt_path_root(seed);

	w->s = s;
	w->path[0] = path;
	for (;;) {
		const char *q = mt_find_slash(p, end);
		uint64_t wh = mt_hash(p, (size_t)(q - p), seed);
		w->off[n] = (uint32_t)(p - s);
		w->wlen[n] = (uint32_t)(q - p);
		w->wh[n] = wh;
		path = mt_path_child(path, wh);
		w->path[++n] = path;
		if (q == end) {
			w->whole = true;
			break;
		}
		if (n == MT_LEVELS_MAX) {
			w->whole = false;
			break;
		}
		p = q + 1;
	}
	w->n = n;
}

/* An edge's identity: (parent, word) or (parent, '+'); '+' and an empty word both have len 0. */
struct mt_edgekey {
	uint64_t hash;
	const struct mt_tnode *parent;
	const char *w;
	size_t len;
	bool plus;
};

static inline bool mt_tnode_eq(const void *ent, const void *key)
{
	const struct mt_tnode *n = ent;
	const struct mt_edgekey *k = key;

	return n->h.hash == k->hash && n->parent == k->parent && n->is_plus == k->plus &&
	       n->len == k->len && mt_mem_eq(n->word, k->w, k->len);
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

	return e->h.hash == k->hash && e->len == k->len && mt_mem_eq(e->key, k->s, k->len);
}

/* Bytes of a node a reader touches for a word of up to 16 bytes (prefetch span). */
#define MT_TNODE_HOT (sizeof(struct mt_tnode) + 16)

/*
 * Read-side prefetch along a "chain": the word descendants of a node at depth @d with path hash
 * @path that follow the topic (levels d, d+1, ... up to @end - 1). Their keys need no memory
 * read, so the slots of a whole chain load in parallel (mt_walk_chain_slots, when the walk
 * learns of the node); later (mt_walk_chain_nodes, when it visits the node) the slots are
 * scanned and the first entry with the right tag at each depth is prefetched, stopping at the
 * first depth where the key is certainly absent. Only hints: the walk itself verifies.
 */
#define MT_WALK_AHEAD 8 /* chain length: enough for the usual 5-8 level topics */

static inline void mt_walk_chain_slots(const struct mt_harr *a, const struct mt_wtopic *w,
				       unsigned d, unsigned end, uint64_t path)
{
	for (unsigned i = d; i < end; i++) {
		path = mt_path_child(path, w->wh[i]);
		mt_harr_prefetch(a, path);
	}
}

static inline void mt_walk_chain_nodes(const struct mt_harr *a, const struct mt_wtopic *w,
				       unsigned d, unsigned end, uint64_t path)
{
	for (unsigned i = d; i < end; i++) {
		path = mt_path_child(path, w->wh[i]);
		const void *c = mt_harr_peek(a, path);
		if (!c)
			break;
		mt_prefetch_span(c, MT_TNODE_HOT);
	}
}

static inline unsigned mt_walk_chain_end(const struct mt_wtopic *w, unsigned d)
{
	return d + MT_WALK_AHEAD < w->n ? d + MT_WALK_AHEAD : w->n;
}

/* A pending node of the walk: its path hash and depth ride along so that keys and control flow
 * never wait for the node itself; @cend: the chain through it was prefetched up to that depth;
 * @head: its chain's nodes still have to be fetched (mt_walk_chain_nodes) when it is visited. */
struct mt_wpend {
	const struct mt_tnode *node;
	uint64_t path;
	uint8_t depth, cend;
	bool head;
};

/* Fetches the chains of every pending head among @stk[0..n) at once, so that the '+' branches
 * found along the topic's own chain load together rather than one by one as they are popped. */
static inline void mt_walk_heads_fetch(const struct mt_harr *a, const struct mt_wtopic *w,
				       struct mt_wpend *stk, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (stk[i].head) {
			mt_walk_chain_nodes(a, w, stk[i].depth, stk[i].cend, stk[i].path);
			stk[i].head = false;
		}
}

/* A candidate node of MT_TREE_WALK: its key, depth and parent (index in the list) follow from
 * the topic; @node is filled in by verification (NULL: absent). */
struct mt_wcand {
	uint64_t path;
	const struct mt_tnode *node;
	uint8_t parent, depth;
	bool plus;
};

#define MT_WALK_CANDS 64 /* a topic matching more nodes than this goes the DFS way */

/* Prefetches the edge-summary words of every node key with at most one '+' along @w (the
 * '+' chains MT_WALK_AHEAD levels deep), so that mt_walk_cands finds them in cache. The slots
 * of the topic's own word chain and of the '+' children along it are fetched at the same time,
 * on speculation: those nodes are the likeliest to exist (the upper levels of a trie are
 * dense), and their slots then arrive with the summaries instead of one round later. */
static inline void mt_walk_sum_prefetch(const struct mt_harr *a, const struct mt_wtopic *w,
					bool dollar)
{
	for (unsigned i = 1; i <= w->n; i++) {
		mt_harr_sum_prefetch(a, w->path[i]);
		mt_harr_prefetch(a, w->path[i]);
	}
	for (unsigned d = dollar ? 1 : 0; d < w->n; d++) {
		uint64_t q = mt_path_child(w->path[d], MT_WH_PLUS);
		unsigned end = mt_walk_chain_end(w, d + 1);
		mt_harr_sum_prefetch(a, q);
		mt_harr_prefetch(a, q);
		for (unsigned i = d + 1; i < end; i++) {
			q = mt_path_child(q, w->wh[i]);
			mt_harr_sum_prefetch(a, q);
		}
	}
}

/* Lists in @c, breadth first, the root and every node key that the edge summary of @a allows
 * below a listed parent: word child (the topic's word) before '+' child (none under the root
 * for '$' topics, MQTT 4.7.2). Returns the count, or 0 if more than MT_WALK_CANDS. */
static inline unsigned mt_walk_cands(const struct mt_harr *a, const struct mt_wtopic *w,
				     bool dollar, const struct mt_tnode *root, struct mt_wcand *c)
{
	unsigned n = 1, lo = 0;

	c[0] = (struct mt_wcand){w->path[0], root, 0, 0, false};
	for (unsigned d = 0; d < w->n && lo < n; d++) {
		unsigned hi = n;
		for (unsigned i = lo; i < hi; i++) {
			uint64_t pw = mt_path_child(c[i].path, w->wh[d]);
			if (mt_harr_maybe(a, pw)) {
				if (n == MT_WALK_CANDS)
					return 0;
				c[n++] = (struct mt_wcand){pw, NULL, (uint8_t)i, (uint8_t)(d + 1),
							   false};
			}
			if (d == 0 && dollar)
				continue;
			uint64_t pp = mt_path_child(c[i].path, MT_WH_PLUS);
			if (mt_harr_maybe(a, pp)) {
				if (n == MT_WALK_CANDS)
					return 0;
				c[n++] = (struct mt_wcand){pp, NULL, (uint8_t)i, (uint8_t)(d + 1),
							   true};
			}
		}
		lo = hi;
	}
	return n;
}

/*
 * The fallback trie walk of MT_TREE_WALK, for topics whose candidate list (see there) would
 * overflow: calls VISIT for every wildcard term matching the split topic @w_, reading the edge
 * array snapshot @ea_. Iterative DFS with a stack bounded by 2 * MT_LEVELS_MAX + 1 (each level
 * leaves at most two pending branches), word child before '+' child. It follows parent->plus
 * and uses nwords as a "probe or not" hint. Memory-level parallelism: the slots of the topic's
 * own word chain are prefetched together, then the nodes they point to; a '+' child's chain
 * slots are prefetched when it is pushed; when the first pending chain head is popped, the
 * chains of all pending heads are fetched together (mt_walk_heads_fetch).
 */
#define MT_TREE_WALK_DFS(t_, w_, ea_, dollar_, VISIT, vctx)                                       \
	do {                                                                                      \
		unsigned ce_ = mt_walk_chain_end(&w_, 0);                                         \
		for (unsigned i_ = 1; i_ <= ce_; i_++)                                            \
			mt_harr_prefetch(ea_, w_.path[i_]);                                       \
		mt_walk_chain_nodes(ea_, &w_, 0, ce_, w_.path[0]);                                \
		struct mt_wpend stk_[2 * MT_LEVELS_MAX + 2];                                      \
		unsigned sp_ = 0;                                                                 \
		stk_[sp_++] = (struct mt_wpend){t_->root, w_.path[0], 0, (uint8_t)ce_, false};    \
		while (sp_ > 0) {                                                                 \
			struct mt_wpend e_ = stk_[--sp_];                                         \
			const struct mt_tnode *n_ = e_.node;                                      \
			unsigned d_ = e_.depth;                                                   \
			bool skip_ = d_ == 0 && dollar_;                                          \
			if (!skip_)                                                               \
				VISIT(&n_->hash, vctx);                                           \
			if (d_ == w_.n) {                                                         \
				if (w_.whole)                                                     \
					VISIT(&n_->here, vctx);                                   \
				continue;                                                         \
			}                                                                         \
			if (e_.head)                                                              \
				mt_walk_heads_fetch(ea_, &w_, stk_, sp_ + 1);                     \
			bool words_ = MT_LOAD_RLX(&n_->nwords) != 0;                              \
			const struct mt_tnode *p_ = MT_LOAD_ACQ(&n_->plus);                       \
			if (p_ && !skip_) {                                                       \
				uint64_t pp_ = mt_path_child(e_.path, MT_WH_PLUS);                \
				unsigned pe_ = mt_walk_chain_end(&w_, d_ + 1);                    \
				mt_prefetch_span(p_, MT_TNODE_HOT);                               \
				mt_walk_chain_slots(ea_, &w_, d_ + 1, pe_, pp_);                  \
				stk_[sp_++] = (struct mt_wpend){p_, pp_, (uint8_t)(d_ + 1),       \
								(uint8_t)pe_, true};              \
			}                                                                         \
			if (words_) {                                                             \
				struct mt_edgekey k_ = {mt_path_child(e_.path, w_.wh[d_]), n_,    \
							w_.s + w_.off[d_], w_.wlen[d_], false};   \
				const struct mt_tnode *c_ =                                       \
					MT_HARR_FIND(ea_, k_.hash, mt_tnode_eq, &k_);             \
				if (c_) {                                                         \
					struct mt_wpend ce2_ = {c_, k_.hash, (uint8_t)(d_ + 1),   \
								e_.cend, false};                  \
					if (d_ + 1 >= e_.cend && d_ + 1 < w_.n) {                 \
						ce2_.cend = (uint8_t)mt_walk_chain_end(&w_, d_ + 1); \
						ce2_.head = true;                                 \
						mt_walk_chain_slots(ea_, &w_, d_ + 1, ce2_.cend,  \
								    k_.hash);                     \
					}                                                         \
					stk_[sp_++] = ce2_;                                       \
				}                                                                 \
			}                                                                         \
		}                                                                                 \
	} while (0)

/*
 * The read-side walk: calls VISIT(term, vctx) for every term whose filter matches topic name
 * (@topic, @len). A macro body instantiated per user so that VISIT inlines.
 *
 * Every key the walk may need follows from the topic alone: the exact filter's key is the
 * hash of the whole topic (mt_exact_hash), and a trie node matching the topic's first d levels
 * has the path hash of those levels with some of them replaced by '+' ('+' nodes are in the
 * edge hash too). A tree without wildcard filters stops at the exact lookup; otherwise the
 * walk works in rounds of independent memory accesses instead of a chain of dependent misses:
 *  0. split and hash the topic; prefetch the exact key's slot and the summary words
 *     (mt_harr_maybe) of every node key with at most one '+' (cache hits, or one parallel
 *     round of misses that the exact slot's miss overlaps);
 *  1. list the candidate nodes breadth first from the summaries alone: a child is listed when
 *     its parent is and the edge summary says "maybe" (mt_walk_cands); the exact key too,
 *     when the exact summary says "maybe"; prefetch all their slots (one DRAM round);
 *  2. scan those slots and prefetch the entries they point to (one DRAM round);
 *  3. verify and visit in list order: a candidate is found in full (parent pointer, word or
 *     '+', hash: MT_HARR_FIND) only if its parent was, so a summary false positive costs one
 *     probe and never a wrong match. Absent keys mostly cost no DRAM access at all.
 * Visit order: the exact filter, then the trie breadth first, word child before '+' child.
 * When the list would exceed MT_WALK_CANDS, the DFS walk above does the trie instead.
 *
 * Each walk reads one snapshot of each slot array (acquire): an array retired by a concurrent
 * rehash stays valid until the reader's next quiescent state, and holds every entry that was
 * live when it was replaced (also valid until then). Summary bits are set before the slot they
 * vouch for is published and cleared only by publishing a rebuilt array, so a snapshot's
 * summary covers every entry a reader can find through that snapshot's slots.
 * Reader (RCU read side) for the global index; owner thread for the others.
 */
#define MT_TREE_WALK(tree, topic_, len_, VISIT, vctx)                                             \
	do {                                                                                      \
		const struct mt_tree *t_ = (tree);                                                \
		if ((len_) == 0)                                                                  \
			break;                                                                    \
		bool ex_ = MT_LOAD_RLX(&t_->exact.live) != 0;                                     \
		bool wild_ = MT_LOAD_RLX(&t_->nwild) != 0;                                        \
		if (!ex_ && !wild_)                                                               \
			break;                                                                    \
		uint64_t xh_ = ex_ ? mt_exact_hash((topic_), (len_), t_->seed) : 0;                \
		const struct mt_harr *xa_ = MT_LOAD_ACQ(&t_->exact.arr);                          \
		if (!wild_) {                                                                     \
			struct mt_exkey k_ = {xh_, (topic_), (len_)};                             \
			struct mt_texact *e_ = mt_harr_maybe(xa_, xh_)                            \
						       ? MT_HARR_FIND(xa_, xh_, mt_texact_eq, &k_) \
						       : NULL;                                     \
			if (e_)                                                                   \
				VISIT(&e_->term, vctx);                                           \
			break;                                                                    \
		}                                                                                 \
		if (ex_)                                                                          \
			mt_harr_prefetch(xa_, xh_);                                               \
		struct mt_wtopic w_;                                                              \
		mt_wtopic_split(&w_, (topic_), (len_), t_->seed);                                 \
		bool dollar_ = (topic_)[0] == '$';                                                \
		const struct mt_harr *ea_ = MT_LOAD_ACQ(&t_->edges.arr);                          \
		mt_walk_sum_prefetch(ea_, &w_, dollar_);                                          \
		ex_ = ex_ && mt_harr_maybe(xa_, xh_);                                             \
		struct mt_wcand cd_[MT_WALK_CANDS];                                               \
		unsigned nc_ = mt_walk_cands(ea_, &w_, dollar_, t_->root, cd_);                   \
		for (unsigned j_ = 1; j_ < nc_; j_++)                                             \
			mt_harr_prefetch(ea_, cd_[j_].path);                                      \
		if (ex_) {                                                                        \
			const void *x_ = mt_harr_peek(xa_, xh_);                                  \
			if (x_)                                                                   \
				mt_prefetch_span(x_, sizeof(struct mt_texact) + (len_));          \
		}                                                                                 \
		for (unsigned j_ = 1; j_ < nc_; j_++) {                                           \
			const void *x_ = mt_harr_peek(ea_, cd_[j_].path);                         \
			if (x_)                                                                   \
				mt_prefetch_span(x_, MT_TNODE_HOT);                               \
		}                                                                                 \
		if (ex_) {                                                                        \
			struct mt_exkey k_ = {xh_, (topic_), (len_)};                             \
			struct mt_texact *e_ = MT_HARR_FIND(xa_, k_.hash, mt_texact_eq, &k_);     \
			if (e_)                                                                   \
				VISIT(&e_->term, vctx);                                           \
		}                                                                                 \
		if (nc_ == 0) {                                                                   \
			MT_TREE_WALK_DFS(t_, w_, ea_, dollar_, VISIT, vctx);                      \
			break;                                                                    \
		}                                                                                 \
		for (unsigned j_ = 0; j_ < nc_; j_++) {                                           \
			struct mt_wcand *c2_ = &cd_[j_];                                          \
			unsigned d_ = c2_->depth;                                                 \
			if (j_ > 0) {                                                             \
				const struct mt_tnode *p_ = cd_[c2_->parent].node;                \
				c2_->node = NULL;                                                 \
				if (!p_)                                                          \
					continue;                                                 \
				bool pl_ = c2_->plus;                                             \
				struct mt_edgekey k_ = {c2_->path, p_,                            \
							pl_ ? NULL : w_.s + w_.off[d_ - 1],       \
							pl_ ? 0 : w_.wlen[d_ - 1], pl_};          \
				c2_->node = MT_HARR_FIND(ea_, k_.hash, mt_tnode_eq, &k_);         \
				if (!c2_->node)                                                   \
					continue;                                                 \
			}                                                                         \
			if (d_ > 0 || !dollar_)                                                   \
				VISIT(&c2_->node->hash, vctx);                                    \
			if (d_ == w_.n && w_.whole)                                               \
				VISIT(&c2_->node->here, vctx);                                    \
		}                                                                                 \
	} while (0)

/* ------------------------------------------------------------------------------------------ */
/*
 * mt_fidx (mt_fidx.c): the plain (non-shared) filters of the global index, built so that a
 * publish costs about one round of DRAM misses. See the design comment of mt_fidx.c; in short:
 *
 *  - Every filter has a 64-bit key that a reader can compute from a topic it matches: an exact
 *    filter's is mt_exact_hash of its text; a wildcard filter's is the sum of one seeded term
 *    per level (its word's, or the level's '+' term), xor MT_FK_HERE or, for "<levels>/#",
 *    MT_FK_HASH.
 *  - The hot tables (struct mt_ftab, one for exact keys, one for wildcard keys) hold the record
 *    readers need inline: (key, core mask) pairs, four to a 64-byte bucket, linear probing over
 *    buckets, plus a blocked Bloom summary per table that stays (mostly) in cache.
 *  - A reader trusts key equality without reading the filter text: the global index is a
 *    routing hint (each worker's mt_local matches exactly), so two filters whose keys collide
 *    (probability ~2^-64 per pair) only send a message to a core that drops it. The writer stays
 *    exact: it keeps one record per distinct filter text (struct mt_frec, writer-only, with the
 *    per-core counts), and the hot mask of a key is the union of the masks of its records.
 *  - Wildcard keys of a topic come from the set of filter *shapes* (struct mt_pnode: the sequence
 *    of word/'+' levels and how the filter ends), a small trie whose read-side form (struct
 *    mt_pview: one program of candidate keys per topic depth, and the trie in preorder) is
 *    rebuilt and republished whenever the set of shapes changes.
 */
#define MT_FK_EMPTY 0ull /* hot entry key: never used */
#define MT_FK_TOMB 1ull	 /* hot entry key: removed */
#define MT_FK_HERE 0x7f4a7c159e3779b9ull /* seals a wildcard filter's path: ends here */
#define MT_FK_HASH 0x94d049bb133111ebull /* seals "<path>/#" */
#define MT_FT_WAYS 4

struct mt_fent {
	uint64_t key;  /* MT_FK_EMPTY, MT_FK_TOMB or a filter key (>= 2) */
	uint64_t mask; /* union of the core masks of the filters with this key */
};

struct mt_fbucket {
	struct mt_fent e[MT_FT_WAYS];
} __attribute__((aligned(64)));

/* One snapshot of a hot table: buckets, then the summary words (one allocation, retired
 * whole through call_rcu when the writer replaces it). */
struct mt_farr {
	uint64_t bmask; /* buckets - 1 (a power of two) */
	uint64_t smask; /* summary words - 1 */
	uint64_t *sum;
	struct mt_fbucket *b;
};

struct mt_ftab {
	struct mt_farr *arr; /* RCU-published (release); readers load with acquire */
	uint64_t live;	     /* writer: keys */
	uint64_t used;	     /* writer: keys + tombstones */
	uint64_t stale;	     /* writer: removals since the summary was last rebuilt */
	unsigned sum_bits;   /* summary bits per entry of capacity */
};

/* Keys 0 and 1 mark empty and removed entries: a computed key has its top bit set (a bit that
 * neither bucket indexes nor the summary use), so it never takes them. */
static inline uint64_t mt_fkey(uint64_t h, uint64_t kmask)
{
	return (h & kmask) | (1ull << 63);
}

/* Summary word of @key and its three bits (from key bits that bucket indexes of tables up to
 * 2^32 buckets leave alone, so that a bucket's keys spread over the summary). */
static inline const uint64_t *mt_farr_sumw(const struct mt_farr *a, uint64_t key)
{
	return &a->sum[(key >> 40) & a->smask];
}

static inline uint64_t mt_farr_sum_bits(uint64_t key)
{
	return (1ull << (key & 63)) | (1ull << ((key >> 6) & 63)) | (1ull << ((key >> 12) & 63));
}

static inline bool mt_farr_maybe(const struct mt_farr *a, uint64_t key)
{
	uint64_t b = mt_farr_sum_bits(key);

	return (MT_LOAD_RLX(mt_farr_sumw(a, key)) & b) == b;
}

/* A bucket is read once per topic that needs it: fetched non-temporally, so that at 1M
 * subscriptions the buckets do not push the summaries out of the cache (bench_match: p50 ~30
 * ns lower, misses ~50). */
static inline void mt_farr_prefetch(const struct mt_farr *a, uint64_t key)
{
	__builtin_prefetch(&a->b[key & a->bmask], 0, 0);
}

/*
 * The mask stored under @key in snapshot @a; *@found says whether the key is there. Reader:
 * an entry's key is loaded (acquire: pairs with the release that published it), then its mask
 * (acquire), then its key again: the writer reuses a removed entry by storing the new mask
 * (release) before the new key, so a mask read between two equal key reads belongs to that key.
 * The writer keeps some entry empty, so the probe ends.
 */
static inline uint64_t mt_farr_get(const struct mt_farr *a, uint64_t key, bool *found)
{
	uint64_t i = key & a->bmask;

	for (;;) {
		const struct mt_fbucket *b = &a->b[i];
		for (unsigned j = 0; j < MT_FT_WAYS; j++) {
			uint64_t k = MT_LOAD_ACQ(&b->e[j].key);
			if (k == key) {
				uint64_t m = MT_LOAD_ACQ(&b->e[j].mask);
				if (MT_LOAD_RLX(&b->e[j].key) == key) {
					*found = true;
					return m;
				}
			} else if (k == MT_FK_EMPTY) {
				*found = false;
				return 0;
			}
		}
		i = (i + 1) & a->bmask;
	}
}

int mt_ftab_init(struct mt_ftab *t, unsigned sum_bits);
void mt_ftab_fini(struct mt_ftab *t);
size_t mt_ftab_bytes(const struct mt_ftab *t);

/* The writer-only record of one distinct filter text. */
struct mt_frec {
	struct mt_hent h; /* the filter's key (mt_fkey) */
	uint64_t mask;	  /* this filter's cores */
	uintptr_t data;	  /* its per-core counts (mt_cores_*) */
	uint32_t len;
	uint32_t pnode : 24; /* wildcard: its shape node */
	uint32_t kind : 8;   /* MT_FR_EXACT, MT_FR_HERE, MT_FR_HASH */
	char text[];
};

enum { MT_FR_EXACT, MT_FR_HERE, MT_FR_HASH };

/* Writer-side shape trie node. Index 0 is the root; child index 0 means none. */
struct mt_pnode {
	uint32_t parent;
	uint32_t child[2]; /* word level, '+' level */
	uint32_t nhere;	   /* wildcard filters of exactly this shape */
	uint32_t nhash;	   /* filters "<this shape>/#" */
	uint8_t depth;
	bool plus;
};

/* Read-side copy of the shape trie, in depth-first preorder (word child before '+' child). */
#define MT_PV_PLUS 1u	  /* the level is '+' (else the topic's word) */
#define MT_PV_HERE 2u	  /* a filter of this shape exists */
#define MT_PV_HASH 4u	  /* a filter "<this shape>/#" exists */
#define MT_PV_NODOLLAR 8u /* starts with '+': never for '$' topics (subtree skipped) */
#define MT_PV_WORDS 16u	  /* no '+' up to here: the path is the topic's own (mt_wtopic.path) */

struct mt_pv {
	uint32_t end; /* index just past this node's subtree */
	uint8_t depth;
	uint8_t flags;
};

/*
 * Shape programs: the view walk, done ahead of time for each topic depth. Program d (1-based)
 * holds, for topics of exactly d levels, only the shapes that can yield a candidate key; the
 * last program, d = nprog = deepest shape + 1, serves every deeper topic (only "/#" shapes can
 * match those). A shape's key sum for a topic is the topic's prefix sum over the shape's depth
 * plus, for each '+' level i, delta(i) = plus_term[i] - term(topic word i). A candidate is thus
 * the sum of two slots of one array (struct mt_pcand): [0, MT_LEVELS_MAX] the topic's prefix
 * sums, MT_PS_DELTA + i the deltas, MT_PS_ZERO a zero, MT_PS_STK + j step j's sum of deltas
 * (struct mt_pstep: only shapes with two '+' or more need steps). '$' topics take the view
 * walk (its NODOLLAR pruning), as do shape sets too big to compile.
 */
#define MT_PS_DELTA (MT_LEVELS_MAX + 1)
#define MT_PS_ZERO (MT_PS_DELTA + MT_LEVELS_MAX)
#define MT_PS_STK (MT_PS_ZERO + 1)
#define MT_PSTEPS_MAX (MT_LEVELS_MAX + 1) /* steps per program (and the view walk's stack) */
#define MT_PS_SLOTS (MT_PS_STK + MT_PSTEPS_MAX)

struct mt_pstep {
	uint16_t x, y; /* slot(MT_PS_STK + j) = slot(x) + slot(y) */
};

struct mt_pcand {
	uint16_t a, b; /* the key sum is slot(a) + slot(b) */
};

struct mt_pprog {
	uint32_t s0, ns; /* steps: step[s0, s0 + ns) */
	uint32_t h0, nh; /* cand[h0, h0 + nh): keys sum ^ MT_FK_HASH ("<shape>/#") */
	uint32_t r0, nr; /* cand[r0, r0 + nr): keys sum ^ MT_FK_HERE; both lists are padded with
			  * (0, MT_PS_ZERO) to a multiple of 4 */
};

struct mt_pview {
	uint32_t n;	 /* nodes (the root included) */
	uint32_t nterms; /* nodes with HERE or HASH: 0 = no wildcard filter */
	uint32_t nprog;	 /* programs, for topics of 1..nprog levels (deeper: the last); 0: none */
	const struct mt_pprog *prog;
	const struct mt_pstep *step;
	const struct mt_pcand *cand;
	struct mt_pv v[];
};

struct mt_fidx {
	struct mt_ftab exact;	/* exact filter keys */
	struct mt_ftab wild;	/* wildcard filter keys */
	struct mt_pview *view;	/* RCU-published */
	struct mt_htab recs;	/* writer: key -> struct mt_frec (text-checked) */
	struct mt_pnode *pn;	/* writer: shape nodes */
	uint32_t npn, cappn;	/* slots used / allocated in pn */
	uint32_t pfree;		/* free list of pn slots (through parent), 0 = none */
	uint32_t nshapes;	/* live shape nodes, root excluded */
	bool view_dirty;	/* the view lags the shapes (a rebuild failed) */
	uint64_t seed;
	uint64_t kmask;	 /* keys are ANDed with this: ~0, or few bits in collision tests */
	uint64_t plus_term[MT_LEVELS_MAX]; /* key term of '+' at each level */
	uint32_t prog_limit;		   /* programs * shapes at most (mt_view_publish) */
	uint64_t nexact; /* records by kind */
	uint64_t nwild;
	struct mt_reclaim *rc;
};

int mt_fidx_init(struct mt_fidx *f, uint64_t seed, struct mt_reclaim *rc);
/* Sets f->prog_limit and republishes the view. Writer. */
int mt_fidx_prog_limit(struct mt_fidx *f, uint32_t limit);
void mt_fidx_fini(struct mt_fidx *f);
/* @filter valid and plain. Same returns as mt_index_add / mt_index_del. Writer. */
int mt_fidx_add(struct mt_fidx *f, const char *filter, size_t len, unsigned core);
int mt_fidx_del(struct mt_fidx *f, const char *filter, size_t len, unsigned core);
/* Union of the masks of the filters matching topic name @topic (valid). Reader. */
uint64_t mt_fidx_match(const struct mt_fidx *f, const char *topic, size_t len);
/* mt_index_walk_stats for the plain filters. */
void mt_fidx_walk_stats(const struct mt_fidx *f, const char *topic, size_t len,
			struct mt_walk_stats *st);

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
	struct mt_fidx plain;  /* plain filters */
	struct mt_tree stree;  /* shared filters: term.data = struct mt_sgroup list (RCU) */
	struct mt_htab groups; /* id -> struct mt_sgroup, for repick */
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

/* SPDX-License-Identifier: MIT */
/*
 * The writer side of mt_htab (see mt_internal.h): an open-addressing table of entry pointers
 * that readers probe without locks while one writer inserts and removes.
 *
 * Invariants: capacity is a power of two; used (live + tombstones) stays <= 3/4 of capacity,
 * so every probe meets an empty slot and ends. An insert fills the first tombstone or empty
 * slot of its probe sequence with one release store (a concurrent reader sees the tombstone or
 * the entry, and keeps probing either way). A remove turns the slot into a tombstone (never
 * into empty, which would cut other keys' probe sequences). When tombstones pile up or the
 * table fills, the writer rehashes into a new array, publishes it, and retires the old one after
 * a grace period; entries never move, only the slots pointing at them.
 *
 * The presence summary (mt_harr_maybe) rides in the same allocation as the slots: an insert sets
 * the key's bits before the release store that publishes the slot; a remove never clears bits
 * (other keys may share them), it counts them as stale instead, and once stale keys outnumber
 * the live ones (the summary then answers "maybe" for absent keys noticeably more often) the
 * writer rehashes, which rebuilds the summary from the live keys only. A rehash reads every
 * live entry's hash (a cache miss each), so it is kept rare: amortised, one per live key
 * removed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <pthread.h>

#include "mt_internal.h"

void mt_die(const char *file, int line, const char *msg)
{
	fprintf(stderr, "match: %s:%d: %s\n", file, line, msg);
	abort();
}

uint64_t mt_random_seed(void)
{
	uint64_t s = 0;

	if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s))
		s = (uint64_t)(uintptr_t)&s ^ MT_P2; /* no entropy yet: ASLR is better than nothing */
	return s | 1;
}

static uint64_t mt_share_seed_val;
static pthread_once_t mt_share_once = PTHREAD_ONCE_INIT;

static void mt_share_seed_init(void)
{
	mt_share_seed_val = mt_random_seed();
}

uint64_t mt_share_seed(void)
{
	pthread_once(&mt_share_once, mt_share_seed_init);
	return mt_share_seed_val;
}

/* Readers probe slot arrays at random: past a few MB, 4 KiB pages cost a TLB miss (a page walk
 * that even a prefetch waits for) per probe. Ask for transparent huge pages on the 2 MiB frames
 * inside big arrays; only a hint (THP off, or memory already touched: nothing happens). */
#define MT_HUGE ((uintptr_t)2 << 20)

static void mt_harr_advise_huge(void *p, size_t bytes)
{
	uintptr_t lo = ((uintptr_t)p + MT_HUGE - 1) & ~(MT_HUGE - 1);
	uintptr_t hi = ((uintptr_t)p + bytes) & ~(MT_HUGE - 1);

	if (hi > lo)
		(void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
}

static struct mt_harr *mt_harr_alloc(uint64_t cap)
{
	uint64_t nsum = mt_harr_sum_words(cap);
	size_t bytes = sizeof(struct mt_harr) + cap * sizeof(uintptr_t) + nsum * sizeof(uint64_t);
	struct mt_harr *a = calloc(1, bytes);

	if (!a)
		return NULL;
	if (bytes >= 2 * MT_HUGE)
		mt_harr_advise_huge(a, bytes);
	a->mask = cap - 1;
	a->smask = nsum - 1;
	return a;
}

/* Adds @h to the summary of @a (writer). A relaxed store: the release store that publishes the
 * slot (or the array) comes after it and orders it for readers. */
static void mt_harr_sum_add(struct mt_harr *a, uint64_t h)
{
	uint64_t *w = &mt_harr_sum(a)[mt_harr_sum_idx(a, h)];

	MT_STORE_RLX(w, *w | mt_harr_sum_bits(h));
}

int mt_htab_init(struct mt_htab *t, uint64_t cap)
{
	uint64_t c = 8;

	while (c < cap)
		c <<= 1;
	t->arr = mt_harr_alloc(c);
	t->live = 0;
	t->used = 0;
	t->stale = 0;
	return t->arr ? 0 : -ENOMEM;
}

void mt_htab_fini(struct mt_htab *t)
{
	free(t->arr);
	t->arr = NULL;
}

size_t mt_htab_bytes(const struct mt_htab *t)
{
	return sizeof(*t->arr) + (t->arr->mask + 1) * sizeof(t->arr->slot[0]) +
	       mt_harr_sum_words(t->arr->mask + 1) * sizeof(uint64_t);
}

static void mt_harr_put(struct mt_harr *a, struct mt_hent *e, bool publish)
{
	uint64_t i = e->hash & a->mask;
	uintptr_t s = (uintptr_t)e | (MT_SLOT_TAG(e->hash) << 48);

	while (a->slot[i] > MT_SLOT_TOMB)
		i = (i + 1) & a->mask;
	mt_harr_sum_add(a, e->hash);
	if (publish)
		MT_STORE_REL(&a->slot[i], s); /* pairs with the acquire load in MT_HTAB_FIND */
	else
		a->slot[i] = s;
}

/* Rebuilds the slot array (and its summary) with @cap slots; publishes it. */
static int mt_htab_rehash(struct mt_htab *t, uint64_t cap, struct mt_reclaim *rc)
{
	struct mt_harr *old = t->arr;
	struct mt_harr *a = mt_harr_alloc(cap);
	if (!a)
		return -ENOMEM;
	for (uint64_t i = 0; i <= old->mask; i++)
		if (old->slot[i] > MT_SLOT_TOMB)
			mt_harr_put(a, MT_SLOT_PTR(old->slot[i]), false);
	/* The new array is complete before readers can reach it (acquire in MT_HTAB_FIND). */
	MT_STORE_REL(&t->arr, a);
	t->used = t->live;
	t->stale = 0;
	mt_reclaim_put(rc, old);
	return 0;
}

/* The capacity that holds @live entries at <= 3/8 load (room to grow and to shrink again). */
static uint64_t mt_htab_cap_for(uint64_t live)
{
	uint64_t cap = 8;

	while (cap * 3 < live * 8)
		cap <<= 1;
	return cap;
}

int mt_htab_insert(struct mt_htab *t, struct mt_hent *e, struct mt_reclaim *rc)
{
	if ((uintptr_t)e >> 48)
		MT_DIE("pointer does not fit in 48 bits");
	if ((t->used + 1) * 4 > (t->arr->mask + 1) * 3) {
		/* Full of live entries: double (load 3/8 after). Of tombstones: what live needs. */
		uint64_t cap = mt_htab_cap_for(t->live + 1), cur = t->arr->mask + 1;
		int ret = mt_htab_rehash(t, cap > cur ? cur * 2 : cap, rc);
		if (ret < 0)
			return ret;
	}
	/* Reusing a tombstone keeps used unchanged. */
	struct mt_harr *a = t->arr;
	uint64_t i = e->hash & a->mask;
	while (a->slot[i] > MT_SLOT_TOMB)
		i = (i + 1) & a->mask;
	if (a->slot[i] == MT_SLOT_EMPTY)
		t->used++;
	mt_harr_sum_add(a, e->hash); /* before the publication below */
	MT_STORE_REL(&a->slot[i], (uintptr_t)e | (MT_SLOT_TAG(e->hash) << 48));
	MT_STORE_RLX(&t->live, t->live + 1);
	return 0;
}

void mt_htab_remove(struct mt_htab *t, struct mt_hent *e, struct mt_reclaim *rc)
{
	struct mt_harr *a = t->arr;
	uint64_t i = e->hash & a->mask;

	for (;;) {
		uintptr_t s = a->slot[i];
		if (s == MT_SLOT_EMPTY)
			MT_DIE("removing an entry that is not in the table");
		if (s > MT_SLOT_TOMB && MT_SLOT_PTR(s) == (void *)e)
			break;
		i = (i + 1) & a->mask;
	}
	MT_STORE_REL(&a->slot[i], MT_SLOT_TOMB);
	MT_STORE_RLX(&t->live, t->live - 1);
	t->stale++;
	/* Shrink when sparse, rebuild the summary when stale; a failure is harmless (the table
	 * just stays big, the summary says "maybe" more often). */
	if (a->mask + 1 > 64 && t->live * 16 < a->mask + 1)
		(void)mt_htab_rehash(t, mt_htab_cap_for(t->live), rc);
	else if (t->stale > t->live + 64)
		(void)mt_htab_rehash(t, a->mask + 1, rc);
}

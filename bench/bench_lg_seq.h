/* SPDX-License-Identifier: MIT */
/*
 * Load generator: per-publisher sequence tracking at the receivers.
 *
 * Every payload carries (publisher id, sequence number, send time). A receiver keeps one
 * struct lg_seq per publisher it expects to hear from, and classifies each arrival:
 *   - seq == next: in order;
 *   - seq >  next: a gap opens (those messages may still arrive late);
 *   - seq <  next, not seen before and within the window: a reordering (a late arrival);
 *   - seq <  next, already seen: a duplicate;
 *   - seq older than the window (LG_SEQ_WINDOW messages): "stale", counted apart because
 *     whether it is a duplicate can no longer be told.
 * The window is a ring of bits indexed by seq mod LG_SEQ_WINDOW holding "seen" for the
 * sequences (next - LG_SEQ_WINDOW, next); advancing next clears the bits it uncovers, so an
 * in-order arrival costs O(1).
 * Losses are counted at the end, when the publisher's final count is known:
 * lost = sent - (received - dups - stale), which also catches messages missing at the tail.
 *
 * Shared subscriptions deliver each message to one member of a group, so no single receiver
 * sees a publisher's whole sequence. struct lg_seq_shared is one bitmap per publisher over all
 * its sequence numbers, set atomically by whichever receiver gets the message: duplicates are
 * exact, reorderings are not tracked.
 *
 * Threading: struct lg_seq belongs to the receiver's thread. struct lg_seq_shared is updated
 * by any receiver thread (atomic fetch_or / fetch_add, relaxed: the totals are read only after
 * the threads are joined, which orders them).
 */
#ifndef BENCH_LG_SEQ_H
#define BENCH_LG_SEQ_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define LG_SEQ_WINDOW 1024u

struct lg_seq {
	uint64_t next;	   /* the sequence expected next: highest seen + 1 */
	uint64_t received; /* every arrival, duplicates included */
	uint64_t dups;
	uint64_t reorders;
	uint64_t stale;
	uint64_t seen[LG_SEQ_WINDOW / 64];
};

/* The outcome of one arrival. */
enum lg_seq_kind {
	LG_SEQ_IN_ORDER = 0,
	LG_SEQ_GAP = 1,
	LG_SEQ_REORDER = 2,
	LG_SEQ_DUP = 3,
	LG_SEQ_STALE = 4,
};

/* Records seq arriving; returns its enum lg_seq_kind. */
static inline int lg_seq_record(struct lg_seq *s, uint64_t seq)
{
	s->received++;
	if (seq >= s->next) {
		int kind = seq == s->next ? LG_SEQ_IN_ORDER : LG_SEQ_GAP;
		uint64_t from = s->next;
		if (seq - from >= LG_SEQ_WINDOW) {
			for (unsigned i = 0; i < LG_SEQ_WINDOW / 64; i++)
				s->seen[i] = 0;
		} else {
			for (uint64_t k = from; k < seq; k++)
				s->seen[(k % LG_SEQ_WINDOW) / 64] &= ~(UINT64_C(1) << (k % 64));
		}
		s->seen[(seq % LG_SEQ_WINDOW) / 64] |= UINT64_C(1) << (seq % 64);
		s->next = seq + 1;
		return kind;
	}
	if (s->next - seq > LG_SEQ_WINDOW - 1) {
		s->stale++;
		return LG_SEQ_STALE;
	}
	uint64_t *w = &s->seen[(seq % LG_SEQ_WINDOW) / 64];
	uint64_t bit = UINT64_C(1) << (seq % 64);
	if (*w & bit) {
		s->dups++;
		return LG_SEQ_DUP;
	}
	*w |= bit;
	s->reorders++;
	return LG_SEQ_REORDER;
}

/* Distinct messages received. */
static inline uint64_t lg_seq_unique(const struct lg_seq *s)
{
	return s->received - s->dups - s->stale;
}

struct lg_seq_shared {
	uint64_t cap; /* sequence numbers 0..cap-1 are tracked */
	_Atomic uint64_t received;
	_Atomic uint64_t dups;
	_Atomic uint64_t *bits;
};

/* Allocates the bitmap for sequences [0, cap); 0 or -ENOMEM. */
int lg_seq_shared_init(struct lg_seq_shared *s, uint64_t cap);
void lg_seq_shared_fini(struct lg_seq_shared *s);

/*
 * Records seq; returns LG_SEQ_IN_ORDER for a first arrival, LG_SEQ_DUP for a repeat, or -1 if
 * seq is outside [0, cap) (which the sender never produces: a protocol error).
 */
static inline int lg_seq_shared_record(struct lg_seq_shared *s, uint64_t seq)
{
	if (seq >= s->cap)
		return -1;
	atomic_fetch_add_explicit(&s->received, 1, memory_order_relaxed);
	uint64_t bit = UINT64_C(1) << (seq % 64);
	uint64_t old = atomic_fetch_or_explicit(&s->bits[seq / 64], bit, memory_order_relaxed);
	if (old & bit) {
		atomic_fetch_add_explicit(&s->dups, 1, memory_order_relaxed);
		return LG_SEQ_DUP;
	}
	return LG_SEQ_IN_ORDER;
}

#endif /* BENCH_LG_SEQ_H */

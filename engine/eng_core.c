/* SPDX-License-Identifier: MIT */
/*
 * Cross-core sending: every pair of cores (workers and the control thread) has one SPSC ring
 * per direction. A producer pushes; if the ring is full, the item is either dropped (QoS 0
 * publishes, counted) or parked on the producer's own overflow list for that destination and
 * retried first at the producer's next flush, so order between a pair is kept.
 *
 * Wakeups (a Dekker pair, no lost wakeup, no syscall when the consumer is busy):
 *   consumer, before blocking:  sleeping = 1; fence(seq_cst); check rings; poll(timeout)
 *   producer, after pushing:    fence(seq_cst); if (sleeping) wake
 * The fences pair with each other: either the consumer's ring check sees the item, or the
 * producer sees sleeping == 1 and wakes it. The producer batches: one fence per flush, not
 * per item.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "eng_internal.h"

uint64_t eng_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t eng_hash(const void *p, size_t len)
{
	const uint8_t *s = p;
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (size_t i = 0; i < len; i++) {
		h ^= s[i];
		h *= 1099511628211ull;
	}
	return h ^ (h >> 29);
}

static void mark_dirty(struct eng_src *s, unsigned dst, unsigned nworkers)
{
	if (dst == nworkers)
		s->dirty_ctl = true;
	else
		s->dirty |= UINT64_C(1) << dst;
}

int eng_post(struct tachyon *e, unsigned src, unsigned dst, const struct eng_ritem *in,
	     bool may_drop)
{
	struct eng_src *s = &e->srcs[src];
	struct eng_outq *q = &s->outq[dst];
	struct eng_ritem it = *in;
	struct eng_overflow *o;

	it.src = (uint16_t)src;
	if (!q->head && eng_ring_push(eng_ring_of(e, src, dst), &it) == 0) {
		mark_dirty(s, dst, e->nworkers);
		return 0;
	}
	if (may_drop)
		return -ENOBUFS;
	/* parked: not on the data path's fast side, the ring is full (or items wait before it) */
	o = malloc(sizeof(*o));
	if (!o)
		ENG_DIE("out of memory parking a cross-core item");
	o->next = NULL;
	o->it = it;
	if (q->tail)
		q->tail->next = o;
	else
		q->head = o;
	q->tail = o;
	q->count++;
	s->parked++;
	mark_dirty(s, dst, e->nworkers);
	if (src < e->nworkers)
		ENG_STAT_INC(&e->workers[src]->stats, ring_overflow);
	return 0;
}

void eng_wake_dst(struct tachyon *e, unsigned dst)
{
	if (dst == e->nworkers) {
		/* relaxed: ordered by the seq_cst fence in eng_post_flush() */
		if (atomic_load_explicit(&e->ctl_sleeping, memory_order_relaxed)) {
			uint64_t one = 1;
			if (write(e->ctl_evfd, &one, sizeof(one)) < 0) {
				/* eventfd full: the control thread is awake anyway */
			}
		}
		return;
	}
	struct eng_worker *w = e->workers[dst];
	/* relaxed: ordered by the seq_cst fence in eng_post_flush() */
	if (atomic_load_explicit(&w->sleeping, memory_order_relaxed))
		ns_wake(w->nsw);
}

void eng_post_flush(struct tachyon *e, unsigned src)
{
	struct eng_src *s = &e->srcs[src];

	if (s->parked) {
		for (unsigned dst = 0; dst <= e->nworkers; dst++) {
			struct eng_outq *q = &s->outq[dst];
			while (q->head &&
			       eng_ring_push(eng_ring_of(e, src, dst), &q->head->it) == 0) {
				struct eng_overflow *o = q->head;
				q->head = o->next;
				if (!q->head)
					q->tail = NULL;
				q->count--;
				s->parked--;
				free(o);
				mark_dirty(s, dst, e->nworkers);
			}
		}
	}
	if (!s->dirty && !s->dirty_ctl)
		return;
	/* seq_cst: pairs with the consumer's fence between "sleeping = 1" and its ring check */
	atomic_thread_fence(memory_order_seq_cst);
	uint64_t d = s->dirty;
	while (d) {
		unsigned dst = (unsigned)__builtin_ctzll(d);
		d &= d - 1;
		eng_wake_dst(e, dst);
	}
	if (s->dirty_ctl)
		eng_wake_dst(e, e->nworkers);
	s->dirty = 0;
	s->dirty_ctl = false;
}

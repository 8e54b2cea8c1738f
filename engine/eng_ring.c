/* SPDX-License-Identifier: MIT */
/*
 * The SPSC ring (see eng_ring.h). Indices run freely over uint32_t and are masked on use, so
 * tail - head is the fill level even across wrap-around.
 *
 * Memory ordering: the producer writes a slot, then publishes it with a release store of
 * tail; the consumer's acquire load of tail makes the slot's bytes visible. Symmetrically the
 * consumer reads a slot, then frees it with a release store of head; the producer's acquire
 * load of head guarantees the consumer is done with the slot before it is overwritten.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "eng_ring.h"

struct eng_ring *eng_ring_create(uint32_t size)
{
	struct eng_ring *r;
	size_t bytes;

	if (size < 2 || (size & (size - 1)))
		return NULL;
	bytes = sizeof(*r) + (size_t)size * sizeof(struct eng_ritem);
	bytes = (bytes + ENG_CACHE_LINE - 1) & ~(size_t)(ENG_CACHE_LINE - 1);
	r = aligned_alloc(ENG_CACHE_LINE, bytes);
	if (!r)
		return NULL;
	memset(r, 0, sizeof(*r));
	r->mask = size - 1;
	return r;
}

void eng_ring_free(struct eng_ring *r)
{
	free(r);
}

int eng_ring_push(struct eng_ring *r, const struct eng_ritem *it)
{
	/* relaxed: tail is only written by this thread */
	uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);

	if (tail - r->head_cache > r->mask) {
		/* acquire: pairs with the consumer's release store of head in eng_ring_pop() */
		r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
		if (tail - r->head_cache > r->mask)
			return -ENOBUFS;
	}
	r->slots[tail & r->mask] = *it;
	/* release: pairs with the consumer's acquire load of tail in eng_ring_pop/empty() */
	atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
	return 0;
}

unsigned eng_ring_pop(struct eng_ring *r, struct eng_ritem *out, unsigned max)
{
	/* relaxed: head is only written by this thread */
	uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	unsigned n;

	if (r->tail_cache == head) {
		/* acquire: pairs with the producer's release store of tail in eng_ring_push() */
		r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
		if (r->tail_cache == head)
			return 0;
	}
	n = r->tail_cache - head;
	if (n > max)
		n = max;
	for (unsigned i = 0; i < n; i++)
		out[i] = r->slots[(head + i) & r->mask];
	/* release: pairs with the producer's acquire load of head in eng_ring_push() */
	atomic_store_explicit(&r->head, head + n, memory_order_release);
	return n;
}

bool eng_ring_empty(struct eng_ring *r)
{
	uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);

	if (r->tail_cache != head)
		return false;
	/* acquire: pairs with the producer's release store of tail in eng_ring_push() */
	r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
	return r->tail_cache == head;
}

/* SPDX-License-Identifier: MIT */
/*
 * Load generator: allocation of the shared-subscription sequence bitmaps (the per-arrival
 * logic is inline in bench_lg_seq.h).
 */
#include <errno.h>
#include <stdlib.h>

#include "bench_lg_seq.h"

int lg_seq_shared_init(struct lg_seq_shared *s, uint64_t cap)
{
	s->cap = cap;
	atomic_init(&s->received, 0);
	atomic_init(&s->dups, 0);
	s->bits = calloc((size_t)(cap + 63) / 64, sizeof(*s->bits));
	return s->bits ? 0 : -ENOMEM;
}

void lg_seq_shared_fini(struct lg_seq_shared *s)
{
	free(s->bits);
	s->bits = NULL;
}

/* SPDX-License-Identifier: MIT */
/*
 * Load generator: the log-linear latency histogram (see bench_lg_hist.h for the layout).
 */
#include <string.h>

#include "bench_lg_hist.h"

void lg_hist_init(struct lg_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

void lg_hist_merge(struct lg_hist *dst, const struct lg_hist *src)
{
	if (!src->count)
		return;
	for (unsigned i = 0; i < LG_HIST_BUCKETS; i++)
		dst->bucket[i] += src->bucket[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

/* Highest value that maps to bucket i. */
static uint64_t bucket_high(unsigned i)
{
	if (i < (1u << LG_HIST_SUB_BITS))
		return i;
	unsigned j = i - (1u << LG_HIST_SUB_BITS);
	unsigned shift = j / LG_HIST_HALF + 1;
	uint64_t sub = LG_HIST_HALF + j % LG_HIST_HALF;
	return ((sub + 1) << shift) - 1;
}

uint64_t lg_hist_percentile(const struct lg_hist *h, double pct)
{
	if (!h->count)
		return 0;
	if (pct >= 100.0)
		return h->max;
	/* The rank of the value asked for, 1-based, rounded up: p99 of 1000 values is the 990th. */
	double want = pct / 100.0 * (double)h->count;
	uint64_t rank = (uint64_t)want;
	if ((double)rank < want)
		rank++;
	if (rank == 0)
		rank = 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < LG_HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= rank) {
			uint64_t v = bucket_high(i);
			if (v > h->max)
				v = h->max;
			if (v < h->min)
				v = h->min;
			return v;
		}
	}
	return h->max;
}

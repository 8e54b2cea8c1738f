/* SPDX-License-Identifier: MIT */
/*
 * Load generator: a log-linear latency histogram in the manner of HdrHistogram.
 *
 * Values (nanoseconds) below 2^LG_HIST_SUB_BITS are counted exactly; above, each power-of-two
 * range is split into 2^(LG_HIST_SUB_BITS - 1) equal sub-buckets, so every recorded value is
 * known to within 1 / 2^(LG_HIST_SUB_BITS - 1) (0.8 %) of itself. Values up to 2^40 ns (about
 * 18 minutes) are representable; larger ones land in the last bucket and still count in max.
 * Percentiles report the highest value equivalent to the bucket (as HdrHistogram does), capped
 * at the exact maximum, so a reported p99 is never below the true p99.
 *
 * Threading: a histogram belongs to one thread while it records; merge them after the threads
 * have been joined.
 */
#ifndef BENCH_LG_HIST_H
#define BENCH_LG_HIST_H

#include <stdint.h>

#define LG_HIST_SUB_BITS 8u
#define LG_HIST_MAX_BITS 40u
#define LG_HIST_HALF (1u << (LG_HIST_SUB_BITS - 1))
#define LG_HIST_BUCKETS \
	((1u << LG_HIST_SUB_BITS) + (LG_HIST_MAX_BITS - LG_HIST_SUB_BITS) * LG_HIST_HALF)

struct lg_hist {
	uint64_t count;
	uint64_t min;
	uint64_t max;
	uint64_t sum; /* for the mean; wraps only after ~584 years of summed latency */
	uint64_t bucket[LG_HIST_BUCKETS];
};

/* Empties h. */
void lg_hist_init(struct lg_hist *h);

/* Adds src's counts to dst. */
void lg_hist_merge(struct lg_hist *dst, const struct lg_hist *src);

/*
 * The value at percentile pct (0..100] of the recorded values, as the highest value equivalent
 * to its bucket, capped at the maximum; 0 when nothing was recorded.
 */
uint64_t lg_hist_percentile(const struct lg_hist *h, double pct);

/* ---- hot inline helpers ---- */

static inline unsigned lg_hist_index(uint64_t v)
{
	if (v < (1u << LG_HIST_SUB_BITS))
		return (unsigned)v;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v);
	unsigned shift = msb - (LG_HIST_SUB_BITS - 1);
	if (shift > LG_HIST_MAX_BITS - LG_HIST_SUB_BITS)
		return LG_HIST_BUCKETS - 1;
	/* v >> shift lies in [HALF, 2 * HALF) */
	return (1u << LG_HIST_SUB_BITS) + (shift - 1) * LG_HIST_HALF +
	       (unsigned)((v >> shift) - LG_HIST_HALF);
}

static inline void lg_hist_record(struct lg_hist *h, uint64_t v)
{
	h->bucket[lg_hist_index(v)]++;
	h->count++;
	h->sum += v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

#endif /* BENCH_LG_HIST_H */

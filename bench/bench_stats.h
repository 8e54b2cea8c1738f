/* SPDX-License-Identifier: MIT */
/*
 * The micro-benchmarks' (bench_codec, bench_ring) shared arithmetic over a set of timed runs:
 * the median, which is what they report, since on a shared machine the mean follows the
 * worst interruptions.
 */
#ifndef BENCH_STATS_H
#define BENCH_STATS_H

#include <stdlib.h>

static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The median of v[0..n), n >= 1. Sorts v in place: afterwards v[0] is the lowest. */
static inline double bench_median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), bench_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#endif /* BENCH_STATS_H */

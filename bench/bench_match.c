/* SPDX-License-Identifier: MIT */
/*
 * bench_match: speed and memory of match/, reported (never asserted), side by side with an
 * in-tree Mosquitto-style baseline (bench_match_baseline.c) measured in the same run.
 *
 *   bench_match [--subs N] [--topics N] [--reps N] [--cores N] [--retained N] [--seconds S]
 *               [--mix E,W,M] [--no-baseline] [--no-churn]
 *
 * Workload: N subscriptions (80% exact, 20% wildcard), 5-8 levels, words from a per-level
 * vocabulary; each on a random core. A wildcard filter keeps at least three literal levels
 * (like "site/+/dev/temp" or "site/bldg/floor/#"): filters such as "dev3/+/#" would match a
 * sixteenth of all topics each and leave no topic unmatched. Publish topics, in random order,
 * by the --mix percentages (default 40,30,30):
 *   E: a subscribed exact filter's topic (it may match wildcard filters too);
 *   W: a topic built from a random wildcard filter ('+' -> a word of that level, '#' -> 0-2
 *      more levels): it matches that filter, rarely an exact one;
 *   M: a fresh random topic of the same shape that matches nothing (drawn until the index
 *      under test returns 0; the baseline must agree, as for every topic).
 * Figures:
 *  0. the machine's memory latency now (a pointer chase): the floor of a topic that needs a
 *     DRAM line, and the VM's moves between runs;
 *  1. match latency p50/p99 per call (clock_gettime around each call, minus the measured
 *     timer overhead) and mean (a timed loop without per-call timers), median of --reps runs,
 *     overall and p50 per publish class; both sides get the same topics and must return the
 *     same core mask for every topic (checked: count and checksum);
 *  2. memory per subscription: glibc mallinfo2() in-use bytes before/after building, heap
 *     (uordblks) plus mmap'd chunks (hblkhd: big hash arrays live there), after waiting for
 *     deferred frees (so this binary uses glibc malloc, not jemalloc), plus the bytes the index
 *     maps itself for its node arena (mt_index_stats.arena_bytes: mallinfo2 cannot see them);
 *     the process's AnonHugePages says whether the huge-page advice took;
 *     then, per publish class, what the presence summaries did (mt_index_walk_stats): keys
 *     checked, let through, present, and the false-positive rate;
 *  3. writer churn: subscribe+unsubscribe per second while one reader thread matches flat out,
 *     and that reader's p99 during churn against its idle p99;
 *  4. retained: time per returned match of "#"-ish filters over --retained topics.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "bench_match_baseline.h"
#include "match.h"

struct opts {
	unsigned subs, topics, reps, cores, retained;
	unsigned mix[3]; /* percent of exact-hit, wildcard-hit, miss topics */
	double seconds;
	bool baseline, churn;
};

enum { CL_EXACT, CL_WILD, CL_MISS, CL_N };
static const char *const cl_name[CL_N] = {"exact hit", "wildcard hit", "miss"};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545f4914f6cdd1dull;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Strings live in one arena: (offset, length) pairs. */
struct strs {
	char *buf;
	size_t len, cap;
	uint32_t *off, *slen;
	size_t n, ncap;
};

static void strs_push(struct strs *s, const char *p, size_t len)
{
	if (s->len + len > s->cap) {
		s->cap = (s->cap + len) * 2;
		s->buf = realloc(s->buf, s->cap);
	}
	if (s->n == s->ncap) {
		s->ncap = s->ncap ? s->ncap * 2 : 1024;
		s->off = realloc(s->off, s->ncap * sizeof(*s->off));
		s->slen = realloc(s->slen, s->ncap * sizeof(*s->slen));
	}
	if (!s->buf || !s->off || !s->slen) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	memcpy(s->buf + s->len, p, len);
	s->off[s->n] = (uint32_t)s->len;
	s->slen[s->n] = (uint32_t)len;
	s->len += len;
	s->n++;
}

static void strs_free(struct strs *s)
{
	free(s->buf);
	free(s->off);
	free(s->slen);
	memset(s, 0, sizeof(*s));
}

#define STR(s, i) ((s)->buf + (s)->off[i])

/* A random word of level @i: level 0 from 16 words, deeper levels from 64 * (level + 1). */
static size_t gen_word(char *out, unsigned i)
{
	unsigned vocab = i == 0 ? 16 : 64 * (i + 1);
	return (size_t)sprintf(out, "%s%u", i == 0 ? "dev" : "w", (unsigned)(rnd() % vocab));
}

/* A topic of 5-8 levels. */
static size_t gen_topic(char *out, unsigned *nlevels)
{
	unsigned n = 5 + (unsigned)(rnd() % 4);
	size_t len = 0;
	for (unsigned i = 0; i < n; i++) {
		if (i)
			out[len++] = '/';
		len += gen_word(out + len, i);
	}
	*nlevels = n;
	return len;
}

/* A topic name matched by wildcard filter @f: '+' -> a word of its level, '#' -> 0-2 levels. */
static size_t gen_from_filter(char *out, const char *f, size_t flen)
{
	size_t len = 0;
	unsigned lvl = 0;
	for (size_t k = 0; k < flen; k++) {
		if (f[k] == '/') {
			lvl++;
			out[len++] = '/';
		} else if (f[k] == '+') {
			len += gen_word(out + len, lvl);
		} else if (f[k] == '#') {
			len--; /* "a/#" matches "a" itself */
			for (unsigned x = (unsigned)(rnd() % 3); x > 0; x--, lvl++) {
				out[len++] = '/';
				len += gen_word(out + len, lvl);
			}
		} else {
			out[len++] = f[k];
		}
	}
	return len;
}

/* 80% exact topics; 20% wildcard: one '+' (60%), a '#' tail (30%) or both (10%), with at least
 * three literal levels (so '#' cuts after level 3, or 4 with a '+'). */
static void gen_subs(struct strs *subs, struct strs *exact, struct strs *wild, unsigned n)
{
	char t[256], f[256];
	for (unsigned i = 0; i < n; i++) {
		unsigned nl;
		size_t len = gen_topic(t, &nl);
		if (rnd() % 100 < 80) {
			strs_push(subs, t, len);
			strs_push(exact, t, len);
			continue;
		}
		unsigned kind = (unsigned)(rnd() % 10);
		bool use_plus = kind < 6 || kind == 9, use_hash = kind >= 6;
		unsigned lo = use_plus ? 4 : 3; /* cut in [lo, nl - 1]; nl >= 5 */
		unsigned cut = use_hash ? lo + (unsigned)(rnd() % (nl - lo)) : nl;
		unsigned plus = 1 + (unsigned)(rnd() % (cut - 1)); /* never level 0 */
		size_t fl = 0;
		unsigned lvl = 0;
		for (size_t k = 0; k < len; k++) {
			if (t[k] == '/') {
				if (++lvl == cut)
					break;
				f[fl++] = '/';
				continue;
			}
			if (use_plus && lvl == plus) {
				if (f[fl - 1] == '/')
					f[fl++] = '+';
				continue;
			}
			f[fl++] = t[k];
		}
		if (use_hash) {
			f[fl++] = '/';
			f[fl++] = '#';
		}
		strs_push(subs, f, fl);
		if (wild)
			strs_push(wild, f, fl);
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t pct(uint64_t *v, size_t n, double p)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_u64);
	return v[(size_t)(p * (double)(n - 1))];
}

static double median(double *v, unsigned n)
{
	for (unsigned i = 1; i < n; i++)
		for (unsigned j = i; j > 0 && v[j] < v[j - 1]; j--) {
			double x = v[j];
			v[j] = v[j - 1];
			v[j - 1] = x;
		}
	return v[n / 2];
}

/* Latency of one dependent load from memory on this machine now: a random single-cycle chase
 * (Sattolo) over 256 MiB on 2 MiB pages, as the index's tables ask for. The VM's memory
 * latency moves between runs, and a topic whose answer is in one DRAM line (an exact hit at
 * 1M subscriptions) cannot beat it. Mapped directly, so malloc's statistics do not see it. */
static double dram_latency_ns(void)
{
	size_t bytes = (size_t)256 << 20, n = bytes / 64;
	char *a = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED)
		return 0;
	(void)madvise(a, bytes, MADV_HUGEPAGE);
	uint64_t r = 0x2545f4914f6cdd1dull; /* its own generator: the workload's stays as it was */
	for (size_t i = 0; i < n; i++)
		*(uint64_t *)(void *)(a + 64 * i) = i;
	for (size_t i = n - 1; i > 0; i--) {
		r ^= r << 13;
		r ^= r >> 7;
		r ^= r << 17;
		size_t j = (size_t)(r % i);
		uint64_t *x = (uint64_t *)(void *)(a + 64 * i), *y = (uint64_t *)(void *)(a + 64 * j);
		uint64_t t = *x;
		*x = *y;
		*y = t;
	}
	uint64_t x = 0, steps = 2000000, t0 = now_ns();
	for (uint64_t k = 0; k < steps; k++)
		x = *(volatile uint64_t *)(void *)(a + 64 * x);
	double ns = (double)(now_ns() - t0) / (double)steps;
	munmap(a, bytes);
	return ns;
}

static uint64_t timer_overhead(void)
{
	uint64_t v[10001];
	for (int i = 0; i < 10001; i++) {
		uint64_t a = now_ns();
		v[i] = now_ns() - a;
	}
	return pct(v, 10001, 0.5);
}

struct lat {
	double p50, p99, mean;
	double cl50[CL_N]; /* p50 per publish class */
	uint64_t matched;
	uint64_t sum; /* order-dependent checksum of the returned masks */
};

/* AnonHugePages of the process (kB), to see whether the huge-page advice took; -1 if unknown. */
static long anon_huge_kb(void)
{
	FILE *f = fopen("/proc/self/smaps_rollup", "r");
	char line[256];
	long kb = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "AnonHugePages:", 14))
			kb = strtol(line + 14, NULL, 10);
	fclose(f);
	return kb;
}

static size_t mem_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
}

typedef uint64_t match_fn(void *ctx, const char *t, size_t len);

static uint64_t mt_match_cb(void *ctx, const char *t, size_t len)
{
	return mt_index_match(ctx, t, len);
}

static uint64_t bl_match_cb(void *ctx, const char *t, size_t len)
{
	return bl_match(ctx, t, len);
}

static struct lat measure(match_fn *fn, void *ctx, const struct strs *topics,
			  const uint8_t *cls, uint64_t overhead)
{
	size_t n = topics->n;
	uint64_t *v = malloc(n * sizeof(*v)), *c = malloc(n * sizeof(*c));
	uint64_t matched = 0, sink = 0, sum = 0;
	struct lat l;

	for (size_t i = 0; i < n; i++) {
		uint64_t a = now_ns();
		uint64_t m = fn(ctx, STR(topics, i), topics->slen[i]);
		uint64_t d = now_ns() - a;
		v[i] = d > overhead ? d - overhead : 0;
		matched += m != 0;
		sum = sum * 0x100000001b3ull + m;
	}
	uint64_t a = now_ns();
	for (size_t i = 0; i < n; i++)
		sink += fn(ctx, STR(topics, i), topics->slen[i]);
	l.mean = (double)(now_ns() - a) / (double)n;
	for (unsigned k = 0; k < CL_N; k++) {
		size_t nc = 0;
		for (size_t i = 0; i < n; i++)
			if (cls[i] == k)
				c[nc++] = v[i];
		l.cl50[k] = (double)pct(c, nc, 0.50);
	}
	l.p50 = (double)pct(v, n, 0.50);
	l.p99 = (double)pct(v, n, 0.99);
	l.matched = matched + (sink & 0); /* keep sink alive */
	l.sum = sum;
	free(v);
	free(c);
	return l;
}

/* ------------------------------------------------------------------------------------------ */
/* Churn: one reader thread matches flat out while the writer subscribes/unsubscribes. */

struct reader_arg {
	struct mt_index *idx;
	const struct strs *topics;
	volatile int phase; /* 0 idle-measure, 1 churn-measure, 2 stop */
	uint64_t overhead;
	uint64_t *lat[2];
	size_t nlat[2], cap;
};

static void *reader_main(void *p)
{
	struct reader_arg *a = p;
	size_t i = 0;

	mt_rcu_register_thread();
	for (;;) {
		int ph = __atomic_load_n(&a->phase, __ATOMIC_ACQUIRE);
		if (ph >= 2)
			break;
		size_t k = i++ % a->topics->n;
		uint64_t t0 = now_ns();
		uint64_t m = mt_index_match(a->idx, STR(a->topics, k), a->topics->slen[k]);
		uint64_t d = now_ns() - t0;
		(void)m;
		if (a->nlat[ph] < a->cap)
			a->lat[ph][a->nlat[ph]++] = d > a->overhead ? d - a->overhead : 0;
		mt_rcu_quiescent();
	}
	mt_rcu_unregister_thread();
	return NULL;
}

static void sleep_s(double s)
{
	struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
	nanosleep(&ts, NULL);
}

static void churn(struct mt_index *idx, const struct strs *topics, const struct opts *o,
		  uint64_t overhead)
{
	struct reader_arg a = {.idx = idx, .topics = topics, .overhead = overhead, .cap = 50000000};
	a.lat[0] = malloc(a.cap * sizeof(uint64_t));
	a.lat[1] = malloc(a.cap * sizeof(uint64_t));
	pthread_t th;
	pthread_create(&th, NULL, reader_main, &a);
	sleep_s(o->seconds);

	/* Churn filters: fresh wildcard and exact filters, added then removed in batches. */
	struct strs cf = {0}, ce = {0};
	gen_subs(&cf, &ce, NULL, 100000);
	__atomic_store_n(&a.phase, 1, __ATOMIC_RELEASE);
	uint64_t ops = 0, t0 = now_ns(), dl = t0 + (uint64_t)(o->seconds * 1e9);
	while (now_ns() < dl) {
		size_t added = 0;
		while (added < cf.n) {
			mt_index_add(idx, STR(&cf, added), cf.slen[added],
				     (unsigned)(added % o->cores));
			added++;
			ops++;
			if ((added & 1023) == 0 && now_ns() >= dl)
				break;
		}
		/* Only what was added: timing deletes that fail would understate the rate. */
		for (size_t i = 0; i < added; i++) {
			if (mt_index_del(idx, STR(&cf, i), cf.slen[i], (unsigned)(i % o->cores)) == 0)
				ops++;
		}
	}
	double secs = (double)(now_ns() - t0) / 1e9;
	__atomic_store_n(&a.phase, 2, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	uint64_t idle99 = pct(a.lat[0], a.nlat[0], 0.99), churn99 = pct(a.lat[1], a.nlat[1], 0.99);
	printf("\nwriter churn (1 reader matching flat out, %.1f s each phase)\n", o->seconds);
	printf("  subscribe+unsubscribe ops/s  %12.0f\n", (double)ops / secs);
	printf("  reader p50 idle / churn      %9llu ns / %llu ns\n",
	       (unsigned long long)pct(a.lat[0], a.nlat[0], 0.5),
	       (unsigned long long)pct(a.lat[1], a.nlat[1], 0.5));
	printf("  reader p99 idle / churn      %9llu ns / %llu ns  (ratio %.2f)\n",
	       (unsigned long long)idle99, (unsigned long long)churn99,
	       idle99 ? (double)churn99 / (double)idle99 : 0.0);
	printf("  reader matches idle / churn  %9zu / %zu\n", a.nlat[0], a.nlat[1]);
	free(a.lat[0]);
	free(a.lat[1]);
	strs_free(&cf);
	strs_free(&ce);
}

/* ------------------------------------------------------------------------------------------ */

static int count_visit(void *ctx, const char *t, size_t len, void *msg, size_t bytes)
{
	(void)t;
	(void)len;
	(void)msg;
	(void)bytes;
	(*(uint64_t *)ctx)++;
	return 0;
}

static void retained(const struct opts *o)
{
	struct mt_config cfg;
	mt_config_defaults(&cfg);
	cfg.retain_max_count = o->retained + 1;
	char t[256];
	static int msg;

	size_t m0 = mem_in_use();
	struct mt_retain *r = mt_retain_create(&cfg, NULL, NULL);
	for (unsigned i = 0; i < o->retained; i++) {
		unsigned nl;
		size_t len = gen_topic(t, &nl);
		mt_retain_set(r, t, len, &msg, 100);
	}
	size_t m1 = mem_in_use();
	struct mt_retain_stats st;
	mt_retain_stats_get(r, &st);
	printf("\nretained index: %llu topics, %llu nodes, %.0f bytes/topic (mallinfo2)\n",
	       (unsigned long long)st.count, (unsigned long long)st.nodes,
	       (double)(m1 - m0) / (double)st.count);
	printf("  %-22s %10s %12s %14s\n", "filter", "matches", "total ms", "ns per match");
	const char *filters[] = {"#", "dev3/#", "dev3/+/#", "+/w7/#", "dev3/w7/+/+/+"};
	for (unsigned k = 0; k < 5; k++) {
		double per[15], tot[15];
		uint64_t n = 0;
		unsigned reps = o->reps < 15 ? o->reps : 15;
		for (unsigned rep = 0; rep < reps; rep++) {
			n = 0;
			uint64_t a = now_ns();
			mt_retain_match(r, filters[k], strlen(filters[k]), count_visit, &n);
			uint64_t d = now_ns() - a;
			tot[rep] = (double)d / 1e6;
			per[rep] = n ? (double)d / (double)n : 0;
		}
		printf("  %-22s %10llu %12.2f %14.1f\n", filters[k], (unsigned long long)n,
		       median(tot, reps), median(per, reps));
	}
	mt_retain_destroy(r);
}

static void usage(void)
{
	fprintf(stderr, "usage: bench_match [--subs N] [--topics N] [--reps N] [--cores N] "
			"[--retained N] [--seconds S] [--mix E,W,M] [--no-baseline] "
			"[--no-churn]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct opts o = {1000000, 200000, 5, 8, 1000000, {40, 30, 30}, 2.0, true, true};

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--no-baseline")) {
			o.baseline = false;
			continue;
		}
		if (!strcmp(a, "--no-churn")) {
			o.churn = false;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (!strcmp(a, "--subs"))
			o.subs = (unsigned)strtoul(v, NULL, 0);
		else if (!strcmp(a, "--topics"))
			o.topics = (unsigned)strtoul(v, NULL, 0);
		else if (!strcmp(a, "--reps"))
			o.reps = (unsigned)strtoul(v, NULL, 0);
		else if (!strcmp(a, "--cores"))
			o.cores = (unsigned)strtoul(v, NULL, 0);
		else if (!strcmp(a, "--retained"))
			o.retained = (unsigned)strtoul(v, NULL, 0);
		else if (!strcmp(a, "--seconds"))
			o.seconds = strtod(v, NULL);
		else if (!strcmp(a, "--mix")) {
			if (sscanf(v, "%u,%u,%u", &o.mix[0], &o.mix[1], &o.mix[2]) != 3)
				usage();
		} else
			usage();
	}
	if (o.reps == 0 || o.reps > 99 || o.cores == 0 || o.cores > 64 || o.topics == 0 ||
	    o.mix[0] + o.mix[1] + o.mix[2] != 100)
		usage();

	struct strs subs = {0}, exact = {0}, wild = {0}, topics = {0};
	gen_subs(&subs, &exact, &wild, o.subs);
	unsigned *core = malloc(subs.n * sizeof(*core));
	for (size_t i = 0; i < subs.n; i++)
		core[i] = (unsigned)(rnd() % o.cores);

	mt_rcu_register_thread();
	size_t m0 = mem_in_use();
	uint64_t b0 = now_ns();
	struct mt_index *idx = mt_index_create(NULL);
	for (size_t i = 0; i < subs.n; i++)
		if (mt_index_add(idx, STR(&subs, i), subs.slen[i], core[i]) != 0) {
			fprintf(stderr, "add failed: %.*s\n", (int)subs.slen[i], STR(&subs, i));
			return 1;
		}
	double build_ours = (double)(now_ns() - b0) / 1e9;
	/* Hash arrays replaced while growing are freed after a grace period: count what stays. */
	mt_rcu_offline();
	mt_rcu_barrier();
	mt_rcu_online();
	size_t m1 = mem_in_use();
	struct mt_index_stats st;
	mt_index_stats_get(idx, &st);

	/* Publish topics, classes in random order; misses need the built index to be drawn. */
	uint8_t *cls = malloc(o.topics);
	unsigned ncl[CL_N] = {0, 0, 0};
	char t[256];
	for (unsigned i = 0; i < o.topics; i++) {
		unsigned r = (unsigned)(rnd() % 100), nl;
		unsigned k = r < o.mix[0] ? CL_EXACT : r < o.mix[0] + o.mix[1] ? CL_WILD : CL_MISS;
		if ((k == CL_EXACT && !exact.n) || (k == CL_WILD && !wild.n))
			k = CL_MISS;
		size_t len = 0;
		if (k == CL_EXACT) {
			size_t x = rnd() % exact.n;
			strs_push(&topics, STR(&exact, x), exact.slen[x]);
		} else if (k == CL_WILD) {
			size_t x = rnd() % wild.n;
			strs_push(&topics, t, gen_from_filter(t, STR(&wild, x), wild.slen[x]));
		} else {
			for (unsigned tries = 0;; tries++) {
				len = gen_topic(t, &nl);
				if (mt_index_match(idx, t, len) == 0)
					break;
				if (tries == 1000) {
					fprintf(stderr, "no unmatched topic found: "
							"lower the miss share\n");
					return 1;
				}
			}
			strs_push(&topics, t, len);
		}
		cls[i] = (uint8_t)k;
		ncl[k]++;
	}

	struct bl_tree *bl = NULL;
	size_t m2 = 0, m3 = 0;
	double build_bl = 0;
	if (o.baseline) {
		m2 = mem_in_use();
		b0 = now_ns();
		bl = bl_create();
		for (size_t i = 0; i < subs.n; i++)
			bl_add(bl, STR(&subs, i), subs.slen[i], core[i]);
		build_bl = (double)(now_ns() - b0) / 1e9;
		m3 = mem_in_use();
	}

	uint64_t oh = timer_overhead();
	printf("bench_match: %u subscriptions (%llu exact, %llu wildcard filters, %llu filter "
	       "shapes in %llu depth programs), %u cores, %zu publish topics, %u reps (medians), "
	       "timer overhead %llu ns subtracted\n",
	       o.subs, (unsigned long long)st.exact_filters,
	       (unsigned long long)st.wildcard_filters, (unsigned long long)st.trie_nodes,
	       (unsigned long long)st.shape_programs, o.cores, topics.n, o.reps,
	       (unsigned long long)oh);
	printf("publish mix: %u exact-filter topics, %u topics built from a wildcard filter, "
	       "%u topics matching nothing\n", ncl[CL_EXACT], ncl[CL_WILD], ncl[CL_MISS]);
	printf("memory latency now: %.0f ns per dependent load (random chase over 256 MiB)\n",
	       dram_latency_ns());

	double r[3 + CL_N][2][99];
	uint64_t matched[2] = {0, 0}, sum[2] = {0, 0};
	for (unsigned rep = 0; rep < o.reps; rep++) {
		struct lat l = measure(mt_match_cb, idx, &topics, cls, oh);
		r[0][0][rep] = l.p50;
		r[1][0][rep] = l.p99;
		r[2][0][rep] = l.mean;
		for (unsigned k = 0; k < CL_N; k++)
			r[3 + k][0][rep] = l.cl50[k];
		matched[0] = l.matched;
		sum[0] = l.sum;
		if (bl) {
			l = measure(bl_match_cb, bl, &topics, cls, oh);
			r[0][1][rep] = l.p50;
			r[1][1][rep] = l.p99;
			r[2][1][rep] = l.mean;
			for (unsigned k = 0; k < CL_N; k++)
				r[3 + k][1][rep] = l.cl50[k];
			matched[1] = l.matched;
			sum[1] = l.sum;
		}
	}
	double v[3 + CL_N][2];
	for (int k = 0; k < 3 + CL_N; k++)
		for (int w = 0; w < (bl ? 2 : 1); w++)
			v[k][w] = median(r[k][w], o.reps);
	printf("\n%-28s %14s %14s %8s\n", "", "mt_index", "baseline", "ratio");
	char cln[CL_N][40];
	for (unsigned k = 0; k < CL_N; k++)
		snprintf(cln[k], sizeof(cln[k]), "  p50 %s (ns)", cl_name[k]);
	const char *names[3 + CL_N] = {"match p50 (ns)", "match p99 (ns)", "match mean (ns)",
				       cln[0], cln[1], cln[2]};
	for (int k = 0; k < 3 + CL_N; k++) {
		if (bl)
			printf("%-28s %14.0f %14.0f %7.1fx\n", names[k], v[k][0], v[k][1],
			       v[k][1] / v[k][0]);
		else
			printf("%-28s %14.0f %14s %8s\n", names[k], v[k][0], "-", "-");
	}
	printf("%-28s %14llu %14llu\n", "topics with a match", (unsigned long long)matched[0],
	       (unsigned long long)matched[1]);
	/* The index maps its arena itself: mallinfo2 does not see it, so it is added. */
	printf("%-28s %14.1f %14.1f\n", "memory per sub (B)",
	       (double)(m1 - m0 + st.arena_bytes) / o.subs,
	       bl ? (double)(m3 - m2) / o.subs : 0.0);
	printf("%-28s %14.1f\n", "  of which arena (B)", (double)st.arena_bytes / o.subs);
	printf("%-28s %14.2f %14.2f\n", "build time (s)", build_ours, build_bl);
	printf("%-28s %14ld\n", "process AnonHugePages (kB)", anon_huge_kb());
	/* What the presence summaries did, per publish class (one pass, outside the timings). */
	struct mt_walk_stats ws[CL_N];
	memset(ws, 0, sizeof(ws));
	for (size_t i = 0; i < topics.n; i++)
		mt_index_walk_stats(idx, STR(&topics, i), topics.slen[i], &ws[cls[i]]);
	printf("summary keys per topic: %-12s %8s %8s %8s %10s\n", "class", "checked", "maybe",
	       "present", "false pos");
	for (unsigned k = 0; k < CL_N; k++) {
		double nk = ncl[k] ? (double)ncl[k] : 1.0;
		uint64_t absent = ws[k].checks - ws[k].found;
		printf("                        %-12s %8.2f %8.2f %8.2f %9.2f%%\n", cl_name[k],
		       (double)ws[k].checks / nk, (double)ws[k].maybe / nk,
		       (double)ws[k].found / nk,
		       absent ? 100.0 * (double)(ws[k].maybe - ws[k].found) / (double)absent : 0.0);
	}
	if (bl && (matched[0] != matched[1] || sum[0] != sum[1]))
		printf("WARNING: mt_index and baseline disagree on matched topics or core masks\n");
	bl_destroy(bl);

	if (o.churn) {
		mt_rcu_offline();
		churn(idx, &topics, &o, oh);
		mt_rcu_online();
	}
	if (o.retained)
		retained(&o);

	mt_rcu_unregister_thread();
	mt_index_destroy(idx);
	free(core);
	free(cls);
	strs_free(&subs);
	strs_free(&exact);
	strs_free(&wild);
	strs_free(&topics);
	return 0;
}

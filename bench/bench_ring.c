/* SPDX-License-Identifier: MIT */
/*
 * Micro-benchmark of the engine's cross-core SPSC ring (engine/eng_ring.h) between two
 * threads, against baselines measured in the same run:
 *   mutex    a bounded queue of the same items under a pthread mutex with two condition
 *            variables (not empty / not full), signalled only when the other side waits;
 *            the consumer takes up to a batch per lock, as eng_ring_pop() does;
 *   wfcqueue liburcu's wait-free concurrent queue (urcu/wfcqueue.h): enqueue is one
 *            exchange, the single consumer dequeues without a lock, one node at a time
 *            (non-blocking form; it spins when an enqueue is half done).
 *            Nodes come from a pool of the ring's capacity, recycled once consumed, so all
 *            three hold at most the same number of items.
 * All three move the engine's 32-byte struct eng_ritem by copy, capacity 1024.
 *
 * throughput  the producer pushes N items (sequence numbers), the consumer pops them and
 *             checks the order; items/s from the first push to the last pop. Median of runs.
 * round trip  two queues, A -> B and B -> A: thread A pushes one item and waits for it to
 *             come back; the round-trip time goes into a histogram (bench_lg_hist.h, 0.8 %
 *             precision). Percentiles over all runs' samples.
 *
 * The two threads are pinned to CPUs 0 and 1 when there are two. The ring and wfcqueue
 * sides busy-wait (with a pause, and a sched_yield() every SPIN_YIELD spins so an
 * oversubscribed machine still makes progress); the mutex queue sleeps on its condition
 * variables, as such a queue would. Output: a table, the ratios ring / baseline, and one JSON
 * object per queue (run_suite keeps them). Every run is bounded: an alarm ends the program
 * with exit 1 if a run stalls, and a wrong sequence at the consumer is an error (exit 1).
 *
 * Usage: bench_ring [runs (5)] [items per throughput run (1000000)] [round trips (50000)]
 * Not a test: it asserts nothing about speed.
 */
#define _LGPL_SOURCE /* liburcu's inline (header-only) wfcqueue */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <urcu/wfcqueue.h>

#include "bench_lg_hist.h"
#include "bench_stats.h"
#include "eng_ring.h"

#define QCAP 1024u /* items a queue holds at most (the ring's size) */
#define BATCH 32u  /* items a consumer takes at once */
#define MAX_RUNS 31
#define SPIN_YIELD 4096u
#define RUN_ALARM_S 120 /* a stalled run ends the program */

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

static void spin(unsigned *n)
{
	if (++*n % SPIN_YIELD == 0)
		sched_yield();
	else
		cpu_relax();
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void on_alarm(int sig)
{
	static const char msg[] = "bench_ring: a run did not finish in time\n";
	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0) {
		/* nothing more can be done */
	}
	_exit(1);
}

/* ---- the mutex + condition variable baseline ---- */

struct mqueue {
	pthread_mutex_t lock;
	pthread_cond_t not_empty;
	pthread_cond_t not_full;
	uint32_t head, tail; /* free-running, masked on use */
	bool cons_waits, prod_waits;
	struct eng_ritem slots[QCAP];
};

static int mq_init(struct mqueue *q)
{
	memset(q, 0, sizeof(*q));
	if (pthread_mutex_init(&q->lock, NULL))
		return -ENOMEM;
	if (pthread_cond_init(&q->not_empty, NULL) || pthread_cond_init(&q->not_full, NULL))
		return -ENOMEM;
	return 0;
}

static void mq_fini(struct mqueue *q)
{
	pthread_cond_destroy(&q->not_empty);
	pthread_cond_destroy(&q->not_full);
	pthread_mutex_destroy(&q->lock);
}

static void mq_push(struct mqueue *q, const struct eng_ritem *it)
{
	pthread_mutex_lock(&q->lock);
	while (q->tail - q->head == QCAP) {
		q->prod_waits = true;
		pthread_cond_wait(&q->not_full, &q->lock);
	}
	q->slots[q->tail++ % QCAP] = *it;
	if (q->cons_waits) {
		q->cons_waits = false;
		pthread_cond_signal(&q->not_empty);
	}
	pthread_mutex_unlock(&q->lock);
}

/* Waits for at least one item; takes up to max. */
static unsigned mq_pop(struct mqueue *q, struct eng_ritem *out, unsigned max)
{
	unsigned n = 0;

	pthread_mutex_lock(&q->lock);
	while (q->tail == q->head) {
		q->cons_waits = true;
		pthread_cond_wait(&q->not_empty, &q->lock);
	}
	while (n < max && q->head != q->tail)
		out[n++] = q->slots[q->head++ % QCAP];
	if (q->prod_waits) {
		q->prod_waits = false;
		pthread_cond_signal(&q->not_full);
	}
	pthread_mutex_unlock(&q->lock);
	return n;
}

/* ---- liburcu wfcqueue with a recycled node pool ---- */

struct wnode {
	struct cds_wfcq_node node;
	struct eng_ritem it;
};

_Static_assert(offsetof(struct wnode, node) == 0, "wq_pop() casts a node to its wnode");

struct wqueue {
	struct __cds_wfcq_head head; /* single consumer: no dequeue lock */
	struct cds_wfcq_tail tail;
	/* producer: nodes used so far; node k lives in pool[k % QCAP] */
	uint64_t produced;
	uint64_t consumed_cache;
	/* consumer: nodes consumed so far, published for the producer's reuse */
	alignas(ENG_CACHE_LINE) _Atomic uint64_t consumed;
	alignas(ENG_CACHE_LINE) struct wnode pool[QCAP];
};

static void wq_init(struct wqueue *q)
{
	memset(q, 0, sizeof(*q));
	__cds_wfcq_init(&q->head, &q->tail);
}

static void wq_push(struct wqueue *q, const struct eng_ritem *it)
{
	unsigned n = 0;

	if (q->produced - q->consumed_cache >= QCAP) {
		/* acquire: pairs with the consumer's release store; its copy of the node is done */
		while ((q->consumed_cache =
				atomic_load_explicit(&q->consumed, memory_order_acquire)) +
			       QCAP <=
		       q->produced)
			spin(&n);
	}
	struct wnode *w = &q->pool[q->produced++ % QCAP];
	w->it = *it;
	cds_wfcq_node_init(&w->node);
	cds_wfcq_enqueue(&q->head, &q->tail, &w->node);
}

/* Takes what is there, up to max, without waiting; returns how many. */
static unsigned wq_pop(struct wqueue *q, struct eng_ritem *out, unsigned max)
{
	unsigned n = 0;

	while (n < max) {
		/*
		 * Non-blocking: the blocking form sleeps 10 ms when it meets an enqueue half done
		 * (a producer preempted between its exchange and its link), which on a busy
		 * machine would measure the sleep. Here the caller spins, as for the ring.
		 */
		struct cds_wfcq_node *nd = __cds_wfcq_dequeue_nonblocking(&q->head, &q->tail);
		if (!nd || nd == CDS_WFCQ_WOULDBLOCK)
			break;
		/* node is wnode's first member (asserted below): the same address */
		out[n++] = ((struct wnode *)(void *)nd)->it;
	}
	if (n)
		atomic_fetch_add_explicit(&q->consumed, n, memory_order_release);
	return n;
}

/* ---- the queues behind one interface ---- */

enum qkind { Q_RING, Q_MUTEX, Q_WFCQ, Q_KINDS };

static const char *const qname[Q_KINDS] = {"eng_ring", "mutex+condvar", "wfcqueue"};

struct q {
	enum qkind kind;
	struct eng_ring *ring;
	struct mqueue *mq;
	struct wqueue *wq;
};

/* Cache-line aligned memory; aligned_alloc() wants a size that is a multiple of the alignment. */
static void *alloc_lines(size_t n)
{
	return aligned_alloc(ENG_CACHE_LINE,
			     (n + ENG_CACHE_LINE - 1) & ~(size_t)(ENG_CACHE_LINE - 1));
}

static int q_create(struct q *q, enum qkind kind)
{
	memset(q, 0, sizeof(*q));
	q->kind = kind;
	switch (kind) {
	case Q_RING:
		q->ring = eng_ring_create(QCAP);
		return q->ring ? 0 : -ENOMEM;
	case Q_MUTEX:
		q->mq = alloc_lines(sizeof(*q->mq));
		if (!q->mq)
			return -ENOMEM;
		return mq_init(q->mq);
	case Q_WFCQ:
		q->wq = alloc_lines(sizeof(*q->wq));
		if (!q->wq)
			return -ENOMEM;
		wq_init(q->wq);
		return 0;
	default:
		return -EINVAL;
	}
}

static void q_free(struct q *q)
{
	eng_ring_free(q->ring);
	if (q->mq) {
		mq_fini(q->mq);
		free(q->mq);
	}
	free(q->wq);
}

static void q_push(struct q *q, const struct eng_ritem *it)
{
	unsigned n = 0;

	switch (q->kind) {
	case Q_RING:
		while (eng_ring_push(q->ring, it))
			spin(&n);
		break;
	case Q_MUTEX:
		mq_push(q->mq, it);
		break;
	default:
		wq_push(q->wq, it);
		break;
	}
}

/* Waits for at least one item; returns how many were taken (<= max). */
static unsigned q_pop(struct q *q, struct eng_ritem *out, unsigned max)
{
	unsigned n = 0, got;

	if (q->kind == Q_MUTEX)
		return mq_pop(q->mq, out, max);
	for (;;) {
		got = q->kind == Q_RING ? eng_ring_pop(q->ring, out, max) : wq_pop(q->wq, out, max);
		if (got)
			return got;
		spin(&n);
	}
}

/* ---- the two threads ---- */

struct job {
	struct q *ab, *ba; /* ba: round trips only */
	uint64_t items;
	int cpu;
	pthread_barrier_t *go;
	/* results */
	uint64_t t_start, t_end;
	uint64_t bad_seq; /* first wrong sequence + 1; 0: none */
	struct lg_hist *hist;
};

static void pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	/* Best effort: an unpinned run is still a valid, noisier run. */
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void *tp_producer(void *arg)
{
	struct job *j = arg;
	struct eng_ritem it = {.type = 1};

	pin(j->cpu);
	pthread_barrier_wait(j->go);
	j->t_start = now_ns();
	for (uint64_t i = 0; i < j->items; i++) {
		it.b = i;
		q_push(j->ab, &it);
	}
	return NULL;
}

static void *tp_consumer(void *arg)
{
	struct job *j = arg;
	struct eng_ritem out[BATCH];
	uint64_t next = 0;

	pin(j->cpu);
	pthread_barrier_wait(j->go);
	while (next < j->items) {
		unsigned n = q_pop(j->ab, out, BATCH);
		for (unsigned k = 0; k < n; k++, next++)
			if (out[k].b != next && !j->bad_seq)
				j->bad_seq = next + 1;
	}
	j->t_end = now_ns();
	return NULL;
}

/* Thread A: sends one item, waits for it to come back, records the round trip. */
static void *rt_ping(void *arg)
{
	struct job *j = arg;
	struct eng_ritem it = {.type = 2}, back;

	pin(j->cpu);
	pthread_barrier_wait(j->go);
	for (uint64_t i = 0; i < j->items; i++) {
		uint64_t t = now_ns();
		it.b = i;
		q_push(j->ab, &it);
		q_pop(j->ba, &back, 1);
		lg_hist_record(j->hist, now_ns() - t);
		if (back.b != i && !j->bad_seq)
			j->bad_seq = i + 1;
	}
	return NULL;
}

/* Thread B: sends every item straight back. */
static void *rt_pong(void *arg)
{
	struct job *j = arg;
	struct eng_ritem it;

	pin(j->cpu);
	pthread_barrier_wait(j->go);
	for (uint64_t i = 0; i < j->items; i++) {
		q_pop(j->ab, &it, 1);
		q_push(j->ba, &it);
	}
	return NULL;
}

/* Runs a and b on two threads (a's job first); 0 or -1. */
static int run_pair(void *(*fa)(void *), void *(*fb)(void *), struct job *ja, struct job *jb)
{
	pthread_barrier_t go;
	pthread_t ta, tb;
	int rc = -1;

	if (pthread_barrier_init(&go, NULL, 2))
		return -1;
	ja->go = jb->go = &go;
	alarm(RUN_ALARM_S);
	if (pthread_create(&ta, NULL, fa, ja))
		goto out;
	if (pthread_create(&tb, NULL, fb, jb)) {
		/* ta waits at the barrier forever: the alarm ends the program. */
		fprintf(stderr, "bench_ring: pthread_create failed\n");
		exit(1);
	}
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	rc = 0;
out:
	alarm(0);
	pthread_barrier_destroy(&go);
	return rc;
}

struct result {
	double items_per_s; /* median */
	double best_items_per_s;
	struct lg_hist rtt;
};

static int bench_queue(enum qkind kind, int runs, uint64_t items, uint64_t trips, int cpu_a,
		       int cpu_b, struct result *res)
{
	double rate[MAX_RUNS];
	struct q ab, ba;

	lg_hist_init(&res->rtt);
	for (int r = 0; r < runs; r++) {
		if (q_create(&ab, kind))
			return -ENOMEM;
		struct job p = {.ab = &ab, .items = items, .cpu = cpu_a};
		struct job c = {.ab = &ab, .items = items, .cpu = cpu_b};
		if (run_pair(tp_producer, tp_consumer, &p, &c)) {
			q_free(&ab);
			return -EAGAIN;
		}
		q_free(&ab);
		if (c.bad_seq) {
			fprintf(stderr, "bench_ring: %s: item %llu arrived out of order\n",
				qname[kind], (unsigned long long)(c.bad_seq - 1));
			return -EPROTO;
		}
		rate[r] = (double)items * 1e9 / (double)(c.t_end - p.t_start);
	}
	res->items_per_s = bench_median(rate, runs);
	res->best_items_per_s = rate[runs - 1]; /* bench_median() sorted rate[] */

	for (int r = 0; r < runs; r++) {
		if (q_create(&ab, kind))
			return -ENOMEM;
		if (q_create(&ba, kind)) {
			q_free(&ab);
			return -ENOMEM;
		}
		struct job a = {
			.ab = &ab, .ba = &ba, .items = trips, .cpu = cpu_a, .hist = &res->rtt};
		struct job b = {.ab = &ab, .ba = &ba, .items = trips, .cpu = cpu_b};
		int rc = run_pair(rt_ping, rt_pong, &a, &b);
		q_free(&ab);
		q_free(&ba);
		if (rc)
			return -EAGAIN;
		if (a.bad_seq) {
			fprintf(stderr, "bench_ring: %s: round trip %llu came back wrong\n",
				qname[kind], (unsigned long long)(a.bad_seq - 1));
			return -EPROTO;
		}
	}
	return 0;
}

static double pct(const struct result *r, double p)
{
	return (double)lg_hist_percentile(&r->rtt, p);
}

int main(int argc, char **argv)
{
	static struct result res[Q_KINDS];
	int runs = argc > 1 ? atoi(argv[1]) : 5;
	long long items = argc > 2 ? atoll(argv[2]) : 1000000;
	long long trips = argc > 3 ? atoll(argv[3]) : 50000;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int cpu_a = ncpu >= 2 ? 0 : -1, cpu_b = ncpu >= 2 ? 1 : -1;

	if (argc > 4 || runs < 1 || runs > MAX_RUNS || items < 1 || items > 1000000000 ||
	    trips < 1 || trips > 100000000) {
		fprintf(stderr,
			"usage: bench_ring [runs 1..%d] [items per run] [round trips per run]\n",
			MAX_RUNS);
		return 2;
	}
	signal(SIGALRM, on_alarm);

	printf("SPSC ring micro-benchmark: engine/eng_ring against a mutex+condvar queue and "
	       "liburcu wfcqueue,\n%zu-byte items, capacity %u, consumer batch %u; threads %s; "
	       "%d runs of %lld items (throughput: median) and %lld round trips (latency: "
	       "all samples)\n\n",
	       sizeof(struct eng_ritem), QCAP, BATCH,
	       cpu_a >= 0 ? "pinned to CPUs 0 and 1" : "not pinned (one CPU)", runs, items, trips);
	for (int k = 0; k < Q_KINDS; k++) {
		int rc = bench_queue((enum qkind)k, runs, (uint64_t)items, (uint64_t)trips, cpu_a,
				     cpu_b, &res[k]);
		if (rc) {
			fprintf(stderr, "bench_ring: %s failed: %s\n", qname[k], strerror(-rc));
			return 1;
		}
	}

	printf("%-14s %14s %14s %10s %10s %10s %10s\n", "queue", "items/s median", "items/s best",
	       "rtt p50 ns", "p99 ns", "p99.9 ns", "max ns");
	for (int k = 0; k < Q_KINDS; k++)
		printf("%-14s %14.0f %14.0f %10.0f %10.0f %10.0f %10.0f\n", qname[k],
		       res[k].items_per_s, res[k].best_items_per_s, pct(&res[k], 50),
		       pct(&res[k], 99), pct(&res[k], 99.9), (double)res[k].rtt.max);
	printf("\n");
	for (int k = 1; k < Q_KINDS; k++)
		printf("eng_ring / %-14s throughput x%.2f, round-trip p50 x%.2f faster, p99 x%.2f "
		       "faster\n",
		       qname[k], res[Q_RING].items_per_s / res[k].items_per_s,
		       pct(&res[k], 50) / pct(&res[Q_RING], 50),
		       pct(&res[k], 99) / pct(&res[Q_RING], 99));
	printf("\n");
	for (int k = 0; k < Q_KINDS; k++)
		printf("{\"bench\":\"bench_ring\",\"queue\":\"%s\",\"capacity\":%u,\"item_bytes\":%"
		       "zu,"
		       "\"runs\":%d,\"items\":%lld,\"round_trips\":%lld,\"items_per_s\":%.0f,"
		       "\"items_per_s_best\":%.0f,\"rtt_ns\":{\"p50\":%.0f,\"p90\":%.0f,\"p99\":%."
		       "0f,"
		       "\"p999\":%.0f,\"max\":%llu},\"throughput_ratio_ring_over_this\":%.3f,"
		       "\"rtt_p50_ratio_this_over_ring\":%.3f}\n",
		       qname[k], QCAP, sizeof(struct eng_ritem), runs, items, trips,
		       res[k].items_per_s, res[k].best_items_per_s, pct(&res[k], 50),
		       pct(&res[k], 90), pct(&res[k], 99), pct(&res[k], 99.9),
		       (unsigned long long)res[k].rtt.max,
		       res[Q_RING].items_per_s / res[k].items_per_s,
		       pct(&res[k], 50) / pct(&res[Q_RING], 50));
	return 0;
}

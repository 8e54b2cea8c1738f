/* SPDX-License-Identifier: MIT */
/*
 * Stress harness for the message pools (engine/eng_msg.c), in C because it builds fake
 * workers from eng_internal.h; test_eng_msg.cc drives it.
 *
 * N threads play workers: each makes messages of every size class (and some larger than the
 * last class), stamps each payload with its maker and sequence number, and hands most of them
 * to the next worker through a small locked queue (the test's own plumbing, not the engine's
 * rings); the receiver checks the stamp (STAMP_NEXT) and drops the last reference there, so
 * the block travels home through the return stacks. The rest are dropped by their maker. Each
 * loop iteration ends with eng_msg_ret_flush(), as a worker's loop does. A block reused while
 * still referenced shows as a wrong stamp; a block lost or freed twice shows under ASan; a
 * return path that never brings blocks home shows as pool misses (pool_fallback) that do not
 * stop once the pools are warm.
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eng_internal.h"
#include "eng_msg_stress.h"

#define QCAP 256u /* messages in flight from one worker to the next */

struct inbox {
	pthread_mutex_t mu;
	struct eng_msg *q[QCAP];
	uint32_t head, n;
};

struct st_worker {
	struct eng_worker *w;
	struct inbox in;
	struct st_worker *next;
	uint32_t msgs; /* to make */
	uint32_t made, got, to_get;
	uint64_t fallback_half; /* pool misses when half of the messages were made */
	uint64_t made_late;     /* pooled messages made in the second half */
	char err[160];
	uint64_t seed;
};

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static bool push(struct inbox *b, struct eng_msg *m)
{
	bool ok;

	pthread_mutex_lock(&b->mu);
	ok = b->n < QCAP;
	if (ok)
		b->q[(b->head + b->n++) % QCAP] = m;
	pthread_mutex_unlock(&b->mu);
	return ok;
}

static bool full(struct inbox *b)
{
	pthread_mutex_lock(&b->mu);
	bool f = b->n == QCAP;
	pthread_mutex_unlock(&b->mu);
	return f;
}

static struct eng_msg *pop(struct inbox *b)
{
	struct eng_msg *m = NULL;

	pthread_mutex_lock(&b->mu);
	if (b->n) {
		m = b->q[b->head];
		b->head = (b->head + 1) % QCAP;
		b->n--;
	}
	pthread_mutex_unlock(&b->mu);
	return m;
}

/* Stamped bytes: all of the first 16 KiB, then every 61st and the last. A block reused for
 * another message is rewritten from its start, so the whole first part catches that, and the
 * sparse rest keeps ASan runs of the large classes short. */
#define STAMP_NEXT(i) ((i) + ((i) < 16384 ? 1 : 61))

/* The payload of message seq of worker id: a pattern of both (at the stamped bytes). */
static void stamp(uint8_t *p, uint32_t len, uint32_t id, uint32_t seq)
{
	for (uint32_t i = 0; i < len; i = STAMP_NEXT(i))
		p[i] = (uint8_t)(id * 131u + seq * 7u + i);
	if (len)
		p[len - 1] = (uint8_t)(id * 131u + seq * 7u + len - 1);
}

static bool stamp_ok(const struct eng_msg *m)
{
	uint32_t id, seq;

	if (m->topic.len != 8)
		return false;
	memcpy(&id, m->topic.p, 4);
	memcpy(&seq, m->topic.p + 4, 4);
	for (uint32_t i = 0; i < m->payload.len; i = STAMP_NEXT(i))
		if (m->payload.p[i] != (uint8_t)(id * 131u + seq * 7u + i))
			return false;
	uint32_t last = m->payload.len - 1;
	return !m->payload.len || m->payload.p[last] == (uint8_t)(id * 131u + seq * 7u + last);
}

/* Every class, and larger than the last; the two large classes (and beyond) in 1 of 16
 * messages, so that stamping them does not dominate the run. */
static const uint32_t sizes[] = {10, 300, 1000, 1900, 4000, 8000, 12000};
static const uint32_t sizes_large[] = {30000, 100000, 140000};

static uint32_t pick_size(uint64_t *seed)
{
	uint64_t r = rnd(seed);
	if (r % 16 == 0)
		return sizes_large[(r >> 4) % (sizeof(sizes_large) / sizeof(sizes_large[0]))];
	return sizes[(r >> 4) % (sizeof(sizes) / sizeof(sizes[0]))];
}

static void *run(void *arg)
{
	struct st_worker *s = arg;
	struct eng_worker *w = s->w;
	uint8_t *buf = calloc(1, 150000); /* sparse stamps: the rest stays defined */

	time_t deadline = time(NULL) + 60;

	eng_cur_worker = w;
	while (!s->err[0]) {
		if (time(NULL) > deadline) {
			snprintf(s->err, sizeof(s->err),
				 "worker %u stalled: made %u of %u, got %u of %u, inbox %u", w->id,
				 s->made, s->msgs, s->got, __atomic_load_n(&s->to_get, __ATOMIC_RELAXED),
				 s->in.n);
			break;
		}
		/* flow control: make no more than the next worker has room for */
		for (int b = 0; b < 8 && s->made < s->msgs && !full(&s->next->in); b++) {
			uint32_t len = pick_size(&s->seed);
			uint32_t key[2] = {(uint32_t)w->id, s->made};
			struct eng_publish pub = {.qos = 1};
			struct eng_str topic = {(const uint8_t *)key, 8};
			stamp(buf, len, key[0], key[1]);
			pub.payload = (struct eng_str){buf, len};
			pub.topic = topic;
			struct eng_msg *m = eng_msg_new(w, &pub, &topic, ENG_V5, NULL, 0, 0);
			if (!m) {
				snprintf(s->err, sizeof(s->err), "worker %u: eng_msg_new failed", w->id);
				break;
			}
			if (!stamp_ok(m)) {
				snprintf(s->err, sizeof(s->err), "worker %u: fresh message %u corrupt",
					 w->id, s->made);
				break;
			}
			if (m->cls != ENG_MSG_NO_CLASS && s->made >= s->msgs / 2)
				s->made_late++;
			if (s->made == s->msgs / 2)
				s->fallback_half = atomic_load(&w->stats.pool_fallback);
			if (rnd(&s->seed) % 4 == 0) {
				eng_msg_unref(m); /* dropped where it was made */
			} else if (!push(&s->next->in, m)) {
				eng_msg_unref(m);
			} else {
				__atomic_fetch_add(&s->next->to_get, 1, __ATOMIC_RELAXED);
			}
			/* release: the to_get increments before it (the receiver's exit test) */
			__atomic_store_n(&s->made, s->made + 1, __ATOMIC_RELEASE);
		}
		struct eng_msg *m;
		while ((m = pop(&s->in))) {
			if (!stamp_ok(m)) {
				snprintf(s->err, sizeof(s->err),
					 "worker %u: a received message was overwritten (block reused "
					 "while referenced)", w->id);
				break;
			}
			s->got++;
			eng_msg_unref(m); /* a remote free: the block goes home */
		}
		eng_msg_ret_flush(w);
		sched_yield(); /* two cores for several threads: let the others move */
		/* to_get grows while the previous worker still makes messages */
		if (s->made >= s->msgs && s->got >= __atomic_load_n(&s->to_get, __ATOMIC_RELAXED)) {
			bool all_done = true;
			for (struct st_worker *o = s->next; o != s; o = o->next)
				all_done = all_done && __atomic_load_n(&o->made, __ATOMIC_ACQUIRE) >=
							       o->msgs;
			if (all_done && s->got >= __atomic_load_n(&s->to_get, __ATOMIC_RELAXED))
				break;
		}
	}
	eng_msg_ret_flush(w);
	free(buf);
	eng_cur_worker = NULL;
	return NULL;
}

int eng_msg_stress(unsigned nworkers, uint32_t msgs, struct eng_msg_stress_res *res)
{
	struct tachyon *e = calloc(1, sizeof(*e));
	struct eng_worker **ws = calloc(nworkers, sizeof(*ws));
	struct st_worker *st = calloc(nworkers, sizeof(*st));
	pthread_t *th = calloc(nworkers, sizeof(*th));
	int rc = 0;

	memset(res, 0, sizeof(*res));
	if (!e || !ws || !st || !th) {
		rc = -1;
		goto out;
	}
	e->nworkers = nworkers;
	e->workers = ws;
	for (unsigned i = 0; i < nworkers; i++) {
		ws[i] = aligned_alloc(ENG_CACHE_LINE, (sizeof(struct eng_worker) + ENG_CACHE_LINE - 1) /
							      ENG_CACHE_LINE * ENG_CACHE_LINE);
		memset(ws[i], 0, sizeof(struct eng_worker));
		ws[i]->id = i;
		ws[i]->eng = e;
		st[i].w = ws[i];
		st[i].msgs = msgs;
		st[i].seed = 0x9e3779b97f4a7c15ull * (i + 1);
		st[i].next = &st[(i + 1) % nworkers];
		pthread_mutex_init(&st[i].in.mu, NULL);
	}
	for (unsigned i = 0; i < nworkers; i++)
		pthread_create(&th[i], NULL, run, &st[i]);
	for (unsigned i = 0; i < nworkers; i++)
		pthread_join(th[i], NULL);
	for (unsigned i = 0; i < nworkers; i++) {
		struct st_worker *s = &st[i];
		if (s->err[0]) {
			size_t l = strlen(res->err);
			snprintf(res->err + l, sizeof(res->err) - l, "%s%s", l ? "; " : "", s->err);
		}
		/* what is still queued (an error stopped a worker): dropped by its receiver */
		struct eng_msg *m;
		eng_cur_worker = s->next->w;
		while ((m = pop(&s->next->in)))
			eng_msg_unref(m);
		eng_cur_worker = NULL;
		res->made += s->made;
		res->received += s->got;
		res->fallback_late += atomic_load(&s->w->stats.pool_fallback) - s->fallback_half;
		res->made_late += s->made_late;
		res->fallback += atomic_load(&s->w->stats.pool_fallback);
	}
	for (unsigned i = 0; i < nworkers; i++) {
		ws[i]->exiting = true;
		eng_pools_free(ws[i]);
	}
	if (res->err[0])
		rc = -1;
out:
	for (unsigned i = 0; ws && i < nworkers; i++) {
		if (ws[i])
			pthread_mutex_destroy(&st[i].in.mu);
		free(ws[i]);
	}
	free(th);
	free(st);
	free(ws);
	free(e);
	return rc;
}

/* SPDX-License-Identifier: MIT */
/*
 * RCU plumbing of match/: the QSBR wrappers readers call, and mt_reclaim, which frees unlinked
 * memory in batches after a grace period through call_rcu.
 *
 * ThreadSanitizer: Debian's liburcu 0.13 synchronises with inline-asm barriers and volatile
 * accesses inside an uninstrumented library, so TSan cannot see that a grace period orders a
 * reader's last access to an object before the free that follows it, nor that call_rcu orders
 * the writer's stores before the callback. Rather than suppressing reports (which would hide
 * races in our own code too), we state exactly these edges to TSan:
 *   - every quiescent/offline/unregister point of a reader releases mt_tsan_gp;
 *     every deferred free acquires it first (a grace period ended after those points);
 *   - the writer releases each batch before call_rcu; the callback acquires it;
 *   - each callback releases mt_tsan_cb when done; mt_rcu_barrier acquires it after
 *     rcu_barrier (which waits for every callback queued before it), so that what the
 *     callbacks did (returning objects to an index's arena) happens before the arena goes.
 * Everything else (pointer publication, masks) is plain C11-style atomics TSan sees directly.
 */
#include <errno.h>
#include <stdlib.h>

#define URCU_API_MAP
#include <urcu/urcu-qsbr.h>

#include "mt_internal.h"

#if defined(__SANITIZE_THREAD__)
#define MT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MT_TSAN 1
#endif
#endif

#ifdef MT_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
static char mt_tsan_gp;
static char mt_tsan_cb;
#define MT_TSAN_ACQUIRE(a) __tsan_acquire(a)
#define MT_TSAN_RELEASE(a) __tsan_release(a)
#else
#define MT_TSAN_ACQUIRE(a) ((void)0)
#define MT_TSAN_RELEASE(a) ((void)0)
#endif

void mt_rcu_register_thread(void)
{
	urcu_qsbr_register_thread();
}

void mt_rcu_unregister_thread(void)
{
	MT_TSAN_RELEASE(&mt_tsan_gp);
	urcu_qsbr_unregister_thread();
}

void mt_rcu_quiescent(void)
{
	MT_TSAN_RELEASE(&mt_tsan_gp);
	urcu_qsbr_quiescent_state();
}

void mt_rcu_offline(void)
{
	MT_TSAN_RELEASE(&mt_tsan_gp);
	urcu_qsbr_thread_offline();
}

void mt_rcu_online(void)
{
	urcu_qsbr_thread_online();
}

void mt_rcu_barrier(void)
{
	urcu_qsbr_barrier();
	MT_TSAN_ACQUIRE(&mt_tsan_cb); /* pairs with the release at the end of each callback */
}

/* ------------------------------------------------------------------------------------------ */

#define MT_RBATCH_MAX 256

struct mt_rbatch {
	struct rcu_head head;
	unsigned n;
	struct mt_arena *arena;
	void *ptr[MT_RBATCH_MAX];
	uint32_t size[MT_RBATCH_MAX]; /* 0: malloc'd; else an arena object of that size */
};

static void mt_rbatch_free(struct rcu_head *head)
{
	struct mt_rbatch *b = (struct mt_rbatch *)(void *)head; /* head is the first member */

	MT_TSAN_ACQUIRE(b);	       /* pairs with the release before call_rcu */
	MT_TSAN_ACQUIRE(&mt_tsan_gp); /* pairs with readers' quiescent states */
	for (unsigned i = 0; i < b->n; i++) {
		if (b->size[i])
			mt_arena_return(b->arena, b->ptr[i], b->size[i]);
		else
			free(b->ptr[i]);
	}
	free(b);
	MT_TSAN_RELEASE(&mt_tsan_cb);
}

void mt_reclaim_flush(struct mt_reclaim *rc)
{
	struct mt_rbatch *b = rc->cur;

	if (!b)
		return;
	rc->cur = NULL;
	MT_TSAN_RELEASE(b);
	urcu_qsbr_call_rcu(&b->head, mt_rbatch_free);
}

static void mt_reclaim_add(struct mt_reclaim *rc, void *p, uint32_t size)
{
	if (!rc->rcu) {
		if (size)
			mt_arena_free(rc->arena, p, size);
		else
			free(p);
		return;
	}
	if (rc->cur && rc->cur->n == MT_RBATCH_MAX)
		mt_reclaim_flush(rc);
	if (!rc->cur) {
		rc->cur = malloc(sizeof(*rc->cur));
		if (!rc->cur) {
			/* No memory for a batch: wait out the readers instead. */
			urcu_qsbr_synchronize_rcu();
			MT_TSAN_ACQUIRE(&mt_tsan_gp);
			if (size)
				mt_arena_free(rc->arena, p, size);
			else
				free(p);
			return;
		}
		rc->cur->n = 0;
		rc->cur->arena = rc->arena;
	}
	rc->cur->size[rc->cur->n] = size;
	rc->cur->ptr[rc->cur->n++] = p;
}

void mt_reclaim_put(struct mt_reclaim *rc, void *p)
{
	if (p)
		mt_reclaim_add(rc, p, 0);
}

void mt_reclaim_obj(struct mt_reclaim *rc, void *p, size_t size)
{
	if (!p)
		return;
	if (!rc->arena || size > MT_ARENA_MAX)
		mt_reclaim_add(rc, p, 0); /* malloc'd (see mt_arena_alloc) */
	else
		mt_reclaim_add(rc, p, (uint32_t)size);
}

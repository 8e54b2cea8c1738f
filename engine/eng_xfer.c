/* SPDX-License-Identifier: MIT */
/*
 * Moving a session's deliveries to its new core after a takeover (see the takeover design in
 * eng_connect.c), so that no message routed around the move is lost or delivered twice.
 *
 * The problem: publishes are routed by the global index (filter -> cores) and then matched in
 * the target core's mt_local. While a session moves from core O to core N, a message may be
 * routed under the old index (it goes to O, where the session no longer is) or under the new
 * one before N has the session's subscriptions (it goes to N, which does not match it yet),
 * and a message routed to both O and N (other sessions share the filter) may reach the
 * session both ways.
 *
 * Design:
 * - Route epochs. The control thread bumps e->route_epoch once per move, between adding N to
 *   the index and removing O from it. eng_route() stamps each message with the epoch its
 *   index match saw, read seqlock-style around the match (load, match, acquire fence, load
 *   again, retry if it changed): a message stamped below the move's epoch E was matched before
 *   O left the index, so O got it; one stamped E or later was matched after N joined, so N got
 *   it.
 * - O keeps the session's mt_local entries after the takeover: the old client object becomes
 *   a forwarder (CS_MOVED) and sends everything it matches to N (RI_FWD: a queue entry with
 *   the message reference, QoS, RETAIN, subscription ids).
 * - N adopts the subscriptions into its mt_local first and only then asks the control thread
 *   to move the index (RI_ADOPTED): nothing reaches N under the new index before N can match
 *   it. The control thread adds N, stores E in the move (xfer->epoch) and in route_epoch
 *   (release), removes O (after a release fence), and sends RI_FENCE to every worker.
 * - N delivers a direct match only if it is stamped E or later, and a forwarded one only if it
 *   is stamped below E (shared subscriptions excepted: a shared message goes to one core
 *   only, so its one copy is always delivered). N may see messages before it has E: the
 *   happens-before chain control (xfer->epoch, then route_epoch) -> publisher (reads
 *   route_epoch >= E) -> ring -> N means that whenever a message is stamped E or later, N
 *   already sees xfer->epoch set. So "epoch not set yet" means "stamped below E".
 * - Fence: every worker, when it handles RI_FENCE, has finished every route made under an
 *   epoch below E; it sends RI_FENCE_ACK to O on its own ring to O, behind everything it sent
 *   O before (rings and parked items keep order). The old core counts the control thread's
 *   RI_FENCE (behind the control thread's own earlier items, and standing for O itself) and
 *   the other workers' acks; with all of them in, nothing below E can still reach O: it drops
 *   the forwarder and sends RI_FWD_END to N (behind its last RI_FWD). N keeps E as the
 *   session's min_epoch (later direct matches are all E or later; older ones still in flight
 *   came forwarded) and frees the move.
 * Costs: two extra loads of route_epoch per routed message (a line written only at moves),
 * one check per direct match of a session that moved; per move 2 x workers ring items.
 * A chain of moves composes: a forwarder that is itself forwarded to applies its own filter
 * first, and ends only after the move that brought the session to it has ended (its
 * predecessor forwards late, after the fence acks). Limits: QoS 0 forwarded before N has its
 * claim answer is dropped like QoS 0 for an offline session; per-publisher order may differ
 * between the forwarded and the direct copies around the move.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "eng_internal.h"

static void subs_free(struct eng_sub *s)
{
	while (s) {
		struct eng_sub *n = s->next;
		free(s);
		s = n;
	}
}

/* Old core, at takeover: the move for old's subscriptions (copied), or NULL when out of
 * memory (then the session moves the old way: the index at once, without forwarding). */
struct eng_xfer *eng_xfer_new(struct eng_client *old, struct eng_claim *cl)
{
	struct eng_xfer *xf = calloc(1, sizeof(*xf));
	struct eng_sub **tail;

	if (!xf)
		return NULL;
	tail = &xf->subs;
	for (const struct eng_sub *s = old->subs; s; s = s->next) {
		struct eng_sub *d = malloc(sizeof(*d) + s->len + 1u);
		if (!d) {
			subs_free(xf->subs);
			free(xf);
			return NULL;
		}
		memcpy(d, s, sizeof(*d) + s->len + 1u);
		d->next = NULL;
		*tail = d;
		tail = &d->next;
	}
	atomic_init(&xf->epoch, 0);
	xf->old = old;
	xf->client = cl->client;
	xf->old_core = (uint16_t)old->w->id;
	xf->new_core = cl->new_core;
	return xf;
}

/* New core, once the session's subscriptions are in its mt_local: keeps c allocated for the
 * forwarded messages to come and asks the control thread to move the index. */
void eng_xfer_adopted(struct eng_worker *w, struct eng_client *c, struct eng_xfer *xf)
{
	struct eng_ritem it = {.type = RI_ADOPTED, .p = xf};

	eng_client_pin(c); /* until RI_FWD_END */
	/* made at CONNECT: the client asked to resume a session */
	if (!c->cold)
		ENG_DIE("session move into a client without cold state");
	c->cold->xfer = xf;
	eng_post(w->eng, w->id, w->eng->nworkers, &it, false);
}

/* Control thread: moves the index from the old core to the new one under a new epoch. */
void eng_xfer_move(struct tachyon *e, struct eng_xfer *xf)
{
	uint64_t epoch;

	for (struct eng_sub *s = xf->subs; s; s = s->next)
		if (mt_index_add(e->index, s->filter, s->len, xf->new_core) != 0)
			ENG_ERR("session move: index add of '%s' failed", s->filter);
	epoch = atomic_load_explicit(&e->route_epoch, memory_order_relaxed) + 1;
	/* relaxed: published by the release store below */
	atomic_store_explicit(&xf->epoch, epoch, memory_order_relaxed);
	/* release: pairs with the acquire load in eng_route(): a route that reads this epoch
	 * sees the additions above */
	atomic_store_explicit(&e->route_epoch, epoch, memory_order_release);
	/* release fence: pairs with the acquire fence in eng_route(): a route whose match sees
	 * a removal below re-reads route_epoch as this epoch or later */
	atomic_thread_fence(memory_order_release);
	for (struct eng_sub *s = xf->subs; s; s = s->next)
		if (mt_index_del(e->index, s->filter, s->len, xf->old_core) != 0)
			ENG_ERR("session move: index del of '%s' failed", s->filter);
	subs_free(xf->subs);
	xf->subs = NULL;
	for (unsigned i = 0; i < e->nworkers; i++) {
		struct eng_ritem it = {.type = RI_FENCE, .p = xf};
		eng_post(e, e->nworkers, i, &it, false);
	}
}

/* Old core: the forwarder has passed on its last message; the new core gets RI_FWD_END. */
static void fwd_finish(struct eng_worker *w, struct eng_xfer *xf)
{
	struct eng_client *old = xf->old;
	struct eng_ritem it = {.type = RI_FWD_END, .p = xf};

	mt_local_drop_session(w->local, old);
	old->state = CS_GONE;
	eng_post(w->eng, w->id, xf->new_core, &it, false);
	eng_client_put(old); /* xf is the new core's from here */
}

/* RI_FENCE on any worker, RI_FENCE_ACK on the old core. */
void eng_xfer_fence(struct eng_worker *w, struct eng_xfer *xf)
{
	struct tachyon *e = w->eng;

	if (w->id != xf->old_core) {
		struct eng_ritem it = {.type = RI_FENCE_ACK, .p = xf};
		eng_post(e, w->id, xf->old_core, &it, false);
		return;
	}
	if (++xf->acks < e->nworkers)
		return;
	/* Every core routes past the move: nothing routed reaches the forwarder any more. But
	 * when the session came here by a move that has not ended (a chain: P -> here -> N),
	 * P's forwarder still passes on messages routed before that move, and they come after
	 * any fence ack (P forwards what it drains from other cores' rings, later): this
	 * forwarder must pass them on too, so it ends with the incoming move (eng_xfer_end).
	 * Ending it here lost them: they were delivered to a session already gone. */
	if (xf->old->cold && xf->old->cold->xfer) {
		xf->old->end_after_xfer = true; /* its xfer_out is xf */
		return;
	}
	fwd_finish(w, xf);
}

/* New core: the old core forwards nothing more. */
void eng_xfer_end(struct eng_worker *w, struct eng_xfer *xf)
{
	struct eng_client *c = xf->client;

	/* relaxed: set before the fences that led here */
	c->cold->min_epoch = atomic_load_explicit(&xf->epoch, memory_order_relaxed);
	if (c->cold->xfer == xf)
		c->cold->xfer = NULL;
	free(xf);
	if (c->end_after_xfer) {
		/* c forwards to a later core and waited for this end (eng_xfer_fence) */
		c->end_after_xfer = false;
		fwd_finish(w, c->xfer_out);
	}
	eng_client_unpin(c);
}

/* The move's epoch as this session's core sees it; 0: not set yet (see the design). */
static uint64_t move_epoch(const struct eng_client *c)
{
	if (!c->cold)
		return 0; /* never moved */
	if (!c->cold->xfer)
		return c->cold->min_epoch;
	/* acquire: pairs with the control thread's release store of route_epoch (through the
	 * publisher and the ring), see "N may see messages before it has E" */
	return atomic_load_explicit(&c->cold->xfer->epoch, memory_order_acquire);
}

bool eng_xfer_direct_ok(const struct eng_client *c, const struct eng_msg *m)
{
	uint64_t e = move_epoch(c);
	return e && m->epoch >= e;
}

/* Old core: a message the forwarder fwd matched goes to its session on the new core. */
void eng_xfer_forward(struct eng_client *fwd, struct eng_msg *m, uint8_t qos, bool retain,
		      const uint32_t *ids, uint32_t nids, uint32_t flags)
{
	struct eng_worker *w = fwd->w;
	struct eng_qent *q = eng_qent_msg(w, m, qos, retain, ids, nids);

	if (!q) {
		ENG_STAT_INC(&w->stats, drop_queue_full);
		return;
	}
	/* xfer_out lives until fwd_finish(): its client and new_core are fixed */
	struct eng_ritem it = {.type = RI_FWD, .p = q, .a = flags,
			       .b = (uintptr_t)fwd->xfer_out->client};
	eng_post(w->eng, w->id, fwd->xfer_out->new_core, &it, false);
}

/* New core: RI_FWD. */
void eng_xfer_fwd_in(struct eng_worker *w, const struct eng_ritem *it)
{
	struct eng_client *c = (struct eng_client *)(uintptr_t)it->b;
	struct eng_qent *q = it->p;
	struct eng_msg *m = q->msg;
	uint64_t e = move_epoch(c);

	if (!(it->a & XF_SHARE) && e && m->epoch >= e) {
		/* routed after the move: this core got it directly */
	} else if ((it->a & XF_NO_LOCAL) && m->origin_core == w->id && m->publisher == c) {
		/* the session's own publish, come back through the old core */
	} else if (c->state == CS_MOVED) {
		eng_xfer_forward(c, m, q->qos, q->retain, q->ids, q->nids, it->a);
	} else if (c->state == CS_GONE) {
		/* the fences (and eng_xfer_fence's wait) rule this out; were it to happen while
		 * the move still pins c, it would be a loss: say so */
		ENG_ERR("client '%s': a forwarded message reached a session that is gone",
			c->client_id);
	} else {
		eng_deliver(c, m, q->qos, q->retain, q->ids, q->nids);
	}
	eng_queue_free(w, q);
}

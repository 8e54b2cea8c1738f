/* SPDX-License-Identifier: MIT */
/*
 * Messages and queue entries: creation from a decoded PUBLISH (or a will), reference
 * counting, and the per-worker free lists that keep malloc off the data path.
 *
 * A message is one allocation: the header, its decoded properties (only when it has some),
 * then the topic, the payload, the MQTT 5 property block and, for QoS 0 packets that can be
 * forwarded unchanged, the packet bytes as received (one copy then serves all four views).
 * Messages up to 128 KiB come from the creating worker's pool (five block sizes, a pool per
 * size class: struct eng_mpool), and go back to it when the last reference is dropped. On
 * another worker that is a remote free: the block waits in a chain for its home worker and
 * the chain is pushed onto the home's lock-free return stack of its class (one CAS per
 * ENG_RET_BATCH blocks, or per loop iteration); the home takes the whole stack (one
 * exchange) when its pool of that class runs dry. So a publisher's core and its
 * subscribers' core trade blocks without malloc, free, or a cache line bounced per message.
 * Threads that are no worker (control, host, auth) and workers being destroyed free blocks.
 */
#include <stdlib.h>
#include <string.h>

#include "eng_internal.h"

_Thread_local struct eng_worker *eng_cur_worker;

static void rebase(struct eng_str *s, const uint8_t *from, uint8_t *to)
{
	if (s->len)
		s->p = to + (s->p - from);
	else
		s->p = NULL;
}

/* Points the property views of @pr (into bytes at @from) at their copy at @to. */
static void rebase_props(struct eng_props *pr, const uint8_t *from, uint8_t *to)
{
	if (!pr->raw.len) {
		pr->raw = (struct eng_str){NULL, 0};
		pr->user_count = 0;
		return;
	}
	rebase(&pr->content_type, from, to);
	rebase(&pr->response_topic, from, to);
	rebase(&pr->correlation_data, from, to);
	rebase(&pr->raw, from, to);
}

/* Whether @s is empty or lies within the @len bytes at @p. */
static bool within(const struct eng_str *s, const uint8_t *p, size_t len)
{
	return !s->len || (s->p >= p && s->p + s->len <= p + len);
}

/* The expiry deadline of a message made from @pr. */
static struct eng_msg *msg_finish(struct eng_msg *m, const struct eng_props *pr, uint64_t now_ms)
{
	m->expiry_s = 0;
	m->expire_ms = 0;
	if (pr->present & ENG_PBIT(ENG_PROP_MESSAGE_EXPIRY)) {
		m->expiry_s = pr->message_expiry;
		m->expire_ms = now_ms + (uint64_t)pr->message_expiry * 1000u;
	}
	return m;
}

/* The pool size class of a block of @need bytes, or ENG_MSG_NO_CLASS. */
static unsigned msg_class(size_t need)
{
	for (unsigned k = 0; k < ENG_MSG_CLASSES; k++)
		if (need <= (size_t)ENG_MSG_POOL_SIZE << (2 * k))
			return k;
	return ENG_MSG_NO_CLASS;
}

/* A free block of class k from w's pool, or NULL when it has none. */
static struct eng_msg *mpool_take(struct eng_worker *w, unsigned k)
{
	struct eng_mpool *p = &w->mp[k];
	struct eng_msg *m;

	if (!p->free && !p->back) {
		/* back.n counted what was taken since the last exchange: now all used */
		atomic_fetch_sub_explicit(&w->back[k].n, p->back_taken, memory_order_relaxed);
		p->back_taken = 0;
		p->back = atomic_exchange_explicit(&w->back[k].head, NULL, memory_order_acquire);
	}
	if (p->free) {
		m = p->free;
		p->free = *(struct eng_msg **)(void *)m;
		p->free_n--;
		return m;
	}
	if (p->back) {
		m = p->back;
		p->back = *(struct eng_msg **)(void *)m;
		p->back_taken++;
		return m;
	}
	return NULL;
}

/* The properties a stored message passes on: none of the per-hop ones. */
#define MSG_PROPS_DROP                                                                             \
	(ENG_PBIT(ENG_PROP_TOPIC_ALIAS) | ENG_PBIT(ENG_PROP_SUBSCRIPTION_ID) |                     \
	 ENG_PBIT(ENG_PROP_WILL_DELAY))

struct eng_msg *eng_msg_new(struct eng_worker *w, const struct eng_publish *pub,
			    const struct eng_str *topic, uint8_t version, const uint8_t *raw,
			    size_t rawlen, uint64_t now_ms)
{
	const struct eng_props *pr = &pub->props;
	/* A PUBLISH kept for byte forwarding holds its topic, payload and properties: one copy
	 * of the packet serves all four views. */
	bool in_raw = rawlen && within(topic, raw, rawlen) && within(&pub->payload, raw, rawlen) &&
		      within(&pr->raw, raw, rawlen);
	/* most messages have no properties: they do without the 232-byte struct */
	bool has_props = (pr->present & ~MSG_PROPS_DROP) != 0;
	size_t need = sizeof(struct eng_msg) + (has_props ? sizeof(struct eng_props) : 0) + rawlen +
		      (in_raw ? 0 : topic->len + pub->payload.len + pr->raw.len);
	struct eng_msg *m = NULL;
	uint8_t *d;

	unsigned k = msg_class(need);
	if (k != ENG_MSG_NO_CLASS) {
		m = w ? mpool_take(w, k) : NULL;
		if (!m) {
			m = malloc((size_t)ENG_MSG_POOL_SIZE << (2 * k));
			if (w)
				ENG_STAT_INC(&w->stats, pool_fallback);
		}
	} else {
		m = malloc(need);
	}
	if (!m)
		return NULL;
	m->cls = (uint8_t)k;
	atomic_init(&m->refs, 1);
	m->qos = pub->qos;
	m->retain = pub->retain;
	m->version = version;
	m->origin_core = w ? (uint8_t)w->id : 0;
	m->home = w && k != ENG_MSG_NO_CLASS ? (uint8_t)w->id : ENG_NO_HOME;
	m->publisher = NULL;
	m->publisher_key = 0;
	m->epoch = 0;
	d = m->data;
	struct eng_props *mp = NULL;
	if (has_props) {
		mp = (struct eng_props *)(void *)d; /* data[] follows a uint64_t: aligned */
		*mp = *pr;
		mp->user = NULL;
		mp->sub_id = NULL;
		mp->sub_id_count = 0;
		mp->present &= ~MSG_PROPS_DROP;
		d += sizeof(*mp);
	}
	m->props = mp;
	if (in_raw) {
		memcpy(d, raw, rawlen);
		m->raw = (struct eng_str){d, (uint32_t)rawlen};
		m->topic = (struct eng_str){d + (topic->p - raw), topic->len};
		m->payload = (struct eng_str){pub->payload.len ? d + (pub->payload.p - raw) : d,
					      pub->payload.len};
		if (mp)
			rebase_props(mp, raw, d);
		return msg_finish(m, pr, now_ms);
	}
	memcpy(d, topic->p, topic->len);
	m->topic = (struct eng_str){d, topic->len};
	d += topic->len;
	if (pub->payload.len)
		memcpy(d, pub->payload.p, pub->payload.len);
	m->payload = (struct eng_str){d, pub->payload.len};
	d += pub->payload.len;
	if (mp) {
		if (pr->raw.len)
			memcpy(d, pr->raw.p, pr->raw.len);
		rebase_props(mp, pr->raw.p, d);
		d += pr->raw.len;
	}
	if (rawlen) {
		memcpy(d, raw, rawlen);
		m->raw = (struct eng_str){d, (uint32_t)rawlen};
	} else {
		m->raw = (struct eng_str){NULL, 0};
	}
	return msg_finish(m, pr, now_ms);
}

/* Frees a chain linked through the blocks' first word. */
static void chain_free(struct eng_msg *m)
{
	while (m) {
		struct eng_msg *n = *(struct eng_msg **)(void *)m;
		free(m);
		m = n;
	}
}

/* Pushes w's chain of class-k blocks for worker @h onto h's return stack. */
static void ret_send(struct eng_worker *w, unsigned k, unsigned h)
{
	struct eng_mpool *p = &w->mp[k];
	struct eng_mpool_back *home = &w->eng->workers[h]->back[k];
	struct eng_msg *first = p->ret_first[h], *last = p->ret_last[h];
	struct eng_msg *top;

	/* the home keeps at most about ENG_MSG_BACK_MAX >> k returned blocks (the steady flow
	 * needs a few chains); past that (a burst drained), they are freed like the surplus of
	 * the local pool */
	if (atomic_load_explicit(&home->n, memory_order_relaxed) >= ENG_MSG_BACK_MAX >> k) {
		chain_free(first);
		goto sent;
	}
	atomic_fetch_add_explicit(&home->n, p->ret_n[h], memory_order_relaxed);
	top = atomic_load_explicit(&home->head, memory_order_relaxed);
	do
		*(struct eng_msg **)(void *)last = top;
	/* release: the chain's links (and the blocks' last use here) before the home sees it */
	while (!atomic_compare_exchange_weak_explicit(&home->head, &top, first,
						      memory_order_release, memory_order_relaxed));
sent:
	p->ret_first[h] = p->ret_last[h] = NULL;
	p->ret_n[h] = 0;
	p->ret_dirty &= ~(1ull << h);
	if (!p->ret_dirty)
		w->ret_dirty_cls &= (uint8_t)~(1u << k);
}

static void ret_add(struct eng_worker *w, struct eng_msg *m)
{
	unsigned h = m->home, k = m->cls;
	struct eng_mpool *p = &w->mp[k];

	*(struct eng_msg **)(void *)m = p->ret_first[h];
	p->ret_first[h] = m;
	if (!p->ret_last[h])
		p->ret_last[h] = m;
	p->ret_dirty |= 1ull << h;
	w->ret_dirty_cls |= (uint8_t)(1u << k);
	if (++p->ret_n[h] == ENG_RET_BATCH)
		ret_send(w, k, h);
}

void eng_msg_ret_flush(struct eng_worker *w)
{
	for (unsigned k = 0; k < ENG_MSG_CLASSES; k++)
		while (w->mp[k].ret_dirty)
			ret_send(w, k, (unsigned)__builtin_ctzll(w->mp[k].ret_dirty));
}

void eng_msg_unref(struct eng_msg *m)
{
	struct eng_worker *w;

	/* acq_rel: releases this holder's accesses, and the last one acquires all others'
	 * (pairs with the fetch_sub of every other holder) before freeing */
	if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
		return;
	w = eng_cur_worker;
	if (m->cls == ENG_MSG_NO_CLASS || !w) {
		free(m);
		return;
	}
	if (m->home != w->id && m->home != ENG_NO_HOME) {
		if (w->exiting) {
			free(m);
			return;
		}
		ret_add(w, m);
		return;
	}
	struct eng_mpool *p = &w->mp[m->cls];
	if (p->free_n < ENG_MSG_POOL_MAX >> (2 * m->cls)) {
		*(struct eng_msg **)(void *)m = p->free;
		p->free = m;
		p->free_n++;
		return;
	}
	free(m);
}

struct eng_qent *eng_qent_msg(struct eng_worker *w, struct eng_msg *m, uint8_t qos, bool retain,
			      const uint32_t *ids, uint32_t nids)
{
	struct eng_qent *q = eng_qent_get(w);

	if (!q)
		return NULL;
	eng_msg_ref(m);
	q->msg = m;
	q->qos = qos;
	q->retain = retain;
	q->nids = (uint8_t)(nids > ENG_QENT_IDS ? ENG_QENT_IDS : nids);
	for (uint32_t i = 0; i < q->nids; i++)
		q->ids[i] = ids[i];
	return q;
}

struct eng_qent *eng_qent_get(struct eng_worker *w)
{
	struct eng_qent *q = w->qent_pool;

	if (q) {
		w->qent_pool = q->next;
		w->qent_pool_n--;
	} else {
		q = malloc(sizeof(*q));
		ENG_STAT_INC(&w->stats, pool_fallback);
		if (!q)
			return NULL;
	}
	memset(q, 0, sizeof(*q));
	return q;
}

void eng_qent_put(struct eng_worker *w, struct eng_qent *q)
{
	if (w && w->qent_pool_n < ENG_QENT_POOL_MAX) {
		q->next = w->qent_pool;
		w->qent_pool = q;
		w->qent_pool_n++;
		return;
	}
	free(q);
}

void eng_pools_free(struct eng_worker *w)
{
	for (unsigned k = 0; k < ENG_MSG_CLASSES; k++) {
		struct eng_mpool *p = &w->mp[k];
		chain_free(p->free);
		chain_free(p->back);
		chain_free(atomic_exchange_explicit(&w->back[k].head, NULL, memory_order_acquire));
		for (unsigned h = 0; h < ENG_MAX_WORKERS; h++)
			chain_free(p->ret_first[h]);
		memset(p, 0, sizeof(*p));
	}
	w->ret_dirty_cls = 0;
	while (w->qent_pool) {
		struct eng_qent *q = w->qent_pool;
		w->qent_pool = q->next;
		free(q);
	}
	w->qent_pool_n = 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * Messages and queue entries: creation from a decoded PUBLISH (or a will), reference
 * counting, and the per-worker free lists that keep malloc off the data path.
 *
 * A message is one allocation: the header, then the topic, the payload, the MQTT 5 property
 * block and, for QoS 0 packets that can be forwarded unchanged, the packet bytes as received.
 * Small messages come from the creating worker's free list; whichever thread drops the last
 * reference puts it on its own worker's list (blocks are plain malloc blocks of one size, so
 * they may migrate between workers; each list is capped) or frees it.
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

struct eng_msg *eng_msg_new(struct eng_worker *w, const struct eng_publish *pub,
			    const struct eng_str *topic, uint8_t version, const uint8_t *raw,
			    size_t rawlen, uint64_t now_ms)
{
	const struct eng_props *pr = &pub->props;
	size_t need = sizeof(struct eng_msg) + topic->len + pub->payload.len + pr->raw.len + rawlen;
	struct eng_msg *m = NULL;
	uint8_t *d;

	if (need <= ENG_MSG_POOL_SIZE) {
		if (w && w->msg_pool) {
			m = w->msg_pool;
			w->msg_pool = *(struct eng_msg **)(void *)m;
			w->msg_pool_n--;
		} else {
			m = malloc(ENG_MSG_POOL_SIZE);
			if (w)
				ENG_STAT_INC(&w->stats, pool_fallback);
		}
		if (!m)
			return NULL;
		m->alloc = ENG_MSG_POOL_SIZE;
	} else {
		m = malloc(need);
		if (!m)
			return NULL;
		m->alloc = (uint32_t)need;
	}
	atomic_init(&m->refs, 1);
	m->qos = pub->qos;
	m->retain = pub->retain;
	m->version = version;
	m->origin_core = w ? (uint8_t)w->id : 0;
	m->publisher = NULL;
	m->publisher_key = 0;
	m->epoch = 0;
	d = m->data;
	memcpy(d, topic->p, topic->len);
	m->topic = (struct eng_str){d, topic->len};
	d += topic->len;
	if (pub->payload.len)
		memcpy(d, pub->payload.p, pub->payload.len);
	m->payload = (struct eng_str){d, pub->payload.len};
	d += pub->payload.len;
	m->props = *pr;
	m->props.user = NULL;
	m->props.sub_id = NULL;
	m->props.sub_id_count = 0;
	m->props.present &= ~(ENG_PBIT(ENG_PROP_TOPIC_ALIAS) | ENG_PBIT(ENG_PROP_SUBSCRIPTION_ID) |
			      ENG_PBIT(ENG_PROP_WILL_DELAY));
	if (pr->raw.len) {
		memcpy(d, pr->raw.p, pr->raw.len);
		rebase(&m->props.content_type, pr->raw.p, d);
		rebase(&m->props.response_topic, pr->raw.p, d);
		rebase(&m->props.correlation_data, pr->raw.p, d);
		m->props.raw.p = d;
		d += pr->raw.len;
	} else {
		m->props.raw = (struct eng_str){NULL, 0};
		m->props.user_count = 0;
	}
	if (rawlen) {
		memcpy(d, raw, rawlen);
		m->raw = (struct eng_str){d, (uint32_t)rawlen};
	} else {
		m->raw = (struct eng_str){NULL, 0};
	}
	m->expiry_s = 0;
	m->expire_ms = 0;
	if (pr->present & ENG_PBIT(ENG_PROP_MESSAGE_EXPIRY)) {
		m->expiry_s = pr->message_expiry;
		m->expire_ms = now_ms + (uint64_t)pr->message_expiry * 1000u;
	}
	return m;
}

void eng_msg_unref(struct eng_msg *m)
{
	struct eng_worker *w;

	/* acq_rel: releases this holder's accesses, and the last one acquires all others'
	 * (pairs with the fetch_sub of every other holder) before freeing */
	if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
		return;
	w = eng_cur_worker;
	if (m->alloc == ENG_MSG_POOL_SIZE && w && w->msg_pool_n < ENG_MSG_POOL_MAX) {
		*(struct eng_msg **)(void *)m = w->msg_pool;
		w->msg_pool = m;
		w->msg_pool_n++;
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
	while (w->msg_pool) {
		struct eng_msg *m = w->msg_pool;
		w->msg_pool = *(struct eng_msg **)(void *)m;
		free(m);
	}
	w->msg_pool_n = 0;
	while (w->qent_pool) {
		struct eng_qent *q = w->qent_pool;
		w->qent_pool = q->next;
		free(q);
	}
	w->qent_pool_n = 0;
}

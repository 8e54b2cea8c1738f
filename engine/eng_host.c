/* SPDX-License-Identifier: MIT */
/*
 * The host as a publisher and a subscriber (tachyon_publish, tachyon_subscribe).
 *
 * Design: the host is one more destination of the global index: core bit nworkers of
 * mt_index (one past the workers) means "the host subscribed to a matching filter". Workers
 * route to it like to any other core: their RI_PUB item lands on the worker -> control ring
 * (the existing SPSC ring, nothing new on the worker data path), and the control thread
 * matches the host's own mt_local and calls the callbacks. The host's subscriptions live in
 * that mt_local (filter -> struct eng_host_sub), written and read by the control thread only.
 *
 * Host publishes and (un)subscriptions enter through one bounded multi-producer,
 * single-consumer ring (struct eng_hostq, below): any number of host threads push, the
 * control thread pops; a full ring is -EAGAIN, never more memory. It is written with C11
 * atomics rather than liburcu's wfcqueue, whose inline-asm ordering ThreadSanitizer cannot
 * see, and whose nodes would need a separate bound.
 * A publish is turned into an eng_msg on the calling thread (one malloc there, none on a
 * worker): the PUBLISH is encoded and decoded again with the engine's own codec, which
 * validates the properties exactly as for a client and lays out the property block the
 * message keeps. The control thread then routes it like a client's publish (eng_ctl_route:
 * workers, host, shared groups, retained store).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "eng_internal.h"

enum { HR_PUB = 1, HR_SUB, HR_UNSUB };

struct host_req {
	uint8_t kind;
	unsigned flags;
	struct eng_msg *msg; /* HR_PUB: one reference */
	tachyon_msg_fn fn;
	void *ctx;
	uint16_t len;
	char filter[];
};

/* ---------------------------------------------------------------------------------------------
 * The host queue: a bounded MPSC ring of ENG_HOST_QUEUE slots (a power of two).
 *
 * Each slot carries a sequence number that says whose turn it is: seq == pos means free for
 * the producer that claims position pos, seq == pos + 1 means filled for the consumer at
 * pos, and the consumer hands it back as pos + size for the next lap. Producers claim a
 * position by CAS on tail (so no two write the same slot), fill it, then publish it with a
 * release store of seq; the single consumer reads seq with acquire, takes the request and
 * hands the slot back. A producer that claimed a slot but has not published it yet makes the
 * consumer stop early ("empty"); that producer wakes the control thread right after, so
 * nothing waits unnoticed. Per producer thread, requests keep their order (positions are
 * claimed in program order and consumed in position order).
 */
struct host_slot {
	_Atomic uint64_t seq;
	struct host_req *r;
};

struct eng_hostq {
	alignas(ENG_CACHE_LINE) _Atomic uint64_t tail; /* next position to claim (producers) */
	alignas(ENG_CACHE_LINE) uint64_t head;         /* next position to take (consumer) */
	alignas(ENG_CACHE_LINE) struct host_slot slots[ENG_HOST_QUEUE];
};

static struct host_req *hostq_pop(struct eng_hostq *q)
{
	struct host_slot *s = &q->slots[q->head & (ENG_HOST_QUEUE - 1)];
	struct host_req *r;

	/* acquire: pairs with the producer's release store that published the slot */
	if (atomic_load_explicit(&s->seq, memory_order_acquire) != q->head + 1)
		return NULL;
	r = s->r;
	/* release: pairs with a producer's acquire load a lap later (our read of r is done) */
	atomic_store_explicit(&s->seq, q->head + ENG_HOST_QUEUE, memory_order_release);
	q->head++;
	return r;
}

static int hostq_push(struct eng_hostq *q, struct host_req *r)
{
	/* relaxed: the CAS below decides; a stale value only costs a retry */
	uint64_t pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
	struct host_slot *s;

	for (;;) {
		s = &q->slots[pos & (ENG_HOST_QUEUE - 1)];
		/* acquire: pairs with the consumer's release that handed the slot back */
		uint64_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
		int64_t dif = (int64_t)(seq - pos);
		if (dif == 0) {
			/* relaxed: claims the position only; the slot's seq orders the data */
			if (atomic_compare_exchange_weak_explicit(&q->tail, &pos, pos + 1,
								  memory_order_relaxed,
								  memory_order_relaxed))
				break;
		} else if (dif < 0) {
			return -EAGAIN; /* this lap's slot is still full: so is the ring */
		} else {
			pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
		}
	}
	s->r = r;
	/* release: pairs with the consumer's acquire load in hostq_pop() */
	atomic_store_explicit(&s->seq, pos + 1, memory_order_release);
	return 0;
}

int eng_host_init(struct tachyon *e)
{
	struct eng_host *h = &e->host;

	h->q = aligned_alloc(ENG_CACHE_LINE, sizeof(*h->q));
	h->local = mt_local_create(&e->mtcfg);
	if (!h->q || !h->local)
		return -ENOMEM;
	atomic_init(&h->q->tail, 0);
	h->q->head = 0;
	for (uint64_t i = 0; i < ENG_HOST_QUEUE; i++) {
		atomic_init(&h->q->slots[i].seq, i);
		h->q->slots[i].r = NULL;
	}
	return 0;
}

void eng_host_fini(struct tachyon *e)
{
	struct eng_host *h = &e->host;
	struct host_req *r;

	while (h->q && (r = hostq_pop(h->q)) != NULL) {
		if (r->msg)
			eng_msg_unref(r->msg);
		free(r);
	}
	while (h->subs) {
		struct eng_host_sub *s = h->subs;
		h->subs = s->next;
		free(s);
	}
	mt_local_destroy(h->local);
	h->local = NULL;
	free(h->q);
	h->q = NULL;
}

bool eng_host_empty(struct tachyon *e)
{
	struct eng_hostq *q = e->host.q;
	/* acquire: as in hostq_pop() */
	return atomic_load_explicit(&q->slots[q->head & (ENG_HOST_QUEUE - 1)].seq,
				    memory_order_acquire) != q->head + 1;
}

static int host_enqueue(struct tachyon *e, struct host_req *r)
{
	int rc;

	/* relaxed: a hint; what is queued after the control thread stopped draining is freed by
	 * tachyon_destroy() */
	if (atomic_load_explicit(&e->stop_req, memory_order_relaxed))
		return -ESHUTDOWN;
	rc = hostq_push(e->host.q, r);
	if (rc == 0)
		eng_ctl_wake(e);
	return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Messages for callbacks and hooks.
 */
static struct tachyon_str view(struct eng_str s)
{
	return (struct tachyon_str){(const char *)s.p, s.len};
}

void eng_message_view(struct tachyon_message *tm, const struct eng_str *topic,
		      const struct eng_str *payload, const struct eng_props *props, uint8_t qos,
		      bool retain, uint32_t expiry_left)
{
	memset(tm, 0, sizeof(*tm));
	tm->topic = view(*topic);
	tm->payload = view(*payload);
	tm->qos = qos;
	tm->retain = retain;
	tm->message_expiry = expiry_left;
	if (!props)
		return;
	if (props->present & ENG_PBIT(ENG_PROP_CONTENT_TYPE))
		tm->content_type = view(props->content_type);
	if (props->present & ENG_PBIT(ENG_PROP_RESPONSE_TOPIC))
		tm->response_topic = view(props->response_topic);
	if (props->present & ENG_PBIT(ENG_PROP_CORRELATION_DATA))
		tm->correlation_data = view(props->correlation_data);
	if (props->user_count) {
		tm->props_raw_ = props->raw.p;
		tm->props_raw_len_ = props->raw.len;
	}
}

bool tachyon_message_user_prop(const struct tachyon_message *m, size_t *cursor,
			       struct tachyon_str *key, struct tachyon_str *value)
{
	struct eng_str raw = {m->props_raw_, (uint32_t)m->props_raw_len_};
	struct eng_iter it = eng_iter_of(raw);
	struct eng_str k, v;

	if (!m->props_raw_ || *cursor >= m->props_raw_len_)
		return false;
	it.p += *cursor;
	if (!eng_user_prop_next(&it, &k, &v))
		return false;
	*cursor = (size_t)(it.p - (const uint8_t *)m->props_raw_);
	*key = view(k);
	*value = view(v);
	return true;
}

/* ---------------------------------------------------------------------------------------------
 * Publish.
 */

/* Builds the message of a host publish; 0 or -errno. */
static int host_msg(struct tachyon *e, const char *topic, const void *payload, size_t len, int qos,
		    bool retain, const struct tachyon_pub_props *hp, struct eng_msg **out)
{
	struct eng_packet pkt = {.type = ENG_PUBLISH};
	struct eng_publish *pub = &pkt.u.publish;
	struct eng_props *pr = &pub->props;
	struct eng_codec_ctx ctx = {
		.version = ENG_V5, .role = ENG_ROLE_SERVER, .max_packet = e->cfg.max_packet_size};
	struct eng_user_prop *up = NULL;
	struct eng_decode_err derr;
	struct eng_packet back;
	uint8_t *buf = NULL;
	const char *why = NULL;
	size_t tlen;
	int size, rc;

	if (!topic || (!payload && len) || qos < 0 || qos > (int)e->cfg.max_qos ||
	    (retain && !e->cfg.retain_available))
		return -EINVAL;
	tlen = strlen(topic);
	if (mt_topic_name_check(&e->mtcfg, topic, tlen, &why) != 0)
		return -EINVAL;
	if (len > ENG_VBI_MAX)
		return -EMSGSIZE;
	pub->qos = (uint8_t)qos;
	pub->retain = retain;
	pub->packet_id = qos ? 1 : 0;
	pub->topic = (struct eng_str){(const uint8_t *)topic, (uint32_t)tlen};
	pub->payload = (struct eng_str){payload, (uint32_t)len};
	if (hp) {
		if (hp->message_expiry) {
			pr->present |= ENG_PBIT(ENG_PROP_MESSAGE_EXPIRY);
			pr->message_expiry = hp->message_expiry;
		}
		if (hp->payload_utf8) {
			pr->present |= ENG_PBIT(ENG_PROP_PAYLOAD_FORMAT);
			pr->payload_format = 1;
		}
		if (hp->content_type) {
			pr->present |= ENG_PBIT(ENG_PROP_CONTENT_TYPE);
			pr->content_type = (struct eng_str){(const uint8_t *)hp->content_type,
							    (uint32_t)strlen(hp->content_type)};
		}
		if (hp->response_topic) {
			pr->present |= ENG_PBIT(ENG_PROP_RESPONSE_TOPIC);
			pr->response_topic = (struct eng_str){(const uint8_t *)hp->response_topic,
							      (uint32_t)strlen(hp->response_topic)};
		}
		if (hp->correlation_data) {
			pr->present |= ENG_PBIT(ENG_PROP_CORRELATION_DATA);
			pr->correlation_data = (struct eng_str){hp->correlation_data,
								(uint32_t)hp->correlation_len};
		}
		if (hp->user_count) {
			if (!hp->user)
				return -EINVAL;
			up = calloc(hp->user_count, sizeof(*up));
			if (!up)
				return -ENOMEM;
			for (unsigned i = 0; i < hp->user_count; i++) {
				if (!hp->user[i].key || !hp->user[i].value) {
					free(up);
					return -EINVAL;
				}
				up[i].key = (struct eng_str){(const uint8_t *)hp->user[i].key,
							     (uint32_t)strlen(hp->user[i].key)};
				up[i].val = (struct eng_str){(const uint8_t *)hp->user[i].value,
							     (uint32_t)strlen(hp->user[i].value)};
			}
			pr->present |= ENG_PBIT(ENG_PROP_USER);
			pr->user = up;
			pr->user_count = hp->user_count;
		}
	}
	/* encode, then decode with the server's rules: the same validation as a client's
	 * PUBLISH, and the property block in the layout eng_msg_new() keeps */
	size = eng_encode_size(&pkt, ENG_V5);
	if (size < 0) {
		rc = size == -EMSGSIZE ? -EMSGSIZE : -EINVAL;
		goto out_props;
	}
	buf = malloc((size_t)size);
	if (!buf) {
		rc = -ENOMEM;
		goto out_props;
	}
	if (eng_encode(&pkt, ENG_V5, buf, (size_t)size) != size)
		ENG_DIE("encoder size mismatch");
	rc = eng_decode(&ctx, buf, (size_t)size, &back, &derr);
	if (rc < 0) {
		rc = derr.reason == ENG_RC_PACKET_TOO_LARGE ? -EMSGSIZE : -EINVAL;
		goto out_buf;
	}
	*out = eng_msg_new(NULL, &back.u.publish, &back.u.publish.topic, 0, NULL, 0, eng_now_ms());
	rc = *out ? 0 : -ENOMEM;
out_buf:
	free(buf);
out_props:
	free(up);
	return rc;
}

int tachyon_publish(struct tachyon *e, const char *topic, const void *payload, size_t len, int qos,
		    bool retain, const struct tachyon_pub_props *props)
{
	struct host_req *r;
	struct eng_msg *m;
	int rc;

	rc = host_msg(e, topic, payload, len, qos, retain, props, &m);
	if (rc != 0)
		return rc;
	r = calloc(1, sizeof(*r));
	if (!r) {
		eng_msg_unref(m);
		return -ENOMEM;
	}
	r->kind = HR_PUB;
	r->msg = m;
	rc = host_enqueue(e, r);
	if (rc != 0) {
		eng_msg_unref(m);
		free(r);
	}
	return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Subscriptions (applied by the control thread, or by the set-up thread before start).
 */
void eng_host_deliver(struct tachyon *e, const struct eng_msg *m, bool retained)
{
	const struct mt_local_hit *hits;
	uint64_t now = eng_now_ms();
	unsigned n;

	if (m->expire_ms && now >= m->expire_ms)
		return;
	n = mt_local_match(e->host.local, (const char *)m->topic.p, m->topic.len, NULL, &hits);
	for (unsigned i = 0; i < n; i++) {
		const struct eng_host_sub *s = hits[i].session;
		struct tachyon_message tm;
		eng_message_view(&tm, &m->topic, &m->payload, m->props, m->qos, retained,
				 m->expire_ms ? (uint32_t)((m->expire_ms - now + 999) / 1000) : 0);
		s->fn(s->ctx, &tm);
	}
}

static struct eng_host_sub *host_sub_find(struct tachyon *e, const char *f, size_t len,
					  struct eng_host_sub ***where)
{
	struct eng_host_sub **pp = &e->host.subs;
	for (; *pp; pp = &(*pp)->next) {
		if ((*pp)->len == len && memcmp((*pp)->filter, f, len) == 0) {
			if (where)
				*where = pp;
			return *pp;
		}
	}
	return NULL;
}

struct retained_ctx {
	struct eng_host_sub *sub;
	uint64_t now;
};

static int host_retained_visit(void *ctx, const char *topic, size_t len, void *msg, size_t bytes)
{
	struct retained_ctx *rc = ctx;
	const struct eng_msg *m = msg;
	struct tachyon_message tm;
	(void)topic;
	(void)len;
	(void)bytes;

	if (m->expire_ms && rc->now >= m->expire_ms)
		return 0;
	eng_message_view(&tm, &m->topic, &m->payload, m->props, m->qos, true,
			 m->expire_ms ? (uint32_t)((m->expire_ms - rc->now + 999) / 1000) : 0);
	rc->sub->fn(rc->sub->ctx, &tm);
	return 0;
}

static int host_sub_apply(struct tachyon *e, const char *filter, size_t len, unsigned flags,
			  tachyon_msg_fn fn, void *ctx)
{
	struct mt_sub_opts opts = {.qos = 2};
	struct eng_host_sub *s = host_sub_find(e, filter, len, NULL);
	int rc;

	if (s) {
		s->fn = fn;
		s->ctx = ctx;
	} else {
		s = malloc(sizeof(*s) + len + 1);
		if (!s)
			return -ENOMEM;
		s->fn = fn;
		s->ctx = ctx;
		s->len = (uint16_t)len;
		memcpy(s->filter, filter, len);
		s->filter[len] = '\0';
		rc = mt_local_subscribe(e->host.local, s, filter, len, &opts, NULL);
		if (rc == 0) {
			rc = mt_index_add(e->index, filter, len, e->nworkers);
			if (rc != 0)
				mt_local_unsubscribe(e->host.local, s, filter, len);
		}
		if (rc != 0) {
			ENG_ERR("host subscription to '%s' failed (%d)", s->filter, rc);
			free(s);
			return rc;
		}
		s->next = e->host.subs;
		e->host.subs = s;
	}
	if (flags & TACHYON_SUB_RETAINED) {
		struct retained_ctx rc2 = {.sub = s, .now = eng_now_ms()};
		mt_retain_match(e->retain, filter, len, host_retained_visit, &rc2);
	}
	return 0;
}

static void host_unsub_apply(struct tachyon *e, const char *filter, size_t len)
{
	struct eng_host_sub **where;
	struct eng_host_sub *s = host_sub_find(e, filter, len, &where);
	int rc;

	if (!s)
		return;
	*where = s->next;
	mt_local_unsubscribe(e->host.local, s, filter, len);
	rc = mt_index_del(e->index, filter, len, e->nworkers);
	if (rc != 0)
		ENG_ERR("host unsubscription from '%s' failed (%d)", s->filter, rc);
	free(s);
}

static int host_filter_check(struct tachyon *e, const char *filter, size_t *len)
{
	const char *why = NULL;

	if (!filter)
		return -EINVAL;
	*len = strlen(filter);
	if (mt_topic_is_shared(filter, *len) ||
	    mt_topic_filter_check(&e->mtcfg, filter, *len, &why) != 0)
		return -EINVAL;
	return 0;
}

static int host_sub_request(struct tachyon *e, uint8_t kind, const char *filter, unsigned flags,
			    tachyon_msg_fn fn, void *ctx)
{
	struct host_req *r;
	size_t len;
	int rc;

	if (host_filter_check(e, filter, &len) != 0 || (kind == HR_SUB && !fn) ||
	    (flags & ~TACHYON_SUB_RETAINED))
		return -EINVAL;
	if (!e->started) {
		/* set-up: nothing else runs yet */
		if (kind == HR_SUB)
			return host_sub_apply(e, filter, len, flags, fn, ctx);
		host_unsub_apply(e, filter, len);
		return 0;
	}
	r = calloc(1, sizeof(*r) + len + 1);
	if (!r)
		return -ENOMEM;
	r->kind = kind;
	r->flags = flags;
	r->fn = fn;
	r->ctx = ctx;
	r->len = (uint16_t)len;
	memcpy(r->filter, filter, len + 1);
	rc = host_enqueue(e, r);
	if (rc != 0)
		free(r);
	return rc;
}

int tachyon_subscribe(struct tachyon *e, const char *filter, unsigned flags, tachyon_msg_fn fn,
		      void *ctx)
{
	return host_sub_request(e, HR_SUB, filter, flags, fn, ctx);
}

int tachyon_unsubscribe(struct tachyon *e, const char *filter)
{
	return host_sub_request(e, HR_UNSUB, filter, 0, NULL, NULL);
}

unsigned eng_host_drain(struct tachyon *e, unsigned budget)
{
	struct host_req *r;
	unsigned n = 0;

	while (n < budget && (r = hostq_pop(e->host.q)) != NULL) {
		n++;
		switch (r->kind) {
		case HR_PUB:
			eng_ctl_route(e, r->msg);
			break;
		case HR_SUB:
			host_sub_apply(e, r->filter, r->len, r->flags, r->fn, r->ctx);
			break;
		default:
			host_unsub_apply(e, r->filter, r->len);
			break;
		}
		free(r);
	}
	return n;
}

/* SPDX-License-Identifier: MIT */
/*
 * SUBSCRIBE / SUBACK and UNSUBSCRIBE / UNSUBACK, the worker's half.
 *
 * A SUBSCRIBE is validated and applied to this core's mt_local at once (so this core's own
 * sessions match immediately), then the request travels to the control thread, the only
 * writer of mt_index, which adds this core for every new (session, filter) pair and looks up
 * the retained messages each filter should receive (Retain Handling 0: always, 1: only for a
 * new subscription, 2: never; none for shared subscriptions). The SUBACK is sent when the
 * answer comes back, i.e. once the index update is visible to every core, followed by the
 * retained messages (RETAIN set, QoS min(message, granted), the subscription's identifier).
 *
 * UNSUBSCRIBE removes from mt_local at once and tells the control thread (RI_IDX_DEL) without
 * waiting: once this core no longer matches, a stale core bit only costs a wasted match.
 *
 * The session keeps its own list of subscriptions (filter + options): the takeover ships it
 * and ending the session removes each from the index.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "eng_internal.h"

void eng_subreq_free(struct eng_subreq *r)
{
	for (uint32_t i = 0; i < r->count; i++) {
		for (uint32_t k = 0; k < r->ents[i].nretained; k++)
			eng_msg_unref(r->ents[i].retained[k]);
		free(r->ents[i].retained);
	}
	free(r);
}

static struct eng_sub *sub_find(struct eng_client *c, const char *f, size_t len,
				struct eng_sub ***where)
{
	struct eng_sub **pp = &c->subs;
	for (; *pp; pp = &(*pp)->next) {
		if ((*pp)->len == len && memcmp((*pp)->filter, f, len) == 0) {
			if (where)
				*where = pp;
			return *pp;
		}
	}
	return NULL;
}

static void subs_gauge(struct eng_worker *w, int64_t d)
{
	atomic_store_explicit(&w->stats.subscriptions,
			      atomic_load_explicit(&w->stats.subscriptions, memory_order_relaxed) + d,
			      memory_order_relaxed);
}

int eng_handle_subscribe(struct eng_client *c, const struct eng_packet *pkt)
{
	const struct eng_subscribe *s = &pkt->u.subscribe;
	struct eng_worker *w = c->w;
	const struct eng_config *cfg = &w->eng->cfg;
	uint8_t fail = c->version == ENG_V5 ? ENG_RC_UNSPECIFIED : 0x80;
	uint32_t sub_id = 0;
	struct eng_subreq *r;
	struct eng_iter it;
	struct eng_str f;
	uint8_t options;
	uint32_t i = 0;
	size_t bytes;

	if (c->version == ENG_V5 && (s->props.present & ENG_PBIT(ENG_PROP_SUBSCRIPTION_ID)))
		sub_id = s->props.subscription_id;
	bytes = sizeof(*r) + s->count * sizeof(struct eng_subreq_ent) + s->raw.len;
	r = calloc(1, bytes);
	if (!r) {
		eng_client_close(c, ENG_RC_IMPL_SPECIFIC, "out of memory");
		return -ENOMEM;
	}
	r->client = c;
	r->gen = c->gen;
	r->core = (uint16_t)w->id;
	r->packet_id = s->packet_id;
	r->ents = (struct eng_subreq_ent *)(r + 1);
	r->storage = (uint8_t *)(r->ents + s->count);
	memcpy(r->storage, s->raw.p, s->raw.len);
	it = eng_iter_of((struct eng_str){r->storage, s->raw.len});
	while (i < s->count && eng_sub_next(&it, &f, &options)) {
		struct eng_subreq_ent *e = &r->ents[i++];
		const char *filter = (const char *)f.p;
		bool shared = mt_topic_is_shared(filter, f.len);
		struct mt_share_spec spec;
		const char *why = NULL;
		bool existed = false;
		int rc;

		e->filter = f;
		e->shared = shared;
		e->opts.qos = options & ENG_SUBOPT_QOS_MASK;
		if (e->opts.qos > cfg->max_qos)
			e->opts.qos = (uint8_t)cfg->max_qos;
		if (c->version == ENG_V5) {
			e->opts.no_local = options & ENG_SUBOPT_NO_LOCAL;
			e->opts.retain_as_published = options & ENG_SUBOPT_RAP;
			e->opts.retain_handling =
				(options & ENG_SUBOPT_RH_MASK) >> ENG_SUBOPT_RH_SHIFT;
		}
		e->opts.sub_id = sub_id;
		rc = shared ? mt_topic_share_parse(&w->eng->mtcfg, filter, f.len, &spec, &why)
			    : mt_topic_filter_check(&w->eng->mtcfg, filter, f.len, &why);
		if (rc != 0) {
			e->reason = c->version == ENG_V5 ? ENG_RC_TOPIC_FILTER_INVALID : 0x80;
			continue;
		}
		if (shared && e->opts.no_local) {
			/* [MQTT-3.8.3-4] */
			free(r);
			ENG_STAT_INC(&w->stats, protocol_errors);
			eng_client_close(c, ENG_RC_PROTOCOL_ERROR, "No Local on a shared subscription");
			return -EPROTO;
		}
		if ((c->acl || w->eng->hooks.n_acl) &&
		    !eng_may_subscribe(c, filter, f.len, e->opts.qos)) {
			ENG_STAT_INC(&w->stats, acl_denied);
			ENG_INFO("client '%s': SUBSCRIBE to '%.*s' denied by the ACL", c->client_id,
				 (int)f.len, filter);
			e->reason = c->version == ENG_V5 ? ENG_RC_NOT_AUTHORIZED : 0x80;
			continue;
		}
		if (!sub_find(c, filter, f.len, NULL) && c->nsubs >= cfg->max_subscriptions_per_client) {
			e->reason = c->version == ENG_V5 ? ENG_RC_QUOTA_EXCEEDED : 0x80;
			continue;
		}
		rc = mt_local_subscribe(w->local, c, filter, f.len, &e->opts, &existed);
		if (rc != 0) {
			e->reason = rc == -ENOMEM ? fail
				    : c->version == ENG_V5 ? ENG_RC_TOPIC_FILTER_INVALID : 0x80;
			continue;
		}
		if (existed) {
			struct eng_sub *es = sub_find(c, filter, f.len, NULL);
			if (es)
				es->opts = e->opts;
		} else {
			struct eng_sub *ns = malloc(sizeof(*ns) + f.len + 1);
			if (!ns) {
				mt_local_unsubscribe(w->local, c, filter, f.len);
				e->reason = fail;
				continue;
			}
			ns->opts = e->opts;
			ns->len = (uint16_t)f.len;
			memcpy(ns->filter, filter, f.len);
			ns->filter[f.len] = '\0';
			ns->next = c->subs;
			c->subs = ns;
			c->nsubs++;
			subs_gauge(w, 1);
			ENG_STAT_INC(&w->stats, subs_added);
			e->add_index = true;
		}
		e->reason = e->opts.qos;
		e->send_retained = !shared && (e->opts.retain_handling == 0 ||
					       (e->opts.retain_handling == 1 && !existed));
	}
	r->count = i;
	c->pending_ops++;
	struct eng_ritem ri = {.type = RI_SUB, .p = r};
	eng_post(w->eng, w->id, w->eng->nworkers, &ri, false);
	return 0;
}

void eng_suback_answer(struct eng_worker *w, struct eng_subreq *r)
{
	struct eng_client *c = r->client;
	(void)w;

	if (c->gen == r->gen && c->state == CS_ONLINE && c->conn) {
		struct eng_packet pkt = {.type = ENG_SUBACK};
		uint8_t codes[256];
		uint8_t *reasons = r->count <= sizeof(codes) ? codes : malloc(r->count);
		if (reasons) {
			for (uint32_t i = 0; i < r->count; i++)
				reasons[i] = r->ents[i].reason;
			pkt.u.suback.packet_id = r->packet_id;
			pkt.u.suback.count = r->count;
			pkt.u.suback.reasons = reasons;
			eng_send_pkt(c, &pkt);
			if (reasons != codes)
				free(reasons);
		}
		for (uint32_t i = 0; i < r->count && c->conn; i++) {
			struct eng_subreq_ent *e = &r->ents[i];
			for (uint32_t k = 0; k < e->nretained; k++) {
				struct eng_msg *m = e->retained[k];
				uint8_t qos = m->qos < e->opts.qos ? m->qos : e->opts.qos;
				eng_deliver(c, m, qos, true, &e->opts.sub_id, e->opts.sub_id ? 1 : 0);
			}
		}
	}
	eng_subreq_free(r);
	eng_client_unpin(c); /* the request's pin, taken in eng_handle_subscribe() */
}

int eng_handle_unsubscribe(struct eng_client *c, const struct eng_packet *pkt)
{
	const struct eng_subscribe *s = &pkt->u.subscribe;
	struct eng_worker *w = c->w;
	struct eng_filter_list *fl = NULL;
	struct eng_packet ack = {.type = ENG_UNSUBACK};
	uint8_t codes[256];
	uint8_t *reasons = s->count <= sizeof(codes) ? codes : malloc(s->count);
	struct eng_iter it = eng_iter_of(s->raw);
	struct eng_str f;
	uint32_t i = 0;

	if (!reasons) {
		eng_client_close(c, ENG_RC_IMPL_SPECIFIC, "out of memory");
		return -ENOMEM;
	}
	while (i < s->count && eng_unsub_next(&it, &f)) {
		const char *filter = (const char *)f.p;
		struct eng_sub **where;
		int rc = mt_local_unsubscribe(w->local, c, filter, f.len);
		if (rc == 0) {
			struct eng_sub *es = sub_find(c, filter, f.len, &where);
			reasons[i] = ENG_RC_SUCCESS;
			if (es) {
				*where = es->next;
				c->nsubs--;
				subs_gauge(w, -1);
				ENG_STAT_INC(&w->stats, subs_removed);
				if (!fl)
					fl = calloc(1, sizeof(*fl));
				if (fl) {
					es->next = fl->head;
					fl->head = es;
					fl->count++;
				} else {
					free(es); /* the index keeps a stale core bit: harmless */
				}
			}
		} else {
			reasons[i] = rc == -ENOENT ? ENG_RC_NO_SUBSCRIPTION_EXISTED
						   : ENG_RC_TOPIC_FILTER_INVALID;
		}
		i++;
	}
	if (fl) {
		struct eng_ritem ri = {.type = RI_IDX_DEL, .p = fl, .b = w->id};
		eng_post(w->eng, w->id, w->eng->nworkers, &ri, false);
	}
	ack.u.suback.packet_id = s->packet_id;
	ack.u.suback.count = c->version == ENG_V5 ? i : 0;
	ack.u.suback.reasons = reasons;
	eng_send_pkt(c, &ack);
	if (reasons != codes)
		free(reasons);
	return c->conn ? 0 : -EPIPE;
}

void eng_subs_drop(struct eng_client *c, bool tell_control)
{
	struct eng_worker *w = c->w;
	struct eng_filter_list *fl;

	if (!c->subs)
		return;
	mt_local_drop_session(w->local, c);
	subs_gauge(w, -(int64_t)c->nsubs);
	ENG_STAT_ADD(&w->stats, subs_removed, c->nsubs);
	fl = tell_control ? calloc(1, sizeof(*fl)) : NULL;
	if (fl) {
		fl->head = c->subs;
		fl->count = c->nsubs;
		struct eng_ritem ri = {.type = RI_IDX_DEL, .p = fl, .b = w->id};
		eng_post(w->eng, w->id, w->eng->nworkers, &ri, false);
	} else {
		while (c->subs) {
			struct eng_sub *s = c->subs;
			c->subs = s->next;
			free(s);
		}
	}
	c->subs = NULL;
	c->nsubs = 0;
}

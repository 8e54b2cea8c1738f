/* SPDX-License-Identifier: MIT */
/*
 * PUBLISH in both directions, routing, and the QoS state machines.
 *
 * Routing (design): a PUBLISH becomes one immutable message (eng_msg) and is matched once
 * against the global index (mt_index_match: the cores with subscribers). The own core matches
 * its mt_local and fans out at once; every other core gets one reference through the ring of
 * this pair, and fans out to its own sessions when it drains it. Shared groups are picked per
 * message at the core level (mt_index_share_match) and then per session on the target core;
 * a core whose last member left re-picks another core (mt_index_share_repick) and forwards.
 * Per-publisher order towards one subscriber holds: one publisher is on one core, its
 * messages to another core travel one FIFO ring, and each session's queue is FIFO.
 *
 * Inbound QoS (from a client):
 *   QoS 0: route.   QoS 1: route, PUBACK.
 *   QoS 2: route on the first PUBLISH of a packet id, record the id, PUBREC; a PUBLISH with a
 *          recorded id is a duplicate: PUBREC again, not routed. PUBREL forgets the id and
 *          answers PUBCOMP (0x92 when unknown, MQTT 5). The recorded ids are bounded by our
 *          Receive Maximum: one more is 0x93 (MQTT 5).
 * Outbound QoS (to a client), per session:
 *   queued (QE_QUEUED) -> sent when the inflight window (min(client's Receive Maximum,
 *   max_inflight)) has room and the transport takes it -> QoS 1: QE_WAIT_ACK -> PUBACK frees;
 *   QoS 2: QE_WAIT_REC -> PUBREC: PUBREL sent, QE_WAIT_COMP (the message reference is dropped)
 *   -> PUBCOMP frees. On session resume, QE_WAIT_ACK/REC entries are sent again with DUP and
 *   QE_WAIT_COMP entries get their PUBREL again [MQTT-4.4.0-1]. MQTT 3.x clients also get
 *   them again on the same connection once they have waited retry_interval seconds (one
 *   t_retry per client, armed while anything waits; a client whose transport is full gets no
 *   more until the next interval). MQTT 5 clients never do: the spec forbids it.
 * The queue is bounded in messages and bytes (max_queued_messages / max_queued_bytes); a full
 * queue drops by drop_policy, counted in drop_queue_full. QoS 0 goes straight to the
 * transport when nothing is queued ahead of it.
 *
 * Outbound topic aliases (MQTT 5 clients that announced a Topic Alias Maximum, capped by
 * topic_alias_maximum_out; policy in eng_alias.h): each PUBLISH is encoded at send time with
 * the alias the connection's table picks, and the table records it only once the transport
 * took the packet, so what it holds is what the client received, in order. Such clients never
 * get the received bytes forwarded as they are (the fast path for QoS 0 stays for the others).
 * The table belongs to the connection: a resumed session starts with none.
 *
 * Back-pressure instead of loss (QoS 1/2 to an online session): a message that was
 * acknowledged to its publisher must not be dropped because a subscriber is slow. So a full
 * queue of an online session still takes QoS 1/2 messages (what was acknowledged before the
 * signal reached the publishers, and then at most each publisher's window), with a memory
 * valve at ENG_HOLD_FACTOR times max_queued_bytes, and marks
 * the session "over"; its worker's congested count (one atomic per core, written by its
 * worker only) tells every worker that routes there. A publisher whose QoS 1/2 message went to
 * a congested core gets its PUBACK/PUBREC held back, in order, until those cores are clear
 * again: MQTT's own flow control (the publisher's Receive Maximum / inflight window) then
 * stops it, while its connection keeps being read (acks still flow, so no cycle of waiting
 * clients can deadlock). Beyond that, or for offline sessions, the drop policy applies and
 * is counted.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "eng_internal.h"

/* The memory valve of an online session's queue for QoS 1/2, in max_queued_bytes (see
 * "Back-pressure"). */
#define ENG_HOLD_FACTOR 8u

static bool qos2_test(const struct eng_client *c, uint16_t id)
{
	return c->qos2_bits && (c->qos2_bits[id >> 6] >> (id & 63)) & 1u;
}

static int qos2_set(struct eng_client *c, uint16_t id)
{
	if (!c->qos2_bits) {
		c->qos2_bits = calloc(65536 / 64, sizeof(uint64_t));
		if (!c->qos2_bits)
			return -ENOMEM;
	}
	c->qos2_bits[id >> 6] |= UINT64_C(1) << (id & 63);
	c->qos2_count++;
	return 0;
}

static void qos2_clear(struct eng_client *c, uint16_t id)
{
	c->qos2_bits[id >> 6] &= ~(UINT64_C(1) << (id & 63));
	c->qos2_count--;
	if (!c->qos2_count) {
		free(c->qos2_bits);
		c->qos2_bits = NULL;
	}
}

static int send_ack(struct eng_client *c, uint8_t type, uint16_t pid, uint8_t reason)
{
	struct eng_packet pkt = {.type = type};
	pkt.u.ack.packet_id = pid;
	pkt.u.ack.reason = c->version == ENG_V5 ? reason : 0;
	return eng_send_pkt(c, &pkt);
}

void eng_queue_free(struct eng_worker *w, struct eng_qent *q)
{
	while (q) {
		struct eng_qent *n = q->next;
		if (q->msg)
			eng_msg_unref(q->msg);
		eng_qent_put(w, q);
		q = n;
	}
}

/* ---------------------------------------------------------------------------------------------
 * Sending one PUBLISH.
 */
static bool expired(const struct eng_worker *w, const struct eng_msg *m)
{
	return m->expire_ms && w->now_ms >= m->expire_ms;
}

/* The outbound topic alias table, made by the first PUBLISH sent to a client that takes
 * aliases: once per connection, not per message (most connections never receive one). Out of
 * memory, topics go in full, which the protocol allows; the next PUBLISH tries again. */
static struct eng_alias_out *alias_out_get(struct eng_client *c)
{
	struct eng_client_cold *x = c->cold;

	if (x && x->alias_out)
		return x->alias_out;
	if (!(x = eng_client_cold(c)))
		return NULL;
	return x->alias_out = eng_alias_out_create(c->alias_max_out);
}

/* 0, -ENOBUFS (keep it queued), -EMSGSIZE (over the client's maximum: dropped), -EPIPE. */
static int send_publish(struct eng_client *c, const struct eng_msg *m, uint8_t qos, bool retain,
			const uint32_t *ids, uint32_t nids, uint16_t pid, bool dup, bool control)
{
	struct eng_worker *w = c->w;
	struct eng_alias_pick ap = {.alias = 0};
	struct eng_alias_out *ao = NULL;
	struct iovec iov[2];
	int rc;

	if (m->raw.len && qos == 0 && m->version == c->version && retain == m->retain &&
	    nids == 0 && !c->alias_max_out) {
		/* same version, nothing changes: the received bytes as they are */
		if (c->max_packet_out && m->raw.len > c->max_packet_out)
			return -EMSGSIZE;
		iov[0] = (struct iovec){(void *)m->raw.p, m->raw.len};
		rc = eng_send_raw(c, iov, 1, control);
	} else {
		struct eng_publish p = {.qos = qos, .dup = dup, .retain = retain, .packet_id = pid,
					.topic = m->topic, .payload = m->payload};
		int n;
		if (c->version == ENG_V5) {
			if (m->props)
				p.props = *m->props;
			if (m->expire_ms) {
				uint64_t left = m->expire_ms > w->now_ms ? m->expire_ms - w->now_ms : 0;
				p.props.present |= ENG_PBIT(ENG_PROP_MESSAGE_EXPIRY);
				p.props.message_expiry = (uint32_t)((left + 999) / 1000);
			}
			if (nids) {
				p.props.present |= ENG_PBIT(ENG_PROP_SUBSCRIPTION_ID);
				p.props.sub_id = ids;
				p.props.sub_id_count = nids;
			}
			if (c->alias_max_out)
				ao = alias_out_get(c);
			if (ao) {
				eng_alias_out_pick(ao, m->topic.p, m->topic.len, &ap);
				if (ap.alias) {
					p.props.present |= ENG_PBIT(ENG_PROP_TOPIC_ALIAS);
					p.props.topic_alias = ap.alias;
					if (ap.known)
						p.topic.len = 0;
				}
			}
		}
		n = eng_encode_publish_head(&p, c->version, w->scratch, ENG_SCRATCH);
		if (n < 0)
			return -EMSGSIZE;
		if (c->max_packet_out && (uint64_t)n + m->payload.len > c->max_packet_out)
			return -EMSGSIZE;
		iov[0] = (struct iovec){w->scratch, (size_t)n};
		iov[1] = (struct iovec){(void *)m->payload.p, m->payload.len};
		rc = eng_send_raw(c, iov, m->payload.len ? 2 : 1, control);
		if (rc == 0 && ap.alias) /* the client now has it: record it, in send order */
			eng_alias_out_commit(ao, m->topic.p, m->topic.len, &ap);
	}
	if (rc == 0)
		ENG_STAT_INC(&w->stats, msgs_out);
	return rc;
}

static uint16_t alloc_pid(struct eng_client *c)
{
	for (;;) {
		bool used = false;
		if (++c->next_pid == 0)
			c->next_pid = 1;
		c->pid_seq++;
		/* an id can only still be in use if it was handed out a full cycle ago */
		if (c->inf_head && c->inf_head->seq + 65535 <= c->pid_seq) {
			for (struct eng_qent *q = c->inf_head; q; q = q->next)
				if (q->pid == c->next_pid) {
					used = true;
					break;
				}
		}
		if (!used)
			return c->next_pid;
	}
}

static uint64_t msg_bytes(const struct eng_msg *m)
{
	return m->topic.len + m->payload.len + 16u;
}

void eng_queue_level(struct eng_client *c)
{
	struct eng_worker *w = c->w;
	const struct eng_config *cfg = &w->eng->cfg;
	uint32_t maxm = cfg->max_queued_messages, maxb = cfg->max_queued_bytes;
	bool over = c->q_count >= maxm || c->q_bytes >= maxb;

	/* hysteresis: clear at three quarters, so that held acks and paused publishers are not
	 * released and caught again for every message */
	if (c->over && !over)
		over = c->q_count > maxm - maxm / 4 || c->q_bytes > maxb - maxb / 4;
	if (c->state == CS_GONE)
		over = false; /* finished (being freed): off the list whatever the limits */
	if (over != c->over) {
		c->over = over;
		if (over) {
			c->progress_ms = w->now_ms; /* the slow consumer clock starts now */
			c->over_prev = NULL;
			c->over_next = w->over_list;
			if (w->over_list)
				w->over_list->over_prev = c;
			w->over_list = c;
		} else {
			if (c->over_prev)
				c->over_prev->over_next = c->over_next;
			else
				w->over_list = c->over_next;
			if (c->over_next)
				c->over_next->over_prev = c->over_prev;
			c->over_prev = c->over_next = NULL;
			c->stuck = false;
		}
	}
	/* only a session that is online and takes messages holds publishers back: an offline or
	 * stuck one would hold them for ever */
	bool cong = over && !c->stuck && c->conn && c->state == CS_ONLINE;
	if (cong == c->cong)
		return;
	c->cong = cong;
	uint32_t n = atomic_load_explicit(&w->congested, memory_order_relaxed);
	/* single writer (this worker); readers only test it against zero */
	atomic_store_explicit(&w->congested, cong ? n + 1 : n - 1, memory_order_relaxed);
}

/* The session took something (a send, an ack): it is not stuck. */
static void progress(struct eng_client *c)
{
	c->progress_ms = c->w->now_ms;
	if (c->stuck) {
		c->stuck = false;
		eng_queue_level(c);
	}
}

void eng_slow_scan(struct eng_worker *w)
{
	uint64_t limit = w->eng->cfg.slow_consumer_timeout * 1000ull;

	for (struct eng_client *c = w->over_list; c; c = c->over_next) {
		if (c->stuck || !c->cong || w->now_ms - c->progress_ms < limit)
			continue;
		c->stuck = true;
		ENG_STAT_INC(&w->stats, slow_consumers);
		ENG_INFO("client '%s': took nothing for %u s with a full queue; it no longer holds "
			 "publishers back and its queue drops", c->client_id ? c->client_id : "",
			 w->eng->cfg.slow_consumer_timeout);
		eng_queue_level(c); /* stays on over_list: only cong changes */
	}
}

static void qent_pop(struct eng_client *c)
{
	struct eng_qent *q = c->q_head;
	c->q_head = q->next;
	if (!c->q_head)
		c->q_tail = NULL;
	c->q_count--;
	c->q_bytes -= msg_bytes(q->msg);
	q->next = NULL;
	if (c->over)
		eng_queue_level(c);
}

/* MQTT 3.x with retry_interval: makes sure t_retry runs while something waits for an ack. */
static void retry_arm(struct eng_client *c)
{
	struct eng_worker *w = c->w;
	uint32_t ivl = w->eng->cfg.retry_interval;

	/* t_retry is t_sess too, which is armed only offline (no sending then) */
	if (ivl && c->version != ENG_V5 && c->state == CS_ONLINE && !eng_timer_armed(&c->t_retry)) {
		c->t_retry.kind = TK_RETRY;
		eng_timer_arm(&w->wheel, &c->t_retry, w->now_ms + ivl * 1000ull);
	}
}

void eng_retry_fire(struct eng_client *c)
{
	struct eng_worker *w = c->w;
	uint32_t ivl = w->eng->cfg.retry_interval * 1000u;
	uint32_t now = (uint32_t)w->now_ms;
	uint32_t next = ivl; /* ms until the next entry is due */

	/* MQTT 5 forbids resending on the same connection [MQTT-4.4.0-1] */
	if (!ivl || c->version == ENG_V5 || c->state != CS_ONLINE || !c->conn || c->closing)
		return;
	eng_client_pin(c); /* a PUBREL that overflows the reply backlog closes the client */
	for (struct eng_qent *q = c->inf_head; q && c->conn; q = q->next) {
		uint32_t age = now - q->sent_ms; /* wraps right: both are the clock's low bits */
		if (age < ivl) {
			if (ivl - age < next)
				next = ivl - age;
			continue;
		}
		if (q->state == QE_WAIT_COMP) {
			send_ack(c, ENG_PUBREL, q->pid, 0);
		} else if (send_publish(c, q->msg, q->qos, q->retain, q->ids, q->nids, q->pid, true,
					false) == -ENOBUFS) {
			/* the client does not read: resending more only fills the transport */
			next = ivl;
			break;
		} else {
			q->dup = true;
		}
		q->sent_ms = now;
		ENG_STAT_INC(&w->stats, retries);
	}
	if (c->conn && c->inf_head)
		eng_timer_arm(&w->wheel, &c->t_retry, w->now_ms + next);
	eng_client_unpin(c);
}

void eng_pump(struct eng_client *c)
{
	struct eng_worker *w = c->w;
	uint32_t window = c->recv_max;

	if (w->eng->cfg.max_inflight < window)
		window = w->eng->cfg.max_inflight;
	if (c->state != CS_ONLINE || !c->conn || c->closing || c->ctllen)
		return;
	while (c->q_head) {
		struct eng_qent *q = c->q_head;
		uint16_t pid = 0;
		int rc;

		if (expired(w, q->msg)) {
			qent_pop(c);
			ENG_STAT_INC(&w->stats, drop_expired);
			eng_queue_free(w, q);
			continue;
		}
		if (q->qos && c->inflight >= window)
			break;
		if (q->qos)
			pid = alloc_pid(c);
		rc = send_publish(c, q->msg, q->qos, q->retain, q->ids, q->nids, pid, false, false);
		if (rc == -ENOBUFS || rc == -EPIPE) {
			if (q->qos) {
				/* the id was not used: give it back */
				c->next_pid--;
				c->pid_seq--;
			}
			break;
		}
		if (c->over)
			progress(c);
		qent_pop(c);
		if (rc == -EMSGSIZE || q->qos == 0) {
			if (rc == -EMSGSIZE)
				ENG_STAT_INC(&w->stats, drop_too_large);
			eng_queue_free(w, q);
			continue;
		}
		q->pid = pid;
		q->seq = c->pid_seq;
		q->state = q->qos == 1 ? QE_WAIT_ACK : QE_WAIT_REC;
		q->sent_ms = (uint32_t)w->now_ms;
		retry_arm(c);
		if (c->inf_tail)
			c->inf_tail->next = q;
		else
			c->inf_head = q;
		c->inf_tail = q;
		c->inflight++;
	}
}

void eng_resend_inflight(struct eng_client *c)
{
	for (struct eng_qent *q = c->inf_head; q && c->conn; q = q->next) {
		q->sent_ms = (uint32_t)c->w->now_ms;
		retry_arm(c);
		if (q->state == QE_WAIT_COMP) {
			send_ack(c, ENG_PUBREL, q->pid, 0);
		} else {
			q->dup = true;
			send_publish(c, q->msg, q->qos, q->retain, q->ids, q->nids, q->pid, true,
				     true);
		}
	}
}

static void enqueue(struct eng_client *c, struct eng_msg *m, uint8_t qos, bool retain,
		    const uint32_t *ids, uint32_t nids)
{
	struct eng_worker *w = c->w;
	const struct eng_config *cfg = &w->eng->cfg;
	uint64_t bytes = msg_bytes(m);
	struct eng_qent *q;

	/* see "Back-pressure" above */
	bool hold = (qos || cfg->qos0_overload == ENG_QOS0_PAUSE) && c->state == CS_ONLINE &&
		    c->conn && !c->stuck;
	while (c->q_count >= cfg->max_queued_messages || c->q_bytes + bytes > cfg->max_queued_bytes) {
		if (hold && c->q_bytes + bytes <= ENG_HOLD_FACTOR * (uint64_t)cfg->max_queued_bytes)
			break;
		ENG_STAT_INC(&w->stats, drop_queue_full);
		if (cfg->drop_policy != ENG_DROP_OLDEST || !c->q_head)
			return;
		q = c->q_head;
		qent_pop(c);
		eng_queue_free(w, q);
	}
	q = eng_qent_msg(w, m, qos, retain, ids, nids); /* state QE_QUEUED */
	if (!q) {
		ENG_STAT_INC(&w->stats, drop_queue_full);
		return;
	}
	if (c->q_tail)
		c->q_tail->next = q;
	else
		c->q_head = q;
	c->q_tail = q;
	c->q_count++;
	c->q_bytes += bytes;
	eng_queue_level(c);
}

void eng_deliver(struct eng_client *c, struct eng_msg *m, uint8_t qos, bool retain,
		 const uint32_t *ids, uint32_t nids)
{
	struct eng_worker *w = c->w;

	if (c->state == CS_GONE)
		return;
	if (expired(w, m)) {
		ENG_STAT_INC(&w->stats, drop_expired);
		return;
	}
	if (c->acl && eng_acl_delivery_check(c->acl) &&
	    !eng_acl_check(c->acl, (const char *)m->topic.p, m->topic.len, false)) {
		ENG_STAT_INC(&w->stats, acl_denied);
		return;
	}
	if (c->state != CS_ONLINE || !c->conn) {
		if (qos == 0 && !w->eng->cfg.queue_qos0_offline) {
			ENG_STAT_INC(&w->stats, drop_qos0_offline);
			return;
		}
		enqueue(c, m, qos, retain, ids, nids);
		return;
	}
	if (qos == 0 && !c->q_head && !c->ctllen) {
		int rc = send_publish(c, m, 0, retain, ids, nids, 0, false, false);
		if (rc == -EMSGSIZE)
			ENG_STAT_INC(&w->stats, drop_too_large);
		if (rc != -ENOBUFS)
			return;
	}
	enqueue(c, m, qos, retain, ids, nids);
	eng_pump(c);
}

/* ---------------------------------------------------------------------------------------------
 * Routing.
 */
void eng_route_local(struct eng_worker *w, struct eng_msg *m, const void *publisher)
{
	const struct mt_local_hit *hits;
	unsigned n = mt_local_match(w->local, (const char *)m->topic.p, m->topic.len, publisher,
				    &hits);

	for (unsigned i = 0; i < n; i++) {
		const struct mt_local_hit *h = &hits[i];
		struct eng_client *c = h->session;
		uint8_t qos = m->qos < h->opts.qos ? m->qos : h->opts.qos;
		bool retain = h->opts.retain_as_published ? m->retain : false;
		/* a session that moved here lately: older messages come forwarded (eng_xfer.c) */
		if (c->cold && (c->cold->xfer || c->cold->min_epoch) && !eng_xfer_direct_ok(c, m))
			continue;
		if (c->state == CS_MOVED)
			eng_xfer_forward(c, m, qos, retain, h->ids, h->nids,
					 h->opts.no_local ? XF_NO_LOCAL : 0);
		else
			eng_deliver(c, m, qos, retain, h->ids, h->nids);
	}
}

static void post_msg(struct eng_worker *w, unsigned dst, struct eng_ritem *it)
{
	struct eng_msg *m = it->p;
	eng_msg_ref(m);
	/* QoS 0 may be dropped at a full ring, unless publishers pause instead (then it parks
	 * and the publisher stops: see eng_paused_flush()) */
	if (eng_post(w->eng, w->id, dst, it,
		     m->qos == 0 && w->eng->cfg.qos0_overload == ENG_QOS0_DROP) != 0) {
		ENG_STAT_INC(&w->stats, drop_ring_full);
		eng_msg_unref(m);
	}
}

void eng_route_share(struct eng_worker *w, struct eng_msg *m, uint64_t group, uint64_t tried)
{
	struct mt_local_hit h;
	unsigned core;

	if (mt_local_share_pick(w->local, group, m->publisher_key, &h) == 0) {
		struct eng_client *c = h.session;
		uint8_t qos = m->qos < h.opts.qos ? m->qos : h.opts.qos;
		bool retain = h.opts.retain_as_published ? m->retain : false;
		if (c->state == CS_MOVED)
			eng_xfer_forward(c, m, qos, retain, h.ids, h.nids, XF_SHARE);
		else
			eng_deliver(c, m, qos, retain, h.ids, h.nids);
		return;
	}
	tried |= UINT64_C(1) << w->id;
	if (mt_index_share_repick(w->eng->index, group, tried, &w->share_ctx, &core) != 0 ||
	    core == w->id) {
		ENG_STAT_INC(&w->stats, drop_no_share);
		return;
	}
	struct eng_ritem it = {.type = RI_SHARE, .p = m, .b = group, .c = tried};
	post_msg(w, core, &it);
}

bool eng_route(struct eng_worker *w, struct eng_msg *m, const void *publisher)
{
	struct tachyon *e = w->eng;
	struct mt_share_pick picks[16];
	uint64_t mask, epoch;
	unsigned nshare;

	/* the epoch the match saw, read like a seqlock (see eng_xfer.c) */
	for (;;) {
		/* acquire: pairs with the release store in eng_xfer_move(): under this epoch the
		 * match sees the index additions made before it */
		epoch = atomic_load_explicit(&e->route_epoch, memory_order_acquire);
		mask = mt_index_match(e->index, (const char *)m->topic.p, m->topic.len);
		/* acquire: pairs with the release fence in eng_xfer_move(): if the match saw a
		 * removal made after an epoch change, the load below sees that change */
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&e->route_epoch, memory_order_relaxed) == epoch)
			break;
	}
	m->epoch = epoch; /* before anyone else has m */
	if (m->retain) {
		struct eng_ritem it = {.type = RI_RETAIN, .p = m};
		eng_msg_ref(m);
		eng_post(e, w->id, e->nworkers, &it, false);
	}
	w->route_cores = mask & e->worker_bits; /* the host's bit is never congested */
	for (uint64_t rest = mask & ~(UINT64_C(1) << w->id); rest; rest &= rest - 1) {
		struct eng_ritem it = {.type = RI_PUB, .p = m};
		post_msg(w, (unsigned)__builtin_ctzll(rest), &it);
	}
	if (mask & (UINT64_C(1) << w->id))
		eng_route_local(w, m, publisher);
	w->share_ctx.publisher = m->publisher_key;
	nshare = mt_index_share_match(e->index, (const char *)m->topic.p, m->topic.len,
				      &w->share_ctx, picks, 16);
	for (unsigned i = 0; i < nshare && i < 16; i++) {
		w->route_cores |= UINT64_C(1) << picks[i].core;
		if (picks[i].core == w->id) {
			eng_route_share(w, m, picks[i].group_id, 0);
		} else {
			struct eng_ritem it = {.type = RI_SHARE, .p = m, .b = picks[i].group_id};
			post_msg(w, picks[i].core, &it);
		}
	}
	return mask || nshare;
}

/* ---------------------------------------------------------------------------------------------
 * Held-back acks (see "Back-pressure" at the top).
 */
static bool cores_congested(const struct eng_worker *w, uint64_t cores)
{
	for (; cores; cores &= cores - 1) {
		const struct eng_worker *t = w->eng->workers[__builtin_ctzll(cores)];
		if (atomic_load_explicit(&t->congested, memory_order_relaxed))
			return true;
	}
	return false;
}

/* Congested cores among cores, or cores this worker has items parked for (a full ring). */
static bool cores_busy(const struct eng_worker *w, uint64_t cores)
{
	const struct eng_src *s = &w->eng->srcs[w->id];

	if (s->parked)
		for (uint64_t r = cores; r; r &= r - 1)
			if (s->outq[__builtin_ctzll(r)].count)
				return true;
	return cores_congested(w, cores);
}

/* qos0_overload pause: the QoS 0 message c published went to cores; stop reading c while any
 * of them is busy. What c sent behind it stays unread (decode_run() stops at ovl_paused). */
static void pause_check(struct eng_client *c, uint64_t cores)
{
	struct eng_worker *w = c->w;

	if (!cores || !cores_busy(w, cores))
		return;
	c->ovl_cores |= cores;
	if (c->ovl_paused || !c->conn)
		return;
	c->ovl_paused = true;
	if (!c->rx_paused) {
		ns_pause_rx(c->conn, true);
		c->rx_paused = true;
	}
	c->ovl_next = w->paused_list;
	w->paused_list = c;
	ENG_STAT_INC(&w->stats, qos0_pauses);
}

void eng_paused_flush(struct eng_worker *w)
{
	struct eng_client **pp = &w->paused_list, *ready = NULL;

	/* first take the ready ones off the list, pinned: resuming one handles its publishes,
	 * which may close (and free) other clients, or pause this one again */
	while (*pp) {
		struct eng_client *c = *pp;
		if (c->conn && cores_busy(w, c->ovl_cores)) {
			/* the broker is not reading it: its silence is not a keepalive timeout */
			c->last_rx_ms = w->now_ms;
			pp = &c->ovl_next;
			continue;
		}
		*pp = c->ovl_next;
		c->ovl_paused = false;
		c->ovl_cores = 0;
		if (c->conn) {
			eng_client_pin(c);
			c->ovl_next = ready;
			ready = c;
		}
	}
	while (ready) {
		struct eng_client *c = ready;
		ready = c->ovl_next;
		if (c->conn)
			eng_client_resume_rx(c); /* what was left unread first, then reads */
		eng_client_unpin(c);
	}
}

void eng_paused_drop(struct eng_client *c)
{
	struct eng_client **pp = &c->w->paused_list;

	while (c->ovl_paused && *pp) {
		if (*pp == c) {
			*pp = c->ovl_next;
			c->ovl_paused = false;
			break;
		}
		pp = &(*pp)->ovl_next;
	}
}

static void dack_send_all(struct eng_client *c)
{
	struct eng_dack *d = c->dack;
	uint32_t n = d->n;
	d->n = 0; /* first: a send that closes the client drops nothing twice */
	d->cores = 0;
	/* a send that closes the client frees d (eng_dack_drop) and clears c->conn first */
	for (uint32_t i = 0; i < n && c->conn; i++) {
		uint32_t a = d->ent[i];
		send_ack(c, (uint8_t)(a >> 24), (uint16_t)a, (uint8_t)(a >> 16));
	}
}

/* Sends the ack now, or holds it back behind earlier ones / while its targets are congested. */
static void ack_publish(struct eng_client *c, uint8_t type, uint16_t pid, uint8_t reason,
			uint64_t cores)
{
	struct eng_worker *w = c->w;
	struct eng_dack *d = c->dack;

	if ((!d || !d->n) && !cores_congested(w, cores)) {
		send_ack(c, type, pid, reason);
		return;
	}
	if (!d || d->n == d->cap) {
		uint32_t ncap = d ? d->cap * 2 : 64;
		struct eng_dack *nd =
			ncap <= 65536 ? realloc(d, sizeof(*nd) + ncap * sizeof(nd->ent[0])) : NULL;
		if (!nd) {
			/* more held back than any window allows (a 3.x client without one): give up
			 * holding, in order */
			if (d)
				dack_send_all(c);
			send_ack(c, type, pid, reason);
			return;
		}
		if (!d)
			*nd = (struct eng_dack){0};
		nd->cap = ncap;
		c->dack = d = nd;
	}
	d->ent[d->n++] = (uint32_t)type << 24 | (uint32_t)reason << 16 | pid;
	d->cores |= cores;
	ENG_STAT_INC(&w->stats, acks_deferred);
	if (!c->dack_listed) {
		c->dack_listed = true;
		c->dack_next = w->dack_list;
		w->dack_list = c;
	}
}

void eng_dack_flush(struct eng_worker *w, bool force)
{
	struct eng_client **pp = &w->dack_list;

	while (*pp) {
		struct eng_client *c = *pp;
		struct eng_dack *d = c->dack; /* listed: made by ack_publish() */
		if (d->n && c->conn && !force && cores_congested(w, d->cores)) {
			pp = &c->dack_next;
			continue;
		}
		*pp = c->dack_next;
		c->dack_listed = false;
		if (c->conn) {
			eng_client_pin(c); /* a failed send may close it: keep it allocated */
			dack_send_all(c);
			eng_client_unpin(c);
		} else {
			d->n = 0;
		}
	}
}

void eng_dack_drop(struct eng_client *c)
{
	struct eng_client **pp = &c->w->dack_list;

	while (c->dack_listed && *pp) {
		if (*pp == c) {
			*pp = c->dack_next;
			c->dack_listed = false;
			break;
		}
		pp = &(*pp)->dack_next;
	}
	free(c->dack);
	c->dack = NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Inbound PUBLISH and acks.
 */
static int refuse(struct eng_client *c, uint8_t reason, const char *why)
{
	ENG_STAT_INC(&c->w->stats, protocol_errors);
	eng_client_close(c, reason, why);
	return -EPROTO;
}

int eng_handle_publish(struct eng_client *c, const struct eng_packet *pkt)
{
	const struct eng_publish *pub = &pkt->u.publish;
	struct eng_worker *w = c->w;
	const struct eng_config *cfg = &w->eng->cfg;
	struct eng_str topic = pub->topic;
	const char *why = NULL;
	struct eng_msg *m;
	bool matched, raw_ok;

	ENG_STAT_INC(&w->stats, msgs_in);
	if (pub->qos > cfg->max_qos)
		return refuse(c, ENG_RC_QOS_NOT_SUPPORTED, "PUBLISH QoS above the maximum");
	if (pub->retain && !cfg->retain_available)
		return refuse(c, ENG_RC_RETAIN_NOT_SUPPORTED, "retain is not available");
	if (pub->props.present & ENG_PBIT(ENG_PROP_TOPIC_ALIAS)) {
		uint16_t a = pub->props.topic_alias;
		if (a == 0 || a > cfg->topic_alias_maximum)
			return refuse(c, ENG_RC_TOPIC_ALIAS_INVALID, "topic alias out of range");
		if (topic.len) {
			struct eng_client_cold *x = eng_client_cold(c);
			if (!x || eng_alias_in_set(&x->alias_in, (uint16_t)cfg->topic_alias_maximum,
						   a, topic.p, topic.len) != 0)
				return refuse(c, ENG_RC_IMPL_SPECIFIC, "out of memory");
		} else if (!c->cold || !eng_alias_in_get(c->cold->alias_in, a, &topic)) {
			return refuse(c, ENG_RC_PROTOCOL_ERROR, "unknown topic alias");
		}
	}
	if (mt_topic_name_check(&w->eng->mtcfg, (const char *)topic.p, topic.len, &why) != 0)
		return refuse(c, ENG_RC_TOPIC_NAME_INVALID, why);
	if (pub->qos == 2 && qos2_test(c, pub->packet_id)) {
		/* a resend of a message already routed: acknowledge again only (in order) */
		ack_publish(c, ENG_PUBREC, pub->packet_id, 0, 0);
		return 0;
	}
	if (pub->qos == 2 && c->version == ENG_V5 && c->qos2_count >= cfg->receive_maximum)
		return refuse(c, ENG_RC_RECEIVE_MAX_EXCEEDED, "more QoS 2 inflight than allowed");
	if ((c->acl || w->eng->hooks.n_acl) && !eng_may_publish(c, &topic, pub->qos, pub->retain)) {
		ENG_STAT_INC(&w->stats, acl_denied);
		ENG_INFO("client '%s': PUBLISH to '%.*s' denied by the ACL", c->client_id,
			 (int)topic.len, (const char *)topic.p);
		if (pub->qos == 1)
			ack_publish(c, ENG_PUBACK, pub->packet_id, ENG_RC_NOT_AUTHORIZED, 0);
		else if (pub->qos == 2)
			ack_publish(c, ENG_PUBREC, pub->packet_id, ENG_RC_NOT_AUTHORIZED, 0);
		return 0;
	}
	if (w->eng->hooks.n_intercept && eng_intercept_drop(c, pub, &topic)) {
		/* not routed, acknowledged as usual (the publisher cannot tell) */
		ENG_STAT_INC(&w->stats, intercept_dropped);
		matched = true;
		w->route_cores = 0;
		goto ack;
	}
	raw_ok = pub->qos == 0 && !(pub->props.present & (ENG_PBIT(ENG_PROP_TOPIC_ALIAS) |
							   ENG_PBIT(ENG_PROP_MESSAGE_EXPIRY)));
	m = eng_msg_new(w, pub, &topic, c->version, raw_ok ? w->cur_pkt : NULL,
			raw_ok ? w->cur_pkt_len : 0, w->now_ms);
	if (!m) {
		if (pub->qos == 0) {
			ENG_STAT_INC(&w->stats, drop_queue_full);
			return 0;
		}
		return refuse(c, ENG_RC_IMPL_SPECIFIC, "out of memory");
	}
	m->publisher = c;
	m->publisher_key = c->id_hash;
	matched = eng_route(w, m, c);
	eng_msg_unref(m);
	if (pub->qos == 0 && cfg->qos0_overload == ENG_QOS0_PAUSE)
		pause_check(c, w->route_cores);
ack:
	if (pub->qos == 1) {
		ack_publish(c, ENG_PUBACK, pub->packet_id,
			    matched ? ENG_RC_SUCCESS : ENG_RC_NO_MATCHING_SUBSCRIBERS,
			    w->route_cores);
	} else if (pub->qos == 2) {
		if (qos2_set(c, pub->packet_id) != 0)
			return refuse(c, ENG_RC_IMPL_SPECIFIC, "out of memory");
		ack_publish(c, ENG_PUBREC, pub->packet_id,
			    matched ? ENG_RC_SUCCESS : ENG_RC_NO_MATCHING_SUBSCRIBERS,
			    w->route_cores);
	}
	return c->conn ? 0 : -EPIPE;
}

/* Removes the inflight entry with pid in state; NULL if there is none. */
static struct eng_qent *inflight_take(struct eng_client *c, uint16_t pid, uint8_t state)
{
	struct eng_qent *prev = NULL, *q;

	for (q = c->inf_head; q; prev = q, q = q->next)
		if (q->pid == pid && q->state == state)
			break;
	if (!q)
		return NULL;
	if (prev)
		prev->next = q->next;
	else
		c->inf_head = q->next;
	if (c->inf_tail == q)
		c->inf_tail = prev;
	q->next = NULL;
	c->inflight--;
	return q;
}

static struct eng_qent *inflight_find(struct eng_client *c, uint16_t pid)
{
	for (struct eng_qent *q = c->inf_head; q; q = q->next)
		if (q->pid == pid)
			return q;
	return NULL;
}

int eng_handle_ack(struct eng_client *c, const struct eng_packet *pkt)
{
	struct eng_worker *w = c->w;
	uint16_t pid = pkt->u.ack.packet_id;
	struct eng_qent *q;

	switch (pkt->type) {
	case ENG_PUBACK:
		q = inflight_take(c, pid, QE_WAIT_ACK);
		if (q) {
			progress(c);
			eng_queue_free(w, q);
			eng_pump(c);
		}
		return 0;
	case ENG_PUBREC:
		q = inflight_find(c, pid);
		if (!q || (q->state != QE_WAIT_REC && q->state != QE_WAIT_COMP)) {
			send_ack(c, ENG_PUBREL, pid, ENG_RC_PACKET_ID_NOT_FOUND);
			return 0;
		}
		if (pkt->u.ack.reason >= 0x80) {
			/* MQTT 5: the receiver refused it; the exchange ends here */
			q = inflight_take(c, pid, QE_WAIT_REC);
			eng_queue_free(w, q);
			eng_pump(c);
			return 0;
		}
		progress(c);
		q->state = QE_WAIT_COMP;
		q->sent_ms = (uint32_t)w->now_ms;
		if (q->msg) {
			eng_msg_unref(q->msg);
			q->msg = NULL;
		}
		send_ack(c, ENG_PUBREL, pid, 0);
		return 0;
	case ENG_PUBCOMP:
		q = inflight_take(c, pid, QE_WAIT_COMP);
		if (q) {
			progress(c);
			eng_queue_free(w, q);
			eng_pump(c);
		}
		return 0;
	default: /* PUBREL: the end of an inbound QoS 2 exchange */
		if (qos2_test(c, pid)) {
			qos2_clear(c, pid);
			send_ack(c, ENG_PUBCOMP, pid, 0);
		} else {
			send_ack(c, ENG_PUBCOMP, pid, ENG_RC_PACKET_ID_NOT_FOUND);
		}
		return c->conn ? 0 : -EPIPE;
	}
}

/* SPDX-License-Identifier: MIT */
/*
 * A worker core: the run-to-completion loop and everything around one connection's bytes.
 *
 * Loop (never blocks except in ns_poll when idle):
 *   ns_poll batch -> per connection: decode (eng_decode) and handle each packet
 *   -> drain the inbound rings (other workers, control) -> push parked items, wake sleepers
 *   -> ns_flush -> run due timers -> mt_rcu_quiescent.
 *
 * Receive: DATA events are views valid until the next poll. Whole packets are handled in
 * place; only the tail of a partial packet is copied into the client's rxbuf, which is
 * taken lazily (ENG_RX_SMALL buffers from a per-worker pool, so a stream whose packets straddle
 * reads costs no malloc) and bounded by max_packet_size (the codec rejects larger packets from
 * their fixed header), and given back when empty so an idle connection holds no buffer.
 *
 * Send: packets are encoded into the worker's scratch buffer and copied into the transport by
 * ns_send(). When the transport refuses (-ENOBUFS), control packets (acks, SUBACK, PINGRESP)
 * go to the client's ctlbuf and its receive is paused until WRITABLE drains it: the client
 * cannot make the broker owe it more replies than one read's worth. Publishes stay in the
 * session queue (eng_publish.c) and are pumped on WRITABLE.
 *
 * Lifetime of a client object: created at ACCEPT, it carries the connection and then, for a
 * persistent session, survives it (CS_OFFLINE). It is freed when its state is CS_GONE and no
 * control request refers to it (pending_ops == 0): see eng_client_put().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "eng_internal.h"

#define CTLBUF_MAX (1u << 20)

/* ---------------------------------------------------------------------------------------------
 * Client id table (this core's sessions).
 */
static uint32_t ctab_slot(const struct eng_worker *w, const char *id, size_t len)
{
	return (uint32_t)eng_hash(id, len) & w->ctab_mask;
}

static void ctab_grow(struct eng_worker *w)
{
	uint32_t nsize = (w->ctab_mask + 1) * 2;
	struct eng_client **nt = calloc(nsize, sizeof(*nt));
	if (!nt)
		return; /* keep the longer chains */
	for (uint32_t i = 0; i <= w->ctab_mask; i++) {
		struct eng_client *c = w->ctab[i];
		while (c) {
			struct eng_client *n = c->hnext;
			uint32_t s = (uint32_t)eng_hash(c->client_id, c->client_id_len) & (nsize - 1);
			c->hnext = nt[s];
			nt[s] = c;
			c = n;
		}
	}
	free(w->ctab);
	w->ctab = nt;
	w->ctab_mask = nsize - 1;
}

void eng_ctab_insert(struct eng_worker *w, struct eng_client *c)
{
	uint32_t s;

	if (c->in_hash)
		return;
	if (w->ctab_count > w->ctab_mask)
		ctab_grow(w);
	s = ctab_slot(w, c->client_id, c->client_id_len);
	c->hnext = w->ctab[s];
	w->ctab[s] = c;
	c->in_hash = true;
	w->ctab_count++;
}

void eng_ctab_remove(struct eng_worker *w, struct eng_client *c)
{
	struct eng_client **pp;

	if (!c->in_hash)
		return;
	pp = &w->ctab[ctab_slot(w, c->client_id, c->client_id_len)];
	while (*pp && *pp != c)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = c->hnext;
	c->in_hash = false;
	w->ctab_count--;
}

struct eng_client *eng_ctab_find(struct eng_worker *w, const char *id, size_t len)
{
	struct eng_client *c = w->ctab[ctab_slot(w, id, len)];
	for (; c; c = c->hnext)
		if (c->client_id_len == len && memcmp(c->client_id, id, len) == 0)
			return c;
	return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Client objects.
 */
static struct eng_client *client_new(struct eng_worker *w, struct ns_conn *conn)
{
	struct eng_client *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->w = w;
	c->conn = conn;
	c->gen = ((uint64_t)w->id << 56) | ++w->next_gen;
	c->state = CS_NEW;
	c->t_conn.kind = TK_CONN;
	c->t_retry.kind = TK_RETRY; /* t_sess shares it: arm_sess() sets TK_SESS */
	c->last_rx_ms = w->now_ms;
	c->next = w->clients;
	if (w->clients)
		w->clients->prev = c;
	w->clients = c;
	w->nclients++;
	return c;
}

struct eng_client_cold *eng_client_cold(struct eng_client *c)
{
	if (!c->cold)
		c->cold = calloc(1, sizeof(*c->cold));
	return c->cold;
}

void eng_client_put(struct eng_client *c)
{
	struct eng_worker *w = c->w;

	if (c->state != CS_GONE || c->pending_ops || c->conn)
		return;
	eng_timer_cancel(&w->wheel, &c->t_conn);
	eng_timer_cancel(&w->wheel, &c->t_sess); /* and t_retry: one timer */
	eng_ctab_remove(w, c);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->nclients--;
	eng_queue_free(w, c->inf_head);
	eng_queue_free(w, c->q_head);
	c->q_count = 0;
	c->q_bytes = 0;
	eng_queue_level(c);
	eng_dack_drop(c);
	eng_paused_drop(c);
	while (c->subs) {
		struct eng_sub *s = c->subs;
		c->subs = s->next;
		free(s);
	}
	if (c->will)
		eng_msg_unref(c->will);
	if (c->cold) {
		eng_claim_free(c->cold->auth_cl);
		eng_alias_in_destroy(c->cold->alias_in);
		eng_alias_out_destroy(c->cold->alias_out);
		free(c->cold->username);
		free(c->cold);
	}
	eng_acl_set_free(c->acl);
	free(c->qos2_bits);
	eng_rx_release(c);
	free(c->ctlbuf);
	free(c->client_id);
	free(c);
}

/* ---------------------------------------------------------------------------------------------
 * Output.
 */
static int ctl_append(struct eng_client *c, const struct iovec *iov, unsigned n)
{
	size_t total = 0;
	for (unsigned i = 0; i < n; i++)
		total += iov[i].iov_len;
	if (c->ctllen + total > CTLBUF_MAX)
		return -ENOBUFS;
	if (c->ctllen + total > c->ctlcap) {
		uint32_t ncap = c->ctlcap ? c->ctlcap : 256;
		while (ncap < c->ctllen + total)
			ncap *= 2;
		uint8_t *nb = realloc(c->ctlbuf, ncap);
		if (!nb)
			return -ENOMEM;
		c->ctlbuf = nb;
		c->ctlcap = ncap;
	}
	for (unsigned i = 0; i < n; i++) {
		memcpy(c->ctlbuf + c->ctllen, iov[i].iov_base, iov[i].iov_len);
		c->ctllen += (uint32_t)iov[i].iov_len;
	}
	if (c->conn && !c->rx_paused) {
		ns_pause_rx(c->conn, true);
		c->rx_paused = true;
	}
	return 0;
}

/*
 * Sends bytes to the client. control: a reply that must not be lost (parked in ctlbuf when
 * the transport is full); otherwise -ENOBUFS tells the caller to keep the message queued.
 */
int eng_send_raw(struct eng_client *c, const struct iovec *iov, unsigned n, bool control)
{
	int rc;

	if (!c->conn || c->closing)
		return -EPIPE;
	if (c->ctllen) {
		if (!control)
			return -ENOBUFS;
		rc = ctl_append(c, iov, n);
	} else {
		rc = ns_send(c->conn, iov, n);
		if (rc == -ENOBUFS && control)
			rc = ctl_append(c, iov, n);
	}
	if (rc == 0) {
		size_t total = 0;
		for (unsigned i = 0; i < n; i++)
			total += iov[i].iov_len;
		ENG_STAT_ADD(&c->w->stats, bytes_out, total);
	} else if (control && rc != -EPIPE) {
		eng_client_close(c, ENG_RC_UNSPECIFIED, "reply backlog over its limit");
	}
	return rc;
}

int eng_send_pkt(struct eng_client *c, struct eng_packet *pkt)
{
	struct eng_worker *w = c->w;
	uint8_t *buf = w->scratch;
	int size = eng_encode_size(pkt, c->version);
	struct iovec iov;
	int rc;

	if (size > 0 && c->max_packet_out && (uint32_t)size > c->max_packet_out &&
	    pkt->type != ENG_PUBLISH) {
		/* MQTT 5 3.1.2.25: drop what may be dropped (reason string, user properties) */
		struct eng_props *pr = pkt->type == ENG_DISCONNECT || pkt->type == ENG_AUTH
					       ? &pkt->u.disconnect.props
				       : pkt->type == ENG_CONNACK ? &pkt->u.connack.props
				       : pkt->type == ENG_SUBACK || pkt->type == ENG_UNSUBACK
					       ? &pkt->u.suback.props
					       : &pkt->u.ack.props;
		pr->present &= ~(ENG_PBIT(ENG_PROP_REASON_STRING) | ENG_PBIT(ENG_PROP_USER));
		pr->user_count = 0;
		pr->raw.len = 0;
		size = eng_encode_size(pkt, c->version);
	}
	if (size < 0)
		ENG_DIE("a packet the broker built does not encode");
	if ((uint32_t)size > ENG_SCRATCH) {
		buf = malloc((size_t)size);
		if (!buf)
			return -ENOMEM;
	}
	if (eng_encode(pkt, c->version, buf, (size_t)size) != size)
		ENG_DIE("encoder size mismatch");
	iov.iov_base = buf;
	iov.iov_len = (size_t)size;
	rc = eng_send_raw(c, &iov, 1, true);
	if (buf != w->scratch)
		free(buf);
	return rc;
}

static void on_writable(struct eng_client *c)
{
	if (c->ctllen) {
		struct iovec iov = {c->ctlbuf, c->ctllen};
		if (ns_send(c->conn, &iov, 1) != 0)
			return; /* still full: another WRITABLE will come */
		c->ctllen = 0;
		if (c->ctlcap > 4096) {
			free(c->ctlbuf);
			c->ctlbuf = NULL;
			c->ctlcap = 0;
		}
		if (c->state == CS_ONLINE)
			eng_client_resume_rx(c);
	}
	eng_pump(c);
}

/* ---------------------------------------------------------------------------------------------
 * Closing.
 */
void eng_client_close(struct eng_client *c, uint8_t reason, const char *why)
{
	struct ns_conn *conn = c->conn;

	if (!conn || c->closing)
		return;
	if (why)
		ENG_NOTICE("client '%s' (%s): closing: %s (0x%02x %s)",
			   c->client_id ? c->client_id : "", ns_conn_peer(conn), why, reason,
			   eng_reason_name(reason));
	if (c->version == ENG_V5 && reason >= 0x80 && c->state == CS_ONLINE) {
		struct eng_packet pkt = {.type = ENG_DISCONNECT};
		pkt.u.disconnect.reason = reason;
		eng_send_pkt(c, &pkt);
	}
	c->closing = true;
	ns_conn_set_user(conn, NULL);
	ns_close(conn, true);
	c->conn = NULL;
	c->ctllen = 0;
	eng_conn_lost(c, true);
}

static void protocol_error(struct eng_client *c, const struct eng_decode_err *err)
{
	struct eng_worker *w = c->w;
	struct ns_conn *conn = c->conn;

	ENG_STAT_INC(&w->stats, protocol_errors);
	ENG_NOTICE("client '%s' (%s): %s %s: %s (0x%02x)", c->client_id ? c->client_id : "",
		   ns_conn_peer(conn), err->type ? eng_ptype_name(err->type) : "packet",
		   eng_reason_name(err->reason), err->what ? err->what : "", err->reason);
	if (err->action == ENG_ACT_CONNACK && c->state == CS_NEW) {
		struct eng_packet pkt = {.type = ENG_CONNACK};
		uint8_t v = err->version ? err->version : ENG_V311;
		pkt.u.connack.reason = err->reply;
		c->version = v;
		eng_send_pkt(c, &pkt);
		ENG_STAT_INC(&w->stats, connect_refused);
	} else if (err->action == ENG_ACT_DISCONNECT && c->version == ENG_V5 &&
		   c->state == CS_ONLINE) {
		struct eng_packet pkt = {.type = ENG_DISCONNECT};
		pkt.u.disconnect.reason = err->reply;
		eng_send_pkt(c, &pkt);
	}
	eng_client_close(c, 0, NULL);
}

/* ---------------------------------------------------------------------------------------------
 * Input.
 */
static int dispatch(struct eng_client *c, const struct eng_packet *pkt)
{
	if (c->state == CS_AUTH && pkt->type != ENG_AUTH && pkt->type != ENG_DISCONNECT)
		return eng_auth_expected(c);
	switch (pkt->type) {
	case ENG_CONNECT:
		return eng_handle_connect(c, pkt);
	case ENG_PUBLISH:
		return eng_handle_publish(c, pkt);
	case ENG_PUBACK:
	case ENG_PUBREC:
	case ENG_PUBREL:
	case ENG_PUBCOMP:
		return eng_handle_ack(c, pkt);
	case ENG_SUBSCRIBE:
		return eng_handle_subscribe(c, pkt);
	case ENG_UNSUBSCRIBE:
		return eng_handle_unsubscribe(c, pkt);
	case ENG_PINGREQ: {
		struct eng_packet r = {.type = ENG_PINGRESP};
		return eng_send_pkt(c, &r) == -EPIPE ? -EPIPE : 0;
	}
	case ENG_DISCONNECT:
		return eng_handle_disconnect(c, pkt);
	case ENG_AUTH:
		return eng_handle_auth(c, pkt);
	default:
		/* the codec lets through only packets a client may send */
		ENG_DIE("unexpected packet type from the codec");
	}
}

/* A receive buffer of cap bytes: ENG_RX_SMALL ones come from the worker's pool. */
static uint8_t *rx_buf_get(struct eng_worker *w, uint32_t cap)
{
	if (cap == ENG_RX_SMALL && w->rx_pool) {
		void **b = w->rx_pool;
		w->rx_pool = *b;
		w->rx_pool_n--;
		return (uint8_t *)b;
	}
	return malloc(cap);
}

static void rx_buf_put(struct eng_worker *w, uint8_t *buf, uint32_t cap)
{
	if (cap == ENG_RX_SMALL && w->rx_pool_n < ENG_RX_POOL_MAX) {
		*(void **)(void *)buf = w->rx_pool;
		w->rx_pool = buf;
		w->rx_pool_n++;
		return;
	}
	free(buf);
}

void eng_rx_pool_free(struct eng_worker *w)
{
	while (w->rx_pool) {
		void **b = w->rx_pool;
		w->rx_pool = *b;
		free(b);
	}
	w->rx_pool_n = 0;
}

static int rx_keep(struct eng_client *c, const uint8_t *p, uint32_t len)
{
	uint32_t limit = c->w->eng->cfg.max_packet_size + (128u << 10);
	if (c->rxlen + len > limit)
		return -EMSGSIZE;
	if (c->rxlen + len > c->rxcap) {
		uint32_t ncap = ENG_RX_SMALL;
		while (ncap < c->rxlen + len)
			ncap *= 2;
		uint8_t *nb = rx_buf_get(c->w, ncap);
		if (!nb)
			return -ENOMEM;
		if (c->rxbuf) {
			memcpy(nb, c->rxbuf, c->rxlen);
			rx_buf_put(c->w, c->rxbuf, c->rxcap);
		}
		c->rxbuf = nb;
		c->rxcap = ncap;
	}
	memcpy(c->rxbuf + c->rxlen, p, len);
	c->rxlen += len;
	return 0;
}

void eng_rx_release(struct eng_client *c)
{
	if (c->rxbuf)
		rx_buf_put(c->w, c->rxbuf, c->rxcap);
	c->rxbuf = NULL;
	c->rxlen = 0;
	c->rxcap = 0;
}

/* Decodes and handles what buf holds; returns the bytes consumed. */
static uint32_t decode_run(struct eng_client *c, const uint8_t *buf, uint32_t len)
{
	uint32_t off = 0;

	/* ovl_paused: the rest waits, unread, until the QoS 0 overload clears */
	while (off < len && c->conn && !c->ovl_paused &&
	       (c->state == CS_NEW || c->state == CS_ONLINE || c->state == CS_AUTH)) {
		struct eng_packet pkt;
		struct eng_decode_err err;
		/* the version is 0 until CONNECT: then only a CONNECT decodes */
		struct eng_codec_ctx cx = {.version = c->version, .role = ENG_ROLE_SERVER,
					   .max_packet = c->w->eng->cfg.max_packet_size};
		int rc = eng_decode(&cx, buf + off, len - off, &pkt, &err);
		if (rc == -EAGAIN)
			break;
		if (rc < 0) {
			protocol_error(c, &err);
			return len;
		}
		c->w->cur_pkt = buf + off;
		c->w->cur_pkt_len = (uint32_t)rc;
		off += (uint32_t)rc;
		c->last_rx_ms = c->w->now_ms;
		if (dispatch(c, &pkt) < 0)
			return len;
	}
	return off;
}

static void on_data(struct eng_client *c, const uint8_t *data, uint32_t len)
{
	uint32_t used;

	ENG_STAT_ADD(&c->w->stats, bytes_in, len);
	if (c->rxlen || c->state == CS_CONNECTING) {
		if (rx_keep(c, data, len) != 0) {
			eng_client_close(c, ENG_RC_PACKET_TOO_LARGE, "receive buffer over its limit");
			return;
		}
		if (c->state == CS_CONNECTING)
			return; /* handled once the CONNECT is answered */
		used = decode_run(c, c->rxbuf, c->rxlen);
		if (!c->conn) {
			eng_rx_release(c);
			return;
		}
		memmove(c->rxbuf, c->rxbuf + used, c->rxlen - used);
		c->rxlen -= used;
		if (!c->rxlen)
			eng_rx_release(c);
		return;
	}
	used = decode_run(c, data, len);
	if (c->conn && used < len && rx_keep(c, data + used, len - used) != 0)
		eng_client_close(c, ENG_RC_PACKET_TOO_LARGE, "receive buffer over its limit");
}

/* After CONNACK: handle what arrived behind the CONNECT, then receive again. */
void eng_client_resume_rx(struct eng_client *c)
{
	if (c->rxlen && (c->state == CS_ONLINE || c->state == CS_AUTH)) {
		eng_client_pin(c);
		uint32_t used = decode_run(c, c->rxbuf, c->rxlen);
		c->pending_ops--; /* unpinned below, where nothing touches c any more */
		if (!c->conn) {
			eng_rx_release(c);
			eng_client_put(c);
			return;
		}
		memmove(c->rxbuf, c->rxbuf + used, c->rxlen - used);
		c->rxlen -= used;
		if (!c->rxlen)
			eng_rx_release(c);
	}
	if (c->conn && c->rx_paused && !c->ctllen && !c->ovl_paused) {
		ns_pause_rx(c->conn, false);
		c->rx_paused = false;
	}
}

static void on_accept(struct eng_worker *w, struct ns_conn *conn)
{
	struct tachyon *e = w->eng;
	uint32_t cap = (e->cfg.max_connections + e->nworkers - 1) / e->nworkers;
	struct eng_client *c;

	if (w->nclients >= cap || w->shutdown_phase) {
		ENG_STAT_INC(&w->stats, conn_refused_max);
		ns_close(conn, false);
		return;
	}
	c = client_new(w, conn);
	if (!c) {
		ENG_STAT_INC(&w->stats, conn_refused_max);
		ns_close(conn, false);
		return;
	}
	ns_conn_set_user(conn, c);
	eng_timer_arm(&w->wheel, &c->t_conn, w->now_ms + e->cfg.connect_timeout * 1000ull);
}

static void on_closed(struct eng_client *c)
{
	c->conn = NULL;
	c->ctllen = 0;
	eng_conn_lost(c, true);
}

/* ---------------------------------------------------------------------------------------------
 * Inbound rings.
 */
static void shutdown_phase(struct eng_worker *w, uint32_t phase)
{
	struct eng_ritem it = {.type = RI_SHUTDOWN, .a = phase};
	struct eng_client *c, *n;

	w->shutdown_phase = phase;
	if (phase == 1) {
		/* the server is going away: every will is due now (its session ends too) */
		for (c = w->clients; c; c = c->next)
			if (c->will && (c->state == CS_ONLINE || c->state == CS_OFFLINE))
				eng_will_publish(c);
	} else {
		for (c = w->clients; c; c = n) {
			n = c->next;
			if (c->conn)
				eng_client_close(c, ENG_RC_SERVER_SHUTTING_DOWN, NULL);
		}
	}
	eng_post(w->eng, w->id, w->eng->nworkers, &it, false);
}

static unsigned drain_inbox(struct eng_worker *w)
{
	struct tachyon *e = w->eng;
	struct eng_ritem items[64];
	unsigned total = 0;

	for (unsigned src = 0; src <= e->nworkers; src++) {
		struct eng_ring *r = eng_ring_of(e, src, w->id);
		unsigned n, budget = ENG_INBOX_BATCH;
		while (budget && (n = eng_ring_pop(r, items, budget < 64 ? budget : 64)) > 0) {
			budget -= n;
			total += n;
			for (unsigned i = 0; i < n; i++) {
				struct eng_ritem *it = &items[i];
				switch (it->type) {
				case RI_PUB:
					eng_route_local(w, it->p, NULL);
					eng_msg_unref(it->p);
					break;
				case RI_SHARE:
					eng_route_share(w, it->p, it->b, it->c);
					eng_msg_unref(it->p);
					break;
				case RI_CLAIM:
					eng_connect_answer(w, it->p);
					break;
				case RI_TAKEOVER:
					eng_takeover(w, it->p);
					break;
				case RI_SUB:
					eng_suback_answer(w, it->p);
					break;
				case RI_AUTH:
					eng_auth_answer(w, it->p);
					break;
				case RI_SHUTDOWN:
					shutdown_phase(w, it->a);
					break;
				case RI_FWD:
					eng_xfer_fwd_in(w, it);
					break;
				case RI_FENCE:
				case RI_FENCE_ACK:
					eng_xfer_fence(w, it->p);
					break;
				case RI_FWD_END:
					eng_xfer_end(w, it->p);
					break;
				default:
					ENG_DIE("unknown cross-core item");
				}
			}
		}
	}
	return total;
}

static bool inbox_empty(struct eng_worker *w)
{
	struct tachyon *e = w->eng;
	for (unsigned src = 0; src <= e->nworkers; src++)
		if (!eng_ring_empty(eng_ring_of(e, src, w->id)))
			return false;
	return true;
}

/* ---------------------------------------------------------------------------------------------
 * The loop.
 */
void *eng_worker_main(void *arg)
{
	struct eng_worker *w = arg;
	struct tachyon *e = w->eng;
	struct ns_event ev[ENG_POLL_BATCH];
	bool busy = true;

	eng_cur_worker = w;
	mt_rcu_register_thread();
	/* acquire: pairs with the control thread's release store when shutting down */
	while (!atomic_load_explicit(&e->workers_exit, memory_order_acquire)) {
		int timeout = 0;
		unsigned n;

		if (!busy) {
			atomic_store_explicit(&w->sleeping, true, memory_order_relaxed);
			/* seq_cst: pairs with the producers' fence in eng_post_flush() */
			atomic_thread_fence(memory_order_seq_cst);
			if (inbox_empty(w))
				timeout = (int)ENG_TICK_MS;
			else
				atomic_store_explicit(&w->sleeping, false, memory_order_relaxed);
		}
		if (timeout) {
			mt_rcu_offline();
			n = ns_poll(w->nsw, ev, ENG_POLL_BATCH, timeout);
			mt_rcu_online();
			atomic_store_explicit(&w->sleeping, false, memory_order_relaxed);
		} else {
			n = ns_poll(w->nsw, ev, ENG_POLL_BATCH, 0);
		}
		w->now_ms = eng_now_ms();
		busy = n > 0;
		for (unsigned i = 0; i < n; i++) {
			/* The user as it is now, not ev[i].user: an earlier event of this batch may
			 * have closed the client (and freed it) and a connection can have several
			 * events in one batch (DATA views, then CLOSED). The handle is valid for the
			 * whole batch (ns.h). */
			struct eng_client *c =
				ev[i].type == NS_EV_ACCEPT ? NULL : ns_conn_user(ev[i].conn);
			switch (ev[i].type) {
			case NS_EV_ACCEPT:
				on_accept(w, ev[i].conn);
				break;
			case NS_EV_DATA:
				if (c && c->conn) {
					eng_client_pin(c);
					on_data(c, ev[i].data, ev[i].len);
					eng_client_unpin(c);
				}
				break;
			case NS_EV_WRITABLE:
				if (c && c->conn) {
					eng_client_pin(c);
					on_writable(c);
					eng_client_unpin(c);
				}
				break;
			case NS_EV_CLOSED:
				if (c && c->conn == ev[i].conn)
					on_closed(c);
				break;
			default:
				break;
			}
		}
		if (drain_inbox(w))
			busy = true;
		if (w->dack_list) {
			/* acks held back for congested cores: re-check every iteration */
			eng_dack_flush(w, false);
			busy = busy || w->dack_list;
		}
		if (w->paused_list) {
			/* publishers paused by QoS 0 overload: the same */
			eng_paused_flush(w);
			busy = busy || w->paused_list;
		}
		if (w->over_list && w->now_ms >= w->slow_scan_ms) {
			eng_slow_scan(w);
			w->slow_scan_ms = w->now_ms + 100;
		}
		eng_post_flush(e, w->id);
		if (w->ret_dirty_cls)
			eng_msg_ret_flush(w);
		ns_flush(w->nsw);
		eng_wheel_run(&w->wheel, w->now_ms, eng_timer_fire, w);
		mt_rcu_quiescent();
	}
	mt_rcu_unregister_thread();
	return NULL;
}

struct eng_worker *eng_worker_create(struct tachyon *e, unsigned id)
{
	struct eng_worker *w = aligned_alloc(ENG_CACHE_LINE, (sizeof(*w) + ENG_CACHE_LINE - 1) &
								     ~(size_t)(ENG_CACHE_LINE - 1));
	if (!w)
		return NULL;
	memset(w, 0, sizeof(*w));
	w->eng = e;
	w->id = id;
	w->nsw = ns_worker_get(e->ns, id);
	w->now_ms = eng_now_ms();
	eng_wheel_init(&w->wheel, w->now_ms);
	w->share_ctx.rr = id;
	w->local = mt_local_create(&e->mtcfg);
	w->scratch = malloc(ENG_SCRATCH);
	w->ctab_mask = 255;
	w->ctab = calloc(w->ctab_mask + 1, sizeof(*w->ctab));
	if (!w->local || !w->scratch || !w->ctab) {
		eng_worker_destroy(w);
		return NULL;
	}
	return w;
}

void eng_worker_destroy(struct eng_worker *w)
{
	if (!w)
		return;
	eng_cur_worker = w;
	w->exiting = true; /* other workers may be gone: their blocks are freed */
	while (w->clients) {
		struct eng_client *c = w->clients;
		if (c->conn) {
			ns_conn_set_user(c->conn, NULL);
			c->conn = NULL;
		}
		eng_subs_drop(c, false);
		c->state = CS_GONE;
		c->pending_ops = 0;
		eng_client_put(c);
	}
	eng_pools_free(w);
	eng_rx_pool_free(w);
	eng_cur_worker = NULL;
	mt_local_destroy(w->local);
	free(w->ctab);
	free(w->scratch);
	free(w);
}

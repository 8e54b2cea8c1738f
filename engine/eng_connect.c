/* SPDX-License-Identifier: MIT */
/*
 * CONNECT / CONNACK, DISCONNECT, AUTH, keepalive, wills and the end of sessions, and the
 * worker's half of session takeover.
 *
 * Session takeover (design):
 *   The control thread owns the registry client id -> (core, gen), where gen names one
 *   client object. A CONNECT never looks at other cores: the worker validates it, pauses the
 *   connection's receive, and sends a claim to the control thread (RI_CLAIM). Control checks
 *   the credentials, binds the client's ACL rules, and
 *     - id unknown: registers (new core, new gen) and answers at once;
 *     - id known:   registers (new core, new gen) and sends the claim to the old core
 *                   (RI_TAKEOVER), which may be the same core.
 *   The old core finds the session by id and old gen. It closes the old connection (MQTT 5:
 *   DISCONNECT 0x8E), settles the old connection's will, and then either ships the session
 *   state inside the claim (clean start 0: subscriptions, inflight and queued messages with
 *   their references, inbound QoS 2 ids, packet id counter) or ends it (clean start 1: its
 *   subscriptions leave the index through RI_IDX_DEL, ahead of the claim on the same ring).
 *   It removes its own mt_local entries itself; control moves the shipped subscriptions in
 *   mt_index from the old core to the new one before answering the new core (RI_CLAIM).
 *   The new core subscribes them in its mt_local, adopts the queues, sends CONNACK with
 *   Session Present, resends the inflight messages with DUP and pumps the queue. Only then is
 *   the rest of what the client sent after its CONNECT decoded.
 *   Invariants: a session lives on exactly one core; each registry entry's gen is the only
 *   client object allowed to release it (RI_RELEASE with a stale gen is ignored); items on one
 *   ring are handled in order, so a core sees the answers to its earlier requests before a
 *   takeover of the same session.
 *   With subscriptions, the move is finished in eng_xfer.c so that nothing routed around it
 *   is lost or doubled: the old object stays in the old core's mt_local as a forwarder
 *   (CS_MOVED) to the new session, the new core adopts the subscriptions before control
 *   moves the index (RI_ADOPTED), and a fence through every core tells the old core when
 *   nothing routed under the old index can still arrive.
 *
 * Authentication (design): the claim's credentials are decided by the control thread
 * (anonymous access) or, when a password, a hook or a method is involved, by an auth thread
 * (eng_auth.c); the connection waits in CS_CONNECTING meanwhile, its receive paused.
 * Enhanced authentication (MQTT 5, 4.12): a CONNECT naming a registered method carries its
 * Authentication Data in the claim; each step of the method runs on an auth thread. A
 * "continue" comes back here (RI_AUTH): AUTH 0x18 goes to the client, the claim is parked in
 * c->auth_cl and the client waits in CS_AUTH (only AUTH and DISCONNECT allowed, the CONNECT
 * timeout armed again) until its AUTH 0x18 sends the claim on its next trip (RI_CLAIM, one
 * step further). Success continues as any claim (CONNACK carries the method and the last
 * data), failure is a CONNACK with the method's reason. Re-authentication (AUTH 0x19 on a
 * live connection with the same method) makes a claim of its own (reauth) that travels
 * RI_REAUTH / RI_AUTH while the connection goes on; it ends with AUTH 0x00, or DISCONNECT with
 * the reason on failure. The claim pins the client (pending_ops) for as long as it exists.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eng_internal.h"

static uint8_t v3_code(uint8_t reason)
{
	switch (reason) {
	case ENG_RC_SUCCESS:
		return ENG_V3_ACCEPTED;
	case ENG_RC_UNSUPPORTED_VERSION:
		return ENG_V3_BAD_VERSION;
	case ENG_RC_CLIENT_ID_INVALID:
		return ENG_V3_ID_REJECTED;
	case ENG_RC_BAD_USER_OR_PASSWORD:
	case ENG_RC_BAD_AUTH_METHOD:
		return ENG_V3_BAD_USER_OR_PASSWORD;
	case ENG_RC_NOT_AUTHORIZED:
	case ENG_RC_BANNED:
		return ENG_V3_NOT_AUTHORIZED;
	default:
		return ENG_V3_SERVER_UNAVAILABLE;
	}
}

/* Refuses a CONNECT: CONNACK with reason (mapped for 3.x), then close. */
static int connack_refuse(struct eng_client *c, uint8_t reason, const char *why)
{
	struct eng_packet pkt = {.type = ENG_CONNACK};

	ENG_STAT_INC(&c->w->stats, connect_refused);
	ENG_NOTICE("client '%s' (%s): CONNECT refused: %s (0x%02x)",
		   c->client_id ? c->client_id : "", c->conn ? ns_conn_peer(c->conn) : "-", why,
		   reason);
	pkt.u.connack.reason = c->version == ENG_V5 ? reason : v3_code(reason);
	if (c->version == ENG_V5 && c->problem_info && why) {
		pkt.u.connack.props.present = ENG_PBIT(ENG_PROP_REASON_STRING);
		pkt.u.connack.props.reason_string = (struct eng_str){(const uint8_t *)why,
								     (uint32_t)strlen(why)};
	}
	eng_send_pkt(c, &pkt);
	eng_client_close(c, 0, NULL);
	return -EPERM;
}

void eng_claim_free(struct eng_claim *cl)
{
	if (!cl)
		return;
	free(cl->client_id);
	free(cl->username);
	free(cl->password);
	eng_acl_set_free(cl->acl);
	while (cl->subs) {
		struct eng_sub *s = cl->subs;
		cl->subs = s->next;
		free(s);
	}
	eng_queue_free(eng_cur_worker, cl->inf_head);
	eng_queue_free(eng_cur_worker, cl->q_head);
	free(cl->qos2_bits);
	free(cl->auth_data);
	free(cl->auth_out);
	eng_pwref_put(cl->pw);
	free(cl);
}

static char *dupmem(const uint8_t *p, size_t len)
{
	char *s = malloc(len + 1);
	if (s) {
		if (len)
			memcpy(s, p, len);
		s[len] = '\0';
	}
	return s;
}

int eng_handle_connect(struct eng_client *c, const struct eng_packet *pkt)
{
	const struct eng_connect *cn = &pkt->u.connect;
	struct eng_worker *w = c->w;
	const struct eng_config *cfg = &w->eng->cfg;
	struct eng_claim *cl;
	struct eng_ritem it = {.type = RI_CLAIM};
	char assigned[40];
	uint32_t expiry_asked;
	const uint8_t *id = cn->client_id.p;
	size_t idlen = cn->client_id.len;

	c->version = cn->version;
	c->clean_start = cn->clean_start;
	c->problem_info = true;
	eng_timer_cancel(&w->wheel, &c->t_conn);

	if (cn->version == ENG_V5) {
		const struct eng_props *pr = &cn->props;
		if (pr->present & ENG_PBIT(ENG_PROP_REQUEST_PROBLEM_INFO))
			c->problem_info = pr->request_problem_info;
		c->recv_max = (pr->present & ENG_PBIT(ENG_PROP_RECEIVE_MAXIMUM))
				      ? pr->receive_maximum : 65535;
		c->max_packet_out = (pr->present & ENG_PBIT(ENG_PROP_MAXIMUM_PACKET_SIZE))
					    ? pr->maximum_packet_size : 0;
		/* the outbound alias table (2 KiB at the default 16) is made by the first
		 * PUBLISH that can use it (eng_publish.c): an idle connection holds none */
		c->alias_max_out = (pr->present & ENG_PBIT(ENG_PROP_TOPIC_ALIAS_MAXIMUM))
					   ? pr->topic_alias_maximum : 0;
		if (c->alias_max_out > cfg->topic_alias_maximum_out)
			c->alias_max_out = (uint16_t)cfg->topic_alias_maximum_out;
		c->session_expiry = (pr->present & ENG_PBIT(ENG_PROP_SESSION_EXPIRY))
					    ? pr->session_expiry : 0;
		if (pr->present & ENG_PBIT(ENG_PROP_AUTH_METHOD)) {
			c->auth_method = eng_method_find(w->eng, pr->auth_method.p,
							 pr->auth_method.len);
			if (!c->auth_method)
				return connack_refuse(c, ENG_RC_BAD_AUTH_METHOD,
						      "unknown authentication method");
		}
	} else {
		c->recv_max = 65535;
		c->session_expiry = cn->clean_start ? 0 : UINT32_MAX;
	}
	expiry_asked = c->session_expiry;
	if (c->session_expiry > cfg->max_session_expiry)
		c->session_expiry = cfg->max_session_expiry;
	c->keepalive = cn->keepalive;
	if (cfg->max_keepalive && (c->keepalive == 0 || c->keepalive > cfg->max_keepalive))
		c->keepalive = (uint16_t)cfg->max_keepalive;

	/* client identifier rules */
	if (idlen == 0) {
		if (cn->version == ENG_V31 || (cn->version == ENG_V311 && !cn->clean_start))
			return connack_refuse(c, ENG_RC_CLIENT_ID_INVALID,
					      "empty client identifier needs a clean session");
		snprintf(assigned, sizeof(assigned), "auto-%016llx",
			 (unsigned long long)(c->gen ^ (w->eng->start_ms << 20)));
		id = (const uint8_t *)assigned;
		c->id_assigned = true;
		idlen = strlen(assigned);
	} else if (memchr(id, '\0', idlen)) {
		return connack_refuse(c, ENG_RC_CLIENT_ID_INVALID, "NUL in the client identifier");
	}
	c->client_id = dupmem(id, idlen);
	if (!c->client_id)
		return connack_refuse(c, ENG_RC_SERVER_UNAVAILABLE, "out of memory");
	c->client_id_len = (uint16_t)idlen;
	c->id_hash = eng_hash(id, idlen);
	/* the cold state, made now for what needs it later without a way to fail: a parked
	 * enhanced-auth claim, a session move into this client */
	if ((cn->has_username || c->auth_method || !cn->clean_start) && !eng_client_cold(c))
		return connack_refuse(c, ENG_RC_SERVER_UNAVAILABLE, "out of memory");
	if (cn->has_username) {
		c->cold->username = dupmem(cn->username.p, cn->username.len);
		c->cold->username_len = (uint16_t)cn->username.len;
	}

	/* the will */
	if (cn->will) {
		const char *why = NULL;
		struct eng_publish wp = {.qos = cn->will_qos, .retain = cn->will_retain,
					 .topic = cn->will_topic, .payload = cn->will_payload,
					 .props = cn->will_props};
		if (cn->will_qos > cfg->max_qos)
			return connack_refuse(c, ENG_RC_QOS_NOT_SUPPORTED, "will QoS not supported");
		if (cn->will_retain && !cfg->retain_available)
			return connack_refuse(c, ENG_RC_RETAIN_NOT_SUPPORTED,
					      "retained messages are not available");
		if (mt_topic_name_check(&w->eng->mtcfg, (const char *)cn->will_topic.p,
					cn->will_topic.len, &why) != 0 ||
		    (cn->will_topic.len && cn->will_topic.p[0] == '$'))
			return connack_refuse(c, ENG_RC_TOPIC_NAME_INVALID,
					      why ? why : "will topic starts with '$'");
		c->will = eng_msg_new(w, &wp, &cn->will_topic, cn->version, NULL, 0, w->now_ms);
		if (!c->will)
			return connack_refuse(c, ENG_RC_SERVER_UNAVAILABLE, "out of memory");
		c->will->publisher = c;
		c->will->publisher_key = c->id_hash;
		c->will_delay = (cn->will_props.present & ENG_PBIT(ENG_PROP_WILL_DELAY))
					? cn->will_props.will_delay : 0;
	}

	cl = calloc(1, sizeof(*cl));
	if (!cl)
		return connack_refuse(c, ENG_RC_SERVER_UNAVAILABLE, "out of memory");
	cl->client = c;
	cl->gen = c->gen;
	cl->new_core = (uint16_t)w->id;
	cl->version = c->version;
	cl->clean_start = cn->clean_start;
	cl->expiry_asked = expiry_asked;
	cl->ka_asked = cn->keepalive;
	cl->client_id = dupmem(id, idlen);
	cl->has_username = cn->has_username;
	cl->has_password = cn->has_password;
	if (cn->has_username) {
		cl->username = (uint8_t *)dupmem(cn->username.p, cn->username.len);
		cl->username_len = cn->username.len;
	}
	if (cn->has_password) {
		cl->password = (uint8_t *)dupmem(cn->password.p, cn->password.len);
		cl->password_len = cn->password.len;
	}
	cl->method = c->auth_method;
	if (c->auth_method && (cn->props.present & ENG_PBIT(ENG_PROP_AUTH_DATA))) {
		cl->auth_data = (uint8_t *)dupmem(cn->props.auth_data.p, cn->props.auth_data.len);
		cl->auth_data_len = cn->props.auth_data.len;
	}
	snprintf(cl->peer, sizeof(cl->peer), "%s", ns_conn_peer(c->conn));
	if (!cl->client_id || (cn->has_username && !cl->username) ||
	    (cn->has_password && !cl->password) ||
	    (c->auth_method && (cn->props.present & ENG_PBIT(ENG_PROP_AUTH_DATA)) &&
	     !cl->auth_data)) {
		eng_claim_free(cl);
		return connack_refuse(c, ENG_RC_SERVER_UNAVAILABLE, "out of memory");
	}
	c->state = CS_CONNECTING;
	c->pending_ops++;
	if (!c->rx_paused) {
		ns_pause_rx(c->conn, true);
		c->rx_paused = true;
	}
	it.p = cl;
	eng_post(w->eng, w->id, w->eng->nworkers, &it, false);
	return 1;
}

static void adopt(struct eng_client *c, struct eng_claim *cl)
{
	struct eng_worker *w = c->w;
	struct eng_qent *q;

	while (cl->subs) {
		struct eng_sub *s = cl->subs;
		cl->subs = s->next;
		if (mt_local_subscribe(w->local, c, s->filter, s->len, &s->opts, NULL) != 0) {
			free(s); /* cannot happen for a filter it held before; not kept */
			continue;
		}
		s->next = c->subs;
		c->subs = s;
		c->nsubs++;
	}
	c->inf_head = cl->inf_head;
	for (c->inf_tail = NULL, q = c->inf_head; q; q = q->next)
		c->inf_tail = q;
	c->inflight = cl->inflight;
	/* behind the shipped queue: what the old core forwarded before this answer */
	struct eng_qent *early = c->q_head;
	c->q_head = cl->q_head;
	for (c->q_tail = NULL, q = c->q_head; q; q = q->next)
		c->q_tail = q;
	if (early) {
		if (c->q_tail)
			c->q_tail->next = early;
		else
			c->q_head = early;
		for (q = early; q; q = q->next)
			c->q_tail = q;
	}
	c->q_count += cl->q_count;
	c->q_bytes += cl->q_bytes;
	eng_queue_level(c);
	c->qos2_bits = cl->qos2_bits;
	c->qos2_count = cl->qos2_count;
	c->next_pid = cl->next_pid;
	c->pid_seq = cl->pid_seq;
	cl->inf_head = cl->q_head = NULL;
	cl->qos2_bits = NULL;
	atomic_store_explicit(&w->stats.subscriptions,
			      atomic_load_explicit(&w->stats.subscriptions, memory_order_relaxed) +
				      c->nsubs,
			      memory_order_relaxed);
}

/* The Authentication Method of c's exchange, and data when len > 0, into pr. */
static void auth_props(const struct eng_client *c, struct eng_props *pr, const uint8_t *data,
		       uint32_t len)
{
	const struct eng_method *m = &c->w->eng->hooks.methods[c->auth_method - 1];

	pr->present |= ENG_PBIT(ENG_PROP_AUTH_METHOD);
	pr->auth_method = (struct eng_str){(const uint8_t *)m->name, m->len};
	if (len) {
		pr->present |= ENG_PBIT(ENG_PROP_AUTH_DATA);
		pr->auth_data = (struct eng_str){data, len};
	}
}

static int send_auth(struct eng_client *c, uint8_t reason, const uint8_t *data, uint32_t len)
{
	struct eng_packet pkt = {.type = ENG_AUTH};

	pkt.u.disconnect.reason = reason;
	auth_props(c, &pkt.u.disconnect.props, data, len);
	return eng_send_pkt(c, &pkt);
}

static void send_connack(struct eng_client *c, bool present, uint32_t asked_expiry,
			 uint16_t asked_ka, bool assigned, const uint8_t *adata, uint32_t alen)
{
	const struct eng_config *cfg = &c->w->eng->cfg;
	struct eng_packet pkt = {.type = ENG_CONNACK};
	struct eng_props *pr = &pkt.u.connack.props;

	pkt.u.connack.session_present = present;
	if (c->version == ENG_V5) {
		if (asked_expiry != c->session_expiry) {
			pr->present |= ENG_PBIT(ENG_PROP_SESSION_EXPIRY);
			pr->session_expiry = c->session_expiry;
		}
		if (cfg->receive_maximum < 65535) {
			pr->present |= ENG_PBIT(ENG_PROP_RECEIVE_MAXIMUM);
			pr->receive_maximum = (uint16_t)cfg->receive_maximum;
		}
		if (cfg->max_qos < 2) {
			pr->present |= ENG_PBIT(ENG_PROP_MAXIMUM_QOS);
			pr->maximum_qos = (uint8_t)cfg->max_qos;
		}
		if (!cfg->retain_available) {
			pr->present |= ENG_PBIT(ENG_PROP_RETAIN_AVAILABLE);
			pr->retain_available = 0;
		}
		pr->present |= ENG_PBIT(ENG_PROP_MAXIMUM_PACKET_SIZE);
		pr->maximum_packet_size = cfg->max_packet_size;
		if (cfg->topic_alias_maximum) {
			pr->present |= ENG_PBIT(ENG_PROP_TOPIC_ALIAS_MAXIMUM);
			pr->topic_alias_maximum = (uint16_t)cfg->topic_alias_maximum;
		}
		if (assigned) {
			pr->present |= ENG_PBIT(ENG_PROP_ASSIGNED_CLIENT_ID);
			pr->assigned_client_id = (struct eng_str){(const uint8_t *)c->client_id,
								  c->client_id_len};
		}
		if (asked_ka != c->keepalive) {
			pr->present |= ENG_PBIT(ENG_PROP_SERVER_KEEP_ALIVE);
			pr->server_keep_alive = c->keepalive;
		}
		if (c->auth_method)
			auth_props(c, pr, adata, alen);
	}
	eng_send_pkt(c, &pkt);
}

static const char *refusal(uint8_t reason)
{
	switch (reason) {
	case ENG_RC_NOT_AUTHORIZED:
		return "not authorized";
	case ENG_RC_BAD_USER_OR_PASSWORD:
		return "bad user name or password";
	case ENG_RC_SERVER_BUSY:
		return "server busy";
	default:
		return eng_reason_name(reason);
	}
}

/* At the CONNACK: the cold state made at CONNECT for a session move that did not come, with
 * nothing else in it, goes (a move into a client comes only with its CONNECT). */
static void cold_trim(struct eng_client *c)
{
	const struct eng_client_cold *x = c->cold;

	if (x && !x->username && !x->auth_cl && !x->alias_in && !x->alias_out && !x->xfer &&
	    !x->min_epoch && !c->auth_method) {
		free(c->cold);
		c->cold = NULL;
	}
}

void eng_connect_answer(struct eng_worker *w, struct eng_claim *cl)
{
	struct eng_client *c = cl->client;
	bool present = cl->found && !cl->clean_start;
	uint32_t expiry_asked = cl->expiry_asked;
	uint16_t ka_asked = cl->ka_asked;
	uint8_t *adata;
	uint32_t alen;

	c->pending_ops--;
	if (cl->result != ENG_RC_SUCCESS) {
		uint8_t r = cl->result;
		if (r == ENG_RC_BAD_USER_OR_PASSWORD || r == ENG_RC_NOT_AUTHORIZED ||
		    r == ENG_RC_BANNED || r == ENG_RC_BAD_AUTH_METHOD)
			ENG_STAT_INC(&w->stats, auth_failures);
		else if (r == ENG_RC_SERVER_BUSY)
			ENG_STAT_INC(&w->stats, auth_busy);
		if (c->conn && !c->closing) {
			c->state = CS_NEW; /* so the close does not look for a session */
			connack_refuse(c, cl->result, refusal(cl->result));
		} else {
			c->state = CS_GONE;
			eng_client_put(c);
		}
		eng_claim_free(cl);
		return;
	}
	c->acl = cl->acl;
	cl->acl = NULL;
	if (present)
		adopt(c, cl);
	adata = cl->auth_out; /* the method's last data goes with the CONNACK */
	alen = cl->auth_out_len;
	cl->auth_out = NULL;
	if (cl->xfer) {
		eng_xfer_adopted(w, c, cl->xfer); /* the index may move now */
		cl->xfer = NULL;
	}
	cold_trim(c);
	eng_claim_free(cl);
	eng_ctab_insert(w, c);
	atomic_store_explicit(&w->stats.sessions,
			      atomic_load_explicit(&w->stats.sessions, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	c->state = CS_ONLINE;
	eng_queue_level(c); /* an adopted full queue holds publishers back again */
	ENG_STAT_ADD(&w->stats, clients_online, 1);
	if (!c->conn || c->closing) {
		/* the connection went away while the claim travelled */
		free(adata);
		c->conn = NULL;
		eng_conn_lost(c, true);
		return;
	}
	ENG_STAT_INC(&w->stats, connects);
	ENG_INFO("client '%s' (%s) connected, MQTT %s, session %s", c->client_id,
		 ns_conn_peer(c->conn),
		 c->version == ENG_V5 ? "5.0" : c->version == ENG_V311 ? "3.1.1" : "3.1",
		 present ? "resumed" : "new");
	eng_client_pin(c);
	send_connack(c, present, expiry_asked, ka_asked, c->id_assigned, adata, alen);
	free(adata);
	c->last_rx_ms = w->now_ms;
	if (c->keepalive && c->conn)
		eng_timer_arm(&w->wheel, &c->t_conn, w->now_ms + c->keepalive * 1500ull);
	if (present)
		eng_resend_inflight(c);
	eng_pump(c);
	eng_client_resume_rx(c);
	eng_client_unpin(c);
}

void eng_will_publish(struct eng_client *c)
{
	struct eng_worker *w = c->w;
	struct eng_msg *m = c->will;

	c->will = NULL;
	c->will_at_set = false;
	if (!m)
		return;
	if ((c->acl || w->eng->hooks.n_acl) && !eng_may_publish(c, &m->topic, m->qos, m->retain)) {
		ENG_STAT_INC(&w->stats, acl_denied);
		eng_msg_unref(m);
		return;
	}
	ENG_STAT_INC(&w->stats, wills_published);
	ENG_INFO("client '%s': publishing its will on '%.*s'", c->client_id ? c->client_id : "",
		 (int)m->topic.len, (const char *)m->topic.p);
	m->expire_ms = m->expiry_s ? w->now_ms + (uint64_t)m->expiry_s * 1000u : 0;
	eng_route(w, m, c);
	eng_msg_unref(m);
}

void eng_session_end(struct eng_client *c)
{
	struct eng_worker *w = c->w;

	if (c->will)
		eng_will_publish(c);
	eng_subs_drop(c, true);
	if (c->client_id && c->in_hash) {
		struct eng_ritem it = {.type = RI_RELEASE, .b = c->gen};
		it.p = dupmem((const uint8_t *)c->client_id, c->client_id_len);
		if (it.p)
			eng_post(w->eng, w->id, w->eng->nworkers, &it, false);
		atomic_store_explicit(&w->stats.sessions,
				      atomic_load_explicit(&w->stats.sessions,
							   memory_order_relaxed) - 1,
				      memory_order_relaxed);
	}
	eng_ctab_remove(w, c);
	eng_timer_cancel(&w->wheel, &c->t_sess);
	c->state = CS_GONE;
	eng_client_put(c);
}

static void arm_sess(struct eng_client *c)
{
	uint64_t at = 0;
	if (c->will_at_set)
		at = c->will_at_ms;
	if (c->expire_at_ms && (!at || c->expire_at_ms < at))
		at = c->expire_at_ms;
	/* t_sess is t_retry too: this disarms or takes over the retry of the connection */
	c->t_sess.kind = TK_SESS;
	if (at)
		eng_timer_arm(&c->w->wheel, &c->t_sess, at);
	else
		eng_timer_cancel(&c->w->wheel, &c->t_sess);
}

void eng_reauth_drop(struct eng_client *c)
{
	struct eng_claim *cl = eng_client_auth_cl(c);

	if (!cl || c->state == CS_AUTH)
		return;
	/* a re-authentication waiting for the client's AUTH: nobody will answer it now */
	c->cold->auth_cl = NULL;
	c->reauth_busy = false;
	eng_claim_free(cl);
	c->pending_ops--; /* the claim's pin; the caller still holds c */
}

void eng_conn_lost(struct eng_client *c, bool publish_will)
{
	struct eng_worker *w = c->w;

	eng_dack_drop(c); /* held-back acks die with the connection; the client resends */
	eng_reauth_drop(c);
	eng_queue_level(c); /* a queue without a connection holds no publisher back */
	switch (c->state) {
	case CS_NEW:
		c->state = CS_GONE;
		eng_client_put(c);
		return;
	case CS_AUTH:
		/* the CONNECT's claim was parked here, waiting for the client's AUTH */
		eng_claim_free(c->cold->auth_cl); /* CS_AUTH: parked by eng_auth_answer() */
		c->cold->auth_cl = NULL;
		c->pending_ops--;
		c->state = CS_GONE;
		eng_client_put(c);
		return;
	case CS_CONNECTING:
		c->closing = true; /* eng_connect_answer() finishes it */
		return;
	case CS_ONLINE:
		break;
	default:
		eng_client_put(c);
		return;
	}
	ENG_STAT_ADD(&w->stats, clients_online, -1);
	eng_timer_cancel(&w->wheel, &c->t_conn);
	c->closing = false;
	if (c->will && !publish_will) {
		eng_msg_unref(c->will);
		c->will = NULL;
	}
	if (c->will) {
		uint32_t delay = c->will_delay;
		if (delay > c->session_expiry)
			delay = c->session_expiry;
		if (delay == 0 || w->shutdown_phase) {
			eng_will_publish(c);
		} else {
			c->will_at_set = true;
			c->will_at_ms = w->now_ms + delay * 1000ull;
		}
	}
	if (c->session_expiry == 0) {
		eng_session_end(c);
		return;
	}
	c->state = CS_OFFLINE;
	c->expire_at_ms = c->session_expiry == UINT32_MAX
				  ? 0 : w->now_ms + c->session_expiry * 1000ull;
	/* topic aliases and the partial packet belong to the connection */
	if (c->cold) {
		eng_alias_in_destroy(c->cold->alias_in);
		c->cold->alias_in = NULL;
		eng_alias_out_destroy(c->cold->alias_out);
		c->cold->alias_out = NULL;
	}
	eng_rx_release(c);
	free(c->ctlbuf);
	c->ctlbuf = NULL;
	c->ctllen = c->ctlcap = 0;
	c->rx_paused = false;
	arm_sess(c);
}

int eng_handle_disconnect(struct eng_client *c, const struct eng_packet *pkt)
{
	const struct eng_reason_pkt *d = &pkt->u.disconnect;
	bool will = false;

	if (c->version == ENG_V5) {
		if (d->props.present & ENG_PBIT(ENG_PROP_SESSION_EXPIRY)) {
			if (c->session_expiry == 0 && d->props.session_expiry != 0) {
				ENG_STAT_INC(&c->w->stats, protocol_errors);
				eng_client_close(c, ENG_RC_PROTOCOL_ERROR,
						 "DISCONNECT sets a session expiry after 0");
				return -EPROTO;
			}
			c->session_expiry = d->props.session_expiry;
			if (c->session_expiry > c->w->eng->cfg.max_session_expiry)
				c->session_expiry = c->w->eng->cfg.max_session_expiry;
		}
		will = d->reason == ENG_RC_DISCONNECT_WITH_WILL;
	}
	if (c->conn) {
		ns_conn_set_user(c->conn, NULL);
		ns_close(c->conn, true);
		c->conn = NULL;
	}
	eng_conn_lost(c, will);
	return -ECONNRESET;
}

static int auth_error(struct eng_client *c, const char *why)
{
	ENG_STAT_INC(&c->w->stats, protocol_errors);
	if (c->state == CS_AUTH) {
		/* before CONNACK: the refusal is a CONNACK (4.13.1) */
		connack_refuse(c, ENG_RC_PROTOCOL_ERROR, why);
		return -EPROTO;
	}
	eng_client_close(c, ENG_RC_PROTOCOL_ERROR, why);
	return -EPROTO;
}

int eng_auth_expected(struct eng_client *c)
{
	/* [MQTT-4.12.0-?]: during enhanced authentication only AUTH or DISCONNECT */
	return auth_error(c, "packet other than AUTH during enhanced authentication");
}

/* An AUTH from the client: the next step of a CONNECT's exchange, or a re-authentication. */
int eng_handle_auth(struct eng_client *c, const struct eng_packet *pkt)
{
	const struct eng_reason_pkt *a = &pkt->u.disconnect;
	const struct eng_props *pr = &a->props;
	struct eng_worker *w = c->w;
	const struct eng_method *m;
	struct eng_claim *cl;
	uint8_t *data = NULL;

	if (!c->auth_method) /* [MQTT-4.12.0-7]: no AUTH unless the CONNECT named a method */
		return auth_error(c, "AUTH without an authentication method");
	m = &w->eng->hooks.methods[c->auth_method - 1];
	if (!(pr->present & ENG_PBIT(ENG_PROP_AUTH_METHOD)) || pr->auth_method.len != m->len ||
	    memcmp(pr->auth_method.p, m->name, m->len) != 0)
		return auth_error(c, "AUTH with a different authentication method");
	if (pr->present & ENG_PBIT(ENG_PROP_AUTH_DATA)) {
		data = (uint8_t *)dupmem(pr->auth_data.p, pr->auth_data.len);
		if (!data) {
			eng_client_close(c, ENG_RC_IMPL_SPECIFIC, "out of memory");
			return -ENOMEM;
		}
	}
	if (eng_client_auth_cl(c)) {
		/* the method asked for more (AUTH 0x18 sent): this is the answer */
		if (a->reason != ENG_RC_CONTINUE_AUTH) {
			free(data);
			return auth_error(c, "AUTH: Continue authentication (0x18) expected");
		}
		cl = c->cold->auth_cl;
		c->cold->auth_cl = NULL;
		cl->auth_step++;
	} else {
		if (a->reason != ENG_RC_REAUTHENTICATE || c->state != CS_ONLINE || c->reauth_busy) {
			free(data);
			return auth_error(c, "unexpected AUTH");
		}
		const char *user = eng_client_username(c);
		cl = calloc(1, sizeof(*cl));
		if (cl) {
			cl->client_id = dupmem((const uint8_t *)c->client_id, c->client_id_len);
			cl->has_username = user != NULL;
			if (user)
				cl->username = (uint8_t *)dupmem((const uint8_t *)user,
								 c->cold->username_len);
		}
		if (!cl || !cl->client_id || (user && !cl->username)) {
			free(data);
			eng_claim_free(cl);
			eng_client_close(c, ENG_RC_IMPL_SPECIFIC, "out of memory");
			return -ENOMEM;
		}
		cl->reauth = true;
		cl->client = c;
		cl->gen = c->gen;
		cl->new_core = (uint16_t)w->id;
		cl->version = c->version;
		cl->method = c->auth_method;
		cl->username_len = user ? c->cold->username_len : 0;
		snprintf(cl->peer, sizeof(cl->peer), "%s", ns_conn_peer(c->conn));
		c->reauth_busy = true;
		eng_client_pin(c); /* the claim's pin, until it is freed */
	}
	free(cl->auth_data);
	cl->auth_data = data;
	cl->auth_data_len = data ? pr->auth_data.len : 0;
	if (cl->reauth) {
		struct eng_ritem it = {.type = RI_REAUTH, .p = cl};
		eng_post(w->eng, w->id, w->eng->nworkers, &it, false);
		return 0;
	}
	/* the CONNECT's next step: wait in CS_CONNECTING again */
	struct eng_ritem it = {.type = RI_CLAIM, .p = cl};
	eng_timer_cancel(&w->wheel, &c->t_conn);
	c->state = CS_CONNECTING;
	if (!c->rx_paused) {
		ns_pause_rx(c->conn, true);
		c->rx_paused = true;
	}
	eng_post(w->eng, w->id, w->eng->nworkers, &it, false);
	return 1;
}

/* The answer of a method's step (RI_AUTH): a CONNECT's "continue", or a re-authentication. */
void eng_auth_answer(struct eng_worker *w, struct eng_claim *cl)
{
	struct eng_client *c = cl->client;

	if (!cl->reauth) {
		if (c->conn && !c->closing && !eng_client_cold(c)) {
			/* out of memory (the cold state is made at CONNECT for a method) */
			c->pending_ops--;
			eng_claim_free(cl);
			c->state = CS_NEW; /* so the close does not look for a session */
			connack_refuse(c, ENG_RC_SERVER_UNAVAILABLE, "out of memory");
			return;
		}
		if (c->conn && !c->closing) {
			c->state = CS_AUTH;
			/* first: a failed send closes through eng_conn_lost() */
			c->cold->auth_cl = cl;
			eng_client_pin(c);
			send_auth(c, ENG_RC_CONTINUE_AUTH, cl->auth_out, cl->auth_out_len);
			if (c->conn && c->state == CS_AUTH) {
				eng_timer_arm(&w->wheel, &c->t_conn,
					      w->now_ms + w->eng->cfg.connect_timeout * 1000ull);
				eng_client_resume_rx(c);
			}
			eng_client_unpin(c);
			return;
		}
		/* the connection went away while the step ran */
		c->pending_ops--;
		c->state = CS_GONE;
		eng_claim_free(cl);
		eng_client_put(c);
		return;
	}
	if (c->gen != cl->gen || c->state != CS_ONLINE || !c->conn || c->closing) {
		c->reauth_busy = false;
		eng_claim_free(cl);
		eng_client_unpin(c);
		return;
	}
	if (cl->auth_rc == TACHYON_AUTH_CONTINUE && !eng_client_cold(c)) {
		/* out of memory (the cold state is made at CONNECT for a method) */
		eng_client_close(c, ENG_RC_IMPL_SPECIFIC, "out of memory");
		c->reauth_busy = false;
		eng_claim_free(cl);
		eng_client_unpin(c);
		return;
	}
	if (cl->auth_rc == TACHYON_AUTH_CONTINUE) {
		/* keeps its pin; a lost connection drops it (eng_reauth_drop) */
		c->cold->auth_cl = cl;
		send_auth(c, ENG_RC_CONTINUE_AUTH, cl->auth_out, cl->auth_out_len);
		return;
	}
	c->reauth_busy = false;
	if (cl->auth_rc == TACHYON_AUTH_SUCCESS) {
		send_auth(c, ENG_RC_SUCCESS, cl->auth_out, cl->auth_out_len);
	} else {
		/* DISCONNECT has no 0x86 / 0x8A / 0x8C: those become 0x87 */
		uint8_t r = cl->result;
		if (r != ENG_RC_UNSPECIFIED && r != ENG_RC_IMPL_SPECIFIC && r != ENG_RC_SERVER_BUSY)
			r = ENG_RC_NOT_AUTHORIZED;
		if (r == ENG_RC_SERVER_BUSY)
			ENG_STAT_INC(&w->stats, auth_busy);
		else
			ENG_STAT_INC(&w->stats, auth_failures);
		eng_client_close(c, r, "re-authentication failed");
	}
	eng_claim_free(cl);
	eng_client_unpin(c);
}

/* ---------------------------------------------------------------------------------------------
 * Takeover, on the old core.
 */
void eng_takeover(struct eng_worker *w, struct eng_claim *cl)
{
	struct eng_ritem it = {.type = RI_XFER, .p = cl};
	struct eng_client *old = eng_ctab_find(w, cl->client_id, strlen(cl->client_id));

	if (old && old->gen == cl->old_gen && old->state != CS_GONE) {
		ENG_STAT_INC(&w->stats, takeovers);
		ENG_INFO("client '%s': session on core %u taken over by a connection on core %u",
			 old->client_id, w->id, cl->new_core);
		if (old->conn) {
			struct ns_conn *conn = old->conn;
			if (old->version == ENG_V5 && old->state == CS_ONLINE) {
				struct eng_packet pkt = {.type = ENG_DISCONNECT};
				pkt.u.disconnect.reason = ENG_RC_SESSION_TAKEN_OVER;
				eng_send_pkt(old, &pkt);
			}
			ns_conn_set_user(conn, NULL);
			ns_close(conn, true);
			old->conn = NULL;
			ENG_STAT_ADD(&w->stats, clients_online, -1);
		}
		eng_timer_cancel(&w->wheel, &old->t_conn);
		eng_timer_cancel(&w->wheel, &old->t_sess);
		eng_reauth_drop(old);
		/* the will: due now if the session ends or has no delay; a resumed session
		 * cancels a delayed will [MQTT-3.1.3-9] */
		if (old->will) {
			if (cl->clean_start || (old->will_delay == 0 && !old->will_at_set))
				eng_will_publish(old);
			else {
				eng_msg_unref(old->will);
				old->will = NULL;
			}
		}
		/* with subscriptions, the old object stays as a forwarder (eng_xfer.c) */
		if (!cl->clean_start && old->subs)
			cl->xfer = eng_xfer_new(old, cl);
		if (!cl->clean_start) {
			cl->found = true;
			if (!cl->xfer)
				mt_local_drop_session(w->local, old);
			cl->subs = old->subs;
			cl->nsubs = old->nsubs;
			old->subs = NULL;
			atomic_store_explicit(
				&w->stats.subscriptions,
				atomic_load_explicit(&w->stats.subscriptions, memory_order_relaxed) -
					old->nsubs,
				memory_order_relaxed);
			old->nsubs = 0;
			cl->inf_head = old->inf_head;
			cl->inflight = old->inflight;
			cl->q_head = old->q_head;
			cl->q_count = old->q_count;
			cl->q_bytes = old->q_bytes;
			cl->qos2_bits = old->qos2_bits;
			cl->qos2_count = old->qos2_count;
			cl->next_pid = old->next_pid;
			cl->pid_seq = old->pid_seq;
			old->inf_head = old->inf_tail = old->q_head = old->q_tail = NULL;
			old->inflight = old->q_count = 0;
			old->q_bytes = 0;
			eng_queue_level(old);
			old->qos2_bits = NULL;
			old->qos2_count = 0;
		} else {
			eng_subs_drop(old, true);
		}
		eng_ctab_remove(w, old);
		atomic_store_explicit(&w->stats.sessions,
				      atomic_load_explicit(&w->stats.sessions,
							   memory_order_relaxed) - 1,
				      memory_order_relaxed);
		if (cl->xfer) {
			old->state = CS_MOVED;
			old->xfer_out = cl->xfer; /* freed by the new core after fwd_finish() */
		} else {
			old->state = CS_GONE;
			eng_client_put(old);
		}
	}
	eng_post(w->eng, w->id, w->eng->nworkers, &it, false);
}

/* ---------------------------------------------------------------------------------------------
 * Timers.
 */
void eng_timer_fire(struct eng_timer *t, void *ctx)
{
	struct eng_worker *w = ctx;

	if (t->kind == TK_CONN) {
		struct eng_client *c = container_of(t, struct eng_client, t_conn);
		if ((c->state == CS_NEW || c->state == CS_AUTH) && c->conn) {
			ENG_STAT_INC(&w->stats, connect_timeouts);
			ENG_INFO("connection %s: no CONNECT within %u s", ns_conn_peer(c->conn),
				 w->eng->cfg.connect_timeout);
			eng_client_close(c, 0, NULL);
		} else if (c->state == CS_ONLINE && c->conn && c->keepalive) {
			uint64_t deadline = c->last_rx_ms + c->keepalive * 1500ull;
			if (w->now_ms >= deadline) {
				ENG_STAT_INC(&w->stats, keepalive_timeouts);
				eng_client_close(c, ENG_RC_KEEPALIVE_TIMEOUT, "keep alive expired");
			} else {
				eng_timer_arm(&w->wheel, t, deadline);
			}
		}
		return;
	}
	if (t->kind == TK_RETRY) {
		eng_retry_fire(container_of(t, struct eng_client, t_retry));
		return;
	}
	if (t->kind == TK_SESS) {
		struct eng_client *c = container_of(t, struct eng_client, t_sess);
		if (c->state != CS_OFFLINE)
			return;
		if (c->will_at_set && w->now_ms >= c->will_at_ms)
			eng_will_publish(c);
		if (c->expire_at_ms && w->now_ms >= c->expire_at_ms) {
			ENG_STAT_INC(&w->stats, sessions_expired);
			ENG_INFO("client '%s': session expired", c->client_id);
			eng_session_end(c);
			return;
		}
		arm_sess(c);
	}
}

/* SPDX-License-Identifier: MIT */
/*
 * The control thread: the single writer of everything shared between cores.
 *
 * - Session registry: client id -> (owning core, gen). Claims from CONNECTs are checked
 *   (anonymous access here; password file, auth hooks and enhanced authentication on the auth
 *   threads, eng_auth.c, so a slow check never holds up other work), bound to their ACL rules,
 *   and either registered at once or sent to the old core for takeover (see the design
 *   comment in eng_connect.c).
 * - The host (eng_host.c): its publishes and (un)subscriptions from the host queue, and the
 *   messages workers route to its core bit (RI_PUB), handed to its callbacks.
 * - mt_index: subscription deltas from workers (RI_SUB adds, then the answer that lets the
 *   SUBACK go; RI_IDX_DEL removals; moves of shipped sessions on takeover).
 * - mt_retain: retained messages (RI_RETAIN), looked up for new subscriptions.
 * - $SYS topics every sys_interval seconds, from the workers' counters.
 * - SIGHUP reload (password file, ACL file, log level) and graceful shutdown: phase 1 asks
 *   every worker to publish its wills, phase 2 to close its connections (MQTT 5: DISCONNECT
 *   0x8B); then the workers leave their loops and are joined.
 *
 * The control thread does not register as an RCU reader: it is the index's only writer, so
 * its own reads (mt_index_match for $SYS) never race with a free.
 */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef TACHYON_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ENG_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define ENG_SANITIZED 1
#endif
#endif
#ifndef ENG_SANITIZED
#define ENG_SANITIZED 0
#endif
#if ENG_SANITIZED
/* the sanitizer runtime's allocator interface (sanitizer/allocator_interface.h, which not
 * every compiler installs) */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

#include "eng_internal.h"
#include "eng_passwd.h"

/* ---------------------------------------------------------------------------------------------
 * Registry.
 */
static struct eng_reg_ent **reg_slot(struct eng_control *ctl, const char *id)
{
	return &ctl->reg[eng_hash(id, strlen(id)) & ctl->reg_mask];
}

static struct eng_reg_ent *reg_find(struct eng_control *ctl, const char *id)
{
	for (struct eng_reg_ent *r = *reg_slot(ctl, id); r; r = r->next)
		if (strcmp(r->id, id) == 0)
			return r;
	return NULL;
}

static void reg_grow(struct eng_control *ctl)
{
	uint32_t nsize = (ctl->reg_mask + 1) * 2;
	struct eng_reg_ent **nt = calloc(nsize, sizeof(*nt));
	if (!nt)
		return;
	for (uint32_t i = 0; i <= ctl->reg_mask; i++) {
		struct eng_reg_ent *r = ctl->reg[i];
		while (r) {
			struct eng_reg_ent *n = r->next;
			uint64_t s = eng_hash(r->id, strlen(r->id)) & (nsize - 1);
			r->next = nt[s];
			nt[s] = r;
			r = n;
		}
	}
	free(ctl->reg);
	ctl->reg = nt;
	ctl->reg_mask = nsize - 1;
}

static int reg_insert(struct eng_control *ctl, const char *id, uint16_t core, uint64_t gen)
{
	size_t len = strlen(id);
	struct eng_reg_ent *r = malloc(sizeof(*r) + len + 1);
	struct eng_reg_ent **slot;

	if (!r)
		return -ENOMEM;
	if (ctl->reg_count > ctl->reg_mask)
		reg_grow(ctl);
	memcpy(r->id, id, len + 1);
	r->core = core;
	r->gen = gen;
	slot = reg_slot(ctl, id);
	r->next = *slot;
	*slot = r;
	ctl->reg_count++;
	return 0;
}

static void reg_release(struct eng_control *ctl, const char *id, uint64_t gen)
{
	struct eng_reg_ent **pp = reg_slot(ctl, id);
	for (; *pp; pp = &(*pp)->next) {
		if (strcmp((*pp)->id, id) == 0) {
			if ((*pp)->gen == gen) {
				struct eng_reg_ent *r = *pp;
				*pp = r->next;
				free(r);
				ctl->reg_count--;
			}
			return;
		}
	}
}

/* ---------------------------------------------------------------------------------------------
 * Requests from workers.
 */
static void ctl_post(struct tachyon *e, unsigned dst, uint16_t type, void *p)
{
	struct eng_ritem it = {.type = type, .p = p};
	eng_post(e, e->nworkers, dst, &it, false);
}

/* A claim whose credentials are decided: the ACL, the registry, a takeover. */
static void claim_authed(struct tachyon *e, struct eng_claim *cl)
{
	struct eng_control *ctl = &e->ctl;
	struct eng_reg_ent *r;

	if (cl->result != ENG_RC_SUCCESS) {
		ENG_NOTICE("client '%s': authentication failed (%s, 0x%02x)", cl->client_id,
			   cl->method ? "enhanced authentication"
			   : cl->has_username ? "bad user name or password" : "anonymous refused",
			   cl->result);
		ctl_post(e, cl->new_core, RI_CLAIM, cl);
		return;
	}
	if (ctl->acl)
		cl->acl = eng_acl_bind(ctl->acl, (const char *)cl->username,
				       cl->has_username ? cl->username_len : 0, cl->client_id,
				       strlen(cl->client_id));
	if (ctl->acl && !cl->acl) {
		cl->result = ENG_RC_SERVER_UNAVAILABLE; /* never "no rules": that would allow all */
		ctl_post(e, cl->new_core, RI_CLAIM, cl);
		return;
	}
	r = reg_find(ctl, cl->client_id);
	if (!r) {
		if (reg_insert(ctl, cl->client_id, cl->new_core, cl->gen) != 0)
			cl->result = ENG_RC_SERVER_UNAVAILABLE;
		ctl_post(e, cl->new_core, RI_CLAIM, cl);
		return;
	}
	cl->old_core = r->core;
	cl->old_gen = r->gen;
	r->core = cl->new_core;
	r->gen = cl->gen;
	ctl_post(e, cl->old_core, RI_TAKEOVER, cl);
}

/* An auth thread decided (eng_auth.c). */
static void on_auth_done(struct tachyon *e, struct eng_claim *cl)
{
	if (cl->reauth || (cl->method && cl->auth_rc == TACHYON_AUTH_CONTINUE)) {
		/* the worker talks to the client (AUTH 0x18), or ends the re-authentication */
		ctl_post(e, cl->new_core, RI_AUTH, cl);
		return;
	}
	cl->authed = true;
	claim_authed(e, cl);
}

static void on_claim(struct tachyon *e, struct eng_claim *cl)
{
	if (eng_auth_needs_thread(e, cl)) {
		if (eng_auth_submit(e, cl) == 0)
			return;
		cl->result = ENG_RC_SERVER_BUSY;
		cl->auth_rc = TACHYON_AUTH_FAIL;
		ENG_WARN("client '%s': the authentication queue is full", cl->client_id);
	} else {
		cl->result = eng_auth_inline(e, cl);
	}
	cl->authed = true;
	claim_authed(e, cl);
}

static void on_reauth(struct tachyon *e, struct eng_claim *cl)
{
	if (eng_auth_submit(e, cl) != 0) {
		cl->auth_rc = TACHYON_AUTH_FAIL;
		cl->result = ENG_RC_SERVER_BUSY;
		ctl_post(e, cl->new_core, RI_AUTH, cl);
	}
}

static void on_xfer(struct tachyon *e, struct eng_claim *cl)
{
	/* with a move (eng_xfer.c) the index moves once the new core has adopted the session */
	if (cl->found && !cl->xfer) {
		for (struct eng_sub *s = cl->subs; s; s = s->next) {
			int rc = mt_index_del(e->index, s->filter, s->len, cl->old_core);
			if (rc == 0)
				rc = mt_index_add(e->index, s->filter, s->len, cl->new_core);
			if (rc != 0)
				ENG_ERR("takeover of '%s': index move of '%s' failed (%d)",
					cl->client_id, s->filter, rc);
		}
	}
	ctl_post(e, cl->new_core, RI_CLAIM, cl);
}

struct retained_acc {
	struct eng_subreq_ent *ent;
	uint32_t cap;
	uint64_t now_ms;
};

static int retained_visit(void *ctx, const char *topic, size_t len, void *msg, size_t bytes)
{
	struct retained_acc *acc = ctx;
	struct eng_msg *m = msg;
	(void)topic;
	(void)len;
	(void)bytes;

	if (m->expire_ms && acc->now_ms >= m->expire_ms)
		return 0;
	if (acc->ent->nretained == acc->cap) {
		uint32_t ncap = acc->cap ? acc->cap * 2 : 8;
		struct eng_msg **n = realloc(acc->ent->retained, ncap * sizeof(*n));
		if (!n)
			return 1;
		acc->ent->retained = n;
		acc->cap = ncap;
	}
	eng_msg_ref(m);
	acc->ent->retained[acc->ent->nretained++] = m;
	return 0;
}

static void on_sub(struct tachyon *e, struct eng_subreq *r)
{
	uint64_t now = eng_now_ms();

	for (uint32_t i = 0; i < r->count; i++) {
		struct eng_subreq_ent *ent = &r->ents[i];
		if (ent->add_index) {
			int rc = mt_index_add(e->index, (const char *)ent->filter.p, ent->filter.len,
					      r->core);
			if (rc != 0)
				ENG_ERR("index add of '%.*s' failed (%d)", (int)ent->filter.len,
					(const char *)ent->filter.p, rc);
		}
		if (ent->send_retained && ent->reason < 0x80) {
			struct retained_acc acc = {.ent = ent, .now_ms = now};
			mt_retain_match(e->retain, (const char *)ent->filter.p, ent->filter.len,
					retained_visit, &acc);
		}
	}
	ctl_post(e, r->core, RI_SUB, r);
}

static void on_idx_del(struct tachyon *e, struct eng_filter_list *fl, unsigned core)
{
	while (fl->head) {
		struct eng_sub *s = fl->head;
		fl->head = s->next;
		int rc = mt_index_del(e->index, s->filter, s->len, core);
		if (rc != 0)
			ENG_ERR("index del of '%s' on core %u failed (%d)", s->filter, core, rc);
		free(s);
	}
	free(fl);
}

static void on_retain(struct tachyon *e, struct eng_msg *m)
{
	int rc;

	if (m->payload.len == 0) {
		mt_retain_set(e->retain, (const char *)m->topic.p, m->topic.len, NULL, 0);
		eng_msg_unref(m);
		return;
	}
	rc = mt_retain_set(e->retain, (const char *)m->topic.p, m->topic.len, m,
			   m->topic.len + m->payload.len);
	if (rc != 0) {
		ENG_WARN("retained message on '%.*s' not stored (%d)", (int)m->topic.len,
			 (const char *)m->topic.p, rc);
		eng_msg_unref(m);
	}
}

void eng_ctl_route(struct tachyon *e, struct eng_msg *m)
{
	struct eng_control *ctl = &e->ctl;
	struct mt_share_pick picks[16];
	uint64_t mask;
	unsigned nshare;

	/* relaxed: this thread is the only writer of route_epoch (eng_xfer.c) */
	m->epoch = atomic_load_explicit(&e->route_epoch, memory_order_relaxed);
	if (m->retain) {
		eng_msg_ref(m);
		on_retain(e, m);
	}
	mask = mt_index_match(e->index, (const char *)m->topic.p, m->topic.len);
	for (uint64_t rest = mask & e->worker_bits; rest; rest &= rest - 1) {
		struct eng_ritem it = {.type = RI_PUB, .p = m};
		eng_msg_ref(m);
		unsigned dst = (unsigned)__builtin_ctzll(rest);
		if (eng_post(e, e->nworkers, dst, &it, m->qos == 0) != 0) {
			ENG_STAT_INC(&ctl->stats, drop_ring_full);
			eng_msg_unref(m);
		}
	}
	if (mask & ~e->worker_bits)
		eng_host_deliver(e, m, false);
	ctl->share_ctx.publisher = m->publisher_key;
	nshare = mt_index_share_match(e->index, (const char *)m->topic.p, m->topic.len,
				      &ctl->share_ctx, picks, 16);
	for (unsigned i = 0; i < nshare && i < 16; i++) {
		struct eng_ritem it = {.type = RI_SHARE, .p = m, .b = picks[i].group_id};
		eng_msg_ref(m);
		if (eng_post(e, e->nworkers, picks[i].core, &it, m->qos == 0) != 0) {
			ENG_STAT_INC(&ctl->stats, drop_ring_full);
			eng_msg_unref(m);
		}
	}
	eng_msg_unref(m);
}

void eng_ctl_wake(struct tachyon *e)
{
	/* seq_cst: pairs with the control thread's fence between "ctl_sleeping = 1" and its
	 * checks of the rings, the host queue and the auth results */
	atomic_thread_fence(memory_order_seq_cst);
	eng_wake_dst(e, e->nworkers);
}

static void retain_release(void *msg, void *ctx)
{
	(void)ctx;
	eng_msg_unref(msg);
}

/* ---------------------------------------------------------------------------------------------
 * $SYS.
 */
static void sys_publish(struct tachyon *e, const char *topic, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void sys_publish(struct tachyon *e, const char *topic, const char *fmt, ...)
{
	char val[64];
	va_list ap;
	struct eng_publish pub = {.qos = 0, .retain = true};
	struct eng_str t = {(const uint8_t *)topic, (uint32_t)strlen(topic)};
	struct eng_msg *m;

	va_start(ap, fmt);
	vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	pub.topic = t;
	pub.payload = (struct eng_str){(const uint8_t *)val, (uint32_t)strlen(val)};
	m = eng_msg_new(NULL, &pub, &t, 0, NULL, 0, eng_now_ms());
	if (m)
		eng_ctl_route(e, m);
}

/* Bytes the engine's allocator has handed out and not had back. */
static uint64_t heap_allocated(void)
{
#ifdef TACHYON_JEMALLOC
	uint64_t epoch = 1;
	size_t len = sizeof(epoch), allocated = 0;

	/* jemalloc's statistics are a snapshot refreshed by writing "epoch" */
	mallctl("epoch", &epoch, &len, &epoch, len);
	len = sizeof(allocated);
	if (mallctl("stats.allocated", &allocated, &len, NULL, 0) != 0)
		return 0;
	return allocated;
#elif ENG_SANITIZED
	/* the sanitizers replace malloc, and their mallinfo2() answers zeros */
	return __sanitizer_get_current_allocated_bytes();
#else
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
#endif
}

#define SUM(f)                                                                                 \
	({                                                                                     \
		uint64_t s_ = 0;                                                               \
		for (unsigned i_ = 0; i_ < e->nworkers; i_++)                                  \
			s_ += (uint64_t)atomic_load_explicit(&e->workers[i_]->stats.f,         \
							     memory_order_relaxed);            \
		s_;                                                                            \
	})

static void sys_update(struct tachyon *e, uint64_t now)
{
	struct mt_retain_stats rs;

	mt_retain_stats_get(e->retain, &rs);
	sys_publish(e, "$SYS/broker/version", "tachyon 0.1.0");
	sys_publish(e, "$SYS/broker/uptime", "%" PRIu64 " seconds", (now - e->start_ms) / 1000);
	sys_publish(e, "$SYS/broker/clients/connected", "%" PRId64, (int64_t)SUM(clients_online));
	sys_publish(e, "$SYS/broker/sessions/count", "%" PRId64, (int64_t)SUM(sessions));
	sys_publish(e, "$SYS/broker/messages/received", "%" PRIu64, SUM(msgs_in));
	sys_publish(e, "$SYS/broker/messages/sent", "%" PRIu64, SUM(msgs_out));
	sys_publish(e, "$SYS/broker/bytes/received", "%" PRIu64, SUM(bytes_in));
	sys_publish(e, "$SYS/broker/bytes/sent", "%" PRIu64, SUM(bytes_out));
	sys_publish(e, "$SYS/broker/subscriptions/count", "%" PRId64, (int64_t)SUM(subscriptions));
	sys_publish(e, "$SYS/broker/retained messages/count", "%" PRIu64, rs.count);
	sys_publish(e, "$SYS/broker/messages/dropped", "%" PRIu64,
		    SUM(drop_queue_full) + SUM(drop_qos0_offline) + SUM(drop_expired) +
			    SUM(drop_too_large) + SUM(drop_ring_full) + SUM(drop_no_share));
	/* and each reason on its own */
	sys_publish(e, "$SYS/broker/messages/dropped/queue_full", "%" PRIu64, SUM(drop_queue_full));
	sys_publish(e, "$SYS/broker/messages/dropped/qos0_offline", "%" PRIu64,
		    SUM(drop_qos0_offline));
	sys_publish(e, "$SYS/broker/messages/dropped/expired", "%" PRIu64, SUM(drop_expired));
	sys_publish(e, "$SYS/broker/messages/dropped/too_large", "%" PRIu64, SUM(drop_too_large));
	sys_publish(e, "$SYS/broker/messages/dropped/ring_full", "%" PRIu64, SUM(drop_ring_full));
	sys_publish(e, "$SYS/broker/messages/dropped/no_share", "%" PRIu64, SUM(drop_no_share));
	sys_publish(e, "$SYS/broker/clients/protocol_errors", "%" PRIu64, SUM(protocol_errors));
	sys_publish(e, "$SYS/broker/clients/auth_failures", "%" PRIu64, SUM(auth_failures));
	sys_publish(e, "$SYS/broker/clients/auth_busy", "%" PRIu64, SUM(auth_busy));
	sys_publish(e, "$SYS/broker/clients/acl_denied", "%" PRIu64, SUM(acl_denied));
	sys_publish(e, "$SYS/broker/messages/intercept_dropped", "%" PRIu64, SUM(intercept_dropped));
	sys_publish(e, "$SYS/broker/messages/retried", "%" PRIu64, SUM(retries));
	sys_publish(e, "$SYS/broker/overload/publisher_pauses", "%" PRIu64, SUM(qos0_pauses));
	sys_publish(e, "$SYS/broker/overload/slow_consumers", "%" PRIu64, SUM(slow_consumers));
	sys_publish(e, "$SYS/broker/heap/current", "%" PRIu64, heap_allocated());
}

/* ---------------------------------------------------------------------------------------------
 * Reload.
 */
static void reload(struct tachyon *e)
{
	struct eng_config cfg;
	char err[512];

	eng_config_defaults(&cfg);
	if (e->reload_argc &&
	    eng_config_args(&cfg, e->reload_argc, e->reload_argv, stderr, err, sizeof(err)) < 0) {
		ENG_ERR("reload: %s (keeping the running configuration)", err);
		return;
	}
	if (!e->reload_argc)
		cfg = e->cfg;
	eng_log_set_level(cfg.log_level);
	e->cfg.log_level = cfg.log_level;
	if (cfg.password_file[0]) {
		struct eng_passwd *pw = eng_passwd_load(cfg.password_file, err, sizeof(err));
		struct eng_pwref *ref = pw ? eng_pwref_new(pw) : NULL;
		if (!ref) {
			eng_passwd_free(pw);
			ENG_ERR("reload: %s (keeping the old password table)",
				pw ? "out of memory" : err);
		} else {
			/* auth threads still checking against the old table hold references */
			eng_pwref_put(e->ctl.passwd);
			e->ctl.passwd = ref;
		}
	} else {
		eng_pwref_put(e->ctl.passwd);
		e->ctl.passwd = NULL;
	}
	if (cfg.acl_file[0]) {
		struct eng_acl *a = eng_acl_load(cfg.acl_file, err, sizeof(err));
		if (!a) {
			ENG_ERR("reload: %s (keeping the old ACL)", err);
		} else {
			eng_acl_free(e->ctl.acl);
			e->ctl.acl = a;
		}
	} else {
		eng_acl_free(e->ctl.acl);
		e->ctl.acl = NULL;
	}
	e->cfg.allow_anonymous = cfg.allow_anonymous;
	ENG_NOTICE("configuration reloaded (log level, password file, ACL file, anonymous "
		   "access; new rules apply to new connections)");
}

/* ---------------------------------------------------------------------------------------------
 * The loop.
 */
int eng_control_init(struct tachyon *e, char *err, size_t errlen)
{
	struct eng_control *ctl = &e->ctl;

	ctl->reg_mask = 1023;
	ctl->reg = calloc(ctl->reg_mask + 1, sizeof(*ctl->reg));
	e->retain = mt_retain_create(&e->mtcfg, retain_release, NULL);
	if (!ctl->reg || !e->retain) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (e->cfg.password_file[0]) {
		struct eng_passwd *pw = eng_passwd_load(e->cfg.password_file, err, errlen);
		if (!pw)
			return -EINVAL;
		ctl->passwd = eng_pwref_new(pw);
		if (!ctl->passwd) {
			eng_passwd_free(pw);
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
	}
	if (e->cfg.acl_file[0]) {
		ctl->acl = eng_acl_load(e->cfg.acl_file, err, errlen);
		if (!ctl->acl)
			return -EINVAL;
	}
	return 0;
}

void eng_control_fini(struct tachyon *e)
{
	struct eng_control *ctl = &e->ctl;

	if (ctl->reg) {
		for (uint32_t i = 0; i <= ctl->reg_mask; i++) {
			while (ctl->reg[i]) {
				struct eng_reg_ent *r = ctl->reg[i];
				ctl->reg[i] = r->next;
				free(r);
			}
		}
		free(ctl->reg);
		ctl->reg = NULL;
	}
	mt_retain_destroy(e->retain);
	e->retain = NULL;
	eng_pwref_put(ctl->passwd);
	ctl->passwd = NULL;
	eng_acl_free(ctl->acl);
	ctl->acl = NULL;
}

/* Handles what the workers sent; returns the items handled and counts shutdown acks. */
static unsigned drain(struct tachyon *e, unsigned *acks)
{
	struct eng_ritem items[64];
	unsigned total = 0;

	for (unsigned src = 0; src < e->nworkers; src++) {
		struct eng_ring *r = eng_ring_of(e, src, e->nworkers);
		unsigned n, budget = 1024;
		while (budget && (n = eng_ring_pop(r, items, 64)) > 0) {
			budget -= n < budget ? n : budget;
			total += n;
			for (unsigned i = 0; i < n; i++) {
				struct eng_ritem *it = &items[i];
				switch (it->type) {
				case RI_CLAIM:
					on_claim(e, it->p);
					break;
				case RI_XFER:
					on_xfer(e, it->p);
					break;
				case RI_ADOPTED:
					eng_xfer_move(e, it->p);
					break;
				case RI_SUB:
					on_sub(e, it->p);
					break;
				case RI_IDX_DEL:
					on_idx_del(e, it->p, (unsigned)it->b);
					break;
				case RI_RELEASE:
					reg_release(&e->ctl, it->p, it->b);
					free(it->p);
					break;
				case RI_RETAIN:
					on_retain(e, it->p);
					break;
				case RI_PUB: /* the host's core bit */
					eng_host_deliver(e, it->p, false);
					eng_msg_unref(it->p);
					break;
				case RI_REAUTH:
					on_reauth(e, it->p);
					break;
				case RI_SHUTDOWN:
					(*acks)++;
					break;
				default:
					ENG_DIE("unknown item for the control thread");
				}
			}
		}
	}
	return total;
}

static bool rings_empty(struct tachyon *e)
{
	for (unsigned src = 0; src < e->nworkers; src++)
		if (!eng_ring_empty(eng_ring_of(e, src, e->nworkers)))
			return false;
	return true;
}

static void broadcast_shutdown(struct tachyon *e, uint32_t phase)
{
	for (unsigned i = 0; i < e->nworkers; i++) {
		struct eng_ritem it = {.type = RI_SHUTDOWN, .a = phase};
		eng_post(e, e->nworkers, i, &it, false);
	}
}

int eng_control_run(struct tachyon *e)
{
	unsigned phase = 0, acks = 0;
	uint64_t now = eng_now_ms(), grace_until = 0;

	e->ctl.next_sys_ms = e->cfg.sys_interval ? now + 1000 : 0;
	for (;;) {
		struct pollfd pfd = {.fd = e->ctl_evfd, .events = POLLIN};
		unsigned n;

		/* relaxed: the flag only asks; the eventfd write woke us */
		if (phase == 0 && atomic_load_explicit(&e->stop_req, memory_order_relaxed)) {
			ENG_NOTICE("shutting down: publishing wills, then closing connections");
			phase = 1;
			acks = 0;
			broadcast_shutdown(e, 1);
		}
		if (atomic_exchange_explicit(&e->reload_req, false, memory_order_relaxed))
			reload(e);
		n = drain(e, &acks);
		n += eng_auth_drain(e, on_auth_done);
		if (phase <= 1)
			n += eng_host_drain(e, 1024);
		now = eng_now_ms();
		if (phase == 1 && acks >= e->nworkers) {
			phase = 2;
			acks = 0;
			broadcast_shutdown(e, 2);
		} else if (phase == 2 && acks >= e->nworkers) {
			phase = 3;
			grace_until = now + 300;
		} else if (phase == 3 && now >= grace_until) {
			break;
		}
		if (phase == 0 && e->ctl.next_sys_ms && now >= e->ctl.next_sys_ms) {
			sys_update(e, now);
			e->ctl.next_sys_ms = now + e->cfg.sys_interval * 1000ull;
		}
		eng_post_flush(e, e->nworkers);
		if (n)
			continue;
		atomic_store_explicit(&e->ctl_sleeping, true, memory_order_relaxed);
		/* seq_cst: pairs with the producers' fence in eng_post_flush() */
		atomic_thread_fence(memory_order_seq_cst);
		bool stop_pending = phase == 0 &&
				    atomic_load_explicit(&e->stop_req, memory_order_relaxed);
		if (rings_empty(e) && eng_auth_idle(e) && (phase > 1 || eng_host_empty(e)) &&
		    !stop_pending) {
			if (poll(&pfd, 1, phase ? 20 : 100) > 0) {
				uint64_t v;
				if (read(e->ctl_evfd, &v, sizeof(v)) < 0) {
					/* spurious: nothing to consume */
				}
			}
		}
		atomic_store_explicit(&e->ctl_sleeping, false, memory_order_relaxed);
	}
	/* release: pairs with the workers' acquire load at the top of their loop */
	atomic_store_explicit(&e->workers_exit, true, memory_order_release);
	for (unsigned i = 0; i < e->nworkers; i++)
		ns_wake(e->workers[i]->nsw);
	return 0;
}

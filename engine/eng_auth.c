/* SPDX-License-Identifier: MIT */
/*
 * Authentication off the control thread: a small pool of auth threads (auth_threads, default
 * 1) runs what is slow or foreign: the password file's PBKDF2 check (about 0.1 s), the
 * embedder's authentication hooks and the steps of enhanced authentication methods.
 *
 * Flow: the control thread receives a CONNECT's claim; when it needs one of those
 * (eng_auth_needs_thread) it queues the claim here and goes on with other work; the CONNECT
 * waits in its "connecting" state on its worker. An auth thread decides, puts the claim on
 * the done list and wakes the control thread (the same Dekker pair as the rings: done count,
 * seq_cst fence, ctl_sleeping), which carries on with the claim exactly where it left it
 * (ACL binding, registry, takeover). Claims that need nothing slow (anonymous clients, no
 * password file, no hook) are decided inline and never wait behind a password check.
 *
 * Both queues are plain lists under one mutex: they are touched once per CONNECT, never on
 * the worker data path. The inbound queue is bounded (auth_queue): past it the CONNECT
 * is refused with 0x89 (server busy) rather than queued without limit.
 *
 * The password table is reference counted (struct eng_pwref): the control thread gives each
 * claim a reference to the table current at submission, so a SIGHUP reload swaps the
 * control thread's pointer at any time and the old table is freed by its last user.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eng_internal.h"
#include "eng_passwd.h"


struct eng_auth {
	struct tachyon *e;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct eng_claim *in_head, *in_tail;
	uint32_t in_count;
	struct eng_claim *done_head, *done_tail;
	_Atomic uint32_t done_count; /* written under mu; read by the control thread's sleep test */
	bool exit;
	unsigned nthreads;
	pthread_t threads[];
};

struct eng_pwref *eng_pwref_new(struct eng_passwd *pw)
{
	struct eng_pwref *r = malloc(sizeof(*r));
	if (!r)
		return NULL;
	atomic_init(&r->refs, 1);
	r->pw = pw;
	return r;
}

void eng_pwref_put(struct eng_pwref *r)
{
	/* acq_rel: the last holder sees every other holder's reads before it frees */
	if (r && atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1) {
		eng_passwd_free(r->pw);
		free(r);
	}
}

/* The built-in rules: the password file, then allow_anonymous. */
static uint8_t builtin(const struct eng_passwd *pw, bool anon_ok, const struct eng_claim *cl)
{
	if (cl->has_username && pw) {
		if (!cl->has_password || !eng_passwd_check(pw, cl->username, cl->username_len,
							   cl->password, cl->password_len))
			return ENG_RC_BAD_USER_OR_PASSWORD;
		return ENG_RC_SUCCESS;
	}
	if (!cl->has_username && !anon_ok)
		return ENG_RC_NOT_AUTHORIZED;
	return ENG_RC_SUCCESS;
}

bool eng_auth_needs_thread(struct tachyon *e, const struct eng_claim *cl)
{
	return cl->method || e->hooks.n_auth || (cl->has_username && e->ctl.passwd);
}

uint8_t eng_auth_inline(struct tachyon *e, const struct eng_claim *cl)
{
	return builtin(NULL, e->cfg.allow_anonymous, cl);
}

static uint8_t fail_reason(uint8_t r)
{
	return r >= 0x80 ? r : ENG_RC_NOT_AUTHORIZED;
}

/* One step of an enhanced authentication method. */
static void method_step(struct tachyon *e, struct eng_claim *cl)
{
	const struct eng_method *m = &e->hooks.methods[cl->method - 1];
	uint8_t *out = malloc(TACHYON_AUTH_DATA_MAX);
	struct tachyon_auth_step s = {
		.method = m->name,
		.client_id = cl->client_id,
		.username = {(const char *)cl->username, cl->username_len},
		.reauth = cl->reauth,
		.step = cl->auth_step,
		.data = {(const char *)cl->auth_data, cl->auth_data_len},
		.state = cl->auth_state,
		.out = out,
	};
	int rc;

	free(cl->auth_out);
	cl->auth_out = NULL;
	cl->auth_out_len = 0;
	if (!out) {
		cl->auth_rc = TACHYON_AUTH_FAIL;
		cl->result = ENG_RC_SERVER_UNAVAILABLE;
		return;
	}
	if (!cl->has_username)
		s.username.p = NULL;
	rc = m->fn(m->ctx, &s);
	if ((rc == TACHYON_AUTH_CONTINUE || rc == TACHYON_AUTH_SUCCESS) &&
	    s.out_len <= TACHYON_AUTH_DATA_MAX) {
		cl->auth_rc = (uint8_t)rc;
		cl->result = ENG_RC_SUCCESS;
		if (s.out_len) {
			cl->auth_out = out;
			cl->auth_out_len = (uint32_t)s.out_len;
			out = NULL;
		}
	} else {
		cl->auth_rc = TACHYON_AUTH_FAIL;
		cl->result = fail_reason(rc == TACHYON_AUTH_FAIL ? s.reason : 0);
	}
	free(out);
}

/* Decides one claim (auth thread). */
static void decide(struct tachyon *e, struct eng_claim *cl)
{
	const struct eng_hooks *h = &e->hooks;
	struct tachyon_auth_req req = {
		.client_id = cl->client_id,
		.username = {(const char *)cl->username, cl->username_len},
		.password = {(const char *)cl->password, cl->password_len},
		.peer = cl->peer,
		.protocol_version = cl->version,
	};
	int v = TACHYON_DEFER;

	if (cl->method) {
		method_step(e, cl);
		return;
	}
	if (!cl->has_username)
		req.username.p = NULL;
	if (!cl->has_password)
		req.password.p = NULL;
	for (unsigned i = 0; i < h->n_auth && v == TACHYON_DEFER; i++) {
		tachyon_auth_fn fn = (tachyon_auth_fn)h->auth[i].fn;
		uint8_t reason = 0;
		v = fn(h->auth[i].ctx, &req, &reason);
		if (v == TACHYON_DENY)
			cl->result = fail_reason(reason);
		else if (v == TACHYON_ALLOW)
			cl->result = ENG_RC_SUCCESS;
	}
	if (v == TACHYON_DEFER)
		cl->result = builtin(cl->pw ? cl->pw->pw : NULL, cl->allow_anon, cl);
}

static void *auth_main(void *arg)
{
	struct eng_auth *a = arg;
	struct tachyon *e = a->e;

	pthread_mutex_lock(&a->mu);
	for (;;) {
		struct eng_claim *cl;

		while (!a->in_head && !a->exit)
			pthread_cond_wait(&a->cv, &a->mu);
		if (a->exit)
			break;
		cl = a->in_head;
		a->in_head = cl->anext;
		if (!a->in_head)
			a->in_tail = NULL;
		a->in_count--;
		pthread_mutex_unlock(&a->mu);

		decide(e, cl);
		eng_pwref_put(cl->pw);
		cl->pw = NULL;
		cl->anext = NULL;

		pthread_mutex_lock(&a->mu);
		if (a->done_tail)
			a->done_tail->anext = cl;
		else
			a->done_head = cl;
		a->done_tail = cl;
		/* relaxed: the mutex orders the list; the count is the control thread's hint,
		 * made visible before the wake-up test by the fence in eng_ctl_wake() */
		atomic_store_explicit(&a->done_count,
				      atomic_load_explicit(&a->done_count, memory_order_relaxed) +
					      1,
				      memory_order_relaxed);
		pthread_mutex_unlock(&a->mu);
		eng_ctl_wake(e);
		pthread_mutex_lock(&a->mu);
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

int eng_auth_start(struct tachyon *e, char *err, size_t errlen)
{
	unsigned n = e->cfg.auth_threads ? e->cfg.auth_threads : 1;
	struct eng_auth *a = calloc(1, sizeof(*a) + n * sizeof(pthread_t));

	if (!a) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	a->e = e;
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	atomic_init(&a->done_count, 0);
	for (unsigned i = 0; i < n; i++) {
		int rc = pthread_create(&a->threads[i], NULL, auth_main, a);
		if (rc != 0) {
			snprintf(err, errlen, "cannot start an auth thread: %s", strerror(rc));
			e->auth = a;
			eng_auth_stop(e);
			return -rc;
		}
		a->nthreads++;
		pthread_setname_np(a->threads[i], "tachyon-auth");
	}
	e->auth = a;
	return 0;
}

static void claims_free(struct eng_claim *cl)
{
	while (cl) {
		struct eng_claim *n = cl->anext;
		eng_pwref_put(cl->pw);
		cl->pw = NULL;
		eng_claim_free(cl);
		cl = n;
	}
}

void eng_auth_stop(struct tachyon *e)
{
	struct eng_auth *a = e->auth;

	if (!a)
		return;
	pthread_mutex_lock(&a->mu);
	a->exit = true;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	for (unsigned i = 0; i < a->nthreads; i++)
		pthread_join(a->threads[i], NULL);
	/* the clients these claims name are freed with their workers */
	claims_free(a->in_head);
	claims_free(a->done_head);
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cv);
	free(a);
	e->auth = NULL;
}

int eng_auth_submit(struct tachyon *e, struct eng_claim *cl)
{
	struct eng_auth *a = e->auth;

	pthread_mutex_lock(&a->mu);
	if (a->in_count >= e->cfg.auth_queue) {
		pthread_mutex_unlock(&a->mu);
		return -EBUSY;
	}
	cl->allow_anon = e->cfg.allow_anonymous;
	cl->pw = e->ctl.passwd;
	if (cl->pw)
		/* relaxed: the control thread holds a reference while it hands one out */
		atomic_fetch_add_explicit(&cl->pw->refs, 1, memory_order_relaxed);
	cl->anext = NULL;
	if (a->in_tail)
		a->in_tail->anext = cl;
	else
		a->in_head = cl;
	a->in_tail = cl;
	a->in_count++;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
	return 0;
}

bool eng_auth_idle(struct tachyon *e)
{
	/* relaxed: paired with the seq_cst fences of the control thread's sleep test and of
	 * eng_ctl_wake() */
	return !e->auth || atomic_load_explicit(&e->auth->done_count, memory_order_relaxed) == 0;
}

unsigned eng_auth_drain(struct tachyon *e, void (*done)(struct tachyon *, struct eng_claim *))
{
	struct eng_auth *a = e->auth;
	struct eng_claim *list;
	unsigned n = 0;

	if (eng_auth_idle(e))
		return 0;
	pthread_mutex_lock(&a->mu);
	list = a->done_head;
	a->done_head = a->done_tail = NULL;
	atomic_store_explicit(&a->done_count, 0, memory_order_relaxed);
	pthread_mutex_unlock(&a->mu);
	while (list) {
		struct eng_claim *cl = list;
		list = cl->anext;
		cl->anext = NULL;
		done(e, cl);
		n++;
	}
	return n;
}

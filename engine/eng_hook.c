/* SPDX-License-Identifier: MIT */
/*
 * Hooks for embedders and plugins: registration (before tachyon_start()) and the worker-side
 * calls of the authorisation and intercept hooks.
 *
 * The hook tables live in struct tachyon and are written only before the workers start;
 * pthread_create() orders those writes before anything a worker does, so the workers read
 * them without synchronisation. The call sites test a count first: with no hook registered
 * the data path pays one well-predicted branch (and, for the ACL, it was already testing
 * c->acl there).
 */
#include <errno.h>
#include <string.h>

#include "eng_internal.h"

static int add_hook(struct tachyon *e, struct eng_hook *tab, unsigned *n, void *fn, void *ctx)
{
	if (!e || !fn)
		return -EINVAL;
	if (e->started)
		return -EBUSY;
	if (*n >= TACHYON_HOOKS_MAX)
		return -ENOSPC;
	tab[*n].fn = fn;
	tab[*n].ctx = ctx;
	(*n)++;
	return 0;
}

/* Function pointers travel as void * in the table (POSIX guarantees the round trip). */
int tachyon_add_auth_hook(struct tachyon *e, tachyon_auth_fn fn, void *ctx)
{
	return add_hook(e, e->hooks.auth, &e->hooks.n_auth, (void *)fn, ctx);
}

int tachyon_add_acl_hook(struct tachyon *e, tachyon_acl_fn fn, void *ctx)
{
	return add_hook(e, e->hooks.acl, &e->hooks.n_acl, (void *)fn, ctx);
}

int tachyon_add_intercept_hook(struct tachyon *e, tachyon_intercept_fn fn, void *ctx)
{
	return add_hook(e, e->hooks.intercept, &e->hooks.n_intercept, (void *)fn, ctx);
}

int tachyon_add_auth_method(struct tachyon *e, const char *method, tachyon_auth_method_fn fn,
			    void *ctx)
{
	struct eng_hooks *h;
	size_t len;

	if (!e || !method || !fn)
		return -EINVAL;
	h = &e->hooks;
	len = strlen(method);
	if (len == 0 || len >= sizeof(h->methods[0].name) ||
	    !eng_utf8_valid((const uint8_t *)method, len))
		return -EINVAL;
	if (e->started)
		return -EBUSY;
	if (eng_method_find(e, (const uint8_t *)method, len))
		return -EEXIST;
	if (h->n_methods >= TACHYON_HOOKS_MAX)
		return -ENOSPC;
	struct eng_method *m = &h->methods[h->n_methods++];
	m->fn = fn;
	m->ctx = ctx;
	m->len = (uint16_t)len;
	memcpy(m->name, method, len + 1);
	return 0;
}

uint8_t eng_method_find(const struct tachyon *e, const uint8_t *name, size_t len)
{
	for (unsigned i = 0; i < e->hooks.n_methods; i++) {
		const struct eng_method *m = &e->hooks.methods[i];
		if (m->len == len && memcmp(m->name, name, len) == 0)
			return (uint8_t)(i + 1);
	}
	return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Worker side.
 */
static int acl_hooks(struct eng_client *c, int op, const char *topic, size_t len, uint8_t qos,
		     bool retain)
{
	const struct eng_hooks *h = &c->w->eng->hooks;
	struct tachyon_acl_req req = {.op = op,
				      .client_id = c->client_id,
				      .username = eng_client_username(c),
				      .topic = {topic, len},
				      .qos = qos,
				      .retain = retain};

	for (unsigned i = 0; i < h->n_acl; i++) {
		tachyon_acl_fn fn = (tachyon_acl_fn)h->acl[i].fn;
		int v = fn(h->acl[i].ctx, &req);
		if (v != TACHYON_DEFER)
			return v;
	}
	return TACHYON_DEFER;
}

bool eng_may_publish(struct eng_client *c, const struct eng_str *topic, uint8_t qos, bool retain)
{
	int v = TACHYON_DEFER;

	if (c->w->eng->hooks.n_acl)
		v = acl_hooks(c, TACHYON_ACL_PUBLISH, (const char *)topic->p, topic->len, qos,
			      retain);
	if (v == TACHYON_DEFER)
		return !c->acl || eng_acl_check(c->acl, (const char *)topic->p, topic->len, true);
	return v == TACHYON_ALLOW;
}

bool eng_may_subscribe(struct eng_client *c, const char *filter, size_t len, uint8_t qos)
{
	int v = TACHYON_DEFER;

	if (c->w->eng->hooks.n_acl)
		v = acl_hooks(c, TACHYON_ACL_SUBSCRIBE, filter, len, qos, false);
	if (v == TACHYON_DEFER)
		return !c->acl || eng_acl_check_filter(c->acl, filter, len);
	return v == TACHYON_ALLOW;
}

bool eng_intercept_drop(struct eng_client *c, const struct eng_publish *pub,
			const struct eng_str *topic)
{
	const struct eng_hooks *h = &c->w->eng->hooks;
	struct tachyon_message tm;

	eng_message_view(&tm, topic, &pub->payload, &pub->props, pub->qos, pub->retain,
			 (pub->props.present & ENG_PBIT(ENG_PROP_MESSAGE_EXPIRY))
				 ? pub->props.message_expiry
				 : 0);
	tm.client_id = c->client_id;
	tm.username = eng_client_username(c);
	for (unsigned i = 0; i < h->n_intercept; i++) {
		tachyon_intercept_fn fn = (tachyon_intercept_fn)h->intercept[i].fn;
		if (fn(h->intercept[i].ctx, &tm) == TACHYON_DROP)
			return true;
	}
	return false;
}

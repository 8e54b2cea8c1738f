/* SPDX-License-Identifier: MIT */
/*
 * A test plugin for tachyond's plugin ABI, built against tachyon.h only. Options:
 *   plugin_opt_deny PREFIX     PUBLISH to topics starting with PREFIX is denied (0x87)
 *   plugin_opt_token TOKEN     registers the enhanced authentication method "PLUGIN-TOKEN",
 *                              which accepts a CONNECT whose Authentication Data is TOKEN
 *   plugin_opt_cleanup FILE    tachyon_plugin_cleanup() writes "cleaned" to FILE
 * Built three times: as is, with TEST_BAD_ABI (exports a wrong ABI number) and with
 * TEST_NO_INIT (no tachyon_plugin_init), for the loader's error cases.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tachyon.h"

#define EXPORT __attribute__((visibility("default")))

struct plugin {
	char deny[256];
	char token[256];
	char cleanup[512];
};

#ifdef TEST_BAD_ABI
EXPORT const uint32_t tachyon_plugin_abi = TACHYON_PLUGIN_ABI + 998u;
#else
EXPORT const uint32_t tachyon_plugin_abi = TACHYON_PLUGIN_ABI;
#endif

#ifndef TEST_NO_INIT
static int acl(void *ctx, const struct tachyon_acl_req *r)
{
	const struct plugin *p = ctx;
	size_t n = strlen(p->deny);

	if (r->op == TACHYON_ACL_PUBLISH && n && r->topic.len >= n &&
	    memcmp(r->topic.p, p->deny, n) == 0)
		return TACHYON_DENY;
	return TACHYON_DEFER;
}

static int token(void *ctx, struct tachyon_auth_step *s)
{
	const struct plugin *p = ctx;

	if (s->data.len == strlen(p->token) && memcmp(s->data.p, p->token, s->data.len) == 0)
		return TACHYON_AUTH_SUCCESS;
	s->reason = 0x87;
	return TACHYON_AUTH_FAIL;
}

EXPORT int tachyon_plugin_init(struct tachyon *t, const struct tachyon_plugin_info *info,
			       void **data)
{
	struct plugin *p;
	int rc;

	if (info->abi != TACHYON_PLUGIN_ABI)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	for (unsigned i = 0; i < info->nopts; i++) {
		const struct tachyon_plugin_opt *o = &info->opts[i];
		if (strcmp(o->key, "deny") == 0)
			snprintf(p->deny, sizeof(p->deny), "%s", o->value);
		else if (strcmp(o->key, "token") == 0)
			snprintf(p->token, sizeof(p->token), "%s", o->value);
		else if (strcmp(o->key, "cleanup") == 0)
			snprintf(p->cleanup, sizeof(p->cleanup), "%s", o->value);
		else if (strcmp(o->key, "fail") == 0) {
			free(p);
			return -EPERM;
		}
	}
	rc = tachyon_add_acl_hook(t, acl, p);
	if (rc == 0 && p->token[0])
		rc = tachyon_add_auth_method(t, "PLUGIN-TOKEN", token, p);
	if (rc != 0) {
		free(p);
		return rc;
	}
	*data = p;
	return 0;
}
#endif

EXPORT void tachyon_plugin_cleanup(void *data)
{
	struct plugin *p = data;

	if (p->cleanup[0]) {
		FILE *f = fopen(p->cleanup, "w");
		if (f) {
			fputs("cleaned\n", f);
			fclose(f);
		}
	}
	free(p);
}

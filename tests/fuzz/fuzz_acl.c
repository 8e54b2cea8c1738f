/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the ACL file parser and the checks: any text parses into a table or fails with a
 * message; a parsed table binds for a user and a client id and answers checks on the input's
 * own words as topics and filters without crashing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eng_acl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	struct eng_acl *a;
	struct eng_acl_set *s;

	err[0] = '\0';
	a = eng_acl_parse((const char *)data, size, "fuzz", err, sizeof(err));
	if (!a) {
		if (err[0] == '\0')
			abort();
		return 0;
	}
	s = eng_acl_bind(a, "alice", 5, "client-1", 8);
	if (s) {
		size_t n = size < 64 ? size : 64;
		char topic[65];
		memcpy(topic, data, n);
		topic[n] = '\0';
		size_t tl = strlen(topic);
		if (tl) {
			(void)eng_acl_check(s, topic, tl, true);
			(void)eng_acl_check(s, topic, tl, false);
			(void)eng_acl_check_filter(s, topic, tl);
		}
		(void)eng_acl_check(s, "a/b/c", 5, false);
		(void)eng_acl_check_filter(s, "a/+/#", 5);
		(void)eng_acl_check_filter(s, "$share/g/a/#", 12);
		eng_acl_set_free(s);
	}
	s = eng_acl_bind(a, NULL, 0, "anon", 4);
	eng_acl_set_free(s);
	eng_acl_free(a);
	return 0;
}

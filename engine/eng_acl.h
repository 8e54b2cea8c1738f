/* SPDX-License-Identifier: MIT */
/*
 * Access control lists (Mosquitto-style file: user / client sections, topic and pattern rules
 * with read / write / readwrite / deny, %u and %c substitution). See eng_acl.c for the format.
 *
 * Threading: a table (struct eng_acl) is parsed and owned by the control thread; a client's
 * bound set (struct eng_acl_set) is built by the control thread at CONNECT and then owned by
 * the client's worker. Both are immutable after creation.
 */
#ifndef ENG_ACL_H
#define ENG_ACL_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct eng_acl;
struct eng_acl_set;

/* Parses ACL text (name for messages). NULL with "name:line: why" in err on error. */
struct eng_acl *eng_acl_parse(const char *text, size_t len, const char *name, char *err,
			      size_t errlen);
struct eng_acl *eng_acl_load(const char *path, char *err, size_t errlen);
void eng_acl_free(struct eng_acl *a);

/* The rules that apply to one client (user may be NULL: anonymous). NULL on allocation
 * failure; the caller must then refuse the client, never treat it as "no rules". */
struct eng_acl_set *eng_acl_bind(const struct eng_acl *a, const char *user, size_t ulen,
				 const char *client_id, size_t clen);
void eng_acl_set_free(struct eng_acl_set *s);

/* May the client publish (write) / receive (read) on topic name topic? */
bool eng_acl_check(const struct eng_acl_set *s, const char *topic, size_t len, bool write);
/* True if deliveries must be checked one by one (a deny rule may cut into a read area). */
bool eng_acl_delivery_check(const struct eng_acl_set *s);
/* May the client subscribe to filter (plain or $share/...)? */
bool eng_acl_check_filter(const struct eng_acl_set *s, const char *filter, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* ENG_ACL_H */

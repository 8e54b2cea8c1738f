/* SPDX-License-Identifier: MIT */
/*
 * Access control lists, in the familiar Mosquitto style:
 *
 *   # rules before any "user" or "client" line apply to clients without a user name
 *   topic read $SYS/#
 *   user alice                  # the following rules apply to user alice
 *   topic readwrite home/alice/#
 *   topic deny home/alice/secret
 *   client sensor-7             # ... to client id sensor-7
 *   topic write sensors/7/#
 *   pattern readwrite users/%u/#   # every client; %u = user name, %c = client id
 *
 * Access words: read, write, readwrite, deny (default readwrite when omitted). When an ACL
 * file is configured, everything not granted is denied; a matching deny rule wins.
 *
 * The table is parsed on the control thread (start, SIGHUP). At CONNECT the control thread
 * binds the rules that apply to the client (user, client id, patterns with %u and %c
 * substituted) into a small per-client set that the client's worker owns; checks then touch
 * only that set. A reload applies to connections made after it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eng_file.h"
#include "eng_internal.h"

enum {
	ACL_READ = 1,
	ACL_WRITE = 2,
	ACL_DENY = 4,
};

enum {
	AR_ANON = 0,
	AR_USER,
	AR_CLIENT,
	AR_PATTERN,
};

struct acl_rule {
	uint8_t scope;
	uint8_t access;
	char *owner;  /* user name or client id (AR_USER, AR_CLIENT) */
	char *filter;
};

struct eng_acl {
	struct acl_rule *rules;
	uint32_t count;
};

struct acl_entry {
	uint8_t access;
	uint16_t len;
	char *filter;
};

struct eng_acl_set {
	uint32_t count;
	bool has_deny; /* deliveries are checked one by one (a deny may sit inside a read area) */
	struct acl_entry ent[];
};

void eng_acl_free(struct eng_acl *a)
{
	if (!a)
		return;
	for (uint32_t i = 0; i < a->count; i++) {
		free(a->rules[i].owner);
		free(a->rules[i].filter);
	}
	free(a->rules);
	free(a);
}

static char *strndup_(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

/* Next whitespace-separated word of [*p, end); false at the end. */
static bool word(const char **p, const char *end, const char **w, size_t *wl)
{
	const char *s = *p;
	while (s < end && (*s == ' ' || *s == '\t' || *s == '\r'))
		s++;
	if (s == end)
		return false;
	*w = s;
	while (s < end && *s != ' ' && *s != '\t' && *s != '\r')
		s++;
	*wl = (size_t)(s - *w);
	*p = s;
	return true;
}

static bool is_word(const char *w, size_t wl, const char *lit)
{
	return wl == strlen(lit) && memcmp(w, lit, wl) == 0;
}

struct eng_acl *eng_acl_parse(const char *text, size_t len, const char *name, char *err,
			      size_t errlen)
{
	struct eng_acl *a = calloc(1, sizeof(*a));
	uint32_t cap = 0, line = 0;
	uint8_t scope = AR_ANON;
	char *owner = NULL;
	struct eng_lines ls = {text, len, 0, 0};
	const char *s;
	size_t ll;

	if (!a)
		goto oom;
	while (eng_line_next(&ls, &s, &ll)) {
		const char *end = s + ll, *w, *rest;
		size_t wl;
		line = ls.no;
		if (memchr(s, '\0', (size_t)(end - s))) {
			snprintf(err, errlen, "%s:%u: NUL byte in the line", name, line);
			goto fail;
		}
		if (!word(&s, end, &w, &wl) || w[0] == '#')
			continue;
		if (is_word(w, wl, "user") || is_word(w, wl, "client")) {
			uint8_t sc = w[0] == 'u' ? AR_USER : AR_CLIENT;
			while (s < end && (*s == ' ' || *s == '\t'))
				s++;
			rest = end;
			while (rest > s && (rest[-1] == ' ' || rest[-1] == '\t' || rest[-1] == '\r'))
				rest--;
			if (rest == s) {
				snprintf(err, errlen, "%s:%u: '%.*s' needs a name", name, line,
					 (int)wl, w);
				goto fail;
			}
			free(owner);
			owner = strndup_(s, (size_t)(rest - s));
			if (!owner)
				goto oom;
			scope = sc;
			continue;
		}
		if (!is_word(w, wl, "topic") && !is_word(w, wl, "pattern")) {
			snprintf(err, errlen, "%s:%u: unknown keyword '%.*s' (user, client, topic, "
				 "pattern)", name, line, (int)(wl > 32 ? 32 : wl), w);
			goto fail;
		}
		bool pattern = w[0] == 'p';
		uint8_t access = ACL_READ | ACL_WRITE;
		const char *f;
		size_t fl;
		if (!word(&s, end, &f, &fl)) {
			snprintf(err, errlen, "%s:%u: '%s' needs a topic filter", name, line,
				 pattern ? "pattern" : "topic");
			goto fail;
		}
		const char *save = s, *f2;
		size_t fl2;
		if (word(&s, end, &f2, &fl2)) {
			if (is_word(f, fl, "read"))
				access = ACL_READ;
			else if (is_word(f, fl, "write"))
				access = ACL_WRITE;
			else if (is_word(f, fl, "readwrite"))
				access = ACL_READ | ACL_WRITE;
			else if (is_word(f, fl, "deny"))
				access = ACL_DENY;
			else {
				snprintf(err, errlen, "%s:%u: access must be read, write, readwrite "
					 "or deny, not '%.*s'", name, line, (int)(fl > 32 ? 32 : fl), f);
				goto fail;
			}
			f = f2;
			fl = fl2;
			const char *x;
			size_t xl;
			if (word(&s, end, &x, &xl)) {
				snprintf(err, errlen, "%s:%u: unexpected '%.*s' after the filter", name,
					 line, (int)(xl > 32 ? 32 : xl), x);
				goto fail;
			}
		} else {
			s = save;
		}
		if (!pattern && mt_topic_filter_check(NULL, f, fl, NULL) != 0) {
			snprintf(err, errlen, "%s:%u: invalid topic filter '%.*s'", name, line,
				 (int)(fl > 64 ? 64 : fl), f);
			goto fail;
		}
		if (fl > 65535) {
			snprintf(err, errlen, "%s:%u: topic filter too long", name, line);
			goto fail;
		}
		if (a->count == cap) {
			uint32_t ncap = cap ? cap * 2 : 16;
			struct acl_rule *nr = realloc(a->rules, ncap * sizeof(*nr));
			if (!nr)
				goto oom;
			a->rules = nr;
			cap = ncap;
		}
		struct acl_rule *r = &a->rules[a->count];
		r->scope = pattern ? AR_PATTERN : scope;
		r->access = access;
		r->owner = NULL;
		r->filter = strndup_(f, fl);
		if (!r->filter)
			goto oom;
		if (!pattern && scope != AR_ANON && !(r->owner = strdup(owner))) {
			free(r->filter);
			goto oom;
		}
		a->count++;
	}
	free(owner);
	return a;
oom:
	snprintf(err, errlen, "%s: out of memory", name);
fail:
	free(owner);
	eng_acl_free(a);
	return NULL;
}

struct eng_acl *eng_acl_load(const char *path, char *err, size_t errlen)
{
	size_t len;
	char *buf = eng_file_read(path, ENG_FILE_MAX, &len, err, errlen);
	if (!buf)
		return NULL;
	struct eng_acl *a = eng_acl_parse(buf, len, path, err, errlen);
	free(buf);
	return a;
}

/* Substitutes %u and %c; NULL if the rule needs a user name the client does not have. */
static char *substitute(const char *f, const char *user, size_t ulen, const char *cid,
			size_t clen, bool has_user)
{
	size_t need = 1;
	for (const char *p = f; *p; p++) {
		if (p[0] == '%' && p[1] == 'u') {
			if (!has_user)
				return NULL;
			need += ulen;
			p++;
		} else if (p[0] == '%' && p[1] == 'c') {
			need += clen;
			p++;
		} else {
			need++;
		}
	}
	char *out = malloc(need), *o = out;
	if (!out)
		return NULL;
	for (const char *p = f; *p; p++) {
		if (p[0] == '%' && p[1] == 'u') {
			memcpy(o, user, ulen);
			o += ulen;
			p++;
		} else if (p[0] == '%' && p[1] == 'c') {
			memcpy(o, cid, clen);
			o += clen;
			p++;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	return out;
}

struct eng_acl_set *eng_acl_bind(const struct eng_acl *a, const char *user, size_t ulen,
				 const char *client_id, size_t clen)
{
	bool has_user = user != NULL;
	uint32_t n = 0;
	struct eng_acl_set *s = malloc(sizeof(*s) + a->count * sizeof(struct acl_entry));

	if (!s)
		return NULL; /* treated as "no rules": everything denied by the caller's check */
	for (uint32_t i = 0; i < a->count; i++) {
		const struct acl_rule *r = &a->rules[i];
		char *f = NULL;
		switch (r->scope) {
		case AR_ANON:
			if (!has_user)
				f = strdup(r->filter);
			break;
		case AR_USER:
			if (has_user && strlen(r->owner) == ulen && memcmp(r->owner, user, ulen) == 0)
				f = strdup(r->filter);
			break;
		case AR_CLIENT:
			if (strlen(r->owner) == clen && memcmp(r->owner, client_id, clen) == 0)
				f = strdup(r->filter);
			break;
		default:
			f = substitute(r->filter, user, ulen, client_id, clen, has_user);
			break;
		}
		if (!f)
			continue;
		s->ent[n].access = r->access;
		s->ent[n].len = (uint16_t)strlen(f);
		s->ent[n].filter = f;
		n++;
	}
	s->count = n;
	s->has_deny = false;
	for (uint32_t i = 0; i < n; i++)
		if (s->ent[i].access & ACL_DENY)
			s->has_deny = true;
	return s;
}

void eng_acl_set_free(struct eng_acl_set *s)
{
	if (!s)
		return;
	for (uint32_t i = 0; i < s->count; i++)
		free(s->ent[i].filter);
	free(s);
}

bool eng_acl_check(const struct eng_acl_set *s, const char *topic, size_t len, bool write)
{
	bool allowed = false;
	uint8_t want = write ? ACL_WRITE : ACL_READ;

	for (uint32_t i = 0; i < s->count; i++) {
		const struct acl_entry *e = &s->ent[i];
		if (!mt_topic_matches(e->filter, e->len, topic, len))
			continue;
		if (e->access & ACL_DENY)
			return false;
		if (e->access & want)
			allowed = true;
	}
	return allowed;
}

/* True if every topic that filter sub matches is matched by rule filter f. */
static bool covers(const char *f, size_t fl, const char *sub, size_t sl)
{
	size_t i = 0, j = 0;
	for (;;) {
		size_t fe = i, se = j;
		while (fe < fl && f[fe] != '/')
			fe++;
		while (se < sl && sub[se] != '/')
			se++;
		bool fhash = fe - i == 1 && f[i] == '#';
		bool shash = se - j == 1 && sub[j] == '#';
		if (fhash)
			return true;
		if (shash)
			return false;
		if (fe - i == 1 && f[i] == '+') {
			/* any single level, wildcard or not */
		} else if (se - j == 1 && sub[j] == '+') {
			return false;
		} else if (fe - i != se - j || memcmp(f + i, sub + j, fe - i) != 0) {
			return false;
		}
		bool fend = fe >= fl, send = se >= sl;
		if (fend || send)
			return fend && send;
		i = fe + 1;
		j = se + 1;
	}
}

bool eng_acl_check_filter(const struct eng_acl_set *s, const char *filter, size_t len)
{
	bool allowed = false;
	struct mt_share_spec spec;

	if (mt_topic_is_shared(filter, len) &&
	    mt_topic_share_parse(NULL, filter, len, &spec, NULL) == 0) {
		filter = spec.filter;
		len = spec.filter_len;
	}
	for (uint32_t i = 0; i < s->count; i++) {
		const struct acl_entry *e = &s->ent[i];
		if (e->access & ACL_DENY) {
			/* wholly inside a denied area: refused; a partial overlap is filtered per
			 * delivery (eng_acl_delivery_check) */
			if (covers(e->filter, e->len, filter, len))
				return false;
			continue;
		}
		if ((e->access & ACL_READ) && covers(e->filter, e->len, filter, len))
			allowed = true;
	}
	return allowed;
}

bool eng_acl_delivery_check(const struct eng_acl_set *s)
{
	return s->has_deny;
}

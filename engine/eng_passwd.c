/* SPDX-License-Identifier: MIT */
/*
 * Password file parsing, hashing and verification (PBKDF2-HMAC-SHA512, OpenSSL).
 * The table is a sorted array of entries, searched by binary search on the user name.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "eng_passwd.h"
#include "eng_file.h"

#define PREFIX "$pbkdf2-sha512$"
#define ITER_MAX 10000000u

struct pw_entry {
	char *user;
	size_t ulen;
	unsigned iterations;
	uint8_t salt[ENG_PASSWD_SALT];
	uint8_t key[ENG_PASSWD_KEY];
};

struct eng_passwd {
	size_t n;
	struct pw_entry *e;
};

/* Decodes standard base64 of exactly want bytes; returns 0 or -EINVAL. */
static int b64_decode_exact(const char *s, size_t len, uint8_t *out, size_t want)
{
	uint8_t buf[128];
	if (len == 0 || len % 4 || len / 4 * 3 > sizeof(buf))
		return -EINVAL;
	int n = EVP_DecodeBlock(buf, (const unsigned char *)s, (int)len);
	if (n < 0)
		return -EINVAL;
	size_t pad = (s[len - 1] == '=') + (s[len - 2] == '=');
	if ((size_t)n - pad != want)
		return -EINVAL;
	memcpy(out, buf, want);
	return 0;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct pw_entry *x = a, *y = b;
	size_t n = x->ulen < y->ulen ? x->ulen : y->ulen;
	int c = memcmp(x->user, y->user, n);
	return c ? c : (x->ulen > y->ulen) - (x->ulen < y->ulen);
}

/* Parses "user:$pbkdf2-sha512$iter$salt$key" into e. Returns NULL or what is wrong. */
static const char *parse_line(const char *s, size_t len, struct pw_entry *e)
{
	const char *colon = memchr(s, ':', len);
	if (!colon || colon == s)
		return "expected user:hash";
	const char *h = colon + 1;
	size_t hlen = len - (size_t)(h - s);
	if (hlen < sizeof(PREFIX) - 1 || memcmp(h, PREFIX, sizeof(PREFIX) - 1) != 0)
		return "unknown hash format (expected $pbkdf2-sha512$...)";
	const char *p = h + sizeof(PREFIX) - 1, *end = s + len;
	unsigned long iter = 0;
	while (p < end && *p >= '0' && *p <= '9' && iter <= ITER_MAX)
		iter = iter * 10 + (unsigned long)(*p++ - '0');
	if (p == end || *p != '$' || iter == 0 || iter > ITER_MAX)
		return "bad iteration count";
	const char *salt = ++p;
	const char *dollar = memchr(salt, '$', (size_t)(end - salt));
	if (!dollar)
		return "missing key";
	if (b64_decode_exact(salt, (size_t)(dollar - salt), e->salt, ENG_PASSWD_SALT))
		return "bad salt";
	if (b64_decode_exact(dollar + 1, (size_t)(end - dollar - 1), e->key, ENG_PASSWD_KEY))
		return "bad key";
	e->ulen = (size_t)(colon - s);
	e->user = malloc(e->ulen + 1);
	if (!e->user)
		return "out of memory";
	memcpy(e->user, s, e->ulen);
	e->user[e->ulen] = '\0';
	e->iterations = (unsigned)iter;
	return NULL;
}

struct eng_passwd *eng_passwd_parse(const char *text, size_t len, const char *name, char *err,
				    size_t errlen)
{
	struct eng_passwd *pw = calloc(1, sizeof(*pw));
	size_t cap = 0;
	struct eng_lines ls = {text, len, 0, 0};
	const char *lp;
	size_t ll;

	if (!pw)
		goto fail_oom;
	while (eng_line_next(&ls, &lp, &ll)) {
		unsigned line = ls.no;
		size_t start = (size_t)(lp - text), end = start + ll;
		if (start == end || text[start] == '#')
			continue;
		if (pw->n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct pw_entry *ne = realloc(pw->e, ncap * sizeof(*ne));
			if (!ne)
				goto fail_oom;
			pw->e = ne;
			cap = ncap;
		}
		const char *why = parse_line(text + start, end - start, &pw->e[pw->n]);
		if (why) {
			snprintf(err, errlen, "%s:%u: %s", name, line, why);
			goto fail_parse;
		}
		pw->n++;
	}
	if (pw->n)
		qsort(pw->e, pw->n, sizeof(*pw->e), cmp_entry);
	for (size_t k = 1; k < pw->n; k++) {
		if (cmp_entry(&pw->e[k - 1], &pw->e[k]) == 0) {
			snprintf(err, errlen, "%s: user '%s' appears more than once", name,
				 pw->e[k].user);
			goto fail_parse;
		}
	}
	return pw;

fail_oom:
	snprintf(err, errlen, "%s: out of memory", name);
fail_parse:
	eng_passwd_free(pw);
	return NULL;
}

struct eng_passwd *eng_passwd_load(const char *path, char *err, size_t errlen)
{
	size_t len;
	char *buf = eng_file_read(path, 4 * (size_t)ENG_FILE_MAX, &len, err, errlen);
	if (!buf)
		return NULL;
	struct eng_passwd *pw = eng_passwd_parse(buf, len, path, err, errlen);
	free(buf);
	return pw;
}

void eng_passwd_free(struct eng_passwd *pw)
{
	if (!pw)
		return;
	for (size_t i = 0; i < pw->n; i++)
		free(pw->e[i].user);
	free(pw->e);
	free(pw);
}

size_t eng_passwd_count(const struct eng_passwd *pw)
{
	return pw->n;
}

static int derive(const uint8_t *password, size_t plen, const uint8_t *salt, unsigned iter,
		  uint8_t *key)
{
	return PKCS5_PBKDF2_HMAC((const char *)password, (int)plen, salt, ENG_PASSWD_SALT,
				 (int)iter, EVP_sha512(), ENG_PASSWD_KEY, key) == 1
		       ? 0
		       : -EIO;
}

bool eng_passwd_check(const struct eng_passwd *pw, const uint8_t *user, size_t ulen,
		      const uint8_t *password, size_t plen)
{
	struct pw_entry probe = {.user = (char *)(uintptr_t)user, .ulen = ulen};
	const struct pw_entry *e = pw->n ? bsearch(&probe, pw->e, pw->n, sizeof(*pw->e),
						   cmp_entry)
					 : NULL;
	uint8_t key[ENG_PASSWD_KEY];
	if (!e || plen > INT32_MAX)
		return false;
	if (derive(password, plen, e->salt, e->iterations, key) != 0)
		return false;
	return CRYPTO_memcmp(key, e->key, sizeof(key)) == 0;
}

int eng_passwd_hash_line(const char *user, const uint8_t *password, size_t plen,
			 unsigned iterations, char *out, size_t outlen)
{
	uint8_t salt[ENG_PASSWD_SALT], key[ENG_PASSWD_KEY];
	char salt64[4 * ((ENG_PASSWD_SALT + 2) / 3) + 1], key64[4 * ((ENG_PASSWD_KEY + 2) / 3) + 1];
	size_t ulen = strlen(user);

	if (ulen == 0 || ulen > ENG_PASSWD_USER_MAX || strpbrk(user, ":\r\n") || plen > INT32_MAX ||
	    iterations == 0 || iterations > ITER_MAX)
		return -EINVAL;
	if (RAND_bytes(salt, sizeof(salt)) != 1 || derive(password, plen, salt, iterations, key))
		return -EIO;
	EVP_EncodeBlock((unsigned char *)salt64, salt, sizeof(salt));
	EVP_EncodeBlock((unsigned char *)key64, key, sizeof(key));
	int n = snprintf(out, outlen, "%s:" PREFIX "%u$%s$%s", user, iterations, salt64, key64);
	return n < 0 || (size_t)n >= outlen ? -ENOSPC : 0;
}

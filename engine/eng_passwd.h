/* SPDX-License-Identifier: MIT */
/*
 * The password file: one "user:hash" line per user, where hash is
 *   $pbkdf2-sha512$ITERATIONS$SALT$KEY
 * with SALT and KEY in base64 (PBKDF2-HMAC-SHA512 from OpenSSL, a random 16-byte salt and a
 * 64-byte key). Lines starting with '#' and blank lines are ignored.
 *
 * A loaded file is an immutable table; the control thread loads a new one on reload and
 * swaps it. Verification is constant-time in the key comparison.
 */
#ifndef ENG_PASSWD_H
#define ENG_PASSWD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ENG_PASSWD_ITERATIONS 101000
#define ENG_PASSWD_SALT 16
#define ENG_PASSWD_KEY 64
#define ENG_PASSWD_USER_MAX 65535

struct eng_passwd;

/*
 * Parses password file text (name for messages). Returns the table, or NULL with a message
 * naming the line in err. The caller owns the table (eng_passwd_free).
 */
struct eng_passwd *eng_passwd_parse(const char *text, size_t len, const char *name, char *err,
				    size_t errlen);
/* Reads and parses a file. */
struct eng_passwd *eng_passwd_load(const char *path, char *err, size_t errlen);
void eng_passwd_free(struct eng_passwd *pw);

/* Users in the table. */
size_t eng_passwd_count(const struct eng_passwd *pw);

/*
 * True if user exists and password matches its hash. user and password are byte strings
 * (MQTT user names are UTF-8, passwords binary). Costs one PBKDF2 run: not for the data path
 * (CONNECT handling hands it to the control thread or an auth worker).
 */
bool eng_passwd_check(const struct eng_passwd *pw, const uint8_t *user, size_t ulen,
		      const uint8_t *password, size_t plen);

/*
 * Formats a new hash line "user:$pbkdf2-sha512$..." for the password (random salt) into
 * out[0..outlen). Returns 0, -EINVAL for a user name that cannot be stored (empty, ':' or a
 * line break in it), -ENOSPC, or -EIO if the random source or the KDF failed.
 */
int eng_passwd_hash_line(const char *user, const uint8_t *password, size_t plen,
			 unsigned iterations, char *out, size_t outlen);

#ifdef __cplusplus
}
#endif

#endif /* ENG_PASSWD_H */

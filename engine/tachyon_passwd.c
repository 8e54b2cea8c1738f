/* SPDX-License-Identifier: MIT */
/*
 * tachyon_passwd: manages a Tachyon password file.
 *   tachyon_passwd [-c] FILE USER          add or update USER; password read from stdin
 *   tachyon_passwd [-c] -b FILE USER PASS  the same, password on the command line
 *   tachyon_passwd -D FILE USER            delete USER
 * -c creates (or truncates) FILE first. The file is rewritten atomically (temporary file,
 * then rename) with mode 0600; lines of other users are kept as they were.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "eng_file.h"
#include "eng_passwd.h"

static void usage(void)
{
	fprintf(stderr, "usage: tachyon_passwd [-c] FILE USER            (password from stdin)\n"
			"       tachyon_passwd [-c] -b FILE USER PASSWORD\n"
			"       tachyon_passwd -D FILE USER\n");
}

/* Reads one line from stdin without echo when it is a terminal. */
static int read_password(char *out, size_t outlen)
{
	struct termios old, quiet;
	bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
	if (tty) {
		fprintf(stderr, "Password: ");
		quiet = old;
		quiet.c_lflag &= (tcflag_t)~ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	char *r = fgets(out, (int)outlen, stdin);
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fprintf(stderr, "\n");
	}
	if (!r)
		return -EIO;
	out[strcspn(out, "\r\n")] = '\0';
	return 0;
}

int main(int argc, char **argv)
{
	bool create = false, batch = false, del = false;
	int c;
	while ((c = getopt(argc, argv, "cbDh")) != -1) {
		switch (c) {
		case 'c': create = true; break;
		case 'b': batch = true; break;
		case 'D': del = true; break;
		default: usage(); return 2;
		}
	}
	int want = batch ? 3 : 2;
	if (argc - optind != want || (del && (batch || create))) {
		usage();
		return 2;
	}
	const char *path = argv[optind], *user = argv[optind + 1];
	char password[4096], line[512];
	if (!del) {
		if (batch) {
			snprintf(password, sizeof(password), "%s", argv[optind + 2]);
		} else if (read_password(password, sizeof(password)) != 0) {
			fprintf(stderr, "tachyon_passwd: no password given on stdin\n");
			return 1;
		}
		int rc = eng_passwd_hash_line(user, (const uint8_t *)password, strlen(password),
					      ENG_PASSWD_ITERATIONS, line, sizeof(line));
		if (rc == -EINVAL) {
			fprintf(stderr, "tachyon_passwd: user name must be non-empty, without ':' "
					"or line breaks\n");
			return 1;
		}
		if (rc != 0) {
			fprintf(stderr, "tachyon_passwd: hashing failed (%s)\n", strerror(-rc));
			return 1;
		}
	}

	size_t len = 0;
	char msg[512];
	char *old = create ? NULL : eng_file_read(path, 4 * (size_t)ENG_FILE_MAX, &len, msg,
						 sizeof(msg));
	if (!old && !create && errno != ENOENT) {
		fprintf(stderr, "tachyon_passwd: %s\n", msg);
		return 1;
	}
	if (!old && !(old = calloc(1, 1))) { /* a new file starts empty */
		fprintf(stderr, "tachyon_passwd: out of memory\n");
		return 1;
	}
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	FILE *out = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!out) {
		fprintf(stderr, "tachyon_passwd: %s: %s\n", tmp, strerror(errno));
		free(old);
		return 1;
	}
	size_t ulen = strlen(user);
	bool found = false;
	for (char *p = old, *nl; *p; p = nl ? nl + 1 : p + strlen(p)) {
		nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		bool mine = n > ulen && p[ulen] == ':' && memcmp(p, user, ulen) == 0;
		if (mine) {
			found = true;
			if (!del)
				fprintf(out, "%s\n", line);
		} else if (n) {
			fprintf(out, "%.*s\n", (int)n, p);
		}
		if (!nl)
			break;
	}
	if (!found && !del)
		fprintf(out, "%s\n", line);
	free(old);
	if (fclose(out) != 0 || rename(tmp, path) != 0) {
		fprintf(stderr, "tachyon_passwd: writing %s: %s\n", path, strerror(errno));
		unlink(tmp);
		return 1;
	}
	if (del && !found) {
		fprintf(stderr, "tachyon_passwd: user '%s' not found\n", user);
		return 1;
	}
	return 0;
}

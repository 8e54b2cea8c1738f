/* SPDX-License-Identifier: MIT */
/* Whole-file reads for the configuration-type files (see eng_file.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eng_file.h"

char *eng_file_read(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0;
	int e = 0;

	*len = 0;
	if (!f) {
		e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		goto fail_open;
	}
	for (;;) {
		if (*len + 1 >= cap) { /* room for the terminating NUL */
			size_t ncap = cap ? cap * 2 : 8192;
			if (ncap > max + 1)
				ncap = max + 1;
			if (*len + 1 >= ncap) {
				e = EFBIG;
				snprintf(err, errlen, "%s: larger than %zu bytes", path, max);
				goto fail_read;
			}
			char *nb = realloc(buf, ncap);
			if (!nb) {
				e = ENOMEM;
				snprintf(err, errlen, "%s: out of memory", path);
				goto fail_read;
			}
			buf = nb;
			cap = ncap;
		}
		size_t n = fread(buf + *len, 1, cap - *len - 1, f);
		if (n == 0)
			break;
		*len += n;
	}
	if (ferror(f)) {
		e = EIO;
		snprintf(err, errlen, "%s: read error", path);
		goto fail_read;
	}
	fclose(f);
	buf[*len] = '\0';
	return buf;

fail_read:
	free(buf);
	fclose(f);
fail_open:
	errno = e;
	return NULL;
}

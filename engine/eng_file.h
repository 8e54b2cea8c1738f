/* SPDX-License-Identifier: MIT */
/*
 * Reading a whole configuration-type file (config, password file, ACL file) into memory,
 * with a size cap and a message that names the file. Control thread / tools only.
 */
#ifndef ENG_FILE_H
#define ENG_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Default cap for files read with eng_file_read(). */
#define ENG_FILE_MAX (64u << 20)

/*
 * Reads path into a new buffer (the caller frees it), NUL-terminated after *len bytes.
 * Returns NULL on failure with a message naming path in err and errno set (ENOENT and the
 * like from open, EFBIG over max bytes, ENOMEM, EIO).
 */
char *eng_file_read(const char *path, size_t max, size_t *len, char *err, size_t errlen);

/* Walks text line by line, counting lines for messages. Start with {text, len, 0, 0}. */
struct eng_lines {
	const char *text;
	size_t len;
	size_t pos;
	unsigned no; /* number of the line last returned, from 1 */
};

/* The next line without its '\n' and a '\r' before it; false at the end of the text. */
static inline bool eng_line_next(struct eng_lines *ls, const char **line, size_t *n)
{
	if (ls->pos >= ls->len)
		return false;
	const char *s = ls->text + ls->pos;
	const char *nl = (const char *)memchr(s, '\n', ls->len - ls->pos);
	size_t l = nl ? (size_t)(nl - s) : ls->len - ls->pos;
	ls->pos += l + 1;
	ls->no++;
	if (l && s[l - 1] == '\r')
		l--;
	*line = s;
	*n = l;
	return true;
}

#ifdef __cplusplus
}
#endif

#endif /* ENG_FILE_H */

/* SPDX-License-Identifier: MIT */
/*
 * Reading a whole configuration-type file (config, password file, ACL file) into memory,
 * with a size cap and a message that names the file. Control thread / tools only.
 */
#ifndef ENG_FILE_H
#define ENG_FILE_H

#include <stddef.h>

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

#ifdef __cplusplus
}
#endif

#endif /* ENG_FILE_H */

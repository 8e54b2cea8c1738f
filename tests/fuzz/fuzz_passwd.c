/* SPDX-License-Identifier: MIT */
/* Fuzzes the password file parser: any text parses into a table or fails with a message. */
#include <stdint.h>
#include <stdlib.h>

#include "eng_passwd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	err[0] = '\0';
	struct eng_passwd *pw = eng_passwd_parse((const char *)data, size, "fuzz", err, sizeof(err));
	if (!pw && err[0] == '\0')
		abort();
	eng_passwd_free(pw);
	return 0;
}

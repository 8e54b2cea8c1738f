/* SPDX-License-Identifier: MIT */
/* Fuzzes the configuration parser: any text either parses or fails with a message, and the
 * plugin records it keeps are well-formed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eng_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct eng_config cfg;
	char err[512];

	eng_config_defaults(&cfg);
	err[0] = '\0';
	int rc = eng_config_parse(&cfg, (const char *)data, size, "fuzz.conf", err, sizeof(err));
	if (rc != 0 && err[0] == '\0')
		abort(); /* every failure must explain itself */
	if (memchr(cfg.bind, '\0', sizeof(cfg.bind)) == NULL)
		abort();
	/* what the plugin loader relies on: "P<path>\n" records, each followed by its
	 * "O<name>=<value>\n" records */
	if (memchr(cfg.plugins, '\0', sizeof(cfg.plugins)) == NULL)
		abort();
	for (const char *p = cfg.plugins; *p;) {
		const char *nl = strchr(p, '\n');
		if (!nl || (*p != 'P' && *p != 'O') || (p == cfg.plugins && *p != 'P'))
			abort();
		if (*p == 'O' && !memchr(p, '=', (size_t)(nl - p)))
			abort();
		p = nl + 1;
	}
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * Engine logging: level check, formatting into one buffer, one write(2) per line so lines
 * from different threads do not interleave.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "eng_log.h"

_Atomic uint32_t eng_log_level = ENG_LOG_NOTICE;

static const char *const level_names[] = {"error", "warning", "notice", "info", "debug"};

void eng_log_set_level(uint32_t level)
{
	if (level > ENG_LOG_DEBUG)
		level = ENG_LOG_DEBUG;
	atomic_store_explicit(&eng_log_level, level, memory_order_relaxed);
}

void eng_log_write(uint32_t level, const char *fmt, ...)
{
	char line[1024];
	struct timespec ts;
	va_list ap;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	n = snprintf(line, sizeof(line), "%lld.%03ld tachyon %s: ", (long long)ts.tv_sec,
		     ts.tv_nsec / 1000000, level_names[level > ENG_LOG_DEBUG ? ENG_LOG_DEBUG : level]);
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, (size_t)n) < 0) {
		/* nowhere left to report it */
	}
}

void eng_die(const char *file, int line, const char *msg)
{
	fprintf(stderr, "tachyon: fatal: %s (%s:%d)\n", msg, file, line);
	abort();
}

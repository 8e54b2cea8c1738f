/* SPDX-License-Identifier: MIT */
/*
 * Engine logging: one global level, checked before any argument is formatted, lines written
 * to stderr with a monotonic timestamp and the level. Data-path problems are counters first;
 * the log lines that name a client (protocol errors, auth failures) are rate-limited per worker
 * by the caller through eng_log_ratelimit().
 *
 * Threading: eng_log() may be called from any thread; the level is a relaxed atomic that the
 * control thread changes on reload (readers tolerate seeing the old level for a while).
 */
#ifndef ENG_LOG_H
#define ENG_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "eng_config.h"

/* The current level (enum eng_log_level); relaxed: no ordering with anything else. */
extern _Atomic uint32_t eng_log_level;

void eng_log_set_level(uint32_t level);
void eng_log_write(uint32_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline bool eng_log_on(uint32_t level)
{
	return level <= atomic_load_explicit(&eng_log_level, memory_order_relaxed);
}

#define eng_log(level, ...)                                                                    \
	do {                                                                                   \
		if (eng_log_on(level))                                                         \
			eng_log_write((level), __VA_ARGS__);                                   \
	} while (0)

#define ENG_ERR(...) eng_log(ENG_LOG_ERROR, __VA_ARGS__)
#define ENG_WARN(...) eng_log(ENG_LOG_WARNING, __VA_ARGS__)
#define ENG_NOTICE(...) eng_log(ENG_LOG_NOTICE, __VA_ARGS__)
#define ENG_INFO(...) eng_log(ENG_LOG_INFO, __VA_ARGS__)
#ifdef NDEBUG
#define ENG_DEBUG(...) ((void)0)
#else
#define ENG_DEBUG(...) eng_log(ENG_LOG_DEBUG, __VA_ARGS__)
#endif

/* Impossible states abort with file and line. */
#define ENG_DIE(msg) eng_die(__FILE__, __LINE__, (msg))
void eng_die(const char *file, int line, const char *msg) __attribute__((noreturn));

#endif /* ENG_LOG_H */

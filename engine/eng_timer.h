/* SPDX-License-Identifier: MIT */
/*
 * A hashed timer wheel, one per worker: keepalive (1.5x), CONNECT timeout, will delay, session
 * expiry, retry. Timers are intrusive (embedded in their owner) so arming never allocates;
 * arm / cancel are O(1) and a run costs one slot per elapsed tick plus the timers that fire.
 *
 * Resolution is ENG_TICK_MS; a timer fires at the first run at or after its deadline. Timers
 * farther than one revolution sit in their slot and are skipped until their round comes.
 *
 * Threading: a wheel and its timers belong to one worker thread.
 */
#ifndef ENG_TIMER_H
#define ENG_TIMER_H

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ENG_TICK_MS 50u
#define ENG_WHEEL_SLOTS 1024u

/* 24 bytes (every client holds three): expires_ms and kind share a word. */
#define ENG_TIMER_MAX_MS ((UINT64_C(1) << 56) - 1) /* ~2 million years; later is clamped */

struct eng_timer {
	struct eng_timer *next;
	struct eng_timer **pprev; /* NULL: not armed */
	uint64_t expires_ms : 56;
	uint8_t kind; /* the owner's business: which timer of the owner this is */
};

static_assert(sizeof(struct eng_timer) == 24, "kind shares the last word with expires_ms");

struct eng_wheel {
	uint64_t tick; /* next tick to process */
	uint32_t armed;
	struct eng_timer *slots[ENG_WHEEL_SLOTS];
};

typedef void eng_timer_fn(struct eng_timer *t, void *ctx);

/* Starts an empty wheel at now_ms. */
void eng_wheel_init(struct eng_wheel *w, uint64_t now_ms);

static inline bool eng_timer_armed(const struct eng_timer *t)
{
	return t->pprev != 0;
}

/* Arms (or re-arms) t to fire at expires_ms. */
void eng_timer_arm(struct eng_wheel *w, struct eng_timer *t, uint64_t expires_ms);

/* Disarms t if armed. */
void eng_timer_cancel(struct eng_wheel *w, struct eng_timer *t);

/*
 * Fires every timer due at now_ms: each is disarmed, then fn(t, ctx) runs (it may re-arm t or
 * arm / cancel others). Returns the number fired.
 */
unsigned eng_wheel_run(struct eng_wheel *w, uint64_t now_ms, eng_timer_fn *fn, void *ctx);

#ifdef __cplusplus
}
#endif

#endif /* ENG_TIMER_H */

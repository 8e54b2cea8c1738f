/* SPDX-License-Identifier: MIT */
/*
 * The timer wheel (see eng_timer.h). A timer lives in slot (expires / tick) mod slots; a run
 * walks the slots of the ticks that elapsed and fires the timers of each slot whose deadline
 * has come, leaving the ones of later rounds in place. A timer armed in the past goes to the
 * slot of the next tick to process, so it fires at the next run.
 */
#include <stddef.h>

#include "eng_timer.h"

void eng_wheel_init(struct eng_wheel *w, uint64_t now_ms)
{
	for (unsigned i = 0; i < ENG_WHEEL_SLOTS; i++)
		w->slots[i] = NULL;
	w->tick = now_ms / ENG_TICK_MS;
	w->armed = 0;
}

void eng_timer_cancel(struct eng_wheel *w, struct eng_timer *t)
{
	if (!t->pprev)
		return;
	*t->pprev = t->next;
	if (t->next)
		t->next->pprev = t->pprev;
	t->next = NULL;
	t->pprev = NULL;
	w->armed--;
}

void eng_timer_arm(struct eng_wheel *w, struct eng_timer *t, uint64_t expires_ms)
{
	struct eng_timer **slot;

	if (expires_ms > ENG_TIMER_MAX_MS)
		expires_ms = ENG_TIMER_MAX_MS;
	uint64_t tick = expires_ms / ENG_TICK_MS;
	eng_timer_cancel(w, t);
	if (tick < w->tick)
		tick = w->tick;
	slot = &w->slots[tick % ENG_WHEEL_SLOTS];
	t->expires_ms = expires_ms;
	t->next = *slot;
	if (t->next)
		t->next->pprev = &t->next;
	t->pprev = slot;
	*slot = t;
	w->armed++;
}

unsigned eng_wheel_run(struct eng_wheel *w, uint64_t now_ms, eng_timer_fn *fn, void *ctx)
{
	uint64_t now_tick = now_ms / ENG_TICK_MS;
	unsigned fired = 0;

	if (now_tick < w->tick)
		return 0;
	/* after a long stall, one pass over every slot is enough */
	if (now_tick - w->tick >= ENG_WHEEL_SLOTS)
		w->tick = now_tick - (ENG_WHEEL_SLOTS - 1);
	for (;;) {
		struct eng_timer **pp = &w->slots[w->tick % ENG_WHEEL_SLOTS];
		bool current = w->tick == now_tick;

		while (w->armed && *pp) {
			struct eng_timer *t = *pp;
			/* a past tick fires what belongs to its round; the current one what is due */
			bool due = current ? t->expires_ms <= now_ms
					   : t->expires_ms / ENG_TICK_MS <= w->tick;
			if (!due) {
				pp = &t->next;
				continue;
			}
			eng_timer_cancel(w, t);
			fn(t, ctx);
			fired++;
			/* fn may have changed this slot: walk it again */
			pp = &w->slots[w->tick % ENG_WHEEL_SLOTS];
		}
		if (current)
			break; /* the current tick is walked again at the next run */
		w->tick++;
	}
	return fired;
}

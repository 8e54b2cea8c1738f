// SPDX-License-Identifier: MIT
// The timer wheel (engine/eng_timer.c): deadlines are honoured (never early, late by at most a
// tick), cancel works, far timers wait for their round, callbacks may re-arm.
#include <gtest/gtest.h>

#include <vector>

#include "eng_timer.h"

namespace {
struct Rec {
	std::vector<std::pair<int, uint64_t>> fired;
	uint64_t now;
};

void on_fire(struct eng_timer *t, void *ctx)
{
	Rec *r = static_cast<Rec *>(ctx);
	r->fired.push_back({t->kind, r->now});
}
} // namespace

TEST(EngTimer, FiresAtDeadlineNotBefore)
{
	struct eng_wheel w;
	struct eng_timer a = {}, b = {};
	Rec rec;
	eng_wheel_init(&w, 1000);
	a.kind = 1;
	b.kind = 2;
	eng_timer_arm(&w, &a, 1500);
	eng_timer_arm(&w, &b, 1000 + 60000); // more than one revolution away
	for (uint64_t now = 1000; now <= 1000 + 70000; now += 10) {
		rec.now = now;
		eng_wheel_run(&w, now, on_fire, &rec);
	}
	ASSERT_EQ(rec.fired.size(), 2u);
	EXPECT_EQ(rec.fired[0].first, 1);
	EXPECT_GE(rec.fired[0].second, 1500u);
	EXPECT_LE(rec.fired[0].second, 1500u + ENG_TICK_MS);
	EXPECT_EQ(rec.fired[1].first, 2);
	EXPECT_GE(rec.fired[1].second, 61000u);
	EXPECT_LE(rec.fired[1].second, 61000u + ENG_TICK_MS);
	EXPECT_EQ(w.armed, 0u);
}

TEST(EngTimer, CancelAndRearm)
{
	struct eng_wheel w;
	struct eng_timer a = {};
	Rec rec;
	eng_wheel_init(&w, 0);
	eng_timer_arm(&w, &a, 100);
	EXPECT_TRUE(eng_timer_armed(&a));
	eng_timer_cancel(&w, &a);
	EXPECT_FALSE(eng_timer_armed(&a));
	eng_timer_cancel(&w, &a); // twice is fine
	eng_timer_arm(&w, &a, 300);
	eng_timer_arm(&w, &a, 500); // re-arm moves it
	for (uint64_t now = 0; now <= 1000; now += 5) {
		rec.now = now;
		eng_wheel_run(&w, now, on_fire, &rec);
	}
	ASSERT_EQ(rec.fired.size(), 1u);
	EXPECT_GE(rec.fired[0].second, 500u);
}

TEST(EngTimer, PastDeadlineFiresNextRunAndLongStall)
{
	struct eng_wheel w;
	std::vector<struct eng_timer> ts(100);
	Rec rec;
	eng_wheel_init(&w, 10000);
	eng_timer_arm(&w, &ts[0], 5000); // already due
	rec.now = 10000;
	eng_wheel_run(&w, 10000, on_fire, &rec);
	EXPECT_EQ(rec.fired.size(), 1u);
	for (size_t i = 1; i < ts.size(); i++)
		eng_timer_arm(&w, &ts[i], 10000 + i * 997);
	rec.now = 10000 + 10000000; // a stall far longer than a revolution
	eng_wheel_run(&w, rec.now, on_fire, &rec);
	EXPECT_EQ(rec.fired.size(), ts.size());
	EXPECT_EQ(w.armed, 0u);
}

namespace {
struct Rearm {
	struct eng_wheel *w;
	int count;
	uint64_t now;
};
void rearm(struct eng_timer *t, void *ctx)
{
	Rearm *r = static_cast<Rearm *>(ctx);
	if (++r->count < 5)
		eng_timer_arm(r->w, t, r->now + 1000);
}
} // namespace

TEST(EngTimer, CallbackMayRearm)
{
	struct eng_wheel w;
	struct eng_timer t = {};
	Rearm r = {&w, 0, 0};
	eng_wheel_init(&w, 0);
	eng_timer_arm(&w, &t, 1000);
	for (uint64_t now = 0; now <= 10000; now += 50) {
		r.now = now;
		eng_wheel_run(&w, now, rearm, &r);
	}
	EXPECT_EQ(r.count, 5);
}

// Deadlines past what the timer stores (56 bits of ms) are clamped to the latest one, never
// wrapped into an early one; the kind sharing the word is left alone.
TEST(EngTimer, FarDeadlineIsClampedNotWrapped)
{
	struct eng_wheel w;
	struct eng_timer a = {}, b = {};
	Rec rec;
	eng_wheel_init(&w, 1000);
	a.kind = 0xA5;
	b.kind = 0x5A;
	eng_timer_arm(&w, &a, UINT64_MAX);
	eng_timer_arm(&w, &b, (UINT64_C(1) << 56) + 2000); // would wrap to 2000
	EXPECT_EQ(a.kind, 0xA5);
	EXPECT_EQ(b.kind, 0x5A);
	EXPECT_EQ(static_cast<uint64_t>(a.expires_ms), ENG_TIMER_MAX_MS);
	EXPECT_EQ(static_cast<uint64_t>(b.expires_ms), ENG_TIMER_MAX_MS);
	for (uint64_t now = 1000; now <= 1000 + 70000; now += 10) {
		rec.now = now;
		eng_wheel_run(&w, now, on_fire, &rec);
	}
	EXPECT_TRUE(rec.fired.empty());
	EXPECT_EQ(w.armed, 2u);
	eng_timer_cancel(&w, &a);
	eng_timer_cancel(&w, &b);
	EXPECT_EQ(w.armed, 0u);
}

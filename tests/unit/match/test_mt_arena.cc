/* SPDX-License-Identifier: MIT */
/*
 * The global index's object arena (match/mt_arena.c), against a brute-force model: every live
 * object is filled with its own byte pattern and the model remembers them all, so any overlap
 * of two live objects, any object handed out twice, or a non-zeroed allocation shows up as a
 * broken pattern. Objects come back three ways, as in the index: freed by the writer at once,
 * returned from another thread (the call_rcu thread's role) while the writer allocates, and
 * above MT_ARENA_MAX through malloc. Reuse is checked too: churning the same live set must not
 * keep mapping memory.
 */
#include <atomic>
#include <cstdint>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

/* The internal interface (match/mt_internal.h is C-only). */
extern "C" {
struct mt_arena;
struct mt_arena *mt_arena_create(void);
void mt_arena_destroy(struct mt_arena *a);
void *mt_arena_alloc(struct mt_arena *a, size_t size);
void mt_arena_free(struct mt_arena *a, void *p, size_t size);
void mt_arena_return(struct mt_arena *a, void *p, size_t size);
size_t mt_arena_bytes(const struct mt_arena *a);
}

namespace
{

struct obj {
	unsigned char *p;
	size_t size;
	unsigned char fill;
};

void fill(const obj &o)
{
	memset(o.p, o.fill, o.size);
}

bool intact(const obj &o)
{
	for (size_t i = 0; i < o.size; i++)
		if (o.p[i] != o.fill)
			return false;
	return true;
}

bool zeroed(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* Sizes like the index's: mostly 60-140 bytes, some tiny, some past MT_ARENA_MAX (512). */
size_t pick_size(std::mt19937_64 &r)
{
	unsigned k = (unsigned)(r() % 100);
	if (k < 5)
		return 1 + r() % 16;
	if (k < 10)
		return 500 + r() % 100;
	return 60 + r() % 80;
}

/* Allocates an object of a random size into @into, filled with its pattern; false if the
 * arena failed or handed out memory that was not zeroed. */
bool alloc_obj(mt_arena *a, std::mt19937_64 &r, std::vector<obj> &into)
{
	size_t n = pick_size(r);
	auto *p = (unsigned char *)mt_arena_alloc(a, n);
	if (!p || !zeroed(p, n))
		return false;
	into.push_back({p, n, (unsigned char)(1 + r() % 255)});
	fill(into.back());
	return true;
}

} // namespace

TEST(MtArena, LiveObjectsNeverOverlapAndStartZeroed)
{
	std::mt19937_64 r(7);
	mt_arena *a = mt_arena_create();
	ASSERT_NE(a, nullptr);
	std::vector<obj> live;
	for (int step = 0; step < 200000; step++) {
		if (live.empty() || r() % 100 < 55) {
			ASSERT_TRUE(alloc_obj(a, r, live)) << "step " << step;
		} else {
			size_t i = r() % live.size();
			ASSERT_TRUE(intact(live[i])) << "step " << step;
			mt_arena_free(a, live[i].p, live[i].size);
			live[i] = live.back();
			live.pop_back();
		}
	}
	for (const obj &o : live) {
		EXPECT_TRUE(intact(o));
		mt_arena_free(a, o.p, o.size);
	}
	mt_arena_destroy(a);
}

TEST(MtArena, ReturnsFromAnotherThreadAreReused)
{
	std::mt19937_64 r(11);
	mt_arena *a = mt_arena_create();
	ASSERT_NE(a, nullptr);
	std::vector<obj> live;
	size_t bytes_after_first = 0;
	for (int round = 0; round < 20; round++) {
		/* The writer tops the live set up to 20000 objects... */
		while (live.size() < 20000)
			ASSERT_TRUE(alloc_obj(a, r, live)) << "round " << round;
		for (const obj &o : live)
			ASSERT_TRUE(intact(o)) << "round " << round;
		if (round == 0)
			bytes_after_first = mt_arena_bytes(a);
		/* ...then another thread returns half of them while the writer keeps allocating
		 * (and freeing what it allocates) on its own side. */
		std::vector<obj> gone(live.begin(), live.begin() + 10000);
		live.erase(live.begin(), live.begin() + 10000);
		std::thread t([&] {
			for (const obj &o : gone)
				mt_arena_return(a, o.p, o.size);
		});
		std::vector<obj> mine;
		bool ok = true; /* no ASSERT while the thread runs: join it first */
		for (int i = 0; i < 5000 && ok; i++)
			ok = alloc_obj(a, r, mine);
		t.join();
		ASSERT_TRUE(ok) << "round " << round;
		for (const obj &o : mine) {
			ASSERT_TRUE(intact(o));
			mt_arena_free(a, o.p, o.size);
		}
	}
	/* 20 rounds replaced 200000 objects; with reuse the arena stays near its first size
	 * (size-class mixes shift a little, so allow some slack, not 20x). */
	EXPECT_LE(mt_arena_bytes(a), 3 * bytes_after_first);
	for (const obj &o : live)
		mt_arena_free(a, o.p, o.size);
	mt_arena_destroy(a);
}

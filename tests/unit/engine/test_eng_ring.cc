// SPDX-License-Identifier: MIT
// The SPSC ring (engine/eng_ring.c): FIFO order, full/empty edges, wrap-around, and a
// two-thread run that checks every item arrives once, in order.
#include <gtest/gtest.h>

#include <cerrno>
#include <thread>

#include "eng_ring.h"

TEST(EngRing, RejectsBadSizes)
{
	EXPECT_EQ(eng_ring_create(0), nullptr);
	EXPECT_EQ(eng_ring_create(3), nullptr);
}

TEST(EngRing, FifoFullAndEmpty)
{
	struct eng_ring *r = eng_ring_create(4);
	ASSERT_NE(r, nullptr);
	struct eng_ritem it = {}, out[8];
	EXPECT_TRUE(eng_ring_empty(r));
	for (uint64_t i = 0; i < 4; i++) {
		it.b = i;
		EXPECT_EQ(eng_ring_push(r, &it), 0);
	}
	it.b = 99;
	EXPECT_EQ(eng_ring_push(r, &it), -ENOBUFS);
	EXPECT_FALSE(eng_ring_empty(r));
	ASSERT_EQ(eng_ring_pop(r, out, 8), 4u);
	for (uint64_t i = 0; i < 4; i++)
		EXPECT_EQ(out[i].b, i);
	EXPECT_TRUE(eng_ring_empty(r));
	EXPECT_EQ(eng_ring_pop(r, out, 8), 0u);
	eng_ring_free(r);
}

TEST(EngRing, WrapsAround)
{
	struct eng_ring *r = eng_ring_create(8);
	struct eng_ritem it = {}, out[3];
	uint64_t next_in = 0, next_out = 0;
	for (int round = 0; round < 1000; round++) {
		for (int k = 0; k < 3; k++) {
			it.b = next_in++;
			ASSERT_EQ(eng_ring_push(r, &it), 0);
		}
		unsigned n = eng_ring_pop(r, out, 3);
		ASSERT_EQ(n, 3u);
		for (unsigned k = 0; k < n; k++)
			ASSERT_EQ(out[k].b, next_out++);
	}
	eng_ring_free(r);
}

TEST(EngRing, TwoThreadsInOrder)
{
	struct eng_ring *r = eng_ring_create(256);
	const uint64_t total = 2000000;
	std::thread prod([&] {
		struct eng_ritem it = {};
		for (uint64_t i = 0; i < total;) {
			it.b = i;
			it.p = (void *)(uintptr_t)(i * 7);
			if (eng_ring_push(r, &it) == 0)
				i++;
		}
	});
	uint64_t expect = 0;
	struct eng_ritem out[64];
	while (expect < total) {
		unsigned n = eng_ring_pop(r, out, 64);
		for (unsigned k = 0; k < n; k++) {
			ASSERT_EQ(out[k].b, expect);
			ASSERT_EQ((uintptr_t)out[k].p, expect * 7);
			expect++;
		}
	}
	prod.join();
	EXPECT_TRUE(eng_ring_empty(r));
	eng_ring_free(r);
}

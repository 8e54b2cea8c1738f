// SPDX-License-Identifier: MIT
// The message pools (engine/eng_msg.c): blocks of every size class made on one worker and
// released on another come home through the lock-free return stacks, are never reused while
// referenced, and once the pools are warm nearly every message is served without malloc.
// The harness is eng_msg_stress.c; under ASan a lost or doubly freed block fails the run.
#include <gtest/gtest.h>

#include <cstdio>

#include "eng_msg_stress.h"

static void stress(unsigned workers, uint32_t msgs)
{
	struct eng_msg_stress_res r;
	ASSERT_EQ(eng_msg_stress(workers, msgs, &r), 0) << r.err;
	EXPECT_GE(r.made, (uint64_t)workers * msgs);
	EXPECT_GT(r.received, r.made / 2) << "most messages are released by another worker";
	ASSERT_GT(r.made_late, 0u);
	printf("%u workers: %llu messages, %llu released by another worker, %llu pool misses "
	       "(%llu of %llu in the second half)\n", workers, (unsigned long long)r.made,
	       (unsigned long long)r.received, (unsigned long long)r.fallback,
	       (unsigned long long)r.fallback_late, (unsigned long long)r.made_late);
	// Warm pools: a return path that never brought blocks home would miss on every message
	// released elsewhere (about 3 in 4).
	EXPECT_LT((double)r.fallback_late, 0.02 * (double)r.made_late)
		<< r.fallback_late << " pool misses of " << r.made_late
		<< " pooled messages in the second half (" << r.fallback << " in all)";
}

TEST(EngMsgPool, OneWorkerRecyclesItsOwnBlocks) { stress(1, 200000); }
TEST(EngMsgPool, TwoWorkersTradeBlocks) { stress(2, 200000); }
TEST(EngMsgPool, FourWorkersInARing) { stress(4, 100000); }

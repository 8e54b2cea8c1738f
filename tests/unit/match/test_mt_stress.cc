/* SPDX-License-Identifier: MIT */
/*
 * Concurrency stress of the global index: reader threads match continuously (QSBR, one
 * quiescent state per iteration, as workers do) while the writer churns subscriptions, forcing
 * node creation/pruning, count changes on filters readers are using, and hash-array rehashes.
 * Readers check invariants that any torn or half-published state would break:
 *   - stable bits: filters added before the readers start and never removed always match;
 *   - forbidden bits: cores the writer never uses never appear;
 *   - shared groups: a stable group is always picked, picks name only cores that exist.
 * Time-bounded (MT_STRESS_SECONDS, default 2). Suite 'tsan' runs it under ThreadSanitizer;
 * the ASan build catches use-after-free if a grace period were cut short.
 */
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "match.h"
#include "mt_test_util.h"

namespace
{

constexpr int kStable = 64;
constexpr uint64_t kForbidden = 0x00000000fffc0000ull; /* cores 18..31: never used */
constexpr unsigned kPicks = 2048; /* > the 2000 filters a writer burst adds */

std::string stable_topic(int i)
{
	return "stable/" + std::to_string(i) + "/x";
}

uint64_t stable_bits(int i)
{
	return (1ull << (i % 16)) | (1ull << 16) | (1ull << 17);
}

double stress_seconds()
{
	const char *s = getenv("MT_STRESS_SECONDS");
	return s ? atof(s) : 2.0;
}

struct reader_result {
	uint64_t iterations = 0;
	uint64_t failures = 0;
};

void reader(mt_index *idx, std::atomic<bool> *stop, reader_result *res, uint64_t seed)
{
	mt_test::gen g(seed);
	mt_share_ctx ctx{0, seed};
	mt_rcu_register_thread();
	while (!stop->load(std::memory_order_acquire)) {
		int i = (int)g.below(kStable);
		std::string t = stable_topic(i);
		uint64_t m = mt_index_match(idx, t.data(), t.size());
		if ((m & stable_bits(i)) != stable_bits(i) || (m & kForbidden))
			res->failures++;
		std::string r = g.topic(6);
		m = mt_index_match(idx, r.data(), r.size());
		if (m & kForbidden)
			res->failures++;
		/* Room for every group that can match: which groups a truncated answer lists
		 * depends on the walk's visit order, which is not part of the contract. */
		mt_share_pick picks[kPicks];
		unsigned n = mt_index_share_match(idx, t.data(), t.size(), &ctx, picks, kPicks);
		if (n > kPicks)
			res->failures++;
		bool stable_group = false;
		for (unsigned k = 0; k < n && k < kPicks; k++) {
			if (picks[k].core == 20)
				stable_group = true;
			else if (picks[k].core < 32)
				res->failures++;
		}
		if (!stable_group)
			res->failures++;
		res->iterations++;
		mt_rcu_quiescent();
	}
	mt_rcu_unregister_thread();
}

} // namespace

TEST(MtStress, ReadersNeverSeeTornState)
{
	mt_index *idx = mt_index_create(nullptr);
	ASSERT_NE(idx, nullptr);
	for (int i = 0; i < kStable; i++) {
		std::string t = stable_topic(i);
		ASSERT_EQ(mt_index_add(idx, t.data(), t.size(), (unsigned)(i % 16)), 0);
	}
	ASSERT_EQ(mt_index_add(idx, "stable/+/x", 10, 16), 0);
	ASSERT_EQ(mt_index_add(idx, "stable/#", 8, 17), 0);
	const std::string sg = "$share/stable/stable/+/x";
	ASSERT_EQ(mt_index_add(idx, sg.data(), sg.size(), 20), 0);

	std::atomic<bool> stop{false};
	const int nreaders = 3;
	std::vector<reader_result> res(nreaders);
	std::vector<std::thread> threads;
	for (int r = 0; r < nreaders; r++)
		threads.emplace_back(reader, idx, &stop, &res[r], 1000 + r);

	/* The writer: add bursts of random filters (cores 32..63), then remove them, so the hash
	 * arrays grow and shrink; also churn counts and cores on the filters readers rely on. */
	mt_test::gen g(42);
	auto deadline = std::chrono::steady_clock::now() +
			std::chrono::duration<double>(stress_seconds());
	uint64_t ops = 0;
	std::vector<std::pair<std::string, unsigned>> live;
	while (std::chrono::steady_clock::now() < deadline) {
		for (int i = 0; i < 2000; i++) {
			std::string f = g.chance(30) ? stable_topic((int)g.below(kStable))
				       : g.chance(10) ? "$share/c" + std::to_string(g.below(4)) + "/" + g.filter(4)
						      : g.filter(6);
			unsigned core = 32 + g.below(32);
			ASSERT_EQ(mt_index_add(idx, f.data(), f.size(), core), 0) << f;
			live.emplace_back(f, core);
			ops++;
		}
		while (!live.empty()) {
			size_t k = g.below((uint32_t)live.size());
			ASSERT_EQ(mt_index_del(idx, live[k].first.data(), live[k].first.size(),
					       live[k].second),
				  0);
			live[k] = live.back();
			live.pop_back();
			ops++;
		}
	}
	stop.store(true, std::memory_order_release);
	for (auto &t : threads)
		t.join();

	uint64_t iters = 0;
	for (const auto &r : res) {
		EXPECT_EQ(r.failures, 0u);
		iters += r.iterations;
	}
	EXPECT_GT(iters, 0u);
	EXPECT_GT(ops, 0u);
	printf("stress: %llu writer ops, %llu reader iterations\n", (unsigned long long)ops,
	       (unsigned long long)iters);
	mt_index_destroy(idx); /* ends with rcu_barrier: LSan sees no pending frees */
}

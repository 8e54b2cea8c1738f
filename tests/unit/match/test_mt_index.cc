/* SPDX-License-Identifier: MIT */
/*
 * The global index (mt_index.c): matching rules, per-core counts, errors, and oracle tests of
 * random filters and topics against a brute-force matcher, through growth, churn and shutdown.
 */
#include <cerrno>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "match.h"
#include "mt_test_util.h"

namespace
{

class MtIndexTest : public ::testing::Test
{
      protected:
	void SetUp() override
	{
		idx_ = mt_index_create(nullptr);
		ASSERT_NE(idx_, nullptr);
	}

	void TearDown() override
	{
		mt_index_destroy(idx_);
	}

	int add(const std::string &f, unsigned core)
	{
		return mt_index_add(idx_, f.data(), f.size(), core);
	}

	int del(const std::string &f, unsigned core)
	{
		return mt_index_del(idx_, f.data(), f.size(), core);
	}

	uint64_t match(const std::string &t)
	{
		return mt_index_match(idx_, t.data(), t.size());
	}

	mt_index *idx_ = nullptr;
};

} // namespace

TEST_F(MtIndexTest, ExactFilter)
{
	ASSERT_EQ(add("a/b/c", 3), 0);
	EXPECT_EQ(match("a/b/c"), 1ull << 3);
	EXPECT_EQ(match("a/b"), 0u);
	EXPECT_EQ(match("a/b/c/d"), 0u);
}

TEST_F(MtIndexTest, PlusMatchesOneLevel)
{
	ASSERT_EQ(add("a/+/c", 1), 0);
	EXPECT_EQ(match("a/b/c"), 2u);
	EXPECT_EQ(match("a//c"), 2u); /* an empty level is a level */
	EXPECT_EQ(match("a/c"), 0u);
	EXPECT_EQ(match("a/b/b/c"), 0u);
}

TEST_F(MtIndexTest, HashMatchesParentAndChildren)
{
	ASSERT_EQ(add("a/#", 0), 0);
	EXPECT_EQ(match("a"), 1u);
	EXPECT_EQ(match("a/b"), 1u);
	EXPECT_EQ(match("a/b/c/d"), 1u);
	EXPECT_EQ(match("b"), 0u);
	EXPECT_EQ(match("ab"), 0u);
}

TEST_F(MtIndexTest, DollarTopicsSkipLeadingWildcards)
{
	ASSERT_EQ(add("#", 0), 0);
	ASSERT_EQ(add("+/x", 1), 0);
	ASSERT_EQ(add("$SYS/#", 2), 0);
	ASSERT_EQ(add("$SYS/+", 3), 0);
	EXPECT_EQ(match("$SYS/x"), (1u << 2) | (1u << 3));
	EXPECT_EQ(match("a/x"), 3u);
	EXPECT_EQ(match("x$/x"), 3u);
}

TEST_F(MtIndexTest, EmptyLevels)
{
	ASSERT_EQ(add("/+", 0), 0);
	ASSERT_EQ(add("+/", 1), 0);
	ASSERT_EQ(add("+/+/+", 2), 0);
	EXPECT_EQ(match("/a"), 1u);
	EXPECT_EQ(match("a/"), 2u);
	EXPECT_EQ(match("/"), 3u);
	EXPECT_EQ(match("//"), 4u);
}

TEST_F(MtIndexTest, DeepAndLongLevels)
{
	/* The walk splits at most MT_LEVELS_MAX levels of a name; deeper names (beyond any valid
	 * filter) still match '#' filters, and long words cross the eight-byte scan steps. */
	std::string deep = "a";
	for (int i = 0; i < MT_LEVELS_MAX + 10; i++)
		deep += "/w";
	ASSERT_EQ(add("#", 0), 0);
	ASSERT_EQ(add("a/#", 1), 0);
	ASSERT_EQ(add("a/w/+/#", 2), 0);
	ASSERT_EQ(add("a/+", 3), 0);
	EXPECT_EQ(match(deep), 7u);
	const std::string lw = "a_very_long_level_word_over_eight/b/0123456789abcdef/x";
	ASSERT_EQ(add(lw, 4), 0);
	ASSERT_EQ(add("a_very_long_level_word_over_eight/+/0123456789abcdef/+", 5), 0);
	EXPECT_EQ(match(lw), (1u << 0) | (1u << 4) | (1u << 5));
	EXPECT_EQ(match("a_very_long_level_word_over_eight/b/0123456789abcdeF/x"), 1u);
	EXPECT_EQ(match("a_very_long_level_word_over_eigh/b/0123456789abcdef/x"), 1u);
}

TEST_F(MtIndexTest, CountsPerCore)
{
	ASSERT_EQ(add("a/+", 5), 0);
	ASSERT_EQ(add("a/+", 5), 0);
	ASSERT_EQ(add("a/+", 9), 0);
	EXPECT_EQ(match("a/b"), (1ull << 5) | (1ull << 9));
	ASSERT_EQ(del("a/+", 5), 0);
	EXPECT_EQ(match("a/b"), (1ull << 5) | (1ull << 9));
	ASSERT_EQ(del("a/+", 9), 0);
	EXPECT_EQ(match("a/b"), 1ull << 5);
	ASSERT_EQ(del("a/+", 5), 0);
	EXPECT_EQ(match("a/b"), 0u);
	EXPECT_EQ(del("a/+", 5), -ENOENT);
	mt_index_stats st;
	mt_index_stats_get(idx_, &st);
	EXPECT_EQ(st.wildcard_filters, 0u);
	EXPECT_EQ(st.trie_nodes, 0u); /* pruned */
}

TEST_F(MtIndexTest, ManyCoresOnOneFilter)
{
	for (unsigned c = 0; c < 64; c++)
		for (unsigned k = 0; k <= c % 3; k++)
			ASSERT_EQ(add("x/#", c), 0);
	EXPECT_EQ(match("x/y"), ~0ull);
	for (unsigned c = 0; c < 64; c += 2)
		for (unsigned k = 0; k <= c % 3; k++)
			ASSERT_EQ(del("x/#", c), 0);
	EXPECT_EQ(match("x"), 0xaaaaaaaaaaaaaaaaull);
	for (unsigned c = 1; c < 64; c += 2)
		for (unsigned k = 0; k <= c % 3; k++)
			ASSERT_EQ(del("x/#", c), 0);
	EXPECT_EQ(match("x"), 0u);
}

TEST_F(MtIndexTest, Errors)
{
	EXPECT_EQ(add("a/#/b", 0), -EINVAL);
	EXPECT_EQ(add("a", 64), -EINVAL);
	EXPECT_EQ(add("", 0), -EINVAL);
	EXPECT_EQ(del("never/added", 0), -ENOENT);
	ASSERT_EQ(add("a", 1), 0);
	EXPECT_EQ(del("a", 2), -ENOENT);
	mt_config cfg;
	mt_config_defaults(&cfg);
	cfg.max_cores = 65;
	EXPECT_EQ(mt_index_create(&cfg), nullptr);
	cfg.max_cores = 4;
	cfg.max_levels = 2;
	mt_index *small = mt_index_create(&cfg);
	ASSERT_NE(small, nullptr);
	EXPECT_EQ(mt_index_add(small, "a", 1, 4), -EINVAL);
	EXPECT_EQ(mt_index_add(small, "a/b/c", 5, 0), -E2BIG);
	mt_index_destroy(small);
}

/* Random filters on random cores; every topic's mask equals the brute-force union. */
/* Brute-force count of the wildcard filter shapes the index must hold (mt_index_stats
 * trie_nodes): every non-empty prefix of the word/'+' level sequence (before a trailing '#') of
 * every wildcard filter, counted once. */
static uint64_t oracle_shapes(const std::map<std::pair<std::string, unsigned>, unsigned> &subs)
{
	std::set<std::string> shapes;
	for (const auto &s : subs) {
		const std::string &f = s.first.first;
		if (f.find_first_of("+#") == std::string::npos)
			continue;
		std::string shape;
		size_t start = 0;
		for (;;) {
			size_t end = f.find('/', start);
			std::string lvl = f.substr(start, end == std::string::npos ? end : end - start);
			if (lvl == "#")
				break;
			shape += lvl == "+" ? '+' : 'w';
			shapes.insert(shape);
			if (end == std::string::npos)
				break;
			start = end + 1;
		}
	}
	return shapes.size();
}

static void oracle_round(mt_index *idx, mt_test::gen &g,
			 std::map<std::pair<std::string, unsigned>, unsigned> &subs, int ntopics,
			 uint32_t maxl)
{
	for (int i = 0; i < ntopics; i++) {
		std::string t = g.topic(maxl);
		uint64_t want = 0;
		for (const auto &s : subs)
			if (mt_test::oracle_match(s.first.first, t))
				want |= 1ull << s.first.second;
		ASSERT_EQ(mt_index_match(idx, t.data(), t.size()), want) << t;
	}
}

/* Seeds 1-4 read through the shape programs where they compile (the default), seeds 5-8 the
 * same filters and topics through the shape walk. */
TEST(MtIndex, OracleRandomChurn)
{
	for (uint64_t run = 1; run <= 8; run++) {
		uint64_t seed = (run - 1) % 4 + 1;
		mt_test::gen g(seed);
		mt_config cfg;
		mt_config_defaults(&cfg);
		cfg.max_cores = 8;
		mt_index *idx = mt_index_create(&cfg);
		ASSERT_NE(idx, nullptr);
		if (run > 4) {
			ASSERT_EQ(mt_index_test_prog_limit(idx, 0), 0);
		}
		uint32_t maxl = seed == 4 ? 12 : 5; /* the last round builds a deep tree */
		std::map<std::pair<std::string, unsigned>, unsigned> subs;
		for (int round = 0; round < 5; round++) {
			for (int i = 0; i < 300; i++) {
				std::string f = g.filter(maxl);
				unsigned core = g.below(8);
				ASSERT_EQ(mt_index_add(idx, f.data(), f.size(), core), 0) << f;
				subs[{f, core}]++;
			}
			oracle_round(idx, g, subs, 500, maxl);
			/* Remove about half of the subscriptions, one count at a time. */
			for (auto it = subs.begin(); it != subs.end();) {
				if (g.chance(50)) {
					ASSERT_EQ(mt_index_del(idx, it->first.first.data(),
							       it->first.first.size(), it->first.second),
						  0);
					if (--it->second == 0) {
						it = subs.erase(it);
						continue;
					}
				}
				++it;
			}
			oracle_round(idx, g, subs, 500, maxl);
			mt_index_stats st;
			mt_index_stats_get(idx, &st);
			EXPECT_EQ(st.trie_nodes, oracle_shapes(subs)) << "round " << round;
		}
		/* Delete everything: the index must be empty and pruned. */
		for (auto &s : subs)
			for (unsigned k = 0; k < s.second; k++)
				ASSERT_EQ(mt_index_del(idx, s.first.first.data(), s.first.first.size(),
						       s.first.second),
					  0);
		mt_index_stats st;
		mt_index_stats_get(idx, &st);
		EXPECT_EQ(st.exact_filters, 0u);
		EXPECT_EQ(st.wildcard_filters, 0u);
		EXPECT_EQ(st.trie_nodes, 0u);
		subs.clear();
		oracle_round(idx, g, subs, 200, maxl);
		mt_index_destroy(idx);
	}
}

/* The shape programs against the oracle, with the walk as a second reader of the same index:
 * shapes with no, one, two and three '+' levels (the last ones need steps), '#' at every depth,
 * topics shorter than, as deep as, and deeper than every shape, '$' topics (which take the
 * walk), and a name deeper than MT_LEVELS_MAX. */
TEST(MtIndex, ShapeProgramsAgreeWithWalkAndOracle)
{
	const std::vector<std::string> filters = {
		"#",	     "+",	"a",	      "a/#",	     "+/#",	   "a/+",
		"a/b/c",     "a/+/c",	"+/b/+",      "+/+/+",	     "a/+/c/#",	   "+/+/+/#",
		"a/b/+/d/+", "+/b/+/d/+", "a/+/+/d/e/#", "x/+/y",	   "a//c",	   "+//+",
		"$s/+",	     "$s/#",	"a/b/c/d/e/f", "a/b/c/d/e/+", "+/b/c/d/e/f/#"};
	std::vector<std::string> topics = {
		"a",	     "b",	  "a/b",       "a/b/c",	      "a/x/c",	  "x/b/y",
		"a/b/c/d",   "a/b/x/d/y", "q/b/r/d/s", "a/b/c/d/e",   "a/z/z/d/e", "a/z/z/d/e/f",
		"x/q/y",     "a//c",	  "//",	       "a/b/c/d/e/f", "z/b/c/d/e/f/g/h",
		"$s/x",	     "$s/x/y",	  "$s",	       "a/b/c/d/e/f/g/h/i/j/k"};
	std::string deep = "a";
	for (int i = 0; i < MT_LEVELS_MAX + 3; i++)
		deep += "/b";
	topics.push_back(deep);
	mt_index *idx = mt_index_create(nullptr);
	ASSERT_NE(idx, nullptr);
	for (size_t i = 0; i < filters.size(); i++)
		ASSERT_EQ(mt_index_add(idx, filters[i].data(), filters[i].size(), (unsigned)i), 0)
			<< filters[i];
	mt_index_stats st;
	mt_index_stats_get(idx, &st);
	EXPECT_EQ(st.shape_programs, 7u); /* the deepest shape has 6 levels */
	for (int walk = 0; walk < 2; walk++) {
		if (walk) {
			ASSERT_EQ(mt_index_test_prog_limit(idx, 0), 0);
			mt_index_stats_get(idx, &st);
			EXPECT_EQ(st.shape_programs, 0u);
		}
		for (const auto &t : topics) {
			uint64_t want = 0;
			for (size_t i = 0; i < filters.size(); i++)
				if (mt_test::oracle_match(filters[i], t))
					want |= 1ull << i;
			EXPECT_EQ(mt_index_match(idx, t.data(), t.size()), want)
				<< t << (walk ? " (walk)" : " (programs)");
		}
	}
	mt_index_destroy(idx);
}

/* A topic that hundreds of trie nodes match: every mix of its own words and '+' over 8 levels,
 * each with a '#' child too. The walk's candidate list overflows and the DFS fallback does the
 * trie; neighbouring topics (one word changed) take either path. Both must equal the oracle. */
TEST(MtIndex, ManyPlusBranchesAgreeWithOracle)
{
	const std::vector<std::string> w = {"a", "b", "c", "d", "e", "f", "g", "h"};
	mt_index *idx = mt_index_create(nullptr);
	ASSERT_NE(idx, nullptr);
	std::vector<std::pair<std::string, unsigned>> subs;
	for (unsigned m = 0; m < 256; m++) {
		std::string f;
		for (unsigned i = 0; i < 8; i++)
			f += (i ? "/" : "") + ((m >> i) & 1 ? std::string("+") : w[i]);
		subs.emplace_back(f, m % 61);
		if (m % 3 == 0)
			subs.emplace_back(f.substr(0, f.rfind('/')) + "/#", 61 + m % 3);
	}
	for (const auto &s : subs)
		ASSERT_EQ(mt_index_add(idx, s.first.data(), s.first.size(), s.second), 0)
			<< s.first;
	std::vector<std::string> topics = {
		"a/b/c/d/e/f/g/h", "a/b/c/d/e/f/g",    "a/b/c/d",	   "x/b/c/d/e/f/g/h",
		"a/b/x/d/e/f/g/h", "a/b/c/d/e/f/g/x",  "x/x/x/x/x/x/x/x", "a/b/c/d/e/f/g/h/i",
		"$a/b/c/d/e/f/g/h"};
	for (const auto &t : topics) {
		uint64_t want = 0;
		for (const auto &s : subs)
			if (mt_test::oracle_match(s.first, t))
				want |= 1ull << s.second;
		EXPECT_EQ(mt_index_match(idx, t.data(), t.size()), want) << t;
	}
	mt_index_destroy(idx);
}

/* The walk statistics (bench_match's false-positive figure) count what the walk checks: a
 * present key is never ruled out by a summary, so every exact filter's own topic finds at least
 * its exact entry, and counts nest (found <= maybe <= checks). */
TEST(MtIndex, WalkStatsCountPresentKeys)
{
	mt_test::gen g(5);
	mt_index *idx = mt_index_create(nullptr);
	ASSERT_NE(idx, nullptr);
	std::vector<std::string> exact;
	for (int i = 0; i < 3000; i++) {
		std::string f = g.filter(6);
		ASSERT_EQ(mt_index_add(idx, f.data(), f.size(), g.below(64)), 0);
		if (f.find_first_of("+#") == std::string::npos)
			exact.push_back(f);
	}
	ASSERT_FALSE(exact.empty());
	for (const std::string &t : exact) {
		mt_walk_stats st = {0, 0, 0};
		mt_index_walk_stats(idx, t.data(), t.size(), &st);
		EXPECT_GE(st.found, 1u) << t;
		EXPECT_LE(st.found, st.maybe) << t;
		EXPECT_LE(st.maybe, st.checks) << t;
	}
	mt_index_destroy(idx);
}

/* Trie nodes and exact entries live in the index's arena and come back to it through
 * call_rcu: churning the same filters must reuse them, not keep mapping memory. */
TEST(MtIndex, ChurnReusesArenaMemory)
{
	mt_test::gen g(21);
	mt_index *idx = mt_index_create(nullptr);
	ASSERT_NE(idx, nullptr);
	std::vector<std::string> fs;
	for (int i = 0; i < 4000; i++)
		fs.push_back(g.filter(8));
	uint64_t first = 0;
	for (int round = 0; round < 10; round++) {
		for (const std::string &f : fs)
			ASSERT_EQ(mt_index_add(idx, f.data(), f.size(), 3), 0) << f;
		mt_index_stats st;
		mt_index_stats_get(idx, &st);
		if (round == 0)
			first = st.arena_bytes;
		EXPECT_LE(st.arena_bytes, 2 * first) << "round " << round;
		for (const std::string &f : fs)
			ASSERT_EQ(mt_index_del(idx, f.data(), f.size(), 3), 0) << f;
		EXPECT_EQ(mt_index_match(idx, fs[0].data(), fs[0].size()), 0u);
		mt_rcu_barrier(); /* the deferred frees reach the arena */
	}
	mt_index_destroy(idx);
}

TEST(MtIndex, DestroyWithContentDoesNotLeak)
{
	mt_test::gen g(99);
	mt_index *idx = mt_index_create(nullptr);
	ASSERT_NE(idx, nullptr);
	for (int i = 0; i < 5000; i++) {
		std::string f = g.filter(8);
		ASSERT_EQ(mt_index_add(idx, f.data(), f.size(), g.below(64)), 0);
		if (i % 3 == 0) {
			ASSERT_EQ(mt_index_add(idx, "$share/g/a/#", 12, g.below(64)), 0);
		}
	}
	mt_index_destroy(idx); /* LSan checks the rest */
}

/* Readers trust 64-bit filter keys; force collisions (keys cut to @mask's bits) and check that
 * a match is then a superset of the oracle's answer, and that the writer's per-filter counts stay
 * exact through unsubscribe: a colliding filter's cores stay while it has subscribers and go with
 * its last one. */
static void collision_round(uint64_t mask, uint64_t seed)
{
	mt_test::gen g(seed);
	mt_config cfg;
	mt_config_defaults(&cfg);
	cfg.max_cores = 16;
	mt_index *idx = mt_index_create(&cfg);
	ASSERT_NE(idx, nullptr);
	ASSERT_EQ(mt_index_test_key_mask(idx, mask), 0);
	std::map<std::pair<std::string, unsigned>, unsigned> subs;
	auto check = [&](int ntopics) {
		for (int i = 0; i < ntopics; i++) {
			std::string t = i % 2 ? g.topic(6) : g.filter(6);
			if (t.find_first_of("+#") != std::string::npos)
				continue;
			uint64_t want = 0, any = 0;
			for (const auto &s : subs) {
				any |= 1ull << s.first.second;
				if (mt_test::oracle_match(s.first.first, t))
					want |= 1ull << s.first.second;
			}
			uint64_t got = mt_index_match(idx, t.data(), t.size());
			ASSERT_EQ(got & want, want) << t; /* never a subset */
			ASSERT_EQ(got & ~any, 0u) << t;	  /* only cores that subscribed */
		}
	};
	for (int i = 0; i < 400; i++) {
		std::string f = g.filter(6);
		unsigned core = g.below(16);
		ASSERT_EQ(mt_index_add(idx, f.data(), f.size(), core), 0) << f;
		subs[{f, core}]++;
	}
	check(400);
	/* Unsubscribe everything one count at a time: every delete of a subscriber that exists
	 * succeeds, one more fails, whatever else shares the filter's key. */
	while (!subs.empty()) {
		auto it = subs.begin();
		std::advance(it, g.below((uint32_t)subs.size()));
		const std::string &f = it->first.first;
		unsigned core = it->first.second;
		ASSERT_EQ(mt_index_del(idx, f.data(), f.size(), core), 0) << f;
		if (--it->second == 0) {
			ASSERT_EQ(mt_index_del(idx, f.data(), f.size(), core), -ENOENT) << f;
			subs.erase(it);
		}
		if (subs.size() % 50 == 0)
			check(40);
	}
	mt_index_stats st;
	mt_index_stats_get(idx, &st);
	EXPECT_EQ(st.exact_filters, 0u);
	EXPECT_EQ(st.wildcard_filters, 0u);
	EXPECT_EQ(st.trie_nodes, 0u);
	for (int i = 0; i < 100; i++) {
		std::string t = g.topic(6);
		EXPECT_EQ(mt_index_match(idx, t.data(), t.size()), 0u) << t;
	}
	mt_index_destroy(idx);
}

TEST(MtIndex, KeyCollisionsGiveSupersetsAndExactCounts)
{
	collision_round(0, 31);	     /* every exact filter one key, every wildcard filter one key */
	collision_round(7, 32);	     /* a few keys */
	collision_round(0xff00, 33); /* more keys, spread over buckets */
}

/* With every key cut to nothing, all exact filters share one key and all wildcard filters
 * another: every topic gets every exact filter's cores, and a topic deep enough for a wildcard
 * shape every wildcard filter's cores too. Unsubscribes stay per filter text. */
TEST(MtIndex, KeyCollisionOfTwoFilters)
{
	mt_index *idx = mt_index_create(nullptr);
	ASSERT_NE(idx, nullptr);
	ASSERT_EQ(mt_index_test_key_mask(idx, 0), 0);
	ASSERT_EQ(mt_index_add(idx, "a/b", 3, 1), 0);
	ASSERT_EQ(mt_index_add(idx, "c/d", 3, 2), 0);
	ASSERT_EQ(mt_index_add(idx, "c/d", 3, 2), 0);
	ASSERT_EQ(mt_index_add(idx, "x/+/z", 5, 5), 0);
	ASSERT_EQ(mt_index_add(idx, "y/+/z", 5, 6), 0);
	EXPECT_EQ(mt_index_test_key_mask(idx, ~0ull), -EBUSY);
	EXPECT_EQ(mt_index_match(idx, "a/b", 3), 0x6u);
	EXPECT_EQ(mt_index_match(idx, "x/1/z", 5), 0x66u);
	/* The writer keeps them apart: core 2 is not a subscriber of "a/b", core 1 not of "c/d". */
	EXPECT_EQ(mt_index_del(idx, "a/b", 3, 2), -ENOENT);
	EXPECT_EQ(mt_index_del(idx, "c/d", 3, 1), -ENOENT);
	EXPECT_EQ(mt_index_del(idx, "y/+/z", 5, 5), -ENOENT);
	ASSERT_EQ(mt_index_del(idx, "c/d", 3, 2), 0);
	EXPECT_EQ(mt_index_match(idx, "a/b", 3), 0x6u); /* "c/d" has one subscriber left */
	ASSERT_EQ(mt_index_del(idx, "c/d", 3, 2), 0);
	EXPECT_EQ(mt_index_del(idx, "c/d", 3, 2), -ENOENT);
	EXPECT_EQ(mt_index_match(idx, "a/b", 3), 0x2u);
	EXPECT_EQ(mt_index_match(idx, "c/d", 3), 0x2u); /* still collides with "a/b" */
	ASSERT_EQ(mt_index_del(idx, "x/+/z", 5, 5), 0);
	EXPECT_EQ(mt_index_match(idx, "x/1/z", 5), 0x42u);
	ASSERT_EQ(mt_index_del(idx, "a/b", 3, 1), 0);
	ASSERT_EQ(mt_index_del(idx, "y/+/z", 5, 6), 0);
	EXPECT_EQ(mt_index_match(idx, "a/b", 3), 0u);
	EXPECT_EQ(mt_index_match(idx, "x/1/z", 5), 0u);
	mt_index_destroy(idx);
}

/* SPDX-License-Identifier: MIT */
/*
 * The retained index (mt_retain.c): set/get/clear, reference release, caps, the '$' rule, and
 * an oracle test of filter queries over random retained topics against a brute-force scan.
 */
#include <cerrno>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "match.h"
#include "mt_test_util.h"

namespace
{

struct released {
	std::multiset<void *> refs;
};

void on_release(void *msg, void *ctx)
{
	static_cast<released *>(ctx)->refs.insert(msg);
}

int collect(void *ctx, const char *topic, size_t len, void *msg, size_t bytes)
{
	(void)msg;
	(void)bytes;
	static_cast<std::set<std::string> *>(ctx)->insert(std::string(topic, len));
	return 0;
}

std::set<std::string> query(mt_retain *r, const std::string &f, long *n = nullptr)
{
	std::set<std::string> out;
	long k = mt_retain_match(r, f.data(), f.size(), collect, &out);
	if (n)
		*n = k;
	return out;
}

int set(mt_retain *r, const std::string &t, void *msg, size_t bytes = 1)
{
	return mt_retain_set(r, t.data(), t.size(), msg, bytes);
}

} // namespace

TEST(MtRetain, SetGetClearRelease)
{
	released rel;
	mt_retain *r = mt_retain_create(nullptr, on_release, &rel);
	ASSERT_NE(r, nullptr);
	int m1, m2, m3;
	ASSERT_EQ(set(r, "a/b", &m1), 0);
	EXPECT_EQ(mt_retain_get(r, "a/b", 3), &m1);
	EXPECT_EQ(mt_retain_get(r, "a", 1), nullptr);
	ASSERT_EQ(set(r, "a/b", &m2), 0); /* replace: the old reference comes back */
	EXPECT_EQ(rel.refs.count(&m1), 1u);
	EXPECT_EQ(mt_retain_get(r, "a/b", 3), &m2);
	ASSERT_EQ(set(r, "a/b", nullptr), 0); /* clear */
	EXPECT_EQ(rel.refs.count(&m2), 1u);
	EXPECT_EQ(mt_retain_get(r, "a/b", 3), nullptr);
	EXPECT_EQ(set(r, "a/+", &m3), -EINVAL);
	ASSERT_EQ(set(r, "x/y/z", &m3), 0);
	mt_retain_stats st;
	mt_retain_stats_get(r, &st);
	EXPECT_EQ(st.count, 1u);
	EXPECT_EQ(st.nodes, 3u); /* a/b pruned */
	mt_retain_destroy(r);
	EXPECT_EQ(rel.refs.count(&m3), 1u);
}

TEST(MtRetain, Caps)
{
	mt_config cfg;
	mt_config_defaults(&cfg);
	cfg.retain_max_count = 2;
	cfg.retain_max_bytes = 100;
	mt_retain *r = mt_retain_create(&cfg, nullptr, nullptr);
	ASSERT_NE(r, nullptr);
	int m;
	ASSERT_EQ(set(r, "a", &m, 40), 0);
	ASSERT_EQ(set(r, "b", &m, 40), 0);
	EXPECT_EQ(set(r, "c", &m, 1), -ENOSPC);  /* count */
	EXPECT_EQ(set(r, "b", &m, 61), -ENOSPC); /* bytes: 40 + 61 > 100 */
	EXPECT_EQ(set(r, "b", &m, 60), 0);	 /* replacing frees its old bytes */
	mt_retain_stats st;
	mt_retain_stats_get(r, &st);
	EXPECT_EQ(st.bytes, 100u);
	EXPECT_EQ(st.nodes, 2u); /* the refused "c" left nothing behind */
	ASSERT_EQ(set(r, "a", nullptr), 0);
	EXPECT_EQ(set(r, "c", &m, 40), 0);
	mt_retain_destroy(r);
}

TEST(MtRetain, WildcardQueries)
{
	mt_retain *r = mt_retain_create(nullptr, nullptr, nullptr);
	ASSERT_NE(r, nullptr);
	int m;
	for (const char *t : {"a", "a/b", "a/b/c", "a//c", "b/b", "$SYS/x", "/"})
		ASSERT_EQ(set(r, t, &m), 0);
	EXPECT_EQ(query(r, "a/#"), (std::set<std::string>{"a", "a/b", "a/b/c", "a//c"}));
	EXPECT_EQ(query(r, "+/b"), (std::set<std::string>{"a/b", "b/b"}));
	EXPECT_EQ(query(r, "#"), (std::set<std::string>{"a", "a/b", "a/b/c", "a//c", "b/b", "/"}));
	EXPECT_EQ(query(r, "$SYS/#"), (std::set<std::string>{"$SYS/x"}));
	EXPECT_EQ(query(r, "+/+"), (std::set<std::string>{"a/b", "b/b", "/"}));
	EXPECT_EQ(query(r, "a/+/c"), (std::set<std::string>{"a/b/c", "a//c"}));
	long n = 0;
	EXPECT_TRUE(query(r, "a/#/x", &n).empty());
	EXPECT_EQ(n, -EINVAL);
	mt_retain_destroy(r);
}

static int stop_after_two(void *ctx, const char *, size_t, void *, size_t)
{
	return ++*static_cast<int *>(ctx) >= 2;
}

TEST(MtRetain, VisitorCanStop)
{
	mt_retain *r = mt_retain_create(nullptr, nullptr, nullptr);
	int m, calls = 0;
	for (const char *t : {"a/1", "a/2", "a/3", "a/4"})
		ASSERT_EQ(set(r, t, &m), 0);
	EXPECT_EQ(mt_retain_match(r, "a/+", 3, stop_after_two, &calls), 2);
	EXPECT_EQ(calls, 2);
	mt_retain_destroy(r);
}

TEST(MtRetain, OracleRandom)
{
	for (uint64_t seed = 1; seed <= 3; seed++) {
		mt_test::gen g(seed * 77);
		released rel;
		mt_retain *r = mt_retain_create(nullptr, on_release, &rel);
		ASSERT_NE(r, nullptr);
		std::map<std::string, int> store;
		static int msgs[4];
		uint32_t maxl = seed == 3 ? 10 : 5;
		for (int round = 0; round < 4; round++) {
			for (int i = 0; i < 600; i++) {
				std::string t = g.topic(maxl);
				if (g.chance(25)) {
					ASSERT_EQ(set(r, t, nullptr), 0);
					store.erase(t);
				} else {
					int k = (int)g.below(4);
					ASSERT_EQ(set(r, t, &msgs[k], 10), 0);
					store[t] = k;
				}
			}
			for (const auto &e : store)
				ASSERT_EQ(mt_retain_get(r, e.first.data(), e.first.size()),
					  &msgs[e.second]);
			for (int i = 0; i < 500; i++) {
				std::string f = g.filter(maxl);
				std::set<std::string> want;
				for (const auto &e : store)
					if (mt_test::oracle_match(f, e.first))
						want.insert(e.first);
				long n = 0;
				ASSERT_EQ(query(r, f, &n), want) << f;
				ASSERT_EQ(n, (long)want.size());
			}
		}
		mt_retain_stats st;
		mt_retain_stats_get(r, &st);
		EXPECT_EQ(st.count, store.size());
		EXPECT_EQ(st.bytes, store.size() * 10);
		for (const auto &e : store)
			ASSERT_EQ(set(r, e.first, nullptr), 0);
		mt_retain_stats_get(r, &st);
		EXPECT_EQ(st.nodes, 0u);
		mt_retain_destroy(r);
	}
}

/* SPDX-License-Identifier: MIT */
/*
 * The per-core index (mt_local.c): one hit per session with its best options and every
 * subscription identifier, no-local, replacement of an existing subscription, session drop, and
 * an oracle test of random sessions/filters/options against a brute-force matcher.
 */
#include <algorithm>
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

mt_sub_opts opts(uint8_t qos, uint32_t id = 0, bool no_local = false, bool rap = false)
{
	mt_sub_opts o{};
	o.qos = qos;
	o.sub_id = id;
	o.no_local = no_local;
	o.retain_as_published = rap;
	return o;
}

class MtLocalTest : public ::testing::Test
{
      protected:
	void SetUp() override
	{
		loc_ = mt_local_create(nullptr);
		ASSERT_NE(loc_, nullptr);
	}

	void TearDown() override
	{
		mt_local_destroy(loc_);
	}

	int sub(void *s, const std::string &f, const mt_sub_opts &o, bool *existed = nullptr)
	{
		return mt_local_subscribe(loc_, s, f.data(), f.size(), &o, existed);
	}

	int unsub(void *s, const std::string &f)
	{
		return mt_local_unsubscribe(loc_, s, f.data(), f.size());
	}

	std::vector<mt_local_hit> match(const std::string &t, const void *pub = nullptr)
	{
		const mt_local_hit *h;
		unsigned n = mt_local_match(loc_, t.data(), t.size(), pub, &h);
		return std::vector<mt_local_hit>(h, h + n);
	}

	mt_local *loc_ = nullptr;
	int s1_ = 0, s2_ = 0, s3_ = 0;
};

} // namespace

TEST_F(MtLocalTest, EachSessionOnceWithBestOptions)
{
	ASSERT_EQ(sub(&s1_, "a/b", opts(0, 11)), 0);
	ASSERT_EQ(sub(&s1_, "a/+", opts(2, 12, false, true)), 0);
	ASSERT_EQ(sub(&s1_, "#", opts(1)), 0);
	ASSERT_EQ(sub(&s2_, "a/#", opts(1, 21)), 0);
	auto hits = match("a/b");
	ASSERT_EQ(hits.size(), 2u);
	for (const auto &h : hits) {
		if (h.session == &s1_) {
			EXPECT_EQ(h.opts.qos, 2);
			EXPECT_TRUE(h.opts.retain_as_published);
			std::vector<uint32_t> ids(h.ids, h.ids + h.nids);
			std::sort(ids.begin(), ids.end());
			EXPECT_EQ(ids, (std::vector<uint32_t>{11, 12}));
		} else {
			EXPECT_EQ(h.session, &s2_);
			EXPECT_EQ(h.opts.qos, 1);
			ASSERT_EQ(h.nids, 1u);
			EXPECT_EQ(h.ids[0], 21u);
		}
	}
}

TEST_F(MtLocalTest, NoLocalSkipsOwnPublishes)
{
	ASSERT_EQ(sub(&s1_, "a/+", opts(1, 0, true)), 0);
	ASSERT_EQ(sub(&s1_, "a/#", opts(0, 5)), 0);
	ASSERT_EQ(sub(&s2_, "a/+", opts(1, 0, true)), 0);
	auto hits = match("a/b", &s1_);
	ASSERT_EQ(hits.size(), 2u);
	for (const auto &h : hits)
		if (h.session == &s1_) {
			EXPECT_EQ(h.opts.qos, 0); /* only the a/# subscription counted */
			ASSERT_EQ(h.nids, 1u);
			EXPECT_EQ(h.ids[0], 5u);
		}
	ASSERT_EQ(unsub(&s1_, "a/#"), 0);
	hits = match("a/b", &s1_);
	ASSERT_EQ(hits.size(), 1u);
	EXPECT_EQ(hits[0].session, &s2_);
}

TEST_F(MtLocalTest, ResubscribeReplacesOptions)
{
	bool existed = true;
	ASSERT_EQ(sub(&s1_, "x", opts(0, 1), &existed), 0);
	EXPECT_FALSE(existed);
	ASSERT_EQ(sub(&s1_, "x", opts(2, 2), &existed), 0);
	EXPECT_TRUE(existed);
	auto hits = match("x");
	ASSERT_EQ(hits.size(), 1u);
	EXPECT_EQ(hits[0].opts.qos, 2);
	ASSERT_EQ(hits[0].nids, 1u);
	EXPECT_EQ(hits[0].ids[0], 2u);
}

TEST_F(MtLocalTest, UnsubscribeAndDrop)
{
	EXPECT_EQ(unsub(&s1_, "x"), -ENOENT);
	ASSERT_EQ(sub(&s1_, "x", opts(0)), 0);
	EXPECT_EQ(unsub(&s2_, "x"), -ENOENT);
	EXPECT_EQ(unsub(&s1_, "y"), -ENOENT);
	EXPECT_EQ(unsub(&s1_, "x/#/y"), -EINVAL);
	ASSERT_EQ(sub(&s1_, "+/y", opts(0)), 0);
	ASSERT_EQ(sub(&s1_, "$share/g/x", opts(0)), 0);
	ASSERT_EQ(sub(&s2_, "x", opts(1)), 0);
	EXPECT_EQ(mt_local_drop_session(loc_, &s1_), 3u);
	EXPECT_EQ(mt_local_drop_session(loc_, &s1_), 0u);
	auto hits = match("x");
	ASSERT_EQ(hits.size(), 1u);
	EXPECT_EQ(hits[0].session, &s2_);
	EXPECT_TRUE(match("a/y").empty());
	EXPECT_EQ(unsub(&s2_, "x"), 0);
	EXPECT_TRUE(match("x").empty());
}

TEST_F(MtLocalTest, SharedSubscriptionsAreNotPlainMatches)
{
	ASSERT_EQ(sub(&s1_, "$share/g/a", opts(1)), 0);
	EXPECT_TRUE(match("a").empty());
}

struct want_hit {
	uint8_t qos = 0;
	std::multiset<uint32_t> ids;
	bool any = false;
};

TEST(MtLocal, OracleRandom)
{
	for (uint64_t seed = 1; seed <= 3; seed++) {
		mt_test::gen g(seed * 1000);
		mt_local *loc = mt_local_create(nullptr);
		ASSERT_NE(loc, nullptr);
		int sessions[40];
		/* (session, filter) -> options */
		std::map<std::pair<int, std::string>, mt_sub_opts> subs;
		for (int round = 0; round < 5; round++) {
			for (int i = 0; i < 400; i++) {
				int s = (int)g.below(40);
				std::string f = g.filter(5);
				mt_sub_opts o = opts((uint8_t)g.below(3),
						     g.chance(50) ? 1 + g.below(1000) : 0, g.chance(20));
				ASSERT_EQ(mt_local_subscribe(loc, &sessions[s], f.data(), f.size(), &o,
							     nullptr),
					  0);
				subs[{s, f}] = o;
			}
			for (int i = 0; i < 1000; i++) {
				std::string t = g.topic(5);
				int pub = (int)g.below(60); /* >= 40: not a local session */
				std::map<int, want_hit> want;
				for (const auto &e : subs) {
					if (!mt_test::oracle_match(e.first.second, t))
						continue;
					if (e.second.no_local && e.first.first == pub)
						continue;
					want_hit &w = want[e.first.first];
					w.any = true;
					w.qos = std::max(w.qos, e.second.qos);
					if (e.second.sub_id)
						w.ids.insert(e.second.sub_id);
				}
				const mt_local_hit *h;
				unsigned n = mt_local_match(loc, t.data(), t.size(),
							    pub < 40 ? &sessions[pub] : nullptr, &h);
				ASSERT_EQ(n, want.size()) << t;
				std::set<int> seen;
				for (unsigned k = 0; k < n; k++) {
					int s = (int)((int *)h[k].session - sessions);
					ASSERT_TRUE(seen.insert(s).second) << "session twice";
					ASSERT_EQ(want.count(s), 1u);
					EXPECT_EQ(h[k].opts.qos, want[s].qos);
					std::multiset<uint32_t> ids(h[k].ids, h[k].ids + h[k].nids);
					EXPECT_EQ(ids, want[s].ids);
				}
			}
			for (auto it = subs.begin(); it != subs.end();) {
				if (g.chance(40)) {
					ASSERT_EQ(mt_local_unsubscribe(loc, &sessions[it->first.first],
								       it->first.second.data(),
								       it->first.second.size()),
						  0);
					it = subs.erase(it);
				} else {
					++it;
				}
			}
			if (round == 3)
				for (int s = 0; s < 40; s += 7) {
					mt_local_drop_session(loc, &sessions[s]);
					for (auto it = subs.begin(); it != subs.end();)
						it = it->first.first == s ? subs.erase(it) : ++it;
				}
		}
		mt_local_destroy(loc);
	}
}

namespace
{

/* A session's subscriptions as mt_local_session_subs lists them: filter -> options. */
using sub_list = std::map<std::string, mt_sub_opts>;

int collect(void *ctx, const char *f, size_t len, const mt_sub_opts *o)
{
	auto *out = static_cast<sub_list *>(ctx);
	EXPECT_TRUE(out->emplace(std::string(f, len), *o).second) << "listed twice: " << f;
	return 0;
}

bool same_opts(const mt_sub_opts &a, const mt_sub_opts &b)
{
	return a.qos == b.qos && a.no_local == b.no_local &&
	       a.retain_as_published == b.retain_as_published &&
	       a.retain_handling == b.retain_handling && a.sub_id == b.sub_id;
}

} // namespace

TEST_F(MtLocalTest, SessionSubsListsFilterTextAsSubscribed)
{
	int s1, s2;
	const std::vector<std::string> fs = {"#",     "+",	"/",	       "/#",
					     "a//+/#", "a/b/c", "+/+/x",	       "$SYS/#",
					     "a/#",    "a/+",	"$share/g/+/#", "$share/h/#",
					     "é/+/ü/#"};
	for (size_t i = 0; i < fs.size(); i++)
		ASSERT_EQ(sub(&s1, fs[i], opts((uint8_t)(i % 3), (uint32_t)i)), 0) << fs[i];
	ASSERT_EQ(sub(&s2, "a/+", opts(2)), 0);
	sub_list got;
	EXPECT_EQ(mt_local_session_subs(loc_, &s1, collect, &got), fs.size());
	ASSERT_EQ(got.size(), fs.size());
	for (size_t i = 0; i < fs.size(); i++) {
		ASSERT_EQ(got.count(fs[i]), 1u) << fs[i];
		EXPECT_EQ(got[fs[i]].qos, i % 3) << fs[i];
		EXPECT_EQ(got[fs[i]].sub_id, i) << fs[i];
	}
	/* A visitor that stops at once; an unknown session. */
	mt_local_sub_fn *stop = [](void *, const char *, size_t, const mt_sub_opts *) { return 1; };
	EXPECT_EQ(mt_local_session_subs(loc_, &s1, stop, nullptr), 1u);
	int nobody;
	EXPECT_EQ(mt_local_session_subs(loc_, &nobody, collect, &got), 0u);
}

/* Random subscribe/resubscribe/unsubscribe/drop of plain and shared filters; every session's
 * listing equals a brute-force record of what it holds. */
TEST(MtLocal, SessionSubsOracleRandom)
{
	mt_test::gen g(77);
	mt_local *loc = mt_local_create(nullptr);
	ASSERT_NE(loc, nullptr);
	int sessions[16];
	std::map<int, sub_list> want;
	for (int round = 0; round < 6; round++) {
		for (int i = 0; i < 500; i++) {
			int s = (int)g.below(16);
			std::string f = g.filter(6);
			if (g.chance(15))
				f = "$share/g" + std::to_string(g.below(3)) + "/" + f;
			uint32_t id = g.chance(50) ? 1 + g.below(1000) : 0;
			mt_sub_opts o = opts((uint8_t)g.below(3), id, g.chance(20), g.chance(30));
			o.retain_handling = (uint8_t)g.below(3);
			ASSERT_EQ(mt_local_subscribe(loc, &sessions[s], f.data(), f.size(), &o,
						     nullptr),
				  0)
				<< f;
			want[s][f] = o;
		}
		for (auto &w : want)
			for (auto it = w.second.begin(); it != w.second.end();) {
				if (g.chance(30)) {
					const std::string &f = it->first;
					void *sp = &sessions[w.first];
					int ret = mt_local_unsubscribe(loc, sp, f.data(), f.size());
					ASSERT_EQ(ret, 0) << f;
					it = w.second.erase(it);
				} else {
					++it;
				}
			}
		if (round == 4) {
			EXPECT_EQ(mt_local_drop_session(loc, &sessions[3]), want[3].size());
			want[3].clear();
		}
		for (int s = 0; s < 16; s++) {
			sub_list got;
			EXPECT_EQ(mt_local_session_subs(loc, &sessions[s], collect, &got),
				  want[s].size());
			ASSERT_EQ(got.size(), want[s].size()) << "session " << s;
			for (const auto &e : want[s]) {
				auto it = got.find(e.first);
				ASSERT_NE(it, got.end()) << e.first;
				EXPECT_TRUE(same_opts(it->second, e.second)) << e.first;
			}
		}
	}
	mt_local_destroy(loc);
}

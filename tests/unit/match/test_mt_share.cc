/* SPDX-License-Identifier: MIT */
/*
 * Shared subscriptions end to end across the two halves: the global index picks a core per
 * group (round-robin with caller state, or sticky), the core's local index picks a session, and
 * a member leaving never strands a message (repick).
 */
#include <cerrno>
#include <map>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "match.h"

namespace
{

int gadd(mt_index *idx, const std::string &f, unsigned core)
{
	return mt_index_add(idx, f.data(), f.size(), core);
}

int gdel(mt_index *idx, const std::string &f, unsigned core)
{
	return mt_index_del(idx, f.data(), f.size(), core);
}

unsigned picks(mt_index *idx, const std::string &t, mt_share_ctx *ctx, mt_share_pick *out,
	       unsigned max)
{
	return mt_index_share_match(idx, t.data(), t.size(), ctx, out, max);
}

} // namespace

TEST(MtShare, OneCorePerGroupRoundRobin)
{
	mt_index *idx = mt_index_create(nullptr);
	ASSERT_NE(idx, nullptr);
	ASSERT_EQ(gadd(idx, "$share/g1/a/+", 1), 0);
	ASSERT_EQ(gadd(idx, "$share/g1/a/+", 2), 0);
	ASSERT_EQ(gadd(idx, "$share/g1/a/+", 3), 0);
	ASSERT_EQ(gadd(idx, "$share/g2/a/#", 7), 0);
	EXPECT_EQ(mt_index_match(idx, "a/b", 3), 0u); /* shared groups are not plain matches */
	mt_share_ctx ctx{};
	std::map<unsigned, int> count;
	for (int i = 0; i < 300; i++) {
		mt_share_pick out[4];
		ASSERT_EQ(picks(idx, "a/b", &ctx, out, 4), 2u);
		for (unsigned k = 0; k < 2; k++)
			count[out[k].core]++;
	}
	EXPECT_EQ(count[7], 300);
	EXPECT_EQ(count[1] + count[2] + count[3], 300);
	EXPECT_GE(count[1], 90);
	EXPECT_GE(count[2], 90);
	EXPECT_GE(count[3], 90);
	mt_share_pick one;
	EXPECT_EQ(picks(idx, "a/b", &ctx, &one, 1), 2u); /* truncation is visible */
	EXPECT_EQ(picks(idx, "b", &ctx, &one, 1), 0u);
	mt_index_destroy(idx);
}

TEST(MtShare, StickyKeepsPublisherOnOneCore)
{
	mt_config cfg;
	mt_config_defaults(&cfg);
	cfg.share_policy = MT_SHARE_STICKY;
	mt_index *idx = mt_index_create(&cfg);
	ASSERT_NE(idx, nullptr);
	for (unsigned c = 0; c < 8; c++)
		ASSERT_EQ(gadd(idx, "$share/g/t", c), 0);
	std::set<unsigned> used;
	for (uint64_t pub = 1; pub <= 64; pub++) {
		mt_share_ctx ctx{0, pub};
		mt_share_pick p0, p;
		ASSERT_EQ(picks(idx, "t", &ctx, &p0, 1), 1u);
		for (int i = 0; i < 10; i++) {
			ASSERT_EQ(picks(idx, "t", &ctx, &p, 1), 1u);
			EXPECT_EQ(p.core, p0.core);
		}
		used.insert(p0.core);
	}
	EXPECT_GE(used.size(), 4u); /* publishers spread over members */
	mt_index_destroy(idx);
}

TEST(MtShare, MemberLeavingDoesNotStrand)
{
	mt_index *idx = mt_index_create(nullptr);
	mt_local *core_a = mt_local_create(nullptr); /* core 0 */
	mt_local *core_b = mt_local_create(nullptr); /* core 1 */
	ASSERT_TRUE(idx && core_a && core_b);
	int sa = 0, sb1 = 0, sb2 = 0;
	mt_sub_opts o{};
	o.qos = 1;
	const std::string f = "$share/grp/s/#";
	ASSERT_EQ(mt_local_subscribe(core_a, &sa, f.data(), f.size(), &o, nullptr), 0);
	ASSERT_EQ(gadd(idx, f, 0), 0);
	ASSERT_EQ(mt_local_subscribe(core_b, &sb1, f.data(), f.size(), &o, nullptr), 0);
	ASSERT_EQ(gadd(idx, f, 1), 0);
	ASSERT_EQ(mt_local_subscribe(core_b, &sb2, f.data(), f.size(), &o, nullptr), 0);
	ASSERT_EQ(gadd(idx, f, 1), 0);

	mt_share_ctx ctx{};
	mt_share_pick p;
	/* Find a message picked for core 0, then let core 0's only member leave before delivery. */
	do {
		ASSERT_EQ(picks(idx, "s/x", &ctx, &p, 1), 1u);
	} while (p.core != 0);
	ASSERT_EQ(mt_local_unsubscribe(core_a, &sa, f.data(), f.size()), 0);
	mt_local_hit hit;
	EXPECT_EQ(mt_local_share_pick(core_a, p.group_id, 0, &hit), -ENOENT);
	unsigned next;
	ASSERT_EQ(mt_index_share_repick(idx, p.group_id, 1ull << 0, &ctx, &next), 0);
	EXPECT_EQ(next, 1u);
	ASSERT_EQ(mt_local_share_pick(core_b, p.group_id, 0, &hit), 0);
	EXPECT_TRUE(hit.session == &sb1 || hit.session == &sb2);
	/* Local round-robin alternates between core 1's members. */
	std::set<void *> seen;
	for (int i = 0; i < 4; i++) {
		ASSERT_EQ(mt_local_share_pick(core_b, p.group_id, 0, &hit), 0);
		seen.insert(hit.session);
	}
	EXPECT_EQ(seen.size(), 2u);
	/* The control thread applies core 0's departure; nobody left but core 1. */
	ASSERT_EQ(gdel(idx, f, 0), 0);
	for (int i = 0; i < 10; i++) {
		ASSERT_EQ(picks(idx, "s/x", &ctx, &p, 1), 1u);
		EXPECT_EQ(p.core, 1u);
	}
	EXPECT_EQ(mt_index_share_repick(idx, p.group_id, 1ull << 1, &ctx, &next), -ENOENT);
	/* Everyone leaves: the group disappears everywhere. */
	ASSERT_EQ(gdel(idx, f, 1), 0);
	ASSERT_EQ(gdel(idx, f, 1), 0);
	EXPECT_EQ(gdel(idx, f, 1), -ENOENT);
	EXPECT_EQ(picks(idx, "s/x", &ctx, &p, 1), 0u);
	EXPECT_EQ(mt_index_share_repick(idx, p.group_id, 0, &ctx, &next), -ENOENT);
	mt_index_stats st;
	mt_index_stats_get(idx, &st);
	EXPECT_EQ(st.share_groups, 0u);
	EXPECT_EQ(mt_local_drop_session(core_b, &sb1), 1u);
	EXPECT_EQ(mt_local_drop_session(core_b, &sb2), 1u);
	EXPECT_EQ(mt_local_share_pick(core_b, p.group_id, 0, &hit), -ENOENT);
	mt_local_destroy(core_a);
	mt_local_destroy(core_b);
	mt_index_destroy(idx);
}

TEST(MtShare, GroupsOnManyFiltersAndDollar)
{
	mt_index *idx = mt_index_create(nullptr);
	ASSERT_NE(idx, nullptr);
	ASSERT_EQ(gadd(idx, "$share/g/#", 0), 0);
	ASSERT_EQ(gadd(idx, "$share/h/#", 1), 0);
	ASSERT_EQ(gadd(idx, "$share/g/$SYS/#", 2), 0);
	ASSERT_EQ(gadd(idx, "$share/g/x", 3), 0);
	mt_share_ctx ctx{};
	mt_share_pick out[8];
	EXPECT_EQ(picks(idx, "x", &ctx, out, 8), 3u);
	ASSERT_EQ(picks(idx, "$SYS/a", &ctx, out, 8), 1u);
	EXPECT_EQ(out[0].core, 2u);
	ASSERT_EQ(gdel(idx, "$share/h/#", 1), 0);
	EXPECT_EQ(picks(idx, "x", &ctx, out, 8), 2u);
	ASSERT_EQ(gdel(idx, "$share/g/#", 0), 0);
	ASSERT_EQ(picks(idx, "x", &ctx, out, 8), 1u);
	EXPECT_EQ(out[0].core, 3u);
	EXPECT_EQ(gadd(idx, "$share/g+/x", 0), -EINVAL);
	mt_index_destroy(idx);
}

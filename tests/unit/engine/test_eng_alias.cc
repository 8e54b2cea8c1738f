// SPDX-License-Identifier: MIT
// Topic alias tables (engine/eng_alias.c). The outbound table (hash chains + recency list)
// runs against a brute-force model of the documented policy (free aliases in order, then the
// least recently sent one is rebound; long topics never aliased; pick changes nothing until
// commit). The inbound table keeps the latest binding per alias.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "eng_alias.h"

namespace {
// The model: alias -> topic, and the aliases from least to most recently sent.
struct Model {
	unsigned max;
	std::vector<std::string> topic; // [1..max], "" free
	std::vector<unsigned> order;    // least recent first

	explicit Model(unsigned m) : max(m), topic(m + 1) {}

	void pick(const std::string &t, unsigned *alias, bool *known) const
	{
		*known = false;
		*alias = 0;
		if (t.empty() || t.size() > ENG_ALIAS_TOPIC_MAX)
			return;
		for (unsigned i = 1; i <= max; i++)
			if (topic[i] == t) {
				*alias = i;
				*known = true;
				return;
			}
		*alias = order.size() < max ? (unsigned)order.size() + 1 : order.front();
	}

	void commit(const std::string &t, unsigned alias)
	{
		if (!alias)
			return;
		for (size_t k = 0; k < order.size(); k++)
			if (order[k] == alias) {
				order.erase(order.begin() + (long)k);
				break;
			}
		order.push_back(alias);
		topic[alias] = t;
	}
};

std::string topic_of(std::mt19937 &rng, unsigned universe)
{
	unsigned n = rng() % universe;
	std::string t = "dev/" + std::to_string(n) + "/telemetry";
	if (n % 17 == 0)
		t += std::string(ENG_ALIAS_TOPIC_MAX, 'x'); // too long to alias
	return t;
}

const uint8_t *bytes(const std::string &s)
{
	return reinterpret_cast<const uint8_t *>(s.data());
}
} // namespace

TEST(EngAliasOut, FreeAliasesFirstThenLeastRecentlySent)
{
	struct eng_alias_out *t = eng_alias_out_create(2);
	ASSERT_NE(t, nullptr);
	struct eng_alias_pick p;
	std::string a = "a", b = "b", c = "c";

	eng_alias_out_pick(t, bytes(a), 1, &p);
	EXPECT_EQ(p.alias, 1);
	EXPECT_FALSE(p.known);
	eng_alias_out_pick(t, bytes(a), 1, &p); // nothing recorded without commit
	EXPECT_FALSE(p.known);
	eng_alias_out_commit(t, bytes(a), 1, &p);
	eng_alias_out_pick(t, bytes(a), 1, &p);
	EXPECT_TRUE(p.known);
	EXPECT_EQ(p.alias, 1);
	eng_alias_out_pick(t, bytes(b), 1, &p);
	EXPECT_EQ(p.alias, 2);
	eng_alias_out_commit(t, bytes(b), 1, &p);
	eng_alias_out_pick(t, bytes(a), 1, &p); // a becomes the most recent
	eng_alias_out_commit(t, bytes(a), 1, &p);
	eng_alias_out_pick(t, bytes(c), 1, &p);
	EXPECT_FALSE(p.known);
	EXPECT_EQ(p.alias, 2) << "b was sent least recently";
	eng_alias_out_commit(t, bytes(c), 1, &p);
	eng_alias_out_pick(t, bytes(b), 1, &p);
	EXPECT_FALSE(p.known) << "b's alias went to c";
	eng_alias_out_pick(t, bytes(c), 1, &p);
	EXPECT_TRUE(p.known);
	EXPECT_EQ(p.alias, 2);
	std::string big(ENG_ALIAS_TOPIC_MAX + 1, 'y');
	eng_alias_out_pick(t, bytes(big), (uint32_t)big.size(), &p);
	EXPECT_EQ(p.alias, 0);
	eng_alias_out_destroy(t);
}

TEST(EngAliasOut, MatchesBruteForceModel)
{
	std::mt19937 rng(12345);
	for (unsigned max : {1u, 2u, 3u, 16u, 100u}) {
		for (unsigned universe : {max / 2 + 1, max + 1, 3 * max + 5}) {
			struct eng_alias_out *t = eng_alias_out_create((uint16_t)max);
			ASSERT_NE(t, nullptr);
			Model m(max);
			for (int step = 0; step < 20000; step++) {
				std::string tp = topic_of(rng, universe);
				struct eng_alias_pick p;
				unsigned alias;
				bool known;
				eng_alias_out_pick(t, bytes(tp), (uint32_t)tp.size(), &p);
				m.pick(tp, &alias, &known);
				ASSERT_EQ(p.alias, alias) << "max " << max << " step " << step;
				ASSERT_EQ(p.known, known) << "max " << max << " step " << step;
				if (rng() % 5) { // some sends fail: no commit
					eng_alias_out_commit(t, bytes(tp), (uint32_t)tp.size(), &p);
					m.commit(tp, alias);
				}
			}
			eng_alias_out_destroy(t);
		}
	}
}

TEST(EngAliasIn, KeepsTheLatestBinding)
{
	struct eng_alias_in *t = nullptr; // made by the first set
	struct eng_str s;
	EXPECT_FALSE(eng_alias_in_get(t, 1, &s));
	std::string a = "short", b(300, 'b'), c = "c";
	ASSERT_EQ(eng_alias_in_set(&t, 3, 1, bytes(a), (uint32_t)a.size()), 0);
	ASSERT_NE(t, nullptr);
	ASSERT_EQ(eng_alias_in_set(&t, 3, 3, bytes(b), (uint32_t)b.size()), 0);
	ASSERT_TRUE(eng_alias_in_get(t, 1, &s));
	EXPECT_EQ(std::string(reinterpret_cast<const char *>(s.p), s.len), a);
	ASSERT_TRUE(eng_alias_in_get(t, 3, &s));
	EXPECT_EQ(std::string(reinterpret_cast<const char *>(s.p), s.len), b);
	ASSERT_EQ(eng_alias_in_set(&t, 3, 3, bytes(c), 1), 0); // shorter: reuses the buffer
	ASSERT_TRUE(eng_alias_in_get(t, 3, &s));
	EXPECT_EQ(std::string(reinterpret_cast<const char *>(s.p), s.len), c);
	ASSERT_EQ(eng_alias_in_set(&t, 3, 1, bytes(b), (uint32_t)b.size()), 0); // longer: grows
	ASSERT_TRUE(eng_alias_in_get(t, 1, &s));
	EXPECT_EQ(std::string(reinterpret_cast<const char *>(s.p), s.len), b);
	EXPECT_FALSE(eng_alias_in_get(t, 2, &s));
	EXPECT_FALSE(eng_alias_in_get(t, 4, &s)); // beyond the table
	EXPECT_EQ(eng_alias_in_set(&t, 3, 4, bytes(a), 1), -EINVAL); // beyond the maximum
	EXPECT_EQ(eng_alias_in_set(&t, 3, 0, bytes(a), 1), -EINVAL);
	eng_alias_in_destroy(t);
	eng_alias_in_destroy(nullptr);
}

// The table grows with the highest alias set (in any order, up to the maximum) and keeps every
// binding across its growth: checked against a map after each step.
TEST(EngAliasIn, GrowsAndKeepsBindingsAgainstAModel)
{
	for (unsigned max : {1u, 3u, 4u, 5u, 64u, 1000u, 65535u}) {
		std::mt19937 rng(max);
		std::vector<std::string> model(max + 1);
		struct eng_alias_in *t = nullptr;
		for (int step = 0; step < 400; step++) {
			uint16_t alias = (uint16_t)(1 + rng() % (step % 7 ? (max < 8 ? max : 8) : max));
			std::string topic = "t/" + std::to_string(rng() % 50);
			ASSERT_EQ(eng_alias_in_set(&t, (uint16_t)max, alias, bytes(topic),
						   (uint32_t)topic.size()),
				  0);
			model[alias] = topic;
			for (unsigned i = 1; i <= max && i <= 2000; i++) {
				struct eng_str s;
				bool got = eng_alias_in_get(t, (uint16_t)i, &s);
				ASSERT_EQ(got, !model[i].empty()) << "max " << max << " alias " << i;
				if (got) {
					ASSERT_EQ(std::string(reinterpret_cast<const char *>(s.p),
							      s.len),
						  model[i]);
				}
			}
		}
		eng_alias_in_destroy(t);
	}
}

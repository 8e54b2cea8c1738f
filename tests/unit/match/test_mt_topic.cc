/* SPDX-License-Identifier: MIT */
/*
 * Topic name / filter validation, $share parsing and the reference matcher (mt_topic.c),
 * including the examples of MQTT 5.0 section 4.7 and a random check against the test oracle.
 */
#include <cerrno>
#include <cstring>
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "match.h"
#include "mt_test_util.h"

namespace
{

int name_check(const std::string &s, const mt_config *cfg = nullptr, const char **why = nullptr)
{
	return mt_topic_name_check(cfg, s.data(), s.size(), why);
}

int filter_check(const std::string &s, const mt_config *cfg = nullptr, const char **why = nullptr)
{
	return mt_topic_filter_check(cfg, s.data(), s.size(), why);
}

bool matches(const std::string &f, const std::string &t)
{
	return mt_topic_matches(f.data(), f.size(), t.data(), t.size());
}

} // namespace

TEST(MtTopic, ValidNames)
{
	for (const char *s : {"a", "/", "a/b", "a//b", "/a", "a/", "$SYS/x", " ", "é/ü"})
		EXPECT_EQ(name_check(s), 0) << s;
}

TEST(MtTopic, InvalidNamesSayWhy)
{
	const char *why = nullptr;
	EXPECT_EQ(name_check("", nullptr, &why), -EINVAL);
	EXPECT_STREQ(why, "topic is empty");
	for (const char *s : {"a/+", "#", "a/#", "a+b"}) {
		why = nullptr;
		EXPECT_EQ(name_check(s, nullptr, &why), -EINVAL) << s;
		EXPECT_NE(why, nullptr);
	}
	EXPECT_EQ(name_check(std::string("a\0b", 3), nullptr, &why), -EINVAL);
	EXPECT_STREQ(why, "NUL character in topic");
}

TEST(MtTopic, Utf8)
{
	const char *why = nullptr;
	EXPECT_EQ(name_check("\xc3\xa9"), 0);
	EXPECT_EQ(name_check("\xf0\x9f\x98\x80"), 0);	    /* U+1F600 */
	EXPECT_EQ(name_check("\xc0\xaf", nullptr, &why), -EINVAL); /* overlong '/' */
	EXPECT_STREQ(why, "malformed UTF-8 in topic");
	EXPECT_EQ(name_check("\xed\xa0\x80"), -EINVAL);	    /* surrogate */
	EXPECT_EQ(name_check("\xf4\x90\x80\x80"), -EINVAL); /* past U+10FFFF */
	EXPECT_EQ(name_check("\xc3"), -EINVAL);		    /* truncated */
	EXPECT_EQ(name_check("\x80"), -EINVAL);		    /* lone continuation */
	mt_config cfg;
	mt_config_defaults(&cfg);
	cfg.check_utf8 = false;
	EXPECT_EQ(name_check("\xc0\xaf", &cfg), 0);
}

TEST(MtTopic, ValidFilters)
{
	for (const char *s : {"#", "+", "+/+", "a/#", "/#", "+/", "a/+/b", "$SYS/#", "a//+", "/"})
		EXPECT_EQ(filter_check(s), 0) << s;
}

TEST(MtTopic, InvalidFilters)
{
	const char *why = nullptr;
	EXPECT_EQ(filter_check("a/#/b", nullptr, &why), -EINVAL);
	EXPECT_STREQ(why, "'#' is not the last level");
	EXPECT_EQ(filter_check("a#", nullptr, &why), -EINVAL);
	EXPECT_STREQ(why, "'#' is not a whole level");
	EXPECT_EQ(filter_check("a/b+", nullptr, &why), -EINVAL);
	EXPECT_STREQ(why, "'+' is not a whole level");
	EXPECT_EQ(filter_check("++"), -EINVAL);
	EXPECT_EQ(filter_check("##"), -EINVAL);
	EXPECT_EQ(filter_check(""), -EINVAL);
}

TEST(MtTopic, LimitsAreConfigurable)
{
	mt_config cfg;
	mt_config_defaults(&cfg);
	cfg.max_levels = 3;
	cfg.max_topic_len = 8;
	const char *why = nullptr;
	EXPECT_EQ(name_check("a/b/c", &cfg), 0);
	EXPECT_EQ(name_check("a/b/c/d", &cfg, &why), -E2BIG);
	EXPECT_STREQ(why, "more topic levels than the configured maximum");
	EXPECT_EQ(filter_check("+/+/+/#", &cfg), -E2BIG);
	EXPECT_EQ(name_check("12345678", &cfg), 0);
	EXPECT_EQ(name_check("123456789", &cfg, &why), -ENAMETOOLONG);
	EXPECT_STREQ(why, "topic longer than the configured maximum");
	/* Defaults: 32 levels. */
	std::string deep = "a";
	for (int i = 1; i < 32; i++)
		deep += "/a";
	EXPECT_EQ(name_check(deep), 0);
	EXPECT_EQ(name_check(deep + "/a"), -E2BIG);
}

TEST(MtTopic, SharedParse)
{
	std::string s = "$share/grp/a/+/#";
	mt_share_spec spec;
	ASSERT_EQ(mt_topic_share_parse(nullptr, s.data(), s.size(), &spec, nullptr), 0);
	EXPECT_EQ(std::string(spec.group, spec.group_len), "grp");
	EXPECT_EQ(std::string(spec.filter, spec.filter_len), "a/+/#");
	EXPECT_TRUE(mt_topic_is_shared(s.data(), s.size()));
	EXPECT_EQ(filter_check(s), 0);

	mt_share_spec spec2;
	std::string s2 = "$share/grp/a/+/#";
	ASSERT_EQ(mt_topic_share_parse(nullptr, s2.data(), s2.size(), &spec2, nullptr), 0);
	EXPECT_EQ(spec.id, spec2.id);
	std::string s3 = "$share/grp2/a/+/#";
	ASSERT_EQ(mt_topic_share_parse(nullptr, s3.data(), s3.size(), &spec2, nullptr), 0);
	EXPECT_NE(spec.id, spec2.id);

	const char *why = nullptr;
	for (const char *bad : {"$share/", "$share/g", "$share//a", "$share/g+/a", "$share/g#/a",
				"$share/g/", "$share/g/a/#/b"}) {
		why = nullptr;
		EXPECT_EQ(filter_check(bad, nullptr, &why), -EINVAL) << bad;
		EXPECT_NE(why, nullptr) << bad;
	}
	EXPECT_FALSE(mt_topic_is_shared("$shared/g/a", 11));
}

TEST(MtTopic, SpecExamples)
{
	EXPECT_TRUE(matches("sport/tennis/player1/#", "sport/tennis/player1"));
	EXPECT_TRUE(matches("sport/tennis/player1/#", "sport/tennis/player1/ranking"));
	EXPECT_TRUE(matches("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon"));
	EXPECT_TRUE(matches("sport/#", "sport"));
	EXPECT_TRUE(matches("sport/tennis/+", "sport/tennis/player1"));
	EXPECT_FALSE(matches("sport/tennis/+", "sport/tennis/player1/ranking"));
	EXPECT_FALSE(matches("sport/+", "sport"));
	EXPECT_TRUE(matches("sport/+", "sport/"));
	EXPECT_TRUE(matches("+/+", "/finance"));
	EXPECT_TRUE(matches("/+", "/finance"));
	EXPECT_FALSE(matches("+", "/finance"));
	EXPECT_FALSE(matches("#", "$SYS/x"));
	EXPECT_FALSE(matches("+/monitor/Clients", "$SYS/monitor/Clients"));
	EXPECT_TRUE(matches("$SYS/#", "$SYS/monitor/Clients"));
	EXPECT_TRUE(matches("$SYS/monitor/+", "$SYS/monitor/Clients"));
	EXPECT_TRUE(matches("a//b", "a//b"));
	EXPECT_TRUE(matches("a/+/b", "a//b"));
	EXPECT_FALSE(matches("a/b", "a/b/"));
	EXPECT_TRUE(matches("+/#", "a"));
}

TEST(MtTopic, ReferenceMatcherAgreesWithOracle)
{
	mt_test::gen g(7);
	for (int i = 0; i < 200000; i++) {
		std::string f = g.filter(5), t = g.topic(5);
		ASSERT_EQ(filter_check(f), 0) << f;
		ASSERT_EQ(name_check(t), 0) << t;
		ASSERT_EQ(matches(f, t), mt_test::oracle_match(f, t)) << f << " vs " << t;
	}
}

/* Validation reads plain-ASCII words eight bytes at a time: on random strings of every length
 * around the word size, made of the bytes that matter (levels, wildcards, NUL, UTF-8 leads and
 * continuations), it must give the same verdict and reason as a byte-at-a-time rule check. */
namespace
{

int oracle_check(const std::string &s, bool filter, uint32_t max_levels, const char **why)
{
	auto fail = [why](const char *w, int e) {
		*why = w;
		return e;
	};
	size_t levels = 1, start = 0;
	if (s.empty())
		return fail("topic is empty", -EINVAL);
	for (size_t i = 0; i < s.size();) {
		unsigned char c = (unsigned char)s[i];
		if (c == '/') {
			if (++levels > max_levels)
				return fail("more topic levels than the configured maximum", -E2BIG);
			start = ++i;
			continue;
		}
		if (c == '+' || c == '#') {
			if (!filter)
				return fail("wildcard in a topic name", -EINVAL);
			if (i != start || (i + 1 != s.size() && s[i + 1] != '/'))
				return fail(c == '+' ? "'+' is not a whole level" : "'#' is not a whole level",
					    -EINVAL);
			if (c == '#' && i + 1 != s.size())
				return fail("'#' is not the last level", -EINVAL);
			i++;
			continue;
		}
		if (c == 0)
			return fail("NUL character in topic", -EINVAL);
		if (c < 0x80) {
			i++;
			continue;
		}
		/* the alphabet below has only 2-byte sequences (0xc3 0xa9) and stray bytes */
		if (c == 0xc3 && i + 1 < s.size() && ((unsigned char)s[i + 1] & 0xc0) == 0x80) {
			i += 2;
			continue;
		}
		return fail("malformed UTF-8 in topic", -EINVAL);
	}
	return 0;
}

} // namespace

TEST(MtTopic, WordAtATimeValidationAgreesWithByteRules)
{
	static const char *const pieces[] = {"a", "b", "/", "+", "#", "" /* NUL */,
					      "\xc3\xa9", "\xc3", "\xa9", "\xff", "abcdefg", "z/"};
	std::mt19937_64 rng(11);
	mt_config cfg;
	mt_config_defaults(&cfg);
	cfg.max_levels = 6;
	for (int i = 0; i < 300000; i++) {
		std::string s;
		size_t want = rng() % 40;
		while (s.size() < want) {
			size_t k = rng() % (sizeof(pieces) / sizeof(pieces[0]));
			if (k == 5)
				s.push_back('\0');
			else
				s += pieces[k];
		}
		for (bool filter : {false, true}) {
			const char *want_why = nullptr, *got_why = nullptr;
			int want_rc = oracle_check(s, filter, cfg.max_levels, &want_why);
			int got_rc = filter ? filter_check(s, &cfg, &got_why) : name_check(s, &cfg, &got_why);
			ASSERT_EQ(got_rc, want_rc) << (filter ? "filter " : "name ") << s.size();
			if (want_rc) {
				ASSERT_STREQ(got_why, want_why) << s.size();
			}
		}
	}
}

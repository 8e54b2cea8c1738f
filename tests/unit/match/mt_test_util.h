/* SPDX-License-Identifier: MIT */
/*
 * Test helpers for match/: an independent brute-force MQTT matcher (the oracle: split both
 * strings into levels, compare level by level; shares no code with the library) and random
 * generators of topic names and filters over a small vocabulary, so that random filters and
 * topics actually collide. Generated strings include '$' topics, empty levels and deep trees.
 */
#ifndef TACHYON_MT_TEST_UTIL_H
#define TACHYON_MT_TEST_UTIL_H

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "match.h"

namespace mt_test
{

inline std::vector<std::string> levels(const std::string &s)
{
	std::vector<std::string> out;
	size_t start = 0;
	for (;;) {
		size_t p = s.find('/', start);
		if (p == std::string::npos) {
			out.push_back(s.substr(start));
			return out;
		}
		out.push_back(s.substr(start, p - start));
		start = p + 1;
	}
}

/* MQTT 4.7: the reference semantics, written the obvious way. */
inline bool oracle_match(const std::string &filter, const std::string &topic)
{
	std::vector<std::string> f = levels(filter), t = levels(topic);
	if (!topic.empty() && topic[0] == '$' && (f[0] == "+" || f[0] == "#"))
		return false;
	for (size_t i = 0; i < f.size(); i++) {
		if (f[i] == "#")
			return true; /* this level and below, including none ("a/#" matches "a") */
		if (i >= t.size())
			return false;
		if (f[i] != "+" && f[i] != t[i])
			return false;
	}
	return f.size() == t.size();
}

class gen
{
      public:
	explicit gen(uint64_t seed) : rng_(seed)
	{
	}

	uint32_t below(uint32_t n)
	{
		return std::uniform_int_distribution<uint32_t>(0, n - 1)(rng_);
	}

	bool chance(uint32_t percent)
	{
		return below(100) < percent;
	}

	std::string word(bool first)
	{
		static const char *const words[] = {"a", "b", "c", "dev", "x", "sensor", "long/",
						    "é", "d"};
		uint32_t r = below(100);
		if (r < 8)
			return ""; /* empty level */
		if (first && r < 16)
			return below(2) ? "$SYS" : "$x";
		std::string w = words[below(9)];
		if (w == "long/")
			w = "longer_word_for_hash_tails";
		return w;
	}

	/* A topic name of 1..@maxl levels. */
	std::string topic(uint32_t maxl)
	{
		uint32_t n = 1 + below(maxl);
		std::string s;
		for (uint32_t i = 0; i < n; i++) {
			if (i)
				s += '/';
			s += word(i == 0);
		}
		if (s.empty())
			s = "/"; /* two empty levels: names must not be empty */
		return s;
	}

	/* A filter of 1..@maxl levels with '+' and a trailing '#' sometimes. */
	std::string filter(uint32_t maxl)
	{
		uint32_t n = 1 + below(maxl);
		std::string s;
		for (uint32_t i = 0; i < n; i++) {
			if (i)
				s += '/';
			if (i + 1 == n && chance(20)) {
				s += '#';
				break;
			}
			if (chance(25))
				s += '+';
			else
				s += word(i == 0);
		}
		if (s.empty())
			s = "/";
		return s;
	}

      private:
	std::mt19937_64 rng_;
};

} // namespace mt_test

#endif /* TACHYON_MT_TEST_UTIL_H */

/* SPDX-License-Identifier: MIT */
/*
 * Topic names and topic filters per MQTT 3.1.1/5.0 section 4.7: validation with configurable
 * limits and a reason string for every rejection, "$share/group/filter" parsing, and the
 * slow reference matcher that tests and tools use as an oracle.
 *
 * Rules: at least one byte; levels split on '/', empty levels are real levels ("a//b", "/a",
 * "a/" have 3, 2, 2 levels); '+' must be a whole level; '#' must be a whole level and the last
 * one; names hold no wildcard; no U+0000; well-formed UTF-8 (no surrogates, overlongs or code
 * points past U+10FFFF) when check_utf8 is on.
 */
#include <errno.h>

#include "mt_internal.h"

static const struct mt_config mt_default_cfg = {
	.max_topic_len = 65535,
	.max_levels = 32,
	.max_cores = MT_CORES_MAX,
	.check_utf8 = true,
	.share_policy = MT_SHARE_ROUND_ROBIN,
	.retain_max_count = 4u << 20,
	.retain_max_bytes = 1ull << 30,
	.hash_seed = 0,
};

void mt_config_defaults(struct mt_config *cfg)
{
	*cfg = mt_default_cfg;
}

static int mt_fail(const char **reason, const char *why, int err)
{
	if (reason)
		*reason = why;
	return err;
}

/* Length of the valid UTF-8 sequence at @s (at most @n bytes), or 0 if malformed. */
static size_t mt_utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];

	if (c < 0x80)
		return 1;
	if (c < 0xc2)
		return 0; /* continuation byte or overlong 2-byte lead */
	if (c < 0xe0)
		return n >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c < 0xf0) {
		if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			return 0;
		if (c == 0xe0 && s[1] < 0xa0)
			return 0; /* overlong */
		if (c == 0xed && s[1] >= 0xa0)
			return 0; /* UTF-16 surrogate */
		return 3;
	}
	if (c < 0xf5) {
		if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 ||
		    (s[3] & 0xc0) != 0x80)
			return 0;
		if (c == 0xf0 && s[1] < 0x90)
			return 0; /* overlong */
		if (c == 0xf4 && s[1] >= 0x90)
			return 0; /* past U+10FFFF */
		return 4;
	}
	return 0;
}

/* Shared by names and filters: @filter says whether wildcards are allowed. */
static int mt_topic_check(const struct mt_config *cfg, const char *s, size_t len, bool filter,
			  const char **reason)
{
	if (!cfg)
		cfg = &mt_default_cfg;
	if (len == 0)
		return mt_fail(reason, "topic is empty", -EINVAL);
	if (len > cfg->max_topic_len)
		return mt_fail(reason, "topic longer than the configured maximum", -ENAMETOOLONG);

	const unsigned char *p = (const unsigned char *)s;
	size_t levels = 1, level_start = 0, i = 0;
	uint32_t max_levels = cfg->max_levels < MT_LEVELS_MAX ? cfg->max_levels : MT_LEVELS_MAX;

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	/* The common case, eight bytes at a time: words of plain ASCII without NUL or wildcards,
	 * where only the '/'s count; the tail is the last eight bytes with the ones already seen
	 * masked off. The first word holding anything else goes the byte way below, which then
	 * finds the same first error as if it had started at 0. */
	while (len >= 8 && i < len) {
		size_t at = i + 8 <= len ? i : len - 8;
		uint64_t v = mt_rd64(p + at);
		uint64_t fresh = MT_HIGHS << (8 * (i - at)); /* bytes at >= i */

		if (((v & MT_HIGHS) | mt_bytes_eq(v, 0) | mt_bytes_eq(v, '+') | mt_bytes_eq(v, '#')) &
		    fresh)
			break;
		uint64_t sl = mt_bytes_eq(v, '/') & fresh;
		if (sl) {
			levels += (size_t)(((sl >> 7) * MT_ONES) >> 56); /* one per flagged byte */
			if (filter) /* where the byte way checks that wildcards stand alone */
				level_start = at + (size_t)((63 - __builtin_clzll(sl)) >> 3) + 1;
		}
		i = at + 8;
	}
	if (levels > max_levels)
		return mt_fail(reason, "more topic levels than the configured maximum", -E2BIG);
#endif
	while (i < len) {
		unsigned char c = p[i];

		if (c == '/') {
			if (++levels > max_levels)
				return mt_fail(reason, "more topic levels than the configured maximum",
					       -E2BIG);
			level_start = ++i;
			continue;
		}
		if (c == '+' || c == '#') {
			if (!filter)
				return mt_fail(reason, "wildcard in a topic name", -EINVAL);
			bool alone = i == level_start && (i + 1 == len || p[i + 1] == '/');
			if (!alone)
				return mt_fail(reason, c == '+' ? "'+' is not a whole level"
								: "'#' is not a whole level",
					       -EINVAL);
			if (c == '#' && i + 1 != len)
				return mt_fail(reason, "'#' is not the last level", -EINVAL);
			i++;
			continue;
		}
		if (c == 0)
			return mt_fail(reason, "NUL character in topic", -EINVAL);
		if (c < 0x80 || !cfg->check_utf8) {
			i++;
			continue;
		}
		size_t n = mt_utf8_seq(p + i, len - i);
		if (n == 0)
			return mt_fail(reason, "malformed UTF-8 in topic", -EINVAL);
		i += n;
	}
	return 0;
}

int mt_topic_name_check(const struct mt_config *cfg, const char *name, size_t len,
			const char **reason)
{
	return mt_topic_check(cfg, name, len, false, reason);
}

bool mt_topic_is_shared(const char *filter, size_t len)
{
	return len >= 7 && memcmp(filter, "$share/", 7) == 0;
}

int mt_topic_filter_check(const struct mt_config *cfg, const char *filter, size_t len,
			  const char **reason)
{
	if (mt_topic_is_shared(filter, len)) {
		struct mt_share_spec spec;
		return mt_topic_share_parse(cfg, filter, len, &spec, reason);
	}
	return mt_topic_check(cfg, filter, len, true, reason);
}

int mt_topic_share_parse(const struct mt_config *cfg, const char *filter, size_t len,
			 struct mt_share_spec *out, const char **reason)
{
	if (!mt_topic_is_shared(filter, len))
		return mt_fail(reason, "not a $share/ filter", -EINVAL);
	if (!cfg)
		cfg = &mt_default_cfg;
	if (len > cfg->max_topic_len)
		return mt_fail(reason, "topic longer than the configured maximum", -ENAMETOOLONG);

	const char *g = filter + 7, *end = filter + len;
	const char *slash = memchr(g, '/', (size_t)(end - g));
	if (!slash)
		return mt_fail(reason, "$share/ without a filter after the group", -EINVAL);
	if (slash == g)
		return mt_fail(reason, "$share/ with an empty group name", -EINVAL);
	if (memchr(g, '+', (size_t)(slash - g)) || memchr(g, '#', (size_t)(slash - g)))
		return mt_fail(reason, "wildcard in a $share group name", -EINVAL);
	if (memchr(g, 0, (size_t)(slash - g)))
		return mt_fail(reason, "NUL character in topic", -EINVAL);

	const char *f = slash + 1;
	size_t flen = (size_t)(end - f);
	int ret = mt_topic_check(cfg, f, flen, true, reason);
	if (ret < 0)
		return ret;
	if (cfg->check_utf8) {
		for (const unsigned char *p = (const unsigned char *)g; p < (const unsigned char *)slash;) {
			size_t n = *p < 0x80 ? 1 : mt_utf8_seq(p, (size_t)((const unsigned char *)slash - p));
			if (n == 0)
				return mt_fail(reason, "malformed UTF-8 in topic", -EINVAL);
			p += n;
		}
	}
	out->group = g;
	out->group_len = (size_t)(slash - g);
	out->filter = f;
	out->filter_len = flen;
	/* "group/filter" is unambiguous (no '/' in groups): its hash names the group. */
	out->id = mt_hash(g, len - 7, mt_share_seed());
	return 0;
}

bool mt_topic_matches(const char *filter, size_t flen, const char *name, size_t nlen)
{
	size_t fi = 0, ni = 0;

	if (nlen > 0 && name[0] == '$' && flen > 0 && (filter[0] == '+' || filter[0] == '#'))
		return false;
	for (;;) {
		/* At the start of a filter level and a name level. */
		size_t fe = fi, ne = ni;
		while (fe < flen && filter[fe] != '/')
			fe++;
		while (ne < nlen && name[ne] != '/')
			ne++;
		if (fe - fi == 1 && filter[fi] == '#')
			return true; /* matches this level and everything below, or nothing below */
		bool fmore = fe < flen, nmore = ne < nlen;
		if (!(fe - fi == 1 && filter[fi] == '+') &&
		    (fe - fi != ne - ni || memcmp(filter + fi, name + ni, fe - fi) != 0))
			return false;
		if (!fmore && !nmore)
			return true;
		if (!nmore) /* name ended; only "/#" may follow in the filter */
			return fmore && flen - fe == 2 && filter[fe + 1] == '#';
		if (!fmore)
			return false;
		fi = fe + 1;
		ni = ne + 1;
	}
}

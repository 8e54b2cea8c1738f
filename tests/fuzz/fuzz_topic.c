/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for match/: the input is "filter\ntopic". Both go through validation; when both
 * are valid, the global index, the per-core index and the retained index must agree with the
 * reference matcher (mt_topic_matches) on whether the filter matches the topic, and removing
 * the subscription / retained topic must leave the structures empty. The per-core index must
 * list the session's one subscription with its filter text as subscribed. The structures
 * persist across inputs (as in a broker), so state bugs accumulate where the fuzzer can find
 * them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "match.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct mt_index *idx;
static struct mt_local *loc;
static struct mt_retain *ret;

static int count_visit(void *ctx, const char *topic, size_t len, void *msg, size_t bytes)
{
	(void)topic;
	(void)len;
	(void)msg;
	(void)bytes;
	(*(long *)ctx)++;
	return 0;
}

/* The expected filter text of a session's one subscription (mt_local_session_subs). */
struct one_sub {
	const char *f;
	size_t len;
	unsigned seen;
};

static int check_sub(void *ctx, const char *f, size_t len, const struct mt_sub_opts *o)
{
	struct one_sub *w = ctx;

	if (len != w->len || memcmp(f, w->f, len) != 0 || o->sub_id != 9)
		abort();
	w->seen++;
	return 0;
}

static void destroy_all(void)
{
	mt_retain_destroy(ret);
	mt_local_destroy(loc);
	mt_index_destroy(idx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!idx) {
		idx = mt_index_create(NULL);
		loc = mt_local_create(NULL);
		ret = mt_retain_create(NULL, NULL, NULL);
		if (!idx || !loc || !ret)
			abort();
		atexit(destroy_all);
	}
	const char *s = (const char *)data;
	const char *nl = memchr(s, '\n', size);
	const char *f = s, *t = s;
	size_t flen = size, tlen = size;
	if (nl) {
		flen = (size_t)(nl - s);
		t = nl + 1;
		tlen = size - flen - 1;
	}
	const char *why = NULL;
	int fok = mt_topic_filter_check(NULL, f, flen, &why) == 0;
	if (!fok && !why)
		abort(); /* every rejection says why */
	int tok = mt_topic_name_check(NULL, t, tlen, NULL) == 0;
	if (mt_topic_is_shared(f, flen)) {
		struct mt_share_spec spec;
		if (mt_topic_share_parse(NULL, f, flen, &spec, NULL) == 0 && tok) {
			struct mt_share_ctx ctx = {0, 0};
			struct mt_share_pick pick;
			if (mt_index_add(idx, f, flen, 3) != 0)
				abort();
			unsigned n = mt_index_share_match(idx, t, tlen, &ctx, &pick, 1);
			bool want = mt_topic_matches(spec.filter, spec.filter_len, t, tlen);
			if (n != (want ? 1u : 0u) || (n && (pick.core != 3 || pick.group_id != spec.id)))
				abort();
			if (mt_index_del(idx, f, flen, 3) != 0)
				abort();
		}
		return 0;
	}
	if (!fok || !tok)
		return 0;

	bool want = mt_topic_matches(f, flen, t, tlen);
	if (mt_index_add(idx, f, flen, 5) != 0)
		abort();
	if (mt_index_match(idx, t, tlen) != (want ? 1ull << 5 : 0))
		abort();
	if (mt_index_del(idx, f, flen, 5) != 0 || mt_index_match(idx, t, tlen) != 0)
		abort();

	struct mt_sub_opts o = {1, false, false, 0, 9};
	int session;
	if (mt_local_subscribe(loc, &session, f, flen, &o, NULL) != 0)
		abort();
	const struct mt_local_hit *hits;
	unsigned n = mt_local_match(loc, t, tlen, NULL, &hits);
	if (n != (want ? 1u : 0u) || (n && (hits[0].session != &session || hits[0].nids != 1)))
		abort();
	struct one_sub w = {f, flen, 0};
	if (mt_local_session_subs(loc, &session, check_sub, &w) != 1 || w.seen != 1)
		abort();
	if (mt_local_unsubscribe(loc, &session, f, flen) != 0)
		abort();

	if (mt_retain_set(ret, t, tlen, &session, 1) != 0)
		abort();
	long visits = 0;
	if (mt_retain_match(ret, f, flen, count_visit, &visits) != (want ? 1 : 0))
		abort();
	if (mt_retain_set(ret, t, tlen, NULL, 0) != 0)
		abort();
	struct mt_retain_stats st;
	mt_retain_stats_get(ret, &st);
	if (st.nodes != 0 || st.count != 0)
		abort();
	return 0;
}

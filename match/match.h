/* SPDX-License-Identifier: MIT */
/*
 * match/: the data structures that decide who gets each message. Public API.
 *
 * - Topic name and topic filter validation (mt_topic_*), with configurable limits.
 * - The global index (struct mt_index): filter -> set of worker cores with subscribers on it.
 *   Read lock-free by every worker under liburcu QSBR; written by one control thread.
 *   It also holds the core-level half of shared subscriptions ($share/group/filter).
 * - The per-core private index (struct mt_local): a worker's own sessions and their
 *   subscription options, plus the session-level half of shared subscriptions. One thread.
 * - The retained index (struct mt_retain): topic -> retained message reference, with the
 *   reverse query "every retained topic matching this filter". One thread (the control thread).
 *
 * Strings are (pointer, length) views: nothing here needs NUL termination, and nothing keeps a
 * caller's pointer past the call unless it says so.
 *
 * Threading vocabulary used below:
 *   "control thread": the single writer of a struct mt_index; callers serialise writers.
 *   "reader": any thread registered with mt_rcu_register_thread() and online, matching between
 *             two calls of mt_rcu_quiescent(); no pointer obtained from the index survives one.
 *   "owner": the one thread that owns a struct mt_local or struct mt_retain.
 */
#ifndef TACHYON_MATCH_H
#define TACHYON_MATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Hard ceilings; the runtime limits in struct mt_config are at most these. */
#define MT_LEVELS_MAX 128	/* topic levels a filter may have */
#define MT_CORES_MAX 64		/* worker cores in a core mask (bit i = core i) */

/* Shared-subscription member selection, used at both halves (core pick and session pick). */
enum mt_share_policy {
	MT_SHARE_ROUND_ROBIN = 0, /* rotate; the rotation state belongs to the picking core */
	MT_SHARE_STICKY = 1,	  /* hash of the publisher: same publisher -> same member while
				   * membership is unchanged (modulo, so a change remaps some) */
};

/* Limits and tunables. Fill with mt_config_defaults(), then override. */
struct mt_config {
	uint32_t max_topic_len;	   /* bytes, topic names and filters; default 65535 */
	uint32_t max_levels;	   /* levels in a name or filter; default 32, <= MT_LEVELS_MAX */
	uint32_t max_cores;	   /* core ids accepted are [0, max_cores); <= MT_CORES_MAX */
	bool check_utf8;	   /* reject malformed UTF-8 (MQTT requires well-formed); default on */
	enum mt_share_policy share_policy; /* default round-robin */
	uint64_t retain_max_count; /* retained topics; default 4M */
	uint64_t retain_max_bytes; /* sum of retained message sizes; default 1 GiB */
	uint64_t hash_seed;	   /* 0: random per structure (hash flooding resistance) */
};

/* Fills @cfg with the defaults listed in struct mt_config. */
void mt_config_defaults(struct mt_config *cfg);

/* ---------------------------------------------------------------------------------------------
 * Topic names and filters (mt_topic.c). Pure functions, any thread.
 *
 * Return 0 or a negative errno; on error *reason (if non-NULL) gets a static string saying why,
 * for logs and MQTT 5 reason strings:
 *   -EINVAL        malformed (empty, wildcard misuse, NUL, bad UTF-8, bad $share syntax)
 *   -ENAMETOOLONG  longer than max_topic_len
 *   -E2BIG         more levels than max_levels
 * @cfg may be NULL (defaults).
 */
int mt_topic_name_check(const struct mt_config *cfg, const char *name, size_t len,
			const char **reason);
int mt_topic_filter_check(const struct mt_config *cfg, const char *filter, size_t len,
			  const char **reason);

/* A "$share/<group>/<filter>" split into views borrowed from the input string. */
struct mt_share_spec {
	const char *group;
	size_t group_len;
	const char *filter;
	size_t filter_len;
	uint64_t id; /* group id: same value in every structure of this process (see mt_index) */
};

/* True if @filter starts with "$share/" (then it must go through mt_topic_share_parse). */
bool mt_topic_is_shared(const char *filter, size_t len);

/*
 * Validates a shared subscription filter and splits it. The group must be non-empty and hold
 * no '/', '+' or '#'; the filter part must be a valid filter. @out borrows from @filter.
 */
int mt_topic_share_parse(const struct mt_config *cfg, const char *filter, size_t len,
			 struct mt_share_spec *out, const char **reason);

/* Reference matcher: does @filter match @name? Both assumed valid. Slow; for tests/tools. */
bool mt_topic_matches(const char *filter, size_t flen, const char *name, size_t nlen);

/* ---------------------------------------------------------------------------------------------
 * RCU (liburcu QSBR) wrappers. Readers of a struct mt_index must use these rather than the
 * liburcu calls directly: under ThreadSanitizer they also tell TSan about the grace-period
 * ordering that liburcu's inline-asm atomics hide from it (see mt_rcu.c).
 */
void mt_rcu_register_thread(void);   /* once per reader thread, before matching; starts online */
void mt_rcu_unregister_thread(void); /* before the thread exits */
void mt_rcu_quiescent(void);	     /* once per worker loop iteration: no index pointer kept */
void mt_rcu_offline(void);	     /* before blocking (sleep, epoll_wait) */
void mt_rcu_online(void);	     /* after blocking */
void mt_rcu_barrier(void);	     /* wait for every deferred free; not from a reader */

/* ---------------------------------------------------------------------------------------------
 * The global index (mt_index.c, mt_share.c).
 *
 * Filter -> core mask. Writers (control thread only) apply deltas "core C gained/lost one
 * subscriber on filter F"; per-core counts decide when bit C clears. Readers (workers) get the
 * union of the masks of every filter matching a topic, without locks, writes or allocation.
 * Memory unlinked by a writer is freed by call_rcu after a grace period.
 */
struct mt_index;

/* Creates an empty index; NULL on failure (errno: ENOMEM, EINVAL for a bad @cfg).
 * @cfg is copied; NULL means defaults. Control thread. */
struct mt_index *mt_index_create(const struct mt_config *cfg);

/* Frees the index and everything in it, then waits for deferred frees (rcu_barrier).
 * No reader may use @idx any more. Control thread. NULL is a no-op. */
void mt_index_destroy(struct mt_index *idx);

/*
 * One more / one fewer subscriber of @core on @filter. "$share/g/f" filters go to group g
 * (core-level membership: one count per member session on that core).
 * Returns 0, -EINVAL/-ENAMETOOLONG/-E2BIG (bad filter or core >= max_cores),
 * -ENOMEM, -EOVERFLOW (count would wrap), -ENOENT (del: no such subscriber),
 * -ENOTUNIQ (add: two share groups hash to one id; never seen in practice, refused rather
 * than misrouted). The change is visible to readers when the call returns. Control thread.
 */
int mt_index_add(struct mt_index *idx, const char *filter, size_t len, unsigned core);
int mt_index_del(struct mt_index *idx, const char *filter, size_t len, unsigned core);

/*
 * Cores with at least one non-shared subscriber whose filter matches topic name @topic
 * (assumed valid: mt_topic_name_check). 0 if none. Reader; no allocation, no lock, no write.
 *
 * A routing hint, exact up to 64-bit key collisions: readers identify a filter by a 64-bit hash
 * key and never compare its text, so a topic whose key collides with some filter's (about 2^-64
 * per pair) also gets that filter's cores: a superset, never a subset. Callers that deliver
 * match again exactly (mt_local_match on the target core). The writer's bookkeeping is exact
 * (per filter text), so colliding filters never disturb each other's counts.
 */
uint64_t mt_index_match(const struct mt_index *idx, const char *topic, size_t len);

/* Per-picking-core state for shared subscriptions; owned and zeroed by the caller, one per core
 * (never shared between threads, so the read path writes only caller memory). */
struct mt_share_ctx {
	uint32_t rr;	    /* round-robin cursor */
	uint64_t publisher; /* sticky policy key: e.g. hash of the publisher's client id */
};

/* One shared group selected for a message: send it to @core, tagged with @group_id. */
struct mt_share_pick {
	uint64_t group_id;
	unsigned core;
};

/*
 * Shared groups whose filter matches @topic, one core picked per group (policy from the
 * config). Writes at most @max picks to @out and returns how many groups matched (may exceed
 * @max: the caller sees truncation). Reader.
 *
 * The target core then picks a session with mt_local_share_pick(); if it has none left (its last
 * member left after this pick), it calls mt_index_share_repick() with its own bit in @tried and
 * forwards the message, so a departing member never strands a message or a group.
 */
unsigned mt_index_share_match(const struct mt_index *idx, const char *topic, size_t len,
			      struct mt_share_ctx *ctx, struct mt_share_pick *out, unsigned max);

/* Picks another core of group @group_id among its members not in @tried.
 * Returns 0 with *core set, or -ENOENT (group gone or no untried member). Reader. */
int mt_index_share_repick(const struct mt_index *idx, uint64_t group_id, uint64_t tried,
			  struct mt_share_ctx *ctx, unsigned *core);

struct mt_index_stats {
	uint64_t exact_filters;	   /* distinct filters without wildcards */
	uint64_t wildcard_filters; /* distinct filters with + or # */
	uint64_t trie_nodes;	   /* wildcard filter shapes (word/'+' level sequences) */
	uint64_t shape_programs;   /* per-depth programs of the shapes (0: readers walk them) */
	uint64_t share_groups;
	uint64_t arena_bytes;	   /* mapped by the index itself (nodes, exact entries) */
};

/* Counters of @idx. Control thread. */
void mt_index_stats_get(const struct mt_index *idx, struct mt_index_stats *st);

/* What the presence summaries (see match/mt_internal.h) did for one topic: keys checked, keys
 * the summary let through ("maybe"), and of those the keys actually present. (maybe - found)
 * / (checks - found) is the summaries' false-positive rate; each false positive costs a bucket
 * probe. Diagnostics for bench_match. */
struct mt_walk_stats {
	uint64_t checks;
	uint64_t maybe;
	uint64_t found;
};

/* Adds to @st the summary checks that matching @topic (valid) goes through. Reader. */
void mt_index_walk_stats(const struct mt_index *idx, const char *topic, size_t len,
			 struct mt_walk_stats *st);

/* Test hook: filter keys are ANDed with @mask (default all ones), so that tests can force key
 * collisions (e.g. mask 7: at most 8 distinct keys) and check that matches become supersets
 * while subscribe/unsubscribe stay exact. Only on an empty index (else -EBUSY). Control thread.
 * Never for production use: collisions cost routing to cores that drop the message. */
int mt_index_test_key_mask(struct mt_index *idx, uint64_t mask);

/* Test hook: shape sets are compiled into per-depth programs only while programs * shapes
 * stays within @limit (default 16384; 0: never, readers walk the shapes), so that tests can
 * check both read paths. Takes effect at once. Returns 0 or -ENOMEM. Control thread. */
int mt_index_test_prog_limit(struct mt_index *idx, uint32_t limit);

/* ---------------------------------------------------------------------------------------------
 * The per-core private index (mt_local.c). Owned by one worker; no locks, no RCU.
 * Sessions are the caller's opaque pointers (borrowed: the index never dereferences them;
 * the caller removes a session with mt_local_drop_session() before freeing it).
 */
struct mt_local;

struct mt_sub_opts {
	uint8_t qos;		      /* granted QoS 0..2 */
	bool no_local;		      /* do not deliver the session's own publishes */
	bool retain_as_published;     /* keep the RETAIN flag when forwarding */
	uint8_t retain_handling;      /* 0, 1, 2 (MQTT 5); stored for the engine */
	uint32_t sub_id;	      /* subscription identifier, 0 = none */
};

/* One receiving session of a match. @ids: every subscription identifier of the session's
 * matching subscriptions (MQTT 5 3.3.4), borrowed until the next call on the index. */
struct mt_local_hit {
	void *session;
	struct mt_sub_opts opts; /* of the best subscription: highest QoS, first found on ties */
	uint32_t nids;
	const uint32_t *ids;
};

/* Creates an empty per-core index (@cfg copied, NULL = defaults); NULL on failure (errno). */
struct mt_local *mt_local_create(const struct mt_config *cfg);
void mt_local_destroy(struct mt_local *loc);

/*
 * Subscribes @session to @filter (plain or "$share/g/f") with @opts, replacing the options of an
 * existing identical subscription. *@existed (if non-NULL) says whether it existed (MQTT 5
 * retain handling 1). Returns 0, a validation errno, -ENOMEM, or -ENOTUNIQ (see mt_index_add).
 */
int mt_local_subscribe(struct mt_local *loc, void *session, const char *filter, size_t len,
		       const struct mt_sub_opts *opts, bool *existed);

/* Returns 0, -ENOENT (no such subscription) or a validation errno. */
int mt_local_unsubscribe(struct mt_local *loc, void *session, const char *filter, size_t len);

/* Removes every subscription of @session; returns how many there were. */
unsigned mt_local_drop_session(struct mt_local *loc, void *session);

/*
 * Sessions whose non-shared subscriptions match topic name @topic; each session once, with the
 * options of its best matching subscription and all its subscription identifiers. Subscriptions
 * with no_local whose session is @publisher (may be NULL) do not match.
 * *@hits points into the index, valid until the next call on @loc. Returns the hit count.
 * No allocation: scratch space is sized by subscribe.
 */
unsigned mt_local_match(struct mt_local *loc, const char *topic, size_t len, const void *publisher,
			const struct mt_local_hit **hits);

/* Visitor of mt_local_session_subs: one subscription of the session, @filter as subscribed
 * (plain, or "$share/<group>/<filter>"), @filter and @opts borrowed for the call. Return
 * non-zero to stop. It must not subscribe or unsubscribe on the index. */
typedef int mt_local_sub_fn(void *ctx, const char *filter, size_t len,
			    const struct mt_sub_opts *opts);

/*
 * Calls @fn for every subscription of @session (in no particular order), e.g. to re-send
 * them to the global index or list them for a session takeover. Returns the number of calls
 * (0 for an unknown session). No allocation: the filter text is rebuilt in scratch space that
 * subscribe sized. Owner thread.
 */
unsigned mt_local_session_subs(struct mt_local *loc, const void *session, mt_local_sub_fn *fn,
			       void *ctx);

/*
 * Picks one session of local shared group @group_id (from mt_index_share_match) by the
 * configured policy, @publisher_key feeding the sticky policy. Returns 0 and fills @hit
 * (ids borrowed as above) or -ENOENT: no member here, repick globally.
 */
int mt_local_share_pick(struct mt_local *loc, uint64_t group_id, uint64_t publisher_key,
			struct mt_local_hit *hit);

/* ---------------------------------------------------------------------------------------------
 * The retained index (mt_retain.c). Owned by one thread (the control thread).
 *
 * Holds one opaque reference per topic, with its size for the caps. Ownership: set() takes the
 * caller's reference; the index gives it back through the release callback when the topic is
 * overwritten, cleared, or the index destroyed, on the owner thread, during that call (the index
 * has no concurrent readers; message lifetime across cores is the engine's refcount).
 */
struct mt_retain;

typedef void mt_retain_release_fn(void *msg, void *ctx);

/* @release may be NULL (references are then simply forgotten). NULL on failure (errno). */
struct mt_retain *mt_retain_create(const struct mt_config *cfg, mt_retain_release_fn *release,
				   void *release_ctx);
void mt_retain_destroy(struct mt_retain *r);

/*
 * Retains @msg (@bytes counted against retain_max_bytes) on topic name @topic, replacing and
 * releasing the previous one; @msg NULL clears the topic (releasing it). On error the caller
 * keeps its reference. Returns 0, a validation errno, -ENOSPC (count or bytes cap), -ENOMEM.
 */
int mt_retain_set(struct mt_retain *r, const char *topic, size_t len, void *msg, size_t bytes);

/* The reference retained on @topic (borrowed: valid until the next set on it), or NULL. */
void *mt_retain_get(const struct mt_retain *r, const char *topic, size_t len);

/* Visitor of mt_retain_match: @topic is borrowed for the call; return non-zero to stop. */
typedef int mt_retain_visit_fn(void *ctx, const char *topic, size_t len, void *msg,
			       size_t bytes);

/*
 * Calls @visit for every retained topic matching @filter (validated here) without scanning
 * unrelated topics. Returns the number of visits, or a validation errno.
 */
long mt_retain_match(struct mt_retain *r, const char *filter, size_t len, mt_retain_visit_fn *visit,
		     void *ctx);

struct mt_retain_stats {
	uint64_t count;
	uint64_t bytes;
	uint64_t nodes;
};
void mt_retain_stats_get(const struct mt_retain *r, struct mt_retain_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* TACHYON_MATCH_H */

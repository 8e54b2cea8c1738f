/* SPDX-License-Identifier: MIT */
/*
 * Engine internals shared by the engine's files: the engine, its worker cores and control
 * thread, clients (a connection and its session), messages, queue entries, the cross-core
 * item types, and the counters. Not part of the public API (tachyon.h).
 *
 * Who touches what:
 * - struct eng_worker and everything reachable from it (clients, their queues, timers, the
 *   mt_local, the pools) belong to that worker's thread. Other threads reach a worker only
 *   through its inbound rings.
 * - struct eng_control (registry, mt_index writes, mt_retain, password table, ACL master copy)
 *   belongs to the control thread.
 * - struct eng_msg is immutable after creation and shared by reference: refs is the only
 *   field written after publication (see eng_msg_ref / eng_msg_unref).
 * - Hooks (struct eng_hooks) are written before tachyon_start() only. The host queue has any
 *   number of producers and the control thread as consumer; the host's subscriptions belong
 *   to the control thread. The auth queues (eng_auth.c) are shared by the control thread and
 *   the auth threads under their mutex; a claim belongs to whoever holds it.
 * - Counters (struct eng_stats) are written by their worker only, with relaxed load + store
 *   (no read-modify-write), and read by the control thread with relaxed loads for $SYS.
 */
#ifndef ENG_INTERNAL_H
#define ENG_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "eng_acl.h"
#include "eng_alias.h"
#include "eng_codec.h"
#include "eng_config.h"
#include "eng_log.h"
#include "eng_ring.h"
#include "eng_timer.h"
#include "match.h"
#include "ns.h"
#include "tachyon.h"

struct eng_passwd;
struct eng_auth;
struct eng_plugin;

/* Core bit nworkers of mt_index is the host (its subscriptions, delivered by the control
 * thread): one bit of the mask is kept for it. */
#define ENG_MAX_WORKERS (MT_CORES_MAX - 1)
#define ENG_POLL_BATCH 256u
#define ENG_INBOX_BATCH 256u
/* Message blocks come from per-worker pools in ENG_MSG_CLASSES size classes: class k holds
 * blocks of ENG_MSG_POOL_SIZE << 2k bytes (512 B, 2, 8, 32 and 128 KiB) and keeps at most
 * ENG_MSG_POOL_MAX >> 2k free ones (2 MiB a class); larger messages are allocated to size. */
#define ENG_MSG_CLASSES 5u
#define ENG_MSG_POOL_SIZE 512u
#define ENG_MSG_POOL_MAX 4096u
#define ENG_MSG_NO_CLASS 0xffu
_Static_assert(ENG_MSG_CLASSES <= 8, "eng_worker.ret_dirty_cls has a bit per class");
#define ENG_QENT_POOL_MAX 16384u /* free queue entries kept per worker */
/* A partial packet's tail is kept in a buffer of ENG_RX_SMALL bytes from the worker's pool
 * (larger ones are allocated to size): a stream whose packets straddle reads takes and returns
 * one per read without calling malloc. At most ENG_RX_POOL_MAX free ones are kept per worker. */
#define ENG_RX_SMALL 2048u
#define ENG_RX_POOL_MAX 1024u
#define ENG_RET_BATCH 32u        /* pool blocks sent home together (eng_msg_unref) */
#define ENG_MSG_BACK_MAX 1024u   /* blocks other workers returned, kept per worker (>> k) */
#define ENG_NO_HOME 0xffu
#define ENG_SCRATCH (256u * 1024u)
#define ENG_QENT_IDS 2u          /* subscription identifiers kept inline per queue entry */
#define ENG_SHUTDOWN_GRACE_MS 1000u

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* ---------------------------------------------------------------------------------------------
 * Counters. One block per worker (and one for the control thread); $SYS sums them.
 */
#define ENG_STATS(X)                                                                           \
	X(msgs_in)           /* PUBLISH received */                                            \
	X(msgs_out)          /* PUBLISH sent */                                                \
	X(bytes_in)          /* MQTT bytes received */                                         \
	X(bytes_out)         /* MQTT bytes queued for sending */                               \
	X(connects)          /* CONNACK 0x00 sent */                                           \
	X(connect_refused)   /* CONNACK with an error */                                       \
	X(conn_refused_max)  /* connections over max_connections */                            \
	X(protocol_errors)   /* connections closed for a malformed or illegal packet */        \
	X(keepalive_timeouts)                                                                  \
	X(connect_timeouts)                                                                    \
	X(takeovers)         /* sessions taken over by a new connection */                     \
	X(wills_published)                                                                     \
	X(auth_failures)                                                                       \
	X(auth_busy)         /* refused with 0x89: the auth queue was full (auth_queue) */      \
	X(acl_denied)        /* publishes and subscriptions refused by the ACL */              \
	X(intercept_dropped) /* inbound publishes dropped by an intercept hook */              \
	X(drop_queue_full)   /* messages dropped by a full session queue */                    \
	X(drop_qos0_offline) /* QoS 0 for offline sessions (not queued) */                     \
	X(drop_expired)      /* messages whose expiry passed before delivery */                \
	X(drop_too_large)    /* over the receiver's Maximum Packet Size */                     \
	X(drop_ring_full)    /* QoS 0 not forwarded to a core whose ring was full */           \
	X(drop_no_share)     /* shared-group messages with no member left anywhere */          \
	X(ring_overflow)     /* items parked because a ring was full (delivered later) */      \
	X(pool_fallback)     /* allocations that missed a pool */                              \
	X(acks_deferred)     /* QoS 1/2 acks held back while a target queue was over its limit */\
	X(retries)           /* MQTT 3.x resends on the same connection (retry_interval) */    \
	X(qos0_pauses)       /* publishers paused: their QoS 0 went to a full queue or ring */\
	X(slow_consumers)    /* sessions that stopped holding back publishers (took nothing  \
				for slow_consumer_timeout with a full queue) */                \
	X(subs_added)                                                                          \
	X(subs_removed)                                                                        \
	X(sessions_expired)

struct eng_stats {
#define ENG_STATS_FIELD(n) _Atomic uint64_t n;
	ENG_STATS(ENG_STATS_FIELD)
#undef ENG_STATS_FIELD
	_Atomic int64_t clients_online; /* gauges */
	_Atomic int64_t sessions;
	_Atomic int64_t subscriptions;
};

/* Single writer: a relaxed load and store, no locked instruction. */
#define ENG_STAT_ADD(st, f, v)                                                                 \
	atomic_store_explicit(&(st)->f,                                                        \
			      atomic_load_explicit(&(st)->f, memory_order_relaxed) + (v),      \
			      memory_order_relaxed)
#define ENG_STAT_INC(st, f) ENG_STAT_ADD(st, f, 1)

/* ---------------------------------------------------------------------------------------------
 * Messages: one immutable object per published message, shared by every receiver.
 *
 * refs counts the holders: queue entries, ring items in flight, the retained store. It is
 * atomic because holders live on different cores: increments are relaxed (a holder already
 * has a reference), the decrement is acq_rel so the last holder sees every other holder's
 * accesses before it frees.
 */
struct eng_msg {
	_Atomic uint32_t refs;
	uint8_t cls;         /* pool size class, ENG_MSG_NO_CLASS: allocated to size */
	uint8_t qos;
	bool retain;
	uint8_t version;     /* of the publisher; 0: made by the broker */
	uint8_t origin_core; /* worker of the publisher */
	uint8_t home;        /* worker whose pool the block returns to, ENG_NO_HOME: none */
	uint64_t expire_ms;  /* absolute deadline (monotonic), 0: never */
	uint32_t expiry_s;   /* the Message Expiry Interval as published, 0: none */
	const void *publisher; /* the publishing client, meaningful on origin_core only */
	uint64_t publisher_key; /* hash of the publisher's client id (sticky shared groups) */
	struct eng_str topic;
	struct eng_str payload;
	/* NULL when the message has no properties to pass on; else at the start of data[], its
	 * views into data (no topic alias, no subscription ids) */
	const struct eng_props *props;
	struct eng_str raw;     /* QoS 0 packet forwardable byte for byte, or empty */
	uint64_t epoch;         /* route_epoch its routing matched under (eng_route, eng_xfer.c) */
	uint8_t data[];
};

/* ---------------------------------------------------------------------------------------------
 * Session queue entries: a message on its way to one session (queued or inflight).
 */
enum {
	QE_QUEUED = 0,   /* not sent yet */
	QE_WAIT_ACK,     /* QoS 1 sent, waiting for PUBACK */
	QE_WAIT_REC,     /* QoS 2 sent, waiting for PUBREC */
	QE_WAIT_COMP,    /* PUBREL sent, waiting for PUBCOMP */
};

struct eng_qent {
	struct eng_qent *next;
	struct eng_msg *msg; /* holds a reference; NULL in QE_WAIT_COMP once released */
	uint64_t seq;        /* order of packet id assignment */
	uint16_t pid;
	uint8_t qos;         /* delivered QoS */
	uint8_t state;
	bool retain;         /* RETAIN flag to send */
	bool dup;
	uint8_t nids;
	uint32_t ids[ENG_QENT_IDS];
	uint32_t sent_ms;    /* low bits of the clock when last sent (retry_interval) */
};

/* A subscription as the session keeps it (for takeover and for dropping it). */
struct eng_sub {
	struct eng_sub *next;
	struct mt_sub_opts opts;
	uint16_t len;
	char filter[];
};

/* ---------------------------------------------------------------------------------------------
 * Clients: a connection and its session in one object. A persistent session outlives its
 * connection (conn NULL, state CS_OFFLINE) and lives on its core until it expires or a new
 * connection takes it over (then it moves to that connection's core by message).
 */
enum eng_cstate {
	CS_NEW = 0,     /* connected, waiting for CONNECT */
	CS_CONNECTING,  /* CONNECT received, waiting for the control thread (claim, takeover) */
	CS_ONLINE,
	CS_OFFLINE,     /* persistent session without a connection */
	CS_GONE,        /* connection and session finished; freed when nothing refers to it */
	CS_AUTH,        /* enhanced authentication: AUTH 0x18 sent, waiting for the client's */
	CS_MOVED,       /* taken over by another core: forwards what it still matches there
			 * until every core has routed past the move (eng_xfer.c) */
};

enum {
	TK_CONN = 1, /* t_conn: CONNECT timeout, then keepalive */
	TK_SESS = 2, /* t_sess: will delay and session expiry */
	TK_RETRY = 3, /* t_retry: MQTT 3.x resend of unacknowledged messages (retry_interval) */
};

struct eng_client {
	struct eng_worker *w;
	struct ns_conn *conn; /* NULL when offline or closing */
	uint64_t gen;         /* unique id of this client object: registry claims */
	uint8_t state;        /* enum eng_cstate */
	uint8_t version;
	bool clean_start;
	bool in_hash;         /* in the worker's client id table */
	bool rx_paused;
	bool problem_info;    /* MQTT 5 Request Problem Information */
	bool will_at_set;
	bool closing;         /* close requested; no more output */
	bool id_assigned;     /* MQTT 5 Assigned Client Identifier */
	bool reauth_busy;     /* a re-authentication is in progress */
	uint8_t auth_method;  /* enhanced authentication: index + 1 into the engine's methods,
			       * 0: none (see cold->auth_cl) */
	/* Back-pressure flags (eng_publish.c, see over_prev below), here to share the word */
	bool over;
	bool stuck;
	bool cong;
	bool ovl_paused;      /* QoS 0 overload: receive paused, on the worker's paused_list */
	bool dack_listed;     /* on the worker's dack_list */
	bool end_after_xfer;  /* CS_MOVED: the move out waits for the move in (eng_xfer_fence) */
	uint16_t keepalive;   /* seconds, as granted */
	uint16_t recv_max;    /* client's Receive Maximum: our outbound window */
	uint16_t alias_max_out; /* aliases the broker may set: min(client's Topic Alias Maximum,
				 * topic_alias_maximum_out); 0: none, then QoS 0 may be
				 * forwarded byte for byte (see cold->alias_out) */
	uint16_t next_pid;
	uint16_t client_id_len;
	uint32_t max_packet_out;  /* client's Maximum Packet Size (0: protocol max) */
	uint32_t session_expiry;  /* seconds; UINT32_MAX never */
	uint32_t pending_ops;     /* control requests in flight that refer to this object */
	uint32_t nsubs;
	uint32_t qos2_count;      /* inbound QoS 2 ids awaiting PUBREL */
	uint32_t inflight;        /* outbound entries waiting for an ack */
	uint32_t q_count;         /* outbound entries queued, not sent */
	uint32_t will_delay;      /* Will Delay Interval, seconds (see will) */
	uint64_t q_bytes;
	uint64_t pid_seq;
	uint64_t last_rx_ms;
	uint64_t will_at_ms;      /* will delay deadline while offline */
	uint64_t expire_at_ms;    /* session expiry deadline while offline (0: never) */
	uint8_t *rxbuf;           /* partial packet tail, lazily allocated */
	uint32_t rxlen;
	uint32_t rxcap;
	uint8_t *ctlbuf;          /* control packets ns_send() refused, sent before anything else */
	uint32_t ctllen;
	uint32_t ctlcap;
	char *client_id;
	uint64_t id_hash;          /* eng_hash(client_id): sticky shared groups, once per client */
	struct eng_client_cold *cold; /* what few clients use (below), NULL until one does */
	struct eng_msg *will;     /* owned reference */
	struct eng_timer t_conn;
	/* One timer for two uses that never overlap (a session object goes online once, then
	 * offline at most once; a resumed session moves to a new object): TK_RETRY while online
	 * (MQTT 3.x retry_interval), TK_SESS while offline (will delay, session expiry). Whoever
	 * arms it sets the kind; going offline, arm_sess() re-arms it as TK_SESS or disarms it,
	 * and a retry that still fires for a client no longer online does nothing. */
	union {
		struct eng_timer t_retry;
		struct eng_timer t_sess;
	};
	struct eng_sub *subs;
	struct eng_qent *inf_head, *inf_tail; /* sent, unacknowledged, in send order */
	struct eng_qent *q_head, *q_tail;     /* not sent yet */
	uint64_t *qos2_bits;      /* 65536-bit set of inbound QoS 2 ids, lazily allocated */
	struct eng_acl_set *acl;  /* this client's rules (%u, %c substituted), NULL: allow all */
	/* Back-pressure (eng_publish.c): this session's queue is at its limit (over, with the
	 * flags; on the worker's over_list), it took nothing for slow_consumer_timeout (stuck),
	 * whether it is counted in its worker's congested (cong), and the acks this client's
	 * publishes wait for (dack, made by the first ack held back). */
	uint64_t progress_ms;     /* last time the session took something while over */
	uint64_t ovl_cores;       /* cores whose congestion paused this publisher */
	struct eng_client *over_prev, *over_next;
	struct eng_client *ovl_next;
	struct eng_dack *dack;    /* NULL until an ack is held back */
	struct eng_client *dack_next;
	/* Session move (eng_xfer.c), old core, CS_MOVED: the move out (xfer_out: its client and
	 * new_core get what this one still matches; end_after_xfer above: its end waits for the
	 * incoming move's, see eng_xfer_fence). The new core's side is in cold. */
	struct eng_xfer *xfer_out;
	struct eng_client *hnext; /* worker's client id table chain */
	struct eng_client *prev, *next; /* worker's list of clients */
};

/* Every connection holds one: up to 384 bytes it takes jemalloc's 384-byte size class (issue
 * #4, an idle connection under 1 KiB); one byte more takes the 448-byte class. State that few
 * clients use belongs behind a pointer (cold, qos2_bits, dack), not inline. */
_Static_assert(sizeof(struct eng_client) <= 384, "struct eng_client grew past 384 bytes");

/*
 * A client's cold state: what an idle connection does not use, behind one pointer so that
 * struct eng_client stays small. Made by eng_client_cold() at CONNECT when the client has a
 * user name, asks for enhanced authentication or may resume a session (which may come with a
 * move; freed again at the CONNACK if none came and nothing else needs it), and otherwise by
 * the first topic alias; freed with the client. Worker-local.
 */
struct eng_client_cold {
	char *username;
	/* Enhanced authentication (eng_connect.c): the claim parked while the client owes an
	 * AUTH (CS_AUTH during CONNECT, or a re-authentication on a live connection); the
	 * method is the client's auth_method. */
	struct eng_claim *auth_cl;
	struct eng_alias_in *alias_in;   /* MQTT 5: aliases the client set, made by the first */
	struct eng_alias_out *alias_out; /* MQTT 5: aliases the broker set, made by the first
					  * PUBLISH sent with alias_max_out > 0 (NULL before) */
	/* Session move (eng_xfer.c), new core: the move not finished yet (xfer, pinning the
	 * client), then the epoch before which direct deliveries came forwarded (min_epoch). */
	struct eng_xfer *xfer;
	uint64_t min_epoch;
	uint16_t username_len;
};

/* c's cold state, made (zeroed) if c has none yet: NULL only when out of memory. */
struct eng_client_cold *eng_client_cold(struct eng_client *c);

/* Read-only views of the cold state for clients that may have none. */
static inline const char *eng_client_username(const struct eng_client *c)
{
	return c->cold ? c->cold->username : NULL;
}

static inline struct eng_claim *eng_client_auth_cl(const struct eng_client *c)
{
	return c->cold ? c->cold->auth_cl : NULL;
}

/* Acks of a publisher held back while their targets are congested (eng_publish.c). */
struct eng_dack {
	uint32_t n, cap;
	uint64_t cores; /* cores the held-back messages went to */
	uint32_t ent[]; /* type << 24 | reason << 16 | packet id, in arrival order */
};

/* ---------------------------------------------------------------------------------------------
 * Cross-core items (struct eng_ritem.type).
 */
enum eng_rtype {
	RI_PUB = 1,     /* p: struct eng_msg (reference moves with the item) */
	RI_SHARE,       /* p: msg (reference), b: share group id, c: cores tried */
	RI_CLAIM,       /* W->C p: struct eng_claim; C->W: the claim's answer */
	RI_TAKEOVER,    /* C->W (old core) p: claim: close the old client, ship its session */
	RI_XFER,        /* W(old)->C p: claim with the session state (or none) */
	RI_SUB,         /* W->C p: struct eng_subreq; C->W: the answer (SUBACK may go) */
	RI_IDX_DEL,     /* W->C p: struct eng_filter_list: subscriptions gone (b: core) */
	RI_RELEASE,     /* W->C p: client id (malloc), b: gen: the session ended */
	RI_RETAIN,      /* W->C p: msg (reference): set or (empty payload) clear retained */
	RI_ACL,         /* C->W p: struct eng_acl (new table); W->C: old table released */
	RI_SHUTDOWN,    /* C->W a: phase (1: wills, 2: close); W->C: phase done */
	RI_AUTH,        /* C->W p: claim: an enhanced auth step's answer (continue, or any
			 * answer of a re-authentication) */
	RI_REAUTH,      /* W->C p: claim: a re-authentication step for the auth threads */
	/* session moves (eng_xfer.c), p: struct eng_xfer unless said otherwise */
	RI_ADOPTED,     /* W(new)->C: the new core adopted the session: move the index */
	RI_FENCE,       /* C->W: every core: routes before this saw the old index */
	RI_FENCE_ACK,   /* W->W(old): this core routes past the move */
	RI_FWD,         /* W(old)->W(new) p: struct eng_qent (msg reference), b: the session,
			 * a: XF_* flags: a message the old core still matched */
	RI_FWD_END,     /* W(old)->W(new): nothing more is forwarded */
};

/* A session move after a takeover (eng_xfer.c). Made by the old core; its fields are fixed
 * from then on except: subs (the control thread's, freed by it), acks (the old core's) and
 * epoch (written once by the control thread). Freed by the new core at RI_FWD_END. */
struct eng_xfer {
	_Atomic uint64_t epoch;    /* the move's route_epoch, 0 until the index moved */
	struct eng_client *old;    /* the forwarder on old_core (CS_MOVED) */
	struct eng_client *client; /* the session on new_core */
	uint16_t old_core;
	uint16_t new_core;
	uint32_t acks;             /* fences the old core has seen */
	struct eng_sub *subs;      /* copies of the filters the index moves */
};

enum {
	XF_SHARE = 1,    /* from a shared subscription: picked once, never also sent direct */
	XF_NO_LOCAL = 2, /* the subscription has No Local */
};

/* A filter list for RI_IDX_DEL. */
struct eng_filter_list {
	uint32_t count;
	struct eng_sub *head; /* owned: freed by the control thread */
};

/*
 * A CONNECT's trip through the control thread (claim, auth, takeover).
 * Owned by whoever holds the item that carries it; freed by the new core at the end.
 */
struct eng_claim {
	struct eng_client *client; /* on new_core; pinned by its pending_ops */
	uint64_t gen;
	uint64_t old_gen;
	uint16_t new_core;
	uint16_t old_core;
	uint8_t version;
	bool clean_start;
	bool has_username;
	bool has_password;
	bool found;        /* old core: the session existed and was shipped */
	uint8_t result;    /* CONNACK reason (MQTT 5 code; mapped for 3.x) */
	/* authentication (eng_auth.c) */
	bool authed;       /* the credentials were decided (result says how) */
	bool allow_anon;   /* allow_anonymous when submitted */
	bool reauth;       /* AUTH 0x19 on a live connection, not a CONNECT */
	uint8_t method;    /* enhanced authentication method index + 1, 0: none */
	uint8_t auth_rc;   /* enum tachyon_auth_rc of the last method step */
	uint32_t auth_step;
	uint8_t *auth_data;    /* the client's Authentication Data of this step */
	uint32_t auth_data_len;
	uint8_t *auth_out;     /* the method's answer data */
	uint32_t auth_out_len;
	struct eng_pwref *pw;  /* the password table the auth thread checks against */
	struct eng_claim *anext; /* auth queues */
	uint8_t auth_state[TACHYON_AUTH_STATE_MAX];
	uint32_t expiry_asked;  /* the CONNECT's session expiry and keep alive, for the CONNACK */
	uint16_t ka_asked;
	char peer[64];
	char *client_id;
	uint8_t *username;
	uint32_t username_len;
	uint8_t *password;
	uint32_t password_len;
	struct eng_acl_set *acl; /* control -> new core: the client's rules */
	struct eng_xfer *xfer;   /* old core -> new core: the move, when subscriptions moved */
	/* shipped session state (old core -> control -> new core) */
	struct eng_sub *subs;
	uint32_t nsubs;
	struct eng_qent *inf_head, *q_head; /* lists moved as they were */
	uint32_t inflight, q_count;
	uint64_t q_bytes;
	uint64_t *qos2_bits;
	uint32_t qos2_count;
	uint16_t next_pid;
	uint64_t pid_seq;
};

/* A SUBSCRIBE's trip through the control thread. */
struct eng_subreq_ent {
	uint8_t reason;     /* granted QoS or failure code, decided by the worker */
	bool add_index;     /* a new (session, filter): add core to mt_index */
	bool send_retained;
	bool shared;
	struct mt_sub_opts opts;
	struct eng_str filter; /* into the request's storage */
	struct eng_msg **retained; /* control -> worker: references to deliver */
	uint32_t nretained;
};

struct eng_subreq {
	struct eng_client *client; /* pinned by pending_ops */
	uint64_t gen;
	uint16_t core;
	uint16_t packet_id;
	uint32_t count;
	struct eng_subreq_ent *ents;
	uint8_t *storage;
};

/* ---------------------------------------------------------------------------------------------
 * A worker core.
 */
struct eng_overflow {
	struct eng_overflow *next;
	struct eng_ritem it;
};

struct eng_outq {
	struct eng_overflow *head, *tail; /* items waiting for room in the ring */
	uint32_t count;
};

/* One producing core's sending state (its thread only): parked items and who to wake. */
struct eng_src {
	struct eng_outq *outq; /* per destination (workers, then control) */
	uint64_t dirty;        /* workers pushed to since the last eng_post_flush() */
	bool dirty_ctl;
	uint32_t parked;
} __attribute__((aligned(ENG_CACHE_LINE)));

/* One size class of a worker's message blocks (eng_msg.c), touched by this worker only. */
struct eng_mpool {
	struct eng_msg *free;       /* blocks freed here */
	uint32_t free_n;
	struct eng_msg *back;       /* blocks other workers returned, taken from back[].head */
	uint32_t back_taken;        /* blocks used from back since the last exchange */
	/* Other workers' blocks freed here, a chain per home worker, sent home by
	 * ENG_RET_BATCH and at the end of every loop iteration (eng_msg_ret_flush) */
	struct eng_msg *ret_first[ENG_MAX_WORKERS], *ret_last[ENG_MAX_WORKERS];
	uint32_t ret_n[ENG_MAX_WORKERS];
	uint64_t ret_dirty;         /* homes with a chain pending */
};

/* The shared side of one class: where other workers return this worker's blocks. */
struct eng_mpool_back {
	_Atomic(struct eng_msg *) head;
	_Atomic uint32_t n;         /* blocks pushed onto head and not yet counted used */
};

struct eng_worker {
	struct tachyon *eng;
	unsigned id;
	pthread_t thread;
	struct ns_worker *nsw;
	struct mt_local *local;
	struct mt_share_ctx share_ctx;
	struct eng_wheel wheel;
	uint64_t now_ms;
	uint64_t next_gen;
	struct eng_client *clients; /* all live client objects */
	uint32_t nclients;
	struct eng_client **ctab;   /* client id -> client (sessions of this core) */
	uint32_t ctab_mask;
	uint32_t ctab_count;
	struct eng_mpool mp[ENG_MSG_CLASSES]; /* message blocks, by size class */
	uint8_t ret_dirty_cls;      /* classes with a chain to send home (eng_msg_ret_flush) */
	bool exiting;               /* eng_worker_destroy: foreign blocks are freed, not sent */
	struct eng_qent *qent_pool;
	uint32_t qent_pool_n;
	void *rx_pool;              /* free ENG_RX_SMALL buffers, linked through their first bytes */
	uint32_t rx_pool_n;
	uint8_t *scratch;           /* packet encoding */
	const uint8_t *cur_pkt;     /* bytes of the packet being handled (byte forwarding) */
	uint32_t cur_pkt_len;
	struct eng_client *dack_list; /* clients with held-back acks */
	struct eng_client *over_list; /* sessions whose queue is over its limit */
	struct eng_client *paused_list; /* publishers paused by QoS 0 overload */
	uint64_t slow_scan_ms;        /* next look for stuck sessions on over_list */
	uint64_t route_cores;         /* cores the last eng_route() reached */
	uint32_t shutdown_phase;
	uint64_t shutdown_deadline;
	/* sleep announcement: see eng_worker_wake() */
	alignas(ENG_CACHE_LINE) _Atomic bool sleeping;
	/* Sessions of this core whose queue is at its limit. Written by this worker only,
	 * read by every worker routing here (relaxed: a hint, read again at every publish). */
	alignas(ENG_CACHE_LINE) _Atomic uint32_t congested;
	/* This worker's pool blocks freed by other workers, by class: lock-free stacks they push
	 * whole chains onto (CAS) and this worker takes whole (exchange), so no ABA. */
	alignas(ENG_CACHE_LINE) struct eng_mpool_back back[ENG_MSG_CLASSES];
	alignas(ENG_CACHE_LINE) struct eng_stats stats;
};

/* ---------------------------------------------------------------------------------------------
 * The control thread's state and the engine.
 */
struct eng_reg_ent {
	struct eng_reg_ent *next;
	uint64_t gen;
	uint16_t core;
	char id[];
};

/* A password table shared with the auth threads: the last holder frees it (reload swaps). */
struct eng_pwref {
	_Atomic uint32_t refs;
	struct eng_passwd *pw;
};

struct eng_control {
	struct eng_reg_ent **reg;
	uint32_t reg_mask;
	uint32_t reg_count;
	struct eng_pwref *passwd;
	struct mt_share_ctx share_ctx; /* shared groups of what the control thread routes */
	struct eng_acl *acl;
	uint32_t acl_acks_pending;
	struct eng_acl *acl_old;
	uint64_t next_sys_ms;
	struct eng_stats stats;
	uint64_t retained_bytes;
};

/* ---------------------------------------------------------------------------------------------
 * Embedding (eng_hook.c, eng_host.c): hooks are written before tachyon_start() only and read
 * without synchronisation afterwards (pthread_create orders them before every worker).
 */
struct eng_hook {
	void *fn;
	void *ctx;
};

struct eng_method {
	tachyon_auth_method_fn fn;
	void *ctx;
	uint16_t len;
	char name[256];
};

struct eng_hooks {
	unsigned n_auth, n_acl, n_intercept, n_methods;
	struct eng_hook auth[TACHYON_HOOKS_MAX];
	struct eng_hook acl[TACHYON_HOOKS_MAX];
	struct eng_hook intercept[TACHYON_HOOKS_MAX];
	struct eng_method methods[TACHYON_HOOKS_MAX];
};

/* The host: its queue of publishes and (un)subscriptions, and its subscriptions. */
#define ENG_HOST_QUEUE 65536u

struct eng_host_sub {
	struct eng_host_sub *next;
	tachyon_msg_fn fn;
	void *ctx;
	uint16_t len;
	char filter[];
};

struct eng_hostq;

struct eng_host {
	struct eng_hostq *q;    /* bounded multi-producer queue of requests (eng_host.c) */
	struct mt_local *local; /* filter -> struct eng_host_sub (control thread) */
	struct eng_host_sub *subs;
};

struct tachyon {
	struct eng_config cfg;
	struct eng_hooks hooks;
	struct eng_host host;
	struct eng_auth *auth;
	struct eng_plugin *plugins;
	uint64_t worker_bits;       /* the cores of mt_index that are workers (not the host) */
	struct mt_config mtcfg;
	struct ns_transport *ns;
	unsigned nworkers;
	struct eng_worker **workers;
	struct eng_src *srcs;       /* [nworkers + 1] */
	struct eng_ring **rings;    /* [(src) * (nworkers + 1) + dst]; index nworkers = control */
	struct mt_index *index;
	struct mt_retain *retain;
	struct eng_control ctl;
	uint64_t start_ms;
	int ctl_evfd;
	bool started;
	int reload_argc;
	char **reload_argv;
	_Atomic bool stop_req;      /* set by tachyon_stop(); read by the control loop */
	_Atomic bool reload_req;    /* set by tachyon_reload(); exchanged by the control loop */
	_Atomic bool workers_exit;  /* control -> workers: leave the loop (release/acquire) */
	/* Bumped by the control thread at each session move, read by every route (eng_xfer.c) */
	alignas(ENG_CACHE_LINE) _Atomic uint64_t route_epoch;
	alignas(ENG_CACHE_LINE) _Atomic bool ctl_sleeping;
};

static inline struct eng_ring *eng_ring_of(struct tachyon *e, unsigned src, unsigned dst)
{
	return e->rings[src * (e->nworkers + 1) + dst];
}

/* ---------------------------------------------------------------------------------------------
 * Functions shared between the engine's files.
 */
uint64_t eng_now_ms(void);
uint64_t eng_hash(const void *p, size_t len);

/* eng_core.c: cross-core sending. src is the calling core (nworkers for control). */
int eng_post(struct tachyon *e, unsigned src, unsigned dst, const struct eng_ritem *it,
	     bool may_drop);
void eng_post_flush(struct tachyon *e, unsigned src);
void eng_wake_dst(struct tachyon *e, unsigned dst);

/* eng_msg.c */
struct eng_msg *eng_msg_new(struct eng_worker *w, const struct eng_publish *pub,
			    const struct eng_str *topic, uint8_t version, const uint8_t *raw,
			    size_t rawlen, uint64_t now_ms);
static inline void eng_msg_ref(struct eng_msg *m)
{
	/* relaxed: the caller already holds a reference, which orders everything needed */
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
}
void eng_msg_unref(struct eng_msg *m);
/* Sends the pool blocks freed here home (eng_msg.c); once per loop iteration. */
void eng_msg_ret_flush(struct eng_worker *w);
struct eng_qent *eng_qent_get(struct eng_worker *w);
/* A cleared entry holding a reference to m for delivery with qos, retain and (up to
 * ENG_QENT_IDS of) ids; NULL when out of memory. */
struct eng_qent *eng_qent_msg(struct eng_worker *w, struct eng_msg *m, uint8_t qos, bool retain,
			      const uint32_t *ids, uint32_t nids);
void eng_qent_put(struct eng_worker *w, struct eng_qent *q);
void eng_pools_free(struct eng_worker *w);
extern _Thread_local struct eng_worker *eng_cur_worker;

/* eng_worker.c */
void *eng_worker_main(void *arg);
struct eng_worker *eng_worker_create(struct tachyon *e, unsigned id);
void eng_worker_destroy(struct eng_worker *w);
int eng_send_raw(struct eng_client *c, const struct iovec *iov, unsigned n, bool control);
int eng_send_pkt(struct eng_client *c, struct eng_packet *pkt);
void eng_client_close(struct eng_client *c, uint8_t reason, const char *why);
void eng_client_put(struct eng_client *c);

/* Keeps c allocated across a call that may end its session (pending_ops is the pin). */
static inline void eng_client_pin(struct eng_client *c)
{
	c->pending_ops++;
}

static inline void eng_client_unpin(struct eng_client *c)
{
	c->pending_ops--;
	eng_client_put(c);
}
void eng_ctab_insert(struct eng_worker *w, struct eng_client *c);
void eng_ctab_remove(struct eng_worker *w, struct eng_client *c);
struct eng_client *eng_ctab_find(struct eng_worker *w, const char *id, size_t len);
void eng_client_resume_rx(struct eng_client *c);
void eng_rx_release(struct eng_client *c);
void eng_rx_pool_free(struct eng_worker *w);

/* eng_connect.c */
int eng_handle_connect(struct eng_client *c, const struct eng_packet *pkt);
void eng_connect_answer(struct eng_worker *w, struct eng_claim *cl);
void eng_takeover(struct eng_worker *w, struct eng_claim *cl);
int eng_handle_disconnect(struct eng_client *c, const struct eng_packet *pkt);
int eng_handle_auth(struct eng_client *c, const struct eng_packet *pkt);
/* RI_AUTH: a method step's answer for c (continue during CONNECT, or a re-authentication). */
void eng_auth_answer(struct eng_worker *w, struct eng_claim *cl);
/* A packet other than AUTH / DISCONNECT while c is in CS_AUTH: protocol error. */
int eng_auth_expected(struct eng_client *c);
/* Drops a re-authentication parked on c (its connection is going). */
void eng_reauth_drop(struct eng_client *c);
void eng_conn_lost(struct eng_client *c, bool publish_will);
void eng_timer_fire(struct eng_timer *t, void *ctx);
void eng_will_publish(struct eng_client *c);
void eng_session_end(struct eng_client *c);
void eng_claim_free(struct eng_claim *cl);

/* eng_publish.c */
int eng_handle_publish(struct eng_client *c, const struct eng_packet *pkt);
int eng_handle_ack(struct eng_client *c, const struct eng_packet *pkt);
bool eng_route(struct eng_worker *w, struct eng_msg *m, const void *publisher);
void eng_route_local(struct eng_worker *w, struct eng_msg *m, const void *publisher);
void eng_route_share(struct eng_worker *w, struct eng_msg *m, uint64_t group, uint64_t tried);
void eng_deliver(struct eng_client *c, struct eng_msg *m, uint8_t qos, bool retain,
		 const uint32_t *ids, uint32_t nids);
void eng_pump(struct eng_client *c);
/* Keeps c->over and the worker's congestion count in step with c's queue level. */
void eng_queue_level(struct eng_client *c);
/* Sends the acks held back for publishers whose target cores are no longer congested; all of
 * them when force (shutdown). Worker thread, once per loop. */
void eng_dack_flush(struct eng_worker *w, bool force);
/* Forgets c's held-back acks (its connection is gone) and takes it off the worker's list. */
void eng_dack_drop(struct eng_client *c);
/* QoS 0 overload: resumes the paused publishers whose target cores have room again (every
 * loop), finds sessions that take nothing (stuck) with a full queue (every 100 ms), and
 * takes c off the paused list (c is being freed). Worker thread. */
void eng_paused_flush(struct eng_worker *w);
void eng_slow_scan(struct eng_worker *w);
void eng_paused_drop(struct eng_client *c);
void eng_resend_inflight(struct eng_client *c);
/* t_retry fired: resends what has waited retry_interval for its ack (MQTT 3.x only). */
void eng_retry_fire(struct eng_client *c);
void eng_queue_free(struct eng_worker *w, struct eng_qent *q);

/* eng_xfer.c: moving a session's deliveries to its new core without loss or duplicates */
struct eng_xfer *eng_xfer_new(struct eng_client *old, struct eng_claim *cl);
void eng_xfer_adopted(struct eng_worker *w, struct eng_client *c, struct eng_xfer *xf);
void eng_xfer_move(struct tachyon *e, struct eng_xfer *xf);
void eng_xfer_fence(struct eng_worker *w, struct eng_xfer *xf);
void eng_xfer_end(struct eng_worker *w, struct eng_xfer *xf);
void eng_xfer_forward(struct eng_client *fwd, struct eng_msg *m, uint8_t qos, bool retain,
		      const uint32_t *ids, uint32_t nids, uint32_t flags);
void eng_xfer_fwd_in(struct eng_worker *w, const struct eng_ritem *it);
bool eng_xfer_direct_ok(const struct eng_client *c, const struct eng_msg *m);

/* eng_subscribe.c */
int eng_handle_subscribe(struct eng_client *c, const struct eng_packet *pkt);
int eng_handle_unsubscribe(struct eng_client *c, const struct eng_packet *pkt);
void eng_suback_answer(struct eng_worker *w, struct eng_subreq *r);
void eng_subs_drop(struct eng_client *c, bool tell_control);
void eng_subreq_free(struct eng_subreq *r);

/* eng_control.c */
int eng_control_init(struct tachyon *e, char *err, size_t errlen);
void eng_control_fini(struct tachyon *e);
int eng_control_run(struct tachyon *e);
/* Routes a message made by the control thread (host, $SYS) to the workers, the host and the
 * retained store; takes the caller's reference. */
void eng_ctl_route(struct tachyon *e, struct eng_msg *m);
void eng_ctl_wake(struct tachyon *e);

/* eng_host.c: the host's queue (any thread in, the control thread out) and subscriptions. */
int eng_host_init(struct tachyon *e);
void eng_host_fini(struct tachyon *e);
/* Control thread: handles up to budget queued requests; returns how many. */
unsigned eng_host_drain(struct tachyon *e, unsigned budget);
bool eng_host_empty(struct tachyon *e);
/* Control thread: calls the host subscriptions m matches. */
void eng_host_deliver(struct tachyon *e, const struct eng_msg *m, bool retained);

/* eng_hook.c */
/* Worker: may c publish to topic / subscribe to filter (hooks, then the ACL)? */
bool eng_may_publish(struct eng_client *c, const struct eng_str *topic, uint8_t qos, bool retain);
bool eng_may_subscribe(struct eng_client *c, const char *filter, size_t len, uint8_t qos);
/* Worker: true if an intercept hook drops this inbound publish. */
bool eng_intercept_drop(struct eng_client *c, const struct eng_publish *pub,
			const struct eng_str *topic);
/* Index of method name (+ 1), 0 if none is registered under it. */
uint8_t eng_method_find(const struct tachyon *e, const uint8_t *name, size_t len);
/* A message view for host callbacks and hooks; props may be NULL (none). */
void eng_message_view(struct tachyon_message *tm, const struct eng_str *topic,
		      const struct eng_str *payload, const struct eng_props *props, uint8_t qos,
		      bool retain, uint32_t expiry_left);

/* eng_auth.c: authentication off the control thread. */
int eng_auth_start(struct tachyon *e, char *err, size_t errlen);
void eng_auth_stop(struct tachyon *e);
/* Control thread: does this claim need the auth threads (password check, hooks, method)? */
bool eng_auth_needs_thread(struct tachyon *e, const struct eng_claim *cl);
/* Control thread: the built-in decision (no password to check): allow_anonymous. */
uint8_t eng_auth_inline(struct tachyon *e, const struct eng_claim *cl);
/* Control thread: queues the claim; -EBUSY when the queue is full. */
int eng_auth_submit(struct tachyon *e, struct eng_claim *cl);
/* Control thread: hands each decided claim to done(); returns how many. */
unsigned eng_auth_drain(struct tachyon *e, void (*done)(struct tachyon *, struct eng_claim *));
bool eng_auth_idle(struct tachyon *e);
struct eng_pwref *eng_pwref_new(struct eng_passwd *pw);
void eng_pwref_put(struct eng_pwref *r);

/* eng_plugin.c */
int eng_plugins_load(struct tachyon *e, char *err, size_t errlen);
void eng_plugins_unload(struct tachyon *e);

#endif /* ENG_INTERNAL_H */

/* SPDX-License-Identifier: MIT */
/*
 * libtachyon: the MQTT broker engine as a library. One public header, opaque handle.
 *
 * Life cycle: tachyon_create() validates the configuration, opens the transport (listeners),
 * allocates every core and loads the plugins; tachyon_start() starts the worker and auth
 * threads; tachyon_run() runs the control loop on the calling thread until tachyon_stop() is
 * called (from any thread or a signal handler), then shuts down gracefully (wills per the
 * spec, DISCONNECT 0x8B to MQTT 5 clients, output flushed) and joins the workers and auth
 * threads; tachyon_destroy() frees everything (plugins' cleanup last).
 *
 * Embedding (below): the host publishes (tachyon_publish) and subscribes with a callback
 * (tachyon_subscribe); hooks decide authentication, authorisation and the fate of inbound
 * PUBLISHes; enhanced authentication methods (MQTT 5 AUTH) are plugged in by name; shared
 * objects named by "plugin" options are loaded at tachyon_create() and register the same hooks
 * (plugin ABI at the end).
 *
 * Threads you will meet in callbacks:
 * - the control thread: the thread that calls tachyon_run(); it delivers host subscriptions;
 * - the worker threads ("tachyon-wN"): every client's packets; authorisation and intercept
 *   hooks run there, concurrently on all workers;
 * - the auth threads ("tachyon-auth", auth_threads of them): password checks, the
 *   authentication hook and enhanced authentication methods.
 * A callback must not block for long (a worker hook stalls every client of that worker) and
 * must not call tachyon_run(), tachyon_destroy() or the registration functions.
 */
#ifndef TACHYON_H
#define TACHYON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct tachyon;
struct eng_config;

/* Symbols a plugin may call: visible even though the library is built with hidden visibility. */
#define TACHYON_API __attribute__((visibility("default")))

/*
 * Creates an engine from cfg (copied). Returns NULL with a message in err[0..errlen) when the
 * configuration is unusable, a file it names cannot be read, or the transport cannot start
 * (e.g. "--backend dpdk" in a build without DPDK). Call from the thread that will run
 * tachyon_run().
 */
TACHYON_API struct tachyon *tachyon_create(const struct eng_config *cfg, char *err, size_t errlen);

/* The TCP port the listeners are bound to. */
TACHYON_API uint16_t tachyon_port(const struct tachyon *t);

/* Starts the worker threads. Returns 0 or -errno. */
TACHYON_API int tachyon_start(struct tachyon *t);

/*
 * Runs the control loop on the calling thread until tachyon_stop(); then shuts down
 * gracefully and returns 0 (or -errno if the shutdown failed).
 */
TACHYON_API int tachyon_run(struct tachyon *t);

/* Asks the engine to stop. Any thread; async-signal-safe. */
TACHYON_API void tachyon_stop(struct tachyon *t);

/*
 * Asks the control thread to reload what can be reloaded: the password file, the ACL file and
 * the log level, from the configuration file when one was given to tachyon_set_reload_args().
 * Any thread; async-signal-safe.
 */
TACHYON_API void tachyon_reload(struct tachyon *t);

/* Remembers the command line, re-parsed (file + flags) on reload. argv is borrowed for the
 * engine's lifetime. Call before tachyon_run(). */
TACHYON_API void tachyon_set_reload_args(struct tachyon *t, int argc, char **argv);

/* Frees the engine. tachyon_run() must have returned (or never been called). */
TACHYON_API void tachyon_destroy(struct tachyon *t);

/* ---------------------------------------------------------------------------------------------
 * Host publish and subscribe.
 */

/* A byte string view: not NUL-terminated. */
struct tachyon_str {
	const char *p;
	size_t len;
};

struct tachyon_user_prop {
	const char *key; /* NUL-terminated UTF-8 */
	const char *value;
};

/* MQTT 5 properties of a host publish; every field is optional (zero / NULL: absent). They
 * reach MQTT 5 subscribers as they are; MQTT 3.x subscribers get the topic and payload. */
struct tachyon_pub_props {
	uint32_t message_expiry;        /* seconds, 0: never expires */
	const char *content_type;       /* NUL-terminated, NULL: none */
	const char *response_topic;     /* a topic name, NULL: none */
	const void *correlation_data;   /* NULL: none */
	size_t correlation_len;
	bool payload_utf8;              /* Payload Format Indicator 1 */
	const struct tachyon_user_prop *user; /* user_count entries, in order */
	unsigned user_count;
};

/*
 * Publishes a message as the broker itself, routed like a client's publish: every matching
 * subscriber on every worker and the host's own subscriptions receive it at
 * min(qos, their subscription's QoS); retain stores (or, with an empty payload, clears) the
 * retained message of the topic. props may be NULL.
 *
 * Any thread, also a host subscription callback; before tachyon_start() too (routed once
 * tachyon_run() runs). Never blocks: the message is copied into one allocation on the calling
 * thread and put on the host queue (bounded multi-producer queue drained by the control
 * thread), so nothing the caller passes is kept.
 * Returns 0 (accepted; delivery follows the QoS to each subscriber), -EINVAL (not a valid
 * topic name, qos > the configured maximum, retain while retained messages are unavailable,
 * a property that is not valid MQTT, e.g. bad UTF-8), -EMSGSIZE (over max_packet_size),
 * -EAGAIN (the host queue is full: retry later), -ENOMEM, -ESHUTDOWN (the engine is stopping).
 */
TACHYON_API int tachyon_publish(struct tachyon *t, const char *topic, const void *payload,
				size_t len, int qos, bool retain,
				const struct tachyon_pub_props *props);

/* A message as a host subscription callback sees it. Everything is borrowed for the duration
 * of the callback only: copy what you keep. */
struct tachyon_message {
	struct tachyon_str topic;
	struct tachyon_str payload;
	uint8_t qos;                    /* as published */
	bool retain;                    /* true for retained messages sent on subscribe */
	uint32_t message_expiry;        /* seconds left, 0: none */
	struct tachyon_str content_type;      /* len 0: absent */
	struct tachyon_str response_topic;
	struct tachyon_str correlation_data;
	const void *props_raw_;         /* internal: the MQTT 5 property block (user properties) */
	size_t props_raw_len_;
	const char *client_id;          /* publisher's client id (intercept hook), NULL otherwise */
	const char *username;           /* publisher's user name (intercept hook), NULL: none */
};

/* Walks the user properties of m in order: start with *cursor = 0; returns false at the end. */
TACHYON_API bool tachyon_message_user_prop(const struct tachyon_message *m, size_t *cursor,
					   struct tachyon_str *key, struct tachyon_str *value);

/*
 * Host subscription callback. Runs on the control thread (the thread in tachyon_run()), one
 * message at a time, in the order the control thread receives them (per publisher order is
 * kept). It may call tachyon_publish(), tachyon_subscribe() and tachyon_unsubscribe() (queued,
 * applied after it returns); it must not block: CONNECTs, SUBSCRIBEs and takeovers wait
 * behind it. m and everything it points to are borrowed until the callback returns.
 */
typedef void (*tachyon_msg_fn)(void *ctx, const struct tachyon_message *m);

#define TACHYON_SUB_RETAINED 1u /* deliver the matching retained messages on subscribe */

/*
 * Subscribes the host to filter (a topic filter with + and #; not $share/...): every message
 * routed to it calls fn(ctx, message) (once per matching host filter). Subscribing again to
 * the same filter replaces fn/ctx.
 * Any thread once the engine runs: the request is queued to the control thread (with the
 * host publishes, in order) and applies when handled; a message routed after that point
 * reaches the host. Before tachyon_start() (from the thread that set the engine up) it
 * applies at once, and TACHYON_SUB_RETAINED calls fn on the calling thread.
 * Returns 0, -EINVAL (bad filter or flags), -EAGAIN (host queue full), -ENOMEM, -ESHUTDOWN.
 */
TACHYON_API int tachyon_subscribe(struct tachyon *t, const char *filter, unsigned flags,
				  tachyon_msg_fn fn, void *ctx);

/* Removes the host's subscription to filter (nothing if there is none). Same threading. */
TACHYON_API int tachyon_unsubscribe(struct tachyon *t, const char *filter);

/* ---------------------------------------------------------------------------------------------
 * Hooks. Registered after tachyon_create() and before tachyon_start() (afterwards: -EBUSY);
 * up to TACHYON_HOOKS_MAX of each kind, consulted in registration order: the first verdict
 * other than TACHYON_DEFER decides, and when all defer, the built-in rules decide.
 */
#define TACHYON_HOOKS_MAX 8

enum tachyon_verdict {
	TACHYON_DEFER = 0, /* no opinion: the next hook, then the built-in rules */
	TACHYON_ALLOW = 1,
	TACHYON_DENY = 2,
};

struct tachyon_auth_req {
	const char *client_id;
	struct tachyon_str username;  /* p NULL: no user name */
	struct tachyon_str password;  /* p NULL: no password (binary, not NUL-terminated) */
	const char *peer;             /* "address:port" */
	uint8_t protocol_version;     /* 3 (MQTT 3.1), 4 (3.1.1), 5 */
};

/*
 * Authentication of a CONNECT (not used when the CONNECT names an enhanced authentication
 * method: the method decides). Runs on an auth thread (several at once when auth_threads > 1).
 * Return TACHYON_ALLOW, TACHYON_DENY (set *reason to an MQTT 5 CONNACK reason code >= 0x80, e.g.
 * 0x86 bad user name or password, 0x8A banned; it is 0x87 not authorized when left alone;
 * mapped for 3.x clients) or TACHYON_DEFER (the password file and allow_anonymous decide).
 * req is borrowed until the hook returns.
 */
typedef int (*tachyon_auth_fn)(void *ctx, const struct tachyon_auth_req *req, uint8_t *reason);
TACHYON_API int tachyon_add_auth_hook(struct tachyon *t, tachyon_auth_fn fn, void *ctx);

enum tachyon_acl_op {
	TACHYON_ACL_PUBLISH = 1,   /* topic: the topic name of an inbound PUBLISH */
	TACHYON_ACL_SUBSCRIBE = 2, /* topic: a SUBSCRIBE's topic filter ($share/... as sent) */
};

struct tachyon_acl_req {
	int op;                   /* enum tachyon_acl_op */
	const char *client_id;
	const char *username;     /* NULL: none */
	struct tachyon_str topic;
	uint8_t qos;
	bool retain;              /* PUBLISH only */
};

/*
 * Authorisation of a PUBLISH or of one SUBSCRIBE filter, where the built-in ACL is checked:
 * on the client's worker thread, concurrently on every worker, so it must be thread-safe and
 * quick (it runs per message). TACHYON_DENY refuses (PUBACK/PUBREC 0x87, SUBACK 0x87 or 0x80
 * for 3.x; a QoS 0 publish is dropped), TACHYON_ALLOW skips the built-in ACL, TACHYON_DEFER
 * leaves it to the next hook and the ACL file. req is borrowed until the hook returns.
 */
typedef int (*tachyon_acl_fn)(void *ctx, const struct tachyon_acl_req *req);
TACHYON_API int tachyon_add_acl_hook(struct tachyon *t, tachyon_acl_fn fn, void *ctx);

enum tachyon_intercept {
	TACHYON_PASS = 0,
	TACHYON_DROP = 1, /* not routed; the publisher is still acknowledged; counted */
};

/*
 * Inspection of every inbound PUBLISH packet (after the ACL, before routing; not wills, not
 * host publishes), on the publisher's worker thread (thread-safe and quick, as above).
 * m->client_id / m->username name the publisher. Returns enum tachyon_intercept. m is
 * borrowed until the hook returns.
 */
typedef int (*tachyon_intercept_fn)(void *ctx, const struct tachyon_message *m);
TACHYON_API int tachyon_add_intercept_hook(struct tachyon *t, tachyon_intercept_fn fn, void *ctx);

/* ---------------------------------------------------------------------------------------------
 * Enhanced authentication (MQTT 5 AUTH): a method is a callback registered under the
 * Authentication Method name a client puts in its CONNECT. A CONNECT naming a method nobody
 * registered gets CONNACK 0x8C (bad authentication method).
 */
#define TACHYON_AUTH_STATE_MAX 256  /* per-exchange scratch kept across steps */
#define TACHYON_AUTH_DATA_MAX 4096  /* largest Authentication Data a method may answer */

enum tachyon_auth_rc {
	TACHYON_AUTH_CONTINUE = 1, /* send AUTH 0x18 with out[0..out_len), wait for the client */
	TACHYON_AUTH_SUCCESS = 2,  /* CONNACK 0x00 (or AUTH 0x00 when re-authenticating), with
				    * out[0..out_len) as Authentication Data when out_len > 0 */
	TACHYON_AUTH_FAIL = 3,     /* CONNACK (or DISCONNECT when re-authenticating) with reason */
};

struct tachyon_auth_step {
	/* in */
	const char *method;
	const char *client_id;
	struct tachyon_str username;  /* p NULL: none */
	bool reauth;                  /* an exchange started by AUTH 0x19 on a live connection */
	unsigned step;                /* 0: the CONNECT (or AUTH 0x19), then 1, 2, ... */
	struct tachyon_str data;      /* the client's Authentication Data (len 0: none) */
	uint8_t *state;               /* TACHYON_AUTH_STATE_MAX bytes: zero at step 0, kept */
	/* out */
	uint8_t *out;                 /* TACHYON_AUTH_DATA_MAX bytes */
	size_t out_len;               /* 0: no Authentication Data */
	uint8_t reason;               /* FAIL: reason code >= 0x80 (0x87 when left 0) */
};

/*
 * Registers method (copied; at most 255 bytes). fn runs on an auth thread for every step of
 * an exchange; s is borrowed until it returns; it returns enum tachyon_auth_rc.
 * Returns 0, -EINVAL, -EEXIST (already registered), -ENOSPC (TACHYON_HOOKS_MAX methods), -EBUSY.
 */
typedef int (*tachyon_auth_method_fn)(void *ctx, struct tachyon_auth_step *s);
TACHYON_API int tachyon_add_auth_method(struct tachyon *t, const char *method,
					tachyon_auth_method_fn fn, void *ctx);

/* ---------------------------------------------------------------------------------------------
 * Plugin ABI. A plugin is a shared object named by a "plugin PATH" option (repeatable);
 * "plugin_opt_NAME VALUE" lines after it are its options. tachyon_create() loads each one
 * (dlopen), checks that it exports
 *     const uint32_t tachyon_plugin_abi = TACHYON_PLUGIN_ABI;
 * and calls its tachyon_plugin_init(), which registers hooks with the functions above and
 * returns 0 (or -errno to stop the start with an error). The optional
 * tachyon_plugin_cleanup(data) runs in tachyon_destroy() after every thread has stopped.
 * The ABI number changes whenever a structure or a signature in this header changes.
 */
#define TACHYON_PLUGIN_ABI 1u

struct tachyon_plugin_opt {
	const char *key; /* NAME of plugin_opt_NAME */
	const char *value;
};

struct tachyon_plugin_info {
	uint32_t abi;         /* TACHYON_PLUGIN_ABI of the loading engine */
	const char *path;
	unsigned nopts;
	const struct tachyon_plugin_opt *opts; /* borrowed during tachyon_plugin_init() only */
};

typedef int (*tachyon_plugin_init_fn)(struct tachyon *t, const struct tachyon_plugin_info *info,
				      void **data);
typedef void (*tachyon_plugin_cleanup_fn)(void *data);

/* What a plugin defines (declared here so that its definitions are checked against them; the
 * engine itself only looks them up with dlsym()). */
extern const uint32_t tachyon_plugin_abi;
int tachyon_plugin_init(struct tachyon *t, const struct tachyon_plugin_info *info, void **data);
void tachyon_plugin_cleanup(void *data);

#ifdef __cplusplus
}
#endif

#endif /* TACHYON_H */

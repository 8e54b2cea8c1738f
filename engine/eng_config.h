/* SPDX-License-Identifier: MIT */
/*
 * Broker configuration: every option with its type, range and default in one table, read
 * from a file in the familiar "key value" style (one option per line, '#' comments) and from
 * command-line flags, which override the file. Errors name the file, the line and the rule.
 *
 * Threading: parsing runs on the control thread at start-up and on reload; the resulting
 * struct is plain data that workers read through their own copy.
 */
#ifndef ENG_CONFIG_H
#define ENG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ENG_CONFIG_STR 256
#define ENG_CONFIG_ARGS 1024
#define ENG_CONFIG_PLUGINS 4096

enum eng_backend {
	ENG_BACKEND_KERNEL = 0,
	ENG_BACKEND_DPDK = 1,
};

enum eng_drop_policy {
	ENG_DROP_NEWEST = 0, /* refuse what arrives when the queue is full */
	ENG_DROP_OLDEST = 1, /* make room by dropping the oldest queued message */
};

enum eng_qos0_overload {
	ENG_QOS0_DROP = 0,  /* drop QoS 0 for a full queue or ring, counted */
	ENG_QOS0_PAUSE = 1, /* stop reading the publishers until the congestion clears */
};

enum eng_log_level {
	ENG_LOG_ERROR = 0,
	ENG_LOG_WARNING = 1,
	ENG_LOG_NOTICE = 2,
	ENG_LOG_INFO = 3,
	ENG_LOG_DEBUG = 4,
};

struct eng_config {
	/* listener and transport */
	char bind[ENG_CONFIG_STR];
	uint32_t port;
	uint32_t workers; /* 0: one per online CPU */
	uint32_t backend; /* enum eng_backend */
	char dpdk_args[ENG_CONFIG_ARGS];
	char ip[ENG_CONFIG_STR];
	char gateway[ENG_CONFIG_STR];
	/* limits */
	uint32_t max_connections;
	uint32_t max_packet_size;
	uint32_t max_topic_levels;
	uint32_t max_topic_length;
	uint32_t max_subscriptions_per_client;
	uint32_t receive_maximum;     /* inbound QoS 1/2 inflight per client (ours) */
	uint32_t max_inflight;        /* outbound inflight cap per client */
	uint32_t max_queued_messages; /* per session */
	uint32_t max_queued_bytes;    /* per session */
	bool queue_qos0_offline;
	uint32_t drop_policy; /* enum eng_drop_policy */
	uint32_t qos0_overload;         /* enum eng_qos0_overload */
	uint32_t slow_consumer_timeout; /* seconds without progress before a full queue drops */
	uint32_t topic_alias_maximum;     /* inbound: aliases a client may set */
	uint32_t topic_alias_maximum_out; /* outbound: aliases the broker sets, 0: none */
	uint32_t max_qos;
	bool retain_available;
	uint32_t max_retained_messages;
	uint64_t max_retained_bytes;
	uint32_t max_session_expiry; /* seconds; caps what clients ask */
	uint32_t max_keepalive;      /* seconds; 0: accept what clients ask */
	uint32_t connect_timeout;    /* seconds to wait for CONNECT */
	uint32_t retry_interval;     /* seconds; 3.x resend of unacknowledged, 0: on reconnect only */
	/* security */
	bool allow_anonymous;
	char password_file[ENG_CONFIG_STR];
	char acl_file[ENG_CONFIG_STR];
	uint32_t auth_threads; /* threads checking passwords and running auth hooks */
	uint32_t auth_queue;   /* CONNECTs waiting for an auth thread; past it 0x89 */
	uint32_t ring_size;    /* items per ring between two cores, 0: by worker count */
	/* plugins: "plugin PATH" (repeatable) and "plugin_opt_NAME VALUE" (for the plugin
	 * above it), kept in order as lines "P<path>" and "O<name>=<value>" */
	char plugins[ENG_CONFIG_PLUGINS];
	/* operations */
	uint32_t log_level; /* enum eng_log_level */
	uint32_t sys_interval; /* seconds between $SYS updates, 0: off */
};

/* Fills cfg with the defaults. */
void eng_config_defaults(struct eng_config *cfg);

/*
 * Sets one option from its text value (the same words as in the file). Returns 0, or -ENOENT
 * for an unknown key, -EINVAL for a bad value, with a message in err.
 */
int eng_config_set(struct eng_config *cfg, const char *key, const char *value, char *err,
		   size_t errlen);

/*
 * Parses configuration text (name is used in messages: "tachyon.conf:12: ..."). Stops at the
 * first error and returns -EINVAL with the message in err. text need not be NUL-terminated.
 */
int eng_config_parse(struct eng_config *cfg, const char *text, size_t len, const char *name,
		     char *err, size_t errlen);

/* Reads and parses a file; -errno if it cannot be read. */
int eng_config_load(struct eng_config *cfg, const char *path, char *err, size_t errlen);

/*
 * Applies command-line arguments: --config FILE is read first wherever it appears, then the
 * flags in order, so flags override the file. Returns 0, 1 if --help was asked (usage is
 * printed to out), or a negative errno with a message in err.
 */
int eng_config_args(struct eng_config *cfg, int argc, char **argv, FILE *out, char *err,
		    size_t errlen);

/* Prints the flags and every option with its default. */
void eng_config_usage(FILE *out, const char *prog);

#ifdef __cplusplus
}
#endif

#endif /* ENG_CONFIG_H */

/* SPDX-License-Identifier: MIT */
/*
 * Configuration: one table describes every option (name, type, range, help), and the file
 * parser, the command-line flags and the usage text all work from it.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "eng_config.h"
#include "eng_file.h"

enum opt_type {
	OT_U32,
	OT_U64,
	OT_BOOL,
	OT_STR,
	OT_ENUM,
};

struct opt {
	const char *name;
	uint8_t type;
	uint16_t offset;
	uint16_t size;      /* OT_STR: buffer size */
	uint64_t min, max;  /* OT_U32, OT_U64 */
	const char *const *words; /* OT_ENUM: NULL-terminated, value = index */
	const char *help;
};

static const char *const backend_words[] = {"kernel", "dpdk", NULL};
static const char *const drop_words[] = {"newest", "oldest", NULL};
static const char *const qos0_words[] = {"drop", "pause", NULL};
static const char *const level_words[] = {"error", "warning", "notice", "info", "debug", NULL};

#define OFF(f) (uint16_t) offsetof(struct eng_config, f)
#define U32(n, f, lo, hi, h) {n, OT_U32, OFF(f), 0, lo, hi, NULL, h}
#define U64(n, f, lo, hi, h) {n, OT_U64, OFF(f), 0, lo, hi, NULL, h}
#define BOOL(n, f, h) {n, OT_BOOL, OFF(f), 0, 0, 1, NULL, h}
#define STR(n, f, h) {n, OT_STR, OFF(f), (uint16_t)sizeof(((struct eng_config *)0)->f), 0, 0, NULL, h}
#define ENUM(n, f, w, h) {n, OT_ENUM, OFF(f), 0, 0, 0, w, h}

static const struct opt opts[] = {
	STR("bind", bind, "listen address (numeric IPv4 or IPv6)"),
	U32("port", port, 1, 65535, "listen port"),
	U32("workers", workers, 0, 256, "worker cores (0: one per online CPU)"),
	ENUM("backend", backend, backend_words, "transport: kernel sockets or DPDK"),
	STR("dpdk_args", dpdk_args, "DPDK EAL arguments (dpdk backend)"),
	STR("ip", ip, "local address/prefix length of the DPDK port, e.g. 10.0.0.2/24"),
	STR("gateway", gateway, "default gateway of the DPDK port"),
	U32("max_connections", max_connections, 1, 100000000, "connections at most"),
	U32("max_packet_size", max_packet_size, 64, 268435460, "largest packet accepted (bytes)"),
	U32("max_topic_levels", max_topic_levels, 1, 65535, "levels in a topic at most"),
	U32("max_topic_length", max_topic_length, 1, 65535, "bytes in a topic at most"),
	U32("max_subscriptions_per_client", max_subscriptions_per_client, 1, 100000000,
	    "subscriptions per client at most"),
	U32("receive_maximum", receive_maximum, 1, 65535,
	    "inbound QoS 1/2 messages a client may have unacknowledged"),
	U32("max_inflight", max_inflight, 1, 65535,
	    "outbound QoS 1/2 messages unacknowledged per client (capped by the client's)"),
	U32("max_queued_messages", max_queued_messages, 0, 100000000,
	    "messages queued per session beyond the inflight window"),
	U32("max_queued_bytes", max_queued_bytes, 0, 4000000000u, "bytes queued per session"),
	BOOL("queue_qos0_offline", queue_qos0_offline,
	     "queue QoS 0 messages for offline persistent sessions"),
	ENUM("drop_policy", drop_policy, drop_words, "which message a full queue drops"),
	ENUM("qos0_overload", qos0_overload, qos0_words,
	     "QoS 0 for a subscriber whose queue is full: drop it (counted; publishers never "
	     "wait for others), or pause reading the publishers that send there until it has "
	     "room (no loss while it reads; memory stays bounded)"),
	U32("slow_consumer_timeout", slow_consumer_timeout, 1, 3600,
	    "seconds an online session with a full queue may take nothing before it stops "
	    "holding back publishers (QoS 1/2 acks, paused QoS 0) and its queue drops instead"),
	U32("topic_alias_maximum", topic_alias_maximum, 0, 65535,
	    "topic aliases a client may use towards the broker"),
	U32("topic_alias_maximum_out", topic_alias_maximum_out, 0, 65535,
	    "topic aliases the broker sets towards an MQTT 5 client (at most the client's "
	    "Topic Alias Maximum; free ones first, then the least recently sent is reused; "
	    "topics over 112 bytes go without), 0: none"),
	U32("max_qos", max_qos, 0, 2, "highest QoS the broker accepts"),
	BOOL("retain_available", retain_available, "whether retained messages are supported"),
	U32("max_retained_messages", max_retained_messages, 0, 100000000,
	    "retained messages at most"),
	U64("max_retained_bytes", max_retained_bytes, 0, UINT64_C(1) << 40,
	    "bytes of retained payload at most"),
	U32("max_session_expiry", max_session_expiry, 0, UINT32_MAX,
	    "longest session expiry interval granted (seconds)"),
	U32("max_keepalive", max_keepalive, 0, 65535,
	    "longest keep alive granted, 0: any (seconds)"),
	U32("connect_timeout", connect_timeout, 1, 3600, "seconds to wait for CONNECT"),
	U32("retry_interval", retry_interval, 0, 3600,
	    "seconds an MQTT 3.x client's unacknowledged QoS 1/2 message (or PUBREL) waits "
	    "before it is resent on the same connection (never to MQTT 5 clients), "
	    "0: only on reconnect"),
	BOOL("allow_anonymous", allow_anonymous, "accept clients without a user name"),
	STR("password_file", password_file, "file of users and PBKDF2-SHA512 hashes"),
	STR("acl_file", acl_file, "access control list file"),
	U32("ring_size", ring_size, 0, 1u << 20,
	    "messages in flight between two cores (rounded up to a power of two; 0: 65536 up "
	    "to 4 workers, fewer with more); past it QoS 0 is dropped (dropped/ring_full) or "
	    "waits"),
	U32("auth_threads", auth_threads, 1, 64,
	    "threads checking passwords and running authentication hooks"),
	U32("auth_queue", auth_queue, 1, 1000000,
	    "CONNECTs (and re-authentications) waiting for an auth thread; past it a client is "
	    "refused with 0x89 (server busy), counted in $SYS/broker/clients/auth_busy"),
	ENUM("log_level", log_level, level_words, "least severe level logged"),
	U32("sys_interval", sys_interval, 0, 86400, "seconds between $SYS updates, 0: off"),
};

#define NOPTS (sizeof(opts) / sizeof(opts[0]))

void eng_config_defaults(struct eng_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	strcpy(cfg->bind, "127.0.0.1");
	cfg->port = 1883;
	cfg->workers = 0;
	cfg->backend = ENG_BACKEND_KERNEL;
	cfg->max_connections = 1000000;
	cfg->max_packet_size = 1u << 20;
	cfg->max_topic_levels = 128;
	cfg->max_topic_length = 65535;
	cfg->max_subscriptions_per_client = 1000;
	cfg->receive_maximum = 1024;
	cfg->max_inflight = 1024;
	cfg->max_queued_messages = 10000;
	cfg->max_queued_bytes = 64u << 20;
	cfg->queue_qos0_offline = false;
	cfg->drop_policy = ENG_DROP_NEWEST;
	cfg->qos0_overload = ENG_QOS0_DROP;
	cfg->slow_consumer_timeout = 5;
	cfg->topic_alias_maximum = 64;
	cfg->topic_alias_maximum_out = 16;
	cfg->max_qos = 2;
	cfg->retain_available = true;
	cfg->max_retained_messages = 1000000;
	cfg->max_retained_bytes = UINT64_C(1) << 30;
	cfg->max_session_expiry = UINT32_MAX;
	cfg->max_keepalive = 0;
	cfg->connect_timeout = 10;
	cfg->retry_interval = 0;
	cfg->allow_anonymous = true;
	cfg->auth_threads = 1;
	cfg->auth_queue = 4096;
	cfg->log_level = ENG_LOG_NOTICE;
	cfg->sys_interval = 10;
}

static const struct opt *find_opt(const char *key)
{
	for (size_t i = 0; i < NOPTS; i++)
		if (strcmp(opts[i].name, key) == 0)
			return &opts[i];
	return NULL;
}

static int parse_uint(const char *s, uint64_t *out)
{
	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

/* "plugin PATH" and "plugin_opt_NAME VALUE": appended in order to cfg->plugins. */
static int plugin_set(struct eng_config *cfg, const char *key, const char *value, char *err,
		      size_t errlen)
{
	size_t used = strlen(cfg->plugins);
	const char *name = key + strlen("plugin_opt_");
	int n;

	if (strcmp(key, "plugin") == 0) {
		n = snprintf(cfg->plugins + used, sizeof(cfg->plugins) - used, "P%s\n", value);
	} else {
		if (cfg->plugins[0] != 'P') {
			snprintf(err, errlen, "'%s' comes before any 'plugin'", key);
			return -EINVAL;
		}
		if (!*name || strchr(name, '=')) {
			snprintf(err, errlen, "'%s': bad plugin option name", key);
			return -EINVAL;
		}
		n = snprintf(cfg->plugins + used, sizeof(cfg->plugins) - used, "O%s=%s\n", name,
			     value);
	}
	if (n < 0 || (size_t)n >= sizeof(cfg->plugins) - used) {
		cfg->plugins[used] = '\0';
		snprintf(err, errlen, "plugins and their options exceed %zu characters",
			 sizeof(cfg->plugins) - 1);
		return -EINVAL;
	}
	return 0;
}

int eng_config_set(struct eng_config *cfg, const char *key, const char *value, char *err,
		   size_t errlen)
{
	const struct opt *o = find_opt(key);
	char *field;
	uint64_t v;

	if (!o && (strcmp(key, "plugin") == 0 || strncmp(key, "plugin_opt_", 11) == 0))
		return plugin_set(cfg, key, value, err, errlen);
	if (!o) {
		snprintf(err, errlen, "unknown option '%s'", key);
		return -ENOENT;
	}
	field = (char *)cfg + o->offset;
	switch (o->type) {
	case OT_U32:
	case OT_U64:
		if (parse_uint(value, &v) || v < o->min || v > o->max) {
			snprintf(err, errlen, "'%s' takes a whole number from %" PRIu64 " to %" PRIu64
					      ", not '%s'", key, o->min, o->max, value);
			return -EINVAL;
		}
		if (o->type == OT_U32) {
			uint32_t v32 = (uint32_t)v;
			memcpy(field, &v32, sizeof(v32));
		} else {
			memcpy(field, &v, sizeof(v));
		}
		return 0;
	case OT_BOOL:
		if (strcmp(value, "true") == 0) {
			*(bool *)field = true;
		} else if (strcmp(value, "false") == 0) {
			*(bool *)field = false;
		} else {
			snprintf(err, errlen, "'%s' takes true or false, not '%s'", key, value);
			return -EINVAL;
		}
		return 0;
	case OT_STR:
		if (strlen(value) >= o->size) {
			snprintf(err, errlen, "'%s' is longer than %u characters", key, o->size - 1u);
			return -EINVAL;
		}
		strcpy(field, value);
		return 0;
	default: /* OT_ENUM */
		for (uint32_t i = 0; o->words[i]; i++) {
			if (strcmp(value, o->words[i]) == 0) {
				memcpy(field, &i, sizeof(i));
				return 0;
			}
		}
		int n = snprintf(err, errlen, "'%s' takes one of", key);
		for (uint32_t i = 0; o->words[i] && n >= 0 && (size_t)n < errlen; i++)
			n += snprintf(err + n, errlen - (size_t)n, " %s", o->words[i]);
		if (n >= 0 && (size_t)n < errlen)
			snprintf(err + n, errlen - (size_t)n, ", not '%s'", value);
		return -EINVAL;
	}
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

int eng_config_parse(struct eng_config *cfg, const char *text, size_t len, const char *name,
		     char *err, size_t errlen)
{
	char key[64], value[ENG_CONFIG_ARGS], msg[512];
	struct eng_lines ls = {text, len, 0, 0};
	const char *lp;
	size_t ll;

	while (eng_line_next(&ls, &lp, &ll)) {
		unsigned line = ls.no;
		size_t start = (size_t)(lp - text), end = start + ll;
		while (start < end && is_space(text[start]))
			start++;
		while (end > start && is_space(text[end - 1]))
			end--;
		if (start == end || text[start] == '#')
			continue;
		if (memchr(text + start, '\0', end - start)) {
			snprintf(err, errlen, "%s:%u: NUL byte in the line", name, line);
			return -EINVAL;
		}
		size_t k = start;
		while (k < end && !is_space(text[k]))
			k++;
		size_t v = k;
		while (v < end && is_space(text[v]))
			v++;
		if (k - start >= sizeof(key)) {
			snprintf(err, errlen, "%s:%u: unknown option '%.*s...'", name, line, 32,
				 text + start);
			return -EINVAL;
		}
		if (v == end) {
			snprintf(err, errlen, "%s:%u: option '%.*s' has no value", name, line,
				 (int)(k - start), text + start);
			return -EINVAL;
		}
		if (end - v >= sizeof(value)) {
			snprintf(err, errlen, "%s:%u: value longer than %zu characters", name, line,
				 sizeof(value) - 1);
			return -EINVAL;
		}
		memcpy(key, text + start, k - start);
		key[k - start] = '\0';
		memcpy(value, text + v, end - v);
		value[end - v] = '\0';
		if (eng_config_set(cfg, key, value, msg, sizeof(msg)) != 0) {
			snprintf(err, errlen, "%s:%u: %s", name, line, msg);
			return -EINVAL;
		}
	}
	return 0;
}

int eng_config_load(struct eng_config *cfg, const char *path, char *err, size_t errlen)
{
	size_t len;
	char *buf = eng_file_read(path, ENG_FILE_MAX, &len, err, errlen);
	if (!buf)
		return -errno;
	int rc = eng_config_parse(cfg, buf, len, path, err, errlen);
	free(buf);
	return rc;
}

/* Flags: the common options have their own; any option can be given as --set key=value. */
static const struct option long_opts[] = {
	{"config", required_argument, NULL, 'c'},
	{"port", required_argument, NULL, 'p'},
	{"bind", required_argument, NULL, 'b'},
	{"workers", required_argument, NULL, 'w'},
	{"backend", required_argument, NULL, 'B'},
	{"dpdk-args", required_argument, NULL, 'D'},
	{"ip", required_argument, NULL, 'i'},
	{"gateway", required_argument, NULL, 'g'},
	{"log-level", required_argument, NULL, 'l'},
	{"set", required_argument, NULL, 's'},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

static const char *flag_key(int c)
{
	switch (c) {
	case 'p': return "port";
	case 'b': return "bind";
	case 'w': return "workers";
	case 'B': return "backend";
	case 'D': return "dpdk_args";
	case 'i': return "ip";
	case 'g': return "gateway";
	case 'l': return "log_level";
	default: return NULL;
	}
}

int eng_config_args(struct eng_config *cfg, int argc, char **argv, FILE *out, char *err,
		    size_t errlen)
{
	char msg[512];
	int c, rc;

	/* First pass: --help and --config, so the file is read before the flags apply. */
	opterr = 0;
	optind = 0; /* glibc: 0 restarts the scan from scratch */
	while ((c = getopt_long(argc, argv, "+c:p:b:w:h", long_opts, NULL)) != -1) {
		if (c == 'h') {
			eng_config_usage(out, argv[0]);
			return 1;
		}
		if (c == '?' || c == ':') {
			snprintf(err, errlen, "unknown or incomplete flag '%s' (see --help)",
				 argv[optind - 1]);
			return -EINVAL;
		}
		if (c == 'c' && (rc = eng_config_load(cfg, optarg, err, errlen)) != 0)
			return rc;
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument '%s' (see --help)", argv[optind]);
		return -EINVAL;
	}
	optind = 0; /* glibc: 0 restarts the scan from scratch */
	while ((c = getopt_long(argc, argv, "+c:p:b:w:h", long_opts, NULL)) != -1) {
		const char *key = flag_key(c);
		const char *value = optarg;
		char kbuf[64];
		if (c == 's') {
			const char *eq = strchr(optarg, '=');
			if (!eq || (size_t)(eq - optarg) >= sizeof(kbuf)) {
				snprintf(err, errlen, "--set takes key=value, not '%s'", optarg);
				return -EINVAL;
			}
			memcpy(kbuf, optarg, (size_t)(eq - optarg));
			kbuf[eq - optarg] = '\0';
			key = kbuf;
			value = eq + 1;
		}
		if (!key)
			continue; /* --config, done */
		if ((rc = eng_config_set(cfg, key, value, msg, sizeof(msg))) != 0) {
			snprintf(err, errlen, "%s", msg);
			return -EINVAL;
		}
	}
	return 0;
}

void eng_config_usage(FILE *out, const char *prog)
{
	struct eng_config d;
	eng_config_defaults(&d);
	fprintf(out,
		"usage: %s [flags]\n"
		"  --config FILE      read options from FILE (\"key value\" lines, # comments)\n"
		"  --port N           listen port (default %u)\n"
		"  --bind ADDR        listen address (default %s)\n"
		"  --workers N        worker cores (default: all online CPUs)\n"
		"  --backend B        kernel | dpdk (default kernel)\n"
		"  --dpdk-args ARGS   DPDK EAL arguments, e.g. \"--no-huge --no-pci ...\"\n"
		"  --ip A.B.C.D/LEN   address of the DPDK port\n"
		"  --gateway A.B.C.D  default gateway of the DPDK port\n"
		"  --log-level L      error | warning | notice | info | debug\n"
		"  --set KEY=VALUE    any option below\n"
		"  --help             this text\n"
		"Flags override the configuration file.\n\nOptions (file keys):\n",
		prog, d.port, d.bind);
	for (size_t i = 0; i < NOPTS; i++) {
		const struct opt *o = &opts[i];
		const char *field = (const char *)&d + o->offset;
		char def[64];
		uint32_t u32;
		uint64_t u64;
		switch (o->type) {
		case OT_U32:
			memcpy(&u32, field, sizeof(u32));
			snprintf(def, sizeof(def), "%u", u32);
			break;
		case OT_U64:
			memcpy(&u64, field, sizeof(u64));
			snprintf(def, sizeof(def), "%" PRIu64, u64);
			break;
		case OT_BOOL:
			snprintf(def, sizeof(def), "%s", *(const bool *)field ? "true" : "false");
			break;
		case OT_STR:
			snprintf(def, sizeof(def), "%s", *field ? field : "(none)");
			break;
		default:
			memcpy(&u32, field, sizeof(u32));
			snprintf(def, sizeof(def), "%s", o->words[u32]);
			break;
		}
		fprintf(out, "  %-30s %s [%s]\n", o->name, o->help, def);
	}
	fprintf(out, "  %-30s %s\n  %-30s %s\n", "plugin", "shared object to load (repeatable)",
		"plugin_opt_NAME", "option NAME for the plugin named above it");
}

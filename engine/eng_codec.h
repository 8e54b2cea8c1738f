/* SPDX-License-Identifier: MIT */
/*
 * The MQTT wire codec: MQTT 3.1 (protocol name "MQIsdp", level 3), 3.1.1 (level 4) and
 * 5.0 (level 5), all 15 packet types, both directions.
 *
 * Decoding is incremental and zero-copy: eng_decode() looks at the bytes received so far and
 * either asks for more (-EAGAIN), or returns one decoded packet whose strings and payload are
 * views into the caller's buffer, or a specific error carrying the MQTT 5 reason code and the
 * connection-level action that follows. Everything the specs say a receiver must reject is
 * rejected here, so the broker above sees only well-formed packets that are legal in their
 * direction and connection state.
 *
 * Encoding computes the exact size first and writes into a caller buffer; it never allocates.
 *
 * Threading: all functions are pure (no global state) and may run on any thread.
 */
#ifndef ENG_CODEC_H
#define ENG_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Protocol levels as carried in CONNECT. */
enum {
	ENG_V31 = 3,  /* MQTT 3.1, protocol name "MQIsdp" */
	ENG_V311 = 4, /* MQTT 3.1.1 */
	ENG_V5 = 5,   /* MQTT 5.0 */
};

/* Control packet types (fixed header, high nibble). */
enum eng_ptype {
	ENG_CONNECT = 1,
	ENG_CONNACK = 2,
	ENG_PUBLISH = 3,
	ENG_PUBACK = 4,
	ENG_PUBREC = 5,
	ENG_PUBREL = 6,
	ENG_PUBCOMP = 7,
	ENG_SUBSCRIBE = 8,
	ENG_SUBACK = 9,
	ENG_UNSUBSCRIBE = 10,
	ENG_UNSUBACK = 11,
	ENG_PINGREQ = 12,
	ENG_PINGRESP = 13,
	ENG_DISCONNECT = 14,
	ENG_AUTH = 15,
};

/* Largest value of a variable byte integer, and so of the Remaining Length. */
#define ENG_VBI_MAX 268435455u
/* Largest packet: 1 byte of type, 4 of remaining length, ENG_VBI_MAX of body. */
#define ENG_PACKET_MAX (ENG_VBI_MAX + 5u)

/* MQTT 5 reason codes (and the MQTT 3.x CONNACK return codes, which share 0x00-0x05). */
enum eng_reason {
	ENG_RC_SUCCESS = 0x00, /* also Normal disconnection, Granted QoS 0 */
	ENG_RC_GRANTED_QOS1 = 0x01,
	ENG_RC_GRANTED_QOS2 = 0x02,
	ENG_RC_DISCONNECT_WITH_WILL = 0x04,
	ENG_RC_NO_MATCHING_SUBSCRIBERS = 0x10,
	ENG_RC_NO_SUBSCRIPTION_EXISTED = 0x11,
	ENG_RC_CONTINUE_AUTH = 0x18,
	ENG_RC_REAUTHENTICATE = 0x19,
	ENG_RC_UNSPECIFIED = 0x80,
	ENG_RC_MALFORMED = 0x81,
	ENG_RC_PROTOCOL_ERROR = 0x82,
	ENG_RC_IMPL_SPECIFIC = 0x83,
	ENG_RC_UNSUPPORTED_VERSION = 0x84,
	ENG_RC_CLIENT_ID_INVALID = 0x85,
	ENG_RC_BAD_USER_OR_PASSWORD = 0x86,
	ENG_RC_NOT_AUTHORIZED = 0x87,
	ENG_RC_SERVER_UNAVAILABLE = 0x88,
	ENG_RC_SERVER_BUSY = 0x89,
	ENG_RC_BANNED = 0x8A,
	ENG_RC_SERVER_SHUTTING_DOWN = 0x8B,
	ENG_RC_BAD_AUTH_METHOD = 0x8C,
	ENG_RC_KEEPALIVE_TIMEOUT = 0x8D,
	ENG_RC_SESSION_TAKEN_OVER = 0x8E,
	ENG_RC_TOPIC_FILTER_INVALID = 0x8F,
	ENG_RC_TOPIC_NAME_INVALID = 0x90,
	ENG_RC_PACKET_ID_IN_USE = 0x91,
	ENG_RC_PACKET_ID_NOT_FOUND = 0x92,
	ENG_RC_RECEIVE_MAX_EXCEEDED = 0x93,
	ENG_RC_TOPIC_ALIAS_INVALID = 0x94,
	ENG_RC_PACKET_TOO_LARGE = 0x95,
	ENG_RC_MESSAGE_RATE_TOO_HIGH = 0x96,
	ENG_RC_QUOTA_EXCEEDED = 0x97,
	ENG_RC_ADMINISTRATIVE_ACTION = 0x98,
	ENG_RC_PAYLOAD_FORMAT_INVALID = 0x99,
	ENG_RC_RETAIN_NOT_SUPPORTED = 0x9A,
	ENG_RC_QOS_NOT_SUPPORTED = 0x9B,
	ENG_RC_USE_ANOTHER_SERVER = 0x9C,
	ENG_RC_SERVER_MOVED = 0x9D,
	ENG_RC_SHARED_SUB_NOT_SUPPORTED = 0x9E,
	ENG_RC_CONNECTION_RATE_EXCEEDED = 0x9F,
	ENG_RC_MAX_CONNECT_TIME = 0xA0,
	ENG_RC_SUB_ID_NOT_SUPPORTED = 0xA1,
	ENG_RC_WILDCARD_SUB_NOT_SUPPORTED = 0xA2,
};

/* MQTT 3.x CONNACK return codes. */
enum {
	ENG_V3_ACCEPTED = 0x00,
	ENG_V3_BAD_VERSION = 0x01,
	ENG_V3_ID_REJECTED = 0x02,
	ENG_V3_SERVER_UNAVAILABLE = 0x03,
	ENG_V3_BAD_USER_OR_PASSWORD = 0x04,
	ENG_V3_NOT_AUTHORIZED = 0x05,
};

/* MQTT 5 property identifiers. */
enum eng_prop_id {
	ENG_PROP_PAYLOAD_FORMAT = 0x01,
	ENG_PROP_MESSAGE_EXPIRY = 0x02,
	ENG_PROP_CONTENT_TYPE = 0x03,
	ENG_PROP_RESPONSE_TOPIC = 0x08,
	ENG_PROP_CORRELATION_DATA = 0x09,
	ENG_PROP_SUBSCRIPTION_ID = 0x0B,
	ENG_PROP_SESSION_EXPIRY = 0x11,
	ENG_PROP_ASSIGNED_CLIENT_ID = 0x12,
	ENG_PROP_SERVER_KEEP_ALIVE = 0x13,
	ENG_PROP_AUTH_METHOD = 0x15,
	ENG_PROP_AUTH_DATA = 0x16,
	ENG_PROP_REQUEST_PROBLEM_INFO = 0x17,
	ENG_PROP_WILL_DELAY = 0x18,
	ENG_PROP_REQUEST_RESPONSE_INFO = 0x19,
	ENG_PROP_RESPONSE_INFO = 0x1A,
	ENG_PROP_SERVER_REFERENCE = 0x1C,
	ENG_PROP_REASON_STRING = 0x1F,
	ENG_PROP_RECEIVE_MAXIMUM = 0x21,
	ENG_PROP_TOPIC_ALIAS_MAXIMUM = 0x22,
	ENG_PROP_TOPIC_ALIAS = 0x23,
	ENG_PROP_MAXIMUM_QOS = 0x24,
	ENG_PROP_RETAIN_AVAILABLE = 0x25,
	ENG_PROP_USER = 0x26,
	ENG_PROP_MAXIMUM_PACKET_SIZE = 0x27,
	ENG_PROP_WILDCARD_SUB_AVAILABLE = 0x28,
	ENG_PROP_SUB_ID_AVAILABLE = 0x29,
	ENG_PROP_SHARED_SUB_AVAILABLE = 0x2A,
};
#define ENG_PROP_ID_MAX 0x2A

/* Bit of a property in eng_props.present. */
#define ENG_PBIT(id) (UINT64_C(1) << (id))

/* Where a property block sits: the packet types, plus the will properties of CONNECT. */
#define ENG_PLACE_WILL 0 /* type 0 is reserved on the wire, so it names the will block */

/* A view of bytes owned by someone else (the receive buffer when decoded). */
struct eng_str {
	const uint8_t *p;
	uint32_t len;
};

/* A User Property, for encoding from an array. */
struct eng_user_prop {
	struct eng_str key;
	struct eng_str val;
};

/*
 * MQTT 5 properties of one packet (or of a CONNECT's will).
 * present has ENG_PBIT(id) set for every property that was decoded / is to be encoded, and
 * the matching field holds the value. User Property and Subscription Identifier may repeat:
 * - decoded: user_count / sub_id_count say how many; iterate them over raw with
 *   eng_user_prop_next() / eng_sub_id_next() (raw is the whole property block, a view).
 * - encoding: user properties come from user[] when it is non-NULL, otherwise they are copied
 *   in order from raw (so a decoded block forwards its user properties unchanged);
 *   subscription identifiers come from sub_id[] (sub_id_count of them) when it is non-NULL,
 *   otherwise from subscription_id when its bit is present.
 * Zero-initialise before filling for encoding.
 */
struct eng_props {
	uint64_t present;
	uint32_t message_expiry;
	uint32_t session_expiry;
	uint32_t will_delay;
	uint32_t maximum_packet_size;
	uint32_t subscription_id; /* the first one, when decoded */
	uint16_t server_keep_alive;
	uint16_t receive_maximum;
	uint16_t topic_alias_maximum;
	uint16_t topic_alias;
	uint8_t payload_format;
	uint8_t request_problem_info;
	uint8_t request_response_info;
	uint8_t maximum_qos;
	uint8_t retain_available;
	uint8_t wildcard_sub_available;
	uint8_t sub_id_available;
	uint8_t shared_sub_available;
	struct eng_str content_type;
	struct eng_str response_topic;
	struct eng_str correlation_data;
	struct eng_str assigned_client_id;
	struct eng_str auth_method;
	struct eng_str auth_data;
	struct eng_str response_info;
	struct eng_str server_reference;
	struct eng_str reason_string;
	uint32_t user_count;
	uint32_t sub_id_count;
	const struct eng_user_prop *user; /* encode only; borrowed */
	const uint32_t *sub_id;           /* encode only; borrowed */
	struct eng_str raw;               /* decoded block */
};

struct eng_connect {
	uint8_t version; /* ENG_V31, ENG_V311 or ENG_V5 */
	bool clean_start;
	bool will;
	uint8_t will_qos;
	bool will_retain;
	bool has_username;
	bool has_password;
	uint16_t keepalive;
	struct eng_str client_id;
	struct eng_str will_topic;
	struct eng_str will_payload;
	struct eng_str username;
	struct eng_str password;
	struct eng_props props;
	struct eng_props will_props;
};

struct eng_connack {
	bool session_present;
	uint8_t reason; /* MQTT 5 reason code, or MQTT 3.x return code */
	struct eng_props props;
};

struct eng_publish {
	uint8_t qos;
	bool dup;
	bool retain;
	uint16_t packet_id; /* QoS 1 and 2 only */
	struct eng_str topic;
	struct eng_str payload;
	struct eng_props props;
};

/* PUBACK, PUBREC, PUBREL, PUBCOMP. */
struct eng_ack {
	uint16_t packet_id;
	uint8_t reason; /* always 0 in MQTT 3.x */
	struct eng_props props;
};

/* One SUBSCRIBE entry, for encoding from an array. */
struct eng_sub_entry {
	struct eng_str filter;
	uint8_t options; /* see ENG_SUBOPT_* */
};

/* Subscription options byte (MQTT 5; only the QoS bits exist in 3.x). */
#define ENG_SUBOPT_QOS_MASK 0x03
#define ENG_SUBOPT_NO_LOCAL 0x04
#define ENG_SUBOPT_RAP 0x08 /* retain as published */
#define ENG_SUBOPT_RH_SHIFT 4
#define ENG_SUBOPT_RH_MASK 0x30 /* retain handling, 0..2 */

/*
 * SUBSCRIBE and UNSUBSCRIBE. Decoded: count entries in raw, walk them with eng_sub_next() /
 * eng_unsub_next(). Encoding: from list (count entries; UNSUBSCRIBE ignores the options) when
 * non-NULL, otherwise from raw.
 */
struct eng_subscribe {
	uint16_t packet_id;
	uint32_t count;
	struct eng_props props;
	struct eng_str raw;                /* the payload: the entries as on the wire */
	const struct eng_sub_entry *list; /* encode only; borrowed */
};

/* SUBACK and UNSUBACK: one reason code per entry (an MQTT 3.x UNSUBACK has none). */
struct eng_suback {
	uint16_t packet_id;
	uint32_t count;
	const uint8_t *reasons; /* a view when decoded; borrowed when encoding */
	struct eng_props props;
};

/* DISCONNECT and AUTH (MQTT 5 carries a reason code and properties; 3.x DISCONNECT is empty). */
struct eng_reason_pkt {
	uint8_t reason;
	struct eng_props props;
};

struct eng_packet {
	uint8_t type;  /* enum eng_ptype */
	uint8_t flags; /* low nibble of the fixed header as received / to be sent */
	uint32_t size; /* decoded: bytes of the whole packet, fixed header included */
	union {
		struct eng_connect connect;
		struct eng_connack connack;
		struct eng_publish publish;
		struct eng_ack ack;                 /* PUBACK, PUBREC, PUBREL, PUBCOMP */
		struct eng_subscribe subscribe;     /* SUBSCRIBE, UNSUBSCRIBE */
		struct eng_suback suback;           /* SUBACK, UNSUBACK */
		struct eng_reason_pkt disconnect;   /* DISCONNECT, AUTH */
	} u;
};

/* Who decodes: a server receives client packets and a client receives server packets. */
enum eng_role {
	ENG_ROLE_SERVER = 0,
	ENG_ROLE_CLIENT = 1,
};

/*
 * The decoding context of one connection.
 * version: 0 on a server connection until its CONNECT has been decoded (only CONNECT is legal
 * then; set it to connect.version afterwards, after which CONNECT is a protocol error). A
 * client sets the version it sent in its CONNECT.
 * max_packet: the largest packet this side accepts (0: the protocol maximum).
 */
struct eng_codec_ctx {
	uint8_t version;
	uint8_t role; /* enum eng_role */
	uint32_t max_packet;
};

/* What the connection does after a decoding error. */
enum eng_action {
	ENG_ACT_CLOSE = 0,      /* close without a reply */
	ENG_ACT_CONNACK = 1,    /* send CONNACK with err.reason (in err.version's format), close */
	ENG_ACT_DISCONNECT = 2, /* send MQTT 5 DISCONNECT with err.reason, close */
};

/*
 * A decoding error: what to tell the peer and the log. reason is always the MQTT 5 reason
 * code naming the error (>= 0x80); reply is the code to put in the CONNACK or DISCONNECT that
 * action calls for, in version's format: the same as reason for MQTT 5, a 3.x CONNACK return
 * code (e.g. 0x01, unacceptable protocol level) when answering a 3.x client.
 */
struct eng_decode_err {
	uint8_t reason;   /* MQTT 5 reason code (>= 0x80) */
	uint8_t reply;    /* code to send with ENG_ACT_CONNACK / ENG_ACT_DISCONNECT */
	uint8_t action;   /* enum eng_action */
	uint8_t type;     /* packet type being decoded, 0 if the fixed header was unreadable */
	uint8_t version;  /* protocol version to answer in (0: unknown) */
	const char *what; /* static text naming the rule broken, for the log */
};

/*
 * Decodes the packet at the start of buf[0..len).
 * Returns the packet's size in bytes (> 0) with *pkt filled (views into buf, valid as long as
 * those bytes are); -EAGAIN if the bytes end before the packet does (call again with more;
 * nothing is kept between calls); or -(int)err->reason (a reason code >= 0x80) with *err
 * filled; or -EINVAL if ctx is unusable (a client context must carry its version).
 * A packet larger than ctx->max_packet is rejected (0x95) as soon as its fixed header is in,
 * before its body arrives. Decoding never reads outside buf[0..len). Fields that a packet
 * does not carry (absent properties, a 3.x packet's reason code) are zero.
 */
int eng_decode(const struct eng_codec_ctx *ctx, const uint8_t *buf, size_t len,
	       struct eng_packet *pkt, struct eng_decode_err *err);

/*
 * Exact size in bytes of pkt encoded for protocol version (fixed header included), or
 * -EINVAL if pkt cannot be expressed in that version (unknown type, AUTH before 5, QoS 3, ...),
 * or -EMSGSIZE if it would exceed the protocol's maximum.
 * pkt->flags is ignored: the encoder derives the fixed header flags (PUBLISH from its fields).
 */
int eng_encode_size(const struct eng_packet *pkt, uint8_t version);

/*
 * Encodes pkt for version into buf[0..cap). Returns the bytes written (exactly
 * eng_encode_size()), -ENOSPC if cap is too small (nothing useful is written), or the
 * errors of eng_encode_size(). Strings are written as given: validating what is sent is the
 * caller's business.
 */
int eng_encode(const struct eng_packet *pkt, uint8_t version, uint8_t *buf, size_t cap);

/*
 * Encodes a PUBLISH up to, not including, its payload, so the payload can be sent from where
 * it lies (writev / mbuf chains). The packet is this head followed by pub->payload.
 * Returns the head's size, or the errors of eng_encode().
 */
int eng_encode_publish_head(const struct eng_publish *pub, uint8_t version, uint8_t *buf,
			    size_t cap);

/* Walks the entries of a decoded block; start with it = {block.p, block.p + block.len}. */
struct eng_iter {
	const uint8_t *p;
	const uint8_t *end;
};

static inline struct eng_iter eng_iter_of(struct eng_str s)
{
	/* An absent block is {NULL, 0}, and NULL + 0 is undefined in C: don't compute it. */
	struct eng_iter it = {s.p, s.len ? s.p + s.len : s.p};
	return it;
}

/* Next SUBSCRIBE entry of a decoded raw payload; returns false at the end. */
bool eng_sub_next(struct eng_iter *it, struct eng_str *filter, uint8_t *options);
/* Next UNSUBSCRIBE topic filter of a decoded raw payload; returns false at the end. */
bool eng_unsub_next(struct eng_iter *it, struct eng_str *filter);
/* Next User Property of a decoded property block (eng_iter_of(props.raw)), in order. */
bool eng_user_prop_next(struct eng_iter *it, struct eng_str *key, struct eng_str *val);
/* Next Subscription Identifier of a decoded property block, in order. */
bool eng_sub_id_next(struct eng_iter *it, uint32_t *id);

/* True if s is a well-formed MQTT UTF-8 string: valid UTF-8, no U+0000, no surrogates. */
bool eng_utf8_valid(const uint8_t *s, size_t len);

/* Name of a packet type ("PUBLISH"), of a reason code ("Malformed Packet"), for logs. */
const char *eng_ptype_name(uint8_t type);
const char *eng_reason_name(uint8_t reason);

/* Size of n as a variable byte integer (1..4), 0 if n > ENG_VBI_MAX. */
static inline unsigned eng_vbi_size(uint32_t n)
{
	return n < 128u ? 1u : n < 16384u ? 2u : n < 2097152u ? 3u : n <= ENG_VBI_MAX ? 4u : 0u;
}

#ifdef __cplusplus
}
#endif

#endif /* ENG_CODEC_H */

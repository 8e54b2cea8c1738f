/* SPDX-License-Identifier: MIT */
/*
 * The parts of the MQTT codec that the decoder and encoder share: the MQTT 5 property table,
 * UTF-8 validation, the iterators over decoded blocks, and names for logs.
 */
#include <stddef.h>

#include "eng_codec_internal.h"

#define PL(t) ENG_PLACE(ENG_##t)
#define WILL ENG_PLACE(ENG_PLACE_WILL)
#define MSG (PL(PUBLISH) | WILL)
#define ALL_V5                                                                                     \
	(WILL | PL(CONNECT) | PL(CONNACK) | PL(PUBLISH) | PL(PUBACK) | PL(PUBREC) | PL(PUBREL) |  \
	 PL(PUBCOMP) | PL(SUBSCRIBE) | PL(SUBACK) | PL(UNSUBSCRIBE) | PL(UNSUBACK) |               \
	 PL(DISCONNECT) | PL(AUTH))
#define OFF(f) ((uint16_t)offsetof(struct eng_props, f))
#define P(id, k, pl, rep, f) [ENG_PROP_##id] = {ENG_PK_##k, (pl), (rep), OFF(f)}

/* MQTT 5.0 section 2.2.2.2, table "Properties". */
const struct eng_prop_info eng_prop_table[ENG_PROP_ID_MAX + 1] = {
	P(PAYLOAD_FORMAT, BYTE, MSG, 0, payload_format),
	P(MESSAGE_EXPIRY, U32, MSG, 0, message_expiry),
	P(CONTENT_TYPE, STR, MSG, 0, content_type),
	P(RESPONSE_TOPIC, STR, MSG, 0, response_topic),
	P(CORRELATION_DATA, BIN, MSG, 0, correlation_data),
	P(SUBSCRIPTION_ID, VBI, PL(PUBLISH) | PL(SUBSCRIBE), PL(PUBLISH), subscription_id),
	P(SESSION_EXPIRY, U32, PL(CONNECT) | PL(CONNACK) | PL(DISCONNECT), 0, session_expiry),
	P(ASSIGNED_CLIENT_ID, STR, PL(CONNACK), 0, assigned_client_id),
	P(SERVER_KEEP_ALIVE, U16, PL(CONNACK), 0, server_keep_alive),
	P(AUTH_METHOD, STR, PL(CONNECT) | PL(CONNACK) | PL(AUTH), 0, auth_method),
	P(AUTH_DATA, BIN, PL(CONNECT) | PL(CONNACK) | PL(AUTH), 0, auth_data),
	P(REQUEST_PROBLEM_INFO, BYTE, PL(CONNECT), 0, request_problem_info),
	P(WILL_DELAY, U32, WILL, 0, will_delay),
	P(REQUEST_RESPONSE_INFO, BYTE, PL(CONNECT), 0, request_response_info),
	P(RESPONSE_INFO, STR, PL(CONNACK), 0, response_info),
	P(SERVER_REFERENCE, STR, PL(CONNACK) | PL(DISCONNECT), 0, server_reference),
	P(REASON_STRING, STR,
	  PL(CONNACK) | PL(PUBACK) | PL(PUBREC) | PL(PUBREL) | PL(PUBCOMP) | PL(SUBACK) |
		  PL(UNSUBACK) | PL(DISCONNECT) | PL(AUTH),
	  0, reason_string),
	P(RECEIVE_MAXIMUM, U16, PL(CONNECT) | PL(CONNACK), 0, receive_maximum),
	P(TOPIC_ALIAS_MAXIMUM, U16, PL(CONNECT) | PL(CONNACK), 0, topic_alias_maximum),
	P(TOPIC_ALIAS, U16, PL(PUBLISH), 0, topic_alias),
	P(MAXIMUM_QOS, BYTE, PL(CONNACK), 0, maximum_qos),
	P(RETAIN_AVAILABLE, BYTE, PL(CONNACK), 0, retain_available),
	P(USER, PAIR, ALL_V5, ALL_V5, raw),
	P(MAXIMUM_PACKET_SIZE, U32, PL(CONNECT) | PL(CONNACK), 0, maximum_packet_size),
	P(WILDCARD_SUB_AVAILABLE, BYTE, PL(CONNACK), 0, wildcard_sub_available),
	P(SUB_ID_AVAILABLE, BYTE, PL(CONNACK), 0, sub_id_available),
	P(SHARED_SUB_AVAILABLE, BYTE, PL(CONNACK), 0, shared_sub_available),
};

uint32_t eng_prop_value_size(const struct eng_props *pr, unsigned id)
{
	const struct eng_prop_info *pi = &eng_prop_table[id];
	const char *field = (const char *)pr + pi->offset;
	uint32_t v;

	switch (pi->kind) {
	case ENG_PK_BYTE:
		return 1;
	case ENG_PK_U16:
		return 2;
	case ENG_PK_U32:
		return 4;
	case ENG_PK_VBI:
		memcpy(&v, field, sizeof(v));
		return eng_vbi_size(v);
	case ENG_PK_STR:
	case ENG_PK_BIN:
		return 2 + ((const struct eng_str *)(const void *)field)->len;
	default:
		return 0;
	}
}

/* Bytes of a 64-bit word that are zero / have their high bit set / equal c: nonzero if any. */
#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)
static inline uint64_t has_zero(uint64_t w)
{
	return (w - ONES) & ~w & HIGHS;
}

static inline uint64_t has_byte(uint64_t w, uint8_t c)
{
	return has_zero(w ^ (ONES * c));
}

/* Validates one multi-byte sequence at s[i] (s[i] >= 0x80); returns its length or 0. */
static size_t utf8_seq(const uint8_t *s, size_t i, size_t len)
{
	uint8_t c = s[i];
	size_t n;
	uint8_t lo = 0x80, hi = 0xbf; /* allowed range of the second byte */

	if (c < 0xc2) {
		return 0; /* a continuation byte, or an overlong 2-byte form */
	} else if (c < 0xe0) {
		n = 2;
	} else if (c < 0xf0) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0; /* overlong */
		else if (c == 0xed)
			hi = 0x9f; /* U+D800..U+DFFF: surrogates */
	} else if (c < 0xf5) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90; /* overlong */
		else if (c == 0xf4)
			hi = 0x8f; /* above U+10FFFF */
	} else {
		return 0;
	}
	if (len - i < n)
		return 0;
	if (s[i + 1] < lo || s[i + 1] > hi)
		return 0;
	for (size_t k = 2; k < n; k++)
		if ((s[i + k] & 0xc0) != 0x80)
			return 0;
	return n;
}

/* Nonzero if the 8 bytes at p hold a byte that is not plain ASCII allowed in the string. */
static inline uint64_t word_special(const uint8_t *p, bool topic)
{
	uint64_t w;
	memcpy(&w, p, sizeof(w));
	uint64_t bad = (w & HIGHS) | has_zero(w);
	if (topic)
		bad |= has_byte(w, '+') | has_byte(w, '#');
	return bad;
}

/* Validates s as an MQTT UTF-8 string; with topic, also rejects the wildcards '+' and '#'. */
static inline bool utf8_check(const uint8_t *s, size_t len, bool topic)
{
	size_t i = 0;

	/* The common case, plain ASCII: whole words, the tail as one overlapping word. */
	if (len >= 8) {
		while (i + 8 <= len && !word_special(s + i, topic))
			i += 8;
		if (i + 8 > len && !word_special(s + len - 8, topic))
			return true;
	}
	while (i < len) {
		if (len - i >= 8 && !word_special(s + i, topic)) {
			i += 8;
			continue;
		}
		uint8_t c = s[i];
		if (c < 0x80) {
			if (c == 0 || (topic && (c == '+' || c == '#')))
				return false;
			i++;
			continue;
		}
		size_t n = utf8_seq(s, i, len);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

bool eng_utf8_valid(const uint8_t *s, size_t len)
{
	return utf8_check(s, len, false);
}

bool eng_topic_name_chars_valid(const uint8_t *s, size_t len)
{
	return utf8_check(s, len, true);
}

/* Iterators: the blocks were validated by eng_decode(), so they only walk. */

static struct eng_str take_str(struct eng_iter *it)
{
	struct eng_str s;
	s.len = eng_get16(it->p);
	s.p = it->p + 2;
	it->p += 2 + s.len;
	return s;
}

bool eng_sub_next(struct eng_iter *it, struct eng_str *filter, uint8_t *options)
{
	if (it->p >= it->end)
		return false;
	*filter = take_str(it);
	*options = *it->p++;
	return true;
}

bool eng_unsub_next(struct eng_iter *it, struct eng_str *filter)
{
	if (it->p >= it->end)
		return false;
	*filter = take_str(it);
	return true;
}

/* Skips to the next property whose identifier is id; leaves it->p after the identifier. */
static bool next_prop(struct eng_iter *it, unsigned id)
{
	while (it->p < it->end) {
		unsigned cur = *it->p++;
		if (cur == id)
			return true;
		uint32_t v;
		switch (eng_prop_table[cur].kind) {
		case ENG_PK_BYTE:
			it->p += 1;
			break;
		case ENG_PK_U16:
			it->p += 2;
			break;
		case ENG_PK_U32:
			it->p += 4;
			break;
		case ENG_PK_VBI:
			eng_get_vbi(&it->p, it->end, &v);
			break;
		case ENG_PK_STR:
		case ENG_PK_BIN:
			take_str(it);
			break;
		case ENG_PK_PAIR:
			take_str(it);
			take_str(it);
			break;
		default:
			it->p = it->end; /* cannot happen in a decoded block */
			return false;
		}
	}
	return false;
}

bool eng_user_prop_next(struct eng_iter *it, struct eng_str *key, struct eng_str *val)
{
	if (!next_prop(it, ENG_PROP_USER))
		return false;
	*key = take_str(it);
	*val = take_str(it);
	return true;
}

bool eng_sub_id_next(struct eng_iter *it, uint32_t *id)
{
	if (!next_prop(it, ENG_PROP_SUBSCRIPTION_ID))
		return false;
	return eng_get_vbi(&it->p, it->end, id) == 1;
}

const char *eng_ptype_name(uint8_t type)
{
	static const char *const names[16] = {
		"RESERVED", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC",
		"PUBREL", "PUBCOMP", "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK",
		"PINGREQ", "PINGRESP", "DISCONNECT", "AUTH",
	};
	return type < 16 ? names[type] : "INVALID";
}

const char *eng_reason_name(uint8_t reason)
{
	switch (reason) {
	case 0x00: return "Success";
	case 0x01: return "Granted QoS 1";
	case 0x02: return "Granted QoS 2";
	case 0x04: return "Disconnect with Will Message";
	case 0x10: return "No matching subscribers";
	case 0x11: return "No subscription existed";
	case 0x18: return "Continue authentication";
	case 0x19: return "Re-authenticate";
	case 0x80: return "Unspecified error";
	case 0x81: return "Malformed Packet";
	case 0x82: return "Protocol Error";
	case 0x83: return "Implementation specific error";
	case 0x84: return "Unsupported Protocol Version";
	case 0x85: return "Client Identifier not valid";
	case 0x86: return "Bad User Name or Password";
	case 0x87: return "Not authorized";
	case 0x88: return "Server unavailable";
	case 0x89: return "Server busy";
	case 0x8A: return "Banned";
	case 0x8B: return "Server shutting down";
	case 0x8C: return "Bad authentication method";
	case 0x8D: return "Keep Alive timeout";
	case 0x8E: return "Session taken over";
	case 0x8F: return "Topic Filter invalid";
	case 0x90: return "Topic Name invalid";
	case 0x91: return "Packet Identifier in use";
	case 0x92: return "Packet Identifier not found";
	case 0x93: return "Receive Maximum exceeded";
	case 0x94: return "Topic Alias invalid";
	case 0x95: return "Packet too large";
	case 0x96: return "Message rate too high";
	case 0x97: return "Quota exceeded";
	case 0x98: return "Administrative action";
	case 0x99: return "Payload format invalid";
	case 0x9A: return "Retain not supported";
	case 0x9B: return "QoS not supported";
	case 0x9C: return "Use another server";
	case 0x9D: return "Server moved";
	case 0x9E: return "Shared Subscriptions not supported";
	case 0x9F: return "Connection rate exceeded";
	case 0xA0: return "Maximum connect time";
	case 0xA1: return "Subscription Identifiers not supported";
	case 0xA2: return "Wildcard Subscriptions not supported";
	default: return "Unknown reason code";
	}
}

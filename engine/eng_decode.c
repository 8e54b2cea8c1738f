/* SPDX-License-Identifier: MIT */
/*
 * MQTT decoder: one packet at a time from a byte buffer that may end anywhere.
 *
 * eng_decode() first reads the fixed header (type, flags, Remaining Length); it rejects what
 * is illegal from those alone (reserved type, reserved flags, a packet the peer may not send
 * in this direction or connection state, a size over the limit) before the body arrives, then
 * waits (-EAGAIN) for the whole packet and decodes the body with bounded readers. Nothing is
 * copied: strings, payloads and property blocks are views into the input.
 *
 * Every failure goes through fail(), which records the MQTT 5 reason code, the rule broken,
 * and the action that follows from the connection's state (see eng_codec.h).
 */
#include <errno.h>

#include "eng_codec_internal.h"

struct dec {
	const struct eng_codec_ctx *ctx;
	struct eng_decode_err *err;
	uint8_t type;
	uint8_t version;  /* ctx->version, or the level a CONNECT being decoded announced */
	const uint8_t *p; /* body reader */
	const uint8_t *end;
};

static int fail(struct dec *d, uint8_t reason, const char *what)
{
	struct eng_decode_err *e = d->err;

	e->reason = reason;
	e->reply = reason;
	e->type = d->type;
	e->version = d->version;
	e->what = what;
	if (d->version != ENG_V5)
		e->action = ENG_ACT_CLOSE; /* 3.x has no way to say why, and 0: unknown protocol */
	else if (d->ctx->role == ENG_ROLE_SERVER && d->ctx->version == 0)
		e->action = ENG_ACT_CONNACK; /* the error is in the CONNECT itself */
	else
		e->action = ENG_ACT_DISCONNECT;
	return -(int)reason;
}

#define MALFORMED(d, what) fail(d, ENG_RC_MALFORMED, what)
#define PROTOCOL(d, what) fail(d, ENG_RC_PROTOCOL_ERROR, what)

/*
 * Zeroes a property block (the contract: absent properties read as zero). A copy of a zero
 * constant compiles to a few vector stores; memset of this size became "rep stos", whose
 * start-up cost was about a quarter of decoding a small PUBLISH.
 */
static inline void props_zero(struct eng_props *pr)
{
	static const struct eng_props zero;
	*pr = zero;
}

static inline size_t left(const struct dec *d)
{
	return (size_t)(d->end - d->p);
}

static int get_u8(struct dec *d, uint8_t *v, const char *what)
{
	if (left(d) < 1)
		return MALFORMED(d, what);
	*v = *d->p++;
	return 0;
}

static int get_u16(struct dec *d, uint16_t *v, const char *what)
{
	if (left(d) < 2)
		return MALFORMED(d, what);
	*v = eng_get16(d->p);
	d->p += 2;
	return 0;
}

/* A packet identifier, which must be non-zero [MQTT-2.2.1-3]. */
static int get_packet_id(struct dec *d, uint16_t *id)
{
	int rc = get_u16(d, id, "packet identifier runs past the packet");
	if (rc)
		return rc;
	if (*id == 0)
		return PROTOCOL(d, "packet identifier is 0");
	return 0;
}

/* Two-byte length then bytes (Binary Data; also the body of a UTF-8 string). */
static int get_bytes(struct dec *d, struct eng_str *s, const char *what)
{
	if (left(d) < 2)
		return MALFORMED(d, what);
	uint32_t n = eng_get16(d->p);
	if (left(d) - 2 < n)
		return MALFORMED(d, what);
	s->p = d->p + 2;
	s->len = n;
	d->p += 2 + n;
	return 0;
}

static int get_utf8(struct dec *d, struct eng_str *s, const char *truncated, const char *invalid)
{
	int rc = get_bytes(d, s, truncated);
	if (rc)
		return rc;
	if (!eng_utf8_valid(s->p, s->len))
		return MALFORMED(d, invalid);
	return 0;
}

#define GET_UTF8(d, s, name) get_utf8(d, s, name " runs past the packet", name " is not valid UTF-8")
#define GET_BYTES(d, s, name) get_bytes(d, s, name " runs past the packet")

/* A Topic Name: UTF-8 without wildcards. Empty names are the caller's to judge. */
static int get_topic_name(struct dec *d, struct eng_str *s, const char *truncated,
			  const char *invalid, const char *wildcard)
{
	int rc = get_bytes(d, s, truncated);
	if (rc)
		return rc;
	if (!eng_topic_name_chars_valid(s->p, s->len)) {
		if (!eng_utf8_valid(s->p, s->len))
			return MALFORMED(d, invalid);
		return fail(d, ENG_RC_TOPIC_NAME_INVALID, wildcard);
	}
	return 0;
}

static bool has_wildcard(struct eng_str s)
{
	for (uint32_t i = 0; i < s.len; i++)
		if (s.p[i] == '+' || s.p[i] == '#')
			return true;
	return false;
}

/* Value rules of MQTT 5 properties (section 3, per property): violations are Protocol Errors. */
static int check_props(struct dec *d, const struct eng_props *pr)
{
	const uint64_t flags = ENG_PBIT(ENG_PROP_PAYLOAD_FORMAT) |
			       ENG_PBIT(ENG_PROP_REQUEST_PROBLEM_INFO) |
			       ENG_PBIT(ENG_PROP_REQUEST_RESPONSE_INFO) |
			       ENG_PBIT(ENG_PROP_MAXIMUM_QOS) | ENG_PBIT(ENG_PROP_RETAIN_AVAILABLE) |
			       ENG_PBIT(ENG_PROP_WILDCARD_SUB_AVAILABLE) |
			       ENG_PBIT(ENG_PROP_SUB_ID_AVAILABLE) |
			       ENG_PBIT(ENG_PROP_SHARED_SUB_AVAILABLE);
	uint64_t set = pr->present;

	if (!(set & ~(ENG_PBIT(ENG_PROP_USER) | ENG_PBIT(ENG_PROP_SUBSCRIPTION_ID))))
		return 0; /* nothing but repeatable properties, checked as they were read */
	if (set & flags) {
		if (pr->payload_format > 1 || pr->request_problem_info > 1 ||
		    pr->request_response_info > 1 || pr->maximum_qos > 1 ||
		    pr->retain_available > 1 || pr->wildcard_sub_available > 1 ||
		    pr->sub_id_available > 1 || pr->shared_sub_available > 1)
			return PROTOCOL(d, "property value other than 0 or 1");
	}
	if ((set & ENG_PBIT(ENG_PROP_RECEIVE_MAXIMUM)) && pr->receive_maximum == 0)
		return PROTOCOL(d, "Receive Maximum is 0");
	if ((set & ENG_PBIT(ENG_PROP_MAXIMUM_PACKET_SIZE)) && pr->maximum_packet_size == 0)
		return PROTOCOL(d, "Maximum Packet Size is 0");
	if ((set & ENG_PBIT(ENG_PROP_TOPIC_ALIAS)) && pr->topic_alias == 0)
		return PROTOCOL(d, "Topic Alias is 0");
	if ((set & ENG_PBIT(ENG_PROP_RESPONSE_TOPIC)) && has_wildcard(pr->response_topic))
		return PROTOCOL(d, "Response Topic contains a wildcard");
	if ((set & ENG_PBIT(ENG_PROP_AUTH_DATA)) && !(set & ENG_PBIT(ENG_PROP_AUTH_METHOD)))
		return PROTOCOL(d, "Authentication Data without an Authentication Method");
	return 0;
}

/*
 * Reads an MQTT 5 property block (length, then properties) for place: a packet type, or
 * ENG_PLACE_WILL. Each property must be one the place allows [MQTT 5 2.2.2.2]; single-valued
 * ones may appear once.
 */
static int get_props(struct dec *d, unsigned place, struct eng_props *pr)
{
	uint32_t len;
	int rc;

	props_zero(pr);
	if (eng_get_vbi(&d->p, d->end, &len) != 1)
		return MALFORMED(d, "property length malformed or runs past the packet");
	if (len > left(d))
		return MALFORMED(d, "properties run past the packet");
	pr->raw.p = d->p;
	pr->raw.len = len;

	const uint8_t *packet_end = d->end;
	d->end = d->p + len; /* the readers below stop at the end of the block */
	while (d->p < d->end) {
		unsigned id = *d->p++;
		const struct eng_prop_info *pi = &eng_prop_table[id <= ENG_PROP_ID_MAX ? id : 0];
		if (pi->kind == ENG_PK_NONE)
			return MALFORMED(d, "unknown property identifier");
		if (!(pi->places & ENG_PLACE(place)))
			return MALFORMED(d, "property not allowed in this packet");
		uint64_t bit = ENG_PBIT(id);
		bool first = !(pr->present & bit);
		if (!first && !(pi->repeat & ENG_PLACE(place)))
			return PROTOCOL(d, "property included more than once");
		pr->present |= bit;

		char *field = (char *)pr + pi->offset;
		uint8_t u8;
		uint16_t u16;
		uint32_t u32;
		struct eng_str k, v;
		switch (pi->kind) {
		case ENG_PK_BYTE:
			if ((rc = get_u8(d, &u8, "property value runs past its block")))
				return rc;
			*(uint8_t *)field = u8;
			break;
		case ENG_PK_U16:
			if ((rc = get_u16(d, &u16, "property value runs past its block")))
				return rc;
			memcpy(field, &u16, sizeof(u16));
			break;
		case ENG_PK_U32:
			if (left(d) < 4)
				return MALFORMED(d, "property value runs past its block");
			u32 = eng_get32(d->p);
			d->p += 4;
			memcpy(field, &u32, sizeof(u32));
			break;
		case ENG_PK_VBI: /* Subscription Identifier, the only one */
			if (eng_get_vbi(&d->p, d->end, &u32) != 1)
				return MALFORMED(d, "Subscription Identifier malformed");
			if (u32 == 0)
				return PROTOCOL(d, "Subscription Identifier is 0");
			if (first)
				memcpy(field, &u32, sizeof(u32));
			pr->sub_id_count++;
			break;
		case ENG_PK_STR:
			if ((rc = GET_UTF8(d, &v, "string property")))
				return rc;
			memcpy(field, &v, sizeof(v));
			break;
		case ENG_PK_BIN:
			if ((rc = GET_BYTES(d, &v, "binary property")))
				return rc;
			memcpy(field, &v, sizeof(v));
			break;
		case ENG_PK_PAIR: /* User Property: only counted, walked later over raw */
			if ((rc = GET_UTF8(d, &k, "User Property name")) ||
			    (rc = GET_UTF8(d, &v, "User Property value")))
				return rc;
			pr->user_count++;
			break;
		}
	}
	d->end = packet_end;
	return check_props(d, pr);
}

/* Properties for a packet of the current version: read in MQTT 5, all zero before. */
static int get_props_v(struct dec *d, unsigned place, struct eng_props *pr)
{
	if (d->version == ENG_V5)
		return get_props(d, place, pr);
	props_zero(pr);
	return 0;
}

static int no_trailing(struct dec *d, const char *what)
{
	return d->p == d->end ? 0 : MALFORMED(d, what);
}

/* Reason codes each MQTT 5 packet may carry (sections 3.x.2.1). */
static bool reason_ok(uint8_t type, uint8_t rc)
{
	switch (type) {
	case ENG_CONNACK:
		return rc == 0x00 || (rc >= 0x80 && rc <= 0x8A) || rc == 0x8C || rc == 0x90 ||
		       rc == 0x95 || rc == 0x97 || (rc >= 0x99 && rc <= 0x9D) || rc == 0x9F;
	case ENG_PUBACK:
	case ENG_PUBREC:
		return rc == 0x00 || rc == 0x10 || rc == 0x80 || rc == 0x83 || rc == 0x87 ||
		       rc == 0x90 || rc == 0x91 || rc == 0x97 || rc == 0x99;
	case ENG_PUBREL:
	case ENG_PUBCOMP:
		return rc == 0x00 || rc == 0x92;
	case ENG_SUBACK:
		return rc <= 0x02 || rc == 0x80 || rc == 0x83 || rc == 0x87 || rc == 0x8F ||
		       rc == 0x91 || rc == 0x97 || rc == 0x9E || rc == 0xA1 || rc == 0xA2;
	case ENG_UNSUBACK:
		return rc == 0x00 || rc == 0x11 || rc == 0x80 || rc == 0x83 || rc == 0x87 ||
		       rc == 0x8F || rc == 0x91;
	case ENG_DISCONNECT:
		return rc == 0x00 || rc == 0x04 || (rc >= 0x80 && rc <= 0x83) || rc == 0x87 ||
		       rc == 0x89 || rc == 0x8B || (rc >= 0x8D && rc <= 0x90) ||
		       (rc >= 0x93 && rc <= 0xA2);
	case ENG_AUTH:
		return rc == 0x00 || rc == 0x18 || rc == 0x19;
	default:
		return false;
	}
}

/*
 * The optional MQTT 5 tail of acks, DISCONNECT and AUTH: a reason code (0 when absent), then
 * properties (none when absent).
 */
static int get_reason_tail(struct dec *d, uint8_t *reason, struct eng_props *pr)
{
	*reason = 0;
	props_zero(pr);
	if (d->p == d->end)
		return 0;
	*reason = *d->p++;
	if (!reason_ok(d->type, *reason))
		return MALFORMED(d, "reason code not valid for this packet");
	if (d->p == d->end)
		return 0;
	int rc = get_props(d, d->type, pr);
	return rc ? rc : no_trailing(d, "bytes after the properties");
}

static int dec_connect(struct dec *d, struct eng_connect *c)
{
	struct eng_str name;
	uint8_t level = 0, flags = 0;
	int rc;

	if ((rc = GET_BYTES(d, &name, "protocol name")) ||
	    (rc = get_u8(d, &level, "protocol level missing")))
		return rc;
	bool mqtt = name.len == 4 && memcmp(name.p, "MQTT", 4) == 0;
	bool mqisdp = name.len == 6 && memcmp(name.p, "MQIsdp", 6) == 0;
	if (!mqtt && !mqisdp)
		return fail(d, ENG_RC_UNSUPPORTED_VERSION, "unknown protocol name");
	if (!(mqtt && (level == ENG_V311 || level == ENG_V5)) && !(mqisdp && level == ENG_V31)) {
		/* [MQTT-3.1.2-2]: answer in the 3.x format the client can read, then close. */
		fail(d, ENG_RC_UNSUPPORTED_VERSION, "unsupported protocol level");
		d->err->reply = ENG_V3_BAD_VERSION;
		d->err->version = mqisdp ? ENG_V31 : ENG_V311;
		d->err->action = ENG_ACT_CONNACK;
		return -ENG_RC_UNSUPPORTED_VERSION;
	}
	d->version = level;
	c->version = level;

	if ((rc = get_u8(d, &flags, "connect flags missing")) ||
	    (rc = get_u16(d, &c->keepalive, "keep alive runs past the packet")))
		return rc;
	if (flags & 0x01)
		return MALFORMED(d, "reserved CONNECT flag is set"); /* [MQTT-3.1.2-3] */
	c->clean_start = flags & 0x02;
	c->will = flags & 0x04;
	c->will_qos = (flags >> 3) & 3;
	c->will_retain = flags & 0x20;
	c->has_password = flags & 0x40;
	c->has_username = flags & 0x80;
	if (!c->will && (c->will_qos || c->will_retain))
		return MALFORMED(d, "will QoS or will retain set without a will"); /* 3.1.2-11,13 */
	if (c->will_qos == 3)
		return MALFORMED(d, "will QoS is 3"); /* [MQTT-3.1.2-12] */
	if (level < ENG_V5 && c->has_password && !c->has_username)
		return MALFORMED(d, "password without a user name"); /* [MQTT-3.1.2-22] */

	if ((rc = get_props_v(d, ENG_CONNECT, &c->props)) ||
	    (rc = GET_UTF8(d, &c->client_id, "client identifier")))
		return rc;

	memset(&c->will_topic, 0, sizeof(c->will_topic));
	memset(&c->will_payload, 0, sizeof(c->will_payload));
	if (c->will) {
		if ((rc = get_props_v(d, ENG_PLACE_WILL, &c->will_props)) ||
		    (rc = get_topic_name(d, &c->will_topic, "will topic runs past the packet",
					 "will topic is not valid UTF-8",
					 "will topic contains a wildcard")) ||
		    (rc = GET_BYTES(d, &c->will_payload, "will payload")))
			return rc;
		if (c->will_topic.len == 0)
			return fail(d, ENG_RC_TOPIC_NAME_INVALID, "will topic is empty");
	} else {
		props_zero(&c->will_props);
	}

	memset(&c->username, 0, sizeof(c->username));
	memset(&c->password, 0, sizeof(c->password));
	if (c->has_username && (rc = GET_UTF8(d, &c->username, "user name")))
		return rc;
	if (c->has_password && (rc = GET_BYTES(d, &c->password, "password")))
		return rc;
	if ((rc = no_trailing(d, "bytes after the CONNECT payload")))
		return rc;
	/*
	 * [MQTT-3.1.3-8] (3.1.1): a zero-byte ClientId with CleanSession 0 is refused with return
	 * code 0x02; a 3.1 ClientId has 1 to 23 characters, so an empty one is refused too.
	 */
	if (c->client_id.len == 0 && (level == ENG_V31 || (level == ENG_V311 && !c->clean_start))) {
		fail(d, ENG_RC_CLIENT_ID_INVALID, "empty client identifier");
		d->err->reply = ENG_V3_ID_REJECTED;
		d->err->action = ENG_ACT_CONNACK;
		return -ENG_RC_CLIENT_ID_INVALID;
	}
	return 0;
}

static int dec_connack(struct dec *d, struct eng_connack *c)
{
	uint8_t flags = 0;
	int rc;

	if ((rc = get_u8(d, &flags, "CONNACK flags missing")) ||
	    (rc = get_u8(d, &c->reason, "CONNACK reason code missing")))
		return rc;
	if (flags & 0xfe)
		return MALFORMED(d, "reserved CONNACK flags are set"); /* [MQTT-3.2.2-1] */
	c->session_present = flags & 1;
	if (d->version == ENG_V5) {
		if (!reason_ok(ENG_CONNACK, c->reason))
			return MALFORMED(d, "reason code not valid for this packet");
	} else if (c->reason > ENG_V3_NOT_AUTHORIZED) {
		return MALFORMED(d, "CONNACK return code above 5");
	}
	if (c->session_present && c->reason != 0)
		return PROTOCOL(d, "session present with a refused connection"); /* 3.2.2-6 */
	if ((rc = get_props_v(d, ENG_CONNACK, &c->props)))
		return rc;
	return no_trailing(d, "bytes after the CONNACK");
}

static int dec_publish(struct dec *d, uint8_t flags, struct eng_publish *p)
{
	int rc;

	p->qos = (flags >> 1) & 3;
	p->dup = flags & 0x08;
	p->retain = flags & 0x01;
	rc = get_topic_name(d, &p->topic, "topic name runs past the packet",
			    "topic name is not valid UTF-8", "topic name contains a wildcard");
	if (rc)
		return rc;
	p->packet_id = 0;
	if (p->qos && (rc = get_packet_id(d, &p->packet_id)))
		return rc;
	if ((rc = get_props_v(d, ENG_PUBLISH, &p->props)))
		return rc;
	if (p->topic.len == 0 && !(p->props.present & ENG_PBIT(ENG_PROP_TOPIC_ALIAS)))
		return PROTOCOL(d, "empty topic name without a Topic Alias"); /* [MQTT-3.3.2-1] */
	if (d->ctx->role == ENG_ROLE_SERVER && p->props.sub_id_count)
		return PROTOCOL(d, "Subscription Identifier in a client PUBLISH"); /* 3.3.4-6 */
	p->payload.p = d->p;
	p->payload.len = (uint32_t)left(d);
	return 0;
}

static int dec_ack(struct dec *d, struct eng_ack *a)
{
	int rc = get_packet_id(d, &a->packet_id);
	if (rc)
		return rc;
	if (d->version == ENG_V5)
		return get_reason_tail(d, &a->reason, &a->props);
	a->reason = 0;
	props_zero(&a->props);
	return no_trailing(d, "acknowledgement longer than 2 bytes");
}

/* A Topic Filter of SUBSCRIBE or UNSUBSCRIBE: UTF-8, at least one character [MQTT-4.7.3-1]. */
static int get_filter(struct dec *d, struct eng_str *f)
{
	int rc = GET_UTF8(d, f, "topic filter");
	if (rc)
		return rc;
	if (f->len == 0)
		return PROTOCOL(d, "empty topic filter");
	return 0;
}

static int dec_subscribe(struct dec *d, struct eng_subscribe *s)
{
	int rc;

	if ((rc = get_packet_id(d, &s->packet_id)) ||
	    (rc = get_props_v(d, d->type, &s->props)))
		return rc;
	s->raw.p = d->p;
	s->raw.len = (uint32_t)left(d);
	s->list = NULL;
	s->count = 0;
	while (d->p < d->end) {
		struct eng_str f;
		if ((rc = get_filter(d, &f)))
			return rc;
		if (d->type == ENG_SUBSCRIBE) {
			uint8_t o = 0;
			if ((rc = get_u8(d, &o, "subscription options missing")))
				return rc;
			/* QoS 3: Malformed in 3.1.1 [MQTT-3-8.3-4]; 5.0 3.8.3.1: Protocol Error */
			if ((o & ENG_SUBOPT_QOS_MASK) == 3)
				return d->version < ENG_V5 ? MALFORMED(d, "subscription QoS is 3")
							   : PROTOCOL(d, "subscription QoS is 3");
			if (d->version < ENG_V5) {
				if (o & 0xfc)
					return MALFORMED(d, "reserved subscription bits set");
			} else {
				if (o & 0xc0)
					return MALFORMED(d, "reserved subscription bits set");
				if ((o & ENG_SUBOPT_RH_MASK) >> ENG_SUBOPT_RH_SHIFT == 3)
					return PROTOCOL(d, "retain handling is 3");
				if ((o & ENG_SUBOPT_NO_LOCAL) && f.len >= 7 &&
				    memcmp(f.p, "$share/", 7) == 0)
					return PROTOCOL(d, "No Local on a shared subscription");
			}
		}
		s->count++;
	}
	if (s->count == 0) /* [MQTT-3.8.3-2], [MQTT-3.10.3-2] */
		return PROTOCOL(d, "no topic filter in the packet");
	return 0;
}

static int dec_suback(struct dec *d, struct eng_suback *s)
{
	int rc;

	if ((rc = get_packet_id(d, &s->packet_id)) ||
	    (rc = get_props_v(d, d->type, &s->props)))
		return rc;
	s->reasons = d->p;
	s->count = (uint32_t)left(d);
	if (d->type == ENG_UNSUBACK && d->version < ENG_V5) {
		s->reasons = NULL;
		return no_trailing(d, "3.x UNSUBACK longer than 2 bytes");
	}
	if (s->count == 0)
		return PROTOCOL(d, "no reason code in the packet");
	for (uint32_t i = 0; i < s->count; i++) {
		uint8_t r = s->reasons[i];
		bool ok = d->version == ENG_V5 ? reason_ok(d->type, r) : (r <= 2 || r == 0x80);
		if (!ok)
			return MALFORMED(d, "reason code not valid for this packet");
	}
	return 0;
}

static int dec_reason_pkt(struct dec *d, struct eng_reason_pkt *r)
{
	if (d->version == ENG_V5) {
		int rc = get_reason_tail(d, &r->reason, &r->props);
		/* [MQTT-3.14.2-2]: a server sends no Session Expiry Interval in DISCONNECT */
		if (!rc && d->type == ENG_DISCONNECT && d->ctx->role == ENG_ROLE_CLIENT &&
		    (r->props.present & ENG_PBIT(ENG_PROP_SESSION_EXPIRY)))
			return PROTOCOL(d, "Session Expiry Interval in a server DISCONNECT");
		return rc;
	}
	r->reason = 0;
	props_zero(&r->props);
	return no_trailing(d, "3.x DISCONNECT with a body");
}

/*
 * What the fixed header alone decides: reserved types and flags [MQTT-2.1.3-1], and whether
 * the peer may send this type in this direction and state.
 */
static int check_fixed_header(struct dec *d, uint8_t flags)
{
	const struct eng_codec_ctx *ctx = d->ctx;
	uint8_t t = d->type;

	if (t == 0)
		return MALFORMED(d, "reserved packet type 0");
	if (t == ENG_AUTH && ctx->version != 0 && ctx->version != ENG_V5)
		return MALFORMED(d, "reserved packet type 15 (AUTH is MQTT 5 only)");
	if (t == ENG_PUBLISH) {
		if ((flags & 0x06) == 0x06)
			return MALFORMED(d, "PUBLISH with QoS 3"); /* [MQTT-3.3.1-4] */
		if ((flags & 0x08) && !(flags & 0x06))
			return MALFORMED(d, "DUP set on a QoS 0 PUBLISH"); /* [MQTT-3.3.1-2] */
	} else {
		uint8_t want = (t == ENG_PUBREL || t == ENG_SUBSCRIBE || t == ENG_UNSUBSCRIBE) ? 2 : 0;
		if (flags != want)
			return MALFORMED(d, "reserved fixed header flags are wrong");
	}

	if (ctx->role == ENG_ROLE_SERVER) {
		if (ctx->version == 0 && t != ENG_CONNECT)
			return PROTOCOL(d, "first packet is not CONNECT"); /* [MQTT-3.1.0-1] */
		if (ctx->version != 0 && t == ENG_CONNECT)
			return PROTOCOL(d, "second CONNECT"); /* [MQTT-3.1.0-2] */
		if (t == ENG_CONNACK || t == ENG_SUBACK || t == ENG_UNSUBACK || t == ENG_PINGRESP)
			return PROTOCOL(d, "packet type only a server sends");
	} else {
		if (t == ENG_CONNECT || t == ENG_SUBSCRIBE || t == ENG_UNSUBSCRIBE ||
		    t == ENG_PINGREQ)
			return PROTOCOL(d, "packet type only a client sends");
		if (t == ENG_DISCONNECT && ctx->version != ENG_V5)
			return PROTOCOL(d, "a 3.x server never sends DISCONNECT");
	}
	return 0;
}

int eng_decode(const struct eng_codec_ctx *ctx, const uint8_t *buf, size_t len,
	       struct eng_packet *pkt, struct eng_decode_err *err)
{
	struct dec d = {.ctx = ctx, .err = err, .version = ctx->version};
	int rc;

	if (ctx->version != 0 && (ctx->version < ENG_V31 || ctx->version > ENG_V5))
		return -EINVAL;
	if (ctx->role == ENG_ROLE_CLIENT && ctx->version == 0)
		return -EINVAL;
	if (len < 1)
		return -EAGAIN;
	uint8_t flags = buf[0] & 0x0f;
	d.type = buf[0] >> 4;
	if ((rc = check_fixed_header(&d, flags)))
		return rc;

	const uint8_t *body = buf + 1;
	uint32_t rl;
	int v = eng_get_vbi(&body, buf + len, &rl);
	if (v == 0)
		return -EAGAIN;
	if (v < 0)
		return MALFORMED(&d, "Remaining Length longer than 4 bytes or not minimal");
	size_t total = (size_t)(body - buf) + rl;
	if (total > (ctx->max_packet ? ctx->max_packet : ENG_PACKET_MAX))
		return fail(&d, ENG_RC_PACKET_TOO_LARGE, "packet larger than the maximum size");
	if (len < total)
		return -EAGAIN;

	d.p = body;
	d.end = body + rl;
	pkt->type = d.type;
	pkt->flags = flags;
	pkt->size = (uint32_t)total;
	switch (d.type) {
	case ENG_CONNECT:
		rc = dec_connect(&d, &pkt->u.connect);
		break;
	case ENG_CONNACK:
		rc = dec_connack(&d, &pkt->u.connack);
		break;
	case ENG_PUBLISH:
		rc = dec_publish(&d, flags, &pkt->u.publish);
		break;
	case ENG_PUBACK:
	case ENG_PUBREC:
	case ENG_PUBREL:
	case ENG_PUBCOMP:
		rc = dec_ack(&d, &pkt->u.ack);
		break;
	case ENG_SUBSCRIBE:
	case ENG_UNSUBSCRIBE:
		rc = dec_subscribe(&d, &pkt->u.subscribe);
		break;
	case ENG_SUBACK:
	case ENG_UNSUBACK:
		rc = dec_suback(&d, &pkt->u.suback);
		break;
	case ENG_PINGREQ:
	case ENG_PINGRESP:
		rc = no_trailing(&d, "PINGREQ/PINGRESP with a body");
		break;
	default: /* DISCONNECT, AUTH */
		rc = dec_reason_pkt(&d, &pkt->u.disconnect);
		break;
	}
	return rc ? rc : (int)total;
}

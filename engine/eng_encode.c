/* SPDX-License-Identifier: MIT */
/*
 * MQTT encoder. Sizing and writing are two passes over the same layout: body_size() computes
 * the Remaining Length exactly (property blocks included, cached in struct layout), the
 * caller's buffer is checked once, and the writers then store bytes without further bounds
 * checks. A packet written is always exactly eng_encode_size() bytes.
 */
#include <assert.h>
#include <errno.h>

#include "eng_codec_internal.h"

#define STR_MAX 65535u

/* Sizes computed by the first pass, reused by the second. */
struct layout {
	uint32_t props;      /* property block body (without its length prefix) */
	uint32_t will_props; /* CONNECT: the will's */
	uint32_t rl;         /* Remaining Length */
};

/* 2 + len, or 0 if the string is too long for its two-byte length. */
static inline uint64_t str_size(struct eng_str s)
{
	return s.len <= STR_MAX ? 2u + (uint64_t)s.len : 0;
}

#define ADD_STR(n, s)                                                                              \
	do {                                                                                       \
		uint64_t sz_ = str_size(s);                                                        \
		if (!sz_)                                                                          \
			return -EINVAL;                                                            \
		(n) += sz_;                                                                        \
	} while (0)

/* Body size of a property block, or a negative errno. */
static int64_t props_size(const struct eng_props *pr)
{
	uint64_t n = 0;
	uint64_t single = pr->present & ~(ENG_PBIT(ENG_PROP_USER) | ENG_PBIT(ENG_PROP_SUBSCRIPTION_ID));

	if (single >> (ENG_PROP_ID_MAX + 1))
		return -EINVAL; /* bits above the last identifier */
	for (; single; single &= single - 1) {
		unsigned id = (unsigned)__builtin_ctzll(single);
		if (eng_prop_table[id].kind == ENG_PK_NONE)
			return -EINVAL;
		uint32_t v = eng_prop_value_size(pr, id);
		if (v == 0 || v > 2 + STR_MAX)
			return -EINVAL;
		n += 1 + v;
	}

	if (pr->user) {
		for (uint32_t i = 0; i < pr->user_count; i++) {
			n += 1;
			ADD_STR(n, pr->user[i].key);
			ADD_STR(n, pr->user[i].val);
		}
	} else if (pr->raw.len) {
		struct eng_iter it = eng_iter_of(pr->raw);
		struct eng_str k, v;
		while (eng_user_prop_next(&it, &k, &v))
			n += 1 + 4 + (uint64_t)k.len + v.len;
	}

	if (pr->sub_id) {
		for (uint32_t i = 0; i < pr->sub_id_count; i++) {
			unsigned sz = eng_vbi_size(pr->sub_id[i]);
			if (sz == 0 || pr->sub_id[i] == 0)
				return -EINVAL;
			n += 1 + sz;
		}
	} else if (pr->present & ENG_PBIT(ENG_PROP_SUBSCRIPTION_ID)) {
		unsigned sz = eng_vbi_size(pr->subscription_id);
		if (sz == 0 || pr->subscription_id == 0)
			return -EINVAL;
		n += 1 + sz;
	}
	return n <= ENG_VBI_MAX ? (int64_t)n : -EMSGSIZE;
}

/* Adds a property block (length prefix included) to n; the body size goes to *out. */
#define ADD_PROPS(n, pr, out)                                                                      \
	do {                                                                                       \
		int64_t ps_ = props_size(pr);                                                      \
		if (ps_ < 0)                                                                       \
			return ps_;                                                                \
		*(out) = (uint32_t)ps_;                                                            \
		(n) += eng_vbi_size((uint32_t)ps_) + (uint64_t)ps_;                                \
	} while (0)

/* MQTT 5 optional tail (acks, DISCONNECT, AUTH): omitted pieces when they carry defaults. */
static uint64_t reason_tail_size(uint8_t reason, uint32_t props)
{
	if (props)
		return 1 + eng_vbi_size(props) + props;
	return reason ? 1 : 0;
}

static int64_t body_size(const struct eng_packet *pkt, uint8_t version, struct layout *lo)
{
	bool v5 = version == ENG_V5;
	uint64_t n = 0;

	lo->props = 0;
	lo->will_props = 0;
	switch (pkt->type) {
	case ENG_CONNECT: {
		const struct eng_connect *c = &pkt->u.connect;
		n = (version == ENG_V31 ? 8 : 6) + 1 + 1 + 2;
		if (c->will_qos > 2)
			return -EINVAL;
		if (v5)
			ADD_PROPS(n, &c->props, &lo->props);
		ADD_STR(n, c->client_id);
		if (c->will) {
			if (v5)
				ADD_PROPS(n, &c->will_props, &lo->will_props);
			ADD_STR(n, c->will_topic);
			ADD_STR(n, c->will_payload);
		}
		if (c->has_username)
			ADD_STR(n, c->username);
		if (c->has_password)
			ADD_STR(n, c->password);
		break;
	}
	case ENG_CONNACK:
		n = 2;
		if (v5)
			ADD_PROPS(n, &pkt->u.connack.props, &lo->props);
		break;
	case ENG_PUBLISH: {
		const struct eng_publish *p = &pkt->u.publish;
		if (p->qos > 2)
			return -EINVAL;
		ADD_STR(n, p->topic);
		n += p->qos ? 2 : 0;
		if (v5)
			ADD_PROPS(n, &p->props, &lo->props);
		n += p->payload.len;
		break;
	}
	case ENG_PUBACK:
	case ENG_PUBREC:
	case ENG_PUBREL:
	case ENG_PUBCOMP:
		n = 2;
		if (v5) {
			int64_t ps = props_size(&pkt->u.ack.props);
			if (ps < 0)
				return ps;
			lo->props = (uint32_t)ps;
			n += reason_tail_size(pkt->u.ack.reason, lo->props);
		}
		break;
	case ENG_SUBSCRIBE:
	case ENG_UNSUBSCRIBE: {
		const struct eng_subscribe *s = &pkt->u.subscribe;
		n = 2;
		if (v5)
			ADD_PROPS(n, &s->props, &lo->props);
		if (!s->list) {
			n += s->raw.len;
			break;
		}
		for (uint32_t i = 0; i < s->count; i++) {
			ADD_STR(n, s->list[i].filter);
			n += pkt->type == ENG_SUBSCRIBE;
		}
		break;
	}
	case ENG_SUBACK:
	case ENG_UNSUBACK:
		n = 2;
		if (pkt->type == ENG_UNSUBACK && !v5)
			break;
		if (v5)
			ADD_PROPS(n, &pkt->u.suback.props, &lo->props);
		n += pkt->u.suback.count;
		break;
	case ENG_PINGREQ:
	case ENG_PINGRESP:
		break;
	case ENG_AUTH:
		if (!v5)
			return -EINVAL;
		/* fall through */
	case ENG_DISCONNECT:
		if (v5) {
			int64_t ps = props_size(&pkt->u.disconnect.props);
			if (ps < 0)
				return ps;
			lo->props = (uint32_t)ps;
			n = reason_tail_size(pkt->u.disconnect.reason, lo->props);
		}
		break;
	default:
		return -EINVAL;
	}
	if (n > ENG_VBI_MAX)
		return -EMSGSIZE;
	lo->rl = (uint32_t)n;
	return (int64_t)n;
}

static int size_of(const struct eng_packet *pkt, uint8_t version, struct layout *lo)
{
	if (version < ENG_V31 || version > ENG_V5)
		return -EINVAL;
	int64_t rl = body_size(pkt, version, lo);
	if (rl < 0)
		return (int)rl;
	return (int)(1 + eng_vbi_size((uint32_t)rl) + rl);
}

int eng_encode_size(const struct eng_packet *pkt, uint8_t version)
{
	struct layout lo;
	return size_of(pkt, version, &lo);
}

/* Writers: the space was checked against the computed size. */

static inline uint8_t *put16(uint8_t *w, uint16_t v)
{
	w[0] = (uint8_t)(v >> 8);
	w[1] = (uint8_t)v;
	return w + 2;
}

static inline uint8_t *put32(uint8_t *w, uint32_t v)
{
	w[0] = (uint8_t)(v >> 24);
	w[1] = (uint8_t)(v >> 16);
	w[2] = (uint8_t)(v >> 8);
	w[3] = (uint8_t)v;
	return w + 4;
}

static inline uint8_t *put_vbi(uint8_t *w, uint32_t v)
{
	do {
		uint8_t b = v & 0x7f;
		v >>= 7;
		*w++ = v ? (uint8_t)(b | 0x80) : b;
	} while (v);
	return w;
}

static inline uint8_t *put_str(uint8_t *w, struct eng_str s)
{
	w = put16(w, (uint16_t)s.len);
	if (s.len)
		memcpy(w, s.p, s.len);
	return w + s.len;
}

static uint8_t *put_user_props(uint8_t *w, const struct eng_props *pr)
{
	if (pr->user) {
		for (uint32_t i = 0; i < pr->user_count; i++) {
			*w++ = ENG_PROP_USER;
			w = put_str(w, pr->user[i].key);
			w = put_str(w, pr->user[i].val);
		}
	} else if (pr->raw.len) {
		struct eng_iter it = eng_iter_of(pr->raw);
		struct eng_str k, v;
		while (eng_user_prop_next(&it, &k, &v)) {
			*w++ = ENG_PROP_USER;
			w = put_str(w, k);
			w = put_str(w, v);
		}
	}
	return w;
}

static uint8_t *put_sub_ids(uint8_t *w, const struct eng_props *pr)
{
	if (pr->sub_id) {
		for (uint32_t i = 0; i < pr->sub_id_count; i++) {
			*w++ = ENG_PROP_SUBSCRIPTION_ID;
			w = put_vbi(w, pr->sub_id[i]);
		}
	} else if (pr->present & ENG_PBIT(ENG_PROP_SUBSCRIPTION_ID)) {
		*w++ = ENG_PROP_SUBSCRIPTION_ID;
		w = put_vbi(w, pr->subscription_id);
	}
	return w;
}

/* Properties in identifier order; body is the size props_size() returned. */
static uint8_t *put_props(uint8_t *w, const struct eng_props *pr, uint32_t body)
{
	/* in identifier order, visiting only what is there (user properties and subscription
	 * identifiers have their own lists) */
	uint64_t ids = (pr->present | ENG_PBIT(ENG_PROP_USER) | ENG_PBIT(ENG_PROP_SUBSCRIPTION_ID)) &
		       ((ENG_PBIT(ENG_PROP_ID_MAX) << 1) - 2); /* 1..ENG_PROP_ID_MAX, as props_size */

	w = put_vbi(w, body);
	for (; ids; ids &= ids - 1) {
		unsigned id = (unsigned)__builtin_ctzll(ids);
		if (id == ENG_PROP_USER) {
			w = put_user_props(w, pr);
			continue;
		}
		if (id == ENG_PROP_SUBSCRIPTION_ID) {
			w = put_sub_ids(w, pr);
			continue;
		}
		const char *field = (const char *)pr + eng_prop_table[id].offset;
		uint16_t u16;
		uint32_t u32;
		struct eng_str s;
		*w++ = (uint8_t)id;
		switch (eng_prop_table[id].kind) {
		case ENG_PK_BYTE:
			*w++ = *(const uint8_t *)field;
			break;
		case ENG_PK_U16:
			memcpy(&u16, field, sizeof(u16));
			w = put16(w, u16);
			break;
		case ENG_PK_U32:
			memcpy(&u32, field, sizeof(u32));
			w = put32(w, u32);
			break;
		default: /* STR, BIN */
			memcpy(&s, field, sizeof(s));
			w = put_str(w, s);
			break;
		}
	}
	return w;
}

static uint8_t fixed_flags(const struct eng_packet *pkt)
{
	switch (pkt->type) {
	case ENG_PUBLISH:
		return (uint8_t)(pkt->u.publish.dup << 3 | pkt->u.publish.qos << 1 |
				 pkt->u.publish.retain);
	case ENG_PUBREL:
	case ENG_SUBSCRIBE:
	case ENG_UNSUBSCRIBE:
		return 2;
	default:
		return 0;
	}
}

static uint8_t *put_reason_tail(uint8_t *w, uint8_t reason, const struct eng_props *pr,
				uint32_t props)
{
	if (props) {
		*w++ = reason;
		return put_props(w, pr, props);
	}
	if (reason)
		*w++ = reason;
	return w;
}

static uint8_t *put_body(uint8_t *w, const struct eng_packet *pkt, uint8_t version,
			 const struct layout *lo)
{
	bool v5 = version == ENG_V5;

	switch (pkt->type) {
	case ENG_CONNECT: {
		const struct eng_connect *c = &pkt->u.connect;
		static const uint8_t mqisdp[] = {'M', 'Q', 'I', 's', 'd', 'p'};
		static const uint8_t mqtt[] = {'M', 'Q', 'T', 'T'};
		struct eng_str name = {version == ENG_V31 ? mqisdp : mqtt,
				       version == ENG_V31 ? 6u : 4u};
		w = put_str(w, name);
		*w++ = version;
		*w++ = (uint8_t)(c->has_username << 7 | c->has_password << 6 |
				 (c->will && c->will_retain) << 5 | (c->will ? c->will_qos : 0) << 3 |
				 c->will << 2 | c->clean_start << 1);
		w = put16(w, c->keepalive);
		if (v5)
			w = put_props(w, &c->props, lo->props);
		w = put_str(w, c->client_id);
		if (c->will) {
			if (v5)
				w = put_props(w, &c->will_props, lo->will_props);
			w = put_str(w, c->will_topic);
			w = put_str(w, c->will_payload);
		}
		if (c->has_username)
			w = put_str(w, c->username);
		if (c->has_password)
			w = put_str(w, c->password);
		break;
	}
	case ENG_CONNACK:
		*w++ = pkt->u.connack.session_present;
		*w++ = pkt->u.connack.reason;
		if (v5)
			w = put_props(w, &pkt->u.connack.props, lo->props);
		break;
	case ENG_PUBLISH: {
		const struct eng_publish *p = &pkt->u.publish;
		w = put_str(w, p->topic);
		if (p->qos)
			w = put16(w, p->packet_id);
		if (v5)
			w = put_props(w, &p->props, lo->props);
		if (p->payload.len)
			memcpy(w, p->payload.p, p->payload.len);
		w += p->payload.len;
		break;
	}
	case ENG_PUBACK:
	case ENG_PUBREC:
	case ENG_PUBREL:
	case ENG_PUBCOMP:
		w = put16(w, pkt->u.ack.packet_id);
		if (v5)
			w = put_reason_tail(w, pkt->u.ack.reason, &pkt->u.ack.props, lo->props);
		break;
	case ENG_SUBSCRIBE:
	case ENG_UNSUBSCRIBE: {
		const struct eng_subscribe *s = &pkt->u.subscribe;
		w = put16(w, s->packet_id);
		if (v5)
			w = put_props(w, &s->props, lo->props);
		if (!s->list) {
			if (s->raw.len)
				memcpy(w, s->raw.p, s->raw.len);
			w += s->raw.len;
			break;
		}
		for (uint32_t i = 0; i < s->count; i++) {
			w = put_str(w, s->list[i].filter);
			if (pkt->type == ENG_SUBSCRIBE)
				*w++ = v5 ? s->list[i].options
					  : (uint8_t)(s->list[i].options & ENG_SUBOPT_QOS_MASK);
		}
		break;
	}
	case ENG_SUBACK:
	case ENG_UNSUBACK: {
		const struct eng_suback *s = &pkt->u.suback;
		w = put16(w, s->packet_id);
		if (pkt->type == ENG_UNSUBACK && !v5)
			break;
		if (v5)
			w = put_props(w, &s->props, lo->props);
		if (s->count)
			memcpy(w, s->reasons, s->count);
		w += s->count;
		break;
	}
	case ENG_DISCONNECT:
	case ENG_AUTH:
		if (v5)
			w = put_reason_tail(w, pkt->u.disconnect.reason, &pkt->u.disconnect.props,
					    lo->props);
		break;
	default: /* PINGREQ, PINGRESP: no body */
		break;
	}
	return w;
}

int eng_encode(const struct eng_packet *pkt, uint8_t version, uint8_t *buf, size_t cap)
{
	struct layout lo;

	if (pkt->type >= ENG_PUBACK && pkt->type <= ENG_PUBCOMP &&
	    (version != ENG_V5 || (!pkt->u.ack.reason && !pkt->u.ack.props.present &&
				   !pkt->u.ack.props.user_count && !pkt->u.ack.props.raw.len))) {
		/* the common ack: just the packet id (as the general path below would write it) */
		if (cap < 4)
			return -ENOSPC;
		buf[0] = (uint8_t)(pkt->type << 4 | fixed_flags(pkt));
		buf[1] = 2;
		put16(buf + 2, pkt->u.ack.packet_id);
		return 4;
	}
	int size = size_of(pkt, version, &lo);
	if (size < 0)
		return size;
	if ((size_t)size > cap)
		return -ENOSPC;
	uint8_t *w = buf;
	*w++ = (uint8_t)(pkt->type << 4 | fixed_flags(pkt));
	w = put_vbi(w, lo.rl);
	w = put_body(w, pkt, version, &lo);
	assert(w - buf == size);
	return size;
}

int eng_encode_publish_head(const struct eng_publish *pub, uint8_t version, uint8_t *buf,
			    size_t cap)
{
	struct eng_packet pkt;
	struct layout lo;

	if (!pub->props.present && pub->qos <= 2 && pub->topic.len <= STR_MAX) {
		/* the common case, no properties: written straight (the general path below sizes
		 * and writes every field and would give the same bytes) */
		uint32_t head = 2 + pub->topic.len + (pub->qos ? 2u : 0u) + (version == ENG_V5);
		uint64_t rl = (uint64_t)head + pub->payload.len;
		if (rl > ENG_VBI_MAX)
			return -EMSGSIZE;
		if (1 + eng_vbi_size((uint32_t)rl) + head > cap)
			return -ENOSPC;
		uint8_t *w = buf;
		*w++ = (uint8_t)(ENG_PUBLISH << 4 | pub->dup << 3 | pub->qos << 1 | pub->retain);
		w = put_vbi(w, (uint32_t)rl);
		w = put_str(w, pub->topic);
		if (pub->qos)
			w = put16(w, pub->packet_id);
		if (version == ENG_V5)
			*w++ = 0;
		return (int)(w - buf);
	}
	pkt.type = ENG_PUBLISH;
	pkt.u.publish = *pub;
	int size = size_of(&pkt, version, &lo);
	if (size < 0)
		return size;
	int head = size - (int)pub->payload.len;
	if ((size_t)head > cap)
		return -ENOSPC;
	uint8_t *w = buf;
	*w++ = (uint8_t)(ENG_PUBLISH << 4 | fixed_flags(&pkt));
	w = put_vbi(w, lo.rl);
	pkt.u.publish.payload.len = 0; /* the body writer stops before the payload */
	w = put_body(w, &pkt, version, &lo);
	assert(w - buf == head);
	return head;
}

/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the MQTT codec (engine/eng_codec.h), with a round-trip oracle.
 *
 * Input: two bytes of set-up, then a byte stream as a connection would receive it.
 *   byte 0: bit 0 role (0 server, 1 client); bits 1-2 ctx.version (0, 3, 4, 5);
 *           bits 3-4 max_packet: 0 none, 1 byte 1 + 1 (tiny), 2 (byte 1 + 1) * 64, 3 none.
 *   byte 1: the max_packet operand.
 * Packets are decoded one after the other while they decode (a server's version follows its
 * CONNECT). For each packet:
 * - it decodes the same from an exactly sized heap copy, and every shorter copy's last
 *   prefix is "incomplete" (-EAGAIN), so the decoder never needs a byte past the packet;
 * - the iterators agree with the decoded counts and stay inside the packet;
 * - re-encoded (eng_encode_size + eng_encode into an exactly sized heap buffer) and decoded
 *   again, it gives the same fields. The byte form may differ where the encoder picks the
 *   canonical one (property order, the short forms of MQTT 5 acks), so fields are compared,
 *   not bytes; a second re-encoding must however give the same bytes as the first.
 * - eng_encode() into a buffer one byte short fails with -ENOSPC; for a PUBLISH,
 *   eng_encode_publish_head() writes exactly the bytes before the payload.
 * Errors must carry a reason >= 0x80 equal to -rc, a known action and a message.
 * Any broken invariant abort()s with the line.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eng_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                         \
	do {                                                                                \
		if (!(cond)) {                                                              \
			fprintf(stderr, "fuzz_decode: %s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #cond);                                           \
			abort();                                                            \
		}                                                                           \
	} while (0)

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		abort();
	return p;
}

static bool str_eq(struct eng_str a, struct eng_str b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static bool inside(struct eng_str s, const uint8_t *buf, size_t len)
{
	return s.len == 0 || (s.p >= buf && s.p + s.len <= buf + len);
}

/* ---- Iterators against counts ------------------------------------------------------------ */

static void check_props(const struct eng_props *p, const uint8_t *buf, size_t len, uint8_t version)
{
	CHECK(inside(p->raw, buf, len));
	if (version != ENG_V5) {
		CHECK(p->present == 0 && p->raw.len == 0 && p->user_count == 0 &&
		      p->sub_id_count == 0);
		return;
	}
	struct eng_iter it = eng_iter_of(p->raw);
	struct eng_str k, v;
	uint32_t n = 0;
	while (eng_user_prop_next(&it, &k, &v)) {
		CHECK(inside(k, buf, len) && inside(v, buf, len));
		CHECK(eng_utf8_valid(k.p, k.len) && eng_utf8_valid(v.p, v.len));
		n++;
	}
	CHECK(n == p->user_count);
	CHECK(!n == !(p->present & ENG_PBIT(ENG_PROP_USER)));
	it = eng_iter_of(p->raw);
	uint32_t id, first = 0;
	n = 0;
	while (eng_sub_id_next(&it, &id)) {
		CHECK(id >= 1 && id <= ENG_VBI_MAX);
		if (n == 0)
			first = id;
		n++;
	}
	CHECK(n == p->sub_id_count);
	CHECK(!n == !(p->present & ENG_PBIT(ENG_PROP_SUBSCRIPTION_ID)));
	if (n)
		CHECK(first == p->subscription_id);
	const struct eng_str *views[] = {
		&p->content_type,	&p->response_topic,   &p->correlation_data,
		&p->assigned_client_id, &p->auth_method,      &p->auth_data,
		&p->response_info,	&p->server_reference, &p->reason_string};
	for (size_t i = 0; i < sizeof(views) / sizeof(views[0]); i++)
		CHECK(inside(*views[i], buf, len));
}

static void check_decoded(const struct eng_packet *pkt, const uint8_t *buf, size_t len,
			  uint8_t version)
{
	switch (pkt->type) {
	case ENG_CONNECT: {
		const struct eng_connect *c = &pkt->u.connect;
		CHECK(c->version == ENG_V31 || c->version == ENG_V311 || c->version == ENG_V5);
		CHECK(inside(c->client_id, buf, len) && inside(c->will_topic, buf, len) &&
		      inside(c->will_payload, buf, len) && inside(c->username, buf, len) &&
		      inside(c->password, buf, len));
		CHECK(c->will_qos <= 2);
		check_props(&c->props, buf, len, c->version);
		check_props(&c->will_props, buf, len, c->will ? c->version : 0);
		break;
	}
	case ENG_CONNACK:
		check_props(&pkt->u.connack.props, buf, len, version);
		break;
	case ENG_PUBLISH: {
		const struct eng_publish *p = &pkt->u.publish;
		CHECK(p->qos <= 2);
		CHECK(p->qos == 0 || p->packet_id != 0);
		CHECK(inside(p->topic, buf, len) && inside(p->payload, buf, len));
		CHECK(pkt->flags == ((p->dup ? 8 : 0) | p->qos << 1 | (p->retain ? 1 : 0)));
		check_props(&p->props, buf, len, version);
		break;
	}
	case ENG_PUBACK:
	case ENG_PUBREC:
	case ENG_PUBREL:
	case ENG_PUBCOMP:
		CHECK(version == ENG_V5 || pkt->u.ack.reason == 0);
		check_props(&pkt->u.ack.props, buf, len, version);
		break;
	case ENG_SUBSCRIBE: {
		const struct eng_subscribe *s = &pkt->u.subscribe;
		CHECK(inside(s->raw, buf, len));
		struct eng_iter it = eng_iter_of(s->raw);
		struct eng_str f;
		uint8_t o;
		uint32_t n = 0;
		while (eng_sub_next(&it, &f, &o)) {
			CHECK(inside(f, buf, len));
			CHECK((o & ENG_SUBOPT_QOS_MASK) != 3);
			n++;
		}
		CHECK(n == s->count && n > 0);
		check_props(&s->props, buf, len, version);
		break;
	}
	case ENG_UNSUBSCRIBE: {
		const struct eng_subscribe *s = &pkt->u.subscribe;
		CHECK(inside(s->raw, buf, len));
		struct eng_iter it = eng_iter_of(s->raw);
		struct eng_str f;
		uint32_t n = 0;
		while (eng_unsub_next(&it, &f)) {
			CHECK(inside(f, buf, len));
			n++;
		}
		CHECK(n == s->count && n > 0);
		check_props(&s->props, buf, len, version);
		break;
	}
	case ENG_SUBACK:
	case ENG_UNSUBACK: {
		const struct eng_suback *s = &pkt->u.suback;
		if (s->count) {
			struct eng_str r = {s->reasons, s->count};
			CHECK(inside(r, buf, len));
		}
		check_props(&s->props, buf, len, version);
		break;
	}
	case ENG_DISCONNECT:
	case ENG_AUTH:
		check_props(&pkt->u.disconnect.props, buf, len, version);
		break;
	case ENG_PINGREQ:
	case ENG_PINGRESP:
		break;
	default:
		CHECK(!"decoded an unknown packet type");
	}
}

/* ---- Field comparison of two decodings --------------------------------------------------- */

static void same_props(const struct eng_props *a, const struct eng_props *b)
{
	CHECK(a->present == b->present);
	CHECK(a->message_expiry == b->message_expiry && a->session_expiry == b->session_expiry &&
	      a->will_delay == b->will_delay && a->maximum_packet_size == b->maximum_packet_size &&
	      a->subscription_id == b->subscription_id &&
	      a->server_keep_alive == b->server_keep_alive &&
	      a->receive_maximum == b->receive_maximum &&
	      a->topic_alias_maximum == b->topic_alias_maximum && a->topic_alias == b->topic_alias);
	CHECK(a->payload_format == b->payload_format &&
	      a->request_problem_info == b->request_problem_info &&
	      a->request_response_info == b->request_response_info &&
	      a->maximum_qos == b->maximum_qos && a->retain_available == b->retain_available &&
	      a->wildcard_sub_available == b->wildcard_sub_available &&
	      a->sub_id_available == b->sub_id_available &&
	      a->shared_sub_available == b->shared_sub_available);
	CHECK(str_eq(a->content_type, b->content_type) &&
	      str_eq(a->response_topic, b->response_topic) &&
	      str_eq(a->correlation_data, b->correlation_data) &&
	      str_eq(a->assigned_client_id, b->assigned_client_id) &&
	      str_eq(a->auth_method, b->auth_method) && str_eq(a->auth_data, b->auth_data) &&
	      str_eq(a->response_info, b->response_info) &&
	      str_eq(a->server_reference, b->server_reference) &&
	      str_eq(a->reason_string, b->reason_string));
	CHECK(a->user_count == b->user_count && a->sub_id_count == b->sub_id_count);
	struct eng_iter ia = eng_iter_of(a->raw), ib = eng_iter_of(b->raw);
	struct eng_str ka, va, kb, vb;
	for (;;) {
		bool ma = eng_user_prop_next(&ia, &ka, &va);
		bool mb = eng_user_prop_next(&ib, &kb, &vb);
		CHECK(ma == mb);
		if (!ma)
			break;
		CHECK(str_eq(ka, kb) && str_eq(va, vb));
	}
	ia = eng_iter_of(a->raw);
	ib = eng_iter_of(b->raw);
	uint32_t x, y;
	for (;;) {
		bool ma = eng_sub_id_next(&ia, &x);
		bool mb = eng_sub_id_next(&ib, &y);
		CHECK(ma == mb);
		if (!ma)
			break;
		CHECK(x == y);
	}
}

static void same_packet(const struct eng_packet *a, const struct eng_packet *b)
{
	CHECK(a->type == b->type && a->flags == b->flags);
	switch (a->type) {
	case ENG_CONNECT: {
		const struct eng_connect *x = &a->u.connect, *y = &b->u.connect;
		CHECK(x->version == y->version && x->clean_start == y->clean_start &&
		      x->will == y->will && x->will_qos == y->will_qos &&
		      x->will_retain == y->will_retain && x->has_username == y->has_username &&
		      x->has_password == y->has_password && x->keepalive == y->keepalive);
		CHECK(str_eq(x->client_id, y->client_id) && str_eq(x->will_topic, y->will_topic) &&
		      str_eq(x->will_payload, y->will_payload) &&
		      str_eq(x->username, y->username) && str_eq(x->password, y->password));
		same_props(&x->props, &y->props);
		same_props(&x->will_props, &y->will_props);
		break;
	}
	case ENG_CONNACK:
		CHECK(a->u.connack.session_present == b->u.connack.session_present &&
		      a->u.connack.reason == b->u.connack.reason);
		same_props(&a->u.connack.props, &b->u.connack.props);
		break;
	case ENG_PUBLISH: {
		const struct eng_publish *x = &a->u.publish, *y = &b->u.publish;
		CHECK(x->qos == y->qos && x->dup == y->dup && x->retain == y->retain &&
		      x->packet_id == y->packet_id);
		CHECK(str_eq(x->topic, y->topic) && str_eq(x->payload, y->payload));
		same_props(&x->props, &y->props);
		break;
	}
	case ENG_PUBACK:
	case ENG_PUBREC:
	case ENG_PUBREL:
	case ENG_PUBCOMP:
		CHECK(a->u.ack.packet_id == b->u.ack.packet_id &&
		      a->u.ack.reason == b->u.ack.reason);
		same_props(&a->u.ack.props, &b->u.ack.props);
		break;
	case ENG_SUBSCRIBE:
	case ENG_UNSUBSCRIBE: {
		const struct eng_subscribe *x = &a->u.subscribe, *y = &b->u.subscribe;
		CHECK(x->packet_id == y->packet_id && x->count == y->count);
		struct eng_iter ix = eng_iter_of(x->raw), iy = eng_iter_of(y->raw);
		struct eng_str fx, fy;
		uint8_t ox = 0, oy = 0;
		for (;;) {
			bool mx, my;
			if (a->type == ENG_SUBSCRIBE) {
				mx = eng_sub_next(&ix, &fx, &ox);
				my = eng_sub_next(&iy, &fy, &oy);
			} else {
				mx = eng_unsub_next(&ix, &fx);
				my = eng_unsub_next(&iy, &fy);
			}
			CHECK(mx == my);
			if (!mx)
				break;
			CHECK(str_eq(fx, fy) && ox == oy);
		}
		same_props(&x->props, &y->props);
		break;
	}
	case ENG_SUBACK:
	case ENG_UNSUBACK: {
		const struct eng_suback *x = &a->u.suback, *y = &b->u.suback;
		CHECK(x->packet_id == y->packet_id && x->count == y->count);
		CHECK(x->count == 0 || memcmp(x->reasons, y->reasons, x->count) == 0);
		same_props(&x->props, &y->props);
		break;
	}
	case ENG_DISCONNECT:
	case ENG_AUTH:
		CHECK(a->u.disconnect.reason == b->u.disconnect.reason);
		same_props(&a->u.disconnect.props, &b->u.disconnect.props);
		break;
	default:
		break;
	}
}

/* ---- Re-encoding -------------------------------------------------------------------------- */

/* Clears the encode-only pointers of a decoded block and gathers its subscription ids. */
static uint32_t *prepare_props(struct eng_props *p)
{
	p->user = NULL;
	p->sub_id = NULL;
	if (!p->sub_id_count)
		return NULL;
	uint32_t *ids = xmalloc(sizeof(*ids) * p->sub_id_count);
	struct eng_iter it = eng_iter_of(p->raw);
	uint32_t n = 0, id;
	while (n < p->sub_id_count && eng_sub_id_next(&it, &id))
		ids[n++] = id;
	CHECK(n == p->sub_id_count);
	p->sub_id = ids;
	return ids;
}

static struct eng_props *props_of(struct eng_packet *p)
{
	switch (p->type) {
	case ENG_CONNECT:
		return &p->u.connect.props;
	case ENG_CONNACK:
		return &p->u.connack.props;
	case ENG_PUBLISH:
		return &p->u.publish.props;
	case ENG_PUBACK:
	case ENG_PUBREC:
	case ENG_PUBREL:
	case ENG_PUBCOMP:
		return &p->u.ack.props;
	case ENG_SUBSCRIBE:
	case ENG_UNSUBSCRIBE:
		return &p->u.subscribe.props;
	case ENG_SUBACK:
	case ENG_UNSUBACK:
		return &p->u.suback.props;
	case ENG_DISCONNECT:
	case ENG_AUTH:
		return &p->u.disconnect.props;
	default:
		return NULL;
	}
}

/* Encodes a decoded packet into an exactly sized heap buffer; *n gets its size. */
static uint8_t *reencode(const struct eng_packet *decoded, uint8_t version, int *n)
{
	struct eng_packet q = *decoded;
	uint32_t *ids = NULL, *will_ids = NULL;
	struct eng_props *pp = props_of(&q);
	if (pp)
		ids = prepare_props(pp);
	if (q.type == ENG_CONNECT)
		will_ids = prepare_props(&q.u.connect.will_props);
	if (q.type == ENG_SUBSCRIBE || q.type == ENG_UNSUBSCRIBE)
		q.u.subscribe.list = NULL;

	int size = eng_encode_size(&q, version);
	if (size <= 0) {
		fprintf(stderr, "fuzz_decode: eng_encode_size(type %d, version %d) = %d\n", q.type,
			version, size);
		abort();
	}
	uint8_t *out = xmalloc((size_t)size);
	CHECK(eng_encode(&q, version, out, (size_t)size) == size);

	/* One byte short: -ENOSPC, and nothing written past the (exact) buffer. */
	uint8_t *shortbuf = xmalloc((size_t)size - 1);
	CHECK(eng_encode(&q, version, shortbuf, (size_t)size - 1) == -ENOSPC);
	free(shortbuf);

	if (q.type == ENG_PUBLISH) {
		size_t hlen = (size_t)size - q.u.publish.payload.len;
		uint8_t *head = xmalloc(hlen);
		CHECK(eng_encode_publish_head(&q.u.publish, version, head, hlen) == (int)hlen);
		CHECK(memcmp(head, out, hlen) == 0);
		CHECK(q.u.publish.payload.len == 0 ||
		      memcmp(out + hlen, q.u.publish.payload.p, q.u.publish.payload.len) == 0);
		free(head);
	}
	free(ids);
	free(will_ids);
	*n = size;
	return out;
}

static void round_trip(const struct eng_codec_ctx *ctx, const struct eng_packet *pkt)
{
	uint8_t version = pkt->type == ENG_CONNECT ? pkt->u.connect.version : ctx->version;
	struct eng_codec_ctx c2 = *ctx;
	c2.max_packet = 0; /* a canonical form is never longer, but be independent of it */

	int n;
	uint8_t *out = reencode(pkt, version, &n);
	struct eng_packet again;
	struct eng_decode_err err;
	memset(&again, 0x3C, sizeof(again));
	int rc = eng_decode(&c2, out, (size_t)n, &again, &err);
	if (rc != n) {
		fprintf(stderr,
			"fuzz_decode: re-encoded type %d version %d does not decode: %d (%s)\n",
			pkt->type, version, rc, rc < 0 && rc != -EAGAIN ? err.what : "");
		for (int i = 0; i < n && i < 64; i++)
			fprintf(stderr, "%02x ", out[i]);
		fprintf(stderr, "\n");
		abort();
	}
	CHECK(again.size == (uint32_t)n);
	check_decoded(&again, out, (size_t)n, version);
	same_packet(&again, pkt);

	/* The canonical form is a fixed point. */
	int n2;
	uint8_t *out2 = reencode(&again, version, &n2);
	CHECK(n2 == n && memcmp(out, out2, (size_t)n) == 0);
	free(out2);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t versions[4] = {0, ENG_V31, ENG_V311, ENG_V5};
	if (size < 2)
		return 0;
	struct eng_codec_ctx ctx;
	memset(&ctx, 0, sizeof(ctx));
	ctx.role = data[0] & 1;
	ctx.version = versions[(data[0] >> 1) & 3];
	switch ((data[0] >> 3) & 3) {
	case 1:
		ctx.max_packet = (uint32_t)data[1] + 1;
		break;
	case 2:
		ctx.max_packet = ((uint32_t)data[1] + 1) * 64;
		break;
	default:
		ctx.max_packet = 0;
		break;
	}
	const uint8_t *buf = data + 2;
	size_t len = size - 2;

	size_t off = 0;
	while (off < len) {
		struct eng_packet pkt;
		struct eng_decode_err err;
		memset(&pkt, 0xA5, sizeof(pkt));
		memset(&err, 0xA5, sizeof(err));
		int rc = eng_decode(&ctx, buf + off, len - off, &pkt, &err);
		if (ctx.role == ENG_ROLE_CLIENT && ctx.version == 0) {
			CHECK(rc == -EINVAL);
			return 0;
		}
		if (rc == -EAGAIN)
			break;
		if (rc < 0) {
			CHECK(err.reason >= 0x80 && rc == -(int)err.reason);
			CHECK(err.action <= ENG_ACT_DISCONNECT);
			CHECK(err.what != NULL);
			CHECK(err.type <= 15);
			if (err.action == ENG_ACT_DISCONNECT)
				CHECK(err.version == ENG_V5 && err.reply == err.reason);
			if (err.action == ENG_ACT_CONNACK) {
				CHECK(err.type == ENG_CONNECT);
				CHECK(err.version == ENG_V31 || err.version == ENG_V311 ||
				      err.version == ENG_V5);
				if (err.version == ENG_V5)
					CHECK(err.reply == err.reason);
				else
					CHECK(err.reply >= 1 && err.reply <= 5);
			}
			if (err.reason == ENG_RC_PACKET_TOO_LARGE)
				CHECK(ctx.max_packet != 0);
			break;
		}
		CHECK((size_t)rc <= len - off);
		CHECK(pkt.size == (uint32_t)rc);
		CHECK(ctx.max_packet == 0 || (uint32_t)rc <= ctx.max_packet);

		/* The packet alone, in an exact heap copy: same size; one byte less: incomplete. */
		uint8_t *own = xmalloc((size_t)rc);
		memcpy(own, buf + off, (size_t)rc);
		struct eng_packet pkt2;
		memset(&pkt2, 0x5A, sizeof(pkt2)); /* another poison: unfilled fields differ */
		CHECK(eng_decode(&ctx, own, (size_t)rc, &pkt2, &err) == rc);
		uint8_t *less = xmalloc((size_t)rc - 1);
		memcpy(less, own, (size_t)rc - 1);
		struct eng_packet pkt3;
		CHECK(eng_decode(&ctx, less, (size_t)rc - 1, &pkt3, &err) == -EAGAIN);
		free(less);

		uint8_t v = pkt2.type == ENG_CONNECT ? pkt2.u.connect.version : ctx.version;
		check_decoded(&pkt2, own, (size_t)rc, v);
		same_packet(&pkt2, &pkt);
		round_trip(&ctx, &pkt2);
		free(own);

		if (pkt.type == ENG_CONNECT)
			ctx.version = pkt.u.connect.version;
		off += (size_t)rc;
	}
	return 0;
}

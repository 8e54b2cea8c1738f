// SPDX-License-Identifier: MIT
//
// Helpers shared by the codec tests: builders for hand-written packets (the bytes come from
// the MQTT 3.1, 3.1.1 and 5.0 specifications, not from the encoder), a decoder wrapper that
// copies its input into an exactly sized heap buffer (so ASan flags any read past the end)
// and keeps that buffer alive for the views of the decoded packet, encode helpers that write
// into exactly sized heap buffers, and field-by-field comparisons of packets.
#ifndef ENG_TEST_UTIL_H
#define ENG_TEST_UTIL_H

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "eng_codec.h"

namespace engtest
{

// Each checking helper NAME_at() is called through a macro NAME() that adds the calling line
// to the failure messages.
#define ENG_TRACED(name, ...)           \
	do {                            \
		SCOPED_TRACE(#name);    \
		name##_at(__VA_ARGS__); \
	} while (0)
#define expect_err(...) ENG_TRACED(expect_err, __VA_ARGS__)
#define expect_conn_err(...) ENG_TRACED(expect_conn_err, __VA_ARGS__)
#define expect_bytes_props(...) ENG_TRACED(expect_bytes_props, __VA_ARGS__)
#define expect_props_eq(...) ENG_TRACED(expect_props_eq, __VA_ARGS__)
#define expect_packet_eq(...) ENG_TRACED(expect_packet_eq, __VA_ARGS__)
#define expect_same_decoded(...) ENG_TRACED(expect_same_decoded, __VA_ARGS__)

using Bytes = std::vector<uint8_t>;

inline Bytes B(std::initializer_list<int> v)
{
	Bytes out;
	for (int x : v)
		out.push_back(static_cast<uint8_t>(x));
	return out;
}

inline Bytes cat(std::initializer_list<Bytes> parts)
{
	Bytes out;
	for (const Bytes &p : parts)
		out.insert(out.end(), p.begin(), p.end());
	return out;
}

inline Bytes raw(const std::string &s)
{
	return Bytes(s.begin(), s.end());
}

inline Bytes u16(unsigned v)
{
	return B({int((v >> 8) & 0xff), int(v & 0xff)});
}

inline Bytes u32(uint32_t v)
{
	return B({int(v >> 24), int((v >> 16) & 0xff), int((v >> 8) & 0xff), int(v & 0xff)});
}

// Variable byte integer, minimal form (MQTT 5 1.5.5; the Remaining Length of every version).
inline Bytes vbi(uint32_t v)
{
	Bytes out;
	do {
		uint8_t b = v % 128;
		v /= 128;
		if (v)
			b |= 0x80;
		out.push_back(b);
	} while (v);
	return out;
}

// Two-byte length prefixed string / binary data.
inline Bytes str(const std::string &s)
{
	return cat({u16(unsigned(s.size())), raw(s)});
}

inline Bytes bin(const Bytes &b)
{
	return cat({u16(unsigned(b.size())), b});
}

// A packet: fixed header byte, minimal Remaining Length, body.
inline Bytes pkt(int b0, const Bytes &body)
{
	return cat({B({b0}), vbi(uint32_t(body.size())), body});
}

// A property block: its length then the properties.
inline Bytes props(const Bytes &block)
{
	return cat({vbi(uint32_t(block.size())), block});
}

inline Bytes no_props()
{
	return B({0});
}

// One property of each data type (MQTT 5 2.2.2.2).
inline Bytes p_byte(int id, int v)
{
	return B({id, v});
}
inline Bytes p_u16(int id, unsigned v)
{
	return cat({B({id}), u16(v)});
}
inline Bytes p_u32(int id, uint32_t v)
{
	return cat({B({id}), u32(v)});
}
inline Bytes p_vbi(int id, uint32_t v)
{
	return cat({B({id}), vbi(v)});
}
inline Bytes p_str(int id, const std::string &s)
{
	return cat({B({id}), str(s)});
}
inline Bytes p_user(const std::string &k, const std::string &v)
{
	return cat({B({ENG_PROP_USER}), str(k), str(v)});
}

inline std::string S(struct eng_str s)
{
	if (s.len == 0)
		return std::string();
	return std::string(reinterpret_cast<const char *>(s.p), s.len);
}

// A view of a C string (a literal: it outlives the view).
inline struct eng_str V(const char *s) {
	struct eng_str v;
	v.p = reinterpret_cast<const uint8_t *>(s);
	v.len = uint32_t(strlen(s));
	return v;
}

// A view of a string the caller keeps alive (never a temporary).
struct eng_str
V(std::string &&) = delete;
struct eng_str V(Bytes &&) = delete;
inline struct eng_str V(const std::string &s) {
	struct eng_str v;
	v.p = reinterpret_cast<const uint8_t *>(s.data());
	v.len = uint32_t(s.size());
	return v;
}

inline struct eng_str
V(const Bytes &b) {
	struct eng_str v;
	v.p = b.data();
	v.len = uint32_t(b.size());
	return v;
}

inline struct eng_codec_ctx
ctx(uint8_t version, uint8_t role, uint32_t max_packet = 0)
{
	struct eng_codec_ctx c;
	memset(&c, 0, sizeof(c));
	c.version = version;
	c.role = role;
	c.max_packet = max_packet;
	return c;
}

// The result of one eng_decode() call, with the exactly sized heap copy its views point into.
struct Dec {
	std::unique_ptr<uint8_t[]> buf;
	size_t len = 0;
	int rc = 0;
	struct eng_packet pkt;
	struct eng_decode_err err;

	bool inside(struct eng_str s) const
	{
		if (s.len == 0)
			return true;
		return s.p >= buf.get() && s.p + s.len <= buf.get() + len;
	}
};

// Decodes in[0..len) (all of in by default) from an exactly sized heap copy. pkt and err are
// poisoned first so that a field the decoder forgets to fill shows up.
inline Dec decode(const struct eng_codec_ctx &c, const Bytes &in, size_t len = SIZE_MAX)
{
	Dec d;
	d.len = std::min(len, in.size());
	d.buf.reset(new uint8_t[d.len ? d.len : 1]);
	if (d.len)
		memcpy(d.buf.get(), in.data(), d.len);
	memset(&d.pkt, 0xA5, sizeof(d.pkt));
	memset(&d.err, 0xA5, sizeof(d.err));
	d.rc = eng_decode(&c, d.len ? d.buf.get() : nullptr, d.len, &d.pkt, &d.err);
	return d;
}

// A server after CONNECT (version != 0), or one waiting for CONNECT (version 0).
inline Dec srv(uint8_t version, const Bytes &in)
{
	return decode(ctx(version, ENG_ROLE_SERVER), in);
}

inline Dec cli(uint8_t version, const Bytes &in)
{
	return decode(ctx(version, ENG_ROLE_CLIENT), in);
}

inline struct eng_packet mk(uint8_t type)
{
	struct eng_packet p;
	memset(&p, 0, sizeof(p));
	p.type = type;
	return p;
}

// Encodes into an exactly sized heap buffer; checks that eng_encode() writes exactly
// eng_encode_size() bytes. Returns an empty vector (with a test failure) on an error.
inline Bytes encode(const struct eng_packet &p, uint8_t version)
{
	int n = eng_encode_size(&p, version);
	EXPECT_GT(n, 0) << "eng_encode_size type " << int(p.type) << " version " << int(version);
	if (n <= 0)
		return Bytes();
	std::unique_ptr<uint8_t[]> buf(new uint8_t[size_t(n)]);
	int m = eng_encode(&p, version, buf.get(), size_t(n));
	EXPECT_EQ(m, n) << "eng_encode type " << int(p.type) << " version " << int(version);
	if (m != n)
		return Bytes();
	return Bytes(buf.get(), buf.get() + n);
}

inline std::string hex(const Bytes &b)
{
	static const char d[] = "0123456789abcdef";
	std::string s;
	for (size_t i = 0; i < b.size(); i++) {
		if (i)
			s += ' ';
		s += d[b[i] >> 4];
		s += d[b[i] & 15];
	}
	return s;
}

#define EXPECT_BYTES(got, want) EXPECT_EQ(engtest::hex(got), engtest::hex(want))

// Checks a decoding error: the return value, the reason, the action, the packet type, the
// version to answer in and, for an MQTT 5 answer, the code sent.
inline void expect_err_at(const Dec &d, int reason, int action, int type, int version)
{
	EXPECT_EQ(d.rc, -reason);
	EXPECT_EQ(int(d.err.reason), reason);
	EXPECT_EQ(int(d.err.action), action);
	EXPECT_EQ(int(d.err.type), type);
	EXPECT_EQ(int(d.err.version), version);
	EXPECT_NE(d.err.what, nullptr);
	// An MQTT 5 reply carries the reason itself.
	if (action != ENG_ACT_CLOSE && version == ENG_V5) {
		EXPECT_EQ(int(d.err.reply), reason);
	}
}

// The error a connection in state (version) answers with: MQTT 5 sends DISCONNECT, MQTT 3.x
// and a connection that has no version yet close silently.
inline int conn_action(uint8_t version)
{
	return version == ENG_V5 ? ENG_ACT_DISCONNECT : ENG_ACT_CLOSE;
}

inline void expect_conn_err_at(const Dec &d, int reason, int type, uint8_t version)
{
	expect_err(d, reason, conn_action(version), type, version);
}

// Lists of the repeatable things in decoded blocks, through the public iterators.
using Pairs = std::vector<std::pair<std::string, std::string>>;

inline Pairs user_props(const struct eng_props &p)
{
	Pairs out;
	struct eng_iter it = eng_iter_of(p.raw);
	struct eng_str k, v;
	while (eng_user_prop_next(&it, &k, &v))
		out.emplace_back(S(k), S(v));
	return out;
}

inline std::vector<uint32_t> sub_ids(const struct eng_props &p)
{
	std::vector<uint32_t> out;
	struct eng_iter it = eng_iter_of(p.raw);
	uint32_t id;
	while (eng_sub_id_next(&it, &id))
		out.push_back(id);
	return out;
}

using Entries = std::vector<std::pair<std::string, int>>;

inline Entries sub_entries(const struct eng_subscribe &s)
{
	Entries out;
	struct eng_iter it = eng_iter_of(s.raw);
	struct eng_str f;
	uint8_t o;
	while (eng_sub_next(&it, &f, &o))
		out.emplace_back(S(f), int(o));
	return out;
}

inline std::vector<std::string> unsub_entries(const struct eng_subscribe &s)
{
	std::vector<std::string> out;
	struct eng_iter it = eng_iter_of(s.raw);
	struct eng_str f;
	while (eng_unsub_next(&it, &f))
		out.push_back(S(f));
	return out;
}

// MQTT 5 property data types (2.2.2.2), for the test-side splitting of property blocks.
enum class PType { None, Byte, U16, U32, Vbi, Str, Bin, Pair };

inline PType prop_type(int id)
{
	switch (id) {
	case ENG_PROP_PAYLOAD_FORMAT:
	case ENG_PROP_REQUEST_PROBLEM_INFO:
	case ENG_PROP_REQUEST_RESPONSE_INFO:
	case ENG_PROP_MAXIMUM_QOS:
	case ENG_PROP_RETAIN_AVAILABLE:
	case ENG_PROP_WILDCARD_SUB_AVAILABLE:
	case ENG_PROP_SUB_ID_AVAILABLE:
	case ENG_PROP_SHARED_SUB_AVAILABLE:
		return PType::Byte;
	case ENG_PROP_SERVER_KEEP_ALIVE:
	case ENG_PROP_RECEIVE_MAXIMUM:
	case ENG_PROP_TOPIC_ALIAS_MAXIMUM:
	case ENG_PROP_TOPIC_ALIAS:
		return PType::U16;
	case ENG_PROP_MESSAGE_EXPIRY:
	case ENG_PROP_SESSION_EXPIRY:
	case ENG_PROP_WILL_DELAY:
	case ENG_PROP_MAXIMUM_PACKET_SIZE:
		return PType::U32;
	case ENG_PROP_SUBSCRIPTION_ID:
		return PType::Vbi;
	case ENG_PROP_CONTENT_TYPE:
	case ENG_PROP_RESPONSE_TOPIC:
	case ENG_PROP_ASSIGNED_CLIENT_ID:
	case ENG_PROP_AUTH_METHOD:
	case ENG_PROP_RESPONSE_INFO:
	case ENG_PROP_SERVER_REFERENCE:
	case ENG_PROP_REASON_STRING:
		return PType::Str;
	case ENG_PROP_CORRELATION_DATA:
	case ENG_PROP_AUTH_DATA:
		return PType::Bin;
	case ENG_PROP_USER:
		return PType::Pair;
	default:
		return PType::None;
	}
}

// Splits a well-formed property block (without its length) into its records.
inline std::vector<Bytes> split_props(const Bytes &block)
{
	std::vector<Bytes> out;
	size_t i = 0;
	while (i < block.size()) {
		size_t start = i;
		int id = block[i++];
		size_t n = 0;
		switch (prop_type(id)) {
		case PType::Byte:
			n = 1;
			break;
		case PType::U16:
			n = 2;
			break;
		case PType::U32:
			n = 4;
			break;
		case PType::Vbi:
			while (i + n < block.size() && (block[i + n] & 0x80))
				n++;
			n++;
			break;
		case PType::Str:
		case PType::Bin:
			n = 2 + (i + 1 < block.size() ? (block[i] << 8 | block[i + 1]) : 0);
			break;
		case PType::Pair: {
			size_t k = 2 + (i + 1 < block.size() ? (block[i] << 8 | block[i + 1]) : 0);
			size_t j = i + k;
			size_t v = 2 + (j + 1 < block.size() ? (block[j] << 8 | block[j + 1]) : 0);
			n = k + v;
			break;
		}
		case PType::None:
			ADD_FAILURE() << "unknown property id " << id;
			return out;
		}
		i = std::min(block.size(), i + n);
		out.emplace_back(block.begin() + long(start), block.begin() + long(i));
	}
	return out;
}

inline uint32_t read_vbi(const Bytes &b, size_t &i)
{
	uint32_t v = 0, mul = 1;
	while (i < b.size()) {
		uint8_t x = b[i++];
		v += (x & 0x7f) * mul;
		mul *= 128;
		if (!(x & 0x80))
			break;
	}
	return v;
}

// Property order within a block is the encoder's choice (the specs fix none, except that
// User Properties keep their order, 3.3.2.3.7, and so do Subscription Identifiers): a
// canonical form sorts records by identifier, stable so repeated ones keep their order.
inline std::vector<Bytes> canon_props(const Bytes &block)
{
	std::vector<Bytes> r = split_props(block);
	std::stable_sort(r.begin(), r.end(),
			 [](const Bytes &a, const Bytes &b) { return a[0] < b[0]; });
	return r;
}

// Compares encoded bytes with the expected ones, exactly except inside the property blocks
// whose length fields start at the given offsets of want, which are compared as canonical
// lists of records.
inline void expect_bytes_props_at(const Bytes &got, const Bytes &want, std::vector<size_t> offs)
{
	ASSERT_EQ(got.size(), want.size()) << "got  " << hex(got) << "\nwant " << hex(want);
	size_t pos = 0;
	for (size_t off : offs) {
		Bytes a(got.begin() + long(pos), got.begin() + long(off));
		Bytes b(want.begin() + long(pos), want.begin() + long(off));
		EXPECT_BYTES(a, b);
		size_t i = off, j = off;
		uint32_t la = read_vbi(got, i), lb = read_vbi(want, j);
		ASSERT_EQ(la, lb);
		ASSERT_EQ(i, j);
		ASSERT_LE(i + la, got.size());
		Bytes ba(got.begin() + long(i), got.begin() + long(i + la));
		Bytes bb(want.begin() + long(j), want.begin() + long(j + lb));
		std::vector<Bytes> ca = canon_props(ba), cb = canon_props(bb);
		ASSERT_EQ(ca.size(), cb.size()) << hex(ba) << " vs " << hex(bb);
		for (size_t k = 0; k < ca.size(); k++)
			EXPECT_BYTES(ca[k], cb[k]);
		pos = i + la;
	}
	Bytes a(got.begin() + long(pos), got.end());
	Bytes b(want.begin() + long(pos), want.end());
	EXPECT_BYTES(a, b);
}

// Decodes a whole encoded packet in the direction it travels: packets a server receives are
// decoded by a server, the others by a client.
inline bool to_server(uint8_t type)
{
	switch (type) {
	case ENG_CONNECT:
	case ENG_SUBSCRIBE:
	case ENG_UNSUBSCRIBE:
	case ENG_PINGREQ:
		return true;
	case ENG_CONNACK:
	case ENG_SUBACK:
	case ENG_UNSUBACK:
	case ENG_PINGRESP:
		return false;
	default: /* both directions */
		return true;
	}
}

// Field-by-field equality of an encoded packet (want) and its decoding (got).
inline void expect_str_eq(struct eng_str got, struct eng_str want, const char *what)
{
	EXPECT_EQ(S(got), S(want)) << what;
}

inline void expect_props_eq_at(const struct eng_props &got, const struct eng_props &want)
{
	uint64_t want_present = want.present;
	// Repeatable properties are present when there are some (the encoder writes counts).
	if (want.user_count)
		want_present |= ENG_PBIT(ENG_PROP_USER);
	else
		want_present &= ~ENG_PBIT(ENG_PROP_USER);
	if (want.sub_id_count)
		want_present |= ENG_PBIT(ENG_PROP_SUBSCRIPTION_ID);
	else
		want_present &= ~ENG_PBIT(ENG_PROP_SUBSCRIPTION_ID);
	EXPECT_EQ(got.present, want_present);
	uint64_t p = got.present & want_present;
#define EQ_IF(id, field)                                            \
	do {                                                        \
		if (p & ENG_PBIT(id)) {                             \
			EXPECT_EQ(got.field, want.field) << #field; \
		}                                                   \
	} while (0)
#define STR_IF(id, field)                                             \
	do {                                                          \
		if (p & ENG_PBIT(id)) {                               \
			expect_str_eq(got.field, want.field, #field); \
		}                                                     \
	} while (0)
	EQ_IF(ENG_PROP_PAYLOAD_FORMAT, payload_format);
	EQ_IF(ENG_PROP_MESSAGE_EXPIRY, message_expiry);
	STR_IF(ENG_PROP_CONTENT_TYPE, content_type);
	STR_IF(ENG_PROP_RESPONSE_TOPIC, response_topic);
	STR_IF(ENG_PROP_CORRELATION_DATA, correlation_data);
	EQ_IF(ENG_PROP_SESSION_EXPIRY, session_expiry);
	STR_IF(ENG_PROP_ASSIGNED_CLIENT_ID, assigned_client_id);
	EQ_IF(ENG_PROP_SERVER_KEEP_ALIVE, server_keep_alive);
	STR_IF(ENG_PROP_AUTH_METHOD, auth_method);
	STR_IF(ENG_PROP_AUTH_DATA, auth_data);
	EQ_IF(ENG_PROP_REQUEST_PROBLEM_INFO, request_problem_info);
	EQ_IF(ENG_PROP_WILL_DELAY, will_delay);
	EQ_IF(ENG_PROP_REQUEST_RESPONSE_INFO, request_response_info);
	STR_IF(ENG_PROP_RESPONSE_INFO, response_info);
	STR_IF(ENG_PROP_SERVER_REFERENCE, server_reference);
	STR_IF(ENG_PROP_REASON_STRING, reason_string);
	EQ_IF(ENG_PROP_RECEIVE_MAXIMUM, receive_maximum);
	EQ_IF(ENG_PROP_TOPIC_ALIAS_MAXIMUM, topic_alias_maximum);
	EQ_IF(ENG_PROP_TOPIC_ALIAS, topic_alias);
	EQ_IF(ENG_PROP_MAXIMUM_QOS, maximum_qos);
	EQ_IF(ENG_PROP_RETAIN_AVAILABLE, retain_available);
	EQ_IF(ENG_PROP_MAXIMUM_PACKET_SIZE, maximum_packet_size);
	EQ_IF(ENG_PROP_WILDCARD_SUB_AVAILABLE, wildcard_sub_available);
	EQ_IF(ENG_PROP_SUB_ID_AVAILABLE, sub_id_available);
	EQ_IF(ENG_PROP_SHARED_SUB_AVAILABLE, shared_sub_available);
#undef EQ_IF
#undef STR_IF
	EXPECT_EQ(got.user_count, want.user_count);
	Pairs gu = user_props(got);
	ASSERT_EQ(gu.size(), size_t(want.user_count));
	for (uint32_t i = 0; i < want.user_count && want.user; i++) {
		EXPECT_EQ(gu[i].first, S(want.user[i].key));
		EXPECT_EQ(gu[i].second, S(want.user[i].val));
	}
	EXPECT_EQ(got.sub_id_count, want.sub_id_count);
	std::vector<uint32_t> gs = sub_ids(got);
	ASSERT_EQ(gs.size(), size_t(want.sub_id_count));
	for (uint32_t i = 0; i < want.sub_id_count; i++)
		EXPECT_EQ(gs[i], want.sub_id[i]);
	if (want.sub_id_count) {
		EXPECT_EQ(got.subscription_id, want.sub_id[0]);
	}
}

// got was decoded from the encoding of want in version.
inline void expect_packet_eq_at(const struct eng_packet &got, const struct eng_packet &want,
				uint8_t version)
{
	ASSERT_EQ(got.type, want.type);
	bool v5 = version == ENG_V5;
	struct eng_props none;
	memset(&none, 0, sizeof(none));
	switch (want.type) {
	case ENG_CONNECT: {
		const struct eng_connect &g = got.u.connect, &w = want.u.connect;
		EXPECT_EQ(g.version, version);
		EXPECT_EQ(g.clean_start, w.clean_start);
		EXPECT_EQ(g.will, w.will);
		EXPECT_EQ(g.has_username, w.has_username);
		EXPECT_EQ(g.has_password, w.has_password);
		EXPECT_EQ(g.keepalive, w.keepalive);
		expect_str_eq(g.client_id, w.client_id, "client_id");
		if (w.will) {
			EXPECT_EQ(g.will_qos, w.will_qos);
			EXPECT_EQ(g.will_retain, w.will_retain);
			expect_str_eq(g.will_topic, w.will_topic, "will_topic");
			expect_str_eq(g.will_payload, w.will_payload, "will_payload");
			expect_props_eq(g.will_props, v5 ? w.will_props : none);
		}
		if (w.has_username)
			expect_str_eq(g.username, w.username, "username");
		if (w.has_password)
			expect_str_eq(g.password, w.password, "password");
		expect_props_eq(g.props, v5 ? w.props : none);
		break;
	}
	case ENG_CONNACK:
		EXPECT_EQ(got.u.connack.reason, want.u.connack.reason);
		if (version != ENG_V31) {
			EXPECT_EQ(got.u.connack.session_present, want.u.connack.session_present);
		}
		expect_props_eq(got.u.connack.props, v5 ? want.u.connack.props : none);
		break;
	case ENG_PUBLISH: {
		const struct eng_publish &g = got.u.publish, &w = want.u.publish;
		EXPECT_EQ(got.flags, (w.dup ? 8 : 0) | (w.qos << 1) | (w.retain ? 1 : 0));
		EXPECT_EQ(g.qos, w.qos);
		EXPECT_EQ(g.dup, w.dup);
		EXPECT_EQ(g.retain, w.retain);
		if (w.qos) {
			EXPECT_EQ(g.packet_id, w.packet_id);
		}
		expect_str_eq(g.topic, w.topic, "topic");
		expect_str_eq(g.payload, w.payload, "payload");
		expect_props_eq(g.props, v5 ? w.props : none);
		break;
	}
	case ENG_PUBACK:
	case ENG_PUBREC:
	case ENG_PUBREL:
	case ENG_PUBCOMP:
		EXPECT_EQ(got.flags, want.type == ENG_PUBREL ? 2 : 0);
		EXPECT_EQ(got.u.ack.packet_id, want.u.ack.packet_id);
		EXPECT_EQ(got.u.ack.reason, v5 ? want.u.ack.reason : 0);
		expect_props_eq(got.u.ack.props, v5 ? want.u.ack.props : none);
		break;
	case ENG_SUBSCRIBE:
	case ENG_UNSUBSCRIBE: {
		const struct eng_subscribe &g = got.u.subscribe, &w = want.u.subscribe;
		EXPECT_EQ(got.flags, 2);
		EXPECT_EQ(g.packet_id, w.packet_id);
		EXPECT_EQ(g.count, w.count);
		if (want.type == ENG_SUBSCRIBE) {
			Entries e = sub_entries(g);
			ASSERT_EQ(e.size(), size_t(w.count));
			for (uint32_t i = 0; i < w.count && w.list; i++) {
				EXPECT_EQ(e[i].first, S(w.list[i].filter));
				EXPECT_EQ(e[i].second,
					  v5 ? w.list[i].options : w.list[i].options & 3);
			}
		} else {
			std::vector<std::string> e = unsub_entries(g);
			ASSERT_EQ(e.size(), size_t(w.count));
			for (uint32_t i = 0; i < w.count && w.list; i++)
				EXPECT_EQ(e[i], S(w.list[i].filter));
		}
		expect_props_eq(g.props, v5 ? w.props : none);
		break;
	}
	case ENG_SUBACK:
	case ENG_UNSUBACK: {
		const struct eng_suback &g = got.u.suback, &w = want.u.suback;
		EXPECT_EQ(g.packet_id, w.packet_id);
		uint32_t n = (want.type == ENG_UNSUBACK && !v5) ? 0 : w.count;
		ASSERT_EQ(g.count, n);
		for (uint32_t i = 0; i < n; i++)
			EXPECT_EQ(g.reasons[i], w.reasons[i]) << i;
		expect_props_eq(g.props, v5 ? w.props : none);
		break;
	}
	case ENG_DISCONNECT:
	case ENG_AUTH:
		EXPECT_EQ(got.u.disconnect.reason, v5 ? want.u.disconnect.reason : 0);
		expect_props_eq(got.u.disconnect.props, v5 ? want.u.disconnect.props : none);
		break;
	default:
		break;
	}
}

// A decoded packet made ready to encode again: the encode-only pointers cleared (entries and
// user properties then come from raw), Subscription Identifiers gathered into an array.
struct Forward {
	struct eng_packet pkt;
	std::vector<uint32_t> ids, will_ids;

	explicit Forward(const struct eng_packet &decoded) : pkt(decoded)
	{
		switch (pkt.type) {
		case ENG_CONNECT:
			fix(pkt.u.connect.props, ids);
			fix(pkt.u.connect.will_props, will_ids);
			break;
		case ENG_CONNACK:
			fix(pkt.u.connack.props, ids);
			break;
		case ENG_PUBLISH:
			fix(pkt.u.publish.props, ids);
			break;
		case ENG_PUBACK:
		case ENG_PUBREC:
		case ENG_PUBREL:
		case ENG_PUBCOMP:
			fix(pkt.u.ack.props, ids);
			break;
		case ENG_SUBSCRIBE:
		case ENG_UNSUBSCRIBE:
			pkt.u.subscribe.list = nullptr;
			fix(pkt.u.subscribe.props, ids);
			break;
		case ENG_SUBACK:
		case ENG_UNSUBACK:
			fix(pkt.u.suback.props, ids);
			break;
		case ENG_DISCONNECT:
		case ENG_AUTH:
			fix(pkt.u.disconnect.props, ids);
			break;
		default:
			break;
		}
	}
	Forward(const Forward &) = delete;
	Forward &operator=(const Forward &) = delete;

      private:
	static void fix(struct eng_props &p, std::vector<uint32_t> &v)
	{
		p.user = nullptr;
		v = sub_ids(p);
		p.sub_id = v.empty() ? nullptr : v.data();
	}
};

inline void expect_same_props(const struct eng_props &a, const struct eng_props &b)
{
	struct eng_props w = b;
	std::vector<uint32_t> ids = sub_ids(b);
	Pairs ups = user_props(b);
	std::vector<struct eng_user_prop> up(ups.size());
	for (size_t i = 0; i < ups.size(); i++) {
		up[i].key = V(ups[i].first);
		up[i].val = V(ups[i].second);
	}
	w.user = up.data();
	w.sub_id = ids.data();
	w.sub_id_count = uint32_t(ids.size());
	expect_props_eq(a, w);
}

// Two decodings of the same packet (possibly from different byte forms) hold the same fields.
inline void expect_same_decoded_at(const struct eng_packet &a, const struct eng_packet &b)
{
	ASSERT_EQ(a.type, b.type);
	EXPECT_EQ(a.flags, b.flags);
	switch (a.type) {
	case ENG_CONNECT: {
		const struct eng_connect &x = a.u.connect, &y = b.u.connect;
		EXPECT_EQ(x.version, y.version);
		EXPECT_EQ(x.clean_start, y.clean_start);
		EXPECT_EQ(x.will, y.will);
		EXPECT_EQ(x.will_qos, y.will_qos);
		EXPECT_EQ(x.will_retain, y.will_retain);
		EXPECT_EQ(x.has_username, y.has_username);
		EXPECT_EQ(x.has_password, y.has_password);
		EXPECT_EQ(x.keepalive, y.keepalive);
		EXPECT_EQ(S(x.client_id), S(y.client_id));
		if (y.will) {
			EXPECT_EQ(S(x.will_topic), S(y.will_topic));
			EXPECT_EQ(S(x.will_payload), S(y.will_payload));
			expect_same_props(x.will_props, y.will_props);
		}
		if (y.has_username) {
			EXPECT_EQ(S(x.username), S(y.username));
		}
		if (y.has_password) {
			EXPECT_EQ(S(x.password), S(y.password));
		}
		expect_same_props(x.props, y.props);
		break;
	}
	case ENG_CONNACK:
		EXPECT_EQ(a.u.connack.session_present, b.u.connack.session_present);
		EXPECT_EQ(a.u.connack.reason, b.u.connack.reason);
		expect_same_props(a.u.connack.props, b.u.connack.props);
		break;
	case ENG_PUBLISH:
		EXPECT_EQ(a.u.publish.qos, b.u.publish.qos);
		EXPECT_EQ(a.u.publish.dup, b.u.publish.dup);
		EXPECT_EQ(a.u.publish.retain, b.u.publish.retain);
		if (b.u.publish.qos) {
			EXPECT_EQ(a.u.publish.packet_id, b.u.publish.packet_id);
		}
		EXPECT_EQ(S(a.u.publish.topic), S(b.u.publish.topic));
		EXPECT_EQ(S(a.u.publish.payload), S(b.u.publish.payload));
		expect_same_props(a.u.publish.props, b.u.publish.props);
		break;
	case ENG_PUBACK:
	case ENG_PUBREC:
	case ENG_PUBREL:
	case ENG_PUBCOMP:
		EXPECT_EQ(a.u.ack.packet_id, b.u.ack.packet_id);
		EXPECT_EQ(a.u.ack.reason, b.u.ack.reason);
		expect_same_props(a.u.ack.props, b.u.ack.props);
		break;
	case ENG_SUBSCRIBE:
		EXPECT_EQ(a.u.subscribe.packet_id, b.u.subscribe.packet_id);
		EXPECT_EQ(a.u.subscribe.count, b.u.subscribe.count);
		EXPECT_EQ(sub_entries(a.u.subscribe), sub_entries(b.u.subscribe));
		expect_same_props(a.u.subscribe.props, b.u.subscribe.props);
		break;
	case ENG_UNSUBSCRIBE:
		EXPECT_EQ(a.u.subscribe.packet_id, b.u.subscribe.packet_id);
		EXPECT_EQ(a.u.subscribe.count, b.u.subscribe.count);
		EXPECT_EQ(unsub_entries(a.u.subscribe), unsub_entries(b.u.subscribe));
		expect_same_props(a.u.subscribe.props, b.u.subscribe.props);
		break;
	case ENG_SUBACK:
	case ENG_UNSUBACK:
		EXPECT_EQ(a.u.suback.packet_id, b.u.suback.packet_id);
		ASSERT_EQ(a.u.suback.count, b.u.suback.count);
		if (a.u.suback.count) {
			EXPECT_EQ(Bytes(a.u.suback.reasons, a.u.suback.reasons + a.u.suback.count),
				  Bytes(b.u.suback.reasons, b.u.suback.reasons + b.u.suback.count));
		}
		expect_same_props(a.u.suback.props, b.u.suback.props);
		break;
	case ENG_DISCONNECT:
	case ENG_AUTH:
		EXPECT_EQ(a.u.disconnect.reason, b.u.disconnect.reason);
		expect_same_props(a.u.disconnect.props, b.u.disconnect.props);
		break;
	default:
		break;
	}
}

} // namespace engtest

#endif // ENG_TEST_UTIL_H

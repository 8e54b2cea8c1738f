// SPDX-License-Identifier: MIT
//
// eng_decode() on hand-written packets of all 15 types in MQTT 3.1, 3.1.1 and 5.0, each field
// checked against the byte layout of the specifications. Errors are in test_eng_errors.cc,
// properties in test_eng_props.cc.
#include "eng_test_vectors.h"

using namespace engtest;

// The checking helpers, called through macros that trace the calling line.
#define expect_ok(...) ENG_TRACED(expect_ok, __VA_ARGS__)

namespace
{

void expect_ok_at(const Dec &d, const Bytes &in, int type, int flags)
{
	ASSERT_EQ(d.rc, int(in.size()))
		<< "err " << int(d.err.reason) << " "
		<< (d.rc < 0 && d.rc != -EAGAIN && d.err.what ? d.err.what : "");
	EXPECT_EQ(d.pkt.type, type);
	EXPECT_EQ(d.pkt.flags, flags);
	EXPECT_EQ(d.pkt.size, in.size());
}

void expect_no_props(const struct eng_props &p)
{
	EXPECT_EQ(p.present, 0u);
	EXPECT_EQ(p.user_count, 0u);
	EXPECT_EQ(p.sub_id_count, 0u);
	EXPECT_EQ(p.raw.len, 0u);
}

} // namespace

// ---- CONNECT ---------------------------------------------------------------------------

TEST(EngDecode, Connect31Minimal)
{
	Bytes in = vec::connect31_min();
	Dec d = srv(0, in);
	expect_ok(d, in, ENG_CONNECT, 0);
	const struct eng_connect &c = d.pkt.u.connect;
	EXPECT_EQ(c.version, ENG_V31);
	EXPECT_TRUE(c.clean_start);
	EXPECT_FALSE(c.will);
	EXPECT_FALSE(c.has_username);
	EXPECT_FALSE(c.has_password);
	EXPECT_EQ(c.keepalive, 60);
	EXPECT_EQ(S(c.client_id), "abc");
	EXPECT_TRUE(d.inside(c.client_id));
	expect_no_props(c.props);
}

TEST(EngDecode, Connect31Full)
{
	Bytes in = vec::connect31_full();
	Dec d = srv(0, in);
	expect_ok(d, in, ENG_CONNECT, 0);
	const struct eng_connect &c = d.pkt.u.connect;
	EXPECT_EQ(c.version, ENG_V31);
	EXPECT_TRUE(c.clean_start);
	EXPECT_TRUE(c.will);
	EXPECT_EQ(c.will_qos, 1);
	EXPECT_TRUE(c.will_retain);
	EXPECT_TRUE(c.has_username);
	EXPECT_TRUE(c.has_password);
	EXPECT_EQ(c.keepalive, 10);
	EXPECT_EQ(S(c.client_id), "cid");
	EXPECT_EQ(S(c.will_topic), "w/t");
	EXPECT_EQ(S(c.will_payload), "bye");
	EXPECT_EQ(S(c.username), "user");
	EXPECT_EQ(S(c.password), "pw");
	EXPECT_TRUE(d.inside(c.password));
	expect_no_props(c.props);
	expect_no_props(c.will_props);
}

TEST(EngDecode, Connect311Minimal)
{
	Bytes in = vec::connect311_min();
	Dec d = srv(0, in);
	expect_ok(d, in, ENG_CONNECT, 0);
	const struct eng_connect &c = d.pkt.u.connect;
	EXPECT_EQ(c.version, ENG_V311);
	EXPECT_TRUE(c.clean_start);
	EXPECT_FALSE(c.will);
	EXPECT_FALSE(c.has_username);
	EXPECT_FALSE(c.has_password);
	EXPECT_EQ(c.keepalive, 60);
	EXPECT_EQ(S(c.client_id), "abc");
	expect_no_props(c.props);
}

TEST(EngDecode, Connect311Full)
{
	Bytes in = vec::connect311_full();
	Dec d = srv(0, in);
	expect_ok(d, in, ENG_CONNECT, 0);
	const struct eng_connect &c = d.pkt.u.connect;
	EXPECT_EQ(c.version, ENG_V311);
	EXPECT_TRUE(c.clean_start);
	EXPECT_TRUE(c.will);
	EXPECT_EQ(c.will_qos, 2);
	EXPECT_FALSE(c.will_retain);
	EXPECT_TRUE(c.has_username);
	EXPECT_TRUE(c.has_password);
	EXPECT_EQ(c.keepalive, 0x1234);
	EXPECT_EQ(S(c.client_id), "client-1");
	EXPECT_EQ(S(c.will_topic), "will/topic");
	EXPECT_EQ(S(c.will_payload), "last words");
	EXPECT_EQ(S(c.username), "name");
	EXPECT_EQ(S(c.password), "secret");
	expect_no_props(c.props);
	expect_no_props(c.will_props);
}

// 3.1.3.1: a zero-byte ClientId is allowed with CleanSession 1.
TEST(EngDecode, Connect311EmptyClientIdCleanSession)
{
	Bytes in = pkt(0x10, cat({str("MQTT"), B({4, 0x02}), u16(0), str("")}));
	Dec d = srv(0, in);
	expect_ok(d, in, ENG_CONNECT, 0);
	EXPECT_EQ(d.pkt.u.connect.client_id.len, 0u);
	EXPECT_EQ(d.pkt.u.connect.keepalive, 0);
}

// 3.1.3.3 (3.1.1) / 3.1.3.4 (5.0): the will message is binary, zero length allowed; a
// username may come without a password.
TEST(EngDecode, Connect311EmptyWillUserNoPassword)
{
	Bytes in = pkt(0x10, cat({str("MQTT"), B({4, 0x86}), u16(5), str("c"), str("t"), str(""),
				  str("u")}));
	Dec d = srv(0, in);
	expect_ok(d, in, ENG_CONNECT, 0);
	const struct eng_connect &c = d.pkt.u.connect;
	EXPECT_TRUE(c.will);
	EXPECT_EQ(c.will_qos, 0);
	EXPECT_EQ(S(c.will_topic), "t");
	EXPECT_EQ(c.will_payload.len, 0u);
	EXPECT_TRUE(c.has_username);
	EXPECT_FALSE(c.has_password);
	EXPECT_EQ(S(c.username), "u");
}

TEST(EngDecode, Connect5Minimal)
{
	Bytes in = vec::connect5_min();
	Dec d = srv(0, in);
	expect_ok(d, in, ENG_CONNECT, 0);
	const struct eng_connect &c = d.pkt.u.connect;
	EXPECT_EQ(c.version, ENG_V5);
	EXPECT_TRUE(c.clean_start);
	EXPECT_FALSE(c.will);
	EXPECT_EQ(c.keepalive, 60);
	EXPECT_EQ(S(c.client_id), "abc");
	expect_no_props(c.props);
}

TEST(EngDecode, Connect5Full)
{
	Bytes in = vec::connect5_full();
	Dec d = srv(0, in);
	expect_ok(d, in, ENG_CONNECT, 0);
	const struct eng_connect &c = d.pkt.u.connect;
	EXPECT_EQ(c.version, ENG_V5);
	EXPECT_FALSE(c.clean_start);
	EXPECT_TRUE(c.will);
	EXPECT_EQ(c.will_qos, 1);
	EXPECT_TRUE(c.will_retain);
	EXPECT_TRUE(c.has_username);
	EXPECT_TRUE(c.has_password);
	EXPECT_EQ(c.keepalive, 30);
	EXPECT_EQ(S(c.client_id), "cid5");
	EXPECT_EQ(S(c.will_topic), "w/t");
	EXPECT_EQ(S(c.will_payload), "bye");
	EXPECT_EQ(S(c.username), "user");
	EXPECT_EQ(S(c.password), std::string("\0\1\2", 3));

	const struct eng_props &p = c.props;
	EXPECT_EQ(p.present,
		  ENG_PBIT(ENG_PROP_SESSION_EXPIRY) | ENG_PBIT(ENG_PROP_RECEIVE_MAXIMUM) |
			  ENG_PBIT(ENG_PROP_MAXIMUM_PACKET_SIZE) |
			  ENG_PBIT(ENG_PROP_TOPIC_ALIAS_MAXIMUM) |
			  ENG_PBIT(ENG_PROP_REQUEST_RESPONSE_INFO) |
			  ENG_PBIT(ENG_PROP_REQUEST_PROBLEM_INFO) | ENG_PBIT(ENG_PROP_USER) |
			  ENG_PBIT(ENG_PROP_AUTH_METHOD) | ENG_PBIT(ENG_PROP_AUTH_DATA));
	EXPECT_EQ(p.session_expiry, 3600u);
	EXPECT_EQ(p.receive_maximum, 20);
	EXPECT_EQ(p.maximum_packet_size, 1024u);
	EXPECT_EQ(p.topic_alias_maximum, 10);
	EXPECT_EQ(p.request_response_info, 1);
	EXPECT_EQ(p.request_problem_info, 0);
	EXPECT_EQ(p.user_count, 2u);
	EXPECT_EQ(user_props(p), (Pairs{{"a", "1"}, {"b", "2"}}));
	EXPECT_EQ(S(p.auth_method), "SCRAM");
	EXPECT_EQ(S(p.auth_data), "\1\2\3");
	EXPECT_TRUE(d.inside(p.raw));
	EXPECT_EQ(p.raw.len, vec::connect5_props().size() - 1);

	const struct eng_props &w = c.will_props;
	EXPECT_EQ(w.present, ENG_PBIT(ENG_PROP_WILL_DELAY) | ENG_PBIT(ENG_PROP_PAYLOAD_FORMAT) |
				     ENG_PBIT(ENG_PROP_MESSAGE_EXPIRY) |
				     ENG_PBIT(ENG_PROP_CONTENT_TYPE) |
				     ENG_PBIT(ENG_PROP_RESPONSE_TOPIC) |
				     ENG_PBIT(ENG_PROP_CORRELATION_DATA) | ENG_PBIT(ENG_PROP_USER));
	EXPECT_EQ(w.will_delay, 5u);
	EXPECT_EQ(w.payload_format, 1);
	EXPECT_EQ(w.message_expiry, 60u);
	EXPECT_EQ(S(w.content_type), "text/plain");
	EXPECT_EQ(S(w.response_topic), "r/t");
	EXPECT_EQ(S(w.correlation_data), "\x09\x08");
	EXPECT_EQ(w.user_count, 1u);
	EXPECT_EQ(user_props(w), (Pairs{{"w", "x"}}));
	EXPECT_EQ(w.raw.len, vec::will5_props().size() - 1);
}

// 3.1.2.9 (5.0): unlike 3.1.1, a password may come without a user name.
TEST(EngDecode, Connect5PasswordWithoutUsername)
{
	Bytes in = pkt(
		0x10, cat({str("MQTT"), B({5, 0x42}), u16(60), no_props(), str("c"), bin(B({7}))}));
	Dec d = srv(0, in);
	expect_ok(d, in, ENG_CONNECT, 0);
	EXPECT_FALSE(d.pkt.u.connect.has_username);
	EXPECT_TRUE(d.pkt.u.connect.has_password);
	EXPECT_EQ(S(d.pkt.u.connect.password), "\7");
}

// 3.1.3.1 (5.0): a zero-length Client Identifier with Clean Start 0 is the server's choice
// (it may assign one or answer 0x85): not a decoding error.
TEST(EngDecode, Connect5EmptyClientIdNoCleanStart)
{
	Bytes in = pkt(0x10, cat({str("MQTT"), B({5, 0x00}), u16(60), no_props(), str("")}));
	Dec d = srv(0, in);
	expect_ok(d, in, ENG_CONNECT, 0);
	EXPECT_FALSE(d.pkt.u.connect.clean_start);
	EXPECT_EQ(d.pkt.u.connect.client_id.len, 0u);
}

// ---- CONNACK ---------------------------------------------------------------------------

TEST(EngDecode, Connack31)
{
	Bytes in = vec::connack3(0, ENG_V3_NOT_AUTHORIZED);
	Dec d = cli(ENG_V31, in);
	expect_ok(d, in, ENG_CONNACK, 0);
	EXPECT_EQ(d.pkt.u.connack.reason, ENG_V3_NOT_AUTHORIZED);
	EXPECT_FALSE(d.pkt.u.connack.session_present);
	expect_no_props(d.pkt.u.connack.props);
}

TEST(EngDecode, Connack311SessionPresent)
{
	Bytes in = vec::connack3(1, 0);
	Dec d = cli(ENG_V311, in);
	expect_ok(d, in, ENG_CONNACK, 0);
	EXPECT_TRUE(d.pkt.u.connack.session_present);
	EXPECT_EQ(d.pkt.u.connack.reason, ENG_V3_ACCEPTED);
	expect_no_props(d.pkt.u.connack.props);
}

TEST(EngDecode, Connack311Refused)
{
	for (int rc = 1; rc <= 5; rc++) {
		Bytes in = vec::connack3(0, rc);
		Dec d = cli(ENG_V311, in);
		expect_ok(d, in, ENG_CONNACK, 0);
		EXPECT_FALSE(d.pkt.u.connack.session_present);
		EXPECT_EQ(d.pkt.u.connack.reason, rc);
	}
}

TEST(EngDecode, Connack5Minimal)
{
	Bytes in = vec::connack5_min();
	Dec d = cli(ENG_V5, in);
	expect_ok(d, in, ENG_CONNACK, 0);
	EXPECT_FALSE(d.pkt.u.connack.session_present);
	EXPECT_EQ(d.pkt.u.connack.reason, ENG_RC_SUCCESS);
	expect_no_props(d.pkt.u.connack.props);
}

TEST(EngDecode, Connack5Full)
{
	Bytes in = vec::connack5_full();
	Dec d = cli(ENG_V5, in);
	expect_ok(d, in, ENG_CONNACK, 0);
	EXPECT_TRUE(d.pkt.u.connack.session_present);
	EXPECT_EQ(d.pkt.u.connack.reason, 0);
	const struct eng_props &p = d.pkt.u.connack.props;
	EXPECT_EQ(p.present,
		  ENG_PBIT(ENG_PROP_SESSION_EXPIRY) | ENG_PBIT(ENG_PROP_RECEIVE_MAXIMUM) |
			  ENG_PBIT(ENG_PROP_MAXIMUM_QOS) | ENG_PBIT(ENG_PROP_RETAIN_AVAILABLE) |
			  ENG_PBIT(ENG_PROP_MAXIMUM_PACKET_SIZE) |
			  ENG_PBIT(ENG_PROP_ASSIGNED_CLIENT_ID) |
			  ENG_PBIT(ENG_PROP_TOPIC_ALIAS_MAXIMUM) |
			  ENG_PBIT(ENG_PROP_REASON_STRING) | ENG_PBIT(ENG_PROP_USER) |
			  ENG_PBIT(ENG_PROP_WILDCARD_SUB_AVAILABLE) |
			  ENG_PBIT(ENG_PROP_SUB_ID_AVAILABLE) |
			  ENG_PBIT(ENG_PROP_SHARED_SUB_AVAILABLE) |
			  ENG_PBIT(ENG_PROP_SERVER_KEEP_ALIVE) | ENG_PBIT(ENG_PROP_RESPONSE_INFO) |
			  ENG_PBIT(ENG_PROP_SERVER_REFERENCE) | ENG_PBIT(ENG_PROP_AUTH_METHOD) |
			  ENG_PBIT(ENG_PROP_AUTH_DATA));
	EXPECT_EQ(p.session_expiry, 120u);
	EXPECT_EQ(p.receive_maximum, 100);
	EXPECT_EQ(p.maximum_qos, 1);
	EXPECT_EQ(p.retain_available, 0);
	EXPECT_EQ(p.maximum_packet_size, 65536u);
	EXPECT_EQ(S(p.assigned_client_id), "auto-1");
	EXPECT_EQ(p.topic_alias_maximum, 5);
	EXPECT_EQ(S(p.reason_string), "ok");
	EXPECT_EQ(user_props(p), (Pairs{{"k", "v"}}));
	EXPECT_EQ(p.wildcard_sub_available, 1);
	EXPECT_EQ(p.sub_id_available, 0);
	EXPECT_EQ(p.shared_sub_available, 1);
	EXPECT_EQ(p.server_keep_alive, 30);
	EXPECT_EQ(S(p.response_info), "resp");
	EXPECT_EQ(S(p.server_reference), "other:1883");
	EXPECT_EQ(S(p.auth_method), "SCRAM");
	EXPECT_EQ(S(p.auth_data), "\4\5");
}

TEST(EngDecode, Connack5Refused)
{
	Bytes in = vec::connack5_refused();
	Dec d = cli(ENG_V5, in);
	expect_ok(d, in, ENG_CONNACK, 0);
	EXPECT_EQ(d.pkt.u.connack.reason, ENG_RC_NOT_AUTHORIZED);
	EXPECT_EQ(d.pkt.u.connack.props.present, ENG_PBIT(ENG_PROP_REASON_STRING));
	EXPECT_EQ(S(d.pkt.u.connack.props.reason_string), "no");
}

// ---- PUBLISH ---------------------------------------------------------------------------

TEST(EngDecode, Publish31Qos0)
{
	Bytes in = vec::pub3_q0();
	for (uint8_t role : {ENG_ROLE_SERVER, ENG_ROLE_CLIENT}) {
		Dec d = decode(ctx(ENG_V31, role), in);
		expect_ok(d, in, ENG_PUBLISH, 0);
		const struct eng_publish &p = d.pkt.u.publish;
		EXPECT_EQ(p.qos, 0);
		EXPECT_FALSE(p.dup);
		EXPECT_FALSE(p.retain);
		EXPECT_EQ(S(p.topic), "a/b");
		EXPECT_EQ(S(p.payload), "hi");
		EXPECT_TRUE(d.inside(p.payload));
		EXPECT_EQ(p.payload.p, d.buf.get() + in.size() - 2);
		expect_no_props(p.props);
	}
}

TEST(EngDecode, Publish31Qos1DupRetain)
{
	Bytes in = vec::pub3_q1_dup_retain();
	Dec d = srv(ENG_V31, in);
	expect_ok(d, in, ENG_PUBLISH, 0x0B);
	const struct eng_publish &p = d.pkt.u.publish;
	EXPECT_EQ(p.qos, 1);
	EXPECT_TRUE(p.dup);
	EXPECT_TRUE(p.retain);
	EXPECT_EQ(p.packet_id, 7);
	EXPECT_EQ(S(p.topic), "a/b");
	EXPECT_EQ(S(p.payload), "payload");
}

TEST(EngDecode, Publish311Qos0)
{
	Bytes in = vec::pub3_q0();
	Dec d = cli(ENG_V311, in);
	expect_ok(d, in, ENG_PUBLISH, 0);
	EXPECT_EQ(d.pkt.u.publish.qos, 0);
	EXPECT_EQ(S(d.pkt.u.publish.topic), "a/b");
	EXPECT_EQ(S(d.pkt.u.publish.payload), "hi");
}

TEST(EngDecode, Publish311Qos1DupRetain)
{
	Bytes in = vec::pub3_q1_dup_retain();
	for (uint8_t role : {ENG_ROLE_SERVER, ENG_ROLE_CLIENT}) {
		Dec d = decode(ctx(ENG_V311, role), in);
		expect_ok(d, in, ENG_PUBLISH, 0x0B);
		EXPECT_EQ(d.pkt.u.publish.qos, 1);
		EXPECT_TRUE(d.pkt.u.publish.dup);
		EXPECT_TRUE(d.pkt.u.publish.retain);
		EXPECT_EQ(d.pkt.u.publish.packet_id, 7);
		EXPECT_EQ(S(d.pkt.u.publish.payload), "payload");
	}
}

// A zero-length payload is valid (3.3.3).
TEST(EngDecode, Publish311Qos2EmptyPayload)
{
	Bytes in = vec::pub3_q2_empty();
	Dec d = srv(ENG_V311, in);
	expect_ok(d, in, ENG_PUBLISH, 0x04);
	EXPECT_EQ(d.pkt.u.publish.qos, 2);
	EXPECT_FALSE(d.pkt.u.publish.dup);
	EXPECT_FALSE(d.pkt.u.publish.retain);
	EXPECT_EQ(d.pkt.u.publish.packet_id, 0xFFFF);
	EXPECT_EQ(S(d.pkt.u.publish.topic), "x");
	EXPECT_EQ(d.pkt.u.publish.payload.len, 0u);
}

// A payload may hold any bytes, zeros and invalid UTF-8 included.
TEST(EngDecode, Publish311BinaryPayload)
{
	Bytes payload = B({0, 0xFF, 0xC0, 0x80, 0xED, 0xA0, 0x80});
	Bytes in = pkt(0x30, cat({str("t"), payload}));
	Dec d = srv(ENG_V311, in);
	expect_ok(d, in, ENG_PUBLISH, 0);
	EXPECT_EQ(S(d.pkt.u.publish.payload), std::string(payload.begin(), payload.end()));
}

TEST(EngDecode, Publish5Qos0)
{
	Bytes in = vec::pub5_q0();
	for (uint8_t role : {ENG_ROLE_SERVER, ENG_ROLE_CLIENT}) {
		Dec d = decode(ctx(ENG_V5, role), in);
		expect_ok(d, in, ENG_PUBLISH, 0);
		EXPECT_EQ(d.pkt.u.publish.qos, 0);
		EXPECT_EQ(S(d.pkt.u.publish.topic), "a/b");
		EXPECT_EQ(S(d.pkt.u.publish.payload), "hi");
		expect_no_props(d.pkt.u.publish.props);
	}
}

TEST(EngDecode, Publish5Qos1Props)
{
	Bytes in = vec::pub5_q1_props();
	for (uint8_t role : {ENG_ROLE_SERVER, ENG_ROLE_CLIENT}) {
		Dec d = decode(ctx(ENG_V5, role), in);
		expect_ok(d, in, ENG_PUBLISH, 0x02);
		const struct eng_publish &p = d.pkt.u.publish;
		EXPECT_EQ(p.qos, 1);
		EXPECT_EQ(p.packet_id, 1);
		EXPECT_EQ(S(p.topic), "a/b");
		EXPECT_EQ(S(p.payload), "{}");
		EXPECT_EQ(p.props.present,
			  ENG_PBIT(ENG_PROP_PAYLOAD_FORMAT) | ENG_PBIT(ENG_PROP_MESSAGE_EXPIRY) |
				  ENG_PBIT(ENG_PROP_CONTENT_TYPE) |
				  ENG_PBIT(ENG_PROP_RESPONSE_TOPIC) |
				  ENG_PBIT(ENG_PROP_CORRELATION_DATA) | ENG_PBIT(ENG_PROP_USER));
		EXPECT_EQ(p.props.payload_format, 1);
		EXPECT_EQ(p.props.message_expiry, 30u);
		EXPECT_EQ(S(p.props.content_type), "json");
		EXPECT_EQ(S(p.props.response_topic), "re/sp");
		EXPECT_EQ(S(p.props.correlation_data), std::string("\0\1", 2));
		EXPECT_EQ(p.props.user_count, 2u);
		// The same key twice is allowed, in order (3.3.2.3.7).
		EXPECT_EQ(user_props(p.props), (Pairs{{"k", "v"}, {"k", "w"}}));
		EXPECT_EQ(p.props.sub_id_count, 0u);
	}
}

TEST(EngDecode, Publish5TopicAliasEmptyTopic)
{
	Bytes in = vec::pub5_alias();
	Dec d = srv(ENG_V5, in);
	expect_ok(d, in, ENG_PUBLISH, 0);
	EXPECT_EQ(d.pkt.u.publish.topic.len, 0u);
	EXPECT_EQ(d.pkt.u.publish.props.present, ENG_PBIT(ENG_PROP_TOPIC_ALIAS));
	EXPECT_EQ(d.pkt.u.publish.props.topic_alias, 3);
	EXPECT_EQ(S(d.pkt.u.publish.payload), "x");
}

TEST(EngDecode, Publish5SubscriptionIds)
{
	Bytes in = vec::pub5_subids();
	Dec d = cli(ENG_V5, in);
	expect_ok(d, in, ENG_PUBLISH, 0x05);
	const struct eng_publish &p = d.pkt.u.publish;
	EXPECT_EQ(p.qos, 2);
	EXPECT_TRUE(p.retain);
	EXPECT_EQ(p.packet_id, 9);
	EXPECT_EQ(p.props.present, ENG_PBIT(ENG_PROP_SUBSCRIPTION_ID));
	EXPECT_EQ(p.props.sub_id_count, 3u);
	EXPECT_EQ(p.props.subscription_id, 1u);
	EXPECT_EQ(sub_ids(p.props), (std::vector<uint32_t>{1, ENG_VBI_MAX, 128}));
	EXPECT_EQ(S(p.payload), "p");
}

// ---- PUBACK, PUBREC, PUBREL, PUBCOMP ---------------------------------------------------

namespace
{

struct AckKind {
	int type;
	int b0;
};
const AckKind kAcks[] = {
	{ENG_PUBACK, 0x40}, {ENG_PUBREC, 0x50}, {ENG_PUBREL, 0x62}, {ENG_PUBCOMP, 0x70}};

} // namespace

TEST(EngDecode, Acks3)
{
	for (uint8_t v : {ENG_V31, ENG_V311})
		for (const AckKind &a : kAcks)
			for (uint8_t role : {ENG_ROLE_SERVER, ENG_ROLE_CLIENT}) {
				Bytes in = vec::ack(a.b0, 0x1234);
				Dec d = decode(ctx(v, role), in);
				expect_ok(d, in, a.type, a.b0 & 15);
				EXPECT_EQ(d.pkt.u.ack.packet_id, 0x1234);
				EXPECT_EQ(d.pkt.u.ack.reason, 0);
				expect_no_props(d.pkt.u.ack.props);
			}
}

// 3.4.2.1: the Reason Code and Property Length can be omitted when the reason is 0 and
// there are no properties (Remaining Length 2).
TEST(EngDecode, Acks5Short)
{
	for (const AckKind &a : kAcks)
		for (uint8_t role : {ENG_ROLE_SERVER, ENG_ROLE_CLIENT}) {
			Bytes in = vec::ack(a.b0, 1);
			Dec d = decode(ctx(ENG_V5, role), in);
			expect_ok(d, in, a.type, a.b0 & 15);
			EXPECT_EQ(d.pkt.u.ack.packet_id, 1);
			EXPECT_EQ(d.pkt.u.ack.reason, 0);
			expect_no_props(d.pkt.u.ack.props);
		}
}

// 3.4.2.2: with Remaining Length 3 there is no Property Length (0 is used).
TEST(EngDecode, Acks5ReasonOnly)
{
	for (const AckKind &a : kAcks) {
		int rc = a.type == ENG_PUBREL || a.type == ENG_PUBCOMP
				 ? ENG_RC_PACKET_ID_NOT_FOUND
				 : ENG_RC_NO_MATCHING_SUBSCRIBERS;
		Bytes in = vec::ack5_rc(a.b0, 0xFFFF, rc);
		Dec d = srv(ENG_V5, in);
		expect_ok(d, in, a.type, a.b0 & 15);
		EXPECT_EQ(d.pkt.u.ack.packet_id, 0xFFFF);
		EXPECT_EQ(d.pkt.u.ack.reason, rc);
		expect_no_props(d.pkt.u.ack.props);
	}
}

TEST(EngDecode, Acks5ReasonEmptyProps)
{
	for (const AckKind &a : kAcks) {
		Bytes in = pkt(a.b0, cat({u16(5), B({0}), no_props()}));
		Dec d = cli(ENG_V5, in);
		expect_ok(d, in, a.type, a.b0 & 15);
		EXPECT_EQ(d.pkt.u.ack.packet_id, 5);
		EXPECT_EQ(d.pkt.u.ack.reason, 0);
		expect_no_props(d.pkt.u.ack.props);
	}
}

TEST(EngDecode, Acks5Props)
{
	for (const AckKind &a : kAcks) {
		int rc = a.type == ENG_PUBREL || a.type == ENG_PUBCOMP ? ENG_RC_PACKET_ID_NOT_FOUND
								       : ENG_RC_QUOTA_EXCEEDED;
		Bytes in = vec::ack5_full(a.b0, 77, rc);
		for (uint8_t role : {ENG_ROLE_SERVER, ENG_ROLE_CLIENT}) {
			Dec d = decode(ctx(ENG_V5, role), in);
			expect_ok(d, in, a.type, a.b0 & 15);
			EXPECT_EQ(d.pkt.u.ack.packet_id, 77);
			EXPECT_EQ(d.pkt.u.ack.reason, rc);
			EXPECT_EQ(d.pkt.u.ack.props.present,
				  ENG_PBIT(ENG_PROP_REASON_STRING) | ENG_PBIT(ENG_PROP_USER));
			EXPECT_EQ(S(d.pkt.u.ack.props.reason_string), "why");
			EXPECT_EQ(user_props(d.pkt.u.ack.props), (Pairs{{"a", "b"}}));
		}
	}
}

// ---- SUBSCRIBE, SUBACK -----------------------------------------------------------------

TEST(EngDecode, Subscribe3)
{
	for (uint8_t v : {ENG_V31, ENG_V311}) {
		Bytes in = vec::sub3();
		Dec d = srv(v, in);
		expect_ok(d, in, ENG_SUBSCRIBE, 2);
		const struct eng_subscribe &s = d.pkt.u.subscribe;
		EXPECT_EQ(s.packet_id, 10);
		EXPECT_EQ(s.count, 3u);
		EXPECT_EQ(sub_entries(s), (Entries{{"a/+", 1}, {"b/#", 2}, {"c", 0}}));
		EXPECT_TRUE(d.inside(s.raw));
		EXPECT_EQ(s.raw.p, d.buf.get() + 4);
		EXPECT_EQ(s.raw.len, in.size() - 4);
		expect_no_props(s.props);
	}
}

TEST(EngDecode, Subscribe5)
{
	Bytes in = vec::sub5();
	Dec d = srv(ENG_V5, in);
	expect_ok(d, in, ENG_SUBSCRIBE, 2);
	const struct eng_subscribe &s = d.pkt.u.subscribe;
	EXPECT_EQ(s.packet_id, 11);
	EXPECT_EQ(s.count, 3u);
	EXPECT_EQ(sub_entries(s), (Entries{{"a/+", 0x2D}, {"$share/g/b", 0x12}, {"c", 0}}));
	EXPECT_EQ(s.props.present, ENG_PBIT(ENG_PROP_SUBSCRIPTION_ID) | ENG_PBIT(ENG_PROP_USER));
	EXPECT_EQ(s.props.subscription_id, 42u);
	EXPECT_EQ(s.props.sub_id_count, 1u);
	EXPECT_EQ(sub_ids(s.props), (std::vector<uint32_t>{42}));
	EXPECT_EQ(user_props(s.props), (Pairs{{"u", "v"}}));
	// raw is the payload only: the entries after the properties.
	size_t props_end = 2 + 2 + vec::sub5()[4] + 1;
	EXPECT_EQ(s.raw.p, d.buf.get() + props_end);
	EXPECT_EQ(s.raw.len, in.size() - props_end);
}

// Every legal options byte in MQTT 5: QoS 0..2, NL, RAP, RH 0..2.
TEST(EngDecode, Subscribe5AllOptions)
{
	for (int qos = 0; qos < 3; qos++)
		for (int nl = 0; nl < 2; nl++)
			for (int rap = 0; rap < 2; rap++)
				for (int rh = 0; rh < 3; rh++) {
					int o = qos | nl << 2 | rap << 3 | rh << 4;
					Bytes in = pkt(0x82,
						       cat({u16(1), no_props(), str("t"), B({o})}));
					Dec d = srv(ENG_V5, in);
					expect_ok(d, in, ENG_SUBSCRIBE, 2);
					EXPECT_EQ(sub_entries(d.pkt.u.subscribe),
						  (Entries{{"t", o}}));
				}
}

TEST(EngDecode, Suback31)
{
	Bytes in = vec::suback31();
	Dec d = cli(ENG_V31, in);
	expect_ok(d, in, ENG_SUBACK, 0);
	EXPECT_EQ(d.pkt.u.suback.packet_id, 10);
	ASSERT_EQ(d.pkt.u.suback.count, 3u);
	EXPECT_EQ(Bytes(d.pkt.u.suback.reasons, d.pkt.u.suback.reasons + 3), B({0, 1, 2}));
	expect_no_props(d.pkt.u.suback.props);
}

TEST(EngDecode, Suback311)
{
	Bytes in = vec::suback311();
	Dec d = cli(ENG_V311, in);
	expect_ok(d, in, ENG_SUBACK, 0);
	EXPECT_EQ(d.pkt.u.suback.packet_id, 10);
	ASSERT_EQ(d.pkt.u.suback.count, 4u);
	EXPECT_EQ(Bytes(d.pkt.u.suback.reasons, d.pkt.u.suback.reasons + 4), B({0, 1, 2, 0x80}));
	EXPECT_EQ(d.pkt.u.suback.reasons, d.buf.get() + 4);
}

TEST(EngDecode, Suback5)
{
	Bytes in = vec::suback5();
	Dec d = cli(ENG_V5, in);
	expect_ok(d, in, ENG_SUBACK, 0);
	const struct eng_suback &s = d.pkt.u.suback;
	EXPECT_EQ(s.packet_id, 11);
	ASSERT_EQ(s.count, 12u);
	EXPECT_EQ(Bytes(s.reasons, s.reasons + 12),
		  B({0, 1, 2, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2}));
	EXPECT_EQ(s.props.present, ENG_PBIT(ENG_PROP_REASON_STRING));
	EXPECT_EQ(S(s.props.reason_string), "r");
}

// ---- UNSUBSCRIBE, UNSUBACK -------------------------------------------------------------

TEST(EngDecode, Unsubscribe3)
{
	for (uint8_t v : {ENG_V31, ENG_V311}) {
		Bytes in = vec::unsub3();
		Dec d = srv(v, in);
		expect_ok(d, in, ENG_UNSUBSCRIBE, 2);
		EXPECT_EQ(d.pkt.u.subscribe.packet_id, 12);
		EXPECT_EQ(d.pkt.u.subscribe.count, 2u);
		EXPECT_EQ(unsub_entries(d.pkt.u.subscribe), (std::vector<std::string>{"a/+", "b"}));
		EXPECT_EQ(d.pkt.u.subscribe.raw.len, in.size() - 4);
		expect_no_props(d.pkt.u.subscribe.props);
	}
}

TEST(EngDecode, Unsubscribe5)
{
	Bytes in = vec::unsub5();
	Dec d = srv(ENG_V5, in);
	expect_ok(d, in, ENG_UNSUBSCRIBE, 2);
	EXPECT_EQ(d.pkt.u.subscribe.packet_id, 13);
	EXPECT_EQ(d.pkt.u.subscribe.count, 2u);
	EXPECT_EQ(unsub_entries(d.pkt.u.subscribe), (std::vector<std::string>{"a/+", "b"}));
	EXPECT_EQ(d.pkt.u.subscribe.props.present, ENG_PBIT(ENG_PROP_USER));
	EXPECT_EQ(user_props(d.pkt.u.subscribe.props), (Pairs{{"x", "y"}}));
}

TEST(EngDecode, Unsuback3)
{
	for (uint8_t v : {ENG_V31, ENG_V311}) {
		Bytes in = vec::unsuback3();
		Dec d = cli(v, in);
		expect_ok(d, in, ENG_UNSUBACK, 0);
		EXPECT_EQ(d.pkt.u.suback.packet_id, 12);
		EXPECT_EQ(d.pkt.u.suback.count, 0u);
		expect_no_props(d.pkt.u.suback.props);
	}
}

TEST(EngDecode, Unsuback5)
{
	Bytes in = vec::unsuback5();
	Dec d = cli(ENG_V5, in);
	expect_ok(d, in, ENG_UNSUBACK, 0);
	EXPECT_EQ(d.pkt.u.suback.packet_id, 13);
	ASSERT_EQ(d.pkt.u.suback.count, 3u);
	EXPECT_EQ(Bytes(d.pkt.u.suback.reasons, d.pkt.u.suback.reasons + 3), B({0, 0x11, 0x87}));
	EXPECT_EQ(S(d.pkt.u.suback.props.reason_string), "r");
}

// ---- PINGREQ, PINGRESP, DISCONNECT, AUTH -----------------------------------------------

TEST(EngDecode, Pingreq)
{
	for (uint8_t v : {ENG_V31, ENG_V311, ENG_V5}) {
		Dec d = srv(v, vec::pingreq());
		expect_ok(d, vec::pingreq(), ENG_PINGREQ, 0);
	}
}

TEST(EngDecode, Pingresp)
{
	for (uint8_t v : {ENG_V31, ENG_V311, ENG_V5}) {
		Dec d = cli(v, vec::pingresp());
		expect_ok(d, vec::pingresp(), ENG_PINGRESP, 0);
	}
}

TEST(EngDecode, Disconnect3)
{
	for (uint8_t v : {ENG_V31, ENG_V311}) {
		Dec d = srv(v, vec::disc_empty());
		expect_ok(d, vec::disc_empty(), ENG_DISCONNECT, 0);
		EXPECT_EQ(d.pkt.u.disconnect.reason, 0);
		expect_no_props(d.pkt.u.disconnect.props);
	}
}

// 3.14.2.1: Remaining Length 0 means Normal disconnection and no properties.
TEST(EngDecode, Disconnect5Empty)
{
	for (uint8_t role : {ENG_ROLE_SERVER, ENG_ROLE_CLIENT}) {
		Dec d = decode(ctx(ENG_V5, role), vec::disc_empty());
		expect_ok(d, vec::disc_empty(), ENG_DISCONNECT, 0);
		EXPECT_EQ(d.pkt.u.disconnect.reason, ENG_RC_SUCCESS);
		expect_no_props(d.pkt.u.disconnect.props);
	}
}

TEST(EngDecode, Disconnect5ReasonOnly)
{
	Bytes in = vec::disc5_rc(ENG_RC_DISCONNECT_WITH_WILL);
	Dec d = srv(ENG_V5, in);
	expect_ok(d, in, ENG_DISCONNECT, 0);
	EXPECT_EQ(d.pkt.u.disconnect.reason, ENG_RC_DISCONNECT_WITH_WILL);
	expect_no_props(d.pkt.u.disconnect.props);
}

TEST(EngDecode, Disconnect5FromClient)
{
	Bytes in = vec::disc5_client();
	Dec d = srv(ENG_V5, in);
	expect_ok(d, in, ENG_DISCONNECT, 0);
	const struct eng_reason_pkt &r = d.pkt.u.disconnect;
	EXPECT_EQ(r.reason, ENG_RC_DISCONNECT_WITH_WILL);
	EXPECT_EQ(r.props.present, ENG_PBIT(ENG_PROP_SESSION_EXPIRY) |
					   ENG_PBIT(ENG_PROP_REASON_STRING) |
					   ENG_PBIT(ENG_PROP_USER));
	EXPECT_EQ(r.props.session_expiry, 0u);
	EXPECT_EQ(S(r.props.reason_string), "bye");
	EXPECT_EQ(user_props(r.props), (Pairs{{"k", "v"}}));
}

TEST(EngDecode, Disconnect5FromServer)
{
	Bytes in = vec::disc5_server();
	Dec d = cli(ENG_V5, in);
	expect_ok(d, in, ENG_DISCONNECT, 0);
	const struct eng_reason_pkt &r = d.pkt.u.disconnect;
	EXPECT_EQ(r.reason, ENG_RC_USE_ANOTHER_SERVER);
	EXPECT_EQ(r.props.present,
		  ENG_PBIT(ENG_PROP_SERVER_REFERENCE) | ENG_PBIT(ENG_PROP_REASON_STRING));
	EXPECT_EQ(S(r.props.server_reference), "other");
	EXPECT_EQ(S(r.props.reason_string), "moved");
}

// 3.15.2.1: Remaining Length 0 means Success and no properties.
TEST(EngDecode, Auth5Empty)
{
	Dec d = cli(ENG_V5, vec::auth5_empty());
	expect_ok(d, vec::auth5_empty(), ENG_AUTH, 0);
	EXPECT_EQ(d.pkt.u.disconnect.reason, ENG_RC_SUCCESS);
	expect_no_props(d.pkt.u.disconnect.props);
}

TEST(EngDecode, Auth5Full)
{
	Bytes in = vec::auth5_full();
	for (uint8_t role : {ENG_ROLE_SERVER, ENG_ROLE_CLIENT}) {
		Dec d = decode(ctx(ENG_V5, role), in);
		expect_ok(d, in, ENG_AUTH, 0);
		const struct eng_reason_pkt &r = d.pkt.u.disconnect;
		EXPECT_EQ(r.reason, ENG_RC_CONTINUE_AUTH);
		EXPECT_EQ(r.props.present,
			  ENG_PBIT(ENG_PROP_AUTH_METHOD) | ENG_PBIT(ENG_PROP_AUTH_DATA) |
				  ENG_PBIT(ENG_PROP_REASON_STRING) | ENG_PBIT(ENG_PROP_USER));
		EXPECT_EQ(S(r.props.auth_method), "SCRAM");
		EXPECT_EQ(S(r.props.auth_data), "\1\2");
		EXPECT_EQ(S(r.props.reason_string), "r");
		EXPECT_EQ(user_props(r.props), (Pairs{{"a", "b"}}));
	}
}

// Re-authentication from the client (3.15.2.1 reason 0x19).
TEST(EngDecode, Auth5Reauthenticate)
{
	Bytes in =
		pkt(0xF0,
		    cat({B({ENG_RC_REAUTHENTICATE}), props(p_str(ENG_PROP_AUTH_METHOD, "SCRAM"))}));
	Dec d = srv(ENG_V5, in);
	expect_ok(d, in, ENG_AUTH, 0);
	EXPECT_EQ(d.pkt.u.disconnect.reason, ENG_RC_REAUTHENTICATE);
	EXPECT_EQ(S(d.pkt.u.disconnect.props.auth_method), "SCRAM");
}

// ---- Framing ---------------------------------------------------------------------------

// eng_decode() looks at one packet: bytes after it are the next packet's, not its own.
TEST(EngDecode, StopsAtPacketEnd)
{
	Bytes in = cat({vec::pub3_q0(), vec::pingreq(), B({0x30})});
	Dec d = srv(ENG_V311, in);
	ASSERT_EQ(d.rc, int(vec::pub3_q0().size()));
	EXPECT_EQ(S(d.pkt.u.publish.payload), "hi");
}

// Remaining Length at the boundaries of its 1, 2 and 3 byte forms (2.2.3 / 1.5.5).
TEST(EngDecode, RemainingLengthBoundaries)
{
	for (uint32_t rl : {0u, 127u, 128u, 16383u, 16384u, 2097151u, 2097152u}) {
		if (rl < 3)
			continue;
		// PUBLISH QoS 0: topic "t" (3 bytes) then the payload.
		Bytes payload(rl - 3, 'x');
		Bytes in = pkt(0x30, cat({str("t"), payload}));
		ASSERT_EQ(in.size(), 1 + eng_vbi_size(rl) + rl);
		Dec d = srv(ENG_V311, in);
		ASSERT_EQ(d.rc, int(in.size())) << rl;
		EXPECT_EQ(d.pkt.u.publish.payload.len, rl - 3);
		EXPECT_EQ(d.pkt.u.publish.payload.p, d.buf.get() + 1 + eng_vbi_size(rl) + 3);
	}
}

// The largest Remaining Length: the fixed header alone says the packet is incomplete.
TEST(EngDecode, RemainingLengthMaxIsIncomplete)
{
	Bytes in = B({0x30, 0xFF, 0xFF, 0xFF, 0x7F, 0x00, 0x01, 't'});
	for (uint8_t v : {ENG_V31, ENG_V311, ENG_V5}) {
		Dec d = srv(v, in);
		EXPECT_EQ(d.rc, -EAGAIN);
	}
}

// A packet of exactly max_packet bytes is accepted.
TEST(EngDecode, MaxPacketExactlyFits)
{
	Bytes in = pkt(0x30, cat({str("t"), Bytes(99, 'p')}));
	ASSERT_EQ(in.size(), 104u);
	Dec d = decode(ctx(ENG_V311, ENG_ROLE_SERVER, 104), in);
	EXPECT_EQ(d.rc, 104);
}

TEST(EngDecode, Utility)
{
	EXPECT_STREQ(eng_ptype_name(ENG_PUBLISH), "PUBLISH");
	EXPECT_STREQ(eng_reason_name(ENG_RC_MALFORMED), "Malformed Packet");
	for (int t = 0; t < 256; t++)
		EXPECT_NE(eng_ptype_name(uint8_t(t)), nullptr);
	for (int r = 0; r < 256; r++)
		EXPECT_NE(eng_reason_name(uint8_t(r)), nullptr);
	EXPECT_EQ(eng_vbi_size(0), 1u);
	EXPECT_EQ(eng_vbi_size(127), 1u);
	EXPECT_EQ(eng_vbi_size(128), 2u);
	EXPECT_EQ(eng_vbi_size(16383), 2u);
	EXPECT_EQ(eng_vbi_size(16384), 3u);
	EXPECT_EQ(eng_vbi_size(2097151), 3u);
	EXPECT_EQ(eng_vbi_size(2097152), 4u);
	EXPECT_EQ(eng_vbi_size(ENG_VBI_MAX), 4u);
	EXPECT_EQ(eng_vbi_size(ENG_VBI_MAX + 1), 0u);
}

// eng_utf8_valid() per 1.5.4 (5.0) / 1.5.3 (3.1.1) and RFC 3629.
TEST(EngDecode, Utf8Valid)
{
	auto ok = [](const Bytes &b) { return eng_utf8_valid(b.data(), b.size()); };
	EXPECT_TRUE(ok(B({})));
	EXPECT_TRUE(ok(raw("plain ascii /+#")));
	EXPECT_TRUE(ok(B({0xC2, 0x80})));	       // U+0080
	EXPECT_TRUE(ok(B({0xDF, 0xBF})));	       // U+07FF
	EXPECT_TRUE(ok(B({0xE0, 0xA0, 0x80})));	       // U+0800
	EXPECT_TRUE(ok(B({0xED, 0x9F, 0xBF})));	       // U+D7FF
	EXPECT_TRUE(ok(B({0xEE, 0x80, 0x80})));	       // U+E000
	EXPECT_TRUE(ok(B({0xEF, 0xBB, 0xBF})));	       // U+FEFF, kept (1.5.4-3)
	EXPECT_TRUE(ok(B({0xEF, 0xBF, 0xBF})));	       // U+FFFF (a non-character: MAY)
	EXPECT_TRUE(ok(B({0xF0, 0x90, 0x80, 0x80})));  // U+10000
	EXPECT_TRUE(ok(B({0xF4, 0x8F, 0xBF, 0xBF})));  // U+10FFFF
	EXPECT_TRUE(ok(B({0x01, 0x1F, 0x7F})));	       // control characters: MAY
	EXPECT_FALSE(ok(B({0x00})));		       // U+0000
	EXPECT_FALSE(ok(B({'a', 0x00, 'b'})));	       // U+0000 inside
	EXPECT_FALSE(ok(B({0xC0, 0x80})));	       // overlong U+0000
	EXPECT_FALSE(ok(B({0xC1, 0xBF})));	       // overlong U+007F
	EXPECT_FALSE(ok(B({0xE0, 0x9F, 0xBF})));       // overlong U+07FF
	EXPECT_FALSE(ok(B({0xF0, 0x8F, 0xBF, 0xBF}))); // overlong U+FFFF
	EXPECT_FALSE(ok(B({0xED, 0xA0, 0x80})));       // U+D800
	EXPECT_FALSE(ok(B({0xED, 0xBF, 0xBF})));       // U+DFFF
	EXPECT_FALSE(ok(B({0xF4, 0x90, 0x80, 0x80}))); // U+110000
	EXPECT_FALSE(ok(B({0xF5, 0x80, 0x80, 0x80}))); // lead byte F5
	EXPECT_FALSE(ok(B({0xFF})));
	EXPECT_FALSE(ok(B({0x80})));			     // lone continuation
	EXPECT_FALSE(ok(B({0xC2})));			     // truncated 2-byte
	EXPECT_FALSE(ok(B({0xE2, 0x82})));		     // truncated 3-byte
	EXPECT_FALSE(ok(B({0xF0, 0x9F, 0x98})));	     // truncated 4-byte
	EXPECT_FALSE(ok(B({0xE2, 0x28, 0xA1})));	     // bad continuation
	EXPECT_FALSE(ok(B({0xF8, 0x88, 0x80, 0x80, 0x80}))); // 5-byte form
	// The length bounds the check: a valid prefix of an invalid buffer is valid.
	Bytes b = B({'o', 'k', 0x00});
	EXPECT_TRUE(eng_utf8_valid(b.data(), 2));
}

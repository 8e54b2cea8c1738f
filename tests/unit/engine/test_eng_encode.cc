// SPDX-License-Identifier: MIT
//
// eng_encode_size(), eng_encode() and eng_encode_publish_head(): every packet type in every
// version encoded to the exact bytes the specifications lay out (the same hand-written vectors
// the decode tests read), property order aside (the specs fix none); buffer and size limits.
#include "eng_test_vectors.h"

using namespace engtest;

// The checking helpers, called through macros that trace the calling line.
#define expect_enospc_below(...) ENG_TRACED(expect_enospc_below, __VA_ARGS__)

namespace
{

// Offset of the first byte after the fixed header of an encoded packet.
size_t body_off(const Bytes &p)
{
	size_t i = 1;
	while (p[i] & 0x80)
		i++;
	return i + 1;
}

// Encodes with every too small capacity: -ENOSPC each time, and nothing written past cap
// (the buffer is exactly cap bytes on the heap, so ASan sees a write past it).
void expect_enospc_below_at(const struct eng_packet &p, uint8_t v)
{
	int n = eng_encode_size(&p, v);
	ASSERT_GT(n, 0);
	for (int cap = 0; cap < n; cap++) {
		std::unique_ptr<uint8_t[]> buf(new uint8_t[size_t(cap) + 1]);
		buf[size_t(cap)] = 0x5A;
		EXPECT_EQ(eng_encode(&p, v, buf.get(), size_t(cap)), -ENOSPC) << cap;
		EXPECT_EQ(buf[size_t(cap)], 0x5A) << "wrote past cap " << cap;
	}
	// And more room than needed is fine: exactly n bytes are written.
	std::unique_ptr<uint8_t[]> big(new uint8_t[size_t(n) + 8]);
	memset(big.get(), 0x5A, size_t(n) + 8);
	EXPECT_EQ(eng_encode(&p, v, big.get(), size_t(n) + 8), n);
	for (int i = n; i < n + 8; i++)
		EXPECT_EQ(big[size_t(i)], 0x5A);
}

struct eng_packet connect_min()
{
	struct eng_packet p = mk(ENG_CONNECT);
	p.u.connect.clean_start = true;
	p.u.connect.keepalive = 60;
	p.u.connect.client_id = V("abc");
	return p;
}

const struct eng_user_prop kUserAB[] = {{{(const uint8_t *)"a", 1}, {(const uint8_t *)"1", 1}},
					{{(const uint8_t *)"b", 1}, {(const uint8_t *)"2", 1}}};
const struct eng_user_prop kUserKV[] = {{{(const uint8_t *)"k", 1}, {(const uint8_t *)"v", 1}},
					{{(const uint8_t *)"k", 1}, {(const uint8_t *)"w", 1}}};
const struct eng_user_prop kUserWX[] = {{{(const uint8_t *)"w", 1}, {(const uint8_t *)"x", 1}}};
const struct eng_user_prop kUserAb[] = {{{(const uint8_t *)"a", 1}, {(const uint8_t *)"b", 1}}};

const Bytes kAuth123 = B({1, 2, 3});
const Bytes kCorr98 = B({9, 8});
const Bytes kPass012 = B({0, 1, 2});

struct eng_packet connect5_full()
{
	struct eng_packet p = mk(ENG_CONNECT);
	struct eng_connect &c = p.u.connect;
	c.clean_start = false;
	c.will = true;
	c.will_qos = 1;
	c.will_retain = true;
	c.has_username = true;
	c.has_password = true;
	c.keepalive = 30;
	c.client_id = V("cid5");
	c.will_topic = V("w/t");
	c.will_payload = V("bye");
	c.username = V("user");
	c.password = V(kPass012);
	c.props.present = ENG_PBIT(ENG_PROP_SESSION_EXPIRY) | ENG_PBIT(ENG_PROP_RECEIVE_MAXIMUM) |
			  ENG_PBIT(ENG_PROP_MAXIMUM_PACKET_SIZE) |
			  ENG_PBIT(ENG_PROP_TOPIC_ALIAS_MAXIMUM) |
			  ENG_PBIT(ENG_PROP_REQUEST_RESPONSE_INFO) |
			  ENG_PBIT(ENG_PROP_REQUEST_PROBLEM_INFO) | ENG_PBIT(ENG_PROP_USER) |
			  ENG_PBIT(ENG_PROP_AUTH_METHOD) | ENG_PBIT(ENG_PROP_AUTH_DATA);
	c.props.session_expiry = 3600;
	c.props.receive_maximum = 20;
	c.props.maximum_packet_size = 1024;
	c.props.topic_alias_maximum = 10;
	c.props.request_response_info = 1;
	c.props.request_problem_info = 0;
	c.props.user = kUserAB;
	c.props.user_count = 2;
	c.props.auth_method = V("SCRAM");
	c.props.auth_data = V(kAuth123);
	c.will_props.present = ENG_PBIT(ENG_PROP_WILL_DELAY) | ENG_PBIT(ENG_PROP_PAYLOAD_FORMAT) |
			       ENG_PBIT(ENG_PROP_MESSAGE_EXPIRY) | ENG_PBIT(ENG_PROP_CONTENT_TYPE) |
			       ENG_PBIT(ENG_PROP_RESPONSE_TOPIC) |
			       ENG_PBIT(ENG_PROP_CORRELATION_DATA) | ENG_PBIT(ENG_PROP_USER);
	c.will_props.will_delay = 5;
	c.will_props.payload_format = 1;
	c.will_props.message_expiry = 60;
	c.will_props.content_type = V("text/plain");
	c.will_props.response_topic = V("r/t");
	c.will_props.correlation_data = V(kCorr98);
	c.will_props.user = kUserWX;
	c.will_props.user_count = 1;
	return p;
}

struct eng_packet publish(int qos, bool dup, bool retain, unsigned pid, const char *topic,
			  const char *payload)
{
	struct eng_packet p = mk(ENG_PUBLISH);
	p.u.publish.qos = uint8_t(qos);
	p.u.publish.dup = dup;
	p.u.publish.retain = retain;
	p.u.publish.packet_id = uint16_t(pid);
	p.u.publish.topic = V(topic);
	p.u.publish.payload = V(payload);
	return p;
}

const Bytes kCorr01 = B({0, 1});

struct eng_packet pub5_q1_props()
{
	struct eng_packet p = publish(1, false, false, 1, "a/b", "{}");
	struct eng_props &pr = p.u.publish.props;
	pr.present = ENG_PBIT(ENG_PROP_PAYLOAD_FORMAT) | ENG_PBIT(ENG_PROP_MESSAGE_EXPIRY) |
		     ENG_PBIT(ENG_PROP_CONTENT_TYPE) | ENG_PBIT(ENG_PROP_RESPONSE_TOPIC) |
		     ENG_PBIT(ENG_PROP_CORRELATION_DATA) | ENG_PBIT(ENG_PROP_USER);
	pr.payload_format = 1;
	pr.message_expiry = 30;
	pr.content_type = V("json");
	pr.response_topic = V("re/sp");
	pr.correlation_data = V(kCorr01);
	pr.user = kUserKV;
	pr.user_count = 2;
	return p;
}

struct eng_packet ack(uint8_t type, unsigned pid, uint8_t reason)
{
	struct eng_packet p = mk(type);
	p.u.ack.packet_id = uint16_t(pid);
	p.u.ack.reason = reason;
	return p;
}

const uint8_t kAckTypes[] = {ENG_PUBACK, ENG_PUBREC, ENG_PUBREL, ENG_PUBCOMP};

int ack_b0(uint8_t type)
{
	return type << 4 | (type == ENG_PUBREL ? 2 : 0);
}

const struct eng_sub_entry kSub3[] = {{{(const uint8_t *)"a/+", 3}, 1},
				      {{(const uint8_t *)"b/#", 3}, 2},
				      {{(const uint8_t *)"c", 1}, 0}};
const struct eng_sub_entry kSub5[] = {{{(const uint8_t *)"a/+", 3}, 0x2D},
				      {{(const uint8_t *)"$share/g/b", 10}, 0x12},
				      {{(const uint8_t *)"c", 1}, 0}};
const uint32_t kSubId42[] = {42};
const struct eng_user_prop kUserUV[] = {{{(const uint8_t *)"u", 1}, {(const uint8_t *)"v", 1}}};
const struct eng_user_prop kUserXY[] = {{{(const uint8_t *)"x", 1}, {(const uint8_t *)"y", 1}}};

} // namespace

// ---- CONNECT ---------------------------------------------------------------------------

TEST(EngEncode, Connect31Minimal)
{
	EXPECT_BYTES(encode(connect_min(), ENG_V31), vec::connect31_min());
}

TEST(EngEncode, Connect31Full)
{
	struct eng_packet p = mk(ENG_CONNECT);
	struct eng_connect &c = p.u.connect;
	c.clean_start = true;
	c.will = true;
	c.will_qos = 1;
	c.will_retain = true;
	c.has_username = true;
	c.has_password = true;
	c.keepalive = 10;
	c.client_id = V("cid");
	c.will_topic = V("w/t");
	c.will_payload = V("bye");
	c.username = V("user");
	c.password = V("pw");
	EXPECT_BYTES(encode(p, ENG_V31), vec::connect31_full());
}

TEST(EngEncode, Connect311Minimal)
{
	EXPECT_BYTES(encode(connect_min(), ENG_V311), vec::connect311_min());
}

TEST(EngEncode, Connect311Full)
{
	struct eng_packet p = mk(ENG_CONNECT);
	struct eng_connect &c = p.u.connect;
	c.clean_start = true;
	c.will = true;
	c.will_qos = 2;
	c.has_username = true;
	c.has_password = true;
	c.keepalive = 0x1234;
	c.client_id = V("client-1");
	c.will_topic = V("will/topic");
	c.will_payload = V("last words");
	c.username = V("name");
	c.password = V("secret");
	EXPECT_BYTES(encode(p, ENG_V311), vec::connect311_full());
	// connect.version is what was decoded; the version argument decides the encoding.
	p.u.connect.version = ENG_V5;
	EXPECT_BYTES(encode(p, ENG_V311), vec::connect311_full());
}

TEST(EngEncode, Connect5Minimal)
{
	EXPECT_BYTES(encode(connect_min(), ENG_V5), vec::connect5_min());
}

TEST(EngEncode, Connect5Full)
{
	Bytes want = vec::connect5_full();
	size_t h = body_off(want);
	size_t props_at = h + 10;
	size_t will_at = props_at + vec::connect5_props().size() + str("cid5").size();
	expect_bytes_props(encode(connect5_full(), ENG_V5), want, {props_at, will_at});
}

// MQTT 3.x has no properties: a CONNECT carrying some encodes without them.
TEST(EngEncode, Connect311DropsProperties)
{
	struct eng_packet p = connect5_full();
	Bytes want = pkt(0x10, cat({str("MQTT"), B({4, 0xEC}), u16(30), str("cid5"), str("w/t"),
				    str("bye"), str("user"), bin(kPass012)}));
	EXPECT_BYTES(encode(p, ENG_V311), want);
}

// ---- CONNACK ---------------------------------------------------------------------------

TEST(EngEncode, Connack3)
{
	struct eng_packet p = mk(ENG_CONNACK);
	p.u.connack.reason = ENG_V3_NOT_AUTHORIZED;
	EXPECT_BYTES(encode(p, ENG_V31), vec::connack3(0, 5));
	EXPECT_BYTES(encode(p, ENG_V311), vec::connack3(0, 5));
	p.u.connack.reason = ENG_V3_ACCEPTED;
	p.u.connack.session_present = true;
	EXPECT_BYTES(encode(p, ENG_V311), vec::connack3(1, 0));
}

TEST(EngEncode, Connack5Minimal)
{
	EXPECT_BYTES(encode(mk(ENG_CONNACK), ENG_V5), vec::connack5_min());
}

TEST(EngEncode, Connack5Full)
{
	static const Bytes auth45 = B({4, 5});
	static const struct eng_user_prop kv[] = {
		{{(const uint8_t *)"k", 1}, {(const uint8_t *)"v", 1}}};
	struct eng_packet p = mk(ENG_CONNACK);
	p.u.connack.session_present = true;
	struct eng_props &r = p.u.connack.props;
	r.present = ENG_PBIT(ENG_PROP_SESSION_EXPIRY) | ENG_PBIT(ENG_PROP_RECEIVE_MAXIMUM) |
		    ENG_PBIT(ENG_PROP_MAXIMUM_QOS) | ENG_PBIT(ENG_PROP_RETAIN_AVAILABLE) |
		    ENG_PBIT(ENG_PROP_MAXIMUM_PACKET_SIZE) | ENG_PBIT(ENG_PROP_ASSIGNED_CLIENT_ID) |
		    ENG_PBIT(ENG_PROP_TOPIC_ALIAS_MAXIMUM) | ENG_PBIT(ENG_PROP_REASON_STRING) |
		    ENG_PBIT(ENG_PROP_USER) | ENG_PBIT(ENG_PROP_WILDCARD_SUB_AVAILABLE) |
		    ENG_PBIT(ENG_PROP_SUB_ID_AVAILABLE) | ENG_PBIT(ENG_PROP_SHARED_SUB_AVAILABLE) |
		    ENG_PBIT(ENG_PROP_SERVER_KEEP_ALIVE) | ENG_PBIT(ENG_PROP_RESPONSE_INFO) |
		    ENG_PBIT(ENG_PROP_SERVER_REFERENCE) | ENG_PBIT(ENG_PROP_AUTH_METHOD) |
		    ENG_PBIT(ENG_PROP_AUTH_DATA);
	r.session_expiry = 120;
	r.receive_maximum = 100;
	r.maximum_qos = 1;
	r.retain_available = 0;
	r.maximum_packet_size = 65536;
	r.assigned_client_id = V("auto-1");
	r.topic_alias_maximum = 5;
	r.reason_string = V("ok");
	r.user = kv;
	r.user_count = 1;
	r.wildcard_sub_available = 1;
	r.sub_id_available = 0;
	r.shared_sub_available = 1;
	r.server_keep_alive = 30;
	r.response_info = V("resp");
	r.server_reference = V("other:1883");
	r.auth_method = V("SCRAM");
	r.auth_data = V(auth45);
	Bytes want = vec::connack5_full();
	expect_bytes_props(encode(p, ENG_V5), want, {body_off(want) + 2});
}

TEST(EngEncode, Connack5Refused)
{
	struct eng_packet p = mk(ENG_CONNACK);
	p.u.connack.reason = ENG_RC_NOT_AUTHORIZED;
	p.u.connack.props.present = ENG_PBIT(ENG_PROP_REASON_STRING);
	p.u.connack.props.reason_string = V("no");
	EXPECT_BYTES(encode(p, ENG_V5), vec::connack5_refused());
}

// ---- PUBLISH ---------------------------------------------------------------------------

TEST(EngEncode, Publish3)
{
	for (uint8_t v : {ENG_V31, ENG_V311}) {
		EXPECT_BYTES(encode(publish(0, false, false, 0, "a/b", "hi"), v), vec::pub3_q0());
		EXPECT_BYTES(encode(publish(1, true, true, 7, "a/b", "payload"), v),
			     vec::pub3_q1_dup_retain());
		EXPECT_BYTES(encode(publish(2, false, false, 0xFFFF, "x", ""), v),
			     vec::pub3_q2_empty());
	}
}

// The fixed header flags come from the fields, never from pkt->flags (3.3.1).
TEST(EngEncode, PublishIgnoresFlagsField)
{
	struct eng_packet p = publish(0, false, false, 0, "a/b", "hi");
	p.flags = 0x0F;
	EXPECT_BYTES(encode(p, ENG_V311), vec::pub3_q0());
	// And a packet id is written only with QoS > 0 (2.2.1 / MQTT-2.2.1-2).
	p.u.publish.packet_id = 99;
	EXPECT_BYTES(encode(p, ENG_V311), vec::pub3_q0());
	EXPECT_BYTES(encode(p, ENG_V5), vec::pub5_q0());
}

TEST(EngEncode, Publish5Qos0)
{
	EXPECT_BYTES(encode(publish(0, false, false, 0, "a/b", "hi"), ENG_V5), vec::pub5_q0());
}

TEST(EngEncode, Publish5Qos1Props)
{
	Bytes want = vec::pub5_q1_props();
	expect_bytes_props(encode(pub5_q1_props(), ENG_V5), want,
			   {body_off(want) + str("a/b").size() + 2});
}

// Forwarding a v5 PUBLISH to a 3.1.1 subscriber: the properties are dropped.
TEST(EngEncode, Publish311DropsProperties)
{
	Bytes want = pkt(0x32, cat({str("a/b"), u16(1), raw("{}")}));
	EXPECT_BYTES(encode(pub5_q1_props(), ENG_V311), want);
}

TEST(EngEncode, Publish5TopicAlias)
{
	struct eng_packet p = publish(0, false, false, 0, "", "x");
	p.u.publish.props.present = ENG_PBIT(ENG_PROP_TOPIC_ALIAS);
	p.u.publish.props.topic_alias = 3;
	EXPECT_BYTES(encode(p, ENG_V5), vec::pub5_alias());
}

TEST(EngEncode, Publish5SubscriptionIds)
{
	static const uint32_t ids[] = {1, ENG_VBI_MAX, 128};
	struct eng_packet p = publish(2, false, true, 9, "s/t", "p");
	p.u.publish.props.present = ENG_PBIT(ENG_PROP_SUBSCRIPTION_ID);
	p.u.publish.props.sub_id = ids;
	p.u.publish.props.sub_id_count = 3;
	EXPECT_BYTES(encode(p, ENG_V5), vec::pub5_subids());
}

// User properties come from raw when user is NULL, so a decoded block forwards unchanged.
TEST(EngEncode, Publish5ForwardsDecodedUserProperties)
{
	Bytes in = vec::pub5_q1_props();
	Dec d = srv(ENG_V5, in);
	ASSERT_EQ(d.rc, int(in.size()));
	struct eng_packet p = d.pkt;
	p.u.publish.props.user = nullptr;
	p.u.publish.props.sub_id = nullptr;
	p.u.publish.props.sub_id_count = 0;
	expect_bytes_props(encode(p, ENG_V5), in, {body_off(in) + str("a/b").size() + 2});
}

// The broker forwards with its own Subscription Identifiers and the sender's user
// properties (from raw): both must come out, user properties in order.
TEST(EngEncode, Publish5ForwardWithSubscriptionId)
{
	Bytes in = vec::pub5_q1_props();
	Dec d = srv(ENG_V5, in);
	ASSERT_EQ(d.rc, int(in.size()));
	static const uint32_t ids[] = {300};
	struct eng_packet p = d.pkt;
	p.u.publish.props.user = nullptr;
	p.u.publish.props.present |= ENG_PBIT(ENG_PROP_SUBSCRIPTION_ID);
	p.u.publish.props.sub_id = ids;
	p.u.publish.props.sub_id_count = 1;
	Dec e = cli(ENG_V5, encode(p, ENG_V5));
	ASSERT_GT(e.rc, 0);
	EXPECT_EQ(user_props(e.pkt.u.publish.props), (Pairs{{"k", "v"}, {"k", "w"}}));
	EXPECT_EQ(sub_ids(e.pkt.u.publish.props), (std::vector<uint32_t>{300}));
	EXPECT_EQ(S(e.pkt.u.publish.props.content_type), "json");
}

// ---- Acks ------------------------------------------------------------------------------

TEST(EngEncode, Acks3)
{
	for (uint8_t v : {ENG_V31, ENG_V311})
		for (uint8_t t : kAckTypes)
			EXPECT_BYTES(encode(ack(t, 0x1234, 0), v), vec::ack(ack_b0(t), 0x1234));
}

// 3.4.2.1: reason 0 and no properties: the short form, Remaining Length 2.
TEST(EngEncode, Acks5Short)
{
	for (uint8_t t : kAckTypes)
		EXPECT_BYTES(encode(ack(t, 1, 0), ENG_V5), vec::ack(ack_b0(t), 1));
}

// A reason and no properties: Remaining Length 3, no Property Length (3.4.2.2).
TEST(EngEncode, Acks5ReasonOnly)
{
	for (uint8_t t : kAckTypes)
		EXPECT_BYTES(encode(ack(t, 0xFFFF, ENG_RC_PACKET_ID_NOT_FOUND), ENG_V5),
			     vec::ack5_rc(ack_b0(t), 0xFFFF, ENG_RC_PACKET_ID_NOT_FOUND));
}

TEST(EngEncode, Acks5Props)
{
	for (uint8_t t : kAckTypes)
		for (uint8_t rc : {uint8_t(0), uint8_t(ENG_RC_PACKET_ID_NOT_FOUND)}) {
			struct eng_packet p = ack(t, 77, rc);
			p.u.ack.props.present =
				ENG_PBIT(ENG_PROP_REASON_STRING) | ENG_PBIT(ENG_PROP_USER);
			p.u.ack.props.reason_string = V("why");
			p.u.ack.props.user = kUserAb;
			p.u.ack.props.user_count = 1;
			Bytes want = vec::ack5_full(ack_b0(t), 77, rc);
			expect_bytes_props(encode(p, ENG_V5), want, {body_off(want) + 3});
		}
}

// ---- SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK -------------------------------------------

TEST(EngEncode, Subscribe3FromList)
{
	struct eng_packet p = mk(ENG_SUBSCRIBE);
	p.u.subscribe.packet_id = 10;
	p.u.subscribe.list = kSub3;
	p.u.subscribe.count = 3;
	EXPECT_BYTES(encode(p, ENG_V31), vec::sub3());
	EXPECT_BYTES(encode(p, ENG_V311), vec::sub3());
}

TEST(EngEncode, Subscribe5FromList)
{
	struct eng_packet p = mk(ENG_SUBSCRIBE);
	p.u.subscribe.packet_id = 11;
	p.u.subscribe.list = kSub5;
	p.u.subscribe.count = 3;
	p.u.subscribe.props.present = ENG_PBIT(ENG_PROP_SUBSCRIPTION_ID) | ENG_PBIT(ENG_PROP_USER);
	p.u.subscribe.props.sub_id = kSubId42;
	p.u.subscribe.props.sub_id_count = 1;
	p.u.subscribe.props.user = kUserUV;
	p.u.subscribe.props.user_count = 1;
	Bytes want = vec::sub5();
	expect_bytes_props(encode(p, ENG_V5), want, {body_off(want) + 2});
}

// Without a list the entries are copied from raw (a decoded SUBSCRIBE forwards unchanged).
TEST(EngEncode, SubscribeFromRaw)
{
	Bytes in = vec::sub3();
	Dec d = srv(ENG_V311, in);
	ASSERT_EQ(d.rc, int(in.size()));
	struct eng_packet p = d.pkt;
	p.u.subscribe.list = nullptr;
	EXPECT_BYTES(encode(p, ENG_V311), in);

	Bytes in5 = vec::unsub5();
	Dec d5 = srv(ENG_V5, in5);
	ASSERT_EQ(d5.rc, int(in5.size()));
	p = d5.pkt;
	p.u.subscribe.list = nullptr;
	p.u.subscribe.props.user = nullptr;
	p.u.subscribe.props.sub_id = nullptr;
	EXPECT_BYTES(encode(p, ENG_V5), in5);
}

TEST(EngEncode, Suback)
{
	static const uint8_t rc3[] = {0, 1, 2, 0x80};
	struct eng_packet p = mk(ENG_SUBACK);
	p.u.suback.packet_id = 10;
	p.u.suback.reasons = rc3;
	p.u.suback.count = 3;
	EXPECT_BYTES(encode(p, ENG_V31), vec::suback31());
	p.u.suback.count = 4;
	EXPECT_BYTES(encode(p, ENG_V311), vec::suback311());

	static const uint8_t rc5[] = {0,    1,	  2,	0x80, 0x83, 0x87,
				      0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2};
	p.u.suback.packet_id = 11;
	p.u.suback.reasons = rc5;
	p.u.suback.count = 12;
	p.u.suback.props.present = ENG_PBIT(ENG_PROP_REASON_STRING);
	p.u.suback.props.reason_string = V("r");
	EXPECT_BYTES(encode(p, ENG_V5), vec::suback5());
}

TEST(EngEncode, Unsubscribe)
{
	// UNSUBSCRIBE takes the filters of the list and ignores the options.
	struct eng_packet p = mk(ENG_UNSUBSCRIBE);
	static const struct eng_sub_entry l[] = {{{(const uint8_t *)"a/+", 3}, 0x2D},
						 {{(const uint8_t *)"b", 1}, 2}};
	p.u.subscribe.packet_id = 12;
	p.u.subscribe.list = l;
	p.u.subscribe.count = 2;
	EXPECT_BYTES(encode(p, ENG_V31), vec::unsub3());
	EXPECT_BYTES(encode(p, ENG_V311), vec::unsub3());
	p.u.subscribe.packet_id = 13;
	p.u.subscribe.props.present = ENG_PBIT(ENG_PROP_USER);
	p.u.subscribe.props.user = kUserXY;
	p.u.subscribe.props.user_count = 1;
	EXPECT_BYTES(encode(p, ENG_V5), vec::unsub5());
}

TEST(EngEncode, Unsuback)
{
	struct eng_packet p = mk(ENG_UNSUBACK);
	p.u.suback.packet_id = 12;
	EXPECT_BYTES(encode(p, ENG_V31), vec::unsuback3());
	EXPECT_BYTES(encode(p, ENG_V311), vec::unsuback3());
	static const uint8_t rc[] = {0x00, 0x11, 0x87};
	p.u.suback.packet_id = 13;
	p.u.suback.reasons = rc;
	p.u.suback.count = 3;
	p.u.suback.props.present = ENG_PBIT(ENG_PROP_REASON_STRING);
	p.u.suback.props.reason_string = V("r");
	EXPECT_BYTES(encode(p, ENG_V5), vec::unsuback5());
}

// ---- PINGREQ, PINGRESP, DISCONNECT, AUTH -----------------------------------------------

TEST(EngEncode, Ping)
{
	for (uint8_t v : {ENG_V31, ENG_V311, ENG_V5}) {
		EXPECT_BYTES(encode(mk(ENG_PINGREQ), v), vec::pingreq());
		EXPECT_BYTES(encode(mk(ENG_PINGRESP), v), vec::pingresp());
	}
}

TEST(EngEncode, Disconnect)
{
	struct eng_packet p = mk(ENG_DISCONNECT);
	for (uint8_t v : {ENG_V31, ENG_V311, ENG_V5})
		EXPECT_BYTES(encode(p, v), vec::disc_empty());
	// 3.14.2.1: the reason may be alone (no Property Length).
	p.u.disconnect.reason = ENG_RC_DISCONNECT_WITH_WILL;
	EXPECT_BYTES(encode(p, ENG_V5), vec::disc5_rc(ENG_RC_DISCONNECT_WITH_WILL));
	p.u.disconnect.reason = ENG_RC_USE_ANOTHER_SERVER;
	p.u.disconnect.props.present =
		ENG_PBIT(ENG_PROP_SERVER_REFERENCE) | ENG_PBIT(ENG_PROP_REASON_STRING);
	p.u.disconnect.props.server_reference = V("other");
	p.u.disconnect.props.reason_string = V("moved");
	Bytes want = vec::disc5_server();
	expect_bytes_props(encode(p, ENG_V5), want, {body_off(want) + 1});
}

TEST(EngEncode, Auth)
{
	static const Bytes data = B({1, 2});
	struct eng_packet p = mk(ENG_AUTH);
	EXPECT_BYTES(encode(p, ENG_V5), vec::auth5_empty());
	p.u.disconnect.reason = ENG_RC_CONTINUE_AUTH;
	p.u.disconnect.props.present = ENG_PBIT(ENG_PROP_AUTH_METHOD) |
				       ENG_PBIT(ENG_PROP_AUTH_DATA) |
				       ENG_PBIT(ENG_PROP_REASON_STRING) | ENG_PBIT(ENG_PROP_USER);
	p.u.disconnect.props.auth_method = V("SCRAM");
	p.u.disconnect.props.auth_data = V(data);
	p.u.disconnect.props.reason_string = V("r");
	p.u.disconnect.props.user = kUserAb;
	p.u.disconnect.props.user_count = 1;
	Bytes want = vec::auth5_full();
	expect_bytes_props(encode(p, ENG_V5), want, {body_off(want) + 1});
}

// ---- Errors, sizes and buffers ---------------------------------------------------------

TEST(EngEncode, InvalidPackets)
{
	struct eng_packet p = mk(0);
	for (uint8_t v : {ENG_V31, ENG_V311, ENG_V5}) {
		p = mk(0);
		EXPECT_EQ(eng_encode_size(&p, v), -EINVAL);
		p = mk(16);
		EXPECT_EQ(eng_encode_size(&p, v), -EINVAL);
		p = mk(255);
		EXPECT_EQ(eng_encode_size(&p, v), -EINVAL);
		// QoS 3 does not exist (3.3.1.2).
		p = publish(3, false, false, 1, "t", "x");
		EXPECT_EQ(eng_encode_size(&p, v), -EINVAL);
		uint8_t buf[64];
		EXPECT_EQ(eng_encode(&p, v, buf, sizeof(buf)), -EINVAL);
		EXPECT_EQ(eng_encode_publish_head(&p.u.publish, v, buf, sizeof(buf)), -EINVAL);
	}
	// AUTH exists from MQTT 5 on (3.15).
	p = mk(ENG_AUTH);
	EXPECT_EQ(eng_encode_size(&p, ENG_V31), -EINVAL);
	EXPECT_EQ(eng_encode_size(&p, ENG_V311), -EINVAL);
	uint8_t buf[16];
	EXPECT_EQ(eng_encode(&p, ENG_V311, buf, sizeof(buf)), -EINVAL);
	// Protocol levels that do not exist.
	p = mk(ENG_PINGREQ);
	for (uint8_t v : {0, 1, 2, 6, 255})
		EXPECT_EQ(eng_encode_size(&p, v), -EINVAL) << int(v);
}

// 1.5.4 / 1.5.6: strings and binary data hold at most 65,535 bytes; a Subscription
// Identifier is a Variable Byte Integer of 1..268,435,455 (3.3.2.3.8). Beyond: not
// expressible.
TEST(EngEncode, ValuesBeyondTheirTypes)
{
	static std::string big(65536, 'a');
	struct eng_str s64k = V(big);
	struct eng_packet p = publish(0, false, false, 0, "t", "x");
	p.u.publish.topic = s64k;
	EXPECT_EQ(eng_encode_size(&p, ENG_V311), -EINVAL);
	s64k.len = 65535;
	p.u.publish.topic = s64k;
	EXPECT_EQ(eng_encode_size(&p, ENG_V311), 1 + 3 + 2 + 65535 + 1);
	s64k.len = 65536;

	struct eng_packet c = connect_min();
	c.u.connect.has_password = true;
	c.u.connect.password = s64k;
	EXPECT_EQ(eng_encode_size(&c, ENG_V5), -EINVAL);
	c = connect_min();
	c.u.connect.props.present = ENG_PBIT(ENG_PROP_AUTH_METHOD);
	c.u.connect.props.auth_method = s64k;
	EXPECT_EQ(eng_encode_size(&c, ENG_V5), -EINVAL);
	struct eng_user_prop up = {s64k, V("v")};
	c = connect_min();
	c.u.connect.props.present = ENG_PBIT(ENG_PROP_USER);
	c.u.connect.props.user = &up;
	c.u.connect.props.user_count = 1;
	EXPECT_EQ(eng_encode_size(&c, ENG_V5), -EINVAL);

	struct eng_sub_entry e = {s64k, 1};
	struct eng_packet sub = mk(ENG_SUBSCRIBE);
	sub.u.subscribe.packet_id = 1;
	sub.u.subscribe.list = &e;
	sub.u.subscribe.count = 1;
	EXPECT_EQ(eng_encode_size(&sub, ENG_V311), -EINVAL);

	uint32_t id = ENG_VBI_MAX + 1;
	struct eng_packet q = publish(0, false, false, 0, "t", "x");
	q.u.publish.props.present = ENG_PBIT(ENG_PROP_SUBSCRIPTION_ID);
	q.u.publish.props.sub_id = &id;
	q.u.publish.props.sub_id_count = 1;
	EXPECT_EQ(eng_encode_size(&q, ENG_V5), -EINVAL);
	// Will QoS 3 does not exist (3.1.2.6).
	c = connect_min();
	c.u.connect.will = true;
	c.u.connect.will_qos = 3;
	c.u.connect.will_topic = V("w");
	EXPECT_EQ(eng_encode_size(&c, ENG_V311), -EINVAL);
}

// Without an array, a single Subscription Identifier comes from subscription_id.
TEST(EngEncode, SubscriptionIdFromField)
{
	struct eng_packet p = publish(0, false, false, 0, "t", "x");
	p.u.publish.props.present = ENG_PBIT(ENG_PROP_SUBSCRIPTION_ID);
	p.u.publish.props.subscription_id = 16384;
	EXPECT_BYTES(encode(p, ENG_V5),
		     pkt(0x30,
			 cat({str("t"), props(p_vbi(ENG_PROP_SUBSCRIPTION_ID, 16384)), raw("x")})));
}

TEST(EngEncode, EnospcForEveryShortBuffer)
{
	for (uint8_t v : {ENG_V31, ENG_V311, ENG_V5}) {
		expect_enospc_below(connect_min(), v);
		expect_enospc_below(publish(1, true, true, 7, "a/b", "payload"), v);
		expect_enospc_below(ack(ENG_PUBREL, 3, 0), v);
		expect_enospc_below(mk(ENG_PINGREQ), v);
		expect_enospc_below(mk(ENG_DISCONNECT), v);
	}
	expect_enospc_below(connect5_full(), ENG_V5);
	expect_enospc_below(pub5_q1_props(), ENG_V5);
	struct eng_packet a = ack(ENG_PUBACK, 3, ENG_RC_QUOTA_EXCEEDED);
	expect_enospc_below(a, ENG_V5);
}

// Remaining Length across the 1/2/3/4-byte boundaries of the variable byte integer.
TEST(EngEncode, RemainingLengthBoundaries)
{
	for (uint32_t rl : {3u, 127u, 128u, 16383u, 16384u, 2097151u, 2097152u}) {
		std::string payload(rl - 3, 'x');
		struct eng_packet p = publish(0, false, false, 0, "t", payload.c_str());
		p.u.publish.payload = V(payload);
		Bytes want = pkt(0x30, cat({str("t"), raw(payload)}));
		ASSERT_EQ(eng_encode_size(&p, ENG_V311), int(want.size()));
		EXPECT_EQ(encode(p, ENG_V311), want) << rl;
		Bytes hdr(want.begin(), want.begin() + long(body_off(want)));
		EXPECT_EQ(hdr.size(), 1 + eng_vbi_size(rl));
	}
}

// The protocol maximum, computed without touching the payload: ENG_VBI_MAX of body fits,
// one more byte does not (-EMSGSIZE).
TEST(EngEncode, MaximumSize)
{
	static const uint8_t dummy[1] = {0};
	struct eng_packet p = publish(0, false, false, 0, "t", "");
	p.u.publish.payload.p = dummy;
	p.u.publish.payload.len = ENG_VBI_MAX - 3;
	EXPECT_EQ(eng_encode_size(&p, ENG_V311), int(ENG_PACKET_MAX));
	uint8_t small[16];
	EXPECT_EQ(eng_encode(&p, ENG_V311, small, sizeof(small)), -ENOSPC);
	p.u.publish.payload.len = ENG_VBI_MAX - 2;
	EXPECT_EQ(eng_encode_size(&p, ENG_V311), -EMSGSIZE);
	EXPECT_EQ(eng_encode(&p, ENG_V311, small, sizeof(small)), -EMSGSIZE);
	// MQTT 5 adds the Property Length byte.
	p.u.publish.payload.len = ENG_VBI_MAX - 4;
	EXPECT_EQ(eng_encode_size(&p, ENG_V5), int(ENG_PACKET_MAX));
	p.u.publish.payload.len = ENG_VBI_MAX - 3;
	EXPECT_EQ(eng_encode_size(&p, ENG_V5), -EMSGSIZE);
	// The head alone of the largest PUBLISH is fine.
	p.u.publish.payload.len = ENG_VBI_MAX - 3;
	uint8_t head[16];
	int n = eng_encode_publish_head(&p.u.publish, ENG_V311, head, sizeof(head));
	ASSERT_EQ(n, 1 + 4 + 3);
	EXPECT_BYTES(Bytes(head, head + n), B({0x30, 0xFF, 0xFF, 0xFF, 0x7F, 0, 1, 't'}));
}

TEST(EngEncode, PublishHeadPlusPayloadIsPublish)
{
	std::string big(5000, 'z');
	std::vector<struct eng_packet> pubs = {
		publish(0, false, false, 0, "a/b", "hi"),
		publish(1, true, true, 7, "a/b", "payload"),
		publish(2, false, false, 0xFFFF, "x", ""),
		pub5_q1_props(),
	};
	struct eng_packet b = publish(1, false, false, 2, "big", "");
	b.u.publish.payload = V(big);
	pubs.push_back(b);
	for (uint8_t v : {ENG_V31, ENG_V311, ENG_V5})
		for (const struct eng_packet &p : pubs) {
			Bytes whole = encode(p, v);
			size_t plen = p.u.publish.payload.len;
			ASSERT_GE(whole.size(), plen);
			size_t hlen = whole.size() - plen;
			std::unique_ptr<uint8_t[]> head(new uint8_t[hlen]);
			int n = eng_encode_publish_head(&p.u.publish, v, head.get(), hlen);
			ASSERT_EQ(n, int(hlen));
			EXPECT_EQ(Bytes(head.get(), head.get() + n),
				  Bytes(whole.begin(), whole.begin() + long(hlen)));
			for (size_t cap = 0; cap < hlen; cap++) {
				std::unique_ptr<uint8_t[]> s(new uint8_t[cap + 1]);
				EXPECT_EQ(eng_encode_publish_head(&p.u.publish, v, s.get(), cap),
					  -ENOSPC);
			}
		}
}

// Decoding the encoding of a decoded vector gives the same fields, and encoding is stable:
// encode(decode(encode(decode(x)))) == encode(decode(x)).
TEST(EngEncode, ReencodeVectors)
{
	for (uint8_t v : {ENG_V31, ENG_V311, ENG_V5})
		for (uint8_t role : {ENG_ROLE_SERVER, ENG_ROLE_CLIENT})
			for (const Bytes &in : role == ENG_ROLE_SERVER ? vec::server_bound(v)
								       : vec::client_bound(v)) {
				uint8_t cv = in[0] >> 4 == ENG_CONNECT ? 0 : v;
				Dec d = decode(ctx(cv, role), in);
				ASSERT_EQ(d.rc, int(in.size())) << hex(in);
				Forward f(d.pkt);
				Bytes out = encode(f.pkt, v);
				Dec e = decode(ctx(cv, role), out);
				ASSERT_EQ(e.rc, int(out.size())) << hex(out);
				expect_same_decoded(e.pkt, d.pkt);
				Forward g(e.pkt);
				EXPECT_BYTES(encode(g.pkt, v), out);
			}
}

// SPDX-License-Identifier: MIT
//
// MQTT 5 properties (OASIS MQTT 5.0, 2.2.2 and the property sections of chapter 3): every
// identifier in every place (the 14 packets that carry properties and the will), allowed ones
// decoded with their data type, others rejected as Malformed (2.2.2.2: "an Identifier which
// is not valid for its packet type"); duplicates (Protocol Error, except User Property and the
// Subscription Identifiers of a PUBLISH); value rules; malformed blocks; the iterators.
#include "eng_test_vectors.h"

using namespace engtest;

// The checking helpers, called through macros that trace the calling line.
#define expect_v5_err(...) ENG_TRACED(expect_v5_err, __VA_ARGS__)
#define expect_placed_err(...) ENG_TRACED(expect_placed_err, __VA_ARGS__)

namespace
{

const int kAllIds[] = {0x01, 0x02, 0x03, 0x08, 0x09, 0x0B, 0x11, 0x12, 0x13,
		       0x15, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x1C, 0x1F, 0x21,
		       0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2A};

// Places: the packet types, and ENG_PLACE_WILL for the will properties of CONNECT.
const int kPlaces[] = {ENG_PLACE_WILL,	ENG_CONNECT,  ENG_CONNACK,    ENG_PUBLISH,   ENG_PUBACK,
		       ENG_PUBREC,	ENG_PUBREL,   ENG_PUBCOMP,    ENG_SUBSCRIBE, ENG_SUBACK,
		       ENG_UNSUBSCRIBE, ENG_UNSUBACK, ENG_DISCONNECT, ENG_AUTH};

// Table 2-4 of MQTT 5.0, 2.2.2.2: where each property may appear.
bool allowed(int id, int place)
{
	const int W = ENG_PLACE_WILL;
	std::vector<int> in;
	switch (id) {
	case ENG_PROP_PAYLOAD_FORMAT:
	case ENG_PROP_MESSAGE_EXPIRY:
	case ENG_PROP_CONTENT_TYPE:
	case ENG_PROP_RESPONSE_TOPIC:
	case ENG_PROP_CORRELATION_DATA:
		in = {ENG_PUBLISH, W};
		break;
	case ENG_PROP_SUBSCRIPTION_ID:
		in = {ENG_PUBLISH, ENG_SUBSCRIBE};
		break;
	case ENG_PROP_SESSION_EXPIRY:
		in = {ENG_CONNECT, ENG_CONNACK, ENG_DISCONNECT};
		break;
	case ENG_PROP_ASSIGNED_CLIENT_ID:
	case ENG_PROP_SERVER_KEEP_ALIVE:
	case ENG_PROP_RESPONSE_INFO:
	case ENG_PROP_MAXIMUM_QOS:
	case ENG_PROP_RETAIN_AVAILABLE:
	case ENG_PROP_WILDCARD_SUB_AVAILABLE:
	case ENG_PROP_SUB_ID_AVAILABLE:
	case ENG_PROP_SHARED_SUB_AVAILABLE:
		in = {ENG_CONNACK};
		break;
	case ENG_PROP_AUTH_METHOD:
	case ENG_PROP_AUTH_DATA:
		in = {ENG_CONNECT, ENG_CONNACK, ENG_AUTH};
		break;
	case ENG_PROP_REQUEST_PROBLEM_INFO:
	case ENG_PROP_REQUEST_RESPONSE_INFO:
		in = {ENG_CONNECT};
		break;
	case ENG_PROP_WILL_DELAY:
		in = {W};
		break;
	case ENG_PROP_SERVER_REFERENCE:
		in = {ENG_CONNACK, ENG_DISCONNECT};
		break;
	case ENG_PROP_REASON_STRING:
		in = {ENG_CONNACK, ENG_PUBACK,	 ENG_PUBREC,	 ENG_PUBREL, ENG_PUBCOMP,
		      ENG_SUBACK,  ENG_UNSUBACK, ENG_DISCONNECT, ENG_AUTH};
		break;
	case ENG_PROP_RECEIVE_MAXIMUM:
	case ENG_PROP_TOPIC_ALIAS_MAXIMUM:
	case ENG_PROP_MAXIMUM_PACKET_SIZE:
		in = {ENG_CONNECT, ENG_CONNACK};
		break;
	case ENG_PROP_TOPIC_ALIAS:
		in = {ENG_PUBLISH};
		break;
	case ENG_PROP_USER:
		in = {ENG_CONNECT,    ENG_CONNACK, ENG_PUBLISH,	    W,
		      ENG_PUBACK,     ENG_PUBREC,  ENG_PUBREL,	    ENG_PUBCOMP,
		      ENG_SUBSCRIBE,  ENG_SUBACK,  ENG_UNSUBSCRIBE, ENG_UNSUBACK,
		      ENG_DISCONNECT, ENG_AUTH};
		break;
	}
	return std::find(in.begin(), in.end(), place) != in.end();
}

// A valid value of the property's type.
Bytes sample(int id)
{
	switch (prop_type(id)) {
	case PType::Byte:
		return p_byte(id, 1);
	case PType::U16:
		return p_u16(id, 10);
	case PType::U32:
		return p_u32(id, 100);
	case PType::Vbi:
		return p_vbi(id, 5);
	case PType::Str:
		return p_str(id, "s");
	case PType::Bin:
		return cat({B({id}), bin(B({1, 0xFF}))});
	case PType::Pair:
		return p_user("k", "v");
	default:
		return B({id, 0});
	}
}

// Checks the decoded value of sample(id).
void expect_sample(const struct eng_props &p, int id)
{
	EXPECT_TRUE(p.present & ENG_PBIT(id)) << "id " << id;
	switch (id) {
	case ENG_PROP_PAYLOAD_FORMAT:
		EXPECT_EQ(p.payload_format, 1);
		break;
	case ENG_PROP_MESSAGE_EXPIRY:
		EXPECT_EQ(p.message_expiry, 100u);
		break;
	case ENG_PROP_CONTENT_TYPE:
		EXPECT_EQ(S(p.content_type), "s");
		break;
	case ENG_PROP_RESPONSE_TOPIC:
		EXPECT_EQ(S(p.response_topic), "s");
		break;
	case ENG_PROP_CORRELATION_DATA:
		EXPECT_EQ(S(p.correlation_data), "\x01\xFF");
		break;
	case ENG_PROP_SUBSCRIPTION_ID:
		EXPECT_EQ(p.subscription_id, 5u);
		EXPECT_EQ(p.sub_id_count, 1u);
		EXPECT_EQ(sub_ids(p), (std::vector<uint32_t>{5}));
		break;
	case ENG_PROP_SESSION_EXPIRY:
		EXPECT_EQ(p.session_expiry, 100u);
		break;
	case ENG_PROP_ASSIGNED_CLIENT_ID:
		EXPECT_EQ(S(p.assigned_client_id), "s");
		break;
	case ENG_PROP_SERVER_KEEP_ALIVE:
		EXPECT_EQ(p.server_keep_alive, 10);
		break;
	case ENG_PROP_AUTH_METHOD:
		EXPECT_EQ(S(p.auth_method), "s");
		break;
	case ENG_PROP_AUTH_DATA:
		EXPECT_EQ(S(p.auth_data), "\x01\xFF");
		break;
	case ENG_PROP_REQUEST_PROBLEM_INFO:
		EXPECT_EQ(p.request_problem_info, 1);
		break;
	case ENG_PROP_WILL_DELAY:
		EXPECT_EQ(p.will_delay, 100u);
		break;
	case ENG_PROP_REQUEST_RESPONSE_INFO:
		EXPECT_EQ(p.request_response_info, 1);
		break;
	case ENG_PROP_RESPONSE_INFO:
		EXPECT_EQ(S(p.response_info), "s");
		break;
	case ENG_PROP_SERVER_REFERENCE:
		EXPECT_EQ(S(p.server_reference), "s");
		break;
	case ENG_PROP_REASON_STRING:
		EXPECT_EQ(S(p.reason_string), "s");
		break;
	case ENG_PROP_RECEIVE_MAXIMUM:
		EXPECT_EQ(p.receive_maximum, 10);
		break;
	case ENG_PROP_TOPIC_ALIAS_MAXIMUM:
		EXPECT_EQ(p.topic_alias_maximum, 10);
		break;
	case ENG_PROP_TOPIC_ALIAS:
		EXPECT_EQ(p.topic_alias, 10);
		break;
	case ENG_PROP_MAXIMUM_QOS:
		EXPECT_EQ(p.maximum_qos, 1);
		break;
	case ENG_PROP_RETAIN_AVAILABLE:
		EXPECT_EQ(p.retain_available, 1);
		break;
	case ENG_PROP_USER:
		EXPECT_EQ(p.user_count, 1u);
		EXPECT_EQ(user_props(p), (Pairs{{"k", "v"}}));
		break;
	case ENG_PROP_MAXIMUM_PACKET_SIZE:
		EXPECT_EQ(p.maximum_packet_size, 100u);
		break;
	case ENG_PROP_WILDCARD_SUB_AVAILABLE:
		EXPECT_EQ(p.wildcard_sub_available, 1);
		break;
	case ENG_PROP_SUB_ID_AVAILABLE:
		EXPECT_EQ(p.sub_id_available, 1);
		break;
	case ENG_PROP_SHARED_SUB_AVAILABLE:
		EXPECT_EQ(p.shared_sub_available, 1);
		break;
	}
}

// A valid MQTT 5 packet of the place's type carrying the property block, and the decoder
// that receives it. Packets that go both ways are decoded by the side the property is
// meant for: Subscription Identifiers in PUBLISH travel to the client (3.3.4), Server
// Reference in DISCONNECT comes from the server, Session Expiry in DISCONNECT from the
// client (3.14.2.2.2).
struct Placed {
	Bytes in;
	struct eng_codec_ctx c;
	int type;
};

Placed place_props(int place, const Bytes &block, int id_hint = 0)
{
	Placed r;
	r.c = ctx(ENG_V5, ENG_ROLE_SERVER);
	r.type = place == ENG_PLACE_WILL ? ENG_CONNECT : place;
	switch (place) {
	case ENG_PLACE_WILL:
		r.c.version = 0;
		r.in = pkt(0x10, cat({str("MQTT"), B({5, 0x06}), u16(0), no_props(), str("c"),
				      props(block), str("w"), str("p")}));
		break;
	case ENG_CONNECT:
		r.c.version = 0;
		r.in = pkt(0x10, cat({str("MQTT"), B({5, 0x02}), u16(0), props(block), str("c")}));
		break;
	case ENG_CONNACK:
		r.c.role = ENG_ROLE_CLIENT;
		r.in = pkt(0x20, cat({B({0, 0}), props(block)}));
		break;
	case ENG_PUBLISH:
		r.c.role = ENG_ROLE_CLIENT;
		r.in = pkt(0x32, cat({str("t"), u16(1), props(block), raw("x")}));
		break;
	case ENG_PUBACK:
	case ENG_PUBREC:
	case ENG_PUBREL:
	case ENG_PUBCOMP:
		r.in = pkt(place << 4 | (place == ENG_PUBREL ? 2 : 0),
			   cat({u16(1), B({0}), props(block)}));
		break;
	case ENG_SUBSCRIBE:
		r.in = pkt(0x82, cat({u16(1), props(block), str("t"), B({1})}));
		break;
	case ENG_SUBACK:
		r.c.role = ENG_ROLE_CLIENT;
		r.in = pkt(0x90, cat({u16(1), props(block), B({0})}));
		break;
	case ENG_UNSUBSCRIBE:
		r.in = pkt(0xA2, cat({u16(1), props(block), str("t")}));
		break;
	case ENG_UNSUBACK:
		r.c.role = ENG_ROLE_CLIENT;
		r.in = pkt(0xB0, cat({u16(1), props(block), B({0})}));
		break;
	case ENG_DISCONNECT:
		if (id_hint == ENG_PROP_SERVER_REFERENCE)
			r.c.role = ENG_ROLE_CLIENT;
		r.in = pkt(0xE0, cat({B({0}), props(block)}));
		break;
	case ENG_AUTH:
		r.in = pkt(0xF0, cat({B({ENG_RC_CONTINUE_AUTH}), props(block)}));
		break;
	}
	return r;
}

// The block for a property in a place: Authentication Data needs an Authentication Method
// (3.1.2.11.10), and an AUTH packet always carries its method (3.15.2.2.2).
Bytes block_for(int id, int place, const Bytes &prop)
{
	bool method = (id == ENG_PROP_AUTH_DATA && allowed(ENG_PROP_AUTH_METHOD, place)) ||
		      (place == ENG_AUTH && id != ENG_PROP_AUTH_METHOD);
	return method ? cat({p_str(ENG_PROP_AUTH_METHOD, "m"), prop}) : prop;
}

const struct eng_props &props_of(const struct eng_packet &p, int place)
{
	switch (place) {
	case ENG_PLACE_WILL:
		return p.u.connect.will_props;
	case ENG_CONNECT:
		return p.u.connect.props;
	case ENG_CONNACK:
		return p.u.connack.props;
	case ENG_PUBLISH:
		return p.u.publish.props;
	case ENG_SUBSCRIBE:
	case ENG_UNSUBSCRIBE:
		return p.u.subscribe.props;
	case ENG_SUBACK:
	case ENG_UNSUBACK:
		return p.u.suback.props;
	case ENG_DISCONNECT:
	case ENG_AUTH:
		return p.u.disconnect.props;
	default:
		return p.u.ack.props;
	}
}

// The error a v5 peer answers with: CONNACK for an error in CONNECT, else DISCONNECT.
void expect_v5_err_at(const Dec &d, int reason, int type)
{
	expect_err(d, reason, type == ENG_CONNECT ? ENG_ACT_CONNACK : ENG_ACT_DISCONNECT, type,
		   ENG_V5);
}

void expect_placed_err_at(int place, const Bytes &block, int reason, int hint = 0)
{
	Placed pl = place_props(place, block, hint);
	Dec d = decode(pl.c, pl.in);
	expect_v5_err(d, reason, pl.type);
}

} // namespace

// Every identifier in every place: decoded where Table 2-4 allows it, Malformed elsewhere.
TEST(EngProps, AllowedInPlaceTable)
{
	for (int place : kPlaces)
		for (int id : kAllIds) {
			SCOPED_TRACE("place " + std::to_string(place) + " id " +
				     std::to_string(id));
			Placed pl = place_props(place, block_for(id, place, sample(id)), id);
			Dec d = decode(pl.c, pl.in);
			if (allowed(id, place)) {
				ASSERT_EQ(d.rc, int(pl.in.size()))
					<< "err " << int(d.err.reason) << " "
					<< (d.rc < 0 && d.err.what ? d.err.what : "");
				expect_sample(props_of(d.pkt, place), id);
			} else {
				expect_v5_err(d, ENG_RC_MALFORMED, pl.type);
			}
		}
}

// The present bits are exactly the properties decoded, raw exactly the block.
TEST(EngProps, PresentAndRaw)
{
	Bytes block = cat({p_str(ENG_PROP_REASON_STRING, "x"), p_user("a", "b"), p_user("c", "d")});
	Placed pl = place_props(ENG_PUBACK, block);
	Dec d = decode(pl.c, pl.in);
	ASSERT_EQ(d.rc, int(pl.in.size()));
	const struct eng_props &p = d.pkt.u.ack.props;
	EXPECT_EQ(p.present, ENG_PBIT(ENG_PROP_REASON_STRING) | ENG_PBIT(ENG_PROP_USER));
	EXPECT_EQ(p.raw.len, block.size());
	EXPECT_EQ(Bytes(p.raw.p, p.raw.p + p.raw.len), block);
	EXPECT_TRUE(d.inside(p.raw));
	EXPECT_EQ(p.user_count, 2u);
}

TEST(EngProps, EmptyBlockEverywhere)
{
	for (int place : kPlaces) {
		Bytes block = place == ENG_AUTH ? p_str(ENG_PROP_AUTH_METHOD, "m") : Bytes();
		Placed pl = place_props(place, block);
		Dec d = decode(pl.c, pl.in);
		ASSERT_EQ(d.rc, int(pl.in.size())) << place;
		const struct eng_props &p = props_of(d.pkt, place);
		EXPECT_EQ(p.present, place == ENG_AUTH ? ENG_PBIT(ENG_PROP_AUTH_METHOD) : 0u);
		EXPECT_EQ(p.user_count, 0u);
		EXPECT_EQ(p.sub_id_count, 0u);
	}
}

// "It is a Protocol Error to include <property> more than once", for every property but
// User Property, in every place it is allowed.
TEST(EngProps, DuplicatesAreProtocolErrors)
{
	for (int place : kPlaces)
		for (int id : kAllIds) {
			if (!allowed(id, place) || id == ENG_PROP_USER)
				continue;
			if (id == ENG_PROP_SUBSCRIPTION_ID && place == ENG_PUBLISH)
				continue;
			SCOPED_TRACE("place " + std::to_string(place) + " id " +
				     std::to_string(id));
			Bytes two = cat({sample(id), sample(id)});
			expect_placed_err(place, block_for(id, place, two), ENG_RC_PROTOCOL_ERROR,
					  id);
		}
}

// Duplicates with different values are duplicates too, and not only when adjacent.
TEST(EngProps, DuplicateNotAdjacent)
{
	Bytes block = cat({p_u32(ENG_PROP_MESSAGE_EXPIRY, 1), p_user("a", "b"),
			   p_byte(ENG_PROP_PAYLOAD_FORMAT, 0), p_u32(ENG_PROP_MESSAGE_EXPIRY, 2)});
	expect_placed_err(ENG_PUBLISH, block, ENG_RC_PROTOCOL_ERROR);
	expect_placed_err(ENG_PLACE_WILL, block, ENG_RC_PROTOCOL_ERROR);
}

// 3.1.2.11.8 and the like: User Property may appear many times, same name included.
TEST(EngProps, UserPropertyRepeatsEverywhere)
{
	Bytes block = cat({p_user("a", "1"), p_user("a", "2"), p_user("", ""),
			   p_user("\xC3\xA9", "\xF0\x9F\x98\x80")});
	for (int place : kPlaces) {
		Placed pl = place_props(place, block_for(ENG_PROP_USER, place, block));
		Dec d = decode(pl.c, pl.in);
		ASSERT_EQ(d.rc, int(pl.in.size())) << place;
		const struct eng_props &p = props_of(d.pkt, place);
		EXPECT_EQ(p.user_count, 4u);
		EXPECT_EQ(user_props(p), (Pairs{{"a", "1"},
						{"a", "2"},
						{"", ""},
						{"\xC3\xA9", "\xF0\x9F\x98\x80"}}));
	}
}

// 3.3.2.3.8: a PUBLISH may carry several Subscription Identifiers; 3.8.2.1.2: a SUBSCRIBE
// only one.
TEST(EngProps, SubscriptionIdRepeatsInPublishOnly)
{
	Bytes block =
		cat({p_vbi(ENG_PROP_SUBSCRIPTION_ID, 7), p_user("a", "b"),
		     p_vbi(ENG_PROP_SUBSCRIPTION_ID, 16384), p_vbi(ENG_PROP_SUBSCRIPTION_ID, 7)});
	Placed pl = place_props(ENG_PUBLISH, block);
	Dec d = decode(pl.c, pl.in);
	ASSERT_EQ(d.rc, int(pl.in.size()));
	EXPECT_EQ(d.pkt.u.publish.props.sub_id_count, 3u);
	EXPECT_EQ(d.pkt.u.publish.props.subscription_id, 7u);
	EXPECT_EQ(sub_ids(d.pkt.u.publish.props), (std::vector<uint32_t>{7, 16384, 7}));
	EXPECT_EQ(user_props(d.pkt.u.publish.props), (Pairs{{"a", "b"}}));
	expect_placed_err(ENG_SUBSCRIBE, block, ENG_RC_PROTOCOL_ERROR);
}

// Limits of each data type decode exactly (1.5.2 - 1.5.7).
TEST(EngProps, TypeLimits)
{
	Bytes block = cat(
		{p_byte(ENG_PROP_PAYLOAD_FORMAT, 0), p_u32(ENG_PROP_MESSAGE_EXPIRY, 0xFFFFFFFF),
		 p_u16(ENG_PROP_TOPIC_ALIAS, 0xFFFF), p_vbi(ENG_PROP_SUBSCRIPTION_ID, 1),
		 p_vbi(ENG_PROP_SUBSCRIPTION_ID, 127), p_vbi(ENG_PROP_SUBSCRIPTION_ID, 128),
		 p_vbi(ENG_PROP_SUBSCRIPTION_ID, 16383), p_vbi(ENG_PROP_SUBSCRIPTION_ID, 16384),
		 p_vbi(ENG_PROP_SUBSCRIPTION_ID, 2097151), p_vbi(ENG_PROP_SUBSCRIPTION_ID, 2097152),
		 p_vbi(ENG_PROP_SUBSCRIPTION_ID, ENG_VBI_MAX), p_str(ENG_PROP_CONTENT_TYPE, ""),
		 B({ENG_PROP_CORRELATION_DATA}), bin(Bytes()),
		 p_str(ENG_PROP_RESPONSE_TOPIC, std::string(300, 'r'))});
	Placed pl = place_props(ENG_PUBLISH, block);
	Dec d = decode(pl.c, pl.in);
	ASSERT_EQ(d.rc, int(pl.in.size()));
	const struct eng_props &p = d.pkt.u.publish.props;
	EXPECT_EQ(p.payload_format, 0);
	EXPECT_EQ(p.message_expiry, 0xFFFFFFFFu);
	EXPECT_EQ(p.topic_alias, 0xFFFF);
	EXPECT_EQ(sub_ids(p), (std::vector<uint32_t>{1, 127, 128, 16383, 16384, 2097151, 2097152,
						     ENG_VBI_MAX}));
	EXPECT_TRUE(p.present & ENG_PBIT(ENG_PROP_CONTENT_TYPE));
	EXPECT_EQ(p.content_type.len, 0u);
	EXPECT_TRUE(p.present & ENG_PBIT(ENG_PROP_CORRELATION_DATA));
	EXPECT_EQ(p.correlation_data.len, 0u);
	EXPECT_EQ(S(p.response_topic), std::string(300, 'r'));

	Bytes cb =
		cat({p_u32(ENG_PROP_SESSION_EXPIRY, 0xFFFFFFFF),
		     p_u16(ENG_PROP_RECEIVE_MAXIMUM, 0xFFFF),
		     p_u32(ENG_PROP_MAXIMUM_PACKET_SIZE, 0xFFFFFFFF),
		     p_u16(ENG_PROP_TOPIC_ALIAS_MAXIMUM, 0), p_u16(ENG_PROP_SERVER_KEEP_ALIVE, 0),
		     p_byte(ENG_PROP_MAXIMUM_QOS, 0), p_byte(ENG_PROP_RETAIN_AVAILABLE, 0),
		     p_byte(ENG_PROP_SHARED_SUB_AVAILABLE, 0)});
	pl = place_props(ENG_CONNACK, cb);
	d = decode(pl.c, pl.in);
	ASSERT_EQ(d.rc, int(pl.in.size()));
	const struct eng_props &q = d.pkt.u.connack.props;
	EXPECT_EQ(q.session_expiry, 0xFFFFFFFFu);
	EXPECT_EQ(q.receive_maximum, 0xFFFF);
	EXPECT_EQ(q.maximum_packet_size, 0xFFFFFFFFu);
	EXPECT_EQ(q.topic_alias_maximum, 0);
	EXPECT_EQ(q.server_keep_alive, 0);
	EXPECT_EQ(q.maximum_qos, 0);
	EXPECT_EQ(q.retain_available, 0);
	EXPECT_EQ(q.shared_sub_available, 0);
}

// Value rules, each a Protocol Error (the property sections of chapter 3).
TEST(EngProps, ValueRules)
{
	struct Rule {
		int place;
		Bytes prop;
	};
	const Rule bad[] = {
		// 3.3.2.3.2 / 3.1.3.2.3: 0 or 1.
		{ENG_PUBLISH, p_byte(ENG_PROP_PAYLOAD_FORMAT, 2)},
		{ENG_PLACE_WILL, p_byte(ENG_PROP_PAYLOAD_FORMAT, 0xFF)},
		// 3.1.2.11.7, 3.1.2.11.6: 0 or 1.
		{ENG_CONNECT, p_byte(ENG_PROP_REQUEST_PROBLEM_INFO, 2)},
		{ENG_CONNECT, p_byte(ENG_PROP_REQUEST_RESPONSE_INFO, 2)},
		// 3.2.2.3.4, .5, .11, .12, .13: 0 or 1.
		{ENG_CONNACK, p_byte(ENG_PROP_MAXIMUM_QOS, 2)},
		{ENG_CONNACK, p_byte(ENG_PROP_RETAIN_AVAILABLE, 2)},
		{ENG_CONNACK, p_byte(ENG_PROP_WILDCARD_SUB_AVAILABLE, 2)},
		{ENG_CONNACK, p_byte(ENG_PROP_SUB_ID_AVAILABLE, 2)},
		{ENG_CONNACK, p_byte(ENG_PROP_SHARED_SUB_AVAILABLE, 2)},
		// 3.1.2.11.3 / 3.2.2.3.3: Receive Maximum 0.
		{ENG_CONNECT, p_u16(ENG_PROP_RECEIVE_MAXIMUM, 0)},
		{ENG_CONNACK, p_u16(ENG_PROP_RECEIVE_MAXIMUM, 0)},
		// 3.1.2.11.4 / 3.2.2.3.6: Maximum Packet Size 0.
		{ENG_CONNECT, p_u32(ENG_PROP_MAXIMUM_PACKET_SIZE, 0)},
		{ENG_CONNACK, p_u32(ENG_PROP_MAXIMUM_PACKET_SIZE, 0)},
		// 3.3.2.3.4: Topic Alias 0.
		{ENG_PUBLISH, p_u16(ENG_PROP_TOPIC_ALIAS, 0)},
		// 3.3.2.3.8 / 3.8.2.1.2: Subscription Identifier 0.
		{ENG_PUBLISH, p_vbi(ENG_PROP_SUBSCRIPTION_ID, 0)},
		{ENG_SUBSCRIBE, p_vbi(ENG_PROP_SUBSCRIPTION_ID, 0)},
		// 3.1.2.11.10 / 3.2.2.3.17: Authentication Data without Authentication Method.
		{ENG_CONNECT, cat({B({ENG_PROP_AUTH_DATA}), bin(B({1}))})},
		{ENG_CONNACK, cat({B({ENG_PROP_AUTH_DATA}), bin(B({1}))})},
		// 3.3.2.3.5 (MQTT-3.3.2-14): no wildcards in a Response Topic.
		{ENG_PUBLISH, p_str(ENG_PROP_RESPONSE_TOPIC, "r/#")},
		{ENG_PLACE_WILL, p_str(ENG_PROP_RESPONSE_TOPIC, "+/r")},
	};
	for (const Rule &r : bad) {
		SCOPED_TRACE("place " + std::to_string(r.place) + " prop " + hex(r.prop));
		expect_placed_err(r.place, r.prop, ENG_RC_PROTOCOL_ERROR);
	}
	// And the legal edges of the same rules decode.
	const Rule good[] = {
		{ENG_PUBLISH, p_byte(ENG_PROP_PAYLOAD_FORMAT, 0)},
		{ENG_CONNECT, p_byte(ENG_PROP_REQUEST_PROBLEM_INFO, 0)},
		{ENG_CONNECT, p_byte(ENG_PROP_REQUEST_RESPONSE_INFO, 0)},
		{ENG_CONNECT, p_u16(ENG_PROP_RECEIVE_MAXIMUM, 1)},
		{ENG_CONNECT, p_u32(ENG_PROP_MAXIMUM_PACKET_SIZE, 1)},
		{ENG_CONNECT, p_u16(ENG_PROP_TOPIC_ALIAS_MAXIMUM, 0)},
		{ENG_PUBLISH, p_u16(ENG_PROP_TOPIC_ALIAS, 1)},
		{ENG_SUBSCRIBE, p_vbi(ENG_PROP_SUBSCRIPTION_ID, ENG_VBI_MAX)},
		{ENG_CONNECT, p_str(ENG_PROP_AUTH_METHOD, "m")},
	};
	for (const Rule &r : good) {
		SCOPED_TRACE("place " + std::to_string(r.place) + " prop " + hex(r.prop));
		Placed pl = place_props(r.place, r.prop);
		Dec d = decode(pl.c, pl.in);
		EXPECT_EQ(d.rc, int(pl.in.size()));
	}
}

// Blocks that cannot be parsed: Malformed (2.2.2, 1.5.x).
TEST(EngProps, MalformedBlocks)
{
	// Unknown identifiers, including ones that exist in no version.
	for (int id : {0x00, 0x04, 0x05, 0x0A, 0x0C, 0x10, 0x14, 0x1B, 0x1D, 0x20, 0x2B, 0x7F})
		expect_placed_err(ENG_PUBLISH, B({id, 0, 0, 0, 0}), ENG_RC_MALFORMED);
	// The identifier is a Variable Byte Integer: a two-byte one names no property.
	expect_placed_err(ENG_PUBLISH, B({0x81, 0x00, 0}), ENG_RC_MALFORMED);
	// Values cut by the end of the block.
	expect_placed_err(ENG_PUBLISH, B({ENG_PROP_MESSAGE_EXPIRY, 0, 0}), ENG_RC_MALFORMED);
	expect_placed_err(ENG_PUBLISH, B({ENG_PROP_TOPIC_ALIAS, 1}), ENG_RC_MALFORMED);
	expect_placed_err(ENG_PUBLISH, B({ENG_PROP_PAYLOAD_FORMAT}), ENG_RC_MALFORMED);
	expect_placed_err(ENG_PUBLISH, B({ENG_PROP_CONTENT_TYPE, 0, 5, 'a', 'b'}),
			  ENG_RC_MALFORMED);
	expect_placed_err(ENG_PUBLISH, B({ENG_PROP_CONTENT_TYPE, 0}), ENG_RC_MALFORMED);
	expect_placed_err(ENG_PUBLISH, B({ENG_PROP_USER, 0, 1, 'k', 0, 2, 'v'}), ENG_RC_MALFORMED);
	expect_placed_err(ENG_PUBLISH, B({ENG_PROP_USER, 0, 1, 'k'}), ENG_RC_MALFORMED);
	expect_placed_err(ENG_PUBLISH, B({ENG_PROP_SUBSCRIPTION_ID, 0x80}), ENG_RC_MALFORMED);
	// A Subscription Identifier that is not a minimal or valid Variable Byte Integer.
	expect_placed_err(ENG_PUBLISH, B({ENG_PROP_SUBSCRIPTION_ID, 0x81, 0x00}), ENG_RC_MALFORMED);
	expect_placed_err(ENG_PUBLISH, B({ENG_PROP_SUBSCRIPTION_ID, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}),
			  ENG_RC_MALFORMED);
	// Ill-formed UTF-8 in string properties and in both halves of a user property
	// (1.5.4, 1.5.7).
	expect_placed_err(ENG_PUBLISH, cat({B({ENG_PROP_CONTENT_TYPE}), bin(B({0xC0, 0x80}))}),
			  ENG_RC_MALFORMED);
	expect_placed_err(ENG_PUBLISH, cat({B({ENG_PROP_RESPONSE_TOPIC}), bin(B({'a', 0}))}),
			  ENG_RC_MALFORMED);
	expect_placed_err(ENG_PUBACK,
			  cat({B({ENG_PROP_REASON_STRING}), bin(B({0xED, 0xA0, 0x80}))}),
			  ENG_RC_MALFORMED);
	expect_placed_err(ENG_PUBACK, cat({B({ENG_PROP_USER}), bin(B({0xFF})), str("v")}),
			  ENG_RC_MALFORMED);
	expect_placed_err(ENG_PUBACK, cat({B({ENG_PROP_USER}), str("k"), bin(B({0xE2, 0x82}))}),
			  ENG_RC_MALFORMED);
	expect_placed_err(ENG_CONNACK,
			  cat({B({ENG_PROP_ASSIGNED_CLIENT_ID}), bin(B({0xF4, 0x90, 0x80, 0x80}))}),
			  ENG_RC_MALFORMED);
	expect_placed_err(ENG_CONNECT, cat({B({ENG_PROP_AUTH_METHOD}), bin(B({0xC1, 0x81}))}),
			  ENG_RC_MALFORMED);
	expect_placed_err(ENG_PLACE_WILL, cat({B({ENG_PROP_CONTENT_TYPE}), bin(B({0}))}),
			  ENG_RC_MALFORMED);
	// Binary data is not UTF-8: any bytes are fine.
	Placed pl = place_props(ENG_PUBLISH,
				cat({B({ENG_PROP_CORRELATION_DATA}), bin(B({0, 0xFF, 0xC0}))}));
	EXPECT_EQ(decode(pl.c, pl.in).rc, int(pl.in.size()));
}

// The Property Length itself: longer than what follows, or not a minimal VBI.
TEST(EngProps, MalformedPropertyLength)
{
	// PUBACK whose Property Length says 5 with 2 bytes left.
	Dec d = srv(ENG_V5,
		    pkt(0x40, cat({u16(1), B({0, 5}), p_byte(ENG_PROP_PAYLOAD_FORMAT, 0)})));
	expect_v5_err(d, ENG_RC_MALFORMED, ENG_PUBACK);
	d = srv(ENG_V5, pkt(0x40, cat({u16(1), B({0, 4, ENG_PROP_REASON_STRING, 0, 0})})));
	expect_v5_err(d, ENG_RC_MALFORMED, ENG_PUBACK);
	// A PUBLISH whose properties run into the payload are read as properties, and the
	// payload's bytes are then not a property: malformed.
	d = srv(ENG_V5, pkt(0x30, cat({str("t"), B({3}), raw("hello")})));
	expect_v5_err(d, ENG_RC_MALFORMED, ENG_PUBLISH);
	// Property Length larger than the packet.
	d = srv(ENG_V5, pkt(0x30, cat({str("t"), B({0x7F})})));
	expect_v5_err(d, ENG_RC_MALFORMED, ENG_PUBLISH);
	// Non-minimal Property Length 0 (1.5.5).
	d = srv(ENG_V5, pkt(0x30, cat({str("t"), B({0x80, 0x00}), raw("x")})));
	expect_v5_err(d, ENG_RC_MALFORMED, ENG_PUBLISH);
	// Property Length missing altogether where it is mandatory.
	d = srv(ENG_V5, pkt(0x32, cat({str("t"), u16(1)})));
	expect_v5_err(d, ENG_RC_MALFORMED, ENG_PUBLISH);
	d = cli(ENG_V5, pkt(0x20, B({0, 0})));
	expect_v5_err(d, ENG_RC_MALFORMED, ENG_CONNACK);
	d = srv(ENG_V5, pkt(0x82, cat({u16(1)})));
	expect_v5_err(d, ENG_RC_MALFORMED, ENG_SUBSCRIBE);
	d = srv(0, pkt(0x10, cat({str("MQTT"), B({5, 0x02}), u16(0)})));
	expect_v5_err(d, ENG_RC_MALFORMED, ENG_CONNECT);
	// Will properties missing.
	d = srv(0, pkt(0x10, cat({str("MQTT"), B({5, 0x06}), u16(0), no_props(), str("c")})));
	expect_v5_err(d, ENG_RC_MALFORMED, ENG_CONNECT);
}

// ---- Iterators ---------------------------------------------------------------------------

TEST(EngProps, IteratorsSkipOtherProperties)
{
	Bytes block =
		cat({p_vbi(ENG_PROP_SUBSCRIPTION_ID, 3), p_user("a", "1"),
		     p_str(ENG_PROP_CONTENT_TYPE, "ct"), p_vbi(ENG_PROP_SUBSCRIPTION_ID, 200000),
		     p_u32(ENG_PROP_MESSAGE_EXPIRY, 9), p_user("b", "2"),
		     cat({B({ENG_PROP_CORRELATION_DATA}), bin(B({ENG_PROP_USER, 0, 0, 0, 0}))}),
		     p_vbi(ENG_PROP_SUBSCRIPTION_ID, 1)});
	Placed pl = place_props(ENG_PUBLISH, block);
	Dec d = decode(pl.c, pl.in);
	ASSERT_EQ(d.rc, int(pl.in.size()));
	const struct eng_props &p = d.pkt.u.publish.props;
	EXPECT_EQ(user_props(p), (Pairs{{"a", "1"}, {"b", "2"}}));
	EXPECT_EQ(sub_ids(p), (std::vector<uint32_t>{3, 200000, 1}));
	EXPECT_EQ(p.user_count, 2u);
	EXPECT_EQ(p.sub_id_count, 3u);
	EXPECT_EQ(p.subscription_id, 3u);
	// The views point into the receive buffer.
	struct eng_iter it = eng_iter_of(p.raw);
	struct eng_str k, v;
	ASSERT_TRUE(eng_user_prop_next(&it, &k, &v));
	EXPECT_TRUE(d.inside(k));
	EXPECT_TRUE(d.inside(v));
	ASSERT_TRUE(eng_user_prop_next(&it, &k, &v));
	EXPECT_FALSE(eng_user_prop_next(&it, &k, &v));
	// And an exhausted iterator stays exhausted.
	EXPECT_FALSE(eng_user_prop_next(&it, &k, &v));
}

TEST(EngProps, IteratorsOnEmptyBlocks)
{
	struct eng_str empty = {nullptr, 0};
	struct eng_iter it = eng_iter_of(empty);
	struct eng_str k, v;
	uint32_t id;
	EXPECT_FALSE(eng_user_prop_next(&it, &k, &v));
	it = eng_iter_of(empty);
	EXPECT_FALSE(eng_sub_id_next(&it, &id));
	it = eng_iter_of(empty);
	struct eng_str f;
	uint8_t o;
	EXPECT_FALSE(eng_sub_next(&it, &f, &o));
	it = eng_iter_of(empty);
	EXPECT_FALSE(eng_unsub_next(&it, &f));
	// A 3.1.1 packet has no property block at all.
	Dec d = srv(ENG_V311, vec::pub3_q0());
	ASSERT_GT(d.rc, 0);
	EXPECT_TRUE(user_props(d.pkt.u.publish.props).empty());
	EXPECT_TRUE(sub_ids(d.pkt.u.publish.props).empty());
}

// Many user properties: the count and the iteration agree.
TEST(EngProps, ManyUserProperties)
{
	Bytes block;
	Pairs want;
	for (int i = 0; i < 500; i++) {
		std::string k = "k" + std::to_string(i), v(size_t(i % 7), 'v');
		block = cat({block, p_user(k, v)});
		want.emplace_back(k, v);
	}
	Placed pl = place_props(ENG_PUBLISH, block);
	Dec d = decode(pl.c, pl.in);
	ASSERT_EQ(d.rc, int(pl.in.size()));
	EXPECT_EQ(d.pkt.u.publish.props.user_count, 500u);
	EXPECT_EQ(user_props(d.pkt.u.publish.props), want);
}

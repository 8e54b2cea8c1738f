// SPDX-License-Identifier: MIT
//
// Every class of decoding error, with the exact return value, reason, action, packet type and
// answer version. Where MQTT 5 names the reason (Malformed Packet 0x81, Protocol Error 0x82,
// Packet too large 0x95) the test pins it; where it does not, the definitions of 4.13 decide:
// a packet that cannot be parsed is Malformed, a parsed packet carrying something the protocol
// forbids is a Protocol Error. MQTT 3.x has no reason codes: it closes the connection (except
// for the CONNACK return codes of CONNECT), so a 3.x test checks the action and that the
// reason is one of the two.
#include "eng_test_vectors.h"

using namespace engtest;

// The checking helpers, called through macros that trace the calling line.
#define expect_v5(...) ENG_TRACED(expect_v5, __VA_ARGS__)
#define expect_close(...) ENG_TRACED(expect_close, __VA_ARGS__)
#define expect_connack3(...) ENG_TRACED(expect_connack3, __VA_ARGS__)

namespace
{

// An MQTT 5 connection's error: CONNACK for a CONNECT, DISCONNECT otherwise (4.13.1).
void expect_v5_at(const Dec &d, int reason, int type)
{
	expect_err(d, reason, type == ENG_CONNECT ? ENG_ACT_CONNACK : ENG_ACT_DISCONNECT, type,
		   ENG_V5);
}

// An MQTT 3.x (or not yet versioned) connection's error: close without a reply.
void expect_close_at(const Dec &d, int type, int version, int reason = 0)
{
	EXPECT_LT(d.rc, 0);
	EXPECT_NE(d.rc, -EAGAIN);
	EXPECT_EQ(d.rc, -int(d.err.reason));
	if (reason) {
		EXPECT_EQ(int(d.err.reason), reason);
	} else {
		EXPECT_TRUE(d.err.reason == ENG_RC_MALFORMED ||
			    d.err.reason == ENG_RC_PROTOCOL_ERROR)
			<< int(d.err.reason);
	}
	EXPECT_EQ(int(d.err.action), ENG_ACT_CLOSE);
	EXPECT_EQ(int(d.err.type), type);
	EXPECT_EQ(int(d.err.version), version);
	EXPECT_NE(d.err.what, nullptr);
}

// A refused CONNECT answered with a MQTT 3.x CONNACK return code: reason is the MQTT 5
// code, reply the 3.x return code.
void expect_connack3_at(const Dec &d, int reason, int return_code, int version)
{
	EXPECT_EQ(d.rc, -reason);
	EXPECT_EQ(int(d.err.reason), reason);
	EXPECT_EQ(int(d.err.reply), return_code);
	EXPECT_EQ(int(d.err.action), ENG_ACT_CONNACK);
	EXPECT_EQ(int(d.err.type), ENG_CONNECT);
	EXPECT_EQ(int(d.err.version), version);
	EXPECT_NE(d.err.what, nullptr);
}

Bytes connect_with(const std::string &name, int level, int flags, const Bytes &rest)
{
	return pkt(0x10, cat({str(name), B({level, flags}), u16(60), rest}));
}

Bytes connect5(int flags, const Bytes &payload)
{
	return connect_with("MQTT", 5, flags, cat({no_props(), payload}));
}

Bytes connect311(int flags, const Bytes &payload)
{
	return connect_with("MQTT", 4, flags, payload);
}

// A valid packet of each type, in the direction it travels (v5 form when v5).
struct Typed {
	int type;
	Bytes in;
	uint8_t role; // who legitimately receives it
};

std::vector<Typed> one_of_each(uint8_t v)
{
	bool v5 = v == ENG_V5;
	std::vector<Typed> t = {
		{ENG_CONNECT, v5 ? vec::connect5_min() : vec::connect311_min(), ENG_ROLE_SERVER},
		{ENG_CONNACK, v5 ? vec::connack5_min() : vec::connack3(0, 0), ENG_ROLE_CLIENT},
		{ENG_PUBLISH, v5 ? vec::pub5_q0() : vec::pub3_q0(), ENG_ROLE_SERVER},
		{ENG_PUBACK, vec::ack(0x40, 1), ENG_ROLE_SERVER},
		{ENG_PUBREC, vec::ack(0x50, 1), ENG_ROLE_SERVER},
		{ENG_PUBREL, vec::ack(0x62, 1), ENG_ROLE_SERVER},
		{ENG_PUBCOMP, vec::ack(0x70, 1), ENG_ROLE_SERVER},
		{ENG_SUBSCRIBE, v5 ? vec::sub5() : vec::sub3(), ENG_ROLE_SERVER},
		{ENG_SUBACK, v5 ? vec::suback5() : vec::suback311(), ENG_ROLE_CLIENT},
		{ENG_UNSUBSCRIBE, v5 ? vec::unsub5() : vec::unsub3(), ENG_ROLE_SERVER},
		{ENG_UNSUBACK, v5 ? vec::unsuback5() : vec::unsuback3(), ENG_ROLE_CLIENT},
		{ENG_PINGREQ, vec::pingreq(), ENG_ROLE_SERVER},
		{ENG_PINGRESP, vec::pingresp(), ENG_ROLE_CLIENT},
		{ENG_DISCONNECT, vec::disc_empty(), ENG_ROLE_SERVER},
	};
	if (v5)
		t.push_back({ENG_AUTH, vec::auth5_full(), ENG_ROLE_SERVER});
	return t;
}

} // namespace

// ---- Fixed header ------------------------------------------------------------------------

// 2.2.3 / 1.5.5: the Remaining Length has at most 4 bytes.
TEST(EngErrors, RemainingLengthOverFourBytes)
{
	for (const Bytes &in :
	     {B({0x30, 0xFF, 0xFF, 0xFF, 0xFF}), B({0x30, 0xFF, 0xFF, 0xFF, 0x80, 0x01}),
	      B({0xC0, 0x80, 0x80, 0x80, 0x80, 0x00})}) {
		int type = in[0] >> 4;
		expect_v5(srv(ENG_V5, in), ENG_RC_MALFORMED, type);
		expect_close(srv(ENG_V311, in), type, ENG_V311, ENG_RC_MALFORMED);
		expect_close(srv(ENG_V31, in), type, ENG_V31, ENG_RC_MALFORMED);
		if (type == ENG_PUBLISH)
			expect_v5(cli(ENG_V5, in), ENG_RC_MALFORMED, type);
	}
	// Three continuation bytes are not yet an error.
	EXPECT_EQ(srv(ENG_V5, B({0x30, 0xFF, 0xFF, 0xFF})).rc, -EAGAIN);
}

// 1.5.5 (MQTT-1.5.5-1): the minimum number of bytes.
TEST(EngErrors, RemainingLengthNotMinimal)
{
	for (const Bytes &in : {B({0xC0, 0x80, 0x00}), B({0x30, 0x84, 0x00, 0x00, 0x01, 't', 'x'}),
				B({0x30, 0x80, 0x80, 0x00}), B({0x30, 0xFF, 0x80, 0x80, 0x00})}) {
		int type = in[0] >> 4;
		expect_v5(srv(ENG_V5, in), ENG_RC_MALFORMED, type);
		expect_close(srv(ENG_V311, in), type, ENG_V311, ENG_RC_MALFORMED);
	}
	// 0x80 alone may still become 128 (0x80 0x01): not yet decidable.
	EXPECT_EQ(srv(ENG_V5, B({0x30, 0x80})).rc, -EAGAIN);
	EXPECT_EQ(srv(ENG_V5, B({0x30, 0x80, 0x01})).rc, -EAGAIN);
}

// 2.1.3 (5.0) / 2.2.2 (3.1.1): reserved flags must have their listed value; anything else is
// Malformed, for every type but PUBLISH.
TEST(EngErrors, ReservedFlags)
{
	for (uint8_t v : {ENG_V311, ENG_V5})
		for (const Typed &t : one_of_each(v)) {
			int good = t.in[0] & 15;
			for (int f = 0; f < 16; f++) {
				if (t.type == ENG_PUBLISH || f == good)
					continue;
				SCOPED_TRACE("version " + std::to_string(v) + " type " +
					     std::to_string(t.type) + " flags " +
					     std::to_string(f));
				Bytes in = t.in;
				in[0] = uint8_t(t.type << 4 | f);
				uint8_t cv = t.type == ENG_CONNECT ? 0 : v;
				Dec d = decode(ctx(cv, t.role), in);
				// A CONNECT is refused from its fixed header, before its version
				// is read: nothing to answer in (the CONNACK is a MAY, 4.13.1).
				if (t.type == ENG_CONNECT)
					expect_close(d, t.type, 0, ENG_RC_MALFORMED);
				else if (v == ENG_V5)
					expect_v5(d, ENG_RC_MALFORMED, t.type);
				else
					expect_close(d, t.type, v, ENG_RC_MALFORMED);
			}
		}
}

// Type 0 is reserved (forbidden) in every version.
TEST(EngErrors, PacketTypeZero)
{
	for (const Bytes &in : {B({0x00, 0x00}), B({0x0F, 0x00}), B({0x00, 0x02, 0x00, 0x01})}) {
		expect_v5(srv(ENG_V5, in), ENG_RC_MALFORMED, 0);
		expect_v5(cli(ENG_V5, in), ENG_RC_MALFORMED, 0);
		expect_close(srv(ENG_V311, in), 0, ENG_V311, ENG_RC_MALFORMED);
		expect_close(srv(0, in), 0, 0, ENG_RC_MALFORMED);
	}
}

// AUTH (type 15) is reserved before MQTT 5: a packet that cannot be parsed, Malformed.
TEST(EngErrors, AuthBeforeV5)
{
	for (uint8_t v : {ENG_V31, ENG_V311}) {
		expect_close(srv(v, vec::auth5_empty()), ENG_AUTH, v, ENG_RC_MALFORMED);
		expect_close(cli(v, vec::auth5_empty()), ENG_AUTH, v, ENG_RC_MALFORMED);
		expect_close(srv(v, vec::auth5_full()), ENG_AUTH, v, ENG_RC_MALFORMED);
	}
}

// ---- Packet too large ----------------------------------------------------------------------

// 3.1.2.11.4 / 3.2.2.3.6: a packet over the receiver's Maximum Packet Size is answered with
// 0x95, decided from the fixed header alone, before the body arrives.
TEST(EngErrors, PacketTooLargeFromFixedHeader)
{
	// PUBLISH with Remaining Length 100: 102 bytes in all.
	Bytes hdr = B({0x30, 100});
	for (uint8_t v : {ENG_V31, ENG_V311, ENG_V5})
		for (uint8_t role : {ENG_ROLE_SERVER, ENG_ROLE_CLIENT}) {
			Dec d = decode(ctx(v, role, 101), hdr);
			if (v == ENG_V5)
				expect_err(d, ENG_RC_PACKET_TOO_LARGE, ENG_ACT_DISCONNECT,
					   ENG_PUBLISH, ENG_V5);
			else
				expect_close(d, ENG_PUBLISH, v, ENG_RC_PACKET_TOO_LARGE);
			// One byte more of allowance: the packet fits and is incomplete.
			EXPECT_EQ(decode(ctx(v, role, 102), hdr).rc, -EAGAIN);
		}
	// Multi-byte Remaining Length: 16383 + 3 = 16386 bytes.
	Bytes big = B({0x30, 0xFF, 0x7F});
	expect_err(decode(ctx(ENG_V5, ENG_ROLE_SERVER, 16385), big), ENG_RC_PACKET_TOO_LARGE,
		   ENG_ACT_DISCONNECT, ENG_PUBLISH, ENG_V5);
	EXPECT_EQ(decode(ctx(ENG_V5, ENG_ROLE_SERVER, 16386), big).rc, -EAGAIN);
	// 0 means the protocol maximum.
	EXPECT_EQ(decode(ctx(ENG_V5, ENG_ROLE_SERVER, 0), B({0x30, 0xFF, 0xFF, 0xFF, 0x7F})).rc,
		  -EAGAIN);
	// A complete packet over the limit is rejected the same way.
	Bytes whole = pkt(0x30, cat({str("t"), Bytes(200, 'x')}));
	expect_err(decode(ctx(ENG_V5, ENG_ROLE_SERVER, 100), whole), ENG_RC_PACKET_TOO_LARGE,
		   ENG_ACT_DISCONNECT, ENG_PUBLISH, ENG_V5);
}

// A CONNECT that is too large, before anything says its version: close.
TEST(EngErrors, PacketTooLargeConnect)
{
	Dec d = decode(ctx(0, ENG_ROLE_SERVER, 50), B({0x10, 100}));
	expect_close(d, ENG_CONNECT, 0, ENG_RC_PACKET_TOO_LARGE);
}

// ---- UTF-8 (1.5.4 of 5.0, 1.5.3 of 3.1.1: ill-formed UTF-8 and U+0000 are Malformed) ----

namespace
{

const std::vector<Bytes> &bad_utf8()
{
	static const std::vector<Bytes> v = {
		B({0xC0, 0xAF}),	     // overlong '/'
		B({0xE0, 0x80, 0xAF}),	     // overlong '/' in 3 bytes
		B({0xF0, 0x80, 0x80, 0xAF}), // overlong '/' in 4 bytes
		B({0xED, 0xA0, 0x80}),	     // U+D800
		B({0xED, 0xB0, 0x80}),	     // U+DC00
		B({0xED, 0xBF, 0xBF}),	     // U+DFFF
		B({'a', 0x00, 'b'}),	     // U+0000
		B({0x00}),		     // U+0000 alone
		B({0xC3}),		     // truncated 2-byte
		B({'a', 0xE2, 0x82}),	     // truncated 3-byte at the end
		B({0xF0, 0x9F, 0x98}),	     // truncated 4-byte at the end
		B({0xC3, 'a'}),		     // missing continuation
		B({0x80}),		     // lone continuation
		B({0xF4, 0x90, 0x80, 0x80}), // U+110000
		B({0xF7, 0xBF, 0xBF, 0xBF}), // U+1FFFFF
		B({0xFE}),
		B({0xFF}),
	};
	return v;
}

} // namespace

TEST(EngErrors, Utf8InPublishTopic)
{
	for (const Bytes &s : bad_utf8()) {
		SCOPED_TRACE(hex(s));
		expect_v5(srv(ENG_V5, pkt(0x30, cat({bin(s), no_props(), raw("x")}))),
			  ENG_RC_MALFORMED, ENG_PUBLISH);
		expect_v5(cli(ENG_V5, pkt(0x30, cat({bin(s), no_props()}))), ENG_RC_MALFORMED,
			  ENG_PUBLISH);
		expect_close(srv(ENG_V311, pkt(0x30, cat({bin(s), raw("x")}))), ENG_PUBLISH,
			     ENG_V311, ENG_RC_MALFORMED);
	}
}

// The check is bounded by the string's length: a sequence completed by the next field's
// bytes is still truncated.
TEST(EngErrors, Utf8TruncatedAtStringEnd)
{
	// Topic "\xE2\x82" then payload "\xAC" (together the euro sign).
	Bytes in = pkt(0x30, cat({bin(B({0xE2, 0x82})), B({0xAC})}));
	expect_close(srv(ENG_V311, in), ENG_PUBLISH, ENG_V311, ENG_RC_MALFORMED);
	// And a valid multi-byte topic is fine.
	Dec d = srv(ENG_V311, pkt(0x30, cat({bin(B({0xE2, 0x82, 0xAC})), B({0xAC})})));
	EXPECT_GT(d.rc, 0);
}

TEST(EngErrors, Utf8InConnect)
{
	for (const Bytes &s : bad_utf8()) {
		SCOPED_TRACE(hex(s));
		// Client identifier.
		expect_v5(srv(0, connect5(0x02, bin(s))), ENG_RC_MALFORMED, ENG_CONNECT);
		expect_close(srv(0, connect311(0x02, bin(s))), ENG_CONNECT, ENG_V311,
			     ENG_RC_MALFORMED);
		// Will topic.
		expect_v5(srv(0, connect5(0x06, cat({str("c"), no_props(), bin(s), str("m")}))),
			  ENG_RC_MALFORMED, ENG_CONNECT);
		expect_close(srv(0, connect311(0x06, cat({str("c"), bin(s), str("m")}))),
			     ENG_CONNECT, ENG_V311, ENG_RC_MALFORMED);
		// User name.
		expect_v5(srv(0, connect5(0x82, cat({str("c"), bin(s)}))), ENG_RC_MALFORMED,
			  ENG_CONNECT);
		expect_close(srv(0, connect311(0x82, cat({str("c"), bin(s)}))), ENG_CONNECT,
			     ENG_V311, ENG_RC_MALFORMED);
	}
	// The will payload and the password are binary: any bytes.
	Bytes any = B({0x00, 0xFF, 0xC0, 0x80});
	EXPECT_GT(srv(0, connect5(0xC6, cat({str("c"), no_props(), str("t"), bin(any), str("u"),
					     bin(any)})))
			  .rc,
		  0);
	EXPECT_GT(srv(0, connect311(0xC6, cat({str("c"), str("t"), bin(any), str("u"), bin(any)})))
			  .rc,
		  0);
}

TEST(EngErrors, Utf8InSubscribeAndUnsubscribe)
{
	for (const Bytes &s : bad_utf8()) {
		SCOPED_TRACE(hex(s));
		expect_v5(srv(ENG_V5, pkt(0x82, cat({u16(1), no_props(), str("ok"), B({0}), bin(s),
						     B({0})}))),
			  ENG_RC_MALFORMED, ENG_SUBSCRIBE);
		expect_close(srv(ENG_V311, pkt(0x82, cat({u16(1), bin(s), B({0})}))), ENG_SUBSCRIBE,
			     ENG_V311, ENG_RC_MALFORMED);
		expect_v5(srv(ENG_V5, pkt(0xA2, cat({u16(1), no_props(), bin(s)}))),
			  ENG_RC_MALFORMED, ENG_UNSUBSCRIBE);
		expect_close(srv(ENG_V311, pkt(0xA2, cat({u16(1), str("ok"), bin(s)}))),
			     ENG_UNSUBSCRIBE, ENG_V311, ENG_RC_MALFORMED);
	}
}

// ---- PUBLISH -----------------------------------------------------------------------------

// 3.3.1.2: QoS 3 is Malformed.
TEST(EngErrors, PublishQos3)
{
	for (int f : {0x06, 0x07, 0x0E, 0x0F}) {
		Bytes in5 = pkt(0x30 | f, cat({str("t"), u16(1), no_props()}));
		Bytes in3 = pkt(0x30 | f, cat({str("t"), u16(1)}));
		expect_v5(srv(ENG_V5, in5), ENG_RC_MALFORMED, ENG_PUBLISH);
		expect_v5(cli(ENG_V5, in5), ENG_RC_MALFORMED, ENG_PUBLISH);
		expect_close(srv(ENG_V311, in3), ENG_PUBLISH, ENG_V311, ENG_RC_MALFORMED);
	}
}

// 3.3.1.1 (MQTT-3.3.1-2): DUP must be 0 for QoS 0. The spec names no reason; DUP is a flag of
// the fixed header, and invalid fixed header flags are Malformed (2.1.3), like QoS 3.
TEST(EngErrors, PublishDupOnQos0)
{
	expect_v5(srv(ENG_V5, pkt(0x38, cat({str("t"), no_props()}))), ENG_RC_MALFORMED,
		  ENG_PUBLISH);
	expect_v5(cli(ENG_V5, pkt(0x39, cat({str("t"), no_props(), raw("x")}))), ENG_RC_MALFORMED,
		  ENG_PUBLISH);
	expect_close(srv(ENG_V311, pkt(0x38, str("t"))), ENG_PUBLISH, ENG_V311, ENG_RC_MALFORMED);
}

// 2.2.1 (MQTT-2.2.1-3 of 5.0, MQTT-2.3.1-1 of 3.1.1): a QoS > 0 PUBLISH needs a non-zero id.
TEST(EngErrors, PublishPacketIdZero)
{
	for (int b0 : {0x32, 0x34, 0x3A}) {
		expect_v5(srv(ENG_V5, pkt(b0, cat({str("t"), u16(0), no_props()}))),
			  ENG_RC_PROTOCOL_ERROR, ENG_PUBLISH);
		expect_v5(cli(ENG_V5, pkt(b0, cat({str("t"), u16(0), no_props()}))),
			  ENG_RC_PROTOCOL_ERROR, ENG_PUBLISH);
		expect_close(srv(ENG_V311, pkt(b0, cat({str("t"), u16(0)}))), ENG_PUBLISH,
			     ENG_V311);
	}
}

// 3.3.2.1 (MQTT-3.3.2-2) / 4.7.1: no wildcards in a Topic Name. The spec names no reason;
// 0x90 Topic Name invalid is the code MQTT 5 has for a Topic Name that is refused.
TEST(EngErrors, PublishTopicWildcards)
{
	for (const char *t : {"+", "#", "a/+", "a/#", "+/b", "a/+/b", "a#", "a+b", "#/a"}) {
		SCOPED_TRACE(t);
		expect_v5(srv(ENG_V5, pkt(0x30, cat({str(t), no_props(), raw("x")}))),
			  ENG_RC_TOPIC_NAME_INVALID, ENG_PUBLISH);
		expect_v5(cli(ENG_V5, pkt(0x32, cat({str(t), u16(1), no_props()}))),
			  ENG_RC_TOPIC_NAME_INVALID, ENG_PUBLISH);
		expect_close(srv(ENG_V311, pkt(0x30, cat({str(t), raw("x")}))), ENG_PUBLISH,
			     ENG_V311, ENG_RC_TOPIC_NAME_INVALID);
	}
	// Other special characters are legal in a Topic Name.
	for (const char *t : {"$SYS/x", "/", "a//b", " ", "a b"}) {
		Bytes in = pkt(0x30, cat({str(t), raw("x")}));
		EXPECT_EQ(srv(ENG_V311, in).rc, int(in.size())) << t;
	}
}

// A zero-length Topic Name: legal in 5.0 only with a Topic Alias (3.3.2.1); in 3.1.1 a
// Topic Name is at least one character (4.7.3, MQTT-4.7.3-1).
TEST(EngErrors, PublishEmptyTopic)
{
	expect_v5(srv(ENG_V5, pkt(0x30, cat({str(""), no_props(), raw("x")}))),
		  ENG_RC_PROTOCOL_ERROR, ENG_PUBLISH);
	expect_v5(srv(ENG_V5, pkt(0x30, cat({str(""), props(p_user("a", "b")), raw("x")}))),
		  ENG_RC_PROTOCOL_ERROR, ENG_PUBLISH);
	expect_close(srv(ENG_V311, pkt(0x30, cat({str(""), raw("x")}))), ENG_PUBLISH, ENG_V311);
}

// Bodies cut short inside their length: Malformed (not "incomplete": the Remaining Length
// says the packet is all there).
TEST(EngErrors, PublishTruncatedBody)
{
	expect_close(srv(ENG_V311, B({0x30, 0x01, 0x00})), ENG_PUBLISH, ENG_V311, ENG_RC_MALFORMED);
	expect_close(srv(ENG_V311, B({0x30, 0x00})), ENG_PUBLISH, ENG_V311, ENG_RC_MALFORMED);
	expect_close(srv(ENG_V311, pkt(0x30, B({0x00, 0x05, 'a', 'b'}))), ENG_PUBLISH, ENG_V311,
		     ENG_RC_MALFORMED);
	expect_close(srv(ENG_V311, pkt(0x32, cat({str("t"), B({0x01})}))), ENG_PUBLISH, ENG_V311,
		     ENG_RC_MALFORMED);
	expect_v5(srv(ENG_V5, pkt(0x32, cat({str("t"), B({0x01})}))), ENG_RC_MALFORMED,
		  ENG_PUBLISH);
	expect_v5(srv(ENG_V5, pkt(0x30, str("t"))), ENG_RC_MALFORMED, ENG_PUBLISH);
}

// ---- Acks, ping, disconnect: fixed lengths -------------------------------------------------

TEST(EngErrors, WrongLengths)
{
	for (int b0 : {0x40, 0x50, 0x62, 0x70}) {
		int type = b0 >> 4;
		// 3.x acks are exactly 2 bytes of body.
		expect_close(srv(ENG_V311, pkt(b0, B({0, 1, 0}))), type, ENG_V311,
			     ENG_RC_MALFORMED);
		expect_close(srv(ENG_V311, pkt(b0, B({0}))), type, ENG_V311, ENG_RC_MALFORMED);
		expect_close(srv(ENG_V311, pkt(b0, B({}))), type, ENG_V311, ENG_RC_MALFORMED);
		// 5.0: at least the packet id.
		expect_v5(srv(ENG_V5, pkt(b0, B({0}))), ENG_RC_MALFORMED, type);
		expect_v5(srv(ENG_V5, pkt(b0, B({}))), ENG_RC_MALFORMED, type);
		// Properties longer than the packet.
		expect_v5(srv(ENG_V5, pkt(b0, B({0, 1, 0, 9, 0x1F}))), ENG_RC_MALFORMED, type);
		// Bytes after the properties.
		expect_v5(srv(ENG_V5, pkt(b0, B({0, 1, 0, 0, 0x55}))), ENG_RC_MALFORMED, type);
	}
	for (uint8_t v : {ENG_V31, ENG_V311}) {
		expect_close(srv(v, B({0xC0, 0x01, 0x00})), ENG_PINGREQ, v, ENG_RC_MALFORMED);
		expect_close(cli(v, B({0xD0, 0x01, 0x00})), ENG_PINGRESP, v, ENG_RC_MALFORMED);
		expect_close(srv(v, B({0xE0, 0x01, 0x00})), ENG_DISCONNECT, v, ENG_RC_MALFORMED);
		expect_close(cli(v, pkt(0x20, B({0, 0, 0}))), ENG_CONNACK, v, ENG_RC_MALFORMED);
		expect_close(cli(v, pkt(0x20, B({0}))), ENG_CONNACK, v, ENG_RC_MALFORMED);
		expect_close(cli(v, pkt(0xB0, B({0, 1, 0}))), ENG_UNSUBACK, v, ENG_RC_MALFORMED);
	}
	expect_v5(srv(ENG_V5, B({0xC0, 0x01, 0x00})), ENG_RC_MALFORMED, ENG_PINGREQ);
	expect_v5(cli(ENG_V5, B({0xD0, 0x01, 0x00})), ENG_RC_MALFORMED, ENG_PINGRESP);
	expect_v5(cli(ENG_V5, pkt(0x20, B({0}))), ENG_RC_MALFORMED, ENG_CONNACK);
	expect_v5(srv(ENG_V5, pkt(0xE0, B({0, 5, 0x1F}))), ENG_RC_MALFORMED, ENG_DISCONNECT);
	expect_v5(srv(ENG_V5, pkt(0xE0, B({0, 0, 0x55}))), ENG_RC_MALFORMED, ENG_DISCONNECT);
	expect_v5(srv(ENG_V5, pkt(0xF0, B({0x18, 0x09}))), ENG_RC_MALFORMED, ENG_AUTH);
}

// 3.2.2.1: bits 7-1 of the Connect Acknowledge Flags are reserved (0).
TEST(EngErrors, ConnackReservedFlags)
{
	for (int f : {0x02, 0x80, 0xFE}) {
		expect_close(cli(ENG_V311, vec::connack3(f, 0)), ENG_CONNACK, ENG_V311,
			     ENG_RC_MALFORMED);
		expect_v5(cli(ENG_V5, pkt(0x20, B({f, 0, 0}))), ENG_RC_MALFORMED, ENG_CONNACK);
	}
}

// 3.2.2.2 (MQTT-3.2.2-4 of 3.1.1, MQTT-3.2.2-6 of 5.0): a refusal has Session Present 0.
TEST(EngErrors, ConnackSessionPresentWithRefusal)
{
	expect_close(cli(ENG_V311, vec::connack3(1, ENG_V3_NOT_AUTHORIZED)), ENG_CONNACK, ENG_V311,
		     ENG_RC_PROTOCOL_ERROR);
	expect_v5(cli(ENG_V5, pkt(0x20, B({1, ENG_RC_NOT_AUTHORIZED, 0}))), ENG_RC_PROTOCOL_ERROR,
		  ENG_CONNACK);
}

// Each packet's sender "MUST use one of" its listed reason codes (3.2.2.2, 3.4.2.1, 3.5.2.1,
// 3.6.2.1, 3.7.2.1, 3.9.3, 3.11.3, 3.14.2.1, 3.15.2.1 of 5.0; 3.2.2.3 and 3.9.3 of 3.1.1).
// The spec names no reason for a receiver: a value outside the packet's code table cannot be
// read as that packet, so Malformed.
TEST(EngErrors, ReasonCodesNotValidForPacket)
{
	expect_v5(cli(ENG_V5, pkt(0x20, B({0, 0x01, 0}))), ENG_RC_MALFORMED, ENG_CONNACK);
	expect_v5(cli(ENG_V5, pkt(0x20, B({0, 0x8B, 0}))), ENG_RC_MALFORMED, ENG_CONNACK);
	expect_v5(srv(ENG_V5, vec::ack5_rc(0x40, 1, 0x05)), ENG_RC_MALFORMED, ENG_PUBACK);
	expect_v5(srv(ENG_V5, vec::ack5_rc(0x50, 1, 0x92)), ENG_RC_MALFORMED, ENG_PUBREC);
	expect_v5(srv(ENG_V5, vec::ack5_rc(0x62, 1, 0x10)), ENG_RC_MALFORMED, ENG_PUBREL);
	expect_v5(srv(ENG_V5, vec::ack5_rc(0x70, 1, 0x80)), ENG_RC_MALFORMED, ENG_PUBCOMP);
	expect_v5(cli(ENG_V5, pkt(0x90, cat({u16(1), no_props(), B({0, 3})}))), ENG_RC_MALFORMED,
		  ENG_SUBACK);
	expect_v5(cli(ENG_V5, pkt(0xB0, cat({u16(1), no_props(), B({0x01})}))), ENG_RC_MALFORMED,
		  ENG_UNSUBACK);
	expect_v5(srv(ENG_V5, vec::disc5_rc(0x01)), ENG_RC_MALFORMED, ENG_DISCONNECT);
	expect_v5(srv(ENG_V5, pkt(0xF0, cat({B({0x01}), props(p_str(ENG_PROP_AUTH_METHOD, "m"))}))),
		  ENG_RC_MALFORMED, ENG_AUTH);
	// 3.x: CONNACK return codes 0-5, SUBACK return codes 0, 1, 2, 0x80.
	expect_close(cli(ENG_V311, vec::connack3(0, 6)), ENG_CONNACK, ENG_V311, ENG_RC_MALFORMED);
	expect_close(cli(ENG_V311, pkt(0x90, cat({u16(1), B({0x03})}))), ENG_SUBACK, ENG_V311,
		     ENG_RC_MALFORMED);
	expect_close(cli(ENG_V311, pkt(0x90, cat({u16(1), B({0x81})}))), ENG_SUBACK, ENG_V311,
		     ENG_RC_MALFORMED);
}

// 3.9.3 / 3.11.3: one reason code per topic filter of the request, which has at least one
// (the MQTT 3.x UNSUBACK excepted: it has none).
TEST(EngErrors, AckOfSubscribeWithoutReasons)
{
	expect_v5(cli(ENG_V5, pkt(0x90, cat({u16(1), no_props()}))), ENG_RC_PROTOCOL_ERROR,
		  ENG_SUBACK);
	expect_v5(cli(ENG_V5, pkt(0xB0, cat({u16(1), no_props()}))), ENG_RC_PROTOCOL_ERROR,
		  ENG_UNSUBACK);
	expect_close(cli(ENG_V311, pkt(0x90, u16(1))), ENG_SUBACK, ENG_V311, ENG_RC_PROTOCOL_ERROR);
}

// ---- SUBSCRIBE, UNSUBSCRIBE ----------------------------------------------------------------

// 3.8.3 (MQTT-3.8.3-2 / 3.1.1 MQTT-3.8.3-3) and 3.10.3: at least one entry.
TEST(EngErrors, SubscribeWithoutEntries)
{
	expect_v5(srv(ENG_V5, pkt(0x82, cat({u16(1), no_props()}))), ENG_RC_PROTOCOL_ERROR,
		  ENG_SUBSCRIBE);
	expect_v5(srv(ENG_V5, pkt(0x82, cat({u16(1), props(p_user("a", "b"))}))),
		  ENG_RC_PROTOCOL_ERROR, ENG_SUBSCRIBE);
	expect_v5(srv(ENG_V5, pkt(0xA2, cat({u16(1), no_props()}))), ENG_RC_PROTOCOL_ERROR,
		  ENG_UNSUBSCRIBE);
	for (uint8_t v : {ENG_V31, ENG_V311}) {
		expect_close(srv(v, pkt(0x82, u16(1))), ENG_SUBSCRIBE, v);
		expect_close(srv(v, pkt(0xA2, u16(1))), ENG_UNSUBSCRIBE, v);
	}
}

TEST(EngErrors, SubscribePacketIdZero)
{
	expect_v5(srv(ENG_V5, pkt(0x82, cat({u16(0), no_props(), str("t"), B({0})}))),
		  ENG_RC_PROTOCOL_ERROR, ENG_SUBSCRIBE);
	expect_v5(srv(ENG_V5, pkt(0xA2, cat({u16(0), no_props(), str("t")}))),
		  ENG_RC_PROTOCOL_ERROR, ENG_UNSUBSCRIBE);
	expect_close(srv(ENG_V311, pkt(0x82, cat({u16(0), str("t"), B({0})}))), ENG_SUBSCRIBE,
		     ENG_V311);
	expect_close(srv(ENG_V311, pkt(0xA2, cat({u16(0), str("t")}))), ENG_UNSUBSCRIBE, ENG_V311);
}

// 3.8.3.1: reserved bits 6-7 are Malformed (MQTT-3.8.3-5), QoS 3 and Retain Handling 3 are
// Protocol Errors; 3.1.1 (MQTT-3-8.3-4): bits 2-7 reserved, QoS 3 malformed.
TEST(EngErrors, SubscribeOptions)
{
	auto sub5 = [](int o) {
		return srv(ENG_V5, pkt(0x82, cat({u16(1), no_props(), str("ok"), B({1}), str("t"),
						  B({o})})));
	};
	for (int o : {0x40, 0x80, 0xC0, 0x41})
		expect_v5(sub5(o), ENG_RC_MALFORMED, ENG_SUBSCRIBE);
	for (int o : {0x03, 0x0F, 0x30, 0x31, 0x3F})
		expect_v5(sub5(o), ENG_RC_PROTOCOL_ERROR, ENG_SUBSCRIBE);
	for (int o : {0x03, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80}) {
		Dec d = srv(ENG_V311, pkt(0x82, cat({u16(1), str("t"), B({o})})));
		expect_close(d, ENG_SUBSCRIBE, ENG_V311);
	}
	// A filter with no options byte.
	expect_v5(srv(ENG_V5, pkt(0x82, cat({u16(1), no_props(), str("t")}))), ENG_RC_MALFORMED,
		  ENG_SUBSCRIBE);
	expect_close(srv(ENG_V311, pkt(0x82, cat({u16(1), str("t")}))), ENG_SUBSCRIBE, ENG_V311,
		     ENG_RC_MALFORMED);
	// A filter longer than the packet.
	expect_close(srv(ENG_V311, pkt(0x82, cat({u16(1), B({0, 9, 'a'})}))), ENG_SUBSCRIBE,
		     ENG_V311, ENG_RC_MALFORMED);
}

// 4.7.3 (MQTT-4.7.3-1): a Topic Filter is at least one character long.
TEST(EngErrors, EmptyTopicFilter)
{
	expect_v5(srv(ENG_V5,
		      pkt(0x82, cat({u16(1), no_props(), str("a"), B({0}), str(""), B({0})}))),
		  ENG_RC_PROTOCOL_ERROR, ENG_SUBSCRIBE);
	expect_v5(srv(ENG_V5, pkt(0xA2, cat({u16(1), no_props(), str("")}))), ENG_RC_PROTOCOL_ERROR,
		  ENG_UNSUBSCRIBE);
	expect_close(srv(ENG_V311, pkt(0x82, cat({u16(1), str(""), B({0})}))), ENG_SUBSCRIBE,
		     ENG_V311, ENG_RC_PROTOCOL_ERROR);
	expect_close(srv(ENG_V311, pkt(0xA2, cat({u16(1), str("")}))), ENG_UNSUBSCRIBE, ENG_V311,
		     ENG_RC_PROTOCOL_ERROR);
}

// 3.8.3.1 (MQTT-3.8.3-4): No Local on a Shared Subscription is a Protocol Error.
TEST(EngErrors, SubscribeNoLocalShared)
{
	expect_v5(srv(ENG_V5, pkt(0x82, cat({u16(1), no_props(), str("$share/g/t"), B({0x04})}))),
		  ENG_RC_PROTOCOL_ERROR, ENG_SUBSCRIBE);
	Bytes ok = pkt(0x82, cat({u16(1), no_props(), str("$share/g/t"), B({0x00})}));
	EXPECT_EQ(srv(ENG_V5, ok).rc, int(ok.size()));
}

// ---- CONNECT -----------------------------------------------------------------------------

// 3.1.2.1: the Protocol Name must be "MQTT" ("MQIsdp" for 3.1). A server that does not
// recognise it may only close (MQTT-3.1.2-1 of 3.1.1); 5.0 names 0x84 Unsupported Protocol
// Version for it.
TEST(EngErrors, ConnectProtocolName)
{
	for (const char *name : {"MQTX", "mqtt", "MQT", "", "HTTP/1.1", "MQIsdP"}) {
		SCOPED_TRACE(name);
		expect_close(srv(0, connect_with(name, 4, 0x02, str("c"))), ENG_CONNECT, 0,
			     ENG_RC_UNSUPPORTED_VERSION);
		expect_close(srv(0, connect_with(name, 5, 0x02, cat({no_props(), str("c")}))),
			     ENG_CONNECT, 0, ENG_RC_UNSUPPORTED_VERSION);
	}
	// A name/level mismatch ("MQIsdp" is 3.1 only, "MQTT" is 3.1.1 and 5.0): an MQTT client
	// of a level this server does not speak, answered as in ConnectUnknownLevel, in the
	// format its name implies.
	expect_connack3(srv(0, connect_with("MQIsdp", 4, 0x02, str("c"))),
			ENG_RC_UNSUPPORTED_VERSION, ENG_V3_BAD_VERSION, ENG_V31);
	expect_connack3(srv(0, connect_with("MQTT", 3, 0x02, str("c"))), ENG_RC_UNSUPPORTED_VERSION,
			ENG_V3_BAD_VERSION, ENG_V311);
}

// 3.1.2.2 (3.1.1, MQTT-3.1.2-2): an unsupported Protocol Level is answered with CONNACK
// return code 0x01 and the connection closed; the version of that answer is a 3.x one (the
// client speaks no version we know, and a 3.x client could not read a 5.0 CONNACK). The
// reason is 0x84, Unsupported Protocol Version.
TEST(EngErrors, ConnectUnknownLevel)
{
	for (int level : {0, 1, 2, 6, 7, 0x83, 0x84, 0x85, 0xFF}) {
		Dec d = srv(0, connect_with("MQTT", level, 0x02, cat({no_props(), str("c")})));
		SCOPED_TRACE(level);
		expect_connack3(d, ENG_RC_UNSUPPORTED_VERSION, ENG_V3_BAD_VERSION, d.err.version);
		EXPECT_TRUE(d.err.version == ENG_V31 || d.err.version == ENG_V311);
	}
}

// 3.1.2.3 (MQTT-3.1.2-3): the reserved flag is 0, else Malformed.
TEST(EngErrors, ConnectReservedFlag)
{
	expect_v5(srv(0, connect5(0x03, str("c"))), ENG_RC_MALFORMED, ENG_CONNECT);
	expect_close(srv(0, connect311(0x03, str("c"))), ENG_CONNECT, ENG_V311, ENG_RC_MALFORMED);
}

// 3.1.2.5 - 3.1.2.7: Will QoS and Will Retain only with the Will Flag (MQTT-3.1.2-11, -13);
// Will QoS 3 is Malformed. The spec names no reason for the former; like Will QoS 3 it is a
// wrong value in the Connect Flags byte, so Malformed too.
TEST(EngErrors, ConnectWillFlags)
{
	for (int f : {0x08, 0x10, 0x18, 0x20, 0x28}) {
		SCOPED_TRACE(f);
		expect_v5(srv(0, connect5(0x02 | f, str("c"))), ENG_RC_MALFORMED, ENG_CONNECT);
		expect_close(srv(0, connect311(0x02 | f, str("c"))), ENG_CONNECT, ENG_V311,
			     ENG_RC_MALFORMED);
	}
	expect_v5(srv(0, connect5(0x1E, cat({str("c"), no_props(), str("t"), str("m")}))),
		  ENG_RC_MALFORMED, ENG_CONNECT);
	expect_close(srv(0, connect311(0x1E, cat({str("c"), str("t"), str("m")}))), ENG_CONNECT,
		     ENG_V311, ENG_RC_MALFORMED);
}

// 3.1.3.3: the Will Topic is a Topic Name: at least one character (4.7.3), no wildcards
// (4.7.1). The spec names no reason; 0x90 Topic Name invalid, as for a PUBLISH.
TEST(EngErrors, ConnectWillTopicInvalid)
{
	for (const char *t : {"", "a/#", "+"}) {
		SCOPED_TRACE(t);
		expect_v5(srv(0, connect5(0x06, cat({str("c"), no_props(), str(t), str("m")}))),
			  ENG_RC_TOPIC_NAME_INVALID, ENG_CONNECT);
		expect_close(srv(0, connect311(0x06, cat({str("c"), str(t), str("m")}))),
			     ENG_CONNECT, ENG_V311, ENG_RC_TOPIC_NAME_INVALID);
	}
}

// 3.1.2.9 of 3.1.1 (MQTT-3.1.2-22): no password without a user name (allowed in 5.0).
TEST(EngErrors, ConnectPasswordWithoutUsername311)
{
	expect_close(srv(0, connect311(0x42, cat({str("c"), str("pw")}))), ENG_CONNECT, ENG_V311);
}

// The payload must hold exactly the fields the flags announce (3.1.3).
TEST(EngErrors, ConnectPayloadMismatch)
{
	// Trailing bytes after the last field.
	expect_v5(srv(0, connect5(0x02, cat({str("c"), B({0})}))), ENG_RC_MALFORMED, ENG_CONNECT);
	expect_close(srv(0, connect311(0x02, cat({str("c"), B({0})}))), ENG_CONNECT, ENG_V311,
		     ENG_RC_MALFORMED);
	expect_v5(srv(0, connect5(0x82, cat({str("c"), str("u"), str("extra")}))), ENG_RC_MALFORMED,
		  ENG_CONNECT);
	// Announced fields missing.
	expect_v5(srv(0, connect5(0x82, str("c"))), ENG_RC_MALFORMED, ENG_CONNECT);
	expect_v5(srv(0, connect5(0xC2, cat({str("c"), str("u")}))), ENG_RC_MALFORMED, ENG_CONNECT);
	expect_v5(srv(0, connect5(0x06, cat({str("c"), no_props(), str("t")}))), ENG_RC_MALFORMED,
		  ENG_CONNECT);
	expect_close(srv(0, connect311(0x06, cat({str("c"), str("t")}))), ENG_CONNECT, ENG_V311,
		     ENG_RC_MALFORMED);
	// No client identifier at all.
	expect_v5(srv(0, connect5(0x02, Bytes())), ENG_RC_MALFORMED, ENG_CONNECT);
	expect_close(srv(0, connect311(0x02, Bytes())), ENG_CONNECT, ENG_V311, ENG_RC_MALFORMED);
	// Cut inside the variable header.
	Dec d = srv(0, pkt(0x10, cat({str("MQTT"), B({4})})));
	expect_close(d, ENG_CONNECT, d.err.version, ENG_RC_MALFORMED);
	EXPECT_TRUE(d.err.version == 0 || d.err.version == ENG_V311);
	expect_close(srv(0, pkt(0x10, B({0, 4, 'M'}))), ENG_CONNECT, 0, ENG_RC_MALFORMED);
}

// 3.1.3.1 of 3.1.1 (MQTT-3.1.3-8): a zero-byte ClientId with CleanSession 0 is refused with
// return code 0x02; MQTT 3.1 requires 1 to 23 characters.
TEST(EngErrors, ConnectEmptyClientId3)
{
	expect_connack3(srv(0, connect311(0x00, str(""))), ENG_RC_CLIENT_ID_INVALID,
			ENG_V3_ID_REJECTED, ENG_V311);
	expect_connack3(srv(0, connect_with("MQIsdp", 3, 0x02, str(""))), ENG_RC_CLIENT_ID_INVALID,
			ENG_V3_ID_REJECTED, ENG_V31);
}

// ---- Direction and state -------------------------------------------------------------------

// 3.1 (MQTT-3.1.0-1): the first packet from a client is CONNECT; nothing else is legal on a
// server connection without a version, and the connection closes (no version to answer in).
TEST(EngErrors, NothingBeforeConnect)
{
	for (uint8_t v : {ENG_V311, ENG_V5})
		for (const Typed &t : one_of_each(v)) {
			if (t.type == ENG_CONNECT)
				continue;
			SCOPED_TRACE("type " + std::to_string(t.type));
			expect_close(srv(0, t.in), t.type, 0, ENG_RC_PROTOCOL_ERROR);
		}
}

// 3.1 (MQTT-3.1.0-2): a second CONNECT is a Protocol Error.
TEST(EngErrors, SecondConnect)
{
	// An MQTT 5 connection answers a second CONNECT with DISCONNECT, not CONNACK: the
	// CONNACK has been sent already.
	expect_err(srv(ENG_V5, vec::connect5_min()), ENG_RC_PROTOCOL_ERROR, ENG_ACT_DISCONNECT,
		   ENG_CONNECT, ENG_V5);
	expect_close(srv(ENG_V311, vec::connect311_min()), ENG_CONNECT, ENG_V311,
		     ENG_RC_PROTOCOL_ERROR);
	expect_close(srv(ENG_V31, vec::connect31_min()), ENG_CONNECT, ENG_V31,
		     ENG_RC_PROTOCOL_ERROR);
}

// Packets that only travel the other way (2.1.2, the Direction of flow column).
TEST(EngErrors, WrongDirection)
{
	for (uint8_t v : {ENG_V311, ENG_V5})
		for (const Typed &t : one_of_each(v)) {
			bool both = t.type == ENG_PUBLISH ||
				    (t.type >= ENG_PUBACK && t.type <= ENG_PUBCOMP) ||
				    t.type == ENG_AUTH || (t.type == ENG_DISCONNECT && v == ENG_V5);
			if (both)
				continue;
			SCOPED_TRACE("version " + std::to_string(v) + " type " +
				     std::to_string(t.type));
			uint8_t wrong =
				t.role == ENG_ROLE_SERVER ? ENG_ROLE_CLIENT : ENG_ROLE_SERVER;
			Dec d = decode(ctx(v, wrong), t.in);
			// Only a server answers a CONNECT with CONNACK.
			if (v == ENG_V5)
				expect_err(d, ENG_RC_PROTOCOL_ERROR, ENG_ACT_DISCONNECT, t.type, v);
			else
				expect_close(d, t.type, v, ENG_RC_PROTOCOL_ERROR);
		}
	// 3.14 of 3.1.1: DISCONNECT goes from client to server only.
	expect_close(cli(ENG_V311, vec::disc_empty()), ENG_DISCONNECT, ENG_V311,
		     ENG_RC_PROTOCOL_ERROR);
	expect_close(cli(ENG_V31, vec::disc_empty()), ENG_DISCONNECT, ENG_V31,
		     ENG_RC_PROTOCOL_ERROR);
}

// 3.3.4 (MQTT-3.3.4-6): a PUBLISH from a client carries no Subscription Identifier.
TEST(EngErrors, SubscriptionIdFromClient)
{
	expect_v5(
		srv(ENG_V5, pkt(0x30, cat({str("t"), props(p_vbi(ENG_PROP_SUBSCRIPTION_ID, 1))}))),
		ENG_RC_PROTOCOL_ERROR, ENG_PUBLISH);
}

// 3.14.2.2.2 (MQTT-3.14.2-2): the server sends no Session Expiry Interval in DISCONNECT.
TEST(EngErrors, SessionExpiryFromServer)
{
	expect_v5(cli(ENG_V5, pkt(0xE0, cat({B({0}), props(p_u32(ENG_PROP_SESSION_EXPIRY, 1))}))),
		  ENG_RC_PROTOCOL_ERROR, ENG_DISCONNECT);
}

// ---- Incomplete is not malformed -----------------------------------------------------------

TEST(EngErrors, IncompleteIsNeverAnError)
{
	// Each prefix of a packet whose declared length has not arrived yet: -EAGAIN, even
	// where the bytes so far would be wrong as a whole packet.
	Bytes in = pkt(0x30, cat({str("a/b"), raw("payload")}));
	for (size_t n = 0; n < in.size(); n++)
		EXPECT_EQ(srv(ENG_V311, Bytes(in.begin(), in.begin() + long(n))).rc, -EAGAIN) << n;
	EXPECT_EQ(srv(ENG_V311, B({})).rc, -EAGAIN);
	EXPECT_EQ(srv(0, B({0x10})).rc, -EAGAIN);
}

// A client context must carry its version.
TEST(EngErrors, UnusableContext)
{
	Dec d = cli(0, vec::connack3(0, 0));
	EXPECT_EQ(d.rc, -EINVAL);
}

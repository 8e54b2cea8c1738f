// SPDX-License-Identifier: MIT
//
// Hand-written packets of every type in every version, laid out byte by byte after the
// specifications (MQTT 3.1 "MQIsdp", OASIS MQTT 3.1.1 chapter 3, OASIS MQTT 5.0 chapter 3).
// The decode tests check each field of these; the stream tests feed them byte by byte.
#ifndef ENG_TEST_VECTORS_H
#define ENG_TEST_VECTORS_H

#include "eng_test_util.h"

namespace engtest
{
namespace vec
{

// CONNECT (3.1.2 / 3.1.3 of each spec).
inline Bytes connect31_min()
{
	return pkt(0x10, cat({str("MQIsdp"), B({3, 0x02}), u16(60), str("abc")}));
}

// user, password, will retain, will QoS 1, will, clean session.
inline Bytes connect31_full()
{
	return pkt(0x10, cat({str("MQIsdp"), B({3, 0xEE}), u16(10), str("cid"), str("w/t"),
			      str("bye"), str("user"), str("pw")}));
}

inline Bytes connect311_min()
{
	return pkt(0x10, cat({str("MQTT"), B({4, 0x02}), u16(60), str("abc")}));
}

// user, password, will QoS 2, will, clean session; keep alive 0x1234.
inline Bytes connect311_full()
{
	return pkt(0x10, cat({str("MQTT"), B({4, 0xD6}), u16(0x1234), str("client-1"),
			      str("will/topic"), str("last words"), str("name"), str("secret")}));
}

inline Bytes connect5_min()
{
	return pkt(0x10, cat({str("MQTT"), B({5, 0x02}), u16(60), no_props(), str("abc")}));
}

inline Bytes connect5_props()
{
	return props(cat({p_u32(ENG_PROP_SESSION_EXPIRY, 3600), p_u16(ENG_PROP_RECEIVE_MAXIMUM, 20),
			  p_u32(ENG_PROP_MAXIMUM_PACKET_SIZE, 1024),
			  p_u16(ENG_PROP_TOPIC_ALIAS_MAXIMUM, 10),
			  p_byte(ENG_PROP_REQUEST_RESPONSE_INFO, 1),
			  p_byte(ENG_PROP_REQUEST_PROBLEM_INFO, 0), p_user("a", "1"),
			  p_user("b", "2"), p_str(ENG_PROP_AUTH_METHOD, "SCRAM"),
			  B({ENG_PROP_AUTH_DATA}), bin(B({1, 2, 3}))}));
}

inline Bytes will5_props()
{
	return props(
		cat({p_u32(ENG_PROP_WILL_DELAY, 5), p_byte(ENG_PROP_PAYLOAD_FORMAT, 1),
		     p_u32(ENG_PROP_MESSAGE_EXPIRY, 60), p_str(ENG_PROP_CONTENT_TYPE, "text/plain"),
		     p_str(ENG_PROP_RESPONSE_TOPIC, "r/t"), B({ENG_PROP_CORRELATION_DATA}),
		     bin(B({9, 8})), p_user("w", "x")}));
}

// user, password, will retain, will QoS 1, will; clean start 0.
inline Bytes connect5_full()
{
	return pkt(0x10,
		   cat({str("MQTT"), B({5, 0xEC}), u16(30), connect5_props(), str("cid5"),
			will5_props(), str("w/t"), str("bye"), str("user"), bin(B({0, 1, 2}))}));
}

// CONNACK (3.2).
inline Bytes connack3(int flags, int rc)
{
	return pkt(0x20, B({flags, rc}));
}

inline Bytes connack5_min()
{
	return pkt(0x20, B({0, 0, 0}));
}

inline Bytes connack5_props()
{
	return props(cat(
		{p_u32(ENG_PROP_SESSION_EXPIRY, 120), p_u16(ENG_PROP_RECEIVE_MAXIMUM, 100),
		 p_byte(ENG_PROP_MAXIMUM_QOS, 1), p_byte(ENG_PROP_RETAIN_AVAILABLE, 0),
		 p_u32(ENG_PROP_MAXIMUM_PACKET_SIZE, 65536),
		 p_str(ENG_PROP_ASSIGNED_CLIENT_ID, "auto-1"),
		 p_u16(ENG_PROP_TOPIC_ALIAS_MAXIMUM, 5), p_str(ENG_PROP_REASON_STRING, "ok"),
		 p_user("k", "v"), p_byte(ENG_PROP_WILDCARD_SUB_AVAILABLE, 1),
		 p_byte(ENG_PROP_SUB_ID_AVAILABLE, 0), p_byte(ENG_PROP_SHARED_SUB_AVAILABLE, 1),
		 p_u16(ENG_PROP_SERVER_KEEP_ALIVE, 30), p_str(ENG_PROP_RESPONSE_INFO, "resp"),
		 p_str(ENG_PROP_SERVER_REFERENCE, "other:1883"),
		 p_str(ENG_PROP_AUTH_METHOD, "SCRAM"), B({ENG_PROP_AUTH_DATA}), bin(B({4, 5}))}));
}

inline Bytes connack5_full()
{
	return pkt(0x20, cat({B({1, 0}), connack5_props()}));
}

inline Bytes connack5_refused()
{
	return pkt(0x20, cat({B({0, ENG_RC_NOT_AUTHORIZED}),
			      props(p_str(ENG_PROP_REASON_STRING, "no"))}));
}

// PUBLISH (3.3).
inline Bytes pub3_q0()
{
	return pkt(0x30, cat({str("a/b"), raw("hi")}));
}

inline Bytes pub3_q1_dup_retain()
{
	return pkt(0x3B, cat({str("a/b"), u16(7), raw("payload")}));
}

inline Bytes pub3_q2_empty()
{
	return pkt(0x34, cat({str("x"), u16(0xFFFF)}));
}

inline Bytes pub5_q0()
{
	return pkt(0x30, cat({str("a/b"), no_props(), raw("hi")}));
}

inline Bytes pub5_q1_props()
{
	return pkt(0x32, cat({str("a/b"), u16(1),
			      props(cat({p_byte(ENG_PROP_PAYLOAD_FORMAT, 1),
					 p_u32(ENG_PROP_MESSAGE_EXPIRY, 30),
					 p_str(ENG_PROP_CONTENT_TYPE, "json"),
					 p_str(ENG_PROP_RESPONSE_TOPIC, "re/sp"),
					 B({ENG_PROP_CORRELATION_DATA}), bin(B({0, 1})),
					 p_user("k", "v"), p_user("k", "w")})),
			      raw("{}")}));
}

// An empty topic with a Topic Alias (3.3.2.3.4).
inline Bytes pub5_alias()
{
	return pkt(0x30, cat({str(""), props(p_u16(ENG_PROP_TOPIC_ALIAS, 3)), raw("x")}));
}

// Server to client, with several Subscription Identifiers (3.3.4).
inline Bytes pub5_subids()
{
	return pkt(0x35, cat({str("s/t"), u16(9),
			      props(cat({p_vbi(ENG_PROP_SUBSCRIPTION_ID, 1),
					 p_vbi(ENG_PROP_SUBSCRIPTION_ID, ENG_VBI_MAX),
					 p_vbi(ENG_PROP_SUBSCRIPTION_ID, 128)})),
			      raw("p")}));
}

// PUBACK, PUBREC, PUBREL, PUBCOMP (3.4-3.7); b0 is the whole first byte.
inline Bytes ack(int b0, unsigned pid)
{
	return pkt(b0, u16(pid));
}

inline Bytes ack5_rc(int b0, unsigned pid, int rc)
{
	return pkt(b0, cat({u16(pid), B({rc})}));
}

inline Bytes ack5_full(int b0, unsigned pid, int rc)
{
	return pkt(b0, cat({u16(pid), B({rc}),
			    props(cat({p_str(ENG_PROP_REASON_STRING, "why"), p_user("a", "b")}))}));
}

// SUBSCRIBE (3.8).
inline Bytes sub3()
{
	return pkt(0x82, cat({u16(10), str("a/+"), B({1}), str("b/#"), B({2}), str("c"), B({0})}));
}

// QoS 1 + No Local + Retain As Published + Retain Handling 2; QoS 2 + RH 1; QoS 0.
inline Bytes sub5()
{
	return pkt(
		0x82,
		cat({u16(11), props(cat({p_vbi(ENG_PROP_SUBSCRIPTION_ID, 42), p_user("u", "v")})),
		     str("a/+"), B({0x2D}), str("$share/g/b"), B({0x12}), str("c"), B({0x00})}));
}

// SUBACK (3.9).
inline Bytes suback31()
{
	return pkt(0x90, cat({u16(10), B({0, 1, 2})}));
}

inline Bytes suback311()
{
	return pkt(0x90, cat({u16(10), B({0, 1, 2, 0x80})}));
}

inline Bytes suback5()
{
	return pkt(0x90, cat({u16(11), props(p_str(ENG_PROP_REASON_STRING, "r")),
			      B({0, 1, 2, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2})}));
}

// UNSUBSCRIBE (3.10).
inline Bytes unsub3()
{
	return pkt(0xA2, cat({u16(12), str("a/+"), str("b")}));
}

inline Bytes unsub5()
{
	return pkt(0xA2, cat({u16(13), props(p_user("x", "y")), str("a/+"), str("b")}));
}

// UNSUBACK (3.11).
inline Bytes unsuback3()
{
	return pkt(0xB0, u16(12));
}

inline Bytes unsuback5()
{
	return pkt(0xB0, cat({u16(13), props(p_str(ENG_PROP_REASON_STRING, "r")),
			      B({0x00, 0x11, 0x87})}));
}

// PINGREQ, PINGRESP (3.12, 3.13).
inline Bytes pingreq()
{
	return B({0xC0, 0x00});
}

inline Bytes pingresp()
{
	return B({0xD0, 0x00});
}

// DISCONNECT (3.14).
inline Bytes disc_empty()
{
	return B({0xE0, 0x00});
}

inline Bytes disc5_rc(int rc)
{
	return pkt(0xE0, B({rc}));
}

// Client to server: with a Session Expiry Interval.
inline Bytes disc5_client()
{
	return pkt(0xE0,
		   cat({B({ENG_RC_DISCONNECT_WITH_WILL}),
			props(cat({p_u32(ENG_PROP_SESSION_EXPIRY, 0),
				   p_str(ENG_PROP_REASON_STRING, "bye"), p_user("k", "v")}))}));
}

// Server to client: Use another server, with a Server Reference.
inline Bytes disc5_server()
{
	return pkt(0xE0, cat({B({ENG_RC_USE_ANOTHER_SERVER}),
			      props(cat({p_str(ENG_PROP_SERVER_REFERENCE, "other"),
					 p_str(ENG_PROP_REASON_STRING, "moved")}))}));
}

// AUTH (3.15).
inline Bytes auth5_empty()
{
	return B({0xF0, 0x00});
}

inline Bytes auth5_full()
{
	return pkt(0xF0, cat({B({ENG_RC_CONTINUE_AUTH}),
			      props(cat({p_str(ENG_PROP_AUTH_METHOD, "SCRAM"),
					 B({ENG_PROP_AUTH_DATA}), bin(B({1, 2})),
					 p_str(ENG_PROP_REASON_STRING, "r"), p_user("a", "b")}))}));
}

// Valid streams, in the order a connection could carry them. A server stream starts with
// its CONNECT (decoded with version 0); the client stream is what a server sends back.
inline std::vector<Bytes> server_bound(uint8_t v)
{
	std::vector<Bytes> s;
	if (v == ENG_V31)
		s = {connect31_full(), pub3_q0(),    pub3_q1_dup_retain(),
		     pub3_q2_empty(),  ack(0x40, 1), ack(0x50, 2),
		     ack(0x62, 3),     ack(0x70, 4), sub3(),
		     unsub3(),	       pingreq(),    disc_empty()};
	else if (v == ENG_V311)
		s = {connect311_full(), pub3_q0(),    pub3_q1_dup_retain(),
		     pub3_q2_empty(),	ack(0x40, 1), ack(0x50, 2),
		     ack(0x62, 3),	ack(0x70, 4), sub3(),
		     unsub3(),		pingreq(),    disc_empty()};
	else
		s = {connect5_full(),
		     pub5_q0(),
		     pub5_q1_props(),
		     pub5_alias(),
		     ack(0x40, 1),
		     ack5_rc(0x50, 2, ENG_RC_NO_MATCHING_SUBSCRIBERS),
		     ack5_full(0x62, 3, ENG_RC_PACKET_ID_NOT_FOUND),
		     ack5_full(0x70, 4, 0),
		     ack5_full(0x40, 5, ENG_RC_QUOTA_EXCEEDED),
		     sub5(),
		     unsub5(),
		     pingreq(),
		     auth5_full(),
		     disc5_client()};
	return s;
}

inline std::vector<Bytes> client_bound(uint8_t v)
{
	if (v == ENG_V31)
		return {connack3(0, 0), pub3_q0(),    pub3_q1_dup_retain(), ack(0x40, 1),
			ack(0x50, 2),	ack(0x62, 3), ack(0x70, 4),	    suback31(),
			unsuback3(),	pingresp()};
	if (v == ENG_V311)
		return {connack3(1, 0), pub3_q0(),    pub3_q2_empty(), ack(0x40, 1), ack(0x50, 2),
			ack(0x62, 3),	ack(0x70, 4), suback311(),     unsuback3(),  pingresp()};
	return {connack5_full(),
		pub5_subids(),
		pub5_q1_props(),
		ack(0x40, 1),
		ack5_rc(0x50, 2, ENG_RC_SUCCESS),
		ack5_full(0x62, 3, 0),
		ack5_full(0x70, 4, ENG_RC_PACKET_ID_NOT_FOUND),
		suback5(),
		unsuback5(),
		pingresp(),
		auth5_empty(),
		auth5_full(),
		disc5_server()};
}

} // namespace vec
} // namespace engtest

#endif // ENG_TEST_VECTORS_H

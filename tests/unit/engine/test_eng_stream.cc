// SPDX-License-Identifier: MIT
//
// Streams and round trips. Valid streams of every packet type fed byte by byte (every prefix
// is -EAGAIN until the packet is whole, then exactly its size; each prefix sits in an exactly
// sized heap buffer so ASan catches a read past len) and in random chunks as a receive buffer
// would see them. Round trips: packets with random fields (seeded PRNG) encoded, decoded and
// compared field by field, for every type and version, and re-encoded to the same bytes.
#include <deque>
#include <random>

#include "eng_test_vectors.h"

using namespace engtest;

namespace
{

Bytes slice(const Bytes &all, size_t pos, size_t n)
{
	return Bytes(all.begin() + long(pos), all.begin() + long(pos + n));
}

// Feeds the packets of a stream one prefix length at a time.
void feed_bytewise(uint8_t v, uint8_t role, const std::vector<Bytes> &pkts)
{
	Bytes all;
	for (const Bytes &p : pkts)
		all = cat({all, p});
	struct eng_codec_ctx c = ctx(role == ENG_ROLE_SERVER ? 0 : v, role);
	size_t pos = 0;
	for (const Bytes &p : pkts) {
		SCOPED_TRACE(
			"version " + std::to_string(v) + " role " + std::to_string(role) +
			" packet " +
			hex(Bytes(p.begin(), p.begin() + long(std::min<size_t>(p.size(), 8)))));
		if (p[0] >> 4 != ENG_CONNECT && c.version == 0)
			ADD_FAILURE() << "stream must start with CONNECT";
		for (size_t n = 0; n < p.size(); n++) {
			Dec d = decode(c, slice(all, pos, n), n);
			ASSERT_EQ(d.rc, -EAGAIN) << "prefix " << n << " of " << p.size();
		}
		Dec whole = decode(c, slice(all, pos, p.size()));
		ASSERT_EQ(whole.rc, int(p.size()));
		EXPECT_EQ(whole.pkt.type, p[0] >> 4);
		EXPECT_EQ(whole.pkt.size, p.size());
		// With the rest of the stream behind it, the same packet.
		Dec more = decode(c, slice(all, pos, all.size() - pos));
		ASSERT_EQ(more.rc, int(p.size()));
		expect_same_decoded(more.pkt, whole.pkt);
		if (whole.pkt.type == ENG_CONNECT)
			c.version = whole.pkt.u.connect.version;
		pos += p.size();
	}
	EXPECT_EQ(pos, all.size());
}

// A receive buffer filled by chunks of random size, drained by decoding as a connection
// does: decode while packets come out, keep the tail for the next chunk.
size_t feed_chunks(uint8_t v, uint8_t role, const Bytes &all, std::mt19937 &rng, size_t maxchunk)
{
	struct eng_codec_ctx c = ctx(role == ENG_ROLE_SERVER ? 0 : v, role);
	Bytes rx;
	size_t in = 0, packets = 0;
	while (in < all.size()) {
		size_t n = std::min(all.size() - in, size_t(rng() % maxchunk) + 1);
		rx = cat({rx, slice(all, in, n)});
		in += n;
		for (;;) {
			Dec d = decode(c, rx);
			if (d.rc == -EAGAIN)
				break;
			EXPECT_GT(d.rc, 0) << "err " << int(d.err.reason) << " "
					   << (d.err.what ? d.err.what : "");
			if (d.rc <= 0)
				return packets;
			if (d.pkt.type == ENG_CONNECT)
				c.version = d.pkt.u.connect.version;
			rx.erase(rx.begin(), rx.begin() + d.rc);
			packets++;
		}
	}
	EXPECT_TRUE(rx.empty());
	return packets;
}

} // namespace

// ---- Byte by byte ------------------------------------------------------------------------

TEST(EngStream, BytewiseServerBound31)
{
	feed_bytewise(ENG_V31, ENG_ROLE_SERVER, vec::server_bound(ENG_V31));
}

TEST(EngStream, BytewiseServerBound311)
{
	feed_bytewise(ENG_V311, ENG_ROLE_SERVER, vec::server_bound(ENG_V311));
}

TEST(EngStream, BytewiseServerBound5)
{
	feed_bytewise(ENG_V5, ENG_ROLE_SERVER, vec::server_bound(ENG_V5));
}

TEST(EngStream, BytewiseClientBound31)
{
	feed_bytewise(ENG_V31, ENG_ROLE_CLIENT, vec::client_bound(ENG_V31));
}

TEST(EngStream, BytewiseClientBound311)
{
	feed_bytewise(ENG_V311, ENG_ROLE_CLIENT, vec::client_bound(ENG_V311));
}

TEST(EngStream, BytewiseClientBound5)
{
	feed_bytewise(ENG_V5, ENG_ROLE_CLIENT, vec::client_bound(ENG_V5));
}

// Minimal forms of every version and a packet whose Remaining Length takes 2 and 3 bytes.
TEST(EngStream, BytewiseMinimalAndLong)
{
	feed_bytewise(ENG_V31, ENG_ROLE_SERVER,
		      {vec::connect31_min(), vec::pingreq(), vec::disc_empty()});
	feed_bytewise(ENG_V311, ENG_ROLE_SERVER,
		      {vec::connect311_min(), pkt(0x30, cat({str("t"), Bytes(200, 'x')})),
		       pkt(0x32, cat({str("long/topic"), u16(5), Bytes(17000, 'y')}))});
	feed_bytewise(ENG_V5, ENG_ROLE_SERVER,
		      {vec::connect5_min(), vec::pub5_alias(),
		       pkt(0x30, cat({str("t"), props(p_user(std::string(150, 'k'), "v")),
				      Bytes(300, 'z')}))});
	feed_bytewise(ENG_V5, ENG_ROLE_CLIENT,
		      {vec::connack5_min(), vec::connack5_refused(), vec::disc_empty(),
		       vec::disc5_rc(ENG_RC_SERVER_SHUTTING_DOWN)});
}

TEST(EngStream, RandomChunks)
{
	std::mt19937 rng(12345);
	for (uint8_t v : {ENG_V31, ENG_V311, ENG_V5})
		for (uint8_t role : {ENG_ROLE_SERVER, ENG_ROLE_CLIENT}) {
			std::vector<Bytes> pkts = role == ENG_ROLE_SERVER ? vec::server_bound(v)
									  : vec::client_bound(v);
			// Repeat everything after the CONNECT a few times.
			Bytes all;
			size_t want = 0;
			for (int rep = 0; rep < 5; rep++)
				for (size_t i = 0; i < pkts.size(); i++) {
					if (rep && i == 0 && role == ENG_ROLE_SERVER)
						continue;
					all = cat({all, pkts[i]});
					want++;
				}
			for (size_t maxchunk : {1, 3, 7, 64, 4096})
				EXPECT_EQ(feed_chunks(v, role, all, rng, maxchunk), want)
					<< int(v) << " " << int(role) << " " << maxchunk;
		}
}

// ---- Round trips with random fields ------------------------------------------------------

namespace
{

// Valid MQTT content: strings are well-formed UTF-8 from a mixed alphabet, Topic Names have
// no wildcards, Topic Filters use them only where 4.7.1 allows.
class Gen
{
      public:
	explicit Gen(uint32_t seed) : rng_(seed)
	{
	}

	uint32_t u(uint32_t lo, uint32_t hi)
	{
		return lo + uint32_t(rng_() % (uint64_t(hi) - lo + 1));
	}
	bool coin()
	{
		return rng_() & 1;
	}

	struct eng_str text(size_t maxchars, bool topic = false)
	{
		static const char *alpha[] = {"a",
					      "b",
					      "z",
					      "0",
					      "9",
					      "/",
					      "-",
					      "_",
					      " ",
					      "$",
					      "\xC3\xA9",
					      "\xE2\x82\xAC",
					      "\xF0\x9F\x98\x80",
					      "\xEF\xBB\xBF",
					      "\x7F",
					      "\x01"};
		std::string s;
		size_t n = u(0, uint32_t(maxchars));
		for (size_t i = 0; i < n; i++) {
			const char *c = alpha[u(0, sizeof(alpha) / sizeof(alpha[0]) - 1)];
			if (topic && c[0] == '$' && s.empty())
				c = "x";
			s += c;
		}
		if (topic && s.empty())
			s = "t";
		return keep(s);
	}

	struct eng_str topic()
	{
		return text(12, true);
	}

	struct eng_str filter()
	{
		static const char *f[] = {"#", "+",   "a/+",	"a/#",	"+/+/#",     "a/b/c",
					  "/", "+/x", "$SYS/#", "a//b", "\xC3\xA9/+"};
		if (coin())
			return keep(f[u(0, sizeof(f) / sizeof(f[0]) - 1)]);
		return topic();
	}

	struct eng_str blob(size_t maxlen)
	{
		Bytes b(u(0, uint32_t(maxlen)));
		for (auto &x : b)
			x = uint8_t(rng_());
		bins_.push_back(b);
		return V(bins_.back());
	}

	struct eng_str keep(const std::string &s)
	{
		strs_.push_back(s);
		return V(strs_.back());
	}

	uint32_t vbi_value()
	{
		static const uint32_t edge[] = {1,     127,	128,	 16383,
						16384, 2097151, 2097152, ENG_VBI_MAX};
		return coin() ? edge[u(0, 7)] : u(1, ENG_VBI_MAX);
	}

	uint8_t pick(std::initializer_list<int> l)
	{
		size_t i = u(0, uint32_t(l.size() - 1));
		return uint8_t(*(l.begin() + long(i)));
	}

	// Random properties among those allowed in the place (MQTT 5 Table 2-4), valid values.
	void props(struct eng_props &p, int place, bool sub_ids_ok = true)
	{
		memset(&p, 0, sizeof(p));
		auto maybe = [&](int id) {
			if (u(0, 2) == 0)
				return false;
			p.present |= ENG_PBIT(id);
			return true;
		};
		const int W = ENG_PLACE_WILL;
		if (place == ENG_PUBLISH || place == W) {
			if (maybe(ENG_PROP_PAYLOAD_FORMAT))
				p.payload_format = uint8_t(u(0, 1));
			if (maybe(ENG_PROP_MESSAGE_EXPIRY))
				p.message_expiry = uint32_t(rng_());
			if (maybe(ENG_PROP_CONTENT_TYPE))
				p.content_type = text(10);
			if (maybe(ENG_PROP_RESPONSE_TOPIC))
				p.response_topic = topic();
			if (maybe(ENG_PROP_CORRELATION_DATA))
				p.correlation_data = blob(20);
		}
		if (place == W && maybe(ENG_PROP_WILL_DELAY))
			p.will_delay = uint32_t(rng_());
		if (place == ENG_PUBLISH && maybe(ENG_PROP_TOPIC_ALIAS))
			p.topic_alias = uint16_t(u(1, 0xFFFF));
		if (place == ENG_CONNECT || place == ENG_CONNACK || place == ENG_DISCONNECT) {
			if (maybe(ENG_PROP_SESSION_EXPIRY))
				p.session_expiry = uint32_t(rng_());
		}
		if (place == ENG_CONNECT || place == ENG_CONNACK) {
			if (maybe(ENG_PROP_RECEIVE_MAXIMUM))
				p.receive_maximum = uint16_t(u(1, 0xFFFF));
			if (maybe(ENG_PROP_MAXIMUM_PACKET_SIZE))
				p.maximum_packet_size = u(1, 0xFFFFFFFF);
			if (maybe(ENG_PROP_TOPIC_ALIAS_MAXIMUM))
				p.topic_alias_maximum = uint16_t(u(0, 0xFFFF));
		}
		if (place == ENG_CONNECT) {
			if (maybe(ENG_PROP_REQUEST_PROBLEM_INFO))
				p.request_problem_info = uint8_t(u(0, 1));
			if (maybe(ENG_PROP_REQUEST_RESPONSE_INFO))
				p.request_response_info = uint8_t(u(0, 1));
		}
		if (place == ENG_CONNACK) {
			if (maybe(ENG_PROP_ASSIGNED_CLIENT_ID))
				p.assigned_client_id = text(23);
			if (maybe(ENG_PROP_SERVER_KEEP_ALIVE))
				p.server_keep_alive = uint16_t(u(0, 0xFFFF));
			if (maybe(ENG_PROP_RESPONSE_INFO))
				p.response_info = text(10);
			if (maybe(ENG_PROP_MAXIMUM_QOS))
				p.maximum_qos = uint8_t(u(0, 1));
			if (maybe(ENG_PROP_RETAIN_AVAILABLE))
				p.retain_available = uint8_t(u(0, 1));
			if (maybe(ENG_PROP_WILDCARD_SUB_AVAILABLE))
				p.wildcard_sub_available = uint8_t(u(0, 1));
			if (maybe(ENG_PROP_SUB_ID_AVAILABLE))
				p.sub_id_available = uint8_t(u(0, 1));
			if (maybe(ENG_PROP_SHARED_SUB_AVAILABLE))
				p.shared_sub_available = uint8_t(u(0, 1));
			if (maybe(ENG_PROP_SERVER_REFERENCE))
				p.server_reference = text(10);
		}
		if (place == ENG_CONNECT || place == ENG_CONNACK || place == ENG_AUTH) {
			// An AUTH always names its method (3.15.2.2.2); data only with a method.
			if (place == ENG_AUTH || maybe(ENG_PROP_AUTH_METHOD)) {
				p.present |= ENG_PBIT(ENG_PROP_AUTH_METHOD);
				p.auth_method = text(8);
				if (maybe(ENG_PROP_AUTH_DATA))
					p.auth_data = blob(16);
			}
		}
		if (place != ENG_CONNECT && place != ENG_PUBLISH && place != W &&
		    place != ENG_SUBSCRIBE && place != ENG_UNSUBSCRIBE) {
			if (maybe(ENG_PROP_REASON_STRING))
				p.reason_string = text(16);
		}
		if ((place == ENG_PUBLISH && sub_ids_ok) || place == ENG_SUBSCRIBE) {
			size_t n = place == ENG_SUBSCRIBE ? u(0, 1) : u(0, 3);
			std::vector<uint32_t> ids;
			for (size_t i = 0; i < n; i++)
				ids.push_back(vbi_value());
			ids_.push_back(ids);
			p.sub_id = ids_.back().data();
			p.sub_id_count = uint32_t(n);
			if (n)
				p.present |= ENG_PBIT(ENG_PROP_SUBSCRIPTION_ID);
		}
		size_t nu = u(0, 3);
		std::vector<struct eng_user_prop> ups;
		for (size_t i = 0; i < nu; i++)
			ups.push_back({text(6), text(6)});
		ups_.push_back(ups);
		p.user = ups_.back().data();
		p.user_count = uint32_t(nu);
		if (nu)
			p.present |= ENG_PBIT(ENG_PROP_USER);
	}

	struct eng_packet packet(uint8_t type, uint8_t v)
	{
		bool v5 = v == ENG_V5;
		struct eng_packet p = mk(type);
		switch (type) {
		case ENG_CONNECT: {
			struct eng_connect &c = p.u.connect;
			c.clean_start = coin();
			c.keepalive = uint16_t(u(0, 0xFFFF));
			// 3.1 wants 1..23 characters; keep it ASCII-sized there.
			c.client_id =
				v == ENG_V31 ? keep("c" + std::to_string(u(0, 99999))) : text(20);
			if (v == ENG_V311 && !c.clean_start && c.client_id.len == 0)
				c.client_id = keep("id");
			c.will = coin();
			if (c.will) {
				c.will_qos = uint8_t(u(0, 2));
				c.will_retain = coin();
				c.will_topic = topic();
				c.will_payload = blob(40);
				if (v5)
					props(c.will_props, ENG_PLACE_WILL);
			}
			c.has_username = coin();
			if (c.has_username)
				c.username = text(10);
			c.has_password = (v5 || c.has_username) && coin();
			if (c.has_password)
				c.password = blob(12);
			if (v5)
				props(c.props, ENG_CONNECT);
			break;
		}
		case ENG_CONNACK:
			if (v5) {
				p.u.connack.reason =
					pick({0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86,
					      0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
					      0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F});
				props(p.u.connack.props, ENG_CONNACK);
			} else {
				p.u.connack.reason = uint8_t(u(0, 5));
			}
			// Session Present is 0 with a refusal (MQTT-3.2.2-4 / -6); 3.1 has none.
			p.u.connack.session_present =
				v != ENG_V31 && p.u.connack.reason == 0 && coin();
			break;
		case ENG_PUBLISH: {
			struct eng_publish &pub = p.u.publish;
			pub.qos = uint8_t(u(0, 2));
			pub.dup = pub.qos && coin();
			pub.retain = coin();
			pub.packet_id = pub.qos ? uint16_t(u(1, 0xFFFF)) : 0;
			pub.topic = topic();
			pub.payload = blob(u(0, 9) ? 64 : 20000);
			if (v5) {
				props(pub.props, ENG_PUBLISH);
				if ((pub.props.present & ENG_PBIT(ENG_PROP_TOPIC_ALIAS)) && coin())
					pub.topic = keep("");
			}
			break;
		}
		case ENG_PUBACK:
		case ENG_PUBREC:
		case ENG_PUBREL:
		case ENG_PUBCOMP:
			p.u.ack.packet_id = uint16_t(u(1, 0xFFFF));
			if (v5) {
				if (type == ENG_PUBACK || type == ENG_PUBREC)
					p.u.ack.reason = pick({0x00, 0x10, 0x80, 0x83, 0x87, 0x90,
							       0x91, 0x97, 0x99});
				else
					p.u.ack.reason = pick({0x00, 0x92});
				if (coin())
					props(p.u.ack.props, type);
			}
			break;
		case ENG_SUBSCRIBE:
		case ENG_UNSUBSCRIBE: {
			size_t n = u(1, 5);
			std::vector<struct eng_sub_entry> l;
			for (size_t i = 0; i < n; i++) {
				struct eng_sub_entry e;
				e.filter = filter();
				e.options = uint8_t(u(0, 2));
				if (v5 && type == ENG_SUBSCRIBE) {
					e.options |= uint8_t(u(0, 1) << 2 | u(0, 1) << 3 |
							     u(0, 2) << ENG_SUBOPT_RH_SHIFT);
				}
				l.push_back(e);
			}
			subs_.push_back(l);
			p.u.subscribe.packet_id = uint16_t(u(1, 0xFFFF));
			p.u.subscribe.list = subs_.back().data();
			p.u.subscribe.count = uint32_t(n);
			if (v5)
				props(p.u.subscribe.props, type);
			break;
		}
		case ENG_SUBACK:
		case ENG_UNSUBACK: {
			p.u.suback.packet_id = uint16_t(u(1, 0xFFFF));
			size_t n = u(1, 6);
			Bytes r;
			for (size_t i = 0; i < n; i++) {
				if (type == ENG_UNSUBACK)
					r.push_back(
						pick({0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91}));
				else if (v5)
					r.push_back(pick({0, 1, 2, 0x80, 0x83, 0x87, 0x8F, 0x91,
							  0x97, 0x9E, 0xA1, 0xA2}));
				else if (v == ENG_V311)
					r.push_back(pick({0, 1, 2, 0x80}));
				else
					r.push_back(pick({0, 1, 2}));
			}
			bins_.push_back(r);
			p.u.suback.reasons = bins_.back().data();
			p.u.suback.count = type == ENG_UNSUBACK && !v5 ? 0 : uint32_t(n);
			if (v5)
				props(p.u.suback.props, type);
			break;
		}
		case ENG_DISCONNECT:
			if (v5) {
				p.u.disconnect.reason =
					pick({0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x90, 0x93, 0x94,
					      0x95, 0x96, 0x97, 0x98, 0x99});
				if (coin())
					props(p.u.disconnect.props, ENG_DISCONNECT);
			}
			break;
		case ENG_AUTH:
			p.u.disconnect.reason = pick({0x00, 0x18, 0x19});
			props(p.u.disconnect.props, ENG_AUTH);
			break;
		default:
			break;
		}
		return p;
	}

      private:
	std::mt19937 rng_;
	std::deque<std::string> strs_;
	std::deque<Bytes> bins_;
	std::deque<std::vector<uint32_t>> ids_;
	std::deque<std::vector<struct eng_user_prop>> ups_;
	std::deque<std::vector<struct eng_sub_entry>> subs_;
};

// Who decodes a packet of this type in the round trips: PUBLISH goes to a client (so it may
// carry Subscription Identifiers), DISCONNECT and AUTH to a server.
struct eng_codec_ctx rt_ctx(uint8_t type, uint8_t v)
{
	if (type == ENG_CONNECT)
		return ctx(0, ENG_ROLE_SERVER);
	if (type == ENG_PUBLISH)
		return ctx(v, ENG_ROLE_CLIENT);
	return ctx(v, to_server(type) ? ENG_ROLE_SERVER : ENG_ROLE_CLIENT);
}

void round_trip(const struct eng_packet &p, uint8_t v)
{
	Bytes out = encode(p, v);
	ASSERT_FALSE(out.empty());
	Dec d = decode(rt_ctx(p.type, v), out);
	ASSERT_EQ(d.rc, int(out.size()))
		<< "err " << int(d.err.reason) << " "
		<< (d.rc < 0 && d.rc != -EAGAIN && d.err.what ? d.err.what : "") << "\n"
		<< hex(out);
	EXPECT_EQ(d.pkt.size, out.size());
	expect_packet_eq(d.pkt, p, v);
	// Stable: the decoded packet encodes to the same bytes.
	Forward f(d.pkt);
	EXPECT_BYTES(encode(f.pkt, v), out);
}

} // namespace

TEST(EngRoundTrip, EveryTypeEveryVersion)
{
	Gen g(20240601);
	for (uint8_t v : {ENG_V31, ENG_V311, ENG_V5})
		for (uint8_t type = ENG_CONNECT; type <= ENG_AUTH; type++) {
			if (type == ENG_AUTH && v != ENG_V5)
				continue;
			for (int i = 0; i < 300; i++) {
				SCOPED_TRACE("version " + std::to_string(v) + " type " +
					     std::to_string(type) + " iteration " +
					     std::to_string(i));
				struct eng_packet p = g.packet(type, v);
				round_trip(p, v);
				if (HasFatalFailure() || HasFailure())
					return;
			}
		}
}

// A DISCONNECT from the server: Server Reference, no Session Expiry (3.14.2.2).
TEST(EngRoundTrip, DisconnectFromServer)
{
	Gen g(7);
	for (int i = 0; i < 100; i++) {
		struct eng_packet p = mk(ENG_DISCONNECT);
		p.u.disconnect.reason =
			g.pick({0x00, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x93,
				0x94, 0x95, 0x97, 0x98, 0x9C, 0x9D, 0x9F, 0xA0, 0xA1, 0xA2});
		p.u.disconnect.props.present = ENG_PBIT(ENG_PROP_SERVER_REFERENCE);
		p.u.disconnect.props.server_reference = g.text(20);
		Bytes out = encode(p, ENG_V5);
		Dec d = cli(ENG_V5, out);
		ASSERT_EQ(d.rc, int(out.size()));
		expect_packet_eq(d.pkt, p, ENG_V5);
	}
}

// Remaining Length at each boundary of the variable byte integer, in every version.
TEST(EngRoundTrip, RemainingLengthBoundaries)
{
	for (uint8_t v : {ENG_V31, ENG_V311, ENG_V5})
		for (uint32_t rl : {127u, 128u, 16383u, 16384u, 2097151u, 2097152u})
			for (int qos : {0, 1}) {
				struct eng_packet p = mk(ENG_PUBLISH);
				p.u.publish.qos = uint8_t(qos);
				p.u.publish.packet_id = qos ? 1 : 0;
				p.u.publish.topic = V("a/b");
				uint32_t fixed = 5 + (qos ? 2 : 0) + (v == ENG_V5 ? 1 : 0);
				std::string payload(rl - fixed, 'p');
				p.u.publish.payload = V(payload);
				ASSERT_EQ(eng_encode_size(&p, v), int(1 + eng_vbi_size(rl) + rl));
				round_trip(p, v);
			}
}

// Property blocks whose own length crosses the VBI boundaries.
TEST(EngRoundTrip, PropertyLengthBoundaries)
{
	for (uint32_t plen : {127u, 128u, 16383u, 16384u}) {
		// One Reason String: 1 byte id + 2 length + text.
		std::string text(plen - 3, 'r');
		struct eng_packet p = mk(ENG_PUBACK);
		p.u.ack.packet_id = 3;
		p.u.ack.reason = ENG_RC_NO_MATCHING_SUBSCRIBERS;
		p.u.ack.props.present = ENG_PBIT(ENG_PROP_REASON_STRING);
		p.u.ack.props.reason_string = V(text);
		Bytes out = encode(p, ENG_V5);
		ASSERT_EQ(out.size(), 1 + eng_vbi_size(3 + eng_vbi_size(plen) + plen) + 3 +
					      eng_vbi_size(plen) + plen);
		round_trip(p, ENG_V5);
	}
}

// Strings of the largest length a two-byte prefix allows (1.5.4: 65,535 bytes).
TEST(EngRoundTrip, LongestStrings)
{
	std::string t(65535, 't');
	struct eng_packet p = mk(ENG_PUBLISH);
	p.u.publish.topic = V(t);
	p.u.publish.payload = V("x");
	round_trip(p, ENG_V311);
	round_trip(p, ENG_V5);
}

// Many random packets back to back, decoded from random chunks.
TEST(EngRoundTrip, RandomStreams)
{
	Gen g(99);
	std::mt19937 rng(5);
	for (uint8_t v : {ENG_V31, ENG_V311, ENG_V5}) {
		Bytes all;
		size_t n = 0;
		for (int i = 0; i < 400; i++) {
			uint8_t type;
			do {
				type = uint8_t(g.u(ENG_PUBLISH, ENG_AUTH));
			} while ((type == ENG_AUTH && v != ENG_V5) || !to_server(type) ||
				 type == ENG_DISCONNECT);
			struct eng_packet p = g.packet(type, v);
			if (type == ENG_PUBLISH) // server-bound: no Subscription Identifiers
				g.props(p.u.publish.props, ENG_PUBLISH, false);
			if (type == ENG_PUBLISH && v != ENG_V5)
				memset(&p.u.publish.props, 0, sizeof(p.u.publish.props));
			if (type == ENG_PUBLISH && p.u.publish.topic.len == 0)
				p.u.publish.topic = V("t");
			all = cat({all, encode(p, v)});
			n++;
		}
		struct eng_packet c = g.packet(ENG_CONNECT, v);
		Bytes stream = cat({encode(c, v), all});
		EXPECT_EQ(feed_chunks(v, ENG_ROLE_SERVER, stream, rng, 1000), n + 1);
	}
}

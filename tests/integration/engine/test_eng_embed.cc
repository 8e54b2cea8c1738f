// SPDX-License-Identifier: MIT
//
// The embedding API end to end: a host program (this test) creates libtachyon on an ephemeral
// loopback port, subscribes itself with callbacks, publishes, registers authentication,
// authorisation, intercept hooks and an enhanced authentication method, and talks to it with
// raw MQTT clients over real sockets (packets built and parsed with the engine's codec in the
// client role). Every wait is bounded.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "eng_codec.h"
#include "eng_config.h"
#include "tachyon.h"

namespace
{

using Bytes = std::vector<uint8_t>;

eng_str S(const std::string &s)
{
	return eng_str{reinterpret_cast<const uint8_t *>(s.data()),
		       static_cast<uint32_t>(s.size())};
}

std::string str(const eng_str &s)
{
	return std::string(reinterpret_cast<const char *>(s.p), s.len);
}

std::string str(const tachyon_str &s)
{
	return std::string(s.p, s.len);
}

// A raw MQTT client: whole packets in and out through the engine's codec.
class Client
{
      public:
	explicit Client(uint16_t port, uint8_t version = ENG_V5) : ver_(version)
	{
		fd_ = socket(AF_INET, SOCK_STREAM, 0);
		sockaddr_in a{};
		a.sin_family = AF_INET;
		a.sin_port = htons(port);
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ok_ = fd_ >= 0 && connect(fd_, reinterpret_cast<sockaddr *>(&a), sizeof(a)) == 0;
		int one = 1;
		if (ok_)
			setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	~Client()
	{
		if (fd_ >= 0)
			close(fd_);
	}
	bool ok() const
	{
		return ok_;
	}

	void send(const eng_packet &pkt)
	{
		int n = eng_encode_size(&pkt, ver_);
		ASSERT_GT(n, 0);
		Bytes b(static_cast<size_t>(n));
		ASSERT_EQ(eng_encode(&pkt, ver_, b.data(), b.size()), n);
		ASSERT_EQ(::send(fd_, b.data(), b.size(), MSG_NOSIGNAL), static_cast<ssize_t>(n));
	}

	// Next packet within timeout_ms: true with *pkt (views into this client, valid until the
	// next read); false on timeout or close (closed() tells).
	bool read(eng_packet *pkt, int timeout_ms = 5000)
	{
		auto deadline =
			std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
		for (;;) {
			if (!buf_.empty()) {
				eng_codec_ctx ctx{ver_, ENG_ROLE_CLIENT, 0};
				eng_decode_err err{};
				cur_ = buf_;
				int rc = eng_decode(&ctx, cur_.data(), cur_.size(), pkt, &err);
				if (rc > 0) {
					buf_.erase(buf_.begin(), buf_.begin() + rc);
					return true;
				}
				if (rc != -EAGAIN) {
					std::string hex;
					for (size_t i = 0; i < cur_.size() && i < 64; i++) {
						char h[4];
						snprintf(h, sizeof(h), "%02x ", cur_[i]);
						hex += h;
					}
					ADD_FAILURE()
						<< "undecodable packet from the broker: " << rc
						<< " (" << (err.what ? err.what : "")
						<< "): " << hex;
					return false;
				}
			}
			auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
				deadline - std::chrono::steady_clock::now());
			if (left.count() <= 0 || closed_)
				return false;
			pollfd p{fd_, POLLIN, 0};
			if (poll(&p, 1, static_cast<int>(left.count())) <= 0)
				return false;
			uint8_t tmp[65536];
			ssize_t n = recv(fd_, tmp, sizeof(tmp), 0);
			if (n <= 0) {
				closed_ = true;
				return false;
			}
			buf_.insert(buf_.end(), tmp, tmp + n);
		}
	}

	// Reads until the broker closes (true) or timeout_ms passes (false).
	bool closed(int timeout_ms = 5000)
	{
		eng_packet p;
		auto deadline =
			std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
		while (!closed_ && std::chrono::steady_clock::now() < deadline)
			read(&p, 100);
		return closed_;
	}

	// CONNECT; returns the CONNACK reason (-1: no CONNACK).
	int connect_and_ack(const std::string &id, const char *user = nullptr,
			    const char *password = nullptr)
	{
		send_connect(id, user, password);
		eng_packet p;
		if (!read(&p) || p.type != ENG_CONNACK)
			return -1;
		return p.u.connack.reason;
	}

	void send_connect(const std::string &id, const char *user = nullptr,
			  const char *password = nullptr, const eng_props *props = nullptr)
	{
		eng_packet p{};
		p.type = ENG_CONNECT;
		id_ = id;
		p.u.connect.version = ver_;
		p.u.connect.clean_start = true;
		p.u.connect.keepalive = 60;
		p.u.connect.client_id = S(id_);
		if (user) {
			user_ = user;
			p.u.connect.has_username = true;
			p.u.connect.username = S(user_);
		}
		if (password) {
			pass_ = password;
			p.u.connect.has_password = true;
			p.u.connect.password = S(pass_);
		}
		if (props)
			p.u.connect.props = *props;
		send(p);
	}

	// CONNECT with enhanced authentication properties; returns the type of the answer.
	int connect_auth(const std::string &id, const eng_props &props)
	{
		send_connect(id, nullptr, nullptr, &props);
		eng_packet p;
		return read(&p) ? p.type : -1;
	}

	// SUBSCRIBE one filter; returns the SUBACK's reason (-1: none).
	int subscribe(const std::string &filter, uint8_t qos, uint16_t pid = 1)
	{
		eng_sub_entry e{S(filter), qos};
		eng_packet p{};
		p.type = ENG_SUBSCRIBE;
		p.u.subscribe.packet_id = pid;
		p.u.subscribe.count = 1;
		p.u.subscribe.list = &e;
		send(p);
		eng_packet a;
		if (!read(&a) || a.type != ENG_SUBACK || a.u.suback.count != 1)
			return -1;
		return a.u.suback.reasons[0];
	}

	void publish(const std::string &topic, const std::string &payload, uint8_t qos,
		     uint16_t pid = 1)
	{
		eng_packet p{};
		p.type = ENG_PUBLISH;
		p.u.publish.qos = qos;
		p.u.publish.packet_id = qos ? pid : 0;
		p.u.publish.topic = S(topic);
		p.u.publish.payload = S(payload);
		send(p);
	}

	uint8_t ver_;
	int fd_ = -1;
	bool ok_ = false;
	bool closed_ = false;
	Bytes buf_, cur_;
	std::string id_, user_, pass_;
};

// The engine on an ephemeral loopback port, tachyon_run() on its own thread.
class Engine
{
      public:
	explicit Engine(const std::function<void(eng_config &)> &tune = nullptr)
	{
		eng_config cfg;
		eng_config_defaults(&cfg);
		snprintf(cfg.bind, sizeof(cfg.bind), "127.0.0.1");
		cfg.port = 0;
		cfg.workers = 2;
		cfg.sys_interval = 0;
		cfg.log_level = ENG_LOG_WARNING;
		if (tune)
			tune(cfg);
		char err[512] = "";
		t = tachyon_create(&cfg, err, sizeof(err));
		EXPECT_NE(t, nullptr) << err;
	}
	void start()
	{
		ASSERT_EQ(tachyon_start(t), 0);
		running_ = true;
		th_ = std::thread([this] { rc_ = tachyon_run(t); });
	}
	uint16_t port() const
	{
		return tachyon_port(t);
	}
	~Engine()
	{
		if (running_) {
			tachyon_stop(t);
			th_.join();
			EXPECT_EQ(rc_, 0);
		}
		tachyon_destroy(t);
	}
	tachyon *t = nullptr;

      private:
	std::thread th_;
	bool running_ = false;
	int rc_ = -1;
};

// What a host callback saw, with waits.
struct Inbox {
	struct Msg {
		std::string topic, payload, content_type;
		std::vector<std::pair<std::string, std::string>> user;
		uint8_t qos;
		bool retain;
		std::thread::id thread;
	};
	std::mutex mu;
	std::condition_variable cv;
	std::vector<Msg> got;

	static void cb(void *ctx, const tachyon_message *m)
	{
		auto *in = static_cast<Inbox *>(ctx);
		Msg x{str(m->topic), str(m->payload), str(m->content_type),	 {},
		      m->qos,	     m->retain,	      std::this_thread::get_id()};
		size_t cur = 0;
		tachyon_str k, v;
		while (tachyon_message_user_prop(m, &cur, &k, &v))
			x.user.emplace_back(str(k), str(v));
		std::lock_guard<std::mutex> g(in->mu);
		in->got.push_back(x);
		in->cv.notify_all();
	}

	bool wait(size_t n, int ms = 5000)
	{
		std::unique_lock<std::mutex> g(mu);
		return cv.wait_for(g, std::chrono::milliseconds(ms),
				   [&] { return got.size() >= n; });
	}
};

std::string payload_of(const eng_packet &p)
{
	return str(p.u.publish.payload);
}

} // namespace

// ------------------------------------------------------------------------------------------------
// Host publish and subscribe.

TEST(EngEmbed, HostSubscribesAndPublishesWithRealClients)
{
	Engine eng;
	Inbox in;
	ASSERT_EQ(tachyon_subscribe(eng.t, "dev/+/temp", 0, Inbox::cb, &in), 0);
	ASSERT_EQ(tachyon_subscribe(eng.t, "$share/g/x", 0, Inbox::cb, &in), -EINVAL);
	ASSERT_EQ(tachyon_subscribe(eng.t, "a/#/b", 0, Inbox::cb, &in), -EINVAL);
	eng.start();

	// clients on both workers: one publishes to the host, one receives the host's messages
	Client sub(eng.port()), pub(eng.port());
	ASSERT_TRUE(sub.ok() && pub.ok());
	ASSERT_EQ(sub.connect_and_ack("sub"), 0);
	ASSERT_EQ(pub.connect_and_ack("pub"), 0);
	ASSERT_EQ(sub.subscribe("cmd/#", 1), 1);

	pub.publish("dev/kitchen/temp", "21.5", 1, 7);
	eng_packet p;
	ASSERT_TRUE(pub.read(&p));
	EXPECT_EQ(p.type, ENG_PUBACK);
	EXPECT_EQ(p.u.ack.reason, ENG_RC_SUCCESS); // the host is a matching subscriber
	pub.publish("dev/kitchen/humidity", "40", 0);
	pub.publish("dev/hall/temp", "19", 0);
	ASSERT_TRUE(in.wait(2));
	{
		std::lock_guard<std::mutex> g(in.mu);
		ASSERT_EQ(in.got.size(), 2u);
		EXPECT_EQ(in.got[0].topic, "dev/kitchen/temp");
		EXPECT_EQ(in.got[0].payload, "21.5");
		EXPECT_EQ(in.got[0].qos, 1);
		EXPECT_EQ(in.got[1].topic, "dev/hall/temp");
		EXPECT_NE(in.got[0].thread, std::this_thread::get_id());
	}

	tachyon_user_prop up[2] = {{"origin", "host"}, {"k", "v"}};
	tachyon_pub_props pp{};
	pp.content_type = "text/plain";
	pp.user = up;
	pp.user_count = 2;
	ASSERT_EQ(tachyon_publish(eng.t, "cmd/light", "on", 2, 1, false, &pp), 0);
	ASSERT_TRUE(sub.read(&p));
	ASSERT_EQ(p.type, ENG_PUBLISH);
	EXPECT_EQ(str(p.u.publish.topic), "cmd/light");
	EXPECT_EQ(payload_of(p), "on");
	EXPECT_EQ(p.u.publish.qos, 1);
	EXPECT_EQ(str(p.u.publish.props.content_type), "text/plain");
	EXPECT_EQ(p.u.publish.props.user_count, 2u);

	// the host receives its own publishes too, with the properties
	ASSERT_EQ(tachyon_subscribe(eng.t, "cmd/#", 0, Inbox::cb, &in), 0);
	// applied asynchronously: republish until the host sees one (bounded)
	bool seen = false;
	for (int i = 0; i < 100 && !seen; i++) {
		ASSERT_EQ(tachyon_publish(eng.t, "cmd/fan", "1", 1, 0, false, &pp), 0);
		seen = in.wait(3, 50);
	}
	ASSERT_TRUE(seen);
	{
		std::lock_guard<std::mutex> g(in.mu);
		EXPECT_EQ(in.got[2].topic, "cmd/fan");
		EXPECT_EQ(in.got[2].content_type, "text/plain");
		ASSERT_EQ(in.got[2].user.size(), 2u);
		EXPECT_EQ(in.got[2].user[0].first, "origin");
		EXPECT_EQ(in.got[2].user[0].second, "host");
		EXPECT_EQ(in.got[2].user[1].first, "k");
	}

	// retained from the host reaches a later subscriber; bad input is refused
	ASSERT_EQ(tachyon_publish(eng.t, "state/mode", "auto", 4, 1, true, nullptr), 0);
	EXPECT_EQ(tachyon_publish(eng.t, "state/+", "x", 1, 0, false, nullptr), -EINVAL);
	EXPECT_EQ(tachyon_publish(eng.t, "state/x", "x", 1, 3, false, nullptr), -EINVAL);
	EXPECT_EQ(tachyon_publish(eng.t, "", "x", 1, 0, false, nullptr), -EINVAL);
	Client late(eng.port());
	ASSERT_EQ(late.connect_and_ack("late"), 0);
	bool got = false;
	for (int i = 0; i < 50 && !got; i++) { // the retained store is updated asynchronously
		ASSERT_EQ(late.subscribe("state/#", 1, static_cast<uint16_t>(i + 1)), 1);
		got = late.read(&p, 100) && p.type == ENG_PUBLISH;
	}
	ASSERT_TRUE(got);
	EXPECT_TRUE(p.u.publish.retain);
	EXPECT_EQ(payload_of(p), "auto");

	// unsubscribed: the host no longer gets dev/+/temp
	ASSERT_EQ(tachyon_unsubscribe(eng.t, "dev/+/temp"), 0);
	bool gone = false;
	for (int i = 0; i < 100 && !gone; i++) {
		pub.publish("dev/x/temp", "1", 1, static_cast<uint16_t>(100 + i));
		ASSERT_TRUE(pub.read(&p));
		gone = p.u.ack.reason == ENG_RC_NO_MATCHING_SUBSCRIBERS;
		if (!gone)
			std::this_thread::sleep_for(std::chrono::milliseconds(20));
	}
	EXPECT_TRUE(gone);
}

TEST(EngEmbed, HostQueueIsBounded)
{
	// before tachyon_run() nothing drains the queue: it fills up and then says -EAGAIN
	Engine eng;
	int rc = 0;
	unsigned accepted = 0;
	for (unsigned i = 0; i < 70000 && rc == 0; i++) {
		rc = tachyon_publish(eng.t, "q/t", "x", 1, 0, false, nullptr);
		if (rc == 0)
			accepted++;
	}
	EXPECT_EQ(rc, -EAGAIN);
	EXPECT_EQ(accepted, 65536u);
	// draining makes room again
	eng.start();
	bool ok = false;
	for (int i = 0; i < 200 && !ok; i++) {
		ok = tachyon_publish(eng.t, "q/t", "x", 1, 0, false, nullptr) == 0;
		if (!ok)
			std::this_thread::sleep_for(std::chrono::milliseconds(10));
	}
	EXPECT_TRUE(ok);
}

TEST(EngEmbed, HostPublishersOnManyThreadsLoseNothingAndKeepOrder)
{
	// oracle: every message of every thread reaches the host subscription exactly once, in
	// each thread's order (the queue is multi-producer; -EAGAIN is retried, bounded)
	constexpr unsigned kThreads = 4, kEach = 40000; // 160000: over two laps of the ring
	Engine eng;
	Inbox in;
	ASSERT_EQ(tachyon_subscribe(eng.t, "mt/#", 0, Inbox::cb, &in), 0);
	eng.start();
	std::atomic<unsigned> again{0};
	std::vector<std::thread> th;
	for (unsigned t = 0; t < kThreads; t++) {
		th.emplace_back([&, t] {
			std::string topic = "mt/" + std::to_string(t);
			for (unsigned i = 0; i < kEach; i++) {
				std::string pl = std::to_string(i);
				int rc;
				for (int k = 0; k < 10000; k++) {
					rc = tachyon_publish(eng.t, topic.c_str(), pl.data(),
							     pl.size(), i % 3, false, nullptr);
					if (rc != -EAGAIN)
						break;
					again++;
					std::this_thread::sleep_for(std::chrono::microseconds(100));
				}
				ASSERT_EQ(rc, 0);
			}
		});
	}
	for (auto &x : th)
		x.join();
	ASSERT_TRUE(in.wait(kThreads * kEach, 20000));
	std::lock_guard<std::mutex> g(in.mu);
	EXPECT_EQ(in.got.size(), kThreads * kEach);
	std::vector<unsigned> next(kThreads, 0);
	for (const auto &m : in.got) {
		unsigned t = static_cast<unsigned>(std::stoul(m.topic.substr(3)));
		ASSERT_LT(t, kThreads);
		ASSERT_EQ(m.payload, std::to_string(next[t])) << "thread " << t;
		EXPECT_EQ(m.qos, next[t] % 3);
		next[t]++;
	}
	for (unsigned t = 0; t < kThreads; t++)
		EXPECT_EQ(next[t], kEach);
	RecordProperty("eagain_retries", static_cast<int>(again.load()));
}

// ------------------------------------------------------------------------------------------------
// Hooks.

namespace
{

int deny_bad_user(void *, const tachyon_auth_req *r, uint8_t *reason)
{
	if (r->username.p && str(r->username) == "mallory") {
		*reason = 0x8A; // banned
		return TACHYON_DENY;
	}
	if (r->username.p && str(r->username) == "trusted")
		return TACHYON_ALLOW;
	return TACHYON_DEFER;
}

int acl(void *, const tachyon_acl_req *r)
{
	std::string t = str(r->topic);
	if (r->op == TACHYON_ACL_PUBLISH && t.rfind("deny/", 0) == 0)
		return TACHYON_DENY;
	if (r->op == TACHYON_ACL_SUBSCRIBE && t.rfind("secret/", 0) == 0)
		return TACHYON_DENY;
	return TACHYON_DEFER;
}

std::atomic<unsigned> intercepted{0};

int intercept(void *, const tachyon_message *m)
{
	intercepted++;
	return str(m->topic).rfind("drop/", 0) == 0 && std::string(m->client_id) == "pub"
		       ? TACHYON_DROP
		       : TACHYON_PASS;
}

} // namespace

TEST(EngEmbed, AuthAclAndInterceptHooks)
{
	Engine eng([](eng_config &c) { c.allow_anonymous = false; });
	EXPECT_EQ(tachyon_add_auth_hook(eng.t, deny_bad_user, nullptr), 0);
	EXPECT_EQ(tachyon_add_acl_hook(eng.t, acl, nullptr), 0);
	EXPECT_EQ(tachyon_add_intercept_hook(eng.t, intercept, nullptr), 0);
	eng.start();
	EXPECT_EQ(tachyon_add_acl_hook(eng.t, acl, nullptr), -EBUSY);

	Client banned(eng.port()), banned3(eng.port(), ENG_V311), anon(eng.port());
	EXPECT_EQ(banned.connect_and_ack("m1", "mallory", "x"), 0x8A);
	EXPECT_EQ(banned3.connect_and_ack("m2", "mallory", "x"), ENG_V3_NOT_AUTHORIZED);
	EXPECT_EQ(anon.connect_and_ack("anon"), ENG_RC_NOT_AUTHORIZED); // deferred: built-in rule

	Client sub(eng.port()), pub(eng.port());
	ASSERT_EQ(sub.connect_and_ack("sub", "trusted"), 0);
	ASSERT_EQ(pub.connect_and_ack("pub", "trusted"), 0);
	EXPECT_EQ(sub.subscribe("secret/#", 1, 1), ENG_RC_NOT_AUTHORIZED);
	EXPECT_EQ(sub.subscribe("#", 1, 2), 1);

	eng_packet p;
	pub.publish("deny/x", "no", 1, 1);
	ASSERT_TRUE(pub.read(&p));
	EXPECT_EQ(p.type, ENG_PUBACK);
	EXPECT_EQ(p.u.ack.reason, ENG_RC_NOT_AUTHORIZED);

	unsigned before = intercepted.load();
	pub.publish("drop/x", "dropped", 1, 2);
	ASSERT_TRUE(pub.read(&p));
	EXPECT_EQ(p.type, ENG_PUBACK);
	EXPECT_EQ(p.u.ack.reason, ENG_RC_SUCCESS); // acknowledged although dropped
	pub.publish("drop/y", "dropped too", 2, 3);
	ASSERT_TRUE(pub.read(&p));
	EXPECT_EQ(p.type, ENG_PUBREC);
	EXPECT_EQ(p.u.ack.reason, ENG_RC_SUCCESS);
	eng_packet rel{};
	rel.type = ENG_PUBREL;
	rel.u.ack.packet_id = 3;
	pub.send(rel);
	ASSERT_TRUE(pub.read(&p));
	EXPECT_EQ(p.type, ENG_PUBCOMP);
	EXPECT_EQ(p.u.ack.reason, ENG_RC_SUCCESS); // the id was recorded as for any QoS 2
	pub.publish("keep/x", "kept", 1, 4);
	ASSERT_TRUE(pub.read(&p));
	EXPECT_EQ(p.u.ack.reason, ENG_RC_SUCCESS);
	EXPECT_EQ(intercepted.load() - before, 3u);

	// the subscriber gets only keep/x (deny/x refused, drop/* dropped)
	ASSERT_TRUE(sub.read(&p));
	ASSERT_EQ(p.type, ENG_PUBLISH);
	EXPECT_EQ(str(p.u.publish.topic), "keep/x");
	EXPECT_FALSE(sub.read(&p, 300));
}

// ------------------------------------------------------------------------------------------------
// Authentication off the control thread.

namespace
{

struct Gate {
	std::mutex mu;
	std::condition_variable cv;
	bool entered = false, open = false;
};

Gate gate;

int slow_auth(void *, const tachyon_auth_req *r, uint8_t *)
{
	if (!r->username.p || str(r->username) != "slow")
		return TACHYON_DEFER;
	std::unique_lock<std::mutex> g(gate.mu);
	gate.entered = true;
	gate.cv.notify_all();
	// bounded: the test opens the gate; never wait forever if it fails first
	gate.cv.wait_for(g, std::chrono::seconds(10), [] { return gate.open; });
	return TACHYON_ALLOW;
}

} // namespace

TEST(EngEmbed, SlowAuthenticationDoesNotHoldUpOtherConnects)
{
	// two auth threads: with a hook every CONNECT goes to them, and one is kept busy
	Engine eng([](eng_config &c) { c.auth_threads = 2; });
	ASSERT_EQ(tachyon_add_auth_hook(eng.t, slow_auth, nullptr), 0);
	eng.start();

	Client a(eng.port());
	a.send_connect("a", "slow", "pw");
	{
		std::unique_lock<std::mutex> g(gate.mu);
		ASSERT_TRUE(
			gate.cv.wait_for(g, std::chrono::seconds(5), [] { return gate.entered; }));
	}
	// A's check is running (and blocked): B, anonymous, and C, a SUBSCRIBE of an already
	// connected client, must still get their answers
	Client b(eng.port()), c(eng.port());
	EXPECT_EQ(b.connect_and_ack("b"), 0);
	EXPECT_EQ(b.subscribe("x/#", 0), 0);
	eng_packet p;
	EXPECT_FALSE(a.read(&p, 100)); // A is still waiting
	{
		std::lock_guard<std::mutex> g(gate.mu);
		gate.open = true;
		gate.cv.notify_all();
	}
	ASSERT_TRUE(a.read(&p));
	EXPECT_EQ(p.type, ENG_CONNACK);
	EXPECT_EQ(p.u.connack.reason, 0);
}

// ------------------------------------------------------------------------------------------------
// Enhanced authentication: a two-step challenge / response method.

namespace
{

std::atomic<unsigned> method_steps{0};

int challenge(void *ctx, tachyon_auth_step *s)
{
	EXPECT_EQ(ctx, &method_steps);
	EXPECT_STREQ(s->method, "TEST-CR");
	method_steps++;
	std::string d = str(s->data);
	if (s->step == 0) {
		if (d != "hello")
			return TACHYON_AUTH_FAIL;
		memcpy(s->state, "N42", 3); // kept for the next step
		memcpy(s->out, "challenge", 9);
		s->out_len = 9;
		return TACHYON_AUTH_CONTINUE;
	}
	if (s->step == 1 && memcmp(s->state, "N42", 3) == 0 && d == "response-N42") {
		memcpy(s->out, s->reauth ? "again" : "welcome", s->reauth ? 5 : 7);
		s->out_len = s->reauth ? 5 : 7;
		return TACHYON_AUTH_SUCCESS;
	}
	s->reason = 0x86;
	return TACHYON_AUTH_FAIL;
}

eng_packet auth_pkt(uint8_t reason, const std::string &method, const std::string &data)
{
	static std::string m, d;
	m = method;
	d = data;
	eng_packet p{};
	p.type = ENG_AUTH;
	p.u.disconnect.reason = reason;
	p.u.disconnect.props.present =
		ENG_PBIT(ENG_PROP_AUTH_METHOD) | ENG_PBIT(ENG_PROP_AUTH_DATA);
	p.u.disconnect.props.auth_method = S(m);
	p.u.disconnect.props.auth_data = S(d);
	return p;
}

eng_props auth_props(const std::string &method, const std::string &data)
{
	static std::string m, d;
	m = method;
	d = data;
	eng_props pr{};
	pr.present = ENG_PBIT(ENG_PROP_AUTH_METHOD) | ENG_PBIT(ENG_PROP_AUTH_DATA);
	pr.auth_method = S(m);
	pr.auth_data = S(d);
	return pr;
}

} // namespace

TEST(EngEmbed, EnhancedAuthChallengeResponseAndReauth)
{
	Engine eng;
	ASSERT_EQ(tachyon_add_auth_method(eng.t, "TEST-CR", challenge, &method_steps), 0);
	EXPECT_EQ(tachyon_add_auth_method(eng.t, "TEST-CR", challenge, nullptr), -EEXIST);
	eng.start();
	eng_packet p;

	// two steps: CONNECT(hello) -> AUTH 0x18(challenge) -> AUTH 0x18(response) -> CONNACK
	Client c(eng.port());
	eng_props pr = auth_props("TEST-CR", "hello");
	c.send_connect("cr", nullptr, nullptr, &pr);
	ASSERT_TRUE(c.read(&p));
	ASSERT_EQ(p.type, ENG_AUTH);
	EXPECT_EQ(p.u.disconnect.reason, ENG_RC_CONTINUE_AUTH);
	EXPECT_EQ(str(p.u.disconnect.props.auth_method), "TEST-CR");
	EXPECT_EQ(str(p.u.disconnect.props.auth_data), "challenge");
	c.send(auth_pkt(ENG_RC_CONTINUE_AUTH, "TEST-CR", "response-N42"));
	ASSERT_TRUE(c.read(&p));
	ASSERT_EQ(p.type, ENG_CONNACK);
	EXPECT_EQ(p.u.connack.reason, 0);
	EXPECT_EQ(str(p.u.connack.props.auth_method), "TEST-CR");
	EXPECT_EQ(str(p.u.connack.props.auth_data), "welcome");
	EXPECT_EQ(c.subscribe("a/b", 0), 0); // a normal session now

	// re-authentication on the live connection: AUTH 0x19 ... AUTH 0x00
	c.send(auth_pkt(ENG_RC_REAUTHENTICATE, "TEST-CR", "hello"));
	ASSERT_TRUE(c.read(&p));
	ASSERT_EQ(p.type, ENG_AUTH);
	EXPECT_EQ(p.u.disconnect.reason, ENG_RC_CONTINUE_AUTH);
	c.send(auth_pkt(ENG_RC_CONTINUE_AUTH, "TEST-CR", "response-N42"));
	ASSERT_TRUE(c.read(&p));
	ASSERT_EQ(p.type, ENG_AUTH);
	EXPECT_EQ(p.u.disconnect.reason, ENG_RC_SUCCESS);
	EXPECT_EQ(str(p.u.disconnect.props.auth_data), "again");

	// a failed re-authentication: DISCONNECT with the method's reason
	c.send(auth_pkt(ENG_RC_REAUTHENTICATE, "TEST-CR", "hello"));
	ASSERT_TRUE(c.read(&p));
	c.send(auth_pkt(ENG_RC_CONTINUE_AUTH, "TEST-CR", "wrong"));
	ASSERT_TRUE(c.read(&p));
	EXPECT_EQ(p.type, ENG_DISCONNECT);
	EXPECT_EQ(p.u.disconnect.reason, ENG_RC_NOT_AUTHORIZED); // DISCONNECT has no 0x86
	EXPECT_TRUE(c.closed());

	// wrong response: CONNACK with the method's reason
	Client bad(eng.port());
	ASSERT_EQ(bad.connect_auth("bad", pr), ENG_AUTH);
	bad.send(auth_pkt(ENG_RC_CONTINUE_AUTH, "TEST-CR", "guess"));
	ASSERT_TRUE(bad.read(&p));
	ASSERT_EQ(p.type, ENG_CONNACK);
	EXPECT_EQ(p.u.connack.reason, 0x86);

	// a method nobody registered: 0x8C
	Client unknown(eng.port());
	unknown.send_connect("u", nullptr, nullptr, &(pr = auth_props("SCRAM-SHA-1", "x")));
	ASSERT_TRUE(unknown.read(&p));
	ASSERT_EQ(p.type, ENG_CONNACK);
	EXPECT_EQ(p.u.connack.reason, ENG_RC_BAD_AUTH_METHOD);

	pr = auth_props("TEST-CR", "hello");
	// protocol errors: another method in AUTH, a PUBLISH before the exchange ended, AUTH
	// without a method at CONNECT
	Client other(eng.port());
	ASSERT_EQ(other.connect_auth("o", pr), ENG_AUTH);
	other.send(auth_pkt(ENG_RC_CONTINUE_AUTH, "OTHER", "response-N42"));
	ASSERT_TRUE(other.read(&p));
	EXPECT_EQ(p.type, ENG_CONNACK);
	EXPECT_EQ(p.u.connack.reason, ENG_RC_PROTOCOL_ERROR);
	EXPECT_TRUE(other.closed());
	Client early(eng.port());
	ASSERT_EQ(early.connect_auth("e", pr), ENG_AUTH);
	early.publish("a/b", "too early", 0);
	ASSERT_TRUE(early.read(&p));
	EXPECT_EQ(p.type, ENG_CONNACK);
	EXPECT_EQ(p.u.connack.reason, ENG_RC_PROTOCOL_ERROR);
	EXPECT_TRUE(early.closed());
	Client plain(eng.port());
	ASSERT_EQ(plain.connect_and_ack("plain"), 0);
	plain.send(auth_pkt(ENG_RC_REAUTHENTICATE, "TEST-CR", "hello"));
	ASSERT_TRUE(plain.read(&p));
	EXPECT_EQ(p.type, ENG_DISCONNECT);
	EXPECT_EQ(p.u.disconnect.reason, ENG_RC_PROTOCOL_ERROR);
	// a client that goes away in the middle of the exchange
	{
		Client gone(eng.port());
		ASSERT_EQ(gone.connect_auth("g", pr), ENG_AUTH);
	}
	// AUTH is not a packet of MQTT 3.1.1: malformed, the connection is closed
	Client v3(eng.port(), ENG_V311);
	ASSERT_EQ(v3.connect_and_ack("v3"), 0);
	const uint8_t auth3[] = {0xF0, 0x00};
	ASSERT_EQ(::send(v3.fd_, auth3, sizeof(auth3), MSG_NOSIGNAL), 2);
	EXPECT_TRUE(v3.closed());
	// and the broker still serves
	Client after(eng.port());
	EXPECT_EQ(after.connect_and_ack("after"), 0);
}

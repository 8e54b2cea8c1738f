// SPDX-License-Identifier: MIT
// The kernel-socket backend against real loopback sockets: accept, zero-copy receive, send
// and flush, back-pressure with WRITABLE, graceful and abortive close, paused receive, wake,
// and several workers sharing one port through SO_REUSEPORT.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "ns.h"

namespace {

struct Server {
	ns_transport *t = nullptr;
	explicit Server(unsigned workers = 1, uint32_t tx_limit = 1 << 20)
	{
		ns_config cfg;
		ns_config_defaults(&cfg);
		cfg.port = 0;
		cfg.workers = workers;
		cfg.tx_limit = tx_limit;
		char err[256];
		t = ns_create(&cfg, err, sizeof(err));
		EXPECT_NE(t, nullptr) << err;
	}
	~Server() { ns_destroy(t); }
	ns_worker *w(unsigned i = 0) { return ns_worker_get(t, i); }
};

int connect_to(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	sockaddr_in a{};
	a.sin_family = AF_INET;
	a.sin_port = htons(port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a)), 0);
	return fd;
}

// Polls until pred() holds for one of the events, for at most 5 s; returns that event.
template <class Pred>
ns_event wait_for(ns_worker *w, Pred pred, std::vector<ns_event> *seen = nullptr)
{
	ns_event ev[64];
	auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
	while (std::chrono::steady_clock::now() < end) {
		unsigned n = ns_poll(w, ev, 64, 10);
		for (unsigned i = 0; i < n; i++) {
			if (seen)
				seen->push_back(ev[i]);
			if (pred(ev[i]))
				return ev[i];
		}
		ns_flush(w);
	}
	ADD_FAILURE() << "event did not come";
	return ns_event{};
}

std::string read_all(int fd, size_t want)
{
	std::string out;
	char buf[65536];
	while (out.size() < want) {
		pollfd p{fd, POLLIN, 0};
		if (poll(&p, 1, 5000) <= 0)
			break;
		ssize_t r = recv(fd, buf, sizeof(buf), 0);
		if (r <= 0)
			break;
		out.append(buf, static_cast<size_t>(r));
	}
	return out;
}

} // namespace

TEST(NsKernel, AcceptReceiveEcho)
{
	Server s;
	int fd = connect_to(ns_port(s.t));
	ns_event acc = wait_for(s.w(), [](const ns_event &e) { return e.type == NS_EV_ACCEPT; });
	ASSERT_NE(acc.conn, nullptr);
	EXPECT_NE(std::string(ns_conn_peer(acc.conn)).find("127.0.0.1:"), std::string::npos);
	int tag = 7;
	ns_conn_set_user(acc.conn, &tag);

	ASSERT_EQ(send(fd, "hello", 5, 0), 5);
	ns_event d = wait_for(s.w(), [](const ns_event &e) { return e.type == NS_EV_DATA; });
	EXPECT_EQ(d.user, &tag);
	ASSERT_EQ(std::string(reinterpret_cast<const char *>(d.data), d.len), "hello");

	iovec iov[2] = {{const_cast<char *>("wor"), 3}, {const_cast<char *>("ld"), 2}};
	ASSERT_EQ(ns_send(d.conn, iov, 2), 0);
	EXPECT_EQ(ns_conn_pending(d.conn), 5u);
	ns_flush(s.w());
	EXPECT_EQ(ns_conn_pending(d.conn), 0u);
	EXPECT_EQ(read_all(fd, 5), "world");
	const ns_stats *st = ns_worker_stats(s.w());
	EXPECT_EQ(st->accepted, 1u);
	EXPECT_EQ(st->rx_bytes, 5u);
	EXPECT_EQ(st->tx_bytes, 5u);
	close(fd);
	ns_event c = wait_for(s.w(), [](const ns_event &e) { return e.type == NS_EV_CLOSED; });
	EXPECT_EQ(c.conn, acc.conn);
	EXPECT_EQ(c.err, 0);
	EXPECT_EQ(st->closed, 1u);
}

TEST(NsKernel, LargeTransferByteExact)
{
	Server s;
	int fd = connect_to(ns_port(s.t));
	ns_event acc = wait_for(s.w(), [](const ns_event &e) { return e.type == NS_EV_ACCEPT; });
	std::string big(3 << 20, '\0');
	for (size_t i = 0; i < big.size(); i++)
		big[i] = static_cast<char>(i * 131 + (i >> 12));
	// Send in tx_limit-sized pieces, honouring back-pressure, while the client reads.
	std::string got;
	std::thread reader([&] { got = read_all(fd, big.size()); });
	size_t off = 0;
	auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
	while (off < big.size() && std::chrono::steady_clock::now() < end) {
		size_t n = std::min<size_t>(100000, big.size() - off);
		iovec v{&big[off], n};
		int rc = ns_send(acc.conn, &v, 1);
		if (rc == 0)
			off += n;
		else
			ASSERT_EQ(rc, -ENOBUFS);
		ns_flush(s.w());
		ns_event ev[16];
		ns_poll(s.w(), ev, 16, rc == 0 ? 0 : 5);
	}
	while (ns_conn_pending(acc.conn) && std::chrono::steady_clock::now() < end) {
		ns_event ev[16];
		ns_poll(s.w(), ev, 16, 5);
		ns_flush(s.w());
	}
	reader.join();
	ASSERT_EQ(got.size(), big.size());
	EXPECT_TRUE(got == big);
	close(fd);
}

// Writes of every size around the transport's two chunk sizes (a small first chunk for a small
// write into an empty queue, big ones after it), queued back to back between flushes and
// several per flush, arrive byte for byte and in order.
TEST(NsKernel, MixedWriteSizesByteExact)
{
	Server s;
	int fd = connect_to(ns_port(s.t));
	ns_event acc = wait_for(s.w(), [](const ns_event &e) { return e.type == NS_EV_ACCEPT; });
	const size_t sizes[] = {1, 2, 31, 200, 480, 491, 492, 493, 511, 512, 1000, 4000, 16363,
				16364, 16365, 40000};
	std::string want;
	std::string got;
	size_t total = 0;
	for (size_t a : sizes)
		for (size_t b : sizes)
			total += a + b + 1;
	std::thread reader([&] { got = read_all(fd, total); });
	uint32_t k = 0;
	for (size_t a : sizes) {
		for (size_t b : sizes) {
			// two writes (one of two pieces) into one queue, then sometimes a flush
			std::string x(a, '\0'), y(b, '\0');
			for (char &ch : x)
				ch = static_cast<char>(k++ * 151 >> 3);
			for (char &ch : y)
				ch = static_cast<char>(k++ * 151 >> 3);
			std::string z(1, static_cast<char>(k++));
			iovec v1{&x[0], x.size()};
			iovec v2[2] = {{&y[0], y.size()}, {&z[0], 1}};
			ASSERT_EQ(ns_send(acc.conn, &v1, 1), 0);
			ASSERT_EQ(ns_send(acc.conn, v2, 2), 0);
			want += x + y + z;
			if (k % 3 == 0 || ns_conn_pending(acc.conn) > 200000) {
				ns_flush(s.w());
				auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
				while (ns_conn_pending(acc.conn) > 200000 &&
				       std::chrono::steady_clock::now() < end) {
					ns_event ev[16];
					ns_poll(s.w(), ev, 16, 5);
					ns_flush(s.w());
				}
			}
		}
	}
	auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
	do {
		ns_flush(s.w());
		ns_event ev[16];
		ns_poll(s.w(), ev, 16, 5);
	} while (ns_conn_pending(acc.conn) && std::chrono::steady_clock::now() < end);
	reader.join();
	ASSERT_EQ(want.size(), total);
	ASSERT_EQ(got.size(), want.size());
	EXPECT_TRUE(got == want);
	close(fd);
}

TEST(NsKernel, BackPressureThenWritable)
{
	Server s(1, 64 * 1024);
	int fd = connect_to(ns_port(s.t));
	ns_event acc = wait_for(s.w(), [](const ns_event &e) { return e.type == NS_EV_ACCEPT; });
	std::string chunk(16 * 1024, 'x');
	iovec v{&chunk[0], chunk.size()};
	// The client does not read: the socket buffers fill, then our queue.
	int rc = 0;
	size_t queued = 0;
	for (int i = 0; i < 10000 && rc == 0; i++) {
		rc = ns_send(acc.conn, &v, 1);
		if (rc == 0)
			queued += chunk.size();
		ns_flush(s.w());
	}
	ASSERT_EQ(rc, -ENOBUFS);
	EXPECT_GT(queued, 64u * 1024); // the socket took some before the queue filled
	EXPECT_GE(ns_worker_stats(s.w())->tx_full, 1u);
	EXPECT_LE(ns_conn_pending(acc.conn), 64u * 1024);
	// Reading on the client side drains the queue and brings WRITABLE.
	std::atomic<bool> stop{false};
	size_t drained = 0;
	std::thread reader([&] {
		char buf[65536];
		while (!stop) {
			pollfd p{fd, POLLIN, 0};
			if (poll(&p, 1, 10) > 0) {
				ssize_t r = recv(fd, buf, sizeof(buf), 0);
				if (r > 0)
					drained += static_cast<size_t>(r);
			}
		}
	});
	ns_event wr = wait_for(s.w(), [](const ns_event &e) { return e.type == NS_EV_WRITABLE; });
	EXPECT_EQ(wr.conn, acc.conn);
	EXPECT_EQ(ns_send(acc.conn, &v, 1), 0);
	stop = true;
	reader.join();
	EXPECT_GT(drained, 0u);
	close(fd);
}

TEST(NsKernel, GracefulCloseDeliversQueuedBytes)
{
	Server s;
	int fd = connect_to(ns_port(s.t));
	ns_event acc = wait_for(s.w(), [](const ns_event &e) { return e.type == NS_EV_ACCEPT; });
	std::string msg(200000, 'q');
	iovec v{&msg[0], msg.size()};
	ASSERT_EQ(ns_send(acc.conn, &v, 1), 0);
	ns_close(acc.conn, true);
	EXPECT_EQ(ns_send(acc.conn, &v, 1), -EPIPE);
	std::string got;
	std::thread reader([&] { got = read_all(fd, msg.size() + 1); }); // reads until EOF
	ns_flush(s.w());
	auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
	while (got.size() < msg.size() && std::chrono::steady_clock::now() < end) {
		ns_event ev[8];
		ns_poll(s.w(), ev, 8, 5);
		ns_flush(s.w());
		if (ns_conn_pending(acc.conn) == 0)
			break;
	}
	reader.join();
	EXPECT_EQ(got, msg);
	close(fd); // the peer's close ends the linger: CLOSED follows
	wait_for(s.w(), [&](const ns_event &e) { return e.type == NS_EV_CLOSED && e.conn == acc.conn; });
}

TEST(NsKernel, AbortiveCloseReportsClosedOnce)
{
	Server s;
	int fd = connect_to(ns_port(s.t));
	ns_event acc = wait_for(s.w(), [](const ns_event &e) { return e.type == NS_EV_ACCEPT; });
	ns_close(acc.conn, false);
	ns_close(acc.conn, false); // a second close is harmless
	std::vector<ns_event> seen;
	wait_for(s.w(), [](const ns_event &e) { return e.type == NS_EV_CLOSED; }, &seen);
	ns_event ev[8];
	for (int i = 0; i < 5; i++)
		for (unsigned k = 0, n = ns_poll(s.w(), ev, 8, 2); k < n; k++)
			seen.push_back(ev[k]);
	int closed = 0;
	for (auto &e : seen)
		closed += e.type == NS_EV_CLOSED;
	EXPECT_EQ(closed, 1);
	char c;
	EXPECT_EQ(recv(fd, &c, 1, 0), 0); // the client sees the close
	close(fd);
}

TEST(NsKernel, PausedConnectionIsNotRead)
{
	Server s;
	int fd = connect_to(ns_port(s.t));
	ns_event acc = wait_for(s.w(), [](const ns_event &e) { return e.type == NS_EV_ACCEPT; });
	ns_pause_rx(acc.conn, true);
	ASSERT_EQ(send(fd, "abc", 3, 0), 3);
	ns_event ev[8];
	for (int i = 0; i < 10; i++)
		for (unsigned k = 0, n = ns_poll(s.w(), ev, 8, 5); k < n; k++)
			EXPECT_NE(ev[k].type, NS_EV_DATA);
	ns_pause_rx(acc.conn, false);
	ns_event d = wait_for(s.w(), [](const ns_event &e) { return e.type == NS_EV_DATA; });
	EXPECT_EQ(std::string(reinterpret_cast<const char *>(d.data), d.len), "abc");
	EXPECT_EQ(ns_worker_stats(s.w())->rx_paused, 1u);
	close(fd);
}

TEST(NsKernel, WakeInterruptsWait)
{
	Server s;
	std::thread waker([&] {
		std::this_thread::sleep_for(std::chrono::milliseconds(50));
		ns_wake(s.w());
	});
	ns_event ev[4];
	auto t0 = std::chrono::steady_clock::now();
	unsigned n = ns_poll(s.w(), ev, 4, 10000); // would wait 10 s without the wake
	auto waited = std::chrono::steady_clock::now() - t0;
	waker.join();
	EXPECT_EQ(n, 0u);
	EXPECT_LT(waited, std::chrono::seconds(9));
}

TEST(NsKernel, WorkersShareThePort)
{
	Server s(2);
	ASSERT_EQ(ns_worker_count(s.t), 2u);
	std::vector<int> fds;
	for (int i = 0; i < 64; i++)
		fds.push_back(connect_to(ns_port(s.t)));
	unsigned accepted[2] = {0, 0};
	ns_event ev[64];
	auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
	while (accepted[0] + accepted[1] < 64 && std::chrono::steady_clock::now() < end)
		for (unsigned w = 0; w < 2; w++)
			for (unsigned k = 0, n = ns_poll(s.w(w), ev, 64, 1); k < n; k++)
				accepted[w] += ev[k].type == NS_EV_ACCEPT;
	EXPECT_EQ(accepted[0] + accepted[1], 64u);
	EXPECT_GT(accepted[0], 0u); // SO_REUSEPORT spreads 64 connections over both
	EXPECT_GT(accepted[1], 0u);
	for (int fd : fds)
		close(fd);
}

TEST(NsKernel, RefusesBeyondMaxConns)
{
	ns_config cfg;
	ns_config_defaults(&cfg);
	cfg.port = 0;
	cfg.max_conns = 2;
	char err[256];
	ns_transport *t = ns_create(&cfg, err, sizeof(err));
	ASSERT_NE(t, nullptr) << err;
	ns_worker *w = ns_worker_get(t, 0);
	int fds[4];
	for (int &fd : fds)
		fd = connect_to(ns_port(t));
	ns_event ev[8];
	unsigned accepted = 0;
	for (int i = 0; i < 50 && ns_worker_stats(w)->refused < 2; i++)
		for (unsigned k = 0, n = ns_poll(w, ev, 8, 5); k < n; k++)
			accepted += ev[k].type == NS_EV_ACCEPT;
	EXPECT_EQ(accepted, 2u);
	EXPECT_EQ(ns_worker_stats(w)->refused, 2u);
	for (int fd : fds)
		close(fd);
	ns_destroy(t);
}

TEST(NsKernel, BadConfigurationIsExplained)
{
	ns_config cfg;
	ns_config_defaults(&cfg);
	cfg.bind = "not-an-address";
	char err[256] = "";
	EXPECT_EQ(ns_create(&cfg, err, sizeof(err)), nullptr);
	EXPECT_NE(std::string(err).find("not-an-address"), std::string::npos);
	// The DPDK backend refuses a configuration without an address before touching EAL (or,
	// in a build without DPDK, says it is not there).
	ns_config_defaults(&cfg);
	cfg.backend = NS_BACKEND_DPDK;
	cfg.port = 0;
	err[0] = 0;
	EXPECT_EQ(ns_create(&cfg, err, sizeof(err)), nullptr);
	EXPECT_NE(std::string(err), "");
}

// SPDX-License-Identifier: MIT
// Flow steering (netstack/ns_steer.c) against a brute-force oracle: a bit-by-bit Toeplitz hash
// written from the RSS specification (checked first against Microsoft's published verification
// vector), the symmetry both directions of a connection rely on, and the agreement between the
// owner of a passive open, the owner of its replies, and the port an active open picks.
#include <arpa/inet.h>

#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "ns_tcp_fake.h"

namespace
{

// Toeplitz, bit by bit: for every set bit i of the input (most significant bit of byte 0
// first), XOR in the 32 key bits that start at bit i.
uint32_t toeplitz(const std::vector<uint8_t> &key, const std::vector<uint8_t> &in)
{
	uint32_t h = 0;
	for (size_t i = 0; i < in.size() * 8; i++) {
		if (!(in[i / 8] & (0x80 >> (i % 8))))
			continue;
		uint32_t w = 0;
		for (size_t b = 0; b < 32; b++) {
			size_t k = i + b;
			w = (w << 1) | ((key[k / 8] >> (7 - k % 8)) & 1);
		}
		h ^= w;
	}
	return h;
}

// The RSS input of an IPv4 TCP frame: source address, destination address, source port,
// destination port, all in network order. Addresses network order, ports host order.
std::vector<uint8_t> tuple(uint32_t sa, uint32_t da, uint16_t sp, uint16_t dp)
{
	std::vector<uint8_t> v(12);
	memcpy(&v[0], &sa, 4);
	memcpy(&v[4], &da, 4);
	v[8] = uint8_t(sp >> 8);
	v[9] = uint8_t(sp);
	v[10] = uint8_t(dp >> 8);
	v[11] = uint8_t(dp);
	return v;
}

std::vector<uint8_t> arp_request(uint32_t spa, uint32_t tpa)
{
	static const uint8_t mac[6] = {0x02, 0, 0, 0, 0, 0x01};
	return arp_frame(NS_ARP_REQUEST, mac, spa, tpa);
}

// A stack at us/24 that is worker self of n (n 0: no steering).
ns_stack_cfg stack_cfg(uint32_t us, unsigned n, unsigned self)
{
	ns_stack_cfg cfg{};
	ns_stack_cfg_defaults(&cfg);
	cfg.ip = us;
	cfg.netmask = ip4("255.255.255.0");
	cfg.steer_workers = uint16_t(n);
	cfg.steer_self = uint16_t(self);
	cfg.steer_mask = 127;
	return cfg;
}

std::vector<uint8_t> sym_key()
{
	std::vector<uint8_t> k(52);
	ns_rss_key(k.data(), k.size());
	return k;
}

} // namespace

TEST(NsSteer, OracleMatchesMicrosoftVector)
{
	// "Verifying the RSS Hash Calculation" (Microsoft): IPv4 with TCP ports.
	std::vector<uint8_t> key = {0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67,
				    0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb,
				    0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30,
				    0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};
	EXPECT_EQ(toeplitz(key, tuple(ip4("66.9.149.187"), ip4("161.142.100.80"), 2794, 1766)),
		  0x51ccc178u);
}

TEST(NsSteer, KeyIsTheRepeatedSymmetricPattern)
{
	std::vector<uint8_t> k = sym_key();
	for (size_t i = 0; i < k.size(); i++)
		EXPECT_EQ(k[i], (i % 2) ? 0x5a : 0x6d) << i;
}

TEST(NsSteer, HashIsToeplitzWithTheSymmetricKey)
{
	std::vector<uint8_t> key = sym_key();
	std::mt19937_64 rng(42);
	for (int i = 0; i < 200000; i++) {
		uint32_t sa = uint32_t(rng()), da = uint32_t(rng());
		uint16_t sp = uint16_t(rng()), dp = uint16_t(rng());
		ASSERT_EQ(ns_rss_hash(sa, da, sp, dp), toeplitz(key, tuple(sa, da, sp, dp)))
			<< "tuple " << i;
	}
	// edges: all zero, all ones
	EXPECT_EQ(ns_rss_hash(0, 0, 0, 0), 0u);
	EXPECT_EQ(ns_rss_hash(0xffffffffu, 0xffffffffu, 0xffff, 0xffff),
		  toeplitz(key, tuple(0xffffffffu, 0xffffffffu, 0xffff, 0xffff)));
}

TEST(NsSteer, SymmetricInBothDirections)
{
	std::mt19937_64 rng(7);
	for (int i = 0; i < 200000; i++) {
		uint32_t a = uint32_t(rng()), b = uint32_t(rng());
		uint16_t pa = uint16_t(rng()), pb = uint16_t(rng());
		ASSERT_EQ(ns_rss_hash(a, b, pa, pb), ns_rss_hash(b, a, pb, pa)) << "tuple " << i;
	}
}

TEST(NsSteer, OwnerIsTheIndirectionTableEntry)
{
	// Brute force: a table of the given size holding i % n, indexed by the hash's low bits.
	std::mt19937_64 rng(3);
	for (unsigned n : {1u, 2u, 3u, 4u, 7u, 16u}) {
		for (uint32_t size : {64u, 128u, 512u}) {
			std::vector<unsigned> reta(size);
			for (uint32_t i = 0; i < size; i++)
				reta[i] = i % n;
			std::vector<unsigned> seen(n);
			for (int k = 0; k < 20000; k++) {
				uint32_t h = ns_rss_hash(uint32_t(rng()), uint32_t(rng()),
							 uint16_t(rng()), uint16_t(rng()));
				unsigned o = ns_steer_owner(h, size - 1, n);
				ASSERT_EQ(o, reta[h % size]);
				seen[o]++;
			}
			for (unsigned w = 0; w < n; w++)
				EXPECT_GT(seen[w], 0u)
					<< "worker " << w << " of " << n << " never owns";
		}
	}
}

TEST(NsSteer, PassiveOpenOwnerOwnsTheReplies)
{
	// The receive path steers a SYN by the frame's tuple (client -> server); every answer the
	// owner sends (server -> client) and every later client frame must map to the same owner.
	const uint32_t srv = ip4("10.0.0.2");
	std::mt19937_64 rng(11);
	for (unsigned n : {2u, 3u, 4u, 8u}) {
		for (int i = 0; i < 50000; i++) {
			uint32_t cli = ip4("10.0.0.0") | htonl(uint32_t(rng() % 254 + 1));
			uint16_t cport = uint16_t(rng()), sport = 1883;
			unsigned syn = ns_steer_owner(ns_rss_hash(cli, srv, cport, sport), 127, n);
			unsigned reply =
				ns_steer_owner(ns_rss_hash(srv, cli, sport, cport), 127, n);
			ASSERT_EQ(syn, reply);
		}
	}
}

TEST(NsSteer, ActiveOpenPicksAPortItsCoreOwns)
{
	// Each of n stacks opens connections; the receive path must steer the answers (peer ->
	// us) to the core that opened them.
	const unsigned n = 4;
	const uint32_t us = ip4("10.0.0.2"), peer = ip4("10.0.0.1");
	for (unsigned self = 0; self < n; self++) {
		FakeDev dev;
		ns_stack st{};
		ns_stack_cfg cfg = stack_cfg(us, n, self);
		ASSERT_EQ(ns_stack_init(&st, &cfg, FakeDev::ops(), &dev), 0);
		st.now_us = 1000000;
		dev.feed(&st, arp_request(peer, us)); // the peer resolves: SYNs leave at once
		for (int k = 0; k < 64; k++) {
			st.now_us = 1000000 + uint64_t(k) * 997;
			ns_conn *c = nullptr;
			uint16_t rport = uint16_t(7000 + k);
			dev.out.clear();
			ASSERT_EQ(ns_stack_connect(&st, peer, rport, &c), 0);
			ASSERT_EQ(dev.out.size(), 1u); // the SYN
			const auto &f = dev.out.back();
			ASSERT_GE(f.size(), size_t(NS_ETH_HLEN + NS_IP_HLEN + NS_TCP_HLEN));
			uint16_t lport = uint16_t(f[NS_ETH_HLEN + NS_IP_HLEN] << 8 |
						  f[NS_ETH_HLEN + NS_IP_HLEN + 1]);
			EXPECT_EQ(ns_steer_owner(ns_rss_hash(peer, us, rport, lport), 127, n),
				  self);
		}
		ns_stack_fini(&st);
		EXPECT_EQ(dev.live, 0);
	}
	// steer_self must name one of the workers
	FakeDev dev;
	ns_stack st{};
	ns_stack_cfg cfg = stack_cfg(us, 2, 2);
	EXPECT_EQ(ns_stack_init(&st, &cfg, FakeDev::ops(), &dev), -EINVAL);
}

TEST(NsSteer, SharedArpCopiesLearnWithoutAnswering)
{
	// Every worker sees every ARP frame; only the one that received it from the device
	// answers, the others (NS_RXF_ARP_LEARN) learn the sender and can send to it at once.
	const uint32_t us = ip4("10.0.0.2"), peer = ip4("10.0.0.1");
	FakeDev dev;
	ns_stack st{};
	ns_stack_cfg cfg = stack_cfg(us, 0, 0);
	ASSERT_EQ(ns_stack_init(&st, &cfg, FakeDev::ops(), &dev), 0);
	st.now_us = 1000000;
	dev.feed(&st, arp_request(peer, us), NS_RXF_ARP_LEARN);
	EXPECT_TRUE(dev.out.empty()) << "a learn-only copy was answered";
	ns_conn *c = nullptr;
	ASSERT_EQ(ns_stack_connect(&st, peer, 7000, &c), 0);
	ASSERT_EQ(dev.out.size(), 1u) << "the neighbour was not learnt: SYN held for ARP";
	EXPECT_EQ(dev.out[0][12], 0x08); // IPv4, not an ARP request
	EXPECT_EQ(dev.out[0][13], 0x00);
	dev.out.clear();
	dev.feed(&st, arp_request(peer, us)); // the receiving worker answers
	ASSERT_EQ(dev.out.size(), 1u);
	EXPECT_EQ(dev.out[0][13], 0x06);
	ns_stack_fini(&st);
	EXPECT_EQ(dev.live, 0);
}

// SPDX-License-Identifier: MIT
// An in-memory device and a fake clock for Tachyon's TCP/IP stack, plus builders and parsers
// of the frames a test peer exchanges with it. Every buffer is counted so a test can check
// that nothing leaks (held segments, ARP holds, delivered views).
#ifndef NS_TCP_FAKE_H
#define NS_TCP_FAKE_H

#include <arpa/inet.h>
#include <string.h>

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "ns_stack.h"

struct FakePkt {
	int ref;
	uint8_t data[2048];
};

struct FakeDev {
	std::deque<std::vector<uint8_t>> out; // frames transmitted, oldest first
	long live = 0;                        // buffers allocated and not yet freed
	bool fail_alloc = false;

	static ns_pkt *alloc(void *ctx, uint8_t **data)
	{
		auto *d = static_cast<FakeDev *>(ctx);
		if (d->fail_alloc)
			return nullptr;
		auto *p = new FakePkt();
		p->ref = 1;
		d->live++;
		*data = p->data;
		return reinterpret_cast<ns_pkt *>(p);
	}
	static void put(FakeDev *d, FakePkt *p)
	{
		if (--p->ref == 0) {
			d->live--;
			delete p;
		}
	}
	static void tx(void *ctx, ns_pkt *pk, uint16_t len)
	{
		auto *d = static_cast<FakeDev *>(ctx);
		auto *p = reinterpret_cast<FakePkt *>(pk);
		d->out.emplace_back(p->data, p->data + len);
		put(d, p);
	}
	static void hold(void *, ns_pkt *pk) { reinterpret_cast<FakePkt *>(pk)->ref++; }
	static void release(void *ctx, ns_pkt *pk)
	{
		put(static_cast<FakeDev *>(ctx), reinterpret_cast<FakePkt *>(pk));
	}
	static const ns_dev_ops *ops()
	{
		static const ns_dev_ops o = {alloc, tx, hold, release};
		return &o;
	}
	// Feeds one frame as the device would: a fresh buffer, released after the call.
	// rx_flags: NS_RXF_* the device vouches for.
	void feed(ns_stack *st, const std::vector<uint8_t> &f, unsigned rx_flags = 0)
	{
		auto *p = new FakePkt();
		p->ref = 1;
		live++;
		memcpy(p->data, f.data(), f.size());
		ns_stack_input(st, reinterpret_cast<ns_pkt *>(p), p->data, (uint32_t)f.size(),
			       rx_flags);
		put(this, p);
	}
};

// An ARP frame (broadcast) from sha/spa about tpa.
inline std::vector<uint8_t> arp_frame(uint16_t op, const uint8_t *sha, uint32_t spa, uint32_t tpa)
{
	std::vector<uint8_t> f(60);
	auto *eh = reinterpret_cast<ns_eth_hdr *>(f.data());
	memset(eh->dst, 0xff, 6);
	memcpy(eh->src, sha, 6);
	eh->type = htons(NS_ETH_P_ARP);
	auto *ah = reinterpret_cast<ns_arp_hdr *>(f.data() + NS_ETH_HLEN);
	ah->htype = htons(1);
	ah->ptype = htons(NS_ETH_P_IP);
	ah->hlen = 6;
	ah->plen = 4;
	ah->op = htons(op);
	memcpy(ah->sha, sha, 6);
	ah->spa = spa;
	ah->tpa = tpa;
	return f;
}

inline uint32_t ip4(const char *s)
{
	in_addr a{};
	inet_pton(AF_INET, s, &a);
	return a.s_addr;
}

struct Seg {
	uint8_t flags = 0;
	uint32_t seq = 0, ack = 0;
	uint16_t win = 0, sport = 0, dport = 0;
	uint16_t mss = 0;
	int wscale = -1;
	bool ts = false;
	uint32_t tsval = 0, tsecr = 0;
	std::string data;
};

struct TcpOpt {
	uint16_t mss = 0;
	int wscale = -1;
	bool ts = false;
	uint32_t tsval = 0, tsecr = 0;
};

// An IPv4/TCP frame from (src_ip, sport) to (dst_ip, dport), checksums right.
inline std::vector<uint8_t> tcp_frame(const uint8_t *src_mac, const uint8_t *dst_mac,
				      uint32_t src_ip, uint32_t dst_ip, uint16_t sport,
				      uint16_t dport, uint8_t flags, uint32_t seq, uint32_t ack,
				      uint16_t win, const std::string &data, const TcpOpt &o = {})
{
	std::vector<uint8_t> opt;
	if (o.mss)
		opt.insert(opt.end(), {2, 4, (uint8_t)(o.mss >> 8), (uint8_t)o.mss});
	if (o.wscale >= 0)
		opt.insert(opt.end(), {1, 3, 3, (uint8_t)o.wscale});
	if (o.ts) {
		uint32_t v = htonl(o.tsval), e = htonl(o.tsecr);
		opt.insert(opt.end(), {1, 1, 8, 10});
		opt.insert(opt.end(), (uint8_t *)&v, (uint8_t *)&v + 4);
		opt.insert(opt.end(), (uint8_t *)&e, (uint8_t *)&e + 4);
	}
	while (opt.size() % 4)
		opt.push_back(1);
	size_t tl = NS_TCP_HLEN + opt.size() + data.size();
	std::vector<uint8_t> f(NS_ETH_HLEN + NS_IP_HLEN + tl);
	auto *eh = reinterpret_cast<ns_eth_hdr *>(f.data());
	memcpy(eh->dst, dst_mac, 6);
	memcpy(eh->src, src_mac, 6);
	eh->type = htons(NS_ETH_P_IP);
	auto *ih = reinterpret_cast<ns_ip_hdr *>(f.data() + NS_ETH_HLEN);
	ih->vihl = 0x45;
	ih->len = htons((uint16_t)(NS_IP_HLEN + tl));
	ih->ttl = 64;
	ih->proto = NS_IPPROTO_TCP;
	ih->src = src_ip;
	ih->dst = dst_ip;
	ih->csum = htons(ns_csum_fold(ns_csum_add(0, ih, NS_IP_HLEN)));
	uint8_t *t = f.data() + NS_ETH_HLEN + NS_IP_HLEN;
	auto *th = reinterpret_cast<ns_tcp_hdr *>(t);
	th->sport = htons(sport);
	th->dport = htons(dport);
	th->seq = htonl(seq);
	th->ack = htonl(ack);
	th->off = (uint8_t)(((NS_TCP_HLEN + opt.size()) / 4) << 4);
	th->flags = flags;
	th->win = htons(win);
	if (!opt.empty())
		memcpy(t + NS_TCP_HLEN, opt.data(), opt.size());
	if (!data.empty())
		memcpy(t + NS_TCP_HLEN + opt.size(), data.data(), data.size());
	uint32_t sum = ns_csum_pseudo(src_ip, dst_ip, NS_IPPROTO_TCP, (uint16_t)tl);
	th->csum = htons(ns_csum_fold(ns_csum_add(sum, t, tl)));
	return f;
}

// Parses a TCP frame the stack sent; false if it is not one.
inline bool parse_seg(const std::vector<uint8_t> &f, Seg *s)
{
	if (f.size() < NS_ETH_HLEN + NS_IP_HLEN + NS_TCP_HLEN)
		return false;
	auto *eh = reinterpret_cast<const ns_eth_hdr *>(f.data());
	if (ntohs(eh->type) != NS_ETH_P_IP)
		return false;
	auto *ih = reinterpret_cast<const ns_ip_hdr *>(f.data() + NS_ETH_HLEN);
	if (ih->proto != NS_IPPROTO_TCP)
		return false;
	size_t tl = ntohs(ih->len) - NS_IP_HLEN;
	const uint8_t *t = f.data() + NS_ETH_HLEN + NS_IP_HLEN;
	auto *th = reinterpret_cast<const ns_tcp_hdr *>(t);
	// the checksum must verify
	uint32_t sum = ns_csum_pseudo(ih->src, ih->dst, NS_IPPROTO_TCP, (uint16_t)tl);
	if (ns_csum_fold(ns_csum_add(sum, t, tl)) != 0)
		return false;
	*s = Seg{};
	s->flags = th->flags;
	s->seq = ntohl(th->seq);
	s->ack = ntohl(th->ack);
	s->win = ntohs(th->win);
	s->sport = ntohs(th->sport);
	s->dport = ntohs(th->dport);
	size_t hl = (size_t)(th->off >> 4) * 4;
	for (size_t i = NS_TCP_HLEN; i < hl;) {
		uint8_t k = t[i];
		if (k == 0)
			break;
		if (k == 1) {
			i++;
			continue;
		}
		uint8_t l = t[i + 1];
		if (k == 2)
			s->mss = (uint16_t)((t[i + 2] << 8) | t[i + 3]);
		if (k == 3)
			s->wscale = t[i + 2];
		if (k == 8) {
			uint32_t v, e;
			memcpy(&v, t + i + 2, 4);
			memcpy(&e, t + i + 6, 4);
			s->ts = true;
			s->tsval = ntohl(v);
			s->tsecr = ntohl(e);
		}
		i += l;
	}
	s->data.assign(reinterpret_cast<const char *>(t + hl), tl - hl);
	return true;
}

#endif

/* SPDX-License-Identifier: MIT */
/*
 * The stack below TCP: configuration and life of a struct ns_stack, Ethernet demux, ARP
 * (requests, replies, a small cache with timeout and unicast-poll refresh, one held packet per
 * unresolved neighbour, gratuitous ARP on start), IPv4 input with header validation
 * (fragments are dropped and counted, not reassembled), ICMP echo, and IPv4 output with
 * next-hop selection (on-link or the configured gateway).
 *
 * The ARP cache is per stack, i.e. per worker core: every core learns from the ARP frames it
 * sees. A backend with several workers must hand every ARP frame to every worker (ns_dpdk.c
 * shares each one, read-only, by reference count), so that each core resolves its own peers
 * without shared state; the copies are marked NS_RXF_ARP_LEARN so only the core that received
 * the frame answers it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/random.h>

#include "ns_tcp.h"

static const uint8_t bcast_mac[NS_ETH_ALEN] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

#define NS_ARP_POLLS 3 /* unanswered unicast polls before an expired entry is given up */

/* ---- hashing ----------------------------------------------------------------------------- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                  \
	do {                                                                                      \
		v0 += v1;                                                                         \
		v1 = ROTL(v1, 13);                                                                \
		v1 ^= v0;                                                                         \
		v0 = ROTL(v0, 32);                                                                \
		v2 += v3;                                                                         \
		v3 = ROTL(v3, 16);                                                                \
		v3 ^= v2;                                                                         \
		v0 += v3;                                                                         \
		v3 = ROTL(v3, 21);                                                                \
		v3 ^= v0;                                                                         \
		v2 += v1;                                                                         \
		v1 = ROTL(v1, 17);                                                                \
		v1 ^= v2;                                                                         \
		v2 = ROTL(v2, 32);                                                                \
	} while (0)

static uint64_t load64_le(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

uint64_t ns_siphash(const uint8_t key[16], const void *data, size_t len)
{
	const uint8_t *in = data;
	uint64_t k0 = load64_le(key), k1 = load64_le(key + 8);
	uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
	uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
	uint64_t b = (uint64_t)len << 56;
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		uint64_t m = load64_le(in + i);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for (size_t j = 0; i + j < len; j++)
		b |= (uint64_t)in[i + j] << (8 * j);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

uint32_t ns_flow_hash(uint32_t a1, uint16_t p1, uint32_t a2, uint16_t p2)
{
	/* Order the endpoints so both directions hash alike; then mix (murmur3 finaliser). */
	uint64_t e1 = ((uint64_t)a1 << 16) | p1, e2 = ((uint64_t)a2 << 16) | p2;
	uint64_t lo = e1 < e2 ? e1 : e2, hi = e1 < e2 ? e2 : e1;
	uint64_t h = lo * 0x9e3779b97f4a7c15ULL ^ (hi + 0x632be59bd9b4e019ULL);
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return (uint32_t)h;
}

int ns_parse_cidr(const char *s, uint32_t *ip, uint32_t *mask)
{
	char buf[32];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = 0;
	struct in_addr a;
	if (inet_pton(AF_INET, buf, &a) != 1)
		return -EINVAL;
	long len = 32;
	if (slash) {
		char *end;
		len = strtol(slash + 1, &end, 10);
		if (*end || end == slash + 1 || len < 1 || len > 32)
			return -EINVAL;
	}
	*ip = a.s_addr;
	*mask = htonl(len == 32 ? 0xffffffffu : ~(0xffffffffu >> len));
	return 0;
}

/* ---- life ------------------------------------------------------------------------------- */

void ns_stack_cfg_defaults(struct ns_stack_cfg *cfg)
{
	*cfg = (struct ns_stack_cfg){
		.mtu = 1500,
		.backlog = 1024,
		.max_conns = 1u << 16,
		.rx_chunk = 64 * 1024,
		.tx_limit = 1024 * 1024,
		.rcv_buf = 256 * 1024,
		.max_segs = 1024,
		.tw_max = 4096,
		.msl_ms = 30000,
		.rto_min_ms = 200,
		.rto_max_ms = 60000,
		.rto_init_ms = 1000,
		.max_retries = 12,
		.delack_ms = 40,
		.keep_idle_ms = 7200 * 1000,
		.keep_intvl_ms = 75 * 1000,
		.keep_probes = 9,
		.fin_wait2_ms = 60000,
		.arp_timeout_ms = 60000,
		.nagle = false,
		.timestamps = true,
		.wscale = true,
		.syncookies = true,
		.tlp = true,
	};
	if (getrandom(cfg->secret, sizeof(cfg->secret), 0) != (ssize_t)sizeof(cfg->secret)) {
		/* No entropy source is a broken host, but the stack still works (predictable ISNs). */
		for (size_t i = 0; i < sizeof(cfg->secret); i++)
			cfg->secret[i] = (uint8_t)(rand() >> 3);
	}
}

int ns_stack_init(struct ns_stack *st, const struct ns_stack_cfg *cfg,
		  const struct ns_dev_ops *dev, void *dev_ctx)
{
	struct ns_worker keep = st->base; /* the backend may have filled the head */

	if (cfg->mtu < 576 || cfg->mtu > 1500 || cfg->rcv_buf < 4096 ||
	    cfg->rcv_buf > (1u << 30) || cfg->max_conns == 0 || cfg->rx_chunk == 0 ||
	    cfg->tx_limit == 0 || cfg->max_segs < 4 ||
	    (cfg->steer_workers > 1 && cfg->steer_self >= cfg->steer_workers))
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	st->base = keep;
	st->cfg = *cfg;
	st->dev = dev;
	st->dev_ctx = dev_ctx;
	ns_chunk_cache_init(&st->chunks, NS_SB_SMALL_SIZE, NS_SB_CHUNK_SIZE, NS_SB_SMALL_FREE_MAX,
			    NS_SB_CHUNK_FREE_MAX);
	if (getrandom(&st->port_seed, sizeof(st->port_seed), 0) != (ssize_t)sizeof(st->port_seed))
		st->port_seed = (uint32_t)ns_siphash(cfg->secret, &st, sizeof(st)); /* no entropy */
	uint32_t buckets = 1024;
	while (buckets < cfg->max_conns && buckets < (1u << 20))
		buckets <<= 1;
	st->flows = calloc(buckets, sizeof(*st->flows));
	if (!st->flows)
		return -ENOMEM;
	st->flow_mask = buckets - 1;
	return 0;
}

void ns_stack_start(struct ns_stack *st)
{
	uint8_t *f;
	struct ns_pkt *p = st->dev->alloc(st->dev_ctx, &f);
	if (!p) {
		st->xs.tx_nobuf++;
		return;
	}
	struct ns_eth_hdr *eh = (struct ns_eth_hdr *)f;
	struct ns_arp_hdr *ah = (struct ns_arp_hdr *)(f + NS_ETH_HLEN);
	memcpy(eh->dst, bcast_mac, NS_ETH_ALEN);
	memcpy(eh->src, st->cfg.mac, NS_ETH_ALEN);
	eh->type = htons(NS_ETH_P_ARP);
	*ah = (struct ns_arp_hdr){.htype = htons(1), .ptype = htons(NS_ETH_P_IP), .hlen = 6,
				  .plen = 4, .op = htons(NS_ARP_REQUEST), .spa = st->cfg.ip,
				  .tpa = st->cfg.ip};
	memcpy(ah->sha, st->cfg.mac, NS_ETH_ALEN);
	memset(ah->tha, 0, NS_ETH_ALEN);
	st->xs.arp_tx++;
	st->xs.tx_frames++;
	st->dev->tx(st->dev_ctx, p, 60);
}

/* ---- ARP -------------------------------------------------------------------------------- */

static struct ns_arp_entry *arp_find(struct ns_stack *st, uint32_t ip)
{
	struct ns_arp_entry *e = &st->arp[(ntohl(ip) * 2654435761u) >> 26];
	for (unsigned i = 0; i < 4; i++) {
		struct ns_arp_entry *c = &st->arp[(size_t)(e - st->arp + i) % NS_ARP_SLOTS];
		if (c->ip == ip)
			return c;
	}
	return NULL;
}

/* An entry for ip, evicting (in its 4-slot probe window) a free, then an expired, then the
 * first one. */
static struct ns_arp_entry *arp_slot(struct ns_stack *st, uint32_t ip)
{
	size_t base = (ntohl(ip) * 2654435761u) >> 26;
	struct ns_arp_entry *victim = NULL;
	for (unsigned i = 0; i < 4; i++) {
		struct ns_arp_entry *c = &st->arp[(base + i) % NS_ARP_SLOTS];
		if (c->ip == ip)
			return c;
		if (!c->ip) {
			victim = c;
			break;
		}
		if (!victim && c->expires_us <= st->now_us)
			victim = c;
	}
	if (!victim)
		victim = &st->arp[base % NS_ARP_SLOTS];
	if (victim->held) {
		st->dev->release(st->dev_ctx, victim->held);
		st->xs.arp_miss_drop++;
	}
	*victim = (struct ns_arp_entry){.ip = ip};
	return victim;
}

static void arp_send(struct ns_stack *st, uint16_t op, const uint8_t *dmac, uint32_t tip,
		     const uint8_t *tmac)
{
	uint8_t *f;
	struct ns_pkt *p = st->dev->alloc(st->dev_ctx, &f);
	if (!p) {
		st->xs.tx_nobuf++;
		return;
	}
	memset(f, 0, 60);
	struct ns_eth_hdr *eh = (struct ns_eth_hdr *)f;
	struct ns_arp_hdr *ah = (struct ns_arp_hdr *)(f + NS_ETH_HLEN);
	memcpy(eh->dst, dmac, NS_ETH_ALEN);
	memcpy(eh->src, st->cfg.mac, NS_ETH_ALEN);
	eh->type = htons(NS_ETH_P_ARP);
	ah->htype = htons(1);
	ah->ptype = htons(NS_ETH_P_IP);
	ah->hlen = 6;
	ah->plen = 4;
	ah->op = htons(op);
	memcpy(ah->sha, st->cfg.mac, NS_ETH_ALEN);
	ah->spa = st->cfg.ip;
	memcpy(ah->tha, tmac, NS_ETH_ALEN);
	ah->tpa = tip;
	st->xs.arp_tx++;
	st->xs.tx_frames++;
	st->dev->tx(st->dev_ctx, p, 60); /* minimum Ethernet payload, zero padded */
}

/* ---- IP --------------------------------------------------------------------------------- */

void ip_build(struct ns_stack *st, uint8_t *frame, uint32_t dst, uint8_t proto, uint16_t plen)
{
	struct ns_ip_hdr *ih = (struct ns_ip_hdr *)(frame + NS_ETH_HLEN);
	*ih = (struct ns_ip_hdr){.vihl = 0x45, .len = htons((uint16_t)(NS_IP_HLEN + plen)),
				 .id = htons(st->ip_id++), .frag = htons(NS_IP_DF), .ttl = 64,
				 .proto = proto, .src = st->cfg.ip, .dst = dst};
	ih->csum = htons(ns_csum_fold(ns_csum_add(0, ih, NS_IP_HLEN)));
}

static void eth_send(struct ns_stack *st, struct ns_pkt *p, uint8_t *frame, uint16_t len,
		     const uint8_t *dmac)
{
	struct ns_eth_hdr *eh = (struct ns_eth_hdr *)frame;
	memcpy(eh->dst, dmac, NS_ETH_ALEN);
	memcpy(eh->src, st->cfg.mac, NS_ETH_ALEN);
	eh->type = htons(NS_ETH_P_IP);
	if (len < 60) {
		memset(frame + len, 0, 60u - len);
		len = 60;
	}
	st->xs.tx_frames++;
	st->dev->tx(st->dev_ctx, p, len);
}

void ip_output(struct ns_stack *st, struct ns_pkt *p, uint8_t *frame, uint16_t len)
{
	const struct ns_ip_hdr *ih = (const struct ns_ip_hdr *)(frame + NS_ETH_HLEN);
	uint32_t dst = ih->dst, hop = dst;

	if ((dst & st->cfg.netmask) != (st->cfg.ip & st->cfg.netmask)) {
		if (!st->cfg.gateway) {
			st->xs.ip_noroute++;
			st->dev->release(st->dev_ctx, p);
			return;
		}
		hop = st->cfg.gateway;
	}
	struct ns_arp_entry *e = arp_find(st, hop);
	if (e && e->resolved && e->expires_us > st->now_us) {
		eth_send(st, p, frame, len, e->mac);
		return;
	}
	/*
	 * Expired but resolved: keep using the address while validating it with a unicast poll
	 * (RFC 1122 2.3.2.1, "Unicast Poll"), one a second, and give it up only after
	 * NS_ARP_POLLS unanswered polls. Holding traffic at every expiry instead cost a TCP flow
	 * a whole RTO (or a backed-off one) whenever the broadcast request or its reply was lost:
	 * one held packet survives, the rest of the window is dropped, and a new request waits
	 * for the next output.
	 */
	if (e && e->resolved && e->polls < NS_ARP_POLLS) {
		uint8_t mac[NS_ETH_ALEN];
		memcpy(mac, e->mac, NS_ETH_ALEN);
		if (e->poll_us <= st->now_us) {
			e->polls++;
			e->poll_us = st->now_us + 1000000;
			arp_send(st, NS_ARP_REQUEST, mac, hop, mac);
		}
		eth_send(st, p, frame, len, mac);
		return;
	}
	/* Unresolved: keep this packet (the newest replaces an older one) and ask, at most once
	 * per second per neighbour. TCP's retransmissions recover what is dropped meanwhile. */
	if (!e || e->resolved) {
		e = arp_slot(st, hop);
		e->resolved = false;
		e->expires_us = 0;
	}
	if (e->held) {
		st->dev->release(st->dev_ctx, e->held);
		st->xs.arp_miss_drop++;
	}
	e->held = p;
	e->held_frame = frame;
	e->held_len = len;
	if (e->expires_us <= st->now_us) {
		e->expires_us = st->now_us + 1000000;
		static const uint8_t zero[NS_ETH_ALEN];
		arp_send(st, NS_ARP_REQUEST, bcast_mac, hop, zero);
	}
}

static void arp_input(struct ns_stack *st, const uint8_t *f, uint32_t len, unsigned rx_flags)
{
	if (len < NS_ETH_HLEN + sizeof(struct ns_arp_hdr)) {
		st->xs.eth_drop++;
		return;
	}
	const struct ns_arp_hdr *ah = (const struct ns_arp_hdr *)(f + NS_ETH_HLEN);
	if (ah->htype != htons(1) || ah->ptype != htons(NS_ETH_P_IP) || ah->hlen != 6 ||
	    ah->plen != 4) {
		st->xs.eth_drop++;
		return;
	}
	st->xs.arp_rx++;
	uint32_t spa = ah->spa;
	uint8_t sha[NS_ETH_ALEN];
	memcpy(sha, ah->sha, NS_ETH_ALEN);
	if (spa == 0 || spa == st->cfg.ip || (sha[0] & 1))
		return; /* probes, our own announcements, nonsense senders */
	/* RFC 826: update an entry we have; add one if the frame is addressed to us. */
	struct ns_arp_entry *e = arp_find(st, spa);
	bool for_us = ah->tpa == st->cfg.ip;
	if (e || for_us) {
		if (!e)
			e = arp_slot(st, spa);
		memcpy(e->mac, sha, NS_ETH_ALEN);
		e->resolved = true;
		e->polls = 0;
		e->poll_us = 0;
		e->expires_us = st->now_us + (uint64_t)st->cfg.arp_timeout_ms * 1000;
		if (e->held) {
			struct ns_pkt *p = e->held;
			e->held = NULL;
			eth_send(st, p, e->held_frame, e->held_len, e->mac);
		}
	}
	if (for_us && ah->op == htons(NS_ARP_REQUEST) && !(rx_flags & NS_RXF_ARP_LEARN))
		arp_send(st, NS_ARP_REPLY, sha, spa, sha);
}

/*
 * A frame from an on-link neighbour, sent from the address we have for it, is news that the
 * entry is good (RFC 1122 2.3.2.1 lets any such advice stand in for a poll): it stays valid
 * without ARP traffic while the neighbour talks to us. Without it an entry expired every
 * arp_timeout_ms, and on a congested link the unicast polls or their answers could all be
 * lost: the entry was given up, every packet to the neighbour but one was dropped until a
 * broadcast got through, and 100,000 connections through that neighbour (issue #6) lost
 * their segments and their retransmissions at once. Refreshed in the second half of its life
 * only, so a busy neighbour costs one write per half period.
 */
static void arp_confirm(struct ns_stack *st, uint32_t src, const uint8_t *mac)
{
	/* Called per IPv4 frame: the usual frame comes from the neighbour of the last one,
	 * whose entry is fresh, and needs neither the subnet check nor the lookup. Skipping is
	 * safe: before arp_seen_until a confirmation would change nothing. */
	if (src == st->arp_seen_ip && st->now_us < st->arp_seen_until)
		return;
	if ((src & st->cfg.netmask) != (st->cfg.ip & st->cfg.netmask))
		return;
	struct ns_arp_entry *e = arp_find(st, src);
	uint64_t life = (uint64_t)st->cfg.arp_timeout_ms * 1000;
	if (!e || !e->resolved || memcmp(e->mac, mac, NS_ETH_ALEN) != 0)
		return;
	if (e->expires_us <= st->now_us + life / 2) {
		e->expires_us = st->now_us + life;
		e->polls = 0;
		e->poll_us = 0;
	}
	st->arp_seen_ip = src;
	st->arp_seen_until = e->expires_us - life / 2;
}

static void icmp_input(struct ns_stack *st, const struct ns_ip_hdr *ih, const uint8_t *l4,
		       uint32_t len)
{
	if (len < sizeof(struct ns_icmp_hdr) || len > (uint32_t)st->cfg.mtu - NS_IP_HLEN)
		return;
	const struct ns_icmp_hdr *ic = (const struct ns_icmp_hdr *)l4;
	if (ic->type != NS_ICMP_ECHO_REQUEST || ic->code != 0)
		return;
	if (ns_csum_fold(ns_csum_add(0, l4, len)) != 0) {
		st->xs.ip_csum_bad++;
		return;
	}
	uint8_t *f;
	struct ns_pkt *p = st->dev->alloc(st->dev_ctx, &f);
	if (!p) {
		st->xs.tx_nobuf++;
		return;
	}
	uint8_t *o = f + NS_ETH_HLEN + NS_IP_HLEN;
	memcpy(o, l4, len);
	struct ns_icmp_hdr *oc = (struct ns_icmp_hdr *)o;
	oc->type = NS_ICMP_ECHO_REPLY;
	oc->csum = 0;
	oc->csum = htons(ns_csum_fold(ns_csum_add(0, o, len)));
	ip_build(st, f, ih->src, NS_IPPROTO_ICMP, (uint16_t)len);
	st->xs.icmp_echo++;
	ip_output(st, p, f, (uint16_t)(NS_ETH_HLEN + NS_IP_HLEN + len));
}

static void ip_input(struct ns_stack *st, struct ns_pkt *p, const uint8_t *f, uint32_t len,
		     unsigned rx_flags)
{
	if (len < NS_ETH_HLEN + NS_IP_HLEN) {
		st->xs.ip_bad++;
		return;
	}
	const struct ns_ip_hdr *ih = (const struct ns_ip_hdr *)(f + NS_ETH_HLEN);
	uint32_t hl = (uint32_t)(ih->vihl & 0x0f) * 4;
	uint32_t tl = ntohs(ih->len);
	/* RFC 1122 3.2.1: version, header length, total length within the frame. */
	if ((ih->vihl >> 4) != 4 || hl < NS_IP_HLEN || tl < hl || tl > len - NS_ETH_HLEN) {
		st->xs.ip_bad++;
		return;
	}
	if (!(rx_flags & NS_RXF_IP_CSUM_OK) &&
	    ns_csum_fold(ns_csum_add(0, ih, hl)) != 0) {
		st->xs.ip_csum_bad++;
		return;
	}
	if (ih->dst != st->cfg.ip) {
		st->xs.ip_not_us++;
		return;
	}
	uint32_t src = ih->src;
	if (src == 0xffffffffu || (ntohl(src) >> 28) == 0xe || src == 0 ||
	    (src | st->cfg.netmask) == 0xffffffffu) {
		st->xs.ip_bad++; /* broadcast/multicast sources never start a conversation */
		return;
	}
	if (ntohs(ih->frag) & (NS_IP_MF | NS_IP_OFFMASK)) {
		st->xs.ip_frag_drop++;
		return;
	}
	arp_confirm(st, src, ((const struct ns_eth_hdr *)f)->src);
	const uint8_t *l4 = (const uint8_t *)ih + hl;
	uint32_t l4len = tl - hl;
	switch (ih->proto) {
	case NS_IPPROTO_TCP:
		tcp_input(st, p, ih, l4, l4len, rx_flags);
		break;
	case NS_IPPROTO_ICMP:
		icmp_input(st, ih, l4, l4len);
		break;
	default:
		st->xs.ip_bad++;
		break;
	}
}

void ns_stack_input(struct ns_stack *st, struct ns_pkt *p, const uint8_t *frame, uint32_t len,
		    unsigned rx_flags)
{
	st->xs.rx_frames++;
	if (len < NS_ETH_HLEN) {
		st->xs.eth_drop++;
		return;
	}
	const struct ns_eth_hdr *eh = (const struct ns_eth_hdr *)frame;
	uint8_t dst[NS_ETH_ALEN];
	memcpy(dst, eh->dst, NS_ETH_ALEN);
	if (memcmp(dst, st->cfg.mac, NS_ETH_ALEN) != 0 && memcmp(dst, bcast_mac, NS_ETH_ALEN) != 0) {
		st->xs.eth_drop++;
		return;
	}
	switch (ntohs(eh->type)) {
	case NS_ETH_P_IP:
		ip_input(st, p, frame, len, rx_flags);
		break;
	case NS_ETH_P_ARP:
		arp_input(st, frame, len, rx_flags);
		break;
	default:
		st->xs.eth_drop++;
		break;
	}
}

void ns_stack_arp_fini(struct ns_stack *st)
{
	for (unsigned i = 0; i < NS_ARP_SLOTS; i++) {
		if (st->arp[i].held) {
			st->dev->release(st->dev_ctx, st->arp[i].held);
			st->arp[i].held = NULL;
		}
	}
}

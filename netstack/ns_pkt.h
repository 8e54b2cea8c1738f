/* SPDX-License-Identifier: MIT */
/*
 * The packet-buffer abstraction between Tachyon's TCP/IP stack and the device underneath it,
 * plus the wire formats the stack speaks (Ethernet, ARP, IPv4, ICMP, TCP) and the Internet
 * checksum.
 *
 * The stack never sees an rte_mbuf: a packet is an opaque struct ns_pkt with a contiguous data
 * area, handled through struct ns_dev_ops. The DPDK backend maps these onto mbufs (hold = one
 * more reference, release = rte_pktmbuf_free); the unit tests and the fuzz target map them onto
 * an in-memory fake. That keeps the protocol core testable without EAL.
 *
 * Header structs are packed (alignment 1): frames arrive at any offset and Ethernet puts the IP
 * header on a 2-byte boundary. Multi-byte fields are in network byte order; never take the
 * address of a field.
 */
#ifndef NS_PKT_H
#define NS_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Opaque device buffer (an rte_mbuf in the DPDK backend). */
struct ns_pkt;

/*
 * What the stack needs from the device. All calls are worker-local; ctx is the device's.
 *   alloc:   a fresh buffer with room for NS_PKT_ROOM bytes, its data pointer in *data;
 *            NULL when the pool is empty (the stack counts a drop).
 *   tx:      queue the first len bytes for transmission; takes ownership of p.
 *   hold:    take one more reference on a received buffer (zero-copy queues).
 *   release: drop one reference taken by hold (or the last one).
 */
struct ns_dev_ops {
	struct ns_pkt *(*alloc)(void *ctx, uint8_t **data);
	void (*tx)(void *ctx, struct ns_pkt *p, uint16_t len);
	void (*hold)(void *ctx, struct ns_pkt *p);
	void (*release)(void *ctx, struct ns_pkt *p);
};

#define NS_PKT_ROOM 1536 /* largest frame the stack builds: 14 + MTU 1500, rounded up */

/* Receive-side facts the device may know (checksum offload); all false means "verify". */
#define NS_RXF_IP_CSUM_OK 0x1
#define NS_RXF_L4_CSUM_OK 0x2
/* A copy of an ARP frame that another worker of the same device received and answers: learn
 * the sender, never reply (one answer per request, not one per worker). */
#define NS_RXF_ARP_LEARN 0x4

#define NS_ETH_ALEN 6
#define NS_ETH_HLEN 14
#define NS_ETH_P_IP 0x0800
#define NS_ETH_P_ARP 0x0806

struct ns_eth_hdr {
	uint8_t dst[NS_ETH_ALEN];
	uint8_t src[NS_ETH_ALEN];
	uint16_t type;
} __attribute__((packed));

#define NS_ARP_REQUEST 1
#define NS_ARP_REPLY 2

struct ns_arp_hdr {
	uint16_t htype; /* 1: Ethernet */
	uint16_t ptype; /* 0x0800 */
	uint8_t hlen;
	uint8_t plen;
	uint16_t op;
	uint8_t sha[NS_ETH_ALEN];
	uint32_t spa;
	uint8_t tha[NS_ETH_ALEN];
	uint32_t tpa;
} __attribute__((packed));

#define NS_IP_HLEN 20
#define NS_IPPROTO_ICMP 1
#define NS_IPPROTO_TCP 6
#define NS_IP_DF 0x4000
#define NS_IP_MF 0x2000
#define NS_IP_OFFMASK 0x1fff

struct ns_ip_hdr {
	uint8_t vihl;
	uint8_t tos;
	uint16_t len;
	uint16_t id;
	uint16_t frag;
	uint8_t ttl;
	uint8_t proto;
	uint16_t csum;
	uint32_t src;
	uint32_t dst;
} __attribute__((packed));

#define NS_ICMP_ECHO_REPLY 0
#define NS_ICMP_ECHO_REQUEST 8

struct ns_icmp_hdr {
	uint8_t type;
	uint8_t code;
	uint16_t csum;
	uint16_t id;
	uint16_t seq;
} __attribute__((packed));

#define NS_TCP_HLEN 20
#define NS_TH_FIN 0x01
#define NS_TH_SYN 0x02
#define NS_TH_RST 0x04
#define NS_TH_PSH 0x08
#define NS_TH_ACK 0x10
#define NS_TH_URG 0x20

#define NS_TCPOPT_EOL 0
#define NS_TCPOPT_NOP 1
#define NS_TCPOPT_MSS 2
#define NS_TCPOPT_WSCALE 3
#define NS_TCPOPT_SACK_OK 4
#define NS_TCPOPT_TS 8

struct ns_tcp_hdr {
	uint16_t sport;
	uint16_t dport;
	uint32_t seq;
	uint32_t ack;
	uint8_t off; /* data offset in 32-bit words, high nibble */
	uint8_t flags;
	uint16_t win;
	uint16_t csum;
	uint16_t urp;
} __attribute__((packed));

/* ---- inline helpers ---------------------------------------------------------------------- */

/* One's-complement sum of len bytes added to sum (not folded). */
static inline uint32_t ns_csum_add(uint32_t sum, const void *buf, size_t len)
{
	const uint8_t *p = (const uint8_t *)buf;
	while (len >= 2) {
		sum += (uint32_t)((p[0] << 8) | p[1]);
		p += 2;
		len -= 2;
	}
	if (len)
		sum += (uint32_t)(p[0] << 8);
	return sum;
}

/* Folds and complements: the value to store (converted with htons by the caller). */
static inline uint16_t ns_csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* The TCP pseudo-header sum; addresses in network byte order, len in host order. */
static inline uint32_t ns_csum_pseudo(uint32_t src, uint32_t dst, uint8_t proto, uint16_t len)
{
	uint32_t sum = 0;
	sum = ns_csum_add(sum, &src, 4);
	sum = ns_csum_add(sum, &dst, 4);
	return sum + proto + len;
}

#ifdef __cplusplus
}
#endif

#endif /* NS_PKT_H */

/* SPDX-License-Identifier: MIT */
/*
 * Flow steering for several workers on one device: which worker core owns a TCP connection.
 *
 * The owner of a flow is decided by one function, ns_steer_owner(ns_rss_hash(tuple)), that
 * every party agrees on: the receive path of the DPDK backend (a frame that arrives on the
 * wrong core is handed to its owner through a ring), the device's RSS where it has one (we
 * program the same key and an indirection table that maps entry i to worker i % n, so most
 * frames arrive on their owner's queue and need no hand-off), and the stack's active open
 * (ns_stack_connect picks a local port whose tuple the opening core owns).
 *
 * The hash is Toeplitz (the RSS hash of Microsoft's RSS specification, which NICs implement)
 * with the symmetric key 0x6d5a repeated (Woo and Park, "Scalable TCP Session Monitoring with
 * Symmetric Receive-side Scaling", 2012). A key with a 16-bit period makes the 32-bit key
 * window at input bit i depend on i mod 16 only, so the hash of the 96-bit input (source
 * address, destination address, source port, destination port) depends only on the XOR of
 * its six 16-bit words: swapping source and destination does not change it, and a frame and
 * its answer land on the same core. It also makes the software hash cheap: 16 steps.
 */
#include <arpa/inet.h>

#include "ns_stack.h"

void ns_rss_key(uint8_t *key, size_t len)
{
	for (size_t i = 0; i < len; i++)
		key[i] = (i & 1) ? 0x5a : 0x6d;
}

uint32_t ns_rss_hash(uint32_t saddr, uint32_t daddr, uint16_t sport, uint16_t dport)
{
	/* The 16-bit words of the input in wire order, folded: input bit i lands on fold bit
	 * i mod 16, counted from the most significant bit as Toeplitz counts them. */
	uint32_t s = ntohl(saddr), d = ntohl(daddr);
	uint16_t fold = (uint16_t)((s >> 16) ^ s ^ (d >> 16) ^ d ^ sport ^ dport);
	/* K(j): the 32 key bits starting at bit j (j < 16) of 0x6d5a6d5a6d5a... */
	const uint64_t k = 0x6d5a6d5a6d5a6d5aull;
	uint32_t h = 0;
	for (unsigned j = 0; j < 16; j++) {
		if (fold & (0x8000u >> j))
			h ^= (uint32_t)(k >> (32 - j));
	}
	return h;
}

unsigned ns_steer_owner(uint32_t hash, uint32_t reta_mask, unsigned nworkers)
{
	return nworkers > 1 ? (hash & reta_mask) % nworkers : 0;
}

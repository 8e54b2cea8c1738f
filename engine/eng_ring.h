/* SPDX-License-Identifier: MIT */
/*
 * A bounded single-producer / single-consumer ring of fixed-size items: the only way work
 * crosses cores in the engine (worker -> worker, worker <-> control).
 *
 * Layout follows rte_ring: the producer's index and the consumer's index live on separate
 * cache lines, each side keeps a private cache of the other's index so that the shared line
 * is read only when the cached view says the ring is full (producer) or empty (consumer).
 * Items are copied in and out (32 bytes); they carry a pointer when the payload is larger.
 *
 * Threading: exactly one producer thread calls eng_ring_push(), exactly one consumer thread
 * calls eng_ring_pop() / eng_ring_empty(); no locks. Creation and destruction happen while
 * neither side runs.
 */
#ifndef ENG_RING_H
#define ENG_RING_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
/* C++ (unit tests): std::atomic<uint32_t> has the layout of uint32_t on every target we use */
#include <atomic>
#define ENG_ATOMIC_U32 std::atomic<uint32_t>
extern "C" {
#else
#include <stdalign.h>
#include <stdatomic.h>
#define ENG_ATOMIC_U32 _Atomic uint32_t
#endif

#define ENG_CACHE_LINE 64

/* One item. type says what it is; the rest is the type's business. */
struct eng_ritem {
	uint16_t type;
	uint16_t src; /* producing core (the control thread is the last index) */
	uint32_t a;
	uint64_t b;
	uint64_t c;
	void *p;
};

struct eng_ring {
	/* producer's line: tail is written by the producer only */
	alignas(ENG_CACHE_LINE) ENG_ATOMIC_U32 tail;
	uint32_t head_cache; /* producer's view of head */
	/* consumer's line: head is written by the consumer only */
	alignas(ENG_CACHE_LINE) ENG_ATOMIC_U32 head;
	uint32_t tail_cache; /* consumer's view of tail */
	alignas(ENG_CACHE_LINE) uint32_t mask;
#ifndef __cplusplus
	struct eng_ritem slots[];
#endif
};

/* A ring of size slots (a power of two >= 2); NULL on failure. Free with eng_ring_free(). */
struct eng_ring *eng_ring_create(uint32_t size);
void eng_ring_free(struct eng_ring *r);

/* Producer: copies *it in; 0, or -ENOBUFS if the ring is full (nothing written). */
int eng_ring_push(struct eng_ring *r, const struct eng_ritem *it);

/* Consumer: copies up to max items out in FIFO order; returns how many. */
unsigned eng_ring_pop(struct eng_ring *r, struct eng_ritem *out, unsigned max);

/* Consumer: true if nothing is there to pop (reads the producer's index). */
bool eng_ring_empty(struct eng_ring *r);

#ifdef __cplusplus
}
#endif

#endif /* ENG_RING_H */

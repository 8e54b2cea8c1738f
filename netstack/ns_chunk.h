/* SPDX-License-Identifier: MIT */
/*
 * Output chunks, shared by both backends' send queues (ns_kernel.c's per-connection output,
 * ns_tcp.c's send buffer): a chain of heap chunks in two sizes, recycled through per-worker
 * free lists, and the one rule that chooses the size.
 *
 * The rule: a write that starts an empty queue and fits a small chunk gets a small one;
 * everything else fills big ones. Most writes on an idle connection are CONNACKs, PINGRESPs and
 * acks of a few bytes. With only the big size, every connection with a few bytes unsent (or,
 * in the TCP stack, unacknowledged) held 16 KiB of address space and touched a 4 KiB page of
 * it: 100,000 idle connections answered at once (issue #6) pinned hundreds of MB, and the free
 * lists and the allocator kept the pages resident afterwards.
 *
 * A cache belongs to one worker; nothing here locks. Sizes are whole allocations (header
 * included), picked as allocator size classes.
 */
#ifndef NS_CHUNK_H
#define NS_CHUNK_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

struct ns_chunk {
	struct ns_chunk *next;
	uint32_t off; /* first byte not consumed (sent, or acknowledged) */
	uint32_t len; /* bytes stored */
	uint32_t cap; /* bytes data[] holds */
	uint8_t data[];
};

#define NS_CHUNK_CAP(size) ((uint32_t)((size) - offsetof(struct ns_chunk, data)))

struct ns_chunk_cache {
	struct ns_chunk *free[2]; /* [0] small, [1] big */
	unsigned nfree[2];
	unsigned max[2];  /* chunks of each size kept; more are freed */
	uint32_t size[2]; /* allocation sizes, header included */
};

static inline void ns_chunk_cache_init(struct ns_chunk_cache *cc, uint32_t small_size,
				       uint32_t big_size, unsigned small_max, unsigned big_max)
{
	memset(cc, 0, sizeof(*cc));
	cc->size[0] = small_size;
	cc->size[1] = big_size;
	cc->max[0] = small_max;
	cc->max[1] = big_max;
}

/* A chunk of the given size, from the free list or malloc; NULL when out of memory. */
static inline struct ns_chunk *ns_chunk_get(struct ns_chunk_cache *cc, bool big)
{
	struct ns_chunk *ch = cc->free[big];
	if (ch) {
		cc->free[big] = ch->next;
		cc->nfree[big]--;
	} else {
		ch = (struct ns_chunk *)malloc(cc->size[big]);
		if (!ch)
			return NULL;
		ch->cap = NS_CHUNK_CAP(cc->size[big]);
	}
	ch->next = NULL;
	ch->off = 0;
	ch->len = 0;
	return ch;
}

static inline void ns_chunk_put(struct ns_chunk_cache *cc, struct ns_chunk *ch)
{
	bool big = ch->cap > NS_CHUNK_CAP(cc->size[0]);
	if (cc->nfree[big] >= cc->max[big]) {
		free(ch);
		return;
	}
	ch->next = cc->free[big];
	cc->free[big] = ch;
	cc->nfree[big]++;
}

/* Frees the free lists (the chunks of queues are their owners' to put back first). */
static inline void ns_chunk_cache_fini(struct ns_chunk_cache *cc)
{
	for (int big = 0; big < 2; big++) {
		while (cc->free[big]) {
			struct ns_chunk *ch = cc->free[big];
			cc->free[big] = ch->next;
			free(ch);
		}
		cc->nfree[big] = 0;
	}
}

/*
 * Appends total bytes (the sum of iov[].iov_len) to the queue head..tail, filling the tail
 * chunk first. Returns 0, or -ENOMEM with part of the bytes appended (the caller ends the
 * connection: its byte stream is broken).
 */
static inline int ns_chunk_append(struct ns_chunk_cache *cc, struct ns_chunk **head,
				  struct ns_chunk **tail, const struct iovec *iov, unsigned iovcnt,
				  size_t total)
{
	for (unsigned i = 0; i < iovcnt; i++) {
		const uint8_t *src = (const uint8_t *)iov[i].iov_base;
		size_t len = iov[i].iov_len;
		while (len) {
			struct ns_chunk *t = *tail;
			if (!t || t->len == t->cap) {
				/* small only for a write that fits one into an empty queue */
				t = ns_chunk_get(cc, *tail || total > NS_CHUNK_CAP(cc->size[0]));
				if (!t)
					return -ENOMEM;
				if (*tail)
					(*tail)->next = t;
				else
					*head = t;
				*tail = t;
			}
			size_t take = t->cap - t->len;
			if (take > len)
				take = len;
			memcpy(t->data + t->len, src, take);
			t->len += (uint32_t)take;
			src += take;
			len -= take;
		}
	}
	return 0;
}

#endif /* NS_CHUNK_H */

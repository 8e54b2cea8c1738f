/* SPDX-License-Identifier: MIT */
/*
 * MQTT 5 topic alias tables of one connection (see eng_alias.h for the policy).
 *
 * Outbound structure: slots 1..max hold (hash, topic); a bucket array of 2^k >= 2 * max chains
 * the slots by topic hash (indices, 0 ends a chain) and a doubly linked list through the slots
 * orders them from most (head) to least (tail) recently sent. Pick is one hash and one chain
 * walk; commit moves one slot to the head and, when it rebinds an alias, moves the slot from
 * its old chain to the new one. Everything is indices into one allocation.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "eng_alias.h"
#include "eng_internal.h"

/* ---------------------------------------------------------------------------------------------
 * Inbound. Each entry is NULL or a buffer: 2 bytes length, 2 bytes capacity, the topic.
 */
struct eng_alias_in {
	uint16_t cap;   /* aliases 1..cap have an entry */
	uint8_t *ent[]; /* [0..cap], 0 unused */
};

void eng_alias_in_destroy(struct eng_alias_in *t)
{
	if (!t)
		return;
	for (uint32_t i = 0; i <= t->cap; i++)
		free(t->ent[i]);
	free(t);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* Makes *tp cover alias: cap doubles from 4 up to max, so a client's table is remade at most a
 * few times in its life and never holds much more than the aliases it uses. */
static int in_reserve(struct eng_alias_in **tp, uint16_t max, uint16_t alias)
{
	struct eng_alias_in *t = *tp;
	uint32_t old = t ? t->cap : 0, cap = old ? old : 4;

	if (alias <= old)
		return 0;
	while (cap < alias)
		cap *= 2;
	if (cap > max)
		cap = max;
	t = realloc(t, sizeof(*t) + ((size_t)cap + 1) * sizeof(uint8_t *));
	if (!t)
		return -ENOMEM;
	uint32_t from = old ? old + 1 : 0; /* new entries (all of them in a new table) */
	memset(&t->ent[from], 0, (cap + 1 - from) * sizeof(uint8_t *));
	t->cap = (uint16_t)cap;
	*tp = t;
	return 0;
}

int eng_alias_in_set(struct eng_alias_in **tp, uint16_t max, uint16_t alias,
		     const uint8_t *topic, uint32_t len)
{
	if (len > UINT16_MAX)
		return -EINVAL; /* a topic is at most 65535 bytes: the codec never gives more */
	if (alias == 0 || alias > max)
		return -EINVAL;
	if (in_reserve(tp, max, alias) != 0)
		return -ENOMEM;

	struct eng_alias_in *t = *tp;
	uint8_t *e = t->ent[alias];
	if (!e || get16(e + 2) < len) {
		uint32_t cap = len < 32 ? 32 : len;
		uint8_t *n = realloc(e, 4 + cap);
		if (!n)
			return -ENOMEM;
		e = n;
		put16(e + 2, cap);
		t->ent[alias] = e;
	}
	put16(e, len);
	memcpy(e + 4, topic, len);
	return 0;
}

bool eng_alias_in_get(const struct eng_alias_in *t, uint16_t alias, struct eng_str *topic)
{
	if (!t || alias == 0 || alias > t->cap)
		return false;

	const uint8_t *e = t->ent[alias];
	if (!e)
		return false;
	topic->p = e + 4;
	topic->len = get16(e);
	return true;
}

/* ---------------------------------------------------------------------------------------------
 * Outbound.
 */
struct alias_slot {
	uint64_t hash;
	uint16_t len;        /* 0: free */
	uint16_t hnext;      /* next slot in the bucket's chain */
	uint16_t prev, next; /* recency list: prev is more recent */
	uint8_t topic[ENG_ALIAS_TOPIC_MAX];
};

struct eng_alias_out {
	uint16_t max;
	uint16_t used;       /* aliases 1..used are bound */
	uint16_t head, tail; /* most and least recently sent */
	uint32_t mask;       /* buckets - 1 */
	uint16_t *bucket;
	struct alias_slot slot[]; /* [0..max], 0 unused */
};

struct eng_alias_out *eng_alias_out_create(uint16_t max)
{
	uint32_t nb = 2;
	while (nb < 2u * max)
		nb *= 2;
	size_t head = sizeof(struct eng_alias_out) + ((size_t)max + 1) * sizeof(struct alias_slot);
	struct eng_alias_out *t = calloc(1, head + nb * sizeof(uint16_t));
	if (!t)
		return NULL;
	t->max = max;
	t->mask = nb - 1;
	t->bucket = (uint16_t *)(void *)((uint8_t *)t + head);
	return t;
}

void eng_alias_out_destroy(struct eng_alias_out *t)
{
	free(t);
}

void eng_alias_out_pick(const struct eng_alias_out *t, const uint8_t *topic, uint32_t len,
			struct eng_alias_pick *p)
{
	p->known = false;
	p->alias = 0;
	if (len == 0 || len > ENG_ALIAS_TOPIC_MAX)
		return;
	p->hash = eng_hash(topic, len);
	for (uint16_t i = t->bucket[p->hash & t->mask]; i; i = t->slot[i].hnext) {
		const struct alias_slot *s = &t->slot[i];
		if (s->hash == p->hash && s->len == len && memcmp(s->topic, topic, len) == 0) {
			p->alias = i;
			p->known = true;
			return;
		}
	}
	p->alias = t->used < t->max ? (uint16_t)(t->used + 1) : t->tail;
}

static void lru_unlink(struct eng_alias_out *t, uint16_t i)
{
	struct alias_slot *s = &t->slot[i];
	if (s->prev)
		t->slot[s->prev].next = s->next;
	else
		t->head = s->next;
	if (s->next)
		t->slot[s->next].prev = s->prev;
	else
		t->tail = s->prev;
	s->prev = s->next = 0;
}

static void lru_push_head(struct eng_alias_out *t, uint16_t i)
{
	struct alias_slot *s = &t->slot[i];
	s->prev = 0;
	s->next = t->head;
	if (t->head)
		t->slot[t->head].prev = i;
	else
		t->tail = i;
	t->head = i;
}

static void chain_remove(struct eng_alias_out *t, uint16_t i)
{
	uint16_t *pp = &t->bucket[t->slot[i].hash & t->mask];
	while (*pp != i)
		pp = &t->slot[*pp].hnext;
	*pp = t->slot[i].hnext;
	t->slot[i].hnext = 0;
}

void eng_alias_out_commit(struct eng_alias_out *t, const uint8_t *topic, uint32_t len,
			  const struct eng_alias_pick *p)
{
	uint16_t i = p->alias;
	struct alias_slot *s;

	if (!i)
		return;
	s = &t->slot[i];
	if (p->known) {
		if (t->head != i) {
			lru_unlink(t, i);
			lru_push_head(t, i);
		}
		return;
	}
	if (s->len) {
		/* rebinding the least recently sent alias */
		chain_remove(t, i);
		lru_unlink(t, i);
	} else {
		t->used++;
	}
	s->hash = p->hash;
	s->len = (uint16_t)len;
	memcpy(s->topic, topic, len);
	uint16_t *b = &t->bucket[p->hash & t->mask];
	s->hnext = *b;
	*b = i;
	lru_push_head(t, i);
}

/* SPDX-License-Identifier: MIT */
/*
 * The baseline subscription tree of bench_match, in the style of Mosquitto's subs.c:
 *  - a node per level (struct bl_node) owning a copy of its word, with its children in a
 *    per-node chained hash table (uthash-like: Jenkins one-at-a-time hash, doubling buckets);
 *  - a PUBLISH copies the topic and splits it into a malloc'd token array (as
 *    sub__topic_tokenise does), then walks recursively from the root, at every level probing the
 *    children for the word, for "+" and for "#";
 *  - '$' topics skip wildcard children at the root.
 * It records a core mask and count per filter, like the global index, so the two do the same job.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "bench_match_baseline.h"

struct bl_node {
	struct bl_node *hnext; /* chain in the parent's bucket */
	char *word;
	size_t len;
	uint32_t hash;
	struct bl_node **buckets;
	uint32_t nbuckets, nchildren;
	uint64_t mask;
	uint32_t count;
};

struct bl_tree {
	struct bl_node root;
};

static uint32_t bl_hash(const char *s, size_t len)
{
	uint32_t h = 0;

	for (size_t i = 0; i < len; i++) {
		h += (unsigned char)s[i];
		h += h << 10;
		h ^= h >> 6;
	}
	h += h << 3;
	h ^= h >> 11;
	h += h << 15;
	return h;
}

static struct bl_node *bl_find(const struct bl_node *n, const char *w, size_t len, uint32_t h)
{
	if (!n->nbuckets)
		return NULL;
	for (struct bl_node *c = n->buckets[h & (n->nbuckets - 1)]; c; c = c->hnext)
		if (c->hash == h && c->len == len && memcmp(c->word, w, len) == 0)
			return c;
	return NULL;
}

static int bl_grow(struct bl_node *n)
{
	uint32_t nb = n->nbuckets ? n->nbuckets * 2 : 4;
	struct bl_node **b = calloc(nb, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (uint32_t i = 0; i < n->nbuckets; i++)
		for (struct bl_node *c = n->buckets[i], *next; c; c = next) {
			next = c->hnext;
			c->hnext = b[c->hash & (nb - 1)];
			b[c->hash & (nb - 1)] = c;
		}
	free(n->buckets);
	n->buckets = b;
	n->nbuckets = nb;
	return 0;
}

struct bl_tree *bl_create(void)
{
	return calloc(1, sizeof(struct bl_tree));
}

static void bl_free_node(struct bl_node *n)
{
	for (uint32_t i = 0; i < n->nbuckets; i++)
		for (struct bl_node *c = n->buckets[i], *next; c; c = next) {
			next = c->hnext;
			bl_free_node(c);
			free(c->word);
			free(c);
		}
	free(n->buckets);
}

void bl_destroy(struct bl_tree *t)
{
	if (!t)
		return;
	bl_free_node(&t->root);
	free(t);
}

int bl_add(struct bl_tree *t, const char *filter, size_t len, unsigned core)
{
	struct bl_node *n = &t->root;
	const char *p = filter, *end = filter + len;

	for (;;) {
		const char *q = memchr(p, '/', (size_t)(end - p));
		size_t wlen = q ? (size_t)(q - p) : (size_t)(end - p);
		uint32_t h = bl_hash(p, wlen);
		struct bl_node *c = bl_find(n, p, wlen, h);
		if (!c) {
			if (n->nchildren >= n->nbuckets && bl_grow(n) < 0)
				return -ENOMEM;
			c = calloc(1, sizeof(*c));
			if (!c)
				return -ENOMEM;
			c->word = malloc(wlen + 1);
			if (!c->word) {
				free(c);
				return -ENOMEM;
			}
			memcpy(c->word, p, wlen);
			c->word[wlen] = 0;
			c->len = wlen;
			c->hash = h;
			c->hnext = n->buckets[h & (n->nbuckets - 1)];
			n->buckets[h & (n->nbuckets - 1)] = c;
			n->nchildren++;
		}
		n = c;
		if (!q)
			break;
		p = q + 1;
	}
	n->mask |= 1ull << core;
	n->count++;
	return 0;
}

static uint32_t bl_hash_plus, bl_hash_hash;

static void bl_walk(const struct bl_node *n, char **tok, size_t *tlen, uint32_t *th, size_t i,
		    size_t ntok, uint64_t *mask)
{
	if (i == ntok) {
		*mask |= n->mask;
		/* "a/#" also matches "a" */
		const struct bl_node *h = bl_find(n, "#", 1, bl_hash_hash);
		if (h)
			*mask |= h->mask;
		return;
	}
	bool dollar = i == 0 && tok[0][0] == '$';
	const struct bl_node *c = bl_find(n, tok[i], tlen[i], th[i]);
	if (c)
		bl_walk(c, tok, tlen, th, i + 1, ntok, mask);
	if (dollar)
		return;
	c = bl_find(n, "+", 1, bl_hash_plus);
	if (c)
		bl_walk(c, tok, tlen, th, i + 1, ntok, mask);
	c = bl_find(n, "#", 1, bl_hash_hash);
	if (c)
		*mask |= c->mask;
}

uint64_t bl_match(struct bl_tree *t, const char *topic, size_t len)
{
	/* Tokenise as Mosquitto does: a private copy of the topic, split in place, plus a token
	 * array, both allocated per publish. */
	char *copy = malloc(len + 1);
	if (!copy)
		return 0;
	memcpy(copy, topic, len);
	copy[len] = 0;
	size_t ntok = 1;
	for (size_t i = 0; i < len; i++)
		ntok += copy[i] == '/';
	char **tok = malloc(ntok * (sizeof(*tok) + sizeof(size_t) + sizeof(uint32_t)));
	if (!tok) {
		free(copy);
		return 0;
	}
	size_t *tlen = (size_t *)(tok + ntok);
	uint32_t *th = (uint32_t *)(tlen + ntok);
	size_t k = 0;
	char *p = copy;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || copy[i] == '/') {
			copy[i] = 0;
			tok[k] = p;
			tlen[k] = (size_t)(copy + i - p);
			th[k] = bl_hash(p, tlen[k]);
			k++;
			p = copy + i + 1;
		}
	}
	if (!bl_hash_plus) {
		bl_hash_plus = bl_hash("+", 1);
		bl_hash_hash = bl_hash("#", 1);
	}
	uint64_t mask = 0;
	bl_walk(&t->root, tok, tlen, th, 0, ntok, &mask);
	free(tok);
	free(copy);
	return mask;
}

/* SPDX-License-Identifier: MIT */
/*
 * The in-tree baseline of bench_match: a subscription tree built like Mosquitto's
 * (subs.c): one node per filter level, children in a per-node hash table, a recursive walk
 * probing word, '+' and '#' at every level, the topic tokenised (copied, split) per publish.
 * Single-threaded; for comparison only.
 */
#ifndef TACHYON_BENCH_MATCH_BASELINE_H
#define TACHYON_BENCH_MATCH_BASELINE_H

#include <stddef.h>
#include <stdint.h>

struct bl_tree;

struct bl_tree *bl_create(void);
void bl_destroy(struct bl_tree *t);
/* Adds one subscriber of @core on @filter (valid). 0 or -ENOMEM. */
int bl_add(struct bl_tree *t, const char *filter, size_t len, unsigned core);
/* Cores with subscribers matching topic name @topic. */
uint64_t bl_match(struct bl_tree *t, const char *topic, size_t len);

#endif /* TACHYON_BENCH_MATCH_BASELINE_H */

/* SPDX-License-Identifier: MIT */
/*
 * MQTT 5 topic aliases of one connection, both directions. Engine-internal.
 *
 * Inbound (client -> broker): the client sets alias -> topic. The table is made by the first
 * alias the client sets (a connection that never uses aliases, the common idle device, holds
 * none) and covers aliases 1..cap, cap a power of two grown to the highest alias set so far
 * (at most the topic_alias_maximum offered): a client using few aliases holds a small table.
 * An entry's buffer only grows, so a client that keeps re-setting its aliases costs no
 * allocation once its topics and alias numbers have been seen.
 *
 * Outbound (broker -> client): the broker picks aliases for the topics it sends, at most
 * min(client's Topic Alias Maximum, topic_alias_maximum_out) of them. Policy: new topics take
 * free aliases in order 1, 2, ...; once all are taken, the least recently sent topic's alias
 * is given to the new topic (the packet carries topic and alias, so the client rebinds it).
 * Topics longer than ENG_ALIAS_TOPIC_MAX bytes are sent in full, without an alias: every slot
 * keeps its topic inline, so the table is one allocation, made by the first PUBLISH sent to
 * the connection (an idle one holds none), never one per message. Sending is two steps:
 * eng_alias_out_pick() says what to put in the packet without changing anything,
 * eng_alias_out_commit() records it once the transport took the packet, so the table always
 * describes what the client has received, in order.
 *
 * Threading: a table belongs to its connection's worker.
 */
#ifndef ENG_ALIAS_H
#define ENG_ALIAS_H

#include <stdbool.h>
#include <stdint.h>

#include "eng_codec.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest topic the outbound table keeps (bytes); longer ones are sent without an alias. */
#define ENG_ALIAS_TOPIC_MAX 112u

struct eng_alias_in;
struct eng_alias_out;

/* Frees the table (NULL: none made yet). */
void eng_alias_in_destroy(struct eng_alias_in *t);

/* Binds alias (1..max, the maximum the broker offered) to topic (copied), making or growing
 * *t as needed (*t NULL: no alias set yet). 0, or -ENOMEM (*t and the old binding stay). */
int eng_alias_in_set(struct eng_alias_in **t, uint16_t max, uint16_t alias,
		     const uint8_t *topic, uint32_t len);

/* The topic bound to alias (a view valid until the next set of that alias), or false
 * (t may be NULL: nothing set yet). */
bool eng_alias_in_get(const struct eng_alias_in *t, uint16_t alias, struct eng_str *topic);

/* A table for aliases 1..max (max >= 1); NULL when out of memory. */
struct eng_alias_out *eng_alias_out_create(uint16_t max);
void eng_alias_out_destroy(struct eng_alias_out *t);

/* What to send for one topic. alias 0: no alias (send the topic only). known: the client
 * has the alias already (send an empty topic); otherwise send topic and alias. */
struct eng_alias_pick {
	uint64_t hash;
	uint16_t alias;
	bool known;
};

/* Chooses the alias for topic; changes nothing. */
void eng_alias_out_pick(const struct eng_alias_out *t, const uint8_t *topic, uint32_t len,
			struct eng_alias_pick *p);

/* Records that the packet built from p (the latest pick for this table) was sent. */
void eng_alias_out_commit(struct eng_alias_out *t, const uint8_t *topic, uint32_t len,
			  const struct eng_alias_pick *p);

#ifdef __cplusplus
}
#endif

#endif /* ENG_ALIAS_H */

/* SPDX-License-Identifier: MIT */
/*
 * Codec internals shared by the decoder and the encoder: the MQTT 5 property table (type,
 * where each property may appear, whether it may repeat, where it lives in struct eng_props)
 * and the byte-level readers. Not part of the engine's API.
 */
#ifndef ENG_CODEC_INTERNAL_H
#define ENG_CODEC_INTERNAL_H

#include <string.h>

#include "eng_codec.h"

/* Wire types of property values. */
enum eng_pkind {
	ENG_PK_NONE = 0, /* not a property identifier */
	ENG_PK_BYTE,
	ENG_PK_U16,
	ENG_PK_U32,
	ENG_PK_VBI,
	ENG_PK_STR,  /* UTF-8 string */
	ENG_PK_BIN,  /* binary data */
	ENG_PK_PAIR, /* UTF-8 string pair */
};

/* Bit of a place in eng_prop_info.places: packet types, and ENG_PLACE_WILL (bit 0). */
#define ENG_PLACE(t) (1u << (t))

struct eng_prop_info {
	uint8_t kind;    /* enum eng_pkind */
	uint16_t places; /* ENG_PLACE() bits where it may appear */
	uint16_t repeat; /* ENG_PLACE() bits where it may appear more than once */
	uint16_t offset; /* offset of its field in struct eng_props */
};

extern const struct eng_prop_info eng_prop_table[ENG_PROP_ID_MAX + 1];

/* eng_utf8_valid(), and no wildcard ('+', '#'): the characters of a Topic Name. */
bool eng_topic_name_chars_valid(const uint8_t *s, size_t len);

/* Wire size of a single-valued property's value (the identifier byte excluded). */
uint32_t eng_prop_value_size(const struct eng_props *pr, unsigned id);

static inline uint16_t eng_get16(const uint8_t *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline uint32_t eng_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/*
 * Reads a variable byte integer from [*pp, end). Returns 1 and advances on success, 0 if the
 * bytes end first, -1 if it is longer than 4 bytes or not in its minimal form.
 */
static inline int eng_get_vbi(const uint8_t **pp, const uint8_t *end, uint32_t *out)
{
	const uint8_t *p = *pp;
	uint32_t v = 0;
	for (unsigned i = 0; i < 4; i++) {
		if (p + i >= end)
			return 0;
		uint8_t b = p[i];
		v |= (uint32_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			if (b == 0 && i > 0)
				return -1; /* a trailing zero group: not the minimal form */
			*pp = p + i + 1;
			*out = v;
			return 1;
		}
	}
	return -1;
}

#endif /* ENG_CODEC_INTERNAL_H */

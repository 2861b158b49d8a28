/* The string hash of the core's tables: 32-bit FNV-1a, inline because lookups sit on hot paths. */
#ifndef MB_HASH_H
#define MB_HASH_H

#include <ctype.h>
#include <stddef.h>
#include <stdint.h>

#define HASH_INIT 2166136261u

static inline uint32_t hash_byte(uint32_t h, unsigned char c)
{
	return (h ^ c) * 16777619u;
}

static inline uint32_t hash_bytes(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint32_t h = HASH_INIT;

	for (size_t i = 0; i < len; i++)
		h = hash_byte(h, p[i]);
	return h;
}

static inline uint32_t hash_str(const char *s)
{
	uint32_t h = HASH_INIT;

	for (; *s; s++)
		h = hash_byte(h, (unsigned char)*s);
	return h;
}

/* Case-insensitive (ASCII): for names compared with strcasecmp. */
static inline uint32_t hash_str_lower(const char *s)
{
	uint32_t h = HASH_INIT;

	for (; *s; s++)
		h = hash_byte(h, (unsigned char)tolower((unsigned char)*s));
	return h;
}

#endif

/* The hash of the core's tables: FNV-1a, 32 bits (64 for long keys), inline: lookups sit on hot paths. */
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

/* 64 bits, for tables whose keys are long bodies (prepared statements). */
static inline uint64_t hash_bytes64(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 14695981039346656037ull;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

#endif

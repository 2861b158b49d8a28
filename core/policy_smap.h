/* A small string-keyed hash table with chaining, for the policy engine: the counters and the limits cache. */
#ifndef MB_POLICY_SMAP_H
#define MB_POLICY_SMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"

struct sentry {
	struct sentry *next;
	uint32_t hash;
	size_t len;
	double value;
	double expires;		/* monotonic seconds, 0 = never */
	enum policy_result res; /* limits cache */
	struct tenant_limits lim;
	char key[];
};

struct smap {
	struct sentry **buckets;
	size_t n_buckets; /* power of two */
	size_t n;
	size_t max;
};

/* The entry for key, or NULL. */
struct sentry *smap_get(struct smap *m, const char *key, size_t len);
void smap_delete(struct smap *m, const char *key, size_t len);
/* Find or create the entry for key; NULL when the table is full (after dropping expired entries) or out
 * of memory. */
struct sentry *smap_put(struct smap *m, const char *key, size_t len, double now, bool *created);
/* Drop every entry and the buckets. */
void smap_clear(struct smap *m);

#endif

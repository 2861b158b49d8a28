/* A small string-keyed hash table with chaining: the policy counters and the limits cache. */
#include "policy_smap.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"

static struct sentry **smap_slot(struct smap *m, const char *key, size_t len, uint32_t h)
{
	struct sentry **pp = &m->buckets[h & (m->n_buckets - 1)];

	for (; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->hash == h && (*pp)->len == len && memcmp((*pp)->key, key, len) == 0)
			return pp;
	return pp;
}

struct sentry *smap_get(struct smap *m, const char *key, size_t len)
{
	if (m->n_buckets == 0)
		return NULL;
	return *smap_slot(m, key, len, hash_bytes(key, len));
}

static void smap_unlink(struct smap *m, struct sentry **pp)
{
	struct sentry *e = *pp;

	*pp = e->next;
	free(e);
	m->n--;
}

void smap_delete(struct smap *m, const char *key, size_t len)
{
	struct sentry **pp;

	if (m->n_buckets == 0)
		return;
	pp = smap_slot(m, key, len, hash_bytes(key, len));
	if (*pp != NULL)
		smap_unlink(m, pp);
}

/* Drop entries whose expiry has passed. */
static void smap_purge(struct smap *m, double now)
{
	for (size_t i = 0; i < m->n_buckets; i++) {
		struct sentry **pp = &m->buckets[i];

		while (*pp != NULL) {
			if ((*pp)->expires != 0 && (*pp)->expires <= now)
				smap_unlink(m, pp);
			else
				pp = &(*pp)->next;
		}
	}
}

void smap_clear(struct smap *m)
{
	for (size_t i = 0; i < m->n_buckets; i++) {
		while (m->buckets[i] != NULL)
			smap_unlink(m, &m->buckets[i]);
	}
	free(m->buckets);
	m->buckets = NULL;
	m->n_buckets = 0;
	m->n = 0;
}

static bool smap_grow(struct smap *m)
{
	size_t nb = m->n_buckets ? m->n_buckets * 2 : 64;
	struct sentry **b = calloc(nb, sizeof(*b));

	if (b == NULL)
		return false;
	for (size_t i = 0; i < m->n_buckets; i++) {
		struct sentry *e = m->buckets[i];

		while (e != NULL) {
			struct sentry *next = e->next;

			e->next = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
			e = next;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->n_buckets = nb;
	return true;
}

struct sentry *smap_put(struct smap *m, const char *key, size_t len, double now, bool *created)
{
	struct sentry **pp, *e;
	uint32_t h = hash_bytes(key, len);

	*created = false;
	if (m->n_buckets == 0 && !smap_grow(m))
		return NULL;
	pp = smap_slot(m, key, len, h);
	if (*pp != NULL)
		return *pp;
	if (m->n >= m->max) {
		smap_purge(m, now);
		if (m->n >= m->max)
			return NULL;
	}
	if (m->n >= m->n_buckets)
		(void)smap_grow(m);	/* a longer chain will do if it cannot */
	pp = smap_slot(m, key, len, h); /* purge and growth moved entries */
	e = calloc(1, sizeof(*e) + len + 1);
	if (e == NULL)
		return NULL;
	e->hash = h;
	e->len = len;
	memcpy(e->key, key, len);
	e->key[len] = '\0';
	*pp = e;
	m->n++;
	*created = true;
	return e;
}

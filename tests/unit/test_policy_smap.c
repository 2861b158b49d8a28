/* Unit tests of policy_smap.c, the string map of the policy counters and the limits cache. */
#include <stdio.h>
#include <string.h>

#include "policy_smap.h"
#include "unit.h"

int main(void)
{
	struct smap m = { .max = 3 };
	struct sentry *e;
	bool created;
	char key[32];

	UNIT_CHECK(smap_get(&m, "a", 1) == NULL, "empty: nothing found, no buckets needed");
	smap_delete(&m, "a", 1); /* must not crash on an empty map */
	e = smap_put(&m, "a", 1, 0, &created);
	UNIT_CHECK(e && created && strcmp(e->key, "a") == 0, "put: a new entry, its key NUL-terminated");
	e->value = 7;
	e = smap_put(&m, "a", 1, 0, &created);
	UNIT_CHECK(e && !created && e->value == 7, "put: the same key finds the entry");
	UNIT_CHECK(smap_get(&m, "ab", 1) == e, "get: the length bounds the key");
	UNIT_CHECK(smap_get(&m, "ab", 2) == NULL, "get: a longer key is another key");
	e = smap_put(&m, "b\0c", 3, 0, &created);
	UNIT_CHECK(e && created && smap_get(&m, "b", 1) == NULL, "keys: bytes after a zero byte count");
	e->expires = 5;
	e = smap_put(&m, "c", 1, 0, &created);
	UNIT_CHECK(e && created && m.n == 3, "put: up to max entries");
	UNIT_CHECK(smap_put(&m, "d", 1, 4, &created) == NULL && !created,
		   "full: refused while no entry has expired");
	e = smap_put(&m, "d", 1, 5, &created);
	UNIT_CHECK(e && created && smap_get(&m, "b\0c", 3) == NULL, "full: an expired entry makes room");
	smap_delete(&m, "a", 1);
	UNIT_CHECK(smap_get(&m, "a", 1) == NULL && m.n == 2, "delete");
	smap_clear(&m);
	UNIT_CHECK(m.n == 0 && m.n_buckets == 0 && smap_get(&m, "c", 1) == NULL, "clear");

	m.max = 10000;
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "key%d", i);
		e = smap_put(&m, key, strlen(key), 0, &created);
		if (e)
			e->value = i;
	}
	UNIT_EQ_INT(m.n, 1000, "growth: every key stored");
	UNIT_CHECK(m.n_buckets >= 1000, "growth: buckets grow with the entries");
	e = smap_get(&m, "key777", 6);
	UNIT_CHECK(e && e->value == 777, "growth: entries found after rehashing");
	smap_clear(&m);
	return unit_done();
}

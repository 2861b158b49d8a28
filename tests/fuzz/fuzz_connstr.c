/* Fuzz target: libpq-style connection strings of [databases] and [users] entries (connstr_parse). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "connstr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), err[256];
	struct connstr cs;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = 0;
	if (connstr_parse(s, &cs, err, sizeof(err))) {
		for (size_t i = 0; i < cs.n; i++)
			if (!cs.pairs[i].key || !cs.pairs[i].value || !cs.pairs[i].key[0])
				abort();	/* every pair has a non-empty key and a value */
		connstr_free(&cs);
	} else if (!err[0]) {
		abort();	/* a refusal says why */
	}
	free(s);
	return 0;
}

/*
 * Fuzz target: the SQL keyword scan. Properties: every statement advances the cursor and stays inside
 * the text; sqlscan_flags is the OR of the statements' flags; the fast path (sqlscan_plain) agrees with
 * the full scan: a text it takes holds one statement, without flags, of the same kind.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sqlscan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *sql = (const char *)data;
	struct sql_stmt st, first;
	size_t pos = 0, prev;
	unsigned flags = 0;
	int nonempty = 0;
	char kind[SQL_KIND_MAX];

	for (;;) {
		prev = pos;
		if (!sqlscan_next(sql, size, &pos, &st))
			break;
		if (pos <= prev || pos > size)
			abort();	/* no progress, or past the end */
		if (memchr(st.kind, 0, sizeof(st.kind)) == NULL || memchr(st.name, 0, sizeof(st.name)) == NULL)
			abort();
		if (st.kind[0] && nonempty++ == 0)
			first = st;
		flags |= st.flags;
	}
	if (sqlscan_flags(sql, size) != flags)
		abort();
	if (sqlscan_plain(sql, size, kind)) {
		/* one statement (empty ones around it do not count), without flags */
		if (nonempty != 1 || first.flags != 0 || strcmp(first.kind, kind) != 0)
			abort();
	}
	return 0;
}

/* libpq-style "key=value key2='quoted value'" strings, as in [databases] and [users] entries. */
#ifndef MB_CONNSTR_H
#define MB_CONNSTR_H

#include <stdbool.h>
#include <stddef.h>

struct connstr_pair {
	char *key;
	char *value;
};

struct connstr {
	struct connstr_pair *pairs; /* in the order written; a repeated key appears twice */
	size_t n;
};

/*
 * Parse s into out. Pairs are separated by whitespace; spaces around '=' are allowed.
 * A value is either bare (up to the next whitespace) or in single quotes, where \' and ''
 * give a quote and \\ a backslash (any other backslash is kept as is). On failure returns
 * false, leaves out empty and writes what is wrong into err (no file:line prefix).
 */
bool connstr_parse(const char *s, struct connstr *out, char *err, size_t errlen)
	__attribute__((warn_unused_result));
void connstr_free(struct connstr *cs);

#endif

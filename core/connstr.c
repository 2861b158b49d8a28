/* Parser of libpq-style key=value connection strings. */
#include "connstr.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool add_pair(struct connstr *cs, char *key, char *value)
{
	struct connstr_pair *np;

	np = realloc(cs->pairs, (cs->n + 1) * sizeof(*np));
	if (!np)
		return false;
	cs->pairs = np;
	cs->pairs[cs->n].key = key;
	cs->pairs[cs->n].value = value;
	cs->n++;
	return true;
}

void connstr_free(struct connstr *cs)
{
	size_t i;

	if (!cs)
		return;
	for (i = 0; i < cs->n; i++) {
		free(cs->pairs[i].key);
		free(cs->pairs[i].value);
	}
	free(cs->pairs);
	cs->pairs = NULL;
	cs->n = 0;
}

bool connstr_parse(const char *s, struct connstr *out, char *err, size_t errlen)
{
	const char *p = s, *kstart;
	char *key = NULL, *value = NULL, *w;
	size_t klen;

	out->pairs = NULL;
	out->n = 0;
	if (!s)
		return true;

	for (;;) {
		while (isspace((unsigned char)*p))
			p++;
		if (!*p)
			return true;

		kstart = p;
		while (*p && *p != '=' && !isspace((unsigned char)*p))
			p++;
		klen = (size_t)(p - kstart);
		while (isspace((unsigned char)*p))
			p++;
		if (*p != '=') {
			snprintf(err, errlen, "missing '=' after '%.*s'", (int)klen, kstart);
			goto fail;
		}
		if (klen == 0) {
			snprintf(err, errlen, "missing key before '='");
			goto fail;
		}
		p++;
		while (isspace((unsigned char)*p))
			p++;

		key = strndup(kstart, klen);
		/* the unescaped value is never longer than the rest of the input */
		value = w = malloc(strlen(p) + 1);
		if (!key || !value) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		if (*p == '\'') {
			p++;
			for (;;) {
				if (!*p) {
					snprintf(err, errlen, "unterminated quoted value for '%s'", key);
					goto fail;
				}
				if (*p == '\\' && (p[1] == '\'' || p[1] == '\\')) {
					*w++ = p[1];
					p += 2;
				} else if (*p == '\'') {
					if (p[1] != '\'')
						break;
					*w++ = '\'';
					p += 2;
				} else {
					*w++ = *p++;
				}
			}
			p++;
			if (*p && !isspace((unsigned char)*p)) {
				snprintf(err, errlen, "missing space after the quoted value for '%s'", key);
				goto fail;
			}
		} else {
			/* a bare value is literal up to the next whitespace, as in PgBouncer */
			while (*p && !isspace((unsigned char)*p))
				*w++ = *p++;
		}
		*w = '\0';
		if (!add_pair(out, key, value)) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		key = value = NULL;
	}

fail:
	free(key);
	free(value);
	connstr_free(out);
	return false;
}

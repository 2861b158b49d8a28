/* auth_file loading ("user" "secret" lines) and lookup by user name. */
#include "authfile.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* While loading, the file position breaks ties so that a later line for the same user wins. */
struct loading_entry {
	struct auth_entry e;
	size_t order;
};

enum secret_kind authfile_secret_kind(const char *secret)
{
	size_t i;

	if (!secret)
		return SECRET_PLAIN;
	/* PostgreSQL's rule: "md5" and exactly 32 lowercase hex digits */
	if (strncmp(secret, "md5", 3) == 0 && strlen(secret) == 35) {
		for (i = 3; i < 35; i++) {
			if (!strchr("0123456789abcdef", secret[i]))
				return SECRET_PLAIN;
		}
		return SECRET_MD5;
	}
	if (strncmp(secret, "SCRAM-SHA-256$", 14) == 0)
		return SECRET_SCRAM;
	return SECRET_PLAIN;
}

static int cmp_loading(const void *a, const void *b)
{
	const struct loading_entry *x = a, *y = b;
	int c = strcmp(x->e.user, y->e.user);

	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int cmp_find(const void *key, const void *elem)
{
	const struct auth_entry *e = elem;

	return strcmp(key, e->user);
}

/*
 * Read one double-quoted field at *pp into a new string ("" inside is a quote).
 * Returns NULL with a message in err when the field is missing or unterminated.
 */
static char *read_field(const char **pp, const char *what, char *msg, size_t msglen)
{
	const char *p = *pp;
	char *out, *w;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '"') {
		snprintf(msg, msglen, *p ? "expected '\"' to start the %s" : "missing %s", what);
		return NULL;
	}
	p++;
	out = w = malloc(strlen(p) + 1);
	if (!out) {
		snprintf(msg, msglen, "out of memory");
		return NULL;
	}
	for (;;) {
		if (*p == '\0') {
			free(out);
			snprintf(msg, msglen, "unterminated quoted %s", what);
			return NULL;
		}
		if (*p == '"') {
			if (p[1] != '"')
				break;
			p++;
		}
		*w++ = *p++;
	}
	*w = '\0';
	*pp = p + 1;
	return out;
}

void authfile_free(struct authfile *af)
{
	size_t i;

	if (!af)
		return;
	for (i = 0; i < af->n; i++) {
		free(af->entries[i].user);
		free(af->entries[i].secret);
	}
	free(af->entries);
	free(af);
}

struct authfile *authfile_load(const char *path, char *err, size_t errlen)
{
	struct authfile *af;
	struct loading_entry *list = NULL, *nl;
	size_t n = 0, cap = 0, i, j;
	char *buf = NULL;
	size_t bufcap = 0;
	ssize_t len;
	FILE *f = NULL;
	int line = 0;
	char msg[256];

	af = calloc(1, sizeof(*af));
	if (!af) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (!path || !path[0])
		return af;

	f = fopen(path, "re");
	if (!f) {
		snprintf(err, errlen, "%s: could not open auth_file: %s", path, strerror(errno));
		goto fail;
	}
	while ((len = getline(&buf, &bufcap, f)) >= 0) {
		const char *p = buf;
		char *user, *secret;

		line++;
		if (memchr(buf, '\0', (size_t)len)) {
			snprintf(err, errlen, "%s:%d: line contains a NUL byte", path, line);
			goto fail;
		}
		while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
			buf[--len] = '\0';
		while (isspace((unsigned char)*p))
			p++;
		if (!*p || *p == ';' || *p == '#')
			continue;
		user = read_field(&p, "user name", msg, sizeof(msg));
		if (!user) {
			snprintf(err, errlen, "%s:%d: %s", path, line, msg);
			goto fail;
		}
		secret = read_field(&p, "password or secret", msg, sizeof(msg));
		if (!secret) {
			free(user);
			snprintf(err, errlen, "%s:%d: %s", path, line, msg);
			goto fail;
		}
		/* anything after the second field is ignored, as PgBouncer does */
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			nl = realloc(list, cap * sizeof(*list));
			if (!nl) {
				free(user);
				free(secret);
				snprintf(err, errlen, "out of memory");
				goto fail;
			}
			list = nl;
		}
		list[n].e.user = user;
		list[n].e.secret = secret;
		list[n].e.kind = authfile_secret_kind(secret);
		list[n].order = n;
		n++;
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error: %s", path, strerror(errno ? errno : EIO));
		goto fail;
	}
	fclose(f);
	f = NULL;
	free(buf);
	buf = NULL;

	if (n > 0)
		qsort(list, n, sizeof(*list), cmp_loading);
	af->entries = calloc(n ? n : 1, sizeof(*af->entries));
	if (!af->entries) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (i = 0; i < n; i = j) {
		/* several lines for one user: keep the last one */
		for (j = i + 1; j < n && strcmp(list[j].e.user, list[i].e.user) == 0; j++)
			;
		af->entries[af->n++] = list[j - 1].e;
		for (size_t k = i; k < j - 1; k++) {
			free(list[k].e.user);
			free(list[k].e.secret);
		}
	}
	free(list);
	return af;

fail:
	if (f)
		fclose(f);
	free(buf);
	for (i = 0; i < n; i++) {
		free(list[i].e.user);
		free(list[i].e.secret);
	}
	free(list);
	authfile_free(af);
	return NULL;
}

const struct auth_entry *authfile_find(const struct authfile *af, const char *user)
{
	if (!af || !user || af->n == 0)
		return NULL;
	return bsearch(user, af->entries, af->n, sizeof(*af->entries), cmp_find);
}

/* Reader of PgBouncer's ini dialect, with %include, line numbers and no line length limit. */
#include "ini.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

struct ini_state {
	ini_callback cb;
	void *arg;
	char *section;				     /* current section, shared across includes */
	char *open_files[INI_MAX_INCLUDE_DEPTH + 1]; /* real paths of the files being read */
	int depth;
	char *err;
	size_t errlen;
};

static bool read_file(struct ini_state *st, const char *path, const char *from_file, int from_line);

static bool fail_at(struct ini_state *st, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static bool fail_at(struct ini_state *st, const char *file, int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(st->err, st->errlen, "%s:%d: %s", file, line, msg);
	else
		snprintf(st->err, st->errlen, "%s: %s", file, msg);
	return false;
}

static char *trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

static bool has_space(const char *s)
{
	for (; *s; s++) {
		if (isspace((unsigned char)*s))
			return true;
	}
	return false;
}

static bool call(struct ini_state *st, const char *key, const char *value, const char *file, int line)
{
	char msg[1024];

	msg[0] = '\0';
	if (st->cb(st->arg, st->section ? st->section : "", key, value, file, line, msg, sizeof(msg)))
		return true;
	return fail_at(st, file, line, "%s", msg[0] ? msg : "rejected");
}

static bool section_line(struct ini_state *st, char *p, const char *file, int line)
{
	char *close = strchr(p, ']');
	char *name, *rest, *copy;

	if (!close)
		return fail_at(st, file, line, "missing ']' in section header");
	*close = '\0';
	name = trim(p + 1);
	rest = trim(close + 1);
	/* a comment may follow the header, as PgBouncer allows */
	if (*rest && *rest != ';' && *rest != '#')
		return fail_at(st, file, line, "unexpected text after section header: '%s'", rest);
	if (!*name)
		return fail_at(st, file, line, "empty section name");
	copy = strdup(name);
	if (!copy)
		return fail_at(st, file, line, "out of memory");
	free(st->section);
	st->section = copy;
	return call(st, NULL, NULL, file, line);
}

/* The include is looked up next to the including file first, then as given (PgBouncer's cwd rule). */
static char *resolve_include(const char *inc, const char *from_file)
{
	const char *slash;
	char *cand;
	size_t dirlen;

	if (inc[0] == '/')
		return strdup(inc);
	slash = strrchr(from_file, '/');
	if (!slash)
		return strdup(inc);
	dirlen = (size_t)(slash - from_file);
	cand = malloc(dirlen + 1 + strlen(inc) + 1);
	if (!cand)
		return NULL;
	memcpy(cand, from_file, dirlen);
	cand[dirlen] = '/';
	strcpy(cand + dirlen + 1, inc);
	if (access(cand, F_OK) == 0 || access(inc, F_OK) != 0)
		return cand;
	free(cand);
	return strdup(inc);
}

static bool include_line(struct ini_state *st, char *arg, const char *file, int line)
{
	char *inc = trim(arg);
	char *path;
	bool ok;

	if (!*inc)
		return fail_at(st, file, line, "%%include needs a file name");
	path = resolve_include(inc, file);
	if (!path)
		return fail_at(st, file, line, "out of memory");
	ok = read_file(st, path, file, line);
	free(path);
	return ok;
}

static bool key_value_line(struct ini_state *st, char *p, const char *file, int line)
{
	char *key, *eq, *value, *w;

	if (*p == '"') {
		/* SQL-identifier quoting for names with other characters: "" is one quote */
		key = w = ++p;
		for (;;) {
			if (*p == '\0')
				return fail_at(st, file, line, "unterminated quoted name");
			if (*p == '"') {
				if (p[1] != '"')
					break;
				p++;
			}
			*w++ = *p++;
		}
		p++;
		*w = '\0';
		while (isspace((unsigned char)*p))
			p++;
		if (*p != '=')
			return fail_at(st, file, line, "expected '=' after the quoted name \"%s\"", key);
		value = trim(p + 1);
		return call(st, key, value, file, line);
	}

	eq = strchr(p, '=');
	if (!eq)
		return fail_at(st, file, line,
			       "expected 'key = value', '[section]' or '%%include file', got '%s'", p);
	*eq = '\0';
	key = trim(p);
	value = trim(eq + 1);
	if (!*key)
		return fail_at(st, file, line, "missing key before '='");
	if (has_space(key))
		return fail_at(st, file, line, "invalid key '%s' (quote names with spaces: \"%s\")", key,
			       key);
	return call(st, key, value, file, line);
}

static bool parse_line(struct ini_state *st, char *buf, const char *file, int line)
{
	char *p = trim(buf);

	if (!*p || *p == ';' || *p == '#')
		return true;
	if (*p == '[')
		return section_line(st, p, file, line);
	if (strncmp(p, "%include", 8) == 0 && (p[8] == '\0' || isspace((unsigned char)p[8])))
		return include_line(st, p + 8, file, line);
	if (*p == '%')
		return fail_at(st, file, line, "unknown directive '%s'", p);
	return key_value_line(st, p, file, line);
}

static bool read_file(struct ini_state *st, const char *path, const char *from_file, int from_line)
{
	char real[PATH_MAX];
	char *buf = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f;
	int line = 0, i;
	bool ok = true;

	if (st->depth >= INI_MAX_INCLUDE_DEPTH)
		return fail_at(st, from_file, from_line,
			       "%%include nested too deeply (more than %d levels) at '%s'",
			       INI_MAX_INCLUDE_DEPTH, path);
	f = fopen(path, "re");
	if (!f) {
		if (from_file)
			return fail_at(st, from_file, from_line, "could not open included file '%s': %s",
				       path, strerror(errno));
		return fail_at(st, path, 0, "could not open file: %s", strerror(errno));
	}
	if (!realpath(path, real)) {
		fclose(f);
		return fail_at(st, from_file ? from_file : path, from_file ? from_line : 0,
			       "could not resolve '%s': %s", path, strerror(errno));
	}
	for (i = 0; i < st->depth; i++) {
		if (strcmp(st->open_files[i], real) == 0) {
			fclose(f);
			return fail_at(st, from_file, from_line, "%%include loop: '%s' is already being read",
				       path);
		}
	}
	st->open_files[st->depth] = strdup(real);
	if (!st->open_files[st->depth]) {
		fclose(f);
		return fail_at(st, path, 0, "out of memory");
	}
	st->depth++;

	errno = 0;
	while ((n = getline(&buf, &cap, f)) >= 0) {
		char *p = buf;

		line++;
		if (memchr(buf, '\0', (size_t)n)) {
			ok = fail_at(st, path, line, "line contains a NUL byte");
			break;
		}
		if (line == 1 && (unsigned char)p[0] == 0xef && (unsigned char)p[1] == 0xbb &&
		    (unsigned char)p[2] == 0xbf)
			p += 3; /* UTF-8 byte order mark */
		if (!parse_line(st, p, path, line)) {
			ok = false;
			break;
		}
		errno = 0;
	}
	if (ok && ferror(f))
		ok = fail_at(st, path, line + 1, "read error: %s", strerror(errno ? errno : EIO));

	free(buf);
	fclose(f);
	st->depth--;
	free(st->open_files[st->depth]);
	st->open_files[st->depth] = NULL;
	return ok;
}

bool ini_parse_file(const char *path, ini_callback cb, void *arg, char *err, size_t errlen)
{
	struct ini_state st;
	char dummy[1];
	bool ok;

	memset(&st, 0, sizeof(st));
	st.cb = cb;
	st.arg = arg;
	st.err = err && errlen ? err : dummy;
	st.errlen = err && errlen ? errlen : sizeof(dummy);
	st.err[0] = '\0';
	ok = read_file(&st, path, NULL, 0);
	free(st.section);
	return ok;
}

/* Unit tests of the ini reader: comments, long lines, quoted names, %include, errors with file:line. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ini.h"
#include "unit.h"

#define MAX_EVENTS 64

struct event {
	char *section, *key, *value, *file;
	int line;
};

struct recorder {
	struct event ev[MAX_EVENTS];
	int n;
	int fail_at_line; /* callback refuses this line, 0 = never */
};

static char *tmp_paths[64];
static int n_tmp;
static char *tmp_dirs[8];
static int n_dirs;

static char *write_file(const char *path, const char *content)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(content, f) == EOF || fclose(f) != 0) {
		perror(path);
		exit(2);
	}
	tmp_paths[n_tmp++] = strdup(path);
	return tmp_paths[n_tmp - 1];
}

static char *write_tmp(const char *content)
{
	char path[] = "/tmp/mb_test_ini_XXXXXX";
	int fd = mkstemp(path);
	size_t len = strlen(content);

	if (fd < 0 || write(fd, content, len) != (ssize_t)len || close(fd) != 0) {
		perror("mkstemp");
		exit(2);
	}
	tmp_paths[n_tmp++] = strdup(path);
	return tmp_paths[n_tmp - 1];
}

static char *make_dir(void)
{
	char tmpl[] = "/tmp/mb_test_ini_dir_XXXXXX";

	if (!mkdtemp(tmpl)) {
		perror("mkdtemp");
		exit(2);
	}
	tmp_dirs[n_dirs++] = strdup(tmpl);
	return tmp_dirs[n_dirs - 1];
}

static void cleanup(void)
{
	int i;

	for (i = n_tmp - 1; i >= 0; i--) {
		unlink(tmp_paths[i]);
		free(tmp_paths[i]);
	}
	for (i = n_dirs - 1; i >= 0; i--) {
		rmdir(tmp_dirs[i]);
		free(tmp_dirs[i]);
	}
}

static bool record(void *arg, const char *section, const char *key, const char *value, const char *file,
		   int line, char *err, size_t errlen)
{
	struct recorder *r = arg;
	struct event *e;

	if (r->fail_at_line == line) {
		snprintf(err, errlen, "refused '%s'", key ? key : "(section)");
		return false;
	}
	if (r->n >= MAX_EVENTS)
		return true;
	e = &r->ev[r->n++];
	e->section = strdup(section);
	e->key = key ? strdup(key) : NULL;
	e->value = value ? strdup(value) : NULL;
	e->file = strdup(file);
	e->line = line;
	return true;
}

static void rec_free(struct recorder *r)
{
	int i;

	for (i = 0; i < r->n; i++) {
		free(r->ev[i].section);
		free(r->ev[i].key);
		free(r->ev[i].value);
		free(r->ev[i].file);
	}
	memset(r, 0, sizeof(*r));
}

/* The first key/value event with this key, or NULL. */
static struct event *find(struct recorder *r, const char *key)
{
	int i;

	for (i = 0; i < r->n; i++) {
		if (r->ev[i].key && strcmp(r->ev[i].key, key) == 0)
			return &r->ev[i];
	}
	return NULL;
}

static const char *val(struct recorder *r, const char *key)
{
	struct event *e = find(r, key);

	return e ? e->value : NULL;
}

static void test_basic(void)
{
	struct recorder r = { 0 };
	char err[512];
	char *path = write_tmp("; leading comment\n"
			       "early = before any section\n"
			       "[pgbouncer]\n"
			       "  listen_port   =   6432   \n"
			       "server_reset_query = DISCARD ALL; SELECT 1\n"
			       "libinih_quirk = a ;b\n"
			       "# hash comment = not a key\n"
			       "    ; indented comment\n"
			       "hash_in_value = abc # def\n"
			       "empty =\n"
			       "crlf = yes\r\n"
			       "[databases] ; comment after header\n"
			       "\"my db\" = host=x\n"
			       "\"a\"\"b\" = q\n"
			       "foo=bar=baz\n");
	struct event *e;

	UNIT_CHECK(ini_parse_file(path, record, &r, err, sizeof(err)), "basic file parses");
	UNIT_EQ_STR(err, "", "no error text on success");
	e = find(&r, "early");
	UNIT_CHECK(e && strcmp(e->section, "") == 0, "key before any section has section \"\"");
	UNIT_EQ_STR(val(&r, "listen_port"), "6432", "whitespace trimmed around key and value");
	e = find(&r, "listen_port");
	UNIT_EQ_INT(e ? e->line : -1, 4, "line number of listen_port");
	UNIT_EQ_STR(e ? e->section : NULL, "pgbouncer", "section of listen_port");
	UNIT_EQ_STR(e ? e->file : NULL, path, "file of listen_port");
	UNIT_EQ_STR(val(&r, "server_reset_query"), "DISCARD ALL; SELECT 1", "';' inside a value is kept");
	UNIT_EQ_STR(val(&r, "libinih_quirk"), "a ;b", "' ;' inside a value is kept");
	UNIT_CHECK(find(&r, "# hash comment") == NULL && find(&r, "hash") == NULL, "'#' line is a comment");
	UNIT_EQ_STR(val(&r, "hash_in_value"), "abc # def", "'#' inside a value is kept");
	UNIT_EQ_STR(val(&r, "empty"), "", "empty value");
	UNIT_EQ_STR(val(&r, "crlf"), "yes", "CR of CRLF trimmed");
	UNIT_EQ_STR(val(&r, "my db"), "host=x", "quoted name with a space");
	UNIT_EQ_STR(val(&r, "a\"b"), "q", "\"\" inside a quoted name is a quote");
	UNIT_EQ_STR(val(&r, "foo"), "bar=baz", "value keeps later '='");
	e = find(&r, "my db");
	UNIT_EQ_STR(e ? e->section : NULL, "databases", "section after header with trailing comment");
	/* section events: pgbouncer at line 3, databases at line 12 */
	{
		int sections = 0, i;

		for (i = 0; i < r.n; i++) {
			if (!r.ev[i].key) {
				sections++;
				if (strcmp(r.ev[i].section, "databases") == 0)
					UNIT_EQ_INT(r.ev[i].line, 12, "section event carries its line");
			}
		}
		UNIT_EQ_INT(sections, 2, "one event per section header");
	}
	rec_free(&r);
}

static void test_long_line(void)
{
	struct recorder r = { 0 };
	char err[512];
	size_t n = 10000, i;
	char *content = malloc(n + 64);
	char *path;
	const char *v;

	strcpy(content, "[s]\nlong = ");
	for (i = 0; i < n; i++)
		content[11 + i] = (char)('a' + i % 26);
	strcpy(content + 11 + n, "\nafter = 1\n");
	path = write_tmp(content);

	UNIT_CHECK(ini_parse_file(path, record, &r, err, sizeof(err)), "file with a 10 KB line parses");
	v = val(&r, "long");
	UNIT_EQ_INT(v ? (long long)strlen(v) : -1, (long long)n, "10 KB value arrives whole");
	UNIT_CHECK(v && v[n - 1] == (char)('a' + (n - 1) % 26), "last byte of the long value is right");
	UNIT_EQ_INT(find(&r, "after") ? find(&r, "after")->line : -1, 3, "line count goes on after it");
	rec_free(&r);
	free(content);
}

static void test_errors(void)
{
	struct recorder r = { 0 };
	char err[512], expect[1024];
	char *path;

	path = write_tmp("[s]\na = 1\nthis line has no equals sign\n");
	UNIT_CHECK(!ini_parse_file(path, record, &r, err, sizeof(err)), "line without '=' fails");
	snprintf(expect, sizeof(expect),
		 "%s:3: expected 'key = value', '[section]' or '%%include file', got "
		 "'this line has no equals sign'",
		 path);
	UNIT_EQ_STR(err, expect, "error names file:line and the line");
	rec_free(&r);

	path = write_tmp("[s]\n[broken\n");
	UNIT_CHECK(!ini_parse_file(path, record, &r, err, sizeof(err)), "missing ']' fails");
	snprintf(expect, sizeof(expect), "%s:2: missing ']' in section header", path);
	UNIT_EQ_STR(err, expect, "missing ']' message");
	rec_free(&r);

	path = write_tmp("[s] junk\n");
	UNIT_CHECK(!ini_parse_file(path, record, &r, err, sizeof(err)), "text after section header fails");
	rec_free(&r);

	path = write_tmp("[s]\n = value\n");
	UNIT_CHECK(!ini_parse_file(path, record, &r, err, sizeof(err)), "empty key fails");
	snprintf(expect, sizeof(expect), "%s:2: missing key before '='", path);
	UNIT_EQ_STR(err, expect, "empty key message");
	rec_free(&r);

	path = write_tmp("[s]\nlisten port = 1\n");
	UNIT_CHECK(!ini_parse_file(path, record, &r, err, sizeof(err)), "unquoted key with a space fails");
	rec_free(&r);

	path = write_tmp("[s]\n\"open = 1\n");
	UNIT_CHECK(!ini_parse_file(path, record, &r, err, sizeof(err)), "unterminated quoted name fails");
	snprintf(expect, sizeof(expect), "%s:2: unterminated quoted name", path);
	UNIT_EQ_STR(err, expect, "unterminated quoted name message");
	rec_free(&r);

	path = write_tmp("[s]\n%define x\n");
	UNIT_CHECK(!ini_parse_file(path, record, &r, err, sizeof(err)), "unknown directive fails");
	rec_free(&r);

	path = write_tmp("[s]\na = 1\nb = 2\n");
	r.fail_at_line = 3;
	UNIT_CHECK(!ini_parse_file(path, record, &r, err, sizeof(err)), "callback refusal stops the parse");
	snprintf(expect, sizeof(expect), "%s:3: refused 'b'", path);
	UNIT_EQ_STR(err, expect, "callback message gets the file:line prefix");
	UNIT_EQ_INT(r.n, 2, "events before the refusal were delivered");
	rec_free(&r);

	UNIT_CHECK(!ini_parse_file("/tmp/mb_test_ini_does_not_exist.ini", record, &r, err, sizeof(err)),
		   "missing file fails");
	UNIT_CHECK(strncmp(err, "/tmp/mb_test_ini_does_not_exist.ini: could not open file", 56) == 0,
		   "missing file message names the file");
	rec_free(&r);
}

static void test_include(void)
{
	struct recorder r = { 0 };
	char err[1024], expect[2048], p[PATH_MAX], cwd[PATH_MAX];
	char *dir = make_dir(), *other = make_dir();
	char *main_path, *sub_path, *a, *b;
	struct event *e;

	snprintf(p, sizeof(p), "%s/sub.ini", dir);
	sub_path = write_file(p, "; included\nsub_key = from sub\n[databases]\ndb1 = host=h\n");
	snprintf(p, sizeof(p), "%s/main.ini", dir);
	main_path = write_file(p, "[pgbouncer]\nbefore = 1\n%include sub.ini\nafter = 2\n");

	/* run from another directory: the include must be found next to main.ini */
	if (!getcwd(cwd, sizeof(cwd)) || chdir(other) != 0) {
		perror("chdir");
		exit(2);
	}
	UNIT_CHECK(ini_parse_file(main_path, record, &r, err, sizeof(err)), "%include relative to the file");
	e = find(&r, "sub_key");
	UNIT_EQ_STR(e ? e->value : NULL, "from sub", "included key delivered");
	UNIT_EQ_STR(e ? e->file : NULL, sub_path, "included key reports the included file");
	UNIT_EQ_INT(e ? e->line : -1, 2, "included key reports its own line");
	UNIT_EQ_STR(e ? e->section : NULL, "pgbouncer", "section carries into the included file");
	e = find(&r, "after");
	UNIT_EQ_STR(e ? e->section : NULL, "databases", "section set in the include stays after it");
	UNIT_EQ_INT(e ? e->line : -1, 4, "line numbers of the including file resume");
	UNIT_EQ_STR(e ? e->file : NULL, main_path, "file name of the including file resumes");
	rec_free(&r);

	/* PgBouncer's rule as fallback: relative to the current directory */
	snprintf(p, sizeof(p), "%s/cwd.ini", other);
	write_file(p, "cwd_key = found via cwd\n");
	snprintf(p, sizeof(p), "%s/main2.ini", dir);
	main_path = write_file(p, "[x]\n%include cwd.ini\n");
	UNIT_CHECK(ini_parse_file(main_path, record, &r, err, sizeof(err)), "%include falls back to the cwd");
	UNIT_EQ_STR(val(&r, "cwd_key"), "found via cwd", "key from the cwd include");
	rec_free(&r);
	if (chdir(cwd) != 0) {
		perror("chdir");
		exit(2);
	}

	/* a loop: a -> b -> a */
	snprintf(p, sizeof(p), "%s/a.ini", dir);
	a = write_file(p, "[s]\nka = 1\n%include b.ini\n");
	snprintf(p, sizeof(p), "%s/b.ini", dir);
	b = write_file(p, "kb = 1\n\n%include a.ini\n");
	UNIT_CHECK(!ini_parse_file(a, record, &r, err, sizeof(err)), "%include loop fails");
	snprintf(expect, sizeof(expect), "%s:3: %%include loop: '%s/a.ini' is already being read", b, dir);
	UNIT_EQ_STR(err, expect, "loop error names the including file and line");
	rec_free(&r);

	snprintf(p, sizeof(p), "%s/self.ini", dir);
	a = write_file(p, "%include self.ini\n");
	UNIT_CHECK(!ini_parse_file(a, record, &r, err, sizeof(err)), "file including itself fails");
	UNIT_CHECK(strstr(err, "%include loop") != NULL, "self include reported as a loop");
	rec_free(&r);

	snprintf(p, sizeof(p), "%s/missing.ini", dir);
	a = write_file(p, "[s]\n%include nope.ini\n");
	UNIT_CHECK(!ini_parse_file(a, record, &r, err, sizeof(err)), "missing include fails");
	snprintf(expect, sizeof(expect), "%s:2: could not open included file", a);
	UNIT_CHECK(strncmp(err, expect, strlen(expect)) == 0, "missing include names file:line");
	rec_free(&r);

	snprintf(p, sizeof(p), "%s/noname.ini", dir);
	a = write_file(p, "%include   \n");
	UNIT_CHECK(!ini_parse_file(a, record, &r, err, sizeof(err)), "%include without a name fails");
	rec_free(&r);

	/* a chain deeper than the limit, without a loop */
	{
		int i, depth = INI_MAX_INCLUDE_DEPTH + 2;
		char content[PATH_MAX + 32];

		for (i = 0; i < depth; i++) {
			snprintf(p, sizeof(p), "%s/chain%d.ini", dir, i);
			if (i + 1 < depth)
				snprintf(content, sizeof(content), "%%include chain%d.ini\n", i + 1);
			else
				snprintf(content, sizeof(content), "[s]\nk = v\n");
			write_file(p, content);
		}
		snprintf(p, sizeof(p), "%s/chain0.ini", dir);
		UNIT_CHECK(!ini_parse_file(p, record, &r, err, sizeof(err)), "too deep include chain fails");
		UNIT_CHECK(strstr(err, "nested too deeply") != NULL, "depth error message");
		rec_free(&r);
	}
}

int main(void)
{
	test_basic();
	test_long_line();
	test_errors();
	test_include();
	cleanup();
	return unit_done();
}

/* Unit tests of auth_file parsing: secret kinds, quoting, comments, duplicates, errors, lookup. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "authfile.h"
#include "unit.h"

#define MD5_SECRET "md545f2603610af569b6155c45067268c6b"
#define SCRAM_SECRET "SCRAM-SHA-256$4096:c2FsdHNhbHQ=$c3RvcmVka2V5c3RvcmVka2V5:c2VydmVya2V5c2VydmVya2V5"

static char *tmp_paths[32];
static int n_tmp;

static char *write_tmp(const char *content)
{
	char path[] = "/tmp/mb_test_authfile_XXXXXX";
	int fd = mkstemp(path);
	size_t len = strlen(content);

	if (fd < 0 || write(fd, content, len) != (ssize_t)len || close(fd) != 0) {
		perror("mkstemp");
		exit(2);
	}
	tmp_paths[n_tmp++] = strdup(path);
	return tmp_paths[n_tmp - 1];
}

static void cleanup(void)
{
	int i;

	for (i = n_tmp - 1; i >= 0; i--) {
		unlink(tmp_paths[i]);
		free(tmp_paths[i]);
	}
}

static void test_kinds(void)
{
	UNIT_EQ_INT(authfile_secret_kind("secret"), SECRET_PLAIN, "plain password");
	UNIT_EQ_INT(authfile_secret_kind(MD5_SECRET), SECRET_MD5, "md5 + 32 hex");
	UNIT_EQ_INT(authfile_secret_kind("md545f2603610af569b6155c45067268c6"), SECRET_PLAIN,
		    "md5 + 31 hex is plain");
	UNIT_EQ_INT(authfile_secret_kind("md545f2603610af569b6155c45067268c6bb"), SECRET_PLAIN,
		    "md5 + 33 hex is plain");
	UNIT_EQ_INT(authfile_secret_kind("md545F2603610AF569B6155C45067268C6B"), SECRET_PLAIN,
		    "upper-case hex is plain (PostgreSQL's rule)");
	UNIT_EQ_INT(authfile_secret_kind("md5zzf2603610af569b6155c45067268c6b"), SECRET_PLAIN,
		    "non-hex is plain");
	UNIT_EQ_INT(authfile_secret_kind(SCRAM_SECRET), SECRET_SCRAM, "SCRAM secret");
	UNIT_EQ_INT(authfile_secret_kind("SCRAM-SHA-256"), SECRET_PLAIN, "prefix without '$' is plain");
	UNIT_EQ_INT(authfile_secret_kind(""), SECRET_PLAIN, "empty is plain");
}

static void test_parse(void)
{
	char err[512];
	const struct auth_entry *e;
	struct authfile *af;
	char *path = write_tmp("; PgBouncer comment\n"
			       "# hash comment\n"
			       "\n"
			       "   \n"
			       "\"plainuser\" \"pw with spaces\"\n"
			       "\"admin\" \"" MD5_SECRET "\" trailing junk is ignored\n"
			       "  \"scram\"\t\"" SCRAM_SECRET "\"\n"
			       "\"quo\"\"te\" \"say \"\"hi\"\"\"\n"
			       "\"crlf\" \"x\"\r\n"
			       "\"dup\" \"first\"\n"
			       "\"empty\" \"\"\n"
			       "\"dup\" \"second\"\n"
			       "\"last\" \"no newline\"");

	af = authfile_load(path, err, sizeof(err));
	if (!UNIT_CHECK(af != NULL, "auth_file loads")) {
		printf("# %s\n", err);
		return;
	}
	UNIT_EQ_INT(af->n, 8, "eight distinct users");
	e = authfile_find(af, "plainuser");
	UNIT_EQ_STR(e ? e->secret : NULL, "pw with spaces", "plain secret with spaces");
	UNIT_EQ_INT(e ? (int)e->kind : -1, SECRET_PLAIN, "plain kind");
	e = authfile_find(af, "admin");
	UNIT_EQ_STR(e ? e->secret : NULL, MD5_SECRET, "md5 secret, rest of line ignored");
	UNIT_EQ_INT(e ? (int)e->kind : -1, SECRET_MD5, "md5 kind");
	e = authfile_find(af, "scram");
	UNIT_EQ_STR(e ? e->secret : NULL, SCRAM_SECRET, "scram secret after leading space and tab");
	UNIT_EQ_INT(e ? (int)e->kind : -1, SECRET_SCRAM, "scram kind");
	e = authfile_find(af, "quo\"te");
	UNIT_EQ_STR(e ? e->secret : NULL, "say \"hi\"", "\"\" is a literal quote in both fields");
	e = authfile_find(af, "crlf");
	UNIT_EQ_STR(e ? e->secret : NULL, "x", "CRLF line");
	e = authfile_find(af, "dup");
	UNIT_EQ_STR(e ? e->secret : NULL, "second", "a later line for the same user wins");
	e = authfile_find(af, "empty");
	UNIT_EQ_STR(e ? e->secret : NULL, "", "empty secret");
	e = authfile_find(af, "last");
	UNIT_EQ_STR(e ? e->secret : NULL, "no newline", "last line without a newline");
	UNIT_CHECK(authfile_find(af, "nobody") == NULL, "unknown user not found");
	UNIT_CHECK(authfile_find(af, "plainuse") == NULL, "prefix of a user not found");
	UNIT_CHECK(authfile_find(af, "# hash comment") == NULL, "comment is not a user");
	authfile_free(af);
}

static void test_many(void)
{
	char err[512], name[32], line[96];
	size_t cap = 2000 * 64, used = 0;
	char *buf = malloc(cap);
	struct authfile *af;
	int i, found = 0, right = 0;

	/* written in reverse order so the loader has to sort */
	for (i = 1999; i >= 0; i--)
		used += (size_t)snprintf(buf + used, cap - used, "\"user%04d\" \"pw%d\"\n", i, i);
	af = authfile_load(write_tmp(buf), err, sizeof(err));
	free(buf);
	if (!UNIT_CHECK(af != NULL, "2000 users load"))
		return;
	UNIT_EQ_INT(af->n, 2000, "2000 entries");
	for (i = 0; i < 2000; i++) {
		const struct auth_entry *e;

		snprintf(name, sizeof(name), "user%04d", i);
		snprintf(line, sizeof(line), "pw%d", i);
		e = authfile_find(af, name);
		found += e != NULL;
		right += e && strcmp(e->secret, line) == 0;
	}
	UNIT_EQ_INT(found, 2000, "every user found");
	UNIT_EQ_INT(right, 2000, "every user has its own secret");
	for (i = 1; i < (int)af->n; i++) {
		if (strcmp(af->entries[i - 1].user, af->entries[i].user) >= 0)
			break;
	}
	UNIT_EQ_INT(i, 2000, "entries are sorted by user");
	authfile_free(af);
}

static void expect_error(const char *content, int line, const char *msg, const char *name)
{
	char err[512], expect[512];
	char *path = write_tmp(content);
	struct authfile *af = authfile_load(path, err, sizeof(err));

	UNIT_CHECK(af == NULL, name);
	snprintf(expect, sizeof(expect), "%s:%d: %s", path, line, msg);
	UNIT_EQ_STR(err, expect, name);
	authfile_free(af);
}

static void test_errors(void)
{
	char err[512];
	struct authfile *af;

	expect_error("\"ok\" \"x\"\nbare secret\n", 2, "expected '\"' to start the user name",
		     "unquoted user");
	expect_error("\"ok\" \"x\"\n\n\"alone\"\n", 3, "missing password or secret", "missing secret");
	expect_error("\"user\" secret\n", 1, "expected '\"' to start the password or secret",
		     "unquoted secret");
	expect_error("\"open user\n", 1, "unterminated quoted user name", "unterminated user");
	expect_error("\"u\" \"open secret\n\"v\" \"w\"\n", 1, "unterminated quoted password or secret",
		     "unterminated secret does not run into the next line");

	af = authfile_load("/tmp/mb_test_authfile_missing", err, sizeof(err));
	UNIT_CHECK(af == NULL, "missing file fails");
	UNIT_CHECK(strstr(err, "/tmp/mb_test_authfile_missing: could not open auth_file") != NULL,
		   "missing file message names the file");

	af = authfile_load(NULL, err, sizeof(err));
	UNIT_CHECK(af != NULL && af->n == 0, "NULL path: empty list");
	UNIT_CHECK(authfile_find(af, "x") == NULL, "lookup in the empty list");
	authfile_free(af);
	af = authfile_load("", err, sizeof(err));
	UNIT_CHECK(af != NULL && af->n == 0, "empty path: empty list");
	authfile_free(af);
}

int main(void)
{
	test_kinds();
	test_parse();
	test_many();
	test_errors();
	cleanup();
	return unit_done();
}

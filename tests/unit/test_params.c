/* Unit tests for core/params.c: parameter sets, the apply query and startup `options` parsing. */
#include "unit.h"

#include "params.h"

static void must_set(struct param_set *set, const char *name, const char *value, bool reported)
{
	if (!params_set(set, name, value, reported)) {
		printf("# params_set(%s) failed: out of memory\n", name);
		abort();
	}
}

/* ---- sets ---- */

static void test_set_get(void)
{
	struct param_set s = { 0 };
	const struct param *p;

	UNIT_CHECK(params_get(&s, "a") == NULL, "empty set: get is NULL");
	UNIT_CHECK(params_find(&s, "a") == NULL, "empty set: find is NULL");

	must_set(&s, "TimeZone", "UTC", true);
	must_set(&s, "search_path", "a, b", false);
	UNIT_EQ_INT(s.n, 2, "two names, two entries");
	UNIT_EQ_STR(params_get(&s, "timezone"), "UTC", "get is case-insensitive (lower)");
	UNIT_EQ_STR(params_get(&s, "TIMEZONE"), "UTC", "get is case-insensitive (upper)");
	UNIT_EQ_STR(params_get(&s, "search_path"), "a, b", "get the second");
	UNIT_CHECK(params_get(&s, "search") == NULL, "a prefix of a name is not the name");
	UNIT_CHECK(params_get(&s, "search_path_x") == NULL, "a longer name is not the name");

	p = params_find(&s, "TIMEZONE");
	if (UNIT_CHECK(p != NULL, "find is case-insensitive")) {
		UNIT_EQ_STR(p->name, "TimeZone", "find: the name keeps its first spelling");
		UNIT_CHECK(p->reported, "find: reported flag kept");
	}
	p = params_find(&s, "search_path");
	UNIT_CHECK(p && !p->reported, "not reported when set unreported");

	/* setting again, any case, updates the one entry */
	must_set(&s, "TIMEZONE", "Europe/Rome", false);
	UNIT_EQ_INT(s.n, 2, "set again in another case: still two entries");
	UNIT_EQ_STR(params_get(&s, "TimeZone"), "Europe/Rome", "set again: new value");
	p = params_find(&s, "timezone");
	UNIT_CHECK(p && p->reported, "set again unreported: reported stays true");
	must_set(&s, "search_path", "a, b", true);
	p = params_find(&s, "search_path");
	UNIT_CHECK(p && p->reported, "same value with reported: becomes reported");
	UNIT_EQ_STR(params_get(&s, "search_path"), "a, b", "same value: value unchanged");
	must_set(&s, "empty", "", false);
	UNIT_EQ_STR(params_get(&s, "EMPTY"), "", "empty value stored as empty, not absent");

	/* many entries: growth keeps them all */
	for (int i = 0; i < 40; i++) {
		char n[16], v[16];
		snprintf(n, sizeof(n), "p%d", i);
		snprintf(v, sizeof(v), "v%d", i);
		must_set(&s, n, v, false);
	}
	UNIT_EQ_INT(s.n, 43, "40 more names: 43 entries");
	UNIT_EQ_STR(params_get(&s, "P0"), "v0", "after growth: first added");
	UNIT_EQ_STR(params_get(&s, "p39"), "v39", "after growth: last added");
	UNIT_EQ_STR(params_get(&s, "timezone"), "Europe/Rome", "after growth: older entry");

	params_clear(&s);
	UNIT_CHECK(s.n == 0 && s.items == NULL && s.cap == 0, "clear empties the set");
	UNIT_CHECK(params_get(&s, "timezone") == NULL, "clear: get is NULL");
	params_clear(&s);
	UNIT_EQ_INT(s.n, 0, "clear twice is fine");
}

static void test_remove(void)
{
	struct param_set s = { 0 };

	must_set(&s, "a", "1", false);
	must_set(&s, "B", "2", true);
	must_set(&s, "c", "3", false);
	params_remove(&s, "b");
	UNIT_EQ_INT(s.n, 2, "remove is case-insensitive");
	UNIT_CHECK(params_get(&s, "B") == NULL, "removed entry is gone");
	UNIT_EQ_STR(params_get(&s, "a"), "1", "remove keeps the others (a)");
	UNIT_EQ_STR(params_get(&s, "c"), "3", "remove keeps the others (c)");
	params_remove(&s, "zzz");
	UNIT_EQ_INT(s.n, 2, "removing a missing name changes nothing");
	params_remove(&s, "A");
	params_remove(&s, "C");
	UNIT_EQ_INT(s.n, 0, "remove the rest");
	params_remove(&s, "a");
	UNIT_EQ_INT(s.n, 0, "remove from an empty set");
	params_clear(&s);
}

static void test_drop_unreported(void)
{
	struct param_set s = { 0 };

	must_set(&s, "u1", "x", false);
	must_set(&s, "TimeZone", "UTC", true);
	must_set(&s, "u2", "y", false);
	must_set(&s, "u3", "z", false);
	must_set(&s, "DateStyle", "ISO, MDY", true);
	params_drop_unreported(&s);
	UNIT_EQ_INT(s.n, 2, "drop_unreported keeps the two reported");
	UNIT_EQ_STR(params_get(&s, "timezone"), "UTC", "drop_unreported: TimeZone kept");
	UNIT_EQ_STR(params_get(&s, "datestyle"), "ISO, MDY", "drop_unreported: DateStyle kept");
	UNIT_CHECK(!params_get(&s, "u1") && !params_get(&s, "u2") && !params_get(&s, "u3"),
		   "drop_unreported: unreported ones gone");
	params_clear(&s);

	must_set(&s, "u1", "x", false);
	must_set(&s, "u2", "y", false);
	params_drop_unreported(&s);
	UNIT_EQ_INT(s.n, 0, "drop_unreported: all unreported, all gone");
	params_clear(&s);
}

static void test_copy(void)
{
	struct param_set src = { 0 }, dst = { 0 };
	const struct param *p;

	must_set(&src, "a", "1", false);
	must_set(&src, "TimeZone", "UTC", true);
	must_set(&dst, "A", "old", false);
	must_set(&dst, "keep", "k", false);
	UNIT_CHECK(params_copy(&dst, &src), "copy succeeds");
	UNIT_EQ_INT(dst.n, 3, "copy merges: a overwritten, TimeZone added, keep kept");
	UNIT_EQ_STR(params_get(&dst, "a"), "1", "copy overwrites a name in another case");
	UNIT_EQ_STR(params_get(&dst, "keep"), "k", "copy keeps what src lacks");
	p = params_find(&dst, "timezone");
	UNIT_CHECK(p && strcmp(p->value, "UTC") == 0 && p->reported, "copy carries value and reported");
	/* a deep copy: changing src leaves dst alone */
	must_set(&src, "a", "2", false);
	UNIT_EQ_STR(params_get(&dst, "a"), "1", "copy is deep");
	params_clear(&src);
	UNIT_EQ_STR(params_get(&dst, "timezone"), "UTC", "copy survives clearing src");
	params_clear(&dst);
}

static void test_name_ok(void)
{
	UNIT_CHECK(params_name_ok("search_path"), "name_ok: search_path");
	UNIT_CHECK(params_name_ok("TimeZone"), "name_ok: TimeZone");
	UNIT_CHECK(params_name_ok("myapp.user_id"), "name_ok: custom a.b");
	UNIT_CHECK(params_name_ok("x1"), "name_ok: digits");
	UNIT_CHECK(!params_name_ok(""), "name_ok: empty is not");
	UNIT_CHECK(!params_name_ok("a b"), "name_ok: space is not");
	UNIT_CHECK(!params_name_ok("a;b"), "name_ok: ';' is not");
	UNIT_CHECK(!params_name_ok("a'b"), "name_ok: quote is not");
	UNIT_CHECK(!params_name_ok("a-b"), "name_ok: '-' is not");
	UNIT_CHECK(!params_name_ok("\"a\""), "name_ok: double quotes are not");
	UNIT_CHECK(!params_name_ok("a\xc3\xa9"), "name_ok: non-ASCII is not");
}

/* ---- params_build_apply ---- */

static void hexdump(const char *label, const uint8_t *p, size_t n)
{
	printf("#   %s (%zu):", label, n);
	for (size_t i = 0; i < n; i++)
		printf(" %02x", p[i]);
	printf("\n");
}

/* out must hold exactly one Query message whose text is sql. */
static void check_query(const struct pktbuf *out, const char *sql, const char *name)
{
	size_t n = strlen(sql), total = 1 + 4 + n + 1;
	uint8_t *exp = malloc(total);
	uint32_t len = (uint32_t)(4 + n + 1);
	bool ok;

	if (!exp)
		abort();
	exp[0] = 'Q';
	exp[1] = (uint8_t)(len >> 24);
	exp[2] = (uint8_t)(len >> 16);
	exp[3] = (uint8_t)(len >> 8);
	exp[4] = (uint8_t)len;
	memcpy(exp + 5, sql, n);
	exp[5 + n] = 0;
	ok = !out->failed && out->len == total && memcmp(out->data, exp, total) == 0;
	if (!UNIT_CHECK(ok, name)) {
		if (out->len > 5 && out->data[out->len - 1] == 0)
			printf("#   got text:      %.*s\n", (int)(out->len - 6), (const char *)out->data + 5);
		printf("#   expected text: %s\n", sql);
		hexdump("got", out->data, out->len);
		hexdump("expected", exp, total);
	}
	free(exp);
}

static void test_apply(void)
{
	struct param_set want = { 0 }, have = { 0 }, defs = { 0 };
	struct pktbuf out;

	pktbuf_init(&out);

	/* nothing anywhere */
	UNIT_CHECK(!params_build_apply(&want, &have, &defs, NULL, &out), "apply: all empty: false");
	UNIT_EQ_INT(out.len, 0, "apply: all empty: no bytes");

	/* one differing value */
	must_set(&want, "search_path", "app", false);
	must_set(&have, "search_path", "public", false);
	UNIT_CHECK(params_build_apply(&want, &have, &defs, NULL, &out), "apply: one differing value: true");
	check_query(&out, "SELECT pg_catalog.set_config(E'search_path', E'app', false);",
		    "apply: one differing value: Query bytes");
	pktbuf_reset(&out);

	/* equal everywhere: nothing to do */
	must_set(&have, "search_path", "app", false);
	UNIT_CHECK(!params_build_apply(&want, &have, &defs, NULL, &out), "apply: equal values: false");
	UNIT_EQ_INT(out.len, 0, "apply: equal values: no bytes");
	params_clear(&want);
	params_clear(&have);

	/* a wanted value the server lacks; quoting of ' and \ */
	must_set(&want, "application_name", "it's a \\ test", false);
	UNIT_CHECK(params_build_apply(&want, &have, &defs, NULL, &out), "apply: quoting: true");
	check_query(&out, "SELECT pg_catalog.set_config(E'application_name', E'it''s a \\\\ test', false);",
		    "apply: quote doubled and backslash doubled inside E''");
	pktbuf_reset(&out);
	params_clear(&want);

	/* the set_config() list is one SELECT, in order */
	must_set(&want, "a.x", "1", false);
	must_set(&want, "TimeZone", "UTC", false);
	must_set(&have, "TimeZone", "Europe/Rome", true);
	UNIT_CHECK(params_build_apply(&want, &have, &defs, NULL, &out), "apply: two values: true");
	check_query(&out,
		    "SELECT pg_catalog.set_config(E'a.x', E'1', false), "
		    "pg_catalog.set_config(E'TimeZone', E'UTC', false);",
		    "apply: two values in one SELECT");
	pktbuf_reset(&out);
	params_clear(&want);
	params_clear(&have);

	/* a wanted name that is not safe SQL is skipped */
	must_set(&want, "a;drop", "x", false);
	UNIT_CHECK(!params_build_apply(&want, &have, &defs, NULL, &out), "apply: unsafe wanted name only: false");
	UNIT_EQ_INT(out.len, 0, "apply: unsafe wanted name only: no bytes");
	params_clear(&want);

	/*
	 * Values left behind by the previous client: RESET unless they equal the
	 * login defaults; reported values with no login default are left alone.
	 */
	must_set(&defs, "DateStyle", "ISO, MDY", true);
	must_set(&defs, "TimeZone", "UTC", true);
	must_set(&have, "DateStyle", "SQL, DMY", true);	/* changed, reported: back to default */
	must_set(&have, "TimeZone", "UTC", true);	/* same as the login value */
	must_set(&have, "work_mem", "64MB", false);	/* left by a SET, no default */
	must_set(&have, "is_superuser", "off", true);	/* announced, not a login default: not ours */
	must_set(&have, "bad name", "x", false);	/* never put into SQL */
	UNIT_CHECK(params_build_apply(&want, &have, &defs, NULL, &out), "apply: left-behind values: true");
	check_query(&out, "RESET DateStyle;RESET work_mem;",
		    "apply: RESET what differs from login, nothing else");
	pktbuf_reset(&out);

	/* the same with a wanted value: SELECT first, then RESETs; a wanted name is never RESET */
	must_set(&want, "work_mem", "32MB", false);
	must_set(&want, "search_path", "s", false);
	UNIT_CHECK(params_build_apply(&want, &have, &defs, NULL, &out), "apply: set and reset: true");
	check_query(&out,
		    "SELECT pg_catalog.set_config(E'work_mem', E'32MB', false), "
		    "pg_catalog.set_config(E'search_path', E's', false);RESET DateStyle;",
		    "apply: set_config list then RESET");
	pktbuf_reset(&out);
	params_clear(&want);
	params_clear(&have);

	/* only values equal to the defaults, or reported and not ours: nothing to do */
	must_set(&have, "DateStyle", "ISO, MDY", true);
	must_set(&have, "server_version", "15.0", true);
	UNIT_CHECK(!params_build_apply(&want, &have, &defs, NULL, &out), "apply: clean server: false");
	UNIT_EQ_INT(out.len, 0, "apply: clean server: no bytes");
	params_clear(&have);

	/* a login default compared case-insensitively by name, by exact value */
	must_set(&have, "datestyle", "iso, mdy", true);
	UNIT_CHECK(params_build_apply(&want, &have, &defs, NULL, &out), "apply: value differs only in case: true");
	check_query(&out, "RESET datestyle;", "apply: values compare exactly");
	pktbuf_reset(&out);

	params_clear(&want);
	params_clear(&have);
	params_clear(&defs);
	pktbuf_free(&out);
}

/* ---- read-only values, restore queries ---- */

static void test_read_only(void)
{
	struct param_set want = { 0 }, have = { 0 }, defs = { 0 }, startup = { 0 };
	struct pktbuf out;

	pktbuf_init(&out);
	UNIT_CHECK(params_read_only("is_superuser") && params_read_only("Server_Version") &&
			   params_read_only("server_encoding") && params_read_only("in_hot_standby"),
		   "read-only: reported values no SET may change");
	UNIT_CHECK(!params_read_only("session_authorization") && !params_read_only("DateStyle"),
		   "read-only: session_authorization and DateStyle can be set");

	/* a role left behind (is_superuser changed) is undone with RESET ROLE, never RESET is_superuser (55P02) */
	must_set(&defs, "is_superuser", "on", true);
	must_set(&defs, "server_version", "15.0", true);
	must_set(&defs, "session_authorization", "postgres", true);
	must_set(&have, "is_superuser", "off", true);
	must_set(&have, "server_version", "15.1", true);	/* cannot be changed: never touched */
	UNIT_CHECK(params_build_apply(&want, &have, &defs, NULL, &out), "read-only: changed is_superuser: true");
	check_query(&out, "RESET ROLE;", "read-only: is_superuser left behind: RESET ROLE only");
	pktbuf_reset(&out);
	must_set(&have, "session_authorization", "r_sa", true);
	UNIT_CHECK(params_build_apply(&want, &have, &defs, NULL, &out), "read-only: session user left behind: true");
	check_query(&out, "RESET ROLE;RESET session_authorization;", "read-only: RESET ROLE and the session user");
	pktbuf_reset(&out);
	params_clear(&have);
	must_set(&have, "server_version", "15.1", true);
	UNIT_CHECK(!params_build_apply(&want, &have, &defs, NULL, &out), "read-only: only read-only values: false");
	UNIT_CHECK(params_differ(&want, &have, &defs, NULL) == false, "read-only: differ agrees");

	/* a wanted read-only value (is_superuser in track_extra_parameters) is never set */
	params_clear(&have);
	must_set(&want, "is_superuser", "off", true);
	UNIT_CHECK(!params_build_apply(&want, &have, &defs, NULL, &out), "read-only: reported is_superuser: nothing to set");
	params_clear(&want);
	/* from a startup packet it is sent, and PostgreSQL refuses it as it would at login */
	must_set(&want, "is_superuser", "off", false);
	UNIT_CHECK(params_build_apply(&want, &have, &defs, NULL, &out), "read-only: startup is_superuser: sent");
	pktbuf_reset(&out);
	params_clear(&want);

	/* restore: the startup values, all of them or one, read-only names never */
	must_set(&startup, "DateStyle", "Postgres, MDY", false);
	must_set(&startup, "role", "r_x", false);
	must_set(&startup, "is_superuser", "on", false);
	UNIT_EQ_INT(params_put_restore(&out, &startup, "datestyle", NULL, "m"), 1, "restore: one name");
	pkt_put_u8(&out, 0);
	UNIT_EQ_STR((const char *)out.data, "SELECT pg_catalog.set_config(E'DateStyle', E'Postgres, MDY', false) AS \"m\"",
		    "restore: one name, with the alias on the first column");
	pktbuf_reset(&out);
	UNIT_EQ_INT(params_put_restore(&out, &startup, NULL, NULL, NULL), 2, "restore: all but read-only names");
	pktbuf_reset(&out);
	UNIT_EQ_INT(params_put_restore(&out, &startup, "work_mem", NULL, NULL), 0, "restore: no startup value: nothing");
	UNIT_EQ_INT(out.len, 0, "restore: nothing written");

	params_clear(&want);
	params_clear(&have);
	params_clear(&defs);
	params_clear(&startup);
	pktbuf_free(&out);
}

/* ---- params_differ with a memo ---- */

/* The memo must never change the answer: every step compares it with the plain look-up. */
static void test_differ_memo(void)
{
	static const char *const names[] = { "DateStyle", "TimeZone", "work_mem", "application_name",
					     "search_path", "is_superuser", "a.b", "bad name" };
	static const char *const values[] = { "ISO, MDY", "UTC", "x", "" };
	struct param_set want = { 0 }, have = { 0 }, defs = { 0 };
	struct param_memo memo = { 0 };
	unsigned seed = 12345;
	int mismatches = 0, trues = 0, falses = 0;

	must_set(&defs, "DateStyle", "ISO, MDY", true);
	must_set(&defs, "TimeZone", "UTC", true);
	must_set(&defs, "application_name", "", true);
	must_set(&have, "DateStyle", "ISO, MDY", true);
	must_set(&have, "TimeZone", "UTC", true);
	must_set(&have, "application_name", "", true);

	/* the targeted case first: a leftover appears after the memo was filled */
	UNIT_CHECK(!params_differ(&want, &have, &defs, &memo), "memo: clean server: false");
	must_set(&have, "work_mem", "64MB", false);
	UNIT_CHECK(params_differ(&want, &have, &defs, &memo), "memo: a SET after the memo was filled: true");
	must_set(&want, "work_mem", "64MB", false);
	UNIT_CHECK(!params_differ(&want, &have, &defs, &memo), "memo: the leftover is wanted: false");
	params_remove(&want, "work_mem");
	UNIT_CHECK(params_differ(&want, &have, &defs, &memo), "memo: no longer wanted: true");
	params_remove(&have, "work_mem");
	UNIT_CHECK(!params_differ(&want, &have, &defs, &memo), "memo: removed: false");
	must_set(&have, "is_superuser", "on", false);
	UNIT_CHECK(params_differ(&want, &have, &defs, &memo), "memo: unreported and no default: true");
	must_set(&have, "is_superuser", "on", true);
	UNIT_CHECK(!params_differ(&want, &have, &defs, &memo), "memo: now reported by the server: false");
	must_set(&defs, "search_path", "public", true);
	must_set(&have, "search_path", "public", true);
	UNIT_CHECK(!params_differ(&want, &have, &defs, &memo), "memo: a new login value: false");
	must_set(&defs, "search_path", "other", true);
	UNIT_CHECK(params_differ(&want, &have, &defs, &memo), "memo: the login value changed: true");

	for (int step = 0; step < 20000; step++) {
		struct param_set *set;
		const char *name, *value;
		bool plain, memoized;

		seed = seed * 1103515245u + 12345u;
		set = (seed >> 8) % 5 == 0 ? &want : (seed >> 8) % 5 == 1 ? &defs : &have;
		name = names[(seed >> 12) % 8];
		value = values[(seed >> 16) % 4];
		switch ((seed >> 20) % 6) {
		case 0:
			params_remove(set, name);
			break;
		case 2:
			params_applied(&want, &have, &defs);	/* what a successful alignment does */
			break;
		case 1:
			if ((seed >> 24) % 16 == 0)
				params_clear(set);
			else
				params_drop_unreported(set);
			break;
		default:
			must_set(set, name, value, (seed >> 24) % 2);
			break;
		}
		plain = params_differ(&want, &have, &defs, NULL);
		memoized = params_differ(&want, &have, &defs, &memo);
		mismatches += plain != memoized;
		trues += plain;
		falses += !plain;
	}
	UNIT_EQ_INT(mismatches, 0, "memo: 20000 random changes, same answer as without memo");
	if (!UNIT_CHECK(trues > 1000 && falses > 1000, "memo: the random walk saw both answers"))
		printf("#   true %d, false %d\n", trues, falses);
	params_clear(&want);
	params_clear(&have);
	params_clear(&defs);
}

/* ---- params_parse_options ---- */

static bool parse(struct param_set *s, const char *options, char *err, size_t errlen)
{
	params_clear(s);
	err[0] = 0;
	return params_parse_options(s, options, err, errlen);
}

static void test_options(void)
{
	struct param_set s = { 0 };
	char err[256];

	UNIT_CHECK(parse(&s, "-c a=b", err, sizeof(err)), "options: -c a=b");
	UNIT_EQ_INT(s.n, 1, "options: -c a=b: one entry");
	UNIT_EQ_STR(params_get(&s, "a"), "b", "options: -c a=b gives a = b");

	UNIT_CHECK(parse(&s, "-ca=b", err, sizeof(err)), "options: -ca=b");
	UNIT_EQ_STR(params_get(&s, "a"), "b", "options: -ca=b gives a = b");

	UNIT_CHECK(parse(&s, "--a=b", err, sizeof(err)), "options: --a=b");
	UNIT_EQ_STR(params_get(&s, "a"), "b", "options: --a=b gives a = b");

	UNIT_CHECK(parse(&s, "--statement-timeout=5", err, sizeof(err)), "options: --statement-timeout=5");
	UNIT_EQ_STR(params_get(&s, "statement_timeout"), "5", "options: '-' in the name becomes '_'");
	UNIT_EQ_INT(s.n, 1, "options: one entry");
	UNIT_CHECK(params_find(&s, "statement_timeout") &&
			   strcmp(params_find(&s, "statement_timeout")->name, "statement_timeout") == 0,
		   "options: the stored name has '_'");

	UNIT_CHECK(parse(&s, "-c application_name=a-b", err, sizeof(err)), "options: '-' in a value");
	UNIT_EQ_STR(params_get(&s, "application_name"), "a-b", "options: '-' in a value stays");

	UNIT_CHECK(parse(&s, "-c search_path=a\\ b", err, sizeof(err)), "options: escaped space");
	UNIT_EQ_STR(params_get(&s, "search_path"), "a b", "options: backslash-space is a space in the value");

	UNIT_CHECK(parse(&s, "-cx=a\\ b --y=c\\ d", err, sizeof(err)),
		   "options: escaped spaces in -cx= and --y=");
	UNIT_EQ_STR(params_get(&s, "x"), "a b", "options: -cx=a\\ b gives 'a b'");
	UNIT_EQ_STR(params_get(&s, "y"), "c d", "options: --y=c\\ d gives 'c d'");

	UNIT_CHECK(parse(&s, "-c x=a\\\\b", err, sizeof(err)), "options: escaped backslash");
	UNIT_EQ_STR(params_get(&s, "x"), "a\\b", "options: double backslash is one backslash");

	UNIT_CHECK(parse(&s, "-c a=b=c", err, sizeof(err)), "options: '=' in the value");
	UNIT_EQ_STR(params_get(&s, "a"), "b=c", "options: split at the first '='");

	UNIT_CHECK(parse(&s, "-c e=", err, sizeof(err)), "options: empty value");
	UNIT_EQ_STR(params_get(&s, "e"), "", "options: empty value stored");

	UNIT_CHECK(parse(&s, "  -c a=1   -cb=2\t--c-d=3 -c search_path=x\\ y\\,z  -c A=4 ", err, sizeof(err)),
		   "options: several, mixed forms and spacing");
	UNIT_EQ_INT(s.n, 4, "options: several: 4 names (A overrides a)");
	UNIT_EQ_STR(params_get(&s, "a"), "4", "options: several: a (last one wins)");
	UNIT_EQ_STR(params_get(&s, "b"), "2", "options: several: b");
	UNIT_EQ_STR(params_get(&s, "c_d"), "3", "options: several: c_d");
	UNIT_EQ_STR(params_get(&s, "search_path"), "x y,z", "options: several: search_path");

	UNIT_CHECK(parse(&s, "", err, sizeof(err)) && s.n == 0, "options: empty string, nothing");
	UNIT_CHECK(parse(&s, "   ", err, sizeof(err)) && s.n == 0, "options: blanks, nothing");

	/* errors */
	UNIT_CHECK(!parse(&s, "verbose", err, sizeof(err)), "options: plain word is an error");
	UNIT_CHECK(strstr(err, "verbose") != NULL, "options: plain word: the message names it");
	UNIT_CHECK(!parse(&s, "-c foo", err, sizeof(err)), "options: -c without '=' is an error");
	UNIT_CHECK(strstr(err, "foo") != NULL, "options: missing '=': the message names it");
	UNIT_CHECK(!parse(&s, "-cfoo", err, sizeof(err)), "options: -cfoo without '=' is an error");
	UNIT_CHECK(!parse(&s, "--foo", err, sizeof(err)), "options: --foo without '=' is an error");
	UNIT_CHECK(!parse(&s, "-c =x", err, sizeof(err)), "options: empty name is an error");
	UNIT_CHECK(!parse(&s, "-c", err, sizeof(err)), "options: -c alone is an error");
	UNIT_CHECK(!parse(&s, "-d 5", err, sizeof(err)), "options: other switches are an error");
	UNIT_CHECK(!parse(&s, "-c a;b=1", err, sizeof(err)), "options: bad name is an error");
	UNIT_CHECK(strstr(err, "a;b") != NULL, "options: bad name: the message names it");
	UNIT_CHECK(!parse(&s, "-c a'b=1", err, sizeof(err)), "options: quote in a name is an error");
	UNIT_CHECK(!parse(&s, "-c a=1 oops", err, sizeof(err)), "options: a bad word after a good one");
	UNIT_CHECK(err[0] != 0, "options: an error fills err");

	/* a tiny err buffer is still a terminated string */
	{
		char small[8];
		memset(small, 'Z', sizeof(small));
		params_clear(&s);
		UNIT_CHECK(!params_parse_options(&s, "verbose", small, sizeof(small)),
			   "options: small err buffer");
		UNIT_CHECK(memchr(small, 0, sizeof(small)) != NULL,
			   "options: small err buffer is terminated");
	}

	/* a 3000-byte value (a long search_path) is accepted; one longer than the word buffer is refused */
	{
		size_t n = 3000;
		char *ok = malloc(n + 8);
		if (!ok)
			abort();
		memcpy(ok, "-c a=", 5);
		memset(ok + 5, 'v', n);
		ok[5 + n] = 0;
		UNIT_CHECK(parse(&s, ok, err, sizeof(err)), "options: 3000-byte value accepted");
		UNIT_EQ_INT((int)strlen(params_get(&s, "a")), 3000, "options: 3000-byte value kept whole");
		free(ok);
	}
	{
		size_t n = 9000;
		char *big = malloc(n + 8);
		if (!big)
			abort();
		memcpy(big, "-c a=", 5);
		memset(big + 5, 'v', n);
		big[5 + n] = 0;
		UNIT_CHECK(!parse(&s, big, err, sizeof(err)), "options: 9000-byte value refused");
		UNIT_CHECK(strstr(err, "too long") != NULL, "options: too long: the message says so");
		free(big);
	}

	/* input read only up to its NUL: the last byte of the text sits before a guard page */
	{
		static const char text[] = "-c a=x\\";
		const char *p = unit_guard_copy(text, sizeof(text));
		UNIT_CHECK(parse(&s, p, err, sizeof(err)), "options: trailing backslash at the end");
		UNIT_EQ_STR(params_get(&s, "a"), "x\\", "options: a trailing backslash stays");
		unit_guard_free(p);
	}
	params_clear(&s);
}

int main(void)
{
	test_set_get();
	test_remove();
	test_drop_unreported();
	test_copy();
	test_name_ok();
	test_apply();
	test_read_only();
	test_differ_memo();
	test_options();
	return unit_done();
}

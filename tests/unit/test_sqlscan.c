/* Unit tests for core/sqlscan.c: statement kinds, session-state flags and names, input at guard pages. */
#include "unit.h"

#include "sqlscan.h"

#define S SQL_SETS_SESSION
#define R SQL_RESETS
#define LSN SQL_LISTEN
#define PRE SQL_PREPARE
#define DEA SQL_DEALLOCATE
#define HLD SQL_HOLD_CURSOR
#define TMP SQL_TEMP_TABLE
#define ADV SQL_ADVISORY_LOCK
#define LOD SQL_LOAD
#define SC (SQL_SETS_SESSION | SQL_SET_CONFIG)
#define INTO SQL_SELECT_INTO
#define OPQ SQL_OPAQUE

/* name NULL: the name is not part of what the case asserts */
struct one_case {
	const char *sql;
	const char *kind;
	unsigned flags;
	const char *name;
};

static const struct one_case one_cases[] = {
	/* SET, session and not */
	{ "SET search_path = a, b", "set", S, "search_path" },
	{ "set search_path to a", "set", S, "search_path" },
	{ "SET SESSION search_path TO a", "set", S, "search_path" },
	{ "SET statement_timeout TO 0", "set", S, "statement_timeout" },
	{ "SET LOCAL search_path TO a", "set", 0, NULL },
	{ "set local statement_timeout = 5", "set", 0, NULL },
	{ "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", "set", 0, NULL },
	{ "SET TRANSACTION READ ONLY", "set", 0, NULL },
	{ "SET CONSTRAINTS ALL DEFERRED", "set", 0, NULL },
	/* changes default_transaction_* for the rest of the session */
	{ "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE", "set", S, NULL },
	{ "set session characteristics as transaction read only", "set", S, NULL },
	{ "SET TIME ZONE 'UTC'", "set", S, "timezone" },
	{ "set time zone 'Europe/Rome'", "set", S, "timezone" },
	{ "SET TimeZone = 'UTC'", "set", S, "timezone" },
	/* SET TIME ZONE DEFAULT / LOCAL are SET timezone TO DEFAULT */
	{ "SET TIME ZONE DEFAULT", "set", S | R, "timezone" },
	{ "SET TIME ZONE LOCAL", "set", S | R, "timezone" },
	{ "SET ROLE admin", "set", S, "role" },
	{ "SET SESSION ROLE admin", "set", S, "role" },
	{ "SET LOCAL ROLE admin", "set", 0, NULL },
	{ "SET SESSION AUTHORIZATION 'bob'", "set", S, "session_authorization" },
	{ "set session authorization bob", "set", S, "session_authorization" },
	{ "SET search_path TO DEFAULT", "set", S | R, "search_path" },
	{ "SET work_mem = DEFAULT", "set", S | R, "work_mem" },
	{ "set work_mem=default", "set", S | R, "work_mem" },
	{ "SET search_path = 'default'", "set", S, "search_path" },	/* a string, not the keyword */
	{ "SET myapp.user_id = 1", "set", S, "myapp.user_id" },
	{ "SET MyApp.Tenant TO 'x'", "set", S, "myapp.tenant" },
	{ "SET a.b = DEFAULT", "set", S | R, "a.b" },
	{ "SET SESSION myapp.x = 1", "set", S, "myapp.x" },
	{ "SET LOCAL myapp.x = 1", "set", 0, NULL },
	{ "SET \"search_path\" TO a", "set", S, "search_path" },
	/* a name whose first part is a keyword of SET is a parameter: SET local.x is a session SET */
	{ "SET local.x = 1", "set", S, "local.x" },
	{ "SET transaction.x TO 2", "set", S, "transaction.x" },
	{ "SET constraints.x = 4", "set", S, "constraints.x" },
	{ "SET time.x = 5", "set", S, "time.x" },
	{ "SET local.x TO DEFAULT", "set", S | R, "local.x" },
	{ "SET local = 1", "set", S, "local" },
	{ "SET session TO 1", "set", S, "session" },
	{ "SET LOCAL local.x = 1", "set", 0, NULL },
	{ "SET SESSION local.x = 1", "set", S, "local.x" },
	/* RESET */
	{ "RESET search_path", "reset", R, "search_path" },
	{ "reset Statement_Timeout", "reset", R, "statement_timeout" },
	{ "RESET ALL", "reset", R, "all" },
	{ "RESET ROLE", "reset", R, "role" },
	{ "RESET SESSION AUTHORIZATION", "reset", R, "session_authorization" },
	{ "RESET TIME ZONE", "reset", R, "timezone" },
	{ "RESET TimeZone", "reset", R, "timezone" },
	{ "RESET myapp.user_id", "reset", R, "myapp.user_id" },
	{ "RESET time.x", "reset", R, "time.x" },
	{ "RESET session.y", "reset", R, "session.y" },
	/* DISCARD: only ALL resets parameters; the others still change the session */
	{ "DISCARD ALL", "discard", R, "all" },
	{ "discard all", "discard", R, "all" },
	{ "DISCARD TEMP", "discard", TMP, "temp" },
	{ "DISCARD PLANS", "discard", TMP, "plans" },
	{ "discard Sequences", "discard", TMP, "sequences" },
	/* LISTEN / UNLISTEN / NOTIFY */
	{ "LISTEN chan", "listen", LSN, "" },
	{ "listen \"Chan\"", "listen", LSN, "" },
	{ "UNLISTEN chan", "unlisten", 0, "" },
	{ "UNLISTEN *", "unlisten", 0, "" },
	{ "NOTIFY chan", "notify", 0, "" },
	{ "NOTIFY chan, 'LISTEN'", "notify", 0, "" },
	/* PREPARE / EXECUTE / DEALLOCATE */
	{ "PREPARE q(int) AS SELECT $1", "prepare", PRE, "" },
	{ "prepare q as select 1", "prepare", PRE, "" },
	{ "PREPARE TRANSACTION 'tx1'", "prepare", 0, "" },
	{ "COMMIT PREPARED 'tx1'", "commit", 0, "" },
	{ "EXECUTE q(1)", "execute", 0, "" },
	{ "DEALLOCATE q", "deallocate", DEA, "q" },
	{ "DEALLOCATE PREPARE Q1", "deallocate", DEA, "q1" },
	{ "deallocate all", "deallocate", DEA, "all" },
	{ "DEALLOCATE PREPARE ALL", "deallocate", DEA, "all" },
	/* cursors */
	{ "DECLARE c CURSOR WITH HOLD FOR SELECT 1", "declare", HLD, "" },
	{ "declare c binary no scroll cursor with hold for select * from t", "declare", HLD, "" },
	{ "DECLARE c CURSOR FOR SELECT 1", "declare", 0, "" },
	{ "DECLARE c CURSOR FOR SELECT hold FROM t", "declare", 0, "" },
	{ "DECLARE c CURSOR WITHOUT HOLD FOR SELECT 1", "declare", 0, "" },
	{ "FETCH 10 FROM c", "fetch", 0, "" },
	{ "CLOSE c", "close", 0, "" },
	/* CREATE TEMP */
	{ "CREATE TEMP TABLE t (a int)", "create", TMP, "" },
	{ "create temporary table t (a int) on commit drop", "create", 0, "" },
	{ "CREATE TEMP TABLE t ON COMMIT DROP AS SELECT 1", "create", 0, "" },
	{ "CREATE TEMP TABLE t (a int) ON COMMIT DELETE ROWS", "create", TMP, "" },
	{ "CREATE TEMP TABLE t (a int) ON COMMIT PRESERVE ROWS", "create", TMP, "" },
	{ "CREATE GLOBAL TEMP TABLE t (a int)", "create", TMP, "" },
	{ "CREATE GLOBAL TEMPORARY TABLE t (a int) ON COMMIT DROP", "create", 0, "" },
	{ "CREATE LOCAL TEMP TABLE t (a int)", "create", TMP, "" },
	{ "CREATE OR REPLACE TEMP VIEW v AS SELECT 1", "create", TMP, "" },
	{ "CREATE TEMP VIEW v AS SELECT 1", "create", TMP, "" },
	{ "CREATE TEMP SEQUENCE s", "create", TMP, "" },
	{ "CREATE TABLE t (a int)", "create", 0, "" },
	{ "CREATE TABLE temp (a int)", "create", 0, "" },
	{ "CREATE UNLOGGED TABLE t (a int)", "create", 0, "" },
	{ "CREATE OR REPLACE FUNCTION f() RETURNS int AS $$ select 1 $$ LANGUAGE sql", "create", 0, "" },
	/* LOAD */
	{ "LOAD 'auto_explain'", "load", LOD, "" },
	{ "load '$libdir/plugins/x'", "load", LOD, "" },
	/* advisory locks and set_config() */
	{ "SELECT pg_advisory_lock(1)", "select", ADV, "" },
	{ "SELECT pg_advisory_lock_shared(7)", "select", ADV, "" },
	{ "SELECT pg_try_advisory_lock(7)", "select", ADV, "" },
	{ "select pg_try_advisory_lock_shared(1, 2)", "select", ADV, "" },
	{ "SELECT pg_catalog.pg_advisory_lock(1)", "select", ADV, "" },
	{ "SELECT PG_ADVISORY_LOCK(1)", "select", ADV, "" },
	{ "WITH x AS (SELECT pg_advisory_lock(1)) SELECT * FROM x", "with", ADV, "" },
	{ "SELECT pg_advisory_xact_lock(1)", "select", 0, "" },
	{ "SELECT pg_try_advisory_xact_lock_shared(1)", "select", 0, "" },
	{ "SELECT pg_advisory_unlock(1)", "select", 0, "" },
	{ "select set_config('a','b',false)", "select", SC, "" },
	{ "SELECT pg_catalog.set_config('search_path', 'x', false)", "select", SC, "" },
	/* a name is called only when "(" follows; a quoted name keeps its case */
	{ "SELECT set_config FROM t", "select", 0, "" },
	{ "SELECT * FROM pg_advisory_lock", "select", 0, "" },
	{ "SELECT \"SET_CONFIG\"('a', 'b', false)", "select", 0, "" },
	{ "SELECT \"PG_ADVISORY_LOCK\"(1)", "select", 0, "" },
	{ "SELECT pg_advisory_lock /* c */ (1)", "select", ADV, "" },
	{ "CREATE TABLE \"PG_TEMP\".t (a int)", "create", 0, "" },
	/* parentheses: the kind is the word inside, and a ';' inside them ends nothing */
	{ "(SELECT 1) UNION (SELECT 2)", "select", 0, "" },
	{ "((VALUES (1)))", "values", 0, "" },
	{ "(SELECT pg_advisory_lock(1))", "select", ADV, "" },
	{ "CREATE RULE r AS ON INSERT TO t DO ALSO (NOTIFY x; NOTIFY y)", "create", 0, "" },
	/* INTO of WITH ... INSERT / MERGE, or inside parentheses, makes no table */
	{ "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x", "with", 0, "" },
	{ "WITH x AS (SELECT 1) MERGE INTO t USING x ON true WHEN MATCHED THEN DELETE", "with", 0, "" },
	{ "SELECT * FROM t WHERE a IN (SELECT b INTO x FROM u)", "select", 0, "" },
	/* a routine's BEGIN ATOMIC body is one statement with its ';' */
	{ "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END",
	  "create", 0, "" },
	{ "CREATE OR REPLACE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC SELECT pg_advisory_lock(1); END", "create", ADV, "" },
	/* SELECT INTO makes a table; into a temporary one it is session state */
	{ "SELECT * INTO TEMP t FROM x", "select", TMP | INTO, "" },
	{ "select a into temporary table t from x", "select", TMP | INTO, "" },
	{ "SELECT 1 AS a INTO LOCAL TEMP t", "select", TMP | INTO, "" },
	{ "SELECT a INTO t FROM x", "select", INTO, "" },
	{ "SELECT a INTO pg_temp.t FROM x", "select", TMP | INTO, "" },
	{ "WITH q AS (SELECT 1) SELECT * INTO TEMP t FROM q", "with", TMP | INTO, "" },
	{ "SELECT 'into temp' FROM x", "select", 0, "" },
	{ "SELECT intotal FROM x", "select", 0, "" },
	/* a temporary table named by its schema */
	{ "CREATE TABLE pg_temp.t (a int)", "create", TMP, "" },
	{ "CREATE TABLE PG_TEMP.t (a int) ON COMMIT DROP", "create", 0, "" },
	{ "INSERT INTO pg_temp_3.t VALUES (1)", "insert", TMP, "" },
	{ "SELECT * FROM pg_temporary", "select", 0, "" },
	{ "SELECT current_setting('search_path')", "select", 0, "" },
	/* words inside strings, comments, dollar quotes and quoted identifiers */
	{ "SELECT 'SET x'", "select", 0, "" },
	{ "select 'LISTEN x; LISTEN y'", "select", 0, "" },
	{ "SELECT 'it''s; LISTEN x'", "select", 0, "" },
	{ "SELECT 'pg_advisory_lock(1)'", "select", 0, "" },
	{ "-- LISTEN\nSELECT 1", "select", 0, "" },
	{ "SELECT 1 -- pg_advisory_lock(1); LISTEN x", "select", 0, "" },
	{ "/* nested /* comments */ LISTEN */ SELECT 1", "select", 0, "" },
	{ "SELECT /* set_config( */ 1", "select", 0, "" },
	{ "SELECT $$ LISTEN x; $$", "select", 0, "" },
	{ "SELECT $tag$ LISTEN $$ ; LISTEN $tag$", "select", 0, "" },
	{ "SELECT $_$ pg_advisory_lock(1) $_$", "select", 0, "" },
	{ "SELECT E'it\\'s SET; LISTEN x'", "select", 0, "" },
	{ "SELECT e'\\\\\\'; LISTEN x'", "select", 0, "" },
	{ "SELECT \"listen\" FROM t", "select", 0, "" },
	{ "SELECT \"a\"\"; LISTEN\" FROM t", "select", 0, "" },
	{ "SELECT $1::text", "select", 0, "" },
	/* what the scan cannot see through: a DO block, a U&"" identifier */
	{ "DO $$BEGIN SET search_path = evil; END$$", "do", OPQ, "" },
	{ "do $$begin perform set_config('app.tenant', 'A', false); end$$", "do", OPQ, "" },
	{ "DO $$BEGIN CREATE TEMP TABLE dt(a int); END$$", "do", OPQ, "" },
	{ "DO $$BEGIN LISTEN ch; END$$", "do", OPQ, "" },
	{ "DO $$BEGIN PERFORM pg_advisory_lock(42); END$$", "do", OPQ, "" },
	{ "DO $$BEGIN SET ROLE r; END$$", "do", OPQ, "" },
	{ "DO $b$BEGIN EXECUTE 'PREPARE p AS SELECT 1'; END$b$", "do", OPQ, "" },
	{ "DO LANGUAGE plpgsql 'BEGIN NULL; END'", "do", OPQ, "" },
	{ "SELECT U&\"\\0073et_config\"('app.tenant','A',false)", "select", OPQ, "" },
	{ "SELECT u&\"pg\\005fadvisory\\005flock\"(42)", "select", OPQ, "" },
	{ "CREATE TABLE U&\"pg\\005ftemp\".t(a int)", "create", OPQ, "" },
	{ "SELECT U&\"d!0061t\" UESCAPE '!' FROM t", "select", OPQ, "" },
	{ "SELECT U&'\\0041' AS a", "select", 0, "" },	/* a string, not a name */
	{ "SELECT a & b FROM t", "select", 0, "" },
	/* EXPLAIN ANALYZE runs its statement */
	{ "EXPLAIN ANALYZE CREATE TEMP TABLE t AS SELECT 1", "explain", TMP, "" },
	{ "explain (analyze, buffers) create temporary table t as select 1", "explain", TMP, "" },
	{ "EXPLAIN ANALYZE VERBOSE SELECT 1 INTO TEMP t", "explain", TMP | INTO, "" },
	{ "EXPLAIN ANALYZE CREATE TEMP TABLE t ON COMMIT DROP AS SELECT 1", "explain", 0, "" },
	{ "EXPLAIN SELECT * FROM t", "explain", 0, "" },
	{ "EXPLAIN (FORMAT JSON) SELECT pg_advisory_lock(1)", "explain", ADV, "" },
	/* quoted identifiers are names, never keywords */
	{ "CREATE TEMP VIEW v(\"on\",\"commit\",\"drop\") AS SELECT 1, 2, 3", "create", TMP, "" },
	{ "CREATE TEMP TABLE t(\"on\" int, \"commit\" int, \"drop\" int)", "create", TMP, "" },
	{ "CREATE TEMP TABLE t AS SELECT 1 AS \"on\", 2 AS \"commit\", 3 AS \"drop\"", "create", TMP, "" },
	{ "CREATE TEMP TABLE t (a int) ON \"commit\" DROP", "create", TMP, "" },
	{ "SELECT 1 INTO \"temp\" t", "select", INTO, "" },
	{ "SELECT \"set_config\"('a', 'b', false)", "select", SC, "" },
	{ "SELECT \"pg_advisory_lock\"(1)", "select", ADV, "" },
	{ "CREATE TABLE \"pg_temp\".t (a int)", "create", TMP, "" },
	{ "RESET \"search_path\"", "reset", R, "search_path" },
	{ "DECLARE c CURSOR \"with\" HOLD FOR SELECT 1", "declare", 0, "" },
	/* leading white space and comments */
	{ "/* hi */ SET a = 1", "set", S, "a" },
	{ "-- c1\n-- c2\n  LISTEN x", "listen", LSN, "" },
	{ "  \n\t LISTEN x", "listen", LSN, "" },
	{ "/* a /* b */ c */ RESET ALL", "reset", R, "all" },
	{ "SET a = 1;", "set", S, "a" },
	{ "LISTEN x ;  \n", "listen", LSN, "" },
	/* statements that change nothing */
	{ "BEGIN", "begin", 0, "" },
	{ "COMMIT", "commit", 0, "" },
	{ "SELECT 1", "select", 0, "" },
	{ "insert into t values ('SET')", "insert", 0, "" },
	{ "VALUES (1)", "values", 0, "" },
	{ "SHOW search_path", "show", 0, "" },
};

static const char *flag_names[] = { "SETS_SESSION", "RESETS", "LISTEN", "PREPARE", "DEALLOCATE",
				    "HOLD_CURSOR", "TEMP_TABLE", "ADVISORY_LOCK", "LOAD", "SET_CONFIG", "SELECT_INTO",
				    "OPAQUE" };

static void print_flags(const char *label, unsigned f)
{
	printf("#   %s flags: 0x%x", label, f);
	for (size_t i = 0; i < sizeof(flag_names) / sizeof(flag_names[0]); i++)
		if (f & (1u << i))
			printf(" %s", flag_names[i]);
	printf("\n");
}

static void check_flags(unsigned got, unsigned exp, const char *name)
{
	if (!UNIT_CHECK(got == exp, name)) {
		print_flags("got", got);
		print_flags("expected", exp);
	}
}

/* Length of a C-string case; the copy at the guard page has no NUL after it. */
static const char *guarded(const char *sql, size_t *len)
{
	*len = strlen(sql);
	return unit_guard_copy(sql, *len);
}

static void test_one(const struct one_case *c)
{
	char label[200], name[300];
	struct sql_stmt st;
	size_t len, pos = 0;
	const char *p = guarded(c->sql, &len);
	bool got;

	/* a readable label: new lines shown as \n */
	size_t j = 0;
	for (const char *s = c->sql; *s && j + 3 < sizeof(label); s++) {
		if (*s == '\n') {
			label[j++] = '\\';
			label[j++] = 'n';
		} else {
			label[j++] = *s;
		}
	}
	label[j] = 0;

	got = sqlscan_next(p, len, &pos, &st);
	snprintf(name, sizeof(name), "[%s] one statement", label);
	if (UNIT_CHECK(got, name)) {
		snprintf(name, sizeof(name), "[%s] kind", label);
		UNIT_EQ_STR(st.kind, c->kind, name);
		snprintf(name, sizeof(name), "[%s] flags", label);
		check_flags(st.flags, c->flags, name);
		if (c->name) {
			snprintf(name, sizeof(name), "[%s] name", label);
			UNIT_EQ_STR(st.name, c->name, name);
		}
		snprintf(name, sizeof(name), "[%s] nothing after it", label);
		got = sqlscan_next(p, len, &pos, &st);
		UNIT_CHECK(!got && pos == len, name);
	}
	snprintf(name, sizeof(name), "[%s] sqlscan_flags", label);
	check_flags(sqlscan_flags(p, len), c->flags, name);
	{
		/* the shortcut may only claim what the full scan finds: one statement, no flags, the same kind */
		char kind[SQL_KIND_MAX] = "unset";
		if (sqlscan_plain(p, len, kind)) {
			snprintf(name, sizeof(name), "[%s] plain: no flags", label);
			check_flags(0, c->flags, name);
			snprintf(name, sizeof(name), "[%s] plain: kind", label);
			UNIT_EQ_STR(kind, c->kind, name);
		} else {
			snprintf(name, sizeof(name), "[%s] not plain: kind untouched", label);
			UNIT_EQ_STR(kind, "unset", name);
		}
	}
	unit_guard_free(p);
}

static void test_plain(void)
{
	static const char *const plain[] = {
		"SELECT abalance FROM pgbench_accounts WHERE aid = 5;",
		"select 1",
		"  SELECT 1 ;  \n",
		"/* c */ -- d\n INSERT INTO t VALUES (1)",
		"WITH x AS (SELECT 1) SELECT * FROM x",
		"UPDATE t SET a_b = 1",
		"values (1)",
		"TABLE t",
		"DELETE FROM my_table",
	};
	static const char *const not_plain[] = {
		"", "   ", ";", "SET a = 1", "SELECT pg_advisory_lock(1)", "select PG_TRY_ADVISORY_LOCK(1)",
		"SELECT set_config('a', 'b', false)", "SELECT SET_CONFIG('a', 'b', false)", "SELECT 1; SET a = 1",
		"SELECT 1; SELECT 2", "LISTEN x", "selectx 1", "select$1", "\"select\" 1", "E'x'", "explain select 1",
		"SELECT * INTO TEMP t FROM x", "select a Into t", "CREATE TABLE pg_temp.t (a int)", "insert into pg_temp.t values (1)",
		"SELECT U&\"\\0073et_config\"('a','b',false)", "select u&\"x\" from t", "DO $$BEGIN NULL; END$$",
	};
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		size_t len;
		const char *p = guarded(plain[i], &len);
		char kind[SQL_KIND_MAX];
		if (!UNIT_CHECK(sqlscan_plain(p, len, kind), "plain: a single plain statement"))
			printf("#   %s\n", plain[i]);
		unit_guard_free(p);
	}
	for (size_t i = 0; i < sizeof(not_plain) / sizeof(not_plain[0]); i++) {
		size_t len;
		const char *p = guarded(not_plain[i], &len);
		if (!UNIT_CHECK(!sqlscan_plain(p, len, NULL), "plain: not a single plain statement"))
			printf("#   %s\n", not_plain[i]);
		unit_guard_free(p);
	}
}

/*
 * Every prefix of sql, each at a guard page with the exact length: the scan
 * must not read past it (a read would fault), must advance on every
 * statement and must never report a position beyond the length.
 */
static bool prefixes_ok(const char *sql, char *why, size_t whylen)
{
	size_t full = strlen(sql);

	for (size_t k = 0; k <= full; k++) {
		const char *p = unit_guard_copy(sql, k);
		struct sql_stmt st;
		size_t pos = 0, prev = 0, calls = 0;
		bool ok = true;

		while (sqlscan_next(p, k, &pos, &st)) {
			calls++;
			if (pos <= prev || pos > k || calls > k + 1) {
				ok = false;
				break;
			}
			prev = pos;
		}
		if (ok && pos > k)
			ok = false;
		if (ok)
			(void)sqlscan_flags(p, k);
		unit_guard_free(p);
		if (!ok) {
			snprintf(why, whylen, "prefix of %zu bytes: position %zu after %zu statements", k,
				 pos, calls);
			return false;
		}
	}
	return true;
}

static void test_prefixes(void)
{
	char why[200];
	bool all = true;
	static const char *extra[] = {
		"SELECT E'ab\\\\' ; LISTEN x",
		"SELECT E'ab\\' ; LISTEN x'",
		"SELECT $a$ x $a$; SELECT $b$ /* -- $b$",
		"SELECT \"a\"\"b\" ; /* /* */ */ LISTEN x -- y",
		"SET a.b.c = DEFAULT; RESET ALL;; DISCARD ALL",
	};

	for (size_t i = 0; i < sizeof(one_cases) / sizeof(one_cases[0]); i++) {
		if (!prefixes_ok(one_cases[i].sql, why, sizeof(why))) {
			all = false;
			printf("#   [%s] %s\n", one_cases[i].sql, why);
		}
	}
	for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
		if (!prefixes_ok(extra[i], why, sizeof(why))) {
			all = false;
			printf("#   [%s] %s\n", extra[i], why);
		}
	}
	UNIT_CHECK(all, "every prefix of every case: no read past the length, progress, position <= length");
}

/* A statement cut short, scanned as far as it goes. */
static void test_truncated(void)
{
	struct sql_stmt st;
	size_t pos;
	const char *p;
	bool got;

	p = unit_guard_copy("SET search_path = foo", 10);
	pos = 0;
	got = sqlscan_next(p, 10, &pos, &st);
	UNIT_CHECK(got, "cut SET: a statement");
	UNIT_EQ_STR(st.kind, "set", "cut SET: kind");
	UNIT_EQ_STR(st.name, "search", "cut SET: name is the part that is there");
	check_flags(st.flags, S, "cut SET: flags");
	UNIT_EQ_INT(pos, 10, "cut SET: position at the end");
	unit_guard_free(p);

	p = unit_guard_copy("LISTEN channel", 4);
	pos = 0;
	got = sqlscan_next(p, 4, &pos, &st);
	UNIT_CHECK(got, "cut LISTEN: a statement");
	UNIT_EQ_STR(st.kind, "list", "cut LISTEN: kind is the partial word");
	check_flags(st.flags, 0, "cut LISTEN: no flags");
	unit_guard_free(p);

	/* ON COMMIT DROP not seen yet: still a lasting temp table */
	p = unit_guard_copy("CREATE TEMP TABLE t (a int) ON COMMIT DROP", 37);
	check_flags(sqlscan_flags(p, 37), TMP, "cut CREATE TEMP before DROP: TEMP_TABLE");
	unit_guard_free(p);

	p = unit_guard_copy("SELECT 'abc; LISTEN x'; LISTEN y", 17);
	pos = 0;
	got = sqlscan_next(p, 17, &pos, &st);
	UNIT_CHECK(got && strcmp(st.kind, "select") == 0 && st.flags == 0,
		   "cut inside a string: select, no flags");
	UNIT_CHECK(!sqlscan_next(p, 17, &pos, &st), "cut inside a string: one statement");
	unit_guard_free(p);

	p = unit_guard_copy("SELECT pg_advisory_lock(1)", 18);
	check_flags(sqlscan_flags(p, 18), 0, "cut function name: not an advisory lock");
	unit_guard_free(p);

	p = unit_guard_copy("/* LISTEN x */ SELECT 1", 9);
	pos = 0;
	UNIT_CHECK(!sqlscan_next(p, 9, &pos, &st), "cut inside a comment: no statement");
	UNIT_EQ_INT(pos, 9, "cut inside a comment: position at the end");
	unit_guard_free(p);

	p = unit_guard_copy("DECLARE c CURSOR WITH HOLD FOR SELECT 1", 24);
	check_flags(sqlscan_flags(p, 24), 0, "cut DECLARE at WITH HO: no HOLD_CURSOR");
	unit_guard_free(p);

	/* a backslash as the very last byte of an E'' string */
	p = unit_guard_copy("SELECT E'ab\\", 12);
	pos = 0;
	got = sqlscan_next(p, 12, &pos, &st);
	UNIT_CHECK(got && strcmp(st.kind, "select") == 0, "cut after a backslash in E'': select");
	UNIT_CHECK(pos <= 12, "cut after a backslash in E'': position not beyond the length");
	unit_guard_free(p);

	/* the length is what counts, not a NUL */
	p = unit_guard_copy("LISTEN x", 0);
	pos = 0;
	UNIT_CHECK(!sqlscan_next(p, 0, &pos, &st) && pos == 0, "length 0: no statement");
	UNIT_EQ_INT(sqlscan_flags(p, 0), 0, "length 0: no flags");
	unit_guard_free(p);
}

struct multi_case {
	const char *sql;
	int n;
	const char *kinds[5];
	unsigned flags[5];
	const char *names[5];	/* NULL: not checked */
};

static const struct multi_case multi_cases[] = {
	{ "SET a = 1; LISTEN x; SELECT 1", 3, { "set", "listen", "select" }, { S, LSN, 0 }, { "a", "", "" } },
	{ ";;", 2, { "", "" }, { 0, 0 }, { "", "" } },
	{ "SELECT 1;;SELECT 2", 3, { "select", "", "select" }, { 0, 0, 0 }, { NULL } },
	{ "  ; LISTEN x", 2, { "", "listen" }, { 0, LSN }, { NULL } },
	{ "SELECT E'a\\\\'; LISTEN x", 2, { "select", "listen" }, { 0, LSN }, { NULL } },
	{ "SELECT 'a;b'; DISCARD ALL; RESET search_path",
	  3,
	  { "select", "discard", "reset" },
	  { 0, R, R },
	  { "", "all", "search_path" } },
	{ "BEGIN; SET LOCAL a = 1; SELECT pg_advisory_lock(1); COMMIT",
	  4,
	  { "begin", "set", "select", "commit" },
	  { 0, 0, ADV, 0 },
	  { NULL } },
	{ "SELECT 1 /* ; */; CREATE TEMP TABLE t(a int); ", 2, { "select", "create" }, { 0, TMP }, { NULL } },
	{ "SELECT 1 -- ; LISTEN x\n; PREPARE p AS SELECT 1",
	  2,
	  { "select", "prepare" },
	  { 0, PRE },
	  { NULL } },
	{ "select $$;$$; deallocate p;", 2, { "select", "deallocate" }, { 0, DEA }, { "", "p" } },
	{ "DISCARD PLANS; DEALLOCATE ALL; DISCARD ALL",
	  3,
	  { "discard", "deallocate", "discard" },
	  { TMP, DEA, R },
	  { "plans", "all", "all" } },
	{ "set x.y to default;load 'a';select set_config('a','b',false)",
	  3,
	  { "set", "load", "select" },
	  { S | R, LOD, SC },
	  { "x.y", "", "" } },
	{ "DECLARE c CURSOR WITH HOLD FOR SELECT 1; DECLARE d CURSOR FOR SELECT hold FROM t",
	  2,
	  { "declare", "declare" },
	  { HLD, 0 },
	  { NULL } },
	/* BEGIN ATOMIC opens a body; a parameter named begin, t.case or t.end do not open or close one */
	{ "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END; LISTEN x",
	  2,
	  { "create", "listen" },
	  { 0, LSN },
	  { NULL } },
	{ "CREATE FUNCTION f(begin int) RETURNS int AS 'select 1' LANGUAGE sql; LISTEN x",
	  2,
	  { "create", "listen" },
	  { 0, LSN },
	  { NULL } },
	{ "CREATE FUNCTION f() RETURNS int LANGUAGE sql SET search_path = begin AS 'select 1'; LISTEN x",
	  2,
	  { "create", "listen" },
	  { 0, LSN },
	  { NULL } },
	{ "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT t.case FROM t; END; LISTEN x",
	  2,
	  { "create", "listen" },
	  { 0, LSN },
	  { NULL } },
	{ "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT t.end FROM t; LISTEN y; END; LISTEN x",
	  2,
	  { "create", "listen" },
	  { 0, LSN },
	  { NULL } },
	{ "(SELECT 1); LISTEN x", 2, { "select", "listen" }, { 0, LSN }, { NULL } },
};

static void test_multi(const struct multi_case *c)
{
	char name[300];
	struct sql_stmt st;
	size_t len, pos = 0;
	const char *p = guarded(c->sql, &len);
	unsigned all = 0;
	int i = 0;
	bool pos_ok = true;

	while (i < 6 && sqlscan_next(p, len, &pos, &st)) {
		if (pos > len)
			pos_ok = false;
		if (i < c->n) {
			snprintf(name, sizeof(name), "multi [%s] #%d kind", c->sql, i + 1);
			UNIT_EQ_STR(st.kind, c->kinds[i], name);
			snprintf(name, sizeof(name), "multi [%s] #%d flags", c->sql, i + 1);
			check_flags(st.flags, c->flags[i], name);
			if (c->names[i]) {
				snprintf(name, sizeof(name), "multi [%s] #%d name", c->sql, i + 1);
				UNIT_EQ_STR(st.name, c->names[i], name);
			}
		}
		i++;
	}
	for (int k = 0; k < c->n; k++)
		all |= c->flags[k];
	snprintf(name, sizeof(name), "multi [%s] statement count", c->sql);
	UNIT_EQ_INT(i, c->n, name);
	snprintf(name, sizeof(name), "multi [%s] ends at the length", c->sql);
	UNIT_CHECK(pos_ok && pos == len, name);
	snprintf(name, sizeof(name), "multi [%s] sqlscan_flags is the OR", c->sql);
	check_flags(sqlscan_flags(p, len), all, name);
	unit_guard_free(p);
}

static void test_nothing(void)
{
	static const char *empty[] = {
		"", "   \n\t", "/* only a comment */", "-- x\n-- y", "/* a /* b */ */ ",
	};
	struct sql_stmt st;

	for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
		size_t len, pos = 0;
		const char *p = guarded(empty[i], &len);
		char name[100];

		snprintf(name, sizeof(name), "no statement in text %zu", i);
		UNIT_CHECK(!sqlscan_next(p, len, &pos, &st) && pos == len, name);
		unit_guard_free(p);
	}
}

/* Names and kinds longer than the fields are cut, never overflow. */
static void test_long_names(void)
{
	char sql[300], want[64];
	struct sql_stmt st;
	size_t len, pos = 0;
	const char *p;

	memcpy(sql, "SET ", 4);
	memset(sql + 4, 'A', 100);
	strcpy(sql + 104, " = 1");
	memset(want, 'a', 63);
	want[63] = 0;
	p = guarded(sql, &len);
	UNIT_CHECK(sqlscan_next(p, len, &pos, &st), "long name: a statement");
	UNIT_EQ_STR(st.name, want, "long name: the first 63 characters, lower case");
	check_flags(st.flags, S, "long name: flags");
	unit_guard_free(p);

	memcpy(sql, "SET ", 4);
	memset(sql + 4, 'x', 60);
	memcpy(sql + 64, ".yyyyyyyyyy = DEFAULT", 22);
	pos = 0;
	p = guarded(sql, &len);
	UNIT_CHECK(sqlscan_next(p, len, &pos, &st), "long custom name with DEFAULT: a statement");
	UNIT_CHECK(strlen(st.name) < sizeof(st.name) && strncmp(st.name, "xxxxxxxxxx", 10) == 0,
		   "long custom name with DEFAULT: fits the field");
	unit_guard_free(p);

	memset(sql, 'K', 40);
	strcpy(sql + 40, " 1");
	pos = 0;
	p = guarded(sql, &len);
	UNIT_CHECK(sqlscan_next(p, len, &pos, &st), "long first word: a statement");
	UNIT_EQ_INT(strlen(st.kind), SQL_KIND_MAX - 1, "long first word: kind cut to the field");
	UNIT_CHECK(st.kind[0] == 'k', "long first word: lower case");
	unit_guard_free(p);
}

/* Scanning resumes at *pos: a caller may start in the middle. */
static void test_resume(void)
{
	static const char sql[] = "SELECT 1; RESET ALL";
	struct sql_stmt st;
	size_t pos = 10;
	const char *p = unit_guard_copy(sql, sizeof(sql) - 1);

	UNIT_CHECK(sqlscan_next(p, sizeof(sql) - 1, &pos, &st), "resume: a statement from offset 10");
	UNIT_EQ_STR(st.kind, "reset", "resume: kind");
	UNIT_EQ_STR(st.name, "all", "resume: name");
	UNIT_EQ_INT(pos, sizeof(sql) - 1, "resume: position at the end");
	unit_guard_free(p);
}

int main(void)
{
	size_t n_one = sizeof(one_cases) / sizeof(one_cases[0]);

	UNIT_CHECK(n_one >= 80, "the table holds at least 80 statements");
	for (size_t i = 0; i < n_one; i++)
		test_one(&one_cases[i]);
	for (size_t i = 0; i < sizeof(multi_cases) / sizeof(multi_cases[0]); i++)
		test_multi(&multi_cases[i]);
	test_nothing();
	test_plain();
	test_truncated();
	test_prefixes();
	test_long_names();
	test_resume();
	return unit_done();
}

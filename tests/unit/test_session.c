/* Unit tests for core/session.c: the readers of SET values and set_config() calls. */
#include "unit.h"

#include <string.h>

#include "client_params.h"
#include "session.h"

/* The tracking the hidden results feed is not under test here. */
bool client_param_track_add(struct client *c, const char *name, const char *value, bool reset_all)
{
	(void)c;
	(void)name;
	(void)value;
	(void)reset_all;
	return true;
}

static void check_value(const char *sql, const char *name, const char *want)
{
	char value[128], label[256];
	bool ok = session_set_value(sql, strlen(sql), name, value, sizeof(value));

	snprintf(label, sizeof(label), "set value: %s", sql);
	if (!want) {
		UNIT_CHECK(!ok, label);
		return;
	}
	UNIT_CHECK(ok, label);
	if (ok)
		UNIT_EQ_STR(value, want, label);
}

static void test_set_value(void)
{
	check_value("SET statement_timeout = '5s'", "statement_timeout", "5s");
	check_value("set statement_timeout to 5000", "statement_timeout", "5000");
	check_value("SET SESSION work_mem = '64MB';", "work_mem", "64MB");
	check_value("SET lock_timeout = -1", "lock_timeout", "-1");
	check_value("SET x.y = +1.5", "x.y", "1.5");
	check_value("SET application_name = 'it''s'", "application_name", "it's");
	check_value("SET DateStyle TO ISO, DMY", "datestyle", "iso, dmy");
	check_value("SET DateStyle = 'SQL', DMY", "datestyle", "SQL, dmy");
	check_value("SET app.name = \"Mixed\"", "app.name", "Mixed");
	check_value("SET search_path = a, \"B c\", public", "search_path", "a, \"B c\", public");
	check_value("SET search_path TO 'My Schema', \"x\"\"y\"", "search_path", "\"My Schema\", \"x\"\"y\"");
	check_value("SET search_path = ''", "search_path", "\"\"");
	check_value("SET /* a = b */ work_mem -- c\n = 1", "work_mem", "1");
	/* what it does not write down: PostgreSQL decides, the SET lasts for its transaction */
	check_value("SET work_mem = E'64MB'", "work_mem", NULL);
	check_value("SET x.y = U&'a'", "x.y", NULL);
	check_value("SET work_mem = 1e3", "work_mem", NULL);
	check_value("SET work_mem = DEFAULT", "work_mem", NULL);
	check_value("SET work_mem", "work_mem", NULL);
	check_value("SET work_mem = 'a' 'b'", "work_mem", NULL);
	check_value("SET work_mem = 'unterminated", "work_mem", NULL);
	check_value("SET TIME ZONE INTERVAL '+01:00' HOUR TO MINUTE", "timezone", NULL);
}

static void test_set_config_calls(void)
{
	struct set_config_call calls[4];
	const char *sql;
	int n;

	sql = "SELECT pg_catalog.set_config('search_path', '', false)";
	n = session_set_config_calls(sql, strlen(sql), calls, 4);
	UNIT_EQ_INT(n, 1, "set_config: one call");
	UNIT_EQ_STR(calls[0].name, "search_path", "set_config: literal name");
	UNIT_EQ_INT(calls[0].is_local, 0, "set_config: literal false");

	sql = "SELECT set_config(name, 'view, foreign-table', false) FROM pg_settings WHERE name = 'x'";
	n = session_set_config_calls(sql, strlen(sql), calls, 4);
	UNIT_EQ_INT(n, 1, "set_config: pg_dump's call");
	UNIT_EQ_STR(calls[0].name, "", "set_config: a column as the name is no literal");
	UNIT_EQ_INT(calls[0].is_local, 0, "set_config: its is_local is");

	sql = "select SET_CONFIG('a.b', f(1, ')'), TRUE), set_config('c', $1, $2), 'set_config(''x'', ''y'', false)'";
	n = session_set_config_calls(sql, strlen(sql), calls, 4);
	UNIT_EQ_INT(n, 2, "set_config: two calls, none in a string");
	UNIT_EQ_STR(calls[0].name, "a.b", "set_config: first name");
	UNIT_EQ_INT(calls[0].is_local, 1, "set_config: literal true, past a nested call with a ')' string");
	UNIT_EQ_STR(calls[1].name, "c", "set_config: second name");
	UNIT_EQ_INT(calls[1].is_local, -1, "set_config: a parameter as is_local");

	sql = "SELECT set_config('a'::text, 'b', false), my_set_config('x', 'y', false) -- set_config('z', '', false)";
	n = session_set_config_calls(sql, strlen(sql), calls, 4);
	UNIT_EQ_INT(n, 1, "set_config: another function and a comment are not calls");
	UNIT_EQ_STR(calls[0].name, "", "set_config: a cast literal is not read as the name");

	sql = "SELECT set_config";
	UNIT_EQ_INT(session_set_config_calls(sql, strlen(sql), calls, 4), 0, "set_config: no call without '('");
}

int main(void)
{
	test_set_value();
	test_set_config_calls();
	return unit_done();
}

/* Unit tests for core/prepared.c: shared statements, a client's hashed names and their references. */
#include "unit.h"

#include "prepared.h"

static struct ps_stmt *intern(const void *scope, const char *text)
{
	struct ps_stmt *st = ps_intern(scope, (const uint8_t *)text, (uint32_t)strlen(text) + 1);
	if (!st) {
		printf("# ps_intern failed: out of memory\n");
		abort();
	}
	return st;
}

static void must_set(struct ps_client *pc, const char *name, struct ps_stmt *st)
{
	if (!ps_client_set(pc, name, st)) {
		printf("# ps_client_set(%s) failed: out of memory\n", name);
		abort();
	}
}

static void test_intern_lookup(void)
{
	int scope_a = 0, scope_b = 0;
	struct ps_stmt *a = intern(&scope_a, "SELECT 1"), *b;

	UNIT_CHECK(intern(&scope_a, "SELECT 1") == a, "the same text in one scope is one statement");
	UNIT_CHECK(ps_lookup(&scope_a, (const uint8_t *)"SELECT 1", 9) == a, "lookup finds it");
	UNIT_CHECK(ps_lookup(&scope_b, (const uint8_t *)"SELECT 1", 9) == NULL, "another scope does not");
	UNIT_CHECK(ps_lookup(&scope_a, (const uint8_t *)"SELECT 2", 9) == NULL, "lookup creates nothing");
	UNIT_CHECK(ps_lookup(&scope_a, (const uint8_t *)"SELECT 2", 9) == NULL, "... not even on a second call");
	b = intern(&scope_b, "SELECT 1");
	UNIT_CHECK(b != a && strcmp(a->server_name, b->server_name) != 0, "another scope: another server name");
	ps_stmt_release_unused(a);
	ps_stmt_release_unused(b);
	UNIT_CHECK(ps_lookup(&scope_a, (const uint8_t *)"SELECT 1", 9) == NULL, "an unused statement is released");
}

static void test_many_texts(void)
{
	int scope = 0;
	char text[64];
	static struct ps_stmt *sts[20000];
	bool all = true;

	for (int i = 0; i < 20000; i++) {
		snprintf(text, sizeof(text), "SELECT %d", i);
		sts[i] = intern(&scope, text);
		ps_stmt_ref(sts[i]);
	}
	for (int i = 0; i < 20000 && all; i++) {
		snprintf(text, sizeof(text), "SELECT %d", i);
		all = ps_lookup(&scope, (const uint8_t *)text, (uint32_t)strlen(text) + 1) == sts[i];
	}
	UNIT_CHECK(all, "20000 texts are each found after the table grew");
	for (int i = 0; i < 20000; i++)
		ps_stmt_unref(sts[i]);
	UNIT_CHECK(ps_lookup(&scope, (const uint8_t *)"SELECT 7", 9) == NULL, "the last reference frees each");
}

static void test_names(void)
{
	int scope = 0;
	struct ps_client pc = { 0 };
	struct ps_stmt *one = intern(&scope, "SELECT 1"), *two = intern(&scope, "SELECT 2");
	char name[32];

	UNIT_CHECK(ps_client_find(&pc, "x") == NULL, "no names: find is NULL");
	ps_client_remove(&pc, "x");	/* nothing to remove: no crash */
	must_set(&pc, "x", one);
	must_set(&pc, "X", two);
	UNIT_CHECK(ps_client_find(&pc, "x") == one && ps_client_find(&pc, "X") == two, "names are case-sensitive");
	UNIT_EQ_INT(one->refs, 1, "a name holds a reference");
	must_set(&pc, "x", two);
	UNIT_CHECK(ps_lookup(&scope, (const uint8_t *)"SELECT 1", 9) == NULL,
		   "re-mapping a name drops the old reference (its last: freed)");
	UNIT_EQ_INT(two->refs, 2, "... and takes the new one");
	UNIT_EQ_INT((int)ps_client_count(&pc), 2, "two names");

	for (int i = 0; i < 100000; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		must_set(&pc, name, two);
	}
	UNIT_EQ_INT((int)ps_client_count(&pc), 100002, "100000 more names");
	UNIT_CHECK(ps_client_find(&pc, "n0") == two && ps_client_find(&pc, "n99999") == two,
		   "the first and last are found after the table grew");
	UNIT_CHECK(ps_client_find(&pc, "n100000") == NULL, "one never set is not");
	for (int i = 0; i < 100000; i += 2) {
		snprintf(name, sizeof(name), "n%d", i);
		ps_client_remove(&pc, name);
	}
	UNIT_EQ_INT((int)ps_client_count(&pc), 50002, "half removed");
	UNIT_CHECK(ps_client_find(&pc, "n2") == NULL && ps_client_find(&pc, "n3") == two, "the right half");
	UNIT_EQ_INT(two->refs, 50002, "one reference per name");
	ps_client_clear(&pc);
	UNIT_EQ_INT((int)ps_client_count(&pc), 0, "clear: no names");
	UNIT_CHECK(ps_lookup(&scope, (const uint8_t *)"SELECT 2", 9) == NULL, "clear: the last reference frees it");
	ps_client_clear(&pc);	/* twice: harmless */
}

static void test_long_names(void)
{
	int scope = 0;
	struct ps_client pc = { 0 };
	struct ps_stmt *one = intern(&scope, "SELECT 1"), *two = intern(&scope, "SELECT 2");
	char a[200], b[200];

	memset(a, 'n', sizeof(a));
	a[sizeof(a) - 1] = 0;
	memcpy(b, a, sizeof(b));
	b[100] = 'x';
	must_set(&pc, a, one);
	UNIT_CHECK(ps_client_find(&pc, b) == one, "names agreeing on their first 63 bytes are one (as PostgreSQL)");
	b[62] = 'x';
	UNIT_CHECK(ps_client_find(&pc, b) == NULL, "a difference within the first 63 bytes is another name");
	must_set(&pc, b, two);
	UNIT_EQ_INT((int)ps_client_count(&pc), 2, "two names");
	a[63] = 0;
	UNIT_CHECK(ps_client_find(&pc, a) == one, "the 63-byte prefix itself is the same name");
	a[62] = 0;
	UNIT_CHECK(ps_client_find(&pc, a) == NULL, "a 62-byte prefix is not");
	ps_client_clear(&pc);
}

int main(void)
{
	test_intern_lookup();
	test_many_texts();
	test_names();
	test_long_names();
	return unit_done();
}

/* Unit test of core/sqlscan.c against tests/corpus/statements.tsv, the corpus lua/moonbouncer/classify.lua answers too. */
#include "unit.h"

#include "sqlscan.h"

#define CORPUS MB_DATADIR "/tests/corpus/statements.tsv"
#define KINDS_ROOM 32	/* as many as the core gives a policy */

struct row {
	int line;
	char label[100];	/* the text as the corpus writes it, cut: for the test names */
	char *sql;	/* unescaped */
	size_t len;
	const char *kinds;	/* "select,advisory_lock" or "-" */
	bool session;
};

/* \n, \t and \\ as COPY's text format writes them; false on any other escape. */
static bool unescape(char *s, size_t *len)
{
	size_t j = 0;

	for (size_t i = 0; s[i]; i++) {
		if (s[i] != '\\') {
			s[j++] = s[i];
			continue;
		}
		i++;
		if (s[i] == 'n')
			s[j++] = '\n';
		else if (s[i] == 't')
			s[j++] = '\t';
		else if (s[i] == '\\')
			s[j++] = '\\';
		else
			return false;
	}
	s[j] = 0;
	*len = j;
	return true;
}

/* Split one corpus line into its three fields; false when it is malformed. */
static bool parse_row(char *text, struct row *r)
{
	char *kinds = strchr(text, '\t'), *session;

	if (!kinds)
		return false;
	*kinds++ = 0;
	session = strchr(kinds, '\t');
	if (!session)
		return false;
	*session++ = 0;
	if (strchr(session, '\t') || !*kinds || (strcmp(session, "yes") != 0 && strcmp(session, "no") != 0))
		return false;
	snprintf(r->label, sizeof(r->label), "%.*s", (int)sizeof(r->label) - 1, text);
	r->sql = text;
	r->kinds = kinds;
	r->session = strcmp(session, "yes") == 0;
	return unescape(text, &r->len);
}

/* The kinds as the corpus writes them. */
static void join_kinds(char kinds[][SQL_KIND_MAX], int n, char *out, size_t cap)
{
	size_t used = 0;

	snprintf(out, cap, "-");
	for (int i = 0; i < n && used < cap; i++)
		used += (size_t)snprintf(out + used, cap - used, "%s%s", i ? "," : "", kinds[i]);
}

static void check_row(const struct row *r)
{
	char kinds[KINDS_ROOM][SQL_KIND_MAX], got[KINDS_ROOM * SQL_KIND_MAX], name[300], first[SQL_KIND_MAX] = "";
	const char *p = unit_guard_copy(r->sql, r->len);	/* the scan must not read past the text */
	unsigned session;
	int n = sqlscan_kinds(p, r->len, kinds, KINDS_ROOM, &session);
	struct sql_stmt st;
	size_t pos = 0, prev = 0;
	bool progress = true;

	/* q.kinds and q.kind as client_policy.c gives them to the prefilter and the hooks */
	join_kinds(kinds, n, got, sizeof(got));
	snprintf(name, sizeof(name), "line %d [%s] q.kinds", r->line, r->label);
	UNIT_EQ_STR(got, r->kinds, name);
	if (strcmp(r->kinds, "-") != 0)
		snprintf(first, sizeof(first), "%.*s", (int)strcspn(r->kinds, ","), r->kinds);
	snprintf(name, sizeof(name), "line %d [%s] q.kind", r->line, r->label);
	UNIT_EQ_STR(n ? kinds[0] : "", first, name);

	/* session state as the session scan of client.c decides it, and as prepared_relay.c ORs the flags */
	snprintf(name, sizeof(name), "line %d [%s] changes session state", r->line, r->label);
	UNIT_EQ_INT(session != 0, r->session, name);
	snprintf(name, sizeof(name), "line %d [%s] sqlscan_flags", r->line, r->label);
	UNIT_EQ_INT((sqlscan_flags(p, r->len) & ~(unsigned)SQL_HINTS) != 0, r->session, name);

	/* the one-call shortcut may only claim what the full scan finds */
	if (sqlscan_plain(p, r->len, NULL)) {
		snprintf(name, sizeof(name), "line %d [%s] plain: one kind, no session state", r->line, r->label);
		UNIT_CHECK(!r->session && n == 1 && !strchr(r->kinds, ','), name);
	}

	while (sqlscan_next(p, r->len, &pos, &st)) {
		if (pos <= prev || pos > r->len) {
			progress = false;	/* every statement moves the position on, never past the length */
			break;
		}
		prev = pos;
	}
	snprintf(name, sizeof(name), "line %d [%s] statements end at the length", r->line, r->label);
	UNIT_CHECK(progress && pos == r->len, name);
	unit_guard_free(p);
}

int main(void)
{
	FILE *f = fopen(CORPUS, "r");
	char buf[8192];
	int line = 0, rows = 0;
	bool well_formed = true;

	if (!UNIT_CHECK(f != NULL, "the corpus " CORPUS " opens"))
		return unit_done();
	while (fgets(buf, sizeof(buf), f)) {
		size_t n = strlen(buf);
		struct row r;

		line++;
		if (n == 0 || buf[n - 1] != '\n') {
			printf("#   line %d: longer than %zu bytes or without a new line\n", line, sizeof(buf) - 1);
			well_formed = false;
			continue;
		}
		buf[--n] = 0;
		if (n == 0 || buf[0] == '#')
			continue;
		r.line = line;
		if (!parse_row(buf, &r)) {
			printf("#   line %d: not \"sql<TAB>kinds<TAB>yes|no\" with \\n, \\t, \\\\ escapes\n", line);
			well_formed = false;
			continue;
		}
		check_row(&r);
		rows++;
	}
	fclose(f);
	UNIT_CHECK(well_formed, "every corpus line is a comment or sql<TAB>kinds<TAB>yes|no");
	UNIT_CHECK(rows >= 300, "the corpus holds at least 300 statements");
	return unit_done();
}

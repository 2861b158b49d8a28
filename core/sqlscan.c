/* Cheap keyword scan of SQL text: statement kinds and the statements that change session state. */
#include "sqlscan.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

/*
 * TOK_WORD is a bare word (a keyword or an identifier); TOK_QUOTED a "quoted
 * identifier", which names something but is never a keyword; TOK_UNICODE a
 * U&"..." identifier, whose name the scan does not decode.
 */
enum tok_type { TOK_END, TOK_SEMI, TOK_WORD, TOK_QUOTED, TOK_UNICODE, TOK_OTHER };

struct lexer {
	const char *s;
	size_t len;
	size_t pos;
};

struct token {
	enum tok_type type;
	const char *p;
	size_t n;
};

/* ASCII classes by hand: the <ctype.h> ones are a call each and depend on the locale, SQL's do not. */
static inline bool is_space(char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

static inline char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

static inline bool ident_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (unsigned char)c >= 0x80;
}

static inline bool ident_char(char c)
{
	return ident_start(c) || (c >= '0' && c <= '9') || c == '$';
}

/* Skip white space and comments (nested block comments, as PostgreSQL). */
static void skip_space(struct lexer *lx)
{
	while (lx->pos < lx->len) {
		char c = lx->s[lx->pos];
		if (is_space(c)) {
			lx->pos++;
		} else if (c == '-' && lx->pos + 1 < lx->len && lx->s[lx->pos + 1] == '-') {
			while (lx->pos < lx->len && lx->s[lx->pos] != '\n')
				lx->pos++;
		} else if (c == '/' && lx->pos + 1 < lx->len && lx->s[lx->pos + 1] == '*') {
			int depth = 1;
			lx->pos += 2;
			while (lx->pos < lx->len && depth > 0) {
				if (lx->s[lx->pos] == '/' && lx->pos + 1 < lx->len && lx->s[lx->pos + 1] == '*') {
					depth++;
					lx->pos += 2;
				} else if (lx->s[lx->pos] == '*' && lx->pos + 1 < lx->len && lx->s[lx->pos + 1] == '/') {
					depth--;
					lx->pos += 2;
				} else {
					lx->pos++;
				}
			}
		} else {
			break;
		}
	}
}

static void skip_quoted(struct lexer *lx, char q, bool backslash)
{
	lx->pos++;
	while (lx->pos < lx->len) {
		char c = lx->s[lx->pos++];
		if (backslash && c == '\\') {
			if (lx->pos < lx->len)
				lx->pos++;
		} else if (c == q) {
			if (lx->pos < lx->len && lx->s[lx->pos] == q)
				lx->pos++;	/* doubled quote */
			else
				return;
		}
	}
}

/* $tag$ ... $tag$ */
static bool skip_dollar(struct lexer *lx)
{
	size_t start = lx->pos, tag_end = lx->pos + 1;
	while (tag_end < lx->len && lx->s[tag_end] != '$') {
		if (!ident_char(lx->s[tag_end]) || lx->s[tag_end] == '$')
			return false;
		tag_end++;
	}
	if (tag_end >= lx->len)
		return false;
	{
		size_t taglen = tag_end - start + 1;
		const char *tag = lx->s + start;
		size_t p = tag_end + 1;
		while (p + taglen <= lx->len) {
			if (lx->s[p] == '$' && memcmp(lx->s + p, tag, taglen) == 0) {
				lx->pos = p + taglen;
				return true;
			}
			p++;
		}
		lx->pos = lx->len;
	}
	return true;
}

static struct token next_token(struct lexer *lx)
{
	struct token t = { TOK_END, NULL, 0 };
	char c;

	skip_space(lx);
	if (lx->pos >= lx->len)
		return t;
	c = lx->s[lx->pos];
	t.p = lx->s + lx->pos;
	if (c == ';') {
		lx->pos++;
		t.type = TOK_SEMI;
		t.n = 1;
		return t;
	}
	if ((c == 'E' || c == 'e') && lx->pos + 1 < lx->len && lx->s[lx->pos + 1] == '\'') {
		lx->pos++;
		skip_quoted(lx, '\'', true);
		t.type = TOK_OTHER;
	} else if (c == '\'') {
		skip_quoted(lx, '\'', false);
		t.type = TOK_OTHER;
	} else if (c == '"') {
		/* a quoted identifier: a name without the quotes, never a keyword */
		size_t start = lx->pos + 1;
		skip_quoted(lx, '"', false);
		t.type = TOK_QUOTED;
		t.p = lx->s + start;
		t.n = lx->pos > start ? lx->pos - start - 1 : 0;
		return t;
	} else if ((c == 'U' || c == 'u') && lx->pos + 2 < lx->len && lx->s[lx->pos + 1] == '&' &&
		   (lx->s[lx->pos + 2] == '"' || lx->s[lx->pos + 2] == '\'')) {
		/* U&"..." names anything through its escapes; U&'...' is a string */
		bool ident = lx->s[lx->pos + 2] == '"';
		lx->pos += 2;
		skip_quoted(lx, ident ? '"' : '\'', false);
		t.type = ident ? TOK_UNICODE : TOK_OTHER;
	} else if (c == '$' && skip_dollar(lx)) {
		t.type = TOK_OTHER;
	} else if (ident_start(c)) {
		while (lx->pos < lx->len && ident_char(lx->s[lx->pos]))
			lx->pos++;
		t.type = TOK_WORD;
	} else {
		lx->pos++;
		t.type = TOK_OTHER;
	}
	t.n = (size_t)(lx->s + lx->pos - t.p);
	return t;
}

/* A keyword: bare words only, a quoted "on" is a name. */
static bool word_is(const struct token *t, const char *w)
{
	size_t n = strlen(w);
	return t->type == TOK_WORD && t->n == n && strncasecmp(t->p, w, n) == 0;
}

/* A name, bare or quoted: "set_config"(...) calls set_config, "SET_CONFIG"(...) does not (quoting keeps case). */
static bool name_is(const struct token *t, const char *w)
{
	size_t n = strlen(w);
	if (t->n != n)
		return false;
	return t->type == TOK_WORD ? strncasecmp(t->p, w, n) == 0 : t->type == TOK_QUOTED && memcmp(t->p, w, n) == 0;
}

static bool is_punct(const struct token *t, char c)
{
	return t->type == TOK_OTHER && t->n == 1 && *t->p == c;
}

/* The next token, the lexer left where it was. */
static struct token peek_token(const struct lexer *lx)
{
	struct lexer ahead = *lx;
	return next_token(&ahead);
}

/* pg_temp or pg_temp_N, the session's temporary schema, by its name (quoted: exactly so). */
static bool is_temp_schema(const struct token *t)
{
	struct token head = *t;
	if (t->n < 7)
		return false;
	head.n = 7;
	return name_is(&head, "pg_temp") && (t->n == 7 || t->p[7] == '_');
}

static bool is_name(const struct token *t)
{
	return t->type == TOK_WORD || t->type == TOK_QUOTED;
}

static void copy_lower(char *dst, size_t cap, const char *src, size_t n)
{
	size_t i;
	if (n >= cap)
		n = cap - 1;
	for (i = 0; i < n; i++)
		dst[i] = lower(src[i]);
	dst[i] = 0;
}

static bool is_advisory(const struct token *t)
{
	return name_is(t, "pg_advisory_lock") || name_is(t, "pg_advisory_lock_shared") ||
	       name_is(t, "pg_try_advisory_lock") || name_is(t, "pg_try_advisory_lock_shared");
}

/* A parameter name, a.b custom names included; leaves *t on the token after it. */
static void read_name(struct lexer *lx, struct sql_stmt *st, struct token *t)
{
	copy_lower(st->name, sizeof(st->name), t->p, t->n);
	*t = next_token(lx);
	while (t->type == TOK_OTHER && t->n == 1 && *t->p == '.') {
		struct token part = next_token(lx);
		size_t used = strlen(st->name);
		if (!is_name(&part) || used + 1 + part.n >= sizeof(st->name))
			break;
		st->name[used] = '.';
		copy_lower(st->name + used + 1, sizeof(st->name) - used - 1, part.p, part.n);
		*t = next_token(lx);
	}
}

static bool is_punct_next(const struct lexer *lx, char c)
{
	struct token t = peek_token(lx);
	return is_punct(&t, c);
}

static bool word_next(const struct lexer *lx, const char *w)
{
	struct token t = peek_token(lx);
	return word_is(&t, w);
}

/* SET name TO / = value: the name, and whether the value is DEFAULT. */
static void read_set_name(struct lexer *lx, struct sql_stmt *st, struct token *t)
{
	read_name(lx, st, t);
	if (word_is(t, "to") || (t->type == TOK_OTHER && *t->p == '=')) {
		*t = next_token(lx);
		if (word_is(t, "default"))
			st->flags |= SQL_RESETS;
	}
}

/* SET ...: session or local, and the parameter name. */
static void scan_set(struct lexer *lx, struct sql_stmt *st, struct token *t)
{
	*t = next_token(lx);
	if (is_name(t) && (is_punct_next(lx, '.') || is_punct_next(lx, '=') || word_next(lx, "to"))) {
		/* local.x, transaction.x, time.x, local = 1: a parameter's name, not a keyword */
		st->flags |= SQL_SETS_SESSION;
		read_set_name(lx, st, t);
		return;
	}
	if (word_is(t, "local") || word_is(t, "transaction") || word_is(t, "constraints"))
		return;	/* ends with the transaction */
	if (word_is(t, "session")) {
		*t = next_token(lx);
		if (word_is(t, "characteristics")) {
			st->flags |= SQL_SETS_SESSION;	/* default_transaction_* for the session */
			return;
		}
	}
	st->flags |= SQL_SETS_SESSION;
	if (word_is(t, "authorization")) {
		copy_lower(st->name, sizeof(st->name), "session_authorization", 21);
		return;
	}
	if (word_is(t, "time") && !is_punct_next(lx, '.')) {
		copy_lower(st->name, sizeof(st->name), "timezone", 8);
		next_token(lx);	/* ZONE */
		*t = next_token(lx);
		if (word_is(t, "default") || word_is(t, "local"))
			st->flags |= SQL_RESETS;	/* SET TIME ZONE DEFAULT / LOCAL is RESET timezone */
		return;
	} else if (is_name(t)) {
		read_set_name(lx, st, t);
		return;
	}
	*t = next_token(lx);
}

/* Statements whose only session effects come from the functions they call. */
static const char *const PLAIN_KINDS[] = { "select", "insert", "update", "delete", "with", "values", "table" };

static bool plain_statement(const char *kind)
{
	for (size_t i = 0; i < sizeof(PLAIN_KINDS) / sizeof(PLAIN_KINDS[0]); i++)
		if (kind[0] == PLAIN_KINDS[i][0] && strcmp(kind, PLAIN_KINDS[i]) == 0)
			return true;
	return false;
}

/* Eight bytes at p, lower-cased where they are letters (other bytes get bit 0x20 too: see the callers). */
static inline uint64_t load8_lower(const char *p)
{
	uint64_t w;
	memcpy(&w, p, 8);
	return w | 0x2020202020202020ull;
}

static inline uint64_t text8(const char s[8])
{
	uint64_t w;
	memcpy(&w, s, 8);
	return w;
}

/*
 * Could the rest of the text hold another statement or a session-changing
 * call? A ';' anywhere, "advisory" / "set_config" / "pg_temp" next to an
 * underscore, a U&"" identifier, an INTO.
 * False positives only cost the full scan, which lets the comparisons be
 * eight bytes at a time with case folded by one OR.
 */
static bool may_change_session(const char *s, size_t len, bool select_like)
{
	const char *end = s + len, *p = s, *semi = memchr(s, ';', len);

	if (semi) {
		/* only a trailing ';' (and white space) is still one statement */
		for (const char *q = semi + 1; q < end; q++)
			if (!is_space(*q))
				return true;
	}
	while ((p = memchr(p, '_', (size_t)(end - p))) != NULL) {
		if (end - p > 8 && load8_lower(p + 1) == text8("advisory"))
			return true;
		if (p - s >= 3 && end - p > 6 && load8_lower(p - 3) == (text8("set_conf") | 0x2020202020202020ull) &&
		    lower(p[5]) == 'i' && lower(p[6]) == 'g')
			return true;
		if (p - s >= 2 && end - p > 4 && lower(p[-2]) == 'p' && lower(p[-1]) == 'g' && lower(p[1]) == 't' &&
		    lower(p[2]) == 'e' && lower(p[3]) == 'm' && lower(p[4]) == 'p')
			return true;	/* pg_temp: a temporary table named by its schema */
		p++;
	}
	/* U&"..." names anything through its escapes */
	for (p = s; (p = memchr(p, '&', (size_t)(end - p))) != NULL; p++)
		if (p > s && end - p > 1 && lower(p[-1]) == 'u' && p[1] == '"')
			return true;
	/* SELECT ... INTO creates a table: look for "into" around each 't' (memchr is far faster than a byte loop) */
	for (int pass = 0; select_like && pass < 2; pass++) {
		for (p = s; (p = memchr(p, pass ? 'T' : 't', (size_t)(end - p))) != NULL; p++)
			if (p - s >= 2 && end - p >= 2 && lower(p[-2]) == 'i' && lower(p[-1]) == 'n' && lower(p[1]) == 'o')
				return true;
	}
	return false;
}

/* The first n bytes of s (a literal), in the low-address bytes of a word, as memcpy puts them. */
static inline uint64_t prefix8(const char *s, size_t n)
{
	uint64_t w = 0;
	memcpy(&w, s, n);
	return w;
}

/*
 * The plain kind the n identifier bytes at p spell, case folded, or NULL.
 * One load and one OR per word: bit 0x20 makes A-Z a-z, and no other
 * identifier byte (digits, '_', '$', bytes >= 0x80) becomes a letter by it.
 */
static const char *plain_kind(const char *p, size_t n)
{
	uint64_t w = 0;

	switch (n) {
	case 4:
		memcpy(&w, p, 4);
		w |= prefix8("\x20\x20\x20\x20", 4);
		return w == prefix8("with", 4) ? "with" : NULL;
	case 5:
		memcpy(&w, p, 5);
		w |= prefix8("\x20\x20\x20\x20\x20", 5);
		return w == prefix8("table", 5) ? "table" : NULL;
	case 6:
		memcpy(&w, p, 6);
		w |= prefix8("\x20\x20\x20\x20\x20\x20", 6);
		if (w == prefix8("select", 6))
			return "select";
		if (w == prefix8("insert", 6))
			return "insert";
		if (w == prefix8("update", 6))
			return "update";
		if (w == prefix8("delete", 6))
			return "delete";
		if (w == prefix8("values", 6))
			return "values";
		return NULL;
	default:
		return NULL;
	}
}

bool sqlscan_plain(const char *sql, size_t len, char *kind)
{
	struct lexer lx = { sql, len, 0 };
	const char *word = NULL;
	size_t start, n;

	skip_space(&lx);
	start = lx.pos;
	if (start >= len || !ident_start(sql[start]))
		return false;
	while (lx.pos < len && lx.pos - start < 7 && ident_char(sql[lx.pos]))
		lx.pos++;	/* a plain kind has 4 to 6 letters: 7 is enough to say no */
	n = lx.pos - start;
	word = plain_kind(sql + start, n);
	if (!word || may_change_session(sql + lx.pos, len - lx.pos, word[0] == 's' || word[0] == 'w'))
		return false;
	if (kind)
		memcpy(kind, word, n + 1);
	return true;
}

bool sqlscan_next(const char *sql, size_t len, size_t *pos, struct sql_stmt *st)
{
	struct lexer lx = { sql, len, *pos };
	struct token t;
	bool in_create = false, create_as = false, temp = false, commit_drop = false, in_declare = false;
	bool select_like = false, routine = false;
	struct token first;
	int seen_on = 0, depth = 0, body_depth = 0;
	bool prev_with = false, prev_dot = false, prev_begin = false, prev_insert = false;
	unsigned call = 0;	/* what the name just read does when it is called: "(" comes next */

	st->kind[0] = 0;	/* the rest of kind and name is written only as far as it is read */
	st->flags = 0;
	st->name[0] = 0;
	t = next_token(&lx);
	if (t.type == TOK_END) {
		*pos = lx.pos;
		return false;
	}
	while (is_punct(&t, '(')) {
		depth++;	/* (SELECT ...) UNION (SELECT ...): the kind is the word inside */
		t = next_token(&lx);
	}
	if (t.type == TOK_WORD)
		copy_lower(st->kind, sizeof(st->kind), t.p, t.n);
	first = t;
	if (t.type == TOK_SEMI) {
		*pos = lx.pos;
		return true;
	}
	if (plain_statement(st->kind) &&
	    !may_change_session(sql + lx.pos, len - lx.pos, st->kind[0] == 's' || st->kind[0] == 'w')) {
		/* the common case: one SELECT/DML statement calling nothing of interest, no tokenizing needed */
		*pos = len;
		return true;
	}

	if (word_is(&t, "set")) {
		scan_set(&lx, st, &t);
	} else if (word_is(&t, "reset")) {
		t = next_token(&lx);
		st->flags |= SQL_RESETS;
		if (is_name(&t) && is_punct_next(&lx, '.')) {
			read_name(&lx, st, &t);	/* session.x, time.x: a custom parameter */
		} else if (word_is(&t, "session")) {
			copy_lower(st->name, sizeof(st->name), "session_authorization", 21);
			t = next_token(&lx);
		} else if (word_is(&t, "time")) {
			copy_lower(st->name, sizeof(st->name), "timezone", 8);
			t = next_token(&lx);
		} else if (is_name(&t)) {
			read_name(&lx, st, &t);
		}
	} else if (word_is(&t, "discard")) {
		t = next_token(&lx);
		if (t.type == TOK_WORD)
			copy_lower(st->name, sizeof(st->name), t.p, t.n);	/* all, plans, sequences, temp */
		st->flags |= word_is(&t, "all") ? SQL_RESETS : SQL_TEMP_TABLE;
		t = next_token(&lx);
	} else if (word_is(&t, "listen")) {
		st->flags |= SQL_LISTEN;
		t = next_token(&lx);
	} else if (word_is(&t, "prepare")) {
		t = next_token(&lx);
		if (!word_is(&t, "transaction"))
			st->flags |= SQL_PREPARE;
	} else if (word_is(&t, "deallocate")) {
		st->flags |= SQL_DEALLOCATE;
		t = next_token(&lx);
		if (word_is(&t, "prepare"))
			t = next_token(&lx);
		if (is_name(&t))
			copy_lower(st->name, sizeof(st->name), t.p, t.n);	/* a name, or "all" */
		t = next_token(&lx);
	} else if (word_is(&t, "load")) {
		st->flags |= SQL_LOAD;
		t = next_token(&lx);
	} else if (word_is(&t, "do")) {
		st->flags |= SQL_OPAQUE;	/* an anonymous code block may do anything */
		t = next_token(&lx);
	} else if (word_is(&t, "declare")) {
		in_declare = true;
		t = next_token(&lx);
	} else if (word_is(&t, "create")) {
		/* read below, as after EXPLAIN */
	} else {
		t = next_token(&lx);
		if (word_is(&first, "explain")) {
			/* EXPLAIN ANALYZE runs its statement: read that one's CREATE TEMP and INTO too */
			if (t.type == TOK_OTHER && t.n == 1 && *t.p == '(') {
				int d = 0;
				do {
					if (t.type == TOK_OTHER && t.n == 1 && (*t.p == '(' || *t.p == ')'))
						d += *t.p == '(' ? 1 : -1;
					t = next_token(&lx);
				} while (d > 0 && t.type != TOK_END);
			}
			while (word_is(&t, "analyze") || word_is(&t, "analyse") || word_is(&t, "verbose"))
				t = next_token(&lx);
			select_like = word_is(&t, "select") || word_is(&t, "with");
		}
	}
	if (word_is(&t, "create") && (word_is(&first, "create") || word_is(&first, "explain"))) {
		in_create = true;
		t = next_token(&lx);
		if (word_is(&t, "or")) {	/* CREATE OR REPLACE TEMP VIEW */
			t = next_token(&lx);
			t = next_token(&lx);
		}
		if (word_is(&t, "global") || word_is(&t, "local"))
			t = next_token(&lx);
		if (word_is(&t, "temp") || word_is(&t, "temporary"))
			temp = true;
		/* CREATE FUNCTION / PROCEDURE ... BEGIN ATOMIC ... END holds statements and their ';' */
		routine = word_is(&first, "create") && (word_is(&t, "function") || word_is(&t, "procedure"));
		t = next_token(&lx);
	}

	/* rest of the statement: function calls, WITH HOLD, ON COMMIT DROP, INTO, pg_temp */
	select_like = select_like || strcmp(st->kind, "select") == 0 || strcmp(st->kind, "with") == 0;
	/* a ';' inside parentheses (CREATE RULE ... DO (a; b)) or a routine's body does not end the statement */
	while (t.type != TOK_END && !(t.type == TOK_SEMI && depth <= 0 && body_depth <= 0)) {
		if (t.type == TOK_UNICODE)
			st->flags |= SQL_OPAQUE;	/* U&"pg\005ftemp", U&"set\005fconfig": names are not decoded */
		else if (t.type == TOK_OTHER && t.n == 1 && (*t.p == '(' || *t.p == ')'))
			depth += *t.p == '(' ? 1 : -1;
		if (is_punct(&t, '('))
			st->flags |= call;	/* a call: the column set_config or FROM pg_advisory_lock calls nothing */
		call = 0;
		if (is_name(&t)) {
			if (is_temp_schema(&t))
				temp = true;	/* pg_temp.x, pg_temp_3.x, INTO pg_temp: temporary objects by their schema */
			if (is_advisory(&t))
				call = SQL_ADVISORY_LOCK;
			else if (name_is(&t, "set_config"))
				call = SQL_SETS_SESSION | SQL_SET_CONFIG;
		}
		if (routine && depth == 0 && !prev_dot && t.type == TOK_WORD) {
			/* psql's rule, made stricter: BEGIN ATOMIC opens the body, CASE and END nest inside it;
			 * t.end and t.case are column names */
			if (prev_begin && word_is(&t, "atomic"))
				body_depth++;
			else if (body_depth > 0 && word_is(&t, "case"))
				body_depth++;
			else if (body_depth > 0 && word_is(&t, "end"))
				body_depth--;
		}
		prev_begin = routine && depth == 0 && !prev_dot && word_is(&t, "begin");
		prev_dot = is_punct(&t, '.');
		if (t.type != TOK_WORD) {
			seen_on = 0;	/* keywords are bare words: "on", "commit", "drop" are names */
		} else if (select_like && depth == 0 && !prev_insert && word_is(&t, "into")) {
			struct token a = next_token(&lx);
			st->flags |= SQL_SELECT_INTO;
			if (word_is(&a, "local") || word_is(&a, "global"))
				a = next_token(&lx);
			if (word_is(&a, "temp") || word_is(&a, "temporary"))
				temp = true;
			prev_with = prev_insert = false;
			t = a;
			continue;
		} else if (in_declare && prev_with && word_is(&t, "hold")) {
			st->flags |= SQL_HOLD_CURSOR;
		} else if (in_declare && word_is(&t, "for")) {
			in_declare = false;	/* the query follows; WITH HOLD comes before FOR */
		} else if (in_create && temp && depth == 0 && !create_as && word_is(&t, "on")) {
			seen_on = 1;	/* CREATE TEMP TABLE t (...) ON COMMIT ...: outside parentheses, before AS */
		} else if (seen_on == 1 && word_is(&t, "commit")) {
			seen_on = 2;
		} else if (seen_on == 2 && word_is(&t, "drop")) {
			commit_drop = true;
		} else {
			seen_on = 0;
			if (in_create && depth == 0 && word_is(&t, "as"))
				create_as = true;	/* the query of CREATE TABLE AS follows */
		}
		prev_with = word_is(&t, "with");	/* WITH HOLD, not WITHOUT HOLD */
		prev_insert = word_is(&t, "insert") || word_is(&t, "merge");	/* WITH ... INSERT INTO makes no table */
		t = next_token(&lx);
	}
	if (temp && !commit_drop)
		st->flags |= SQL_TEMP_TABLE;
	*pos = lx.pos;
	return true;
}

unsigned sqlscan_flags(const char *sql, size_t len)
{
	struct sql_stmt st;
	size_t pos = 0;
	unsigned flags = 0;

	while (sqlscan_next(sql, len, &pos, &st))
		flags |= st.flags;
	return flags;
}

/* Add kind to the list unless it is there; false when the list is full. */
static bool add_kind(char kinds[][SQL_KIND_MAX], int *n, int room, const char *kind)
{
	for (int i = 0; i < *n; i++)
		if (strcmp(kinds[i], kind) == 0)
			return true;
	if (*n >= room)
		return false;
	memcpy(kinds[*n], kind, strlen(kind) + 1);
	(*n)++;
	return true;
}

int sqlscan_kinds(const char *sql, size_t len, char kinds[][SQL_KIND_MAX], int max, unsigned *session)
{
	struct sql_stmt st;
	size_t pos = 0;
	unsigned flags = 0;
	int n = 0;

	*session = 0;
	if (max < 4)
		return 0;
	if (sqlscan_plain(sql, len, kinds[0]))
		return 1;	/* one plain statement: its kind, without tokenizing */
	while (sqlscan_next(sql, len, &pos, &st)) {
		flags |= st.flags;
		if (st.kind[0])
			(void)add_kind(kinds, &n, max - 3, st.kind);	/* beyond the room: left out, the flags still count */
	}
	/* pseudo-kinds, after the statement kinds: prefilters can ask for these instead of every SELECT */
	if (flags & SQL_ADVISORY_LOCK)
		(void)add_kind(kinds, &n, max, "advisory_lock");
	if (flags & SQL_SET_CONFIG)
		(void)add_kind(kinds, &n, max, "set_config");
	if (flags & SQL_SELECT_INTO)
		(void)add_kind(kinds, &n, max, "select_into");
	*session = flags & ~(unsigned)SQL_HINTS;
	return n;
}

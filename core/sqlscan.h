/* Cheap keyword scan of SQL text: statement kinds and the statements that change session state. */
#ifndef MB_SQLSCAN_H
#define MB_SQLSCAN_H

#include <stdbool.h>
#include <stddef.h>

/* Session-state effects of one statement. */
enum {
	SQL_SETS_SESSION = 1 << 0,	/* SET (not LOCAL / TRANSACTION), SET ROLE, set_config() */
	SQL_RESETS = 1 << 1,		/* RESET name / ALL, SET name TO DEFAULT, DISCARD ALL */
	SQL_LISTEN = 1 << 2,
	SQL_PREPARE = 1 << 3,		/* SQL-level PREPARE */
	SQL_DEALLOCATE = 1 << 4,
	SQL_HOLD_CURSOR = 1 << 5,	/* DECLARE ... WITH HOLD */
	SQL_TEMP_TABLE = 1 << 6,	/* CREATE TEMP ... without ON COMMIT DROP, SELECT INTO TEMP, pg_temp.x; DISCARD other than ALL */
	SQL_ADVISORY_LOCK = 1 << 7,	/* session-level advisory lock functions */
	SQL_LOAD = 1 << 8,
	/* what the scan cannot see through: a DO block, a U&"..." identifier (both may do anything above) */
	SQL_OPAQUE = 1 << 11,
	/* hints for policy prefilters, not session state by themselves */
	SQL_SET_CONFIG = 1 << 9,	/* mentions set_config (with SQL_SETS_SESSION) */
	SQL_SELECT_INTO = 1 << 10,	/* SELECT / WITH ... INTO (with SQL_TEMP_TABLE when into a temp table) */
};
#define SQL_HINTS (SQL_SET_CONFIG | SQL_SELECT_INTO)

#define SQL_KIND_MAX 24

struct sql_stmt {
	char kind[SQL_KIND_MAX];	/* first keyword, lower case; "" for an empty statement */
	unsigned flags;
	/* SET / RESET: the parameter (lower case, "all" for RESET ALL / DISCARD ALL);
	 * DISCARD: what is discarded; DEALLOCATE: the statement name or "all" */
	char name[64];
};

/*
 * Scan the statement starting at *pos in sql[0..len) and advance *pos past it
 * (and its ';'). Returns false when no statement is left. Never allocates;
 * text cut off in the middle is scanned as far as it goes.
 */
bool sqlscan_next(const char *sql, size_t len, size_t *pos, struct sql_stmt *st);

/*
 * The common case in one call: the text is a single SELECT, INSERT, UPDATE,
 * DELETE, WITH, VALUES or TABLE statement that calls nothing of session
 * interest, so sqlscan_next would find one statement without flags. kind,
 * when not NULL (SQL_KIND_MAX bytes), then gets its first keyword.
 */
bool sqlscan_plain(const char *sql, size_t len, char *kind);

/* OR of the flags of every statement in the text. */
unsigned sqlscan_flags(const char *sql, size_t len);

/*
 * q.kinds of the text, as policies see them: each statement's kind once, in
 * order of first appearance, then the pseudo-kinds "advisory_lock",
 * "set_config" and "select_into" where a statement calls or does that.
 * Returns how many were written to kinds (0 when the text holds no statement;
 * at most max, which must be at least 4: statement kinds beyond max - 3 are
 * left out). *session gets the OR of every statement's session-state flags
 * (SQL_HINTS left out): 0 when the text changes nothing of the session.
 * tests/corpus/statements.tsv holds what it must answer, and so must
 * lua/moonbouncer/classify.lua.
 */
int sqlscan_kinds(const char *sql, size_t len, char kinds[][SQL_KIND_MAX], int max, unsigned *session);

#endif

/* Statements the core adds to a client's Query to follow its session settings, and their hidden results. */
#ifndef MB_SESSION_H
#define MB_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "params.h"
#include "proto.h"
#include "sbuf.h"

struct client;

/*
 * A simple Query may carry several statements, and a RESET in it must return
 * to the client's own values before the next statement runs. So after a
 * RESET the core adds a statement of its own that sets the client's startup
 * values again, and after a session SET it follows (transaction and
 * statement mode) one that reads the value the server took. Those added
 * statements answer with a RowDescription whose first column is
 * SESSION_MARKER; their answers never reach the client.
 */
#define SESSION_MARKER "moonbouncer:hidden"

enum hidden_kind {
	HIDDEN_RESET,	/* after RESET name / ALL: the startup values again; a tracked reset */
	HIDDEN_CAPTURE,	/* after SET name: the value now in force, tracked */
	HIDDEN_CAPTURE_ALL, /* after set_config(<expression>, ...): every setting the session set, tracked */
	HIDDEN_END,	/* end of one Query: the entries before it that did not answer never ran */
};

struct hidden_entry {
	uint8_t kind;
	bool track;		/* the core tracks the setting for the client */
	char name[64];		/* "all" for RESET ALL */
	uint64_t ready_seq;	/* HIDDEN_END: the ReadyForQuery count that ends its Query */
};

/* The added statements of the requests in flight, in order. */
struct session_hidden {
	struct hidden_entry *items;
	int head, n, cap;
	uint64_t ready_seen;	/* ReadyForQuery answers seen while entries were waiting */
	bool reading;		/* between a marked RowDescription and its CommandComplete */
	struct hidden_entry cur;
	char *value;		/* what the capture at hand read */
};

/* Names RESET ALL leaves alone (so the core does not set them again either). */
bool session_not_reset_by_all(const char *name);
/*
 * Append, to the Query text in out, the statement that follows a RESET of
 * name ("all": RESET ALL) and note it. Returns false when there is nothing to
 * add: no startup value to restore and nothing to track. False also on out
 * of memory (out->failed).
 */
bool session_add_reset(struct session_hidden *h, const struct param_set *startup, const char *name, bool track,
		       struct pktbuf *out);
/* Append the statement that reads name's value after a session SET, and note it. */
bool session_add_capture(struct session_hidden *h, const char *name, struct pktbuf *out);
/* Append the statement that reads every value the session has set (roles and transaction settings aside). */
bool session_add_capture_all(struct session_hidden *h, struct pktbuf *out);
/* A set_config() call in a statement: its parameter when written as a literal, and whether it is local. */
struct set_config_call {
	char name[64];	/* "" when not a plain literal (or too long) */
	int is_local;	/* 0: false, 1: true, -1: not a literal */
};
/* The set_config() calls in sql[0..len), up to max of them; returns how many were found (may exceed max). */
int session_set_config_calls(const char *sql, size_t len, struct set_config_call *out, int max);
/*
 * The value a session "SET name {TO|=} value[, ...]" in sql[0..len) gives
 * name, as current_setting() would show it, for values written as plain
 * literals, numbers and identifiers. False for anything else (E'' strings,
 * SET TIME ZONE INTERVAL, ...).
 */
bool session_set_value(const char *sql, size_t len, const char *name, char *value, size_t cap);
/* The Query with added statements is complete; ready_before: ReadyForQuery answers still owed before its own. */
bool session_end_query(struct session_hidden *h, int ready_before) __attribute__((warn_unused_result));
/* A server message while added statements are in flight: true if it was theirs (*act says what to do). */
bool session_server_msg(struct client *c, const struct sbuf_msg *msg, enum sbuf_action *act);
void session_clear(struct session_hidden *h);

#endif

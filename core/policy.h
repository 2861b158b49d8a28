/* Lua policy engine: loads the policy files and runs their hooks under time and memory budgets. */
#ifndef MB_POLICY_H
#define MB_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

struct param_set;

/*
 * Result of one hook run. Only POLICY_DECIDED carries a decision; the three
 * failures carry out->error ("file:line: message", no traceback) and the core
 * applies policy_failure (closed: reject, open: pass).
 */
enum policy_result {
	POLICY_PASS = 0,	/* no policy interested, or every hook returned nil */
	POLICY_DECIDED,		/* out holds a decision */
	POLICY_ERROR,		/* a hook raised or returned a malformed decision */
	POLICY_TIMEOUT,		/* the call ran longer than policy_timeout */
	POLICY_MEMORY,		/* the Lua heap would have grown past policy_max_memory */
};

/* The core's view of a client, valid for the duration of one call. NULL strings reach Lua as nil. */
struct policy_client {
	unsigned long long id;
	const char *user;
	const char *database;
	const char *application_name;
	const char *addr;			/* "1.2.3.4", "::1" or "unix" */
	int port;
	bool tls;
	const struct param_set *params;		/* the client's session parameters, or NULL */
	bool in_transaction;
	const char *tenant;			/* set by an earlier on_connect decision, or NULL */
	const char *pool_mode;			/* "session", "transaction", "statement" */
};

/* One statement (or a simple Query holding several), valid for the duration of one call. */
struct policy_query {
	const char *kind;			/* first statement's kind from sqlscan ("select", "set", ...) */
	const char *const *kinds;		/* every statement's kind, in order (may repeat) */
	int n_kinds;
	const char *protocol;			/* "simple", "extended" or "function" */
	const char *name;			/* prepared statement name of a Parse, or NULL */
	const char *sql;			/* the text (not NUL-terminated necessarily) */
	size_t sql_len;
	bool truncated;				/* sql is only a prefix (set here too when longer than
						 * policy_max_query_length) */
};

/* One track entry: {name=, value=} (SET), {reset="name"} (reset), {reset=true} (reset_all). */
struct policy_track {
	char *name;		/* NULL for reset_all */
	char *value;		/* NULL for reset / reset_all */
	bool reset;
	bool reset_all;
};

/*
 * A merged decision. Every string is malloc'ed and NUL-terminated and freed by
 * policy_decision_clear(). Each policy_on_*() call initialises *out itself, so
 * pass a cleared (or zeroed) struct and clear it when done.
 */
struct policy_decision {
	bool reject;
	char sqlstate[6];	/* with reject: the policy's or the default (42501 connect, 0A000 query) */
	char *message;		/* with reject */
	char *rewrite;		/* on_query: the text to send instead */
	size_t rewrite_len;
	char *route;		/* [databases] entry name */
	char *user;		/* server-side user */
	enum pool_mode pool_mode; /* POOL_MODE_UNSET unless overridden */
	char *tenant;
	struct policy_track *track;
	int n_track;
	char error[256];	/* for the failures: "file:line: message" */
};

/* A tenant's limits; -1 means no limit (0 is a limit: none allowed). */
struct tenant_limits {
	int max_clients;	/* connections of the tenant; more are refused with 53300 */
	int max_active;		/* concurrent server-holding transactions; more wait in line */
	double rate;		/* transactions per second, burst of one second's worth */
};

struct policy_stats {
	unsigned long long calls;		/* hook calls that entered Lua */
	unsigned long long failures;		/* of those, every kind of failure (timeouts and memory too) */
	unsigned long long timeouts;
	unsigned long long memory_errors;
	unsigned long long reloads;		/* successful loads and reloads */
	unsigned long long reload_failures;
	char last_error[256];
	size_t heap_bytes;			/* Lua heap in use, 0 when idle */
	int n_files;				/* policy files in force, 0 when idle */
	unsigned generation;			/* see policy_generation() */
};

/*
 * Start-up (and --check): load policy_file, then every *.lua in policy_dir in
 * name order. With no policy configured the engine stays idle: every hook
 * passes and no Lua state exists. On failure returns false with the reason in
 * err (and the engine idle).
 */
bool policy_load(const struct config *cfg, char *err, size_t errlen) __attribute__((warn_unused_result));
/*
 * SIGHUP / RELOAD: load the files again, fresh (policies/ modules included),
 * into the running Lua state, and switch over only if every file loaded. On
 * failure the old set stays in force and the reason is returned. Client ctx
 * and shared counters survive; no connection is touched.
 */
bool policy_reload(const struct config *cfg, char *err, size_t errlen) __attribute__((warn_unused_result));
/* Close the Lua state (shared counters are freed too). */
void policy_shutdown(void);

/* Use <dir>/lua and <dir>/policies instead of looking next to the executable and in MB_DATADIR (tests). */
void policy_set_runtime_dir(const char *dir);

/* Cheap checks, no Lua call: is any policy interested at all? */
bool policy_active(void);
bool policy_wants_connect(void);
bool policy_wants_query(const char *const *kinds, int n_kinds);
bool policy_wants_begin(void);
bool policy_wants_disconnect(void);
bool policy_wants_limits(void);
/* Bumped by every successful load or reload: cached limits of an older generation are stale. */
unsigned policy_generation(void);

enum policy_result policy_on_connect(const struct policy_client *c, struct policy_decision *out);
enum policy_result policy_on_query(const struct policy_client *c, const struct policy_query *q,
				   struct policy_decision *out);
enum policy_result policy_on_transaction_begin(const struct policy_client *c, const struct policy_query *q,
					       struct policy_decision *out);
/* Bookkeeping hook; also forgets the client's Lua objects (ctx). Call for every client that logged in. */
void policy_on_disconnect(const struct policy_client *c);
/*
 * A tenant's limits, asked from Lua once per tenant and generation (then
 * cached). POLICY_PASS: no limits (out set to unlimited); failures are logged
 * and counted once.
 */
enum policy_result policy_limits(const char *tenant, struct tenant_limits *out);

void policy_decision_clear(struct policy_decision *d);
void policy_get_stats(struct policy_stats *st);

#endif

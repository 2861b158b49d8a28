/* Lua policy engine: loads the policy files and runs their hooks under time and memory budgets. */
#ifndef MB_POLICY_H
#define MB_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

struct param_set;

/*
 * Result of one hook run. POLICY_DECIDED carries a decision in out. The three
 * failures carry out->error ("file:line: message", no traceback); the core
 * logs it and applies policy_failure (closed: reject, open: pass). After a
 * POLICY_ERROR out may also hold what the policies that did not fail decided
 * (the dispatcher goes on past a failing file); the core drops it: under
 * policy_failure = open the event passes as if no policy had decided anything.
 */
enum policy_result {
	POLICY_PASS = 0, /* no policy interested, or every hook returned nil */
	POLICY_DECIDED,	 /* out holds a decision */
	POLICY_ERROR,	 /* a hook raised or returned a malformed decision */
	POLICY_TIMEOUT,	 /* the call ran longer than policy_timeout */
	POLICY_MEMORY,	 /* the Lua heap would have grown past policy_max_memory */
};

/*
 * The core's view of a client, read during one call. NULL strings reach Lua as
 * nil. Lua keeps a table per client id until policy_on_disconnect: user,
 * database, addr, port and tls are taken from the first call; the others are
 * refreshed on every call.
 */
struct policy_client {
	unsigned long long id;
	const char *user;
	const char *database;
	const char *application_name;
	const char *addr; /* "1.2.3.4", "::1" or "unix"; NULL: format_addr makes it when needed */
	/* The client table is built once per client: the address text is only needed then. */
	void (*format_addr)(const struct policy_client *v, char *buf, size_t len);
	const void *owner; /* for format_addr */
	int port;
	bool tls;
	const struct param_set *params; /* the client's session parameters, or NULL */
	bool in_transaction;
	const char *tenant;    /* set by an earlier on_connect decision, or NULL */
	const char *pool_mode; /* "session", "transaction", "statement" */
};

/* One statement (or a simple Query holding several), read during one call. */
struct policy_query {
	const char *kind;	  /* first statement's kind from sqlscan ("select", "set", ...) */
	const char *const *kinds; /* every statement's kind, in order; NULL/0: { kind } */
	int n_kinds;
	const char *protocol; /* "simple", "extended" or "function" */
	const char *name;     /* prepared statement name of a Parse, or NULL */
	const char *sql;      /* the text, need not be NUL-terminated */
	size_t sql_len;
	bool truncated; /* sql is only a prefix; also set here when sql_len passes
						 * policy_max_query_length (Lua then sees that prefix) */
};

/* One track entry: {name=, value=} (SET), {reset="name"} (reset), {reset=true} (reset_all). */
struct policy_track {
	char *name;  /* NULL for reset_all */
	char *value; /* NULL for reset and reset_all */
	bool reset;
	bool reset_all;
};

/*
 * A merged decision. Every string is malloc'ed and NUL-terminated; a string
 * the core takes over must be set to NULL before policy_decision_clear().
 * Each policy_on_*() call initialises *out itself (no need to clear it first);
 * clear it when done.
 */
struct policy_decision {
	bool reject;
	char sqlstate[6]; /* with reject: the policy's, or the default (42501 connect, 0A000 statement) */
	char *message;	  /* with reject */
	char *rewrite;	  /* on_query: the text to send instead (never for a truncated statement) */
	size_t rewrite_len;
	char *route;		    /* on_connect, on_transaction_begin: a [databases] entry name */
	char *user;		    /* on_connect: server-side user */
	enum pool_mode pool_mode;   /* on_connect: POOL_MODE_UNSET unless overridden */
	char *tenant;		    /* on_connect */
	struct policy_track *track; /* on_query; names checked with params_name_ok() */
	int n_track;
	char error[256]; /* for the failures: "file:line: message" */
};

/* A tenant's limits; -1 means no limit (0 is a limit: none allowed). */
struct tenant_limits {
	int max_clients; /* connections of the tenant; more are refused with 53300 */
	int max_active;	 /* concurrent server-holding transactions; more wait in line */
	double rate;	 /* transactions per second, burst of one second's worth */
};

struct policy_stats {
	unsigned long long calls;    /* hook calls that entered Lua */
	unsigned long long failures; /* of those, every kind of failure (timeouts and memory too) */
	unsigned long long timeouts;
	unsigned long long memory_errors;
	unsigned long long reloads; /* successful loads and reloads */
	unsigned long long reload_failures;
	char last_error[256];
	size_t heap_bytes;   /* Lua heap in use, 0 when idle */
	int n_files;	     /* policy files in force, 0 when idle */
	unsigned generation; /* see policy_generation() */
};

/*
 * Start-up (and --check): load policy_file, then every *.lua in policy_dir in
 * name order, with the budgets policy_timeout, policy_max_memory and
 * policy_max_query_length. The runtime (its lua/ and policies/ directories) is
 * looked up beside the executable, then in MB_DATADIR. With no policy file the
 * engine stays idle: every hook passes and no Lua state exists. On failure
 * returns false with the reason in err, and the engine is idle.
 */
bool policy_load(const struct config *cfg, char *err, size_t errlen) __attribute__((warn_unused_result));
/*
 * SIGHUP / RELOAD: load the files again, fresh (the policies.* modules they
 * require too), into the running Lua state, and switch over only if every file
 * loaded. On failure the old set stays in force and the reason is returned.
 * Client ctx and the counters survive; no connection is touched. No policy
 * file left: the engine goes idle (ctx is dropped, counters are kept).
 */
bool policy_reload(const struct config *cfg, char *err, size_t errlen) __attribute__((warn_unused_result));
/* Close the Lua state and free the counters. */
void policy_shutdown(void);

/* Use <dir>/lua and <dir>/policies instead of looking beside the executable and in MB_DATADIR (tests). */
void policy_set_runtime_dir(const char *dir);

/* Cheap checks, no Lua call. */
bool policy_active(void); /* a policy set is loaded */
bool policy_wants_connect(void);
/* Does any policy's query_kinds hold one of these kinds (or a policy want every statement)? */
bool policy_wants_query(const char *const *kinds, int n_kinds);
bool policy_wants_begin(void);
/* Must policy_on_disconnect run? True whenever the engine is active (it forgets the client's objects). */
bool policy_wants_disconnect(void);
bool policy_wants_limits(void);
/* Bumped by every successful load or reload: limits of an older generation are stale. */
unsigned policy_generation(void);

enum policy_result policy_on_connect(const struct policy_client *c, struct policy_decision *out);
/* Passes at once (no Lua) when policy_wants_query() says no for q's kinds. */
enum policy_result policy_on_query(const struct policy_client *c, const struct policy_query *q,
				   struct policy_decision *out);
enum policy_result policy_on_transaction_begin(const struct policy_client *c, const struct policy_query *q,
					       struct policy_decision *out);
/* The on_disconnect hooks (failures are logged here), then forget the client's Lua table and ctx. */
void policy_on_disconnect(const struct policy_client *c);
/*
 * A tenant's limits, asked from Lua once per tenant and generation (then
 * cached, failures too). POLICY_PASS: no limits, out all -1. A failure is
 * logged here and out is all -1.
 */
enum policy_result policy_limits(const char *tenant, struct tenant_limits *out);

void policy_decision_clear(struct policy_decision *d);
void policy_get_stats(struct policy_stats *st);

#endif

/* The policy engine's state, private to the policy*.c family: the Lua state and the generation in force. */
#ifndef MB_POLICY_ENGINE_H
#define MB_POLICY_ENGINE_H

#include <stdbool.h>
#include <stddef.h>

#include <lua.h>

#include "policy.h"

/* seconds a whole load or reload may run */
#define LOAD_TIMEOUT 2.0
/* the dispatcher's D.BUDGET_MARK: its sandbox re-raises errors carrying it, so policies cannot catch them */
#define BUDGET_MARK "policy budget exceeded"

enum hook {
	HOOK_CONNECT,
	HOOK_QUERY,
	HOOK_BEGIN,
	HOOK_DISCONNECT,
	HOOK_LIMITS,
};

/* "on_connect", ...: the hooks' names in policies and in the dispatcher */
extern const char *const eng_hook_names[HOOK_LIMITS + 1];

/* Budgets of the calls; 0 disables one. */
struct policy_budget {
	double timeout;		 /* seconds of wall clock per hook call */
	size_t max_memory;	 /* bytes of Lua heap */
	size_t max_query_length; /* bytes of q.sql; longer: prefix + q.truncated */
};

/* The engine: one Lua state with the runtime loaded and the generation in force. */
struct engine {
	lua_State *L;

	/* registry references */
	int ref_dispatcher;
	int ref_gen;
	int ref_host;
	int ref_ctx_store; /* the dispatcher's client.ctx tables, by client id */
	int ref_keys;	   /* the client table's field names, interned once (enum client_key) */
	int ref_q[2];	   /* on_query, on_transaction_begin */
	int ref_client_mt;
	int ref_dbs;
	int ref_dbs_prev; /* the map before a reload, put back if the reload fails */

	/* valid during one call */
	const struct policy_client *cur_client;
	const struct policy_query *cur_query;
	size_t cur_sql_len;

	/* mirror of the generation in force, for the cheap checks */
	bool has[HOOK_LIMITS + 1];
	bool all_kinds;
	char **kinds; /* sorted */
	int n_kinds;
	int n_files;
};

extern struct engine eng;
extern struct policy_stats eng_stats;
extern unsigned eng_generation; /* see policy_generation() */
extern struct policy_budget eng_budget;

/* strcmp for qsort and bsearch of string arrays */
int eng_cmp_str(const void *a, const void *b);

#endif

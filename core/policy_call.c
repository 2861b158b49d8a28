/* Hook calls: the cheap checks that keep Lua out of the hot path, and the calls into the dispatcher. */
#include "policy_call.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "clock.h"
#include "errbuf.h"
#include "log.h"
#include "policy.h"
#include "policy_budget.h"
#include "policy_decision.h"
#include "policy_engine.h"
#include "policy_report.h"
#include "policy_smap.h"
#include "policy_view.h"

/* tenants whose limits are cached per generation */
#define LIMITS_CACHE_MAX 4096

static struct smap limits_cache = { .max = LIMITS_CACHE_MAX };

struct call {
	enum hook hook;
	const struct policy_client *c;
	const struct policy_query *q;
	bool truncated;
	const char *tenant;
	struct policy_decision *out;
	struct tenant_limits *limits;
	bool decided;
	bool failed; /* the dispatcher reported an error (err) */
	char err[256];
};

/* A non-nil result at idx is an error message: its text into err. */
static bool take_error(lua_State *L, int idx, char *err, size_t errlen)
{
	if (lua_isnil(L, idx))
		return false;
	if (lua_type(L, idx) == LUA_TSTRING)
		errbuf_set(err, errlen, "%s", lua_tostring(L, idx));
	else
		errbuf_set(err, errlen, "(error value is a %s)", luaL_typename(L, idx));
	return true;
}

/* Protected body of every hook call: ud is a struct call. */
static int call_body(lua_State *L)
{
	struct call *k = lua_touserdata(L, 1);
	int base, nargs = 2;

	lua_rawgeti(L, LUA_REGISTRYINDEX, eng.ref_gen);
	lua_getfield(L, -1, eng_hook_names[k->hook]);
	lua_pushvalue(L, -2);
	if (k->hook == HOOK_LIMITS) {
		lua_pushstring(L, k->tenant);
	} else {
		policy_view_push_client(L, k->c);
		if (k->hook == HOOK_QUERY || k->hook == HOOK_BEGIN) {
			policy_view_push_q(L, k->hook == HOOK_QUERY ? 0 : 1, k->q, k->truncated);
			nargs = 3;
		}
	}
	base = lua_gettop(L) - nargs;
	lua_call(L, nargs, 2);
	if (nargs == 3) {
		policy_view_end_q(L, k->hook == HOOK_QUERY ? 0 : 1);
	}
	/* results at base, base + 1 */
	k->failed = take_error(L, base + 1, k->err, sizeof(k->err));
	if (k->hook == HOOK_DISCONNECT) {
		if (!k->failed)
			k->failed = take_error(L, base, k->err, sizeof(k->err));
		return 0;
	}
	if (lua_isnil(L, base) || (lua_type(L, base) == LUA_TBOOLEAN && !lua_toboolean(L, base)))
		return 0;
	if (k->hook == HOOK_LIMITS) {
		k->failed = !policy_decision_take_limits(L, base, k->limits, k->err, sizeof(k->err));
		k->decided = !k->failed;
		return 0;
	}
	if (!policy_decision_take(L, base, k->hook, k->out, k->err, sizeof(k->err))) {
		k->failed = true;
		policy_decision_clear(k->out);
		return 0;
	}
	k->decided = !policy_decision_empty(k->out);
	return 0;
}

/* Failures of on_connect/on_query/on_transaction_begin are logged by the core, which knows the client. */
static void count_failure(enum policy_result res, enum hook hook, const char *msg)
{
	snprintf(eng_stats.last_error, sizeof(eng_stats.last_error), "%s", msg);
	policy_report_failure(hook, res == POLICY_TIMEOUT ? 1 : res == POLICY_MEMORY ? 2 : 0, msg);
	if (hook == HOOK_DISCONNECT || hook == HOOK_LIMITS)
		log_warning("policy %s failed: %s", eng_hook_names[hook], msg);
}

/* One hook call; the outcome as the public result, with out (or k->limits) filled. */
static enum policy_result call_hook(struct call *k)
{
	enum policy_result res;
	char err[256];

	long long start = clock_now_ns();

	eng.cur_client = k->c;
	eng.cur_query = k->q;
	res = policy_budget_run(call_body, k, eng_budget.timeout, err, sizeof(err));
	policy_report_call(k->hook, clock_now_ns() - start);
	eng.cur_client = NULL;
	eng.cur_query = NULL;
	if (res == POLICY_PASS && policy_budget_memory_refused()) {
		/* the dispatcher caught the memory error; its message names the file */
		res = POLICY_MEMORY;
		if (k->failed)
			errbuf_set(err, sizeof(err), "%s (%s: policy_max_memory is %zu bytes)", k->err,
				   BUDGET_MARK, policy_budget_heap_limit());
		else
			errbuf_set(err, sizeof(err),
				   "%s: the Lua heap would grow past policy_max_memory, %zu bytes",
				   BUDGET_MARK, policy_budget_heap_limit());
	}
	if (res != POLICY_PASS) {
		if (k->out) {
			policy_decision_clear(k->out);
			snprintf(k->out->error, sizeof(k->out->error), "%s", err);
		}
		count_failure(res, k->hook, err);
		return res;
	}
	if (k->failed) {
		/* what the policies that did not fail decided stays in out, for policy_failure=open */
		if (k->out)
			snprintf(k->out->error, sizeof(k->out->error), "%s", k->err);
		count_failure(POLICY_ERROR, k->hook, k->err);
		return POLICY_ERROR;
	}
	return k->decided ? POLICY_DECIDED : POLICY_PASS;
}

enum policy_result policy_on_connect(const struct policy_client *c, struct policy_decision *out)
{
	struct call k = { .hook = HOOK_CONNECT, .c = c, .out = out };

	policy_decision_init(out);
	if (eng.L == NULL || !eng.has[HOOK_CONNECT])
		return POLICY_PASS;
	return call_hook(&k);
}

static enum policy_result query_hook(enum hook hook, const struct policy_client *c,
				     const struct policy_query *q, struct policy_decision *out)
{
	struct call k = { .hook = hook, .c = c, .q = q, .out = out, .truncated = q->truncated };

	policy_decision_init(out);
	if (eng.L == NULL || !eng.has[hook])
		return POLICY_PASS;
	if (hook == HOOK_QUERY &&
	    !policy_wants_query(q->n_kinds > 0 ? q->kinds : &q->kind, q->n_kinds > 0 ? q->n_kinds : 1))
		return POLICY_PASS;
	eng.cur_sql_len = q->sql_len;
	if (eng_budget.max_query_length != 0 && q->sql_len > eng_budget.max_query_length) {
		eng.cur_sql_len = eng_budget.max_query_length;
		k.truncated = true;
	}
	return call_hook(&k);
}

enum policy_result policy_on_query(const struct policy_client *c, const struct policy_query *q,
				   struct policy_decision *out)
{
	return query_hook(HOOK_QUERY, c, q, out);
}

enum policy_result policy_on_transaction_begin(const struct policy_client *c, const struct policy_query *q,
					       struct policy_decision *out)
{
	return query_hook(HOOK_BEGIN, c, q, out);
}

/* Protected: drop a client's table and its ctx. */
static int forget_body(lua_State *L)
{
	const struct policy_client *c = lua_touserdata(L, 1);

	lua_rawgeti(L, LUA_REGISTRYINDEX, eng.ref_dispatcher);
	lua_getfield(L, -1, "forget");
	lua_pushnumber(L, (lua_Number)c->id);
	lua_call(L, 1, 0);
	return 0;
}

void policy_on_disconnect(const struct policy_client *c)
{
	char err[256];
	bool known;

	if (eng.L == NULL)
		return;
	/* only a client some policy kept a ctx for has anything to forget */
	lua_rawgeti(eng.L, LUA_REGISTRYINDEX, eng.ref_ctx_store);
	lua_pushnumber(eng.L, (lua_Number)c->id);
	lua_rawget(eng.L, -2);
	known = !lua_isnil(eng.L, -1);
	lua_settop(eng.L, 0);
	if (eng.has[HOOK_DISCONNECT]) {
		struct call k = { .hook = HOOK_DISCONNECT, .c = c };

		(void)call_hook(&k);
		known = true;
	}
	if (!known)
		return;
	if (policy_budget_run(forget_body, (void *)c, LOAD_TIMEOUT, err, sizeof(err)) != POLICY_PASS)
		log_warning("policy: could not forget client %llu: %s", c->id, err);
}

enum policy_result policy_limits(const char *tenant, struct tenant_limits *out)
{
	struct call k = { .hook = HOOK_LIMITS, .tenant = tenant, .limits = out };
	enum policy_result res;
	struct sentry *e;
	bool created;
	size_t len;

	out->max_clients = -1;
	out->max_active = -1;
	out->rate = -1;
	if (eng.L == NULL || !eng.has[HOOK_LIMITS] || tenant == NULL)
		return POLICY_PASS;
	len = strlen(tenant);
	e = smap_get(&limits_cache, tenant, len);
	if (e != NULL) {
		*out = e->lim;
		return e->res;
	}
	res = call_hook(&k);
	if (res != POLICY_DECIDED) {
		out->max_clients = -1;
		out->max_active = -1;
		out->rate = -1;
	}
	if (limits_cache.n >= limits_cache.max)
		smap_clear(&limits_cache);
	e = smap_put(&limits_cache, tenant, len, 0, &created);
	if (e != NULL) {
		e->res = res;
		e->lim = *out;
	}
	return res;
}

/* ---------------------------------------------------------------------------------------------- */
/* cheap checks */

bool policy_active(void)
{
	return eng.L != NULL;
}

bool policy_wants_connect(void)
{
	return eng.L != NULL && eng.has[HOOK_CONNECT];
}

bool policy_wants_begin(void)
{
	return eng.L != NULL && eng.has[HOOK_BEGIN];
}

bool policy_wants_disconnect(void)
{
	return eng.L != NULL; /* with or without the hook: the client's Lua objects must go */
}

bool policy_wants_limits(void)
{
	return eng.L != NULL && eng.has[HOOK_LIMITS];
}

bool policy_wants_query(const char *const *kinds, int n_kinds)
{
	if (eng.L == NULL || !eng.has[HOOK_QUERY])
		return false;
	if (eng.all_kinds)
		return true;
	for (int i = 0; i < n_kinds; i++) {
		if (kinds[i] != NULL &&
		    bsearch(&kinds[i], eng.kinds, (size_t)eng.n_kinds, sizeof(*eng.kinds), eng_cmp_str))
			return true;
	}
	return false;
}

void policy_call_forget_limits(void)
{
	smap_clear(&limits_cache);
}

/* Lua policy engine: the Lua state, loading and reloading policy generations, the engine's statistics. */
#include "policy.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <luajit.h>

#include "errbuf.h"
#include "log.h"
#include "policy_budget.h"
#include "policy_call.h"
#include "policy_decision.h"
#include "policy_engine.h"
#include "policy_files.h"
#include "policy_host.h"
#include "policy_pattern.h"
#include "policy_report.h"
#include "policy_view.h"

/* clang-format off */
const char *const eng_hook_names[HOOK_LIMITS + 1] = {
	[HOOK_CONNECT] = "on_connect",
	[HOOK_QUERY] = "on_query",
	[HOOK_BEGIN] = "on_transaction_begin",
	[HOOK_DISCONNECT] = "on_disconnect",
	[HOOK_LIMITS] = "limits",
};
/* clang-format on */

struct engine eng = { .ref_dispatcher = LUA_NOREF };
struct policy_stats eng_stats;
unsigned eng_generation;
struct policy_budget eng_budget;

struct setup_args {
	const char *root;
};

static void open_lib(lua_State *L, const char *name, lua_CFunction fn)
{
	lua_pushcfunction(L, fn);
	lua_pushstring(L, name);
	lua_call(L, 1, 0);
}

static int new_ref(lua_State *L)
{
	return luaL_ref(L, LUA_REGISTRYINDEX);
}

/* Protected: libraries (no jit, no ffi), the host module, the dispatcher, the view tables. */
static int setup_body(lua_State *L)
{
	struct setup_args *a = lua_touserdata(L, 1);
	char err[256];

	open_lib(L, "", luaopen_base);
	open_lib(L, LUA_LOADLIBNAME, luaopen_package);
	open_lib(L, LUA_TABLIBNAME, luaopen_table);
	open_lib(L, LUA_STRLIBNAME, luaopen_string);
	open_lib(L, LUA_MATHLIBNAME, luaopen_math);
	open_lib(L, LUA_IOLIBNAME, luaopen_io);
	open_lib(L, LUA_OSLIBNAME, luaopen_os);
	open_lib(L, LUA_DBLIBNAME, luaopen_debug);
	open_lib(L, LUA_BITLIBNAME, luaopen_bit);

	/* the runtime comes from <root>/lua only; no C modules */
	lua_getglobal(L, "package");
	lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua", a->root, a->root);
	lua_setfield(L, -2, "path");
	lua_pushliteral(L, "");
	lua_setfield(L, -2, "cpath");
	lua_pushnil(L);
	lua_setfield(L, -2, "loadlib");
	lua_getfield(L, -1, "loaders");
	for (int i = (int)lua_objlen(L, -1); i > 2; i--) {
		lua_pushnil(L);
		lua_rawseti(L, -2, i);
	}
	lua_pop(L, 1);

	lua_getfield(L, -1, "loaded");
	policy_host_push(L);
	lua_pushvalue(L, -1);
	eng.ref_host = new_ref(L);
	lua_setfield(L, -2, "moonbouncer");
	lua_pop(L, 2);

	lua_getglobal(L, "require");
	lua_pushliteral(L, "moonbouncer.dispatcher");
	lua_call(L, 1, 1);
	if (!lua_istable(L, -1))
		return luaL_error(L, "moonbouncer.dispatcher did not return a table");
	if (!policy_decision_schema_check(L, lua_gettop(L), err, sizeof(err)))
		return luaL_error(L, "%s", err);
	eng.ref_dispatcher = new_ref(L);

	/* after the runtime took its own locals: policies get pattern functions under the budget, also
	 * through the string metatable (q.sql:find) */
	lua_getglobal(L, LUA_STRLIBNAME);
	policy_pattern_install(L, policy_budget_pattern);
	lua_pop(L, 1);

	lua_pushboolean(L, 0);
	eng.ref_gen = new_ref(L);
	lua_rawgeti(L, LUA_REGISTRYINDEX, eng.ref_dispatcher);
	lua_getfield(L, -1, "ctx_store");
	lua_remove(L, -2);
	lua_call(L, 0, 1);
	if (!lua_istable(L, -1))
		return luaL_error(L, "moonbouncer.dispatcher.ctx_store() did not return a table");
	eng.ref_ctx_store = new_ref(L);
	lua_newtable(L);
	eng.ref_dbs = new_ref(L);
	lua_newtable(L);
	eng.ref_dbs_prev = new_ref(L);
	policy_view_setup(L);
	return 0;
}

struct load_args {
	const struct config *cfg;
	const char *root;
	struct file_list *files;
	/* the new mirror, handed over on success */
	bool has[HOOK_LIMITS + 1];
	bool all_kinds;
	char **kinds;
	int n_kinds;
	char err[512];
	bool failed;
};

static void free_kinds(char **kinds, int n)
{
	for (int i = 0; i < n; i++)
		free(kinds[i]);
	free(kinds);
}

/* Protected: set databases(), call D.load(paths, opts) and, if it worked, make the result current. */
static int load_body(lua_State *L)
{
	struct load_args *a = lua_touserdata(L, 1);
	const struct config *cfg = a->cfg;
	int d, gen, np = 1;

	policy_host_push_databases(L, cfg);
	lua_rawgeti(L, LUA_REGISTRYINDEX, eng.ref_dbs);
	lua_rawseti(L, LUA_REGISTRYINDEX, eng.ref_dbs_prev);
	lua_rawseti(L, LUA_REGISTRYINDEX, eng.ref_dbs); /* policies may call databases() while loading */

	lua_rawgeti(L, LUA_REGISTRYINDEX, eng.ref_dispatcher);
	d = lua_gettop(L);
	lua_getfield(L, d, "load");
	lua_createtable(L, a->files->n, 0);
	for (int i = 0; i < a->files->n; i++) {
		lua_pushstring(L, a->files->paths[i]);
		lua_rawseti(L, -2, i + 1);
	}
	lua_createtable(L, 0, 3);
	lua_rawgeti(L, LUA_REGISTRYINDEX, eng.ref_host);
	lua_setfield(L, -2, "host");
	/* require "policies.x": the runtime's policies/x.lua, then <policy_dir>/policies/x.lua, then beside
	 * policy_file */
	lua_createtable(L, 3, 0);
	lua_pushfstring(L, "%s/?.lua", a->root);
	lua_rawseti(L, -2, np++);
	if (cfg->policy_dir != NULL && cfg->policy_dir[0] != '\0') {
		lua_pushfstring(L, "%s/?.lua", cfg->policy_dir);
		lua_rawseti(L, -2, np++);
	}
	if (cfg->policy_file != NULL && cfg->policy_file[0] != '\0') {
		const char *slash = strrchr(cfg->policy_file, '/');

		if (slash == NULL) {
			lua_pushliteral(L, "./?.lua");
		} else {
			lua_pushlstring(L, cfg->policy_file, (size_t)(slash - cfg->policy_file));
			lua_pushfstring(L, "%s/?.lua", lua_tostring(L, -1));
			lua_remove(L, -2);
		}
		lua_rawseti(L, -2, np++);
	}
	lua_setfield(L, -2, "searcher_paths");
	lua_getfield(L, d, "ctx_store");
	lua_call(L, 0, 1);
	lua_setfield(L, -2, "ctx_store");
	lua_call(L, 2, 2);
	if (!lua_istable(L, -2)) {
		snprintf(a->err, sizeof(a->err), "%s",
			 lua_isstring(L, -1) ? lua_tostring(L, -1) : "moonbouncer.dispatcher: load failed");
		a->failed = true;
		return 0;
	}
	lua_pop(L, 1);
	gen = lua_gettop(L);

	/* the mirror for the cheap checks */
	lua_getfield(L, gen, "has");
	for (int h = 0; h <= HOOK_LIMITS; h++) {
		lua_getfield(L, -1, eng_hook_names[h]);
		a->has[h] = lua_toboolean(L, -1);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	lua_getfield(L, gen, "all_kinds");
	a->all_kinds = lua_toboolean(L, -1);
	lua_pop(L, 1);
	lua_getfield(L, gen, "kinds");
	if (lua_istable(L, -1)) {
		int cap = 0;

		lua_pushnil(L);
		while (lua_next(L, -2) != 0) {
			lua_pop(L, 1);
			if (lua_type(L, -1) != LUA_TSTRING)
				continue;
			if (a->n_kinds == cap) {
				char **nk;

				cap = cap ? cap * 2 : 16;
				nk = realloc(a->kinds, (size_t)cap * sizeof(*nk));
				if (nk == NULL)
					return luaL_error(L, "out of memory");
				a->kinds = nk;
			}
			a->kinds[a->n_kinds] = strdup(lua_tostring(L, -1));
			if (a->kinds[a->n_kinds] == NULL)
				return luaL_error(L, "out of memory");
			a->n_kinds++;
		}
	}
	lua_pop(L, 1);
	if (a->n_kinds > 1)
		qsort(a->kinds, (size_t)a->n_kinds, sizeof(*a->kinds), eng_cmp_str);

	/* nothing can fail past this point */
	lua_pushvalue(L, gen);
	lua_rawseti(L, LUA_REGISTRYINDEX, eng.ref_gen);
	return 0;
}

/* Load the files into the running state; on success the new generation and its mirror are in force. */
static bool load_generation(const struct config *cfg, const char *root, struct file_list *files, char *err,
			    size_t errlen)
{
	struct load_args a = { .cfg = cfg, .root = root, .files = files };
	char perr[256];
	enum policy_result res;

	res = policy_budget_run(load_body, &a, eng_budget.timeout > 0 ? LOAD_TIMEOUT : 0, perr, sizeof(perr));
	if (res != POLICY_PASS || a.failed) {
		if (res == POLICY_TIMEOUT)
			errbuf_set(err, errlen, "loading the policies took longer than %g s: %s",
				   LOAD_TIMEOUT, perr);
		else
			errbuf_set(err, errlen, "%s", res != POLICY_PASS ? perr : a.err);
		free_kinds(a.kinds, a.n_kinds);
		/* the config in force is still the old one (no allocation: both keys exist) */
		lua_rawgeti(eng.L, LUA_REGISTRYINDEX, eng.ref_dbs_prev);
		lua_rawseti(eng.L, LUA_REGISTRYINDEX, eng.ref_dbs);
		lua_gc(eng.L, LUA_GCCOLLECT, 0); /* the half-loaded generation */
		return false;
	}
	memcpy(eng.has, a.has, sizeof(eng.has));
	eng.all_kinds = a.all_kinds;
	free_kinds(eng.kinds, eng.n_kinds);
	eng.kinds = a.kinds;
	eng.n_kinds = a.n_kinds;
	eng.n_files = files->n;
	policy_call_forget_limits();
	eng_generation++;
	lua_gc(eng.L, LUA_GCCOLLECT, 0); /* the old generation */
	policy_budget_collected();
	return true;
}

static void close_state(void)
{
	if (eng.L != NULL) {
		policy_budget_close(eng.L);
	}
	free_kinds(eng.kinds, eng.n_kinds);
	memset(&eng, 0, sizeof(eng));
	eng.ref_dispatcher = LUA_NOREF;
	policy_call_forget_limits();
}

static bool open_state(const char *root, char *err, size_t errlen)
{
	struct setup_args a = { .root = root };
	char perr[256];

	policy_budget_set_heap_limit(eng_budget.max_memory);
	eng.L = lua_newstate(policy_budget_alloc, NULL);
	if (eng.L == NULL) {
		errbuf_set(err, errlen, "cannot create a Lua state");
		return false;
	}
	/* count hooks do not run inside compiled traces: interpret only */
	luaJIT_setmode(eng.L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
	if (policy_budget_run(setup_body, &a, eng_budget.timeout > 0 ? LOAD_TIMEOUT : 0, perr,
			      sizeof(perr)) != POLICY_PASS) {
		errbuf_set(err, errlen, "loading the Lua runtime from %s/lua: %s", root, perr);
		close_state();
		return false;
	}
	return true;
}

/* Shared by load and reload: fresh state when asked (or none yet), else a new generation in place. */
static bool load_policies(const struct config *cfg, bool fresh, char *err, size_t errlen)
{
	struct file_list files = { 0 };
	char root[PATH_MAX];
	bool ok = false;

	eng_budget = policy_budget_from_config(cfg);
	if (!policy_files_list(cfg, &files, err, errlen))
		goto out;
	if (files.n == 0) {
		if (eng.L != NULL)
			log_info("policy: no policy files configured, policies off");
		close_state();
		ok = true;
		goto out;
	}
	if (!policy_files_runtime(root, sizeof(root), err, errlen))
		goto out;
	if (fresh)
		close_state();
	if (eng.L == NULL && !open_state(root, err, errlen))
		goto out;
	policy_budget_set_heap_limit(eng_budget.max_memory);
	if (!load_generation(cfg, root, &files, err, errlen)) {
		if (fresh)
			close_state();
		goto out;
	}
	log_info("policy: loaded %d file%s (generation %u)", files.n, files.n == 1 ? "" : "s",
		 eng_generation);
	ok = true;
out:
	policy_report_load(files.paths, files.n, ok, err);
	policy_files_free(&files);
	if (ok) {
		eng_stats.reloads++;
	} else {
		eng_stats.reload_failures++;
		if (err != NULL && errlen > 0)
			snprintf(eng_stats.last_error, sizeof(eng_stats.last_error), "%s", err);
	}
	return ok;
}

bool policy_load(const struct config *cfg, char *err, size_t errlen)
{
	return load_policies(cfg, true, err, errlen);
}

bool policy_reload(const struct config *cfg, char *err, size_t errlen)
{
	return load_policies(cfg, false, err, errlen);
}

void policy_shutdown(void)
{
	close_state();
	policy_host_clear();
	policy_budget_shutdown();
}

void policy_get_stats(struct policy_stats *st)
{
	*st = eng_stats;
	/* calls and failures are counted per hook (SHOW POLICIES); the engine's totals are their sums */
	for (int h = 0; h < POLICY_REPORT_HOOKS; h++) {
		struct policy_hook_report r;
		policy_report_hook(h, &r);
		st->calls += r.calls;
		st->failures += r.failures;
		st->timeouts += r.timeouts;
		st->memory_errors += r.memory_errors;
	}
	st->heap_bytes = eng.L ? policy_budget_heap() : 0;
	st->n_files = eng.L ? eng.n_files : 0;
	st->generation = eng_generation;
}

unsigned policy_generation(void)
{
	return eng_generation;
}

int eng_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

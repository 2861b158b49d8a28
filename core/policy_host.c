/* The host module policies require as "moonbouncer": log, now, the databases, shared counters. */
#include "policy_host.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "clock.h"
#include "log.h"
#include "policy_engine.h"
#include "policy_smap.h"

/* moonbouncer.counter_*: keys and key length */
#define COUNTER_MAX_KEYS 65536
#define COUNTER_MAX_KEY_LEN 255

/* counters live in C: they survive reloads */
static struct smap counters = { .max = COUNTER_MAX_KEYS };

static int host_log(lua_State *L)
{
	const char *level = "info", *msg;
	enum log_level lv;

	if (lua_gettop(L) >= 2) {
		level = luaL_checkstring(L, 1);
		msg = lua_tostring(L, 2);
		if (lua_type(L, 2) != LUA_TSTRING)
			return luaL_error(L, "log: message must be a string, got %s", luaL_typename(L, 2));
	} else {
		if (lua_type(L, 1) != LUA_TSTRING)
			return luaL_error(L, "log: message must be a string, got %s", luaL_typename(L, 1));
		msg = lua_tostring(L, 1);
	}
	if (strcmp(level, "error") == 0)
		lv = LOG_LEVEL_ERROR;
	else if (strcmp(level, "warning") == 0)
		lv = LOG_LEVEL_WARNING;
	else if (strcmp(level, "info") == 0)
		lv = LOG_LEVEL_INFO;
	else if (strcmp(level, "debug") == 0)
		lv = LOG_LEVEL_DEBUG;
	else
		return luaL_error(L, "log: unknown level '%s' (debug, info, warning, error)", level);
	if (log_enabled(lv))
		log_msg(lv, "policy: %s", msg);
	return 0;
}

static int host_now(lua_State *L)
{
	lua_pushnumber(L, clock_now());
	return 1;
}

/* A copy of the [databases] map built at load time: policies may change theirs freely. */
static int host_databases(lua_State *L)
{
	lua_rawgeti(L, LUA_REGISTRYINDEX, eng.ref_dbs);
	lua_newtable(L);
	lua_pushnil(L);
	while (lua_next(L, -3) != 0) {
		lua_newtable(L);
		lua_pushnil(L);
		while (lua_next(L, -3) != 0) {
			lua_pushvalue(L, -2);
			lua_insert(L, -2);
			lua_rawset(L, -4);
		}
		lua_remove(L, -2);
		lua_pushvalue(L, -2);
		lua_insert(L, -2);
		lua_rawset(L, -4);
	}
	return 1;
}

/* Counter key: a string of 1 to COUNTER_MAX_KEY_LEN bytes. */
static const char *check_key(lua_State *L, size_t *len)
{
	const char *key = lua_tolstring(L, 1, len);

	if (lua_type(L, 1) != LUA_TSTRING || *len == 0 || *len > COUNTER_MAX_KEY_LEN)
		luaL_error(L, "counter key must be a string of 1 to %d bytes", COUNTER_MAX_KEY_LEN);
	return key;
}

/* TTL argument: nil or <= 0 = no expiry, else seconds from now. */
static double check_ttl(lua_State *L, int idx, double now)
{
	double ttl;

	if (lua_isnoneornil(L, idx))
		return 0;
	if (lua_type(L, idx) != LUA_TNUMBER)
		luaL_error(L, "counter ttl must be a number of seconds, got %s", luaL_typename(L, idx));
	ttl = lua_tonumber(L, idx);
	if (isnan(ttl))
		luaL_error(L, "counter ttl must be a number of seconds, got nan");
	return ttl > 0 ? now + ttl : 0;
}

static double check_number(lua_State *L, int idx, const char *fn, const char *what)
{
	if (lua_type(L, idx) != LUA_TNUMBER)
		luaL_error(L, "%s: %s must be a number, got %s", fn, what, luaL_typename(L, idx));
	return lua_tonumber(L, idx);
}

/* The live entry for key, dropping it if it has expired. */
static struct sentry *counter_live(const char *key, size_t len, double now)
{
	struct sentry *e = smap_get(&counters, key, len);

	if (e != NULL && e->expires != 0 && e->expires <= now) {
		smap_delete(&counters, key, len);
		e = NULL;
	}
	return e;
}

static struct sentry *counter_create(lua_State *L, const char *key, size_t len, double now)
{
	bool created;
	struct sentry *e = smap_put(&counters, key, len, now, &created);

	if (e == NULL)
		luaL_error(L, "cannot store counter '%s': the counter table is full (%d keys)", key,
			   COUNTER_MAX_KEYS);
	return e;
}

/* counter_get(key) -> value, 0 when absent or expired */
static int counter_get(lua_State *L)
{
	size_t len;
	const char *key = check_key(L, &len);
	struct sentry *e = counter_live(key, len, clock_now());

	lua_pushnumber(L, e ? e->value : 0);
	return 1;
}

/* counter_set(key, value, ttl) -> value */
static int counter_set(lua_State *L)
{
	size_t len;
	const char *key = check_key(L, &len);
	double value = check_number(L, 2, "counter_set", "value");
	double now = clock_now();
	double expires = check_ttl(L, 3, now);
	struct sentry *e = counter_create(L, key, len, now);

	e->value = value;
	e->expires = expires;
	lua_pushnumber(L, value);
	return 1;
}

/* counter_incr(key, delta = 1, ttl) -> new value; ttl counts from the key's creation */
static int counter_incr(lua_State *L)
{
	size_t len;
	const char *key = check_key(L, &len);
	double delta = lua_isnoneornil(L, 2) ? 1 : check_number(L, 2, "counter_incr", "delta");
	double now = clock_now();
	double expires = check_ttl(L, 3, now);
	struct sentry *e = counter_live(key, len, now);

	if (e == NULL) {
		e = counter_create(L, key, len, now);
		e->value = 0;
		e->expires = expires;
	}
	e->value += delta;
	lua_pushnumber(L, e->value);
	return 1;
}

static int counter_delete(lua_State *L)
{
	size_t len;
	const char *key = check_key(L, &len);

	smap_delete(&counters, key, len);
	return 0;
}

void policy_host_push(lua_State *L)
{
	static const luaL_Reg host_fns[] = {
		{ "log", host_log },
		{ "now", host_now },
		{ "databases", host_databases },
		{ "counter_get", counter_get },
		{ "counter_set", counter_set },
		{ "counter_incr", counter_incr },
		{ "counter_delete", counter_delete },
		{ NULL, NULL },
	};

	lua_createtable(L, 0, 8);
	for (const luaL_Reg *r = host_fns; r->name; r++) {
		lua_pushcfunction(L, r->func);
		lua_setfield(L, -2, r->name);
	}
}

static void set_str_field(lua_State *L, int idx, const char *name, const char *value)
{
	if (value == NULL)
		lua_pushnil(L);
	else
		lua_pushstring(L, value);
	lua_setfield(L, idx, name);
}

void policy_host_push_databases(lua_State *L, const struct config *cfg)
{
	lua_createtable(L, 0, (int)cfg->n_dbs);
	for (size_t i = 0; i < cfg->n_dbs; i++) {
		const struct db_entry *db = &cfg->dbs[i];
		int t;

		lua_createtable(L, 0, 7);
		t = lua_gettop(L);
		set_str_field(L, t, "name", db->name);
		set_str_field(L, t, "host", db->host);
		lua_pushinteger(L, db->port);
		lua_setfield(L, t, "port");
		set_str_field(L, t, "dbname", db->dbname ? db->dbname : db->name);
		set_str_field(L, t, "user", db->user);
		set_str_field(L, t, "pool_mode", config_pool_mode_name(db->pool_mode));
		if (db->pool_size >= 0) {
			lua_pushinteger(L, db->pool_size);
			lua_setfield(L, t, "pool_size");
		}
		lua_setfield(L, -2, db->name);
	}
}

void policy_host_clear(void)
{
	smap_clear(&counters);
}

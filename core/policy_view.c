/* The client and q tables hooks receive: built per call, costly fields made on first access. */
#include "policy_view.h"

#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "params.h"
#include "policy_engine.h"

/*
 * Field names of client tables, interned once at start: lua_setfield would
 * hash each name again on every call.
 */
enum client_key {
	CK_ID = 1,
	CK_USER,
	CK_DATABASE,
	CK_APPLICATION_NAME,
	CK_ADDR,
	CK_PORT,
	CK_TLS,
	CK_IN_TRANSACTION,
	CK_TENANT,
	CK_POOL_MODE,
	QK_KIND,
	QK_PROTOCOL,
	QK_NAME,
	QK_TRUNCATED,
	QK_SQL,
	QK_KINDS, /* q tables */
	CK_COUNT
};
static const char *const client_keys[CK_COUNT] = {
	[CK_ID] = "id",
	[CK_USER] = "user",
	[CK_DATABASE] = "database",
	[CK_APPLICATION_NAME] = "application_name",
	[CK_ADDR] = "addr",
	[CK_PORT] = "port",
	[CK_TLS] = "tls",
	[CK_IN_TRANSACTION] = "in_transaction",
	[CK_TENANT] = "tenant",
	[CK_POOL_MODE] = "pool_mode",
	[QK_KIND] = "kind",
	[QK_PROTOCOL] = "protocol",
	[QK_NAME] = "name",
	[QK_TRUNCATED] = "truncated",
	[QK_SQL] = "sql",
	[QK_KINDS] = "kinds",
};

/*
 * __index of client tables: params, and addr when the core left it to
 * format_addr, are built from the current call's client on first access
 * (formatting an address costs more than a whole hook call).
 */
static int client_index(lua_State *L)
{
	const struct policy_client *c = eng.cur_client;
	const char *key = lua_tostring(L, 2);
	bool params;

	if (c == NULL || key == NULL)
		return 0;
	params = strcmp(key, "params") == 0;
	if (!params && (strcmp(key, "addr") != 0 || c->addr != NULL || c->format_addr == NULL))
		return 0;
	lua_getfield(L, 1, "id");
	if (lua_tonumber(L, -1) != (lua_Number)c->id)
		return 0; /* a table kept past its call */
	if (params) {
		lua_createtable(L, 0, c->params ? c->params->n : 0);
		for (int i = 0; c->params && i < c->params->n; i++) {
			lua_pushstring(L, c->params->items[i].value);
			lua_setfield(L, -2, c->params->items[i].name);
		}
	} else {
		char addr[64] = "";
		c->format_addr(c, addr, sizeof(addr));
		lua_pushstring(L, addr);
	}
	lua_pushvalue(L, 2);
	lua_pushvalue(L, -2);
	lua_rawset(L, 1);
	return 1;
}

/* t[key] = the value on top of the stack (popped); keys is the index of the interned names. */
static void set_key(lua_State *L, int t, int keys, enum client_key key)
{
	lua_rawgeti(L, keys, key);
	lua_insert(L, -2);
	lua_rawset(L, t);
}

/* t[key] = value, or nil for NULL (a reused table must lose the previous call's value). */
static void set_key_value(lua_State *L, int t, int keys, enum client_key key, const char *value)
{
	if (value == NULL)
		lua_pushnil(L);
	else
		lua_pushstring(L, value);
	set_key(L, t, keys, key);
}

static void set_key_str(lua_State *L, int t, int keys, enum client_key key, const char *value)
{
	if (value == NULL)
		return; /* a fresh table: absent is nil */
	lua_pushstring(L, value);
	set_key(L, t, keys, key);
}

void policy_view_push_client(lua_State *L, const struct policy_client *c)
{
	int t, keys;

	lua_rawgeti(L, LUA_REGISTRYINDEX, eng.ref_keys);
	keys = lua_gettop(L);
	lua_createtable(L, 0, 12);
	t = lua_gettop(L);
	lua_pushnumber(L, (lua_Number)c->id);
	set_key(L, t, keys, CK_ID);
	set_key_str(L, t, keys, CK_USER, c->user);
	set_key_str(L, t, keys, CK_DATABASE, c->database);
	set_key_str(L, t, keys, CK_APPLICATION_NAME, c->application_name);
	set_key_str(L, t, keys, CK_ADDR, c->addr); /* NULL: made by client_index when read */
	lua_pushinteger(L, c->port);
	set_key(L, t, keys, CK_PORT);
	lua_pushboolean(L, c->tls);
	set_key(L, t, keys, CK_TLS);
	lua_pushboolean(L, c->in_transaction);
	set_key(L, t, keys, CK_IN_TRANSACTION);
	set_key_str(L, t, keys, CK_TENANT, c->tenant);
	set_key_str(L, t, keys, CK_POOL_MODE, c->pool_mode);
	lua_rawgeti(L, LUA_REGISTRYINDEX, eng.ref_client_mt); /* params: built on first access */
	lua_setmetatable(L, t);
	lua_remove(L, keys);
}

/* __index of q tables: q.sql becomes a Lua string on first access, during the call only. */
static int q_index(lua_State *L)
{
	const char *key = lua_tostring(L, 2);

	if (eng.cur_query == NULL || key == NULL || strcmp(key, "sql") != 0)
		return 0;
	lua_pushlstring(L, eng.cur_query->sql ? eng.cur_query->sql : "", eng.cur_sql_len);
	lua_pushliteral(L, "sql");
	lua_pushvalue(L, -2);
	lua_rawset(L, 1);
	return 1;
}

void policy_view_push_q(lua_State *L, int which, const struct policy_query *q, bool truncated)
{
	int t, kt, old_n, new_n, keys;

	lua_rawgeti(L, LUA_REGISTRYINDEX, eng.ref_keys);
	keys = lua_gettop(L);
	lua_rawgeti(L, LUA_REGISTRYINDEX, eng.ref_q[which]);
	t = lua_gettop(L);
	set_key_value(L, t, keys, QK_KIND, q->kind);
	set_key_value(L, t, keys, QK_PROTOCOL, q->protocol);
	set_key_value(L, t, keys, QK_NAME, q->name);
	lua_pushboolean(L, truncated);
	set_key(L, t, keys, QK_TRUNCATED);
	lua_pushnil(L);
	set_key(L, t, keys, QK_SQL);
	lua_rawgeti(L, keys, QK_KINDS);
	lua_rawget(L, t);
	kt = lua_gettop(L);
	old_n = (int)lua_objlen(L, kt);
	for (int i = 0; i < q->n_kinds; i++) {
		lua_pushstring(L, q->kinds[i]);
		lua_rawseti(L, kt, i + 1);
	}
	new_n = q->n_kinds;
	if (new_n == 0 && q->kind != NULL) {
		lua_pushstring(L, q->kind);
		lua_rawseti(L, kt, ++new_n);
	}
	for (int i = new_n + 1; i <= old_n; i++) {
		lua_pushnil(L);
		lua_rawseti(L, kt, i);
	}
	lua_pop(L, 1);
	lua_remove(L, keys);
}

void policy_view_end_q(lua_State *L, int which)
{
	lua_rawgeti(L, LUA_REGISTRYINDEX, eng.ref_q[which]);
	lua_pushnil(L);
	lua_setfield(L, -2, "sql");
	lua_pop(L, 1);
}

void policy_view_setup(lua_State *L)
{
	lua_createtable(L, CK_COUNT - 1, 0);
	for (int i = 1; i < CK_COUNT; i++) {
		lua_pushstring(L, client_keys[i]);
		lua_rawseti(L, -2, i);
	}
	eng.ref_keys = luaL_ref(L, LUA_REGISTRYINDEX);

	lua_createtable(L, 0, 1);
	lua_pushcfunction(L, client_index);
	lua_setfield(L, -2, "__index");
	eng.ref_client_mt = luaL_ref(L, LUA_REGISTRYINDEX);

	lua_createtable(L, 0, 1);
	lua_pushcfunction(L, q_index);
	lua_setfield(L, -2, "__index");
	for (int i = 0; i < 2; i++) {
		lua_createtable(L, 0, 8);
		lua_newtable(L);
		lua_setfield(L, -2, "kinds");
		lua_pushvalue(L, -2);
		lua_setmetatable(L, -2);
		eng.ref_q[i] = luaL_ref(L, LUA_REGISTRYINDEX);
	}
	lua_pop(L, 1);
}

/* Decisions and limits: from the tables the dispatcher returns into the C structs the core acts on. */
#include "policy_decision.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "config.h"
#include "errbuf.h"

/*
 * The dispatcher has checked every decision and limits table against its
 * schema (DECISION_SCHEMA and LIMIT_FIELDS in dispatcher.lua, the one
 * definition of what a hook may return); this file only copies them into C.
 * What C could not hold still fails here instead of being misread: a value
 * that is not a string, a sqlstate that is not 5 bytes, a pool_mode the
 * config's parser does not know.
 */

/* The fields C takes; the dispatcher's schema must name exactly these (policy_decision_schema_check). */
static const char *const decision_fields[] = { "reject", "sqlstate",  "rewrite", "route",
					       "user",	 "pool_mode", "tenant",	 "track" };
static const char *const limit_fields[] = { "max_clients", "max_active", "rate" };

/* A Lua string field of the table at idx as a malloc'ed C string; false with a message on a bad value. */
static bool dup_field(lua_State *L, int idx, const char *field, char **dst, size_t *len_out, char *err,
		      size_t errlen)
{
	size_t len;
	const char *s;

	lua_getfield(L, idx, field);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return true;
	}
	if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER) {
		errbuf_set(err, errlen, "malformed decision: %s must be a string", field);
		lua_pop(L, 1);
		return false;
	}
	s = lua_tolstring(L, -1, &len);
	*dst = malloc(len + 1);
	if (*dst == NULL) {
		errbuf_set(err, errlen, "out of memory");
		lua_pop(L, 1);
		return false;
	}
	memcpy(*dst, s, len + 1);
	if (len_out)
		*len_out = len;
	lua_pop(L, 1);
	return true;
}

static bool take_track(lua_State *L, int idx, struct policy_decision *out, char *err, size_t errlen)
{
	int n;

	lua_getfield(L, idx, "track");
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return true;
	}
	if (!lua_istable(L, -1)) {
		errbuf_set(err, errlen, "malformed decision: track must be an array");
		return false;
	}
	n = (int)lua_objlen(L, -1);
	if (n == 0) {
		lua_pop(L, 1);
		return true;
	}
	out->track = calloc((size_t)n, sizeof(*out->track));
	if (out->track == NULL) {
		errbuf_set(err, errlen, "out of memory");
		return false;
	}
	for (int i = 1; i <= n; i++) {
		struct policy_track *tr = &out->track[out->n_track];
		int e;

		lua_rawgeti(L, -1, i);
		e = lua_gettop(L);
		if (!lua_istable(L, e)) {
			errbuf_set(err, errlen, "malformed decision: track[%d] must be a table", i);
			return false;
		}
		out->n_track++;
		lua_getfield(L, e, "reset");
		if (lua_type(L, -1) == LUA_TBOOLEAN && lua_toboolean(L, -1)) {
			tr->reset_all = true;
		} else if (!lua_isnil(L, -1)) {
			tr->reset = true;
			if (!dup_field(L, e, "reset", &tr->name, NULL, err, errlen))
				return false;
		} else if (!dup_field(L, e, "name", &tr->name, NULL, err, errlen) ||
			   !dup_field(L, e, "value", &tr->value, NULL, err, errlen)) {
			return false;
		}
		lua_pop(L, 2);
	}
	lua_pop(L, 1);
	return true;
}

bool policy_decision_take(lua_State *L, int idx, enum hook hook, struct policy_decision *out, char *err,
			  size_t errlen)
{
	char *sqlstate = NULL, *pool_mode = NULL;
	bool ok;

	if (!lua_istable(L, idx)) {
		errbuf_set(err, errlen, "malformed decision: %s returned a %s", eng_hook_names[hook],
			   luaL_typename(L, idx));
		return false;
	}
	ok = dup_field(L, idx, "reject", &out->message, NULL, err, errlen) &&
	     dup_field(L, idx, "sqlstate", &sqlstate, NULL, err, errlen) &&
	     dup_field(L, idx, "rewrite", &out->rewrite, &out->rewrite_len, err, errlen) &&
	     dup_field(L, idx, "route", &out->route, NULL, err, errlen) &&
	     dup_field(L, idx, "user", &out->user, NULL, err, errlen) &&
	     dup_field(L, idx, "pool_mode", &pool_mode, NULL, err, errlen) &&
	     dup_field(L, idx, "tenant", &out->tenant, NULL, err, errlen) &&
	     take_track(L, idx, out, err, errlen);
	if (ok && out->message != NULL) {
		out->reject = true;
		if (sqlstate == NULL) {
			strcpy(out->sqlstate, hook == HOOK_CONNECT ? "42501" : "0A000");
		} else if (strlen(sqlstate) == sizeof(out->sqlstate) - 1) {
			memcpy(out->sqlstate, sqlstate, sizeof(out->sqlstate));
		} else {
			errbuf_set(err, errlen, "malformed decision: sqlstate must be 5 characters");
			ok = false;
		}
	}
	if (ok && pool_mode != NULL && !config_pool_mode_parse(pool_mode, &out->pool_mode)) {
		errbuf_set(err, errlen,
			   "malformed decision: pool_mode must be session, transaction or statement");
		ok = false;
	}
	free(sqlstate);
	free(pool_mode);
	return ok;
}

bool policy_decision_empty(const struct policy_decision *d)
{
	return !d->reject && d->rewrite == NULL && d->route == NULL && d->user == NULL &&
	       d->pool_mode == POOL_MODE_UNSET && d->tenant == NULL && d->n_track == 0;
}

void policy_decision_clear(struct policy_decision *d)
{
	free(d->message);
	free(d->rewrite);
	free(d->route);
	free(d->user);
	free(d->tenant);
	for (int i = 0; i < d->n_track; i++) {
		free(d->track[i].name);
		free(d->track[i].value);
	}
	free(d->track);
	memset(d, 0, sizeof(*d));
	d->pool_mode = POOL_MODE_UNSET;
}

void policy_decision_init(struct policy_decision *out)
{
	memset(out, 0, sizeof(*out));
	out->pool_mode = POOL_MODE_UNSET;
}

/* A limit as a number, -1 when absent (the dispatcher checked it is a non-negative finite number). */
static bool take_limit(lua_State *L, int idx, const char *field, double *v, char *err, size_t errlen)
{
	lua_getfield(L, idx, field);
	if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TNUMBER) {
		errbuf_set(err, errlen, "malformed limits: %s must be a number", field);
		return false;
	}
	*v = lua_isnil(L, -1) ? -1 : lua_tonumber(L, -1);
	lua_pop(L, 1);
	return true;
}

bool policy_decision_take_limits(lua_State *L, int idx, struct tenant_limits *out, char *err, size_t errlen)
{
	double mc = -1, ma = -1, rate = -1;

	if (!lua_istable(L, idx)) {
		errbuf_set(err, errlen, "malformed limits: limits returned a %s", luaL_typename(L, idx));
		return false;
	}
	if (!take_limit(L, idx, "max_clients", &mc, err, errlen) ||
	    !take_limit(L, idx, "max_active", &ma, err, errlen) ||
	    !take_limit(L, idx, "rate", &rate, err, errlen))
		return false;
	out->max_clients = mc > INT_MAX ? INT_MAX : (int)mc;
	out->max_active = ma > INT_MAX ? INT_MAX : (int)ma;
	out->rate = rate;
	return true;
}

/* Do the keys of the table at idx name exactly these fields? Else the first difference into err. */
static bool same_fields(lua_State *L, int idx, const char *what, const char *const *fields, int n, char *err,
			size_t errlen)
{
	int found = 0;

	if (!lua_istable(L, idx)) {
		errbuf_set(err, errlen, "moonbouncer.dispatcher has no %s table", what);
		return false;
	}
	lua_pushnil(L);
	while (lua_next(L, idx) != 0) {
		const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
		int i = 0;

		lua_pop(L, 1);
		while (k != NULL && i < n && strcmp(k, fields[i]) != 0)
			i++;
		if (k == NULL || i == n) {
			errbuf_set(
				err, errlen,
				"moonbouncer.dispatcher's %s has the field %s, which the core does not take",
				what, k ? k : "(not a string)");
			lua_pop(L, 1);
			return false;
		}
		found++;
	}
	if (found != n) {
		errbuf_set(err, errlen, "moonbouncer.dispatcher's %s lacks fields the core takes", what);
		return false;
	}
	return true;
}

bool policy_decision_schema_check(lua_State *L, int dispatcher, char *err, size_t errlen)
{
	bool ok;

	lua_getfield(L, dispatcher, "DECISION_SCHEMA");
	ok = same_fields(L, lua_gettop(L), "DECISION_SCHEMA", decision_fields,
			 (int)(sizeof(decision_fields) / sizeof(decision_fields[0])), err, errlen);
	lua_pop(L, 1);
	if (!ok)
		return false;
	lua_getfield(L, dispatcher, "LIMIT_FIELDS");
	ok = same_fields(L, lua_gettop(L), "LIMIT_FIELDS", limit_fields,
			 (int)(sizeof(limit_fields) / sizeof(limit_fields[0])), err, errlen);
	lua_pop(L, 1);
	return ok;
}

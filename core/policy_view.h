/* The client and q tables hooks receive, private to the policy*.c family. */
#ifndef MB_POLICY_VIEW_H
#define MB_POLICY_VIEW_H

#include <stdbool.h>

#include <lua.h>

#include "policy.h"

/* The interned field names, the client metatable and the two reused q tables (registry refs in eng). */
void policy_view_setup(lua_State *L);
/*
 * Push a new client table with this call's values. It is not kept: a client
 * has Lua objects only while a hook runs (its ctx tables live in the
 * dispatcher's store), so idle clients cost the engine nothing.
 */
void policy_view_push_client(lua_State *L, const struct policy_client *c);
/* Push the q table of on_query (which 0) or on_transaction_begin (1), reset to q. */
void policy_view_push_q(lua_State *L, int which, const struct policy_query *q, bool truncated);
/* After the call: the q table keeps no copy of the text. */
void policy_view_end_q(lua_State *L, int which);

#endif

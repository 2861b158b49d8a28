/* The host module policies require as "moonbouncer", private to the policy*.c family. */
#ifndef MB_POLICY_HOST_H
#define MB_POLICY_HOST_H

#include <lua.h>

#include "config.h"

/* Push the module table: log, now, databases, counter_get/set/incr/delete (the API testing.lua fakes). */
void policy_host_push(lua_State *L);
/* name -> { name, host, port, dbname, user, pool_mode, pool_size } of every [databases] entry ("*" too). */
void policy_host_push_databases(lua_State *L, const struct config *cfg);
/* Forget every counter (policy_shutdown; a reload keeps them). */
void policy_host_clear(void);

#endif

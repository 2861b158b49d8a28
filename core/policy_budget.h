/* The budgets of policy calls (time, memory), private to the policy*.c family. */
#ifndef MB_POLICY_BUDGET_H
#define MB_POLICY_BUDGET_H

#include <stdbool.h>
#include <stddef.h>

#include <lua.h>

#include "config.h"
#include "policy_engine.h"

/* policy_timeout, policy_max_memory, policy_max_query_length; 0 (or less) means no limit. */
struct policy_budget policy_budget_from_config(const struct config *cfg);
/* lua_Alloc of the engine's state: counts the heap and refuses growth past the limit during calls. */
void *policy_budget_alloc(void *ud, void *ptr, size_t osize, size_t nsize);
/*
 * Run fn(ud) protected, under the budgets (timeout seconds of wall clock, 0:
 * none). Returns POLICY_PASS when it ran through (fn reports its own outcome
 * through ud), else the failure with the message in err.
 */
enum policy_result policy_budget_run(lua_CFunction fn, void *ud, double timeout, char *err, size_t errlen);
/* The budget check of the pattern functions (pattern_budget_fn of policy_pattern.h). */
void policy_budget_pattern(lua_State *L, const char *fn);
/* policy_max_memory for the calls from now on (0: none). */
void policy_budget_set_heap_limit(size_t bytes);
size_t policy_budget_heap_limit(void);
/* Bytes of Lua heap in use. */
size_t policy_budget_heap(void);
/* Did the allocator refuse during the last call (even if the dispatcher caught the error)? */
bool policy_budget_memory_refused(void);
/* A full collection just ran outside the budget: the heap now is the base of the next collection's trigger. */
void policy_budget_collected(void);
/* Close the state, out of any budget, and zero the heap count. */
void policy_budget_close(lua_State *L);
/* Delete the watchdog timer (policy_shutdown). */
void policy_budget_shutdown(void);

#endif

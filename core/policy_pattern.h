/* Lua pattern functions (string.find, match, gmatch, gsub) whose work a policy budget can stop. */
#ifndef MB_POLICY_PATTERN_H
#define MB_POLICY_PATTERN_H

#include <lua.h>

/*
 * Called every PATTERN_CHECK_STEPS steps of a match with the name of the
 * function ("string.find", ...); raises a Lua error (does not return) when the
 * call in progress is over its budget, else returns.
 */
typedef void (*pattern_budget_fn)(lua_State *L, const char *fn);

#define PATTERN_CHECK_STEPS 4096

/*
 * Replace find, match, gmatch and gsub in the string table at the top of the
 * stack (the one the string metatable's __index is) by versions that count
 * their steps and call budget() as above. Patterns without a quantifier
 * (* + - ?) or %b cannot backtrack and go to the original functions. Code that
 * took the originals into locals before (the runtime) keeps them.
 */
void policy_pattern_install(lua_State *L, pattern_budget_fn budget);

#endif

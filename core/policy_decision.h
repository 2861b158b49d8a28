/* Decisions and limits as C takes them from the dispatcher's results, private to the policy*.c family. */
#ifndef MB_POLICY_DECISION_H
#define MB_POLICY_DECISION_H

#include <stdbool.h>
#include <stddef.h>

#include <lua.h>

#include "policy.h"
#include "policy_engine.h"

/* An empty decision: nothing decided, pool_mode POOL_MODE_UNSET. */
void policy_decision_init(struct policy_decision *out);
/* Nothing decided? */
bool policy_decision_empty(const struct policy_decision *d);
/*
 * Copy the decision table at idx, which the dispatcher has checked against
 * its schema, into out (with the default sqlstate of a reject). False with the
 * reason in err should it still not fit what C can hold.
 */
bool policy_decision_take(lua_State *L, int idx, enum hook hook, struct policy_decision *out, char *err,
			  size_t errlen);
/* The same for the table limits(tenant) returned: out is only written when it fits. */
bool policy_decision_take_limits(lua_State *L, int idx, struct tenant_limits *out, char *err, size_t errlen);

/*
 * Do the dispatcher's DECISION_SCHEMA and LIMIT_FIELDS (the table at index
 * dispatcher) name exactly the fields C takes? Else the difference in err: a
 * field one side added and the other does not know.
 */
bool policy_decision_schema_check(lua_State *L, int dispatcher, char *err, size_t errlen);

#endif

-- test_policy.c: a syntax error on line 3, so a reload to this directory fails.
local P = {}
function P.on_connect(client) return { reject = "x" } 
return P

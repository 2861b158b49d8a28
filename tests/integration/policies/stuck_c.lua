-- Test policy: on marked statements, stays inside one C library call (a backtracking pattern search) until
-- the pattern budget stops it at policy_timeout (set it long). The statement must hold no "b" (the pattern
-- would then match at once).
local find, rep = string.find, string.rep

local P = { name = "stuck_c", query_kinds = { "select" } }

function P.on_query(client, q)
  if find(q.sql, "mq_stuck", 1, true) then
    find(q.sql, rep("a*", 25) .. "b")
  end
end

return P

-- Test policy: loops forever on marked statements.
local find = string.find

local P = { name = "fail_loop", query_kinds = { "select", "insert" } }

function P.on_query(client, q)
  if find(q.sql, "mb_loop", 1, true) then
    while true do end
  end
end

return P

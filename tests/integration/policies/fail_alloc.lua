-- Test policy: allocates without bound on marked statements.
local find, rep = string.find, string.rep

local P = { name = "fail_alloc", query_kinds = { "select", "insert" } }

function P.on_query(client, q)
  if find(q.sql, "mb_alloc", 1, true) then
    local t, i = {}, 0
    while true do
      i = i + 1
      t[i] = rep("x", 4096) .. i
    end
  end
end

return P

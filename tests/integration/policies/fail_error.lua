-- Test policy: raises an error on marked statements and connections; rejects mb_plain_reject normally.
local find = string.find

local P = { name = "fail_error", query_kinds = { "select", "insert" } }

function P.on_connect(client)
  if client.application_name == "mb_boom_connect" then
    error("boom in on_connect")
  end
end

function P.on_query(client, q)
  if find(q.sql, "mb_boom", 1, true) then
    error("boom in on_query")
  end
  if find(q.sql, "mb_plain_reject", 1, true) then
    return { reject = "plain reject still works" }
  end
end

return P

-- Test policy: rejects and rewrites statements that carry a marker.
--   mb_forbidden  -> reject with SQLSTATE 42501
--   mb_denied     -> reject with the default SQLSTATE
--   mb_rewrite_me -> rewritten to an INSERT into rw_side (a side effect the server leaves behind)
--   mb_rewrite_param -> rewritten to a statement using the same parameter $1
--   any FunctionCall -> a rewrite (there is no text to replace: the core must not send it as a FunctionCall)
local find = string.find

local P = { name = "decide", query_kinds = { "select", "insert", "function" } }

function P.on_query(client, q)
  if q.protocol == "function" then
    return { rewrite = "SELECT 'rewritten function call'" }
  end
  local sql = q.sql
  if find(sql, "mb_forbidden", 1, true) then
    return { reject = "mb_forbidden is not allowed here", sqlstate = "42501" }
  elseif find(sql, "mb_denied", 1, true) then
    return { reject = "mb_denied by policy" }
  elseif find(sql, "mb_rewrite_me", 1, true) then
    return { rewrite = "INSERT INTO rw_side (note) VALUES ('written by the rewrite') RETURNING 'rewritten'" }
  elseif find(sql, "mb_rewrite_param", 1, true) then
    return { rewrite = "SELECT 'rewritten:' || $1::text" }
  end
  return nil
end

return P

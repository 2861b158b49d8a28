-- Test policy: pattern matches that backtrack for ever on marked statements (the marks have no "b").
local P = { name = "pattern_runaway", query_kinds = { "select" } }

function P.on_query(client, q)
  local sql = q.sql
  if sql:find("pat_find", 1, true) then
    -- through the string metatable: 30 "a"s and 25 "a*" take longer than the age of the universe
    if sql:find(string.rep("a*", 25) .. "b") then
      return { reject = "found" }
    end
  elseif sql:find("pat_gsub", 1, true) then
    return { rewrite = (string.gsub(sql, string.rep("a?", 30) .. string.rep("a", 30) .. "b", "x")) }
  elseif sql:find("pat_match", 1, true) then
    -- a policy that catches errors cannot keep the budget's
    local ok, m = pcall(string.match, sql, string.rep("a-", 25) .. "b")
    return { reject = "caught: " .. tostring(ok) .. " " .. tostring(m) }
  elseif sql:find("^SELECT 'x%w*'") then
    return { reject = "patterns still work: " .. sql:match("'(x%w*)'") }
  end
end

return P

-- test_policy.c: hooks that fail: raise, loop, allocate without end, return malformed decisions.
local mb = require "moonbouncer"

local P = {}

P.query_kinds = { "select", "insert" }

function P.on_query(client, q)
  if q.kind == "insert" then
    return nil -- never looks at q.sql
  end
  local sql = q.sql
  if sql == "raise" then
    error("boom")
  elseif sql == "loop" then
    while true do
    end
  elseif sql == "pcall loop" then
    while true do
      pcall(function()
        while true do
        end
      end)
    end
  elseif sql == "alloc" then
    local t = {}
    while true do
      t[#t + 1] = string.rep("x", 65536) .. #t
    end
  elseif sql == "recurse" then
    local function f(n)
      return 1 + f(n + 1)
    end
    return f(1)
  elseif sql == "bad decision" then
    return { reject = 42 }
  elseif sql == "stall" then
    mb.log("info", "a log write the test holds up") -- the process waits, using no CPU
    for _ = 1, 5000 do
    end
    return { reject = "survived" }
  elseif sql == string.rep("a", 30) then
    return { reject = tostring(q.sql:find(string.rep("a*", 25) .. "b")) } -- backtracks for ever
  elseif sql == "pattern " .. string.rep("a", 30) then
    local ok = pcall(string.match, sql, string.rep("a-", 25) .. "b")
    return { reject = "caught: " .. tostring(ok) }
  elseif sql == "gsub " .. string.rep("a", 30) then
    return { reject = (sql:gsub(string.rep("a?", 30) .. string.rep("a", 30) .. "b", "x")) }
  elseif sql == "gmatch " .. string.rep("a", 30) then
    for m in sql:gmatch(string.rep("a*", 25) .. "b") do
      return { reject = m }
    end
  elseif sql == "patterns" then
    -- the budgeted functions give what Lua's own give
    local s = "SET app.tenant = 'acme'; select (a(b)c) from t -- x"
    local out = {}
    local function add(...)
      local n = select("#", ...)
      local t = { ... }
      for i = 1, n do
        out[#out + 1] = tostring(t[i])
      end
      out[#out + 1] = "|"
    end
    add(s:find("app%.(%w+)%s*=%s*'([^']*)'"))
    add(s:find("%s*=%s*", 1, true))
    add(s:match("^%s*(%a+)%s+(.-)%s*;"))
    add(s:match("%b()"))
    add(s:match("()t()"))
    add(s:find("t", -3))
    add(s:match("%f[%w]%w+$"))
    add(s:match("(%a)%1*"))
    add(s:gsub("%s+", " "))
    add(s:gsub("(%w+)", "<%1>", 3))
    add(s:gsub("%a+", { select = "SELECT", from = false }))
    add(s:gsub("(%a+)", function(w) if #w == 1 then return w:upper() end end))
    add(("x"):rep(5):gsub("x*", "-"))
    for k, v in s:gmatch("(%w+)%s*=%s*(%S+)") do
      add(k, v)
    end
    for w in s:gmatch("%a+") do
      add(w)
    end
    add(pcall(string.find, s, "(%w+"))
    add(pcall(string.find, s, "[a-"))
    add(pcall(string.find, s, "%"))
    return { reject = table.concat(out, " ") }
  elseif sql == "ok" then
    return { reject = "still works" }
  end
end

return P

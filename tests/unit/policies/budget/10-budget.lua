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
  elseif sql == "ok" then
    return { reject = "still works" }
  end
end

return P

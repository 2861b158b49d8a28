-- test_policy.c: statement decisions, ctx and counters (second file of a chain of two).
local mb = require "moonbouncer"
local helper = require "policies.testmod"

local P = {}

P.query_kinds = { "select", "set", "reset", "drop", "listen", "show" }

function P.on_connect(client)
  if client.user == "alice" then
    -- merged with 10-connect.lua: this later file's route wins
    return { pool_mode = "transaction", route = "db_a2" }
  end
end

function P.on_query(client, q)
  local kind = q.kind
  if kind == "drop" then
    return { reject = "drop is not allowed" }
  elseif kind == "listen" then
    return { reject = "no listen here", sqlstate = "0A001" }
  elseif kind == "set" then
    return { track = { { name = "search_path", value = "app" }, { name = "work_mem", value = 64 } } }
  elseif kind == "reset" then
    return { track = { { reset = "search_path" }, { reset = true } } }
  elseif kind == "show" then
    local ctx = client.ctx
    ctx.n = (ctx.n or 0) + 1
    return { reject = string.format("n=%d shows=%d loads=%d", ctx.n, mb.counter_incr("shows"),
      mb.counter_get("testmod_loads")) }
  elseif kind == "select" then
    local sql = q.sql
    if sql == "select 1" then
      return { rewrite = "select 2" }
    elseif sql:find("^select len") then
      return { reject = "len=" .. #sql .. " truncated=" .. tostring(q.truncated) }
    elseif sql:find("^select rewrite") then
      return { rewrite = "select 3" }
    elseif sql == "select kinds" then
      return { reject = table.concat(q.kinds, ",") .. " " .. q.protocol .. " " .. tostring(q.name) }
    elseif sql == "select helper" then
      return { reject = helper.greeting() }
    elseif sql == "select counter set" then
      return { reject = "set=" .. mb.counter_set("ttl_key", 5, 0.05) .. " get=" .. mb.counter_get("ttl_key") }
    elseif sql == "select counter get" then
      return { reject = "get=" .. mb.counter_get("ttl_key") }
    end
  end
end

function P.on_transaction_begin(client, q)
  if client.tenant == "acme" and q.kind == "select" then
    return { route = "replica" }
  end
end

return P

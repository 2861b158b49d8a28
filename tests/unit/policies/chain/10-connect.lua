-- test_policy.c: connect decisions, the host module and limits (first file of a chain of two).
local mb = require "moonbouncer"

local P = {}

function P.on_connect(client)
  local user = client.user
  if user == "banned" then
    return { reject = "banned user", sqlstate = "28000" }
  elseif user == "nobody" then
    return { reject = "no sqlstate given" }
  elseif user == "alice" then
    return { route = "db_a", user = "alice_srv", tenant = "acme" }
  elseif user == "dbs" then
    local names = {}
    for name, db in pairs(mb.databases()) do
      names[#names + 1] = name .. "=" .. tostring(db.dbname) .. ":" .. tostring(db.port)
    end
    table.sort(names)
    return { reject = table.concat(names, ",") }
  elseif user == "logger" then
    mb.log("info", "hello from " .. user)
    mb.log("plain message")
  elseif user == "view" then
    return { reject = string.format("search_path=%s app=%s addr=%s:%d tls=%s tx=%s mode=%s tenant=%s",
      tostring(client.params.search_path), tostring(client.application_name), client.addr, client.port,
      tostring(client.tls), tostring(client.in_transaction), tostring(client.pool_mode),
      tostring(client.tenant)) }
  elseif user == "clock" then
    local t = mb.now()
    return { reject = string.format("%.3f", t) }
  end
end

function P.limits(tenant)
  mb.counter_incr("limits_calls")
  if tenant == "acme" then
    return { max_clients = 2, max_active = 1, rate = 10 }
  elseif tenant == "bad" then
    return { max_clients = -1 }
  end
end

return P

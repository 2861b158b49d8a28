-- Route clients to [databases] entries by login user or by the database they asked for.
--
-- A drop-in file:
--
--   return require("policies.route_by_user_db") {
--     users = { alice = "db_a", etl = { route = "warehouse", user = "etl_rw" } },
--     databases = { reporting = "reporting_replica" },
--     default = nil,        -- route for everyone else (nil: the entry the client asked for)
--     check_routes = true,  -- fail the load when a route is not a configured [databases] entry
--   }
--
-- on_connect looks up users[client.user], then databases[client.database], then default; the first
-- match decides. A value is a route name, or a table { route = "entry", user = "server_user" }
-- where user (optional) is the server-side user of the pool (route, user).

local mb = require "moonbouncer"

local type, pairs, next, error, tostring = type, pairs, next, error, tostring

local OPTIONS = { users = true, databases = true, default = true, check_routes = true }

local function normalize(where, key, v, level)
  if type(v) == "string" and v ~= "" then
    return { route = v }
  elseif type(v) == "table" then
    for k in pairs(v) do
      if k ~= "route" and k ~= "user" then
        error(where .. "[" .. tostring(key) .. "]: unknown field '" .. tostring(k) .. "' (route, user)", level)
      end
    end
    if v.route ~= nil and (type(v.route) ~= "string" or v.route == "") then
      error(where .. "[" .. tostring(key) .. "].route must be a non-empty string", level)
    end
    if v.user ~= nil and (type(v.user) ~= "string" or v.user == "") then
      error(where .. "[" .. tostring(key) .. "].user must be a non-empty string", level)
    end
    if v.route == nil and v.user == nil then
      error(where .. "[" .. tostring(key) .. "] needs route and/or user", level)
    end
    return { route = v.route, user = v.user }
  end
  error(where .. "[" .. tostring(key) .. "] must be a route name or { route =, user = }", level)
end

local function build(where, t)
  local out = {}
  if t == nil then
    return out
  end
  if type(t) ~= "table" then
    error(where .. " must be a table", 3)
  end
  for k, v in pairs(t) do
    if type(k) ~= "string" then
      error(where .. ": keys must be names", 3)
    end
    out[k] = normalize(where, k, v, 4)
  end
  return out
end

return function(cfg)
  if type(cfg) ~= "table" then
    error("route_by_user_db: expected a configuration table", 2)
  end
  for k in pairs(cfg) do
    if not OPTIONS[k] then
      error("route_by_user_db: unknown option '" .. tostring(k) .. "'", 2)
    end
  end
  local users = build("route_by_user_db: users", cfg.users)
  local databases = build("route_by_user_db: databases", cfg.databases)
  local default
  if cfg.default ~= nil then
    default = normalize("route_by_user_db: default", "", cfg.default, 3)
  end

  if cfg.check_routes ~= false and type(mb.databases) == "function" then
    local known = mb.databases()
    if type(known) == "table" and next(known) ~= nil then
      local function check(entry, what)
        if entry.route and known[entry.route] == nil then
          error("route_by_user_db: " .. what .. " routes to '" .. entry.route
            .. "', which is not a [databases] entry", 3)
        end
      end
      for k, e in pairs(users) do
        check(e, "users." .. k)
      end
      for k, e in pairs(databases) do
        check(e, "databases." .. k)
      end
      if default then
        check(default, "default")
      end
    end
  end

  local P = { name = "route_by_user_db" }

  function P.on_connect(client)
    local e = users[client.user] or databases[client.database] or default
    if e then
      return { route = e.route, user = e.user }
    end
    return nil
  end

  return P
end

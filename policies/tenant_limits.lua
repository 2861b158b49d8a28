-- Per-tenant limits: puts each client in a tenant and gives each tenant its limits.
--
-- A drop-in file:
--
--   return require("policies.tenant_limits") {
--     tenant_from = "user",   -- "user" | "database" | "application_name" | function(client) -> key
--     limits = {
--       acme = { max_active = 5, max_clients = 200, rate = 50 },
--       ["*"] = { max_active = 2 },    -- any other tenant (each tenant gets its own copy)
--     },
--     reject_unknown = false,  -- true: refuse clients whose tenant has no entry and there is no "*"
--   }
--
-- on_connect sets client.tenant; limits(tenant) returns the tenant's entry, else the "*" entry.
-- max_clients: connections of the tenant (more are refused with 53300); max_active: concurrent
-- server-holding transactions (more wait in line); rate: transactions per second (token bucket,
-- burst of one second). A missing field means no limit.

local type, pairs, error, tostring = type, pairs, error, tostring

local OPTIONS = { tenant_from = true, limits = true, reject_unknown = true }
local SOURCES = { user = true, database = true, application_name = true }
local FIELDS = { max_clients = "integer", max_active = "integer", rate = "number" }

local function check_entry(key, e)
  if type(e) ~= "table" then
    error("tenant_limits: limits[" .. tostring(key) .. "] must be a table", 3)
  end
  local out = {}
  for k, v in pairs(e) do
    local want = FIELDS[k]
    if not want then
      error("tenant_limits: limits[" .. tostring(key) .. "]: unknown field '" .. tostring(k)
        .. "' (max_clients, max_active, rate)", 3)
    end
    if type(v) ~= "number" or v ~= v or v < 0 or v == math.huge or (want == "integer" and v % 1 ~= 0) then
      error("tenant_limits: limits[" .. tostring(key) .. "]." .. k .. " must be a non-negative "
        .. (want == "integer" and "integer" or "number"), 3)
    end
    out[k] = v
  end
  return out
end

local function copy(e)
  local c = {}
  for k, v in pairs(e) do
    c[k] = v
  end
  return c
end

return function(cfg)
  if type(cfg) ~= "table" then
    error("tenant_limits: expected a configuration table", 2)
  end
  for k in pairs(cfg) do
    if not OPTIONS[k] then
      error("tenant_limits: unknown option '" .. tostring(k) .. "'", 2)
    end
  end
  local from = cfg.tenant_from or "user"
  if type(from) ~= "function" and not SOURCES[from] then
    error("tenant_limits: tenant_from must be \"user\", \"database\", \"application_name\" or a function", 2)
  end
  local limits = {}
  if cfg.limits ~= nil then
    if type(cfg.limits) ~= "table" then
      error("tenant_limits: limits must be a table", 2)
    end
    for key, e in pairs(cfg.limits) do
      if type(key) ~= "string" or key == "" then
        error("tenant_limits: limits keys must be tenant names (or \"*\")", 2)
      end
      limits[key] = check_entry(key, e)
    end
  end
  local reject_unknown = cfg.reject_unknown == true

  local P = { name = "tenant_limits" }

  function P.on_connect(client)
    local key
    if type(from) == "function" then
      key = from(client)
      if type(key) == "number" then
        key = tostring(key)
      elseif key ~= nil and type(key) ~= "string" then
        error("tenant_limits: tenant_from returned a " .. type(key) .. ", expected a string or nil")
      end
    else
      key = client[from]
    end
    if key == nil or key == "" then
      if reject_unknown and limits["*"] == nil then
        return { reject = "no tenant for this connection", sqlstate = "28000" }
      end
      return nil
    end
    if reject_unknown and limits[key] == nil and limits["*"] == nil then
      return { reject = "unknown tenant \"" .. key .. "\"", sqlstate = "28000" }
    end
    return { tenant = key }
  end

  function P.limits(tenant)
    local e = limits[tenant] or limits["*"]
    return e and copy(e) or nil
  end

  return P
end

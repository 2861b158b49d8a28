-- Audit log: one line per connect and per disconnect (with duration and counts) via moonbouncer.log.
--
-- A drop-in file:
--
--   return require("policies.audit_log") {
--     level = "info",               -- log level: debug, info, warning, error
--     count_transactions = true,    -- count transactions (calls on_transaction_begin)
--     count_kinds = { "create", "drop", "alter", "truncate" },  -- count these statement kinds
--   }
--
-- Lines look like:
--   audit: connect id=7 user=alice database=app application_name="psql" addr=10.0.0.5:51234 tls=true
--   audit: disconnect id=7 user=alice database=app tenant=acme duration=12.503s transactions=40
--     create=1 drop=1
-- Counting statements of a kind makes every such statement enter Lua; the default counts none.
-- The counts live in client.ctx, so they survive a reload.

local mb = require "moonbouncer"

local type, pairs, ipairs, error, tostring = type, pairs, ipairs, error, tostring
local fmt, find, gsub = string.format, string.find, string.gsub
local concat, sort = table.concat, table.sort

local OPTIONS = { level = "string", count_transactions = "boolean", count_kinds = "table" }
local LEVELS = { debug = true, info = true, warning = true, error = true }

local function quote(v)
  v = tostring(v)
  if find(v, "^[%w_.:@/+-]+$") then
    return v
  end
  return '"' .. gsub(v, '[%c"\\]', function(c)
    return fmt("\\x%02x", c:byte())
  end) .. '"'
end

return function(cfg)
  cfg = cfg or {}
  if type(cfg) ~= "table" then
    error("audit_log: expected a configuration table", 2)
  end
  for k, v in pairs(cfg) do
    if not OPTIONS[k] then
      error("audit_log: unknown option '" .. tostring(k) .. "'", 2)
    end
    if type(v) ~= OPTIONS[k] then
      error("audit_log: option " .. k .. " must be a " .. OPTIONS[k], 2)
    end
  end
  local level = cfg.level or "info"
  if not LEVELS[level] then
    error("audit_log: level must be debug, info, warning or error", 2)
  end
  local count_kinds = {}
  for i, k in ipairs(cfg.count_kinds or {}) do
    if type(k) ~= "string" or k == "" then
      error("audit_log: count_kinds[" .. i .. "] must be a statement kind", 2)
    end
    count_kinds[#count_kinds + 1] = k:lower()
  end
  local kindset = {}
  for _, k in ipairs(count_kinds) do
    kindset[k] = true
  end

  local P = { name = "audit_log" }

  function P.on_connect(client)
    local ctx = client.ctx
    ctx.connected_at = mb.now()
    ctx.transactions = 0
    mb.log(level, fmt("audit: connect id=%s user=%s database=%s application_name=%s addr=%s:%s tls=%s",
      quote(client.id), quote(client.user), quote(client.database), quote(client.application_name or ""),
      quote(client.addr or "unix"), quote(client.port or ""), tostring(client.tls == true)))
    return nil
  end

  if cfg.count_transactions ~= false then
    function P.on_transaction_begin(client)
      local ctx = client.ctx
      ctx.transactions = (ctx.transactions or 0) + 1
      return nil
    end
  end

  if #count_kinds > 0 then
    P.query_kinds = count_kinds
    function P.on_query(client, q)
      local ctx = client.ctx
      local counts = ctx.counts
      if not counts then
        counts = {}
        ctx.counts = counts
      end
      local kinds = q.kinds or { q.kind }
      for i = 1, #kinds do
        local k = kinds[i]
        if kindset[k] then
          counts[k] = (counts[k] or 0) + 1
        end
      end
      return nil
    end
  end

  function P.on_disconnect(client)
    local ctx = client.ctx
    local parts = {
      fmt("audit: disconnect id=%s user=%s database=%s", quote(client.id), quote(client.user),
        quote(client.database)),
    }
    if client.tenant then
      parts[#parts + 1] = "tenant=" .. quote(client.tenant)
    end
    if ctx.connected_at then
      parts[#parts + 1] = fmt("duration=%.3fs", mb.now() - ctx.connected_at)
    else
      parts[#parts + 1] = "duration=unknown" -- connected before this policy was loaded
    end
    if cfg.count_transactions ~= false then
      parts[#parts + 1] = "transactions=" .. tostring(ctx.transactions or 0)
    end
    if ctx.counts then
      local keys = {}
      for k in pairs(ctx.counts) do
        keys[#keys + 1] = k
      end
      sort(keys)
      for _, k in ipairs(keys) do
        parts[#parts + 1] = k .. "=" .. tostring(ctx.counts[k])
      end
    end
    mb.log(level, concat(parts, " "))
  end

  return P
end

-- Testing helper for policies: loads them with the real dispatcher and fakes clients, statements
-- and the host module, so an operator can write busted specs for a policy.

local D = require "moonbouncer.dispatcher"
local classify = require "moonbouncer.classify"

local type, pairs, error, tostring, select = type, pairs, error, tostring, select
local fmt, find = string.format, string.find

local T = {}

T.dispatcher = D
T.classify = classify

local LOG_LEVELS = { debug = true, info = true, warning = true, error = true }

local function copy(v)
  if type(v) ~= "table" then
    return v
  end
  local c = {}
  for k, x in pairs(v) do
    c[k] = copy(x)
  end
  return c
end

-- A fake host module, the same API as the one the core provides:
--   log(level, message)           level: "debug" | "info" | "warning" | "error"; log(message) = info
--   now()                         monotonic seconds (float)
--   databases()                   { name = { name=, host=, port=, dbname=, pool_mode=, ... } }
--   counter_get(key)              -> number (0 when absent or expired)
--   counter_incr(key, delta, ttl) -> new value; ttl (seconds) applies when the key is created
--   counter_set(key, value, ttl)  -> value; ttl nil or 0 means no expiry
--   counter_delete(key)
-- Test controls (not in the real host): lines, entries, logged(pattern), clear_log(), set_now(t),
-- advance(seconds), set_databases(tbl), counters.
function T.host(opts)
  opts = opts or {}
  local h = {
    lines = {},       -- "level: message"
    entries = {},     -- { level=, message= }
    counters = {},    -- key -> { value=, expires= }
  }
  local clock = opts.now or 1000
  local dbs = copy(opts.databases or {})

  function h.log(...)
    local level, message = ...
    if select("#", ...) < 2 then
      level, message = "info", level
    end
    if not LOG_LEVELS[level] then
      error(fmt("log: unknown level %q (debug, info, warning, error)", tostring(level)), 2)
    end
    if type(message) ~= "string" then
      error("log: message must be a string, got " .. type(message), 2)
    end
    h.entries[#h.entries + 1] = { level = level, message = message }
    h.lines[#h.lines + 1] = level .. ": " .. message
  end

  function h.now()
    return clock
  end

  function h.databases()
    return copy(dbs)
  end

  local function live(key)
    local c = h.counters[key]
    if c and c.expires and clock >= c.expires then
      h.counters[key] = nil
      return nil
    end
    return c
  end

  local function check_key(key)
    if type(key) ~= "string" or key == "" then
      error("counter key must be a non-empty string", 3)
    end
  end

  function h.counter_get(key)
    check_key(key)
    local c = live(key)
    return c and c.value or 0
  end

  function h.counter_incr(key, delta, ttl)
    check_key(key)
    delta = delta or 1
    if type(delta) ~= "number" then
      error("counter_incr: delta must be a number", 2)
    end
    local c = live(key)
    if not c then
      c = { value = 0, expires = (ttl and ttl > 0) and clock + ttl or nil }
      h.counters[key] = c
    end
    c.value = c.value + delta
    return c.value
  end

  function h.counter_set(key, value, ttl)
    check_key(key)
    if type(value) ~= "number" then
      error("counter_set: value must be a number", 2)
    end
    h.counters[key] = { value = value, expires = (ttl and ttl > 0) and clock + ttl or nil }
    return value
  end

  function h.counter_delete(key)
    check_key(key)
    h.counters[key] = nil
  end

  -- test controls
  function h.set_now(t)
    clock = t
  end

  function h.advance(seconds)
    clock = clock + seconds
  end

  function h.set_databases(tbl)
    dbs = copy(tbl)
  end

  function h.logged(pattern)
    for i = 1, #h.lines do
      if find(h.lines[i], pattern) then
        return h.lines[i]
      end
    end
    return nil
  end

  function h.clear_log()
    h.lines, h.entries = {}, {}
  end

  return h
end

-- Load policy files with the dispatcher. Raises on a load error (so a spec fails with the message).
-- opts as D.load; by default a fresh fake host (gen.host) and a fresh ctx store.
local function shallow(t)
  local c = {}
  for k, v in pairs(t or {}) do
    c[k] = v
  end
  return c
end

function T.load(paths, opts)
  opts = shallow(opts)
  if opts.host == nil then
    opts.host = T.host()
  end
  if opts.ctx_store == nil then
    opts.ctx_store = {}
  end
  local gen, err = D.load(paths, opts)
  if not gen then
    error(err, 2)
  end
  gen.host = opts.host
  gen.load_paths, gen.load_opts = paths, opts
  return gen
end

-- The load error of paths, or nil when they load.
function T.load_error(paths, opts)
  opts = shallow(opts)
  if opts.host == nil then
    opts.host = T.host()
  end
  if opts.ctx_store == nil then
    opts.ctx_store = {}
  end
  local gen, err = D.load(paths, opts)
  if gen then
    return nil
  end
  return err
end

-- Load the same files again as a reload does: same host and ctx store, fresh modules.
function T.reload(gen, paths)
  return T.load(paths or gen.load_paths, gen.load_opts)
end

local next_id = 0

-- A fake client. Defaults: user/database "app", session pool mode, not in a transaction.
function T.client(fields)
  fields = fields or {}
  next_id = next_id + 1
  local c = {
    id = next_id,
    user = "app",
    database = "app",
    application_name = "",
    addr = "127.0.0.1",
    port = 40000 + next_id % 20000,
    tls = false,
    in_transaction = false,
    pool_mode = "session",
  }
  for k, v in pairs(fields) do
    c[k] = copy(v)
  end
  if fields.params == nil then
    c.params = { user = c.user, database = c.database, application_name = c.application_name }
  end
  return c
end

-- A fake q: kind/kinds as the C scan computes them.
-- opts.protocol ("simple" | "extended" | "function"), opts.name (Parse statement name),
-- opts.truncated, or opts.max_length (cut the text and mark it truncated as the core does).
function T.query(sql, opts)
  opts = opts or {}
  if type(sql) ~= "string" then
    error("T.query: sql must be a string", 2)
  end
  local truncated = opts.truncated and true or false
  if opts.max_length and #sql > opts.max_length then
    sql = sql:sub(1, opts.max_length)
    truncated = true
  end
  local stmts = classify.statements(sql)
  return {
    sql = sql,
    kind = stmts[1].kind,
    kinds = classify.kinds_of(stmts),
    protocol = opts.protocol or "simple",
    name = opts.name,
    truncated = truncated,
  }
end

-- Run on_connect and apply what the core would apply to the fake client (tenant, pool_mode,
-- route, server user). Returns the decision and error as on_connect does.
function T.connect(gen, client)
  local d, err = gen:on_connect(client)
  if d and not d.reject then
    client.route = d.route or client.route
    client.server_user = d.user or client.server_user
    client.tenant = d.tenant or client.tenant
    client.pool_mode = d.pool_mode or client.pool_mode
  end
  return d, err
end

-- Run on_disconnect and drop the client's ctx, as the core does.
function T.disconnect(gen, client)
  local _, err = gen:on_disconnect(client)
  gen:forget(client.id)
  return err
end

-- The ctx a policy file (by its name, e.g. "30-guard.lua") keeps for a client, or nil.
function T.ctx(gen, client, name)
  local per = gen.ctx_store[client.id]
  return per and per[name]
end

return T

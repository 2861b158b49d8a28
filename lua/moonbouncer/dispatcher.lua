-- Policy dispatcher: loads policy files into sandboxes, calls their hooks, checks and merges decisions.
--
-- The C core and the busted testing helper both use this module, so a policy behaves the same in
-- a spec as in the proxy. It never raises: hook errors, malformed decisions and load errors come
-- back as "file:line: message" strings.

local classify = require "moonbouncer.classify"

local type, next, rawget, rawset, pairs, ipairs = type, next, rawget, rawset, pairs, ipairs
local setmetatable, xpcall, pcall, error, tostring = setmetatable, xpcall, pcall, error, tostring
local find, sub, fmt, lower, match = string.find, string.sub, string.format, string.lower, string.match
local concat = table.concat
local getinfo = debug.getinfo

local D = {}

-- A budget overrun raised by the C side must carry this text; sandboxed pcall/xpcall re-raise
-- such errors (and out-of-memory errors) so a policy cannot swallow them.
D.BUDGET_MARK = "policy budget exceeded"
local BUDGET_MARK = D.BUDGET_MARK
local MEMORY_ERROR = "not enough memory"

local HOOK_NAMES = { "on_connect", "on_query", "on_transaction_begin", "on_disconnect", "limits" }
local HOOKS = {}
for _, h in ipairs(HOOK_NAMES) do
  HOOKS[h] = true
end
local POLICY_FIELDS = { query_kinds = "table", name = "string", description = "string" }

local POOL_MODES = { session = true, transaction = true, statement = true }

-------------------------------------------------------------------------------------------------
-- Sandbox

local function is_fatal(err)
  return type(err) == "string" and (find(err, BUDGET_MARK, 1, true) ~= nil or err == MEMORY_ERROR)
end
D.is_fatal = is_fatal

local function rethrow(ok, ...)
  if not ok and is_fatal((...)) then
    error((...), 0)
  end
  return ok, ...
end

local function sandbox_pcall(f, ...)
  return rethrow(pcall(f, ...))
end

local function sandbox_xpcall(f, handler, ...)
  local fatal
  local function h(err)
    if is_fatal(err) then
      fatal = err
      return err
    end
    return handler(err)
  end
  local function finish(ok, ...)
    if fatal then
      error(fatal, 0)
    end
    return ok, ...
  end
  return finish(xpcall(f, h, ...))
end

-- Only tables show their metatable: the string metatable is shared by the whole VM.
local function sandbox_getmetatable(v)
  if type(v) ~= "table" then
    return nil
  end
  return getmetatable(v)
end

local function copy_table(t, skip)
  local c = {}
  for k, v in pairs(t) do
    if not (skip and skip[k]) then
      c[k] = v
    end
  end
  return c
end

local SAFE_GLOBALS = { "assert", "error", "ipairs", "next", "pairs", "select", "tonumber", "tostring", "type",
  "unpack", "rawequal", "rawget", "rawset", "rawlen", "setmetatable" }

-- What a policy sees (documented in the README's Policies section).
D.SANDBOX_GLOBALS = { "assert", "error", "ipairs", "next", "pairs", "pcall", "select", "tonumber", "tostring",
  "type", "unpack", "xpcall", "rawequal", "rawget", "rawset", "rawlen", "setmetatable", "getmetatable",
  "string", "table", "math", "os", "bit", "require" }

local function new_env(req)
  local env = {}
  for _, name in ipairs(SAFE_GLOBALS) do
    env[name] = _G[name] -- rawlen is nil on LuaJIT without 5.2 compatibility
  end
  env.pcall = sandbox_pcall
  env.xpcall = sandbox_xpcall
  env.getmetatable = sandbox_getmetatable
  env.string = copy_table(string, { dump = true })
  env.table = copy_table(table)
  env.math = copy_table(math)
  env.os = { time = os.time, clock = os.clock, date = os.date }
  if bit then
    env.bit = copy_table(bit)
  end
  env.require = req
  return env
end

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then
    return nil, err
  end
  local src = f:read("*a")
  f:close()
  return src
end

-- Error messages carry "chunkname:line:"; Lua shortens long chunk names to "...tail". Put the
-- full path back when it is one of ours.
local function expand_position(msg, sources)
  local tail = match(msg, "^%.%.%.(.-):%d+:")
  if tail then
    for i = 1, #sources do
      local path = sources[i]
      if #path >= #tail and sub(path, -#tail) == tail then
        return path .. sub(msg, 4 + #tail)
      end
    end
  end
  return msg
end

local function load_chunk(src, path)
  if sub(src, 1, 1) == "\27" then
    return nil, path .. ": precompiled bytecode is not accepted"
  end
  return loadstring(src, "@" .. path)
end

-- The default search path for policies.* modules: the directory holding lua/ and policies/.
local function default_searcher_paths()
  local source = getinfo(1, "S").source
  local root = match(source, "^@(.*)lua/moonbouncer/dispatcher%.lua$")
  if root then
    return { root .. "?.lua" }
  end
  return { "./?.lua" }
end

-- A read-only view of a table for policies.
local function read_only_view(t, what)
  return setmetatable({}, {
    __index = t,
    __newindex = function()
      error(what .. " is read-only", 2)
    end,
    __metatable = false,
  })
end

local function deep_copy(v)
  if type(v) ~= "table" then
    return v
  end
  local c = {}
  for k, x in pairs(v) do
    c[k] = deep_copy(x)
  end
  return c
end

-- Per-generation module loader: "moonbouncer" (host), "moonbouncer.classify" and policies.*.
local function new_loader(host, searcher_paths, sources)
  local loaded = {}
  local LOADING = {}
  local req

  local function classify_copy()
    local c = {}
    for k, v in pairs(classify) do
      c[k] = deep_copy(v)
    end
    return c
  end

  req = function(name)
    if type(name) ~= "string" then
      error("bad argument #1 to 'require' (string expected, got " .. type(name) .. ")", 2)
    end
    if name == "moonbouncer" then
      if not host then
        error("module 'moonbouncer' is not available: no host module was given", 2)
      end
      return read_only_view(host, "the moonbouncer module")
    elseif name == "moonbouncer.classify" then
      return classify_copy()
    end
    if not match(name, "^policies%.[%w_]+[%w_.]*$") or find(name, "..", 1, true) or sub(name, -1) == "." then
      error("module '" .. name .. "' is not available to policies (allowed: moonbouncer, "
        .. "moonbouncer.classify, policies.*)", 2)
    end
    local got = loaded[name]
    if got == LOADING then
      error("module '" .. name .. "' requires itself (loop while loading)", 2)
    elseif got ~= nil then
      return got
    end
    local rel = name:gsub("%.", "/")
    local tried = {}
    local path, src
    for _, template in ipairs(searcher_paths) do
      local candidate = template:gsub("%?", rel)
      local s = read_file(candidate)
      if s then
        path, src = candidate, s
        break
      end
      tried[#tried + 1] = "\n\tno file '" .. candidate .. "'"
    end
    if not path then
      error("module '" .. name .. "' not found:" .. concat(tried), 2)
    end
    sources[#sources + 1] = path
    local chunk, err = load_chunk(src, path)
    if not chunk then
      error(expand_position(err, sources), 0)
    end
    setfenv(chunk, new_env(req))
    loaded[name] = LOADING
    local ok, res = pcall(chunk, name)
    if not ok then
      loaded[name] = nil
      error(type(res) == "string" and expand_position(res, sources) or res, 0)
    end
    if res == nil then
      res = true
    end
    loaded[name] = res
    return res
  end
  return req
end

-------------------------------------------------------------------------------------------------
-- ctx storage: store[client_id][policy_name] = ctx table

local default_store

function D.ctx_store()
  if not default_store then
    default_store = {}
  end
  return default_store
end

function D.forget(client_id, store)
  store = store or default_store
  if store and client_id ~= nil then
    store[client_id] = nil
  end
end

-- Private keys of client views.
local K_CLIENT, K_CTX, K_PENDING, K_OVERLAY = {}, {}, {}, {}

local function view_meta(store, name)
  local function ctx_of(view)
    local c = rawget(view, K_CTX)
    if c then
      return c
    end
    local id = rawget(view, K_CLIENT).id
    if id == nil then
      error("client.ctx: the client has no id", 3)
    end
    local per = store[id]
    c = per and per[name]
    if c == nil then
      c = {}
      rawset(view, K_PENDING, true) -- kept only if something was written into it
    end
    rawset(view, K_CTX, c)
    return c
  end
  return {
    __index = function(view, k)
      if k == "ctx" then
        return ctx_of(view)
      end
      local ov = rawget(view, K_OVERLAY)
      if ov then
        local x = ov[k]
        if x ~= nil then
          return x
        end
      end
      return rawget(view, K_CLIENT)[k]
    end,
    __newindex = function(view, k, v)
      if k ~= "ctx" then
        error("client is read-only (keep per-connection data in client.ctx)", 2)
      end
      if v ~= nil and type(v) ~= "table" then
        error("client.ctx must be a table", 2)
      end
      local id = rawget(view, K_CLIENT).id
      if id == nil then
        error("client.ctx: the client has no id", 2)
      end
      local per = store[id]
      if v == nil then
        if per then
          per[name] = nil
        end
        rawset(view, K_CTX, nil)
        rawset(view, K_PENDING, nil)
        return
      end
      if not per then
        per = {}
        store[id] = per
      end
      per[name] = v
      rawset(view, K_CTX, v)
      rawset(view, K_PENDING, nil)
    end,
    __metatable = false,
  }
end

-- After a hook: keep a ctx that was created during the call only if it holds something.
local function settle_ctx(view, store, name)
  if rawget(view, K_PENDING) then
    local c = rawget(view, K_CTX)
    if next(c) ~= nil then
      local id = rawget(view, K_CLIENT).id
      local per = store[id]
      if not per then
        per = {}
        store[id] = per
      end
      if per[name] == nil then
        per[name] = c
      end
    end
  end
end

-------------------------------------------------------------------------------------------------
-- Decision checks

local function describe(v)
  if type(v) == "string" then
    return fmt("%q", v)
  end
  return type(v)
end

local function nonempty_string(v)
  return type(v) == "string" and v ~= ""
end

-- Is t a proper array (keys 1..n only)? Returns n or nil.
local function array_length(t)
  local n = 0
  for k in next, t do
    if type(k) ~= "number" then
      return nil
    end
    n = n + 1
  end
  for i = 1, n do
    if rawget(t, i) == nil then
      return nil
    end
  end
  return n
end

-- A string the core can take: non-empty, no zero byte (the core keeps C strings). Nil, or what is wrong.
local function bad_text(v, what)
  if not nonempty_string(v) then
    return what .. " must be a non-empty string, got " .. describe(v)
  end
  if find(v, "\0", 1, true) then
    return what .. " must not contain a zero byte"
  end
  return nil
end

-- A session parameter's name as the core sends it in SET: letters, digits, '_' and '.'.
local function bad_param_name(v, what)
  local bad = bad_text(v, what)
  if bad then
    return bad
  end
  if not find(v, "^[%w_.]+$") then
    return fmt("%s must be a parameter name (letters, digits, '_' and '.'), got %s", what, describe(v))
  end
  return nil
end

local function check_track(track)
  if type(track) ~= "table" then
    return "track must be an array of entries, got " .. describe(track)
  end
  local n = array_length(track)
  if not n then
    return "track must be an array (keys 1..n)"
  end
  for i = 1, n do
    local e = rawget(track, i)
    if type(e) ~= "table" then
      return fmt("track[%d] must be a table, got %s", i, describe(e))
    end
    local name, value, reset = rawget(e, "name"), rawget(e, "value"), rawget(e, "reset")
    for k in next, e do
      if k ~= "name" and k ~= "value" and k ~= "reset" then
        return fmt("track[%d]: unknown field %s", i, describe(k))
      end
    end
    if reset ~= nil then
      if name ~= nil or value ~= nil then
        return fmt("track[%d]: reset cannot be combined with name/value", i)
      end
      if reset ~= true and not nonempty_string(reset) then
        return fmt("track[%d]: reset must be a parameter name or true, got %s", i, describe(reset))
      end
      if reset ~= true then
        local bad = bad_param_name(reset, fmt("track[%d]: reset", i))
        if bad then
          return bad
        end
      end
    else
      local bad = bad_param_name(name, fmt("track[%d]: name", i))
      if bad then
        return bad
      end
      if type(value) ~= "string" and type(value) ~= "number" then
        return fmt("track[%d]: value must be a string, got %s", i, describe(value))
      end
      if type(value) == "string" and find(value, "\0", 1, true) then
        return fmt("track[%d]: value must not contain a zero byte", i)
      end
    end
  end
  return nil
end

-- The decision schema: the one definition of what a hook may return. For each field, the hooks that
-- may return it and the check of its value (nil, or what is wrong). The C core takes what passed as it
-- is, and refuses at start-up a dispatcher whose fields are not the ones it takes.
local DECISION_SCHEMA = {
  reject = {
    hooks = { "on_connect", "on_query", "on_transaction_begin" },
    check = function(v)
      if not nonempty_string(v) then
        return "reject must be a non-empty string (the message), got " .. describe(v)
      end
      return bad_text(v, "reject")
    end,
  },
  sqlstate = {
    hooks = { "on_connect", "on_query", "on_transaction_begin" },
    check = function(v)
      if type(v) ~= "string" or not find(v, "^[0-9A-Z][0-9A-Z][0-9A-Z][0-9A-Z][0-9A-Z]$") then
        return "sqlstate must be 5 characters of 0-9/A-Z, got " .. describe(v)
      end
      return nil
    end,
  },
  rewrite = {
    hooks = { "on_query" },
    check = function(v, truncated)
      local bad = bad_text(v, "rewrite")
      if bad then
        return bad
      end
      if truncated then
        return "rewrite is not allowed for a truncated statement (q.truncated)"
      end
      return nil
    end,
  },
  route = {
    hooks = { "on_connect", "on_transaction_begin" },
    check = function(v)
      return bad_text(v, "route")
    end,
  },
  user = {
    hooks = { "on_connect" },
    check = function(v)
      return bad_text(v, "user")
    end,
  },
  pool_mode = {
    hooks = { "on_connect" },
    check = function(v)
      if type(v) ~= "string" or not POOL_MODES[v] then
        return "pool_mode must be one of session, transaction, statement, got " .. describe(v)
      end
      return nil
    end,
  },
  tenant = {
    hooks = { "on_connect" },
    check = function(v)
      return bad_text(v, "tenant")
    end,
  },
  track = { hooks = { "on_query" }, check = check_track },
}
D.DECISION_SCHEMA = DECISION_SCHEMA

-- hook -> { field = true }: the fields each hook may return
local DECISION_FIELDS = {}
for field, spec in pairs(DECISION_SCHEMA) do
  for _, hook in ipairs(spec.hooks) do
    DECISION_FIELDS[hook] = DECISION_FIELDS[hook] or {}
    DECISION_FIELDS[hook][field] = true
  end
end

-- Returns nil when the decision is valid for hook, else a message.
local function check_decision(d, hook, truncated)
  if type(d) ~= "table" then
    return "a decision must be a table or nil, got " .. describe(d)
  end
  local allowed = DECISION_FIELDS[hook]
  for k, v in next, d do
    if type(k) ~= "string" then
      return "unexpected key of type " .. type(k)
    end
    if not allowed[k] then
      if DECISION_SCHEMA[k] then
        return fmt("field '%s' is not allowed in %s", k, hook)
      end
      return fmt("unknown field '%s'", k)
    end
    local bad = DECISION_SCHEMA[k].check(v, truncated)
    if bad then
      return bad
    end
  end
  if rawget(d, "sqlstate") ~= nil and rawget(d, "reject") == nil then
    return "sqlstate given without reject"
  end
  return nil
end
D.check_decision = check_decision

-- What limits(tenant) may return: field -> "integer" or "number", each non-negative and finite.
local LIMIT_FIELDS = { max_clients = "integer", max_active = "integer", rate = "number" }
D.LIMIT_FIELDS = LIMIT_FIELDS

local function check_limits(l)
  if type(l) ~= "table" then
    return "limits must return a table or nil, got " .. describe(l)
  end
  for k, v in next, l do
    local want = LIMIT_FIELDS[k]
    if not want then
      return fmt("unknown field %s (expected max_clients, max_active, rate)", describe(k))
    end
    if type(v) ~= "number" or v ~= v or v < 0 or v == math.huge then
      return fmt("%s must be a non-negative number, got %s", k, describe(v))
    end
    if want == "integer" and v % 1 ~= 0 then
      return fmt("%s must be an integer, got %s", k, tostring(v))
    end
  end
  return nil
end

-------------------------------------------------------------------------------------------------
-- Generation

local Gen = {}
Gen.__index = Gen

local function add_err(acc, msg)
  if acc then
    return acc .. "; " .. msg
  end
  return msg
end

-- A route the generation's [databases] entries do not have: the failure message, else nil.
local function bad_route(gen, p, hook, d)
  local route = rawget(d, "route")
  if route == nil or gen.routes == nil or gen.routes[route] then
    return nil
  end
  local info = getinfo(p[hook], "S")
  local line = info and info.linedefined and info.linedefined > 0 and ":" .. info.linedefined or ""
  return fmt('%s%s: %s routed to "%s", which is not a [databases] entry', p.path, line, hook, route)
end

-- A failed hook's message. LuaJIT runs no error handler for "not enough memory", so that one
-- gets the policy's file here.
local function hook_err(p, msg)
  msg = tostring(msg)
  if sub(msg, 1, #MEMORY_ERROR) == MEMORY_ERROR then
    return p.path .. ": " .. msg
  end
  return msg
end

-- Error handler for a policy's hook: "file:line: message" with the policy's own line when the
-- message lacks a position.
local function make_handler(p, hook, sources)
  local source = "@" .. p.path
  return function(e)
    local msg
    if type(e) == "string" then
      msg = expand_position(e, sources)
      local where = hook and (p.path .. ": " .. hook .. ": ") or (p.path .. ": ")
      if is_fatal(e) then
        return where .. msg
      end
      if match(msg, "^[^\n]-:%d+: ") then
        if sub(msg, 1, #p.path + 1) == p.path .. ":" then
          return msg
        end
        return where .. msg -- raised in a module the policy uses
      end
    else
      msg = "error object is a " .. type(e) .. " value"
    end
    for level = 1, 50 do
      local info = getinfo(level, "Sl")
      if not info then
        break
      end
      if info.source == source and (info.currentline or 0) > 0 then
        return p.path .. ":" .. info.currentline .. ": " .. msg
      end
    end
    -- no frame of the file left (e.g. `return factory {...}` is a tail call)
    if hook == nil then
      return p.path .. ": " .. msg
    end
    return p.path .. ": " .. hook .. ": " .. msg
  end
end

local function view(p, client, overlay)
  return setmetatable({ [K_CLIENT] = client, [K_OVERLAY] = overlay }, p.view_mt)
end

function Gen:on_connect(client)
  if client == nil then
    return nil, "on_connect: no client given"
  end
  local list = self._hooks.on_connect
  local result, overlay, err
  for i = 1, #list do
    local p = list[i]
    -- later policies see the tenant and pool_mode decided so far
    local v = view(p, client, overlay)
    local ok, d = xpcall(p.on_connect, p.handlers.on_connect, v)
    settle_ctx(v, self.ctx_store, p.name)
    if not ok then
      err = add_err(err, hook_err(p, d))
    elseif d ~= nil and d ~= false then
      local bad = check_decision(d, "on_connect")
      local unknown = not bad and bad_route(self, p, "on_connect", d)
      if bad then
        err = add_err(err, p.path .. ": on_connect returned an invalid decision: " .. bad)
      elseif unknown then
        err = add_err(err, unknown)
      elseif rawget(d, "reject") then
        return { reject = rawget(d, "reject"), sqlstate = rawget(d, "sqlstate") }, err
      else
        for k, x in next, d do
          result = result or {}
          result[k] = x
          if k == "tenant" or k == "pool_mode" then
            overlay = overlay or {}
            overlay[k] = x
          end
        end
      end
    end
  end
  return result, err
end

local function wants(p, qp)
  if p.all_kinds then
    return true
  end
  local set = p.kindset
  local kinds = qp.kinds
  if kinds then
    for i = 1, #kinds do
      if set[kinds[i]] then
        return true
      end
    end
    return false
  end
  local kind = qp.kind
  return kind ~= nil and set[kind] == true
end

function Gen:on_query(client, q)
  if client == nil or q == nil then
    return nil, "on_query: no " .. (client == nil and "client" or "statement") .. " given"
  end
  local qp, qs = self._q, self._qstate
  qs.raw, qs.sql, qs.rewritten = q, nil, false
  local truncated = q.truncated
  local list = self._hooks.on_query
  local rewrite, track, ntrack, err
  for i = 1, #list do
    local p = list[i]
    if wants(p, qp) then
      local v = view(p, client, nil)
      local ok, d = xpcall(p.on_query, p.handlers.on_query, v, qp)
      settle_ctx(v, self.ctx_store, p.name)
      if not ok then
        err = add_err(err, hook_err(p, d))
      elseif d ~= nil and d ~= false then
        local bad = check_decision(d, "on_query", truncated)
        if bad then
          err = add_err(err, p.path .. ": on_query returned an invalid decision: " .. bad)
        elseif rawget(d, "reject") then
          qs.raw = nil
          return { reject = rawget(d, "reject"), sqlstate = rawget(d, "sqlstate") }, err
        else
          local rw = rawget(d, "rewrite")
          if rw then
            rewrite = rw
            qs.sql, qs.rewritten = rw, true
          end
          local tr = rawget(d, "track")
          if tr then
            track, ntrack = track or {}, ntrack or 0
            for j = 1, #tr do
              local e = rawget(tr, j)
              ntrack = ntrack + 1
              if rawget(e, "reset") ~= nil then
                track[ntrack] = { reset = rawget(e, "reset") }
              else
                track[ntrack] = { name = rawget(e, "name"), value = tostring(rawget(e, "value")) }
              end
            end
          end
        end
      end
    end
  end
  qs.raw = nil
  if rewrite or (track and ntrack > 0) then
    return { rewrite = rewrite, track = (ntrack or 0) > 0 and track or nil }, err
  end
  return nil, err
end

function Gen:on_transaction_begin(client, q)
  if client == nil or q == nil then
    return nil, "on_transaction_begin: no " .. (client == nil and "client" or "statement") .. " given"
  end
  local qp, qs = self._q, self._qstate
  qs.raw, qs.sql, qs.rewritten = q, nil, false
  local list = self._hooks.on_transaction_begin
  local route, err
  for i = 1, #list do
    local p = list[i]
    local v = view(p, client, nil)
    local ok, d = xpcall(p.on_transaction_begin, p.handlers.on_transaction_begin, v, qp)
    settle_ctx(v, self.ctx_store, p.name)
    if not ok then
      err = add_err(err, hook_err(p, d))
    elseif d ~= nil and d ~= false then
      local bad = check_decision(d, "on_transaction_begin")
      local unknown = not bad and bad_route(self, p, "on_transaction_begin", d)
      if bad then
        err = add_err(err, p.path .. ": on_transaction_begin returned an invalid decision: " .. bad)
      elseif unknown then
        err = add_err(err, unknown)
      elseif rawget(d, "reject") then
        qs.raw = nil
        return { reject = rawget(d, "reject"), sqlstate = rawget(d, "sqlstate") }, err
      elseif rawget(d, "route") then
        route = rawget(d, "route")
      end
    end
  end
  qs.raw = nil
  if route then
    return { route = route }, err
  end
  return nil, err
end

function Gen:on_disconnect(client)
  if client == nil then
    return nil, "on_disconnect: no client given"
  end
  local list = self._hooks.on_disconnect
  local err
  for i = 1, #list do
    local p = list[i]
    local v = view(p, client, nil)
    local ok, e = xpcall(p.on_disconnect, p.handlers.on_disconnect, v)
    settle_ctx(v, self.ctx_store, p.name)
    if not ok then
      err = add_err(err, hook_err(p, e))
    end
  end
  return nil, err
end

function Gen:limits(tenant)
  local list = self._hooks.limits
  local result, err
  for i = 1, #list do
    local p = list[i]
    local ok, l = xpcall(p.limits, p.handlers.limits, tenant)
    if not ok then
      err = add_err(err, hook_err(p, l))
    elseif l ~= nil and l ~= false then
      local bad = check_limits(l)
      if bad then
        err = add_err(err, p.path .. ": limits returned an invalid value: " .. bad)
      else
        for k, x in next, l do
          result = result or {}
          result[k] = x
        end
      end
    end
  end
  return result, err
end

function Gen:forget(client_id)
  D.forget(client_id, self.ctx_store)
end

-- The q object handed to hooks: one per generation, reset for each call. q.sql, q.statements and
-- q.read_only are computed on first access; after a rewrite they describe the new text.
local function new_q_proxy()
  local qs = {}
  local cache_sql, cache_trunc, cache_stmts, cache_ro
  local function statements()
    local sql = qs.sql or qs.raw.sql
    local trunc = qs.raw.truncated and true or false
    if cache_stmts == nil or cache_sql ~= sql or cache_trunc ~= trunc then
      if type(sql) ~= "string" then
        return nil
      end
      cache_stmts = classify.statements(sql, { truncated = trunc })
      cache_sql, cache_trunc, cache_ro = sql, trunc, nil
    end
    return cache_stmts
  end
  local proxy = setmetatable({}, {
    __index = function(_, k)
      local raw = qs.raw
      if raw == nil then
        return nil -- used after the call returned
      end
      if k == "sql" then
        return qs.sql or raw.sql
      elseif k == "statements" then
        return statements()
      elseif k == "read_only" then
        local stmts = statements()
        if not stmts then
          return false
        end
        if cache_ro == nil then
          cache_ro = classify.read_only_statements(stmts)
        end
        return cache_ro
      elseif k == "kind" then
        if qs.rewritten then
          return statements()[1].kind
        end
        return raw.kind
      elseif k == "kinds" then
        if qs.rewritten then
          return classify.kinds_of(statements())
        end
        local kinds = raw.kinds
        if kinds == nil and raw.kind ~= nil then
          return { raw.kind }
        end
        return kinds
      end
      return raw[k]
    end,
    __newindex = function()
      error("q is read-only", 2)
    end,
    __metatable = false,
  })
  return proxy, qs
end

-------------------------------------------------------------------------------------------------
-- Loading

local function basename(path)
  return match(path, "([^/]+)$") or path
end

-- Lines of a policy's source, skipping comment lines: an iterator of (line number, text).
local function code_lines(src)
  local n, pos = 0, 1
  return function()
    while pos <= #src do
      local nl = find(src, "\n", pos, true) or #src + 1
      local text = sub(src, pos, nl - 1)
      pos = nl + 1
      n = n + 1
      if not find(text, "^%s*%-%-") then
        return n, text
      end
    end
  end
end

-- "path:line" of the first code line holding the string literal lit ("lit" or 'lit'), else "path".
local function literal_at(src, path, lit)
  if src then
    for n, text in code_lines(src) do
      if find(text, '"' .. lit .. '"', 1, true) or find(text, "'" .. lit .. "'", 1, true) then
        return path .. ":" .. n
      end
    end
  end
  return path
end

-- Edit distance of two short words, for "did you mean".
local function distance(a, b)
  local prev, cur = {}, {}
  for j = 0, #b do
    prev[j] = j
  end
  for i = 1, #a do
    cur[0] = i
    for j = 1, #b do
      local cost = sub(a, i, i) == sub(b, j, j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev, cur = cur, prev
  end
  return prev[#b]
end

local function nearest_kind(kind)
  local best, best_d
  for known in pairs(classify.KNOWN_KINDS) do
    local d = distance(kind, known)
    if d <= 2 and (not best_d or d < best_d or (d == best_d and known < best)) then
      best, best_d = known, d
    end
  end
  return best
end

-- The [databases] entries a route may name, from the host: a set, or nil when any name goes (an
-- auto-database "*" entry) or the host does not say (no host, or no entries, as in a bare spec).
local function route_names(host)
  local fn = host and rawget(host, "databases")
  if type(fn) ~= "function" then
    return nil
  end
  local ok, dbs = pcall(fn)
  if not ok or type(dbs) ~= "table" or next(dbs) == nil or dbs["*"] ~= nil then
    return nil
  end
  local set = {}
  for name in pairs(dbs) do
    set[name] = true
  end
  return set
end

-- A policy file's literal routes (route = "name" outside comments) that name no [databases] entry:
-- the first as "file:line: message", or nil. A ready policy's own check turned off (check_routes
-- = false, check_route = false) turns this one off for the file as well.
local function check_route_literals(src, path, routes)
  if not routes or not src or find(src, "check_routes?%s*=%s*false") then
    return nil
  end
  for n, text in code_lines(src) do
    for _, name in text:gmatch("%f[%w_]route%s*=%s*([\"'])(.-)%1") do
      if name ~= "" and not routes[name] then
        return fmt('%s:%d: routes to "%s", which is not a [databases] entry', path, n, name)
      end
    end
  end
  return nil
end

-- Check the table a policy file returned; returns the policy record or nil, message.
local function check_policy(P, path, src)
  if type(P) ~= "table" then
    return nil, path .. ": a policy must return a table of hooks, got " .. describe(P)
  end
  local rec = { path = path }
  for k, v in next, P do
    if type(k) ~= "string" then
      return nil, path .. ": unexpected key of type " .. type(k) .. " in the policy table"
    end
    if HOOKS[k] then
      if type(v) ~= "function" then
        return nil, fmt("%s: %s must be a function, got %s", path, k, describe(v))
      end
      rec[k] = v
    elseif POLICY_FIELDS[k] then
      if type(v) ~= POLICY_FIELDS[k] then
        return nil, fmt("%s: %s must be a %s, got %s", path, k, POLICY_FIELDS[k], describe(v))
      end
    else
      return nil, fmt("%s: unknown field '%s' in the policy table (hooks: %s; fields: query_kinds, name, "
        .. "description)", path, k, concat(HOOK_NAMES, ", "))
    end
  end
  local qk = rawget(P, "query_kinds")
  if qk ~= nil then
    local n = array_length(qk)
    if not n or n == 0 then
      return nil, path .. ": query_kinds must be a non-empty array of kinds (leave it out to see every statement)"
    end
    local set = {}
    for i = 1, n do
      local kind = rawget(qk, i)
      if type(kind) ~= "string" or not find(kind, "^[%a_]+$") then
        return nil, fmt("%s: query_kinds[%d] must be a statement kind such as \"set\", got %s", path, i,
          describe(kind))
      end
      if not classify.KNOWN_KINDS[lower(kind)] then
        -- a typo would leave the hook silent for ever
        local near = nearest_kind(lower(kind))
        return nil, fmt("%s: query_kinds[%d]: %q is not a statement kind%s (kinds are the first keyword of "
          .. "a statement, or function, advisory_lock, set_config, select_into)", literal_at(src, path, kind),
          i, kind, near and fmt(" (did you mean %q?)", near) or "")
      end
      set[lower(kind)] = true
    end
    rec.kindset = set
  elseif rec.on_query then
    rec.all_kinds = true
  end
  return rec
end

-- D.load(paths, opts) -> generation or nil, "file:line: message".
-- paths: array of policy file paths (a single string is accepted); an entry may also be a table
-- { name = "x.lua", source = "lua text" } (used by tests).
-- opts.host: the host module (default package.loaded.moonbouncer); opts.searcher_paths: templates
-- for policies.* modules ("?" becomes the module name with dots as slashes, as in package.path);
-- opts.ctx_store: the ctx store to keep (default D.ctx_store()).
function D.load(paths, opts)
  opts = opts or {}
  if type(paths) == "string" then
    paths = { paths }
  end
  if type(paths) ~= "table" then
    return nil, "policy paths must be an array of file names"
  end
  local host = opts.host
  if host == nil then
    host = package.loaded.moonbouncer
    if type(host) ~= "table" then
      host = nil
    end
  end
  local searcher_paths = opts.searcher_paths or default_searcher_paths()
  if type(searcher_paths) ~= "table" then
    return nil, "searcher_paths must be an array of path templates such as \"/usr/share/moonbouncer/?.lua\""
  end
  for i = 1, #searcher_paths do
    if type(searcher_paths[i]) ~= "string" or not find(searcher_paths[i], "?", 1, true) then
      return nil, "searcher_paths[" .. i .. "] must be a path template containing '?'"
    end
  end
  local store = opts.ctx_store or D.ctx_store()
  local sources = {}
  local req = new_loader(host, searcher_paths, sources)

  local gen = setmetatable({
    kinds = {},
    all_kinds = false,
    has = {},
    files = {},
    ctx_store = store,
    host = host,
    routes = route_names(host), -- nil: any route name goes
    _hooks = {},
  }, Gen)
  for _, h in ipairs(HOOK_NAMES) do
    gen._hooks[h] = {}
    gen.has[h] = false
  end
  gen._q, gen._qstate = new_q_proxy()

  local names = {}
  for _, entry in ipairs(paths) do
    local path, src, err
    if type(entry) == "table" then
      path = entry.path or entry.name
      src = entry.source
      if type(path) ~= "string" or type(src) ~= "string" then
        return nil, "a policy entry must be a path or { name = ..., source = ... }"
      end
    elseif type(entry) == "string" then
      path = entry
      src, err = read_file(path)
      if not src then
        return nil, path .. ": cannot read policy file: " .. tostring(err)
      end
    else
      return nil, "a policy entry must be a path, got " .. type(entry)
    end
    sources[#sources + 1] = path
    local chunk, lerr = load_chunk(src, path)
    if not chunk then
      return nil, expand_position(lerr, sources)
    end
    setfenv(chunk, new_env(req))
    local handler = make_handler({ path = path }, nil, sources)
    local ok, P = xpcall(chunk, handler)
    if not ok then
      return nil, P
    end
    local rec, cerr = check_policy(P, path, src)
    if not rec then
      return nil, cerr
    end
    local rerr = check_route_literals(src, path, gen.routes)
    if rerr then
      return nil, rerr
    end
    local name = basename(path)
    if names[name] then
      name = path
    end
    names[name] = true
    rec.name = name
    rec.view_mt = view_meta(store, name)
    rec.handlers = {}
    for _, h in ipairs(HOOK_NAMES) do
      if rec[h] then
        rec.handlers[h] = make_handler(rec, h, sources)
        local list = gen._hooks[h]
        list[#list + 1] = rec
        gen.has[h] = true
      end
    end
    if rec.on_query then
      if rec.all_kinds then
        gen.all_kinds = true
      else
        for kind in pairs(rec.kindset) do
          gen.kinds[kind] = true
        end
      end
    end
    gen.files[#gen.files + 1] = { path = path, name = name }
  end
  return gen
end

return D

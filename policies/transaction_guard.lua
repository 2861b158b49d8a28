-- Transaction-mode guard: keeps session state from leaking between clients that share servers.
--
-- A drop-in file:
--
--   return require("policies.transaction_guard") {
--     strict = false,               -- true: reject session SET instead of tracking it
--     allow_listen = false,         -- LISTEN
--     allow_prepare = false,        -- SQL PREPARE (not PREPARE TRANSACTION)
--     allow_hold_cursors = false,   -- DECLARE ... WITH HOLD
--     allow_temp_tables = false,    -- CREATE TEMP TABLE/VIEW/SEQUENCE without ON COMMIT DROP
--     allow_load = false,           -- LOAD
--     allow_set_role = false,       -- SET ROLE, SET SESSION AUTHORIZATION
--     allow_advisory_locks = false, -- session advisory locks, passed untouched
--     check_set_config = false,     -- also look at set_config() calls and SELECT INTO TEMP
--     pool_modes = { "transaction" }, -- client pool modes this guard applies to
--   }
--
-- Only clients whose client.pool_mode is listed are guarded. For them:
--  * session SET / RESET / RESET ALL / DISCARD ALL / SET SESSION CHARACTERISTICS are tracked
--    (track = { {name=, value=} } / { {reset=name} } / { {reset=true} }): the statement runs, and the
--    core re-applies the client's values on every server it gets. SET LOCAL, SET TRANSACTION,
--    SET CONSTRAINTS and set_config(..., true) are left alone. With strict = true a session SET
--    is rejected instead (RESET is still tracked: it only returns to the client's own values).
--  * LISTEN, SQL PREPARE, DECLARE ... WITH HOLD, CREATE TEMP objects without
--    ON COMMIT DROP, LOAD, SET ROLE and SET SESSION AUTHORIZATION are rejected with a message
--    that says what to do instead (SET LOCAL ROLE and RESET ROLE pass). SQL PREPARE inside an
--    explicit transaction passes: the prepared statement lives as long as that transaction (the core
--    resets the server after it), which is how pg_dump uses it. SQL DEALLOCATE always passes: it
--    only removes, and the core answers it for the protocol-level statements it keeps for the client
--    (drivers such as psycopg 3 close their statements that way).
--  * session advisory locks (pg_advisory_lock, pg_advisory_lock_shared, pg_try_advisory_lock,
--    pg_try_advisory_lock_shared) are rewritten to their _xact_ variants inside an explicit
--    transaction (client.in_transaction, or after BEGIN in the same query string): the lock is then
--    released at COMMIT/ROLLBACK, before the server goes back to the pool. Outside an explicit
--    transaction they are rejected: the statement runs in its own implicit transaction, so an
--    _xact_ lock would be released at once (no protection, silently), while a session lock would
--    stay on a server that other clients get next, and the client's later pg_advisory_unlock()
--    could run on another server. Inside a transaction, pg_advisory_unlock() of a rewritten lock
--    returns false with a WARNING; the lock is released at the end of the transaction.
--  * With check_set_config = true, statements that call set_config or SELECT ... INTO are inspected
--    too (the pseudo-kinds "set_config" and "select_into"; other SELECTs stay in C): set_config(name, value, false) with literal
--    arguments is tracked (rejected when strict), with non-literal arguments rejected outside an explicit
--    transaction (inside one it passes and lasts for the transaction);
--    SELECT ... INTO TEMP is rejected like CREATE TEMP TABLE.
-- Statements hidden in DO blocks or functions are not seen.

local classify = require "moonbouncer.classify"

local type, pairs, ipairs, error, tostring = type, pairs, ipairs, error, tostring
local concat = table.concat
local upper, sub = string.upper, string.sub

local OPTIONS = {
  strict = "boolean", allow_listen = "boolean", allow_prepare = "boolean", allow_hold_cursors = "boolean",
  allow_temp_tables = "boolean", allow_load = "boolean", allow_set_role = "boolean",
  allow_advisory_locks = "boolean", check_set_config = "boolean", pool_modes = "table",
}
local POOL_MODES = { session = true, transaction = true, statement = true }

local SQLSTATE = "0A000" -- feature_not_supported

local MSG = {
  listen = "LISTEN needs a session: this pool runs in transaction mode, where the server connection "
    .. "serves other clients between transactions; connect to a session-mode pool for LISTEN",
  prepare = "SQL PREPARE is not supported in transaction mode (the prepared statement would stay on a "
    .. "server connection other clients share); use protocol-level prepared statements (your driver's "
    .. "prepare, the extended query protocol) or a session-mode pool",
  hold = "DECLARE ... WITH HOLD is not supported in transaction mode (the cursor would outlive the "
    .. "transaction on a server connection other clients share); declare it WITHOUT HOLD inside a "
    .. "transaction, or use a session-mode pool",
  temp = "CREATE TEMP %s without ON COMMIT DROP is not supported in transaction mode (it would stay on a "
    .. "server connection other clients share); create a temporary table inside a transaction with "
    .. "ON COMMIT DROP, or use a session-mode pool",
  select_into = "SELECT ... INTO TEMP is not supported in transaction mode (the table would stay on a "
    .. "server connection other clients share); use CREATE TEMP TABLE ... ON COMMIT DROP AS SELECT "
    .. "inside a transaction, or a session-mode pool",
  load = "LOAD is not supported in transaction mode (the library would stay loaded in a server "
    .. "connection other clients share); list it in session_preload_libraries on the server, or use a "
    .. "session-mode pool",
  role = "SET ROLE is not supported in transaction mode (the role would carry over to other clients of "
    .. "the server connection); use SET LOCAL ROLE inside a transaction, or a session-mode pool",
  session_authorization = "SET SESSION AUTHORIZATION is not supported in transaction mode (it would "
    .. "carry over to other clients of the server connection); use SET LOCAL SESSION AUTHORIZATION "
    .. "inside a transaction, or a session-mode pool",
  advisory = "session-level advisory locks are not supported in transaction mode (the lock would stay "
    .. "on a server connection other clients get next); call pg_advisory_xact_lock() inside a "
    .. "transaction (BEGIN ... COMMIT), or use a session-mode pool",
  advisory_truncated = "this statement takes a session-level advisory lock, which transaction mode "
    .. "rewrites to pg_advisory_xact_lock(), but it is too long to rewrite; call pg_advisory_xact_lock() "
    .. "yourself, or use a session-mode pool",
  strict_set = "session SET is not allowed in transaction mode on this pool: use SET LOCAL inside a "
    .. "transaction, or pass the parameter when connecting (startup parameters or options)",
  untrackable = "this form of SET cannot be carried across server connections in transaction mode; "
    .. "use SET LOCAL inside a transaction, or a session-mode pool",
  set_config = "set_config(..., false) with a non-literal name or value cannot be carried across server "
    .. "connections in transaction mode; use set_config(..., true) inside a transaction, or SET; tools that "
    .. "set parameters this way (pg_dump) need a session-mode pool",
  strict_set_config = "set_config(..., false) is not allowed in transaction mode on this pool: use "
    .. "set_config(..., true) inside a transaction, or pass the parameter when connecting",
}

local function reject(msg)
  return { reject = msg, sqlstate = SQLSTATE }
end

return function(cfg)
  cfg = cfg or {}
  if type(cfg) ~= "table" then
    error("transaction_guard: expected a configuration table", 2)
  end
  for k, v in pairs(cfg) do
    if not OPTIONS[k] then
      error("transaction_guard: unknown option '" .. tostring(k) .. "'", 2)
    end
    if type(v) ~= OPTIONS[k] then
      error("transaction_guard: option " .. k .. " must be a " .. OPTIONS[k], 2)
    end
  end
  local modes = {}
  for _, m in ipairs(cfg.pool_modes or { "transaction" }) do
    if not POOL_MODES[m] then
      error("transaction_guard: pool_modes: unknown pool mode '" .. tostring(m) .. "'", 2)
    end
    modes[m] = true
  end
  local strict = cfg.strict == true
  local check_set_config = cfg.check_set_config == true

  local kinds = { "set", "reset", "discard" }
  local function need(kind, allowed)
    if not allowed then
      kinds[#kinds + 1] = kind
    end
  end
  need("listen", cfg.allow_listen)
  need("prepare", cfg.allow_prepare)
  need("declare", cfg.allow_hold_cursors)
  need("create", cfg.allow_temp_tables)
  need("load", cfg.allow_load)
  need("advisory_lock", cfg.allow_advisory_locks)
  if check_set_config then
    -- the core's scan marks the statements worth a look: a plain SELECT never enters Lua
    kinds[#kinds + 1] = "set_config"
    kinds[#kinds + 1] = "select_into"
  end

  local P = { name = "transaction_guard", query_kinds = kinds }

  -- Returns a reject message for one statement, or nil; appends to track and rewrites.
  local function check(st, in_tx, track, rewrites)
    local kind = st.kind
    if kind == "set" then
      if st.role_change then
        if st.scope ~= "local" and not cfg.allow_set_role and not st.default and st.value ~= "none" then
          return st.name == "role" and MSG.role or MSG.session_authorization
        end
      elseif st.scope == "local" or st.from_current then
        -- transaction-scoped: nothing to keep
      elseif strict then
        return MSG.strict_set
      elseif st.settings then
        for i = 1, #st.settings do
          track[#track + 1] = st.settings[i]
        end
      else
        return MSG.untrackable
      end
    elseif kind == "reset" then
      if st.settings and not st.role_change then
        for i = 1, #st.settings do
          track[#track + 1] = st.settings[i]
        end
      end
    elseif kind == "discard" then
      if st.all then
        track[#track + 1] = { reset = true }
      end
    elseif kind == "listen" then
      if not cfg.allow_listen then
        return MSG.listen
      end
    elseif kind == "prepare" then
      -- inside a transaction the statement dies with it: the core resets the server afterwards
      if not st.two_phase and not cfg.allow_prepare and not in_tx then
        return MSG.prepare
      end
    elseif kind == "declare" then
      if st.with_hold and not cfg.allow_hold_cursors then
        return MSG.hold
      end
    elseif kind == "create" then
      if st.temp and not st.on_commit_drop and not cfg.allow_temp_tables then
        return (MSG.temp):format(upper(st.object or "table"))
      end
    elseif kind == "load" then
      if not cfg.allow_load then
        return MSG.load
      end
    end

    if check_set_config then
      if st.into and st.temp and not cfg.allow_temp_tables then
        return MSG.select_into
      end
      local calls = st.set_config
      if calls then
        for i = 1, #calls do
          local c = calls[i]
          if c.is_local ~= true then
            if c.is_local == false and c.name and c.value then
              if strict then
                return MSG.strict_set_config
              end
              track[#track + 1] = { name = c.name, value = c.value }
            elseif not in_tx then
              -- inside a transaction it lasts for that transaction: the core resets the server afterwards
              return MSG.set_config
            end
          end
        end
      end
    end

    if st.advisory_lock == "session" and not cfg.allow_advisory_locks then
      if not in_tx then
        return MSG.advisory
      end
      local calls = st.advisory_calls
      for i = 1, #calls do
        if calls[i].level == "session" then
          rewrites[#rewrites + 1] = calls[i]
        end
      end
    end
    return nil
  end

  function P.on_query(client, q)
    if not modes[client.pool_mode] then
      return nil
    end
    if q.protocol == "function" then
      -- a fast-path call has no SQL to rewrite: a session advisory lock by OID is refused
      if not cfg.allow_advisory_locks then
        local kinds = q.kinds or {}
        for i = 1, #kinds do
          if kinds[i] == "advisory_lock" then
            return reject(MSG.advisory)
          end
        end
      end
      return nil
    end
    local sql = q.sql
    if type(sql) ~= "string" then
      return nil
    end
    local stmts = q.statements
    local track, rewrites = {}, {}
    local in_tx = client.in_transaction and true or false
    for i = 1, #stmts do
      local st = stmts[i]
      local msg = check(st, in_tx, track, rewrites)
      if msg then
        return reject(msg)
      end
      if st.tx == "begin" then
        in_tx = true
      elseif st.tx == "commit" or st.tx == "rollback" then
        in_tx = st.chain == true
      end
    end
    local d
    if #rewrites > 0 then
      if q.truncated then
        return reject(MSG.advisory_truncated)
      end
      local parts, pos = {}, 1
      for i = 1, #rewrites do
        local r = rewrites[i]
        parts[#parts + 1] = sub(sql, pos, r.start - 1)
        parts[#parts + 1] = classify.ADVISORY_SESSION[r.name]
        pos = r.stop + 1
      end
      parts[#parts + 1] = sub(sql, pos)
      d = { rewrite = concat(parts) }
    end
    if #track > 0 then
      d = d or {}
      d.track = track
    end
    return d
  end

  return P
end

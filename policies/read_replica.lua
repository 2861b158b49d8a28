-- Send read-only transactions to a replica's [databases] entry (conservative).
--
-- A drop-in file:
--
--   return require("policies.read_replica") {
--     replica = "app_replica",          -- the [databases] entry of the replica
--     pool_modes = { "transaction", "statement" },  -- never session mode by default
--     deny_functions = { "log_visit" }, -- your own functions that write
--     strict_functions = false,         -- true: route only when every function called is known
--     safe_functions = { "report_total" },  -- read-only functions of yours (with strict_functions)
--     route_open_transactions = false,  -- see below
--     check_route = true,               -- fail the load when replica is not a [databases] entry
--   }
--
-- on_transaction_begin routes the transaction to `replica` when all of these hold:
--  * the client's pool mode is listed (in session mode one first statement would pin the whole
--    session to the replica, so session mode is left out unless listed);
--  * q.read_only: every statement is certainly read-only by the classifier's rule (SELECT,
--    VALUES, TABLE, WITH and SHOW without writes, row locks, SELECT INTO or known writing
--    functions such as nextval; EXPLAIN/DECLARE/PREPARE/COPY TO STDOUT of such a query);
--  * no function from deny_functions is called (and with strict_functions, every function called
--    is in a built-in list of read-only functions or in safe_functions);
--  * the transaction ends within this query: an autocommit statement, or BEGIN ... COMMIT in the
--    same query string. A transaction declared READ ONLY (BEGIN READ ONLY) may stay open, since a
--    write would fail on the primary too. An explicit transaction whose later statements are not
--    known yet (client.in_transaction, or a BEGIN left open) stays on the primary unless
--    route_open_transactions = true.
-- A write that slips through fails on the replica with PostgreSQL's read-only error, never silently.

local mb = require "moonbouncer"

local type, pairs, ipairs, error, tostring, next = type, pairs, ipairs, error, tostring, next

local OPTIONS = { replica = "string", pool_modes = "table", deny_functions = "table", strict_functions = "boolean",
  safe_functions = "table", route_open_transactions = "boolean", check_route = "boolean" }
local POOL_MODES = { session = true, transaction = true, statement = true }

-- Read-only built-ins (and type names that look like calls, e.g. numeric(10,2)) for strict_functions.
local SAFE = {}
for name in ([[
  count sum avg min max bool_and bool_or every array_agg string_agg json_agg jsonb_agg json_object_agg
  jsonb_object_agg stddev variance percentile_cont percentile_disc mode row_number rank dense_rank
  percent_rank cume_dist ntile lag lead first_value last_value nth_value
  coalesce nullif greatest least now clock_timestamp statement_timestamp transaction_timestamp
  timeofday current_setting current_database current_schema current_schemas current_user session_user
  version lower upper length char_length octet_length substring substr trim btrim ltrim rtrim replace
  concat concat_ws format left right lpad rpad position strpos split_part regexp_replace regexp_match
  regexp_matches regexp_split_to_array regexp_split_to_table to_char to_date to_timestamp to_number
  date_trunc date_part extract age make_date make_interval make_timestamp make_timestamptz abs round
  floor ceil ceiling trunc mod power sqrt random md5 sha256 encode decode quote_ident quote_literal
  quote_nullable array_length array_position array_to_string string_to_array unnest generate_series
  cardinality json_build_object jsonb_build_object json_build_array jsonb_build_array to_json to_jsonb
  row_to_json array_to_json jsonb_set jsonb_insert jsonb_path_query jsonb_path_exists json_extract_path
  jsonb_extract_path json_extract_path_text jsonb_extract_path_text jsonb_each jsonb_array_elements
  json_each json_array_elements jsonb_typeof json_typeof jsonb_strip_nulls exists
  numeric decimal varchar char character bit varbit timestamp timestamptz time timetz interval float
  pg_get_userbyid format_type pg_get_expr pg_table_is_visible pg_type_is_visible pg_function_is_visible
  obj_description col_description shobj_description pg_get_indexdef pg_get_constraintdef
  pg_get_viewdef pg_get_triggerdef pg_get_functiondef pg_get_function_arguments pg_get_function_result
  pg_size_pretty pg_relation_size pg_total_relation_size pg_table_size pg_indexes_size
  pg_database_size has_table_privilege has_schema_privilege has_database_privilege pg_has_role
  has_column_privilege has_function_privilege pg_encoding_to_char pg_get_serial_sequence
  pg_is_in_recovery pg_last_wal_replay_lsn pg_last_xact_replay_timestamp pg_postmaster_start_time
  pg_backend_pid inet_client_addr inet_server_addr array_remove array_append array_cat
]]):gmatch("%S+") do
  SAFE[name] = true
end

local function name_set(list, what)
  local set = {}
  for i, n in ipairs(list or {}) do
    if type(n) ~= "string" or n == "" then
      error("read_replica: " .. what .. "[" .. i .. "] must be a function name", 3)
    end
    set[n:lower()] = true
  end
  return set
end

return function(cfg)
  if type(cfg) ~= "table" then
    error("read_replica: expected a configuration table", 2)
  end
  for k, v in pairs(cfg) do
    if not OPTIONS[k] then
      error("read_replica: unknown option '" .. tostring(k) .. "'", 2)
    end
    if type(v) ~= OPTIONS[k] then
      error("read_replica: option " .. k .. " must be a " .. OPTIONS[k], 2)
    end
  end
  local replica = cfg.replica
  if replica == nil or replica == "" then
    error("read_replica: replica (a [databases] entry name) is required", 2)
  end
  local modes = {}
  for _, m in ipairs(cfg.pool_modes or { "transaction", "statement" }) do
    if not POOL_MODES[m] then
      error("read_replica: pool_modes: unknown pool mode '" .. tostring(m) .. "'", 2)
    end
    modes[m] = true
  end
  local deny = name_set(cfg.deny_functions, "deny_functions")
  local safe = name_set(cfg.safe_functions, "safe_functions")
  local strict = cfg.strict_functions == true
  local open_ok = cfg.route_open_transactions == true

  if cfg.check_route ~= false and type(mb.databases) == "function" then
    local known = mb.databases()
    if type(known) == "table" and next(known) ~= nil and known[replica] == nil then
      error("read_replica: replica '" .. replica .. "' is not a [databases] entry", 2)
    end
  end

  local function functions_ok(stmts)
    for i = 1, #stmts do
      local fns = stmts[i].functions
      if fns then
        for j = 1, #fns do
          local f = fns[j]
          if deny[f] or (strict and not SAFE[f] and not safe[f]) then
            return false
          end
        end
      end
    end
    return true
  end

  local P = { name = "read_replica" }

  function P.on_transaction_begin(client, q)
    if not modes[client.pool_mode] or q.truncated or not q.read_only then
      return nil
    end
    local stmts = q.statements
    if not functions_ok(stmts) then
      return nil
    end
    local in_tx = client.in_transaction and true or false
    if in_tx and not open_ok then
      return nil -- the transaction began earlier: its other statements are unknown
    end
    local declared_ro = false
    for i = 1, #stmts do
      local st = stmts[i]
      if st.tx == "begin" then
        in_tx, declared_ro = true, st.tx_read_only == true
      elseif (st.tx == "commit" or st.tx == "rollback") and not st.chain then
        in_tx, declared_ro = false, false
      end
    end
    if in_tx and not declared_ro and not open_ok then
      return nil
    end
    return { route = replica }
  end

  return P
end

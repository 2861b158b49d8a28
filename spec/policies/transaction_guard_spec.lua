-- Specs for policies/transaction_guard.lua.

local H = require "spec.helpers"
local T = H.T
local P = H.policy

local function guard(cfg_src)
  return H.load({ P("30-guard.lua", "return require('policies.transaction_guard') " .. (cfg_src or "{}")) })
end

local function tx_client(in_tx)
  return T.client { pool_mode = "transaction", in_transaction = in_tx or false }
end

describe("transaction_guard", function()
  local gen = guard()

  local function run(sql, client, opts)
    local d, err = gen:on_query(client or tx_client(), T.query(sql, opts))
    assert.is_nil(err)
    return d
  end

  it("asks for exactly the kinds it needs", function()
    assert.are.same({ set = true, reset = true, discard = true, listen = true, prepare = true,
      declare = true, create = true, load = true, advisory_lock = true }, gen.kinds)
    assert.is_false(gen.all_kinds)
    local relaxed = guard("{ allow_listen = true, allow_prepare = true, allow_temp_tables = true, allow_load = true, "
      .. "allow_hold_cursors = true, allow_advisory_locks = true }")
    assert.are.same({ set = true, reset = true, discard = true }, relaxed.kinds)
    local sc = guard("{ check_set_config = true }")
    assert.is_true(sc.kinds.set_config and sc.kinds.select_into)
    assert.is_nil(sc.kinds.select) -- a plain SELECT stays in C
  end)

  it("leaves session-mode clients alone", function()
    local c = T.client { pool_mode = "session" }
    assert.is_nil(run("LISTEN x", c))
    assert.is_nil(run("SET search_path = a", c))
  end)

  it("guards the pool modes it is told to", function()
    local g = guard("{ pool_modes = { 'statement' } }")
    assert.is_nil(g:on_query(tx_client(), T.query("LISTEN x")))
    assert.is_string(g:on_query(T.client { pool_mode = "statement" }, T.query("LISTEN x")).reject)
  end)

  describe("tracks", function()
    it("session SET", function()
      assert.are.same({ track = { { name = "search_path", value = '"$user", public' } } },
        run('SET search_path TO "$user", public'))
      assert.are.same({ track = { { name = "application_name", value = "PostgreSQL JDBC Driver" } } },
        run("SET application_name = 'PostgreSQL JDBC Driver'"))
    end)

    it("SET ... TO DEFAULT, RESET, RESET ALL and DISCARD ALL as resets", function()
      assert.are.same({ track = { { reset = "work_mem" } } }, run("SET work_mem TO DEFAULT"))
      assert.are.same({ track = { { reset = "work_mem" } } }, run("RESET work_mem"))
      assert.are.same({ track = { { reset = true } } }, run("RESET ALL"))
      assert.are.same({ track = { { reset = true } } }, run("DISCARD ALL"))
      assert.is_nil(run("DISCARD PLANS"))
    end)

    it("SET SESSION CHARACTERISTICS as the default_transaction_* parameters", function()
      assert.are.same({ track = { { name = "default_transaction_isolation", value = "serializable" },
        { name = "default_transaction_deferrable", value = "on" } } },
        run("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE DEFERRABLE"))
    end)

    it("every SET of a multi-statement query, in order", function()
      assert.are.same({ track = { { name = "datestyle", value = "iso" }, { name = "client_min_messages",
        value = "notice" } } }, run("SET DateStyle=ISO; SELECT 1; SET client_min_messages=notice"))
    end)

    it("and leaves SET LOCAL, SET TRANSACTION, SET CONSTRAINTS and SET ... FROM CURRENT alone", function()
      for _, sql in ipairs({ "SET LOCAL statement_timeout = '5s'", "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        "SET CONSTRAINTS ALL DEFERRED", "SET work_mem FROM CURRENT", "SET LOCAL ROLE reader", "RESET ROLE",
        "SET ROLE NONE", "SET SESSION AUTHORIZATION DEFAULT" }) do
        assert.is_nil(run(sql), sql)
      end
    end)
  end)

  describe("strict mode", function()
    local strict = guard("{ strict = true }")

    it("rejects session SET with a hint", function()
      local d = strict:on_query(tx_client(), T.query("SET search_path = app"))
      assert.are.equal("0A000", d.sqlstate)
      assert.matches("use SET LOCAL inside a transaction", d.reject)
    end)

    it("still tracks RESET and passes SET LOCAL", function()
      assert.are.same({ track = { { reset = "search_path" } } }, strict:on_query(tx_client(), T.query("RESET search_path")))
      assert.is_nil(strict:on_query(tx_client(), T.query("SET LOCAL search_path = app")))
    end)
  end)

  describe("rejects with a message that names the fix", function()
    local cases = {
      { "LISTEN orders", "connect to a session%-mode pool for LISTEN" },
      { "PREPARE q1 AS SELECT 1", "use protocol%-level prepared statements" },
      { "DECLARE c CURSOR WITH HOLD FOR SELECT 1", "declare it WITHOUT HOLD inside a transaction" },
      { "CREATE TEMP TABLE t (a int)", "CREATE TEMP TABLE without ON COMMIT DROP.*with ON COMMIT DROP" },
      { "CREATE TEMP VIEW v AS SELECT 1", "CREATE TEMP VIEW without ON COMMIT DROP" },
      { "CREATE TEMP TABLE t (a int) ON COMMIT DELETE ROWS", "ON COMMIT DROP" },
      { "LOAD 'auto_explain'", "session_preload_libraries" },
      { "SET ROLE admin", "use SET LOCAL ROLE inside a transaction" },
      { "SET SESSION ROLE admin", "use SET LOCAL ROLE inside a transaction" },
      { "SET SESSION AUTHORIZATION bob", "use SET LOCAL SESSION AUTHORIZATION" },
      { "SELECT pg_advisory_lock(1)", "call pg_advisory_xact_lock%(%) inside a transaction" },
      { "SET TIME ZONE INTERVAL '+01:00' HOUR TO MINUTE", "use SET LOCAL inside a transaction" },
      { "SET search_path = a; LISTEN x", "LISTEN" },
    }
    for _, case in ipairs(cases) do
      it(case[1], function()
        local d = run(case[1])
        assert.is_table(d)
        assert.are.equal("0A000", d.sqlstate)
        assert.matches(case[2], d.reject)
        assert.is_nil(d.track)
      end)
    end
  end)

  it("passes SQL DEALLOCATE anywhere: it only removes, and the core answers it for statements it keeps", function()
    for _, sql in ipairs({ "DEALLOCATE q1", "DEALLOCATE PREPARE q1", "DEALLOCATE ALL" }) do
      assert.is_nil(run(sql), sql)
    end
  end)

  it("passes SQL PREPARE and DEALLOCATE inside a transaction (pg_dump's catalog queries), where they die with it", function()
    assert.is_nil(run("PREPARE getColumnACLs(pg_catalog.oid) AS SELECT 1", tx_client(true)))
    assert.is_nil(run("EXECUTE getColumnACLs(1)", tx_client(true)))
    assert.is_nil(run("DEALLOCATE getColumnACLs", tx_client(true)))
    assert.is_nil(run("BEGIN; PREPARE q AS SELECT 1; EXECUTE q; COMMIT"))
    assert.matches("use protocol%-level prepared statements", run("PREPARE q AS SELECT 1; BEGIN").reject)
  end)

  it("rejects a session advisory lock called by FunctionCall, and passes other function calls", function()
    local lock = { sql = "", kind = "function", kinds = { "function", "advisory_lock" }, protocol = "function" }
    local other = { sql = "", kind = "function", kinds = { "function" }, protocol = "function" }
    local d = gen:on_query(tx_client(), lock)
    assert.is_string(d and d.reject)
    assert.matches("advisory", d.reject)
    assert.is_nil(gen:on_query(tx_client(), other))
  end)

  it("passes what is safe in transaction mode", function()
    for _, sql in ipairs({ "CREATE TEMP TABLE t (a int) ON COMMIT DROP", "DECLARE c CURSOR FOR SELECT 1",
      "PREPARE TRANSACTION 'gid-1'", "CREATE TABLE t (a int)", "UNLISTEN *", "NOTIFY orders",
      "SELECT pg_advisory_xact_lock(1)", "EXECUTE q1" }) do
      assert.is_nil(run(sql), sql)
    end
  end)

  it("lets each category through when allowed", function()
    local g = guard("{ allow_listen = true, allow_prepare = true, allow_hold_cursors = true, "
      .. "allow_temp_tables = true, allow_load = true, allow_set_role = true, allow_advisory_locks = true }")
    for _, sql in ipairs({ "LISTEN x", "PREPARE p AS SELECT 1", "DEALLOCATE p", "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
      "CREATE TEMP TABLE t (a int)", "LOAD 'auto_explain'", "SET ROLE admin", "SET SESSION AUTHORIZATION bob",
      "SELECT pg_advisory_lock(1)" }) do
      assert.is_nil(g:on_query(tx_client(), T.query(sql)), sql)
    end
  end)

  describe("advisory locks", function()
    it("are rewritten to the _xact_ variants inside a transaction", function()
      assert.are.same({ rewrite = "SELECT pg_advisory_xact_lock(1)" }, run("SELECT pg_advisory_lock(1)", tx_client(true)))
      assert.are.same({ rewrite = "select pg_catalog.pg_try_advisory_xact_lock_shared(k), pg_advisory_xact_lock_shared(2) "
        .. "from jobs" }, run("select pg_catalog.pg_try_advisory_lock_shared(k), \"pg_advisory_lock_shared\"(2) from jobs",
        tx_client(true)))
    end)

    it("are rewritten after a BEGIN in the same query string", function()
      assert.are.same({ rewrite = "BEGIN; SELECT pg_advisory_xact_lock(42); UPDATE t SET a = 1; COMMIT" },
        run("BEGIN; SELECT pg_advisory_lock(42); UPDATE t SET a = 1; COMMIT"))
    end)

    it("are rejected once the transaction ended", function()
      local d = run("BEGIN; COMMIT; SELECT pg_advisory_lock(1)")
      assert.is_string(d.reject)
      local chained = run("BEGIN; COMMIT AND CHAIN; SELECT pg_advisory_lock(1)")
      assert.are.equal("BEGIN; COMMIT AND CHAIN; SELECT pg_advisory_xact_lock(1)", chained.rewrite)
    end)

    it("are rejected when the statement is too long to rewrite", function()
      local d = run("SELECT pg_advisory_lock(1), 'a long tail'", tx_client(true), { max_length = 30 })
      assert.matches("too long to rewrite", d.reject)
    end)

    it("come with tracking in the same decision", function()
      assert.are.same({ rewrite = "SET a.b = 1; SELECT pg_advisory_xact_lock(1)", track = { { name = "a.b", value = "1" } } },
        run("SET a.b = 1; SELECT pg_advisory_lock(1)", tx_client(true)))
    end)
  end)

  describe("with check_set_config", function()
    local g = guard("{ check_set_config = true }")
    local function go(sql, gg)
      local d, err = (gg or g):on_query(tx_client(), T.query(sql))
      assert.is_nil(err)
      return d
    end

    it("tracks set_config(..., false) with literal arguments", function()
      assert.are.same({ track = { { name = "search_path", value = "" } } },
        go("SELECT pg_catalog.set_config('search_path', '', false)"))
    end)

    it("leaves set_config(..., true) alone", function()
      assert.is_nil(go("select set_config('role', $1, true), set_config('request.jwt', $2, true)"))
    end)

    it("rejects set_config(..., false) it cannot track, naming the session mode for tools", function()
      assert.matches("non%-literal name or value", go("SELECT set_config('search_path', $1, false)").reject)
      assert.matches("non%-literal name or value", go("SELECT set_config('search_path', 'x', $1)").reject)
      local d = go("SELECT set_config(name, 'view, foreign-table', false) FROM pg_settings "
        .. "WHERE name = 'restrict_nonsystem_relation_kind'")
      assert.matches("%(pg_dump%) need a session%-mode pool", d.reject)
    end)

    it("passes set_config(..., false) it cannot track inside a transaction, where it lasts for the transaction", function()
      assert.is_nil(g:on_query(tx_client(true), T.query("SELECT set_config(name, 'x', false) FROM pg_settings")))
      assert.is_nil(go("BEGIN; SELECT set_config('search_path', $1, false)"))
    end)

    it("rejects set_config(..., false) in strict mode", function()
      local strict = guard("{ check_set_config = true, strict = true }")
      assert.matches("is not allowed", go("SELECT set_config('a.b', 'x', false)", strict).reject)
    end)

    it("rejects SELECT INTO TEMP", function()
      assert.matches("SELECT %.%.%. INTO TEMP", go("SELECT * INTO TEMP t FROM orders").reject)
      assert.is_nil(go("SELECT * FROM orders"))
    end)
  end)

  it("refuses bad configuration", function()
    for src, want in pairs({
      ["{ stict = true }"] = "unknown option 'stict'",
      ["{ strict = 'yes' }"] = "option strict must be a boolean",
      ["{ pool_modes = { 'tx' } }"] = "unknown pool mode 'tx'",
    }) do
      local ok, err = pcall(guard, src)
      assert.is_false(ok, src)
      assert.matches(want, err, src)
    end
  end)
end)

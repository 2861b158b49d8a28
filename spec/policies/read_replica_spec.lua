-- Specs for policies/read_replica.lua.

local H = require "spec.helpers"
local T = H.T
local P = H.policy

local function replica(cfg_src, host_opts)
  return H.load({ P("40-replica.lua", "return require('policies.read_replica') " .. cfg_src) },
    { host = T.host(host_opts) })
end

local function client(fields)
  fields = fields or {}
  fields.pool_mode = fields.pool_mode or "transaction"
  return T.client(fields)
end

describe("read_replica", function()
  local gen = replica("{ replica = 'app_ro' }")

  local function route(sql, c, opts)
    local d, err = gen:on_transaction_begin(c or client(), T.query(sql, opts))
    assert.is_nil(err)
    return d and d.route
  end

  it("routes read-only statements outside a transaction", function()
    assert.are.equal("app_ro", route("SELECT * FROM orders WHERE id = $1"))
    assert.are.equal("app_ro", route("WITH t AS (SELECT 1) SELECT * FROM t"))
    assert.are.equal("app_ro", route("SHOW search_path"))
  end)

  it("keeps writes and anything doubtful on the primary", function()
    for _, sql in ipairs({ "UPDATE orders SET a = 1", "SELECT nextval('s')", "SELECT * FROM jobs FOR UPDATE",
      "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "SELECT 1; INSERT INTO t VALUES (1)",
      "SELECT * INTO t2 FROM t", "CALL p()", "DO $$ BEGIN END $$", "LISTEN x" }) do
      assert.is_nil(route(sql), sql)
    end
  end)

  it("routes a whole BEGIN ... COMMIT in one query string", function()
    assert.are.equal("app_ro", route("BEGIN; SELECT 1; SELECT 2; COMMIT"))
  end)

  it("keeps open transactions on the primary unless declared READ ONLY", function()
    assert.is_nil(route("BEGIN; SELECT 1"))
    assert.is_nil(route("SELECT 1", client { in_transaction = true }))
    assert.are.equal("app_ro", route("BEGIN READ ONLY; SELECT 1"))
    assert.are.equal("app_ro", route("START TRANSACTION READ ONLY"))
    assert.is_nil(route("BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY"))
  end)

  it("routes open transactions when told to", function()
    local g = replica("{ replica = 'app_ro', route_open_transactions = true }")
    assert.are.same({ route = "app_ro" }, g:on_transaction_begin(client { in_transaction = true }, T.query("SELECT 1")))
    assert.are.same({ route = "app_ro" }, g:on_transaction_begin(client(), T.query("BEGIN; SELECT 1")))
  end)

  it("leaves session-mode clients alone unless listed", function()
    assert.is_nil(route("SELECT 1", client { pool_mode = "session" }))
    local g = replica("{ replica = 'app_ro', pool_modes = { 'session' } }")
    assert.are.same({ route = "app_ro" }, g:on_transaction_begin(client { pool_mode = "session" }, T.query("SELECT 1")))
    assert.is_nil(g:on_transaction_begin(client(), T.query("SELECT 1")))
  end)

  it("does not route truncated statements", function()
    assert.is_nil(route("SELECT 1 FROM orders WHERE a = 'long'", nil, { max_length = 20 }))
  end)

  it("does not route calls of denied functions", function()
    local g = replica("{ replica = 'app_ro', deny_functions = { 'log_visit' } }")
    assert.is_nil(g:on_transaction_begin(client(), T.query("SELECT log_visit(1)")))
    assert.are.same({ route = "app_ro" }, g:on_transaction_begin(client(), T.query("SELECT lower('A')")))
  end)

  it("routes only known functions with strict_functions", function()
    local g = replica("{ replica = 'app_ro', strict_functions = true, safe_functions = { 'report_total' } }")
    assert.are.same({ route = "app_ro" }, g:on_transaction_begin(client(), T.query("SELECT count(*), report_total(1) FROM t")))
    assert.is_nil(g:on_transaction_begin(client(), T.query("SELECT my_func(1)")))
  end)

  it("checks the replica entry against the configured databases", function()
    assert.has_no.errors(function()
      replica("{ replica = 'app_ro' }", { databases = { app = {}, app_ro = {} } })
    end)
    local ok, err = pcall(replica, "{ replica = 'app_ro' }", { databases = { app = {} } })
    assert.is_false(ok)
    assert.matches("replica 'app_ro' is not a %[databases%] entry", err)
  end)

  it("refuses bad configuration", function()
    for src, want in pairs({
      ["{}"] = "replica %(a %[databases%] entry name%) is required",
      ["{ replica = 'r', pool_modes = { 'x' } }"] = "unknown pool mode 'x'",
      ["{ replica = 'r', deny_functions = { 1 } }"] = "deny_functions%[1%] must be a function name",
      ["{ replica = 'r', strict = true }"] = "unknown option 'strict'",
    }) do
      local ok, err = pcall(replica, src)
      assert.is_false(ok, src)
      assert.matches(want, err, src)
    end
  end)
end)

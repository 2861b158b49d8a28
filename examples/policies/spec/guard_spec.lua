-- How an operator tests a policy: load the drop-in file with moonbouncer's own dispatcher and feed
-- it fake clients and statements.
--
-- From a source tree:      busted --lua=luajit examples/policies/spec
-- Against an installation: busted --lua=luajit --lpath='/usr/local/share/moonbouncer/lua/?.lua' spec/

local T = require "moonbouncer.testing"

-- the policy directory is the parent of this spec's directory
local dir = debug.getinfo(1, "S").source:match("^@(.*)/spec/[^/]+$") or "."

describe("30-guard.lua", function()
  local gen = T.load(dir .. "/30-guard.lua")
  local web = T.client { user = "web", pool_mode = "transaction" }

  it("keeps the client's search_path across server connections", function()
    local d = gen:on_query(web, T.query("SET search_path = app, public"))
    assert.are.same({ track = { { name = "search_path", value = "app, public" } } }, d)
  end)

  it("sends LISTEN users to a session pool", function()
    local d = gen:on_query(web, T.query("LISTEN new_orders"))
    assert.matches("session%-mode pool", d.reject)
  end)

  it("turns an advisory lock inside a transaction into a transaction lock", function()
    local in_tx = T.client { pool_mode = "transaction", in_transaction = true }
    local d = gen:on_query(in_tx, T.query("SELECT pg_advisory_lock(42)"))
    assert.are.equal("SELECT pg_advisory_xact_lock(42)", d.rewrite)
  end)

  it("does not touch session-mode clients", function()
    local admin = T.client { user = "admin", pool_mode = "session" }
    assert.is_nil(gen:on_query(admin, T.query("LISTEN new_orders")))
  end)

  it("works with the other drop-in files of the directory", function()
    local all = T.load({ dir .. "/10-route.lua", dir .. "/20-tenants.lua", dir .. "/30-guard.lua" })
    local etl = T.client { user = "etl", pool_mode = "transaction" }
    assert.are.same({ route = "warehouse", user = "etl_rw", tenant = "etl" }, all:on_connect(etl))
    assert.are.same({ max_active = 2, max_clients = 50 }, all:limits("etl"))
  end)
end)

-- Specs for policies/route_by_user_db.lua.

local H = require "spec.helpers"
local T = H.T
local P = H.policy

local function route_policy(cfg_src, host_opts)
  return H.load({ P("10-route.lua", "return require('policies.route_by_user_db') " .. cfg_src) },
    { host = T.host(host_opts) })
end

describe("route_by_user_db", function()
  local gen = route_policy([[{
    users = { alice = "db_a", etl = { route = "warehouse", user = "etl_rw" }, svc = { user = "svc_ro" } },
    databases = { reporting = "replica" },
  }]])

  it("routes by user", function()
    assert.are.same({ route = "db_a" }, gen:on_connect(T.client { user = "alice", database = "shop" }))
  end)

  it("maps the server-side user too", function()
    assert.are.same({ route = "warehouse", user = "etl_rw" }, gen:on_connect(T.client { user = "etl" }))
    assert.are.same({ user = "svc_ro" }, gen:on_connect(T.client { user = "svc" }))
  end)

  it("routes by database when the user has no entry", function()
    assert.are.same({ route = "replica" }, gen:on_connect(T.client { user = "bob", database = "reporting" }))
  end)

  it("prefers the user entry over the database entry", function()
    assert.are.same({ route = "db_a" }, gen:on_connect(T.client { user = "alice", database = "reporting" }))
  end)

  it("passes clients without a match", function()
    local d, err = gen:on_connect(T.client { user = "bob", database = "shop" })
    assert.is_nil(d)
    assert.is_nil(err)
  end)

  it("uses default for everyone else", function()
    local g = route_policy([[{ users = { alice = "db_a" }, default = "general" }]])
    assert.are.same({ route = "general" }, g:on_connect(T.client { user = "zed" }))
    assert.are.same({ route = "db_a" }, g:on_connect(T.client { user = "alice" }))
  end)

  it("checks routes against the configured databases", function()
    local dbs = { databases = { db_a = {}, general = {} } }
    assert.has_no.errors(function()
      route_policy([[{ users = { alice = "db_a" }, default = "general" }]], dbs)
    end)
    local ok, err = pcall(route_policy, [[{ users = { alice = "nowhere" } }]], dbs)
    assert.is_false(ok)
    assert.matches("users%.alice routes to 'nowhere', which is not a %[databases%] entry", err)
    assert.has_no.errors(function()
      route_policy([[{ users = { alice = "nowhere" }, check_routes = false }]], dbs)
    end)
  end)

  it("refuses bad configuration", function()
    for src, want in pairs({
      ["{ usres = {} }"] = "unknown option 'usres'",
      ["{ users = { alice = 5 } }"] = "users%[alice%] must be a route name",
      ["{ users = { alice = { route = '' } } }"] = "route must be a non%-empty string",
      ["{ users = { alice = { rout = 'x' } } }"] = "unknown field 'rout'",
      ["{ databases = 'x' }"] = "databases must be a table",
      ["'x'"] = "expected a configuration table",
    }) do
      local ok, err = pcall(route_policy, src)
      assert.is_false(ok, src)
      assert.matches(want, err, src)
    end
  end)
end)

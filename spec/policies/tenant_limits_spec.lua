-- Specs for policies/tenant_limits.lua.

local H = require "spec.helpers"
local T = H.T
local P = H.policy

local function tenants(cfg_src)
  return H.load({ P("20-tenants.lua", "return require('policies.tenant_limits') " .. cfg_src) })
end

describe("tenant_limits", function()
  local LIMITS = [[limits = { acme = { max_active = 5, max_clients = 200, rate = 50 }, ["*"] = { max_active = 2 } }]]

  it("takes the tenant from the user by default", function()
    local gen = tenants("{ " .. LIMITS .. " }")
    assert.are.same({ tenant = "alice" }, gen:on_connect(T.client { user = "alice", database = "acme" }))
  end)

  it("takes the tenant from the database or application_name", function()
    local g1 = tenants("{ tenant_from = 'database', " .. LIMITS .. " }")
    assert.are.same({ tenant = "acme" }, g1:on_connect(T.client { user = "alice", database = "acme" }))
    local g2 = tenants("{ tenant_from = 'application_name', " .. LIMITS .. " }")
    assert.are.same({ tenant = "billing" }, g2:on_connect(T.client { application_name = "billing" }))
    assert.is_nil(g2:on_connect(T.client { application_name = "" }))
  end)

  it("takes the tenant from a function", function()
    local gen = tenants([[{ tenant_from = function(c) return c.user:match("^(%w+)_") end, ]] .. LIMITS .. " }")
    assert.are.same({ tenant = "acme" }, gen:on_connect(T.client { user = "acme_web" }))
    assert.is_nil(gen:on_connect(T.client { user = "nounderscore" }))
  end)

  it("reports a function returning a non-string as a policy error", function()
    local gen = tenants([[{ tenant_from = function(c) return {} end }]])
    local d, err = gen:on_connect(T.client())
    assert.is_nil(d)
    assert.matches("^20%-tenants%.lua: on_connect: .*tenant_from returned a table", err)
  end)

  it("gives the tenant's limits, else the '*' entry", function()
    local gen = tenants("{ " .. LIMITS .. " }")
    assert.are.same({ max_active = 5, max_clients = 200, rate = 50 }, gen:limits("acme"))
    assert.are.same({ max_active = 2 }, gen:limits("someone"))
  end)

  it("gives no limits to unknown tenants without '*'", function()
    local gen = tenants("{ limits = { acme = { max_active = 1 } } }")
    assert.is_nil((gen:limits("other")))
  end)

  it("hands out copies", function()
    local gen = tenants("{ " .. LIMITS .. " }")
    local l = gen:limits("acme")
    l.max_active = 1000
    assert.are.equal(5, gen:limits("acme").max_active)
  end)

  it("can refuse unknown tenants", function()
    local gen = tenants("{ reject_unknown = true, limits = { acme = { max_active = 1 } } }")
    assert.are.same({ tenant = "acme" }, gen:on_connect(T.client { user = "acme" }))
    assert.are.same({ reject = 'unknown tenant "bob"', sqlstate = "28000" }, gen:on_connect(T.client { user = "bob" }))
  end)

  it("refuses bad configuration", function()
    for src, want in pairs({
      ["{ tenant_from = 'host' }"] = "tenant_from must be",
      ["{ limits = { a = { max_active = -1 } } }"] = "limits%[a%]%.max_active must be a non%-negative integer",
      ["{ limits = { a = { max_active = 1.5 } } }"] = "must be a non%-negative integer",
      ["{ limits = { a = { rate = 'x' } } }"] = "limits%[a%]%.rate must be a non%-negative number",
      ["{ limits = { a = { burst = 1 } } }"] = "unknown field 'burst'",
      ["{ limits = { a = 5 } }"] = "limits%[a%] must be a table",
      ["{ limit = {} }"] = "unknown option 'limit'",
    }) do
      local ok, err = pcall(tenants, src)
      assert.is_false(ok, src)
      assert.matches(want, err, src)
    end
  end)
end)

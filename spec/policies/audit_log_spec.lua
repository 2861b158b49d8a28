-- Specs for policies/audit_log.lua.

local H = require "spec.helpers"
local T = H.T
local P = H.policy

local function audit(cfg_src)
  return H.load({ P("90-audit.lua", "return require('policies.audit_log') " .. (cfg_src or "{}")) })
end

describe("audit_log", function()
  it("logs connect and disconnect with duration and transaction count", function()
    local gen, host = audit()
    host.set_now(100)
    local c = T.client { id = 7001, user = "alice", database = "app", application_name = "my app",
      addr = "10.0.0.5", port = 51234, tls = true }
    gen:on_connect(c)
    for _ = 1, 3 do
      gen:on_transaction_begin(c, T.query("SELECT 1"))
    end
    host.advance(12.5)
    gen:on_disconnect(c)
    assert.are.same({
      'info: audit: connect id=7001 user=alice database=app application_name="my app" addr=10.0.0.5:51234 tls=true',
      "info: audit: disconnect id=7001 user=alice database=app duration=12.500s transactions=3",
    }, host.lines)
  end)

  it("counts the statement kinds it is asked to count", function()
    local gen, host = audit([[{ count_kinds = { "create", "DROP" }, level = "warning" }]])
    assert.are.same({ create = true, drop = true }, gen.kinds)
    local c = T.client { id = 7002, tenant = "acme" }
    gen:on_connect(c)
    gen:on_query(c, T.query("CREATE TABLE a (x int); DROP TABLE b"))
    gen:on_query(c, T.query("SELECT 1"))
    gen:on_query(c, T.query("DROP TABLE c"))
    gen:on_disconnect(c)
    assert.are.equal("warning: audit: disconnect id=7002 user=app database=app tenant=acme duration=0.000s "
      .. "transactions=0 create=1 drop=2", host.lines[2])
  end)

  it("does not look at statements unless asked", function()
    local gen = audit()
    assert.is_false(gen.has.on_query)
    local g2 = audit("{ count_transactions = false }")
    assert.is_false(g2.has.on_transaction_begin)
  end)

  it("keeps its counts across a reload and copes with clients from before it was loaded", function()
    local gen, host = audit()
    local c = T.client { id = 7003 }
    gen:on_connect(c)
    gen:on_transaction_begin(c, T.query("SELECT 1"))
    local gen2 = T.reload(gen)
    gen2:on_transaction_begin(c, T.query("SELECT 1"))
    gen2:on_disconnect(c)
    assert.matches("transactions=2$", host.lines[#host.lines])
    local late = T.client { id = 7004 }
    gen2:on_disconnect(late)
    assert.matches("duration=unknown transactions=0$", host.lines[#host.lines])
  end)

  it("refuses bad configuration", function()
    for src, want in pairs({
      ["{ level = 'loud' }"] = "level must be",
      ["{ count_kinds = { 1 } }"] = "count_kinds%[1%] must be a statement kind",
      ["{ verbose = true }"] = "unknown option 'verbose'",
    }) do
      local ok, err = pcall(audit, src)
      assert.is_false(ok, src)
      assert.matches(want, err, src)
    end
  end)
end)

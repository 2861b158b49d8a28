-- Specs for moonbouncer.testing: fake clients, statements and host, and loading through it.

local H = require "spec.helpers"
local T = require "moonbouncer.testing"
local P = H.policy

describe("T.client", function()
  it("makes clients with unique ids and sensible defaults", function()
    local a, b = T.client(), T.client { user = "alice", database = "shop", application_name = "psql" }
    assert.are_not.equal(a.id, b.id)
    assert.are.equal("app", a.user)
    assert.are.equal("session", a.pool_mode)
    assert.is_false(a.in_transaction)
    assert.is_false(a.tls)
    assert.are.same({ user = "alice", database = "shop", application_name = "psql" }, b.params)
    assert.is_nil(a.tenant)
  end)

  it("takes any field, including params and id", function()
    local c = T.client { id = 900, params = { TimeZone = "UTC" }, tls = true, pool_mode = "transaction" }
    assert.are.equal(900, c.id)
    assert.are.same({ TimeZone = "UTC" }, c.params)
    assert.is_true(c.tls)
    assert.are.equal("transaction", c.pool_mode)
  end)
end)

describe("T.query", function()
  it("computes kind and kinds like the core's scan", function()
    local q = T.query("BEGIN; SELECT pg_advisory_lock(1); SET x = 1")
    assert.are.equal("begin", q.kind)
    assert.are.same({ "begin", "select", "set", "advisory_lock" }, q.kinds)
    assert.are.equal("simple", q.protocol)
    assert.is_false(q.truncated)
  end)

  it("takes protocol and statement name", function()
    local q = T.query("SELECT $1", { protocol = "extended", name = "s7" })
    assert.are.equal("extended", q.protocol)
    assert.are.equal("s7", q.name)
  end)

  it("truncates like the core with max_length", function()
    local q = T.query("SELECT 'long text'", { max_length = 10 })
    assert.are.equal("SELECT 'lo", q.sql)
    assert.is_true(q.truncated)
    local short = T.query("SELECT 1", { max_length = 10 })
    assert.is_false(short.truncated)
  end)
end)

describe("T.host", function()
  it("collects log lines and checks levels", function()
    local h = T.host()
    h.log("info", "hello")
    h.log("plain message")
    h.log("warning", "careful")
    assert.are.same({ "info: hello", "info: plain message", "warning: careful" }, h.lines)
    assert.are.equal("warning: careful", h.logged("care"))
    assert.is_nil(h.logged("absent"))
    assert.has_error(function()
      h.log("loud", "x")
    end)
    assert.has_error(function()
      h.log("info", nil) -- as the core's log: two arguments mean level and message
    end)
    h.clear_log()
    assert.are.same({}, h.lines)
  end)

  it("has a controllable clock", function()
    local h = T.host { now = 50 }
    assert.are.equal(50, h.now())
    h.advance(2.5)
    assert.are.equal(52.5, h.now())
    h.set_now(7)
    assert.are.equal(7, h.now())
  end)

  it("lists databases as copies", function()
    local h = T.host { databases = { app = { dbname = "app" } } }
    local dbs = h.databases()
    dbs.app.dbname = "changed"
    assert.are.equal("app", h.databases().app.dbname)
    h.set_databases({ replica = {} })
    assert.are.same({ replica = {} }, h.databases())
  end)

  it("keeps counters with a TTL that starts when the key is created", function()
    local h = T.host { now = 0 }
    assert.are.equal(0, h.counter_get("k"))
    assert.are.equal(1, h.counter_incr("k", 1, 10))
    h.advance(5)
    assert.are.equal(3, h.counter_incr("k", 2, 10)) -- the expiry stays at 10
    h.advance(5)
    assert.are.equal(0, h.counter_get("k"))
    assert.are.equal(1, h.counter_incr("k"))
    h.advance(1000)
    assert.are.equal(1, h.counter_get("k")) -- no ttl: no expiry
    h.counter_set("s", 9, 1)
    assert.are.equal(9, h.counter_get("s"))
    h.advance(1)
    assert.are.equal(0, h.counter_get("s"))
    h.counter_set("d", 4)
    h.counter_delete("d")
    assert.are.equal(0, h.counter_get("d"))
    assert.has_error(function()
      h.counter_incr("", 1)
    end)
  end)
end)

describe("T.load", function()
  after_each(H.cleanup)

  it("loads with the dispatcher and a fresh fake host", function()
    local gen = H.load({ P("a.lua", "local mb = require 'moonbouncer'\nmb.log('debug', 'loading')\nreturn {}") })
    assert.are.same({ "debug: loading" }, gen.host.lines)
    assert.are.same({}, gen.ctx_store)
  end)

  it("raises with the load error so a spec fails loudly", function()
    local ok, err = pcall(T.load, { P("bad.lua", "return {") })
    assert.is_false(ok)
    assert.matches("bad%.lua:1:", err)
    assert.matches("bad%.lua:1:", T.load_error({ P("bad.lua", "return {") }))
    assert.is_nil(T.load_error({ P("good.lua", "return {}") }))
  end)

  it("reloads with the same host and ctx store", function()
    local dir = H.tmpdir()
    local path = H.write(dir, "p.lua", "return { on_query = function(c) c.ctx.v = 1 end }")
    local gen = T.load(path)
    local c = T.client()
    gen:on_query(c, T.query("SELECT 1"))
    H.write(dir, "p.lua", "return { on_query = function(c) c.ctx.v = c.ctx.v + 1 end }")
    local gen2 = T.reload(gen)
    assert.are.equal(gen.host, gen2.host)
    gen2:on_query(c, T.query("SELECT 1"))
    assert.are.same({ v = 2 }, T.ctx(gen2, c, "p.lua"))
  end)

  it("connect applies the decision to the fake client and disconnect forgets its ctx", function()
    local gen = H.load({ P("c.lua", [[
      return {
        on_connect = function(c) c.ctx.seen = true
          return { route = 'r1', user = 'srv', tenant = 'acme', pool_mode = 'transaction' } end,
        on_disconnect = function(c) end,
      }]]) })
    local c = T.client()
    local d, err = T.connect(gen, c)
    assert.is_nil(err)
    assert.are.equal("r1", d.route)
    assert.are.same({ "r1", "srv", "acme", "transaction" }, { c.route, c.server_user, c.tenant, c.pool_mode })
    assert.are.same({ seen = true }, T.ctx(gen, c, "c.lua"))
    assert.is_nil(T.disconnect(gen, c))
    assert.is_nil(T.ctx(gen, c, "c.lua"))
  end)
end)

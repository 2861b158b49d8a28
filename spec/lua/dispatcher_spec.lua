-- Specs for moonbouncer.dispatcher: loading, merge rules, errors, sandbox and ctx.

local H = require "spec.helpers"
local D = require "moonbouncer.dispatcher"
local T = H.T
local P = H.policy

local function load(entries, opts)
  return H.load(entries, opts)
end

local function load_err(entries, opts)
  opts = opts or {}
  opts.searcher_paths = opts.searcher_paths or H.SEARCHER
  return T.load_error(entries, opts)
end

describe("dispatcher loading", function()
  after_each(H.cleanup)

  it("loads files in order and reports hooks, kinds and names", function()
    local dir = H.tmpdir()
    local a = H.write(dir, "10-a.lua", [[
      return { query_kinds = { "set", "RESET" }, on_query = function() end, on_connect = function() end }
    ]])
    local b = H.write(dir, "20-b.lua", [[
      return { limits = function() end, on_disconnect = function() end }
    ]])
    local gen = T.load({ a, b })
    assert.are.same({ { path = a, name = "10-a.lua" }, { path = b, name = "20-b.lua" } }, gen.files)
    assert.are.same({ on_connect = true, on_query = true, on_transaction_begin = false, on_disconnect = true,
      limits = true }, gen.has)
    assert.are.same({ set = true, reset = true }, gen.kinds)
    assert.is_false(gen.all_kinds)
  end)

  it("sets all_kinds when an on_query has no query_kinds", function()
    local gen = load({ P("a.lua", "return { on_query = function() end }") })
    assert.is_true(gen.all_kinds)
    assert.are.same({}, gen.kinds)
  end)

  it("accepts a single path string", function()
    local dir = H.tmpdir()
    local a = H.write(dir, "only.lua", "return {}")
    local gen = assert(D.load(a, { host = T.host(), ctx_store = {} }))
    assert.are.equal(1, #gen.files)
    assert.are.equal("only.lua", gen.files[1].name)
  end)

  it("names a second file with the same base name by its path", function()
    local dir = H.tmpdir()
    local a = H.write(dir, "x/p.lua", "return {}")
    local b = H.write(dir, "y/p.lua", "return {}")
    local gen = T.load({ a, b })
    assert.are.equal("p.lua", gen.files[1].name)
    assert.are.equal(b, gen.files[2].name)
  end)

  it("reports a syntax error as file:line", function()
    local err = load_err({ P("bad.lua", "local x = 1\nreturn {\n  on_connect = function( end\n}") })
    assert.matches("^bad%.lua:3: ", err)
  end)

  it("reports a runtime error of the main chunk as file:line", function()
    local err = load_err({ P("boom.lua", "local t = nil\n\nreturn t.x") })
    assert.matches("^boom%.lua:3: attempt to index", err)
  end)

  it("reports a factory's configuration error with the policy's file (and line when not a tail call)", function()
    local err = load_err({ P("cfg.lua", "\nreturn require('policies.transaction_guard') { nonsense = true }") })
    assert.are.equal("cfg.lua: transaction_guard: unknown option 'nonsense'", err)
    err = load_err({ P("cfg.lua", "\nlocal P = require('policies.transaction_guard') { nonsense = true }\nreturn P") })
    assert.are.equal("cfg.lua:2: transaction_guard: unknown option 'nonsense'", err)
  end)

  it("rejects a file that does not return a table", function()
    assert.are.equal("n.lua: a policy must return a table of hooks, got nil", load_err({ P("n.lua", "local x = 1") }))
    assert.matches("got \"hi\"", load_err({ P("s.lua", "return 'hi'") }))
  end)

  it("rejects unknown fields and non-function hooks", function()
    assert.matches("^t%.lua: unknown field 'on_conect'", load_err({ P("t.lua", "return { on_conect = function() end }") }))
    assert.matches("^t%.lua: on_query must be a function, got", load_err({ P("t.lua", "return { on_query = 1 }") }))
    assert.matches("query_kinds must be a non%-empty array",
      load_err({ P("t.lua", "return { query_kinds = {}, on_query = function() end }") }))
    assert.matches("query_kinds%[2%] must be a statement kind",
      load_err({ P("t.lua", "return { query_kinds = { 'set', 3 }, on_query = function() end }") }))
  end)

  it("reports a missing file", function()
    local err = load_err({ "/nonexistent/dir/p.lua" })
    assert.matches("^/nonexistent/dir/p%.lua: cannot read policy file", err)
  end)

  it("refuses precompiled bytecode", function()
    local bc = string.dump(function() return {} end)
    local err = load_err({ P("bc.lua", bc) })
    assert.are.equal("bc.lua: precompiled bytecode is not accepted", err)
  end)

  it("stops at the first failing file", function()
    local gen, err = D.load({ P("ok.lua", "return {}"), P("bad.lua", "error('nope')"), P("never.lua", "return {}") },
      { host = T.host(), ctx_store = {} })
    assert.is_nil(gen)
    assert.are.equal("bad.lua:1: nope", err)
  end)

  it("puts the full path back into errors of long file names", function()
    local dir = H.tmpdir()
    local path = H.write(dir, string.rep("long-directory-name/", 4) .. "policy.lua", "\n\nerror('deep')")
    assert.is_true(#path > 80)
    assert.are.equal(path .. ":3: deep", load_err({ path }))
  end)

  it("falls back to package.loaded.moonbouncer for the host module", function()
    local host = T.host()
    local saved = package.loaded.moonbouncer
    package.loaded.moonbouncer = host
    local gen, err = D.load({ P("h.lua", "local mb = require 'moonbouncer'; mb.log('info', 'loaded'); return {}") },
      { ctx_store = {} })
    package.loaded.moonbouncer = saved
    assert.is_nil(err)
    assert.is_table(gen)
    assert.are.same({ "info: loaded" }, host.lines)
  end)

  it("fails to load a policy that requires moonbouncer when there is no host", function()
    local saved = package.loaded.moonbouncer
    package.loaded.moonbouncer = nil
    local gen, err = D.load({ P("h.lua", "local mb = require 'moonbouncer'\nreturn {}") }, { ctx_store = {} })
    package.loaded.moonbouncer = saved
    assert.is_nil(gen)
    assert.are.equal("h.lua:1: module 'moonbouncer' is not available: no host module was given", err)
  end)
end)

describe("policies.* modules", function()
  after_each(H.cleanup)

  it("are found through searcher_paths and loaded fresh for every load", function()
    local dir = H.tmpdir()
    H.write(dir, "policies/counter.lua", "local n = 0\nreturn function() n = n + 1; return n end")
    local src = "local next_n = require 'policies.counter'\nlocal v = next_n() + next_n()\n"
      .. "return { limits = function() return { max_active = v } end }"
    local opts = { searcher_paths = { dir .. "/?.lua" } }
    local g1 = T.load({ P("a.lua", src) }, opts)
    local g2 = T.load({ P("a.lua", src) }, opts)
    assert.are.same({ max_active = 3 }, g1:limits("x")) -- 1 + 2
    assert.are.same({ max_active = 3 }, g2:limits("x")) -- fresh module state, not 3 + 4
    -- an edited module is picked up by the next load
    H.write(dir, "policies/counter.lua", "return function() return 10 end")
    local g3 = T.load({ P("a.lua", src) }, opts)
    assert.are.same({ max_active = 20 }, g3:limits("x"))
  end)

  it("are shared between the files of one load", function()
    local dir = H.tmpdir()
    H.write(dir, "policies/shared.lua", "return { n = 0 }")
    local src = "local s = require 'policies.shared'; s.n = s.n + 1; local mine = s.n\n"
      .. "return { limits = function() return { max_clients = mine } end }"
    local gen = T.load({ P("a.lua", src), P("b.lua", src) }, { searcher_paths = { dir .. "/?.lua" } })
    assert.are.same({ max_clients = 2 }, gen:limits("t")) -- b saw the same module table
  end)

  it("report a missing module at the requiring line", function()
    local err = load_err({ P("a.lua", "\nlocal m = require 'policies.does_not_exist'\nreturn {}") })
    assert.matches("^a%.lua:2: module 'policies.does_not_exist' not found:", err)
    assert.matches("no file '%./policies/does_not_exist%.lua'", err)
  end)

  it("refuse names outside moonbouncer, moonbouncer.classify and policies.*", function()
    for _, name in ipairs({ "io", "ffi", "os", "debug", "jit", "string", "moonbouncer.dispatcher", "policies",
      "policies..x", "../etc/passwd", "spec.helpers" }) do
      local err = load_err({ P("a.lua", ("return require(%q)"):format(name)) })
      assert.matches("not available to policies", err, name)
    end
  end)

  it("run in the sandbox too", function()
    local dir = H.tmpdir()
    H.write(dir, "policies/peek.lua", "return { io = io, debug = debug, os_exit = os.exit, t = os.time }")
    local gen = T.load({ P("a.lua", [[
      local peek = require 'policies.peek'
      return { limits = function() return { max_active = (peek.io == nil and peek.debug == nil
        and peek.os_exit == nil and peek.t ~= nil) and 1 or 0 } end }
    ]]) }, { searcher_paths = { dir .. "/?.lua" } })
    assert.are.same({ max_active = 1 }, gen:limits("x"))
  end)

  it("detect a require loop", function()
    local dir = H.tmpdir()
    H.write(dir, "policies/a.lua", "return require 'policies.b'")
    H.write(dir, "policies/b.lua", "return require 'policies.a'")
    local err = load_err({ P("p.lua", "return require 'policies.a'") }, { searcher_paths = { dir .. "/?.lua" } })
    assert.matches("requires itself", err)
  end)

  it("give moonbouncer.classify to policies", function()
    local gen = load({ P("c.lua", [[
      local c = require 'moonbouncer.classify'
      return { limits = function() return { max_active = #c.statements("SELECT 1; SELECT 2") } end }
    ]]) })
    assert.are.same({ max_active = 2 }, gen:limits("x"))
  end)
end)

describe("merge rules", function()
  it("on_connect: later files override route/user/tenant/pool_mode", function()
    local gen = load({
      P("10.lua", "return { on_connect = function() return { route = 'a', user = 'u1', tenant = 't1' } end }"),
      P("20.lua", "return { on_connect = function() return { route = 'b', pool_mode = 'session' } end }"),
      P("30.lua", "return { on_connect = function() return nil end }"),
      P("40.lua", "return { on_connect = function() return { tenant = 't2' } end }"),
    })
    local d, err = gen:on_connect(T.client())
    assert.is_nil(err)
    assert.are.same({ route = 'b', user = 'u1', tenant = 't2', pool_mode = 'session' }, d)
  end)

  it("on_connect: later policies see the tenant and pool mode decided so far, not the server user", function()
    local gen, host = load({
      P("10.lua", "return { on_connect = function() return { tenant = 'acme', pool_mode = 'transaction', "
        .. "user = 'srv' } end }"),
      P("20.lua", "local mb = require 'moonbouncer'\nreturn { on_connect = function(c) mb.log('info', "
        .. "c.tenant .. ' ' .. c.pool_mode .. ' ' .. c.user) end }"),
    })
    gen:on_connect(T.client { user = "alice", pool_mode = "session" })
    assert.are.same({ "info: acme transaction alice" }, host.lines)
  end)

  it("returns nil when nobody decides anything", function()
    local gen = load({ P("a.lua", "return { on_connect = function() end }") })
    local d, err = gen:on_connect(T.client())
    assert.is_nil(d)
    assert.is_nil(err)
  end)

  it("first reject wins and later policies are not called", function()
    local gen, host = load({
      P("10.lua", "return { on_connect = function() return { route = 'a' } end }"),
      P("20.lua", "return { on_connect = function() return { reject = 'go away', sqlstate = '28000' } end }"),
      P("30.lua", "local mb = require 'moonbouncer'\n"
        .. "return { on_connect = function() mb.log('info', 'called'); return { reject = 'second' } end }"),
    })
    local d = gen:on_connect(T.client())
    assert.are.same({ reject = "go away", sqlstate = "28000" }, d)
    assert.are.same({}, host.lines)
  end)

  it("on_query: rewrites compose in order and later policies see the new text", function()
    local gen, host = load({
      P("10.lua", [[return { on_query = function(c, q) return { rewrite = q.sql .. ' AS one' } end }]]),
      P("20.lua", [[
        local mb = require 'moonbouncer'
        return { on_query = function(c, q)
          mb.log('info', q.sql .. '|' .. q.kind .. '|' .. #q.statements)
          return { rewrite = '/* 20 */ ' .. q.sql }
        end }]]),
    })
    local d, err = gen:on_query(T.client(), T.query("SELECT 1"))
    assert.is_nil(err)
    assert.are.same({ rewrite = "/* 20 */ SELECT 1 AS one" }, d)
    assert.are.same({ "info: SELECT 1 AS one|select|1" }, host.lines)
  end)

  it("on_query: after a rewrite, kinds come from the new text for filtering and for q", function()
    local gen, host = load({
      P("10.lua", [[return { query_kinds = { 'select' },
        on_query = function(c, q) return { rewrite = 'SET x.y = 1; ' .. q.sql } end }]]),
      P("20.lua", [[local mb = require 'moonbouncer'
        return { query_kinds = { 'set' }, on_query = function(c, q)
          mb.log('info', q.kind .. ' ' .. table.concat(q.kinds, ','))
        end }]]),
    })
    gen:on_query(T.client(), T.query("SELECT 1"))
    assert.are.same({ "info: set set,select" }, host.lines)
  end)

  it("on_query: track lists concatenate", function()
    local gen = load({
      P("10.lua", "return { on_query = function() return { track = { { name = 'a', value = '1' } } } end }"),
      P("20.lua", "return { on_query = function() return { track = { { reset = 'b' }, { reset = true } } } end }"),
      P("30.lua", "return { on_query = function() return { track = { { name = 'n', value = 42 } } } end }"),
    })
    local d = gen:on_query(T.client(), T.query("SET a = 1"))
    assert.are.same({ track = { { name = "a", value = "1" }, { reset = "b" }, { reset = true },
      { name = "n", value = "42" } } }, d)
  end)

  it("on_query: a reject after a rewrite drops the rewrite", function()
    local gen = load({
      P("10.lua", "return { on_query = function(c, q) return { rewrite = 'SELECT 2' } end }"),
      P("20.lua", "return { on_query = function(c, q) if q.sql == 'SELECT 2' then return { reject = 'no 2' } end end }"),
    })
    assert.are.same({ reject = "no 2" }, gen:on_query(T.client(), T.query("SELECT 1")))
  end)

  it("on_query: only policies whose query_kinds match are called", function()
    local gen, host = load({
      P("set.lua", "local mb = require 'moonbouncer'\n"
        .. "return { query_kinds = { 'set' }, on_query = function(c, q) mb.log('info', 'set:' .. q.sql) end }"),
      P("lock.lua", "local mb = require 'moonbouncer'\n"
        .. "return { query_kinds = { 'advisory_lock' }, on_query = function(c, q) mb.log('info', 'lock:' .. q.sql) end }"),
    })
    gen:on_query(T.client(), T.query("SELECT 1"))
    gen:on_query(T.client(), T.query("SELECT 1; SET a = 1"))
    gen:on_query(T.client(), T.query("SELECT pg_advisory_lock(1)"))
    assert.are.same({ "info: set:SELECT 1; SET a = 1", "info: lock:SELECT pg_advisory_lock(1)" }, host.lines)
  end)

  it("on_query: uses q.kind when the core gives no kinds array", function()
    local gen = load({ P("a.lua", "return { query_kinds = { 'listen' }, on_query = function() return { reject = 'x' } end }") })
    assert.are.same({ reject = "x" }, gen:on_query(T.client(), { kind = "listen", sql = "LISTEN a" }))
    assert.is_nil(gen:on_query(T.client(), { kind = "select", sql = "SELECT 1" }))
  end)

  it("on_transaction_begin: route merges with later files overriding", function()
    local gen = load({
      P("10.lua", "return { on_transaction_begin = function() return { route = 'replica' } end }"),
      P("20.lua", "return { on_transaction_begin = function() return { route = 'other' } end }"),
      P("30.lua", "return { on_transaction_begin = function() end }"),
    })
    assert.are.same({ route = "other" }, gen:on_transaction_begin(T.client(), T.query("SELECT 1")))
  end)

  it("on_transaction_begin: first reject wins", function()
    local gen = load({
      P("10.lua", "return { on_transaction_begin = function() return { reject = 'busy' } end }"),
      P("20.lua", "return { on_transaction_begin = function() return { route = 'other' } end }"),
    })
    assert.are.same({ reject = "busy" }, gen:on_transaction_begin(T.client(), T.query("SELECT 1")))
  end)

  it("limits: fields merge with later files overriding", function()
    local gen = load({
      P("10.lua", "return { limits = function(t) return { max_active = 5, max_clients = 100 } end }"),
      P("20.lua", "return { limits = function(t) if t == 'acme' then return { max_active = 9, rate = 2.5 } end end }"),
    })
    assert.are.same({ max_active = 9, max_clients = 100, rate = 2.5 }, gen:limits("acme"))
    assert.are.same({ max_active = 5, max_clients = 100 }, gen:limits("other"))
  end)

  it("limits: nil when no policy has limits for the tenant", function()
    local gen = load({ P("10.lua", "return { limits = function() end }") })
    local l, err = gen:limits("x")
    assert.is_nil(l)
    assert.is_nil(err)
  end)
end)

describe("the decision schema", function()
  it("names, for each hook, the fields the policy API documents", function()
    local by_hook = {}
    for field, spec in pairs(D.DECISION_SCHEMA) do
      assert.is_function(spec.check, field)
      for _, hook in ipairs(spec.hooks) do
        by_hook[hook] = by_hook[hook] or {}
        by_hook[hook][#by_hook[hook] + 1] = field
      end
    end
    for _, list in pairs(by_hook) do
      table.sort(list)
    end
    assert.are.same({
      on_connect = { "pool_mode", "reject", "route", "sqlstate", "tenant", "user" },
      on_query = { "reject", "rewrite", "sqlstate", "track" },
      on_transaction_begin = { "reject", "route", "sqlstate" },
    }, by_hook)
    assert.are.same({ max_clients = "integer", max_active = "integer", rate = "number" }, D.LIMIT_FIELDS)
  end)

  it("is what check_decision applies", function()
    assert.is_nil(D.check_decision({ reject = "no", sqlstate = "42501" }, "on_connect"))
    assert.matches("field 'tenant' is not allowed in on_query", D.check_decision({ tenant = "t" }, "on_query"))
    assert.is_nil(D.check_decision({ track = { { name = "search_path", value = 1 } } }, "on_query"))
    assert.matches("must be a parameter name", D.check_decision({ track = { { reset = "a-b" } } }, "on_query"))
  end)
end)

describe("malformed decisions", function()
  local cases = {
    on_connect = {
      { "{ rejct = 'x' }", "unknown field 'rejct'" },
      { "{ reject = 1 }", "reject must be a non%-empty string" },
      { "{ reject = '' }", "reject must be a non%-empty string" },
      { "{ reject = 'x', sqlstate = '123' }", "sqlstate must be 5 characters" },
      { "{ reject = 'x', sqlstate = '4250x' }", "sqlstate must be 5 characters" },
      { "{ sqlstate = '42501' }", "sqlstate given without reject" },
      { "{ route = '' }", "route must be a non%-empty string" },
      { "{ route = 5 }", "route must be a non%-empty string" },
      { "{ user = {} }", "user must be a non%-empty string" },
      { "{ tenant = false }", "tenant must be a non%-empty string" },
      { "{ pool_mode = 'weird' }", "pool_mode must be one of session, transaction, statement" },
      { "{ rewrite = 'SELECT 1' }", "field 'rewrite' is not allowed in on_connect" },
      { "{ track = {} }", "field 'track' is not allowed in on_connect" },
      { "'reject'", "a decision must be a table or nil, got \"reject\"" },
      { "true", "a decision must be a table or nil, got boolean" },
      { "{ [1] = 'x' }", "unexpected key of type number" },
      { "{ reject = 'a\\0b' }", "reject must not contain a zero byte" },
      { "{ route = 'a\\0' }", "route must not contain a zero byte" },
      { "{ user = '\\0' }", "user must not contain a zero byte" },
      { "{ tenant = 't\\0' }", "tenant must not contain a zero byte" },
    },
    on_query = {
      { "{ route = 'x' }", "field 'route' is not allowed in on_query" },
      { "{ track = 'x' }", "track must be an array of entries" },
      { "{ track = { { name = 'x' } } }", "track%[1%]: value must be a string" },
      { "{ track = { { name = '', value = '1' } } }", "track%[1%]: name must be a non%-empty string" },
      { "{ track = { { reset = false } } }", "track%[1%]: reset must be a parameter name or true" },
      { "{ track = { { reset = 'a', name = 'b' } } }", "reset cannot be combined" },
      { "{ track = { { name = 'a', value = 'b', extra = 1 } } }", "track%[1%]: unknown field \"extra\"" },
      { "{ track = { { name = 'a', value = 'b' }, 'x' } }", "track%[2%] must be a table" },
      { "{ track = { [1] = { reset = true }, [3] = { reset = true } } }", "track must be an array" },
      { "{ rewrite = '' }", "rewrite must be a non%-empty string" },
      { "{ rewrite = 42 }", "rewrite must be a non%-empty string" },
      { "{ rewrite = 'SELECT 1\\0' }", "rewrite must not contain a zero byte" },
      { "{ track = { { name = 'a-b', value = '1' } } }",
        "track%[1%]: name must be a parameter name %(letters, digits, '_' and '%.'%), got \"a%-b\"" },
      { "{ track = { { name = 'x;y', value = '1' } } }", "track%[1%]: name must be a parameter name" },
      { "{ track = { { reset = 'a b' } } }", "track%[1%]: reset must be a parameter name" },
      { "{ track = { { name = 'a\\0', value = '1' } } }", "track%[1%]: name must not contain a zero byte" },
      { "{ track = { { name = 'a', value = 'x\\0y' } } }", "track%[1%]: value must not contain a zero byte" },
      { "{ pool_mode = 'session' }", "field 'pool_mode' is not allowed in on_query" },
    },
    on_transaction_begin = {
      { "{ tenant = 't' }", "field 'tenant' is not allowed in on_transaction_begin" },
      { "{ rewrite = 'x' }", "field 'rewrite' is not allowed in on_transaction_begin" },
      { "{ route = {} }", "route must be a non%-empty string" },
    },
  }
  for hook, list in pairs(cases) do
    for _, case in ipairs(list) do
      it(hook .. " returning " .. case[1], function()
        local gen = load({ P("bad.lua", ("return { %s = function() return %s end }"):format(hook, case[1])) })
        local d, err
        if hook == "on_connect" then
          d, err = gen:on_connect(T.client())
        else
          d, err = gen[hook](gen, T.client(), T.query("SELECT 1"))
        end
        assert.is_nil(d)
        assert.is_string(err)
        assert.matches("^bad%.lua: " .. hook .. " returned an invalid decision: ", err)
        assert.matches(case[2], err)
      end)
    end
  end

  it("a rewrite of a truncated statement is an error", function()
    local gen = load({ P("rw.lua", "return { on_query = function() return { rewrite = 'SELECT 1' } end }") })
    local d, err = gen:on_query(T.client(), T.query("SELECT 123456789", { max_length = 8 }))
    assert.is_nil(d)
    assert.matches("^rw%.lua: on_query returned an invalid decision: rewrite is not allowed for a truncated", err)
  end)

  it("a malformed limits value is an error naming the file", function()
    for src, want in pairs({
      ["{ max_active = -1 }"] = "max_active must be a non%-negative number",
      ["{ max_clients = 1.5 }"] = "max_clients must be an integer",
      ["{ rate = 'fast' }"] = "rate must be a non%-negative number",
      ["{ burst = 3 }"] = "unknown field \"burst\"",
      ["7"] = "limits must return a table or nil",
    }) do
      local gen = load({ P("lim.lua", "return { limits = function() return " .. src .. " end }") })
      local l, err = gen:limits("t")
      assert.is_nil(l)
      assert.matches("^lim%.lua: limits returned an invalid value: ", err)
      assert.matches(want, err)
    end
  end)

  it("a bad decision does not hide the others' decisions", function()
    local gen = load({
      P("10.lua", "return { on_connect = function() return { route = 'a' } end }"),
      P("20.lua", "return { on_connect = function() return { rout = 'b' } end }"),
      P("30.lua", "return { on_connect = function() return { tenant = 't' } end }"),
    })
    local d, err = gen:on_connect(T.client())
    assert.are.same({ route = "a", tenant = "t" }, d)
    assert.are.equal("20.lua: on_connect returned an invalid decision: unknown field 'rout'", err)
  end)

  it("a decision with a metatable is read raw, without running its metamethods", function()
    local gen, host = load({ P("mt.lua", [[
      local mb = require 'moonbouncer'
      return { on_connect = function()
        return setmetatable({ route = 'r' }, { __index = function(t, k) mb.log('info', 'index ' .. k) return 'x' end })
      end }]]) })
    assert.are.same({ route = "r" }, gen:on_connect(T.client()))
    assert.are.same({}, host.lines)
  end)
end)

describe("hook errors", function()
  it("come back as file:line: message and never raise", function()
    local gen = load({ P("throw.lua", "return {\n  on_connect = function(c)\n    error('broken policy')\n  end\n}") })
    local d, err = gen:on_connect(T.client())
    assert.is_nil(d)
    assert.are.equal("throw.lua:3: broken policy", err)
  end)

  it("use the policy's line for errors without a position", function()
    local gen = load({ P("lvl0.lua", "return {\n  on_query = function(c, q)\n\n    error('no position', 0)\n  end\n}") })
    local _, err = gen:on_query(T.client(), T.query("SELECT 1"))
    assert.are.equal("lvl0.lua:4: no position", err)
  end)

  it("describe non-string error values", function()
    local gen = load({ P("obj.lua", "return {\n  on_disconnect = function(c)\n    error({ code = 1 })\n  end\n}") })
    local d, err = gen:on_disconnect(T.client())
    assert.is_nil(d)
    assert.are.equal("obj.lua:3: error object is a table value", err)
  end)

  it("never call __tostring of an error value", function()
    local gen = load({ P("ts.lua", "return { on_connect = function() error(setmetatable({}, { __tostring = "
      .. "function() error('inner') end })) end }") })
    local _, err = gen:on_connect(T.client())
    assert.are.equal("ts.lua:1: error object is a table value", err)
  end)

  it("name the policy and hook when raised in a module", function()
    local dir = H.tmpdir()
    H.write(dir, "policies/helper.lua", "return { f = function() local x = nil; return x.y end }")
    local gen = T.load({ P("uses.lua", "local h = require 'policies.helper'\nreturn { on_connect = function() h.f() end }") },
      { searcher_paths = { dir .. "/?.lua" } })
    local _, err = gen:on_connect(T.client())
    assert.are.equal("uses.lua: on_connect: " .. dir .. "/policies/helper.lua:1: attempt to index local 'x' (a nil value)", err)
    H.cleanup()
  end)

  it("do not stop the other policies (their decisions come with the error)", function()
    local gen = load({
      P("10.lua", "return { on_query = function() error('first') end }"),
      P("20.lua", "return { on_query = function() return { track = { { reset = 'x' } } } end }"),
      P("30.lua", "return { on_query = function() error('third') end }"),
    })
    local d, err = gen:on_query(T.client(), T.query("RESET x"))
    assert.are.same({ track = { { reset = "x" } } }, d)
    assert.are.equal("10.lua:1: first; 30.lua:1: third", err)
  end)

  it("include writing to the read-only client or q", function()
    local gen = load({
      P("w.lua", "return { on_connect = function(c) c.user = 'root' end }"),
      P("q.lua", "return { on_query = function(c, q) q.sql = 'DROP TABLE t' end }"),
    })
    local _, err = gen:on_connect(T.client())
    assert.are.equal("w.lua:1: client is read-only (keep per-connection data in client.ctx)", err)
    local _, err2 = gen:on_query(T.client(), T.query("SELECT 1"))
    assert.are.equal("q.lua:1: q is read-only", err2)
  end)
end)

describe("sandbox", function()
  local FORBIDDEN = { "io", "debug", "load", "loadstring", "dofile", "loadfile", "package", "collectgarbage",
    "print", "module", "setfenv", "getfenv", "newproxy", "coroutine", "jit", "ffi", "_G", "gcinfo" }
  for _, name in ipairs(FORBIDDEN) do
    it("has no " .. name, function()
      local gen = load({ P("s.lua", ("return { limits = function() return { max_active = %s == nil and 1 or 0 } end }")
        :format(name)) })
      assert.are.same({ max_active = 1 }, gen:limits("t"))
    end)
  end

  local OS_FORBIDDEN = { "exit", "execute", "getenv", "remove", "rename", "tmpname", "setlocale", "difftime" }
  for _, name in ipairs(OS_FORBIDDEN) do
    it("has no os." .. name, function()
      local gen = load({ P("s.lua", ("return { limits = function() return { max_active = os.%s == nil and 1 or 0 } end }")
        :format(name)) })
      assert.are.same({ max_active = 1 }, gen:limits("t"))
    end)
  end

  it("has no string.dump and no way to the shared string metatable", function()
    local gen = load({ P("s.lua", [[
      return { limits = function()
        return { max_active = (string.dump == nil and getmetatable('') == nil) and 1 or 0 }
      end }]]) })
    assert.are.same({ max_active = 1 }, gen:limits("t"))
  end)

  it("has exactly the documented globals", function()
    local gen, host = load({ P("s.lua", "return { on_connect = function() end }") })
    assert.is_table(gen)
    -- the environment table of a loaded file
    local env = getfenv(gen._hooks.on_connect[1].on_connect)
    local names = {}
    for k in pairs(env) do
      names[#names + 1] = k
    end
    table.sort(names)
    local want = {}
    for _, k in ipairs(D.SANDBOX_GLOBALS) do
      if _G[k] ~= nil or k == "require" or k == "os" or k == "string" then
        want[#want + 1] = k
      end
    end
    table.sort(want)
    assert.are.same(want, names)
    assert.are.same({ "clock", "date", "time" }, (function()
      local o = {}
      for k in pairs(env.os) do
        o[#o + 1] = k
      end
      table.sort(o)
      return o
    end)())
    assert.is_nil(host.lines[1])
  end)

  it("gives each file its own copy of the standard tables", function()
    local gen = load({
      P("a.lua", "string.upper = function() return 'evil' end; math.pi = 3; return {}"),
      P("b.lua", "return { limits = function() return { max_active = (string.upper('a') == 'A' and math.pi > 3.14) "
        .. "and 1 or 0 } end }"),
    })
    assert.are.same({ max_active = 1 }, gen:limits("t"))
    assert.are.equal("A", string.upper("a"))
  end)

  it("keeps the host module read-only", function()
    local gen = load({ P("h.lua", "local mb = require 'moonbouncer'\nreturn { on_connect = function() mb.log = nil end }") })
    local _, err = gen:on_connect(T.client())
    assert.are.equal("h.lua:2: the moonbouncer module is read-only", err)
    assert.is_function(gen.host.log)
  end)

  it("lets pcall catch ordinary errors but not budget or memory errors", function()
    local gen = load({ P("p.lua", [[
      return {
        on_query = function(c, q)
          local ok = pcall(error, 'ordinary')
          assert(not ok)
          local ok2 = xpcall(function() error('ordinary') end, function(e) return e end)
          assert(not ok2)
          if q.sql == 'budget' then
            pcall(error, 'moonbouncer: policy budget exceeded (10 ms)')
            return { reject = 'swallowed' }
          elseif q.sql == 'budget-x' then
            xpcall(function() error('policy budget exceeded') end, function(e) return 'handled' end)
            return { reject = 'swallowed' }
          elseif q.sql == 'memory' then
            pcall(error, 'not enough memory', 0)
            return { reject = 'swallowed' }
          end
        end,
      }]]) })
    assert.is_nil((gen:on_query(T.client(), { kind = "x", sql = "fine" })))
    for _, sql in ipairs({ "budget", "budget-x", "memory" }) do
      local d, err = gen:on_query(T.client(), { kind = "x", sql = sql })
      assert.is_nil(d, sql)
      assert.is_string(err)
      assert.matches("^p%.lua: on_query: ", err)
    end
  end)
end)

describe("client.ctx", function()
  local COUNTER = [[
    return {
      on_query = function(c, q) c.ctx.n = (c.ctx.n or 0) + 1 end,
      limits = function() end,
    }]]

  it("is separate for each policy file and each client", function()
    local gen = load({ P("a.lua", COUNTER), P("b.lua", [[
      return { on_query = function(c, q) c.ctx.n = (c.ctx.n or 0) + 10 end }]]) })
    local c1, c2 = T.client(), T.client()
    gen:on_query(c1, T.query("SELECT 1"))
    gen:on_query(c1, T.query("SELECT 1"))
    gen:on_query(c2, T.query("SELECT 1"))
    assert.are.same({ n = 2 }, T.ctx(gen, c1, "a.lua"))
    assert.are.same({ n = 20 }, T.ctx(gen, c1, "b.lua"))
    assert.are.same({ n = 1 }, T.ctx(gen, c2, "a.lua"))
  end)

  it("is not kept when it was only read", function()
    local gen = load({ P("r.lua", "return { on_connect = function(c) local x = c.ctx.x; local y = c.ctx end }") })
    local c = T.client()
    gen:on_connect(c)
    assert.is_nil(gen.ctx_store[c.id])
  end)

  it("can be replaced or cleared by assignment", function()
    local gen = load({ P("s.lua", [[
      return {
        on_connect = function(c) c.ctx = { started = true } end,
        on_disconnect = function(c) c.ctx = nil end,
      }]]) })
    local c = T.client()
    gen:on_connect(c)
    assert.are.same({ started = true }, T.ctx(gen, c, "s.lua"))
    gen:on_disconnect(c)
    assert.is_nil(T.ctx(gen, c, "s.lua"))
  end)

  it("survives a reload with the same store and is dropped by forget", function()
    local store = {}
    local gen1 = assert(D.load({ P("a.lua", COUNTER) }, { host = T.host(), ctx_store = store }))
    local c = T.client()
    gen1:on_query(c, T.query("SELECT 1"))
    local gen2 = assert(D.load({ P("a.lua", COUNTER) }, { host = T.host(), ctx_store = store }))
    gen2:on_query(c, T.query("SELECT 1"))
    assert.are.same({ n = 2 }, store[c.id]["a.lua"])
    D.forget(c.id, store)
    assert.is_nil(store[c.id])
    gen2:on_query(c, T.query("SELECT 1"))
    assert.are.same({ n = 1 }, store[c.id]["a.lua"])
  end)

  it("uses the module's default store when none is given", function()
    local gen = assert(D.load({ P("dflt.lua", COUNTER) }, { host = T.host() }))
    local c = T.client()
    gen:on_query(c, T.query("SELECT 1"))
    assert.are.equal(D.ctx_store(), gen.ctx_store)
    assert.are.same({ n = 1 }, D.ctx_store()[c.id]["dflt.lua"])
    D.forget(c.id)
    assert.is_nil(D.ctx_store()[c.id])
  end)

  it("does not copy the client's fields (the view reads through)", function()
    local gen, host = load({ P("v.lua", [[
      local mb = require 'moonbouncer'
      return { on_query = function(c) mb.log('info', tostring(c.in_transaction) .. ' ' .. c.user) end }]]) })
    local c = T.client { user = "bob" }
    gen:on_query(c, T.query("SELECT 1"))
    c.in_transaction = true
    gen:on_query(c, T.query("SELECT 1"))
    assert.are.same({ "info: false bob", "info: true bob" }, host.lines)
  end)
end)

describe("generation calls", function()
  it("never raise on missing arguments", function()
    local gen = load({ P("a.lua", "return { on_query = function() end, on_transaction_begin = function() end, "
      .. "on_connect = function(c) return { route = c.user } end }") })
    local d, err = gen:on_query(T.client(), nil)
    assert.is_nil(d)
    assert.are.equal("on_query: no statement given", err)
    d, err = gen:on_transaction_begin(T.client(), nil)
    assert.are.equal("on_transaction_begin: no statement given", err)
    d, err = gen:on_connect(nil)
    assert.is_nil(d)
    assert.are.equal("on_connect: no client given", err)
    assert.are.equal("on_query: no client given", select(2, gen:on_query(nil, T.query("SELECT 1"))))
  end)

  it("refuse bad searcher paths at load", function()
    local gen, err = D.load({}, { searcher_paths = { "/usr/share/moonbouncer/policies" } })
    assert.is_nil(gen)
    assert.are.equal("searcher_paths[1] must be a path template containing '?'", err)
  end)
end)

describe("q", function()
  it("computes statements and read_only lazily and keeps other fields", function()
    local gen, host = load({ P("q.lua", [[
      local mb = require 'moonbouncer'
      return { on_transaction_begin = function(c, q)
        mb.log('info', table.concat({ q.kind, q.protocol, tostring(q.name), tostring(q.read_only),
          tostring(#q.statements), tostring(q.truncated) }, ' '))
      end }]]) })
    gen:on_transaction_begin(T.client(), T.query("SELECT 1; SELECT 2", { protocol = "extended", name = "s1" }))
    gen:on_transaction_begin(T.client(), T.query("UPDATE t SET a = 1"))
    assert.are.same({ "info: select extended s1 true 2 false", "info: update simple nil false 1 false" }, host.lines)
  end)

  it("reads sql from the core's object only when a policy asks for it", function()
    local reads = 0
    local q = setmetatable({ kind = "select", kinds = { "select" }, protocol = "simple", truncated = false }, {
      __index = function(_, k)
        if k == "sql" then
          reads = reads + 1
          return "SELECT 1"
        end
      end,
    })
    local gen = load({
      P("kind.lua", "return { on_query = function(c, q) local k = q.kind end }"),
    })
    gen:on_query(T.client(), q)
    assert.are.equal(0, reads)
    local gen2 = load({ P("sql.lua", "return { on_query = function(c, q) local s = q.statements end }") })
    gen2:on_query(T.client(), q)
    assert.are.equal(1, reads)
  end)
end)

describe("dispatcher load-time checks of kinds and routes", function()
  local DBS = { app = { name = "app" }, app_ro = { name = "app_ro" } }

  it("refuses a query_kinds entry that is no statement kind, with file:line and a suggestion", function()
    local err = load_err({ P("typo.lua", "local P = { on_query = function() end }\n"
      .. "P.query_kinds = { 'select',\n  'lisen' }\nreturn P") })
    assert.matches('^typo%.lua:3: query_kinds%[2%]: "lisen" is not a statement kind %(did you mean "listen"%?%)', err)
  end)

  it("knows every statement kind and the pseudo-kinds, in any case", function()
    local kinds = { "select", "INSERT", "with", "values", "table", "merge", "do", "call", "security", "import",
      "analyse", "reassign", "function", "advisory_lock", "set_config", "select_into", "Listen" }
    assert.is_nil(load_err({ P("k.lua", "return { query_kinds = { '" .. table.concat(kinds, "', '")
      .. "' }, on_query = function() end }") }))
    assert.matches('"selectt" is not a statement kind %(did you mean "select"%?%)',
      load_err({ P("k.lua", "return { query_kinds = { 'selectt' }, on_query = function() end }") }))
    assert.matches('"frobnicate" is not a statement kind %(kinds are',
      load_err({ P("k.lua", "return { query_kinds = { 'frobnicate' }, on_query = function() end }") }))
  end)

  it("refuses a literal route that names no [databases] entry, with file:line", function()
    local host = T.host { databases = DBS }
    local src = "-- route = 'commented' is not looked at\nreturn { on_connect = function(c)\n"
      .. "  if c.user == 'x' then return { route = \"app_ro\" } end\n"
      .. "  return { route = 'nosuch' }\nend }"
    assert.are.equal('r.lua:4: routes to "nosuch", which is not a [databases] entry',
      load_err({ P("r.lua", src) }, { host = host }))
    -- the same file loads when the entry exists, when an auto-database takes any name, or with no entries known
    local dbs = { app = {}, app_ro = {}, nosuch = {} }
    assert.is_nil(load_err({ P("r.lua", src) }, { host = T.host { databases = dbs } }))
    assert.is_nil(load_err({ P("r.lua", src) }, { host = T.host { databases = { app = {}, ["*"] = {} } } }))
    assert.is_nil(load_err({ P("r.lua", src) }, { host = T.host() }))
  end)

  it("checks the routes of route_by_user_db's table, unless check_routes = false", function()
    local host = T.host { databases = DBS }
    local cfg = "return require('policies.route_by_user_db') { users = { etl = { route = 'warehous' } }%s }"
    assert.matches("warehous", load_err({ P("u.lua", cfg:format("")) }, { host = host }))
    assert.is_nil(load_err({ P("u.lua", cfg:format(", check_routes = false")) }, { host = host }))
  end)

  it("fails a hook that routes at run time to an entry that does not exist", function()
    local host = T.host { databases = DBS }
    local gen = load({ P("dyn.lua", "local suffix = '_gone'\nreturn {\n"
      .. "  on_connect = function(c) return { route = c.database .. suffix } end,\n"
      .. "  on_transaction_begin = function(c, q) return { route = c.database .. suffix } end,\n}") },
      { host = host })
    local d, err = gen:on_connect(T.client { database = "app" })
    assert.is_nil(d)
    assert.are.equal('dyn.lua:3: on_connect routed to "app_gone", which is not a [databases] entry', err)
    d, err = gen:on_transaction_begin(T.client { database = "app" }, T.query("SELECT 1"))
    assert.is_nil(d)
    assert.are.equal('dyn.lua:4: on_transaction_begin routed to "app_gone", which is not a [databases] entry', err)
    -- a known entry routes as before
    local ok = load({ P("ok.lua", "return { on_connect = function(c) return { route = c.database .. '_ro' } end }") },
      { host = host })
    assert.are.same({ route = "app_ro" }, (ok:on_connect(T.client { database = "app" })))
  end)
end)

-- Spec of moonbouncer.classify against tests/corpus/statements.tsv, the corpus the core's C scan answers too
-- (tests/unit/test_sqlscan_corpus.c): q.kind, q.kinds and session state must be the same on both sides.

local H = require "spec.helpers"
local classify = require "moonbouncer.classify"

local CORPUS = "tests/corpus/statements.tsv"
local ESCAPES = { n = "\n", t = "\t", ["\\"] = "\\" }

-- \n, \t and \\ as COPY's text format writes them; nil on any other escape.
local function unescape(text)
  local bad = false
  local out = text:gsub("\\(.?)", function(c)
    local r = ESCAPES[c]
    bad = bad or r == nil
    return r or ""
  end)
  if bad then
    return nil
  end
  return out
end

-- Rows { line =, sql =, kinds = {...}, session = bool } and the numbers of malformed lines.
local function read_corpus()
  local f = assert(io.open(CORPUS, "rb"))
  local rows, bad, n = {}, {}, 0
  for text in f:lines() do
    n = n + 1
    if text ~= "" and text:sub(1, 1) ~= "#" then
      local sql, kinds, session = text:match("^([^\t]*)\t([^\t]+)\t([^\t]+)$")
      sql = sql and unescape(sql)
      if not sql or (session ~= "yes" and session ~= "no") then
        bad[#bad + 1] = n
      else
        local list = {}
        if kinds ~= "-" then
          for kind in kinds:gmatch("[^,]+") do
            list[#list + 1] = kind
          end
        end
        rows[#rows + 1] = { line = n, sql = sql, kinds = list, session = session == "yes" }
      end
    end
  end
  f:close()
  return rows, bad
end

local rows, bad = read_corpus()

describe("classify against the shared statement corpus", function()
  it("reads every line as a comment or sql<TAB>kinds<TAB>yes|no", function()
    assert.are.same({}, bad, "malformed lines")
  end)

  it("holds at least 300 statements", function()
    assert.is_true(#rows >= 300, "corpus has " .. #rows .. " rows")
  end)

  for _, row in ipairs(rows) do
    local sql = row.sql
    local label = ("line %d %q"):format(row.line, #sql > 70 and sql:sub(1, 67) .. "..." or sql)
    it(label, function()
      -- q as the testing helper builds it for a policy spec, and the classifier's own answer
      local q = H.T.query(sql)
      assert.are.same(row.kinds, q.kinds, "q.kinds")
      assert.are.equal(row.kinds[1] or "", q.kind, "q.kind")
      assert.are.same(row.kinds, classify.kinds(sql), "classify.kinds")
      local stmts = classify.statements(sql)
      local session = false
      for i = 1, #stmts do
        session = session or classify.changes_session(stmts[i])
      end
      assert.are.equal(row.session, session, "changes session state")
    end)
  end
end)

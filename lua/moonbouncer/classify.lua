-- SQL classifier: splits query text into statements and says what each one does to session state.
--
-- Pure Lua (LuaJIT 2.1 / Lua 5.1), no host services. The lexer follows PostgreSQL's rules for
-- comments (-- and nested /* */), 'strings' ('' escapes, standard_conforming_strings = on),
-- E'' strings (backslash escapes), B''/X''/N''/U&'' strings, "quoted identifiers", U&"..",
-- $$dollar$$ and $tag$ quoting, $1 parameters and operators. Statements are split on ';' outside
-- parentheses and outside a BEGIN ... END body of CREATE FUNCTION/PROCEDURE (as psql does).

local byte, sub, lower, find, char = string.byte, string.sub, string.lower, string.find, string.char
local concat = table.concat
local tonumber, type = tonumber, type

local M = {}

-- Session-level advisory lock functions (the C scan reports them as the pseudo-kind "advisory_lock")
-- and their transaction-level counterparts.
local ADVISORY_SESSION = {
  pg_advisory_lock = "pg_advisory_xact_lock",
  pg_advisory_lock_shared = "pg_advisory_xact_lock_shared",
  pg_try_advisory_lock = "pg_try_advisory_xact_lock",
  pg_try_advisory_lock_shared = "pg_try_advisory_xact_lock_shared",
}
local ADVISORY_XACT = {
  pg_advisory_xact_lock = true,
  pg_advisory_xact_lock_shared = true,
  pg_try_advisory_xact_lock = true,
  pg_try_advisory_xact_lock_shared = true,
}
M.ADVISORY_SESSION = ADVISORY_SESSION
M.ADVISORY_XACT = ADVISORY_XACT

-- Every kind a statement can have: the first keyword of each PostgreSQL command (ANALYSE is
-- ANALYZE's other spelling, SECURITY is SECURITY LABEL, IMPORT is IMPORT FOREIGN SCHEMA), plus the
-- pseudo-kinds the core reports: "function" (a FunctionCall message), "advisory_lock",
-- "set_config" and "select_into". Policies' query_kinds must name one of these.
local KNOWN_KINDS = {}
for kind in ([[
  abort alter analyse analyze begin call checkpoint close cluster comment commit copy create
  deallocate declare delete discard do drop end execute explain fetch grant import insert listen
  load lock merge move notify prepare reassign refresh reindex release reset revoke rollback
  savepoint security select set show start table truncate unlisten update vacuum values with
  function advisory_lock set_config select_into
]]):gmatch("%S+") do
  KNOWN_KINDS[kind] = true
end
M.KNOWN_KINDS = KNOWN_KINDS

-- Functions treated as writing (or as needing a primary) by read_only(): they change data,
-- sequences, locks, replication state or server state, or depend on session state a replica
-- connection would not have. Any other function is assumed to be read-only; a user function that
-- writes fails on a hot standby with PostgreSQL's read-only error.
local WRITE_FUNCTIONS = {}
for name in ([[
  nextval setval currval lastval
  pg_advisory_lock pg_advisory_lock_shared pg_try_advisory_lock pg_try_advisory_lock_shared
  pg_advisory_xact_lock pg_advisory_xact_lock_shared pg_try_advisory_xact_lock
  pg_try_advisory_xact_lock_shared pg_advisory_unlock pg_advisory_unlock_shared pg_advisory_unlock_all
  pg_notify txid_current pg_current_xact_id
  pg_switch_wal pg_create_restore_point pg_backup_start pg_backup_stop pg_start_backup pg_stop_backup
  pg_create_physical_replication_slot pg_create_logical_replication_slot pg_drop_replication_slot
  pg_copy_physical_replication_slot pg_copy_logical_replication_slot pg_replication_slot_advance
  pg_logical_slot_get_changes pg_logical_slot_get_binary_changes pg_logical_emit_message
  pg_replication_origin_create pg_replication_origin_drop pg_replication_origin_session_setup
  pg_replication_origin_session_reset pg_replication_origin_advance pg_replication_origin_xact_setup
  pg_terminate_backend pg_cancel_backend pg_reload_conf pg_rotate_logfile pg_promote
  pg_export_snapshot pg_import_system_collations pg_stat_reset pg_stat_reset_shared
  pg_stat_reset_single_table_counters pg_stat_reset_single_function_counters pg_stat_reset_slru
  pg_stat_reset_replication_slot pg_stat_reset_subscription_stats pg_stat_statements_reset
  pg_file_write pg_file_rename pg_file_unlink pg_file_sync pg_logdir_ls
  lo_create lo_creat lo_import lo_export lo_unlink lo_open lo_put lo_from_bytea lowrite lo_truncate
  lo_truncate64 lo_close lo_lseek lo_lseek64 lo_tell lo_tell64
  dblink dblink_exec dblink_connect dblink_connect_u dblink_open dblink_send_query
  pg_prewarm brin_summarize_new_values brin_summarize_range brin_desummarize_range
  gin_clean_pending_list
]]):gmatch("%S+") do
  WRITE_FUNCTIONS[name] = true
end
M.WRITE_FUNCTIONS = WRITE_FUNCTIONS

-- Words that may be followed by '(' without being a function call.
local NOT_FUNCTIONS = {}
for w in ([[
  all and any array as asc at between by case cast check collate conflict cube cursor default
  delete desc distinct do else escape except exists fetch filter first following for foreign
  from group groups having if ilike in include inherits insert intersect into is join key last
  lateral like limit materialized matched merge not null nulls of offset on only operator or order
  ordinality over partition preceding primary range recursive references returning returns rollup
  row rows select set sets similar some table tablespace then to union unique update using values
  when where window with within zone
]]):gmatch("%S+") do
  NOT_FUNCTIONS[w] = true
end

-- GUCs flagged GUC_LIST_QUOTE in PostgreSQL: their string arguments are quoted as identifiers.
local LIST_QUOTE = {
  search_path = true, temp_tablespaces = true, session_preload_libraries = true,
  local_preload_libraries = true, shared_preload_libraries = true,
}

-- Statement kinds that are read-only by construction (other checks still apply).
local READ_KINDS = {
  select = true, values = true, table = true, with = true, show = true, fetch = true, move = true,
  close = true, savepoint = true, release = true, deallocate = true,
}

local WRITE_WORDS = { insert = true, update = true, delete = true, merge = true, into = true }

-------------------------------------------------------------------------------------------------
-- Lexer

local OPCHAR = {}
for c in ("+-*/<>=~!@#%^&|`?"):gmatch(".") do
  OPCHAR[byte(c)] = true
end
local OP_KEEP_SIGN = "[~!@#%^&|`?%%]"

local E_ESC = { b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }

local function utf8_char(cp)
  if cp < 0x80 then
    return char(cp)
  elseif cp < 0x800 then
    return char(0xC0 + math.floor(cp / 0x40), 0x80 + cp % 0x40)
  elseif cp < 0x10000 then
    return char(0xE0 + math.floor(cp / 0x1000), 0x80 + math.floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
  end
  return char(0xF0 + math.floor(cp / 0x40000), 0x80 + math.floor(cp / 0x1000) % 0x40,
    0x80 + math.floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
end

-- Decode the body of an E'' string.
local function unescape_e(raw)
  if not find(raw, "[\\']") then
    return raw
  end
  local out, n, p = {}, 0, 1
  local len = #raw
  while p <= len do
    local q = find(raw, "[\\']", p)
    if not q then
      n = n + 1; out[n] = sub(raw, p)
      break
    end
    n = n + 1; out[n] = sub(raw, p, q - 1)
    if byte(raw, q) == 39 then -- '' inside the body
      n = n + 1; out[n] = "'"
      p = q + 2
    else
      local c = sub(raw, q + 1, q + 1)
      local oct = raw:match("^[0-7][0-7]?[0-7]?", q + 1)
      local hex = raw:match("^x(%x%x?)", q + 1)
      local u4 = raw:match("^u(%x%x%x%x)", q + 1)
      local u8 = raw:match("^U(%x%x%x%x%x%x%x%x)", q + 1)
      if oct then
        n = n + 1; out[n] = char(tonumber(oct, 8) % 256)
        p = q + 1 + #oct
      elseif hex then
        n = n + 1; out[n] = char(tonumber(hex, 16))
        p = q + 2 + #hex
      elseif u4 then
        n = n + 1; out[n] = utf8_char(tonumber(u4, 16))
        p = q + 6
      elseif u8 then
        n = n + 1; out[n] = utf8_char(tonumber(u8, 16))
        p = q + 10
      else
        n = n + 1; out[n] = E_ESC[c] or c
        p = q + 2
      end
    end
  end
  return concat(out, "", 1, n)
end

-- Scan a quoted body starting after the opening quote at p-1. Returns the position of the closing
-- quote (or nil when unterminated). `backslash` makes \ escape the next character (E'' strings).
local function scan_quote(sql, p, quote, backslash)
  local pat = backslash and "[\\']" or quote
  while true do
    local q = find(sql, pat, p, not backslash)
    if not q then
      return nil
    end
    if backslash and byte(sql, q) == 92 then
      p = q + 2
    elseif byte(sql, q + 1) == byte(quote) then
      p = q + 2
    else
      return q
    end
  end
end

-- Tokenize sql. Returns arrays t (type), s (start), e (end), v (value) and the token count, plus
-- a flag set when the text ends inside a string, identifier or comment, and a set of the indexes of
-- U&"..." identifiers (their value is left as written: the escapes are not decoded).
-- Types: "word" (value lowercased), "ident" (quoted identifier), "string", "number", "param",
-- "op", and the punctuation characters ( ) , ; . [ ] : themselves.
local function lex(sql)
  local t, s, e, v, unicode = {}, {}, {}, {}, {}
  local n = 0
  local pos, len = 1, #sql
  local incomplete = false

  local function push(typ, a, b, val)
    n = n + 1
    t[n], s[n], e[n], v[n] = typ, a, b, val
  end

  -- A quoted string whose body starts at p (after the quote). Handles continuation over a newline.
  local function string_at(start, p, backslash)
    local parts, np = {}, 0
    while true do
      local q = scan_quote(sql, p, "'", backslash)
      if not q then
        incomplete = true
        np = np + 1; parts[np] = sub(sql, p)
        pos = len + 1
        break
      end
      local body = sub(sql, p, q - 1)
      if backslash then
        body = unescape_e(body)
      elseif find(body, "''", 1, true) then
        body = body:gsub("''", "'")
      end
      np = np + 1; parts[np] = body
      pos = q + 1
      -- 'a'<newline>'b' is one string
      local _, b = find(sql, "^[ \t\r\f\v]*\n[ \t\n\r\f\v]*'", pos)
      if not b then
        break
      end
      p = b + 1
    end
    push("string", start, pos - 1, np == 1 and parts[1] or concat(parts))
  end

  while pos <= len do
    local c = byte(sql, pos)
    if c == 32 or (c >= 9 and c <= 13) then
      local _, b = find(sql, "^[ \t\n\r\f\v]+", pos)
      pos = b + 1
    elseif c == 45 and byte(sql, pos + 1) == 45 then
      local nl = find(sql, "[\r\n]", pos + 2)
      pos = nl and nl + 1 or len + 1
    elseif c == 47 and byte(sql, pos + 1) == 42 then
      local depth, p = 1, pos + 2
      while true do
        local a = find(sql, "[/*]", p)
        if not a then
          incomplete = true
          pos = len + 1
          break
        end
        local c1, c2 = byte(sql, a), byte(sql, a + 1)
        if c1 == 47 and c2 == 42 then
          depth = depth + 1
          p = a + 2
        elseif c1 == 42 and c2 == 47 then
          depth = depth - 1
          p = a + 2
          if depth == 0 then
            pos = p
            break
          end
        else
          p = a + 1
        end
      end
    elseif c == 39 then
      string_at(pos, pos + 1, false)
    elseif c == 34 then
      local q = scan_quote(sql, pos + 1, '"', false)
      if q then
        local body = sub(sql, pos + 1, q - 1)
        if find(body, '""', 1, true) then
          body = body:gsub('""', '"')
        end
        push("ident", pos, q, body)
        pos = q + 1
      else
        incomplete = true
        push("ident", pos, len, sub(sql, pos + 1))
        pos = len + 1
      end
    elseif c == 36 then
      local _, b, tag = find(sql, "^%$([%a_\128-\255][%w_\128-\255]*)%$", pos)
      if not b and byte(sql, pos + 1) == 36 then
        b, tag = pos + 1, ""
      end
      if b then
        local delim = "$" .. tag .. "$"
        local q = find(sql, delim, b + 1, true)
        if q then
          push("string", pos, q + #delim - 1, sub(sql, b + 1, q - 1))
          pos = q + #delim
        else
          incomplete = true
          push("string", pos, len, sub(sql, b + 1))
          pos = len + 1
        end
      else
        local _, pb = find(sql, "^%$%d+", pos)
        if pb then
          push("param", pos, pb, sub(sql, pos, pb))
          pos = pb + 1
        else
          push("op", pos, pos, "$")
          pos = pos + 1
        end
      end
    elseif (c >= 65 and c <= 90) or (c >= 97 and c <= 122) or c == 95 or c >= 128 then
      local _, b = find(sql, "^[%w_$\128-\255]*", pos + 1)
      local nx = byte(sql, b + 1)
      if b == pos and nx == 39 and (c == 69 or c == 101) then -- E'...'
        string_at(pos, pos + 2, true)
      elseif b == pos and nx == 39 and (c == 66 or c == 98 or c == 88 or c == 120 or c == 78 or c == 110) then
        string_at(pos, pos + 2, false) -- B'', X'', N''
      elseif b == pos and (c == 85 or c == 117) and nx == 38 and byte(sql, pos + 2) == 39 then
        string_at(pos, pos + 3, false) -- U&'...' (unicode escapes left as written)
      elseif b == pos and (c == 85 or c == 117) and nx == 38 and byte(sql, pos + 2) == 34 then
        local q = scan_quote(sql, pos + 3, '"', false)
        if q then
          push("ident", pos, q, (sub(sql, pos + 3, q - 1):gsub('""', '"')))
          pos = q + 1
        else
          incomplete = true
          push("ident", pos, len, sub(sql, pos + 3))
          pos = len + 1
        end
        unicode[n] = true
      else
        push("word", pos, b, lower(sub(sql, pos, b)))
        pos = b + 1
      end
    elseif (c >= 48 and c <= 57) or (c == 46 and (byte(sql, pos + 1) or 0) >= 48 and (byte(sql, pos + 1) or 0) <= 57) then
      local _, b = find(sql, "^[%w_.]*", pos + 1)
      local last = byte(sql, b)
      if (last == 101 or last == 69) and find(sql, "^[+-]%d", b + 1) then
        local _, b2 = find(sql, "^[+-]%d+", b + 1)
        b = b2
      end
      push("number", pos, b, sub(sql, pos, b))
      pos = b + 1
    elseif OPCHAR[c] then
      local b = pos
      while true do
        local nc = byte(sql, b + 1)
        if not nc or not OPCHAR[nc] then
          break
        end
        local nn = byte(sql, b + 2)
        if (nc == 45 and nn == 45) or (nc == 47 and nn == 42) then
          break -- a comment starts inside the operator
        end
        b = b + 1
      end
      if b > pos and not find(sub(sql, pos, b), OP_KEEP_SIGN) then
        -- as PostgreSQL: a multi-character operator cannot end in + or - (x=-1 is x = -1)
        while b > pos and (byte(sql, b) == 43 or byte(sql, b) == 45) do
          b = b - 1
        end
      end
      push("op", pos, b, sub(sql, pos, b))
      pos = b + 1
    elseif c == 40 or c == 41 or c == 44 or c == 59 or c == 46 or c == 91 or c == 93 or c == 58 then
      local ch = char(c)
      push(ch, pos, pos, ch)
      pos = pos + 1
    else
      push("op", pos, pos, char(c))
      pos = pos + 1
    end
  end
  return t, s, e, v, n, incomplete, unicode
end

M.lex = lex

-------------------------------------------------------------------------------------------------
-- Statement analysis

-- quote_identifier() as PostgreSQL does it, minus the keyword check.
local function quote_ident(str)
  if find(str, "^[a-z_][a-z0-9_]*$") then
    return str
  end
  return '"' .. str:gsub('"', '""') .. '"'
end

local function norm_number(txt, neg)
  if find(txt, "^%d+$") then
    txt = txt:gsub("^0+(%d)", "%1")
  end
  return neg and "-" .. txt or txt
end

-- pg_temp or pg_temp_N (any name so beginning): the session's temporary schema.
local function is_temp_schema(name)
  return sub(name, 1, 7) == "pg_temp" and (#name == 7 or byte(name, 8) == 95)
end

-- The analyzer works on one tokenized text; statements are token ranges [i, j].
local function analyzer(t, s, e, v, unicode)
  local A = {}

  local function w(k) -- word value at k or nil
    if t[k] == "word" then
      return v[k]
    end
  end

  local function name_at(k) -- identifier-like value at k (word lowercased, quoted as is)
    local typ = t[k]
    if typ == "word" or typ == "ident" then
      return v[k]
    end
  end

  -- Position after a balanced parenthesised group starting at k (t[k] == "(").
  local function skip_parens(k, j)
    local depth = 0
    while k <= j do
      if t[k] == "(" then
        depth = depth + 1
      elseif t[k] == ")" then
        depth = depth - 1
        if depth == 0 then
          return k + 1
        end
      end
      k = k + 1
    end
    return k
  end

  -- Find word `word` at parenthesis depth 0 in [k, j]; returns its index.
  local function find_word(k, j, word, stop)
    local depth = 0
    while k <= j do
      local typ = t[k]
      if typ == "(" then
        depth = depth + 1
      elseif typ == ")" then
        depth = depth - 1
      elseif depth == 0 and typ == "word" then
        if v[k] == word then
          return k
        elseif stop and stop[v[k]] then
          return nil
        end
      end
      k = k + 1
    end
    return nil
  end

  -- Arguments of a call whose "(" is at k: array of {first, last} token ranges, and the index of
  -- the closing ")".
  local function call_args(k, j)
    local args, depth, a = {}, 0, k + 1
    for m = k, j do
      local typ = t[m]
      if typ == "(" or typ == "[" then
        depth = depth + 1
      elseif typ == ")" or typ == "]" then
        depth = depth - 1
        if depth == 0 then
          if m > a then
            args[#args + 1] = { a, m - 1 }
          end
          return args, m
        end
      elseif typ == "," and depth == 1 then
        args[#args + 1] = { a, m - 1 }
        a = m + 1
      end
    end
    return args, j
  end

  -- Literal boolean of a one-token argument, or nil.
  local BOOL_TEXT = { t = true, ["true"] = true, on = true, yes = true, y = true, ["1"] = true,
    f = false, ["false"] = false, off = false, no = false, n = false, ["0"] = false }
  local function literal_bool(a, b)
    if a ~= b then
      return nil
    end
    local typ = t[a]
    if typ == "word" or typ == "string" then
      return BOOL_TEXT[lower(v[a])]
    end
    return nil
  end

  -- One pass over a statement's tokens: function calls, advisory locks, set_config calls,
  -- row locking clauses and words that mean a write.
  local function scan_calls(i, j, st)
    local functions, nf = nil, 0
    for k = i, j do
      local typ = t[k]
      if unicode[k] then
        st.opaque = "unicode identifier" -- U&"pg\005ftemp", U&"set\005fconfig": any name at all
      end
      if (typ == "word" or typ == "ident") and is_temp_schema(v[k]) then
        -- pg_temp.x, IMPORT ... INTO pg_temp, a view over pg_temp.t (a temporary view): the
        -- session's temporary schema, named as the core's scan does it
        st.temp_schema = true
      end
      if typ == "word" then
        local word = v[k]
        if WRITE_WORDS[word] then
          st.writes = true
        elseif word == "for" then
          -- FOR UPDATE, FOR NO KEY UPDATE, FOR SHARE, FOR KEY SHARE
          local a, b = w(k + 1), w(k + 2)
          if a == "update" or a == "share" or (a == "no" and b == "key") or (a == "key" and b == "share") then
            st.locking = true
          end
        end
      end
      if (typ == "word" or typ == "ident") and t[k + 1] == "(" and k + 1 <= j
        and not (typ == "word" and NOT_FUNCTIONS[v[k]]) then
        local fname = v[k]
        nf = nf + 1
        functions = functions or {}
        functions[nf] = fname
        if ADVISORY_SESSION[fname] then
          st.advisory_lock = "session"
          local calls = st.advisory_calls or {}
          st.advisory_calls = calls
          calls[#calls + 1] = { name = fname, level = "session", start = s[k], stop = e[k] }
        elseif ADVISORY_XACT[fname] then
          if st.advisory_lock == nil then
            st.advisory_lock = "xact"
          end
          local calls = st.advisory_calls or {}
          st.advisory_calls = calls
          calls[#calls + 1] = { name = fname, level = "xact", start = s[k], stop = e[k] }
        elseif fname == "set_config" then
          local args = call_args(k + 1, j)
          local call = { start = s[k] }
          if #args == 3 then
            local a1, a2, a3 = args[1], args[2], args[3]
            if a1[1] == a1[2] and t[a1[1]] == "string" then
              call.name = v[a1[1]]
            end
            if a2[1] == a2[2] and t[a2[1]] == "string" then
              call.value = v[a2[1]]
            end
            call.is_local = literal_bool(a3[1], a3[2])
          end
          local list = st.set_config or {}
          st.set_config = list
          list[#list + 1] = call
        end
      end
    end
    if functions then
      st.functions = functions
    end
  end

  -- Flatten SET arguments in [k, j] the way PostgreSQL's flatten_set_variable_args() does.
  -- Returns value, or nil plus "default" (TO DEFAULT) or "unknown" (a form not understood).
  local function set_value(k, j, guc)
    if k > j then
      return nil, "unknown"
    end
    if k == j and w(k) == "default" then
      return nil, "default"
    end
    local out, n = {}, 0
    local a = k
    while a <= j do
      local b = a
      local depth = 0
      while b <= j and not (t[b] == "," and depth == 0) do
        if t[b] == "(" then
          depth = depth + 1
        elseif t[b] == ")" then
          depth = depth - 1
        end
        b = b + 1
      end
      local last = b - 1
      local val
      if a == last then
        local typ = t[a]
        if typ == "string" or typ == "word" or typ == "ident" then
          val = v[a]
          if LIST_QUOTE[guc] then
            val = quote_ident(val)
          end
        elseif typ == "number" then
          val = norm_number(v[a], false)
        end
      elseif a + 1 == last and t[a] == "op" and (v[a] == "-" or v[a] == "+") and t[last] == "number" then
        val = norm_number(v[last], v[a] == "-")
      end
      if not val then
        return nil, "unknown"
      end
      n = n + 1
      out[n] = val
      a = b + 1
    end
    return concat(out, ", ", 1, n)
  end

  -- SET SESSION CHARACTERISTICS AS TRANSACTION / SET TRANSACTION / BEGIN modes starting at k.
  local function tx_modes(k, j)
    local settings = {}
    while k <= j do
      local word = w(k)
      if word == "isolation" and w(k + 1) == "level" then
        local a, b = w(k + 2), w(k + 3)
        local level
        if a == "serializable" then
          level, k = "serializable", k + 3
        elseif a == "repeatable" then
          level, k = "repeatable read", k + 4
        elseif a == "read" and (b == "committed" or b == "uncommitted") then
          level, k = "read " .. b, k + 4
        else
          return settings, false
        end
        settings[#settings + 1] = { name = "default_transaction_isolation", value = level }
      elseif word == "read" and (w(k + 1) == "only" or w(k + 1) == "write") then
        settings[#settings + 1] = { name = "default_transaction_read_only",
          value = w(k + 1) == "only" and "on" or "off" }
        k = k + 2
      elseif word == "deferrable" then
        settings[#settings + 1] = { name = "default_transaction_deferrable", value = "on" }
        k = k + 1
      elseif word == "not" and w(k + 1) == "deferrable" then
        settings[#settings + 1] = { name = "default_transaction_deferrable", value = "off" }
        k = k + 2
      elseif t[k] == "," then
        k = k + 1
      else
        return settings, false
      end
    end
    return settings, true
  end

  -- Dotted configuration parameter name at k: returns name and next index.
  local function guc_name(k, j)
    local parts = {}
    local nm = name_at(k)
    if not nm then
      return nil, k
    end
    parts[1] = nm
    k = k + 1
    while k + 1 <= j and t[k] == "." and name_at(k + 1) do
      parts[#parts + 1] = name_at(k + 1)
      k = k + 2
    end
    return concat(parts, "."), k
  end

  -- Is the word at k a parameter's name (followed by '.', '=' or TO) rather than a keyword of SET?
  -- SET local.x = 1, SET transaction.x = 1 and SET local = 1 set parameters of those names.
  local function param_name_at(k)
    return t[k + 1] == "." or (t[k + 1] == "op" and v[k + 1] == "=") or w(k + 1) == "to"
  end

  local function analyze_set(i, j, st)
    local k = i + 1
    local scope = "session"
    local word = w(k)
    if (word == "local" or (word == "session" and not (w(k + 1) == "authorization"
      or w(k + 1) == "characteristics"))) and not param_name_at(k) then
      -- SET LOCAL ... / SET SESSION ... (unless LOCAL or SESSION is itself the name being set)
      scope = word == "local" and "local" or "session"
      k = k + 1
    end
    word = w(k)
    local nxt = w(k + 1)
    st.scope = scope
    if word == "transaction" and not param_name_at(k) then
      st.scope = "local" -- SET TRANSACTION ...: this transaction only
      st.name = "transaction"
    elseif word == "constraints" and not param_name_at(k) then
      st.scope = "local"
      st.name = "constraints"
    elseif word == "session" and nxt == "characteristics" then
      -- SET SESSION CHARACTERISTICS AS TRANSACTION modes
      local settings, ok = tx_modes(k + 4, j)
      if ok and #settings > 0 then
        st.settings = settings
      else
        st.untrackable = true
      end
    elseif word == "role" and not param_name_at(k) then
      st.role_change = true
      st.name = "role"
      st.value = name_at(k + 1) or (t[k + 1] == "string" and v[k + 1]) or nil
    elseif word == "session" and nxt == "authorization" then
      st.role_change = true
      st.name = "session_authorization"
      if w(k + 2) == "default" and k + 2 == j then
        st.default = true
      else
        st.value = name_at(k + 2) or (t[k + 2] == "string" and v[k + 2]) or nil
      end
    else
      local name, vk
      if word == "time" and nxt == "zone" then
        name, vk = "timezone", k + 2
        if vk == j and w(vk) == "local" then
          st.name, st.default = name, true
          st.settings = st.scope == "session" and { { reset = name } } or nil
          st.set_local = st.scope == "local"
          return
        end
      elseif word == "names" and not param_name_at(k) then
        name, vk = "client_encoding", k + 1
        if vk > j then
          st.name, st.default = name, true
          st.settings = st.scope == "session" and { { reset = name } } or nil
          st.set_local = st.scope == "local"
          return
        end
      elseif word == "schema" and t[k + 1] == "string" then
        name, vk = "search_path", k + 1
      elseif word == "xml" and nxt == "option" then
        name, vk = "xmloption", k + 2
      else
        name, vk = guc_name(k, j)
        if name then
          if t[vk] == "op" and v[vk] == "=" or w(vk) == "to" then
            vk = vk + 1
          elseif w(vk) == "from" and w(vk + 1) == "current" then
            st.name, st.from_current = name, true
            st.set_local = st.scope == "local"
            return
          else
            vk = j + 1 -- no value: not valid SQL
          end
        end
      end
      st.name = name
      if name then
        local value, why = set_value(vk, j, name)
        st.value = value
        if why == "default" then
          st.default = true
        elseif why == "unknown" then
          st.untrackable = true
        end
        if st.scope == "session" then
          if value then
            st.settings = { { name = name, value = value } }
          elseif why == "default" then
            st.settings = { { reset = name } }
          end
        end
      else
        st.untrackable = true
      end
    end
    st.set_local = st.scope == "local"
  end

  local function analyze_reset(i, j, st)
    local word = w(i + 1)
    if word == "all" and i + 1 == j then
      st.all = true
      st.settings = { { reset = true } }
    elseif word == "role" and i + 1 == j then
      st.role_change, st.name = true, "role"
    elseif word == "session" and w(i + 2) == "authorization" then
      st.role_change, st.name = true, "session_authorization"
    elseif word == "time" and w(i + 2) == "zone" then
      st.name = "timezone"
      st.settings = { { reset = "timezone" } }
    elseif word == "transaction" and w(i + 2) == "isolation" then
      st.name = "transaction_isolation" -- transaction-scoped
    else
      local name = guc_name(i + 1, j)
      st.name = name
      if name then
        st.settings = { { reset = name } }
      end
    end
  end

  local analyze -- forward

  local function inner_read_only(k, j)
    if k > j then
      return false
    end
    local sub_st = analyze(k, j, {})
    return sub_st.read_only
  end

  -- Structural read-only test of a statement (the call/word scan is applied separately).
  local function structural_read_only(kind, i, j, st)
    if READ_KINDS[kind] then
      return true
    elseif kind == "begin" or kind == "start" then
      for k = i + 1, j do
        if v[k] == "write" or v[k] == "serializable" then
          return false
        end
      end
      return true
    elseif kind == "commit" or kind == "end" or kind == "rollback" or kind == "abort" then
      return not st.two_phase
    elseif kind == "set" or kind == "reset" then
      if st.untrackable and not st.role_change then
        return false
      end
      for k = i + 1, j do
        local typ = t[k]
        if (typ == "word" or typ == "string" or typ == "ident")
          and (v[k] == "write" or v[k] == "serializable" or find(lower(v[k]), "read_only", 1, true)) then
          return false
        end
      end
      return true
    elseif kind == "explain" then
      local k = i + 1
      if t[k] == "(" then
        k = skip_parens(k, j)
      else
        while w(k) == "analyze" or w(k) == "analyse" or w(k) == "verbose" do
          k = k + 1
        end
      end
      return inner_read_only(k, j)
    elseif kind == "prepare" then
      if st.two_phase then
        return false
      end
      local as = find_word(i + 2, j, "as")
      return as ~= nil and inner_read_only(as + 1, j)
    elseif kind == "declare" then
      local cur = find_word(i + 2, j, "cursor")
      local f = cur and find_word(cur + 1, j, "for")
      return f ~= nil and inner_read_only(f + 1, j)
    elseif kind == "copy" then
      -- COPY ... TO STDOUT only; COPY (query) TO STDOUT when the query is read-only
      local k = i + 1
      local query_ok = true
      if t[k] == "(" then
        local after = skip_parens(k, j)
        query_ok = inner_read_only(k + 1, after - 2)
        k = after
      end
      local depth = 0
      while k <= j do
        if t[k] == "(" then
          depth = depth + 1
        elseif t[k] == ")" then
          depth = depth - 1
        elseif depth == 0 and (w(k) == "from" or w(k) == "to") then
          return query_ok and w(k) == "to" and w(k + 1) == "stdout"
        end
        k = k + 1
      end
      return false
    end
    return false
  end

  local function functions_write(st)
    local fns = st.functions
    if fns then
      for m = 1, #fns do
        if WRITE_FUNCTIONS[fns[m]] then
          return true
        end
      end
    end
    local sc = st.set_config
    if sc then
      for m = 1, #sc do
        local nm = sc[m].name
        if not nm or find(lower(nm), "read_only", 1, true) or find(lower(nm), "isolation", 1, true) then
          return true
        end
      end
    end
    return false
  end

  -- Fill st for the statement in tokens [i, j].
  analyze = function(i, j, st)
    st.set_local, st.with_hold, st.temp, st.on_commit_drop = false, false, false, false
    st.read_only, st.role_change = false, false
    local k = i
    while k <= j and t[k] == "(" do
      k = k + 1
    end
    local kind = (k <= j and t[k] == "word") and v[k] or "unknown"
    st.kind = kind
    if kind == "do" then
      st.opaque = "do" -- an anonymous code block may do anything
    end
    scan_calls(i, j, st)
    local ki = k -- index of the kind keyword
    local word1 = w(ki + 1)

    if kind == "set" then
      analyze_set(ki, j, st)
    elseif kind == "reset" then
      analyze_reset(ki, j, st)
    elseif kind == "listen" or kind == "notify" then
      st.name = name_at(ki + 1)
    elseif kind == "unlisten" then
      if t[ki + 1] == "op" and v[ki + 1] == "*" then
        st.name, st.all = "*", true
      else
        st.name = name_at(ki + 1)
      end
    elseif kind == "prepare" then
      if word1 == "transaction" then
        st.two_phase = true
        st.name = t[ki + 2] == "string" and v[ki + 2] or nil
      else
        st.name = name_at(ki + 1)
      end
    elseif kind == "execute" then
      st.name = name_at(ki + 1)
    elseif kind == "deallocate" then
      local nk = word1 == "prepare" and ki + 2 or ki + 1
      if w(nk) == "all" and nk == j then
        st.all = true
      else
        st.name = name_at(nk)
      end
    elseif kind == "declare" then
      st.name = name_at(ki + 1)
      local cur = find_word(ki + 2, j, "cursor")
      if cur then
        local f = find_word(cur + 1, j, "for")
        for m = cur + 1, (f or j + 1) - 1 do
          if w(m) == "with" and w(m + 1) == "hold" then
            st.with_hold = true
          end
        end
      end
    elseif kind == "close" then
      if word1 == "all" and ki + 1 == j then
        st.all = true
      else
        st.name = name_at(ki + 1)
      end
    elseif kind == "load" then
      st.name = t[ki + 1] == "string" and v[ki + 1] or name_at(ki + 1)
    elseif kind == "discard" then
      st.name = word1
      st.all = word1 == "all"
    elseif kind == "create" then
      local m = ki + 1
      if w(m) == "or" and w(m + 1) == "replace" then
        m = m + 2
      end
      if w(m) == "global" or w(m) == "local" then
        m = m + 1
      end
      if w(m) == "temp" or w(m) == "temporary" then
        st.temp = true
        m = m + 1
      elseif w(m) == "unlogged" then
        m = m + 1
      end
      if w(m) == "recursive" then
        m = m + 1
      end
      st.object = w(m)
      local nm = m + 1
      if w(nm) == "if" and w(nm + 1) == "not" and w(nm + 2) == "exists" then
        nm = nm + 3
      end
      local schema = name_at(nm)
      if schema and t[nm + 1] == "." and find(schema, "^pg_temp") then
        st.temp = true -- CREATE TABLE pg_temp.x makes a temporary table
      end
      if st.temp and st.object == "table" then
        local depth = 0
        for q = m + 1, j do
          local typ = t[q]
          if typ == "(" then
            depth = depth + 1
          elseif typ == ")" then
            depth = depth - 1
          elseif depth == 0 and typ == "word" then
            if v[q] == "as" then
              break
            elseif v[q] == "on" and w(q + 1) == "commit" then
              local a, b = w(q + 2), w(q + 3)
              if a == "drop" then
                st.on_commit = "drop"
              elseif a == "delete" and b == "rows" then
                st.on_commit = "delete_rows"
              elseif a == "preserve" and b == "rows" then
                st.on_commit = "preserve_rows"
              end
              break
            end
          end
        end
        st.on_commit_drop = st.on_commit == "drop"
      end
    elseif kind == "begin" or kind == "start" then
      st.tx = "begin"
      local m = ki + 1
      if w(m) == "work" or w(m) == "transaction" then
        m = m + 1
      end
      local modes = tx_modes(m, j)
      for q = 1, #modes do
        local md = modes[q]
        if md.name == "default_transaction_read_only" then
          st.tx_read_only = md.value == "on"
        elseif md.name == "default_transaction_isolation" then
          st.isolation = md.value
        end
      end
    elseif kind == "commit" or kind == "end" or kind == "rollback" or kind == "abort" then
      if word1 == "prepared" then
        st.two_phase = true
        st.name = t[ki + 2] == "string" and v[ki + 2] or nil
      elseif (kind == "rollback" or kind == "abort") and find_word(ki + 1, j, "to") then
        st.savepoint = true
      else
        st.tx = (kind == "commit" or kind == "end") and "commit" or "rollback"
        local a = find_word(ki + 1, j, "and")
        if a and w(a + 1) == "chain" then
          st.chain = true
        end
      end
    elseif kind == "explain" then
      -- EXPLAIN ANALYZE runs its statement: its temporary table or INTO is this one's
      local m = ki + 1
      if t[m] == "(" then
        m = skip_parens(m, j)
      else
        while w(m) == "analyze" or w(m) == "analyse" or w(m) == "verbose" do
          m = m + 1
        end
      end
      if m <= j then
        local inner = analyze(m, j, {})
        st.temp, st.on_commit, st.on_commit_drop, st.into = inner.temp, inner.on_commit, inner.on_commit_drop,
          inner.into
        st.object = inner.temp and inner.object or nil
      end
    elseif kind == "select" or kind == "with" then
      -- SELECT ... INTO [TEMP] t creates a table
      local depth = 0
      for q = ki + 1, j do
        local typ = t[q]
        if typ == "(" then
          depth = depth + 1
        elseif typ == ")" then
          depth = depth - 1
        elseif depth == 0 and typ == "word" and v[q] == "into" and not (kind == "with" and
          (w(q - 1) == "insert" or w(q - 1) == "merge")) then
          st.into = true
          local m = q + 1
          if w(m) == "local" or w(m) == "global" then
            m = m + 1
          end
          if w(m) == "temp" or w(m) == "temporary" then
            st.temp = true
          end
          while w(m) == "temp" or w(m) == "temporary" or w(m) == "unlogged" or w(m) == "table" do
            m = m + 1
          end
          if name_at(m) and t[m + 1] == "." and is_temp_schema(name_at(m)) then
            st.temp = true -- SELECT ... INTO pg_temp.x makes a temporary table
          end
          break
        end
      end
    end

    if st.set_local == nil then
      st.set_local = false
    end
    st.read_only = structural_read_only(kind, ki, j, st) and not st.writes and not st.locking
      and not functions_write(st) and not st.opaque
    return st
  end

  A.analyze = analyze
  return A
end

-------------------------------------------------------------------------------------------------
-- Public API

local EMPTY_STATEMENT = { kind = "" }

-- Split sql into statements. opts.truncated marks the last statement as incomplete.
-- Returns an array (never empty: text without any statement gives one statement of kind "").
function M.statements(sql, opts)
  if type(sql) ~= "string" then
    error("classify.statements: sql must be a string", 2)
  end
  local t, s, e, v, n, incomplete, unicode = lex(sql)
  local A = analyzer(t, s, e, v, unicode)
  local out, nout = {}, 0
  local i = 1
  local depth, begin_depth = 0, 0
  local first_words, nwords = {}, 0
  local fn_body = false
  local k = 1
  while k <= n + 1 do
    local typ = t[k]
    if k > n or (typ == ";" and depth <= 0 and begin_depth <= 0) then
      if k > i then
        nout = nout + 1
        local st = { text_start = s[i], text_end = e[k - 1] }
        A.analyze(i, k - 1, st)
        out[nout] = st
      end
      i = k + 1
      depth, begin_depth, nwords, fn_body = 0, 0, 0, false
    elseif typ == "(" then
      depth = depth + 1
    elseif typ == ")" then
      depth = depth - 1
    elseif typ == "word" then
      local word = v[k]
      if nwords < 4 then
        nwords = nwords + 1
        first_words[nwords] = word
        -- CREATE [OR REPLACE] FUNCTION|PROCEDURE may hold BEGIN ATOMIC ... END with semicolons
        if first_words[1] == "create" and ((nwords == 2 and (word == "function" or word == "procedure"))
          or (nwords == 4 and first_words[2] == "or" and (word == "function" or word == "procedure"))) then
          fn_body = true
        end
      end
      -- psql's rule, made stricter as the core's scan: BEGIN ATOMIC opens the body (a parameter or a
      -- value named begin does not), CASE and END nest inside it, t.end and t.case are column names
      if fn_body and depth == 0 and t[k - 1] ~= "." then
        if word == "begin" and t[k + 1] == "word" and v[k + 1] == "atomic" then
          begin_depth = begin_depth + 1
        elseif word == "case" and begin_depth > 0 then
          begin_depth = begin_depth + 1
        elseif word == "end" and begin_depth > 0 then
          begin_depth = begin_depth - 1
        end
      end
    end
    k = k + 1
  end
  if nout == 0 then
    out[1] = { kind = "", text_start = #sql + 1, text_end = #sql, set_local = false, with_hold = false,
      temp = false, on_commit_drop = false, read_only = false, role_change = false }
    return out
  end
  if incomplete or (opts and opts.truncated) then
    local last = out[nout]
    last.incomplete = true
    last.read_only = false
  end
  return out
end

-- True only when every statement is certainly read-only (and there is at least one).
function M.read_only_statements(stmts)
  local any = false
  for i = 1, #stmts do
    local st = stmts[i]
    if st.kind ~= "" then
      if not st.read_only then
        return false
      end
      any = true
    end
  end
  return any
end

function M.read_only(sql, opts)
  return M.read_only_statements(M.statements(sql, opts))
end

-- Kinds as the C core's scan reports them: each statement's first keyword in order, without
-- duplicates, then the pseudo-kinds "advisory_lock" (a session advisory lock is taken), "set_config"
-- (set_config is called) and "select_into" (SELECT ... INTO makes a table), each once. Policies can
-- list a pseudo-kind in query_kinds instead of every SELECT. tests/corpus/statements.tsv holds what
-- this and the core's scan must both answer (kinds, and changes_session below).
function M.kinds_of(stmts)
  local out, seen = {}, {}
  local advisory, set_config, into = false, false, false
  for i = 1, #stmts do
    local st = stmts[i]
    local kind = st.kind
    if kind ~= "" and kind ~= "unknown" and not seen[kind] then
      seen[kind] = true
      out[#out + 1] = kind
    end
    advisory = advisory or st.advisory_lock == "session"
    set_config = set_config or st.set_config ~= nil
    into = into or st.into == true
  end
  if advisory then
    out[#out + 1] = "advisory_lock"
  end
  if set_config then
    out[#out + 1] = "set_config"
  end
  if into then
    out[#out + 1] = "select_into"
  end
  return out
end

-- Does the statement change its server's session, as the C core's scan decides whether a server
-- needs server_reset_query before another client gets it? A session SET, RESET, DISCARD, LISTEN, SQL
-- PREPARE / DEALLOCATE, WITH HOLD cursors, temporary objects without ON COMMIT DROP (and any statement
-- naming the temporary schema pg_temp, st.temp_schema), session advisory locks, set_config(), LOAD,
-- and what the scan cannot see through (st.opaque: a DO block, a U&"" identifier). Functions the
-- statement calls are not looked into.
function M.changes_session(st)
  local kind = st.kind
  if st.opaque or st.set_config or st.advisory_lock == "session" or st.with_hold then
    return true
  elseif kind == "set" then
    return st.scope ~= "local"
  elseif kind == "reset" or kind == "discard" or kind == "listen" or kind == "load" or kind == "deallocate" then
    return true
  elseif kind == "prepare" then
    return not st.two_phase
  end
  return (st.temp == true or st.temp_schema == true) and not st.on_commit_drop
end

function M.kinds(sql)
  return M.kinds_of(M.statements(sql))
end

function M.kind(sql)
  return (M.statements(sql)[1] or EMPTY_STATEMENT).kind
end

-- Text of a statement.
function M.text(sql, st)
  return sub(sql, st.text_start, st.text_end)
end

M.quote_ident = quote_ident

return M

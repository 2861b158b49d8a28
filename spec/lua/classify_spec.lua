-- Specs for moonbouncer.classify: real-world statements, quoting, splitting and flags.

local H = require "spec.helpers"
local classify = require "moonbouncer.classify"

-- Each row: sql, kind (of the first statement), ro (classify.read_only), n (statements, default 1),
-- kinds (as the C scan reports them, default { kind }), st (fields of the first statement),
-- stmts (fields per statement), session (classify.changes_session of any statement, as the C scan
-- decides it, when given), and guard: what transaction_guard does for a transaction-mode
-- client outside a transaction ("track", "reject", "rewrite" or nil = passes untouched);
-- guard_tx: the same inside a transaction (defaults to guard; "pass" = passes untouched).
local CORPUS = {
  -- what drivers send at start-up
  { "SET extra_float_digits = 3", kind = "set", ro = true, guard = "track",
    st = { name = "extra_float_digits", value = "3", set_local = false, scope = "session" } },
  { "SET application_name = 'PostgreSQL JDBC Driver'", kind = "set", ro = true, guard = "track",
    st = { name = "application_name", value = "PostgreSQL JDBC Driver" } },
  { "SET DateStyle = 'ISO'", kind = "set", ro = true, guard = "track", st = { name = "datestyle", value = "ISO" } },
  { "SET datestyle TO 'ISO, MDY'", kind = "set", ro = true, guard = "track", st = { value = "ISO, MDY" } },
  { "SET client_min_messages TO 'warning'", kind = "set", ro = true, guard = "track",
    st = { name = "client_min_messages", value = "warning" } },
  { "SET standard_conforming_strings = on", kind = "set", ro = true, guard = "track", st = { value = "on" } },
  { "SET intervalstyle = iso_8601", kind = "set", ro = true, guard = "track", st = { value = "iso_8601" } },
  { "SET SESSION timezone TO 'UTC'", kind = "set", ro = true, guard = "track",
    st = { name = "timezone", value = "UTC", scope = "session" } },
  { "SET client_encoding TO 'UTF8'", kind = "set", ro = true, guard = "track", st = { value = "UTF8" } },
  { "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED", kind = "set", ro = true,
    guard = "track", st = { settings = { { name = "default_transaction_isolation", value = "read committed" } } } },
  { "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", kind = "set", ro = true, guard = "track",
    st = { settings = { { name = "default_transaction_read_only", value = "on" } } } },
  { "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", kind = "set", ro = false, guard = "track" },
  { "SHOW TRANSACTION ISOLATION LEVEL", kind = "show", ro = true },
  { "select pg_catalog.version()", kind = "select", ro = true, st = { functions = { "version" } } },
  { "select current_schema()", kind = "select", ro = true },
  { "show standard_conforming_strings", kind = "show", ro = true },
  { "SELECT CAST('test plain returns' AS VARCHAR(60)) AS anon_1", kind = "select", ro = true },
  { "SELECT set_config('TimeZone', 'UTC', false)", kind = "select", kinds = { "select", "set_config" }, ro = true,
    st = { set_config = { { name = "TimeZone", value = "UTC", is_local = false, start = 8 } } } },
  { "SELECT pg_catalog.set_config('search_path', '', false);", kind = "select", kinds = { "select", "set_config" }, ro = true,
    st = { set_config = { { name = "search_path", value = "", is_local = false, start = 19 } } } },
  { "select set_config('search_path', $1, true), set_config('role', $2, true), "
      .. "set_config('request.jwt.claims', $3, true)", kind = "select", kinds = { "select", "set_config" }, ro = true,
    st = { set_config = { { name = "search_path", is_local = true, start = 8 },
      { name = "role", is_local = true, start = 45 }, { name = "request.jwt.claims", is_local = true, start = 75 } } } },
  { "SET DateStyle=ISO; SET client_min_messages=notice; SELECT set_config('bytea_output','hex',false) "
      .. "FROM pg_show_all_settings() WHERE name = 'bytea_output'; SET client_encoding='UNICODE';",
    kind = "set", kinds = { "set", "select", "set_config" }, n = 4, ro = true, guard = "track",
    stmts = { { name = "datestyle", value = "iso" }, { name = "client_min_messages", value = "notice" },
      { kind = "select" }, { name = "client_encoding", value = "UNICODE" } } },
  { "SET TIME ZONE 'UTC'", kind = "set", ro = true, guard = "track", st = { name = "timezone", value = "UTC" } },
  { "SET NAMES 'UTF8'", kind = "set", ro = true, guard = "track", st = { name = "client_encoding", value = "UTF8" } },
  { "SELECT 1", kind = "select", ro = true },
  { "select 1 as one", kind = "select", ro = true },
  { "DEALLOCATE ALL", kind = "deallocate", ro = true, st = { all = true } },
  { "DISCARD ALL", kind = "discard", ro = false, guard = "track", st = { name = "all", all = true } },
  { "RESET ALL", kind = "reset", ro = true, guard = "track", st = { all = true, settings = { { reset = true } } } },
  { "BEGIN", kind = "begin", ro = true, st = { tx = "begin" } },
  { "BEGIN READ ONLY", kind = "begin", ro = true, st = { tx = "begin", tx_read_only = true } },
  { "BEGIN ISOLATION LEVEL SERIALIZABLE", kind = "begin", ro = false, st = { isolation = "serializable" } },
  { "START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", kind = "start", ro = true,
    st = { tx = "begin", tx_read_only = true, isolation = "repeatable read" } },
  { "BEGIN READ WRITE", kind = "begin", ro = false },
  { "COMMIT", kind = "commit", ro = true, st = { tx = "commit" } },
  { "ROLLBACK", kind = "rollback", ro = true, st = { tx = "rollback" } },
  { "END", kind = "end", ro = true, st = { tx = "commit" } },
  { "ABORT", kind = "abort", ro = true, st = { tx = "rollback" } },
  { "COMMIT AND CHAIN", kind = "commit", ro = true, st = { tx = "commit", chain = true } },
  { "SAVEPOINT sp1", kind = "savepoint", ro = true },
  { "RELEASE SAVEPOINT sp1", kind = "release", ro = true },
  { "ROLLBACK TO SAVEPOINT sp1", kind = "rollback", ro = true, st = { savepoint = true, tx = nil } },
  { "PREPARE TRANSACTION 'tx-42'", kind = "prepare", ro = false, st = { two_phase = true, name = "tx-42" } },
  { "COMMIT PREPARED 'tx-42'", kind = "commit", ro = false, st = { two_phase = true, tx = nil } },

  -- psql backslash-command queries
  { [[SELECT c.oid,
  n.nspname,
  c.relname
FROM pg_catalog.pg_class c
     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname OPERATOR(pg_catalog.~) '^(users)$' COLLATE pg_catalog.default
  AND pg_catalog.pg_table_is_visible(c.oid)
ORDER BY 2, 3;]], kind = "select", ro = true, st = { functions = { "pg_table_is_visible" } } },
  { [[SELECT n.nspname as "Schema",
  c.relname as "Name",
  CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'i' THEN 'index' WHEN 'S' THEN 'sequence' WHEN 't' THEN 'TOAST table' WHEN 'f' THEN 'foreign table' WHEN 'p' THEN 'partitioned table' WHEN 'I' THEN 'partitioned index' END as "Type",
  pg_catalog.pg_get_userbyid(c.relowner) as "Owner"
FROM pg_catalog.pg_class c
     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam
WHERE c.relkind IN ('r','p','')
      AND n.nspname <> 'pg_catalog'
      AND n.nspname !~ '^pg_toast'
      AND n.nspname <> 'information_schema'
  AND pg_catalog.pg_table_is_visible(c.oid)
ORDER BY 1,2;]], kind = "select", ro = true },
  { [[SELECT d.datname as "Name",
       pg_catalog.pg_get_userbyid(d.datdba) as "Owner",
       pg_catalog.pg_encoding_to_char(d.encoding) as "Encoding",
       d.datcollate as "Collate",
       d.datctype as "Ctype",
       pg_catalog.array_to_string(d.datacl, E'\n') AS "Access privileges"
FROM pg_catalog.pg_database d
ORDER BY 1;]], kind = "select", ro = true },
  { [[SELECT a.attname,
  pg_catalog.format_type(a.atttypid, a.atttypmod),
  (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid, true)
   FROM pg_catalog.pg_attrdef d
   WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef),
  a.attnotnull,
  (SELECT c.collname FROM pg_catalog.pg_collation c, pg_catalog.pg_type t
   WHERE c.oid = a.attcollation AND t.oid = a.atttypid AND a.attcollation <> t.typcollation) AS attcollation,
  a.attidentity,
  a.attgenerated
FROM pg_catalog.pg_attribute a
WHERE a.attrelid = '16384' AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum;]], kind = "select", ro = true },
  { "SELECT pg_catalog.pg_get_viewdef('16390'::pg_catalog.oid, true);", kind = "select", ro = true },
  { "DECLARE _psql_cursor NO SCROLL CURSOR FOR\nSELECT * FROM big_table", kind = "declare", ro = true,
    st = { name = "_psql_cursor", with_hold = false } },
  { "FETCH FORWARD 100 FROM _psql_cursor", kind = "fetch", ro = true },
  { "CLOSE _psql_cursor", kind = "close", ro = true, st = { name = "_psql_cursor" } },

  -- pgAdmin / ORMs / frameworks
  { [[SELECT 'session_stats' AS chart_name, row_to_json(t) AS chart_data
FROM (SELECT
   (SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE datname = (SELECT datname FROM pg_catalog.pg_database WHERE oid = 5)) AS "Total",
   (SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE state = 'active' AND datname = (SELECT datname FROM pg_catalog.pg_database WHERE oid = 5))  AS "Active"
) t]], kind = "select", ro = true },
  { "select nextval ('hibernate_sequence')", kind = "select", ro = false, st = { functions = { "nextval" } } },
  { "SELECT \"users\".* FROM \"users\" WHERE \"users\".\"id\" = $1 LIMIT $2", kind = "select", ro = true },
  { "INSERT INTO \"users\" (\"name\", \"created_at\") VALUES ($1, $2) RETURNING \"id\"", kind = "insert",
    ro = false },
  { "UPDATE \"users\" SET \"name\" = $1 WHERE \"users\".\"id\" = $2", kind = "update", ro = false },
  { "DELETE FROM \"sessions\" WHERE \"sessions\".\"updated_at\" < $1", kind = "delete", ro = false },
  { "SELECT pg_try_advisory_lock(1234567890)", kind = "select", kinds = { "select", "advisory_lock" },
    ro = false, guard = "reject", guard_tx = "rewrite", st = { advisory_lock = "session" } },
  { "SELECT pg_advisory_unlock(1234567890)", kind = "select", ro = false, st = { advisory_lock = nil } },
  { "SELECT pg_advisory_lock(77431708279161)", kind = "select", kinds = { "select", "advisory_lock" }, ro = false,
    guard = "reject", guard_tx = "rewrite",
    st = { advisory_lock = "session", advisory_calls = { { name = "pg_advisory_lock", level = "session", start = 8,
      stop = 23 } } } },
  { "SELECT pg_advisory_xact_lock(42)", kind = "select", ro = false, st = { advisory_lock = "xact" } },
  { "SELECT pg_try_advisory_xact_lock_shared(1, 2)", kind = "select", ro = false, st = { advisory_lock = "xact" } },
  { "SELECT pg_advisory_lock_shared(7)", kind = "select", kinds = { "select", "advisory_lock" }, ro = false,
    guard = "reject", guard_tx = "rewrite" },
  { "SELECT pg_try_advisory_lock_shared(7)", kind = "select", kinds = { "select", "advisory_lock" }, ro = false,
    guard = "reject", guard_tx = "rewrite" },
  { "SELECT pg_catalog.pg_advisory_lock(hashtext('job:nightly'))", kind = "select",
    kinds = { "select", "advisory_lock" }, ro = false, guard = "reject", guard_tx = "rewrite" },
  { "SELECT \"pg_advisory_lock\"(1)", kind = "select", kinds = { "select", "advisory_lock" }, ro = false,
    guard = "reject", guard_tx = "rewrite" },
  { "SELECT 'pg_advisory_lock(1)'", kind = "select", ro = true, st = { advisory_lock = nil } },
  { "SELECT pg_advisory_lock_x(1)", kind = "select", ro = true, st = { advisory_lock = nil } },
  { "BEGIN; SELECT pg_advisory_lock(1); COMMIT;", kind = "begin", kinds = { "begin", "select", "commit",
    "advisory_lock" }, n = 3, ro = false, guard = "rewrite" },
  { "SELECT set_config('myapp.user_id', '42', true)", kind = "select", kinds = { "select", "set_config" }, ro = true,
    st = { set_config = { { name = "myapp.user_id", value = "42", is_local = true, start = 8 } } } },
  { "DEALLOCATE pdo_stmt_00000001", kind = "deallocate", ro = true,
    st = { name = "pdo_stmt_00000001" } },

  -- LISTEN / NOTIFY
  { "LISTEN virtual", kind = "listen", ro = false, guard = "reject", st = { name = "virtual" } },
  { "LISTEN \"Orders\"", kind = "listen", ro = false, guard = "reject", st = { name = "Orders" } },
  { "UNLISTEN *", kind = "unlisten", ro = false, st = { name = "*", all = true } },
  { "UNLISTEN mychannel", kind = "unlisten", ro = false, st = { name = "mychannel" } },
  { "NOTIFY orders, 'id=42'", kind = "notify", ro = false, st = { name = "orders" } },
  { "SELECT pg_notify('orders', 'id=42')", kind = "select", ro = false },

  -- prepared statements and cursors
  { "PREPARE get_user (int) AS SELECT * FROM users WHERE id = $1", kind = "prepare", ro = true, guard = "reject", guard_tx = "pass",
    st = { name = "get_user" } },
  { "PREPARE ins AS INSERT INTO t VALUES ($1)", kind = "prepare", ro = false, guard = "reject", guard_tx = "pass", st = { name = "ins" } },
  { "EXECUTE get_user(1)", kind = "execute", ro = false, st = { name = "get_user" } },
  { "DEALLOCATE PREPARE get_user", kind = "deallocate", ro = true, st = { name = "get_user" } },
  { "DECLARE c1 CURSOR WITH HOLD FOR SELECT * FROM orders", kind = "declare", ro = true, guard = "reject",
    st = { name = "c1", with_hold = true } },
  { "DECLARE \"Cur\" BINARY INSENSITIVE SCROLL CURSOR WITHOUT HOLD FOR SELECT 1", kind = "declare", ro = true,
    st = { name = "Cur", with_hold = false } },
  { "DECLARE c2 CURSOR FOR SELECT * FROM jobs FOR UPDATE", kind = "declare", ro = false, st = { with_hold = false } },
  { "MOVE ABSOLUTE 10 IN c1", kind = "move", ro = true },
  { "CLOSE ALL", kind = "close", ro = true, st = { all = true } },

  -- temporary objects
  { "CREATE TEMP TABLE tmp_ids (id int)", kind = "create", ro = false, guard = "reject",
    st = { temp = true, object = "table", on_commit_drop = false } },
  { "CREATE TEMPORARY TABLE t2 ON COMMIT DROP AS SELECT 1 AS x", kind = "create", ro = false,
    st = { temp = true, on_commit = "drop", on_commit_drop = true } },
  { "create temp table if not exists staging (like orders including all) on commit drop", kind = "create",
    ro = false, st = { temp = true, on_commit_drop = true } },
  { "CREATE LOCAL TEMP TABLE t3 (a int) ON COMMIT DELETE ROWS", kind = "create", ro = false, guard = "reject",
    st = { temp = true, on_commit = "delete_rows", on_commit_drop = false } },
  { "CREATE GLOBAL TEMPORARY TABLE t4 (a int) ON COMMIT PRESERVE ROWS", kind = "create", ro = false,
    guard = "reject", st = { temp = true, on_commit = "preserve_rows" } },
  { "CREATE TEMP VIEW v AS SELECT 1", kind = "create", ro = false, guard = "reject",
    st = { temp = true, object = "view" } },
  { "CREATE OR REPLACE TEMP VIEW v2 AS SELECT 1", kind = "create", ro = false, guard = "reject", st = { temp = true } },
  { "CREATE TEMP SEQUENCE s1", kind = "create", ro = false, guard = "reject", st = { temp = true, object = "sequence" } },
  { "CREATE TABLE pg_temp.scratch (a int)", kind = "create", ro = false, guard = "reject", st = { temp = true } },
  { "CREATE UNLOGGED TABLE cache (k text primary key, v text)", kind = "create", ro = false, st = { temp = false } },
  { "CREATE TABLE orders (id bigserial primary key, note text default 'on commit drop')", kind = "create",
    ro = false, st = { temp = false, on_commit_drop = false } },
  { "SELECT * INTO TEMP TABLE recent FROM orders WHERE created_at > now() - interval '1 day'", kind = "select",
    kinds = { "select", "select_into" }, ro = false, st = { into = true, temp = true } },
  { "SELECT id INTO archive_ids FROM orders", kind = "select", kinds = { "select", "select_into" }, ro = false, st = { into = true, temp = false } },
  { "SELECT id INTO pg_temp.recent FROM orders", kind = "select", kinds = { "select", "select_into" }, ro = false,
    session = true, st = { into = true, temp = true } },
  -- the temporary schema named anywhere counts for the session, as in the core's scan (a view over
  -- pg_temp.t is a temporary view; IMPORT FOREIGN SCHEMA ... INTO pg_temp makes temporary foreign tables)
  { "CREATE VIEW v AS SELECT * FROM pg_temp.t", kind = "create", ro = false, session = true,
    st = { temp = false, temp_schema = true } },
  { "IMPORT FOREIGN SCHEMA s FROM SERVER srv INTO pg_temp", kind = "import", ro = false, session = true },

  -- other session state
  { "LOAD 'auto_explain'", kind = "load", ro = false, guard = "reject", st = { name = "auto_explain" } },
  { "SET ROLE admin", kind = "set", ro = true, guard = "reject", st = { role_change = true, name = "role",
    value = "admin" } },
  { "SET LOCAL ROLE readonly", kind = "set", ro = true, st = { role_change = true, set_local = true } },
  { "SET ROLE NONE", kind = "set", ro = true, st = { role_change = true, value = "none" } },
  { "RESET ROLE", kind = "reset", ro = true, st = { role_change = true, name = "role" } },
  { "SET SESSION AUTHORIZATION 'bob'", kind = "set", ro = true, guard = "reject",
    st = { role_change = true, name = "session_authorization", value = "bob" } },
  { "SET SESSION AUTHORIZATION DEFAULT", kind = "set", ro = true, st = { role_change = true, default = true } },
  { "RESET SESSION AUTHORIZATION", kind = "reset", ro = true, st = { role_change = true } },
  { "SET LOCAL statement_timeout = '5s'", kind = "set", ro = true, st = { set_local = true, scope = "local",
    name = "statement_timeout", value = "5s" } },
  { "SET statement_timeout TO 0", kind = "set", ro = true, guard = "track", st = { value = "0" } },
  { "set statement_timeout=-1", kind = "set", ro = true, guard = "track", st = { value = "-1" } },
  { "SET lock_timeout = '1s'", kind = "set", ro = true, guard = "track" },
  { "SET search_path TO \"$user\", public", kind = "set", ro = true, guard = "track",
    st = { name = "search_path", value = "\"$user\", public" } },
  { "SET search_path = ''", kind = "set", ro = true, guard = "track", st = { value = '""' } },
  { "SET search_path = 'My Schema', public", kind = "set", ro = true, guard = "track",
    st = { value = '"My Schema", public' } },
  { "SET search_path = DEFAULT", kind = "set", ro = true, guard = "track",
    st = { default = true, settings = { { reset = "search_path" } } } },
  { "SET TIME ZONE LOCAL", kind = "set", ro = true, guard = "track",
    st = { name = "timezone", default = true, settings = { { reset = "timezone" } } } },
  { "SET TIME ZONE INTERVAL '+00:00' HOUR TO MINUTE", kind = "set", ro = false, guard = "reject",
    st = { untrackable = true } },
  { "SET SCHEMA 'app'", kind = "set", ro = true, guard = "track", st = { name = "search_path", value = "app" } },
  { "SET XML OPTION DOCUMENT", kind = "set", ro = true, guard = "track", st = { name = "xmloption", value = "document" } },
  { "SET myapp.tenant_id = '42'", kind = "set", ro = true, guard = "track",
    st = { name = "myapp.tenant_id", value = "42" } },
  { "SET work_mem = '64MB'", kind = "set", ro = true, guard = "track", st = { value = "64MB" } },
  { "SET seq_page_cost = -0.5", kind = "set", ro = true, guard = "track", st = { value = "-0.5" } },
  { "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", kind = "set", ro = true,
    st = { set_local = true, name = "transaction" } },
  { "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", kind = "set", ro = false, st = { set_local = true } },
  { "SET CONSTRAINTS ALL DEFERRED", kind = "set", ro = true, st = { set_local = true, name = "constraints" } },
  { "SET seq_page_cost FROM CURRENT", kind = "set", ro = true, st = { from_current = true } },
  -- a name whose first part is a keyword of SET is a parameter's name: SET local.x is a session SET
  { "SET local.x = 1", kind = "set", ro = true, guard = "track", session = true,
    st = { name = "local.x", value = "1", scope = "session", set_local = false } },
  { "SET transaction.x TO 2", kind = "set", ro = true, guard = "track", session = true,
    st = { name = "transaction.x", scope = "session" } },
  { "SET constraints.x = 4", kind = "set", ro = true, guard = "track", session = true,
    st = { name = "constraints.x", scope = "session" } },
  { "SET role.x = 'a'", kind = "set", ro = true, guard = "track", session = true,
    st = { name = "role.x", role_change = false } },
  { "SET LOCAL local.x = 1", kind = "set", ro = true, session = false, st = { name = "local.x", scope = "local" } },
  { "SET default_transaction_read_only = on", kind = "set", ro = false, guard = "track" },
  { "RESET search_path", kind = "reset", ro = true, guard = "track",
    st = { name = "search_path", settings = { { reset = "search_path" } } } },
  { "RESET TIME ZONE", kind = "reset", ro = true, guard = "track", st = { name = "timezone" } },
  { "reset myapp.tenant_id;", kind = "reset", ro = true, guard = "track", st = { name = "myapp.tenant_id" } },
  { "set search_path=public;", kind = "set", ro = true, guard = "track", st = { value = "public" } },

  -- quoting, comments, splitting
  { "SELECT 'it''s; fine' AS a; SELECT 2", kind = "select", n = 2, ro = true },
  { "SELECT E'it\\'s; still one' ; SELECT 2", kind = "select", n = 2, ro = true,
    stmts = { { text_start = 1, text_end = 26 }, { text_start = 30, text_end = 37 } } },
  { "SELECT $$ a;b $$, $fn$ ; $$ ; $fn$", kind = "select", ro = true },
  { "/* a /* nested; */ still comment; */ SELECT 1", kind = "select", ro = true,
    st = { text_start = 38, text_end = 45 } },
  { "-- comment; LISTEN x\nSELECT 1", kind = "select", ro = true },
  { "SELECT \"weird;name\" FROM t", kind = "select", ro = true },
  -- a U&"" name may be any function (nextval too): not certainly read-only, and the server is reset after it
  { "SELECT U&'\\0041; B' AS u, U&\"a;b\" FROM t", kind = "select", ro = false, session = true },
  { "select $1::int; select $2", kind = "select", n = 2, ro = true },
  { "SELECT 1 -- trailing; LISTEN x", kind = "select", ro = true, st = { text_end = 8 } },
  { "SELECT a$b FROM t; SELECT 1", kind = "select", n = 2, ro = true },
  { "SELECT 'foo'\n'bar'", kind = "select", ro = true },
  { "SELECT 'héllo; wörld'", kind = "select", ro = true },
  { "/* SET x = 1 */ SELECT 1", kind = "select", ro = true },
  { "SELECT 1 /* ; LISTEN x */", kind = "select", ro = true },
  { "select * from t where a = 'x' -- ; DROP TABLE t", kind = "select", ro = true },
  { "SELECT B'1010', X'FF', N'nat;ional'", kind = "select", ro = true },
  { "SELECT 1;;;SELECT 2;", kind = "select", n = 2, ro = true },
  { "(SELECT 1) UNION (SELECT 2)", kind = "select", ro = true },
  { "CREATE RULE r AS ON INSERT TO t DO ALSO (NOTIFY x; NOTIFY y)", kind = "create", ro = false },
  -- BEGIN ATOMIC opens a routine's body; a parameter or a value named begin does not, t.case and t.end are names
  { "CREATE FUNCTION f(begin int) RETURNS int AS 'select 1' LANGUAGE sql; LISTEN x", kind = "create",
    kinds = { "create", "listen" }, n = 2, ro = false, guard = "reject", session = true },
  { "CREATE FUNCTION f() RETURNS int LANGUAGE sql SET search_path = begin AS 'select 1'; LISTEN x", kind = "create",
    kinds = { "create", "listen" }, n = 2, ro = false, guard = "reject", session = true },
  { "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT t.case FROM t; END; LISTEN x",
    kind = "create", kinds = { "create", "listen" }, n = 2, ro = false, guard = "reject", session = true },
  { "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT t.end FROM t; LISTEN y; END; LISTEN x",
    kind = "create", kinds = { "create", "listen" }, n = 2, ro = false, guard = "reject", session = true },
  { "VALUES (1, 'a'), (2, 'b')", kind = "values", ro = true },
  { "TABLE users", kind = "table", ro = true },
  { "SELECT 'abc", kind = "select", ro = false, st = { incomplete = true } },
  { "", kind = "", kinds = {}, ro = false },
  { "  ;  ", kind = "", kinds = {}, ro = false },
  { "-- just a comment", kind = "", kinds = {}, ro = false },
  { "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2))",
    kind = "create", ro = false },
  { "DO $$ BEGIN PERFORM pg_advisory_lock(1); LISTEN x; END $$;", kind = "do", ro = false,
    st = { advisory_lock = nil } },
  { [[CREATE OR REPLACE FUNCTION add(a int, b int) RETURNS int LANGUAGE sql
BEGIN ATOMIC
  SELECT a + b;
  SELECT CASE WHEN a > 0 THEN 1 ELSE 0 END;
END; SELECT 2]], kind = "create", kinds = { "create", "select" }, n = 2, ro = false },
  { [[CREATE FUNCTION f() RETURNS void AS $body$
BEGIN
  SET search_path = x; LISTEN y;
END
$body$ LANGUAGE plpgsql]], kind = "create", ro = false, st = { object = "function" } },

  -- writes, locks and read-only checks
  { "WITH x AS (DELETE FROM t WHERE done RETURNING *) SELECT count(*) FROM x", kind = "with", ro = false },
  { "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) SELECT sum(n) FROM r",
    kind = "with", ro = true },
  { "SELECT id FROM jobs WHERE state = 'new' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED", kind = "select",
    ro = false, st = { locking = true } },
  { "SELECT * FROM t FOR SHARE", kind = "select", ro = false },
  { "SELECT * FROM t FOR NO KEY UPDATE OF t NOWAIT", kind = "select", ro = false },
  { "SELECT * FROM t FOR KEY SHARE", kind = "select", ro = false },
  { "SELECT substring(name from 1 for 3), now()::date FROM users", kind = "select", ro = true },
  { "SELECT count(*) FROM orders WHERE status IN ('new', 'paid')", kind = "select", ro = true },
  { "EXPLAIN ANALYZE SELECT * FROM orders", kind = "explain", ro = true },
  { "EXPLAIN (ANALYZE, BUFFERS) DELETE FROM orders", kind = "explain", ro = false },
  { "COPY orders TO STDOUT WITH (FORMAT csv)", kind = "copy", ro = true },
  { "COPY orders FROM STDIN", kind = "copy", ro = false },
  { "COPY (SELECT * FROM orders WHERE id > 10) TO STDOUT WITH CSV HEADER", kind = "copy", ro = true },
  { "COPY orders TO '/tmp/orders.csv'", kind = "copy", ro = false },
  { "VACUUM (ANALYZE) orders", kind = "vacuum", ro = false },
  { "ANALYZE orders", kind = "analyze", ro = false },
  { "TRUNCATE orders RESTART IDENTITY", kind = "truncate", ro = false },
  { "LOCK TABLE orders IN ACCESS EXCLUSIVE MODE", kind = "lock", ro = false },
  { "CALL refresh_stats()", kind = "call", ro = false },
  { "GRANT SELECT ON orders TO reporting", kind = "grant", ro = false },
  { "REVOKE ALL ON orders FROM public", kind = "revoke", ro = false },
  { "COMMENT ON TABLE orders IS 'customer orders'", kind = "comment", ro = false },
  { "ALTER TABLE orders ADD COLUMN note text", kind = "alter", ro = false },
  { "DROP TABLE IF EXISTS tmp_ids", kind = "drop", ro = false },
  { "CREATE INDEX CONCURRENTLY orders_created_idx ON orders (created_at)", kind = "create", ro = false },
  { "INSERT INTO counters (k, n) VALUES ('a', 1) ON CONFLICT (k) DO UPDATE SET n = counters.n + 1",
    kind = "insert", ro = false },
  { "MERGE INTO stock s USING delivery d ON s.item = d.item WHEN MATCHED THEN UPDATE SET qty = s.qty + d.qty",
    kind = "merge", ro = false },
  { "REFRESH MATERIALIZED VIEW CONCURRENTLY mv_sales", kind = "refresh", ro = false },
  { "SHOW search_path", kind = "show", ro = true },
  { "SHOW ALL", kind = "show", ro = true },
  { "SELECT currval('orders_id_seq')", kind = "select", ro = false },
  { "SELECT setval('orders_id_seq', 1000)", kind = "select", ro = false },
  { "SELECT lastval()", kind = "select", ro = false },
  { "SELECT txid_current()", kind = "select", ro = false },
  { "SELECT pg_is_in_recovery()", kind = "select", ro = true },
  { "SELECT pg_terminate_backend(12345)", kind = "select", ro = false },
  { "SELECT * FROM dblink('dbname=other', 'select 1') AS t(a int)", kind = "select", ro = false },
  { "SELECT lo_import('/tmp/blob')", kind = "select", ro = false },
  { "select * from pg_stat_activity where state <> 'idle'", kind = "select", ro = true },
  { "SELECT set_config('default_transaction_read_only', 'off', false)", kind = "select", kinds = { "select", "set_config" }, ro = false },
  { "SELECT 1; INSERT INTO t VALUES (1)", kind = "select", kinds = { "select", "insert" }, n = 2, ro = false },
  { "CHECKPOINT", kind = "checkpoint", ro = false },
  { "SELECT $tag$ ; $notag$ $tag$ AS x; SELECT 2", kind = "select", n = 2, ro = true },

  -- what the session scan cannot see through (tests/unit/test_sqlscan.c has the same rows): the server is
  -- reset after it whatever it did
  { "DO $$BEGIN SET search_path = evil; END$$", kind = "do", ro = false, session = true, st = { opaque = "do" } },
  { "do $$begin perform set_config('app.tenant', 'A', false); end$$", kind = "do", ro = false, session = true },
  { "DO $$BEGIN CREATE TEMP TABLE dt(a int); END$$", kind = "do", ro = false, session = true },
  { "DO $$BEGIN LISTEN ch; END$$", kind = "do", ro = false, session = true },
  { "DO $$BEGIN PERFORM pg_advisory_lock(42); END$$", kind = "do", ro = false, session = true },
  { "DO $$BEGIN SET ROLE r; END$$", kind = "do", ro = false, session = true },
  { "DO $b$BEGIN EXECUTE 'PREPARE p AS SELECT 1'; END$b$", kind = "do", ro = false, session = true },
  { "DO LANGUAGE plpgsql 'BEGIN NULL; END'", kind = "do", ro = false, session = true },
  { [[SELECT U&"\0073et_config"('app.tenant','A',false)]], kind = "select", ro = false, session = true,
    st = { opaque = "unicode identifier", set_config = nil } },
  { [[SELECT u&"pg\005fadvisory\005flock"(42)]], kind = "select", ro = false, session = true,
    st = { advisory_lock = nil } },
  { [[CREATE TABLE U&"pg\005ftemp".t(a int)]], kind = "create", ro = false, session = true, st = { temp = false } },
  { [[SELECT U&"d!0061t" UESCAPE '!' FROM t]], kind = "select", ro = false, session = true },
  { [[SELECT U&'\0041' AS a]], kind = "select", ro = true, session = false },
  { "SELECT a & b FROM t", kind = "select", ro = true, session = false },
  -- EXPLAIN ANALYZE runs its statement
  { "EXPLAIN ANALYZE CREATE TEMP TABLE t AS SELECT 1", kind = "explain", ro = false, session = true,
    st = { temp = true } },
  { "explain (analyze, buffers) create temporary table t as select 1", kind = "explain", ro = false, session = true },
  { "EXPLAIN ANALYZE VERBOSE SELECT 1 INTO TEMP t", kind = "explain", kinds = { "explain", "select_into" },
    ro = false, session = true },
  { "EXPLAIN ANALYZE CREATE TEMP TABLE t ON COMMIT DROP AS SELECT 1", kind = "explain", ro = false, session = false },
  { "EXPLAIN SELECT * FROM t", kind = "explain", ro = true, session = false },
  { "EXPLAIN (FORMAT JSON) SELECT pg_advisory_lock(1)", kind = "explain", kinds = { "explain", "advisory_lock" },
    ro = false, session = true, guard = "reject", guard_tx = "rewrite" },
  -- quoted identifiers are names, never keywords
  { [[CREATE TEMP VIEW v("on","commit","drop") AS SELECT 1, 2, 3]], kind = "create", ro = false, session = true,
    guard = "reject", st = { temp = true, on_commit_drop = false } },
  { [[CREATE TEMP TABLE t("on" int, "commit" int, "drop" int)]], kind = "create", ro = false, session = true,
    guard = "reject" },
  { [[CREATE TEMP TABLE t AS SELECT 1 AS "on", 2 AS "commit", 3 AS "drop"]], kind = "create", ro = false,
    session = true, guard = "reject" },
  { [[CREATE TEMP TABLE t (a int) ON "commit" DROP]], kind = "create", ro = false, session = true, guard = "reject" },
  { [[SELECT 1 INTO "temp" t]], kind = "select", kinds = { "select", "select_into" }, ro = false, session = false },
  { [[SELECT "set_config"('a', 'b', false)]], kind = "select", kinds = { "select", "set_config" }, ro = true,
    session = true },
  { [[SELECT "pg_advisory_lock"(1)]], kind = "select", kinds = { "select", "advisory_lock" }, ro = false,
    session = true, guard = "reject", guard_tx = "rewrite" },
  { [[CREATE TABLE "pg_temp".t (a int)]], kind = "create", ro = false, session = true, guard = "reject" },
  { [[RESET "search_path"]], kind = "reset", ro = true, session = true, guard = "track", st = { name = "search_path" } },
  { [[DECLARE c CURSOR "with" HOLD FOR SELECT 1]], kind = "declare", ro = true, session = false },
  -- and the plain statements stay clean
  { "SELECT abalance FROM pgbench_accounts WHERE aid = 5", kind = "select", ro = true, session = false },
  { "SET LOCAL search_path TO a", kind = "set", ro = true, session = false },
}

describe("classify corpus", function()
  local T = H.T
  local guard_gen = T.load({ H.policy("guard.lua", 'return require("policies.transaction_guard") {}') },
    { searcher_paths = H.SEARCHER })

  it("has at least 100 real-world statements", function()
    assert.is_true(#CORPUS >= 100, "corpus has " .. #CORPUS .. " rows")
  end)

  for i, row in ipairs(CORPUS) do
    local sql = row[1]
    local label = ("#%d %q"):format(i, #sql > 70 and sql:sub(1, 67) .. "..." or sql)
    it(label, function()
      local stmts = classify.statements(sql)
      assert.are.equal(row.kind, classify.kind(sql), "kind")
      assert.are.same(row.kinds or (row.kind ~= "" and { row.kind } or {}), classify.kinds(sql), "kinds")
      assert.are.equal(row.ro, classify.read_only(sql), "read_only")
      assert.are.equal(row.n or 1, #stmts, "statement count")
      local function check_fields(st, want, which)
        for k, v in pairs(want) do
          assert.are.same(v, st[k], which .. "." .. k)
        end
      end
      if row.st then
        check_fields(stmts[1], row.st, "statement 1")
      end
      if row.session ~= nil then
        -- what the C scan says of the same text: does the server need its reset before the next client?
        local any = false
        for j = 1, #stmts do
          any = any or classify.changes_session(stmts[j])
        end
        assert.are.equal(row.session, any, "changes session state")
      end
      if row.stmts then
        for j, want in ipairs(row.stmts) do
          check_fields(stmts[j], want, "statement " .. j)
        end
      end
      -- what the transaction guard makes of it, outside and inside a transaction
      local function outcome(in_tx)
        local client = T.client { pool_mode = "transaction", in_transaction = in_tx }
        local d, err = guard_gen:on_query(client, T.query(sql))
        assert.is_nil(err)
        if not d then
          return nil
        end
        return d.reject and "reject" or d.rewrite and "rewrite" or d.track and "track"
      end
      if sql ~= "" then
        assert.are.equal(row.guard, outcome(false), "guard outside a transaction")
        local want_tx = row.guard_tx
        if want_tx == nil then
          want_tx = row.guard
        elseif want_tx == "pass" then
          want_tx = nil
        end
        assert.are.equal(want_tx, outcome(true), "guard inside a transaction")
      end
    end)
  end
end)

describe("classify details", function()
  it("gives text positions that cut the statements out of the text", function()
    local sql = "  SELECT 1 ;\n-- x\n UPDATE t SET a = ';' ; "
    local stmts = classify.statements(sql)
    assert.are.equal(2, #stmts)
    assert.are.equal("SELECT 1", classify.text(sql, stmts[1]))
    assert.are.equal("UPDATE t SET a = ';'", classify.text(sql, stmts[2]))
  end)

  it("marks the last statement incomplete when the text was truncated", function()
    local stmts = classify.statements("SELECT 1; SELECT * FROM t WHERE a = 1", { truncated = true })
    assert.is_nil(stmts[1].incomplete)
    assert.is_true(stmts[2].incomplete)
    assert.is_false(stmts[2].read_only)
    assert.is_true(stmts[1].read_only)
    assert.is_false(classify.read_only("SELECT 1", { truncated = true }))
  end)

  it("reads unterminated comments, identifiers and dollar quotes as incomplete", function()
    assert.is_true(classify.statements("SELECT 1 /* open")[1].incomplete)
    assert.is_true(classify.statements('SELECT "open')[1].incomplete)
    assert.is_true(classify.statements("SELECT $x$ open")[1].incomplete)
  end)

  it("decodes E'' escapes in SET values", function()
    local st = classify.statements([[SET app.x = E'a\tb\\c\'d\x41\101\u00e9']])[1]
    assert.are.equal("a\tb\\c'dAA\195\169", st.value)
  end)

  it("splits operators as PostgreSQL does (x=-1 is x = -1)", function()
    local t, _, _, v, n = classify.lex("a=-1 b<>-2 c@-3")
    assert.are.same({ "word", "op", "op", "number", "word", "op", "op", "number", "word", "op", "number" },
      { unpack(t, 1, n) })
    assert.are.same({ "=", "-" }, { v[2], v[3] })
    assert.are.same("@-", v[10])
  end)

  it("does not take a comment start inside an operator", function()
    local _, _, _, v, n = classify.lex("a +-- c\n b */* c */ d")
    assert.are.same({ "a", "+", "b", "*", "d" }, { unpack(v, 1, n) })
  end)

  it("records function names, unqualified and lowercased", function()
    local st = classify.statements("SELECT pg_catalog.NOW(), Lower(x), \"MyFn\"(1), count(*) FROM t WHERE a IN (1)")[1]
    assert.are.same({ "now", "lower", "MyFn", "count" }, st.functions)
  end)

  it("knows set_config arguments that are not literals", function()
    local st = classify.statements("SELECT set_config(k, v, false), set_config('a', 'b', is_local)")[1]
    assert.are.same({ { start = 8, is_local = false }, { start = 33, name = "a", value = "b" } }, st.set_config)
  end)

  it("treats LOCAL and SESSION as parameter names when they are set", function()
    local st = classify.statements("SET local = 1")[1]
    assert.are.equal("local", st.name)
    assert.are.equal("session", st.scope)
  end)

  it("rejects non-string input", function()
    assert.has_error(function()
      classify.statements(nil)
    end, "classify.statements: sql must be a string")
  end)
end)

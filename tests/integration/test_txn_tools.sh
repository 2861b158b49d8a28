#!/usr/bin/env bash
# Real tools through every pool mode, with the transaction guard loaded: pgbench -i, pg_dump (plain, -Fc,
# -Fd -j 2), pg_restore (-j 2), a psql script with \copy and \gset. Each works, or is refused with a message
# that says which mode to use (the README's table of tools and pool modes).
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init txn_tools

su=postgres sp=$MB_PG_PASSWORD
src=mb_tools_src dst=mb_tools_dst
pg_super_psql -d postgres -c "DROP DATABASE IF EXISTS $src" -c "DROP DATABASE IF EXISTS $dst" \
	-c "CREATE DATABASE $src" >/dev/null 2>&1
export PGPASSWORD=$sp PGCONNECT_TIMEOUT=10
direct=(-h 127.0.0.1 -p "$MB_PG_PORT" -U "$su")
# the source database: pgbench's tables (made directly) and a few objects pg_dump has to prepare queries for
timeout 120 "$PG_BINDIR/pgbench" -q -i -I dtGvp -s 1 "${direct[@]}" "$src" >"$T_DIR/init.log" 2>&1 ||
	mb_diag "pgbench -i directly failed: $(tail -n 3 "$T_DIR/init.log")"
# small enough to go through tiny buffers quickly: every dump and restore below carries all of it
timeout 60 "$PG_BINDIR/psql" -X -q "${direct[@]}" -d "$src" -v ON_ERROR_STOP=1 >/dev/null <<'EOF'
DELETE FROM pgbench_accounts WHERE aid > 3000;
UPDATE pgbench_accounts SET abalance = aid % 97;
VACUUM FULL pgbench_accounts;
CREATE SCHEMA app;
CREATE TABLE app.items (id serial PRIMARY KEY, name text NOT NULL, price numeric(10,2), tags text[]);
INSERT INTO app.items (name, price, tags) SELECT 'item ' || g, g * 1.5, ARRAY['a', 'b'] FROM generate_series(1, 500) g;
CREATE VIEW app.cheap AS SELECT * FROM app.items WHERE price < 10;
CREATE FUNCTION app.total() RETURNS numeric LANGUAGE sql AS 'SELECT sum(price) FROM app.items';
GRANT SELECT ON app.items TO PUBLIC;
GRANT SELECT (name) ON app.items TO PUBLIC;
EOF
CHECK="SELECT (SELECT count(*) FROM pgbench_accounts), (SELECT sum(abalance) FROM pgbench_accounts), \
(SELECT count(*) FROM app.items), (SELECT app.total()), (SELECT count(*) FROM app.cheap)"
want_data=$(pg_super_psql -d "$src" -c "$CHECK")
timeout 120 "$PG_BINDIR/pg_dump" "${direct[@]}" -d "$src" -f "$T_DIR/direct.sql" 2>"$T_DIR/direct.err" ||
	mb_diag "pg_dump directly failed: $(cat "$T_DIR/direct.err")"
timeout 120 "$PG_BINDIR/pg_dump" "${direct[@]}" -d "$src" -Fc -f "$T_DIR/direct.fc" 2>"$T_DIR/direct.err" ||
	mb_diag "pg_dump -Fc directly failed: $(cat "$T_DIR/direct.err")"
# a plain dump without its \restrict key (a new random one each run)
unkeyed() { grep -v '^\\\(un\)\?restrict ' "$1"; }

# outcome NAME CMD...: "NAME: ok", or "NAME: refused: <first error line>" (nothing when NAME is not in $ONLY)
outcome() {
	local name=$1 err
	shift
	[[ " $ONLY " == *" $name "* ]] || return 1
	if "$@" >"$T_DIR/$name.out" 2>"$T_DIR/$name.err"; then
		echo "$name: ok"
	else
		err=$(grep -m 1 -E 'ERROR|FATAL|error:' "$T_DIR/$name.err" | sed 's/^.*\(ERROR\|FATAL\|error\): *//')
		echo "$name: refused: ${err:-exit status $?}"
	fi
}

fresh_dst() {
	# the pooler may hold idle servers on it: they are cut off (it drops them)
	pg_super_psql -d postgres -c "DROP DATABASE IF EXISTS $dst WITH (FORCE)" -c "CREATE DATABASE $dst" >/dev/null 2>&1
}

# tools MODE: every tool through a pool of that mode, one outcome line each
tools() {
	local p=(-h 127.0.0.1 -p "$MB_PORT" -U "$su") t=timeout\ 120
	rm -rf "$T_DIR/dump.fd" "$T_DIR"/dump.*
	fresh_dst
	pg_super_psql -d postgres -c "DROP DATABASE IF EXISTS mb_tools_bench WITH (FORCE)" \
		-c "CREATE DATABASE mb_tools_bench" >/dev/null 2>&1
	# its default steps, with the data generated on the server (client-side COPY is what \copy below does)
	outcome pgbench_init $t "$PG_BINDIR/pgbench" -q -i -I dtGvp -s 1 "${p[@]}" mb_tools_bench
	outcome pg_dump $t "$PG_BINDIR/pg_dump" "${p[@]}" -d "$src" -f "$T_DIR/dump.sql"
	if [ -s "$T_DIR/dump.sql" ] && [[ " $ONLY " == *" pg_dump "* ]]; then
		if [ "$(unkeyed "$T_DIR/dump.sql")" = "$(unkeyed "$T_DIR/direct.sql")" ]; then
			echo "pg_dump: same as direct"
		else
			echo "pg_dump: differs from direct: $(diff <(unkeyed "$T_DIR/direct.sql") <(unkeyed "$T_DIR/dump.sql") |
				head -n 12 | tr '\n' ' ')"
		fi
	fi
	outcome pg_dump_fc $t "$PG_BINDIR/pg_dump" "${p[@]}" -d "$src" -Fc -f "$T_DIR/dump.fc"
	outcome pg_dump_j2 $t "$PG_BINDIR/pg_dump" "${p[@]}" -d "$src" -Fd -j 2 -f "$T_DIR/dump.fd"
	[ -s "$T_DIR/dump.fd/toc.dat" ] && [[ " $ONLY " == *" pg_dump_j2 "* ]] &&
		echo "pg_dump_j2: $(ls "$T_DIR/dump.fd" | grep -c '\.dat') data files"
	# restores (of the direct dumps: pg_restore is checked whatever pg_dump gave here)
	outcome pg_restore $t "$PG_BINDIR/pg_restore" "${p[@]}" -d "$dst" --exit-on-error "$T_DIR/direct.fc"
	[ -e "$T_DIR/pg_restore.err" ] &&
		echo "pg_restore: data $([ "$(pg_super_psql -d "$dst" -c "$CHECK" 2>&1)" = "$want_data" ] && echo same || echo differs)"
	fresh_dst
	outcome pg_restore_j2 $t "$PG_BINDIR/pg_restore" "${p[@]}" -d "$dst" -j 2 --exit-on-error "$T_DIR/direct.fc"
	[ -e "$T_DIR/pg_restore_j2.err" ] &&
		echo "pg_restore_j2: data $([ "$(pg_super_psql -d "$dst" -c "$CHECK" 2>&1)" = "$want_data" ] && echo same || echo differs)"
	fresh_dst
	outcome psql_restore $t "$PG_BINDIR/psql" -X -q "${p[@]}" -d "$dst" -v ON_ERROR_STOP=1 -f "$T_DIR/direct.sql"
	[ -e "$T_DIR/psql_restore.err" ] &&
		echo "psql_restore: data $([ "$(pg_super_psql -d "$dst" -c "$CHECK" 2>&1)" = "$want_data" ] && echo same || echo differs)"
	outcome psql_copy_gset $t "$PG_BINDIR/psql" -X -q -A -t "${p[@]}" -d "$src" -v ON_ERROR_STOP=1 -f "$T_DIR/script.sql"
	[ -e "$T_DIR/psql_copy_gset.err" ] && echo "psql_copy_gset: $(tr '\n' ' ' <"$T_DIR/psql_copy_gset.out")"
	rm -f "$T_DIR"/*.err "$T_DIR"/*.out
	true
}

cat >"$T_DIR/script.sql" <<EOF
\\copy (SELECT id, name, price FROM app.items WHERE id <= 20 ORDER BY id) TO '$T_DIR/items.csv' CSV
BEGIN;
CREATE TEMP TABLE copied (id int, name text, price numeric) ON COMMIT DROP;
\\copy copied FROM '$T_DIR/items.csv' CSV
SELECT count(*) AS n, sum(price) AS total FROM copied \\gset
COMMIT;
\\echo copied :n rows, total :total
SELECT max(id) AS top FROM app.items \\gset
SELECT name FROM app.items WHERE id = :top;
EOF
mb_chown_pg "$T_DIR"
chmod 777 "$T_DIR"

start_mode() {
	mb_reset
	mb_policy_copy "$2"
	mb_db "$src" "host=127.0.0.1 port=$MB_PG_PORT dbname=$src pool_size=4"
	mb_db "$dst" "host=127.0.0.1 port=$MB_PG_PORT dbname=$dst pool_size=4"
	mb_db mb_tools_bench "host=127.0.0.1 port=$MB_PG_PORT dbname=mb_tools_bench pool_size=4"
	mb_user "$su" "$sp"
	mb_set auth_type scram-sha-256
	mb_set pool_mode "$1"
	mb_set policy_file "$T_DIR/$2"
	mb_start_or_bail
}

works='pgbench_init: ok
pg_dump: ok
pg_dump: same as direct
pg_dump_fc: ok
pg_dump_j2: ok
pg_dump_j2: 6 data files
pg_restore: ok
pg_restore: data same
pg_restore_j2: ok
pg_restore_j2: data same
psql_restore: ok
psql_restore: data same
psql_copy_gset: ok
psql_copy_gset: copied 20 rows, total 315.00 item 500 '
# the lines of $works for the tools in $ONLY
expected() { grep -E "^($(tr ' ' '|' <<<"$ONLY")):" <<<"$works"; }
no_tx='transaction blocks not allowed in statement pooling mode'
ALL="pgbench_init pg_dump pg_dump_fc pg_dump_j2 pg_restore pg_restore_j2 psql_restore psql_copy_gset"

# transaction mode, every tool (the README's table; the other modes are checked on fewer tools, so that the
# test stays short with tiny buffers too)
start_mode transaction guard.lua
ONLY=$ALL
mb_is "$(tools)" "$(expected)" "transaction mode, guard loaded: pgbench -i, pg_dump (plain = a direct dump, -Fc, \
-Fd -j 2), pg_restore (and -j 2), a plain dump through psql, psql with \\copy and \\gset all work"
start_mode session guard.lua
ONLY="pgbench_init pg_dump pg_restore_j2 psql_copy_gset"
mb_is "$(tools)" "$(expected)" "session mode, guard loaded: pgbench -i, pg_dump, pg_restore -j 2, psql work"
start_mode statement guard.lua
ONLY="pgbench_init pg_dump pg_restore pg_restore_j2 psql_copy_gset"
mb_is "$(tools)" "pgbench_init: refused: $no_tx
pg_dump: refused: $no_tx
pg_restore: ok
pg_restore: data same
pg_restore_j2: refused: $no_tx
pg_restore_j2: data differs
psql_copy_gset: refused: $no_tx
psql_copy_gset: " "statement mode: what needs a transaction block is refused as PgBouncer refuses it; pg_restore \
without -j works"
# with check_set_config the guard refuses pg_dump's set_config(name, ..., false) FROM pg_settings, saying where to go
start_mode transaction guard_check.lua
ONLY="pg_dump pg_restore_j2 psql_copy_gset"
out=$(tools)
refusal=$(sed -n 's/^pg_dump: refused: //p' <<<"$out")
mb_like "$refusal" "non-literal name or value .*tools that set parameters this way \(pg_dump\) need a session-mode pool" \
	"transaction mode, check_set_config: pg_dump is refused with a message that names the session mode"
ONLY="pg_restore_j2 psql_copy_gset"
mb_is "$(grep -v '^pg_dump' <<<"$out")" "$(expected)" \
	"transaction mode, check_set_config: pg_restore -j 2 and psql still work"
mb_test_done

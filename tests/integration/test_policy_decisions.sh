#!/usr/bin/env bash
# Policy decisions on statements: a reject outside a transaction leaves the connection usable, a reject inside
# one makes COMMIT report ROLLBACK (nothing is committed), a rejected Parse skips to Sync, and a rewrite is
# what PostgreSQL executes (log_statement=all on a dedicated database, and a table side effect).
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init policy_decisions

mb_tool policy_tool PTOOL
pt() { timeout 60 "$PTOOL" "$@" 2>&1; }

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
pg_super_psql -d postgres -c "DROP DATABASE IF EXISTS mb_rw" >/dev/null 2>&1
pg_super_psql -d postgres -c "CREATE DATABASE mb_rw" >/dev/null
pg_super_psql -d postgres -c "ALTER DATABASE mb_rw SET log_statement = 'all'" >/dev/null
pg_super_psql -d mb_rw >/dev/null <<-SQL
	CREATE TABLE dec_t (x int);
	CREATE TABLE rw_side (note text, at timestamptz DEFAULT now());
	GRANT ALL ON dec_t, rw_side TO PUBLIC;
SQL
mb_policy_copy decide.lua
mb_pgdb "$MB_DB"
mb_pgdb mb_rw "" mb_rw
mb_pgdb mb_rw_sess "pool_mode=session" mb_rw
mb_pgdb mb_rw_two "pool_size=2" mb_rw
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_set pool_mode transaction
mb_set default_pool_size 4
mb_set max_prepared_statements 100
mb_set policy_file "$T_DIR/decide.lua"
mb_start_or_bail -v

c=$(mb_connstr "$su" "$sp" mb_rw)
rows() { pg_super_psql -d mb_rw -c "SELECT count(*) FROM dec_t"; }

# --- outside a transaction: ErrorResponse + ReadyForQuery, the connection stays usable
out=$(pt "$c" "Q:SELECT 'mb_forbidden'" "Q:SELECT 'next'" "X:SELECT 'mb_denied'" "X:SELECT 'next ext'")
mb_is "$out" $'ERROR 42501 mb_forbidden is not allowed here\nnext\nERROR 0A000 mb_denied by policy\nnext ext' \
	"reject outside a transaction: the policy's SQLSTATE (or 0A000), and the connection goes on (simple, extended)"
# a SELECT in parentheses is a select for query_kinds: the policy is called for it
out=$(pt "$c" "Q:(SELECT 'mb_forbidden') UNION ALL (SELECT 'x')" "X:((SELECT 'mb_denied'))" "Q:SELECT 'next'")
mb_is "$out" $'ERROR 42501 mb_forbidden is not allowed here\nERROR 0A000 mb_denied by policy\nnext' \
	"(SELECT ...) reaches a policy that asks for select (simple, extended)"

# --- inside an explicit transaction (psql): the error aborts the transaction, COMMIT reports ROLLBACK
for db in mb_rw mb_rw_sess; do
	pg_super_psql -d mb_rw -c "TRUNCATE dec_t" >/dev/null
	PGPASSWORD=$sp timeout 60 "$PG_BINDIR/psql" -X -A -t -v ON_ERROR_STOP=0 -h 127.0.0.1 -p "$MB_PORT" -U "$su" \
		-d "$db" >"$T_DIR/psql.out" 2>"$T_DIR/psql.err" <<-SQL
		BEGIN;
		INSERT INTO dec_t VALUES (1);
		INSERT INTO dec_t VALUES (2);
		SELECT 'mb_forbidden';
		INSERT INTO dec_t VALUES (3);
		COMMIT;
		SELECT 'after';
	SQL
	mb_is "$(tr '\n' ' ' <"$T_DIR/psql.out")" "BEGIN INSERT 0 1 INSERT 0 1 ROLLBACK after " \
		"$db: psql shows ROLLBACK for the COMMIT of a transaction with a rejected statement"
	mb_like "$(cat "$T_DIR/psql.err")" 'ERROR:  mb_forbidden is not allowed here' "$db: psql shows the policy's error"
	mb_like "$(cat "$T_DIR/psql.err")" 'current transaction is aborted' \
		"$db: the next statement finds the server's transaction aborted"
	mb_is "$(rows)" 0 "$db: rows inserted before the reject are not committed"
done

# --- the same with the extended protocol: a rejected Parse inside a transaction
pg_super_psql -d mb_rw -c "TRUNCATE dec_t" >/dev/null
out=$(pt "$c" "Q:BEGIN" "X:INSERT INTO dec_t VALUES (1)" "X:SELECT 'mb_forbidden'" "X:INSERT INTO dec_t VALUES (2)" \
	"Q:COMMIT" "X:SELECT 'after'")
mb_is "$out" $'CMD BEGIN\nCMD INSERT 0 1\nERROR 42501 mb_forbidden is not allowed here\nERROR 25P02 current transaction is aborted, commands ignored until end of transaction block\nCMD ROLLBACK\nafter' \
	"extended: a rejected Parse in a transaction aborts it, COMMIT reports ROLLBACK"
mb_is "$(rows)" 0 "extended: nothing committed"
# rejected inside a transaction that the Query itself opened
out=$(pt "$c" "Q:BEGIN; INSERT INTO dec_t VALUES (7)" "Q:INSERT INTO dec_t VALUES (8); SELECT 'mb_forbidden'" "Q:COMMIT")
mb_is "$out" $'CMD INSERT 0 1\nERROR 42501 mb_forbidden is not allowed here\nCMD ROLLBACK' \
	"multi-statement Query with a rejected statement in a transaction: COMMIT reports ROLLBACK"
mb_is "$(rows)" 0 "multi-statement: nothing committed"

# --- pipelines: a rejected Parse discards everything up to Sync, as PostgreSQL does
out=$(pt "$c" PB "PQ:SELECT 'mb_forbidden'" "PQ:SELECT 2" PS "PQ:SELECT 3" PS PE "Q:SELECT 4")
mb_is "$out" $'ERROR 42501 mb_forbidden is not allowed here\nABORTED\nSYNC\n3\nSYNC\n4' \
	"pipeline, reject of the first Parse: the rest up to Sync is skipped, the next batch runs"
out=$(pt "$c" PB "PQ:INSERT INTO dec_t VALUES (4)" "PQ:SELECT 'mb_forbidden'" "PQ:INSERT INTO dec_t VALUES (5)" PS \
	"PQ:INSERT INTO dec_t VALUES (6)" PS PE)
mb_is "$out" $'CMD INSERT 0 1\nERROR 42501 mb_forbidden is not allowed here\nABORTED\nSYNC\nCMD INSERT 0 1\nSYNC' \
	"pipeline, reject after an INSERT: the implicit transaction fails, the next one runs"
mb_is "$(pg_super_psql -d mb_rw -c "SELECT string_agg(x::text, ',' ORDER BY x) FROM dec_t")" 6 \
	"pipeline: the INSERT before the reject is rolled back with its implicit transaction, the later one kept"

# --- rewrite: PostgreSQL executes the rewritten text (log_statement = all on mb_rw) and leaves its side effect
pglog=$MB_IT_ROOT/pg/postgres.log
start=$(($(wc -l <"$pglog") + 1))
out=$(pt "$c" "Q:SELECT 'mb_rewrite_me'" "XP:SELECT 'mb_rewrite_param', \$1::text|abc")
mb_is "$out" $'rewritten\nrewritten:abc' "rewrite: the client gets the rewritten statements' results (simple, extended)"
mb_is "$(pg_super_psql -d mb_rw -c "SELECT count(*) FROM rw_side WHERE note = 'written by the rewrite'")" 1 \
	"rewrite: the side effect of the rewritten statement is in the table"
sleep 0.3
log=$(tail -n +"$start" "$pglog")
mb_like "$log" "statement: INSERT INTO rw_side \(note\) VALUES \('written by the rewrite'\) RETURNING 'rewritten'" \
	"rewrite (simple): PostgreSQL logged the rewritten statement"
mb_like "$log" "execute <unnamed>: SELECT 'rewritten:' \|\| \\\$1::text" \
	"rewrite (extended): PostgreSQL logged the rewritten Parse"
mb_is "$(grep -c 'mb_rewrite_' <<<"$log")" 0 "rewrite: the original text never reached PostgreSQL"

# a rewritten named statement stays rewritten when the pooler prepares it again on another server:
# A prepares s1 on S1 and runs it; X holds S1 in a transaction; A runs s1 again, now on S2
c2=$(mb_connstr "$su" "$sp" mb_rw_two)
start=$(($(wc -l <"$pglog") + 1))
# (X has 3 s to log in and take S1; on a loaded machine a second was not always enough)
mb_bg "$T_DIR/prep.out" "$PTOOL" "$c2" "P:s1:SELECT 'mb_rewrite_me'" "E:s1" "Q:SELECT pg_backend_pid()" "SLEEP:3" \
	"E:s1" "Q:SELECT pg_backend_pid()"
prep=$MB_BG_PID
mb_wait_line "$T_DIR/prep.out" '^[0-9]+$' 10
out_x=$(pt "$c2" "Q:BEGIN" "Q:SELECT pg_backend_pid()" "SLEEP:4" "Q:COMMIT")
mb_wait_exit "$prep" 10
p1=$(sed -n 3p "$T_DIR/prep.out")
mb_is "$(sed -n 2p <<<"$out_x")" "$p1" "named statement: X held the server A prepared s1 on"
mb_is "$(sed -n '2p;4p' "$T_DIR/prep.out" | tr '\n' ' ')" "rewritten rewritten " \
	"named statement: both executions of s1 ran the rewritten text"
p2=$(sed -n 5p "$T_DIR/prep.out")
if [ -n "$p2" ] && [ "$p2" != "$p1" ]; then
	mb_ok "named statement: the second execution ran on another server"
else
	mb_not_ok "named statement: the second execution ran on another server" "$(cat "$T_DIR/prep.out")"
fi
sleep 0.3
mb_is "$(tail -n +"$start" "$pglog" | grep -c 'mb_rewrite_me')" 0 \
	"named statement: the original text never reached PostgreSQL, on either server"

# --- a rewrite of a FunctionCall (no text to replace) must not reach PostgreSQL as a garbled FunctionCall
oid_pl=$(pg_super_psql -d mb_rw -c "SELECT 'int4pl(int4,int4)'::regprocedure::oid")
out=$(pt "$c" "FN:$oid_pl:20:22" "Q:SELECT 'after'")
mb_like "$(tr '\n' '|' <<<"$out")" '^(ERROR 0A000 [^|]*|FN 42)\|after\|$' \
	"rewrite of a FunctionCall: refused by the pooler (0A000) or ignored, never sent as a bogus call"

mb_check_healthy
mb_test_done

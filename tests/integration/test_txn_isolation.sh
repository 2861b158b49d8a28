#!/usr/bin/env bash
# Transaction pooling isolation: session state one client leaves on a server is gone before the next client
# gets it (server_reset_query on a dirty server), and a clean server is handed on with no reset round trip.
# Server-side statements are counted in PostgreSQL's log (log_statement=all on a database of our own).
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init txn_isolation

mb_tool txn_tool TXN_TOOL

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
iso_db=mb_txn_iso
pglog=$MB_IT_ROOT/pg/postgres.log
if [ "$(pg_super_psql -d postgres -c "SELECT count(*) FROM pg_database WHERE datname = '$iso_db'")" = 0 ]; then
	pg_super_psql -d postgres -c "CREATE DATABASE $iso_db OWNER $su" >/dev/null
fi
pg_super_psql -d postgres >/dev/null <<-EOF
	ALTER DATABASE $iso_db SET log_statement = 'all';
	DO \$\$ BEGIN
		IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mb_txn_other') THEN
			CREATE ROLE mb_txn_other NOLOGIN;
		END IF;
	END \$\$;
	GRANT mb_txn_other TO $su;
EOF

mb_pgdb "$iso_db" "pool_size=1" "$iso_db"
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_set pool_mode transaction
mb_set track_session_set 0	# plain SETs dirty the server too (the default, tracking them, is checked at the end)
mb_start_or_bail
c=$(mb_connstr "$su" "$sp" "$iso_db")

# statements PostgreSQL logged for backend PID since log line FROM (texts only)
logged_since() { tail -n +"$(($2 + 1))" "$pglog" | sed -n "s/^.*\[$1\] LOG:  statement: //p"; }
log_lines() { wc -l <"$pglog"; }
discards() { logged_since "$1" "$2" | grep -c '^DISCARD ALL$'; }

pid=$(pqt backend-pid "$c" 2>&1)
mb_like "$pid" '^[0-9]+$' "the pool's one server has a backend pid"
if ! grep -q "\[$pid\] LOG:  statement: SELECT pg_backend_pid()" "$pglog"; then
	mb_not_ok "PostgreSQL logs statements of $iso_db with the backend pid" "$(tail -n 5 "$pglog")"
	mb_test_done
fi

# ---- clean clients: the server goes from one to the next with no statement of the pooler in between
mark=$(log_lines)
out=$(tt <<EOF 2>&1
open a $c
open b $c
q a SELECT 'a1'
q b SELECT 'b1'
q a BEGIN
q a SET LOCAL statement_timeout = '1s'
q a SELECT 'a2'
q a COMMIT
q b SELECT 'b2', pg_backend_pid()
close a
q b SELECT 'b3'
EOF
)
mb_is "$(lines_of "$out" b | tail -n 2)" "b2|$pid"$'\nb3' "clean clients share the one server"
mb_is "$(logged_since "$pid" "$mark" | tr '\n' ';')" \
	"SELECT 'a1';SELECT 'b1';BEGIN;SET LOCAL statement_timeout = '1s';SELECT 'a2';COMMIT;SELECT 'b2', pg_backend_pid();SELECT 'b3';" \
	"clean server handed from client to client with no reset (PostgreSQL saw only the clients' statements)"

# ---- dirty clients: STATEMENT(S) by client a, which then disconnects (or, with DIRTY_STAY=1, stays
# connected), then client b checks on the same server.
# dirty NAME CHECK-SQL EXPECTED STATEMENT...
dirty() {
	local name=$1 check=$2 expected=$3 mark out s
	shift 3
	mark=$(log_lines)
	out=$(
		{
			echo "open a $c"
			echo "open b $c"
			for s in "$@"; do echo "$s"; done
			[ -z "${DIRTY_STAY:-}" ] && echo "close a"
			echo "q b SELECT pg_backend_pid()"
			echo "q b $check"
			[ -n "${DIRTY_STAY:-}" ] && echo "close a"
			echo "q b SELECT 'next'"
		} | tt 2>&1
	)
	if grep -q ERROR <<<"$out"; then
		mb_diag "$name: $(grep ERROR <<<"$out")"
	fi
	mb_is "$(lines_of "$out" b | grep -v connected | tr '\n' ';')" "$pid;$expected;next;" \
		"$name: the next client on the same server sees nothing of it"
	mb_is "$(discards "$pid" "$mark")" 1 "$name: the server got exactly one DISCARD ALL"
}

dirty "SET statement_timeout" "SHOW statement_timeout" 0 "q a SET statement_timeout = '1234ms'"
DIRTY_STAY=1 dirty "SET statement_timeout, client stays connected" "SHOW statement_timeout" 0 \
	"q a SET statement_timeout = '1234ms'"
DIRTY_STAY=1 dirty "LISTEN, client stays connected" "SELECT count(*) FROM pg_listening_channels()" 0 \
	"q a LISTEN txn_chan"
dirty "SET via extended protocol" "SHOW statement_timeout" 0 "x a SET statement_timeout = '2345ms'"
dirty "SET after another statement in one Query" "SHOW search_path" '"$user", public' \
	"q a SELECT 1; SET search_path = pg_catalog"
dirty "set_config(..., false)" "SHOW work_mem" 4MB "q a SELECT set_config('work_mem', '77MB', false)"
dirty "LISTEN" "SELECT count(*) FROM pg_listening_channels()" 0 "q a LISTEN txn_chan"
dirty "SET ROLE" "SELECT current_user" "$su" "q a SET ROLE mb_txn_other"
dirty "CREATE TEMP TABLE" "SELECT to_regclass('pg_temp.txn_tmp') IS NULL" t "q a CREATE TEMP TABLE txn_tmp (x int)"
DIRTY_STAY=1 dirty "SELECT INTO TEMP" "SELECT to_regclass('pg_temp.txn_into') IS NULL" t \
	"q a SELECT 1 AS x INTO TEMP txn_into"
DIRTY_STAY=1 dirty "CREATE TABLE pg_temp.x" "SELECT to_regclass('pg_temp.txn_qual') IS NULL" t \
	"q a CREATE TABLE pg_temp.txn_qual (x int)"
dirty "SQL PREPARE" "SELECT count(*) FROM pg_prepared_statements" 0 "q a PREPARE txn_p AS SELECT 1"
dirty "advisory lock" "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'" 0 \
	"q a SELECT pg_advisory_lock(4242)"
dirty "DECLARE ... WITH HOLD" "SELECT count(*) FROM pg_cursors" 0 "q a BEGIN" \
	"q a DECLARE txn_cur CURSOR WITH HOLD FOR SELECT 1" "q a COMMIT"
dirty "SET application_name" "SELECT current_setting('application_name')" "" "q a SET application_name = 'leak'"

# a client that disconnects inside a transaction after LISTEN and a temp table: its server must not be reused
# as it is (rolled back and reset, or closed)
out=$(tt <<EOF 2>&1
open a $c
open b $c
q a BEGIN
q a LISTEN txn_chan2
q a CREATE TEMP TABLE txn_tmp2 (x int)
close a
sleep 0.2
q b SELECT count(*) FROM pg_listening_channels()
q b SELECT to_regclass('pg_temp.txn_tmp2') IS NULL
q b SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in%'
EOF
)
mb_is "$(lines_of "$out" b | grep -v connected | tr '\n' ';')" "0;t;0;" \
	"a client gone inside a transaction leaves no LISTEN, temp table or open transaction behind"

# a session advisory lock left behind would block everyone else: another session can take it now
out=$(pg_super_psql -d "$iso_db" -c "SELECT pg_try_advisory_lock(4242)")
mb_is "$out" t "the advisory lock is really gone (another session takes it)"

# ---- server_reset_query_always = 1: even a clean server is reset between clients
mb_set server_reset_query_always 1
mb_start_or_bail
pid=$(pqt backend-pid "$c" 2>&1)
mark=$(log_lines)
out=$(tt <<EOF 2>&1
open a $c
open b $c
q a SELECT 'a1'
q b SELECT 'b1'
q a SELECT 'a2'
EOF
)
mb_is "$(logged_since "$pid" "$mark" | tr '\n' ';')" "SELECT 'a1';DISCARD ALL;SELECT 'b1';DISCARD ALL;SELECT 'a2';DISCARD ALL;" \
	"server_reset_query_always=1: DISCARD ALL after every transaction, clean or not"

# ---- server_reset_query: the configured query is the one that runs on a dirty server
mb_set server_reset_query_always 0
mb_set server_reset_query "RESET ALL"
mb_start_or_bail
pid=$(pqt backend-pid "$c" 2>&1)
mark=$(log_lines)
out=$(tt <<EOF 2>&1
open a $c
open b $c
q a SET statement_timeout = '4321ms'
q b SHOW statement_timeout
q b SELECT 'clean'
q a SELECT 'clean again'
EOF
)
mb_is "$(lines_of "$out" b | grep -v connected | tr '\n' ';')" "0;clean;" "server_reset_query = RESET ALL: the next client sees the default"
mb_is "$(logged_since "$pid" "$mark" | tr '\n' ';')" \
	"SET statement_timeout = '4321ms';RESET ALL;SHOW statement_timeout;SELECT 'clean';SELECT 'clean again';" \
	"server_reset_query = RESET ALL runs once, on the dirty server only"

# ---- with a policy that sees every statement: its kinds scan and the session scan share one tokenizing
# pass, and the answer must stay the same (multi-statement texts are the ones tokenized)
mb_policy_copy hook_counter.lua
mb_unset server_reset_query
mb_set policy_file "$T_DIR/hook_counter.lua"
mb_start_or_bail
pid=$(pqt backend-pid "$c" 2>&1)
dirty "policy loaded: SET after another statement in one Query" "SHOW search_path" '"$user", public' \
	"q a SELECT 1; SET search_path = pg_catalog"
dirty "policy loaded: SET via extended protocol" "SHOW statement_timeout" 0 "x a SET statement_timeout = '3456ms'"
dirty "policy loaded: CREATE TEMP TABLE after a SELECT" "SELECT to_regclass('pg_temp.txn_tmp3') IS NULL" t \
	"q a SELECT 1; CREATE TEMP TABLE txn_tmp3 (x int)"
mark=$(log_lines)
out=$(tt <<EOF 2>&1
open a $c
open b $c
q a SELECT 'm1'; SELECT 'm2'
q b SELECT 'b1'
EOF
)
mb_is "$(logged_since "$pid" "$mark" | tr '\n' ';')" "SELECT 'm1'; SELECT 'm2';SELECT 'b1';" \
	"policy loaded: a clean text of two statements hands the server on with no reset"

# ---- track_session_set = 1 (the default): a plain session SET follows its client, the server is not reset;
# the value it left behind is RESET when the next client gets the server, and set again for its owner
mb_unset policy_file
mb_unset track_session_set
mb_start_or_bail
pid=$(pqt backend-pid "$c" 2>&1)
mark=$(log_lines)
out=$(tt <<EOF 2>&1
open a $c
open b $c
q a SET statement_timeout = '1234ms'
q b SHOW statement_timeout
q a SHOW statement_timeout
EOF
)
mb_is "$(grep -v connected <<<"$out" | tr '\n' ';')" "a: SET;b: 0;a: 1234ms;" \
	"track_session_set: the SET follows its client, the next client on the server sees the default"
mb_is "$(logged_since "$pid" "$mark" | tr '\n' ';')" \
	"SET statement_timeout = '1234ms';RESET statement_timeout;;SHOW statement_timeout;SELECT pg_catalog.set_config(E'statement_timeout', E'1234ms', false);;SHOW statement_timeout;" \
	"track_session_set: no DISCARD ALL, the value left behind is RESET for the next client only"

mb_test_done

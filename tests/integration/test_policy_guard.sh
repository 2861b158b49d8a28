#!/usr/bin/env bash
# transaction_guard in transaction mode: tracked SETs follow a client across servers and never leak; LISTEN and
# strict-mode SET are rejected; session mode is left alone.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init policy_guard

mb_tool policy_tool PTOOL
pt() { timeout 60 "$PTOOL" "$@" 2>&1; }
PDIR=$T_DIR/policy.d
# policy_install SOURCE NAME: a test policy as policy.d/NAME (readable by the pooler's user)
policy_install() { mkdir -p "$PDIR" && cp "$MB_REPO/tests/integration/policies/$1" "$PDIR/$2" && mb_chown_pg "$PDIR"; }

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
policy_install pool_mode.lua 10-pool_mode.lua
policy_install guard.lua 30-guard.lua
mb_pgdb "$MB_DB"
mb_pgdb mb_sess "pool_mode=session"
mb_pgdb mb_two "pool_size=2"
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_set pool_mode transaction
mb_set default_pool_size 4
mb_set policy_dir "$PDIR"
mb_start_or_bail -v

c=$(mb_connstr "$su" "$sp" "$MB_DB")
cs=$(mb_connstr "$su" "$sp" mb_sess)

# SQL DEALLOCATE passes the guard, outside a transaction too: it only removes, and the core answers it for
# a protocol-level statement it keeps for the client (psycopg 3 closes its statements this way)
mb_tool prepared_tool PREP_TOOL
out=$(timeout 60 "$PREP_TOOL" script "$c" P gs1 'SELECT 1' - B gs1 - E S W Q 'DEALLOCATE gs1' W B gs1 - E S 2>&1 |
	tr '\n' ' ')
mb_like "$out" '^1 2 D:1 C:SELECT 1 Z:I C:DEALLOCATE Z:I E:26000' \
	"guard: SQL DEALLOCATE of a protocol-level statement is answered, and the name is gone ($out)"
pg_super_psql -d "$MB_DB" -c "DROP SCHEMA IF EXISTS a_schema CASCADE; DROP SCHEMA IF EXISTS b_schema CASCADE;
	DROP SCHEMA IF EXISTS c_schema CASCADE; CREATE SCHEMA a_schema; CREATE SCHEMA b_schema; CREATE SCHEMA c_schema;
	GRANT USAGE ON SCHEMA a_schema, b_schema, c_schema TO PUBLIC" >/dev/null

ROW="pg_backend_pid(), current_setting('statement_timeout'), current_setting('search_path'), pg_sleep(0.01)"
DEF_PATH='"$user", public'

# --- neighbours: B sets its own values, C sets nothing, N only keeps servers busy (so A's transactions move)
{
	echo "SET statement_timeout = '1111ms';"
	echo "SET search_path = b_schema, public;"
	for _ in $(seq 1 150); do echo "SELECT 'B', $ROW;"; done
} >"$T_DIR/b.sql"
{
	for _ in $(seq 1 150); do echo "SELECT 'C', $ROW;"; done
} >"$T_DIR/c.sql"
{
	for _ in $(seq 1 1500); do echo "SELECT 'N', pg_backend_pid(), pg_sleep(0.01);"; done
} >"$T_DIR/n.sql"
# A: two SETs, then 50 transactions (implicit and explicit alternately)
{
	echo "SET statement_timeout = '4321ms';"
	echo "SET search_path = a_schema, public;"
	for _ in $(seq 1 25); do
		echo "SELECT 'T', $ROW;"
		echo "BEGIN; SELECT 'T', $ROW; COMMIT;"
	done
	# a SET inside a rolled-back transaction, and one inside a transaction that failed, are not kept
	echo "BEGIN; SET statement_timeout = '9999ms'; SELECT 'IN', current_setting('statement_timeout'); ROLLBACK;"
	echo "BEGIN; SET search_path = c_schema; SELECT 1/0; COMMIT;"
	for _ in $(seq 1 5); do echo "SELECT 'R', $ROW;"; done
	# a SET inside a committed transaction is kept
	echo "BEGIN; SET search_path = c_schema, public; COMMIT;"
	for _ in $(seq 1 5); do echo "SELECT 'K', $ROW;"; done
	# RESET returns to the client's own (startup) value
	echo "RESET statement_timeout;"
	for _ in $(seq 1 5); do echo "SELECT 'Z', $ROW;"; done
} >"$T_DIR/a.sql"
mb_chown_pg "$T_DIR"

psql_bg() {
	local name=$1 file=$2
	mb_bg "$T_DIR/$name.out" env PGPASSWORD="$sp" PGCONNECT_TIMEOUT=10 timeout 120 "$PG_BINDIR/psql" -X -q -A -t \
		-v ON_ERROR_STOP=0 -h 127.0.0.1 -p "$MB_PORT" -U "$su" -d "$MB_DB" -f "$file"
}
psql_bg b "$T_DIR/b.sql"; pid_b=$MB_BG_PID
psql_bg c "$T_DIR/c.sql"; pid_c=$MB_BG_PID
# two N clients keep servers busy until A is done (then they are stopped)
psql_bg n1 "$T_DIR/n.sql"; pid_n1=$MB_BG_PID
psql_bg n2 "$T_DIR/n.sql"; pid_n2=$MB_BG_PID
sleep 0.2
psql_bg a "$T_DIR/a.sql"; pid_a=$MB_BG_PID
for p in $pid_a $pid_b $pid_c; do mb_wait_exit "$p" 90; done
mb_kill_wait "$pid_n1" TERM
mb_kill_wait "$pid_n2" TERM
A=$(cat "$T_DIR/a.out")

t_rows=$(awk -F'|' '$1 == "T"' <<<"$A")
mb_is "$(wc -l <<<"$t_rows")" 50 "A ran 50 transactions after its SETs"
mb_is "$(awk -F'|' '{print $3 "|" $4}' <<<"$t_rows" | sort -u)" "4321ms|a_schema, public" \
	"A: SET statement_timeout and SET search_path in force in all 50 transactions"
a_pids=$(awk -F'|' '{print $2}' <<<"$t_rows" | sort -u)
n_pids=$(wc -l <<<"$a_pids")
if [ "$n_pids" -ge 2 ]; then
	mb_ok "A's 50 transactions ran on $n_pids different server backends"
else
	mb_not_ok "A's 50 transactions ran on different server backends" "pids: $a_pids"
fi
mb_like "$A" '^IN\|9999ms$' "A: a SET inside a transaction is in force within it"
mb_like "$A" 'division by zero' "A: the failing transaction failed"
mb_is "$(awk -F'|' '$1 == "R" {print $3 "|" $4}' <<<"$A" | sort -u)" "4321ms|a_schema, public" \
	"A: SETs inside a rolled-back or failed transaction are not kept (5 transactions later)"
mb_is "$(awk -F'|' '$1 == "K" {print $3 "|" $4}' <<<"$A" | sort -u)" "4321ms|c_schema, public" \
	"A: a SET inside a committed transaction is kept"
mb_is "$(awk -F'|' '$1 == "Z" {print $3 "|" $4}' <<<"$A" | sort -u)" "0|c_schema, public" \
	"A: RESET statement_timeout returns to the client's own value"
mb_is "$(awk -F'|' '{print $2}' <<<"$(awk -F'|' '$1 == "R" || $1 == "K" || $1 == "Z"' <<<"$A")" | sort -u | \
	wc -l | awk '{print ($1 >= 2) ? "varied" : "one server"}')" varied "A: the later transactions moved between servers too"

B=$(cat "$T_DIR/b.out")
C=$(cat "$T_DIR/c.out")
mb_is "$(awk -F'|' '$1 == "B" {print $3 "|" $4}' <<<"$B" | sort -u)" "1111ms|b_schema, public" \
	"B (its own SETs): always sees its own values (150 transactions)"
mb_is "$(awk -F'|' '$1 == "C" {print $3 "|" $4}' <<<"$C" | sort -u)" "0|$DEF_PATH" \
	"C (no SETs): always sees the server defaults, never A's or B's values (150 transactions)"
mb_is "$(grep -c '^C|' <<<"$C")" 150 "C ran all 150 transactions"
shared=$(comm -12 <(echo "$a_pids") <(awk -F'|' '$1 == "C" {print $2}' <<<"$C" | sort -u) | wc -l)
if [ "$shared" -ge 1 ]; then
	mb_ok "A and C shared $shared server backend(s), so the isolation was put to the test"
else
	mb_not_ok "A and C shared server backends" "A: $a_pids"
fi

# --- the same, step by step on a pool of 2 servers: A's tracked SET ran on S1; X holds S1 in a transaction, so
# A's next transaction gets S2 (the core applies A's value there); then C gets S2 and must not see A's value
c2=$(mb_connstr "$su" "$sp" mb_two)
SHOWP="Q:SELECT pg_backend_pid(), current_setting('statement_timeout'), current_setting('search_path')"
mb_bg "$T_DIR/a2.out" "$PTOOL" "$c2" "Q:SET statement_timeout = '4321ms'" "Q:BEGIN" "Q:SET search_path = c_schema" \
	"Q:ROLLBACK" "$SHOWP" "SLEEP:1" "$SHOWP" "SLEEP:2"
a2=$MB_BG_PID
mb_wait_line "$T_DIR/a2.out" '^[0-9]+	4321ms	' 10
mb_bg "$T_DIR/x2.out" "$PTOOL" "$c2" "Q:BEGIN" "Q:SELECT pg_backend_pid()" "SLEEP:2" "Q:COMMIT"
x2=$MB_BG_PID
mb_wait_line "$T_DIR/x2.out" '^[0-9]+$' 10
for _ in $(seq 1 30); do [ "$(grep -c 4321ms "$T_DIR/a2.out")" -ge 2 ] && break; sleep 0.1; done
out_c=$(pt "$c2" "$SHOWP")
mb_wait_exit "$x2" 10
mb_wait_exit "$a2" 10
s1=$(sed -n 2p "$T_DIR/x2.out")
a_first=$(sed -n 5p "$T_DIR/a2.out" | cut -f1)
a_second=$(sed -n 6p "$T_DIR/a2.out" | cut -f1)
mb_is "$a_first $s1" "$s1 $s1" "2 servers: A's SET ran on S1, which X then holds"
mb_is "$(sed -n 6p "$T_DIR/a2.out")" "$a_second	4321ms	$DEF_PATH" \
	"2 servers: A's next transaction on S2 has A's SET applied, not the rolled-back one"
mb_is "$out_c" "$a_second	0	$DEF_PATH" "2 servers: C, next on S2, does not see A's statement_timeout"

# --- LISTEN: rejected in transaction mode, allowed in a session-mode pool
out=$(pt "$c" "Q:LISTEN mb_chan" "Q:SELECT 'after'")
mb_like "$(head -n 1 <<<"$out")" '^ERROR 0A000 LISTEN needs a session' "transaction mode: LISTEN rejected by the guard with 0A000"
mb_is "$(sed -n 2p <<<"$out")" after "transaction mode: the connection stays usable after the rejected LISTEN"
out=$(pt "$c" "Q:BEGIN" "Q:LISTEN mb_chan" "Q:COMMIT")
mb_is "$out" $'CMD BEGIN\nERROR 0A000 LISTEN needs a session: this pool runs in transaction mode, where the server connection serves other clients between transactions; connect to a session-mode pool for LISTEN\nCMD ROLLBACK' \
	"transaction mode: LISTEN inside a transaction rejected, the transaction rolls back"
out=$(pt "$cs" "Q:LISTEN mb_chan" "Q:NOTIFY mb_chan, 'hello'" "Q:SELECT 'after'")
mb_is "$out" $'CMD LISTEN\nCMD NOTIFY\nNOTIFY mb_chan hello\nafter' \
	"session mode: LISTEN allowed, and the notification arrives"

# --- a policy's pool_mode decision: a client given session pooling in a transaction-mode pool is left alone
cw="$c application_name=wants_session"
out=$(pt "$cw" "Q:LISTEN mb_chan" "Q:NOTIFY mb_chan, 'again'" "Q:SELECT 'after'")
mb_is "$out" $'CMD LISTEN\nCMD NOTIFY\nNOTIFY mb_chan again\nafter' \
	"on_connect pool_mode=session: the guard leaves LISTEN alone for that client"
out=$(pt "$cw" "Q:SELECT pg_backend_pid()" "SLEEP:0.2" "Q:SELECT pg_backend_pid()")
mb_is "$(sort -u <<<"$out" | wc -l)" 1 "on_connect pool_mode=session: the client keeps its server"

# --- PREPARE and session advisory locks (outside a transaction) are refused in transaction mode
out=$(pt "$c" "Q:PREPARE p1 AS SELECT 1" "Q:SELECT pg_advisory_lock(77)")
mb_like "$(head -n 1 <<<"$out")" '^ERROR 0A000 SQL PREPARE is not supported in transaction mode' \
	"transaction mode: SQL PREPARE rejected"
mb_like "$(sed -n 2p <<<"$out")" '^ERROR 0A000 session-level advisory locks are not supported' \
	"transaction mode: a session advisory lock outside a transaction rejected"
# the same lock taken by a FunctionCall (PQfn by OID) outside a transaction: it would be gone right after the
# call (the server is reset), so it must be refused like the SQL form
oid_try=$(pg_super_psql -d "$MB_DB" -c "SELECT 'pg_try_advisory_lock(bigint)'::regprocedure::oid")
out=$(pt "$c" "FN8:$oid_try:79" "Q:SELECT 'after'")
mb_like "$(tr '\n' '|' <<<"$out")" '^ERROR 0A000 [^|]*advisory[^|]*\|after\|$' \
	"transaction mode: a session advisory lock by FunctionCall outside a transaction rejected"
# inside a transaction it is rewritten to the _xact_ lock: held until COMMIT, gone after
out=$(pt "$c" "Q:BEGIN" "Q:SELECT pg_advisory_lock(78)" \
	"Q:SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 78 AND pid = pg_backend_pid()" \
	"Q:COMMIT")
mb_is "$out" $'CMD BEGIN\n\n1\nCMD COMMIT' "transaction mode: pg_advisory_lock inside a transaction runs (lock held)"
left=$(pg_super_psql -d "$MB_DB" -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 78")
mb_is "$left" 0 "transaction mode: the rewritten lock is released at COMMIT (none left on the pooled server)"

# --- check_set_config: set_config(..., false) is tracked and SELECT INTO TEMP rejected, by the pseudo-kinds
mb_stop
policy_install guard_check.lua 30-guard.lua
mb_start_or_bail -v
out=$(pt "$c" "Q:SELECT set_config('work_mem', '7777kB', false)" "Q:SELECT 1 AS x INTO TEMP guard_into" \
	"Q:SELECT count(*) FROM (SELECT 1) s")
mb_like "$(tr '\n' '|' <<<"$out")" '^7777kB\|ERROR 0A000 [^|]*TEMP[^|]*\|1\|$' \
	"check_set_config: set_config passes, SELECT INTO TEMP is rejected, a plain SELECT passes"
# the tracked value follows the client to whichever server runs its next transactions
seen=$(for i in 1 2 3 4 5 6; do
	pt "$c" "Q:SELECT set_config('work_mem', '7777kB', false)" "Q:SELECT current_setting('work_mem'), pg_sleep(0.02)" &
done | grep -c $'^7777kB\t')
mb_is "$seen" 6 "check_set_config: a tracked set_config is in force on the client's later transactions"

# --- strict mode: a session SET is rejected, SET LOCAL passes, session mode is untouched
mb_stop
policy_install guard_strict.lua 30-guard.lua
mb_start_or_bail -v
out=$(pt "$c" "Q:SET statement_timeout = '2345ms'" "Q:SHOW statement_timeout")
mb_is "$out" $'ERROR 0A000 session SET is not allowed in transaction mode on this pool: use SET LOCAL inside a transaction, or pass the parameter when connecting (startup parameters or options)\n0' \
	"strict: session SET rejected with 0A000, and not in force"
out=$(pt "$c" "X:SET search_path = a_schema" "X:SHOW search_path")
mb_is "$out" $'ERROR 0A000 session SET is not allowed in transaction mode on this pool: use SET LOCAL inside a transaction, or pass the parameter when connecting (startup parameters or options)\n'"$DEF_PATH" \
	"strict: session SET by the extended protocol rejected too"
out=$(pt "$c" "Q:BEGIN" "Q:SET LOCAL statement_timeout = '2345ms'" "Q:SHOW statement_timeout" "Q:COMMIT" \
	"Q:SHOW statement_timeout")
mb_is "$out" $'CMD BEGIN\nCMD SET\n2345ms\nCMD COMMIT\n0' "strict: SET LOCAL inside a transaction passes"
out=$(pt "$cs" "Q:SET statement_timeout = '2345ms'" "Q:SHOW statement_timeout")
mb_is "$out" $'CMD SET\n2345ms' "strict: a session-mode pool may still SET"

mb_check_healthy
mb_test_done

#!/usr/bin/env bash
# Policy hooks fire on every protocol path: simple Query, extended, pipelined, COPY, FunctionCall (PQfn, lo_*).
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init policy_hooks

mb_tool policy_tool PTOOL
pt() { timeout 60 "$PTOOL" "$@" 2>&1; }

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
mb_policy_copy hook_counter.lua
mb_pgdb "$MB_DB"
mb_pgdb mb_session "pool_mode=session"
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_set pool_mode transaction
mb_set default_pool_size 4
mb_set policy_file "$T_DIR/hook_counter.lua"
mb_start_or_bail -v

c=$(mb_connstr "$su" "$sp" "$MB_DB")
pg_super_psql -d "$MB_DB" -c "DROP TABLE IF EXISTS hook_copy; CREATE TABLE hook_copy (x int);
	ALTER TABLE hook_copy OWNER TO $su" >/dev/null

# hc HOOK APP [REGEX]: how many times HOOK was logged for application APP (optionally matching REGEX)
hc() { grep -E "policy: hookcall $1 app=$2 " "$MB_LOG" | grep -Ec -- "${3:-.}"; }
# wait until the client's on_disconnect is in the log (the last hook of a client)
hdone() { mb_wait_line "$MB_LOG" "hookcall on_disconnect app=$1 " 10 || mb_diag "no on_disconnect for $1 yet"; }
# hooks APP CONNECT QUERY BEGIN DISCONNECT: the four counts of one client
hooks() {
	hdone "$1"
	mb_is "$(hc on_connect "$1") $(hc on_query "$1") $(hc on_transaction_begin "$1") $(hc on_disconnect "$1")" \
		"$2 $3 $4 $5" "$1: on_connect, on_query, on_transaction_begin, on_disconnect counts"
}

# --- simple Query: two statements, two transactions
out=$(pt "$c application_name=simple" "Q:SELECT 11" "Q:SELECT 12")
mb_is "$out" $'11\n12' "simple: results"
hooks simple 1 2 2 1
mb_is "$(hc on_query simple 'protocol=simple kind=select')" 2 "simple: on_query sees protocol=simple kind=select"
mb_like "$(grep 'hookcall on_disconnect app=simple ' "$MB_LOG")" ' n=1 ' "simple: the shared counter counted 1 disconnect"

# --- extended: two unnamed statements, a named one prepared once and executed three times
out=$(pt "$c application_name=ext" "X:SELECT 21" "XP:SELECT \$1::int + 1|21" "P:s1:SELECT 23" "E:s1" "E:s1" "E:s1")
mb_is "$out" $'21\n22\nCMD \n23\n23\n23' "extended: results"
hdone ext
mb_is "$(hc on_query ext 'protocol=extended kind=select')" 3 "extended: on_query for each Parse (3), none for Bind"
mb_is "$(hc on_query ext 'name=s1')" 1 "extended: the named Parse reaches on_query with q.name=s1"
mb_is "$(hc on_transaction_begin ext 'protocol=extended kind=select kinds=select name=- ')" 2 \
	"extended: on_transaction_begin for each unnamed Parse/Bind/Execute/Sync"
n=$(hc on_transaction_begin ext 'protocol=extended kind=select kinds=select name=s1 ')
if [ "$n" -ge 3 ] && [ "$n" -le 4 ]; then
	mb_ok "extended: on_transaction_begin for each Bind of s1, q describes the prepared text ($n)"
else
	mb_not_ok "extended: on_transaction_begin for each Bind of s1 (3, +1 if the Parse took a server)" "got $n" \
		"$(grep 'hookcall .* app=ext ' "$MB_LOG")"
fi
mb_is "$(hc on_connect ext) $(hc on_disconnect ext)" "1 1" "extended: one on_connect, one on_disconnect"

# --- pipelined extended: 3 statements + Sync, 2 statements + Sync (two implicit transactions)
out=$(pt "$c application_name=pipe" PB "PQ:SELECT 31" "PQ:SELECT 32" "PQ:SELECT 33" PS "PQ:SELECT 34" \
	"PQ:SELECT 35" PS PE)
mb_is "$out" $'31\n32\n33\nSYNC\n34\n35\nSYNC' "pipeline: results"
hdone pipe
mb_is "$(hc on_query pipe 'protocol=extended kind=select')" 5 "pipeline: on_query for each of the 5 Parses"
# on_transaction_begin runs when a request is about to take a server: the second transaction of a pipeline
# usually arrives while the first still holds the server (then it runs once), else it runs again
n=$(hc on_transaction_begin pipe)
if [ "$n" = 1 ] || [ "$n" = 2 ]; then
	mb_ok "pipeline: on_transaction_begin once per server hold ($n for 2 pipelined transactions)"
else
	mb_not_ok "pipeline: on_transaction_begin once per server hold (1 or 2 for 2 pipelined transactions)" \
		"got $n" "$(grep 'hookcall .* app=pipe ' "$MB_LOG")"
fi
mb_is "$(hc on_transaction_begin pipe 'n=1 protocol=extended kind=select')" 1 \
	"pipeline: on_transaction_begin sees the first Parse of the pipeline"

# --- FunctionCall by OID: int4pl(20, 22), and pg_try_advisory_lock(bigint) (kind advisory_lock too)
oid_pl=$(pg_super_psql -d "$MB_DB" -c "SELECT 'int4pl(int4,int4)'::regprocedure::oid")
oid_adv=$(pg_super_psql -d "$MB_DB" -c "SELECT 'pg_try_advisory_lock(bigint)'::regprocedure::oid")
out=$(pt "$c application_name=fn" "FN:$oid_pl:20:22" "FN8:$oid_adv:4242")
mb_is "$out" $'FN 42\nFN t' "FunctionCall: int4pl and pg_try_advisory_lock results"
hooks fn 1 2 2 1
mb_is "$(hc on_query fn 'protocol=function kind=function kinds=function name')" 1 \
	"FunctionCall: on_query sees protocol=function kind=function"
mb_is "$(hc on_query fn 'protocol=function kind=function kinds=function,advisory_lock ')" 1 \
	"FunctionCall of a session advisory lock function: kinds holds advisory_lock"

# --- large objects: libpq's lo_* use FunctionCall (7 calls) inside one explicit transaction
out=$(pt "$c application_name=lo" "Q:BEGIN" "LO:moonbouncer large object" "Q:COMMIT")
mb_is "$out" $'CMD BEGIN\nLO moonbouncer large object\nCMD COMMIT' "lo_*: write and read back a large object"
hdone lo
mb_is "$(hc on_query lo 'protocol=function kind=function')" 7 \
	"lo_*: on_query for each FunctionCall (creat, open, write, lseek, read, close, unlink)"
mb_is "$(hc on_query lo 'protocol=function.* tx=true')" 7 "lo_*: the hooks see client.in_transaction"
mb_is "$(hc on_transaction_begin lo)" 1 "lo_*: one on_transaction_begin for the one transaction"
mb_is "$(hc on_transaction_begin lo 'kind=begin')" 1 "lo_*: on_transaction_begin sees the BEGIN"

# --- COPY FROM STDIN and COPY TO STDOUT (simple Query; CopyData never enters a hook)
out=$(seq 1 1000 | PGAPPNAME=copy mb_psql "$su" "$sp" "$MB_DB" -c "COPY hook_copy FROM STDIN" 2>&1)
mb_is "$out" "" "COPY FROM STDIN succeeds"
out=$(PGAPPNAME=copyout mb_psql "$su" "$sp" "$MB_DB" -c "COPY hook_copy TO STDOUT" 2>&1 | awk '{s += $1} END {print NR, s}')
mb_is "$out" "1000 500500" "COPY TO STDOUT returns the rows"
hooks copy 1 1 1 1
hooks copyout 1 1 1 1
mb_is "$(hc on_query copy 'protocol=simple kind=copy') $(hc on_query copyout 'protocol=simple kind=copy')" "1 1" \
	"COPY: on_query sees kind=copy for both directions"

# --- several statements in one simple Query: one on_query call that lists every kind
out=$(pt "$c application_name=multi" "Q:SET LOCAL work_mem = '8MB'; SELECT 41; SHOW work_mem")
hdone multi
mb_is "$(hc on_query multi 'kind=set kinds=set,select,show ')" 1 "multi-statement Query: q.kinds lists every statement"

# --- session mode: on_transaction_begin runs once, when the client's server is chosen
out=$(pt "$(mb_connstr "$su" "$sp" mb_session) application_name=sess" "Q:SELECT 51" "Q:BEGIN" "Q:SELECT 52" \
	"Q:COMMIT" "X:SELECT 53")
mb_is "$out" $'51\nCMD BEGIN\n52\nCMD COMMIT\n53' "session mode: results"
hooks sess 1 5 1 1

# --- the proxy never logged a policy failure
mb_is "$(grep -c 'policy .* failed' "$MB_LOG")" 0 "no policy failure was logged"
mb_check_healthy

mb_test_done

#!/usr/bin/env bash
# Server-side timeouts as PgBouncer 1.25 enforces them: idle_transaction_timeout counts only the time a client
# holds an open transaction with no request running; query_timeout closes the client and its server ("query
# timeout"), and also ends a wait for a server; the server close log lines carry PgBouncer's reasons, and
# log_disconnections = 0 silences them.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init server_timeouts

mb_tool txn_tool TXN_TOOL

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS

phase() {
	mb_stop
	mb_reset
	mb_user "$su" "$sp"
	mb_set auth_type scram-sha-256
	mb_set pool_mode transaction
}
in_range() {
	if [ -n "$2" ] && awk -v v="$2" -v lo="$3" -v hi="$4" 'BEGIN { exit !(v + 0 >= lo && v + 0 <= hi) }'; then
		mb_ok "$1 ($2 s)"
	else
		mb_not_ok "$1" "got: '$2' s, expected $3..$4 s" "${5:-}"
	fi
}
alive_pid() { pg_super_psql -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE pid = ${1:-0}"; }
field() { sed -n "s/^$2: $3 *//p" <<<"$1" | head -n 1; }
log_since() { tail -n +"$(($1 + 1))" "$MB_LOG"; }

# ---- idle_transaction_timeout = 2: a 3 s statement inside the transaction is not idle time
phase
mb_set idle_transaction_timeout 2
mb_pgdb "$MB_DB"
mb_start_or_bail
c=$(mb_connstr "$su" "$sp" "$MB_DB")
out=$(tt <<EOT 2>&1
open a $c
q a BEGIN; SELECT pg_sleep(2.5)
sleep 1
q a SELECT 'after 1 s idle: still here'
q a SELECT pg_sleep(2.5)
q a SELECT 'after a second long statement: still here'
q a COMMIT
EOT
)
mb_is "$(lines_of "$out" a | grep -c 'still here')" 2 \
	"idle_transaction_timeout=2: 2.5 s statements and 1 s idle in a transaction do not add up to idle time" "$out"
mb_is "$(lines_of "$out" a | tail -n 1)" COMMIT "idle_transaction_timeout=2: the transaction commits"
mark=$(wc -l <"$MB_LOG")
out=$(printf 'open a %s\nq a BEGIN\nq a SELECT pg_backend_pid()\nclosed a 8\n' "$c" | tt 2>&1)
read -r _ t_a rest_a <<<"$(lines_of "$out" a | tail -n 1)"
mb_like "$rest_a" '^FATAL 25P03 idle transaction timeout' "idle_transaction_timeout=2: an idle transaction is still ended"
in_range "idle_transaction_timeout=2: after 2 s idle" "${t_a:-}" 1.9 4 "$out"
pid=$(lines_of "$out" a | grep -E '^[0-9]+$' | head -n 1)
sleep 0.3
mb_is "$(alive_pid "$pid")" 0 "idle_transaction_timeout: its server is closed"
mb_like "$(log_since "$mark")" "S-[0-9]+ $MB_DB/$su@[^ ]+ closing because: idle transaction timeout \\(age=" \
	"idle_transaction_timeout: the server close is logged with PgBouncer's reason"

# ---- query_timeout = 1: the client and its server are closed ("query timeout"), as PgBouncer's code does
phase
mb_set query_timeout 1
mb_set query_wait_timeout 0
mb_pgdb "$MB_DB" "pool_size=1"
mb_start_or_bail
c=$(mb_connstr "$su" "$sp" "$MB_DB")
mark=$(wc -l <"$MB_LOG")
out=$(tt <<EOT 2>&1
open a $c
q a SELECT pg_backend_pid()
q a SELECT pg_sleep(6)
elapsed a
q a SELECT 'the connection is gone'
EOT
)
pid=$(lines_of "$out" a | grep -E '^[0-9]+$' | head -n 1)
mb_like "$(lines_of "$out" a | sed -n 3p)" '^ERROR 08P01 query timeout' "query_timeout=1: the client gets FATAL 08P01 query timeout" "$out"
in_range "query_timeout=1: after 1 s" "$(field "$out" a elapsed)" 0.9 3 "$out"
mb_like "$(lines_of "$out" a | tail -n 1)" 'ERROR|lost|closed' "query_timeout: the client connection is closed" "$out"
for ((i = 0; i < 30; i++)); do [ "$(alive_pid "$pid")" = 0 ] && break; sleep 0.1; done
mb_is "$(alive_pid "$pid")" 0 "query_timeout: the server connection is closed too (its backend is gone within 3 s)"
mb_like "$(log_since "$mark")" "S-[0-9]+ $MB_DB/$su@[^ ]+ closing because: query timeout \\(age=" \
	"query_timeout: the server close is logged with PgBouncer's reason"
mb_check_healthy "query_timeout: the pool serves the next client"
# a client waiting for a server also ends at query_timeout (with query_wait_timeout off)
out=$(tt <<EOT 2>&1
open h $c
open w $c
q h BEGIN
q h SELECT 1
send w SELECT 'w got a server'
wait w 5
elapsed w
q h COMMIT
EOT
)
mb_like "$(lines_of "$out" w | sed -n 2p)" '^ERROR 08P01 query_timeout' "query_timeout=1: a client waiting for a server gets 08P01 query_timeout" "$out"
in_range "query_timeout=1: ...after 1 s of waiting" "$(field "$out" w elapsed)" 0.9 3 "$out"

# ---- a client gone in the middle of a transaction, a server gone under its client: PgBouncer's reasons
phase
mb_pgdb "$MB_DB"
mb_pgdb l_sess "pool_mode=session" "$MB_DB"
mb_start_or_bail
mark=$(wc -l <"$MB_LOG")
out=$(printf 'open a %s\nq a BEGIN\nclose a\nsleep 0.3\n' "$(mb_connstr "$su" "$sp" "$MB_DB")" | tt 2>&1)
mb_like "$(log_since "$mark")" "S-[0-9]+ $MB_DB/$su@[^ ]+ closing because: client disconnect while server was not ready" \
	"a client leaving inside a transaction: 'closing because: client disconnect while server was not ready'" "$out"
cs=$(mb_connstr "$su" "$sp" l_sess)
mark=$(wc -l <"$MB_LOG")
cat >"$T_DIR/k.script" <<EOT
open k $cs
q k SELECT 'k linked'
sleep 1.5
q k SELECT 'after the backend was terminated'
EOT
mb_bg "$T_DIR/k.out" "$TXN_TOOL" script "$T_DIR/k.script"
k_pid=$MB_BG_PID
mb_wait_line "$T_DIR/k.out" "k linked" 10
pg_super_psql -d postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '$MB_DB' AND usename = '$su' AND pid <> pg_backend_pid()" >/dev/null
mb_wait_exit "$k_pid" 10
mb_like "$(lines_of "$(cat "$T_DIR/k.out")" k | tail -n 2 | tr '\n' ' ')" 'terminating connection|server conn crashed' \
	"a server that goes under its client: the client's session ends with it" "$(cat "$T_DIR/k.out")"
mb_like "$(log_since "$mark")" "S-[0-9]+ l_sess/$su@[^ ]+ closing because: server conn crashed\\? \\(" \
	"...and the server close is logged as PgBouncer's 'closing because: server conn crashed? (...)'"

# ---- reserve_pool: a server above pool_size logs PgBouncer's warning
phase
mb_set reserve_pool_size 1
mb_set reserve_pool_timeout 0.3
mb_pgdb "$MB_DB" "pool_size=1"
mb_start_or_bail
c=$(mb_connstr "$su" "$sp" "$MB_DB")
out=$(tt <<EOT 2>&1
open h $c
open w $c
q h BEGIN
q h SELECT 1
q w SELECT 'w served from the reserve pool'
q h COMMIT
EOT
)
mb_is "$(lines_of "$out" w | tail -n 1)" "w served from the reserve pool" "reserve_pool_size=1: a waiting client gets a reserve server" "$out"
mb_like "$(cat "$MB_LOG")" "WARNING C-[0-9]+ $MB_DB/$su@127\\.0\\.0\\.1:[0-9]+ taking connection from reserve_pool" \
	"reserve_pool: PgBouncer's warning 'taking connection from reserve_pool'"

# ---- server_idle_timeout and server_lifetime: PgBouncer's reasons; log_disconnections = 0 silences them
phase
mb_set server_idle_timeout 0.5
mb_pgdb "$MB_DB"
mb_pgdb l_life "server_lifetime=0.5" "$MB_DB"
mb_start_or_bail
mark=$(wc -l <"$MB_LOG")
pqt query "$(mb_connstr "$su" "$sp" "$MB_DB")" "SELECT 1" >/dev/null 2>&1
mb_wait_line "$MB_LOG" "closing because: server idle timeout" 5
mb_like "$(log_since "$mark")" "S-[0-9]+ $MB_DB/$su@127\\.0\\.0\\.1:$MB_PG_PORT closing because: server idle timeout" \
	"server_idle_timeout: 'closing because: server idle timeout', at info"
mb_like "$(log_since "$mark")" "S-[0-9]+ $MB_DB/$su@127\\.0\\.0\\.1:$MB_PG_PORT new connection to server \\(from 127\\.0\\.0\\.1:[0-9]+\\)" \
	"log_connections: 'new connection to server (from ADDR)'"
mb_set server_idle_timeout 0
mb_start_or_bail
pqt query "$(mb_connstr "$su" "$sp" l_life)" "SELECT 1" >/dev/null 2>&1
mb_wait_line "$MB_LOG" "closing because: server lifetime over" 5
mb_like "$(cat "$MB_LOG")" "S-[0-9]+ l_life/$su@[^ ]+ closing because: server lifetime over" \
	"server_lifetime: 'closing because: server lifetime over'"
mb_set log_disconnections 0
mb_set log_connections 0
mb_start_or_bail
mark=$(wc -l <"$MB_LOG")
pqt query "$(mb_connstr "$su" "$sp" l_life)" "SELECT 1" >/dev/null 2>&1
sleep 1.5
mb_is "$(log_since "$mark" | grep -c 'closing because\|new connection to server')" 0 \
	"log_disconnections = 0, log_connections = 0: no 'closing because' nor 'new connection to server' lines"

mb_test_done

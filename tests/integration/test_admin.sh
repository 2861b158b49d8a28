#!/usr/bin/env bash
# The admin console (database pgbouncer, alias moonbouncer): who may log in and what, PgBouncer 1.25.2's
# SHOW columns and types, numbers against a known load, and the commands that act (PAUSE, RESUME, KILL,
# RECONNECT, DISABLE/ENABLE, KILL_CLIENT, RELOAD, SET, WAIT_CLOSE).
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init admin

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
mb_pgdb "$MB_DB" "pool_size=2"
mb_pgdb mb_other
mb_user "$su" "$sp"
mb_user adm adm-secret
mb_user st st-secret
mb_user nobody nobody-secret
mb_set auth_type scram-sha-256
mb_set pool_mode transaction
mb_set admin_users adm
mb_set stats_users "st, $su"
mb_set max_client_conn 12
mb_set query_wait_timeout 30
mb_start_or_bail
c=$(mb_connstr "$su" "$sp" "$MB_DB")
adm=$(mb_connstr adm adm-secret pgbouncer)
st=$(mb_connstr st st-secret pgbouncer)
q() { pqt query "$@" 2>&1; }
sqlstate() { awk '$1 == "ERROR" {print $2; exit}' <<<"$1"; }
# one column of a SHOW, for the row whose first column is KEY: col CONN "SHOW X" KEY N
col() { q "$1" "$2" | awk -F'\t' -v k="$3" -v n="$4" '$1 == k { print $n; exit }'; }

# --- who may log in, and what
mb_is "$(q "$adm" "SHOW VERSION")" "moonbouncer 0.1.0" "an admin_users user logs in; SHOW VERSION"
mb_is "$(q "$(mb_connstr adm adm-secret moonbouncer)" "show version;")" "moonbouncer 0.1.0" \
	"database moonbouncer is the same console; commands in any case with a trailing ;"
out=$(q "$(mb_connstr nobody nobody-secret pgbouncer)" "SHOW VERSION")
mb_is "$(sqlstate "$out")" 42501 "a user in neither list is refused ($out)"
out=$(q "$(mb_connstr adm wrong pgbouncer)" "SHOW VERSION")
mb_is "$(sqlstate "$out")" 28P01 "a wrong password is refused as for any database ($out)"
mb_like "$(q "$st" "SHOW POOLS")" "^pgbouncer	pgbouncer	" "a stats_users user may SHOW"
out=$(q "$st" "PAUSE")
mb_is "$out" "ERROR 42501 admin access needed" "... but not PAUSE"
out=$(q "$adm" "SHOW NOTHING")
mb_like "$out" "^ERROR [0-9A-Z]{5} invalid command 'SHOW NOTHING'" "an unknown SHOW is an error"
out=$(q "$adm" "FROB")
mb_is "$(sqlstate "$out")" 42601 "an unknown command is a syntax error ($out)"
out=$(q "$adm" "SHOW FDS")
mb_like "$out" "^ERROR 0A000 SHOW FDS is not supported" "SHOW FDS: no online restart here, said so"
mb_like "$(q "$adm" "SHOW POOLS" "SHOW VERSION")" "moonbouncer" "the connection serves several commands"

# --- the columns and their types are PgBouncer 1.25.2's (tests/integration/admin_columns.tsv)
while IFS=$'\t' read -r cmd want; do
	[ -z "$cmd" ] || [ "${cmd:0:1}" = "#" ] && continue
	got=$(pqt columns "$adm" "$cmd" 2>&1)
	mb_is "$got" "$want" "$cmd: columns and types as PgBouncer 1.25.2"
done <"$(dirname "$0")/admin_columns.tsv"

# --- numbers against a known load: 5 clients on a pool of 2
loads=()
for i in 1 2 3 4 5; do
	mb_bg "$T_DIR/load$i.out" "$PQTOOL" query "$c" "SELECT 'served', pg_sleep(3)"
	loads+=("$MB_BG_PID")
done
for ((i = 0; i < 50; i++)); do
	waiting=$(col "$adm" "SHOW POOLS" "$MB_DB" 4)
	[ "$waiting" = 3 ] && break
	sleep 0.1
done
pools=$(q "$adm" "SHOW POOLS" | awk -F'\t' -v d="$MB_DB" '$1 == d')
mb_is "$(cut -f4 <<<"$pools")" 3 "SHOW POOLS: cl_waiting = 3 ($pools)"
mb_is "$(cut -f7 <<<"$pools")" 2 "SHOW POOLS: sv_active = 2"
mb_like "$(cut -f14,15 <<<"$pools")" $'^[0-9]+\t[0-9]+$' "SHOW POOLS: maxwait and maxwait_us are numbers"
mb_unlike "$(cut -f14,15 <<<"$pools")" $'^0\t0$' "SHOW POOLS: maxwait > 0 with clients waiting"
mb_is "$(q "$adm" "SHOW CLIENTS" | awk -F'\t' -v d="$MB_DB" '$3 == d {print $5}' | sort | uniq -c |
	awk '{printf "%s %s ", $1, $2}')" "2 active 3 waiting " "SHOW CLIENTS: 2 active, 3 waiting"
mb_is "$(q "$adm" "SHOW SERVERS" | awk -F'\t' -v d="$MB_DB" '$3 == d {print $5}' | sort | uniq -c |
	awk '{printf "%s %s ", $1, $2}')" "2 active " "SHOW SERVERS: 2 active"
mb_is "$(col "$adm" "SHOW DATABASES" "$MB_DB" 13)" 2 "SHOW DATABASES: current_connections = 2"
mb_is "$(col "$adm" "SHOW DATABASES" "$MB_DB" 6)" 2 "SHOW DATABASES: pool_size = 2"
mb_is "$(col "$adm" "SHOW LISTS" used_clients 2)" 6 "SHOW LISTS: used_clients counts the 5 and the console"
for pid in "${loads[@]}"; do mb_wait_exit "$pid" 20; done
mb_is "$(cat "$T_DIR"/load*.out | grep -c '^served')" 5 "the five clients were all served"

# --- PAUSE waits for the running transaction, holds new ones until RESUME
mb_bg "$T_DIR/running.out" "$PQTOOL" query "$c" "SELECT 'ran', pg_sleep(2)"
sleep 0.5
mb_bg "$T_DIR/pause.out" "$PQTOOL" query "$adm" "PAUSE"
sleep 0.5
mb_is "$(cat "$T_DIR/pause.out")" "" "PAUSE waits while a transaction runs"
mb_wait_line "$T_DIR/running.out" 'ran' 10
mb_wait_exit "$MB_BG_PID" 10
mb_is "$(cat "$T_DIR/pause.out")" "" "... and answers once it is over (PAUSE has no rows)"
mb_is "$(col "$adm" "SHOW DATABASES" "$MB_DB" 13)" 0 "paused: the servers are closed"
mb_is "$(col "$adm" "SHOW STATE" paused 2)" yes "SHOW STATE: paused"
mb_bg "$T_DIR/held.out" "$PQTOOL" query "$c" "SELECT 'held'"
held=$MB_BG_PID
sleep 1
mb_is "$(cat "$T_DIR/held.out")" "" "paused: a new transaction waits"
mb_is "$(q "$adm" "RESUME")" "" "RESUME"
mb_wait_exit "$held" 10
mb_is "$(cat "$T_DIR/held.out")" held "... and it runs after RESUME"
mb_is "$(q "$adm" "RESUME")" "ERROR 08P01 pooler is not paused/suspended" "RESUME when not paused: an error"

# --- PAUSE db / RESUME db: other databases go on
mb_is "$(q "$adm" "PAUSE mb_other")" "" "PAUSE of one database"
mb_is "$(col "$adm" "SHOW DATABASES" mb_other 16)" 1 "SHOW DATABASES: paused = 1 for it"
mb_is "$(q "$c" "SELECT 'other db goes on'")" "other db goes on" "another database is served while it is paused"
mb_is "$(q "$adm" "RESUME mb_other")" "" "RESUME of that database"
mb_is "$(q "$adm" "PAUSE pgbouncer")" "ERROR 08P01 cannot pause admin db: pgbouncer" "the console cannot be paused"
mb_is "$(q "$adm" "PAUSE nosuchdb")" "ERROR 08P01 no such database: nosuchdb" "PAUSE of an unknown database"

# --- RECONNECT: servers are replaced as they are released
pid1=$(q "$c" "SELECT pg_backend_pid()")
mb_bg "$T_DIR/busy.out" "$PQTOOL" query "$c" "SELECT 'busy', pg_sleep(1.5)"
busy=$MB_BG_PID
for ((i = 0; i < 50; i++)); do
	[ "$(q "$adm" "SHOW SERVERS" | awk -F'\t' -v d="$MB_DB" '$3 == d && $5 == "active"' | wc -l)" = 1 ] && break
	sleep 0.1
done
mb_is "$(q "$adm" "RECONNECT $MB_DB")" "" "RECONNECT db"
mb_is "$(q "$adm" "SHOW SERVERS" | awk -F'\t' -v d="$MB_DB" '$3 == d && $5 == "active" {print $14}')" 1 \
	"SHOW SERVERS: close_needed = 1 for the busy server RECONNECT will replace"
mb_wait_exit "$busy" 10
pid2=$(q "$c" "SELECT pg_backend_pid()")
mb_like "$pid2" '^[0-9]+$' "a client is served after RECONNECT"
[ "$pid1" != "$pid2" ] && mb_ok "... by a new server ($pid1 -> $pid2)" || mb_not_ok "RECONNECT: new server" "same pid $pid1"
mb_is "$(q "$adm" "WAIT_CLOSE $MB_DB")" "" "WAIT_CLOSE: nothing old is left"

# --- DISABLE / ENABLE
mb_is "$(q "$adm" "DISABLE $MB_DB")" "" "DISABLE db"
out=$(q "$c" "SELECT 1")
mb_is "$out" "ERROR 08P01 database \"$MB_DB\" is disabled" "a new client of a disabled database is refused"
mb_is "$(col "$adm" "SHOW DATABASES" "$MB_DB" 17)" 1 "SHOW DATABASES: disabled = 1"
mb_is "$(q "$adm" "ENABLE $MB_DB")" "" "ENABLE db"
mb_is "$(q "$c" "SELECT 'enabled'")" enabled "... and clients are served again"

# --- KILL_CLIENT and KILL
mb_bg "$T_DIR/victim.out" "$PQTOOL" hold "$c" 30
victim=$MB_BG_PID
mb_wait_line "$T_DIR/victim.out" connected 10
id=$(q "$adm" "SHOW CLIENTS" | awk -F'\t' -v d="$MB_DB" '$3 == d {print $21; exit}')
mb_is "$(q "$adm" "KILL_CLIENT $id")" "" "KILL_CLIENT $id"
mb_wait_exit "$victim" 10
mb_is "$(tail -n 1 "$T_DIR/victim.out")" closed "... that client is disconnected"
mb_is "$(q "$adm" "KILL_CLIENT 999999")" "ERROR 08P01 client not found" "KILL_CLIENT of an unknown id"
mb_bg "$T_DIR/victim2.out" "$PQTOOL" hold "$c" 30
victim=$MB_BG_PID
mb_wait_line "$T_DIR/victim2.out" connected 10
mb_is "$(q "$adm" "KILL $MB_DB")" "" "KILL db"
mb_wait_exit "$victim" 10
mb_is "$(tail -n 1 "$T_DIR/victim2.out")" closed "... drops its clients"
mb_is "$(col "$adm" "SHOW DATABASES" "$MB_DB" 16)" 1 "... and pauses it until RESUME"
mb_is "$(q "$adm" "RESUME $MB_DB")" "" "RESUME after KILL"
mb_check_healthy "served after KILL and RESUME"

# --- RELOAD and SET
mb_pgdb mb_reloaded "pool_size=7"
mb_set default_pool_size 11
mb_write_config
mb_is "$(q "$adm" "RELOAD")" "" "RELOAD"
mb_is "$(col "$adm" "SHOW DATABASES" mb_reloaded 6)" 7 "RELOAD applied a new entry (pool_size 7)"
mb_like "$(cat "$MB_LOG")" "reload: default_pool_size: '20' -> '11'" "the log says which key changed"
mb_like "$(cat "$MB_LOG")" "reload: \\[databases\\]: '\\(new\\)' -> 'mb_reloaded'" "... and which entry is new"
mb_is "$(q "$adm" "SET default_pool_size = 9")" "" "SET default_pool_size = 9"
mb_is "$(col "$adm" "SHOW CONFIG" default_pool_size 2)" 9 "SHOW CONFIG shows it"
mb_is "$(q "$adm" "SET server_reset_query = 'DISCARD ALL'")" "" "SET with a quoted value"
mb_is "$(q "$adm" "SET listen_port = 1")" "ERROR 08P01 listen_port cannot be changed while running" \
	"SET of a key that needs a restart: an error"
mb_like "$(q "$adm" "SET nosuchkey = 1")" "^ERROR 08P01 unknown config parameter: nosuchkey" "SET of an unknown key"
mb_is "$(q "$st" "SET default_pool_size = 3")" "ERROR 42501 admin access needed" "stats users cannot SET"

# --- the Prometheus exporter's own queries (simple protocol, trailing ;): the columns it reads, labels as text
has_cols() { # has_cols SQL COLUMN:TYPE...: every one is among the columns SQL returns
	local sql=$1 got missing="" want
	shift
	got=" $(pqt columns "$adm" "$sql" 2>&1) "
	for want in "$@"; do [[ "$got" == *" $want "* ]] || missing+=" $want"; done
	mb_is "${missing:-none}" none "exporter: $sql has$(printf ' %s' "$@" | cut -c1-60)..."
}
has_cols "SHOW STATS;" database:text
has_cols "SHOW VERSION;" version:text
has_cols "SHOW LISTS;" list:text items:int4
has_cols "SHOW CONFIG;" key:text value:text changeable:text
has_cols "SHOW CLIENTS;" database:text user:text state:text application_name:text
has_cols "SHOW DATABASES;" name:text host:text port:int4 database:text force_user:text pool_mode:text \
	pool_size:int4 reserve_pool_size:int4 max_connections:int4 current_connections:int4 paused:int4 disabled:int4
has_cols "SHOW STATS_TOTALS;" database:text query_count:numeric query_time:numeric bytes_received:numeric \
	bytes_sent:numeric wait_time:numeric xact_count:numeric xact_time:numeric client_parse_count:numeric \
	server_parse_count:numeric bind_count:numeric server_assignment_count:numeric
has_cols "SHOW POOLS;" database:text user:text cl_active:int4 cl_active_cancel_req:int4 cl_waiting:int4 \
	cl_waiting_cancel_req:int4 sv_active:int4 sv_active_cancel:int4 sv_being_canceled:int4 sv_idle:int4 \
	sv_used:int4 sv_tested:int4 sv_login:int4 maxwait:int4
mb_like "$(col "$adm" "SHOW CONFIG;" max_client_conn 2)" '^[0-9]+$' "exporter: max_client_conn parses as a number"
mb_like "$(col "$adm" "SHOW CONFIG;" max_user_connections 2)" '^[0-9]+$' "exporter: max_user_connections too"

# --- the console is not counted against max_client_conn
for i in $(seq 1 12); do
	mb_bg "$T_DIR/hold$i.out" "$PQTOOL" hold "$c" 20
done
for i in $(seq 1 12); do mb_wait_line "$T_DIR/hold$i.out" 'connected|ERROR' 10 || true; done
mb_like "$(q "$c" "SELECT 1")" "max_client_conn" "max_client_conn reached for a database"
mb_is "$(q "$adm" "SHOW VERSION")" "moonbouncer 0.1.0" "the console still logs in"
for i in $(seq 1 12); do kill "${MB_PIDS[-$i]}" 2>/dev/null; done

# --- SHUTDOWN WAIT_FOR_CLIENTS: new logins refused, the process ends when the last client has gone
mb_bg "$T_DIR/last.out" "$PQTOOL" hold "$c" 3
last=$MB_BG_PID
mb_wait_line "$T_DIR/last.out" connected 10
sleep 0.5
mb_is "$(q "$adm" "SHUTDOWN WAIT_FOR_CLIENTS")" "" "SHUTDOWN WAIT_FOR_CLIENTS"
mb_like "$(q "$c" "SELECT 1")" "^ERROR" "a new client is refused while shutting down"
if mb_alive "$MB_PID"; then mb_ok "... the process waits for its client"; else mb_not_ok "still running with a client"; fi
mb_wait_exit "$last" 10
if mb_wait_exit "$MB_PID" 10; then
	mb_ok "... and exits once it has gone"
	MB_PID=
else
	mb_not_ok "SHUTDOWN WAIT_FOR_CLIENTS: exits after the last client"
fi

mb_test_done

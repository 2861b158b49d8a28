#!/usr/bin/env bash
# Faults of PostgreSQL as a whole under load, on a cluster of the test's own: a fast and an immediate shutdown
# each followed by a start, the postmaster frozen (SIGSTOP: existing servers go on, new logins end at
# server_connect_timeout and their clients at query_wait_timeout), and PostgreSQL restarted with max_connections
# below the pool size. Eight clients run transactions throughout, each checking that every answer carries its
# own marker. After each fault: no client got another's answer, none hung, every client is answered again, new
# clients are served by the same pooler process and no server connection is leaked.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init faults_postmaster

mb_tool fault_tool FAULT_TOOL

pg_own_init "max_connections = 50" "superuser_reserved_connections = 3" ||
	{ mb_not_ok "the test's own cluster starts"; mb_test_done; }
pg_own_psql postgres -c "CREATE ROLE fault LOGIN" -c "CREATE DATABASE faultdb OWNER fault" \
	-c "CREATE DATABASE faultdb2 OWNER fault" >/dev/null

mb_db faultdb "host=127.0.0.1 port=$OWN_PORT dbname=faultdb user=fault pool_size=6"
mb_db faultdb2 "host=127.0.0.1 port=$OWN_PORT dbname=faultdb2 user=fault pool_size=2"
mb_user fc fc-pass
mb_set pool_mode transaction
mb_set server_login_retry 0.2
mb_set query_wait_timeout 10
mb_set server_idle_timeout 1
mb_start_or_bail
c=$(mb_connstr fc fc-pass faultdb)
c2=$(mb_connstr fc fc-pass faultdb2)
FAULT_CONNSTR=$c FAULT_DB=faultdb FAULT_POOL_SIZE=6

mb_load_start warm "$c" 8
sleep 0.5
mb_after_fault warm warm ""
rss_before=$(mb_rss)

# ---- shutdown under load (fast: PostgreSQL says goodbye, immediate: it does not), then start
# clients linked to a server get its error or 08006; those waiting stay queued until a login works; one that
# reconnects while logins fail gets the fast fail of server_login_retry
restart_errors='^(08006 server conn crashed\?|57P01 terminating connection due to administrator command|conn server closed the connection unexpectedly|08P01 server login has been failing, cached error: .* \(server_login_retry\))$'
for mode in fast immediate; do
	mb_load_start "$mode" "$c" 8
	sleep 0.5
	t0=$EPOCHREALTIME
	pg_own_stop "$mode" || mb_diag "pg_ctl stop -m $mode failed"
	pg_own_start || mb_diag "start after the $mode shutdown failed"
	mb_diag "$mode shutdown and start took $(awk -v s="$t0" -v n="$EPOCHREALTIME" 'BEGIN { printf "%.2f", n - s }') s"
	mb_after_fault "$mode shutdown" "$mode" "$restart_errors"
done

# ---- the postmaster frozen: the pool's servers go on; a pool with none waits for a login that cannot finish
mb_set server_connect_timeout 1
mb_set query_wait_timeout 3
mb_reload
mb_load_start frozen "$c" 8
pm=$(pg_own_pid)
pg_own_freeze "$pm" && mb_ok "postmaster $pm frozen under load" || mb_not_ok "postmaster frozen" "pid '$pm'"
mark=$(wc -l <"$MB_LOG")
out=$(pqt query "$c2" "SELECT 'served'" 2>&1)
mb_like "$out" '^ERROR 08P01 query_wait_timeout \(last server login failed: connect timeout' \
	"a client of a pool with no server: query_wait_timeout, naming server_connect_timeout's connect timeout"
mb_like "$(tail -n +"$((mark + 1))" "$MB_LOG")" 'faultdb2/fault@.* closing because: connect timeout' \
	"the login that the frozen postmaster never answers ends at server_connect_timeout"
t=$(mb_through_pooler "$c")
mb_like "$t" '^[0-9.]+$' "while the postmaster is frozen, the pool with servers serves a new client"
pg_own_thaw "$pm"
t=$(mb_through_pooler "$c2")
mb_like "$t" '^[0-9.]+$' "thawed: the pool that had no server serves a new client ($t s)"
mb_after_fault "frozen postmaster" frozen ""
mb_idle_servers "frozen postmaster: faultdb2" faultdb2
mb_set server_connect_timeout 15
mb_set query_wait_timeout 10
mb_reload

# ---- max_connections below the pool size: PostgreSQL restarted under load with room for 3 connections of the
# pool's user (6 - 3 reserved for superusers); the clients share those 3 (the refused logins are retried), and the
# pool grows to its size once PostgreSQL is restarted with room
mb_load_start small "$c" 8
pg_own_conf max_connections 6
mark=$(wc -l <"$MB_LOG")
pg_own_stop fast
pg_own_start || mb_diag "start with max_connections = 6 failed"
for ((i = 0; i < 100; i++)); do
	tail -n +"$((mark + 1))" "$MB_LOG" | grep -q 'server login failed: FATAL remaining connection slots are reserved' && break
	sleep 0.1
done
mb_like "$(tail -n +"$((mark + 1))" "$MB_LOG")" 'server login failed: FATAL remaining connection slots are reserved' \
	"the logins PostgreSQL refuses are logged"
t=$(mb_through_pooler)
mb_like "$t" '^[0-9.]+$' "with room for 3 servers a new client is served too ($t s)"
n=$(mb_own_servers)
mb_lt "$n" 4 "PostgreSQL with room for 3: the pool has at most 3 servers ($n), the clients share them"
pg_own_conf max_connections 50
pg_own_stop fast
pg_own_start || mb_diag "start with max_connections = 50 failed"
for ((i = 0; i < 100; i++)); do
	[ "$(mb_own_servers)" = 6 ] && break
	sleep 0.1
done
mb_is "$(mb_own_servers)" 6 "PostgreSQL restarted with room: the pool grows to its size under load"
mb_after_fault "max_connections" small "$restart_errors|^53300 "

rss_after=$(mb_rss)
mb_diag "pooler RSS: $rss_before kB after the warm-up, $rss_after kB after the faults"
if mb_rss_checks; then
	mb_lt "$((rss_after - rss_before))" 8192 "the faults cost the pooler no memory: RSS grew by $((rss_after - rss_before)) kB"
fi

mb_test_done

#!/usr/bin/env bash
# Faults of single PostgreSQL backends under load, on a cluster of the test's own: kill -9 of a backend (PostgreSQL
# then resets every session), backends frozen (SIGSTOP) until query_timeout closes them, and pg_terminate_backend
# of a server in the middle of a large result, a COPY TO STDOUT and a COPY FROM STDIN. Eight clients run
# transactions throughout, each checking that every answer carries its own marker. After each fault: no client got
# another's answer, every client is answered again, new clients are served by the same pooler process, PostgreSQL
# never sees more than pool_size connections of the pool, and their count falls to zero once idle for
# server_idle_timeout (no server connection is leaked).
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init faults_backend

mb_tool fault_tool FAULT_TOOL
mb_tool txn_tool TXN_TOOL

pg_own_init "max_connections = 50" || { mb_not_ok "the test's own cluster starts"; mb_test_done; }
pg_own_psql postgres -c "CREATE ROLE fault LOGIN" -c "CREATE DATABASE faultdb OWNER fault" >/dev/null
pg_own_psql faultdb -c "CREATE TABLE fault_copy (t text)" -c "ALTER TABLE fault_copy OWNER TO fault" >/dev/null

mb_db faultdb "host=127.0.0.1 port=$OWN_PORT dbname=faultdb user=fault pool_size=4"
mb_user fc fc-pass
mb_set pool_mode transaction
mb_set server_login_retry 0.2
mb_set query_wait_timeout 10
mb_set server_idle_timeout 1
mb_start_or_bail
c=$(mb_connstr fc fc-pass faultdb)

FAULT_CONNSTR=$c FAULT_DB=faultdb FAULT_POOL_SIZE=4

# ---- warm-up: the load runs, then ends, with no fault
mb_load_start warm "$c" 8
sleep 1
mb_after_fault warm warm ""
rss_before=$(mb_rss)

# ---- kill -9 of a backend in the middle of the load: PostgreSQL ends every session and recovers
mb_load_start kill "$c" 8
sleep 0.5
victim=$(pg_own_psql postgres -c "SELECT pid FROM pg_stat_activity WHERE datname = 'faultdb'
	AND backend_type = 'client backend' ORDER BY state = 'active' DESC LIMIT 1")
if [[ $victim =~ ^[0-9]+$ ]] && kill -KILL "$victim"; then
	mb_ok "kill -9 of backend $victim under load"
else
	mb_not_ok "kill -9 of a backend under load" "no backend found: $victim"
fi
pg_own_ready || mb_diag "the cluster did not come back: $(tail -n 5 "$OWN_DIR/postgres.log")"
mb_like "$(cat "$OWN_DIR/postgres.log")" "\\(PID $victim\\) was terminated by signal 9" "PostgreSQL saw its backend killed"
mb_like "$(cat "$OWN_DIR/postgres.log")" "terminating any other active server processes" "...and ended every other session"
# a client linked to a server gets 08006 (or the connection just ends, as on PostgreSQL itself); one that
# reconnects before a login works again gets the fast fail of server_login_retry
mb_after_fault "kill -9" kill '^(08006 server conn crashed\?|conn server closed the connection unexpectedly|08P01 server login has been failing, cached error: .* \(server_login_retry\))$'

# ---- backends frozen (SIGSTOP): one in the middle of the load's queries, and the one of a client that sent its
# query into an open transaction; query_timeout closes both clients and servers, the others are served meanwhile
mb_set query_timeout 2
mb_reload
mb_load_start freeze "$c" 8
mkfifo "$T_DIR/v.fifo"
mb_bg "$T_DIR/v.out" "$TXN_TOOL" script "$T_DIR/v.fifo"
v_tool=$MB_BG_PID
exec 4>"$T_DIR/v.fifo"
printf 'open v %s\nq v BEGIN\nq v SELECT %s\n' "$c" "'v in'" >&4
mb_wait_line "$T_DIR/v.out" "^v: v in" 10 || mb_diag "v: $(cat "$T_DIR/v.out")"
v_pid=$(pg_own_psql postgres -c "SELECT pid FROM pg_stat_activity WHERE query = 'SELECT ''v in'''")
l_pid=$(pg_own_psql postgres -c "SELECT pid FROM pg_stat_activity WHERE query LIKE '%/*load*/%'
	AND pid <> pg_backend_pid() ORDER BY state = 'active' DESC LIMIT 1")
if [[ $v_pid =~ ^[0-9]+$ ]] && [[ $l_pid =~ ^[0-9]+$ ]] && pg_own_freeze "$v_pid" && pg_own_freeze "$l_pid"; then
	mb_ok "backends $v_pid (a client's open transaction) and $l_pid (the load's) frozen"
else
	mb_not_ok "two backends frozen" "v: '$v_pid', load: '$l_pid'"
fi
echo "q v SELECT 'v frozen'" >&4
mb_wait_line "$T_DIR/v.out" "^v: ERROR" 10
mb_like "$(cat "$T_DIR/v.out")" '^v: ERROR 08P01 query timeout$' \
	"the client whose server froze with its query on the way: FATAL 08P01 query timeout"
exec 4>&-
mb_wait_exit "$v_tool" 5
t=$(mb_through_pooler)
mb_like "$t" '^[0-9.]+$' "while two backends are frozen, a new client is served ($t s)"
pg_own_thaw "$v_pid"
pg_own_thaw "$l_pid"
gone() { pg_own_psql postgres -c "SELECT count(*) FROM pg_stat_activity WHERE pid IN ($v_pid, $l_pid)"; }
for ((i = 0; i < 100; i++)); do
	[ "$(gone)" = 0 ] && break
	sleep 0.1
done
mb_is "$(gone)" 0 "thawed, both backends end (the pooler had closed their connections)"
mb_after_fault "frozen backends" freeze '^08P01 query timeout$'
mb_like "$MB_LOAD_OUT" '^error 1 08P01 query timeout$' "exactly one load client got query timeout (the one on the frozen server)"
mb_unset query_timeout
mb_reload

# ---- pg_terminate_backend of a server in the middle of a large result, a COPY TO STDOUT, a COPY FROM STDIN
# (in the small-buffers pass the server often ends inside a message relayed in pkt_buf pieces: the client
# must then see the connection close, never an error written into the middle of that message)
kinds="result copyout copyin"
mb_load_start stream "$c" 8
for kind in $kinds; do
	rm -f "$T_DIR/go"
	mb_bg "$T_DIR/s-$kind.out" "$FAULT_TOOL" stream "$c" "$kind" "mark_$kind" "$T_DIR/go"
	s_pid=$MB_BG_PID
	mb_wait_line "$T_DIR/s-$kind.out" '^streaming' 20 || mb_diag "$kind: $(cat "$T_DIR/s-$kind.out")"
	out=$(pg_own_psql postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE query LIKE '%mark_$kind%' AND pid <> pg_backend_pid()")
	mb_is "$out" t "$kind: its backend is terminated in the middle of the stream"
	touch "$T_DIR/go"
	mb_wait_exit "$s_pid" 30 || mb_diag "$kind: the client did not end"
	out=$(cat "$T_DIR/s-$kind.out")
	mb_diag "$kind: $(tr '\n' ';' <<<"$out")"
	# the server's error, or (the server ended inside a message the client had begun to read) a plain close
	mb_like "$out" '^end ERROR (08006 server conn crashed\?|57P01 terminating connection due to administrator command|conn server closed the connection unexpectedly)$' \
		"$kind: the client gets an error or a closed connection, never a normal end or a broken message"
	mb_like "$out" '^foreign 0$' "$kind: every row it read is its own"
done
mb_after_fault "terminated streams" stream ""

rss_after=$(mb_rss)
mb_diag "pooler RSS: $rss_before kB after the warm-up, $rss_after kB after the faults"
if mb_rss_checks; then
	mb_lt "$((rss_after - rss_before))" 8192 "the faults cost the pooler no memory: RSS grew by $((rss_after - rss_before)) kB"
fi

mb_test_done

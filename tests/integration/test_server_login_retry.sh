#!/usr/bin/env bash
# Failed server logins as PgBouncer 1.25 handles them. When the server cannot be reached, or answers 57P03
# (starting up, shutting down), the clients waiting for the pool stay queued and the login is tried again after
# server_login_retry, until their query_wait_timeout: a PostgreSQL restart costs them a wait, not an error.
# Any other login error goes to the waiting clients at once. A new client of a pool with no server left, while
# logins fail and the retry is not due, fails at once with the cached error (PgBouncer's fast fail).
# The PostgreSQL that is stopped and started here is a second cluster of this test's own.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init server_login_retry

mb_tool txn_tool TXN_TOOL

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS

# ---- a second cluster (trust authentication, superuser postgres), stopped and started by this test
pg2=$T_DIR/pg2
pg2_port=$(mb_free_port)
mkdir -p "$pg2"
mb_chown_pg "$pg2"
if ! as_pg "$PG_BINDIR/initdb" -D "$pg2/data" -A trust -U postgres -E UTF8 --locale=C -N >"$T_DIR/initdb2.log" 2>&1; then
	mb_not_ok "initdb of the second cluster" "$(tail -n 5 "$T_DIR/initdb2.log")"
	mb_test_done
fi
cat >>"$pg2/data/postgresql.conf" <<EOF
port = $pg2_port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$pg2'
fsync = off
EOF
mb_chown_pg "$pg2"
PG2_PID=
pg2_start() {
	as_pg "$PG_BINDIR/pg_ctl" -D "$pg2/data" -l "$pg2/log" -w -t 60 start >>"$T_DIR/pg_ctl2.log" 2>&1 || return 1
	PG2_PID=$(head -n 1 "$pg2/data/postmaster.pid")
	mb_track_pid "$PG2_PID" postgres
}
pg2_stop() { # MODE
	as_pg "$PG_BINDIR/pg_ctl" -D "$pg2/data" -m "${1:-fast}" -w -t 60 stop >>"$T_DIR/pg_ctl2.log" 2>&1
}
pg2_cleanup() {
	[ -n "$PG2_PID" ] && mb_kill_wait "$PG2_PID" INT
	mb_test_cleanup
}
trap pg2_cleanup EXIT
pg2_start || { mb_not_ok "the second cluster starts" "$(tail -n 5 "$pg2/log")"; mb_test_done; }
pg2_psql() { timeout 30 "$PG_BINDIR/psql" -X -q -A -t -h 127.0.0.1 -p "$pg2_port" -U postgres -d postgres "$@"; }

in_range() {
	if [ -n "$2" ] && awk -v v="$2" -v lo="$3" -v hi="$4" 'BEGIN { exit !(v + 0 >= lo && v + 0 <= hi) }'; then
		mb_ok "$1 ($2 s)"
	else
		mb_not_ok "$1" "got: '$2' s, expected $3..$4 s" "${5:-}"
	fi
}
field() { sed -n "s/^$2: $3 *//p" <<<"$1" | head -n 1; }
now() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v n="$EPOCHREALTIME" 'BEGIN { printf "%.2f", n - a }'; }

mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_set pool_mode transaction
mb_set server_login_retry 1
mb_set query_wait_timeout 30
mb_db r_fast "host=127.0.0.1 port=$pg2_port dbname=postgres user=postgres"
mb_db r_smart "host=127.0.0.1 port=$pg2_port dbname=postgres user=postgres"
mb_db r_nodb "host=127.0.0.1 port=$pg2_port dbname=no_such_database user=postgres"
mb_start_or_bail
c_fast=$(mb_connstr "$su" "$sp" r_fast)
c_smart=$(mb_connstr "$su" "$sp" r_smart)

# ---- PostgreSQL stopped (connections refused), then started again
out=$(pqt query "$c_fast" "SELECT 'served before'" 2>&1)
mb_is "$out" "served before" "r_fast serves a client while PostgreSQL is up"
pg2_stop fast
mark=$(wc -l <"$MB_LOG")
# b logs in (the pool knows its welcome parameters) and asks for a server while PostgreSQL is down
printf 'open b %s\nsend b SELECT %s\nwait b 40\n' "$c_fast" "'b served'" >"$T_DIR/b.script"
mb_bg "$T_DIR/b.out" "$TXN_TOOL" script "$T_DIR/b.script"
b_pid=$MB_BG_PID
mb_wait_line "$MB_LOG" "closing because: connect failed" 10 || mb_diag "no failed connect logged: $(tail -n 5 "$MB_LOG")"
t=$(now)
out=$(printf 'open c %s\nq c SELECT 1\n' "$c_fast" | tt 2>&1)
took=$(since "$t")
out=$(lines_of "$out" c | sed -n 2p)
mb_like "$out" '^ERROR 08P01 server login has been failing, cached error: connect failed.*\(server_login_retry\)' \
	"a new client while logins fail and no server is left: PgBouncer's fast fail, with the cached error"
# at once: a queued client would wait for query_wait_timeout (30 s); the bound leaves room for a loaded machine
in_range "...at once, not queued" "$took" 0 5
sleep 1.5	# at least one retry fails meanwhile
mb_alive "$b_pid" && mb_ok "the waiting client is still queued while PostgreSQL is down" ||
	mb_not_ok "the waiting client is still queued while PostgreSQL is down" "$(cat "$T_DIR/b.out")"
pg2_start || mb_not_ok "the second cluster starts again"
mb_wait_exit "$b_pid" 20
out=$(cat "$T_DIR/b.out")
mb_is "$(lines_of "$out" b | sed -n 2p)" "b served" "after PostgreSQL is back, the waiting client is served (a wait, not an error)" "$out"
refused=$(tail -n +"$((mark + 1))" "$MB_LOG" | grep -c 'closing because: connect failed')
if [ "$refused" -ge 2 ]; then
	mb_ok "the login was retried while PostgreSQL was down ($refused failed connects)"
else
	mb_not_ok "the login was retried while PostgreSQL was down" "$refused failed connects logged"
fi
mb_is "$(pqt query "$c_fast" "SELECT 'next'" 2>&1)" next "once a login worked, new clients are served at once"

# ---- 57P03: PostgreSQL shutting down (a smart shutdown waits for its sessions): the client waits too
mb_bg "$T_DIR/hold.out" "$PQTOOL" hold "host=127.0.0.1 port=$pg2_port user=postgres dbname=postgres" 60
hold_pid=$MB_BG_PID
mb_wait_line "$T_DIR/hold.out" connected 10 || mb_diag "hold did not connect: $(cat "$T_DIR/hold.out")"
as_pg "$PG_BINDIR/pg_ctl" -D "$pg2/data" -m smart -W stop >>"$T_DIR/pg_ctl2.log" 2>&1
for ((i = 0; i < 50; i++)); do
	pg2_psql -c "SELECT 1" 2>&1 | grep -q "shutting down" && break
	sleep 0.1
done
mark=$(wc -l <"$MB_LOG")
# r_smart never had a server: the client waits for the pool's first login (its welcome)
printf 'open d %s\nq d SELECT %s\n' "$c_smart" "'d served'" >"$T_DIR/d.script"
mb_bg "$T_DIR/d.out" "$TXN_TOOL" script "$T_DIR/d.script"
d_pid=$MB_BG_PID
mb_wait_line "$MB_LOG" "server login failed: FATAL the database system is shutting down" 10
mb_like "$(tail -n +"$((mark + 1))" "$MB_LOG")" \
	"S-[0-9]+ r_smart/postgres@127\\.0\\.0\\.1:$pg2_port server login failed: FATAL the database system is shutting down" \
	"57P03 is logged as PgBouncer does: 'server login failed: FATAL <message>'"
sleep 1.5
mb_alive "$d_pid" && mb_ok "57P03 (shutting down): the waiting client stays queued" ||
	mb_not_ok "57P03 (shutting down): the waiting client stays queued" "$(cat "$T_DIR/d.out")"
mb_kill_wait "$hold_pid" TERM
pg2_stop fast	# the pooler's idle server of r_fast is a session too: end them all
pg2_start || mb_not_ok "the second cluster starts again after the smart shutdown"
mb_wait_exit "$d_pid" 20
out=$(cat "$T_DIR/d.out")
mb_is "$(lines_of "$out" d | tail -n 1)" "d served" "after the restart the client that waited through 57P03 is served" "$out"

# ---- any other login error (3D000: no such database on the server) goes to the waiting clients at once
t=$(now)
out=$(pqt query "$(mb_connstr "$su" "$sp" r_nodb)" "SELECT 1" 2>&1)
took=$(since "$t")
mb_like "$out" '^ERROR 3D000 database "no_such_database" does not exist' "another login error reaches the waiting client with its SQLSTATE"
in_range "...at once" "$took" 0 1

# ---- while logins fail, one login at a time: a server that accepts and never answers (server_connect_timeout)
# gets one probe per server_login_retry, not one per waiting client
mb_set server_connect_timeout 0.5
mb_set server_login_retry 0.2
mb_set query_wait_timeout 2.5
mb_write_config
mark=$(wc -l <"$MB_LOG")
kill -HUP "$MB_PID"
mb_wait_line "$MB_LOG" "configuration reloaded" 5 || mb_diag "no reload logged"
mb_is "$(pqt query "$c_fast" "SELECT 'up'" 2>&1)" up "r_fast is served (its pool knows its welcome parameters)"
pg2_stop fast
mb_bg "$T_DIR/hole.out" "$TXN_TOOL" blackhole "$pg2_port" 20
hole_pid=$MB_BG_PID
mb_wait_line "$T_DIR/hole.out" listening 5 || mb_diag "blackhole did not start: $(cat "$T_DIR/hole.out")"
mark=$(wc -l <"$MB_LOG")
qpids=()
for i in 1 2 3 4; do
	printf 'open q%d %s\nsend q%d SELECT 1\nwait q%d 10\n' "$i" "$c_fast" "$i" "$i" >"$T_DIR/q$i.script"
	mb_bg "$T_DIR/q$i.out" "$TXN_TOOL" script "$T_DIR/q$i.script"
	qpids+=("$MB_BG_PID")
done
for p in "${qpids[@]}"; do mb_wait_exit "$p" 10; done
mb_is "$(grep -l 'query_wait_timeout (last server login failed: connect timeout' "$T_DIR"/q[1-4].out | wc -l)" 4 \
	"4 clients waiting for an unanswering server end at query_wait_timeout, naming the connect timeout" \
	"$(cat "$T_DIR"/q[1-4].out)"
tries=$(tail -n +"$((mark + 1))" "$MB_LOG" | grep -c 'closing because: connect timeout')
if [ "$tries" -ge 4 ] && [ "$tries" -le 8 ]; then
	mb_ok "after the first failure, one login per retry ($tries attempts in 2.5 s for 4 waiting clients)"
else
	mb_not_ok "after the first failure, one login per retry" "$tries attempts in 2.5 s for 4 waiting clients (4..8 expected)"
fi
mb_kill_wait "$hole_pid" TERM
mb_set server_connect_timeout 15

# ---- a server that stays unreachable: the waiting client ends at query_wait_timeout, with the reason
mb_stop
dead_port=$(mb_free_port)
mb_set server_login_retry 0.3
mb_set query_wait_timeout 1.5
mb_db r_dead "host=127.0.0.1 port=$dead_port dbname=postgres user=postgres"
mb_start_or_bail
mark=$(wc -l <"$MB_LOG")
t=$(now)
out=$(pqt query "$(mb_connstr "$su" "$sp" r_dead)" "SELECT 1" 2>&1)
took=$(since "$t")
mb_like "$out" '^ERROR 08P01 query_wait_timeout \(last server login failed: connect failed' \
	"an unreachable server: the client waits and gets query_wait_timeout, with the last login error"
in_range "...after query_wait_timeout = 1.5 s" "$took" 1.4 3.5
retries=$(tail -n +"$((mark + 1))" "$MB_LOG" | grep -c 'closing because: connect failed')
if [ "$retries" -ge 2 ] && [ "$retries" -le 8 ]; then
	mb_ok "an unreachable server: the login is retried every server_login_retry ($retries attempts in 1.5 s)"
else
	mb_not_ok "an unreachable server: the login is retried every server_login_retry" "$retries attempts in 1.5 s"
fi

mb_test_done

#!/usr/bin/env bash
# Connections that never send a startup packet cannot lock real clients out: max_client_conn still counts
# every connection (PgBouncer's rule), but a connection accepted at the limit closes the oldest one that is
# still waiting for its startup packet. Over TCP (with and without TCP_DEFER_ACCEPT) and the unix socket,
# where no kernel option holds silent connections back.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init prelogin_flood

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
max=20 idle=30
c_tcp() { mb_connstr "$su" "$sp" "$MB_DB"; }
c_unix() { echo "host=$T_DIR port=$MB_PORT user='$su' password='$sp' dbname='$MB_DB' connect_timeout=10"; }

# flood NAME TARGET CONN: $idle silent connections to TARGET, then 5 real logins with CONN; they must all
# get in, quickly, while the silent ones are still open.
flood() {
	local name=$1 target=$2 conn=$3 ok=0 t0 out i last=
	mb_bg "$T_DIR/idle-$name.out" "$PQTOOL" idle "$target" "$MB_PORT" "$idle" 12
	if ! mb_wait_line "$T_DIR/idle-$name.out" '^opened' 10; then
		mb_not_ok "$name: $idle silent connections opened" "$(cat "$T_DIR/idle-$name.out")"
		return
	fi
	mb_like "$(cat "$T_DIR/idle-$name.out")" "^opened $idle" "$name: $idle silent connections opened"
	sleep 2	# accepted (TCP_DEFER_ACCEPT hands them over after its timeout)
	t0=$SECONDS
	for ((i = 0; i < 5; i++)); do
		out=$(pqt query "$conn" "select 'in'" 2>&1)
		if [ "$out" = in ]; then ok=$((ok + 1)); else last=$out; fi
	done
	mb_is "$ok" 5 "$name: real clients log in past $idle silent connections with max_client_conn = $max ($last)"
	if [ $((SECONDS - t0)) -le 6 ]; then
		mb_ok "$name: at once, not after client_login_timeout"
	else
		mb_not_ok "$name: at once, not after client_login_timeout" "$((SECONDS - t0)) s"
	fi
	if mb_wait_line "$T_DIR/idle-$name.out" '^closed' 20; then
		mb_like "$(tail -n 1 "$T_DIR/idle-$name.out")" '^closed ([1-9][0-9])$' \
			"$name: silent connections over the limit were closed ($(tail -n 1 "$T_DIR/idle-$name.out"))"
	else
		mb_not_ok "$name: idle tool finished" "$(cat "$T_DIR/idle-$name.out")"
	fi
}

for defer in 0 1; do
	mb_reset
	mb_pgdb "$MB_DB"
	mb_user "$su" "$sp"
	mb_set auth_type scram-sha-256
	mb_set max_client_conn "$max"
	mb_set client_login_timeout 60
	mb_set tcp_defer_accept "$defer"
	mb_start_or_bail
	if [ "$defer" = 0 ]; then
		flood "tcp" 127.0.0.1 "$(c_tcp)"
		flood "unix" "$T_DIR/.s.PGSQL.$MB_PORT" "$(c_unix)"
	else
		flood "tcp, tcp_defer_accept" 127.0.0.1 "$(c_tcp)"
	fi
	mb_check_healthy "still healthy afterwards (tcp_defer_accept = $defer)"
	# logged-in clients still count as PgBouncer counts them: max_client_conn is not raised
	mb_stop
done

# the limit itself stays PgBouncer's: with max_client_conn = 2 and two logged-in clients, a third is refused
mb_reset
mb_pgdb "$MB_DB"
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_set max_client_conn 2
mb_start_or_bail
mb_bg "$T_DIR/h1.out" "$PQTOOL" hold "$(c_tcp)" 6
mb_bg "$T_DIR/h2.out" "$PQTOOL" hold "$(c_tcp)" 6
mb_wait_line "$T_DIR/h1.out" '^connected' 10 && mb_wait_line "$T_DIR/h2.out" '^connected' 10 ||
	mb_diag "hold clients: $(cat "$T_DIR/h1.out" "$T_DIR/h2.out")"
out=$(pqt connect "$(c_tcp)" 2>&1)
mb_like "$out" 'no more connections allowed \(max_client_conn\)' "logged-in clients count against max_client_conn ($out)"
mb_is "$(tail -n 1 "$T_DIR/h1.out")$(tail -n 1 "$T_DIR/h2.out")" "connectedconnected" \
	"logged-in clients are never closed to make room"

mb_test_done

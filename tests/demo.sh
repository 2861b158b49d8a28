#!/usr/bin/env bash
# make demo: a throwaway PostgreSQL 15 with moonbouncer in front; prints how to connect, stops both on Ctrl-C.
#
#   tests/demo.sh            run until Ctrl-C (or SIGTERM)
#   tests/demo.sh --once     start, run one query through the pooler, stop (a smoke test of the demo itself)
#   tests/demo.sh --port N   moonbouncer listens on port N (make demo PORT=N); without it 6432, or a free
#                            port if 6432 is taken
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=integration/lib.sh
source "$here/integration/lib.sh"

once= port=
while [ $# -gt 0 ]; do
	case $1 in
	--once) once=1 ;;
	--port)
		port=${2:-}
		shift
		;;
	--port=*) port=${1#--port=} ;;
	*)
		echo "usage: tests/demo.sh [--once] [--port N]" >&2
		exit 2
		;;
	esac
	shift
done
if [ -n "$port" ] && ! [[ $port =~ ^[0-9]+$ && $port -ge 1 && $port -le 65535 ]]; then
	echo "demo: invalid port '$port' (expected 1-65535)" >&2
	exit 2
fi

[ -x "$MB_BIN" ] || { echo "demo: $MB_BIN is not built (run make)" >&2; exit 1; }
[ -x "$PG_BINDIR/initdb" ] || { echo "demo: PostgreSQL binaries not found (make deps)" >&2; exit 1; }

DEMO_DIR=$(mktemp -d /tmp/moonbouncer-demo.XXXXXX)
chmod 755 "$DEMO_DIR"
PG_DIR=$DEMO_DIR/pg
PG_PID=
MB_PID=
DEMO_USER=demo
DEMO_DB=demo
DEMO_PASS=demo-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
SUPER_PASS=super-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')

stopping=
stop_all() {
	[ -n "$stopping" ] && return
	stopping=1
	trap - INT TERM
	echo
	if [ -n "$MB_PID" ] && mb_alive "$MB_PID"; then
		echo "demo: stopping moonbouncer (pid $MB_PID)"
		# SIGINT waits for clients' servers to be released; do not wait long for a demo
		kill -INT "$MB_PID" 2>/dev/null
		if ! mb_wait_exit "$MB_PID" 5; then
			kill -QUIT "$MB_PID" 2>/dev/null
			mb_wait_exit "$MB_PID" 5 || { kill -KILL "$MB_PID" 2>/dev/null; mb_wait_exit "$MB_PID" 5; }
		fi
	fi
	if [ -n "$PG_PID" ] && mb_alive "$PG_PID"; then
		echo "demo: stopping PostgreSQL (pid $PG_PID)"
		kill -INT "$PG_PID" 2>/dev/null
		mb_wait_exit "$PG_PID" 30 || { kill -QUIT "$PG_PID" 2>/dev/null; mb_wait_exit "$PG_PID" 10; }
	fi
	rm -rf "$DEMO_DIR"
	echo "demo: stopped, $DEMO_DIR removed"
}
trap stop_all EXIT
trap 'exit 0' INT TERM

port_free() { [ -z "$(ss -Htln "( sport = :$1 )" 2>/dev/null)" ] && ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- PostgreSQL
mkdir -p "$PG_DIR/sock"
echo "$SUPER_PASS" >"$PG_DIR/pwfile"
mb_chown_pg "$DEMO_DIR"
PG_PORT=$(MB_IT_ROOT=$DEMO_DIR mb_free_port) || exit 1
echo "demo: creating a PostgreSQL cluster in $PG_DIR"
if ! as_pg "$PG_BINDIR/initdb" -D "$PG_DIR/data" -A scram-sha-256 -U postgres --pwfile="$PG_DIR/pwfile" \
	-E UTF8 --locale=C -N >"$PG_DIR/initdb.log" 2>&1; then
	echo "demo: initdb failed:" >&2
	tail -n 20 "$PG_DIR/initdb.log" >&2
	exit 1
fi
cat >>"$PG_DIR/data/postgresql.conf" <<EOF
port = $PG_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PG_DIR/sock'
EOF
if ! as_pg "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t 60 start >/dev/null 2>&1; then
	echo "demo: PostgreSQL did not start:" >&2
	tail -n 20 "$PG_DIR/postgres.log" >&2
	exit 1
fi
PG_PID=$(head -n 1 "$PG_DIR/data/postmaster.pid")
super() {
	PGPASSWORD=$SUPER_PASS "$PG_BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" \
		-U postgres "$@"
}
super -d postgres -c "CREATE ROLE $DEMO_USER LOGIN PASSWORD '$DEMO_PASS'" -c "CREATE DATABASE $DEMO_DB OWNER $DEMO_USER" \
	>/dev/null || exit 1
secret=$(super -d postgres -c "SELECT rolpassword FROM pg_authid WHERE rolname = '$DEMO_USER'") || exit 1

# --- moonbouncer: the auth_file holds the SCRAM secret only; the server login reuses the client's proof
if [ -n "$port" ]; then
	MB_PORT=$port
	port_free "$MB_PORT" || { echo "demo: port $MB_PORT is already in use" >&2; exit 1; }
else
	MB_PORT=6432
	port_free "$MB_PORT" || MB_PORT=$(MB_IT_ROOT=$DEMO_DIR mb_free_port) || exit 1
fi
# the default policy for transaction pooling: the guard from examples/policies
mkdir -p "$DEMO_DIR/policy.d" && cp "$MB_REPO/examples/policies/30-guard.lua" "$DEMO_DIR/policy.d/" || exit 1
policy_line="policy_dir = $DEMO_DIR/policy.d"
cat >"$DEMO_DIR/userlist.txt" <<EOF
"$DEMO_USER" "$secret"
EOF
cat >"$DEMO_DIR/pgbouncer.ini" <<EOF
;; moonbouncer demo configuration (see examples/pgbouncer.ini for every setting)
[databases]
$DEMO_DB = host=127.0.0.1 port=$PG_PORT dbname=$DEMO_DB

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $MB_PORT
unix_socket_dir = $DEMO_DIR
auth_type = scram-sha-256
auth_file = $DEMO_DIR/userlist.txt
admin_users = $DEMO_USER
stats_users = $DEMO_USER
pool_mode = transaction
default_pool_size = 10
max_client_conn = 100
logfile = $DEMO_DIR/moonbouncer.log
pidfile = $DEMO_DIR/moonbouncer.pid
$policy_line
EOF
mb_chown_pg "$DEMO_DIR"
# own session: Ctrl-C reaches this script, which then stops everything in order
(exec_as_pg setsid "$MB_BIN" "$DEMO_DIR/pgbouncer.ini") >"$DEMO_DIR/stderr.log" 2>&1 &
MB_PID=$!
if ! mb_wait_port "$MB_PORT" "$MB_PID"; then
	echo "demo: moonbouncer did not start:" >&2
	tail -n 20 "$DEMO_DIR/stderr.log" "$DEMO_DIR/moonbouncer.log" >&2 2>/dev/null
	exit 1
fi

cat <<EOF

moonbouncer is running on 127.0.0.1:$MB_PORT (pid $MB_PID), in front of PostgreSQL on port $PG_PORT (pid $PG_PID).

Connect through moonbouncer:

    PGPASSWORD='$DEMO_PASS' psql -h 127.0.0.1 -p $MB_PORT -U $DEMO_USER $DEMO_DB

or as a URL:  postgresql://$DEMO_USER:$DEMO_PASS@127.0.0.1:$MB_PORT/$DEMO_DB

Transaction pooling with the default policy, the transaction guard ($DEMO_DIR/policy.d/30-guard.lua):
try SET statement_timeout = '5s' (it follows you across server connections) or LISTEN (refused, with
the reason). Edit the policy, then reload it with: kill -HUP $MB_PID

Config: $DEMO_DIR/pgbouncer.ini
Log:    tail -f $DEMO_DIR/moonbouncer.log

Press Ctrl-C to stop both and remove $DEMO_DIR.
EOF

if [ -n "$once" ]; then
	out=$(PGPASSWORD=$DEMO_PASS timeout 30 "$PG_BINDIR/psql" -X -A -t -h 127.0.0.1 -p "$MB_PORT" -U "$DEMO_USER" \
		-c "SELECT 'through moonbouncer: ' || current_user || '@' || current_database()" "$DEMO_DB" 2>&1)
	echo "demo --once: $out"
	[[ $out == "through moonbouncer: $DEMO_USER@$DEMO_DB" ]]
	exit $?
fi

wait "$MB_PID"
echo "demo: moonbouncer exited (status $?); see $DEMO_DIR/moonbouncer.log"
tail -n 20 "$DEMO_DIR/moonbouncer.log" 2>/dev/null

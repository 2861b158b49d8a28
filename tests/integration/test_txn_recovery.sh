#!/usr/bin/env bash
# Recovery: kill -9 of a PostgreSQL backend (the postmaster then restarts every backend) and a full restart of
# PostgreSQL, both during load. The pooler survives, drops the dead servers, and later transactions succeed -
# also for clients that stayed connected to the pooler throughout. Runs on a PostgreSQL cluster of its own.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init txn_recovery

mb_tool txn_tool TXN_TOOL

# ---- a cluster of our own (trust authentication from 127.0.0.1), stopped by its postmaster's PID at the end
OWN=$T_DIR/pg
OWN_PORT=$(mb_free_port)
own_pid() { head -n 1 "$OWN/data/postmaster.pid" 2>/dev/null; }
own_stop() {
	local pid
	pid=$(own_pid)
	[ -n "$pid" ] && mb_kill_wait "$pid" INT
}
trap 'exec 3>&- 2>/dev/null; own_stop; mb_test_cleanup' EXIT
own_start() {
	as_pg "$PG_BINDIR/pg_ctl" -D "$OWN/data" -l "$OWN/postgres.log" -w -t 60 start >>"$OWN/pg_ctl.log" 2>&1 || return 1
	mb_track_pid "$(own_pid)" "$PG_BINDIR/postgres"
}
mkdir -p "$OWN"
mb_chown_pg "$OWN"
if ! as_pg "$PG_BINDIR/initdb" -D "$OWN/data" -A trust -U postgres -E UTF8 --locale=C -N >"$OWN/initdb.log" 2>&1; then
	mb_not_ok "initdb of our own cluster" "$(tail -n 5 "$OWN/initdb.log")"
	mb_test_done
fi
cat >>"$OWN/data/postgresql.conf" <<-EOT
	port = $OWN_PORT
	listen_addresses = '127.0.0.1'
	unix_socket_directories = '$OWN'
	max_connections = 50
	fsync = off
	synchronous_commit = off
	full_page_writes = off
EOT
own_start || { mb_not_ok "start our own cluster" "$(tail -n 5 "$OWN/postgres.log")"; mb_test_done; }
own_psql() { timeout 30 "$PG_BINDIR/psql" -X -q -A -t -h 127.0.0.1 -p "$OWN_PORT" -U postgres "$@"; }
own_psql -d postgres -c "CREATE DATABASE rec_db" >/dev/null
timeout 60 "$PG_BINDIR/pgbench" -i -q -s 1 -h 127.0.0.1 -p "$OWN_PORT" -U postgres rec_db >"$OWN/pgbench-init.log" 2>&1 ||
	{ mb_not_ok "pgbench -i" "$(tail -n 5 "$OWN/pgbench-init.log")"; mb_test_done; }

mb_db rec_db "host=127.0.0.1 port=$OWN_PORT dbname=rec_db pool_size=5"
mb_user postgres rec-pass
mb_set auth_type scram-sha-256
mb_set pool_mode transaction
mb_set server_login_retry 0.5
mb_set query_wait_timeout 10
mb_start_or_bail
c=$(mb_connstr postgres rec-pass rec_db)
export PGPASSWORD=rec-pass

# a client connected to the pooler throughout, driven line by line through a FIFO
mkfifo "$T_DIR/held.fifo"
mb_bg "$T_DIR/held.out" "$TXN_TOOL" script "$T_DIR/held.fifo"
exec 3>"$T_DIR/held.fifo"
echo "open h $c" >&3
echo "q h SELECT 'h before'" >&3
mb_wait_line "$T_DIR/held.out" '^h: h before' 10 || mb_diag "held client: $(cat "$T_DIR/held.out")"

# wait until PostgreSQL accepts connections again (at most 30 s)
own_ready() {
	local i
	for ((i = 0; i < 300; i++)); do
		own_psql -d rec_db -c "SELECT 1" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}
# seconds until a client gets through the pooler again (at most 20 s); "never" otherwise
through_pooler() {
	local start=$EPOCHREALTIME i
	for ((i = 0; i < 200; i++)); do
		if [ "$(pqt query "$c" "SELECT 'back'" 2>/dev/null)" = back ]; then
			awk -v s="$start" -v n="$EPOCHREALTIME" 'BEGIN { printf "%.2f", n - s }'
			return
		fi
		sleep 0.1
	done
	echo never
}
load_bg() { mb_bg "$T_DIR/load-$1.out" "$PG_BINDIR/pgbench" -c 8 -j 2 -T "$2" -h 127.0.0.1 -p "$MB_PORT" -U postgres rec_db; }
# after_outage NAME: the checks that follow each outage
after_outage() {
	local name=$1 t out rc failed n
	mb_wait_exit "$LOAD_PID" 30
	if mb_alive "$MB_PID"; then mb_ok "$name: the pooler is still running"; else mb_not_ok "$name: the pooler is still running"; fi
	t=$(through_pooler)
	mb_like "$t" '^[0-9.]+$' "$name: a new client gets through the pooler once PostgreSQL is back (after $t s)"
	echo "q h SELECT '$name: h after'" >&3
	mb_wait_line "$T_DIR/held.out" "^h: $name: h after" 15
	mb_is "$(grep "^h: $name" "$T_DIR/held.out" | tail -n 1)" "h: $name: h after" \
		"$name: the client that stayed connected to the pooler (idle, no server) runs its next transaction"
	out=$(timeout 120 "$PG_BINDIR/pgbench" -c 8 -j 2 -t 50 -M extended -h 127.0.0.1 -p "$MB_PORT" -U postgres rec_db 2>&1)
	rc=$?
	failed=$(awk -F': ' '/number of failed transactions/ {print $2}' <<<"$out" | cut -d' ' -f1)
	mb_is "$rc/$(awk -F': ' '/actually processed/ {print $2}' <<<"$out")/${failed:-?}" "0/400/400/0" \
		"$name: pgbench -c 8 -t 50 afterwards: exit 0, 400/400 transactions, 0 failed"
	[ "$rc" != 0 ] && mb_diag "$(tail -n 15 <<<"$out")"
	n=$(own_psql -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE datname = 'rec_db'")
	if [ "${n:-99}" -le 5 ] 2>/dev/null; then
		mb_ok "$name: PostgreSQL sees at most pool_size=5 connections afterwards ($n)"
	else
		mb_not_ok "$name: PostgreSQL sees at most pool_size=5 connections afterwards" "got $n"
	fi
}

# ---- kill -9 of a backend that serves the pooler, during load
load_bg kill 5
LOAD_PID=$MB_BG_PID
sleep 1.5
victim=$(own_psql -d postgres -c "SELECT pid FROM pg_stat_activity WHERE datname = 'rec_db'
	AND pid <> pg_backend_pid() ORDER BY backend_start LIMIT 1")
if [[ $victim =~ ^[0-9]+$ ]]; then
	kill -KILL "$victim"
	mb_ok "kill -9 of backend $victim during load"
else
	mb_not_ok "kill -9 of a backend during load" "no backend found: $victim"
fi
own_ready || mb_diag "our cluster did not come back: $(tail -n 5 "$OWN/postgres.log")"
grep -q 'terminated by signal 9' "$OWN/postgres.log" && mb_ok "PostgreSQL went through crash recovery" ||
	mb_not_ok "PostgreSQL went through crash recovery" "$(tail -n 5 "$OWN/postgres.log")"
after_outage "kill -9"

# ---- full restart (fast shutdown, start) during load
load_bg restart 6
LOAD_PID=$MB_BG_PID
sleep 1.5
old_pm=$(own_pid)
as_pg "$PG_BINDIR/pg_ctl" -D "$OWN/data" -m fast -w -t 60 stop >>"$OWN/pg_ctl.log" 2>&1
sleep 1
own_start || mb_diag "restart failed: $(tail -n 5 "$OWN/postgres.log")"
mb_like "$(own_pid)" "^[0-9]+$" "PostgreSQL restarted (postmaster $old_pm -> $(own_pid))"
after_outage "restart"

# ---- immediate shutdown (no goodbye to the backends' clients), then start, during load
load_bg immediate 6
LOAD_PID=$MB_BG_PID
sleep 1.5
as_pg "$PG_BINDIR/pg_ctl" -D "$OWN/data" -m immediate -w -t 60 stop >>"$OWN/pg_ctl.log" 2>&1
sleep 1
own_start || mb_diag "start after immediate stop failed: $(tail -n 5 "$OWN/postgres.log")"
after_outage "immediate stop"

exec 3>&-
mb_test_done

#!/usr/bin/env bash
# Shutdown as PgBouncer 1.25 does it: SIGINT and SIGTERM close the TCP listeners at once (so_reuseport
# rolling restarts, refused rather than hanging connects), keep the unix socket and refuse logins on it;
# SIGINT closes clients waiting for a server; a second SIGINT/SIGTERM exits at once; SIGQUIT exits at
# once even while a policy is stuck inside a C library call, removing the pidfile and the unix socket.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init shutdown

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
base_config() {
	mb_pgdb "$MB_DB"
	mb_user "$su" "$sp"
	mb_set auth_type scram-sha-256
}
mb_ok_if() { if eval "$1"; then mb_ok "$2"; else mb_not_ok "$2" "$3"; fi; }
c_tcp() { mb_connstr "$su" "$sp" "$MB_DB" "$@"; }
c_unix() { echo "host=$T_DIR port=$MB_PORT user='$su' password='$sp' dbname='$MB_DB' connect_timeout=10"; }

# connect N times in a row over TCP; prints "ok=K fail=F max_ms=M last=ERR" (M: the slowest connect)
connect_many() {
	local n=$1 ok=0 fail=0 max=0 last= out i t0 ms
	for ((i = 0; i < n; i++)); do
		t0=$(date +%s%N)
		out=$(timeout 10 "$PQTOOL" query "$(c_tcp)" "select 1" 2>&1)
		ms=$((($(date +%s%N) - t0) / 1000000))
		[ "$ms" -gt "$max" ] && max=$ms
		if [ "$out" = 1 ]; then ok=$((ok + 1)); else fail=$((fail + 1)) last=$out; fi
	done
	echo "ok=$ok fail=$fail max_ms=$max last=$last"
}

# hold CONN SECONDS in the background; waits until connected
hold_client() {
	local out=$1 conn=$2 secs=$3
	mb_bg "$out" "$PQTOOL" hold "$conn" "$secs"
	mb_wait_line "$out" '^connected' 10 || mb_diag "hold client did not connect: $(cat "$out")"
}

# --- rolling restart: two processes on one port with so_reuseport; SIGTERM the old one
base_config
mb_set so_reuseport 1
mb_start_or_bail
old_pid=$MB_PID
# held long enough to outlast the 20 connects below on a loaded machine under ASan
hold_client "$T_DIR/roll-hold.out" "$(c_tcp)" 15
mkdir -p "$T_DIR/b"
mb_chown_pg "$T_DIR/b"
sed -e "s|^unix_socket_dir = .*|unix_socket_dir = $T_DIR/b|" -e "s|^pidfile = .*|pidfile = $T_DIR/b/mb.pid|" \
	-e "s|^logfile = .*|logfile = $T_DIR/b/mb.log|" "$MB_INI" >"$T_DIR/b/pgbouncer.ini"
mb_chown_pg "$T_DIR/b/pgbouncer.ini"
(exec_as_pg "$MB_BIN" "$T_DIR/b/pgbouncer.ini") >>"$T_DIR/stderr-b.log" 2>&1 &
new_pid=$!
MB_PIDS+=("$new_pid")
mb_track_pid "$new_pid" "$MB_BIN"
if mb_wait_line "$T_DIR/b/mb.log" 'listening on 127\.0\.0\.1' 10; then
	mb_ok "rolling restart: a second process starts on the same port"
else
	mb_not_ok "rolling restart: a second process starts on the same port" "$(cat "$T_DIR/stderr-b.log")"
fi
kill -TERM "$old_pid"
mb_wait_line "$MB_LOG" 'got SIGTERM' 5 || mb_diag "no SIGTERM line in the old process's log"
res=$(connect_many 20)
mb_like "$res" '^ok=20 fail=0 ' "rolling restart: every new connection after SIGTERM succeeds ($res)"
max_ms=$(sed -n 's/.*max_ms=\([0-9]*\).*/\1/p' <<<"$res")
mb_ok_if "[ \"${max_ms:-99999}\" -lt 5000 ]" "rolling restart: no connection waited for a timeout (slowest ${max_ms} ms)" "$res"
mb_ok_if "mb_alive $old_pid" "rolling restart: the old process still serves its client" "exited early"
if mb_wait_exit "$old_pid" 25; then
	mb_ok "rolling restart: the old process exits once its client is gone"
	MB_PID=
else
	mb_not_ok "rolling restart: the old process exits once its client is gone"
fi
mb_is "$(tail -n 1 "$T_DIR/roll-hold.out")" done "rolling restart: the old process's client was not cut off"
mb_like "$(cat "$MB_LOG")" 'client connections dropped, exiting' "rolling restart: PgBouncer's exit line"
kill -INT "$new_pid"
mb_wait_exit "$new_pid" 10 || mb_diag "second process did not exit"

# --- SIGTERM: TCP refused at once, unix socket stays and refuses logins, a second signal exits at once
mb_reset
base_config
mb_start_or_bail
hold_client "$T_DIR/term-hold.out" "$(c_tcp)" 30
kill -TERM "$MB_PID"
mb_wait_line "$MB_LOG" 'got SIGTERM, shutting down, waiting for all clients disconnect' 5 ||
	mb_not_ok "SIGTERM: PgBouncer's log line"
t0=$(date +%s%N)
out=$(timeout 20 "$PQTOOL" connect "$(c_tcp)" 2>&1)
ms=$((($(date +%s%N) - t0) / 1000000))
mb_like "$out" '^ERROR .*(refused|could not connect)' "SIGTERM: a new TCP connection is refused ($out)"
mb_ok_if "[ $ms -lt 2000 ]" "SIGTERM: refused at once, not after a timeout (${ms} ms)" "$out"
mb_ok_if "[ -S \"$T_DIR/.s.PGSQL.$MB_PORT\" ]" "SIGTERM: the unix socket stays" "gone"
out=$(pqt connect "$(c_unix)" 2>&1)
mb_like "$out" '^ERROR 08P01 pooler is shutting down' "SIGTERM: a login on the unix socket is refused ($out)"
kill -INT "$MB_PID"
if mb_wait_exit "$MB_PID" 3; then
	mb_ok "SIGTERM then SIGINT: exits at once with a client still connected"
	MB_PID=
else
	mb_not_ok "SIGTERM then SIGINT: exits at once with a client still connected"
fi
mb_like "$(cat "$MB_LOG")" 'got SIGINT while shutting down, fast exit' "second signal: PgBouncer's log line"

# --- SIGINT: a client waiting for a server is closed, a session holding one keeps it
mb_reset
base_config
mb_set default_pool_size 1
mb_set query_wait_timeout 60
mb_start_or_bail
hold_client "$T_DIR/int-hold.out" "$(c_tcp)" 6
mb_bg "$T_DIR/int-wait.out" "$PQTOOL" query "$(c_tcp)" "select 'served'"
sleep 1
kill -INT "$MB_PID"
if mb_wait_line "$T_DIR/int-wait.out" 'ERROR' 2; then
	mb_like "$(cat "$T_DIR/int-wait.out")" '^ERROR .*server shutting down' \
		"SIGINT: a client waiting for a server is closed with PgBouncer's message"
else
	mb_not_ok "SIGINT: a client waiting for a server is closed" "$(cat "$T_DIR/int-wait.out")"
fi
out=$(timeout 20 "$PQTOOL" connect "$(c_tcp)" 2>&1)
mb_like "$out" '^ERROR .*(refused|could not connect)' "SIGINT: a new TCP connection is refused ($out)"
if mb_wait_exit "$MB_PID" 10; then
	mb_ok "SIGINT: exits once the session's server is released"
	MB_PID=
else
	mb_not_ok "SIGINT: exits once the session's server is released"
fi
mb_is "$(tail -n 1 "$T_DIR/int-hold.out")" done "SIGINT: the session holding a server was not cut off"
mb_like "$(cat "$MB_LOG")" 'server connections dropped, exiting' "SIGINT: PgBouncer's exit line"

# --- SIGQUIT while a policy is stuck inside a C call: exits at once, pidfile and unix socket removed
mb_reset
base_config
mb_policy_copy stuck_c.lua
mb_set policy_file "$T_DIR/stuck_c.lua"
mb_set policy_timeout 60	# the pattern functions stop at policy_timeout: let this one run for a minute
mb_set pool_mode transaction
mb_start_or_bail
mb_ok_if "[ -f \"$MB_PIDFILE\" ] && [ -S \"$T_DIR/.s.PGSQL.$MB_PORT\" ]" "SIGQUIT: pidfile and unix socket exist before" "missing"
mb_bg "$T_DIR/stuck.out" "$PQTOOL" query "$(c_tcp)" "select 'mq_stuck aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'"
sleep 1.5
busy=$(awk '{print $14 + $15}' "/proc/$MB_PID/stat" 2>/dev/null)
sleep 0.5
busy2=$(awk '{print $14 + $15}' "/proc/$MB_PID/stat" 2>/dev/null)
mb_ok_if "[ $((busy2 - busy)) -ge 5 ]" "SIGQUIT: the pooler is busy in the policy call ($((busy2 - busy)) CPU ticks in 0.5 s)" \
	"$(cat "$T_DIR/stuck.out")"
kill -QUIT "$MB_PID"
if mb_wait_exit "$MB_PID" 2; then
	mb_ok "SIGQUIT: exits at once while a policy is busy in a C call"
	mb_is "$MB_EXIT_STATUS" 0 "SIGQUIT: exit status 0"
	MB_PID=
else
	mb_not_ok "SIGQUIT: exits at once while a policy is busy in a C call"
	mb_stop KILL
fi
mb_ok_if "[ ! -e \"$MB_PIDFILE\" ]" "SIGQUIT: pidfile removed" "still there"
mb_ok_if "[ ! -e \"$T_DIR/.s.PGSQL.$MB_PORT\" ]" "SIGQUIT: unix socket file removed" "still there"
mb_like "$(cat "$MB_LOG")" 'got SIGQUIT, fast exit' "SIGQUIT: PgBouncer's log line"

mb_test_done

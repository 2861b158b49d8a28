#!/usr/bin/env bash
# Command line: --check, -V, -h, pidfile, -d, and the refusal to run as root without -u.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init cli

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
mb_pgdb "$MB_DB"
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256

# run the binary in the foreground as the postgres user (when root), with a time limit
run_pg() { (exec_as_pg timeout 10 "$MB_BIN" "$@") 2>&1; }

# --- -V and -h
out=$(run_pg -V)
rc=$?
mb_is "$rc" 0 "-V exits 0"
mb_like "$out" '[0-9]+\.[0-9]+' "-V prints a version ($(head -n1 <<<"$out"))"
out=$(run_pg -h)
rc=$?
mb_is "$rc" 0 "-h exits 0"
mb_like "$out" '[Uu]sage' "-h prints usage"

# --- --check
mb_write_config
out=$(run_pg --check "$MB_INI")
mb_is "$?" 0 "--check on a good config exits 0 ($(head -n1 <<<"$out"))"

mb_set max_client_conn lots
mb_write_config
line=$(mb_ini_line '^max_client_conn')
out=$(run_pg --check "$MB_INI")
rc=$?
mb_is "$rc" 1 "--check on a bad number exits 1"
mb_like "$out" "pgbouncer\.ini:$line" "--check names file:line of the bad value ($(head -n1 <<<"$out"))"

mb_set max_client_conn 100
mb_set pool_mode sesion
mb_write_config
line=$(mb_ini_line '^pool_mode')
out=$(run_pg --check "$MB_INI")
rc=$?
mb_is "$rc" 1 "--check on a typo'd pool_mode exits 1"
mb_like "$out" "pgbouncer\.ini:$line" "--check names file:line of the typo ($(head -n1 <<<"$out"))"

mb_set pool_mode session
mb_set no_such_setting 1
mb_write_config
line=$(mb_ini_line '^no_such_setting')
out=$(run_pg --check "$MB_INI")
rc=$?
mb_is "$rc" 1 "--check with an unknown key exits 1, as PgBouncer refuses it"
mb_like "$out" "pgbouncer\.ini:$line: unknown configuration key 'no_such_setting'" "--check names file:line of the unknown key"
if ! mb_start; then mb_ok "the pooler does not start with an unknown key"; else mb_not_ok "the pooler does not start with an unknown key"; fi
mb_unset no_such_setting
mb_set suspend_timeout 30
mb_write_config
out=$(run_pg --check "$MB_INI")
mb_like "$out" "suspend_timeout = 30 is not supported by moonbouncer: only its default \\(10\\) is accepted" \
	"--check refuses a key moonbouncer does not act on, at another value than its default"
mb_unset suspend_timeout
mb_write_config
echo "[pgbouncr]" >>"$MB_INI"
out=$(run_pg --check "$MB_INI")
mb_like "$out" "unknown section \\[pgbouncr\\]" "--check refuses an unknown section"

# --- the shipped example config is valid (its auth_file path pointed at the shipped userlist.txt)
sed "s#^auth_file = .*#auth_file = $T_DIR/example-userlist.txt#" "$MB_REPO/examples/pgbouncer.ini" >"$T_DIR/example.ini"
cp "$MB_REPO/examples/userlist.txt" "$T_DIR/example-userlist.txt"
mb_chown_pg "$T_DIR/example.ini" "$T_DIR/example-userlist.txt"
out=$(run_pg --check "$T_DIR/example.ini")
rc=$?
mb_is "$rc" 0 "--check accepts examples/pgbouncer.ini with examples/userlist.txt ($(tail -n1 <<<"$out"))"

# --- pidfile in the foreground
mb_start_or_bail
mb_is "$(cat "$MB_PIDFILE" 2>/dev/null)" "$MB_PID" "pidfile holds the PID"
mb_check_healthy "foreground start serves clients"
mb_stop
mb_is "$MB_EXIT_STATUS" 0 "SIGINT with no clients: exit status 0"
if [ -e "$MB_PIDFILE" ]; then mb_not_ok "pidfile removed at exit"; else mb_ok "pidfile removed at exit"; fi

# --- -d: daemon; the command returns, the daemon's PID is in the pidfile
mb_write_config
(exec_as_pg timeout 10 "$MB_BIN" -d "$MB_INI") >"$T_DIR/daemon.out" 2>&1
rc=$?
mb_is "$rc" 0 "-d returns 0 after daemonizing"
dpid=
for ((i = 0; i < 50; i++)); do
	dpid=$(cat "$MB_PIDFILE" 2>/dev/null)
	[ -n "$dpid" ] && break
	sleep 0.1
done
if [ -n "$dpid" ] && mb_alive "$dpid"; then
	mb_track_pid "$dpid" "$MB_BIN"
	mb_ok "-d: daemon running, PID from pidfile ($dpid)"
	MB_PID=$dpid	# stopped by mb_test_cleanup if anything below fails
	if mb_wait_port "$MB_PORT" "$dpid"; then
		mb_check_healthy "-d: daemon serves clients"
	else
		mb_not_ok "-d: daemon serves clients" "$(cat "$T_DIR/daemon.out")"
	fi
	mb_stop
else
	mb_not_ok "-d: daemon running, PID from pidfile" "$(cat "$T_DIR/daemon.out")"
fi

# --- as root: refuses without -u, runs as the given user with -u
if mb_is_root; then
	mb_write_config
	timeout 10 "$MB_BIN" "$MB_INI" >"$T_DIR/root.out" 2>&1 &
	rpid=$!
	mb_track_pid "$rpid" "$MB_BIN"
	if mb_wait_exit "$rpid" 8; then
		if [ "$MB_EXIT_STATUS" != 0 ] && [ "$MB_EXIT_STATUS" != 124 ]; then
			mb_ok "as root without -u: refuses to start (status $MB_EXIT_STATUS: $(head -n1 "$T_DIR/root.out"))"
		else
			mb_not_ok "as root without -u: refuses to start" "exit status $MB_EXIT_STATUS" "$(cat "$T_DIR/root.out")"
		fi
	else
		mb_not_ok "as root without -u: refuses to start" "still running after 8 s"
		mb_kill_wait "$rpid" KILL
	fi

	"$MB_BIN" -u postgres "$MB_INI" >"$T_DIR/root-u.out" 2>&1 &
	MB_PID=$!
	mb_track_pid "$MB_PID" "$MB_BIN"
	if mb_wait_port "$MB_PORT" "$MB_PID"; then
		uid=$(awk '/^Uid:/ {print $3}' "/proc/$MB_PID/status")
		mb_is "$uid" "$(id -u postgres)" "as root with -u postgres: runs as postgres"
		mb_check_healthy "as root with -u postgres: serves clients"
	else
		mb_not_ok "as root with -u postgres: starts" "$(cat "$T_DIR/root-u.out")"
	fi
	mb_stop
fi

mb_test_done

#!/usr/bin/env bash
# Shutdown signals in session mode: SIGINT and SIGTERM wait for the idle client, SIGQUIT exits at once.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init signals

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
mb_pgdb "$MB_DB"
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
c_for_port() { mb_connstr "$su" "$sp" "$MB_DB"; }

# graceful SIG: an idle client holding a server for HOLD seconds; the pooler stops accepting, stays
# up while the client is there, and exits soon after it leaves.
graceful() {
	local sig=$1 hold=4 c t0 out
	mb_start_or_bail
	c=$(c_for_port)
	mb_bg "$T_DIR/hold-$sig.out" "$PQTOOL" hold "$c" "$hold"
	if ! mb_wait_line "$T_DIR/hold-$sig.out" '^connected'; then
		mb_not_ok "$sig: idle client connected" "$(cat "$T_DIR/hold-$sig.out")"
		return
	fi
	t0=$SECONDS
	kill -"$sig" "$MB_PID"
	sleep 1
	if mb_alive "$MB_PID"; then
		mb_ok "$sig: still running while the idle client holds its server"
	else
		mb_not_ok "$sig: still running while the idle client holds its server" "exited with $MB_EXIT_STATUS"
	fi
	out=$(pqt connect "$c" 2>&1)
	mb_like "$out" '^ERROR' "$sig: new clients are refused during shutdown ($out)"
	if mb_wait_exit "$MB_PID" $((hold + 6)); then
		mb_ok "$sig: exits once the client is gone (after $((SECONDS - t0)) s)"
		mb_is "$MB_EXIT_STATUS" 0 "$sig: exit status 0"
		MB_PID=
	else
		mb_not_ok "$sig: exits once the client is gone" "still running $((SECONDS - t0)) s after the signal"
		mb_stop QUIT
	fi
	mb_is "$(tail -n 1 "$T_DIR/hold-$sig.out")" done "$sig: the idle client was not cut off"
}

graceful INT
mb_reset
mb_pgdb "$MB_DB"
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
graceful TERM

# --- SIGQUIT: immediate
mb_reset
mb_pgdb "$MB_DB"
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_start_or_bail
mb_bg "$T_DIR/hold-quit.out" "$PQTOOL" hold "$(c_for_port)" 30
mb_wait_line "$T_DIR/hold-quit.out" '^connected' || mb_diag "client did not connect: $(cat "$T_DIR/hold-quit.out")"
kill -QUIT "$MB_PID"
if mb_wait_exit "$MB_PID" 2; then
	mb_ok "QUIT: exits at once with a client connected"
	MB_PID=
else
	mb_not_ok "QUIT: exits at once with a client connected"
	mb_stop KILL
fi
if mb_wait_line "$T_DIR/hold-quit.out" '^closed' 3; then
	mb_ok "QUIT: the client sees its connection closed"
else
	mb_not_ok "QUIT: the client sees its connection closed" "$(cat "$T_DIR/hold-quit.out")"
fi

mb_test_done

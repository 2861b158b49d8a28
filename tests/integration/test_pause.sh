#!/usr/bin/env bash
# SIGUSR1 pauses (transactions wait, nothing is lost), SIGUSR2 resumes them; waiting past query_wait_timeout fails.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init pause

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
mb_pgdb "$MB_DB"
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_set pool_mode transaction
mb_set query_wait_timeout 3
mb_start_or_bail
c=$(mb_connstr "$su" "$sp" "$MB_DB")

out=$(pqt query "$c" "SELECT 'before'" 2>&1)
mb_is "$out" before "a query before the pause"

kill -USR1 "$MB_PID"
sleep 0.3
mb_bg "$T_DIR/paused.out" "$PQTOOL" query "$c" "SELECT 'during'"
sleep 1
mb_is "$(cat "$T_DIR/paused.out")" "" "paused: the query waits instead of running"
if mb_alive "$MB_PID"; then mb_ok "paused: SIGUSR1 does not stop the process"; else mb_not_ok "paused: process alive"; fi

t0=$(date +%s.%N)
kill -USR2 "$MB_PID"
mb_wait_line "$T_DIR/paused.out" '^during$' 5 || true
mb_is "$(cat "$T_DIR/paused.out")" during "resumed: the waiting query ran"
t1=$(date +%s.%N)
mb_is "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print (b - a < 2) ? "fast" : "slow" }')" fast "resumed: at once, not after a timeout"

# a pause longer than query_wait_timeout: the waiting client gets the timeout, the process carries on
kill -USR1 "$MB_PID"
sleep 0.3
out=$(pqt query "$c" "SELECT 'late'" 2>&1)
mb_like "$out" 'query_wait_timeout' "paused past query_wait_timeout: the client is told ($out)"
kill -USR2 "$MB_PID"
out=$(pqt query "$c" "SELECT 'after'" 2>&1)
mb_is "$out" after "after resuming, new queries run"
mb_test_done

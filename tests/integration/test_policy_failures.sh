#!/usr/bin/env bash
# Failing policies: one that raises, one that loops forever, one that allocates without bound. With
# policy_failure=closed the affected statement (or connect) gets an error, with open it passes; either way the
# proxy goes on serving everyone else and the policies keep working.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init policy_failures

mb_tool policy_tool PTOOL
pt() { timeout 60 "$PTOOL" "$@" 2>&1; }
now() { date +%s.%N; }
# secs_between START END MIN MAX: is END - START within [MIN, MAX]?
secs_between() { [ "$(echo "$2 - $1 >= $3 && $2 - $1 <= $4" | bc)" = 1 ]; }

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
pg_super_psql -d "$MB_DB" -c "DROP TABLE IF EXISTS fail_t; CREATE TABLE fail_t (note text); GRANT ALL ON fail_t TO PUBLIC" \
	>/dev/null 2>&1
mb_policy_copy fail_error.lua "$T_DIR/policy.d"
mb_policy_copy fail_loop.lua "$T_DIR/policy.d"
mb_policy_copy fail_alloc.lua "$T_DIR/policy.d"
mb_pgdb "$MB_DB"
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_set pool_mode transaction
mb_set policy_dir "$T_DIR/policy.d"
mb_set policy_timeout 0.2
mb_set policy_max_memory 8388608
mb_start_or_bail -v

c=$(mb_connstr "$su" "$sp" "$MB_DB")
REJ="ERROR 0A000 statement rejected: the query policy failed"
noted() { pg_super_psql -d "$MB_DB" -c "SELECT count(*) FROM fail_t WHERE note = '$1'"; }

# ---------------------------------------------------------------- policy_failure = closed (the default)
# raising hook: the statement is refused with a clear message (no traceback), not executed
out=$(pt "$c" "Q:INSERT INTO fail_t VALUES ('mb_boom closed')" "Q:SELECT 'same connection'")
mb_is "$out" "$REJ"$'\nsame connection' "closed, raising hook: statement rejected with 0A000, connection usable"
mb_is "$(noted 'mb_boom closed')" 0 "closed, raising hook: the statement did not run"
mb_like "$(grep 'policy on_query failed' "$MB_LOG")" "fail_error\.lua:14: boom in on_query \(rejecting\)" \
	"closed, raising hook: logged with file:line"
# endless loop: stopped after policy_timeout (0.2 s), statement refused
t0=$(now)
out=$(pt "$c" "Q:INSERT INTO fail_t VALUES ('mb_loop closed')" "Q:SELECT 'same connection'")
t1=$(now)
mb_is "$out" "$REJ"$'\nsame connection' "closed, endless loop: statement rejected, connection usable"
if secs_between "$t0" "$t1" 0.2 20; then
	mb_ok "closed, endless loop: stopped after policy_timeout ($(echo "$t1 - $t0" | bc | cut -c1-5) s)"
else
	mb_not_ok "closed, endless loop: stopped after policy_timeout (0.2 s .. 20 s: at once under load, never endless)" "took $(echo "$t1 - $t0" | bc) s"
fi
mb_is "$(noted 'mb_loop closed')" 0 "closed, endless loop: the statement did not run"
mb_like "$(grep 'policy on_query timed out' "$MB_LOG")" 'fail_loop\.lua' "closed, endless loop: logged as a timeout, with the file"
# unbounded allocation: stopped at policy_max_memory, statement refused
hwm0=$(mb_vmhwm "$MB_PID")
out=$(pt "$c" "Q:INSERT INTO fail_t VALUES ('mb_alloc closed')" "Q:SELECT 'same connection'")
mb_is "$out" "$REJ"$'\nsame connection' "closed, unbounded allocation: statement rejected, connection usable"
mb_is "$(noted 'mb_alloc closed')" 0 "closed, unbounded allocation: the statement did not run"
mb_like "$(grep 'policy on_query ran out of memory' "$MB_LOG")" 'fail_alloc\.lua' \
	"closed, unbounded allocation: logged as out of memory, with the file"
for i in 1 2 3; do pt "$c" "Q:SELECT 'mb_alloc again'" >/dev/null; done
hwm1=$(mb_vmhwm "$MB_PID")
if [ -n "$hwm1" ] && [ "$hwm1" -lt $((hwm0 + 65536)) ]; then
	mb_ok "closed, unbounded allocation x4: pooler peak RSS grew by less than 64 MB ($hwm0 -> $hwm1 kB)"
else
	mb_not_ok "closed, unbounded allocation x4: pooler peak RSS bounded" "VmHWM $hwm0 -> ${hwm1:-?} kB"
fi
# on_connect raising: the connection is refused
out=$(pqt connect "$c application_name=mb_boom_connect" 2>&1)
mb_is "$out" "ERROR 42501 connection rejected: the connection policy failed" \
	"closed, raising on_connect: the login is refused with 42501"
# after all that the policies still work, and everyone else was served
out=$(pt "$c" "Q:SELECT 'mb_plain_reject'" "Q:SELECT 'fine'")
mb_is "$out" $'ERROR 0A000 plain reject still works\nfine' "closed: the policies still run after the failures"

# failures while another client works: every one of its 60 statements is answered
steps=()
for i in $(seq 1 60); do steps+=("Q:SELECT $i" "SLEEP:0.03"); done
mb_bg "$T_DIR/bystander.out" "$PTOOL" "$c application_name=bystander" "${steps[@]}"
by=$MB_BG_PID
for m in mb_boom mb_loop mb_alloc mb_boom mb_loop mb_alloc; do
	out=$(pt "$c" "Q:SELECT '$m'")
	[ "$out" = "$REJ" ] || mb_diag "under way: $m gave '$out'"
done
out=$(pqt connect "$c application_name=mb_boom_connect" 2>&1)
mb_wait_exit "$by" 30
mb_is "$(seq 1 60 | tr '\n' ' ')" "$(tr '\n' ' ' <"$T_DIR/bystander.out")" \
	"closed: a client working alongside the failing policies got all 60 answers"
if mb_alive "$MB_PID"; then mb_ok "closed: the pooler is still running"; else mb_not_ok "closed: the pooler is still running"; fi
mb_check_healthy "closed: a new client is served"

# ---------------------------------------------------------------- policy_failure = open
mb_stop
mb_set policy_failure open
mb_start_or_bail -v
out=$(pt "$c" "Q:INSERT INTO fail_t VALUES ('mb_boom open')" "Q:SELECT 'same connection'")
mb_is "$out" $'CMD INSERT 0 1\nsame connection' "open, raising hook: the statement passes"
mb_is "$(noted 'mb_boom open')" 1 "open, raising hook: the statement ran"
t0=$(now)
out=$(pt "$c" "Q:INSERT INTO fail_t VALUES ('mb_loop open')")
t1=$(now)
mb_is "$out" "CMD INSERT 0 1" "open, endless loop: the statement passes"
if secs_between "$t0" "$t1" 0.2 20; then
	mb_ok "open, endless loop: after policy_timeout ($(echo "$t1 - $t0" | bc | cut -c1-5) s)"
else
	mb_not_ok "open, endless loop: after policy_timeout (0.2 s .. 20 s: at once under load, never endless)" "took $(echo "$t1 - $t0" | bc) s"
fi
mb_is "$(noted 'mb_loop open')" 1 "open, endless loop: the statement ran"
out=$(pt "$c" "Q:INSERT INTO fail_t VALUES ('mb_alloc open')")
mb_is "$out" "CMD INSERT 0 1" "open, unbounded allocation: the statement passes"
mb_is "$(noted 'mb_alloc open')" 1 "open, unbounded allocation: the statement ran"
mb_like "$(grep 'policy on_query' "$MB_LOG" | tr '\n' ' ')" \
	'failed: .*fail_error\.lua:14: boom in on_query \(policy_failure=open: passing\).*timed out.*ran out of memory' \
	"open: each failure is still logged (policy_failure=open: passing)"
out=$(pt "$c application_name=mb_boom_connect" "Q:SELECT 'connected'")
mb_is "$out" connected "open, raising on_connect: the client is let in"
out=$(pt "$c" "Q:SELECT 'mb_plain_reject'" "Q:SELECT 'fine'")
mb_is "$out" $'ERROR 0A000 plain reject still works\nfine' "open: the policies still run after the failures"
mb_check_healthy "open: a new client is served"

mb_test_done

#!/usr/bin/env bash
# make check-valgrind: a short mixed load through moonbouncer under valgrind's memcheck, then a verdict.
#
# The pooler (release build) runs under memcheck (tests/memcheck/valgrind-pooler.sh, LuaJIT's own reports
# suppressed by luajit.supp) with the transaction guard loaded; pgbench runs select-only (simple and
# prepared) and TPC-B in a transaction pool and select-only with a connection per transaction in a session
# pool, with a reload in between; then the pooler is stopped. Passes when memcheck reports no error and no
# definitely lost block. Takes about a minute; not part of make check.
set -uo pipefail
source "$(dirname "$0")/../integration/lib.sh"
command -v valgrind >/dev/null || { echo "check-valgrind: valgrind is not installed (make deps)"; exit 2; }

mb_test_init memcheck
MB_VG_BIN=$MB_BIN MB_VG_LOG=$T_DIR/memcheck.log
export MB_VG_BIN MB_VG_LOG
MB_BIN=$MB_REPO/tests/memcheck/valgrind-pooler.sh

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
mb_pgdb vg_tx "pool_size=4 pool_mode=transaction"
mb_pgdb vg_sess "pool_size=4 pool_mode=session"
mb_pgdb "$MB_DB"
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_policy_copy guard.lua
mb_set policy_file "$T_DIR/guard.lua"
# valgrind is slow to start and to stop: give the pooler's timers room
mb_set query_wait_timeout 60
mb_start_or_bail
for ((i = 0; i < 50; i++)); do
	pqt query "$(mb_connstr "$su" "$sp" vg_tx)" "SELECT 1" >/dev/null 2>&1 && break
	sleep 0.2
done

export PGPASSWORD=$sp
mb_pgbench_init 1 || mb_not_ok "pgbench -i" "$(tail -n 3 "$T_DIR/init.log")"
bench() { timeout 120 "$PG_BINDIR/pgbench" -h 127.0.0.1 -p "$MB_PORT" -U "$su" -n -T 5 "$@"; }
fails=0
for args in "-S -M simple -c 4 vg_tx" "-S -M prepared -c 4 vg_tx" "-M extended -c 2 vg_tx" "-S -C -c 2 vg_sess"; do
	# shellcheck disable=SC2086
	bench $args >"$T_DIR/bench.out" 2>&1 || { fails=$((fails + 1)); mb_diag "pgbench $args: $(tail -n 2 "$T_DIR/bench.out")"; }
	kill -HUP "$MB_PID"
done
mb_is "$fails" 0 "every pgbench run under memcheck succeeded"
out=$(pqt query "$(mb_connstr "$su" "$sp" vg_tx)" "SET work_mem = '5MB'; SHOW work_mem" 2>&1)
mb_is "$out" 5MB "a tracked SET still works"
mb_kill_wait "$MB_PID" INT
MB_PID=

summary=$(grep -E 'ERROR SUMMARY|definitely lost' "$MB_VG_LOG")
mb_diag "memcheck: $(tr '\n' ' ' <<<"$summary" | sed 's/==[0-9]*==//g')"
mb_like "$summary" 'ERROR SUMMARY: 0 errors' "no error reported"
if grep -q 'definitely lost:' "$MB_VG_LOG"; then
	mb_like "$summary" 'definitely lost: 0 bytes' "no block definitely lost"
else
	mb_ok "no block definitely lost (no leak summary: nothing lost)"
fi
if ! mb_matches "$summary" 'ERROR SUMMARY: 0 errors'; then
	grep -A 25 -m 3 -E 'Invalid|uninitialised|definitely lost in' "$MB_VG_LOG" | sed 's/^/#   /' | head -n 80
fi
mb_test_done

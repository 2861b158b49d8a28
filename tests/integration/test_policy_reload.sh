#!/usr/bin/env bash
# Policy reloads: `--check` refuses a broken policy; SIGHUP with a syntax error keeps the old policies (and says
# why); repeated SIGHUPs with a changing policy under pgbench load (transaction mode) fail no transaction.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init policy_reload

mb_tool policy_tool PTOOL
pt() { timeout 60 "$PTOOL" "$@" 2>&1; }
PSRC=$MB_REPO/tests/integration/policies
PDIR=$T_DIR/policy.d
mkdir -p "$PDIR"
mb_chown_pg "$PDIR"
# install_version V: policy.d/50-version.lua at version V, replaced in one rename
install_version() {
	sed "s/@V@/$1/" "$PSRC/version.lua.in" >"$PDIR/.50-version.lua.tmp"
	mb_chown_pg "$PDIR/.50-version.lua.tmp"
	mv "$PDIR/.50-version.lua.tmp" "$PDIR/50-version.lua"
}

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
cp "$PSRC/guard.lua" "$PDIR/30-guard.lua"
install_version 1
mb_pgdb "$MB_DB"
mb_pgdb bench_a "" mb_bench
mb_pgdb bench_b "" mb_bench
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_set pool_mode transaction
mb_set default_pool_size 10
mb_set policy_dir "$PDIR"
mb_write_config
mb_chown_pg "$PDIR"

# ---------------------------------------------------------------- moonbouncer --check
out=$(as_pg "$MB_BIN" --check "$MB_INI" 2>&1)
rc=$?
mb_is "$rc" 0 "--check with valid policies exits 0 ($(tail -n 1 <<<"$out"))"
cp "$PSRC/syntax_error.lua" "$PDIR/40-syntax_error.lua"
mb_chown_pg "$PDIR"
out=$(as_pg "$MB_BIN" --check "$MB_INI" 2>&1)
rc=$?
mb_is "$rc" 1 "--check with a policy holding a syntax error exits 1"
mb_like "$out" "40-syntax_error\.lua:5: '\}' expected near '\]'" "--check names the file, the line and Lua's message"
rm -f "$PDIR/40-syntax_error.lua"
cp "$PSRC/bad_option.lua" "$PDIR/40-bad_option.lua"
mb_chown_pg "$PDIR"
out=$(as_pg "$MB_BIN" --check "$MB_INI" 2>&1)
rc=$?
mb_is "$rc" 1 "--check with a policy that fails while loading exits 1"
mb_like "$out" "40-bad_option\.lua.*transaction_guard: unknown option 'no_such_option'" \
	"--check names the file and the policy's error"
rm -f "$PDIR/40-bad_option.lua"

mb_start_or_bail -v
c=$(mb_connstr "$su" "$sp" "$MB_DB")
version() { pt "$c" "Q:SELECT 'mb_version'"; }
mb_is "$(version)" "ERROR P0001 policy v1" "version 1 of the policy answers"

# ---------------------------------------------------------------- SIGHUP with a syntax error keeps the old set
# a client that stays connected across the reloads keeps its ctx
mb_bg "$T_DIR/ctx.out" "$PTOOL" "$c" "Q:SELECT 'mb_ctx'" "SLEEP:1.5" "Q:SELECT 'mb_ctx'" "SLEEP:2" "Q:SELECT 'mb_ctx'"
ctx_pid=$MB_BG_PID
mb_wait_line "$T_DIR/ctx.out" 'n=1' 10
cp "$PSRC/syntax_error.lua" "$PDIR/40-syntax_error.lua"
mb_chown_pg "$PDIR"
install_version 2
kill -HUP "$MB_PID"
mb_wait_line "$MB_LOG" 'reload failed' 10
mb_like "$(grep 'reload failed' "$MB_LOG")" "40-syntax_error\.lua:5: '\}' expected near '\]'.*keeping" \
	"SIGHUP with a syntax error: the log names file:line and says the old policies stay"
mb_is "$(version)" "ERROR P0001 policy v1" "SIGHUP with a syntax error: version 1 still answers (v2 not loaded either)"
out=$(pt "$c" "Q:SET statement_timeout = '1234ms'" "Q:SHOW statement_timeout")
mb_is "$out" $'CMD SET\n1234ms' "SIGHUP with a syntax error: the other policy file (guard) still works"
if mb_alive "$MB_PID"; then mb_ok "SIGHUP with a syntax error: still running"; else mb_not_ok "still running"; fi
# the ctx client's second statement runs under the old set, its third after the fix below
mb_wait_line "$T_DIR/ctx.out" 'n=2' 10
rm -f "$PDIR/40-syntax_error.lua"
kill -HUP "$MB_PID"
for _ in $(seq 1 50); do [ "$(version)" = "ERROR P0001 policy v2" ] && break; sleep 0.1; done
mb_is "$(version)" "ERROR P0001 policy v2" "SIGHUP after the fix: version 2 answers"
mb_wait_exit "$ctx_pid" 20
mb_is "$(cat "$T_DIR/ctx.out")" $'ERROR P0001 ctx n=1 v=1\nERROR P0001 ctx n=2 v=1\nERROR P0001 ctx n=3 v=2' \
	"client.ctx survives the failed and the successful reload"

# ---------------------------------------------------------------- reloads under pgbench load
export PGPASSWORD=$sp
out=$(pg_super_psql -d mb_bench -c "GRANT ALL ON SCHEMA public TO $su" 2>&1)
out=$(timeout 120 "$PG_BINDIR/pgbench" -i -q -s 1 -h 127.0.0.1 -p "$MB_PG_PORT" -U "$su" mb_bench 2>&1)
rc=$?
mb_is "$rc" 0 "pgbench -i (directly on PostgreSQL)"
[ "$rc" = 0 ] || mb_diag "$(tail -n 5 <<<"$out")"
loaded0=$(grep -c 'policy: loaded 2 files' "$MB_LOG")
timeout 60 "$PG_BINDIR/pgbench" -n -c 8 -j 2 -T 5 -h 127.0.0.1 -p "$MB_PORT" -U "$su" bench_a \
	>"$T_DIR/pgbench.out" 2>&1 &
bench=$!
MB_PIDS+=("$bench")
sleep 0.3
v=2
while mb_alive "$bench" && [ "$v" -lt 60 ]; do
	v=$((v + 1))
	install_version "$v"
	kill -HUP "$MB_PID"
	sleep 0.2
done
mb_wait_exit "$bench" 60
rc=$MB_EXIT_STATUS
out=$(cat "$T_DIR/pgbench.out")
reloads=$(($(grep -c 'policy: loaded 2 files' "$MB_LOG") - loaded0))
mb_is "$rc" 0 "pgbench -c 8 -T 5 in transaction mode during reloads exits 0"
processed=$(awk -F': ' '/number of transactions actually processed/ {print $2}' <<<"$out" | cut -d/ -f1)
failed=$(awk -F': ' '/number of failed transactions/ {print $2}' <<<"$out" | cut -d' ' -f1)
mb_like "${processed:-}" '^[1-9][0-9]*$' "transactions processed during the reloads (${processed:-none})"
mb_is "${failed:-missing}" 0 "zero failed transactions during $reloads policy reloads"
if [ "$rc" != 0 ] || [ "${failed:-x}" != 0 ]; then mb_diag "$(tail -n 20 <<<"$out")"; fi
# a loaded machine (make check runs two integration passes at once) sends fewer SIGHUPs in 5 s
if [ "$reloads" -ge 5 ]; then
	mb_ok "the policies were reloaded $reloads times while pgbench ran ($((v - 2)) SIGHUPs sent)"
else
	mb_not_ok "the policies were reloaded at least 5 times while pgbench ran" "$reloads reloads, $((v - 2)) SIGHUPs"
fi
mb_is "$(grep -Ec 'new pool bench_[ab]/' "$MB_LOG")" 2 \
	"on_transaction_begin routed to bench_a and to bench_b as the versions alternated"
mb_is "$(grep -c 'reload failed' "$MB_LOG")" 1 "no reload failed under load (only the syntax-error one)"
for _ in $(seq 1 50); do [ "$(version)" = "ERROR P0001 policy v$v" ] && break; sleep 0.1; done
mb_is "$(version)" "ERROR P0001 policy v$v" "the last version ($v) is in force"
mb_is "$(grep -c 'policy .* failed' "$MB_LOG")" 0 "no policy call failed during the reloads"

mb_check_healthy
mb_test_done

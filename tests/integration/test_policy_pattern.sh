#!/usr/bin/env bash
# A policy whose pattern match backtracks without end (string.find, gsub, match inside pcall) is stopped at
# policy_timeout like any other runaway hook: the statement is refused with a clear error, the failure is
# logged with file:line and the function, and other clients are served meanwhile.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init policy_pattern

mb_tool policy_tool PTOOL
su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
mkdir -p "$T_DIR/policy.d" && mb_policy_copy pattern_runaway.lua "$T_DIR/policy.d"
mb_pgdb "$MB_DB"
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_set pool_mode transaction
mb_set policy_dir "$T_DIR/policy.d"
mb_set policy_timeout 0.2
mb_start_or_bail
c=$(mb_connstr "$su" "$sp" "$MB_DB")
REJ="ERROR 0A000 statement rejected: the query policy failed"
a30=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
now() { date +%s.%N; }

# runaway MARK FUNCTION LINE: the statement is refused in bounded time, logged as a timeout at the line
runaway() {
	local mark=$1 fn=$2 line=$3 t0 t1 out el
	t0=$(now)
	out=$(timeout 20 "$PQTOOL" query "$c" "SELECT '$mark $a30'" 2>&1)
	t1=$(now)
	el=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
	mb_is "$out" "$REJ" "$fn: the statement is refused (${el} s)"
	mb_is "$(awk -v e="$el" 'BEGIN { print (e < 10) ? "bounded" : "unbounded" }')" bounded \
		"$fn: stopped in bounded time (${el} s, policy_timeout 0.2 s)"
	mb_like "$(grep 'policy on_query timed out' "$MB_LOG" | tail -n 1)" \
		"pattern_runaway\.lua:$line: policy budget exceeded.*in $fn" \
		"$fn: logged as a timeout with file:line and the function"
}

# another client works all along: each of its statements is answered
steps=()
for i in $(seq 1 40); do steps+=("Q:SELECT $i" "SLEEP:0.02"); done
mb_bg "$T_DIR/other.out" "$PTOOL" "$c application_name=bystander" "${steps[@]}"
other=$MB_BG_PID

runaway pat_find string.find 8
runaway pat_gsub string.gsub 12
runaway pat_match string.match 15

if mb_wait_exit "$other" 30; then
	mb_is "$(tr '\n' ' ' <"$T_DIR/other.out")" "$(seq 1 40 | tr '\n' ' ')" \
		"another client was served throughout (all 40 statements answered)"
else
	mb_not_ok "another client was served throughout" "still waiting after 30 s: $(tail -n 2 "$T_DIR/other.out")"
fi

# patterns that do not run away still work, through the metatable and the string table
out=$(timeout 20 "$PQTOOL" query "$c" "SELECT 'xyz42'" 2>&1)
mb_is "$out" "ERROR 0A000 patterns still work: xyz42" "an ordinary pattern still matches"
mb_check_healthy "the pooler still serves after three runaway patterns"
mb_test_done

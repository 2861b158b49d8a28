#!/usr/bin/env bash
# moonbouncer's own console views: SHOW POLICIES (files, hooks, the last reload), SHOW POLICY_ERRORS (the last
# failures with file:line) and SHOW TENANTS (clients, active, waiting, limits, refusals, waits) under a known load.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init admin_policy

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
mu=$MB_MD5_USER mp=$MB_MD5_PASS
mb_policy_copy fail_error.lua "$T_DIR/policy.d"
mb_policy_copy 20-tenants.lua "$T_DIR/policy.d"
mb_pgdb "$MB_DB"
mb_user "$su" "$sp"
mb_user "$mu" "$mp"
mb_user adm adm-secret
mb_set auth_type scram-sha-256
mb_set pool_mode transaction
mb_set admin_users adm
mb_set policy_dir "$T_DIR/policy.d"
mb_start_or_bail
c=$(mb_connstr "$su" "$sp" "$MB_DB")
m=$(mb_connstr "$mu" "$mp" "$MB_DB")
adm=$(mb_connstr adm adm-secret pgbouncer)
q() { pqt query "$@" 2>&1; }
# a column of the row whose first two columns are K1 and K2: col2 "SHOW X" K1 K2 N
col2() { q "$adm" "$1" | awk -F'\t' -v a="$2" -v b="$3" -v n="$4" '$1 == a && $2 == b { print $n; exit }'; }

# --- SHOW POLICIES: the files in force, each hook, the last load
mb_is "$(q "$adm" "SHOW POLICIES" | awk -F'\t' '$2 == "file" {print $1}' | xargs -n1 basename | tr '\n' ' ')" \
	"20-tenants.lua fail_error.lua " "SHOW POLICIES: a row per file in force"
mb_is "$(col2 "SHOW POLICIES" reload reload 6)" 0 "SHOW POLICIES: the last load worked"
before=$(col2 "SHOW POLICIES" on_query hook 5)
mb_is "$(q "$c" "SELECT 'fine'")" fine "a query the policies pass"
mb_is "$(q "$c" "SELECT 'mb_boom'" | cut -d' ' -f1)" ERROR "a query whose policy throws is refused"
after=$(col2 "SHOW POLICIES" on_query hook 5)
mb_is "$((after - before))" 2 "SHOW POLICIES: on_query counted both calls ($before -> $after)"
mb_is "$(col2 "SHOW POLICIES" on_query hook 6)" 1 "SHOW POLICIES: and the one failure"
mb_like "$(col2 "SHOW POLICIES" on_query hook 9)" '^[0-9]+$' "SHOW POLICIES: time spent in on_query, in µs"

# --- SHOW POLICY_ERRORS: newest first, with file:line
err=$(q "$adm" "SHOW POLICY_ERRORS" | head -n 1)
mb_like "$err" $'\ton_query\t.*fail_error.lua:[0-9]+: boom in on_query' "SHOW POLICY_ERRORS: the failure with file:line"

# --- a reload that fails keeps the old policies and says why
cp "$MB_REPO/tests/integration/policies/syntax_error.lua" "$T_DIR/policy.d/30-broken.lua"
mb_chown_pg "$T_DIR/policy.d/30-broken.lua"
mb_is "$(q "$adm" "RELOAD")" "ERROR F0000 RELOAD failed, see logs for additional details" "RELOAD with a broken policy fails"
mb_is "$(col2 "SHOW POLICIES" reload reload 6)" 1 "SHOW POLICIES: the reload failure is counted"
mb_like "$(col2 "SHOW POLICIES" reload reload 10)" "30-broken.lua" "SHOW POLICIES: with its cause"
mb_like "$(q "$adm" "SHOW POLICY_ERRORS" | head -n 1)" $'\treload\t.*30-broken.lua' "SHOW POLICY_ERRORS: the reload failure first"
mb_is "$(q "$adm" "SHOW POLICIES" | awk -F'\t' '$2 == "file"' | wc -l)" 2 "the old files stay in force"
rm -f "$T_DIR/policy.d/30-broken.lua"

# --- SHOW TENANTS: mb_md5 has max_clients 2, mb_scram max_active 2
holders=()
for i in 1 2; do
	mb_bg "$T_DIR/m$i.out" "$PQTOOL" hold "$m" 20
	holders+=("$MB_BG_PID")
	mb_wait_line "$T_DIR/m$i.out" connected 10
done
mb_like "$(q "$m" "SELECT 1")" "53300" "a third mb_md5 client is refused (max_clients 2)"
row=$(q "$adm" "SHOW TENANTS" | awk -F'\t' -v t="$mu" '$1 == t')
mb_is "$(cut -f2,5,8 <<<"$row")" $'2\t2\t1' "SHOW TENANTS: mb_md5 has 2 clients, max_clients 2, 1 rejection ($row)"
loads=()
for i in 1 2 3; do
	mb_bg "$T_DIR/s$i.out" "$PQTOOL" query "$c" "SELECT 'slept', pg_sleep(2)"
	loads+=("$MB_BG_PID")
done
for ((i = 0; i < 50; i++)); do
	row=$(q "$adm" "SHOW TENANTS" | awk -F'\t' -v t="$su" '$1 == t')
	[ "$(cut -f3,4 <<<"$row")" = $'2\t1' ] && break
	sleep 0.1
done
mb_is "$(cut -f3,4,6 <<<"$row")" $'2\t1\t2' "SHOW TENANTS: mb_scram 2 active, 1 waiting, max_active 2 ($row)"
mb_unlike "$(cut -f9 <<<"$row")" '^0$' "SHOW TENANTS: the wait for a max_active slot is counted"
for pid in "${loads[@]}"; do mb_wait_exit "$pid" 20; done
mb_is "$(cat "$T_DIR"/s*.out | grep -c '^slept')" 3 "the three transactions ran"
for pid in "${holders[@]}"; do kill "$pid" 2>/dev/null; done

mb_test_done

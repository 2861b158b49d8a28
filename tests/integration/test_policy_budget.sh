#!/usr/bin/env bash
# Tenant rate (token bucket, burst of one second's worth) and policy_max_query_length (hooks see a prefix,
# q.truncated set).
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init policy_budget

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
mkdir -p "$T_DIR/policy.d" && cp "$MB_REPO/tests/integration/policies/rate_truncate.lua" "$T_DIR/policy.d/" &&
	mb_chown_pg "$T_DIR/policy.d"
mb_pgdb "$MB_DB"
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_set pool_mode transaction
mb_set policy_dir "$T_DIR/policy.d"
mb_set policy_max_query_length 64
mb_start_or_bail
c=$(mb_connstr "$su" "$sp" "$MB_DB")

# rate = 5: 5 at once (the burst), then 5 per second: 20 transactions take at least 3 s
args=()
for i in $(seq 1 20); do args+=("SELECT $i"); done
t0=$(date +%s.%N)
out=$(pqt query "$c" "${args[@]}" 2>&1)
t1=$(date +%s.%N)
mb_is "$(echo "$out" | tail -n 1)" 20 "rate=5: all 20 transactions ran"
el=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
mb_is "$(awk -v e="$el" 'BEGIN { print (e >= 2.5 && e <= 12) ? "paced" : "not paced" }')" paced \
	"rate=5: 20 transactions paced by the token bucket (${el} s, expected 3 s)"

# policy_max_query_length = 64: a longer statement reaches the hook as a prefix, marked truncated
long="SELECT '$(printf 'x%.0s' $(seq 1 200))' AS long_value"
out=$(pqt query "$c" "$long" 2>&1)
mb_like "$out" '^ERROR 54000 .*64 bytes seen' "a statement over policy_max_query_length arrives truncated ($out)"
out=$(pqt query "$c" "SELECT 'short'" 2>&1)
mb_is "$out" short "a short statement arrives whole and passes"
mb_test_done

#!/usr/bin/env bash
# pgbench through the pooler in session mode: initialise, then 10 clients for 5 s, no failures.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init pgbench

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
mb_pgdb mb_bench "" mb_bench
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_set pool_mode session
mb_set default_pool_size 20
mb_start_or_bail

export PGPASSWORD=$sp
out=$(timeout 120 "$PG_BINDIR/pgbench" -i -s 1 -h 127.0.0.1 -p "$MB_PORT" -U "$su" mb_bench 2>&1)
rc=$?
if [ "$rc" = 0 ] && grep -q 'done in' <<<"$out"; then
	mb_ok "pgbench -i through the pooler"
else
	mb_not_ok "pgbench -i through the pooler" "exit status $rc" "$(tail -n 5 <<<"$out")"
fi

out=$(timeout 120 "$PG_BINDIR/pgbench" -c 10 -j 2 -T 5 -h 127.0.0.1 -p "$MB_PORT" -U "$su" mb_bench 2>&1)
rc=$?
mb_is "$rc" 0 "pgbench -c 10 -j 2 -T 5 exits 0"
processed=$(awk -F': ' '/number of transactions actually processed/ {print $2}' <<<"$out" | cut -d/ -f1)
failed=$(awk -F': ' '/number of failed transactions/ {print $2}' <<<"$out" | cut -d' ' -f1)
mb_like "${processed:-}" '^[1-9][0-9]*$' "transactions processed (${processed:-none})"
mb_is "${failed:-missing}" 0 "zero failed transactions"
if [ "$rc" != 0 ] || [ "${failed:-x}" != 0 ]; then
	mb_diag "$(tail -n 20 <<<"$out")"
fi
tps=$(awk '/^tps = / {print $3; exit}' <<<"$out")
mb_diag "session mode tps through the pooler: ${tps:-?} (not a benchmark)"

mb_test_done

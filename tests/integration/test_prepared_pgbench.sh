#!/usr/bin/env bash
# pgbench -M prepared in transaction pooling: 20 and 50 clients on 5 servers share named statements,
# no failed transaction, no hang, and the TPC-B books balance afterwards. Takes about 25 s.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init prepared_pgbench

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
mb_pgdb mb_bench "" mb_bench
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_set pool_mode transaction
mb_set default_pool_size 5
mb_set max_client_conn 200
mb_start_or_bail -v

export PGPASSWORD=$sp
# the tables straight in PostgreSQL: what is under test is the run, not the load
out=$(timeout 120 "$PG_BINDIR/pgbench" -i -s 1 -q -h 127.0.0.1 -p "$MB_PG_PORT" -U "$su" mb_bench 2>&1)
rc=$?
if [ "$rc" != 0 ]; then
	mb_not_ok "pgbench -i" "exit status $rc" "$(tail -n 5 <<<"$out")"
	mb_test_done
fi

# Server connections of the pool, as PostgreSQL sees them.
servers() {
	pg_super_psql -d postgres -c "SELECT count(*) FROM pg_stat_activity
		WHERE datname = 'mb_bench' AND usename = '$su' AND backend_type = 'client backend'"
}

# bench NAME PGBENCH-ARGS...: run for 10 s through the pooler (60 s limit), check the outcome.
bench() {
	local name=$1 out rc processed failed peak=0 n i
	shift
	timeout -k 5 60 "$PG_BINDIR/pgbench" -M prepared "$@" -j 2 -T 10 -h 127.0.0.1 -p "$MB_PORT" -U "$su" \
		mb_bench >"$T_DIR/$name.out" 2>&1 &
	local pid=$!
	MB_PIDS+=("$pid")
	# while it runs: never more than the pool's 5 servers
	for ((i = 0; i < 8; i++)); do
		sleep 1
		n=$(servers)
		[ "${n:-0}" -gt "$peak" ] && peak=$n
	done
	wait "$pid"
	rc=$?
	out=$(cat "$T_DIR/$name.out")
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		mb_not_ok "$name: pgbench finished within 60 s (it hung)" "$(tail -n 20 <<<"$out")"
	else
		mb_is "$rc" 0 "$name: pgbench exits 0"
	fi
	processed=$(awk -F': ' '/number of transactions actually processed/ {print $2}' <<<"$out" | cut -d/ -f1)
	failed=$(awk -F': ' '/number of failed transactions/ {print $2}' <<<"$out" | cut -d' ' -f1)
	mb_like "${processed:-}" '^[1-9][0-9]*$' "$name: transactions processed (${processed:-none})"
	mb_is "${failed:-missing}" 0 "$name: zero failed transactions"
	if [ "$peak" -ge 1 ] && [ "$peak" -le 5 ]; then
		mb_ok "$name: at most 5 server connections while it ran (peak $peak)"
	else
		mb_not_ok "$name: at most 5 server connections while it ran" "peak: $peak"
	fi
	if [ "$rc" != 0 ] || [ "${failed:-x}" != 0 ]; then
		mb_diag "$(grep -v '^pgbench: client .* aborted' <<<"$out" | tail -n 15)"
	fi
	mb_diag "$name: $(awk '/^tps = / {print $3; exit}' <<<"$out") tps"
	BENCH_PROCESSED=${processed:-0}
}

bench "select-only -c 20" -S -c 20
bench "tpc-b -c 50" -c 50

# every transaction of the TPC-B run is in the books, once
books=$(pg_super_psql -d mb_bench -c "SELECT count(*), sum(delta),
	(SELECT sum(abalance) FROM pgbench_accounts), (SELECT sum(bbalance) FROM pgbench_branches),
	(SELECT sum(tbalance) FROM pgbench_tellers) FROM pgbench_history")
IFS='|' read -r hist delta abal bbal tbal <<<"$books"
mb_is "$hist" "$BENCH_PROCESSED" "tpc-b: one history row per processed transaction"
mb_is "$abal|$bbal|$tbal" "$delta|$delta|$delta" "tpc-b: account, branch and teller balances all equal the history's sum"

# the servers hold the shared statements only: pgbench's 7 texts, none under the clients' own names
c=$(mb_connstr "$su" "$sp" mb_bench)
out=$(pqt query "$c" "SELECT count(*) FILTER (WHERE name LIKE 'MB\_%'), count(*) FILTER (WHERE name NOT LIKE 'MB\_%')
	FROM pg_prepared_statements" 2>&1)
mb_like "$out" $'^[1-7]\t0$' "a server holds 1 to 7 shared MB_ statements and no client-named one"

mb_test_done

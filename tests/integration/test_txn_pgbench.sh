#!/usr/bin/env bash
# Transaction pooling under load: 200 clients through a pool of 20, PostgreSQL never sees more than 20 server
# connections (a CONNECTION LIMIT on the server-side role makes any excess fail loudly), and pgbench with 50
# clients in simple, extended and prepared protocol finishes with zero failed transactions.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init txn_pgbench

lu=mb_txn_load lp=load-pass-$RANDOM
bdb=mb_txn_bench
pglog=$MB_IT_ROOT/pg/postgres.log
pg_super_psql -d postgres >/dev/null <<-EOF
	DO \$\$ BEGIN
		IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$lu') THEN
			CREATE ROLE $lu LOGIN;
		END IF;
	END \$\$;
	ALTER ROLE $lu PASSWORD '$lp' CONNECTION LIMIT 20;
EOF
if [ "$(pg_super_psql -d postgres -c "SELECT count(*) FROM pg_database WHERE datname = '$bdb'")" = 0 ]; then
	pg_super_psql -d postgres -c "CREATE DATABASE $bdb OWNER $lu" >/dev/null
fi
export PGPASSWORD=$lp
out=$(timeout 120 "$PG_BINDIR/pgbench" -i -q -s 2 -h 127.0.0.1 -p "$MB_PG_PORT" -U "$lu" "$bdb" 2>&1) ||
	{ mb_not_ok "pgbench -i directly against PostgreSQL" "$out"; mb_test_done; }

mb_pgdb "$bdb" "" "$bdb"
mb_user "$lu" "$lp"
mb_set auth_type scram-sha-256
mb_set pool_mode transaction
mb_set default_pool_size 20
mb_set max_client_conn 200
mb_start_or_bail

pg_mark=$(wc -l <"$pglog")
backends() { pg_super_psql -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE usename = '$lu'"; }
refused_logins() { tail -n +"$((pg_mark + 1))" "$pglog" | grep -c "too many connections for role \"$lu\""; }
# run_pgbench NAME ARGS...: pgbench through the pooler; checks exit status and failed count,
# leaves the processed count in PGB_PROCESSED and tps in PGB_TPS
run_pgbench() {
	local name=$1 out rc failed
	shift
	out=$(timeout 150 "$PG_BINDIR/pgbench" -h 127.0.0.1 -p "$MB_PORT" -U "$lu" "$@" "$bdb" 2>&1)
	rc=$?
	failed=$(awk -F': ' '/number of failed transactions/ {print $2}' <<<"$out" | cut -d' ' -f1)
	mb_is "$rc" 0 "$name: pgbench exits 0"
	mb_is "${failed:-missing}" 0 "$name: zero failed transactions"
	if [ "$rc" != 0 ] || [ "${failed:-x}" != 0 ]; then
		mb_diag "$(grep -v '^progress' <<<"$out" | tail -n 25)"
	fi
	PGB_PROCESSED=$(awk -F': ' '/number of transactions actually processed/ {print $2}' <<<"$out")
	PGB_PROCESSED=${PGB_PROCESSED:-none}
	PGB_TPS=$(awk '/^tps = / {print $3; exit}' <<<"$out")
}

# ---- 200 concurrent clients, 20 transactions each, through default_pool_size = 20
start=$SECONDS
run_pgbench "200 clients" -c 200 -j 2 -t 20 -M simple
mb_is "$PGB_PROCESSED" "4000/4000" "200 clients: every client's 20 transactions completed"
mb_diag "200 clients x 20 transactions in $((SECONDS - start)) s (tps ${PGB_TPS:-?})"
mb_is "$(backends)" 20 "the pool grew to exactly default_pool_size = 20 server connections"
mb_is "$(refused_logins)" 0 "PostgreSQL refused no login of $lu (CONNECTION LIMIT 20 never exceeded)"
mb_is "$(grep -c -i 'login failed' "$MB_LOG")" 0 "no failed server login in the pooler's log"

# ---- 50 clients for 10 s in simple and extended protocol, 5 s with named prepared statements
for mode in simple extended; do
	run_pgbench "-c 50 -M $mode" -c 50 -j 2 -T 10 -M "$mode"
	mb_like "$PGB_PROCESSED" '^[1-9][0-9]*$' "-c 50 -M $mode: transactions processed ($PGB_PROCESSED, tps ${PGB_TPS:-?})"
done
run_pgbench "-c 50 -M prepared" -c 50 -j 2 -T 5 -M prepared
mb_like "$PGB_PROCESSED" '^[1-9][0-9]*$' "-c 50 -M prepared: transactions processed ($PGB_PROCESSED, tps ${PGB_TPS:-?})"

mb_is "$(refused_logins)" 0 "after all runs: PostgreSQL refused no login of $lu"
mb_is "$(backends)" 20 "after all runs: 20 server connections, no more"
mb_is "$(pg_super_psql -d postgres -c "SELECT count(*) FROM pg_stat_activity
	WHERE usename = '$lu' AND state <> 'idle'")" 0 "after all runs: every server connection is idle (none stuck in a transaction)"
mb_is "$(grep -c -i 'login failed' "$MB_LOG")" 0 "after all runs: no failed server login in the pooler's log"
out=$(PGPASSWORD=$lp pqt query "$(mb_connstr "$lu" "$lp" "$bdb")" "SELECT count(*) > 0 FROM pgbench_history" 2>&1)
mb_is "$out" t "the pooler serves a normal client afterwards"
mb_test_done

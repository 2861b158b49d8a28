#!/usr/bin/env bash
# route_by_user_db sends users to different databases; tenant_limits max_active=2 holds under 10 concurrent
# clients (proved server-side), max_clients refuses the extra connection. Both policies load from policy_dir.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init policy_route_tenant


su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
mu=$MB_MD5_USER mp=$MB_MD5_PASS
ru=$MB_RELOAD_USER rp=$MB_RELOAD_PASS
ou=mb_pol_other op=other-pass
pg_super_psql -d postgres >/dev/null 2>&1 <<-SQL
	DROP DATABASE IF EXISTS mb_route_a;
	DROP DATABASE IF EXISTS mb_route_b;
SQL
pg_super_psql -d postgres >/dev/null <<-SQL
	CREATE DATABASE mb_route_a;
	CREATE DATABASE mb_route_b;
	DO \$\$ BEGIN
		IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ou') THEN
			CREATE ROLE $ou LOGIN PASSWORD '$op';
		END IF;
	END \$\$;
SQL
pg_super_psql -d mb_route_a >/dev/null <<-SQL
	CREATE TABLE slots (id int PRIMARY KEY);
	INSERT INTO slots VALUES (1), (2);
	CREATE TABLE conc_log (app text, slot int, at timestamptz DEFAULT clock_timestamp());
	GRANT ALL ON slots, conc_log TO PUBLIC;
SQL
mb_policy_copy 10-route.lua "$T_DIR/policy.d"
mb_policy_copy 20-tenants.lua "$T_DIR/policy.d"
mb_pgdb "$MB_DB"
mb_pgdb db_a "" mb_route_a
mb_pgdb db_b "" mb_route_b
mb_user "$su" "$sp"
mb_user "$mu" "$mp"
mb_user "$ru" "$rp"
mb_user "$ou" "$op"
mb_set auth_type scram-sha-256
mb_set pool_mode transaction
mb_set default_pool_size 20
mb_set policy_dir "$T_DIR/policy.d"
mb_start_or_bail -v

who="SELECT current_database(), current_user"
# --- route by user: every client asks for mb_db
out=$(pqt query "$(mb_connstr "$su" "$sp" "$MB_DB")" "$who" 2>&1)
mb_is "$out" "mb_route_a	$su" "$su asking for $MB_DB is routed to db_a (current_database mb_route_a)"
out=$(pqt query "$(mb_connstr "$mu" "$mp" "$MB_DB")" "$who" 2>&1)
mb_is "$out" "mb_route_b	$mu" "$mu asking for $MB_DB is routed to db_b (current_database mb_route_b)"
out=$(pqt query "$(mb_connstr "$ru" "$rp" "$MB_DB")" "$who" 2>&1)
mb_is "$out" "mb_route_a	$su" "$ru is routed to db_a with server user $su"
out=$(pqt query "$(mb_connstr "$ou" "$op" "$MB_DB")" "$who" 2>&1)
mb_is "$out" "$MB_DB	$ou" "a user with no rule gets the database it asked for"
out=$(pqt query "$(mb_connstr "$su" "$sp" db_b)" "$who" 2>&1)
mb_is "$out" "mb_route_a	$su" "$su asking for the entry db_b is routed to db_a all the same"

# --- tenant max_active=2: 10 concurrent clients of the tenant, 3 transactions each
# Each transaction takes the lowest free row of slots (2 rows) FOR UPDATE SKIP LOCKED and holds it to COMMIT:
# a third transaction in flight at the same time finds none and logs slot -1.
txn() {
	echo "BEGIN;"
	echo "INSERT INTO conc_log (app, slot) SELECT current_setting('application_name'),"
	echo "  coalesce((SELECT id FROM slots ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED), -1);"
	echo "SELECT pg_sleep(0.15);"
	echo "COMMIT;"
}
{ txn; txn; txn; } >"$T_DIR/txn3.sql"
txn >"$T_DIR/txn1.sql"
mb_chown_pg "$T_DIR"
run_clients() {
	local user=$1 pass=$2 file=$3 prefix=$4 i pids=()
	for i in $(seq 1 10); do
		mb_bg "$T_DIR/$prefix$i.out" env PGPASSWORD="$pass" PGAPPNAME="$prefix$i" PGCONNECT_TIMEOUT=10 \
			timeout 60 "$PG_BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$MB_PORT" \
			-U "$user" -d "$MB_DB" -f "$file"
		pids+=("$MB_BG_PID")
	done
	RC_OK=0
	for i in "${pids[@]}"; do
		mb_wait_exit "$i" 60
		[ "$MB_EXIT_STATUS" = 0 ] && RC_OK=$((RC_OK + 1))
	done
}
t0=$(date +%s.%N)
run_clients "$su" "$sp" "$T_DIR/txn3.sql" t
elapsed=$(echo "$(date +%s.%N) - $t0" | bc)
mb_is "$RC_OK" 10 "max_active=2: all 10 clients finished without error"
res=$(pg_super_psql -d mb_route_a -c "SELECT count(*), count(*) FILTER (WHERE slot = -1),
	count(*) FILTER (WHERE slot = 2), count(DISTINCT app) FROM conc_log WHERE app LIKE 't%'")
IFS='|' read -r n_txn n_over n_two n_apps <<<"$res"
mb_is "$n_txn $n_apps" "30 10" "max_active=2: 30 transactions of 10 clients committed"
mb_is "$n_over" 0 "max_active=2: no transaction ever ran while two others held the server (server-side proof)"
if [ "${n_two:-0}" -ge 1 ]; then
	mb_ok "max_active=2: two transactions did run at once ($n_two took the second slot)"
else
	mb_not_ok "max_active=2: two transactions did run at once" "no transaction took slot 2"
fi
# 30 transactions of >= 0.15 s, 2 at a time: at least 2.25 s
if [ "$(echo "$elapsed >= 2.25" | bc)" = 1 ]; then
	mb_ok "max_active=2: the 30 transactions took ${elapsed%???????}s (>= 2.25 s when 2 run at once)"
else
	mb_not_ok "max_active=2: the 30 transactions took >= 2.25 s" "took ${elapsed}s"
fi
# the proof can fail: the same load from a user without limits does run a third transaction at once
run_clients "$ru" "$rp" "$T_DIR/txn1.sql" u
n_over=$(pg_super_psql -d mb_route_a -c "SELECT count(*) FROM conc_log WHERE app LIKE 'u%' AND slot = -1")
mb_is "$RC_OK" 10 "control (no limit): all 10 clients finished"
if [ "${n_over:-0}" -ge 1 ]; then
	mb_ok "control (no limit): $n_over transactions found both slots taken (the check detects a 3rd)"
else
	mb_not_ok "control (no limit): some transaction found both slots taken" "none did"
fi

# --- tenant max_clients=2: the third connection is refused with 53300, a freed place can be taken again
mc=$(mb_connstr "$mu" "$mp" "$MB_DB")
mb_bg "$T_DIR/hold1.out" "$PQTOOL" hold "$mc" 20
h1=$MB_BG_PID
mb_bg "$T_DIR/hold2.out" "$PQTOOL" hold "$mc" 20
h2=$MB_BG_PID
mb_wait_line "$T_DIR/hold1.out" connected 10
mb_wait_line "$T_DIR/hold2.out" connected 10
out=$(pqt connect "$mc" 2>&1)
mb_like "$out" '^ERROR 53300 ' "max_clients=2: the third connection of the tenant is refused with 53300"
mb_is "$(pqt query "$(mb_connstr "$su" "$sp" "$MB_DB")" "SELECT 1" 2>&1)" 1 "max_clients=2: other tenants still connect"
mb_kill_wait "$h1" TERM
sleep 0.3
out=$(pqt query "$mc" "$who" 2>&1)
mb_is "$out" "mb_route_b	$mu" "max_clients=2: after one leaves, a new connection of the tenant is accepted"
mb_kill_wait "$h2" TERM

mb_check_healthy
mb_test_done

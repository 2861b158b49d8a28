#!/usr/bin/env bash
# Pool limits in transaction mode: default_pool_size, pool_size ([databases] and [users]), min_pool_size,
# reserve_pool_size + reserve_pool_timeout, max_db_connections, max_user_connections (with eviction of an idle
# server of another pool), max_client_conn, max_db_client_connections, max_user_client_connections, FIFO.
# Server connection counts are proved from PostgreSQL's own log: log_disconnections is on while the test runs,
# and every server session's [start, end] is rebuilt from its disconnection line once the pooler has stopped.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init txn_limits

mb_tool txn_tool TXN_TOOL

u1=mb_txn_lim p1=lim-pass-1
u2=mb_txn_lim2 p2=lim-pass-2
pglog=$MB_IT_ROOT/pg/postgres.log
pg_super_psql -d postgres >/dev/null <<-EOT
	DO \$\$ BEGIN
		IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$u1') THEN CREATE ROLE $u1 LOGIN; END IF;
		IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$u2') THEN CREATE ROLE $u2 LOGIN; END IF;
	END \$\$;
	ALTER ROLE $u1 PASSWORD '$p1';
	ALTER ROLE $u2 PASSWORD '$p2';
EOT
# log_disconnections can only be set for the whole cluster: set it for this test, reset it when it ends
restore_cluster() { pg_super_psql -d postgres -c "ALTER SYSTEM RESET log_disconnections" -c "SELECT pg_reload_conf()" >/dev/null; }
trap 'restore_cluster; mb_test_cleanup' EXIT
pg_super_psql -d postgres -c "ALTER SYSTEM SET log_disconnections = on" -c "SELECT pg_reload_conf()" >/dev/null
for ((i = 0; i < 50; i++)); do
	[ "$(pg_super_psql -d postgres -c "SHOW log_disconnections")" = on ] && break
	sleep 0.1
done
pg_super_psql -d "$MB_DB" >/dev/null <<-EOT
	SET client_min_messages = warning;
	DROP SEQUENCE IF EXISTS txn_fifo;
	CREATE SEQUENCE txn_fifo;
	GRANT ALL ON SEQUENCE txn_fifo TO PUBLIC;
EOT

# A fresh config for one phase: transaction mode, both users, the settings given after.
phase() {
	mb_stop
	wait_gone
	mb_reset
	mb_user "$u1" "$p1"
	mb_user "$u2" "$p2"
	mb_set auth_type scram-sha-256
	mb_set pool_mode transaction
	MARK=$(wc -l <"$pglog")
}
backends() {
	pg_super_psql -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE usename ~ '^(${1:-$u1|$u2})\$'"
}
# wait until PostgreSQL has no session of the test roles left (the pooler closed them)
wait_gone() {
	local i
	for ((i = 0; i < 50; i++)); do
		[ "$(backends)" = 0 ] && return 0
		sleep 0.1
	done
	return 1
}
# pg_overlap USER-REGEX [TOLERANCE]: "MAX N" - the most server sessions of those users that PostgreSQL had at
# one time since MARK, and how many sessions there were. Stops the pooler first so every session has ended.
# A session's end is moved TOLERANCE s earlier: a backend the pooler has just closed takes a moment to exit.
pg_overlap() {
	mb_stop
	wait_gone || mb_diag "sessions still open: $(backends)"
	sleep 0.2
	tail -n +"$((MARK + 1))" "$pglog" | grep -E "disconnection: session time: .* user=($1) " |
		awk -v tol="${2:-0}" '{
			split($2, t, ":"); end = t[1] * 3600 + t[2] * 60 + t[3]
			match($0, /session time: [0-9:.]+/); split(substr($0, RSTART + 14, RLENGTH - 14), d, ":")
			n++; s[n] = end - (d[1] * 3600 + d[2] * 60 + d[3]); e[n] = end - tol
		}
		END {
			max = 0
			for (i = 1; i <= n; i++) {
				c = 0
				for (j = 1; j <= n; j++) if (s[j] <= s[i] && e[j] > s[i]) c++
				if (c > max) max = c
			}
			print max, n + 0
		}'
}
# script lines: N clients of USER on DB send SQL at once: conc_lines PREFIX DB USER PASS N SQL
conc_lines() {
	local pre=$1 c i
	c=$(mb_connstr "$3" "$4" "$2")
	for ((i = 1; i <= $5; i++)); do echo "open $pre$i $c"; done
	for ((i = 1; i <= $5; i++)); do echo "send $pre$i $6"; done
}
conc_wait() { for ((i = 1; i <= $2; i++)); do echo "wait $1$i"; done; }
distinct_pids() { sed -n "s/^$2[0-9]*: \([0-9][0-9]*\)\(|.*\)\{0,1\}$/\1/p" <<<"$1" | sort -u | wc -l; }
n_results() { grep -cE "^$2[0-9]+: [0-9]+" <<<"$1"; }
SLEEPQ="SELECT pg_backend_pid() FROM pg_sleep(0.3)"

# ---- default_pool_size, [databases] pool_size, [users] pool_size
phase
mb_set default_pool_size 3
mb_pgdb l_def "" "$MB_DB"
mb_pgdb l_two "pool_size=2" "$MB_DB"
mb_usercfg "$u2 = pool_size=1"
mb_start_or_bail
out=$({
	conc_lines a l_def "$u1" "$p1" 8 "$SLEEPQ"
	conc_wait a 8
} | tt 2>&1)
mb_is "$(n_results "$out" a)/$(distinct_pids "$out" a)" "8/3" "default_pool_size=3: 8 clients all served, by 3 servers"
mb_is "$(pg_overlap "$u1")" "3 3" "default_pool_size=3: PostgreSQL had at most 3 sessions, 3 in all"
phase
mb_set default_pool_size 3
mb_pgdb l_two "pool_size=2" "$MB_DB"
mb_usercfg "$u2 = pool_size=1"
mb_start_or_bail
out=$({
	conc_lines a l_two "$u1" "$p1" 6 "$SLEEPQ"
	conc_lines b l_two "$u2" "$p2" 4 "$SLEEPQ"
	conc_wait a 6
	conc_wait b 4
} | tt 2>&1)
mb_is "$(n_results "$out" a)/$(distinct_pids "$out" a)" "6/2" "[databases] pool_size=2 wins over default_pool_size=3"
mb_is "$(n_results "$out" b)/$(distinct_pids "$out" b)" "4/1" "[users] pool_size=1 wins over [databases] pool_size=2"
mb_is "$(pg_overlap "$u1") / $(pg_overlap "$u2")" "2 2 / 1 1" \
	"PostgreSQL had at most 2 sessions of the first user and 1 of the second"

# ---- min_pool_size (global and [databases]) keeps servers open even past server_idle_timeout
phase
mb_set default_pool_size 5
mb_set min_pool_size 3
mb_set server_idle_timeout 0.2
mb_pgdb l_min "" "$MB_DB"
mb_pgdb l_min2 "min_pool_size=2" "$MB_DB"
mb_start_or_bail
pqt query "$(mb_connstr "$u1" "$p1" l_min)" "SELECT 1" >/dev/null 2>&1
pqt query "$(mb_connstr "$u2" "$p2" l_min2)" "SELECT 1" >/dev/null 2>&1
sleep 1.2
mb_is "$(backends "$u1")/$(backends "$u2")" "3/2" \
	"min_pool_size=3 (global) and min_pool_size=2 ([databases]) servers open after one client, kept past server_idle_timeout"

# ---- reserve_pool_size + reserve_pool_timeout, and [users] reserve_pool_size overriding them
phase
mb_set default_pool_size 2
mb_set reserve_pool_size 2
mb_set reserve_pool_timeout 0.5
mb_pgdb l_res "" "$MB_DB"
mb_usercfg "$u2 = reserve_pool_size=0"
mb_start_or_bail
q="SELECT pg_backend_pid(), extract(epoch FROM statement_timestamp()) FROM pg_sleep(1.5)"
out=$({
	conc_lines a l_res "$u1" "$p1" 6 "$q"
	conc_lines b l_res "$u2" "$p2" 6 "$q"
	conc_wait a 6
	conc_wait b 6
} | tt 2>&1)
mb_is "$(n_results "$out" a)/$(distinct_pids "$out" a)" "6/4" "reserve_pool_size=2: 6 waiting clients served by 2 + 2 servers"
mb_is "$(n_results "$out" b)/$(distinct_pids "$out" b)" "6/2" "[users] reserve_pool_size=0: no reserve for that user"
# start times of a's statements relative to the first: two at once, two more once reserve_pool_timeout passed
starts=$(sed -n 's/^a[0-9]*: [0-9]*|//p' <<<"$out" | sort -n | awk 'NR == 1 {t0 = $1} {printf "%.2f ", $1 - t0}')
third=$(awk '{print $3}' <<<"$starts")
if awk -v t="${third:-99}" 'BEGIN { exit !(t >= 0.45 && t <= 1.3) }'; then
	mb_ok "reserve_pool_timeout=0.5: the reserve servers started after 0.45-1.3 s (starts: $starts)"
else
	mb_not_ok "reserve_pool_timeout=0.5: the reserve servers started after 0.45-1.3 s" "starts: $starts"
fi
mb_is "$(pg_overlap "$u1") / $(pg_overlap "$u2")" "4 4 / 2 2" "PostgreSQL had at most 2 + 2 sessions of one user, 2 of the other"

# ---- max_db_connections: global across the pools of one database, and per [databases] entry
phase
mb_set default_pool_size 5
mb_set max_db_connections 2
mb_pgdb l_mdb "" "$MB_DB"
mb_start_or_bail
out=$({
	conc_lines a l_mdb "$u1" "$p1" 3 "$SLEEPQ"
	conc_lines b l_mdb "$u2" "$p2" 3 "$SLEEPQ"
	conc_wait a 3
	conc_wait b 3
} | tt 2>&1)
mb_is "$(n_results "$out" a)/$(n_results "$out" b)" "3/3" "max_db_connections=2: every client of both users' pools served"
mb_is "$(pg_overlap "$u1|$u2" 0.05 | cut -d' ' -f1)" 2 \
	"max_db_connections=2: PostgreSQL had at most 2 sessions for the two pools of the database"
phase
mb_set default_pool_size 5
mb_pgdb l_mdb1 "max_db_connections=1" "$MB_DB"
mb_start_or_bail
out=$({
	conc_lines a l_mdb1 "$u1" "$p1" 2 "$SLEEPQ"
	conc_lines b l_mdb1 "$u2" "$p2" 2 "$SLEEPQ"
	conc_wait a 2
	conc_wait b 2
} | tt 2>&1)
mb_is "$(n_results "$out" a)/$(n_results "$out" b)" "2/2" "[databases] max_db_connections=1: every client served"
mb_is "$(pg_overlap "$u1|$u2" 0.05 | cut -d' ' -f1)" 1 "[databases] max_db_connections=1: never 2 sessions at once"

# ---- max_user_connections: global across the pools of one user, and per [users] entry
phase
mb_set default_pool_size 5
mb_set max_user_connections 2
mb_pgdb l_ua "" "$MB_DB"
mb_pgdb l_ub "" "$MB_DB"
mb_usercfg "$u2 = max_user_connections=1"
mb_start_or_bail
out=$({
	conc_lines a l_ua "$u1" "$p1" 3 "$SLEEPQ"
	conc_lines b l_ub "$u1" "$p1" 3 "$SLEEPQ"
	conc_lines c l_ua "$u2" "$p2" 2 "$SLEEPQ"
	conc_lines d l_ub "$u2" "$p2" 2 "$SLEEPQ"
	conc_wait a 3
	conc_wait b 3
	conc_wait c 2
	conc_wait d 2
} | tt 2>&1)
mb_is "$(n_results "$out" '[ab]')/$(n_results "$out" '[cd]')" "6/4" "max_user_connections: every client of both pools served"
mb_is "$(pg_overlap "$u1" 0.05 | cut -d' ' -f1) / $(pg_overlap "$u2" 0.05 | cut -d' ' -f1)" "2 / 1" \
	"max_user_connections=2 (global) and =1 ([users]): PostgreSQL never had more sessions of the user"

# eviction: the user's only slot is held by an idle server of another pool; it is closed to make room
phase
mb_set max_user_connections 1
mb_set query_wait_timeout 3
mb_pgdb l_ua "" "$MB_DB"
mb_pgdb l_ub "" "$MB_DB"
mb_start_or_bail
pa=$(pqt backend-pid "$(mb_connstr "$u1" "$p1" l_ua)" 2>&1)
start=$(date +%s.%N)
pb=$(pqt backend-pid "$(mb_connstr "$u1" "$p1" l_ub)" 2>&1)
took=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.2f", e - s }')
if [[ $pb =~ ^[0-9]+$ ]] && [ "$pb" != "$pa" ] && awk -v t="$took" 'BEGIN { exit !(t < 1.5) }'; then
	mb_ok "max_user_connections=1: the idle server of the other pool is closed for a client of this pool (${took}s)"
else
	mb_not_ok "max_user_connections=1: the idle server of the other pool is closed for a client of this pool" \
		"first pool's server $pa, second: $pb, took $took s"
fi
sleep 0.3
mb_is "$(pg_super_psql -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE pid = ${pa:-0}")/$(backends "$u1")" \
	"0/1" "the evicted server is gone; the user has one server"

# ---- max_client_conn, max_db_client_connections, max_user_client_connections: 53300
cl_script() { # clients: NAME DB USER PASS ...
	while [ $# -ge 4 ]; do
		echo "open $1 $(mb_connstr "$3" "$4" "$2")"
		shift 4
	done
}
phase
mb_set max_client_conn 3
mb_pgdb l_cc "" "$MB_DB"
mb_start_or_bail
out=$({
	cl_script a l_cc "$u1" "$p1" b l_cc "$u1" "$p1" c l_cc "$u2" "$p2" d l_cc "$u2" "$p2"
	echo "close a"
	echo "sleep 0.2"
	cl_script e l_cc "$u1" "$p1"
	echo "q e SELECT 'e in'"
} | tt 2>&1)
mb_is "$(grep -E '^[a-e]: ' <<<"$out" | tr '\n' ';')" \
	"a: connected;b: connected;c: connected;d: ERROR 53300 no more connections allowed (max_client_conn);e: connected;e: e in;" \
	"max_client_conn=3: the 4th client gets 53300; once one leaves, a new one gets in"

phase
mb_set max_db_client_connections 2
mb_pgdb l_dc "" "$MB_DB"
mb_pgdb l_dc1 "max_db_client_connections=1" "$MB_DB"
mb_pgdb l_other "" "$MB_DB"
mb_start_or_bail
out=$(cl_script a l_dc "$u1" "$p1" b l_dc "$u2" "$p2" c l_dc "$u1" "$p1" d l_other "$u1" "$p1" \
	e l_dc1 "$u1" "$p1" f l_dc1 "$u2" "$p2" | tt 2>&1)
mb_like "$(grep '^c: ' <<<"$out")" '^c: ERROR 53300 .*max_db_client_connections' \
	"max_db_client_connections=2: the 3rd client of the database gets 53300"
mb_is "$(grep -E '^[abde]: ' <<<"$out" | tr '\n' ';')" "a: connected;b: connected;d: connected;e: connected;" \
	"max_db_client_connections: other databases are not affected"
mb_like "$(grep '^f: ' <<<"$out")" '^f: ERROR 53300 ' "[databases] max_db_client_connections=1: the 2nd client gets 53300"

phase
mb_set max_user_client_connections 2
mb_pgdb l_uc "" "$MB_DB"
mb_pgdb l_uc2 "" "$MB_DB"
mb_usercfg "$u2 = max_user_client_connections=1"
mb_start_or_bail
out=$(cl_script a l_uc "$u1" "$p1" b l_uc2 "$u1" "$p1" c l_uc "$u1" "$p1" d l_uc "$u2" "$p2" \
	e l_uc2 "$u2" "$p2" | tt 2>&1)
mb_like "$(grep '^c: ' <<<"$out")" '^c: ERROR 53300 .*max_user_client_connections' \
	"max_user_client_connections=2: the user's 3rd client (across databases) gets 53300"
mb_is "$(grep -E '^[abd]: ' <<<"$out" | tr '\n' ';')" "a: connected;b: connected;d: connected;" \
	"max_user_client_connections: another user is not affected"
mb_like "$(grep '^e: ' <<<"$out")" '^e: ERROR 53300 ' "[users] max_user_client_connections=1: the user's 2nd client gets 53300"

# ---- FIFO: clients waiting for the pool's only server get it in the order they asked
phase
mb_pgdb l_fifo "pool_size=1" "$MB_DB"
mb_start_or_bail
c=$(mb_connstr "$u1" "$p1" l_fifo)
out=$(tt <<EOT 2>&1
open h $c
open w1 $c
open w2 $c
open w3 $c
open w4 $c
open w5 $c
open w3b $c
q h BEGIN
q h SELECT 1
send w1 SELECT nextval('txn_fifo')
sleep 0.1
send w2 SELECT nextval('txn_fifo')
sleep 0.1
send w3 SELECT nextval('txn_fifo')
sleep 0.1
send w4 SELECT nextval('txn_fifo')
sleep 0.1
send w5 SELECT nextval('txn_fifo')
sleep 0.1
close w3
q h COMMIT
wait w1
wait w2
wait w4
wait w5
q w3b SELECT 'w3b'
EOT
)
mb_is "$(grep -E '^w[0-9]: [0-9]' <<<"$out" | tr '\n' ';')" "w1: 1;w2: 2;w4: 3;w5: 4;" \
	"waiting clients are served first come, first served (one that gave up while waiting is skipped)"

mb_test_done

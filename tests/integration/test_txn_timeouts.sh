#!/usr/bin/env bash
# Timeouts and server checks: server_idle_timeout, server_lifetime, server_connect_timeout, server_login_retry,
# query_timeout, query_wait_timeout, client_idle_timeout, idle_transaction_timeout, transaction_timeout,
# client_login_timeout, server_check_query + server_check_delay, connect_query; per-entry overrides.
# Sub-second values throughout (fractions are accepted); each is checked as "at least T, at most 3T + 1 s".
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init txn_timeouts

mb_tool txn_tool TXN_TOOL

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
mu=$MB_MD5_USER mp=$MB_MD5_PASS
ru=mb_txn_retry rp=retry-pass
iso_db=mb_txn_iso
pglog=$MB_IT_ROOT/pg/postgres.log
if [ "$(pg_super_psql -d postgres -c "SELECT count(*) FROM pg_database WHERE datname = '$iso_db'")" = 0 ]; then
	pg_super_psql -d postgres -c "CREATE DATABASE $iso_db OWNER $su" >/dev/null
fi
pg_super_psql -d postgres >/dev/null <<-EOT
	ALTER DATABASE $iso_db SET log_statement = 'all';
	DO \$\$ BEGIN
		IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ru') THEN CREATE ROLE $ru; END IF;
	END \$\$;
	ALTER ROLE $ru NOLOGIN PASSWORD '$rp';
EOT
pg_super_psql -d "$iso_db" >/dev/null <<-EOT
	SET client_min_messages = warning;
	DROP TABLE IF EXISTS txn_cq;
	CREATE TABLE txn_cq (pid int, who name);
	GRANT ALL ON txn_cq TO PUBLIC;
EOT

# A fresh transaction-mode config (with the settings given after it).
phase() {
	mb_stop
	mb_reset
	mb_user "$su" "$sp"
	mb_user "$mu" "$mp"
	mb_user "$ru" "$rp"
	mb_set auth_type scram-sha-256
	mb_set pool_mode transaction
}
# in_range NAME VALUE LO HI [DIAG]: ok when LO <= VALUE <= HI
in_range() {
	if [ -n "$2" ] && awk -v v="$2" -v lo="$3" -v hi="$4" 'BEGIN { exit !(v + 0 >= lo && v + 0 <= hi) }'; then
		mb_ok "$1 ($2 s)"
	else
		mb_not_ok "$1" "got: '$2' s, expected $3..$4 s" "${5:-}"
	fi
}
alive_pid() { pg_super_psql -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE pid = ${1:-0}"; }
# seconds until backend PID has gone (polling, at most LIMIT s)
time_until_gone() {
	local pid=$1 limit=$2 start=$EPOCHREALTIME
	while [ "$(alive_pid "$pid")" != 0 ]; do
		awk -v s="$start" -v n="$EPOCHREALTIME" -v l="$limit" 'BEGIN { exit !(n - s > l) }' && { echo never; return; }
		sleep 0.05
	done
	awk -v s="$start" -v n="$EPOCHREALTIME" 'BEGIN { printf "%.2f", n - s }'
}
field() { sed -n "s/^$2: $3 *//p" <<<"$1" | head -n 1; }

# ---- server_idle_timeout
phase
mb_set server_idle_timeout 0.5
mb_pgdb "$MB_DB"
mb_start_or_bail
c=$(mb_connstr "$su" "$sp" "$MB_DB")
pid=$(pqt backend-pid "$c" 2>&1)
in_range "server_idle_timeout=0.5: the idle server is closed" "$(time_until_gone "$pid" 5)" 0.4 2.5

# ---- server_lifetime: a server is closed when released after its lifetime, never in the middle of a transaction
phase
mb_set server_lifetime 1
mb_set server_idle_timeout 0
mb_pgdb "$MB_DB"
mb_pgdb l_life "server_lifetime=0.3" "$MB_DB"
mb_start_or_bail
c=$(mb_connstr "$su" "$sp" "$MB_DB")
out=$(tt <<EOT 2>&1
open a $c
q a SELECT pg_backend_pid()
q a BEGIN
sleep 1.3
q a SELECT pg_backend_pid()
q a COMMIT
q a SELECT pg_backend_pid()
EOT
)
p=($(lines_of "$out" a | grep -E '^[0-9]+$'))
mb_is "${p[1]:-}" "${p[0]:-x}" "server_lifetime=1: a transaction running past the lifetime keeps its server"
if [ -n "${p[2]:-}" ] && [ "${p[2]}" != "${p[0]}" ] && [ "$(alive_pid "${p[0]}")" = 0 ]; then
	mb_ok "server_lifetime=1: released after its lifetime, the server is closed; the next transaction gets a new one"
else
	mb_not_ok "server_lifetime=1: released after its lifetime, the server is closed" "$out"
fi
# (timed from after the client exited, a few tenths of a second after that server was opened)
in_range "server_lifetime=1: an idle server is closed when its lifetime is over" "$(time_until_gone "${p[2]:-0}" 5)" 0.5 3
pid=$(pqt backend-pid "$(mb_connstr "$su" "$sp" l_life)" 2>&1)
in_range "[databases] server_lifetime=0.3 wins over server_lifetime=1" "$(time_until_gone "$pid" 5)" 0.1 1.3

# server_lifetime = 0: PgBouncer's documented meaning is "use a server only once"
phase
mb_set server_lifetime 0
mb_pgdb "$MB_DB"
mb_start_or_bail
c=$(mb_connstr "$su" "$sp" "$MB_DB")
out=$(printf 'open a %s\nq a SELECT pg_backend_pid()\nq a SELECT pg_backend_pid()\n' "$c" | tt 2>&1)
p=($(lines_of "$out" a | grep -E '^[0-9]+$'))
if [ -n "${p[1]:-}" ] && [ "${p[0]}" != "${p[1]}" ]; then
	mb_ok "server_lifetime=0: each transaction gets a server used only once"
else
	mb_not_ok "server_lifetime=0: each transaction gets a server used only once" "backend pids: ${p[*]}"
fi

# ---- server_connect_timeout: a server that accepts TCP and never answers. As in PgBouncer the client waits for
# the retries (server_login_retry) until its query_wait_timeout, which names the last login error
phase
mb_set query_wait_timeout 1.5
mb_set server_login_retry 0.2
bport=$(mb_free_port)
mb_bg "$T_DIR/blackhole.out" "$TXN_TOOL" blackhole "$bport" 30
mb_wait_line "$T_DIR/blackhole.out" listening 5 || mb_diag "blackhole did not start: $(cat "$T_DIR/blackhole.out")"
mb_set server_connect_timeout 0.5
mb_db l_hang "host=127.0.0.1 port=$bport dbname=x"
mb_start_or_bail
out=$(printf 'time\nopen a %s\ntime\n' "$(mb_connstr "$su" "$sp" l_hang)" | tt 2>&1)
mb_like "$(lines_of "$out" a)" '^ERROR 08P01 query_wait_timeout \(last server login failed: connect timeout \(server_connect_timeout 0.5s\)\)' \
	"server_connect_timeout=0.5: the waiting client ends at query_wait_timeout, with the connect timeout named"
t=$(sed -n 's/^time //p' <<<"$out" | awk 'NR == 1 {a = $1} NR == 2 {printf "%.2f", $1 - a}')
in_range "query_wait_timeout=1.5: after 1.5 s" "$t" 1.45 3.5 "$out"
mb_like "$(grep -c 'closing because: connect timeout' "$MB_LOG")" '^[2-4]$' \
	"server_connect_timeout=0.5: each login attempt is closed with PgBouncer's 'connect timeout'"

# ---- server_login_retry: a login error goes to the client; the next login is tried once server_login_retry has
# passed (a client of a pool with no welcome parameters yet waits for it, as in PgBouncer)
phase
mb_set server_login_retry 1
mb_pgdb "$MB_DB"
mb_start_or_bail
c=$(mb_connstr "$ru" "$rp" "$MB_DB")
mark=$(wc -l <"$pglog")
t0=$EPOCHREALTIME
out1=$(pqt query "$c" "SELECT 1" 2>&1)
pg_super_psql -d postgres -c "ALTER ROLE $ru LOGIN" >/dev/null
t1=$EPOCHREALTIME
out2=$(pqt query "$c" "SELECT 'second'" 2>&1)
t2=$EPOCHREALTIME
refusals=$(tail -n +"$((mark + 1))" "$pglog" | grep -c "role \"$ru\" is not permitted to log in")
mb_like "$out1" '^ERROR 28000 role "mb_txn_retry" is not permitted to log in' "the first client gets PostgreSQL's login error"
mb_is "$out2" second "server_login_retry=1: the next client waits for the retry and logs in (the role can by now)"
in_range "server_login_retry=1: ...once it has passed" "$(awk -v a="$t0" -v b="$t2" 'BEGIN { printf "%.2f", b - a }')" 0.9 2.5
mb_is "$refusals" 1 "server_login_retry=1: no new login attempt reached PostgreSQL meanwhile"
sleep "$(awk -v a="$t0" -v n="$EPOCHREALTIME" 'BEGIN { d = 1.3 - (n - a); print (d > 0 ? d : 0) }')"
out3=$(pqt query "$c" "SELECT 'third'" 2>&1)
mb_is "$out3" third "server_login_retry=1: once it has passed, a client logs in"
pg_super_psql -d postgres -c "ALTER ROLE $ru NOLOGIN" >/dev/null

# server_login_retry also holds while the pool has working servers: a pool larger than what PostgreSQL
# allows (CONNECTION LIMIT 2, pool_size 4) tries one more login per server_login_retry, not one per release
phase
mb_set server_login_retry 1
mb_pgdb "$MB_DB" "pool_size=4"
mb_start_or_bail
pg_super_psql -d postgres -c "ALTER ROLE $ru LOGIN CONNECTION LIMIT 2" >/dev/null
# the previous pooler's server of this role must be gone, or it takes one of the 2 slots
for ((i = 0; i < 50; i++)); do
	[ "$(pg_super_psql -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE usename = '$ru'")" = 0 ] && break
	sleep 0.1
done
c=$(mb_connstr "$ru" "$rp" "$MB_DB")
mark=$(wc -l <"$pglog")
out=$({
	for i in 1 2 3 4; do echo "open c$i $c"; done
	echo "time"
	for r in $(seq 1 12); do
		for i in 1 2 3 4; do echo "send c$i SELECT 'ok' FROM pg_sleep(0.05)"; done
		for i in 1 2 3 4; do echo "wait c$i"; done
	done
	echo "time"
} | tt 2>&1)
took=$(sed -n 's/^time //p' <<<"$out" | awk 'NR == 1 {a = $1} NR == 2 {printf "%.2f", $1 - a}')
refusals=$(tail -n +"$((mark + 1))" "$pglog" | grep -c "too many connections for role \"$ru\"")
mb_is "$(grep -c ': ok$' <<<"$out")" 48 "a pool above the role's CONNECTION LIMIT: every transaction served by the servers it has"
# each retry may try the 2 missing servers at once: at most 2 refusals per started second, and 2 more when
# a login already under way succeeds after a failure (a successful login ends the backoff)
max=$(awk -v t="${took:-0}" 'BEGIN { printf "%d", 2 * (int(t) + 1) + 2 }')
if [ "$refusals" -ge 1 ] && [ "$refusals" -le "$max" ]; then
	mb_ok "server_login_retry=1: $refusals refused logins in $took s (at most 2 per retry period, +2)"
else
	mb_not_ok "server_login_retry=1: at most one login attempt per server_login_retry while others serve" \
		"PostgreSQL refused $refusals logins in $took s (allowed: 1..$max)"
fi
pg_super_psql -d postgres -c "ALTER ROLE $ru NOLOGIN CONNECTION LIMIT -1" >/dev/null

# ---- query_timeout (global and [users]): as PgBouncer's code, the client and its server are closed
phase
mb_set query_timeout 0.5
mb_pgdb "$MB_DB"
mb_start_or_bail
out=$(printf 'open a %s\nq a SELECT pg_sleep(4)\nelapsed a\nq a SELECT %s\n' \
	"$(mb_connstr "$su" "$sp" "$MB_DB")" "'still here'" | tt 2>&1)
mb_like "$(lines_of "$out" a | sed -n 2p)" '^ERROR 08P01 query timeout' "query_timeout=0.5: a 4 s query ends with FATAL 08P01 query timeout"
in_range "query_timeout=0.5: after 0.5 s" "$(field "$out" a elapsed)" 0.45 2.5
mb_like "$(lines_of "$out" a | tail -n 1)" 'ERROR|lost' "query_timeout: the client connection is closed"
phase
mb_pgdb "$MB_DB"
mb_usercfg "$mu = query_timeout=0.5"
mb_start_or_bail
out=$(printf 'open a %s\nq a SELECT pg_sleep(3)\nelapsed a\nopen b %s\nq b SELECT pg_sleep(1.2)\nelapsed b\n' \
	"$(mb_connstr "$mu" "$mp" "$MB_DB")" "$(mb_connstr "$su" "$sp" "$MB_DB")" | tt 2>&1)
mb_like "$(lines_of "$out" a | sed -n 2p)" '^ERROR 08P01 query timeout' "[users] query_timeout=0.5: that user's 3 s query is ended"
in_range "[users] query_timeout=0.5: after 0.5 s" "$(field "$out" a elapsed)" 0.45 2.5
mb_is "$(lines_of "$out" b | sed -n 2p)" "" "[users] query_timeout: other users' queries are not cancelled"

# ---- query_wait_timeout (global, [databases], [users]): a client waiting for a server gets FATAL 08P01
qwt_probe() { # DB USER PASS: h holds the only server; w waits for it
	local c
	c=$(mb_connstr "$2" "$3" "$1")
	tt <<EOT 2>&1
open h $c
open w $c
q h BEGIN
q h SELECT 1
send w SELECT 'w got a server'
wait w 4
elapsed w
q h COMMIT
EOT
}
phase
mb_set query_wait_timeout 0.5
mb_pgdb "$MB_DB" "pool_size=1"
mb_start_or_bail
out=$(qwt_probe "$MB_DB" "$su" "$sp")
mb_like "$(lines_of "$out" w | sed -n 2p)" '^ERROR 08P01 query_wait_timeout' "query_wait_timeout=0.5: FATAL 08P01 query_wait_timeout"
in_range "query_wait_timeout=0.5: after 0.5 s" "$(field "$out" w elapsed)" 0.45 2.5
mb_is "$(lines_of "$out" h | tail -n 1)" COMMIT "query_wait_timeout: the client holding the server is not affected"
phase
mb_set query_wait_timeout 0
mb_pgdb l_qwt "pool_size=1 query_wait_timeout=0.5" "$MB_DB"
mb_start_or_bail
out=$(qwt_probe l_qwt "$su" "$sp")
mb_like "$(lines_of "$out" w | sed -n 2p)" '^ERROR 08P01 query_wait_timeout' \
	"[databases] query_wait_timeout=0.5 with the global one off (0): the waiting client gets 08P01"
in_range "[databases] query_wait_timeout=0.5: after 0.5 s" "$(field "$out" w elapsed)" 0.45 2.5
phase
mb_pgdb "$MB_DB" "pool_size=1"
mb_usercfg "$mu = query_wait_timeout=0.5"
mb_start_or_bail
out=$(qwt_probe "$MB_DB" "$mu" "$mp")
mb_like "$(lines_of "$out" w | sed -n 2p)" '^ERROR 08P01 query_wait_timeout' "[users] query_wait_timeout=0.5: the waiting client gets 08P01"
in_range "[users] query_wait_timeout=0.5: after 0.5 s" "$(field "$out" w elapsed)" 0.45 2.5

# ---- client_idle_timeout (transaction and session mode, [users])
phase
mb_set client_idle_timeout 0.5
mb_pgdb "$MB_DB"
mb_pgdb l_sess "pool_mode=session" "$MB_DB"
mb_start_or_bail
# a client that keeps working, in a second process alongside
{
	echo "open k $(mb_connstr "$su" "$sp" "$MB_DB")"
	for i in $(seq 1 12); do
		echo "q k SELECT 'keep $i'"
		echo "sleep 0.2"
	done
	echo "q k SELECT 'busy client still here'"
} >"$T_DIR/keep.script"
mb_bg "$T_DIR/keep.out" "$TXN_TOOL" script "$T_DIR/keep.script"
keep_pid=$MB_BG_PID
out=$(tt <<EOT 2>&1
open a $(mb_connstr "$su" "$sp" "$MB_DB")
open s $(mb_connstr "$su" "$sp" l_sess)
q s SELECT 1
closed a 4
closed s 4
EOT
)
mb_wait_exit "$keep_pid" 10
read -r _ t_a rest_a <<<"$(lines_of "$out" a | tail -n 1)"
mb_like "$rest_a" '^FATAL 08P01 client_idle_timeout' "client_idle_timeout=0.5: an idle client gets FATAL 08P01 client_idle_timeout"
# the idle clock starts at the client's last message, before its welcome (a server login) reaches it
in_range "client_idle_timeout=0.5: after 0.5 s idle" "$t_a" 0.3 2.5 "$out"
mb_is "$(lines_of "$(cat "$T_DIR/keep.out")" k | tail -n 1)" "busy client still here" \
	"client_idle_timeout: a client that keeps working (every 0.2 s for 2.4 s) stays"
read -r _ t_s rest_s <<<"$(lines_of "$out" s | tail -n 1)"
mb_like "$rest_s" '^FATAL 08P01 client_idle_timeout' "client_idle_timeout=0.5 in session mode (client holds a server): FATAL 08P01"
in_range "client_idle_timeout=0.5 in session mode: after 0.5 s idle" "${t_s:-}" 0.3 2.5 "$(lines_of "$out" s)"
phase
mb_pgdb "$MB_DB"
mb_usercfg "$mu = client_idle_timeout=0.5"
mb_start_or_bail
out=$(printf 'open a %s\nopen b %s\nclosed a 3\nq b SELECT %s\n' "$(mb_connstr "$mu" "$mp" "$MB_DB")" \
	"$(mb_connstr "$su" "$sp" "$MB_DB")" "'other user stays'" | tt 2>&1)
read -r st_a t_a rest_a <<<"$(lines_of "$out" a | tail -n 1)"
mb_like "$st_a $rest_a" '^closed FATAL 08P01 client_idle_timeout' "[users] client_idle_timeout=0.5: that user's idle client is closed"
in_range "[users] client_idle_timeout=0.5: after 0.5 s" "${t_a:-}" 0.3 2.5 "$out"
mb_is "$(lines_of "$out" b | tail -n 1)" "other user stays" "[users] client_idle_timeout: other users' idle clients stay"

# ---- idle_transaction_timeout (global, [users])
itt_probe() { # CONNSTR: idle inside a transaction; another client idle outside one
	tt <<EOT 2>&1
open a $1
open o $1
q a BEGIN
q a SELECT 1
closed a 4
q o SELECT 'idle outside a transaction: still here'
EOT
}
phase
mb_set idle_transaction_timeout 0.5
mb_pgdb "$MB_DB"
mb_start_or_bail
out=$(itt_probe "$(mb_connstr "$su" "$sp" "$MB_DB")")
read -r _ t_a rest_a <<<"$(lines_of "$out" a | tail -n 1)"
mb_like "$rest_a" '^FATAL 25P03 idle transaction timeout' "idle_transaction_timeout=0.5: FATAL 25P03 idle transaction timeout"
in_range "idle_transaction_timeout=0.5: after 0.5 s idle in the transaction" "$t_a" 0.45 2.5 "$out"
mb_is "$(lines_of "$out" o | tail -n 1)" "idle outside a transaction: still here" \
	"idle_transaction_timeout: a client idle outside a transaction is not affected"
mb_is "$(pg_super_psql -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE datname = '$MB_DB'
	AND state LIKE 'idle in transaction%'")" 0 "idle_transaction_timeout: no server is left in the transaction"
phase
mb_pgdb "$MB_DB"
mb_usercfg "$mu = idle_transaction_timeout=0.5"
mb_start_or_bail
out=$(itt_probe "$(mb_connstr "$mu" "$mp" "$MB_DB")")
read -r _ t_a rest_a <<<"$(lines_of "$out" a | tail -n 1)"
mb_like "$rest_a" '^FATAL 25P03 ' "[users] idle_transaction_timeout=0.5: FATAL 25P03"
in_range "[users] idle_transaction_timeout=0.5: after 0.5 s" "${t_a:-}" 0.45 2.5 "$out"

# ---- transaction_timeout (global, [users]): a busy transaction is ended too
ttx_script() { # CONNSTR
	echo "open a $1"
	echo "open o $1"
	echo "q o BEGIN"
	echo "q o SELECT 'short'"
	echo "q o COMMIT"
	echo "time"
	echo "q a BEGIN"
	for i in $(seq 1 20); do
		echo "q a SELECT 'busy $i'"
		echo "sleep 0.15"
	done
	echo "time"
}
ttx_check() { # NAME OUTPUT
	local out=$2 err t
	# the FATAL is the first error the client sees (as a result, or read when the connection drops). A
	# statement the client sent just as the pooler closed can turn the close into a reset that swallows the
	# message; then the pooler's log must show that it was the transaction timeout.
	err=$(lines_of "$out" a | grep -E 'ERROR|connection lost' | head -n 2 | tr '\n' ' ')
	if ! grep -Eq '25P04 transaction timeout|FATAL: +transaction timeout' <<<"$err" &&
		mb_matches "$(tail -n +"$((TTX_MARK + 1))" "$MB_LOG")" 'closing because: transaction timeout'; then
		mb_diag "$1: the client saw '$err'; the pooler logged the transaction timeout"
		err="25P04 transaction timeout (from the log)"
	fi
	mb_like "$err" '25P04 transaction timeout|FATAL: +transaction timeout' \
		"$1: a transaction kept busy is ended with FATAL 25P04"
	# the time of the error: count the statements that got through (each about 0.15 s)
	t=$(lines_of "$out" a | grep -c '^busy ')
	in_range "$1: after 1 s (statements before the end x 0.15 s)" "$(awk -v n="$t" 'BEGIN { printf "%.2f", n * 0.15 }')" 0.75 2.6
	mb_is "$(lines_of "$out" o | tail -n 1)" COMMIT "$1: a short transaction is not affected"
}
phase
mb_set transaction_timeout 1
mb_pgdb "$MB_DB"
mb_start_or_bail
TTX_MARK=$(wc -l <"$MB_LOG")
ttx_check "transaction_timeout=1" "$(ttx_script "$(mb_connstr "$su" "$sp" "$MB_DB")" | tt 2>&1)"
out=$(printf 'open a %s\nq a BEGIN\nq a SELECT pg_sleep(5)\nelapsed a\n' "$(mb_connstr "$su" "$sp" "$MB_DB")" | tt 2>&1)
mb_like "$(lines_of "$out" a | grep -m 1 ERROR)" '25P04' "transaction_timeout=1: a transaction inside one long statement is ended too"
in_range "transaction_timeout=1: ...after 1 s" "$(field "$out" a elapsed)" 0.9 3 "$out"
phase
mb_pgdb "$MB_DB"
mb_usercfg "$mu = transaction_timeout=1"
mb_start_or_bail
TTX_MARK=$(wc -l <"$MB_LOG")
ttx_check "[users] transaction_timeout=1" "$(ttx_script "$(mb_connstr "$mu" "$mp" "$MB_DB")" | tt 2>&1)"

# ---- client_login_timeout: a client that never finishes logging in
phase
mb_set client_login_timeout 0.5
mb_pgdb "$MB_DB"
mb_start_or_bail
out=$(echo "stall x 127.0.0.1 $MB_PORT $su $MB_DB 5" | tt 2>&1)
read -r _ t_x rest_x <<<"$(lines_of "$out" x)"
mb_like "$rest_x" '08P01' "client_login_timeout=0.5: a client stuck at the password gets 08P01 and is closed ($out)"
in_range "client_login_timeout=0.5: after 0.5 s" "${t_x:-}" 0.45 2.5 "$out"
mb_check_healthy "client_login_timeout: normal clients log in"

# ---- server_check_query + server_check_delay (statements counted in PostgreSQL's log)
logged_since() { tail -n +"$(($2 + 1))" "$pglog" | sed -n "s/^.*\[$1\] \(LOG\|ERROR\):  \(statement: \)\{0,1\}//p"; }
# check_phase QUERY DELAY: a pool of one server with these settings ("" keeps the default query); sets c, pid
# (its backend) and mark (the PostgreSQL log's length then)
check_phase() {
	phase
	[ -n "$1" ] && mb_set server_check_query "$1"
	mb_set server_check_delay "$2"
	mb_pgdb "$iso_db" "pool_size=1" "$iso_db"
	mb_start_or_bail
	c=$(mb_connstr "$su" "$sp" "$iso_db")
	pid=$(pqt backend-pid "$c" 2>&1)
	mark=$(wc -l <"$pglog")
}
# the delay is long enough that a loaded machine does not make the quick reuses look idle
check_phase "SELECT 'txn check'" 2
out=$(printf 'open a %s\nq a SELECT 1\nq a SELECT 2\nsleep 2.3\nq a SELECT 3\n' "$c" | tt 2>&1)
mb_is "$(logged_since "$pid" "$mark" | tr '\n' ';')" "SELECT 1;SELECT 2;SELECT 'txn check';SELECT 3;" \
	"server_check_query runs before reusing a server idle longer than server_check_delay=2, not otherwise"
check_phase "" 0.3
sleep 0.6
pid2=$(pqt backend-pid "$c" 2>&1)
mb_like "$pid" '^[0-9]+$' "a client is served (backend pid $pid)"
mb_is "$pid2" "$pid" "default server_check_query (<empty>: an empty query) keeps a healthy server"
mb_is "$(logged_since "$pid" "$mark" | grep -c -i 'error')" 0 "default server_check_query: no error on the server" \
	"$(logged_since "$pid" "$mark")"
check_phase "SELECT 'txn check'" 0
out=$(printf 'open a %s\nq a SELECT 1\nq a SELECT 2\n' "$c" | tt 2>&1)
mb_is "$(logged_since "$pid" "$mark" | tr '\n' ';')" "SELECT 'txn check';SELECT 1;SELECT 'txn check';SELECT 2;" \
	"server_check_delay=0: server_check_query runs before every reuse"
check_phase "SELECT 1/0" 0
sleep 0.1
out=$(pqt query "$c" "SELECT 'served', pg_backend_pid() <> ${pid:-0}" 2>&1)
mb_is "$out" $'served\tt' "a failing server_check_query: the server is replaced, the client is served by a new one"

# ---- connect_query: runs once on every new server, before any client uses it
phase
mb_pgdb "$iso_db" "pool_size=2 connect_query='INSERT INTO txn_cq SELECT pg_backend_pid(), current_user'" "$iso_db"
mb_start_or_bail
c=$(mb_connstr "$su" "$sp" "$iso_db")
out=$(tt <<EOT 2>&1
open a $c
open b $c
q a BEGIN
q a SELECT count(*) FROM txn_cq WHERE pid = pg_backend_pid()
q b SELECT count(*) FROM txn_cq WHERE pid = pg_backend_pid()
q a COMMIT
q a SELECT count(*) FROM txn_cq WHERE pid = pg_backend_pid()
q b SELECT count(*) FROM txn_cq WHERE pid = pg_backend_pid()
EOT
)
mb_is "$(lines_of "$out" '[ab]' | grep -E '^[0-9]+$' | tr '\n' ' ')" "1 1 1 1 " \
	"connect_query ran exactly once on each server, before its first client"
mb_is "$(pg_super_psql -d "$iso_db" -c "SELECT count(*), count(DISTINCT pid) FROM txn_cq")" "2|2" \
	"connect_query: two servers, two rows"

mb_test_done

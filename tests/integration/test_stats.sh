#!/usr/bin/env bash
# Statistics as PgBouncer counts them, read from the log_stats line (stats_period = 1): its exact wording, a
# quiet pooler logging zeros, transactions and queries counted once each (three queries per transaction in
# the simple, extended and prepared protocols), logins, prepared-statement parses and binds, and bytes in
# each direction. Through the admin console: SHOW STATS_TOTALS to the exact count, TOTALS, the console's row,
# and a client's wait for a server.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init stats
mb_tool txn_tool TXN_TOOL

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
mb_pgdb "$MB_DB"
mb_pgdb mb_stats_exact "" "$MB_DB"
mb_pgdb mb_stats_wait "pool_size=1" "$MB_DB"
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_set pool_mode transaction
mb_set default_pool_size 4
mb_set stats_period 1
mb_set log_stats 1
mb_set admin_users "$su"
mb_start_or_bail
export PGPASSWORD=$sp

script=$T_DIR/xact.sql
printf 'BEGIN;\nSELECT 1;\nEND;\n' >"$script"
clients=2 per_client=150
n_xacts=$((clients * per_client))

stats_count() { grep -c 'LOG stats: ' "$MB_LOG"; }
# wait_ticks N: until N more stats lines are logged (bounded: 30 s)
wait_ticks() {
	local want=$(($(stats_count) + $1)) i
	for ((i = 0; i < 300; i++)); do
		[ "$(stats_count)" -ge "$want" ] && return 0
		sleep 0.1
	done
	return 1
}
# stats_since K: the stats lines after the K-th, each as its numbers in order:
# xacts queries client_parses server_parses binds logins in out xact_us query_us wait_us
stats_since() {
	grep 'LOG stats: ' "$MB_LOG" | tail -n +"$(($1 + 1))" | sed -E 's/.*LOG stats: //; s/[^0-9]+/ /g; s/^ +| +$//g'
}
# between GOT LO HI NAME: LO <= GOT <= HI
between() {
	if [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; then
		mb_ok "$4"
	else
		mb_not_ok "$4" "got:      '$1'" "expected: $2 to $3"
	fi
}
sum_col() { awk -v c="$2" '{ s += $c } END { print s + 0 }' <<<"$1"; }
run_pgbench() {
	local name=$1 out rc
	shift
	out=$(timeout 120 "$PG_BINDIR/pgbench" -n -h 127.0.0.1 -p "$MB_PORT" -U "$su" "$@" 2>&1)
	rc=$?
	mb_is "$rc" 0 "$name: pgbench exits 0"
	[ "$rc" = 0 ] || mb_diag "$(tail -n 15 <<<"$out")"
}
# phase NAME PGBENCH-ARGS...: pgbench, then two more ticks (the second all after it); its lines in PHASE
phase() {
	local name=$1 mark
	shift
	mark=$(stats_count)
	run_pgbench "$name" "$@"
	wait_ticks 2 || mb_not_ok "$name: two stats lines after the run within 30 s"
	PHASE=$(stats_since "$mark")
}
# queries_per_xact NAME LINES: every line has three queries per transaction. A period boundary can split a
# transaction (its BEGIN counted before, the rest after, or the other way round): 2 queries per client each
# side, plus rounding of the two rates
queries_per_xact() {
	local bad
	bad=$(awk -v slack=$((4 * clients + 4)) '{ d = $2 - 3 * $1; if (d < 0) d = -d; if (d > slack) print }' <<<"$2")
	mb_is "$bad" "" "$1: queries/s is three times xacts/s on every line"
}

# ---- a pooler nobody uses logs zeros, in PgBouncer's words
wait_ticks 1 || mb_not_ok "a stats line within 30 s of start"
first=$(grep -m 1 'LOG stats: ' "$MB_LOG" | sed 's/.*LOG //')
mb_is "$first" "stats: 0 xacts/s, 0 queries/s, 0 client parses/s, 0 server parses/s, 0 binds/s, 0 client logins/s, in 0 B/s, out 0 B/s, xact 0 us, query 0 us, wait 0 us" \
	"no client yet: the log_stats line says zero for everything, in PgBouncer's wording"

# ---- BEGIN; SELECT 1; END as simple Queries: each transaction once, each statement once
phase "simple" -c "$clients" -j 1 -t "$per_client" -M simple -f "$script" "$MB_DB"
mb_diag "simple: stats lines (xacts queries cparses sparses binds logins in out xact query wait): $(tr '\n' '|' <<<"$PHASE")"
xacts=$(sum_col "$PHASE" 1)
# a rate is a count over the period's length: the sum of the rates is the count, less rounding, when periods
# last their second (or more, when the loop is busy)
between "$xacts" 1 $((n_xacts + n_xacts / 20 + 10)) "simple: transactions counted once ($n_xacts transactions)"
queries_per_xact simple "$PHASE"
between "$(sum_col "$PHASE" 6)" 1 $((clients + 2)) "simple: the client logins are counted"
between "$(sum_col "$PHASE" 7)" 1 1000000000 "simple: bytes in"
between "$(sum_col "$PHASE" 8)" 1 1000000000 "simple: bytes out"
mb_is "$(tail -n 1 <<<"$PHASE" | cut -d' ' -f1-2)" "0 0" "simple: a period after the run counts nothing"
mb_is "$(sum_col "$PHASE" 5)" 0 "simple: no Bind, no binds counted"

# ---- the same transactions in the extended protocol: a query is a request up to its ReadyForQuery, not a message
phase "extended" -c "$clients" -j 1 -t "$per_client" -M extended -f "$script" "$MB_DB"
mb_diag "extended: $(tr '\n' '|' <<<"$PHASE")"
xacts=$(sum_col "$PHASE" 1)
between "$xacts" 1 $((n_xacts + n_xacts / 20 + 10)) "extended: transactions counted once ($n_xacts transactions)"
queries_per_xact extended "$PHASE"

# ---- prepared: named statements through the prepared-statement relay, one Bind per query
phase "prepared" -c "$clients" -j 1 -t "$per_client" -M prepared -f "$script" "$MB_DB"
mb_diag "prepared: $(tr '\n' '|' <<<"$PHASE")"
queries_per_xact prepared "$PHASE"
bad=$(awk -v slack=$((3 * clients + 4)) '{ d = $5 - $2; if (d < 0) d = -d; if (d > slack) print }' <<<"$PHASE")
mb_is "$bad" "" "prepared: binds/s equals queries/s on every line"
between "$(sum_col "$PHASE" 3)" 1 1000000 "prepared: client parses counted"
between "$(sum_col "$PHASE" 4)" 1 1000000 "prepared: server parses counted"

# ---- bytes: out is what servers send, in what clients send
mark=$(stats_count)
out=$(mb_psql "$su" "$sp" "$MB_DB" -c "SELECT length(repeat('x', 2000000)) AS n, repeat('y', 2000000) AS big" |
	cut -c1-7)
mb_is "$out" "2000000" "a 2 MB result through the pooler"
wait_ticks 2 || mb_not_ok "bytes: two stats lines after the query within 30 s"
PHASE=$(stats_since "$mark")
in=$(sum_col "$PHASE" 7) outb=$(sum_col "$PHASE" 8)
mb_diag "bytes: in $in B/s, out $outb B/s summed over $(wc -l <<<"$PHASE") lines"
between "$in" 1 100000 "bytes: the query's bytes are counted in"
between "$outb" $((1000 * in)) 1000000000000 "a 2 MB result for a short query: out (from servers) dwarfs in (from clients)"

# ---- the exact totals, from the admin console
totals=$(mb_psql "$su" "$sp" pgbouncer -F ' ' -c 'SHOW STATS_TOTALS' 2>&1)
if [ $? != 0 ]; then
	mb_not_ok "the admin console answers SHOW STATS_TOTALS" "$totals"
else
	mark=$(stats_count)
	run_pgbench "exact" -c "$clients" -j 1 -t "$per_client" -M extended -f "$script" mb_stats_exact
	totals=$(mb_psql "$su" "$sp" pgbouncer -F ' ' -c 'SHOW STATS_TOTALS')
	row=$(awk '$1 == "mb_stats_exact"' <<<"$totals")
	# database server_assignment_count xact_count query_count bytes_received bytes_sent xact_time query_time
	# wait_time client_parse_count server_parse_count bind_count client_login_count
	read -r db assign xc qc recv sent xt qt wt cpc spc bc lc <<<"$row"
	mb_is "${xc:-none}" "$n_xacts" "STATS_TOTALS: xact_count is the number of transactions"
	mb_is "${qc:-none}" "$((3 * n_xacts))" "STATS_TOTALS: query_count is three per transaction"
	mb_is "${assign:-none}" "$n_xacts" "STATS_TOTALS: transaction pooling assigns a server per transaction"
	# pgbench logs in once more before its clients, to read the server's version
	mb_is "${lc:-none}" "$((clients + 1))" "STATS_TOTALS: a login per pgbench connection"
	between "${recv:-none}" 1 1000000000 "STATS_TOTALS: bytes_received"
	between "${sent:-none}" 1 1000000000 "STATS_TOTALS: bytes_sent"
	between "${qt:-none}" 1 "${xt:-0}" "STATS_TOTALS: query_time is some of the transaction time"
	mb_is "${cpc:-none} ${spc:-none} ${bc:-none}" "0 0 0" "STATS_TOTALS: unnamed statements: no parse or bind counted"
	: "$db" "$wt"

	# a transaction that sleeps 0.3 s, as three Queries: its time is in both totals, at least
	mb_psql "$su" "$sp" mb_stats_exact -c 'BEGIN' -c 'SELECT pg_sleep(0.3)' -c 'COMMIT' >/dev/null
	totals=$(mb_psql "$su" "$sp" pgbouncer -F ' ' -c 'SHOW STATS_TOTALS')
	read -r _ _ xc2 qc2 _ _ xt2 qt2 _ <<<"$(awk '$1 == "mb_stats_exact"' <<<"$totals")"
	mb_is "$((${xc2:-0} - ${xc:-0})) $((${qc2:-0} - ${qc:-0}))" "1 3" "BEGIN, a query, COMMIT: one transaction, three queries"
	between "$((${xt2:-0} - ${xt:-0}))" 300000 60000000 "its transaction time: the sleep at least, in microseconds"
	between "$((${qt2:-0} - ${qt:-0}))" 300000 60000000 "its query time: the sleep at least"
	tl=$(mb_psql "$su" "$sp" pgbouncer -F ' ' -c 'SHOW TOTALS')
	between "$(awk '$1 == "total_xact_count" { print $2 }' <<<"$tl")" $((n_xacts + 1)) 100000000 \
		"TOTALS: total_xact_count sums every database"

	# the console's own row, as PgBouncer's: five console connections so far (this one included), each
	# counted as a login, and its first command as a query and a transaction
	row=$(mb_psql "$su" "$sp" pgbouncer -F ' ' -c 'SHOW STATS' | awk '$1 == "pgbouncer" { print $3, $4, $13 }')
	mb_is "$row" "5 5 5" "STATS: the pgbouncer row counts console logins, and one query and transaction each"

	# wait_time: a client queued behind a transaction that holds the pool's only server, released a second
	# after the console showed it waiting, has waited that second at least
	mb_hold_transaction "$(mb_connstr "$su" "$sp" mb_stats_wait)"
	mb_bg "$T_DIR/wait.out" "$PQTOOL" query "$(mb_connstr "$su" "$sp" mb_stats_wait)" "SELECT 'waited'"
	waiter_pid=$MB_BG_PID
	waiting=
	for ((i = 0; i < 100; i++)); do
		waiting=$(mb_psql "$su" "$sp" pgbouncer -F ' ' -c 'SHOW POOLS' | awk '$1 == "mb_stats_wait" { print $4 }')
		[ "$waiting" = 1 ] && break
		sleep 0.1
	done
	mb_is "$waiting" 1 "a client waits for the pool's only server"
	sleep 1
	mb_kill_wait "$HOLD_PID" TERM
	mb_wait_exit "$waiter_pid" 30
	mb_is "$(tail -n 1 "$T_DIR/wait.out")" waited "the waiting client ran once the holder left"
	read -r _ assign _ _ _ _ _ _ wt _ <<<"$(mb_psql "$su" "$sp" pgbouncer -F ' ' -c 'SHOW STATS_TOTALS' |
		awk '$1 == "mb_stats_wait"')"
	mb_is "${assign:-none}" 2 "STATS_TOTALS: two server assignments, the holder's and the waiter's"
	between "${wt:-none}" 1000000 60000000 "STATS_TOTALS: wait_time holds the waiter's second, in microseconds"
fi

mb_test_done

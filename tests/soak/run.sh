#!/usr/bin/env bash
# Soak: mixed load through moonbouncer for DURATION seconds (make soak DURATION=600), then a verdict.
#
#   tests/soak/run.sh [DURATION]      default 600; at least 120 (the first minute is the baseline)
#
# Load, each stream a loop of 10 s pgbench runs that starts again after an error (a reconnecting client):
# select-only over the simple protocol and TPC-B over the extended protocol in a transaction pool,
# protocol-level prepared statements (-M prepared) in the transaction pool, and select-only with a new
# connection per transaction (-C) in a session pool. Meanwhile the policy (transaction_guard) is reloaded
# every 5 s (SIGHUP), servers are replaced as they reach server_lifetime (15 s), and PostgreSQL is
# restarted once, halfway. Every 10 s it prints the pooler's RSS, open fds and the transactions so far.
#
# Verdict: RSS and open fds at the end (median of the last three samples) within 10 % of their values
# after the first minute; no failed pgbench run outside the restart's window; the pooler answers at the end.
# Uses the integration suite's lib.sh: a throwaway PostgreSQL, everything stopped by PID on exit.
set -uo pipefail
source "$(dirname "$0")/../integration/lib.sh"

DURATION=${1:-600}
if [ "$DURATION" -lt 120 ]; then
	echo "soak: DURATION must be at least 120 seconds (the first minute is the baseline)" >&2
	exit 2
fi
RUN=10			# seconds per pgbench run
SAMPLE=10		# seconds between samples
mb_test_init soak

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
mb_pgdb soak_tx "pool_size=6 pool_mode=transaction"
mb_pgdb soak_sess "pool_size=8 pool_mode=session"
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_set max_client_conn 200
mb_set server_lifetime 15
mb_set query_wait_timeout 30
mb_set server_login_retry 1
mb_policy_copy guard.lua
mb_set policy_file "$T_DIR/guard.lua"
mb_start_or_bail

export PGPASSWORD=$sp
bench() { timeout $((RUN + 60)) "$PG_BINDIR/pgbench" -h 127.0.0.1 -p "$MB_PORT" -U "$su" -n "$@"; }
if ! mb_pgbench_init 4; then
	mb_not_ok "pgbench -i" "$(tail -n 5 "$T_DIR/init.log")"
	mb_test_done
fi

start=$(date +%s)
end=$((start + DURATION))
restart_at=$((start + DURATION / 2))

# stream NAME PGBENCH-ARGS...: runs of RUN seconds until the end; one line per run in $T_DIR/runs:
# "NAME start end exit transactions"
stream() {
	local name=$1 t0 t1 rc tx
	shift
	while [ "$(date +%s)" -lt $((end - RUN)) ]; do
		t0=$(date +%s)
		bench -T "$RUN" "$@" >"$T_DIR/$name.out" 2>&1
		rc=$?
		t1=$(date +%s)
		tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$T_DIR/$name.out")
		echo "$name $t0 $t1 $rc ${tx:-0}" >>"$T_DIR/runs"
		[ "$rc" = 0 ] || cp "$T_DIR/$name.out" "$T_DIR/$name.failed.$t0"
		[ "$rc" = 0 ] || sleep 1
	done
}
stream select -S -M simple -c 8 -j 2 "soak_tx" &
pids=($!)
stream tpcb -M extended -c 4 -j 1 "soak_tx" &
pids+=($!)
stream prepared -S -M prepared -c 4 -j 1 "soak_tx" &
pids+=($!)
stream reconnect -S -C -c 4 -j 1 "soak_sess" &
pids+=($!)

echo "# soak: ${DURATION} s; PostgreSQL restarts at +$((restart_at - start)) s"
echo "# time_s  rss_kb  fds  transactions"
samples=()
restarted=0 restart_t0=0 restart_t1=0
last_hup=$start next_sample=$start
while :; do
	now=$(date +%s)
	[ "$now" -ge "$end" ] && break
	if [ $((now - last_hup)) -ge 5 ]; then
		kill -HUP "$MB_PID"
		last_hup=$now
	fi
	if [ "$restarted" = 0 ] && [ "$now" -ge "$restart_at" ]; then
		restart_t0=$now
		as_pg "$PG_BINDIR/pg_ctl" -D "$MB_PG_DATA" -m fast -w -t 60 restart >"$T_DIR/restart.log" 2>&1 ||
			mb_not_ok "PostgreSQL restarts" "$(tail -n 5 "$T_DIR/restart.log")"
		MB_PG_PID=$(head -n 1 "$MB_PG_DATA/postmaster.pid")
		restart_t1=$(date +%s)
		restarted=1
	fi
	if [ "$now" -ge "$next_sample" ]; then
		next_sample=$((next_sample + SAMPLE))
		rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$MB_PID/status" 2>/dev/null)
		fds=$(ls "/proc/$MB_PID/fd" 2>/dev/null | wc -l)
		tx=$(awk '{s += $5} END {print s + 0}' "$T_DIR/runs" 2>/dev/null)
		samples+=("$((now - start)) ${rss:-0} $fds ${tx:-0}")
		printf '# %6d  %6s  %3s  %s\n' "$((now - start))" "${rss:-?}" "$fds" "${tx:-0}"
	fi
	sleep 1
done
for pid in "${pids[@]}"; do
	mb_wait_exit "$pid" $((RUN + 90)) || mb_diag "load stream $pid did not end"
done

# median of field F over the samples whose time is in [FROM, TO], leaving out the restart's 30 s
median_of() {
	local f=$1 from=$2 to=$3 r0=$((restart_t0 - start - 10)) r1=$((restart_t1 - start + 20))
	printf '%s\n' "${samples[@]}" |
		awk -v f="$f" -v a="$from" -v b="$to" -v r0="$r0" -v r1="$r1" '$1 >= a && $1 <= b && ($1 < r0 || $1 > r1) {print $f}' |
		sort -n | awk '{v[NR] = $1} END {if (NR) print v[int((NR + 1) / 2)]}'
}
last=$(printf '%s\n' "${samples[@]}" | tail -n 1 | cut -d' ' -f1)
for what in "2 RSS kB" "3 open fds"; do
	set -- $what
	f=$1
	shift
	base=$(median_of "$f" 60 100)
	fin=$(median_of "$f" $((last - 2 * SAMPLE)) "$last")
	if [ -n "$base" ] && [ -n "$fin" ] && awk -v a="$base" -v b="$fin" 'BEGIN {exit !(b <= a * 1.1 && b >= a * 0.9)}'; then
		mb_ok "$* at the end within 10 % of the value after the first minute ($base -> $fin)"
	else
		mb_not_ok "$* at the end within 10 % of the value after the first minute" "$base -> $fin"
	fi
done

# runs that failed away from the restart (a run that overlaps it may lose its transactions)
total=$(awk '{s += $5} END {print s + 0}' "$T_DIR/runs")
failed=$(awk '$4 != 0' "$T_DIR/runs" | wc -l)
outside=$(awk -v a="$restart_t0" -v b="$restart_t1" '$4 != 0 && ($3 < a - 1 || $2 > b + 1)' "$T_DIR/runs")
mb_diag "transactions $total; pgbench runs $(wc -l <"$T_DIR/runs"), failed $failed (restart took $((restart_t1 - restart_t0)) s)"
if [ -z "$outside" ]; then
	mb_ok "no run failed away from the PostgreSQL restart"
else
	mb_not_ok "no run failed away from the PostgreSQL restart" "$outside"
	for f in "$T_DIR"/*.failed.*; do
		[ -e "$f" ] && grep -m 3 -E 'error|abort' "$f" | sed 's/^/#   /'
	done
fi
mb_lt 0 "$total" "transactions were served ($total)"
out=$(pqt query "$(mb_connstr "$su" "$sp" soak_tx)" "SELECT 40 + 2" 2>&1)
mb_is "$out" 42 "the pooler answers after the soak"
mb_test_done

#!/usr/bin/env bash
# Named prepared statements in transaction pooling through libpq: clients whose names overlap with other
# texts get their own results across many transactions on a small pool; texts are shared between names;
# per-client search_path; a Parse does not wait behind a transaction; statements of a named SET still
# reset the server; large Parse messages; session mode and max_prepared_statements = 0 pass names
# untouched. Takes about 15 s.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init prepared_libpq

# prepared_tool (tests/integration/prepared_tool.c), rebuilt when its source is newer
mb_tool prepared_tool PTOOL
pt() { timeout 60 "$PTOOL" "$@"; }
# a script's transcript on one line
pts() { pt script "$@" 2>&1 | tr '\n' ' ' | sed 's/ $//'; }

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
mb_pgdb mb_db
mb_pgdb mb_one "pool_size=1"
mb_pgdb mb_sess "pool_size=1 pool_mode=session"
mb_pgdb mb_stmt "pool_size=2 pool_mode=statement"
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_set pool_mode transaction
mb_set default_pool_size 2
mb_start_or_bail -v

c=$(mb_connstr "$su" "$sp" mb_db)
c1=$(mb_connstr "$su" "$sp" mb_one)

pg_super_psql -d "$MB_DB" >/dev/null <<-EOF
	SET client_min_messages = warning;
	DROP TABLE IF EXISTS prep_mix;
	CREATE TABLE prep_mix (client int, v int);
	GRANT ALL ON prep_mix TO PUBLIC;
	DROP SCHEMA IF EXISTS sa CASCADE;
	DROP SCHEMA IF EXISTS sb CASCADE;
	CREATE SCHEMA sa;
	CREATE SCHEMA sb;
	CREATE TABLE sa.t (v text);
	CREATE TABLE sb.t (v text);
	INSERT INTO sa.t VALUES ('from sa');
	INSERT INTO sb.t VALUES ('from sb');
	GRANT USAGE ON SCHEMA sa, sb TO PUBLIC;
	GRANT SELECT ON sa.t, sb.t TO PUBLIC;
EOF

# --- 8 clients, overlapping names with other texts, on 2 servers
nclients=8
for ((k = 0; k < nclients; k++)); do
	mb_bg "$T_DIR/mix.$k" "$PTOOL" mix "$c" "$k" 400
	mixpids[k]=$MB_BG_PID
done
bad=0 both=0 summary=()
for ((k = 0; k < nclients; k++)); do
	mb_wait_exit "${mixpids[k]}" 90 || { kill "${mixpids[k]}" 2>/dev/null; echo "TIMEOUT" >>"$T_DIR/mix.$k"; }
	[ "${MB_EXIT_STATUS:-1}" = 0 ] || bad=$((bad + 1))
	line=$(grep '^client ' "$T_DIR/mix.$k")
	summary+=("${line:-$(head -n 3 "$T_DIR/mix.$k")}")
	[[ "$line" == *", 2 backends,"* ]] && both=$((both + 1))
done
if [ "$bad" = 0 ]; then
	mb_ok "$nclients clients x 400 iterations of named statements: every result right"
else
	mb_not_ok "$nclients clients x 400 iterations of named statements: every result right" \
		"$(cat "$T_DIR"/mix.* | grep -v '^client ' | head -n 20)" "${summary[@]}"
fi
mb_diag "${summary[@]}"
mb_like "$both" '^[1-9]' "clients moved between the 2 servers ($both of $nclients saw both)"
want="" got=""
for ((k = 0; k < nclients; k++)); do
	n=$(grep -o '[0-9]* committed' "$T_DIR/mix.$k" | cut -d' ' -f1)
	want+="$k|${n:-?} "
done
got=$(pg_super_psql -d "$MB_DB" -c "SELECT client, count(*) FROM prep_mix GROUP BY 1 ORDER BY 1" | tr '\n' ' ')
mb_is "$got" "$want" "committed inserts are in the table, rolled back ones are not"

# the 8 names "shared_<k>" of one text are one statement on a server; "typ" is 4 (one per parameter type)
out=$(pqt query "$c" "SELECT count(*) FILTER (WHERE statement = 'SELECT \$1::int * 2'),
	count(*) FILTER (WHERE statement = 'SELECT pg_typeof(\$1)::text'),
	count(DISTINCT parameter_types) FILTER (WHERE statement = 'SELECT pg_typeof(\$1)::text'),
	count(*) FILTER (WHERE name NOT LIKE 'MB\_%'), count(*) <= 21
	FROM pg_prepared_statements" 2>&1)
mb_is "$out" $'1\t4\t4\t0\tt' \
	"server side: one statement for a text under 8 names, 4 for one text with 4 parameter types, <= 21 in all"

# --- the same text under the client's own search_path means the client's table
sa="$c1 options='-c search_path=sa'" sb="$c1 options='-c search_path=sb'"
out=""
for i in 1 2 3; do
	out+="$(pts "$sa" P sp 'SELECT v FROM t' - B sp - E S) | "
	out+="$(pts "$sb" P sp 'SELECT v FROM t' - B sp - E S) | "
done
want="1 2 D:from sa C:SELECT 1 Z:I | 1 2 D:from sb C:SELECT 1 Z:I | "
mb_is "$out" "$want$want$want" "one text, one server, two search_paths: each client reads its own schema"

# --- a Parse of a text some server accepted does not wait behind a transaction; a Bind does
pts "$c1" P warm 'SELECT $1::int + 900' - B warm 1 E S >/dev/null
mb_bg "$T_DIR/hold.out" "$PTOOL" script "$c1" Q BEGIN W MARK holding SLEEP 3000 Q COMMIT
hold=$MB_BG_PID
if mb_wait_line "$T_DIR/hold.out" '^holding' 10; then
	t0=$(date +%s%N)
	out=$(pts "$c1" P nowait 'SELECT $1::int + 900' - S)
	ms=$((($(date +%s%N) - t0) / 1000000))
	mb_is "$out" "1 Z:I" "Parse + Sync of a known text while the only server is in a transaction: answered"
	if [ "$ms" -lt 1000 ]; then
		mb_ok "... without waiting for the server (${ms} ms)"
	else
		mb_not_ok "... without waiting for the server" "took $ms ms (the transaction holds the server 3 s)"
	fi
	t0=$(date +%s%N)
	out=$(pts "$c1" P nowait 'SELECT $1::int + 900' - B nowait 5 E S)
	ms=$((($(date +%s%N) - t0) / 1000000))
	mb_is "$out" "1 2 D:905 C:SELECT 1 Z:I" "its Bind waits for the server and runs the right statement"
	mb_like "$ms" '^[0-9]{4,}$' "... after the transaction ended (${ms} ms)"
else
	mb_not_ok "a client holds a transaction" "$(cat "$T_DIR/hold.out")"
fi
mb_wait_exit "$hold" 10
mb_is "$(tr '\n' ' ' <"$T_DIR/hold.out")" "C:BEGIN Z:T holding C:COMMIT Z:I " "the transaction itself was not disturbed"

# --- a named statement that changes the session: the server is reset before the next client
p1=$(pqt backend-pid "$c1")
out=$(pts "$c1" P set_st "SET statement_timeout = '1234ms'" - B set_st - E S)
mb_is "$out" "1 2 C:SET Z:I" "a named SET statement runs"
out=$(pqt query "$c1" "SHOW statement_timeout" "SELECT pg_backend_pid()" 2>&1)
mb_is "$out" $'0\n'"$p1" "the next client on the same server does not inherit statement_timeout from it"

out=$(pts "$c1" P set_lt "SET lock_timeout = '4321ms'" - B set_lt - E S W B set_lt - E S)
mb_is "$out" "1 2 C:SET Z:I 2 C:SET Z:I" "a named SET statement runs again in a later transaction (Bind only)"
out=$(pqt query "$c1" "SHOW lock_timeout" "SELECT pg_backend_pid()" 2>&1)
mb_is "$out" $'0\n'"$p1" "... the next client on the same server does not inherit lock_timeout from it"
out=$(pts "$c1" P lock 'SELECT pg_advisory_lock(4242)' - B lock - E S W B lock - E S)
mb_is "$out" "1 2 D: C:SELECT 1 Z:I 2 D: C:SELECT 1 Z:I" "a named pg_advisory_lock() runs twice, in two transactions"
for ((i = 0; i < 20; i++)); do	# the reset runs right after the transaction: allow it a moment
	n=$(pg_super_psql -d postgres -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242")
	[ "$n" = 0 ] && break
	sleep 0.1
done
mb_is "$n" 0 "... after the client left, no server holds that session lock"
out=$(pts "$c1" P k21 'SELECT $1::int + 21' - B k21 1 E S W P dd 'DEALLOCATE ALL' - B dd - E S W \
	B k21 2 E S W B dd - E S)
mb_is "$out" "1 2 D:22 C:SELECT 1 Z:I 1 2 C:DEALLOCATE ALL Z:I E:26000:prepared statement \"k21\" does not exist Z:I E:26000:prepared statement \"dd\" does not exist Z:I" \
	"a named DEALLOCATE ALL: the client's names, its own included, are gone as in PostgreSQL"
out=$(pts "$c1" P y21 'SELECT $1::int + 21' - B y21 5 E S)
mb_is "$out" "1 2 D:26 C:SELECT 1 Z:I" "... the next client's statement of a text that server had is prepared again"

# --- large statements: PostgreSQL takes them, so must the pooler
out=$(pts "$c" P "" '@pad:200000:SELECT $1::int + 7' - B "" 1 E S)
mb_is "$out" "1 2 D:8 C:SELECT 1 Z:I" "an unnamed Parse of 200 kB"
out=$(pts "$c" P big '@pad:200000:SELECT $1::int + 7' - B big 1 E S)
mb_is "$out" "1 2 D:8 C:SELECT 1 Z:I" "a named Parse of 200 kB"
mb_check_healthy "a normal connection still works after the large Parses"

# --- statement mode: each statement may land on the other server
for p in sa sb sc; do
	mb_bg "$T_DIR/stmt.$p" "$PTOOL" rotate "$(mb_connstr "$su" "$sp" mb_stmt)" "${p}_" 20 5 "$((${#p} + RANDOM))"
	spids+=("$MB_BG_PID")
done
bad=0
for pid in "${spids[@]}"; do
	mb_wait_exit "$pid" 60 || kill "$pid" 2>/dev/null
	[ "${MB_EXIT_STATUS:-1}" = 0 ] || bad=$((bad + 1))
done
lines=$(cat "$T_DIR"/stmt.*)
if [ "$bad" = 0 ] && [ "$(grep -c 'mismatches 0' <<<"$lines")" = 3 ]; then
	mb_ok "statement mode, 2 servers: 3 clients x 20 statements x 5 rounds, every result right"
else
	mb_not_ok "statement mode, 2 servers: 3 clients x 20 statements x 5 rounds, every result right" "$lines"
fi
mb_like "$lines" 'backends 2,' "statement mode: statements ran on both servers"

# --- session mode: names reach the server as they are
out=$(pts "$(mb_connstr "$su" "$sp" mb_sess)" P sess_q 'SELECT $1::int + 3' - B sess_q 1 E S W \
	Q "SELECT name FROM pg_prepared_statements WHERE name = 'sess_q'")
mb_is "$out" "1 2 D:4 C:SELECT 1 Z:I T:name D:sess_q C:SELECT 1 Z:I" "session mode: the client's name on the server"

# --- max_prepared_statements = 0: no tracking, names reach the server as they are
mb_set max_prepared_statements 0
mb_start_or_bail -v
out=$(pts "$c1" Q BEGIN P off_q 'SELECT $1::int + 4' - B off_q 1 E S W \
	Q "SELECT name FROM pg_prepared_statements WHERE name = 'off_q'" Q COMMIT)
mb_is "$out" "C:BEGIN Z:T 1 2 D:5 C:SELECT 1 Z:T T:name D:off_q C:SELECT 1 Z:T C:COMMIT Z:I" \
	"max_prepared_statements = 0: the client's name on the server"

mb_test_done

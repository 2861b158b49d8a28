#!/usr/bin/env bash
# Named prepared statements in transaction pooling, message by message (prepared_tool script speaks the
# protocol): errors inside pipelines with pending Parses, Close, Describe, Flush, named portals,
# DEALLOCATE ALL / DISCARD ALL from the client and DISCARD ALL as server_reset_query. After each case
# the next use of a name works or gets the error PostgreSQL would give, and the server's statements
# still match the pooler's idea of them. Takes about 10 s.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init prepared_tracking

mb_tool prepared_tool PTOOL
# a script's transcript on one line
pts() { timeout 60 "$PTOOL" script "$@" 2>&1 | tr '\n' ' ' | sed 's/ $//'; }

# mb_is_one GOT NAME WANT...: ok when GOT is one of the WANTs
mb_is_one() {
	local got=$1 name=$2 w
	shift 2
	for w in "$@"; do
		[ "$got" = "$w" ] && { mb_ok "$name"; return; }
	done
	mb_not_ok "$name" "got:      '$got'" "$(printf "expected: '%s'\n" "$@")"
}

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
mb_pgdb mb_db
mb_pgdb mb_one "pool_size=1"
mb_pgdb mb_other "pool_size=1" postgres
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_set pool_mode transaction
mb_start_or_bail -v
c=$(mb_connstr "$su" "$sp" mb_one)
DZ='E:22012:division by zero'

# --- an error ahead of pending Parses: they are skipped, as PostgreSQL skips them
out=$(pts "$c" P a 'SELECT $1::int + 10' - B a 1 E P "" 'SELECT 1/0' - B "" - E P b 'SELECT $1::int + 20' - B b 1 E S)
mb_is "$out" "1 2 D:11 C:SELECT 1 1 $DZ Z:I" "error in a pipeline: later Parse/Bind/Execute skipped up to Sync"
out=$(pts "$c" P a 'SELECT $1::int + 10' - P "" 'SELECT 1/0' - B "" - E P b 'SELECT $1::int + 20' - B b 1 E S W \
	B b 1 E S W P b 'SELECT $1::int + 20' - B b 2 E S W B a 3 E S)
mb_is_one "$out" "the skipped name: works or does not exist, as in PostgreSQL; a new Parse of it works" \
	"1 1 $DZ Z:I 2 D:21 C:SELECT 1 Z:I 1 2 D:22 C:SELECT 1 Z:I 2 D:13 C:SELECT 1 Z:I" \
	"1 1 $DZ Z:I E:26000:prepared statement \"b\" does not exist Z:I 1 2 D:22 C:SELECT 1 Z:I 2 D:13 C:SELECT 1 Z:I"
out=$(pts "$c" P b2 'SELECT $1::int + 20' - B b2 5 E S W P a2 'SELECT $1::int + 10' - B a2 5 E S)
mb_is "$out" "1 2 D:25 C:SELECT 1 Z:I 1 2 D:15 C:SELECT 1 Z:I" "another client uses both texts on the same server"

# --- a Parse that fails
out=$(pts "$c" P f 'SELEC 1' - B f - E P g 'SELECT $1::int + 60' - B g 1 E S)
mb_is "$out" 'E:42601:syntax error at or near "SELEC" Z:I' "a failing Parse: the rest of the pipeline is skipped"
out=$(pts "$c" P f 'SELEC 1' - S W B f - E S)
mb_is "$out" 'E:42601:syntax error at or near "SELEC" Z:I E:26000:prepared statement "f" does not exist Z:I' \
	"the name of a failed Parse does not exist afterwards (as in PostgreSQL)"
out=$(pts "$c" P f 'SELEC 1' - S W P f 'SELECT 61' - B f - E S)
mb_is "$out" 'E:42601:syntax error at or near "SELEC" Z:I 1 2 D:61 C:SELECT 1 Z:I' "... and a new Parse of it works"

# --- an error inside a transaction block with pending Parses
out=$(pts "$c" Q BEGIN W P c 'SELECT $1::int + 30' - B c 1 E P "" 'SELECT 1/0' - B "" - E \
	P d 'SELECT $1::int + 40' - B d 1 E S W)
mb_is "$out" "C:BEGIN Z:T 1 2 D:31 C:SELECT 1 1 $DZ Z:E" "error in a transaction block with Parses pending"
out=$(pts "$c" Q BEGIN W P c 'SELECT $1::int + 30' - B c 1 E P "" 'SELECT 1/0' - B "" - E \
	P d 'SELECT $1::int + 40' - B d 1 E S W B c 2 E S W Q ROLLBACK W B c 3 E S W P d 'SELECT $1::int + 40' - B d 4 E S)
mb_is "$out" "C:BEGIN Z:T 1 2 D:31 C:SELECT 1 1 $DZ Z:E E:25P02:current transaction is aborted, commands ignored until end of transaction block Z:E C:ROLLBACK Z:I 2 D:33 C:SELECT 1 Z:I 1 2 D:44 C:SELECT 1 Z:I" \
	"aborted transaction: Bind refused; after ROLLBACK the statement prepared before the error works"
out=$(pts "$c" Q BEGIN Q 'SELECT 1/0' W P e 'SELECT $1::int + 30' - S W Q ROLLBACK W B e 1 E S)
mb_is_one "$out" "a Parse of a known text in an aborted transaction: refused as by PostgreSQL, or prepared" \
	"C:BEGIN Z:T $DZ Z:E E:25P02:current transaction is aborted, commands ignored until end of transaction block Z:E C:ROLLBACK Z:I E:26000:prepared statement \"e\" does not exist Z:I" \
	"C:BEGIN Z:T $DZ Z:E 1 Z:E C:ROLLBACK Z:I 2 D:31 C:SELECT 1 Z:I"
out=$(pts "$c" P x 'SELECT $1::int + 40' - B x 1 E S)
mb_is "$out" "1 2 D:41 C:SELECT 1 Z:I" "another client: the text of the skipped Parse works on that server"

# --- messages after a Sync, ending in Flush, sent before its ReadyForQuery (postgres.js does this)
out=$(PREPARED_TOOL_TIMEOUT=5 pts "$c" P k1 'SELECT $1::int + 1' - B k1 1 E S P n2 'SELECT $1::int + 2' - D n2 H R 8 B n2 1 E S)
mb_is "$out" "1 2 D:2 C:SELECT 1 Z:I 1 t:23 T:?column? 2 D:3 C:SELECT 1 Z:I" \
	"Parse/Describe/Flush right behind a Sync: answered, and the statement runs"
mb_check_healthy "the pooler still serves after that"

# --- Close, Describe, Flush, named portals
out=$(pts "$c" P cl 'SELECT $1::int + 50' - S W C cl S W B cl 1 E S W P cl2 'SELECT $1::int + 50' - B cl2 2 E S)
mb_is "$out" "1 Z:I 3 Z:I E:26000:prepared statement \"cl\" does not exist Z:I 1 2 D:52 C:SELECT 1 Z:I" \
	"Close outside a transaction: the name is gone, the text still works for another name"
out=$(pts "$c" P cl 'SELECT $1::int + 50' - S W Q BEGIN W C cl S W B cl 1 E S W Q COMMIT W \
	P cl 'SELECT $1::text' - B cl 3 E S)
mb_is "$out" "1 Z:I C:BEGIN Z:T 3 Z:T E:26000:prepared statement \"cl\" does not exist Z:E C:ROLLBACK Z:I 1 2 D:3 C:SELECT 1 Z:I" \
	"Close inside a transaction: the name is gone; it can be prepared again with another text"
out=$(pts "$c" C never_prepared S)
mb_is "$out" "3 Z:I" "Close of a name never prepared: CloseComplete, as in PostgreSQL"
out=$(pts "$c" CP no_portal S)
mb_is "$out" "3 Z:I" "Close of a portal that does not exist: CloseComplete, as in PostgreSQL"
out=$(pts "$c" P fl 'SELECT $1::int + 77' - H R 1 D fl H R 2 B fl 1 E S)
mb_is "$out" "1 t:23 T:?column? 2 D:78 C:SELECT 1 Z:I" "Parse, Flush, Describe, Flush, then Bind/Execute/Sync"
out=$(pts "$c" P fl 'SELECT $1::int + 77' - H R 1 D fl H R 2 B fl 2 E S)
mb_is "$out" "1 t:23 T:?column? 2 D:79 C:SELECT 1 Z:I" "... the same with a text the server knows (Parse answered by the pooler)"
out=$(pts "$c" P np 'SELECT generate_series(1, $1::int)' - BP p1 np 3 EP p1 1 EP p1 0 S)
mb_is "$out" "1 2 D:1 s D:2 D:3 C:SELECT 2 Z:I" "a named portal of a named statement, fetched in two steps"

# --- DEALLOCATE ALL / DISCARD ALL from the client, DISCARD ALL as server_reset_query
for cmd in "DEALLOCATE ALL" "DISCARD ALL"; do
	# a second client keeps its statement across the first one's command
	mb_bg "$T_DIR/keeper.out" "$PTOOL" script "$c" P keep 'SELECT $1::int + 500' - B keep 1 E S W \
		MARK ready SLEEP 1500 D keep B keep 2 E S
	keeper=$MB_BG_PID
	mb_wait_line "$T_DIR/keeper.out" '^ready' 10
	out=$(pts "$c" P dq 'SELECT $1::int + 600' - B dq 1 E S W Q "$cmd" W B dq 2 E S W P dq 'SELECT $1::int + 600' - B dq 3 E S)
	mb_is "$out" "1 2 D:601 C:SELECT 1 Z:I C:$cmd Z:I E:26000:prepared statement \"dq\" does not exist Z:I 1 2 D:603 C:SELECT 1 Z:I" \
		"$cmd: the client's names are gone, as in PostgreSQL; a new Parse works"
	mb_wait_exit "$keeper" 10
	mb_is "$(tr '\n' ' ' <"$T_DIR/keeper.out")" "1 2 D:501 C:SELECT 1 Z:I ready t:23 T:?column? 2 D:502 C:SELECT 1 Z:I " \
		"$cmd: another client's statement is prepared again on demand (Describe, Bind)"
done
out=$(pts "$c" P da 'SELECT $1::int + 100' - B da 1 E S W Q "SELECT 1/0; DEALLOCATE ALL" W B da 2 E S)
mb_is "$out" "1 2 D:101 C:SELECT 1 Z:I $DZ Z:I 2 D:102 C:SELECT 1 Z:I" \
	"a DEALLOCATE ALL that did not run (an error before it) leaves the client's names, as in PostgreSQL"
out=$(pts "$c" P db 'SELECT $1::int + 200' - B db 1 E S W Q BEGIN Q "DISCARD ALL" Q ROLLBACK W B db 2 E S)
mb_is "$out" "1 2 D:201 C:SELECT 1 Z:I C:BEGIN Z:T E:25001:DISCARD ALL cannot run inside a transaction block Z:E C:ROLLBACK Z:I 2 D:202 C:SELECT 1 Z:I" \
	"a DISCARD ALL refused inside a transaction leaves the client's names, as in PostgreSQL"
for how in "a named" "an unnamed"; do
	name=dd_named
	[ "$how" = "an unnamed" ] && name=""
	mb_start_or_bail -v	# a fresh pooler: the cases stay apart
	mb_bg "$T_DIR/keeper.out" "$PTOOL" script "$c" P keep 'SELECT $1::int + 700' - B keep 1 E S W \
		MARK ready SLEEP 1000 B keep 2 E S
	keeper=$MB_BG_PID
	mb_wait_line "$T_DIR/keeper.out" '^ready' 10
	out=$(pts "$c" P "$name" 'DEALLOCATE ALL' - B "$name" - E S)
	mb_is "$out" "1 2 C:DEALLOCATE ALL Z:I" "DEALLOCATE ALL as $how extended-protocol statement"
	mb_wait_exit "$keeper" 10
	mb_is "$(tr '\n' ' ' <"$T_DIR/keeper.out")" "1 2 D:701 C:SELECT 1 Z:I ready 2 D:702 C:SELECT 1 Z:I " \
		"... another client's statement is prepared again on demand"
done

# DEALLOCATE ALL that ran inside a transaction: later statements of that transaction (same server)
warm=(P w9 'SELECT $1::int + 9' - B w9 1 E S W)
out=$(pts "$c" "${warm[@]}" Q BEGIN W Q 'DEALLOCATE ALL' W P k9 'SELECT $1::int + 9' - B k9 2 E S W Q COMMIT)
mb_is "$out" "1 2 D:10 C:SELECT 1 Z:I C:BEGIN Z:T C:DEALLOCATE ALL Z:T 1 2 D:11 C:SELECT 1 Z:T C:COMMIT Z:I" \
	"DEALLOCATE ALL (Query) in a transaction: a known text is prepared again for the rest of it"
for how in "" dn; do
	out=$(pts "$c" "${warm[@]}" Q BEGIN W P "$how" 'DEALLOCATE ALL' - B "$how" - E S W \
		P k9 'SELECT $1::int + 9' - B k9 2 E S W Q COMMIT)
	mb_is "$out" "1 2 D:10 C:SELECT 1 Z:I C:BEGIN Z:T 1 2 C:DEALLOCATE ALL Z:T 1 2 D:11 C:SELECT 1 Z:T C:COMMIT Z:I" \
		"DEALLOCATE ALL (${how:+named }extended protocol) in a transaction: a known text is prepared again"
done
out=$(pts "$c" P k 'SELECT $1::int + 5' - B k 1 E S W Q BEGIN W P "" 'DEALLOCATE ALL' - B "" - E S W \
	B k 2 E S W Q COMMIT)
mb_is_one "$out" "DEALLOCATE ALL (extended protocol) in a transaction: the client's own name works or does not exist" \
	"1 2 D:6 C:SELECT 1 Z:I C:BEGIN Z:T 1 2 C:DEALLOCATE ALL Z:T 2 D:7 C:SELECT 1 Z:T C:COMMIT Z:I" \
	"1 2 D:6 C:SELECT 1 Z:I C:BEGIN Z:T 1 2 C:DEALLOCATE ALL Z:T E:26000:prepared statement \"k\" does not exist Z:E C:ROLLBACK Z:I"
out=$(pts "$c" "${warm[@]}" Q BEGIN Q 'SAVEPOINT s' W Q 'DEALLOCATE ALL; SELECT 1/0' W Q 'ROLLBACK TO s' W \
	P k9 'SELECT $1::int + 9' - B k9 3 E S W Q COMMIT)
mb_is "$out" "1 2 D:10 C:SELECT 1 Z:I C:BEGIN Z:T C:SAVEPOINT Z:T C:DEALLOCATE ALL $DZ Z:E C:ROLLBACK Z:T 1 2 D:12 C:SELECT 1 Z:T C:COMMIT Z:I" \
	"a DEALLOCATE ALL that ran before an error in its Query: a known text is prepared again after ROLLBACK TO"

# server_reset_query (DISCARD ALL by default) after a client changed the session
mb_bg "$T_DIR/keeper.out" "$PTOOL" script "$c" P keep 'SELECT $1::int + 800' - B keep 1 E S W \
	MARK ready SLEEP 1500 B keep 2 E S
keeper=$MB_BG_PID
mb_wait_line "$T_DIR/keeper.out" '^ready' 10
out=$(pts "$c" Q "SET work_mem = '7MB'; LISTEN mb_reset_chan")
mb_is "$out" "C:SET C:LISTEN Z:I" "a client changes the session (SET, LISTEN)"
out=$(pqt query "$c" "SHOW work_mem" "SELECT count(*) FROM pg_prepared_statements" 2>&1)
mb_is "$out" $'4MB\n0' "the server was reset with DISCARD ALL: no statements left"
mb_wait_exit "$keeper" 10
mb_is "$(tr '\n' ' ' <"$T_DIR/keeper.out")" "1 2 D:801 C:SELECT 1 Z:I ready 2 D:802 C:SELECT 1 Z:I " \
	"... a client's statement is prepared again on demand after the reset"

# --- the same text in a database where it is not valid
pg_super_psql -d "$MB_DB" -c "CREATE TABLE only_in_mb_db (v int); INSERT INTO only_in_mb_db VALUES (5);
	GRANT SELECT ON only_in_mb_db TO PUBLIC" >/dev/null
out=$(pts "$c" P oh 'SELECT v FROM only_in_mb_db' - B oh - E S)
mb_is "$out" "1 2 D:5 C:SELECT 1 Z:I" "a text valid in mb_db"
out=$(pts "$(mb_connstr "$su" "$sp" mb_other)" P oh 'SELECT v FROM only_in_mb_db' - S W B oh - E S)
mb_is_one "$out" "the same text through a database without that table: relation does not exist" \
	'E:42P01:relation "only_in_mb_db" does not exist Z:I E:26000:prepared statement "oh" does not exist Z:I' \
	'1 Z:I E:42P01:relation "only_in_mb_db" does not exist Z:I'

# --- long pipelines: answers of every length, so that some ReadyForQuery arrives in pieces (a buffer ends
# inside it, in either pass); each one ends exactly one Sync's work, and every name still works after
steps=() want=()
lens=($(seq 1 400) $(seq 4030 4070))
for round in 1 2; do
	for i in "${!lens[@]}"; do
		y="y*${lens[i]}"
		if [ $round = 1 ]; then
			steps+=(P "lp$i" "SELECT repeat('y', \$1::int + $((i % 25)))" -)
			want+=("1 2 D:$y C:SELECT 1 Z:I")
		else
			want+=("2 D:$y C:SELECT 1 Z:I")
		fi
		steps+=(B "lp$i" $((lens[i] - i % 25)) E S)
	done
	steps+=(W)
done
# a run of y shown as y*length
out=$(pts "$c" "${steps[@]}" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^D:y+$/) $i = "D:y*" (length($i) - 2); print }')
mb_is "$out" "${want[*]}" "441 pipelined Parse/Bind/Execute/Sync with answers of every length, then Bind/Execute/Sync of each name"
out=$(pts "$c" P lpx 'SELECT $1::int + 3' - B lpx 1 E S)
mb_is "$out" "1 2 D:4 C:SELECT 1 Z:I" "... and the pooler's statements still match the server's"

# --- eviction: a Close the pooler added is skipped by an error; the server keeps that statement
mb_set max_prepared_statements 2
mb_start_or_bail -v
out=$(pts "$c" P x1 'SELECT $1::int + 1' - P x2 'SELECT $1::int + 2' - P x3 'SELECT $1::int + 3' - S W \
	B x1 1 E P "" 'SELECT 1/0' - B "" - E B x2 1 E S W B x3 1 E S W B x2 2 E S)
mb_is "$out" "1 1 1 Z:I 2 D:2 C:SELECT 1 1 $DZ Z:I 2 D:4 C:SELECT 1 Z:I 2 D:4 C:SELECT 1 Z:I" \
	"max_prepared_statements = 2: an error skips the pooler's eviction Close; every name still works after"
n=$(pqt query "$c" "SELECT count(*) FROM pg_prepared_statements" 2>&1)
mb_like "$n" '^[0-2]$' "the server holds at most 2 statements ($n)"

mb_test_done

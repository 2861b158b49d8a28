#!/usr/bin/env bash
# Statement names as PostgreSQL treats them, checked against a direct connection: a Parse of a name in use
# is refused with 42P05 (and PgBouncer's log line), linked or not; names and portal names of 16 KiB pass in
# every pool mode with pkt_buf = 512, names agreeing on their first 63 bytes are one statement; SQL
# DEALLOCATE [PREPARE] of a protocol-level name in transaction and statement mode: answered alone, in a
# multi-statement Query, in a transaction, after an earlier error (it does not run), in an aborted
# transaction (25P02), twice in one Query (26000), quoted and unquoted; max_client_prepared_statements refuses
# the statement over it with 53400, linked or not. Takes about 10 s.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init prepared_names

mb_tool prepared_tool PTOOL
# a script's transcript on one line
pts() { timeout 60 "$PTOOL" script "$@" 2>&1 | tr '\n' ' ' | sed 's/ $//'; }

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
mb_pgdb mb_db
mb_pgdb mb_one "pool_size=1"
mb_pgdb mb_sess "pool_mode=session"
mb_pgdb mb_stmt "pool_mode=statement"
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_set pool_mode transaction
mb_set default_pool_size 2
[ "${MB_PASS:-normal}" = small ] || mb_set pkt_buf 512	# the small-buffers pass has its own, smaller
mb_start_or_bail

direct="host=127.0.0.1 port=$MB_PG_PORT user=$su password=$sp dbname=$MB_DB connect_timeout=10"
c=$(mb_connstr "$su" "$sp" mb_db)
c1=$(mb_connstr "$su" "$sp" mb_one)

# same_as_pg NAME CONNSTR STEP...: the pooler's transcript equals PostgreSQL's own
same_as_pg() {
	local name=$1 conn=$2 want got
	shift 2
	want=$(pts "$direct" "$@")
	got=$(pts "$conn" "$@")
	if [ "$got" = "$want" ]; then
		mb_ok "$name"
	else
		mb_not_ok "$name" "through the pooler: ${got:0:600}" "PostgreSQL itself:  ${want:0:600}"
	fi
}

# --- a Parse of a name in use: 42P05, as PostgreSQL; the first statement stays
dup=(P x 'SELECT 1' - S W P x 'SELECT 2' - B x - E S W B x - E S W)
same_as_pg "Parse of a name in use: 42P05, the rest skipped to Sync, the first statement kept" "$c" "${dup[@]}"
mb_like "$(pts "$c" "${dup[@]}")" 'E:42P05:prepared statement "x" already exists Z:I 2 D:1' \
	"the 42P05 answer is there (not only equal)"
mb_like "$(cat "$MB_LOG")" "prepared statement 'x' was already prepared" "PgBouncer's log line for it"
same_as_pg "a name in use inside a transaction (linked): 42P05, the transaction aborts" "$c" \
	P x 'SELECT 1' - S W Q BEGIN W P x 'SELECT 1' - S W Q 'SELECT 2' W Q ROLLBACK W B x - E S W
same_as_pg "a name in use with a text no server has seen: 42P05" "$c1" \
	P y 'SELECT 11' - S W P y 'SELECT 12 /* new */' - S W B y - E S W
same_as_pg "a name in use twice in one batch: 42P05 for the second" "$c" \
	P z 'SELECT 3' - P z 'SELECT 3' - S W B z - E S W
same_as_pg "after Close the name can be parsed again" "$c" \
	P w 'SELECT 4' - S W C w S W P w 'SELECT 5' - B w - E S W

# --- names of any length, in every mode, with pkt_buf 512. PostgreSQL takes Parse and Bind of any size,
# Describe, Close and Execute up to 10000 bytes (it closes the connection beyond): 16 KiB statement names in
# Parse and Bind, 9000-byte names where a Describe, Close or Execute carries them.
long=$(printf 'n%.0s' $(seq 1 16384))
mid=$(printf 'm%.0s' $(seq 1 9000))
portal=$(printf 'p%.0s' $(seq 1 9000))
for db in mb_db mb_stmt mb_sess; do
	cn=$(mb_connstr "$su" "$sp" "$db")
	same_as_pg "$db: 16 KiB statement names, 9000-byte portal names (pkt_buf 512)" "$cn" \
		P "$long" 'SELECT $1::int + 1' 23 S W B "$long" 5 E S W BP "$portal" "$long" 6 DP "$portal" \
		EP "$portal" 0 S W P "$mid" 'SELECT 2' - D "$mid" S W C "$mid" S W B "$mid" - E S W B "$long" 7 E S W
	same_as_pg "$db: a 300 KB named text, a 100 KB parameter and a 100 KB Query (pkt_buf 512)" "$cn" \
		P bigtext '@pad:300000:SELECT length($1::text)' 25 S W B bigtext "$(printf 'v%.0s' $(seq 1 100000))" E S W \
		Q "SELECT length('$(printf 'q%.0s' $(seq 1 100000))')" W
	same_as_pg "$db: 16 KiB names agreeing on their first 63 bytes are one statement" "$cn" \
		P "${long}a" 'SELECT 1' - S W P "${long}b" 'SELECT 2' - S W B "${long}c" - E S W
done
out=$(pts "$c" P "$long" 'SELECT $1::int + 1' 23 S W B "$long" 5 E S W)
mb_is "$out" "1 Z:I 2 D:6 C:SELECT 1 Z:I" "a 16 KiB name through transaction pooling answers (not only equal)"

# --- SQL DEALLOCATE of a protocol-level name
prep=(P s1 'SELECT 101' - P S2 'SELECT 102' - S W)
for db in mb_db mb_stmt; do
	cn=$(mb_connstr "$su" "$sp" "$db")
	same_as_pg "$db: DEALLOCATE alone, then the name is gone" "$cn" \
		"${prep[@]}" Q 'DEALLOCATE s1' W B s1 - E S W B S2 - E S W
	same_as_pg "$db: DEALLOCATE PREPARE, quoted and unquoted (lower-cased) names" "$cn" \
		"${prep[@]}" Q 'DEALLOCATE PREPARE "S2"; deallocate /* c */ S1 ;' W B S2 - E S W B s1 - E S W
	same_as_pg "$db: DEALLOCATE in a multi-statement Query" "$cn" \
		"${prep[@]}" Q 'SELECT 1; DEALLOCATE s1; SELECT 2' W B s1 - E S W B S2 - E S W
	same_as_pg "$db: an error earlier in the Query: the DEALLOCATE does not run, the name stays" "$cn" \
		"${prep[@]}" Q 'SELECT 1/0; DEALLOCATE s1' W B s1 - E S W
	same_as_pg "$db: the same name twice in one Query: 26000 for the second" "$cn" \
		"${prep[@]}" Q 'DEALLOCATE s1; DEALLOCATE s1' W B s1 - E S W
	same_as_pg "$db: a name nobody prepared: the server's 26000" "$cn" \
		"${prep[@]}" Q 'DEALLOCATE nope' W Q 'SELECT 1; DEALLOCATE nope' W B s1 - E S W
	same_as_pg "$db: DEALLOCATE ALL, then DEALLOCATE of a name it dropped: 26000" "$cn" \
		"${prep[@]}" Q 'DEALLOCATE ALL; DEALLOCATE s1' W B S2 - E S W
	same_as_pg "$db: RESET ALL does not drop statements: DEALLOCATE after it runs" "$cn" \
		"${prep[@]}" Q 'RESET ALL; DEALLOCATE s1' W B s1 - E S W B S2 - E S W
	same_as_pg "$db: DEALLOCATE of a name, then DEALLOCATE ALL in the same Query" "$cn" \
		"${prep[@]}" Q 'DEALLOCATE s1; DEALLOCATE ALL' W B S2 - E S W
	same_as_pg "$db: UNLISTEN beside a DEALLOCATE keeps its own tag" "$cn" \
		"${prep[@]}" Q 'UNLISTEN a; DEALLOCATE s1; UNLISTEN b' W B s1 - E S W
done
same_as_pg "DEALLOCATE beside a session SET and a RESET: both follow the client as usual" "$c" \
	"${prep[@]}" Q "DEALLOCATE s1; SET application_name = 'mb_dd'" W Q 'SHOW application_name' W \
	Q 'RESET application_name; DEALLOCATE "S2"; SHOW application_name' W B s1 - E S W B S2 - E S W
same_as_pg "DEALLOCATE inside a transaction: runs, and stays done after ROLLBACK" "$c" \
	"${prep[@]}" Q BEGIN W Q 'DEALLOCATE s1' W Q 'SELECT 3' W Q ROLLBACK W B s1 - E S W B S2 - E S W
same_as_pg "DEALLOCATE in an aborted transaction: 25P02, the name stays" "$c" \
	"${prep[@]}" Q BEGIN W Q 'SELECT 1/0' W Q 'DEALLOCATE s1' W Q ROLLBACK W B s1 - E S W
same_as_pg "BEGIN; DEALLOCATE; error; in one Query: the DEALLOCATE ran" "$c" \
	"${prep[@]}" Q 'BEGIN; DEALLOCATE s1; SELECT 1/0; COMMIT' W Q ROLLBACK W B s1 - E S W B S2 - E S W
same_as_pg "a pooled server keeps the statement for others: a second client's Parse of the same text works" "$c1" \
	P k 'SELECT 7' - S W Q 'DEALLOCATE k' W P k 'SELECT 7' - B k - E S W
out=$(pts "$c" "${prep[@]}" Q 'SELECT 1; DEALLOCATE s1' W B s1 - E S W)
mb_is "$out" '1 1 Z:I T:?column? D:1 C:SELECT 1 C:DEALLOCATE Z:I E:26000:prepared statement "s1" does not exist Z:I' \
	"the DEALLOCATE answer is there (not only equal)"

# session mode: names reach the server as they are, PostgreSQL answers everything itself
cs=$(mb_connstr "$su" "$sp" mb_sess)
same_as_pg "session mode: DEALLOCATE and 42P05 are PostgreSQL's own" "$cs" \
	"${prep[@]}" Q 'DEALLOCATE s1' W P S2 'SELECT 1' - S W B s1 - E S W

# --- max_client_prepared_statements, with and without a server linked
mb_set max_client_prepared_statements 2
mb_start_or_bail
cap='E:53400:too many prepared statements for this client (max_client_prepared_statements = 2)'
out=$(pts "$c" P a 'SELECT 1' - P b 'SELECT 2' - P c 'SELECT 3' - B a - E S W B b - E S W C a S W P c 'SELECT 3' - S W)
mb_is "$out" "1 1 $cap Z:I 2 D:2 C:SELECT 1 Z:I 3 Z:I 1 Z:I" \
	"over the cap: 53400 naming the key, skipped to Sync; a Close makes room"
out=$(pts "$c" Q BEGIN W P a 'SELECT 1' - P b 'SELECT 2' - P c 'SELECT 3' - S W Q COMMIT W B b - E S W)
mb_is "$out" "C:BEGIN Z:T 1 1 $cap Z:E C:ROLLBACK Z:I 2 D:2 C:SELECT 1 Z:I" \
	"over the cap inside a transaction: the transaction fails as for any error"
mb_like "$(cat "$MB_LOG")" "refused prepared statement 'c': max_client_prepared_statements \(2\) reached" "the refusal is logged"

mb_check_healthy
mb_test_done

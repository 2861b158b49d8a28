#!/usr/bin/env bash
# Pool modes: statement mode refuses transaction blocks and serves single statements; pool_mode is taken from
# the [users] entry, else the [databases] entry, else [pgbouncer]. COPY in transaction mode.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init txn_modes

mb_tool txn_tool TXN_TOOL

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
mu=$MB_MD5_USER mp=$MB_MD5_PASS
mb_pgdb m_txn "pool_mode=transaction"
mb_pgdb m_stmt "pool_mode=statement"
mb_pgdb m_def
mb_pgdb m_copy "pool_mode=transaction pool_size=1"
mb_user "$su" "$sp"
mb_user "$mu" "$mp"
mb_usercfg "$mu = pool_mode=transaction"
mb_set auth_type scram-sha-256
mb_set pool_mode session
mb_start_or_bail
stuck() {
	pg_super_psql -d postgres -c "SELECT count(*) FROM pg_stat_activity
		WHERE datname = '$MB_DB' AND state LIKE 'idle in transaction%'"
}

# The mode as clients see it: do two clients share a server between statements (transaction, statement)
# or does each keep its own (session)? Is BEGIN refused (statement)?
mode_of() {
	local c out pa pb
	c=$(mb_connstr "$1" "$2" "$3")
	out=$(tt <<EOT 2>&1
open a $c
open b $c
q a SELECT pg_backend_pid()
q b SELECT pg_backend_pid()
q a BEGIN
q a COMMIT
EOT
)
	pa=$(lines_of "$out" a | sed -n 2p)
	pb=$(lines_of "$out" b | sed -n 2p)
	if grep -q '^a: BEGIN' <<<"$out"; then
		[ "$pa" = "$pb" ] && echo transaction || echo session
	elif grep -q 'a: closed\|ERROR 0A000\|connection lost' <<<"$out"; then
		[ "$pa" = "$pb" ] && echo statement || echo "statement?($pa/$pb)"
	else
		echo "unknown: $(tr '\n' ' ' <<<"$out")"
	fi
}
mb_is "$(mode_of "$su" "$sp" m_def)" session "no pool_mode on the entry or the user: [pgbouncer] pool_mode (session)"
mb_is "$(mode_of "$su" "$sp" m_txn)" transaction "[databases] pool_mode=transaction"
mb_is "$(mode_of "$su" "$sp" m_stmt)" statement "[databases] pool_mode=statement"
mb_is "$(mode_of "$mu" "$mp" m_stmt)" transaction "[users] pool_mode=transaction wins over [databases] pool_mode=statement"
mb_is "$(mode_of "$mu" "$mp" m_def)" transaction "[users] pool_mode=transaction wins over [pgbouncer] pool_mode=session"

# ---- statement mode in detail
c=$(mb_connstr "$su" "$sp" m_stmt)
out=$(tt <<EOT 2>&1
open a $c
q a SELECT 'single'
x a SELECT 'extended'
q a SELECT 'one'; SELECT 'two'
q a BEGIN
EOT
)
mb_is "$(lines_of "$out" a | sed -n 2,5p)" $'single\nextended\none\ntwo' \
	"statement mode: single statements (simple and extended) and a multi-statement Query work"
mb_like "$(lines_of "$out" a | sed -n '6,$p' | tr '\n' ' ')" \
	'ERROR 0A000 transaction blocks not allowed in statement pooling mode' \
	"statement mode: BEGIN gets 0A000 transaction blocks not allowed in statement pooling mode"
out=$(printf 'open a %s\nq a BEGIN\nclosed a 3\n' "$c" | tt 2>&1)
mb_like "$(lines_of "$out" a | tail -n 1)" '^closed .*FATAL 0A000 transaction blocks not allowed in statement pooling mode' \
	"statement mode: the error is FATAL and the connection is closed"
out=$(printf 'open a %s\nq a START TRANSACTION\nq a SELECT 1\n' "$c" | tt 2>&1)
mb_like "$(lines_of "$out" a | sed -n 2p)" 'ERROR 0A000' "statement mode: START TRANSACTION is refused the same way"
mb_is "$(stuck)" 0 "statement mode: no server is left inside the refused transaction"
out=$(pqt query "$c" "SELECT 'after'" 2>&1)
mb_is "$out" after "statement mode: the next client is served"

# ---- COPY in transaction mode: in, out, and a failing COPY leave the pool's one server usable
pg_super_psql -d "$MB_DB" >/dev/null <<-EOT
	SET client_min_messages = warning;
	DROP TABLE IF EXISTS txn_copy;
	CREATE TABLE txn_copy (x int);
	GRANT ALL ON txn_copy TO PUBLIC;
EOT
out=$(printf '1\n2\n3\n' | mb_psql "$su" "$sp" m_copy -c "COPY txn_copy FROM STDIN" 2>&1)
mb_is "$out" "" "transaction mode: COPY FROM STDIN"
out=$(printf '4\nfour\n' | mb_psql "$su" "$sp" m_copy -c "COPY txn_copy FROM STDIN" 2>&1)
mb_like "$out" 'invalid input syntax for type integer' "transaction mode: a COPY with bad data fails"
out=$(mb_psql "$su" "$sp" m_copy -c "COPY (SELECT x FROM txn_copy ORDER BY x) TO STDOUT" 2>&1)
mb_is "$(tr '\n' ' ' <<<"$out")" "1 2 3 " "transaction mode: COPY TO STDOUT by the next client; the failed COPY left nothing"
mb_is "$(stuck)" 0 "transaction mode: no server left in a transaction after the COPYs"

mb_test_done

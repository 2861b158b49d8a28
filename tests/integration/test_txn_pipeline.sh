#!/usr/bin/env bash
# Transaction pooling and libpq pipeline mode: an error in the middle of a pipeline leaves the client, its
# server and the other clients in a clean state (PostgreSQL's implicit-transaction rules hold).
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init txn_pipeline

mb_tool txn_tool TXN_TOOL

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
pg_super_psql -d "$MB_DB" >/dev/null <<-EOT
	SET client_min_messages = warning;
	DROP TABLE IF EXISTS txn_pipe;
	CREATE TABLE txn_pipe (x int);
	GRANT ALL ON txn_pipe TO PUBLIC;
EOT
mb_pgdb "$MB_DB" "pool_size=1"
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_set pool_mode transaction
mb_start_or_bail
c=$(mb_connstr "$su" "$sp" "$MB_DB")
rows() { pg_super_psql -d "$MB_DB" -c "SELECT coalesce(string_agg(x::text, ',' ORDER BY x), '-') FROM txn_pipe"; }
stuck() {
	pg_super_psql -d postgres -c "SELECT count(*) FROM pg_stat_activity
		WHERE datname = '$MB_DB' AND state LIKE 'idle in transaction%'"
}
pid0=$(pqt backend-pid "$c" 2>&1)

# ---- one Sync, the error in the middle: everything up to the Sync is one implicit transaction
out=$(tt <<EOT 2>&1
open a $c
open b $c
pipeline a INSERT INTO txn_pipe VALUES (1) ;; SELECT 1/0 ;; INSERT INTO txn_pipe VALUES (3) ;; SYNC
txn a
q a SELECT 'a next', pg_backend_pid()
q b SELECT 'b next', pg_backend_pid()
EOT
)
mb_is "$(lines_of "$out" a | sed -n 2,5p)" $'INSERT 0 1\nERROR 22012 division by zero\naborted\nsync' \
	"pipeline: INSERT, error, skipped INSERT, Sync"
mb_is "$(lines_of "$out" a | sed -n 6p)" "txn idle" "the client is idle after the Sync"
mb_is "$(lines_of "$out" a | tail -n 1)|$(lines_of "$out" b | tail -n 1)" "a next|$pid0|b next|$pid0" \
	"next queries of the client and of another client work, on the same server (not dropped)"
mb_is "$(rows)" "-" "the INSERT before the error was rolled back with the implicit transaction"
mb_is "$(stuck)" 0 "no server is left idle in a transaction"

# ---- several Syncs: only the segment with the error is lost
pg_super_psql -d "$MB_DB" -c "TRUNCATE txn_pipe" >/dev/null
out=$(tt <<EOT 2>&1
open a $c
pipeline a INSERT INTO txn_pipe VALUES (10) ;; SYNC ;; SELECT 1/0 ;; INSERT INTO txn_pipe VALUES (20) ;; SYNC ;; INSERT INTO txn_pipe VALUES (30) ;; SELECT 'tail' ;; SYNC
q a SELECT 'a next'
EOT
)
mb_is "$(lines_of "$out" a | sed 1d | tr '\n' ';')" \
	"INSERT 0 1;sync;ERROR 22012 division by zero;aborted;sync;INSERT 0 1;tail;sync;a next;" \
	"three Syncs: results of every segment in order"
mb_is "$(rows)" "10,30" "segments before and after the failed one committed"
mb_is "$(stuck)" 0 "no server is left idle in a transaction"

# ---- a syntax error (the Parse fails) in the middle
out=$(tt <<EOT 2>&1
open a $c
pipeline a SELECT 'one' ;; SELEC 'two' ;; SELECT 'three' ;; SYNC
q a SELECT 'a next'
EOT
)
mb_is "$(lines_of "$out" a | sed 1d | tr '\n' ';')" 'one;ERROR 42601 syntax error at or near "SELEC";aborted;sync;a next;' \
	"a failing Parse: the rest up to Sync is skipped, the next query works"

# ---- explicit BEGIN in the pipeline: the transaction stays open (failed) until the client ends it;
# meanwhile a second client waits for the pool's only server and then gets a clean one
pg_super_psql -d "$MB_DB" -c "TRUNCATE txn_pipe" >/dev/null
out=$(tt <<EOT 2>&1
open a $c
open b $c
pipeline a BEGIN ;; INSERT INTO txn_pipe VALUES (100) ;; SELECT 1/0 ;; INSERT INTO txn_pipe VALUES (300) ;; SYNC
txn a
send b SELECT 'b waited', current_setting('transaction_isolation'), txid_current_if_assigned() IS NULL
sleep 0.3
q a SELECT 'in failed transaction'
q a ROLLBACK
txn a
wait b
q b SELECT pg_backend_pid()
EOT
)
mb_is "$(lines_of "$out" a | sed 1d | tr '\n' ';')" \
	"BEGIN;INSERT 0 1;ERROR 22012 division by zero;aborted;sync;txn inerror;ERROR 25P02 current transaction is aborted, commands ignored until end of transaction block;ROLLBACK;txn idle;" \
	"BEGIN ... error ... Sync: the client is in a failed transaction until its ROLLBACK"
mb_is "$(lines_of "$out" b | sed 1d | tr '\n' ';')" "b waited|read committed|t;$pid0;" \
	"the other client waited, then got the same server in a fresh transaction"
mb_is "$(rows)" "-" "nothing of the failed transaction was committed"
mb_is "$(stuck)" 0 "no server is left idle in a transaction"

# ---- an execution error (not a Parse error) in the middle, then a second segment
out=$(tt <<EOT 2>&1
open a $c
pipeline a SELECT 'p1' ;; SELECT 'p2'::int ;; SELECT 'p3' ;; SYNC ;; SELECT 'p4' ;; SYNC
q a SELECT 'a next'
EOT
)
mb_is "$(lines_of "$out" a | sed 1d | tr '\n' ';')" \
	'p1;ERROR 22P02 invalid input syntax for type integer: "p2";aborted;sync;p4;sync;a next;' \
	"an execution error (bad cast) mid-pipeline, then a second segment works"

mb_is "$(pqt backend-pid "$c" 2>&1)" "$pid0" "the pool still has its one server (never dropped)"
mb_test_done

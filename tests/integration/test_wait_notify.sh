#!/usr/bin/env bash
# query_wait_notify: a client that waits for a server longer than this is told so with a NOTICE, once, and
# still gets its server (nothing fails).
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init wait_notify

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
mb_db mb_one "host=127.0.0.1 port=$MB_PG_PORT dbname=$MB_DB pool_size=1"
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_set pool_mode transaction
mb_set query_wait_notify 0.5
mb_start_or_bail
hold() {
	PGPASSWORD="$sp" timeout 30 "$PG_BINDIR/psql" -X -q -A -t -h 127.0.0.1 -p "$MB_PORT" -U "$su" mb_one "$@"
}
mb_bg "$T_DIR/a.out" env PGPASSWORD="$sp" timeout 30 "$PG_BINDIR/psql" -X -q -A -t -h 127.0.0.1 -p "$MB_PORT" \
	-U "$su" mb_one -c "BEGIN" -c "SELECT pg_sleep(2)" -c "COMMIT"
sleep 0.5
out=$(hold -c "SELECT 'b got its server'" 2>&1)
mb_like "$out" 'NOTICE: +No server connection available in postgres backend, client being queued' "a client waiting past query_wait_notify gets a NOTICE"
mb_like "$out" 'b got its server' "and then runs its query"
mb_is "$(echo "$out" | grep -c NOTICE)" 1 "the notice is sent once per wait"
out=$(hold -c "SELECT 'no wait'" 2>&1)
mb_is "$out" "no wait" "a client that does not wait gets no notice"
mb_test_done

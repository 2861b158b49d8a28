#!/usr/bin/env bash
# autodb_idle_timeout: a pool reached through the "*" entry is freed (its servers closed) once no client has
# used it for that long; named entries keep their idle servers.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init autodb

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
mb_db '*' "host=127.0.0.1 port=$MB_PG_PORT"
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_set pool_mode transaction
mb_set autodb_idle_timeout 1
mb_start_or_bail
app="mb_autodb_$$"
c="$(mb_connstr "$su" "$sp" "$MB_DB") application_name=$app"
servers() {
	pg_super_psql -d postgres -A -t -c "SELECT count(*) FROM pg_stat_activity WHERE usename = '$su'
		AND datname = '$MB_DB' AND backend_type = 'client backend' AND pid <> pg_backend_pid()
		AND client_addr IS NOT NULL" 2>&1
}
out=$(pqt query "$c" "SELECT 'via star'" 2>&1)
mb_is "$out" "via star" "a client reaches $MB_DB through the * entry"
n1=$(servers)
mb_like "$n1" '^[1-9]' "while the pool is fresh its server stays connected ($n1)"
for _ in $(seq 1 50); do
	[ "$(servers)" = 0 ] && break
	sleep 0.1
done
mb_is "$(servers)" 0 "after autodb_idle_timeout=1 with no client the pool's servers are closed"
out=$(pqt query "$c" "SELECT 'again'" 2>&1)
mb_is "$out" again "the database is reachable again afterwards (the pool is made anew)"
mb_test_done

#!/usr/bin/env bash
# max_packet_size refuses longer client messages; disable_pqexec refuses the simple query protocol while the
# extended protocol keeps working.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init packet_limits

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
mb_pgdb "$MB_DB"
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_set pool_mode transaction
mb_set max_packet_size 1000
mb_start_or_bail
c=$(mb_connstr "$su" "$sp" "$MB_DB")

long="SELECT '$(printf 'x%.0s' $(seq 1 2000))'"
out=$(pqt query "$c" "$long" 2>&1)
mb_like "$out" 'max_packet_size' "max_packet_size=1000: a 2 kB query is refused ($(echo "$out" | head -c 120))"
out=$(pqt query "$c" "SELECT 'short'" 2>&1)
mb_is "$out" short "max_packet_size=1000: a short query passes"
mb_stop

mb_reset
mb_pgdb "$MB_DB"
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_set pool_mode transaction
mb_set disable_pqexec 1
mb_start_or_bail
c=$(mb_connstr "$su" "$sp" "$MB_DB")
out=$(pqt query "$c" "SELECT 1" 2>&1)
mb_like "$out" 'PQexec disallowed' "disable_pqexec=1: a simple query is refused"
echo "SELECT 1;" >"$T_DIR/one.sql"
mb_chown_pg "$T_DIR"
out=$(PGPASSWORD="$sp" timeout 60 "$PG_BINDIR/pgbench" -n -M extended -f "$T_DIR/one.sql" -t 20 -h 127.0.0.1 \
	-p "$MB_PORT" -U "$su" "$MB_DB" 2>&1)
mb_like "$out" 'number of transactions actually processed: 20/20' \
	"disable_pqexec=1: the extended protocol still works (pgbench -M extended)"
mb_test_done

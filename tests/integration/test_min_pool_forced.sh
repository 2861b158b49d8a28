#!/usr/bin/env bash
# min_pool_size for a [databases] entry with a forced user: as PgBouncer's janitor, its pool exists from the
# start and its servers are opened before any client connects (also for an entry added by a reload). An entry
# without a forced user opens none until its first client.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init min_pool_forced

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
mu=$MB_MD5_USER mp=$MB_MD5_PASS
app_count() { # backends of user $1 with application_name $2... counted by database and user
	pg_super_psql -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE usename = '$1' AND datname = '$2'"
}
wait_count() { # USER DB N SECONDS: until that many backends (or the time is up); prints the count
	local i n
	for ((i = 0; i < $4 * 10; i++)); do
		n=$(app_count "$1" "$2")
		[ "$n" = "$3" ] && break
		sleep 0.1
	done
	echo "$n"
}
db2=mb_min_forced
if [ "$(pg_super_psql -d postgres -c "SELECT count(*) FROM pg_database WHERE datname = '$db2'")" = 0 ]; then
	pg_super_psql -d postgres -c "CREATE DATABASE $db2 OWNER $su" >/dev/null
fi

mb_db m_forced "host=127.0.0.1 port=$MB_PG_PORT dbname=$db2 user=$su min_pool_size=2 pool_size=4"
mb_db m_plain "host=127.0.0.1 port=$MB_PG_PORT dbname=$db2 min_pool_size=2"
mb_user "$su" "$sp"
mb_user "$mu" "$mp"
mb_set auth_type scram-sha-256
mb_set pool_mode transaction
mb_start_or_bail

mb_is "$(wait_count "$su" "$db2" 2 5)" 2 "forced user: min_pool_size=2 servers are open before any client connects"
sleep 0.5
mb_is "$(app_count "$mu" "$db2")" 0 "no forced user: no server before a client"
out=$(pqt query "$(mb_connstr "$su" "$sp" m_forced)" "SELECT current_user" 2>&1)
mb_is "$out" "$su" "a client of the forced entry is served"
mb_is "$(app_count "$su" "$db2")" 2 "...by the servers already open (no more than min_pool_size)"

# an entry with a forced user added by a reload is filled too
mb_db m_added "host=127.0.0.1 port=$MB_PG_PORT dbname=$db2 user=$mu password=$mp min_pool_size=1"
mb_write_config
kill -HUP "$MB_PID"
mb_is "$(wait_count "$mu" "$db2" 1 5)" 1 "an entry with a forced user added by a reload: min_pool_size=1 server opened"

mb_test_done

#!/usr/bin/env bash
# A reload that changes a [databases] entry applies every connection setting to the servers opened from then on,
# as PgBouncer does: host, dbname, user (the forced user: its pool logs in as the new one, also for clients
# connected before), password, connect_query, pool_size, pool_mode (for new clients). Servers opened under the
# old entry are retired ("database configuration changed").
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init reload_entry_settings

mb_tool txn_tool TXN_TOOL

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
ru=$MB_RELOAD_USER rp=$MB_RELOAD_PASS
db2=mb_reload_db2
if [ "$(pg_super_psql -d postgres -c "SELECT count(*) FROM pg_database WHERE datname = '$db2'")" = 0 ]; then
	pg_super_psql -d postgres -c "CREATE DATABASE $db2 OWNER $su" >/dev/null
fi
pg_super_psql -d postgres -c "ALTER ROLE $ru LOGIN PASSWORD '$rp'" >/dev/null
pg_super_psql -d "$db2" >/dev/null <<-EOT
	SET client_min_messages = warning;
	DROP TABLE IF EXISTS reload_cq;
	CREATE TABLE reload_cq (pid int, tag text);
	GRANT ALL ON reload_cq TO PUBLIC;
EOT

mb_db r "host=127.0.0.1 port=$MB_PG_PORT dbname=$MB_DB user=$su pool_size=1"
mb_db r_db "host=127.0.0.1 port=$MB_PG_PORT dbname=$MB_DB"
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_set pool_mode transaction
mb_set query_wait_timeout 3
mb_start_or_bail
c=$(mb_connstr "$su" "$sp" r)
q="SELECT current_database(), current_user, coalesce(inet_server_addr()::text, 'unix')"
c_db=$(mb_connstr "$su" "$sp" r_db)
mb_is "$(pqt query "$c_db" "SELECT current_database()" 2>&1)" "$MB_DB" "r_db: $MB_DB before the reload"

# a: a client connected before the reload (transaction mode), still connected after it
cat >"$T_DIR/a.script" <<EOT
open a $c
q a $q
sleep 2
q a $q
q a SELECT count(*) FROM reload_cq WHERE pid = pg_backend_pid() AND tag = current_database()
EOT
mb_bg "$T_DIR/a.out" "$TXN_TOOL" script "$T_DIR/a.script"
a_pid=$MB_BG_PID
mb_wait_line "$T_DIR/a.out" "a: $MB_DB" 10 || mb_diag "a did not start: $(cat "$T_DIR/a.out")"
mb_like "$(cat "$T_DIR/a.out")" "a: $MB_DB\\|$su\\|127\\.0\\.0\\.1" "before the reload: $MB_DB as $su over TCP" \
	"$(cat "$T_DIR/a.out")"

mark=$(wc -l <"$MB_LOG")
sed -i "s|^r = .*|r = host=$MB_PG_SOCKDIR port=$MB_PG_PORT dbname=$db2 user=$ru password=$rp pool_size=2 pool_mode=session connect_query='INSERT INTO reload_cq SELECT pg_backend_pid(), current_database()'|" "$MB_INI"
sed -i "s|^r_db = .*|r_db = host=127.0.0.1 port=$MB_PG_PORT dbname=$db2|" "$MB_INI"
kill -HUP "$MB_PID"
mb_wait_line "$MB_LOG" "configuration reloaded" 5 || mb_diag "no reload logged"
mb_is "$(pqt query "$c_db" "SELECT current_database()" 2>&1)" "$db2" \
	"only dbname= changed (same pool): a new client's server logs in to the new database"

mb_wait_exit "$a_pid" 20
out=$(cat "$T_DIR/a.out")
mb_is "$(lines_of "$out" a | sed -n 3p)" "$db2|$ru|unix" \
	"a client connected before the reload: its next transaction runs on $db2, as $ru, over the unix socket" "$out"
mb_is "$(lines_of "$out" a | sed -n 4p)" 1 "...on a server that ran the new connect_query once"

out=$(tt <<EOT 2>&1
open b $c
q b $q
q b SELECT count(*) FROM reload_cq WHERE pid = pg_backend_pid() AND tag = current_database()
open c $c
q c SELECT 'c served'
open d $c
q d SELECT 'd served'
EOT
)
mb_is "$(lines_of "$out" b | sed -n 2p)" "$db2|$ru|unix" "a new client: $db2 as $ru over the unix socket" "$out"
mb_is "$(lines_of "$out" b | sed -n 3p)" 1 "a new client: its server ran the new connect_query" "$out"
mb_is "$(lines_of "$out" c | sed -n 2p)" "c served" "pool_size=2: a second session gets a server" "$out"
mb_like "$(lines_of "$out" d | sed -n 2p)" '^ERROR 08P01 query_wait_timeout' \
	"pool_mode=session: two clients hold both servers, a third waits (query_wait_timeout)" "$out"
mb_like "$(tail -n +"$((mark + 1))" "$MB_LOG")" "S-[0-9]+ r/$su@[^ ]+ closing because: database configuration changed" \
	"the server opened under the old entry is retired: 'closing because: database configuration changed'"
pg_super_psql -d postgres -c "ALTER ROLE $ru PASSWORD '$rp'" >/dev/null

mb_test_done

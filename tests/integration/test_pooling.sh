#!/usr/bin/env bash
# Session pooling: a server is reused by the next client, reset in between, and gets each client's parameters.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init pooling

mb_pgdb mb_db
mb_pgdb mb_db1 "pool_size=1"
mb_db mb_db_unix "host=$MB_PG_SOCKDIR port=$MB_PG_PORT dbname=$MB_DB"
mb_user "$MB_SCRAM_USER" "$MB_SCRAM_PASS"
mb_set auth_type scram-sha-256
mb_start_or_bail

c=$(mb_connstr "$MB_SCRAM_USER" "$MB_SCRAM_PASS" mb_db)
c1=$(mb_connstr "$MB_SCRAM_USER" "$MB_SCRAM_PASS" mb_db1)

t_start=$(pg_super_psql -d postgres -c "SELECT now()")

# --- server reuse
p1=$(pqt backend-pid "$c" 2>&1)
p2=$(pqt backend-pid "$c" 2>&1)
mb_like "$p1" '^[0-9]+$' "first client gets a server backend pid"
mb_is "$p2" "$p1" "second client gets the same server (default pool size)"
q1=$(pqt backend-pid "$c1" 2>&1)
q2=$(pqt backend-pid "$c1" 2>&1)
q3=$(pqt backend-pid "$c1" 2>&1)
mb_like "$q1" '^[0-9]+$' "pool_size=1: first client gets a server"
mb_is "$q2 $q3" "$q1 $q1" "pool_size=1: next clients get the same server"
n=$(pg_super_psql -d postgres -c "SELECT count(*) FROM pg_stat_activity
	WHERE usename = '$MB_SCRAM_USER' AND backend_start >= '$t_start'")
mb_is "$n" 2 "PostgreSQL sees one server connection per pool"

# --- server_reset_query: session state of one client is gone for the next
out1=$(pqt query "$c1" "SELECT pg_backend_pid()" "SET statement_timeout = '1234ms'" "SHOW statement_timeout" 2>&1)
out2=$(pqt query "$c1" "SELECT pg_backend_pid()" "SHOW statement_timeout" 2>&1)
mb_is "$out1" "$q1"$'\n'"1234ms" "first client sets statement_timeout on the pooled server"
mb_is "$out2" "$q1"$'\n'"0" "next client on the same server sees statement_timeout reset"
out1=$(pqt query "$c1" "CREATE TEMP TABLE tmp_leak (x int)" "PREPARE leak AS SELECT 1" "SELECT 'made'" 2>&1)
out2=$(pqt query "$c1" "SELECT count(*) FROM pg_prepared_statements WHERE name = 'leak'" \
	"SELECT count(*) FROM pg_class WHERE relname = 'tmp_leak' AND relpersistence = 't'" 2>&1)
mb_is "$out1" made "first client creates a temp table and a prepared statement"
mb_is "$out2" $'0\n0' "next client sees neither"

# --- startup parameters reach the server, and each client sees its own
a=$(PGDATESTYLE='SQL, DMY' pqt params "$c1 application_name=app_one" application_name DateStyle 2>&1)
mb_is "$a" $'application_name\tapp_one\tapp_one\nDateStyle\tSQL, DMY\tSQL, DMY' \
	"application_name and DateStyle from the startup packet in force and reported"
b=$(PGDATESTYLE='Postgres, MDY' pqt params "$c1 application_name=app_two" application_name DateStyle 2>&1)
mb_is "$b" $'application_name\tapp_two\tapp_two\nDateStyle\tPostgres, MDY\tPostgres, MDY' \
	"next client on the same server: its own application_name and DateStyle"
a=$(pqt params "$c1 options='-c search_path=schema_a'" search_path 2>&1)
mb_is "$(cut -f1,2 <<<"$a")" $'search_path\tschema_a' "options=-c search_path=... in force"
b=$(pqt params "$c1 options='-c search_path=schema_b'" search_path 2>&1)
mb_is "$(cut -f1,2 <<<"$b")" $'search_path\tschema_b' "next client: its own search_path"
d=$(pqt params "$c1" application_name DateStyle search_path 2>&1)
mb_is "$(cut -f1,2 <<<"$d")" $'application_name\t\nDateStyle\tISO, MDY\nsearch_path\t"$user", public' \
	"a client without parameters sees the server defaults"
pid=$(pqt backend-pid "$c1" 2>&1)
mb_is "$pid" "$q1" "all of this ran on one pooled server (pool_size=1)"

# --- unix sockets: client to pooler, and pooler to PostgreSQL
out=$(pqt query "host=$T_DIR port=$MB_PORT user=$MB_SCRAM_USER password=$MB_SCRAM_PASS dbname=mb_db" \
	"SELECT 'via unix socket'" 2>&1)
mb_is "$out" "via unix socket" "a client connects through the pooler's unix socket in unix_socket_dir"
out=$(pqt query "$(mb_connstr "$MB_SCRAM_USER" "$MB_SCRAM_PASS" mb_db_unix)" \
	"SELECT coalesce(inet_client_addr()::text, 'local')" 2>&1)
mb_is "$out" local "a db entry with host=/socket/dir reaches PostgreSQL over its unix socket"

mb_test_done

#!/usr/bin/env bash
# auth_user / auth_query / auth_dbname: users missing from auth_file log in with the secret PostgreSQL holds
# (md5 and SCRAM, the server login following), a wrong password and an unknown user fail alike (28P01, the
# same SCRAM first message), NULL and expired secrets fail, per-entry settings, a failed lookup, a slow
# lookup that blocks no one, and a client's search_path/options that cannot steer the lookup.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init auth_query

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
mu=$MB_MD5_USER mp=$MB_MD5_PASS

auth_request() {
	mb_raw "$(mb_startup_hex user "$1" database "${2:-$MB_DB}")" 2>&1 |
		awk '$1 == "AUTH" {print $2; exit} $1 == "ERROR" {$1 = ""; print substr($0, 2); exit}'
}
login() { pqt query "$(mb_connstr "$1" "$2" "${3:-$MB_DB}" "${@:4}")" "SELECT current_user" 2>&1; }
sasl_first() { pqt sasl-first 127.0.0.1 "$MB_PORT" "$1" "${2:-$MB_DB}" 2>&1; }

pg_super_psql -d postgres >/dev/null <<EOF
SET client_min_messages = warning;
DROP ROLE IF EXISTS mb_aq_nopass;
DROP ROLE IF EXISTS mb_aq_expired;
CREATE ROLE mb_aq_nopass LOGIN;
CREATE ROLE mb_aq_expired LOGIN PASSWORD 'expired-pass' VALID UNTIL '2001-01-01';
EOF

mb_pgdb "$MB_DB"
mb_user postgres "$MB_PG_PASSWORD"	# auth_user: its own secret comes from auth_file
mb_set auth_user postgres
mb_set auth_type md5
mb_set log_connections 1
mb_start_or_bail

# --- auth_type md5: an md5 secret, a SCRAM secret (SCRAM is used), an unknown user
mb_is "$(auth_request "$mu")" 5 "md5 user missing from auth_file: md5 asked"
mb_is "$(login "$mu" "$mp")" "$mu" "md5 secret from auth_query: login, and the server login answers md5 with it"
mb_is "$(login "$mu" "$mp")" "$mu" "... again (the pool keeps the secret for new servers)"
mb_is "$(login "$mu" wrong)" "ERROR 28P01 password authentication failed" "md5: a wrong password fails with 28P01"
mb_is "$(auth_request "$su")" 10 "SCRAM secret from auth_query: SCRAM asked instead of md5"
mb_is "$(login "$su" "$sp")" "$su" "SCRAM secret from auth_query: login, server login by SCRAM pass-through"
mb_is "$(login "$su" wrong)" "ERROR 28P01 SASL authentication failed" "SCRAM: a wrong password fails with 28P01"
mb_is "$(auth_request nobody_here)" 5 "unknown user: md5 asked like anyone else"
mb_is "$(login nobody_here some-pass)" "ERROR 28P01 password authentication failed" \
	"unknown user: the same failure as a wrong password"
mb_is "$(login mb_aq_nopass anything)" "ERROR 28P01 password authentication failed" \
	"a role without a password (NULL secret): fails as a wrong password"
mb_is "$(login mb_aq_expired expired-pass)" "ERROR 28P01 password authentication failed" \
	"an expired password (rolvaliduntil passed): fails"
mb_like "$(cat "$MB_LOG")" "login attempt: db=$MB_DB user=$mu" "the looked-up user's login is logged as any other"

# --- auth_type scram-sha-256: a known and an unknown user look the same until the proof
mb_set auth_type scram-sha-256
mb_start_or_bail
known=$(sasl_first "$su")
unknown=$(sasl_first nobody_here)
mb_like "$known" '^SASL r=[0-9]+ s=24 i=4096$' "SCRAM: the server-first message for a user from auth_query ($known)"
mb_is "$unknown" "$known" "SCRAM: an unknown user gets a server-first message of the same shape"
mb_is "$(sasl_first nobody_here)" "$unknown" "... with the same salt length on every attempt"
mb_is "$(login "$su" "$sp")" "$su" "scram-sha-256: a SCRAM secret from auth_query logs in"
mb_is "$(login "$su" wrong)" "ERROR 28P01 SASL authentication failed" "scram-sha-256: a wrong password: 28P01"
mb_is "$(login nobody_here x)" "ERROR 28P01 SASL authentication failed" "scram-sha-256: an unknown user: the same"
mb_is "$(login "$mu" "$mp")" "ERROR 28P01 SASL authentication failed" \
	"scram-sha-256: an md5 secret cannot answer SCRAM (as PgBouncer)"

# --- a client's search_path and options cannot steer the lookup: a public.pg_authid that hands out a
# forged md5 secret (password "forged") for every user is not read, whatever the client asks for
pg_super_psql -d "$MB_DB" >/dev/null <<'EOF'
SET client_min_messages = warning;
DROP VIEW IF EXISTS public.pg_authid;
CREATE VIEW public.pg_authid AS
	SELECT rolname, 'md5' || md5('forged' || rolname) AS rolpassword, true AS rolcanlogin,
	       NULL::timestamptz AS rolvaliduntil
	FROM pg_catalog.pg_authid;
GRANT SELECT ON public.pg_authid TO PUBLIC;
EOF
trap_sql=$(pg_super_psql -d "$MB_DB" -c "SET search_path = public, pg_catalog;
	SELECT rolpassword FROM pg_authid WHERE rolname = '$mu'")
mb_is "$trap_sql" "$(mb_md5_secret "$mu" forged)" "the trap works: with search_path = public, pg_catalog the view answers"
mb_set auth_type md5
mb_start_or_bail
for opts in "options='-c search_path=public,pg_catalog'" "options='--search_path=public,pg_catalog'"; do
	mb_is "$(login "$mu" forged "$MB_DB" "$opts")" "ERROR 28P01 password authentication failed" \
		"the forged password fails ($opts)"
	mb_is "$(login "$mu" "$mp" "$MB_DB" "$opts")" "$mu" "the real password works ($opts)"
done
out=$(PGOPTIONS='-c search_path=public,pg_catalog' login "$mu" forged)
mb_is "$out" "ERROR 28P01 password authentication failed" "the forged password fails (PGOPTIONS)"
pg_super_psql -d "$MB_DB" -c "DROP VIEW public.pg_authid" >/dev/null

# --- per-entry auth_user and auth_query, auth_dbname, a lookup that fails
mb_reset
mb_pgdb "$MB_DB"
mb_pgdb aqdb "auth_user=postgres"
mb_pgdb viadb "auth_user=postgres auth_dbname=pgdb auth_query='SELECT rolname, CASE WHEN current_database() = ''postgres'' THEN rolpassword END FROM pg_authid WHERE rolname = \$1'"
mb_pgdb nodb "auth_user=postgres auth_query='SELECT rolname, CASE WHEN current_database() = ''postgres'' THEN rolpassword END FROM pg_authid WHERE rolname = \$1'"
mb_db pgdb "host=127.0.0.1 port=$MB_PG_PORT dbname=postgres"
mb_pgdb badauth "auth_user=$MB_RELOAD_USER"
mb_pgdb slowdb "auth_user=postgres pool_size=1 auth_query='WITH l AS (SELECT pg_advisory_xact_lock_shared(4242)) SELECT rolname, rolpassword FROM pg_authid, l WHERE rolname = \$1'"
mb_user postgres "$MB_PG_PASSWORD"
mb_user "$MB_RELOAD_USER" not-its-password
mb_user "$su" "$sp"
mb_set auth_type md5
mb_set verbose 1	# logs each lookup as it is asked for
mb_start_or_bail
mb_is "$(login "$mu" "$mp" aqdb)" "$mu" "auth_user on the entry: its users are looked up"
mb_is "$(login "$mu" "$mp" "$MB_DB")" "ERROR 28P01 password authentication failed" \
	"an entry without auth_user (and none global): no lookup, unknown user"
mb_is "$(login "$mu" "$mp" viadb)" "$mu" "auth_dbname: the query runs in that entry's database"
mb_is "$(login "$mu" "$mp" nodb)" "ERROR 28P01 password authentication failed" \
	"... and without auth_dbname in the client's (the entry's auth_query sees another database)"
mb_is "$(login "$mu" "$mp" badauth)" "ERROR 08P01 auth_query failed" "auth_user cannot log in: the login fails"
mb_like "$(cat "$MB_LOG")" "auth_query for user $mu failed: auth_user login failed" "... and the reason is logged"

# Lookups of slowdb wait for an advisory lock the test holds: a slow lookup, without timing.
lock_hold() {
	mb_bg "$T_DIR/locker.out" env PGPASSWORD="$MB_PG_PASSWORD" PGAPPNAME=mb_aq_locker "$PG_BINDIR/psql" -X -q \
		-h 127.0.0.1 -p "$MB_PG_PORT" -U postgres -d "$MB_DB" -c "SELECT pg_advisory_lock(4242)" \
		-c "SELECT pg_sleep(600)"
	lock_wait "granted" 1
}
lock_release() {
	pg_super_psql -d postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = 'mb_aq_locker'" >/dev/null
}
# lock_wait granted|NOT granted N [POLLS]: until N sessions hold (or wait for) the lock, at most POLLS
# looks 50 ms apart (200); prints the count
lock_wait() {
	local n i
	for ((i = 0; i < ${3:-200}; i++)); do
		n=$(pg_super_psql -d postgres -c "SELECT count(*) FROM pg_locks
			WHERE locktype = 'advisory' AND objid = 4242 AND $1")
		[ "$n" = "$2" ] && break
		sleep 0.05
	done
	echo "$n"
}

# a slow lookup keeps only its own client waiting
lock_hold >/dev/null
mb_bg "$T_DIR/slow.out" "$PQTOOL" query "$(mb_connstr "$mu" "$mp" slowdb)" "SELECT 'slow done'"
slow_pid=$MB_BG_PID
mb_is "$(lock_wait "NOT granted" 1)" 1 "the lookup waits (for the test's lock)"
mb_is "$(login "$su" "$sp" "$MB_DB")" "$su" "another client logs in meanwhile"
mb_is "$(login "$mu" "$mp" aqdb)" "$mu" "... and so does one whose lookup goes elsewhere"
mb_is "$(cat "$T_DIR/slow.out")" "" "the waiting client is not logged in yet"
lock_release
wait "$slow_pid"
mb_is "$(cat "$T_DIR/slow.out")" "slow done" "the slow lookup's client logs in once it answers"

# lookups of one database and auth_user run at most pool_size (here 1) at a time: the second waits its turn
lock_hold >/dev/null
mark=$(wc -l <"$MB_LOG")
mb_bg "$T_DIR/slow1.out" "$PQTOOL" query "$(mb_connstr "$mu" "$mp" slowdb connect_timeout=120)" "SELECT 'first'"
p1=$MB_BG_PID
mb_is "$(lock_wait "NOT granted" 1)" 1 "pool_size 1: the first lookup runs"
mb_bg "$T_DIR/slow2.out" "$PQTOOL" query "$(mb_connstr "$mu" "$mp" slowdb connect_timeout=120)" "SELECT 'second'"
p2=$MB_BG_PID
for ((i = 0; i < 200; i++)); do
	[ "$(tail -n +"$((mark + 1))" "$MB_LOG" | grep -c 'auth_query as postgres in slowdb')" = 2 ] && break
	sleep 0.05
done
# had it a connection, it would be waiting for the lock within these 2 s
mb_is "$(lock_wait "NOT granted" 2 40)" 1 "... the second has no connection while the first runs"
lock_release
wait "$p1" "$p2"
mb_is "$(cat "$T_DIR/slow1.out" "$T_DIR/slow2.out" | sort | tr '\n' ' ')" "first second " \
	"both lookups end in a login, one after the other"

# a client that leaves during its lookup: the lookup's connection goes too
lock_hold >/dev/null
mb_bg "$T_DIR/gone.out" "$PQTOOL" raw 127.0.0.1 "$MB_PORT" "$(mb_startup_hex user "$mu" database slowdb)"
mb_is "$(lock_wait "NOT granted" 1)" 1 "a lookup waits"
kill "$MB_BG_PID"
mb_wait_line "$MB_LOG" "slowdb/postgres.*closing because: client gone during auth_query" 10
mb_like "$(cat "$MB_LOG")" "slowdb/postgres.*closing because: client gone during auth_query" \
	"its client leaves: the lookup connection closes"
lock_release
mb_check_healthy "the pooler is still healthy"
mb_stop

pg_super_psql -d postgres -c "DROP ROLE mb_aq_nopass; DROP ROLE mb_aq_expired" >/dev/null
mb_test_done
